/*
 * fuzz_objects.c -- libFuzzer harness for the object layer (rc_new and the
 * cycle collector, weak references, interning), checked against a model of
 * reachability.
 *
 * The input is a program over a graph: container objects with three
 * reference fields (some types with a finalizer that resurrects the object,
 * runs a nested collection or allocates), non-container leaves, weak
 * references (with and without callbacks) held like any object, edits by
 * RC_SETREF/RC_CLEAR of fields and of the harness's root slots, collections
 * of random generations (and invalid ones), freeze/unfreeze, thresholds that
 * make collections start on their own, rc_intern of colliding strings, and
 * the leak-finding walks.
 *
 * The model mirrors every reference (root slots, fields, the list of
 * objects finalizers resurrected) and a side table per object counts its
 * finalize and clear calls.  "Anchored" objects are those reachable from
 * the roots, the resurrected list and frozen objects; before each API call
 * the harness updates the model as the call will, and computes the
 * anchored set.  Checked:
 *   - an anchored object is never finalized or cleared, stays alive with
 *     its contents intact and its exact reference count (rc_refcount);
 *   - finalize runs at most once per object ever; clear first runs only
 *     when the object dies, and every death is seen once in the census
 *     (rc_census per type equals the model's live count after every step);
 *   - an object whose last reference is dropped dies before that call
 *     returns; after a full collection nothing unanchored is alive, and
 *     rc_gc_collect(-1) returns exactly the number of unanchored containers
 *     that died in it; rc_gc_collect inside a collection returns 0; an
 *     invalid generation gives 0 and EINVAL;
 *   - weak references: rc_weakref_get gives the referent while it was
 *     never garbage, NULL once it is dead (and ever after once NULL); a
 *     callback runs at most once, sees its weakref cleared, never for a
 *     weakref to an anchored object, and has run for every anchored
 *     weakref by the time its referent is cleared;
 *   - rc_new memory is zeroed and 16-byte aligned, containers are tracked;
 *     rc_gc_get_objects/get_referents/get_referrers agree with the model;
 *     rc_gc_freeze_count counts the frozen live containers;
 *   - interned strings: exact NUL-terminated copies; equal contents give
 *     the same pointer while a reference is held;
 *   - at the end, with every root dropped and full collections run,
 *     nothing of ours is alive or tracked.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rcmalloc.h>

#include "fuzz_util.h"

/* ---- the objects ----------------------------------------------------------- */

enum kind { K_NODE, K_FIN, K_LEAF, K_WEAK, NKIND };
enum fin_action { F_NOTHING, F_RESURRECT, F_COLLECT, F_ALLOC, NFIN };

#define NFIELD 3
#define MAGIC 0x6f626a00u

typedef struct obj {
    uint32_t magic;           /* MAGIC | kind */
    uint32_t id;              /* index in the model */
    void *f[NFIELD];          /* strong references (containers only) */
    uint32_t nbytes;
    uint32_t seed;
    unsigned char payload[];
} obj;

typedef struct rec {
    void *p;                  /* the object (a weakref for K_WEAK) */
    int kind;
    bool alive;               /* not dead yet, as far as the model knows */
    bool garbage_ever;        /* once unanchored: weakrefs to it may be cleared */
    bool frozen;
    int ext;                  /* references held by the harness outside roots */
    int fin_action;
    int finalized, cleared;   /* calls seen */
    int field[NFIELD];        /* model ids, -1 = NULL */
    /* K_WEAK */
    int referent;
    bool has_cb, got_null;
    int fired;
} rec;

#define MAXREC 384
#define NROOT 12
#define NRES MAXREC
#define NINTERN 6

static rec R[MAXREC];
static int nrec;
static int root[NROOT];               /* model ids, -1 = empty */
static void *rootp[NROOT];            /* the references themselves */
static int res[NRES];                 /* objects finalizers resurrected */
static void *resp[NRES];
static int nres;
static bool guard[MAXREC];            /* anchored during the current call */
static int anc[MAXREC], nanc;         /* the anchored ids, in a list */

static bool trace;                    /* FUZZ_TRACE=1: each step on stderr */
#define TRACE(...) do { if (trace) fprintf(stderr, __VA_ARGS__); } while (0)

