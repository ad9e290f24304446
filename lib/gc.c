/*
 * gc.c -- the generational cycle collector (CPython's gc module, in C).
 *
 * Entry points: rc_gc_collect and the automatic trigger in rc_new
 * (_rc_gc_link_new); rc_gc_track/untrack/freeze and the other controls.
 *
 * Algorithm (one collection of generation g, all under the collector lock):
 *  1. splice generations 0..g into a local "young" list, and empty the
 *     nurseries into it;
 *  2. gc_refs = refcount for each (for a nursery's objects as they are
 *     linked: one pass), kept in the prev word of the gc head as CPython
 *     does (the list is linked forward only until step 3 ends); subtract
 *     one for every reference from another young object (traverse); what
 *     is left counts references from outside: threads, untracked or older
 *     objects;
 *  3. move_unreachable: anything with gc_refs > 0 and
 *     everything it reaches is reachable; the rest is the unreachable set.
 *     The reachable are marked with generation g+1 as they are scanned,
 *     their prev pointers linked again, and their list is linked into it
 *     at once (no pass of its own);
 *  4. pin the unreachable set (take a reference on each, so no other thread
 *     can make one die under us; an object whose count already reached 0 is
 *     being killed by another thread and is left to it, and what it holds
 *     is re-checked against the current refcounts: "rescue").  Done by
 *     move_unreachable as it moves each object there, noting whether any
 *     has weak references or a finalizer to run;
 *  5. clear the weak references to unreachable objects and run their
 *     callbacks, except those of weakrefs that are themselves unreachable
 *     (skipped when there are none);
 *  6. run every finalizer not run yet (PEP 442: the flag is kept forever;
 *     skipped when there is none);
 *  7. rescue, if any finalizer or weakref callback ran or there were weak
 *     references: anything made reachable again, and all it reaches,
 *     survives and is not counted;
 *  8. call clear on the rest, then drop the pins: the objects die through
 *     the ordinary death path (trashcan included) before we return.
 * Survivors move to generation g+1.  Automatic collections follow CPython's
 * counts: count[0] = tracked allocations minus deaths since the last
 * collection, count[i] = collections of generation i-1 since the last one
 * of i; thresholds 700/10/10; a full collection waits until generation 2
 * has grown by a quarter since the last one (gen_size[2] >
 * long_lived_total * 5 / 4).  Unlike CPython, which counts every object
 * promoted into generation 2, the growth is net: a promoted object that
 * died since counts for nothing, so short-lived structures promoted in
 * passing do not make every full collection rescan a large long-lived
 * heap (binary-trees: 75 full collections at depth 16 under CPython's
 * rule), and building a heap of any shape stays linear.
 *
 * THREAD MODEL (for rcmalloc(3)/rc_gc(3))
 * ---------------------------------------
 * - rc_incref, rc_decref, rc_refcount, rc_new, rc_weakref_new/get,
 *   rc_intern and the death of objects are safe from any thread at any
 *   time, also while a collection runs in another thread.  Reference counts
 *   are atomic.  An object dies on the thread that drops its last
 *   reference, before that rc_decref returns.
 * - A container is born into its thread's nursery and dies out of it
 *   without a lock (see "nurseries" below); one that survived a
 *   collection dies under old_lock, a spin lock held for a list unlink.
 *   A collection files the objects it found reachable before the world
 *   restarts, so their deaths never wait for it; while it runs, a thread
 *   whose births reach twice the threshold yields at each birth instead
 *   of starting another (otherwise births outrun the collection's last
 *   phases and every next collection is larger).
 *   One process-wide (recursive) collector lock serializes collections and
 *   the rc_gc_* controls.  A collection runs entirely in the thread that
 *   asked for it (rc_gc_collect) or whose rc_new crossed a threshold, and
 *   calls finalizers, clear functions and weakref callbacks there, with
 *   the lock held: they may call any rc_ function (an rc_gc_collect from
 *   inside returns 0).  A container that dies in another thread while a
 *   collection has it in its lists waits for that collection to end.
 * - A collection never frees an object some thread holds a reference to,
 *   even while other threads take and drop references (rc_incref,
 *   rc_decref) around it: it reads every count with those threads stopped,
 *   so the counts it reads are still; the unreachable set is pinned before
 *   they restart, and re-checked against the counts (again with the world
 *   stopped) after finalizers or weak references, the only ways back to
 *   it, may have revived some; an object whose count another thread had
 *   taken to zero is left to that thread.  (Before the stop, a thread's
 *   incref or decref during a collection marked the object "touched": the
 *   mark was written after the decrement, so into freed memory when
 *   another thread then dropped the last reference.  No mark is needed
 *   now, and incref/decref no longer look at the collector at all.)
 * - Threads may mutate containers while collections run (automatic ones
 *   included) under the usual contract: a thread stores into a field only
 *   a reference it owns, and shared containers are mutated under the
 *   program's locks.  The collector reads containers only with the world
 *   stopped (stw.c): steps 1-4 (up to pinning the unreachable set) run
 *   while every other thread that has used an object waits in a signal
 *   handler; so does the rescue after finalizers and weakref callbacks
 *   when any ran (they, or a weak reference before it was cleared, may
 *   have made garbage reachable to other threads again).  Nothing in a
 *   stopped phase allocates or takes a lock (the pins array is reserved
 *   before, as large as the set examined).  If the world cannot be
 *   stopped within RCMALLOC_GC_STOP_MS the collection is skipped.
 */
#define _GNU_SOURCE 1   /* PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP */
#include "nursery.h"
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* ==== state =============================================================== */

#define NGEN 3

/* rc_gc_head's words and their states: nursery.h */
#define PERMANENT      NGEN

static pthread_mutex_t gc_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static rc_gc_head gens[NGEN] = {
    { (uintptr_t)&gens[0], (uintptr_t)&gens[0] },
    { (uintptr_t)&gens[1], (uintptr_t)&gens[1] },
    { (uintptr_t)&gens[2], (uintptr_t)&gens[2] },
};
static rc_gc_head permanent = { (uintptr_t)&permanent, (uintptr_t)&permanent };
static size_t threshold[NGEN] = { 700, 10, 10 };
static size_t count[NGEN];
static int enabled = 1;
static int collecting;                 /* a collection is running */
static size_t long_lived_total;        /* gen 2 size after the last full one */
/* Objects on each generation list and on the permanent one, kept exact at
   every link, death and move (the gen bits of pv say which to decrement),
   so the full-collection rule sees gen 2's real growth: objects promoted
   and dead since count for nothing.  Objects in a running collection's
   lists (GC_COLLECTING) are counted when it files them.  (Beside old_lock,
   under which deaths change it: `listed' below.) */
#define gen_size (listed.size)
static rc_gc_stats stats[NGEN];

static _Atomic int gc_active;          /* a collection runs (maybe_collect) */
static __thread int tls_collector;     /* this thread runs the collection */

/* ==== nurseries: births and deaths without a lock ===========================
 *
 * A new container is not linked into a list: its address goes into the
 * next slot of its thread's nursery, and its nx word holds the slot's
 * address (with GC_NURSERY: one word, read at once by a death).  Its death empties the slot: a plain
 * store from the owning thread, a compare-and-exchange from any other
 * (so that it and the owner's drain below agree on who took it, and it
 * never empties a slot the owner has filled again since).  Neither takes
 * a lock, and a thread's births and deaths touch no shared line.
 *
 *   nursery (one per thread; never freed: reused after the thread exits)
 *   +------+------+------+------+-- ... --+
 *   | obj  | NULL | obj  | obj  |         |   NULL: died in the nursery
 *   +------+------+------+------+-- ... --+
 *      ^                         ^ n: next slot
 *      nx of obj
 *
 * A collection (the world stopped) first drains every nursery: each live
 * object is linked into its young list, and the nursery starts over.
 * A nursery that fills between collections is drained by its owner under
 * old_lock, the spin lock of the generation lists, taking each slot by
 * exchange: a death racing with it either took the slot first (and the
 * drain skips it) or, under old_lock, finds the object linked.  Objects
 * on the lists (drained ones, survivors) die under old_lock, held for a
 * few instructions and never across a call out.  All of it runs inside
 * the thread's critical region (stw.h), so a stop of the world never
 * finds a half-done link or a slot being emptied.
 *
 * count[0] (tracked births minus deaths since the last collection) is
 * young_count plus each nursery's delta, which its owner adds in batches
 * of COUNT_BATCH, and at once when the sum would pass the threshold: the
 * trigger stays exact for one thread, and within a batch per thread for
 * many.  trigger0 mirrors threshold[0] (LONG_MAX when disabled).  (In
 * the code: _rc_gc_young_count, _rc_gc_trigger0, shared with nursery.h,
 * where a birth and a death in the owner's nursery are inlined.)
 *
 * With n > 1 threads registered (stw.c), each collection stops the n - 1
 * others, which costs ~100 us of signals and wake-ups here whatever the
 * collection's size; so generation 0 is collected after threshold[0] * n
 * net births (n capped at 64), as free-threaded CPython also lets its
 * young generation grow before it stops the world.  One thread: exactly
 * CPython's schedule. */
