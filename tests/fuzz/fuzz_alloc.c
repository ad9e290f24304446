/*
 * fuzz_alloc.c -- libFuzzer harness for the allocator entry points of
 * include/rcmalloc.h, checked against a shadow model.
 *
 * The input is a program: each operation byte picks an entry point
 * (rc_malloc, rc_calloc -- overflowing products too --, rc_realloc chains to
 * 0, across every boundary and to impossible sizes, rc_free, rc_free_sized,
 * rc_aligned_alloc and rc_posix_memalign with valid and invalid alignments,
 * rc_usable_size), a slot of the model, and sizes drawn around every
 * boundary of the design: each size class (16 .. 8192), the span sizes (k
 * 64 KiB pools less the pool header, up to 1 MiB) and jemalloc's side
 * beyond.  A helper thread, fed through a queue, frees (and reallocs) blocks
 * the main thread allocated, and allocates blocks the main thread adopts
 * and frees, so both directions of cross-thread free are driven.
 *
 * The model knows every live block's request, usable size, alignment and a
 * fill seed.  Every block is filled over its whole usable size (a program
 * may use all of it), and checked:
 *   - alignment: 16 bytes, or the alignment asked for;
 *   - usable size >= the request;
 *   - no overlap with any other live block;
 *   - contents: the fill is intact when the block is checked, realloc'd or
 *     freed (here or in the helper thread); calloc memory is zero;
 *   - failures: NULL with errno ENOMEM for impossible sizes and
 *     overflowing calloc products, EINVAL for bad alignments, and a failed
 *     rc_realloc leaves the old block valid and intact.
 * Blocks are filled densely up to 16 KiB, then every 1021st byte and the
 * last 512, so multi-MiB blocks stay cheap.
 *
 * Built with clang -fsanitize=fuzzer,address against the library's sources
 * without override.c (as ./configure --disable-override builds them); see
 * tests/fuzz.am.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rcmalloc.h>

#include "fuzz_util.h"

/* malloc_trim's worker (lib/alloc.c): hidden in the library, but linked
   into this binary with it; purging pools and jemalloc's side between
   operations makes the next ones take the slow paths again. */
size_t _rc_trim(void);

/* ---- sizes --------------------------------------------------------------- */

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define POOL (64 * KiB)
#define POOL_HEADER 128       /* lib/internal.h RC_POOL_HEADER */

static const size_t class_sizes[] = {
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
    2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
    9344, 10896, 13072, 16352, 21792, 32704,
};
#define NCLASS (sizeof class_sizes / sizeof class_sizes[0])

/* Boundaries beyond the classes: a span of k pools holds at most
   k * 64 KiB - 128 bytes (16 pools: the span limit); then jemalloc. */
static size_t boundary(unsigned i)
{
    i %= NCLASS + 16 + 6;
    if (i < NCLASS)
        return class_sizes[i];
    i -= NCLASS;
    if (i < 16)
        return (i + 1) * POOL - POOL_HEADER;
    static const size_t far[] = {0, 32 * KiB, 1 * MiB, 2 * MiB, 3 * MiB + 17, 4 * MiB};
    return far[i - 16];
}

/* Largest request.  RCMALLOC_DEBUG=1 (run.sh fuzzes a while in debug mode)
   serves every size the same way, and its quarantine keeps the last 4096
   freed blocks whatever their size, filled: multi-MiB blocks there would
   hold GiBs, so debug runs stay below 64 KiB. */
static size_t max_size = 4 * MiB + 64;

