/*
 * leaks.c -- finding leaked rc objects with the leak-finding API
 * (rc_gc_get_objects(3)): rc_census, rc_gc_get_objects,
 * rc_gc_get_referrers, rc_gc_get_referents, RC_GC_DEBUG_SAVEALL.
 *
 * A small "server" keeps sessions, each owning a buffer, and records that
 * refer to sessions.  It has two bugs:
 *
 *   - some buffers keep a strong reference back to their session.  A
 *     buffer has no traverse function (it is not a container), so the
 *     cycle session -> buffer -> session is invisible to the collector
 *     and is never freed;
 *   - one code path takes a reference to a record and forgets to drop it.
 *
 * After the server drops everything and collects, the program finds both
 * leaks: the census says what is still alive, by type; a walk over the
 * tracked objects finds those with more references than tracked
 * referrers (someone the collector cannot see holds them); their
 * referrers and referents tell the two cases apart.  Build against an
 * installed rcmalloc:
 *
 *      cc -o leaks leaks.c $(pkg-config --cflags --libs rcmalloc)
 *
 * make check builds it against the build tree and compares its output with
 * examples/leaks.expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <rcmalloc.h>

/* ---- the program with the leaks ------------------------------------------- */

struct session { void *buffer; long id; };
struct buffer  { void *owner; char data[200]; };   /* owner: the bug */
struct record  { void *session; long id; };

static int
session_traverse(void *obj, rc_visit_fn visit, void *arg)
{
    struct session *s = obj;
    return s->buffer ? visit(s->buffer, arg) : 0;
}

static void
session_clear(void *obj)
{
    struct session *s = obj;
    RC_CLEAR(s->buffer);
}

static void
buffer_clear(void *obj)
{
    struct buffer *b = obj;
    RC_CLEAR(b->owner);
}

static int
record_traverse(void *obj, rc_visit_fn visit, void *arg)
{
    struct record *r = obj;
    return r->session ? visit(r->session, arg) : 0;
}

static void
record_clear(void *obj)
{
    struct record *r = obj;
    RC_CLEAR(r->session);
}

static const rc_type session_type = { "session", session_traverse, session_clear, NULL };
static const rc_type buffer_type  = { "buffer",  NULL,             buffer_clear,  NULL };
static const rc_type record_type  = { "record",  record_traverse,  record_clear,  NULL };

#define N 20

static void
serve(void)
{
    struct session *sessions[N];
    struct record *records[N];
    int i;

    for (i = 0; i < N; i++) {
        struct session *s = rc_new(&session_type, sizeof *s);
        struct buffer *b = rc_new(&buffer_type, sizeof *b);
        struct record *r = rc_new(&record_type, sizeof *r);

        if (s == NULL || b == NULL || r == NULL)
            exit(1);
        s->id = i;
        s->buffer = b;
        if (i % 7 == 4)                 /* bug 1: a back reference */
            b->owner = rc_incref(s);
        r->id = i;
        r->session = rc_incref(s);
        if (i == 11)                    /* bug 2: a forgotten reference */
            rc_incref(r);
        sessions[i] = s;
        records[i] = r;
    }
    /* and an ordinary cycle between two records, which the collector frees */
    RC_SETREF(records[0]->session, rc_incref(records[1]));
    RC_SETREF(records[1]->session, rc_incref(records[0]));

    for (i = 0; i < N; i++) {
        rc_decref(records[i]);
        rc_decref(sessions[i]);
    }
}

/* ---- finding them ------------------------------------------------------------ */

static void
print_census(const char *when)
{
    const rc_type *types[] = { &session_type, &buffer_type, &record_type };
    rc_type_census c[16];
    size_t n = rc_census(c, 16), i, t;

    printf("%s:", when);
    for (t = 0; t < 3; t++) {
        size_t objects = 0;

        for (i = 0; i < n && i < 16; i++)
            if (c[i].type == types[t])
                objects = c[i].objects;
        printf(" %zu %s%s", objects, types[t]->name, t < 2 ? "," : "\n");
    }
}

