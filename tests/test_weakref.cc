// Weak references, after CPython's Lib/test/test_weakref.py.
#include "lifetime_util.h"
#include <string>
#include <vector>

namespace {

static std::vector<std::string> g_log;
static std::vector<void *> g_cb_refs;

static void cb_log(void *wr, void *arg)
{
    g_cb_refs.push_back(wr);
    g_log.push_back(std::string("cb:") + static_cast<const char *>(arg));
    EXPECT_EQ(nullptr, rc_weakref_get(wr));
}

static void clear_log(void *o)
{
    g_log.push_back("clear");
    node_clear(o);
}
static const rc_type LoggedNode = {"loggednode", node_traverse, clear_log, nullptr};

class Weakref : public Lifetime {
protected:
    void SetUp() override
    {
        Lifetime::SetUp();
        g_log.clear();
        g_cb_refs.clear();
    }
};

TEST_F(Weakref, BasicGetAndDeath)   // test_basic_ref
{
    for (const rc_type *t : {&NodeType, &LeafType}) {
        Node *o = new_node(t);
        void *wr = rc_weakref_new(o, cb_log, (void *)"1");
        ASSERT_NE(nullptr, wr);
        EXPECT_TRUE(rc_gc_is_tracked(wr));     // a weakref is a tracked rc object
        void *got = rc_weakref_get(wr);
        EXPECT_EQ(o, got);
        EXPECT_EQ(2u, rc_refcount(o));
        rc_decref(got);
        EXPECT_EQ(1u, rc_refcount(o));
        rc_decref(o);
        EXPECT_EQ(nullptr, rc_weakref_get(wr));
        ASSERT_EQ(1u, g_cb_refs.size());
        EXPECT_EQ(wr, g_cb_refs[0]);
        rc_decref(wr);
        g_cb_refs.clear();
        g_log.clear();
    }
    EXPECT_EQ(0, g_live.load());
}

TEST_F(Weakref, MultipleWeakrefsAllCalledBack)   // test_multiple_callbacks
{
    Node *o = new_node();
    void *w1 = rc_weakref_new(o, cb_log, (void *)"1");
    void *w2 = rc_weakref_new(o, cb_log, (void *)"2");
    void *w3 = rc_weakref_new(o, nullptr, nullptr);
    rc_decref(o);
    EXPECT_EQ(2u, g_log.size());
    EXPECT_EQ(nullptr, rc_weakref_get(w3));
    rc_decref(w1);
    rc_decref(w2);
    rc_decref(w3);
}

TEST_F(Weakref, NoCallbackIfWeakrefDiedFirst)   // test_callback_on_dead_ref
{
    Node *o = new_node();
    void *w1 = rc_weakref_new(o, cb_log, (void *)"1");
    void *w2 = rc_weakref_new(o, cb_log, (void *)"2");
    rc_decref(w1);
    rc_decref(o);
    ASSERT_EQ(1u, g_log.size());
    EXPECT_EQ("cb:2", g_log[0]);
    rc_decref(w2);
}

TEST_F(Weakref, Errors)
{
    errno = 0;
    EXPECT_EQ(nullptr, rc_weakref_new(nullptr, nullptr, nullptr));
    EXPECT_EQ(EINVAL, errno);
    Node *o = new_node();
    errno = 0;
    EXPECT_EQ(nullptr, rc_weakref_get(o));     // not a weakref
    EXPECT_EQ(EINVAL, errno);
    EXPECT_EQ(nullptr, rc_weakref_get(nullptr));
    rc_decref(o);
}

TEST_F(Weakref, WeakrefToWeakref)
{
    Node *o = new_node();
    void *w1 = rc_weakref_new(o, nullptr, nullptr);
    void *w2 = rc_weakref_new(w1, cb_log, (void *)"w1 died");
    rc_decref(w1);
    EXPECT_EQ(std::vector<std::string>{"cb:w1 died"}, g_log);
    rc_decref(w2);
    rc_decref(o);
}

// Weakrefs to garbage are cleared and called back before any clear runs.
TEST_F(Weakref, CallbacksDuringCollectionBeforeClear)   // test_callbacks_on_callback
{
    Node *a = new_node(&LoggedNode), *b = new_node(&LoggedNode);
    a->a = b;
    b->a = a;                       // garbage cycle (our references stolen)
    void *wa = rc_weakref_new(a, cb_log, (void *)"a");
    void *wb = rc_weakref_new(b, cb_log, (void *)"b");
    EXPECT_EQ(2u, rc_gc_collect(-1));
    // both callbacks, then clear (by the collector, then again at death)
    ASSERT_GE(g_log.size(), 4u);
    EXPECT_EQ("cb", g_log[0].substr(0, 2));
    EXPECT_EQ("cb", g_log[1].substr(0, 2));
    for (size_t i = 2; i < g_log.size(); i++)
        EXPECT_EQ("clear", g_log[i]);
    EXPECT_EQ(nullptr, rc_weakref_get(wa));
    rc_decref(wa);
    rc_decref(wb);
    EXPECT_EQ(0, g_live.load());
}

// A weakref held only by garbage is garbage: its callback does not run,
// while one held from outside does.  (test_callback_in_cycle_*)
TEST_F(Weakref, WeakrefInGarbageDoesNotCallBack)
{
    Node *a = new_node(), *b = new_node();
    a->a = b;
    b->a = a;
    // a garbage weakref to a member of the cycle...
    b->b = rc_weakref_new(a, cb_log, (void *)"in garbage");
    // ...and a garbage weakref to a live object
    Node *live = new_node(&LeafType);
    a->b = rc_weakref_new(live, cb_log, (void *)"in garbage to live");
    void *outside = rc_weakref_new(b, cb_log, (void *)"outside");
    EXPECT_EQ(4u, rc_gc_collect(-1));      // a, b and the two weakrefs
    EXPECT_EQ(std::vector<std::string>{"cb:outside"}, g_log);
    rc_decref(live);                       // its dead weakref must not call
    EXPECT_EQ(std::vector<std::string>{"cb:outside"}, g_log);
    rc_decref(outside);
    EXPECT_EQ(0, g_live.load());
}

// Callbacks may call the API: create objects, weakrefs, collect (a no-op
// while collecting).
static size_t g_inner;
static void cb_busy(void *wr, void *arg)
{
    (void)wr;
    (void)arg;
    g_inner = rc_gc_collect(-1);
    Node *n = new_node();
    void *w = rc_weakref_new(n, cb_log, (void *)"nested");
    rc_decref(n);
    rc_decref(w);
}

TEST_F(Weakref, CallbackMayCallAnything)
{
    Node *a = new_node();
    a->a = rc_incref(a);
    void *w = rc_weakref_new(a, cb_busy, nullptr);
    rc_decref(a);
    g_inner = 42;
    EXPECT_EQ(1u, rc_gc_collect(-1));
    EXPECT_EQ(0u, g_inner);
    EXPECT_EQ(std::vector<std::string>{"cb:nested"}, g_log);
    rc_decref(w);
    EXPECT_EQ(0, g_live.load());
}

// The weakref callback may drop the last reference to its own weakref.
static void cb_drop_self(void *wr, void *arg)
{
    (void)arg;
    g_log.push_back("dropself");
    rc_decref(wr);
}

TEST_F(Weakref, CallbackDropsItsWeakref)
{
    Node *o = new_node(&LeafType);
    rc_weakref_new(o, cb_drop_self, nullptr);
    rc_decref(o);
    EXPECT_EQ(std::vector<std::string>{"dropself"}, g_log);
}

// Many weakrefs to many objects (the referent table grows and shrinks).
TEST_F(Weakref, ManyReferents)
{
    const int N = 20000;
    std::vector<Node *> objs;
    std::vector<void *> wrs;
    for (int i = 0; i < N; i++) {
        objs.push_back(new_node(&LeafType, i));
        wrs.push_back(rc_weakref_new(objs.back(), nullptr, nullptr));
        if (i % 3 == 0)
            wrs.push_back(rc_weakref_new(objs.back(), nullptr, nullptr));
    }
    for (int i = 0; i < N; i += 2)
        rc_decref(objs[i]);
    size_t alive = 0;
    for (void *w : wrs) {
        Node *o = static_cast<Node *>(rc_weakref_get(w));
        if (o) {
            EXPECT_EQ(1, o->id % 2);
            alive++;
            rc_decref(o);
        }
    }
    size_t want = 0;
    for (int i = 1; i < N; i += 2)
        want += (i % 3 == 0) ? 2 : 1;
    EXPECT_EQ(want, alive);
    for (int i = 1; i < N; i += 2)
        rc_decref(objs[i]);
    for (void *w : wrs) {
        EXPECT_EQ(nullptr, rc_weakref_get(w));
        rc_decref(w);
    }
}

}  // namespace
