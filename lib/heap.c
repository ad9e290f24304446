/*
 * heap.c -- per-thread heaps: the allocation slow path, pools moving between
 * a heap's class queues, its full list and its empty cache, and what happens
 * to a heap's pools when its thread exits (abandonment and adoption).
 * Main entry points: _rc_malloc_slow (refill a class cache), _rc_cache_flush
 * (a class cache over its limit), _rc_free_remote, _rc_heap_thread_done.
 *
 * Invariants (each heap's lists are touched only by its own thread):
 *   - cur[c] is the head of class c's queue, or &_rc_pool_empty when the
 *     queue is empty; tail[c] is its last pool or NULL;
 *   - cache[c] holds free blocks of class c from our own pools (they count
 *     as used there until returned); return_blocks also sends home any
 *     block of a pool that changed hands meanwhile; remote[] holds blocks
 *     of other heaps' pools on their way back;
 *   - a pool is on exactly one of: a class queue (in_full == 0), the full
 *     list (in_full == 1), the empty cache, the abandoned list, or free in
 *     its arena;
 *   - pools on the full list have the RC_USE_DELAYED tag (or a remote free is
 *     in the middle of clearing it); pools on the abandoned list have
 *     RC_NEVER_DELAYED and owner == NULL.
 */
#include "internal.h"
#include "track.h"

#include <errno.h>
#include <string.h>

#define EMPTY_POOLS_INIT(x) [0 ... RC_NCLASSES - 1] = (x)

rc_pool_t _rc_pool_empty;
rc_heap_t _rc_heap_empty = { .cur = { EMPTY_POOLS_INIT(&_rc_pool_empty) } };
__thread rc_heap_t *_rc_heap_tls __attribute__((tls_model("initial-exec"))) = &_rc_heap_empty;

/* ---- heap structs: never unmapped, recycled under heap_lock ------------- */

static rc_lock_t heap_lock = RC_LOCK_INIT;
static rc_heap_t *heaps_all, *heaps_free;
static size_t n_heaps;
static char *meta_bump, *meta_end;

void _rc_heap_lock(void)   { pthread_mutex_lock(&heap_lock); }
void _rc_heap_unlock(void) { pthread_mutex_unlock(&heap_lock); }

size_t _rc_heap_count(void)
{
    return __atomic_load_n(&n_heaps, __ATOMIC_RELAXED);
}

static rc_heap_t *heap_new(void)
{
    pthread_mutex_lock(&heap_lock);
    rc_heap_t *h = heaps_free;
    if (h) {
        heaps_free = h->next_all;
    } else {
        size_t sz = (sizeof(rc_heap_t) + 63) & ~(size_t)63;
        if (meta_bump == NULL || meta_bump + sz > meta_end) {
            size_t chunk = 256 * 1024;
            meta_bump = _rc_os_map(chunk);
            if (meta_bump == NULL) {
                pthread_mutex_unlock(&heap_lock);
                return NULL;
            }
            meta_end = meta_bump + chunk;
        }
        h = (rc_heap_t *)meta_bump;
        meta_bump += sz;
    }
    memset(h, 0, sizeof *h);
    for (unsigned c = 0; c < RC_NCLASSES; c++) {
        uint32_t lim = RC_CACHE_BYTES / _rc_class_size[c];
        h->cache[c].limit = lim < 8 ? 8 : lim > 128 ? 128 : lim;
        h->cur[c] = &_rc_pool_empty;
    }
    h->next_all = heaps_all;
    if (heaps_all)
        heaps_all->prev_all = h;
    heaps_all = h;
    n_heaps++;
    pthread_mutex_unlock(&heap_lock);
    return h;
}

static void heap_free(rc_heap_t *h)
{
    pthread_mutex_lock(&heap_lock);
    if (h->prev_all)
        h->prev_all->next_all = h->next_all;
    else
        heaps_all = h->next_all;
    if (h->next_all)
        h->next_all->prev_all = h->prev_all;
    n_heaps--;
    h->next_all = heaps_free;
    heaps_free = h;
    pthread_mutex_unlock(&heap_lock);
}

