/*
 * lifo.c -- LIFO batches: allocate a batch of 1,000 blocks (16..256 bytes,
 * a fixed repeating pattern), free them in reverse order, repeat.  The
 * stack-like pattern of a parser or a recursive computation.
 */
#include "common.h"

#define BATCH 1000

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    uint64_t rounds = bench_iters(&o, 15000), r;
    void *stack[BATCH];
    unsigned long sum = 0;
    int i;

    for (r = 0; r < rounds; r++) {
        for (i = 0; i < BATCH; i++) {
            size_t sz = 16 + (size_t)((i * 7 + (int)r) % 16) * 16;
            unsigned char *p = malloc(sz);
            if (!p)
                return 1;
            p[0] = (unsigned char)i;
            p[sz - 1] = (unsigned char)r;
            stack[i] = p;
        }
        for (i = BATCH - 1; i >= 0; i--) {
            sum += ((unsigned char *)stack[i])[0];
            free(stack[i]);
        }
    }
    printf("ok lifo rounds=%llu sum=%lu\n", (unsigned long long)rounds, sum);
    return 0;
}
