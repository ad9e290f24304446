"""gc_bench.py -- CPython reference for bench/gc_bench.c's full_collect:
gc.collect() over N (default 1M) live tracked objects, a linked list of
two-field nodes.  Prints "full_collect <seconds> objects=<N>" (best of 5).

    python3 bench/gc_bench.py [objects]
"""
import gc
import sys
import time


class Node:
    __slots__ = ("a", "b")

    def __init__(self, a):
        self.a = a
        self.b = None


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    gc.disable()
    head = None
    for _ in range(n):
        head = Node(head)
    gc.collect()
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        found = gc.collect()
        t = time.perf_counter() - t
        assert found == 0
        best = min(best, t)
    print("full_collect %.4f objects=%d" % (best, n))
    del head


if __name__ == "__main__":
    main()
