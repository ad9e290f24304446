/*
 * spanx.c -- big blocks (8 KiB .. 1 MiB) allocated in one thread and freed
 * in another: a producer mallocs a block (the doubling range picked
 * uniformly, 8..16 KiB up to 512 KiB..1 MiB, then a size uniform in it),
 * writes its size and a tag into the first bytes and the tag into the
 * last byte (so only those pages are touched), and passes it through a
 * ring to a consumer, which checks both ends and frees it.  At most
 * IN_FLIGHT blocks are on their way at once.  This is the pattern of I/O
 * buffers handed to a writer thread; an allocator that serves these sizes
 * from per-thread caches has to get remotely freed runs back to their
 * owner, or keep mapping new ones.  -t T runs T/2 producer/consumer pairs
 * (default 2 threads: one pair).
 */
#include <pthread.h>
#include <stdatomic.h>
#include "common.h"
#include "ring.h"

#define IN_FLIGHT 32
#define MIN_SIZE ((size_t)8 << 10)
#define MAX_SIZE ((size_t)1 << 20)

typedef struct pair {
    ring r;
    atomic_long in_flight;
    char pad[64 - sizeof(long)];
    int id;
    unsigned long bad;
} pair;

static uint64_t per_pair;

static void *producer(void *arg)
{
    pair *pr = arg;
    bench_rng rng;
    unsigned spins;
    bench_rng_seed(&rng, (uint64_t)pr->id * 31 + 5);
    for (uint64_t i = 0; i < per_pair; i++) {
        int e = (int)(bench_rand(&rng) % 7);
        size_t hi = MIN_SIZE << (e + 1);
        size_t size = bench_range(&rng, MIN_SIZE << e, hi > MAX_SIZE ? MAX_SIZE : hi);
        unsigned char *p = bench_xmalloc(size);
        uint64_t head = (uint64_t)size << 8 | (i & 0xff);
        memcpy(p, &head, sizeof head);
        p[size - 1] = (unsigned char)i;
        spins = 0;
        while (atomic_load_explicit(&pr->in_flight, memory_order_relaxed) >= IN_FLIGHT)
            ring_wait(&spins);
        atomic_fetch_add_explicit(&pr->in_flight, 1, memory_order_relaxed);
        spins = 0;
        while (!ring_push(&pr->r, p))
            ring_wait(&spins);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    pair *pr = arg;
    unsigned spins;
    for (uint64_t i = 0; i < per_pair; i++) {
        unsigned char *p;
        uint64_t head;
        spins = 0;
        while (!(p = ring_pop(&pr->r)))
            ring_wait(&spins);
        memcpy(&head, p, sizeof head);
        size_t size = (size_t)(head >> 8);
        if (size < MIN_SIZE || size > MAX_SIZE || p[size - 1] != (unsigned char)head ||
            (unsigned char)head != (unsigned char)i)
            pr->bad++;
        free(p);
        atomic_fetch_sub_explicit(&pr->in_flight, 1, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 2);
    int pairs = o.threads / 2 > 0 ? o.threads / 2 : 1;
    pthread_t *th = bench_xmalloc(sizeof *th * (size_t)pairs * 2);
    size_t bytes = (sizeof(pair) * (size_t)pairs + 63) & ~(size_t)63;
    pair *pr = aligned_alloc(64, bytes);
    unsigned long bad = 0;

    if (!pr)
        return 1;
    memset(pr, 0, bytes);
    per_pair = bench_iters(&o, 3e5) / (uint64_t)pairs + 1;
    for (int i = 0; i < pairs; i++) {
        pr[i].id = i;
        if (pthread_create(&th[2 * i], NULL, producer, &pr[i]) != 0 ||
            pthread_create(&th[2 * i + 1], NULL, consumer, &pr[i]) != 0) {
            fprintf(stderr, "spanx: pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < pairs; i++)
        bad += pr[i].bad;
    free(pr);
    free(th);
    if (bad) {
        fprintf(stderr, "spanx: %lu blocks with a damaged size or tag\n", bad);
        return 1;
    }
    printf("ok spanx pairs=%d blocks=%llu\n", pairs,
           (unsigned long long)(per_pair * (uint64_t)pairs));
    return 0;
}
