/*
 * probe.c -- report which shared object `malloc` resolves to in this
 * process, so run.py can tell whether an LD_PRELOAD really replaced the
 * allocator (a preload that fails to export malloc silently measures
 * something else).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    static const char *names[] = { "malloc", "free", "realloc", "calloc" };
    size_t i;
    for (i = 0; i < sizeof names / sizeof *names; i++) {
        void *sym = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info info;
        if (sym && dladdr(sym, &info) && info.dli_fname)
            printf("%s %s\n", names[i], info.dli_fname);
        else
            printf("%s ?\n", names[i]);
    }
    free(malloc(1));
    return 0;
}
