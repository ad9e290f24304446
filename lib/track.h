/*
 * track.h -- telling valgrind's memcheck which blocks are live.  Every macro
 * is a no-op unless configure found <valgrind/memcheck.h>, and costs a few
 * instructions when the program is not running under valgrind.  Only the
 * checked (slow) paths use them: see _rc_checked in internal.h.
 */
#ifndef RC_TRACK_H
#define RC_TRACK_H
#include "config.h"

#ifdef HAVE_VALGRIND_MEMCHECK_H
#  include <valgrind/memcheck.h>
#  define rc_track_running()          (RUNNING_ON_VALGRIND != 0)
#  define rc_track_malloc(p, n, zero) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, (zero))
#  define rc_track_free(p)            VALGRIND_FREELIKE_BLOCK((p), 0)
#  define rc_track_noaccess(p, n)     VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#  define rc_track_undefined(p, n)    VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
   /* the first byte of [p, p+n) the program may not touch, or 0 (an error
      report of its own: call it quiet) */
#  define rc_track_first_noaccess(p, n) ((uintptr_t)VALGRIND_CHECK_MEM_IS_ADDRESSABLE((p), (n)))
   /* the allocator's own reads and writes of free blocks are not errors */
#  define rc_track_quiet()            VALGRIND_DISABLE_ERROR_REPORTING
#  define rc_track_loud()             VALGRIND_ENABLE_ERROR_REPORTING
#else
#  define rc_track_running()          0
#  define rc_track_malloc(p, n, zero) ((void)0)
#  define rc_track_free(p)            ((void)0)
#  define rc_track_noaccess(p, n)     ((void)0)
#  define rc_track_undefined(p, n)    ((void)0)
#  define rc_track_first_noaccess(p, n) ((uintptr_t)0)
#  define rc_track_quiet()            ((void)0)
#  define rc_track_loud()             ((void)0)
#endif

#endif
