"""Foundation benchmarks: gradtape against hand-written NumPy gradients and PyTorch eager.

Run from the repository root::

    python -m benchmarks.foundation            # full run (about 2-3 minutes on 2 cores)
    python -m benchmarks.foundation --quick    # CI smoke run (< 30 s)
    python -m benchmarks.foundation --json results.json

Cases (see benchmarks/README.md):

(a) 200-op elementwise chain (sin, tanh, *1.01, +c, 50 times) on 16 float64
    elements, forward + backward, microseconds per op.
(b) the same chain on 1,000,000 float64 elements.
(c) MLP 784-1024-1024-10 training step (batch 256, float32, ReLU, mean softmax
    cross-entropy, SGD lr=0.1 update included), plus memory growth per step
    measured with tracemalloc. gradtape runs it three ways in the same
    interleaved run: in place (``loss.backward()``, then ``p -= lr * p.grad``
    under ``no_grad``: what gt.optim.SGD does), functional (``gt.value_and_grad``
    of a pure loss function, new parameters ``p - lr * g``), and functional on
    leaves that require grad (then the gradient is itself differentiable: the
    backward pass is recorded), all against the same hand-written NumPy step.

Every case first checks that all implementations give the same loss and
gradients, and aborts if they do not. Timings are interleaved (each repeat
runs every implementation once, in rotating order) and the reported time is
the median over repeats of the mean time per call within a repeat (the
minimum is in the JSON output too); a ratio is the median over repeats of the
ratio of the two implementations' times in that repeat, which cancels slow
spells of a shared machine (the ratio of the minima is shown beside it).
The garbage collector stays enabled (as in user code); it is run once before
each timed batch.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

import gradtape as gt

try:
    import torch
except ImportError:          # PyTorch is optional (the `bench` extra)
    torch = None

TORCH_THREADS = 2            # the same for every case; (b) asks for 2 threads explicitly
CYCLES = 50                  # 4 ops per cycle -> 200 ops
N_OPS = 4 * CYCLES
MUL = 1.01
LR = 0.1

# c_fn: the functional step; c_inplace_fn: in-place step / functional step (the in-place update costs no more
# than the functional one; 2% for the noise of a shared machine)
TARGETS = {"a": 3.5, "b": 1.05, "c": 1.05, "c_fn": 1.05, "c_inplace_fn": 1.02, "c_mem": 1.15}


# ----------------------------------------------------------------------------------------------
# timing harness
# ----------------------------------------------------------------------------------------------

def _calibrate(fn, budget):
    """Calls per timed batch so that one batch takes about ``budget`` seconds (fn is warmed up)."""
    fn()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, int(round(budget / max(dt, 1e-9))))


def interleaved(fns, repeats, budget, pause=0.0):
    """Time each of ``fns`` (name -> zero-arg callable), interleaved; seconds per call per repeat.

    ``pause`` seconds of sleep before each batch let the previous implementation's thread pool
    (OpenBLAS, OpenMP) stop spinning, so that it does not steal cores from the next one."""
    number = {k: _calibrate(f, budget) for k, f in fns.items()}
    names = list(fns)
    out = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            f, n = fns[k], number[k]
            gc.collect()
            if pause:
                time.sleep(pause)
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            out[k].append((time.perf_counter() - t0) / n)
    return out, number


def _paired(a, b):
    """Median over repeats of a[r] / b[r]: batches of one repeat ran back to back, so a slow spell of
    the machine hits both and cancels out of the ratio."""
    return statistics.median(x / y for x, y in zip(a, b))


def _summary(samples, scale):
    return {"median": statistics.median(samples) * scale, "min": min(samples) * scale,
            "repeats": [s * scale for s in samples]}


# ----------------------------------------------------------------------------------------------
# (a), (b): the elementwise chain
# ----------------------------------------------------------------------------------------------

def chain_numpy(x0, c, xp=np):
    """Hand-written forward (keeping what the backward needs) and analytic backward (NumPy, or CuPy as xp)."""
    xs = []                  # inputs of sin
    ys = []                  # outputs of tanh
    x = x0
    for _ in range(CYCLES):
        xs.append(x)
        x = xp.sin(x)
        x = xp.tanh(x)
        ys.append(x)
        x = x * MUL
        x = x + c
    loss = xp.sum(x)
    g = xp.ones_like(x)
    for k in range(CYCLES - 1, -1, -1):
        # x + c: identity
        g = g * MUL
        y = ys[k]
        g = g * (1.0 - y * y)
        g = g * xp.cos(xs[k])
    return loss, g


def make_chain_gradtape(x0_np, c_np):
    x0 = gt.asarray(x0_np)
    x0.requires_grad_()
    c = gt.asarray(c_np)

    def run():
        x0.grad = None
        x = x0
        for _ in range(CYCLES):
            x = gt.sin(x)
            x = gt.tanh(x)
            x = x * MUL
            x = x + c
        loss = gt.sum(x)
        loss.backward()
        return loss, x0.grad
    return run


def make_chain_torch(x0_np, c_np):
    x0 = torch.tensor(x0_np, requires_grad=True)
    c = torch.tensor(c_np)

    def run():
        x0.grad = None
        x = x0
        for _ in range(CYCLES):
            x = torch.sin(x)
            x = torch.tanh(x)
            x = x * MUL
            x = x + c
        loss = torch.sum(x)
        loss.backward()
        return loss, x0.grad
    return run


def bench_chain(n, repeats, budget):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2.0, 2.0, n)
    c = rng.uniform(-0.5, 0.5, n)
    fns = {"numpy": lambda: chain_numpy(x0, c), "gradtape": make_chain_gradtape(x0, c)}
    if torch is not None:
        fns["torch"] = make_chain_torch(x0, c)
    # correctness first
    ref_loss, ref_g = fns["numpy"]()
    for k in list(fns)[1:]:
        loss, g = fns[k]()
        loss = float(loss.item())
        g = gt.to_numpy(g) if k == "gradtape" else g.numpy()
        if not (np.allclose(loss, ref_loss, rtol=1e-12, atol=1e-9) and g.shape == ref_g.shape
                and np.allclose(g, ref_g, rtol=1e-10, atol=1e-12)):
            raise SystemExit(f"chain n={n}: {k} disagrees with hand-written NumPy "
                             f"(loss {loss} vs {ref_loss}, max |dg| {np.max(np.abs(g - ref_g))})")
    times, number = interleaved(fns, repeats, budget)
    return times, number


# ----------------------------------------------------------------------------------------------
# (c): MLP training step
# ----------------------------------------------------------------------------------------------

SIZES = (784, 1024, 1024, 10)
BATCH = 256


def mlp_data():
    rng = np.random.default_rng(1)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        params.append((0.01 * rng.standard_normal(fan_out)).astype(np.float32))
    x = rng.random((BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return params, x, y


def make_mlp_numpy(params0, x, y, xp=np):
    """The hand-written MLP step (NumPy, or CuPy as xp): forward, analytic backward, SGD."""
    W1, b1, W2, b2, W3, b3 = [xp.array(p, copy=True) for p in params0]
    x, y = xp.asarray(x), xp.asarray(y)
    n = x.shape[0]
    idx = xp.arange(n)

    def step():
        # forward
        a1 = xp.maximum(x @ W1 + b1, 0.0)
        a2 = xp.maximum(a1 @ W2 + b2, 0.0)
        logits = a2 @ W3 + b3
        z = logits - xp.max(logits, axis=1, keepdims=True)
        e = xp.exp(z)
        s = xp.sum(e, axis=1, keepdims=True)
        loss = xp.mean(xp.log(s[:, 0]) - z[idx, y])
        # backward
        d3 = e / s
        d3[idx, y] -= 1.0
        d3 /= n
        dW3 = a2.T @ d3
        db3 = xp.sum(d3, axis=0)
        d2 = (d3 @ W3.T) * (a2 > 0)
        dW2 = a1.T @ d2
        db2 = xp.sum(d2, axis=0)
        d1 = (d2 @ W2.T) * (a1 > 0)
        dW1 = x.T @ d1
        db1 = xp.sum(d1, axis=0)
        grads = [dW1, db1, dW2, db2, dW3, db3]
        # SGD
        for p, g in zip((W1, b1, W2, b2, W3, b3), grads):
            p -= LR * g
        return loss, grads
    return step


def make_mlp_gradtape(params0, x_np, y_np):
    """Idiomatic PyTorch-style loop: requires_grad_() leaves, update under no_grad, grad reset to None."""
    params = [gt.asarray(p.copy()) for p in params0]
    for p in params:
        p.requires_grad_()
    W1, b1, W2, b2, W3, b3 = params
    x = gt.asarray(x_np)
    y = gt.asarray(y_np)

    def step():
        h = gt.nn.relu(x @ W1 + b1)
        h = gt.nn.relu(h @ W2 + b2)
        logits = h @ W3 + b3
        loss = gt.nn.cross_entropy(logits, y)
        loss.backward()
        grads = [p.grad for p in params]
        with gt.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return loss, grads
    return step


def mlp_loss(W1, b1, W2, b2, W3, b3, x, y):
    """The gradtape MLP's loss, a pure function of the parameters (for the functional steps)."""
    h = gt.nn.relu(x @ W1 + b1)
    h = gt.nn.relu(h @ W2 + b2)
    return gt.nn.cross_entropy(h @ W3 + b3, y)


