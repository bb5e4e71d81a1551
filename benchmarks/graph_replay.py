"""Graph replay benchmark: a traced gradient graph replayed, against hand-written NumPy.

Run from the repository root::

    python -m benchmarks.graph_replay            # full run (about a minute)
    python -m benchmarks.graph_replay --quick    # CI smoke run (a few seconds)
    python -m benchmarks.graph_replay --json results.json

The case is the foundation benchmark's (a): the 200-op elementwise chain (sin,
tanh, *1.01, +c, 50 times) on 16 float64 elements, forward and reverse. The
gradient function ``gt.grad(f)`` is traced once with ``gt.trace`` and the
resulting graph replayed (``g(x)``: a straight-line function of NumPy calls,
no per-op dispatch), next to hand-written NumPy (``chain_numpy`` of the
foundation benchmark, which also returns the loss), ``gt.trace(gt.value_and_grad(f))``
replayed (loss and gradient, the like-for-like comparison) and eager gradtape.
All are checked equal first, then timed interleaved; a ratio is the median of
the per-repeat ratios (the ratio of the minima in parentheses). Target:
replay <= 1.5x hand-written NumPy (eager's target is 3.5x).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import gradtape as gt
from benchmarks.foundation import (CYCLES, MUL, N_OPS, _paired, _summary, chain_numpy, interleaved, machine_info,
                                   make_chain_gradtape)

TARGET = 1.5


def chain(c):
    """The chain as a gradtape function of x (c is captured: a constant of the traced graph)."""
    def f(x):
        for _ in range(CYCLES):
            x = gt.sin(x)
            x = gt.tanh(x)
            x = x * MUL
            x = x + c
        return gt.sum(x)
    return f


def setup(n):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2.0, 2.0, n)
    c = rng.uniform(-0.5, 0.5, n)
    f = chain(gt.asarray(c))
    x = gt.asarray(x0)
    t0 = time.perf_counter()
    g_grad = gt.trace(gt.grad(f), x)
    g_vg = gt.trace(gt.value_and_grad(f), x)
    trace_s = time.perf_counter() - t0
    g_grad(x)           # compile the replay plans (once per backend)
    g_vg(x)
    fns = {"numpy": lambda: chain_numpy(x0, c),
           "replay_grad": lambda: g_grad(x),
           "replay_value_and_grad": lambda: g_vg(x),
           "eager": make_chain_gradtape(x0, c)}
    # correctness first
    ref_loss, ref_g = fns["numpy"]()
    checks = {"replay_grad": (None, fns["replay_grad"]()), "replay_value_and_grad": fns["replay_value_and_grad"](),
              "eager": fns["eager"]()}
    for k, (loss, g) in checks.items():
        g = gt.to_numpy(g)
        if not (g.shape == ref_g.shape and np.allclose(g, ref_g, rtol=1e-12, atol=1e-12)
                and (loss is None or np.allclose(float(loss.item()), ref_loss, rtol=1e-12, atol=1e-9))):
            raise SystemExit(f"graph replay: {k} disagrees with hand-written NumPy (max |dg| "
                             f"{np.max(np.abs(g - ref_g))})")
    return fns, {"nodes_grad": len(g_grad), "nodes_value_and_grad": len(g_vg), "trace_seconds": trace_s}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, for CI smoke runs")
    ap.add_argument("--n", type=int, default=16, help="elements per array (default 16)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    args = ap.parse_args(argv)
    repeats, budget = (3, 0.05) if args.quick else (21, 0.2)
    fns, meta = setup(args.n)
    times, number = interleaved(fns, repeats, budget)
    scale = 1e6 / N_OPS
    s = {k: _summary(v, scale) for k, v in times.items()}
    ratios = {k: (_paired(times[k], times["numpy"]), s[k]["min"] / s["numpy"]["min"]) for k in fns}
    ok = ratios["replay_grad"][0] <= TARGET
    info = machine_info()
    print(f"## gradtape graph replay benchmark{' (--quick)' if args.quick else ''}")
    print()
    print(f"- gradtape {info['gradtape']} at commit {info['gradtape_commit']}; numpy {info['numpy']}")
    print(f"- machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs, Python {info['python']}")
    print(f"- case: {N_OPS}-op chain (sin, tanh, *{MUL}, +c) on {args.n} float64, forward + reverse; traced "
          f"graphs: gt.grad(f) {meta['nodes_grad']} nodes, gt.value_and_grad(f) {meta['nodes_value_and_grad']} "
          f"nodes (both traced in {meta['trace_seconds'] * 1e3:.0f} ms)")
    print(f"- statistic: medians over {repeats} interleaved repeats, per op of the chain; ratios are medians of "
          f"the per-repeat ratios to hand-written NumPy (ratio of the minima in parentheses)")
    print()
    labels = {"numpy": "hand-written NumPy (loss and gradient)", "replay_grad": "gt.trace(gt.grad(f), x) replayed",
              "replay_value_and_grad": "gt.trace(gt.value_and_grad(f), x) replayed",
              "eager": "eager gradtape (loss.backward())"}
    print("| implementation | time per op | / NumPy |")
    print("|---|---|---|")
    for k in fns:
        print(f"| {labels[k]} | {s[k]['median']:.3g} us | {ratios[k][0]:.2f}x (min {ratios[k][1]:.2f}x) |")
    print()
    print(f"replay of gt.grad(f) / hand-written NumPy: {ratios['replay_grad'][0]:.2f}x, target <= {TARGET}x: "
          f"{'PASS' if ok else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "n": args.n, "times_us_per_op": s, "calls_per_repeat": number,
                       "ratios_to_numpy": {k: {"median": r[0], "min": r[1]} for k, r in ratios.items()},
                       "target": TARGET, "pass": ok, **meta}, fh, indent=2)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
