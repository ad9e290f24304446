/*
 * test_thread_memory.cc -- memory that threads leave behind is reused and
 * returned (SPEC 2: "threads that exit while holding blocks that others
 * free, thousands of short threads"; rcmalloc(7), Threads and Returning
 * memory).  What a user relies on, measured through the public statistics
 * (rc_stats_print: pools in use, arenas mapped, free pools resident) and
 * /proc/self/statm:
 *
 *   Waves                 1200 waves of 2-4 threads allocate mixed sizes,
 *                         keep some in a long-lived ring, free some and pass
 *                         the rest to the next wave, then exit: pools in use
 *                         and resident memory stop growing (the figures after
 *                         the last wave are those after wave 100 plus a
 *                         constant, not a multiple of the waves run), and
 *                         once all is freed the pools in use are back to
 *                         where they started;
 *   BlockedProducer...    a thread allocates 32 MiB, hands every block to
 *                         consumers and blocks (stays alive); the consumers
 *                         free it all and, after three idle periods, allocate
 *                         as much themselves: they reuse the blocked thread's
 *                         memory instead of mapping as much again, and it
 *                         goes back to the kernel; the producer, woken,
 *                         still works.  QuietProcess: nothing else happens
 *                         meanwhile; BusyProcess: short threads keep coming
 *                         and going meanwhile;
 *   ExitedHoldersReused   threads exit holding blocks that others free (each
 *                         freer in another order): pools emptied go back,
 *                         and a new thread allocating the same class fills
 *                         the half-empty ones before it takes new pools;
 *   LastBlocksFreedConcurrently
 *                         two threads race to free the last blocks of an
 *                         exited thread's pools: each pool goes back once;
 *   PoolsFillBeforeFreshPages
 *                         blocks freed into a thread's older pools are
 *                         handed out again before its newest pool touches
 *                         a page it has not used yet.
 *
 * Every hand-off between threads checks each block's contents (a pattern
 * derived from the block's identity) and the number of blocks.  Each test is
 * bounded in count and takes a few seconds at most on two cores.  The
 * standard names are used where this build exports them (and they resolve
 * to rcmalloc), the rc_ names otherwise; malloc_trim(0) only in that case,
 * else free pools are returned by the decay (pool events across purge
 * periods).  Resident-size checks are skipped under a sanitizer (shadow
 * memory).
 */
#include "test_malloc_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using namespace rctest;

namespace {

/* ---- what the library says about itself -------------------------------------- */

constexpr size_t kPool = 64 * 1024;   /* rcmalloc(7): "64 KiB pools" */
constexpr size_t kMiB = 1024 * 1024;

struct Stats {
    size_t small_in_use = 0, small_capacity = 0;
    size_t pools = 0, peak = 0, empty = 0;      /* "N pools in use (peak P), E empty" */
    size_t spans = 0, span_bytes = 0;
    size_t arenas = 0, arenas_kib = 0, unmapped = 0;
    size_t dirty_pools = 0, dirty_kib = 0;      /* free pools resident */
    size_t heaps = 0, taken = 0;                /* ... and times heaps were taken over */
    int lines = 0;                              /* lines recognized (4 expected) */
};

/* rc_stats_print into a buffer, parsed.  Called from one thread at a time. */
Stats read_stats()
{
    static char buf[64 * 1024];
    memset(buf, 0, sizeof buf);
    Stats s;
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    if (!f)
        return s;
    rc_stats_print(f);
    fclose(f);
    char *save = nullptr;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(nullptr, "\n", &save)) {
        size_t lo, hi;
        if (sscanf(line, "small: %zu bytes in use in %zu bytes of blocks; %zu pools in use (peak %zu), %zu empty",
                   &s.small_in_use, &s.small_capacity, &s.pools, &s.peak, &s.empty) == 5)
            s.lines++;
        else if (sscanf(line, "spans (blocks of %zu .. %zu bytes): %zu in use, %zu bytes",
                        &lo, &hi, &s.spans, &s.span_bytes) == 4)
            s.lines++;
        else if (sscanf(line, "arenas: %zu mapped (%zu KiB), %zu unmapped so far; %zu free pools resident (%zu KiB)",
                        &s.arenas, &s.arenas_kib, &s.unmapped, &s.dirty_pools, &s.dirty_kib) == 5)
            s.lines++;
        else if (sscanf(line, "threads with a heap: %zu (their pools taken over %zu times)",
                        &s.heaps, &s.taken) == 2)
            s.lines++;
    }
    /* 4 MiB arenas of 64 KiB pools (rcmalloc(7)): what is in use is in them */
    if (s.lines == 4 && (s.pools > s.arenas * 64 || s.dirty_pools > s.arenas * 64 ||
                         s.pools + s.dirty_pools > s.arenas * 64 || s.peak > (size_t)1 << 40))
        ADD_FAILURE() << "statistics inconsistent: " << s.pools << " pools in use and "
                      << s.dirty_pools << " free resident in " << s.arenas << " arenas";
    return s;
}

/* Pools holding blocks: what a lower bound on the count across a phase in
   which this thread waits should use, since a heap idle for the idle
   period (rcmalloc(7): 16 ms) gives its empty pools back to the arenas,
   which lowers "pools in use" and "empty" alike.  (Upper bounds keep
   "pools in use": that catches empty pools kept too.) */
long holding(const Stats &s)
{
    return (long)s.pools - (long)s.empty;
}

std::string describe(const Stats &s)
{
    char b[256];
    snprintf(b, sizeof b, "%zu pools in use (peak %zu), %zu arenas, %zu free pools resident, "
             "%zu spans, %zu heaps", s.pools, s.peak, s.arenas, s.dirty_pools, s.spans, s.heaps);
    return b;
}

bool sanitized()
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    return true;
#else
    return dlsym(RTLD_DEFAULT, "__tsan_init") || dlsym(RTLD_DEFAULT, "__asan_init") ||
           dlsym(RTLD_DEFAULT, "__msan_init") || dlsym(RTLD_DEFAULT, "__hwasan_init");
#endif
}

/* RCMALLOC_PURGE_DELAY_MS as the library read it at start (documented
   default 250; -1: no time-based return, no idle take-over). */
