#!/bin/sh
# Under valgrind, pool blocks are announced to memcheck (client requests)
# with the size requested: a leaked block and a read past the end of a
# block are reported as they would be under glibc.  Skipped (77) without valgrind or its headers.
. "$(dirname "$0")/../skip-sanitized.sh"   # exits 77 in a sanitizer build
set -u
prog=${OPSPROG:-./tests/ops/opsprog}
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed"; exit 77; }
grep -q '^#define HAVE_VALGRIND_MEMCHECK_H 1' "${CONFIG_H:-config.h}" || { echo "built without valgrind/memcheck.h"; exit 77; }
real=$(dirname "$prog")/.libs/$(basename "$prog")
[ -x "$real" ] && export LD_LIBRARY_PATH="${TOP_BUILDDIR:-.}/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" || real=$prog
out=$(valgrind --leak-check=full "$real" leak 2>&1)
fail=0
echo "$out" | grep -q "definitely lost: 40 bytes in 1 blocks" || { echo "FAIL: leak of a 40-byte request not reported at its requested size"; fail=1; }
echo "$out" | grep -q "Invalid read of size 1" || { echo "FAIL: read past the end not reported"; fail=1; }
echo "$out" | grep -q "ERROR SUMMARY: 2 errors" || { echo "FAIL: expected exactly 2 errors"; fail=1; }
[ $fail = 0 ] && echo "ok   valgrind sees the leak and the invalid read" || echo "$out"
exit $fail
