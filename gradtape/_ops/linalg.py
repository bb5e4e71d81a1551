"""The array API ``linalg`` extension, differentiable: primitives (forward, VJP, JVP side by side) and functions.

Every rule acts on stacks of matrices (..., m, n), with axes counted from the
end, so a cotangent or tangent with extra leading batch axes (batched
Jacobians) broadcasts through it. Rules call only array-API functions
(``xp.matmul``, ``xp.linalg.solve``...); when derivatives are recorded ``xp``
is gradtape itself and ``xp.linalg`` this module's functions, so every order
of derivative comes from the same rules.

Undefined derivatives (documented on each function): ``eigh``'s eigenvectors
at repeated eigenvalues and ``svd``'s singular vectors at repeated singular
values give inf/NaN (the rule's 1/(λj - λi) is not masked off the diagonal);
everything through the eigenvalues or singular values alone stays finite.
"""
from __future__ import annotations

import math
from collections import namedtuple

from .._core.dispatch import SELECT as _SELECT, apply, apply1, apply_multi, wrap
from .._state import state
from .._core.primitive import Multi
from .._core.tensor import Tensor
from .._axes import AxisError, axis_index
from .._ops.elementwise import prim

__all__ = ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv",
           "matrix_norm", "matrix_power", "matrix_rank", "cross", "trace", "outer", "diagonal"]


def _prim(name, fwd, vjp, jvp, save, multi=False, bcast=False):
    return prim(name, fwd, vjp, jvp, save, multi=multi, bcast=bcast)


# ---- helpers written against xp (raw backend namespace, or gradtape on tensors) ------------------

def _mT(xp, a):
    return xp.matrix_transpose(a)


def _sym(xp, a):
    """The symmetric part (a + aᵀ)/2."""
    return 0.5 * (a + xp.matrix_transpose(a))


def _mat(xp, c):
    """A per-matrix scalar (...) as (..., 1, 1), to broadcast against matrices."""
    return xp.expand_dims(xp.expand_dims(c, axis=-1), axis=-1)


def _eye(xp, like, n, m=None, k=0):
    return xp.eye(n, m, k=k, dtype=like.dtype, device=like.device)


def _diag(xp, v):
    """diag(v) for a stack of vectors (..., k) -> (..., k, k)."""
    return xp.expand_dims(v, axis=-2) * _eye(xp, v, v.shape[-1])


def _rdiv(xp, b, a):
    """b @ inv(a), by a solve: (a⁻ᵀ bᵀ)ᵀ."""
    return _mT(xp, xp.linalg.solve(_mT(xp, a), _mT(xp, b)))


def _gap(xp, w):
    """F[..., i, j] = 1/(w_j - w_i) off the diagonal, 0 on it (inf at exact ties i != j)."""
    eye = _eye(xp, w, w.shape[-1])
    return (1 - eye) / (xp.expand_dims(w, axis=-2) - xp.expand_dims(w, axis=-1) + eye)


def _gap2(xp, s):
    """F[..., i, j] = 1/(s_j² - s_i²) off the diagonal, 0 on it (inf at exact ties i != j)."""
    eye = _eye(xp, s, s.shape[-1])
    sj, si = xp.expand_dims(s, axis=-2), xp.expand_dims(s, axis=-1)
    return (1 - eye) / ((sj - si) * (sj + si) + eye)


def _add(a, b):
    """a + b where None stands for zero."""
    return b if a is None else a if b is None else a + b


def _zpad(xp, a, extra, axis):
    """a with ``extra`` zero columns (axis -1) or rows (axis -2) appended."""
    if not extra:
        return a
    shape = tuple(a.shape[:-2]) + ((a.shape[-2], extra) if axis == -1 else (extra, a.shape[-1]))
    return xp.concat([a, xp.zeros(shape, dtype=a.dtype, device=a.device)], axis=axis)


def _parts(out):
    """The outputs of a multi-output primitive as a tuple: forward mode hands rules the hidden
    tuple-valued tensor, the reverse pass a tuple already."""
    if isinstance(out, Tensor):
        n = len(out.data)
        return tuple(apply1(_SELECT, out, {"k": k, "n": n}) for k in range(n))
    return out


def _t(x):
    if isinstance(x, Tensor):
        return x
    from .._api.namespace import asarray
    return asarray(x)


