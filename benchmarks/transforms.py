"""Transform benchmarks (issue 11): per-example gradients with ``gt.vmap(gt.grad(...))`` and the cost of ``gt.vmap``.

Run from the repository root::

    python -m benchmarks.transforms               # full run (a few minutes on 2 cores)
    python -m benchmarks.transforms --quick       # CI smoke run
    python -m benchmarks.transforms --systems torch --skip jax --json out.json

Cases (see benchmarks/README.md):

(a) per-example gradients of the digits MLP 64-256-10 (ReLU, softmax cross-entropy of an integer label,
    batch 256, float32; scikit-learn's digits when installed, else random pixels): the gradient of every
    example's loss w.r.t. the parameter dict, as ``gt.vmap(gt.grad(loss), in_axes=(None, 0, 0))(params, x, y)``,
    against a Python loop of ``gt.grad`` per example, ``torch.func.vmap(torch.func.grad(...))``,
    ``jax.vmap(jax.grad(...))`` (eager and jitted) and hand-written NumPy. The reference time is one batched
    gradient of the mean loss of the same batch (``gt.grad``): targets ``gt.vmap(gt.grad)`` <= 3x of it (judged
    eagerly and under ``gt.jit``, each in its row), and faster than torch.func's vmap.
(b) ``gt.vmap`` of foundation's 200-op elementwise chain over 256 rows of 16 float64 elements against one call
    of the chain on the (256, 16) array, forward and forward + backward (``loss.backward()`` of the sum):
    target <= 1.2x. torch.func.vmap and jax.jit(jax.vmap) are shown beside it, each against its own system's
    one call (eager JAX is left out of (b): its per-primitive dispatch, not vmap, would dominate).

Every implementation is first checked (foundation's ``check_close``: max|diff| <= C * K * eps * max|ref|):
(a) against hand-written NumPy per-example gradients, (b) against the one-call result. A peer, or a gradtape
route, that raises or fails its check is marked in its cell (the exception text or the error) and not timed;
the run goes on. The run exits 1 only when a gradtape route returns wrong numbers. Timing is foundation's:
interleaved repeats in rotating order, medians of the time per call, ratios as medians of per-repeat ratios
(ratio of the minima in parentheses).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import gradtape as gt
from benchmarks.foundation import (CYCLES, MUL, GradtapeWrong, _fmt, _limit_threads, _load_peer, _paired, _summary,
                                   check_close, choose_peers, interleaved, machine_info)

try:
    import torch
except ImportError:          # PyTorch is optional
    torch = None

SIZES = (64, 256, 10)
BATCH = 256
ROWS, COLS = 256, 16
TARGETS = {"a_vmap_grad": 3.0, "a_vs_torch": 1.0, "b_fwd": 1.2, "b_fwdbwd": 1.2}
PEER_LABELS = {"torch": "PyTorch", "jax": "JAX"}
NAMES = ("W1", "b1", "W2", "b2")
# float32 rounding steps of one per-example gradient: the forward matmuls (64, 256 terms), the softmax sum (10),
# the backward matmul (10 terms) and the outer products (1)
MLP_K = SIZES[0] + SIZES[1] + 2 * SIZES[2] + 1


# ----------------------------------------------------------------------------------------------
# (a) per-example gradients of the digits MLP
# ----------------------------------------------------------------------------------------------

def digits_data(batch, dtype=np.float32):
    """(params, x, y, source): the MLP's parameters (He init, seeded) and ``batch`` examples."""
    rng = np.random.default_rng(0)
    try:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        idx = rng.permutation(len(X))[:batch]
        x, y, source = (X[idx] / 16.0).astype(dtype), y[idx].astype(np.int64), "scikit-learn digits"
    except ImportError:
        x, y, source = rng.random((batch, SIZES[0])).astype(dtype), rng.integers(0, 10, batch), "random pixels"
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), 1):
        params[f"W{i}"] = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
        params[f"b{i}"] = (0.01 * rng.standard_normal(n_out)).astype(dtype)
    return params, x, y, source


def per_example_numpy(p, x, y):
    """Hand-written per-example gradients: a dict of (batch, *shape) arrays (the gradient of each example's loss)."""
    n = x.shape[0]
    a = x @ p["W1"] + p["b1"]
    h = np.maximum(a, 0.0)
    z = h @ p["W2"] + p["b2"]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    d2 = e / e.sum(axis=1, keepdims=True)
    d2[np.arange(n), y] -= 1.0
    d1 = (d2 @ p["W2"].T) * (a > 0)
    return {"W1": np.einsum("bi,bj->bij", x, d1), "b1": d1, "W2": np.einsum("bi,bj->bij", h, d2), "b2": d2}


