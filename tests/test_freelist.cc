/*
 * test_freelist.cc -- default mode: the links of free blocks are stored
 * encoded (rcmalloc(7), "Hardening"), so a write into a freed block -- a
 * use after free, or an overflow from the block before it -- cannot steer
 * a later malloc to an address of the writer's choosing.  Each case
 * overwrites the link of one freed block (at the head of the thread's
 * class cache, deep in a pool's free list, in a batch another thread
 * freed) in a child process, then allocates: the child must never get the
 * forged address back: at a cache's head it must abort with one line on
 * stderr saying the free list is corrupted; deeper in a list it may fault
 * in the walk that follows the link instead (rcmalloc(7)).  Uses the rc_
 * API, so it runs in both builds.
 */
#include "test_malloc_util.h"

#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <functional>

namespace {

/* Where a forged link points: memory that is not a block. */
alignas(64) unsigned char target[512];

enum { GOT_FORGED = 3, NOT_CAUGHT = 4 };

struct Outcome {
    int status;
    std::string err;
};

Outcome in_child(const std::function<void()> &body)
{
    int err[2];
    if (pipe(err) != 0)
        abort();
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        dup2(err[1], 2);
        close(err[0]);
        alarm(20);                     /* bounded, whatever happens */
        body();
        _exit(NOT_CAUGHT);
    }
    close(err[1]);
    Outcome o;
    char buf[4096];
    ssize_t n;
    while ((n = read(err[0], buf, sizeof buf)) > 0)
        o.err.append(buf, (size_t)n);
    close(err[0]);
    waitpid(pid, &o.status, 0);
    return o;
}

/* n allocations of size bytes, each used; the child fails if one is the
   forged address. */
void allocate(size_t size, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned char *q = (unsigned char *)rc_malloc(size);
        if (q >= target && q < target + sizeof target)
            _exit(GOT_FORGED);
        if (q != nullptr)
            memset(q, 0x5a, size);
    }
}

void expect_caught(const Outcome &o, const char *what)
{
    ASSERT_FALSE(WIFEXITED(o.status) && WEXITSTATUS(o.status) == GOT_FORGED)
        << what << ": malloc returned the forged address";
    ASSERT_FALSE(WIFEXITED(o.status) && WEXITSTATUS(o.status) == NOT_CAUGHT)
        << what << ": the forged link went unnoticed; stderr: " << o.err;
    ASSERT_TRUE(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT)
        << what << ": expected an abort, got status " << o.status << "; stderr: " << o.err;
    EXPECT_NE(o.err.find("rcmalloc: corrupted free list: "), std::string::npos)
        << what << ": stderr: " << o.err;
    size_t lines = 0;
    for (char c : o.err)
        lines += c == '\n';
    EXPECT_EQ(lines, 1u) << what << ": one line expected: " << o.err;
}

/* Deeper in a list, a walk that splits it may follow the forged link
   first: that faults (the address it decodes to has the top bit set)
   rather than reports.  Either way the forged address is never handed
   out and the program does not go on. */
void expect_stopped(const Outcome &o, const char *what)
{
    ASSERT_FALSE(WIFEXITED(o.status) && WEXITSTATUS(o.status) == GOT_FORGED)
        << what << ": malloc returned the forged address";
    if (WIFEXITED(o.status) && o.err.find("DEADLYSIGNAL") != std::string::npos)
        return;                        /* a sanitizer's runtime took the fault */
    ASSERT_TRUE(WIFSIGNALED(o.status)) << what << ": the program went on, status "
                                       << o.status << "; stderr: " << o.err;
    if (WTERMSIG(o.status) == SIGABRT) {
        expect_caught(o, what);
        return;
    }
    EXPECT_TRUE(WTERMSIG(o.status) == SIGSEGV || WTERMSIG(o.status) == SIGBUS)
        << what << ": signal " << WTERMSIG(o.status) << "; stderr: " << o.err;
}

/* What a buggy program writes over a freed block's first word. */
void forge_pointer(void *p)
{
    uintptr_t v = (uintptr_t)(target + 64);
    memcpy(p, &v, sizeof v);
}

void forge_zero(void *p)
{
    memset(p, 0, 16);
}

/* The block freed last, at the head of its class cache. */
void cache_case(size_t size, void (*forge)(void *))
{
    void *a = rc_malloc(size), *b = rc_malloc(size);
    rc_free(a);
    rc_free(b);
    forge(b);
    allocate(size, 64);
}

}  // namespace

TEST(FreeList, LinksAreNotStoredInTheClear)
{
    SKIP_IN_CHECKED_MODE();
    void *a = rc_malloc(48), *b = rc_malloc(48);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    rc_free(a);
    rc_free(b);                        /* b's link is a, encoded */
    uintptr_t link;
    memcpy(&link, b, sizeof link);
    EXPECT_NE(link, (uintptr_t)a);
    EXPECT_NE(link, (uintptr_t)0);
    void *c = rc_malloc(48), *d = rc_malloc(48);
    EXPECT_EQ(c, b);                   /* the list still works */
    EXPECT_EQ(d, a);
    rc_free(c);
    rc_free(d);
}

TEST(FreeList, ForgedPointerAtCacheHead)
{
    SKIP_IN_CHECKED_MODE();
    for (size_t size : {16, 48, 256, 2048}) {
        Outcome o = in_child([size] { cache_case(size, forge_pointer); });
        expect_caught(o, ("cache head, " + std::to_string(size) + " bytes").c_str());
    }
}

TEST(FreeList, ZeroedLinkAtCacheHead)
{
    SKIP_IN_CHECKED_MODE();
    Outcome o = in_child([] { cache_case(64, forge_zero); });
    expect_caught(o, "zeroed link");
}

/* Every other block of many freed, so that their pools stay in use (a
   pool freed whole is carved afresh, its old links never read): the
   oldest have left the cache for their pools' free lists, and their links
   are overwritten; the allocations that follow take those lists. */
TEST(FreeList, ForgedPointersInPoolLists)
{
    SKIP_IN_CHECKED_MODE();
    Outcome o = in_child([] {
        enum { N = 6000 };
        static void *p[N];
        for (int i = 0; i < N; i++)
            p[i] = rc_malloc(32);
        for (int i = 0; i < N; i += 2)
            rc_free(p[i]);
        for (int i = 0; i < 1000; i += 2)
            forge_pointer(p[i]);
        allocate(32, 2 * N);
    });
    expect_stopped(o, "pool free lists");
}

/* Blocks of this thread's pools freed by another thread travel in
   batches; one in the middle of a batch is overwritten after that thread
   freed it, before this one collects them.  (With links in the clear this
   case crashed too, before handing the forged address out: it guards the
   batch paths, it does not tell encoded links from plain ones.) */
TEST(FreeList, ForgedPointerInRemoteBatch)
{
    SKIP_IN_CHECKED_MODE();
    Outcome o = in_child([] {
        enum { N = 256 };
        static void *p[N];
        for (int i = 0; i < N; i++)
            p[i] = rc_malloc(80);
        pthread_t t;
        pthread_create(&t, nullptr, [](void *) -> void * {
            for (int i = 0; i < N; i++)
                rc_free(p[i]);
            return nullptr;
        }, nullptr);
        pthread_join(t, nullptr);      /* its exit flushes every batch */
        forge_pointer(p[N / 2 + 5]);
        allocate(80, 20000);
    });
    expect_stopped(o, "remote batch");
}