def _need_matrix(name, x, square=False):
    if x.ndim < 2 or (square and x.shape[-1] != x.shape[-2]):
        what = "a stack of square matrices (..., n, n)" if square else "a stack of matrices (..., m, n)"
        raise ValueError(f"gradtape.linalg.{name}: expected {what}, got shape {tuple(x.shape)}")
    if (x._requires_grad or x.tangents is not None) and "complex" in str(x.dtype):
        raise TypeError(f"gradtape.linalg.{name}: complex tensors are not differentiable in this version "
                        f"(got dtype {x.dtype}); detach the input or differentiate real and imaginary parts")


# ---- inverse, determinants, solve ------------------------------------------------------------------
# d(A⁻¹) = -A⁻¹ dA A⁻¹
inv_p = _prim("inv", lambda xp, x: xp.linalg.inv(x),
              [lambda xp, ct, out, x: -(_mT(xp, out) @ ct @ _mT(xp, out))],
              [lambda xp, t, out, x: -(out @ t @ out)], [("out",)])
# d det A = det A · tr(A⁻¹ dA)
det_p = _prim("det", lambda xp, x: xp.linalg.det(x),
              [lambda xp, ct, out, x: _mat(xp, ct * out) * _mT(xp, xp.linalg.inv(x))],
              [lambda xp, t, out, x: out * xp.linalg.trace(xp.linalg.solve(x, t))], [(0, "out")])
# (sign, log|det A|): the sign is piecewise constant (no derivative), d log|det A| = tr(A⁻¹ dA)
slogdet_p = _prim("slogdet", lambda xp, x: tuple(xp.linalg.slogdet(x)),
                  [lambda xp, ct, out, x: None if ct[1] is None else _mat(xp, ct[1]) * _mT(xp, xp.linalg.inv(x))],
                  [lambda xp, t, out, x: Multi((None, xp.linalg.trace(xp.linalg.solve(x, t))))],
                  [(0,)], multi=True)
# X = A⁻¹ B (B a stack of matrices: vectors are made (..., n, 1) first); dX = A⁻¹ (dB - dA X)
solve_p = _prim("solve", lambda xp, a, b: xp.linalg.solve(a, b),
                [lambda xp, ct, out, a, b: -(xp.linalg.solve(_mT(xp, a), ct) @ _mT(xp, out)),
                 lambda xp, ct, out, a, b: xp.linalg.solve(_mT(xp, a), ct)],
                [lambda xp, t, out, a, b: -xp.linalg.solve(a, t @ out),
                 lambda xp, t, out, a, b: xp.linalg.solve(a, t)],
                [(0, "out"), (0,)], bcast=True)


# ---- Cholesky: A = L Lᵀ; dL = L Φ(L⁻¹ dA L⁻ᵀ), Φ = lower triangle with the diagonal halved ----------

def _phi(xp, x):
    return xp.tril(x) - 0.5 * x * _eye(xp, x, x.shape[-1])


def _chol_jvp(xp, t, out, x, upper):
    L = _mT(xp, out) if upper else out
    y = xp.linalg.solve(L, _sym(xp, t))                                # L⁻¹ sym(dA)
    dL = L @ _phi(xp, _mT(xp, xp.linalg.solve(L, _mT(xp, y))))          # L Φ(L⁻¹ sym(dA) L⁻ᵀ)
    return _mT(xp, dL) if upper else dL


def _chol_vjp(xp, ct, out, x, upper):
    L = _mT(xp, out) if upper else out
    g = _mT(xp, ct) if upper else ct
    y = xp.linalg.solve(_mT(xp, L), _phi(xp, _mT(xp, L) @ g))           # L⁻ᵀ Φ(Lᵀ L̄)
    return _sym(xp, _mT(xp, xp.linalg.solve(_mT(xp, L), _mT(xp, y))))   # sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)


cholesky_p = _prim("cholesky", lambda xp, x, upper: xp.linalg.cholesky(x, upper=upper),
                   [_chol_vjp], [_chol_jvp], [("out",)])


# ---- symmetric eigendecomposition: A = V diag(w) Vᵀ ----------------------------------------------
# JVP: X = Vᵀ sym(dA) V; dw = diag(X), dV = V (F ∘ X) with F_ij = 1/(w_j - w_i); the VJP is its adjoint.

