"""The array API ``linalg`` extension (``gt.linalg``): argument checks, result types, composite functions.

The primitives (forward, VJP, JVP) are in :mod:`gradtape._ops.linalg`; every function here checks its
arguments, applies one of them (``matrix_power``, ``matrix_rank`` and ``outer`` are composed instead) and
returns the array API's named tuples. :data:`namespace` is the whole ``gt.linalg`` namespace, which rules
see as ``xp.linalg`` when their derivatives are recorded.

Every function takes complex64/complex128 inputs too, differentiable in PyTorch's convention (README "Complex
numbers"): for a real loss L, ``gt.grad`` gives dL/dRe A + i dL/dIm A, torch's ``.grad``. Hermitian functions
(``cholesky``, ``eigh``, ``eigvalsh``) read herm(A) = (A + Aᴴ)/2; the phases of eigenvectors and singular vectors
are arbitrary, so only functions invariant under them have derivatives (as torch documents).

>>> import gradtape as gt
>>> gt.linalg.det is gt._api.linalg.det
True
"""
from __future__ import annotations

import math
import operator
import types
from collections import namedtuple

from .._axes import AxisError, axis_index
from .._core.dispatch import apply, apply1, apply_multi, wrap
from .._core.dtypes import DTYPES, backend_dtype
from .._ops.linalg import (inv_p, det_p, slogdet_p, solve_p, cholesky_p, eigh_p, eigvalsh_p, svd_p, svdvals_p,
                           qr_p, pinv_p, matrix_norm_p, trace_p, diagonal_p, cross_p)
from .._state import state
from .creation import as_tensor, astype, eye, zeros_like
from .dtypes import result_type
from .manipulation import expand_dims, matrix_transpose, squeeze, where
from .products import matmul, tensordot, vecdot, vector_norm
from .public import public

__all__ = ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv",
           "matrix_norm", "matrix_power", "matrix_rank", "cross", "trace", "outer", "diagonal", "vector_norm",
           "EighResult", "SVDResult", "QRResult", "SlogdetResult", "namespace"]


# the functions that need LAPACK (cuSOLVER), which has no float16: they refuse it, as NumPy, PyTorch and JAX do
LAPACK = frozenset(("inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv",
                    "matrix_rank"))


def _need_matrix(name, x, square=False):
    if x.ndim < 2 or (square and x.shape[-1] != x.shape[-2]):
        what = "a stack of square matrices (..., n, n)" if square else "a stack of matrices (..., m, n)"
        raise ValueError(f"gradtape.linalg.{name}: expected {what}, got shape {tuple(x.shape)}")
    if x.dtype is FLOAT16 and name in LAPACK:
        raise float16_error(name, x)


def _is_complex(x):
    return getattr(getattr(x, "dtype", None), "kind", None) == "complex floating"


FLOAT16 = DTYPES["float16"]


def float16_error(name, x, args=""):
    return TypeError(f"gradtape.linalg.{name}: float16 is not supported (shape {tuple(x.shape)}{args}): LAPACK and "
                     f"cuSOLVER have no float16 routines (NumPy, PyTorch and JAX refuse it too); compute in float32 "
                     f"and round back: gt.astype(gt.linalg.{name}(gt.astype(x, gt.float32){args}), gt.float16)")


# ---- result types (the array API's field names) ----------------------------------------------------

def _result(name, fields, example):
    cls = namedtuple(name, fields)
    cls.__module__ = __name__
    cls.__doc__ = f"``{name}({', '.join(fields)})``: a named tuple of tensors.\n\n{example}"
    return cls


EighResult = _result("EighResult", ["eigenvalues", "eigenvectors"],
                     ">>> import gradtape as gt\n>>> gt.linalg.eigh(gt.eye(2)).eigenvalues\nTensor([1., 1.])\n")
SVDResult = _result("SVDResult", ["U", "S", "Vh"],
                    ">>> import gradtape as gt\n>>> gt.linalg.svd(gt.eye(2)).S\nTensor([1., 1.])\n")
QRResult = _result("QRResult", ["Q", "R"],
                   ">>> import gradtape as gt\n>>> gt.linalg.qr(gt.eye(2)).R.shape\n(2, 2)\n")
SlogdetResult = _result("SlogdetResult", ["sign", "logabsdet"],
                        ">>> import gradtape as gt\n>>> gt.linalg.slogdet(gt.eye(2)).logabsdet\nTensor(0.)\n")


