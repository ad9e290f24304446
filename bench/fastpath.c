/*
 * fastpath.c -- single-thread fixed-size fast path: malloc(32), touch, free,
 * in a tight loop.  Measures the per-call cost of the thread-local path.
 */
#include "common.h"

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    uint64_t n = bench_iters(&o, 40e6), i;
    unsigned long sum = 0;

    for (i = 0; i < n; i++) {
        unsigned char *p = malloc(32);
        if (!p)
            return 1;
        p[0] = (unsigned char)i;
        bench_escape(p);
        sum += p[0];
        free(p);
    }
    bench_metric("pairs", (double)n);
    printf("ok fastpath sum=%lu\n", sum);
    return 0;
}
