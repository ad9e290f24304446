#!/bin/sh
# check-pages.sh -- lint the manual pages (make check).
#
#   - mandoc -T lint on every page: a WARNING or worse fails the test (STYLE
#     notes are printed but allowed); groff -ww -z -man too, when installed;
#   - every page has the sections a reader looks for;
#   - every link page is exactly ".so man3/<page>.3", naming a real page
#     whose NAME section lists the link's name;
#   - every function and macro in include/rcmalloc.h has a page or a link;
#   - every page in man/ is listed in man/man.am (so it is installed and
#     shipped).
# Skips (77) when configure found no mandoc.
set -u
[ -f man/check.env ] || { echo "check-pages: run from the build directory (make check)"; exit 99; }
. ./man/check.env
src=$abs_top_srcdir/man
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if [ -z "$MANDOC" ]; then
    echo "SKIP: mandoc not found by configure; install Debian's mandoc to lint the pages"
    exit 77
fi

pages=
links=
for f in "$src"/*.[137]; do
    if head -n 1 "$f" | grep -q '^\.so '; then
        links="$links $f"
    else
        pages="$pages $f"
    fi
done

# --- lint -----------------------------------------------------------------
for f in $pages; do
    out=$("$MANDOC" -T lint -W warning "$f" 2>&1)
    st=$?
    if [ $st -ne 0 ] || [ -n "$out" ]; then
        bad "mandoc -T lint $(basename "$f") (status $st):"
        printf '%s\n' "$out"
    fi
    style=$("$MANDOC" -T lint -W style "$f" 2>&1 | grep ': STYLE: ')
    [ -z "$style" ] || { echo "note (allowed, STYLE level):"; printf '%s\n' "$style"; }
    if command -v groff >/dev/null 2>&1; then
        out=$(groff -ww -z -man "$f" 2>&1)
        [ -z "$out" ] || { bad "groff -ww -z -man $(basename "$f"):"; printf '%s\n' "$out"; }
    fi
done

# --- sections -------------------------------------------------------------
for f in $pages; do
    name=$(basename "$f")
    case $name in
        *.1) need="NAME SYNOPSIS DESCRIPTION EXIT_STATUS ENVIRONMENT EXAMPLES SEE_ALSO" ;;
        *.3) need="NAME SYNOPSIS DESCRIPTION RETURN_VALUE ERRORS ENVIRONMENT EXAMPLES SEE_ALSO" ;;
        *)   need="NAME SYNOPSIS DESCRIPTION ENVIRONMENT EXAMPLES SEE_ALSO" ;;
    esac
    for s in $need; do
        s=$(echo "$s" | tr _ ' ')
        grep -q "^\.SH \"\{0,1\}$s\"\{0,1\}\$" "$f" || bad "$name: no $s section"
    done
done

# --- links ----------------------------------------------------------------
for f in $links; do
    name=$(basename "$f" .3)
    if [ "$(wc -l <"$f")" -ne 1 ]; then
        bad "$name.3: a link page must be the one line .so man3/<page>.3"
        continue
    fi
    target=$(sed -n 's|^\.so man3/\([A-Za-z0-9_]*\.3\)$|\1|p' "$f")
    if [ -z "$target" ]; then
        bad "$name.3: not of the form .so man3/<page>.3: $(cat "$f")"
    elif [ ! -f "$src/$target" ] || head -n 1 "$src/$target" | grep -q '^\.so '; then
        bad "$name.3: links to $target, which is not a page"
    elif ! sed -n '/^\.SH NAME/,/^\.SH/p' "$src/$target" | grep -q "\(^\|[ ,]\)$name\([ ,]\|$\)"; then
        bad "$name.3: $target does not list $name in its NAME section"
    fi
done
case " $(cd "$src" && echo *.3) " in
    *" malloc.3 "*|*" free.3 "*) bad "man/ must not ship a page for a standard name" ;;
esac

# --- every public name has a page -----------------------------------------
names=$(sed -n \
    -e 's/^RC_API[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' \
    -e 's/^#define \(RC_[A-Z_]*\)(.*/\1/p' \
    "$abs_top_srcdir/include/rcmalloc.h")
[ -n "$names" ] || bad "found no function names in include/rcmalloc.h"
for n in $names; do
    [ -f "$src/$n.3" ] || bad "$n (include/rcmalloc.h) has no man/$n.3 page or link"
done

# --- every RCMALLOC_* variable lib/options.c reads is in rcmalloc.7 --------
vars=$(grep -o '"RCMALLOC_[A-Z0-9_]*"' "$abs_top_srcdir/lib/options.c" 2>/dev/null | tr -d '"' | sort -u)
for v in $vars; do
    grep -q "^\.B $v\$" "$src/rcmalloc.7" || bad "$v (lib/options.c) is not documented in rcmalloc.7 ENVIRONMENT"
done
for v in $(sed -n 's/^\.B \(RCMALLOC_[A-Z0-9_]*\)$/\1/p' "$src/rcmalloc.7" | sort -u); do
    [ -z "$vars" ] || case " $(echo $vars) " in
        *" $v "*) ;;
        *) echo "note: rcmalloc.7 documents $v, which lib/options.c does not read (yet?)" ;;
    esac
done

# --- the version in every page's .TH line is this package's ---------------
for f in $pages; do
    grep -q "^\.TH .* \"rcmalloc $PACKAGE_VERSION\" " "$f" \
        || bad "$(basename "$f"): .TH does not say \"rcmalloc $PACKAGE_VERSION\""
done

# --- every page is installed and shipped ----------------------------------
for f in $pages $links; do
    grep -q "man/$(basename "$f")\( \|\$\)" "$src/man.am" || bad "$(basename "$f") is not listed in man/man.am"
done

n_pages=$(echo $pages | wc -w); n_links=$(echo $links | wc -w)
if [ $fail -ne 0 ]; then
    echo "check-pages: FAILED"
    exit 1
fi
echo "check-pages: $n_pages pages lint clean, $n_links links resolve, $(echo $names | wc -w) public names documented"
exit 0
