/*
 * randws.c -- random replacement in a working set: 20,000 slots, each step
 * frees a random slot and refills it with a block of 8..512 bytes.  No
 * allocation order for the allocator to exploit; the working set (~5 MiB)
 * exceeds the L2 cache.
 */
#include "common.h"

#define SLOTS 20000

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    uint64_t n = bench_iters(&o, 12e6), i;
    void **slot = calloc(SLOTS, sizeof *slot);
    bench_rng rng;
    unsigned long sum = 0;

    if (!slot)
        return 1;
    bench_rng_seed(&rng, 42);
    for (i = 0; i < SLOTS; i++) {
        size_t sz = bench_range(&rng, 8, 512);
        unsigned char *p = bench_xmalloc(sz);
        p[0] = 1;
        slot[i] = p;
    }
    for (i = 0; i < n; i++) {
        size_t k = (size_t)(bench_rand(&rng) % SLOTS);
        size_t sz = bench_range(&rng, 8, 512);
        unsigned char *p;
        sum += ((unsigned char *)slot[k])[0];
        free(slot[k]);
        p = bench_xmalloc(sz);
        p[0] = (unsigned char)i;
        p[sz - 1] = 0;
        slot[k] = p;
    }
    for (i = 0; i < SLOTS; i++)
        free(slot[i]);
    free(slot);
    printf("ok randws steps=%llu sum=%lu\n", (unsigned long long)n, sum);
    return 0;
}