/* (the nursery type and the inlined birth and death: nursery.h) */
__thread nursery *_rc_gc_tls_nursery;
static nursery *_Atomic all_nurseries;
static pthread_mutex_t nursery_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t nursery_key;
static pthread_once_t nursery_once = PTHREAD_ONCE_INIT;
_Atomic long _rc_gc_young_count;
_Atomic long _rc_gc_trigger0 = 700;
/* After a collection that could not stop the world (a thread blocks the
   signal), automatic ones wait 1, 2, 4 .. 64 s before trying again, so
   that such a program does not wait RCMALLOC_GC_STOP_MS at every
   threshold; rc_gc_collect() always tries.  Under the collector lock. */
static unsigned stop_failures;
static uint64_t retry_after_ms;
/* old_lock, the generation lists' spin lock, and the list sizes that a
   death changes under it (gen_size), on a line of their own */
static struct {
    _Atomic int lock;
    size_t size[NGEN + 1];      /* per generation, and the permanent one */
} listed __attribute__((aligned(64)));

/* old_lock found it taken */
static __attribute__((noinline)) void old_lock_wait(void)
{
    do {
        unsigned spins = 0;
        while (atomic_load_explicit(&listed.lock, memory_order_relaxed))
            if (++spins > 64)
                sched_yield();
            else
                _rc_cpu_pause();
    } while (atomic_exchange_explicit(&listed.lock, 1, memory_order_acquire));
}

/* Held for a few instructions, never across a call out; taken inside a
   critical region, or under the collector lock, so a stopped world never
   has it held. */
static inline void old_lock(void)
{
    if (__builtin_expect(atomic_exchange_explicit(&listed.lock, 1,
                                                  memory_order_acquire), 0))
        old_lock_wait();
}

static inline void old_unlock(void)
{
    atomic_store_explicit(&listed.lock, 0, memory_order_release);
}

/* Leak finding (rc_gc_get_objects(3)): debug flags, the garbage kept under
   RC_GC_DEBUG_SAVEALL (an array of strong references, like CPython's
   gc.garbage), the collection callbacks, and the local lists of the
   running collection that code it calls (finalizers, weakref callbacks,
   clear) may meet, so that a walk from there still sees every tracked
   object. */
static int debug_flags;
static void **garbage;
static size_t garbage_n, garbage_cap;
typedef struct gc_callback { rc_gc_callback cb; void *arg; } gc_callback;
static gc_callback *callbacks;
static size_t ncallbacks, callbacks_cap;
#define MAX_COLL_LISTS 4
static rc_gc_head *coll_lists[MAX_COLL_LISTS];
static int n_coll_lists;

/* Waiting for the collector lock polls instead of sleeping in the kernel:
   a thread that waits may be asked to stop by the collection it waits
   for, and ThreadSanitizer (--enable-tsan) delivers a signal only when the
   thread comes out of the call it is blocked in (the kernel does not need
   this: a futex wait runs the handler). */
static void lock(void)
{
    if (pthread_mutex_trylock(&gc_lock) == 0)
        return;
    for (unsigned i = 0; pthread_mutex_trylock(&gc_lock) != 0; i++) {
        if (i < 16) {
            sched_yield();
        } else {
            struct timespec ts = { 0, 100000 };
            nanosleep(&ts, NULL);
        }
    }
}
static inline void unlock(void) { pthread_mutex_unlock(&gc_lock); }

/* ==== lists ================================================================ */

static inline void set_gen(rc_gc_head *g, unsigned gen)
{
    gc_set_pv(g, (gc_pv(g) & ~(uintptr_t)GC_GEN_MASK) | (gen << GC_GEN_SHIFT));
}

static inline unsigned gen_of(const rc_gc_head *g)
{
    return (unsigned)(gc_pv(g) & GC_GEN_MASK) >> GC_GEN_SHIFT;
}

/* A tracked object leaves its generation (untracked, or dying). */
static inline void gen_leave(const rc_gc_head *g)
{
    if (!(gc_pv(g) & GC_COLLECTING))
        gen_size[gen_of(g)]--;
}

/* The array v (capacity *cap elements of `size` bytes) grown, by doubling
   from `first`, to hold at least `need`; NULL when out of memory (v and
   *cap unchanged).  Serves the garbage, callback and walk arrays. */
static void *grow(void *v, size_t *cap, size_t need, size_t size, size_t first)
{
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    void *nv = _rc_realloc(v, c * size);
    if (nv != NULL)
        *cap = c;
    return nv;
}

/* The links, without and with the flags below them: a list operation
   changes only the pointer part of the words it writes (a list head has
   no flags). */
static inline rc_gc_head *gc_next(const rc_gc_head *g)
{
    return (rc_gc_head *)(gc_nx(g) & ~(uintptr_t)GC_NX_FLAGS);
}
static inline rc_gc_head *gc_prev(const rc_gc_head *g)
{
    return (rc_gc_head *)(gc_pv(g) & ~(uintptr_t)GC_PV_FLAGS);
}
static inline void link_next(rc_gc_head *g, rc_gc_head *n)
{
    gc_set_nx(g, (gc_nx(g) & GC_NX_FLAGS) | (uintptr_t)n);
}
static inline void link_prev(rc_gc_head *g, rc_gc_head *p)
{
    gc_set_pv(g, (gc_pv(g) & GC_PV_FLAGS) | (uintptr_t)p);
}

/* gc_refs, in the prev word (the list is linked forward only meanwhile):
   at most the refcount, clamped so that it fits (an immortal's count is
   larger than any number of references to it) */
#define GC_REFS_MAX (UINTPTR_MAX >> GC_REFS_SHIFT)
static inline uintptr_t refs_of(const rc_gc_head *g)
{
    return gc_pv(g) >> GC_REFS_SHIFT;
}
static inline void set_refs(rc_gc_head *g, uintptr_t refs)
{
    gc_set_pv(g, (gc_pv(g) & GC_PV_FLAGS) | refs << GC_REFS_SHIFT);
}

static inline void list_init(rc_gc_head *l) { l->nx = l->pv = (uintptr_t)l; }
static inline int list_empty(const rc_gc_head *l) { return gc_next(l) == l; }

/* g's own words: its pointer parts written, its flags kept */
static inline void list_append(rc_gc_head *g, rc_gc_head *l)
{
    rc_gc_head *last = gc_prev(l);
    link_prev(g, last);
    link_next(g, l);
    link_next(last, g);
    link_prev(l, g);
}

/* g's words set whole: next = l, prev = last | pv_flags (a new member) */
static inline void list_append_new(rc_gc_head *g, rc_gc_head *l, uintptr_t pv_flags)
{
    rc_gc_head *last = gc_prev(l);
    gc_set_pv(g, (uintptr_t)last | pv_flags);
    gc_set_nx(g, (uintptr_t)l);
    link_next(last, g);
    link_prev(l, g);
}

static inline void list_unlink(rc_gc_head *g)
{
    rc_gc_head *p = gc_prev(g), *n = gc_next(g);
    link_next(p, n);
    link_prev(n, p);
}

static inline void list_move(rc_gc_head *g, rc_gc_head *l)
{
    list_unlink(g);
    list_append(g, l);
}

static void list_merge(rc_gc_head *from, rc_gc_head *to)
{
    if (list_empty(from))
        return;
    rc_gc_head *last = gc_prev(to), *first = gc_next(from), *tail = gc_prev(from);
    link_next(last, first);
    link_prev(first, last);
    link_prev(to, tail);
    link_next(tail, to);
    list_init(from);
}

/* Out of the unreachable set, with its objects (the caller merges it). */
static void unmark_unreachable(rc_gc_head *l)
{
    for (rc_gc_head *g = gc_next(l); g != l; g = gc_next(g))
        gc_set_nx(g, gc_nx(g) & ~(uintptr_t)GC_UNREACHABLE);
}

/* ---- nurseries (see the picture above) ---- */

