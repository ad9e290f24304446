/*
 * large.c -- blocks above rc_small_max, and alignments the pools cannot
 * serve, go to jemalloc.  This is the only file that includes
 * <jemalloc/jemalloc.h>, and it calls only the *allocx API and mallctl:
 * Debian's libjemalloc also exports plain malloc/free, which must never be
 * reached from here (the process's malloc is rcmalloc's).
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <jemalloc/jemalloc.h>

static int large_flags;          /* MALLOCX_ARENA of our arena, once made */
static unsigned large_arena;

/* One freed huge block (>= RC_HUGE_MIN, <= RCMALLOC_LARGE_CACHE bytes) kept
   for the next huge request, which takes it as it is when it is big enough
   and not more than eight times too big, or grows or shrinks it in place with
   xallocx.  This is what glibc's heap top gives a program that allocates,
   touches and frees big blocks in a loop: the same pages again, no faults.
   Everything else jemalloc frees goes back by decay (below), and huge
   extents (>= jemalloc's 8 MiB oversize threshold) at once, so RSS falls
   after a burst to within one cached block. */
#define RC_HUGE_MIN ((size_t)1 << 20)
static _Atomic(void *) huge_slot;
static _Atomic(size_t) huge_slot_bytes;   /* for stats: free, though jemalloc's */

/* Our own jemalloc arena for every large block, so that its settings are
   ours: freed extents stay dirty for RCMALLOC_LARGE_DECAY_MS and are then
   returned with MADV_DONTNEED (jemalloc's muzzy decay is 0).  A user's
   MALLOC_CONF dirty_decay_ms is respected unless RCMALLOC_LARGE_DECAY_MS is
   set too; every other MALLOC_CONF setting applies as usual. */
static void large_init(void)
{
    const char *conf = _rc_env_get("MALLOC_CONF");
    bool user_decay = conf && strstr(conf, "dirty_decay_ms");
    bool env_decay = _rc_env_get("RCMALLOC_LARGE_DECAY_MS") != NULL;
    /* The decay time is given as the default for new arenas while ours is
       created, then the old default is put back.  (Setting
       arena.<i>.dirty_decay_ms on a live arena in jemalloc 5.3 makes it
       purge every freed extent at once, whatever the value.) */
    ssize_t old = 0, dirty = _rc_opt.large_decay_ms;
    size_t sz = sizeof old;
    bool set = (env_decay || !user_decay) &&
               mallctl("arenas.dirty_decay_ms", &old, &sz, &dirty, sizeof dirty) == 0;
    sz = sizeof large_arena;
    bool made = mallctl("arenas.create", &large_arena, &sz, NULL, 0) == 0;
    if (set)
        mallctl("arenas.dirty_decay_ms", NULL, NULL, &old, sizeof old);
    if (made)
        large_flags = MALLOCX_ARENA(large_arena);   /* else jemalloc's defaults */
}

/* jemalloc is set up on the first large request, not at start: a program
   that never makes one never pays for jemalloc's metadata (about 2 MiB of
   resident memory). */
static pthread_once_t large_once = PTHREAD_ONCE_INIT;
static atomic_bool large_ready;

static RC_NOINLINE void large_start(void)
{
    pthread_once(&large_once, large_init);
    atomic_store_explicit(&large_ready, true, memory_order_release);
}

RC_INLINE void large_ensure(void)
{
    if (rc_unlikely(!atomic_load_explicit(&large_ready, memory_order_acquire)))
        large_start();
}

static void *huge_reuse(size_t size)
{
    void *c = atomic_exchange_explicit(&huge_slot, NULL, memory_order_acquire);
    if (c == NULL)
        return NULL;
    size_t u = sallocx(c, 0);
    atomic_fetch_sub_explicit(&huge_slot_bytes, u, memory_order_relaxed);
    if (u < size || u / 8 > size)
        u = xallocx(c, size, 0, large_flags);
    if (u >= size)
        return c;
    dallocx(c, large_flags);
    return NULL;
}

void *_rc_large_malloc(size_t size, size_t align, bool zero)
{
    if (rc_unlikely(size > PTRDIFF_MAX || align > ((size_t)1 << 40))) {
        errno = ENOMEM;
        return NULL;
    }
    large_ensure();
    if (size >= RC_HUGE_MIN && align <= RC_ALIGN && !zero && _rc_opt.large_cache) {
        void *c = huge_reuse(size);
        if (c)
            return c;
    }
    int flags = large_flags | (align > RC_ALIGN ? MALLOCX_ALIGN(align) : 0) | (zero ? MALLOCX_ZERO : 0);
    void *p = mallocx(size ? size : 1, flags);
    if (rc_unlikely(p == NULL))
        errno = ENOMEM;
    return p;
}

void *_rc_large_realloc(void *ptr, size_t size)
{
    if (rc_unlikely(size > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = rallocx(ptr, size, large_flags);
    if (rc_unlikely(q == NULL))
        errno = ENOMEM;
    return q;
}

void _rc_large_free(void *ptr)
{
    size_t u = sallocx(ptr, 0);
    if (u >= RC_HUGE_MIN && u <= (size_t)_rc_opt.large_cache) {
        atomic_fetch_add_explicit(&huge_slot_bytes, u, memory_order_relaxed);
        ptr = atomic_exchange_explicit(&huge_slot, ptr, memory_order_acq_rel);
        if (ptr == NULL)
            return;
        u = sallocx(ptr, 0);
        atomic_fetch_sub_explicit(&huge_slot_bytes, u, memory_order_relaxed);
    }
    sdallocx(ptr, u, 0);
}

size_t _rc_large_usable(const void *ptr)
{
    return sallocx(ptr, 0);
}

size_t _rc_large_trim(void)
{
    void *c = atomic_exchange_explicit(&huge_slot, NULL, memory_order_acquire);
    if (c) {
        atomic_fetch_sub_explicit(&huge_slot_bytes, sallocx(c, 0), memory_order_relaxed);
        dallocx(c, 0);
    }
    size_t before = 0, after = 0, sz = sizeof(size_t);
    uint64_t epoch = 1;
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    mallctl("stats.resident", &before, &sz, NULL, 0);
    char cmd[64];
    _rc_format(cmd, sizeof cmd, "arena.%u.purge", 4096u);   /* MALLCTL_ARENAS_ALL */
    mallctl(cmd, NULL, NULL, NULL, 0);
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    mallctl("stats.resident", &after, &sz, NULL, 0);
    return before > after ? before - after : 0;
}

void _rc_large_stats(size_t *allocated, size_t *active, size_t *mapped, size_t *resident)
{
    uint64_t epoch = 1;
    size_t sz = sizeof(size_t);
    *allocated = *active = *mapped = *resident = 0;
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    mallctl("stats.allocated", allocated, &sz, NULL, 0);
    mallctl("stats.active", active, &sz, NULL, 0);
    mallctl("stats.mapped", mapped, &sz, NULL, 0);
    mallctl("stats.resident", resident, &sz, NULL, 0);
    size_t cached = atomic_load_explicit(&huge_slot_bytes, memory_order_relaxed);
    *allocated -= cached < *allocated ? cached : *allocated;   /* free to the program */
}
