#!/bin/sh
# The dynamic symbol table of librcmalloc.so: the override build exports every
# standard name of SPEC 2 and every C++ operator form; the --disable-override
# build exports none of them; both export the rc_ API of SPEC 3 and nothing
# that is neither (internal _rc_ names stay hidden).
. "${srcdir:-.}/tests/preload/common.sh"
command -v nm >/dev/null || { echo "SKIP: no nm"; exit 77; }
nm -D --defined-only "$RC_LIB" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$RC_TMP/syms" ||
    fail "nm failed on $RC_LIB"
std="malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign
valloc pvalloc malloc_usable_size free_sized free_aligned_sized malloc_trim
malloc_stats mallinfo2"
ops="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t
_ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t
_ZnamSt11align_val_tRKSt9nothrow_t _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm
_ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvSt11align_val_t
_ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"
rc="rc_malloc rc_calloc rc_realloc rc_free rc_free_sized rc_aligned_alloc
rc_posix_memalign rc_usable_size rc_stats_print"
status=0
for s in $rc; do
    grep -qx "$s" "$RC_TMP/syms" || { echo "missing export: $s" >&2; status=1; }
done
for s in $std $ops; do
    if [ "$RC_OVERRIDE" = yes ]; then
        grep -qx "$s" "$RC_TMP/syms" || { echo "override build does not export $s" >&2; status=1; }
    else
        ! grep -qx "$s" "$RC_TMP/syms" || { echo "--disable-override build exports $s" >&2; status=1; }
    fi
done
# anything else must be rc_-prefixed, a glibc malloc extra, or linker-made
for s in $std $ops; do echo "$s"; done >"$RC_TMP/allowed"
extra=$(grep -Fvx -f "$RC_TMP/allowed" "$RC_TMP/syms" |
    grep -Evx 'rc_.*|_init|_fini|_edata|_end|__bss_start|__libc_.*|cfree|mallinfo|mallopt|malloc_info|_Zn[wa].*|_Zd[la].*' |
    tr '\n' ' ')
if [ -n "$extra" ]; then
    echo "unexpected exports (internal names must be hidden): $extra" >&2
    status=1
fi
[ "$RC_OVERRIDE" = yes ] || ! grep -Eqx '_Zn[wa].*|_Zd[la].*|__libc_.*|cfree' "$RC_TMP/syms" ||
    { echo "--disable-override build exports standard-ish names" >&2; status=1; }
[ $status -eq 0 ] && echo "ok: $(wc -l <"$RC_TMP/syms") exports checked"
exit $status
