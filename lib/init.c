/*
 * init.c -- start-up (lazily, from the first allocation: that can come
 * before any constructor runs), fork handlers, and the exit-time report.
 * Main entry point: _rc_init_slow.
 */
#include "internal.h"
#include "prof.h"
#include "track.h"
#include "stw.h"

#include <sched.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

atomic_int _rc_init_state;
pthread_key_t _rc_heap_key;

/* ---- fork: every global lock, in one order ------------------------------ */

static void fork_prepare(void)
{
    _rc_gc_fork_prepare();         /* holds while allocating: first */
    _rc_stw_fork_prepare();        /* taken by collections, after it */
    _rc_weakref_fork_prepare();
    _rc_intern_fork_prepare();
    _rc_debug_lock();
    _rc_heap_lock();
    _rc_abandoned_lock();
    _rc_arena_lock();
    _rc_large_lock();
    _rc_prof_lock();
}

static void fork_parent(void)
{
    _rc_prof_unlock();
    _rc_large_unlock();
    _rc_arena_unlock();
    _rc_abandoned_unlock();
    _rc_heap_unlock();
    _rc_debug_unlock();
    _rc_intern_fork_parent();
    _rc_weakref_fork_parent();
    _rc_stw_fork_parent();
    _rc_gc_fork_parent();
}

static void fork_child(void)
{
    _rc_prof_fork_child();
    _rc_large_fork_child();
    _rc_arena_fork_child();
    _rc_abandoned_unlock();
    _rc_heap_fork_child();
    _rc_debug_fork_child();
    _rc_intern_fork_child();
    _rc_weakref_fork_child();
    _rc_stw_fork_child();
    _rc_gc_fork_child();
}

/* What pthread_atfork is (a static stub in libc_nonshared.a) calls: glibc's
   exported __register_atfork (LSB).  Called directly because the linker puts
   the stub at the far end of our text, and the page fault on it maps a
   window of code that nothing else at start-up uses (measured: 28 KiB of
   RSS in every process). */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void),
                             void (*child)(void), void *dso_handle);
extern void *__dso_handle;

/* The double-free key: 8 of the 16 random bytes the kernel gives every
   process (AT_RANDOM; no system call, no allocation), top bit set so that
   it is never a pointer. */
uintptr_t _rc_free_key = ~(uintptr_t)0x5a5a5a5a;

/* The free-list link key (internal.h): the other 8 bytes, top bit set (a
   decoded forgery is never a user address), low 4 bits clear. */
uintptr_t _rc_link_key = ~(uintptr_t)0xa5a5a5af;

static void free_key_init(void)
{
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    uintptr_t k = 0, l = 0;
    if (r != NULL) {
        memcpy(&l, r, sizeof l);
        memcpy(&k, r + 8, sizeof k);
    }
    _rc_free_key ^= k;
    _rc_free_key |= (uintptr_t)1 << 63;
    _rc_link_key = ((_rc_link_key ^ l) | (uintptr_t)1 << 63) & ~(uintptr_t)15;
}

void _rc_init_slow(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&_rc_init_state, &expected, 1)) {
        while (atomic_load_explicit(&_rc_init_state, memory_order_acquire) != 2)
            sched_yield();
        return;
    }
    /* Nothing here may allocate: there is no heap yet. */
    _rc_options_init();
    _rc_sizeclass_init();
    free_key_init();
    _rc_small_max = (size_t)_rc_opt.small_max;
    if (_rc_opt.debug)
        _rc_checked |= RC_CHECK_DEBUG;
    if (rc_track_running())
        _rc_checked |= RC_CHECK_VALGRIND;
    else if (_rc_opt.secure && !_rc_opt.debug)
        _rc_checked |= RC_CHECK_SECURE;   /* under memcheck, which sees more: not */
    _rc_map_value = _rc_checked ? RC_MAP_CHECKED : RC_MAP_FAST;
    _rc_fast_max = _rc_checked ? 0 : _rc_table_max();
    if (pthread_key_create(&_rc_heap_key, _rc_heap_thread_done) != 0)
        _rc_fatal("rcmalloc: pthread_key_create failed\n");
    atomic_store_explicit(&_rc_init_state, 2, memory_order_release);

    /* From here on allocating is fine. */
    __register_atfork(fork_prepare, fork_parent, fork_child, __dso_handle);
    if (_rc_opt.verbose)
        _rc_options_print();
}

/* The library's DT_FINI (see Makefile.am): the work is in the destructor
   below, run from .fini_array like every other. */
void _rc_fini(void);
void _rc_fini(void)
{
}

__attribute__((constructor)) static void rc_constructor(void)
{
    _rc_ensure_init();
    if (_rc_opt.prof)
        _rc_prof_start();          /* dlopens the unwinder: not from malloc */
}

__attribute__((destructor)) static void rc_destructor(void)
{
    if (_rc_opt.stats)
        _rc_stats_print_fd(STDERR_FILENO);
    if (_rc_prof_on)
        _rc_prof_exit();
}
