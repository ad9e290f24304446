// The cycle collector, after CPython's Lib/test/test_gc.py.
#include "lifetime_util.h"
#include <vector>

namespace {

static size_t collect_all() { return rc_gc_collect(-1); }

TEST_F(Lifetime, SelfCycle)              // test_list / test_dict
{
    Node *n = new_node();
    n->a = rc_incref(n);
    rc_decref(n);
    EXPECT_EQ(1, g_live.load());
    EXPECT_EQ(1u, collect_all());
    EXPECT_EQ(0, g_live.load());
}

static int other_traverse(void *o, rc_visit_fn visit, void *arg)
{
    return node_traverse(o, visit, arg);
}
static const rc_type OtherType = {"other", other_traverse, node_clear, nullptr};

TEST_F(Lifetime, CycleThroughSeveralTypes)  // test_class / test_method
{
    Node *a = new_node(&NodeType), *b = new_node(&OtherType);
    Node *leaf = new_node(&LeafType);   // not a container: not counted
    a->a = b;
    b->a = rc_incref(a);
    b->b = leaf;
    EXPECT_EQ(3, g_live.load());
    EXPECT_EQ(0u, collect_all());        // still referenced from here
    rc_decref(a);
    EXPECT_EQ(2u, collect_all());
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, LongCycleAndReturnValue)
{
    const int N = 1000;
    Node *first = new_node(), *prev = first;
    for (int i = 1; i < N; i++) {
        Node *x = new_node();
        prev->a = x;
        prev = x;
    }
    prev->a = rc_incref(first);            // ring
    EXPECT_EQ(0u, collect_all());
    EXPECT_EQ(N, g_live.load());
    rc_gc_stats before, after;
    ASSERT_EQ(0, rc_gc_get_stats(2, &before));
    rc_decref(first);   // now only the ring refers to first
    EXPECT_EQ((size_t)N, collect_all());
    EXPECT_EQ(0, g_live.load());
    ASSERT_EQ(0, rc_gc_get_stats(2, &after));
    EXPECT_EQ(before.collections + 1, after.collections);
    EXPECT_EQ(before.collected + N, after.collected);
    EXPECT_EQ(before.uncollectable, after.uncollectable);
}

// A chain built bottom-up (each node made after the one it holds, only the
// last held from here) comes before its root in the young list: the
// collector first takes every node of it for unreachable, pins it, then
// moves it back and unpins it when the root reaches it, while the ring
// allocated in between stays unreachable.  The pins must balance: every
// survivor keeps its count, the ring is found, and nothing else.
TEST_F(Lifetime, BottomUpChainBesideGarbageKeepsCountsExact)
{
    const int N = 500;
    rc_gc_disable();                // all of it young, in birth order
    std::vector<Node *> chain;
    Node *ring_first = nullptr, *ring_prev = nullptr;
    Node *below = nullptr;
    for (int i = 0; i < N; i++) {
        Node *c = new_node(&NodeType, i);
        c->a = below;               // takes over our reference to below
        below = c;
        chain.push_back(c);
        Node *r = new_node(&NodeType, -1);
        if (ring_prev != nullptr)
            ring_prev->a = r;       // the ring holds r ...
        else
            ring_first = r;
        ring_prev = r;
    }
    ring_prev->a = ring_first;      // ... and closes on its first node
    EXPECT_EQ(2 * N, g_live.load());
    for (int gen : {0, 2}) {
        SCOPED_TRACE(gen);
        EXPECT_EQ(gen == 0 ? (size_t)N : 0u, rc_gc_collect(gen));
        EXPECT_EQ(N, g_live.load());
        for (int i = 0; i < N; i++) {
            EXPECT_EQ(1u, rc_refcount(chain[i])) << "node " << i;
            EXPECT_TRUE(rc_gc_is_tracked(chain[i]));
        }
    }
    rc_decref(below);               // the root: the whole chain dies
    EXPECT_EQ(0, g_live.load());
    EXPECT_EQ(0u, collect_all());
    rc_gc_enable();
}

// ---- finalizers (PEP 442) ---------------------------------------------------

static int g_fin_calls;
static void *g_saved;
static bool g_fin_resurrect;
static void fin(void *o)
{
    g_fin_calls++;
    if (g_fin_resurrect && !g_saved)
        g_saved = rc_incref(o);
}
static const rc_type FinType = {"fin", node_traverse, node_clear, fin};

TEST_F(Lifetime, CycleWithFinalizersIsCollected)  // test_legacy_finalizer's PEP 442 form
{
    g_fin_calls = 0;
    g_fin_resurrect = false;
    Node *a = new_node(&FinType), *b = new_node(&FinType);
    a->a = b;
    b->a = a;
    EXPECT_EQ(2u, collect_all());
    EXPECT_EQ(2, g_fin_calls);
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, ResurrectionThenFinalizerNotCalledAgain)
{
    g_fin_calls = 0;
    g_fin_resurrect = true;
    g_saved = nullptr;
    Node *a = new_node(&FinType), *b = new_node(&NodeType);
    a->a = b;
    b->a = a;                                  // cycle a <-> b, a finalizable
    EXPECT_EQ(0u, collect_all());              // a resurrects, b with it
    EXPECT_EQ(1, g_fin_calls);
    ASSERT_EQ(a, g_saved);
    EXPECT_EQ(2, g_live.load());
    EXPECT_EQ(0, a->cleared);
    EXPECT_EQ(0, b->cleared);
    EXPECT_TRUE(rc_gc_is_tracked(a));
    g_fin_resurrect = false;
    void *s = g_saved;
    g_saved = nullptr;
    rc_decref(s);                              // garbage again
    EXPECT_EQ(2u, collect_all());
    EXPECT_EQ(1, g_fin_calls);                 // finalizer ran once, ever
    EXPECT_EQ(0, g_live.load());
}

// Every finalizer in the garbage runs before the resurrection check: one
// finalizer resurrecting saves its whole cycle (and only that).
TEST_F(Lifetime, AllFinalizersRunBeforeResurrectionCheck)
{
    g_fin_calls = 0;
    g_fin_resurrect = true;
    g_saved = nullptr;
    Node *a = new_node(&FinType), *b = new_node(&FinType), *c = new_node(&FinType);
    a->a = b; b->a = c; c->a = a;
    Node *x = new_node(&NodeType);             // a separate garbage cycle
    x->a = rc_incref(x);
    rc_decref(x);
    EXPECT_EQ(1u, collect_all());              // x only
    EXPECT_EQ(3, g_fin_calls);
    EXPECT_EQ(3, g_live.load());
    g_fin_resurrect = false;
    void *s = g_saved;
    g_saved = nullptr;
    rc_decref(s);
    EXPECT_EQ(3u, collect_all());
    EXPECT_EQ(3, g_fin_calls);
    EXPECT_EQ(0, g_live.load());
}

// Finalizers may call any API function, including a (no-op) collection
static size_t g_inner_collect = 99;
static void *g_fin_new;
static void fin_reenter(void *o)
{
    (void)o;
    g_inner_collect = rc_gc_collect(-1);
    g_fin_new = new_node();                    // allocation during collection
    rc_gc_track(g_fin_new);
    size_t c0;
    rc_gc_get_count(&c0, nullptr, nullptr);
}
static const rc_type ReenterType = {"reenter", node_traverse, node_clear, fin_reenter};

TEST_F(Lifetime, ReentrantCollectReturnsZero)
{
    Node *a = new_node(&ReenterType);
    a->a = rc_incref(a);
    rc_decref(a);
    EXPECT_EQ(1u, collect_all());
    EXPECT_EQ(0u, g_inner_collect);
    EXPECT_TRUE(rc_gc_is_tracked(g_fin_new));
    rc_decref(g_fin_new);
    EXPECT_EQ(0, g_live.load());
}

// clear may also do anything: here it drops references to a live object.
TEST_F(Lifetime, ClearDropsOutsideReferences)
{
    Node *keep = new_node(&LeafType);
    Node *a = new_node();
    a->a = rc_incref(a);
    a->b = rc_incref(keep);
    rc_decref(a);
    EXPECT_EQ(2u, rc_refcount(keep));
    EXPECT_EQ(1u, collect_all());
    EXPECT_EQ(1u, rc_refcount(keep));
    rc_decref(keep);
    EXPECT_EQ(0, g_live.load());
}

// ---- tracking ----------------------------------------------------------------

TEST_F(Lifetime, UntrackedNeverCollected)
{
    Node *a = new_node();
    a->a = rc_incref(a);
    rc_gc_untrack(a);
    rc_decref(a);
    EXPECT_EQ(0u, collect_all());
    EXPECT_EQ(1, g_live.load());
    rc_gc_track(a);
    EXPECT_EQ(1u, collect_all());
    EXPECT_EQ(0, g_live.load());
}

// ---- generations, counts, thresholds ------------------------------------------

TEST_F(Lifetime, CountsAndThresholds)
{
    rc_gc_disable();
    rc_gc_set_threshold(123, 4, 5);
    size_t t0, t1, t2;
    rc_gc_get_threshold(&t0, &t1, &t2);
    EXPECT_EQ(123u, t0);
    EXPECT_EQ(4u, t1);
    EXPECT_EQ(5u, t2);
    rc_gc_collect(2);
    size_t c0, c1, c2;
    rc_gc_get_count(&c0, &c1, &c2);
    EXPECT_EQ(0u, c0);
    EXPECT_EQ(0u, c1);
    EXPECT_EQ(0u, c2);
    std::vector<Node *> v;
    for (int i = 0; i < 10; i++)
        v.push_back(new_node());
    Node *leaf = new_node(&LeafType);           // untracked: not counted
    rc_gc_get_count(&c0, &c1, &c2);
    EXPECT_EQ(10u, c0);
    rc_decref(v.back());                        // a tracked death counts down
    v.pop_back();
    rc_gc_get_count(&c0, nullptr, nullptr);
    EXPECT_EQ(9u, c0);
    rc_gc_collect(0);
    rc_gc_get_count(&c0, &c1, &c2);
    EXPECT_EQ(0u, c0);
    EXPECT_EQ(1u, c1);
    EXPECT_EQ(0u, c2);
    rc_gc_collect(1);
    rc_gc_get_count(&c0, &c1, &c2);
    EXPECT_EQ(0u, c1);
    EXPECT_EQ(1u, c2);
    for (Node *n : v)
        rc_decref(n);
    rc_decref(leaf);
}

TEST_F(Lifetime, GenerationPromotion)       // test_collect_generations
{
    rc_gc_disable();
    Node *a = new_node();
    a->a = rc_incref(a);                              // self-cycle, still referenced by us
    EXPECT_EQ(0u, rc_gc_collect(0));       // survives into generation 1
    rc_decref(a);
    EXPECT_EQ(0u, rc_gc_collect(0));       // not in generation 0 any more
    EXPECT_EQ(1, g_live.load());
    EXPECT_EQ(1u, rc_gc_collect(1));
    EXPECT_EQ(0, g_live.load());

    Node *b = new_node();
    b->a = rc_incref(b);
    EXPECT_EQ(0u, rc_gc_collect(0));       // -> generation 1
    EXPECT_EQ(0u, rc_gc_collect(1));       // -> generation 2
    rc_decref(b);
    EXPECT_EQ(0u, rc_gc_collect(0));
    EXPECT_EQ(0u, rc_gc_collect(1));
    EXPECT_EQ(1, g_live.load());
    EXPECT_EQ(1u, rc_gc_collect(2));
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, ThresholdTriggersAutomaticCollection)
{
    rc_gc_set_threshold(100, 10, 10);
    rc_gc_stats before, after;
    ASSERT_EQ(0, rc_gc_get_stats(0, &before));
    for (int i = 0; i < 1000; i++) {       // garbage cycles only
        Node *a = new_node();
        a->a = rc_incref(a);
        rc_decref(a);
    }
    ASSERT_EQ(0, rc_gc_get_stats(0, &after));
    EXPECT_GE(after.collections - before.collections, 5u);
    EXPECT_LE(after.collections - before.collections, 11u);
    EXPECT_LT(g_live.load(), 150);           // collected on the way
    collect_all();
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, DisabledAndZeroThresholdMeanNoAutomaticCollection)
{
    rc_gc_set_threshold(10, 10, 10);
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            rc_gc_disable();
            EXPECT_FALSE(rc_gc_is_enabled());
        } else {
            rc_gc_enable();
            EXPECT_TRUE(rc_gc_is_enabled());
            rc_gc_set_threshold(0, 10, 10);
        }
        rc_gc_stats before, after;
        rc_gc_get_stats(0, &before);
        for (int i = 0; i < 500; i++) {
            Node *a = new_node();
            a->a = rc_incref(a);
            rc_decref(a);
        }
        rc_gc_get_stats(0, &after);
        EXPECT_EQ(before.collections, after.collections);
        EXPECT_EQ(500, g_live.load());
        EXPECT_EQ(500u, collect_all());
    }
}

