# common.sh -- sourced by the tests/test_preload_*.sh and test_malloc_env.sh
# scripts.  make check runs them from the top build directory; the build
# writes tests/preload/env.sh there (RC_LIB, RC_BUILDDIR, RC_SRCDIR,
# RC_OVERRIDE, PYTHON3).  Scratch files go to a fresh directory under the
# build tree (make distcheck keeps the source tree read-only).

if [ ! -f tests/preload/env.sh ]; then
    echo "tests/preload/env.sh missing: run through make check" >&2
    exit 99
fi
. tests/preload/env.sh

# need_override: skip (77) in a --disable-override build
need_override() {
    if [ "$RC_OVERRIDE" != yes ]; then
        echo "SKIP: built with --disable-override (no standard names to preload)"
        exit 77
    fi
}

# scratch directory, removed at exit
RC_TMP=$(mktemp -d "$RC_BUILDDIR/tests/preload/tmp.XXXXXX")
trap 'rm -rf "$RC_TMP"' EXIT

# run_timed SECONDS cmd...: fail the test if cmd runs too long
run_timed() {
    t=$1
    shift
    timeout -k 5 "$t" "$@"
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# compare_runs NAME SECONDS cmd...: run cmd without and with the library
# preloaded; both must exit 0 and print identical stdout.
compare_runs() {
    name=$1
    t=$2
    shift 2
    run_timed "$t" "$@" >"$RC_TMP/$name.plain" 2>"$RC_TMP/$name.plain.err" ||
        fail "$name: plain run failed ($?): $(head -c 2000 "$RC_TMP/$name.plain.err")"
    LD_PRELOAD="$RC_LIB" run_timed "$t" "$@" >"$RC_TMP/$name.rc" 2>"$RC_TMP/$name.rc.err" ||
        fail "$name: run with LD_PRELOAD=$RC_LIB failed ($?): $(head -c 2000 "$RC_TMP/$name.rc.err")"
    if ! cmp -s "$RC_TMP/$name.plain" "$RC_TMP/$name.rc"; then
        diff "$RC_TMP/$name.plain" "$RC_TMP/$name.rc" | head -40 >&2
        fail "$name: output differs under LD_PRELOAD"
    fi
    [ -s "$RC_TMP/$name.rc" ] || fail "$name: no output at all"
    echo "ok: $name ($(wc -l <"$RC_TMP/$name.rc") lines identical)"
}

# preload_in_effect cmd...: the library really is mapped into the process
preload_in_effect() {
    LD_PRELOAD="$RC_LIB" "$@" 2>/dev/null | grep -q librcmalloc ||
        fail "librcmalloc is not mapped into a preloaded process"
}
