"""py_cycles.py -- CPython's gc.collect() on the graph rc_cycles.c builds:
rings of 1,000 container objects (next + one random chord), ~1M objects,
automatic collection disabled during the build, then one timed full
collection.  Usage: py_cycles.py [-s SCALE] [-m garbage|live]."""
import gc
import random
import sys
import time

RING = 1000


class Node:
    __slots__ = ("next", "other")


def main():
    scale, mode = 1.0, "garbage"
    args = sys.argv[1:]
    while args:
        opt = args.pop(0)
        if opt == "-s":
            scale = float(args.pop(0))
        elif opt == "-m":
            mode = args.pop(0)
    rings = max(1, int(1000 * scale))
    live = mode == "live"
    rng = random.Random(5)
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    roots = []
    for _ in range(rings):
        tmp = [Node() for _ in range(RING)]
        for i, n in enumerate(tmp):
            n.next = tmp[(i + 1) % RING]
            n.other = tmp[rng.randrange(RING)]
        if live:
            roots.append(tmp[0])
        del tmp, n
    t1 = time.perf_counter()
    found = gc.collect()
    t2 = time.perf_counter()
    objects = rings * RING
    print("metric objects=%d" % objects)
    print("metric found=%d" % found)
    print("metric build_ms=%.6g" % ((t1 - t0) * 1e3))
    print("metric collect_ms=%.6g" % ((t2 - t1) * 1e3))
    print("metric ns_per_object=%.6g" % ((t2 - t1) * 1e9 / objects))
    if not live and found < objects:
        print("py_cycles: gc found %d, expected >= %d" % (found, objects), file=sys.stderr)
        return 1
    print("ok py_cycles mode=%s objects=%d" % (mode, objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