// Building a large long-lived heap with automatic collection stays linear:
// full collections are throttled (long_lived_pending > long_lived_total/4).
TEST_F(Lifetime, FullCollectionsThrottled)
{
    rc_gc_stats before, after, s0, s1, e0, e1;
    rc_gc_get_stats(2, &before);
    rc_gc_get_stats(0, &s0);
    rc_gc_get_stats(1, &s1);
    const int N = 1000000;
    Node *head = nullptr;
    for (int i = 0; i < N; i++) {
        Node *x = new_node();
        x->a = head;
        head = x;
    }
    rc_gc_get_stats(2, &after);
    size_t full = after.collections - before.collections;
    // Without throttling there would be one per 70,000 allocations (14);
    // with it, a geometric series: about log_{1.25}(N / 7000) ~ 22 at most,
    // but in practice far fewer because each one waits for +25%.
    EXPECT_LE(full, 25u);
    // and one collection of some generation per 700 allocations
    rc_gc_get_stats(0, &e0);
    rc_gc_get_stats(1, &e1);
    size_t all = full + (e0.collections - s0.collections) +
                 (e1.collections - s1.collections);
    EXPECT_GE(all, (size_t)N / 701 - 10);
    EXPECT_LE(all, (size_t)N / 700 + 10);
    rc_decref(head);
    EXPECT_EQ(0, g_live.load());
}