/* What the run exercised, printed at exit beside the operation count. */
static unsigned long long n_finalized, n_resurrected, n_callbacks, n_collected, n_deaths;

static void report_events(void)
{
    fprintf(stderr, "fuzz_objects: %llu deaths, %llu finalizers (%llu resurrected), "
            "%llu weakref callbacks, %llu objects found by collections\n",
            n_deaths, n_finalized, n_resurrected, n_callbacks, n_collected);
}

static int gc_depth;                  /* inside a collection (callbacks) */
static size_t last_collected;
static int last_generation;
static const rc_type *weakref_type;

static void obj_clear(void *o);
static void obj_finalize(void *o);
static int obj_traverse(void *o, rc_visit_fn visit, void *arg);

static const rc_type types[3] = {
    [K_NODE] = {"fz_node", obj_traverse, obj_clear, NULL},
    [K_FIN] = {"fz_fin", obj_traverse, obj_clear, obj_finalize},
    [K_LEAF] = {"fz_leaf", NULL, obj_clear, NULL},
};

static bool is_container(int kind) { return kind != K_LEAF; }

FZ_PLAIN static uint8_t pattern(uint32_t seed, size_t i) { return (uint8_t)(seed * 7 + i * 0x3b); }

/* ---- the model ---------------------------------------------------------------- */

static int incoming(int id)
{
    int n = R[id].ext;
    for (int r = 0; r < NROOT; r++)
        n += root[r] == id;
    for (int i = 0; i < nres; i++)
        n += res[i] == id;
    for (int i = 0; i < nrec; i++)
        if (R[i].alive && R[i].kind != K_WEAK)
            for (int k = 0; k < NFIELD; k++)
                n += R[i].field[k] == id;
    return n;
}

/* incoming() of every object at once. */
static void all_incoming(int *in)
{
    for (int i = 0; i < nrec; i++)
        in[i] = R[i].ext;
    for (int r = 0; r < NROOT; r++)
        if (root[r] >= 0)
            in[root[r]]++;
    for (int i = 0; i < nres; i++)
        in[res[i]]++;
    for (int i = 0; i < nrec; i++)
        if (R[i].alive && R[i].kind != K_WEAK)
            for (int k = 0; k < NFIELD; k++)
                if (R[i].field[k] >= 0)
                    in[R[i].field[k]]++;
}

/* Weakrefs whose last reference the model dropped are dead. */
static void sync_weak(void)
{
    static int in[MAXREC];
    all_incoming(in);
    for (int i = 0; i < nrec; i++)
        if (R[i].kind == K_WEAK && R[i].alive && in[i] == 0)
            R[i].alive = false;
}

/* The model dropped a reference to id: a weakref dies with its last one
   (it has no clear of ours to tell), inside the call about to be made. */
static void dropped(int id)
{
    if (id >= 0 && R[id].kind == K_WEAK && R[id].alive && incoming(id) == 0)
        R[id].alive = false;
}

/* Everything reachable from the given starting points, into mark[]
   (which may already hold marks: those are not walked again). */
static void mark_from(bool *mark, const int *start, int n)
{
    static int stack[MAXREC * NFIELD + NROOT + NRES + MAXREC];
    int sp = 0;
    for (int i = 0; i < n; i++)
        stack[sp++] = start[i];
    while (sp > 0) {
        int id = stack[--sp];
        if (mark[id])
            continue;
        FZ_CHECK(R[id].alive, "model: reachable object %d is dead", id);
        mark[id] = true;
        if (R[id].kind != K_WEAK)
            for (int k = 0; k < NFIELD; k++)
                if (R[id].field[k] >= 0 && !mark[R[id].field[k]])
                    stack[sp++] = R[id].field[k];
    }
}

/* The anchored set (guard): reachable from the roots, the resurrected
   objects and the harness's own held references; these must survive
   whatever happens.  gc_safe: also what frozen objects reach, which a
   collection leaves alone (but a frozen object still dies when its count
   drops to zero). */
static bool gc_safe[MAXREC];

