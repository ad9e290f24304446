#!/bin/sh
# RCMALLOC_* options: VERBOSE prints every setting, a malformed value is
# reported once and the default used, STATS prints statistics at exit, and
# rc_stats_print shows the size classes in use.
set -u
prog=${OPSPROG:-./tests/ops/opsprog}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; echo "$out"; fail=1; fi; }

out=$(RCMALLOC_VERBOSE=1 "$prog" 2>&1)
for v in RCMALLOC_STATS RCMALLOC_DEBUG RCMALLOC_SECURE RCMALLOC_VERBOSE RCMALLOC_SMALL_MAX RCMALLOC_RETAIN RCMALLOC_PURGE_DELAY_MS RCMALLOC_LARGE_DECAY_MS RCMALLOC_LARGE_CACHE; do
  check "VERBOSE lists $v" 'echo "$out" | grep -q "^rcmalloc: *$v="'
done

out=$(RCMALLOC_VERBOSE=1 RCMALLOC_SMALL_MAX=2k "$prog" 2>&1)
check "SMALL_MAX=2k accepted" 'echo "$out" | grep -q "RCMALLOC_SMALL_MAX=2048 bytes"'

out=$(RCMALLOC_SMALL_MAX=lots RCMALLOC_VERBOSE=1 "$prog" 2>&1)
check "malformed value reported once" '[ "$(echo "$out" | grep -c "ignoring RCMALLOC_SMALL_MAX=lots")" = 1 ]'
check "malformed value: default used" 'echo "$out" | grep -q "RCMALLOC_SMALL_MAX=32704 bytes"'
check "malformed value: program still runs" 'echo "$out" | grep -q finished'

out=$(RCMALLOC_SMALL_MAX=100 "$prog" 2>&1)
check "out-of-range value reported" 'echo "$out" | grep -q "ignoring RCMALLOC_SMALL_MAX=100"'

out=$(RCMALLOC_STATS=1 "$prog" 2>&1 >/dev/null)
check "STATS=1 prints statistics at exit" 'echo "$out" | grep -q "rcmalloc .* statistics" && echo "$out" | grep -q "^arenas:"'

# the default layout's classes and spans (not a checked mode's)
out=$(env -u RCMALLOC_SECURE -u RCMALLOC_DEBUG "$prog" stats 2>&1)
check "rc_stats_print: 48-byte class with 1000+ blocks" \
  'echo "$out" | awk '"'"'$2 == 48 && $4 >= 1000 { found = 1 } END { exit !found }'"'"''
check "rc_stats_print: the span counted" \
  'echo "$out" | grep -q "^spans (blocks of 32705 .. 1113984 bytes): 1 in use, 1[0-9]* bytes"'
check "rc_stats_print: jemalloc side counted" \
  'echo "$out" | grep -q "large (jemalloc): [1-9][0-9]* bytes allocated"'
exit $fail
