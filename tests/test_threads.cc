/*
 * test_threads.cc -- the allocator under threads (SPEC 2: "threads that exit
 * while holding blocks that others free, thousands of short threads").
 *
 *   CrossThreadFree     producers fill blocks with a pattern, consumers
 *                       verify and free them;
 *   ShortLivedThreads   thousands of threads that allocate, hand blocks to
 *                       others, free blocks of threads already dead, and exit;
 *   RandomConcurrent    every thread mixes malloc/calloc/realloc/aligned/free
 *                       of random sizes, verifying contents.
 *
 * Each runs through every exported surface (standard names, rc_ API), is
 * bounded in count, and finishes in a few seconds on two cores.
 */
#include "test_malloc_util.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

using namespace rctest;

namespace {

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 2654435761u + 1) {}
    uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    /* mostly small, some around any threshold, a few large */
    size_t size()
    {
        uint64_t r = next() % 1000;
        if (r < 800)
            return next() % 520;
        if (r < 980)
            return next() % 66000;
        return next() % 1200000;
    }
};

struct Block {
    void *p;
    size_t n;
    uint64_t seed;
};

/* Large blocks are filled and checked only at a sample of positions (the
   head, a stride, the last byte) to keep multi-megabyte blocks cheap; small
   ones entirely.  spot_check(p, limit, seed, n) checks the positions a
   spot_fill of n bytes wrote that lie below limit (a realloc'ed prefix). */
void spot_fill(void *p, size_t n, uint64_t seed)
{
    if (n <= 8192) {
        fill(p, n, seed);
        return;
    }
    fill(p, 4096, seed);
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 4096; i < n; i += 509)
        c[i] = pattern_byte(seed, i);
    c[n - 1] = pattern_byte(seed, n - 1);
}

size_t spot_check(const void *p, size_t limit, uint64_t seed, size_t n)
{
    if (limit > n)
        limit = n;
    if (n <= 8192)
        return check(p, limit, seed);
    size_t r = check(p, limit < 4096 ? limit : 4096, seed);
    if (r != SIZE_MAX)
        return r;
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 4096; i < limit; i += 509)
        if (c[i] != pattern_byte(seed, i))
            return i;
    if (n - 1 < limit && c[n - 1] != pattern_byte(seed, n - 1))
        return n - 1;
    return SIZE_MAX;
}

size_t spot_check(const void *p, size_t n, uint64_t seed)
{
    return spot_check(p, n, seed, n);
}

class Threads : public ::testing::TestWithParam<const Api *> {
protected:
    const Api &a() const { return *GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Api, Threads, ::testing::ValuesIn(apis()), ApiName());

}  // namespace

/* ---- producer / consumer ----------------------------------------------------------- */

TEST_P(Threads, CrossThreadFree)
{
    const Api &api = a();
    const int kProducers = 3, kConsumers = 3, kPerProducer = 40000;
    std::mutex m;
    std::condition_variable not_empty, not_full;
    std::deque<Block> q;
    int producers_left = kProducers;
    std::atomic<long> bad{0}, consumed{0};

    auto producer = [&](int id) {
        Rng rng(id + 1);
        for (int i = 0; i < kPerProducer; i++) {
            size_t n = rng.size();
            uint64_t seed = ((uint64_t)id << 32) | (uint64_t)i;
            void *p = (i % 7 == 0) ? api.calloc_(1, n) : api.malloc_(n);
            if (!p) {
                bad++;
                continue;
            }
            if (i % 7 == 0 && n && !all_zero(p, n < 4096 ? n : 4096))
                bad++;
            spot_fill(p, n, seed);
            std::unique_lock<std::mutex> l(m);
            not_full.wait(l, [&] { return q.size() < 2048; });
            q.push_back({p, n, seed});
            not_empty.notify_one();
        }
        std::lock_guard<std::mutex> l(m);
        producers_left--;
        not_empty.notify_all();
    };
    auto consumer = [&]() {
        for (;;) {
            Block b;
            {
                std::unique_lock<std::mutex> l(m);
                not_empty.wait(l, [&] { return !q.empty() || producers_left == 0; });
                if (q.empty())
                    return;
                b = q.front();
                q.pop_front();
                not_full.notify_one();
            }
            if (spot_check(b.p, b.n, b.seed) != SIZE_MAX)
                bad++;
            api.free_(b.p);
            consumed++;
        }
    };
    std::vector<std::thread> t;
    for (int i = 0; i < kProducers; i++)
        t.emplace_back(producer, i);
    for (int i = 0; i < kConsumers; i++)
        t.emplace_back(consumer);
    for (auto &th : t)
        th.join();
    EXPECT_EQ(bad.load(), 0) << "blocks corrupted or zeroing broken";
    EXPECT_EQ(consumed.load(), (long)kProducers * kPerProducer);
}

