"""Matrix-product primitives (matmul, vecdot) and the vector 2- and p-norms.

``nd = (x.ndim, y.ndim)`` is a parameter of the products: a rule needs both ranks but reads only the
other operand. Tangents and cotangents may carry extra leading batch axes (batched Jacobians): the
ranks tell them apart from stack axes.

>>> from gradtape._ops.matmul import matmul
>>> matmul.inputs, matmul.reads
(('x', 'y'), ((1,), (0,)))
"""
from __future__ import annotations

import math

from .._core.dtypes import in_float32
from .._core.primitive import define
from .elementwise import _c
from .reduction import _keep, _unreduce

__all__ = ["matmul", "vecdot_", "norm2", "normp"]


def _mT(xp, a):
    return xp.matrix_transpose(a) if a.ndim >= 2 else a


def _one_matrix(a):
    """The matrix behind a stack that is one matrix broadcast (stride 0 on every stack axis: an unmapped
    parameter lifted by a transform inside gt.vmap), or None. Only arrays with strides (NumPy, CuPy) tell."""
    strides = getattr(a, "strides", None)
    if strides is None or a.ndim <= 2 or any(strides[:-2]) or 0 in a.shape[:-2]:
        return None
    return a[(0,) * (a.ndim - 2)]


def _covers(stack, other):
    """Whether stack axes ``stack`` are the broadcast of themselves with ``other`` (``other`` adds none)."""
    return len(other) <= len(stack) and all(m in (1, n) for m, n in zip(other[::-1], stack[::-1]))


def _mm(xp, a, b):
    """a @ b, as one GEMM when one side is a plain matrix and the other a stack (batched rules make stacks
    of thin matrices, which NumPy would multiply one by one) or a broadcast matrix (a per-example parameter
    under vmap); a stack of outer products (inner size 1: the per-example weight gradients under vmap) as a
    broadcast product, no GEMM of depth 1, its longer side innermost (a transposed view where that is
    the rows)."""
    if a.ndim > 2 and b.ndim > 2:
        if a.shape[-1] == 1 and b.shape[-2] == 1:
            if a.shape[-2] > 4 * b.shape[-1]:
                return _mT(xp, _mT(xp, b) * _mT(xp, a))
            return a * b
        one = _one_matrix(b)
        if one is not None and _covers(a.shape[:-2], b.shape[:-2]):
            b = one
        else:
            one = _one_matrix(a)
            if one is not None and _covers(b.shape[:-2], a.shape[:-2]):
                a = one
    if b.ndim == 2 and a.ndim > 2:       # the row count spelled out: -1 is ambiguous for an empty stack
        rows = xp.reshape(a, (math.prod(a.shape[:-1]), a.shape[-1]))
        return xp.reshape(xp.matmul(rows, b), tuple(a.shape[:-1]) + (b.shape[-1],))
    if a.ndim == 2 and b.ndim > 2:
        return _mT(xp, _mm(xp, _mT(xp, b), _mT(xp, a)))
    return xp.matmul(a, b)


def _align_stack(xp, t, rank, nd):
    """A batched tangent of a matrix (stack) operand of ``rank``, its batch axes put in front of the other
    operand's stack axes."""
    batch = t.ndim - rank
    full = max(nd)
    if batch and rank < full:
        return xp.reshape(t, tuple(t.shape[:batch]) + (1,) * (full - rank) + tuple(t.shape[batch:]))
    return t


# ---- matmul ------------------------------------------------------------------------------------------------------
def _matmul_vjp_x(xp, ct, out, x, y, nd):
    if nd[1] == 1:                                    # (..., k, n) @ (n,) -> (..., k)
        return xp.expand_dims(ct, axis=-1) * y
    if nd[0] == 1 and nd[1] > 2:                      # (n,) @ (S..., n, m) -> (S..., m)
        return xp.squeeze(_mm(xp, y, xp.expand_dims(ct, axis=-1)), axis=-1)
    return _mm(xp, ct, _mT(xp, y))                    # one GEMM, also for (n,) @ (n, m)


def _matmul_vjp_y(xp, ct, out, x, y, nd):
    if nd[0] == 1:
        if nd[1] == 1:
            return xp.expand_dims(ct, axis=-1) * x
        return xp.expand_dims(x, axis=-1) * xp.expand_dims(ct, axis=-2)
    if nd[1] == 1:
        return xp.squeeze(_mm(xp, xp.expand_dims(ct, axis=-2), x), axis=-2)
    return _mm(xp, _mT(xp, x), ct)


def _matmul_jvp_x(xp, t, out, x, y, nd):
    batch = t.ndim - nd[0]
    if nd[0] == 1 and batch and nd[1] > 2:            # batched vector against a stack of matrices
        t = xp.reshape(t, tuple(t.shape[:batch]) + (1,) * (nd[1] - 2) + (1, t.shape[-1]))
        return xp.squeeze(_mm(xp, t, y), axis=-2)
    return _mm(xp, _align_stack(xp, t, nd[0], nd) if nd[0] > 1 and nd[1] > 1 else t, y)


