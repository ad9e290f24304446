/*
 * realloc.c -- realloc growth, as lists and string builders do: 16 buffers
 * grow side by side from 16 bytes to 64 KiB, each step by one eighth of the
 * current size, writing the new tail's last byte; a buffer that reaches
 * 64 KiB is checked, freed and restarted.  Interleaving the buffers keeps
 * in-place growth from being trivially available.
 */
#include "common.h"

#define BUILDERS 16
#define START 16
#define LIMIT (64 * 1024)

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    uint64_t n = bench_iters(&o, 2e6), i;
    unsigned char *buf[BUILDERS];
    size_t size[BUILDERS];
    unsigned long done = 0;
    int b;

    for (b = 0; b < BUILDERS; b++) {
        /* stagger the starting sizes so the builders do not move in lockstep */
        size[b] = START + (size_t)b * 8;
        buf[b] = bench_xmalloc(size[b]);
        buf[b][0] = (unsigned char)b;
    }
    for (i = 0; i < n; i++) {
        b = (int)(i % BUILDERS);
        if (size[b] >= LIMIT) {
            if (buf[b][0] != (unsigned char)b) {
                fprintf(stderr, "realloc: content lost\n");
                return 1;
            }
            free(buf[b]);
            size[b] = START;
            buf[b] = bench_xmalloc(size[b]);
            buf[b][0] = (unsigned char)b;
            done++;
            continue;
        }
        size[b] += size[b] / 8;
        unsigned char *p = realloc(buf[b], size[b]);
        if (!p) {
            fprintf(stderr, "realloc(%zu) failed\n", size[b]);
            return 1;
        }
        p[size[b] - 1] = (unsigned char)i;
        buf[b] = p;
    }
    for (b = 0; b < BUILDERS; b++)
        free(buf[b]);
    bench_metric("buffers_completed", (double)done);
    printf("ok realloc steps=%llu completed=%lu\n", (unsigned long long)n, done);
    return 0;
}
