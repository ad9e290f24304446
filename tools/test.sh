#!/bin/sh
# The whole test suite, from nothing: install packages, build, make check.
set -eu
cd "$(dirname "$0")/.."
sh tools/bootstrap.sh
cd build
make -j"$(nproc)" --no-print-directory check || { cat test-suite.log 2>/dev/null | tail -200; exit 1; }
