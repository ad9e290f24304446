/*
 * arena.c -- arenas (4 MiB, mapped from the OS at 4 MiB alignment), the
 * pools they are split into, and the pagemap that says which addresses are
 * arenas.  Main entry points: _rc_arena_pool_acquire / _rc_arena_pool_release.
 *
 * Everything here runs under one lock: pools are handed out 64 KiB at a
 * time, so a thread takes this lock once per pool, not once per block.
 *
 * Invariants (under arena_lock):
 *   - an arena is on `arenas` from map to unmap; its pagemap byte is 1
 *     exactly while it is mapped;
 *   - free_mask has bit i set iff pool i is free (bit 0, the header, never);
 *     nfree == popcount(free_mask);
 *   - dirty_new and dirty_old are disjoint subsets of free_mask: free pools
 *     that may be resident, freed in this decay period or the one before;
 *     dirty_pools == sum of popcount(dirty_new | dirty_old) over arenas;
 *   - a pool not in free_mask is owned by a heap or on the abandoned list.
 */
#define _GNU_SOURCE 1   /* PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define ALL_POOLS (~(uint64_t)1)   /* pools 1..63 */

/* The pagemap lives in .bss: its address is a link-time constant, so the
   free fast path reads its byte without first loading a pointer, and it is
   valid (all "not ours") before initialisation.  32 MiB of address space;
   only the pages covering arenas are ever written, so only they become
   resident. */
uint8_t _rc_pagemap[RC_PAGEMAP_SIZE];
uint8_t  _rc_map_value = RC_MAP_FAST;

/* Adaptive: a thread that finds it taken spins briefly before it sleeps.
   Held for a few hundred nanoseconds at a time, it was a futex sleep and
   wake for two threads taking pools in turn, and the woken thread was
   often moved to the waker's CPU. */
static rc_lock_t arena_lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
static rc_arena_t *arenas;            /* all mapped arenas */
static rc_arena_t *hint;              /* an arena that probably has free pools */
static size_t n_arenas;
static size_t dirty_pools;            /* free but maybe resident */
static size_t pools_used, peak_pools_used;
static size_t recent_peak, period_peak; /* most pools in use last period, this one */
static size_t arenas_unmapped;        /* ever, for stats */

/* Bits set in m.  Not __builtin_popcountll: without -mpopcnt (not in the
   x86-64 baseline) that calls libgcc's __popcountdi2, which the linker puts
   at the far end of our text, so the first call faults in a window of code
   nothing else uses (measured: 28 KiB of RSS in every process). */
