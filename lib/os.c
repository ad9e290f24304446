/*
 * os.c -- the OS contract: mapping, unmapping and decommitting memory, and
 * writing diagnostics without stdio (the allocator must not allocate while
 * it reports).
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

void *_rc_os_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Map `size` bytes aligned to `align` (a power of two >= page size) by
   over-mapping and trimming both ends. */
void *_rc_os_map_aligned(size_t size, size_t align)
{
    size_t span = size + align;
    char *p = _rc_os_map(span);
    if (p == NULL)
        return NULL;
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p;
    size_t tail = span - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

void _rc_os_unmap(void *p, size_t size)
{
    munmap(p, size);
}

void _rc_os_decommit(void *p, size_t size)
{
    int saved = errno;
    madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

/* ---- diagnostics ---------------------------------------------------------- */

static void put(char **o, char *end, char c)
{
    if (*o < end)
        *(*o)++ = c;
}

static void put_uint(char **o, char *end, uintmax_t v, unsigned base)
{
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put(o, end, tmp[--n]);
}

static int vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
    char *o = buf, *end = buf + (len ? len - 1 : 0);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, end, *f);
            continue;
        }
        f++;
        bool z = false;
        if (*f == 'z') {
            z = true;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                put(&o, end, *s);
            break;
        }
        case 'd': {
            long v = z ? (long)va_arg(ap, ssize_t) : va_arg(ap, int);
            if (v < 0) {
                put(&o, end, '-');
                v = -v;
            }
            put_uint(&o, end, (uintmax_t)v, 10);
            break;
        }
        case 'u':
            put_uint(&o, end, z ? va_arg(ap, size_t) : va_arg(ap, unsigned), 10);
            break;
        case 'x':
            put_uint(&o, end, z ? va_arg(ap, size_t) : va_arg(ap, unsigned), 16);
            break;
        case 'p':
            put(&o, end, '0');
            put(&o, end, 'x');
            put_uint(&o, end, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%':
            put(&o, end, '%');
            break;
        default:
            put(&o, end, '?');
            break;
        }
    }
    if (len)
        *o = '\0';
    return (int)(o - buf);
}

int _rc_format(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vformat(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

void _rc_write_fd(int fd, const char *msg)
{
    int saved = errno;
    size_t n = strlen(msg);
    while (n) {
        ssize_t w = write(fd, msg, n);
        if (w <= 0)
            break;
        msg += w;
        n -= (size_t)w;
    }
    errno = saved;
}

void _rc_write_err(const char *msg)
{
    _rc_write_fd(STDERR_FILENO, msg);
}

static void vprint_err(const char *fmt, va_list ap)
{
    char buf[512];
    vformat(buf, sizeof buf, fmt, ap);
    _rc_write_err(buf);
}

void _rc_printf_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_err(fmt, ap);
    va_end(ap);
}

_Noreturn void _rc_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_err(fmt, ap);
    va_end(ap);
    abort();
}

uint64_t _rc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
