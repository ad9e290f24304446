/*
 * rc_cycles.c -- cycle-collection throughput.  Builds rings of 1,000
 * container objects (next + one random chord within the ring), ~1M objects
 * in all, with automatic collection disabled, then times one full
 * rc_gc_collect(-1):
 *   -m garbage  every ring is unreachable (the collector must find and free
 *               all of them);
 *   -m live     every ring is still referenced from a C array (the
 *               collector must scan them all and find nothing).
 * py_cycles.py builds the same shape with CPython objects for comparison.
 */
#include "rcweak.h"

#define RING 1000

typedef struct node_t { struct node_t *next, *other; } node_t;

static int node_traverse(void *obj, rc_visit_fn visit, void *arg)
{
    node_t *n = obj;
    int r;
    if (n->next && (r = visit(n->next, arg)))
        return r;
    if (n->other && (r = visit(n->other, arg)))
        return r;
    return 0;
}

static void node_clear(void *obj)
{
    node_t *n = obj;
    RC_CLEAR(n->next);
    RC_CLEAR(n->other);
}

static const rc_type node_type = { "ring-node", node_traverse, node_clear, NULL };

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    int live = strcmp(o.mode, "live") == 0;
    size_t rings = (size_t)bench_iters(&o, 1000), r, i;
    size_t objects = rings * RING, found, expect;
    node_t **root = bench_xmalloc(rings * sizeof *root);
    node_t **tmp = bench_xmalloc(RING * sizeof *tmp);
    double t0, t1, t2;
    bench_rng rng;

    BENCH_REQUIRE(rc_new);
    BENCH_REQUIRE(rc_incref);
    BENCH_REQUIRE(rc_decref);
    BENCH_REQUIRE(rc_gc_collect);
    BENCH_REQUIRE(rc_gc_disable);
    bench_rng_seed(&rng, 5);
    rc_gc_collect(-1);
    rc_gc_disable();

    t0 = bench_now();
    for (r = 0; r < rings; r++) {
        for (i = 0; i < RING; i++) {
            tmp[i] = rc_new(&node_type, sizeof(node_t));
            if (!tmp[i])
                return 1;
        }
        for (i = 0; i < RING; i++) {
            tmp[i]->next = rc_incref(tmp[(i + 1) % RING]);
            tmp[i]->other = rc_incref(tmp[bench_rand(&rng) % RING]);
        }
        root[r] = tmp[0];               /* keeps the creation reference */
        for (i = 1; i < RING; i++)
            rc_decref(tmp[i]);
        if (!live) {
            rc_decref(root[r]);
            root[r] = NULL;
        }
    }
    t1 = bench_now();
    found = rc_gc_collect(-1);
    t2 = bench_now();

    expect = live ? 0 : objects;
    bench_metric("objects", (double)objects);
    bench_metric("found", (double)found);
    bench_metric("build_ms", (t1 - t0) * 1e3);
    bench_metric("collect_ms", (t2 - t1) * 1e3);
    bench_metric("ns_per_object", (t2 - t1) * 1e9 / (double)objects);
    if (live) {
        for (r = 0; r < rings; r++)
            rc_decref(root[r]);
        rc_gc_collect(-1);
    }
    free(root);
    free(tmp);
    if (found != expect) {
        fprintf(stderr, "rc_cycles: collector found %zu unreachable objects, expected %zu\n",
                found, expect);
        return 1;
    }
    printf("ok rc_cycles mode=%s objects=%zu\n", live ? "live" : "garbage", objects);
    return 0;
}
