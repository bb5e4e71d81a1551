"""GPU benchmarks: gradtape on CuPy against hand-written CuPy gradients and PyTorch CUDA eager.

Run from the repository root on a machine with a CUDA GPU (CuPy, optionally PyTorch)::

    python -m benchmarks.gpu_bench --json gpu.json --md gpu.md     # about 1-2 minutes
    python -m benchmarks.gpu_bench --quick                         # fewer repeats
    python -m benchmarks.gpu_bench --dry-run                       # no GPU: NumPy in place of CuPy,
                                                                   # small shapes; checks the logic only

Cases, side by side in one run (see benchmarks/GPU.md):

* ``mlp256``, ``mlp4096``: MLP 784-1024-1024-10 training step, float32, ReLU, mean softmax
  cross-entropy with integer labels, SGD update (lr 0.1) included, at batch 256 and 4096.
* ``chain16``, ``chain1e6``: the 200-op elementwise chain, 50 x (sin, tanh, * 1.01, + c),
  loss = sum, gradient w.r.t. the input, at 16 and 1,000,000 elements (float32 by default).
* ``kernels``: each fused CuPy backward kernel against the generic rule it overrides.
* memory: CuPy pool bytes in use after a training step (all gradients dropped) minus before it
  (target 0: no graph kept alive), and the pool's high-water growth during one step.

Implementations: ``cupy`` (hand-written forward and analytic backward, the limit),
``gradtape`` (fused kernels on, the default), ``gradtape_generic`` (fused kernels off: the
generic rules), ``torch`` (PyTorch CUDA eager, TF32 off). Every case first checks that all
implementations agree with the hand-written gradients; ``gt_jit``: ``gt.jit`` of the functional step (the
chain's ``value_and_grad``; the MLP's loss, gradients and SGD update), lowered to fused CuPy kernels and,
without guards, replayed from a CUDA graph (``--no-jit-cuda``: the replay plan); ``jit`` in a case's JSON
says whether the graph was captured (or why not). Every case first checks that all
implementations agree with the hand-written gradients; a disagreement is recorded in the results
(``check``) and shown in the table, and the case is still timed.

Timing: each repeat runs every implementation once in rotating order; a batch of calls is
preceded and followed by a device synchronisation, so the time covers the GPU work. Reported:
the median over repeats of the time per call (minimum in the JSON) and ratios as medians of the
per-repeat ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import gradtape as gt

from benchmarks.foundation import chain_numpy, make_mlp_numpy, make_mlp_torch, mlp_loss
from benchmarks.graph_replay import chain

CYCLES = 50                  # 4 ops per cycle -> 200 ops
N_OPS = 4 * CYCLES
MUL = 1.01
LR = 0.1
SIZES = (784, 1024, 1024, 10)
TARGETS = {"mlp4096_vs_torch": 1.1, "mem_after_backward_bytes": 0,
           # issue 13 (gt.jit): the chain at 16 elements from a CUDA graph, the MLP step at batch 4096
           "jit_chain16_vs_torch": 0.3, "jit_mlp4096_vs_torch": 1.0}


# ----------------------------------------------------------------------------------------------
# environment: real GPU or dry run
# ----------------------------------------------------------------------------------------------

class Env:
    """What the benchmarks run on: ``xp`` (cupy or numpy), gradtape's device, torch's device, sync."""

    def __init__(self, dry, device="cuda:0"):
        self.dry = dry
        self.torch = _import_torch()
        if dry:
            self.xp = np
            self.device = "cpu"
            self.torch_device = "cpu" if self.torch is not None else None
        else:
            import cupy
            self.xp = cupy
            self.device = gt.backends.canonical_device(device)
            self.index = int(self.device.split(":")[1])
            cupy.cuda.Device(self.index).use()
            tc = self.torch is not None and self.torch.cuda.is_available()
            self.torch_device = f"cuda:{self.index}" if tc else None
            if tc:
                self.torch.backends.cuda.matmul.allow_tf32 = False    # CuPy's float32 GEMMs are full fp32
                self.torch.backends.cudnn.allow_tf32 = False
        self.bk = gt.backends.get(self.device)

    def sync(self):
        gt.synchronize(self.device)
        if self.torch_device is not None and self.torch_device.startswith("cuda"):
            self.torch.cuda.synchronize(self.torch_device)

    def to_host(self, a):
        if isinstance(a, gt.Tensor):
            return gt.to_numpy(a)
        if self.torch is not None and isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return self.bk.to_numpy(a) if not isinstance(a, (np.ndarray, np.generic, float, int)) else np.asarray(a)

    # CuPy pool figures (zeros in a dry run: NumPy has no pool)
    def pool_used(self):
        return 0 if self.dry else self.bk.memory_stats()["used_bytes"]

    def pool_total(self):
        return 0 if self.dry else self.bk.memory_stats()["total_bytes"]

    def pool_release(self):
        if not self.dry:
            self.bk.free_cached()

    def info(self):
        info = {"mode": "dry-run (NumPy in place of CuPy, small shapes)" if self.dry else "gpu",
                "platform": platform.platform(), "python": sys.version.split()[0], "numpy": np.__version__,
                "gradtape_device": self.device, "gradtape_commit": _git_commit(),
                "torch": getattr(self.torch, "__version__", None), "torch_device": self.torch_device}
        if not self.dry:
            import cupy
            rt = cupy.cuda.runtime
            props = rt.getDeviceProperties(self.index)
            name = props.get("name", b"?")
            info.update({"gpu": name.decode() if isinstance(name, bytes) else str(name),
                         "gpu_memory_bytes": int(props.get("totalGlobalMem", 0)),
                         "cupy": cupy.__version__, "cuda_runtime": rt.runtimeGetVersion(),
                         "cuda_driver": rt.driverGetVersion(), "gpu_count": rt.getDeviceCount(),
                         "fused_kernels_default": list(getattr(self.bk, "fused", ()))})
            if self.torch_device:
                info["torch_cuda"] = self.torch.version.cuda
                info["torch_tf32"] = False
        return info


def _import_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def _git_commit():
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gradtape", "backends"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) or None


@contextlib.contextmanager
def fused(bk, on):
    """Fused backward kernels of backend ``bk`` on or off inside the block.

    CuPy: ``set_fused``. Other backends (the NumPy one of a dry run): their override entries
    (``*_vjp`` in the namespace) are hidden, so the rules run their generic code."""
    if hasattr(bk, "set_fused"):
        old = bk.set_fused(bk.fused if on else ())
        try:
            yield
        finally:
            bk.set_fused(old)
        return
    ns = bk.xp.__dict__
    hidden = {} if on else {k: ns.pop(k) for k in list(ns) if k.endswith("_vjp")}
    try:
        yield
    finally:
        ns.update(hidden)


def generic(fn, bk):
    """``fn`` run with the fused kernels off (for the gradtape_generic implementation)."""
    def run():
        with fused(bk, False):
            return fn()
    return run


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------

def interleaved(fns, repeats, budget, sync):
    """Seconds per call of each of ``fns`` per repeat, interleaved, synchronised around every batch."""
    number = {}
    for k, f in fns.items():
        f()
        sync()
        t0 = time.perf_counter()
        f()
        sync()
        number[k] = max(1, int(round(budget / max(time.perf_counter() - t0, 1e-9))))
    names = list(fns)
    out = {k: [] for k in names}
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:
            f, n = fns[k], number[k]
            gc.collect()
            sync()
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            sync()
            out[k].append((time.perf_counter() - t0) / n)
    return out, number


def _paired(a, b):
    return statistics.median(x / y for x, y in zip(a, b))


# ----------------------------------------------------------------------------------------------
# the elementwise chain
# ----------------------------------------------------------------------------------------------

def make_chain_hand(env, x0_np, c_np):
    """Hand-written CuPy: the foundation benchmark's hand-written chain on env.xp."""
    xp = env.xp
    x0, c = xp.asarray(x0_np), xp.asarray(c_np)
    return lambda: chain_numpy(x0, c, xp=xp)


