/*
 * census.c -- live rc objects by type: rc_census, and the top of it in
 * rc_stats_print / RCMALLOC_STATS=1.
 *
 * Design (see also lifetime.h): one table per thread of (type -> objects,
 * bytes), counted by _rc_census_count (lifetime.h) on every birth (rc_new,
 * _rc_new_prefixed) and death (object.c: free_block and rc_decref's fast
 * path) with relaxed loads and stores only -- the cost of two plain adds
 * to a thread-local line, plus a compare with the last type counted.
 * The collector's lists cannot serve: untracked objects (non-containers,
 * rc_gc_untrack'ed ones) are on none, and they are exactly the ones that
 * leak unseen.
 *
 * Tables are pushed on a lock-free list and never freed or unlinked, so
 * readers need no lock and fork needs no handler: a thread that exits
 * (pthread key destructor) marks its table free, and the next thread to
 * need one claims it with its counts (only sums over all tables mean
 * anything).  So there are as many tables as threads ever ran at once.
 * Within a table, a type's slot is found by hashing its pointer into a
 * chunk of RC_CENSUS_SLOTS slots, then in chained chunks if the first is
 * full; the owner publishes a slot's type and a chunk's link with release
 * stores after zeroing them, readers load them with acquire.
 */
#include "lifetime.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>

__thread rc_census_table *_rc_census_tls;
/* No object has this type: the fast paths' test against _rc_census_last.type
   fails for a NULL type too, and in a thread that has counted nothing. */
