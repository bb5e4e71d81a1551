"""Batching rules (``gt.vmap``) of the matrix products, the linalg extension, the nn primitives and the device
transfer.

A rule ``rule(prim, args, batched, params, size)`` gets the underlying values (a batched one with the batch
axis at 0, its per-example rank one less than its rank), which of them are batched, the primitive's
parameters and the batch size, and returns the output with the batch axis at 0. The linalg primitives act on
the trailing one or two axes and stack over the leading ones, and their axes arrive negative, so a batched
operand goes through as it is: only operands of unequal per-example ranks need padding (size-1 axes after the
batch axis, so that their stack axes line up from the right as they do per example). ``matmul`` makes one
GEMM of a batch of vectors or matrices against one matrix (the per-example gradients of an MLP).

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.inv.batch is _stacked and PRIMS.matmul.batch is _matmul_rule
True
"""
from __future__ import annotations

import math

from .._core import hooks
from .._core.dispatch import apply, apply1, apply_multi
from .._core.primitive import PRIMS
from .batching import align, ensure_batched
from .shape import reshape_p

__all__ = ["RULES"]


def _reshape(x, shape):
    return apply1(reshape_p, x, {"shape": tuple(shape), "xshape": tuple(x.shape)})


def _stacked(prim, args, batched, params, size):
    """Primitives on the trailing axes of one operand (stacks of matrices or vectors, negative axes): the batch
    axis is one more stack axis."""
    if prim.multi_output:
        return apply_multi(prim, args, params)
    return apply(prim, args, params)


def _aligned(prim, args, batched, params, size):
    """Two operands broadcasting over their stack axes (solve, cross): pad to one per-example rank, then apply."""
    return apply(prim, align(args, batched), params)


# ---- matmul: one GEMM where one side is a plain matrix or vector ------------------------------------------------
def _mm(x, y):
    return apply(PRIMS.matmul, (x, y), {"nd": (x.ndim, y.ndim)})


def _rows(x, y):
    """Batched x (B, ..., k) @ unbatched y (k, m) or (k,) as one product of x's rows: (B*..., k) @ y."""
    lead = tuple(x.shape[:-1])
    if len(lead) == 1:
        return _mm(x, y)
    out = _mm(_reshape(x, (math.prod(lead), x.shape[-1])), y)
    return _reshape(out, lead + tuple(out.shape[1:]))


def _matmul_rule(prim, args, batched, params, size):
    x, y = args
    bx, by = batched
    if bx and not by and y.ndim <= 2:                  # (B, ..., k) @ (k, m) or (k,): one GEMM / GEMV
        return _rows(x, y)
    if by and not bx and y.ndim == 2 and x.ndim == 2:  # (n, k) @ per-example vector (B, k): (B, k) @ (k, n)
        return _mm(y, hooks.RULES.matrix_transpose(x))
    vx, vy = x.ndim - bx == 1, y.ndim - by == 1       # per-example vectors as (1, k) and (k, 1), squeezed after
    if vx:
        x = _reshape(x, tuple(x.shape[:-1]) + (1, x.shape[-1]))
    if vy:
        y = _reshape(y, tuple(y.shape) + (1,))
    x, y = align((x, y), batched)
    out = _mm(x, y)
    if vx or vy:
        out = _reshape(out, tuple(out.shape[:-2]) + (() if vx else out.shape[-2:-1]) + (() if vy else out.shape[-1:]))
    return out


def _vecdot_rule(prim, args, batched, params, size):
    x, y = align(args, batched)
    return apply(prim, (x, y), {"axis": params["axis"], "nd": (x.ndim, y.ndim)})


# ---- nn: cross_entropy is a mean over each example's rows ----------------------------------------------------------
def _cross_entropy_rule(prim, args, batched, params, size):
    """Per example mean(logsumexp(x) - x[label]) over its rows: the batch axis is kept out of the mean."""
    T = hooks.RULES
    x, labels = args
    if not batched[0]:
        x = ensure_batched(x, size)
    if not batched[1]:
        labels = T.broadcast_to(labels, tuple(x.shape[:-1]))
    lse = apply(PRIMS.logsumexp, (x,), {"axis": (-1,), "keepdims": False})
    picked = T.squeeze(T.take_along_axis(x, T.expand_dims(labels, axis=-1), axis=-1), axis=-1)
    loss = lse - picked
    rows = tuple(range(1, loss.ndim))
    return T.mean(loss, axis=rows) if rows else loss


def _row_labels_rule(prim, args, batched, params, size):
    """Row-wise primitives of logits and their labels (softmax_minus_onehot): both batched alike, applied once."""
    x, labels = args
    if not batched[0]:
        x = ensure_batched(x, size)
    if not batched[1]:
        labels = hooks.RULES.broadcast_to(labels, tuple(x.shape[:-1]))
    return apply(prim, (x, labels), params)


# ---- device transfer: the output belongs to the destination backend (as gradtape._api.device.to_device does) --------
def _to_device_rule(prim, args, batched, params, size):
    out = apply(prim, args, params)
    dst = params["dst"]
    out.backend = dst
    if out._node is not None:
        out._node.backend = dst
    return out


RULES = {
    "matmul": _matmul_rule, "vecdot": _vecdot_rule, "solve": _aligned, "cross": _aligned,
    "cross_entropy": _cross_entropy_rule, "softmax_minus_onehot": _row_labels_rule, "to_device": _to_device_rule,
    **{name: _stacked for name in ("inv", "det", "slogdet", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr",
                                   "pinv", "matrix_norm", "trace", "vector_norm2", "vector_normp", "softmax",
                                   "log_softmax")},
}
for _name, _rule in RULES.items():
    PRIMS[_name].batch = _rule