long purge_delay_ms()
{
    const char *e = getenv("RCMALLOC_PURGE_DELAY_MS");
    if (!e || !*e)
        return 250;
    char *end;
    long v = strtol(e, &end, 10);
    return *end ? 250 : v;
}

bool debug_mode()
{
    const char *e = getenv("RCMALLOC_DEBUG");
    return e && *e && strcmp(e, "0") != 0;
}

/* The surface a program uses: malloc & co. where this build exports them
   and they are rcmalloc's, else the rc_ names. */
bool use_std()
{
#ifdef RC_OVERRIDE
    return std_names_are_ours();
#else
    return false;
#endif
}

const Api &surface()
{
#ifdef RC_OVERRIDE
    if (use_std())
        return std_api();
#endif
    return rc_api();
}

void sleep_ms(long ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

/* A pool event: a multi-pool span allocated and freed goes back to its
   arena, which is when the decay runs (rcmalloc(7), Returning memory). */
void pool_event(const Api &api)
{
    size_t n = 300 * 1024;
    char *p = (char *)api.malloc_(n);
    if (p) {
        p[0] = 1;
        p[n - 1] = 1;
        api.free_(p);
    }
}

/* Free pools back to the kernel: malloc_trim(0) where the standard names
   are ours; else let the decay do it (pool events across two periods and
   more).  Returns how it was done, for messages. */
const char *return_free_memory(const Api &api)
{
#ifdef RC_OVERRIDE
    if (use_std()) {
        malloc_trim(0);
        return "malloc_trim(0)";
    }
#endif
    long d = purge_delay_ms();
    if (d < 0)
        return "nothing (RCMALLOC_PURGE_DELAY_MS=-1)";
    pool_event(api);
    for (int i = 0; i < 3; i++) {
        sleep_ms(d + 30);
        pool_event(api);
    }
    return "decay: pool events across three purge periods";
}

/* ---- blocks and their patterns ---------------------------------------------------- */

struct Blk {
    void *p;
    size_t n;
    uint64_t seed;
};

inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* A word pattern from the block's seed: every byte of blocks up to 16 KiB;
   of larger ones the first 4 KiB, one word per 4 KiB after it and the last
   bytes (cheap for spans of up to 1 MiB, still catches a block handed out
   twice or overlapping another). */
void put(void *p, size_t n, uint64_t seed)
{
    unsigned char *c = (unsigned char *)p;
    size_t words = n / 8;
    auto word = [&](size_t i) {
        uint64_t v = mix(seed * 0x9E3779B97F4A7C15ull + i);
        memcpy(c + i * 8, &v, 8);
    };
    if (n <= 16384) {
        for (size_t i = 0; i < words; i++)
            word(i);
    } else {
        for (size_t i = 0; i < 512; i++)
            word(i);
        for (size_t i = 512; i < words; i += 512)
            word(i);
        if (words)
            word(words - 1);
    }
    uint64_t t = mix(~seed);
    for (size_t i = words * 8; i < n; i++)
        c[i] = (unsigned char)(t >> (8 * (i % 8)));
}

bool ok(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *c = (const unsigned char *)p;
    size_t words = n / 8;
    auto word = [&](size_t i) {
        uint64_t v = mix(seed * 0x9E3779B97F4A7C15ull + i), got;
        memcpy(&got, c + i * 8, 8);
        return got == v;
    };
    if (n <= 16384) {
        for (size_t i = 0; i < words; i++)
            if (!word(i))
                return false;
    } else {
        for (size_t i = 0; i < 512; i++)
            if (!word(i))
                return false;
        for (size_t i = 512; i < words; i += 512)
            if (!word(i))
                return false;
        if (words && !word(words - 1))
            return false;
    }
    uint64_t t = mix(~seed);
    for (size_t i = words * 8; i < n; i++)
        if (c[i] != (unsigned char)(t >> (8 * (i % 8))))
            return false;
    return true;
}

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(mix(seed + 0x1234567) | 1) {}
    uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    size_t below(size_t n) { return (size_t)(next() % n); }
    /* 16 B .. 8 KiB, about evenly per power of two */
    size_t small()
    {
        size_t top = (size_t)16 << below(10);       /* 16 .. 8192 */
        return top / 2 + 1 + below(top / 2);         /* (top/2, top] */
    }
    /* above 8 KiB, up to 960 KiB: spans (rcmalloc(7), Spans) */
    size_t span()
    {
        size_t top = (size_t)16384 << below(6);     /* 16 KiB .. 512 KiB */
        size_t n = top / 2 + 1 + below(top);         /* (8 KiB, 1 MiB) */
        return n > 960 * 1024 ? 960 * 1024 : n;
    }
};

/* ---- threads with small stacks (thousands of them) --------------------------------- */

void *trampoline(void *arg)
{
    (*static_cast<std::function<void()> *>(arg))();
    return nullptr;
}

class Threads {
public:
    ~Threads() { join(); }
    bool start(std::function<void()> fn)
    {
        auto box = std::make_unique<std::function<void()>>(std::move(fn));
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_t t;
        int r = pthread_create(&t, &attr, trampoline, box.get());
        pthread_attr_destroy(&attr);
        if (r != 0)
            return false;
        ids_.push_back(t);
        fns_.push_back(std::move(box));
        return true;
    }
    void join()
    {
        for (pthread_t t : ids_)
            pthread_join(t, nullptr);
        ids_.clear();
        fns_.clear();
    }

private:
    std::vector<pthread_t> ids_;
    std::vector<std::unique_ptr<std::function<void()>>> fns_;
};

/* Runs fn on a new thread and waits for it: frees done there are handed
   back at its exit, whatever the thread batched. */
void on_thread(std::function<void()> fn)
{
    Threads t;
    ASSERT_TRUE(t.start(std::move(fn)));
    t.join();
}

class ThreadMemory : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (debug_mode())
            GTEST_SKIP() << "RCMALLOC_DEBUG serves every block from the checked path";
        Stats s = read_stats();
        ASSERT_EQ(s.lines, 4) << "rc_stats_print's summary lines not recognized";
    }
};

}  // namespace

