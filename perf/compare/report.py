"""The report of perf/compare/compare.py: the side-by-side table, its
notes, the list of problems, and the busbw-versus-size curves (gnuplot).
Everything here reads Runs that compare.py has filled; nothing runs a
benchmark."""

import os
import shutil
import subprocess

MiB = 1 << 20
LIB_TITLES = {"chorus": "Chorus", "openmpi": "Open MPI", "mpich": "MPICH", "gloo": "Gloo"}
TABLE_SIZES = [64 << 10, 1 * MiB, 16 * MiB, 128 * MiB]  # busbw columns of the table


def log(msg):
    print(msg, flush=True)


def fmt_bytes(b):
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1024)):
        if b >= size and b % size == 0:
            return f"{b // size} {unit}"
    return f"{b} B"


def lookup(runs):
    table = {}
    for run in runs:
        for r in run.results:
            table[(r["lib"], r["op"], r["nranks"], r["bytes"])] = r
    return table


def smallest(runs, lib, op, n):
    for run in runs:
        if (run.lib, run.op, run.nranks) == (lib, op, n) and run.results:
            return min(run.results, key=lambda r: r["bytes"])
    return None


def cell(r, key):
    """The printed value, or why there is none."""
    if r is None:
        return "-"
    if r["check"] != "ok":
        return "FAIL"
    v = r[key]
    if key == "time_us":
        return f"{v:.1f}" if v < 1000 else f"{v:.0f}"
    return f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def make_table(args, runs, libs):
    res = lookup(runs)
    status = {(run.lib, run.op, run.nranks): run.status for run in runs}
    peers = [lib for lib in libs if lib != "chorus"]
    head = ["collective", "ranks", "metric"] + [LIB_TITLES[lib] for lib in libs]
    if "chorus" in libs and peers:
        head.append("Chorus/best peer")
    rows = []
    for op in args.ops:
        for n in args.ranks:
            metrics = [("lat", None)] + [("bw", b) for b in TABLE_SIZES if b <= args.largest]
            for i, (kind, size) in enumerate(metrics):
                vals = {}
                for lib in libs:
                    r = smallest(runs, lib, op, n) if kind == "lat" else res.get((lib, op, n, size))
                    if r is None and status.get((lib, op, n), "ok") != "ok":
                        vals[lib] = ("ERR", None)
                    else:
                        v = cell(r, "time_us" if kind == "lat" else "busbw")
                        speed = None
                        if r is not None and r["check"] == "ok":
                            speed = 1.0 / r["time_us"] if kind == "lat" else r["busbw"]
                        vals[lib] = (v, speed)
                if kind == "lat":
                    first = min(args.sizes) if args.sizes else 8
                    label = ("lat 1 float/rank (us)" if op in ("allgather", "reducescatter")
                             and first < 4 * max(args.ranks) else f"lat {fmt_bytes(first)} (us)")
                else:
                    label = f"busbw {fmt_bytes(size)} (GB/s)"
                row = [op if i == 0 else "", str(n) if i == 0 else "", label] + [vals[lib][0] for lib in libs]
                if "chorus" in libs and peers:
                    best = max(((vals[p][1], p) for p in peers if vals[p][1]), default=None)
                    mine = vals["chorus"][1]
                    row.append(f"{mine / best[0]:.2f}x ({LIB_TITLES[best[1]]})" if best and mine else "n/a")
                rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    out = []

    def line(cells):
        parts = []
        for j, (c, w) in enumerate(zip(cells, widths)):
            parts.append(str(c).ljust(w) if j < 3 else str(c).rjust(w))
        return "  ".join(parts).rstrip()

    out.append(line(head))
    out.append("  ".join("-" * w for w in widths))
    for row in rows:
        if row[0] and len(out) > 2:
            out.append("")
        out.append(line(row))
    return "\n".join(out)


def table_notes():
    return ("lat: time of one operation at the smallest size (8 B; allgather and reducescatter: one float per\n"
            "rank, 8 B with 2 ranks and 16 B with 4). busbw in GB/s (1e9 B/s) as nccl-tests computes it.\n"
            "Chorus/best peer: Chorus' speed over the fastest peer's (busbw, or 1/latency): above 1 means\n"
            "Chorus is faster. FAIL: the result was wrong, the number is not shown. ERR: the run failed.")