void _rc_heap_fork_child(void)
{
    pthread_mutex_init(&heap_lock, NULL);
    /* Other threads' heaps stay as they were: a thread may have been in the
       middle of its fast path, so their pools cannot be trusted for reuse.
       Their blocks remain valid and can still be freed (remote path). */
    rc_heap_t *me = _rc_heap_tls;
    for (rc_heap_t *h = heaps_all; h; h = h->next_all)
        if (h != me)
            h->live = false;
}

/* ---- lists ---------------------------------------------------------------- */

static void queue_remove(rc_heap_t *h, rc_pool_t *p)
{
    unsigned c = p->cls;
    if (p->prev)
        p->prev->next = p->next;
    else
        h->cur[c] = p->next ? p->next : &_rc_pool_empty;
    if (p->next)
        p->next->prev = p->prev;
    else
        h->tail[c] = p->prev;
    p->next = p->prev = NULL;
}

static void queue_push_front(rc_heap_t *h, rc_pool_t *p)
{
    unsigned c = p->cls;
    rc_pool_t *head = h->cur[c] == &_rc_pool_empty ? NULL : h->cur[c];
    p->prev = NULL;
    p->next = head;
    if (head)
        head->prev = p;
    else
        h->tail[c] = p;
    h->cur[c] = p;
}

static void queue_push_back(rc_heap_t *h, rc_pool_t *p)
{
    unsigned c = p->cls;
    rc_pool_t *t = h->tail[c];
    p->next = NULL;
    p->prev = t;
    if (t)
        t->next = p;
    else
        h->cur[c] = p;
    h->tail[c] = p;
}

static void full_push(rc_heap_t *h, rc_pool_t *p)
{
    p->in_full = 1;
    p->prev = NULL;
    p->next = h->full;
    if (h->full)
        h->full->prev = p;
    h->full = p;
}

static void full_remove(rc_heap_t *h, rc_pool_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        h->full = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->in_full = 0;
}

/* ---- abandoned pools: one global list ------------------------------------ */

static rc_lock_t abandoned_lock = RC_LOCK_INIT;
static rc_pool_t *abandoned;
static size_t n_abandoned;

void _rc_abandoned_lock(void)   { pthread_mutex_lock(&abandoned_lock); }
void _rc_abandoned_unlock(void) { pthread_mutex_unlock(&abandoned_lock); }

static void pool_release(rc_pool_t *p)
{
    atomic_store_explicit(&p->owner, NULL, memory_order_relaxed);
    _rc_arena_pool_release(p);
}

/* The empty cache: a few pools with no live block, kept for reuse by any
   class or by a one-pool span, owned by the heap meanwhile. */
bool _rc_heap_keep_empty(rc_heap_t *h, rc_pool_t *p)
{
    if (h->nempty >= RC_HEAP_EMPTY_MAX || !h->live)
        return false;
    atomic_store_explicit(&p->owner, h, memory_order_relaxed);
    p->next = h->empty;
    h->empty = p;
    h->nempty++;
    return true;
}

rc_pool_t *_rc_heap_take_empty(rc_heap_t *h)
{
    rc_pool_t *p = h->empty;
    if (p) {
        h->empty = p->next;
        h->nempty--;
    }
    return p;
}

static void retire(rc_heap_t *h, rc_pool_t *p)
{
    if (!_rc_heap_keep_empty(h, p))
        pool_release(p);
}

/* Place an owned pool where its state says it belongs. */
static void file_pool(rc_heap_t *h, rc_pool_t *p)
{
    for (;;) {
        if (p->used == 0) {
            retire(h, p);
            return;
        }
        if (p->free || p->bump < p->end) {
            queue_push_back(h, p);
            return;
        }
        if (_rc_pool_try_mark_full(p)) {
            full_push(h, p);
            return;
        }
        _rc_pool_collect(p);
    }
}

/* Under abandoned_lock: the list is doubly linked through next/prev, so a
   thread freeing into an abandoned pool can take that very pool. */
static void abandoned_push(rc_pool_t *p)
{
    p->prev = NULL;
    p->next = abandoned;
    if (abandoned)
        abandoned->prev = p;
    abandoned = p;
    p->abandoned = 1;
    n_abandoned++;
}

