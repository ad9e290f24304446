/*
 * test_cxx.cc -- every C++ operator new/delete form (SPEC 2: plain, array,
 * nothrow, sized, std::align_val_t and their combinations), bad_alloc and
 * nullptr on failure, the new_handler protocol, and STL containers.  In the
 * override build every form must resolve into librcmalloc (a library that
 * links jemalloc but misses one form sends that form to jemalloc's).
 */
#include "test_malloc_util.h"

#include <deque>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

using namespace rctest;

namespace {

const size_t kSizes[] = {0, 1, 15, 16, 17, 100, 511, 512, 513, 1000, 4096, 5000,
                         65536, 70000, 1 << 20};
const size_t kAligns[] = {16, 32, 64, 128, 256, 4096, 1 << 16, 1 << 20};

/* Store through a volatile so that no new/delete pair can be elided. */
[[maybe_unused]] void *keep(void *p)
{
    static void *volatile sink;
    sink = p;
    return sink;
}

[[maybe_unused]] void use(void *p, size_t n, size_t al = 16)
{
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(aligned(p, al)) << p << " not aligned to " << al;
    fill(p, n, n);
    ASSERT_EQ(check(p, n, n), SIZE_MAX);
}

struct alignas(64) Line {
    char c[64];
};
struct alignas(4096) Page {
    char c[100];
};

}  // namespace

/* The operator tests check rcmalloc's operators: in a --disable-override
   build the operators are libstdc++'s (over the system malloc), not ours. */
#ifdef RC_OVERRIDE

TEST(Cxx, PlainAndArray)
{
    for (size_t n : kSizes) {
        void *p = ::operator new(opaque(n));
        use(p, n);
        ::operator delete(p);
        p = ::operator new[](opaque(n));
        use(p, n);
        ::operator delete[](p);
    }
    int *i = new int(42);
    EXPECT_EQ(*i, 42);
    delete i;
    int *arr = new int[1000]();
    for (int k = 0; k < 1000; k++)
        ASSERT_EQ(arr[k], 0);
    delete[] arr;
}

TEST(Cxx, Sized)
{
    for (size_t n : kSizes) {
        void *p = ::operator new(opaque(n));
        use(p, n);
        ::operator delete(p, n);
        p = ::operator new[](opaque(n));
        use(p, n);
        ::operator delete[](p, n);
    }
}

TEST(Cxx, Nothrow)
{
    for (size_t n : kSizes) {
        void *p = ::operator new(opaque(n), std::nothrow);
        use(p, n);
        ::operator delete(p, std::nothrow);
        p = ::operator new[](opaque(n), std::nothrow);
        use(p, n);
        ::operator delete[](p, std::nothrow);
    }
    int *i = new (std::nothrow) int(7);
    ASSERT_NE(i, nullptr);
    delete i;
}

TEST(Cxx, Aligned)
{
    for (size_t al : kAligns) {
        std::align_val_t a{al};
        for (size_t n : {(size_t)1, (size_t)24, al - 1, al, al + 1, 3 * al}) {
            void *p = ::operator new(opaque(n), a);
            use(p, n, al);
            ::operator delete(p, a);
            p = ::operator new[](opaque(n), a);
            use(p, n, al);
            ::operator delete[](p, a);
            /* sized + aligned */
            p = ::operator new(opaque(n), a);
            use(p, n, al);
            ::operator delete(p, n, a);
            p = ::operator new[](opaque(n), a);
            use(p, n, al);
            ::operator delete[](p, n, a);
            /* nothrow + aligned */
            p = ::operator new(opaque(n), a, std::nothrow);
            use(p, n, al);
            ::operator delete(p, a, std::nothrow);
            p = ::operator new[](opaque(n), a, std::nothrow);
            use(p, n, al);
            ::operator delete[](p, a, std::nothrow);
        }
    }
}

TEST(Cxx, OverAlignedTypes)
{
    std::vector<Line *> lines;
    for (int i = 0; i < 500; i++) {
        Line *l = new Line;
        ASSERT_TRUE(aligned(l, 64));
        memset(l->c, i, sizeof l->c);
        lines.push_back(l);
    }
    for (int i = 0; i < 500; i++) {
        ASSERT_EQ((unsigned char)lines[i]->c[63], (unsigned char)i);
        delete lines[i];
    }
    Page *pg = new Page[5];
    for (int i = 0; i < 5; i++)
        ASSERT_TRUE(aligned(&pg[i], 4096));
    delete[] pg;
    Page *one = new (std::nothrow) Page;
    ASSERT_NE(one, nullptr);
    ASSERT_TRUE(aligned(one, 4096));
    delete one;
    std::vector<Line> v(1000);
    ASSERT_TRUE(aligned(v.data(), 64));
}

TEST(Cxx, ZeroSizeIsUnique)
{
    std::set<void *> seen;
    std::vector<void *> v;
    for (int i = 0; i < 200; i++) {
        void *p = ::operator new(opaque(0));
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(seen.insert(p).second);
        v.push_back(p);
    }
    for (void *p : v)
        ::operator delete(p);
}

