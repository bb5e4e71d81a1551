"""Run programs through gradtape and the oracles, compare, shrink what mismatches.

``check(prog, backend)`` runs one :class:`~tests.difftest.programs.Program` on
gradtape (backend "cpu" or "strict") and on its oracle (PyTorch float64, or
JAX) and compares, in this order:

forward      every output: shape, dtype (float64), values, NaN/inf pattern
backward     ``L.backward()`` of L = sum_i sum(w_i * out_i) into the leaves' .grad
accumulate   two backwards accumulate into requires_grad_() leaves; attach_grad() + gt.record() overwrite
sources      ``gt.autograd.grad(outs, leaves + intermediates, head_grads=w)``: total derivatives
vjp          ``gt.vjp`` of the whole program with the cotangents w
tape         ``GradientTape.gradient(L, leaves + intermediates)`` (watched, not requires_grad)
double       reverse over reverse: grad of sum(grad(L) * v) (torch: double backward)
jvp          ``gt.jvp`` of the whole program (torch.func.jvp)
hvp          forward over reverse: ``gt.jvp(gt.grad(L, argnums=all))`` and ``gt.hvp`` (one input)
graph        ``gt.trace`` of the program and of ``gt.grad(L)``, replayed, and after a JSON save/load
nested       ``gt.grad`` of a function calling ``gt.grad`` of a closure over the outer argument (two inputs)
jacobian     ``gt.jacobian`` forward and reverse mode, ``GradientTape.jacobian``, vs torch.func.jacrev
             (kind "jacobian")
hessian      ``gt.hessian`` vs torch.func.hessian                            (kind "jacobian")

It returns a :class:`Result`; ``shrink`` makes a mismatching program minimal.

Command line (long runs)::

    python -m tests.difftest.runner --n 20000 --kind general --backend cpu --seed 1 --out /tmp/fuzz.md
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
import warnings
from dataclasses import dataclass

import numpy as np

from . import programs as P
from .oracles import SPECS, GTLib, JaxLib, TorchLib

_LIBS = {}


def _np_dtypes():
    import torch
    _NP.update({torch.float64: np.float64, torch.float32: np.float32, torch.int64: np.int64, torch.bool: np.bool_})


def lib(name, device=None):
    key = (name, device)
    if key not in _LIBS:
        _LIBS[key] = GTLib(device) if name == "gt" else TorchLib() if name == "torch" else JaxLib()
        if name == "torch":
            _np_dtypes()
    return _LIBS[key]


class Mismatch(Exception):
    def __init__(self, check, detail):
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail


class Invalid(Exception):
    """The oracle refuses the program (or one derivative of it): nothing to compare."""


@dataclass
class Result:
    status: str            # "ok", "invalid", "mismatch"
    check: str = ""
    detail: str = ""
    prog: object = None
    backend: str = "cpu"

    def report(self):
        if self.status != "mismatch":
            return f"{self.status}"
        return (f"MISMATCH [{self.check}] kind={self.prog.kind} seed={self.prog.seed} backend={self.backend} "
                f"oracle={self.prog.oracle}\n{self.detail}\n--- reproducer ---\n"
                f"{P.to_source(self.prog, self.backend)}")


# ---- comparison -------------------------------------------------------------------------------------------------
def tol(prog):
    rt = max([SPECS[i.op].rtol for i in prog.instrs] + [1e-7])
    at = max([SPECS[i.op].atol for i in prog.instrs] + [1e-9])
    if prog.dtype == "float32":
        rt, at = max(rt, 2e-4), max(at, 2e-5)
    return rt, at


_NP = {}


def _np(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        # a materialised copy: numpy(force=True) of some double-backward results (expanded, zero strides)
        # segfaults in torch 2.13
        return np.array(x.detach().contiguous().clone().tolist() if x.is_conj() else
                        x.detach().to_dense().contiguous().clone().cpu().numpy(), dtype=_NP[x.dtype])
    if type(x).__module__.startswith("gradtape"):
        import gradtape as gt
        return gt.to_numpy(x)
    return np.asarray(x)


def compare(what, got, want, rt, at, dtypes=()):
    """got: a gradtape tensor; want: the oracle's array (dtypes: other dtypes accepted). Raises Mismatch."""
    import gradtape as gt
    if not isinstance(got, gt.Tensor):
        raise Mismatch(what, f"gradtape gave {type(got).__name__}, oracle an array of shape {np.shape(want)}")
    w = np.asarray(want)
    if got.dtype != str(w.dtype) and str(got.dtype) not in dtypes:
        raise Mismatch(what, f"dtype {got.dtype}, oracle {w.dtype} (shape {got.shape})")
    g = gt.to_numpy(got)
    if tuple(g.shape) != tuple(w.shape):
        raise Mismatch(what, f"shape {tuple(g.shape)}, oracle {tuple(w.shape)}")
    nan_g, nan_w = np.isnan(g), np.isnan(w)
    if not np.array_equal(nan_g, nan_w):
        raise Mismatch(what, f"NaN pattern differs\n  gradtape {g!r}\n  oracle   {w!r}")
    inf_g, inf_w = np.isinf(g), np.isinf(w)
    if not np.array_equal(inf_g, inf_w) or np.any(np.sign(g[inf_g]) != np.sign(w[inf_w])):
        raise Mismatch(what, f"inf pattern differs\n  gradtape {g!r}\n  oracle   {w!r}")
    fin = np.isfinite(w)
    if not fin.any():
        return
    scale = max(1.0, float(np.max(np.abs(w[fin]))))
    err = np.abs(g[fin] - w[fin])
    bad = err > at * scale + rt * np.abs(w[fin])
    if np.any(bad):
        raise Mismatch(what, f"max abs error {float(err.max()):.3g} (rtol={rt}, atol={at}, scale {scale:.3g})"
                             f"\n  gradtape {g!r}\n  oracle   {w!r}")


