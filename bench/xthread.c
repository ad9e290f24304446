/*
 * xthread.c -- a working set per thread, with part of every thread's
 * garbage freed by another thread (the pattern of rpmalloc's benchmark and
 * of servers that hand requests between worker threads).
 *
 * -t T threads (default 2) each keep a working set of SLOTS blocks of
 * 16 B .. 16 KiB (the size class is picked with probability halving per
 * doubling, so most blocks are small and a few are big).  A step replaces
 * a random slot with a fresh block; the old block is freed by this thread
 * (three times in four) or put in a parcel for another thread, picked at
 * random.  A full parcel (PARCEL blocks) is pushed onto the receiver's
 * inbox, a lock-free stack that its owner empties at once with one
 * exchange; every thread empties its inbox after every BURST steps and
 * frees what it finds.  So every thread allocates, frees its own blocks
 * and frees other threads' blocks all the time.  A sender whose receiver
 * has more than INBOX_MAX parcels waiting empties its own inbox and waits,
 * which bounds the live data whatever the scheduler does.
 *
 * Every block carries its size and a tag in its first word and the tag in
 * its last byte, checked by whichever thread frees it.  Time and peak RSS
 * both matter: an allocator that keeps remotely freed blocks away from
 * their owner, or caches them per thread without bound, shows in the RSS.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include "common.h"

#define SLOTS 8192          /* working set per thread */
#define BURST 64            /* steps between inbox checks */
#define PARCEL 62           /* blocks per parcel (parcel = 512 bytes) */
#define INBOX_MAX 64        /* parcels waiting before a sender waits */
#define MAX_THREADS 64

typedef struct parcel {
    struct parcel *next;
    size_t n;
    uint64_t *blk[PARCEL];
} parcel;

typedef struct inbox {
    _Atomic(parcel *) head;
    atomic_long waiting;    /* parcels pushed and not yet taken */
    char pad[64 - sizeof(void *) - sizeof(long)];
} inbox;

static inbox *inboxes;
static int nthreads;
static uint64_t steps_per_thread;
static atomic_int finished;     /* threads done sending */
static atomic_ulong bad;
static atomic_ulong remote_frees;

/* ---- blocks --------------------------------------------------------- */

static size_t pick_size(bench_rng *r)
{
    /* class e (16 << e .. 32 << e) with probability 2^-(e+1); 16 B .. 16 KiB */
    uint64_t x = bench_rand(r) >> 20;
    int e = 0;
    while (e < 9 && (x & 1)) {
        e++;
        x >>= 1;
    }
    size_t hi = (size_t)32 << e;
    return bench_range(r, (size_t)16 << e, hi > 16384 ? 16384 : hi);
}

static uint64_t *new_block(size_t size, unsigned tag)
{
    uint64_t *p = bench_xmalloc(size);
    p[0] = (uint64_t)size << 8 | (tag & 0xff);
    ((unsigned char *)p)[size - 1] = (unsigned char)tag;
    return p;
}

static void free_block(uint64_t *p)
{
    size_t size = (size_t)(p[0] >> 8);
    unsigned char tag = (unsigned char)p[0];
    if (size < 16 || size > 16384 || ((unsigned char *)p)[size - 1] != tag)
        atomic_fetch_add_explicit(&bad, 1, memory_order_relaxed);
    free(p);
}

/* ---- inboxes: many senders push, the owner takes everything --------- */

static void inbox_push(inbox *in, parcel *pc)
{
    parcel *h = atomic_load_explicit(&in->head, memory_order_relaxed);
    do
        pc->next = h;
    while (!atomic_compare_exchange_weak_explicit(&in->head, &h, pc, memory_order_release,
                                                  memory_order_relaxed));
    atomic_fetch_add_explicit(&in->waiting, 1, memory_order_relaxed);
}

