#!/bin/sh
# python3 (PYTHONMALLOC=malloc: every object through malloc) runs a
# dict/list/string/json/sorting workload with and without rcmalloc preloaded;
# the outputs must be identical.
. "${srcdir:-.}/tests/preload/common.sh"
need_override
[ -n "$PYTHON3" ] && [ -x "$PYTHON3" ] || { echo "SKIP: no python3"; exit 77; }
export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
preload_in_effect "$PYTHON3" -c 'print(open("/proc/self/maps").read())'
compare_runs python 120 "$PYTHON3" "$RC_SRCDIR/tests/progs/preload_work.py"
