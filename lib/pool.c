/*
 * pool.c -- one pool: its blocks, its free lists, and the lock-free hand-off
 * of blocks freed by other threads.  Main entry points: _rc_pool_init,
 * _rc_pool_extend (carve), _rc_pool_collect, _rc_pool_free_remote.
 *
 * Invariants:
 *   - pool->free, used, bump are touched only by the owning thread (or, for
 *     an abandoned pool, by the one thread that adopts it);
 *   - used == blocks handed out - blocks returned to pool->free; a block on
 *     thread_free or on the owner's delayed list still counts as used, so
 *     used == 0 means no block of the pool is live anywhere;
 *   - thread_free's low two bits are the delayed-free tag; the rest is the
 *     head of a list of remotely freed blocks linked through block->next.
 */
#include "internal.h"
#include "track.h"

#include <sched.h>

void _rc_pool_init(rc_pool_t *pool, unsigned cls)
{
    uint32_t bs = _rc_class_size[cls];
    char *data = (char *)pool + RC_POOL_HEADER;
    size_t room = RC_POOL_SIZE - RC_POOL_HEADER;
    if (rc_unlikely(_rc_checked & RC_CHECK_SECURE))
        room -= _rc_secure_guard(pool);   /* its last page: no block there */
    size_t n = room / bs;
    pool->free = NULL;
    pool->nfree = 0;
    pool->used = 0;
    pool->block_size = bs;
    pool->magic = 0xFFFFFFFFu / bs + 1;
    pool->bump = data;
    pool->end = data + n * bs;
    pool->next = pool->prev = NULL;
    pool->cls = (uint8_t)cls;
    if (_rc_checked)
        rc_track_noaccess(data, (size_t)(pool->end - data));
    pool->in_full = 0;
    atomic_store_explicit(&pool->thread_free, RC_NO_DELAYED, memory_order_relaxed);
}

/* Carve never-used blocks onto the free list, at least one and up to a
   page boundary (RC_CARVE_BYTES).  Carving lazily keeps a fresh pool's
   untouched pages out of RSS.  Returns false when the pool has nothing left
   to carve. */
bool _rc_pool_extend(rc_pool_t *pool)
{
    char *b = pool->bump;
    if (b >= pool->end)
        return false;
    size_t bs = pool->block_size;
    /* up to the end of the page the first block ends in: the blocks carved
       are the ones the program is about to touch, and a pool used only a
       little (most classes in most programs) costs one page, header and all */
    uintptr_t stop = ((uintptr_t)b + bs + RC_CARVE_BYTES - 1) & ~(uintptr_t)(RC_CARVE_BYTES - 1);
    size_t n = (size_t)(stop - (uintptr_t)b) / bs;
    size_t left = (size_t)(pool->end - b) / bs;
    if (rc_unlikely(_rc_checked & RC_CHECK_SECURE))
        n = left;   /* all at once: more blocks for secure.c to pick from */
    if (n > left)
        n = left;
    char *last = b + (n - 1) * bs;
    uintptr_t key = _rc_link_key;   /* a local: the stores could alias it */
    for (char *p = b; p < last; p += bs)
        ((rc_block_t *)p)->link = (uintptr_t)(p + bs) ^ key;
    _rc_set_next((rc_block_t *)last, pool->free);
    pool->free = (rc_block_t *)b;
    pool->nfree += (uint32_t)n;
    pool->bump = last + bs;
    return true;
}

/* The blocks of a chain of batches from head (each batch head's second
   word records its tail and size: _rc_pool_free_remote): their number, and
   the chain's last block in *last.  Two blocks read per batch, not every
   block: those blocks were last written on another core. */
static inline uint32_t batch_chain(rc_block_t *head, rc_block_t **last)
{
    rc_block_t *tail;
    uint32_t n = 0;
    for (rc_block_t *b = head;; b = _rc_next(tail)) {
        uintptr_t info = ((uintptr_t *)b)[1];
        tail = _rc_link_dec(info & ~RC_BATCH_MASK);
        _rc_link_check(b, tail);
        n += (uint32_t)(info & RC_BATCH_MASK) + 1;
        if (_rc_next(tail) == NULL)
            break;
    }
    *last = tail;
    return n;
}

/* Blocks on the pool's thread_free, counted under its owner's lock (heap.c:
   nobody collects them meanwhile, and pushes only put batches in front of
   the head read here). */