def make_chain_gradtape(env, x0_np, c_np):
    x0 = gt.asarray(x0_np, device=env.device)
    x0.requires_grad_()
    c = gt.asarray(c_np, device=env.device)

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


def make_chain_torch(env, x0_np, c_np):
    torch = env.torch
    x0 = torch.tensor(x0_np, device=env.torch_device, requires_grad=True)
    c = torch.tensor(c_np, device=env.torch_device)

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


def make_chain_jit(env, x0_np, c_np):
    """``gt.jit(gt.value_and_grad(chain))``: one compiled graph of the forward and the reverse pass."""
    x0 = gt.asarray(x0_np, device=env.device)
    c = gt.asarray(c_np, device=env.device)
    f = chain(c)
    jf = gt.jit(gt.value_and_grad(f))

    def run():
        return jf(x0)
    run.jitted, run.args = jf, (x0,)
    return run


def jit_note(fn):
    """How a ``gt_jit`` implementation ran: its lowering's kind, and for a CUDA lowering whether its steps run
    from a captured CUDA graph (or why not)."""
    jf = getattr(fn, "jitted", None)
    if jf is None:
        return None
    exe = jf.lower(*fn.args)._entry.exe
    note = {"kind": exe.kind, "traces": jf.cache_info().traces}
    g = getattr(exe.fn, "graph", False)
    if g is not False:
        note["cuda_graph"] = g is not None
        note["cuda_graph_reason"] = exe.fn.reason
    return note


