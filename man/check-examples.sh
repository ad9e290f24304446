#!/bin/sh
# check-examples.sh -- compile and run the EXAMPLES of the section-3 pages
# (make check).
#
# In each page's EXAMPLES section, the first .EX/.EE block is a complete
# program; an optional later block whose first line starts with "$ " is a
# shell session, and the lines after that first line are the program's
# expected standard output.  The program is un-escaped from roff (\e \- \&
# \(aq \(dq \(rs; any other escape is an error, so the page and the test
# cannot drift apart silently), built with libtool against the build tree's
# include/rcmalloc.h and librcmalloc.la with -Wall -Wextra -Werror, run, and
# its output compared.
#
# A page whose program fails to link only because rc_* functions are missing
# from the library (the object-lifetime layer not built in) is reported and
# skipped; any other failure fails the test.  Exit 77 when pages were skipped
# and none failed.
set -u
[ -f man/check.env ] || { echo "check-examples: run from the build directory (make check)"; exit 99; }
. ./man/check.env
src=$abs_top_srcdir/man
work=man/examples.d
rm -rf "$work" && mkdir -p "$work" || exit 99
fail=0 skip=0 pass=0

# Un-escape the roff of an .EX block back to the C source.
unroff() {
    awk '
    {
        out = ""; s = $0
        while ((i = index(s, "\\")) > 0) {
            out = out substr(s, 1, i - 1)
            c = substr(s, i + 1, 1)
            if (c == "e") { out = out "\\"; s = substr(s, i + 2) }
            else if (c == "-") { out = out "-"; s = substr(s, i + 2) }
            else if (c == "&") { s = substr(s, i + 2) }
            else if (c == "(") {
                g = substr(s, i + 2, 2)
                if (g == "aq") out = out "\047"
                else if (g == "dq") out = out "\""
                else if (g == "rs") out = out "\\"
                else { printf "line %d: unsupported escape \\(%s\n", NR, g > "/dev/stderr"; bad = 1 }
                s = substr(s, i + 4)
            } else {
                printf "line %d: unsupported escape \\%s\n", NR, c > "/dev/stderr"; bad = 1
                s = substr(s, i + 2)
            }
        }
        print out s
    }
    END { exit bad }'
}

for page in "$src"/*.3; do
    head -n 1 "$page" | grep -q '^\.so ' && continue
    name=$(basename "$page" .3)
    dir=$work/$name
    mkdir -p "$dir"
    # Split the EXAMPLES section's .EX blocks into block.1, block.2, ...
    awk -v dir="$dir" '
        /^\.SH/ { inside = ($0 ~ /^\.SH "?EXAMPLES"?$/); next }
        inside && /^\.EX/ { n++; ex = 1; printf "" > (dir "/block." n); next }
        inside && /^\.EE/ { ex = 0; next }
        ex { print > (dir "/block." n) }
    ' "$page"
    if [ ! -f "$dir/block.1" ]; then
        echo "FAIL: $name.3: no .EX block in EXAMPLES"; fail=$((fail + 1)); continue
    fi
    if ! unroff <"$dir/block.1" >"$dir/$name.c"; then
        echo "FAIL: $name.3: cannot un-escape the example"; fail=$((fail + 1)); continue
    fi
    expected=
    for b in "$dir"/block.*; do
        [ "$b" = "$dir/block.1" ] && continue
        if head -n 1 "$b" | grep -q '^\$ '; then
            unroff <"$b" | sed 1d >"$dir/expected" || { echo "FAIL: $name.3: session block"; fail=$((fail + 1)); }
            expected=$dir/expected
            break
        fi
    done

    if ! $LIBTOOL --quiet --mode=link $CC $CPPFLAGS -I"$abs_top_srcdir/include" \
            $CFLAGS -Wall -Wextra -Werror -o "$dir/$name" "$dir/$name.c" \
            "$abs_top_builddir/librcmalloc.la" $LDFLAGS >"$dir/build.log" 2>&1; then
        missing=$(sed -n "s/.*undefined reference to \`\(rc_[a-z_]*\)'.*/\1/p" "$dir/build.log" | sort -u | tr '\n' ' ')
        if [ -n "$missing" ] && ! grep -q '\.c:[0-9]*:[0-9]*: ' "$dir/build.log"; then
            echo "SKIP: $name.3: the library lacks ${missing}(object-lifetime layer not built in?)"
            skip=$((skip + 1)); continue
        fi
        echo "FAIL: $name.3: the example does not compile:"
        cat "$dir/build.log"; fail=$((fail + 1)); continue
    fi
    if command -v timeout >/dev/null 2>&1; then run="timeout 120"; else run=; fi
    $run "./$dir/$name" >"$dir/stdout" 2>"$dir/stderr"
    st=$?
    if [ $st -ne 0 ]; then
        echo "FAIL: $name.3: the example exits with status $st; stderr:"
        cat "$dir/stderr"; fail=$((fail + 1)); continue
    fi
    if [ -n "$expected" ] && ! cmp -s "$expected" "$dir/stdout"; then
        echo "FAIL: $name.3: output differs from the session on the page (-page +actual):"
        diff -u "$expected" "$dir/stdout"; fail=$((fail + 1)); continue
    fi
    echo "ok: $name.3: example builds and runs${expected:+, output matches the page}"
    pass=$((pass + 1))
done

echo "check-examples: $pass passed, $skip skipped, $fail failed"
[ $fail -eq 0 ] || { echo "(work files kept in $work)"; exit 1; }
rm -rf "$work"
[ $skip -eq 0 ] || exit 77
exit 0