/* ---- 1. thousands of threads in waves --------------------------------------------- */

TEST_F(ThreadMemory, Waves)
{
    const Api &api = surface();
    const bool sani = sanitized();
    const int kWaves = sani ? 400 : 1200;
    const int kBase = 100;             /* the wave the others are compared with */
    const int kEvery = 50;             /* checkpoints */
    const int kSmall = 60, kSpans = 2; /* blocks per thread */
    const size_t kRing = 256;          /* long-lived blocks, any thread's */

    std::mutex ring_m;
    std::vector<Blk> ring(kRing, Blk{nullptr, 0, 0});
    std::atomic<long> allocated{0}, freed{0}, bad{0}, failed{0};
    std::vector<Blk> inbox;            /* passed from the previous wave */

    struct Point {
        int wave;
        Stats s;
        size_t rss;                    /* resident, free pools excluded */
    };
    std::vector<Point> points;
    points.reserve(kWaves / kEvery + 2);
    const Stats start = read_stats();
    auto measure = [&](int wave) {
        Point pt;
        pt.wave = wave;
        if (use_std()) {
#ifdef RC_OVERRIDE
            malloc_trim(0);
#endif
        }
        pt.s = read_stats();
        size_t rss = rss_bytes();
        size_t dirty = pt.s.dirty_kib * 1024;
        pt.rss = rss > dirty ? rss - dirty : 0;
        points.push_back(pt);
    };

    int waves_run = 0;
    for (int w = 1; w <= kWaves; w++) {
        waves_run = w;
        const int nt = 2 + w % 3;
        std::vector<std::vector<Blk>> in(nt), out(nt);
        for (size_t i = 0; i < inbox.size(); i++)
            in[i % nt].push_back(inbox[i]);
        std::vector<long> got(nt, 0);
        Threads wave;
        for (int t = 0; t < nt; t++) {
            ASSERT_TRUE(wave.start([&, t, w] {
                Rng rng((uint64_t)w * 16 + t);
                /* the previous wave's blocks: check, free (orders differ) */
                std::vector<Blk> &mine_in = in[t];
                if (t % 2)
                    std::reverse(mine_in.begin(), mine_in.end());
                for (Blk &b : mine_in) {
                    if (!ok(b.p, b.n, b.seed))
                        bad++;
                    api.free_(b.p);
                    freed++;
                    got[t]++;
                }
                /* ours */
                Blk mine[kSmall + kSpans];
                int count = 0;
                for (int i = 0; i < kSmall + kSpans; i++) {
                    size_t n = i < kSmall ? rng.small() : rng.span();
                    uint64_t seed = ((uint64_t)w << 24) | ((uint64_t)t << 16) | (uint64_t)i;
                    void *p = api.malloc_(n);
                    if (!p) {
                        failed++;
                        continue;
                    }
                    allocated++;
                    put(p, n, seed);
                    mine[count++] = {p, n, seed};
                }
                /* a third freed here, a third to the next wave, a third
                   into the ring (whose old occupant we free); one span
                   freed here, one passed on */
                std::vector<Blk> self;
                for (int i = 0; i < count; i++) {
                    Blk b = mine[i];
                    int k = b.n > 8192 ? (int)(b.seed & 1) : i % 3;
                    if (k == 0) {
                        self.push_back(b);
                    } else if (k == 1) {
                        out[t].push_back(b);
                    } else {
                        Blk old;
                        {
                            std::lock_guard<std::mutex> l(ring_m);
                            size_t j = rng.below(kRing);
                            old = ring[j];
                            ring[j] = b;
                        }
                        if (old.p) {
                            if (!ok(old.p, old.n, old.seed))
                                bad++;
                            api.free_(old.p);
                            freed++;
                        }
                    }
                }
                for (Blk &b : self) {
                    if (!ok(b.p, b.n, b.seed))
                        bad++;
                    api.free_(b.p);
                    freed++;
                }
            }));
        }
        wave.join();
        long received = 0;
        for (int t = 0; t < nt; t++) {
            EXPECT_EQ(got[t], (long)in[t].size()) << "wave " << w << " thread " << t;
            received += got[t];
        }
        ASSERT_EQ(received, (long)inbox.size()) << "wave " << w << " did not free all it was passed";
        inbox.clear();
        for (int t = 0; t < nt; t++)
            inbox.insert(inbox.end(), out[t].begin(), out[t].end());
        if (w >= kBase && (w - kBase) % kEvery == 0)
            measure(w);
        if (bad.load() || failed.load())
            break;
    }
    if (points.empty() || points.back().wave != waves_run)
        measure(waves_run);

    /* the last blocks, freed by a thread of their own */
    on_thread([&] {
        for (Blk &b : inbox) {
            if (!ok(b.p, b.n, b.seed))
                bad++;
            api.free_(b.p);
            freed++;
        }
        for (Blk &b : ring)
            if (b.p) {
                if (!ok(b.p, b.n, b.seed))
                    bad++;
                api.free_(b.p);
                freed++;
            }
    });
    EXPECT_EQ(bad.load(), 0) << "blocks whose contents changed";
    EXPECT_EQ(failed.load(), 0) << "allocations that failed";
    EXPECT_EQ(freed.load(), allocated.load()) << "blocks allocated and freed";
    /* every thread gone, every block freed: the pools went back (this
       thread's own pools aside: in the default build the test's vectors
       come from them, and a heap keeps a pool per class it uses) */
    if (use_std()) {
#ifdef RC_OVERRIDE
        malloc_trim(0);
#endif
    }
    const Stats end = read_stats();
    printf("  at the start:    %s\n  all freed:       %s\n", describe(start).c_str(),
           describe(end).c_str());
    EXPECT_LE(end.pools, start.pools + 24) << "pools still in use once every block was freed\n"
                                          << describe(start) << "\n" << describe(end);
    EXPECT_LE(end.heaps, start.heaps) << describe(end);

    const Point &base = points.front(), &last = points.back();
    std::string table;
    size_t max_pools = 0, max_arenas = 0, max_rss = 0;
    for (const Point &pt : points) {
        char line[256];
        snprintf(line, sizeof line, "  after wave %4d: %s; RSS less free pools %zu KiB\n",
                 pt.wave, describe(pt.s).c_str(), pt.rss / 1024);
        table += line;
        max_pools = std::max(max_pools, pt.s.pools);
        max_arenas = std::max(max_arenas, pt.s.arenas);
        max_rss = std::max(max_rss, pt.rss);
    }
    printf("%s", table.c_str());
    /* What is live at a checkpoint is bounded (the ring, one wave's passed
       blocks, a few of them spans of up to 16 pools) and so is what varies
       between two checkpoints: a pool leaked per wave would add 1100 pools,
       one per ten waves 110. */
    const size_t kPools = 96, kArenas = 3;
    EXPECT_LE(last.s.pools, base.s.pools + kPools) << "pools in use grew with the waves\n" << table;
    EXPECT_LE(max_pools, base.s.pools + kPools) << "pools in use grew with the waves\n" << table;
    EXPECT_LE(last.s.arenas, base.s.arenas + kArenas) << "arenas grew with the waves\n" << table;
    EXPECT_LE(max_arenas, base.s.arenas + kArenas) << "arenas grew with the waves\n" << table;
    EXPECT_LE(last.s.heaps, base.s.heaps) << "heaps of dead threads still counted\n" << table;
    if (!sani) {
        const size_t kRss = 12 * kMiB;
        EXPECT_LE(last.rss, base.rss + kRss) << "resident memory grew with the waves\n" << table;
        EXPECT_LE(max_rss, base.rss + kRss) << "resident memory grew with the waves\n" << table;
    }
}

