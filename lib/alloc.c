/*
 * alloc.c -- the allocator API: dispatch between the pools, jemalloc, and
 * the checked modes.  The fast paths themselves are in alloc.h, inlined
 * here and in override.c.  Main entry points: rc_malloc, rc_free (and their
 * hidden twins _rc_malloc, _rc_free, used inside the library).
 *
 * Checked modes (_rc_checked != 0, fixed at start-up) cost the fast paths
 * nothing: _rc_fast_max is 0 so every malloc comes to _rc_malloc_generic,
 * and arenas carry RC_MAP_CHECKED in the pagemap so every free of a pool
 * block comes to _rc_free_generic.
 */
#include "internal.h"
#include "alloc.h"
#include "prof.h"
#include "track.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

size_t   _rc_small_max = RC_SMALL_LIMIT;
/* 0 until init has run: the first malloc must take the generic path, which
   initializes first, so that in a checked mode it is a checked block too */
size_t   _rc_fast_max = 0;
unsigned _rc_checked;

/* ---- valgrind: pool blocks announced to memcheck ----------------------------- */

/* A block is announced with the size that was asked for, as memcheck's own
   malloc does: a leak counts requested bytes, and an access past the
   request is an error.  The rest of the block stays inaccessible until the
   program asks malloc_usable_size(), which opens it (checked_usable):
   after that the program may use all of it. */
static void announce(void *p, size_t size, size_t room, bool zero)
{
    rc_track_malloc(p, size, zero);
    rc_track_noaccess((char *)p + size, room - size);
}

static size_t checked_usable(const void *ptr, size_t room)
{
    rc_track_quiet();
    uintptr_t shut = rc_track_first_noaccess(ptr, room);
    rc_track_loud();
    if (shut)
        rc_track_undefined((void *)shut, (uintptr_t)ptr + room - shut);
    return room;
}

static void *checked_pool_alloc(unsigned cls, size_t size, bool zero)
{
    rc_track_quiet();
    void *p = fast_alloc_class(cls);
    rc_track_loud();
    if (p) {
        announce(p, size, _rc_class_size[cls], zero);
        if (zero)
            memset(p, 0, size);
    }
    return p;
}

static void checked_pool_free(void *ptr)
{
    rc_track_free(ptr);
    rc_track_noaccess(ptr, _rc_pool_of(ptr)->block_size);   /* opened or not */
    rc_track_quiet();
    free_pool_block(ptr);
    rc_track_loud();
}

static void *checked_large_alloc(size_t size, size_t align, bool zero)
{
    rc_track_quiet();              /* jemalloc writes into memory we freed */
    bool span = _rc_span_fits(size, align);
    void *p = span ? _rc_span_alloc(size, align, zero) : _rc_large_malloc(size, align, zero);
    rc_track_loud();
    if (p)
        announce(p, size, span ? _rc_pool_of(p)->block_size : _rc_large_usable(p), zero);
    return p;
}

/* ---- everything the fast paths do not take ----------------------------------- */

/* The pool class of a new block, RC_NCLASSES if none. */
static unsigned class_placed(size_t size, size_t align)
{
    return align <= RC_ALIGN ? (size <= _rc_small_max ? _rc_class_any(size) : RC_NCLASSES)
                             : _rc_class_for_align(size, align);
}

static void *alloc_placed(size_t size, size_t align, bool zero)
{
    if (rc_unlikely(_rc_checked & RC_CHECK_DEBUG))
        return _rc_debug_malloc(size, align, zero);
    if (rc_unlikely(_rc_checked & RC_CHECK_SECURE))
        return _rc_secure_malloc(size, align, zero);
    unsigned cls = class_placed(size, align);
    if (cls < RC_NCLASSES) {
        if (rc_unlikely(_rc_checked))
            return checked_pool_alloc(cls, size, zero);
        void *p = fast_alloc_class(cls);
        if (p && zero)
            memset(p, 0, size);
        return p;
    }
    if (rc_unlikely(_rc_checked))
        return checked_large_alloc(size, align, zero);
    if (_rc_span_fits(size, align))
        return _rc_span_alloc(size, align, zero);
    return _rc_large_malloc(size, align, zero);
}

/* A sampled block lives in a span if the block it stands for would (and
   then its reallocs are counted as that one's, prof.c: realloc); else on
   the large side. */
