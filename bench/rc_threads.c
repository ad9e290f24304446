/*
 * rc_threads.c -- refcount traffic from several threads (-t N, default 4).
 *   -m shared    every thread increfs/decrefs objects from one shared
 *                array of 64 (contended cache lines), and now and then
 *                creates and drops a short-lived object of its own;
 *   -m private   the same, but each thread has its own 64 objects.
 * -m shared-atomic / private-atomic run the same loop on a plain struct
 * with a C11 atomic counter and malloc/free: the floor that any
 * thread-safe refcount pays.  The objects have no traverse function, so
 * the cycle collector never tracks them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "rcweak.h"

#define OBJS 64

typedef struct plain { _Atomic size_t refs; long payload[2]; } plain;

static const rc_type leaf_type = { "leaf", NULL, NULL, NULL };
static int use_rc, shared;
static uint64_t steps;
static void *shared_objs[OBJS];

static void *p_new(void)
{
    if (use_rc)
        return rc_new(&leaf_type, 2 * sizeof(long));
    plain *p = bench_xmalloc(sizeof *p);
    atomic_init(&p->refs, 1);
    p->payload[0] = p->payload[1] = 0;
    return p;
}

static inline void p_incref(void *o)
{
    if (use_rc)
        rc_incref(o);
    else
        atomic_fetch_add_explicit(&((plain *)o)->refs, 1, memory_order_relaxed);
}

static inline void p_decref(void *o)
{
    if (use_rc)
        rc_decref(o);
    else if (atomic_fetch_sub_explicit(&((plain *)o)->refs, 1, memory_order_acq_rel) == 1)
        free(o);
}

static inline long p_payload(void *o)
{
    return use_rc ? ((long *)o)[0] : ((plain *)o)->payload[0];
}

typedef struct work { int id; unsigned long sum; char pad[56]; } work;

static void *run(void *arg)
{
    work *w = arg;
    void *own[OBJS], **objs = shared ? shared_objs : own;
    bench_rng rng;
    uint64_t i;
    int k;

    if (!shared)
        for (k = 0; k < OBJS; k++)
            own[k] = p_new();
    bench_rng_seed(&rng, (uint64_t)w->id + 17);
    for (i = 0; i < steps; i++) {
        void *a = objs[bench_rand(&rng) % OBJS];
        void *b = objs[(i * 7) % OBJS];
        p_incref(a);
        p_incref(b);
        w->sum += (unsigned long)p_payload(a) + (i & 1);
        p_decref(b);
        p_decref(a);
        if ((i & 15) == 0) {
            void *t = p_new();
            p_incref(t);
            p_decref(t);
            p_decref(t);
        }
    }
    if (!shared)
        for (k = 0; k < OBJS; k++)
            p_decref(own[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 4);
    const char *m = *o.mode ? o.mode : "shared";
    pthread_t *th = calloc((size_t)o.threads, sizeof *th);
    work *w = aligned_alloc(64, sizeof *w * (size_t)o.threads);
    unsigned long sum = 0;
    int i;

    if (!th || !w)
        return 1;
    shared = strncmp(m, "shared", 6) == 0;
    use_rc = strstr(m, "atomic") == NULL;
    if (use_rc) {
        BENCH_REQUIRE(rc_new);
        BENCH_REQUIRE(rc_incref);
        BENCH_REQUIRE(rc_decref);
    }
    steps = bench_iters(&o, 20e6) / (uint64_t)o.threads;
    for (i = 0; i < OBJS; i++)
        shared_objs[i] = p_new();
    memset(w, 0, sizeof *w * (size_t)o.threads);
    for (i = 0; i < o.threads; i++) {
        w[i].id = i;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (i = 0; i < o.threads; i++) {
        pthread_join(th[i], NULL);
        sum += w[i].sum;
    }
    for (i = 0; i < OBJS; i++)
        p_decref(shared_objs[i]);
    free(th);
    free(w);
    printf("ok rc_threads mode=%s threads=%d sum=%lu\n", m, o.threads, sum);
    return 0;
}
