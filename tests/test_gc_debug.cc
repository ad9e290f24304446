// Leak finding (SPEC 4.1, rc_gc_get_objects(3)): get_objects by generation,
// get_referrers, get_referents, RC_GC_DEBUG_SAVEALL and rc_gc_garbage,
// RC_GC_DEBUG_STATS, collection callbacks, and rc_census -- after CPython's
// Lib/test/test_gc.py where it has a case, then a program that leaks by a
// cycle through an untracked object and by an extra reference and finds
// both with these functions alone.
#include "lifetime_util.h"
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

// Every test also starts with no kept garbage, no debug flags, no callbacks.
class LeakFinding : public Lifetime {
protected:
    void SetUp() override
    {
        rc_gc_set_debug(0);
        rc_gc_clear_garbage();
        Lifetime::SetUp();
    }
    void TearDown() override
    {
        rc_gc_set_debug(0);
        rc_gc_clear_garbage();
        Lifetime::TearDown();
    }
};

static int collect_fn(void *obj, void *arg)
{
    static_cast<std::vector<void *> *>(arg)->push_back(obj);
    return 0;
}

static std::vector<void *> objects(int gen)
{
    std::vector<void *> v;
    rc_gc_get_objects(gen, collect_fn, &v);
    return v;
}
static std::vector<void *> referrers(const void *o)
{
    std::vector<void *> v;
    rc_gc_get_referrers(o, collect_fn, &v);
    return v;
}
static std::vector<void *> referents(const void *o)
{
    std::vector<void *> v;
    rc_gc_get_referents(o, collect_fn, &v);
    return v;
}
static bool contains(const std::vector<void *> &v, const void *o)
{
    return std::find(v.begin(), v.end(), o) != v.end();
}
static std::vector<void *> sorted(std::vector<void *> v)
{
    std::sort(v.begin(), v.end());
    return v;
}

// ---- get_objects -------------------------------------------------------------

TEST_F(LeakFinding, GetObjectsByGeneration)    // test_get_objects
{
    Node *l = new_node();
    l->a = rc_incref(l);                       // l = []; l.append(l)
    EXPECT_TRUE(contains(objects(0), l));
    EXPECT_FALSE(contains(objects(1), l));
    EXPECT_FALSE(contains(objects(2), l));
    EXPECT_TRUE(contains(objects(-1), l));
    rc_gc_collect(0);
    EXPECT_FALSE(contains(objects(0), l));
    EXPECT_TRUE(contains(objects(1), l));
    EXPECT_FALSE(contains(objects(2), l));
    rc_gc_collect(1);
    EXPECT_FALSE(contains(objects(0), l));
    EXPECT_FALSE(contains(objects(1), l));
    EXPECT_TRUE(contains(objects(2), l));
    rc_gc_collect(2);
    EXPECT_FALSE(contains(objects(0), l));
    EXPECT_FALSE(contains(objects(1), l));
    EXPECT_TRUE(contains(objects(2), l));
    rc_gc_freeze();                            // -1 includes the frozen
    EXPECT_FALSE(contains(objects(2), l));
    EXPECT_TRUE(contains(objects(-1), l));
    rc_gc_unfreeze();
    EXPECT_TRUE(contains(objects(2), l));
    RC_CLEAR(l->a);
    rc_decref(l);
    EXPECT_FALSE(contains(objects(-1), l));
    EXPECT_EQ(0, g_live.load());
}

TEST_F(LeakFinding, GetObjectsArguments)       // test_get_objects_arguments
{
    for (int g : {3, -2, 1000, -1000}) {
        errno = 0;
        EXPECT_EQ(0u, rc_gc_get_objects(g, collect_fn, nullptr)) << g;
        EXPECT_EQ(EINVAL, errno) << g;
    }
    // The count equals the number of calls; -1 is the sum of 0..2 and frozen.
    Node *a = new_node(), *b = new_node(), *leaf = new_node(&LeafType);
    size_t n[3], all = rc_gc_get_objects(-1, nullptr, nullptr);
    for (int g = 0; g < 3; g++)
        n[g] = rc_gc_get_objects(g, nullptr, nullptr);
    EXPECT_EQ(all, n[0] + n[1] + n[2] + rc_gc_freeze_count());
    EXPECT_EQ(all, objects(-1).size());
    EXPECT_FALSE(contains(objects(-1), leaf));  // never tracked
    rc_gc_untrack(b);
    EXPECT_FALSE(contains(objects(-1), b));
    EXPECT_EQ(all - 1, rc_gc_get_objects(-1, nullptr, nullptr));
    // fn returning nonzero stops the walk; the stopping call is counted
    Node *more[3];
    for (auto &m : more)
        m = new_node();
    int calls = 0;
    auto stop2 = [](void *, void *arg) -> int { return ++*static_cast<int *>(arg) == 2; };
    EXPECT_EQ(2u, rc_gc_get_objects(-1, stop2, &calls));
    EXPECT_EQ(2, calls);
    for (auto m : more)
        rc_decref(m);
    rc_decref(a);
    rc_decref(b);
    rc_decref(leaf);
}

