#!/bin/sh
# make check: replay tests/fuzz/regress/alloc/*, then fuzz fuzz_alloc for a fixed number of inputs (FUZZ_RUNS) from seed 1.
FUZZ_SEED=${FUZZ_SEED-1} FUZZ_RUNS=${FUZZ_RUNS-6000} exec sh "$(dirname "$0")/run.sh" alloc "${FUZZ_CHECK_SECONDS:-30}"
