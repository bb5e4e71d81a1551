"""Foundation benchmarks: gradtape against hand-written NumPy gradients and its peers (PyTorch eager, JAX jit).

Run from the repository root::

    python -m benchmarks.foundation            # full run (about 2-3 minutes on 2 cores)
    python -m benchmarks.foundation --quick    # CI smoke run (under a minute)
    python -m benchmarks.foundation --json results.json
    python -m benchmarks.foundation --systems torch --skip jax   # choose the peers

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

Every case first checks each implementation's loss and gradients against the
hand-written NumPy ones (``check_close``: max |diff| <= C * K * eps(dtype) *
max |reference|, K the reduction length; see benchmarks/README.md). A peer
(PyTorch, JAX: ``--systems``/``--skip``) that fails its check is marked in its
cell with the measured error and left out of the timing; the run goes on and
exits 0. Only gradtape disagreeing with hand-written NumPy exits 1. Timings are interleaved (each repeat
runs every implementation once, in rotating order) and the reported time is
the median over repeats of the mean time per call within a repeat (the
minimum is in the JSON output too); a ratio is the median over repeats of the
ratio of the two implementations' times in that repeat, which cancels slow
spells of a shared machine (the ratio of the minima is shown beside it).
The garbage collector stays enabled (as in user code); it is run once before
each timed batch.

Size: one script on purpose (the README's command): the three cases, each implementation of them, the
checks and the report, read top to bottom; suite.py, gpu_bench.py and graph_replay.py import from it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
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

PEERS = ("torch", "jax")     # the peers, in table order; gradtape and NumPy always run
PEER_LABELS = {"torch": "PyTorch", "jax": "JAX (jit)"}

TORCH_THREADS = 2            # the same for every case; (b) asks for 2 threads explicitly
CYCLES = 50                  # 4 ops per cycle -> 200 ops
N_OPS = 4 * CYCLES
N_LARGE = 1_000_000          # elements of case (b)
MUL = 1.01
LR = 0.1

# c_fn: the functional step; c_inplace_fn: in-place step / functional step (the in-place update costs no more
# than the functional one; 2% for the noise of a shared machine)
TARGETS = {"a": 3.5, "b": 1.05, "c": 1.05, "c_fn": 1.05, "c_inplace_fn": 1.02, "c_mem": 1.15}


class GradtapeWrong(Exception):
    """gradtape disagrees with the hand-written NumPy result: the one failure that makes the run exit 1."""


# ----------------------------------------------------------------------------------------------
# correctness checks
# ----------------------------------------------------------------------------------------------

# A result of K rounded steps (a sum of K terms, or K elementwise ops in a row) is within about K * eps * the
# magnitude of its terms of the exact value (Higham's gamma_K bound); C covers the ratio of the terms' magnitude
# to the result's (cancellation) and a second implementation's own error. max |reference| is the magnitude.
TOL_C = 8
CHAIN_K = 2 * N_OPS                # gradient of the chain: 200 ops forward, 200 backward


def tolerance(ref, k):
    """Allowed max |diff| from ``ref`` for a result of ``k`` rounded steps: TOL_C * k * eps(dtype) * max|ref|."""
    ref = np.asarray(ref)
    eps = float(np.finfo(ref.dtype if ref.dtype.kind == "f" else np.float64).eps)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return TOL_C * k * eps * max(scale, np.finfo(np.float64).tiny)


def check_close(name, got, ref, k):
    """None when ``got`` matches ``ref`` (shape, dtype, values within ``tolerance(ref, k)``), else the message."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return f"{name}: {got.shape} {got.dtype}, hand-written NumPy {ref.shape} {ref.dtype}"
    tol = tolerance(ref, k)
    diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    if not diff <= tol:                               # NaN fails too
        return f"{name}: max|diff| {diff:.2g} > tol {tol:.2g}"
    return None


def check_impls(case, fns, ref, compare):
    """Check every implementation but NumPy against ``ref``; a peer that fails is removed from ``fns``.

    ``compare(name, result, ref)`` returns None or a message. Returns {peer: "FAILED check: ..."}; raises
    GradtapeWrong when a gradtape implementation fails."""
    failed = {}
    for name in [k for k in fns if k != "numpy"]:
        try:
            msg = compare(name, fns[name](), ref)
        except Exception as e:                        # noqa: BLE001 - a peer that breaks is reported, not fatal
            if name.startswith("gradtape"):
                raise
            msg = f"{type(e).__name__}: {e}"
        if msg is None:
            continue
        if name.startswith("gradtape"):
            raise GradtapeWrong(f"{case}: {name} disagrees with hand-written NumPy: {msg}")
        failed[name] = f"FAILED check: {msg}"
        del fns[name]
        print(f"  {case}: {name} {failed[name]} (marked in the table; the run goes on)", file=sys.stderr)
    return failed


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


