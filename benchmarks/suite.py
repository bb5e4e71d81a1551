"""Benchmark suite: gradtape against hand-written gradients and every installed peer, in one run.

    python -m benchmarks                    # full run: JSON, markdown table and PNG chart in benchmarks/results/
    python -m benchmarks --quick            # CI smoke run (few repeats, short batches)
    python -m benchmarks --cases chain16,hessian --out DIR

Cases (the same data for every implementation; each implementation's result
is checked against the hand-written one before anything is timed, and a
wrong result is marked in its cell and excluded from timing; the exit status is 1 only when gradtape's
result is wrong; ``--systems``/``--skip`` choose the peers):

* ``chain16`` / ``chain1e6``: the foundation's 200-op elementwise chain
  (50 × sin, tanh, ×1.01, +c; loss = sum) on 16 and on 1,000,000 float64
  elements, forward + backward (µs per op / ms per call);
* ``mlp``: the foundation's MLP 784-1024-1024-10 training step (batch 256,
  float32, ReLU, mean softmax cross-entropy, SGD lr 0.1 update included);
  gradtape both with raw tensors and with ``gt.nn.Sequential`` + ``gt.optim.SGD``;
* ``hessian``: the Hessian of f(x) = xᵀAx for n = 500 (float64), which is
  A + Aᵀ: hand-written is that sum (the limit), the others differentiate twice.

Implementations: hand-written NumPy (the limit), gradtape on NumPy, gradtape on
CuPy (where a GPU is present), PyTorch (CPU, 2 threads), HIPS autograd, MyGrad
and JAX (``jax.jit`` of the gradient function, float64 enabled; compile time
excluded by the warm-up), each where installed. Timing: interleaved repeats,
median time per call, ratio = median over repeats of time / hand-written time
in the same repeat (see ``benchmarks/foundation.py``).

Size: every case's implementations for every peer side by side (so that they can be compared line by
line), then the runner and the report.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time

import numpy as np

import gradtape as gt

from . import foundation as F

HAND = "hand-written NumPy"
GT = "gradtape (NumPy)"
GT_NN = "gradtape nn+optim (NumPy)"
GT_CUDA = "gradtape (CuPy)"
TORCH = "PyTorch"
AUTOGRAD = "autograd"
MYGRAD = "MyGrad"
JAX = "JAX (jit)"
ORDER = [HAND, GT, GT_NN, GT_CUDA, TORCH, AUTOGRAD, MYGRAD, JAX]
GT_IMPLS = (GT, GT_NN, GT_CUDA)          # a wrong result of these makes the exit status 1; a peer's is marked
PEER_MODULES = {TORCH: "torch", AUTOGRAD: "autograd", MYGRAD: "mygrad", JAX: "jax"}
HESSIAN_N = 500


def _peer(name):
    """The peer's module, or None when it is not installed (or fails to import)."""
    try:
        mod = importlib.import_module(PEER_MODULES[name])
    except Exception:           # noqa: BLE001 - any import failure means "not available"
        return None
    if name == JAX:
        mod.config.update("jax_enable_x64", True)
    if name == TORCH:
        mod.set_num_threads(F.TORCH_THREADS)
    return mod


def _cuda():
    return "cuda" in gt.backends.available()


def _np(v):
    if isinstance(v, gt.Tensor):
        return gt.to_numpy(v)
    if hasattr(v, "detach"):                  # torch
        return v.detach().cpu().numpy()
    if hasattr(v, "block_until_ready"):       # jax
        return np.asarray(v)
    if hasattr(v, "data") and type(v).__module__.startswith("mygrad"):
        return np.asarray(v.data)
    return np.asarray(v)


# ---- (chain) 200-op elementwise chain ---------------------------------------------------------------

def chain_data(n):
    rng = np.random.default_rng(0)
    return rng.uniform(-2.0, 2.0, n), rng.uniform(-0.5, 0.5, n)