def chain_impls(env, n, dtype):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2.0, 2.0, n).astype(dtype)
    c = rng.uniform(-0.5, 0.5, n).astype(dtype)
    fns = {"cupy": make_chain_hand(env, x0, c), "gradtape": make_chain_gradtape(env, x0, c)}
    fns["gradtape_generic"] = generic(fns["gradtape"], env.bk)
    fns["gt_jit"] = make_chain_jit(env, x0, c)
    if env.torch_device is not None:
        fns["torch"] = make_chain_torch(env, x0, c)
    return fns


def check_chain(env, fns, dtype):
    rtol = 1e-4 if dtype == "float32" else 1e-10
    ref_loss, ref_g = [env.to_host(v) for v in fns["cupy"]()]
    out = {}
    for k in fns:
        if k == "cupy":
            continue
        loss, g = [env.to_host(v) for v in fns[k]()]
        ok = (g.shape == ref_g.shape and np.allclose(loss, ref_loss, rtol=rtol, atol=rtol * abs(float(ref_loss)))
              and np.allclose(g, ref_g, rtol=rtol, atol=rtol))
        out[k] = "ok" if ok else (f"FAIL: loss {float(loss)} vs {float(ref_loss)}, max |dg| "
                                  f"{np.max(np.abs(g - ref_g)) if g.shape == ref_g.shape else 'shape ' + str(g.shape)}")
    return out


# ----------------------------------------------------------------------------------------------
# the MLP training step
# ----------------------------------------------------------------------------------------------

def mlp_data(batch, sizes):
    rng = np.random.default_rng(1)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        params.append((0.01 * rng.standard_normal(fan_out)).astype(np.float32))
    x = rng.random((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return params, x, y


def make_mlp_hand(env, params0, x_np, y_np):
    """Hand-written CuPy: the foundation benchmark's hand-written MLP step on env.xp."""
    return make_mlp_numpy(params0, x_np, y_np, xp=env.xp)


def make_mlp_gradtape(env, params0, x_np, y_np):
    """PyTorch-style loop: requires_grad_() leaves, update under no_grad, grad reset to None."""
    params = [gt.asarray(p.copy(), device=env.device) for p in params0]
    for p in params:
        p.requires_grad_()
    W1, b1, W2, b2, W3, b3 = params
    x = gt.asarray(x_np, device=env.device)
    y = gt.asarray(y_np, device=env.device)

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


def make_mlp_jit(env, params0, x_np, y_np):
    """``gt.jit`` of the functional step: loss and gradients (``value_and_grad``), new parameters p - lr * g."""
    params = [gt.asarray(p.copy(), device=env.device) for p in params0]
    x = gt.asarray(x_np, device=env.device)
    y = gt.asarray(y_np, device=env.device)

    def step(W1, b1, W2, b2, W3, b3):
        ps = (W1, b1, W2, b2, W3, b3)
        loss, grads = gt.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3, 4, 5))(*ps, x, y)
        return loss, grads, tuple(p - LR * g for p, g in zip(ps, grads))
    jf = gt.jit(step)
    state = {"ps": params}

    def run():
        loss, grads, state["ps"] = jf(*state["ps"])
        return loss, list(grads)
    run.jitted, run.args = jf, params
    return run


