#!/bin/sh
# test_prof.sh -- the heap profiler read back by google-pprof (SPEC 4.2):
# known sites get their in-use bytes in the right proportions and nothing
# goes to a site whose blocks were all freed; buffers grown by realloc
# count at their size, spans too after shrinking in place; --inuse_objects,
# --alloc_space, --base and --svg; blocks freed by another thread leave the
# profile; rc objects count under rc_new's callers; the rcmalloc wrapper's
# --profile and --leaks reports, with and without google-pprof.
. "${srcdir:-.}/tests/preload/common.sh"
need_override

if ! command -v google-pprof >/dev/null 2>&1; then
    echo "SKIP: google-pprof not found (Debian package google-perftools; tools/bootstrap.sh installs it)"
    exit 77
fi

PROG=$RC_BUILDDIR/tests/progs/prof_prog
WRAPPER=$RC_BUILDDIR/tools/rcmalloc
cd "$RC_TMP" || fail "no scratch directory"

# A finer rate than the default, so that the estimates are within a few
# percent: 48 MiB in 64-byte blocks is then 6144 samples, not 96.
RATE=8192

# profiled MODE ARGS...: run prof_prog with the profiler on
profiled() {
    RCMALLOC_PROF=1 RCMALLOC_PROF_SAMPLE=$RATE RCMALLOC_PROF_PREFIX=$RC_TMP/exit \
        LD_PRELOAD=$RC_LIB run_timed 60 "$PROG" "$@" ||
        fail "prof_prog $* failed ($?)"
}

# pprof_text OUT ARGS...: google-pprof --text ARGS into OUT
pprof_text() {
    out=$1
    shift
    run_timed 120 google-pprof --text "$@" >"$out" 2>"$out.err" ||
        fail "google-pprof --text $*: $(head -c 2000 "$out.err")"
}

# flat FILE FUNCTION: FUNCTION's own (flat) value in a pprof --text listing,
# 0 when it is not listed
flat() {
    awk -v f="$2" '$6 == f { v = $1 } END { print v + 0 }' "$1"
}

# within VALUE LOW HIGH WHAT: LOW <= VALUE <= HIGH, or fail
within() {
    awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }' ||
        fail "$4 is $1, expected $2 .. $3"
    echo "ok: $4 = $1 (expected $2 .. $3)"
}

# ---- known sites ----------------------------------------------------------

profiled sites sites.heap
[ -s sites.heap ] && [ -s sites.heap.1 ] || fail "rc_prof_dump wrote no profile"
head -n 1 sites.heap | grep -q "^heap profile: .* @ heap_v2/$RATE\$" ||
    fail "bad header: $(head -n 1 sites.heap)"
grep -q '^MAPPED_LIBRARIES:$' sites.heap || fail "no MAPPED_LIBRARIES section"

pprof_text inuse.txt "$PROG" sites.heap
small=$(flat inuse.txt keep_small)
chunks=$(flat inuse.txt keep_chunks)
within "$small" 45 51 "keep_small in use (MiB; 48 kept)"
within "$chunks" 15 17 "keep_chunks in use (MiB; 16 kept)"
share=$(awk -v a="$small" -v b="$chunks" 'BEGIN { printf "%.1f", 100 * a / (a + b) }')
within "$share" 72 78 "keep_small's share of the two (%; 75 kept)"
within "$(flat inuse.txt churn)" 0 0 "churn in use (MiB; all freed)"

pprof_text objs.txt --inuse_objects "$PROG" sites.heap
within "$(flat objs.txt keep_small)" 740000 835000 "keep_small objects (786432 kept)"
within "$(flat objs.txt keep_chunks)" 240 272 "keep_chunks objects (256 kept)"

pprof_text alloc.txt --alloc_space "$PROG" sites.heap
within "$(flat alloc.txt churn)" 990 1060 "churn allocated (MiB; 1024 passed through)"

# the older dump was taken after keep_small, before keep_chunks
pprof_text base.txt --base=sites.heap.1 "$PROG" sites.heap
within "$(flat base.txt keep_chunks)" 15 17 "keep_chunks since the older dump (MiB)"
within "$(flat base.txt keep_small)" 0 0 "keep_small since the older dump (MiB)"

if command -v dot >/dev/null 2>&1; then
    run_timed 120 google-pprof --svg "$PROG" sites.heap >sites.svg 2>svg.err ||
        fail "google-pprof --svg: $(head -c 2000 svg.err)"
    grep -q '<svg' sites.svg && grep -q keep_small sites.svg ||
        fail "google-pprof --svg wrote no graph naming keep_small"
    echo "ok: --svg names keep_small"
else
    echo "note: graphviz's dot not found; --svg not tried"
fi

# ---- realloc, threads, rc objects ---------------------------------------------

profiled grow grow.heap
pprof_text grow.txt "$PROG" grow.heap
within "$(flat grow.txt grow_buffers)" 29 35 "grow_buffers in use (MiB; 32 grown by realloc)"