# ---- the torch oracle -------------------------------------------------------------------------------------------
class Ref:
    """Everything the oracle says about one program (computed once, compared against every gradtape route)."""


def _zeros_like_np(a):
    return np.zeros(np.shape(a), dtype=np.asarray(a).dtype)


def torch_ref(prog, derivs=True, hessian=True):
    T = lib("torch")
    torch = T.torch
    r = Ref()
    xs = [torch.tensor(a, requires_grad=True) for a in prog.arrays()]
    env = {}
    try:
        outs = P.run(prog, T, xs, env)
    except Exception as e:
        raise Invalid(f"torch forward: {type(e).__name__}: {e}")
    r.outs = [_np(o) for o in outs]
    r.shapes = [tuple(o.shape) for o in outs]
    r.W = prog.weights(r.shapes, [r_.dtype for r_ in r.outs])
    r.V = prog.directions()
    r.tracked = [o.requires_grad for o in outs]
    if not derivs:
        return r
    L = sum((o * torch.as_tensor(w)).sum() for o, w, t in zip(outs, r.W, r.tracked) if t)
    srcs = [env[s] for s in prog.sources]
    r.has_grad = isinstance(L, torch.Tensor) and L.requires_grad
    if r.has_grad:
        gs = torch.autograd.grad(L, xs + srcs, allow_unused=True, create_graph=True)
        r.grads = [_np(g) if g is not None else _zeros_like_np(a) for g, a in zip(gs, prog.arrays() +
                                                                                  [_np(s) for s in srcs])]
        lg = [g for g in gs[:len(xs)]]
        s = sum((g * torch.as_tensor(v)).sum() for g, v in zip(lg, r.V) if g is not None and g.requires_grad)
        g0 = lg[0]
        r.nested = None
        if len(xs) >= 2:       # d/dx1 of sum(grad_x0(L) * v0): nested grad over a closure
            s0 = (g0 * torch.as_tensor(r.V[0])).sum() if g0 is not None else None
            if s0 is not None and s0.requires_grad:
                h1 = torch.autograd.grad(s0, xs[1], allow_unused=True, retain_graph=True)[0]
                r.nested = _np(h1) if h1 is not None else _zeros_like_np(prog.arrays()[1])
            else:
                r.nested = _zeros_like_np(prog.arrays()[1])
        if isinstance(s, torch.Tensor) and s.requires_grad:
            hv = torch.autograd.grad(s, xs, allow_unused=True)
            r.hvp = [_np(h) if h is not None else _zeros_like_np(a) for h, a in zip(hv, prog.arrays())]
        else:
            r.hvp = [_zeros_like_np(a) for a in prog.arrays()]
    else:
        r.grads = [_zeros_like_np(a) for a in prog.arrays()] + [_zeros_like_np(_np(s)) for s in srcs]
        r.hvp = [_zeros_like_np(a) for a in prog.arrays()]
    prim = [torch.tensor(a) for a in prog.arrays()]
    tans = [torch.tensor(v) for v in r.V]
    try:
        _, tout = torch.func.jvp(lambda *a: P.run(prog, T, list(a)), tuple(prim), tuple(tans))
        r.jvp = [_np(t) for t in tout]
    except Exception as e:                                         # torch.func lacks a rule: skip this check
        r.jvp = None
        r.jvp_why = f"{type(e).__name__}: {e}"
    if prog.kind == "jacobian":
        n = len(prim)
        f1 = lambda *a: P.run(prog, T, list(a))[0]   # noqa: E731
        try:
            r.jac = [_np(j) for j in torch.func.jacrev(f1, argnums=tuple(range(n)))(*prim)]
        except Exception:                   # torch.func fails on some empty shapes: skip this check only
            r.jac = None
        w0 = torch.as_tensor(r.W[0])
        r.hess = None
        if not hessian:
            return r

        def lossf(*a):
            return (P.run(prog, T, list(a))[0] * w0).sum()
        try:
            h = torch.func.hessian(lossf, argnums=tuple(range(n)))(*prim)
            r.hess = [[_np(h[i][j]) for j in range(n)] for i in range(n)]
        except Exception:
            r.hess = None
    return r


