#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H
#include "config.h"
#include "rcmalloc.h"

/* Internal entry points (hidden; no PLT): the lifetime layer calls these. */
void *_rc_malloc(size_t size);
void *_rc_calloc(size_t count, size_t size);
void  _rc_free(void *ptr);
void  _rc_free_sized(void *ptr, size_t size);
#endif
