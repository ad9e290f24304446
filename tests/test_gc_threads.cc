// The collector in threaded programs (rc_gc_collect(3), "Threads"): with
// automatic collection on, several threads keep replacing the fields of
// their own containers and of shared ones (under the program's mutex),
// build garbage cycles and read back what they reach, while collections
// start in any of them.  Nothing reachable may be freed early (a reached
// object always carries its live magic), every object is finalized exactly
// once, and all garbage is found by the end.  Bounded: a fixed number of
// operations per thread.
#include <gtest/gtest.h>
#include <pthread.h>
#include <rcmalloc.h>
#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {

constexpr uint64_t LIVE = 0x4c4956454f424a21ull;   // "LIVEOBJ!"
constexpr uint64_t DEAD = 0x444541444f424a21ull;
constexpr int NF = 4;
constexpr long MAX_IDS = 4L << 20;

struct Obj {
    void *f[NF];
    std::atomic<uint64_t> magic;
    long id;
    void *payload;           // a non-container child, or NULL
};

std::atomic<long> g_next_id{0};
std::atomic<long> g_finalized{0};
std::atomic<long> g_bad_finalize{0};
std::atomic<long> g_bad_reads{0};
std::atomic<uint8_t> *g_fin;      // finalize calls per id

int obj_traverse(void *o, rc_visit_fn visit, void *arg)
{
    Obj *x = static_cast<Obj *>(o);
    for (int i = 0; i < NF; i++) {
        void *c = x->f[i];
        int r;
        if (c != nullptr && (r = visit(c, arg)) != 0)
            return r;
    }
    if (x->payload != nullptr)
        return visit(x->payload, arg);
    return 0;
}

void obj_clear(void *o)
{
    Obj *x = static_cast<Obj *>(o);
    x->magic.store(DEAD);
    for (int i = 0; i < NF; i++)
        RC_CLEAR(x->f[i]);
    RC_CLEAR(x->payload);
}

void obj_finalize(void *o)
{
    Obj *x = static_cast<Obj *>(o);
    if (x->magic.load() != LIVE)
        g_bad_finalize++;
    if (x->id >= 0 && x->id < MAX_IDS && g_fin[x->id].fetch_add(1) != 0)
        g_bad_finalize++;
    g_finalized++;
}

const rc_type ObjType = {"obj", obj_traverse, obj_clear, obj_finalize};
const rc_type PayloadType = {"payload", nullptr, nullptr, nullptr};

Obj *new_obj()
{
    Obj *x = static_cast<Obj *>(rc_new(&ObjType, sizeof(Obj)));
    if (x == nullptr)
        abort();
    x->id = g_next_id++;
    x->magic.store(LIVE);
    return x;
}

void check_live(const void *p)
{
    if (p != nullptr && rc_type_of(p) == &ObjType &&
        static_cast<const Obj *>(p)->magic.load() != LIVE)
        g_bad_reads++;
}

// Read what o reaches, two levels deep (own containers: no lock needed, only
// this thread writes their fields).
void read_back(const Obj *o)
{
    check_live(o);
    for (int i = 0; i < NF; i++) {
        const Obj *c = static_cast<const Obj *>(o->f[i]);
        if (c == nullptr || rc_type_of(c) != &ObjType)
            continue;
        check_live(c);
    }
}

struct Shared {
    std::mutex mu;
    Obj *obj[8];
};

void mutator(Shared *sh, unsigned seed, int ops)
{
    std::mt19937 rng(seed);
    const int K = 32;
    Obj *root[K];
    for (auto &r : root)
        r = new_obj();
    for (int n = 0; n < ops; n++) {
        Obj *r = root[rng() % K];
        int j = (int)(rng() % NF);
        switch (rng() % 8) {
        case 0:     // a fresh child
        case 1:
            RC_SETREF(r->f[j], new_obj());
            break;
        case 2: {   // share a reference between our own containers
            Obj *s = root[rng() % K];
            RC_SETREF(r->f[j], rc_incref(s->f[rng() % NF]));
            break;
        }
        case 3: {   // a garbage cycle, hanging on to live objects
            Obj *a = new_obj(), *b = new_obj();
            a->f[0] = b;
            b->f[0] = rc_incref(a);
            b->f[1] = rc_incref(r);
            a->payload = rc_new(&PayloadType, 24);
            rc_decref(a);
            break;
        }
        case 4: {   // a shared container's field, under the program's lock
            std::lock_guard<std::mutex> g(sh->mu);
            Obj *s = sh->obj[rng() % 8];
            RC_SETREF(s->f[j], rc_incref(r));
            read_back(s);
            break;
        }
        case 5: {   // take something from a shared container
            Obj *got;
            {
                std::lock_guard<std::mutex> g(sh->mu);
                got = static_cast<Obj *>(rc_incref(sh->obj[rng() % 8]->f[j]));
            }
            check_live(got);
            RC_SETREF(r->f[j], got);
            break;
        }
        case 6: {   // replace a root: what only it held becomes garbage
            int k = (int)(rng() % K);   // (RC_SETREF names its field twice)
            RC_SETREF(root[k], new_obj());
            break;
        }
        default:
            RC_SETREF(r->payload, rc_new(&PayloadType, 8 + rng() % 64));
            read_back(r);
            break;
        }
        if (n % 4096 == 0)
            rc_gc_collect((int)(rng() % 3));
    }
    for (auto &x : root)
        rc_decref(x);
}