def _eigh_vjp(xp, ct, out, x):
    w, V = out
    gw, gV = ct
    inner = None if gw is None else _diag(xp, gw)
    if gV is not None:
        inner = _add(inner, _gap(xp, w) * (_mT(xp, V) @ gV))
    return _sym(xp, V @ inner @ _mT(xp, V))


def _eigh_jvp(xp, t, out, x):
    w, V = _parts(out)
    X = _mT(xp, V) @ _sym(xp, t) @ V
    return Multi((xp.linalg.diagonal(X), V @ (_gap(xp, w) * X)))


eigh_p = _prim("eigh", lambda xp, x: tuple(xp.linalg.eigh(x)), [_eigh_vjp], [_eigh_jvp], [("out",)], multi=True)
# eigenvalues only: the eigenvectors are recomputed in the rules (they need no gap, so ties are fine)
def _eigvalsh_vjp(xp, ct, out, x):
    V = xp.linalg.eigh(x)[1]
    return V * xp.expand_dims(ct, axis=-2) @ _mT(xp, V)                   # V diag(w̄) Vᵀ


def _eigvalsh_jvp(xp, t, out, x):
    V = xp.linalg.eigh(x)[1]
    return xp.sum(V * (_sym(xp, t) @ V), axis=-2)                       # diag(Vᵀ sym(dA) V)


eigvalsh_p = _prim("eigvalsh", lambda xp, x: xp.linalg.eigvalsh(x), [_eigvalsh_vjp], [_eigvalsh_jvp], [(0,)])


# ---- singular value decomposition: A = U diag(s) Vh, k = min(m, n) --------------------------------
# JVP: P = Uᵀ dA V; ds = diag(P); dU = U (F ∘ (P S + S Pᵀ)) + (I - U Uᵀ) dA V S⁻¹,
# dV = V (F ∘ (S P + Pᵀ S)) + (I - V Vᵀ) dAᵀ U S⁻¹ with F_ij = 1/(s_j² - s_i²). With full_matrices the
# columns of U (rows of Vh) beyond k are an arbitrary basis: their cotangent is ignored, their tangent 0.

def _svd_k(out, ct, full, shape):
    k = min(shape)
    U, s, Vh = out
    if full:
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        if ct is not None:
            ct = (None if ct[0] is None else ct[0][..., :, :k], ct[1], None if ct[2] is None else ct[2][..., :k, :])
    return U, s, Vh, ct


def _svd_vjp(xp, ct, out, x, full_matrices, shape):
    U, s, Vh, (gU, gs, gVh) = _svd_k(out, ct, full_matrices, shape)
    m, n = shape
    k = min(m, n)
    inner = None if gs is None else _diag(xp, gs)
    F = None if gU is None and gVh is None else _gap2(xp, s)
    extra = None
    if gU is not None:
        J = F * (_mT(xp, U) @ gU)
        inner = _add(inner, (J + _mT(xp, J)) * xp.expand_dims(s, axis=-2))           # (F ∘ (UᵀŪ - ŪᵀU)) S
        if m > k:
            extra = ((gU - U @ (_mT(xp, U) @ gU)) / xp.expand_dims(s, axis=-2)) @ Vh  # (I - UUᵀ) Ū S⁻¹ Vᵀ
    if gVh is not None:
        K = F * (Vh @ _mT(xp, gVh))
        inner = _add(inner, xp.expand_dims(s, axis=-1) * (K + _mT(xp, K)))           # S (F ∘ (VᵀV̄ - V̄ᵀV))
        if n > k:
            extra = _add(extra, U @ ((gVh - (gVh @ _mT(xp, Vh)) @ Vh) / xp.expand_dims(s, axis=-1)))
    g = None if inner is None else U @ inner @ Vh
    return _add(g, extra)


def _svd_jvp(xp, t, out, x, full_matrices, shape):
    U, s, Vh, _ = _svd_k(_parts(out), None, full_matrices, shape)
    m, n = shape
    k = min(m, n)
    V = _mT(xp, Vh)
    P = _mT(xp, U) @ t @ V
    F = _gap2(xp, s)
    srow, scol = xp.expand_dims(s, axis=-2), xp.expand_dims(s, axis=-1)
    dU = U @ (F * (P * srow + scol * _mT(xp, P)))
    dV = V @ (F * (scol * P + _mT(xp, P) * srow))
    if m > k:
        tV = t @ V
        dU = dU + (tV - U @ (_mT(xp, U) @ tV)) / srow
    if n > k:
        tU = _mT(xp, t) @ U
        dV = dV + (tU - V @ (Vh @ tU)) / srow
    dVh = _mT(xp, dV)
    if full_matrices:
        dU, dVh = _zpad(xp, dU, m - k, -1), _zpad(xp, dVh, n - k, -2)
    return Multi((dU, xp.linalg.diagonal(P), dVh))