static size_t pick_size(fz_in *in)
{
    unsigned m = fz_u8(in);
    size_t s;
    switch (m & 3) {
    case 0:             /* small, any value */
        s = fz_u16(in) % 1100;
        break;
    case 1: {           /* right at a boundary: -2 .. +2 */
        s = boundary(fz_u8(in));
        int d = (int)(m >> 2) % 5 - 2;
        s = (d < 0 && s < (size_t)-d) ? 0 : s + d;
        break;
    }
    case 2: {           /* near a boundary: -64 .. +63 */
        s = boundary(fz_u8(in));
        int d = (int)(fz_u8(in) & 127) - 64;
        s = (d < 0 && s < (size_t)-d) ? 0 : s + d;
        break;
    }
    default:            /* anywhere up to 4 MiB, weighted to small */
        s = fz_u32(in) % (m & 4 ? max_size : 64 * KiB);
        break;
    }
    return s > max_size ? max_size : s;
}

/* Requests no allocator can serve. */
static size_t pick_huge(fz_in *in)
{
    static const size_t huge[] = {
        SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096, SIZE_MAX / 2 + 1,
        (size_t)PTRDIFF_MAX + 1, (size_t)1 << 62, (size_t)1 << 50,
        (size_t)1 << 48,
    };
    return huge[fz_u8(in) % (sizeof huge / sizeof huge[0])];
}

/* An alignment: valid powers of two up to 4 MiB, most often; or not. */
static size_t pick_align(fz_in *in, bool *valid)
{
    unsigned m = fz_u8(in);
    *valid = true;
    if (m < 200)
        return (size_t)1 << (m % 23);
    *valid = false;
    static const size_t bad[] = {0, 3, 24, 48, 100, 4097, 65536 + 16,
                                 SIZE_MAX, ((size_t)1 << 20) - 1, 12288};
    return bad[m % (sizeof bad / sizeof bad[0])];
}

/* ---- the fill: dense to 16 KiB, then sparse, plus the last 512 bytes --------- */

#define DENSE (16 * KiB)
#define STRIDE 1021
#define TAIL 512

FZ_PLAIN static inline uint8_t pattern(uint32_t seed, size_t i)
{
    return (uint8_t)(seed + i * 0x9d + (i >> 11));
}

/* The filled positions of a region of n bytes, as runs [from, to) with a
   step: everything below DENSE, every STRIDE-th byte after it, the last
   TAIL bytes (tail false: a prefix of a larger fill, whose tail is not
   there). */
typedef struct run { size_t from, to, step; } run;

FZ_PLAIN static int runs_of(size_t n, bool tail, run r[3])
{
    if (n <= DENSE || (tail && n <= DENSE + TAIL)) {
        r[0] = (run){0, n, 1};
        return 1;
    }
    size_t mid = tail ? n - TAIL : n;
    r[0] = (run){0, DENSE, 1};
    r[1] = (run){DENSE, mid, STRIDE};
    r[2] = (run){mid, n, 1};
    return 3;
}

FZ_PLAIN static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    run r[3];
    for (int k = 0, nr = runs_of(n, true, r); k < nr; k++)
        for (size_t i = r[k].from; i < r[k].to; i += r[k].step)
            p[i] = pattern(seed, i);
}

/* The first position in [0, n) that does not hold the fill, or SIZE_MAX. */
FZ_PLAIN static size_t find_bad(const unsigned char *p, size_t n, uint32_t seed, bool tail)
{
    run r[3];
    for (int k = 0, nr = runs_of(n, tail, r); k < nr; k++)
        for (size_t i = r[k].from; i < r[k].to; i += r[k].step)
            if (p[i] != pattern(seed, i))
                return i;
    return SIZE_MAX;
}

FZ_PLAIN static size_t find_nonzero(const unsigned char *p, size_t n)
{
    run r[3];
    for (int k = 0, nr = runs_of(n, true, r); k < nr; k++)
        for (size_t i = r[k].from; i < r[k].to; i += r[k].step)
            if (p[i] != 0)
                return i;
    return SIZE_MAX;
}

/* ---- the model ------------------------------------------------------------ */

typedef struct block {
    unsigned char *p;     /* NULL: the slot is empty */
    size_t req;           /* bytes asked for */
    size_t usable;        /* rc_usable_size at allocation, all filled */
    size_t align;         /* alignment asked for (16 for plain requests) */
    uint32_t seed;
} block;