// fn may drop the last reference to the object it is given: the walk holds
// its own reference until fn returns.
static int drop_it(void *obj, void *arg)
{
    auto *v = static_cast<std::vector<void *> *>(arg);
    auto it = std::find(v->begin(), v->end(), obj);
    if (it != v->end()) {
        v->erase(it);
        rc_decref(obj);
    }
    return 0;
}
TEST_F(LeakFinding, WalkMayKillWhatItVisits)
{
    std::vector<void *> mine;
    for (int i = 0; i < 100; i++)
        mine.push_back(new_node());
    rc_gc_get_objects(-1, drop_it, &mine);
    EXPECT_TRUE(mine.empty());
    EXPECT_EQ(0, g_live.load());
}

// ---- get_referents / get_referrers ---------------------------------------------

TEST_F(LeakFinding, GetReferents)              // test_get_referents
{
    Node *x = new_node(), *y = new_node(&LeafType), *alist = new_node();
    alist->a = rc_incref(x);
    alist->b = rc_incref(y);               // non-containers are referents too
    EXPECT_EQ(sorted({x, y}), sorted(referents(alist)));
    EXPECT_EQ(2u, rc_gc_get_referents(alist, nullptr, nullptr));
    // no references, or not a container: nothing
    EXPECT_TRUE(referents(x).empty());
    y->a = rc_incref(x);                   // y owns a reference, but has no traverse
    EXPECT_TRUE(referents(y).empty());
    EXPECT_EQ(0u, rc_gc_get_referents(nullptr, collect_fn, nullptr));
    // a self-reference, and the same child twice
    RC_SETREF(alist->b, rc_incref(alist));
    RC_SETREF(alist->a, rc_incref(alist));
    EXPECT_EQ((std::vector<void *>{alist, alist}), referents(alist));
    // untracked containers still have referents (CPython: any object)
    rc_gc_untrack(alist);
    EXPECT_EQ(2u, rc_gc_get_referents(alist, nullptr, nullptr));
    RC_CLEAR(alist->a);
    RC_CLEAR(alist->b);
    rc_decref(alist);
    rc_decref(y);
    rc_decref(x);
    EXPECT_EQ(0, g_live.load());
}

TEST_F(LeakFinding, GetReferrers)
{
    Node *obj = new_node(&LeafType);
    Node *b = new_node(), *c = new_node(), *d = new_node();
    Node *hidden = new_node(&LeafType);       // owns a reference, not traversable
    b->a = rc_incref(obj);
    c->b = rc_incref(obj);
    d->a = rc_incref(b);
    hidden->a = rc_incref(obj);
    EXPECT_EQ(sorted({b, c}), sorted(referrers(obj)));
    EXPECT_EQ((std::vector<void *>{d}), referrers(b));
    EXPECT_TRUE(referrers(d).empty());
    // an object that refers to itself is its own referrer
    d->b = rc_incref(d);
    EXPECT_EQ((std::vector<void *>{d}), referrers(d));
    // frozen referrers are found; untracked ones are not
    rc_gc_freeze();
    EXPECT_EQ(sorted({b, c}), sorted(referrers(obj)));
    rc_gc_unfreeze();
    rc_gc_untrack(c);
    EXPECT_EQ((std::vector<void *>{b}), referrers(obj));
    rc_gc_track(c);
    // the count, and stopping early
    EXPECT_EQ(2u, rc_gc_get_referrers(obj, nullptr, nullptr));
    auto stop = [](void *, void *) -> int { return 1; };
    EXPECT_EQ(1u, rc_gc_get_referrers(obj, stop, nullptr));
    RC_CLEAR(d->b);
    rc_decref(d);
    rc_decref(b);
    rc_decref(c);
    rc_decref(hidden);
    EXPECT_EQ(0, g_live.load() - 1);          // obj: ours
    rc_decref(obj);
    EXPECT_EQ(0, g_live.load());
}

// ---- walks from inside a collection ---------------------------------------------

