/*
 * debug.c -- RCMALLOC_DEBUG=1: every block, small or large, comes from here.
 * Each block is framed by guard bytes, filled with RC_FRESH_BYTE when handed
 * out and RC_FREED_BYTE when freed, and registered, so that a double free, a
 * write past either end, a write after free and a free of a pointer
 * rcmalloc never returned are each reported as one line naming the address,
 * followed by abort().  Main entry points: _rc_debug_malloc,
 * _rc_debug_free.  Slow by design; nothing here touches the normal paths.
 *
 * Two frames.  A block under RC_PAGED_MIN bytes comes from jemalloc:
 *
 *   base (jemalloc)                      user pointer
 *   |                                    |
 *   [ padding to alignment ][ rc_dbg_hdr ][ user bytes ... ][ tail guard ]
 *                           magic, size,  <- size bytes ->  RC_TAIL_GUARD
 *                           guard bytes    RC_FRESH_BYTE    bytes of
 *                                          when fresh       RC_GUARD_BYTE
 *
 * A larger block (and malloc(0)) gets its own mapping, its end against an
 * inaccessible guard page (a "paged" block), so that an access past the end
 * -- a read too, and any read of malloc(0)'s empty block -- faults at once
 * and the SIGSEGV handler below names the block:
 *
 *   [ guard page ][ ... rc_dbg_hdr ][ user bytes ][ < align slack ][ guard page ]
 *
 * The slack between the end of the request and the guard page (the request
 * rounded up to its alignment, so none when the size is a multiple of 16)
 * holds guard bytes, checked at free.
 *
 * Freed blocks wait in a quarantine before their memory is reused, so a
 * double free is still recognised.  A freed jemalloc-framed block keeps
 * RC_FREED_BYTE, checked when it leaves the quarantine, and the most recent
 * ones are checked at every debug call and all of them at exit; a freed
 * paged block is made inaccessible at once, so any access to it faults.
 */
#define _GNU_SOURCE 1        /* REG_ERR: was the faulting access a write */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define RC_FRESH_BYTE  0xCB
#define RC_FREED_BYTE  0xDF
#define RC_GUARD_BYTE  0xFD
#define RC_TAIL_GUARD  16
#define RC_QUARANTINE  4096          /* freed jemalloc-framed blocks ... */
#define RC_QUARANTINE_BYTES ((size_t)64 << 20)  /* ... and at most their bytes */
#define RC_PAGED_QUARANTINE 1024     /* freed paged blocks (address space only) */
#define RC_PAGED_MIN   4096          /* smallest paged request, but for 0 */
#define RC_PAGED_LIVE_MAX 12000      /* paged blocks live or quarantined: each
                                        costs up to 3 of the kernel's 65530
                                        mappings; beyond, jemalloc frames */
#define RC_RECHECK     4             /* recent frees re-checked per call */
#define RC_LIVE_MAGIC  0x6c6976656d656d21ull
#define RC_FREED_MAGIC 0x667265656d656d21ull
#define NBUCKETS       65536

typedef struct rc_dbg_hdr {
    uint64_t magic;
    size_t   size;            /* requested bytes */
    size_t   tail;            /* guard bytes after the request */
    uint8_t  front[8];        /* RC_GUARD_BYTE */
} rc_dbg_hdr_t;

/* The registry: every live or quarantined block.  It also holds what the
   free path and the fault handler need without touching the block (a
   freed paged block is inaccessible). */
typedef struct rc_dbg_node {
    void *ptr;
    struct rc_dbg_node *next;
    void  *base;              /* jemalloc's block, or the paged mapping */
    size_t map_len;           /* the paged mapping's length; 0: jemalloc */
    size_t size;              /* requested bytes */
    bool   freed;
} rc_dbg_node_t;

static rc_lock_t dbg_lock = RC_LOCK_INIT;
static rc_dbg_node_t *buckets[NBUCKETS];
static rc_dbg_node_t *spare_nodes;
static rc_dbg_node_t *quarantine[RC_QUARANTINE];
static size_t q_next;
static size_t q_bytes;        /* requested bytes of the framed quarantine */
static rc_dbg_node_t *paged_quarantine[RC_PAGED_QUARANTINE];
static size_t pq_next;
static size_t paged_count;    /* paged mappings, live or quarantined */
static size_t paged_live, paged_mapped;   /* bytes: requested, mapped (stats) */
static size_t page_size;
static struct sigaction old_segv;
static atomic_bool segv_installed;