def chain_gradtape(x0_np, c_np, device="cpu"):
    x0 = gt.asarray(x0_np, device=device).requires_grad_()
    c = gt.asarray(c_np, device=device)
    sync = device != "cpu"

    def run():
        x0.grad = None
        x = x0
        for _ in range(F.CYCLES):
            x = gt.tanh(gt.sin(x)) * F.MUL + c
        loss = gt.sum(x)
        loss.backward()
        if sync:
            gt.synchronize(device)
        return loss, x0.grad
    return run


def chain_autograd(x0_np, c_np):
    ag = _peer(AUTOGRAD)
    anp = importlib.import_module("autograd.numpy")

    def f(x):
        for _ in range(F.CYCLES):
            x = anp.tanh(anp.sin(x)) * F.MUL + c_np
        return anp.sum(x)
    vg = ag.value_and_grad(f)
    return lambda: vg(x0_np)


def chain_mygrad(x0_np, c_np):
    mg = _peer(MYGRAD)
    x0 = mg.tensor(x0_np)

    def run():
        x = x0
        for _ in range(F.CYCLES):
            x = mg.tanh(mg.sin(x)) * F.MUL + c_np
        loss = mg.sum(x)
        loss.backward()
        return loss, x0.grad
    return run


def chain_impls(n):
    x0, c = chain_data(n)
    return {HAND: lambda: (lambda: F.chain_numpy(x0, c)),
            GT: lambda: chain_gradtape(x0, c),
            GT_CUDA: lambda: chain_gradtape(x0, c, "cuda"),
            TORCH: lambda: F.make_chain_torch(x0, c),
            AUTOGRAD: lambda: chain_autograd(x0, c),
            MYGRAD: lambda: chain_mygrad(x0, c),
            JAX: lambda: F.make_chain_jax(x0, c)}


def chain_check(ref, got):
    (l0, g0), (l1, g1) = ref, got
    l1, g1 = float(_np(l1)), _np(g1)
    ok = np.allclose(l1, l0, rtol=1e-10, atol=1e-9) and g1.shape == g0.shape and np.allclose(g1, g0, rtol=1e-9,
                                                                                                atol=1e-12)
    return ok, f"loss {l1:.12g} vs {l0:.12g}, max |dg| {np.max(np.abs(g1 - g0)) if g1.shape == g0.shape else 'shape'}"


# ---- (mlp) training step ------------------------------------------------------------------------------

def mlp_gradtape_nn(params0, x_np, y_np, device="cpu"):
    """The same step with the module layer: Sequential(Linear, ReLU, Linear, ReLU, Linear) + optim.SGD."""
    sizes = F.SIZES
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = gt.nn.Linear(a, b, dtype=gt.float32, device=device)
        # Linear stores (out, in): load the (in, out) weights transposed
        lin.load_state_dict({"weight": params0[2 * i].T, "bias": params0[2 * i + 1]})
        layers += [lin, gt.nn.ReLU()] if i < len(sizes) - 2 else [lin]
    net = gt.nn.Sequential(*layers)
    opt = gt.optim.SGD(net.parameters(), lr=F.LR)
    x = gt.asarray(x_np, device=device)
    y = gt.asarray(y_np, device=device)
    lins = [m for m in net if isinstance(m, gt.nn.Linear)]
    sync = device != "cpu"

    def step():
        opt.zero_grad()
        loss = gt.nn.cross_entropy(net(x), y)
        loss.backward()
        grads = [g for m in lins for g in (m.weight.grad.mT, m.bias.grad)]
        opt.step()
        if sync:
            gt.synchronize(device)
        return loss, grads
    return step


def mlp_gradtape_cuda(params0, x_np, y_np):
    params = [gt.asarray(p.copy(), device="cuda").requires_grad_() for p in params0]
    W1, b1, W2, b2, W3, b3 = params
    x = gt.asarray(x_np, device="cuda")
    y = gt.asarray(y_np, device="cuda")

    def step():
        h = gt.nn.relu(x @ W1 + b1)
        h = gt.nn.relu(h @ W2 + b2)
        loss = gt.nn.cross_entropy(h @ W3 + b3, y)
        loss.backward()
        grads = [p.grad for p in params]
        with gt.no_grad():
            for p in params:
                p -= F.LR * p.grad
                p.grad = None
        gt.synchronize("cuda")
        return loss, grads
    return step