static void compute_anchored(void)
{
    int start[NROOT + NRES + MAXREC], n = 0;
    for (int r = 0; r < NROOT; r++)
        if (root[r] >= 0)
            start[n++] = root[r];
    for (int i = 0; i < nres; i++)
        start[n++] = res[i];
    for (int i = 0; i < nrec; i++)
        if (R[i].alive && R[i].ext > 0)
            start[n++] = i;
    memset(guard, 0, sizeof guard);
    mark_from(guard, start, n);
    nanc = 0;
    for (int i = 0; i < nrec; i++) {
        if (guard[i])
            anc[nanc++] = i;
        else if (R[i].alive)
            R[i].garbage_ever = true;
    }
    memcpy(gc_safe, guard, sizeof gc_safe);
    n = 0;
    for (int i = 0; i < nrec; i++)
        if (R[i].alive && R[i].frozen)
            start[n++] = i;
    mark_from(gc_safe, start, n);
}

static int pick_anchored(fz_in *in, bool containers_only)
{
    if (nanc == 0)
        return -1;
    unsigned start = fz_u8(in);
    for (int t = 0; t < nanc; t++) {
        int id = anc[(start + t) % nanc];
        if (!containers_only || (R[id].kind != K_LEAF && R[id].kind != K_WEAK))
            return id;
    }
    return -1;
}

static obj *as_obj(void *p, const char *when)
{
    obj *o = p;
    FZ_CHECK((o->magic & ~0xffu) == MAGIC && (o->magic & 0xff) < K_WEAK &&
             o->id < (uint32_t)nrec && R[o->id].p == p,
             "%s: %p is not a live object of ours (magic %#x id %u)", when, p,
             o->magic, o->id);
    return o;
}

FZ_PLAIN static size_t payload_bad(const obj *o)
{
    for (uint32_t i = 0; i < o->nbytes; i++)
        if (o->payload[i] != pattern(o->seed, i))
            return i;
    return SIZE_MAX;
}

FZ_PLAIN static void payload_fill(obj *o)
{
    for (uint32_t i = 0; i < o->nbytes; i++)
        o->payload[i] = pattern(o->seed, i);
}

FZ_PLAIN static size_t nonzero_at(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != 0)
            return i;
    return SIZE_MAX;
}

static void check_payload(const obj *o)
{
    size_t bad = payload_bad(o);
    FZ_CHECK(bad == SIZE_MAX, "object %u (%p): payload byte %zu overwritten", o->id,
             (const void *)o, bad);
}

/* ---- the type's functions -------------------------------------------------------- */

static int obj_traverse(void *p, rc_visit_fn visit, void *arg)
{
    obj *o = as_obj(p, "traverse");
    for (int k = 0; k < NFIELD; k++)
        if (o->f[k]) {
            int r = visit(o->f[k], arg);
            if (r)
                return r;
        }
    return 0;
}

static void obj_clear_body(void *p)
{
    obj *o = as_obj(p, "clear");
    rec *r = &R[o->id];
    TRACE("  clear %u\n", o->id);
    r->cleared++;
    if (r->cleared == 1) {
        FZ_CHECK(!guard[o->id], "anchored object %u (kind %d) cleared", o->id, r->kind);
        FZ_CHECK(r->alive, "object %u cleared after it died", o->id);
        FZ_CHECK(r->kind != K_FIN || r->finalized == 1,
                 "object %u cleared without being finalized first", o->id);
        check_payload(o);
        /* weakrefs to a dying object are cleared, callbacks run, before clear */
        for (int w = 0; w < nrec; w++)
            if (R[w].kind == K_WEAK && R[w].alive && R[w].referent == (int)o->id) {
                FZ_CHECK(rc_weakref_get(R[w].p) == NULL,
                         "weakref %d still gives object %u in its clear", w, o->id);
                R[w].got_null = true;
                /* a weakref that was garbage itself (then resurrected with
                   its holder) was disarmed by that collection: no callback */
                FZ_CHECK(!guard[w] || !R[w].has_cb || R[w].fired == 1 || R[w].garbage_ever,
                         "callback of anchored weakref %d did not run before clear of %u",
                         w, o->id);
            }
        r->alive = false;
        r->garbage_ever = true;
        n_deaths++;
    }
    for (int k = 0; k < NFIELD; k++) {
        int old = r->field[k];
        r->field[k] = -1;
        dropped(old);
        RC_CLEAR(o->f[k]);
    }
}