def slower_sizes(runs, repeat=1, pick="median"):
    """The sizes, of all measured (the table shows five), at which a peer
    was faster than Chorus, slowest first, each with the fastest peer's
    time and, over several passes, both libraries' fastest and slowest."""
    res = lookup(runs)
    out = []
    for (lib, op, n, size), mine in res.items():
        if lib != "chorus" or mine["check"] != "ok":
            continue
        peers = [res.get((p, op, n, size)) for p in LIB_TITLES if p != "chorus"]
        peers = [r for r in peers if r is not None and r["check"] == "ok"]
        if not peers:
            continue
        best = min(peers, key=lambda r: r["time_us"])
        if best["time_us"] < mine["time_us"]:
            out.append((best["time_us"] / mine["time_us"], op, n, size, mine, best))
    if not out:
        return []

    def us(v):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"

    def timing(r):
        aside = f", {r['set_aside']} set aside" if r.get("set_aside") else ""
        spread = f" ({us(r['min_us'])}-{us(r['max_us'])}{aside})" if repeat > 1 else ""
        trip = r.get("round_trip_ns")
        return f"{us(r['time_us'])} us{spread}" + (f" [{trip:.0f} ns]" if trip is not None else "")

    what = (f"the {pick} of {repeat} passes, fastest-slowest in brackets, of those in the machine's typical "
            f"state" if repeat > 1 else "one pass")
    lines = [f"Sizes where a peer was faster than Chorus (Chorus' speed over the peer's; {what};",
             "[ns]: a cache line's round trip between two CPUs just before the pass shown, the machine's speed):"]
    for ratio, op, n, size, mine, best in sorted(out, key=lambda t: t[0]):
        lines.append(f"  {op:<13} n={n}  {fmt_bytes(size):>9}  {ratio:.2f}x  Chorus {timing(mine)}"
                     f"  {LIB_TITLES[best['lib']]} {timing(best)}")
    return lines


def failures(runs, repeat=1):
    out = []
    for run in runs:
        short = [r for r in run.results if r.get("passes", repeat) + r.get("set_aside", 0) < repeat]
        if short and run.status == "ok":
            sizes = ", ".join(f"{fmt_bytes(r['bytes'])} ({r['passes']})" for r in short)
            out.append(f"  !! FEWER PASSES   {run.lib} {run.op} n={run.nranks}: {sizes} of {repeat}")
        bad = [r for r in run.results if r["check"] != "ok"]
        if bad:
            sizes = ", ".join(f"{fmt_bytes(r['bytes'])} ({r['wrong']} wrong)" for r in bad)
            out.append(f"  !! WRONG RESULTS  {run.lib} {run.op} n={run.nranks}: {sizes}; "
                       f"details in {run.wrong_log or run.log}")
        if run.status not in ("ok", "wrong results"):
            out.append(f"  !! RUN FAILED     {run.lib} {run.op} n={run.nranks}: {run.status}; see {run.log}")
    return out


def plot(args, runs, libs):
    gp = shutil.which("gnuplot")
    if gp is None:
        log("compare: gnuplot not found; no PNG")
        return None
    data = args.out / "plotdata"
    data.mkdir(exist_ok=True)
    terms = subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True).stdout + \
        subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True).stderr
    term = "pngcairo size 1500,1900 font 'sans,10'" if "pngcairo" in terms else "png size 1500,1900"
    png = args.out / "busbw.png"
    colors = {"chorus": "#d62728", "openmpi": "#1f77b4", "mpich": "#2ca02c", "gloo": "#9467bd"}
    # A size is rounded up to one float per rank: 8 B of AllGather with 4 ranks is 16 B.
    right = max([args.largest] + [r["bytes"] for run in runs for r in run.results]) * 1.3
    tics = ", ".join(f'"{fmt_bytes(1 << p).replace(" ", "")}" {1 << p}' for p in range(3, 31, 3))
    lines = [f"set terminal {term}", f"set output '{png}'",
             f"set multiplot layout {len(args.ops)},{len(args.ranks)} title "
             f"'Chorus vs Open MPI, MPICH, Gloo: busbw (GB/s) vs size, host memory, {os.cpu_count()} cores"
             f"{' (quick)' if args.quick else ''}' font 'sans,13'",
             "set logscale x 2", "set grid", "set key top left", "set xlabel 'bytes'",
             "set ylabel 'busbw (GB/s)'", f"set xtics ({tics})", f"set xrange [6:{right:.0f}]",
             "set yrange [0:*]", "set style data linespoints"]
    for op in args.ops:
        for n in args.ranks:
            plots = []
            for lib in libs:
                rs = [r for run in runs if (run.lib, run.op, run.nranks) == (lib, op, n) for r in run.results]
                good = [r for r in rs if r["check"] == "ok"]
                if not good:
                    continue
                f = data / f"{lib}-{op}-n{n}.dat"
                f.write_text("".join(f"{r['bytes']} {r['busbw']}\n" for r in good))
                if not any(r["busbw"] > 0 for r in good):
                    continue  # nothing to draw above 0 (gnuplot rejects an all-zero plot)
                nbad = len(rs) - len(good)
                title = LIB_TITLES[lib] + (f" ({nbad} size{'s' if nbad > 1 else ''} FAIL)" if nbad else "")
                plots.append(f"'{f}' using 1:2 title '{title}' lw 2 pt 7 ps 0.6 lc rgb '{colors[lib]}'")
            lines.append(f"set title '{op}, {n} ranks'")
            lines.append("plot " + ", ".join(plots) if plots else "plot 0 notitle")
    lines.append("unset multiplot")
    script = args.out / "busbw.gp"
    script.write_text("\n".join(lines) + "\n")
    r = subprocess.run([gp, str(script)], capture_output=True, text=True)
    if r.returncode != 0:
        log("compare: gnuplot failed:\n" + r.stderr)
        return None
    return png