def jax_ref(prog):
    """The JAX oracle: one jitted function giving outputs, gradient, HVP and JVP (eager JAX is slow)."""
    J = lib("jax")
    jax, jnp = J.jax, J.jnp
    r = Ref()
    xs = [jnp.asarray(a) for a in prog.arrays()]
    try:
        shapes = [tuple(o.shape) for o in jax.eval_shape(lambda *a: P.run(prog, J, list(a)), *xs)]
    except Exception as e:
        raise Invalid(f"jax forward: {type(e).__name__}: {e}")
    r.shapes = shapes
    r.W = prog.weights(shapes, [prog.dtype] * len(shapes))
    r.V = prog.directions()
    r.tracked = [True] * len(shapes)
    W = [jnp.asarray(w) for w in r.W]
    V = tuple(jnp.asarray(v) for v in r.V)
    argn = tuple(range(len(xs)))

    def loss(*a):
        return sum(jnp.sum(o * w) for o, w in zip(P.run(prog, J, list(a)), W))

    def everything(*a):
        outs = P.run(prog, J, list(a))
        grads = jax.grad(loss, argnums=argn)(*a)
        hvp = jax.jvp(jax.grad(loss, argnums=argn), tuple(a), V)[1]
        tans = jax.jvp(lambda *b: P.run(prog, J, list(b)), tuple(a), V)[1]
        return outs, grads, hvp, tans
    outs, grads, hvp, tans = jax.jit(everything)(*xs)
    r.outs = [np.asarray(o) for o in outs]
    r.has_grad = True
    r.grads = [np.asarray(g) for g in grads]
    r.hvp = [np.asarray(h) for h in hvp]
    r.jvp = [np.asarray(t) for t in tans]
    return r


# ---- the gradtape side ------------------------------------------------------------------------------------------
def _gt_run(prog, backend, watch=None, env=None):
    GL = lib("gt", backend)
    import gradtape as gt
    xs = [gt.asarray(a, device=backend) for a in prog.arrays()]
    if watch is None:
        xs = [x.requires_grad_() for x in xs]
    else:
        for x in xs:
            watch.watch(x)
    outs = P.run(prog, GL, xs, env)
    return xs, outs


