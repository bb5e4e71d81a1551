"""gt.jit benchmarks (issue 13): fused kernels against hand-written NumPy, gradtape eager and replay, and peers.

Run from the repository root::

    python -m benchmarks.jit                 # full run, 1 and 2 threads
    python -m benchmarks.jit --quick         # fewer repeats, chain 1e6 as 2e5
    python -m benchmarks.jit --json jit.json
    python -m benchmarks.jit --smoke         # the test suite's path: tiny sizes, no peers, no compile timing

Side by side in one run, at 1 and 2 threads (NumPy's BLAS, torch, numba: ``gt.set_num_threads``), each case
times: hand-written NumPy forward+backward (the limit), gradtape eager, replay (``gt.trace`` of the gradient),
``gt.jit``, torch eager, ``jax.jit(grad)`` and a hand-fused numba kernel (forward and backward in one pass per
element). Cases: the 200-op chain of benchmarks/foundation.py (sin, tanh, *1.01, +c, 50 times) on 16 and on
1e6 float64 elements, fwd+bwd; the MLP 784-1024-1024-10 step (b=256, float32, SGD). Compile time of the chain's
fwd+bwd graph: cold (empty cache directory) and from the disk cache, each in a new process, numba's import
excluded (timed on its own).

Each thread count runs in a child process pinned to that many cores (jax.jit otherwise uses every core
whatever it is told), all implementations side by side within it.

Every implementation is first checked against the hand-written NumPy result (benchmarks.foundation's
``check_close``); a peer that fails is marked in its cell and left out; gradtape failing exits 1. Times are
medians over interleaved repeats (benchmarks.foundation's harness), ratios to hand-written NumPy the medians of
the per-repeat ratios.

Size: one script (the README's command): cases, implementations, compile timing and report, read top to bottom.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import gradtape as gt
from benchmarks import foundation as F

CYCLES, MUL = F.CYCLES, F.MUL


# ---- the chain ---------------------------------------------------------------------------------------------

def chain_fn(c):
    def f(x):
        for _ in range(CYCLES):
            x = gt.tanh(gt.sin(x)) * MUL + c
        return gt.sum(x)
    return f


def make_chain_replay(x0, c):
    g = gt.trace(gt.value_and_grad(chain_fn(gt.asarray(c))), gt.asarray(x0))
    x = gt.asarray(x0)
    return lambda: g(x)


def make_chain_jit(x0, c):
    vg = gt.jit(gt.value_and_grad(chain_fn(gt.asarray(c))))
    x = gt.asarray(x0)
    vg(x)
    return lambda: vg(x)


def _numba_chain(parallel):
    import numba

    def body(x0, c, out, g, nchunk):
        n = x0.shape[0]
        size = (n + nchunk - 1) // nchunk
        loss = 0.0
        for k in numba.prange(nchunk):
            xs = np.empty(CYCLES)
            ys = np.empty(CYCLES)
            for i in range(k * size, min(n, (k + 1) * size)):
                x = x0[i]
                for j in range(CYCLES):
                    xs[j] = x
                    y = np.tanh(np.sin(x))
                    ys[j] = y
                    x = y * MUL + c[i]
                loss += x
                d = 1.0
                for j in range(CYCLES - 1, -1, -1):
                    d = d * MUL * (1.0 - ys[j] * ys[j]) * np.cos(xs[j])
                g[i] = d
        out[0] = loss
    return numba.njit(parallel=parallel, cache=False)(body)


def make_chain_numba(x0, c):
    """Forward and backward in one pass per element (scalar libm); prange over chunks from 65536 elements."""
    import numba
    par = x0.size >= 65536 and numba.get_num_threads() > 1
    k = _numba_chain(par)
    out, g = np.empty(1), np.empty_like(x0)
    chunks = 4 * numba.get_num_threads() if par else 1
    k(x0, c, out, g, chunks)

    def run():
        k(x0, c, out, g, chunks)
        return out[0], g
    return run


def bench_chain(n, repeats, budget, peers, hand_numba=True):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2.0, 2.0, n)
    c = rng.uniform(-0.5, 0.5, n)
    fns = {"numpy": lambda: F.chain_numpy(x0, c), "gradtape eager": F.make_chain_gradtape(x0, c),
           "gradtape replay": make_chain_replay(x0, c), "gt.jit": make_chain_jit(x0, c)}
    failed = F._add_peers(fns, peers, "chain", x0, c)
    if hand_numba:
        try:
            fns["hand-fused numba"] = make_chain_numba(x0, c)
        except Exception as e:          # noqa: BLE001 - reported, not fatal
            failed["hand-fused numba"] = f"FAILED setup: {type(e).__name__}: {e}"

    def compare(name, res, ref):
        return (F.check_close("loss", F._to_np(res[0]), np.asarray(ref[0]), F.N_OPS + n)
                or F.check_close("gradient", F._to_np(res[1]), ref[1], F.CHAIN_K))
    failed.update(_check(f"chain n={n}", fns, compare))
    times, _ = F.interleaved(fns, repeats, budget)
    return times, failed


def _check(case, fns, compare):
    """F.check_impls, with every gradtape route (names starting 'gradtape' or 'gt.') fatal on a mismatch."""
    ref = fns["numpy"]()
    renamed = {("gradtape " + k if k.startswith("gt.") else k): v for k, v in fns.items()}
    failed = F.check_impls(case, renamed, ref, compare)
    for k in failed:
        fns.pop(k, None)
    return failed


# ---- the MLP step ------------------------------------------------------------------------------------------

def make_mlp_replay_or_jit(params0, x_np, y_np, jit):
    x, y = gt.asarray(x_np), gt.asarray(y_np)

    def step(W1, b1, W2, b2, W3, b3):
        ps = (W1, b1, W2, b2, W3, b3)
        loss, grads = gt.value_and_grad(F.mlp_loss, argnums=(0, 1, 2, 3, 4, 5))(*ps, x, y)
        return loss, grads, tuple(p - F.LR * g for p, g in zip(ps, grads))
    params = [gt.asarray(p.copy()) for p in params0]
    # gt.jit: the parameters donated, so the update is written into their buffers (SGD in place, as the
    # hand-written and torch steps do it)
    run = gt.jit(step, donate_argnums=(0, 1, 2, 3, 4, 5)) if jit else gt.trace(step, *params)
    state = {"ps": params}

    def go():
        loss, grads, state["ps"] = run(*state["ps"])
        return loss, list(grads)
    return go


def bench_mlp(repeats, budget, peers):
    params, x, y = F.mlp_data()
    fns = {"numpy": F.make_mlp_numpy(params, x, y), "gradtape eager": F.make_mlp_gradtape(params, x, y),
           "gradtape replay": make_mlp_replay_or_jit(params, x, y, False),
           "gt.jit": make_mlp_replay_or_jit(params, x, y, True)}
    failed = F._add_peers(fns, peers, "mlp", params, x, y)
    fresh = {"numpy": F.make_mlp_numpy(params, x, y)}       # the check compares first steps from the same start
    for k in fns:
        if k != "numpy":
            fresh[k] = {"gradtape eager": F.make_mlp_gradtape, "torch": F.make_mlp_torch, "jax": F.make_mlp_jax,
                        "gradtape replay": lambda p, a, b: make_mlp_replay_or_jit(p, a, b, False),
                        "gt.jit": lambda p, a, b: make_mlp_replay_or_jit(p, a, b, True)}[k](params, x, y)
    bad = _check("mlp", fresh, F.mlp_compare)
    for k in bad:
        fns.pop(k, None)
    failed.update(bad)
    # a pause before each batch (OpenBLAS's threads, the hand-written step's and gradtape eager's, spin on the
    # cores for up to 2**28 cycles after their last GEMM and would slow whichever batch follows on another
    # pool: torch's OpenMP, XLA's, MKL's under gt.jit), and a new order per repeat, with more repeats: in a
    # rotation each implementation always follows the same one (measured: up to 5% for the one behind an
    # OpenBLAS user at 2 threads, even with 0.3 s pauses)
    times, _ = F.interleaved(fns, 2 * repeats - 1, budget, pause=0.3, shuffle=True)
    return times, failed


# ---- compile time ------------------------------------------------------------------------------------------

# numba is imported before the clock starts (its import, ~0.3 s, is reported on its own): as JAX's compile
# figures exclude importing jax. gradtape itself imports numba only on a first gt.jit compile.
_COMPILE = """
import sys, time
import numpy as np
import gradtape as gt
from benchmarks.jit import chain_fn
t = time.perf_counter()
try:
    import numba
