/*
 * test_malloc.cc -- conformance of malloc/calloc/free/usable_size and the
 * glibc extras, through the standard names (override build) and the rc_ API.
 *
 * Contract: SPEC.md sections 2 and 3 (glibc semantics, 16-byte minimum
 * alignment, unique malloc(0), NULL + ENOMEM on impossible sizes, free keeps
 * errno).  Alignment tests are in test_align.cc, realloc in test_realloc.cc.
 */
#include "test_malloc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

using namespace rctest;

class Malloc : public ::testing::TestWithParam<const Api *> {
protected:
    const Api &a() const { return *GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Api, Malloc, ::testing::ValuesIn(apis()), ApiName());

/* ---- size sweep ---------------------------------------------------------- */

TEST_P(Malloc, SweepWritesWholeUsableSize)
{
    for (size_t n : sweep_sizes()) {
        void *p = a().malloc_(opaque(n));
        ASSERT_NE(p, nullptr) << "size " << n;
        ASSERT_TRUE(aligned(p, 16)) << "size " << n << " at " << p;
        size_t u = a().usable(p);
        ASSERT_GE(u, n) << "size " << n;
        fill(p, u, n);
        ASSERT_EQ(check(p, u, n), SIZE_MAX) << "size " << n;
        a().free_(p);
    }
}

/* Many live blocks of one size: none may overlap, each keeps its contents. */
TEST_P(Malloc, LiveBlocksDoNotOverlap)
{
    for (size_t n : class_crossing_sizes()) {
        size_t count = n <= 4096 ? 600 : n <= 65536 ? 64 : 8;
        std::vector<std::pair<uintptr_t, size_t>> blocks;
        for (size_t i = 0; i < count; i++) {
            void *p = a().malloc_(opaque(n));
            ASSERT_NE(p, nullptr) << "size " << n;
            ASSERT_TRUE(aligned(p, 16));
            size_t u = a().usable(p);
            ASSERT_GE(u, n);
            fill(p, u, (uintptr_t)p);
            blocks.emplace_back((uintptr_t)p, u);
        }
        std::sort(blocks.begin(), blocks.end());
        for (size_t i = 0; i + 1 < blocks.size(); i++)
            ASSERT_LE(blocks[i].first + blocks[i].second, blocks[i + 1].first)
                << "size " << n << ": blocks overlap";
        for (auto &b : blocks) {
            ASSERT_EQ(check((void *)b.first, b.second, b.first), SIZE_MAX)
                << "size " << n << ": block " << (void *)b.first << " corrupted";
            a().free_((void *)b.first);
        }
    }
}

TEST_P(Malloc, ZeroSizeGivesUniquePointers)
{
    std::set<void *> seen;
    std::vector<void *> v;
    for (int i = 0; i < 1000; i++) {
        void *p = a().malloc_(opaque(0));
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(aligned(p, 16));
        ASSERT_TRUE(seen.insert(p).second) << "malloc(0) returned " << p << " twice";
        v.push_back(p);
    }
    for (void *p : v)
        a().free_(p);
}

TEST_P(Malloc, ImpossibleSizesFailWithENOMEM)
{
    const size_t sizes[] = {SIZE_MAX,         SIZE_MAX - 1, SIZE_MAX - 4095,
                            SIZE_MAX / 2,     SIZE_MAX / 2 + 1,
                            (size_t)PTRDIFF_MAX + 1, (size_t)1 << 62};
    for (size_t n : sizes) {
        errno = 0;
        void *p = a().malloc_(opaque(n));
        EXPECT_EQ(p, nullptr) << "size " << n;
        EXPECT_EQ(errno, ENOMEM) << "size " << n;
        if (p)
            a().free_(p);
    }
    /* and the allocator still works afterwards */
    void *p = a().malloc_(opaque(100));
    ASSERT_NE(p, nullptr);
    a().free_(p);
}

TEST_P(Malloc, FreeNull)
{
    errno = 777;
    a().free_(nullptr);
    EXPECT_EQ(errno, 777);
}

TEST_P(Malloc, FreePreservesErrno)
{
    for (size_t n : class_crossing_sizes()) {
        void *p = a().malloc_(opaque(n));
        ASSERT_NE(p, nullptr);
        errno = 4242;
        a().free_(p);
        EXPECT_EQ(errno, 4242) << "size " << n;
    }
    void *p = a().aligned_alloc_(4096, opaque(100));
    ASSERT_NE(p, nullptr);
    errno = EILSEQ;
    a().free_(p);
    EXPECT_EQ(errno, EILSEQ);
}

/* ---- calloc -------------------------------------------------------------------- */

TEST_P(Malloc, CallocZeroesFreshAndReusedMemory)
{
    for (size_t n : class_crossing_sizes()) {
        /* dirty a batch of blocks of this size, free them, calloc again */
        std::vector<void *> dirty;
        for (int i = 0; i < 32; i++) {
            void *p = a().malloc_(opaque(n));
            ASSERT_NE(p, nullptr);
            memset(p, 0xA5, a().usable(p));
            dirty.push_back(p);
        }
        for (void *p : dirty)
            a().free_(p);
        for (int i = 0; i < 32; i++) {
            void *p = a().calloc_(opaque(1), opaque(n));
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(aligned(p, 16));
            ASSERT_TRUE(all_zero(p, n)) << "calloc(1, " << n << ") not zeroed";
            dirty[i] = p;
        }
        for (void *p : dirty)
            a().free_(p);
        /* element-count form */
        void *p = a().calloc_(opaque(n), opaque(3));
        ASSERT_NE(p, nullptr);
        ASSERT_GE(a().usable(p), 3 * n);
        ASSERT_TRUE(all_zero(p, 3 * n)) << "calloc(" << n << ", 3) not zeroed";
        a().free_(p);
    }
}

TEST_P(Malloc, CallocZeroCountsGiveUniquePointers)
{
    void *p = a().calloc_(opaque(0), opaque(16));
    void *q = a().calloc_(opaque(16), opaque(0));
    void *r = a().calloc_(opaque(0), opaque(0));
    ASSERT_NE(p, nullptr);
    ASSERT_NE(q, nullptr);
    ASSERT_NE(r, nullptr);
    EXPECT_NE(p, q);
    EXPECT_NE(q, r);
    EXPECT_NE(p, r);
    a().free_(p);
    a().free_(q);
    a().free_(r);
}

TEST_P(Malloc, CallocOverflowFailsWithENOMEM)
{
    const size_t cases[][2] = {
        {SIZE_MAX, SIZE_MAX},
        {SIZE_MAX / 2 + 1, 2},
        {2, SIZE_MAX / 2 + 1},
        {(size_t)1 << 32, (size_t)1 << 32},
        {(size_t)1 << 33, (size_t)1 << 31},
        {SIZE_MAX / 16 + 1, 16},
        {1, SIZE_MAX},            /* no overflow, just impossible */
        {SIZE_MAX / 2, 1},
    };
    for (auto &c : cases) {
        errno = 0;
        void *p = a().calloc_(opaque(c[0]), opaque(c[1]));
        EXPECT_EQ(p, nullptr) << "calloc(" << c[0] << ", " << c[1] << ")";
        EXPECT_EQ(errno, ENOMEM) << "calloc(" << c[0] << ", " << c[1] << ")";
        if (p)
            a().free_(p);
    }
}

/* ---- usable size, sized free ------------------------------------------------------- */

TEST_P(Malloc, UsableSizeOfNullIsZero)
{
    EXPECT_EQ(a().usable(nullptr), 0u);
}

TEST_P(Malloc, SizedFree)
{
    ASSERT_NE(a().free_sized_, nullptr) << a().name << ": free_sized not exported";
    for (size_t n : class_crossing_sizes()) {
        void *p = a().malloc_(opaque(n));
        ASSERT_NE(p, nullptr);
        fill(p, n, n);
        errno = 99;
        a().free_sized_(p, n);
        EXPECT_EQ(errno, 99);
        p = a().calloc_(opaque(n), 1);
        ASSERT_NE(p, nullptr);
        a().free_sized_(p, n);
    }
    /* the size of a realloc'ed block is the last size asked for */
    void *p = a().malloc_(opaque(10));
    ASSERT_NE(p, nullptr);
    p = a().realloc_(p, opaque(5000));
    ASSERT_NE(p, nullptr);
    a().free_sized_(p, 5000);
    a().free_sized_(nullptr, 0);
}

/* Pointers from the standard names and from rc_ are interchangeable. */
#ifdef RC_OVERRIDE
TEST(MallocMixed, StdAndRcShareOneHeap)
{
    RC_REQUIRE_STD_NAMES();
    for (size_t n : class_crossing_sizes()) {
        void *p = malloc(opaque(n));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(rc_usable_size(p), malloc_usable_size(p));
        fill(p, n, 3);
        p = rc_realloc(p, opaque(n * 2 + 1));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(check(p, n, 3), SIZE_MAX);
        free(p);
        void *q = rc_malloc(opaque(n));
        ASSERT_NE(q, nullptr);
        q = realloc(q, opaque(n / 2 + 1));
        ASSERT_NE(q, nullptr);
        rc_free(q);
    }
}
#endif

/* ---- the standard names only --------------------------------------------------------- */

#ifdef RC_OVERRIDE

/* SPEC 1: "in a process running rcmalloc, malloc and friends must always
   resolve to rcmalloc, never to jemalloc's" (nor glibc's). */
TEST(StdNames, ResolveToRcmalloc)
{
    const char *names[] = {"malloc",        "free",          "calloc",
                           "realloc",       "reallocarray",  "posix_memalign",
                           "aligned_alloc", "memalign",      "valloc",
                           "pvalloc",       "malloc_usable_size", "free_sized",
                           "free_aligned_sized", "malloc_trim", "malloc_stats",
                           "mallinfo2"};
    for (const char *name : names) {
        std::string obj = defining_object(name);
        EXPECT_NE(obj.find("librcmalloc"), std::string::npos)
            << name << " resolves to '" << obj << "'";
    }
    /* the addresses this executable itself calls */
    EXPECT_NE(object_of((void *)&malloc).find("librcmalloc"), std::string::npos)
        << "malloc -> " << object_of((void *)&malloc);
    EXPECT_NE(object_of((void *)&free).find("librcmalloc"), std::string::npos)
        << "free -> " << object_of((void *)&free);
}

TEST(StdNames, VallocIsPageAligned)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t n : {(size_t)0, (size_t)1, (size_t)100, page - 1, page, page + 1,
                     3 * page, (size_t)1 << 20}) {
        void *p = valloc(opaque(n));
        ASSERT_NE(p, nullptr) << n;
        EXPECT_TRUE(aligned(p, page)) << "valloc(" << n << ") = " << p;
        size_t u = malloc_usable_size(p);
        EXPECT_GE(u, n);
        fill(p, u, 5);
        EXPECT_EQ(check(p, u, 5), SIZE_MAX);
        free(p);
    }
    errno = 0;
    EXPECT_EQ(valloc(opaque(SIZE_MAX)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
}

TEST(StdNames, PvallocRoundsToPages)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t n : {(size_t)0, (size_t)1, (size_t)100, page - 1, page, page + 1,
                     3 * page + 7}) {
        void *p = pvalloc(opaque(n));
        ASSERT_NE(p, nullptr) << n;
        EXPECT_TRUE(aligned(p, page)) << "pvalloc(" << n << ") = " << p;
        size_t want = (n + page - 1) / page * page;   /* glibc: pvalloc(0) is malloc(0)-like */
        size_t u = malloc_usable_size(p);
        EXPECT_GE(u, want) << "pvalloc(" << n << ")";
        fill(p, want, 6);
        EXPECT_EQ(check(p, want, 6), SIZE_MAX);
        free(p);
    }
    errno = 0;
    EXPECT_EQ(pvalloc(opaque(SIZE_MAX)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(pvalloc(opaque(SIZE_MAX - page / 2)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
}

TEST(StdNames, FreeAlignedSized)
{
    ASSERT_NE((void *)free_aligned_sized, nullptr) << "free_aligned_sized not exported";
    for (size_t al = 16; al <= ((size_t)1 << 16); al <<= 1) {
        for (size_t n : {al, 3 * al, al * 5 / 2}) {
            void *p = aligned_alloc(al, opaque(n));
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(aligned(p, al));
            fill(p, n, al);
            errno = 31;
            free_aligned_sized(p, al, n);
            EXPECT_EQ(errno, 31);
        }
    }
    free_aligned_sized(nullptr, 64, 0);
}

TEST(StdNames, MallocTrimKeepsLiveBlocks)
{
    std::vector<void *> keep, drop;
    for (int i = 0; i < 2000; i++) {
        size_t n = 16 + (size_t)(i * 37) % 3000;
        void *p = malloc(n);
        ASSERT_NE(p, nullptr);
        fill(p, n, (uintptr_t)p);
        (i % 3 ? drop : keep).push_back(p);
    }
    void *big = malloc(opaque(8 << 20));
    ASSERT_NE(big, nullptr);
    fill(big, 8 << 20, 1);
    for (void *p : drop)
        free(p);
    int r = malloc_trim(0);
    EXPECT_TRUE(r == 0 || r == 1) << r;
    r = malloc_trim(1 << 20);
    EXPECT_TRUE(r == 0 || r == 1) << r;
    for (int i = 0, k = 0; i < 2000; i++) {
        if (i % 3)
            continue;
        size_t n = 16 + (size_t)(i * 37) % 3000;
        void *p = keep[k++];
        ASSERT_EQ(check(p, n, (uintptr_t)p), SIZE_MAX) << "block lost by malloc_trim";
        free(p);
    }
    ASSERT_EQ(check(big, 8 << 20, 1), SIZE_MAX);
    free(big);
    void *p = malloc(100);
    ASSERT_NE(p, nullptr);
    free(p);
}

/* glibc semantics: uordblks + hblkhd count the bytes the program holds.
   (rcmalloc's figures cost the fast path nothing: they are read from the
   pool headers and jemalloc when asked, so they are always there.) */
TEST(StdNames, Mallinfo2CountsLiveBytes)
{
    struct mallinfo2 before = mallinfo2();
    std::vector<void *> v;
    for (int i = 0; i < 4096; i++)
        v.push_back(malloc(opaque(1000)));   /* ~4 MB in small blocks */
    void *big = malloc(opaque(4 << 20));      /* and 4 MB in one block */
    struct mallinfo2 during = mallinfo2();
    size_t held_before = before.uordblks + before.hblkhd;
    size_t held_during = during.uordblks + during.hblkhd;
    EXPECT_GE(held_during, held_before + (6u << 20))
        << "before " << held_before << " during " << held_during;
    for (void *p : v)
        free(p);
    free(big);
    struct mallinfo2 after = mallinfo2();
    EXPECT_LT(after.uordblks + after.hblkhd, held_during - (6u << 20));
}

/* malloc_stats() writes a report to stderr (fd 2). */
TEST(StdNames, MallocStatsWritesToStderr)
{
    char path[] = "/tmp/rctest-stats-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    void *p = malloc(100);
    fflush(stderr);
    int saved = dup(2);
    ASSERT_GE(saved, 0);
    dup2(fd, 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    free(p);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    close(fd);
    EXPECT_GT(st.st_size, 0) << "malloc_stats() printed nothing";
}

#endif /* RC_OVERRIDE */

/* rc_stats_print: human-readable report on the given stream. */
TEST(RcApi, StatsPrintWritesReport)
{
    std::vector<void *> v;
    for (size_t n : class_crossing_sizes())
        v.push_back(rc_malloc(n));
    FILE *f = tmpfile();
    ASSERT_NE(f, nullptr);
    rc_stats_print(f);
    fflush(f);
    long len = ftell(f);
    fclose(f);
    for (void *p : v)
        rc_free(p);
    EXPECT_GT(len, 0) << "rc_stats_print wrote nothing";
}

/* The disable-override library must not export the standard names. */
#ifndef RC_OVERRIDE
TEST(RcApi, StandardNamesAreNotExported)
{
    for (const char *name : {"malloc", "free", "calloc", "realloc", "_Znwm", "_ZdlPv"}) {
        std::string obj = defining_object(name);
        EXPECT_EQ(obj.find("librcmalloc"), std::string::npos)
            << name << " exported by " << obj << " in a --disable-override build";
    }
}
#endif
