/*
 * rcweak.h -- build the lifetime-layer workloads against include/rcmalloc.h
 * even while the library does not (yet) define every rc_ function: the
 * lifetime symbols are referenced weakly, and a workload whose symbols are
 * missing at run time exits with BENCH_SKIP (77), which run.py reports as
 * "skipped" instead of failing the whole `make bench`.
 */
#ifndef BENCH_RCWEAK_H
#define BENCH_RCWEAK_H

#include "rcmalloc.h"
#include "common.h"

#pragma weak rc_new
#pragma weak rc_incref
#pragma weak rc_decref
#pragma weak rc_gc_collect
#pragma weak rc_gc_enable
#pragma weak rc_gc_disable
#pragma weak rc_gc_get_stats

/* A strong reference to a function the library always exports, so that a
   linker running with --as-needed (the default on several distributions)
   still records librcmalloc as needed: with weak references only, it drops
   the library and every lifetime symbol resolves to NULL at run time. */
__attribute__((used)) static void *(*const bench_rc_anchor)(size_t) = rc_malloc;

#define BENCH_REQUIRE(sym) do {                                              \
        if ((void *)(sym) == NULL) {                                         \
            printf("skipped: %s is not defined by librcmalloc yet\n", #sym); \
            return BENCH_SKIP;                                               \
        }                                                                    \
    } while (0)

#endif /* BENCH_RCWEAK_H */
