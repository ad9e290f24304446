/* stats.h -- the figures stats.c gathers (rc_stats_print, mallinfo2). */
#ifndef RC_STATS_H
#define RC_STATS_H
#include "internal.h"

typedef struct {
    size_t pools, blocks, capacity;
} rc_class_stats_t;

typedef struct {
    rc_class_stats_t cls[RC_NCLASSES];
    size_t empty_pools;
    size_t small_in_use, small_capacity;
    size_t arenas, arenas_unmapped, pools_used, pools_dirty, pools_peak;
    size_t heaps;
    size_t heaps_taken_over;    /* times a heap's pools were taken over (idle, malloc_trim) */
    size_t pools_reclaimed;     /* emptied pools taken from other heaps' queues */
    size_t large_allocated, large_active, large_mapped, large_resident;
    size_t spans, span_bytes;     /* span.c blocks in use, their usable bytes */
    bool   large_started;         /* jemalloc set up yet */
} rc_stats_t;

void _rc_stats_gather(rc_stats_t *s);
#endif
