/*
 * stats.c -- statistics, in the manner of CPython's sys._debugmallocstats():
 * per size class, then totals for arenas, pools and the jemalloc side.
 * Nothing is counted on the fast path: the figures are read from the pool
 * headers themselves (under the arena lock) and from jemalloc's mallctl.
 * Main entry points: rc_stats_print (a FILE), _rc_stats_print_fd (at exit,
 * with write(2): stdio may allocate), _rc_stats_gather (mallinfo2).
 */
#include "internal.h"
#include "stats.h"

#include <string.h>
#include <unistd.h>

static void count_pool(const rc_pool_t *p, void *arg)
{
    rc_stats_t *s = arg;
    unsigned cls = __atomic_load_n(&p->cls, __ATOMIC_RELAXED);
    uint32_t used = __atomic_load_n(&p->used, __ATOMIC_RELAXED);
    if (cls == RC_SPAN_CLASS && used) {
        s->spans++;
        s->span_bytes += __atomic_load_n(&p->block_size, __ATOMIC_RELAXED);
        return;
    }
    if (used == 0 || cls >= RC_NCLASSES) {
        s->empty_pools++;
        return;
    }
    rc_class_stats_t *c = &s->cls[cls];
    c->pools++;
    c->blocks += used;
    c->capacity += (RC_POOL_SIZE - RC_POOL_HEADER) / _rc_class_size[cls];
}

void _rc_stats_gather(rc_stats_t *s)
{
    memset(s, 0, sizeof *s);
    _rc_ensure_init();
    _rc_arena_walk(count_pool, s);
    _rc_arena_counts(&s->arenas, &s->arenas_unmapped, &s->pools_used,
                     &s->pools_dirty, &s->pools_peak);
    for (unsigned c = 0; c < RC_NCLASSES; c++) {
        s->small_in_use += s->cls[c].blocks * _rc_class_size[c];
        s->small_capacity += s->cls[c].capacity * _rc_class_size[c];
    }
    s->heaps = _rc_heap_count();
    s->heaps_taken_over = _rc_heap_taken_over();
    s->pools_reclaimed = _rc_heap_reclaimed();
    _rc_large_stats(&s->large_allocated, &s->large_active, &s->large_mapped,
                    &s->large_resident, &s->large_started);
    if (_rc_checked & (RC_CHECK_DEBUG | RC_CHECK_SECURE))
        _rc_debug_stats(&s->large_allocated, &s->large_active);
}

/* One formatter for both outputs; `emit` writes a finished line. */
static void print_stats(const rc_stats_t *s, void (*emit)(void *, const char *), void *ctx)
{
    char line[256];
    _rc_format(line, sizeof line, "rcmalloc %s statistics (small blocks <= %zu bytes)\n",
               PACKAGE_VERSION, _rc_small_max);
    emit(ctx, line);
    emit(ctx, "class  block size  pools  blocks in use  bytes in use  blocks free\n");
    for (unsigned c = 0; c < RC_NCLASSES; c++) {
        const rc_class_stats_t *k = &s->cls[c];
        if (k->pools == 0)
            continue;
        char a[6][24];
        _rc_format(a[0], 24, "%u", c);
        _rc_format(a[1], 24, "%u", _rc_class_size[c]);
        _rc_format(a[2], 24, "%zu", k->pools);
        _rc_format(a[3], 24, "%zu", k->blocks);
        _rc_format(a[4], 24, "%zu", k->blocks * _rc_class_size[c]);
        _rc_format(a[5], 24, "%zu", k->capacity - k->blocks);
        /* right-align the columns by hand: the formatter has no widths */
        static const int w[6] = { 5, 12, 7, 15, 14, 13 };
        char *o = line;
        for (int i = 0; i < 6; i++) {
            int pad = w[i] - (int)strlen(a[i]);
            while (pad-- > 0)
                *o++ = ' ';
            o += _rc_format(o, 24, "%s", a[i]);
        }
        *o++ = '\n';
        *o = '\0';
        emit(ctx, line);
    }
    _rc_format(line, sizeof line, "small: %zu bytes in use in %zu bytes of blocks; %zu pools in use (peak %zu), %zu empty\n",
               s->small_in_use, s->small_capacity, s->pools_used, s->pools_peak, s->empty_pools);
    emit(ctx, line);
    _rc_format(line, sizeof line, "spans (blocks of %zu .. %zu bytes): %zu in use, %zu bytes\n",
               _rc_small_max + 1, (size_t)RC_SPAN_MAX, s->spans, s->span_bytes);
    emit(ctx, line);
    _rc_format(line, sizeof line, "arenas: %zu mapped (%zu KiB), %zu unmapped so far; %zu free pools resident (%zu KiB)\n",
               s->arenas, s->arenas * (RC_ARENA_SIZE >> 10), s->arenas_unmapped,
               s->pools_dirty, s->pools_dirty * (RC_POOL_SIZE >> 10));
    emit(ctx, line);
    _rc_format(line, sizeof line, "large (jemalloc%s): %zu bytes allocated, %zu active, %zu mapped, %zu resident\n",
               s->large_started ? "" : ", not started", s->large_allocated, s->large_active, s->large_mapped, s->large_resident);
    emit(ctx, line);
    _rc_format(line, sizeof line, "threads with a heap: %zu (their pools taken over %zu times; "
               "%zu pools others emptied taken from their queues)\n",
               s->heaps, s->heaps_taken_over, s->pools_reclaimed);
    emit(ctx, line);
}

/* The object layer's census (census.c), when it is linked in: a weak
   reference keeps the allocator core ignorant of rc types. */
extern void _rc_census_print(void (*emit)(void *, const char *), void *ctx)
    __attribute__((weak));

static void print_census(void (*emit)(void *, const char *), void *ctx)
{
    if (_rc_census_print != NULL)
        _rc_census_print(emit, ctx);
}

static void emit_file(void *ctx, const char *line)
{
    fputs(line, (FILE *)ctx);
}

static void emit_fd(void *ctx, const char *line)
{
    _rc_write_fd(*(int *)ctx, line);
}

RC_API void rc_stats_print(FILE *out)
{
    rc_stats_t s;
    _rc_stats_gather(&s);
    print_stats(&s, emit_file, out ? out : stderr);
    print_census(emit_file, out ? out : stderr);
    fflush(out ? out : stderr);
}

void _rc_stats_print_fd(int fd)
{
    rc_stats_t s;
    _rc_stats_gather(&s);
    print_stats(&s, emit_fd, &fd);
    print_census(emit_fd, &fd);
}
