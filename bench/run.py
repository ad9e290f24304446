#!/usr/bin/env python3
"""run.py -- the `make bench` harness: rcmalloc against glibc, jemalloc,
mimalloc and tcmalloc, plus the object-lifetime layer against plain
malloc/free, Boehm GC and CPython's gc.

Method
  * Every cell (workload x allocator) is a separate process.  Allocators
    other than glibc are swapped in with LD_PRELOAD; glibc is "no preload".
  * Rounds are interleaved: in round r every allocator runs the workload
    once, in an order rotated by r, so drift in machine load hits all
    allocators alike.  A cell's value is the median over rounds.
  * Wall time is measured around the child; peak RSS comes from
    os.wait4()'s rusage (ru_maxrss, that child only).  Workloads may print
    "metric key=value" lines; some rows use such a metric instead (the
    collector's own timing, the RSS after a fragmentation refill).
  * Each row shows the ratio of every cell to the best *peer* (the best
    allocator other than rcmalloc), so a ratio below 1 means rcmalloc beat
    every peer and above 1 means it lost; the summary line is the geometric
    mean of these ratios over the rows every shown allocator completed.
  * A probe checks which library `malloc` resolves to under each preload
    and the report says so when a preload did not take.
  * ALLOC=rcmalloc-prof adds a column (only when named): rcmalloc with its
    heap profiler on at the default rate (RCMALLOC_PROF=1, profiles written
    to a temporary directory), never counted as a peer; a table shows its
    time against plain rcmalloc's per allocator row.
  * One line answers whether CPython with PYTHONMALLOC=malloc on rcmalloc
    beats CPython with its own pymalloc on glibc (the python-malloc row's
    rcmalloc cell against the python-pymalloc row's glibc cell).

Nothing here knows any expected number: the tables are computed from
this run's measurements only.

Outputs (in <builddir>/bench/results/, copied to --results-dir if given):
  report.md     the Markdown report also printed on stdout
  raw.csv       one line per process run
  summary.csv   one line per cell (medians, ratios)
  readme_table.md  the compact table for the top-level README: rcmalloc's
                time and peak RSS next to the best peer's, both ratios side
                by side, and the CPython line (`--readme-table` prints it
                again from a summary.csv)
  chart.svg     ratios to the best peer, time and memory (gnuplot)
  chart.png     the same chart as a PNG
"""

import argparse
import csv
import datetime
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SUBJECT = "rcmalloc"
# rcmalloc in another mode: the same library with these variables set.  Run
# only when named in ALLOC (e.g. ALLOC=rcmalloc,rcmalloc-secure), and never
# a peer: its ratio to the best peer is shown, but it is not one.
PROFILED = "rcmalloc-prof"     # with RCMALLOC_PROF=1 (and a temporary prefix)
SUBJECT_MODES = {"rcmalloc-secure": {"RCMALLOC_SECURE": "1"},
                 PROFILED: {"RCMALLOC_PROF": "1"}}
PEERS = [
    ("glibc", None),
    ("jemalloc", "libjemalloc.so.2"),
    ("mimalloc", "libmimalloc.so.2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4"),
]
PEER_PACKAGES = {
    "glibc": "libc6",
    "jemalloc": "libjemalloc2",
    "mimalloc": "libmimalloc2.0",
    "tcmalloc": "libtcmalloc-minimal4",
}
FULL_SCALE, QUICK_SCALE = 1.0, 0.25
FULL_ROUNDS, QUICK_ROUNDS = 11, 5


# ---------------------------------------------------------------------------
# Workload table

class Row:
    """One table row.  kind 'alloc': the same command under every allocator.
    kind 'lifetime': a fixed set of variants (columns), each its own
    command; `subject` names the rcmalloc variant."""

    def __init__(self, name, desc, prog=None, args=(), env=None, metric=None,
                 mem_metric=None, reference=False, kind="alloc", variants=None,
                 subject=None, unit="ms"):
        self.name, self.desc, self.prog, self.args = name, desc, prog, list(args)
        self.env = env or {}
        self.metric = metric            # None: wall time; else a printed metric (ms)
        self.mem_metric = mem_metric    # None: peak RSS; else a printed metric (KiB)
        self.reference = reference      # shown, left out of the geometric mean
        self.kind = kind
        self.variants = variants or []
        self.subject = subject
        self.unit = unit


class Variant:
    def __init__(self, column, prog, args=(), alloc=None, env=None, metric=None,
                 scaled=True):
        self.column, self.prog, self.args = column, prog, list(args)
        self.scaled = scaled            # pass "-s SCALE" (our workloads only)
        self.alloc = alloc              # allocator to preload (None: none)
        self.env = env or {}
        self.metric = metric


PY = "@python"          # placeholder for the python interpreter