static rec *new_rec(void *p, int kind)
{
    FZ_CHECK(nrec < MAXREC, "model: out of records");
    rec *r = &R[nrec++];
    memset(r, 0, sizeof *r);
    r->p = p;
    r->kind = kind;
    r->alive = true;
    r->referent = -1;
    for (int k = 0; k < NFIELD; k++)
        r->field[k] = -1;
    return r;
}

/* rc_new of one of our types, checked, entered in the model with one
   reference held by the harness (ext). */
static int make_obj(int kind, size_t nbytes, int fin_action)
{
    size_t size = sizeof(obj) + nbytes;
    obj *o = rc_new(&types[kind], size);
    FZ_CHECK(o != NULL, "rc_new(%zu) failed", size);
    FZ_CHECK(((uintptr_t)o & 15) == 0, "rc_new gave %p, not 16-aligned", (void *)o);
    size_t nz = nonzero_at(o, size);
    FZ_CHECK(nz == SIZE_MAX, "rc_new memory not zero at %zu", nz);
    FZ_CHECK(rc_refcount(o) == 1, "new object has refcount %zu", rc_refcount(o));
    FZ_CHECK(rc_type_of(o) == &types[kind], "rc_type_of of a new object is wrong");
    FZ_CHECK(rc_gc_is_tracked(o) == is_container(kind),
             "new %s object: rc_gc_is_tracked %d", types[kind].name, rc_gc_is_tracked(o));
    rec *r = new_rec(o, kind);
    TRACE("  new %d kind %d, %zu bytes, action %d\n", (int)(r - R), kind, nbytes, fin_action);
    r->ext = 1;
    r->fin_action = fin_action;
    o->magic = MAGIC | (uint32_t)kind;
    o->id = (uint32_t)(r - R);
    o->nbytes = (uint32_t)nbytes;
    o->seed = o->id * 2654435761u;
    payload_fill(o);
    return o->id;
}

static void obj_finalize_body(void *p)
{
    obj *o = as_obj(p, "finalize");
    rec *r = &R[o->id];
    TRACE("  finalize %u (action %d)\n", o->id, r->fin_action);
    r->finalized++;
    n_finalized++;
    FZ_CHECK(r->finalized == 1, "object %u finalized %d times", o->id, r->finalized);
    FZ_CHECK(!guard[o->id], "anchored object %u finalized", o->id);
    FZ_CHECK(r->alive, "object %u finalized after clear", o->id);
    check_payload(o);
    switch (r->fin_action) {
    case F_RESURRECT:
        /* a frozen object dying of its count was untracked first, and is
           tracked again in the young generation (CPython does the same) */
        r->frozen = false;
        n_resurrected++;
        FZ_CHECK(nres < NRES, "model: resurrection list full");
        res[nres] = (int)o->id;
        resp[nres++] = rc_incref(o);
        break;
    case F_COLLECT: {
        int depth = gc_depth;
        size_t n = rc_gc_collect(o->id % 4 - 1);
        FZ_CHECK(depth == 0 || n == 0,
                 "rc_gc_collect inside a collection returned %zu, not 0", n);
        break;
    }
    case F_ALLOC: {                    /* a short-lived object, born and dead here */
        int id = make_obj(o->id & 1 ? K_LEAF : K_NODE, o->id % 64, F_NOTHING);
        R[id].ext = 0;
        rc_decref(R[id].p);
        FZ_CHECK(!R[id].alive, "object %d dropped in a finalizer did not die", id);
        break;
    }
    default:
        break;
    }
}

static void weak_cb(void *wr, void *arg)
{
    int w = (int)(intptr_t)arg;
    FZ_CHECK(w >= 0 && w < nrec && R[w].kind == K_WEAK && R[w].p == wr,
             "weakref callback with a wrong weakref/argument");
    rec *r = &R[w];
    FZ_CHECK(r->alive, "callback of weakref %d, which is dead", w);
    FZ_CHECK(r->has_cb, "weakref %d has no callback but one ran", w);
    r->fired++;
    n_callbacks++;
    FZ_CHECK(r->fired == 1, "callback of weakref %d ran %d times", w, r->fired);
    FZ_CHECK(!guard[r->referent], "callback of weakref %d: its referent %d is anchored",
             w, r->referent);
    FZ_CHECK(rc_weakref_get(wr) == NULL, "weakref %d not cleared in its callback", w);
    r->got_null = true;
}