def _loss(gt, outs, W, tracked, backend):
    terms = [gt.sum(o * gt.asarray(w, device=backend)) for o, w, t in zip(outs, W, tracked) if t]
    L = terms[0]
    for t in terms[1:]:
        L = L + t
    return L


def _guard(check, f):
    """Run one gradtape route; an exception where the oracle succeeded is a mismatch."""
    try:
        return f()
    except Mismatch:
        raise
    except Exception as e:
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        raise Mismatch(check, f"gradtape raised {type(e).__name__}: {e}\n" + "".join(tb[-3:]))


# checks run on a share of the programs only (by seed) in sampled mode: they repeat a route another check covers
SAMPLED = {"tape": (3, 0), "vjp": (3, 1), "hvp": (2, 1), "hessian": (3, 0), "nested": (2, 0), "graph": (3, 2),
           "accumulate": (4, 3)}     # (every k-th seed, offset)


def check(prog, backend="cpu", checks=None, sample=False):
    """Compare prog on gradtape (backend) with its oracle; a Result.

    ``checks``: the names of the checks to run (all by default); ``sample``: run the costlier duplicate
    routes (SAMPLED) on every k-th seed only (long runs)."""
    import gradtape as gt
    want = set(checks) if checks else None

    def on(c):
        if sample and c in SAMPLED and (prog.seed + SAMPLED[c][1]) % SAMPLED[c][0]:
            return False
        return want is None or c in want
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = jax_ref(prog) if prog.oracle == "jax" else torch_ref(prog, hessian=on("hessian"))
    except Invalid as e:
        return Result("invalid", "oracle", str(e), prog, backend)
    rt, at = tol(prog)
    n = len(prog.inputs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _checks(prog, backend, ref, rt, at, n, on, gt)
    except Mismatch as m:
        return Result("mismatch", m.check, m.detail, prog, backend)
    return Result("ok", prog=prog, backend=backend)


def _checks(prog, backend, ref, rt, at, n, on, gt):
    # forward
    env = {}
    xs, outs = _guard("forward", lambda: _gt_run(prog, backend, env=env))
    if len(outs) != len(ref.outs):
        raise Mismatch("forward", f"{len(outs)} outputs, oracle {len(ref.outs)}")
    for i, (o, w) in enumerate(zip(outs, ref.outs)):
        compare(f"forward: output {prog.outputs[i]}", o, w, rt, at)
    if not ref.has_grad:
        return
    # an output gradtape knows to be constant (matrix_power(x, 0)) is left out of its loss: the oracle's
    # gradients through it are then all 0, or the comparison below fails
    ref.tracked = [t and o.requires_grad for o, t in zip(outs, ref.tracked)]
    if not any(ref.tracked):
        zero = [np.zeros_like(g) for g in ref.grads]
        for nm, g, w in zip(list(prog.inputs), ref.grads, zero):     # (a constant source has no gradient)
            if np.any(np.nan_to_num(g, nan=1.0) != 0):
                raise Mismatch("backward", f"gradtape's outputs are all constants, the oracle's gradient "
                                           f"w.r.t. {nm} is {g!r}")
        return
    names = list(prog.inputs) + prog.sources
    # a source that gradtape computed as the very object of another value (reshape to the same shape returns
    # x itself) is that value, where torch makes a view: its total derivative is not comparable
    aliased = {s for s in prog.sources if any(env[s] is v for k, v in env.items() if k != s)}
    # backward into .grad
    if on("backward"):
        def bw():
            L = _loss(gt, outs, ref.W, ref.tracked, backend)
            L.backward()
            return [x.grad for x in xs]
        for nm, g, w in zip(names, _guard("backward", bw), ref.grads):
            compare(f"backward: {nm}.grad", g if g is not None else gt.zeros(np.shape(w), dtype=str(w.dtype), device=backend), w, rt, at)
    # accumulation: two backwards into requires_grad_() leaves add up; attach_grad() + gt.record() overwrites
    if on("accumulate"):
        def acc():
            xs2, outs2 = _gt_run(prog, backend)
            L = _loss(gt, outs2, ref.W, ref.tracked, backend)
            L.backward(retain_graph=True)
            L.backward()
            xs3 = [gt.asarray(a, device=backend) for a in prog.arrays()]
            for x in xs3:
                x.attach_grad()
            for _ in range(2):
                with gt.record():
                    outs3 = P.run(prog, lib("gt", backend), xs3)
                    L3 = _loss(gt, outs3, ref.W, ref.tracked, backend)
                L3.backward()
            return [x.grad for x in xs2], [x.grad for x in xs3]
        twice, written = _guard("accumulate", acc)
        for nm, g2, g1, w in zip(names, twice, written, ref.grads):
            compare(f"backward twice (accumulated): {nm}.grad", g2 if g2 is not None else
                    gt.zeros(np.shape(w), dtype=str(w.dtype), device=backend), 2 * w, rt, at)
            compare(f"attach_grad + record, backward twice (grad_req write): {nm}.grad", g1, w, rt, at)
    # autograd.grad with intermediate sources (total derivatives)
    if on("sources"):
        def src():
            env = {}
            xs2, outs2 = _gt_run(prog, backend, env=env)
            keep = [(o, w) for o, w, t in zip(outs2, ref.W, ref.tracked) if t]
            return gt.autograd.grad([o for o, _ in keep], xs2 + [env[s] for s in prog.sources],
                                    head_grads=[gt.asarray(w, device=backend) for _, w in keep])
        for nm, g, w in zip(names, _guard("sources", src), ref.grads):
            if nm not in aliased:
                compare(f"autograd.grad w.r.t. {nm}", g, w, rt, at)
    # gt.vjp of the whole program, one cotangent per output
    if on("vjp"):
        def vj():
            _, back = gt.vjp(lambda *a: P.run(prog, lib("gt", backend), list(a)),
                             *[gt.asarray(a, device=backend) for a in prog.arrays()])
            return back(tuple(gt.asarray(w, device=backend) for w in ref.W))
        for nm, g, w in zip(names, _guard("vjp", vj), ref.grads):
            compare(f"gt.vjp cotangent of {nm}", g, w, rt, at)
    # GradientTape with watched inputs
    if on("tape") and prog.oracle == "torch":
        def tape():
            env = {}
            with gt.GradientTape() as tp:
                xs2, outs2 = _gt_run(prog, backend, watch=tp, env=env)
                L = _loss(gt, outs2, ref.W, ref.tracked, backend)
            return tp.gradient(L, xs2 + [env[s] for s in prog.sources])
        for nm, g, w in zip(names, _guard("tape", tape), ref.grads):
            if nm not in aliased:
                compare(f"GradientTape.gradient w.r.t. {nm}", g if g is not None else
                    gt.zeros(np.shape(w), dtype=str(w.dtype), device=backend), w, rt, at)
    # reverse over reverse
    if on("double"):
        def dbl():
            xs2, outs2 = _gt_run(prog, backend)
            L = _loss(gt, outs2, ref.W, ref.tracked, backend)
            gs = gt.autograd.grad(L, xs2, create_graph=True)
            terms = [gt.sum(g * gt.asarray(v, device=backend)) for g, v in zip(gs, ref.V) if g.requires_grad]
            if not terms:
                return [gt.zeros(x.shape, dtype=x.dtype, device=backend) for x in xs2]
            s = terms[0]
            for t in terms[1:]:
                s = s + t
            return gt.autograd.grad(s, xs2)
        for nm, g, w in zip(names, _guard("double", dbl), ref.hvp):
            compare(f"double backward (HVP) w.r.t. {nm}", g, w, rt * 10, at * 10)
    # forward mode
    f = lambda *a: P.run(prog, lib("gt", backend), list(a))   # noqa: E731
    prim = [gt.asarray(a, device=backend) for a in prog.arrays()]
    tans = [gt.asarray(v, device=backend) for v in ref.V]
    if on("jvp") and ref.jvp is not None:
        _, tout = _guard("jvp", lambda: gt.jvp(f, tuple(prim), tuple(tans)))
        tout = tout if isinstance(tout, (tuple, list)) else (tout,)
        if len(tout) != len(ref.jvp):
            raise Mismatch("jvp", f"{len(tout)} tangents for {len(ref.jvp)} outputs")
        for i, (t, w) in enumerate(zip(tout, ref.jvp)):
            # torch.func.jvp promotes a 0-d float32 tangent times a Python float to float64: the tangent has
            # its primal's dtype
            compare(f"jvp: tangent of {prog.outputs[i]}", t, np.asarray(w).astype(ref.outs[i].dtype), rt, at)
    W = [gt.asarray(w, device=backend) for w in ref.W]

    def loss(*a):
        outs2 = P.run(prog, lib("gt", backend), list(a))
        return _loss(gt, outs2, ref.W, ref.tracked, backend)
    if on("hvp") and any(ref.tracked):
        argn = tuple(range(n))
        hv = _guard("hvp", lambda: gt.jvp(gt.grad(loss, argnums=argn), tuple(prim), tuple(tans))[1])
        for nm, g, w in zip(names, hv, ref.hvp):
            compare(f"hvp (jvp of grad) w.r.t. {nm}", g, w, rt * 10, at * 10)
        if n == 1:
            compare("gt.hvp", _guard("hvp", lambda: gt.hvp(loss, prim[0], tans[0])), ref.hvp[0], rt * 10, at * 10)
    if on("graph") and any(ref.tracked):
        _graph_check(prog, backend, ref, prim, loss, f, rt, at, names, gt)
    if on("nested") and n >= 2 and getattr(ref, "nested", None) is not None:
        def nested():
            def outer(x1):
                inner = lambda x0: loss(x0, x1, *prim[2:])   # noqa: E731  (closes over x1)
                return gt.sum(gt.grad(inner)(prim[0]) * tans[0])
            return gt.grad(outer)(prim[1])
        compare("nested gt.grad over a closure: d/dx1 sum(grad_x0(L) * v0)", _guard("nested", nested),
                ref.nested, rt * 10, at * 10)
    if prog.kind == "jacobian":
        f1 = lambda *a: P.run(prog, lib("gt", backend), list(a))[0]   # noqa: E731
        argn = tuple(range(n))
        for mode in ("reverse", "forward"):
            if on("jacobian") and ref.jac is not None:
                J = _guard("jacobian", lambda: gt.jacobian(f1, argnums=argn, mode=mode)(*prim))
                for i, (j, w) in enumerate(zip(J, ref.jac)):
                    # a float32 input of a float64 output: forward mode gives the output's dtype (as JAX's jacfwd)
                    compare(f"jacobian mode={mode} w.r.t. x{i}", j, w, rt, at,
                            dtypes=(str(ref.outs[0].dtype),) if mode == "forward" else ())
        if on("jacobian") and ref.jac is not None:
            def tj():
                with gt.GradientTape(persistent=True) as tp:
                    xs2, outs2 = _gt_run(prog, backend, watch=tp)
                return tp.jacobian(outs2[0], xs2)
            for i, (j, w) in enumerate(zip(_guard("jacobian", tj), ref.jac)):
                compare(f"GradientTape.jacobian w.r.t. x{i}", j if j is not None else
                        gt.zeros(np.shape(w), dtype=str(w.dtype), device=backend), w, rt, at)
        if on("hessian") and ref.hess is not None:
            w0 = gt.asarray(ref.W[0], device=backend)
            lossf = lambda *a: gt.sum(P.run(prog, lib("gt", backend), list(a))[0] * w0)   # noqa: E731
            H = _guard("hessian", lambda: gt.hessian(lossf, argnums=argn)(*prim))
            for i in range(n):
                for j in range(n):
                    compare(f"hessian block ({i}, {j})", H[i][j], ref.hess[i][j], rt * 10, at * 10)


def _tuple(r):
    return tuple(r) if isinstance(r, (tuple, list)) else (r,)


def _graph_check(prog, backend, ref, prim, loss, f, rt, at, names, gt):
    """gt.trace of the program and of its gradient replay equal to the oracle, also after a JSON round trip."""
    import os
    import tempfile
    g = _guard("graph", lambda: gt.trace(f, *prim))
    for i, (o, w) in enumerate(zip(_guard("graph", lambda: _tuple(g(*prim))), ref.outs)):
        compare(f"gt.trace(program) replay: output {prog.outputs[i]}", o, w, rt, at)
    gg = _guard("graph", lambda: gt.trace(gt.grad(loss, argnums=tuple(range(len(prim)))), *prim))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "g.json")
        _guard("graph", lambda: gg.save(path))
        loaded = _guard("graph", lambda: gt.Graph.load(path))
        for what, graph in (("gt.trace(gt.grad(L)) replay", gg), ("Graph.load(save(gt.trace(gt.grad(L))))", loaded)):
            got = _guard("graph", lambda: _tuple(graph(*prim)))
            for nm, gr, w in zip(names, got, ref.grads):
                compare(f"{what}: gradient w.r.t. {nm}", gr, w, rt, at)


