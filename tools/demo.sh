#!/bin/sh
# The main job: build rcmalloc, then run a real program (CPython) on it and
# print the allocator's statistics at exit.
set -eu
cd "$(dirname "$0")/.."
sh tools/bootstrap.sh
exec env RCMALLOC_STATS=1 PYTHONMALLOC=malloc \
  LD_PRELOAD="$PWD/build/.libs/librcmalloc.so" \
  python3 -c 'import json, collections
d = [{"k": i, "v": str(i) * 3, "l": list(range(i % 17))} for i in range(200000)]
s = json.dumps(d); e = json.loads(s)
c = collections.Counter(x["v"][-1] for x in e)
print("objects:", len(e), "json bytes:", len(s), "digits:", sorted(c.items())[:3])'