def alloc_rows():
    rows = [
        Row("fastpath", "malloc(32)/free loop, 1 thread (fast path)", "bench/fastpath"),
        Row("lifo", "batches of 1,000 blocks of 16-256 B freed in reverse order", "bench/lifo"),
        Row("randws", "random replacement of 8-512 B blocks in a 20,000-slot working set",
            "bench/randws"),
        Row("larson", "larson: 2 threads per epoch, new threads free the blocks of exited ones",
            "bench/larson", ["-t", "2"]),
        Row("prodcons", "a producer thread mallocs, a consumer thread frees (batches of 32 via a ring)",
            "bench/prodcons", ["-t", "2"]),
        Row("xfree", "two threads each free the other's blocks", "bench/xfree"),
        Row("churn", "threads that come and go: 1,000 generations of 2 short-lived threads "
            "(fewer when QUICK), blocks passed on through a shared array and freed by later "
            "generations", "bench/churn", ["-t", "2"]),
        Row("xthread", "2 threads, each a working set of 16 B-16 KiB blocks (mostly small); "
            "a quarter of what each discards is freed by the other thread (lock-free inbox)",
            "bench/xthread", ["-t", "2"]),
        Row("xmalloc", "xmalloc-test: 2 threads only malloc 16 B-1 KiB, 2 threads only free, "
            "through shared mutex queues; fixed total count", "bench/xmalloc", ["-t", "4"]),
        Row("spanx", "8 KiB-1 MiB blocks malloc'd in one thread, first and last bytes touched, "
            "freed in another (through a ring, 32 in flight)", "bench/spanx", ["-t", "2"]),
        Row("realloc", "16 buffers grow 16 B -> 64 KiB by 1/8 steps (string builders)",
            "bench/realloc"),
        Row("realloc1", "one buffer grows 16 B -> 64 KiB by 1/8 steps, 16-256 B blocks "
            "malloc'd and freed between the steps (some kept a while)", "bench/realloc1"),
        Row("large", "allocate, touch and free 5-25 MiB blocks, 2 live", "bench/large"),
        Row("frag", "fill 16-128 B, free 90% at random, refill with 256-1024 B; "
            "memory = RSS after the refill", "bench/frag", mem_metric="rss_refill_kb"),
    ]
    for t in (1, 2, 4, 8):
        rows.append(Row("scale-%d" % t, "fixed total work, 16-256 B local churn, %d thread%s"
                        % (t, "s" if t > 1 else ""), "bench/scale", ["-t", str(t)]))
    rows += [
        Row("bintrees-malloc", "binary-trees with malloc/free", "bench/malloc_bintrees"),
        Row("python-malloc", "CPython, PYTHONMALLOC=malloc: every object via malloc",
            PY, ["@src/bench/py_alloc.py"], env={"PYTHONMALLOC": "malloc"}),
        Row("python-pymalloc", "reference: same script with CPython's own pymalloc "
            "(only large blocks reach malloc)", PY, ["@src/bench/py_alloc.py"],
            reference=True),
    ]
    return rows


def lifetime_rows():
    rc_cols = lambda mode: [  # noqa: E731
        Variant("rc API", "bench/rc_cycles", ["-m", mode], metric="collect_ms"),
        Variant("CPython gc", PY, ["@src/bench/py_cycles.py", "-m", mode],
                metric="collect_ms"),
    ]
    return [
        Row("binary-trees", "binary-trees: rc_new/rc_decref nodes (tracked containers) vs "
            "malloc/free vs Boehm GC", kind="lifetime", subject="rc API", variants=[
                Variant("rc API", "bench/rc_bintrees"),
                Variant("malloc/free glibc", "bench/malloc_bintrees", alloc="glibc"),
                Variant("malloc/free rcmalloc", "bench/malloc_bintrees", alloc="rcmalloc"),
                Variant("Boehm GC", "bench/gc_bintrees"),
            ]),
        Row("binary-trees-plain", "binary-trees: rc_new/rc_decref nodes without traverse "
            "(reference counting alone) vs malloc/free", kind="lifetime",
            subject="rc API, no traverse", variants=[
                Variant("rc API, no traverse", "bench/rc_bintrees", ["-m", "plain"]),
                Variant("malloc/free rcmalloc", "bench/malloc_bintrees", alloc="rcmalloc"),
            ]),
        Row("rc-graphs", "container graphs built, mutated (own and shared, under a mutex) "
            "and dropped, collector on: 2 threads doing twice the work vs 1 thread",
            kind="lifetime", subject="2 threads, 2x work", variants=[
                Variant("2 threads, 2x work", "bench/rc_graphs", ["-t", "2"]),
                Variant("1 thread", "bench/rc_graphs", ["-t", "1"]),
            ]),
        Row("gc-garbage", "one full collection of ~1M objects in unreachable rings "
            "(collector time only)", kind="lifetime", subject="rc API",
            variants=rc_cols("garbage")),
        Row("gc-live", "one full collection over ~1M live objects in rings "
            "(collector time only)", kind="lifetime", subject="rc API",
            variants=rc_cols("live")),
        Row("rc-threads-shared", "4 threads incref/decref 64 shared objects, "
            "plus short-lived objects", kind="lifetime", subject="rc API", variants=[
                Variant("rc API", "bench/rc_threads", ["-t", "4", "-m", "shared"]),
                Variant("C11 atomic + malloc", "bench/rc_threads",
                        ["-t", "4", "-m", "shared-atomic"]),
            ]),
        Row("rc-threads-private", "4 threads incref/decref 64 objects each, "
            "plus short-lived objects", kind="lifetime", subject="rc API", variants=[
                Variant("rc API", "bench/rc_threads", ["-t", "4", "-m", "private"]),
                Variant("C11 atomic + malloc", "bench/rc_threads",
                        ["-t", "4", "-m", "private-atomic"]),
            ]),
        Row("gc_bench", "the lifetime layer author's GC benchmark, bench/gc_bench.c vs "
            "bench/gc_bench.py, whole-process wall time (skipped unless both exist); "
            "reference only: the C program also times allocator loops the Python one "
            "cannot, so the two times are not compared (read gc_bench's own lines)",
            kind="lifetime", subject="rc API", reference=True, variants=[
                Variant("rc API", "bench/gc_bench", scaled=False),
                Variant("CPython gc", PY, ["@src/bench/gc_bench.py"], scaled=False),
            ]),
    ]


# ---------------------------------------------------------------------------
# Environment

