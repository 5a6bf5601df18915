/* ThreadSanitizer's annotation entry points, declared weak: in a build with -sanitize=thread the
 * TSan runtime defines them; in any other build they are null and the calls below do nothing. */
#ifndef OSPREY_SANITIZER_HOOKS_H
#define OSPREY_SANITIZER_HOOKS_H

void __tsan_acquire(void *addr) __attribute__((weak));
void __tsan_release(void *addr) __attribute__((weak));

/* What a lock's acquisition means to ThreadSanitizer: everything released at `addr` before
 * happens before what follows. */
static inline void osp_sanitizer_acquire(void *addr)
{
	if (__tsan_acquire)
		__tsan_acquire(addr);
}

/* What a lock's release means to ThreadSanitizer. */
static inline void osp_sanitizer_release(void *addr)
{
	if (__tsan_release)
		__tsan_release(addr);
}

#endif