/* A collection that starts inside a finalizer or clear (an F_COLLECT
   action, or an automatic one in an rc_new there) may find garbage that
   the model never saw as such (it became garbage in the same operation),
   clear weak references to it, and see it resurrected by a finalizer: the
   model then lets any weak reference be cleared (garbage_ever) rather
   than guess which. */
static int user_depth;
static bool mid_op_collection;

static void obj_clear(void *p)
{
    user_depth++;
    obj_clear_body(p);
    user_depth--;
}

static void obj_finalize(void *p)
{
    user_depth++;
    obj_finalize_body(p);
    user_depth--;
}

static void gc_cb(int phase, int generation, const rc_gc_stats *info, void *arg)
{
    (void)arg;
    if (phase == 0) {
        FZ_CHECK(info == NULL, "start callback with stats");
        gc_depth++;
        if (user_depth > 0)
            mid_op_collection = true;
        return;
    }
    FZ_CHECK(phase == 1 && info != NULL, "stop callback without stats");
    FZ_CHECK(gc_depth > 0, "stop callback without a start");
    gc_depth--;
    last_collected = info->collected;
    n_collected += info->collected;
    last_generation = generation;
}

/* ---- after every step ---------------------------------------------------------- */

static int census_of(const rc_type *t, const rc_type_census *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].type == t)
            return (int)c[i].objects;
    return 0;
}

static int count_tracked(void *o, void *arg)
{
    if (rc_type_of(o) != weakref_type || weakref_type == NULL)
        (void)as_obj(o, "rc_gc_get_objects");
    ++*(int *)arg;
    return 0;
}

static void check_model(bool after_full)
{
    FZ_CHECK(gc_depth == 0, "collection callbacks unbalanced (%d)", gc_depth);
    if (mid_op_collection) {
        for (int i = 0; i < nrec; i++)
            if (R[i].alive)
                R[i].garbage_ever = true;
        mid_op_collection = false;
    }
    /* weakrefs have no clear of ours: they die when their count does */
    sync_weak();
    compute_anchored();
    static int inc[MAXREC];
    all_incoming(inc);
    int live[NKIND] = {0}, containers = 0, frozen = 0;
    for (int i = 0; i < nrec; i++) {
        rec *r = &R[i];
        if (!r->alive)
            continue;
        live[r->kind]++;
        containers += is_container(r->kind);
        frozen += r->frozen;
        int in = inc[i];
        FZ_CHECK(in > 0, "object %d (kind %d) has no reference left but did not die", i,
                 r->kind);
        FZ_CHECK(rc_refcount(r->p) == (size_t)in, "object %d: refcount %zu, model %d", i,
                 rc_refcount(r->p), in);
        FZ_CHECK(!after_full || gc_safe[i],
                 "object %d (kind %d) unreachable but alive after a full collection", i,
                 r->kind);
        if (r->kind == K_WEAK) {
            rec *t = &R[r->referent];
            /* a weakref that was garbage itself was detached by that
               collection, whatever became of it and its referent since */
            if ((!t->alive || !t->garbage_ever) && !r->garbage_ever) {
                void *g = rc_weakref_get(r->p);
                FZ_CHECK(g == (t->alive ? t->p : NULL),
                         "weakref %d to %s object %d gives %p", i,
                         t->alive ? "a live" : "a dead", r->referent, g);
                rc_decref(g);
            }
            continue;
        }
        obj *o = as_obj(r->p, "checking the model");
        check_payload(o);
        for (int k = 0; k < NFIELD; k++)
            FZ_CHECK(o->f[k] == (r->field[k] < 0 ? NULL : R[r->field[k]].p),
                     "object %d: field %d does not hold what the model says", i, k);
    }
    rc_type_census c[16];
    size_t n = rc_census(c, 16);
    n = n < 16 ? n : 16;
    for (int k = 0; k < K_WEAK; k++)
        FZ_CHECK(census_of(&types[k], c, n) == live[k],
                 "census: %d live %s objects, model %d", census_of(&types[k], c, n),
                 types[k].name, live[k]);
    if (weakref_type)
        FZ_CHECK(census_of(weakref_type, c, n) == live[K_WEAK],
                 "census: %d live weakrefs, model %d", census_of(weakref_type, c, n),
                 live[K_WEAK]);
    int tracked = 0;
    rc_gc_get_objects(-1, count_tracked, &tracked);
    FZ_CHECK(tracked == containers, "%d objects tracked, model has %d live containers",
             tracked, containers);
    FZ_CHECK(rc_gc_freeze_count() == (size_t)frozen, "freeze count %zu, model %d",
             rc_gc_freeze_count(), frozen);
}