#define NSLOT 48
static block slots[NSLOT];
static uint32_t next_seed = 1;

static void check_block(const block *b, const char *when)
{
    size_t bad = find_bad(b->p, b->usable, b->seed, true);
    FZ_CHECK(bad == SIZE_MAX,
             "%s: block %p (request %zu, usable %zu) corrupted at offset %zu",
             when, (void *)b->p, b->req, b->usable, bad);
}

/* A block just returned for a request of req bytes aligned to align: check
   it, enter it in slot s (which must be empty) and fill it. */
static void adopt(int s, void *p, size_t req, size_t align, bool zeroed)
{
    FZ_CHECK(p != NULL, "no block for %zu bytes", req);
    size_t a = align < 16 ? 16 : align;
    FZ_CHECK(((uintptr_t)p & (a - 1)) == 0, "%p for %zu bytes not aligned to %zu",
             p, req, a);
    size_t usable = rc_usable_size(p);
    FZ_CHECK(usable >= req, "usable size %zu < request %zu at %p", usable, req, p);
    unsigned char *c = p;
    for (int i = 0; i < NSLOT; i++) {
        const block *o = &slots[i];
        if (o->p == NULL)
            continue;
        FZ_CHECK(o->p != c, "%p handed out twice (request %zu)", p, req);
        FZ_CHECK(c + usable <= o->p || o->p + o->usable <= c,
                 "block %p+%zu overlaps live block %p+%zu", p, usable,
                 (void *)o->p, o->usable);
    }
    if (zeroed) {
        size_t nz = find_nonzero(c, req);
        FZ_CHECK(nz == SIZE_MAX, "calloc block %p (%zu bytes) not zero at %zu", p, req, nz);
    }
    block *b = &slots[s];
    b->p = c;
    b->req = req;
    b->usable = usable;
    b->align = a;
    b->seed = next_seed++;
    fill(b->p, b->usable, b->seed);
}

static void expect_failure(void *p, int err, int want, const char *what, size_t size)
{
    FZ_CHECK(p == NULL, "%s(%zu) succeeded: %p", what, size, p);
    FZ_CHECK(err == want, "%s(%zu): errno %d, expected %d", what, size, err, want);
}

/* ---- the helper thread: frees, reallocs and allocates on the other side -------- */

enum { Q_FREE, Q_FREE_SIZED, Q_REALLOC_FREE, Q_ALLOC };

typedef struct qitem {
    int kind;
    block b;              /* Q_ALLOC: b.req is the size to allocate */
    size_t arg;           /* Q_REALLOC_FREE: the new size */
} qitem;

#define QCAP 64
static struct {
    pthread_mutex_t lock;
    pthread_cond_t more, idle;
    qitem q[QCAP];
    unsigned head, tail;  /* tail - head items queued */
    bool busy;
    block back[QCAP];     /* blocks the helper allocated, for the main thread */
    unsigned nback;
} hq = {.lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER};