svd_p = _prim("svd", lambda xp, x, full_matrices, shape: tuple(xp.linalg.svd(x, full_matrices=full_matrices)),
              [_svd_vjp], [_svd_jvp], [("out",)], multi=True)


def _usv(xp, x):
    U, _, Vh = xp.linalg.svd(x, full_matrices=False)
    return U, Vh


# singular values only: ds = diag(Uᵀ dA V), Ā = U diag(s̄) Vh (the vectors recomputed in the rules)
svdvals_p = _prim("svdvals", lambda xp, x: xp.linalg.svdvals(x),
                  [lambda xp, ct, out, x: (lambda U, Vh: U * xp.expand_dims(ct, axis=-2) @ Vh)(*_usv(xp, x))],
                  [lambda xp, t, out, x: (lambda U, Vh: xp.sum(U * (t @ _mT(xp, Vh)), axis=-2))(*_usv(xp, x))],
                  [(0,)])


# ---- QR: A = Q R, k = min(m, n), A = [X Y] with X the first k columns, R = [R1 R2] -------------------
# JVP: C = Qᵀ dX R1⁻¹, Ω = tril(C, -1) - tril(C, -1)ᵀ; dQ = Q (Ω - C) + dX R1⁻¹, dR1 = (C - Ω) R1,
# dR2 = Qᵀ dY - Ω R2. With mode="complete" and m > n, Q's last m - n columns are an arbitrary basis:
# their cotangent is ignored and their tangent is 0 (R's last rows are identically 0).

def _qr_k(out, ct, mode, shape):
    Q, R = out
    m, n = shape
    if mode == "complete" and m > n:
        Q, R = Q[..., :, :n], R[..., :n, :]
        if ct is not None:
            ct = (None if ct[0] is None else ct[0][..., :, :n], None if ct[1] is None else ct[1][..., :n, :])
    return Q, R, ct


def _qr_vjp(xp, ct, out, x, mode, shape):
    Q, R, (gQ, gR) = _qr_k(out, ct, mode, shape)
    m, n = shape
    k = min(m, n)
    R1 = R[..., :, :k]
    M1 = None if gQ is None else -(_mT(xp, Q) @ gQ)
    if gR is not None:
        M1 = _add(M1, gR[..., :, :k] @ _mT(xp, R1))
    M = M1 if gR is None or n == k else M1 + gR[..., :, k:] @ _mT(xp, R[..., :, k:])
    G = M1 - xp.tril(M - _mT(xp, M), k=-1)
    gX = _mT(xp, xp.linalg.solve(R1, _mT(xp, _add(gQ, Q @ G))))          # (Q̄ + Q G) R1⁻ᵀ
    if n == k:
        return gX
    if gR is None:
        return _zpad(xp, gX, n - k, -1)
    return xp.concat([gX, Q @ gR[..., :, k:]], axis=-1)


def _qr_jvp(xp, t, out, x, mode, shape):
    Q, R, _ = _qr_k(_parts(out), None, mode, shape)
    m, n = shape
    k = min(m, n)
    R1 = R[..., :, :k]
    dXR = _rdiv(xp, t[..., :, :k], R1)                                   # dX R1⁻¹
    C = _mT(xp, Q) @ dXR
    low = xp.tril(C, k=-1)
    W = low - _mT(xp, low)
    dQ = Q @ (W - C) + dXR
    dR = (C - W) @ R1
    if n > k:
        dR = xp.concat([dR, _mT(xp, Q) @ t[..., :, k:] - W @ R[..., :, k:]], axis=-1)
    if mode == "complete" and m > n:
        dQ, dR = _zpad(xp, dQ, m - n, -1), _zpad(xp, dR, m - n, -2)
    return Multi((dQ, dR))


qr_p = _prim("qr", lambda xp, x, mode, shape: tuple(xp.linalg.qr(x, mode=mode)), [_qr_vjp], [_qr_jvp],
             [("out",)], multi=True)