/* ---- 2. a blocked thread's memory, freed by others, is reused ----------------------- */

/* busy: while the producer is blocked, short threads keep starting,
   allocating a little and exiting (a server's workers); quiet: nothing else
   happens in the process until the consumers allocate again; at_once: the
   consumers allocate as soon as they have freed it all, long before the
   producer's heap counts as idle (its emptied pools are reused because
   they are empty, whatever its thread does). */
enum class Blocked { QUIET, BUSY, AT_ONCE };

static void blocked_producer(Blocked how_long)
{
    const bool busy = how_long == Blocked::BUSY;
    const long delay = purge_delay_ms();
    if (delay < 0 && how_long != Blocked::AT_ONCE)
        GTEST_SKIP() << "RCMALLOC_PURGE_DELAY_MS=-1: idle heaps are never taken";
    const Api &api = surface();
    const bool sani = sanitized();
    const size_t kBytes = (sani ? 16 : 32) * kMiB;
    const int kConsumers = 2;
    /* past a whole idle period, three times (or not at all) */
    const long kIdle = how_long == Blocked::AT_ONCE ? 0 : 3 * delay + 50;

    std::vector<Blk> produced;
    produced.reserve(kBytes / 400);
    std::vector<std::vector<Blk>> own(kConsumers);
    for (auto &v : own)
        v.reserve(kBytes / kConsumers / 400);

    std::mutex m;
    std::condition_variable cv;
    enum Phase { START, PRODUCED, ALLOC, FREE, WAKE, DONE };
    Phase phase = START;
    int consumers_at = 0;              /* consumers done with the current phase */
    std::atomic<long> bad{0}, failed{0}, consumed{0}, producer_ok{0};
    auto wait_for = [&](Phase p) {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return phase >= p; });
    };
    auto set_phase = [&](Phase p) {
        std::lock_guard<std::mutex> l(m);
        phase = p;
        consumers_at = 0;
        cv.notify_all();
    };
    auto consumer_done = [&] {
        std::lock_guard<std::mutex> l(m);
        consumers_at++;
        cv.notify_all();
    };
    auto wait_consumers = [&] {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return consumers_at == kConsumers; });
    };

    return_free_memory(api);           /* start from a clean slate */
    const Stats s0 = read_stats();
    const size_t r0 = rss_bytes();

    /* On any early return (a failed ASSERT) every thread is released
       before it is joined: the guard is destroyed first. */
    Threads producer, consumers;
    struct Release {
        std::function<void()> fn;
        ~Release() { fn(); }
    } release{[&] { set_phase(DONE); }};

    ASSERT_TRUE(producer.start([&] {
        Rng rng(77);
        size_t total = 0;
        for (uint64_t i = 0; total < kBytes; i++) {
            size_t n = 64 + rng.below(961);              /* 64 .. 1024 */
            void *p = api.malloc_(n);
            if (!p) {
                failed++;
                break;
            }
            put(p, n, i);
            produced.push_back({p, n, i});
            total += n;
        }
        set_phase(PRODUCED);
        wait_for(WAKE);                                  /* blocked meanwhile */
        /* woken: allocate and free again, and check it all */
        std::vector<Blk> again;
        again.reserve(kBytes / 8 / 64 + 16);
        long good = 0;
        total = 0;
        for (uint64_t i = 0; total < kBytes / 8; i++) {
            size_t n = 64 + rng.below(961);
            void *p = api.malloc_(n);
            if (!p) {
                failed++;
                break;
            }
            put(p, n, ~i);
            again.push_back({p, n, ~i});
            total += n;
        }
        for (Blk &b : again) {
            if (ok(b.p, b.n, b.seed))
                good++;
            api.free_(b.p);
        }
        producer_ok = good == (long)again.size() && !again.empty();
    }));
    wait_for(PRODUCED);
    const Stats s1 = read_stats();
    const size_t r1 = rss_bytes();
    ASSERT_GT(s1.pools, s0.pools) << describe(s0) << " / " << describe(s1);
    const size_t grew = s1.pools - s0.pools;           /* the producer's pools */

    for (int c = 0; c < kConsumers; c++) {
        ASSERT_TRUE(consumers.start([&, c] {
            /* every kConsumers-th block, forward or backward */
            size_t n = produced.size();
            for (size_t k = 0; k < n; k++) {
                size_t i = c % 2 ? n - 1 - k : k;
                if (i % kConsumers != (size_t)c)
                    continue;
                Blk &b = produced[i];
                if (!ok(b.p, b.n, b.seed))
                    bad++;
                api.free_(b.p);
                consumed++;
            }
            consumer_done();
            wait_for(ALLOC);
            /* as much again, of the same sizes, in this thread */
            Rng rng(1000 + c);
            size_t total = 0;
            for (uint64_t i = 0; total < kBytes / kConsumers; i++) {
                size_t sz = 64 + rng.below(961);
                void *p = api.malloc_(sz);
                if (!p) {
                    failed++;
                    break;
                }
                uint64_t seed = ((uint64_t)(c + 1) << 40) | i;
                put(p, sz, seed);
                own[c].push_back({p, sz, seed});
                total += sz;
            }
            consumer_done();
            wait_for(FREE);
            for (Blk &b : own[c]) {
                if (!ok(b.p, b.n, b.seed))
                    bad++;
                api.free_(b.p);
            }
        }));
    }
    wait_consumers();
    const Stats s2 = read_stats();
    EXPECT_EQ(consumed.load(), (long)produced.size()) << "blocks the consumers freed";
    EXPECT_EQ(bad.load(), 0) << "blocks corrupted on the way from producer to consumers";

    /* the producer stays blocked, for three purge periods and more */
    long pokes = 0;
    if (busy) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kIdle);
        while (std::chrono::steady_clock::now() < until) {
            sleep_ms(50);
            on_thread([&] {
                Blk b[8];
                for (int i = 0; i < 8; i++) {
                    b[i] = {api.malloc_(48), 48, (7ull << 48) | (uint64_t)(pokes * 8 + i)};
                    if (!b[i].p) {
                        failed++;
                        return;
                    }
                    put(b[i].p, b[i].n, b[i].seed);
                }
                for (Blk &x : b) {
                    if (!ok(x.p, x.n, x.seed))
                        bad++;
                    api.free_(x.p);
                }
            });
            pokes++;
        }
    } else if (kIdle > 0) {
        sleep_ms(kIdle);
    }
    auto t_alloc = std::chrono::steady_clock::now();
    set_phase(ALLOC);
    wait_consumers();
    const long alloc_ms = (long)std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t_alloc).count();
    const Stats s3 = read_stats();
    const size_t r3 = rss_bytes();
    set_phase(FREE);
    consumers.join();
    EXPECT_EQ(bad.load(), 0) << "blocks corrupted";
    EXPECT_EQ(failed.load(), 0) << "allocations that failed";

    const char *how = return_free_memory(api);
    const Stats s4 = read_stats();
    const size_t r4 = rss_bytes();

    char msg[1280];
    snprintf(msg, sizeof msg,
             "%s process: producer allocated %zu MiB in %zu blocks\n"
             "  before:                         %s; RSS %zu KiB\n"
             "  producer allocated, blocked:    %s; RSS %zu KiB\n"
             "  consumers freed it all:         %s\n"
             "  idle %ld ms (%ld short threads meanwhile), then consumers allocated as much in %ld ms:\n"
             "                                  %s; RSS %zu KiB\n"
             "  consumers freed, then %s: %s; RSS %zu KiB\n",
             busy ? "busy" : kIdle ? "quiet" : "at once,", kBytes / kMiB, produced.size(), describe(s0).c_str(), r0 / 1024,
             describe(s1).c_str(), r1 / 1024, describe(s2).c_str(), kIdle, pokes, alloc_ms, describe(s3).c_str(),
             r3 / 1024, how, describe(s4).c_str(), r4 / 1024);
    printf("%s", msg);

    /* The consumers' allocations reuse the memory freed into the blocked
       producer's pools: the pools in use grow by nowhere near the producer's
       amount again (a quarter of it allows for classes spread differently
       over pools), nor do the arenas. */
    EXPECT_LE(s3.pools, s1.pools + grew / 4 + 8) << "memory freed into a blocked thread's pools was not reused\n" << msg;
    EXPECT_LE(s3.arenas, s1.arenas + (s1.arenas - s0.arenas) / 4 + 1) << msg;
    /* Everything freed and the free pools returned: back near the start
       (with RCMALLOC_PURGE_DELAY_MS=-1 and no malloc_trim, nothing returns
       them). */
    const bool returned = delay >= 0 || use_std();
    if (returned) {
        EXPECT_LE(s4.pools, s0.pools + grew / 8 + 8) << "pools still in use after everything was freed\n" << msg;
    }
    if (!sani && returned) {
        EXPECT_LE(r3, r1 + (r1 - r0) / 4 + 4 * kMiB) << "resident memory grew by the amount reused\n" << msg;
        EXPECT_LE(r4, r0 + (r1 - r0) / 4 + 2 * kMiB) << "resident memory did not go back down\n" << msg;
    }

    /* The producer, woken, still works; then exits. */
    set_phase(WAKE);
    producer.join();
    EXPECT_EQ(producer_ok.load(), 1) << "the woken producer's blocks";
    EXPECT_EQ(failed.load(), 0);
    const Stats s5 = read_stats();
    EXPECT_LE(s5.pools, s0.pools + grew / 8 + 8) << "after the producer exited: " << describe(s5) << "\n" << msg;
}

