/*
 * bintrees.h -- the shape of the binary-trees benchmark (Computer Language
 * Benchmarks Game) shared by rc_bintrees.c, malloc_bintrees.c and
 * gc_bintrees.c: a stretch tree of depth max+1, a long-lived tree of depth
 * max, and for depth d = 4, 6, .. max, 2^(max-d+4) short-lived trees.
 * The file that includes this defines node_t, make(depth), check(node)
 * and drop(node); drop is a no-op under a tracing collector.
 */
#ifndef BENCH_BINTREES_H
#define BENCH_BINTREES_H

static inline int bintrees_max_depth(const bench_opts *o)
{
    /* each depth doubles the work: 16 takes ~0.5 s on a 2020s x86 core
       with glibc; -s scales by choosing a smaller depth */
    int d = 16;
    double s = o->scale;
    while (s < 0.75 && d > 6) {
        s *= 2;
        d--;
    }
    return d;
}

static inline long bintrees_run(int max_depth)
{
    int min_depth = 4, d;
    long total = 0;
    node_t *stretch = make(max_depth + 1), *longlived;
    total += check(stretch);
    drop(stretch);
    longlived = make(max_depth);
    for (d = min_depth; d <= max_depth; d += 2) {
        long iters = 1L << (max_depth - d + min_depth), i, c = 0;
        for (i = 0; i < iters; i++) {
            node_t *t = make(d);
            c += check(t);
            drop(t);
        }
        total += c;
    }
    total += check(longlived);
    drop(longlived);
    return total;
}

#endif /* BENCH_BINTREES_H */