def mlp_impls(env, batch, sizes):
    params0, x, y = mlp_data(batch, sizes)
    fns = {"cupy": make_mlp_hand(env, params0, x, y), "gradtape": make_mlp_gradtape(env, params0, x, y)}
    g2 = make_mlp_gradtape(env, params0, x, y)      # its own parameters: every step updates them
    fns["gradtape_generic"] = generic(g2, env.bk)
    fns["gt_jit"] = make_mlp_jit(env, params0, x, y)
    if env.torch_device is not None:
        fns["torch"] = make_mlp_torch(params0, x, y, device=env.torch_device)
    return fns


def check_mlp(env, fns):
    """First step of each implementation (same initial parameters) against the hand-written one."""
    ref_loss, ref_g = fns["cupy"]()
    ref_loss, ref_g = float(env.to_host(ref_loss)), [env.to_host(g) for g in ref_g]
    names = ["W1", "b1", "W2", "b2", "W3", "b3"]
    out = {}
    for k in fns:
        if k == "cupy":
            continue
        loss, grads = fns[k]()
        loss = float(env.to_host(loss))
        msg = "ok"
        if not np.allclose(loss, ref_loss, rtol=1e-4, atol=1e-6):
            msg = f"FAIL: loss {loss} vs {ref_loss}"
        for name, g, r in zip(names, grads, ref_g):
            g = env.to_host(g)
            scale = float(np.max(np.abs(r)))
            if g.shape != r.shape or g.dtype != r.dtype or not np.allclose(g, r, rtol=1e-3, atol=1e-4 * scale):
                msg = (f"FAIL: gradient of {name} ({g.shape}, {g.dtype}) vs ({r.shape}, {r.dtype}), max |diff| "
                       f"{np.max(np.abs(g - r)) if g.shape == r.shape else 'n/a'}, scale {scale}")
                break
        out[k] = msg
    return out


def step_memory(env, step, warmup=2):
    """(bytes in use after a step minus before it, pool high-water growth during the step), CuPy pool.

    The step's return value (loss, gradients) is dropped first: what stays is what the step leaks
    (a graph kept alive by a parameter, a cached gradient...)."""
    for _ in range(warmup):
        step()
    env.sync()
    gc.collect()
    env.pool_release()
    before_used, before_total = env.pool_used(), env.pool_total()
    r = step()
    env.sync()
    peak_total = env.pool_total()
    del r
    gc.collect()
    env.sync()
    return env.pool_used() - before_used, peak_total - before_total


def torch_step_memory(env, step, warmup=2):
    torch = env.torch
    if env.torch_device is None or not env.torch_device.startswith("cuda"):
        return None, None
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    gc.collect()
    before = torch.cuda.memory_allocated(env.torch_device)
    torch.cuda.reset_peak_memory_stats(env.torch_device)
    r = step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated(env.torch_device)
    del r
    gc.collect()
    return torch.cuda.memory_allocated(env.torch_device) - before, peak - before


# ----------------------------------------------------------------------------------------------
# fused kernels against the generic rules
# ----------------------------------------------------------------------------------------------

