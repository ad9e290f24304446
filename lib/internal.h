/*
 * internal.h -- types, invariants and cross-file prototypes of the rcmalloc
 * core.  Every struct is here, with the code that relies on each field.
 *
 * ==========================================================================
 * Theory of operation
 * ==========================================================================
 *
 *   program ──malloc/free/new/delete──▶ override.c ──▶ alloc.c
 *                                                        │
 *             size <= rc_small_max (default 32704) ◀─────┴────▶ larger: up to
 *                         │                                     1 MiB a span,
 *                         ▼                                     beyond (or odd
 *   heap.c: the calling thread's heap (initial-exec TLS)        alignment):
 *     cache[class]: free blocks, LIFO  ◀─ alloc.h fast     large.c: jemalloc
 *        │ refill: a pool's whole         paths (no lock,   mallocx/rallocx/
 *        │ free list; flush: half back    no atomic)        sdallocx/sallocx/
 *        ▼                                                  xallocx only
 *     cur[class] ─▶ pool ─▶ free list of blocks      span.c: one block in a
 *                         │                          run of 1..17 whole pools
 *                         ▼                                    │
 *   arena.c: 4 MiB arenas mmap'ed at 4 MiB alignment,
 *            split into 64 KiB pools, handed out under
 *            one lock; the pagemap says which 4 MiB
 *            of address space are arenas.
 *
 * Size classes (sizeclass.c).  16-byte spacing up to 128, then four classes
 * per power of two up to 8192 (RC_TABLE_LIMIT: found by a table lookup on
 * the fast path), then six "pool-fraction" classes, the largest multiples
 * of 16 of which 7, 6, 5, 4, 3 and 2 fill a pool (found by a short search,
 * off the fast path), up to RC_SMALL_LIMIT:
 *
 *     request bytes     block size        class index
 *     0 .. 16           16                0
 *     17 .. 32          32                1
 *     ...               ... (+16)         ...
 *     113 .. 128        128               7
 *     129 .. 160        160               8
 *     ...               192 224 256 320 384 448 512 640 768 896 1024 ...
 *     7169 .. 8192      8192              31
 *     8193 .. 9344      9344 (7 a pool)   32
 *     ...               10896 13072 16352 21792 (6, 5, 4, 3 a pool)
 *     21793 .. 32704    32704 (2 a pool)  37
 *
 * Without the pool-fraction classes every block of 8 .. 32 KiB was a span
 * of a whole pool: a 9 KiB block held 64 KiB, whose pages filled in as the
 * pool was reused for other sizes (rpmalloc's benchmark, sizes to 16000
 * bytes, peaked at 1.8x the best peer's RSS), and each went through the
 * arena lock.  As pool blocks they are cached per thread and freed across
 * threads in batches like any other.
 *
 * Every block size is a multiple of 16, so every block is 16-byte aligned;
 * a request with alignment A <= 128 is served from the first class whose
 * size is a multiple of A (pool data starts 128 bytes into the pool).
 *
 * An arena, 4 MiB, aligned to 4 MiB:
 *
 *   +-----------+-----------+-----------+-- ... --+-----------+
 *   | pool 0:   | pool 1    | pool 2    |         | pool 63   |
 *   | rc_arena  |           |           |         |           |
 *   | header    |           |           |         |           |
 *   +-----------+-----------+-----------+-- ... --+-----------+
 *
 * Pool 0 only holds the arena header (the rest of it is never touched, so it
 * costs address space, not memory).  A pool, 64 KiB, aligned to 64 KiB:
 *
 *   +-------------------+---------+---------+---------+-----+-------------+
 *   | rc_pool header    | block 0 | block 1 | block 2 | ... | never used  |
 *   | (128 bytes)       |         |         |         |     | (bump ...)  |
 *   +-------------------+---------+---------+---------+-----+-------------+
 *
 * so the pool of a block is  ptr & ~(RC_POOL_SIZE - 1)  and its arena is
 * ptr & ~(RC_ARENA_SIZE - 1).  Blocks are carved lazily from `bump` onto the
 * free list a page at a time, so a pool costs memory only as it is used.
 *
 * Ownership.  Whether a pointer is a pool block is decided by the pagemap, a
 * flat byte map with one entry per 4 MiB of the 47-bit address space (32 MiB
 * of .bss, so that its address is a constant on the free path; only pages
 * covering arenas ever become resident).  free() reads one byte of memory rcmalloc owns and
 * never the memory around a pointer it did not hand out.  NULL and anything
 * not in an arena goes to the jemalloc side.
 *
 * Threads.  Each pool belongs to at most one heap (pool->owner), and each
 * heap to one thread.  malloc pops from, and free (of a block whose pool the
 * thread owns) pushes onto, the heap's per-class cache: plain loads and
 * stores, and the block freed last is handed out next while still in the
 * processor cache.  A cache refills by taking a pool's free list, whole
 * when it fits under the cache's limit (pool->nfree says so in O(1)), else
 * its first `limit` blocks (from the head of the class queue, or from one
 * of the next RC_QUEUE_LOOK pools that has free blocks before the head
 * carves a fresh page, so that pools fill up before new pages are
 * touched); past its limit it sends the older half back to the pools,
 * splicing runs of one pool at once.  Cached blocks count as
 * used in their pools.  Another thread freeing a block batches it per pool
 * (heap->remote[], up to RC_REMOTE_BATCH) and pushes each batch onto
 * pool->thread_free with one CAS (no lock); the batch's head records its
 * tail and size, so the owner, taking the whole list back with one CAS when
 * its free list runs dry, reads two blocks per batch, not every block.
 *
 * Pool states, per heap:
 *
 *           acquire (arena.c)                       used == 0
 *   arena ───────────────────▶ queue[class] ◀──────────────────▶ retired
 *   free  ◀─────────────────── (has free or    no free block,    (heap's
 *   list      release          unused blocks)  nothing to carve  empty cache,
 *                                  │  ▲                          then arena)
 *                                  ▼  │ a local or delayed free
 *                                 full list
 *
 * A pool on the full list would never be looked at again if remote frees
 * only went to its thread_free list, so (as in mimalloc) a full pool's
 * thread_free carries the tag RC_USE_DELAYED in its low bits: the first
 * remote free then pushes the block onto the owning heap's `delayed` list
 * instead and resets the tag, and the owner moves the pool back to its queue
 * when it processes that list.  RC_DELAYING marks a remote free in the middle
 * of that hand-off; the owner waits it out before it abandons the pool, so
 * no thread touches a heap after its pools have been given up.
 *
 * Thread exit and idle heaps (heap.c).  The heap's caches and batches are
 * flushed, then its pools with live blocks are abandoned: tag
 * RC_NEVER_DELAYED, put on abandoned[cls] (free-block pools first), owner
 * set to RC_ABANDONED.  Remote frees keep landing on their thread_free lists; the
 * thread that pushed them then claims the pool (owner RC_ABANDONED -> RC_CLAIMED,
 * one CAS), collects, and gives the pool to its arena if it is empty.  A
 * heap needing a pool of class c adopts one from abandoned[c] (owner RC_ABANDONED ->
 * heap, one CAS) before it carves a fresh one.  A live heap whose thread
 * has not been on a slow path for RC_IDLE_MS (16 ms; with the purge delay,
 * 250 ms, larson's new threads carved fresh pools for that long while what
 * they freed sat in the main thread's idle heap, and peaked at 288 pools
 * in use instead of 210) has its pools abandoned the same way by the next
 * thread about to carve a fresh pool (steal_idle, try-locking h->lock, which the owner holds on its
 * slow paths; the caches and remote batches, touched by the fast paths
 * without a lock, stay the owner's).  Empty pools go back to their arena.
 *
 * Returning memory.  Pools freed to an arena stay resident ("dirty", and
 * reused first, in any arena) for one to two RCMALLOC_PURGE_DELAY_MS
 * periods, then are madvise(MADV_DONTNEED)ed at the next pool event.  They
 * stay only while pools in use + dirty pools are within an eighth above
 * the most pools in use this period and the last (at least RC_DIRTY_MIN
 * dirty pools, at most RCMALLOC_RETAIN bytes): the excess goes at once,
 * oldest first.  A span's pools it never touched go back clean.  An arena
 * whose pools are all free and clean is unmapped (one spare arena is
 * kept).  So RSS follows the live data, and falls after a burst.
 * Measured and not adopted (churn, spanx, larson, xthread peak RSS; 2
 * threads on 2 cores): a free pool's resident pages counted per pool, and
 * a size class reusing the lightest free pool or one it used before (no
 * change: pools kept resident all fill in over time); a smaller dirty
 * floor (8 or 4 pools), smaller heap empty caches (1 or 2) and class
 * caches of 16 or 8 KiB (changes within the noise); a refill carving where
 * an earlier use left pages resident (no change).  Returning more costs
 * time: each madvise interrupts the other core and the pages fault back
 * (RCMALLOC_RETAIN=4m halves spanx's peak RSS and triples its time).
 *
 * fork (init.c).  The prepare handler takes every global lock (the object
 * layer's first, then debug, heaps, abandoned list, arenas), parent and
 * child release them.  In the child, heaps of
 * threads that no longer exist keep their pools (their blocks stay valid and
 * can be freed; the memory is not reused).
 * ==========================================================================
 */