def make_mlp_gradtape_functional(params0, x_np, y_np, leaves=False):
    """JAX style: ``gt.value_and_grad`` of the loss w.r.t. the six parameters, new parameters ``p - lr * g``.

    ``leaves``: the parameters are leaves that require grad (as ``nn.Parameter``s); gt.grad then records its
    backward pass (the gradient is differentiable w.r.t. them), and the update runs under no_grad."""
    params = [gt.asarray(p.copy()) for p in params0]
    if leaves:
        for p in params:
            p.requires_grad_()
    x = gt.asarray(x_np)
    y = gt.asarray(y_np)
    vg = gt.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3, 4, 5))

    def step():
        loss, grads = vg(*params, x, y)
        if leaves:
            with gt.no_grad():
                params[:] = [(p - LR * g).requires_grad_() for p, g in zip(params, grads)]
        else:
            params[:] = [p - LR * g for p, g in zip(params, grads)]
        return loss, list(grads)
    return step


def make_mlp_torch(params0, x_np, y_np):
    params = [torch.tensor(p, requires_grad=True) for p in params0]
    W1, b1, W2, b2, W3, b3 = params
    x = torch.from_numpy(x_np)
    y = torch.from_numpy(y_np)
    F = torch.nn.functional

    def step():
        h = F.relu(x @ W1 + b1)
        h = F.relu(h @ W2 + b2)
        logits = h @ W3 + b3
        loss = F.cross_entropy(logits, y)
        loss.backward()
        grads = [p.grad for p in params]
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return loss, grads
    return step


