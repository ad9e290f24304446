/*
 * xmalloc.c -- threads that only allocate and threads that only free, in
 * the manner of xmalloc-test: -t T threads (default 4), half of them
 * (rounded down, at least one) allocators, the rest freers.
 *
 * An allocator mallocs blocks of 16 B .. 1 KiB (half of them 16..128 B,
 * the rest uniform up to 1 KiB), writes a tag into each, collects them in
 * a batch of BATCH pointers (itself a malloc'd block) and puts the batch on
 * one of the shared queues, round robin.  There is one queue per freer; a
 * freer takes batches from its own queue and, when that is empty, from the
 * others, checks every block's tags and frees it.  So no block is freed by
 * the thread that allocated it, and a freer frees blocks from every
 * allocator.  The queues are mutex-protected arrays of QCAP batches; an
 * allocator that finds a queue full tries the next one, then waits, which
 * bounds the data in flight.  The total number of blocks is fixed
 * (split over the allocators), so the time is comparable across -t.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "common.h"

#define BATCH 64
#define QCAP 128
#define MAX_THREADS 64

typedef struct queue {
    pthread_mutex_t lock;
    size_t head, count;         /* a circular buffer of batches */
    void **slot[QCAP];
} queue;

static queue *queues;
static int nalloc, nfree;
static uint64_t batches_per_allocator;
static atomic_int allocators_done;
static atomic_ulong bad;
static atomic_ulong freed_blocks;

static int q_put(queue *q, void **batch)
{
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count < QCAP) {
        q->slot[(q->head + q->count) % QCAP] = batch;
        q->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static void **q_take(queue *q)
{
    void **b = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->count) {
        b = q->slot[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
    }
    pthread_mutex_unlock(&q->lock);
    return b;
}

static void backoff(unsigned *spins)
{
    if (++*spins < 16) {
        __asm__ volatile("pause" ::: "memory");
    } else if (*spins < 64) {
        sched_yield();
    } else {
        struct timespec ts = { 0, 20000 };
        nanosleep(&ts, NULL);
    }
}

static void *allocator(void *arg)
{
    int id = (int)(uintptr_t)arg;
    bench_rng r;
    int next = id % nfree;
    bench_rng_seed(&r, (uint64_t)id * 7 + 1);
    for (uint64_t b = 0; b < batches_per_allocator; b++) {
        void **batch = bench_xmalloc(BATCH * sizeof *batch);
        for (int k = 0; k < BATCH; k++) {
            size_t size = bench_rand(&r) & 1 ? bench_range(&r, 16, 128)
                                             : bench_range(&r, 16, 1024);
            unsigned char *p = bench_xmalloc(size);
            unsigned tag = (unsigned)(b * BATCH + (uint64_t)k) & 0xff;
            ((uint32_t *)p)[0] = (uint32_t)size;
            p[4] = (unsigned char)tag;
            p[size - 1] = (unsigned char)tag;
            batch[k] = p;
        }
        unsigned spins = 0;
        for (;;) {
            int i;
            for (i = 0; i < nfree; i++) {
                if (q_put(&queues[next], batch))
                    break;
                next = (next + 1) % nfree;
            }
            next = (next + 1) % nfree;
            if (i < nfree)
                break;
            backoff(&spins);
        }
    }
    atomic_fetch_add_explicit(&allocators_done, 1, memory_order_release);
    return NULL;
}

static void free_batch(void **batch)
{
    unsigned long n_bad = 0;
    for (int k = 0; k < BATCH; k++) {
        unsigned char *p = batch[k];
        size_t size = ((uint32_t *)p)[0];
        if (size < 16 || size > 1024 || p[size - 1] != p[4])
            n_bad++;
        free(p);
    }
    free(batch);
    if (n_bad)
        atomic_fetch_add_explicit(&bad, n_bad, memory_order_relaxed);
    atomic_fetch_add_explicit(&freed_blocks, BATCH, memory_order_relaxed);
}

static void *freer(void *arg)
{
    int id = (int)(uintptr_t)arg;
    unsigned spins = 0;
    for (;;) {
        void **batch = q_take(&queues[id]);
        for (int i = 1; !batch && i < nfree; i++)
            batch = q_take(&queues[(id + i) % nfree]);
        if (batch) {
            free_batch(batch);
            spins = 0;
            continue;
        }
        /* every queue was empty: finished if the allocators are (looked
           at after the queues were, so nothing can be left behind) */
        if (atomic_load_explicit(&allocators_done, memory_order_acquire) == nalloc) {
            int left = 0;
            for (int i = 0; i < nfree; i++) {
                pthread_mutex_lock(&queues[i].lock);
                left += queues[i].count != 0;
                pthread_mutex_unlock(&queues[i].lock);
            }
            if (!left)
                break;
            continue;
        }
        backoff(&spins);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 4);
    pthread_t th[MAX_THREADS];
    int t = o.threads > MAX_THREADS ? MAX_THREADS : o.threads;

    if (t < 2)
        t = 2;
    nalloc = t / 2;
    nfree = t - nalloc;
    batches_per_allocator = bench_iters(&o, 4e6) / BATCH / (uint64_t)nalloc + 1;
    queues = calloc((size_t)nfree, sizeof *queues);
    if (!queues)
        return 1;
    for (int i = 0; i < nfree; i++)
        pthread_mutex_init(&queues[i].lock, NULL);
    for (int i = 0; i < nfree; i++)
        if (pthread_create(&th[i], NULL, freer, (void *)(uintptr_t)i) != 0)
            return 1;
    for (int i = 0; i < nalloc; i++)
        if (pthread_create(&th[nfree + i], NULL, allocator, (void *)(uintptr_t)i) != 0)
            return 1;
    for (int i = 0; i < t; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < nfree; i++)
        pthread_mutex_destroy(&queues[i].lock);
    free(queues);
    unsigned long want = (unsigned long)(batches_per_allocator * BATCH * (uint64_t)nalloc);
    if (atomic_load(&bad) || atomic_load(&freed_blocks) != want) {
        fprintf(stderr, "xmalloc: %lu damaged blocks, %lu freed of %lu\n",
                atomic_load(&bad), atomic_load(&freed_blocks), want);
        return 1;
    }
    printf("ok xmalloc allocators=%d freers=%d blocks=%lu\n", nalloc, nfree, want);
    return 0;
}
