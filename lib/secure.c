/*
 * secure.c -- RCMALLOC_SECURE=1, the hardened mode.  Like debug mode it
 * costs the default paths nothing: _rc_fast_max is 0 and arenas carry
 * RC_MAP_CHECKED, so every malloc and every free of a pool block comes
 * here through alloc.c's out-of-line paths.  Main entry points:
 * _rc_secure_malloc, _rc_secure_free.
 *
 * What it adds to the checks that are always on:
 *   - guard pages: the last page of every pool is made inaccessible when
 *     the pool is set up for a class (_rc_secure_guard, from pool.c), so no
 *     overflow runs from one pool into the next; blocks beyond the small
 *     maximum get a mapping of their own between guard pages (debug.c's
 *     paged blocks, which also fault on any access after free);
 *   - a canary: every pool block ends with a 4-byte trailer (the requested
 *     size and a tag keyed by the address and the process secret) and the
 *     bytes between the request and the trailer hold a secret byte; a
 *     free, realloc or malloc_usable_size that finds either changed
 *     reports a write past the end of the block;
 *   - randomized order: a malloc takes a block at random among the first
 *     RC_PICK of its thread's cache, and a freed block is put in a random
 *     slot of the quarantine, so the order of reuse is not the order of
 *     frees;
 *   - delayed reuse: a freed block waits in the quarantine until another
 *     free lands on its slot, on average RC_SECQ_SLOTS frees later.  The
 *     quarantine is RC_SECQ_SHARDS shards of slots, one per thread (round
 *     robin beyond that): no lock, an exchange on a line no other thread
 *     writes, and a block evicted by the thread that freed it, so a
 *     thread's frees still go to its own cache as in default mode;
 *   - freed memory filled with the secret byte, checked when the block
 *     leaves the quarantine: a write after free is reported then.
 * A double free is found by the key word every freed block carries, as in
 * default mode, but without confirmation: no live block can hold the
 * per-process key unless a program copied it out of freed memory.
 * malloc_usable_size is the requested size, so no program writes into the
 * canary legitimately.
 */
#include "internal.h"
#include "alloc.h"

#include <string.h>
#include <sys/mman.h>

#define RC_SECQ_SHARDS 16           /* quarantine shards */
#define RC_SECQ_SLOTS  256          /* slots per shard (a power of two) */
#define RC_PICK     8               /* a malloc picks among this many */
#define RC_TRAILER  4               /* uint16 size, uint16 tag */

typedef struct {
    _Atomic(rc_block_t *) slot[RC_SECQ_SLOTS];
} __attribute__((aligned(64))) rc_secq_t;

static rc_secq_t secq[RC_SECQ_SHARDS];
static atomic_uint next_shard;

typedef struct {
    uint64_t rng;               /* xorshift state; 0 until first use */
    rc_secq_t *shard;
} rc_secure_tls_t;
static __thread rc_secure_tls_t sec_tls __attribute__((tls_model("initial-exec")));

static RC_NOINLINE void tls_start(void)
{
    sec_tls.rng = (_rc_free_key ^ (uintptr_t)&sec_tls) | 1;
    sec_tls.shard = &secq[atomic_fetch_add(&next_shard, 1) % RC_SECQ_SHARDS];
}

static uint64_t rnd(void)
{
    if (rc_unlikely(sec_tls.rng == 0))
        tls_start();
    uint64_t x = sec_tls.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sec_tls.rng = x;
    return x;
}

/* A uniform pick in [0, n), n < 2^32, without a division. */
static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(((rnd() >> 32) * n) >> 32);
}

/* Whether all n bytes at p are c: eight at a time. */
static bool all_bytes(const void *p, size_t n, uint8_t c)
{
    const uint8_t *b = p;
    uint64_t w = 0x0101010101010101ull * c, x;
    for (; n >= 8; n -= 8, b += 8) {
        __builtin_memcpy(&x, b, 8);   /* a load: -fno-builtin makes memcpy a call */
        if (x != w)
            return false;
    }
    for (; n; n--, b++)
        if (*b != c)
            return false;
    return true;
}

static uint8_t fill_byte(void)
{
    return (uint8_t)(_rc_free_key >> 8) | 1;
}

static uint16_t tag_of(const void *p, size_t size)
{
    uint64_t h = ((uintptr_t)p ^ _rc_free_key ^ size) * 0x9E3779B97F4A7C15ull;
    return (uint16_t)(h >> 48);
}

/* The pool's last page (RC_CARVE_BYTES, the page size rcmalloc assumes)
   made inaccessible; returns the bytes taken from the pool's blocks. */
size_t _rc_secure_guard(rc_pool_t *pool)
{
    _rc_guard_faults_report();
    char *last = (char *)pool + RC_POOL_SIZE - RC_CARVE_BYTES;
    return mprotect(last, RC_CARVE_BYTES, PROT_NONE) == 0 ? RC_CARVE_BYTES : 0;
}

