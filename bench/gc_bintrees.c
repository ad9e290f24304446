/*
 * gc_bintrees.c -- binary-trees with the Boehm-Demers-Weiser conservative
 * collector (Debian's libgc): GC_MALLOC, never free.
 */
#include <gc.h>
#include "common.h"

typedef struct node_t { struct node_t *left, *right; } node_t;

static node_t *make(int d)
{
    node_t *n = GC_MALLOC(sizeof *n);
    if (!n)
        exit(1);
    n->left = d > 0 ? make(d - 1) : NULL;
    n->right = d > 0 ? make(d - 1) : NULL;
    return n;
}

static long check(const node_t *n)
{
    return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static void drop(node_t *n)
{
    (void)n;
}

#include "bintrees.h"

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    int depth;
    long total;
    GC_INIT();
    depth = bintrees_max_depth(&o);
    total = bintrees_run(depth);
    bench_metric("depth", depth);
    bench_metric("gc_collections", (double)GC_get_gc_no());
    printf("ok gc_bintrees nodes=%ld\n", total);
    return 0;
}