def interleaved(fns, repeats, budget, pause=0.0, shuffle=False):
    """Time each of ``fns`` (name -> zero-arg callable), interleaved; seconds per call per repeat.

    ``pause`` seconds of sleep before each batch let the previous implementation's thread pool
    (OpenBLAS, OpenMP) stop spinning, so that it does not steal cores from the next one. Each repeat
    starts one further along the list (a rotation), which keeps every implementation behind the same
    one; ``shuffle`` takes a new order per repeat instead (seeded: the same orders every run), so that
    no implementation always follows the same neighbour (at 2 threads the one right after an OpenBLAS
    user measured up to 5% slower, with 0.3 s pauses)."""
    number = {k: _calibrate(f, budget) for k, f in fns.items()}
    names = list(fns)
    out = {k: [] for k in names}
    rng = random.Random(0)
    for r in range(repeats):
        order = rng.sample(names, len(names)) if shuffle else names[r % len(names):] + names[:r % len(names)]
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


def make_chain_jax(x0_np, c_np):
    """``jax.jit(jax.value_and_grad(f))`` of the chain, float64 enabled; compile time excluded (warm-up call)."""
    jax = _load_peer("jax")
    jnp = jax.numpy
    c = jnp.asarray(c_np)

    def f(x):
        for _ in range(CYCLES):
            x = jnp.tanh(jnp.sin(x)) * MUL + c
        return jnp.sum(x)
    vg = jax.jit(jax.value_and_grad(f))
    x0 = jnp.asarray(x0_np)

    def run():
        v, g = vg(x0)
        g.block_until_ready()
        return v, g
    return run


def _load_peer(name):
    """The peer's module, or None when it is not installed (JAX: with float64 enabled)."""
    if name == "torch":
        return torch
    try:
        import jax
    except Exception:                # noqa: BLE001 - any import failure means "not available"
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def _add_peers(fns, peers, case, *args):
    """Add each peer's implementation of ``case`` to ``fns``; {peer: message} for those that fail to set up."""
    failed = {}
    for p in peers:
        try:
            fns[p] = PEER_MAKERS[p][case](*args)
        except Exception as e:       # noqa: BLE001 - a peer that cannot run is reported, not fatal
            failed[p] = f"FAILED setup: {type(e).__name__}: {e}"
    return failed


def bench_chain(n, repeats, budget, peers=()):
    """Check, then time, the chain on ``n`` elements; (times, calls per batch, {peer: failure message})."""
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2.0, 2.0, n)
    c = rng.uniform(-0.5, 0.5, n)
    fns = {"numpy": lambda: chain_numpy(x0, c), "gradtape": make_chain_gradtape(x0, c)}
    failed = _add_peers(fns, peers, "chain", x0, c)

    def compare(name, res, ref):
        # the loss sums n elements after N_OPS ops; each gradient element goes through 2 * N_OPS ops
        return (check_close("loss", _to_np(res[0]), np.asarray(ref[0]), N_OPS + n)
                or check_close("gradient", _to_np(res[1]), ref[1], CHAIN_K))
    failed.update(check_impls(f"chain n={n}", fns, fns["numpy"](), compare))
    times, number = interleaved(fns, repeats, budget)
    return times, number, failed


# ----------------------------------------------------------------------------------------------
# (c): MLP training step
# ----------------------------------------------------------------------------------------------

SIZES = (784, 1024, 1024, 10)
BATCH = 256


KINK_MARGIN = 1e-4      # no hidden pre-activation closer to relu's kink than this (see mlp_data)