uint32_t _rc_pool_remote_count(rc_pool_t *pool)
{
    uintptr_t tf = atomic_load_explicit(&pool->thread_free, memory_order_acquire);
    rc_block_t *head = (rc_block_t *)(tf & ~RC_TAG_MASK), *tail;
    return head ? batch_chain(head, &tail) : 0;
}

/* Move every block other threads freed onto the owner's free list. */
void _rc_pool_collect(rc_pool_t *pool)
{
    uintptr_t tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
    do {
        if ((tf & ~RC_TAG_MASK) == 0)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&pool->thread_free, &tf,
                 tf & RC_TAG_MASK, memory_order_acquire, memory_order_relaxed));

    rc_block_t *head = (rc_block_t *)(tf & ~RC_TAG_MASK), *tail;
    uint32_t n = batch_chain(head, &tail);
    _rc_set_next(tail, pool->free);
    pool->free = head;
    pool->nfree += n;
    pool->used -= n;
}

/* Set the tag (keeping the list), waiting while a remote free is in the
   middle of handing a block to the owner's delayed list. */
void _rc_pool_set_tag(rc_pool_t *pool, uintptr_t tag)
{
    uintptr_t tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
    for (;;) {
        if ((tf & RC_TAG_MASK) == RC_DELAYING) {
            sched_yield();
            tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
            continue;
        }
        if ((tf & RC_TAG_MASK) == tag)
            return;
        if (atomic_compare_exchange_weak_explicit(&pool->thread_free, &tf,
                (tf & ~RC_TAG_MASK) | tag, memory_order_acq_rel, memory_order_relaxed))
            return;
    }
}

/* The pool has no free block and nothing to carve: tag it so that the next
   remote free tells the owner.  Fails (returns false) if remote frees are
   already waiting: the caller collects them instead. */
bool _rc_pool_try_mark_full(rc_pool_t *pool)
{
    uintptr_t tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
    for (;;) {
        if (tf & ~RC_TAG_MASK)
            return false;
        if ((tf & RC_TAG_MASK) == RC_DELAYING) {
            sched_yield();
            tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&pool->thread_free, &tf,
                RC_USE_DELAYED, memory_order_acq_rel, memory_order_relaxed))
            return true;
    }
}

/* A batch of n (1..RC_REMOTE_BATCH) blocks head..tail, linked, freed by a
   thread that does not own the pool: no lock, one CAS (two more, rarely, to
   wake an owner whose pool was full).  The head's second word records the
   batch's tail and n - 1 (blocks are 16-byte aligned and at least 16 bytes
   long), so _rc_pool_collect can hop from batch to batch. */
uintptr_t _rc_pool_free_remote(rc_pool_t *pool, rc_block_t *head, rc_block_t *tail, uint32_t n)
{
    ((uintptr_t *)head)[1] = _rc_link_enc(tail) | (n - 1);   /* key: low bits clear */
    uintptr_t tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
    uintptr_t ntf;
    bool delayed;
    do {
        delayed = (tf & RC_TAG_MASK) == RC_USE_DELAYED;
        if (delayed) {
            ntf = (tf & ~RC_TAG_MASK) | RC_DELAYING;
        } else {
            _rc_set_next(tail, (rc_block_t *)(tf & ~RC_TAG_MASK));
            ntf = (uintptr_t)head | (tf & RC_TAG_MASK);
        }
    } while (!atomic_compare_exchange_weak_explicit(&pool->thread_free, &tf, ntf,
                 memory_order_seq_cst, memory_order_relaxed)); /* see abandoned_freed */
    if (!delayed)
        return tf & RC_TAG_MASK;

    /* The tag was USE_DELAYED, so the pool sits on its owner's full list and
       the owner cannot abandon it until we leave the DELAYING state. */
    rc_heap_t *heap = atomic_load_explicit(&pool->owner, memory_order_acquire);
    rc_block_t *old = atomic_load_explicit(&heap->delayed, memory_order_relaxed);
    do {
        _rc_set_next(tail, old);
    } while (!atomic_compare_exchange_weak_explicit(&heap->delayed, &old, head,
                 memory_order_release, memory_order_relaxed));

    tf = atomic_load_explicit(&pool->thread_free, memory_order_relaxed);
    do {
        ntf = (tf & ~RC_TAG_MASK) | RC_NO_DELAYED;
    } while (!atomic_compare_exchange_weak_explicit(&pool->thread_free, &tf, ntf,
                 memory_order_release, memory_order_relaxed));
    return RC_USE_DELAYED;
}
