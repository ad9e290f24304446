/*
 * test_dlopen_lib.cc -- dlopen librcmalloc itself into a program that is not
 * linked with it (a plugin host loading a plugin that uses rc_malloc).  The
 * program's own malloc stays glibc's; everything allocated through the
 * library's entry points must be released through the library's entry points.
 * In the override build the library's own malloc/free and operator new/delete
 * (looked up in its handle) must also pair with each other -- which catches a
 * library whose operator new calls the process's malloc through the PLT.
 *
 * Static TLS: librcmalloc (with the jemalloc linked into it) uses
 * initial-exec TLS; glibc keeps only a small surplus
 * of static TLS for libraries loaded later, and a plain dlopen may fail with
 * "cannot allocate memory in static TLS block".  main() then re-executes the
 * test with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=... (the documented
 * remedy) and DlopenLib.PlainDlopen reports the limitation as a skip.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#ifndef RC_LIBSO
#error "RC_LIBSO (path of librcmalloc.so) must be defined by the build"
#endif

namespace {

struct Lib {
    void *h = nullptr;
    void *(*malloc_)(size_t);
    void *(*calloc_)(size_t, size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
    void *(*aligned_)(size_t, size_t);
    size_t (*usable)(const void *);
};

/* What the first, plain dlopen said (set by main before any test runs). */
std::string plain_dlopen_error;

Lib &lib()
{
    static Lib l;
    if (!l.h) {
        l.h = dlopen(RC_LIBSO, RTLD_NOW | RTLD_LOCAL);
        if (l.h) {
            l.malloc_ = (void *(*)(size_t))dlsym(l.h, "rc_malloc");
            l.calloc_ = (void *(*)(size_t, size_t))dlsym(l.h, "rc_calloc");
            l.realloc_ = (void *(*)(void *, size_t))dlsym(l.h, "rc_realloc");
            l.free_ = (void (*)(void *))dlsym(l.h, "rc_free");
            l.aligned_ = (void *(*)(size_t, size_t))dlsym(l.h, "rc_aligned_alloc");
            l.usable = (size_t(*)(const void *))dlsym(l.h, "rc_usable_size");
        }
    }
    return l;
}

bool pattern_ok(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return false;
    return true;
}

void pattern(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

}  // namespace

TEST(DlopenLib, PlainDlopen)
{
    const char *tun = getenv("GLIBC_TUNABLES");
    if (getenv("RC_TEST_DLOPEN_REEXEC"))
        GTEST_SKIP() << "a plain dlopen of librcmalloc failed (" << plain_dlopen_error
                     << "); the tests ran with GLIBC_TUNABLES=" << (tun ? tun : "");
    ASSERT_NE(lib().h, nullptr) << dlerror();
}

TEST(DlopenLib, LoadsAndServesRcApi)
{
    Lib &l = lib();
    ASSERT_NE(l.h, nullptr) << dlerror();
    ASSERT_TRUE(l.malloc_ && l.calloc_ && l.realloc_ && l.free_ && l.aligned_ && l.usable);
    std::vector<std::pair<unsigned char *, size_t>> v;
    for (size_t n = 0; n < 300000; n = n * 3 / 2 + 1) {
        unsigned char *p = (unsigned char *)l.malloc_(n);
        ASSERT_NE(p, nullptr) << n;
        ASSERT_EQ((uintptr_t)p % 16, 0u);
        ASSERT_GE(l.usable(p), n);
        pattern(p, n, (unsigned char)n);
        v.emplace_back(p, n);
    }
    for (auto &b : v) {
        ASSERT_TRUE(pattern_ok(b.first, b.second, (unsigned char)b.second));
        unsigned char *q = (unsigned char *)l.realloc_(b.first, b.second * 2 + 5);
        ASSERT_NE(q, nullptr);
        ASSERT_TRUE(pattern_ok(q, b.second, (unsigned char)b.second));
        l.free_(q);
    }
    void *z = l.calloc_(1000, 10);
    ASSERT_NE(z, nullptr);
    for (int i = 0; i < 10000; i++)
        ASSERT_EQ(((unsigned char *)z)[i], 0);
    l.free_(z);
    void *al = l.aligned_(1 << 16, 100);
    ASSERT_NE(al, nullptr);
    ASSERT_EQ((uintptr_t)al % (1 << 16), 0u);
    l.free_(al);
    errno = 0;
    ASSERT_EQ(l.malloc_(SIZE_MAX), nullptr);
    ASSERT_EQ(errno, ENOMEM);
}