def mlp_data():
    """(params, x, y) of the MLP step, float32. A bias whose unit has a pre-activation within
    :data:`KINK_MARGIN` of 0 (in float64) is moved by twice that: a pre-activation of ~1e-7, as this seed
    draws, takes either sign under float32 rounding in another summation order (another BLAS, thread
    count), and its sample's whole contribution to the gradient with it; the check of the peers against
    hand-written NumPy would then fail a correct peer."""
    rng = np.random.default_rng(1)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        params.append((0.01 * rng.standard_normal(fan_out)).astype(np.float32))
    x = rng.random((BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    h = x.astype(np.float64)
    for k in (0, 2):                                  # the two relu layers
        W, b = params[k].astype(np.float64), params[k + 1]
        for _ in range(10):
            z = h @ W + b.astype(np.float64)
            near = np.min(np.abs(z), axis=0) < KINK_MARGIN
            if not near.any():
                break
            b[near] += np.float32(2 * KINK_MARGIN)
        h = np.maximum(h @ W + b.astype(np.float64), 0.0)
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


def make_mlp_torch(params0, x_np, y_np, device=None):
    """PyTorch eager step (forward, backward, SGD in place) on ``device`` (None: the CPU; benchmarks/gpu_bench.py
    passes its CUDA device)."""
    params = [torch.tensor(p, device=device, requires_grad=True) for p in params0]
    W1, b1, W2, b2, W3, b3 = params
    x = torch.from_numpy(x_np).to(device)
    y = torch.from_numpy(y_np).to(device)
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


def make_mlp_jax(params0, x_np, y_np):
    """``jax.jit`` of the whole step (value_and_grad, then p - lr * g); compile time excluded (warm-up call)."""
    jax = _load_peer("jax")
    jnp = jax.numpy
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)

    def loss_fn(ps):
        W1, b1, W2, b2, W3, b3 = ps
        h = jax.nn.relu(x @ W1 + b1)
        h = jax.nn.relu(h @ W2 + b2)
        logits = h @ W3 + b3
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0])

    @jax.jit
    def train_step(ps):
        loss, grads = jax.value_and_grad(loss_fn)(ps)
        return loss, grads, [p - LR * g for p, g in zip(ps, grads)]
    state = {"ps": [jnp.asarray(p) for p in params0]}

    def step():
        loss, grads, state["ps"] = train_step(state["ps"])
        loss.block_until_ready()
        return loss, grads
    return step


PEER_MAKERS = {"torch": {"chain": make_chain_torch, "mlp": make_mlp_torch},
               "jax": {"chain": make_chain_jax, "mlp": make_mlp_jax}}


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


# float32 rounding steps of the MLP step: forward matmuls (784, 1024, 1024 terms) and the softmax sum (10); the
# loss adds the mean over the batch (256); a gradient adds the backward matmuls (10, 1024 terms) and the sum
# over the batch (256): 4,132 for every parameter's gradient (the longest path, W1's)
MLP_K_FWD = sum(SIZES[:-1]) + SIZES[-1]
MLP_K_LOSS = MLP_K_FWD + BATCH
MLP_K = MLP_K_FWD + sum(SIZES[2:]) + BATCH
MLP_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def mlp_compare(name, res, ref):
    """None, or what differs between one MLP step's (loss, gradients) and the hand-written ones."""
    (loss, grads), (ref_loss, ref_g) = res, ref
    msg = check_close("loss", _to_np(loss), np.asarray(ref_loss), MLP_K_LOSS)
    for pname, g, r in zip(MLP_NAMES, grads, ref_g):
        msg = msg or check_close(f"gradient of {pname}", _to_np(g), r, MLP_K)
    return msg


def bench_mlp(repeats, budget, peers=()):
    """Check, then time, the MLP step; (times, calls per batch, traced memory, {peer: failure message})."""
    params0, x, y = mlp_data()
    fns = {"numpy": make_mlp_numpy(params0, x, y), "gradtape": make_mlp_gradtape(params0, x, y),
           "gradtape_fn": make_mlp_gradtape_functional(params0, x, y),
           "gradtape_fn_leaves": make_mlp_gradtape_functional(params0, x, y, leaves=True)}
    failed = _add_peers(fns, peers, "mlp", params0, x, y)
    failed.update(check_impls("MLP", fns, fns["numpy"](), mlp_compare))
    mem = {k: step_memory(fns[k]) for k in ("numpy", "gradtape")}
    times, number = interleaved(fns, repeats, budget, pause=0.1)
    return times, number, mem, failed


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


