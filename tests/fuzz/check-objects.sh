#!/bin/sh
# make check: replay tests/fuzz/regress/objects/*, then fuzz fuzz_objects for a bounded time.
exec sh "$(dirname "$0")/run.sh" objects "${FUZZ_CHECK_SECONDS:-30}"