static size_t popcount(uint64_t m)
{
    m = m - ((m >> 1) & 0x5555555555555555ull);
    m = (m & 0x3333333333333333ull) + ((m >> 2) & 0x3333333333333333ull);
    m = (m + (m >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (size_t)((m * 0x0101010101010101ull) >> 56);
}

static void drain_deferred(void);

/* Every holder of the arena lock first gives back the pools whose release
   was deferred because the lock was busy (see _rc_arena_span_release). */
static void lock_arena(void)
{
    pthread_mutex_lock(&arena_lock);
    drain_deferred();
}

void _rc_arena_lock(void)   { lock_arena(); }
void _rc_arena_unlock(void) { pthread_mutex_unlock(&arena_lock); }

void _rc_arena_fork_child(void)
{
    arena_lock = (rc_lock_t)PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
}

/* A new arena from the OS, set up but not yet listed: called without the
   lock (an mmap, and the first touch of its header, took other threads'
   pool requests to a futex sleep). */
static rc_arena_t *arena_map(void)
{
    rc_arena_t *a = _rc_os_map_aligned(RC_ARENA_SIZE, RC_ARENA_SIZE);
    if (a == NULL)
        return NULL;
    if ((uintptr_t)a >> RC_ADDR_BITS) {     /* 5-level paging gave us a high address */
        _rc_os_unmap(a, RC_ARENA_SIZE);
        return NULL;
    }
    /* A fresh mapping is zero: dirty_new, dirty_old (nothing resident) and
       span_tail start so.  (Not stored again: GCC would pair the stores
       with free_mask's into one vector store from a constant in .rodata,
       the only read of .rodata a running program would make.) */
    a->free_mask = ALL_POOLS;
    a->nfree = RC_POOLS_PER_ARENA - 1;
    a->prev = NULL;
    return a;
}

/* Under the lock: a mapped arena joins the list and the pagemap. */
static void arena_insert(rc_arena_t *a)
{
    a->next = arenas;
    if (arenas)
        arenas->prev = a;
    arenas = a;
    n_arenas++;
    __atomic_store_n(&_rc_pagemap[(uintptr_t)a >> RC_ARENA_SHIFT], _rc_map_value, __ATOMIC_RELEASE);
}

static void arena_unmap(rc_arena_t *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        arenas = a->next;
    if (a->next)
        a->next->prev = a->prev;
    if (hint == a)
        hint = arenas;
    dirty_pools -= popcount(a->dirty_new | a->dirty_old);
    n_arenas--;
    arenas_unmapped++;
    __atomic_store_n(&_rc_pagemap[(uintptr_t)a >> RC_ARENA_SHIFT], 0, __ATOMIC_RELEASE);
    _rc_os_unmap(a, RC_ARENA_SIZE);
}

static rc_pool_t *pool_at(rc_arena_t *a, unsigned i)
{
    return (rc_pool_t *)((char *)a + (size_t)i * RC_POOL_SIZE);
}

static rc_arena_t *arena_of(const rc_pool_t *pool)
{
    return (rc_arena_t *)((uintptr_t)pool & ~(uintptr_t)(RC_ARENA_SIZE - 1));
}

static unsigned pool_index(const rc_arena_t *a, const rc_pool_t *pool)
{
    return (unsigned)(((uintptr_t)pool - (uintptr_t)a) >> RC_POOL_SHIFT);
}

/* Bit i set iff pools i .. i+n-1 are all in `mask`. */
static uint64_t runs_of(uint64_t mask, unsigned n)
{
    uint64_t r = mask;
    for (unsigned k = 1; k < n && r; k++)
        r &= mask >> k;
    return r;
}

static uint64_t run_bits(unsigned i, unsigned n)
{
    return (n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1)) << i;
}

/* Take pools i .. i+n-1 of `a` out of its free mask; returns which of them
   were resident, relative to i. */
static uint64_t take_locked(rc_arena_t *a, unsigned i, unsigned n)
{
    uint64_t bits = run_bits(i, n);
    uint64_t warm = (a->dirty_new | a->dirty_old) & bits;
    dirty_pools -= popcount(warm);
    a->free_mask &= ~bits;
    a->dirty_new &= ~bits;
    a->dirty_old &= ~bits;
    a->nfree -= n;
    pools_used += n;
    if (pools_used > peak_pools_used)
        peak_pools_used = pools_used;
    if (pools_used > period_peak)
        period_peak = pools_used;
    if (pools_used > recent_peak)
        recent_peak = pools_used;
    return warm >> i;
}

/* Where a run of n > 1 pools may start to be aligned like a buddy block:
   at a multiple of n rounded up to a power of two.  Runs placed so, when
   freed, fit the next request of their size exactly; runs placed anywhere
   drift by a pool at each reuse and leave half-used pools resident on both
   sides (measured: a ring of growing buffers touched every pool of its
   arena in full). */
static uint64_t aligned_starts(unsigned n)
{
    if (n <= 1)
        return ~(uint64_t)0;
    size_t k = _rc_pow2_above(n - 1);                   /* n rounded up to 2^j */
    /* one bit every k: 0x5555.. for 2, 0x1111.. for 4, ...  (Arithmetic, not
       a switch: GCC would make that a table in .rodata, see options.c.) */
    return k >= 64 ? 1 : ~(uint64_t)0 / (((uint64_t)1 << k) - 1);
}

/* n free pools in a row (a span when n > 1), preferring resident ones
   (reusing them costs no page faults), then buddy-aligned ones, and, among
   arenas, the first with room. */
rc_pool_t *_rc_arena_span_acquire(unsigned n)
{
    lock_arena();
    rc_arena_t *a = hint;
    uint64_t fit = (a && a->nfree >= n) ? runs_of(a->free_mask, n) : 0;
    if (a && dirty_pools >= n && (fit & runs_of(a->dirty_new | a->dirty_old, n)) == 0) {
        /* resident free pools elsewhere: use them before touching clean
           ones here (else a program that frees a phase's pools in one arena
           and carves the next phase's in another holds both) */
        for (rc_arena_t *b = arenas; b; b = b->next)
            if (b != a && b->nfree >= n &&
                (runs_of(b->free_mask, n) & runs_of(b->dirty_new | b->dirty_old, n))) {
                a = b;
                fit = runs_of(b->free_mask, n);
                break;
            }
    }
    if (fit == 0) {
        for (a = arenas; a; a = a->next)
            if (a->nfree >= n && (fit = runs_of(a->free_mask, n)) != 0)
                break;
    }
    if (a == NULL) {
        pthread_mutex_unlock(&arena_lock);
        rc_arena_t *fresh = arena_map();
        lock_arena();
        if (fresh == NULL) {
            pthread_mutex_unlock(&arena_lock);
            return NULL;
        }
        arena_insert(fresh);            /* others may have freed pools since: */
        a = fresh;                      /* the fresh one serves all the same */
        fit = runs_of(a->free_mask, n);
    }
    if (n == 1)
        hint = a;
    uint64_t warm = fit & runs_of(a->dirty_new | a->dirty_old, n);
    uint64_t al = aligned_starts(n);
    uint64_t pick = (warm & al) ? warm & al : warm ? warm : (fit & al) ? fit & al : fit;
    unsigned i = (unsigned)__builtin_ctzll(pick);
    uint64_t was = take_locked(a, i, n);
    if (n > 1)
        a->span_tail |= run_bits(i + 1, n - 1);
    rc_pool_t *pool = pool_at(a, i);
    pool->in_use = 1;
    pool->resident = was;
    pthread_mutex_unlock(&arena_lock);
    return pool;
}

rc_pool_t *_rc_arena_pool_acquire(void)
{
    return _rc_arena_span_acquire(1);
}

/* Grow the span at `pool` from n to m pools in place, if the pools after it
   are free.  False if not (the span is unchanged). */
bool _rc_arena_span_grow(rc_pool_t *pool, unsigned n, unsigned m)
{
    rc_arena_t *a = arena_of(pool);
    unsigned i = pool_index(a, pool);
    if (i + m > RC_POOLS_PER_ARENA)
        return false;
    lock_arena();
    uint64_t more = run_bits(i + n, m - n);
    bool ok = (a->free_mask & more) == more;
    if (ok) {
        pool->resident |= take_locked(a, i + n, m - n) << n;
        a->span_tail |= more;
    }
    pthread_mutex_unlock(&arena_lock);
    return ok;
}
/* madvise the free pools in `mask` of arena `a` away, coalescing runs. */
static size_t decommit(rc_arena_t *a, uint64_t mask)
{
    size_t bytes = 0;
    dirty_pools -= popcount(mask);
    while (mask) {
        unsigned i = (unsigned)__builtin_ctzll(mask);
        unsigned j = i;
        while (j + 1 < RC_POOLS_PER_ARENA && (mask >> (j + 1)) & 1)
            j++;
        size_t len = (size_t)(j - i + 1) * RC_POOL_SIZE;
        _rc_os_decommit(pool_at(a, i), len);
        bytes += len;
        mask &= ~run_bits(i, j - i + 1);
    }
    return bytes;
}

/* Return free pools to the OS: the old generation only, or (all) every one;
   then unmap wholly free arenas with nothing left resident, keeping one. */
static size_t purge_locked(bool all)
{
    size_t bytes = 0;
    for (rc_arena_t *a = arenas, *next; a; a = next) {
        next = a->next;
        bytes += decommit(a, all ? (a->dirty_old | a->dirty_new) : a->dirty_old);
        a->dirty_old = all ? 0 : a->dirty_new;
        a->dirty_new = 0;
        if (a->nfree == RC_POOLS_PER_ARENA - 1 && a->dirty_old == 0 && n_arenas > 1)
            arena_unmap(a);
    }
    return bytes;
}

/* Decommit free pools until at most `target` stay resident: those freed
   longest ago first, and in each arena the highest (pools are handed out
   lowest first, so those are the least likely to be wanted next).  Down to
   half the limit, so a program hovering at it does not madvise at every
   release. */
static void purge_down_to(size_t target)
{
    for (int gen = 0; gen < 2; gen++) {
        for (rc_arena_t *a = arenas; a && dirty_pools > target; a = a->next) {
            uint64_t *set = gen == 0 ? &a->dirty_old : &a->dirty_new;
            uint64_t m = *set, take = 0;
            size_t n = 0;
            while (m && dirty_pools - n > target) {
                uint64_t top = (uint64_t)1 << (63 - __builtin_clzll(m));
                take |= top;
                m &= ~top;
                n++;
            }
            decommit(a, take);
            *set &= ~take;
        }
    }
}

/* Free pools kept resident, beyond which the excess goes back at once:
   what keeps pools in use + free resident pools within an eighth above the
   most pools in use during this decay period and the last (at least
   RC_DIRTY_MIN), and never more than RCMALLOC_RETAIN bytes.  So a program
   whose use swings up and down keeps its pools warm without raising its
   peak RSS, while pools freed for good (a thread's, a phase's) do not add
   to the peak of whatever the program does next. */
static size_t dirty_limit(void)
{
    size_t peak = recent_peak > pools_used ? recent_peak : pools_used;
    size_t lim = peak + peak / RC_DIRTY_FRACTION - pools_used;
    if (lim < RC_DIRTY_MIN)
        lim = RC_DIRTY_MIN;
    size_t cap = (size_t)_rc_opt.retain / RC_POOL_SIZE;
    return lim < cap ? lim : cap;
}

/* Decay: a pool freed to its arena stays resident (and is reused first)
   for one to two RCMALLOC_PURGE_DELAY_MS periods, then goes back to the OS
   at the next pool event; more than RCMALLOC_RETAIN bytes of free pools go
   back at once.  No background thread: an idle program keeps what it has
   until malloc_trim. */
static uint64_t decay_locked(void)
{
    static uint64_t last_tick;
    size_t limit = dirty_limit();
    if (dirty_pools > limit) {
        purge_down_to(limit / 2);
        return 0;
    }
    if (_rc_opt.purge_delay_ms < 0)
        return 0;
    uint64_t now = _rc_now_ms();
    if (now - last_tick >= (uint64_t)_rc_opt.purge_delay_ms) {
        last_tick = now;
        recent_peak = period_peak;
        period_peak = pools_used;
        purge_locked(false);
        return now;
    }
    return 0;
}

/* After the arena lock is let go: a decay period ended (decay_locked
   returned its time), so the large side's cached huge block is looked at
   too -- a program that frees a huge buffer and then only makes small
   requests still gets that memory back (large.c). */
static void decay_unlock(void)
{
    uint64_t now = decay_locked();
    pthread_mutex_unlock(&arena_lock);
    if (now)
        _rc_large_decay(now);
}

/* Pools i .. i+n-1 of `a` back to its free mask; those in `warm` may be
   resident (dirty), the rest were never touched since they were clean. */
static void give_locked(rc_arena_t *a, unsigned i, unsigned n, uint64_t warm)
{
    uint64_t bits = run_bits(i, n);
    warm &= bits;
    a->span_tail &= ~bits;
    a->free_mask |= bits;
    a->dirty_new |= warm;
    a->nfree += n;
    dirty_pools += popcount(warm);
    pools_used -= n;
    if (hint == NULL || hint->nfree == 0)
        hint = a;
}

/* The last n - m pools of the span at `pool` back to the arena (m >= 1; all
   n of them through _rc_arena_span_release). */
void _rc_arena_span_shrink(rc_pool_t *pool, unsigned n, unsigned m)
{
    rc_arena_t *a = arena_of(pool);
    lock_arena();
    unsigned i = pool_index(a, pool);
    give_locked(a, i + m, n - m, run_bits(i + m, n - m));
    pool->resident &= run_bits(0, m);
    decay_unlock();
}

/* Releases that found the lock busy: a lock-free stack of pools (linked
   through pool->next, the run's length in pool->nfree, its resident pools
   in pool->resident), emptied whole by the next holder of the lock.  So a
   thread freeing spans another thread allocates (a buffer handed to a
   writer thread) never waits for the lock: two threads taking turns at it
   cost a futex wake and sleep each time (measured: spanx spent 0.7 s of
   1 s in the kernel). */
static _Atomic(rc_pool_t *) deferred;

static void release_locked(rc_pool_t *pool, unsigned n, uint64_t warm_rel)
{
    rc_arena_t *a = arena_of(pool);
    unsigned i = pool_index(a, pool);
    /* A pool given back twice would be handed out twice: stop here, where
       it happens (two bit tests on a slow path), not at the overlap. */
    if (rc_unlikely(!pool->in_use || (a->free_mask & run_bits(i, n))))
        _rc_fatal("rcmalloc: internal error: pool %p given back to its arena twice\n",
                  (void *)pool);
    pool->in_use = 0;
    give_locked(a, i, n, warm_rel << i);
}

static void drain_deferred(void)
{
    if (atomic_load_explicit(&deferred, memory_order_relaxed) == NULL)
        return;
    rc_pool_t *p = atomic_exchange_explicit(&deferred, NULL, memory_order_acquire);
    while (p) {
        rc_pool_t *next = p->next;
        release_locked(p, p->nfree, p->resident);
        p = next;
    }
}

/* A span's pools, or one pool (n == 1), back to the arena: the first
   `touched` may be resident, and whichever were when taken. */
void _rc_arena_span_release(rc_pool_t *pool, unsigned n, unsigned touched)
{
    uint64_t warm = run_bits(0, touched) | (n > 1 ? pool->resident : 0);
    if (pthread_mutex_trylock(&arena_lock) != 0) {
        pool->nfree = n;
        pool->resident = warm;
        rc_pool_t *head = atomic_load_explicit(&deferred, memory_order_relaxed);
        do {
            pool->next = head;
        } while (!atomic_compare_exchange_weak_explicit(&deferred, &head, pool,
                     memory_order_release, memory_order_relaxed));
        return;
    }
    drain_deferred();
    release_locked(pool, n, warm);
    decay_unlock();
}

void _rc_arena_pool_release(rc_pool_t *pool)
{
    _rc_arena_span_release(pool, 1, 1);
}

size_t _rc_arena_purge(bool all)
{
    lock_arena();
    size_t before = n_arenas;
    size_t bytes = purge_locked(all);
    bytes += (before - n_arenas) * RC_ARENA_SIZE;
    pthread_mutex_unlock(&arena_lock);
    return bytes;
}

void _rc_arena_walk(void (*cb)(const rc_pool_t *pool, void *arg), void *arg)
{
    lock_arena();
    for (rc_arena_t *a = arenas; a; a = a->next) {
        uint64_t used = ~(a->free_mask | a->span_tail) & ALL_POOLS;
        while (used) {
            unsigned i = (unsigned)__builtin_ctzll(used);
            used &= used - 1;
            cb(pool_at(a, i), arg);
        }
    }
    pthread_mutex_unlock(&arena_lock);
}

void _rc_arena_counts(size_t *mapped, size_t *unmapped_total, size_t *used,
                      size_t *dirty, size_t *peak)
{
    lock_arena();
    *mapped = n_arenas;
    *unmapped_total = arenas_unmapped;
    *used = pools_used;
    *dirty = dirty_pools;
    *peak = peak_pools_used;
    pthread_mutex_unlock(&arena_lock);
}
