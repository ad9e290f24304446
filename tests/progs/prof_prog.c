/*
 * prof_prog -- allocation sites of known size for the heap profiler tests
 * (tests/test_prof.sh), run under LD_PRELOAD with RCMALLOC_PROF=1.  Not
 * linked with rcmalloc: google-pprof reads this very file's symbols.
 *
 *   prof_prog sites [DUMP]  keep_small holds 48 MiB in 64-byte blocks,
 *                           keep_chunks 16 MiB in 64 KiB blocks, churn
 *                           allocates and frees 1 GiB in passing; then
 *                           rc_prof_dump(DUMP) if given
 *   prof_prog threads DUMP  handed_over's 16 MiB are freed by another
 *                           thread, kept_here's 8 MiB are not; then dump
 *   prof_prog leaks         leak_one_way leaks 4 MiB, leak_another 12 MiB,
 *                           tidy frees what it allocates
 *   prof_prog objects DUMP  make_objects keeps 8 MiB of rc objects (rc_new),
 *                           make_buffers 8 MiB of malloc blocks; then dump
 *   prof_prog grow DUMP     grow_buffers grows 16 buffers by realloc in 1000-byte
 *                           steps to 2 MiB each (32 MiB), then dump
 *   prof_prog spans DUMP    grow_spans grows 1024 buffers by realloc in steps of
 *                           an eighth to 32 KiB each (32 MiB, in spans), dump to
 *                           DUMP.1; shrinks each to 16 KiB and grows it to 48 KiB
 *                           (48 MiB), all in place, then dump
 *
 * sites writes DUMP.1 too, after keep_small: the base for a pprof diff.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((size_t)1 << 20)
#define NOINLINE __attribute__((noinline))

static void *volatile sink;   /* keeps the compiler from dropping blocks */

/* the sites' blocks, kept here so that the sites allocate nothing else */
static void *small[48 * MiB / 64], *chunks[16 * MiB / (64 * 1024)];

static NOINLINE void keep_small(void)
{
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
        small[i] = malloc(64);
        memset(small[i], 1, 8);
    }
}

static NOINLINE void keep_chunks(void)
{
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        chunks[i] = malloc(64 * 1024);
        memset(chunks[i], 2, 64);
    }
}

/* 1 GiB in blocks of 256 bytes to 256 KiB, each freed at once */
static NOINLINE void churn(void)
{
    size_t total = 0;
    for (unsigned i = 0; total < 1024 * MiB; i++) {
        size_t size = (size_t)256 << (i % 11);
        char *p = malloc(size);
        p[0] = (char)i;
        sink = p;
        free(p);
        total += size;
    }
}

static void *need(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    if (f == NULL) {
        fprintf(stderr, "prof_prog: %s not found: not run with librcmalloc\n", name);
        exit(1);
    }
    return f;
}

static int dump(const char *path)
{
    int (*rc_prof_dump)(const char *) = (int (*)(const char *))need("rc_prof_dump");
    if (rc_prof_dump(path) != 0) {
        fprintf(stderr, "prof_prog: rc_prof_dump(%s): %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int sites(const char *path)
{
    keep_small();
    if (path) {
        char older[4096];
        snprintf(older, sizeof older, "%s.1", path);
        if (dump(older) != 0)
            return 1;
    }
    keep_chunks();
    churn();
    return path ? dump(path) : 0;    /* the kept blocks are still allocated at exit */
}

#define HANDED 256
static void *handed[HANDED];

static NOINLINE void handed_over(void)
{
    for (int i = 0; i < HANDED; i++)
        handed[i] = malloc(64 * 1024);
}

static NOINLINE void *kept_here(void)
{
    void **v = malloc(128 * sizeof *v);
    for (int i = 0; i < 128; i++)
        v[i] = malloc(64 * 1024);
    return v;
}

static void *free_them(void *arg)
{
    (void)arg;
    for (int i = 0; i < HANDED; i++)
        free(handed[i]);
    return NULL;
}

static int threads(const char *path)
{
    pthread_t t;
    handed_over();
    sink = kept_here();
    if (pthread_create(&t, NULL, free_them, NULL) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "prof_prog: thread failed\n");
        return 1;
    }
    return dump(path);
}

static NOINLINE void leak_one_way(void)
{
    for (int i = 0; i < 64; i++)
        sink = malloc(64 * 1024);
}

static NOINLINE void leak_another(void)
{
    for (int i = 0; i < 12 * 1024; i++)
        sink = malloc(1024);
}

static NOINLINE void tidy(void)
{
    for (int i = 0; i < 4096; i++) {
        void *p = malloc(4096);
        sink = p;
        free(p);
    }
}

/* rc objects: struct rc_type's layout from rcmalloc.h (name, traverse,
   clear, finalize), declared here because this program is not built
   against the library. */
typedef struct {
    const char *name;
    void *traverse, *clear, *finalize;
} type_t;
static const type_t blob_type = { "blob", NULL, NULL, NULL };
static void *objects[8192], *buffers[8192];

static NOINLINE void make_objects(void)
{
    void *(*rc_new)(const type_t *, size_t) =
        (void *(*)(const type_t *, size_t))need("rc_new");
    for (int i = 0; i < 8192; i++)
        objects[i] = rc_new(&blob_type, 1024);
}

static NOINLINE void make_buffers(void)
{
    for (int i = 0; i < 8192; i++)
        buffers[i] = malloc(1024);
}

static char *grown[16];

static NOINLINE void grow_buffers(void)
{
    for (size_t size = 1000; size <= 2 * MiB; size += 1000)
        for (int i = 0; i < 16; i++) {
            grown[i] = realloc(grown[i], size);
            grown[i][size - 1] = 1;
        }
}

static char *spans[1024];

static NOINLINE void grow_spans(size_t from, size_t to)
{
    for (int i = 0; i < 1024; i++) {
        size_t size = from;
        do {
            size = size + size / 8 < to ? size + size / 8 : to;
            spans[i] = realloc(spans[i], size);
            spans[i][size - 1] = 1;
        } while (size < to);
    }
}

static NOINLINE void shrink_spans(void)
{
    for (int i = 0; i < 1024; i++)
        sink = spans[i] = realloc(spans[i], 16 * 1024);
}

static int spans_run(const char *path)
{
    char first[4096];
    snprintf(first, sizeof first, "%s.1", path);
    grow_spans(16, 32 * 1024);
    if (dump(first) != 0)
        return 1;
    shrink_spans();
    grow_spans(16 * 1024, 48 * 1024);
    return dump(path);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sites") == 0)
        return sites(argc > 2 ? argv[2] : NULL);
    if (strcmp(mode, "threads") == 0 && argc > 2)
        return threads(argv[2]);
    if (strcmp(mode, "grow") == 0 && argc > 2) {
        grow_buffers();
        return dump(argv[2]);
    }
    if (strcmp(mode, "spans") == 0 && argc > 2)
        return spans_run(argv[2]);
    if (strcmp(mode, "objects") == 0 && argc > 2) {
        make_objects();
        make_buffers();
        return dump(argv[2]);
    }
    if (strcmp(mode, "leaks") == 0) {
        leak_one_way();
        leak_another();
        tidy();
        return 0;
    }
    fprintf(stderr, "usage: prof_prog sites [DUMP] | threads DUMP | leaks | objects DUMP"
                    " | grow DUMP | spans DUMP\n");
    return 2;
}
