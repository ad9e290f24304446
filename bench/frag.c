/*
 * frag.c -- fragmentation: fill the heap with small blocks (16..128 bytes),
 * free 90% of them at random, then refill the same number of bytes with
 * larger blocks (256..1024 bytes) that cannot reuse the small holes
 * exactly.  Reports the resident set after the refill and its ratio to the
 * bytes the program actually holds (lower is better).
 */
#include "common.h"

int main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv, 1);
    size_t n = (size_t)bench_iters(&o, 1.5e6), i, kept = 0, refill = 0;
    void **blk = bench_xmalloc(n * sizeof *blk);
    size_t *len = bench_xmalloc(n * sizeof *len);
    size_t filled = 0, freed = 0, got, live;
    long rss_fill, rss_holes, rss_refill, base = bench_rss_kb();
    bench_rng rng;
    void **more;

    bench_rng_seed(&rng, 99);
    /* phase 1: fill */
    for (i = 0; i < n; i++) {
        len[i] = bench_range(&rng, 16, 128);
        blk[i] = bench_xmalloc(len[i]);
        memset(blk[i], 0xa5, len[i]);
        filled += len[i];
    }
    rss_fill = bench_rss_kb();
    /* phase 2: free 90% at random */
    for (i = 0; i < n; i++) {
        if (bench_rand(&rng) % 10 != 0) {
            free(blk[i]);
            freed += len[i];
            blk[i] = NULL;
        } else {
            kept++;
        }
    }
    rss_holes = bench_rss_kb();
    /* phase 3: refill the freed bytes with bigger blocks */
    more = bench_xmalloc((freed / 256 + 1) * sizeof *more);
    for (got = 0; got < freed; refill++) {
        size_t sz = bench_range(&rng, 256, 1024);
        more[refill] = bench_xmalloc(sz);
        memset(more[refill], 0x5a, sz);
        got += sz;
    }
    rss_refill = bench_rss_kb();
    live = filled - freed + got;   /* bytes the program holds now */

    bench_metric("rss_fill_kb", (double)(rss_fill - base));
    bench_metric("rss_holes_kb", (double)(rss_holes - base));
    bench_metric("rss_refill_kb", (double)(rss_refill - base));
    bench_metric("live_kb", (double)live / 1024.0);
    bench_metric("rss_over_live", (double)(rss_refill - base) / ((double)live / 1024.0));

    for (i = 0; i < n; i++)
        free(blk[i]);
    for (i = 0; i < refill; i++)
        free(more[i]);
    free(more);
    free(blk);
    free(len);
    printf("ok frag blocks=%zu kept=%zu refill=%zu\n", n, kept, refill);
    return 0;
}