def find_library(soname):
    """Path of a shared library by soname, via ldconfig, then common dirs."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                             timeout=10).stdout
        for line in out.splitlines():
            line = line.strip()
            if line.startswith(soname + " ") and "=>" in line and "x86-64" in line:
                return line.split("=>", 1)[1].strip()
            if line.startswith(soname + " ") and "=>" in line and \
                    platform.machine() != "x86_64":
                return line.split("=>", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/%s-linux-gnu" % platform.machine(),
              "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    return None


def read_first(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout:
            return r.stdout
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def machine_description(args, allocs, python):
    mem_kb = read_first("/proc/meminfo", "MemTotal").split()[0]
    try:
        mem = "%.1f GiB" % (int(mem_kb) / 1048576)
    except ValueError:
        mem = "?"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = "?"
    lines = [
        ("Date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", "%s, %s logical CPUs (%s usable by this run)"
         % (read_first("/proc/cpuinfo", "model name"), os.cpu_count(), affinity)),
        ("Memory", mem),
        ("Kernel", "%s %s" % (platform.system(), platform.release())),
        ("glibc", glibc),
        ("Load average at start", "%.2f %.2f %.2f" % LOAD_AT_START),
    ]
    for name, path in allocs:
        if name == SUBJECT:
            lines.append((name, "%s (%s)" % (path or "not built", rcmalloc_version(args))))
        elif name in SUBJECT_MODES:
            lines.append((name, "the same, with %s" % " ".join(
                "%s=%s" % kv for kv in sorted(SUBJECT_MODES[name].items()))))
        elif name != "glibc":
            v = pkg_version(PEER_PACKAGES[name])
            real = os.path.realpath(path) if path else "missing"
            lines.append((name, "%s (%s)" % (real, ("Debian " + v) if v else "version ?")))
    pyv = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True).stdout.strip()
    lines.append(("Python", "%s %s" % (python, pyv)))
    gcv = pkg_version("libgc1")
    lines.append(("Boehm GC", "libgc1 %s" % gcv if gcv else "?"))
    return lines


def rcmalloc_version(args):
    ver = "?"
    try:
        with open(os.path.join(args.builddir, "config.h")) as f:
            for line in f:
                if line.startswith("#define PACKAGE_VERSION"):
                    ver = line.split('"')[1]
    except (OSError, IndexError):
        pass
    try:
        r = subprocess.run(["git", "-C", args.srcdir, "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            ver += ", git " + r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "version " + ver


# ---------------------------------------------------------------------------
# Running one process

class Result:
    __slots__ = ("status", "wall", "maxrss_kb", "user", "sys", "metrics", "note")

    def __init__(self, status, wall=None, maxrss_kb=None, user=None, sys_=None,
                 metrics=None, note=""):
        self.status, self.wall, self.maxrss_kb = status, wall, maxrss_kb
        self.user, self.sys, self.metrics, self.note = user, sys_, metrics or {}, note


RUNONE = None      # path of bench/runone, set in main()
LOAD_AT_START = os.getloadavg()


def run_process(argv, env, preload, timeout):
    """Run argv (with LD_PRELOAD=preload when given) through bench/runone,
    which forks it from a small process and reports its own wait4()
    rusage and wall time; return a Result."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r", prefix="bench-", suffix=".ru") as ru:
        cmd = [RUNONE, ru.name, preload or "-"] + argv
        try:
            p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            return Result("failed", note="cannot start: %s" % e)
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, 9)
            except OSError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, _ = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        meas = {}
        for item in ru.read().split():
            k, _, v = item.partition("=")
            try:
                meas[k] = float(v)
            except ValueError:
                pass
    metrics = {}
    for line in stdout.splitlines():
        if line.startswith("metric ") and "=" in line:
            k, v = line[7:].split("=", 1)
            try:
                metrics[k.strip()] = float(v)
            except ValueError:
                pass
    if rc == 77:
        msg = [l for l in stdout.splitlines() if l.startswith("skipped")]
        return Result("skipped", note=(msg[0][len("skipped: "):] if msg
                                       else "skipped by the workload"))
    if rc != 0 or "wall_s" not in meas:
        if killed:
            why = "killed after the %ds timeout" % timeout
        elif rc > 128:
            why = "killed by signal %d" % (rc - 128)
        else:
            why = "exit status %d" % rc
        tail = (stderr.strip().splitlines() or [""])[-1][:200]
        return Result("failed", meas.get("wall_s"), meas.get("maxrss_kb"),
                      note=(why + (": " + tail if tail else "")))
    return Result("ok", meas["wall_s"], meas["maxrss_kb"], meas.get("user_s"),
                  meas.get("sys_s"), metrics)


def child_env(extra):
    """The environment of a measured process, minus what the harness sets
    itself (LD_PRELOAD is given to runone separately)."""
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "PYTHONMALLOC", "BENCH_SCALE"):
        env.pop(k, None)
    env.update(extra)
    return env


# ---------------------------------------------------------------------------
# Harness

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--srcdir", default=os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap.add_argument("--builddir", default=os.getcwd())
    ap.add_argument("--lib", default=None, help="librcmalloc.so under test")
    ap.add_argument("--gnuplot", default="")
    ap.add_argument("--python", default="")
    ap.add_argument("--quick", default="", help="non-empty and not 0: quick mode")
    ap.add_argument("--only", default="", help="comma-separated row-name prefixes, "
                    "or 'alloc' / 'lifetime'")
    ap.add_argument("--alloc", default="", help="comma-separated allocators")
    ap.add_argument("--rounds", default="")
    ap.add_argument("--scale", default="", help="override the iteration scale")
    ap.add_argument("--results-dir", default="")
    ap.add_argument("--timeout", type=float, default=0)
    ap.add_argument("--list", action="store_true", help="list the rows and exit")
    ap.add_argument("--readme-table", nargs="?", const="-", default="", metavar="SUMMARY_CSV",
                    help="print the compact time + memory table (results/readme_table.md) "
                    "from an earlier run's summary.csv (default: "
                    "<builddir>/bench/results/summary.csv) and exit")
    return ap.parse_args()


def selected(row, only, names=()):
    """Is the row picked by ONLY?  A word is a kind ('alloc', 'lifetime'),
    a row's exact name (then that row only: ONLY=realloc is not realloc1),
    or else a prefix (ONLY=scale picks every scale-N)."""
    if not only:
        return True
    for w in only:
        if w == row.kind or row.name == w or (w not in names and row.name.startswith(w)):
            return True
    return False


