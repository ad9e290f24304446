#!/bin/sh
# SPEC 3 environment: RCMALLOC_STATS=1 prints the statistics to stderr at
# exit (and nothing is printed without it); RCMALLOC_DEBUG=1 leaves a correct
# program alone, poisons fresh memory (calloc still zeroes), and turns a
# double free, a foreign pointer, a write past either end or after free (of
# small and large blocks, from every entry point), a read of malloc(0) and a
# read of a freed large block into an abort with one line on stderr naming
# the address; without it, double frees,
# interior and foreign pointers still abort so.  Uses the rc_ API only, so it
# runs in both builds.
. "${srcdir:-.}/tests/preload/common.sh"
stats=tests/progs/stats_prog
dbg=tests/progs/debug_prog
[ -x "$stats" ] && [ -x "$dbg" ] || fail "helper programs not built"
unset RCMALLOC_STATS RCMALLOC_DEBUG
ulimit -c 0 2>/dev/null   # the aborts below must not leave core files
status=0
bad() { echo "FAIL: $*" >&2; status=1; }

run_timed 30 "$stats" 2>"$RC_TMP/quiet.err" || bad "stats_prog failed ($?)"
[ -s "$RC_TMP/quiet.err" ] && bad "stderr not empty without RCMALLOC_STATS: $(head -3 "$RC_TMP/quiet.err")"
RCMALLOC_STATS=1 run_timed 30 "$stats" 2>"$RC_TMP/stats.err" || bad "stats_prog failed with RCMALLOC_STATS=1"
[ -s "$RC_TMP/stats.err" ] || bad "RCMALLOC_STATS=1 printed nothing to stderr at exit"
RCMALLOC_STATS=0 run_timed 30 "$stats" 2>"$RC_TMP/stats0.err" || bad "stats_prog failed with RCMALLOC_STATS=0"
[ -s "$RC_TMP/stats0.err" ] && bad "RCMALLOC_STATS=0 printed statistics"
RCMALLOC_DEBUG=1 run_timed 30 "$stats" 2>"$RC_TMP/dbgok.err" || bad "RCMALLOC_DEBUG=1 broke a correct program ($?): $(head -3 "$RC_TMP/dbgok.err")"
[ -s "$RC_TMP/dbgok.err" ] && bad "RCMALLOC_DEBUG=1 complained about a correct program: $(head -3 "$RC_TMP/dbgok.err")"

for n in 64 1000 100000; do
    RCMALLOC_DEBUG=1 run_timed 30 "$dbg" fresh $n || bad "RCMALLOC_DEBUG=1: fresh $n-byte block not poisoned"
    RCMALLOC_DEBUG=1 run_timed 30 "$dbg" calloc $n || bad "RCMALLOC_DEBUG=1: calloc($n) not zeroed"
done

# expect_abort WHAT args...: the program aborts (SIGABRT), and stderr has a
# line naming the address it printed (with RCMALLOC_DEBUG=1, or as the
# environment has it when called through expect_abort_default)
expect_abort() {
    what=$1
    shift
    RCMALLOC_DEBUG=${RC_DEBUG_VALUE-1} run_timed 30 "$dbg" "$@" >"$RC_TMP/addr" 2>"$RC_TMP/err"
    rc=$?
    addr=$(head -n 1 "$RC_TMP/addr" | sed 's/^0x//')
    if [ $rc -ne 134 ]; then
        bad "$what ($*): expected an abort (exit 134), got $rc; stderr: $(head -c 300 "$RC_TMP/err")"
        return
    fi
    lines=$(grep -ci "$addr" "$RC_TMP/err")
    [ "$lines" -ge 1 ] || bad "$what ($*): no line naming $addr on stderr: $(head -c 300 "$RC_TMP/err")"
    echo "ok: $what ($*): $(grep -i "$addr" "$RC_TMP/err" | head -n 1)"
}
for n in 24 700 100000; do
    expect_abort "double free" double-free $n
    expect_abort "overflow" overflow $n
done
expect_abort "foreign pointer" foreign

# Debug mode, through every entry point, small and large blocks alike
# (blocks of 4096 bytes or more, and malloc(0), end against a guard page,
# so an access past them faults at once and is reported the same way).
entries="malloc calloc realloc aligned posix"
[ "$RC_OVERRIDE" = yes ] && entries="$entries memalign valloc pvalloc new new-aligned"
for e in $entries; do
    for n in 24 5000 100000 2000000; do
        expect_abort "write past the end" past-end $e $n
        expect_abort "write before the start" before-start $e $n
        expect_abort "write after free" after-free $e $n
    done
    for n in 24 100000; do
        expect_abort "write past the end, never freed (at once or at exit)" past-end-kept $e $n
    done
    expect_abort "read after free of a large block" read-after-free $e 100000
    case $e in
    realloc|pvalloc) ;;   # realloc(p, 0) frees p; pvalloc(0) gives a page
    *) expect_abort "read of a 0-byte block" read-zero $e ;;
    esac
done

# Default mode (no RCMALLOC_DEBUG): double frees and frees of pointers
# rcmalloc never returned are caught too, in pool blocks, spans and large
# blocks alike, as glibc catches them (SPEC 4.2: always on).
expect_abort_default() { RC_DEBUG_VALUE=0 expect_abort "$@"; }
for n in 24 700 5000 20000 100000 2000000; do
    expect_abort_default "default-mode double free" double-free $n
    expect_abort_default "default-mode interior pointer" interior $n
done
for n in 24 700 5000; do
    expect_abort_default "default-mode aligned interior pointer" interior-aligned $n
done
expect_abort_default "default-mode foreign pointer" foreign
exit $status
