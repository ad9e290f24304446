// rc_intern: identity while referenced, release when the last one goes.
#include <gtest/gtest.h>
#include <rcmalloc.h>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

// rc_intern returns const char *; rc_decref takes void *.

namespace {

static int g_dead;
static void note_death(void *, void *) { g_dead++; }

TEST(Intern, SameContentsSamePointer)
{
    const char *a = rc_intern("hello", 5);
    std::string s = "hello world";
    const char *b = rc_intern(s.c_str(), 5);
    ASSERT_NE(nullptr, a);
    EXPECT_EQ(a, b);
    EXPECT_STREQ("hello", a);
    EXPECT_EQ(2u, rc_refcount(a));
    EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(a) % 16);
    const char *c = rc_intern("hellO", 5);
    EXPECT_NE(a, c);
    const char *d = rc_intern("hello", 4);
    EXPECT_NE(a, d);
    EXPECT_STREQ("hell", d);
    rc_decref((void *)a);
    rc_decref((void *)b);
    rc_decref((void *)c);
    rc_decref((void *)d);
}

TEST(Intern, EmptyAndEmbeddedNul)
{
    const char *e1 = rc_intern("", 0);
    const char *e2 = rc_intern(nullptr, 0);
    EXPECT_EQ(e1, e2);
    EXPECT_EQ('\0', e1[0]);
    const char *n1 = rc_intern("a\0b", 3);
    const char *n2 = rc_intern("a\0c", 3);
    EXPECT_NE(n1, n2);
    EXPECT_EQ(0, std::memcmp(n1, "a\0b", 4));
    errno = 0;
    EXPECT_EQ(nullptr, rc_intern(nullptr, 3));
    EXPECT_EQ(EINVAL, errno);
    for (const char *p : {e1, e2, n1, n2})
        rc_decref((void *)p);
}

TEST(Intern, ReleasedWhenLastReferenceGoes)
{
    const char *a = rc_intern("transient", 9);
    void *w = rc_weakref_new((void *)a, note_death, nullptr);
    g_dead = 0;
    const char *b = rc_intern("transient", 9);
    rc_decref((void *)a);
    EXPECT_EQ(0, g_dead);
    EXPECT_EQ(b, rc_weakref_get(w));
    rc_decref((void *)b);
    rc_decref((void *)b);          // last reference: the table does not keep it
    EXPECT_EQ(1, g_dead);
    EXPECT_EQ(nullptr, rc_weakref_get(w));
    const char *c = rc_intern("transient", 9);   // a fresh copy
    EXPECT_EQ(1u, rc_refcount(c));
    EXPECT_STREQ("transient", c);
    rc_decref((void *)c);
    rc_decref((void *)w);
}

TEST(Intern, ManyStringsTableGrowsAndShrinks)
{
    std::vector<const char *> v;
    for (int i = 0; i < 50000; i++) {
        std::string s = "key" + std::to_string(i);
        v.push_back(rc_intern(s.data(), s.size()));
    }
    for (int i = 0; i < 50000; i++) {
        std::string s = "key" + std::to_string(i);
        const char *p = rc_intern(s.data(), s.size());
        EXPECT_EQ(v[i], p);
        rc_decref((void *)p);
    }
    for (const char *p : v)
        rc_decref((void *)p);
}

TEST(Intern, ThreadsAgreeOnIdentity)
{
    const int T = 4, N = 2000, R = 20;
    std::vector<std::thread> ts;
    std::vector<std::vector<const char *>> got(T);
    const char *anchor[N];
    for (int i = 0; i < N; i++) {
        std::string s = "shared" + std::to_string(i);
        anchor[i] = rc_intern(s.data(), s.size());
    }
    for (int t = 0; t < T; t++) {
        ts.emplace_back([&, t] {
            for (int r = 0; r < R; r++) {
                for (int i = 0; i < N; i++) {
                    std::string s = "shared" + std::to_string(i);
                    const char *p = rc_intern(s.data(), s.size());
                    if (r == 0)
                        got[t].push_back(p);
                    else if (p != got[t][i])
                        ADD_FAILURE() << "identity changed";
                    // churn: strings nobody else holds come and go
                    std::string u = "own" + std::to_string(t) + "_" + std::to_string(i % 50);
                    rc_decref((void *)rc_intern(u.data(), u.size()));
                    if (r != 0)
                        rc_decref((void *)p);
                }
            }
        });
    }
    for (auto &th : ts)
        th.join();
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            EXPECT_EQ(anchor[i], got[t][i]);
            rc_decref((void *)got[t][i]);
        }
    for (int i = 0; i < N; i++) {
        EXPECT_EQ(1u, rc_refcount(anchor[i]));
        rc_decref((void *)anchor[i]);
    }
}

}  // namespace
