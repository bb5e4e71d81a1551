"""The primitives of the array API ``linalg`` extension: forward, VJP and JVP side by side.

Every rule acts on stacks of matrices (..., m, n), with axes counted from the
end, so a cotangent or tangent with extra leading batch axes (batched
Jacobians) broadcasts through it. Rules call only array-API functions
(``xp.matmul``, ``xp.linalg.solve``...); when derivatives are recorded ``xp``
is gradtape's tensor-level namespace and ``xp.linalg`` the functions of
:mod:`gradtape._api.linalg`, so every order of derivative comes from the same
rules. Argument checks, result types and composite functions
(``matrix_power``, ``matrix_rank``, ``outer``) are in :mod:`gradtape._api.linalg`.

Complex inputs. The holomorphic maps (``inv``, ``det``, ``solve``, ``trace``, ``diagonal``, ``cross``) keep their
rules as they are: in gradtape's internal convention (JAX's, :mod:`gradtape._ops.elementwise`) the VJP of a
holomorphic map is the plain transpose of its JVP. The others (``slogdet``'s sign and modulus, ``cholesky``,
``eigh``, ``eigvalsh``, ``svd``, ``svdvals``, ``qr``, ``pinv``, ``matrix_norm``) are written with conjugate
transposes (:func:`_mH`, the transpose on real tensors): their JVPs are the derivative itself, their VJPs the
adjoint under ⟨G, dA⟩ = Re tr(Gᴴ dA) (PyTorch's convention), turned into the internal one by :func:`_adjoint`
(``conj(rule(conj(ct)))``; on real inputs the rule itself, unchanged). Hermitian inputs are taken through
herm(A) = (A + Aᴴ)/2, and the eigenvectors' and singular vectors' phases are a gauge: the JVPs choose
Vᴴ dV with a zero diagonal (eigh) and the phase split evenly between U and V (svd), so only gauge-invariant
functions of them have well-defined derivatives (as in PyTorch).

Undefined derivatives (documented on each function): ``eigh``'s eigenvectors
at repeated eigenvalues and ``svd``'s singular vectors at repeated singular
values give inf/NaN (the rule's 1/(λj - λi) is not masked off the diagonal);
everything through the eigenvalues or singular values alone stays finite.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.solve.inputs, PRIMS.eigh.multi_output
(('a', 'b'), True)
"""
from __future__ import annotations

import functools

from .._core.dispatch import SELECT, apply1
from .._core.primitive import Multi, define, define_linear
from .._core.tensor import Tensor
from .elementwise import _c, _complex

__all__ = ["inv_p", "det_p", "slogdet_p", "solve_p", "cholesky_p", "eigh_p", "eigvalsh_p", "svd_p", "svdvals_p",
           "qr_p", "pinv_p", "matrix_norm_p", "trace_p", "diagonal_p", "cross_p"]


# ---- helpers written against xp (raw backend namespace, or gradtape on tensors) ------------------

def _mT(xp, a):
    return xp.matrix_transpose(a)


def _mH(xp, a):
    """The conjugate transpose aᴴ (the transpose of a real a)."""
    return _c(xp, xp.matrix_transpose(a))


def _sym(xp, a):
    """The Hermitian part (a + aᴴ)/2 (the symmetric part of a real a)."""
    return 0.5 * (a + _mH(xp, a))


def _ipart(xp, d):
    """i Im(d) of a complex d, as (d - conj(d))/2 (no Python complex scalar times a real array)."""
    return 0.5 * (d - xp.conj(d))


def _conj_all(xp, ct):
    return tuple(None if g is None else _c(xp, g) for g in ct) if isinstance(ct, tuple) else _c(xp, ct)


def _adjoint(rule):
    """A VJP written as the adjoint (PyTorch's convention) as gradtape's rule (JAX's): conj(rule(conj(ct)))
    on complex inputs, the rule itself on real ones."""
    @functools.wraps(rule)
    def vjp(xp, ct, out, x, *rest, **params):
        if not _complex(x if x is not None else out[-1] if isinstance(out, tuple) else out):   # x: None unless read
            return rule(xp, ct, out, x, *rest, **params)
        g = rule(xp, _conj_all(xp, ct), out, x, *rest, **params)
        return None if g is None else xp.conj(g)
    return vjp


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
        return tuple(apply1(SELECT, out, {"k": k, "n": n}) for k in range(n))
    return out


