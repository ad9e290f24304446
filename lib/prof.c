/*
 * prof.c -- the sampling heap profiler: RCMALLOC_PROF=1 (SPEC 4.2).
 * Main entry points: _rc_prof_take and _rc_prof_alloc (from alloc.c's slow
 * path, see prof.h), _rc_prof_forget (from large.c's free), rc_prof_dump.
 *
 * Sampling.  Each thread counts the bytes it allocates down from a random
 * number drawn from an exponential distribution of mean
 * RCMALLOC_PROF_SAMPLE; the allocation that takes the count below zero is
 * sampled and a new count drawn.  The sample points then form a Poisson
 * process over the bytes allocated, so a block of s bytes is sampled with
 * probability 1 - exp(-s/rate) whatever came before it (tcmalloc's and
 * jemalloc's scheme; random intervals do not alias with periodic
 * allocation patterns).
 *
 * What is recorded.  A sample's call stack, without the allocator's own
 * frames, and its requested size go to a bucket per (stack, size class);
 * the block's address goes to a table of live records, from which its free
 * -- in whatever thread -- removes it.  The table also holds notes: the
 * requested size of an unsampled span that realloc shrank in place (see
 * realloc, below).  A dump writes each bucket's raw
 * sample counts, in use and allocated since start, in gperftools' heap
 * profile format with "heap_v2/<rate>": pprof itself weighs each line by
 * 1/(1 - exp(-s/rate)) for the line's mean size s.  The classes are eighths
 * of a power of two, so that weight is within a fraction of a percent of
 * each sample's own (and exactly right for blocks much smaller than the
 * rate, whose weighted bytes are the rate whatever their size); sizes of 16
 * rates and more share a class: their weight is 1 to seven digits.
 *
 * realloc.  A block realloc'ed is, for the estimates, one allocation of its
 * new size: it must end up sampled with the probability of a block of that
 * size, 1 - exp(-s/rate).  A span's exact size is known -- its record's,
 * or else its pool header's high-water mark (span.c: exact unless it
 * shrank in place, which leaves a note here) -- so a span grown from s0 to
 * s1 counts only the s1 - s0 bytes it grew by: kept if it was sampled
 * (its record re-sized), sampled if the count runs out in those bytes,
 * which happens with probability 1 - exp(-(s1-s0)/rate), so that it is
 * sampled with probability 1 - exp(-s1/rate) in all (the intervals are
 * memoryless).  A buffer grown by steps then costs one sample per rate
 * bytes it reaches, not per rate bytes summed over its steps.  Any other
 * realloc -- a shrink, or a pool or large block, whose requested size is
 * not known -- is sampled afresh, whatever the block was: the count takes
 * its whole new size (as jemalloc's profiler has it).  For this to hold,
 * which of the two ways a realloc is counted must not depend on whether
 * the block was sampled before: so a sampled block is a span exactly when
 * the block would be one unsampled (alloc.c: sampled_in_span and
 * realloc_sampled), and every realloc of a block outside spans is sampled
 * afresh.
 *
 * Where sampled blocks live.  In a span where the unsampled block would be
 * in one (its free, a slow path already, asks the profiler while it is
 * on); otherwise on the large side (jemalloc), whose live set marks them:
 * their free looks the pointer up anyway.  A pool block's free never
 * checks anything.
 *
 * Stacks.  libunwind's unw_backtrace (Debian's libunwind8), loaded with
 * dlopen when the profiler starts, so that a process that does not profile
 * never maps it: measured, 0.17 us for 5 frames and 0.8 us for 15, against
 * 2.4 and 9.5 us for libgcc's _Unwind_Backtrace (which glibc's backtrace()
 * uses), since libunwind caches what it learns of each frame -- per
 * thread, and setting that cache up costs a thread about 450 us.  So a
 * thread's first PROF_GCC_FIRST samples use libgcc's unwinder (large.c's
 * rcje__Unwind_* look it up), and only a thread that samples more uses
 * libunwind (and jemalloc's thread cache for its sampled blocks, large.c).
 * Without libunwind, and in a forked child (libunwind's cache
 * has a lock another thread may have held at the fork), libgcc's is used
 * throughout; with glibc 2.35 and later it finds unwind tables with
 * _dl_find_object, without locks or allocation.  A thread-local
 * flag keeps anything allocated while a stack is taken from being sampled
 * in turn.  The profiler's own memory comes from
 * mmap, never from the allocator; its one lock is a leaf (nothing else is
 * taken while it is held) with fork handlers in init.c.
 */
