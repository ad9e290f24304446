/*
 * lifetime.h -- internal types of the object-lifetime layer (object.c,
 * gc.c, weakref.c, intern.c).
 *
 * Theory of operation
 * ===================
 *
 * Every rc object is one block from the core allocator (_rc_malloc).  A
 * small header precedes the pointer the user sees; the user pointer is 16
 * bytes aligned because every header is a multiple of 16 bytes:
 *
 *   non-container (type->traverse == NULL)      16 bytes of overhead
 *       [ rc_head: type|flags, refcnt ][ user data ... ]
 *
 *   container (type->traverse != NULL)          32 bytes of overhead
 *       [ rc_gc_head: next|flags, prev|flags ][ rc_head ][ user ]
 *
 *   interned string (type == &_rc_intern_type)   32 bytes of overhead
 *       [ rc_intern_meta: len, hash ][ rc_head ][ chars ... NUL ]
 *
 * So objects that cannot be in a cycle pay nothing for the collector: no
 * links, no list operations, no lock.  A user pointer p has its rc_head at
 * p - 16 and, if the RC_F_GC bit of its type word is set, its rc_gc_head at
 * p - 32.  The gc head is CPython's two-word PyGC_Head: flags live in the
 * low bits of the list links (heads are 16-aligned), and a collection
 * keeps gc_refs in the prev word while it needs no prev links (gc.c); a
 * binary-trees node with two children is a 48-byte block, not 64.
 *
 * The type word holds the rc_type pointer (8-byte aligned, so three free
 * low bits) and three flags:
 *   RC_F_FINALIZED  finalize has been called (never again: PEP 442);
 *   RC_F_WEAKREFS   weak references to the object were created at some time
 *                   (death then looks in weakref.c's table; otherwise it
 *                   costs nothing);
 *   RC_F_GC         cached "type->traverse != NULL": the gc head exists.
 *
 * Reference count (rc_head.refcnt, signed 64 bits, atomic):
 *   1 .. 2^62-1     live;
 *   >= RC_IMMORTAL  immortal: incref/decref do not write it;
 *   0               dying (finalize/clear in progress): rc_weakref_get and
 *                   rc_intern refuse to revive it (_rc_try_incref);
 *   < 0             dead and waiting in the trashcan queue: the word holds
 *                   the queue link with the top bit set.
 * Plain atomics, not biased counting: see object.c for the measurement.
 *
 * Death (object.c: decref_last, dealloc): at refcount 0 a container is
 * first untracked (from its thread's nursery, or from a generation list
 * under the lists' spin lock, waiting for a collection that has it in its
 * lists -- only ones it has not yet found reachable: a running collection
 * never sees a half-dead object), then,
 * unless the trashcan defers it, finalize (once; may resurrect) -> clear
 * weakrefs + run their callbacks -> clear -> free.
 * Trashcan: a thread-local nesting depth; past RC_TRASHCAN_DEPTH a dying
 * object is pushed on a thread-local queue instead, and the outermost death
 * drains the queue before returning, so any chain or tree dies in bounded
 * stack and completely before the outermost rc_decref returns.
 *
 * The cycle collector (gc.c) finds new containers in per-thread nurseries
 * (no lock at birth or death) and keeps the ones that survived a
 * collection on three generation lists plus a permanent (frozen) list;
 * it reads them with the other threads stopped (stw.c).  The thread model
 * is described at the top of gc.c.
 */
#ifndef RC_LIFETIME_H
#define RC_LIFETIME_H

#include "internal.h"
#include <stdatomic.h>
#include <stdint.h>

/* ---- headers --------------------------------------------------------- */

typedef struct rc_head {
    _Atomic uintptr_t type;     /* rc_type * | RC_F_*; rc_type_of, dealloc */
    _Atomic int64_t   refcnt;   /* see above; object.c, _rc_try_incref */
} rc_head;