TEST(DlopenLib, ThreadsUseTheLoadedLibrary)
{
    Lib &l = lib();
    ASSERT_NE(l.h, nullptr) << dlerror();
    std::vector<void *> handed[4];
    std::vector<std::thread> t;
    for (int i = 0; i < 4; i++)
        t.emplace_back([&, i] {
            for (int k = 0; k < 5000; k++) {
                size_t n = (size_t)(k * 13 + i) % 3000 + 1;
                unsigned char *p = (unsigned char *)l.malloc_(n);
                if (!p) {
                    handed[i].push_back(nullptr);
                    continue;
                }
                pattern(p, n, (unsigned char)k);
                if (k % 2)
                    handed[i].push_back(p);
                else
                    l.free_(p);
            }
        });
    for (auto &th : t)
        th.join();
    for (int i = 0; i < 4; i++) {
        int j = 0;
        for (int k = 1; k < 5000; k += 2, j++) {
            size_t n = (size_t)(k * 13 + i) % 3000 + 1;
            unsigned char *p = (unsigned char *)handed[i][j];
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(pattern_ok(p, n, (unsigned char)k));
            l.free_(p);
        }
    }
}

#ifdef RC_OVERRIDE
/* The library's standard names, called through its handle, pair with each
   other and with its rc_ names; so do its operator new/delete. */
TEST(DlopenLib, OwnStandardNamesPairUp)
{
    Lib &l = lib();
    ASSERT_NE(l.h, nullptr) << dlerror();
    typedef void *(*alloc_t)(size_t);
    typedef void (*free_t)(void *);
    struct {
        const char *alloc, *dealloc;
    } pairs[] = {
        {"malloc", "free"},   {"malloc", "rc_free"}, {"rc_malloc", "free"},
        {"_Znwm", "_ZdlPv"},  {"_Znam", "_ZdaPv"},   {"_Znwm", "free"},
    };
    for (auto &pr : pairs) {
        alloc_t a = (alloc_t)dlsym(l.h, pr.alloc);
        free_t f = (free_t)dlsym(l.h, pr.dealloc);
        ASSERT_NE((void *)a, nullptr) << pr.alloc;
        ASSERT_NE((void *)f, nullptr) << pr.dealloc;
        Dl_info ia, iff;
        ASSERT_TRUE(dladdr((void *)a, &ia));
        ASSERT_TRUE(dladdr((void *)f, &iff));
        /* ASSERT: calling a foreign free on our block could crash */
        ASSERT_NE(strstr(ia.dli_fname, "librcmalloc"), nullptr)
            << pr.alloc << " found in " << ia.dli_fname;
        ASSERT_NE(strstr(iff.dli_fname, "librcmalloc"), nullptr)
            << pr.dealloc << " found in " << iff.dli_fname;
        for (size_t n = 1; n < 500000; n = n * 2 + 3) {
            unsigned char *p = (unsigned char *)a(n);
            ASSERT_NE(p, nullptr);
            EXPECT_GE(l.usable(p), n) << pr.alloc << " block not owned by rcmalloc";
            pattern(p, n, 1);
            f(p);
        }
    }
}
#endif

int main(int argc, char **argv)
{
    if (!getenv("RC_TEST_DLOPEN_REEXEC")) {
        void *h = dlopen(RC_LIBSO, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *err = dlerror();
            if (err && strstr(err, "static TLS")) {
                fprintf(stderr, "plain dlopen failed: %s\nre-executing with more static TLS\n",
                        err);
                setenv("RC_TEST_DLOPEN_REEXEC", err, 1);
                setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=65536", 1);
                execv("/proc/self/exe", argv);
                perror("execv /proc/self/exe");
                return 1;
            }
        } else {
            dlclose(h);
        }
    } else {
        plain_dlopen_error = getenv("RC_TEST_DLOPEN_REEXEC");
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