const rc_type _rc_census_none = { "(none)", NULL, NULL, NULL };
__thread rc_census_last _rc_census_last = { &_rc_census_none, NULL };
static rc_census_table *_Atomic all_tables;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static inline size_t hash_type(const rc_type *t, size_t slots)
{
    uint64_t h = (uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (slots - 1);
}

/* ---- owner side ---------------------------------------------------------- */

static void thread_exit(void *p)
{
    rc_census_table *c = p;
    if (_rc_census_tls == c) {
        _rc_census_tls = NULL;
        _rc_census_last.type = &_rc_census_none;
        _rc_census_last.slot = NULL;
    }
    atomic_store_explicit(&c->in_use, 0, memory_order_release);
}

static void make_key(void)
{
    if (pthread_key_create(&exit_key, thread_exit) != 0)
        exit_key = (pthread_key_t)-1;
}

static rc_census_table *claim_table(void)
{
    pthread_once(&exit_once, make_key);
    rc_census_table *c;
    /* a table left by an exited thread, if any */
    for (c = atomic_load_explicit(&all_tables, memory_order_acquire); c != NULL;
         c = c->next_all) {
        int zero = 0;
        if (atomic_load_explicit(&c->in_use, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&c->in_use, &zero, 1,
                    memory_order_acquire, memory_order_relaxed))
            break;
    }
    if (c == NULL) {
        c = _rc_malloc(sizeof *c);
        if (c == NULL)
            return NULL;
        memset(c, 0, sizeof *c);
        atomic_init(&c->in_use, 1);
        rc_census_table *head = atomic_load_explicit(&all_tables, memory_order_relaxed);
        do {
            c->next_all = head;
        } while (!atomic_compare_exchange_weak_explicit(&all_tables, &head, c,
                     memory_order_release, memory_order_relaxed));
    }
    /* A thread whose TLS is torn down after the key's destructors ran
       keeps its table forever: its counts stay in the sums. */
    if (exit_key != (pthread_key_t)-1)
        pthread_setspecific(exit_key, c);
    _rc_census_tls = c;
    return c;
}

rc_census_slot *_rc_census_slot(const rc_type *t)
{
    rc_census_table *c = _rc_census_tls;
    if (c == NULL && (c = claim_table()) == NULL)
        return NULL;
    size_t h = hash_type(t, RC_CENSUS_SLOTS);
    for (rc_census_chunk *k = &c->first; ; ) {
        for (size_t i = 0; i < RC_CENSUS_SLOTS; i++) {
            rc_census_slot *s = &k->slot[(h + i) & (RC_CENSUS_SLOTS - 1)];
            const rc_type *st = atomic_load_explicit(&s->type, memory_order_relaxed);
            if (st == NULL) {
                /* zero since the chunk was made: publish the type */
                atomic_store_explicit(&s->type, t, memory_order_release);
                st = t;
            }
            if (st == t) {
                /* not in checked modes: rc_new's fast path (object.c)
                   takes its block straight from the cache when the type
                   is the last counted, and those modes want every block
                   to come the long way (nor if the fast path would not
                   serve rc_new's quick sizes: RCMALLOC_SMALL_MAX) */
                if (_rc_fast_max >= RC_SMALL_BLOCK_MAX) {
                    _rc_census_last.type = t;
                    _rc_census_last.slot = s;
                }
                return s;
            }
        }
        rc_census_chunk *n = atomic_load_explicit(&k->next, memory_order_relaxed);
        if (n == NULL) {
            n = _rc_malloc(sizeof *n);
            if (n == NULL)
                return NULL;
            memset(n, 0, sizeof *n);
            atomic_store_explicit(&k->next, n, memory_order_release);
        }
        k = n;
    }
}

/* ---- readers ---------------------------------------------------------------- */

typedef struct agg {
    const rc_type *type;
    size_t objects, bytes;
} agg;

/* Slots in use over all tables: an upper bound on the number of types. */
static size_t slots_in_use(void)
{
    size_t n = 0;
    for (rc_census_table *c = atomic_load_explicit(&all_tables, memory_order_acquire);
         c != NULL; c = c->next_all)
        for (rc_census_chunk *k = &c->first; k != NULL;
             k = atomic_load_explicit(&k->next, memory_order_acquire))
            for (size_t i = 0; i < RC_CENSUS_SLOTS; i++)
                if (atomic_load_explicit(&k->slot[i].type, memory_order_acquire))
                    n++;
    return n;
}

/* Sum every table into map (cap a power of two, zeroed), then compact the
   types with live objects to its front; returns how many.  Types that do
   not fit are left out (*partial set). */
static size_t gather(agg *map, size_t cap, int *partial)
{
    *partial = 0;
    for (rc_census_table *c = atomic_load_explicit(&all_tables, memory_order_acquire);
         c != NULL; c = c->next_all)
        for (rc_census_chunk *k = &c->first; k != NULL;
             k = atomic_load_explicit(&k->next, memory_order_acquire))
            for (size_t i = 0; i < RC_CENSUS_SLOTS; i++) {
                rc_census_slot *s = &k->slot[i];
                const rc_type *t = atomic_load_explicit(&s->type, memory_order_acquire);
                if (t == NULL)
                    continue;
                size_t h = hash_type(t, cap), j;
                for (j = 0; j < cap; j++) {
                    agg *a = &map[(h + j) & (cap - 1)];
                    if (a->type == NULL)
                        a->type = t;
                    if (a->type == t) {
                        a->objects += atomic_load_explicit(&s->objects, memory_order_relaxed);
                        a->bytes += atomic_load_explicit(&s->bytes, memory_order_relaxed);
                        break;
                    }
                }
                if (j == cap)
                    *partial = 1;
            }
    size_t n = 0;
    for (size_t i = 0; i < cap; i++) {
        agg a = map[i];
        /* sums in flight while other threads run may read below zero */
        if (a.type == NULL || (ptrdiff_t)a.objects <= 0)
            continue;
        if ((ptrdiff_t)a.bytes < 0)
            a.bytes = 0;
        map[n++] = a;
    }
    return n;
}

static int before(const agg *a, const agg *b)
{
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes;
    if (a->objects != b->objects)
        return a->objects > b->objects;
    return (uintptr_t)a->type < (uintptr_t)b->type;
}

/* Most bytes first; insertion sort of the first k places only (k small
   for the stats, all for rc_census). */
static void sort_top(agg *v, size_t n, size_t k)
{
    if (k > n)
        k = n;
    for (size_t i = 0; i < k; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < n; j++)
            if (before(&v[j], &v[best]))
                best = j;
        agg t = v[i];
        v[i] = v[best];
        v[best] = t;
    }
}