/* free everything in the inbox; returns the number of parcels */
static long inbox_drain(inbox *in)
{
    parcel *pc = atomic_exchange_explicit(&in->head, NULL, memory_order_acquire);
    long n = 0;
    while (pc) {
        parcel *next = pc->next;
        for (size_t i = 0; i < pc->n; i++)
            free_block(pc->blk[i]);
        atomic_fetch_add_explicit(&remote_frees, pc->n, memory_order_relaxed);
        free(pc);
        pc = next;
        n++;
    }
    if (n)
        atomic_fetch_sub_explicit(&in->waiting, n, memory_order_relaxed);
    return n;
}

static void backoff(unsigned *spins)
{
    if (++*spins < 32) {
        __asm__ volatile("pause" ::: "memory");
    } else {
        sched_yield();
    }
}

/* ---- the workers ---------------------------------------------------- */

static void *worker(void *arg)
{
    int id = (int)(uintptr_t)arg;
    inbox *mine = &inboxes[id];
    uint64_t **ws = calloc(SLOTS, sizeof *ws);
    parcel **out = calloc((size_t)nthreads, sizeof *out);
    bench_rng r;
    unsigned spins;

    if (!ws || !out) {
        fprintf(stderr, "xthread: out of memory\n");
        exit(1);
    }
    bench_rng_seed(&r, (uint64_t)id * 104729 + 3);
    for (uint64_t step = 0; step < steps_per_thread; step++) {
        size_t j = (size_t)(bench_rand(&r) % SLOTS);
        uint64_t *old = ws[j];
        ws[j] = new_block(pick_size(&r), (unsigned)(step * 131 + (uint64_t)id));
        if (old) {
            int to = nthreads > 1 && bench_rand(&r) % 4 == 0
                         ? (int)((uint64_t)id + 1 + bench_rand(&r) % (uint64_t)(nthreads - 1))
                               % nthreads
                         : id;
            if (to == id) {
                free_block(old);
            } else {
                parcel *pc = out[to];
                if (!pc) {
                    pc = out[to] = bench_xmalloc(sizeof *pc);
                    pc->n = 0;
                }
                pc->blk[pc->n++] = old;
                if (pc->n == PARCEL) {
                    spins = 0;
                    while (atomic_load_explicit(&inboxes[to].waiting, memory_order_relaxed)
                           > INBOX_MAX)
                        if (!inbox_drain(mine))
                            backoff(&spins);
                    inbox_push(&inboxes[to], pc);
                    out[to] = NULL;
                }
            }
        }
        if (step % BURST == BURST - 1)
            inbox_drain(mine);
    }
    /* send what is left, then free what others send until all are done */
    for (int t = 0; t < nthreads; t++)
        if (out[t]) {
            if (out[t]->n)
                inbox_push(&inboxes[t], out[t]);
            else
                free(out[t]);
        }
    atomic_fetch_add_explicit(&finished, 1, memory_order_acq_rel);
    spins = 0;
    while (atomic_load_explicit(&finished, memory_order_acquire) < nthreads)
        if (!inbox_drain(mine))
            backoff(&spins);
    inbox_drain(mine);
    for (size_t j = 0; j < SLOTS; j++)
        if (ws[j])
            free_block(ws[j]);
    free(out);
    free(ws);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 2);
    pthread_t th[MAX_THREADS];

    nthreads = o.threads > MAX_THREADS ? MAX_THREADS : o.threads;
    steps_per_thread = bench_iters(&o, 1e7) / (uint64_t)nthreads + SLOTS;
    inboxes = aligned_alloc(64, sizeof *inboxes * (size_t)nthreads);
    if (!inboxes)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        atomic_init(&inboxes[i].head, NULL);
        atomic_init(&inboxes[i].waiting, 0);
    }
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "xthread: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    free(inboxes);
    if (atomic_load(&bad)) {
        fprintf(stderr, "xthread: %lu blocks with a damaged size or tag\n", atomic_load(&bad));
        return 1;
    }
    bench_metric("remote_frees", (double)atomic_load(&remote_frees));
    printf("ok xthread threads=%d steps=%llu remote_frees=%lu\n", nthreads,
           (unsigned long long)(steps_per_thread * (uint64_t)nthreads),
           atomic_load(&remote_frees));
    return 0;
}