/* ---- thousands of short-lived threads ------------------------------------------------- */

namespace {

struct Shared {
    const Api *api;
    std::mutex m;
    std::vector<Block> pool;   /* blocks whose owner thread may be dead */
    std::atomic<long> bad{0};
    std::atomic<long> freed{0};
};

struct ThreadArg {
    Shared *sh;
    int id;
};

void *short_thread(void *varg)
{
    ThreadArg *arg = (ThreadArg *)varg;
    Shared *sh = arg->sh;
    Rng rng(arg->id + 1000);
    Block mine[24];
    int count = 1 + (int)(rng.next() % 24);
    for (int i = 0; i < count; i++) {
        size_t n = rng.next() % 8 ? rng.next() % 600 : rng.size();
        uint64_t seed = ((uint64_t)arg->id << 20) | (uint64_t)i;
        void *p = sh->api->malloc_(n);
        if (!p) {
            sh->bad++;
            count = i;
            break;
        }
        fill(p, n, seed);
        mine[i] = {p, n, seed};
    }
    /* free a few of our own, hand the rest over, free some of dead threads' */
    std::vector<Block> theirs;
    {
        std::lock_guard<std::mutex> l(sh->m);
        for (int i = count / 3; i < count; i++)
            sh->pool.push_back(mine[i]);
        size_t take = sh->pool.size() > 64 ? 16 : 0;
        for (size_t k = 0; k < take; k++) {
            size_t j = rng.next() % sh->pool.size();
            theirs.push_back(sh->pool[j]);
            sh->pool[j] = sh->pool.back();
            sh->pool.pop_back();
        }
    }
    for (int i = 0; i < count / 3; i++) {
        if (spot_check(mine[i].p, mine[i].n, mine[i].seed) != SIZE_MAX)
            sh->bad++;
        sh->api->free_(mine[i].p);
        sh->freed++;
    }
    for (Block &b : theirs) {
        if (spot_check(b.p, b.n, b.seed) != SIZE_MAX)
            sh->bad++;
        sh->api->free_(b.p);
        sh->freed++;
    }
    return nullptr;
}

}  // namespace

TEST_P(Threads, ShortLivedThreads)
{
    const int kThreads = 3000, kBatch = 16;
    Shared sh;
    sh.api = &a();
    std::vector<ThreadArg> args(kThreads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int base = 0; base < kThreads; base += kBatch) {
        pthread_t th[kBatch];
        int started = 0;
        for (int i = 0; i < kBatch && base + i < kThreads; i++) {
            args[base + i] = {&sh, base + i};
            ASSERT_EQ(pthread_create(&th[i], &attr, short_thread, &args[base + i]), 0);
            started++;
        }
        for (int i = 0; i < started; i++)
            pthread_join(th[i], nullptr);
    }
    pthread_attr_destroy(&attr);
    /* every thread is dead now: the main thread frees what is left */
    for (Block &b : sh.pool) {
        if (spot_check(b.p, b.n, b.seed) != SIZE_MAX)
            sh.bad++;
        a().free_(b.p);
    }
    EXPECT_EQ(sh.bad.load(), 0);
    EXPECT_GT(sh.freed.load(), (long)kThreads);
    /* the heap is still healthy */
    void *p = a().malloc_(100);
    ASSERT_NE(p, nullptr);
    a().free_(p);
}

