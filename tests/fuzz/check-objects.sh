#!/bin/sh
# make check: replay tests/fuzz/regress/objects/*, then fuzz fuzz_objects for a bounded time.
FUZZ_SEED=${FUZZ_SEED-1} exec sh "$(dirname "$0")/run.sh" objects "${FUZZ_CHECK_SECONDS:-30}"