# ---- public functions ---------------------------------------------------------------------------

@public
def inv(x, /):
    """The inverse of a (stack of) square matrices; d(A⁻¹) = -A⁻¹ dA A⁻¹.

    >>> import gradtape as gt
    >>> gt.linalg.inv(gt.asarray([[2.0, 0.0], [0.0, 4.0]]))
    Tensor([[0.5 , 0.  ],
            [0.  , 0.25]])
    """
    x = as_tensor(x)
    _need_matrix("inv", x, square=True)
    return apply1(inv_p, x)


@public
def det(x, /):
    """The determinant of a (stack of) square matrices; d det A = det A · tr(A⁻¹ dA).

    The derivative needs A invertible (it uses A⁻¹); at an exactly singular
    matrix the backend's inverse fails.

    >>> import gradtape as gt
    >>> x = gt.asarray([[2.0, 1.0], [1.0, 3.0]])
    >>> gt.linalg.det(x)
    Tensor(5.)
    >>> gt.grad(gt.linalg.det)(x)
    Tensor([[ 3., -1.],
            [-1.,  2.]])
    """
    x = as_tensor(x)
    _need_matrix("det", x, square=True)
    return apply1(det_p, x)


@public
def slogdet(x, /):
    """``(sign, logabsdet)`` of the determinant of a (stack of) square matrices.

    ``logabsdet`` is differentiable (d log|det A| = Re tr(A⁻¹ dA)); the ``sign``
    of a real A is piecewise constant and gets no gradient, that of a complex A
    (det/|det|, on the unit circle) is differentiable: d sign = sign · i Im tr(A⁻¹ dA).

    >>> import gradtape as gt
    >>> s = gt.linalg.slogdet(gt.asarray([[-2.0, 0.0], [0.0, 1.0]]))
    >>> s.sign, s.logabsdet
    (Tensor(-1.), Tensor(0.69314718))
    """
    x = as_tensor(x)
    _need_matrix("slogdet", x, square=True)
    return SlogdetResult(*apply_multi(slogdet_p, (x,)))


@public
def solve(x1, x2, /):
    """The solution X of ``x1 @ X = x2`` (x2 a stack of matrices, or one vector when 1-D).

    dX = A⁻¹ (dB - dA X); the reverse pass solves with Aᵀ.

    >>> import gradtape as gt
    >>> gt.linalg.solve(gt.asarray([[2.0, 0.0], [0.0, 4.0]]), gt.asarray([1.0, 1.0]))
    Tensor([0.5 , 0.25])
    """
    a, b = as_tensor(x1), as_tensor(x2)
    if FLOAT16 in (a.dtype, b.dtype) and a.dtype != b.dtype:     # LAPACK takes no float16 operand: promote first
        dt = result_type(a, b)
        a, b = (t if t.dtype == dt else astype(t, dt) for t in (a, b))
    _need_matrix("solve", a, square=True)
    if b.ndim == 1:
        return squeeze(apply(solve_p, (a, expand_dims(b, axis=-1))), axis=-1)
    return apply(solve_p, (a, b))


@public
def cholesky(x, /, *, upper=False):
    """The Cholesky factor L (lower, ``A = L Lᴴ``; U = Lᴴ if ``upper``) of Hermitian positive-definite matrices.

    (Real matrices: symmetric, ``A = L Lᵀ``.)

    The input is taken to be Hermitian (the backend reads one triangle): the
    gradient returned is the Hermitian one, that of L(herm(A)) with herm(A) =
    (A + Aᴴ)/2 (sym(A) = (A + Aᵀ)/2 for real A, as in PyTorch and JAX), and
    forward mode uses the Hermitian part of the tangent. (For complex A,
    torch's own gradient is not Hermitian: it is this one plus an
    anti-Hermitian part, the same derivative along every Hermitian direction.)

    >>> import gradtape as gt
    >>> gt.linalg.cholesky(gt.asarray([[4.0, 2.0], [2.0, 2.0]]))
    Tensor([[2., 0.],
            [1., 1.]])
    """
    x = as_tensor(x)
    _need_matrix("cholesky", x, square=True)
    return apply1(cholesky_p, x, {"upper": bool(upper)})


