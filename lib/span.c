/*
 * span.c -- blocks too big for the size classes but not for an arena: each
 * is a run of whole pools (a "span", up to RC_SPAN_POOLS of them) with the
 * block starting right after the first pool's header.
 *
 *   pool i (header, cls = RC_SPAN_CLASS)   pool i+1         pool i+n-1
 *   +--------+--------------------------+----------- ... -+-------------+
 *   | header | the block ...                                       end  |
 *   +--------+--------------------------+----------- ... -+-------------+
 *            ^ pool + max(128, align)                     pool + n * 64 KiB
 *
 * Because the block starts in its first pool, ptr & ~(RC_POOL_SIZE - 1) is
 * its header, as for any pool block: free(), malloc_usable_size() and the
 * pagemap test need nothing new.  A span costs what the program touches
 * (whole pages; the rest of its pools is address space), reuses resident
 * pools first, and returns to the OS by the arenas' decay, like any pool.
 * This is what serves the sizes between the pools and jemalloc (32 KiB ..
 * 1 MiB) and any buffer realloc grows past 4 KiB (_rc_span_growth_from)
 * without loading or setting up jemalloc: a buffer grows in place to the
 * end of its pools, then into free pools that follow, before it is ever
 * copied.
 *
 * Invariants:
 *   - a live span's header has cls == RC_SPAN_CLASS, owner == NULL (so every
 *     free comes to _rc_free_remote, which sends it here), used == 1, and
 *     end == pool + n * RC_POOL_SIZE; block_size == end - block;
 *   - its pools 2..n are marked in the arena's span_tail (the stats walk
 *     must not read them as headers);
 *   - a one-pool span is an ordinary pool as soon as it is freed: it may go
 *     to the freeing thread's empty-pool cache (no lock) and come back as a
 *     span or as a pool of any class.
 */
#include "internal.h"
#include "prof.h"

#include <errno.h>
#include <string.h>

static unsigned span_pools(const rc_pool_t *p)
{
    return (unsigned)((size_t)(p->end - (const char *)p) >> RC_POOL_SHIFT);
}

static unsigned pools_for(size_t off, size_t size)
{
    return (unsigned)((off + size + RC_POOL_SIZE - 1) >> RC_POOL_SHIFT);
}

/* n pools (from the heap's empty cache when one will do), set up as a span
   whose block is at pool + off; zero: its first `size` bytes are cleared (a
   reused pool is not zero). */
static void *span_new(size_t size, size_t off, unsigned n, bool zero)
{
    rc_heap_t *h = _rc_heap_tls;
    rc_pool_t *p = n == 1 ? _rc_heap_take_empty(h) : NULL;
    if (p != NULL) {
        p->resident = 1;            /* it was a pool in use */
    } else if ((p = _rc_arena_span_acquire(n)) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    char *block = (char *)p + off;
    atomic_store_explicit(&p->owner, NULL, memory_order_relaxed);
    p->free = NULL;
    p->nfree = 0;
    p->used = 1;
    p->end = (char *)p + (size_t)n * RC_POOL_SIZE;
    p->bump = block + size;
    p->block_size = (uint32_t)(p->end - block);
    p->next = p->prev = NULL;
    p->cls = RC_SPAN_CLASS;
    p->magic = 0;                   /* every offset passes: checked on free */
    p->in_full = 0;
    atomic_store_explicit(&p->thread_free, RC_NO_DELAYED, memory_order_relaxed);
    if (zero)
        memset(block, 0, size);
    return block;
}

void *_rc_span_alloc(size_t size, size_t align, bool zero)
{
    size_t off = align > RC_POOL_HEADER ? align : RC_POOL_HEADER;
    return span_new(size, off, pools_for(off, size ? size : 1), zero);
}

/* The pools a growing buffer of n pools gets: the next power of two above
   n (at most RC_SPAN_POOLS), so it grows to twice its size in place.  The
   pools past its high-water mark are only address space. */
static unsigned room_for(unsigned n)
{
    unsigned r = (unsigned)_rc_pow2_above(n);
    return r < RC_SPAN_POOLS ? r : n > RC_SPAN_POOLS ? n : RC_SPAN_POOLS;
}

void *_rc_span_grown(size_t size)
{
    return span_new(size, RC_POOL_HEADER, room_for(pools_for(RC_POOL_HEADER, size)), false);
}

void _rc_span_free(rc_heap_t *h, rc_pool_t *p)
{
    if (rc_unlikely(_rc_prof_on))  /* it may carry a heap-profile sample */
        _rc_prof_forget(p->end - p->block_size);
    unsigned n = span_pools(p);
    unsigned touched = pools_for(0, (size_t)(p->bump - (char *)p));
    p->used = 0;
    p->cls = 0;
    if (n == 1 && _rc_heap_keep_empty(h, p))
        return;
    _rc_arena_span_release(p, n, touched < n ? touched : n);
}

/* Keep the block where its pools allow: within them (shrinking them only
   when the buffer is a quarter of its high-water mark), or grown into free
   pools that follow; otherwise move (to a pool block, a bigger span, or
   jemalloc), copying once. */
void *_rc_span_realloc(void *ptr, size_t size)
{
    rc_pool_t *p = _rc_pool_of(ptr);
    size_t off = (size_t)((char *)ptr - (char *)p);
    size_t old = p->block_size;
    size_t high = (size_t)(p->bump - (char *)ptr);
    unsigned n = span_pools(p);
    if (size > _rc_span_growth_from() && _rc_span_fits(size, off)) {
        unsigned m = pools_for(off, size);
        if (size <= old && (m == n || size >= high / 4)) {
            if (size > high)
                p->bump = (char *)ptr + size;
            return ptr;
        }
        if (m < n) {
            _rc_arena_span_shrink(p, n, m);
        } else {
            unsigned r = room_for(m);
            if (r > m && _rc_arena_span_grow(p, n, r))
                m = r;
            else if (!_rc_arena_span_grow(p, n, m))
                goto move;
        }
        p->end = (char *)p + (size_t)m * RC_POOL_SIZE;
        p->bump = (char *)ptr + size;
        p->block_size = (uint32_t)(p->end - (char *)ptr);
        return ptr;
    }
move:;
    void *q = _rc_span_grows_into(old, size) ? _rc_span_grown(size) : _rc_malloc_uncounted(size);
    if (q == NULL)
        return NULL;                /* errno is ENOMEM; ptr stays valid */
    memcpy(q, ptr, size < old ? size : old);
    _rc_span_free(_rc_heap_tls, p);
    return q;
}
