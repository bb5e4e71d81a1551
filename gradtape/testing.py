"""Gradient checking against finite differences, forward and reverse, to any order.

``check_grads(f, args)`` compares the Jacobian that reverse mode (one VJP per
output element) and forward mode (one JVP per input element) give with
central finite differences. Small inputs get the full Jacobian; large ones
random projections ``u·J·v``. Order 2 and up check the derivative functions
themselves (``x -> J(x) v`` and ``x -> uᵀ J(x)``) the same way, which covers
forward-over-forward, reverse-over-forward, forward-over-reverse and
reverse-over-reverse.
"""
from __future__ import annotations

from . import _api as api
from ._autodiff.modes import no_grad
from ._autodiff.transforms import jvp, vjp
from ._core.dtypes import is_float
from ._core.tensor import Tensor

__all__ = ["check_grads", "GradientCheckError"]

EPS = 1e-6
ATOL = 1e-5
RTOL = 1e-4


class GradientCheckError(AssertionError):
    """A derivative disagrees with finite differences (or forward with reverse)."""


def _flat(x):
    return api.reshape(x, (-1,)) if x.ndim else api.reshape(x, (1,))


def _basis(x, i):
    """e_i shaped like x."""
    e = api.astype(api.arange(x.size, device=x.device) == i, x.dtype)
    return api.reshape(e, x.shape)


def _random_like(x, seed):
    # a deterministic pseudo-random direction from standard functions only
    n = x.size
    k = api.astype(api.arange(n, device=x.device), x.dtype)
    v = api.sin(k * 12.9898 + 78.233 * (seed + 1)) * 43758.5453
    v = v - api.floor(v) - 0.5
    return api.reshape(v, x.shape)


def _close(a, b, atol, rtol, what):
    a = api.astype(a, api.float64) if a.dtype != api.float64 else a
    b = api.astype(b, api.float64) if b.dtype != api.float64 else b
    if a.shape != b.shape:
        raise GradientCheckError(f"{what}: shape {a.shape} != {b.shape}")
    if a.size == 0:
        return
    bad = api.abs(a - b) > atol + rtol * api.abs(b)
    if bool(api.any(bad)) or bool(api.any(api.isnan(a) != api.isnan(b))):
        err = float(api.max(api.abs(a - b)))
        raise GradientCheckError(f"{what}: max abs difference {err:.3g} exceeds atol={atol} + rtol={rtol}·|expected|"
                                 f"\n got      {a}\n expected {b}")


def _numeric_dir(f, args, dirs, eps):
    """(f(args + eps*dirs) - f(args - eps*dirs)) / 2eps."""
    with no_grad():
        plus = f(*[a + eps * d if d is not None else a for a, d in zip(args, dirs)])
        minus = f(*[a - eps * d if d is not None else a for a, d in zip(args, dirs)])
        return (plus - minus) / (2 * eps)


def _bind(f, args, wrt):
    """f as a function of the arguments at positions wrt only (the others fixed to args)."""
    def g(*xs):
        a = list(args)
        for i, x in zip(wrt, xs):
            a[i] = x
        return f(*a)
    return g


def _wrt(args):
    return [i for i, a in enumerate(args) if isinstance(a, Tensor) and is_float(a.dtype)]