# Spans grown by realloc count what they grow by (prof.c: realloc), from
# their exact size even after an in-place shrink leaves their high-water
# mark above it.  At a rate near their size, so that a miscount shows: at
# 32 KiB a buffer is sampled with probability 0.63, at 48 KiB 0.78 (about
# 650 and 800 samples, relative errors of 2.4% and 1.7%; the bounds are
# 4 of those away).  Counting the growth past the old mark only would
# have found 0.63 of the 48 KiB buffers.
RATE=32768
profiled spans spans.heap
RATE=8192
pprof_text spans1.txt "$PROG" spans.heap.1
within "$(flat spans1.txt grow_spans)" 29 35 "grow_spans in use (MiB; 32 grown by realloc)"
pprof_text spans.txt "$PROG" spans.heap
both=$(awk -v a="$(flat spans.txt grow_spans)" -v b="$(flat spans.txt shrink_spans)" 'BEGIN { print a + b }')
within "$both" 44.6 51.4 "grow_spans and shrink_spans in use (MiB; 48 shrunk and grown in place)"

profiled threads threads.heap
pprof_text threads.txt "$PROG" threads.heap
within "$(flat threads.txt kept_here)" 7.5 8.5 "kept_here in use (MiB; 8 kept)"
within "$(flat threads.txt handed_over)" 0 0 "handed_over in use (MiB; freed by another thread)"
pprof_text threads-alloc.txt --alloc_space "$PROG" threads.heap
within "$(flat threads-alloc.txt handed_over)" 15 17 "handed_over allocated (MiB)"

profiled objects objects.heap
pprof_text objects.txt "$PROG" objects.heap
# 8 MiB in blocks of about 1 KiB at one sample per 8 KiB is about 1000
# samples, a relative error of about 3%: the bounds are 4 of those away
within "$(flat objects.txt make_objects)" 7.0 9.6 "make_objects in use (MiB; 8192 rc objects of 1 KiB)"
within "$(flat objects.txt make_buffers)" 7.0 9.0 "make_buffers in use (MiB)"
if grep -E ' (rc_new|_rc_[a-z_]*|fast_alloc|malloc)$' objects.txt >&2; then
    fail "the allocator's own frames are listed as sites"
fi

# ---- the wrapper -------------------------------------------------------------

RCMALLOC_LIBRARY=$RC_LIB run_timed 120 sh "$WRAPPER" --leaks "$PROG" leaks >leaks.out 2>leaks.err ||
    fail "rcmalloc --leaks failed ($?): $(head -c 2000 leaks.err)"
grep -q "still allocated when .*prof_prog exited" leaks.err ||
    fail "rcmalloc --leaks printed no leak report: $(head -c 2000 leaks.err)"
# 12 MiB of 1 KiB blocks at the wrapper's 16 KiB rate: about 750 samples,
# a relative error of about 3.6%; the bounds are 5 of those away
within "$(flat leaks.err leak_another)" 9.8 14.2 "leak_another leaked (MiB; 12)"
within "$(flat leaks.err leak_one_way)" 3.5 4.5 "leak_one_way leaked (MiB; 4)"
within "$(flat leaks.err tidy)" 0 0 "tidy leaked (MiB; frees all)"
ls rcmalloc.*.heap >/dev/null 2>&1 || fail "--leaks left no profile in the working directory"

# --profile=PREFIX, a program's exit status passed on
RCMALLOC_LIBRARY=$RC_LIB run_timed 120 sh "$WRAPPER" --profile="$RC_TMP/pre" "$PROG" bogus \
    >bogus.out 2>bogus.err
status=$?
[ "$status" = 2 ] || fail "rcmalloc --profile changed the program's exit status 2 to $status"
ls "$RC_TMP"/pre.*.heap >/dev/null 2>&1 || fail "--profile=PREFIX wrote no PREFIX.<pid>.heap"
grep -q "in use at the last heap profile" bogus.err ||
    fail "rcmalloc --profile printed no report: $(head -c 2000 bogus.err)"
echo "ok: --profile=PREFIX, exit status kept"

# without google-pprof: the wrapper says so, and where the profile is
mkdir bin
for tool in sh cat rm ls head; do
    ln -s "$(command -v $tool)" bin/$tool
done
run_timed 60 env PATH="$RC_TMP/bin" RCMALLOC_LIBRARY="$RC_LIB" sh "$WRAPPER" --leaks "$PROG" leaks \
    >nopprof.out 2>nopprof.err ||
    fail "rcmalloc --leaks without google-pprof failed: $(head -c 2000 nopprof.err)"
grep -q "google-pprof is not installed" nopprof.err ||
    fail "no word about the missing google-pprof: $(head -c 2000 nopprof.err)"
echo "ok: the wrapper without google-pprof says so"
