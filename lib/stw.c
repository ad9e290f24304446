/*
 * stw.c -- stopping the world for the cycle collector.
 *
 * The collector reads the fields of tracked containers (their traverse
 * functions) and links them in its lists.  For that to be safe while other
 * threads run, every thread that may mutate a container is paused while
 * the collector reads: the collector sends each registered thread a
 * signal (RCMALLOC_GC_SIGNAL, SIGPWR by default, the one the Boehm GC uses
 * on Linux); the handler acknowledges and waits on a futex until the
 * collector restarts the world.  The collector's reading is the only work
 * done while the world is stopped: it allocates nothing and takes no lock
 * a paused thread may hold, so a thread paused inside the allocator, or
 * holding the program's own locks, costs nothing but the pause.
 *
 *   collector                         registered thread T
 *   ---------                         -------------------
 *   epoch++ (odd: stopping)
 *   tgkill(T, sig) ------------------> handler: crit?  yes: pending = 1,
 *                                               return (T parks when it
 *                                               leaves the critical region)
 *                                      no: acked = epoch; futex_wait(epoch)
 *   wait for every acked == epoch
 *   ... read the heap ...
 *   epoch++ (even), futex_wake ------> returns from the handler
 *
 * Which threads: every thread that has taken, dropped or created an rc
 * reference (rc_incref, rc_decref, rc_new, rc_weakref_get, rc_intern) is
 * registered on its first such call (_rc_stw_enter: one thread-local test)
 * and unregistered when it exits.  A thread that never used rc objects
 * cannot hold a reference it may store, so it need not stop.  Under the
 * user's contract (a thread stores into a field only a reference it owns)
 * a registered thread can be paused at any instruction.
 *
 * Critical regions: a thread linking or unlinking a container in the
 * collector's lists is inside _rc_stw_crit_enter/leave; a stop request
 * that arrives there is deferred to the region's end, so the collector
 * never sees a half-linked list.
 *
 * Threads that block the signal or sit in an uninterruptible sleep: the
 * collector waits RCMALLOC_GC_STOP_MS (default 1000) for them, then
 * restarts the others and skips the collection (_rc_stw_stop returns -1;
 * counted in the statistics).  A system call interrupted by the signal is
 * restarted (SA_RESTART) where the kernel allows; the ones that never are
 * (sleeps, waits with a timeout: see signal(7)) return EINTR, as under
 * the Boehm GC.
 *
 * fork: the registry lock is a fork lock (init.c); the child keeps only
 * the forking thread.
 */
#define _GNU_SOURCE 1
#include "internal.h"
#include "stw.h"
#include <errno.h>
#include <string.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__thread rc_stw_thread_t _rc_stw_self;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static rc_stw_thread_t reg_head = { .next = &reg_head, .prev = &reg_head };
static size_t reg_count;
_Atomic unsigned _rc_stw_nthreads;      /* reg_count, for gc.c's trigger */
static pthread_key_t reg_key;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static int reg_key_ok;

static _Atomic unsigned epoch;          /* odd while the world is stopped */
static int installed;                   /* ours was installed once (reg_lock) */
static struct sigaction prev_action;    /* the program's, chained to */
static size_t stops, skipped;           /* statistics (under reg_lock) */
static uint64_t wait_ns, wait_max_ns;   /* time to get every thread parked */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long futex(_Atomic unsigned *addr, int op, unsigned val)
{
    return syscall(SYS_futex, (unsigned *)addr, op, val, NULL, NULL, 0);
}