/* ---- operations ---------------------------------------------------------------- */

/* root[r] = id (the harness's reference to it moves into the slot). */
static void set_root(int r, int id)
{
    TRACE("  root[%d] = %d (was %d)\n", r, id, root[r]);
    void *p = id >= 0 ? R[id].p : NULL;
    int old = root[r];
    root[r] = id;
    if (id >= 0)
        R[id].ext--;
    dropped(old);
    compute_anchored();
    RC_SETREF(rootp[r], p);
}

static int weak_new(int target, bool cb)
{
    int w = nrec;
    rec *r = new_rec(NULL, K_WEAK);   /* entered first: the callback's argument */
    r->referent = target;
    r->has_cb = cb;
    r->ext = 1;
    void *wr = rc_weakref_new(R[target].p, cb ? weak_cb : NULL, (void *)(intptr_t)w);
    FZ_CHECK(wr != NULL, "rc_weakref_new failed");
    r->p = wr;
    if (weakref_type == NULL)
        weakref_type = rc_type_of(wr);
    void *g = rc_weakref_get(wr);
    FZ_CHECK(g == R[target].p, "a new weakref does not give its referent");
    rc_decref(g);
    return w;
}

static struct {
    const char *s;            /* the interned pointer, a reference held */
    char text[24];
    size_t len;
} interned[NINTERN];

static void op_intern(fz_in *in)
{
    static const char alphabet[] = "ab\0c";
    char text[24];
    size_t len = fz_u8(in) % 20;
    for (size_t i = 0; i < len; i++)
        text[i] = alphabet[fz_u8(in) % 4];
    int slot = (int)(fz_u8(in) % NINTERN);
    const char *s = rc_intern(text, len);
    FZ_CHECK(s != NULL, "rc_intern failed");
    FZ_CHECK(memcmp(s, text, len) == 0 && s[len] == '\0', "rc_intern: not an exact copy");
    for (int i = 0; i < NINTERN; i++)
        if (interned[i].s && interned[i].len == len && memcmp(interned[i].text, text, len) == 0)
            FZ_CHECK(interned[i].s == s, "equal strings interned to %p and %p",
                     (const void *)interned[i].s, (const void *)s);
        else if (interned[i].s)
            FZ_CHECK(interned[i].s != s, "different strings interned to one pointer");
    rc_decref((void *)interned[slot].s);
    interned[slot].s = s;
    memcpy(interned[slot].text, text, len);
    interned[slot].len = len;
}

static int count_one(void *o, void *arg)
{
    (void)o;
    ++*(int *)arg;
    return 0;
}

static void op_walks(fz_in *in)
{
    int id = pick_anchored(in, false);
    if (id < 0)
        return;
    int n = 0, want = 0;
    rc_gc_get_referents(R[id].p, count_one, &n);
    if (R[id].kind == K_NODE || R[id].kind == K_FIN)
        for (int k = 0; k < NFIELD; k++)
            want += R[id].field[k] >= 0;
    FZ_CHECK(n == want, "rc_gc_get_referents of %d: %d, model %d", id, n, want);
    n = 0;
    want = 0;
    rc_gc_get_referrers(R[id].p, count_one, &n);
    for (int i = 0; i < nrec; i++)
        if (R[i].alive && (R[i].kind == K_NODE || R[i].kind == K_FIN))
            want += R[i].field[0] == id || R[i].field[1] == id || R[i].field[2] == id;
    FZ_CHECK(n == want, "rc_gc_get_referrers of %d: %d, model %d", id, n, want);
}