/* Detached threads that exit while their blocks are still live elsewhere. */
TEST_P(Threads, DetachedThreadsExitHoldingBlocks)
{
    const int kThreads = 1000;
    std::mutex m;
    std::condition_variable cv;
    std::vector<Block> got;
    int done = 0;
    const Api *api = &a();
    for (int i = 0; i < kThreads; i++) {
        std::thread([&, i, api] {
            Block b[4];
            for (int k = 0; k < 4; k++) {
                size_t n = 16 + (size_t)(i * 131 + k * 977) % 3000;
                b[k] = {api->malloc_(n), n, (uint64_t)i * 4 + k};
                if (b[k].p)
                    fill(b[k].p, n, b[k].seed);
            }
            std::lock_guard<std::mutex> l(m);
            for (auto &x : b)
                got.push_back(x);
            done++;
            cv.notify_one();
        }).detach();
        if (i % 32 == 31) {   /* keep the number of live threads bounded */
            std::unique_lock<std::mutex> l(m);
            cv.wait(l, [&] { return done > i - 32; });
        }
    }
    {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return done == kThreads; });
    }
    long bad = 0;
    for (auto &b : got) {
        if (!b.p || check(b.p, b.n, b.seed) != SIZE_MAX)
            bad++;
        api->free_(b.p);
    }
    EXPECT_EQ(bad, 0);
}

/* ---- random mixed workload ---------------------------------------------------------------- */

TEST_P(Threads, RandomConcurrent)
{
    const Api &api = a();
    const int kThreads = 6, kOps = 50000, kSlots = 512;
    std::atomic<long> bad{0}, null{0}, misaligned{0}, unzeroed{0};
    /* a shared array of slots so that frees also cross threads */
    std::vector<std::atomic<Block *>> shared(256);
    for (auto &s : shared)
        s.store(nullptr);

    auto worker = [&](int id) {
        Rng rng(id * 7919 + 3);
        std::vector<Block> slot(kSlots, Block{nullptr, 0, 0});
        for (int op = 0; op < kOps; op++) {
            Block &b = slot[rng.next() % kSlots];
            uint64_t r = rng.next() % 100;
            if (b.p) {
                if (spot_check(b.p, b.n, b.seed) != SIZE_MAX)
                    bad++;
                if (r < 30) {
                    /* not 0: realloc(p, 0) frees p (glibc); ToZero tests it */
                    size_t n = rng.size() + 1;
                    void *q = api.realloc_(b.p, n);
                    if (!q) {
                        null++;
                        continue;
                    }
                    if (spot_check(q, n, b.seed, b.n) != SIZE_MAX)
                        bad++;
                    b.p = q;
                    b.n = n;
                    spot_fill(q, n, b.seed);
                } else if (r < 40) {
                    /* swap through the shared array: another thread frees it */
                    Block *box = new Block(b);
                    Block *old = shared[rng.next() % shared.size()].exchange(box);
                    b = {nullptr, 0, 0};
                    if (old) {
                        if (spot_check(old->p, old->n, old->seed) != SIZE_MAX)
                            bad++;
                        api.free_(old->p);
                        delete old;
                    }
                } else {
                    api.free_(b.p);
                    b = {nullptr, 0, 0};
                }
            } else {
                size_t n = rng.size();
                void *p;
                if (r < 10) {
                    p = api.calloc_(n, 1);
                    if (p && n && !all_zero(p, n < 8192 ? n : 8192))
                        unzeroed++;
                } else if (r < 18) {
                    size_t al = (size_t)16 << (rng.next() % 9);
                    p = api.aligned_alloc_(al, n);
                    if (p && !aligned(p, al))
                        misaligned++;
                } else {
                    p = api.malloc_(n);
                }
                if (!p) {
                    null++;
                    continue;
                }
                if (!aligned(p, 16))
                    misaligned++;
                b = {p, n, ((uint64_t)id << 40) ^ (uint64_t)op};
                spot_fill(p, n, b.seed);
            }
        }
        for (auto &b : slot)
            if (b.p) {
                if (spot_check(b.p, b.n, b.seed) != SIZE_MAX)
                    bad++;
                api.free_(b.p);
            }
    };
    std::vector<std::thread> t;
    for (int i = 0; i < kThreads; i++)
        t.emplace_back(worker, i);
    for (auto &th : t)
        th.join();
    for (auto &s : shared) {
        Block *b = s.exchange(nullptr);
        if (b) {
            if (spot_check(b->p, b->n, b->seed) != SIZE_MAX)
                bad++;
            api.free_(b->p);
            delete b;
        }
    }
    EXPECT_EQ(bad.load(), 0) << "blocks whose contents changed";
    EXPECT_EQ(null.load(), 0) << "allocations that failed";
    EXPECT_EQ(misaligned.load(), 0) << "blocks not aligned to 16 (or the alignment asked)";
    EXPECT_EQ(unzeroed.load(), 0) << "calloc blocks not zeroed";
}