static Node *g_partner;
static size_t g_seen_self, g_seen_gen2, g_referrers_of_self, g_inner;
static int find_it(void *obj, void *arg)
{
    return obj == arg;
}
static void walking_fin(void *o)
{
    // the collection in progress is ours: a nested one returns 0, walks see
    // the objects being collected, in the generation they were in
    g_inner = rc_gc_collect(-1);
    g_seen_self = rc_gc_get_objects(-1, find_it, o) != 0 &&
                  rc_gc_get_objects(-1, nullptr, nullptr) >= 2;
    std::vector<void *> in2 = objects(2);
    g_seen_gen2 = contains(in2, o);
    g_referrers_of_self = referrers(o).size();
    (void)g_partner;
}
static const rc_type WalkingFin = {"walking-fin", node_traverse, node_clear, walking_fin};

TEST_F(LeakFinding, WalksFromAFinalizerDuringACollection)
{
    Node *a = new_node(&WalkingFin), *b = new_node();
    a->a = b;
    b->a = rc_incref(a);
    rc_gc_collect(-1);                          // both now in generation 2
    g_partner = b;
    rc_decref(a);
    g_seen_self = g_seen_gen2 = g_referrers_of_self = 99;
    EXPECT_EQ(2u, rc_gc_collect(-1));
    EXPECT_EQ(0u, g_inner);
    EXPECT_EQ(1u, g_seen_self);
    EXPECT_EQ(1u, g_seen_gen2);
    EXPECT_EQ(1u, g_referrers_of_self);         // b
    EXPECT_EQ(0, g_live.load());
}

// ---- DEBUG_SAVEALL ---------------------------------------------------------------

static int g_fins;
static void counting_fin(void *) { g_fins++; }
static const rc_type FinNode = {"fin-node", node_traverse, node_clear, counting_fin};
static int g_wr_calls;
static void wr_cb(void *, void *) { g_wr_calls++; }

TEST_F(LeakFinding, SaveAll)                   // test_saveall
{
    EXPECT_EQ(0u, rc_gc_garbage(nullptr, nullptr));
    Node *l = new_node(&FinNode);
    l->a = rc_incref(l);                        // L = []; L.append(L)
    void *wr = rc_weakref_new(l, wr_cb, nullptr);
    ASSERT_NE(nullptr, wr);
    g_fins = g_wr_calls = 0;
    int debug = rc_gc_get_debug();
    rc_gc_set_debug(debug | RC_GC_DEBUG_SAVEALL);
    EXPECT_EQ(debug | RC_GC_DEBUG_SAVEALL, rc_gc_get_debug());
    rc_gc_stats before, after;
    rc_gc_get_stats(2, &before);
    rc_decref(l);                               // del L
    EXPECT_EQ(1u, rc_gc_collect(-1));            // counted as collected
    rc_gc_get_stats(2, &after);
    EXPECT_EQ(before.collected + 1, after.collected);
    rc_gc_set_debug(debug);
    // kept: alive, not cleared, still tracked; finalizer and weakref as usual
    std::vector<void *> kept;
    EXPECT_EQ(1u, rc_gc_garbage(collect_fn, &kept));
    EXPECT_EQ((std::vector<void *>{l}), kept);
    EXPECT_EQ(1, g_live.load());
    EXPECT_EQ(0, l->cleared);
    EXPECT_EQ(l, l->a);
    EXPECT_TRUE(rc_gc_is_tracked(l));
    EXPECT_TRUE(contains(objects(-1), l));
    EXPECT_EQ((std::vector<void *>{l}), referrers(l));
    EXPECT_EQ(1, g_fins);
    EXPECT_EQ(1, g_wr_calls);
    EXPECT_EQ(nullptr, rc_weakref_get(wr));
    EXPECT_EQ(2u, rc_refcount(l));               // the cycle and gc.garbage
    // a later collection does not find it again while it is kept
    EXPECT_EQ(0u, rc_gc_collect(-1));
    // released: the next collection frees it, without finalizing again
    EXPECT_EQ(1u, rc_gc_clear_garbage());
    EXPECT_EQ(0u, rc_gc_garbage(nullptr, nullptr));
    EXPECT_EQ(1, g_live.load());
    EXPECT_EQ(1u, rc_gc_collect(-1));
    EXPECT_EQ(0, g_live.load());
    EXPECT_EQ(1, g_fins);
    rc_decref(wr);
}

