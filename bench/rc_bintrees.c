/*
 * rc_bintrees.c -- binary-trees with rcmalloc objects: nodes are rc_new'd
 * containers (traverse + clear, so the cycle collector tracks them and its
 * automatic collections run as allocation counts demand), a tree dies by
 * one rc_decref of its root.  -m plain: the same nodes without traverse
 * (never tracked: reference counting alone).
 */
#include "rcweak.h"

typedef struct node_t { struct node_t *left, *right; } node_t;

static int node_traverse(void *obj, rc_visit_fn visit, void *arg)
{
    node_t *n = obj;
    int r;
    if (n->left && (r = visit(n->left, arg)))
        return r;
    if (n->right && (r = visit(n->right, arg)))
        return r;
    return 0;
}

static void node_clear(void *obj)
{
    node_t *n = obj;
    RC_CLEAR(n->left);
    RC_CLEAR(n->right);
}

static const rc_type node_type = { "node", node_traverse, node_clear, NULL };
static const rc_type plain_type = { "node", NULL, node_clear, NULL };
static const rc_type *ntype = &node_type;

static node_t *make(int d)
{
    node_t *n = rc_new(ntype, sizeof *n);
    if (!n)
        exit(1);
    if (d > 0) {
        n->left = make(d - 1);
        n->right = make(d - 1);
    }
    return n;
}

static long check(const node_t *n)
{
    return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static void drop(node_t *n)
{
    rc_decref(n);
}

#include "bintrees.h"

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    int depth;
    long total;
    BENCH_REQUIRE(rc_new);
    BENCH_REQUIRE(rc_decref);
    if (strcmp(o.mode, "plain") == 0)
        ntype = &plain_type;
    depth = bintrees_max_depth(&o);
    total = bintrees_run(depth);
    bench_metric("depth", depth);
    printf("ok rc_bintrees nodes=%ld\n", total);
    return 0;
}
