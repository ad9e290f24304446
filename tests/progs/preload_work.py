# preload_work.py -- a deterministic, allocation-heavy Python workload for
# test_preload_python.sh (run with PYTHONMALLOC=malloc, so every object goes
# through malloc/realloc/free).  The output depends only on the computation.
import hashlib
import json
import random
import sys

rng = random.Random(20240601)

# dicts and strings
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 12)))
         for _ in range(60000)]
counts = {}
for w in words:
    counts[w] = counts.get(w, 0) + 1
top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
print("distinct", len(counts))
for w, c in top:
    print("top", w, c)

# lists: sorting, slicing, comprehension, growth and shrinkage
nums = [rng.randint(-10**9, 10**9) for _ in range(200000)]
nums.sort()
print("sorted", nums[0], nums[len(nums) // 2], nums[-1])
evens = [n for n in nums if n % 2 == 0]
del nums[::3]
print("lists", len(evens), len(nums), sum(nums) % 1000003)

# big integers and string building
f = 1
for i in range(1, 1500):
    f *= i
s = str(f)
print("factorial digits", len(s), s[:20], s[-20:].rstrip("0")[-5:])
parts = []
for i in range(50000):
    parts.append(("%d:%s" % (i, words[i % len(words)])) * (i % 4))
blob = "|".join(parts)
print("blob", len(blob), hashlib.sha256(blob.encode()).hexdigest())

# json round trip of a nested structure
doc = {
    "users": [{"id": i, "name": words[i], "tags": words[i:i + (i % 7)],
               "score": (i * 37) % 101 / 7.0} for i in range(8000)],
    "meta": {"n": 8000, "nested": [[j] * (j % 5) for j in range(2000)]},
}
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
print("json", len(text), back == doc, hashlib.md5(text.encode()).hexdigest())

# sets, tuples, classes and reference cycles
class Node:
    __slots__ = ("val", "next", "other")

    def __init__(self, val):
        self.val = val
        self.next = None
        self.other = None

head = None
for i in range(30000):
    n = Node(i)
    n.next = head
    n.other = n if i % 10 == 0 else None   # cycles for the gc
    head = n
total = 0
while head is not None:
    total += head.val
    head = head.next
import gc
gc.collect()
print("nodes", total)
pairs = {(a % 97, a % 89) for a in range(100000)}
print("pairs", len(pairs))
bytes_ = bytearray()
for i in range(100000):
    bytes_ += bytes([i & 0xFF]) * (i % 3)
print("bytearray", len(bytes_), hashlib.sha1(bytes_).hexdigest())
sys.stdout.flush()