static bool sampled_in_span(size_t size, size_t align)
{
    return class_placed(size, align) >= RC_NCLASSES && _rc_span_fits(size, align);
}

static void *alloc_aligned(size_t size, size_t align, bool zero)
{
    _rc_ensure_init();             /* the first request may be a large one */
    if (_rc_prof_due(size))        /* the heap profiler (prof.h) */
        return _rc_prof_alloc(size, align, zero, sampled_in_span(size, align));
    return alloc_placed(size, align, zero);
}

/* The fast path's count ran out (alloc.h): sampled, or not after all. */
void *_rc_malloc_counted_out(size_t size)
{
    if (_rc_prof_take(&_rc_heap_tls->prof_left, size))
        return _rc_prof_alloc(size, 0, false, false);
    return fast_alloc_class(_rc_class_of(size));
}

/* The fast path found its cache empty: refill, then count (the thread may
   just have got its heap). */
void *_rc_malloc_slow_counted(rc_heap_t *h, unsigned cls, size_t size)
{
    void *p = _rc_malloc_slow(h, cls);
    if (p != NULL && _rc_prof_due(size)) {
        void *q = _rc_prof_alloc(size, 0, false, false);
        if (q != NULL) {
            free_pool_block(p);
            return q;
        }
    }
    return p;
}

/* A block for realloc to move into, not counted by the heap profiler:
   realloc counted its new size once already. */
static void *realloc_target(size_t size)
{
    if (rc_likely(size - 1 < _rc_fast_max))
        return fast_alloc_class(_rc_class_of(size));
    return alloc_placed(size, 0, false);
}

void *_rc_malloc_uncounted(size_t size)     /* span.c's realloc moves */
{
    return realloc_target(size);
}

/* realloc's move of a pool block into a sampled block: a span where
   realloc_placed would move the unsampled block into a span, else on the
   large side (prof.c: realloc -- for the estimates, a block's next realloc
   must be counted the same way whether it was sampled or not). */
static RC_NOINLINE void *realloc_sampled(void *ptr, size_t size)
{
    void *q = _rc_prof_alloc(size, 0, false,
                             _rc_span_grows_into(_rc_pool_of(ptr)->block_size, size));
    if (q == NULL)
        return NULL;
    size_t old = _rc_usable_size(ptr);
    memcpy(q, ptr, old < size ? old : size);
    fast_free(ptr);
    return q;
}

void *_rc_malloc_generic(size_t size)
{
    return alloc_aligned(size, 0, false);
}

void _rc_free_generic(void *ptr)
{
    if (ptr == NULL)
        return;
    if (_rc_map_of(ptr) == RC_MAP_CHECKED) {
        if (_rc_checked & RC_CHECK_SECURE)
            _rc_secure_free(ptr);
        else
            checked_pool_free(ptr);
        return;
    }
    if (rc_unlikely(_rc_checked & (RC_CHECK_DEBUG | RC_CHECK_SECURE))) {
        _rc_debug_free(ptr, "free");
        return;
    }
    if (rc_unlikely(_rc_checked)) {
        rc_track_free(ptr);
        rc_track_quiet();
        _rc_large_free(ptr);
        rc_track_loud();
        return;
    }
    _rc_large_free(ptr);
}

void *_rc_malloc(size_t size)
{
    return fast_alloc(size);
}

void _rc_free(void *ptr)
{
    fast_free(ptr);
}