def mlp_autograd(params0, x, y):
    ag = _peer(AUTOGRAD)
    anp = importlib.import_module("autograd.numpy")
    lse = importlib.import_module("autograd.scipy.special").logsumexp
    params = [p.copy() for p in params0]
    n = x.shape[0]
    onehot = np.eye(F.SIZES[-1], dtype=np.float32)[y]

    def loss_fn(ps):
        W1, b1, W2, b2, W3, b3 = ps
        h = anp.maximum(anp.dot(x, W1) + b1, 0.0)
        h = anp.maximum(anp.dot(h, W2) + b2, 0.0)
        logits = anp.dot(h, W3) + b3
        return anp.sum(lse(logits, axis=1) - anp.sum(logits * onehot, axis=1)) / n
    vg = ag.value_and_grad(loss_fn)

    def step():
        loss, grads = vg(params)
        for i, g in enumerate(grads):
            params[i] = params[i] - F.LR * g
        return loss, grads
    return step


def mlp_mygrad(params0, x, y):
    mg = _peer(MYGRAD)
    relu = importlib.import_module("mygrad.nnet.activations").relu
    xent = importlib.import_module("mygrad.nnet.losses").softmax_crossentropy
    params = [mg.tensor(p.copy()) for p in params0]
    W1, b1, W2, b2, W3, b3 = params

    def step():
        h = relu(mg.matmul(x, W1) + b1)
        h = relu(mg.matmul(h, W2) + b2)
        loss = xent(mg.matmul(h, W3) + b3, y)
        loss.backward()
        grads = [p.grad for p in params]
        for p in params:
            p.data -= F.LR * p.grad
        return loss, grads
    return step


def mlp_impls():
    params0, x, y = F.mlp_data()
    return {HAND: lambda: F.make_mlp_numpy(params0, x, y),
            GT: lambda: F.make_mlp_gradtape(params0, x, y),
            GT_NN: lambda: mlp_gradtape_nn(params0, x, y),
            GT_CUDA: lambda: mlp_gradtape_cuda(params0, x, y),
            TORCH: lambda: F.make_mlp_torch(params0, x, y),
            AUTOGRAD: lambda: mlp_autograd(params0, x, y),
            MYGRAD: lambda: mlp_mygrad(params0, x, y),
            JAX: lambda: F.make_mlp_jax(params0, x, y)}


def mlp_check(ref, got):
    """The foundation's float32 check: max |diff| <= C * K * eps32 * max |reference|, K the step's reduction
    length (``F.tolerance``; see benchmarks/README.md), for the loss and every gradient."""
    (l0, g0), (l1, g1) = ref, got
    # the suite compares values (a peer may hand back float64 from float32 data): cast to the reference's dtype
    cast = [np.asarray(_np(g)).astype(r.dtype, copy=False) for g, r in zip(g1, g0)]
    msg = F.mlp_compare("", (np.asarray(_np(l1)).astype(np.asarray(l0).dtype), cast), (l0, g0))
    return msg is None, msg or f"loss {float(_np(l1)):.7g}"


# ---- (hessian) of x^T A x -------------------------------------------------------------------------------

def hessian_data(n=HESSIAN_N):
    rng = np.random.default_rng(2)
    return rng.standard_normal((n, n)), rng.standard_normal(n)


def hessian_gradtape(A_np, x_np, device="cpu"):
    A = gt.asarray(A_np, device=device)
    x = gt.asarray(x_np, device=device)

    def f(x):
        return x @ (A @ x)
    if hasattr(gt, "hessian"):
        h = gt.hessian(f)
    else:                                 # before gt.hessian existed: forward-over-reverse, one column per basis vector
        def h(x):
            eye = gt.eye(x.shape[0], dtype=x.dtype, device=x.device)
            return gt.stack([gt.jvp(gt.grad(f), (x,), (eye[i],))[1] for i in range(x.shape[0])], axis=1)
    sync = device != "cpu"

    def run():
        H = h(x)
        if sync:
            gt.synchronize(device)
        return H
    return run


def hessian_torch(A_np, x_np):
    torch = _peer(TORCH)
    A = torch.tensor(A_np)
    x = torch.tensor(x_np)
    h = torch.func.hessian(lambda x: x @ (A @ x))
    return lambda: h(x)


