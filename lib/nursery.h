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

/* rc_gc_head.flags */
#define GC_COLLECTING  1u   /* in the young list of the running collection */
#define GC_UNREACHABLE 2u   /* in its unreachable set */
#define GC_WAS_TRACKED 4u   /* set when a dying object is untracked */
#define GC_NURSERY     8u   /* in a nursery slot; gc_refs = the slot's address */
#define GC_GEN_SHIFT   4    /* bits 4-5: the generation list it is on, */
#define GC_GEN_MASK    (3u << GC_GEN_SHIFT)  /* PERMANENT for the frozen one */

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

/* flags words read outside the lists' lock (a death deciding where its
   object is) are accessed with these */
static inline uint32_t flags_load(const rc_gc_head *g)
{
    return __atomic_load_n(&g->flags, __ATOMIC_ACQUIRE);
}
static inline void flags_store(rc_gc_head *g, uint32_t f)
{
    __atomic_store_n(&g->flags, f, __ATOMIC_RELEASE);
}

static inline nursery *my_nursery(void)
{
    nursery *nu = _rc_gc_tls_nursery;
    return __builtin_expect(nu != NULL, 1) ? nu : _rc_gc_nursery_take();
}

/* Put g (untracked) into this thread's nursery.  In a critical region. */
static inline void nursery_add(nursery *nu, rc_gc_head *g)
{
    size_t n = atomic_load_explicit(&nu->n, memory_order_relaxed);
    if (__builtin_expect(n == NURSERY_SLOTS, 0)) {
        _rc_gc_nursery_drain(nu);
        n = 0;
    }
    rc_gc_head *_Atomic *s = &nu->slot[n];
    g->next = g->prev = NULL;
    g->gc_refs = (int64_t)(intptr_t)s;
    flags_store(g, GC_NURSERY);
    atomic_store_explicit(s, g, memory_order_relaxed);
    atomic_store_explicit(&nu->n, n + 1, memory_order_relaxed);
}

/* A birth flushes the delta when it reaches COUNT_BATCH or would take
   count[0] past the trigger: the flush works out which comes first as
   flush_at, so that a birth only compares (gc.c: _rc_gc_count_flush). */
static inline void count_birth(nursery *nu)
{
    long d = atomic_load_explicit(&nu->delta, memory_order_relaxed) + 1;
    atomic_store_explicit(&nu->delta, d, memory_order_relaxed);
    if (__builtin_expect(d >= atomic_load_explicit(&nu->flush_at,
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
    /* exactly GC_NURSERY: not in a collection's lists */
    if (__builtin_expect(flags_load(g) == GC_NURSERY, 1)) {
        rc_gc_head *_Atomic *s = (rc_gc_head *_Atomic *)(intptr_t)g->gc_refs;
        if (__builtin_expect(s >= &nu->slot[0] && s < &nu->slot[NURSERY_SLOTS], 1)) {
            atomic_store_explicit(s, NULL, memory_order_relaxed);
            g->gc_refs = 0;
            flags_store(g, GC_WAS_TRACKED);
            took = 1;
        }
    }
    _rc_stw_crit_leave();
    if (took)
        count_death(nu);
    return took;
}

#endif
