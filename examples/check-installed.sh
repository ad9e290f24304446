#!/bin/sh
# check-installed.sh -- what "make install" puts on a system (make check).
#
# Installs into a DESTDIR under the build directory, then, using only the
# installed tree:
#   - every installed man page renders (man -l, else mandoc), the link pages
#     resolve through the manual hierarchy ("man rc_decref" finds rc_new(3)),
#     and there is no malloc.3 of ours;
#   - the installed rcmalloc command runs a program with the installed
#     library preloaded;
#   - examples/graph.c (as installed under docdir) builds with
#     "cc $(pkg-config --cflags --libs rcmalloc)" against the installed
#     header and library, runs with LD_LIBRARY_PATH, and prints
#     examples/graph.expected;
# then uninstalls and checks nothing is left behind.
#
# The example needs the object-lifetime layer: if it fails to link only
# because rc_* functions are missing from the library, that is reported and
# the test is skipped (77) -- after every other check has passed.
. "$(dirname "$0")/../tests/skip-sanitized.sh"   # exits 77 in a sanitizer build
set -u
[ -f man/check.env ] || { echo "check-installed: run from the build directory (make check)"; exit 99; }
. ./man/check.env
work=examples/check-installed.d
rm -rf "$work" && mkdir -p "$work" || exit 99
dest=$abs_top_builddir/$work/dest
fail=0 skip=
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
finish() {
    if [ $fail -ne 0 ]; then
        echo "check-installed: $fail failures (work files kept in $work)"
        exit 1
    fi
    rm -rf "$work"
    if [ -n "$skip" ]; then echo "SKIP: $skip"; exit 77; fi
    echo "check-installed: all passed"
    exit 0
}

# A sub-make: not part of the jobserver of the make running the tests, and
# none of its command-line variables (an outer DESTDIR would be wrong here).
submake() { env MAKEFLAGS= MFLAGS= MAKELEVEL= $MAKE "$@"; }

echo "installing into $dest"
if ! submake install DESTDIR="$dest" >"$work/install.log" 2>&1; then
    cat "$work/install.log"
    bad "make install DESTDIR=$dest"
    finish
fi
ilib=$dest$libdir ibin=$dest$bindir iman=$dest$mandir

# --- the files are there --------------------------------------------------
for f in "$dest$includedir/rcmalloc.h" "$ibin/rcmalloc" "$dest$pkgconfigdir/rcmalloc.pc" \
         "$iman/man1/rcmalloc.1" "$iman/man3/rcmalloc.3" "$iman/man3/rc_decref.3" \
         "$iman/man7/rcmalloc.7"; do
    [ -f "$f" ] || bad "not installed: ${f#$dest}"
done
[ -x "$ibin/rcmalloc" ] || bad "installed rcmalloc is not executable"
[ ! -e "$iman/man3/malloc.3" ] || bad "a malloc.3 of ours was installed"
if [ -f "$ilib/librcmalloc.so" ]; then shared=yes; else shared=no; fi

# --- man pages render, links resolve -------------------------------------
if command -v man >/dev/null 2>&1; then
    # man-db: no pager, no sandbox (it may not work in containers), no cache.
    render() { MANPAGER=cat PAGER=cat MANWIDTH=80 MAN_DISABLE_SECCOMP=1 LC_ALL=C man "$@" 2>&1; }
    for f in "$iman"/man*/*; do
        out=$(cd "$iman" && render -l "${f#$iman/}") || { bad "man -l ${f#$dest}: $out"; continue; }
        [ -n "$out" ] || bad "man -l ${f#$dest} rendered nothing"
    done
    # by name, through the installed hierarchy only
    out=$(MANPATH=$iman render -w rc_decref) || bad "man -w rc_decref: $out"
    case $out in  # man-db follows the .so; others name the link itself
        "$iman/man3/rc_new.3"|"$iman/man3/rc_decref.3") ;;
        *) bad "man -w rc_decref found '$out'" ;;
    esac
    out=$(MANPATH=$iman render 3 rc_decref) || bad "man 3 rc_decref: $out"
    printf '%s\n' "$out" | tr -s ' ' | grep -q 'rc_new, rc_incref, rc_decref' || bad "man 3 rc_decref does not show rc_new(3): $(printf '%s\n' "$out" | head -5)"
    out=$(MANPATH=$iman render 7 rcmalloc) || bad "man 7 rcmalloc: $out"
    printf '%s\n' "$out" | grep -q 'RCMALLOC_SMALL_MAX' || bad "man 7 rcmalloc does not render"
elif [ -n "$MANDOC" ]; then
    for f in "$iman"/man*/*; do
        out=$(cd "$iman" && "$MANDOC" -T ascii "${f#$iman/}" 2>&1) || bad "mandoc ${f#$dest}: $out"
    done
    out=$(cd "$iman" && "$MANDOC" -T ascii man3/rc_decref.3 2>&1)
    printf '%s\n' "$out" | tr -s ' ' | grep -q 'rc_new, rc_incref, rc_decref' || bad "man3/rc_decref.3 does not resolve to rc_new(3)"