static void abandoned_unlink(rc_pool_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        abandoned = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->abandoned = 0;
    n_abandoned--;
}

/* An abandoned pool, just unlinked, becomes ours. */
static void take_over(rc_heap_t *h, rc_pool_t *p)
{
    p->in_full = 0;
    atomic_store_explicit(&p->owner, h, memory_order_release);
    _rc_pool_set_tag(p, RC_NO_DELAYED);
    _rc_pool_collect(p);
}

/* Take over up to `max` abandoned pools.  Returns one of class `cls` with a
   block ready, if any, already at the head of its queue. */
static rc_pool_t *adopt(rc_heap_t *h, unsigned cls, int max)
{
    if (__atomic_load_n(&n_abandoned, __ATOMIC_RELAXED) == 0)
        return NULL;
    pthread_mutex_lock(&abandoned_lock);
    rc_pool_t *list = NULL;
    for (int i = 0; i < max && abandoned; i++) {
        rc_pool_t *p = abandoned;
        abandoned_unlink(p);
        p->next = list;
        list = p;
    }
    pthread_mutex_unlock(&abandoned_lock);

    rc_pool_t *found = NULL;
    while (list) {
        rc_pool_t *p = list;
        list = p->next;
        p->next = NULL;
        take_over(h, p);
        if (found == NULL && p->cls == cls && p->used != 0 &&
            (p->free || _rc_pool_extend(p))) {
            found = p;
            queue_push_front(h, p);
        } else {
            file_pool(h, p);
        }
    }
    return found;
}

/* A live thread freeing into an abandoned pool takes the pool over, so the
   block (and the pool's other free blocks) are its to reuse at once, the
   way a new thread inherits a dead one's work.  False if another thread
   got there first, or the pool is not on the list (yet). */
static bool reclaim(rc_heap_t *h, rc_pool_t *p)
{
    pthread_mutex_lock(&abandoned_lock);
    bool ok = p->abandoned;
    if (ok)
        abandoned_unlink(p);
    pthread_mutex_unlock(&abandoned_lock);
    if (!ok)
        return false;
    take_over(h, p);
    file_pool(h, p);          /* used >= 1: the block being freed */
    return true;
}

/* A pool of class `cls` with at least one free block. */
static rc_pool_t *pool_fresh(rc_heap_t *h, unsigned cls)
{
    rc_pool_t *p = adopt(h, cls, 8);
    if (p)
        return p;
    if ((p = _rc_heap_take_empty(h)) == NULL) {
        p = _rc_arena_pool_acquire();
        if (p == NULL)
            return NULL;
        atomic_store_explicit(&p->owner, h, memory_order_release);
    }
    _rc_pool_init(p, cls);
    _rc_pool_extend(p);
    queue_push_front(h, p);
    return p;
}

/* A block came back to its pool: the pool may have left the full state or
   become empty. */
static void pool_returned(rc_heap_t *h, rc_pool_t *p)
{
    if (p->in_full) {
        full_remove(h, p);
        _rc_pool_set_tag(p, RC_NO_DELAYED);
        if (p->used != 0) {
            queue_push_back(h, p);
            return;
        }
    } else if (p->used == 0) {
        if (h->cur[p->cls] == p && p->next == NULL)
            return;                  /* the class's only pool: keep it */
        queue_remove(h, p);
    } else {
        return;
    }
    retire(h, p);
}

static void remote_add(rc_heap_t *h, rc_pool_t *p, rc_block_t *b);

/* Put a list of blocks back where they belong: ours into their pools, any
   other heap's into the batches for its owner.  Neighbours in the list
   often share a pool (a cache fills in runs), so each run of one pool is
   spliced in whole: one pool update per run, no write per block. */
static void return_blocks(rc_heap_t *h, rc_block_t *b)
{
    while (b) {
        rc_pool_t *p = _rc_pool_of(b);
        if (rc_unlikely(atomic_load_explicit(&p->owner, memory_order_relaxed) != h)) {
            rc_block_t *next = b->next;
            remote_add(h, p, b);
            b = next;
            continue;
        }
        rc_block_t *tail = b;
        uint32_t n = 1;
        while (tail->next && _rc_pool_of(tail->next) == p) {
            tail = tail->next;
            n++;
        }
        rc_block_t *next = tail->next;
        tail->next = p->free;
        p->free = b;
        p->nfree += n;
        p->used -= n;
        if (p->used == 0 || p->in_full)
            pool_returned(h, p);
        b = next;
    }
}