def hessian_autograd(A_np, x_np):
    ag = _peer(AUTOGRAD)
    anp = importlib.import_module("autograd.numpy")
    h = ag.hessian(lambda x: anp.dot(x, anp.dot(A_np, x)))
    return lambda: h(x_np)


def hessian_jax(A_np, x_np):
    jax = _peer(JAX)
    jnp = jax.numpy
    A = jnp.asarray(A_np)
    h = jax.jit(jax.hessian(lambda x: x @ (A @ x)))
    x = jnp.asarray(x_np)
    return lambda: h(x).block_until_ready()


def hessian_impls():
    A, x = hessian_data()
    return {HAND: lambda: (lambda: A + A.T),
            GT: lambda: hessian_gradtape(A, x),
            GT_CUDA: lambda: hessian_gradtape(A, x, "cuda"),
            TORCH: lambda: hessian_torch(A, x),
            AUTOGRAD: lambda: hessian_autograd(A, x),
            MYGRAD: None,         # MyGrad has no higher-order derivatives
            JAX: lambda: hessian_jax(A, x)}


def hessian_check(ref, got):
    got = _np(got)
    ok = got.shape == ref.shape and np.allclose(got, ref, rtol=1e-10, atol=1e-10)
    return ok, f"max |dH| {np.max(np.abs(got - ref)) if got.shape == ref.shape else got.shape}"


# ---- the suite ----------------------------------------------------------------------------------------------

CASES = {
    "chain16": dict(label="200-op chain, 16 f64, fwd+bwd", unit="us/op", scale=1e6 / F.N_OPS,
                    impls=lambda: chain_impls(16), check=chain_check, budget=(0.2, 0.03), repeats=(15, 3)),
    "chain1e6": dict(label="200-op chain, 1e6 f64, fwd+bwd", unit="ms", scale=1e3,
                     impls=lambda: chain_impls(1_000_000), check=chain_check, budget=(0.0, 0.0), repeats=(5, 1)),
    "mlp": dict(label="MLP 784-1024-1024-10 step, b=256 f32", unit="ms", scale=1e3,
                impls=mlp_impls, check=mlp_check, budget=(0.5, 0.0), repeats=(11, 1), pause=0.1),
    "hessian": dict(label=f"Hessian of x^T A x, n={HESSIAN_N} f64", unit="ms", scale=1e3,
                    impls=hessian_impls, check=hessian_check, budget=(0.3, 0.0), repeats=(9, 1)),
}

SKIP_REASONS = {
    (MYGRAD, "hessian"): "MyGrad has no higher-order derivatives",
}


def run_case(key, quick, log=print, peers=None):
    """Check, then time, every implementation of ``key``; ``peers``: the peer modules to run (None: all)."""
    spec = CASES[key]
    impls = spec["impls"]()
    fns, notes = {}, {}
    for name in ORDER:
        make = impls.get(name)
        if make is None:
            if name in impls or (name, key) in SKIP_REASONS:
                notes[name] = SKIP_REASONS.get((name, key), "not applicable")
            continue
        if name == GT_CUDA and not _cuda():
            notes[name] = "no CUDA GPU with CuPy"
            continue
        if name in PEER_MODULES and peers is not None and PEER_MODULES[name] not in peers:
            notes[name] = "skipped (--systems/--skip)"
            continue
        if name in PEER_MODULES and _peer(name) is None:
            notes[name] = "not installed"
            continue
        try:
            fns[name] = make()
        except Exception as e:            # noqa: BLE001 - a peer that cannot run this case is reported, not fatal
            notes[name] = f"setup failed: {type(e).__name__}: {e}"
    # correctness first: the first call of each (all start from the same data)
    ref = fns[HAND]()
    wrong = {}
    for name in list(fns):
        if name == HAND:
            continue
        try:
            ok, detail = spec["check"](ref, fns[name]())
        except Exception as e:            # noqa: BLE001
            ok, detail = False, f"{type(e).__name__}: {e}"
        if not ok:
            wrong[name] = detail
            notes[name] = f"FAILED check: {detail}"
            del fns[name]
            log(f"  {key}: {name} disagrees with the hand-written result: {detail}")
    i = 1 if quick else 0
    times, number = F.interleaved(fns, spec["repeats"][i], spec["budget"][i], pause=spec.get("pause", 0.0))
    res = {"label": spec["label"], "unit": spec["unit"], "calls_per_repeat": number, "notes": notes,
           "wrong": wrong, "impls": {}}
    for name, ts in times.items():
        res["impls"][name] = {"median": statistics.median(ts) * spec["scale"], "min": min(ts) * spec["scale"],
                              "ratio": F._paired(ts, times[HAND]),
                              "ratio_min": min(ts) / min(times[HAND])}
    return res