/* Returns the generation collected (or asked for, if invalid). */
static int op_collect(fz_in *in)
{
    unsigned m = fz_u8(in);
    int gen = m < 240 ? (int)(m % 4) - 1 : (m & 1 ? 3 : -2 - (int)(m % 7));
    if (gen < -1 || gen > 2) {
        errno = 0;
        FZ_CHECK(rc_gc_collect(gen) == 0 && errno == EINVAL,
                 "rc_gc_collect(%d) did not fail with EINVAL", gen);
        rc_gc_stats st;
        errno = 0;
        FZ_CHECK(rc_gc_get_stats(gen, &st) == -1 && errno == EINVAL,
                 "rc_gc_get_stats(%d) did not fail with EINVAL", gen);
        return gen;
    }
    compute_anchored();
    bool was_garbage[MAXREC] = {false};   /* objects born during it: no */
    for (int i = 0; i < nrec; i++)
        was_garbage[i] = R[i].alive && is_container(R[i].kind) && !gc_safe[i];
    size_t n = rc_gc_collect(gen);
    size_t died = 0;
    sync_weak();
    for (int i = 0; i < nrec; i++) {
        died += was_garbage[i] && !R[i].alive;
        if (was_garbage[i])
            TRACE("  garbage %d (kind %d, frozen %d): %s\n", i, R[i].kind, R[i].frozen,
                  R[i].alive ? "survived" : "died");
    }
    FZ_CHECK(n == last_collected, "rc_gc_collect returned %zu, its callback said %zu", n,
             last_collected);
    FZ_CHECK(last_generation == (gen < 0 ? 2 : gen), "collection of %d reported as %d",
             gen, last_generation);
    if (gen < 0)
        FZ_CHECK(n == died, "full collection returned %zu, %zu unreachable containers died",
                 n, died);
    else
        FZ_CHECK(n <= died, "collection of %d returned %zu, only %zu died", gen, n, died);
    return gen;
}

static void run_op(fz_in *in)
{
    unsigned op = fz_u8(in);
    bool after_full = false;
    compute_anchored();
    TRACE("op %u (%u)\n", op % 16, op);
    switch (op % 16) {
    case 0:
    case 1: {                           /* a new object into a root slot */
        unsigned m = fz_u8(in);
        int kind = m % 3;
        size_t nbytes = fz_u8(in) * (m & 8 ? 61 : 1);
        int r = (int)(fz_u8(in) % NROOT);
        if (nrec >= MAXREC - 8)         /* room for finalizers' objects */
            break;
        set_root(r, make_obj(kind, nbytes, (int)(m >> 4) % NFIN));
        break;
    }
    case 2:
    case 3:
    case 4: {                           /* RC_SETREF of a field */
        int a = pick_anchored(in, true);
        int k = (int)(fz_u8(in) % NFIELD);
        int b = fz_u8(in) & 7 ? pick_anchored(in, false) : -1;
        if (a < 0)
            break;
        obj *o = R[a].p;
        int old = R[a].field[k];
        TRACE("  %d.f[%d] = %d (was %d)\n", a, k, b, old);
        R[a].field[k] = b;
        dropped(old);
        compute_anchored();
        RC_SETREF(o->f[k], rc_incref(b >= 0 ? R[b].p : NULL));
        break;
    }
    case 5: {                           /* RC_CLEAR of a field */
        int a = pick_anchored(in, true);
        int k = (int)(fz_u8(in) % NFIELD);
        if (a < 0)
            break;
        obj *o = R[a].p;
        int old = R[a].field[k];
        TRACE("  %d.f[%d] = NULL (was %d)\n", a, k, old);
        R[a].field[k] = -1;
        dropped(old);
        compute_anchored();
        RC_CLEAR(o->f[k]);
        break;
    }
    case 6: {                           /* a root slot takes another object */
        int r = (int)(fz_u8(in) % NROOT);
        int id = pick_anchored(in, false);
        if (id >= 0) {
            rc_incref(R[id].p);
            R[id].ext++;
        }
        set_root(r, id);
        break;
    }
    case 7:
        set_root((int)(fz_u8(in) % NROOT), -1);
        break;
    case 8:
        after_full = op_collect(in) == -1;
        break;
    case 9: {                           /* a weakref into a root slot */
        int target = pick_anchored(in, false);
        unsigned m = fz_u8(in);
        int r = (int)(m % NROOT);
        if (target < 0 || R[target].kind == K_WEAK || nrec >= MAXREC - 8)
            break;
        set_root(r, weak_new(target, m & 16));
        break;
    }
    case 10: {                          /* rc_weakref_get */
        int w = pick_anchored(in, false);
        if (w < 0 || R[w].kind != K_WEAK)
            break;
        rec *t = &R[R[w].referent];
        void *g = rc_weakref_get(R[w].p);
        if (g != NULL) {
            FZ_CHECK(g == t->p && t->alive, "weakref %d gives %p, not its live referent", w, g);
            FZ_CHECK(!R[w].got_null, "weakref %d gave NULL, now its referent again", w);
            check_payload(as_obj(g, "rc_weakref_get"));
            rc_decref(g);
        } else {
            /* NULL is right once the referent was garbage, or the weakref
               itself: a collection that found it garbage detached it (as
               CPython clears weakrefs in the unreachable set, bpo-38006),
               and a finalizer may have resurrected it since */
            FZ_CHECK(!t->alive || t->garbage_ever || R[w].garbage_ever,
                     "weakref %d to live object %d gives NULL", w, R[w].referent);
            R[w].got_null = true;
        }
        break;
    }
    case 11:
        op_intern(in);
        break;
    case 12: {                          /* freeze, unfreeze */
        if (fz_u8(in) & 1) {
            rc_gc_freeze();
            for (int i = 0; i < nrec; i++)
                if (R[i].alive && is_container(R[i].kind))
                    R[i].frozen = true;
        } else {
            rc_gc_unfreeze();
            for (int i = 0; i < nrec; i++)
                R[i].frozen = false;
        }
        break;
    }
    case 13: {                          /* thresholds: collections on their own */
        unsigned m = fz_u8(in);
        size_t t0 = m & 1 ? 700 : m >> 3, t1 = 1 + m % 3, t2 = 1 + m % 5;
        rc_gc_set_threshold(t0, t1, t2);
        size_t g0, g1, g2;
        rc_gc_get_threshold(&g0, &g1, &g2);
        FZ_CHECK(g0 == t0 && g1 == t1 && g2 == t2, "thresholds not kept");
        if (m & 2)
            rc_gc_disable();
        else
            rc_gc_enable();
        FZ_CHECK(rc_gc_is_enabled() == !(m & 2), "rc_gc_is_enabled wrong");
        break;
    }
    case 14: {                          /* a resurrected object let go */
        if (nres == 0)
            break;
        int i = (int)(fz_u8(in) % nres);
        void *p = resp[i];
        int id = res[i];
        res[i] = res[--nres];
        resp[i] = resp[nres];
        dropped(id);
        compute_anchored();
        rc_decref(p);
        break;
    }
    default:
        op_walks(in);
        break;
    }
    check_model(after_full);
    fz_ops++;
}