def gt_loss(p, x, y):
    """One example's loss (or the batch's mean loss, for a batch): gradtape."""
    h = gt.nn.relu(x @ p["W1"] + p["b1"])
    return gt.nn.cross_entropy(h @ p["W2"] + p["b2"], y)


def make_gt_batched(p, x, y):
    """The reference: one gradient of the batch's mean loss."""
    ps, xs, ys = {k: gt.asarray(v) for k, v in p.items()}, gt.asarray(x), gt.asarray(y)
    g = gt.grad(gt_loss)
    return lambda: g(ps, xs, ys)


def make_gt_vmap(p, x, y):
    ps, xs, ys = {k: gt.asarray(v) for k, v in p.items()}, gt.asarray(x), gt.asarray(y)
    f = gt.vmap(gt.grad(gt_loss), in_axes=(None, 0, 0))
    return lambda: f(ps, xs, ys)


def make_gt_jit_vmap(p, x, y):
    """The same per-example gradients through gt.jit: one compiled graph of the batched forward and reverse pass
    (fused numba kernels for its elementwise regions)."""
    ps, xs, ys = {k: gt.asarray(v) for k, v in p.items()}, gt.asarray(x), gt.asarray(y)
    f = gt.jit(gt.vmap(gt.grad(gt_loss), in_axes=(None, 0, 0)))
    f(ps, xs, ys)                                   # trace and compile outside the timing
    return lambda: f(ps, xs, ys)


def make_gt_loop(p, x, y):
    ps, xs, ys = {k: gt.asarray(v) for k, v in p.items()}, gt.asarray(x), gt.asarray(y)
    g = gt.grad(gt_loss)

    def run():
        gs = [g(ps, xs[i], ys[i]) for i in range(xs.shape[0])]
        return {k: gt.stack([gi[k] for gi in gs]) for k in NAMES}
    return run


def make_torch_vmap(p, x, y):
    from torch.func import grad, vmap
    F = torch.nn.functional
    ps = {k: torch.from_numpy(v.copy()) for k, v in p.items()}
    xs, ys = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())

    def loss(p, x, y):
        h = F.relu(x @ p["W1"] + p["b1"])
        return F.cross_entropy((h @ p["W2"] + p["b2"])[None], y[None])
    f = vmap(grad(loss), in_dims=(None, 0, 0))
    return lambda: f(ps, xs, ys)


def _jax_loss(jax):
    jnp = jax.numpy

    def loss(p, x, y):
        z = jax.nn.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return jax.nn.logsumexp(z) - z[y]
    return loss


def make_jax_vmap(p, x, y, jit=False):
    jax = _load_peer("jax")
    jnp = jax.numpy
    ps = {k: jnp.asarray(v) for k, v in p.items()}
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    f = jax.vmap(jax.grad(_jax_loss(jax)), in_axes=(None, 0, 0))
    f = jax.jit(f) if jit else f

    def run():
        out = f(ps, xs, ys)
        jax.block_until_ready(out)
        return out
    return run


def _np_tree(g):
    return {k: _to_np(g[k]) for k in NAMES}


def _to_np(v):
    if isinstance(v, gt.Tensor):
        return gt.to_numpy(v)
    if torch is not None and isinstance(v, torch.Tensor):
        return v.detach().numpy()
    return np.asarray(v)


# ----------------------------------------------------------------------------------------------
# (b) vmap of the 200-op chain
# ----------------------------------------------------------------------------------------------

def gt_chain(x, c):
    """foundation's chain: 50 x (sin, tanh, * 1.01, + c)."""
    for _ in range(CYCLES):
        x = gt.tanh(gt.sin(x)) * MUL + c
    return x


def torch_chain(x, c):
    for _ in range(CYCLES):
        x = torch.tanh(torch.sin(x)) * MUL + c
    return x


