#!/bin/sh
# A C++ program that is not linked with rcmalloc (every operator new/delete
# form, STL containers, threads) gives identical output with and without
# rcmalloc preloaded, and under preload every operator form resolves into
# librcmalloc, not libstdc++ or jemalloc.
. "${srcdir:-.}/tests/preload/common.sh"
need_override
prog=tests/progs/cxx_prog
[ -x "$prog" ] || fail "$prog not built"
compare_runs cxx 120 "$prog"
LD_PRELOAD="$RC_LIB" run_timed 30 "$prog" --which >"$RC_TMP/which" || fail "cxx_prog --which failed"
cat "$RC_TMP/which"
bad=$(grep -v 'librcmalloc' "$RC_TMP/which")
[ -z "$bad" ] || fail "not resolved into librcmalloc under LD_PRELOAD: $bad"