TEST_F(LeakFinding, SaveAllKeepsEveryMemberAndReportsGeneration)
{
    rc_gc_set_debug(RC_GC_DEBUG_SAVEALL);
    Node *a = new_node(), *b = new_node(), *c = new_node(&LeafType);
    a->a = b;
    b->a = rc_incref(a);
    b->b = c;                                   // non-container hanging off it
    rc_decref(a);
    EXPECT_EQ(2u, rc_gc_collect(0));
    EXPECT_EQ(sorted({a, b}), sorted([] {
        std::vector<void *> v;
        rc_gc_garbage(collect_fn, &v);
        return v;
    }()));
    EXPECT_TRUE(contains(objects(1), a));       // moved on like survivors
    EXPECT_EQ(3, g_live.load());
    // with SAVEALL still on, released garbage is found and kept again
    EXPECT_EQ(2u, rc_gc_clear_garbage());
    EXPECT_EQ(2u, rc_gc_collect(-1));
    EXPECT_EQ(2u, rc_gc_garbage(nullptr, nullptr));
    rc_gc_set_debug(0);
    EXPECT_EQ(2u, rc_gc_clear_garbage());
    EXPECT_EQ(2u, rc_gc_collect(-1));
    EXPECT_EQ(0, g_live.load());
}

// ---- DEBUG_STATS -------------------------------------------------------------------

TEST_F(LeakFinding, DebugStatsPrintsOneLinePerCollection)
{
    Node *keep[5];
    for (auto &k : keep)
        k = new_node();
    Node *a = new_node();
    a->a = rc_incref(a);
    rc_decref(a);
    size_t tracked = rc_gc_get_objects(-1, nullptr, nullptr) - rc_gc_freeze_count();
    char path[] = "/tmp/rc_gc_statsXXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    rc_gc_set_debug(RC_GC_DEBUG_STATS);
    size_t found = rc_gc_collect(-1);
    size_t found0 = rc_gc_collect(0);
    rc_gc_set_debug(0);
    rc_gc_collect(0);                           // not printed
    dup2(saved, 2);
    close(saved);
    char buf[4096] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    ASSERT_GT(n, 0);
    EXPECT_EQ(1u, found);
    EXPECT_EQ(0u, found0);
    std::vector<std::string> lines;
    for (char *s = buf, *e; (e = strchr(s, '\n')); s = e + 1)
        lines.emplace_back(s, e);
    ASSERT_EQ(2u, lines.size()) << buf;
    int gen;
    size_t examined, unreachable, uncollectable, secs;
    char frac[16];
    ASSERT_EQ(6, sscanf(lines[0].c_str(),
                        "rc_gc: generation %d: %zu objects examined, %zu unreachable, "
                        "%zu uncollectable, %zu.%6[0-9] s elapsed",
                        &gen, &examined, &unreachable, &uncollectable, &secs, frac))
        << lines[0];
    EXPECT_EQ(2, gen);
    EXPECT_EQ(tracked, examined);
    EXPECT_EQ(1u, unreachable);
    EXPECT_EQ(0u, uncollectable);
    EXPECT_EQ(6u, strlen(frac));
    ASSERT_EQ(5, sscanf(lines[1].c_str(),
                        "rc_gc: generation %d: %zu objects examined, %zu unreachable, "
                        "%zu uncollectable, %zu.",
                        &gen, &examined, &unreachable, &uncollectable, &secs))
        << lines[1];
    EXPECT_EQ(0, gen);
    EXPECT_EQ(0u, examined);
    EXPECT_EQ(0u, unreachable);
    for (auto k : keep)
        rc_decref(k);
}

// ---- callbacks (GCCallbackTests) ----------------------------------------------------

struct Visit {
    int which, phase, generation;
    bool has_info;
    rc_gc_stats info;
};
static std::vector<Visit> g_visits;
static void cb(int phase, int generation, const rc_gc_stats *info, void *arg)
{
    Visit v = {(int)(intptr_t)arg, phase, generation, info != nullptr, {0, 0, 0}};
    if (info)
        v.info = *info;
    g_visits.push_back(v);
}

class Callbacks : public LeakFinding {
protected:
    void SetUp() override
    {
        LeakFinding::SetUp();
        ASSERT_EQ(0, rc_gc_callback_add(cb, (void *)1));
        ASSERT_EQ(0, rc_gc_callback_add(cb, (void *)2));
        g_visits.clear();
    }
    void TearDown() override
    {
        rc_gc_callback_remove(cb, (void *)1);
        rc_gc_callback_remove(cb, (void *)2);
        LeakFinding::TearDown();
    }
};