def chain_impls(x_np, c_np, peers):
    """{name: (make, base)}: the (b) implementations, each with the one-call implementation it is compared to."""
    out = {}

    def gt_fwd(vm):
        x, c = gt.asarray(x_np), gt.asarray(c_np)
        f = gt.vmap(gt_chain, in_axes=(0, None)) if vm else gt_chain
        return lambda: f(x, c)

    def gt_bwd(vm):
        x, c = gt.asarray(x_np), gt.asarray(c_np)
        x.requires_grad_()
        f = gt.vmap(gt_chain, in_axes=(0, None)) if vm else gt_chain

        def run():
            x.grad = None
            gt.sum(f(x, c)).backward()
            return x.grad
        return run
    out["fwd"] = {"gradtape": (lambda: gt_fwd(False), None), "gradtape vmap": (lambda: gt_fwd(True), "gradtape")}
    out["fwdbwd"] = {"gradtape": (lambda: gt_bwd(False), None), "gradtape vmap": (lambda: gt_bwd(True), "gradtape")}
    if "torch" in peers:
        def t_fwd(vm):
            x, c = torch.from_numpy(x_np.copy()), torch.from_numpy(c_np.copy())
            f = torch.func.vmap(torch_chain, in_dims=(0, None)) if vm else torch_chain
            return lambda: f(x, c)

        def t_bwd(vm):
            x, c = torch.from_numpy(x_np.copy()).requires_grad_(), torch.from_numpy(c_np.copy())
            f = torch.func.vmap(torch_chain, in_dims=(0, None)) if vm else torch_chain

            def run():
                x.grad = None
                f(x, c).sum().backward()
                return x.grad
            return run
        out["fwd"].update({"PyTorch": (lambda: t_fwd(False), None), "torch.func.vmap": (lambda: t_fwd(True), "PyTorch")})
        out["fwdbwd"].update({"PyTorch": (lambda: t_bwd(False), None),
                              "torch.func.vmap": (lambda: t_bwd(True), "PyTorch")})
    if "jax" in peers:
        def j_make(vm, bwd):
            jax = _load_peer("jax")
            jnp = jax.numpy
            x, c = jnp.asarray(x_np), jnp.asarray(c_np)

            def f(x, c):
                for _ in range(CYCLES):
                    x = jnp.tanh(jnp.sin(x)) * MUL + c
                return x
            f = jax.vmap(f, in_axes=(0, None)) if vm else f
            if bwd:
                f0 = f
                f = jax.grad(lambda x, c: jnp.sum(f0(x, c)))
            f = jax.jit(f)

            def run():
                out = f(x, c)
                out.block_until_ready()
                return out
            return run
        for case, bwd in (("fwd", False), ("fwdbwd", True)):
            # (eager JAX is left out here: 200 dispatches of un-jitted primitives say nothing about vmap)
            out[case].update({
                "JAX (jit)": (lambda bwd=bwd: j_make(False, bwd), None),
                "jax.vmap (jit)": (lambda bwd=bwd: j_make(True, bwd), "JAX (jit)")})
    return out


def chain_reference(x, c):
    """NumPy: the chain's value and the gradient of its sum (float64)."""
    xs, ys, v = [], [], x
    for _ in range(CYCLES):
        xs.append(v)
        v = np.tanh(np.sin(v))
        ys.append(v)
        v = v * MUL + c
    g = np.ones_like(v)
    for k in range(CYCLES - 1, -1, -1):
        g = g * MUL * (1.0 - ys[k] * ys[k]) * np.cos(xs[k])
    return v, g


# ----------------------------------------------------------------------------------------------
# running and checking
# ----------------------------------------------------------------------------------------------

def setup(makers, compare, case):
    """Make and check every implementation; ({name: fn} of those that passed, {name: why not})."""
    fns, failed = {}, {}
    for name, make in makers.items():
        try:
            fn = make()
            msg = compare(name, fn())
        except Exception as e:               # noqa: BLE001 - a route that breaks is reported, not fatal
            msg = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
            failed[name] = msg
            print(f"  {case}: {name} {msg} (marked in the table; the run goes on)", file=sys.stderr)
            continue
        if msg is not None:
            if name.startswith("gradtape"):
                raise GradtapeWrong(f"{case}: {name} disagrees with the reference: {msg}")
            failed[name] = f"FAILED check: {msg}"
            print(f"  {case}: {name} {failed[name]} (marked in the table; the run goes on)", file=sys.stderr)
            continue
        fns[name] = fn
    return fns, failed


