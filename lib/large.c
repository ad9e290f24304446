/*
 * large.c -- blocks the pools and spans do not serve (larger, or aligned
 * beyond what a span gives) go to jemalloc.  This is the only file that
 * includes <jemalloc/jemalloc.h>, and it calls only the *allocx API and
 * mallctl.
 *
 * jemalloc is Debian's, linked into librcmalloc from libjemalloc_pic.a
 * (lib/jemalloc.am): the seven functions below are renamed rcje_* and
 * hidden, every other jemalloc symbol -- its malloc and free among them --
 * is made local, so nothing outside this file can reach it and the
 * process's malloc is always rcmalloc's.  Linking the shared libjemalloc
 * instead would load libstdc++, libm and libgcc_s into every process and
 * cost about 2.5 MiB of resident memory before the first malloc; it cannot
 * be dlopen()ed on demand either (its initial-exec TLS does not fit in the
 * static TLS that glibc keeps for libraries loaded late).  Its load-time
 * constructor is removed: jemalloc sets itself up on the first large
 * request, so a program that never makes one never pays for it.
 */
#include "internal.h"
#include "prof.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unwind.h>
#include <jemalloc/jemalloc.h>

#pragma GCC visibility push(hidden)
extern __typeof__(mallocx)  rcje_mallocx;
extern __typeof__(rallocx)  rcje_rallocx;
extern __typeof__(xallocx)  rcje_xallocx;
extern __typeof__(sallocx)  rcje_sallocx;
extern __typeof__(dallocx)  rcje_dallocx;
extern __typeof__(sdallocx) rcje_sdallocx;
extern __typeof__(mallctl)  rcje_mallctl;
#pragma GCC visibility pop

static int large_flags;          /* MALLOCX_ARENA of our arena, once made */
static unsigned large_arena;

/* One freed huge block (>= RC_HUGE_MIN, <= RCMALLOC_LARGE_CACHE bytes) kept
   for the next huge request, which takes it as it is when it is big enough
   and not more than eight times too big, or grows or shrinks it in place with
   xallocx.  This is what glibc's heap top gives a program that allocates,
   touches and frees big blocks in a loop: the same pages again, no faults.
   Everything else jemalloc frees goes back by decay (below), and huge
   extents (>= jemalloc's 8 MiB oversize threshold) at once.  The cached
   block itself goes back once it has waited RCMALLOC_LARGE_DECAY_MS: looked
   at on every large request and free, and at the end of each decay period
   of the pools (arena.c), so a program that frees a huge buffer for good
   does not keep it resident.  So RSS falls after a burst. */
#define RC_HUGE_MIN ((size_t)1 << 20)
static _Atomic(void *) huge_slot;
static _Atomic(size_t) huge_slot_bytes;   /* for stats: free, though jemalloc's */
static _Atomic(uint64_t) huge_slot_ms;    /* when it was cached (_rc_now_ms) */

/* Give the cached huge block back to jemalloc (which returns a huge extent
   to the OS at once). */
static void huge_drop(void)
{
    void *c = atomic_exchange_explicit(&huge_slot, NULL, memory_order_acquire);
    if (c) {
        atomic_fetch_sub_explicit(&huge_slot_bytes, rcje_sallocx(c, 0), memory_order_relaxed);
        rcje_dallocx(c, large_flags);
    }
}

void _rc_large_decay(uint64_t now)
{
    if (atomic_load_explicit(&huge_slot, memory_order_relaxed) == NULL ||
        _rc_opt.large_decay_ms < 0)
        return;
    if (now - atomic_load_explicit(&huge_slot_ms, memory_order_relaxed) >=
        (uint64_t)_rc_opt.large_decay_ms)
        huge_drop();
}

/* The same at the large side's own requests and frees: the clock is read
   only when a block is cached. */
static void huge_decay(void)
{
    if (atomic_load_explicit(&huge_slot, memory_order_relaxed) != NULL)
        _rc_large_decay(_rc_now_ms());
}

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
               rcje_mallctl("arenas.dirty_decay_ms", &old, &sz, &dirty, sizeof dirty) == 0;
    sz = sizeof large_arena;
    bool made = rcje_mallctl("arenas.create", &large_arena, &sz, NULL, 0) == 0;
    if (set)
        rcje_mallctl("arenas.dirty_decay_ms", NULL, NULL, &old, sizeof old);
    if (made)
        large_flags = MALLOCX_ARENA(large_arena);   /* else jemalloc's defaults */
}