static void helper_do(qitem *it)
{
    block *b = &it->b;
    switch (it->kind) {
    case Q_FREE:
        check_block(b, "before a free in the helper thread");
        rc_free(b->p);
        break;
    case Q_FREE_SIZED:
        check_block(b, "before a sized free in the helper thread");
        rc_free_sized(b->p, b->req);
        break;
    case Q_REALLOC_FREE: {
        check_block(b, "before a realloc in the helper thread");
        unsigned char *q = rc_realloc(b->p, it->arg);
        size_t keep = b->req < it->arg ? b->req : it->arg;
        if (it->arg == 0) {
            rc_free(q);    /* NULL here: realloc(p, 0) freed p */
            break;
        }
        FZ_CHECK(q != NULL, "realloc(%p, %zu) failed in the helper thread",
                 (void *)b->p, it->arg);
        size_t bad = find_bad(q, keep, b->seed, false);
        FZ_CHECK(bad == SIZE_MAX, "realloc %zu -> %zu in the helper thread lost byte %zu",
                 b->req, it->arg, bad);
        FZ_CHECK(rc_usable_size(q) >= it->arg, "realloc'd usable size < %zu", it->arg);
        rc_free(q);
        break;
    }
    case Q_ALLOC: {
        unsigned char *p = rc_malloc(b->req);
        FZ_CHECK(p != NULL, "helper thread: no block for %zu bytes", b->req);
        FZ_CHECK(((uintptr_t)p & 15) == 0, "helper thread: %p not 16-aligned", (void *)p);
        b->p = p;
        b->usable = rc_usable_size(p);
        FZ_CHECK(b->usable >= b->req, "helper thread: usable %zu < %zu", b->usable, b->req);
        b->align = 16;
        fill(p, b->usable, b->seed);
        pthread_mutex_lock(&hq.lock);
        if (hq.nback < QCAP) {
            hq.back[hq.nback++] = *b;
            b = NULL;
        }
        pthread_mutex_unlock(&hq.lock);
        if (b)
            rc_free(p);
        break;
    }
    }
}

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hq.lock);
    for (;;) {
        while (hq.head == hq.tail) {
            hq.busy = false;
            pthread_cond_broadcast(&hq.idle);
            pthread_cond_wait(&hq.more, &hq.lock);
        }
        hq.busy = true;
        qitem it = hq.q[hq.head++ % QCAP];
        pthread_mutex_unlock(&hq.lock);
        helper_do(&it);
        pthread_mutex_lock(&hq.lock);
    }
    return NULL;
}

static void helper_post(const qitem *it)
{
    pthread_mutex_lock(&hq.lock);
    while (hq.tail - hq.head == QCAP)
        pthread_cond_wait(&hq.idle, &hq.lock);
    hq.q[hq.tail++ % QCAP] = *it;
    hq.busy = true;
    pthread_cond_signal(&hq.more);
    pthread_mutex_unlock(&hq.lock);
}

/* Wait until the helper has done everything posted. */
static void helper_drain(void)
{
    pthread_mutex_lock(&hq.lock);
    while (hq.busy || hq.head != hq.tail)
        pthread_cond_wait(&hq.idle, &hq.lock);
    pthread_mutex_unlock(&hq.lock);
}

/* A block the helper allocated, into slot s; false if there is none. */
static bool helper_take(int s)
{
    block b;
    pthread_mutex_lock(&hq.lock);
    bool got = hq.nback > 0;
    if (got)
        b = hq.back[--hq.nback];
    pthread_mutex_unlock(&hq.lock);
    if (!got)
        return false;
    check_block(&b, "adopting a block from the helper thread");
    for (int i = 0; i < NSLOT; i++)
        FZ_CHECK(slots[i].p == NULL || slots[i].p + slots[i].usable <= b.p ||
                 b.p + b.usable <= slots[i].p,
                 "helper's block %p overlaps live block %p", (void *)b.p,
                 (void *)slots[i].p);
    slots[s] = b;
    return true;
}

/* ---- operations ----------------------------------------------------------------- */

static void release(int s)
{
    block *b = &slots[s];
    if (b->p == NULL)
        return;
    check_block(b, "before free");
    rc_free(b->p);
    b->p = NULL;
}

/* rc_realloc of slot s to n bytes, checked; the slot follows the block. */
static void do_realloc(int s, size_t n)
{
    block *b = &slots[s];
    if (b->p == NULL) {           /* realloc(NULL, n) is malloc(n) */
        adopt(s, rc_realloc(NULL, n), n, 16, false);
        return;
    }
    check_block(b, "before realloc");
    block old = *b;
    b->p = NULL;                  /* out of the overlap check: it may stay */
    errno = 0;
    unsigned char *q = rc_realloc(old.p, n);
    if (n == 0 && q == NULL)      /* glibc's realloc(p, 0): p is freed */
        return;
    FZ_CHECK(q != NULL, "realloc(%p, %zu) failed (errno %d)", (void *)old.p, n, errno);
    size_t keep = old.req < n ? old.req : n;
    size_t bad = find_bad(q, keep, old.seed, false);
    FZ_CHECK(bad == SIZE_MAX, "realloc %zu -> %zu (%p -> %p) lost byte %zu",
             old.req, n, (void *)old.p, (void *)q, bad);
    adopt(s, q, n, 16, false);
}

