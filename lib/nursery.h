/*
 * nursery.h -- the collector's per-thread nurseries (described in gc.c):
 * the birth of a container and the death of one still in its own thread's
 * nursery, inlined into rc_new and rc_decref (object.c); everything else
 * about them (drains, counts at a collection) stays in gc.c.  Measured
 * (callgrind, bench/rc_bintrees depth 13): the calls into gc.c for these
 * two cost ~57 and ~69 instructions per node, inlined ~20 and ~25.
 */
#ifndef RC_NURSERY_H
#define RC_NURSERY_H
#include "lifetime.h"
#include "stw.h"
#include <limits.h>

/* The two words of rc_gc_head (lifetime.h).  Every container is in one of
   these states (nx, pv):
     untracked          0, 0 or GC_WAS_TRACKED (a dying object that was)
     in a nursery       slot address | GC_NURSERY, 0 (generation 0)
     on a generation    next, prev | gen             (list heads: no bits)
     in a collection    next | GC_UNREACHABLE if in its unreachable set,
                        prev | GC_COLLECTING | gen, where from update_refs
                        until move_unreachable files it (and again in a
                        rescue, for the unreachable set) the prev part holds
                        gc_refs << GC_REFS_SHIFT: the list is then linked
                        forward only (CPython's trick).  Only the world
                        stopped sees that: other threads never do.
   gen: the generation list it is (or was, for a collection's objects, so
   that walks report it) on; PERMANENT for the frozen one.  Nursery slots
   are 8-aligned, list heads 16-aligned: room for the bits either way.
   Words another thread may read while they change (a death deciding where
   its object is) are read and written with the atomics below. */
#define GC_UNREACHABLE 1u   /* nx: in the running collection's unreachable set */
#define GC_NURSERY     2u   /* nx: the rest is its nursery slot's address */
#define GC_NX_FLAGS    3u
#define GC_COLLECTING  1u   /* pv: in the lists of the running collection */
#define GC_WAS_TRACKED 2u   /* pv: set when a dying object is untracked */
#define GC_GEN_SHIFT   2    /* pv bits 2-3: the generation */
#define GC_GEN_MASK    (3u << GC_GEN_SHIFT)
#define GC_PV_FLAGS    15u
#define GC_REFS_SHIFT  4
#define GC_REFS_ONE    ((uintptr_t)1 << GC_REFS_SHIFT)

static inline uintptr_t gc_nx(const rc_gc_head *g)
{
    return __atomic_load_n(&g->nx, __ATOMIC_RELAXED);
}
static inline uintptr_t gc_pv(const rc_gc_head *g)
{
    return __atomic_load_n(&g->pv, __ATOMIC_RELAXED);
}
/* a death reading where its object is */
static inline uintptr_t gc_nx_acquire(const rc_gc_head *g)
{
    return __atomic_load_n(&g->nx, __ATOMIC_ACQUIRE);
}
static inline uintptr_t gc_pv_acquire(const rc_gc_head *g)
{
    return __atomic_load_n(&g->pv, __ATOMIC_ACQUIRE);
}
static inline void gc_set_nx(rc_gc_head *g, uintptr_t w)
{
    __atomic_store_n(&g->nx, w, __ATOMIC_RELAXED);
}
static inline void gc_set_pv(rc_gc_head *g, uintptr_t w)
{
    __atomic_store_n(&g->pv, w, __ATOMIC_RELAXED);
}
/* a change of state another thread's death may be reading */
static inline void gc_publish_nx(rc_gc_head *g, uintptr_t w)
{
    __atomic_store_n(&g->nx, w, __ATOMIC_RELEASE);
}
static inline void gc_publish_pv(rc_gc_head *g, uintptr_t w)
{
    __atomic_store_n(&g->pv, w, __ATOMIC_RELEASE);
}

/* 16 KiB a thread: a nursery fills after this many births since the last
   collection or fill, and its live objects are then linked into
   generation 0 (to die off the list, under old_lock).  1024 -> 2048 took
   binary-trees (depth 13) from 387.8 to 385.8 instructions a node; 4096
   gave 385.1. */
#define NURSERY_SLOTS 2048
#define COUNT_BATCH   64

typedef struct nursery {
    rc_gc_head *_Atomic slot[NURSERY_SLOTS];
    _Atomic size_t n;           /* slots handed out: owner, or the collector */
    _Atomic long delta;         /* births - deaths not yet in young_count */
    _Atomic long flush_at;      /* the delta at which a birth must flush it:
                                   set by the owner's flush, 0 (at once) by
                                   a change of the threshold (gc.c) */
    int in_use;                 /* owned by a live thread (nursery_lock) */
    struct nursery *_Atomic next_all;   /* every nursery, never freed */
} nursery;

extern __thread nursery *_rc_gc_tls_nursery;
extern _Atomic long _rc_gc_young_count;
extern _Atomic long _rc_gc_trigger0;

nursery *_rc_gc_nursery_take(void);         /* this thread's first */
void _rc_gc_nursery_drain(nursery *nu);     /* a full one: into generation 0 */
void _rc_gc_count_flush(nursery *nu);       /* delta into young_count; collect? */

