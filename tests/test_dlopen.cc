/*
 * test_dlopen.cc -- rcmalloc and dlopen (SPEC 2: "It must survive ...
 * dlopen").  A module that is not linked with rcmalloc is loaded and unloaded
 * repeatedly; blocks cross between module and program in both directions,
 * also from threads, and the module's constructor/destructor allocate.
 */
#include "test_malloc_util.h"

#include <thread>

#include <gtest/gtest.h>

using namespace rctest;

#ifndef RC_DLOPEN_MOD
#error "RC_DLOPEN_MOD (path of the test module) must be defined by the build"
#endif

namespace {

struct Mod {
    void *h = nullptr;
    int (*ctor_ok)(void);
    void *(*malloc_)(size_t);
    void *(*calloc_)(size_t, size_t);
    void *(*realloc_)(void *, size_t);
    void (*free_)(void *);
    char *(*strdup_)(const char *);
    void *(*tls_block)(size_t);

    bool open()
    {
        h = dlopen(RC_DLOPEN_MOD, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            return false;
        ctor_ok = (int (*)(void))dlsym(h, "mod_ctor_ok");
        malloc_ = (void *(*)(size_t))dlsym(h, "mod_malloc");
        calloc_ = (void *(*)(size_t, size_t))dlsym(h, "mod_calloc");
        realloc_ = (void *(*)(void *, size_t))dlsym(h, "mod_realloc");
        free_ = (void (*)(void *))dlsym(h, "mod_free");
        strdup_ = (char *(*)(const char *))dlsym(h, "mod_strdup");
        tls_block = (void *(*)(size_t))dlsym(h, "mod_tls_block");
        return ctor_ok && malloc_ && calloc_ && realloc_ && free_ && strdup_ && tls_block;
    }
};

}  // namespace

/* The module's allocations and the program's share one heap. */
TEST(Dlopen, ModuleSharesTheHeap)
{
    for (int round = 0; round < 20; round++) {
        Mod m;
        ASSERT_TRUE(m.open()) << dlerror();
        ASSERT_TRUE(m.ctor_ok());
        for (size_t n : class_crossing_sizes()) {
            /* module allocates, program frees */
            void *p = m.malloc_(n);
            ASSERT_NE(p, nullptr);
            fill(p, n, n);
#ifdef RC_OVERRIDE
            if (std_names_are_ours()) {
                ASSERT_EQ(malloc_usable_size(p), rc_usable_size(p));
                p = rc_realloc(p, n + 1000);
                ASSERT_NE(p, nullptr);
                ASSERT_EQ(check(p, n, n), SIZE_MAX);
            }
#endif
            free(p);
            /* program allocates, module reallocs and frees */
            void *q = malloc(n);
            ASSERT_NE(q, nullptr);
            fill(q, n, n + 1);
            q = m.realloc_(q, 2 * n + 1);
            ASSERT_NE(q, nullptr);
            ASSERT_EQ(check(q, n, n + 1), SIZE_MAX);
            m.free_(q);
            void *z = m.calloc_(n, 1);
            ASSERT_NE(z, nullptr);
            ASSERT_TRUE(all_zero(z, n));
            free(z);
        }
        char *s = m.strdup_("a string copied inside the module");
        ASSERT_NE(s, nullptr);
        EXPECT_STREQ(s, "a string copied inside the module");
        free(s);
        ASSERT_EQ(dlclose(m.h), 0) << dlerror();
    }
}

/* Threads allocate through the module (with a TLS block freed by a key
   destructor at thread exit) while the main thread frees. */
TEST(Dlopen, ThreadsThroughTheModule)
{
    Mod m;
    ASSERT_TRUE(m.open()) << dlerror();
    std::vector<void *> blocks[4];
    std::vector<std::thread> t;
    for (int i = 0; i < 4; i++)
        t.emplace_back([&, i] {
            void *tb = m.tls_block(4000 + i);
            if (tb)
                memset(tb, i, 4000);
            for (int k = 0; k < 2000; k++) {
                size_t n = (size_t)(k * 41 + i) % 5000;
                void *p = m.malloc_(n);
                if (p)
                    fill(p, n, k + i * 100000);
                blocks[i].push_back(p);
            }
        });
    for (auto &th : t)
        th.join();
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2000; k++) {
            size_t n = (size_t)(k * 41 + i) % 5000;
            void *p = blocks[i][k];
            ASSERT_NE(p, nullptr);
            ASSERT_EQ(check(p, n, k + i * 100000), SIZE_MAX);
            free(p);
        }
    ASSERT_EQ(dlclose(m.h), 0) << dlerror();
}

/* Loading a library whose dependencies allocate in their constructors. */
TEST(Dlopen, SystemLibraries)
{
    const char *libs[] = {"libstdc++.so.6", "libm.so.6", "libz.so.1", "libexpat.so.1"};
    for (const char *name : libs) {
        void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            continue;   /* not installed here: nothing to check */
        void *p = malloc(1234);
        ASSERT_NE(p, nullptr);
        free(p);
        dlclose(h);
    }
}