TEST_F(ThreadMemory, BlockedProducerQuietProcess)
{
    blocked_producer(Blocked::QUIET);
}

TEST_F(ThreadMemory, BlockedProducerBusyProcess)
{
    blocked_producer(Blocked::BUSY);
}

/* Freeing 32 MiB takes the consumers longer than the idle period, after
   which the producer's heap would be taken over anyway: so this runs in a
   child process with RCMALLOC_PURGE_DELAY_MS=-1 (no idle take-over), and
   only the emptiness of the producer's pools can get them reused. */
TEST_F(ThreadMemory, BlockedProducerReusedAtOnce)
{
    if (purge_delay_ms() >= 0) {
        fflush(stdout);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            setenv("RCMALLOC_PURGE_DELAY_MS", "-1", 1);
            char filter[] = "--gtest_filter=ThreadMemory.BlockedProducerReusedAtOnce";
            char self[] = "/proc/self/exe";
            char *argv[] = {self, filter, nullptr};
            execv(self, argv);
            _exit(127);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "the test, run again with RCMALLOC_PURGE_DELAY_MS=-1, failed (status " << status << ")";
        return;
    }
    blocked_producer(Blocked::AT_ONCE);
}

/* ---- 3. pools of exited threads, freed into by others, are adopted ------------------ */