static size_t bucket_of(const void *p)
{
    return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 48;
}

static rc_dbg_node_t **find(const void *p)
{
    rc_dbg_node_t **n = &buckets[bucket_of(p)];
    while (*n && (*n)->ptr != p)
        n = &(*n)->next;
    return n;
}

static rc_dbg_node_t *reg_add(void *p)
{
    if (spare_nodes == NULL) {
        size_t chunk = 1 << 20;
        rc_dbg_node_t *nodes = _rc_os_map(chunk);
        if (nodes == NULL)
            return NULL;
        for (size_t i = 0; i < chunk / sizeof *nodes; i++) {
            nodes[i].next = spare_nodes;
            spare_nodes = &nodes[i];
        }
    }
    rc_dbg_node_t *n = spare_nodes;
    spare_nodes = n->next;
    size_t b = bucket_of(p);
    n->ptr = p;
    n->freed = false;
    n->next = buckets[b];
    buckets[b] = n;
    return n;
}

static void reg_remove(rc_dbg_node_t **link)
{
    rc_dbg_node_t *n = *link;
    *link = n->next;
    n->next = spare_nodes;
    spare_nodes = n;
}

static rc_dbg_hdr_t *hdr_of(const void *p)
{
    return (rc_dbg_hdr_t *)((char *)p - sizeof(rc_dbg_hdr_t));
}

static _Noreturn void report(const char *what, const char *who, const void *p, size_t size)
{
    pthread_mutex_unlock(&dbg_lock);
    _rc_fatal("rcmalloc: %s(): %s at %p (block of %zu bytes)\n", who, what, p, size);
}

/* The guards of a live block, under dbg_lock. */
static void check_guards(const char *who, void *p, rc_dbg_hdr_t *h)
{
    for (int i = 0; i < 8; i++)
        if (h->front[i] != RC_GUARD_BYTE)
            report("write before the start of the block", who, p, h->size);
    const uint8_t *tail = (const uint8_t *)p + h->size;
    for (size_t i = 0; i < h->tail; i++)
        if (tail[i] != RC_GUARD_BYTE)
            report("write past the end of the block", who, p, h->size);
}

/* The registered live block `p`, or a report and abort. */
static rc_dbg_hdr_t *checked_live(const char *who, void *p)
{
    rc_dbg_node_t *n = *find(p);
    if (n == NULL) {
        pthread_mutex_unlock(&dbg_lock);
        _rc_fatal("rcmalloc: %s(): %p was not allocated by rcmalloc (or was freed long ago)\n",
                  who, p);
    }
    if (n->freed)
        report("double free", who, p, n->size);
    rc_dbg_hdr_t *h = hdr_of(p);
    if (h->magic != RC_LIVE_MAGIC || h->size != n->size)
        report("block header overwritten (a write before the start of the block)", who, p, n->size);
    check_guards(who, p, h);
    return h;
}

/* A quarantined jemalloc-framed block must still hold its freed fill. */
static void check_freed_fill(const rc_dbg_node_t *n, const char *who)
{
    const uint8_t *b = n->ptr;
    for (size_t i = 0; i < n->size; i++)
        if (b[i] != RC_FREED_BYTE)
            report("write after free", who, n->ptr, n->size);
}

/* The most recent frees, checked at every call: a write after free is
   found at the program's next allocator call, not thousands later. */
static void recheck_recent(const char *who)
{
    for (size_t i = 1; i <= RC_RECHECK; i++) {
        rc_dbg_node_t *n = quarantine[(q_next + RC_QUARANTINE - i) % RC_QUARANTINE];
        if (n)
            check_freed_fill(n, who);
    }
}

/* ---- paged blocks: a mapping each, the request against a guard page --------- */

static bool within(const void *a, const rc_dbg_node_t *n)
{
    return n->map_len && (const char *)a >= (const char *)n->base &&
           (const char *)a < (const char *)n->base + n->map_len;
}

/* A fault on one of our guard pages or quarantined blocks is reported
   like any other misuse; any other fault goes to the handler that was
   there before (the default: the process dies of SIGSEGV).  Runs without
   the lock: the process is about to end, and a fault here would only
   end it sooner. */
