/* TEMPORARY stub: everything to jemalloc until the pool core lands. */
#include "internal.h"
#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <jemalloc/jemalloc.h>
RC_API void *rc_malloc(size_t n) { void *p = mallocx(n ? n : 1, 0); if (!p) errno = ENOMEM; return p; }
RC_API void *rc_calloc(size_t c, size_t n) { size_t t; if (__builtin_mul_overflow(c, n, &t)) { errno = ENOMEM; return NULL; } void *p = mallocx(t ? t : 1, MALLOCX_ZERO); if (!p) errno = ENOMEM; return p; }
RC_API void *rc_realloc(void *p, size_t n) { if (!p) return rc_malloc(n); void *q = rallocx(p, n ? n : 1, 0); if (!q) errno = ENOMEM; return q; }
RC_API void rc_free(void *p) { if (p) dallocx(p, 0); }
RC_API void rc_free_sized(void *p, size_t n) { (void)n; rc_free(p); }
RC_API void *rc_aligned_alloc(size_t a, size_t n) { void *p = mallocx(n ? n : 1, MALLOCX_ALIGN(a)); if (!p) errno = ENOMEM; return p; }
RC_API int rc_posix_memalign(void **o, size_t a, size_t n) { if (a < sizeof(void*) || (a & (a-1))) return EINVAL; void *p = rc_aligned_alloc(a, n); if (!p) return ENOMEM; *o = p; return 0; }
RC_API size_t rc_usable_size(const void *p) { return p ? sallocx(p, 0) : 0; }
RC_API void rc_stats_print(FILE *out) { fprintf(out, "rcmalloc: stub\n"); }
void *_rc_malloc(size_t n) { return rc_malloc(n); }
void *_rc_calloc(size_t c, size_t n) { return rc_calloc(c, n); }
void _rc_free(void *p) { rc_free(p); }
void _rc_free_sized(void *p, size_t n) { rc_free_sized(p, n); }