# ---- pseudo-inverse P = A⁺ (derivative at constant rank, Golub & Pereyra):
# dP = -P dA P + P Pᵀ dAᵀ (I - A P) + (I - P A) dAᵀ Pᵀ P

def _pinv_vjp(xp, ct, out, x, rtol):
    P, Pt, Gt = out, _mT(xp, out), _mT(xp, ct)
    a = Gt @ (P @ Pt)                                                    # Ḡᵀ P Pᵀ
    b = (Pt @ P) @ Gt                                                    # Pᵀ P Ḡᵀ
    return -(Pt @ ct @ Pt) + (a - x @ (P @ a)) + (b - (b @ P) @ x)


def _pinv_jvp(xp, t, out, x, rtol):
    P, Pt, tt = out, _mT(xp, out), _mT(xp, t)
    a = P @ (Pt @ tt)                                                    # P Pᵀ dAᵀ
    b = tt @ (Pt @ P)                                                    # dAᵀ Pᵀ P
    return -(P @ t @ P) + (a - (a @ x) @ P) + (b - P @ (x @ b))


pinv_p = _prim("pinv", lambda xp, x, rtol: xp.linalg.pinv(x, rtol=rtol), [_pinv_vjp], [_pinv_jvp], [(0, "out")])


# ---- matrix norms: one primitive, rules from the derivative D = d‖A‖/dA of each ord ----------------

def _extreme_mask(xp, sums, axis, largest):
    """Indicator of the largest (smallest) entries of ``sums`` along ``axis``, ties sharing evenly."""
    e = (xp.max if largest else xp.min)(sums, axis=axis, keepdims=True)
    m = xp.astype(sums == e, sums.dtype)
    return m / xp.sum(m, axis=axis, keepdims=True)


def _mnorm_d(xp, x, out, ord, keepdims):
    if ord == "fro":                                                     # A/‖A‖, 0 at A = 0
        o = out if keepdims else _mat(xp, out)
        return x / (o + xp.astype(o == 0, o.dtype))
    if ord in ("nuc", 2, -2):                                            # U Vᵀ, u₁v₁ᵀ, u_k v_kᵀ
        U, Vh = _usv(xp, x)
        if ord == "nuc":
            return U @ Vh
        i = 0 if ord == 2 else min(x.shape[-2:]) - 1
        return U[..., :, i:i + 1] @ Vh[..., i:i + 1, :]
    # ±1: max/min absolute column sum; ±inf: max/min absolute row sum; sign(A) on the chosen ones
    ax = -2 if ord in (1, -1) else -1
    mask = _extreme_mask(xp, xp.sum(xp.abs(x), axis=ax, keepdims=True), -1 if ax == -2 else -2, ord > 0)
    return xp.sign(x) * mask


matrix_norm_p = _prim(
    "matrix_norm", lambda xp, x, keepdims, ord: xp.linalg.matrix_norm(x, keepdims=keepdims, ord=ord),
    [lambda xp, ct, out, x, keepdims, ord: (ct if keepdims else _mat(xp, ct)) * _mnorm_d(xp, x, out, ord, keepdims)],
    [lambda xp, t, out, x, keepdims, ord: xp.sum(t * _mnorm_d(xp, x, out, ord, keepdims), axis=(-2, -1),
                                                 keepdims=keepdims)],
    [(0, "out")])


# ---- linear maps: trace, diagonal, cross -----------------------------------------------------------
trace_p = _prim("trace", lambda xp, x, offset, dtype, shape: xp.linalg.trace(x, offset=offset, dtype=dtype),
                [lambda xp, ct, out, x, offset, dtype, shape: _mat(xp, ct) * _eye(xp, ct, shape[0], shape[1], offset)],
                [lambda xp, t, out, x, offset, dtype, shape: xp.linalg.trace(t, offset=offset, dtype=dtype)], [()])


def _diag_embed(xp, ct, offset, shape):
    """The transpose of diagonal(·, offset): ct (..., L) placed on that diagonal of an (..., n, m) zero matrix."""
    L = ct.shape[-1]
    rows = _eye(xp, ct, shape[0], L, -max(-offset, 0))                   # rows[r, j] = [r == j + row offset]
    cols = _eye(xp, ct, L, shape[1], max(offset, 0))                     # cols[j, c] = [c == j + col offset]
    return (xp.expand_dims(ct, axis=-2) * rows) @ cols