static void segv_handler(int sig, siginfo_t *si, void *ctx)
{
    const char *a = si->si_addr;
    ucontext_t *uc = ctx;
    const char *rw = (uc->uc_mcontext.gregs[REG_ERR] & 2) ? "write" : "read";
    for (size_t b = 0; b < NBUCKETS; b++)
        for (rc_dbg_node_t *n = buckets[b]; n; n = n->next) {
            if (!within(a, n))
                continue;
            const char *p = n->ptr;
            if (n->freed)
                _rc_fatal("rcmalloc: %s after free at %p, %zd bytes into the block at %p (block of %zu bytes)\n",
                          rw, (const void *)a, (ssize_t)(a - p), (const void *)p, n->size);
            if (a >= p)
                _rc_fatal("rcmalloc: %s past the end of the block at %p, at %p (block of %zu bytes)\n",
                          rw, (const void *)p, (const void *)a, n->size);
            _rc_fatal("rcmalloc: %s before the start of the block at %p, at %p (block of %zu bytes)\n",
                      rw, (const void *)p, (const void *)a, n->size);
        }
    uintptr_t in_pool = (uintptr_t)a & (RC_POOL_SIZE - 1);
    if ((_rc_checked & RC_CHECK_SECURE) && _rc_is_pool_block(a) &&
        in_pool >= RC_POOL_SIZE - RC_CARVE_BYTES)
        _rc_fatal("rcmalloc: %s past the end of the %u-byte blocks of the pool at %p, at %p (its guard page)\n",
                  rw, (unsigned)_rc_pool_of(a)->block_size, (const void *)_rc_pool_of(a),
                  (const void *)a);
    sigaction(sig, &old_segv, NULL);   /* not ours: fault again, as before */
}

/* Once: a fault on our guard pages is reported (debug.c's paged blocks,
   secure mode's pool guards). */
void _rc_guard_faults_report(void)
{
    if (atomic_exchange(&segv_installed, true))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

/* A paged block, under dbg_lock: NULL when the mapping fails. */
static char *paged_alloc(size_t size, size_t align, void **base, size_t *len)
{
    if (page_size == 0)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    _rc_guard_faults_report();
    size_t data = (size + sizeof(rc_dbg_hdr_t) + align - 1 + page_size - 1) & ~(page_size - 1);
    size_t total = data + 2 * page_size;
    char *m = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m + page_size, data, PROT_READ | PROT_WRITE) != 0) {
        munmap(m, total);
        return NULL;
    }
    *base = m;
    *len = total;
    paged_count++;
    uintptr_t end = (uintptr_t)(m + page_size + data);
    return (char *)((end - size) & ~(uintptr_t)(align - 1));
}

/* Freed: the pages go (the kernel's zero page would not do: any access
   must fault), the address range stays reserved while quarantined. */
