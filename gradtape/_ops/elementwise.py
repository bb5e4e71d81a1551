"""Elementwise, reduction and matrix primitives: forward, VJP and JVP side by side.

Rules use ``xp`` (the backend namespace on raw arrays, or gradtape itself on
tensors when derivatives are recorded), ``ct`` the cotangent, ``t`` the
tangent, ``out`` the forward result. For an elementwise op ``f`` only the
partial derivative ``d`` is written: VJP = ct * d and JVP = t * d.
"""
from __future__ import annotations

import math

from .._core.primitive import PRIMS, define, unary as _unary, binary as _binary
from .._core.tensor import Tensor
from .._core.dispatch import apply, apply1, apply2
from .._state import state

_INPUTS = ("x", "y", "z", "w", "v", "u")
# public in gt (bound by gradtape._api.elementwise); TEMPORARY (phase 1): the blocks will say namespace="gt"
_GT = {"negative", "positive", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
       "atanh", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square", "reciprocal", "add", "subtract",
       "multiply", "divide", "atan2", "hypot", "logaddexp", "maximum", "minimum", "copysign", "remainder", "pow"}


def prim(name, fwd, vjp, jvp, save, same=False, view=False, multi=False, fused=False, bcast=False):
    """TEMPORARY (phase 1) adapter from positional rule lists to :func:`define`."""
    inputs = _INPUTS[:len(vjp)] if len(vjp) <= len(_INPUTS) else tuple(f"x{i}" for i in range(len(vjp)))
    names = {i: n for i, n in enumerate(inputs)}
    names["out"] = "out"
    return define(name, fwd, inputs=inputs, vjp=dict(zip(inputs, vjp)), jvp=dict(zip(inputs, jvp)),
                  reads={n: tuple(names[j] for j in r) for n, r in zip(inputs, save)}, same_shape=same, view=view,
                  multi_output=multi, fused_vjp=fused, broadcasting=bcast,
                  namespace="gt" if name in _GT else None)


def unary(name, fwd, d, save="x", fused=False):
    return _unary(name, fwd, d, reads=save, fused_vjp=fused, namespace="gt" if name in _GT else None)


def binary(name, fwd, dx, dy, save=(("y",), ("x",))):
    return _binary(name, fwd, dx, dy, reads={"x": save[0], "y": save[1]}, namespace="gt" if name in _GT else None)


# ---- unary elementwise -----------------------------------------------------------------------
negative = prim("negative", lambda xp, x: -x, [lambda xp, ct, out, x: -ct], [lambda xp, t, out, x: -t], [()], same=True)
positive = prim("positive", lambda xp, x: +x, [lambda xp, ct, out, x: ct], [lambda xp, t, out, x: t], [()], same=True)
sin = unary("sin", lambda xp, x: xp.sin(x), lambda xp, x, out: xp.cos(x))
cos = unary("cos", lambda xp, x: xp.cos(x), lambda xp, x, out: -xp.sin(x))
tan = unary("tan", lambda xp, x: xp.tan(x), lambda xp, x, out: 1 + out * out, "out")
asin = unary("asin", lambda xp, x: xp.asin(x), lambda xp, x, out: 1 / xp.sqrt(1 - x * x))
acos = unary("acos", lambda xp, x: xp.acos(x), lambda xp, x, out: -1 / xp.sqrt(1 - x * x))
atan = unary("atan", lambda xp, x: xp.atan(x), lambda xp, x, out: 1 / (1 + x * x))
sinh = unary("sinh", lambda xp, x: xp.sinh(x), lambda xp, x, out: xp.cosh(x))
cosh = unary("cosh", lambda xp, x: xp.cosh(x), lambda xp, x, out: xp.sinh(x))
tanh = unary("tanh", lambda xp, x: xp.tanh(x), lambda xp, x, out: 1 - out * out, "out", fused=True)
asinh = unary("asinh", lambda xp, x: xp.asinh(x), lambda xp, x, out: 1 / xp.sqrt(x * x + 1))
acosh = unary("acosh", lambda xp, x: xp.acosh(x), lambda xp, x, out: 1 / xp.sqrt(x * x - 1))
atanh = unary("atanh", lambda xp, x: xp.atanh(x), lambda xp, x, out: 1 / (1 - x * x))
exp = unary("exp", lambda xp, x: xp.exp(x), lambda xp, x, out: out, "out")
expm1 = unary("expm1", lambda xp, x: xp.expm1(x), lambda xp, x, out: out + 1, "out")
log = unary("log", lambda xp, x: xp.log(x), lambda xp, x, out: 1 / x)
log1p = unary("log1p", lambda xp, x: xp.log1p(x), lambda xp, x, out: 1 / (1 + x))
log2 = unary("log2", lambda xp, x: xp.log2(x), lambda xp, x, out: 1 / (x * math.log(2.0)))
log10 = unary("log10", lambda xp, x: xp.log10(x), lambda xp, x, out: 1 / (x * math.log(10.0)))
sqrt = unary("sqrt", lambda xp, x: xp.sqrt(x), lambda xp, x, out: 0.5 / out, "out")   # sqrt'(0) = +inf
square = unary("square", lambda xp, x: xp.square(x), lambda xp, x, out: 2 * x)
reciprocal = unary("reciprocal", lambda xp, x: xp.reciprocal(x), lambda xp, x, out: -(out * out), "out")
# kinks: abs'(0) = a, relu'(0) = a, configurable through gt.subgradient (read when the op runs)
abs_ = unary("abs", lambda xp, x, a: xp.abs(x), lambda xp, x, out, a: xp.where(x == 0, a, xp.sign(x)))
relu = prim("relu", lambda xp, x, a: xp.maximum(x, 0),
            [lambda xp, ct, out, x, a: _relu_vjp(xp, ct, x, a)], [lambda xp, t, out, x, a: _relu_d(xp, t, x, a)],
            [(0,)], same=True)
