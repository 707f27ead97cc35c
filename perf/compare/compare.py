#!/usr/bin/env python3
"""Chorus side by side with Open MPI, MPICH and Gloo on host memory.

One command builds every backend, runs AllReduce, AllGather, Broadcast and
ReduceScatter (float, sum, root 0) at the same sizes and rank counts with each
library through the same benchmark core (perf/compare/bench_core.h), checks
every result, prints one side-by-side table and writes the raw results, the
table and busbw-versus-size curves (PNG, gnuplot) to an output folder.

    perf/compare/compare.py                 full run (about 10 min on 2 cores)
    perf/compare/compare.py --quick         fewer sizes and iterations (about 3 min)
    perf/compare/compare.py --help          every option

Python 3 standard library only. See docs/performance.md for the methodology.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from report import LIB_TITLES, MiB, failures, fmt_bytes, log, make_table, plot, slower_sizes, table_notes

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

LIBS = ["chorus", "openmpi", "mpich", "gloo"]
OPS = ["allreduce", "allgather", "broadcast", "reducescatter"]
QUICK_SIZES = [8, 128, 2048, 32768, 65536, 262144, MiB, 4 * MiB, 16 * MiB, 64 * MiB, 128 * MiB]

# What each library needs: (program or file, Debian package).
NEEDS = {
    "build": [("cmake", "cmake"), ("ninja", "ninja-build"), ("g++", "g++")],
    "openmpi": [("mpicxx.openmpi", "libopenmpi-dev"), ("mpirun.openmpi", "openmpi-bin")],
    "mpich": [("mpicxx.mpich", "libmpich-dev"), ("mpirun.mpich", "mpich")],
    "gloo": [("/usr/include/gloo/reduce_scatter.h", "libgloo-dev")],
    "plot": [("gnuplot", "gnuplot-nox")],
}
VERSION_PACKAGES = ["libopenmpi-dev", "openmpi-bin", "libmpich-dev", "mpich", "libucx0", "libgloo-dev", "libgloo0",
                    "gnuplot-nox", "g++", "cmake"]


# ---------------------------------------------------------------- dependencies

def check_deps(groups):
    """Installs what is missing with apt-get when root; otherwise stops naming it."""
    def present(thing):
        return os.path.exists(thing) if thing.startswith("/") else shutil.which(thing) is not None

    missing = sorted({pkg for g in groups for thing, pkg in NEEDS[g] if not present(thing)})
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"compare: installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env)
        return
    sys.exit(f"compare: missing Debian packages: {' '.join(missing)}\n"
             f"  install them with: sudo apt-get install {' '.join(missing)}\n"
             f"  (or leave libraries out with --libs)")


# ---------------------------------------------------------------------- build

def build(args, libs):
    bdir = args.build_dir
    cache = bdir / "CMakeCache.txt"
    cmd = ["cmake", "-S", str(ROOT), "-B", str(bdir)]
    if not cache.exists():
        # The same configuration as scripts/run_main.sh, so the folder can be shared.
        cmd += ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DCHORUS_SANITIZE=OFF"]
    # Re-running cmake is cheap and finds a Gloo installed since the last configure.
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    build_type = ""
    for line in cache.read_text().splitlines():
        if line.startswith("CMAKE_BUILD_TYPE:"):
            build_type = line.split("=", 1)[1]
    if build_type != "Release":
        log(f"compare: WARNING: {bdir} is a {build_type or 'no-type'} build, not Release: "
            f"Chorus' numbers will not be representative")
    targets = [f"compare_{lib}" for lib in libs if lib in ("chorus", "gloo")] + ["compare_round_trip"]
    if targets:
        r = subprocess.run(["cmake", "--build", str(bdir), "--target", *targets], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
            if "gloo" in libs and "unknown target 'compare_gloo'" in (r.stdout + r.stderr):
                sys.exit("compare: CMake did not find Gloo (libgloo-dev); leave it out with --libs")
            sys.exit("compare: building the Chorus/Gloo backends failed")
    outdir = bdir / "perf" / "compare"
    outdir.mkdir(parents=True, exist_ok=True)
    sources = [HERE / "backend_mpi.cc", HERE / "bench_core.h"]
    for impl in ("openmpi", "mpich"):
        if impl not in libs:
            continue
        exe = outdir / f"compare_{impl}"
        if exe.exists() and all(exe.stat().st_mtime > s.stat().st_mtime for s in sources):
            continue
        # One source, compiled with each implementation's wrapper; the flags of
        # CMake's Release build (-O3 -DNDEBUG), without the MPI C++ bindings.
        cmd = [f"mpicxx.{impl}", "-std=c++17", "-O3", "-DNDEBUG", "-Wall", "-Wextra",
               "-DOMPI_SKIP_MPICXX=1", "-DMPICH_SKIP_MPICXX=1", f'-DCOMPARE_MPI_NAME="{impl}"',
               f"-I{HERE}", str(HERE / "backend_mpi.cc"), "-o", str(exe)]
        log("compare: " + " ".join(cmd))
        subprocess.run(cmd, check=True)
    return outdir


# --------------------------------------------------------------------- launch

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """One program run: one library, one collective, one rank count."""

    def __init__(self, lib, op, nranks):
        self.lib, self.op, self.nranks = lib, op, nranks
        self.results = []      # dicts parsed from RESULT lines
        self.version = ""
        self.status = "not run"
        self.command = ""
        self.env = {}
        self.seconds = 0.0
        self.started = ""      # wall clock at the start, to line passes up with the machine's changes
        self.round_trip_ns = None  # a cache line's round trip between two CPUs just before (core_round_trip.cc)
        self.log = None
        self.wrong_log = None  # the log of the (first) pass with wrong results, if not `log`


def bench_args(args, op):
    a = ["--op", op]
    if args.quick:
        a.append("--quick")
    sizes = args.sizes or (QUICK_SIZES if args.quick else None)
    if sizes:
        a += ["--sizes", ",".join(str(s) for s in sizes)]
    else:
        a += ["--min-bytes", "8", "--max-bytes", str(args.max_bytes)]
    return a


def launch(run, argv_per_rank, env_per_rank, timeout, logpath):
    """Starts the processes, streams rank 0's stdout, kills everything on a
    timeout or soon after one process fails (its peers may be left waiting)."""
    procs = []
    logf = open(logpath, "w")
    try:
        for rank, (argv, env) in enumerate(zip(argv_per_rank, env_per_rank)):
            procs.append(subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE if rank == 0 else logf, stderr=logf,
                stdin=subprocess.DEVNULL, text=True, start_new_session=True))
        lines = []

        def reader():
            for line in procs[0].stdout:
                lines.append(line)
                logf.write(line)
                logf.flush()
                if line.startswith("RESULT,"):
                    f = line.strip().split(",")
                    log(f"  {run.lib:8s} {run.op:13s} n={run.nranks} {fmt_bytes(int(f[4])):>9s}  "
                        f"{float(f[8]):12.1f} us  busbw {float(f[10]):8.3f} GB/s  {f[11]}")

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        start = time.monotonic()
        run.started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        failed_at = None
        status = None
        while True:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes):
                bad = [c for c in codes if c != 0]
                # 3: the sweep ran to its end but some result was wrong (bench_core.h).
                status = ("ok" if not bad else "wrong results" if all(c == 3 for c in bad)
                          else f"exit status {bad[0]}")
                break
            if failed_at is None and any(c not in (None, 0) for c in codes):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > 10:
                status = "a rank failed; the others were stopped"
                break
            if time.monotonic() - start > timeout:
                status = f"timed out after {timeout} s"
                break
            time.sleep(0.1)
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 9)
                except ProcessLookupError:
                    pass
                p.wait()
        t.join(timeout=5)
        run.seconds = time.monotonic() - start
        return status, lines
    finally:
        logf.close()


def parse(run, lines):
    for line in lines:
        if line.startswith("# lib=") and 'version="' in line:
            run.version = line.split('version="', 1)[1].split('"', 1)[0]
        elif line.startswith("RESULT,"):
            f = line.strip().split(",")
            run.results.append({
                "lib": f[1], "op": f[2], "nranks": int(f[3]), "bytes": int(f[4]), "count": int(f[5]),
                "warmup": int(f[6]), "iters": int(f[7]), "time_us": float(f[8]), "algbw": float(f[9]),
                "busbw": float(f[10]), "check": f[11], "wrong": int(float(f[12]))})


def round_trip_ns(exe_dir):
    """The machine's state now: a cache line's round trip between two CPUs
    (core_round_trip.cc), or None where it cannot be measured."""
    exe = exe_dir / "compare_round_trip"
    try:
        out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10).stdout
        return float(out.strip().split(",")[1])
    except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
        return None


def run_one(args, exe_dir, lib, op, nranks, state, pass_index=0):
    run = Run(lib, op, nranks)
    run.round_trip_ns = round_trip_ns(exe_dir)
    if run.round_trip_ns is not None:
        log(f"  {lib} {op} n={nranks}: a cache line's round trip between two CPUs now {run.round_trip_ns:.0f} ns")
    exe = str(exe_dir / f"compare_{lib}")
    bargs = bench_args(args, op) + (["--register"] if lib == "chorus" and args.register else [])
    suffix = f"-pass{pass_index + 1}" if args.repeat > 1 else ""
    logpath = args.out / "logs" / f"{lib}-{op}-n{nranks}{suffix}.log"
    base = dict(os.environ)
    if lib in ("chorus", "gloo"):
        extra = {"WORLD_SIZE": str(nranks), "MASTER_ADDR": "127.0.0.1"}
        tmp = None
        if lib == "chorus":
            port = free_port()
            # NCCL_COMM_ID: every rank derives the same id; rank 0 serves the root.
            extra.update({"MASTER_PORT": str(port), "NCCL_COMM_ID": f"127.0.0.1:{port}",
                          "CHORUS_DEVICE": "host"})
        else:
            tmp = tempfile.mkdtemp(prefix="compare-gloo-")
            extra["COMPARE_GLOO_STORE"] = tmp
        envs = [dict(base, **extra, RANK=str(r), LOCAL_RANK=str(r)) for r in range(nranks)]
        run.env = extra
        run.command = " ".join(f"{k}={v}" for k, v in extra.items()) + f" RANK=0..{nranks - 1} {exe} " + " ".join(bargs)
        status, lines = launch(run, [[exe, *bargs]] * nranks, envs, args.run_timeout, logpath)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        if lib == "openmpi":
            launcher = ["mpirun.openmpi", "--allow-run-as-root", "--oversubscribe", "-np", str(nranks)]
        else:
            launcher = ["mpirun.mpich", "-np", str(nranks)]
        extra = dict(state.get("ompi_env", {})) if lib == "openmpi" else {}
        run.env = extra
        run.command = " ".join(f"{k}={v}" for k, v in extra.items()) + (" " if extra else "") + \
            " ".join([*launcher, exe, *bargs])
        status, lines = launch(run, [[*launcher, exe, *bargs]], [dict(base, **extra)], args.run_timeout, logpath)
        text = logpath.read_text(errors="replace")
        # Open MPI's shared-memory transport uses CMA (process_vm_readv), which
        # some containers forbid: then, and only then, run without it.
        if (lib == "openmpi" and status != "ok" and "ompi_env" not in state
                and any(k in text for k in ("process_vm_readv", "single_copy", "CMA"))):
            log("  openmpi failed in its single-copy mechanism; again with "
                "OMPI_MCA_btl_vader_single_copy_mechanism=none")
            state["ompi_env"] = {"OMPI_MCA_btl_vader_single_copy_mechanism": "none"}
            return run_one(args, exe_dir, lib, op, nranks, state, pass_index)
    run.log = str(logpath)
    run.status = status
    parse(run, lines)
    for r in run.results:
        r["round_trip_ns"] = run.round_trip_ns
    if status != "ok":
        tail = logpath.read_text(errors="replace").strip().splitlines()[-6:]
        log(f"  {lib} {op} n={nranks}: {status}; see {logpath}")
        for line in tail:
            log(f"    | {line}")
    return run


def median_run(passes, pick="median"):
    """One Run of a library's passes at one collective and rank count: at
    each size the pass with the median time (the upper one of an even
    count), or with pick "best" the fastest, with the fastest and slowest
    times beside it. A wrong result in any pass is the size's result."""
    if len(passes) == 1:
        return passes[0]
    first = passes[0]
    run = Run(first.lib, first.op, first.nranks)
    run.version, run.command, run.env = first.version, first.command, first.env
    run.seconds = sum(p.seconds for p in passes)
    # A pass that crashed or timed out says more than one with wrong results.
    failed = sorted((p for p in passes if p.status != "ok"), key=lambda p: p.status == "wrong results")
    run.status = failed[0].status if failed else "ok"
    run.log = (failed[0] if failed else first).log
    by_size = {}
    for p in passes:
        for r in p.results:
            by_size.setdefault(r["bytes"], []).append((r, p))
    for size in sorted(by_size):
        rows = by_size[size]
        wrong = [(r, p) for r, p in rows if r["check"] != "ok"]
        if wrong and run.wrong_log is None:
            run.wrong_log = wrong[0][1].log
        ordered = sorted((r for r, _ in rows), key=lambda r: r["time_us"])
        fastest, median, slowest = ordered[0], ordered[len(rows) // 2], ordered[-1]
        chosen = wrong[0][0] if wrong else fastest if pick == "best" else median
        run.results.append(dict(chosen, passes=len(rows), min_us=fastest["time_us"],
                                max_us=slowest["time_us"], median_us=median["time_us"]))
    return run


# How far (a factor either way) a pass's machine state, the round trip
# measured before it, may be from the typical one before the pass is set
# aside (see passes_in_typical_state).
STATE_TOLERANCE = 1.5


def passes_in_typical_state(passes):
    """The passes of each library (a dict) that met the machine in its
    typical state, how many each had elsewhere, and notes on libraries
    that had none there. A VM whose two vCPUs now and then share a core's
    caches runs a latency-bound pass up to twice as fast (a round trip of
    50 ns against 150): the libraries are compared in the state most passes
    met, the median round trip of all libraries' passes together. Only
    timings are set aside: a pass that failed or computed a wrong result
    stays, as it is the size's result. A library with no pass in the
    typical state keeps all, and a note says so."""
    trips = sorted(p.round_trip_ns for ps in passes.values() for p in ps if p.round_trip_ns)
    if not trips:
        return passes, {lib: 0 for lib in passes}, []
    typical = trips[len(trips) // 2]

    def usable(p):
        return (p.status != "ok" or p.round_trip_ns is None or
                typical / STATE_TOLERANCE <= p.round_trip_ns <= typical * STATE_TOLERANCE)

    kept, aside, notes = {}, {}, []
    for lib, ps in passes.items():
        kept[lib] = [p for p in ps if usable(p)]
        if not kept[lib]:
            kept[lib] = ps
            first = ps[0]
            notes.append(f"  {LIB_TITLES[lib]} {first.op} n={first.nranks}: every pass met another machine state "
                         f"(round trips {', '.join(f'{p.round_trip_ns:.0f}' for p in ps)} ns, typical "
                         f"{typical:.0f}); its numbers are from there")
        aside[lib] = len(ps) - len(kept[lib])
        for k, p in enumerate(ps):
            if all(p is not q for q in kept[lib]):
                log(f"  {lib} {p.op} n={p.nranks}: pass {k + 1} set aside: round trip {p.round_trip_ns:.0f} ns, "
                    f"typical {typical:.0f} ns")
    return kept, aside, notes


def run_collective(args, exe_dir, op, n, state):
    """Every library's run of one collective at one rank count, repeated
    --repeat times: the libraries take turns, so that a slow drift of the
    machine does not favour one of them, and the order rotates from pass to
    pass, so that none always runs first. Returns (one median Run per
    library, of its passes in the machine's typical state, and every pass's
    Run; `state["state_notes"]` gathers passes_in_typical_state's notes)."""
    passes = {lib: [] for lib in args.libs}
    for k in range(args.repeat):
        shift = k % len(args.libs)
        for lib in args.libs[shift:] + args.libs[:shift]:
            passes[lib].append(run_one(args, exe_dir, lib, op, n, state, k))
    kept, aside, notes = passes_in_typical_state(passes)
    state.setdefault("state_notes", []).extend(notes)
    chosen = []
    for lib in args.libs:
        run = median_run(kept[lib], args.pick)
        for r in run.results:
            r["set_aside"] = aside[lib]
        chosen.append(run)
    return chosen, [r for lib in args.libs for r in passes[lib]]


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def machine_info():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    versions = {}
    for pkg in VERSION_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout:
            versions[pkg] = r.stdout
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "kernel": platform.release(),
            "os": platform.platform(), "packages": versions}


# ----------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="11 sizes, fewer iterations (about 3 min on 2 cores)")
    p.add_argument("--libs", default=",".join(LIBS), help="comma list of %(default)s")
    p.add_argument("--ops", default=",".join(OPS), help="comma list of %(default)s")
    p.add_argument("--ranks", default="2,4", help="comma list of rank counts (default %(default)s)")
    p.add_argument("--max-bytes", type=int, default=128 * MiB, help="largest size (default 128 MiB)")
    p.add_argument("--sizes", default="", help="comma list of sizes in bytes instead of the default sweep")
    p.add_argument("--build-dir", default=str(ROOT / "build-release"), help="CMake build folder (default %(default)s)")
    p.add_argument("--out", default="", help="output folder (default BUILD_DIR/compare)")
    p.add_argument("--run-timeout", type=int, default=300, help="seconds one program run may take (default %(default)s)")
    p.add_argument("--no-build", action="store_true", help="use the programs already built")
    p.add_argument("--repeat", type=int, default=1,
                   help="passes per collective and rank count, libraries taking turns; each size reports "
                        "the pass with the median time (default %(default)s; 3 takes about 3 times as long)")
    p.add_argument("--pick", choices=["median", "best"], default="median",
                   help="with --repeat: report each size's median pass or its fastest (default %(default)s)")
    p.add_argument("--register", action="store_true",
                   help="Chorus runs on ncclMemAlloc buffers registered with its communicator (as "
                        "nccl-tests' -R 1), which peers then reach in place; the other libraries as always")
    args = p.parse_args()

    args.libs = [x for x in args.libs.split(",") if x]
    if args.register:
        LIB_TITLES["chorus"] = "Chorus (registered)"
    args.ops = [x for x in args.ops.split(",") if x]
    args.ranks = [int(x) for x in args.ranks.split(",") if x]
    if args.repeat < 1:
        sys.exit("compare: --repeat must be at least 1")
    args.sizes = [int(x, 0) for x in args.sizes.split(",") if x]
    for lib in args.libs:
        if lib not in LIBS:
            sys.exit(f"compare: unknown library {lib}; choose from {','.join(LIBS)}")
    for op in args.ops:
        if op not in OPS:
            sys.exit(f"compare: unknown collective {op}; choose from {','.join(OPS)}")
    args.largest = max(args.sizes) if args.sizes else (max(QUICK_SIZES) if args.quick else args.max_bytes)
    args.build_dir = Path(args.build_dir).resolve()
    args.out = Path(args.out).resolve() if args.out else args.build_dir / "compare"
    (args.out / "logs").mkdir(parents=True, exist_ok=True)

    groups = ["plot"] + (["build"] if not args.no_build else []) + [l for l in args.libs if l in NEEDS]
    check_deps(groups)
    started = datetime.datetime.now().astimezone()
    load_before = loadavg()
    exe_dir = args.build_dir / "perf" / "compare"
    if not args.no_build:
        exe_dir = build(args, args.libs)
    for lib in args.libs:
        if not (exe_dir / f"compare_{lib}").exists():
            sys.exit(f"compare: {exe_dir / f'compare_{lib}'} is missing (build without --no-build)")

    machine = machine_info()
    log(f"compare: {machine['nproc']} cores ({machine['cpu']}), {machine['memory']}; "
        f"libraries {','.join(args.libs)}; collectives {','.join(args.ops)}; ranks {args.ranks}"
        f"{'; quick' if args.quick else ''}{f'; {args.repeat} passes' if args.repeat > 1 else ''}"
        f"; output in {args.out}")

    runs, every_pass, state = [], [], {}
    for n in args.ranks:
        for op in args.ops:
            medians, passes = run_collective(args, exe_dir, op, n, state)
            runs += medians
            every_pass += passes

    rows = [r for run in runs for r in run.results]
    for r in rows:
        r.setdefault("passes", 1)
        r.setdefault("min_us", r["time_us"])
        r.setdefault("max_us", r["time_us"])
        r.setdefault("median_us", r["time_us"])
        r.setdefault("set_aside", 0)
    with open(args.out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["lib", "op", "nranks", "bytes", "count", "warmup", "iters", "time_us",
                                          "algbw", "busbw", "check", "wrong", "passes", "min_us", "max_us",
                                          "median_us", "round_trip_ns", "set_aside"])
        w.writeheader()
        w.writerows(rows)
    command = " ".join([os.path.relpath(sys.argv[0], Path.cwd()) if Path(sys.argv[0]).exists() else sys.argv[0],
                        *sys.argv[1:]])
    table = make_table(args, runs, args.libs)
    bad = failures(runs, args.repeat)
    # Other work on the machine moves these numbers a lot on 2 cores: say how busy it was.
    load_after = loadavg()
    header = (f"Chorus side by side: host memory, float sum, root 0; {machine['nproc']} cores ({machine['cpu']})"
              f"{'; Chorus on registered ncclMemAlloc buffers (--register)' if args.register else ''}"
              f"{'; --quick' if args.quick else ''}"
              f"{f'; {args.pick} of {args.repeat} passes' if args.repeat > 1 else ''}"
              f"; load average {load_before} before, {load_after} after")
    slower = slower_sizes(runs, args.repeat, args.pick)
    state_notes = state.get("state_notes", [])
    if state_notes:
        state_notes = ["Compared in another machine state than the other libraries:", *state_notes]
    text = "\n".join([header, "", table, "", table_notes()] + (["", *slower] if slower else []) +
                     (["", *state_notes] if state_notes else []) +
                     (["", "PROBLEMS (these numbers are not valid):"] + bad if bad else [])) + "\n"
    (args.out / "table.txt").write_text(text)
    png = plot(args, runs, args.libs)
    meta = {
        "command": command, "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine, "loadavg_before": load_before, "loadavg_after": load_after, "quick": args.quick, "register": args.register, "repeat": args.repeat, "pick": args.pick, "ranks": args.ranks, "ops": args.ops,
        "inherited_env": {k: v for k, v in os.environ.items()
                          if k.startswith(("NCCL_", "CHORUS_", "OMPI_", "MPIR_", "MPICH_", "UCX_", "GLOO_"))},
        "runs": [{"lib": r.lib, "op": r.op, "nranks": r.nranks, "version": r.version, "status": r.status,
                  "command": r.command, "env": r.env, "started": r.started, "round_trip_ns": r.round_trip_ns,
                  "seconds": round(r.seconds, 1), "log": r.log}
                 for r in every_pass],
    }
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")

    print()
    print(text, end="")
    print(f"\nraw results: {args.out / 'results.csv'} (and results.json with versions and commands)")
    if png:
        print(f"curves:      {png}")
    print(f"took {(datetime.datetime.now().astimezone() - started).total_seconds() / 60:.1f} min")
    # A peer's wrong result is reported above; only Chorus' own failures fail the command.
    return 1 if any(run.lib == "chorus" and (run.status != "ok" or any(r["check"] != "ok" for r in run.results))
                    for run in every_pass) else 0


if __name__ == "__main__":
    sys.exit(main())
