/*
 * rc_graphs.c -- container graphs built, mutated and dropped by several
 * threads (-t N, default 1), with the cycle collector on (automatic
 * collections, default thresholds).  Every thread does the same work,
 * so N threads do N times the work of one: on a machine with N cores the
 * ideal is the time of one.
 *
 * Each thread keeps 256 live nodes of 4 fields in a ring of roots; each
 * step replaces one field (a new node, a node it holds, or NULL), and
 * every 8th step builds a small cycle of 3 nodes that it drops (garbage
 * for the collector); every 64th step replaces a root, dropping what only
 * it held.  1/16 of the steps go through one of 16 shared containers,
 * under a mutex of the program's (-m private: none).
 */
#include <pthread.h>
#include "rcweak.h"

#define NF 4
#define ROOTS 256
#define SHARED 16

typedef struct gnode {
    void *f[NF];
    long v;
} gnode;

static int gnode_traverse(void *o, rc_visit_fn visit, void *arg)
{
    gnode *n = o;
    for (int i = 0; i < NF; i++) {
        int r;
        if (n->f[i] != NULL && (r = visit(n->f[i], arg)) != 0)
            return r;
    }
    return 0;
}

static void gnode_clear(void *o)
{
    gnode *n = o;
    for (int i = 0; i < NF; i++)
        RC_CLEAR(n->f[i]);
}

static const rc_type gnode_type = { "gnode", gnode_traverse, gnode_clear, NULL };

static gnode *shared_nodes[SHARED];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static int use_shared = 1;
static uint64_t steps;

static gnode *node(long v)
{
    gnode *n = rc_new(&gnode_type, sizeof *n);
    if (n == NULL)
        exit(1);
    n->v = v;
    return n;
}

typedef struct work { int id; long sum; char pad[56]; } work;

static void *run(void *arg)
{
    work *w = arg;
    gnode *root[ROOTS];
    bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)w->id * 7919 + 1);
    for (int k = 0; k < ROOTS; k++)
        root[k] = node(k);
    for (uint64_t i = 0; i < steps; i++) {
        uint64_t r = bench_rand(&rng);
        gnode *a = root[r % ROOTS];
        int f = (int)((r >> 16) % NF);
        switch ((r >> 20) & 3) {
        case 0:
        case 1:
            RC_SETREF(a->f[f], node((long)i));
            break;
        case 2:
            RC_SETREF(a->f[f], rc_incref(root[(r >> 24) % ROOTS]));
            break;
        default:
            RC_CLEAR(a->f[f]);
            break;
        }
        if ((i & 7) == 0) {     /* a garbage cycle of three */
            gnode *x = node(1), *y = node(2), *z = node(3);
            x->f[0] = y;
            y->f[0] = z;
            z->f[0] = rc_incref(x);
            z->f[1] = rc_incref(a);
            rc_decref(x);
        }
        if ((i & 63) == 0) {
            int k = (int)((r >> 32) % ROOTS);
            RC_SETREF(root[k], node((long)i));
        }
        if (use_shared && (i & 15) == 0) {
            pthread_mutex_lock(&shared_lock);
            gnode *s = shared_nodes[(r >> 40) % SHARED];
            RC_SETREF(s->f[f], rc_incref(a));
            gnode *c = s->f[(f + 1) % NF];
            if (c != NULL)
                w->sum += c->v;
            pthread_mutex_unlock(&shared_lock);
        }
        w->sum += a->v;
    }
    for (int k = 0; k < ROOTS; k++)
        rc_decref(root[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    const char *m = *o.mode ? o.mode : "shared";
    pthread_t th[64];
    work *w = aligned_alloc(64, sizeof *w * 64);
    long sum = 0;
    int n = o.threads < 1 ? 1 : o.threads > 64 ? 64 : o.threads;

    BENCH_REQUIRE(rc_new);
    BENCH_REQUIRE(rc_gc_collect);
    if (w == NULL)
        return 1;
    use_shared = strcmp(m, "private") != 0;
    steps = bench_iters(&o, 2e6);       /* per thread */
    for (int i = 0; i < SHARED; i++)
        shared_nodes[i] = node(-i);
    memset(w, 0, sizeof *w * 64);
    for (int i = 0; i < n; i++) {
        w[i].id = i;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        sum += w[i].sum;
    }
    for (int i = 0; i < SHARED; i++)
        rc_decref(shared_nodes[i]);
    size_t left = rc_gc_collect(-1);
    rc_gc_stats st;
    rc_gc_get_stats(0, &st);
    bench_metric("gen0_collections", (double)st.collections);
    free(w);
    printf("ok rc_graphs mode=%s threads=%d sum=%ld garbage_at_end=%zu\n", m, n, sum, left);
    return 0;
}
