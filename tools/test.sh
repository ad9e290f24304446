#!/bin/sh
# The whole test suite, from nothing: install packages, build, make check.
set -eu
cd "$(dirname "$0")/.."
sh tools/bootstrap.sh
cd build
status=0
make -j"$(nproc)" --no-print-directory check || status=$?
# one plain closing line, from automake's summary
count() { sed -n "s/^# $1: *//p" test-suite.log 2>/dev/null | head -n 1; }
pass=$(count PASS); fail=$(count FAIL); err=$(count ERROR); skip=$(count SKIP)
[ "$status" -eq 0 ] || tail -200 test-suite.log 2>/dev/null || true
echo "check: ${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
exit "$status"