/* The collector's two words, as CPython packs PyGC_Head: each holds a
   pointer to a 16-aligned gc head (a list's) with flag bits below it.
   States and bits: nursery.h (GC_*); who writes them when: gc.c. */
typedef struct rc_gc_head {
    uintptr_t nx;   /* next on a list | GC_UNREACHABLE; in a nursery: the
                       slot's address | GC_NURSERY; 0 = untracked */
    uintptr_t pv;   /* prev on a list | GC_COLLECTING, GC_WAS_TRACKED, gen;
                       in a collection's first phases gc_refs << 4 | those */
} __attribute__((aligned(16))) rc_gc_head;

typedef struct rc_intern_meta {
    size_t   len;               /* bytes before the NUL (intern.c) */
    uint64_t hash;              /* table hash of the contents (intern.c) */
} rc_intern_meta;

#define RC_HEAD_SIZE   sizeof(rc_head)
#define RC_GC_SIZE     sizeof(rc_gc_head)

_Static_assert(sizeof(rc_head) == 16, "rc_head must keep user data 16-aligned");
_Static_assert(sizeof(rc_gc_head) == 16, "gc head: two words, keeping user data 16-aligned");
_Static_assert(sizeof(rc_intern_meta) == 16, "intern meta must be 16 bytes");

#define RC_F_FINALIZED ((uintptr_t)1)
#define RC_F_WEAKREFS  ((uintptr_t)2)
#define RC_F_GC        ((uintptr_t)4)
#define RC_F_MASK      ((uintptr_t)7)

#define RC_IMMORTAL    ((int64_t)1 << 62)

/* Trashcan: deaths nested deeper than this are queued (object.c). */
#define RC_TRASHCAN_DEPTH 32

static inline rc_head *rc_head_of(const void *obj)
{
    return (rc_head *)((char *)obj - RC_HEAD_SIZE);
}
static inline rc_gc_head *rc_gc_of(const void *obj)
{
    return (rc_gc_head *)((char *)obj - RC_HEAD_SIZE - RC_GC_SIZE);
}
static inline void *rc_obj_of_gc(rc_gc_head *g)
{
    return (char *)g + RC_GC_SIZE + RC_HEAD_SIZE;
}
static inline const rc_type *rc_type_word_type(uintptr_t w)
{
    return (const rc_type *)(w & ~RC_F_MASK);
}
/* rc_type_of for a live object, inlined (the exported one goes through the
   GOT: the collector calls this once per object per pass). */
static inline const rc_type *rc_type_fast(const void *obj)
{
    return rc_type_word_type(atomic_load_explicit(&rc_head_of(obj)->type,
                                                  memory_order_relaxed));
}

/* ---- object.c ---------------------------------------------------------- */

/* Take a reference only if obj is alive (refcount > 0); 1 on success. */
int  _rc_try_incref(void *obj);
/* The internal "new" behind rc_new and rc_intern: prefix bytes (a multiple
   of 16) are reserved before the rc_head (and before the gc head). */
void *_rc_new_prefixed(const rc_type *type, size_t size, size_t prefix);

/* ---- gc.c -------------------------------------------------------------- */

/* rc_new of a container: track, count: _rc_gc_link_new in nursery.h */
/* A container's refcount hit 0: untrack it (waits for a running
   collection). */
void _rc_gc_untrack_dying(void *obj);
/* Finalize resurrected a dying container: track it again if it was. */
void _rc_gc_retrack(void *obj);
/* The collector's line in rc_stats_print: collections, world stops. */
void _rc_gc_print(void (*emit)(void *, const char *), void *ctx);

