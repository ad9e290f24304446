/*
 * options.c -- every runtime option, in one table, each read once at start
 * from one RCMALLOC_* environment variable.  A malformed or out-of-range
 * value is reported once on stderr and the default is used.
 * RCMALLOC_VERBOSE=1 prints the effective settings.
 */
#include "internal.h"

#include <limits.h>
#include <string.h>
#include <sys/types.h>

extern char **environ;

rc_options_t _rc_opt;

typedef struct {
    const char *name;    /* environment variable */
    long *value;
    long  def, min, max;
    const char *unit;
    const char *desc;
} rc_option_desc_t;

static const rc_option_desc_t options[] = {
    { "RCMALLOC_STATS", &_rc_opt.stats, 0, 0, 1, "",
      "print allocator statistics to stderr at exit" },
    { "RCMALLOC_DEBUG", &_rc_opt.debug, 0, 0, 1, "",
      "guard bytes, fill patterns, double-free and foreign-pointer checks" },
    { "RCMALLOC_SECURE", &_rc_opt.secure, 0, 0, 1, "",
      "hardened mode: guard pages, canaries, randomized order, delayed reuse, freed memory filled" },
    { "RCMALLOC_VERBOSE", &_rc_opt.verbose, 0, 0, 1, "",
      "print the effective settings at start" },
    { "RCMALLOC_SMALL_MAX", &_rc_opt.small_max, RC_SMALL_LIMIT, RC_SMALL_MIN_MAX, RC_SMALL_LIMIT, "bytes",
      "largest request served from size-class pools; larger ones get spans of whole pools up to 1 MiB, then jemalloc" },
    { "RCMALLOC_RETAIN", &_rc_opt.retain, 64L << 20, 0, 1L << 40, "bytes",
      "most free pool memory kept resident for reuse; beyond it, returned at once" },
    { "RCMALLOC_PURGE_DELAY_MS", &_rc_opt.purge_delay_ms, 250, -1, 3600000, "ms",
      "free pools are returned to the OS after one to two such periods (-1: only beyond RETAIN)" },
    { "RCMALLOC_LARGE_DECAY_MS", &_rc_opt.large_decay_ms, 1000, -1, 3600000, "ms",
      "how long freed large-block memory stays resident before it is returned (-1: never)" },
    { "RCMALLOC_LARGE_CACHE", &_rc_opt.large_cache, 256L << 20, 0, 1L << 40, "bytes",
      "largest freed huge block kept for reuse (one block, for RCMALLOC_LARGE_DECAY_MS; 0: none)" },
    { "RCMALLOC_GC_SIGNAL", &_rc_opt.gc_signal, 30 /* SIGPWR */, 1, 64, "",
      "signal that pauses threads while the cycle collector reads containers" },
    { "RCMALLOC_GC_STOP_MS", &_rc_opt.gc_stop_ms, 1000, 1, 3600000, "ms",
      "how long a collection waits for threads to pause before it is skipped" },
    { "RCMALLOC_PROF", &_rc_opt.prof, 0, 0, 1, "",
      "sampling heap profiler; profile written to RCMALLOC_PROF_PREFIX.<pid>.heap at exit" },
    { "RCMALLOC_PROF_SAMPLE", &_rc_opt.prof_sample, 524288, 1, 1L << 40, "bytes",
      "mean bytes allocated between two heap profile samples" },
};

#define N_OPTIONS (sizeof options / sizeof options[0])

/* getenv without the libc call (nothing here may allocate) */
const char *_rc_env_get(const char *name)
{
    size_t n = strlen(name);
    if (environ == NULL)
        return NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Decimal integer with an optional k/m/g suffix (powers of 1024).  Returns
   false for anything else. */
static bool parse_long(const char *s, long *out)
{
    bool neg = false;
    long v = 0;
    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (LONG_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    int shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    default: break;
    }
    if (*s == 'b' || *s == 'B')
        s++;
    if (*s != '\0' || (shift && v > (LONG_MAX >> shift)))
        return false;
    v <<= shift;
    *out = neg ? -v : v;
    return true;
}

/* Whether any variable in the environment starts with RCMALLOC_.  Compared
   character by character (immediates, not a string constant) so that a
   process that sets none never reads our read-only data at start-up: the
   fault on it maps a window of the library's file (measured: 68 KiB of
   RSS, for option names nobody asked for). */
static bool env_has_ours(void)
{
    if (environ == NULL)
        return false;
    for (char **e = environ; *e; e++) {
        const char *v = *e;
        if (v[0] == 'R' && v[1] == 'C' && v[2] == 'M' && v[3] == 'A' && v[4] == 'L' &&
            v[5] == 'L' && v[6] == 'O' && v[7] == 'C' && v[8] == '_')
            return true;
    }
    return false;
}

void _rc_options_init(void)
{
    bool any = env_has_ours();
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rc_option_desc_t *o = &options[i];
        *o->value = o->def;
        const char *s = any ? _rc_env_get(o->name) : NULL;
        if (s == NULL)
            continue;
        long v;
        if (!parse_long(s, &v) || v < o->min || v > o->max) {
            _rc_printf_err("rcmalloc: ignoring %s=%s (expected an integer from %zd to %zd%s%s); using %zd\n",
                           o->name, s, (ssize_t)o->min, (ssize_t)o->max,
                           *o->unit ? " " : "", o->unit, (ssize_t)o->def);
            continue;
        }
        *o->value = v;
    }
}

void _rc_options_print(void)
{
    _rc_write_err("rcmalloc: " PACKAGE_VERSION " settings:\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rc_option_desc_t *o = &options[i];
        char num[32];
        _rc_format(num, sizeof num, "%zd", (ssize_t)*o->value);
        _rc_printf_err("rcmalloc:   %s=%s%s%s  (default %zd) %s\n", o->name, num,
                       *o->unit ? " " : "", o->unit, (ssize_t)o->def, o->desc);
    }
}
