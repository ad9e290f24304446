/*
 * test_prof.cc -- the heap profiler without google-pprof (SPEC 4.2):
 * rc_prof_dump's errors, and every allocation surface working on sampled
 * blocks.  The ProfOn tests need RCMALLOC_PROF set before the library
 * starts: ProfOff.RunsProfOnTestsProfiled runs this program again with
 * RCMALLOC_PROF=1 and RCMALLOC_PROF_SAMPLE=64 (nearly every block
 * sampled), where they run and the ProfOff ones skip.
 */
#include "test_malloc_util.h"

#include <gtest/gtest.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <new>
#include <string>
#include <thread>

using namespace rctest;

namespace {

bool profiling()
{
    const char *v = getenv("RCMALLOC_PROF");
    return v != NULL && strcmp(v, "1") == 0;
}

std::string scratch_dir()
{
    const char *p = getenv("RCMALLOC_PROF_PREFIX");
    std::string s = p ? p : "./rcmalloc";
    return s.substr(0, s.rfind('/') == std::string::npos ? 0 : s.rfind('/'));
}

struct Totals {
    long long inuse_objs = -1, inuse_bytes = -1, alloc_objs = -1, alloc_bytes = -1;
};

/* The header line of a dump: raw sample counts, in use and allocated. */
Totals dump_totals(const std::string &path)
{
    EXPECT_EQ(0, rc_prof_dump(path.c_str())) << path << ": " << strerror(errno);
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    Totals t;
    EXPECT_EQ(4, sscanf(line.c_str(), "heap profile: %lld: %lld [%lld: %lld] @ heap_v2/64",
                        &t.inuse_objs, &t.inuse_bytes, &t.alloc_objs, &t.alloc_bytes))
        << line;
    return t;
}

/* ---- profiling off (as make check runs) ------------------------------------ */

TEST(ProfOff, DumpFailsWithEinval)
{
    if (profiling())
        GTEST_SKIP() << "profiling is on";
    errno = 0;
    EXPECT_EQ(-1, rc_prof_dump("/tmp/never-written.heap"));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(-1, rc_prof_dump(NULL));
    EXPECT_EQ(EINVAL, errno);
    EXPECT_NE(0, access("/tmp/never-written.heap", F_OK));
}

TEST(ProfOff, RunsProfOnTestsProfiled)
{
    if (profiling())
        GTEST_SKIP() << "profiling is on";
    char dir[] = "/tmp/rc-test-prof.XXXXXX";
    ASSERT_NE(nullptr, mkdtemp(dir));
    std::string prefix = std::string(dir) + "/p";
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        setenv("RCMALLOC_PROF", "1", 1);
        setenv("RCMALLOC_PROF_SAMPLE", "64", 1);
        setenv("RCMALLOC_PROF_PREFIX", prefix.c_str(), 1);
        execl("/proc/self/exe", "test_prof", "--gtest_filter=ProfOn.*", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the profiled run of the ProfOn tests failed (status " << status << ")";
    /* it wrote its exit profile */
    std::string exit_dump = prefix + "." + std::to_string(pid) + ".heap";
    EXPECT_EQ(0, access(exit_dump.c_str(), R_OK)) << exit_dump;
    std::string cmd = std::string("rm -rf ") + dir;
    EXPECT_EQ(0, system(cmd.c_str()));
}

/* ---- profiling on ---------------------------------------------------------- */

#define NEED_PROFILING()                                               \
    do {                                                               \
        if (!profiling())                                              \
            GTEST_SKIP() << "runs profiled, from RunsProfOnTestsProfiled"; \
    } while (0)

TEST(ProfOn, DumpErrors)
{
    NEED_PROFILING();
    std::string dir = scratch_dir();
    errno = 0;
    EXPECT_EQ(-1, rc_prof_dump((dir + "/no/such/dir/x.heap").c_str()));
    EXPECT_EQ(ENOENT, errno);
    errno = 0;
    EXPECT_EQ(-1, rc_prof_dump(dir.c_str()));
    EXPECT_EQ(EISDIR, errno);
    errno = 0;
    EXPECT_EQ(-1, rc_prof_dump("/dev/full"));        /* the write's error */
    EXPECT_EQ(ENOSPC, errno);
    if (geteuid() != 0) {
        std::string ro = dir + "/ro";
        ASSERT_EQ(0, mkdir(ro.c_str(), 0500));
        errno = 0;
        EXPECT_EQ(-1, rc_prof_dump((ro + "/x.heap").c_str()));
        EXPECT_EQ(EACCES, errno);
    }
    /* NULL: <prefix>.<pid>.<n>.heap, numbered */
    EXPECT_EQ(0, rc_prof_dump(NULL));
    EXPECT_EQ(0, rc_prof_dump(NULL));
    std::string base = std::string(getenv("RCMALLOC_PROF_PREFIX")) + "." +
                       std::to_string(getpid());
    EXPECT_EQ(0, access((base + ".1.heap").c_str(), R_OK));
    EXPECT_EQ(0, access((base + ".2.heap").c_str(), R_OK));
}

/* Every surface on blocks that are (nearly all) sampled: contents kept by
   realloc, usable sizes, alignments, zeroing, sized frees. */
void exercise(const Api &api)
{
    SCOPED_TRACE(api.name);
    for (size_t size : {1, 8, 24, 64, 100, 1000, 4096, 40000, 300000, 3000000}) {
        char *p = (char *)api.malloc_(size);
        ASSERT_NE(nullptr, p);
        EXPECT_EQ(0u, (uintptr_t)p % 16);
        EXPECT_GE(api.usable(p), size);
        fill(p, size, size);
        char *q = (char *)api.realloc_(p, size * 3);
        ASSERT_NE(nullptr, q);
        EXPECT_EQ(SIZE_MAX, check(q, size, size));
        char *r = (char *)api.realloc_(q, size / 2 + 1);
        ASSERT_NE(nullptr, r);
        EXPECT_EQ(SIZE_MAX, check(r, size / 2 + 1, size));
        api.free_(r);

        char *z = (char *)api.calloc_(1, size);
        ASSERT_NE(nullptr, z);
        EXPECT_TRUE(all_zero(z, size));
        if (api.free_sized_)
            api.free_sized_(z, size);
        else
            api.free_(z);

        for (size_t align : {32, 64, 4096, 65536}) {
            void *a = api.aligned_alloc_(align, size);
            ASSERT_NE(nullptr, a);
            EXPECT_EQ(0u, (uintptr_t)a % align);
            memset(a, 7, size);
            api.free_(a);
            void *m = NULL;
            ASSERT_EQ(0, api.posix_memalign_(&m, align, size));
            EXPECT_EQ(0u, (uintptr_t)m % align);
            api.free_(m);
        }
    }
}

TEST(ProfOn, SurfacesOnSampledBlocks)
{
    NEED_PROFILING();
    Totals before = dump_totals(scratch_dir() + "/before.heap");
    exercise(rc_api());
#ifdef RC_OVERRIDE
    exercise(std_api());
    for (int i = 0; i < 100; i++) {
        auto *v = new std::string(1000, 'x');
        auto *a = new (std::align_val_t(256)) char[5000];
        EXPECT_EQ(0u, (uintptr_t)a % 256);
        delete v;
        ::operator delete[](a, std::align_val_t(256));
        int *n = new (std::nothrow) int[300];
        ASSERT_NE(nullptr, n);
        ::operator delete[](n, 300 * sizeof(int));
    }
#endif
    Totals after = dump_totals(scratch_dir() + "/after.heap");
    /* most of it was sampled (a block of s bytes with probability
       1 - exp(-s/64)), and all of it freed: the samples left again.
       Without the standard names (--disable-override, the sanitizer
       builds) only the rc_ half runs: about 90 samples. */
#ifdef RC_OVERRIDE
    EXPECT_GT(after.alloc_objs - before.alloc_objs, 200);
#else
    EXPECT_GT(after.alloc_objs - before.alloc_objs, 50);
#endif
    EXPECT_LE(after.inuse_objs, before.inuse_objs + 8);
}

/* Blocks freed by another thread leave the profile. */
TEST(ProfOn, FreedByAnotherThread)
{
    NEED_PROFILING();
    const int n = 1000;
    static void *blocks[n];
    for (int i = 0; i < n; i++)
        blocks[i] = rc_malloc(4096);    /* at a rate of 64, every one sampled */
    Totals held = dump_totals(scratch_dir() + "/held.heap");
    std::thread t([] {
        for (int i = 0; i < n; i++)
            rc_free(blocks[i]);
    });
    t.join();
    Totals freed = dump_totals(scratch_dir() + "/freed.heap");
    EXPECT_NEAR(held.inuse_objs - n, freed.inuse_objs, 4);
    EXPECT_NEAR(held.inuse_bytes - n * 4096LL, freed.inuse_bytes, 4 * 4096);
}

/* fork while other threads allocate sampled blocks: the child's profiler
   works (its lock was not held across the fork). */
TEST(ProfOn, ForkWhileSampling)
{
    NEED_PROFILING();
    std::atomic<bool> stop{false};
    std::thread t([&] {
        while (!stop.load())
            rc_free(rc_malloc(200));
    });
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            void *p = rc_malloc(100000);
            std::string path = scratch_dir() + "/child." + std::to_string(getpid()) + ".heap";
            int rc = rc_prof_dump(path.c_str());
            rc_free(p);
            _exit(rc == 0 ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(pid, waitpid(pid, &status, 0));
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    stop.store(true);
    t.join();
}

} // namespace
