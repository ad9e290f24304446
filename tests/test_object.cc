// rc_new / rc_incref / rc_decref, death order, immortality, the trashcan.
#include "lifetime_util.h"
#include <string>
#include <thread>
#include <vector>

namespace {

TEST_F(Lifetime, NewIsZeroedAlignedCountOne)
{
    /* no clear: the Node types' clear reads Node fields, which objects
       smaller than a Node do not have */
    static const rc_type PlainType = {"plain", nullptr, nullptr, nullptr};
    for (size_t size : {0, 1, 7, 16, 24, 100, 4096, 100000}) {
        unsigned char *p = static_cast<unsigned char *>(rc_new(&PlainType, size));
        ASSERT_NE(nullptr, p);
        EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % 16) << size;
        for (size_t i = 0; i < size; i++)
            ASSERT_EQ(0, p[i]) << size << " " << i;
        EXPECT_EQ(1u, rc_refcount(p));
        EXPECT_EQ(&PlainType, rc_type_of(p));
        rc_decref(p);
        Node *n = static_cast<Node *>(rc_new(&NodeType, size < sizeof(Node) ? sizeof(Node) : size));
        ASSERT_NE(nullptr, n);
        EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(n) % 16);
        EXPECT_EQ(&NodeType, rc_type_of(n));
        rc_decref(n);
    }
}

TEST_F(Lifetime, NewErrors)
{
    errno = 0;
    EXPECT_EQ(nullptr, rc_new(nullptr, 8));
    EXPECT_EQ(EINVAL, errno);
    errno = 0;
    EXPECT_EQ(nullptr, rc_new(&LeafType, SIZE_MAX - 8));
    EXPECT_EQ(ENOMEM, errno);
    errno = 0;
    EXPECT_EQ(nullptr, rc_new(&NodeType, SIZE_MAX / 2));
    EXPECT_EQ(ENOMEM, errno);
}

/* rc_new's fast path takes one thread-local test for "a type counted last
   in this thread" (object.c): a NULL type must still fail, both in a
   thread that has counted nothing yet and right after one that has. */
TEST_F(Lifetime, NewNullTypeFailsWhateverTheThreadCountedLast)
{
    void *warm = rc_new(&LeafType, 8);
    ASSERT_NE(nullptr, warm);
    errno = 0;
    EXPECT_EQ(nullptr, rc_new(nullptr, 8));
    EXPECT_EQ(EINVAL, errno);
    rc_decref(warm);
    int first_errno = 0;
    void *first = &first_errno;
    std::thread t([&] {
        errno = 0;
        first = rc_new(nullptr, 8);        /* this thread's first rc call */
        first_errno = errno;
        void *o = rc_new(&LeafType, 8);   /* and a good one after it */
        EXPECT_NE(nullptr, o);
        rc_decref(o);
    });
    t.join();
    EXPECT_EQ(nullptr, first);
    EXPECT_EQ(EINVAL, first_errno);
}

TEST_F(Lifetime, IncrefDecrefNullAndCounts)
{
    EXPECT_EQ(nullptr, rc_incref(nullptr));
    rc_decref(nullptr);
    EXPECT_EQ(0u, rc_refcount(nullptr));
    EXPECT_EQ(nullptr, rc_type_of(nullptr));
    Node *n = new_node(&LeafType);
    EXPECT_EQ(n, rc_incref(n));
    EXPECT_EQ(2u, rc_refcount(n));
    rc_decref(n);
    EXPECT_EQ(1u, rc_refcount(n));
    EXPECT_EQ(1, g_live.load());
    rc_decref(n);
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, ContainersTrackedAtOnceLeavesNever)
{
    Node *c = new_node();
    Node *l = new_node(&LeafType);
    EXPECT_TRUE(rc_gc_is_tracked(c));
    EXPECT_FALSE(rc_gc_is_tracked(l));
    rc_gc_track(l);     // no-op on a non-container
    EXPECT_FALSE(rc_gc_is_tracked(l));
    rc_gc_untrack(c);
    EXPECT_FALSE(rc_gc_is_tracked(c));
    rc_gc_track(c);
    EXPECT_TRUE(rc_gc_is_tracked(c));
    EXPECT_FALSE(rc_gc_is_tracked(nullptr));
    rc_decref(c);
    rc_decref(l);
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Lifetime, ClearAndSetref)
{
    Node *a = new_node(&LeafType), *b = new_node(&LeafType), *c = new_node(&LeafType);
    a->a = b;                       // a owns b
    RC_SETREF(a->a, rc_incref(c));  // b released, a owns c
    EXPECT_EQ(0, c->cleared);       // c alive
    EXPECT_EQ(2, g_live.load());    // b died
    EXPECT_EQ(2u, rc_refcount(c));
    RC_CLEAR(a->a);
    EXPECT_EQ(nullptr, a->a);
    EXPECT_EQ(1u, rc_refcount(c));
    rc_decref(a);
    rc_decref(c);
    EXPECT_EQ(0, g_live.load());
}

// ---- death order: finalize -> weakref callbacks -> clear -> free --------

static std::vector<std::string> g_log;
static void *g_resurrect_slot;
static bool g_resurrect;