/* Drop everything and collect until nothing of ours is alive. */
static void finish(void)
{
    rc_gc_unfreeze();
    for (int i = 0; i < nrec; i++)
        R[i].frozen = false;
    for (int i = 0; i < NINTERN; i++) {
        rc_decref((void *)interned[i].s);
        interned[i].s = NULL;
    }
    for (int round = 0; round < 8; round++) {
        for (int r = 0; r < NROOT; r++)
            if (root[r] >= 0)
                set_root(r, -1);
        while (nres > 0) {
            void *p = resp[--nres];
            dropped(res[nres]);
            compute_anchored();
            rc_decref(p);
        }
        compute_anchored();
        rc_gc_collect(-1);
        check_model(true);
        if (nres == 0)
            break;
    }
    for (int i = 0; i < nrec; i++)
        FZ_CHECK(!R[i].alive, "object %d (kind %d) alive after everything was dropped", i,
                 R[i].kind);
    int tracked = 0;
    rc_gc_get_objects(-1, count_tracked, &tracked);
    FZ_CHECK(tracked == 0, "%d objects still tracked at the end", tracked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    if (!started) {
        fz_start("fuzz_objects");
        trace = getenv("FUZZ_TRACE") != NULL;
        atexit(report_events);
        FZ_CHECK(rc_gc_callback_add(gc_cb, NULL) == 0, "rc_gc_callback_add failed");
        started = true;
    }
    nrec = 0;
    nres = 0;
    for (int r = 0; r < NROOT; r++) {
        root[r] = -1;
        rootp[r] = NULL;
    }
    rc_gc_enable();
    rc_gc_set_threshold(700, 10, 10);
    fz_in in = {data, size};
    while (in.n > 0)
        run_op(&in);
    finish();
    fz_inputs++;
    return 0;
}
