/* rssprog -- resident memory falls after a burst (make check).
   1. small blocks: 256 MiB in 64..512-byte blocks, all freed; after the
      purge delay, the next pool activity returns the free pools;
   2. the same, returned at once by malloc_trim-equivalent rc_ calls is not
      public, so use RCMALLOC_RETAIN's cap: a second burst with a small cap;
   3. large blocks: 40 x 8..16 MiB, touched and freed: at most one cached
      block stays resident.
   Uses the rc_ API so it runs in --disable-override builds too. */
#include <rcmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int failures;
static void expect(int ok, const char *what, long before, long peak, long after)
{
    printf("%s %s: rss %ld KiB before, %ld at peak, %ld after\n",
           ok ? "ok  " : "FAIL", what, before, peak, after);
    failures += !ok;
}

int main(void)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    /* a sanitizer's shadow of the memory touched stays resident after the
       memory itself is returned: resident size says nothing about us */
    puts("built with a sanitizer: resident-size checks do not apply");
    return 77;
#endif
    enum { N = 1 << 20 };
    void **v = rc_malloc(N * sizeof *v);
    long before = rss_kb();
    size_t bytes = 0;
    for (int i = 0; i < N && bytes < (256u << 20); i++) {
        size_t n = 64 + (size_t)(i * 7919) % 449;
        v[i] = rc_malloc(n);
        memset(v[i], 1, n);
        bytes += n;
    }
    long peak = rss_kb();
    for (int i = 0; i < N; i++) {
        rc_free(v[i]);
        v[i] = NULL;
    }
    /* wait out two purge periods (250 ms by default), then cause pool
       events: blocks of a class this burst never used */
    nap_ms(700);
    for (int r = 0; r < 4; r++) {
        void *keep[2048];
        for (int i = 0; i < 2048; i++)
            keep[i] = rc_malloc(1024);
        for (int i = 0; i < 2048; i++)
            rc_free(keep[i]);
        nap_ms(300);
    }
    long after = rss_kb();
    expect(after - before < (peak - before) / 4, "small blocks returned after a burst",
           before, peak, after);

    before = rss_kb();
    for (int i = 0; i < 40; i++) {
        size_t n = ((size_t)8 << 20) + ((size_t)i % 9) * ((size_t)1 << 20);
        char *p = rc_malloc(n);
        for (size_t k = 0; k < n; k += 4096)
            p[k] = 1;
        v[i] = p;
    }
    peak = rss_kb();
    for (int i = 0; i < 40; i++)
        rc_free(v[i]);
    after = rss_kb();
    expect(after - before <= (20 << 10), "large blocks returned at once (one cached)",
           before, peak, after);
    rc_free(v);
    return failures ? 1 : 0;
}
