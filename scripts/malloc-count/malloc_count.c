// Counts heap allocations of a process, for `make bench` (allocations per event of the flow
// pipeline). Loaded with LD_PRELOAD; the benchmark reads the count through
// osp_malloc_count() around its timed loop. Not part of Osprey itself.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>

static atomic_ulong allocations;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static char early[4096];
static size_t used;

unsigned long osp_malloc_count(void)
{
	return atomic_load(&allocations);
}

void *malloc(size_t size)
{
	if (!real_malloc)
		real_malloc = dlsym(RTLD_NEXT, "malloc");
	atomic_fetch_add(&allocations, 1);
	return real_malloc(size);
}

void *calloc(size_t count, size_t size)
{
	/* dlsym itself may calloc: serve that from a small static buffer. */
	if (!real_calloc) {
		size_t total = count * size;
		if (used + total <= sizeof(early)) {
			void *p = early + used;
			used += (total + 15) & ~(size_t)15;
			return p;
		}
		real_calloc = dlsym(RTLD_NEXT, "calloc");
	}
	atomic_fetch_add(&allocations, 1);
	return real_calloc(count, size);
}

void *realloc(void *pointer, size_t size)
{
	if (!real_realloc)
		real_realloc = dlsym(RTLD_NEXT, "realloc");
	atomic_fetch_add(&allocations, 1);
	return real_realloc(pointer, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
	if (!real_posix_memalign)
		real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	atomic_fetch_add(&allocations, 1);
	return real_posix_memalign(out, alignment, size);
}

void free(void *pointer)
{
	static void (*real_free)(void *);
	if ((char *)pointer >= early && (char *)pointer < early + sizeof(early))
		return; /* from the bootstrap buffer: never freed */
	if (!real_free)
		real_free = dlsym(RTLD_NEXT, "free");
	real_free(pointer);
}