static void nursery_release(void *arg)
{
    nursery *nu = arg;
    pthread_mutex_lock(&nursery_lock);
    nu->in_use = 0;
    pthread_mutex_unlock(&nursery_lock);
    _rc_gc_tls_nursery = NULL;
}

static void nursery_make_key(void)
{
    if (pthread_key_create(&nursery_key, nursery_release) != 0)
        _rc_fatal("rcmalloc: pthread_key_create failed\n");
}

/* This thread's nursery: an exited thread's, or a new one. */
nursery *_rc_gc_nursery_take(void)
{
    pthread_once(&nursery_once, nursery_make_key);
    pthread_mutex_lock(&nursery_lock);
    nursery *nu;
    for (nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
        if (!nu->in_use)
            break;
    if (nu == NULL) {
        nu = _rc_os_map(sizeof *nu);    /* zeroed; never freed */
        if (nu == NULL)
            _rc_fatal("rcmalloc: out of memory for a collector nursery\n");
        nu->next_all = atomic_load(&all_nurseries);
        atomic_store_explicit(&all_nurseries, nu, memory_order_release);
    }
    nu->in_use = 1;
    pthread_mutex_unlock(&nursery_lock);
    pthread_setspecific(nursery_key, nu);
    _rc_gc_tls_nursery = nu;
    return nu;
}

/* Link every live object of nu into generation 0.  Its owner, when it is
   full (in its critical region), or the collector with the world stopped. */
void _rc_gc_nursery_drain(nursery *nu)
{
    size_t n = atomic_load_explicit(&nu->n, memory_order_relaxed);
    old_lock();
    for (size_t i = 0; i < n; i++) {
        /* an empty slot stays empty: only the owner fills slots */
        if (atomic_load_explicit(&nu->slot[i], memory_order_relaxed) == NULL)
            continue;
        rc_gc_head *g = atomic_exchange_explicit(&nu->slot[i], NULL,
                                                 memory_order_acq_rel);
        if (g == NULL)
            continue;
        gen_size[0]++;
        /* generation 0, linked: nx last, as a death reads it first */
        rc_gc_head *last = gc_prev(&gens[0]);
        gc_set_pv(g, (uintptr_t)last);
        link_next(last, g);
        link_prev(&gens[0], g);
        gc_publish_nx(g, (uintptr_t)&gens[0]);
    }
    atomic_store_explicit(&nu->n, 0, memory_order_relaxed);
    old_unlock();
}

/* count[0] (young_count and the deltas) back to 0: with the world
   stopped (a collection), or after a freeze (a delta another thread adds
   meanwhile may be lost: a count, never a list). */
static void count0_reset(void)
{
    for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
        atomic_store_explicit(&nu->delta, 0, memory_order_relaxed);
    atomic_store_explicit(&_rc_gc_young_count, 0, memory_order_relaxed);
}

/* Every tracked object onto the lists, for a walk or a freeze (collector
   lock held).  Only a stopped world lets us empty other threads' nurseries;
   if it cannot be stopped, our own is drained and the others' objects are
   missed this time. */
static void gather_nurseries(void)
{
    _rc_stw_enter();
    if (_rc_stw_stop() == 0) {
        for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
            _rc_gc_nursery_drain(nu);
        _rc_stw_start();
    } else {
        _rc_stw_crit_enter();
        _rc_gc_nursery_drain(my_nursery());
        _rc_stw_crit_leave();
    }
}

static inline size_t nursery_estimate(void)
{
    size_t n = 0;
    for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
        n += atomic_load_explicit(&nu->n, memory_order_relaxed);
    return n;
}

static size_t list_len(const rc_gc_head *l)
{
    size_t n = 0;
    for (const rc_gc_head *g = gc_next(l); g != l; g = gc_next(g))
        n++;
    return n;
}

/* The gc head of a child visited by traverse, or NULL if not a container. */
static inline rc_gc_head *gc_of_child(void *child)
{
    if (child == NULL)
        return NULL;
    uintptr_t tw = atomic_load_explicit(&rc_head_of(child)->type,
                                        memory_order_relaxed);
    return (tw & RC_F_GC) ? rc_gc_of(child) : NULL;
}

static inline int traverse(rc_gc_head *g, rc_visit_fn visit, void *arg)
{
    void *obj = rc_obj_of_gc(g);
    return rc_type_fast(obj)->traverse(obj, visit, arg);
}

/* The refcount as gc_refs: clamped to what fits (an immortal's, and a
   negative one -- never seen on the lists: a queued dead object was
   untracked first -- count as references from outside: it is kept) */
static inline uintptr_t refcnt_of(rc_gc_head *g)
{
    uint64_t v = (uint64_t)atomic_load_explicit(&rc_head_of(rc_obj_of_gc(g))->refcnt,
                                                memory_order_relaxed);
    return v > GC_REFS_MAX ? GC_REFS_MAX : (uintptr_t)v;
}

/* With the world stopped, at the start of a collection, after
   update_refs: every nursery's objects straight into its young list
   (linked forward only, gc_refs in pv), with update_refs' work done on
   the way (one pass over each, not a link into generation 0 and a walk
   of it).  Returns how many. */
static size_t drain_into_young(rc_gc_head *young)
{
    size_t moved = 0;
    for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all) {
        size_t n = atomic_load_explicit(&nu->n, memory_order_relaxed);
        for (size_t i = 0; i < n; i++) {
            rc_gc_head *g = atomic_load_explicit(&nu->slot[i], memory_order_relaxed);
            if (g == NULL)
                continue;
            atomic_store_explicit(&nu->slot[i], NULL, memory_order_relaxed);
            /* generation 0; young's last keeps its gc_refs (plain
               accesses: see the phases below) */
            rc_gc_head *last = (rc_gc_head *)young->pv;
            g->pv = refcnt_of(g) << GC_REFS_SHIFT | GC_COLLECTING;
            g->nx = (uintptr_t)young;
            last->nx = (uintptr_t)g;
            young->pv = (uintptr_t)g;
            moved++;
        }
        atomic_store_explicit(&nu->n, 0, memory_order_relaxed);
    }
    return moved;
}

/* ==== phases ============================================================== */

/* The phases that run with the world stopped (update_refs to
   move_unreachable, and rescue) access the two words plainly, not through
   gc_nx/gc_pv: no other thread runs, and the stop orders them with every
   access before and after it. */

/* young (the generations collected, linked both ways) gets gc_refs in
   place of its prev pointers: linked forward only from here until
   move_unreachable links the prev pointers again.  young's own prev
   (its tail) stays a pointer throughout. */
static void update_refs(rc_gc_head *young)
{
    /* the world is stopped: every count is still */
    /* young's members have no nx flags: their nx is the next one */
    for (rc_gc_head *g = (rc_gc_head *)young->nx; g != young; g = (rc_gc_head *)g->nx)
        g->pv = refcnt_of(g) << GC_REFS_SHIFT | GC_COLLECTING | (g->pv & GC_GEN_MASK);
}

/* One reference from inside young (every object of the collection has
   gc_refs in pv now).  A traverse that reports a reference its count
   lacks (a bug of the caller's) takes gc_refs below 0: that wraps to a
   huge count, keeping the flags below it, and makes the object a root --
   kept, never freed early. */
static int visit_decref(void *child, void *arg)
{
    (void)arg;
    rc_gc_head *c = gc_of_child(child);
    if (c != NULL && (c->pv & GC_COLLECTING))
        c->pv -= GC_REFS_ONE;
    return 0;
}

static void subtract_refs(rc_gc_head *young)
{
    for (rc_gc_head *g = (rc_gc_head *)young->nx; g != young; g = (rc_gc_head *)g->nx)
        traverse(g, visit_decref, NULL);
}

/* Pins: the collector holds a reference on each unreachable object from
   step 4 to the end, kept in an array so that finalizers may untrack or
   move them freely.  The array is allocated before the world stops, as
   large as the set examined (pinning happens while it is stopped, when
   nothing may allocate), and kept for the next collection.
   move_unreachable pins each object as it moves it to the unreachable
   set (the line is in cache then: no walk of its own over the set).  An
   object moved back is unpinned at once; its entry, for which no word of
   the gc head is left to hold the index, is dropped afterwards by one
   pass over the array, only in collections that moved any back.  With the
   world stopped no count changes under us: a load and a store, no locked
   instruction. */
typedef struct pins {
    void **v;
    size_t n, cap;
} pins;

static pins pinned;

