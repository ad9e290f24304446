/*
 * test_realloc.cc -- realloc / rc_realloc / reallocarray: growing and
 * shrinking across size classes and across the pool/jemalloc boundary with
 * contents kept, realloc(NULL, n), failures that leave the old block intact.
 */
#include "test_malloc_util.h"

#include <errno.h>

#include <gtest/gtest.h>

using namespace rctest;

class Realloc : public ::testing::TestWithParam<const Api *> {
protected:
    const Api &a() const { return *GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Api, Realloc, ::testing::ValuesIn(apis()), ApiName());

/* Grow one block step by step from 1 byte to 4 MiB, then shrink it back;
   the common prefix must survive every move. */
TEST_P(Realloc, GrowAndShrinkKeepContents)
{
    const uint64_t seed = 77;
    size_t n = 1;
    void *p = a().malloc_(n);
    ASSERT_NE(p, nullptr);
    fill(p, n, seed);
    std::vector<size_t> steps;
    for (size_t s = 2; s <= ((size_t)4 << 20); s = s * 5 / 4 + 3)
        steps.push_back(s);
    for (size_t s : steps) {
        void *q = a().realloc_(p, opaque(s));
        ASSERT_NE(q, nullptr) << "grow to " << s;
        ASSERT_TRUE(aligned(q, 16));
        ASSERT_GE(a().usable(q), s);
        ASSERT_EQ(check(q, n, seed), SIZE_MAX) << "grow " << n << " -> " << s;
        fill(q, s, seed);
        p = q;
        n = s;
    }
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
        size_t s = *it;
        void *q = a().realloc_(p, opaque(s));
        ASSERT_NE(q, nullptr) << "shrink to " << s;
        ASSERT_TRUE(aligned(q, 16));
        ASSERT_GE(a().usable(q), s);
        ASSERT_EQ(check(q, s, seed), SIZE_MAX) << "shrink " << n << " -> " << s;
        p = q;
        n = s;
    }
    a().free_(p);
}

/* Every pair of (from, to) among sizes on both sides of every boundary. */
TEST_P(Realloc, AllPairsAcrossClasses)
{
    std::vector<size_t> sizes = class_crossing_sizes();
    for (size_t from : sizes) {
        for (size_t to : sizes) {
            void *p = a().malloc_(opaque(from));
            ASSERT_NE(p, nullptr);
            fill(p, from, from ^ to);
            /* a neighbour, so in-place growth is not always possible */
            void *nb = a().malloc_(opaque(from));
            ASSERT_NE(nb, nullptr);
            fill(nb, from, 1);
            void *q = a().realloc_(p, opaque(to));
            ASSERT_NE(q, nullptr) << from << " -> " << to;
            ASSERT_GE(a().usable(q), to);
            size_t keep = from < to ? from : to;
            ASSERT_EQ(check(q, keep, from ^ to), SIZE_MAX) << from << " -> " << to;
            fill(q, to, 2);
            ASSERT_EQ(check(nb, from, 1), SIZE_MAX) << "neighbour clobbered by realloc "
                                                     << from << " -> " << to;
            a().free_(q);
            a().free_(nb);
        }
    }
}

/* Growing inside the usable size, and many small steps within one class. */
TEST_P(Realloc, WithinUsableSize)
{
    for (size_t n : class_crossing_sizes()) {
        void *p = a().malloc_(opaque(n));
        ASSERT_NE(p, nullptr);
        size_t u = a().usable(p);
        fill(p, u, n);
        void *q = a().realloc_(p, opaque(u));
        ASSERT_NE(q, nullptr);
        ASSERT_GE(a().usable(q), u);
        ASSERT_EQ(check(q, u, n), SIZE_MAX) << n;
        a().free_(q);
    }
    void *p = a().malloc_(1);
    ASSERT_NE(p, nullptr);
    fill(p, 1, 9);
    for (size_t s = 2; s <= 9000; s++) {
        p = a().realloc_(p, opaque(s));
        ASSERT_NE(p, nullptr);
        ASSERT_EQ(check(p, s - 1, 9), SIZE_MAX) << s;
        ((unsigned char *)p)[s - 1] = pattern_byte(9, s - 1);
    }
    a().free_(p);
}

TEST_P(Realloc, NullActsAsMalloc)
{
    for (size_t n : class_crossing_sizes()) {
        void *p = a().realloc_(nullptr, opaque(n));
        ASSERT_NE(p, nullptr) << n;
        ASSERT_TRUE(aligned(p, 16));
        ASSERT_GE(a().usable(p), n);
        fill(p, n, n);
        a().free_(p);
    }
    void *p = a().realloc_(nullptr, opaque(0));
    ASSERT_NE(p, nullptr) << "realloc(NULL, 0) must act as malloc(0)";
    a().free_(p);
}

