/*
 * dlopen_mod.c -- a small shared object for test_dlopen: it allocates in its
 * constructor, frees in its destructor, and lets the test allocate and free
 * through it, so blocks cross between the module and the program.  It is not
 * linked with rcmalloc: its malloc is whatever the process resolves.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char *ctor_block;
static __thread char *tls_block;

__attribute__((constructor)) static void mod_init(void)
{
    ctor_block = malloc(1000);
    if (ctor_block)
        memset(ctor_block, 0x3c, 1000);
}

__attribute__((destructor)) static void mod_fini(void)
{
    free(ctor_block);
}

int mod_ctor_ok(void)
{
    if (!ctor_block)
        return 0;
    for (int i = 0; i < 1000; i++)
        if ((unsigned char)ctor_block[i] != 0x3c)
            return 0;
    return 1;
}

void *mod_malloc(size_t n) { return malloc(n); }
void *mod_calloc(size_t c, size_t n) { return calloc(c, n); }
void *mod_realloc(void *p, size_t n) { return realloc(p, n); }
void mod_free(void *p) { free(p); }

char *mod_strdup(const char *s) { return strdup(s); }

/* a thread-local block, freed by a pthread key destructor */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void key_free(void *p) { free(p); }
static void make_key(void) { pthread_key_create(&key, key_free); }

void *mod_tls_block(size_t n)
{
    pthread_once(&once, make_key);
    if (!tls_block) {
        tls_block = malloc(n);
        pthread_setspecific(key, tls_block);
    }
    return tls_block;
}
