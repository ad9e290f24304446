/*
 * test_fork.cc -- fork while other threads allocate (SPEC 2: "It must survive
 * fork (also with other threads allocating)").
 *
 * Background threads allocate and free (also across threads) without pause;
 * the test forks repeatedly.  Each child arms alarm() so that a deadlock on an
 * allocator lock held at fork time kills it with SIGALRM, allocates and frees
 * on every path (small, large, aligned, realloc, a new thread, a nested fork),
 * and exits; the parent waits and asserts a normal exit with status 0.
 */
#include "test_malloc_util.h"

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

using namespace rctest;

namespace {

class Fork : public ::testing::TestWithParam<const Api *> {
protected:
    const Api &a() const { return *GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Api, Fork, ::testing::ValuesIn(apis()), ApiName());

/* Threads that keep the allocator busy (and its locks taken) during fork. */
struct Churn {
    const Api &api;
    std::atomic<bool> stop{false};
    std::atomic<long> bad{0};
    std::atomic<long> ops{0};
    std::vector<std::atomic<void *>> handoff;
    std::vector<std::thread> threads;

    Churn(const Api &a, int n) : api(a), handoff(64)
    {
        for (auto &h : handoff)
            h.store(nullptr);
        for (int i = 0; i < n; i++)
            threads.emplace_back([this, i] { run(i); });
    }
    ~Churn()
    {
        stop = true;
        for (auto &t : threads)
            t.join();
        for (auto &h : handoff)
            api.free_(h.exchange(nullptr));
    }
    void run(int id)
    {
        uint64_t s = id * 977 + 1;
        void *keep[64] = {};
        for (unsigned i = 0; !stop.load(std::memory_order_relaxed); i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = (s >> 33) % 8 ? (s >> 40) % 700 : (s >> 40) % 300000;
            unsigned k = i % 64;
            if (keep[k])
                api.free_(keep[k]);
            keep[k] = api.malloc_(n);
            if (!keep[k]) {
                bad++;
                continue;
            }
            memset(keep[k], (int)i, n < 256 ? n : 256);
            if (i % 5 == 0) {   /* cross-thread free */
                void *old = handoff[(s >> 20) % handoff.size()].exchange(keep[k]);
                keep[k] = nullptr;
                api.free_(old);
            }
            ops++;
        }
        for (void *p : keep)
            api.free_(p);
    }
};

/* ThreadSanitizer cannot follow a thread created in the child of a process
   that had other threads when it forked: it refuses ("starting new threads
   after multi-threaded fork is not supported"), and with die_after_fork=0
   fails on the thread id it still has on record.  Under TSan (configure
   --enable-tsan) such children do their thread's work on the forking
   thread instead. */
#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#elif defined(__has_feature)
constexpr bool kTsan = __has_feature(thread_sanitizer);
#else
constexpr bool kTsan = false;
#endif

/* Sizes a child allocates: mostly small, every 25th up to ~100 KB. */
size_t child_size(size_t i)
{
    return (i * 37) % (i % 25 ? 1100 : 100000);
}

/* What a child does; returns the exit status it wants.  parent_threaded:
   the process had other threads when it forked (see kTsan). */
int child_work(const Api &api, bool parent_threaded = true)
{
    alarm(10);
    std::vector<void *> v;
    for (int i = 0; i < 1500; i++) {
        size_t n = child_size(i);
        void *p = (i % 3 == 0) ? api.calloc_(1, n) : api.malloc_(n);
        if (!p)
            return 2;
        if (i % 3 == 0 && n && !all_zero(p, n))
            return 3;
        fill(p, n, i);
        v.push_back(p);
    }
    for (size_t i = 0; i < v.size(); i += 2) {
        size_t n = child_size(i);
        if (check(v[i], n, i) != SIZE_MAX)
            return 4;
        v[i] = api.realloc_(v[i], n * 2 + 17);
        if (!v[i] || check(v[i], n, i) != SIZE_MAX)
            return 5;
    }
    void *al = api.aligned_alloc_(4096, 10000);
    if (!al || !aligned(al, 4096))
        return 6;
    api.free_(al);
    /* a thread born in the child, freeing blocks the child allocated */
    std::atomic<int> tres{0};
    auto work = [&] {
        for (size_t i = 1; i < v.size(); i += 2)
            api.free_(v[i]);
        void *p = api.malloc_(12345);
        if (!p)
            tres = 1;
        api.free_(p);
    };
    if (kTsan && parent_threaded) {
        work();
    } else {
        std::thread t(work);
        t.join();
    }
    if (tres)
        return 7;
    for (size_t i = 0; i < v.size(); i += 2)
        api.free_(v[i]);
    return 0;
}

/* fork, run fn in the child, assert a clean exit 0 within the alarm. */
template <class F> void fork_and_check(F fn, const char *what)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
        int r = fn();
        _exit(r);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        FAIL() << what << ": child killed by signal " << WTERMSIG(status)
               << (WTERMSIG(status) == SIGALRM ? " (deadlock: alarm fired)" : "");
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0) << what << ": child failed at step "
                                      << WEXITSTATUS(status);
}

}  // namespace

TEST_P(Fork, SingleThreaded)
{
    const Api &api = a();
    for (int i = 0; i < 5; i++)
        fork_and_check([&] { return child_work(api, false); }, "single-threaded fork");
}

TEST_P(Fork, WhileOtherThreadsAllocate)
{
    const Api &api = a();
    Churn churn(api, 3);
    for (int i = 0; i < 20; i++) {
        /* let the threads get going between forks */
        long start = churn.ops.load();
        while (churn.ops.load() < start + 2000)
            std::this_thread::yield();
        fork_and_check([&] { return child_work(api); }, "fork with allocating threads");
    }
    EXPECT_EQ(churn.bad.load(), 0);
}

TEST_P(Fork, NestedForkAndExit)
{
    const Api &api = a();
    Churn churn(api, 2);
    for (int i = 0; i < 5; i++) {
        fork_and_check(
            [&] {
                alarm(20);
                /* the child is threaded too, then forks again */
                std::atomic<bool> stop{false};
                std::thread t;
                if (!kTsan)
                    t = std::thread([&] {
                        while (!stop)
                            api.free_(api.malloc_(300));
                    });
                int r = 0;
                for (int k = 0; k < 3 && !r; k++) {
                    fflush(stdout);
                    pid_t pid = fork();
                    if (pid < 0)
                        return 20;
                    if (pid == 0)
                        _exit(child_work(api));
                    int st;
                    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
                        r = 21;
                }
                stop = true;
                if (t.joinable())
                    t.join();
                if (r)
                    return r;
                /* leave through exit(): destructors and atexit handlers run */
                fflush(stdout);
                exit(child_work(api));
            },
            "nested fork");
    }
    EXPECT_EQ(churn.bad.load(), 0);
}

/* fork from a thread that is not the main thread, while main allocates. */
TEST_P(Fork, FromSecondaryThread)
{
    const Api &api = a();
    Churn churn(api, 2);
    for (int i = 0; i < 5; i++) {
        std::thread t([&] {
            fork_and_check([&] { return child_work(api); }, "fork from a thread");
        });
        t.join();
    }
    EXPECT_EQ(churn.bad.load(), 0);
}