/* realloc(p, 0): glibc frees p and returns NULL; a non-NULL result must be a
   valid block.  Either way nothing may leak or crash. */
TEST_P(Realloc, ToZero)
{
    for (size_t n : class_crossing_sizes()) {
        void *p = a().malloc_(opaque(n));
        ASSERT_NE(p, nullptr);
        void *q = a().realloc_(p, opaque(0));
        if (q)
            a().free_(q);
    }
}

TEST_P(Realloc, FailureKeepsOldBlock)
{
    for (size_t n : class_crossing_sizes()) {
        void *p = a().malloc_(opaque(n));
        ASSERT_NE(p, nullptr);
        fill(p, n, n + 1);
        for (size_t bad : {SIZE_MAX, SIZE_MAX - 16, SIZE_MAX / 2 + 1, (size_t)1 << 62}) {
            errno = 0;
            void *q = a().realloc_(p, opaque(bad));
            ASSERT_EQ(q, nullptr) << n << " -> " << bad;
            EXPECT_EQ(errno, ENOMEM) << n << " -> " << bad;
            ASSERT_EQ(check(p, n, n + 1), SIZE_MAX) << "old block damaged by failed realloc";
        }
        /* still a live, usable block */
        void *q = a().realloc_(p, opaque(n + 100));
        ASSERT_NE(q, nullptr);
        ASSERT_EQ(check(q, n, n + 1), SIZE_MAX);
        a().free_(q);
    }
}

/* Blocks of many sizes held at once while each is realloc'ed in turn. */
TEST_P(Realloc, ManyLiveBlocksShuffle)
{
    const int N = 400;
    std::vector<void *> p(N);
    std::vector<size_t> n(N);
    uint64_t rng = 12345;
    auto next = [&rng]() {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return rng >> 33;
    };
    auto pick = [&]() -> size_t {
        uint64_t r = next() % 100;
        if (r < 70)
            return next() % 1100;
        if (r < 95)
            return next() % 70000;
        return next() % 600000;
    };
    for (int i = 0; i < N; i++) {
        n[i] = pick();
        p[i] = a().malloc_(n[i]);
        ASSERT_NE(p[i], nullptr);
        fill(p[i], n[i], i);
    }
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < N; i++) {
            size_t s = pick() + 1;   /* realloc(p, 0) frees p: see ToZero */
            void *q = a().realloc_(p[i], s);
            ASSERT_NE(q, nullptr);
            size_t keep = s < n[i] ? s : n[i];
            ASSERT_EQ(check(q, keep, i), SIZE_MAX) << n[i] << " -> " << s;
            fill(q, s, i);
            p[i] = q;
            n[i] = s;
        }
        for (int i = 0; i < N; i++)
            ASSERT_EQ(check(p[i], n[i], i), SIZE_MAX) << "block " << i << " corrupted";
    }
    for (int i = 0; i < N; i++)
        a().free_(p[i]);
}

#ifdef RC_OVERRIDE

TEST(Reallocarray, BehavesLikeRealloc)
{
    void *p = reallocarray(nullptr, opaque(10), opaque(10));
    ASSERT_NE(p, nullptr);
    ASSERT_GE(malloc_usable_size(p), 100u);
    fill(p, 100, 4);
    p = reallocarray(p, opaque(1000), opaque(100));
    ASSERT_NE(p, nullptr);
    ASSERT_GE(malloc_usable_size(p), 100000u);
    EXPECT_EQ(check(p, 100, 4), SIZE_MAX);
    p = reallocarray(p, opaque(3), opaque(7));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(check(p, 21, 4), SIZE_MAX);
    free(p);
}

TEST(Reallocarray, OverflowFailsAndKeepsBlock)
{
    const size_t cases[][2] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX / 2 + 1, 2}, {1, SIZE_MAX}, {SIZE_MAX / 2, 1},
    };
    for (size_t n : {(size_t)24, (size_t)4000, (size_t)300000}) {
        void *p = malloc(n);
        ASSERT_NE(p, nullptr);
        fill(p, n, 8);
        for (auto &c : cases) {
            errno = 0;
            void *q = reallocarray(p, opaque(c[0]), opaque(c[1]));
            EXPECT_EQ(q, nullptr) << c[0] << " x " << c[1];
            EXPECT_EQ(errno, ENOMEM) << c[0] << " x " << c[1];
            if (q) {
                p = q;
                continue;
            }
            ASSERT_EQ(check(p, n, 8), SIZE_MAX) << "old block damaged";
        }
        free(p);
        errno = 0;
        EXPECT_EQ(reallocarray(nullptr, opaque(SIZE_MAX), opaque(SIZE_MAX)), nullptr);
        EXPECT_EQ(errno, ENOMEM);
    }
}

#endif /* RC_OVERRIDE */