/* What move_unreachable pinned, so that the phases with
   nothing to do skip their walks over it (cold memory, after the restart:
   in rc_graphs' collections these walks took more time than the rest). */
#define SAW_WEAKREFS  1u    /* an object with weak references */
#define SAW_WEAKREF   2u    /* a weakref object */
#define SAW_FINALIZER 4u    /* a finalizer not run yet */

/* Being filled by move_unreachable (NULL: it pins nothing), and how many
   objects visit_reachable moved back from the unreachable set. */
static pins *move_pins;
static size_t n_moved_back;

static inline void unpin(void *obj)
{
    _Atomic int64_t *rc = &rc_head_of(obj)->refcnt;
    int64_t v = atomic_load_explicit(rc, memory_order_relaxed);
    if (v < RC_IMMORTAL)
        atomic_store_explicit(rc, v - 1, memory_order_relaxed);
}

/* c, reached from a reachable object: reachable too.  Tentatively
   unreachable, it goes back to young's tail (scanned later) with gc_refs
   1; not scanned yet, it gets gc_refs 1 if it had 0. */
static int visit_reachable(void *child, void *arg)
{
    rc_gc_head *young = arg;
    rc_gc_head *c = gc_of_child(child);
    if (c == NULL)
        return 0;
    uintptr_t pv = c->pv;
    if (!(pv & GC_COLLECTING))
        return 0;               /* not in this collection, or filed */
    uintptr_t nx = c->nx;
    if (nx & GC_UNREACHABLE) {
        /* the unreachable set is linked both ways; its members' nx (and
           its head's, meanwhile: see move_unreachable) have the flag */
        rc_gc_head *prev = (rc_gc_head *)(pv & ~(uintptr_t)GC_PV_FLAGS);
        rc_gc_head *next = (rc_gc_head *)(nx & ~(uintptr_t)GC_NX_FLAGS);
        prev->nx = nx;
        next->pv = (next->pv & GC_PV_FLAGS) | (uintptr_t)prev;
        /* young's tail (no nx flags) may hold gc_refs in pv: only its nx
           is written */
        ((rc_gc_head *)young->pv)->nx = (uintptr_t)c;
        c->nx = (uintptr_t)young;
        c->pv = GC_REFS_ONE | (pv & GC_PV_FLAGS);
        young->pv = (uintptr_t)c;
        if (move_pins != NULL)
            unpin(child);           /* its entry: dropped after */
        n_moved_back++;
    } else if (pv < GC_REFS_ONE) {
        c->pv = pv | GC_REFS_ONE;   /* reached before its turn */
    }
    return 0;
}

/* Returns how many are left in `unreachable` (linked both ways, each
   with GC_UNREACHABLE in nx), pinned into p unless p is NULL.  What stays
   in young is reachable, and is filed on the way: its prev pointer back,
   generation `target`, no longer in the collection (so that its
   children's visits and its death treat it as filed); the caller links
   the list in.  An object whose count is already 0 is being killed by
   another thread, which waits for our lock to untrack it: it goes to
   `dying` (nothing can reach it: no reference is left).  *reachable gets
   how many were reachable, *saw the SAW_* bits of what was pinned. */
static size_t move_unreachable(rc_gc_head *young, rc_gc_head *unreachable,
                               rc_gc_head *dying, pins *p, int target,
                               size_t *reachable, unsigned *saw)
{
    uintptr_t gen_bits = (uintptr_t)target << GC_GEN_SHIFT;
    rc_gc_head *prev = young;   /* the last one kept: prev links up to it */
    rc_gc_head *g = (rc_gc_head *)young->nx;
    unsigned bits = 0;
    move_pins = p;
    n_moved_back = 0;
    size_t n = 0, r = 0;
    while (g != young) {
        if (g->pv >= GC_REFS_ONE) {
            traverse(g, visit_reachable, young);
            g->pv = (uintptr_t)prev | gen_bits;
            prev = g;
            r++;
            g = (rc_gc_head *)prev->nx;
            continue;
        }
        /* out of young (forward links only, no flags: prev's next is
           enough) to the tail of unreachable, or of dying (both linked
           both ways).  As in CPython, the flag goes on the last one's nx
           unconditionally, unreachable's head's too while this runs
           (cleared below). */
        prev->nx = g->nx;
        void *obj = rc_obj_of_gc(g);
        rc_head *h = rc_head_of(obj);
        int64_t v = atomic_load_explicit(&h->refcnt, memory_order_relaxed);
        rc_gc_head *l = dying;
        uintptr_t mark = 0;
        if (v > 0) {
            l = unreachable;
            mark = GC_UNREACHABLE;
            n++;
            if (p != NULL) {
                if (v < RC_IMMORTAL)
                    atomic_store_explicit(&h->refcnt, v + 1, memory_order_relaxed);
                p->v[p->n++] = obj;
                uintptr_t tw = atomic_load_explicit(&h->type, memory_order_relaxed);
                const rc_type *t = rc_type_word_type(tw);
                if (tw & RC_F_WEAKREFS)
                    bits |= SAW_WEAKREFS;
                if (t == &_rc_weakref_type)
                    bits |= SAW_WEAKREF;
                if (t->finalize != NULL && !(tw & RC_F_FINALIZED))
                    bits |= SAW_FINALIZER;
            }
        }
        rc_gc_head *last = (rc_gc_head *)l->pv;
        last->nx = (uintptr_t)g | mark;
        g->pv = (uintptr_t)last | (g->pv & GC_PV_FLAGS);
        g->nx = (uintptr_t)l | mark;
        l->pv = (uintptr_t)g;
        g = (rc_gc_head *)prev->nx;
    }
    young->pv = (uintptr_t)prev;
    unreachable->nx &= ~(uintptr_t)GC_UNREACHABLE;
    if (p != NULL && n_moved_back != 0) {
        /* the entries of those moved back (unpinned already) out */
        size_t k = 0;
        for (size_t i = 0; i < p->n; i++)
            if (rc_gc_of(p->v[i])->nx & GC_UNREACHABLE)
                p->v[k++] = p->v[i];
        p->n = k;
    }
    *reachable = r;
    *saw = bits;
    return n - n_moved_back;
}

/* Room for n pins; -1 when out of memory (the collection is skipped). */
static int pins_reserve(size_t n)
{
    if (n <= pinned.cap)
        return 0;
    void **v = grow(pinned.v, &pinned.cap, n, sizeof *v, 1024);
    if (v == NULL)
        return -1;
    pinned.v = v;
    return 0;
}

static int visit_decref_unreachable(void *child, void *arg)
{
    (void)arg;
    rc_gc_head *c = gc_of_child(child);
    if (c != NULL && (gc_nx(c) & GC_UNREACHABLE)) {
        uintptr_t pv = gc_pv(c);
        if (pv >= GC_REFS_ONE)
            gc_set_pv(c, pv - GC_REFS_ONE);
    }
    return 0;
}

static int visit_rescue(void *child, void *arg)
{
    rc_gc_head *rescued = arg;
    rc_gc_head *c = gc_of_child(child);
    if (c != NULL && (gc_nx(c) & GC_UNREACHABLE)) {
        gc_set_nx(c, gc_nx(c) & ~(uintptr_t)GC_UNREACHABLE);
        list_move(c, rescued);
    }
    return 0;
}

/* Everything in the (pinned) unreachable set that is referenced from
   outside it now -- by a thread, a live object, a finalizer's doing -- goes
   back to young with all it reaches.  Returns how many.  With the world
   stopped: the set holds gc_refs in pv (linked forward only) until its
   prev pointers are linked again in the third loop. */
static size_t rescue(rc_gc_head *unreachable, rc_gc_head *young)
{
    rc_gc_head *g;
    for (g = gc_next(unreachable); g != unreachable; g = gc_next(g)) {
        uintptr_t refs = refcnt_of(g);
        set_refs(g, refs > 0 ? refs - 1 : 0);   /* minus our pin */
    }
    for (g = gc_next(unreachable); g != unreachable; g = gc_next(g))
        traverse(g, visit_decref_unreachable, NULL);

    rc_gc_head rescued;
    list_init(&rescued);
    rc_gc_head *prev = unreachable;
    g = gc_next(unreachable);
    while (g != unreachable) {
        rc_gc_head *next = gc_next(g);
        if (refs_of(g) > 0) {
            link_next(prev, next);
            list_append_new(g, &rescued, gc_pv(g) & GC_PV_FLAGS);
        } else {
            link_prev(g, prev);     /* its gc_refs gone, flags kept */
            prev = g;
        }
        g = next;
    }
    unreachable->pv = (uintptr_t)prev;
    size_t n = 0;
    for (g = gc_next(&rescued); g != &rescued; g = gc_next(g)) {
        traverse(g, visit_rescue, &rescued);
        n++;
    }
    list_merge(&rescued, young);
    return n;
}

