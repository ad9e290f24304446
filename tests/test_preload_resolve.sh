#!/bin/sh
# SPEC 1: in a preloaded process, malloc and friends resolve to rcmalloc --
# never to glibc's, nor to the jemalloc inside rcmalloc that serves large blocks.
# Checked two ways: dlsym/dladdr from a C program, and the dynamic linker's
# own binding trace (LD_DEBUG=bindings).
. "${srcdir:-.}/tests/preload/common.sh"
need_override
prog=tests/progs/which_malloc
[ -x "$prog" ] || fail "$prog not built"
LD_PRELOAD="$RC_LIB" run_timed 30 "$prog" >"$RC_TMP/which" || fail "which_malloc failed ($?)"
cat "$RC_TMP/which"
bad=$(grep -v 'librcmalloc' "$RC_TMP/which")
[ -z "$bad" ] || fail "resolved outside librcmalloc: $bad"

# the binding trace: every binding of malloc/free/calloc/realloc, from any
# object (libc itself included), goes to librcmalloc
LD_DEBUG=bindings LD_DEBUG_OUTPUT="$RC_TMP/ld" LD_PRELOAD="$RC_LIB" \
    run_timed 30 "$prog" >/dev/null || fail "which_malloc failed under LD_DEBUG"
cat "$RC_TMP"/ld.* >"$RC_TMP/bindings"
grep -E "normal symbol \`(malloc|free|calloc|realloc)'" "$RC_TMP/bindings" >"$RC_TMP/mb" || true
[ -s "$RC_TMP/mb" ] || fail "no malloc bindings traced"
bad=$(grep -v "to .*librcmalloc[^ ]* \[" "$RC_TMP/mb")
[ -z "$bad" ] || fail "bound outside librcmalloc: $(echo "$bad" | head -5)"
echo "ok: $(wc -l <"$RC_TMP/mb") malloc/free/calloc/realloc bindings, all to librcmalloc"
