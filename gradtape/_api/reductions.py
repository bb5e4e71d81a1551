"""Reductions and scans of the array API, differentiable: ``sum``, ``prod``, ``mean``, ``var``, ``std``, ``max``,
``min``, ``cumulative_sum``, ``cumulative_prod``, and ``diff`` (their primitives: :mod:`gradtape._ops.reduction`).

This module defines ``sum``, ``max`` and ``min``, so it spells the builtins ``builtins.any`` etc.

>>> import gradtape as gt
>>> gt.sum(gt.asarray([[1.0, 2.0], [3.0, 4.0]]), axis=0)
Tensor([4., 6.])
"""
from __future__ import annotations

import builtins

from .._axes import axis_index, axis_tuple
from .._core.dispatch import apply1, wrap
from .._core.dtypes import backend_dtype
from .._core.tensor import Tensor
from .._ops import reduction as ops
from .creation import as_tensor, asarray, astype, ones_like, tracked
from .manipulation import broadcast_to, concat, stack, unstack
from .public import public

__all__ = ["sum", "prod", "mean", "var", "std", "max", "min", "cumulative_sum", "cumulative_prod", "diff"]


def reduced_axes(x, axis, op="sum"):
    """The reduced axes, distinct and negative (rules then accept leading batch axes); AxisError naming op."""
    ndim = x.ndim
    if axis is None:
        return tuple(range(-ndim, 0))
    return tuple(sorted(a - ndim for a in axis_tuple(axis, ndim, op, x.shape)))


@public
def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001  (array API name)
    """Array API ``sum``; differentiable. A float16 ``x`` is summed in float32 and rounded once (README: float16).

    >>> import gradtape as gt
    >>> gt.sum(gt.asarray([1.0, 2.0]))
    Tensor(3.)
    """
    x = as_tensor(x)
    return apply1(ops.sum_, x, {"axis": reduced_axes(x, axis), "keepdims": keepdims,
                                "dtype": backend_dtype(x.backend, dtype), "xshape": x.shape})


@public
def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    """Array API ``prod``; its gradient is exact where x has zeros.

    >>> import gradtape as gt
    >>> gt.prod(gt.asarray([2.0, 3.0]))
    Tensor(6.)
    """
    x = as_tensor(x)
    return apply1(ops.prod_, x, {"axis": reduced_axes(x, axis, "prod"), "keepdims": keepdims,
                                 "dtype": backend_dtype(x.backend, dtype)})


@public
def mean(x, /, *, axis=None, keepdims=False):
    """Array API ``mean``.

    >>> import gradtape as gt
    >>> gt.mean(gt.asarray([1.0, 2.0]))
    Tensor(1.5)
    """
    x = as_tensor(x)
    return apply1(ops.mean_, x, {"axis": reduced_axes(x, axis, "mean"), "keepdims": keepdims, "xshape": x.shape})


@public
def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Array API ``var``.

    >>> import gradtape as gt
    >>> gt.var(gt.asarray([1.0, 3.0]))
    Tensor(1.)
    """
    x = as_tensor(x)
    return apply1(ops.var_, x, {"axis": reduced_axes(x, axis, "var"), "correction": correction,
                                "keepdims": keepdims})


@public
def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Array API ``std`` (its derivative is infinite where the spread is 0).

    >>> import gradtape as gt
    >>> gt.std(gt.asarray([1.0, 3.0]))
    Tensor(1.)
    """
    x = as_tensor(x)
    return apply1(ops.std_, x, {"axis": reduced_axes(x, axis, "std"), "correction": correction,
                                "keepdims": keepdims})


@public
def max(x, /, *, axis=None, keepdims=False):  # noqa: A001  (array API name)
    """Array API ``max``; ties share the gradient evenly.

    >>> import gradtape as gt
    >>> gt.max(gt.asarray([1.0, 3.0]))
    Tensor(3.)
    """
    x = as_tensor(x)
    return apply1(ops.max_, x, {"axis": _nonempty(x, reduced_axes(x, axis, "max"), "max"), "keepdims": keepdims})


@public
def min(x, /, *, axis=None, keepdims=False):  # noqa: A001  (array API name)
    """Array API ``min``; ties share the gradient evenly.

    >>> import gradtape as gt
    >>> gt.min(gt.asarray([1.0, 3.0]))
    Tensor(1.)
    """
    x = as_tensor(x)
    return apply1(ops.min_, x, {"axis": _nonempty(x, reduced_axes(x, axis, "min"), "min"), "keepdims": keepdims})


def _nonempty(x, axes, op):
    """axes, checked to have at least one element each (max/min of nothing has no value)."""
    if 0 in x.shape and builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"gradtape.{op}: cannot reduce an empty axis (shape {x.shape}, axis {axes}): {op} of no "
                         f"elements has no value")
    return axes


@public
def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array API ``cumulative_sum``.

    >>> import gradtape as gt
    >>> gt.cumulative_sum(gt.asarray([1.0, 2.0]))
    Tensor([1., 3.])
    """
    x = as_tensor(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"gradtape.cumulative_sum: axis is required for shape {x.shape}")
        axis = 0
    return apply1(ops.cumsum, x, {"axis": axis_index(axis, x.ndim, "cumulative_sum", x.shape) - x.ndim,
                                  "dtype": backend_dtype(x.backend, dtype), "include_initial": include_initial})


@public
def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array API ``cumulative_prod`` (differentiated as a chain of products, exact with zeros).

    >>> import gradtape as gt
    >>> gt.cumulative_prod(gt.asarray([2.0, 3.0]))
    Tensor([2., 6.])
    """
    x = as_tensor(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"gradtape.cumulative_prod: axis is required for shape {x.shape}")
        axis = 0
    axis = axis_index(axis, x.ndim, "cumulative_prod", x.shape)
    if not tracked(x):
        return wrap(x.backend.xp.cumulative_prod(x.data, axis=axis, dtype=backend_dtype(x.backend, dtype),
                                                 include_initial=include_initial), x.backend)
    if dtype is not None:
        x = astype(x, dtype)
    if x.shape[axis] == 0:          # still tracked: 1 + an empty sum (exactly 1), or x itself (empty)
        return sum(x, axis=axis, keepdims=True) + 1 if include_initial else x * 1
    parts = unstack(x, axis=axis)
    outs = [ones_like(parts[0])] if include_initial else []
    run = None
    for p in parts:
        run = p if run is None else run * p
        outs.append(run)
    return stack(outs, axis=axis)


@public
def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """Array API ``diff``.

    >>> import gradtape as gt
    >>> gt.diff(gt.asarray([1.0, 4.0, 9.0]))
    Tensor([3., 5.])
    """
    x = as_tensor(x)
    a = axis_index(axis, x.ndim, "diff", x.shape)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"gradtape.diff: n must be a non-negative integer, got {n!r}")
    parts = [p if p is x else _edge(p if isinstance(p, Tensor) else asarray(p, device=x.device), x, a)
             for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = concat(parts, axis=a)
    for _ in range(n):
        hi = (slice(None),) * a + (slice(1, None),)
        lo = (slice(None),) * a + (slice(None, -1),)
        x = x[hi] - x[lo]
    return x


def _edge(p, x, a):
    """A 0-d prepend/append of diff as one slice along axis a (NumPy broadcasts scalars so)."""
    return broadcast_to(p, x.shape[:a] + (1,) + x.shape[a + 1:]) if p.ndim == 0 else p