#define MAX_SUSPECTS 64
struct suspects { void *obj[MAX_SUSPECTS]; size_t n; };

/* A tracked session or record with more references than tracked objects
   referring to it is held by something the collector cannot see: a
   variable, a non-container, a forgotten reference. */
static int
find_suspect(void *obj, void *arg)
{
    struct suspects *s = arg;
    const rc_type *t = rc_type_of(obj);
    size_t refs, referrers;

    if (t != &session_type && t != &record_type)
        return 0;
    refs = rc_refcount(obj) - 1;        /* minus the walk's own reference */
    referrers = rc_gc_get_referrers(obj, NULL, NULL);
    if (refs > referrers && s->n < MAX_SUSPECTS)
        s->obj[s->n++] = rc_incref(obj);
    return 0;
}

static long
id_of(void *obj)
{
    return rc_type_of(obj) == &session_type ? ((struct session *)obj)->id
                                            : ((struct record *)obj)->id;
}

static int
by_type_and_id(const void *a, const void *b)
{
    void *x = *(void *const *)a, *y = *(void *const *)b;
    const rc_type *tx = rc_type_of(x), *ty = rc_type_of(y);

    if (tx != ty)
        return tx == &session_type ? -1 : 1;
    return (id_of(x) > id_of(y)) - (id_of(x) < id_of(y));
}

/* referents callback: is this child a buffer pointing back at the suspect? */
struct back { void *suspect; int found; };

static int
points_back(void *child, void *arg)
{
    struct back *b = arg;

    if (rc_type_of(child) == &buffer_type &&
        ((struct buffer *)child)->owner == b->suspect)
        b->found = 1;
    return b->found;                    /* nonzero stops the walk */
}

static int
keep(void *obj, void *arg)
{
    struct suspects *s = arg;

    if (s->n < MAX_SUSPECTS)
        s->obj[s->n++] = rc_incref(obj);
    return 0;
}

int
main(void)
{
    struct suspects s = { { NULL }, 0 };
    size_t i, found;

    rc_gc_disable();                    /* collect only when we say so */
    rc_gc_set_debug(RC_GC_DEBUG_SAVEALL);   /* keep what it finds, to look at */
    serve();
    found = rc_gc_collect(-1);
    printf("the collector found %zu unreachable objects, kept for inspection:", found);
    rc_gc_garbage(keep, &s);
    qsort(s.obj, s.n, sizeof s.obj[0], by_type_and_id);
    for (i = 0; i < s.n; i++) {
        printf(" %s %ld", rc_type_of(s.obj[i])->name, id_of(s.obj[i]));
        rc_decref(s.obj[i]);
    }
    printf("\n");
    s.n = 0;
    rc_gc_set_debug(0);
    rc_gc_clear_garbage();              /* released: the next collection frees them */
    rc_gc_collect(-1);

    print_census("still alive");
    rc_gc_get_objects(-1, find_suspect, &s);
    qsort(s.obj, s.n, sizeof s.obj[0], by_type_and_id);
    for (i = 0; i < s.n; i++) {
        void *o = s.obj[i];
        size_t refs = rc_refcount(o) - 1, referrers;
        struct back back = { o, 0 };

        referrers = rc_gc_get_referrers(o, NULL, NULL);
        rc_gc_get_referents(o, points_back, &back);
        printf("%s %ld: %zu reference%s, %zu from tracked objects: ",
               rc_type_of(o)->name, id_of(o), refs, refs == 1 ? "" : "s", referrers);
        if (back.found)
            printf("a cycle through its buffer, which the collector cannot traverse\n");
        else
            printf("a reference nobody dropped\n");
    }

    /* fix the bugs: break the cycles, drop the forgotten reference */
    for (i = 0; i < s.n; i++) {
        void *o = s.obj[i];

        if (rc_type_of(o) == &session_type) {
            struct buffer *b = ((struct session *)o)->buffer;
            RC_CLEAR(b->owner);
        } else {
            rc_decref(o);
        }
        rc_decref(o);                   /* ours, from find_suspect */
    }
    rc_gc_collect(-1);
    print_census("after the fixes");
    return 0;
}
