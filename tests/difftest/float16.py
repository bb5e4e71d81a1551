"""Differential fuzzing in float16 (issue 12 part 4): the general fuzzer's programs, run by gradtape in float16.

Each program of ``programs.generate(seed, kind)`` ("general" or "jacobian") gets its inputs, loss weights and
tangent directions rounded to float16. gradtape runs it in float16; the oracle is torch float64 (JAX for the
programs the general fuzzer sends there) on the same rounded values, so only gradtape's own float16 arithmetic
is measured. Compared: the outputs, ``L.backward()``'s ``.grad`` (L = sum_i sum(w_i * out_i)), ``gt.jvp`` of the
program and reverse over reverse (the HVP), with

* dtypes: every gradient float16 (its leaf's), every output and tangent float16 unless the program promotes it
  (a float64 constant): the dtype gradtape gives the same program in float32, with float32 read as float16;
* values: |got - want| <= ATOL * scale + RTOL * |want| + NOISE * probe, where scale = max(1, max|want|) and
  probe the largest change of the same quantity when gradtape computes it in float32 from the inputs moved by
  up to 2^-11 of themselves (one float16 rounding): a program that amplifies its own rounding errors (x - y of
  close values, then 1/...; the deviations of a narrow std) loses that much to any float16 rounding on the way,
  which is the float16 format, not a defect; NOISE = 4 allows for several such roundings. A rounding that breaks
  a structural identity (the two deviations of a 2-element std no longer opposite: its second derivative, 0, off
  by 1/spread²) or loses digits of a stored value (1 - sigmoid(x) from a rounded sigmoid(x) near 1) moves no
  input: there two peers say what the format costs, the oracle's own float16 run (torch's or JAX's) and
  gradtape's float32 run storing every value in float16 (``run_stored_in_float16``), and NOISE times their
  errors is allowed too.

Second-order quantities get 10 times the tolerances (as the float64 fuzzer's). A program whose float64 values
leave float16's range (any intermediate, output, gradient or tangent above RANGE, or an intermediate value
nonzero below TINY, whose square a rule would flush to a subnormal or 0) is "range", not compared; one whose
LAPACK function computes in float16 must raise gt.linalg's documented TypeError ("refused"). Replay a seed with
``python -m tests.difftest.float16 --n 1 --seed SEED`` (prints the program)::

    python -m tests.difftest.float16 --n 2000 --seed 0
"""
from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import numpy as np

from . import programs as P
from . import runner as R
from .oracles import SPECS, call

RTOL, ATOL = 1e-2, 2e-3
NOISE = 4.0                 # float16 roundings on the way, each worth the probe's input perturbation
RANGE = 1e4                 # float16's max is 65504: leave room for a rule's intermediate products
TINY = 2.0 ** -7            # a nonzero value below it has a subnormal square (x * x in a rule loses its digits)
SECOND = ("double",)        # second-order quantities: 10 times the tolerance, as tests/difftest/runner.py
LAPACK = {"linalg.inv", "linalg.det", "linalg.slogdet", "linalg.solve", "linalg.cholesky", "linalg.eigh",
          "linalg.eigvalsh", "linalg.svd", "linalg.svdvals", "linalg.qr", "linalg.pinv"}


def _f16(a):
    return np.asarray(a, dtype=np.float64).astype(np.float16).astype(np.float64)


@dataclasses.dataclass
class Rounded(P.Program):
    """A program whose inputs, weights and directions are float16 values (held as float64 for the oracle)."""

    def weights(self, shapes, dtypes=None):
        return [_f16(w).astype(w.dtype) for w in super().weights(shapes, dtypes)]

    def directions(self):
        return [_f16(v).astype(v.dtype) for v in super().directions()]


def rounded(prog, dtype, perturb=False):
    """prog with its inputs rounded to float16, run in ``dtype`` (float16, float32 or float64); ``perturb``: each
    input then moved by up to 2^-11 of itself, float16's rounding (the probe of how much the program amplifies
    float16-sized errors)."""
    rng = np.random.default_rng([prog.seed, 16])
    inputs = {k: _f16(a) * (1 + (2.0 ** -11 * rng.uniform(-1, 1, np.shape(a)) if perturb else 0))
              for k, a in prog.inputs.items()}
    return Rounded(prog.kind, prog.seed, inputs, list(prog.instrs), list(prog.outputs), list(prog.sources),
                   prog.oracle, dtype)


@dataclasses.dataclass
class Result:
    seed: int
    status: str              # ok, mismatch, invalid (the oracle refuses), range, refused (LAPACK: documented)
    check: str = ""
    detail: str = ""