/* Blocks other threads freed into our full pools. */
static void process_delayed(rc_heap_t *h)
{
    return_blocks(h, atomic_exchange_explicit(&h->delayed, NULL, memory_order_acquire));
}

/* The cache went over its limit: keep the newest half, return the rest. */
void _rc_cache_flush(rc_heap_t *h, unsigned cls)
{
    rc_cache_t *c = &h->cache[cls];
    uint32_t keep = c->limit / 2;
    rc_block_t *b = c->head;
    for (uint32_t i = 1; i < keep; i++)
        b = b->next;
    rc_block_t *rest = b->next;
    b->next = NULL;
    c->count = keep;
    return_blocks(h, rest);
}

static void remote_flush(rc_remote_t *r)
{
    _rc_pool_free_remote(r->pool, r->head, r->tail, r->count);
    r->pool = NULL;
    r->count = 0;
}

static void remote_flush_all(rc_heap_t *h)
{
    while (h->remote_used) {
        unsigned i = (unsigned)__builtin_ctz(h->remote_used);
        h->remote_used &= h->remote_used - 1;
        remote_flush(&h->remote[i]);
    }
}

/* A free into a pool some other heap owns, or none.  An abandoned pool is
   reclaimed on the spot; otherwise the block is batched per pool, so the
   owner sees one CAS per RC_REMOTE_BATCH blocks; a thread with no heap of
   its own hands each block over at once. */
/* Batch a block for the heap that owns its pool: one CAS per
   RC_REMOTE_BATCH blocks. */
static void remote_add(rc_heap_t *h, rc_pool_t *p, rc_block_t *b)
{
    unsigned i = (unsigned)(((uintptr_t)p >> RC_POOL_SHIFT) % RC_REMOTE_SLOTS);
    rc_remote_t *r = &h->remote[i];
    if (r->pool != p) {
        if (r->pool)
            remote_flush(r);
        r->pool = p;
        r->tail = b;
        b->next = NULL;
        h->remote_used |= 1u << i;
    } else {
        b->next = r->head;
    }
    r->head = b;
    if (++r->count >= RC_REMOTE_BATCH) {
        remote_flush(r);
        h->remote_used &= ~(1u << i);
    }
}

void _rc_free_remote(rc_heap_t *h, rc_pool_t *p, rc_block_t *b)
{
    if (p->cls == RC_SPAN_CLASS) {   /* a span has no owner: whoever frees it */
        _rc_span_free(h, p);
        return;
    }
    if (h == &_rc_heap_empty) {
        b->next = NULL;
        _rc_pool_free_remote(p, b, b, 1);
        return;
    }
    if (atomic_load_explicit(&p->owner, memory_order_relaxed) == NULL && h->live &&
        reclaim(h, p)) {
        /* Straight back into the pool, not the class cache: a cache holding
           one block of each of many reclaimed pools would pin them all
           (a thread joining thousands of short-lived ones does just that). */
        b->next = NULL;
        return_blocks(h, b);
        return;
    }
    /* Batched back to the owner.  (Keeping it in our class cache for reuse
       here, as tcmalloc does, made two threads trading blocks 25% faster
       but tripled their resident memory: measured, not adopted.) */
    remote_add(h, p, b);
}

/* Every cached block back to its pool (thread exit, malloc_trim). */
void _rc_heap_flush_all(rc_heap_t *h)
{
    if (h == &_rc_heap_empty)
        return;
    for (unsigned c = 0; c < RC_NCLASSES; c++) {
        rc_block_t *b = h->cache[c].head;
        h->cache[c].head = NULL;
        h->cache[c].count = 0;
        return_blocks(h, b);
    }
    remote_flush_all(h);             /* after the caches: they add to it */
    process_delayed(h);
}

static rc_heap_t *heap_for_thread(void)
{
    rc_heap_t *h = heap_new();
    if (h == NULL)
        return NULL;
    h->live = true;
    _rc_heap_tls = h;
    pthread_setspecific(_rc_heap_key, h);   /* may allocate: the heap is set */
    return h;
}

