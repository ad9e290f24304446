/*
 * fuzz_util.h -- what both libFuzzer harnesses share: reading the input as a
 * stream of operation bytes, failing with one clear line (libFuzzer saves the
 * input that did it), and the closing count of operations run.
 */
#ifndef RC_FUZZ_UTIL_H
#define RC_FUZZ_UTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The input, consumed front to back; past its end every read is 0, so any
   input is a valid program (it just ends in zeros). */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline unsigned fz_u8(fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fz_u16(fz_in *in)
{
    uint32_t v = fz_u8(in);
    return v | (uint32_t)fz_u8(in) << 8;
}

static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t v = fz_u16(in);
    return v | fz_u16(in) << 16;
}

/* For the loops that fill and check memory, most of a harness's time: not
   instrumented (the library's memory is its own mmap, which ASan does not
   watch anyway, and their byte comparisons would only flood libFuzzer's
   value profile). */
#define FZ_PLAIN __attribute__((no_sanitize("address", "coverage")))

/* A failed check: one line naming what broke, then abort (libFuzzer reports
   the crash and writes the input to crash-<sha1>). */
#define FZ_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Operations run, printed at exit: "how many operations without a finding"
   is the number a fuzzing run reports. */
static _Atomic unsigned long long fz_ops, fz_inputs;
static const char *fz_name = "fuzz";

static void fz_report(void)
{
    fprintf(stderr, "%s: %llu inputs, %llu operations checked against the model\n",
            fz_name, (unsigned long long)fz_inputs, (unsigned long long)fz_ops);
}

static inline void fz_start(const char *name)
{
    static int registered;
    if (!registered) {
        registered = 1;
        fz_name = name;
        atexit(fz_report);
    }
}

#endif