# ---- inverse, determinants, solve ------------------------------------------------------------------
# d(A⁻¹) = -A⁻¹ dA A⁻¹
inv_p = define("inv", lambda xp, x: xp.linalg.inv(x),
               vjp={"x": lambda xp, ct, out, x: -(_mT(xp, out) @ ct @ _mT(xp, out))},
               jvp={"x": lambda xp, t, out, x: -(out @ t @ out)}, reads={"x": ("out",)})
# d det A = det A · tr(A⁻¹ dA)
det_p = define("det", lambda xp, x: xp.linalg.det(x),
               vjp={"x": lambda xp, ct, out, x: _mat(xp, ct * out) * _mT(xp, xp.linalg.inv(x))},
               jvp={"x": lambda xp, t, out, x: out * xp.linalg.trace(xp.linalg.solve(x, t))},
               reads={"x": ("x", "out")})
# (sign, log|det A|), τ = tr(A⁻¹ dA): real A: the sign is piecewise constant (no derivative), d log|det A| = τ;
# complex A: d log|det A| = Re τ, d sign = sign · i Im τ (the VJP's coefficient of A⁻ᵀ: ct_l + i Im(ct_s sign))
def _slogdet_vjp(xp, ct, out, x):
    gs, gl = ct
    if gs is not None and _complex(x):             # (the sign recomputed: real inputs keep only x alive)
        c = _ipart(xp, gs * xp.linalg.slogdet(x)[0])
        gl = c if gl is None else gl + c
    return None if gl is None else _mat(xp, gl) * _mT(xp, xp.linalg.inv(x))


def _slogdet_jvp(xp, t, out, x):
    tau = xp.linalg.trace(xp.linalg.solve(x, t))
    if not _complex(tau):
        return Multi((None, tau))
    return Multi((_parts(out)[0] * _ipart(xp, tau), xp.real(tau)))


slogdet_p = define("slogdet", lambda xp, x: tuple(xp.linalg.slogdet(x)), vjp={"x": _slogdet_vjp},
                   jvp={"x": _slogdet_jvp}, reads={"x": ("x",)}, multi_output=True)
# X = A⁻¹ B (B a stack of matrices: vectors are made (..., n, 1) first); dX = A⁻¹ (dB - dA X)
solve_p = define("solve", lambda xp, a, b: xp.linalg.solve(a, b), inputs=("a", "b"),
                 vjp={"a": lambda xp, ct, out, a, b: -(xp.linalg.solve(_mT(xp, a), ct) @ _mT(xp, out)),
                      "b": lambda xp, ct, out, a, b: xp.linalg.solve(_mT(xp, a), ct)},
                 jvp={"a": lambda xp, t, out, a, b: -xp.linalg.solve(a, t @ out),
                      "b": lambda xp, t, out, a, b: xp.linalg.solve(a, t)},
                 reads={"a": ("a", "out"), "b": ("a",)}, broadcasting=True)


# ---- Cholesky: A = L Lᴴ; dL = L Φ(L⁻¹ herm(dA) L⁻ᴴ), Φ = lower triangle with the diagonal halved ---------

def _phi(xp, x):
    return xp.tril(x) - 0.5 * x * _eye(xp, x, x.shape[-1])


@_adjoint
def _cholesky_vjp(xp, ct, out, x, upper):
    L = _mH(xp, out) if upper else out
    g = _mH(xp, ct) if upper else ct
    y = xp.linalg.solve(_mH(xp, L), _phi(xp, _mH(xp, L) @ g))           # L⁻ᴴ Φ(Lᴴ L̄)
    return _sym(xp, _mH(xp, xp.linalg.solve(_mH(xp, L), _mH(xp, y))))   # herm(L⁻ᴴ Φ(Lᴴ L̄) L⁻¹)


