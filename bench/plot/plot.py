#!/usr/bin/python3
"""bench/plot/plot.py: pollux's benchmark results as PNG charts (issue 18).

    plot.py servers RESULTS.tsv OUT.png [--title T]
        bench/compare.sh's RESULTS_TSV (header of compare.sh): per mode and
        server, msgs/s and server CPU per message with system and user time
        stacked; 95% intervals as error bars where the file has lo/hi rows,
        and each paired ratio row (B/A) written over B's bars.
    plot.py micro OUT.png (--table TABLE.tsv | --json LABEL=BENCH.json ...)
                  [--filter REGEX] [--log] [--title T]
        a micro-benchmark comparison: ns per item for each series side by
        side, and the second series over the first. TABLE.tsv is a header
        row `benchmark SERIES_A SERIES_B [ratio] [target]` then one row per
        benchmark ('#' lines are comments); a 'ratio' column is drawn as
        given (e.g. the median of paired rounds), else B/A is computed; a
        'target' column marks a bound on the ratio. --json reads Google
        Benchmark `--benchmark_format=json` (or --benchmark_out) files, one
        series each, CPU time per item: a benchmark's "median" aggregate
        when the file has one, else the mean of its iterations.
    plot.py latency OUT.png LABEL=DEMO_OUTPUT.txt ... [--title T]
        //examples:demo's printed summary: its `latency pN` and `latency max`
        lines, one group of bars per file.
    plot.py all [--data DIR] [--out DIR]
        every chart BENCHMARKS.md shows, from the sample data committed in
        bench/plot/data/ (figures transcribed from BENCHMARKS.md's tables,
        so the PNGs regenerate without re-measuring) into docs/charts/.

Every PNG is 800x450 pixels, palette-quantized and without a timestamp or
version stamp, so regenerating from the same data and matplotlib gives the
same bytes and the diff of docs/charts/ shows only real changes. Needs
python3-matplotlib (Debian's; bench/plot/regenerate.sh installs it).
Exit status: 0 when every requested chart was written; 2 on bad input.
"""
import argparse
import csv
import io
import json
import math
import os
import re
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")  # no display: CI machines and Bazel's sandbox have none
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 100  # 800x450 px: readable inline on GitHub

# compare.sh's server names, as BENCHMARKS.md's tables name them.
SERVER_LABELS = {
    "raw": "raw liburing",
    "pollux": "pollux io_uring",
    "raw_epoll": "raw epoll",
    "pollux_epoll": "pollux epoll",
    "pollux_mt": "multi_thread",
    "pollux_tpc": "thread_per_core",
    "base": "before",
    "base_mt": "before mt",
    "base_tpc": "before tpc",
}
# Baselines grey, pollux blues: the eye finds "ours" against "theirs" first.
SERVER_COLOURS = {
    "raw": "#8c8c8c",
    "raw_epoll": "#bdbdbd",
    "pollux": "#1f5fa8",
    "pollux_epoll": "#6fa8dc",
    "pollux_mt": "#1f5fa8",
    "pollux_tpc": "#6fa8dc",
    "base": "#bdbdbd",
    "base_mt": "#bdbdbd",
    "base_tpc": "#d9d9d9",
}
SERIES_COLOURS = ["#8c8c8c", "#1f5fa8", "#6fa8dc", "#e69138"]


def fail(msg):
    print(f"plot.py: {msg}", file=sys.stderr)
    sys.exit(2)


def read_tsv(path):
    """Rows of a tab-separated file as dicts, '#' lines skipped."""
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("".join(lines)), delimiter="\t"))


def num(s):
    """A TSV cell as a float; empty (not measured) is None."""
    if s is None or s.strip() == "":
        return None
    return float(s)


