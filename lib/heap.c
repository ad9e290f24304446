/*
 * heap.c -- per-thread heaps: the allocation slow path, pools moving between
 * a heap's class queues, its full list and its empty cache, and what happens
 * to a heap's pools when its thread exits or idles (abandonment, adoption,
 * and release by whoever frees an abandoned pool's last block).
 * Main entry points: _rc_malloc_slow (refill a class cache), _rc_cache_flush
 * (a class cache over its limit), _rc_free_remote, _rc_heap_thread_done.
 *
 * Invariants (each heap's lists are touched only under its lock: by its own
 * thread on its slow paths, or by a thread abandoning an idle heap's pools
 * or taking the pools others emptied out of its queues):
 *   - cur[c] is the head of class c's queue, or &_rc_pool_empty when the
 *     queue is empty; tail[c] is its last pool or NULL;
 *   - cache[c] holds free blocks of class c, from pools that were ours when
 *     the blocks came in (they count as used there until returned);
 *     return_blocks sends any block of a pool that changed hands meanwhile
 *     the remote way; remote[] holds blocks of others' pools (or abandoned
 *     ones) on their way back; both are the owning thread's alone;
 *   - a pool is on exactly one of: a class queue (in_full == 0), the full
 *     list (in_full == 1), the empty cache, an abandoned list, or free in
 *     its arena;
 *   - pools on the full list have the RC_USE_DELAYED tag (or a remote free is
 *     in the middle of clearing it); pools on an abandoned list have
 *     RC_NEVER_DELAYED and owner == RC_ABANDONED, or RC_CLAIMED while a
 *     freeing thread collects them (never NULL: that is a free pool's or a
 *     span's owner, and a late claim must not succeed on those).
 */
#include "internal.h"
#include "alloc.h"
#include "track.h"

#include <errno.h>
#include <sched.h>
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

/* Times a live heap's pools were given up for it: its thread sat idle
   (steal_idle), or another called malloc_trim (the statistics' "taken
   over"). */
static size_t n_taken_over;

size_t _rc_heap_taken_over(void)
{
    return __atomic_load_n(&n_taken_over, __ATOMIC_RELAXED);
}

/* Pools with no live block taken from other heaps' queues (reclaim_free),
   and where the next look round the heaps starts (under heap_lock). */
static size_t n_reclaimed;
static rc_heap_t *reclaim_next;

size_t _rc_heap_reclaimed(void)
{
    return __atomic_load_n(&n_reclaimed, __ATOMIC_RELAXED);
}

/* A class cache's most blocks: RC_CACHE_BYTES of them, 8 to 2048, and never
   more than twice RC_CACHE_BYTES (at least 2): the pool-fraction classes'
   caches hold 2 .. 7 blocks, so no cache pins more than 64 KiB.  (A cap of
   128 blocks for the classes under 256 B made binary-trees, whose trees of
   up to 2^10 nodes are built and freed whole, refill and flush on every
   128th call: 10% of its time.) */
static uint32_t cache_limit(uint32_t size)
{
    uint32_t lim = RC_CACHE_BYTES / size;
    if (lim >= 8)
        return lim > 2048 ? 2048 : lim;
    lim = 2 * RC_CACHE_BYTES / size;
    return lim > 8 ? 8 : lim < 2 ? 2 : lim;
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
        h->cache[c].limit = cache_limit(_rc_class_size[c]);
        h->cur[c] = &_rc_pool_empty;
    }
    h->live = true;
    h->link_key = _rc_link_key;
    h->next_all = heaps_all;
    if (heaps_all)
        heaps_all->prev_all = h;
    heaps_all = h;
    __atomic_store_n(&n_heaps, n_heaps + 1, __ATOMIC_RELAXED);   /* read unlocked */
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
    __atomic_store_n(&n_heaps, n_heaps - 1, __ATOMIC_RELAXED);
    if (reclaim_next == h)
        reclaim_next = h->next_all;
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

/* ---- the heap lock ---------------------------------------------------------
 *
 * A heap's lists (class queues, full list, empty cache, delayed list) are
 * its thread's, but a thread that needs memory may take the pools of a heap
 * that has been idle a while (steal_idle).  So the owner holds h->lock on
 * every slow path that touches its lists (one uncontended CAS per cache
 * refill or flush), and another thread only ever try-locks it.  The caches
 * and the remote batches stay the owner's alone: the fast paths take no
 * lock, and nothing here changes what they see (a block in a cache counts
 * as used in its pool whoever owns the pool; a block freed into a pool that
 * changed hands takes the remote path). */

enum { HEAP_FREE = 0, HEAP_OWNER = 1, HEAP_STOLEN = 2 };