TEST(Cxx, HugeThrowsBadAlloc)
{
    for (size_t n : {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX - 4095, (size_t)1 << 62}) {
        EXPECT_THROW(::operator delete(keep(::operator new(opaque(n)))), std::bad_alloc) << n;
        EXPECT_THROW(::operator delete[](keep(::operator new[](opaque(n)))), std::bad_alloc)
            << n;
        EXPECT_THROW(::operator delete(keep(::operator new(opaque(n), std::align_val_t{64})),
                                       std::align_val_t{64}),
                     std::bad_alloc)
            << n;
        EXPECT_THROW(
            ::operator delete[](keep(::operator new[](opaque(n), std::align_val_t{4096})),
                                std::align_val_t{4096}),
            std::bad_alloc)
            << n;
    }
    /* a new-expression: bad_array_new_length is a bad_alloc too */
    size_t huge = opaque(SIZE_MAX / 4);
    EXPECT_THROW(delete[] (long *)keep(new long[huge]), std::bad_alloc);
    /* and the heap still works */
    std::vector<int> v(1000, 1);
    EXPECT_EQ(std::accumulate(v.begin(), v.end(), 0), 1000);
}

TEST(Cxx, HugeNothrowReturnsNull)
{
    for (size_t n : {SIZE_MAX, SIZE_MAX / 2, (size_t)1 << 62}) {
        EXPECT_EQ(::operator new(opaque(n), std::nothrow), nullptr) << n;
        EXPECT_EQ(::operator new[](opaque(n), std::nothrow), nullptr) << n;
        EXPECT_EQ(::operator new(opaque(n), std::align_val_t{256}, std::nothrow), nullptr) << n;
        EXPECT_EQ(::operator new[](opaque(n), std::align_val_t{256}, std::nothrow), nullptr)
            << n;
    }
}

/* operator new calls the installed new_handler on failure and retries. */
namespace {
int handler_calls;
void handler_once()
{
    handler_calls++;
    std::set_new_handler(nullptr);   /* next failure throws */
}
}  // namespace

TEST(Cxx, NewHandlerIsCalled)
{
    handler_calls = 0;
    std::set_new_handler(handler_once);
    EXPECT_THROW(keep(::operator new(opaque(SIZE_MAX / 2))), std::bad_alloc);
    EXPECT_EQ(handler_calls, 1);
    handler_calls = 0;
    std::set_new_handler(handler_once);
    EXPECT_THROW(keep(::operator new(opaque(SIZE_MAX / 2), std::align_val_t{64})),
                 std::bad_alloc);
    EXPECT_EQ(handler_calls, 1);
    handler_calls = 0;
    std::set_new_handler(handler_once);
    EXPECT_EQ(::operator new(opaque(SIZE_MAX / 2), std::nothrow), nullptr);
    EXPECT_EQ(handler_calls, 1);
    std::set_new_handler(nullptr);
}

#endif /* RC_OVERRIDE */

TEST(Cxx, StlContainers)
{
    const int N = 20000;
    std::vector<std::string> vs;
    for (int i = 0; i < N; i++)
        vs.push_back("item-" + std::to_string(i * 7919 % N) + std::string(i % 50, 'x'));
    std::sort(vs.begin(), vs.end());
    for (int i = 1; i < N; i++)
        ASSERT_LE(vs[i - 1], vs[i]);

    std::map<int, std::string> m;
    std::unordered_map<std::string, int> um;
    for (int i = 0; i < N; i++) {
        m[i * 31 % N] = std::to_string(i);
        um[std::to_string(i)] = i;
    }
    ASSERT_EQ(m.size(), (size_t)N);
    ASSERT_EQ(um.size(), (size_t)N);
    for (int i = 0; i < N; i += 97)
        ASSERT_EQ(um[m[i * 31 % N]], i);

    std::list<std::vector<int>> l;
    for (int i = 0; i < 2000; i++)
        l.emplace_back(i % 100, i);
    long total = 0;
    for (auto &v : l)
        total += std::accumulate(v.begin(), v.end(), 0L);
    long want = 0;
    for (int i = 0; i < 2000; i++)
        want += (long)(i % 100) * i;
    ASSERT_EQ(total, want);

    std::deque<std::shared_ptr<std::string>> dq;
    for (int i = 0; i < N; i++) {
        auto s = std::make_shared<std::string>(std::to_string(i));
        if (i % 2)
            dq.push_back(s);
        else
            dq.push_front(s);
    }
    ASSERT_EQ(*dq.front(), std::to_string(N - 2));
    ASSERT_EQ(*dq.back(), std::to_string(N - 1));
    std::string big;
    for (int i = 0; i < 100000; i++)
        big += (char)('a' + i % 26);
    ASSERT_EQ(big.size(), 100000u);
    ASSERT_EQ(big[99999], (char)('a' + 99999 % 26));
    auto up = std::make_unique<Line[]>(100);
    ASSERT_TRUE(aligned(up.get(), 64));
}

#ifdef RC_OVERRIDE
TEST(Cxx, EveryFormResolvesToRcmalloc)
{
    const char *names[] = {
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
        "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t",
        "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
        "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
        "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t"};
    for (const char *name : names) {
        std::string obj = defining_object(name);
        EXPECT_NE(obj.find("librcmalloc"), std::string::npos)
            << name << " resolves to '" << obj << "'";
    }
}

/* Blocks from new can be inspected with the C API: they are rcmalloc's. */
TEST(Cxx, NewBlocksBelongToRcmalloc)
{
    if (defining_object("_Znwm").find("librcmalloc") == std::string::npos)
        GTEST_SKIP() << "operator new is not rcmalloc's (EveryFormResolvesToRcmalloc fails)";
    for (size_t n : kSizes) {
        void *p = ::operator new(opaque(n));
        ASSERT_GE(rc_usable_size(p), n);
        ::operator delete(p);
    }
}
#endif
