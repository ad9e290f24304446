#!/bin/sh
# make check: replay tests/fuzz/regress/alloc/*, then fuzz fuzz_alloc for a bounded time.
exec sh "$(dirname "$0")/run.sh" alloc "${FUZZ_CHECK_SECONDS:-30}"
