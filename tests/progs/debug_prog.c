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
 *
 * Through every entry point ENTRY (malloc calloc realloc aligned posix, and
 * in the override build memalign valloc pvalloc new new-aligned), for
 * RCMALLOC_DEBUG=1:
 *   debug_prog past-end ENTRY SIZE      one byte past the usable size, then free
 *              past-end-kept ENTRY SIZE the same, never freed (caught at once
 *                                       or at exit)
 *              before-start ENTRY SIZE  one byte before the block, then free
 *              after-free ENTRY SIZE    a write to the freed block, then a malloc
 *              read-after-free ENTRY SIZE  a read of the freed block, then a malloc
 *              read-zero ENTRY          a read of a 0-byte block's first byte
 *              after-free-churn ENTRY SIZE  a write to the freed block, then
 *                                       20000 malloc/free pairs of its size
 *              far-past-end SIZE        writes from the end of the block on,
 *                                       up to 1 MiB past it
 * For RCMALLOC_SECURE=1 (exit 0 when the property holds, 1 when not):
 *   debug_prog delayed SIZE   a freed block is not the next one handed out
 *              shuffled SIZE  64 blocks in a row are not laid out in order
 *              filled SIZE    a freed block no longer holds what it held
 */
#include "config.h"
#include <rcmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char not_ours[256] __attribute__((aligned(64)));

#ifdef RC_OVERRIDE
#include <malloc.h>
/* operator new / delete (and their aligned forms), by their mangled names */
extern void *_Znwm(size_t n);
extern void  _ZdlPv(void *p);
extern void *_ZnwmSt11align_val_t(size_t n, size_t a);
extern void  _ZdlPvSt11align_val_t(void *p, size_t a);
#endif

/* A block of n bytes from the entry point `entry`; NULL if unknown. */
static unsigned char *entry_alloc(const char *entry, size_t n)
{
    void *p = NULL;
    if (!strcmp(entry, "malloc"))
        return rc_malloc(n);
    if (!strcmp(entry, "calloc"))
        return rc_calloc(1, n);
    if (!strcmp(entry, "realloc"))
        return rc_realloc(rc_malloc(8), n);
    if (!strcmp(entry, "aligned"))
        return rc_aligned_alloc(64, n);
    if (!strcmp(entry, "posix"))
        return rc_posix_memalign(&p, 256, n) ? NULL : p;
#ifdef RC_OVERRIDE
    if (!strcmp(entry, "memalign"))
        return memalign(32, n);
    if (!strcmp(entry, "valloc"))
        return valloc(n);
    if (!strcmp(entry, "pvalloc"))
        return pvalloc(n);
    if (!strcmp(entry, "new"))
        return _Znwm(n);
    if (!strcmp(entry, "new-aligned"))
        return _ZnwmSt11align_val_t(n, 128);
#endif
    return NULL;
}

static void entry_free(const char *entry, void *p)
{
#ifdef RC_OVERRIDE
    if (!strcmp(entry, "new")) {
        _ZdlPv(p);
        return;
    }
    if (!strcmp(entry, "new-aligned")) {
        _ZdlPvSt11align_val_t(p, 128);
        return;
    }
#endif
    (void)entry;
    rc_free(p);
}

/* The misuse `mode` of a block from `entry`; 0 when not detected. */
static int misuse(const char *mode, const char *entry, size_t n)
{
    unsigned char *p = entry_alloc(entry, n);
    if (p == NULL)
        return 2;
    volatile unsigned char *v = p;
    size_t u = rc_usable_size(p);
    printf("%p\n", (void *)p);
    fflush(stdout);
    if (!strcmp(mode, "past-end") || !strcmp(mode, "past-end-kept")) {
        v[u] = 0x5a;
        if (!strcmp(mode, "past-end"))
            entry_free(entry, p);
    } else if (!strcmp(mode, "before-start")) {
        v[-1] = 0x5a;
        entry_free(entry, p);
    } else if (!strcmp(mode, "after-free") || !strcmp(mode, "read-after-free")) {
        entry_free(entry, p);
        if (!strcmp(mode, "after-free"))
            v[n / 2] = 0x5a;
        else if (v[n / 2] == 0x5a)
            puts("unlikely");
        rc_free(rc_malloc(n));    /* the program's next allocator call */
    } else if (!strcmp(mode, "after-free-churn")) {
        entry_free(entry, p);
        v[n / 2] = 0x5a;
        for (int i = 0; i < 20000; i++)
            rc_free(rc_malloc(n));
    } else if (!strcmp(mode, "read-zero")) {
        if (v[0] == 0x5a)
            puts("unlikely");
        entry_free(entry, p);
    } else {
        return 64;
    }
    return 0;
}

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
        static void *more[4200];   /* more than a class cache holds (2048) */
        if (!p)
            return 2;
        for (int i = 0; i < 4200; i++)
            if (!(more[i] = rc_malloc(n)))
                return 2;
        printf("%p\n", (void *)(p + 16));
        fflush(stdout);
        rc_free(p + 16);
        for (int i = 0; i < 4200; i++)
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
    if (argc > 2 && (!strcmp(argv[1], "past-end") || !strcmp(argv[1], "past-end-kept") ||
                     !strcmp(argv[1], "before-start") || !strcmp(argv[1], "after-free") ||
                     !strcmp(argv[1], "read-after-free") || !strcmp(argv[1], "read-zero") ||
                     !strcmp(argv[1], "after-free-churn")))
        return misuse(argv[1], argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : 0);
    if (!strcmp(argv[1], "far-past-end")) {
        volatile unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        printf("%p\n", (void *)p);
        fflush(stdout);
        for (size_t i = 0; i < ((size_t)1 << 20); i++)
            p[n + i] = 0x5a;
        rc_free((void *)p);
        return 0;
    }
    if (!strcmp(argv[1], "delayed")) {
        void *p = rc_malloc(n);
        rc_free(p);
        void *q = rc_malloc(n);
        rc_free(q);
        return q != p ? 0 : 1;
    }
    if (!strcmp(argv[1], "shuffled")) {
        /* LIFO or carve order hands out neighbours: count the steps of
           exactly one block between consecutive blocks */
        enum { K = 64 };
        unsigned char *b[K];
        int steps = 0;
        for (int i = 0; i < K; i++)
            if (!(b[i] = rc_malloc(n)))
                return 2;
        for (int i = 1; i < K; i++) {
            ptrdiff_t d = b[i] - b[i - 1];
            size_t gap = d > 0 ? (size_t)d : (size_t)-d;
            steps += gap <= n + n / 4 + 32;   /* the next block of the class */
        }
        for (int i = 0; i < K; i++)
            rc_free(b[i]);
        return steps < K / 2 ? 0 : 1;
    }
    if (!strcmp(argv[1], "filled")) {
        volatile unsigned char *p = rc_malloc(n);
        if (!p)
            return 2;
        /* two bytes in turn: the fill byte is random (from the process's
           key), so it may equal one of them, never both */
        for (size_t i = 0; i < n; i++)
            p[i] = (i & 1) ? 0x11 : 0x22;
        rc_free((void *)p);
        size_t same = 0;
        for (size_t i = 16; i < n; i++)   /* the first 16: free-list words */
            same += p[i] == ((i & 1) ? 0x11 : 0x22);
        return same <= (n - 16) / 2 ? 0 : 1;
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