/* Returns nonzero if the garbage had weak references (until they were
   cleared here, another thread could revive an object through one). */
static int handle_weakrefs(rc_gc_head *unreachable)
{
    rc_gc_head *g;
    int any = 0;
    /* weakrefs that are garbage themselves never call back */
    for (g = gc_next(unreachable); g != unreachable; g = gc_next(g)) {
        void *obj = rc_obj_of_gc(g);
        uintptr_t tw = atomic_load_explicit(&rc_head_of(obj)->type,
                                            memory_order_relaxed);
        if (rc_type_word_type(tw) == &_rc_weakref_type)
            _rc_weakref_disarm(obj);
        any |= (tw & RC_F_WEAKREFS) != 0;
    }
    if (!any)
        return 0;
    rc_weakref *cbs = NULL;
    for (g = gc_next(unreachable); g != unreachable; g = gc_next(g)) {
        void *obj = rc_obj_of_gc(g);
        if (atomic_load(&rc_head_of(obj)->type) & RC_F_WEAKREFS) {
            cbs = _rc_weakref_clear_referent(obj, cbs);
            any = 1;
        }
    }
    _rc_weakref_run_callbacks(cbs);
    return any;
}

/* Returns how many finalizers ran. */
static size_t finalize_garbage(rc_gc_head *unreachable)
{
    size_t ran = 0;
    rc_gc_head seen;
    list_init(&seen);
    coll_lists[n_coll_lists++] = &seen;     /* finalizers may walk */
    while (!list_empty(unreachable)) {
        rc_gc_head *g = gc_next(unreachable);
        list_move(g, &seen);
        void *obj = rc_obj_of_gc(g);
        rc_head *h = rc_head_of(obj);
        uintptr_t tw = atomic_load(&h->type);
        const rc_type *t = rc_type_word_type(tw);
        if (t->finalize != NULL && !(tw & RC_F_FINALIZED)) {
            atomic_fetch_or(&h->type, RC_F_FINALIZED);
            t->finalize(obj);
            ran++;
        }
    }
    list_merge(&seen, unreachable);
    n_coll_lists--;
    return ran;
}

/* File the objects of a local list into generation `target` (out of the
   collection and of its unreachable set), under old_lock: a thread killing
   one reads its words under it. */
static size_t file_into(rc_gc_head *local, int target)
{
    size_t n = 0;
    old_lock();
    uintptr_t gen_bits = (uintptr_t)target << GC_GEN_SHIFT;
    for (rc_gc_head *g = gc_next(local); g != local; g = gc_next(g)) {
        gc_set_nx(g, gc_nx(g) & ~(uintptr_t)GC_UNREACHABLE);
        gc_publish_pv(g, (gc_pv(g) & ~(uintptr_t)(GC_COLLECTING | GC_GEN_MASK)) |
                         gen_bits);
        n++;
    }
    list_merge(local, &gens[target]);
    gen_size[target] += n;
    old_unlock();
    return n;
}

/* clear each (pinned: clear cannot kill it; it dies when unpinned) onto
   the local list `cleared`, where they stay, marked GC_COLLECTING, until
   the pins are dropped: their deaths then unlink them from it without a
   lock (untrack), and what survives is filed.  They keep GC_UNREACHABLE,
   which sends their deaths past _rc_gc_untrack_dying's try of old_lock
   (is_linked) straight to untrack. */
static void delete_garbage(rc_gc_head *unreachable, rc_gc_head *cleared)
{
    while (!list_empty(unreachable)) {
        rc_gc_head *g = gc_next(unreachable);
        void *obj = rc_obj_of_gc(g);
        list_move(g, cleared);
        const rc_type *t = rc_type_fast(obj);
        if (t->clear != NULL)
            t->clear(obj);
    }
}

/* RC_GC_DEBUG_SAVEALL: the garbage is kept instead of cleared: each object
   goes to the older generation like a survivor (it stays tracked) with a
   reference held by the garbage array.  -1 (and nothing kept) when the
   array cannot grow. */
static int save_garbage(rc_gc_head *unreachable, int target, size_t n)
{
    if (garbage_n + n > garbage_cap) {
        void **v = grow(garbage, &garbage_cap, garbage_n + n, sizeof *v, 64);
        if (v == NULL)
            return -1;
        garbage = v;
    }
    for (rc_gc_head *g = gc_next(unreachable); g != unreachable; g = gc_next(g)) {
        void *obj = rc_obj_of_gc(g);
        atomic_fetch_add(&rc_head_of(obj)->refcnt, 1);  /* pinned: alive */
        garbage[garbage_n++] = obj;
    }
    file_into(unreachable, target);
    return 0;
}

/* RC_GC_DEBUG_STATS: one line on stderr, written without allocating. */
static void print_debug_stats(int gen, size_t examined, size_t found,
                              const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000000 +
                 (t1.tv_nsec - t0->tv_nsec);
    if (ns < 0)
        ns = 0;
    size_t us = (size_t)(ns / 1000);
    char frac[8];
    size_t f = us % 1000000;
    for (int i = 5; i >= 0; i--) {      /* six digits, zero padded */
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    frac[6] = '\0';
    _rc_printf_err("rc_gc: generation %d: %zu objects examined, %zu unreachable, "
                   "0 uncollectable, %zu.%s s elapsed%s\n",
                   gen, examined, found, us / 1000000, frac,
                   (debug_flags & RC_GC_DEBUG_SAVEALL) && found
                   ? " (kept: RC_GC_DEBUG_SAVEALL)" : "");
}

/* ==== a collection ======================================================== */

static size_t collect(int gen)
{
    rc_gc_head young, unreachable, cleared;
    int target = gen < NGEN - 1 ? gen + 1 : NGEN - 1;
    int saveall = debug_flags & RC_GC_DEBUG_SAVEALL;
    struct timespec t0;
    if (debug_flags & RC_GC_DEBUG_STATS)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i <= gen; i++)
        count[i] = 0;       /* also when skipped: retried a threshold later */
    if (gen < NGEN - 1)
        count[gen + 1]++;
    _rc_stw_enter();        /* the pins below must not register */
    /* room to pin all of it: what may be examined, plus births until the
       world stops (if more turn out unreachable, they wait a collection) */
    size_t estimate = nursery_estimate();
    old_lock();
    for (int i = 0; i <= gen; i++)
        estimate += gen_size[i];
    old_unlock();
    if (pins_reserve(estimate + estimate / 8 + 256) != 0)
        return 0;
    if (_rc_stw_stop() != 0) {
        atomic_store(&_rc_gc_young_count, 0);
        unsigned f = stop_failures < 6 ? stop_failures : 6;
        retry_after_ms = _rc_now_ms() + (1000u << f);
        stop_failures++;
        return 0;
    }
    stop_failures = 0;

    /* ---- the world is stopped: no allocation, no lock (every other
       thread is outside its critical regions, so old_lock is free) ---- */
    size_t examined = 0;
    list_init(&young);
    list_init(&unreachable);
    list_init(&cleared);
    for (int i = 0; i <= gen; i++) {
        examined += gen_size[i];
        list_merge(&gens[i], &young);
        gen_size[i] = 0;
    }
    update_refs(&young);    /* young linked forward only from here */
    examined += drain_into_young(&young);
    count0_reset();
    tls_collector = 1;
    atomic_store(&gc_active, 1);
    coll_lists[0] = &young;
    coll_lists[1] = &unreachable;
    coll_lists[2] = &cleared;
    n_coll_lists = 3;

    subtract_refs(&young);
    pins p = { pinned.v, 0, pinned.cap };
    unsigned saw = 0;           /* SAW_*: which phases have work */
    int rescued = 0;            /* a rescue took some of the set back */
    rc_gc_head dying;
    list_init(&dying);
    size_t n_reachable;
    /* room to pin all that may turn out unreachable?  (else none is
       pinned, and all of it waits for the next collection, which
       reserves more) */
    int room = examined <= p.cap;
    size_t n_unreachable = move_unreachable(&young, &unreachable, &dying,
                                            room ? &p : NULL, target,
                                            &n_reachable, &saw);
    /* the reachable are filed now, while nothing can die: from the
       restart on, their deaths in any thread unlink them under old_lock
       instead of waiting for this collection to end */
    list_merge(&young, &gens[target]);
    gen_size[target] += n_reachable;
    list_merge(&dying, &young);         /* filed at the end */
    if (!room) {
        unmark_unreachable(&unreachable);
        list_merge(&unreachable, &young);
        n_unreachable = 0;
    } else if (!list_empty(&young)) {
        rescue(&unreachable, &young);   /* what a dying object still holds */
        rescued = 1;
    }
    _rc_stw_start();
    /* ---- the world runs: only weak references (until cleared below) and
       our own finalizers can reach the unreachable set ---- */

    size_t found = 0;
    if (!list_empty(&unreachable)) {
        int revivable = 0;
        if (saw & (SAW_WEAKREFS | SAW_WEAKREF))
            revivable = handle_weakrefs(&unreachable);
        if (saw & SAW_FINALIZER)
            revivable |= finalize_garbage(&unreachable) != 0;
        if (revivable) {
            /* what a finalizer or a weak reference made reachable again,
               with all it reaches, survives; read with the world stopped,
               as other threads may be mutating it already */
            if (_rc_stw_stop() == 0) {
                rescue(&unreachable, &young);
                _rc_stw_start();
            } else {
                /* cannot look safely: keep all of it for now */
                unmark_unreachable(&unreachable);
                list_merge(&unreachable, &young);
            }
            rescued = 1;
        }
        /* all that was pinned, unless a rescue took some back */
        found = rescued ? list_len(&unreachable) : n_unreachable;
        if (!saveall)
            delete_garbage(&unreachable, &cleared);
        else if (save_garbage(&unreachable, target, found) != 0) {
            /* nowhere to keep it: left alone, found again next time */
            unmark_unreachable(&unreachable);
            list_merge(&unreachable, &young);
            found = 0;
        }
    }

    /* drop the pins: the cleared garbage dies here, in this thread, off
       our local lists */
    for (size_t i = 0; i < p.n; i++)
        rc_decref(p.v[i]);

    /* survivors (and garbage that clear left alive) into the next
       generation */
    n_coll_lists = 0;
    file_into(&cleared, target);
    file_into(&young, target);
    if (gen == NGEN - 1) {
        old_lock();
        long_lived_total = gen_size[NGEN - 1];
        old_unlock();
    }
    stats[gen].collections++;
    stats[gen].collected += found;
    atomic_store(&gc_active, 0);
    tls_collector = 0;
    if (debug_flags & RC_GC_DEBUG_STATS)
        print_debug_stats(gen, examined, found, &t0);
    return found;
}