/* The requested size of a live pool block, or a report and abort when its
   trailer or canary was overwritten. */
static size_t checked_size(const char *who, void *ptr)
{
    rc_pool_t *pool = _rc_pool_of(ptr);
    size_t bs = pool->block_size;
    uint32_t t;
    __builtin_memcpy(&t, (char *)ptr + bs - RC_TRAILER, sizeof t);
    size_t size = t & 0xFFFF;
    bool ok = size <= bs - RC_TRAILER && (t >> 16) == tag_of(ptr, size) &&
              all_bytes((char *)ptr + size, bs - RC_TRAILER - size, fill_byte());
    if (!ok)
        _rc_fatal("rcmalloc: %s(): write past the end of the block at %p (a block of %zu bytes at most)\n",
                  who, ptr, bs - RC_TRAILER);
    return size;
}

/* A block from the thread's cache, at random among its first RC_PICK. */
static void *pick(unsigned cls)
{
    rc_heap_t *h = _rc_heap_tls;
    rc_cache_t *c = &h->cache[cls];
    if ((intptr_t)c->head <= 0)        /* empty, or a forged link (heap.c) */
        return _rc_malloc_slow(h, cls);
    uint32_t n = c->count < RC_PICK ? c->count : RC_PICK;
    uint32_t k = n > 1 ? rnd_below(n) : 0;
    rc_block_t *prev = NULL, *b = c->head, *next;
    while ((next = _rc_next(b)) != NULL && k--) {
        prev = b;
        b = next;
    }
    if (prev)
        _rc_set_next(prev, next);
    else
        c->head = next;
    c->count--;
    b->key = 0;
    return b;
}

void *_rc_secure_malloc(size_t size, size_t align, bool zero)
{
    size_t need = size + RC_TRAILER;
    unsigned cls = RC_NCLASSES;
    if (size <= _rc_small_max - RC_TRAILER)
        cls = align <= RC_ALIGN ? _rc_class_any(need) : _rc_class_for_align(need, align);
    if (cls >= RC_NCLASSES)
        return _rc_debug_malloc(size, align, zero);
    char *p = pick(cls);
    if (p == NULL)
        return NULL;
    size_t bs = _rc_class_size[cls];
    if (zero)
        memset(p, 0, size);   /* else the freed fill, or a fresh pool's zeroes */
    memset(p + size, fill_byte(), bs - RC_TRAILER - size);
    uint32_t t = (uint32_t)size | (uint32_t)tag_of(p, size) << 16;
    __builtin_memcpy(p + bs - RC_TRAILER, &t, sizeof t);
    return p;
}

/* A block leaves the quarantine: its fill and its key must be intact,
   then it is freed for reuse. */
static void evict(rc_block_t *b)
{
    size_t bs = _rc_pool_of(b)->block_size;
    _Static_assert(offsetof(rc_block_t, key) == 8 && sizeof(rc_block_t) == 16, "block words");
    uint8_t c = fill_byte();
    bool ok = b->key == _rc_free_key && all_bytes(b, 8, c) &&
              all_bytes((char *)b + 16, bs - 16, c);
    if (!ok)
        _rc_fatal("rcmalloc: free(): write after free at %p (block of %zu bytes)\n",
                  (void *)b, bs);
    b->key = 0;
    free_pool_block(b);
}

void _rc_secure_free(void *ptr)
{
    rc_pool_t *pool = _rc_pool_of(ptr);
    rc_block_t *b = ptr;
    if (((uintptr_t)ptr & (RC_ALIGN - 1)) || !pool->in_use || pool->cls >= RC_NCLASSES ||
        !_rc_block_start(pool, ptr))
        _rc_free_invalid(ptr);
    if (b->key == _rc_free_key)
        _rc_fatal("rcmalloc: free(): double free of %p (block of %u bytes)\n",
                  ptr, (unsigned)pool->block_size);
    checked_size("free", ptr);
    memset(ptr, fill_byte(), pool->block_size);
    b->key = _rc_free_key;
    uint32_t i = (uint32_t)rnd() & (RC_SECQ_SLOTS - 1);   /* also sets the shard */
    rc_block_t *old = atomic_exchange_explicit(&sec_tls.shard->slot[i], b,
                                               memory_order_acq_rel);
    if (old)
        evict(old);
}

size_t _rc_secure_usable(const void *ptr)
{
    return checked_size("malloc_usable_size", (void *)ptr);
}

/* malloc_trim: the quarantine goes back too. */
void _rc_secure_drain(void)
{
    for (size_t s = 0; s < RC_SECQ_SHARDS; s++)
        for (size_t i = 0; i < RC_SECQ_SLOTS; i++) {
            rc_block_t *old = atomic_exchange_explicit(&secq[s].slot[i], NULL,
                                                       memory_order_acq_rel);
            if (old)
                evict(old);
        }
}
