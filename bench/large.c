/*
 * large.c -- large-block churn: allocate a 5..25 MiB block, touch every
 * page, free it; two blocks are live at a time.  Measures how the
 * allocator maps, reuses and returns big regions (page faults dominate
 * when it gives memory back to the kernel every time).
 */
#include "common.h"

#define MIB (1024 * 1024)

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    uint64_t n = bench_iters(&o, 150), i;
    unsigned char *live[2] = { NULL, NULL };
    long page = sysconf(_SC_PAGESIZE);
    unsigned long sum = 0;
    bench_rng rng;

    bench_rng_seed(&rng, 7);
    for (i = 0; i < n; i++) {
        size_t sz = bench_range(&rng, 5 * MIB, 25 * MIB);
        unsigned char *p = bench_xmalloc(sz);
        size_t off;
        for (off = 0; off < sz; off += (size_t)page)
            p[off] = (unsigned char)off;
        p[sz - 1] = 1;
        sum += p[sz / 2];
        free(live[i & 1]);
        live[i & 1] = p;
    }
    free(live[0]);
    free(live[1]);
    printf("ok large blocks=%llu sum=%lu\n", (unsigned long long)n, sum);
    return 0;
}
