/*
 * xfree.c -- two threads freeing each other's blocks: each allocates
 * batches of 64 blocks (16..512 bytes), sends each batch to the other
 * through a ring and frees the batches the other sent.  Both sides
 * allocate and both free remotely, all the time, so blocks flow both ways
 * between the two thread heaps.
 */
#include <pthread.h>
#include "common.h"
#include "ring.h"

#define BATCH 64

static uint64_t per_thread;  /* batches each thread sends */
static ring *rings;          /* rings[i] carries batches to thread i */

typedef struct side {
    int id;
    unsigned long sum;
} side;

static int drain(ring *in, side *s, uint64_t *freed)
{
    unsigned char **batch;
    int n = 0, k;
    while ((batch = ring_pop(in))) {
        for (k = 0; k < BATCH; k++) {
            s->sum += batch[k][0];
            free(batch[k]);
        }
        free(batch);
        (*freed)++;
        n++;
    }
    return n;
}

static void *worker(void *arg)
{
    side *s = arg;
    ring *in = &rings[s->id], *out = &rings[1 - s->id];
    uint64_t sent, freed = 0;
    unsigned spins = 0;
    bench_rng rng;
    int k;

    bench_rng_seed(&rng, (uint64_t)s->id + 11);
    for (sent = 0; sent < per_thread; sent++) {
        unsigned char **batch = bench_xmalloc(BATCH * sizeof *batch);
        for (k = 0; k < BATCH; k++) {
            size_t sz = bench_range(&rng, 16, 512);
            unsigned char *p = bench_xmalloc(sz);
            p[0] = (unsigned char)k;
            p[sz - 1] = 0;
            batch[k] = p;
        }
        spins = 0;
        while (!ring_push(out, batch)) {
            /* the other side is behind: free what it sent meanwhile */
            if (!drain(in, s, &freed))
                ring_wait(&spins);
        }
        drain(in, s, &freed);
    }
    spins = 0;
    while (freed < per_thread)
        if (!drain(in, s, &freed))
            ring_wait(&spins);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 2);
    pthread_t th[2];
    side s[2] = { { 0, 0 }, { 1, 0 } };
    int i;

    per_thread = bench_iters(&o, 1.5e6) / BATCH + 1;
    rings = aligned_alloc(64, sizeof *rings * 2);
    if (!rings)
        return 1;
    memset(rings, 0, sizeof *rings * 2);
    for (i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, &s[i]);
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    free(rings);
    printf("ok xfree blocks=%llu sum=%lu\n", (unsigned long long)(2 * per_thread * BATCH),
           s[0].sum + s[1].sum);
    return 0;
}
