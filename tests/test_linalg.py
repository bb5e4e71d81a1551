"""The linalg extension: every function's forward equals the backend's, and its derivatives (forward and reverse
mode, to second order) agree with finite differences, on NumPy and array-api-strict, on stacked inputs too.

Inputs are well conditioned: SPD matrices for cholesky, symmetric ones with well-separated eigenvalues for
eigh, distinct nonzero singular values for svd. Decompositions with a sign gauge (eigh, svd) are checked through
sign-invariant functions of their vectors; qr's factors are unique, so they are checked directly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

import gradtape as gt
from gradtape._core.dispatch import wrap
from gradtape.testing import check_grads

L = gt.linalg


# ---- well-conditioned inputs (NumPy, then moved to the device) -----------------------------------

def general(shape, rng):
    """Entries O(1), comfortably invertible."""
    return rng.uniform(-1.0, 1.0, size=shape) + 2.0 * np.eye(shape[-2], shape[-1])


def spd(shape, rng):
    a = rng.uniform(-1.0, 1.0, size=shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def _orth(n, rng, lead=()):
    q, _ = np.linalg.qr(rng.normal(size=lead + (n, n)))
    return q


def sym_distinct(shape, rng):
    """Symmetric with eigenvalues 1, 2.1, 3.2, ... (gaps ≥ 1)."""
    n, lead = shape[-1], shape[:-2]
    q = _orth(n, rng, lead)
    w = 1.0 + 1.1 * np.arange(n) + rng.uniform(0, 0.1, size=lead + (n,))
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def sv_distinct(shape, rng):
    """Singular values 1, 1.7, 2.4, ... (distinct and away from 0)."""
    m, n, lead = shape[-2], shape[-1], shape[:-2]
    k = min(m, n)
    u = _orth(m, rng, lead)[..., :, :k]
    v = _orth(n, rng, lead)[..., :, :k]
    s = 1.0 + 0.7 * np.arange(k)[::-1] + rng.uniform(0, 0.05, size=lead + (k,))
    return (u * s[..., None, :]) @ np.swapaxes(v, -1, -2)


def uniform(shape, rng):
    return rng.uniform(-1.5, 1.5, size=shape)


def away(shape, rng):
    """Uniform, |x| ≥ 0.2 (kinks of |x| at 0)."""
    a = rng.uniform(-1.5, 1.5, size=shape)
    return np.where(np.abs(a) < 0.2, np.sign(a + 1e-12) * (0.2 + np.abs(a)), a)


# ---- gauge-invariant views of decompositions --------------------------------------------------------

def sym(a):
    return 0.5 * (a + a.mT)


def flat(*ts):
    return gt.concat([gt.reshape(t, (-1,)) for t in ts])


def eigh_all(a):
    w, V = L.eigh(sym(a))
    return flat(w, V * V, (V * gt.expand_dims(gt.exp(0.3 * w), axis=-2)) @ V.mT)


def svd_all(a, full=False):
    U, s, Vh = L.svd(a, full_matrices=full)
    k = s.shape[-1]
    U, Vh = U[..., :, :k], Vh[..., :k, :]
    return flat(s, U * U, Vh * Vh, (U * gt.expand_dims(s * s, axis=-2)) @ Vh)


def qr_all(a, mode="reduced"):
    Q, R = L.qr(a, mode=mode)
    k = min(a.shape[-2:])
    return flat(Q[..., :, :k], R)


@dataclass
class Op:
    name: str
    fn: object                 # tensors -> tensor
    args: list                 # list of cases; a case is a tuple of (shape, generator) per argument
    order: int = 2


M = general
OPS = [
    Op("inv", L.inv, [(((3, 3), M),), (((2, 3, 3), M),)]),
    Op("det", L.det, [(((3, 3), M),), (((2, 3, 3), M),), (((1, 1), M),)]),
    Op("slogdet", lambda a: L.slogdet(a).logabsdet, [(((3, 3), M),), (((2, 3, 3), uniform),)]),
    Op("slogdet_sign_times", lambda a: (lambda r: r.sign * gt.exp(r.logabsdet))(L.slogdet(a)),
       [(((2, 3, 3), uniform),)]),
    Op("solve", L.solve, [(((3, 3), M), ((3,), uniform)), (((3, 3), M), ((3, 2), uniform)),
                          (((2, 3, 3), M), ((3, 2), uniform)), (((3, 3), M), ((2, 3, 2), uniform)),
                          (((2, 3, 3), M), ((3,), uniform)), (((2, 1, 3, 3), M), ((3, 3, 1), uniform))]),
    Op("cholesky", lambda a: L.cholesky(sym(a)), [(((3, 3), spd),), (((2, 3, 3), spd),)]),
    Op("cholesky_upper", lambda a: L.cholesky(sym(a), upper=True), [(((3, 3), spd),)]),
    Op("eigh", eigh_all, [(((3, 3), sym_distinct),), (((2, 3, 3), sym_distinct),)]),
    Op("eigh_values", lambda a: L.eigh(sym(a)).eigenvalues, [(((4, 4), sym_distinct),)]),
    Op("eigvalsh", lambda a: L.eigvalsh(sym(a)), [(((3, 3), sym_distinct),), (((2, 3, 3), sym_distinct),)]),
    Op("svd", svd_all, [(((3, 3), sv_distinct),), (((4, 3), sv_distinct),), (((3, 4), sv_distinct),),
                        (((2, 4, 3), sv_distinct),)]),
    Op("svd_full", lambda a: svd_all(a, full=True), [(((4, 2), sv_distinct),), (((2, 4), sv_distinct),)]),
    Op("svd_S", lambda a: L.svd(a).S, [(((3, 4), sv_distinct),)]),
    Op("svdvals", L.svdvals, [(((3, 3), sv_distinct),), (((4, 3), sv_distinct),), (((2, 3, 4), sv_distinct),)]),
    Op("qr", qr_all, [(((3, 3), M),), (((4, 3), uniform),), (((3, 4), M),), (((2, 4, 3), uniform),)]),
    Op("qr_Q", lambda a: L.qr(a).Q, [(((4, 3), uniform),)]),
    Op("qr_R", lambda a: L.qr(a).R, [(((3, 4), M),)]),
    Op("qr_complete", lambda a: qr_all(a, "complete"), [(((4, 2), uniform),), (((2, 4), M),)]),
    Op("pinv", L.pinv, [(((3, 3), sv_distinct),), (((4, 3), sv_distinct),), (((3, 4), sv_distinct),),
                        (((2, 4, 3), sv_distinct),)]),
    Op("matrix_norm_fro", L.matrix_norm, [(((3, 4), uniform),), (((2, 3, 3), uniform),)]),
    Op("matrix_norm_fro_keep", lambda a: L.matrix_norm(a, keepdims=True), [(((2, 3, 2), uniform),)]),
    Op("matrix_norm_nuc", lambda a: L.matrix_norm(a, ord="nuc"), [(((3, 4), sv_distinct),), (((2, 3, 3), sv_distinct),)]),
    Op("matrix_norm_2", lambda a: L.matrix_norm(a, ord=2), [(((4, 3), sv_distinct),), (((2, 3, 3), sv_distinct),)]),
    Op("matrix_norm_-2", lambda a: L.matrix_norm(a, ord=-2), [(((3, 4), sv_distinct),), (((2, 3, 3), sv_distinct),)]),
    Op("matrix_norm_1", lambda a: L.matrix_norm(a, ord=1), [(((3, 4), away),), (((2, 3, 3), away),)]),
    Op("matrix_norm_-1", lambda a: L.matrix_norm(a, ord=-1, keepdims=True), [(((3, 4), away),)]),
    Op("matrix_norm_inf", lambda a: L.matrix_norm(a, ord=math.inf), [(((3, 4), away),), (((2, 3, 3), away),)]),
    Op("matrix_norm_-inf", lambda a: L.matrix_norm(a, ord=-math.inf), [(((4, 3), away),)]),
    Op("matrix_power_0", lambda a: L.matrix_power(a, 0), [(((3, 3), M),)]),
    Op("matrix_power_1", lambda a: L.matrix_power(a, 1), [(((3, 3), M),)]),
    Op("matrix_power_3", lambda a: L.matrix_power(a, 3), [(((3, 3), M),), (((2, 3, 3), M),)]),
    Op("matrix_power_5", lambda a: L.matrix_power(0.5 * a, 5), [(((3, 3), M),)]),
    Op("matrix_power_-2", lambda a: L.matrix_power(a, -2), [(((3, 3), M),), (((2, 2, 2), M),)]),
    Op("cross", L.cross, [(((3,), uniform), ((3,), uniform)), (((2, 3), uniform), ((3,), uniform)),
                          (((2, 1, 3), uniform), ((4, 3), uniform))]),
    Op("cross_axis0", lambda a, b: L.cross(a, b, axis=0), [(((3, 2), uniform), ((3, 2), uniform))]),
    Op("trace", L.trace, [(((3, 3), uniform),), (((2, 3, 4), uniform),)]),
    Op("trace_offset", lambda a: L.trace(a, offset=1), [(((2, 3, 4), uniform),)]),
    Op("trace_offset_neg", lambda a: L.trace(a, offset=-2), [(((4, 3), uniform),)]),
    Op("outer", L.outer, [(((3,), uniform), ((2,), uniform))]),
    Op("diagonal", L.diagonal, [(((3, 3), uniform),), (((2, 3, 4), uniform),)]),
    Op("diagonal_offset", lambda a: L.diagonal(a, offset=1), [(((2, 3, 4), uniform),)]),
    Op("diagonal_offset_neg", lambda a: L.diagonal(a, offset=-2), [(((4, 3), uniform),)]),
]


def _args(case, device, seed):
    rng = np.random.default_rng(seed)
    return [gt.asarray(gen(shape, rng), device=device) for shape, gen in case]


def _case_id(op, case):
    return f"{op.name}-" + "-".join("x".join(map(str, s)) for s, _ in case)


CASES = [pytest.param(op, case, id=_case_id(op, case)) for op in OPS for case in op.args]


@pytest.mark.parametrize("op,case", CASES)
def test_linalg_grads(device, op, case):
    args = _args(case, device, 1234)
    out = op.fn(*args)
    assert out.device == args[0].device
    check_grads(op.fn, args, order=op.order)


def test_table_covers_the_linalg_extension():
    names = " ".join(op.name for op in OPS)
    missing = [n for n in gt.linalg.__all__ if n not in names and n not in
               ("matmul", "tensordot", "vecdot", "matrix_transpose", "vector_norm", "matrix_rank")]
    assert not missing


# ---- forward equals the backend's own linalg function, bit for bit --------------------------------

FORWARD = [
    ("inv", lambda l, a: l.inv(a), [(3, 3), (2, 3, 3)], M),
    ("det", lambda l, a: l.det(a), [(3, 3), (2, 3, 3)], M),
    ("slogdet", lambda l, a: l.slogdet(a), [(3, 3), (2, 3, 3)], uniform),
    ("solve", lambda l, a: l.solve(a, a[..., 0, :] if a.ndim == 2 else a[..., :, :2]), [(3, 3), (2, 3, 3)], M),
    ("cholesky", lambda l, a: l.cholesky(a), [(3, 3), (2, 3, 3)], spd),
    ("cholesky_upper", lambda l, a: l.cholesky(a, upper=True), [(3, 3)], spd),
    ("eigh", lambda l, a: l.eigh(a), [(3, 3), (2, 3, 3)], sym_distinct),
    ("eigvalsh", lambda l, a: l.eigvalsh(a), [(3, 3), (2, 3, 3)], sym_distinct),
    ("svd", lambda l, a: l.svd(a), [(3, 4), (2, 4, 3)], uniform),
    ("svd_reduced", lambda l, a: l.svd(a, full_matrices=False), [(4, 3)], uniform),
    ("svdvals", lambda l, a: l.svdvals(a), [(3, 4), (2, 4, 3)], uniform),
    ("qr", lambda l, a: l.qr(a), [(4, 3), (2, 3, 4)], uniform),
    ("qr_complete", lambda l, a: l.qr(a, mode="complete"), [(4, 3)], uniform),
    ("pinv", lambda l, a: l.pinv(a), [(4, 3), (2, 3, 4)], uniform),
    ("pinv_rtol", lambda l, a: l.pinv(a, rtol=0.5), [(4, 3)], uniform),
    ("matrix_rank", lambda l, a: l.matrix_rank(a), [(4, 3), (2, 3, 3)], uniform),
    ("trace", lambda l, a: l.trace(a, offset=1), [(3, 4), (2, 3, 3)], uniform),
    ("diagonal", lambda l, a: l.diagonal(a, offset=-1), [(3, 4), (2, 3, 3)], uniform),
    ("outer", lambda l, a: l.outer(a[0, :], a[1, :]), [(2, 3)], uniform),
    ("cross", lambda l, a: l.cross(a, a[..., ::-1] + 1.0), [(2, 3)], uniform),
] + [(f"matrix_norm_{o}", (lambda o: lambda l, a: l.matrix_norm(a, ord=o))(o), [(3, 4), (2, 3, 3)], uniform)
     for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)] + [
    (f"matrix_power_{p}", (lambda p: lambda l, a: l.matrix_power(a, p))(p), [(3, 3), (2, 3, 3)], M)
    for p in (0, 1, 2, 3, 6, 7, -1, -3)]


@pytest.mark.parametrize("name,fn,shapes,gen", [pytest.param(*f, id=f[0]) for f in FORWARD])
def test_forward_equals_backend(device, name, fn, shapes, gen):
    rng = np.random.default_rng(7)
    for shape in shapes:
        x = gt.asarray(gen(shape, rng), device=device)
        got = fn(gt.linalg, x)
        want = fn(x.backend.xp.linalg, x.data)
        if isinstance(want, tuple):
            assert isinstance(got, tuple) and type(got).__name__ == type(want).__name__
            assert got._fields == want._fields
        else:
            got, want = (got,), (want,)
        for g, w in zip(got, want):
            assert isinstance(g, gt.Tensor) and g.device == x.device
            w = gt.to_numpy(wrap(w, x.backend))
            g = gt.to_numpy(g)
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


def test_float32_stays_float32(device):
    rng = np.random.default_rng(3)
    a = gt.asarray(spd((3, 3), rng).astype(np.float32), device=device)
    for f in (L.inv, L.det, L.cholesky, lambda x: L.eigh(x).eigenvectors, lambda x: L.svd(x).U, L.pinv,
              lambda x: L.qr(x).R, L.matrix_norm, L.trace, L.diagonal):
        assert f(a).dtype == gt.float32
        g = gt.grad(lambda x: gt.sum(f(x)))(a)
        assert g.dtype == gt.float32 and g.shape == a.shape


# ---- batched derivatives (cotangents/tangents with leading batch axes) ---------------------------

@pytest.mark.parametrize("name,fn,shape,gen", [
    ("inv", L.inv, (2, 3, 3), M), ("det", L.det, (2, 3, 3), M),
    ("slogdet", lambda a: L.slogdet(a).logabsdet, (3, 3), M), ("solve", lambda a: L.solve(a, a[0]), (2, 3, 3), M),
    ("cholesky", lambda a: L.cholesky(sym(a)), (2, 3, 3), spd), ("eigh", eigh_all, (3, 3), sym_distinct),
    ("eigvalsh", lambda a: L.eigvalsh(sym(a)), (2, 3, 3), sym_distinct), ("svd", svd_all, (2, 4, 3), sv_distinct),
    ("svd_full", lambda a: svd_all(a, True), (3, 2), sv_distinct), ("svdvals", L.svdvals, (3, 4), sv_distinct),
    ("qr", qr_all, (2, 4, 3), uniform), ("qr_wide", qr_all, (3, 4), M), ("qr_wide_Q", lambda a: L.qr(a).Q, (3, 4), M),
    ("qr_complete_R", lambda a: L.qr(a, mode="complete").R, (4, 3), uniform),
    ("eigh_vectors", lambda a: L.eigh(sym(a)).eigenvectors ** 2, (2, 3, 3), sym_distinct),
    ("svd_U", lambda a: L.svd(a, full_matrices=False).U ** 2, (3, 4), sv_distinct), ("pinv", L.pinv, (4, 3), sv_distinct),
    ("matrix_norm_nuc", lambda a: L.matrix_norm(a, ord="nuc"), (2, 3, 3), sv_distinct),
    ("matrix_norm_inf", lambda a: L.matrix_norm(a, ord=math.inf), (2, 3, 3), away),
    ("cross", lambda a: L.cross(a, a[0]), (2, 3), uniform), ("trace", lambda a: L.trace(a, offset=-1), (2, 3, 3), uniform),
    ("diagonal", lambda a: L.diagonal(a, offset=1), (2, 3, 4), uniform),
    ("matrix_power", lambda a: L.matrix_power(a, -2), (2, 3, 3), M),
])
def test_batched_jacobian_forward_equals_reverse(device, name, fn, shape, gen):
    """gt.jacobian pushes every basis vector in one batched pass: both modes agree with one VJP per row."""
    x = gt.asarray(gen(shape, np.random.default_rng(5)), device=device)
    jf = gt.to_numpy(gt.jacobian(fn, mode="forward")(x))
    jr = gt.to_numpy(gt.jacobian(fn, mode="reverse")(x))
    y, back = gt.vjp(fn, x)
    rows = []
    for i in range(y.size):
        e = np.zeros(y.size)
        e[i] = 1.0
        rows.append(gt.to_numpy(back(gt.asarray(e.reshape(y.shape), device=device))[0]))
    want = np.stack(rows).reshape(y.shape + x.shape)
    np.testing.assert_allclose(jf, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(jr, want, rtol=1e-9, atol=1e-9)


def test_hessian_of_logdet():
    """∂² log det A / ∂A² [E] = -A⁻¹ E A⁻¹ (transposed layout), through the batched hessian."""
    rng = np.random.default_rng(2)
    a = spd((3, 3), rng)
    h = gt.to_numpy(gt.hessian(lambda x: L.slogdet(x).logabsdet)(gt.asarray(a)))
    ai = np.linalg.inv(a)
    want = -np.einsum("jk,li->ijkl", ai, ai)
    np.testing.assert_allclose(h, want, rtol=1e-8, atol=1e-10)


# ---- known values and conventions ------------------------------------------------------------------

def test_closed_forms():
    rng = np.random.default_rng(11)
    a = general((3, 3), rng)
    x = gt.asarray(a)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(L.det)(x)), np.linalg.det(a) * np.linalg.inv(a).T)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(lambda t: L.slogdet(t).logabsdet)(x)), np.linalg.inv(a).T)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(lambda t: L.trace(t))(x)), np.eye(3))
    np.testing.assert_allclose(gt.to_numpy(gt.grad(lambda t: gt.sum(L.inv(t)))(x)),
                               -np.linalg.inv(a).T @ np.ones((3, 3)) @ np.linalg.inv(a).T, rtol=1e-12)
    s = sym_distinct((3, 3), rng)
    w, v = np.linalg.eigh(s)
    g = gt.to_numpy(gt.grad(lambda t: L.eigvalsh(t)[2])(gt.asarray(s)))
    np.testing.assert_allclose(g, np.outer(v[:, 2], v[:, 2]), atol=1e-12)
    b = sv_distinct((4, 3), rng)
    u, sv, vh = np.linalg.svd(b, full_matrices=False)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(lambda t: L.matrix_norm(t, ord="nuc"))(gt.asarray(b))),
                               u @ vh, atol=1e-12)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(lambda t: L.matrix_norm(t, ord=2))(gt.asarray(b))),
                               np.outer(u[:, 0], vh[0]), atol=1e-12)


def test_symmetric_input_convention():
    """cholesky/eigh/eigvalsh gradients are symmetric (w.r.t. the symmetric matrix), as in PyTorch and JAX."""
    rng = np.random.default_rng(4)
    a = gt.asarray(spd((3, 3), rng))
    for f in (lambda t: gt.sum(L.cholesky(t) * gt.asarray(rng.normal(size=(3, 3)))),
              lambda t: gt.sum(L.eigvalsh(t) ** 3),
              lambda t: gt.sum(L.eigh(t).eigenvectors ** 2 * gt.asarray(rng.normal(size=(3, 3))))):
        g = gt.to_numpy(gt.grad(f)(a))
        np.testing.assert_allclose(g, g.T, atol=1e-12)


def test_eigh_repeated_eigenvalues():
    """Eigenvalue-only gradients are defined at ties; eigenvector gradients there are inf/NaN (documented)."""
    x = gt.eye(3)
    g = gt.grad(lambda t: gt.sum(L.eigh(t).eigenvalues * gt.asarray([1.0, 2.0, 3.0])))(x)
    assert np.all(np.isfinite(gt.to_numpy(g)))
    np.testing.assert_allclose(np.trace(gt.to_numpy(g)), 6.0)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(lambda t: gt.sum(L.eigvalsh(t)))(x)), np.eye(3), atol=1e-12)
    with np.errstate(all="ignore"):
        g = gt.grad(lambda t: gt.sum(L.eigh(t).eigenvectors[:, 0] ** 2 * gt.asarray([1.0, 2.0, 3.0])))(x)
    assert not np.all(np.isfinite(gt.to_numpy(g)))


def test_svd_repeated_singular_values():
    x = gt.eye(3) * 2.0
    g = gt.grad(lambda t: gt.sum(L.svdvals(t)))(x)
    np.testing.assert_allclose(gt.to_numpy(g), np.eye(3), atol=1e-12)
    g = gt.grad(lambda t: L.svd(t).S[0])(x)
    assert np.all(np.isfinite(gt.to_numpy(g)))


def test_matrix_rank_is_not_differentiable(device):
    x = gt.asarray([[1.0, 2.0], [2.0, 4.0]], device=device)
    x.requires_grad_()
    r = L.matrix_rank(x)
    assert int(gt.to_numpy(r)) == 1 and not r.requires_grad


def test_results_are_named_tuples():
    a = gt.asarray(spd((3, 3), np.random.default_rng(0)))
    assert L.eigh(a)._fields == ("eigenvalues", "eigenvectors")
    assert L.svd(a)._fields == ("U", "S", "Vh")
    assert L.qr(a)._fields == ("Q", "R")
    assert L.slogdet(a)._fields == ("sign", "logabsdet")
    U, S, Vh = L.svd(a)
    assert all(isinstance(t, gt.Tensor) for t in (U, S, Vh))


def test_mixed_use_of_outputs_accumulates():
    """Cotangents from several outputs of one decomposition (and repeated uses of one) add up."""
    rng = np.random.default_rng(8)
    a = gt.asarray(sv_distinct((3, 3), rng))
    check_grads(lambda t: (lambda r: gt.sum(r.S) * r.U[0, 0] ** 2 + gt.sum(r.Vh ** 2 * r.S[1]))(L.svd(t)),
                (a,), order=2)


@pytest.mark.parametrize("call", [
    lambda: L.inv(gt.ones((2, 3))), lambda: L.det(gt.ones((3,))), lambda: L.eigh(gt.ones((2, 3))),
    lambda: L.qr(gt.ones((3, 3)), mode="r"), lambda: L.matrix_norm(gt.ones((3, 3)), ord=3),
    lambda: L.cross(gt.ones((4,)), gt.ones((4,))), lambda: L.outer(gt.ones((2, 2)), gt.ones((2,))),
])
def test_bad_arguments_are_value_errors(call):
    with pytest.raises(ValueError, match="gradtape.linalg"):
        call()


def test_complex_inputs_are_differentiable_in_pytorchs_convention():
    a = np.array([[2 + 1j, 0.3 - 0.2j], [0.1 + 0.5j, 1.5 - 0.7j]])
    want = np.conj(np.linalg.det(a) * np.linalg.inv(a).T)        # d Re(det A) / d A, PyTorch's .grad
    assert L.inv(gt.asarray(a)).dtype == gt.complex128
    assert np.allclose(gt.to_numpy(gt.grad(lambda m: gt.real(L.det(m)))(gt.asarray(a))), want)
    x = gt.asarray(a).requires_grad_()       # a complex leaf: its .grad in the same convention
    gt.real(L.det(x)).backward()
    assert np.allclose(gt.to_numpy(x.grad), want)


@pytest.mark.parametrize("name,f,shape,gen", [
    ("eigvalsh", lambda a: gt.sum(L.eigvalsh(sym(a)) ** 3), (3, 3), sym_distinct),
    ("eigh", lambda a: gt.sum(eigh_all(a) ** 2), (3, 3), sym_distinct),
    ("svd", lambda a: gt.sum(svd_all(a) ** 2), (4, 3), sv_distinct),
    ("qr", lambda a: gt.sum(qr_all(a) ** 3), (3, 4), general),
    ("cholesky", lambda a: gt.sum(L.cholesky(sym(a)) ** 3), (3, 3), spd),
    ("pinv", lambda a: gt.sum(L.pinv(a) ** 3), (3, 4), sv_distinct),
    ("matrix_norm_nuc", lambda a: L.matrix_norm(a, ord="nuc") ** 2, (3, 4), sv_distinct),
])
def test_hessian_matches_finite_differences_of_the_gradient(device, name, f, shape, gen):
    """gt.hessian (batched, derivatives of the rules themselves) is symmetric and agrees with FD of gt.grad."""
    a = gen(shape, np.random.default_rng(0))
    n = a.size
    h = gt.to_numpy(gt.hessian(f)(gt.asarray(a, device=device))).reshape(n, n)
    eps = 1e-6
    cols = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        e = e.reshape(shape)
        gp, gm = (gt.to_numpy(gt.grad(f)(gt.asarray(a + s * e, device=device))) for s in (1, -1))
        cols.append(((gp - gm) / (2 * eps)).reshape(n))
    np.testing.assert_allclose(h, np.stack(cols, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-10)