/* Run the callbacks (lock held, `collecting` set: a collection they ask
   for returns 0).  On a copy of the array, so that they may add and remove
   callbacks; without memory for the copy, on the array itself by index. */
static void invoke_callbacks(int phase, int gen, const rc_gc_stats *info)
{
    size_t n = ncallbacks;
    if (n == 0)
        return;
    gc_callback local[8];
    gc_callback *v = n <= 8 ? local : _rc_malloc(n * sizeof *v);
    if (v == NULL) {
        for (size_t i = 0; i < ncallbacks; i++) {
            gc_callback c = callbacks[i];
            c.cb(phase, gen, info, c.arg);
        }
        return;
    }
    memcpy(v, callbacks, n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i].cb(phase, gen, info, v[i].arg);
    if (v != local)
        _rc_free(v);
}

/* A collection with its callbacks; lock held, no collection running. */
static size_t collect_with_callbacks(int gen)
{
    collecting = 1;
    invoke_callbacks(0, gen, NULL);
    size_t found = collect(gen);
    rc_gc_stats info = { 1, found, 0 };
    invoke_callbacks(1, gen, &info);
    collecting = 0;
    return found;
}

static void collect_generations(void)
{
    for (int i = NGEN - 1; i >= 0; i--) {
        if (count[i] > threshold[i]) {
            /* CPython's rule against quadratic full collections, on gen
               2's net growth since the last one (CPython counts every
               promotion, so short-lived objects promoted in passing keep
               triggering scans of a large long-lived heap after they
               died) */
            old_lock();     /* deaths change gen_size under it */
            size_t grown = gen_size[NGEN - 1] > long_lived_total
                         ? gen_size[NGEN - 1] - long_lived_total : 0;
            old_unlock();
            if (i == NGEN - 1 && grown < long_lived_total / 4)
                continue;
            collect_with_callbacks(i);
            break;
        }
    }
}

/* ==== hooks for object.c =================================================== */

/* count[0] passed the threshold: collect, unless a collection runs or
   the collector is busy (then the next birth tries again). */
static __attribute__((noinline)) void maybe_collect(void)
{
    if (atomic_load_explicit(&gc_active, memory_order_relaxed) ||
        pthread_mutex_trylock(&gc_lock) != 0)
        return;
    if (stop_failures && _rc_now_ms() < retry_after_ms) {
        atomic_store(&_rc_gc_young_count, 0);
        unlock();
        return;
    }
    if (enabled && !collecting && threshold[0] != 0) {
        count[0] = (size_t)atomic_load(&_rc_gc_young_count);
        collect_generations();
    }
    unlock();
}

/* What count[0] must pass for a birth to start a collection (above). */
static inline long trigger_now(void)
{
    long t = atomic_load_explicit(&_rc_gc_trigger0, memory_order_relaxed);
    unsigned n = atomic_load_explicit(&_rc_stw_nthreads, memory_order_relaxed);
    if (n > 64)
        n = 64;
    return n > 1 && t < LONG_MAX / 64 ? t * (long)n : t;
}

/* Add this thread's delta to young_count; collect if that passes the
   threshold.  Then the delta of the next flush: COUNT_BATCH, or sooner if
   count[0] would pass the trigger before (exact for one thread, which
   alone moves young_count; with more, the others' flushes in between make
   it later by at most their batches, as before flush_at). */
void _rc_gc_count_flush(nursery *nu)
{
    _rc_stw_crit_enter();
    long d = atomic_exchange_explicit(&nu->delta, 0, memory_order_relaxed);
    long c = atomic_fetch_add(&_rc_gc_young_count, d) + d;
    _rc_stw_crit_leave();
    long t = trigger_now();
    long room = c > t ? 0 : t - c;     /* births before it passes t */
    atomic_store_explicit(&nu->flush_at, room >= COUNT_BATCH ? COUNT_BATCH : room + 1,
                          memory_order_relaxed);
    if (c > t && !tls_collector) {
        if (c > 2 * t && atomic_load_explicit(&gc_active, memory_order_relaxed)) {
            /* a collection (another thread's) runs and this thread has
               made twice the threshold since it began: give it the CPU,
               once a birth.  Without this, births outrun a collection's
               last phases, and each next collection is larger and longer
               (rc_graphs, 2 threads: 17 young collections instead of
               650, 2x the time).  A yield, not a wait: a birth never
               blocks on the collector. */
            sched_yield();
            return;
        }
        maybe_collect();
    }
}

/* Take g off whatever tracks it (a nursery slot or a list) and give its
   pv `mark` if it was tracked (else 0).  Returns whether it was. */
static int untrack(nursery *nu, rc_gc_head *g, uintptr_t mark)
{
    for (;;) {
        _rc_stw_crit_enter();
        uintptr_t nx = gc_nx_acquire(g);
        if ((gc_pv_acquire(g) & GC_COLLECTING) && tls_collector) {
            /* on a local list of the collection this thread runs: only
               this thread touches those */
            list_unlink(g);
            gc_set_nx(g, 0);
            gc_publish_pv(g, mark);
            _rc_stw_crit_leave();
            return 1;
        }
        if (nx & GC_NURSERY) {
            /* the slot's address and the flag in one word: read at once,
               so never the address of a slot the owner has drained */
            rc_gc_head *_Atomic *s = (rc_gc_head *_Atomic *)(nx & ~(uintptr_t)GC_NX_FLAGS);
            int took;
            if (s >= &nu->slot[0] && s < &nu->slot[NURSERY_SLOTS]) {
                atomic_store_explicit(s, NULL, memory_order_relaxed);
                took = 1;           /* only we drain our own nursery */
            } else {
                /* only if the slot still holds it: the owner may have
                   drained it, and filled the slot again, since we read
                   the address (an exchange took the new object out) */
                rc_gc_head *expect = g;
                took = atomic_compare_exchange_strong_explicit(s, &expect, NULL,
                           memory_order_acq_rel, memory_order_acquire);
            }
            if (took) {
                gc_set_nx(g, 0);
                gc_publish_pv(g, mark);
                _rc_stw_crit_leave();
                return 1;
            }
            /* its owner's drain took it: it is linked, under old_lock */
        }
        old_lock();
        if ((gc_pv_acquire(g) & GC_COLLECTING) && !tls_collector) {
            /* in the lists of a collection running in another thread:
               wait for it to file the object */
            old_unlock();
            _rc_stw_crit_leave();
            lock();
            unlock();
            continue;
        }
        /* untracked, or on a generation list (nothing else changes it
           without old_lock now) */
        int was = gc_nx(g) != 0;
        if (was) {
            gen_leave(g);
            list_unlink(g);
            gc_set_nx(g, 0);
        }
        gc_publish_pv(g, was ? mark : 0);
        old_unlock();
        _rc_stw_crit_leave();
        return was;
    }
}