TEST_F(Callbacks, Collect)                     // test_collect
{
    rc_gc_collect(-1);
    int n1 = 0, n2 = 0, start = 0, stop = 0;
    for (auto &v : g_visits) {
        n1 += v.which == 1;
        n2 += v.which == 2;
        start += v.phase == 0;
        stop += v.phase == 1;
        EXPECT_EQ(v.phase == 1, v.has_info);     // info only at stop
    }
    EXPECT_EQ(2, n1);
    EXPECT_EQ(2, n2);
    EXPECT_EQ(2, start);
    EXPECT_EQ(2, stop);
    ASSERT_EQ(4u, g_visits.size());
    // order: every start, then every stop, callbacks in the order added
    EXPECT_EQ(1, g_visits[0].which);
    EXPECT_EQ(2, g_visits[1].which);
    EXPECT_EQ(0, g_visits[1].phase);
    EXPECT_EQ(1, g_visits[2].phase);
}

TEST_F(Callbacks, CollectGeneration)           // test_collect_generation
{
    rc_gc_collect(2);
    rc_gc_collect(-1);                          // a full collection reports 2
    ASSERT_EQ(8u, g_visits.size());
    for (auto &v : g_visits)
        EXPECT_EQ(2, v.generation);
    g_visits.clear();
    rc_gc_collect(1);
    ASSERT_EQ(4u, g_visits.size());
    for (auto &v : g_visits)
        EXPECT_EQ(1, v.generation);
}

TEST_F(Callbacks, CollectGarbage)              // test_collect_garbage
{
    // three cycles of two: collected counts them, uncollectable stays 0
    for (int i = 0; i < 3; i++) {
        Node *a = new_node(), *b = new_node();
        a->a = b;
        b->a = rc_incref(a);
        rc_decref(a);
    }
    rc_gc_collect(-1);
    for (auto &v : g_visits) {
        if (v.phase != 1)
            continue;
        EXPECT_EQ(1u, v.info.collections);
        EXPECT_EQ(6u, v.info.collected);
        EXPECT_EQ(0u, v.info.uncollectable);
    }
    // with SAVEALL the kept objects count as collected too
    g_visits.clear();
    rc_gc_set_debug(RC_GC_DEBUG_SAVEALL);
    Node *l = new_node();
    l->a = rc_incref(l);
    rc_decref(l);
    rc_gc_collect(-1);
    ASSERT_EQ(4u, g_visits.size());
    EXPECT_EQ(1u, g_visits[3].info.collected);
    EXPECT_EQ(1u, rc_gc_garbage(nullptr, nullptr));
    rc_gc_set_debug(0);
    rc_gc_clear_garbage();
    rc_gc_collect(-1);
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Callbacks, AutomaticCollections)
{
    rc_gc_set_threshold(10, 10, 10);
    std::vector<Node *> v;
    for (int i = 0; i < 25; i++)
        v.push_back(new_node());
    ASSERT_GE(g_visits.size(), 4u);
    for (auto &x : g_visits)
        EXPECT_EQ(0, x.generation);
    for (auto n : v)
        rc_decref(n);
}

TEST_F(Callbacks, AddRemove)
{
    errno = 0;
    EXPECT_EQ(-1, rc_gc_callback_remove(cb, (void *)3));   // unknown pair
    EXPECT_EQ(ENOENT, errno);
    EXPECT_EQ(0, rc_gc_callback_remove(cb, (void *)1));
    errno = 0;
    EXPECT_EQ(-1, rc_gc_callback_remove(cb, (void *)1));   // only once
    EXPECT_EQ(ENOENT, errno);
    rc_gc_collect(0);
    ASSERT_EQ(2u, g_visits.size());
    EXPECT_EQ(2, g_visits[0].which);
    // a pair added twice is called twice and removed one at a time
    EXPECT_EQ(0, rc_gc_callback_add(cb, (void *)2));
    g_visits.clear();
    rc_gc_collect(0);
    EXPECT_EQ(4u, g_visits.size());
    EXPECT_EQ(0, rc_gc_callback_remove(cb, (void *)2));
    errno = 0;
    EXPECT_EQ(-1, rc_gc_callback_add(nullptr, nullptr));
    EXPECT_EQ(EINVAL, errno);
}

// A callback may call anything: collect (returns 0), walk, add and remove
// callbacks (itself included), allocate containers.
static size_t g_cb_inner, g_cb_walk;
static void busy_cb(int phase, int, const rc_gc_stats *, void *arg)
{
    g_cb_inner += rc_gc_collect(-1);
    Node *n = new_node();
    n->a = rc_incref(n);                         // garbage for the next one
    g_cb_walk += rc_gc_get_objects(-1, find_it, n) == 1;
    rc_decref(n);
    if (phase == 1) {
        rc_gc_callback_remove(busy_cb, arg);
        rc_gc_callback_add(cb, (void *)7);
    }
}
TEST_F(Callbacks, ReentrantCallbacks)
{
    g_cb_inner = g_cb_walk = 0;
    ASSERT_EQ(0, rc_gc_callback_add(busy_cb, nullptr));
    rc_gc_collect(-1);
    EXPECT_EQ(0u, g_cb_inner);
    EXPECT_EQ(2u, g_cb_walk);
    errno = 0;
    EXPECT_EQ(-1, rc_gc_callback_remove(busy_cb, nullptr));   // it removed itself
    EXPECT_EQ(0, rc_gc_callback_remove(cb, (void *)7));
    // the start callback's garbage was collected by that collection; the stop's is left
    EXPECT_EQ(1, g_live.load());
    rc_gc_collect(-1);
    EXPECT_EQ(0, g_live.load());
}

