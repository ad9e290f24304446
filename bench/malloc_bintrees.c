/*
 * malloc_bintrees.c -- binary-trees with plain malloc/free (recursive
 * free); run under each allocator by LD_PRELOAD.
 */
#include "common.h"

typedef struct node_t { struct node_t *left, *right; } node_t;

static node_t *make(int d)
{
    node_t *n = bench_xmalloc(sizeof *n);
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
    if (n->left) {
        drop(n->left);
        drop(n->right);
    }
    free(n);
}

#include "bintrees.h"

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    int depth = bintrees_max_depth(&o);
    long total = bintrees_run(depth);
    bench_metric("depth", depth);
    printf("ok malloc_bintrees nodes=%ld\n", total);
    return 0;
}
