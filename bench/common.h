/*
 * common.h -- shared helpers for the rcmalloc benchmark workloads.
 *
 * Every workload is a small stand-alone program using the plain malloc API
 * (allocators are swapped by LD_PRELOAD from bench/run.py).  Conventions:
 *   -s SCALE   multiply the iteration counts (run.py passes a small value
 *              for `make bench QUICK=1`); also read from $BENCH_SCALE
 *   -t N       thread count, for the threaded workloads
 * A workload prints "metric key=value" lines that run.py records next to
 * wall time and peak RSS, and exits 0 on success, 77 when it cannot run
 * here (reported as "skipped"), anything else on failure.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_SKIP 77

/* ---- command line ------------------------------------------------------- */

typedef struct bench_opts {
    double scale;     /* iteration multiplier (-s) */
    int threads;      /* -t */
    const char *mode; /* -m, workload specific */
} bench_opts;

static inline bench_opts bench_parse(int argc, char **argv, int default_threads)
{
    bench_opts o = { 1.0, default_threads, "" };
    const char *env = getenv("BENCH_SCALE");
    int c;
    if (env && *env)
        o.scale = atof(env);
    while ((c = getopt(argc, argv, "s:t:m:")) != -1) {
        switch (c) {
        case 's': o.scale = atof(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 'm': o.mode = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-s scale] [-t threads] [-m mode]\n", argv[0]);
            exit(2);
        }
    }
    if (!(o.scale > 0))
        o.scale = 1.0;
    if (o.threads < 1)
        o.threads = 1;
    return o;
}

/* base iterations scaled, never below 1 */
static inline uint64_t bench_iters(const bench_opts *o, double base)
{
    double n = base * o->scale;
    return n < 1 ? 1 : (uint64_t)n;
}

/* ---- randomness (xorshift64*: cheap and allocation-free) -------------- */

typedef struct { uint64_t s; } bench_rng;

static inline void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (!r->s)
        r->s = 1;
}

static inline uint64_t bench_rand(bench_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* uniform in [lo, hi] */
static inline size_t bench_range(bench_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)((bench_rand(r) >> 11) % (hi - lo + 1));
}

/* ---- keeping the compiler honest ---------------------------------------- */

/* The compiler may delete a malloc/free pair whose block is never used:
   make the pointer escape. */
static inline void bench_escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static inline void *bench_xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench: malloc(%zu) failed\n", n);
        exit(1);
    }
    return p;
}

/* ---- measurement --------------------------------------------------------- */

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* current resident set size in KiB, from /proc/self/statm */
static inline long bench_rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline void bench_metric(const char *key, double value)
{
    printf("metric %s=%.6g\n", key, value);
}

#endif /* BENCH_COMMON_H */