/* Linked, not in a collection's unreachable set nor in a nursery: on a
   generation list, or in a collection's young list (pv says which). */
static inline int is_linked(uintptr_t nx)
{
    return nx != 0 && !(nx & GC_NX_FLAGS);
}

/* A dying container on a generation list (it outlived a collection, or
   its nursery filled; 41% of binary-trees' nodes): the short way, with
   none of untrack's cases.  0 if it was not listed.  In a critical
   region. */
static inline int untrack_listed(rc_gc_head *g)
{
    int took = 0;
    old_lock();
    /* its words change only under the lock now, if it is listed: look
       again */
    uintptr_t pv = gc_pv(g), nx = gc_nx(g);
    if (is_linked(nx) && !(pv & GC_COLLECTING)) {
        gen_size[(pv & GC_GEN_MASK) >> GC_GEN_SHIFT]--;
        /* list_unlink, knowing that nx words on a generation list have
           no flags */
        rc_gc_head *p = (rc_gc_head *)(pv & ~(uintptr_t)GC_PV_FLAGS);
        rc_gc_head *n = (rc_gc_head *)nx;
        gc_set_nx(p, nx);
        link_prev(n, p);
        gc_set_nx(g, 0);
        gc_publish_pv(g, GC_WAS_TRACKED);
        took = 1;
    }
    old_unlock();
    return took;
}

void _rc_gc_untrack_dying(void *obj)
{
    nursery *nu = my_nursery();
    rc_gc_head *g = rc_gc_of(obj);
    int took = 0;
    _rc_stw_crit_enter();
    if (is_linked(gc_nx_acquire(g)))
        took = untrack_listed(g);
    _rc_stw_crit_leave();
    if (took || untrack(nu, g, GC_WAS_TRACKED))
        count_death(nu);
}

/* g is untracked: track it in this thread's nursery. */
static void track(rc_gc_head *g)
{
    nursery *nu = my_nursery();
    _rc_stw_crit_enter();
    nursery_add(nu, g);
    _rc_stw_crit_leave();
}

void _rc_gc_retrack(void *obj)
{
    rc_gc_head *g = rc_gc_of(obj);
    /* the dying thread alone holds it: nobody else changes its flags */
    if (gc_pv(g) & GC_WAS_TRACKED)
        track(g);
}

void _rc_gc_print(void (*emit)(void *, const char *), void *ctx)
{
    rc_stw_stats_t w;
    _rc_stw_stats(&w);
    lock();
    size_t c0 = stats[0].collections, c1 = stats[1].collections,
           c2 = stats[2].collections;
    size_t found = stats[0].collected + stats[1].collected + stats[2].collected;
    unlock();
    char line[256];
    _rc_format(line, sizeof line,
               "rc collector: %zu/%zu/%zu collections of generations 0/1/2, "
               "%zu unreachable found; %zu world stops (%zu threads now), "
               "%zu skipped, wait to stop %zu us mean, %zu us max\n",
               c0, c1, c2, found, w.stops, w.threads, w.skipped,
               (size_t)(w.stops ? w.wait_ns / w.stops / 1000 : 0),
               (size_t)(w.wait_max_ns / 1000));
    emit(ctx, line);
}

/* ==== public controls ===================================================== */

RC_API size_t rc_gc_collect(int generation)
{
    if (generation < -1 || generation >= NGEN) {
        errno = EINVAL;
        return 0;
    }
    if (generation == -1)
        generation = NGEN - 1;
    lock();
    size_t n = collecting ? 0 : collect_with_callbacks(generation);
    unlock();
    return n;
}

/* trigger0: what count[0] must pass for a birth to try a collection;
   every nursery's next birth flushes and works out its flush_at again */
static void set_trigger(void)
{
    atomic_store(&_rc_gc_trigger0, enabled && threshold[0] != 0
                 ? (long)(threshold[0] > LONG_MAX ? LONG_MAX : threshold[0]) : LONG_MAX);
    for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
        atomic_store_explicit(&nu->flush_at, 0, memory_order_relaxed);
}

RC_API void rc_gc_enable(void) { lock(); enabled = 1; set_trigger(); unlock(); }
RC_API void rc_gc_disable(void) { lock(); enabled = 0; set_trigger(); unlock(); }

RC_API int rc_gc_is_enabled(void)
{
    lock();
    int e = enabled;
    unlock();
    return e;
}

RC_API void rc_gc_set_threshold(size_t t0, size_t t1, size_t t2)
{
    lock();
    threshold[0] = t0;
    threshold[1] = t1;
    threshold[2] = t2;
    set_trigger();
    unlock();
}

RC_API void rc_gc_get_threshold(size_t *t0, size_t *t1, size_t *t2)
{
    lock();
    if (t0) *t0 = threshold[0];
    if (t1) *t1 = threshold[1];
    if (t2) *t2 = threshold[2];
    unlock();
}

RC_API void rc_gc_get_count(size_t *c0, size_t *c1, size_t *c2)
{
    lock();
    if (c0) {
        long c = atomic_load(&_rc_gc_young_count);
        for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
            c += atomic_load_explicit(&nu->delta, memory_order_relaxed);
        *c0 = c > 0 ? (size_t)c : 0;
    }
    if (c1) *c1 = count[1];
    if (c2) *c2 = count[2];
    unlock();
}

/* Tracked: in a nursery, or linked (a list or a running collection's).
   In a critical region, like every holder of old_lock: a stop of the
   world never parks a thread that holds it. */
static int is_tracked(const rc_gc_head *g)
{
    _rc_stw_enter();
    _rc_stw_crit_enter();
    old_lock();
    int t = gc_nx(g) != 0;     /* a nursery slot, or a list */
    old_unlock();
    _rc_stw_crit_leave();
    return t;
}

RC_API void rc_gc_track(void *obj)
{
    if (obj == NULL || !(atomic_load(&rc_head_of(obj)->type) & RC_F_GC))
        return;
    _rc_stw_enter();
    rc_gc_head *g = rc_gc_of(obj);
    /* like rc_gc_untrack, meant for the thread that owns obj */
    if (!is_tracked(g))
        track(g);
}

RC_API void rc_gc_untrack(void *obj)
{
    if (obj == NULL || !(atomic_load(&rc_head_of(obj)->type) & RC_F_GC))
        return;
    _rc_stw_enter();
    untrack(my_nursery(), rc_gc_of(obj), 0);
}

RC_API int rc_gc_is_tracked(const void *obj)
{
    if (obj == NULL || !(atomic_load(&rc_head_of(obj)->type) & RC_F_GC))
        return 0;
    return is_tracked(rc_gc_of(obj));
}

RC_API void rc_gc_freeze(void)
{
    lock();
    gather_nurseries();
    old_lock();
    for (int i = 0; i < NGEN; i++) {
        for (rc_gc_head *g = gc_next(&gens[i]); g != &gens[i]; g = gc_next(g))
            set_gen(g, PERMANENT);
        list_merge(&gens[i], &permanent);
        gen_size[PERMANENT] += gen_size[i];
        gen_size[i] = 0;
    }
    old_unlock();
    count[0] = 0;
    count0_reset();
    unlock();
}

RC_API void rc_gc_unfreeze(void)
{
    lock();
    old_lock();
    for (rc_gc_head *g = gc_next(&permanent); g != &permanent; g = gc_next(g))
        set_gen(g, NGEN - 1);
    list_merge(&permanent, &gens[NGEN - 1]);
    gen_size[NGEN - 1] += gen_size[PERMANENT];
    gen_size[PERMANENT] = 0;
    old_unlock();
    unlock();
}

RC_API size_t rc_gc_freeze_count(void)
{
    lock();
    old_lock();
    size_t n = gen_size[PERMANENT];
    old_unlock();
    unlock();
    return n;
}

