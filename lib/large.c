/*
 * large.c -- blocks above rc_small_max, and alignments the pools cannot
 * serve, go to jemalloc.  This is the only file that includes
 * <jemalloc/jemalloc.h>, and it calls only the *allocx API and mallctl:
 * Debian's libjemalloc also exports plain malloc/free, which must never be
 * reached from here (the process's malloc is rcmalloc's).
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <jemalloc/jemalloc.h>

void _rc_large_init(void)
{
}

void *_rc_large_malloc(size_t size, size_t align, bool zero)
{
    if (rc_unlikely(size > PTRDIFF_MAX || align > ((size_t)1 << 40))) {
        errno = ENOMEM;
        return NULL;
    }
    int flags = (align > RC_ALIGN ? MALLOCX_ALIGN(align) : 0) | (zero ? MALLOCX_ZERO : 0);
    void *p = mallocx(size ? size : 1, flags);
    if (rc_unlikely(p == NULL))
        errno = ENOMEM;
    return p;
}

void *_rc_large_realloc(void *ptr, size_t size)
{
    if (rc_unlikely(size > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = rallocx(ptr, size, 0);
    if (rc_unlikely(q == NULL))
        errno = ENOMEM;
    return q;
}

void _rc_large_free(void *ptr)
{
    dallocx(ptr, 0);
}

void _rc_large_free_sized(void *ptr, size_t size)
{
    sdallocx(ptr, size, 0);
}

size_t _rc_large_usable(const void *ptr)
{
    return sallocx(ptr, 0);
}

size_t _rc_large_trim(void)
{
    size_t before = 0, after = 0, sz = sizeof(size_t);
    uint64_t epoch = 1;
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    mallctl("stats.resident", &before, &sz, NULL, 0);
    char cmd[64];
    _rc_format(cmd, sizeof cmd, "arena.%u.purge", 4096u);   /* MALLCTL_ARENAS_ALL */
    mallctl(cmd, NULL, NULL, NULL, 0);
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    mallctl("stats.resident", &after, &sz, NULL, 0);
    return before > after ? before - after : 0;
}

void _rc_large_stats(size_t *allocated, size_t *active, size_t *mapped, size_t *resident)
{
    uint64_t epoch = 1;
    size_t sz = sizeof(size_t);
    *allocated = *active = *mapped = *resident = 0;
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    mallctl("stats.allocated", allocated, &sz, NULL, 0);
    mallctl("stats.active", active, &sz, NULL, 0);
    mallctl("stats.mapped", mapped, &sz, NULL, 0);
    mallctl("stats.resident", resident, &sz, NULL, 0);
}
