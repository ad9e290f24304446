#!/bin/sh
# run.sh HARNESS SECONDS -- replay the regression inputs of one libFuzzer
# harness (tests/fuzz/regress/HARNESS/*), then fuzz it for SECONDS with the
# corpus under tests/fuzz/corpus/HARNESS in the build directory.  make check
# sets FUZZ_SEED=1 and FUZZ_RUNS: then the run is a fixed number of inputs
# from that seed, with address-space randomization off (setarch -R: the
# harnesses' coverage depends on addresses), and a fresh corpus, so that it
# explores the same inputs on every machine; make fuzz explores at random.
# Run from
# the top build directory (make check and make fuzz do).  Exits 77 (skip)
# when the harness was not built: configure found no clang with libFuzzer.
set -u
name=$1
secs=$2
here=$(dirname "$0")
bin=tests/fuzz/fuzz_$name
if [ ! -x "$bin" ]; then
  echo "fuzz_$name not built: configure found no clang with libFuzzer" \
       "(Debian: apt-get install clang libclang-rt-14-dev, then re-run configure)"
  exit 77
fi
# leaks: rcmalloc's memory is its own mmap, invisible to LeakSanitizer
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"

status=0
regress=$(ls "$here/regress/$name"/* 2>/dev/null)
if [ -n "$regress" ]; then
  echo "replaying $(echo "$regress" | wc -l) regression inputs of fuzz_$name"
  # shellcheck disable=SC2086  # one argument per file; the names have no spaces
  "$bin" $regress >"tests/fuzz/regress-$name.log" 2>&1 || {
    status=1; tail -40 "tests/fuzz/regress-$name.log"; }
fi

corpus=tests/fuzz/corpus/$name
mkdir -p "$corpus"
# fuzz_alloc spends a third of its time in debug mode (lib/debug.c serves
# every request there: guards, fills, quarantine)
run() {  # seconds, then environment assignments
  s=$1; shift
  [ "$s" -gt 0 ] || return 0
  log=tests/fuzz/fuzz-$name${1:+-debug}.log
  echo "fuzzing fuzz_$name for ${s}s${*:+ with $*}"
  if [ -n "${FUZZ_RUNS:-}" ]; then
    limit="-runs=$(( FUZZ_RUNS * s / secs ))"
    corpus=tests/fuzz/check-corpus/$name${1:+-debug}
    rm -rf "$corpus" && mkdir -p "$corpus"
    norand=$(command -v setarch >/dev/null 2>&1 && echo "setarch $(uname -m) -R")
  else
    limit="-max_total_time=$s"
    corpus=tests/fuzz/corpus/$name
    norand=
  fi
  env "$@" $norand "$bin" ${FUZZ_SEED:+-seed=$FUZZ_SEED} $limit -timeout=30 -rss_limit_mb=3072 -max_len=4096 -len_control=0 \
      -artifact_prefix="tests/fuzz/$name-" -print_final_stats=1 "$corpus" \
      >"$log" 2>&1
  r=$?
  grep -E "^(stat::number_of_executed_units|fuzz_$name: )" "$log"
  if [ $r -ne 0 ]; then
    tail -60 "$log"
    echo "FAIL: fuzz_$name found a crash: the input is tests/fuzz/$name-crash-*;" \
         "once fixed, add it under tests/fuzz/regress/$name/"
    status=1
  fi
}
if [ "$name" = alloc ]; then
  run $((secs - secs / 3))
  run $((secs / 3)) RCMALLOC_DEBUG=1
else
  run "$secs"
fi
exit $status