def check_grads(f, args, order=2, modes=("fwd", "rev"), eps=EPS, atol=ATOL, rtol=RTOL, full_max=64, seed=0, _depth=1):
    """Check f's derivatives w.r.t. its floating-point tensor arguments against finite differences.

    Raises :class:`GradientCheckError` naming the mode and order that disagree.

    >>> import gradtape as gt
    >>> from gradtape.testing import check_grads
    >>> check_grads(lambda x: gt.sin(x) * x, (gt.asarray([0.3, 1.2]),), order=2)
    """
    args = tuple(args)
    wrt = _wrt(args)
    if not wrt:
        raise ValueError("check_grads: no floating-point tensor argument to differentiate")
    y = f(*args)
    if not isinstance(y, Tensor):
        raise TypeError(f"check_grads: f must return a Tensor, got {type(y).__name__}")
    n_in = sum(args[i].size for i in wrt)
    full = y.size * n_in <= full_max * full_max and n_in <= full_max and y.size <= full_max
    tag = f"derivative of order {_depth}"

    def fwd_dir(dirs):
        return jvp(_bind(f, args, wrt), [args[i] for i in wrt], [dirs[i] for i in wrt])[1]

    def rev_row(u):
        return vjp(_bind(f, args, wrt), *[args[i] for i in wrt])[1](u)

    if y.size == 0 or n_in == 0:
        # nothing to compare numerically: the derivatives must still have the right shapes
        if "fwd" in modes:
            t = fwd_dir([api.zeros_like(a) if i in wrt else None for i, a in enumerate(args)])
            if t.shape != y.shape:
                raise GradientCheckError(f"forward mode {tag}: tangent shape {t.shape} != output shape {y.shape}")
        if "rev" in modes:
            for g, i in zip(rev_row(api.zeros_like(y)), wrt):
                if g.shape != args[i].shape:
                    raise GradientCheckError(f"reverse mode {tag}: gradient shape {g.shape} != arg{i} shape "
                                             f"{args[i].shape}")
    elif full:
        rows = [rev_row(_basis(y, j)) for j in range(y.size)] if "rev" in modes else None
        for pos, i in enumerate(wrt):
            if args[i].size == 0:
                continue
            basis = [[None if j != i else _basis(args[i], k) for j in range(len(args))] for k in range(args[i].size)]
            num = api.stack([_flat(_numeric_dir(f, args, d, eps)) for d in basis], axis=1)       # (m, n_i)
            if "fwd" in modes:
                fw = api.stack([_flat(fwd_dir([b if b is not None else (api.zeros_like(a) if j in wrt else None)
                                             for j, (b, a) in enumerate(zip(d, args))])) for d in basis], axis=1)
                _close(fw, num, atol, rtol, f"forward mode (JVP) {tag}: Jacobian w.r.t. arg{i}")
            if rows is not None:
                for r in rows:
                    if r[pos].shape != args[i].shape:
                        raise GradientCheckError(f"reverse mode {tag}: gradient of arg{i} has shape {r[pos].shape},"
                                                 f" expected {args[i].shape}")
                rv = api.stack([_flat(r[pos]) for r in rows], axis=0)
                _close(rv, num, atol, rtol, f"reverse mode (VJP) {tag}: Jacobian w.r.t. arg{i}")
    else:
        dirs = [_random_like(a, seed + i) if i in wrt else None for i, a in enumerate(args)]
        u = _random_like(y, seed + 7)
        num = api.sum(u * _numeric_dir(f, args, dirs, eps))
        if "fwd" in modes:
            t = fwd_dir(dirs)
            _close(api.sum(u * t), num, atol, rtol, f"forward mode (JVP) {tag}, projection u·J·v")
        if "rev" in modes:
            got = rev_row(u)
            val = sum(api.sum(g * dirs[i]) for g, i in zip(got, wrt))
            _close(val, num, atol, rtol, f"reverse mode (VJP) {tag}, projection u·J·v")

    if order > 1:
        v = [_random_like(a, seed + 3 + i) if i in wrt else None for i, a in enumerate(args)]
        u = _random_like(y, seed + 11)
        if "fwd" in modes:
            def f_jvp(*a):
                return jvp(_bind(f, a, wrt), [a[i] for i in wrt], [v[i] for i in wrt])[1]
            check_grads(f_jvp, args, order - 1, modes, eps, atol, rtol, full_max, seed + 1, _depth + 1)
        if "rev" in modes:
            def f_vjp(*a):
                back = vjp(_bind(f, a, wrt), *[a[i] for i in wrt])[1]
                return api.concat([_flat(c) for c in back(u)])
            check_grads(f_vjp, args, order - 1, modes, eps, atol, rtol, full_max, seed + 2, _depth + 1)
