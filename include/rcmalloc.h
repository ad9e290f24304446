/*
 * rcmalloc.h -- the public interface of librcmalloc.
 *
 * Two layers:
 *   - an allocator (rc_malloc & co.): size-class pools for small blocks,
 *     jemalloc for large ones; the default build also exports the standard
 *     malloc/free/new/delete names, so the library can be LD_PRELOADed;
 *   - an object-lifetime layer (rc_new & co.): reference counts, a
 *     generational cycle collector, weak references and interned strings,
 *     in the manner of CPython.
 *
 * See rcmalloc(7) for the design and the RCMALLOC_* environment variables.
 */
#ifndef RCMALLOC_H
#define RCMALLOC_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#  define RC_API __attribute__((visibility("default")))
#  define RC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#  define RC_API
#  define RC_MALLOC_ATTR
#endif

/* ---- allocator (always exported) ---------------------------------------- */

RC_API RC_MALLOC_ATTR void *rc_malloc(size_t size);
RC_API RC_MALLOC_ATTR void *rc_calloc(size_t count, size_t size);
RC_API void  *rc_realloc(void *ptr, size_t size);
RC_API void   rc_free(void *ptr);
RC_API void   rc_free_sized(void *ptr, size_t size);
RC_API RC_MALLOC_ATTR void *rc_aligned_alloc(size_t alignment, size_t size);
RC_API int    rc_posix_memalign(void **out, size_t alignment, size_t size);
RC_API size_t rc_usable_size(const void *ptr);
/* Human-readable statistics, per size class, then totals. */
RC_API void   rc_stats_print(FILE *out);
/* Heap profile (RCMALLOC_PROF=1): write the sampled live and allocated
   bytes per call stack to path, in gperftools' format for google-pprof;
   NULL names <RCMALLOC_PROF_PREFIX>.<pid>.<n>.heap.  0, or -1 with errno:
   EINVAL when profiling is off, else open(2)'s or write(2)'s error. */
RC_API int    rc_prof_dump(const char *path);

/* ---- object lifetime ------------------------------------------------------ */

typedef int (*rc_visit_fn)(void *child, void *arg);   /* nonzero stops traversal */

typedef struct rc_type {
    const char *name;
    /* Visit every strong reference obj holds; NULL = not a container: such
       objects are never tracked by the cycle collector. */
    int  (*traverse)(void *obj, rc_visit_fn visit, void *arg);
    /* Drop the strong references obj holds (RC_CLEAR each field); called when
       the object dies, and to break garbage cycles. */
    void (*clear)(void *obj);
    /* Optional; called at most once per object, before clear, when it is about
       to die; may resurrect obj by storing a new reference to it. */
    void (*finalize)(void *obj);
} rc_type;

RC_API void          *rc_new(const rc_type *type, size_t size); /* zeroed, refcount 1 */
RC_API void          *rc_incref(void *obj);                     /* returns obj; NULL is a no-op */
RC_API void           rc_decref(void *obj);                     /* NULL is a no-op */
RC_API size_t         rc_refcount(const void *obj);
RC_API const rc_type *rc_type_of(const void *obj);
RC_API void           rc_immortalize(void *obj);

/* field = NULL, then decref the old value.  A NULL field costs no call
   (as CPython's Py_CLEAR): leaves of a structure clear NULL fields. */
#define RC_CLEAR(field) do {                    \
        void *rc_clear_old_ = (void *)(field);  \
        if (rc_clear_old_ != NULL) {            \
            (field) = NULL;                     \
            rc_decref(rc_clear_old_);           \
        }                                       \
    } while (0)

/* field = val (a new reference, owned by field), then decref the old value */
#define RC_SETREF(field, val) do {              \
        void *rc_setref_old_ = (void *)(field); \
        (field) = (val);                        \
        if (rc_setref_old_ != NULL)             \
            rc_decref(rc_setref_old_);          \
    } while (0)

/* Cycle collector: generational, in the spirit of CPython's gc module. */
RC_API size_t rc_gc_collect(int generation);  /* 0..2 or -1 (full); returns
                                                 unreachable objects found */
RC_API void   rc_gc_enable(void);
RC_API void   rc_gc_disable(void);
RC_API int    rc_gc_is_enabled(void);
RC_API void   rc_gc_set_threshold(size_t t0, size_t t1, size_t t2);
RC_API void   rc_gc_get_threshold(size_t *t0, size_t *t1, size_t *t2);
RC_API void   rc_gc_get_count(size_t *c0, size_t *c1, size_t *c2);
RC_API void   rc_gc_track(void *obj);
RC_API void   rc_gc_untrack(void *obj);
RC_API int    rc_gc_is_tracked(const void *obj);
RC_API void   rc_gc_freeze(void);
RC_API void   rc_gc_unfreeze(void);
RC_API size_t rc_gc_freeze_count(void);

typedef struct rc_gc_stats {
    size_t collections, collected, uncollectable;
} rc_gc_stats;
RC_API int    rc_gc_get_stats(int generation, rc_gc_stats *out); /* 0, or -1 + EINVAL */

/* Finding leaks among objects (rc_gc_get_objects(3)); CPython's gc module. */
typedef int (*rc_object_fn)(void *obj, void *arg);       /* nonzero stops the walk */

/* Tracked objects of generation 0..2, or all with -1 (frozen included);
   returns the number visited; another generation: 0 with errno EINVAL. */
RC_API size_t rc_gc_get_objects(int generation, rc_object_fn fn, void *arg);
/* Tracked objects whose traverse visits obj; returns the number visited. */
RC_API size_t rc_gc_get_referrers(const void *obj, rc_object_fn fn, void *arg);
/* What obj's traverse visits (nothing for a non-container). */
RC_API size_t rc_gc_get_referents(const void *obj, rc_object_fn fn, void *arg);

#define RC_GC_DEBUG_STATS   1    /* a line on stderr per collection */
#define RC_GC_DEBUG_SAVEALL 32   /* keep found garbage instead of freeing it */
RC_API void   rc_gc_set_debug(int flags);
RC_API int    rc_gc_get_debug(void);
RC_API size_t rc_gc_garbage(rc_object_fn fn, void *arg);    /* visit the kept garbage */
RC_API size_t rc_gc_clear_garbage(void);                    /* release it; returns how many */

typedef void (*rc_gc_callback)(int phase,            /* 0 start, 1 stop */
                               int generation,
                               const rc_gc_stats *info,  /* at stop: this collection's
                                                            collected/uncollectable; NULL at start */
                               void *arg);
RC_API int    rc_gc_callback_add(rc_gc_callback cb, void *arg);     /* 0, or -1 + errno */
RC_API int    rc_gc_callback_remove(rc_gc_callback cb, void *arg);  /* 0, or -1 + ENOENT */

typedef struct rc_type_census {
    const rc_type *type;
    size_t objects, bytes;        /* live objects of the type, and their bytes */
} rc_type_census;
/* Every live rc object, tracked or not, by type, most bytes first; fills at
   most max entries and returns the number of types. */
RC_API size_t rc_census(rc_type_census *out, size_t max);

/* Weak references: a weakref is itself an rc object (rc_decref it when done). */
typedef void (*rc_weak_callback)(void *weakref, void *arg);
RC_API void *rc_weakref_new(void *obj, rc_weak_callback cb, void *arg);
RC_API void *rc_weakref_get(void *weakref);   /* new strong reference, or NULL */

/* Interning: a refcounted, immutable, NUL-terminated copy; equal contents give
   the same pointer while any reference to it lives.  Returns a new reference. */
RC_API const char *rc_intern(const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* RCMALLOC_H */
