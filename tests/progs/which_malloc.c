/*
 * which_malloc.c -- prints, for each allocator entry point, the shared object
 * that defines it in this process ("name<TAB>object"), then exercises malloc
 * and free once.  Not linked with rcmalloc: test_preload_resolve.sh runs it
 * under LD_PRELOAD and expects every line to name librcmalloc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *object_of(void *addr)
{
    Dl_info info;
    if (!addr)
        return "(undefined)";
    if (!dladdr(addr, &info) || !info.dli_fname)
        return "(unknown)";
    return info.dli_fname;
}

int main(void)
{
    static const char *names[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
        "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
        "free_sized", "free_aligned_sized", "malloc_trim", "malloc_stats",
        "mallinfo2",
        /* C++ operators: a C program does not pull in libstdc++, so these
           must come from the preloaded library itself */
        "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm",
        "_ZnwmSt11align_val_t", "_ZdlPvSt11align_val_t",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        printf("%s\t%s\n", names[i], object_of(dlsym(RTLD_DEFAULT, names[i])));
    /* what this executable's own calls are bound to */
    printf("&malloc\t%s\n", object_of((void *)&malloc));
    printf("&free\t%s\n", object_of((void *)&free));
    char *p = malloc(100);
    if (!p)
        return 1;
    strcpy(p, "ok");
    if (malloc_usable_size(p) < 100)
        return 2;
    free(p);
    return 0;
}
