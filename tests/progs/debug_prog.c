/*
 * debug_prog.c -- misbehaves on purpose, for test_malloc_env.sh under
 * RCMALLOC_DEBUG=1 (SPEC 3: double-free and foreign-pointer detection, guard
 * bytes, poisoned fresh memory).  It prints the address concerned on stdout
 * (flushed) before the bad call; the debug allocator must then abort with one
 * line on stderr naming that address.
 *   debug_prog double-free SIZE | interior SIZE | interior-aligned SIZE |
 *              foreign | overflow SIZE |
 *              fresh SIZE | calloc SIZE
 * double-free, interior (a free of the block's address + 8) and foreign are
 * also caught without RCMALLOC_DEBUG (test_malloc_env.sh checks both).
 * "fresh" exits 0 when most bytes of a fresh block are nonzero (poisoned),
 * "calloc" when calloc zeroes a poisoned block; 1 otherwise.
 */
#include <rcmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char not_ours[256] __attribute__((aligned(64)));

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 32;
    if (!strcmp(argv[1], "double-free")) {
        unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        void *other = rc_malloc(n);   /* keep the block's neighbourhood busy */
        printf("%p\n", (void *)p);
        fflush(stdout);
        rc_free(p);
        rc_free(p);
        rc_free(other);
        return 0;   /* not detected */
    }
    if (!strcmp(argv[1], "interior")) {
        unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        printf("%p\n", (void *)(p + 8));
        fflush(stdout);
        rc_free(p + 8);
        return 0;
    }
    if (!strcmp(argv[1], "interior-aligned")) {
        /* p + 16 passes the free path's alignment test; it is caught when
           the cache it went into overflows */
        unsigned char *p = rc_malloc(n);
        void *more[512];
        if (!p)
            return 2;
        for (int i = 0; i < 512; i++)
            if (!(more[i] = rc_malloc(n)))
                return 2;
        printf("%p\n", (void *)(p + 16));
        fflush(stdout);
        rc_free(p + 16);
        for (int i = 0; i < 512; i++)
            rc_free(more[i]);
        return 0;
    }
    if (!strcmp(argv[1], "foreign")) {
        void *p = not_ours + 64;
        printf("%p\n", p);
        fflush(stdout);
        rc_free(p);
        return 0;
    }
    if (!strcmp(argv[1], "overflow")) {
        unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        size_t u = rc_usable_size(p);
        memset(p, 0x11, u);
        printf("%p\n", (void *)p);
        fflush(stdout);
        p[u] = (unsigned char)~p[u];   /* one byte past the usable size */
        rc_free(p);
        return 0;
    }
    if (!strcmp(argv[1], "fresh")) {
        unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++)
            nonzero += p[i] != 0;
        rc_free(p);
        return nonzero > n / 2 ? 0 : 1;   /* poison may contain some 0 bytes */
    }
    if (!strcmp(argv[1], "calloc")) {
        unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        memset(p, 0x77, n);
        rc_free(p);
        p = rc_calloc(1, n);
        if (!p)
            return 2;
        for (size_t i = 0; i < n; i++)
            if (p[i])
                return 1;
        rc_free(p);
        return 0;
    }
    return 64;
}
