#!/bin/sh
# check-leaks.sh -- run examples/leaks (built against the build tree by make
# check) and compare its output with examples/leaks.expected.
set -u
[ -f man/check.env ] || { echo "check-leaks: run from the build directory (make check)"; exit 99; }
. ./man/check.env
prog=examples/leaks
[ -x "$prog" ] || { echo "FAIL: $prog was not built"; exit 1; }
out=examples/leaks.out
"$prog" >"$out" 2>examples/leaks.err
st=$?
if [ $st -ne 0 ]; then
    echo "FAIL: $prog exited with status $st; stderr:"; cat examples/leaks.err
    exit 1
fi
if ! cmp -s "$abs_top_srcdir/examples/leaks.expected" "$out"; then
    echo "FAIL: $prog output differs from examples/leaks.expected (-expected +actual):"
    diff -u "$abs_top_srcdir/examples/leaks.expected" "$out"
    exit 1
fi
rm -f "$out" examples/leaks.err
echo "ok: examples/leaks finds both leaks, output matches examples/leaks.expected"
exit 0