def main():
    args = parse_args()
    quick = args.quick not in ("", "0", "no", "false")
    rounds = int(args.rounds) if args.rounds else (QUICK_ROUNDS if quick else FULL_ROUNDS)
    scale = float(args.scale) if args.scale else (QUICK_SCALE if quick else FULL_SCALE)
    timeout = args.timeout or (60 if quick else 180)
    python = args.python or shutil.which("python3") or sys.executable
    # The measured interpreter itself, not a wrapper (a pyenv shim is a bash
    # script that would be measured, and preloaded, along with Python).
    try:
        real = subprocess.run([python, "-c", "import sys; print(sys.executable)"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
        if real and os.path.exists(real):
            python = real
    except (OSError, subprocess.SubprocessError):
        pass
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    want_alloc = [a.strip() for a in args.alloc.split(",") if a.strip()]
    builddir = os.path.abspath(args.builddir)
    srcdir = os.path.abspath(args.srcdir)

    all_names = {r.name for r in alloc_rows() + lifetime_rows()}
    rows = [r for r in alloc_rows() + lifetime_rows() if selected(r, only, all_names)]
    if args.readme_table:
        return print_readme_table(args.readme_table, builddir)
    if args.list:
        for r in alloc_rows() + lifetime_rows():
            print("%-20s %-8s %s" % (r.name, r.kind, r.desc))
        return 0
    if only and not rows:
        print("bench: ONLY=%s matches no workload (try --list)" % args.only, file=sys.stderr)
        return 2

    notes = []
    if not (os.path.exists(os.path.join(builddir, "bench", "gc_bench")) or
            os.path.exists(os.path.join(srcdir, "bench", "gc_bench.py"))):
        if any(r.name == "gc_bench" for r in rows) and only:
            notes.append("gc_bench: bench/gc_bench.c and bench/gc_bench.py are not in this "
                         "tree: row left out")
        rows = [r for r in rows if r.name != "gc_bench"]
        if not rows:
            print("bench: " + notes[-1], file=sys.stderr)
            return 0
    # allocators: name -> preload path (None for glibc); missing ones noted
    known = [SUBJECT] + list(SUBJECT_MODES) + [n for n, _ in PEERS]
    for a in want_alloc:
        if a not in known:
            print("bench: unknown allocator %r (known: %s)" % (a, ", ".join(known)),
                  file=sys.stderr)
            return 2
    allocs = []
    lib = os.path.abspath(args.lib) if args.lib else None
    for name in known:
        if (want_alloc or name in SUBJECT_MODES) and name not in want_alloc:
            continue
        if name == SUBJECT or name in SUBJECT_MODES:
            path = lib if lib and os.path.exists(lib) else None
            if not path:
                notes.append("rcmalloc: %s not found (built with --disable-shared?): "
                             "column skipped" % (lib or "librcmalloc.so"))
        elif name == "glibc":
            allocs.append((name, None))
            continue
        else:
            path = find_library(dict(PEERS)[name])
            if not path:
                notes.append("%s: %s not installed: column skipped"
                             % (name, dict(PEERS)[name]))
        allocs.append((name, path))
    preload = dict(allocs)
    available = [n for n, p in allocs if n == "glibc" or p]

    for k in sorted(os.environ):
        if k.startswith("RCMALLOC_") or k in ("MALLOC_CONF", "MIMALLOC_OPTIONS") or \
                k.startswith(("MIMALLOC_", "TCMALLOC_", "GLIBC_TUNABLES")):
            notes.append("environment: %s=%s is set and applies to every run"
                         % (k, os.environ[k]))

    global RUNONE
    RUNONE = os.path.join(builddir, "bench", "runone")
    if not os.path.exists(RUNONE):
        print("bench: %s was not built (make bench builds it)" % RUNONE, file=sys.stderr)
        return 2

    # Does malloc really resolve to the preloaded library?
    probe = os.path.join(builddir, "bench", "probe")
    if os.path.exists(probe):
        for name in available:
            penv = child_env(SUBJECT_MODES.get(name, {}))
            if preload.get(name):
                penv["LD_PRELOAD"] = preload[name]
            r = subprocess.run([probe], env=penv, capture_output=True, text=True)
            got = dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)
            m = got.get("malloc", "?")
            want = preload.get(name)
            if want is None:
                ok = "libc.so" in os.path.basename(m)
            else:
                ok = os.path.realpath(m) == os.path.realpath(want)
            if not ok:
                notes.append("WARNING: under the %s column, malloc resolves to %s, not %s: "
                             "that column measures %s" % (
                                 name, m, want or "glibc",
                                 os.path.basename(m) if m != "?" else "an unknown library"))

    def resolve(prog, argv):
        exe = python if prog == PY else os.path.join(builddir, prog)
        return [exe] + [a.replace("@src", srcdir) for a in argv]

    # cells: (row, column) -> how to run it
    cells = {}
    prof_dir = tempfile.TemporaryDirectory(prefix="rc-bench-prof.")
    prof_env = {"RCMALLOC_PROF": "1",
                "RCMALLOC_PROF_PREFIX": os.path.join(prof_dir.name, "bench")}
    for row in rows:
        if row.kind == "alloc":
            for name in available:
                env = dict(row.env or {}, **SUBJECT_MODES.get(name, {}))
                if name == PROFILED:
                    env.update(prof_env)
                cells[(row.name, name)] = (row.prog, row.args, preload.get(name), env,
                                           row.metric, row.mem_metric, True)
        else:
            for v in row.variants:
                if v.alloc and v.alloc not in available:
                    continue
                cells[(row.name, v.column)] = (v.prog, v.args,
                                               preload.get(v.alloc) if v.alloc else None,
                                               v.env, v.metric, None, v.scaled)

    results = {key: [] for key in cells}
    dead = {}           # key -> Result explaining why it stops being run
    raw = []
    t_start = time.time()
    print("bench: %s mode, %d rounds, scale %g, %d rows x %d allocators (%d cells)"
          % ("QUICK" if quick else "full", rounds, scale, len(rows), len(available),
             len(cells)), file=sys.stderr)
    for row in rows:
        cols = [c for (rn, c) in cells if rn == row.name]
        for r in range(rounds):
            order = cols[r % len(cols):] + cols[:r % len(cols)] if cols else []
            for pos, col in enumerate(order):
                key = (row.name, col)
                if key in dead:
                    continue
                prog, argv, pre, env, metric, mem_metric, scaled = cells[key]
                exe = resolve(prog, argv)
                if prog != PY and not os.path.exists(exe[0]):
                    res = Result("skipped", note="%s was not built" % prog)
                elif prog == PY and not os.path.exists(exe[1]):
                    res = Result("skipped", note="%s does not exist" % exe[1])
                else:
                    if scaled:
                        at = 2 if prog == PY else 1
                        exe[at:at] = ["-s", "%g" % scale]
                    res = run_process(exe, child_env(env), pre, timeout)
                    if res.status == "ok" and metric and metric not in res.metrics:
                        res = Result("failed", note="did not report metric %s" % metric)
                if res.status != "ok":
                    dead[key] = res
                results[key].append(res)
                raw.append({
                    "row": row.name, "column": col, "round": r, "position": pos,
                    "status": res.status,
                    "wall_s": "%.6f" % res.wall if res.wall is not None else "",
                    "maxrss_kb": res.maxrss_kb if res.maxrss_kb is not None else "",
                    "user_s": "%.4f" % res.user if res.user is not None else "",
                    "sys_s": "%.4f" % res.sys if res.sys is not None else "",
                    "metrics": ";".join("%s=%g" % kv for kv in sorted(res.metrics.items())),
                    "note": res.note,
                })
        print("bench: %-20s done (%.0f s elapsed)" % (row.name, time.time() - t_start),
              file=sys.stderr)

    # medians
    summary = {}
    for key, rs in results.items():
        prog, argv, pre, env, metric, mem_metric, _ = cells[key]
        ok = [x for x in rs if x.status == "ok"]
        if key in dead and dead[key].status != "ok" and not ok:
            summary[key] = {"status": dead[key].status, "note": dead[key].note}
            continue
        if key in dead:     # failed in a later round: do not trust the earlier ones
            summary[key] = {"status": dead[key].status, "note": dead[key].note}
            continue
        times = [x.metrics[metric] / 1e3 if metric else x.wall for x in ok]
        mems = [x.metrics.get(mem_metric, x.maxrss_kb) if mem_metric else x.maxrss_kb
                for x in ok]
        med = statistics.median(times)
        cpus = [x.user + x.sys for x in ok if x.user is not None and x.sys is not None]
        summary[key] = {
            "status": "ok", "time": med, "mem_kb": statistics.median(mems),
            "cpu": statistics.median(cpus) if cpus else float("nan"),
            "n": len(ok), "spread": (max(times) - min(times)) / med if med > 0 else 0.0,
        }

    prof_dir.cleanup()
    elapsed = time.time() - t_start
    report = render(args, rows, available, allocs, summary, notes, python, quick, rounds,
                    scale, elapsed)
    print(report)

    outdir = os.path.join(builddir, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(outdir, "raw.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(raw[0].keys()) if raw else ["row"])
        w.writeheader()
        w.writerows(raw)
    write_summary(os.path.join(outdir, "summary.csv"), rows, available, summary)
    files = ["report.md", "raw.csv", "summary.csv"]
    compact = readme_table(rows, available, summary)
    if compact:
        with open(os.path.join(outdir, "readme_table.md"), "w") as f:
            f.write(compact + "\n")
        files.append("readme_table.md")
    charts = plot(args.gnuplot or shutil.which("gnuplot") or "", outdir, rows, available,
                  summary)
    files += charts
    print("bench: results in %s (%s)" % (outdir, ", ".join(files)), file=sys.stderr)
    if args.results_dir:
        try:
            os.makedirs(args.results_dir, exist_ok=True)
            for fn in files:
                shutil.copy(os.path.join(outdir, fn), args.results_dir)
            print("bench: copied to %s" % args.results_dir, file=sys.stderr)
        except OSError as e:
            print("bench: cannot copy to %s: %s" % (args.results_dir, e), file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------
# Ratios and rendering

def alloc_ratios(row, available, summary, field):
    """Per-allocator ratio to the best peer for one allocator row."""
    vals = {a: summary[(row.name, a)][field] for a in available
            if summary.get((row.name, a), {}).get("status") == "ok"}
    peers = {a: v for a, v in vals.items() if a != SUBJECT and a not in SUBJECT_MODES}
    if not peers:
        return vals, {}, None
    best_peer = min(peers, key=peers.get)
    base = peers[best_peer]
    ratios = {a: (v / base if base > 0 else float("nan")) for a, v in vals.items()}
    return vals, ratios, best_peer


def geomean(xs):
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def fmt_time(s):
    if s >= 10:
        return "%.1f s" % s
    if s >= 0.1:
        return "%.0f ms" % (s * 1e3)
    if s >= 0.01:
        return "%.1f ms" % (s * 1e3)
    return "%.2f ms" % (s * 1e3)


def fmt_mem(kb):
    return "%.1f MiB" % (kb / 1024)


def verdict(ratio, best_peer):
    if ratio is None or best_peer is None:
        return "n/a"
    if abs(ratio - 1) < 0.005:
        return "within 0.5%% of best peer %s (%.3fx)" % (best_peer, ratio)
    if ratio < 1:
        return "wins, %.2fx (best peer %s)" % (ratio, best_peer)
    return "**loses, %.2fx** (best peer %s)" % (ratio, best_peer)


def alloc_table(rows, available, summary, field, fmt, title, lines):
    arows = [r for r in rows if r.kind == "alloc"]
    if not arows:
        return
    lines.append("## %s" % title)
    lines.append("")
    hdr = "| workload | " + " | ".join(available)
    if SUBJECT in available:
        hdr += " | rcmalloc vs best peer"
    if field == "time":
        hdr += " | spread"
    lines.append(hdr + " |")
    lines.append("|---|" + "---:|" * len(available) + ("---|" if SUBJECT in available else "")
                 + ("---:|" if field == "time" else ""))
    per_alloc = {a: [] for a in available}
    tally = {"wins": 0, "loses": 0, "even": 0, "other": 0}
    for row in arows:
        vals, ratios, best_peer = alloc_ratios(row, available, summary, field)
        best = min(vals, key=vals.get) if vals else None
        cells = []
        for a in available:
            s = summary.get((row.name, a), {})
            if s.get("status") != "ok":
                cells.append(s.get("status", "-"))
                continue
            c = fmt(s[field])
            if a in ratios:
                c += " (%.2f)" % ratios[a]
            if a == best and len(vals) > 1:
                c = "**%s**" % c
            cells.append(c)
        name = row.name + (" (reference)" if row.reference else "")
        line = "| %s | %s" % (name, " | ".join(cells))
        if SUBJECT in available:
            st = summary.get((row.name, SUBJECT), {}).get("status")
            if st != "ok":
                line += " | **%s**" % st
                tally["other"] += 1
            else:
                r = ratios.get(SUBJECT)
                line += " | " + verdict(r, best_peer)
                if r is not None and not row.reference:
                    tally["even" if abs(r - 1) < 0.005 else
                          "wins" if r < 1 else "loses"] += 1
        if field == "time":
            sp = [summary[(row.name, a)]["spread"] for a in vals]
            line += " | %s" % ("%.0f%%" % (100 * max(sp)) if sp else "-")
        lines.append(line + " |")
        if not row.reference and len(ratios) == len(available):
            for a in available:
                per_alloc[a].append(ratios[a])
    n = len(per_alloc[available[0]]) if available else 0
    if n:
        gm = {a: geomean(per_alloc[a]) for a in available}
        cells = ["%.2f" % gm[a] for a in available]
        line = "| geometric mean of ratios (%d row%s) | %s" % (n, "" if n == 1 else "s",
                                                             " | ".join(cells))
        if SUBJECT in available:
            line += " | %s" % ("%.2fx the best peer per row" % gm[SUBJECT])
        if field == "time":
            line += " | "
        lines.append(line + " |")
    if SUBJECT in available and len(available) > 1:
        lines.append("")
        lines.append("rcmalloc beats every peer in %d row%s, is within 0.5%% of the best peer "
                     "in %d and loses to at least one peer in %d%s (reference rows not "
                     "counted)." % (
                         tally["wins"], "" if tally["wins"] == 1 else "s", tally["even"],
                         tally["loses"],
                         "; %d rcmalloc cell%s did not complete" % (
                             tally["other"], "" if tally["other"] == 1 else "s")
                         if tally["other"] else ""))
    lines.append("")


def lifetime_table(rows, summary, lines):
    lrows = [r for r in rows if r.kind == "lifetime"]
    if not lrows:
        return
    cols = []
    for r in lrows:
        for v in r.variants:
            if v.column not in cols:
                cols.append(v.column)
    lines.append("## Object-lifetime layer (median; lower is better)")
    lines.append("")
    lines.append("Time is wall-clock per process, except the gc-* rows: the collector's own "
                 "time for one full collection, as each program measures it. Ratios are to the "
                 "best alternative in the row.")
    lines.append("")
    lines.append("| workload | " + " | ".join(cols) + " | rc API vs best alternative |")
    lines.append("|---|" + "---:|" * len(cols) + "---|")
    for r in lrows:
        present = [v.column for v in r.variants]
        vals = {c: summary[(r.name, c)]["time"] for c in present
                if summary.get((r.name, c), {}).get("status") == "ok"}
        alts = {c: v for c, v in vals.items() if c != r.subject}
        best_alt = min(alts, key=alts.get) if alts else None
        cells = []
        for c in cols:
            if c not in present:
                cells.append("")
                continue
            s = summary.get((r.name, c), {})
            if s.get("status") != "ok":
                cells.append(s.get("status", "-"))
                continue
            txt = fmt_time(s["time"])
            if best_alt and not r.reference:
                txt += " (%.2f)" % (s["time"] / alts[best_alt])
            if vals and c == min(vals, key=vals.get) and len(vals) > 1 and not r.reference:
                txt = "**%s**" % txt
            cells.append(txt)
        if r.reference and vals:
            v = "reference only (different measurements)"
        elif r.subject in vals and best_alt:
            ratio = vals[r.subject] / alts[best_alt]
            v = verdict(ratio, best_alt).replace("best peer ", "")
        elif summary.get((r.name, r.subject), {}).get("status") == "skipped":
            v = "skipped: " + summary[(r.name, r.subject)].get("note", "")
        elif summary.get((r.name, r.subject), {}).get("status") == "failed":
            v = "**failed**: " + summary[(r.name, r.subject)].get("note", "")
        else:
            v = "n/a"
        lines.append("| %s | %s | %s |" % (r.name, " | ".join(cells), v))
    lines.append("")


def profiler_table(rows, available, summary, lines):
    """The heap profiler's cost: rcmalloc-prof's time over rcmalloc's."""
    if PROFILED not in available or SUBJECT not in available:
        return
    lines.append("## Heap profiler cost (RCMALLOC_PROF=1, default rate; time ratio to "
                 "rcmalloc)")
    lines.append("")
    lines.append("| workload | rcmalloc | rcmalloc-prof | ratio |")
    lines.append("|---|---:|---:|---:|")
    ratios = []
    for row in (r for r in rows if r.kind == "alloc"):
        a, b = summary.get((row.name, SUBJECT), {}), summary.get((row.name, PROFILED), {})
        if a.get("status") != "ok" or b.get("status") != "ok":
            lines.append("| %s | %s | %s | - |" % (row.name, a.get("status", "-"),
                                                   b.get("status", "-")))
            continue
        r = b["time"] / a["time"] if a["time"] > 0 else float("nan")
        ratios.append(r)
        lines.append("| %s | %s | %s | %.3f |" % (row.name, fmt_time(a["time"]),
                                                 fmt_time(b["time"]), r))
    if ratios:
        lines.append("| geometric mean (%d row%s) | | | %.3f |" % (
            len(ratios), "" if len(ratios) == 1 else "s", geomean(ratios)))
    lines.append("")


def render(args, rows, available, allocs, summary, notes, python, quick, rounds, scale,
           elapsed):
    lines = ["# rcmalloc benchmark", ""]
    for k, v in machine_description(args, allocs, python):
        lines.append("- **%s**: %s" % (k, v))
    lines.append("- **Load average at end**: %.2f %.2f %.2f" % os.getloadavg())
    lines.append("- **Run**: %s mode, %d interleaved rounds (rotating order), iteration "
                 "scale %g, %.0f s" % ("QUICK" if quick else "full", rounds, scale, elapsed))
    lines.append("")
    lines.append("Each cell is the median over the rounds; in parentheses its ratio to the "
                 "best peer (the fastest/smallest of the allocators other than rcmalloc), so "
                 "below 1.00 rcmalloc beats every peer, above 1.00 it loses. Bold marks the "
                 "row's best. *spread* is the largest (max-min)/median of the row's cells: "
                 "ratios closer to 1 than that are noise (a load average above the CPU count "
                 "means other processes shared the machine; summary.csv also has CPU "
                 "time). A preloaded library that fails to replace malloc is flagged below.")
    lines.append("")
    for n in notes:
        lines.append("> %s" % n)
    if notes:
        lines.append("")
    alloc_table(rows, available, summary, "time", fmt_time,
                "Time (median wall-clock; lower is better)", lines)
    py = python_comparison(summary)
    if py:
        lines.append(py)
        lines.append("")
    profiler_table(rows, available, summary, lines)
    alloc_table(rows, available, summary, "mem_kb", fmt_mem,
                "Memory (median peak RSS; frag: RSS after the refill; lower is better)", lines)
    lifetime_table(rows, summary, lines)
    problems = [(k, s) for k, s in sorted(summary.items()) if s["status"] != "ok"]
    if problems:
        lines.append("## Skipped and failed cells")
        lines.append("")
        for (rn, col), s in problems:
            lines.append("- %s / %s: %s (%s)" % (rn, col, s["status"], s.get("note", "")))
        lines.append("")
    lines.append("## Workloads")
    lines.append("")
    for r in rows:
        lines.append("- **%s**: %s" % (r.name, r.desc))
    return "\n".join(lines)


PY_SUBJECT = ("python-malloc", SUBJECT)       # CPython, PYTHONMALLOC=malloc, on rcmalloc
PY_TARGET = ("python-pymalloc", "glibc")      # CPython's own pymalloc, no preload


def python_comparison(summary):
    """One sentence: is CPython with PYTHONMALLOC=malloc on rcmalloc faster
    than CPython with its own pymalloc (on glibc)?  None when neither row
    was run."""
    a, b = summary.get(PY_SUBJECT), summary.get(PY_TARGET)
    if a is None and b is None:
        return None
    head = ("**Is CPython on rcmalloc faster than CPython on its own pymalloc?** "
            "(python-malloc's rcmalloc cell, PYTHONMALLOC=malloc, against python-pymalloc's "
            "glibc cell, CPython's default) ")
    missing = [("%s/%s" % k) for k, s in ((PY_SUBJECT, a), (PY_TARGET, b))
               if not s or s.get("status") != "ok"]
    if missing:
        return head + "n/a: %s did not run or complete." % ", ".join(missing)
    ratio = a["time"] / b["time"] if b["time"] > 0 else float("nan")
    spread = max(a.get("spread", 0), b.get("spread", 0))
    if ratio < 1:
        answer = "Yes: %.0f%% faster" % (100 * (1 - ratio))
    else:
        answer = "No: %.0f%% slower" % (100 * (ratio - 1))
    text = head + "**%s**, %s vs %s (ratio %.2f" % (
        answer, fmt_time(a["time"]), fmt_time(b["time"]), ratio)
    if abs(ratio - 1) < spread:
        text += "; less than the two cells' spread, %.0f%%, so not a clear difference " \
                "on this run" % (100 * spread)
    return text + "). Peak RSS %s vs %s (ratio %.2f)." % (
        fmt_mem(a["mem_kb"]), fmt_mem(b["mem_kb"]),
        a["mem_kb"] / b["mem_kb"] if b["mem_kb"] > 0 else float("nan"))


def readme_table(rows, available, summary):
    """The compact table for the top-level README: per allocator row,
    rcmalloc's median time and peak RSS, the best peer's, and the two
    ratios side by side; then the geometric means and the CPython line."""
    arows = [r for r in rows if r.kind == "alloc"]
    if not arows or SUBJECT not in available or \
            not [a for a in available if a != SUBJECT and a not in SUBJECT_MODES]:
        return None
    lines = [
        "| workload | rcmalloc time | best peer (time) | time ratio | rcmalloc peak RSS "
        "| best peer (memory) | memory ratio | spread |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    gm = {"time": [], "mem_kb": []}

    def ratio_cell(r):
        if r is None:
            return "-"
        txt = "%.2f" % r
        return "**%s**" % txt if r >= 1.005 else txt
    for row in arows:
        cells = [row.name + (" (reference)" if row.reference else "")]
        st = summary.get((row.name, SUBJECT), {})
        got = {}
        for field, fmt in (("time", fmt_time), ("mem_kb", fmt_mem)):
            vals, ratios, best_peer = alloc_ratios(row, available, summary, field)
            got[field] = ratios if len(ratios) == len(available) else None
            if st.get("status") != "ok":
                cells += ["**%s**" % st.get("status", "not run"), "", "-"]
                continue
            cells.append(fmt(vals[SUBJECT]))
            cells.append("%s %s" % (best_peer, fmt(vals[best_peer])) if best_peer else "-")
            cells.append(ratio_cell(ratios.get(SUBJECT)))
        sp = [summary[(row.name, a)]["spread"] for a in available
              if summary.get((row.name, a), {}).get("status") == "ok"]
        cells.append("%.0f%%" % (100 * max(sp)) if sp else "-")
        lines.append("| " + " | ".join(cells) + " |")
        # the means: rows every allocator completed, as in the report
        if not row.reference and got["time"] and got["mem_kb"]:
            for field in gm:
                gm[field].append(got[field][SUBJECT])
    n = min(len(gm["time"]), len(gm["mem_kb"]))
    if n:
        lines.append("| geometric mean (%d row%s) | | | %s | | | %s | |" % (
            n, "" if n == 1 else "s", ratio_cell(geomean(gm["time"])), ratio_cell(geomean(gm["mem_kb"]))))
    lines.append("")
    peers = [a for a in available if a != SUBJECT and a not in SUBJECT_MODES]
    lines.append("Ratio = rcmalloc / the best of %s in that row (below 1.00: rcmalloc beats "
                 "%s; **bold**: it loses). " % (
                     ", ".join(peers[:-1]) + " and " + peers[-1] if len(peers) > 1
                     else peers[0], "all of them" if len(peers) > 1 else "it") +
                 "Memory is peak RSS (frag: RSS after the refill). Time differences smaller "
                 "than *spread* are noise. Reference rows are left out of the means.")
    py = python_comparison(summary)
    if py:
        lines.append("")
        lines.append(py)
    return "\n".join(lines)


def print_readme_table(path, builddir):
    """--readme-table: rebuild the compact table from a summary.csv."""
    if path == "-":
        path = os.path.join(builddir, "bench", "results", "summary.csv")
    try:
        with open(path, newline="") as f:
            recs = list(csv.DictReader(f))
    except OSError as e:
        print("bench: cannot read %s: %s" % (path, e), file=sys.stderr)
        return 2
    known = {r.name: r for r in alloc_rows()}
    rows, available, summary = [], [], {}
    for rec in recs:
        if rec["kind"] != "alloc":
            continue
        if not rows or rows[-1].name != rec["row"]:
            rows.append(known.get(rec["row"]) or Row(rec["row"], ""))
        if rec["column"] not in available:
            available.append(rec["column"])
        s = {"status": rec["status"], "note": rec.get("note", "")}
        if rec["status"] == "ok":
            s.update(time=float(rec["median_time_s"]), mem_kb=float(rec["median_mem_kb"]),
                     spread=float(rec["spread"] or 0))
        summary[(rec["row"], rec["column"])] = s
    order = [SUBJECT] + list(SUBJECT_MODES) + [n for n, _ in PEERS]
    available.sort(key=lambda a: order.index(a) if a in order else 99)
    table = readme_table(rows, available, summary)
    if not table:
        print("bench: %s has no allocator rows with an rcmalloc column" % path,
              file=sys.stderr)
        return 1
    print(table)
    return 0


def write_summary(path, rows, available, summary):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "kind", "column", "status", "median_time_s", "median_mem_kb",
                    "median_cpu_s",
                    "runs", "spread", "time_ratio_to_best_peer", "mem_ratio_to_best_peer",
                    "note"])
        for row in rows:
            if row.kind == "alloc":
                _, tr, _ = alloc_ratios(row, available, summary, "time")
                _, mr, _ = alloc_ratios(row, available, summary, "mem_kb")
                cols = available
            else:
                cols = [v.column for v in row.variants]
                tr, mr = {}, {}
                vals = {c: summary[(row.name, c)]["time"] for c in cols
                        if summary.get((row.name, c), {}).get("status") == "ok"}
                alts = [v for c, v in vals.items() if c != row.subject]
                if alts:
                    tr = {c: v / min(alts) for c, v in vals.items()}
            for c in cols:
                s = summary.get((row.name, c))
                if not s:
                    continue
                ok = s["status"] == "ok"
                w.writerow([row.name, row.kind, c, s["status"],
                            "%.6f" % s["time"] if ok else "",
                            "%.0f" % s["mem_kb"] if ok else "",
                            "%.4f" % s["cpu"] if ok else "",
                            s.get("n", 0), "%.3f" % s["spread"] if ok else "",
                            "%.4f" % tr[c] if c in tr else "",
                            "%.4f" % mr[c] if c in mr else "", s.get("note", "")])


def plot(gnuplot, outdir, rows, available, summary):
    """chart.svg: per workload, each allocator's ratio to the best peer
    (time on top, memory below), log scale, line at 1."""
    arows = [r for r in rows if r.kind == "alloc"]
    if not gnuplot or not arows or len(available) < 2:
        return []
    for field, fn in (("time", "chart-time.dat"), ("mem_kb", "chart-mem.dat")):
        with open(os.path.join(outdir, fn), "w") as f:
            f.write("workload " + " ".join(available) + "\n")
            per = {a: [] for a in available}
            for row in arows:
                _, ratios, _ = alloc_ratios(row, available, summary, field)
                f.write(row.name + " " + " ".join(
                    "%.4f" % ratios[a] if a in ratios else "?" for a in available) + "\n")
                if not row.reference and len(ratios) == len(available):
                    for a in available:
                        per[a].append(ratios[a])
            if per[available[0]]:
                f.write("geomean " + " ".join("%.4f" % geomean(per[a]) for a in available)
                        + "\n")
    n = len(available)
    script = """
set terminal @TERM@
set output '@OUT@'
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y 2
set grid ytics
set key outside top center horizontal
set yrange [0.5:*]
set offsets 0, 0, graph 0.05, 0
set xtics rotate by -35 nomirror
set ylabel 'ratio to best peer (log scale, lower is better)'
set multiplot layout 2,1 title 'rcmalloc vs peers: ratio to the best peer per workload (1 = best peer)'
set title 'time'
plot for [i=2:%(cols)d] 'chart-time.dat' using i:xtic(1) title columnheader(i), 1 with lines dt 2 lc rgb 'black' notitle
set title 'memory (peak RSS; frag: RSS after refill)'
plot for [i=2:%(cols)d] 'chart-mem.dat' using i:xtic(1) title columnheader(i), 1 with lines dt 2 lc rgb 'black' notitle
unset multiplot
""" % {"cols": n + 1}
    made = []
    for name, term in (("chart.svg", "svg size 1200,900 dynamic font 'sans,11' "
                                     "background '#ffffff'"),
                       ("chart.png", "pngcairo size 1200,900 font 'sans,10'")):
        gp = name.replace(".", "-") + ".gp"
        with open(os.path.join(outdir, gp), "w") as f:
            f.write(script.replace("@TERM@", term).replace("@OUT@", name))
        r = subprocess.run([gnuplot, gp], cwd=outdir, capture_output=True, text=True)
        if r.returncode != 0:
            print("bench: gnuplot (%s) failed: %s" % (name, r.stderr.strip()[:300]),
                  file=sys.stderr)
        else:
            made.append(name)
    return made


if __name__ == "__main__":
    sys.exit(main())