/* jemalloc is set up on the first large request, not at start: a program
   that never makes one never pays for jemalloc's code and metadata. */
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

/* ---- the live set: which pointers this side handed out -----------------
 *
 * jemalloc, given a pointer it never returned (a stack or static address, an
 * interior pointer, a block freed twice), crashes or corrupts its metadata
 * far from the bug.  Blocks here are >= 1 MiB (or odd alignments), so an
 * open-addressing set of the live ones, under one lock, costs nothing next
 * to what such a block costs; a free or realloc of a pointer not in it is
 * reported in one line and aborts, as glibc does.  The table is mmap'ed
 * (never through the allocator) and doubles at half full.
 *
 * An entry is the pointer, plus LIVE_SAMPLED when the block carries a heap
 * profile sample (prof.c serves sampled blocks, of any size, from here):
 * the free that finds the pointer tells the profiler, and no other free
 * ever has to. */

static rc_lock_t live_lock = RC_LOCK_INIT;
static uintptr_t *live_tab;            /* 0 empty, 1 deleted, else a pointer */
static size_t live_cap, live_used;     /* slots; slots not empty */

#define LIVE_EMPTY   ((uintptr_t)0)
#define LIVE_DELETED ((uintptr_t)1)
#define LIVE_SAMPLED ((uintptr_t)8)    /* pointers are 16-byte aligned */

static size_t live_hash(uintptr_t p)    /* the LIVE_SAMPLED bit is shifted out */
{
    return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull);
}

static void live_put_locked(uintptr_t p);

static bool live_grow_locked(void)
{
    size_t ncap = live_cap ? live_cap * 2 : 1024;
    uintptr_t *old = live_tab, *nt = _rc_os_map(ncap * sizeof *nt);
    size_t ocap = live_cap;
    if (nt == NULL)
        return false;
    live_tab = nt;
    live_cap = ncap;
    live_used = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] > LIVE_DELETED)
            live_put_locked(old[i]);
    if (old)
        _rc_os_unmap(old, ocap * sizeof *old);
    return true;
}

static void live_put_locked(uintptr_t p)
{
    size_t mask = live_cap - 1, i = live_hash(p) & mask;
    while (live_tab[i] > LIVE_DELETED)
        i = (i + 1) & mask;
    if (live_tab[i] == LIVE_EMPTY)
        live_used++;
    live_tab[i] = p;
}

/* Record a block handed out.  False if the table cannot grow (the caller
   gives the block back and fails with ENOMEM). */
static bool live_add(void *ptr, uintptr_t sampled)
{
    pthread_mutex_lock(&live_lock);
    bool ok = (live_used + 1) * 2 <= live_cap || live_grow_locked();
    if (ok)
        live_put_locked((uintptr_t)ptr | sampled);
    pthread_mutex_unlock(&live_lock);
    return ok;
}

/* Forget a block being freed: its entry, or 0 if it was never handed out
   (or is already free).  The caller drops a sampled block's sample before
   jemalloc can hand the address out again (and another sample take it). */
static uintptr_t *live_slot_locked(const void *ptr)    /* NULL if none */
{
    if (live_cap == 0)
        return NULL;
    size_t mask = live_cap - 1, i = live_hash((uintptr_t)ptr) & mask;
    for (; live_tab[i] != LIVE_EMPTY; i = (i + 1) & mask)
        if ((live_tab[i] & ~LIVE_SAMPLED) == (uintptr_t)ptr)
            return &live_tab[i];
    return NULL;
}

static uintptr_t live_remove(const void *ptr)
{
    uintptr_t found = 0;
    pthread_mutex_lock(&live_lock);
    uintptr_t *slot = live_slot_locked(ptr);
    if (slot) {
        found = *slot;
        *slot = LIVE_DELETED;
    }
    pthread_mutex_unlock(&live_lock);
    return found;
}

static _Noreturn void not_ours(const char *who, const void *ptr)
{
    _rc_fatal("rcmalloc: %s(): invalid pointer %p (not allocated by rcmalloc, "
              "or already freed)\n", who, ptr);
}

/* realloc sampled a block of ours where it is (prof.c). */
void _rc_large_mark_sampled(const void *ptr)
{
    pthread_mutex_lock(&live_lock);
    uintptr_t *slot = live_slot_locked(ptr);
    if (slot)
        *slot |= LIVE_SAMPLED;
    pthread_mutex_unlock(&live_lock);
}

