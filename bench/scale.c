/*
 * scale.c -- thread scaling: a fixed total amount of work (random
 * replacement of 16..256-byte blocks in a 2,000-slot working set per
 * thread, all frees local) split across -t N threads.  On a machine with
 * C cores the ideal time falls as 1/N up to N = C and stays flat after;
 * an allocator with a shared lock gets slower instead.
 */
#include <pthread.h>
#include "common.h"

#define SLOTS 2000

typedef struct work {
    uint64_t steps;
    int id;
    unsigned long sum;
    char pad[64];
} work;

static void *run(void *arg)
{
    work *w = arg;
    void *slot[SLOTS];
    bench_rng rng;
    uint64_t i;
    int k;

    bench_rng_seed(&rng, (uint64_t)w->id + 3);
    for (k = 0; k < SLOTS; k++)
        slot[k] = bench_xmalloc(bench_range(&rng, 16, 256));
    for (i = 0; i < w->steps; i++) {
        size_t j = (size_t)(bench_rand(&rng) % SLOTS);
        size_t sz = bench_range(&rng, 16, 256);
        unsigned char *p;
        free(slot[j]);
        p = bench_xmalloc(sz);
        p[0] = (unsigned char)i;
        w->sum += p[0];
        slot[j] = p;
    }
    for (k = 0; k < SLOTS; k++)
        free(slot[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    int t = o.threads, i;
    uint64_t total = bench_iters(&o, 30e6);
    work *w = aligned_alloc(64, sizeof *w * (size_t)t);
    pthread_t *th = calloc((size_t)t, sizeof *th);
    unsigned long sum = 0;

    if (!w || !th)
        return 1;
    memset(w, 0, sizeof *w * (size_t)t);
    for (i = 0; i < t; i++) {
        w[i].steps = total / (uint64_t)t;
        w[i].id = i;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (i = 0; i < t; i++) {
        pthread_join(th[i], NULL);
        sum += w[i].sum;
    }
    free(w);
    free(th);
    printf("ok scale threads=%d steps=%llu sum=%lu\n", t, (unsigned long long)total, sum);
    return 0;
}
