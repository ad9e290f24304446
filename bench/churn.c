/*
 * churn.c -- threads that come and go, passing blocks to each other.
 *
 * Generations of -t N threads (default 2) are created and joined, over and
 * over (-m GENERATIONS; default 1000 times the -s scale, at least 100, so
 * that `make bench QUICK=1` runs fewer generations of the same threads
 * rather than the same number of smaller ones).  Each thread allocates
 * blocks of 8 B .. 1 KiB (one in a hundred 100x larger, one in a thousand
 * 1000x: spans and large blocks too), keeps some to the end of its life,
 * frees most of the others at random, and swaps blocks with a shared
 * transfer array, so blocks outlive the thread that allocated them and are
 * freed by a thread of a later generation (or by the main thread, which
 * drains half the array between generations).  The live data stays
 * bounded (the transfer array plus each thread's working set), so peak RSS
 * that grows with the number of generations is memory a dead thread left
 * behind.  Every block carries a pattern checked when it is freed.
 *
 * metric rss_mid_kb: RSS after a tenth of the generations; rss_end_kb:
 * RSS after the last one (a leak shows as end >> mid).
 */
#include <pthread.h>
#include <stdatomic.h>
#include "common.h"

#define TRANSFERS 1000

static _Atomic(uintptr_t *) transfer[TRANSFERS];
static uint64_t steps_per_thread;
static atomic_ulong bad;

static uintptr_t *alloc_words(size_t words, bench_rng *r)
{
    uint64_t roll = bench_rand(r) % 1000;
    if (roll < 1)
        words *= 1000;          /* 8 KiB .. 1 MiB: spans, large */
    else if (roll < 10)
        words *= 100;
    uintptr_t *p = calloc(words, sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "churn: calloc(%zu) failed\n", words);
        exit(1);
    }
    for (size_t i = 0; i < words; i++)
        p[i] = words - i;
    return p;
}

static void free_words(uintptr_t *p)
{
    if (p == NULL)
        return;
    size_t words = p[0];
    if (words == 0 || p[words - 1] != 1)
        atomic_fetch_add(&bad, 1);
    free(p);
}

static void *stress(void *arg)
{
    uintptr_t tid = (uintptr_t)arg;
    bench_rng r;
    bench_rng_seed(&r, tid * 7919 + 17);
    uint64_t allocs = steps_per_thread * (tid % 4 + 1);   /* some threads do more */
    uint64_t retain = allocs / 2;
    size_t cap = (size_t)(allocs + retain + 1);
    uintptr_t **data = calloc(cap, sizeof *data);
    uintptr_t **kept = calloc(cap, sizeof *kept);
    size_t ndata = 0, nkept = 0;
    if (!data || !kept)
        exit(1);
    while (allocs > 0 || retain > 0) {
        if (retain == 0 || (allocs > 0 && bench_rand(&r) % 2 == 0)) {
            allocs--;
            data[ndata++] = alloc_words((size_t)1 << (bench_rand(&r) % 5), &r);
        } else {
            retain--;
            kept[nkept++] = alloc_words((size_t)1 << (bench_rand(&r) % 7), &r);
        }
        if (bench_rand(&r) % 3 != 0 && ndata > 0) {       /* 2/3: free one */
            size_t k = (size_t)(bench_rand(&r) % ndata);
            free_words(data[k]);
            data[k] = NULL;
        }
        if (bench_rand(&r) % 4 == 0 && ndata > 0) {       /* 1/4: swap one */
            size_t k = (size_t)(bench_rand(&r) % ndata);
            size_t t = (size_t)(bench_rand(&r) % TRANSFERS);
            data[k] = atomic_exchange(&transfer[t], data[k]);
        }
    }
    for (size_t i = 0; i < nkept; i++)
        free_words(kept[i]);
    for (size_t i = 0; i < ndata; i++)
        free_words(data[i]);
    free(kept);
    free(data);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 2);
    long gens = o.mode[0] ? atol(o.mode) : (long)bench_iters(&o, 1000);
    int t = o.threads;
    pthread_t *th = calloc((size_t)t, sizeof *th);
    bench_rng r;
    long rss_mid = 0;
    if (!o.mode[0] && gens < 100)
        gens = 100;
    if (!th || gens < 1)
        return 1;
    steps_per_thread = 500;
    bench_rng_seed(&r, 42);
    for (long g = 0; g < gens; g++) {
        for (int i = 0; i < t; i++)
            if (pthread_create(&th[i], NULL, stress, (void *)(uintptr_t)(g * t + i)) != 0)
                return 1;
        for (int i = 0; i < t; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < TRANSFERS; i++)
            if (g + 1 == gens || bench_rand(&r) % 2 == 0)
                free_words(atomic_exchange(&transfer[i], NULL));
        if (g + 1 == gens / 10)
            rss_mid = bench_rss_kb();
    }
    bench_metric("rss_mid_kb", (double)rss_mid);
    bench_metric("rss_end_kb", (double)bench_rss_kb());
    free(th);
    if (atomic_load(&bad)) {
        fprintf(stderr, "churn: %lu blocks with a damaged pattern\n", atomic_load(&bad));
        return 1;
    }
    printf("ok churn threads=%d generations=%ld\n", t, gens);
    return 0;
}