void _rc_large_lock(void)       { pthread_mutex_lock(&live_lock); }
void _rc_large_unlock(void)     { pthread_mutex_unlock(&live_lock); }
void _rc_large_fork_child(void) { pthread_mutex_init(&live_lock, NULL); }

static void *huge_reuse(size_t size)
{
    void *c = atomic_exchange_explicit(&huge_slot, NULL, memory_order_acquire);
    if (c == NULL)
        return NULL;
    size_t u = rcje_sallocx(c, 0);
    atomic_fetch_sub_explicit(&huge_slot_bytes, u, memory_order_relaxed);
    if (u < size || u / 8 > size)
        u = rcje_xallocx(c, size, 0, large_flags);
    if (u >= size)
        return c;
    rcje_dallocx(c, large_flags);
    return NULL;
}

/* Sampled blocks bypass jemalloc's thread caches in a thread that has
   taken few samples: a thread that only ever samples a few blocks does not
   set one up (measured: that doubled the cost of a short thread's first
   samples).  One that samples many uses its cache (measured: a sampled
   block's malloc and free without it cost 5000 instructions, 3% of the
   realloc row). */
#define SAMPLED_FLAGS(sampled) ((sampled) && !_rc_prof_many ? MALLOCX_TCACHE_NONE : 0)