def _matmul_jvp_y(xp, t, out, x, y, nd):
    batch = t.ndim - nd[1]
    if nd[1] == 1:
        if nd[0] <= 2:                                # one GEMM for a whole batch of tangents
            return _mm(xp, t, x if nd[0] == 1 else _mT(xp, x))
        t = xp.reshape(t, tuple(t.shape[:batch]) + (1,) * (nd[0] - 2) + (t.shape[-1], 1))
        return xp.squeeze(_mm(xp, x, t), axis=-1)
    return _mm(xp, x, _align_stack(xp, t, nd[1], nd) if nd[0] > 1 else t)


def _matmul(xp, x, y, nd):
    """The library's matmul, but a stack times one broadcast matrix (an unmapped parameter inside vmap) as one
    GEMM of the stack's rows."""
    if x.ndim > 2 and y.ndim > 2 and (_one_matrix(y) is not None or _one_matrix(x) is not None):
        return _mm(xp, x, y)
    return xp.matmul(x, y)


matmul = define("matmul", _matmul, inputs=("x", "y"),
                vjp={"x": _matmul_vjp_x, "y": _matmul_vjp_y}, jvp={"x": _matmul_jvp_x, "y": _matmul_jvp_y},
                reads={"x": ("y",), "y": ("x",)})

# ---- vecdot (axis negative) ----------------------------------------------------------------------------------------
vecdot_ = define(
    "vecdot", lambda xp, x, y, axis, nd: xp.vecdot(x, y, axis=axis), inputs=("x", "y"),
    vjp={"x": lambda xp, ct, out, x, y, axis, nd: _c(xp, xp.expand_dims(ct, axis=axis) * y),  # sum(conj(x) y)
         "y": lambda xp, ct, out, x, y, axis, nd: xp.expand_dims(ct, axis=axis) * _c(xp, x)},
    jvp={"x": lambda xp, t, out, x, y, axis, nd: xp.vecdot(_align_stack(xp, t, nd[0], nd), y, axis=axis),
         "y": lambda xp, t, out, x, y, axis, nd: xp.vecdot(x, _align_stack(xp, t, nd[1], nd), axis=axis)},
    reads={"x": ("y",), "y": ("x",)})


# ---- vector norms: ||x||_2 and ||x||_p, derivative taken as 0 where the norm is 0 (not NaN) ----------------------
def _norm2_d(xp, x, out, axis, keepdims):
    """d||x||_2/dx = x / ||x|| (conj(x) / ||x|| for complex x, the rules' convention of a real function)."""
    norm = out if keepdims else _keep(xp, out, x.shape, axis)
    return _c(xp, x) / xp.where(norm == 0, 1.0, norm)


def _normp_d(xp, x, out, axis, keepdims, p):
    """d||x||_p/dx = sign(x) (|x| / ||x||)**(p-1) for p > 1 (as torch; conj(sign(x)) for complex x)."""
    norm = out if keepdims else _keep(xp, out, x.shape, axis)
    nonzero = norm != 0
    d = _c(xp, xp.sign(x)) * (xp.abs(x) / xp.where(nonzero, norm, xp.ones_like(norm))) ** (p - 1)
    return xp.where(nonzero, d, xp.zeros_like(d))


def _real_of(xp, v, x):
    """The real part of a norm's JVP of a complex ``x`` (the norm is real); ``v`` itself for real ``x``."""
    return v if _c(xp, x) is x else xp.real(v)


# float16 norms are computed in float32 (in_float32): |x|**p of values the norm can hold overflows float16
norm2 = define(
    "vector_norm2", in_float32(lambda xp, x, axis, keepdims: xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims,
                                                                                    ord=2)),
    vjp={"x": lambda xp, ct, out, x, axis, keepdims:
         _unreduce(xp, ct, x.shape, axis, keepdims) * _norm2_d(xp, x, out, axis, keepdims)},
    jvp={"x": lambda xp, t, out, x, axis, keepdims:
         _real_of(xp, xp.sum(t * _norm2_d(xp, x, out, axis, keepdims), axis=axis, keepdims=keepdims), x)},
    reads={"x": ("x", "out")})

normp = define(
    "vector_normp", in_float32(lambda xp, x, axis, keepdims, p: xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims,
                                                                                       ord=p)),
    vjp={"x": lambda xp, ct, out, x, axis, keepdims, p:
         _unreduce(xp, ct, x.shape, axis, keepdims) * _normp_d(xp, x, out, axis, keepdims, p)},
    jvp={"x": lambda xp, t, out, x, axis, keepdims, p:
         _real_of(xp, xp.sum(t * _normp_d(xp, x, out, axis, keepdims, p), axis=axis, keepdims=keepdims), x)},
    reads={"x": ("x", "out")})
