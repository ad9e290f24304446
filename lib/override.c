/*
 * override.c -- the standard names (SPEC section 2) with glibc's semantics,
 * and every C++ operator new/delete form, so that a preloaded or linked
 * librcmalloc serves the whole process.  Built only with RC_OVERRIDE (the
 * default; ./configure --disable-override leaves just the rc_ names).
 *
 * The C++ operators are written in C under their mangled names, so the
 * library needs no libstdc++.  Failure follows the standard: call the
 * new_handler while there is one, then throw std::bad_alloc (through weak
 * references to libstdc++, which any program calling operator new has
 * loaded); the nothrow forms call the handler too, then return NULL.
 */
#include "internal.h"
#include "alloc.h"
#include "stats.h"

#ifdef RC_OVERRIDE

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size)            { return fast_alloc(size); }
EXPORT void  free(void *ptr)                { fast_free(ptr); }
EXPORT void *calloc(size_t n, size_t size)  { return _rc_calloc(n, size); }
EXPORT void *realloc(void *ptr, size_t size) { return _rc_realloc(ptr, size); }
EXPORT void  free_sized(void *ptr, size_t size) { (void)size; fast_free(ptr); }
EXPORT void  free_aligned_sized(void *ptr, size_t align, size_t size)
{
    (void)align;
    (void)size;
    fast_free(ptr);
}
EXPORT void  cfree(void *ptr)               { fast_free(ptr); }

EXPORT void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return _rc_realloc(ptr, total);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    return rc_posix_memalign(out, align, size);
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
    return rc_aligned_alloc(align, size);
}

/* glibc accepts alignment 0 (plain malloc); anything else must be a power
   of two. */
EXPORT void *memalign(size_t align, size_t size)
{
    if (align & (align - 1)) {
        errno = EINVAL;
        return NULL;
    }
    return _rc_memalign(align, size);
}

EXPORT void *valloc(size_t size)
{
    return _rc_memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    size = size ? (size + page - 1) & ~(page - 1) : page;
    return _rc_memalign(page, size);
}

EXPORT size_t malloc_usable_size(void *ptr) { return _rc_usable_size(ptr); }

EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    return _rc_trim() > 0;
}

EXPORT void malloc_stats(void)
{
    _rc_stats_print_fd(STDERR_FILENO);
}

EXPORT struct mallinfo2 mallinfo2(void)
{
    rc_stats_t s;
    struct mallinfo2 mi;
    _rc_stats_gather(&s);
    memset(&mi, 0, sizeof mi);
    /* glibc's meaning: uordblks + hblkhd is what the program holds */
    mi.arena = s.pools_used * RC_POOL_SIZE + s.large_active;   /* space in use by us */
    mi.ordblks = s.pools_dirty;                                /* free pools resident */
    mi.uordblks = s.small_in_use + s.span_bytes;               /* pool and span blocks held */
    mi.hblkhd = s.large_allocated;                             /* large blocks held */
    mi.fordblks = (s.small_capacity - s.small_in_use) +
                  (s.large_active - s.large_allocated);        /* free, not returned */
    mi.keepcost = s.pools_dirty * RC_POOL_SIZE;                /* releasable by trim */
    return mi;
}

#define CLAMP_INT(v) ((int)((v) > 0x7fffffff ? 0x7fffffff : (v)))
EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = CLAMP_INT(m2.arena);
    mi.ordblks = CLAMP_INT(m2.ordblks);
    mi.hblks = CLAMP_INT(m2.hblks);
    mi.hblkhd = CLAMP_INT(m2.hblkhd);
    mi.uordblks = CLAMP_INT(m2.uordblks);
    mi.fordblks = CLAMP_INT(m2.fordblks);
    mi.keepcost = CLAMP_INT(m2.keepcost);
    return mi;
}

/* glibc's internal names, which a few programs call directly. */
EXPORT void *__libc_malloc(size_t size)            { return fast_alloc(size); }
EXPORT void  __libc_free(void *ptr)                { fast_free(ptr); }
EXPORT void *__libc_calloc(size_t n, size_t size)  { return _rc_calloc(n, size); }
EXPORT void *__libc_realloc(void *ptr, size_t size) { return _rc_realloc(ptr, size); }
EXPORT void *__libc_memalign(size_t align, size_t size) { return memalign(align, size); }

/* ---- C++ ------------------------------------------------------------------ */

typedef void (*rc_new_handler)(void);
extern rc_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static RC_NOINLINE void *new_failed(size_t size, size_t align)
{
    for (;;) {
        rc_new_handler handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (handler == NULL) {
            if (_ZSt17__throw_bad_allocv)
                _ZSt17__throw_bad_allocv();
            _rc_fatal("rcmalloc: operator new(%zu) failed and std::bad_alloc is unavailable\n", size);
        }
        handler();                 /* may throw, or free memory */
        void *p = align ? _rc_memalign(align, size) : fast_alloc(size);
        if (p)
            return p;
    }
}

RC_INLINE void *cxx_new(size_t size)
{
    void *p = fast_alloc(size);
    return rc_likely(p != NULL) ? p : new_failed(size, 0);
}

RC_INLINE void *cxx_new_aligned(size_t size, size_t align)
{
    void *p = _rc_memalign(align, size);
    return rc_likely(p != NULL) ? p : new_failed(size, align);
}

typedef struct rc_nothrow rc_nothrow;   /* std::nothrow_t, never looked at */

EXPORT void *_Znwm(size_t n)                                { return cxx_new(n); }
EXPORT void *_Znam(size_t n)                                { return cxx_new(n); }
/* The nothrow forms call the new_handler too (C++11), and give up with NULL
   when there is none.  (A handler that throws is not caught here: C cannot;
   the exception reaches the caller.) */
static RC_NOINLINE void *new_nothrow_failed(size_t size, size_t align)
{
    for (;;) {
        rc_new_handler handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (handler == NULL)
            return NULL;
        handler();
        void *p = align ? _rc_memalign(align, size) : fast_alloc(size);
        if (p)
            return p;
    }
}

RC_INLINE void *cxx_new_nothrow(size_t size, size_t align)
{
    void *p = align ? _rc_memalign(align, size) : fast_alloc(size);
    return rc_likely(p != NULL) ? p : new_nothrow_failed(size, align);
}

EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const rc_nothrow *t) { (void)t; return cxx_new_nothrow(n, 0); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const rc_nothrow *t) { (void)t; return cxx_new_nothrow(n, 0); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a)       { return cxx_new_aligned(n, a); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a)       { return cxx_new_aligned(n, a); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const rc_nothrow *t)
{
    (void)t;
    return cxx_new_nothrow(n, a);
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const rc_nothrow *t)
{
    (void)t;
    return cxx_new_nothrow(n, a);
}

EXPORT void _ZdlPv(void *p)                                 { fast_free(p); }
EXPORT void _ZdaPv(void *p)                                 { fast_free(p); }
EXPORT void _ZdlPvm(void *p, size_t n)                      { (void)n; fast_free(p); }
EXPORT void _ZdaPvm(void *p, size_t n)                      { (void)n; fast_free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const rc_nothrow *t) { (void)t; fast_free(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const rc_nothrow *t) { (void)t; fast_free(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a)        { (void)a; fast_free(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a)        { (void)a; fast_free(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; fast_free(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; fast_free(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const rc_nothrow *t)
{
    (void)a;
    (void)t;
    fast_free(p);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const rc_nothrow *t)
{
    (void)a;
    (void)t;
    fast_free(p);
}

#else
typedef int rc_override_disabled;   /* ISO C forbids an empty unit */
#endif /* RC_OVERRIDE */