/* kSize: one size class; kPer blocks a holder, about 8 pools' worth. */
static void exited_holders(size_t kSize)
{
    const Api &api = surface();
    const int kHolders = 4, kFreers = 3;
    const size_t kPer = 8 * (kPool - 1024) / kSize;

    /* the test's own vectors first (in the default build they come from
       the same pools), then the baseline */
    std::vector<std::vector<Blk>> held(kHolders);
    for (auto &v : held)
        v.reserve(kPer);
    std::vector<Blk> to_free, kept, fresh;
    to_free.reserve(kHolders * kPer);
    kept.reserve(kHolders * kPer);
    const size_t freed_slots = 2 * (kPer - kPer / 4);   /* in holders 2 and 3's pools */
    fresh.reserve(freed_slots);
    std::atomic<long> bad{0}, failed{0};
    const Stats s0 = read_stats();

    /* Holders allocate, hand everything out, and exit -- all alive until
       all have allocated, so that none fills a pool another left (each
       holder's blocks are in pools of its own). */
    {
        std::mutex m;
        std::condition_variable cv;
        int arrived = 0;
        Threads holders;
        for (int h = 0; h < kHolders; h++) {
            bool started = holders.start([&, h] {
                for (size_t i = 0; i < kPer; i++) {
                    void *p = api.malloc_(kSize);
                    if (!p) {
                        failed++;
                        break;
                    }
                    uint64_t seed = ((uint64_t)h << 32) | i;
                    put(p, kSize, seed);
                    held[h].push_back({p, kSize, seed});
                }
                std::unique_lock<std::mutex> l(m);
                arrived++;
                cv.notify_all();
                cv.wait(l, [&] { return arrived >= kHolders; });
            });
            if (!started) {
                std::lock_guard<std::mutex> l(m);
                arrived += kHolders;           /* let the others go, then fail */
                cv.notify_all();
            }
            ASSERT_TRUE(started);
        }
    }
    ASSERT_EQ(failed.load(), 0);
    for (auto &v : held)
        ASSERT_EQ(v.size(), kPer);
    const Stats s1 = read_stats();
    /* (less 2: starting and joining the holders, this thread allocates and
       frees, and its own heap may let a pool or two go meanwhile) */
    ASSERT_GE(holding(s1), holding(s0) + (long)(kHolders * kPer * kSize / kPool) - 2)
        << describe(s0) << " / " << describe(s1);
    const long holder_pools = holding(s1) - holding(s0);

    /* Others free: all of holders 0 and 1, three in four of holders 2 and
       3; each freer its share in its own order (forward, backward, a
       stride through it), all at once. */
    for (int h = 0; h < kHolders; h++)
        for (size_t i = 0; i < kPer; i++) {
            if (h < 2 || i % 4 != 0)
                to_free.push_back(held[h][i]);
            else
                kept.push_back(held[h][i]);
        }
    std::atomic<long> freed{0};
    {
        Threads freers;
        for (int f = 0; f < kFreers; f++)
            ASSERT_TRUE(freers.start([&, f] {
                std::vector<size_t> idx;
                for (size_t i = f; i < to_free.size(); i += kFreers)
                    idx.push_back(i);
                if (f == 1)
                    std::reverse(idx.begin(), idx.end());
                if (f == 2) {
                    std::vector<size_t> strided;
                    for (size_t start = 0; start < 7; start++)
                        for (size_t k = start; k < idx.size(); k += 7)
                            strided.push_back(idx[k]);
                    idx.swap(strided);
                }
                for (size_t i : idx) {
                    Blk &b = to_free[i];
                    if (!ok(b.p, b.n, b.seed))
                        bad++;
                    api.free_(b.p);
                    freed++;
                }
            }));
    }
    EXPECT_EQ(freed.load(), (long)to_free.size());
    EXPECT_EQ(bad.load(), 0) << "blocks corrupted between their thread's exit and their free";
    const Stats s2 = read_stats();

    /* A new thread allocates as many of that class: it fills those pools. */
    on_thread([&] {
        for (size_t i = 0; i < freed_slots; i++) {
            void *p = api.malloc_(kSize);
            if (!p) {
                failed++;
                return;
            }
            uint64_t seed = (9ull << 40) | i;
            put(p, kSize, seed);
            fresh.push_back({p, kSize, seed});
        }
    });
    ASSERT_EQ(failed.load(), 0);
    ASSERT_EQ(fresh.size(), freed_slots);
    const Stats s3 = read_stats();

    char msg[768];
    snprintf(msg, sizeof msg,
             "  before:                            %s\n"
             "  %d holders exited (%zu x %zu B): %s\n"
             "  others freed all of 2, 3/4 of 2:   %s\n"
             "  a new thread took %zu blocks:     %s\n",
             describe(s0).c_str(), kHolders, kPer, kSize, describe(s1).c_str(),
             describe(s2).c_str(), freed_slots, describe(s3).c_str());
    printf("%s", msg);
    /* Holders 0 and 1's pools went back when their last blocks were freed
       (about half of the holders' pools), the others stayed. */
    EXPECT_LE((long)s2.pools, (long)s0.pools + holder_pools / 2 + 2) << "emptied pools of exited threads not given back\n" << msg;
    EXPECT_GE(holding(s2), holding(s0) + holder_pools / 2 - 2) << "pools with live blocks given back?\n" << msg;
    /* The new thread's blocks came from those pools: none (or one or two,
       a cache's worth) taken fresh, where taking new ones would need
       freed_slots * kSize / 64 KiB, about 12. */
    EXPECT_LE(s3.pools, s2.pools + 2) << "a new thread did not reuse the pools exited threads left\n" << msg;

    /* Nothing overlaps: the kept blocks and the new ones are intact. */
    long bad_kept = 0, bad_fresh = 0;
    for (Blk &b : kept)
        bad_kept += !ok(b.p, b.n, b.seed);
    for (Blk &b : fresh)
        bad_fresh += !ok(b.p, b.n, b.seed);
    EXPECT_EQ(bad_kept, 0) << "blocks of exited threads overwritten";
    EXPECT_EQ(bad_fresh, 0);

    /* Everything freed, by a thread that exits: back to the start. */
    on_thread([&] {
        for (Blk &b : kept)
            api.free_(b.p);
        for (Blk &b : fresh)
            api.free_(b.p);
    });
    const Stats s4 = read_stats();
    EXPECT_LE(s4.pools, s0.pools + 2) << "pools still in use after every block was freed: "
                                      << describe(s4) << "\n" << msg;
}