void *_rc_calloc(size_t count, size_t size)
{
    size_t total;
    if (rc_unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    if (rc_likely(total - 1 < _rc_fast_max)) {
        void *p = fast_alloc_counted(_rc_class_of(total), total);
        if (p)
            memset(p, 0, total);
        return p;
    }
    return alloc_aligned(total, 0, true);
}

size_t _rc_usable_size(const void *ptr)
{
    if (_rc_is_pool_block(ptr)) {
        if (rc_unlikely(_rc_checked & RC_CHECK_SECURE))
            return _rc_secure_usable(ptr);   /* the request: the rest is canary */
        if (rc_unlikely(_rc_checked & RC_CHECK_VALGRIND))
            return checked_usable(ptr, _rc_pool_of(ptr)->block_size);
        return _rc_pool_of(ptr)->block_size;
    }
    if (ptr == NULL)
        return 0;
    if (rc_unlikely(_rc_checked & (RC_CHECK_DEBUG | RC_CHECK_SECURE)))
        return _rc_debug_usable(ptr);
    if (rc_unlikely(_rc_checked & RC_CHECK_VALGRIND))
        return checked_usable(ptr, _rc_large_usable(ptr));
    return _rc_large_usable(ptr);
}

void *_rc_memalign(size_t align, size_t size)
{
    return alloc_aligned(size, align, false);
}

/* The smallest power of two above size, at most the small max. */
static size_t grown_size(size_t size)
{
    if (size >= _rc_small_max)
        return size;
    size_t p2 = _rc_pow2_above(size);
    return p2 < _rc_small_max ? p2 : _rc_small_max;
}

RC_INLINE void *realloc_placed(void *ptr, size_t size, bool prof);

/* A block of a size-class pool (not a span, not the large side): its free
   never reaches the heap profiler. */
static bool _rc_is_small_block(const void *ptr)
{
    return _rc_is_pool_block(ptr) && _rc_pool_of(ptr)->cls != RC_SPAN_CLASS;
}

/* With the heap profiler on, a realloc'ed block must end up sampled with
   the probability of a block of its new size (prof.c: realloc).  A pool
   block or a block of the large side is sampled afresh, whatever it was (as
   jemalloc's profiler has it): its requested size is not known, and it may
   have grown into room it was given without a word to the allocator.  The
   large side's are sampled where realloc leaves them (their frees tell the
   profiler); a pool block is moved to be sampled.  Nothing realloc_placed
   allocates is counted again.  realloc counts on a count of its own
   (prof.h), so that the inlined test below is short: every count is a
   Poisson process over the bytes it is given, whichever they are. */
static RC_NOINLINE void *realloc_profiled(void *ptr, size_t size)
{
    bool sample = _rc_prof_due_on(&_rc_prof_left_realloc, size);
    if (!_rc_is_small_block(ptr))
        _rc_prof_forget(ptr);      /* the sample of its last allocation */
    else if (sample)
        return realloc_sampled(ptr, size);
    void *q = realloc_placed(ptr, size, false);
    if (sample && q != NULL) {
        if (_rc_is_small_block(q))
            return realloc_sampled(q, size);   /* it shrank into a pool */
        _rc_prof_sample_at(q, size);
    }
    return q;
}

/* A span grows by what it grows by (prof.c: realloc): its exact size is
   its record's, or its header's high-water mark.  A shrink is sampled
   afresh. */
static RC_NOINLINE void *realloc_span_profiled(void *ptr, size_t size)
{
    rc_prof_rec_t *r = _rc_prof_unlink(ptr);
    size_t old = r ? _rc_prof_rec_size(r) : (size_t)(_rc_pool_of(ptr)->bump - (char *)ptr);
    bool sampled = r != NULL && _rc_prof_rec_sampled(r), sample;
    if (size >= old) {
        sample = !sampled && _rc_prof_due_on(&_rc_prof_left_realloc, size - old);
    } else {
        if (sampled) {
            _rc_prof_drop(r);      /* counted as freed */
            r = NULL;
            sampled = false;
        }
        sample = _rc_prof_due_on(&_rc_prof_left_realloc, size);
    }
    void *q = realloc_placed(ptr, size, false);
    if (q == NULL) {               /* ptr stays as it was */
        if (r && sampled)
            _rc_prof_relink(r, ptr, old);
        else if (r)
            _rc_prof_note(r, ptr, old);
        return NULL;
    }
    if (sampled || sample) {
        if (_rc_is_small_block(q)) {           /* it shrank into a pool */
            if (sampled)
                _rc_prof_drop(r);
            return realloc_sampled(q, size);
        }
        if (sampled) {
            if (!_rc_is_pool_block(q))
                _rc_large_mark_sampled(q);     /* it moved to the large side */
            _rc_prof_relink(r, q, size);
        } else {
            _rc_prof_sample_at(q, size);
            if (r)
                _rc_prof_drop(r);              /* a note */
        }
    } else if (_rc_is_pool_block(q) && _rc_pool_of(q)->bump != (char *)q + size) {
        _rc_prof_note(r, q, size); /* shrunk in place: the mark is above it */
    } else if (r) {
        _rc_prof_drop(r);          /* a note no longer needed */
    }
    return q;
}

/* realloc's count of n bytes, when it does not run out: true if taken. */
RC_INLINE bool realloc_count(size_t n)
{
    int64_t c = (int64_t)(n & PTRDIFF_MAX);
    if (rc_unlikely(_rc_prof_left_realloc < c))
        return false;
    _rc_prof_left_realloc -= c;
    return true;
}

void *_rc_realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return fast_alloc(size);
    if (size == 0) {               /* glibc: realloc(p, 0) frees p */
        fast_free(ptr);
        return NULL;
    }
    if (rc_unlikely(_rc_checked)) {
        if (_rc_checked & RC_CHECK_DEBUG)
            return _rc_debug_realloc(ptr, size);
        /* valgrind: always move, so memcheck sees exact block sizes */
        size_t old = _rc_usable_size(ptr);
        void *q = alloc_aligned(size, 0, false);
        if (q == NULL)
            return NULL;
        rc_track_quiet();
        memcpy(q, ptr, old < size ? old : size);
        rc_track_loud();
        _rc_free_generic(ptr);
        return q;
    }
    /* the profiler's copy, inlined too: its tests go where it knows what
       the block is, and a call here costs a second prologue.  An empty asm
       hides ptr's value in it, so that nothing of it is computed above the
       test (where the compiler put it, it cost the copy without the
       profiler an instruction). */
    if (rc_unlikely(_rc_prof_on)) {
        void *hidden = ptr;
        __asm__("" : "+r"(hidden));
        return realloc_placed(hidden, size, true);
    }
    return realloc_placed(ptr, size, false);
}

