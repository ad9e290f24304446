/*
 * realloc1.c -- one growing buffer among small allocations, as a parser or
 * a string builder does: a buffer grows by realloc from 16 B to 64 KiB,
 * one eighth of its size per step, and its new last byte is written (a
 * check mark: one byte per step, so the time is the allocator's and the
 * copies it makes, not the program's writing); between
 * two steps the program mallocs one or two small blocks (16..256 B) and
 * frees as many, some at once and some after they have lived a while (a
 * pool of KEPT slots replaced at random).  So the blocks next to the
 * buffer are busy: growth in place is possible only where the allocator
 * arranged for it.  A finished buffer is checked (its first 16 bytes and
 * the mark of every step must have survived every move) and freed, and
 * the next one starts at 16 B.
 *
 * Unlike `realloc` (16 buffers side by side, no other traffic), this is
 * the single-buffer case mimalloc-bench style suites measure.
 */
#include "common.h"

#define START 16
#define LIMIT (64 * 1024)
#define KEPT 256

static unsigned char fill_byte(size_t i, unsigned long round)
{
    return (unsigned char)(i * 7 + round);
}

static unsigned char *small_new(bench_rng *r, unsigned tag)
{
    size_t size = bench_range(r, 16, 256);
    unsigned char *p = bench_xmalloc(size);
    p[0] = (unsigned char)size;
    p[1] = (unsigned char)tag;
    p[size - 1] = (unsigned char)tag;
    return p;
}

static int small_free(unsigned char *p)
{
    size_t size = p[0] ? p[0] : 256;
    int ok = size >= 16 && p[size - 1] == p[1];
    free(p);
    return ok;
}

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    uint64_t buffers = bench_iters(&o, 8e4);
    unsigned char *kept[KEPT] = { 0 };
    unsigned long bad = 0, steps = 0;
    bench_rng r;

    bench_rng_seed(&r, 99);
    for (uint64_t b = 0; b < buffers; b++) {
        size_t size = START;
        unsigned char *buf = bench_xmalloc(size);
        for (size_t i = 0; i < size; i++)
            buf[i] = fill_byte(i, (unsigned long)b);
        while (size < LIMIT) {
            size += size / 8;
            if (size > LIMIT)
                size = LIMIT;
            unsigned char *p = realloc(buf, size);
            if (!p) {
                fprintf(stderr, "realloc1: realloc(%zu) failed\n", size);
                return 1;
            }
            buf = p;
            buf[size - 1] = fill_byte(size - 1, (unsigned long)b);
            steps++;
            /* a short-lived block, and one that replaces a kept one */
            unsigned char *t = small_new(&r, (unsigned)steps);
            bad += !small_free(t);
            size_t k = (size_t)(bench_rand(&r) % KEPT);
            if (kept[k])
                bad += !small_free(kept[k]);
            kept[k] = bench_rand(&r) % 2 ? small_new(&r, (unsigned)steps) : NULL;
        }
        /* the first bytes and the last byte of every size it had */
        for (size_t i = 0; i < START; i++)
            bad += buf[i] != fill_byte(i, (unsigned long)b);
        for (size_t s = START + START / 8; s < LIMIT; s += s / 8)
            bad += buf[s - 1] != fill_byte(s - 1, (unsigned long)b);
        bad += buf[LIMIT - 1] != fill_byte(LIMIT - 1, (unsigned long)b);
        free(buf);
    }
    for (int k = 0; k < KEPT; k++)
        if (kept[k])
            bad += !small_free(kept[k]);
    if (bad) {
        fprintf(stderr, "realloc1: %lu damaged blocks\n", bad);
        return 1;
    }
    bench_metric("realloc_steps", (double)steps);
    printf("ok realloc1 buffers=%llu steps=%lu\n", (unsigned long long)buffers, steps);
    return 0;
}