def _cholesky_jvp(xp, t, out, x, upper):
    L = _mH(xp, out) if upper else out
    y = xp.linalg.solve(L, _sym(xp, t))                                # L⁻¹ herm(dA)
    dL = L @ _phi(xp, _mH(xp, xp.linalg.solve(L, _mH(xp, y))))          # L Φ(L⁻¹ herm(dA) L⁻ᴴ)
    return _mH(xp, dL) if upper else dL


cholesky_p = define("cholesky", lambda xp, x, upper: xp.linalg.cholesky(x, upper=upper),
                    vjp={"x": _cholesky_vjp}, jvp={"x": _cholesky_jvp}, reads={"x": ("out",)})


# ---- Hermitian (symmetric) eigendecomposition: A = V diag(w) Vᴴ ----------------------------------
# JVP: X = Vᴴ herm(dA) V; dw = Re diag(X), dV = V (F ∘ X) with F_ij = 1/(w_j - w_i) (so diag(Vᴴ dV) = 0: the
# phases' gauge); the VJP is its adjoint.

def _re(xp, v):
    """Re v of a complex v (a Hermitian form's diagonal, real up to rounding); v itself when real."""
    return xp.real(v) if _complex(v) else v


@_adjoint
def _eigh_vjp(xp, ct, out, x):
    w, V = out
    gw, gV = ct
    inner = None if gw is None else _diag(xp, gw)
    if gV is not None:
        inner = _add(inner, _gap(xp, w) * (_mH(xp, V) @ gV))
    return _sym(xp, V @ inner @ _mH(xp, V))


def _eigh_jvp(xp, t, out, x):
    w, V = _parts(out)
    X = _mH(xp, V) @ _sym(xp, t) @ V
    return Multi((_re(xp, xp.linalg.diagonal(X)), V @ (_gap(xp, w) * X)))


eigh_p = define("eigh", lambda xp, x: tuple(xp.linalg.eigh(x)), vjp={"x": _eigh_vjp}, jvp={"x": _eigh_jvp},
                reads={"x": ("out",)}, multi_output=True)


# eigenvalues only: the eigenvectors are recomputed in the rules (they need no gap, so ties are fine)
@_adjoint
def _eigvalsh_vjp(xp, ct, out, x):
    V = xp.linalg.eigh(x)[1]
    return V * xp.expand_dims(ct, axis=-2) @ _mH(xp, V)                   # V diag(w̄) Vᴴ


def _eigvalsh_jvp(xp, t, out, x):
    V = xp.linalg.eigh(x)[1]
    return _re(xp, xp.sum(_c(xp, V) * (_sym(xp, t) @ V), axis=-2))      # Re diag(Vᴴ herm(dA) V)


eigvalsh_p = define("eigvalsh", lambda xp, x: xp.linalg.eigvalsh(x), vjp={"x": _eigvalsh_vjp},
                    jvp={"x": _eigvalsh_jvp}, reads={"x": ("x",)})


# ---- singular value decomposition: A = U diag(s) Vh, k = min(m, n) --------------------------------
# JVP: P = Uᴴ dA V; ds = Re diag(P); dU = U (F ∘ (P S + S Pᴴ) + D) + (I - U Uᴴ) dA V S⁻¹,
# dV = V (F ∘ (S P + Pᴴ S) - D) + (I - V Vᴴ) dAᴴ U S⁻¹ with F_ij = 1/(s_j² - s_i²) and, for complex A,
# D = i Im diag(P) / (2S) (the phase gauge split evenly between u_i and v_i; 0 for real A). With full_matrices
# the columns of U (rows of Vh) beyond k are an arbitrary basis: their cotangent is ignored, their tangent 0.

def _svd_k(out, ct, full, shape):
    k = min(shape)
    U, s, Vh = out
    if full:
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        if ct is not None:
            ct = (None if ct[0] is None else ct[0][..., :, :k], ct[1], None if ct[2] is None else ct[2][..., :k, :])
    return U, s, Vh, ct