# ---- shrinking -----------------------------------------------------------------------------------------------------
def _prune(prog):
    """Drop instructions and inputs that no output or source depends on."""
    need = set(prog.outputs) | set(prog.sources)
    keep = []
    for ins in reversed(prog.instrs):
        if ins.out in need:
            keep.append(ins)
            need |= set(ins.args)
    keep.reverse()
    inputs = {k: v for k, v in prog.inputs.items() if k in need}
    return prog.copy(instrs=keep, inputs=inputs)


def _kind_of(detail):
    """What differs, coarsely: the exception type gradtape raised, or the first words of the comparison."""
    if detail.startswith("gradtape raised"):
        return detail.split(":")[0]
    return " ".join(detail.split()[:2])


def _same_failure(cand, backend, want):
    try:
        r = check(cand, backend)
    except Exception:
        return False
    return r.status == "mismatch" and (r.check.split(":")[0], _kind_of(r.detail)) == want


def _variants(prog):
    if len(prog.outputs) > 1:
        for o in prog.outputs:
            yield prog.copy(outputs=[o])
    if prog.sources:
        yield prog.copy(sources=[])
        for s in prog.sources:
            yield prog.copy(sources=[s])
    for i, ins in enumerate(prog.instrs):         # an earlier value as the only output
        if ins.out not in prog.outputs:
            yield prog.copy(outputs=[ins.out], sources=[s for s in prog.sources if s != ins.out])
    for i, ins in enumerate(prog.instrs):         # bypass an op: its first operand takes its place
        for a in ins.args[:1]:
            rest = prog.instrs[:i] + prog.instrs[i + 1:]
            if a in prog.inputs and ins.out in prog.outputs:
                continue                              # an input as an output: a different program
            ren = lambda r: a if r == ins.out else r   # noqa: E731
            new = [P.Instr(j.out, j.op, [ren(x) for x in j.args], j.params) for j in rest]
            yield prog.copy(instrs=new, outputs=[ren(o) for o in prog.outputs],
                            sources=[s for s in prog.sources if s != ins.out and s != a])
    for k, a in prog.inputs.items():              # simpler values, smaller shapes
        for b in (np.asarray(np.round(a, 1)), np.asarray(np.round(a * 2) / 2), np.ones_like(a)):
            if not np.array_equal(a, b):
                yield prog.copy(inputs={**prog.inputs, k: b})
        for ax in range(a.ndim):
            if a.shape[ax] > 1:
                yield prog.copy(inputs={**prog.inputs, k: np.take(a, range(a.shape[ax] - 1), axis=ax)})
                yield prog.copy(inputs={**prog.inputs, k: np.take(a, [0], axis=ax)})