def choose_peers(systems, skip):
    """The peers to run, from ``--systems`` and ``--skip`` (comma-separated; gradtape and NumPy always run)."""
    def names(arg, flag):
        out = [n.strip().lower() for n in (arg or "").split(",") if n.strip()]
        out = ["torch" if n == "pytorch" else n for n in out]
        bad = [n for n in out if n not in PEERS + ("gradtape", "numpy")]
        if bad:
            raise SystemExit(f"{flag}: unknown system(s) {', '.join(bad)}; the peers are {', '.join(PEERS)} "
                             f"(gradtape and numpy always run)")
        return out
    chosen = names(systems, "--systems") if systems is not None else list(PEERS)
    skipped = names(skip, "--skip")
    if {"gradtape", "numpy"} & set(skipped):
        raise SystemExit("--skip: gradtape and numpy always run (they are what the table compares)")
    return [n for n in PEERS if n in chosen and n not in skipped]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, for CI smoke runs (under a minute)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    ap.add_argument("--threads", type=int, metavar="N",
                    help="BLAS and PyTorch threads (threadpoolctl); default: BLAS's own default, PyTorch 2")
    ap.add_argument("--systems", metavar="LIST",
                    help=f"comma-separated peers to compare with (default: every installed one of "
                         f"{','.join(PEERS)}); gradtape and hand-written NumPy always run")
    ap.add_argument("--skip", metavar="LIST", help="comma-separated peers to leave out, e.g. --skip jax")
    args = ap.parse_args(argv)
    wanted = choose_peers(args.systems, args.skip)
    peers = [p for p in wanted if _load_peer(p) is not None]
    absent = {p: "not installed" for p in wanted if p not in peers}
    limits = _limit_threads(args.threads)     # kept alive for the whole run
    if args.quick:
        rep_a, bud_a, rep_b, rep_c, bud_c = 3, 0.05, 1, 3, 0.1
    else:
        rep_a, bud_a, rep_b, rep_c, bud_c = 15, 0.2, 7, 15, 0.5
    t_start = time.perf_counter()
    info = machine_info()
    info["peers"] = {p: getattr(_load_peer(p), "__version__", "?") if p in peers else None for p in wanted}
    results = {"machine": info,
               "statistic": "times: median over interleaved repeats (min also given); ratios: median over "
                            "repeats of the per-repeat ratio (ratio of the minima also given)",
               "targets": TARGETS, "tolerance": f"max|diff| <= {TOL_C} * K * eps(dtype) * max|reference|",
               "cases": {}}
    rows = []

    def peer_cells(times, failed, base, show, unit, scale):
        """Two cells per wanted peer: its time and its ratio to ``base``, or why there is none."""
        cells, out = [], {}
        for p in wanted:
            if not show:
                cells += ["", ""]
            elif p in times:
                s = _summary(times[p], scale)
                r, m = _paired(times[p], times[base]), min(times[p]) / min(times[base])
                cells += [_fmt(s["median"], unit), f"{r:.2f}x (min {m:.2f}x)"]
                out[p] = {**s, "ratio_numpy": r, "ratio_numpy_min": m}
            else:
                why = failed.get(p) or absent.get(p, "n/a")
                cells += [why, ""]
                out[p] = {"failed" if why.startswith("FAILED") else "note": why}
        return cells, out

    def add_row(key, label, unit, scale, times, extra=None, impl="gradtape", base="numpy", peer=True, failed=None):
        """One table row: ``impl`` against ``base`` (and the peers against ``base`` where ``peer``)."""
        s = {k: _summary(times[k], scale) for k in (base, impl)}
        r_gt = _paired(times[impl], times[base])
        m_gt = s[impl]["min"] / s[base]["min"]
        target = TARGETS.get(key)
        ok = None if target is None else r_gt <= target
        cells, peer_res = peer_cells(times, failed or {}, base, peer, unit, scale)
        rows.append((label, _fmt(s[base]["median"], unit), _fmt(s[impl]["median"], unit),
                     f"{r_gt:.2f}x (min {m_gt:.2f}x)", *cells,
                     "n/a" if target is None else f"<= {target}x", "" if ok is None else "PASS" if ok else "FAIL"))
        tp = peer_res.get("torch", {})
        results["cases"][key] = {"label": label, "unit": unit, "times": s, "impl": impl, "base": base,
                                 "ratio_gradtape_numpy": r_gt, "ratio_gradtape_numpy_min": m_gt,
                                 "ratio_torch_numpy": tp.get("ratio_numpy"),
                                 "ratio_torch_numpy_min": tp.get("ratio_numpy_min"),
                                 "peers": peer_res if peer else {}, "target": target, "pass": ok, **(extra or {})}

    try:
        print("running (a) 200-op chain, 16 elements ...", file=sys.stderr, flush=True)
        times, number, failed = bench_chain(16, rep_a, bud_a, peers)
        add_row("a", "(a) 200-op chain, 16 f64, fwd+bwd per op", "us", 1e6 / N_OPS, times,
                {"calls_per_repeat": number}, failed=failed)

        print(f"running (b) 200-op chain, {N_LARGE:.0e} elements ...", file=sys.stderr, flush=True)
        times, number, failed = bench_chain(N_LARGE, rep_b, 0.0, peers)
        add_row("b", f"(b) 200-op chain, {N_LARGE:.0e} f64, fwd+bwd".replace("e+0", "e"), "ms", 1e3, times,
                {"calls_per_repeat": number},
                failed=failed)

        print("running (c) MLP training step ...", file=sys.stderr, flush=True)
        times, number, mem, failed = bench_mlp(rep_c, bud_c, peers)
        add_row("c", "(c) MLP 784-1024-1024-10 step, b=256 f32, in place", "ms", 1e3, times,
                {"calls_per_repeat": number, "gradtape_style": "requires_grad_() leaves, loss.backward(), "
                                                                 "p -= lr*p.grad under no_grad, p.grad = None"},
                failed=failed)
        add_row("c_fn", "(c) the same step, functional: value_and_grad, p - lr*g", "ms", 1e3, times,
                {"calls_per_repeat": number, "gradtape_style": "gt.value_and_grad(loss, argnums=(0..5)) of plain "
                                                                 "tensors, new parameters p - lr*g"},
                impl="gradtape_fn", peer=False)
        add_row("c_fn_leaves", "(c) functional on requires_grad leaves (records the backward)", "ms", 1e3, times,
                {"calls_per_repeat": number, "gradtape_style": "gt.value_and_grad of leaves that require grad "
                                                                 "(differentiable gradient), update under no_grad"},
                impl="gradtape_fn_leaves", peer=False)
        add_row("c_inplace_fn", "(c) in place against functional (NumPy column: the functional step)", "ms",
                1e3, times, impl="gradtape", base="gradtape_fn", peer=False)
        r_mem = mem["gradtape"] / mem["numpy"]
        ok_mem = r_mem <= TARGETS["c_mem"]
        rows.append(("(c) MLP step memory growth (tracemalloc peak)", _fmt(mem["numpy"] / 2**20, "MiB"),
                     _fmt(mem["gradtape"] / 2**20, "MiB"), f"{r_mem:.2f}x", *(["n/a"] * 2 * len(wanted)),
                     f"<= {TARGETS['c_mem']}x", "PASS" if ok_mem else "FAIL"))
        results["cases"]["c_mem"] = {"label": "MLP step memory growth", "unit": "bytes", "numpy": mem["numpy"],
                                     "gradtape": mem["gradtape"], "ratio_gradtape_numpy": r_mem,
                                     "target": TARGETS["c_mem"], "pass": ok_mem}
        wrong = None
    except GradtapeWrong as e:
        wrong = str(e)
    results["wall_s"] = time.perf_counter() - t_start
    results["gradtape_wrong"] = wrong
    report(results, rows, info, wanted, args, (rep_a, rep_b, rep_c))
    del limits
    if wrong:
        print(f"\nERROR: {wrong}. gradtape's gradient is wrong: this is a bug in gradtape "
              f"(the cases before it are in the table above).", file=sys.stderr)
        return 1
    return 0


