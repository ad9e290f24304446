#!/bin/sh
# RCMALLOC_SECURE=1 (SPEC 4.2, rcmalloc(7)): a correct program runs as
# usual; freed blocks are filled, not handed out again at once, and fresh
# blocks do not come in address order; a double free, a write past the end
# of a block (caught at its free, or at once by a guard page), a write past
# the end of a pool (its guard page) and a write after free (caught when the
# block leaves the quarantine, or at once for a large block) each abort with
# one line on stderr naming the block.  Uses the rc_ API (both builds).
. "${srcdir:-.}/tests/preload/common.sh"
stats=tests/progs/stats_prog
dbg=tests/progs/debug_prog
[ -x "$stats" ] && [ -x "$dbg" ] || fail "helper programs not built"
unset RCMALLOC_DEBUG RCMALLOC_SECURE   # set per run below
ulimit -c 0 2>/dev/null
status=0
bad() { echo "FAIL: $*" >&2; status=1; }

RCMALLOC_SECURE=1 run_timed 60 "$stats" 2>"$RC_TMP/ok.err" || bad "RCMALLOC_SECURE=1 broke a correct program ($?): $(head -3 "$RC_TMP/ok.err")"
[ -s "$RC_TMP/ok.err" ] && bad "RCMALLOC_SECURE=1 complained about a correct program: $(head -3 "$RC_TMP/ok.err")"

for n in 24 200 3000; do
    RCMALLOC_SECURE=1 run_timed 30 "$dbg" delayed $n || bad "secure: a freed $n-byte block was handed out again at once"
    run_timed 30 "$dbg" delayed $n && bad "default mode: delayed $n passes without RCMALLOC_SECURE (the test cannot fail)"
    RCMALLOC_SECURE=1 run_timed 30 "$dbg" shuffled $n || bad "secure: $n-byte blocks handed out in address order"
    run_timed 30 "$dbg" shuffled $n && bad "default mode: shuffled $n passes without RCMALLOC_SECURE (the test cannot fail)"
    RCMALLOC_SECURE=1 run_timed 30 "$dbg" filled $n || bad "secure: a freed $n-byte block was not filled"
done

# expect_abort WHAT args...: SIGABRT, and a line on stderr naming the
# address the program printed
expect_abort() {
    what=$1
    shift
    RCMALLOC_SECURE=1 run_timed 60 "$dbg" "$@" >"$RC_TMP/addr" 2>"$RC_TMP/err"
    rc=$?
    addr=$(head -n 1 "$RC_TMP/addr" | sed 's/^0x//')
    if [ $rc -ne 134 ]; then
        bad "secure: $what ($*): expected an abort (exit 134), got $rc; stderr: $(head -c 300 "$RC_TMP/err")"
        return
    fi
    grep -qi "$addr" "$RC_TMP/err" || bad "secure: $what ($*): no line naming $addr on stderr: $(head -c 300 "$RC_TMP/err")"
    echo "ok: $what ($*): $(grep -i "$addr" "$RC_TMP/err" | head -n 1)"
}
for n in 24 700 5000 100000 2000000; do
    expect_abort "double free" double-free $n
    expect_abort "interior pointer" interior $n
    expect_abort "write past the end" past-end malloc $n
    expect_abort "write past the end" past-end aligned $n
done
for n in 100000 2000000; do
    expect_abort "write after free of a large block" after-free malloc $n
    expect_abort "read after free of a large block" read-after-free malloc $n
done
for n in 24 700 5000; do
    expect_abort "write after free, found when the block leaves the quarantine" after-free-churn malloc $n
done
expect_abort "foreign pointer" foreign

# a run of writes past a small block reaches its pool's guard page
RCMALLOC_SECURE=1 run_timed 30 "$dbg" far-past-end 24 >/dev/null 2>"$RC_TMP/err"
rc=$?
[ $rc -eq 134 ] && grep -q "guard page" "$RC_TMP/err" || bad "secure: 1 MiB written past a 24-byte block: exit $rc, stderr: $(head -c 300 "$RC_TMP/err")"
exit $status
