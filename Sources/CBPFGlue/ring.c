/* A consumer of a BPF ring buffer map over its mapped pages, for one reader thread.
 *
 * libbpf's consumer writes the consumer position after every record. The programs' reserve and
 * their pending-bytes query read that position, so during a drain its cache line would move
 * between the cores with every event. This one copies a batch of records out and writes the
 * position once, after the copies (a release store: a producer never reuses bytes still being
 * read). */
#include "CBPFGlue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h> /* and linux/bpf.h: the record header's BPF_RINGBUF_* bits and size */

struct osp_ring {
	int epoll_fd;
	int interrupt_fd; /* an eventfd in the epoll set: osp_ring_interrupt ends a wait */
	size_t page_size;
	uint64_t mask;
	/* The consumer page (ours to write) and the producer page followed by the data pages,
	 * which the kernel maps twice in a row so that no record wraps. */
	void *consumer_page;
	void *producer_pages;
	size_t producer_len;
	const uint8_t *data;
};

struct osp_ring *osp_ring_open(int map_fd)
{
	struct bpf_map_info info;
	uint32_t info_len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &info_len))
		return NULL;
	struct osp_ring *ring = calloc(1, sizeof(*ring));
	if (!ring)
		return NULL;
	ring->page_size = (size_t)sysconf(_SC_PAGESIZE);
	ring->mask = (uint64_t)info.max_entries - 1;
	ring->epoll_fd = -1;
	ring->interrupt_fd = -1;
	ring->consumer_page =
	    mmap(NULL, ring->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (ring->consumer_page == MAP_FAILED) {
		ring->consumer_page = NULL;
		goto fail;
	}
	ring->producer_len = ring->page_size + 2 * (size_t)info.max_entries;
	ring->producer_pages =
	    mmap(NULL, ring->producer_len, PROT_READ, MAP_SHARED, map_fd, (off_t)ring->page_size);
	if (ring->producer_pages == MAP_FAILED) {
		ring->producer_pages = NULL;
		goto fail;
	}
	ring->data = (const uint8_t *)ring->producer_pages + ring->page_size;
	ring->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ring->epoll_fd < 0)
		goto fail;
	struct epoll_event wanted = {.events = EPOLLIN};
	if (epoll_ctl(ring->epoll_fd, EPOLL_CTL_ADD, map_fd, &wanted))
		goto fail;
	ring->interrupt_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ring->interrupt_fd < 0 ||
	    epoll_ctl(ring->epoll_fd, EPOLL_CTL_ADD, ring->interrupt_fd, &wanted))
		goto fail;
	return ring;
fail : {
	int saved = errno;
	osp_ring_close(ring);
	errno = saved;
	return NULL;
}
}

void osp_ring_close(struct osp_ring *ring)
{
	if (!ring)
		return;
	if (ring->epoll_fd >= 0)
		close(ring->epoll_fd);
	if (ring->interrupt_fd >= 0)
		close(ring->interrupt_fd);
	if (ring->producer_pages)
		munmap(ring->producer_pages, ring->producer_len);
	if (ring->consumer_page)
		munmap(ring->consumer_page, ring->page_size);
	free(ring);
}

int osp_ring_wait(struct osp_ring *ring, int timeout_ms)
{
	struct epoll_event event;
	int n = epoll_wait(ring->epoll_fd, &event, 1, timeout_ms);
	return n < 0 ? -errno : n;
}

void osp_ring_interrupt(struct osp_ring *ring)
{
	uint64_t one = 1;
	ssize_t written = write(ring->interrupt_fd, &one, sizeof(one));
	(void)written; /* EAGAIN: the counter is already non-zero, the wait already ends */
}

uint64_t osp_ring_consumed(const struct osp_ring *ring)
{
	return __atomic_load_n((const uint64_t *)ring->consumer_page, __ATOMIC_RELAXED);
}

int osp_ring_drain(struct osp_ring *ring, void *slots, size_t slot_size, size_t min_size,
		   size_t zeroed_size, int max, uint64_t *malformed, int *stopped_at_busy)
{
	uint64_t *consumer = ring->consumer_page;
	const uint64_t *producer = ring->producer_pages;
	uint64_t cons = *consumer; /* only this thread writes it */
	uint64_t start = cons;
	int count = 0;
	*stopped_at_busy = 0;
	uint64_t prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
	while (count < max) {
		if (cons >= prod) {
			/* Caught up: look again, more may have been committed meanwhile. */
			prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
			if (cons >= prod)
				break;
		}
		const uint32_t *header = (const uint32_t *)(ring->data + (cons & ring->mask));
		uint32_t len = __atomic_load_n(header, __ATOMIC_ACQUIRE);
		if (len & BPF_RINGBUF_BUSY_BIT) {
			/* Reserved, not yet submitted: records are read in order, so stop here. */
			*stopped_at_busy = 1;
			break;
		}
		uint32_t size = len & ~BPF_RINGBUF_DISCARD_BIT;
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			if (size < min_size) {
				*malformed += 1;
			} else {
				uint8_t *slot = (uint8_t *)slots + (size_t)count * slot_size;
				memcpy(slot, (const uint8_t *)header + BPF_RINGBUF_HDR_SZ,
				       size < slot_size ? size : slot_size);
				if (size < zeroed_size)
					memset(slot + size, 0, zeroed_size - size);
				count += 1;
			}
		}
		cons += ((uint64_t)size + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
	}
	if (cons != start)
		__atomic_store_n(consumer, cons, __ATOMIC_RELEASE);
	return count;
}