# CuPy: one ElementwiseKernel each for the VJPs of relu, tanh, sigmoid, softplus (backends/cupy_backend.py)
sigmoid = unary("sigmoid", lambda xp, x: _sigmoid(xp, x), lambda xp, x, out: out * (1 - out), "out", fused=True)
softplus = unary("softplus", lambda xp, x: xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x))),
                 lambda xp, x, out: _sigmoid(xp, x), fused=True)


def _relu_vjp(xp, ct, x, a):
    """ct * relu'(x) by the backend's kernel ``xp.relu_vjp(ct, x)`` where it has one (NumPy, CuPy; tested equal
    to the generic rule) and a = 0."""
    k = getattr(xp, "relu_vjp", None) if a == 0 else None
    return _relu_d(xp, ct, x, a) if k is None else k(ct, x)


def _relu_d(xp, ct, x, a):
    """ct * relu'(x), relu'(0) = a."""
    if a == 0:
        return xp.where(x > 0, ct, xp.zeros_like(ct))
    return xp.where(x > 0, ct, xp.where(x == 0, a * ct, 0.0))


def _sigmoid(xp, x):
    """Stable logistic function: never exponentiates a positive number."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def abs(x, /):
    """Elementwise absolute value; abs'(0) is 0 unless set with ``gt.subgradient(abs=a)``.

    >>> import gradtape as gt
    >>> gt.abs(gt.asarray([-2.0, 3.0]))
    Tensor([2., 3.])
    """
    return apply1(abs_, x, {"a": state.abs_sub})


def relu_fn(x, /):
    """max(x, 0); relu'(0) is 0 unless set with ``gt.subgradient(relu=a)``.

    >>> import gradtape as gt
    >>> gt.nn.relu(gt.asarray([-1.0, 2.0]))
    Tensor([0., 2.])
    """
    return apply1(relu, x, {"a": state.relu_sub})


def sigmoid_fn(x, /):
    """The logistic function 1 / (1 + exp(-x)), computed stably.

    >>> import gradtape as gt
    >>> gt.nn.sigmoid(gt.asarray([0.0]))
    Tensor([0.5])
    """
    return apply1(sigmoid, x)


def softplus_fn(x, /):
    """log(1 + exp(x)), computed stably.

    >>> import gradtape as gt
    >>> gt.nn.softplus(gt.asarray([0.0])).shape
    (1,)
    """
    return apply1(softplus, x)

# ---- binary elementwise ----------------------------------------------------------------------
add = prim("add", lambda xp, x, y: x + y,
           [lambda xp, ct, out, x, y: ct, lambda xp, ct, out, x, y: ct],
           [lambda xp, t, out, x, y: t, lambda xp, t, out, x, y: t], [(), ()], bcast=True)
subtract = prim("subtract", lambda xp, x, y: x - y,
                [lambda xp, ct, out, x, y: ct, lambda xp, ct, out, x, y: -ct],
                [lambda xp, t, out, x, y: t, lambda xp, t, out, x, y: -t], [(), ()], bcast=True)
multiply = prim("multiply", lambda xp, x, y: x * y,
                [lambda xp, ct, out, x, y: ct * y, lambda xp, ct, out, x, y: ct * x],
                [lambda xp, t, out, x, y: t * y, lambda xp, t, out, x, y: x * t], [(1,), (0,)], bcast=True)
divide = prim("divide", lambda xp, x, y: x / y,
              [lambda xp, ct, out, x, y: ct / y, lambda xp, ct, out, x, y: -ct * x / (y * y)],
              [lambda xp, t, out, x, y: t / y, lambda xp, t, out, x, y: -t * x / (y * y)], [(1,), (0, 1)], bcast=True)
pow_ = binary("pow", lambda xp, x, y: xp.pow(x, y),
              lambda xp, x, y, out: _pow_dx(xp, x, y),
              lambda xp, x, y, out: _logx(xp, x) * out,
              save=(("x", "y"), ("x", "out")))
atan2 = binary("atan2", lambda xp, x, y: xp.atan2(x, y),
               lambda xp, x, y, out: y / (x * x + y * y), lambda xp, x, y, out: -x / (x * x + y * y),
               save=(("x", "y"), ("x", "y")))
hypot = binary("hypot", lambda xp, x, y: xp.hypot(x, y),
               lambda xp, x, y, out: x / out, lambda xp, x, y, out: y / out,
               save=(("x", "out"), ("y", "out")))
logaddexp = binary("logaddexp", lambda xp, x, y: xp.logaddexp(x, y),
                   lambda xp, x, y, out: xp.exp(x - out), lambda xp, x, y, out: xp.exp(y - out),
                   save=(("x", "out"), ("y", "out")))
# ties split 1/2-1/2
maximum = binary("maximum", lambda xp, x, y: xp.maximum(x, y),
                 lambda xp, x, y, out: _tie(xp, x > y, x == y, out), lambda xp, x, y, out: _tie(xp, y > x, x == y, out),
                 save=(("x", "y", "out"), ("x", "y", "out")))
minimum = binary("minimum", lambda xp, x, y: xp.minimum(x, y),
                 lambda xp, x, y, out: _tie(xp, x < y, x == y, out), lambda xp, x, y, out: _tie(xp, y < x, x == y, out),
                 save=(("x", "y", "out"), ("x", "y", "out")))
copysign = binary("copysign", lambda xp, x, y: xp.copysign(x, y),
                  lambda xp, x, y, out: xp.where(x == 0, 0.0, out / xp.where(x == 0, 1.0, x)),
                  lambda xp, x, y, out: xp.zeros_like(out), save=(("x", "out"), ("out",)))
remainder = binary("remainder", lambda xp, x, y: xp.remainder(x, y),
                   lambda xp, x, y, out: xp.ones_like(out), lambda xp, x, y, out: -xp.floor(x / y),
                   save=(("out",), ("x", "y")))


def _pow_dx(xp, x, y):
    """y x**(y-1); x**0 is the constant 1, so 0 also at x = 0 (JAX's integer_pow, torch; not 0 * inf). For a tensor
    exponent only the point x = y = 0 is masked (torch's 0), so mixed derivatives stay right elsewhere."""
    if isinstance(y, (int, float)):
        return y * xp.pow(x, y - 1) if y != 0 else xp.zeros_like(x)
    return xp.where((y == 0) & (x == 0), xp.zeros_like(x), y * xp.pow(x, y - 1))


def _logx(xp, x):
    """log(x), taken as 0 at x = 0 (d(0**y)/dy = 0 for y > 0)."""
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
    return xp.where(x == 0, xp.zeros_like(x), xp.log(xp.where(x == 0, xp.ones_like(x), x)))


def _tie(xp, win, tie, out):
    return xp.astype(win, out.dtype) + 0.5 * xp.astype(tie, out.dtype)


# ---- reductions ------------------------------------------------------------------------------
# Axes are negative (counted from the end), so a cotangent or tangent with extra leading batch axes
# (batched Jacobians) reduces over the same axes.


def _keep(xp, g, shape, axes):
    """Reshape a reduced g (keepdims=False, maybe with leading batch axes) to broadcast against ``shape``."""
    nb = g.ndim - (len(shape) - len(axes))
    return xp.reshape(g, tuple(g.shape[:nb]) + tuple(1 if i - len(shape) in axes else n for i, n in enumerate(shape)))


def _unreduce(xp, ct, x_shape, axes, keepdims):
    ct = ct if keepdims else _keep(xp, ct, x_shape, axes)
    return xp.broadcast_to(ct, tuple(ct.shape[:ct.ndim - len(x_shape)]) + tuple(x_shape))


sum_ = prim("sum", lambda xp, x, axis, keepdims, dtype, xshape: xp.sum(x, axis=axis, keepdims=keepdims, dtype=dtype),
            [lambda xp, ct, out, x, axis, keepdims, dtype, xshape: _unreduce(xp, ct, xshape, axis, keepdims)],
            [lambda xp, t, out, x, axis, keepdims, dtype, xshape: xp.sum(t, axis=axis, keepdims=keepdims, dtype=dtype)],
            [()])
prod_ = prim("prod", lambda xp, x, axis, keepdims, dtype: xp.prod(x, axis=axis, keepdims=keepdims, dtype=dtype),
             [lambda xp, ct, out, x, axis, keepdims, dtype: _unreduce(xp, ct, x.shape, axis, keepdims) * _others(xp, x, axis)],
             [lambda xp, t, out, x, axis, keepdims, dtype: xp.sum(t * _others(xp, x, axis), axis=axis, keepdims=keepdims)],
             [(0,)])


def _others(xp, x, axes):
    """prod of the other elements along the reduced axes, at each position (exact where x has zeros)."""
    axes = tuple(a % x.ndim for a in axes)
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    perm = rest + axes
    xt = xp.permute_dims(x, perm)
    lead = xt.shape[:len(rest)]
    n = math.prod(xt.shape[len(rest):])
    flat = xp.reshape(xt, lead + (n,))
    left = xp.cumulative_prod(flat, axis=-1, include_initial=True)[..., :-1]
    rflat = xp.flip(flat, axis=-1)
    right = xp.flip(xp.cumulative_prod(rflat, axis=-1, include_initial=True)[..., :-1], axis=-1)
    o = xp.reshape(left * right, xt.shape)
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return xp.permute_dims(o, tuple(inv))


def _extreme(name, f):
    # ties split evenly among the maximal elements
    def share(xp, x, out, axis, keepdims):
        m = xp.astype(x == (out if keepdims else _keep(xp, out, x.shape, axis)), x.dtype)
        return m / xp.sum(m, axis=axis, keepdims=True)
    return prim(name, lambda xp, x, axis, keepdims: f(xp)(x, axis=axis, keepdims=keepdims),
                [lambda xp, ct, out, x, axis, keepdims: _unreduce(xp, ct, x.shape, axis, keepdims) * share(xp, x, out, axis, keepdims)],
                [lambda xp, t, out, x, axis, keepdims: xp.sum(t * share(xp, x, out, axis, keepdims), axis=axis, keepdims=keepdims)],
                [(0, "out")])


max_ = _extreme("max", lambda xp: xp.max)
min_ = _extreme("min", lambda xp: xp.min)


def _csum_rev(xp, ct, axis):
    return xp.flip(xp.cumulative_sum(xp.flip(ct, axis=axis), axis=axis), axis=axis)


cumsum = prim("cumulative_sum",
              lambda xp, x, axis, dtype, include_initial: xp.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial),
              [lambda xp, ct, out, x, axis, dtype, include_initial:
               _csum_rev(xp, ct[(Ellipsis, slice(1, None)) + (slice(None),) * (-axis - 1)] if include_initial else ct, axis)],
              [lambda xp, t, out, x, axis, dtype, include_initial: xp.cumulative_sum(t, axis=axis, dtype=dtype, include_initial=include_initial)],
              [()])

# ---- matrix product and norms ----------------------------------------------------------------


def _mT(xp, a):
    return xp.matrix_transpose(a) if a.ndim >= 2 else a


def _mm(xp, a, b):
    """a @ b, as one GEMM when one side is a plain matrix and the other a stack (batched rules make stacks
    of thin matrices, which NumPy would multiply one by one)."""
    if b.ndim == 2 and a.ndim > 2:       # the row count spelled out: -1 is ambiguous for an empty stack
        rows = xp.reshape(a, (math.prod(a.shape[:-1]), a.shape[-1]))
        return xp.reshape(xp.matmul(rows, b), tuple(a.shape[:-1]) + (b.shape[-1],))
    if a.ndim == 2 and b.ndim > 2:
        return _mT(xp, _mm(xp, _mT(xp, b), _mT(xp, a)))
    return xp.matmul(a, b)


def _mm_vjp_x(xp, ct, out, x, y, nd):
    if nd[1] == 1:                                    # (..., k, n) @ (n,) -> (..., k)
        return xp.expand_dims(ct, axis=-1) * y
    if nd[0] == 1 and nd[1] > 2:                      # (n,) @ (S..., n, m) -> (S..., m)
        return xp.squeeze(_mm(xp, y, xp.expand_dims(ct, axis=-1)), axis=-1)
    return _mm(xp, ct, _mT(xp, y))                  # one GEMM, also for (n,) @ (n, m)


def _mm_vjp_y(xp, ct, out, x, y, nd):
    if nd[0] == 1:
        if nd[1] == 1:
            return xp.expand_dims(ct, axis=-1) * x
        return xp.expand_dims(x, axis=-1) * xp.expand_dims(ct, axis=-2)
    if nd[1] == 1:
        return xp.squeeze(_mm(xp, xp.expand_dims(ct, axis=-2), x), axis=-2)
    return _mm(xp, _mT(xp, x), ct)


def _align_stack(xp, t, nz, nd):
    """A batched tangent of a matrix (stack) operand, its batch axes put in front of the other's stack axes."""
    nb = t.ndim - nz
    full = max(nd)
    if nb and nz < full:
        return xp.reshape(t, tuple(t.shape[:nb]) + (1,) * (full - nz) + tuple(t.shape[nb:]))
    return t


def _mm_jvp_x(xp, t, out, x, y, nd):
    nb = t.ndim - nd[0]
    if nd[0] == 1 and nb and nd[1] > 2:               # batched vector against a stack of matrices
        t = xp.reshape(t, tuple(t.shape[:nb]) + (1,) * (nd[1] - 2) + (1, t.shape[-1]))
        return xp.squeeze(_mm(xp, t, y), axis=-2)
    return _mm(xp, _align_stack(xp, t, nd[0], nd) if nd[0] > 1 and nd[1] > 1 else t, y)


def _mm_jvp_y(xp, t, out, x, y, nd):
    nb = t.ndim - nd[1]
    if nd[1] == 1:
        if nd[0] <= 2:                                # one GEMM for a whole batch of tangents
            return _mm(xp, t, x if nd[0] == 1 else _mT(xp, x))
        t = xp.reshape(t, tuple(t.shape[:nb]) + (1,) * (nd[0] - 2) + (t.shape[-1], 1))
        return xp.squeeze(_mm(xp, x, t), axis=-1)
    return _mm(xp, x, _align_stack(xp, t, nd[1], nd) if nd[0] > 1 else t)


# nd = (x.ndim, y.ndim): the rules need the ranks, not the unsaved operand
matmul = prim("matmul", lambda xp, x, y, nd: xp.matmul(x, y),
              [_mm_vjp_x, _mm_vjp_y], [_mm_jvp_x, _mm_jvp_y],
              [(1,), (0,)])


def _norm_d(xp, x, out, axis, keepdims):
    """d||x||_2/dx = x / ||x||, taken as 0 where ||x|| = 0."""
    o = out if keepdims else _keep(xp, out, x.shape, axis)
    return x / xp.where(o == 0, 1.0, o)


norm2 = prim("vector_norm2", lambda xp, x, axis, keepdims: xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=2),
             [lambda xp, ct, out, x, axis, keepdims: _unreduce(xp, ct, x.shape, axis, keepdims) * _norm_d(xp, x, out, axis, keepdims)],
             [lambda xp, t, out, x, axis, keepdims: xp.sum(t * _norm_d(xp, x, out, axis, keepdims), axis=axis, keepdims=keepdims)],
             [(0, "out")])


