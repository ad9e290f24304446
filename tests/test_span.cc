/*
 * test_span.cc -- blocks between the size classes and jemalloc (32 KiB ..
 * 1 MiB), and buffers realloc'ed past 4 KiB: each a run of whole pools.  What a program relies on: usable size
 * at least the request, alignment kept, contents kept by every realloc into,
 * within and out of a span, growth in place to the end of its pools, calloc
 * zeroing a reused span, frees from any thread, and the statistics.
 */
#include "test_malloc_util.h"

#include <malloc.h>
#include <string.h>

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using namespace rctest;

namespace {

const size_t kPool = 64 * 1024;
const size_t kSpanMax = 17 * kPool - 128;   /* RC_SPAN_MAX: 1 MiB fits */

TEST(Span, EverySizeUsableAndAligned)
{
    for (size_t s = 8193; s <= kSpanMax; s = s * 9 / 8 + 1) {   /* pool classes too */
        void *p = rc_malloc(opaque(s));
        ASSERT_NE(p, nullptr) << s;
        ASSERT_TRUE(aligned(p, 16));
        ASSERT_GE(rc_usable_size(p), s);
        fill(p, s, s);
        ASSERT_EQ(check(p, s, s), SIZE_MAX);
        rc_free(p);
    }
    /* the largest span's usable size is exactly the request: it ends at its
       last pool's end */
    void *p = rc_malloc(opaque(kSpanMax));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(rc_usable_size(p), kSpanMax);
    rc_free(p);
}

TEST(Span, GrowsInPlaceToTheEndOfItsPool)
{
    SKIP_IN_CHECKED_MODE();
    char *p = (char *)rc_malloc(opaque(40000));
    ASSERT_NE(p, nullptr);
    fill(p, 40000, 3);
    size_t usable = rc_usable_size(p);
    ASSERT_GE(usable, kPool - 128);          /* one pool, to its end */
    for (size_t s = 40000; s <= usable; s += s / 8) {
        char *q = (char *)rc_realloc(p, opaque(s));
        ASSERT_EQ(q, p) << "moved at " << s;
    }
    ASSERT_EQ(check(p, 40000, 3), SIZE_MAX);
    rc_free(p);
}

/* A buffer realloc'ed up out of the pools (as string builders and vectors
   grow) gets a span with room for twice its size, so it crosses from one
   pool to two without moving; shrinking it a lot (to a quarter of what it
   has held) gives the room back. */
TEST(Span, GrowingBufferGetsRoomToDouble)
{
    SKIP_IN_CHECKED_MODE();
    char *p = (char *)rc_malloc(opaque(100));
    ASSERT_NE(p, nullptr);
    fill(p, 100, 5);
    size_t s = 100;
    while (s <= 8192)                        /* through the pool classes */
        p = (char *)rc_realloc(p, opaque(s += s / 8));
    ASSERT_NE(p, nullptr);
    ASSERT_GE(rc_usable_size(p), 2 * kPool - 128) << "a growing span has room";
    char *at = p;
    for (; s < 2 * kPool - 128; s += s / 8) {
        p = (char *)rc_realloc(p, opaque(s));
        ASSERT_EQ(p, at) << "moved at " << s;
    }
    ASSERT_EQ(check(p, 100, 5), SIZE_MAX);
    p = (char *)rc_realloc(p, opaque(20000));   /* < a quarter of ~128 KiB */
    ASSERT_EQ(p, at) << "shrinks in place";
    ASSERT_LT(rc_usable_size(p), kPool) << "gave back the pools it no longer needs";
    ASSERT_EQ(check(p, 100, 5), SIZE_MAX);
    rc_free(p);
}

/* Growth past a span's pools: in place when the next pools are free, moved
   when they are not; contents kept either way. */
TEST(Span, GrowsAcrossPoolsOrMovesWithContents)
{
    for (int blocked = 0; blocked < 2; blocked++) {
        char *p = (char *)rc_malloc(opaque(100000));
        ASSERT_NE(p, nullptr);
        fill(p, 100000, 11);
        void *wall = blocked ? rc_malloc(opaque(200000)) : nullptr;
        size_t n = 100000;
        for (size_t s = n; s <= kSpanMax; s = s * 5 / 4) {
            char *q = (char *)rc_realloc(p, opaque(s));
            ASSERT_NE(q, nullptr);
            ASSERT_EQ(check(q, 100000, 11), SIZE_MAX) << s;
            ASSERT_GE(rc_usable_size(q), s);
            p = q;
            n = s;
        }
        rc_free(wall);
        rc_free(p);
    }
}

TEST(Span, CrossingsKeepContents)
{
    /* pool -> span -> jemalloc -> span -> span (shrunk in place) -> pool */
    const size_t path[] = {5000, 20000, 3 << 20, 300000, 70000, 100, 40000};
    size_t n = path[0];
    void *p = rc_malloc(n);
    ASSERT_NE(p, nullptr);
    fill(p, n, 5);
    for (size_t s : path) {
        void *q = rc_realloc(p, opaque(s));
        ASSERT_NE(q, nullptr);
        size_t keep = n < s ? n : s;
        ASSERT_EQ(check(q, keep, 5), SIZE_MAX) << n << " -> " << s;
        fill(q, s, 5);
        ASSERT_GE(rc_usable_size(q), s);
        p = q;
        n = s;
    }
    rc_free(p);
}

TEST(Span, AlignedRequests)
{
    for (size_t align : {32, 64, 128, 256, 4096, 32768}) {
        for (size_t s : {9000, 65536, 300000}) {
            void *p = nullptr;
            ASSERT_EQ(rc_posix_memalign(&p, align, s), 0);
            ASSERT_TRUE(aligned(p, align)) << align << " " << s;
            ASSERT_GE(rc_usable_size(p), s);
            memset(p, 0x5a, s);
            rc_free(p);
        }
    }
}

TEST(Span, CallocZeroesAReusedSpan)
{
    for (int i = 0; i < 20; i++) {
        size_t s = 20000 + (size_t)i * 30000;
        void *p = rc_malloc(s);
        ASSERT_NE(p, nullptr);
        memset(p, 0xab, rc_usable_size(p));
        rc_free(p);
        unsigned char *z = (unsigned char *)rc_calloc(1, s);
        ASSERT_NE(z, nullptr);
        for (size_t k = 0; k < s; k++)
            ASSERT_EQ(z[k], 0) << "byte " << k << " of " << s;
        rc_free(z);
    }
}

TEST(Span, FreedByAnotherThread)
{
    std::vector<void *> blocks;
    for (int i = 0; i < 200; i++) {
        size_t s = 10000 + (size_t)(i % 40) * 20000;
        void *p = rc_malloc(s);
        ASSERT_NE(p, nullptr);
        memset(p, i, s);
        blocks.push_back(p);
    }
    std::thread t([&] {
        for (void *p : blocks)
            rc_free(p);
    });
    t.join();
    /* and the memory is reusable from here */
    for (int i = 0; i < 200; i++) {
        void *p = rc_malloc(300000);
        ASSERT_NE(p, nullptr);
        rc_free(p);
    }
}

TEST(Span, CountedInStats)
{
    SKIP_IN_CHECKED_MODE();
    std::vector<void *> blocks;
    for (int i = 0; i < 5; i++)
        blocks.push_back(rc_malloc(100000));
    char *buf = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_NE(f, nullptr);
    rc_stats_print(f);
    fclose(f);
    const char *line = strstr(buf, "\nspans (");
    ASSERT_NE(line, nullptr) << buf;
    unsigned long in_use = 0;
    ASSERT_EQ(sscanf(strstr(line, "): ") + 3, "%lu in use", &in_use), 1) << line;
    EXPECT_GE(in_use, 5u);
    free(buf);
    for (void *p : blocks)
        rc_free(p);
}

/* The large side keeps one freed huge block for the next huge request
   (rcmalloc(7), RCMALLOC_LARGE_CACHE), but only for RCMALLOC_LARGE_DECAY_MS:
   a program that frees a huge buffer for good gets its memory back at the
   large side's next request after that. */
TEST(LargeSide, CachedHugeBlockGoesBackAfterItsDecay)
{
    SKIP_IN_CHECKED_MODE();
    const char *e = getenv("RCMALLOC_LARGE_DECAY_MS");
    long decay = e && *e ? atol(e) : 1000;
    if (decay < 0 || decay > 5000)
        GTEST_SKIP() << "RCMALLOC_LARGE_DECAY_MS=" << decay;
    const size_t kHuge = 64u << 20;
    char *p = (char *)rc_malloc(opaque(kHuge));
    ASSERT_NE(p, nullptr);
    memset(p, 1, kHuge);
    const size_t with = rss_bytes();
    rc_free(p);
    std::this_thread::sleep_for(std::chrono::milliseconds(decay + 100));
    /* a request that only the large side serves (an alignment no span
       gives): the large side's next event */
    void *q = rc_aligned_alloc(1u << 20, 4096);
    ASSERT_NE(q, nullptr);
    rc_free(q);
    const size_t after = rss_bytes();
    EXPECT_LT(after + kHuge / 2, with)
        << "resident " << (with >> 20) << " MiB with the block, " << (after >> 20)
        << " MiB " << decay + 100 << " ms after its free";
}

}  // namespace