TEST_F(ThreadMemory, ExitedHoldersReused)
{
    SKIP_IN_CHECKED_MODE();
    for (size_t size : {48, 256, 1500}) {
        SCOPED_TRACE("blocks of " + std::to_string(size) + " bytes");
        exited_holders(size);
        if (HasFatalFailure())
            return;
    }
}

/* ---- 4. two threads free the last blocks of an exited thread's pools ------------ */

/* A thread exits holding full pools; two threads then free every block,
   interleaved, so that in each pool both race to free its last blocks.
   Each pool must go back to its arena exactly once: after every round the
   pools in use are what they were after the first (nothing live is left),
   and the statistics stay consistent.  A pool given back twice would lower
   the count for good; the arena aborts on that at once (arena.c), and
   here any round with fewer pools than the first fails -- allowing for
   this thread's own pools, which move by one or two: the threads it starts
   free their std::thread states into its pools as they exit (measured: the
   320-byte class went from 2 pools to 1 after about 80 rounds).  Rounds
   repeat for a bounded time (a race needs many tries; under
   ThreadSanitizer a few hundred). */
TEST_F(ThreadMemory, LastBlocksFreedConcurrently)
{
    SKIP_IN_CHECKED_MODE();
    const Api &api = surface();
    const size_t kSize = 4000;                 /* class 4096: 15 blocks a pool */
    const size_t kBlocks = 1500;               /* about 100 pools */
    const int kFreers = 2, kMaxRounds = 5000;
    const auto kBudget = std::chrono::milliseconds(sanitized() ? 4000 : 2000);

    std::vector<Blk> held;
    held.reserve(kBlocks);
    std::atomic<long> bad{0}, failed{0};
    /* In the default build this thread's own heap also serves the test's
       vectors and gtest: it is kept busy (below) so that it keeps its pools,
       and may take one more; with the freeing done by one thread the count
       then never moves (measured).  A pool given back twice lowers the
       count for good. */
    const long more_slack = use_std() ? 5 : 4;
    Stats ref;
    long lowest = 0, highest = 0;
    int rounds = 0, fewer = 0, more = 0;
    std::string first_bad;
    auto t0 = std::chrono::steady_clock::now();
    for (; rounds < kMaxRounds; rounds++) {
        if (rounds > 100 && std::chrono::steady_clock::now() - t0 > kBudget)
            break;
        held.clear();
        /* keep this thread's heap on its slow paths, every round and while
           it waits for the round's threads, so that it is never idle long
           enough (rcmalloc(7): 16 ms) to be taken over: its pools stay put
           and the count stays exact (a heap taken over gives back the pools
           only its cached blocks kept in use) */
        auto keep_busy = [&] {
            void *keep[16];
            for (void *&k : keep)
                k = api.malloc_(8000);
            for (void *k : keep)
                api.free_(k);
        };
        auto wait_busy = [&](std::atomic<int> &done, int n) {
            while (done.load() < n) {
                keep_busy();
                sched_yield();
            }
        };
        keep_busy();
        std::atomic<int> filled{0};
        Threads filler;
        ASSERT_TRUE(filler.start([&] {
            for (size_t i = 0; i < kBlocks; i++) {
                void *p = api.malloc_(kSize);
                if (!p) {
                    failed++;
                    filled++;
                    return;
                }
                uint64_t seed = ((uint64_t)rounds << 32) | i;
                put(p, 64, seed);              /* the head is enough here */
                held.push_back({p, 64, seed});
            }
            filled++;
        }));
        wait_busy(filled, 1);
        filler.join();
        ASSERT_EQ(failed.load(), 0);
        ASSERT_EQ(held.size(), kBlocks);
        std::atomic<int> ready{0}, done{0};
        std::atomic<long> freed{0};
        {
            Threads freers;
            for (int f = 0; f < kFreers; f++) {
                bool started = freers.start([&, f] {
                    ready++;
                    while (ready.load() < kFreers)
                        sched_yield();
                    for (size_t i = f; i < held.size(); i += kFreers) {
                        if (!ok(held[i].p, held[i].n, held[i].seed))
                            bad++;
                        api.free_(held[i].p);
                        freed++;
                    }
                    done++;
                });
                if (!started)
                    ready += kFreers;          /* let the others go, then fail */
                ASSERT_TRUE(started);
            }
            wait_busy(done, kFreers);
        }
        ASSERT_EQ(freed.load(), (long)kBlocks);
        Stats s = read_stats();
        if (rounds == 0) {
            ref = s;
            continue;
        }
        if (s.taken != ref.taken) {
            /* this thread's heap was taken over while it waited (a loaded
               machine can keep it off the CPU for the idle period): that
               rightly gives back the pools only its cache kept in use, so
               the count starts afresh */
            ref = s;
            continue;
        }
        const long d = (long)s.pools - (long)ref.pools;   /* a wrapped count is negative */
        lowest = std::min(lowest, d);
        highest = std::max(highest, d);
        if (d < -2 || d > more_slack) {
            (d < 0 ? fewer : more)++;
            if (first_bad.empty())
                first_bad = "round " + std::to_string(rounds) + ": " + describe(s);
        }
        if (HasFailure() || fewer)
            break;                             /* the counters are wrong from here on */
    }
    printf("  %d rounds of %zu blocks; after the first: %s; since: %+ld .. %+ld pools\n",
           rounds, kBlocks, describe(ref).c_str(), lowest, highest);
    EXPECT_EQ(bad.load(), 0) << "blocks corrupted between their thread's exit and their free";
    EXPECT_EQ(fewer, 0) << "fewer pools in use than before with the same blocks live: a pool "
                           "given back twice (" << first_bad << "; after the first round: "
                        << describe(ref) << ")";
    EXPECT_EQ(more, 0) << "pools not given back (" << first_bad << "; after the first round: "
                       << describe(ref) << ")";
}