#define _GNU_SOURCE 1   /* dl_iterate_phdr, strerrordesc_np */
#include "internal.h"
#include "prof.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
#include <unwind.h>

#define PROF_DEPTH     64          /* frames kept per stack */
#define PROF_CHUNK     ((size_t)1 << 20)
#define PROF_STACKS    4096        /* bucket hash heads */
#define PROF_GCC_FIRST 16          /* a thread's samples before libunwind */

bool _rc_prof_on;
__thread int64_t _rc_prof_left_noheap; /* 0: a new thread's first block asks */
__thread int64_t _rc_prof_left_realloc;
__thread bool _rc_prof_many;           /* more than PROF_GCC_FIRST stacks */
static __thread uint64_t prof_rng;     /* 0 until the thread's first sample */
static __thread bool prof_busy;        /* taking a stack: do not sample */
static __thread unsigned prof_stacks;  /* stacks this thread has taken */

static int64_t prof_rate;
static char prof_prefix[PATH_MAX - 32];
static uintptr_t self_lo, self_hi;     /* our code: frames skipped at the top */
static unsigned dump_seq;
static int (*unw_backtrace_fn)(void **buffer, int size);   /* libunwind's */

typedef struct prof_bucket {
    struct prof_bucket *next;
    uint64_t hash;
    size_t size_key;
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    unsigned depth;
    uintptr_t pcs[];
} prof_bucket_t;

typedef struct prof_sample {
    struct prof_sample *next;
    uintptr_t ptr;
    prof_bucket_t *bucket;
    size_t size;
} prof_sample_t;

static rc_lock_t prof_lock = RC_LOCK_INIT;
static prof_bucket_t *stacks[PROF_STACKS];
static prof_sample_t **samples;        /* chained by address */
static size_t samples_cap, samples_used;
/* Live records per hash of their address, read without the lock (prof.h:
   _rc_prof_hint): a span's or a large block's free, or realloc, asks the
   table only when its count is not zero. */
_Atomic uint32_t _rc_prof_hints[(size_t)1 << RC_PROF_HINT_BITS];
static prof_sample_t *sample_free;     /* recycled records */
static char *mem_next, *mem_end;       /* bump allocation from mmap'ed chunks */

void _rc_prof_lock(void)       { pthread_mutex_lock(&prof_lock); }
void _rc_prof_unlock(void)     { pthread_mutex_unlock(&prof_lock); }
void _rc_prof_fork_child(void)
{
    pthread_mutex_init(&prof_lock, NULL);
    unw_backtrace_fn = NULL;       /* its cache's lock may be held: libgcc's */
}

/* ---- random intervals --------------------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A thread's generator starts from the kernel's AT_RANDOM bytes and the
   thread's own TLS address, so threads do not sample in step. */
static void rng_seed(void)
{
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    uint64_t k = 0;
    if (r != NULL)
        memcpy(&k, r, sizeof k);
    prof_rng = splitmix(k ^ (uintptr_t)&prof_rng) | 1;
}

static uint64_t rng_next(void)           /* xorshift64* */
{
    uint64_t x = prof_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    prof_rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Natural logarithm of x in (0, 1], without libm (not loaded into every
   process for this): x = m * 2^e with m in [sqrt(1/2), sqrt(2)), and
   ln m = 2 atanh(t), t = (m-1)/(m+1), |t| < 0.172, by its series. */
static double prof_ln(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    double m;
    memcpy(&m, &bits, sizeof m);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    double t = (m - 1) / (m + 1), t2 = t * t;
    double series = 1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 +
                    t2 * (1.0 / 11 + t2 * (1.0 / 13 + t2 * (1.0 / 15)))))));
    return e * 0.6931471805599453 + 2 * t * series;
}

/* Bytes to the next sample: floor of an exponential variate of mean rate,
   so that a block of s bytes (an integer) is sampled iff the variate is
   below s. */
static int64_t next_interval(void)
{
    double u = (double)((rng_next() >> 11) + 1) * 0x1p-53;     /* (0, 1] */
    return (int64_t)(-prof_ln(u) * (double)prof_rate);
}

