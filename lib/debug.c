/*
 * debug.c -- RCMALLOC_DEBUG=1: every block, small or large, comes from here.
 * Each block is framed by guard bytes, filled with RC_FRESH_BYTE when handed
 * out and RC_FREED_BYTE when freed, and registered, so that a double free, a
 * write past either end, a write after free and a free of a pointer
 * rcmalloc never returned are each reported as one line naming the address,
 * followed by abort().  Main entry points: _rc_debug_malloc,
 * _rc_debug_free.  Slow by design; nothing here touches the normal paths.
 *
 *   base (jemalloc)                      user pointer
 *   |                                    |
 *   [ padding to alignment ][ rc_dbg_hdr ][ user bytes ... ][ tail guard ]
 *                           magic, size,  <- size bytes ->  RC_TAIL_GUARD
 *                           base, front    RC_FRESH_BYTE    bytes of
 *                           guard          when fresh       RC_GUARD_BYTE
 *
 * Freed blocks wait in a quarantine of RC_QUARANTINE blocks before their
 * memory is reused, so a double free is still recognised and a write after
 * free is caught when the block leaves the quarantine.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define RC_FRESH_BYTE  0xCB
#define RC_FREED_BYTE  0xDF
#define RC_GUARD_BYTE  0xFD
#define RC_TAIL_GUARD  16
#define RC_QUARANTINE  4096
#define RC_LIVE_MAGIC  0x6c6976656d656d21ull
#define RC_FREED_MAGIC 0x667265656d656d21ull
#define NBUCKETS       65536

typedef struct rc_dbg_hdr {
    uint64_t magic;
    size_t   size;            /* requested bytes */
    void    *base;            /* what jemalloc returned */
    uint8_t  front[8];        /* RC_GUARD_BYTE */
} rc_dbg_hdr_t;

typedef struct rc_dbg_node {  /* the registry: every live or quarantined block */
    void *ptr;
    struct rc_dbg_node *next;
} rc_dbg_node_t;

static rc_lock_t dbg_lock = RC_LOCK_INIT;
static rc_dbg_node_t *buckets[NBUCKETS];
static rc_dbg_node_t *spare_nodes;
static void *quarantine[RC_QUARANTINE];
static size_t q_next;

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

static bool reg_add(void *p)
{
    if (spare_nodes == NULL) {
        size_t chunk = 1 << 20;
        rc_dbg_node_t *nodes = _rc_os_map(chunk);
        if (nodes == NULL)
            return false;
        for (size_t i = 0; i < chunk / sizeof *nodes; i++) {
            nodes[i].next = spare_nodes;
            spare_nodes = &nodes[i];
        }
    }
    rc_dbg_node_t *n = spare_nodes;
    spare_nodes = n->next;
    size_t b = bucket_of(p);
    n->ptr = p;
    n->next = buckets[b];
    buckets[b] = n;
    return true;
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
    for (int i = 0; i < RC_TAIL_GUARD; i++)
        if (tail[i] != RC_GUARD_BYTE)
            report("write past the end of the block", who, p, h->size);
}

/* The registered live block `p`, or a report and abort. */
static rc_dbg_hdr_t *checked_live(const char *who, void *p)
{
    rc_dbg_node_t **link = find(p);
    if (*link == NULL) {
        pthread_mutex_unlock(&dbg_lock);
        _rc_fatal("rcmalloc: %s(): %p was not allocated by rcmalloc (or was freed long ago)\n",
                  who, p);
    }
    rc_dbg_hdr_t *h = hdr_of(p);
    if (h->magic == RC_FREED_MAGIC)
        report("double free", who, p, h->size);
    if (h->magic != RC_LIVE_MAGIC)
        report("block header overwritten", who, p, 0);
    check_guards(who, p, h);
    return h;
}

void *_rc_debug_malloc(size_t size, size_t align, bool zero)
{
    if (align < RC_ALIGN)
        align = RC_ALIGN;
    size_t off = (sizeof(rc_dbg_hdr_t) + align - 1) & ~(align - 1);
    if (size > PTRDIFF_MAX - off - RC_TAIL_GUARD) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = _rc_large_malloc(off + size + RC_TAIL_GUARD, align, false);
    if (base == NULL)
        return NULL;
    char *p = base + off;
    rc_dbg_hdr_t *h = hdr_of(p);
    h->magic = RC_LIVE_MAGIC;
    h->size = size;
    h->base = base;
    memset(h->front, RC_GUARD_BYTE, sizeof h->front);
    memset(p, zero ? 0 : RC_FRESH_BYTE, size);
    memset(p + size, RC_GUARD_BYTE, RC_TAIL_GUARD);
    pthread_mutex_lock(&dbg_lock);
    bool ok = reg_add(p);
    pthread_mutex_unlock(&dbg_lock);
    if (!ok) {
        _rc_large_free(base);
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

/* A block leaves the quarantine: its freed fill must be intact. */
static void evict(void *p)
{
    rc_dbg_hdr_t *h = hdr_of(p);
    const uint8_t *b = p;
    for (size_t i = 0; i < h->size; i++)
        if (b[i] != RC_FREED_BYTE)
            report("write after free", "free", p, h->size);
    void *base = h->base;
    reg_remove(find(p));
    _rc_large_free(base);
}

void _rc_debug_free(void *p, const char *who)
{
    pthread_mutex_lock(&dbg_lock);
    rc_dbg_hdr_t *h = checked_live(who, p);
    h->magic = RC_FREED_MAGIC;
    memset(p, RC_FREED_BYTE, h->size);
    void *old = quarantine[q_next];
    quarantine[q_next] = p;
    q_next = (q_next + 1) % RC_QUARANTINE;
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

void _rc_debug_lock(void)       { pthread_mutex_lock(&dbg_lock); }
void _rc_debug_unlock(void)     { pthread_mutex_unlock(&dbg_lock); }
void _rc_debug_fork_child(void) { pthread_mutex_init(&dbg_lock, NULL); }
