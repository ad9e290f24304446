#!/bin/sh
# valgrind exact (rcmalloc(7) NOTES): under memcheck, with rcmalloc serving
# malloc (--soname-synonyms=somalloc=nouserintercepts keeps memcheck from
# replacing it), blocks are announced with the requested size: a leak of
# three 100-byte blocks is "300 bytes in 3 blocks", a read or write one
# byte past a 40-byte block is an invalid access, and a correct program
# that uses all of malloc_usable_size() has no errors.  The allocation
# stacks must pass through librcmalloc: the blocks are rcmalloc's, not
# memcheck's own.  Skipped (77) without valgrind, its headers, or the
# standard names.
. "${srcdir:-.}/tests/preload/common.sh"
need_override
. "${srcdir:-.}/tests/skip-sanitized.sh"
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
grep -q '^#define HAVE_VALGRIND_MEMCHECK_H 1' config.h || { echo "SKIP: built without valgrind/memcheck.h"; exit 77; }
prog=tests/progs/valgrind_prog
real=tests/progs/.libs/valgrind_prog
[ -x "$real" ] && export LD_LIBRARY_PATH="$RC_BUILDDIR/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" || real=$prog
[ -x "$real" ] || fail "valgrind_prog not built"
status=0
bad() { echo "FAIL: $*" >&2; status=1; }
vg() { run_timed 120 valgrind --leak-check=full --soname-synonyms=somalloc=nouserintercepts "$real" "$@" 2>&1; }

out=$(vg leak 100)
echo "$out" | grep -q "definitely lost: 300 bytes in 3 blocks" || bad "leak of 3 x 100 bytes: $(echo "$out" | grep -E 'lost:|ERROR SUMMARY')"
echo "$out" | grep -q "at 0x[0-9A-F]*: announce (alloc\.c" || bad "the leaked blocks were not rcmalloc's (memcheck replaced malloc?)"
out=$(vg leak 1)
echo "$out" | grep -q "definitely lost: 3 bytes in 3 blocks" || bad "leak of 3 x 1 byte: $(echo "$out" | grep -E 'lost:')"
out=$(vg leak 5000)
echo "$out" | grep -q "definitely lost: 15,000 bytes in 3 blocks" || bad "leak of 3 x 5000 bytes: $(echo "$out" | grep -E 'lost:')"

out=$(vg read-past)
echo "$out" | grep -q "Invalid read of size 1" || bad "read one byte past a 40-byte block not reported"
echo "$out" | grep -q "0 bytes after a block of size 40 alloc'd" || bad "read past: not placed right after the 40 bytes"
echo "$out" | grep -q "ERROR SUMMARY: 1 errors" || bad "read past: expected exactly 1 error: $(echo "$out" | grep 'ERROR SUMMARY')"
out=$(vg write-past)
echo "$out" | grep -q "Invalid write of size 1" || bad "write one byte past a 40-byte block not reported"
echo "$out" | grep -q "ERROR SUMMARY: 1 errors" || bad "write past: expected exactly 1 error: $(echo "$out" | grep 'ERROR SUMMARY')"

out=$(vg clean)
echo "$out" | grep -q "ERROR SUMMARY: 0 errors" || { bad "clean program: errors reported"; echo "$out" | head -40 >&2; }
echo "$out" | grep -q "All heap blocks were freed" || bad "clean program: blocks reported in use at exit: $(echo "$out" | grep 'in use at exit')"
[ $status = 0 ] && echo "ok: valgrind sees requested sizes"
exit $status
