/*
 * object.c -- rc objects: allocation, reference counts, death.
 *
 * Entry points: rc_new, rc_incref, rc_decref (and dealloc behind it, with
 * the trashcan that keeps any chain of deaths in bounded stack).  Layout of
 * the headers and the meaning of the refcount word: lifetime.h.
 *
 * Refcount scheme: plain atomics on one signed 64-bit word, not biased
 * reference counting (PEP 703).  Measured with bench/gc_bench.c on the
 * owning thread, an incref+decref pair costs 4.2-4.4 ns atomic against
 * 2.7-3.0 ns for an emulated biased one: about 1.5 ns a pair.  But biased
 * counting cannot tell at once that a count shared between threads reached
 * zero: a non-owner's decref only queues the object for its owner to
 * merge, so death would wait until the owner thread next calls into the
 * library -- and our contract is that an object dies, in CPython's order,
 * before the rc_decref that dropped the last reference returns, on
 * whatever thread.  It would also cost every header an owner word.  The
 * common short-lived object never pays the atomic at all: rc_decref sees a
 * count of 1 on an object without weak pointers (container or not), which
 * means no other thread can hold or revive it, and dies without an RMW
 * and without the dealloc/destroy call chain: decref_last does the whole
 * death inline, a container's untracking from its own nursery included
 * (nursery.h).  (rc_new+rc_decref of 16 bytes, with the allocator's fast
 * paths inlined from alloc.h: 5.7 ns, the same as _rc_malloc+_rc_free;
 * 6.8 ns when the type has a clear function, 1.19x -- bench/gc_bench.c.)
 *
 * Instructions per node of binary-trees (callgrind, depth 13, a build
 * without valgrind's checked paths): malloc/free on rcmalloc 116; rc
 * objects without traverse 258 (rc_new ~89: the allocation ~30, the census
 * ~20 with its block size lookup; rc_decref and the death ~128: the free
 * with its cache flushes ~45, the census ~20); containers 386 (rc_new ~121
 * with the nursery; the collections ~52, nearly all of it the two
 * traverses of each object examined; the deaths of the ~40% that outlived
 * a collection or a nursery fill, off the generation lists under their
 * lock, ~46 each in gc.c).  Was 410 before the collections' fused passes
 * and the short path for those deaths (gc.c).  392 since the gc head is
 * two words (lifetime.h), 4 more than with four words: flags now share
 * words with the links, so link writes keep the bits beside them; but a
 * node is a 48-byte block, not 64, and callgrind's cache simulation
 * counts 28% fewer D1 read misses and 57% fewer write misses per node.
 * Then rc_new's common case (a small object without traverse, the census
 * slot of the last type, a block from the thread's cache: block_quick) got
 * a fast path with no call but a tail call, so it saves no registers, and
 * a death does the allocator's ownership test once for the census and the
 * free: plain objects 251 -> 229, containers 392 -> 385 instructions a
 * node; a small container's birth got the same when its nursery has room
 * and its count needs no flush (new_container): containers 385 -> 369.
 */
#include "lifetime.h"
#include "alloc.h"        /* the allocator fast paths, inlined */
#include "nursery.h"      /* container birth and death, inlined; stw.h */
#include <errno.h>
#include <string.h>

/* ==== allocation ========================================================= */

/* The bytes the census counts for an object: its block's usable size (the
   same at birth and death); inline for pool blocks, as _rc_usable_size. */
static inline __attribute__((always_inline)) size_t block_bytes(const void *base)
{
    if (__builtin_expect(_rc_is_pool_block(base), 1))
        return _rc_pool_of(base)->block_size;
    return _rc_usable_size(base);
}

void *_rc_new_prefixed(const rc_type *type, size_t size, size_t prefix)
{
    int gc = type->traverse != NULL;
    size_t head = prefix + (gc ? RC_GC_SIZE : 0) + RC_HEAD_SIZE;
    if (size > SIZE_MAX - head) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = _rc_malloc(head + size);
    if (base == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    char *obj = base + head;
    _rc_census_count(type, 1, block_bytes(base));
    rc_head *h = rc_head_of(obj);
    atomic_init(&h->type, (uintptr_t)type | (gc ? RC_F_GC : 0));
    atomic_init(&h->refcnt, 1);
    if (gc) {
        rc_gc_head *g = rc_gc_of(obj);
        g->nx = g->pv = 0;         /* untracked */
    }
    memset(obj, 0, size);
    return obj;
}

/* Zero a small user area in 16-byte steps, inline: the library is built
   with -fno-builtin, so a memset would be a call; the empty asm keeps GCC
   from turning the loop back into one. */
static inline void zero16(char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        ((uint64_t *)(p + i))[0] = 0;
        ((uint64_t *)(p + i))[1] = 0;
        __asm__("" : : "r"(p) : "memory");
    }
}