// ---- census --------------------------------------------------------------------------

static size_t census_of(const rc_type *t, size_t *bytes = nullptr)
{
    std::vector<rc_type_census> v(rc_census(nullptr, 0) + 16);
    size_t n = rc_census(v.data(), v.size());
    for (size_t i = 0; i < n && i < v.size(); i++)
        if (v[i].type == t) {
            if (bytes)
                *bytes = v[i].bytes;
            return v[i].objects;
        }
    if (bytes)
        *bytes = 0;
    return 0;
}

static const rc_type CensusA = {"census-a", node_traverse, node_clear, nullptr};   // tracked
static const rc_type CensusB = {"census-b", nullptr, node_clear, nullptr};         // never tracked
static const rc_type CensusC = {"census-c", nullptr, nullptr, nullptr};            // plain data

TEST_F(LeakFinding, CensusOfThreeKnownPopulations)
{
    std::vector<void *> a, b, c;
    for (int i = 0; i < 100; i++)
        a.push_back(rc_new(&CensusA, 32));
    for (int i = 0; i < 200; i++)
        b.push_back(rc_new(&CensusB, 32));
    for (int i = 0; i < 300; i++)
        c.push_back(rc_new(&CensusC, 200));
    rc_gc_untrack(a[0]);                         // untracked: still counted
    size_t ba, bb, bc;
    EXPECT_EQ(100u, census_of(&CensusA, &ba));
    EXPECT_EQ(200u, census_of(&CensusB, &bb));
    EXPECT_EQ(300u, census_of(&CensusC, &bc));
    // bytes: the blocks, headers included (32 + 32, 16 + 32, 16 + 200)
    EXPECT_GE(ba, 100u * 64);
    EXPECT_LE(ba, 100u * 160);
    EXPECT_GE(bb, 200u * 48);
    EXPECT_LE(bb, 200u * 96);
    EXPECT_GE(bc, 300u * 216);
    EXPECT_LE(bc, 300u * 432);
    // most bytes first, at most max entries, returns the number of types
    size_t ntypes = rc_census(nullptr, 0);
    EXPECT_GE(ntypes, 3u);
    std::vector<rc_type_census> v(ntypes);
    EXPECT_EQ(ntypes, rc_census(v.data(), v.size()));
    for (size_t i = 1; i < ntypes; i++)
        EXPECT_GE(v[i - 1].bytes, v[i].bytes);
    for (auto &e : v)
        EXPECT_GT(e.objects, 0u);
    rc_type_census top[2];
    memset(top, 0, sizeof top);
    EXPECT_EQ(ntypes, rc_census(top, 2));
    EXPECT_EQ(v[0].type, top[0].type);
    EXPECT_EQ(v[1].type, top[1].type);
    // partial deaths, and deaths on other threads, of objects born here
    for (int i = 0; i < 50; i++) {
        rc_decref(a.back());
        a.pop_back();
    }
    std::thread t([&] {
        for (int i = 0; i < 100; i++) {
            rc_decref(b.back());
            b.pop_back();
        }
        for (int i = 0; i < 7; i++)              // born there, alive here
            c.push_back(rc_new(&CensusC, 200));
    });
    t.join();
    EXPECT_EQ(50u, census_of(&CensusA));
    EXPECT_EQ(100u, census_of(&CensusB));
    EXPECT_EQ(307u, census_of(&CensusC));
    // rc_stats_print names the top types
    char *buf = nullptr;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_NE(nullptr, f);
    rc_stats_print(f);
    fclose(f);
    EXPECT_NE(nullptr, strstr(buf, "rc objects: ")) << buf;
    EXPECT_NE(nullptr, strstr(buf, "  census-c: 307 objects, ")) << buf;
    EXPECT_NE(nullptr, strstr(buf, "  census-b: 100 objects, ")) << buf;
    free(buf);
    for (auto p : a) rc_decref(p);
    for (auto p : b) rc_decref(p);
    for (auto p : c) rc_decref(p);
    EXPECT_EQ(0u, census_of(&CensusA));
    EXPECT_EQ(0u, census_of(&CensusB));
    EXPECT_EQ(0u, census_of(&CensusC));
}