/* ---- 5. freed blocks are reused before fresh pages are touched --------------------- */

/* A thread fills three pools of one class and starts a fourth (the newest,
   where it carves: rcmalloc(7), "blocks are carved a page at a time"),
   then frees all but one block of each of the three.  Its next blocks must
   come from those three, not from pages of the fourth it never touched:
   else every pool of a class ends up carved in full, whatever the live
   data (measured: 13% of xthread's peak RSS). */
TEST_F(ThreadMemory, PoolsFillBeforeFreshPages)
{
    const Api &api = surface();
    const size_t kSize = 3000;                       /* class 3072: 21 a pool */
    const size_t kPerPool = (kPool - 128) / 3072;
    const size_t kPage = (size_t)sysconf(_SC_PAGESIZE);
    on_thread([&] {
        std::vector<char *> first;
        for (size_t i = 0; i < 3 * kPerPool + 2 && !HasFailure(); i++) {
            char *p = (char *)api.malloc_(kSize);
            ASSERT_NE(p, nullptr);
            memset(p, (int)(i & 0x7f) + 1, kSize);
            first.push_back(p);
        }
        auto pool_of = [](const char *p) { return (uintptr_t)p & ~(uintptr_t)(kPool - 1); };
        const uintptr_t newest = pool_of(first.back());
        /* the newest pool's blocks so far, and where its carving got to */
        uintptr_t carved = 0;
        size_t in_newest = 0;
        for (char *p : first)
            if (pool_of(p) == newest) {
                in_newest++;
                carved = std::max(carved, ((uintptr_t)p + kSize + kPage - 1) & ~(uintptr_t)(kPage - 1));
            }
        if (in_newest != 2 || carved - newest > 2 * kPage)
            GTEST_SKIP() << "the thread's newest pool was not a fresh one (" << in_newest
                         << " of its blocks there): another test left pools of this class";
        /* all but the first block of each older pool freed, by this thread */
        std::vector<char *> kept;
        std::vector<uintptr_t> seen;
        size_t freed = 0;
        for (char *p : first) {
            uintptr_t pool = pool_of(p);
            if (pool == newest || std::find(seen.begin(), seen.end(), pool) == seen.end()) {
                seen.push_back(pool);
                kept.push_back(p);
            } else {
                api.free_(p);
                freed++;
            }
        }
        ASSERT_GE(freed, 3 * (kPerPool - 1) - 2);
        /* as many again, minus a few: none from a page of the newest pool
           past what it had carved */
        std::vector<char *> again;
        size_t fresh_pages = 0;
        for (size_t i = 0; i < freed - 4; i++) {
            char *p = (char *)api.malloc_(kSize);
            ASSERT_NE(p, nullptr);
            memset(p, 0x55, kSize);
            again.push_back(p);
            fresh_pages += pool_of(p) == newest && (uintptr_t)p + kSize > carved;
        }
        EXPECT_EQ(fresh_pages, 0u) << "of " << again.size() << " blocks allocated after " << freed
                                   << " were freed into older pools, " << fresh_pages
                                   << " came from fresh pages of the newest pool";
        for (size_t i = 0; i < kept.size(); i++) {
            size_t idx = (size_t)(std::find(first.begin(), first.end(), kept[i]) - first.begin());
            EXPECT_TRUE(kept[i][0] == (char)((idx & 0x7f) + 1) && kept[i][kSize - 1] == (char)((idx & 0x7f) + 1))
                << "a kept block was overwritten";
        }
        for (char *p : again)
            api.free_(p);
        for (char *p : kept)
            api.free_(p);
    });
}

/* Blocks of 8 .. 32 KiB are pool blocks, several to a pool (rcmalloc(7):
   7, 6, 5, 4, 3 or 2 a pool), not a pool each; freed by another thread,
   they are reused by the thread that allocated them. */
TEST_F(ThreadMemory, MidSizeBlocksSharePools)
{
    const Api &api = surface();
    const size_t kSize = 9000;                       /* class 9344: 7 a pool */
    const size_t kCount = 700;                       /* 100 pools' worth */
    on_thread([&] {
        std::vector<char *> blocks;
        blocks.reserve(kCount);
        const Stats s0 = read_stats();
        for (size_t i = 0; i < kCount; i++) {
            char *p = (char *)api.malloc_(kSize);
            ASSERT_NE(p, nullptr);
            ASSERT_GE(api.usable(p), kSize);
            memset(p, (int)(i % 251) + 1, kSize);
            blocks.push_back(p);
        }
        const Stats s1 = read_stats();
        EXPECT_LE(s1.pools, s0.pools + kCount / 7 + 8)
            << kCount << " blocks of " << kSize << " bytes: " << describe(s0) << " -> " << describe(s1);
        EXPECT_EQ(s1.spans, s0.spans) << "served as spans";
        for (size_t i = 0; i < kCount; i++)
            ASSERT_TRUE(blocks[i][0] == (char)(i % 251 + 1) && blocks[i][kSize - 1] == (char)(i % 251 + 1))
                << "block " << i << " overwritten";
        std::thread([&] {
            for (char *p : blocks)
                api.free_(p);
        }).join();
        blocks.clear();
        for (int round = 0; round < 3; round++) {
            for (size_t i = 0; i < kCount; i++) {
                char *p = (char *)api.malloc_(kSize);
                ASSERT_NE(p, nullptr);
                memset(p, 0x5a, kSize);
                blocks.push_back(p);
            }
            const Stats s2 = read_stats();
            EXPECT_LE(s2.pools, s1.pools + 8)
                << "round " << round << ": the blocks another thread freed were not reused: "
                << describe(s1) << " -> " << describe(s2);
            std::thread([&] {
                for (char *p : blocks)
                    api.free_(p);
            }).join();
            blocks.clear();
        }
    });
}