#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H

#include "config.h"
#include "rcmalloc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

/* ---- tunables (compile time) ------------------------------------------- */

#define RC_ARENA_SHIFT   22                         /* 4 MiB arenas */
#define RC_ARENA_SIZE    ((size_t)1 << RC_ARENA_SHIFT)
#define RC_POOL_SHIFT    16                         /* 64 KiB pools */
#define RC_POOL_SIZE     ((size_t)1 << RC_POOL_SHIFT)
#define RC_POOLS_PER_ARENA (RC_ARENA_SIZE / RC_POOL_SIZE)
#define RC_POOL_HEADER   128                        /* pool data offset */
#define RC_ADDR_BITS     47                         /* user address space */
#define RC_PAGEMAP_SIZE  ((size_t)1 << (RC_ADDR_BITS - RC_ARENA_SHIFT))

#define RC_ALIGN         16                         /* malloc's alignment */
#define RC_NCLASSES      38
#define RC_SMALL_LIMIT   32704                      /* largest class: 2 per pool */
#define RC_TABLE_LIMIT   8192                       /* classes found by table lookup */
#define RC_SMALL_MIN_MAX 512                        /* rc_small_max floor */
#define RC_CARVE_BYTES   4096                       /* lazy carving: a page (power of 2) */
#define RC_DIRTY_MIN     16                         /* free pools always kept resident */
#define RC_DIRTY_FRACTION 8                         /* ... or 1/8 of those in use */
#define RC_HEAP_EMPTY_MAX 4                         /* empty pools a heap keeps */
#define RC_IDLE_MS       16                         /* a heap idle this long gives up its pools */
#define RC_QUEUE_LOOK    8                          /* pools a refill looks at before carving */
#define RC_RECLAIM_HEAPS 8                          /* other heaps looked at before carving */
#define RC_RECLAIM_LOOK  32                         /* ... and pools of each one's class queue */
#define RC_SPAN_CLASS    255                        /* pool->cls of a span */
#define RC_SPAN_POOLS    17                         /* most pools in a span: 1 MiB fits */
#define RC_SPAN_MAX      (RC_SPAN_POOLS * RC_POOL_SIZE - RC_POOL_HEADER)
#define RC_SPAN_ALIGN    (RC_POOL_SIZE / 2)         /* most alignment a span gives */
#define RC_CACHE_BYTES   32768                      /* per class per thread */
#define RC_REMOTE_SLOTS  64                         /* pools batched for remote free */
#define RC_REMOTE_BATCH  16                         /* blocks per remote hand-off */
#define RC_REMOTE_BYTES  32768                      /* ... or bytes, when fewer */
#define RC_REMOTE_TOTAL  (256 * 1024)               /* all of a thread's batches */
#define RC_BATCH_MASK    ((uintptr_t)RC_REMOTE_BATCH - 1) /* n - 1 in a tail pointer */
#if RC_REMOTE_SLOTS > 64
#error "remote_used is a 64-bit mask"
#endif
#if RC_REMOTE_BATCH > RC_ALIGN
#error "a batch's size must fit in the low bits of a 16-byte-aligned pointer"
#endif