static Node *make_tree(int depth)
{
    Node *n = new_node();
    if (depth > 0) {
        n->a = make_tree(depth - 1);
        n->b = make_tree(depth - 1);
    }
    return n;
}

// A large long-lived structure beside heavy short-lived churn (binary-trees):
// short-lived trees that a generation-1 collection happens to promote die
// soon after, and must not count as growth of the old generation, or every
// full collection rescans the long-lived tree (CPython's rule: 75 full
// collections at depth 16).  Counted, not timed: full collections during the
// churn, and the objects they examined.
TEST_F(Lifetime, ChurnBesideLongLivedHeapStaysLinear)
{
    Node *keep = make_tree(15);                       // 65,535 nodes
    rc_gc_stats before, after;
    rc_gc_get_stats(2, &before);
    size_t churned = 0;
    for (int round = 0; round < 90; round++) {
        for (int d = 4; d <= 12; d += 2) {
            for (int k = 0; k < (1 << (12 - d)); k++) {
                Node *t = make_tree(d);
                churned += ((size_t)2 << d) - 1;
                rc_decref(t);
            }
        }
    }
    rc_gc_get_stats(2, &after);
    size_t full = after.collections - before.collections;
    // ~3.7M short-lived containers; the long-lived generation does not grow,
    // so no full collection is due (allow a couple for what was young when
    // the churn began).
    EXPECT_GT(churned, (size_t)1000000);
    EXPECT_LE(full, 2u) << "full collections during the churn";
    rc_decref(keep);
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, Freeze)
{
    Node *a = new_node();
    a->a = rc_incref(a);
    rc_decref(a);
    size_t before = rc_gc_freeze_count();
    rc_gc_freeze();
    EXPECT_GE(rc_gc_freeze_count(), before + 1);
    EXPECT_EQ(0u, collect_all());            // frozen objects are not scanned
    EXPECT_EQ(1, g_live.load());
    size_t c0;
    rc_gc_get_count(&c0, nullptr, nullptr);
    EXPECT_EQ(0u, c0);
    rc_gc_unfreeze();
    EXPECT_EQ(0u, rc_gc_freeze_count());
    EXPECT_EQ(1u, collect_all());
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, BadArguments)
{
    errno = 0;
    EXPECT_EQ(0u, rc_gc_collect(3));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(0u, rc_gc_collect(-2));
    EXPECT_EQ(EINVAL, errno);
    rc_gc_stats s;
    errno = 0;
    EXPECT_EQ(-1, rc_gc_get_stats(3, &s));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(-1, rc_gc_get_stats(-1, &s));
    EXPECT_EQ(EINVAL, errno);
    for (int g = 0; g < 3; g++)
        EXPECT_EQ(0, rc_gc_get_stats(g, &s));
}

// Collecting a huge garbage ring runs in bounded stack too.
struct RingArg {
    size_t found;
    long live_after;
};
static void *collect_ring(void *p)
{
    RingArg *r = static_cast<RingArg *>(p);
    rc_gc_disable();
    const int N = 1000000;
    Node *first = new_node(), *prev = first;
    for (int i = 1; i < N; i++) {
        Node *x = new_node();
        x->b = new_node(&LeafType);
        prev->a = x;
        prev = x;
    }
    prev->a = rc_incref(first);
    rc_decref(first);
    r->found = rc_gc_collect(-1);
    r->live_after = g_live.load();
    return nullptr;
}

TEST_F(Lifetime, CollectMillionRingOn64KStack)
{
    RingArg r = {0, -1};
    run_on_small_stack(collect_ring, &r);
    EXPECT_EQ(1000000u, r.found);
    EXPECT_EQ(0, r.live_after);
    rc_gc_enable();
}

}  // namespace