def save(fig, out):
    """800x450, palette PNG, no metadata that changes between runs."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    try:
        from PIL import Image  # python3-pil: a dependency of Debian's matplotlib
    except ImportError:  # still a valid chart, only larger
        with open(out, "wb") as f:
            f.write(buf.getvalue())
        return
    # Flat colours and antialiased text fit in 64 colours; a third of the size.
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    img = img.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(out, format="png", optimize=True)


def figure(ncols, title, sharey=False):
    fig, axes = plt.subplots(1, ncols, figsize=(WIDTH_IN, HEIGHT_IN), sharey=sharey)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig, (axes if ncols > 1 else [axes])


def style(ax):
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=8)


# --- servers: compare.sh's RESULTS_TSV -------------------------------------

def plot_servers(tsv, out, title):
    rows = read_tsv(tsv)
    if not rows or "kind" not in rows[0]:
        fail(f"{tsv}: not a compare.sh RESULTS_TSV (no 'kind' column)")
    by = {}  # (kind, mode, server) -> row
    modes, servers = [], []
    for r in rows:
        by[(r["kind"], r["mode"], r["server"])] = r
        if r["kind"] == "median":
            if r["mode"] not in modes:
                modes.append(r["mode"])
            if r["server"] not in servers:
                servers.append(r["server"])
    if not servers:
        fail(f"{tsv}: no 'median' rows")
    # A pair's paired ratio goes over its second server's bars; compare.sh
    # names the row "B/A".
    paired = {}
    for (kind, mode, server), r in by.items():
        if kind == "paired" and "/" in server:
            paired[(mode, server.split("/")[0])] = (server.split("/")[1], r)

    fig, (ax_rate, ax_cpu) = figure(2, title)
    n = len(servers)
    width = 0.8 / n
    for i, server in enumerate(servers):
        xs, rate, rate_err, sys_, user, cpu_err = [], [], [[], []], [], [], [[], []]
        for m, mode in enumerate(modes):
            med = by.get(("median", mode, server))
            if med is None:  # e.g. raw_epoll has no http server
                continue
            # Centred among the servers this mode has, so no gap is left.
            present = [sv for sv in servers if ("median", mode, sv) in by]
            x = m + (present.index(server) - (len(present) - 1) / 2) * width
            xs.append(x)
            lo, hi = by.get(("lo", mode, server), {}), by.get(("hi", mode, server), {})
            # msgs/s drawn in thousands: short tick labels.
            for val_key, scale, vals, err in (("msgs_per_sec", 1e-3, rate, rate_err),
                                              ("cpu_us_per_msg", 1.0, None, cpu_err)):
                v = num(med[val_key]) * scale
                if vals is not None:
                    vals.append(v)
                a, b = num(lo.get(val_key)), num(hi.get(val_key))
                err[0].append(v - a * scale if a is not None else 0)
                err[1].append(b * scale - v if b is not None else 0)
            s, u = num(med["sys_us_per_msg"]), num(med["user_us_per_msg"]) or 0.0
            if s is None:  # no split measured: the whole bar is the total
                s, u = num(med["cpu_us_per_msg"]), 0.0
            sys_.append(s)
            user.append(u)
            # The paired ratio, B/A of msgs/s and of CPU per message.
            pr = paired.get((mode, server))
            if pr:
                first, r = pr
                ax_rate.annotate(f"{num(r['msgs_per_sec']):.2f}x", (x, rate[-1] + rate_err[1][-1]),
                                 ha="center", va="bottom", fontsize=7, xytext=(0, 4),
                                 textcoords="offset points")
                ax_cpu.annotate(f"{num(r['cpu_us_per_msg']):.2f}x", (x, s + u + cpu_err[1][-1]),
                                ha="center", va="bottom", fontsize=7, xytext=(0, 4),
                                textcoords="offset points")
        colour = SERVER_COLOURS.get(server, SERIES_COLOURS[i % len(SERIES_COLOURS)])
        label = SERVER_LABELS.get(server, server)
        has_err = lambda e: any(e[0]) or any(e[1])
        ax_rate.bar(xs, rate, width, color=colour, label=label,
                    yerr=rate_err if has_err(rate_err) else None, capsize=2, error_kw={"lw": 0.8})
        ax_cpu.bar(xs, sys_, width, color=colour, label=label)
        # User time on top, hatched in black: the part that is user space's
        # (pollux's or the loop's) against the kernel's TCP stack below.
        ax_cpu.bar(xs, user, width, bottom=sys_, color="#222222", hatch="////",
                   edgecolor=colour, linewidth=0,
                   yerr=cpu_err if has_err(cpu_err) else None, capsize=2, error_kw={"lw": 0.8})
    for ax, ylabel in ((ax_rate, "thousand msgs/s (median)"),
                       (ax_cpu, "server CPU µs per message (median)")):
        style(ax)
        ax.set_xticks(range(len(modes)))
        ax.set_xticklabels(modes, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.margins(y=0.12)
    ax_rate.set_title("msgs/s (labels: paired ratio to its baseline)", fontsize=8)
    ax_cpu.set_title("server CPU per message (labels: the same ratio)", fontsize=8)
    # Under the panels, one row: inside an axes it would cover bars.
    handles, labels = ax_rate.get_legend_handles_labels()
    handles.append(Patch(facecolor="#222222", hatch="////", edgecolor="#8c8c8c", linewidth=0))
    labels.append("user time (the rest: system)")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, out)


# --- micro: tables and Google Benchmark JSON -------------------------------

TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def read_benchmark_json(path):
    """{benchmark name: CPU ns per item}: the "median" aggregate when the
    file has aggregates (repetitions), else the mean over iterations."""
    with open(path) as f:
        data = json.load(f)
    medians, iters, order = {}, {}, []
    for b in data.get("benchmarks", []):
        name = b.get("run_name") or b["name"]
        if name not in order:  # the file's order, which is the source's
            order.append(name)
        ns = b["cpu_time"] * TIME_UNIT_NS[b.get("time_unit", "ns")]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = ns
        else:
            iters.setdefault(name, []).append(ns)
    return {name: medians[name] if name in medians else sum(iters[name]) / len(iters[name])
            for name in order if name in medians or name in iters}


def micro_from_json(specs, pattern):
    """A micro table (names, series labels, values, ratios, targets) from
    LABEL=FILE.json specs; benchmarks every file has, in the first's order."""
    labels, maps = [], []
    for spec in specs:
        if "=" not in spec:
            fail(f"--json wants LABEL=FILE.json, not '{spec}'")
        label, path = spec.split("=", 1)
        labels.append(label)
        maps.append(read_benchmark_json(path))
    names = [n for n in maps[0] if all(n in m for m in maps[1:])]
    if pattern:
        names = [n for n in names if re.search(pattern, n)]
    if not names:
        fail("no benchmark is in every --json file (and matches --filter)")
    return names, labels, [[m[n] for m in maps] for n in names], None, None