def bench_per_example(batch, peers, repeats, budget):
    p, x, y, source = digits_data(batch)
    ref = per_example_numpy({k: v.astype(np.float64) for k, v in p.items()}, x.astype(np.float64), y)
    ref = {k: v.astype(np.float32) for k, v in ref.items()}
    makers = {"hand-written NumPy": lambda: (lambda: per_example_numpy(p, x, y)),
              "gradtape batched gt.grad (mean loss)": lambda: make_gt_batched(p, x, y),
              "gradtape gt.vmap(gt.grad)": lambda: make_gt_vmap(p, x, y),
              "gradtape gt.jit(gt.vmap(gt.grad))": lambda: make_gt_jit_vmap(p, x, y),
              "gradtape loop of gt.grad": lambda: make_gt_loop(p, x, y)}
    if "torch" in peers:
        makers["torch.func.vmap(grad)"] = lambda: make_torch_vmap(p, x, y)
    if "jax" in peers:
        makers["jax.vmap(jax.grad)"] = lambda: make_jax_vmap(p, x, y)
        makers["jax.jit(jax.vmap(jax.grad))"] = lambda: make_jax_vmap(p, x, y, jit=True)
    mean_ref = {k: v.mean(axis=0) for k, v in ref.items()}

    def compare(name, res):
        want = mean_ref if "batched" in name else ref
        res = _np_tree(res)
        for k in NAMES:
            msg = check_close(f"gradient of {k}", res[k], want[k], MLP_K + (batch if "batched" in name else 0))
            if msg:
                return msg
        return None
    fns, failed = setup(makers, compare, "(a) per-example gradients")
    times, _ = interleaved(fns, repeats, budget, pause=0.05) if fns else ({}, {})
    return times, failed, source, list(makers)


