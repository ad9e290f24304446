/*
 * weakref.c -- weak references.
 *
 * Entry points: rc_weakref_new, rc_weakref_get; for object.c and gc.c,
 * _rc_weakref_clear_referent (the referent is dying or garbage) and
 * _rc_weakref_disarm (the weakref itself is garbage).
 *
 * A weakref is an rc object of the internal type _rc_weakref_type, a
 * container with nothing to visit (so it is tracked, and one held only by
 * garbage is garbage).  Referents carry no list head -- that would cost
 * every object a word -- but the RC_F_WEAKREFS flag; the lists live in one
 * open-addressing table, referent address -> newest weakref, each weakref
 * linked to the others to the same referent.  One mutex guards the table,
 * the lists and every weakref's referent pointer; it is never held while
 * user code runs or while anything dies.
 *
 * rc_weakref_get revives the referent only if its count is still above
 * zero (_rc_try_incref): a dying object (count 0, finalize/clear running)
 * or one queued in the trashcan (negative count) yields NULL, and its
 * memory is not freed before its weakrefs are cleared under the mutex.
 */
#include "lifetime.h"
#include <errno.h>
#include <pthread.h>

struct rc_weakref {
    void *referent;              /* NULL once cleared; under wr_lock */
    rc_weak_callback cb;         /* NULL once disarmed or cleared */
    void *arg;
    struct rc_weakref *next;     /* other weakrefs to the same referent */
    struct rc_weakref *prev;
    struct rc_weakref *cbnext;   /* chain of callbacks to run */
};

static pthread_mutex_t wr_lock = PTHREAD_MUTEX_INITIALIZER;

/* ==== the referent table ================================================== */

typedef struct slot {
    void *key;
    rc_weakref *head;
} slot;

static slot *tab;
static size_t cap;      /* power of two, or 0 */
static size_t used;

static inline size_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p >> 4;
    x *= 0x9e3779b97f4a7c15ull;
    return (size_t)(x ^ (x >> 29));
}

static slot *find(const void *key)
{
    if (cap == 0)
        return NULL;
    for (size_t i = hash_ptr(key) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (tab[i].key == key)
            return &tab[i];
        if (tab[i].key == NULL)
            return NULL;
    }
}

static int grow(void)
{
    size_t ncap = cap ? cap * 2 : 64;
    slot *nt = _rc_calloc(ncap, sizeof(slot));
    if (nt == NULL)
        return -1;
    for (size_t j = 0; j < cap; j++) {
        if (tab[j].key == NULL)
            continue;
        size_t i = hash_ptr(tab[j].key) & (ncap - 1);
        while (nt[i].key != NULL)
            i = (i + 1) & (ncap - 1);
        nt[i] = tab[j];
    }
    _rc_free(tab);
    tab = nt;
    cap = ncap;
    return 0;
}

static slot *insert(void *key)
{
    if ((used + 1) * 2 > cap && grow() != 0)
        return NULL;
    size_t i = hash_ptr(key) & (cap - 1);
    while (tab[i].key != NULL)
        i = (i + 1) & (cap - 1);
    tab[i].key = key;
    tab[i].head = NULL;
    used++;
    return &tab[i];
}

