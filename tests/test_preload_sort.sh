#!/bin/sh
# sort(1) of a large generated file (in the build tree), several ways --
# including a small buffer that forces temporary files and parallel sort
# threads -- with and without rcmalloc preloaded; the outputs must match.
. "${srcdir:-.}/tests/preload/common.sh"
need_override
data="$RC_TMP/data.txt"
awk 'BEGIN {
    s = 12345
    for (i = 0; i < 300000; i++) {
        s = (s * 1103515245 + 12345) % 2147483648
        w = ""
        for (k = 0; k < 1 + s % 14; k++)
            w = w sprintf("%c", 97 + int(s / (k + 1)) % 26)
        printf "%s %d %d\n", w, s % 100000, i
    }
}' >"$data" || fail "cannot generate the input"
lines=$(wc -l <"$data")
[ "$lines" -eq 300000 ] || fail "generated $lines lines"
export LC_ALL=C
compare_runs sort-plain 120 sort "$data"
compare_runs sort-numeric 120 sort -k2,2n -k3,3n "$data"
compare_runs sort-unique 120 sort -u -k1,1 "$data"
compare_runs sort-parallel 120 sort --parallel=2 -S 256K -T "$RC_TMP" -k2,2nr -k1,1 "$data"
# the sorted output is really sorted and complete
LD_PRELOAD="$RC_LIB" sort "$data" >"$RC_TMP/s1" || fail "sort failed"
sort -c "$RC_TMP/s1" || fail "output of preloaded sort is not sorted"
[ "$(wc -l <"$RC_TMP/s1")" -eq 300000 ] || fail "preloaded sort lost lines"
