"""Shape primitives: reshape, permute_dims, broadcast_to, astype, flip, roll, tril/triu, concat, where (all
linear in the differentiated input; gathers and scatters are in :mod:`gradtape._ops.indexing`).

For a linear op the JVP is the op applied to the tangent and the VJP its transpose, so each block is
short. Broadcasting (``broadcast_to``'s VJP) and dtype casts (``astype``'s VJP) are undone by the engine
from the recorded input shape and dtype, so those VJPs just pass ``ct`` through.

Rules accept cotangents/tangents with extra leading batch axes (batched Jacobians): shapes are taken
from the end and axes are negative, so the batch axes are derived from the shapes (``ct.ndim`` against
the recorded ``xshape``). The public functions are in :mod:`gradtape._api.manipulation`.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.reshape.view, PRIMS.where.inputs
(True, ('c', 'x', 'y'))
"""
from __future__ import annotations

from .._core.primitive import define, define_linear

__all__ = ["reshape_p", "permute_p", "broadcast_p", "astype_p", "flip_p", "roll_p", "tril_p", "triu_p", "where_p",
           "_concat_prim"]

reshape_p = define(
    "reshape", lambda xp, x, shape, xshape: xp.reshape(x, shape),
    vjp={"x": lambda xp, ct, out, x, shape, xshape: xp.reshape(ct, _lead(ct, len(shape)) + xshape)},
    jvp={"x": lambda xp, t, out, x, shape, xshape: xp.reshape(t, _lead(t, len(xshape)) + shape)}, view=True)
permute_p = define(
    "permute_dims", lambda xp, x, axes: xp.permute_dims(x, axes),
    vjp={"x": lambda xp, ct, out, x, axes: xp.permute_dims(ct, _shifted(_inverse(axes), ct.ndim))},
    jvp={"x": lambda xp, t, out, x, axes: xp.permute_dims(t, _shifted(axes, t.ndim))}, view=True)
broadcast_p = define(
    "broadcast_to", lambda xp, x, shape, xshape: xp.broadcast_to(x, shape),
    vjp={"x": lambda xp, ct, out, x, shape, xshape: ct},        # the engine sums the broadcast axes
    jvp={"x": lambda xp, t, out, x, shape, xshape: xp.broadcast_to(
        xp.reshape(t, _lead(t, len(xshape)) + (1,) * (len(shape) - len(xshape)) + xshape),
        _lead(t, len(xshape)) + shape)},
    view=True)
# the engine casts ct back to the input's dtype
astype_p = define_linear("astype", lambda xp, x, dtype: xp.astype(x, dtype), lambda xp, ct, out, x, dtype: ct)
# axes negative: the forward applies to tangents with batch axes as it is
flip_p = define_linear("flip", lambda xp, x, axis: xp.flip(x, axis=axis),
                       lambda xp, ct, out, x, axis: xp.flip(ct, axis=axis), view=True)
roll_p = define_linear("roll", lambda xp, x, shift, axis: xp.roll(x, shift, axis=axis),
                       lambda xp, ct, out, x, shift, axis: xp.roll(ct, _negated(shift), axis=axis))
tril_p = define_linear("tril", lambda xp, x, k: xp.tril(x, k=k), lambda xp, ct, out, x, k: xp.tril(ct, k=k))
triu_p = define_linear("triu", lambda xp, x, k: xp.triu(x, k=k), lambda xp, ct, out, x, k: xp.triu(ct, k=k))

where_p = define(
    "where", lambda xp, c, x, y: xp.where(c, x, y), inputs=("c", "x", "y"),
    vjp={"x": lambda xp, ct, out, c, x, y: xp.where(c, ct, xp.zeros_like(ct)),
         "y": lambda xp, ct, out, c, x, y: xp.where(c, xp.zeros_like(ct), ct)},
    jvp={"x": lambda xp, t, out, c, x, y: xp.where(c, t, xp.zeros_like(t)),
         "y": lambda xp, t, out, c, x, y: xp.where(c, xp.zeros_like(t), t)},
    reads={"x": ("c",), "y": ("c",)}, broadcasting=True)


def _lead(a, n):
    """The leading (batch) part of a's shape, beyond its last n axes."""
    return tuple(a.shape[:a.ndim - n])


def _shifted(axes, ndim):
    """A permutation of the last len(axes) axes, leading batch axes kept in place."""
    batch = ndim - len(axes)
    return tuple(range(batch)) + tuple(a + batch for a in axes)


def _inverse(axes):
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


def _negated(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


_concat_prims = {}


def _concat_prim(n):
    """concat of n inputs (one primitive per arity, cached); ``sizes`` are the inputs' lengths along ``axis``."""
    p = _concat_prims.get(n)
    if p is None:
        names = tuple(f"x{i}" for i in range(n))

        def piece(i):
            def vjp(xp, ct, out, *xs, axis, sizes):
                lo = sum(sizes[:i])
                return ct[(Ellipsis, slice(lo, lo + sizes[i])) + (slice(None),) * (-axis - 1)]
            return vjp

        def tangent(i):
            def jvp(xp, t, out, *xs, axis, sizes):
                lead = _lead(t, xs[i].ndim)
                parts = [xp.zeros(lead + tuple(xs[j].shape), dtype=t.dtype, device=t.device) if j != i else t
                         for j in range(n)]
                return xp.concat(parts, axis=axis)
            return jvp
        p = _concat_prims[n] = define(f"concat{n}", lambda xp, *xs, axis, sizes: xp.concat(xs, axis=axis),
                                      inputs=names, vjp={k: piece(i) for i, k in enumerate(names)},
                                      jvp={k: tangent(i) for i, k in enumerate(names)})
    return p