def shrink(result, budget=400):
    """A smaller program failing the same check (greedy: first accepted variant, repeat)."""
    prog, backend = _prune(result.prog), result.backend
    want = (result.check.split(":")[0], _kind_of(result.detail))     # the same check failing the same way
    if not _same_failure(prog, backend, want):
        prog = result.prog
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for cand in _variants(prog):
            tries += 1
            if tries > budget:
                break
            cand = _prune(cand)
            if not cand.instrs or _size(cand) >= _size(prog):
                continue
            if _same_failure(cand, backend, want):
                prog, improved = cand, True
                break
    return check(prog, backend)


def _size(prog):
    return (len(prog.instrs) + len(prog.outputs) + len(prog.sources), sum(a.size for a in prog.inputs.values()),
            sum(float(np.sum(np.abs(a - np.round(a)))) for a in prog.inputs.values()))


# ---- serialising a program as a regression test --------------------------------------------------------------------
def _lit(v):
    from .oracles import Const
    if isinstance(v, Const):
        return f"C({v.a.tolist()!r}, {str(v.a.dtype)!r})"
    if isinstance(v, (np.ndarray, np.floating)):
        v = np.asarray(v)
        return f"A({v.tolist()!r}, {v.shape!r})"
    if isinstance(v, slice):
        return f"slice({v.start!r}, {v.stop!r}, {v.step!r})"
    if v is Ellipsis:
        return "Ellipsis"
    if isinstance(v, tuple):
        return "(" + "".join(_lit(x) + ", " for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_lit(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


def dump(prog):
    """Python source rebuilding prog (with the helpers of tests/test_fuzz_regressions.py)."""
    ins = ",\n        ".join(f"I({i.out!r}, {i.op!r}, {i.args!r}, {_lit(i.params)})" for i in prog.instrs)
    return (f"Program({prog.kind!r}, {prog.seed!r}, {_lit(prog.inputs)},\n        [{ins}],\n"
            f"        {prog.outputs!r}, {prog.sources!r}, {prog.oracle!r}, {prog.dtype!r})")


# ---- command line --------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.difftest.runner", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--kind", choices=P.KINDS, default="general")
    ap.add_argument("--backend", choices=("cpu", "strict"), default="cpu")
    ap.add_argument("--seed", type=int, default=0, help="first seed; programs use seed, seed+1, ...")
    ap.add_argument("--out", default=None, help="append mismatches (shrunk reproducers) here")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--max-report", type=int, default=50)
    ap.add_argument("--all-checks", action="store_true", help="every check on every program (default: the "
                    "duplicate routes tape/vjp/hvp/hessian on a share of the seeds)")
    a = ap.parse_args(argv)
    counts = {"ok": 0, "invalid": 0, "mismatch": 0}
    seen, by_check, t0 = {}, {}, time.time()
    out = open(a.out, "a") if a.out else None
    for k in range(a.n):
        seed = a.seed + k
        try:
            prog = P.generate(seed, a.kind)
            r = check(prog, a.backend, sample=not a.all_checks)
        except Exception as e:                          # a defect of the fuzzer itself: say so, go on
            counts["harness"] = counts.get("harness", 0) + 1
            print(f"HARNESS ERROR seed={seed}: {type(e).__name__}: {e}", flush=True)
            continue
        counts[r.status] += 1
        if r.status == "mismatch":
            head = r.check.split(":")[0]
            key = (head, tuple(sorted({i.op for i in prog.instrs})))
            by_check.setdefault(head, []).append(seed)
            # at most 3 shrunk reports per check: a defect that fires often would spend the run shrinking
            if len(seen) < a.max_report and key not in seen and len(by_check[head]) <= 3:
                s = r if a.no_shrink else shrink(r)
                seen[key] = s
                text = s.report() if s.status == "mismatch" else r.report()
                print(text + "\n" + "=" * 100, flush=True)
                if out:
                    out.write(f"\n## seed {seed} kind {a.kind} backend {a.backend}\n```\n{text}\n```\n"
                              f"regression: {dump(s.prog if s.status == 'mismatch' else prog)}\n")
                    out.flush()
        if (k + 1) % 500 == 0:
            print(f"[{k + 1}/{a.n}] {counts} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    dt = time.time() - t0
    summary = (f"kind={a.kind} backend={a.backend} seeds {a.seed}..{a.seed + a.n - 1}: {counts} in {dt:.0f}s "
               f"({1000 * dt / max(a.n, 1):.1f} ms/program); {len(seen)} distinct mismatch signatures")
    for head, seeds in by_check.items():
        summary += f"\n  {head}: {len(seeds)} programs, seeds {seeds[:20]}{' ...' if len(seeds) > 20 else ''}"
    print(summary)
    if out:
        out.write(f"\n{summary}\n")
        out.close()
    return 1 if counts["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