class GcThreads : public ::testing::Test {
protected:
    void SetUp() override
    {
        g_fin = new std::atomic<uint8_t>[MAX_IDS]();
        rc_gc_collect(-1);
        rc_gc_enable();
        rc_gc_set_threshold(300, 5, 5);
    }
    void TearDown() override
    {
        if (getenv("RC_TEST_STATS") != nullptr)
            rc_stats_print(stderr);
        rc_gc_set_threshold(700, 10, 10);
        delete[] g_fin;
    }
};

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int OPS = 20000;      // sanitizers: ten times slower per operation
#else
constexpr int OPS = 200000;
#endif

TEST_F(GcThreads, MutatorsWithAutomaticCollection)
{
    const int T = 4;
    long base_id = g_next_id.load(), base_fin = g_finalized.load();
    Shared sh;
    for (auto &o : sh.obj)
        o = new_obj();
    std::vector<std::thread> ts;
    for (int t = 0; t < T; t++)
        ts.emplace_back(mutator, &sh, 1234u + (unsigned)t, OPS);
    for (auto &th : ts)
        th.join();
    for (auto &o : sh.obj)
        rc_decref(o);
    for (int i = 0; i < 3; i++)
        rc_gc_collect(-1);
    long created = g_next_id.load() - base_id;
    EXPECT_GT(created, 4L * OPS / 8);
    EXPECT_EQ(0, g_bad_reads.load()) << "a reachable object was freed early";
    EXPECT_EQ(0, g_bad_finalize.load()) << "an object was finalized twice or dead";
    EXPECT_EQ(created, g_finalized.load() - base_fin)
        << "garbage left uncollected, or objects died more than once";
    rc_gc_stats st;
    ASSERT_EQ(0, rc_gc_get_stats(0, &st));
    EXPECT_GT(st.collections, 0u);
}

// A thread blocked in a system call, and one that never touches rc objects,
// do not keep the collector waiting; a collection while another thread
// sleeps returns promptly and the sleeper's objects survive.
TEST_F(GcThreads, BlockedThreadDoesNotStallCollections)
{
    std::atomic<int> ready{0};
    std::atomic<bool> stop{false};
    Obj *held = nullptr;
    std::thread sleeper([&] {
        held = new_obj();
        held->f[0] = new_obj();
        ready = 1;
        while (!stop.load())
            usleep(2000);           // blocked in nanosleep most of the time
        read_back(held);
        rc_decref(held);
    });
    while (ready.load() == 0)
        usleep(100);
    for (int i = 0; i < 200; i++) {
        Obj *a = new_obj(), *b = new_obj();
        a->f[0] = b;
        b->f[0] = rc_incref(a);
        rc_decref(a);
        rc_gc_collect(-1);
    }
    stop = true;
    sleeper.join();
    EXPECT_EQ(0, g_bad_reads.load());
    rc_gc_collect(-1);
}

// An object a collection has found reachable is filed into the older
// generation before the world restarts: another thread dropping the last
// reference to it while the collection still runs (here: while a finalizer
// of its garbage waits for that thread) frees it at once instead of waiting
// for the collection to end, which would leave the finalizer waiting.
std::atomic<int> g_drop_state{0};       // 1: the finalizer waits; 2: dropped

void waiting_finalize(void *)
{
    g_drop_state = 1;
    for (int i = 0; i < 5000 && g_drop_state.load() != 2; i++)
        usleep(1000);
}

const rc_type WaitingFinType = {"waiting-fin", obj_traverse, obj_clear, waiting_finalize};

TEST_F(GcThreads, SurvivorDiesWhileTheCollectionRuns)
{
    g_drop_state = 0;
    std::atomic<int> ready{0};
    std::thread holder([&] {
        Obj *s = new_obj();         // in this thread's nursery; we hold it
        ready = 1;
        while (g_drop_state.load() != 1)
            usleep(100);
        rc_decref(s);               // a survivor of the running collection
        g_drop_state = 2;
    });
    while (ready.load() == 0)
        usleep(100);
    Obj *a = static_cast<Obj *>(rc_new(&WaitingFinType, sizeof(Obj)));
    ASSERT_NE(nullptr, a);
    a->id = -1;
    a->magic.store(LIVE);
    a->f[0] = rc_incref(a);         // a garbage cycle of one
    rc_decref(a);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(1u, rc_gc_collect(-1));
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    holder.join();
    EXPECT_EQ(2, g_drop_state.load()) << "the survivor's death waited for the collection";
    EXPECT_LT(took, 4.0);
    EXPECT_EQ(0, g_bad_finalize.load());
}

// A thread that blocks the collector's signal (SIGPWR by default) cannot
// be stopped: a collection then waits RCMALLOC_GC_STOP_MS (1 s) and is
// skipped, automatic collections back off instead of waiting again at every
// threshold, and once the thread is gone the garbage is found.
TEST_F(GcThreads, ThreadBlockingTheSignalSkipsThenBacksOff)
{
    std::atomic<int> state{0};
    std::thread blocker([&] {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPWR);
        pthread_sigmask(SIG_BLOCK, &s, nullptr);
        rc_decref(new_obj());           // registered: it has used objects
        state = 1;
        while (state.load() == 1)
            usleep(1000);
    });
    while (state.load() == 0)
        usleep(100);
    Obj *a = new_obj(), *b = new_obj();
    a->f[0] = b;
    b->f[0] = a;                        // a garbage cycle (a's reference moved)
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(0u, rc_gc_collect(-1)) << "collected without stopping the blocker";
    double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(first, 0.5);              // it waited for the thread
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20000; i++)     // many thresholds' worth of births
        rc_decref(new_obj());
    double births = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(births, 0.9) << "automatic collections waited for the blocker again";
    state = 2;
    blocker.join();
    EXPECT_GE(rc_gc_collect(-1), 2u);   // now the cycle is found
}

}  // namespace