def kernel_cases(env, n_rows, n_cols):
    """name -> (fused-path call, generic-path call) of each backward rule with an override (both via the rule)."""
    from gradtape._ops import elementwise as P
    from gradtape._ops import nn as gnn
    xp, bk = env.bk.xp, env.bk
    rng = np.random.default_rng(3)
    x = bk.asarray(rng.standard_normal((n_rows, n_cols)).astype(np.float32))
    ct = bk.asarray(rng.standard_normal((n_rows, n_cols)).astype(np.float32))
    th = xp.tanh(x)
    sg = bk.asarray((1 / (1 + np.exp(-rng.standard_normal((n_rows, n_cols))))).astype(np.float32))
    logits = bk.asarray(rng.standard_normal((n_rows, 10)).astype(np.float32))
    labels = bk.asarray(rng.integers(0, 10, n_rows))
    ct0 = bk.asarray(np.float32(1.0))
    calls = {
        "relu": lambda: P.relu.vjp[0](bk.xp, ct, None, x, 0.0),
        "tanh": lambda: P.tanh.vjp[0](bk.xp, ct, th, None),
        "sigmoid": lambda: P.sigmoid.vjp[0](bk.xp, ct, sg, None),
        "softplus": lambda: P.softplus.vjp[0](bk.xp, ct, None, x),
        "cross_entropy": lambda: gnn.cross_entropy_p.vjp[0](bk.xp, ct0, None, logits, labels),
    }
    have = {k[:-4] for k in bk.xp.__dict__ if k.endswith("_vjp")} if not hasattr(bk, "fused") else set(bk.fused)
    out = {}
    for name, call in calls.items():
        if name in have:
            out[name] = (call, generic(call, bk))
    return out


def bench_kernels(env, repeats, budget, shapes):
    res = {}
    for rows, cols in shapes:
        cases = kernel_cases(env, rows, cols)
        for name, (f_fused, f_generic) in cases.items():
            a, b = env.to_host(f_fused()), env.to_host(f_generic())
            tol = 1e-6
            check = "ok" if a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol) else \
                f"FAIL: max |diff| {np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'}"
            times, _ = interleaved({"fused": f_fused, "generic": f_generic}, repeats, budget, env.sync)
            key = f"{name}@{rows}x{cols if name != 'cross_entropy' else 10}"
            res[key] = {"fused_us": statistics.median(times["fused"]) * 1e6,
                        "generic_us": statistics.median(times["generic"]) * 1e6,
                        "ratio_fused_generic": _paired(times["fused"], times["generic"]), "check": check}
    return res


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def _summary(samples, scale):
    return {"median": statistics.median(samples) * scale, "min": min(samples) * scale,
            "repeats": [s * scale for s in samples]}


def _fmt(v, unit=""):
    if v is None:
        return "n/a"
    return (f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}") + (f" {unit}" if unit else "")


def _mib(b):
    return "n/a" if b is None else f"{b / 2**20:.1f} MiB"


def run(args):
    """The results of every case (see the module docstring); gt.jit on CuPy lowered to fused kernels and CUDA
    graphs during the run unless ``--no-jit-cuda`` (the lowering is off by default; restored after)."""
    from gradtape._jit import cuda_lower
    old = cuda_lower.ENABLED
    cuda_lower.ENABLED = not args.no_jit_cuda
    try:
        return _run(args)
    finally:
        cuda_lower.ENABLED = old