def run_stored_in_float16(prog, L, leaves):
    """P.run in float32 with every float32 value rounded to float16 as it is stored (through gt.astype, so the
    cotangents and tangents are rounded too): float16 storage and float32 arithmetic, PyTorch's half precision
    ("opmath"). Its distance to float64 is what storing the program's values in float16 costs."""
    import gradtape as gt
    env = dict(zip(prog.inputs, leaves))
    for ins in prog.instrs:
        v = call(SPECS[ins.op], L, [env[a] for a in ins.args], ins.params)
        env[ins.out] = gt.astype(gt.astype(v, gt.float16), gt.float32) if v.dtype == gt.float32 else v
    return tuple(env[o] for o in prog.outputs)


def _gt_quantities(prog, ref, run=P.run):
    """gradtape's outputs, .grad of the leaves, JVP tangents and HVP for prog (in prog.dtype)."""
    import gradtape as gt
    xs = [gt.asarray(a).requires_grad_() for a in prog.arrays()]
    outs = run(prog, R.lib("gt", "cpu"), xs)
    tracked = [t and o.requires_grad for o, t in zip(outs, ref.tracked)]
    q = {"forward": list(outs)}
    W = [np.asarray(w).astype(np.dtype(str(o.dtype))) for w, o in zip(ref.W, outs)]
    if any(tracked):
        L = R._loss(gt, outs, W, tracked, "cpu")
        L.backward()
        q["backward"] = [x.grad if x.grad is not None else gt.zeros_like(x) for x in xs]

        def loss(*a):
            return R._loss(gt, run(prog, R.lib("gt", "cpu"), list(a)), W, tracked, "cpu")
        prim = [gt.asarray(a) for a in prog.arrays()]
        V = [gt.asarray(np.asarray(v).astype(prog.dtype)) for v in ref.V]
        gs = gt.grad(loss, argnums=tuple(range(len(prim))))
        q["double"] = list(gt.jvp(gs, tuple(prim), tuple(V))[1])
        q["jvp"] = list(gt.jvp(lambda *a: P.run(prog, R.lib("gt", "cpu"), list(a)), tuple(prim), tuple(V))[1])
    return q, tracked


def _reference(prog64):
    ref = R.jax_ref(prog64) if prog64.oracle == "jax" else R.torch_ref(prog64, hessian=False)
    want = {"forward": ref.outs}
    if ref.has_grad:
        want["backward"] = ref.grads[:len(prog64.inputs)]
        want["double"] = ref.hvp
        if ref.jvp is not None:
            want["jvp"] = ref.jvp
    return ref, want


def _in_range(prog64, want):
    import gradtape as gt
    env = {}
    with gt.no_grad():
        P.run(prog64, R.lib("gt", "cpu"), [gt.asarray(a) for a in prog64.arrays()], env)
    inner = [np.abs(gt.to_numpy(v)) for v in env.values() if isinstance(v, gt.Tensor)
             and v.dtype.kind == "real floating"]
    if any(np.any((a > 0) & (a < TINY)) for a in inner):
        return False
    vals = inner + [np.abs(np.asarray(w)) for ws in want.values() for w in ws]
    return all(not np.any(v[np.isfinite(v)] > RANGE) for v in vals if v.dtype.kind == "f")


def _peer(p16):
    """The oracle library's own float16 run of the program (torch's half precision, or JAX's): what the format
    costs there; {} where it refuses."""
    import torch
    R.lib("torch")
    R._NP.setdefault(torch.float16, np.float16)
    try:
        return _reference(p16)[1]
    except Exception:               # an op without a Half kernel on the CPU, ...: no peer for this program
        return {}


def _deviation(a, w, fin):
    if a is None or np.shape(a) != np.shape(w):
        return 0.0
    a = np.asarray(a, dtype=np.float64)
    return float(np.max(np.abs(np.where(np.isfinite(a), a, 0.0) - np.where(fin, w, 0.0))[fin], initial=0.0))


def gt_to_np(t):
    import gradtape as gt
    return gt.to_numpy(t)


