#!/bin/sh
# make check: replay tests/fuzz/regress/alloc/*, then fuzz fuzz_alloc for a bounded time.
FUZZ_SEED=${FUZZ_SEED-1} exec sh "$(dirname "$0")/run.sh" alloc "${FUZZ_CHECK_SECONDS:-30}"
