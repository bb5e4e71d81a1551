"""Matrix-calculus benchmarks (issue 3): Hessian of xᵀAx, Jacobian modes, checkpoint memory.

Run from the repository root::

    python -m benchmarks.matrix_calculus [--quick] [--json PATH]

Every implementation is checked against the closed form before it is timed;
implementations are timed interleaved in one process, medians reported.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

import gradtape as gt

try:
    import torch
    import torch.func
except ImportError:  # pragma: no cover - optional peer
    torch = None
try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - optional peer
    jax = None
try:
    import autograd as hips
    import autograd.numpy as hnp
except ImportError:  # pragma: no cover - optional peer
    hips = None


def _timeit(fns, repeats, number=1):
    """Interleaved timing: {name: median seconds per call}."""
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            samples[k].append((time.perf_counter() - t0) / number)
    return {k: statistics.median(v) for k, v in samples.items()}


def _np(v):
    if isinstance(v, gt.Tensor):
        return gt.to_numpy(v)
    if torch is not None and isinstance(v, torch.Tensor):
        return v.detach().numpy()
    return np.asarray(v)


def _check(fns, want, what, rtol, atol):
    """Check each of ``fns`` against ``want``; a peer that fails is dropped from ``fns`` and returned with its
    error ({name: "FAILED check: ..."}, shown in its table row); gradtape failing stops the run (exit 1)."""
    failed = {}
    for k in list(fns):
        try:
            got = _np(fns[k]())
            diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else None
            msg = (None if diff is not None and np.allclose(got, want, rtol=rtol, atol=atol) else
                   f"max|diff| {diff:.2g} > tol (rtol {rtol:g}, atol {atol:g})" if diff is not None
                   else f"shape {got.shape}, want {want.shape}")
        except Exception as e:  # noqa: BLE001 - a peer that breaks is reported, not fatal
            if k.startswith(("gradtape", "hand")):
                raise
            msg = f"{type(e).__name__}: {e}"
        if msg is None:
            continue
        if k.startswith(("gradtape", "hand")):
            raise SystemExit(f"{what}: {k} differs from the closed form: {msg}")
        failed[k] = f"FAILED check: {msg}"
        del fns[k]
        print(f"{what}: {k} {failed[k]} (marked in the table; the run goes on)")
    return failed


def _rows(times, failed):
    """Table rows ``| name | ms |``: timed implementations, then the peers that failed their check."""
    return [f"| {k} | {v * 1e3:.2f} |" for k, v in times.items()] + [f"| {k} | {m} |" for k, m in failed.items()]


def bench_hessian(n, repeats):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    x = rng.standard_normal(n)
    want = A + A.T
    fns = {"hand-written A+Aᵀ": lambda: A + A.T}
    gA, gx = gt.asarray(A), gt.asarray(x)
    fns["gradtape gt.hessian"] = lambda: gt.hessian(lambda v: v @ (gA @ v))(gx)
    if torch is not None:
        tA, tx = torch.from_numpy(A), torch.from_numpy(x)
        fns["torch.func.hessian"] = lambda: torch.func.hessian(lambda v: v @ (tA @ v))(tx)
    if jax is not None:
        jA, jx = jnp.asarray(A), jnp.asarray(x)
        jh = jax.jit(jax.hessian(lambda v: v @ (jA @ v)))
        fns["jax.jit(jax.hessian)"] = lambda: jh(jx).block_until_ready()
    if hips is not None:
        fns["HIPS autograd hessian"] = lambda: hips.hessian(lambda v: hnp.dot(v, hnp.dot(A, v)))(x)
    failed = _check(fns, want, "Hessian", 1e-10, 1e-10)
    return _timeit(fns, repeats), failed


def bench_jacobian(n, repeats):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    b = rng.standard_normal(n)
    x = rng.standard_normal(n)
    want = (1 - np.tanh(W @ x + b) ** 2)[:, None] * W
    gW, gb, gx = gt.asarray(W), gt.asarray(b), gt.asarray(x)
    layer = lambda v: gt.tanh(gW @ v + gb)  # noqa: E731
    fns = {f"gradtape {m}": (lambda m=m: gt.jacobian(layer, mode=m)(gx)) for m in ("forward", "reverse", "auto")}
    fns["hand-written"] = lambda: (1 - np.tanh(W @ x + b) ** 2)[:, None] * W
    if torch is not None:
        tW, tb, tx = (torch.from_numpy(a) for a in (W, b, x))
        tl = lambda v: torch.tanh(tW @ v + tb)  # noqa: E731
        fns["torch.func.jacfwd"] = lambda: torch.func.jacfwd(tl)(tx)
        fns["torch.func.jacrev"] = lambda: torch.func.jacrev(tl)(tx)
    failed = _check(fns, want, "Jacobian", 1e-10, 1e-12)
    return _timeit(fns, repeats), failed


def _chain(x, w, layers):
    for i in range(layers):
        x = gt.tanh(x * w[i] + 0.01)
    return x


def bench_checkpoint(size, layers, segments, repeats):
    rng = np.random.default_rng(2)
    x0 = gt.asarray(rng.standard_normal(size))
    w = [float(v) for v in rng.uniform(0.5, 1.5, layers)]
    cuts = [round(i * layers / segments) for i in range(segments + 1)]   # segment boundaries

    def plain():
        x = gt.asarray(x0.data).requires_grad_()
        gt.sum(_chain(x, w, layers)).backward()
        return x.grad

    def segment(i):
        ws = w[cuts[i]:cuts[i + 1]]
        return gt.checkpoint(lambda h: _chain(h, ws, len(ws)))

    # as torch.utils.checkpoint.checkpoint_sequential does: the last segment is not checkpointed (its
    # intermediates are needed right away by the backward pass, recomputing them would be pure cost)
    blocks = [segment(i) for i in range(segments - 1)] + [
        lambda h: _chain(h, w[cuts[-2]:], layers - cuts[-2])]

    def ckpt():
        x = gt.asarray(x0.data).requires_grad_()
        h = x
        for blk in blocks:
            h = blk(h)
        gt.sum(h).backward()
        return x.grad

    if not np.allclose(_np(plain()), _np(ckpt()), rtol=1e-12, atol=1e-14):
        raise SystemExit("checkpoint: gradients differ from the plain run")
    peaks = {}
    for name, f in (("plain", plain), ("checkpoint", ckpt)):
        gc.collect()
        tracemalloc.start()
        f()
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    times = _timeit({"plain": plain, "checkpoint": ckpt}, repeats)
    return times, peaks


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.matrix_calculus", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small repeat counts (CI smoke run)")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)
    reps = 3 if a.quick else 15
    res = {"machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
           "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
           "jax": getattr(jax, "__version__", None)}
    h, h_failed = bench_hessian(500, reps)
    jn = 256
    j, j_failed = bench_jacobian(jn, reps)
    ct, cp = bench_checkpoint(20_000 if a.quick else 200_000, 50, 7, max(2, reps // 3))
    res.update(hessian_ms={k: v * 1e3 for k, v in h.items()}, jacobian_ms={k: v * 1e3 for k, v in j.items()},
               checkpoint_ms={k: v * 1e3 for k, v in ct.items()}, checkpoint_peak_bytes=cp,
               failed_checks={"hessian": h_failed, "jacobian": j_failed})
    print(f"\n## gradtape matrix-calculus benchmarks\n\n- {res['machine']}\n- numpy {res['numpy']}, "
          f"torch {res['torch']}, jax {res['jax']} (CPU); medians of {reps} interleaved repeats\n")
    print("| Hessian of xᵀAx, n = 500, float64 | ms |\n|---|---|")
    print("\n".join(_rows(h, h_failed)))
    ref = h.get("jax.jit(jax.hessian)")
    target = ref if ref is not None else (h["torch.func.hessian"] / 8 if "torch.func.hessian" in h else None)
    if target is not None:
        ok = h["gradtape gt.hessian"] <= target
        print(f"\ntarget: gradtape ≤ {'jax.jit' if ref is not None else 'torch.func.hessian / 8'} "
              f"({target * 1e3:.2f} ms): {'PASS' if ok else 'FAIL'}")
    print(f"\n| Jacobian of tanh(W x + b), {jn} → {jn}, float64 | ms |\n|---|---|")
    print("\n".join(_rows(j, j_failed)))
    ratio_t = ct["checkpoint"] / ct["plain"]
    ratio_m = cp["checkpoint"] / cp["plain"]
    print("\n| checkpoint, 50-layer tanh chain, 7 segments (last one plain) | plain | checkpoint | ratio | target |\n|---|---|---|---|---|")
    print(f"| time (ms) | {ct['plain'] * 1e3:.1f} | {ct['checkpoint'] * 1e3:.1f} | {ratio_t:.2f}× | ≤ 1.5× "
          f"{'PASS' if ratio_t <= 1.5 else 'FAIL'} |")
    print(f"| peak traced memory (MiB) | {cp['plain'] / 2**20:.1f} | {cp['checkpoint'] / 2**20:.1f} | "
          f"{ratio_m:.2f}× | ≤ 0.33× {'PASS' if ratio_m <= 1 / 3 else 'FAIL'} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