// Many threads, many types: exact once they are joined.
TEST_F(LeakFinding, CensusAcrossThreadsAndManyTypes)
{
    static rc_type types[100];
    for (int i = 0; i < 100; i++)
        types[i] = rc_type{"many", nullptr, nullptr, nullptr};
    std::vector<void *> keep[8];
    std::vector<std::thread> ts;
    for (int k = 0; k < 8; k++)
        ts.emplace_back([k, &keep] {
            for (int r = 0; r < 3; r++)
                for (int i = 0; i < 100; i++) {
                    void *o = rc_new(&types[i], 16);
                    if (r == k % 3)
                        keep[k].push_back(o);
                    else
                        rc_decref(o);
                }
        });
    for (auto &t : ts)
        t.join();
    for (int i = 0; i < 100; i++)
        EXPECT_EQ(8u, census_of(&types[i])) << i;
    for (auto &v : keep)
        for (auto p : v)
            rc_decref(p);
    for (int i = 0; i < 100; i++)
        EXPECT_EQ(0u, census_of(&types[i])) << i;
}

// ---- finding real leaks ------------------------------------------------------------
//
// A program with three types: sessions (containers) own buffers; buffers
// (no traverse: the collector cannot see into them) may point back at
// their session; records (containers) are kept in a registry.  It leaks
// some sessions by a cycle through a buffer, and some records by an
// increment nobody undoes.  The test finds each leak with the API alone.

struct Session {
    void *buffer;
    long id;
};
struct Buffer {
    void *owner;     // strong: the leak
    char data[64];
};
struct Record {
    void *session;
    long id;
};
static int session_traverse(void *o, rc_visit_fn visit, void *arg)
{
    Session *s = static_cast<Session *>(o);
    return s->buffer ? visit(s->buffer, arg) : 0;
}
static void session_clear(void *o) { RC_CLEAR(static_cast<Session *>(o)->buffer); }
static void buffer_clear(void *o) { RC_CLEAR(static_cast<Buffer *>(o)->owner); }
static int record_traverse(void *o, rc_visit_fn visit, void *arg)
{
    Record *r = static_cast<Record *>(o);
    return r->session ? visit(r->session, arg) : 0;
}
static void record_clear(void *o) { RC_CLEAR(static_cast<Record *>(o)->session); }
static const rc_type SessionType = {"session", session_traverse, session_clear, nullptr};
static const rc_type BufferType = {"buffer", nullptr, buffer_clear, nullptr};
static const rc_type RecordType = {"record", record_traverse, record_clear, nullptr};

struct Suspect {
    void *obj;
    size_t refcount, referrers;
};
static int gather_suspects(void *obj, void *arg)
{
    auto *out = static_cast<std::vector<Suspect> *>(arg);
    const rc_type *t = rc_type_of(obj);
    if (t != &SessionType && t != &RecordType)
        return 0;
    // rc_refcount minus our walk's own reference
    size_t rc = rc_refcount(obj) - 1;
    size_t held = rc_gc_get_referrers(obj, nullptr, nullptr);
    if (rc > held)                               // held by something unseen
        out->push_back({obj, rc, held});
    return 0;
}
static int is_buffer_pointing_at(void *child, void *arg)
{
    return rc_type_of(child) == &BufferType &&
           static_cast<Buffer *>(child)->owner == arg;
}