/* ---- census.c: live rc objects by type (rc_census) ---------------------
 *
 * Every thread counts the births and deaths it performs in a table of its
 * own, (type -> objects, bytes), with plain (relaxed, not read-modify-
 * write) additions: no lock, no atomic RMW, no shared cache line on the
 * path of rc_new and death.  An object born in one thread and dying in
 * another adds in one table and subtracts in the other (size_t arithmetic
 * wraps, so sums are right).  Tables are on a lock-free list and are
 * never freed: a thread's exit hands its table to the next new thread,
 * counts and all, since only the sum over all tables means anything.
 * rc_census sums them: exact when the other threads are quiescent (joined,
 * or synchronized with the caller), approximate while they run.  bytes are
 * the usable bytes of the objects' blocks, headers included. */

#define RC_CENSUS_SLOTS 64      /* per chunk; a power of two */

typedef struct rc_census_slot {
    const rc_type *_Atomic type;    /* NULL = free; set once, by the owner */
    _Atomic size_t objects, bytes;  /* owner: relaxed load + store */
} rc_census_slot;

typedef struct rc_census_chunk {
    rc_census_slot slot[RC_CENSUS_SLOTS];
    struct rc_census_chunk *_Atomic next;   /* more types than fit */
} rc_census_chunk;

typedef struct rc_census_table {
    rc_census_chunk first;
    _Atomic int in_use;             /* owned by a live thread */
    struct rc_census_table *next_all;   /* list of all tables, never shrinks */
} rc_census_table;

extern __thread rc_census_table *_rc_census_tls;
/* The owner's cache: the last type counted and its slot, in thread-local
   storage itself (no load of the table's address, no NULL test: type is
   _rc_census_none before the first count and after the thread's census
   table went back, which no object has, nor NULL).  Set only when the
   allocator's fast path is on (not in checked modes). */
typedef struct rc_census_last {
    const rc_type *type;
    rc_census_slot *slot;
} rc_census_last;
extern __thread rc_census_last _rc_census_last;
extern const rc_type _rc_census_none;

/* rc_new's quick paths serve objects of at most this many bytes from the
   allocator's fast path: blocks of at most RC_SMALL_BLOCK_MAX, headers
   included (object.c), which the fast path must serve (census.c). */
#define RC_SMALL_OBJECT 256
#define RC_SMALL_BLOCK_MAX (RC_SMALL_OBJECT + RC_GC_SIZE + RC_HEAD_SIZE)
/* The slot of t in this thread's table (creating either); NULL only when
   out of memory (the count is then lost: the census undercounts). */
rc_census_slot *_rc_census_slot(const rc_type *t);

static inline __attribute__((always_inline))
void _rc_census_add(rc_census_slot *s, size_t dobjects, size_t dbytes)
{
    atomic_store_explicit(&s->objects, atomic_load_explicit(&s->objects,
                          memory_order_relaxed) + dobjects, memory_order_relaxed);
    atomic_store_explicit(&s->bytes, atomic_load_explicit(&s->bytes,
                          memory_order_relaxed) + dbytes, memory_order_relaxed);
}

static inline __attribute__((always_inline))
void _rc_census_count(const rc_type *t, size_t dobjects, size_t dbytes)
{
    rc_census_slot *s;
    if (__builtin_expect(_rc_census_last.type == t, 1)) {
        s = _rc_census_last.slot;
    } else {
        s = _rc_census_slot(t);
        if (s == NULL)
            return;
    }
    _rc_census_add(s, dobjects, dbytes);
}

/* ---- weakref.c --------------------------------------------------------- */

extern const rc_type _rc_weakref_type;
/* obj is dying (or garbage): clear every weakref to it and run the
   callbacks of those not held only by garbage (is_garbage may be NULL). */
typedef struct rc_weakref rc_weakref;
rc_weakref *_rc_weakref_clear_referent(void *obj, rc_weakref *cbs);
void _rc_weakref_run_callbacks(rc_weakref *cbs);
/* wr (a weakref object) is garbage: detach it and drop its callback. */
void _rc_weakref_disarm(void *wr);

/* ---- intern.c ---------------------------------------------------------- */

extern const rc_type _rc_intern_type;

#endif /* RC_LIFETIME_H */
