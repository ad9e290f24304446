// Shared helpers for the object-lifetime tests: a two-field container
// type ("Node"), a non-container type that still owns references ("Leaf",
// for chains), and a live counter decremented by the first clear.
#ifndef RC_TESTS_LIFETIME_UTIL_H
#define RC_TESTS_LIFETIME_UTIL_H
#include <gtest/gtest.h>
#include <pthread.h>
#include <rcmalloc.h>
#include <atomic>
#include <cerrno>
#include <cstdint>

struct Node {
    void *a;
    void *b;
    long id;
    int cleared;
};

static std::atomic<long> g_live{0};

static int node_traverse(void *o, rc_visit_fn visit, void *arg)
{
    Node *n = static_cast<Node *>(o);
    int r;
    if (n->a && (r = visit(n->a, arg)) != 0)
        return r;
    if (n->b && (r = visit(n->b, arg)) != 0)
        return r;
    return 0;
}

static void node_clear(void *o)
{
    Node *n = static_cast<Node *>(o);
    if (!n->cleared) {
        n->cleared = 1;
        g_live--;
    }
    RC_CLEAR(n->a);
    RC_CLEAR(n->b);
}

static const rc_type NodeType = {"node", node_traverse, node_clear, nullptr};
static const rc_type LeafType = {"leaf", nullptr, node_clear, nullptr};

static inline Node *new_node(const rc_type *t = &NodeType, long id = 0)
{
    Node *n = static_cast<Node *>(rc_new(t, sizeof(Node)));
    if (n) {
        n->id = id;
        g_live++;
    }
    return n;
}

// Runs fn(arg) on a thread with the given stack size; returns its result.
static inline void run_on_small_stack(void *(*fn)(void *), void *arg,
                                      size_t stack = 64 * 1024)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    ASSERT_EQ(0, pthread_attr_setstacksize(&attr, stack));
    pthread_t t;
    ASSERT_EQ(0, pthread_create(&t, &attr, fn, arg));
    pthread_join(t, nullptr);
    pthread_attr_destroy(&attr);
}

// Every test starts from a clean collector state.
class Lifetime : public ::testing::Test {
protected:
    void SetUp() override
    {
        rc_gc_unfreeze();
        rc_gc_collect(-1);
        rc_gc_set_threshold(700, 10, 10);
        rc_gc_enable();
        g_live = 0;
    }
    void TearDown() override
    {
        rc_gc_unfreeze();
        rc_gc_collect(-1);
        rc_gc_enable();
        rc_gc_set_threshold(700, 10, 10);
    }
};
#endif
