#!/bin/sh
# RCMALLOC_DEBUG=1: each misuse is one line on stderr naming the address and
# what was wrong, then abort (SIGABRT); correct programs run as usual.
set -u
prog=${OPSPROG:-./tests/ops/opsprog}
fail=0
tmp=${TMPDIR:-/tmp}/rc-debug.$$
trap 'rm -f "$tmp".*' EXIT

expect_abort() {  # mode, expected phrase, which printed address to name
  mode=$1 phrase=$2 key=$3
  RCMALLOC_DEBUG=1 "$prog" "$mode" >"$tmp.out" 2>"$tmp.err"
  st=$?
  addr=$(sed -n "s/^$key //p" "$tmp.out")
  lines=$(grep -c '^rcmalloc:' "$tmp.err")
  if [ "$st" -ne 134 ]; then
    echo "FAIL $mode: exit status $st, expected 134 (abort)"; cat "$tmp.err"; fail=1; return
  fi
  if [ "$lines" -ne 1 ] || ! grep -q "$phrase" "$tmp.err" || ! grep -q -- "$addr" "$tmp.err"; then
    echo "FAIL $mode: expected one line with '$phrase' and $addr, got:"; cat "$tmp.err"; fail=1; return
  fi
  echo "ok   $mode: $(cat "$tmp.err")"
}

expect_abort double-free    "double free"                  block
expect_abort overflow       "write past the end"           block
expect_abort underflow      "write before the start"       block
expect_abort foreign        "was not allocated by rcmalloc" foreign
expect_abort interior       "was not allocated by rcmalloc" foreign
expect_abort use-after-free "write after free"             block

out=$(RCMALLOC_DEBUG=1 "$prog" fill 2>&1)
case "$out" in
  *"fresh-fill 1 calloc-zero 1 usable 100"*finished*) echo "ok   fill patterns" ;;
  *) echo "FAIL fill: $out"; fail=1 ;;
esac
out=$(RCMALLOC_DEBUG=1 "$prog" ok 2>&1)
case "$out" in
  *finished*) echo "ok   clean run" ;;
  *) echo "FAIL clean run: $out"; fail=1 ;;
esac
exit $fail