diagonal_p = _prim("diagonal", lambda xp, x, offset, shape: xp.linalg.diagonal(x, offset=offset),
                   [lambda xp, ct, out, x, offset, shape: _diag_embed(xp, ct, offset, shape)],
                   [lambda xp, t, out, x, offset, shape: xp.linalg.diagonal(t, offset=offset)], [()])
# bilinear: ⟨c̄, a × b⟩ = ⟨b × c̄, a⟩ = ⟨c̄ × a, b⟩
cross_p = _prim("cross", lambda xp, x, y, axis: xp.linalg.cross(x, y, axis=axis),
                [lambda xp, ct, out, x, y, axis: xp.linalg.cross(y, ct, axis=axis),
                 lambda xp, ct, out, x, y, axis: xp.linalg.cross(ct, x, axis=axis)],
                [lambda xp, t, out, x, y, axis: xp.linalg.cross(t, y, axis=axis),
                 lambda xp, t, out, x, y, axis: xp.linalg.cross(x, t, axis=axis)],
                [(1,), (0,)], bcast=True)


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

def inv(x, /):
    """The inverse of a (stack of) square matrices; d(A⁻¹) = -A⁻¹ dA A⁻¹.

    >>> import gradtape as gt
    >>> gt.linalg.inv(gt.asarray([[2.0, 0.0], [0.0, 4.0]]))
    Tensor([[0.5 , 0.  ],
            [0.  , 0.25]])
    """
    x = _t(x)
    _need_matrix("inv", x, square=True)
    return apply1(inv_p, x)


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
    x = _t(x)
    _need_matrix("det", x, square=True)
    return apply1(det_p, x)


def slogdet(x, /):
    """``(sign, logabsdet)`` of the determinant of a (stack of) square matrices.

    ``logabsdet`` is differentiable (d log|det A| = tr(A⁻¹ dA)); ``sign`` is
    piecewise constant and gets no gradient.

    >>> import gradtape as gt
    >>> s = gt.linalg.slogdet(gt.asarray([[-2.0, 0.0], [0.0, 1.0]]))
    >>> s.sign, s.logabsdet
    (Tensor(-1.), Tensor(0.69314718))
    """
    x = _t(x)
    _need_matrix("slogdet", x, square=True)
    return SlogdetResult(*apply_multi(slogdet_p, (x,)))


def solve(x1, x2, /):
    """The solution X of ``x1 @ X = x2`` (x2 a stack of matrices, or one vector when 1-D).

    dX = A⁻¹ (dB - dA X); the reverse pass solves with Aᵀ.

    >>> import gradtape as gt
    >>> gt.linalg.solve(gt.asarray([[2.0, 0.0], [0.0, 4.0]]), gt.asarray([1.0, 1.0]))
    Tensor([0.5 , 0.25])
    """
    a, b = _t(x1), _t(x2)
    _need_matrix("solve", a, square=True)
    if b.ndim == 1:
        from .._ops.shape import expand_dims, squeeze
        return squeeze(apply(solve_p, (a, expand_dims(b, axis=-1))), axis=-1)
    return apply(solve_p, (a, b))


def cholesky(x, /, *, upper=False):
    """The Cholesky factor L (lower, ``A = L Lᵀ``; or U = Lᵀ with ``upper=True``) of symmetric positive-definite matrices.

    The input is taken to be symmetric (the backend reads one triangle): the
    gradient returned is the symmetric one, that of L(sym(A)) with sym(A) =
    (A + Aᵀ)/2, as in PyTorch and JAX, and forward mode uses the symmetric part
    of the tangent.

    >>> import gradtape as gt
    >>> gt.linalg.cholesky(gt.asarray([[4.0, 2.0], [2.0, 2.0]]))
    Tensor([[2., 0.],
            [1., 1.]])
    """
    x = _t(x)
    _need_matrix("cholesky", x, square=True)
    return apply1(cholesky_p, x, {"upper": bool(upper)})