def _run(args):
    env = Env(args.dry_run, args.device)
    if args.dry_run:
        sizes, batches, chains = (784, 64, 64, 10), (16, 64), (16, 1000)
        kshapes = [(64, 64)]
        rep, bud = 2, 0.005
    elif args.quick:
        sizes, batches, chains = SIZES, (256, 4096), (16, 1_000_000)
        kshapes = [(256, 1024), (4096, 1024)]
        rep, bud = 3, 0.05
    else:
        sizes, batches, chains = SIZES, (256, 4096), (16, 1_000_000)
        kshapes = [(256, 1024), (4096, 1024)]
        rep, bud = 7, 0.2
    t_start = time.perf_counter()
    results = {"machine": env.info(), "targets": TARGETS,
               "statistic": "median over interleaved repeats of the time per call (device synchronised around "
                            "each batch); ratios: median of per-repeat ratios",
               "cases": {}, "memory": {}, "kernels": {}}
    cases = results["cases"]

    def case(key, label, unit, scale, fns, check, extra=None):
        _log(f"timing {key} ...")
        times, number = interleaved(fns, rep, bud, env.sync)
        s = {k: _summary(v, scale) for k, v in times.items()}
        ratios = {}
        for a, b in (("gradtape", "torch"), ("gradtape", "cupy"), ("torch", "cupy"), ("gradtape", "gradtape_generic"),
                     ("gt_jit", "torch"), ("gt_jit", "cupy")):
            if a in times and b in times:
                ratios[f"{a}/{b}"] = _paired(times[a], times[b])
        cases[key] = {"label": label, "unit": unit, "times": s, "ratios": ratios, "check": check,
                      "calls_per_batch": number, "jit": jit_note(fns["gt_jit"]) if "gt_jit" in fns else None,
                      **(extra or {})}

    for batch in batches:
        key = f"mlp{batch}"
        _log(f"checking {key} ...")
        fns = mlp_impls(env, batch, sizes)
        check = check_mlp(env, fns)
        mem = {"cupy": step_memory(env, fns["cupy"]), "gradtape": step_memory(env, fns["gradtape"]),
               "gradtape_generic": step_memory(env, fns["gradtape_generic"])}
        if "torch" in fns:
            mem["torch"] = torch_step_memory(env, fns["torch"])
        results["memory"][key] = {k: {"after_minus_before_bytes": v[0], "peak_growth_bytes": v[1]}
                                  for k, v in mem.items()}
        case(key, f"MLP {'-'.join(map(str, sizes))} step, batch {batch}, float32", "ms", 1e3, fns, check)
        del fns
        gc.collect()
    for n in chains:
        key = f"chain{n if n < 1000 else f'{n:.0e}'.replace('+0', '').replace('+', '')}"
        _log(f"checking {key} ...")
        fns = chain_impls(env, n, args.chain_dtype)
        check = check_chain(env, fns, args.chain_dtype)
        case(key, f"200-op chain, {n:,} {args.chain_dtype}, fwd+bwd", "ms", 1e3, fns, check)
        del fns
        gc.collect()
    _log("timing fused kernels ...")
    results["kernels"] = bench_kernels(env, rep, bud / 4, kshapes)
    results["wall_s"] = time.perf_counter() - t_start
    # verdicts
    m = cases.get(f"mlp{batches[-1]}", {}).get("ratios", {}).get("gradtape/torch")

    def jit_verdict(key, target):
        r = cases.get(key, {}).get("ratios", {}).get("gt_jit/torch")
        if r is None or args.dry_run:
            return None
        return {"ratio": r, "target": TARGETS[target], "pass": r <= TARGETS[target]}
    results["verdicts"] = {
        "jit_chain16_vs_torch": jit_verdict("chain16", "jit_chain16_vs_torch"),
        "jit_mlp4096_vs_torch": jit_verdict(f"mlp{batches[-1]}", "jit_mlp4096_vs_torch"),
        "mlp4096_vs_torch": None if m is None or args.dry_run else {"ratio": m, "target": TARGETS["mlp4096_vs_torch"],
                                                                   "pass": m <= TARGETS["mlp4096_vs_torch"]},
        "memory_back_to_baseline": None if args.dry_run else
        all(v["gradtape"]["after_minus_before_bytes"] == 0 for v in results["memory"].values()),
        "checks_ok": all(c == "ok" for v in cases.values() for c in v["check"].values())
        and all(v["check"] == "ok" for v in results["kernels"].values()),
        "keep_fused": {k: v["ratio_fused_generic"] < 1.0 for k, v in results["kernels"].items()},
    }
    return results