@_adjoint
def _svd_vjp(xp, ct, out, x, full_matrices, shape):
    U, s, Vh, (gU, gs, gVh) = _svd_k(out, ct, full_matrices, shape)
    m, n = shape
    k = min(m, n)
    inner = None if gs is None else _diag(xp, gs)
    F = None if gU is None and gVh is None else _gap2(xp, s)
    extra = phase = None
    if gU is not None:
        UgU = _mH(xp, U) @ gU
        J = F * UgU
        inner = _add(inner, (J + _mH(xp, J)) * xp.expand_dims(s, axis=-2))           # (F ∘ (UᴴŪ - ŪᴴU)) S
        if _complex(UgU):
            phase = _ipart(xp, xp.linalg.diagonal(UgU))
        if m > k:
            extra = ((gU - U @ (_mH(xp, U) @ gU)) / xp.expand_dims(s, axis=-2)) @ Vh  # (I - UUᴴ) Ū S⁻¹ Vᴴ
    if gVh is not None:
        VgV = Vh @ _mH(xp, gVh)
        K = F * VgV
        inner = _add(inner, xp.expand_dims(s, axis=-1) * (K + _mH(xp, K)))           # S (F ∘ (VᴴV̄ - V̄ᴴV))
        if _complex(VgV):
            phase = _add(phase, -_ipart(xp, xp.linalg.diagonal(VgV)))
        if n > k:
            extra = _add(extra, U @ ((gVh - (gVh @ _mH(xp, Vh)) @ Vh) / xp.expand_dims(s, axis=-1)))
    if phase is not None:                                                            # the adjoint of D
        inner = _add(inner, _diag(xp, phase / (2 * s)))
    g = None if inner is None else U @ inner @ Vh
    return _add(g, extra)


def _svd_jvp(xp, t, out, x, full_matrices, shape):
    U, s, Vh, _ = _svd_k(_parts(out), None, full_matrices, shape)
    m, n = shape
    k = min(m, n)
    V = _mH(xp, Vh)
    P = _mH(xp, U) @ t @ V
    F = _gap2(xp, s)
    srow, scol = xp.expand_dims(s, axis=-2), xp.expand_dims(s, axis=-1)
    dU = U @ (F * (P * srow + scol * _mH(xp, P)))
    dV = V @ (F * (scol * P + _mH(xp, P) * srow))
    dP = xp.linalg.diagonal(P)
    if _complex(P):
        D = _diag(xp, _ipart(xp, dP) / (2 * s))
        dU, dV, dP = dU + U @ D, dV - V @ D, xp.real(dP)
    if m > k:
        tV = t @ V
        dU = dU + (tV - U @ (_mH(xp, U) @ tV)) / srow
    if n > k:
        tU = _mH(xp, t) @ U
        dV = dV + (tU - V @ (Vh @ tU)) / srow
    dVh = _mH(xp, dV)
    if full_matrices:
        dU, dVh = _zpad(xp, dU, m - k, -1), _zpad(xp, dVh, n - k, -2)
    return Multi((dU, dP, dVh))


svd_p = define("svd", lambda xp, x, full_matrices, shape: tuple(xp.linalg.svd(x, full_matrices=full_matrices)),
               vjp={"x": _svd_vjp}, jvp={"x": _svd_jvp}, reads={"x": ("out",)}, multi_output=True)


def _usv(xp, x):
    U, _, Vh = xp.linalg.svd(x, full_matrices=False)
    return U, Vh


# singular values only: ds = Re diag(Uᴴ dA V), Ā = U diag(s̄) Vh (the vectors recomputed in the rules)
@_adjoint
def _svdvals_vjp(xp, ct, out, x):
    U, Vh = _usv(xp, x)
    return U * xp.expand_dims(ct, axis=-2) @ Vh


def _svdvals_jvp(xp, t, out, x):
    U, Vh = _usv(xp, x)
    return _re(xp, xp.sum(_c(xp, U) * (t @ _mH(xp, Vh)), axis=-2))


svdvals_p = define("svdvals", lambda xp, x: xp.linalg.svdvals(x), vjp={"x": _svdvals_vjp},
                   jvp={"x": _svdvals_jvp}, reads={"x": ("x",)})


