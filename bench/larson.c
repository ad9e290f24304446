/*
 * larson.c -- larson-style server simulation (Larson & Krishnan, 1998):
 * each thread owns an array of 5,000 blocks (16..512 bytes) and replaces
 * random ones; after its quota the thread exits and a *new* thread
 * inherits the array, so most blocks are freed by a thread other than
 * the one that allocated them, and threads exit while still holding
 * blocks.  -t N threads per epoch (default 2).
 */
#include <pthread.h>
#include "common.h"

#define SLOTS 5000

typedef struct work {
    void **slot;
    uint64_t steps;
    uint64_t seed;
    unsigned long sum;
} work;

static void *run(void *arg)
{
    work *w = arg;
    bench_rng rng;
    uint64_t i;
    bench_rng_seed(&rng, w->seed);
    for (i = 0; i < w->steps; i++) {
        size_t k = (size_t)(bench_rand(&rng) % SLOTS);
        size_t sz = bench_range(&rng, 16, 512);
        unsigned char *p;
        if (w->slot[k]) {
            w->sum += ((unsigned char *)w->slot[k])[0];
            free(w->slot[k]);
        }
        p = bench_xmalloc(sz);
        p[0] = (unsigned char)i;
        p[sz - 1] = 0;
        w->slot[k] = p;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 2);
    int t = o.threads, i;
    uint64_t total = bench_iters(&o, 20e6);
    uint64_t epochs = 40, e, steps = total / epochs / (uint64_t)t + 1;
    work *w = calloc((size_t)t, sizeof *w);
    pthread_t *th = calloc((size_t)t, sizeof *th);
    unsigned long sum = 0;

    if (!w || !th)
        return 1;
    for (i = 0; i < t; i++) {
        w[i].slot = calloc(SLOTS, sizeof(void *));
        if (!w[i].slot)
            return 1;
    }
    for (e = 0; e < epochs; e++) {
        /* rotate the arrays so each new thread inherits another's blocks */
        void **first = w[0].slot;
        for (i = 0; i < t - 1; i++)
            w[i].slot = w[i + 1].slot;
        w[t - 1].slot = first;
        for (i = 0; i < t; i++) {
            w[i].steps = steps;
            w[i].seed = e * 1000 + (uint64_t)i + 1;
            pthread_create(&th[i], NULL, run, &w[i]);
        }
        for (i = 0; i < t; i++)
            pthread_join(th[i], NULL);
    }
    for (i = 0; i < t; i++) {
        int k;
        for (k = 0; k < SLOTS; k++)
            free(w[i].slot[k]);
        free(w[i].slot);
        sum += w[i].sum;
    }
    free(w);
    free(th);
    printf("ok larson threads=%d epochs=%llu sum=%lu\n", t, (unsigned long long)epochs, sum);
    return 0;
}