/* realloc proper: ptr is a live block, size is not 0.  Inlined: a call
   here cost the realloc row 7% of its instructions.  With prof (the heap
   profiler on), what needs nothing of the profiler but its count -- a pool
   block whose count does not run out, a span that does not shrink, has no
   record (hint 0) and whose growth does not run it out -- takes its count
   here; the rest goes to the two functions above. */
RC_INLINE void *realloc_placed(void *ptr, size_t size, bool prof)
{
    if (!_rc_is_pool_block(ptr)) {
        if (prof)
            return realloc_profiled(ptr, size);
        size_t usable = _rc_large_usable(ptr);
        if (size <= usable && size >= usable / 4)
            return ptr;            /* fits: a growing buffer keeps its extent */
        if (_rc_span_fits(size, 0)) {
            /* shrinking a large block a lot: to a pool or a span; a small
               block here (a heap-profile sample, an odd alignment) growing:
               as a pool block would, not up jemalloc's classes one copy at
               a time */
            void *q = size < usable                ? realloc_target(size)
                      : size > _rc_span_growth_from() ? _rc_span_grown(size)
                                                 : realloc_target(grown_size(size));
            if (q == NULL)
                return NULL;
            memcpy(q, ptr, size < usable ? size : usable);
            _rc_large_free(ptr);
            return q;
        }
        return _rc_large_realloc(ptr, size);
    }
    rc_pool_t *pool = _rc_pool_of(ptr);
    if (pool->cls == RC_SPAN_CLASS) {
        if (prof) {
            size_t old = (size_t)(pool->bump - (char *)ptr);
            if (size < old ||
                atomic_load_explicit(_rc_prof_hint(ptr), memory_order_relaxed) != 0 ||
                !realloc_count(size - old))
                return realloc_span_profiled(ptr, size);
        }
        return _rc_span_realloc(ptr, size);
    }
    if (prof && !realloc_count(size))
        return realloc_profiled(ptr, size);
    size_t bs = pool->block_size;
    if (size <= bs && size >= bs / 2)
        return ptr;                /* still fits its class, or near enough */
    void *q;
    if (size <= bs)
        q = realloc_target(size);
    else if (_rc_span_grows_into(bs, size))
        q = _rc_span_grown(size);
    else
        /* growing inside the pools: to the next power of two, so a buffer
           grown in small steps is copied every few steps, not every one,
           and growing buffers share a few classes' pools (a quarter of
           them) instead of leaving pages in every class they pass through */
        q = realloc_target(grown_size(size));
    if (q == NULL)
        return NULL;               /* errno is ENOMEM; ptr stays valid */
    memcpy(q, ptr, size < bs ? size : bs);
    fast_free(ptr);
    return q;
}

size_t _rc_trim(void)
{
    _rc_ensure_init();
    if (_rc_checked & RC_CHECK_SECURE)
        _rc_secure_drain();
    rc_track_quiet();
    _rc_heap_trim(_rc_heap_tls);
    rc_track_loud();
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