/* ---- slow paths ------------------------------------------------------------ */

/* The class cache is empty: refill it with a pool's whole free list. */
void *_rc_malloc_slow(rc_heap_t *h, unsigned cls)
{
    if (h == &_rc_heap_empty) {
        _rc_ensure_init();
        h = _rc_heap_tls;            /* init may have allocated, making one */
        if (h == &_rc_heap_empty && (h = heap_for_thread()) == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        if (h->cache[cls].head)
            goto pop;
    }
    if (h->remote_used && (++h->slow_ticks & 7) == 0)
        remote_flush_all(h);         /* don't sit on other threads' blocks for
                                        long, but let batches fill first */
    if (atomic_load_explicit(&h->delayed, memory_order_relaxed)) {
        process_delayed(h);
        if (h->cache[cls].head)
            goto pop;
    }

    rc_pool_t *p;
    while ((p = h->cur[cls]) != &_rc_pool_empty) {
        if (p->free)
            goto refill;
        _rc_pool_collect(p);
        if (p->free || _rc_pool_extend(p))
            goto refill;
        if (_rc_pool_try_mark_full(p)) {
            queue_remove(h, p);
            full_push(h, p);
        }
    }
    p = pool_fresh(h, cls);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
refill:
    h->cache[cls].head = p->free;
    h->cache[cls].count += p->nfree;
    p->used += p->nfree;
    p->free = NULL;
    p->nfree = 0;
pop:;
    rc_cache_t *c = &h->cache[cls];
    rc_block_t *b = c->head;
    c->head = b->next;
    c->count--;
    return b;
}

/* ---- thread exit -------------------------------------------------------------- */

static void abandon_list(rc_pool_t *p)
{
    while (p) {
        rc_pool_t *next = p->next;
        _rc_pool_collect(p);
        p->in_full = 0;
        p->prev = NULL;
        if (p->used == 0) {
            pool_release(p);
        } else {
            atomic_store_explicit(&p->owner, NULL, memory_order_release);
            pthread_mutex_lock(&abandoned_lock);
            abandoned_push(p);
            pthread_mutex_unlock(&abandoned_lock);
        }
        p = next;
    }
}

static void heap_abandon(rc_heap_t *h)
{
    /* 0. Cached blocks back to their pools, ours and others'. */
    _rc_heap_flush_all(h);

    /* 1. No remote free may reach h->delayed after this. */
    for (unsigned c = 0; c < RC_NCLASSES; c++)
        for (rc_pool_t *p = h->tail[c] ? h->cur[c] : NULL; p; p = p->next)
            _rc_pool_set_tag(p, RC_NEVER_DELAYED);
    for (rc_pool_t *p = h->full; p; p = p->next)
        _rc_pool_set_tag(p, RC_NEVER_DELAYED);

    /* 2. Blocks already handed over go back to their pools. */
    rc_block_t *b = atomic_exchange_explicit(&h->delayed, NULL, memory_order_acquire);
    while (b) {
        rc_block_t *next = b->next;
        rc_pool_t *p = _rc_pool_of(b);
        b->next = p->free;
        p->free = b;
        p->nfree++;
        p->used--;
        b = next;
    }

    /* 3. Empty pools to the arena, the rest to the abandoned list. */
    for (unsigned c = 0; c < RC_NCLASSES; c++) {
        if (h->tail[c])
            abandon_list(h->cur[c]);
        h->cur[c] = &_rc_pool_empty;
        h->tail[c] = NULL;
    }
    abandon_list(h->full);
    h->full = NULL;
    while (h->empty) {
        rc_pool_t *p = h->empty;
        h->empty = p->next;
        pool_release(p);
    }
    h->nempty = 0;
}

void _rc_heap_thread_done(void *arg)
{
    rc_heap_t *h = arg;
    if (h == NULL || h == &_rc_heap_empty)
        return;
    _rc_heap_tls = &_rc_heap_empty;  /* later frees take the remote path */
    h->live = false;
    rc_track_quiet();
    heap_abandon(h);
    rc_track_loud();
    heap_free(h);
}
