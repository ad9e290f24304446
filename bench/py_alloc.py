"""py_alloc.py -- an allocation-heavy CPython workload for `make bench`:
dicts, lists, tuples and strings built and dropped, a JSON round trip and
a growing/shrinking dict of lists.  Run with PYTHONMALLOC=malloc so every
object goes to the preloaded malloc; plain python3 (pymalloc) is the
reference row.  Usage: py_alloc.py [-s SCALE]."""
import json
import sys


def records(n):
    out = []
    for i in range(n):
        out.append({"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % 7), "x" * (i % 13)],
                    "pos": (i * 0.5, -i), "extra": {"k": str(i)} if i % 3 == 0 else None})
    return out


def strings(n):
    total = 0
    for i in range(n):
        parts = [str(j) * (1 + j % 9) for j in range(24)]
        s = "-".join(parts)
        total += len(s.split("-")) + len(s.upper())
    return total


def churn(n):
    d = {}
    for i in range(n):
        d.setdefault(i % 4096, []).append((i, str(i)))
        if i % 8192 == 8191:
            for k in list(d)[::2]:
                del d[k]
    return len(d)


def main():
    scale = 1.0
    if len(sys.argv) > 2 and sys.argv[1] == "-s":
        scale = float(sys.argv[2])
    n = max(100, int(12000 * scale))
    total = 0
    for _ in range(3):
        recs = records(n)
        text = json.dumps(recs)
        total += len(json.loads(text))
        del recs, text
    total += strings(n)
    total += churn(6 * n)
    print("ok py_alloc total=%d" % total)


if __name__ == "__main__":
    main()