static void op_failures(fz_in *in, int s)
{
    size_t huge = pick_huge(in);
    void *p;
    int e;
    switch (fz_u8(in) % 6) {
    case 0:
        errno = 0;
        p = rc_malloc(huge);
        expect_failure(p, errno, ENOMEM, "rc_malloc", huge);
        break;
    case 1: {                     /* count * size overflows, or is huge */
        size_t size = pick_size(in) + 2;   /* >= 2: count cannot wrap */
        size_t count = fz_u8(in) & 1 ? SIZE_MAX / size + 1 + fz_u8(in) : huge / size + 1;
        errno = 0;
        p = rc_calloc(count, size);
        expect_failure(p, errno, ENOMEM, "rc_calloc (count * size)", size);
        break;
    }
    case 2: {                     /* a failed realloc leaves the block intact */
        if (slots[s].p == NULL)
            break;
        errno = 0;
        p = rc_realloc(slots[s].p, huge);
        expect_failure(p, errno, ENOMEM, "rc_realloc", huge);
        check_block(&slots[s], "after a failed realloc");
        break;
    }
    case 3:
        errno = 0;
        p = rc_aligned_alloc(64, huge);
        expect_failure(p, errno, ENOMEM, "rc_aligned_alloc(64)", huge);
        break;
    case 4: {
        void *out = &out;
        e = rc_posix_memalign(&out, 4096, huge);
        FZ_CHECK(e == ENOMEM, "rc_posix_memalign(4096, %zu) returned %d", huge, e);
        FZ_CHECK(out == &out, "rc_posix_memalign changed *out on failure");
        break;
    }
    default:                      /* an alignment no memory has */
        errno = 0;
        p = rc_aligned_alloc((size_t)1 << 62, 16);
        FZ_CHECK(p == NULL && (errno == ENOMEM || errno == EINVAL),
                 "rc_aligned_alloc(2^62, 16): %p, errno %d", p, errno);
        break;
    }
}

static void op_aligned(fz_in *in, int s, bool posix)
{
    bool valid;
    size_t align = pick_align(in, &valid);
    size_t n = pick_size(in);
    release(s);
    if (posix) {
        void *out = &out;
        int e = rc_posix_memalign(&out, align, n);
        if (!valid || align < sizeof(void *)) {
            FZ_CHECK(e == EINVAL, "rc_posix_memalign(%zu, %zu) returned %d, not EINVAL",
                     align, n, e);
            FZ_CHECK(out == &out, "rc_posix_memalign changed *out on failure");
            return;
        }
        FZ_CHECK(e == 0, "rc_posix_memalign(%zu, %zu) returned %d", align, n, e);
        adopt(s, out, n, align, false);
        return;
    }
    errno = 0;
    void *p = rc_aligned_alloc(align, n);
    if (!valid) {
        expect_failure(p, errno, EINVAL, "rc_aligned_alloc, bad alignment", align);
        return;
    }
    adopt(s, p, n, align, false);
}

static void op_remote(fz_in *in, int s)
{
    unsigned m = fz_u8(in);
    qitem it = {0};
    if (m % 4 == 3) {             /* the helper allocates; we adopt later */
        it.kind = Q_ALLOC;
        it.b.req = pick_size(in);
        it.b.seed = next_seed++;
        helper_post(&it);
        return;
    }
    if (slots[s].p == NULL) {
        if (!helper_take(s))
            return;
        if (m & 4)
            return;               /* adopted: freed here later */
    }
    it.kind = m % 4 == 0 ? Q_FREE : m % 4 == 1 ? Q_FREE_SIZED : Q_REALLOC_FREE;
    it.b = slots[s];
    it.arg = pick_size(in);
    slots[s].p = NULL;
    helper_post(&it);
}

