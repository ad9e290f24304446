/*
 * alloc.c -- the allocator API: the small-block fast paths, and the dispatch
 * between pools and jemalloc.  Main entry points: rc_malloc, rc_free (and
 * their hidden twins _rc_malloc, _rc_free, used inside the library).
 */
#include "internal.h"
#include "alloc.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

size_t _rc_small_max = 1024;

void *_rc_malloc(size_t size)
{
    return fast_alloc(size);
}

void _rc_free(void *ptr)
{
    fast_free(ptr);
}

void _rc_free_sized(void *ptr, size_t size)
{
    (void)size;   /* the pagemap is as cheap as trusting the size */
    fast_free(ptr);
}

/* ---- the rest -------------------------------------------------------------- */

void *_rc_calloc(size_t count, size_t size)
{
    size_t total;
    if (rc_unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    if (total <= _rc_small_max) {
        void *p = fast_alloc_class(_rc_class_of(total));
        if (p)
            memset(p, 0, total);
        return p;
    }
    return _rc_large_malloc(total, 0, true);
}

size_t _rc_usable_size(const void *ptr)
{
    if (_rc_is_pool_block(ptr))
        return _rc_pool_of(ptr)->block_size;
    return ptr ? _rc_large_usable(ptr) : 0;
}

void *_rc_memalign(size_t align, size_t size)
{
    if (align <= RC_ALIGN)
        return fast_alloc(size);
    unsigned cls = _rc_class_for_align(size, align);
    if (cls < RC_NCLASSES)
        return fast_alloc_class(cls);
    return _rc_large_malloc(size, align, false);
}

void *_rc_realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return fast_alloc(size);
    if (size == 0) {               /* glibc: realloc(p, 0) frees p */
        fast_free(ptr);
        return NULL;
    }
    if (!_rc_is_pool_block(ptr)) {
        if (size <= _rc_small_max && size <= _rc_large_usable(ptr) / 4) {
            /* shrinking a large block to a small size: move it to a pool */
            void *q = fast_alloc(size);
            if (q == NULL)
                return NULL;
            memcpy(q, ptr, size);
            _rc_large_free(ptr);
            return q;
        }
        return _rc_large_realloc(ptr, size);
    }
    size_t bs = _rc_pool_of(ptr)->block_size;
    if (size <= bs && size >= bs / 2)
        return ptr;                /* still fits its class, or near enough */
    void *q = fast_alloc(size);
    if (q == NULL)
        return NULL;               /* errno is ENOMEM; ptr stays valid */
    memcpy(q, ptr, size < bs ? size : bs);
    fast_free(ptr);
    return q;
}

size_t _rc_trim(void)
{
    _rc_ensure_init();
    _rc_heap_flush_all(_rc_heap_tls);
    return _rc_arena_purge(true) + _rc_large_trim();
}

/* ---- public names ---------------------------------------------------------- */

RC_API void *rc_malloc(size_t size)            { return fast_alloc(size); }
RC_API void  rc_free(void *ptr)                { fast_free(ptr); }
RC_API void  rc_free_sized(void *ptr, size_t size) { (void)size; fast_free(ptr); }
RC_API void *rc_calloc(size_t count, size_t size) { return _rc_calloc(count, size); }
RC_API void *rc_realloc(void *ptr, size_t size) { return _rc_realloc(ptr, size); }
RC_API size_t rc_usable_size(const void *ptr)  { return _rc_usable_size(ptr); }

RC_API void *rc_aligned_alloc(size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return _rc_memalign(align, size);
}

RC_API int rc_posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    int saved = errno;
    void *p = _rc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}