def eigh(x, /):
    """``(eigenvalues, eigenvectors)`` of symmetric matrices, eigenvalues ascending.

    The input is taken to be symmetric: gradients are symmetric (those of
    eigh(sym(A))), and forward mode uses the symmetric part of the tangent.
    Each eigenvector's sign is arbitrary, so only sign-invariant functions of
    the eigenvectors (V diag(f(w)) Vᵀ, V ∘ V...) have well-defined derivatives.

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
    x = _t(x)
    _need_matrix("eigh", x, square=True)
    return EighResult(*apply_multi(eigh_p, (x,)))


def eigvalsh(x, /):
    """The eigenvalues of symmetric matrices, ascending; d w_i = v_iᵀ dA v_i.

    Symmetric input convention as :func:`eigh`. Defined at repeated
    eigenvalues to first order (any orthonormal eigenbasis gives the same
    gradient for symmetric functions of the eigenvalues); second-order
    derivatives go through :func:`eigh`'s eigenvectors and need distinct ones.

    >>> import gradtape as gt
    >>> gt.linalg.eigvalsh(gt.asarray([[2.0, 1.0], [1.0, 2.0]]))
    Tensor([1., 3.])
    """
    x = _t(x)
    _need_matrix("eigvalsh", x, square=True)
    return apply1(eigvalsh_p, x)


def svd(x, /, *, full_matrices=True):
    """``(U, S, Vh)`` with ``x = U @ diag(S) @ Vh``, S descending (array API default ``full_matrices=True``).

    Singular vectors are defined up to a joint sign (u_i, v_i) -> (-u_i, -v_i),
    so only functions invariant under it (U diag(f(S)) Vh, U ∘ U...) have
    well-defined derivatives. Gradients through S alone are always defined.
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
    x = _t(x)
    _need_matrix("svd", x)
    return SVDResult(*apply_multi(svd_p, (x,), {"full_matrices": bool(full_matrices), "shape": tuple(x.shape[-2:])}))


def svdvals(x, /):
    """The singular values of a (stack of) matrices, descending; d s_i = u_iᵀ dA v_i.

    Defined to first order at repeated singular values; second-order
    derivatives go through :func:`svd`'s vectors and need distinct, nonzero ones.

    >>> import gradtape as gt
    >>> gt.linalg.svdvals(gt.asarray([[3.0, 0.0], [0.0, -2.0]]))
    Tensor([3., 2.])
    """
    x = _t(x)
    _need_matrix("svdvals", x)
    return apply1(svdvals_p, x)