def micro_from_table(path, pattern):
    rows = read_tsv(path)
    if not rows:
        fail(f"{path}: no rows")
    cols = list(rows[0].keys())
    labels = [c for c in cols[1:] if c not in ("ratio", "target")]
    names = [r[cols[0]] for r in rows]
    keep = [i for i, n in enumerate(names) if not pattern or re.search(pattern, n)]
    vals = [[num(rows[i][c]) for c in labels] for i in keep]
    ratios = [num(rows[i].get("ratio")) for i in keep] if "ratio" in cols else None
    targets = [num(rows[i].get("target")) for i in keep] if "target" in cols else None
    return [names[i] for i in keep], labels, vals, ratios, targets


def plot_micro(out, title, table=None, json_specs=None, pattern=None, log=False):
    if table:
        names, labels, vals, ratios, targets = micro_from_table(table, pattern)
    else:
        names, labels, vals, ratios, targets = micro_from_json(json_specs, pattern)
    if len(labels) < 2:
        fail("a micro chart needs two series to compare")
    if ratios is None:
        ratios = [v[1] / v[0] if v[0] else float("nan") for v in vals]
    fig, (ax_ns, ax_ratio) = figure(2, title, sharey=True)
    # Horizontal bars: benchmark names are long; top row first, as in the table.
    ys = list(range(len(names)))[::-1]
    k = len(labels)
    h = 0.8 / k
    for j, label in enumerate(labels):
        ax_ns.barh([y + ((k - 1) / 2 - j) * h for y in ys], [v[j] for v in vals], h,
                   color=SERIES_COLOURS[j % len(SERIES_COLOURS)], label=label)
    if log:
        ax_ns.set_xscale("log")
    ax_ns.set_xlabel("ns per item (CPU time, median)", fontsize=8)
    ax_ns.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1), ncol=k, frameon=False)
    wrapped = [textwrap.fill(n.replace("`", ""), 30) for n in names]
    ax_ns.set_yticks(ys)
    ax_ns.set_yticklabels(wrapped, fontsize=7)
    # Ratio: below 1 the second series is faster, in blue; above, grey.
    colours = ["#1f5fa8" if r <= 1 else "#8c8c8c" for r in ratios]
    ax_ratio.barh(ys, ratios, 0.6, color=colours)
    ax_ratio.axvline(1.0, color="black", lw=0.8)
    for y, r in zip(ys, ratios):
        # Right of the bar and of the 1.0 line, whichever ends later.
        ax_ratio.annotate(f"{r:.2f}", (max(r, 1.0), y), xytext=(3, 0), textcoords="offset points",
                          va="center", fontsize=7)
    if targets and any(t is not None for t in targets):
        for y, t in zip(ys, targets):
            if t is not None:
                ax_ratio.plot([t, t], [y - 0.4, y + 0.4], color="#cc0000", lw=1.5)
        ax_ratio.plot([], [], color="#cc0000", lw=1.5, label="target (at most)")
        ax_ratio.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1), frameon=False)
    ax_ratio.set_xlim(0, max(1.2, max(ratios) * 1.15))
    ax_ratio.set_xlabel(f"{labels[1]} / {labels[0]}", fontsize=8)
    for ax in (ax_ns, ax_ratio):
        style(ax)
    fig.tight_layout()
    save(fig, out)