def _normp_d(xp, x, out, axis, keepdims, p):
    """d||x||_p/dx = sign(x) (|x| / ||x||)**(p-1) for p > 1, taken as 0 where ||x|| = 0 (as for ord 2, and torch)."""
    o = out if keepdims else _keep(xp, out, x.shape, axis)
    nz = o != 0
    d = xp.sign(x) * (xp.abs(x) / xp.where(nz, o, xp.ones_like(o))) ** (p - 1)
    return xp.where(nz, d, xp.zeros_like(d))


normp = prim("vector_normp", lambda xp, x, axis, keepdims, p: xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=p),
             [lambda xp, ct, out, x, axis, keepdims, p: _unreduce(xp, ct, x.shape, axis, keepdims) * _normp_d(xp, x, out, axis, keepdims, p)],
             [lambda xp, t, out, x, axis, keepdims, p: xp.sum(t * _normp_d(xp, x, out, axis, keepdims, p), axis=axis, keepdims=keepdims)],
             [(0, "out")])


def _count(shape, axes):
    return math.prod(shape[a] for a in axes)


mean_ = prim("mean", lambda xp, x, axis, keepdims, xshape: xp.mean(x, axis=axis, keepdims=keepdims),
             [lambda xp, ct, out, x, axis, keepdims, xshape: _unreduce(xp, ct, xshape, axis, keepdims) / _count(xshape, axis)],
             [lambda xp, t, out, x, axis, keepdims, xshape: xp.mean(t, axis=axis, keepdims=keepdims)], [()])


