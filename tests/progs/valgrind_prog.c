/*
 * valgrind_prog.c -- for test_valgrind.sh: run under memcheck with
 * rcmalloc serving malloc (--soname-synonyms=somalloc=nouserintercepts),
 * each mode commits one error, or none:
 *   valgrind_prog leak N     leaks 3 blocks of N bytes
 *   valgrind_prog read-past  reads one byte past a 40-byte block
 *   valgrind_prog write-past writes one byte past a 40-byte block
 *   valgrind_prog clean      a correct program that uses malloc_usable_size
 *                            (all of the block), realloc, calloc, aligned
 *                            blocks, spans and large blocks
 * Standard names: built in the override build only.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;   /* keeps stores and blocks from being optimized out */

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (!strcmp(mode, "leak") && argc > 2) {
        size_t n = strtoul(argv[2], NULL, 10);
        for (int i = 0; i < 3; i++) {
            char *p = malloc(n);
            memset(p, 1, n);
            sink = p;
        }
        sink = NULL;
        return 0;
    }
    if (!strcmp(mode, "read-past") || !strcmp(mode, "write-past")) {
        volatile char *p = malloc(40);
        memset((char *)p, 2, 40);
        if (mode[0] == 'r')
            printf("%d\n", p[40] == 7);
        else
            p[40] = 7;
        free((char *)p);
        return 0;
    }
    if (!strcmp(mode, "clean")) {
        unsigned long sum = 0;
        for (size_t n = 1; n < 5000; n += 13) {
            char *p = malloc(n);
            size_t u = malloc_usable_size(p);
            memset(p, 3, u);             /* all of it: not an error */
            sum += (unsigned char)p[u - 1];
            p = realloc(p, n * 3);
            memset(p + n, 4, n * 2);
            sum += (unsigned char)p[n * 3 - 1];
            free(p);
        }
        void *a = NULL;
        if (posix_memalign(&a, 256, 100) != 0)
            return 2;
        memset(a, 0, 100);
        free(a);
        char *z = calloc(100, 10);
        for (int i = 0; i < 1000; i++)
            sum += (unsigned char)z[i];
        free(z);
        for (size_t n = 20000; n <= 2000000; n *= 10) {   /* spans, jemalloc */
            char *b = malloc(n);
            memset(b, 5, n);
            sum += (unsigned char)b[n - 1];
            free(b);
        }
        printf("sum %lu\n", sum);
        return 0;
    }
    return 64;
}
