/*
 * stats_prog.c -- a quiet, correct program linked with rcmalloc that uses
 * only the rc_ API (so it works in both builds), for test_malloc_env.sh:
 * with RCMALLOC_STATS=1 a report must appear on stderr at exit; without it
 * stderr stays empty; RCMALLOC_DEBUG=1 must not disturb a correct program.
 */
#include <rcmalloc.h>
#include <stdint.h>
#include <string.h>

int main(void)
{
    void *keep[512];
    for (int i = 0; i < 512; i++) {
        size_t n = (size_t)(i * 53) % (i % 16 ? 2000 : 300000);
        keep[i] = rc_malloc(n);
        if (!keep[i])
            return 1;
        memset(keep[i], i, n);
    }
    for (int i = 0; i < 512; i += 2)
        rc_free(keep[i]);
    void *z = rc_calloc(100, 10);
    if (!z)
        return 2;
    for (int i = 0; i < 1000; i++)
        if (((unsigned char *)z)[i])
            return 3;
    void *a = rc_aligned_alloc(4096, 100);
    if (!a || (uintptr_t)a % 4096)
        return 4;
    a = rc_realloc(a, 50000);
    if (!a)
        return 5;
    rc_free(a);
    rc_free_sized(z, 1000);
    for (int i = 1; i < 512; i += 2)
        rc_free(keep[i]);
    return 0;
}