# --- latency: //examples:demo's summary ------------------------------------

LATENCY_LINE = re.compile(r"^\s*latency\s+(p\d+(?:\.\d+)?|max)\s+([\d.]+)\s*(µs|us|ms|ns)\s*$")
LATENCY_UNIT_US = {"µs": 1.0, "us": 1.0, "ms": 1e3, "ns": 1e-3}


def read_demo(path):
    """[(percentile name, µs)] from the demo's summary, in printed order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = LATENCY_LINE.match(line)
            if m:
                out.append((m.group(1), float(m.group(2)) * LATENCY_UNIT_US[m.group(3)]))
    if not out:
        fail(f"{path}: no 'latency pN ... µs' lines (is it //examples:demo's output?)")
    return out


def plot_latency(out, title, specs):
    series = []
    for spec in specs:
        label, path = spec.split("=", 1) if "=" in spec else (os.path.basename(spec), spec)
        series.append((label, read_demo(path)))
    names = [n for n, _ in series[0][1]]
    fig, (ax,) = figure(1, title)
    k = len(series)
    w = 0.8 / k
    for j, (label, points) in enumerate(series):
        d = dict(points)
        xs = [i + (j - (k - 1) / 2) * w for i in range(len(names))]
        vals = [d.get(n, float("nan")) for n in names]
        ax.bar(xs, vals, w * 0.6, color=SERIES_COLOURS[(j + 1) % len(SERIES_COLOURS)], label=label)
        for x, v in zip(xs, vals):
            if not math.isnan(v):
                ax.annotate(f"{v:,.0f} µs", (x, v), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=9)
    ax.set_ylabel("round-trip latency, µs", fontsize=8)
    ax.margins(y=0.12)
    if k > 1:
        ax.legend(fontsize=8)
    style(ax)
    fig.tight_layout()
    save(fig, out)


# --- all: the charts BENCHMARKS.md shows ----------------------------------

def plot_all(data, out):
    j = lambda name: os.path.join(data, name)
    o = lambda name: os.path.join(out, name)
    plot_servers(j("one_thread_epoll.tsv"), o("one_thread_epoll.png"),
                 "one server thread: pollux against hand-written io_uring and epoll loops (echo)")
    plot_servers(j("threads2.tsv"), o("threads2.png"),
                 "two server threads: multi_thread(2), thread_per_core(2) against two liburing rings")
    plot_servers(j("seams_echo.tsv"), o("seams_echo.png"),
                 "echo server before the seams (af73619) and after")
    plot_micro(o("sync_vs_tokio.png"), "sync/: pollux against tokio, one task, uncontended",
               table=j("sync_vs_tokio.tsv"))
    plot_micro(o("seams_micro.png"), "micro-benchmarks before the seams (af73619) and after",
               table=j("seams_micro.tsv"), log=True)
    plot_latency(o("demo_latency.png"),
                 "//examples:demo round trips: 64 clients, 1-4096 B messages, 3 s",
                 ["io_uring=" + j("demo.txt")])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("servers")
    s.add_argument("tsv")
    s.add_argument("out")
    s.add_argument("--title", default="")
    m = sub.add_parser("micro")
    m.add_argument("out")
    m.add_argument("--table")
    m.add_argument("--json", action="append", default=[])
    m.add_argument("--filter")
    m.add_argument("--log", action="store_true", help="log scale for the ns panel")
    m.add_argument("--title", default="")
    lat = sub.add_parser("latency")
    lat.add_argument("out")
    lat.add_argument("demo_outputs", nargs="+", metavar="LABEL=FILE")
    lat.add_argument("--title", default="")
    a = sub.add_parser("all")
    a.add_argument("--data", default=os.path.join(HERE, "data"))
    a.add_argument("--out", default=os.path.join(REPO, "docs", "charts"))
    args = p.parse_args()
    if args.cmd == "servers":
        plot_servers(args.tsv, args.out, args.title)
    elif args.cmd == "micro":
        if bool(args.table) == bool(args.json):
            fail("micro wants either --table or --json (one per series)")
        plot_micro(args.out, args.title, args.table, args.json, args.filter, args.log)
    elif args.cmd == "latency":
        plot_latency(args.out, args.title, args.demo_outputs)
    else:
        plot_all(args.data, args.out)


if __name__ == "__main__":
    main()