def _compare(what, got, got32, want, want_dtype, loose=1.0, peer=None, stored=None):
    import gradtape as gt
    if str(got.dtype) != want_dtype:
        raise R.Mismatch(what, f"dtype {got.dtype}, expected {want_dtype}")
    g = gt.to_numpy(got).astype(np.float64)
    g32 = gt.to_numpy(got32).astype(np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        raise R.Mismatch(what, f"shape {g.shape}, oracle {w.shape}")
    if not np.array_equal(np.isnan(g), np.isnan(w)) or not np.array_equal(np.isinf(g), np.isinf(w)):
        raise R.Mismatch(what, f"NaN/inf pattern differs\n  gradtape {g!r}\n  oracle   {w!r}")
    fin = np.isfinite(w)
    if not fin.any():
        return
    scale = max(1.0, float(np.max(np.abs(w[fin]))))
    probe, torch16, storage = _deviation(g32, w, fin), _deviation(peer, w, fin), _deviation(stored, w, fin)
    allowed = loose * (ATOL * scale + RTOL * np.abs(w[fin])) + NOISE * max(probe, torch16, storage)
    err = np.abs(g[fin] - w[fin])
    if np.any(err > allowed):
        raise R.Mismatch(what, f"max abs error {float(err.max()):.3g} (the probe's {probe:.3g}, the oracle's "
                               f"float16 {torch16:.3g}, float16 storage's {storage:.3g}, scale {scale:.3g})"
                               f"\n  gradtape {g!r}\n  oracle   {w!r}")


def _dtype16(t32):
    """The dtype a float16 program's value must have: the float32 program's, float32 read as float16."""
    return {"float32": "float16"}.get(str(t32.dtype), str(t32.dtype))


def check(prog):
    """Compare prog's float16 run with the float64 oracle on the rounded inputs; a Result."""
    seed = prog.seed
    p16, p32, p64 = rounded(prog, "float16"), rounded(prog, "float32", perturb=True), rounded(prog, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if any(i.op in LAPACK for i in prog.instrs) and _lapack_meets_float16(p32):
            return _refused(p16)
        try:
            ref, want = _reference(p64)
        except R.Invalid as e:
            return Result(seed, "invalid", "oracle", str(e))
        if not _in_range(p64, want):
            return Result(seed, "range")
        try:
            got, _ = R._guard("float16", lambda: _gt_quantities(p16, ref))
            got32, _ = R._guard("float32", lambda: _gt_quantities(p32, ref))
            peer = _peer(p16)
            stored, _ = R._guard("float16 storage", lambda: _gt_quantities(rounded(prog, "float32"), ref,
                                                                            run_stored_in_float16))
            for check_name, ws in want.items():
                for i, w in enumerate(ws):
                    if check_name not in got:       # gradtape knows its outputs to be constants: derivatives 0
                        if np.any(np.nan_to_num(np.asarray(w), nan=1.0) != 0):
                            raise R.Mismatch(check_name, f"gradtape's outputs are constants, the oracle's {w!r}")
                        continue
                    want_dtype = "float16" if check_name in ("backward", "double") else _dtype16(got32[check_name][i])
                    ps = peer.get(check_name)
                    _compare(f"{check_name} [{i}]", got[check_name][i], got32[check_name][i], w, want_dtype,
                             10.0 if check_name in SECOND else 1.0, ps[i] if ps is not None and i < len(ps) else None,
                             gt_to_np(stored[check_name][i]) if check_name in stored else None)
        except R.Mismatch as m:
            return Result(seed, "mismatch", m.check, m.detail)
    return Result(seed, "ok")


def _lapack_meets_float16(p32):
    """Whether a LAPACK function of the program computes in float16: its result is float32 in the float32 run
    (a float64 operand promotes the float16 program too, and then LAPACK runs in float64)."""
    import gradtape as gt
    env = {}
    with gt.no_grad():
        P.run(p32, R.lib("gt", "cpu"), [gt.asarray(a) for a in p32.arrays()], env)
    return any(i.op in LAPACK and str(env[i.out].dtype) == "float32" for i in p32.instrs if i.out in env)


def _refused(p16):
    try:
        R._gt_run(p16, "cpu")
    except TypeError as e:
        if "float16 is not supported" in str(e) and "LAPACK" in str(e):
            return Result(p16.seed, "refused")
        return Result(p16.seed, "mismatch", "refusal", f"TypeError without the documented message: {e}")
    except Exception as e:
        return Result(p16.seed, "mismatch", "refusal", f"{type(e).__name__} instead of TypeError: {e}")
    return Result(p16.seed, "mismatch", "refusal", "a LAPACK function ran in float16")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.difftest.float16", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", choices=("general", "jacobian", "linalg"), default="general")
    ap.add_argument("--max-report", type=int, default=20)
    a = ap.parse_args(argv)
    counts, bad, t0 = {}, [], time.time()
    for s in range(a.seed, a.seed + a.n):
        prog = P.generate(s, a.kind)
        r = check(prog)
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status == "mismatch":
            bad.append(s)
        if (r.status == "mismatch" and len(bad) <= a.max_report) or a.n == 1:
            print(f"seed {s}: {r.status} [{r.check}]\n{r.detail}\n--- program (float16 inputs) ---\n"
                  f"{P.to_source(rounded(prog, 'float16'))}\n" + "=" * 100, flush=True)
    print(f"kind={a.kind} seeds {a.seed}..{a.seed + a.n - 1}: {counts} in {time.time() - t0:.0f}s; "
          f"mismatching seeds {bad[:50]}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