def _to_np(v):
    if isinstance(v, gt.Tensor):
        return gt.to_numpy(v)
    if torch is not None and isinstance(v, torch.Tensor):
        return v.detach().numpy()
    return np.asarray(v)


def step_memory(step, warmup=2):
    """Peak traced memory during one step minus traced memory just before it (bytes)."""
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(warmup):      # so that what a step frees was allocated under tracing
            step()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before


def bench_mlp(repeats, budget):
    params0, x, y = mlp_data()
    fns = {"numpy": make_mlp_numpy(params0, x, y), "gradtape": make_mlp_gradtape(params0, x, y),
           "gradtape_fn": make_mlp_gradtape_functional(params0, x, y),
           "gradtape_fn_leaves": make_mlp_gradtape_functional(params0, x, y, leaves=True)}
    if torch is not None:
        fns["torch"] = make_mlp_torch(params0, x, y)
    ref_loss, ref_g = fns["numpy"]()
    names = ["W1", "b1", "W2", "b2", "W3", "b3"]
    for k in list(fns)[1:]:
        loss, grads = fns[k]()
        loss = float(_to_np(loss))
        if not np.allclose(loss, ref_loss, rtol=1e-5, atol=1e-6):
            raise SystemExit(f"MLP: {k} loss {loss} differs from hand-written NumPy {ref_loss}")
        for name, g, r in zip(names, grads, ref_g):
            g = _to_np(g)
            scale = float(np.max(np.abs(r)))
            if g.shape != r.shape or g.dtype != r.dtype or not np.allclose(g, r, rtol=1e-4, atol=1e-5 * scale):
                raise SystemExit(f"MLP: {k} gradient of {name} ({g.shape}, {g.dtype}) differs from "
                                 f"hand-written NumPy ({r.shape}, {r.dtype}); max |diff| "
                                 f"{np.max(np.abs(g - r)) if g.shape == r.shape else 'n/a'}, scale {scale}")
    mem = {k: step_memory(fns[k]) for k in ("numpy", "gradtape")}
    times, number = interleaved(fns, repeats, budget, pause=0.1)
    return times, number, mem


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------