RC_API int rc_gc_get_stats(int generation, rc_gc_stats *out)
{
    if (generation < 0 || generation >= NGEN || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    lock();
    *out = stats[generation];
    unlock();
    return 0;
}

/* ==== leak finding (rc_gc_get_objects(3)) ==================================
 *
 * The walks collect their objects under the collector lock into an array,
 * taking a reference on each (an object whose count already reached 0 is
 * dying in another thread and is skipped), then call fn without the lock
 * and drop the references: fn may do anything, including dropping the last
 * outside reference to the object it is given, collecting, or walking
 * again.  Like CPython's gc.get_objects(), which returns a list.
 *
 * A walk from another thread waits while a collection runs (the lock).  A
 * walk from code that the collection itself calls (a finalizer, a weakref
 * callback, a clear function, in the collecting thread: the lock is
 * recursive) reads the lists as they are: the running collection's local
 * lists are registered in coll_lists, and their objects are reported in
 * the generation they were in when it started (their gen bits are not
 * changed until it files them); the ones it found reachable are filed
 * before any such code runs, into the older generation.  Walks only read the lists and the
 * objects' fields through traverse; they never move an object, so they
 * cannot disturb the collection, and the references they take and drop
 * are seen by its re-check like any other.
 */

typedef struct snap {
    void **v;
    size_t n, cap;
    int failed;             /* out of memory */
    int count_only;         /* fn == NULL: count the live ones, keep nothing */
} snap;

static int snap_push(snap *s, void *obj)
{
    if (s->count_only) {
        if (atomic_load_explicit(&rc_head_of(obj)->refcnt, memory_order_relaxed) > 0)
            s->n++;
        return 0;
    }
    if (s->n == s->cap) {
        void **v = grow(s->v, &s->cap, s->n + 1, sizeof *v, 64);
        if (v == NULL) {
            s->failed = 1;
            return -1;
        }
        s->v = v;
    }
    if (_rc_try_incref(obj))
        s->v[s->n++] = obj;
    return 0;
}

/* Without the lock: fn on each until it returns nonzero, then drop them. */
static size_t snap_visit(snap *s, rc_object_fn fn, void *arg)
{
    if (s->count_only)
        return s->n;
    size_t visited = 0;
    int stop = 0;
    if (s->failed) {
        stop = 1;
        errno = ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!stop) {
            visited++;
            if (fn != NULL && fn(s->v[i], arg) != 0)
                stop = 1;
        }
        rc_decref(s->v[i]);
    }
    _rc_free(s->v);
    return visited;
}

RC_API size_t rc_gc_get_objects(int generation, rc_object_fn fn, void *arg)
{
    if (generation < -1 || generation >= NGEN) {
        errno = EINVAL;
        return 0;
    }
    snap s = { NULL, 0, 0, 0, fn == NULL };
    lock();
    if (generation <= 0)
        gather_nurseries();
    old_lock();
    for (int i = 0; i <= NGEN && !s.failed; i++) {
        rc_gc_head *l = i < NGEN ? &gens[i] : &permanent;
        if (generation != -1 && generation != i)
            continue;
        for (rc_gc_head *g = gc_next(l); g != l; g = gc_next(g))
            if (snap_push(&s, rc_obj_of_gc(g)) != 0)
                break;
    }
    for (int k = 0; k < n_coll_lists && !s.failed; k++) {
        rc_gc_head *l = coll_lists[k];
        for (rc_gc_head *g = gc_next(l); g != l; g = gc_next(g))
            if ((generation == -1 || gen_of(g) == (unsigned)generation) &&
                snap_push(&s, rc_obj_of_gc(g)) != 0)
                break;
    }
    old_unlock();
    unlock();
    return snap_visit(&s, fn, arg);
}

static int visit_is(void *child, void *arg)
{
    return child == arg;
}

static void referrers_in(rc_gc_head *l, const void *obj, snap *s)
{
    for (rc_gc_head *g = gc_next(l); g != l && !s->failed; g = gc_next(g))
        if (traverse(g, visit_is, (void *)obj))
            snap_push(s, rc_obj_of_gc(g));
}

RC_API size_t rc_gc_get_referrers(const void *obj, rc_object_fn fn, void *arg)
{
    if (obj == NULL)
        return 0;
    snap s = { NULL, 0, 0, 0, fn == NULL };
    lock();
    gather_nurseries();
    old_lock();
    for (int i = 0; i < NGEN; i++)
        referrers_in(&gens[i], obj, &s);
    referrers_in(&permanent, obj, &s);
    for (int k = 0; k < n_coll_lists; k++)
        referrers_in(coll_lists[k], obj, &s);
    old_unlock();
    unlock();
    return snap_visit(&s, fn, arg);
}

static int visit_push(void *child, void *arg)
{
    snap *s = arg;
    if (child != NULL && snap_push(s, child) != 0)
        return 1;
    return 0;
}

RC_API size_t rc_gc_get_referents(const void *obj, rc_object_fn fn, void *arg)
{
    if (obj == NULL)
        return 0;
    const rc_type *t = rc_type_fast(obj);
    if (t->traverse == NULL)
        return 0;
    snap s = { NULL, 0, 0, 0, fn == NULL };
    lock();
    t->traverse((void *)obj, visit_push, &s);
    unlock();
    return snap_visit(&s, fn, arg);
}

RC_API void rc_gc_set_debug(int flags)
{
    lock();
    debug_flags = flags;
    unlock();
}

RC_API int rc_gc_get_debug(void)
{
    lock();
    int f = debug_flags;
    unlock();
    return f;
}

RC_API size_t rc_gc_garbage(rc_object_fn fn, void *arg)
{
    snap s = { NULL, 0, 0, 0, fn == NULL };
    lock();
    for (size_t i = 0; i < garbage_n && !s.failed; i++)
        snap_push(&s, garbage[i]);
    unlock();
    return snap_visit(&s, fn, arg);
}

RC_API size_t rc_gc_clear_garbage(void)
{
    lock();
    void **v = garbage;
    size_t n = garbage_n;
    garbage = NULL;
    garbage_n = garbage_cap = 0;
    unlock();
    /* without the lock, on our own copy: what dies may call anything */
    for (size_t i = 0; i < n; i++)
        rc_decref(v[i]);
    _rc_free(v);
    return n;
}

RC_API int rc_gc_callback_add(rc_gc_callback cb, void *arg)
{
    if (cb == NULL) {
        errno = EINVAL;
        return -1;
    }
    lock();
    if (ncallbacks == callbacks_cap) {
        gc_callback *v = grow(callbacks, &callbacks_cap, ncallbacks + 1, sizeof *v, 4);
        if (v == NULL) {
            unlock();
            errno = ENOMEM;
            return -1;
        }
        callbacks = v;
    }
    callbacks[ncallbacks].cb = cb;
    callbacks[ncallbacks].arg = arg;
    ncallbacks++;
    unlock();
    return 0;
}

RC_API int rc_gc_callback_remove(rc_gc_callback cb, void *arg)
{
    lock();
    for (size_t i = 0; i < ncallbacks; i++) {
        if (callbacks[i].cb == cb && callbacks[i].arg == arg) {
            memmove(&callbacks[i], &callbacks[i + 1],
                    (ncallbacks - i - 1) * sizeof *callbacks);
            ncallbacks--;
            unlock();
            return 0;
        }
    }
    unlock();
    errno = ENOENT;
    return -1;
}

/* ---- fork (init.c): the collector lock is taken first, before the
   weakref and intern locks and the allocator's own. ---- */
/* The collector lock first (no collection can then be stopping the world:
   see init.c for stw's lock, taken next), then the nursery list and the
   lists' spin lock, so that the child finds them consistent. */
void _rc_gc_fork_prepare(void)
{
    lock();
    pthread_mutex_lock(&nursery_lock);
    old_lock();
}

void _rc_gc_fork_parent(void)
{
    old_unlock();
    pthread_mutex_unlock(&nursery_lock);
    unlock();
}

void _rc_gc_fork_child(void)
{
    old_unlock();
    /* the other threads are gone: their nurseries wait for new owners
       (their objects stay tracked, and die from any thread as before) */
    for (nursery *nu = atomic_load(&all_nurseries); nu != NULL; nu = nu->next_all)
        nu->in_use = nu == _rc_gc_tls_nursery;
    pthread_mutex_init(&nursery_lock, NULL);
    /* the child's thread id differs: re-create rather than unlock */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&gc_lock, &a);
    pthread_mutexattr_destroy(&a);
}
