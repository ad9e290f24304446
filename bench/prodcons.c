/*
 * prodcons.c -- producer/consumer: one thread allocates blocks of
 * 16..256 bytes, fills them and passes them, 32 at a time, through a
 * ring; another reads and frees them.  Every free is a remote free (the
 * block belongs to the producer's heap): the pattern of a work queue or
 * a logger thread.  -t N runs N/2 producer/consumer pairs (default 1).
 */
#include <pthread.h>
#include "common.h"
#include "ring.h"

#define BATCH 32

static uint64_t per_pair;   /* batches per pair */

typedef struct pair {
    ring r;
    unsigned long sum;
    int id;
} pair;

static void *producer(void *arg)
{
    pair *pr = arg;
    bench_rng rng;
    unsigned spins = 0;
    uint64_t i;
    int k;
    bench_rng_seed(&rng, (uint64_t)pr->id + 1);
    for (i = 0; i < per_pair; i++) {
        unsigned char **batch = bench_xmalloc(BATCH * sizeof *batch);
        for (k = 0; k < BATCH; k++) {
            size_t sz = bench_range(&rng, 16, 256);
            unsigned char *p = bench_xmalloc(sz);
            p[0] = (unsigned char)k;
            p[sz - 1] = (unsigned char)sz;
            batch[k] = p;
        }
        spins = 0;
        while (!ring_push(&pr->r, batch))
            ring_wait(&spins);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    pair *pr = arg;
    unsigned spins = 0;
    uint64_t i;
    int k;
    for (i = 0; i < per_pair; i++) {
        unsigned char **batch;
        spins = 0;
        while (!(batch = ring_pop(&pr->r)))
            ring_wait(&spins);
        for (k = 0; k < BATCH; k++) {
            pr->sum += batch[k][0];
            free(batch[k]);
        }
        free(batch);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 2);
    int pairs = o.threads / 2 > 0 ? o.threads / 2 : 1, i;
    pthread_t *th = bench_xmalloc(sizeof *th * (size_t)pairs * 2);
    pair *pr = aligned_alloc(64, sizeof *pr * (size_t)pairs);
    unsigned long sum = 0;

    if (!pr)
        return 1;
    memset(pr, 0, sizeof *pr * (size_t)pairs);
    per_pair = bench_iters(&o, 2.5e6) / BATCH / (uint64_t)pairs + 1;
    for (i = 0; i < pairs; i++) {
        pr[i].id = i;
        pthread_create(&th[2 * i], NULL, producer, &pr[i]);
        pthread_create(&th[2 * i + 1], NULL, consumer, &pr[i]);
    }
    for (i = 0; i < 2 * pairs; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < pairs; i++)
        sum += pr[i].sum;
    free(pr);
    free(th);
    printf("ok prodcons pairs=%d blocks=%llu sum=%lu\n", pairs,
           (unsigned long long)(per_pair * BATCH * (uint64_t)pairs), sum);
    return 0;
}