/* Sleep until *addr != val, a wake, or ns nanoseconds. */
static void futex_wait_ns(_Atomic unsigned *addr, unsigned val, long ns)
{
    struct timespec ts = { ns / 1000000000, ns % 1000000000 };
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

/* ---- registry ------------------------------------------------------------ */

static void unregister(void *arg)
{
    rc_stw_thread_t *t = arg;
    pthread_mutex_lock(&reg_lock);
    if (t->registered) {
        t->prev->next = t->next;
        t->next->prev = t->prev;
        t->registered = 0;
        reg_count--;
        atomic_store_explicit(&_rc_stw_nthreads, (unsigned)reg_count, memory_order_relaxed);
    }
    pthread_mutex_unlock(&reg_lock);
}

static void make_key(void)
{
    reg_key_ok = pthread_key_create(&reg_key, unregister) == 0;
}

void _rc_stw_register(void)
{
    rc_stw_thread_t *t = &_rc_stw_self;
    pthread_once(&reg_once, make_key);
    if (!reg_key_ok)
        return;     /* no key: never registered, so never stopped; the
                       collector then cannot be safe -- see _rc_stw_stop */
    pthread_mutex_lock(&reg_lock);
    if (!t->registered) {
        t->tid = (pid_t)syscall(SYS_gettid);
        t->next = reg_head.next;
        t->prev = &reg_head;
        reg_head.next->prev = t;
        reg_head.next = t;
        t->registered = 1;
        reg_count++;
        atomic_store_explicit(&_rc_stw_nthreads, (unsigned)reg_count, memory_order_relaxed);
    }
    pthread_mutex_unlock(&reg_lock);
    /* the destructor unregisters at exit (and runs again if a later
       destructor calls back into the object layer) */
    pthread_setspecific(reg_key, t);
}

/* ---- the handler ----------------------------------------------------------- */

static _Atomic unsigned acks;           /* parked since the stop began */

/* Spinning before sleeping, on either side of a stop: a young collection
   stops the world for some tens of microseconds, about what one futex
   wake-up takes here, and a stop took two in a row (the signal's, then the
   sleeping collector's: 64-87 us a stop in rc_graphs, a quarter of its
   time).  The spins yield the processor every few rounds, so that a
   thread that still has to take its signal (more threads than cores) is
   not kept off it. */
#define STW_SPIN  4096      /* collector, waiting for the acks */
#define PARK_SPIN 2048      /* a parked thread, waiting for the restart */

/* Round i of a spin: a pause, and every 16th round the processor given up. */
static inline void spin_round(unsigned i)
{
    _rc_cpu_pause();
    if ((i & 15) == 15)
        syscall(SYS_sched_yield);
}

static bool spin_while_equal(_Atomic unsigned *addr, unsigned val, unsigned rounds)
{
    for (unsigned i = 0; i < rounds; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != val)
            return true;
        spin_round(i);
    }
    return atomic_load_explicit(addr, memory_order_acquire) != val;
}

static void park(rc_stw_thread_t *t, unsigned e)
{
    atomic_store_explicit(&t->acked, e, memory_order_release);
    atomic_fetch_add_explicit(&acks, 1, memory_order_release);
    futex(&acks, FUTEX_WAKE_PRIVATE, 1);     /* the collector, if it sleeps */
    if (spin_while_equal(&epoch, e, PARK_SPIN))
        return;
    while (atomic_load_explicit(&epoch, memory_order_acquire) == e)
        futex(&epoch, FUTEX_WAIT_PRIVATE, e);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    rc_stw_thread_t *t = &_rc_stw_self;
    unsigned e = atomic_load_explicit(&epoch, memory_order_acquire);
    if (t->registered && (e & 1)) {
        /* ours (a repeated signal of the same stop finds acked == e) */
        if (atomic_load_explicit(&t->acked, memory_order_relaxed) == e)
            ;
        else if (atomic_load_explicit(&t->crit, memory_order_relaxed))
            atomic_store_explicit(&t->pending, 1, memory_order_relaxed);
        else
            park(t, e);
    } else if (prev_action.sa_flags & SA_SIGINFO) {
        if (prev_action.sa_sigaction != NULL)
            prev_action.sa_sigaction(sig, si, uc);
    } else if (prev_action.sa_handler != SIG_DFL &&
               prev_action.sa_handler != SIG_IGN) {
        prev_action.sa_handler(sig);
    }
    errno = saved;
}

/* A stop request arrived in a critical region: honour it now. */
void _rc_stw_pending(void)
{
    rc_stw_thread_t *t = &_rc_stw_self;
    atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
    unsigned e = atomic_load_explicit(&epoch, memory_order_acquire);
    if ((e & 1) && atomic_load_explicit(&t->acked, memory_order_relaxed) != e)
        park(t, e);
}

/* Our handler on the signal, before every stop: a program that installed
   its own since is chained to from ours (signals not ours go to it). */
static int install(void)
{
    int sig = (int)_rc_opt.gc_signal;
    struct sigaction cur;
    if (installed && sigaction(sig, NULL, &cur) == 0 &&
        (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &cur) != 0)
        return -1;
    prev_action = cur;
    installed = 1;
    return 0;
}

