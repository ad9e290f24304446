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
 * profiler: pool frees never check anything.
 */
#ifndef RC_PROF_H
#define RC_PROF_H
#include "internal.h"

extern bool _rc_prof_on;                 /* sampling is running */
extern __thread int64_t _rc_prof_left_noheap  /* the count before a heap */
    __attribute__((tls_model("initial-exec")));

bool  _rc_prof_take(int64_t *left, size_t size); /* *left ran out: sample? */
void *_rc_prof_alloc(size_t size, size_t align, bool zero);  /* a sampled block */
void  _rc_prof_forget(const void *ptr);  /* a sampled block is freed */
void  _rc_prof_sample_at(void *ptr, size_t size);  /* realloc: where it is */
void  _rc_prof_quiet(bool quiet);        /* while realloc moves: sample nothing */
void  _rc_large_mark_sampled(const void *ptr);                   /* large.c */
void  _rc_prof_start(void);              /* from the constructor */
void  _rc_prof_exit(void);               /* the dump at exit */
void  _rc_prof_lock(void);               /* fork */
void  _rc_prof_unlock(void);
void  _rc_prof_fork_child(void);
void *_rc_large_malloc_sampled(size_t size, size_t align, bool zero);  /* large.c */
void *_rc_malloc_counted_out(size_t size);  /* alloc.c: the count ran out */
void *_rc_malloc_slow_counted(rc_heap_t *h, unsigned cls, size_t size);

/* The calling thread's count. */
RC_INLINE int64_t *_rc_prof_counter(void)
{
    rc_heap_t *h = _rc_heap_tls;
    return h != &_rc_heap_empty ? &h->prof_left : &_rc_prof_left_noheap;
}

/* Off the fast paths: count a new block of size bytes (sizes beyond
   PTRDIFF_MAX, which fail later anyway, are masked so that the count cannot
   wrap); true if it is to be sampled. */
RC_INLINE bool _rc_prof_due(size_t size)
{
    int64_t *left = _rc_prof_counter();
    return rc_unlikely((*left -= (int64_t)(size & PTRDIFF_MAX)) < 0) &&
           _rc_prof_take(left, size);
}

#endif