#if (RC_ARENA_SHIFT - RC_POOL_SHIFT) != 6
#error "the arena free-pool masks are 64-bit: arena size / pool size must be 64"
#endif
#if RC_ARENA_SHIFT < RC_POOL_SHIFT
#error "arena size not an exact multiple of pool size"
#endif

#define rc_likely(x)     __builtin_expect(!!(x), 1)
#define rc_unlikely(x)   __builtin_expect(!!(x), 0)
#define RC_NOINLINE      __attribute__((noinline))
#define RC_INLINE        static inline __attribute__((always_inline))

/* In a spin loop: tell the core (and a hyperthread sibling) we wait. */
RC_INLINE void _rc_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* The smallest power of two above x (x >= 1): growth targets (realloc in the
   pools, a growing span's room) and buddy alignment of pool runs. */
RC_INLINE size_t _rc_pow2_above(size_t x) {
    return (size_t)2 << (63 - __builtin_clzll((unsigned long long)x));
}

/* ---- blocks, pools, arenas, heaps -------------------------------------- */

typedef struct rc_block {
    uintptr_t link;           /* the next free block, encoded: _rc_next */
    uintptr_t key;            /* _rc_free_key while free (double-free check);
                                 0 once handed out (alloc.h) */
} rc_block_t;

/* Free-list links are stored XORed with a per-process random key whose top
   bit is set and low four bits clear (init.c).  An overflow from a live
   block, or a write after free, that puts a pointer P over a free block's
   link leaves P ^ key there: an address with the top bit set, which no
   user pointer has.  The fast pop (alloc.h) decodes it into the class
   cache's head without a test, and the next malloc's empty-cache test is a
   sign test, so that malloc goes to the slow path, which reports it
   instead of handing out P; a slow path's walk faults on it or reports
   it where it cuts the list (_rc_next).  Other bytes decode, but for a
   chance in 2^16, to a non-canonical address: a fault, not an
   allocation.  The key is never in memory beside the links for a read
   past a block to find (the double-free key is another).  One XOR on
   each push and pop; NULL is stored as the key itself.  Every list of
   free blocks uses it (class caches, pool free lists, remote batches,
   delayed lists), so lists are spliced without re-encoding.  The key's
   low bits clear keep a batch head's count in its second word (pool.c)
   intact. */
extern uintptr_t _rc_link_key;

_Noreturn void _rc_free_list_corrupt(const void *block, const void *link);

RC_INLINE rc_block_t *_rc_link_dec(uintptr_t w) { return (rc_block_t *)(w ^ _rc_link_key); }
RC_INLINE uintptr_t _rc_link_enc(const void *b) { return (uintptr_t)b ^ _rc_link_key; }
RC_INLINE void _rc_set_next(rc_block_t *b, const rc_block_t *n) { b->link = _rc_link_enc(n); }

/* A decoded link with the top bit set was forged: reported, naming holder
   (the free block it was read from, or NULL when a fast path already
   handed that block out). */
RC_INLINE void _rc_link_check(const void *holder, const rc_block_t *n)
{
    if (rc_unlikely((intptr_t)n < 0))
        _rc_free_list_corrupt(holder, n);
}

/* The next block on a list.  Not tested here: a walk that follows a
   forged link faults on it (the address has the top bit set), and the
   places where a list is cut or handed on test the link left there (a
   cache's head in _rc_malloc_slow, a run's end in return_blocks, a
   batch's tail in pool.c) and report it by _rc_free_list_corrupt.
   (Testing every step cost binary-trees 6%: the walks that split lists
   are a pointer chase.) */
RC_INLINE rc_block_t *_rc_next(const rc_block_t *b)
{
    return _rc_link_dec(b->link);
}

/* Low two bits of rc_pool.thread_free (see "full list" above). */
enum {
    RC_NO_DELAYED    = 0,   /* remote frees push onto thread_free */
    RC_USE_DELAYED   = 1,   /* pool is full: remote frees go to owner->delayed */
    RC_DELAYING      = 2,   /* a remote free is pushing onto owner->delayed */
    RC_NEVER_DELAYED = 3    /* pool is abandoned or being abandoned */
};
#define RC_TAG_MASK ((uintptr_t)3)

struct rc_heap;

/* At the start of every pool in use.  The first cache line is the owner's;
   the second holds what other threads write. */
typedef struct rc_pool {
    rc_block_t      *free;        /* owner only: cache refill takes the list */
    uint16_t         used;        /* owner only: blocks not on `free` (<= 4088) */
    uint16_t         nfree;       /* owner only: blocks on `free` (O(1) refill);
                                     a deferred release's run length (arena.c) */
    uint32_t         block_size;  /* bytes per block; usable_size, carving */
    char            *bump;        /* next never-used block (lazy carving);
                                     a span's: block + the most it has held */
    char            *end;         /* end of the last whole block */
    struct rc_pool  *next;        /* heap queue / full list / abandoned list */
    struct rc_pool  *prev;        /* heap queue / full list */
    _Atomic(struct rc_heap *) owner; /* free fast path compares with its heap */
    uint32_t         magic;       /* 2^32 / block_size + 1, 0 for a span: the
                                     free fast path's block-start test (alloc.h) */
    uint8_t          cls;         /* size class index: free fast path */
    uint8_t          in_full;     /* on the heap's full list */
    uint8_t          in_use;      /* handed out by the arena (stats walk) */
    uint8_t          abandoned;   /* on the abandoned list (under its lock) */
    /* ---- second cache line: written by other threads ---- */
    _Atomic(uintptr_t) thread_free; /* remote frees | tag; see enum above */
    uint64_t         resident;    /* a span's: bit k, pool k was resident when
                                     taken (arena.c: what its release dirties) */
    char             _pad2[RC_POOL_HEADER - 64 - sizeof(uintptr_t) - sizeof(uint64_t)];
} rc_pool_t;

_Static_assert(sizeof(rc_pool_t) == RC_POOL_HEADER, "pool header size");
_Static_assert(offsetof(rc_pool_t, thread_free) == 64, "thread_free on its own line");

/* At the start of every arena (in pool 0).  All fields under arena lock. */
typedef struct rc_arena {
    struct rc_arena *next, *prev; /* list of all arenas (arena.c) */
    uint64_t free_mask;           /* bit i: pool i is free (never bit 0) */
    uint64_t dirty_new;           /* bit i: free pool i resident, freed this period */
    uint64_t dirty_old;           /* ... freed the period before: purged next */
    uint64_t span_tail;           /* bit i: pool i is inside a span, not its head */
    uint32_t nfree;               /* popcount(free_mask) */
} rc_arena_t;

/* A thread's cache of free blocks of one class, from any of its pools (so
   the block freed last is the block handed out next, still in cache).  The
   blocks count as used in their pools until flushed back. */
typedef struct rc_cache {
    rc_block_t *head;              /* alloc and free fast paths */
    uint32_t    count;             /* blocks on head */
    uint32_t    limit;             /* flush half beyond this (free slow path) */
} rc_cache_t;

/* Blocks this thread freed into one pool owned by another thread, batched so
   that the hand-off costs one CAS per RC_REMOTE_BATCH blocks. */
typedef struct rc_remote {
    rc_pool_t  *pool;
    rc_block_t *head, *tail;
    uint32_t    count;
} rc_remote_t;

/* A thread's allocation state.  Reached through _rc_heap_tls. */
typedef struct rc_heap {
    rc_cache_t cache[RC_NCLASSES]; /* fast paths: pop and push here */
    rc_pool_t *cur[RC_NCLASSES];   /* head of each class queue (refill), or
                                      &_rc_pool_empty when the queue is empty */
    rc_pool_t *tail[RC_NCLASSES];  /* tail of each class queue, or NULL */
    rc_pool_t *full;               /* pools with nothing free, any class */
    rc_pool_t *empty;              /* retired pools kept for reuse */
    unsigned   nempty;
    _Atomic(rc_block_t *) delayed; /* remote frees into our full pools */
    rc_remote_t remote[RC_REMOTE_SLOTS]; /* our frees into others' pools */
    uint64_t   remote_used;        /* bit i: remote[i] holds blocks */
    size_t     remote_bytes;       /* bytes in remote[] (RC_REMOTE_TOTAL) */
    unsigned   slow_ticks;         /* malloc slow paths, to pace remote flushes */
    _Atomic int lock;              /* heap.c: owner on slow paths, or a thief */
    _Atomic uint64_t last_ms;      /* last slow path, _rc_now_ms (steal_idle) */
    struct rc_heap *next_all;      /* all live heaps (stats, fork) */
    struct rc_heap *prev_all;
    bool       live;               /* owned by a running thread */
    int64_t    prof_left;          /* prof.h: bytes to the next heap-profile
                                      sample (0 in a new heap: ask) */
    uintptr_t  link_key;           /* _rc_link_key, for the fast paths: one
                                      XOR with an operand off the heap pointer
                                      they hold, no address to form */
} rc_heap_t;

/* ---- globals ------------------------------------------------------------ */

extern __thread rc_heap_t *_rc_heap_tls __attribute__((tls_model("initial-exec")));
extern rc_heap_t  _rc_heap_empty;   /* every thread's heap before its first alloc */
extern rc_pool_t  _rc_pool_empty;   /* free == NULL: forces the slow path */
extern uint8_t    _rc_pagemap[];    /* RC_MAP_* per 4 MiB, 0 = not ours (arena.c) */
extern size_t     _rc_small_max;    /* largest request served by pools */
extern size_t     _rc_fast_max;     /* malloc fast path serves 1.._rc_fast_max;
                                       0 in the checked modes */
extern unsigned   _rc_checked;      /* RC_CHECK_* bits, fixed at init */
extern uint8_t    _rc_map_value;    /* pagemap byte for arenas */

#define RC_CHECK_DEBUG    1u        /* RCMALLOC_DEBUG: debug.c serves everything */
#define RC_CHECK_VALGRIND 2u        /* running under valgrind: client requests */
#define RC_CHECK_SECURE   4u        /* RCMALLOC_SECURE: secure.c serves everything */
#define RC_MAP_FAST       1         /* pool blocks free on the fast path */
#define RC_MAP_CHECKED    2         /* pool blocks free through _rc_free_generic */
extern const uint32_t _rc_class_size[RC_NCLASSES];
/* Default-mode checks on the free path (alloc.h): a per-process random key
   stored in every freed pool block, and in each pool header the multiplier
   magic = 2^32 / block_size + 1, so that an offset n < 2^16 into a pool's
   blocks is a block start iff (uint32_t)(n * magic) <= magic - 1 (Lemire's
   divisibility test for 16-bit operands: a multiply, no division, and no
   load beyond the pool header's first line).  A span's magic is 0: every
   offset passes (spans are checked on their own path). */
extern uintptr_t _rc_free_key;
extern const uint8_t _rc_size_class[RC_TABLE_LIMIT / 16 + 1];

/* ---- os.c: the OS contract ---------------------------------------------- */
void *_rc_os_map(size_t size);                       /* NULL on failure */
void *_rc_os_map_aligned(size_t size, size_t align); /* NULL on failure */
void  _rc_os_unmap(void *p, size_t size);
void  _rc_os_decommit(void *p, size_t size);         /* MADV_DONTNEED */
void  _rc_write_fd(int fd, const char *msg);         /* write(2), errno kept */
void  _rc_write_err(const char *msg);                /* ... to stderr */
/* Small snprintf-like formatter with no allocation: %s %d %u %zu %zx %p %%. */
int   _rc_format(char *buf, size_t len, const char *fmt, ...);
void  _rc_printf_err(const char *fmt, ...);
_Noreturn void _rc_fatal(const char *fmt, ...);
uint64_t _rc_now_ms(void);                           /* CLOCK_MONOTONIC_COARSE */

/* ---- sizeclass.c -------------------------------------------------------- */
void     _rc_sizeclass_init(void);
unsigned _rc_class_for_align(size_t size, size_t align); /* RC_NCLASSES if none */

/* The class of a request of at most RC_TABLE_LIMIT bytes (the fast paths:
   _rc_fast_max never exceeds it). */
RC_INLINE unsigned _rc_class_of(size_t size) {
    return _rc_size_class[(size + 15) >> 4];
}
/* ... of any request up to RC_SMALL_LIMIT: the few pool-fraction classes
   above the table are searched (slow paths only). */
unsigned _rc_class_of_big(size_t size);
static inline unsigned _rc_class_any(size_t size) {
    return size <= RC_TABLE_LIMIT ? _rc_class_of(size) : _rc_class_of_big(size);
}

/* The largest request the table's classes serve: the fast paths' limit
   (_rc_fast_max, outside the checked modes). */
static inline size_t _rc_table_max(void)
{
    return _rc_small_max < RC_TABLE_LIMIT ? _rc_small_max : RC_TABLE_LIMIT;
}

/* A buffer realloc'ed past this many bytes moves into a span with room to
   double in place (span.c), rather than up the pool classes one copy at a
   time; a span shrunk below it moves back into a pool.  Half the table's
   classes: the pool-fraction classes above 8 KiB serve blocks allocated at
   their size, and growing buffers skip them. */
static inline size_t _rc_span_growth_from(void)
{
    return _rc_table_max() / 2;
}

/* ---- arena.c ------------------------------------------------------------ */
rc_pool_t *_rc_arena_pool_acquire(void);          /* under the arena lock */
void       _rc_arena_pool_release(rc_pool_t *pool);
rc_pool_t *_rc_arena_span_acquire(unsigned n);     /* n pools in a row */
bool       _rc_arena_span_grow(rc_pool_t *pool, unsigned n, unsigned m);
void       _rc_arena_span_shrink(rc_pool_t *pool, unsigned n, unsigned m);
void       _rc_arena_span_release(rc_pool_t *pool, unsigned n, unsigned touched);
size_t     _rc_arena_purge(bool all);             /* bytes returned */
void       _rc_arena_lock(void);
void       _rc_arena_unlock(void);
void       _rc_arena_fork_child(void);
/* Walk every pool in use (stats): cb under the arena lock; must not allocate. */
void       _rc_arena_walk(void (*cb)(const rc_pool_t *pool, void *arg), void *arg);
void       _rc_arena_counts(size_t *mapped, size_t *unmapped_total,
                            size_t *pools_used, size_t *pools_dirty,
                            size_t *peak_pools);

RC_INLINE unsigned _rc_map_of(const void *p) {
    uintptr_t i = (uintptr_t)p >> RC_ARENA_SHIFT;
    return rc_likely(i < RC_PAGEMAP_SIZE) ? _rc_pagemap[i] : 0;
}

RC_INLINE bool _rc_is_pool_block(const void *p) {
    return _rc_map_of(p) != 0;
}

RC_INLINE rc_pool_t *_rc_pool_of(const void *p) {
    return (rc_pool_t *)((uintptr_t)p & ~(uintptr_t)(RC_POOL_SIZE - 1));
}

/* ---- pool.c ------------------------------------------------------------- */
void  _rc_pool_init(rc_pool_t *pool, unsigned cls);
bool  _rc_pool_extend(rc_pool_t *pool);          /* carve more blocks */
void  _rc_pool_collect(rc_pool_t *pool);         /* take back thread_free */
uint32_t _rc_pool_remote_count(rc_pool_t *pool); /* blocks on thread_free */
bool  _rc_pool_try_mark_full(rc_pool_t *pool);   /* false: remote frees pending */
void  _rc_pool_set_tag(rc_pool_t *pool, uintptr_t tag); /* waits out DELAYING */
uintptr_t _rc_pool_free_remote(rc_pool_t *pool, rc_block_t *head, rc_block_t *tail,
                               uint32_t n);      /* returns the tag it met */

/* ---- span.c: blocks of (small max, RC_SPAN_MAX] bytes, a run of pools each */
void  *_rc_span_alloc(size_t size, size_t align, bool zero); /* NULL+ENOMEM on failure */
void  *_rc_span_grown(size_t size);     /* a growing buffer's: room to grow */
void   _rc_span_free(rc_heap_t *heap, rc_pool_t *pool);
void  *_rc_span_realloc(void *ptr, size_t size);   /* NULL+ENOMEM: ptr kept */

RC_INLINE bool _rc_span_fits(size_t size, size_t align) {
    size_t off = align > RC_POOL_HEADER ? align : RC_POOL_HEADER;
    return align <= RC_SPAN_ALIGN && size <= RC_SPAN_POOLS * RC_POOL_SIZE - off;
}

/* Does realloc move a block of old usable bytes, growing to size, into a
   span with room to grow (alloc.c, span.c)?  One rule for every block:
   the heap profiler counts a realloc by where it leaves the block, so a
   sampled block must move as its unsampled twin would (prof.c). */
RC_INLINE bool _rc_span_grows_into(size_t old, size_t size) {
    return size > old && size > _rc_span_growth_from() && _rc_span_fits(size, 0);
}

/* ---- heap.c ------------------------------------------------------------- */
void *_rc_malloc_slow(rc_heap_t *heap, unsigned cls);
void  _rc_cache_flush(rc_heap_t *heap, unsigned cls);   /* cache over its limit */
void  _rc_free_remote(rc_heap_t *heap, rc_pool_t *pool, rc_block_t *block);
void  _rc_heap_flush_all(rc_heap_t *heap);               /* caches back to pools */
void  _rc_heap_trim(rc_heap_t *heap);    /* ... and every other heap's pools abandoned */
void  _rc_heap_thread_done(void *heap);        /* pthread key destructor */
rc_pool_t *_rc_heap_take_empty(rc_heap_t *heap);         /* NULL if none */
bool  _rc_heap_keep_empty(rc_heap_t *heap, rc_pool_t *pool); /* false: full */
void  _rc_heap_lock(void);
void  _rc_heap_unlock(void);
void  _rc_heap_fork_child(void);
_Noreturn void _rc_free_invalid(const void *ptr);       /* not a block start */

/* Is ptr the start of one of its pool's blocks?  (See magic above.) */
RC_INLINE bool _rc_block_start(const rc_pool_t *p, const void *ptr)
{
    uint32_t off = (uint32_t)((uintptr_t)ptr - (uintptr_t)p) - RC_POOL_HEADER;
    return off * p->magic <= p->magic - 1;
}
void  _rc_free_suspect(void *ptr);   /* key found: a double free aborts; else freed */
void  _rc_abandoned_lock(void);
void  _rc_abandoned_unlock(void);
size_t _rc_heap_count(void);
size_t _rc_heap_taken_over(void);
size_t _rc_heap_reclaimed(void);    /* emptied pools taken from other heaps */

/* ---- alloc.c: internal entry points (hidden; no PLT) --------------------- */
void  *_rc_malloc_generic(size_t size);           /* all but the fast path */
void   _rc_free_generic(void *ptr);               /* all but the fast path */
void  *_rc_malloc(size_t size);
void  *_rc_calloc(size_t count, size_t size);
void   _rc_free(void *ptr);
void  *_rc_realloc(void *ptr, size_t size);
void  *_rc_memalign(size_t align, size_t size);   /* NULL+errno on failure */
size_t _rc_usable_size(const void *ptr);
size_t _rc_trim(void);                            /* bytes returned to the OS */

/* ---- large.c: the only file that includes <jemalloc/jemalloc.h> ---------- */
void  *_rc_large_malloc(size_t size, size_t align, bool zero);
void   _rc_large_lock(void);            /* fork: the live-set lock */
void   _rc_large_unlock(void);
void   _rc_large_fork_child(void);
void  *_rc_large_realloc(void *ptr, size_t size);
void   _rc_large_free(void *ptr);
size_t _rc_large_usable(const void *ptr);
size_t _rc_large_trim(void);
void   _rc_large_decay(uint64_t now_ms);  /* cached huge block past its decay: freed */
void   _rc_large_stats(size_t *allocated, size_t *active, size_t *mapped,
                       size_t *resident, bool *started);

/* ---- debug.c: RCMALLOC_DEBUG=1 ------------------------------------------- */
void  *_rc_debug_malloc(size_t size, size_t align, bool zero);
void   _rc_debug_free(void *ptr, const char *who);
void  *_rc_debug_realloc(void *ptr, size_t size);
size_t _rc_debug_usable(const void *ptr);
void   _rc_debug_lock(void);
void   _rc_debug_unlock(void);
void   _rc_debug_fork_child(void);
void   _rc_guard_faults_report(void);      /* a SIGSEGV handler, installed once */
void   _rc_debug_stats(size_t *allocated, size_t *mapped);   /* paged blocks: adds */

/* ---- secure.c: RCMALLOC_SECURE=1 ----------------------------------------- */
void  *_rc_secure_malloc(size_t size, size_t align, bool zero);
void   _rc_secure_free(void *ptr);                /* a pool block */
size_t _rc_secure_usable(const void *ptr);        /* a pool block */
size_t _rc_secure_guard(rc_pool_t *pool);         /* pool.c: bytes the guard takes */
void   _rc_secure_drain(void);                    /* malloc_trim: empty the quarantine */

/* ---- options.c ---------------------------------------------------------- */
typedef struct rc_options {
    long stats;         /* RCMALLOC_STATS */
    long debug;         /* RCMALLOC_DEBUG */
    long secure;        /* RCMALLOC_SECURE */
    long verbose;       /* RCMALLOC_VERBOSE */
    long small_max;     /* RCMALLOC_SMALL_MAX */
    long retain;        /* RCMALLOC_RETAIN */
    long purge_delay_ms;/* RCMALLOC_PURGE_DELAY_MS */
    long large_decay_ms;/* RCMALLOC_LARGE_DECAY_MS */
    long large_cache;   /* RCMALLOC_LARGE_CACHE */
    long gc_signal;     /* RCMALLOC_GC_SIGNAL */
    long gc_stop_ms;    /* RCMALLOC_GC_STOP_MS */
    long prof;          /* RCMALLOC_PROF */
    long prof_sample;   /* RCMALLOC_PROF_SAMPLE */
} rc_options_t;
extern rc_options_t _rc_opt;
void _rc_options_init(void);
const char *_rc_env_get(const char *name);   /* no allocation */
void _rc_options_print(void);

/* ---- stats.c ------------------------------------------------------------ */
void _rc_stats_print_fd(int fd);

/* ---- lifetime layer: fork handlers (gc.c, weakref.c, intern.c) ---------- */
void _rc_gc_fork_prepare(void);
void _rc_gc_fork_parent(void);
void _rc_gc_fork_child(void);
void _rc_weakref_fork_prepare(void);
void _rc_weakref_fork_parent(void);
void _rc_weakref_fork_child(void);
void _rc_intern_fork_prepare(void);
void _rc_intern_fork_parent(void);
void _rc_intern_fork_child(void);

/* ---- init.c ------------------------------------------------------------- */
extern atomic_int _rc_init_state;   /* 0 none, 1 running, 2 done */
void _rc_init_slow(void);
RC_INLINE void _rc_ensure_init(void) {
    if (rc_unlikely(atomic_load_explicit(&_rc_init_state, memory_order_acquire) != 2))
        _rc_init_slow();
}
extern pthread_key_t _rc_heap_key;

/* ---- a small spinlock-free mutex wrapper -------------------------------- */
typedef pthread_mutex_t rc_lock_t;
#define RC_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

#endif /* RC_INTERNAL_H */