@public
def eigh(x, /):
    """``(eigenvalues, eigenvectors)`` of Hermitian (real: symmetric) matrices, eigenvalues ascending (real).

    The input is taken to be Hermitian: gradients are Hermitian (those of
    eigh(herm(A)), herm(A) = (A + Aᴴ)/2), and forward mode uses the Hermitian
    part of the tangent. Each eigenvector's sign (complex: phase) is arbitrary,
    so only invariant functions of the eigenvectors (V diag(f(w)) Vᴴ, V ∘ conj(V)...)
    have well-defined derivatives; a phase-dependent loss gets the gradient of
    one gauge (forward mode takes diag(Vᴴ dV) = 0), where torch raises.

    Repeated eigenvalues: gradients through the eigenvalues alone are always
    defined (a cotangent of the eigenvectors that is None or zero adds
    nothing). The eigenvector part of the rule has 1/(λj - λi) for i ≠ j, so
    at exactly equal eigenvalues it gives inf/NaN (as PyTorch and JAX do);
    nearly equal ones give large, ill-conditioned values.

    >>> import gradtape as gt
    >>> w, V = gt.linalg.eigh(gt.asarray([[2.0, 0.0], [0.0, 1.0]]))
    >>> w
    Tensor([1., 2.])
    >>> gt.grad(lambda a: gt.linalg.eigh(a).eigenvalues[1])(gt.asarray([[2.0, 0.0], [0.0, 1.0]]))
    Tensor([[1., 0.],
            [0., 0.]])
    """
    x = as_tensor(x)
    _need_matrix("eigh", x, square=True)
    return EighResult(*apply_multi(eigh_p, (x,)))


@public
def eigvalsh(x, /):
    """The eigenvalues of Hermitian (real: symmetric) matrices, ascending; d w_i = Re(v_iᴴ dA v_i).

    Symmetric input convention as :func:`eigh`. Defined at repeated
    eigenvalues to first order (any orthonormal eigenbasis gives the same
    gradient for symmetric functions of the eigenvalues); second-order
    derivatives go through :func:`eigh`'s eigenvectors and need distinct ones.

    >>> import gradtape as gt
    >>> gt.linalg.eigvalsh(gt.asarray([[2.0, 1.0], [1.0, 2.0]]))
    Tensor([1., 3.])
    """
    x = as_tensor(x)
    _need_matrix("eigvalsh", x, square=True)
    return apply1(eigvalsh_p, x)


@public
def svd(x, /, *, full_matrices=True):
    """``(U, S, Vh)`` with ``x = U @ diag(S) @ Vh``, S descending (array API default ``full_matrices=True``).

    Singular vectors are defined up to a joint sign (u_i, v_i) -> (-u_i, -v_i)
    (complex: a joint phase e^{iθ}), so only functions invariant under it
    (U diag(f(S)) Vh, U ∘ conj(U)...) have well-defined derivatives; forward mode
    splits the phase evenly between u_i and v_i. Gradients through S alone are
    always defined.
    The rules for U and Vh have 1/(s_j² - s_i²) for i ≠ j (inf/NaN at exactly
    repeated singular values, as in PyTorch and JAX) and, for non-square
    matrices, 1/s_i (inf at a zero singular value). With ``full_matrices=True``
    and a non-square input, the columns of U (rows of Vh) beyond min(m, n) are
    an arbitrary basis of the complement: their cotangent is ignored and their
    tangent is zero.

    >>> import gradtape as gt
    >>> U, S, Vh = gt.linalg.svd(gt.asarray([[3.0, 0.0], [0.0, -2.0]]))
    >>> S
    Tensor([3., 2.])
    >>> gt.grad(lambda a: gt.linalg.svd(a).S[0])(gt.asarray([[3.0, 0.0], [0.0, -2.0]]))
    Tensor([[1., 0.],
            [0., 0.]])
    """
    x = as_tensor(x)
    _need_matrix("svd", x)
    return SVDResult(*apply_multi(svd_p, (x,), {"full_matrices": bool(full_matrices), "shape": tuple(x.shape[-2:])}))


@public
def svdvals(x, /):
    """The singular values of a (stack of) matrices, descending; d s_i = Re(u_iᴴ dA v_i).

    Defined to first order at repeated singular values; second-order
    derivatives go through :func:`svd`'s vectors and need distinct, nonzero ones.

    >>> import gradtape as gt
    >>> gt.linalg.svdvals(gt.asarray([[3.0, 0.0], [0.0, -2.0]]))
    Tensor([3., 2.])
    """
    x = as_tensor(x)
    _need_matrix("svdvals", x)
    return apply1(svdvals_p, x)