static void heap_sort(agg *v, size_t n)
{
    /* a heap with the "smallest" (by before) at the root, then pop */
    for (size_t start = n / 2; start-- > 0; ) {
        size_t r = start;
        for (size_t c; (c = 2 * r + 1) < n; r = c) {
            if (c + 1 < n && before(&v[c], &v[c + 1]))
                c++;
            if (!before(&v[r], &v[c]))
                break;
            agg t = v[r]; v[r] = v[c]; v[c] = t;
        }
    }
    for (size_t end = n; end-- > 1; ) {
        agg t = v[0]; v[0] = v[end]; v[end] = t;
        size_t r = 0;
        for (size_t c; (c = 2 * r + 1) < end; r = c) {
            if (c + 1 < end && before(&v[c], &v[c + 1]))
                c++;
            if (!before(&v[r], &v[c]))
                break;
            t = v[r]; v[r] = v[c]; v[c] = t;
        }
    }
    /* the max-heap on "after" leaves v ascending by "after", i.e. in the
       order of before */
}

RC_API size_t rc_census(rc_type_census *out, size_t max)
{
    for (int attempt = 0; ; attempt++) {
        size_t used = slots_in_use(), cap = 16;
        while (cap < 2 * used)
            cap *= 2;
        agg *map = _rc_malloc(cap * sizeof *map);
        if (map == NULL) {
            errno = ENOMEM;
            return 0;
        }
        memset(map, 0, cap * sizeof *map);
        int partial;
        size_t n = gather(map, cap, &partial);
        if (partial && attempt < 3) {   /* types added meanwhile: again */
            _rc_free(map);
            continue;
        }
        if (max > n)
            max = n;
        if (out != NULL && max > 0) {
            if (max < 16)
                sort_top(map, n, max);
            else
                heap_sort(map, n);
            for (size_t i = 0; i < max; i++) {
                out[i].type = map[i].type;
                out[i].objects = map[i].objects;
                out[i].bytes = map[i].bytes;
            }
        }
        _rc_free(map);
        return n;
    }
}

/* For stats.c (a weak reference there: the allocator core knows nothing of
   rc types): the top of the census, by type name, through emit.  Nothing
   is allocated (it also runs at exit, for RCMALLOC_STATS=1). */
#define STATS_TOP 8
#define STATS_MAP 256

void _rc_census_print(void (*emit)(void *, const char *), void *ctx)
{
    if (atomic_load_explicit(&all_tables, memory_order_acquire) == NULL)
        return;     /* no rc object was ever made */
    agg map[STATS_MAP];
    memset(map, 0, sizeof map);
    int partial;
    size_t n = gather(map, STATS_MAP, &partial);
    size_t objects = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        objects += map[i].objects;
        bytes += map[i].bytes;
    }
    char line[256];
    _rc_format(line, sizeof line,
               "rc objects: %zu live in %zu bytes, %zu types%s (rc_census); most bytes first:\n",
               objects, bytes, n, partial ? " or more" : "");
    emit(ctx, line);
    sort_top(map, n, STATS_TOP);
    for (size_t i = 0; i < n && i < STATS_TOP; i++) {
        const char *name = map[i].type->name;
        _rc_format(line, sizeof line, "  %s: %zu objects, %zu bytes\n",
                   name ? name : "(unnamed type)", map[i].objects, map[i].bytes);
        emit(ctx, line);
    }
    if (n > STATS_TOP) {
        _rc_format(line, sizeof line, "  ... %zu more types\n", n - STATS_TOP);
        emit(ctx, line);
    }
    _rc_gc_print(emit, ctx);
}