except ImportError:
    pass
imp = time.perf_counter() - t
x = gt.asarray(np.random.default_rng(0).uniform(-2, 2, 16))
c = gt.asarray(np.random.default_rng(1).uniform(-0.5, 0.5, 16))
f = gt.jit(gt.value_and_grad(chain_fn(c)))
t0 = time.perf_counter(); f(x); t1 = time.perf_counter(); f(x); t2 = time.perf_counter()
print(imp, (t1 - t0) - (t2 - t1))
"""


def compile_times(repeats=3):
    """Seconds of the first call of the jitted chain gradient less one warm call, each in a new process: cold
    (empty cache directories, gradtape's and numba's) and from the disk cache (the same directories again;
    the median of ``repeats`` processes); numba's import (before the clock) on its own."""
    cold, warm, imp = None, [], []
    with tempfile.TemporaryDirectory() as d:
        # (numba's own cache too: vecmath's functions, compiled into the interpreter, are cached next to their
        # source otherwise, and a cold run would find them)
        env = dict(os.environ, GRADTAPE_CACHE_DIR=d, NUMBA_CACHE_DIR=os.path.join(d, "numba"))
        for k in range(1 + repeats):
            r = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=600)
            if r.returncode:
                return {"error": r.stderr[-500:]}
            i, t = (float(v) for v in r.stdout.strip().splitlines()[-1].split())
            imp.append(i)
            if k == 0:
                cold = t
            else:
                warm.append(t)
    return {"cold_s": cold, "disk_cache_s": sorted(warm)[len(warm) // 2], "numba_import_s": sorted(imp)[len(imp) // 2]}


# ---- run and report ----------------------------------------------------------------------------------------

def _set_threads(n):
    gt.set_num_threads(n)
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    if F.torch is not None:
        F.torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(n)
    except ImportError:
        return None


def _row(times, failed):
    ref = times["numpy"]
    row = {}
    for k, v in times.items():
        row[k] = {**F._summary(v, 1.0), "ratio": F._paired(v, ref)}
    row.update({k: {"failed": m} for k, m in failed.items()})
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.jit", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats; chain 1e6 run as 2e5")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one thread count, no peers (tests)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    ap.add_argument("--skip", default="", help="peers to leave out (torch,jax)")
    ap.add_argument("--cases-json", metavar="PATH", help=argparse.SUPPRESS)   # a pinned child's cases (internal)
    args = ap.parse_args(argv)
    if not args.smoke and args.cases_json is None and hasattr(os, "sched_setaffinity"):
        return _pinned_run(args)
    if args.cases_json is not None:
        n = int(args.threads)
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])
    peers = () if args.smoke else tuple(p for p in F.PEERS if p not in args.skip.split(",")
                                        and (p != "torch" or F.torch is not None))
    repeats, budget = (1, 0.005) if args.smoke else ((3, 0.05) if args.quick else (7, 0.2))
    large = 2_000 if args.smoke else (200_000 if args.quick else F.N_LARGE)
    counts = [1] if args.smoke else [int(t) for t in args.threads.split(",")]
    cases = {}
    for n_threads in counts:
        lim = _set_threads(n_threads)
        try:
            for label, run in ((f"chain 16 f64 fwd+bwd, {n_threads} thr", lambda: bench_chain(16, repeats, budget,
                                                                                               peers, not args.smoke)),
                               (f"chain {large:.0e} f64 fwd+bwd, {n_threads} thr".replace("e+0", "e"),
                                lambda: bench_chain(large, repeats, budget, peers, not args.smoke)),
                               (f"MLP step b=256 f32, {n_threads} thr", None if args.smoke else
                                lambda: bench_mlp(repeats, budget, peers))):
                if run is None:
                    continue
                print(f"running {label} ...", file=sys.stderr, flush=True)
                cases[label] = _row(*run())
                if label.startswith("MLP"):
                    cases[label]["matmuls"] = _blas_note()
        finally:
            if lim is not None:
                lim.unregister() if hasattr(lim, "unregister") else None
            gt.set_num_threads(None)
    if args.cases_json is not None:
        with open(args.cases_json, "w") as f:
            json.dump(cases, f, default=str)
        return 0
    return _finish(args, cases)