def report(results, rows, info, wanted, args, reps):
    """Print the header and the table (whatever was measured), and write the JSON."""
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
    print("- peers: " + (", ".join(f"{PEER_LABELS[p]} {v}" if v else f"{PEER_LABELS[p]} not installed"
                                   for p, v in info["peers"].items()) or "none (--systems/--skip)")
          + "; JAX: jax.jit with float64 enabled, compile time excluded")
    print(f"- checks: every result against hand-written NumPy, max|diff| <= {TOL_C} * K * eps(dtype) * "
          f"max|reference| (K: rounded steps, {CHAIN_K} for the chain's gradient, {MLP_K} for the MLP's); "
          f"a peer that fails is marked FAILED in its cell and not timed")
    print(f"- statistic: times are medians over {reps[0]}/{reps[1]}/{reps[2]} interleaved repeats for "
          f"(a)/(b)/(c); ratios are medians of the per-repeat ratios (ratio of the minima in parentheses); "
          f"pass/fail uses the median ratio; "
          f"gradtape (c) in place: requires_grad_() leaves, `p -= lr * p.grad` under no_grad, `p.grad = None`; "
          f"functional: `gt.value_and_grad(loss, argnums=(0, ..., 5))`, new parameters `p - lr * g`")
    print()
    head = ("case", "hand-written NumPy", "gradtape", "gradtape/NumPy",
            *[h for p in wanted for h in (PEER_LABELS[p], f"{p}/NumPy")], "target", "pass")
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


if __name__ == "__main__":
    sys.exit(main())