@public
def qr(x, /, *, mode="reduced"):
    """``(Q, R)`` with ``x = Q @ R``, Q orthonormal columns, R upper triangular (mode "reduced" or "complete").

    Differentiable where the first min(m, n) columns of x are linearly
    independent (R's leading block invertible), for any m, n. Q and R are
    unique given the backend's sign convention (LAPACK's: R's diagonal real,
    also for complex x), so no gauge-invariant wrapper is needed. With
    ``mode="complete"`` and m > n, Q's last m - n columns are an arbitrary
    basis of the complement: their cotangent is ignored and their tangent is
    zero.

    >>> import gradtape as gt
    >>> Q, R = gt.linalg.qr(gt.asarray([[3.0, 1.0], [4.0, 2.0]]))
    >>> gt.abs(R[0, 0])
    Tensor(5.)
    """
    if mode not in ("reduced", "complete"):
        raise ValueError(f"gradtape.linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    x = as_tensor(x)
    _need_matrix("qr", x)
    return QRResult(*apply_multi(qr_p, (x,), {"mode": mode, "shape": tuple(x.shape[-2:])}))


@public
def pinv(x, /, *, rtol=None):
    """The Moore-Penrose pseudo-inverse of a (stack of) matrices.

    Its derivative (Golub & Pereyra) is that of the pseudo-inverse at constant
    rank: exact for full-rank inputs, and for rank-deficient ones the
    derivative along perturbations that keep the rank (singular values cut by
    ``rtol`` stay cut).

    >>> import gradtape as gt
    >>> gt.linalg.pinv(gt.asarray([[2.0, 0.0]]))
    Tensor([[0.5],
            [0. ]])
    """
    x = as_tensor(x)
    _need_matrix("pinv", x)
    return apply1(pinv_p, x, {"rtol": rtol})


_ORDS = ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)


@public
def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """Matrix norms over the last two axes: ord "fro", "nuc", 2, -2, 1, -1, inf, -inf.

    Derivatives: fro A/‖A‖ (0 at A = 0, like ``vector_norm``); nuc U Vh
    (a subgradient when A is rank-deficient); 2 / -2 u vᴴ of the largest /
    smallest singular value (needs it simple); ±1 / ±inf sign(A) (complex:
    A/|A|) on the column / row with the largest or smallest absolute sum, ties
    sharing the gradient evenly (sign(0) = 0). Complex A: these are the
    gradients in PyTorch's convention; the result is real.

    >>> import gradtape as gt
    >>> gt.linalg.matrix_norm(gt.asarray([[3.0, 0.0], [0.0, -4.0]]))
    Tensor(5.)
    >>> gt.linalg.matrix_norm(gt.asarray([[3.0, 0.0], [0.0, -4.0]]), ord=1)
    Tensor(4.)
    """
    x = as_tensor(x)
    _need_matrix("matrix_norm", x)
    if ord not in _ORDS or isinstance(ord, bool):
        raise ValueError(f"gradtape.linalg.matrix_norm: ord must be one of 'fro', 'nuc', 2, -2, 1, -1, inf, -inf;"
                         f" got {ord!r}")
    if not isinstance(ord, str):
        ord = int(ord) if math.isfinite(ord) else ord
    if x.dtype is FLOAT16 and ord in ("nuc", 2, -2):     # singular values
        raise float16_error("matrix_norm", x, f", ord={ord!r}")
    return apply1(matrix_norm_p, x, {"keepdims": bool(keepdims), "ord": ord})


