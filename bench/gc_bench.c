/*
 * gc_bench.c -- measurements for the object-lifetime layer.  Prints one
 * "name seconds [extra]" line per measurement.
 *
 *   make bench/gc_bench (make bench builds it; linked with librcmalloc)
 *   ./gc_bench [objects]
 *
 * new_decref_16 / malloc_free_16: rc_new+rc_decref of a 16-byte
 * non-container vs rc_malloc+rc_free of 16 bytes (target: within 1.3x;
 * rc_new itself inlines the allocator's fast paths, rc_malloc is a call
 * like it); _with_clear: the type
 * has a clear function, so death goes through the full path.
 * pair_atomic / pair_biased: an incref+decref pair on the owning thread
 * with the atomic scheme used vs a biased (owner-tid + plain count) one
 * emulated here, the measurement behind the refcount decision.
 * full_collect: rc_gc_collect(-1) over N (default 1M) live tracked
 * objects, a linked list of two-field nodes; compare gc_bench.py.
 */
#include <rcmalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct node { void *a, *b; } node;

static int node_traverse(void *o, rc_visit_fn visit, void *arg)
{
    node *n = o;
    int r;
    if (n->a && (r = visit(n->a, arg)))
        return r;
    if (n->b && (r = visit(n->b, arg)))
        return r;
    return 0;
}
static void node_clear(void *o)
{
    node *n = o;
    RC_CLEAR(n->a);
    RC_CLEAR(n->b);
}
static const rc_type node_type = { "node", node_traverse, node_clear, NULL };
static const rc_type small_type = { "small", NULL, NULL, NULL };
static void noop_clear(void *o) { (void)o; }
static const rc_type small_clear_type = { "small+clear", NULL, noop_clear, NULL };

static volatile uintptr_t sink;

/* the biased scheme's owner-thread fast path, emulated */
typedef struct biased { uintptr_t owner; uint32_t local; _Atomic uint32_t shared; } biased;
static __thread int tls_id_anchor;
static inline uintptr_t my_tid(void) { return (uintptr_t)&tls_id_anchor; }
static __attribute__((noinline)) void b_incref(biased *b)
{
    if (b->owner == my_tid()) b->local++;
    else atomic_fetch_add(&b->shared, 1);
}
static __attribute__((noinline)) void b_decref(biased *b)
{
    if (b->owner == my_tid()) { if (--b->local == 0 && atomic_load(&b->shared) == 0) sink++; }
    else atomic_fetch_sub(&b->shared, 1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const long reps = 20000000;
    double t, best;

    for (int round = 0; round < 3; round++) {
        best = 1e9;
        for (int k = 0; k < 3; k++) {
            t = now();
            for (long i = 0; i < reps; i++) {
                void *p = rc_malloc(16);
                sink += (uintptr_t)p;
                rc_free(p);
            }
            t = now() - t;
            if (t < best) best = t;
        }
        printf("malloc_free_16 %.4f %.2f ns/op\n", best, best / reps * 1e9);
        best = 1e9;
        for (int k = 0; k < 3; k++) {
            t = now();
            for (long i = 0; i < reps; i++) {
                void *p = rc_new(&small_type, 16);
                sink += (uintptr_t)p;
                rc_decref(p);
            }
            t = now() - t;
            if (t < best) best = t;
        }
        printf("new_decref_16 %.4f %.2f ns/op\n", best, best / reps * 1e9);
        best = 1e9;
        for (int k = 0; k < 3; k++) {
            t = now();
            for (long i = 0; i < reps; i++) {
                void *p = rc_new(&small_clear_type, 16);
                sink += (uintptr_t)p;
                rc_decref(p);
            }
            t = now() - t;
            if (t < best) best = t;
        }
        printf("new_decref_16_with_clear %.4f %.2f ns/op\n", best, best / reps * 1e9);
    }

    void *o = rc_new(&small_type, 16);
    rc_incref(o);               /* count 2: the pair never hits zero */
    t = now();
    for (long i = 0; i < reps; i++) {
        rc_incref(o);
        rc_decref(o);
    }
    t = now() - t;
    printf("pair_atomic %.4f %.2f ns/pair\n", t, t / reps * 1e9);
    rc_decref(o);
    rc_decref(o);
    biased bo = { my_tid(), 2, 0 };
    t = now();
    for (long i = 0; i < reps; i++) {
        b_incref(&bo);
        b_decref(&bo);
    }
    t = now() - t;
    printf("pair_biased %.4f %.2f ns/pair\n", t, t / reps * 1e9);

    rc_gc_disable();
    node *head = NULL;
    for (long i = 0; i < n; i++) {
        node *x = rc_new(&node_type, sizeof(node));
        x->a = head;
        head = x;
    }
    rc_gc_collect(-1);
    best = 1e9;
    for (int k = 0; k < 5; k++) {
        t = now();
        size_t found = rc_gc_collect(-1);
        t = now() - t;
        if (found != 0) abort();
        if (t < best) best = t;
    }
    printf("full_collect %.4f objects=%ld\n", best, n);
    rc_decref(head);
    return 0;
}