/* ---- stop and start ---------------------------------------------------------- */

int _rc_stw_stop(void)
{
    pthread_mutex_lock(&reg_lock);
    rc_stw_thread_t *me = &_rc_stw_self;
    size_t others = reg_count - (me->registered ? 1 : 0);
    if (others == 0) {
        /* alone: nothing to stop (the lock stays held: nobody registers
           and starts mutating until _rc_stw_start) */
        return 0;
    }
    if (install() != 0) {
        skipped++;
        pthread_mutex_unlock(&reg_lock);
        return -1;
    }
    uint64_t t0 = now_ns();
    unsigned e = atomic_load_explicit(&epoch, memory_order_relaxed) + 1;
    atomic_store_explicit(&acks, 0, memory_order_relaxed);
    atomic_store_explicit(&epoch, e, memory_order_seq_cst);
    pid_t pid = getpid();
    for (rc_stw_thread_t *t = reg_head.next; t != &reg_head; t = t->next)
        if (t != me)
            syscall(SYS_tgkill, pid, t->tid, (int)_rc_opt.gc_signal);

    /* Spin on the ack count, then sleep on it (each handler wakes us), then
       check every thread's own ack: the count may include a late handler
       of an earlier stop, never a missing one. */
    for (unsigned i = 0; i < STW_SPIN &&
                         atomic_load_explicit(&acks, memory_order_acquire) < others; i++)
        spin_round(i);
    uint64_t deadline = t0 + (uint64_t)_rc_opt.gc_stop_ms * 1000000u;
    for (rc_stw_thread_t *t = reg_head.next; t != &reg_head; t = t->next) {
        if (t == me)
            continue;
        while (atomic_load_explicit(&t->acked, memory_order_acquire) != e) {
            unsigned a = atomic_load_explicit(&acks, memory_order_acquire);
            if (atomic_load_explicit(&t->acked, memory_order_acquire) == e)
                break;
            uint64_t now = now_ns();
            if (now > deadline) {
                /* a thread that blocks the signal, or cannot run: give up */
                skipped++;
                atomic_store_explicit(&epoch, e + 1, memory_order_release);
                futex(&epoch, FUTEX_WAKE_PRIVATE, INT32_MAX);
                pthread_mutex_unlock(&reg_lock);
                return -1;
            }
            long left = (long)(deadline - now);
            futex_wait_ns(&acks, a, left < 1000000 ? left : 1000000);
        }
    }
    uint64_t w = now_ns() - t0;
    stops++;
    wait_ns += w;
    if (w > wait_max_ns)
        wait_max_ns = w;
    return 0;
}

void _rc_stw_start(void)
{
    unsigned e = atomic_load_explicit(&epoch, memory_order_relaxed);
    if (e & 1) {
        atomic_store_explicit(&epoch, e + 1, memory_order_release);
        futex(&epoch, FUTEX_WAKE_PRIVATE, INT32_MAX);
    }
    pthread_mutex_unlock(&reg_lock);
}

void _rc_stw_stats(rc_stw_stats_t *out)
{
    pthread_mutex_lock(&reg_lock);
    out->threads = reg_count;
    out->stops = stops;
    out->skipped = skipped;
    out->wait_ns = wait_ns;
    out->wait_max_ns = wait_max_ns;
    pthread_mutex_unlock(&reg_lock);
}

/* ---- fork (init.c) ----------------------------------------------------------- */

void _rc_stw_fork_prepare(void) { pthread_mutex_lock(&reg_lock); }
void _rc_stw_fork_parent(void)  { pthread_mutex_unlock(&reg_lock); }

void _rc_stw_fork_child(void)
{
    pthread_mutex_init(&reg_lock, NULL);
    rc_stw_thread_t *me = &_rc_stw_self;
    reg_head.next = reg_head.prev = &reg_head;
    reg_count = 0;
    if (me->registered) {
        me->tid = (pid_t)syscall(SYS_gettid);
        me->next = me->prev = &reg_head;
        reg_head.next = reg_head.prev = me;
        reg_count = 1;
    }
    atomic_store(&_rc_stw_nthreads, (unsigned)reg_count);
    atomic_store(&epoch, 0);
}