def _dev(xp, x, axis):
    return x - xp.mean(x, axis=axis, keepdims=True)


def _over(n):
    """1 / n for the degrees of freedom n = count - correction; NumPy clamps n <= 0 to 0 (an infinite factor:
    NaN derivatives where the deviations are 0, as the value is NaN), never a ZeroDivisionError."""
    return 1.0 / n if n > 0 else math.inf


def _var_k(shape, axis, correction):
    """d var = k * sum(dev * dx): k = 2 / (count - correction); 0 over an empty axis (no terms, as torch/JAX)."""
    n = _count(shape, axis)
    return 2 * _over(n - correction) if n else 0.0


var_ = prim("var", lambda xp, x, axis, correction, keepdims: xp.var(x, axis=axis, correction=correction, keepdims=keepdims),
            [lambda xp, ct, out, x, axis, correction, keepdims:
             _unreduce(xp, ct, x.shape, axis, keepdims) * (_dev(xp, x, axis) * _var_k(x.shape, axis, correction))],
            [lambda xp, t, out, x, axis, correction, keepdims:
             xp.sum(t * _dev(xp, x, axis), axis=axis, keepdims=keepdims) * _var_k(x.shape, axis, correction)],
            [(0,)])
std_ = prim("std", lambda xp, x, axis, correction, keepdims: xp.std(x, axis=axis, correction=correction, keepdims=keepdims),
            [lambda xp, ct, out, x, axis, correction, keepdims:
             _unreduce(xp, ct * _over(_count(x.shape, axis) - correction) / out, x.shape, axis, keepdims) * _dev(xp, x, axis)],
            [lambda xp, t, out, x, axis, correction, keepdims:
             xp.sum(t * _dev(xp, x, axis), axis=axis, keepdims=keepdims) * _over(_count(x.shape, axis) - correction) / out],
            [(0, "out")])
# clip with scalar bounds: derivative 1 inside [lo, hi] (bounds included), 0 outside
clip_ = unary("clip", lambda xp, x, lo, hi: xp.clip(x, lo, hi),
              lambda xp, x, out, lo, hi: xp.astype(out == x, x.dtype), "x out")
vecdot_ = prim("vecdot", lambda xp, x, y, axis, nd: xp.vecdot(x, y, axis=axis),
               [lambda xp, ct, out, x, y, axis, nd: xp.expand_dims(ct, axis=axis) * y,
                lambda xp, ct, out, x, y, axis, nd: xp.expand_dims(ct, axis=axis) * x],
               [lambda xp, t, out, x, y, axis, nd: xp.vecdot(_align_stack(xp, t, nd[0], nd), y, axis=axis),
                lambda xp, t, out, x, y, axis, nd: xp.vecdot(x, _align_stack(xp, t, nd[1], nd), axis=axis)],
               [(1,), (0,)])