# ---- QR: A = Q R, k = min(m, n), A = [X Y] with X the first k columns, R = [R1 R2] -------------------
# JVP: C = Qᴴ dX R1⁻¹, Ω = tril(C, -1) - tril(C, -1)ᴴ (+ i Im diag(C) for complex A: R's diagonal is real);
# dQ = Q (Ω - C) + dX R1⁻¹, dR1 = (C - Ω) R1, dR2 = Qᴴ dY - Ω R2. With mode="complete" and m > n, Q's last
# m - n columns are an arbitrary basis: their cotangent is ignored and their tangent is 0 (R's last rows are
# identically 0).

def _qr_k(out, ct, mode, shape):
    Q, R = out
    m, n = shape
    if mode == "complete" and m > n:
        Q, R = Q[..., :, :n], R[..., :n, :]
        if ct is not None:
            ct = (None if ct[0] is None else ct[0][..., :, :n], None if ct[1] is None else ct[1][..., :n, :])
    return Q, R, ct


@_adjoint
def _qr_vjp(xp, ct, out, x, mode, shape):
    Q, R, (gQ, gR) = _qr_k(out, ct, mode, shape)
    m, n = shape
    k = min(m, n)
    R1 = R[..., :, :k]
    M1 = None if gQ is None else -(_mH(xp, Q) @ gQ)
    if gR is not None:
        M1 = _add(M1, gR[..., :, :k] @ _mH(xp, R1))
    M = M1 if gR is None or n == k else M1 + gR[..., :, k:] @ _mH(xp, R[..., :, k:])
    G = M1 - xp.tril(M - _mH(xp, M), k=-1)
    if _complex(M):                                                      # the adjoint of i Im diag(C)
        G = G - _diag(xp, _ipart(xp, xp.linalg.diagonal(M)))
    gX = _mH(xp, xp.linalg.solve(R1, _mH(xp, _add(gQ, Q @ G))))          # (Q̄ + Q G) R1⁻ᴴ
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
    C = _mH(xp, Q) @ dXR
    low = xp.tril(C, k=-1)
    W = low - _mH(xp, low)
    if _complex(C):
        W = W + _diag(xp, _ipart(xp, xp.linalg.diagonal(C)))
    dQ = Q @ (W - C) + dXR
    dR = (C - W) @ R1
    if n > k:
        dR = xp.concat([dR, _mH(xp, Q) @ t[..., :, k:] - W @ R[..., :, k:]], axis=-1)
    if mode == "complete" and m > n:
        dQ, dR = _zpad(xp, dQ, m - n, -1), _zpad(xp, dR, m - n, -2)
    return Multi((dQ, dR))


qr_p = define("qr", lambda xp, x, mode, shape: tuple(xp.linalg.qr(x, mode=mode)), vjp={"x": _qr_vjp},
              jvp={"x": _qr_jvp}, reads={"x": ("out",)}, multi_output=True)


# ---- pseudo-inverse P = A⁺ (derivative at constant rank, Golub & Pereyra):
# dP = -P dA P + P Pᴴ dAᴴ (I - A P) + (I - P A) dAᴴ Pᴴ P

@_adjoint
def _pinv_vjp(xp, ct, out, x, rtol):
    P, Pt, Gt = out, _mH(xp, out), _mH(xp, ct)
    a = Gt @ (P @ Pt)                                                    # Ḡᴴ P Pᴴ
    b = (Pt @ P) @ Gt                                                    # Pᴴ P Ḡᴴ
    return -(Pt @ ct @ Pt) + (a - x @ (P @ a)) + (b - (b @ P) @ x)


def _pinv_jvp(xp, t, out, x, rtol):
    P, Pt, tt = out, _mH(xp, out), _mH(xp, t)
    a = P @ (Pt @ tt)                                                    # P Pᴴ dAᴴ
    b = tt @ (Pt @ P)                                                    # dAᴴ Pᴴ P
    return -(P @ t @ P) + (a - (a @ x) @ P) + (b - P @ (x @ b))


