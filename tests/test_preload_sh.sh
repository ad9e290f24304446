#!/bin/sh
# /bin/sh runs a shell workload (loops, functions, here-documents, pipelines
# of sed/awk/sort/tr) with and without rcmalloc preloaded (LD_PRELOAD is
# inherited by every utility it starts); the outputs must be identical.
. "${srcdir:-.}/tests/preload/common.sh"
need_override
preload_in_effect sh -c 'cat /proc/$$/maps'
compare_runs sh 120 sh "$RC_SRCDIR/tests/progs/preload_work.sh"
