// The thread model (see the comment at the top of lib/gc.c): refcounting
// from many threads, deaths on any thread, collections concurrent with
// threads that take and drop references, and the documented recipe for
// threads that mutate containers.
#include "lifetime_util.h"
#include <mutex>
#include <thread>
#include <vector>

namespace {

static std::atomic<bool> g_stop{false};

static void collector_loop(std::atomic<long> *runs)
{
    while (!g_stop.load()) {
        rc_gc_collect(-1);
        rc_gc_collect(0);
        (*runs)++;
    }
}

TEST_F(Lifetime, RefcountHammeredFromThreads)
{
    const int T = 8, N = 200000;
    Node *leaf = new_node(&LeafType);
    Node *cont = new_node(&NodeType);
    g_stop = false;
    std::atomic<long> runs{0};
    std::thread gc(collector_loop, &runs);
    std::vector<std::thread> ts;
    for (int t = 0; t < T; t++)
        ts.emplace_back([=] {
            for (int i = 0; i < N; i++) {
                rc_incref(leaf);
                rc_incref(cont);
                if (i & 1) {
                    rc_decref(leaf);
                    rc_decref(cont);
                } else {
                    rc_decref(cont);
                    rc_decref(leaf);
                }
                // short-lived objects of our own, created and dropped
                // (containers are not mutated: see the thread model)
                Node *x = new_node(i & 2 ? &NodeType : &LeafType);
                if (!(i & 2))
                    x->a = rc_incref(leaf);
                rc_decref(x);
            }
        });
    for (auto &th : ts)
        th.join();
    g_stop = true;
    gc.join();
    EXPECT_EQ(1u, rc_refcount(leaf));
    EXPECT_EQ(1u, rc_refcount(cont));
    EXPECT_EQ(0, leaf->cleared);
    EXPECT_EQ(0, cont->cleared);
    EXPECT_GT(runs.load(), 0);
    rc_decref(leaf);
    rc_decref(cont);
    EXPECT_EQ(0, g_live.load());
}

static std::atomic<long> g_clears{0};
static void counting_clear(void *o)
{
    g_clears++;
    node_clear(o);
}
static const rc_type CountingLeaf = {"countingleaf", nullptr, counting_clear, nullptr};
static const rc_type CountingNode = {"countingnode", node_traverse, counting_clear, nullptr};

// The last reference is dropped by whichever thread: each object dies once.
TEST_F(Lifetime, LastDecrefRaceDiesOnce)
{
    const int T = 6, N = 20000;
    g_clears = 0;
    std::vector<Node *> objs;
    for (int i = 0; i < N; i++) {
        Node *n = new_node(i & 1 ? &CountingNode : &CountingLeaf);
        for (int t = 1; t < T; t++)
            rc_incref(n);
        objs.push_back(n);
    }
    std::vector<std::thread> ts;
    for (int t = 0; t < T; t++)
        ts.emplace_back([&objs] {
            for (Node *n : objs)
                rc_decref(n);
        });
    for (auto &th : ts)
        th.join();
    EXPECT_EQ(N, g_clears.load());
    EXPECT_EQ(0, g_live.load());
}

// Garbage cycles that worker threads keep reviving through weak references
// while another thread collects in a loop: an object a thread holds a
// strong reference to is never cleared or freed under it.
TEST_F(Lifetime, CollectionNeverFreesWhatAThreadHolds)
{
    const int K = 2000, T = 4;
    std::vector<void *> wrs;
    for (int i = 0; i < K; i++) {
        Node *a = new_node(&NodeType, i), *b = new_node(&NodeType, i);
        a->a = b;
        // the weakref while we still own a: an automatic collection may
        // run in any rc_new (the weakref's own), and free a cycle at once
        wrs.push_back(rc_weakref_new(a, nullptr, nullptr));
        b->a = a;               // garbage from here on: only weakrefs left
    }
    g_stop = false;
    std::atomic<long> runs{0}, held{0};
    std::atomic<int> ready{0};
    std::thread gc([&] {
        // start collecting once every worker holds something
        while (ready.load() < T)
            std::this_thread::yield();
        collector_loop(&runs);
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < T; t++)
        ts.emplace_back([&, t] {
            bool first = true;
            unsigned seed = 12345u + t;
            auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
            while (std::chrono::steady_clock::now() < deadline) {
                seed = seed * 1103515245u + 12345u;
                void *w = wrs[(seed >> 8) % K];
                Node *a = static_cast<Node *>(rc_weakref_get(w));
                if (a == nullptr)
                    continue;
                held++;
                if (first) {
                    ready++;
                    first = false;
                }
                Node *b = static_cast<Node *>(a->a);
                // Hold it across some collections and keep checking.
                for (int k = 0; k < 200; k++) {
                    if (a->cleared || b == nullptr || b->cleared || a->a != b) {
                        ADD_FAILURE() << "object cleared while held";
                        break;
                    }
                    rc_incref(b);
                    rc_decref(b);
                    if ((k & 31) == 0)
                        std::this_thread::yield();
                }
                rc_decref(a);
            }
        });
    for (auto &th : ts)
        th.join();
    g_stop = true;
    gc.join();
    EXPECT_GT(held.load(), 0);
    EXPECT_GT(runs.load(), 0);
    rc_gc_collect(-1);
    EXPECT_EQ(0, g_live.load());     // and all of it collected in the end
    for (void *w : wrs) {
        EXPECT_EQ(nullptr, rc_weakref_get(w));
        rc_decref(w);
    }
}

// The recipe for threads that mutate containers: automatic collection off,
// mutations and explicit collections under the program's own lock.
TEST_F(Lifetime, MutatorsAndCollectorUnderProgramLock)
{
    rc_gc_disable();
    std::mutex graph_lock;
    const int T = 4, N = 5000;
    g_stop = false;
    std::atomic<long> found{0};
    std::thread gc([&] {
        while (!g_stop.load()) {
            std::lock_guard<std::mutex> g(graph_lock);
            found += (long)rc_gc_collect(-1);
        }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < T; t++)
        ts.emplace_back([&] {
            for (int i = 0; i < N; i++) {
                Node *a = new_node(), *b = new_node();
                {
                    std::lock_guard<std::mutex> g(graph_lock);
                    a->a = b;
                    b->a = rc_incref(a);
                }
                rc_decref(a);       // a garbage cycle of two
            }
        });
    for (auto &th : ts)
        th.join();
    g_stop = true;
    gc.join();
    found += (long)rc_gc_collect(-1);
    EXPECT_EQ(2L * T * N, found.load());
    EXPECT_EQ(0, g_live.load());
}

// rc_weakref_get racing with the death of its referent on another thread.
TEST_F(Lifetime, WeakrefGetRacesWithDeath)
{
    const int N = 20000;
    for (int round = 0; round < 2; round++) {
        const rc_type *t = round ? &NodeType : &LeafType;
        std::vector<Node *> objs;
        std::vector<void *> wrs;
        for (int i = 0; i < N; i++) {
            objs.push_back(new_node(t, 0x5eed));
            wrs.push_back(rc_weakref_new(objs.back(), nullptr, nullptr));
        }
        std::atomic<long> got{0};
        std::thread getter([&] {
            for (int i = 0; i < N; i++) {
                Node *o = static_cast<Node *>(rc_weakref_get(wrs[i]));
                if (o) {
                    if (o->id != 0x5eed || o->cleared)
                        ADD_FAILURE() << "revived a dead object";
                    got++;
                    rc_decref(o);
                }
            }
        });
        std::thread killer([&] {
            for (int i = 0; i < N; i++)
                rc_decref(objs[i]);
        });
        getter.join();
        killer.join();
        for (void *w : wrs) {
            EXPECT_EQ(nullptr, rc_weakref_get(w));
            rc_decref(w);
        }
        EXPECT_EQ(0, g_live.load());
    }
}

}  // namespace