else
    echo "note: neither man nor mandoc: the installed pages were not rendered"
fi

# --- the installed command ------------------------------------------------
out=$("$ibin/rcmalloc" --version 2>&1) || bad "rcmalloc --version: $out"
[ "$out" = "rcmalloc $PACKAGE_VERSION" ] || bad "installed rcmalloc --version printed '$out'"
out=$(env -u RCMALLOC_LIBRARY "$ibin/rcmalloc" --help | sed -n 's/^Library: //p')
[ "$out" = "$libdir/librcmalloc.so" ] || bad "installed rcmalloc defaults to '$out', not $libdir/librcmalloc.so"
if [ $shared = yes ]; then
    # The installed command points at $libdir, which under DESTDIR is not
    # there yet: RCMALLOC_LIBRARY points it at the DESTDIR copy.
    out=$(RCMALLOC_LIBRARY=$ilib/librcmalloc.so "$ibin/rcmalloc" sh -c 'grep -c librcmalloc /proc/$$/maps' 2>&1) \
        || bad "installed rcmalloc sh: $out"
    [ "$out" -gt 0 ] 2>/dev/null || bad "installed rcmalloc: library not mapped in the program ($out)"
fi

# --- the example, through pkg-config --------------------------------------
example=$dest$prefix/share/doc/rcmalloc/examples/graph.c
[ -f "$example" ] || { bad "not installed: ${example#$dest}"; example=$abs_top_srcdir/examples/graph.c; }
if [ -z "$PKG_CONFIG" ]; then
    bad "configure found no pkg-config"
    finish
fi
# Only the installed .pc (PKG_CONFIG_LIBDIR), its paths moved under DESTDIR
# (PKG_CONFIG_SYSROOT_DIR).
pc() { PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=$dest$pkgconfigdir PKG_CONFIG_SYSROOT_DIR=$dest "$PKG_CONFIG" "$@"; }
[ $shared = yes ] && static= || static=--static
flags=$(pc --cflags --libs $static rcmalloc) || { bad "pkg-config rcmalloc: $flags"; finish; }
echo "pkg-config --cflags --libs $static rcmalloc: $flags"
case " $flags " in
    *" -I$dest"*|*" -L$dest"*) ;;
    *) bad "pkg-config flags do not point into the installed tree: $flags" ;;
esac
version=$(pc --modversion rcmalloc)
[ "$version" = "$PACKAGE_VERSION" ] || bad "pkg-config --modversion rcmalloc: '$version'"

# Nothing from the source or build tree on the compiler's command line.
if ! $CC $CFLAGS -Wall -Wextra -o "$work/graph" "$example" $flags $LDFLAGS >"$work/build.log" 2>&1; then
    missing=$(sed -n "s/.*undefined reference to \`\(rc_[a-z_]*\)'.*/\1/p" "$work/build.log" | sort -u | tr '\n' ' ')
    if [ -n "$missing" ] && ! grep -q '\.c:[0-9]*:[0-9]*: ' "$work/build.log"; then
        skip="examples/graph.c does not link: the installed library lacks ${missing}(object-lifetime layer not built in?)"
    else
        cat "$work/build.log"
        bad "examples/graph.c does not build against the installed tree"
    fi
else
    if [ $shared = yes ]; then
        ldd=$(LD_LIBRARY_PATH=$ilib ldd "$work/graph" 2>&1 | grep librcmalloc)
        case $ldd in
            *"$ilib/librcmalloc.so"*) ;;
            *) bad "graph does not load the installed library: $ldd" ;;
        esac
    fi
    LD_LIBRARY_PATH=$ilib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$work/graph" >"$work/graph.out" 2>"$work/graph.err"
    st=$?
    if [ $st -ne 0 ]; then
        bad "graph exited with status $st; stderr: $(cat "$work/graph.err")"
    fi
    if ! cmp -s "$abs_top_srcdir/examples/graph.expected" "$work/graph.out"; then
        bad "graph output differs from examples/graph.expected (-expected +actual):"
        diff -u "$abs_top_srcdir/examples/graph.expected" "$work/graph.out"
    else
        echo "ok: examples/graph.c built from the installed tree prints graph.expected"
    fi
fi

# --- uninstall leaves nothing ---------------------------------------------
if ! submake uninstall DESTDIR="$dest" >"$work/uninstall.log" 2>&1; then
    cat "$work/uninstall.log"
    bad "make uninstall DESTDIR=$dest"
fi
left=$(find "$dest" ! -type d 2>/dev/null)
[ -z "$left" ] || bad "files left after make uninstall: $left"
finish
