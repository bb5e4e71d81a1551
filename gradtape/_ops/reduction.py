"""Reduction primitives: sum, prod, max, min, mean, var, std, cumulative_sum.

Axes arrive distinct and negative (counted from the end; the API layer normalises them), so a cotangent
or tangent with extra leading batch axes (batched Jacobians) reduces over the same axes. A VJP first
puts the reduced axes back (``_unreduce``), then scales by the local derivative.

>>> from gradtape._ops.reduction import sum_
>>> sum_.inputs, sum_.reads
(('x',), ((),))
"""
from __future__ import annotations

import math

from .._core.primitive import define, define_linear

__all__ = ["sum_", "prod_", "max_", "min_", "mean_", "var_", "std_", "cumsum"]


def _keep(xp, g, shape, axes):
    """Reshape a reduced g (keepdims=False, maybe with leading batch axes) to broadcast against ``shape``."""
    batch = g.ndim - (len(shape) - len(axes))
    kept = tuple(1 if i - len(shape) in axes else n for i, n in enumerate(shape))
    return xp.reshape(g, tuple(g.shape[:batch]) + kept)


def _unreduce(xp, ct, x_shape, axes, keepdims):
    """The cotangent of a reduction broadcast back to the input's shape (leading batch axes kept)."""
    ct = ct if keepdims else _keep(xp, ct, x_shape, axes)
    return xp.broadcast_to(ct, tuple(ct.shape[:ct.ndim - len(x_shape)]) + tuple(x_shape))


def _count(shape, axes):
    return math.prod(shape[a] for a in axes)


# ---- sum, prod ---------------------------------------------------------------------------------------------------
# xshape: the input's shape (the VJP reads no input)
sum_ = define_linear("sum", lambda xp, x, axis, keepdims, dtype, xshape:
                     xp.sum(x, axis=axis, keepdims=keepdims, dtype=dtype),
                     lambda xp, ct, out, x, axis, keepdims, dtype, xshape: _unreduce(xp, ct, xshape, axis, keepdims))

prod_ = define(
    "prod", lambda xp, x, axis, keepdims, dtype: xp.prod(x, axis=axis, keepdims=keepdims, dtype=dtype),
    vjp={"x": lambda xp, ct, out, x, axis, keepdims, dtype:
         _unreduce(xp, ct, x.shape, axis, keepdims) * _prod_of_others(xp, x, axis)},
    jvp={"x": lambda xp, t, out, x, axis, keepdims, dtype:
         xp.sum(t * _prod_of_others(xp, x, axis), axis=axis, keepdims=keepdims)},
    reads={"x": ("x",)})


def _prod_of_others(xp, x, axes):
    """At each position, the product of the other elements along the reduced axes (exact where x has zeros:
    products of the elements before and after, no division)."""
    axes = tuple(a % x.ndim for a in axes)
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    perm = rest + axes
    moved = xp.permute_dims(x, perm)
    lead = moved.shape[:len(rest)]
    flat = xp.reshape(moved, lead + (math.prod(moved.shape[len(rest):]),))
    before = xp.cumulative_prod(flat, axis=-1, include_initial=True)[..., :-1]
    after = xp.flip(xp.cumulative_prod(xp.flip(flat, axis=-1), axis=-1, include_initial=True)[..., :-1], axis=-1)
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return xp.permute_dims(xp.reshape(before * after, moved.shape), tuple(inverse))


# ---- max, min: ties split evenly among the extreme elements --------------------------------------------------------
def _share(xp, x, out, axis, keepdims):
    hit = xp.astype(x == (out if keepdims else _keep(xp, out, x.shape, axis)), x.dtype)
    return hit / xp.sum(hit, axis=axis, keepdims=True)


def _extreme(name, reduce):
    return define(
        name, lambda xp, x, axis, keepdims: getattr(xp, reduce)(x, axis=axis, keepdims=keepdims),
        vjp={"x": lambda xp, ct, out, x, axis, keepdims:
             _unreduce(xp, ct, x.shape, axis, keepdims) * _share(xp, x, out, axis, keepdims)},
        jvp={"x": lambda xp, t, out, x, axis, keepdims:
             xp.sum(t * _share(xp, x, out, axis, keepdims), axis=axis, keepdims=keepdims)},
        reads={"x": ("x", "out")})


max_ = _extreme("max", "max")
min_ = _extreme("min", "min")


# ---- mean, var, std --------------------------------------------------------------------------------------------
mean_ = define_linear("mean", lambda xp, x, axis, keepdims, xshape: xp.mean(x, axis=axis, keepdims=keepdims),
                      lambda xp, ct, out, x, axis, keepdims, xshape:
                      _unreduce(xp, ct, xshape, axis, keepdims) / _count(xshape, axis))


def _deviation(xp, x, axis):
    return x - xp.mean(x, axis=axis, keepdims=True)


def _inverse_dof(n):
    """1 / n for the degrees of freedom n = count - correction; NumPy clamps n <= 0 to 0 (an infinite factor:
    NaN derivatives where the deviations are 0, as the value is NaN), never a ZeroDivisionError."""
    return 1.0 / n if n > 0 else math.inf


def _var_factor(shape, axis, correction):
    """d var = k * sum(dev * dx): k = 2 / (count - correction); 0 over an empty axis (no terms, as torch/JAX)."""
    n = _count(shape, axis)
    return 2 * _inverse_dof(n - correction) if n else 0.0


var_ = define(
    "var", lambda xp, x, axis, correction, keepdims: xp.var(x, axis=axis, correction=correction, keepdims=keepdims),
    vjp={"x": lambda xp, ct, out, x, axis, correction, keepdims:
         _unreduce(xp, ct, x.shape, axis, keepdims)
         * (_deviation(xp, x, axis) * _var_factor(x.shape, axis, correction))},
    jvp={"x": lambda xp, t, out, x, axis, correction, keepdims:
         xp.sum(t * _deviation(xp, x, axis), axis=axis, keepdims=keepdims) * _var_factor(x.shape, axis, correction)},
    reads={"x": ("x",)})

std_ = define(
    "std", lambda xp, x, axis, correction, keepdims: xp.std(x, axis=axis, correction=correction, keepdims=keepdims),
    vjp={"x": lambda xp, ct, out, x, axis, correction, keepdims:
         _unreduce(xp, ct * _inverse_dof(_count(x.shape, axis) - correction) / out, x.shape, axis, keepdims)
         * _deviation(xp, x, axis)},
    jvp={"x": lambda xp, t, out, x, axis, correction, keepdims:
         xp.sum(t * _deviation(xp, x, axis), axis=axis, keepdims=keepdims)
         * _inverse_dof(_count(x.shape, axis) - correction) / out},
    reads={"x": ("x", "out")})


# ---- cumulative_sum (axis negative) ----------------------------------------------------------------------------
def _reverse_cumsum(xp, ct, axis):
    return xp.flip(xp.cumulative_sum(xp.flip(ct, axis=axis), axis=axis), axis=axis)


def _cumsum_vjp(xp, ct, out, x, axis, dtype, include_initial):
    if include_initial:   # drop the cotangent of the leading 0
        ct = ct[(Ellipsis, slice(1, None)) + (slice(None),) * (-axis - 1)]
    return _reverse_cumsum(xp, ct, axis)


cumsum = define_linear("cumulative_sum", lambda xp, x, axis, dtype, include_initial:
                       xp.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial), _cumsum_vjp)