#define SMALL_OBJECT RC_SMALL_OBJECT

/* A small object's block, the long way: any block of bytes, counted in
   the census by its block's size; NULL + ENOMEM on failure. */
static inline __attribute__((always_inline)) char *block_counted(const rc_type *type,
                                                                 size_t bytes)
{
    char *base = fast_alloc(bytes);
    if (base == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    _rc_census_count(type, 1, block_bytes(base));
    return base;
}

/* ... the quick way, making no call: a block straight from the thread's
   cache (a pool block of its class, so its size is the class's), counted
   in the census slot of the last type counted, which the caller checked
   is the object's; NULL when there is none (nothing changed: the caller
   takes the long way). */
static inline __attribute__((always_inline)) char *block_quick(size_t bytes)
{
    /* bytes <= RC_SMALL_BLOCK_MAX, within the fast path's sizes: the
       census's last type is set only when that is on */
    unsigned cls = _rc_class_of(bytes);
    char *base = fast_alloc_try(cls, bytes);
    if (rc_likely(base != NULL))
        _rc_census_add(_rc_census_last.slot, 1, _rc_class_size[cls]);
    return base;
}

/* A small object in its fresh block: the object starts head bytes in, with
   its rc_head before it and n zeroed bytes. */
static inline __attribute__((always_inline)) char *init_small(char *base, size_t head,
                                                              uintptr_t type_word, size_t n)
{
    char *obj = base + head;
    rc_head *h = rc_head_of(obj);
    atomic_init(&h->type, type_word);
    atomic_init(&h->refcnt, 1);
    zero16(obj, n);
    return obj;
}

#define PLAIN_HEAD     RC_HEAD_SIZE
#define CONTAINER_HEAD (RC_GC_SIZE + RC_HEAD_SIZE)

/* Every rc_new the fast paths below do not finish: a thread's first
   object, big objects, another type than the census's last, an empty
   cache, a nursery to drain or a count to flush, bad arguments. */
static RC_NOINLINE void *new_other(const rc_type *type, size_t size)
{
    if (type == NULL) {
        errno = EINVAL;
        return NULL;
    }
    _rc_stw_enter();
    if (size <= SMALL_OBJECT) {
        /* round up to 16 and zero inline */
        size_t n = (size + 15) & ~(size_t)15;
        if (type->traverse == NULL) {
            char *base = block_counted(type, PLAIN_HEAD + n);
            return base ? init_small(base, PLAIN_HEAD, (uintptr_t)type, n) : NULL;
        }
        char *base = block_counted(type, CONTAINER_HEAD + n);
        if (base == NULL)
            return NULL;
        char *obj = init_small(base, CONTAINER_HEAD, (uintptr_t)type | RC_F_GC, n);
        _rc_gc_link_new(obj);       /* sets both words of the gc head */
        return obj;
    }
    void *obj = _rc_new_prefixed(type, size, 0);
    if (obj != NULL && type->traverse != NULL)
        _rc_gc_link_new(obj);
    return obj;
}

/* rc_new of a small container when the census slot of its type is the
   last counted: no call when the nursery has room, the count needs no
   flush and the thread's cache has a block, but for the rare stop request
   at the end of the critical region.  Its own function, so that its
   registers are not saved on the plain objects' path in rc_new. */
static RC_NOINLINE void *new_container(const rc_type *type, size_t size)
{
    size_t n = (size + 15) & ~(size_t)15;
    nursery *nu = _rc_gc_tls_nursery;
    char *base;
    if (rc_likely(_rc_stw_registered()) && rc_likely(_rc_gc_birth_is_quick(nu)) &&
        rc_likely((base = block_quick(CONTAINER_HEAD + n)) != NULL)) {
        char *obj = init_small(base, CONTAINER_HEAD, (uintptr_t)type | RC_F_GC, n);
        _rc_gc_link_new_quick(nu, obj);
        return obj;
    }
    return new_other(type, size);
}

/* The fast path for a small object without traverse makes no call but
   the tail call to new_other for anything it cannot finish.  One test
   stands for four: the type is the census's last (so not NULL, and the
   allocator's fast path is on: census.c), and the thread has been
   registered for the collector's stops (the census is counted only after
   _rc_stw_enter).  A plain object needs no more: a thread whose
   registration was dropped at exit (a later thread-local destructor
   making objects) registers again at its next rc_incref or rc_decref,
   before it can touch a container; new_container checks again. */
RC_API void *rc_new(const rc_type *type, size_t size)
{
    if (rc_likely(_rc_census_last.type == type && size <= SMALL_OBJECT)) {
        if (type->traverse != NULL)
            return new_container(type, size);
        size_t n = (size + 15) & ~(size_t)15;
        char *base = block_quick(PLAIN_HEAD + n);
        if (rc_likely(base != NULL))
            return init_small(base, PLAIN_HEAD, (uintptr_t)type, n);
    }
    return new_other(type, size);
}

/* The block of obj back to the allocator, counted out of the census. */
static inline __attribute__((always_inline)) void free_block(void *obj, uintptr_t tw)
{
    size_t head = RC_HEAD_SIZE;
    if (tw & RC_F_GC)
        head += RC_GC_SIZE;
    else if (rc_type_word_type(tw) == &_rc_intern_type)
        head += sizeof(rc_intern_meta);
    char *base = (char *)obj - head;
    /* fast_free's own test, done once for the census's size and the free */
    if (rc_likely(_rc_map_of(base) == RC_MAP_FAST)) {
        _rc_census_count(rc_type_word_type(tw), (size_t)-1,
                         -(size_t)_rc_pool_of(base)->block_size);
        free_pool_block(base);
        return;
    }
    _rc_census_count(rc_type_word_type(tw), (size_t)-1, -block_bytes(base));
    _rc_free_generic(base);
}

/* ==== death and the trashcan ============================================= */

/* Per-thread trashcan: nesting depth of deaths, and the queue of deaths
   deferred because the depth was too large.  A queued object's refcount
   word holds the link to the next one, with the top bit set (so it reads
   as negative: "dead" to _rc_try_incref and rc_refcount). */
static __thread struct {
    unsigned depth;
    void *queue;
} trash;

#define LINK_TAG ((uint64_t)1 << 63)

/* finalize -> weakrefs -> clear -> free; the refcount is 0 on entry. */
static inline __attribute__((always_inline)) void destroy(void *obj)
{
    rc_head *h = rc_head_of(obj);
    uintptr_t tw = atomic_load_explicit(&h->type, memory_order_acquire);
    const rc_type *t = rc_type_word_type(tw);

    if (t->finalize != NULL && !(tw & RC_F_FINALIZED)) {
        atomic_fetch_or(&h->type, RC_F_FINALIZED);
        /* Hold a temporary reference while it runs: whatever the finalizer
           stores beyond it is a resurrection. */
        atomic_store(&h->refcnt, 1);
        t->finalize(obj);
        if (atomic_fetch_sub(&h->refcnt, 1) != 1) {
            if (tw & RC_F_GC)
                _rc_gc_retrack(obj);
            return;
        }
        tw = atomic_load_explicit(&h->type, memory_order_acquire);
    }
    if (tw & RC_F_WEAKREFS)
        _rc_weakref_run_callbacks(_rc_weakref_clear_referent(obj, NULL));
    if (t->clear != NULL)
        t->clear(obj);
    free_block(obj, tw);
}

static void drain(void);

/* A container's count reached 0: off the collector's lists or nursery. */
static inline __attribute__((always_inline)) void untrack_dying(void *obj)
{
    if (!_rc_gc_untrack_young(obj))
        _rc_gc_untrack_dying(obj);
}

static void dealloc(void *obj)
{
    rc_head *h = rc_head_of(obj);
    if (atomic_load_explicit(&h->type, memory_order_relaxed) & RC_F_GC)
        untrack_dying(obj);
    if (trash.depth >= RC_TRASHCAN_DEPTH) {
        atomic_store_explicit(&h->refcnt,
                              (int64_t)((uint64_t)(uintptr_t)trash.queue | LINK_TAG),
                              memory_order_relaxed);
        trash.queue = obj;
        return;
    }
    trash.depth++;
    destroy(obj);
    if (trash.depth == 1)
        drain();
    trash.depth--;
}

/* Run the deaths queued by the trashcan; at depth 1 (the outermost). */
static __attribute__((noinline)) void drain(void)
{
    while (trash.queue != NULL) {
        void *o = trash.queue;
        rc_head *oh = rc_head_of(o);
        uint64_t link = (uint64_t)atomic_load_explicit(&oh->refcnt,
                                                       memory_order_relaxed);
        trash.queue = (void *)(uintptr_t)(link & ~LINK_TAG);
        atomic_store_explicit(&oh->refcnt, 0, memory_order_relaxed);
        destroy(o);
    }
}

/* ==== reference counts =================================================== */

/* The increment itself; rc_incref's fast path and its registering slow
   path below. */
static inline __attribute__((always_inline)) void *incref_body(void *obj)
{
    if (obj == NULL)
        return NULL;
    rc_head *h = rc_head_of(obj);
    if (rc_unlikely(atomic_load_explicit(&h->refcnt, memory_order_relaxed) >= RC_IMMORTAL))
        return obj;
    atomic_fetch_add(&h->refcnt, 1);
    return obj;
}

/* A thread's first incref or decref registers it (stw.h) out of line, then
   does the operation (once: registration can fail, and is not retried
   here): so the fast paths keep no value across a call and need no stack
   frame. */
static RC_NOINLINE void *incref_registering(void *obj)
{
    _rc_stw_register();
    return incref_body(obj);
}

RC_API void *rc_incref(void *obj)
{
    if (rc_unlikely(!_rc_stw_registered()))
        return incref_registering(obj);
    return incref_body(obj);
}

/* rc_decref of a count of 1: out of line, so that the common decrement
   (a count above 1) saves no registers for the death paths. */
static __attribute__((noinline)) void decref_last(void *obj, rc_head *h)
{
    /* Sole owner?  Then nobody else can legally touch the count: no other
       thread holds a reference.  Only a weak pointer that may revive it
       (rc_weakref_get, the intern table) could race with us, so this
       shortcut is for objects with none.  Containers take it too: the
       collector reads and pins counts only with this thread stopped, and
       pins only unreachable objects, which our reference is not. */
    uintptr_t tw = atomic_load_explicit(&h->type, memory_order_relaxed);
    const rc_type *t = rc_type_word_type(tw);
    if (!(tw & RC_F_WEAKREFS) && t != &_rc_intern_type) {
        if (t->finalize == NULL && trash.depth < RC_TRASHCAN_DEPTH) {
            /* dealloc's path for this case, inline */
            if (tw & RC_F_GC) {
                /* what a collection running meanwhile may see: count 0 */
                atomic_store_explicit(&h->refcnt, 0, memory_order_relaxed);
                untrack_dying(obj);
            } else if (t->clear == NULL) {
                /* plain data: death is just the free; nothing can see the
                   object any more, so not even the count is stored */
                free_block(obj, tw);
                return;
            } else {
                atomic_store_explicit(&h->refcnt, 0, memory_order_relaxed);
            }
            trash.depth++;
            if (t->clear != NULL)
                t->clear(obj);
            free_block(obj, tw);
            if (trash.depth == 1 && trash.queue != NULL)
                drain();
            trash.depth--;
            return;
        }
        atomic_store_explicit(&h->refcnt, 0, memory_order_relaxed);
        dealloc(obj);
        return;
    }
    if (atomic_fetch_sub(&h->refcnt, 1) == 1)
        dealloc(obj);
}

static inline __attribute__((always_inline)) void decref_body(void *obj)
{
    if (obj == NULL)
        return;
    rc_head *h = rc_head_of(obj);
    int64_t v = atomic_load_explicit(&h->refcnt, memory_order_acquire);
    if (rc_unlikely(v >= RC_IMMORTAL))
        return;
    if (v == 1) {
        decref_last(obj, h);
        return;
    }
    if (atomic_fetch_sub(&h->refcnt, 1) == 1)
        dealloc(obj);
}

static RC_NOINLINE void decref_registering(void *obj)
{
    _rc_stw_register();
    decref_body(obj);
}

RC_API void rc_decref(void *obj)
{
    if (rc_unlikely(!_rc_stw_registered())) {
        decref_registering(obj);
        return;
    }
    decref_body(obj);
}

int _rc_try_incref(void *obj)
{
    _rc_stw_enter();
    rc_head *h = rc_head_of(obj);
    int64_t v = atomic_load_explicit(&h->refcnt, memory_order_relaxed);
    do {
        if (v <= 0)
            return 0;
        if (v >= RC_IMMORTAL)
            return 1;
    } while (!atomic_compare_exchange_weak(&h->refcnt, &v, v + 1));
    return 1;
}

RC_API size_t rc_refcount(const void *obj)
{
    if (obj == NULL)
        return 0;
    int64_t v = atomic_load_explicit(&rc_head_of(obj)->refcnt,
                                     memory_order_relaxed);
    return v < 0 ? 0 : (size_t)v;
}

RC_API const rc_type *rc_type_of(const void *obj)
{
    if (obj == NULL)
        return NULL;
    return rc_type_word_type(atomic_load_explicit(&rc_head_of(obj)->type,
                                                  memory_order_relaxed));
}

RC_API void rc_immortalize(void *obj)
{
    if (obj != NULL)
        atomic_store(&rc_head_of(obj)->refcnt, RC_IMMORTAL);
}