TEST_F(LeakFinding, FindsLeaksByCycleAndByExtraReference)
{
    const int N = 60;
    std::vector<Session *> sessions;
    std::vector<Record *> records;
    for (int i = 0; i < N; i++) {
        Session *s = static_cast<Session *>(rc_new(&SessionType, sizeof(Session)));
        s->id = i;
        Buffer *b = static_cast<Buffer *>(rc_new(&BufferType, sizeof(Buffer)));
        s->buffer = b;
        if (i % 10 == 3)
            b->owner = rc_incref(s);             // leak 1: cycle through a buffer
        sessions.push_back(s);
        Record *r = static_cast<Record *>(rc_new(&RecordType, sizeof(Record)));
        r->id = i;
        r->session = rc_incref(s);
        if (i % 15 == 7)
            rc_incref(r);                        // leak 2: a reference nobody drops
        records.push_back(r);
    }
    // a collectable cycle between records too, to check it is not reported
    RC_SETREF(records[0]->session, rc_incref(records[1]));
    RC_SETREF(records[1]->session, rc_incref(records[0]));

    // The program is done with everything.
    for (auto r : records)
        rc_decref(r);
    for (auto s : sessions)
        rc_decref(s);
    rc_gc_collect(-1);

    // 1. the census says something is alive: 6 sessions and their buffers,
    //    4 records (and the sessions they hold: 4 more, overlapping by 0..)
    size_t live_sessions = census_of(&SessionType);
    size_t live_buffers = census_of(&BufferType);
    size_t live_records = census_of(&RecordType);
    EXPECT_EQ(4u, live_records);                     // i = 7, 22, 37, 52
    EXPECT_EQ(6u + 4u, live_sessions);               // 3, 13, .. 53 and the records'
    EXPECT_EQ(live_sessions, live_buffers);

    // 2. the tracked ones (sessions, records) with more references than
    //    tracked referrers are held from outside the collector's view
    std::vector<Suspect> suspects;
    rc_gc_get_objects(-1, gather_suspects, &suspects);
    std::vector<long> cycle_ids, extra_ids;
    for (auto &s : suspects) {
        if (rc_type_of(s.obj) == &RecordType) {
            // nothing tracked holds it: an extra reference
            EXPECT_EQ(0u, s.referrers);
            extra_ids.push_back(static_cast<Record *>(s.obj)->id);
        } else {
            // a session held by one of its own referents: a cycle through
            // an object the collector cannot traverse
            bool cycle = rc_gc_get_referents(s.obj, is_buffer_pointing_at, s.obj) == 1 &&
                         [&] {
                             std::vector<void *> kids = referents(s.obj);
                             return kids.size() == 1 && is_buffer_pointing_at(kids[0], s.obj);
                         }();
            EXPECT_TRUE(cycle);
            cycle_ids.push_back(static_cast<Session *>(s.obj)->id);
        }
    }
    std::sort(cycle_ids.begin(), cycle_ids.end());
    std::sort(extra_ids.begin(), extra_ids.end());
    EXPECT_EQ((std::vector<long>{3, 13, 23, 33, 43, 53}), cycle_ids);
    EXPECT_EQ((std::vector<long>{7, 22, 37, 52}), extra_ids);
    // the sessions that the leaked records hold are explained by them
    for (auto &r : extra_ids) {
        Record *rec = records[r];
        std::vector<void *> held = referrers(rec->session);
        EXPECT_EQ((std::vector<void *>{rec}), held);
    }

    // 3. fix both and everything goes
    for (auto &s : suspects) {
        if (rc_type_of(s.obj) == &RecordType)
            rc_decref(s.obj);
        else
            RC_CLEAR(static_cast<Buffer *>(static_cast<Session *>(s.obj)->buffer)->owner);
    }
    rc_gc_collect(-1);
    EXPECT_EQ(0u, census_of(&SessionType));
    EXPECT_EQ(0u, census_of(&BufferType));
    EXPECT_EQ(0u, census_of(&RecordType));
}

// Walks and the census from other threads while one thread collects: they
// wait for the collection (the lock) and never see it half done.  (Per the
// thread model, the walker traverses only containers nobody mutates.)
TEST_F(LeakFinding, WalksFromOtherThreadsDuringCollections)
{
    std::vector<Node *> stable;
    for (int i = 0; i < 50; i++) {
        Node *n = new_node();
        n->a = stable.empty() ? nullptr : rc_incref(stable.back());
        stable.push_back(n);
    }
    std::atomic<bool> stop{false};
    std::atomic<size_t> walks{0};
    std::thread walker([&] {
        while (!stop.load()) {
            EXPECT_GE(rc_gc_get_objects(-1, nullptr, nullptr), 50u);
            std::vector<void *> v = objects(-1);
            EXPECT_GE(v.size(), 50u);
            for (Node *n : stable)
                EXPECT_EQ(n->a ? 1u : 0u, rc_gc_get_referents(n, nullptr, nullptr));
            EXPECT_GE(census_of(&NodeType), 50u);
            walks++;
        }
    });
    size_t found = 0;
    for (int round = 0; round < 300 || walks.load() < 20; round++) {
        Node *a = new_node(), *b = new_node();
        a->a = b;
        b->a = rc_incref(a);
        rc_decref(a);
        // the walker's own references may keep a pair for one collection
        found += rc_gc_collect(-1);
    }
    stop = true;
    walker.join();
    found += rc_gc_collect(-1);
    EXPECT_GE(found, 600u);
    for (Node *n : stable)
        rc_decref(n);
    EXPECT_EQ(0, g_live.load());
}

}  // namespace