static void *large_malloc(size_t size, size_t align, bool zero, uintptr_t sampled)
{
    if (rc_unlikely(size > PTRDIFF_MAX || align > ((size_t)1 << 40))) {
        errno = ENOMEM;
        return NULL;
    }
    large_ensure();
    void *p = NULL;
    if (size >= RC_HUGE_MIN && align <= RC_ALIGN && !zero && _rc_opt.large_cache)
        p = huge_reuse(size);
    else
        huge_decay();
    if (p == NULL) {
        int flags = large_flags | (align > RC_ALIGN ? MALLOCX_ALIGN(align) : 0) |
                    (zero ? MALLOCX_ZERO : 0) | SAMPLED_FLAGS(sampled);
        p = rcje_mallocx(size ? size : 1, flags);
    }
    if (rc_unlikely(p == NULL || !live_add(p, sampled))) {
        if (p)
            rcje_dallocx(p, large_flags);
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

void *_rc_large_malloc(size_t size, size_t align, bool zero)
{
    return large_malloc(size, align, zero, 0);
}

/* A sampled block of any size (prof.c).  jemalloc aligns blocks of 8 bytes
   and less to 8 only: they get 16. */
void *_rc_large_malloc_sampled(size_t size, size_t align, bool zero)
{
    return large_malloc(size < RC_ALIGN ? RC_ALIGN : size, align, zero, LIVE_SAMPLED);
}


void *_rc_large_realloc(void *ptr, size_t size)
{
    if (rc_unlikely(size > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t was = live_remove(ptr);
    if (rc_unlikely(!was))
        not_ours("realloc", ptr);
    uintptr_t sampled = was & LIVE_SAMPLED;   /* realloc_profiled's business */
    void *q = rcje_rallocx(ptr, size, large_flags);
    if (rc_unlikely(q == NULL)) {
        live_add(ptr, sampled);   /* the old block is still the caller's (its
                                     slot was just freed: this cannot fail) */
        errno = ENOMEM;
        return NULL;
    }
    if (rc_unlikely(!live_add(q, sampled)))
        _rc_fatal("rcmalloc: realloc(): no memory to record the large block %p\n", q);
    return q;
}

void _rc_large_free(void *ptr)
{
    uintptr_t was = live_remove(ptr);
    if (rc_unlikely(!was))
        not_ours("free", ptr);
    if (rc_unlikely(was & LIVE_SAMPLED))
        _rc_prof_forget(ptr);
    size_t u = rcje_sallocx(ptr, 0);
    if (u >= RC_HUGE_MIN && u <= (size_t)_rc_opt.large_cache) {
        atomic_fetch_add_explicit(&huge_slot_bytes, u, memory_order_relaxed);
        atomic_store_explicit(&huge_slot_ms, _rc_now_ms(), memory_order_relaxed);
        ptr = atomic_exchange_explicit(&huge_slot, ptr, memory_order_acq_rel);
        if (ptr == NULL)
            return;
        u = rcje_sallocx(ptr, 0);
        atomic_fetch_sub_explicit(&huge_slot_bytes, u, memory_order_relaxed);
    } else {
        huge_decay();
    }
    rcje_sdallocx(ptr, u, SAMPLED_FLAGS(was & LIVE_SAMPLED));
}

size_t _rc_large_usable(const void *ptr)
{
    return rcje_sallocx(ptr, 0);
}

size_t _rc_large_trim(void)
{
    if (!atomic_load_explicit(&large_ready, memory_order_acquire))
        return 0;
    huge_drop();
    size_t before = 0, after = 0, sz = sizeof(size_t);
    uint64_t epoch = 1;
    rcje_mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    rcje_mallctl("stats.resident", &before, &sz, NULL, 0);
    char cmd[64];
    _rc_format(cmd, sizeof cmd, "arena.%u.purge", 4096u);   /* MALLCTL_ARENAS_ALL */
    rcje_mallctl(cmd, NULL, NULL, NULL, 0);
    rcje_mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    rcje_mallctl("stats.resident", &after, &sz, NULL, 0);
    return before > after ? before - after : 0;
}

void _rc_large_stats(size_t *allocated, size_t *active, size_t *mapped, size_t *resident,
                     bool *started)
{
    *allocated = *active = *mapped = *resident = 0;
    *started = atomic_load_explicit(&large_ready, memory_order_acquire);
    if (!*started)
        return;                    /* asking would set jemalloc up */
    uint64_t epoch = 1;
    size_t sz = sizeof(size_t);
    rcje_mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    rcje_mallctl("stats.allocated", allocated, &sz, NULL, 0);
    rcje_mallctl("stats.active", active, &sz, NULL, 0);
    rcje_mallctl("stats.mapped", mapped, &sz, NULL, 0);
    rcje_mallctl("stats.resident", resident, &sz, NULL, 0);
    size_t cached = atomic_load_explicit(&huge_slot_bytes, memory_order_relaxed);
    *allocated -= cached < *allocated ? cached : *allocated;   /* free to the program */
}

/* ---- what jemalloc's profiler needs from libm and libgcc_s --------------

   Only jemalloc's heap profiler (MALLOC_CONF=prof:true) calls log, exp,
   round and the unwinder.  lib/jemalloc.am renames those references to the
   rcje_* functions below, which look the real ones up on first use, so
   that librcmalloc does not load libm and libgcc_s into every process for
   a feature that is off by default (neither library has TLS, so loading
   them late always works). */

static void *dep_sym(const char *lib, const char *name)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    void *f = h ? dlsym(h, name) : NULL;
    if (f == NULL)
        _rc_fatal("rcmalloc: jemalloc's profiler needs %s from %s, which cannot be loaded\n",
                  name, lib);
    return f;
}

#define RCJE_DEP(ret, name, lib, params, args)                              \
    ret rcje_##name params;                                                 \
    ret rcje_##name params                                                  \
    {                                                                       \
        static _Atomic(ret (*) params) fn;                                  \
        ret (*f) params = atomic_load_explicit(&fn, memory_order_acquire);  \
        if (f == NULL) {                                                    \
            f = (ret (*) params)dep_sym(lib, #name);                        \
            atomic_store_explicit(&fn, f, memory_order_release);            \
        }                                                                   \
        return f args;                                                      \
    }

RCJE_DEP(double, log, "libm.so.6", (double x), (x))
RCJE_DEP(double, exp, "libm.so.6", (double x), (x))
RCJE_DEP(double, round, "libm.so.6", (double x), (x))
RCJE_DEP(_Unwind_Reason_Code, _Unwind_Backtrace, "libgcc_s.so.1",
         (_Unwind_Trace_Fn trace, void *arg), (trace, arg))
RCJE_DEP(_Unwind_Ptr, _Unwind_GetIP, "libgcc_s.so.1",
         (struct _Unwind_Context *ctx), (ctx))

/* jemalloc's clock falls back to gettimeofday (it uses clock_gettime when
   it can).  gettimeofday is an IFUNC in glibc: importing it runs its
   resolver at load time in every process, which maps a part of libc's text
   no other start-up code touches (64 KiB and more of RSS with large page
   cache folios).  This serves the same from clock_gettime. */
int rcje_gettimeofday(struct timeval *tv, void *tz);
int rcje_gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}
