/* opsprog -- misbehaves on purpose, one way per argument, for the checks of
   debug mode, valgrind support, options and statistics (tests/ops.am).
   Uses the rc_ API so it works in --disable-override builds too. */
#include <rcmalloc.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    char *p = rc_malloc(24);
    memset(p, 'x', 24);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    if (!strcmp(mode, "double-free")) {
        rc_free(p);
        rc_free(p);
    } else if (!strcmp(mode, "overflow")) {
        p[24] = 'y';                   /* one byte past the end */
        rc_free(p);
    } else if (!strcmp(mode, "underflow")) {
        p[-1] = 'y';
        rc_free(p);
    } else if (!strcmp(mode, "foreign")) {
        static char not_ours[64];
        printf("foreign %p\n", (void *)(not_ours + 16));
        fflush(stdout);
        rc_free(not_ours + 16);
    } else if (!strcmp(mode, "interior")) {
        printf("foreign %p\n", (void *)(p + 8));
        fflush(stdout);
        rc_free(p + 8);
    } else if (!strcmp(mode, "use-after-free")) {
        rc_free(p);
        p[3] = 'z';
        for (int i = 0; i < 10000; i++)   /* push p out of the quarantine */
            rc_free(rc_malloc(16));
    } else if (!strcmp(mode, "leak")) {   /* for valgrind */
        char *leak = rc_malloc(40);
        memset(leak, 1, 40);
        /* read past the end of the block (its usable size: once asked,
           the program may use all of it) */
        volatile char c = p[rc_usable_size(p)];
        (void)c;
        rc_free(p);
        leak = NULL;
    } else if (!strcmp(mode, "fill")) {   /* debug fill patterns */
        unsigned char *q = rc_malloc(100);
        unsigned char *z = rc_calloc(10, 10);
        int fresh = 1, zero = 1;
        for (int i = 0; i < 100; i++) {
            fresh &= q[i] == 0xCB;
            zero &= z[i] == 0;
        }
        printf("fresh-fill %d calloc-zero %d usable %zu\n", fresh, zero, rc_usable_size(q));
        rc_free(q);
        rc_free(z);
        rc_free(p);
    } else if (!strcmp(mode, "stats")) {
        void *keep[1000];
        for (int i = 0; i < 1000; i++)
            keep[i] = rc_malloc(48);
        void *big = rc_malloc(2 << 20);      /* above the span limit: jemalloc */
        void *mid = rc_malloc(100 << 10);    /* a span */
        rc_stats_print(stdout);
        rc_free(mid);
        for (int i = 0; i < 1000; i++)
            rc_free(keep[i]);
        rc_free(big);
        rc_free(p);
    } else {
        rc_free(p);
    }
    puts("finished");
    return 0;
}