static void run_op(fz_in *in)
{
    unsigned op = fz_u8(in);
    int s = (int)(fz_u8(in) % NSLOT);
    block *b = &slots[s];
    switch (op % 16) {
    case 0:
    case 1: {
        size_t n = pick_size(in);
        release(s);
        adopt(s, rc_malloc(n), n, 16, false);
        break;
    }
    case 2: {
        size_t n = pick_size(in);
        size_t count = 1 + fz_u8(in) % 8;
        release(s);
        adopt(s, rc_calloc(count, n / count), n / count * count, 16, true);
        break;
    }
    case 3:
        do_realloc(s, pick_size(in));
        break;
    case 4: {                     /* a chain of reallocs, maybe ending at 0 */
        unsigned k = 1 + fz_u8(in) % 8;
        for (unsigned i = 0; i < k; i++)
            do_realloc(s, pick_size(in));
        if (op & 16)
            do_realloc(s, 0);
        break;
    }
    case 5:                       /* grow or shrink in small steps */
        for (unsigned i = 0, k = 1 + fz_u8(in) % 32; i < k; i++) {
            size_t cur = b->p ? b->req : 0;
            size_t step = 1 + fz_u8(in) * (op & 32 ? 97 : 1);
            do_realloc(s, op & 64 ? cur + step : (cur > step ? cur - step : 1));
        }
        break;
    case 6:
        release(s);
        break;
    case 7:
        if (b->p) {
            check_block(b, "before sized free");
            rc_free_sized(b->p, b->req);
            b->p = NULL;
        }
        rc_free(NULL);
        break;
    case 8:
        op_aligned(in, s, false);
        break;
    case 9:
        op_aligned(in, s, true);
        break;
    case 10:
        FZ_CHECK(rc_usable_size(NULL) == 0, "rc_usable_size(NULL) != 0");
        if (b->p) {
            FZ_CHECK(rc_usable_size(b->p) == b->usable,
                     "usable size of %p changed: %zu, was %zu", (void *)b->p,
                     rc_usable_size(b->p), b->usable);
            check_block(b, "checking a block");
        }
        break;
    case 11:
    case 12:
        op_remote(in, s);
        break;
    case 13:
        op_failures(in, s);
        break;
    case 14:
        if ((op & 0xf0) == 0xe0) {     /* seldom: purge, then print stats */
            helper_drain();
            _rc_trim();
            static FILE *devnull;
            if (devnull == NULL)
                devnull = fopen("/dev/null", "w");
            if (devnull)
                rc_stats_print(devnull);
        }
        break;
    default:
        for (int i = 0; i < NSLOT; i++)
            if (slots[i].p)
                check_block(&slots[i], "checking every block");
        break;
    }
    fz_ops++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pthread_t helper;
    static bool started;
    if (!started) {
        fz_start("fuzz_alloc");
        const char *debug = getenv("RCMALLOC_DEBUG");
        if (debug && *debug && *debug != '0')
            max_size = 64 * KiB;
        FZ_CHECK(pthread_create(&helper, NULL, helper_main, NULL) == 0, "no helper thread");
        started = true;
    }
    fz_in in = {data, size};
    while (in.n > 0)
        run_op(&in);
    /* leave nothing behind: the next input starts from an empty model */
    for (int s = 0; s < NSLOT; s++) {
        if (slots[s].p && (s & 1)) {
            qitem it = {.kind = Q_FREE, .b = slots[s]};
            slots[s].p = NULL;
            helper_post(&it);
        }
        release(s);
    }
    helper_drain();
    while (helper_take(0))
        release(0);
    fz_inputs++;
    return 0;
}