static inline nursery *my_nursery(void)
{
    nursery *nu = _rc_gc_tls_nursery;
    return __builtin_expect(nu != NULL, 1) ? nu : _rc_gc_nursery_take();
}

/* Put g (untracked) into slot n of this thread's nursery, which has room.
   In a critical region. */
static inline void nursery_put(nursery *nu, size_t n, rc_gc_head *g)
{
    rc_gc_head *_Atomic *s = &nu->slot[n];
    gc_set_pv(g, 0);
    gc_publish_nx(g, (uintptr_t)s | GC_NURSERY);
    atomic_store_explicit(s, g, memory_order_relaxed);
    atomic_store_explicit(&nu->n, n + 1, memory_order_relaxed);
}

/* Put g (untracked) into this thread's nursery.  In a critical region. */
static inline void nursery_add(nursery *nu, rc_gc_head *g)
{
    size_t n = atomic_load_explicit(&nu->n, memory_order_relaxed);
    if (__builtin_expect(n == NURSERY_SLOTS, 0)) {
        _rc_gc_nursery_drain(nu);
        n = 0;
    }
    nursery_put(nu, n, g);
}

/* A birth flushes the delta when it reaches COUNT_BATCH or would take
   count[0] past the trigger: the flush works out which comes first as
   flush_at, so that a birth only compares (gc.c: _rc_gc_count_flush). */
static inline long count_birth_add(nursery *nu)
{
    long d = atomic_load_explicit(&nu->delta, memory_order_relaxed) + 1;
    atomic_store_explicit(&nu->delta, d, memory_order_relaxed);
    return d;
}
static inline void count_birth(nursery *nu)
{
    if (__builtin_expect(count_birth_add(nu) >= atomic_load_explicit(&nu->flush_at,
                                                                     memory_order_relaxed), 0))
        _rc_gc_count_flush(nu);
}

/* A death takes count[0] down by one, never below 0 (as CPython's): exact
   in one thread. */
static inline void count_death(nursery *nu)
{
    long d = atomic_load_explicit(&nu->delta, memory_order_relaxed) - 1;
    if (atomic_load_explicit(&_rc_gc_young_count, memory_order_relaxed) + d >= 0)
        atomic_store_explicit(&nu->delta, d, memory_order_relaxed);
}

/* rc_new of a container: count (and perhaps collect) first -- obj, not
   initialized by its creator yet, must not be traversed by a collection its
   own birth started -- then into the nursery. */
static inline __attribute__((always_inline)) void _rc_gc_link_new(void *obj)
{
    nursery *nu = my_nursery();
    count_birth(nu);
    _rc_stw_crit_enter();
    nursery_add(nu, rc_gc_of(obj));
    _rc_stw_crit_leave();
}

/* Will a birth in this thread need neither a count flush (and perhaps a
   collection) nor a nursery drain?  Then rc_new takes its call-free path
   (_rc_gc_link_new_quick). */
static inline __attribute__((always_inline)) bool _rc_gc_birth_is_quick(const nursery *nu)
{
    return __builtin_expect(nu != NULL, 1) &&
           atomic_load_explicit(&nu->delta, memory_order_relaxed) + 1 <
               atomic_load_explicit(&nu->flush_at, memory_order_relaxed) &&
           atomic_load_explicit(&nu->n, memory_order_relaxed) < NURSERY_SLOTS;
}

/* _rc_gc_link_new after _rc_gc_birth_is_quick(nu) said yes (in this
   thread, nothing has changed nu since). */
static inline __attribute__((always_inline)) void _rc_gc_link_new_quick(nursery *nu, void *obj)
{
    count_birth_add(nu);            /* needs no flush: checked */
    _rc_stw_crit_enter();
    nursery_put(nu, atomic_load_explicit(&nu->n, memory_order_relaxed), rc_gc_of(obj));
    _rc_stw_crit_leave();
}

/* A dying container still in this thread's nursery (the common case: it
   is young, and dies where it was born): empty its slot, a plain store
   since only the owner drains its nursery; 0 if it is elsewhere, for
   _rc_gc_untrack_dying to find. */
static inline __attribute__((always_inline)) int _rc_gc_untrack_young(void *obj)
{
    nursery *nu = _rc_gc_tls_nursery;
    rc_gc_head *g = rc_gc_of(obj);
    int took = 0;
    if (__builtin_expect(nu == NULL, 0))
        return 0;
    _rc_stw_crit_enter();
    /* in a nursery (never also in a collection's lists) */
    /* one compare: nx - GC_NURSERY lies in our slots only if nx is one
       of our slots with GC_NURSERY (a list's head is never there, and 0
       wraps to the top) */
    uintptr_t s = gc_nx_acquire(g) - GC_NURSERY;
    if (__builtin_expect(s - (uintptr_t)&nu->slot[0] < sizeof nu->slot, 1)) {
        atomic_store_explicit((rc_gc_head *_Atomic *)s, NULL, memory_order_relaxed);
        gc_set_nx(g, 0);
        gc_publish_pv(g, GC_WAS_TRACKED);
        took = 1;
    }
    _rc_stw_crit_leave();
    if (took)
        count_death(nu);
    return took;
}

#endif