static RC_NOINLINE void heap_enter_wait(rc_heap_t *h)
{
    int expect;
    do {
        sched_yield();
        expect = HEAP_FREE;
    } while (!atomic_compare_exchange_weak_explicit(&h->lock, &expect, HEAP_OWNER,
                 memory_order_acquire, memory_order_relaxed));
}

RC_INLINE void heap_enter(rc_heap_t *h)
{
    int expect = HEAP_FREE;
    if (rc_unlikely(!atomic_compare_exchange_strong_explicit(&h->lock, &expect, HEAP_OWNER,
                        memory_order_acquire, memory_order_relaxed)))
        heap_enter_wait(h);
    atomic_store_explicit(&h->last_ms, _rc_now_ms(), memory_order_relaxed);
}

RC_INLINE void heap_leave(rc_heap_t *h)
{
    atomic_store_explicit(&h->lock, HEAP_FREE, memory_order_release);
}

/* Another thread's try at h's lists (steal_idle, reclaim_free): fails if
   h's thread is on a slow path; heap_leave gives them back. */
static bool heap_try_steal(rc_heap_t *h)
{
    int expect = HEAP_FREE;
    return atomic_compare_exchange_strong_explicit(&h->lock, &expect, HEAP_STOLEN,
               memory_order_acquire, memory_order_relaxed);
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

static void pool_release(rc_pool_t *p)
{
    atomic_store_explicit(&p->owner, NULL, memory_order_relaxed);
    _rc_arena_pool_release(p);
}

/* The empty cache: a few pools with no live block, kept for reuse by any
   class or by a one-pool span, owned by the heap meanwhile.  (Under the
   heap lock; _rc_heap_keep_empty/_rc_heap_take_empty take it for span.c.) */
static bool keep_empty(rc_heap_t *h, rc_pool_t *p)
{
    if (h->nempty >= RC_HEAP_EMPTY_MAX || !h->live)
        return false;
    atomic_store_explicit(&p->owner, h, memory_order_relaxed);
    p->next = h->empty;
    h->empty = p;
    h->nempty++;
    return true;
}

static rc_pool_t *take_empty(rc_heap_t *h)
{
    rc_pool_t *p = h->empty;
    if (p) {
        h->empty = p->next;
        h->nempty--;
    }
    return p;
}

bool _rc_heap_keep_empty(rc_heap_t *h, rc_pool_t *p)
{
    if (h == &_rc_heap_empty || !h->live)
        return false;
    heap_enter(h);
    bool kept = keep_empty(h, p);
    heap_leave(h);
    return kept;
}

rc_pool_t *_rc_heap_take_empty(rc_heap_t *h)
{
    if (h == &_rc_heap_empty)
        return NULL;
    heap_enter(h);
    rc_pool_t *p = take_empty(h);
    heap_leave(h);
    return p;
}

static void retire(rc_heap_t *h, rc_pool_t *p)
{
    if (!keep_empty(h, p))
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

/* ---- abandoned pools: a list per class ------------------------------------
 *
 * A pool whose heap gave it up (its thread exited, or sat idle while others
 * needed memory) has owner == RC_ABANDONED and the tag RC_NEVER_DELAYED, and sits on
 * abandoned[cls]: pools with free blocks at the head, full ones at the tail.
 * Nobody's free list: a thread freeing into it pushes onto thread_free as
 * into any other pool, then (abandoned_freed) claims the pool for a moment
 * (owner RC_ABANDONED -> RC_CLAIMED, one CAS), takes those blocks back, and gives the
 * pool to its arena if that emptied it, so a dead thread's pools go back as
 * soon as the last of their blocks is freed, whoever frees it.  A heap that
 * needs a pool of a class adopts one from that class's list (owner
 * RC_ABANDONED -> the heap, one CAS) before it carves a fresh one.  The
 * owner word is the pool's state: a late claim by a thread whose blocks
 * another claimer already collected finds the pool given back (NULL) or
 * someone's, and fails. */

/* An abandoned pool's owner, and a claimed one's: no heap's address, never
   dereferenced (only a RC_USE_DELAYED pool's owner is, and abandoned pools
   are RC_NEVER_DELAYED). */
#define RC_ABANDONED ((rc_heap_t *)(uintptr_t)64)
#define RC_CLAIMED   ((rc_heap_t *)(uintptr_t)128)

static rc_lock_t abandoned_lock = RC_LOCK_INIT;
static rc_pool_t *abandoned[RC_NCLASSES], *abandoned_tail[RC_NCLASSES];
static size_t n_abandoned[RC_NCLASSES];

void _rc_abandoned_lock(void)   { pthread_mutex_lock(&abandoned_lock); }
void _rc_abandoned_unlock(void) { pthread_mutex_unlock(&abandoned_lock); }

static bool pool_has_free(const rc_pool_t *p)
{
    return p->free != NULL || p->bump < p->end;
}

/* Under abandoned_lock.  Pools with free blocks go first, so adopters find
   them without walking past full ones. */
static void abandoned_push(rc_pool_t *p, bool front)
{
    unsigned c = p->cls;
    if (front || abandoned[c] == NULL) {
        p->prev = NULL;
        p->next = abandoned[c];
        if (abandoned[c])
            abandoned[c]->prev = p;
        else
            abandoned_tail[c] = p;
        abandoned[c] = p;
    } else {
        p->next = NULL;
        p->prev = abandoned_tail[c];
        abandoned_tail[c]->next = p;
        abandoned_tail[c] = p;
    }
    p->abandoned = 1;
    __atomic_store_n(&n_abandoned[c], n_abandoned[c] + 1, __ATOMIC_RELAXED);
}

static void abandoned_unlink(rc_pool_t *p)
{
    unsigned c = p->cls;
    if (p->prev)
        p->prev->next = p->next;
    else
        abandoned[c] = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        abandoned_tail[c] = p->prev;
    p->next = p->prev = NULL;
    p->abandoned = 0;
    __atomic_store_n(&n_abandoned[c], n_abandoned[c] - 1, __ATOMIC_RELAXED);
}

static bool has_remote_frees(rc_pool_t *p)
{
    return (atomic_load(&p->thread_free) & ~RC_TAG_MASK) != 0;
}

/* Blocks were pushed onto an abandoned pool's thread_free: claim the pool,
   take them back, and give the pool to its arena if it is now empty; if it
   just stopped being full, move it to the front of its list.  If someone
   else holds the pool (an adopter, its abandoning heap, another claimer),
   that thread sees our blocks: each releases its hold with a sequentially
   consistent store and then looks at thread_free again, and our push came
   before our failed claim. */
static void abandoned_freed(rc_pool_t *p)
{
    for (;;) {
        rc_heap_t *none = RC_ABANDONED;
        if (!atomic_compare_exchange_strong(&p->owner, &none, RC_CLAIMED))
            return;
        bool was_full = !pool_has_free(p);
        _rc_pool_collect(p);
        if (p->used == 0) {
            pthread_mutex_lock(&abandoned_lock);
            abandoned_unlink(p);
            pthread_mutex_unlock(&abandoned_lock);
            pool_release(p);
            return;
        }
        if (was_full && pool_has_free(p) && pthread_mutex_trylock(&abandoned_lock) == 0) {
            abandoned_unlink(p);
            abandoned_push(p, true);
            pthread_mutex_unlock(&abandoned_lock);
        }
        atomic_store(&p->owner, RC_ABANDONED);
        if (!has_remote_frees(p))
            return;
    }
}

/* Hand a batch of blocks to the pool's owner (or to nobody: see above). */
static void remote_push(rc_pool_t *p, rc_block_t *head, rc_block_t *tail, uint32_t n)
{
    if (_rc_pool_free_remote(p, head, tail, n) == RC_NEVER_DELAYED)
        abandoned_freed(p);
}

/* Give up an owned pool (tagged RC_NEVER_DELAYED, off every list of ours):
   to the arena if empty, else onto the abandoned list. */
static void abandon_pool(rc_pool_t *p)
{
    _rc_pool_collect(p);
    p->in_full = 0;
    p->next = p->prev = NULL;
    if (p->used == 0) {
        pool_release(p);
        return;
    }
    pthread_mutex_lock(&abandoned_lock);
    abandoned_push(p, pool_has_free(p));
    atomic_store(&p->owner, RC_ABANDONED);   /* claimable only once listed */
    pthread_mutex_unlock(&abandoned_lock);
    if (has_remote_frees(p))
        abandoned_freed(p);
}

/* An abandoned pool, just claimed (owner set) and unlinked, becomes its
   claimer's. */
static void take_over(rc_pool_t *p)
{
    p->in_full = 0;
    _rc_pool_set_tag(p, RC_NO_DELAYED);
    _rc_pool_collect(p);
}

/* A pool of class `cls` with a free block, from the abandoned list, put at
   the head of h's queue; NULL if the list has none.  Full pools met on the
   way (rare: they are kept at the tail) become h's too, on its full list. */
static rc_pool_t *adopt(rc_heap_t *h, unsigned cls)
{
    for (int tries = 0; tries < 4; tries++) {
        if (__atomic_load_n(&n_abandoned[cls], __ATOMIC_RELAXED) == 0)
            return NULL;
        rc_pool_t *p;
        pthread_mutex_lock(&abandoned_lock);
        for (p = abandoned[cls]; p; p = p->next) {
            rc_heap_t *none = RC_ABANDONED;
            if (atomic_compare_exchange_strong(&p->owner, &none, h))
                break;                  /* else a freer holds it for a moment */
        }
        if (p)
            abandoned_unlink(p);
        pthread_mutex_unlock(&abandoned_lock);
        if (p == NULL)
            return NULL;
        take_over(p);
        if (p->used != 0 && (p->free || _rc_pool_extend(p))) {
            queue_push_front(h, p);
            return p;
        }
        file_pool(h, p);
    }
    return NULL;
}

static void steal_idle(rc_heap_t *me);
static rc_pool_t *reclaim_free(rc_heap_t *me, unsigned cls);

/* A pool of class `cls` with at least one free block. */
static rc_pool_t *pool_fresh(rc_heap_t *h, unsigned cls)
{
    rc_pool_t *p = adopt(h, cls);
    if (p)
        return p;
    if ((p = reclaim_free(h, cls)) != NULL)
        return p;
    steal_idle(h);
    if ((p = take_empty(h)) == NULL) {
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
    rc_block_t *tail = NULL;           /* the block that linked to b */
    while (b) {
        _rc_link_check(tail, b);       /* a cache head a fast path decoded,
                                          or a run's end */
        rc_pool_t *p = _rc_pool_of(b);
        if (rc_unlikely(!_rc_block_start(p, b)))
            _rc_free_invalid(b);
        if (rc_unlikely(atomic_load_explicit(&p->owner, memory_order_relaxed) != h)) {
            rc_block_t *next = _rc_next(b);
            remote_add(h, p, b);
            tail = b;
            b = next;
            continue;
        }
        rc_block_t *next;
        tail = b;
        uint32_t n = 1;
        while ((next = _rc_next(tail)) != NULL && _rc_pool_of(next) == p) {
            tail = next;
            if (rc_unlikely(!_rc_block_start(p, tail)))
                _rc_free_invalid(tail);
            n++;
        }
        _rc_set_next(tail, p->free);
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
        b = _rc_next(b);
    rc_block_t *rest = _rc_next(b);
    _rc_set_next(b, NULL);
    c->count = keep;
    heap_enter(h);
    return_blocks(h, rest);
    heap_leave(h);
}

static void remote_flush(rc_heap_t *h, rc_remote_t *r)
{
    h->remote_bytes -= (size_t)r->count * r->pool->block_size;
    remote_push(r->pool, r->head, r->tail, r->count);
    r->pool = NULL;
    r->count = 0;
}

static void remote_flush_all(rc_heap_t *h)
{
    while (h->remote_used) {
        unsigned i = (unsigned)__builtin_ctzll(h->remote_used);
        h->remote_used &= h->remote_used - 1;
        remote_flush(h, &h->remote[i]);
    }
}

/* Batch a block (its start checked by the caller) for the heap that owns
   its pool: one CAS per RC_REMOTE_BATCH blocks, or per RC_REMOTE_BYTES of
   them (big blocks: a pool of 2 .. 7 never gives 16).  A pool has two
   slots it may use, a pair picked by its address; it evicts (flushes) the
   first only when both hold other pools.  (With one slot each and 32 slots,
   three flushes in four were evictions: two threads trading blocks of a
   dozen classes averaged 5 blocks a batch, and the owner's collection
   read a cold batch head for each.)  A thread's batches pin at most
   RC_REMOTE_SLOTS pools and RC_REMOTE_TOTAL bytes in all: with one batch a
   pool of up to RC_REMOTE_BYTES, a thread trading blocks of 8 B .. 16 KB
   with another could hold 2 MiB of them, which their owner could not
   reuse.  They go out when full, all of them past RC_REMOTE_TOTAL, every
   8th malloc slow path, and at thread exit. */
static void remote_add(rc_heap_t *h, rc_pool_t *p, rc_block_t *b)
{
    unsigned i = (unsigned)(((uintptr_t)p >> RC_POOL_SHIFT) % RC_REMOTE_SLOTS);
    rc_remote_t *r = &h->remote[i];
    if (r->pool != p && r->pool != NULL) {
        rc_remote_t *alt = &h->remote[i ^ 1];
        if (alt->pool == p || alt->pool == NULL) {
            i ^= 1;
            r = alt;
        }
    }
    if (r->pool != p) {
        if (r->pool)
            remote_flush(h, r);
        r->pool = p;
        r->tail = b;
        _rc_set_next(b, NULL);
        h->remote_used |= (uint64_t)1 << i;
    } else {
        _rc_set_next(b, r->head);
    }
    r->head = b;
    h->remote_bytes += p->block_size;
    if (++r->count >= RC_REMOTE_BATCH || r->count * p->block_size >= RC_REMOTE_BYTES) {
        remote_flush(h, r);
        h->remote_used &= ~((uint64_t)1 << i);
    }
    if (rc_unlikely(h->remote_bytes > RC_REMOTE_TOTAL))
        remote_flush_all(h);
}

void _rc_free_remote(rc_heap_t *h, rc_pool_t *p, rc_block_t *b)
{
    if (p->cls == RC_SPAN_CLASS) {   /* a span has no owner: whoever frees it */
        if (rc_unlikely((char *)b != p->end - p->block_size))
            _rc_free_invalid(b);
        _rc_span_free(h, p);
        return;
    }
    rc_heap_t *owner = atomic_load_explicit(&p->owner, memory_order_relaxed);
    if (rc_unlikely(owner == NULL))
        /* a pool no heap holds and no span: free in its arena, so this block
           (or the span it was part of) was freed already */
        _rc_fatal("rcmalloc: free(): double free or invalid pointer %p (its pool is free)\n",
                  (void *)b);
    if (rc_unlikely(!_rc_block_start(p, b)))
        _rc_free_invalid(b);
    if (h == &_rc_heap_empty || owner == RC_ABANDONED) {
        /* No heap (yet, or any more), or an abandoned pool: at once, not
           batched, so that a thread that frees what dead threads left (and
           may not allocate again for a while) does not keep their pools
           from going back. */
        _rc_set_next(b, NULL);
        remote_push(p, b, b, 1);
        return;
    }
    /* Batched back to the owner, or into an abandoned pool.  (Taking over
       an abandoned pool on the spot made the thread that frees what dead
       threads left the owner of thousands of nearly empty pools nobody
       else could use: a leak in effect.  Keeping the block in our class
       cache for reuse, as tcmalloc does, made two threads trading blocks
       25% faster but tripled their resident memory.  Measured, not
       adopted.) */
    remote_add(h, p, b);
}

/* ---- checks on the free path (alloc.h calls these out of line) ----------- */

_Noreturn void _rc_free_invalid(const void *ptr)
{
    const rc_pool_t *p = _rc_pool_of(ptr);
    _rc_fatal("rcmalloc: free(): invalid pointer %p (not the start of a block: "
              "inside the %u-byte blocks of the pool at %p)\n",
              ptr, (unsigned)p->block_size, (const void *)p);
}

/* A link decoded to an address no block has (internal.h): written over
   after its block was freed.  block is the free block that held it, or
   NULL when a fast path already handed that block out. */
_Noreturn void _rc_free_list_corrupt(const void *block, const void *link)
{
    if (block)
        _rc_fatal("rcmalloc: corrupted free list: the free block at %p links to %p, "
                  "not a block (written after free, or past the end of a block)\n",
                  block, link);
    _rc_fatal("rcmalloc: corrupted free list: a freed block's link decodes to %p, "
              "not a block (written after free, or past the end of a block)\n", link);
}

static bool list_holds(const rc_block_t *b, const void *ptr)
{
    _rc_link_check(NULL, b);
    for (; b; b = _rc_next(b))
        if ((const void *)b == ptr)
            return true;
    return false;
}

/* The block carries the free key: it was freed before and not handed out
   since -- or the program stored those very 8 bytes (1 in 2^64 for data it
   did not copy from a freed block).  Confirm by finding it where this thread
   can look safely: its class cache, its pool's free list if the pool is
   ours, its own remote batches.  Found: abort with one line.  Not found (a
   block another thread holds, or a coincidence): free it after all.  (Out of
   line and doing the free itself, so that the inlined fast path keeps no
   value alive across a call.) */
void _rc_free_suspect(void *ptr)
{
    rc_heap_t *h = _rc_heap_tls;
    rc_pool_t *p = _rc_pool_of(ptr);
    if (!_rc_block_start(p, ptr))
        _rc_free_invalid(ptr);
    bool found = false;
    if (h != &_rc_heap_empty) {
        if (p->cls < RC_NCLASSES)
            found = list_holds(h->cache[p->cls].head, ptr);
        for (unsigned i = 0; !found && i < RC_REMOTE_SLOTS; i++)
            if (h->remote[i].pool == p && h->remote[i].count)
                found = list_holds(h->remote[i].head, ptr);
        if (!found && atomic_load_explicit(&p->owner, memory_order_relaxed) == h) {
            heap_enter(h);
            found = list_holds(p->free, ptr);
            for (rc_pool_t *e = h->empty; !found && e; e = e->next)
                found = e == p;      /* a one-pool span, freed and kept */
            heap_leave(h);
        }
    }
    if (found)
        _rc_fatal("rcmalloc: free(): double free of %p (block of %u bytes)\n",
                  ptr, (unsigned)p->block_size);
    ((rc_block_t *)ptr)->key = 0;    /* a coincidence: free it after all */
    free_pool_block(ptr);
}

/* Every cached block back to its pool, every batch out (under the lock). */
static void flush_all(rc_heap_t *h)
{
    for (unsigned c = 0; c < RC_NCLASSES; c++) {
        rc_block_t *b = h->cache[c].head;
        h->cache[c].head = NULL;
        h->cache[c].count = 0;
        return_blocks(h, b);
    }
    remote_flush_all(h);             /* after the caches: they add to it */
    process_delayed(h);
}

/* Our caches back to the pools (malloc_trim, through _rc_heap_trim). */
void _rc_heap_flush_all(rc_heap_t *h)
{
    if (h == &_rc_heap_empty)
        return;
    heap_enter(h);
    flush_all(h);
    heap_leave(h);
}

static rc_heap_t *heap_for_thread(void)
{
    rc_heap_t *h = heap_new();
    if (h == NULL)
        return NULL;
    _rc_heap_tls = h;
    pthread_setspecific(_rc_heap_key, h);   /* may allocate: the heap is set */
    return h;
}

/* ---- slow paths ------------------------------------------------------------ */

/* Move a pool's free blocks to an empty class cache: all of them if they
   fit under the cache's limit, else the first `limit` (walking them: they
   are the next ones handed out, so this reads them early rather than
   twice).  Taking a long list whole would put the cache far over its
   limit, and the next free would hand almost all of it straight back,
   reading every block again (measured: a third of xthread's time went to
   that round trip). */
static void take_blocks(rc_cache_t *c, rc_pool_t *p)
{
    rc_block_t *head = p->free;
    uint32_t n = p->nfree;
    if (n > c->limit) {
        rc_block_t *last = head;
        for (uint32_t i = 1; i < c->limit; i++)
            last = _rc_next(last);
        p->free = _rc_next(last);
        _rc_set_next(last, NULL);
        n = c->limit;
    } else {
        p->free = NULL;
    }
    c->head = head;
    c->count += n;
    p->used += n;
    p->nfree -= n;
}

/* Of the first few pools of a class queue from p on, one with free blocks
   (after taking back what other threads freed into it), or NULL.  Looked
   for before the head pool carves a fresh page: blocks freed into the
   pools behind it (a cache's flush, other threads' frees) are reused
   first, so pools fill up rather than each keeping free blocks in pages
   it touched, and the emptiest ones can go back (measured: xthread's peak
   RSS 13% lower, xmalloc's 6%). */
static rc_pool_t *with_free_blocks(rc_pool_t *p)
{
    for (int n = 0; p && n < RC_QUEUE_LOOK; p = p->next, n++) {
        if (p->free == NULL)
            _rc_pool_collect(p);
        if (p->free)
            return p;
    }
    return NULL;
}

/* Under the heap lock: a pool of class cls with free blocks, its free list
   (up to the cache's limit) moved to the class cache. */
static bool refill(rc_heap_t *h, unsigned cls)
{
    if (h->remote_used && (++h->slow_ticks & 7) == 0)
        remote_flush_all(h);         /* don't sit on other threads' blocks for
                                        long, but let batches fill first */
    if (atomic_load_explicit(&h->delayed, memory_order_relaxed)) {
        process_delayed(h);
        if (h->cache[cls].head)
            return true;
    }

    rc_pool_t *p;
    while ((p = h->cur[cls]) != &_rc_pool_empty) {
        if (p->free)
            goto take;
        _rc_pool_collect(p);
        if (p->free)
            goto take;
        rc_pool_t *q = with_free_blocks(p->next);
        if (q) {
            queue_remove(h, q);
            queue_push_front(h, q);
            p = q;
            goto take;
        }
        if (_rc_pool_extend(p))
            goto take;
        if (_rc_pool_try_mark_full(p)) {
            queue_remove(h, p);
            full_push(h, p);
        }
    }
    if ((p = pool_fresh(h, cls)) == NULL)
        return false;
take:
    take_blocks(&h->cache[cls], p);
    return true;
}

/* The class cache is empty: refill it from a pool's free list. */
void *_rc_malloc_slow(rc_heap_t *h, unsigned cls)
{
    if (h == &_rc_heap_empty) {
        _rc_ensure_init();
        h = _rc_heap_tls;            /* init may have allocated, making one */
        if (h == &_rc_heap_empty && (h = heap_for_thread()) == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    rc_cache_t *c = &h->cache[cls];
    _rc_link_check(NULL, c->head);
    if (c->head == NULL) {
        heap_enter(h);
        bool ok = refill(h, cls);
        heap_leave(h);
        if (!ok) {
            errno = ENOMEM;
            return NULL;
        }
    }
    rc_block_t *b = c->head;
    c->head = _rc_next(b);
    c->count--;
    b->key = 0;
    return b;
}

/* ---- giving pools up: thread exit, idle heaps ------------------------------ */

static void abandon_list(rc_pool_t *p)
{
    while (p) {
        rc_pool_t *next = p->next;
        abandon_pool(p);
        p = next;
    }
}

/* Under h's lock: every pool h owns goes to the abandoned lists (or, empty,
   to its arena), for any heap to adopt.  h keeps its caches and remote
   batches, which count as used in their pools. */
static void heap_release_pools(rc_heap_t *h)
{
    /* 1. No remote free may reach h->delayed after this. */
    for (unsigned c = 0; c < RC_NCLASSES; c++)
        for (rc_pool_t *p = h->tail[c] ? h->cur[c] : NULL; p; p = p->next)
            _rc_pool_set_tag(p, RC_NEVER_DELAYED);
    for (rc_pool_t *p = h->full; p; p = p->next)
        _rc_pool_set_tag(p, RC_NEVER_DELAYED);

    /* 2. Blocks already handed over go back to their pools (all of them
       ours: only pools on our full list take delayed frees). */
    rc_block_t *b = atomic_exchange_explicit(&h->delayed, NULL, memory_order_acquire);
    while (b) {
        rc_block_t *next = _rc_next(b);
        rc_pool_t *p = _rc_pool_of(b);
        _rc_set_next(b, p->free);
        p->free = b;
        p->nfree++;
        p->used--;
        b = next;
    }

    /* 3. Empty pools to the arena, the rest to the abandoned lists. */
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

static bool heap_holds_pools(const rc_heap_t *h)
{
    if (h->full || h->empty || atomic_load_explicit(&h->delayed, memory_order_relaxed))
        return true;
    for (unsigned c = 0; c < RC_NCLASSES; c++)
        if (h->tail[c])
            return true;
    return false;
}

/* Under heap_lock: give up the pools of every other live heap whose thread
   has not been on a slow path since `before` (all of them: before == -1).
   (The slow paths stamp the coarse clock; counting them instead and
   calling a heap idle when its count had not moved between two scans a
   period apart let a heap idle since long before the first scan go
   unclaimed for a period more: a blocked producer's memory was reused only
   after consumers had carved more arenas, and the stamps cost nothing
   measurable since the class caches hold up to 2048 blocks.) */
static void release_idle_heaps(rc_heap_t *me, uint64_t before)
{
    for (rc_heap_t *h = heaps_all; h; h = h->next_all) {
        if (h == me || atomic_load_explicit(&h->last_ms, memory_order_relaxed) > before)
            continue;
        if (!heap_try_steal(h))
            continue;                   /* its thread is on a slow path: busy */
        if (h->live && heap_holds_pools(h)) {
            rc_track_quiet();
            heap_release_pools(h);
            rc_track_loud();
            __atomic_store_n(&n_taken_over, n_taken_over + 1, __ATOMIC_RELAXED);  /* heap_lock */
        }
        heap_leave(h);
    }
}

/* Under heap_lock and h's lock (stolen): unlink from h's queue of class
   cls every pool none of whose blocks is live -- all of them on
   thread_free, freed by other threads since h last looked (at most
   RC_RECLAIM_LOOK pools looked at, from the tail).  The first (got, if
   still NULL) becomes `me`'s, collected and on no list yet; the rest go to
   their arena, resident, for anyone. */
static rc_pool_t *reclaim_from(rc_heap_t *h, rc_heap_t *me, unsigned cls, rc_pool_t *got)
{
    /* Full pools others freed into come back to the queue first (their
       first block is on h->delayed: every block there is of h's own full
       pools, so return_blocks batches nothing for other heaps). */
    if (atomic_load_explicit(&h->delayed, memory_order_relaxed))
        process_delayed(h);
    /* From the tail: pools come back there from the full list, while the
       head is where h is allocating. */
    rc_pool_t *p = h->tail[cls];
    for (int n = 0; p && n < RC_RECLAIM_LOOK; n++) {
        rc_pool_t *next = p->prev;
        if (p->used == _rc_pool_remote_count(p)) {
            queue_remove(h, p);
            _rc_pool_collect(p);
            if (got == NULL) {
                got = p;
                atomic_store_explicit(&p->owner, me, memory_order_release);
            } else {
                pool_release(p);
            }
            __atomic_store_n(&n_reclaimed, n_reclaimed + 1, __ATOMIC_RELAXED);  /* heap_lock */
        }
        p = next;
    }
    return got;
}

/* Before a heap carves a fresh pool of class cls: the pools of that class
   that other threads have emptied in other heaps' queues.  A thread that
   frees what another allocated empties that thread's pools onto their
   thread_free lists, and there the blocks stay until the owner next
   refills that class; while it does not (descheduled, blocked, busy with
   other sizes) they are free memory nobody can use, and the thread that
   freed them carves more.  (rptest, two threads trading blocks of 8 B ..
   16 KB on one CPU: at its peak of 558 pools in use, 21 MB of blocks sat
   on thread_free, most in pools with no live block.)  Up to
   RC_RECLAIM_HEAPS other heaps are looked at, round the list from where
   the last look stopped, each only if its thread is not on a slow path
   (its lock taken as steal_idle does); their emptied pools are taken
   whatever their threads are doing: with no live block they cost them
   nothing but collecting them themselves. */
static rc_pool_t *reclaim_free(rc_heap_t *me, unsigned cls)
{
    if (__atomic_load_n(&n_heaps, __ATOMIC_RELAXED) < 2)
        return NULL;
    pthread_mutex_lock(&heap_lock);
    rc_pool_t *got = NULL;
    rc_heap_t *h = reclaim_next ? reclaim_next : heaps_all;
    for (int n = 0; n < RC_RECLAIM_HEAPS && n < (int)n_heaps; n++) {
        if (h != me && heap_try_steal(h)) {
            got = reclaim_from(h, me, cls, got);
            heap_leave(h);
        }
        h = h->next_all ? h->next_all : heaps_all;
    }
    reclaim_next = h;
    pthread_mutex_unlock(&heap_lock);
    if (got == NULL)
        return NULL;
    if (got->free == NULL)
        _rc_pool_extend(got);           /* no block live, none freed: some left to carve */
    queue_push_front(me, got);
    return got;
}

/* A thread about to carve a fresh pool first takes the pools of heaps whose
   threads have not been on a slow path (refilling or flushing a cache) for
   a whole idle period (RC_IDLE_MS, or RCMALLOC_PURGE_DELAY_MS if shorter):
   blocked, idle, or living on their caches.  At most one scan per period,
   process-wide.  So what other
   threads freed into an idle thread's pools is reused before any fresh
   pool is carved, once that thread has been idle a period.  The idle
   thread keeps its caches; its next refill adopts or carves like any
   other. */
static void steal_idle(rc_heap_t *me)
{
    static _Atomic uint64_t last_scan;
    if (_rc_opt.purge_delay_ms < 0)
        return;
    uint64_t delay = (uint64_t)_rc_opt.purge_delay_ms;
    if (delay > RC_IDLE_MS)
        delay = RC_IDLE_MS;
    uint64_t now = _rc_now_ms(), last = atomic_load_explicit(&last_scan, memory_order_relaxed);
    if (now - last < delay || !atomic_compare_exchange_strong(&last_scan, &last, now))
        return;
    if (pthread_mutex_trylock(&heap_lock) != 0)
        return;
    release_idle_heaps(me, now - delay);
    pthread_mutex_unlock(&heap_lock);
}

/* malloc_trim: our caches back to our pools, and every other thread's pools
   (not its caches) abandoned, so that what was freed into them is reusable
   by anyone and their empty pools go back to the arenas now. */
void _rc_heap_trim(rc_heap_t *me)
{
    _rc_heap_flush_all(me);
    pthread_mutex_lock(&heap_lock);
    release_idle_heaps(me, (uint64_t)-1);
    pthread_mutex_unlock(&heap_lock);
}

void _rc_heap_thread_done(void *arg)
{
    rc_heap_t *h = arg;
    if (h == NULL || h == &_rc_heap_empty)
        return;
    _rc_heap_tls = &_rc_heap_empty;  /* later frees take the remote path */
    rc_track_quiet();
    heap_enter(h);
    h->live = false;
    flush_all(h);                    /* cached blocks back, ours and others' */
    heap_release_pools(h);
    heap_leave(h);
    rc_track_loud();
    heap_free(h);
}
