/*
 * test_align.cc -- aligned allocation: posix_memalign, aligned_alloc,
 * memalign and rc_aligned_alloc/rc_posix_memalign, alignments 8 .. 4 MiB,
 * EINVAL for bad alignments, ENOMEM for impossible sizes.
 */
#include "test_malloc_util.h"

#include <errno.h>

#include <algorithm>

#include <gtest/gtest.h>

using namespace rctest;

namespace {

/* One aligned-allocation entry point, normalized to (alignment, size) -> ptr
   with errno set on failure. */
struct AlignFn {
    const char *name;
    void *(*alloc)(size_t al, size_t n);
    void (*free_)(void *);
    size_t (*usable)(void *);
    bool rejects_non_pow2;   /* NULL+EINVAL; else may round the alignment up */
    size_t min_alignment;    /* smallest alignment the call accepts */
};

/* the standard-name wrappers are unused in a --disable-override build */
[[maybe_unused]] void *via_posix_memalign(size_t al, size_t n)
{
    void *p = (void *)0x1;
    int r = posix_memalign(&p, al, n);
    if (r) {
        errno = r;
        return nullptr;
    }
    return p;
}

void *via_rc_posix_memalign(size_t al, size_t n)
{
    void *p = (void *)0x1;
    int r = rc_posix_memalign(&p, al, n);
    if (r) {
        errno = r;
        return nullptr;
    }
    return p;
}

[[maybe_unused]] void *via_aligned_alloc(size_t al, size_t n) { return aligned_alloc(al, n); }
[[maybe_unused]] void *via_memalign(size_t al, size_t n) { return memalign(al, n); }
void *via_rc_aligned_alloc(size_t al, size_t n) { return rc_aligned_alloc(al, n); }

std::vector<const AlignFn *> align_fns()
{
    static const AlignFn fns[] = {
#ifdef RC_OVERRIDE
        {"posix_memalign", via_posix_memalign, free, std_usable, true, sizeof(void *)},
        {"aligned_alloc", via_aligned_alloc, free, std_usable, true, 1},
        {"memalign", via_memalign, free, std_usable, false, 1},
#endif
        {"rc_posix_memalign", via_rc_posix_memalign, rc_free, rc_usable, true,
         sizeof(void *)},
        {"rc_aligned_alloc", via_rc_aligned_alloc, rc_free, rc_usable, true, 1},
    };
    std::vector<const AlignFn *> v;
    for (auto &f : fns)
        v.push_back(&f);
    return v;
}

struct FnName {
    template <class P> std::string operator()(const P &info) const
    {
        return info.param->name;
    }
};

class Align : public ::testing::TestWithParam<const AlignFn *> {
protected:
    const AlignFn &f() const { return *GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Fn, Align, ::testing::ValuesIn(align_fns()), FnName());

const size_t kMaxAlign = (size_t)4 << 20;

}  // namespace

TEST_P(Align, PowersOfTwoUpTo4MiB)
{
    for (size_t al = 8; al <= kMaxAlign; al <<= 1) {
        size_t sizes[] = {0, 1, 8, 16, 24, al / 2 + 1, al - 1, al, al + 1, 3 * al};
        for (size_t n : sizes) {
            if (n > (size_t)16 << 20)
                continue;
            errno = 0;
            void *p = f().alloc(opaque(al), opaque(n));
            ASSERT_NE(p, nullptr) << f().name << "(" << al << ", " << n << ") errno " << errno;
            ASSERT_TRUE(aligned(p, al)) << f().name << "(" << al << ", " << n << ") = " << p;
            size_t u = f().usable(p);
            ASSERT_GE(u, n) << f().name << "(" << al << ", " << n << ")";
            fill(p, u, al + n);
            ASSERT_EQ(check(p, u, al + n), SIZE_MAX);
            f().free_(p);
        }
    }
}

TEST_P(Align, SmallAlignmentsGiveUsableBlocks)
{
    for (size_t al = f().min_alignment; al < 8; al <<= 1) {
        for (size_t n : {(size_t)1, (size_t)7, (size_t)33, (size_t)5000}) {
            void *p = f().alloc(opaque(al), opaque(n));
            ASSERT_NE(p, nullptr) << f().name << "(" << al << ", " << n << ")";
            ASSERT_TRUE(aligned(p, al));
            ASSERT_GE(f().usable(p), n);
            fill(p, n, 1);
            f().free_(p);
        }
    }
}

/* Aligned blocks that are live together do not overlap and keep contents. */
TEST_P(Align, LiveAlignedBlocksDoNotOverlap)
{
    for (size_t al = 16; al <= ((size_t)1 << 20); al <<= 2) {
        size_t n = al < 4096 ? 100 : al / 2 + 3;
        std::vector<std::pair<uintptr_t, size_t>> v;
        for (int i = 0; i < (al <= 4096 ? 200 : 12); i++) {
            void *p = f().alloc(opaque(al), opaque(n));
            ASSERT_NE(p, nullptr);
            ASSERT_TRUE(aligned(p, al));
            size_t u = f().usable(p);
            fill(p, u, (uintptr_t)p);
            v.emplace_back((uintptr_t)p, u);
        }
        std::sort(v.begin(), v.end());
        for (size_t i = 0; i + 1 < v.size(); i++)
            ASSERT_LE(v[i].first + v[i].second, v[i + 1].first) << "alignment " << al;
        for (auto &b : v) {
            ASSERT_EQ(check((void *)b.first, b.second, b.first), SIZE_MAX);
            f().free_((void *)b.first);
        }
    }
}

TEST_P(Align, BadAlignmentIsEINVAL)
{
    const size_t bad[] = {3, 5, 6, 12, 24, 48, 100, 4095, 4097, 3 << 20,
                          SIZE_MAX, SIZE_MAX / 2};
    for (size_t al : bad) {
        errno = 0;
        void *p = f().alloc(opaque(al), opaque(64));
        if (f().rejects_non_pow2) {
            EXPECT_EQ(p, nullptr) << f().name << "(" << al << ", 64)";
            EXPECT_EQ(errno, EINVAL) << f().name << "(" << al << ", 64)";
        } else if (p) {
            /* glibc's memalign rounds a non-power-of-two alignment up */
            size_t want = 1;
            while (want < al)
                want <<= 1;
            EXPECT_TRUE(aligned(p, want)) << f().name << "(" << al << ") = " << p;
        } else {
            EXPECT_TRUE(errno == EINVAL || errno == ENOMEM) << errno;
        }
        if (p)
            f().free_(p);
    }
    /* alignment 0 (glibc's memalign takes it as malloc; aligned_alloc
       rejects it since glibc 2.38), and below sizeof(void *) for
       posix_memalign */
    for (size_t al = 0; al < f().min_alignment; al = al ? al << 1 : 1) {
        errno = 0;
        void *p = f().alloc(opaque(al), opaque(64));
        if (!f().rejects_non_pow2 && p) {
            EXPECT_TRUE(aligned(p, 16));
            f().free_(p);
            continue;
        }
        EXPECT_EQ(p, nullptr) << f().name << "(" << al << ", 64)";
        EXPECT_EQ(errno, EINVAL) << f().name << "(" << al << ", 64)";
        if (p)
            f().free_(p);
    }
}

TEST_P(Align, ImpossibleSizeIsENOMEM)
{
    for (size_t al : {(size_t)16, (size_t)64, (size_t)4096, (size_t)1 << 20}) {
        for (size_t n : {SIZE_MAX, SIZE_MAX - al + 1, SIZE_MAX / 2 + 1, (size_t)1 << 62}) {
            errno = 0;
            void *p = f().alloc(opaque(al), opaque(n));
            EXPECT_EQ(p, nullptr) << f().name << "(" << al << ", " << n << ")";
            EXPECT_EQ(errno, ENOMEM) << f().name << "(" << al << ", " << n << ")";
            if (p)
                f().free_(p);
        }
    }
    /* an alignment no address space can satisfy: fails, one way or another */
    errno = 0;
    void *p = f().alloc(opaque((size_t)1 << 63), opaque(16));
    EXPECT_EQ(p, nullptr);
    EXPECT_TRUE(errno == ENOMEM || errno == EINVAL) << errno;
}

/* posix_memalign leaves *out alone (or NULL) when it fails (POSIX). */
TEST(PosixMemalign, OutputUntouchedOnFailure)
{
    struct {
        const char *name;
        int (*fn)(void **, size_t, size_t);
        void (*free_)(void *);
    } fns[] = {
#ifdef RC_OVERRIDE
        {"posix_memalign", posix_memalign, free},
#endif
        {"rc_posix_memalign", rc_posix_memalign, rc_free},
    };
    for (auto &f : fns) {
        void *sentinel = (void *)&fns;
        void *p = sentinel;
        EXPECT_EQ(f.fn(&p, opaque(24), 16), EINVAL) << f.name;
        EXPECT_TRUE(p == sentinel || p == nullptr) << f.name;
        p = sentinel;
        EXPECT_EQ(f.fn(&p, opaque(4), 16), EINVAL) << f.name;
        EXPECT_TRUE(p == sentinel || p == nullptr) << f.name;
        p = sentinel;
        EXPECT_EQ(f.fn(&p, opaque(64), opaque(SIZE_MAX)), ENOMEM) << f.name;
        EXPECT_TRUE(p == sentinel || p == nullptr) << f.name;
        /* and does not need errno: the result is the return value */
        p = nullptr;
        ASSERT_EQ(f.fn(&p, opaque(64), 0), 0) << f.name;
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(aligned(p, 64));
        f.free_(p);
    }
}

/* Aligned blocks can be realloc'ed (alignment need not survive, contents do). */
TEST(AlignRealloc, ContentsSurvive)
{
    for (size_t al : {(size_t)32, (size_t)256, (size_t)4096, (size_t)1 << 16}) {
        void *p = rc_aligned_alloc(al, 300);
        ASSERT_NE(p, nullptr);
        fill(p, 300, al);
        p = rc_realloc(p, opaque(100000));
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(aligned(p, 16));
        EXPECT_EQ(check(p, 300, al), SIZE_MAX);
        p = rc_realloc(p, opaque(40));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(check(p, 40, al), SIZE_MAX);
        rc_free(p);
    }
}
