/*
 * cxx_prog.cc -- a C++ program that is NOT linked with rcmalloc, for
 * test_preload_cxx.sh: run with and without LD_PRELOAD, its output must be
 * identical.  Exercises every operator new/delete form and the usual STL
 * containers; prints results that depend only on the computation.
 *   cxx_prog          the workload
 *   cxx_prog --which  where each operator new/delete form resolves
 */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct alignas(128) Wide {
    uint64_t v[16];
};

uint64_t fnv(const void *p, size_t n, uint64_t h = 1469598103934665603ull)
{
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

int which()
{
    const char *names[] = {
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
        "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t",
        "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
        "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
        "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
        "malloc", "free"};
    for (const char *n : names) {
        void *s = dlsym(RTLD_DEFAULT, n);
        Dl_info info;
        const char *obj = "(undefined)";
        if (s)
            obj = dladdr(s, &info) && info.dli_fname ? info.dli_fname : "(unknown)";
        std::printf("%s\t%s\n", n, obj);
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--which"))
        return which();

    /* every operator form */
    uint64_t h = 0;
    for (size_t n = 1; n < 200000; n = n * 3 + 1) {
        char *a = new char[n];
        memset(a, (int)(n & 0xff), n);
        h ^= fnv(a, n);
        delete[] a;
        void *p = ::operator new(n);
        memset(p, 1, n);
        ::operator delete(p, n);
        p = ::operator new[](n, std::nothrow);
        if (!p)
            return 1;
        ::operator delete[](p, std::nothrow);
        for (size_t al = 16; al <= 65536; al *= 16) {
            p = ::operator new(n, std::align_val_t{al});
            if ((uintptr_t)p % al)
                return 2;
            memset(p, 2, n);
            ::operator delete(p, n, std::align_val_t{al});
            p = ::operator new[](n, std::align_val_t{al}, std::nothrow);
            if (!p || (uintptr_t)p % al)
                return 3;
            ::operator delete[](p, std::align_val_t{al}, std::nothrow);
        }
    }
    std::printf("forms %016llx\n", (unsigned long long)h);

    std::vector<Wide *> wides;
    for (int i = 0; i < 1000; i++) {
        Wide *w = new Wide;
        if ((uintptr_t)w % alignof(Wide))
            return 4;
        for (int k = 0; k < 16; k++)
            w->v[k] = (uint64_t)i * k;
        wides.push_back(w);
    }
    uint64_t ws = 0;
    for (Wide *w : wides) {
        ws += w->v[15];
        delete w;
    }
    std::printf("wide %llu\n", (unsigned long long)ws);

    bool threw = false;
    try {
        volatile size_t huge = SIZE_MAX / 2;
        void *volatile p = ::operator new(huge);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    std::printf("bad_alloc %d\n", threw);
    volatile size_t huge = SIZE_MAX / 2;
    std::printf("nothrow %d\n", ::operator new(huge, std::nothrow) == nullptr);

    /* containers */
    std::map<std::string, int> words;
    std::unordered_map<int, std::string> names;
    std::ostringstream text;
    uint64_t s = 42;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        std::string w;
        for (int k = 0; k < 1 + (int)((s >> 60) & 7); k++)
            w += (char)('a' + ((s >> (8 * k)) % 26));
        words[w]++;
        if (i % 3 == 0)
            names[i] = w + "-" + std::to_string(i);
        text << w << ' ';
    }
    std::vector<std::pair<int, std::string>> top;
    for (auto &kv : words)
        top.emplace_back(-kv.second, kv.first);
    std::sort(top.begin(), top.end());
    std::printf("distinct %zu\n", words.size());
    for (int i = 0; i < 10; i++)
        std::printf("top %s %d\n", top[i].second.c_str(), -top[i].first);
    std::printf("names %zu %s\n", names.size(), names[300].c_str());
    std::string all = text.str();
    std::printf("text %zu %016llx\n", all.size(), (unsigned long long)fnv(all.data(), all.size()));

    std::list<std::shared_ptr<std::vector<int>>> lst;
    for (int i = 0; i < 5000; i++)
        lst.push_back(std::make_shared<std::vector<int>>(i % 97, i));
    long total = 0;
    for (auto &v : lst)
        total += std::accumulate(v->begin(), v->end(), 0L);
    std::printf("list %ld\n", total);

    std::deque<std::unique_ptr<std::string>> dq;
    for (int i = 0; i < 50000; i++)
        dq.push_back(std::make_unique<std::string>(std::to_string(i * 7)));
    while (dq.size() > 10)
        dq.pop_front();
    std::printf("deque %s\n", dq.front()->c_str());

    /* threads allocating and freeing each other's strings */
    std::vector<std::vector<std::string>> out(4);
    std::vector<std::thread> th;
    for (int t = 0; t < 4; t++)
        th.emplace_back([t, &out] {
            for (int i = 0; i < 20000; i++)
                out[t].push_back(std::string(i % 300, (char)('A' + t)));
        });
    for (auto &x : th)
        x.join();
    size_t chars = 0;
    for (auto &v : out)
        for (auto &str : v)
            chars += str.size();
    out.clear();
    std::printf("threads %zu\n", chars);

    std::set<std::function<int()> *> fns;
    for (int i = 0; i < 100; i++)
        fns.insert(new std::function<int()>([i] { return i * i; }));
    long fsum = 0;
    for (auto *f : fns) {
        fsum += (*f)();
        delete f;
    }
    std::printf("functions %ld\n", fsum);
    return 0;
}
