# skip-sanitized.sh -- sourced by the checks that preload the library or run
# it under valgrind: a sanitizer runtime must come first in a process, so a
# library built with -fsanitize cannot be preloaded (and valgrind cannot run
# it).  Exits 77 (skip) in such a build.  Run from the build directory.
if ldd ./.libs/librcmalloc.so 2>/dev/null | grep -qE 'lib(a|ub|t|hwa)san'; then
  echo "librcmalloc is built with a sanitizer: preloading and valgrind do not apply"
  exit 77
fi