static void paged_retire(rc_dbg_node_t *n)
{
    mmap(n->base, n->map_len, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

/* ---- entry points ---------------------------------------------------------- */

void *_rc_debug_malloc(size_t size, size_t align, bool zero)
{
    if (align < RC_ALIGN)
        align = RC_ALIGN;
    size_t off = (sizeof(rc_dbg_hdr_t) + align - 1) & ~(align - 1);
    if (size > PTRDIFF_MAX - off - RC_TAIL_GUARD - align) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&dbg_lock);
    recheck_recent("malloc");
    void *base = NULL;
    size_t map_len = 0, tail = RC_TAIL_GUARD;
    char *p = NULL;
    if ((size == 0 || size >= RC_PAGED_MIN) && paged_count < RC_PAGED_LIVE_MAX) {
        p = paged_alloc(size, align, &base, &map_len);
        if (p)
            tail = (size_t)((((uintptr_t)p + size + page_size - 1) & ~(page_size - 1)) -
                            ((uintptr_t)p + size));
    }
    if (p == NULL) {
        pthread_mutex_unlock(&dbg_lock);
        base = _rc_large_malloc(off + size + RC_TAIL_GUARD, align, false);
        if (base == NULL)
            return NULL;
        pthread_mutex_lock(&dbg_lock);
        p = (char *)base + off;
    }
    rc_dbg_node_t *n = reg_add(p);
    if (n == NULL) {
        pthread_mutex_unlock(&dbg_lock);
        if (map_len)
            munmap(base, map_len);
        else
            _rc_large_free(base);
        errno = ENOMEM;
        return NULL;
    }
    n->base = base;
    n->map_len = map_len;
    n->size = size;
    if (map_len) {
        paged_live += size;
        paged_mapped += map_len;
    }
    pthread_mutex_unlock(&dbg_lock);
    rc_dbg_hdr_t *h = hdr_of(p);
    h->magic = RC_LIVE_MAGIC;
    h->size = size;
    h->tail = tail;
    memset(h->front, RC_GUARD_BYTE, sizeof h->front);
    if (_rc_checked & RC_CHECK_DEBUG)
        memset(p, zero ? 0 : RC_FRESH_BYTE, size);
    else if (zero && map_len == 0)
        memset(p, 0, size);        /* secure mode: a fresh mapping is zero */
    memset(p + size, RC_GUARD_BYTE, tail);
    return p;
}

/* A block leaves the quarantine, under dbg_lock. */
static void evict(rc_dbg_node_t *n)
{
    void *base = n->base;
    size_t map_len = n->map_len;
    if (map_len == 0)
        check_freed_fill(n, "free");
    reg_remove(find(n->ptr));
    if (map_len) {
        munmap(base, map_len);
        paged_count--;
        paged_mapped -= map_len;
    } else {
        _rc_large_free(base);
    }
}

void _rc_debug_free(void *p, const char *who)
{
    pthread_mutex_lock(&dbg_lock);
    recheck_recent(who);
    rc_dbg_hdr_t *h = checked_live(who, p);
    rc_dbg_node_t *n = *find(p);
    n->freed = true;
    h->magic = RC_FREED_MAGIC;
    rc_dbg_node_t *old;
    if (n->map_len) {
        paged_retire(n);
        paged_live -= n->size;
        old = paged_quarantine[pq_next];
        paged_quarantine[pq_next] = n;
        pq_next = (pq_next + 1) % RC_PAGED_QUARANTINE;
    } else {
        memset(p, RC_FREED_BYTE, h->size);
        old = quarantine[q_next];
        quarantine[q_next] = n;
        q_next = (q_next + 1) % RC_QUARANTINE;
        q_bytes += n->size - (old ? old->size : 0);
        /* Bounded in bytes too (framed blocks are small unless paged
           mappings ran out: 4096 of 4 MiB would hold 16 GiB): the oldest
           go first, never the block just freed. */
        for (size_t k = q_next; q_bytes > RC_QUARANTINE_BYTES && quarantine[k] != n;
             k = (k + 1) % RC_QUARANTINE) {
            if (quarantine[k]) {
                q_bytes -= quarantine[k]->size;
                evict(quarantine[k]);
                quarantine[k] = NULL;
            }
        }
    }
    if (old)
        evict(old);
    pthread_mutex_unlock(&dbg_lock);
}

void *_rc_debug_realloc(void *p, size_t size)
{
    pthread_mutex_lock(&dbg_lock);
    size_t old = checked_live("realloc", p)->size;
    pthread_mutex_unlock(&dbg_lock);
    void *q = _rc_debug_malloc(size, 0, false);
    if (q == NULL)
        return NULL;               /* p stays valid */
    memcpy(q, p, old < size ? old : size);
    _rc_debug_free(p, "realloc");
    return q;
}

size_t _rc_debug_usable(const void *p)
{
    pthread_mutex_lock(&dbg_lock);
    size_t n = checked_live("malloc_usable_size", (void *)p)->size;
    pthread_mutex_unlock(&dbg_lock);
    return n;
}

/* At exit, every block still registered is checked: the guards of the live
   ones (an overflow of a block never freed) and the fill of the
   quarantined ones (a write after free with no allocator call after it). */
__attribute__((destructor)) static void debug_exit_check(void)
{
    if (!(_rc_checked & RC_CHECK_DEBUG))
        return;
    pthread_mutex_lock(&dbg_lock);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (rc_dbg_node_t *n = buckets[b]; n; n = n->next) {
            if (!n->freed)
                check_guards("exit", n->ptr, hdr_of(n->ptr));
            else if (n->map_len == 0)
                check_freed_fill(n, "exit");
        }
    pthread_mutex_unlock(&dbg_lock);
}

/* Paged blocks count with the large ones in the statistics (mallinfo2). */
void _rc_debug_stats(size_t *allocated, size_t *mapped)
{
    pthread_mutex_lock(&dbg_lock);
    *allocated += paged_live;
    *mapped += paged_mapped;
    pthread_mutex_unlock(&dbg_lock);
}

void _rc_debug_lock(void)       { pthread_mutex_lock(&dbg_lock); }
void _rc_debug_unlock(void)     { pthread_mutex_unlock(&dbg_lock); }
void _rc_debug_fork_child(void) { pthread_mutex_init(&dbg_lock, NULL); }
