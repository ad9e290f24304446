/*
 * test_malloc_util.h -- helpers shared by the allocator-core tests.
 *
 * The tests check rcmalloc against its contract (SPEC.md sections 1-3), not
 * against an implementation: every API is reached through an Api table, so the
 * same test body runs on the standard names (override build only) and on the
 * rc_ names (always).  Fill patterns depend on the block's identity so that a
 * block handed out twice, or two overlapping blocks, are caught.
 */
#ifndef TEST_MALLOC_UTIL_H
#define TEST_MALLOC_UTIL_H

#include "config.h"
#include "rcmalloc.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

/* Tests of the default layout (spans, usable sizes, pools returned as soon
   as their blocks are freed) do not apply when the environment chose a
   checked mode: RCMALLOC_SECURE=1 and RCMALLOC_DEBUG=1 serve large blocks
   from mappings of their own, report requested sizes as usable, and hold
   freed blocks in a quarantine. */
static inline bool checked_mode_env(void)
{
    const char *s = getenv("RCMALLOC_SECURE"), *d = getenv("RCMALLOC_DEBUG");
    return (s && !strcmp(s, "1")) || (d && !strcmp(d, "1"));
}
#define SKIP_IN_CHECKED_MODE() \
    do { if (checked_mode_env()) GTEST_SKIP() << "default layout only"; } while (0)

/* C23 / newer-glibc names: declared weak so that a library that lacks them
   fails the test that uses them instead of failing the link. */
extern "C" {
void free_sized(void *ptr, size_t size) __attribute__((weak));
void free_aligned_sized(void *ptr, size_t alignment, size_t size) __attribute__((weak));
}

namespace rctest {

/* Resident set size from /proc/self/statm (no stdio: no allocation). */
inline size_t rss_bytes()
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char b[128];
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    unsigned long size = 0, resident = 0;
    if (sscanf(b, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- one allocator surface ------------------------------------------------ */

struct Api {
    const char *name;
    void *(*malloc_)(size_t);
    void *(*calloc_)(size_t, size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
    size_t (*usable)(void *);
    void *(*aligned_alloc_)(size_t, size_t);
    int (*posix_memalign_)(void **, size_t, size_t);
    void (*free_sized_)(void *, size_t);   /* NULL when the surface lacks it */
};

inline size_t std_usable(void *p) { return malloc_usable_size(p); }
inline size_t rc_usable(void *p) { return rc_usable_size(p); }
inline void std_free_sized(void *p, size_t n) { free_sized(p, n); }

inline const Api &rc_api()
{
    static const Api api = {"rc", rc_malloc, rc_calloc, rc_realloc, rc_free,
                            rc_usable, rc_aligned_alloc, rc_posix_memalign,
                            rc_free_sized};
    return api;
}

#ifdef RC_OVERRIDE
inline const Api &std_api()
{
    static const Api api = {"std", malloc, calloc, realloc, free, std_usable,
                            aligned_alloc, posix_memalign,
                            free_sized ? std_free_sized : nullptr};
    return api;
}
#endif

/* Every surface this build exports: gtest parameter list. */
inline std::vector<const Api *> apis()
{
    std::vector<const Api *> v;
#ifdef RC_OVERRIDE
    v.push_back(&std_api());
#endif
    v.push_back(&rc_api());
    return v;
}

struct ApiName {
    template <class P> std::string operator()(const P &info) const
    {
        return info.param->name;
    }
};

/* ---- patterns --------------------------------------------------------------- */

inline unsigned char pattern_byte(uint64_t seed, size_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 8) ^ 0x5a);
}

inline void fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *c = static_cast<unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        c[i] = pattern_byte(seed, i);
}

/* Index of the first byte that does not match, or SIZE_MAX when all do. */
inline size_t check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *c = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        if (c[i] != pattern_byte(seed, i))
            return i;
    return SIZE_MAX;
}

inline bool all_zero(const void *p, size_t n)
{
    const unsigned char *c = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

inline bool aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* ---- sizes ------------------------------------------------------------------- */

/* The size sweep of the issue: 0, 1, every 16 bytes to 1024, powers of two
   and +-1 up to 64 KiB, and every size from 256 to 4608, every 8 to 16 KiB,
   every 56 to 64 KiB -- dense enough to straddle the small/large threshold
   (at least 512, settable at run time) without knowing its value. */
inline std::vector<size_t> sweep_sizes()
{
    std::vector<size_t> v;
    v.push_back(0);
    v.push_back(1);
    for (size_t s = 16; s <= 1024; s += 16)
        v.push_back(s);
    for (size_t s = 2; s <= 65536; s *= 2) {
        v.push_back(s - 1);
        v.push_back(s);
        v.push_back(s + 1);
    }
    for (size_t s = 256; s <= 4608; s++)
        v.push_back(s);
    for (size_t s = 4608; s <= 16384; s += 8)
        v.push_back(s);
    for (size_t s = 16384; s <= 65536 + 56; s += 56)
        v.push_back(s);
    return v;
}

/* A few sizes on each side: small pools, around any threshold, jemalloc. */
inline std::vector<size_t> class_crossing_sizes()
{
    return {1,    8,     15,    16,    17,     24,     48,     100,    255,
            256,  257,   511,   512,   513,    700,    1023,   1024,   1025,
            2047, 2048,  2049,  3000,  4095,   4096,   4097,   8191,   8192,
            8193, 16384, 32769, 65535, 65536,  65537,  100000, 262144, 1 << 20,
            (1 << 20) + 3, 3 << 20};
}

/* Object file that defines symbol `name` in the global scope ("" if none). */
inline std::string defining_object(const char *name)
{
    void *sym = dlsym(RTLD_DEFAULT, name);
    if (!sym)
        return "";
    Dl_info info;
    if (!dladdr(sym, &info) || !info.dli_fname)
        return "?";
    return info.dli_fname;
}

inline std::string object_of(const void *addr)
{
    Dl_info info;
    if (!dladdr(const_cast<void *>(addr), &info) || !info.dli_fname)
        return "?";
    return info.dli_fname;
}

/* Mixing the standard names with rc_ calls on one block is only safe when
   the standard names are rcmalloc's; tests that mix skip (with a pointer to
   the resolution test that fails) rather than crash the whole binary. */
inline bool std_names_are_ours()
{
    return defining_object("malloc").find("librcmalloc") != std::string::npos &&
           defining_object("free").find("librcmalloc") != std::string::npos;
}

#define RC_REQUIRE_STD_NAMES()                                                  \
    do {                                                                        \
        if (!rctest::std_names_are_ours())                                      \
            GTEST_SKIP() << "malloc/free are not rcmalloc's here "              \
                            "(StdNames.ResolveToRcmalloc reports it)";          \
    } while (0)

/* Keep the optimizer from proving anything about sizes or results. */
inline size_t opaque(size_t n)
{
    volatile size_t v = n;
    return v;
}

}  // namespace rctest

#endif /* TEST_MALLOC_UTIL_H */