@public
def matrix_power(x, n, /):
    """x raised to the integer power n (n < 0: the inverse's power; n = 0: the identity).

    Composed of :func:`gradtape.matmul` and :func:`inv` by the binary method
    NumPy uses (so NumPy and array-api-strict give the same bits).

    >>> import gradtape as gt
    >>> gt.linalg.matrix_power(gt.asarray([[1.0, 1.0], [0.0, 1.0]]), 3)
    Tensor([[1., 3.],
            [0., 1.]])
    """
    x = as_tensor(x)
    _need_matrix("matrix_power", x, square=True)
    n = operator.index(n)
    if n == 0:      # the identity, attached to x with a zero derivative (as torch's), whatever x holds (inf, NaN)
        return where(zeros_like(x, dtype=DTYPES["bool"]), x, eye(x.shape[-1], dtype=x.dtype, device=x.device))
    a = inv(x) if n < 0 else x
    n = abs(n)
    if n == 1:
        return a * 1
    if n == 2:
        return matmul(a, a)
    if n == 3:
        return matmul(matmul(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result


@public
def matrix_rank(x, /, *, rtol=None):
    """The rank of a (stack of) matrices (not differentiable: the result does not require grad).

    >>> import gradtape as gt
    >>> gt.linalg.matrix_rank(gt.asarray([[1.0, 2.0], [2.0, 4.0]]))
    Tensor(1)
    """
    x = as_tensor(x)
    _need_matrix("matrix_rank", x)
    if hasattr(x, "__gradtape_call__"):         # a gt.vmap tracer
        return x.__gradtape_call__(matrix_rank, "linalg.matrix_rank", (x,), {"rtol": rtol})
    out = wrap(x.backend.xp.linalg.matrix_rank(x.data, rtol=rtol), x.backend)
    if state.tracer is not None:
        state.tracer("linalg.matrix_rank", (x,), {"rtol": rtol}, out)
    return out


@public
def cross(x1, x2, /, *, axis=-1):
    """The cross product of 3-vectors along ``axis`` (broadcasting the others); bilinear.

    >>> import gradtape as gt
    >>> gt.linalg.cross(gt.asarray([1.0, 0.0, 0.0]), gt.asarray([0.0, 1.0, 0.0]))
    Tensor([0., 0., 1.])
    """
    a, b = as_tensor(x1), as_tensor(x2)
    nd = max(a.ndim, b.ndim)
    given, axis = axis, axis_index(axis, nd, "linalg.cross", a.shape if a.ndim == nd else b.shape) - nd
    if -axis > min(a.ndim, b.ndim):
        raise AxisError(f"gradtape.linalg.cross: axis {given} is out of range for shapes {tuple(a.shape)} and "
                        f"{tuple(b.shape)} (it must be an axis of both)")
    if a.shape[axis] != 3 or b.shape[axis] != 3:
        raise ValueError(f"gradtape.linalg.cross: axis {axis} must have size 3 in both inputs, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return apply(cross_p, (a, b), {"axis": axis})


@public
def trace(x, /, *, offset=0, dtype=None):
    """The sum along the ``offset`` diagonal of a (stack of) matrices; linear.

    >>> import gradtape as gt
    >>> gt.linalg.trace(gt.asarray([[1.0, 2.0], [3.0, 4.0]]))
    Tensor(5.)
    """
    x = as_tensor(x)
    _need_matrix("trace", x)
    return apply1(trace_p, x, {"offset": int(offset), "dtype": backend_dtype(x.backend, dtype),
                               "shape": tuple(x.shape[-2:])})


@public
def outer(x1, x2, /):
    """The outer product of two vectors, ``x1[:, None] * x2[None, :]``.

    >>> import gradtape as gt
    >>> gt.linalg.outer(gt.asarray([1.0, 2.0]), gt.asarray([3.0, 4.0]))
    Tensor([[3., 4.],
            [6., 8.]])
    """
    a, b = as_tensor(x1), as_tensor(x2)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"gradtape.linalg.outer: expected two 1-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return expand_dims(a, axis=-1) * expand_dims(b, axis=0)


@public
def diagonal(x, /, *, offset=0):
    """The ``offset`` diagonal of a (stack of) matrices (offset > 0 above the main one); linear.

    >>> import gradtape as gt
    >>> gt.linalg.diagonal(gt.asarray([[1.0, 2.0], [3.0, 4.0]]), offset=1)
    Tensor([2.])
    """
    x = as_tensor(x)
    _need_matrix("diagonal", x)
    return apply1(diagonal_p, x, {"offset": int(offset), "shape": tuple(x.shape[-2:])})


# the whole gt.linalg namespace, as rules see it (``xp.linalg``) when their derivatives are recorded: the
# functions without the ``@public`` check for symbols (rules call them with tensors)
namespace = types.SimpleNamespace(**{f.__name__: getattr(f, "__wrapped__", f) for f in (
    inv, det, slogdet, solve, cholesky, eigh, eigvalsh, svd, svdvals, qr, pinv, matrix_norm, matrix_power, matrix_rank,
    cross, trace, outer, diagonal, matmul, tensordot, vecdot, vector_norm, matrix_transpose)})
