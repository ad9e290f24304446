/*
 * intern.c -- interned strings.
 *
 * Entry point: rc_intern.  An interned string is an rc object (not a
 * container) of type _rc_intern_type whose user pointer is the characters;
 * its length and hash sit in an rc_intern_meta just before its rc_head
 * (lifetime.h).  The table is open addressing with linear probing over the
 * user pointers, guarded by one mutex, and holds no reference: it is a weak
 * table.  A lookup revives an entry only if its count is still above zero
 * (_rc_try_incref); an entry whose string is dying is replaced by a fresh
 * copy.  The string's clear (run when it dies, with the count at 0) removes
 * its entry if the entry is still its own.
 */
#include "lifetime.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t in_lock = PTHREAD_MUTEX_INITIALIZER;
static char **tab;      /* user pointers of interned strings, NULL = free */
static size_t cap;      /* power of two, or 0 */
static size_t used;

static inline rc_intern_meta *meta_of(const char *s)
{
    return (rc_intern_meta *)(s - RC_HEAD_SIZE - sizeof(rc_intern_meta));
}

/* FNV-1a, folded: strings are short and this runs under the lock anyway. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 32);
}

static inline size_t home_of(const char *p)
{
    return (size_t)meta_of(p)->hash & (cap - 1);
}

static int grow(void)
{
    size_t ncap = cap ? cap * 2 : 256;
    char **nt = _rc_calloc(ncap, sizeof(char *));
    if (nt == NULL)
        return -1;
    for (size_t j = 0; j < cap; j++) {
        if (tab[j] == NULL)
            continue;
        size_t i = (size_t)meta_of(tab[j])->hash & (ncap - 1);
        while (nt[i] != NULL)
            i = (i + 1) & (ncap - 1);
        nt[i] = tab[j];
    }
    _rc_free(tab);
    tab = nt;
    cap = ncap;
    return 0;
}

static void erase_at(size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & (cap - 1);
        if (tab[j] == NULL)
            break;
        size_t home = home_of(tab[j]);
        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            tab[i] = tab[j];
            i = j;
        }
    }
    tab[i] = NULL;
    used--;
}

static void intern_clear(void *obj)
{
    char *s = obj;
    pthread_mutex_lock(&in_lock);
    if (cap != 0) {
        for (size_t i = home_of(s); tab[i] != NULL; i = (i + 1) & (cap - 1)) {
            if (tab[i] == s) {
                erase_at(i);
                break;
            }
        }
    }
    pthread_mutex_unlock(&in_lock);
}

const rc_type _rc_intern_type = { "interned string", NULL, intern_clear, NULL };

RC_API const char *rc_intern(const char *s, size_t len)
{
    if (s == NULL && len != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (len >= SIZE_MAX - 64) {
        errno = ENOMEM;
        return NULL;
    }
    uint64_t h = hash_bytes(s, len);
    pthread_mutex_lock(&in_lock);
    if (cap != 0) {
        for (size_t i = (size_t)h & (cap - 1); tab[i] != NULL;
             i = (i + 1) & (cap - 1)) {
            char *p = tab[i];
            rc_intern_meta *m = meta_of(p);
            if (m->hash == h && m->len == len &&
                (len == 0 || memcmp(p, s, len) == 0)) {
                if (_rc_try_incref(p)) {
                    pthread_mutex_unlock(&in_lock);
                    return p;
                }
                erase_at(i);    /* dying: its clear will not find itself */
                break;
            }
        }
    }
    if ((used + 1) * 2 > cap && grow() != 0) {
        pthread_mutex_unlock(&in_lock);
        errno = ENOMEM;
        return NULL;
    }
    char *p = _rc_new_prefixed(&_rc_intern_type, len + 1, sizeof(rc_intern_meta));
    if (p == NULL) {
        pthread_mutex_unlock(&in_lock);
        return NULL;
    }
    rc_intern_meta *m = meta_of(p);
    m->len = len;
    m->hash = h;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    size_t i = (size_t)h & (cap - 1);
    while (tab[i] != NULL)
        i = (i + 1) & (cap - 1);
    tab[i] = p;
    used++;
    pthread_mutex_unlock(&in_lock);
    return p;
}

/* fork (init.c) */
void _rc_intern_fork_prepare(void) { pthread_mutex_lock(&in_lock); }
void _rc_intern_fork_parent(void)  { pthread_mutex_unlock(&in_lock); }
void _rc_intern_fork_child(void)   { pthread_mutex_init(&in_lock, NULL); }
