/*
 * graph.c -- the rcmalloc object-lifetime API in one small program.
 *
 * Builds a graph of reference-counted nodes named by interned strings,
 *
 *      a --> b --> c --> a   (a cycle)      a --> d
 *
 * drops every outside reference, watches node a through a weak reference,
 * and lets the cycle collector free the garbage.  Build against an
 * installed rcmalloc:
 *
 *      cc -o graph graph.c $(pkg-config --cflags --libs rcmalloc)
 *
 * make check builds it this way from a temporary install and compares its
 * output with graph.expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rcmalloc.h>

#define MAX_EDGES 4

struct node {
    const char  *name;                  /* interned string: a reference */
    size_t       nedges;
    struct node *edges[MAX_EDGES];      /* strong references */
};

static int alive;                       /* nodes not yet finalized */

/* Visit every strong reference the node holds, its name included. */
static int
node_traverse(void *obj, rc_visit_fn visit, void *arg)
{
    struct node *n = obj;
    size_t i;
    int r;

    if ((r = visit((void *)n->name, arg)) != 0)
        return r;
    for (i = 0; i < n->nedges; i++)
        if ((r = visit(n->edges[i], arg)) != 0)
            return r;
    return 0;
}

/* Drop them all: called when the node dies, and to break a garbage cycle. */
static void
node_clear(void *obj)
{
    struct node *n = obj;

    while (n->nedges > 0) {
        n->nedges--;
        RC_CLEAR(n->edges[n->nedges]);
    }
    RC_CLEAR(n->name);
}

static void
node_finalize(void *obj)
{
    (void)obj;
    alive--;
}

static const rc_type node_type = {
    .name     = "node",
    .traverse = node_traverse,
    .clear    = node_clear,
    .finalize = node_finalize,
};

static struct node *
node_new(const char *name)
{
    struct node *n = rc_new(&node_type, sizeof(*n));

    if (n == NULL || (n->name = rc_intern(name, strlen(name))) == NULL) {
        perror("graph: node_new");
        exit(EXIT_FAILURE);
    }
    alive++;
    return n;
}

/* from takes a new reference to to. */
static void
node_link(struct node *from, struct node *to)
{
    if (from->nedges == MAX_EDGES) {
        fprintf(stderr, "graph: too many edges\n");
        exit(EXIT_FAILURE);
    }
    from->edges[from->nedges++] = rc_incref(to);
}

static void
weak_gone(void *weakref, void *arg)
{
    (void)weakref;
    printf("weakref callback: node %s is gone\n", (const char *)arg);
}

int
main(void)
{
    struct node *a, *b, *c, *d, *twin, *got;
    char buf[8];
    void *wr;
    size_t found;

    a = node_new("a");
    b = node_new("b");
    c = node_new("c");
    d = node_new("d");
    node_link(a, b);
    node_link(b, c);
    node_link(c, a);
    node_link(a, d);
    printf("built %d nodes: a -> b -> c -> a, a -> d\n", alive);

    /* Equal names are one interned string while any reference lives. */
    snprintf(buf, sizeof(buf), "%c", 'a');
    twin = node_new(buf);
    printf("twin shares a's name: %s\n", twin->name == a->name ? "yes" : "no");
    rc_decref(twin);                    /* no cycle: dies at once */
    printf("after dropping the twin: %d nodes\n", alive);

    wr = rc_weakref_new(a, weak_gone, "a");
    if (wr == NULL) {
        perror("graph: rc_weakref_new");
        return EXIT_FAILURE;
    }

    /* Drop our references.  The cycle keeps a, b and c (and d, which a
       holds) alive: reference counting alone cannot free them. */
    rc_decref(a);
    rc_decref(b);
    rc_decref(c);
    rc_decref(d);
    printf("after dropping ours: %d nodes\n", alive);

    got = rc_weakref_get(wr);
    printf("weakref to a: %s\n", got != NULL ? "alive" : "dead");
    rc_decref(got);

    found = rc_gc_collect(-1);
    printf("collector found %zu unreachable objects\n", found);
    printf("after collecting: %d nodes\n", alive);

    got = rc_weakref_get(wr);
    printf("weakref to a: %s\n", got != NULL ? "alive" : "dead");
    rc_decref(got);
    rc_decref(wr);
    return alive == 0 && found == 4 ? EXIT_SUCCESS : EXIT_FAILURE;
}
