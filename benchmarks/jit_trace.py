"""Tracing and call-overhead benchmark of ``gt.trace`` / ``gt.jit`` (issue 13: tracing frees as it goes).

Run from the repository root::

    python -m benchmarks.jit_trace               # full run (about a minute)
    python -m benchmarks.jit_trace --quick       # smoke run (a few seconds)
    python -m benchmarks.jit_trace --json out.json

Two measurements, each of the foundation benchmark's 200-op chain (sin, tanh, *1.01, +c, 50 times):

1. ``gt.trace(gt.grad(f), x)`` on 1,000,000 float64 elements against one eager ``gt.grad(f)(x)``: wall
   time and peak traced memory (``tracemalloc``, which counts NumPy's allocations). Targets: trace time
   <= 1.2x eager, trace peak <= eager peak. Run alternately, medians of the repeats.
2. On 16 elements (per-op overhead), the time of one call of ``gt.jit(gt.grad(f))`` against replaying
   the traced graph (``g(x)``) and eager ``gt.grad(f)(x)``, per op of the chain.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc

import numpy as np

import gradtape as gt
from benchmarks.foundation import interleaved, machine_info
from benchmarks.graph_replay import chain

TIME_TARGET = 1.2


def _data(n):
    rng = np.random.default_rng(0)
    return gt.asarray(rng.uniform(-2.0, 2.0, n)), gt.asarray(rng.uniform(-0.5, 0.5, n))


def _measure(fn):
    """(seconds, peak traced bytes) of one call of fn."""
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return dt, peak


def _timed(fn):
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    del out
    return dt


def trace_vs_eager(n, repeats):
    """Time (without tracemalloc, which slows allocation-heavy code) and peak memory (with it), alternately."""
    x, c = _data(n)
    f = chain(c)
    runs = {"eager": lambda: gt.grad(f)(x), "trace": lambda: gt.trace(gt.grad(f), x)}
    times = {k: [] for k in runs}
    peaks = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(_timed(fn))
        for k, fn in runs.items():
            peaks[k].append(_measure(fn)[1])
    t = {k: statistics.median(v) for k, v in times.items()}
    p = {k: statistics.median(v) for k, v in peaks.items()}
    ratios = [a / b for a, b in zip(times["trace"], times["eager"])]
    return {"n": n, "seconds": t, "peak_bytes": p, "time_ratio": statistics.median(ratios),
            "memory_ratio": p["trace"] / p["eager"]}


def call_overhead(n, budget):
    """Seconds per call of eager grad, the replayed trace, and gt.jit (replay lowering and the default)."""
    x, c = _data(n)
    f = chain(c)
    g = gt.trace(gt.grad(f), x)
    jf = gt.jit(gt.grad(f))
    fns = {"eager": lambda: gt.grad(f)(x), "replay": lambda: g(x), "jit": lambda: jf(x)}
    ref = gt.to_numpy(fns["eager"]())
    for k, fn in fns.items():
        if not np.allclose(gt.to_numpy(fn()), ref, rtol=1e-12, atol=1e-12):
            raise SystemExit(f"jit_trace: {k} disagrees with eager")
    times, _ = interleaved(fns, 5, budget)
    out = {k: statistics.median(v) for k, v in times.items()}
    return {"n": n, "seconds_per_call": out, "jit_kind": jf.lower(x).kind}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke run)")
    ap.add_argument("--n", type=int, default=1_000_000, help="elements for the trace measurement")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    args = ap.parse_args(argv)
    n, repeats, budget = (20_000, 1, 0.05) if args.quick else (args.n, 3, 0.5)
    tr = trace_vs_eager(n, repeats)
    ov = call_overhead(16, budget)
    info = machine_info()
    ok_t, ok_m = tr["time_ratio"] <= TIME_TARGET, tr["memory_ratio"] <= 1.0
    print(f"## gradtape trace / jit benchmark{' (--quick)' if args.quick else ''}")
    print()
    print(f"- gradtape {info['gradtape']} at commit {info['gradtape_commit']}; numpy {info['numpy']}")
    print(f"- machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs, Python {info['python']}")
    print()
    print(f"### gt.trace(gt.grad(f), x) of the 200-op chain, {n:,} float64 elements (medians of {repeats})")
    print()
    print("| | time | peak traced memory |")
    print("|---|---|---|")
    for k, label in (("eager", "eager gt.grad(f)(x)"), ("trace", "gt.trace(gt.grad(f), x)")):
        print(f"| {label} | {tr['seconds'][k]:.3f} s | {tr['peak_bytes'][k] / 2**20:.1f} MiB |")
    print()
    print(f"trace / eager: time {tr['time_ratio']:.2f}x (target <= {TIME_TARGET}x: {'PASS' if ok_t else 'FAIL'}), "
          f"peak memory {tr['memory_ratio']:.2f}x (target <= 1: {'PASS' if ok_m else 'FAIL'})")
    print()
    s = ov["seconds_per_call"]
    print("### one call of the chain's gradient, 16 elements (per op of the 400-op forward + backward)")
    print()
    print("| | per call | per op | / eager |")
    print("|---|---|---|---|")
    for k, label in (("eager", "eager gt.grad(f)(x)"), ("replay", "gt.trace(gt.grad(f), x) replayed"),
                     ("jit", f"gt.jit(gt.grad(f))(x) ({ov['jit_kind']})")):
        print(f"| {label} | {s[k] * 1e6:.1f} us | {s[k] * 1e6 / 400:.3f} us | {s[k] / s['eager']:.3f}x |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "trace": tr, "call": ov, "pass": {"time": ok_t, "memory": ok_m}}, fh,
                      indent=2)
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
