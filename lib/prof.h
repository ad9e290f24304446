/*
 * prof.h -- the sampling heap profiler's hooks (prof.c; SPEC 4.2).
 *
 * With RCMALLOC_PROF=1, _rc_fast_max is 0, so every allocation comes to
 * alloc.c's slow path, which counts its bytes down this thread's
 * _rc_prof_left; the allocation that takes it below zero is sampled: its
 * stack is recorded and it is served from the large side (large.c), whose
 * live set marks it, so that only the frees of sampled blocks -- which look
 * the pointer up there anyway -- ever reach the profiler.  Pool frees never
 * check anything, and with the profiler off the fast paths are unchanged.
 */
#ifndef RC_PROF_H
#define RC_PROF_H
#include "internal.h"

extern bool _rc_prof_on;                 /* sampling is running */
extern __thread int64_t _rc_prof_left    /* bytes to this thread's next sample */
    __attribute__((tls_model("initial-exec")));

bool  _rc_prof_take(size_t size);        /* the count ran out: sample this one? */
void *_rc_prof_alloc(size_t size, size_t align, bool zero);  /* a sampled block */
void  _rc_prof_forget(const void *ptr);  /* a sampled block is freed */
void  _rc_prof_start(void);              /* from the constructor */
void  _rc_prof_exit(void);               /* the dump at exit */
void  _rc_prof_lock(void);               /* fork */
void  _rc_prof_unlock(void);
void  _rc_prof_fork_child(void);
void *_rc_large_malloc_sampled(size_t size, size_t align, bool zero);  /* large.c */

/* Whether a new block of size bytes is sampled: with the profiler off, one
   load and branch on the slow path; on, a decrement and branch more.  (Sizes
   beyond PTRDIFF_MAX fail later anyway; masked, they cannot wrap the count.) */
RC_INLINE bool _rc_prof_due(size_t size)
{
    return rc_unlikely(_rc_prof_on) &&
           rc_unlikely((_rc_prof_left -= (int64_t)(size & PTRDIFF_MAX)) < 0) &&
           _rc_prof_take(size);
}

#endif