pinv_p = define("pinv", lambda xp, x, rtol: xp.linalg.pinv(x, rtol=rtol), vjp={"x": _pinv_vjp},
                jvp={"x": _pinv_jvp}, reads={"x": ("x", "out")})


# ---- matrix norms: one primitive, rules from the derivative D = d‖A‖/dA of each ord ----------------

def _extreme_mask(xp, sums, axis, largest):
    """Indicator of the largest (smallest) entries of ``sums`` along ``axis``, ties sharing evenly."""
    e = (xp.max if largest else xp.min)(sums, axis=axis, keepdims=True)
    m = xp.astype(sums == e, sums.dtype)
    return m / xp.sum(m, axis=axis, keepdims=True)


def _matrix_norm_d(xp, x, out, ord, keepdims):
    """D with d‖A‖ = Re Σ D ∘ dA: the derivative (real A); conj of PyTorch's gradient (complex A)."""
    d = _matrix_norm_g(xp, x, out, ord, keepdims)
    return xp.conj(d) if _complex(d) else d


def _sgn(xp, x):
    """x / |x| (0 at 0) of a complex x: sign(x) as a differentiable function; sign(x) of a real one."""
    if not _complex(x):
        return xp.sign(x)
    a = xp.abs(x)
    return x / xp.where(a == 0, xp.ones_like(a), a)


def _matrix_norm_g(xp, x, out, ord, keepdims):
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
    return _sgn(xp, x) * mask


def _matrix_norm_vjp(xp, ct, out, x, keepdims, ord):
    return (ct if keepdims else _mat(xp, ct)) * _matrix_norm_d(xp, x, out, ord, keepdims)


def _matrix_norm_jvp(xp, t, out, x, keepdims, ord):
    return _re(xp, xp.sum(t * _matrix_norm_d(xp, x, out, ord, keepdims), axis=(-2, -1), keepdims=keepdims))


matrix_norm_p = define("matrix_norm", lambda xp, x, keepdims, ord: xp.linalg.matrix_norm(x, keepdims=keepdims, ord=ord),
                       vjp={"x": _matrix_norm_vjp}, jvp={"x": _matrix_norm_jvp}, reads={"x": ("x", "out")})


# ---- linear maps: trace, diagonal (JVP = the map applied to the tangent); bilinear: cross ----------
trace_p = define_linear("trace", lambda xp, x, offset, dtype, shape: xp.linalg.trace(x, offset=offset, dtype=dtype),
                        lambda xp, ct, out, x, offset, dtype, shape:
                        _mat(xp, ct) * _eye(xp, ct, shape[0], shape[1], offset))


def _diag_embed(xp, ct, offset, shape):
    """The transpose of diagonal(·, offset): ct (..., L) placed on that diagonal of an (..., n, m) zero matrix."""
    L = ct.shape[-1]
    rows = _eye(xp, ct, shape[0], L, -max(-offset, 0))                   # rows[r, j] = [r == j + row offset]
    cols = _eye(xp, ct, L, shape[1], max(offset, 0))                     # cols[j, c] = [c == j + col offset]
    return (xp.expand_dims(ct, axis=-2) * rows) @ cols


diagonal_p = define_linear("diagonal", lambda xp, x, offset, shape: xp.linalg.diagonal(x, offset=offset),
                           lambda xp, ct, out, x, offset, shape: _diag_embed(xp, ct, offset, shape))
# ⟨c̄, a × b⟩ = ⟨b × c̄, a⟩ = ⟨c̄ × a, b⟩
cross_p = define("cross", lambda xp, x, y, axis: xp.linalg.cross(x, y, axis=axis), inputs=("x", "y"),
                 vjp={"x": lambda xp, ct, out, x, y, axis: xp.linalg.cross(y, ct, axis=axis),
                      "y": lambda xp, ct, out, x, y, axis: xp.linalg.cross(ct, x, axis=axis)},
                 jvp={"x": lambda xp, t, out, x, y, axis: xp.linalg.cross(t, y, axis=axis),
                      "y": lambda xp, t, out, x, y, axis: xp.linalg.cross(x, t, axis=axis)},
                 reads={"x": ("y",), "y": ("x",)}, broadcasting=True)