def qr(x, /, *, mode="reduced"):
    """``(Q, R)`` with ``x = Q @ R``, Q orthonormal columns, R upper triangular (mode "reduced" or "complete").

    Differentiable where the first min(m, n) columns of x are linearly
    independent (R's leading block invertible), for any m, n. Q and R are
    unique given the backend's sign convention, so no gauge-invariant wrapper
    is needed. With ``mode="complete"`` and m > n, Q's last m - n columns are
    an arbitrary basis of the complement: their cotangent is ignored and
    their tangent is zero.

    >>> import gradtape as gt
    >>> Q, R = gt.linalg.qr(gt.asarray([[3.0, 1.0], [4.0, 2.0]]))
    >>> gt.abs(R[0, 0])
    Tensor(5.)
    """
    if mode not in ("reduced", "complete"):
        raise ValueError(f"gradtape.linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    x = _t(x)
    _need_matrix("qr", x)
    return QRResult(*apply_multi(qr_p, (x,), {"mode": mode, "shape": tuple(x.shape[-2:])}))


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
    x = _t(x)
    _need_matrix("pinv", x)
    return apply1(pinv_p, x, {"rtol": rtol})


_ORDS = ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """Matrix norms over the last two axes: ord "fro", "nuc", 2, -2, 1, -1, inf, -inf.

    Derivatives: fro A/‖A‖ (0 at A = 0, like ``vector_norm``); nuc U Vh
    (a subgradient when A is rank-deficient); 2 / -2 u vᵀ of the largest /
    smallest singular value (needs it simple); ±1 / ±inf sign(A) on the
    column / row with the largest or smallest absolute sum, ties sharing the
    gradient evenly (sign(0) = 0).

    >>> import gradtape as gt
    >>> gt.linalg.matrix_norm(gt.asarray([[3.0, 0.0], [0.0, -4.0]]))
    Tensor(5.)
    >>> gt.linalg.matrix_norm(gt.asarray([[3.0, 0.0], [0.0, -4.0]]), ord=1)
    Tensor(4.)
    """
    x = _t(x)
    _need_matrix("matrix_norm", x)
    if ord not in _ORDS or isinstance(ord, bool):
        raise ValueError(f"gradtape.linalg.matrix_norm: ord must be one of 'fro', 'nuc', 2, -2, 1, -1, inf, -inf;"
                         f" got {ord!r}")
    if not isinstance(ord, str):
        ord = int(ord) if math.isfinite(ord) else ord
    return apply1(matrix_norm_p, x, {"keepdims": bool(keepdims), "ord": ord})


def matrix_power(x, n, /):
    """x raised to the integer power n (n < 0: the inverse's power; n = 0: the identity).

    Composed of :func:`gradtape.matmul` and :func:`inv` by the binary method
    NumPy uses (so NumPy and array-api-strict give the same bits).

    >>> import gradtape as gt
    >>> gt.linalg.matrix_power(gt.asarray([[1.0, 1.0], [0.0, 1.0]]), 3)
    Tensor([[1., 3.],
            [0., 1.]])
    """
    import operator
    from .._api.namespace import eye, matmul, zeros_like
    x = _t(x)
    _need_matrix("matrix_power", x, square=True)
    n = operator.index(n)
    if n == 0:
        return zeros_like(x) + eye(x.shape[-1], dtype=x.dtype, device=x.device)
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


def matrix_rank(x, /, *, rtol=None):
    """The rank of a (stack of) matrices (not differentiable: the result does not require grad).

    >>> import gradtape as gt
    >>> gt.linalg.matrix_rank(gt.asarray([[1.0, 2.0], [2.0, 4.0]]))
    Tensor(1)
    """
    x = _t(x)
    _need_matrix("matrix_rank", x)
    out = wrap(x.backend.xp.linalg.matrix_rank(x.data, rtol=rtol), x.backend)
    if state.tracer is not None:
        state.tracer("linalg.matrix_rank", (x,), {"rtol": rtol}, out)
    return out


def cross(x1, x2, /, *, axis=-1):
    """The cross product of 3-vectors along ``axis`` (broadcasting the others); bilinear.

    >>> import gradtape as gt
    >>> gt.linalg.cross(gt.asarray([1.0, 0.0, 0.0]), gt.asarray([0.0, 1.0, 0.0]))
    Tensor([0., 0., 1.])
    """
    a, b = _t(x1), _t(x2)
    nd = max(a.ndim, b.ndim)
    given, axis = axis, axis_index(axis, nd, "linalg.cross", a.shape if a.ndim == nd else b.shape) - nd
    if -axis > min(a.ndim, b.ndim):
        raise AxisError(f"gradtape.linalg.cross: axis {given} is out of range for shapes {tuple(a.shape)} and "
                        f"{tuple(b.shape)} (it must be an axis of both)")
    if a.shape[axis] != 3 or b.shape[axis] != 3:
        raise ValueError(f"gradtape.linalg.cross: axis {axis} must have size 3 in both inputs, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return apply(cross_p, (a, b), {"axis": axis})


def trace(x, /, *, offset=0, dtype=None):
    """The sum along the ``offset`` diagonal of a (stack of) matrices; linear.

    >>> import gradtape as gt
    >>> gt.linalg.trace(gt.asarray([[1.0, 2.0], [3.0, 4.0]]))
    Tensor(5.)
    """
    from .._api.namespace import _bdt
    x = _t(x)
    _need_matrix("trace", x)
    return apply1(trace_p, x, {"offset": int(offset), "dtype": _bdt(x.backend, dtype),
                               "shape": tuple(x.shape[-2:])})


def outer(x1, x2, /):
    """The outer product of two vectors, ``x1[:, None] * x2[None, :]``.

    >>> import gradtape as gt
    >>> gt.linalg.outer(gt.asarray([1.0, 2.0]), gt.asarray([3.0, 4.0]))
    Tensor([[3., 4.],
            [6., 8.]])
    """
    from .._ops.shape import expand_dims
    a, b = _t(x1), _t(x2)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"gradtape.linalg.outer: expected two 1-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return expand_dims(a, axis=-1) * expand_dims(b, axis=0)


def diagonal(x, /, *, offset=0):
    """The ``offset`` diagonal of a (stack of) matrices (offset > 0 above the main one); linear.

    >>> import gradtape as gt
    >>> gt.linalg.diagonal(gt.asarray([[1.0, 2.0], [3.0, 4.0]]), offset=1)
    Tensor([2.])
    """
    x = _t(x)
    _need_matrix("diagonal", x)
    return apply1(diagonal_p, x, {"offset": int(offset), "shape": tuple(x.shape[-2:])})