static void log_finalize(void *o)
{
    g_log.push_back("finalize");
    if (g_resurrect)
        g_resurrect_slot = rc_incref(o);
}
static void log_clear(void *o)
{
    g_log.push_back("clear");
    node_clear(o);
}
static const rc_type LogType = {"log", nullptr, log_clear, log_finalize};
static const rc_type LogGcType = {"loggc", node_traverse, log_clear, log_finalize};

static void log_cb(void *wr, void *arg)
{
    g_log.push_back(std::string("callback:") + static_cast<const char *>(arg));
    EXPECT_EQ(nullptr, rc_weakref_get(wr));   // referent already unreachable
}

TEST_F(Lifetime, DeathOrder)
{
    for (const rc_type *t : {&LogType, &LogGcType}) {
        g_log.clear();
        g_resurrect = false;
        Node *n = new_node(t);
        void *wr = rc_weakref_new(n, log_cb, (void *)"w");
        ASSERT_NE(nullptr, wr);
        rc_decref(n);
        std::vector<std::string> want = {"finalize", "callback:w", "clear"};
        EXPECT_EQ(want, g_log) << t->name;
        EXPECT_EQ(0, g_live.load());
        rc_decref(wr);
    }
}

TEST_F(Lifetime, FinalizerResurrectsOnceThenDiesWithoutIt)
{
    for (const rc_type *t : {&LogType, &LogGcType}) {
        g_log.clear();
        g_resurrect = true;
        Node *n = new_node(t);
        void *wr = rc_weakref_new(n, log_cb, (void *)"w");
        rc_decref(n);
        ASSERT_EQ(n, g_resurrect_slot);
        EXPECT_EQ(std::vector<std::string>{"finalize"}, g_log);
        EXPECT_EQ(1u, rc_refcount(n));
        EXPECT_EQ(1, g_live.load());
        if (t->traverse) {
            EXPECT_TRUE(rc_gc_is_tracked(n));    // tracked again
        }
        void *got = rc_weakref_get(wr);          // weakref still alive
        EXPECT_EQ(n, got);
        rc_decref(got);
        g_log.clear();
        g_resurrect_slot = nullptr;
        rc_decref(n);                            // no second finalize
        std::vector<std::string> want = {"callback:w", "clear"};
        EXPECT_EQ(want, g_log) << t->name;
        EXPECT_EQ(0, g_live.load());
        rc_decref(wr);
    }
    g_resurrect = false;
}

TEST_F(Lifetime, Immortal)
{
    Node *n = new_node(&LeafType);
    rc_immortalize(n);
    size_t rc = rc_refcount(n);
    EXPECT_GT(rc, (size_t)1 << 40);
    for (int i = 0; i < 1000; i++)
        rc_decref(n);
    rc_incref(n);
    EXPECT_EQ(rc, rc_refcount(n));
    EXPECT_EQ(1, g_live.load());
    rc_immortalize(nullptr);
}

// ---- the trashcan: deep structures die in bounded stack -------------------

struct ChainArg {
    const rc_type *type;
    long n;
    long live_after;
};

static void *drop_chain(void *p)
{
    ChainArg *c = static_cast<ChainArg *>(p);
    Node *head = nullptr;
    for (long i = 0; i < c->n; i++) {
        Node *x = new_node(c->type, i);
        x->a = head;
        head = x;
    }
    rc_decref(head);             // all of it dies before this returns
    c->live_after = g_live.load();
    return nullptr;
}

TEST_F(Lifetime, TenMillionLeafChainOn64KStack)
{
    ChainArg c = {&LeafType, 10 * 1000 * 1000, -1};
    run_on_small_stack(drop_chain, &c);
    EXPECT_EQ(0, c.live_after);
}

TEST_F(Lifetime, ContainerChainOn64KStack)
{
    rc_gc_disable();
    ChainArg c = {&NodeType, 2 * 1000 * 1000, -1};
    run_on_small_stack(drop_chain, &c);
    EXPECT_EQ(0, c.live_after);
}

static Node *build_tree(const rc_type *t, int depth)
{
    Node *n = new_node(t);
    if (depth > 0) {
        n->a = build_tree(t, depth - 1);
        n->b = nullptr;
    }
    return n;
}

struct TreeArg {
    long live_after;
};

// A long left spine with a short right branch at every node.
static void *drop_deep_tree(void *p)
{
    TreeArg *t = static_cast<TreeArg *>(p);
    Node *root = nullptr;
    for (int i = 0; i < 300000; i++) {
        Node *x = new_node(&LeafType);
        x->a = root;
        x->b = build_tree(&LeafType, 3);
        root = x;
    }
    rc_decref(root);
    t->live_after = g_live.load();
    return nullptr;
}

TEST_F(Lifetime, DeepTreeOn64KStack)
{
    TreeArg t = {-1};
    run_on_small_stack(drop_deep_tree, &t);
    EXPECT_EQ(0, t.live_after);
}

// A finalizer on every node of a deep chain: still bounded, each once.
static std::atomic<long> g_finalized{0};
static void count_finalize(void *) { g_finalized++; }
static const rc_type FinLeafType = {"finleaf", nullptr, node_clear, count_finalize};

TEST_F(Lifetime, DeepChainWithFinalizersOn64KStack)
{
    g_finalized = 0;
    ChainArg c = {&FinLeafType, 1000 * 1000, -1};
    run_on_small_stack(drop_chain, &c);
    EXPECT_EQ(0, c.live_after);
    EXPECT_EQ(1000 * 1000, g_finalized.load());
}

}  // namespace