/* Linear probing deletion by backward shift (no tombstones). */
static void erase(slot *s)
{
    size_t i = (size_t)(s - tab);
    size_t j = i;
    for (;;) {
        j = (j + 1) & (cap - 1);
        if (tab[j].key == NULL)
            break;
        size_t home = hash_ptr(tab[j].key) & (cap - 1);
        /* can tab[j] move to the hole at i? only if home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            tab[i] = tab[j];
            i = j;
        }
    }
    tab[i].key = NULL;
    tab[i].head = NULL;
    used--;
}

/* Unlink wr from its referent's list; under wr_lock. */
static void detach(rc_weakref *wr)
{
    void *obj = wr->referent;
    if (obj == NULL)
        return;
    if (wr->prev != NULL) {
        wr->prev->next = wr->next;
    } else {
        slot *s = find(obj);
        if (wr->next != NULL)
            s->head = wr->next;
        else
            erase(s);
    }
    if (wr->next != NULL)
        wr->next->prev = wr->prev;
    wr->next = wr->prev = NULL;
    wr->referent = NULL;
}

/* ==== the weakref type ==================================================== */

static int wr_traverse(void *obj, rc_visit_fn visit, void *arg)
{
    (void)obj; (void)visit; (void)arg;
    return 0;   /* holds no strong references */
}

static void wr_clear(void *obj)
{
    rc_weakref *wr = obj;
    pthread_mutex_lock(&wr_lock);
    detach(wr);
    wr->cb = NULL;
    pthread_mutex_unlock(&wr_lock);
}

const rc_type _rc_weakref_type = { "weakref", wr_traverse, wr_clear, NULL };

/* ==== API ================================================================= */

RC_API void *rc_weakref_new(void *obj, rc_weak_callback cb, void *arg)
{
    if (obj == NULL) {
        errno = EINVAL;
        return NULL;
    }
    rc_weakref *wr = rc_new(&_rc_weakref_type, sizeof *wr);
    if (wr == NULL)
        return NULL;
    wr->cb = cb;
    wr->arg = arg;
    rc_head *h = rc_head_of(obj);
    pthread_mutex_lock(&wr_lock);
    /* An object already dying (inside its own finalize or clear) gets a
       weakref that is dead from the start. */
    if (atomic_load(&h->refcnt) > 0) {
        slot *s = find(obj);
        if (s == NULL)
            s = insert(obj);
        if (s == NULL) {
            pthread_mutex_unlock(&wr_lock);
            rc_decref(wr);
            errno = ENOMEM;
            return NULL;
        }
        wr->next = s->head;
        if (s->head != NULL)
            s->head->prev = wr;
        s->head = wr;
        wr->referent = obj;
        atomic_fetch_or(&h->type, RC_F_WEAKREFS);
    }
    pthread_mutex_unlock(&wr_lock);
    return wr;
}

RC_API void *rc_weakref_get(void *weakref)
{
    if (weakref == NULL || rc_type_of(weakref) != &_rc_weakref_type) {
        errno = EINVAL;
        return NULL;
    }
    rc_weakref *wr = weakref;
    pthread_mutex_lock(&wr_lock);
    void *obj = wr->referent;
    if (obj != NULL && !_rc_try_incref(obj))
        obj = NULL;
    pthread_mutex_unlock(&wr_lock);
    return obj;
}

/* ==== hooks =============================================================== */

rc_weakref *_rc_weakref_clear_referent(void *obj, rc_weakref *cbs)
{
    pthread_mutex_lock(&wr_lock);
    slot *s = find(obj);
    if (s != NULL) {
        rc_weakref *wr = s->head;
        erase(s);
        while (wr != NULL) {
            rc_weakref *next = wr->next;
            wr->referent = NULL;
            wr->next = wr->prev = NULL;
            /* the pin keeps wr alive until its callback has run */
            if (wr->cb != NULL && _rc_try_incref(wr)) {
                wr->cbnext = cbs;
                cbs = wr;
            }
            wr = next;
        }
    }
    pthread_mutex_unlock(&wr_lock);
    return cbs;
}

void _rc_weakref_run_callbacks(rc_weakref *cbs)
{
    while (cbs != NULL) {
        rc_weakref *wr = cbs;
        cbs = wr->cbnext;
        wr->cbnext = NULL;
        pthread_mutex_lock(&wr_lock);
        rc_weak_callback cb = wr->cb;
        void *arg = wr->arg;
        pthread_mutex_unlock(&wr_lock);
        if (cb != NULL)
            cb(wr, arg);
        rc_decref(wr);
    }
}

void _rc_weakref_disarm(void *weakref)
{
    rc_weakref *wr = weakref;
    pthread_mutex_lock(&wr_lock);
    detach(wr);
    wr->cb = NULL;
    pthread_mutex_unlock(&wr_lock);
}

/* fork (init.c) */
void _rc_weakref_fork_prepare(void) { pthread_mutex_lock(&wr_lock); }
void _rc_weakref_fork_parent(void)  { pthread_mutex_unlock(&wr_lock); }
void _rc_weakref_fork_child(void)   { pthread_mutex_init(&wr_lock, NULL); }
