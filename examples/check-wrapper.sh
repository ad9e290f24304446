#!/bin/sh
# check-wrapper.sh -- the rcmalloc command (tools/rcmalloc, from
# tools/rcmalloc.in) against the build tree's library (make check).
. "$(dirname "$0")/../tests/skip-sanitized.sh"   # exits 77 in a sanitizer build
set -u
[ -f man/check.env ] || { echo "check-wrapper: run from the build directory (make check)"; exit 99; }
. ./man/check.env
work=examples/check-wrapper.d
rm -rf "$work" && mkdir -p "$work" || exit 99
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

lib=$abs_top_builddir/.libs/librcmalloc.so
if [ ! -f "$lib" ]; then
    echo "SKIP: no shared library in the build tree ($lib): configured with --disable-shared?"
    exit 77
fi
# Run it with sh: configure does not make tools/rcmalloc executable (make
# install does).  Under dash, when there is one, to keep it POSIX.
sh=/bin/sh
command -v dash >/dev/null 2>&1 && sh=$(command -v dash)
wrapper=tools/rcmalloc
[ -f "$wrapper" ] || { echo "FAIL: $wrapper was not generated"; exit 1; }
$sh -n "$wrapper" || bad "sh -n $wrapper: syntax error"

# run EXPECTED-STATUS [ARGS...]: the wrapper's stdout/stderr go to
# $work/out and $work/err.
run() {
    want=$1; shift
    RCMALLOC_LIBRARY=${LIB-$lib} $sh "$wrapper" "$@" >"$work/out" 2>"$work/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        bad "rcmalloc $*: status $got, expected $want; stderr: $(cat "$work/err")"
        return 1
    fi
}

# --version, --help, usage errors
run 0 --version && { [ "$(cat "$work/out")" = "rcmalloc $PACKAGE_VERSION" ] || bad "--version printed '$(cat "$work/out")'"; }
run 0 --help && { grep -q '^Usage: rcmalloc ' "$work/out" || bad "--help has no Usage line"; }
run 2 --no-such-option true && { grep -q "unknown option '--no-such-option'" "$work/err" || bad "bad option message: $(cat "$work/err")"; }
run 2 && { grep -q 'no program' "$work/err" || bad "no-program message: $(cat "$work/err")"; }
run 2 --stats && { grep -q 'no program' "$work/err" || bad "no-program message: $(cat "$work/err")"; }

# program lookup
run 127 rcmalloc-no-such-program-here && { grep -q 'rcmalloc-no-such-program-here: command not found' "$work/err" || bad "not-found message: $(cat "$work/err")"; }
run 127 ./no/such/file
: >"$work/plain"; chmod 644 "$work/plain"
run 126 "$work/plain"
run 126 "$work"

# the library itself
LIB=/nonexistent/librcmalloc.so
run 1 true && { grep -q 'library not found' "$work/err" || bad "missing-library message: $(cat "$work/err")"; }
LIB=/tmp/a:b/librcmalloc.so
run 1 true
unset LIB
out=$(env -u RCMALLOC_LIBRARY $sh "$wrapper" --help | sed -n 's/^Library: //p')
[ "$out" = "$libdir/librcmalloc.so" ] || bad "$wrapper defaults to '$out', not $libdir/librcmalloc.so"

# environment: the library first in LD_PRELOAD, what was there kept after
# it, the three variables set only when asked for
show='printf "%s|%s|%s|%s\n" "$LD_PRELOAD" "${RCMALLOC_STATS-unset}" "${RCMALLOC_DEBUG-unset}" "${RCMALLOC_VERBOSE-unset}"'
env -u RCMALLOC_STATS -u RCMALLOC_DEBUG -u RCMALLOC_VERBOSE LD_PRELOAD= \
    RCMALLOC_LIBRARY="$lib" $sh "$wrapper" sh -c "$show" >"$work/out" 2>"$work/err" \
    || bad "rcmalloc sh -c: status $?: $(cat "$work/err")"
[ "$(cat "$work/out")" = "$lib|unset|unset|unset" ] || bad "plain run saw '$(cat "$work/out")'"
env -u RCMALLOC_STATS -u RCMALLOC_DEBUG -u RCMALLOC_VERBOSE LD_PRELOAD="$lib" \
    RCMALLOC_LIBRARY="$lib" $sh "$wrapper" --stats --debug --verbose -- sh -c "$show" \
    >"$work/out" 2>"$work/err" || bad "rcmalloc --stats --debug --verbose: status $?: $(cat "$work/err")"
[ "$(cat "$work/out")" = "$lib:$lib|1|1|1" ] || bad "flagged run saw '$(cat "$work/out")'"

# arguments pass through untouched, options after PROGRAM included; -- ends
# options; the exit status is the program's
run 0 sh -c 'printf "%s\n" "$#" "$1" "$2" "$3"' argv0 "a b" --stats "" \
    && { [ "$(cat "$work/out" | tr '\n' '|')" = "3|a b|--stats||" ] || bad "arguments arrived as '$(cat "$work/out" | tr '\n' '|')'"; }
run 3 -- sh -c 'exit 3'
printf '#!/bin/sh\necho dash-named\n' >"$work/-x"; chmod +x "$work/-x"
(cd "$work" && RCMALLOC_LIBRARY=$lib $sh ../../"$wrapper" -- ./-x >out 2>err) \
    || bad "rcmalloc -- ./-x: $(cat "$work/err")"
[ "$(cat "$work/out")" = dash-named ] || bad "rcmalloc -- ./-x printed '$(cat "$work/out")'"

# the program really runs with the library mapped
run 0 sh -c 'grep -c librcmalloc /proc/$$/maps' \
    && { [ "$(cat "$work/out")" -gt 0 ] 2>/dev/null || bad "librcmalloc is not mapped in the program"; }

if [ $fail -ne 0 ]; then
    echo "check-wrapper: $fail failures (work files kept in $work)"
    exit 1
fi
rm -rf "$work"
echo "check-wrapper: all passed"
