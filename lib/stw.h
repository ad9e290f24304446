/*
 * stw.h -- stopping the world for the cycle collector (stw.c): the
 * per-thread record, registration on first use and critical regions,
 * inlined into the object layer's entry points.
 */
#ifndef RC_STW_H
#define RC_STW_H
#include "internal.h"
#include <stdatomic.h>
#include <sys/types.h>

typedef struct rc_stw_thread {
    struct rc_stw_thread *next, *prev;  /* registry (under its lock) */
    pid_t tid;                          /* kernel thread id, for tgkill */
    int registered;
    _Atomic unsigned acked;             /* the stop epoch it is parked for */
    _Atomic int crit;                   /* in a critical region */
    _Atomic int pending;                /* a stop arrived in one */
} rc_stw_thread_t;

extern __thread rc_stw_thread_t _rc_stw_self;
extern _Atomic unsigned _rc_stw_nthreads;   /* threads registered now */

void _rc_stw_register(void);
void _rc_stw_pending(void);

/* Has this thread registered (its first rc object)? */
static inline __attribute__((always_inline)) bool _rc_stw_registered(void)
{
    return __builtin_expect(_rc_stw_self.registered, 1);
}

/* Every entry point through which a thread gets or drops an rc reference
   calls this first: after the first time, one thread-local test. */
static inline __attribute__((always_inline)) void _rc_stw_enter(void)
{
    if (!_rc_stw_registered())
        _rc_stw_register();
}

/* Around every change to the collector's lists made outside a collection:
   a stop request waits for the region's end.  Not nested. */
static inline __attribute__((always_inline)) void _rc_stw_crit_enter(void)
{
    atomic_store_explicit(&_rc_stw_self.crit, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}
static inline __attribute__((always_inline)) void _rc_stw_crit_leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&_rc_stw_self.crit, 0, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&_rc_stw_self.pending,
                                              memory_order_relaxed), 0))
        _rc_stw_pending();
}

/* Stop every other registered thread (0), or give up after
   RCMALLOC_GC_STOP_MS (-1: the world runs on).  After 0, _rc_stw_start
   restarts it.  Nothing between the two may allocate or take a lock. */
int  _rc_stw_stop(void);
void _rc_stw_start(void);
typedef struct rc_stw_stats {
    size_t threads;             /* registered now */
    size_t stops, skipped;      /* stops of more than one thread; given up */
    uint64_t wait_ns, wait_max_ns;  /* until all were parked: sum, longest */
} rc_stw_stats_t;
void _rc_stw_stats(rc_stw_stats_t *out);

void _rc_stw_fork_prepare(void);
void _rc_stw_fork_parent(void);
void _rc_stw_fork_child(void);

#endif
