#!/bin/sh
# Install what rcmalloc builds and tests with (Debian, as root), then
# configure and build it in ./build.  Used by tools/test.sh and tools/demo.sh.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    build-essential g++ autoconf automake libtool pkg-config \
    libjemalloc-dev libjemalloc2 libgtest-dev googletest \
    valgrind mandoc man-db gnuplot-nox python3 \
    libmimalloc2.0 libtcmalloc-minimal4 libgc-dev \
    google-perftools graphviz libunwind8 \
    clang libclang-rt-14-dev >/dev/null
fi
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p build
cd build
[ -f Makefile ] || ../configure --quiet
make -j"$(nproc)" --no-print-directory