def markdown(results):
    mi = results["machine"]
    lines = [f"## gradtape GPU benchmarks ({mi['mode']})", ""]
    if mi["mode"] == "gpu":
        lines.append(f"- {mi.get('gpu')} ({mi.get('gpu_count')} visible), CUDA runtime {mi.get('cuda_runtime')}, "
                     f"driver {mi.get('cuda_driver')}; CuPy {mi.get('cupy')}; PyTorch {mi.get('torch')} "
                     f"(CUDA {mi.get('torch_cuda')}, TF32 off); gradtape at {mi.get('gradtape_commit')}")
    else:
        lines.append(f"- dry run on {mi['platform']}: NumPy {mi['numpy']} in place of CuPy, PyTorch {mi['torch']} "
                     f"on {mi['torch_device']}; small shapes; the numbers mean nothing")
    lines += [f"- {results['statistic']}", ""]
    head = ("case", "hand-written CuPy", "gradtape", "gradtape (generic rules)", "gt.jit", "PyTorch CUDA",
            "gradtape / PyTorch", "gt.jit / PyTorch", "gradtape / CuPy", "fused / generic", "gt.jit lowering",
            "checks")
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for c in results["cases"].values():
        t, r = c["times"], c["ratios"]
        med = {k: t[k]["median"] if k in t else None for k in ("cupy", "gradtape", "gradtape_generic", "gt_jit",
                                                                "torch")}
        j = c.get("jit") or {}
        graph = ("" if "cuda_graph" not in j else ", CUDA graph" if j["cuda_graph"] else
                 f", no CUDA graph ({j['cuda_graph_reason']})")
        low = j.get("kind", "n/a") + graph
        bad = [f"{k}: {v}" for k, v in c["check"].items() if v != "ok"]
        lines.append("| " + " | ".join([
            c["label"], _fmt(med["cupy"], c["unit"]), _fmt(med["gradtape"], c["unit"]),
            _fmt(med["gradtape_generic"], c["unit"]), _fmt(med["gt_jit"], c["unit"]), _fmt(med["torch"], c["unit"]),
            _fmt(r.get("gradtape/torch")) + ("x" if "gradtape/torch" in r else ""),
            _fmt(r.get("gt_jit/torch")) + ("x" if "gt_jit/torch" in r else ""),
            _fmt(r.get("gradtape/cupy")) + "x", _fmt(r.get("gradtape/gradtape_generic")) + "x", low[:120],
            "ok" if not bad else "; ".join(bad)]) + " |")
    lines += ["", "| memory (CuPy pool) | in use after step - before | pool high-water growth in a step |",
              "|---|---|---|"]
    for key, v in results["memory"].items():
        for impl, m in v.items():
            lines.append(f"| {key} {impl} | {_mib(m['after_minus_before_bytes'])} "
                         f"({m['after_minus_before_bytes']} B) | {_mib(m['peak_growth_bytes'])} |")
    lines += ["", "| fused kernel | fused | generic rule | fused / generic | check |", "|---|---|---|---|---|"]
    for k, v in results["kernels"].items():
        lines.append(f"| {k} | {_fmt(v['fused_us'], 'us')} | {_fmt(v['generic_us'], 'us')} | "
                     f"{_fmt(v['ratio_fused_generic'])}x | {v['check']} |")
    vd = results["verdicts"]
    lines += ["", f"- MLP at the largest batch, gradtape / PyTorch: {vd['mlp4096_vs_torch']}",
              f"- gt.jit chain at 16 elements / PyTorch (target <= 0.3): {vd['jit_chain16_vs_torch']}",
              f"- gt.jit MLP at the largest batch / PyTorch (target <= 1): {vd['jit_mlp4096_vs_torch']}",
              f"- memory back to baseline after backward (gradtape): {vd['memory_back_to_baseline']}",
              f"- all correctness checks ok: {vd['checks_ok']}",
              f"- fused kernels faster than their generic rule: {vd['keep_fused']}",
              f"- wall time {results['wall_s']:.0f} s", ""]
    return "\n".join(lines)


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="no GPU: NumPy in place of CuPy, small shapes, 2 repeats")
    ap.add_argument("--quick", action="store_true", help="3 repeats, short batches")
    ap.add_argument("--device", default="cuda:0", help="gradtape device (default cuda:0)")
    ap.add_argument("--chain-dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--no-jit-cuda", action="store_true", help="gt.jit on CuPy by the replay plan (no fused kernels)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--md", metavar="PATH", help="write the markdown tables")
    args = ap.parse_args(argv)
    results = run(args)
    md = markdown(results)
    print(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    return 0 if results["verdicts"]["checks_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
