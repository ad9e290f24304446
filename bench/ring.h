/*
 * ring.h -- a single-producer single-consumer ring of pointers, used to
 * hand blocks between threads in prodcons.c and xfree.c.  Lock-free (C11
 * acquire/release); waiting sides spin briefly, then yield, then sleep,
 * so that the benchmark also behaves on machines with fewer cores than
 * threads.  Callers move blocks in batches (one ring slot carries a
 * malloc'd array of pointers): with one ring operation per block the
 * cache-line ping-pong of the ring's indices, not the allocator, set the
 * time, and it swung 10x with the scheduler's thread placement.
 */
#ifndef BENCH_RING_H
#define BENCH_RING_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define RING_SIZE 4096 /* power of two */

typedef struct ring {
    _Atomic size_t head;            /* next slot to write (producer) */
    char pad1[64 - sizeof(size_t)];
    _Atomic size_t tail;            /* next slot to read (consumer) */
    char pad2[64 - sizeof(size_t)];
    void *slot[RING_SIZE];
} ring;

static inline int ring_push(ring *r, void *p)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h - t == RING_SIZE)
        return 0;
    r->slot[h & (RING_SIZE - 1)] = p;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return 1;
}

static inline void *ring_pop(ring *r)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    void *p;
    if (h == t)
        return NULL;
    p = r->slot[t & (RING_SIZE - 1)];
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return p;
}

static inline void ring_wait(unsigned *spins)
{
    ++*spins;
    if (*spins < 64) {
        __asm__ volatile("pause" ::: "memory");
    } else if (*spins < 128) {
        sched_yield();
    } else {
        struct timespec ts = { 0, 20000 };   /* 20 us */
        nanosleep(&ts, NULL);
    }
}

#endif /* BENCH_RING_H */
