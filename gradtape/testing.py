"""Gradient checking against finite differences, forward and reverse, to any order.

``check_grads(f, args)`` compares the Jacobian that reverse mode (one VJP per
output element) and forward mode (one JVP per input element) give with
central finite differences. Small inputs get the full Jacobian; large ones
random projections ``u·J·v``. Order 2 and up check the derivative functions
themselves (``x -> J(x) v`` and ``x -> uᵀ J(x)``) the same way, which covers
forward-over-forward, reverse-over-forward, forward-over-reverse and
reverse-over-reverse.

``check_grads_vs_float64(f, args)`` is the check for a low-precision dtype
(float16), where finite differences are useless (eps ~ 1e-3): the value,
Jacobians and second derivatives computed in the arguments' dtype are
compared with the same ones computed in float64 on the same (rounded)
inputs, and every derivative must have its variable's dtype.
"""
from __future__ import annotations

from . import _api as api
from ._autodiff.modes import no_grad
from ._autodiff.transforms import jvp, vjp
from ._core.dtypes import is_float
from ._core.tensor import Tensor

__all__ = ["check_grads", "check_grads_vs_float64", "GradientCheckError"]

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


# ---- low precision: the same derivatives in float64 are the reference ---------------------------------------------

def _near(a, b, atol, rtol, what):
    """|a - b| <= atol * max(1, max|b|) + rtol * |b|: a low-precision result against its float64 reference, the
    absolute part scaled by the reference's magnitude (cancellation loses digits relative to the summands)."""
    if a.shape != b.shape:
        raise GradientCheckError(f"{what}: shape {a.shape} != {b.shape}")
    if a.size == 0:
        return
    a = api.astype(a, api.float64)
    scale = float(api.max(api.abs(b))) if bool(api.all(api.isfinite(b))) else 1.0
    _close(a, b, atol * max(1.0, scale), rtol, what)


def _direction(x, seed):
    """_random_like made in float64 and rounded to x's dtype (float16 arithmetic would lose the fractions)."""
    return api.astype(_random_like(api.zeros(x.shape, dtype=api.float64, device=x.device), seed), x.dtype)


def _cast(x, like):
    return api.astype(x, like.dtype) if x.dtype != like.dtype else x


def _dtype_is(got, want, what):
    if got.dtype != want.dtype:
        raise GradientCheckError(f"{what}: dtype {got.dtype}, expected {want.dtype} (its variable's dtype)")


def check_grads_vs_float64(f, args, order=2, modes=("fwd", "rev"), atol=1e-3, rtol=1e-2, full_max=16, seed=0,
                           _depth=1):
    """Check f's derivatives in its arguments' low-precision dtype (float16) against float64.

    The value, the Jacobians (full for small inputs, else along random directions: JVP and VJP compared
    elementwise) and, for ``order`` > 1, the derivative functions themselves are computed twice: on ``args``
    and on ``args`` converted exactly to float64. They must agree within ``atol * max(1, max|reference|) +
    rtol * |reference|``, and every gradient must have its variable's dtype and every tangent its output's.

    >>> import gradtape as gt
    >>> from gradtape.testing import check_grads_vs_float64
    >>> check_grads_vs_float64(lambda x: gt.sin(x) * x, (gt.asarray([0.3, 1.2], dtype=gt.float16),))
    """
    args = tuple(args)
    wrt = _wrt(args)
    if not wrt:
        raise ValueError("check_grads_vs_float64: no floating-point tensor argument to differentiate")
    ref = tuple(api.astype(a, api.float64) if i in wrt else a for i, a in enumerate(args))
    y, yr = f(*args), f(*ref)
    if not isinstance(y, Tensor):
        raise TypeError(f"check_grads_vs_float64: f must return a Tensor, got {type(y).__name__}")
    tag = f"derivative of order {_depth}"
    _near(y, yr, atol, rtol, f"value ({'order 0' if _depth == 1 else tag[:-1] + str(_depth - 1)})")

    def fwd(a, dirs, out):          # the JVP along dirs (made in args' dtype), in a's dtype
        t = jvp(_bind(f, a, wrt), [a[i] for i in wrt], [_cast(dirs[i], a[i]) for i in wrt])[1]
        return _cast(t, out) if a is ref else t

    def rev(a, u, out):             # the VJP of cotangent u (made in y's dtype), in a's dtype
        return vjp(_bind(f, a, wrt), *[a[i] for i in wrt])[1](_cast(u, out))

    def both_fwd(dirs, what):
        t, tr = fwd(args, dirs, y), fwd(ref, dirs, yr)
        _dtype_is(t, y, f"forward mode (JVP) {tag}: tangent")
        _near(t, tr, atol, rtol, f"forward mode (JVP) {tag}: {what}")

    def both_rev(u, what):
        for i, g, gr in zip(wrt, rev(args, u, y), rev(ref, u, yr)):
            _dtype_is(g, args[i], f"reverse mode (VJP) {tag}: gradient of arg{i}")
            _near(g, gr, atol, rtol, f"reverse mode (VJP) {tag}: {what}, arg{i}")

    n_in = sum(args[i].size for i in wrt)
    if y.size and n_in and y.size <= full_max and n_in <= full_max:
        for i in wrt:
            for k in range(args[i].size if "fwd" in modes else 0):
                both_fwd([_basis(a, k) if j == i else api.zeros_like(a) for j, a in enumerate(args)],
                         f"column {k} of the Jacobian w.r.t. arg{i}")
        for j in range(y.size if "rev" in modes else 0):
            both_rev(_basis(y, j), f"row {j} of the Jacobian")
    elif y.size and n_in:
        if "fwd" in modes:
            both_fwd([_direction(a, seed + i) if i in wrt else None for i, a in enumerate(args)], "random direction")
        if "rev" in modes:
            both_rev(_direction(y, seed + 7), "random cotangent")
    if order > 1:
        v = [_direction(a, seed + 3 + i) if i in wrt else None for i, a in enumerate(args)]
        u = _direction(y, seed + 11)
        if "fwd" in modes:
            def f_jvp(*a):
                return jvp(_bind(f, a, wrt), [a[i] for i in wrt], [_cast(v[i], a[i]) for i in wrt])[1]
            check_grads_vs_float64(f_jvp, args, order - 1, modes, atol, rtol, full_max, seed + 1, _depth + 1)
        if "rev" in modes:
            def f_vjp(*a):
                out, back = vjp(_bind(f, a, wrt), *[a[i] for i in wrt])
                return api.concat([_flat(c) for c in back(_cast(u, out))])
            check_grads_vs_float64(f_vjp, args, order - 1, modes, atol, rtol, full_max, seed + 2, _depth + 1)
