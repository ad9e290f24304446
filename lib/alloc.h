/*
 * alloc.h -- the small-block fast paths, inlined into every entry point
 * (alloc.c's rc_ names and override.c's standard names): a pop or push on
 * the calling thread's pool free list, no lock, no atomic read-modify-write.
 */
#ifndef RC_ALLOC_H
#define RC_ALLOC_H
#include "internal.h"
#include "prof.h"

RC_INLINE void *cache_pop(const rc_heap_t *h, rc_cache_t *c, rc_block_t *b)
{
    rc_block_t *next = (rc_block_t *)(b->link ^ h->link_key);
    c->head = next;
    c->count--;
    b->key = 0;                        /* in use: not "freed" (double-free key) */
    __builtin_prefetch(next, 1);       /* the next pop of this class reads it */
    return b;
}

RC_INLINE void *fast_alloc_class(unsigned cls)
{
    rc_heap_t *h = _rc_heap_tls;
    rc_cache_t *c = &h->cache[cls];
    rc_block_t *b = c->head;
    if (rc_likely((intptr_t)b > 0))    /* NULL, or a forged link: slow path */
        return cache_pop(h, c, b);
    return _rc_malloc_slow(h, cls);
}

/* A new block of size bytes (malloc, calloc): fast_alloc_class, and the
   heap profiler's count (prof.h), one decrement and branch on a heap that
   has a block to give (so the shared empty heap is never written). */
RC_INLINE void *fast_alloc_counted(unsigned cls, size_t size)
{
    rc_heap_t *h = _rc_heap_tls;
    rc_cache_t *c = &h->cache[cls];
    rc_block_t *b = c->head;
    if (rc_likely((intptr_t)b > 0)) {
        if (rc_unlikely((h->prof_left -= (int64_t)size) < 0))
            return _rc_malloc_counted_out(size);
        return cache_pop(h, c, b);
    }
    return _rc_malloc_slow_counted(h, cls, size);
}

/* A block of class cls straight from the thread's cache, counted for the
   heap profiler, or NULL (the cache is empty, the profiler's count would
   run out, or the thread has no heap yet) with nothing changed: the caller
   then takes the full path.  For callers that want no call on their fast
   path (rc_new): the block is a pool block of class cls. */
RC_INLINE void *fast_alloc_try(unsigned cls, size_t size)
{
    rc_heap_t *h = _rc_heap_tls;
    rc_cache_t *c = &h->cache[cls];
    rc_block_t *b = c->head;
    int64_t left = h->prof_left - (int64_t)size;
    if (rc_unlikely((intptr_t)b <= 0 || left < 0))
        return NULL;
    h->prof_left = left;
    return cache_pop(h, c, b);
}

RC_INLINE void *fast_alloc(size_t size)
{
    if (rc_likely(size - 1 < _rc_fast_max))      /* 1 .. _rc_fast_max */
        return fast_alloc_counted(_rc_class_of(size), size);
    return _rc_malloc_generic(size);
}

/* Free a block of a pool: onto our class cache if the pool is ours, else
   toward its owner.  Always checked, as glibc's tcache does, at the cost of
   a test, a compare and a store: the pointer must be 16-byte aligned, and a
   block carrying the free key may be a double free (confirmed out of line:
   a program may have stored those 8 bytes itself).  Whether an aligned
   pointer is a block start (_rc_block_start, a multiply) is checked where a
   block leaves the cache or goes to another thread: measured, the multiply
   on this path cost fastpath 10%. */
RC_INLINE void free_pool_block(void *ptr)
{
    rc_pool_t *p = _rc_pool_of(ptr);
    rc_heap_t *h = _rc_heap_tls;
    rc_block_t *b = ptr;
    if (rc_unlikely((uintptr_t)ptr & (RC_ALIGN - 1)))
        _rc_free_invalid(ptr);         /* no block starts off 16 bytes */
    if (rc_unlikely(b->key == _rc_free_key)) {
        _rc_free_suspect(ptr);         /* aborts, or frees it after all */
        return;
    }
    b->key = _rc_free_key;
    if (rc_likely(atomic_load_explicit(&p->owner, memory_order_relaxed) == h)) {
        unsigned cls = p->cls;
        rc_cache_t *c = &h->cache[cls];
        b->link = (uintptr_t)c->head ^ h->link_key;
        c->head = b;
        if (rc_unlikely(++c->count > c->limit))
            _rc_cache_flush(h, cls);
        return;
    }
    _rc_free_remote(h, p, b);
}

RC_INLINE void fast_free(void *ptr)
{
    if (rc_likely(_rc_map_of(ptr) == RC_MAP_FAST)) {
        free_pool_block(ptr);
        return;
    }
    _rc_free_generic(ptr);
}

#endif