def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:                     # noqa: BLE001
        return getattr(sys.modules.get(dist), "__version__", "?")


def machine():
    info = F.machine_info()
    info["peers"] = {}
    for name, mod in PEER_MODULES.items():
        m = _peer(name)
        info["peers"][mod] = _version(mod) if m is not None else None
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version", "prefix")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    info["cuda"] = _cuda()
    if info["cuda"]:
        import cupy
        info["cupy"] = cupy.__version__
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return info


def markdown(results, info, quick):
    names = [n for n in ORDER if any(n in c["impls"] or n in c["notes"] for c in results["cases"].values())]
    lines = [f"## gradtape benchmark suite{' (--quick)' if quick else ''}", ""]
    lines.append(f"- gradtape {info['gradtape']} at commit {info['gradtape_commit']}; Python {info['python']}")
    lines.append(f"- machine: {info['processor']}, {info['cpu_count']} CPUs, {info['platform']}"
                 + (f"; GPU {info['gpu']} (CuPy {info['cupy']})" if info.get("cuda") else "; no GPU"))
    lines.append(f"- NumPy {info['numpy']}, BLAS {info['blas']}"
                 + (", thread pools: " + ", ".join(f"{p['internal_api']} {p['num_threads']} threads"
                                                    for p in info["threadpools"]) if info.get("threadpools") else ""))
    lines.append("- peers: " + ", ".join(f"{k} {v}" if v else f"{k} not installed" for k, v in info["peers"].items())
                 + f"; PyTorch runs with {F.TORCH_THREADS} threads; JAX with jax.jit (x64), compile time excluded")
    lines.append("- cells: median time per call (ratio to hand-written NumPy, median of per-repeat ratios); "
                 "every result was checked against the hand-written one before timing")
    lines.append("")
    lines.append("| case | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for c in results["cases"].values():
        cells = []
        for n in names:
            r = c["impls"].get(n)
            if r is not None:
                cells.append(f"{F._fmt(r['median'], c['unit'])}" + ("" if n == HAND else f" ({r['ratio']:.2f}x)"))
            else:
                note = c["notes"].get(n, "n/a")
                cells.append(note if note.startswith("FAILED") else "n/a" if note in ("not installed",)
                             else note if len(note) < 40 else "n/a")
        lines.append(f"| {c['label']} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = list(results["cases"].values())
    names = [n for n in ORDER if n != HAND and any(n in c["impls"] for c in cases)]
    fig, ax = plt.subplots(figsize=(12, 1.4 + 0.9 * len(cases)))
    h = 0.8 / max(len(names), 1)
    for j, n in enumerate(names):
        ys = [i + (j - (len(names) - 1) / 2) * h for i in range(len(cases))]
        vals = [c["impls"][n]["ratio"] if n in c["impls"] else 0 for c in cases]
        bars = ax.barh(ys, vals, height=h, label=n)
        for b, v in zip(bars, vals):
            if v:
                ax.text(v * 1.05, b.get_y() + b.get_height() / 2, f"{v:.2f}x", va="center", fontsize=7)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(cases)), [c["label"] for c in cases])
    ax.invert_yaxis()
    ax.set_xlabel("time / hand-written NumPy time (log scale; 1 = the hand-written limit)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _run_isolated(key, quick, out, peers=None):
    """run_case(key) in a fresh interpreter (the heap and thread pools a previous case left do not slow it)."""
    import subprocess
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f".case-{key}.json")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "benchmarks", "--worker", path, "--cases", key] + (["--quick"] if quick else []) \
        + (["--systems", ",".join(peers) or "numpy"] if peers is not None else [])
    subprocess.run(cmd, cwd=root, check=True)
    with open(path) as f:
        res = json.load(f)
    os.remove(path)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description="gradtape benchmark suite: gradtape vs hand-written gradients and "
                                             "installed peers (PyTorch, autograd, MyGrad, JAX)")
    ap.add_argument("--quick", action="store_true", help="CI smoke run: few repeats, short batches")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"),
                    help="folder for suite.json, suite.md and suite.png (default benchmarks/results, gitignored)")
    ap.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)")
    ap.add_argument("--in-process", action="store_true",
                    help="run every case in this process (default: one fresh process per case, so that a case "
                         "does not inherit the previous one's heap and thread pools)")
    ap.add_argument("--systems", metavar="LIST", help="comma-separated peers to run (default: every installed one "
                                                      f"of {','.join(PEER_MODULES.values())}); gradtape and the "
                                                      "hand-written code always run")
    ap.add_argument("--skip", metavar="LIST", help="comma-separated peers to leave out, e.g. --skip mygrad,jax")
    ap.add_argument("--worker", metavar="JSON", help=argparse.SUPPRESS)   # internal: run one case, write its result
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    for k in keys:
        if k not in CASES:
            ap.error(f"unknown case {k!r}; choose from {', '.join(CASES)}")
    peers = choose_peers(args.systems, args.skip)
    if args.worker:
        machine()                          # imports the peers as the full run does
        with open(args.worker, "w") as f:
            json.dump(run_case(keys[0], args.quick, log=lambda m: print(m, file=sys.stderr), peers=peers), f,
                      default=str)
        return 0
    t0 = time.perf_counter()
    info = machine()
    results = {"machine": info, "quick": args.quick, "cases": {}}
    for k in keys:
        print(f"running {k} ...", file=sys.stderr, flush=True)
        results["cases"][k] = run_case(k, args.quick, log=lambda m: print(m, file=sys.stderr), peers=peers) \
            if args.in_process else _run_isolated(k, args.quick, args.out, peers)
    results["wall_s"] = time.perf_counter() - t0
    os.makedirs(args.out, exist_ok=True)
    md = markdown(results, info, args.quick)
    with open(os.path.join(args.out, "suite.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    with open(os.path.join(args.out, "suite.md"), "w") as f:
        f.write(md)
    if not args.no_chart:
        chart(results, os.path.join(args.out, "suite.png"))
    print(md)
    print(f"total wall time {results['wall_s']:.0f} s; results in {args.out}/suite.{{json,md"
          f"{'' if args.no_chart else ',png'}}}")
    bad = {k: {n: w for n, w in c["wrong"].items() if n in GT_IMPLS} for k, c in results["cases"].items()}
    bad = {k: v for k, v in bad.items() if v}
    peers_bad = {k: {n: w for n, w in c["wrong"].items() if n not in GT_IMPLS} for k, c in results["cases"].items()}
    if any(peers_bad.values()):
        print("peers that failed their check (marked in the table, not timed): "
              f"{ {k: v for k, v in peers_bad.items() if v} }", file=sys.stderr)
    if bad:
        print(f"ERROR: gradtape disagrees with the hand-written result: {bad}", file=sys.stderr)
        return 1
    return 0


def choose_peers(systems, skip):
    """The peer modules to run from ``--systems``/``--skip`` (None: every one); gradtape, NumPy always run."""
    if systems is None and skip is None:
        return None
    known = set(PEER_MODULES.values())

    def names(arg):
        out = {"torch" if n.strip().lower() == "pytorch" else n.strip().lower() for n in (arg or "").split(",")}
        out -= {"", "gradtape", "numpy"}
        if out - known:
            raise SystemExit(f"unknown peer(s) {', '.join(sorted(out - known))}; the peers are "
                             f"{', '.join(PEER_MODULES.values())}")
        return out
    chosen = names(systems) if systems is not None else known
    return sorted(chosen - names(skip))