def _finish(args, cases):
    comp = None if args.smoke else compile_times()
    text = report(cases, comp)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": cases, "compile": comp, "machine": F.machine_info()}, f, indent=1, default=str)
    return 0


def _xla_flags(n):
    """XLA_FLAGS asking XLA for n threads (it starts its pools at import; jax 0.10's CPU runtime still uses
    every allowed core for a GEMM, so the child is also pinned to n cores); XLA's defaults where n is every
    core (the flags then slow it: the MLP step took 41 ms with them, 25 ms without, on 2 cores)."""
    own = os.environ.get("XLA_FLAGS", "")
    if n >= len(os.sched_getaffinity(0)):
        return own
    return (own + f" --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}").strip()


def _pinned_run(args):
    """Each thread count in a child process pinned to that many cores (``os.sched_setaffinity``), every
    implementation side by side within it: a thread setting alone leaves jax.jit on every core (measured: the
    MLP step at "1 thread" took 25 ms of wall and 47 ms of CPU time), so only the pin makes "1 thread" true
    for all. The cases are merged in order; compile times are taken here."""
    cases = {}
    counts = [int(t) for t in args.threads.split(",")]
    for n in counts:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "cases.json")
            cmd = [sys.executable, "-m", "benchmarks.jit", "--threads", str(n), "--cases-json", out,
                   "--skip", args.skip] + (["--quick"] if args.quick else [])
            env = dict(os.environ, XLA_FLAGS=_xla_flags(n))
            r = subprocess.run(cmd, env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            if r.returncode:
                return r.returncode
            with open(out) as f:
                cases.update(json.load(f))
    return _finish(args, cases)


COLS = ("numpy", "gradtape eager", "gradtape replay", "gt.jit", "torch", "jax", "hand-fused numba")
LABELS = {"numpy": "hand-written NumPy", "torch": "torch eager", "jax": "jax.jit(grad)"}


def _blas_note():
    """Which library gt.jit's matmuls used (gradtape/_jit/blas.py: MKL where the extra is installed)."""
    from gradtape._jit import blas
    lib = blas.library()
    if lib is None:
        return f"NumPy's ({blas.reason or 'GRADTAPE_BLAS=' + blas.mode()})"
    return f"through {os.path.basename(lib.gt_path)}" + (" (one OpenMP pool with the kernels)" if lib.gt_gomp else "")


def report(cases, comp):
    head = "| case | " + " | ".join(LABELS.get(c, c) for c in COLS) + " |"
    lines = [head, "|" + "---|" * (len(COLS) + 1)]
    for label, row in cases.items():
        cells = []
        for c in COLS:
            v = row.get(c)
            if v is None:
                cells.append("—")
            elif "failed" in v:
                cells.append(v["failed"][:60])
            else:
                cells.append(f"{v['median'] * 1e6:.4g} µs ({v['ratio']:.2f}×)" if v["median"] < 1e-2 else
                             f"{v['median'] * 1e3:.4g} ms ({v['ratio']:.2f}×)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    notes = [f"{label}: gt.jit's matmuls {row['matmuls']}" for label, row in cases.items() if "matmuls" in row]
    if notes:
        lines.append("")
        lines.extend(notes)
    if comp:
        lines.append("")
        lines.append("compile of the chain's fwd+bwd graph (new process): " + (
            f"cold {comp['cold_s']:.2f} s, from the disk cache {comp['disk_cache_s']:.2f} s (numba's import, "
            f"before the clock: {comp['numba_import_s']:.2f} s)"
            if "cold_s" in comp else f"FAILED: {comp['error']}"))
    info = F.machine_info()
    lines.append(f"machine: {info['processor']}, {info['cpu_count']} CPUs, numpy {info['numpy']}, "
                 f"torch {info['torch']}; times are medians, (×) the ratio to hand-written NumPy; each thread "
                 "count in its own process pinned to that many cores")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