def machine_info():
    info = {"platform": platform.platform(), "processor": _cpu_name(), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(), "numpy": np.__version__, "gradtape": getattr(gt, "__version__", "?")}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        info["blas"] = "unknown"
    info["gradtape_commit"] = _git_commit()
    info["blas_threads_env"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                            "MKL_NUM_THREADS") if k in os.environ}
    info["blas_threads"] = blas_threads()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    else:
        info["torch"] = None
    return info


def blas_threads():
    """Threads of NumPy's BLAS (threadpoolctl, when installed), else None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    n = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(n) if n else None


def _limit_threads(n):
    """Run BLAS with ``n`` threads (threadpoolctl) and PyTorch with ``n``; None: BLAS default, torch 2."""
    if torch is not None:
        torch.set_num_threads(TORCH_THREADS if n is None else n)
    if n is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    return threadpool_limits(n)


def _git_commit():
    """Commit of the gradtape checkout benchmarked (+ "-dirty" with uncommitted changes), if it is a git clone."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(gt.__file__)))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gradtape", "backends"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) or None


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fmt(v, unit):
    if v is None:
        return "n/a"
    return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, for CI smoke runs (< 30 s)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    ap.add_argument("--threads", type=int, metavar="N",
                    help="BLAS and PyTorch threads (threadpoolctl); default: BLAS's own default, PyTorch 2")
    args = ap.parse_args(argv)
    limits = _limit_threads(args.threads)     # kept alive for the whole run
    if args.quick:
        rep_a, bud_a, rep_b, rep_c, bud_c = 3, 0.05, 1, 3, 0.1
    else:
        rep_a, bud_a, rep_b, rep_c, bud_c = 15, 0.2, 7, 15, 0.5
    t_start = time.perf_counter()
    info = machine_info()
    results = {"machine": info,
               "statistic": "times: median over interleaved repeats (min also given); ratios: median over "
                            "repeats of the per-repeat ratio (ratio of the minima also given)",
               "targets": TARGETS, "cases": {}}

    rows = []

    def add_row(key, label, unit, scale, times, extra=None, impl="gradtape", base="numpy", peer=True):
        """One table row: ``impl`` against ``base`` (and PyTorch against ``base`` where ``peer``)."""
        s = {k: _summary(v, scale) for k, v in times.items()}
        npv, gtv = s[base]["median"], s[impl]["median"]
        peer = peer and "torch" in s
        tv = s["torch"]["median"] if peer else None
        r_gt = _paired(times[impl], times[base])
        r_t = _paired(times["torch"], times[base]) if peer else None
        m_gt = s[impl]["min"] / s[base]["min"]
        m_t = s["torch"]["min"] / s[base]["min"] if peer else None
        target = TARGETS.get(key)
        ok = None if target is None else r_gt <= target
        rows.append((label, _fmt(npv, unit), _fmt(gtv, unit), f"{r_gt:.2f}x (min {m_gt:.2f}x)",
                     _fmt(tv, unit) if peer else "", f"{r_t:.2f}x (min {m_t:.2f}x)" if peer else "",
                     "n/a" if target is None else f"<= {target}x",
                     "" if ok is None else "PASS" if ok else "FAIL"))
        results["cases"][key] = {"label": label, "unit": unit, "times": {k: s[k] for k in (base, impl, "torch")
                                                                        if k in s and (k != "torch" or peer)},
                                 "impl": impl, "base": base, "ratio_gradtape_numpy": r_gt,
                                 "ratio_torch_numpy": r_t, "ratio_gradtape_numpy_min": m_gt,
                                 "ratio_torch_numpy_min": m_t, "target": target, "pass": ok,
                                 **(extra or {})}

    print("running (a) 200-op chain, 16 elements ...", file=sys.stderr, flush=True)
    times, number = bench_chain(16, rep_a, bud_a)
    add_row("a", "(a) 200-op chain, 16 f64, fwd+bwd per op", "us", 1e6 / N_OPS, times,
            {"calls_per_repeat": number})

    print("running (b) 200-op chain, 1e6 elements ...", file=sys.stderr, flush=True)
    times, number = bench_chain(1_000_000, rep_b, 0.0)
    add_row("b", "(b) 200-op chain, 1e6 f64, fwd+bwd", "ms", 1e3, times, {"calls_per_repeat": number})

    print("running (c) MLP training step ...", file=sys.stderr, flush=True)
    times, number, mem = bench_mlp(rep_c, bud_c)
    add_row("c", "(c) MLP 784-1024-1024-10 step, b=256 f32, in place", "ms", 1e3, times,
            {"calls_per_repeat": number, "gradtape_style": "requires_grad_() leaves, loss.backward(), "
                                                             "p -= lr*p.grad under no_grad, p.grad = None"})
    add_row("c_fn", "(c) the same step, functional: value_and_grad, p - lr*g", "ms", 1e3, times,
            {"calls_per_repeat": number, "gradtape_style": "gt.value_and_grad(loss, argnums=(0..5)) of plain "
                                                             "tensors, new parameters p - lr*g"},
            impl="gradtape_fn", peer=False)
    add_row("c_fn_leaves", "(c) functional on requires_grad leaves (records the backward)", "ms", 1e3, times,
            {"calls_per_repeat": number, "gradtape_style": "gt.value_and_grad of leaves that require grad "
                                                             "(differentiable gradient), update under no_grad"},
            impl="gradtape_fn_leaves", peer=False)
    add_row("c_inplace_fn", "(c) in place against functional (NumPy column: the functional step)", "ms", 1e3,
            times, impl="gradtape", base="gradtape_fn", peer=False)
    r_mem = mem["gradtape"] / mem["numpy"]
    ok_mem = r_mem <= TARGETS["c_mem"]
    rows.append(("(c) MLP step memory growth (tracemalloc peak)", _fmt(mem["numpy"] / 2**20, "MiB"),
                 _fmt(mem["gradtape"] / 2**20, "MiB"), f"{r_mem:.2f}x", "n/a", "n/a",
                 f"<= {TARGETS['c_mem']}x", "PASS" if ok_mem else "FAIL"))
    results["cases"]["c_mem"] = {"label": "MLP step memory growth", "unit": "bytes", "numpy": mem["numpy"],
                                 "gradtape": mem["gradtape"], "ratio_gradtape_numpy": r_mem,
                                 "target": TARGETS["c_mem"], "pass": ok_mem}
    results["wall_s"] = time.perf_counter() - t_start

    tinfo = (f"torch {info['torch']} ({info['torch_threads']} threads in every case)"
             if info["torch"] else "torch not installed")
    print()
    print(f"## gradtape foundation benchmarks{' (--quick)' if args.quick else ''}")
    print()
    print(f"- gradtape {info['gradtape']} at commit {info['gradtape_commit']}")
    print(f"- machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs, Python {info['python']}")
    bt = info["blas_threads"]
    print(f"- numpy {info['numpy']} (BLAS: {info['blas']}, {bt if bt is not None else 'unknown'} threads"
          f"{', --threads ' + str(args.threads) if args.threads else ''}"
          f"{', env ' + str(info['blas_threads_env']) if info['blas_threads_env'] else ''}); "
          f"{tinfo}")
    print(f"- statistic: times are medians over {rep_a}/{rep_b}/{rep_c} interleaved repeats for (a)/(b)/(c); "
          f"ratios are medians of the per-repeat ratios (ratio of the minima in parentheses); pass/fail uses "
          f"the median ratio; "
          f"gradtape (c) in place: requires_grad_() leaves, `p -= lr * p.grad` under no_grad, `p.grad = None`; "
          f"functional: `gt.value_and_grad(loss, argnums=(0, ..., 5))`, new parameters `p - lr * g`")
    print()
    head = ("case", "hand-written NumPy", "gradtape", "gradtape/NumPy", "PyTorch", "torch/NumPy", "target", "pass")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"total wall time {results['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"results written to {args.json}")
    del limits
    return 0


if __name__ == "__main__":
    sys.exit(main())