def bench_chain(rows, cols, peers, repeats, budget):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, (rows, cols))
    c = rng.uniform(-0.5, 0.5, cols)
    val, grad = chain_reference(x, c)
    out = {}
    for case, impls in chain_impls(x, c, peers).items():
        want = val if case == "fwd" else grad

        def compare(name, res, want=want):
            return check_close("value" if case == "fwd" else "gradient", _to_np(res), want, 2 * 4 * CYCLES)
        fns, failed = setup({k: m for k, (m, _) in impls.items()}, compare, f"(b) chain {case}")
        times, _ = interleaved(fns, repeats, budget, pause=0.05) if fns else ({}, {})
        out[case] = (times, failed, {k: b for k, (_, b) in impls.items()})
    return out


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, for CI smoke runs")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    ap.add_argument("--threads", type=int, metavar="N", help="BLAS and PyTorch threads (threadpoolctl)")
    ap.add_argument("--systems", metavar="LIST", help="comma-separated peers (torch, jax); default: every installed")
    ap.add_argument("--skip", metavar="LIST", help="comma-separated peers to leave out, e.g. --skip jax")
    ap.add_argument("--batch", type=int, default=BATCH, help=f"examples in (a) (default {BATCH})")
    ap.add_argument("--rows", type=int, default=ROWS, help=f"rows of 16 elements in (b) (default {ROWS})")
    ap.add_argument("--cases", default="a,b", help="comma-separated subset of a,b")
    ap.add_argument("--repeats", type=int, help="interleaved repeats (default 11; 3 with --quick)")
    ap.add_argument("--budget", type=float, help="seconds per timed batch (default 0.3; 0.05 with --quick)")
    args = ap.parse_args(argv)
    wanted = choose_peers(args.systems, args.skip)
    peers = [p for p in wanted if _load_peer(p) is not None]
    absent = {p: "not installed" for p in wanted if p not in peers}
    limits = _limit_threads(args.threads)
    if args.threads:
        gt.set_num_threads(args.threads)            # gt.jit's fused kernels too
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    reps, budget = (3, 0.05) if args.quick else (11, 0.3)
    reps, budget = args.repeats or reps, args.budget or budget
    t0 = time.perf_counter()
    info = machine_info()
    info["peers"] = {p: getattr(_load_peer(p), "__version__", "?") if p in peers else None for p in wanted}
    results = {"machine": info, "targets": TARGETS, "cases": {}, "absent": absent}
    rows, wrong = [], None

    def row(case, name, times, base, failed, target_key=None, unit="ms", scale=1e3, base_label=None):
        if name not in times:
            why = failed.get(name, absent.get(name, "n/a"))
            rows.append((case, name, why, "", ""))
            results["cases"].setdefault(case, {})[name] = {"failed": why}
            return
        s = _summary(times[name], scale)
        entry = {**s}
        ratio_txt = ""
        target = TARGETS.get(target_key)
        verdict = ""
        if base is not None and base in times:
            r, m = _paired(times[name], times[base]), min(times[name]) / min(times[base])
            ratio_txt = f"{r:.2f}x (min {m:.2f}x) of {base_label or base}"
            entry.update(ratio=r, ratio_min=m, base=base)
            if target is not None:
                entry.update(target=target, passed=r <= target)
                verdict = f"{'PASS' if r <= target else 'FAIL'} (<= {target}x)"
        elif base is not None:
            ratio_txt = f"n/a ({base}: {failed.get(base, 'not run')})"
            if target is not None:
                verdict = "n/a"
        rows.append((case, name, _fmt(s["median"], unit), ratio_txt, verdict))
        results["cases"].setdefault(case, {})[name] = entry

    try:
        if "a" in cases:
            print(f"running (a) per-example gradients, MLP 64-256-10, batch {args.batch} ...", file=sys.stderr,
                  flush=True)
            times, failed, source, names = bench_per_example(args.batch, peers, reps, budget)
            case = f"(a) per-example grads, b={args.batch} f32 ({source})"
            ref = "gradtape batched gt.grad (mean loss)"
            for p in absent:
                failed[p] = "not installed"
            for name in names:
                key = "a_vmap_grad" if name in ("gradtape gt.vmap(gt.grad)", "gradtape gt.jit(gt.vmap(gt.grad))") \
                    else None
                row(case, name, times, None if name == ref else ref, failed, key, base_label="batched gt.grad")
            if "torch" in peers:
                if "gradtape gt.vmap(gt.grad)" in times and "torch.func.vmap(grad)" in times:
                    tv, tt = times["gradtape gt.vmap(gt.grad)"], times["torch.func.vmap(grad)"]
                    r, m = _paired(tv, tt), min(tv) / min(tt)
                    ok = r <= TARGETS["a_vs_torch"]
                    rows.append((case, "gt.vmap(gt.grad) / torch.func.vmap(grad)", "", f"{r:.2f}x (min {m:.2f}x)",
                                 f"{'PASS' if ok else 'FAIL'} (<= {TARGETS['a_vs_torch']}x)"))
                    results["cases"][case]["vs_torch"] = {"ratio": r, "ratio_min": m, "passed": ok,
                                                          "target": TARGETS["a_vs_torch"]}
        if "b" in cases:
            print(f"running (b) vmap of the 200-op chain over {args.rows} rows of {COLS} ...", file=sys.stderr,
                  flush=True)
            for part, (times, failed, bases) in bench_chain(args.rows, COLS, peers, reps, budget).items():
                label = "forward" if part == "fwd" else "forward + backward"
                case = f"(b) 200-op chain, {args.rows}x{COLS} f64, {label}"
                for name, base in bases.items():
                    row(case, name, times, base, failed, f"b_{part}" if name == "gradtape vmap" else None,
                        unit="us", scale=1e6)
    except GradtapeWrong as e:
        wrong = str(e)
    results["wall_s"] = time.perf_counter() - t0
    results["gradtape_wrong"] = wrong
    report(results, rows, info, args, reps)
    del limits
    if wrong:
        print(f"\nERROR: {wrong}. gradtape's result is wrong: this is a bug in gradtape.", file=sys.stderr)
        return 1
    return 0


def report(results, rows, info, args, reps):
    tinfo = (f"torch {info['torch']} ({info['torch_threads']} threads)" if info["torch"] else "torch not installed")
    bt = info["blas_threads"]
    print()
    print(f"## gradtape transform benchmarks{' (--quick)' if args.quick else ''}")
    print()
    print(f"- gradtape {info['gradtape']} at commit {info['gradtape_commit']}")
    print(f"- machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs, Python {info['python']}")
    print(f"- numpy {info['numpy']} (BLAS: {info['blas']}, {bt if bt is not None else 'unknown'} threads); {tinfo}")
    print("- peers: " + (", ".join(f"{PEER_LABELS[p]} {v}" if v else f"{PEER_LABELS[p]} not installed"
                                   for p, v in info["peers"].items()) or "none (--systems/--skip)")
          + "; JAX float64 enabled, compile time excluded (warm-up call)")
    print(f"- statistic: medians over {reps} interleaved repeats; ratios are medians of per-repeat ratios "
          f"(ratio of the minima in parentheses); every route checked first (max|diff| <= 8 * K * eps * max|ref|), "
          f"a route that raises or fails is marked FAILED and not timed")
    print()
    print("| case | implementation | time | ratio | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"total wall time {results['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())