bool _rc_prof_take(int64_t *left, size_t size)
{
    if (!_rc_prof_on) {
        *left = INT64_MAX;             /* never again on this count */
        return false;
    }
    int64_t n = (int64_t)(size & PTRDIFF_MAX);
    if (rc_unlikely(prof_rng == 0))
        rng_seed();
    if (*left + n == 0) {
        /* a new count (a new heap's is 0): draw it, then count this block */
        *left = next_interval() - n;
        if (*left >= 0)
            return false;
    }
    *left = next_interval();
    return !prof_busy;
}

/* ---- stacks --------------------------------------------------------------- */

_Unwind_Reason_Code rcje__Unwind_Backtrace(_Unwind_Trace_Fn trace, void *arg);
_Unwind_Ptr rcje__Unwind_GetIP(struct _Unwind_Context *ctx);

typedef struct {
    uintptr_t *pcs;
    unsigned n;
} trace_t;

static _Unwind_Reason_Code trace_frame(struct _Unwind_Context *ctx, void *arg)
{
    trace_t *t = arg;
    uintptr_t ip = rcje__Unwind_GetIP(ctx);
    if (ip == 0 || t->n == PROF_DEPTH + 1)
        return _URC_END_OF_STACK;
    t->pcs[t->n++] = ip;
    return _URC_NO_REASON;
}


/* The caller's stack into pcs (PROF_DEPTH + 1 slots), without the frames
   of this library at its top: malloc, rc_new...; the first frame left is
   the site.  Returns the number of frames.  Inlined: a frame less to
   unwind (libunwind's cost is per frame). */
RC_INLINE unsigned take_stack(uintptr_t *pcs)
{
    unsigned n, skip = 0;
    prof_busy = true;
    if (prof_stacks <= PROF_GCC_FIRST)
        _rc_prof_many = ++prof_stacks > PROF_GCC_FIRST;
    if (unw_backtrace_fn && _rc_prof_many) {
        int got = unw_backtrace_fn((void **)pcs, PROF_DEPTH + 1);
        n = got > 0 ? (unsigned)got : 0;
    } else {
        trace_t t = { pcs, 0 };
        rcje__Unwind_Backtrace(trace_frame, &t);
        n = t.n;
    }
    prof_busy = false;
    while (skip < n && pcs[skip] >= self_lo && pcs[skip] < self_hi)
        skip++;
    if (skip == n)
        skip = 0;                  /* all ours (or none known): keep them */
    n -= skip;
    if (n > PROF_DEPTH)
        n = PROF_DEPTH;
    memmove(pcs, pcs + skip, n * sizeof *pcs);
    return n;
}

/* The executable segments of the object that holds this code.  Linked
   statically, that object is the program itself: then no frame is skipped
   (the allocator's own frames show at the top of every stack). */
static int find_self(struct dl_phdr_info *info, size_t len, void *arg)
{
    uintptr_t me = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
    bool mine = false;
    (void)len;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
        mine |= me >= a && me < b;
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    if (!mine)
        return 0;
    if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
        self_lo = lo;
        self_hi = hi;
    }
    return 1;
}

/* ---- the profiler's memory: mmap'ed, never freed ------------------------ */

static void *mem_take_locked(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if ((size_t)(mem_end - mem_next) < size) {
        size_t chunk = size > PROF_CHUNK ? size : PROF_CHUNK;
        char *c = _rc_os_map(chunk);
        if (c == NULL)
            return NULL;
        mem_next = c;
        mem_end = c + chunk;
    }
    void *p = mem_next;
    mem_next += size;
    return p;
}

static uint64_t stack_hash(const uintptr_t *pcs, unsigned depth, size_t size_key)
{
    uint64_t h = size_key * 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < depth; i++)
        h = (h ^ pcs[i]) * 0x100000001B3ull;
    return splitmix(h);
}

/* A size's class: its top four bits and its magnitude. */
static size_t size_key(size_t size)
{
    if (size >= (size_t)prof_rate * 16)
        return SIZE_MAX;
    if (size < 16)
        return size;
    unsigned shift = 60 - (unsigned)__builtin_clzll((unsigned long long)size);
    return (size >> shift) << shift;
}

static prof_bucket_t *bucket_locked(const uintptr_t *pcs, unsigned depth, size_t size)
{
    size_t key = size_key(size);
    uint64_t h = stack_hash(pcs, depth, key);
    prof_bucket_t **head = &stacks[h % PROF_STACKS], *b;
    for (b = *head; b; b = b->next)
        if (b->hash == h && b->size_key == key && b->depth == depth &&
            memcmp(b->pcs, pcs, depth * sizeof *pcs) == 0)
            return b;
    b = mem_take_locked(sizeof *b + depth * sizeof *pcs);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof *b);
    b->hash = h;
    b->size_key = key;
    b->depth = depth;
    memcpy(b->pcs, pcs, depth * sizeof *pcs);
    b->next = *head;
    *head = b;
    return b;
}

