/*
 * prof.h -- the sampling heap profiler's hooks (prof.c; SPEC 4.2).
 *
 * Every allocation counts its bytes down its thread's heap's prof_left: on
 * the fast paths (alloc.h) that is one decrement and branch.  The one that
 * takes it below zero goes out of line to _rc_prof_take, which, with the
 * profiler on, decides whether to sample and draws the next count; with it
 * off, sets the count to INT64_MAX, so that the branch is never taken
 * again by that heap.  (A thread that has no heap yet counts on a
 * thread-local count instead: the shared empty heap is never written.)
 * A sampled block of span size is a span, whose free asks the profiler
 * while it is on (span.c); any other is served from the large side
 * (large.c), whose live set marks it, so that only the frees of sampled
 * blocks -- which look the pointer up there anyway -- ever reach the
 * profiler: pool frees never check anything.  A span's free, and realloc
 * of a span or a large block, read one counter of the profiler's hint
 * table inline (_rc_prof_forget) and go out of line only when a live
 * record may be at that address.
 */
#ifndef RC_PROF_H
#define RC_PROF_H
#include "internal.h"

extern bool _rc_prof_on;                 /* sampling is running */
#define RC_PROF_HINT_BITS 12              /* the hint table: 4096 counters */
extern _Atomic uint32_t _rc_prof_hints[]; /* live records per address hash */
extern __thread int64_t _rc_prof_left_noheap  /* the count before a heap */
    __attribute__((tls_model("initial-exec")));
extern __thread int64_t _rc_prof_left_realloc /* realloc's count (alloc.c) */
    __attribute__((tls_model("initial-exec")));
extern __thread bool _rc_prof_many      /* this thread has sampled a lot */
    __attribute__((tls_model("initial-exec")));

bool  _rc_prof_take(int64_t *left, size_t size); /* *left ran out: sample? */
void *_rc_prof_alloc(size_t size, size_t align, bool zero, bool span); /* sampled */
void  _rc_prof_forget_at(const void *ptr);  /* see _rc_prof_forget */
void  _rc_prof_sample_at(void *ptr, size_t size);  /* realloc: where it is */
/* realloc of a span (alloc.c): its record taken out while it moves, put
   back where it lands */
typedef struct prof_sample rc_prof_rec_t;
rc_prof_rec_t *_rc_prof_unlink_at(const void *ptr);  /* see _rc_prof_unlink */
size_t _rc_prof_rec_size(const rc_prof_rec_t *r);
bool  _rc_prof_rec_sampled(const rc_prof_rec_t *r);
void  _rc_prof_relink(rc_prof_rec_t *r, void *ptr, size_t size);
void  _rc_prof_note(rc_prof_rec_t *r, void *ptr, size_t size);
void  _rc_prof_drop(rc_prof_rec_t *r);
void *_rc_malloc_uncounted(size_t size); /* alloc.c: what realloc moves into */
void  _rc_large_mark_sampled(const void *ptr);                   /* large.c */
void  _rc_prof_start(void);              /* from the constructor */
void  _rc_prof_exit(void);               /* the dump at exit */
void  _rc_prof_lock(void);               /* fork */
void  _rc_prof_unlock(void);
void  _rc_prof_fork_child(void);
void *_rc_large_malloc_sampled(size_t size, size_t align, bool zero);  /* large.c */
void *_rc_malloc_counted_out(size_t size);  /* alloc.c: the count ran out */
void *_rc_malloc_slow_counted(rc_heap_t *h, unsigned cls, size_t size);

/* The hint counter of ptr's address: the profiler's table may hold a
   record there only if it is not 0. */
RC_INLINE _Atomic uint32_t *_rc_prof_hint(const void *ptr)
{
    return &_rc_prof_hints[(size_t)(((uintptr_t)ptr >> 4) * 0x9E3779B97F4A7C15ull >>
                                    (64 - RC_PROF_HINT_BITS))];
}

/* A span or a block of the large side is freed (or moved by realloc):
   its record, if it has one, goes (a sample counted as freed).  A record
   at ptr was made before ptr was handed out, so this thread sees its
   hint. */
RC_INLINE void _rc_prof_forget(const void *ptr)
{
    if (atomic_load_explicit(_rc_prof_hint(ptr), memory_order_relaxed) != 0)
        _rc_prof_forget_at(ptr);
}

/* realloc of a span: ptr's record taken out of the table (NULL if none). */
RC_INLINE rc_prof_rec_t *_rc_prof_unlink(const void *ptr)
{
    if (atomic_load_explicit(_rc_prof_hint(ptr), memory_order_relaxed) == 0)
        return NULL;
    return _rc_prof_unlink_at(ptr);
}

/* The calling thread's count. */
RC_INLINE int64_t *_rc_prof_counter(void)
{
    rc_heap_t *h = _rc_heap_tls;
    return h != &_rc_heap_empty ? &h->prof_left : &_rc_prof_left_noheap;
}

/* Off the fast paths: count a new block of size bytes (sizes beyond
   PTRDIFF_MAX, which fail later anyway, are masked so that the count cannot
   wrap); true if it is to be sampled. */
RC_INLINE bool _rc_prof_due_on(int64_t *left, size_t size)
{
    return rc_unlikely((*left -= (int64_t)(size & PTRDIFF_MAX)) < 0) &&
           _rc_prof_take(left, size);
}

RC_INLINE bool _rc_prof_due(size_t size)
{
    return _rc_prof_due_on(_rc_prof_counter(), size);
}

#endif
