# preload_work.sh -- a deterministic shell workload for test_preload_sh.sh:
# the shell itself allocates (variables, loops, functions, here-documents,
# command substitution), and so do the utilities of its pipelines.
set -eu

fib() {
    a=0 b=1 i=0
    while [ "$i" -lt "$1" ]; do
        t=$((a + b)); a=$b; b=$t; i=$((i + 1))
    done
    echo "$a"
}

acc=""
i=0
while [ $i -lt 3000 ]; do
    acc="$acc$i,"
    i=$((i + 1))
done
echo "acc length ${#acc}"
echo "fib $(fib 80)"

words=""
for w in alpha beta gamma delta epsilon zeta eta theta iota kappa; do
    for n in 1 2 3 4 5 6 7 8 9 10; do
        words="$words $w$n"
    done
done
set -- $words
echo "words $#"

cat <<DOC | sed 's/o/0/g' | tr 'a-z' 'A-Z'
here is a document with $# words and the last one is ${100}
DOC

seq 1 20000 | awk '{ s += $1 * $1 } END { print "squares", s }'
seq 1 5000 | sed 's/$/ item/' | sort -r | head -n 3
i=0
out=""
while [ $i -lt 200 ]; do
    out="$out$(printf '%05d' $i)"
    i=$((i + 1))
done
echo "$out" | cksum
x=$( (echo sub; echo shell) | wc -l)
echo "subshell lines $x"
case "$acc" in
    *2999,) echo "ends right" ;;
    *) echo "ends wrong" ;;
esac