static size_t sample_slot(uintptr_t ptr)
{
    return (size_t)(((ptr >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & (samples_cap - 1);
}

/* The live-sample table doubles (rechained) when it averages two a chain. */
static bool samples_grow_locked(void)
{
    size_t ncap = samples_cap ? samples_cap * 2 : 4096, ocap = samples_cap;
    prof_sample_t **old = samples, **nt = _rc_os_map(ncap * sizeof *nt);
    if (nt == NULL)
        return false;
    samples = nt;
    samples_cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        for (prof_sample_t *s = old[i], *next; s; s = next) {
            next = s->next;
            prof_sample_t **head = &samples[sample_slot(s->ptr)];
            s->next = *head;
            *head = s;
        }
    if (old)
        _rc_os_unmap(old, ocap * sizeof *old);
    return true;
}

/* Put a record in the table (it holds ptr); false if the table cannot
   grow. */
static bool link_locked(prof_sample_t *s)
{
    if (samples_used >= samples_cap * 2 && !samples_grow_locked())
        return false;
    prof_sample_t **head = &samples[sample_slot(s->ptr)];
    s->next = *head;
    *head = s;
    samples_used++;
    atomic_fetch_add_explicit(_rc_prof_hint((void *)s->ptr), 1, memory_order_relaxed);
    return true;
}

/* Take ptr's record out of the table: NULL if none. */
static prof_sample_t *unlink_locked(uintptr_t ptr)
{
    if (samples_cap == 0)
        return NULL;
    prof_sample_t **link = &samples[sample_slot(ptr)], *s;
    for (; (s = *link) != NULL; link = &s->next)
        if (s->ptr == ptr) {
            *link = s->next;
            samples_used--;
            atomic_fetch_sub_explicit(_rc_prof_hint((void *)ptr), 1, memory_order_relaxed);
            return s;
        }
    return NULL;
}

/* A record out of the table is done with: a sample counts as freed. */
static void retire_locked(prof_sample_t *s)
{
    if (s->bucket) {
        s->bucket->frees++;
        s->bucket->free_bytes += s->size;
    }
    s->next = sample_free;
    sample_free = s;
}

static prof_sample_t *rec_new_locked(void)
{
    prof_sample_t *s = sample_free;
    if (s)
        sample_free = s->next;
    else
        s = mem_take_locked(sizeof *s);
    return s;
}

static void record(void *ptr, size_t size, const uintptr_t *pcs, unsigned depth)
{
    pthread_mutex_lock(&prof_lock);
    prof_bucket_t *b = bucket_locked(pcs, depth, size);
    prof_sample_t *s = b ? rec_new_locked() : NULL;
    if (s) {
        s->ptr = (uintptr_t)ptr;
        s->bucket = b;
        s->size = size;
        if (link_locked(s)) {
            b->allocs++;
            b->alloc_bytes += size;
        } else {
            s->bucket = NULL;      /* out of memory: this sample is lost */
            retire_locked(s);
        }
    }
    pthread_mutex_unlock(&prof_lock);
}

/* A sampled block: in a span (whose free tells us, span.c) where the
   caller says the unsampled block would be one, else on the large side,
   whose live set marks it. */
void *_rc_prof_alloc(size_t size, size_t align, bool zero, bool span)
{
    uintptr_t pcs[PROF_DEPTH + 1];
    unsigned depth = take_stack(pcs);
    void *p = span ? _rc_span_alloc(size, align, zero)
                   : _rc_large_malloc_sampled(size, align, zero);
    if (p)
        record(p, size, pcs, depth);
    return p;
}

void _rc_prof_forget_at(const void *ptr)
{
    pthread_mutex_lock(&prof_lock);
    prof_sample_t *s = unlink_locked((uintptr_t)ptr);
    if (s)
        retire_locked(s);
    pthread_mutex_unlock(&prof_lock);
}

/* ---- realloc of a span (alloc.c; see realloc above) ---------------------- */

rc_prof_rec_t *_rc_prof_unlink_at(const void *ptr)
{
    pthread_mutex_lock(&prof_lock);
    prof_sample_t *s = unlink_locked((uintptr_t)ptr);
    pthread_mutex_unlock(&prof_lock);
    return s;
}

size_t _rc_prof_rec_size(const rc_prof_rec_t *r)   { return r->size; }
bool   _rc_prof_rec_sampled(const rc_prof_rec_t *r) { return r->bucket != NULL; }

/* A sample taken out by _rc_prof_unlink back in the table, at ptr with
   size bytes: one allocation of that size at its stack (moved to the
   bucket of its new size class). */
void _rc_prof_relink(rc_prof_rec_t *r, void *ptr, size_t size)
{
    pthread_mutex_lock(&prof_lock);
    prof_bucket_t *b = r->bucket;
    if (size_key(size) != b->size_key) {
        prof_bucket_t *nb = bucket_locked(b->pcs, b->depth, size);
        if (nb != NULL) {
            b->allocs--;
            b->alloc_bytes -= r->size;
            nb->allocs++;
            nb->alloc_bytes += r->size;
            r->bucket = b = nb;
        }
    }
    b->alloc_bytes += size - r->size;    /* modulo 2^64 when it shrinks */
    r->ptr = (uintptr_t)ptr;
    r->size = size;
    if (!link_locked(r))
        retire_locked(r);          /* out of memory: the sample ends here */
    pthread_mutex_unlock(&prof_lock);
}

/* An unsampled span at ptr whose header's high-water mark is above its
   size: the size is noted (in r, a note taken out by _rc_prof_unlink, or
   in a new one when r is NULL).  Without memory for it, the note is lost:
   the span's next growth would then count from the mark. */
void _rc_prof_note(rc_prof_rec_t *r, void *ptr, size_t size)
{
    pthread_mutex_lock(&prof_lock);
    if (r == NULL)
        r = rec_new_locked();
    if (r != NULL) {
        r->ptr = (uintptr_t)ptr;
        r->bucket = NULL;
        r->size = size;
        if (!link_locked(r))
            retire_locked(r);
    }
    pthread_mutex_unlock(&prof_lock);
}

/* A record taken out by _rc_prof_unlink is done with: a sample counts as
   freed. */
void _rc_prof_drop(rc_prof_rec_t *r)
{
    pthread_mutex_lock(&prof_lock);
    retire_locked(r);
    pthread_mutex_unlock(&prof_lock);
}

/* A span or a block of the large side sampled where it is (realloc). */
void _rc_prof_sample_at(void *ptr, size_t size)
{
    uintptr_t pcs[PROF_DEPTH + 1];
    unsigned depth = take_stack(pcs);
    if (!_rc_is_pool_block(ptr))
        _rc_large_mark_sampled(ptr);
    record(ptr, size, pcs, depth);
}

/* ---- the dump ------------------------------------------------------------- */

/* Written through one static buffer, under the lock: a dump allocates
   nothing. */
typedef struct {
    int fd, err;
    size_t n;
    char buf[1 << 16];
} out_t;

static out_t out;

static void out_flush(void)
{
    for (size_t done = 0; done < out.n && !out.err;) {
        ssize_t w = write(out.fd, out.buf + done, out.n - done);
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno != EINTR)
            out.err = errno;
    }
    out.n = 0;
}

static void out_str(const char *s, size_t len)
{
    while (len) {
        if (out.n == sizeof out.buf)
            out_flush();
        size_t k = sizeof out.buf - out.n < len ? sizeof out.buf - out.n : len;
        memcpy(out.buf + out.n, s, k);
        out.n += k;
        s += k;
        len -= k;
    }
}

static void out_num(uint64_t v, unsigned base, const char *prefix)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    do {
        *--p = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    out_str(prefix, strlen(prefix));
    out_str(p, (size_t)(e - p));
}

/* "<inuse objs>: <inuse bytes> [<alloc objs>: <alloc bytes>] @" */
static void out_counts(uint64_t n1, uint64_t s1, uint64_t n2, uint64_t s2)
{
    out_num(n1, 10, "");
    out_num(s1, 10, ": ");
    out_num(n2, 10, " [");
    out_num(s2, 10, ": ");
    out_str("] @", 3);
}

static void dump_locked(void)
{
    uint64_t t[4] = { 0, 0, 0, 0 };
    for (size_t i = 0; i < PROF_STACKS; i++)
        for (prof_bucket_t *b = stacks[i]; b; b = b->next) {
            t[0] += b->allocs - b->frees;
            t[1] += b->alloc_bytes - b->free_bytes;
            t[2] += b->allocs;
            t[3] += b->alloc_bytes;
        }
    out_str("heap profile: ", 14);
    out_counts(t[0], t[1], t[2], t[3]);
    out_num((uint64_t)prof_rate, 10, " heap_v2/");
    out_str("\n", 1);
    for (size_t i = 0; i < PROF_STACKS; i++)
        for (prof_bucket_t *b = stacks[i]; b; b = b->next) {
            out_counts(b->allocs - b->frees, b->alloc_bytes - b->free_bytes,
                       b->allocs, b->alloc_bytes);
            /* pprof takes every address but the first for a return address
               and looks one byte back; the first is given as the call's */
            for (unsigned d = 0; d < b->depth; d++)
                out_num(b->pcs[d] - (d == 0), 16, " 0x");
            if (b->depth == 0)
                out_str(" 0x0", 4);
            out_str("\n", 1);
        }
    out_str("\nMAPPED_LIBRARIES:\n", 19);
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps < 0) {
        out.err = errno;
        return;
    }
    for (;;) {
        if (out.n == sizeof out.buf)
            out_flush();
        ssize_t r = read(maps, out.buf + out.n, sizeof out.buf - out.n);
        if (r > 0)
            out.n += (size_t)r;
        else if (r == 0 || errno != EINTR)
            break;
    }
    close(maps);
    out_flush();
}

/* Dump to path; 0, or an errno value. */
static int dump_to(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    pthread_mutex_lock(&prof_lock);
    out.fd = fd;
    out.err = 0;
    out.n = 0;
    dump_locked();
    int err = out.err;
    pthread_mutex_unlock(&prof_lock);
    if (close(fd) != 0 && err == 0)
        err = errno;
    return err;
}

/* <prefix>.<pid>.heap, or <prefix>.<pid>.<seq>.heap for seq > 0 */
static void dump_name(char *buf, size_t len, unsigned seq)
{
    if (seq)
        _rc_format(buf, len, "%s.%d.%u.heap", prof_prefix, (int)getpid(), seq);
    else
        _rc_format(buf, len, "%s.%d.heap", prof_prefix, (int)getpid());
}

RC_API int rc_prof_dump(const char *path)
{
    if (!_rc_prof_on) {
        errno = EINVAL;
        return -1;
    }
    char name[PATH_MAX];
    if (path == NULL) {
        dump_name(name, sizeof name,
                  __atomic_add_fetch(&dump_seq, 1, __ATOMIC_RELAXED));
        path = name;
    }
    int err = dump_to(path);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

void _rc_prof_exit(void)
{
    char name[PATH_MAX];
    int saved = errno;
    dump_name(name, sizeof name, 0);
    int err = dump_to(name);
    if (err)
        _rc_printf_err("rcmalloc: cannot write the heap profile %s: %s\n", name,
                       strerrordesc_np(err));
    errno = saved;
}

void _rc_prof_start(void)
{
    if (_rc_prof_on)
        return;
    if (_rc_checked) {
        _rc_write_err("rcmalloc: RCMALLOC_PROF is ignored with RCMALLOC_DEBUG "
                      "or under valgrind\n");
        return;
    }
    prof_rate = _rc_opt.prof_sample;
    const char *prefix = _rc_env_get("RCMALLOC_PROF_PREFIX");
    if (prefix == NULL || *prefix == '\0')
        prefix = "rcmalloc";
    if (strlen(prefix) >= sizeof prof_prefix) {
        _rc_printf_err("rcmalloc: RCMALLOC_PROF_PREFIX is too long; using \"rcmalloc\"\n");
        prefix = "rcmalloc";
    }
    strcpy(prof_prefix, prefix);
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&_rc_prof_start);
    uintptr_t pcs[PROF_DEPTH + 1];
    /* sampling is not on yet: what these allocate is not sampled */
    take_stack(pcs);               /* loads libgcc_s now, not in a sample */
    void *unw = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (unw)
        unw_backtrace_fn = (int (*)(void **, int))dlsym(unw, "unw_backtrace");
    _rc_prof_on = true;
    /* this thread's counts were turned off by its allocations so far (a
       thread started before the profiler -- before this constructor -- is
       not sampled) */
    *_rc_prof_counter() = 0;
    _rc_prof_left_noheap = 0;
}
