"""gt.linalg on complex64/complex128 matrices, differentiable in PyTorch's convention, checked against torch.

For a real loss L of a complex A, ``gt.grad`` gives what torch's ``.grad`` holds (dL/dRe A + i dL/dIm A). Every
gt.linalg function is checked on random well-conditioned matrices (Hermitian positive definite for cholesky and
eigh, distinct spectra for eigh and svd), single and stacked: values against NumPy, gradients (``gt.grad``, and
``.backward()`` through real leaves x + i y) and ``gt.jvp`` against torch, second order for inv, det, solve,
cholesky and eigh, complex64 with looser tolerances, array-api-strict, ``gt.vmap``. Hermitian inputs are read as
herm(A) = (A + Aᴴ)/2, so the oracle is torch's function of herm(A). Eigenvectors and singular vectors have an
arbitrary phase: only gauge-invariant losses (|V|², V diag(f(w)) Vᴴ, U diag(S) Vh, u₁v₁ᴴ) are defined, as torch
documents; the tests use those. Last, a bounded run of the differential fuzzer tests/difftest/complex_linalg.py.
"""
from __future__ import annotations

import math
import warnings
import zlib

import array_api_compat.numpy as xp

import numpy as np
import pytest

import gradtape as gt
from gradtape._ops import linalg as OL
from tests.difftest import complex_linalg as F

torch = pytest.importorskip("torch")
gl, tl = gt.linalg, torch.linalg


# ---- inputs --------------------------------------------------------------------------------------------------------
def _cz(rng, shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _general(rng, b, n=3, m=None):
    """Well-conditioned (diagonally dominated) square, or an (n, m) matrix with distinct singular values."""
    a = _cz(rng, b + (n, m or n)) * 0.3
    k = min(n, m or n)
    d = np.zeros((n, m or n))
    d[range(k), range(k)] = np.arange(2.0, 2.0 + 1.5 * k, 1.5)[:k]
    return a + d


def _hpd(rng, b, n=3):
    """Hermitian positive definite with distinct eigenvalues."""
    a = _cz(rng, b + (n, n)) * 0.3
    return a @ np.conj(np.swapaxes(a, -1, -2)) + np.diag(np.arange(1.0, 1.0 + 2 * n, 2.0))


def _vec(rng, b, n=3):
    return _cz(rng, b + (n,))


def _th(a):                       # herm(A), as gradtape reads a Hermitian input
    return (a + a.mH) / 2


def _gabs2(v):
    return gt.real(v * gt.conj(v))


def _tabs2(v):
    return (v * v.conj()).real


def _gmH(v):
    return gt.conj(gt.matrix_transpose(v))


# (name, gradtape fn, torch fn, input makers): fns return a tuple of gauge-invariant outputs
CASES = [
    ("inv", lambda a: (gl.inv(a),), lambda a: (tl.inv(a),), [_general]),
    ("det", lambda a: (gl.det(a),), lambda a: (tl.det(a),), [_general]),
    ("slogdet", lambda a: tuple(gl.slogdet(a)), lambda a: tuple(tl.slogdet(a)), [_general]),
    ("solve", lambda a, b: (gl.solve(a, b),), lambda a, b: (tl.solve(a, b),), [_general, _general]),
    ("solve_vec", lambda a, b: (gl.solve(a, b),), lambda a, b: (tl.solve(a, b),),
     [_general, lambda r, b: _vec(r, ())]),  # (a 1-D b is a vector, broadcast against a stack)
    ("cholesky", lambda a: (gl.cholesky(a),), lambda a: (tl.cholesky(_th(a)),), [_hpd]),
    ("cholesky_upper", lambda a: (gl.cholesky(a, upper=True),), lambda a: (tl.cholesky(_th(a), upper=True),), [_hpd]),
    ("eigh", lambda a: (lambda w, V: (w, _gabs2(V), (V * gt.sin(w)[..., None, :]) @ _gmH(V)))(*gl.eigh(a)),
     lambda a: (lambda w, V: (w, _tabs2(V), (V * torch.sin(w)[..., None, :]) @ V.mH))(*tl.eigh(_th(a))), [_hpd]),
    ("eigvalsh", lambda a: (gl.eigvalsh(a),), lambda a: (tl.eigvalsh(_th(a)),), [_hpd]),
    ("svd", lambda a: (lambda U, S, Vh: (S, _gabs2(U), _gabs2(Vh), (U * S[..., None, :] ** 2) @ Vh))(
        *gl.svd(a, full_matrices=False)),
     lambda a: (lambda U, S, Vh: (S, _tabs2(U), _tabs2(Vh), (U * S[..., None, :] ** 2) @ Vh))(
        *tl.svd(a, full_matrices=False)), [lambda r, b: _general(r, b, 4, 3)]),
    ("svd_wide_full", lambda a: (lambda U, S, Vh: (S, U[..., :, :1] * Vh[..., :1, :]))(*gl.svd(a)),
     lambda a: (lambda U, S, Vh: (S, U[..., :, :1] * Vh[..., :1, :]))(*tl.svd(a)),
     [lambda r, b: _general(r, b, 3, 5)]),
    ("svdvals", lambda a: (gl.svdvals(a),), lambda a: (tl.svdvals(a),), [lambda r, b: _general(r, b, 3, 4)]),
    ("qr", lambda a: tuple(gl.qr(a)), lambda a: tuple(tl.qr(a)), [lambda r, b: _general(r, b, 4, 3)]),
    ("qr_wide", lambda a: tuple(gl.qr(a)), lambda a: tuple(tl.qr(a)), [lambda r, b: _general(r, b, 3, 5)]),
    ("qr_complete", lambda a: (lambda Q, R: (Q[..., :, :3], R[..., :3, :]))(*gl.qr(a, mode="complete")),
     lambda a: tuple(tl.qr(a)), [lambda r, b: _general(r, b, 4, 3)]),    # (torch: not differentiable)
    ("pinv", lambda a: (gl.pinv(a),), lambda a: (tl.pinv(a),), [lambda r, b: _general(r, b, 4, 3)]),
    ("pinv_wide", lambda a: (gl.pinv(a),), lambda a: (tl.pinv(a),), [lambda r, b: _general(r, b, 2, 4)]),
    *[(f"matrix_norm_{o}", (lambda o: lambda a: (gl.matrix_norm(a, ord=o),))(o),
       (lambda o: lambda a: (tl.matrix_norm(a, ord=o),))(o), [lambda r, b: _general(r, b, 3, 4)])
      for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)],
    ("matrix_power_3", lambda a: (gl.matrix_power(a, 3),), lambda a: (tl.matrix_power(a, 3),), [_general]),
    ("matrix_power_-2", lambda a: (gl.matrix_power(a, -2),), lambda a: (tl.matrix_power(a, -2),), [_general]),
    ("trace", lambda a: (gl.trace(a, offset=1),), lambda a: (torch.diagonal(a, offset=1, dim1=-2, dim2=-1).sum(-1),),
     [lambda r, b: _general(r, b, 3, 4)]),
    ("diagonal", lambda a: (gl.diagonal(a, offset=-1),), lambda a: (torch.diagonal(a, offset=-1, dim1=-2, dim2=-1),),
     [lambda r, b: _general(r, b, 3, 4)]),
    ("cross", lambda a, b: (gl.cross(a, b),), lambda a, b: (tl.cross(a, b),), [_vec, _vec]),
    ("matmul", lambda a, b: (gl.matmul(a, b),), lambda a, b: (tl.matmul(a, b),), [_general, _general]),
    ("tensordot", lambda a, b: (gl.tensordot(a, b, axes=1),), lambda a, b: (torch.tensordot(a, b, dims=1),),
     [_general, lambda r, b: _general(r, ())]),
    ("vecdot", lambda a, b: (gl.vecdot(a, b),), lambda a, b: (tl.vecdot(a, b),), [_vec, _vec]),
    *[(f"vector_norm_{o}", (lambda o: lambda a: (gl.vector_norm(a, axis=-1, ord=o),))(o),
       (lambda o: lambda a: (tl.vector_norm(a, dim=-1, ord=o),))(o), [_vec]) for o in (2, 1, 3, math.inf, -math.inf)],
]
IDS = [c[0] for c in CASES]
BY = {c[0]: c for c in CASES}
OUTER = ("outer", lambda a, b: (gl.outer(a, b),), lambda a, b: (torch.outer(a, b),), [_vec, _vec])  # 1-D only


def _inputs(name, makers, batch, seed=0):
    rng = np.random.default_rng(zlib.crc32(repr((name, batch, seed)).encode()) % 2**32)
    return [m(rng, batch) for m in makers]


def _weights(outs, seed=1):
    rng = np.random.default_rng(seed)
    return [_cz(rng, tuple(o.shape)) for o in outs]


def _gloss(fn, ws):
    def loss(*xs):
        total = 0
        for o, w in zip(fn(*xs), ws):
            total = total + gt.sum(gt.real(o * gt.asarray(np.conj(w), device=o.device)))
        return total
    return loss


def _tloss(fn, ws):
    def loss(*xs):
        total = 0
        for o, w in zip(fn(*xs), ws):
            total = total + torch.sum(torch.real(o * torch.tensor(np.conj(w))))
        return total
    return loss


def _torch_grads(tfn, xs):
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    outs = tfn(*ts)
    ws = _weights(outs)
    _tloss(tfn, ws)(*ts).backward()
    return [t.grad.resolve_conj().numpy() for t in ts], ws, [o.detach().resolve_conj().numpy() for o in outs]


def _close(got, want, rtol=1e-8, atol=1e-10):
    np.testing.assert_allclose(gt.to_numpy(got), want, rtol=rtol, atol=atol)


# ---- values ----------------------------------------------------------------------------------------------------------
FORWARD = [  # (name, gradtape call, NumPy call, input makers)
    ("inv", gl.inv, np.linalg.inv, [_general]), ("det", gl.det, np.linalg.det, [_general]),
    ("slogdet", lambda a: tuple(gl.slogdet(a)), lambda a: tuple(np.linalg.slogdet(a)), [_general]),
    ("solve", gl.solve, np.linalg.solve, [_general, _general]),
    ("cholesky", gl.cholesky, np.linalg.cholesky, [_hpd]),
    ("cholesky_upper", lambda a: gl.cholesky(a, upper=True), lambda a: np.linalg.cholesky(a, upper=True), [_hpd]),
    ("eigh", lambda a: tuple(gl.eigh(a)), lambda a: tuple(np.linalg.eigh(a)), [_hpd]),
    ("eigvalsh", gl.eigvalsh, np.linalg.eigvalsh, [_hpd]),
    ("svd", lambda a: tuple(gl.svd(a)), lambda a: tuple(np.linalg.svd(a)), [lambda r, b: _general(r, b, 4, 3)]),
    ("svdvals", gl.svdvals, np.linalg.svdvals, [lambda r, b: _general(r, b, 4, 3)]),
    ("qr", lambda a: tuple(gl.qr(a)), lambda a: tuple(np.linalg.qr(a)), [lambda r, b: _general(r, b, 4, 3)]),
    ("pinv", gl.pinv, np.linalg.pinv, [lambda r, b: _general(r, b, 4, 3)]),
    *[(f"matrix_norm_{o}", (lambda o: lambda a: gl.matrix_norm(a, ord=o))(o),
       (lambda o: lambda a: np.linalg.matrix_norm(a, ord=o))(o), [lambda r, b: _general(r, b, 3, 4)])
      for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)],
    ("matrix_power", lambda a: gl.matrix_power(a, -3), lambda a: np.linalg.matrix_power(a, -3), [_general]),
    ("matrix_rank", gl.matrix_rank, np.linalg.matrix_rank, [lambda r, b: _general(r, b, 3, 4)]),
    ("trace", gl.trace, lambda a: np.linalg.trace(a), [_general]),
    ("diagonal", gl.diagonal, lambda a: np.linalg.diagonal(a), [_general]),
    ("cross", gl.cross, np.linalg.cross, [_vec, _vec]),
    ("vecdot", gl.vecdot, np.linalg.vecdot, [_vec, _vec]),
    ("vector_norm", gl.vector_norm, np.linalg.vector_norm, [_vec]),
    ("vector_norm_3", lambda a: gl.vector_norm(a, ord=3, axis=-1), lambda a: np.linalg.vector_norm(a, ord=3, axis=-1),
     [_vec]),
]


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name,fn,npfn,makers", FORWARD, ids=[f[0] for f in FORWARD])
def test_values_match_numpy(name, fn, npfn, makers, dtype):
    xs = [x.astype(dtype) for x in _inputs(name, makers, (2,))]
    got, want = fn(*map(gt.asarray, xs)), npfn(*xs)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert str(g.dtype) == str(w.dtype) and tuple(g.shape) == w.shape
        np.testing.assert_allclose(gt.to_numpy(g), w, rtol=1e-12 if dtype == "complex128" else 1e-5)


def test_values_on_array_api_strict_equal_numpy():
    """array-api-strict has complex linalg: the same values (its arrays are NumPy's underneath) and gradients."""
    for name, fn, npfn, makers in FORWARD:
        if name in ("matrix_rank",):
            continue
        xs = _inputs(name, makers, ())
        got = fn(*[gt.asarray(x, device="strict") for x in xs])
        got = got if isinstance(got, tuple) else (got,)
        want = fn(*map(gt.asarray, xs))
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert g.device == "strict"
            np.testing.assert_allclose(gt.to_numpy(g), gt.to_numpy(w), rtol=1e-12, atol=1e-14, err_msg=name)


# ---- first order: gt.grad, .backward(), gt.jvp against torch -------------------------------------------------------
@pytest.mark.parametrize("batch", [(), (2,)], ids=["single", "stack"])
@pytest.mark.parametrize("name,fn,tfn,makers", CASES, ids=IDS)
def test_grad_matches_torch(name, fn, tfn, makers, batch):
    xs = _inputs(name, makers, batch)
    tgrads, ws, touts = _torch_grads(tfn, xs)
    gxs = [gt.asarray(x) for x in xs]
    for o, t in zip(fn(*gxs), touts):
        _close(o, t, 1e-10, 1e-12)
    grads = gt.grad(_gloss(fn, ws), argnums=tuple(range(len(xs))))(*gxs)
    for g, t, x in zip(grads, tgrads, gxs):
        assert g.dtype == x.dtype and g.shape == x.shape
        _close(g, t)


def test_outer_grad_matches_torch():
    test_grad_matches_torch(*OUTER, ())


@pytest.mark.parametrize("name", ["inv", "slogdet", "cholesky", "eigh", "svd", "qr", "pinv", "matrix_norm_nuc",
                                  "matrix_norm_1", "vector_norm_2", "solve"])
def test_backward_through_real_leaves_matches_torch(name):
    """.backward() with A = X + iY of real leaves X, Y: X.grad + i Y.grad is torch's A.grad (its definition)."""
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, (2,))
    tgrads, ws, _ = _torch_grads(tfn, xs)
    parts = [(gt.asarray(x.real).requires_grad_(), gt.asarray(x.imag).requires_grad_()) for x in xs]
    with gt.record():
        loss = _gloss(fn, ws)(*[re + 1j * im for re, im in parts])
    loss.backward()
    for (re, im), t in zip(parts, tgrads):
        np.testing.assert_allclose(gt.to_numpy(re.grad) + 1j * gt.to_numpy(im.grad), t, rtol=1e-8, atol=1e-10)


def test_backward_on_a_complex_leaf():
    """A complex leaf's .grad after .backward() is torch's, where requires_grad_ takes complex tensors; until then
    the refusal names the dtype (gradtape._core.tensor; gt.grad/gt.vjp are the complex-argument route)."""
    _, fn, tfn, makers = BY["inv"]
    xs = _inputs("inv", makers, ())
    tgrads, ws, _ = _torch_grads(tfn, xs)
    x = gt.asarray(xs[0])
    try:
        x.requires_grad_()
    except TypeError as e:
        assert "complex" in str(e)
        return
    _gloss(fn, ws)(x).backward()
    np.testing.assert_allclose(gt.to_numpy(x.grad), tgrads[0], rtol=1e-8, atol=1e-10)


def test_vjp_with_a_complex_cotangent_matches_torch():
    rng = np.random.default_rng(7)
    a, ct = _general(rng, ()), _cz(rng, (3, 3))
    out, back = gt.vjp(gl.inv, gt.asarray(a))
    (g,) = back(gt.asarray(ct))
    ta = torch.tensor(a, requires_grad=True)
    tl.inv(ta).backward(torch.tensor(ct))
    _close(g, ta.grad.numpy())


def _tangents(xs, seed=3):
    rng = np.random.default_rng(seed)
    return [_cz(rng, x.shape) for x in xs]


@pytest.mark.parametrize("batch", [(), (2,)], ids=["single", "stack"])
@pytest.mark.parametrize("name,fn,tfn,makers", CASES, ids=IDS)
def test_jvp_matches_torch(name, fn, tfn, makers, batch):
    xs = _inputs(name, makers, batch)
    ts = _tangents(xs)
    outs, tans = gt.jvp(fn, tuple(map(gt.asarray, xs)), tuple(map(gt.asarray, ts)))
    touts, ttans = torch.func.jvp(tfn, tuple(map(torch.tensor, xs)), tuple(map(torch.tensor, ts)))
    for o, t, to, tt in zip(outs, tans, touts, ttans):
        _close(o, to.resolve_conj().numpy(), 1e-10, 1e-12)
        assert t.dtype == o.dtype
        _close(t, tt.resolve_conj().numpy())


def test_outer_jvp_matches_torch():
    test_jvp_matches_torch(*OUTER, ())


# ---- second order --------------------------------------------------------------------------------------------------
SECOND = ["inv", "det", "slogdet", "solve", "cholesky", "cholesky_upper", "eigh", "eigvalsh", "svd", "qr", "pinv"]


@pytest.mark.parametrize("name", SECOND)
def test_grad_of_grad_matches_torch(name):
    """The gradient of Re(sum(conj(v) · grad(L)(A))): reverse over reverse through the complex rules."""
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, ())
    ws = _weights(tfn(*map(torch.tensor, xs)))
    vs = _tangents(xs, 5)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    gs = torch.autograd.grad(_tloss(tfn, ws)(*ts), ts, create_graph=True)
    sum((g * torch.tensor(v).conj()).real.sum() for g, v in zip(gs, vs)).backward()
    argn = tuple(range(len(xs)))

    def inner(*a):
        g = gt.grad(_gloss(fn, ws), argnums=argn)(*a)
        return sum(gt.sum(gt.real(gi * gt.asarray(np.conj(v)))) for gi, v in zip(g, vs))
    got = gt.grad(inner, argnums=argn)(*map(gt.asarray, xs))
    for g, t in zip(got, ts):
        _close(g, t.grad.numpy(), 1e-7, 1e-9)


@pytest.mark.parametrize("name", ["inv", "det", "solve", "cholesky", "eigh"])
def test_forward_over_reverse_matches_torch(name):
    """gt.jvp of gt.grad and gt.hvp (Hessian-vector products, forward over reverse) against torch.func."""
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, ())
    ws = _weights(tfn(*map(torch.tensor, xs)))
    vs = _tangents(xs, 6)
    argn = tuple(range(len(xs)))
    _, got = gt.jvp(lambda *a: gt.grad(_gloss(fn, ws), argnums=argn)(*a), tuple(map(gt.asarray, xs)),
                    tuple(map(gt.asarray, vs)))
    tgrad = lambda *a: torch.func.grad(_tloss(tfn, ws), argnums=argn)(*a)    # noqa: E731  (as .grad)
    _, want = torch.func.jvp(tgrad, tuple(map(torch.tensor, xs)), tuple(map(torch.tensor, vs)))
    for g, w in zip(got, want):
        _close(g, w.resolve_conj().numpy(), 1e-7, 1e-9)
    if len(xs) == 1:                   # gt.hvp is that product
        _close(gt.hvp(_gloss(fn, ws), gt.asarray(xs[0]), gt.asarray(vs[0])), want[0].resolve_conj().numpy(), 1e-7, 1e-9)


# ---- complex64, strict, vmap, errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "svd", "svdvals",
                                  "qr", "pinv", "matrix_norm_fro", "matrix_norm_2", "matrix_power_-2", "vector_norm_2"])
def test_complex64_gradients_and_jvps(name):
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, (2,))
    tgrads, ws, _ = _torch_grads(tfn, xs)
    x64 = [gt.asarray(x.astype(np.complex64)) for x in xs]
    grads = gt.grad(_gloss(fn, ws), argnums=tuple(range(len(xs))))(*x64)
    for g, t in zip(grads, tgrads):
        assert g.dtype == gt.complex64
        np.testing.assert_allclose(gt.to_numpy(g), t, rtol=2e-3, atol=2e-4)
    ts = _tangents(xs)
    _, tans = gt.jvp(fn, tuple(x64), tuple(gt.asarray(t.astype(np.complex64)) for t in ts))
    _, ttans = torch.func.jvp(tfn, tuple(map(torch.tensor, xs)), tuple(map(torch.tensor, ts)))
    for t, tt in zip(tans, ttans):
        assert t.dtype in (gt.complex64, gt.float32)
        np.testing.assert_allclose(gt.to_numpy(t), tt.resolve_conj().numpy(), rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("name", ["inv", "slogdet", "cholesky", "eigh", "svd", "qr", "pinv", "matrix_norm_-1"])
def test_gradients_on_array_api_strict_match_torch(name):
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, (2,))
    tgrads, ws, _ = _torch_grads(tfn, xs)
    gxs = [gt.asarray(x, device="strict") for x in xs]
    grads = gt.grad(_gloss(fn, ws), argnums=tuple(range(len(xs))))(*gxs)
    for g, t in zip(grads, tgrads):
        assert g.device == "strict"
        _close(g, t)
    _, tans = gt.jvp(fn, tuple(gxs), tuple(gt.asarray(t, device="strict") for t in _tangents(xs)))
    _, ttans = torch.func.jvp(tfn, tuple(map(torch.tensor, xs)), tuple(map(torch.tensor, _tangents(xs))))
    for t, tt in zip(tans, ttans):
        _close(t, tt.resolve_conj().numpy())


@pytest.mark.parametrize("name", ["inv", "slogdet", "cholesky", "eigh", "svd", "qr", "pinv", "matrix_norm_nuc"])
def test_vmap_of_grad_equals_per_example(name):
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, (3,))
    ws = _weights(fn(*[gt.asarray(x[0]) for x in xs]))
    f = _gloss(fn, ws)
    got = gt.vmap(gt.grad(f))(*map(gt.asarray, xs))
    want = np.stack([gt.to_numpy(gt.grad(f)(*[gt.asarray(x[i]) for x in xs])) for i in range(3)])
    np.testing.assert_allclose(gt.to_numpy(got), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", ["real_a", "real_b"])
def test_solve_of_a_real_and_a_complex_operand(which):
    """Real with complex promotes (the standard); the real operand's gradient is real: the real part of torch's
    gradient of the promoted operand."""
    rng = np.random.default_rng(13)
    a, b = _general(rng, (2,)), _general(rng, (2,))
    a, b = (a.real, b) if which == "real_a" else (a, b.real)
    w = _cz(rng, (2, 3, 3))
    ta, tb = (torch.tensor(x, requires_grad=True) for x in (a, b))
    (tl.solve(ta.to(torch.complex128), tb.to(torch.complex128)) * torch.tensor(w).conj()).real.sum().backward()
    ga, gb = gt.grad(lambda x, y: gt.sum(gt.real(gl.solve(x, y) * gt.asarray(np.conj(w)))), argnums=(0, 1))(
        gt.asarray(a), gt.asarray(b))
    for g, t, x in ((ga, ta, a), (gb, tb, b)):
        assert str(g.dtype) == str(x.dtype)
        _close(g, t.grad.numpy())


@pytest.mark.parametrize("name", ["inv", "slogdet", "cholesky", "eigh", "svd", "qr", "pinv", "matrix_norm_2"])
def test_vmap_of_jvp_equals_per_example(name):
    _, fn, tfn, makers = BY[name]
    xs, ts = _inputs(name, makers, (3,)), _tangents(_inputs(name, makers, (3,)))
    jv = lambda *a: gt.jvp(fn, a[:len(xs)], a[len(xs):])[1]       # noqa: E731
    got = gt.vmap(jv)(*map(gt.asarray, xs + ts))
    for k, g in enumerate(got):
        want = np.stack([gt.to_numpy(jv(*[gt.asarray(x[i]) for x in xs + ts])[k]) for i in range(3)])
        np.testing.assert_allclose(gt.to_numpy(g), want, rtol=1e-10, atol=1e-12)


def test_matrix_rank_of_complex_is_not_differentiable():
    rng = np.random.default_rng(8)
    a = _cz(rng, (3, 2)) @ _cz(rng, (2, 3))
    x = gt.asarray(a)
    r = gt.linalg.matrix_rank(x)
    assert int(r) == 2 == np.linalg.matrix_rank(a) and not r.requires_grad
    g = gt.grad(lambda x: gt.sum(gt.real(x)) * gt.astype(gt.linalg.matrix_rank(x), gt.float64))(x)
    _close(g, np.full((3, 3), 2.0 + 0j))


def test_gradient_descent_on_a_complex_matrix():
    """PyTorch's convention is a descent direction: a step along -grad lowers ‖A⁻¹ - B‖²_F."""
    rng = np.random.default_rng(9)
    a, b = gt.asarray(_general(rng, ())), gt.asarray(_cz(rng, (3, 3)) * 0.1)
    f = lambda a: gl.matrix_norm(gl.inv(a) - b) ** 2          # noqa: E731
    assert float(f(a - 1e-3 * gt.grad(f)(a))) < float(f(a))


def test_hermitian_inputs_read_their_hermitian_part():
    """cholesky/eigh/eigvalsh of a non-Hermitian A are those of herm(A) for the derivatives: the gradient is
    Hermitian, the JVP uses herm(t)."""
    rng = np.random.default_rng(10)
    a, t = _hpd(rng, ()), _cz(rng, (3, 3))
    for f in (lambda a: gt.sum(gt.real(gl.cholesky(a))), lambda a: gt.sum(gl.eigvalsh(a) ** 3),
              lambda a: gt.sum(_gabs2(gl.eigh(a).eigenvectors) * gt.asarray(np.arange(9.0).reshape(3, 3)))):
        g = gt.to_numpy(gt.grad(f)(gt.asarray(a)))
        np.testing.assert_allclose(g, g.conj().T, atol=1e-12)
        _, d1 = gt.jvp(f, (gt.asarray(a),), (gt.asarray(t),))
        _, d2 = gt.jvp(f, (gt.asarray(a),), (gt.asarray((t + t.conj().T) / 2),))
        np.testing.assert_allclose(float(d1), float(d2), rtol=1e-12)


@pytest.mark.parametrize("name", ["cholesky", "cholesky_upper", "eigh", "eigvalsh"])
def test_hermitian_gradients_against_torchs_own(name):
    """Against torch's function of A itself (no herm): eigh's and eigvalsh's gradients are torch's; cholesky's is the
    Hermitian part of torch's (torch's differs by an anti-Hermitian part: no derivative along Hermitian directions)."""
    _, fn, tfn, makers = BY[name]
    tfn_raw = {"cholesky": lambda a: (tl.cholesky(a),), "cholesky_upper": lambda a: (tl.cholesky(a, upper=True),),
               "eigvalsh": lambda a: (tl.eigvalsh(a),),
               "eigh": lambda a: (lambda w, V: (w, _tabs2(V), (V * torch.sin(w)[..., None, :]) @ V.mH))(*tl.eigh(a))}
    xs = _inputs(name, makers, (2,))
    (tg,), ws, _ = _torch_grads(tfn_raw[name], xs)
    (g,) = gt.grad(_gloss(fn, ws), argnums=(0,))(gt.asarray(xs[0]))
    herm = (tg + np.conj(np.swapaxes(tg, -1, -2))) / 2
    _close(g, herm)
    if name.startswith("cholesky"):
        assert not np.allclose(tg, herm)
    else:
        _close(g, tg)


@pytest.mark.parametrize("which", ["svd", "eigh"])
def test_gauge_invariant_losses_do_not_see_the_phase(which, monkeypatch):
    """The singular vectors / eigenvectors rotated by arbitrary phases (another valid decomposition): the gradient
    and the JVP of a gauge-invariant loss do not change. (torch refuses or warns on phase-dependent losses of
    complex svd/eigh; gradtape documents them as undefined.)"""
    rng = np.random.default_rng(11)
    name = "svd" if which == "svd" else "eigh"
    _, fn, tfn, makers = BY[name]
    xs = _inputs(name, makers, (2,))
    ws = _weights(fn(*map(gt.asarray, xs)))
    ts = _tangents(xs)

    def run():
        g = gt.grad(_gloss(fn, ws))(*map(gt.asarray, xs))
        return gt.to_numpy(g), gt.to_numpy(gt.jvp(_gloss(fn, ws), tuple(map(gt.asarray, xs)),
                                                   tuple(map(gt.asarray, ts)))[1])
    before = run()
    prim = OL.svd_p if which == "svd" else OL.eigh_p
    fwd = prim.fwd
    if which == "svd":
        def rotated(xp, x, **p):
            U, S, Vh = fwd(xp, x, **p)
            ph = np.exp(1j * rng.uniform(0, 6.28, S.shape))
            return U * ph[..., None, :], S, Vh * np.conj(ph)[..., :, None]
    else:
        def rotated(xp, x, **p):
            w, V = fwd(xp, x, **p)
            return w, V * np.exp(1j * rng.uniform(0, 6.28, w.shape))[..., None, :]
    monkeypatch.setattr(prim, "fwd", rotated)
    after = run()
    assert not np.allclose(gt.to_numpy(prim.fwd(np, xs[0], **({"full_matrices": False, "shape": (4, 3)}
                                                                if which == "svd" else {}))[-1]),
                           gt.to_numpy(fwd(np, xs[0], **({"full_matrices": False, "shape": (4, 3)}
                                                         if which == "svd" else {}))[-1]))
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


# ---- the differential fuzzer (tests/difftest/complex_linalg.py) -------------------------------------------------
FUZZ_SEEDS = range(40)
_ELEMENTWISE = {"sin", "exp", "conj", "real", "abs", "square", "mH", "add", "multiply", "matmul"}


def _fuzz(seeds):
    return [r for r in (F._check_quiet(F.generate(s), torch) for s in seeds) if r.status != "ok"]


def test_fuzzed_programs_match_torch():
    bad = _fuzz(FUZZ_SEEDS)
    assert not bad, "mismatches (replay: python -m tests.difftest.complex_linalg --n 1 --seed S): " + "; ".join(
        f"seed {r.seed}: {r.detail}" for r in bad[:5])


def test_fuzzer_draws_every_linalg_op():
    seen = {name for s in FUZZ_SEEDS for name, _ in F.generate(s).steps}
    assert not (set(F.OPS) - _ELEMENTWISE) - seen
    assert not set(F.OPS) - {name for s in range(200) for name, _ in F.generate(s).steps}


@pytest.mark.parametrize("rule", ["cholesky", "eigh", "qr"])
def test_a_rule_without_its_complex_adjoint_is_caught(rule, monkeypatch):
    """The rule unwrapped (right on real matrices, the transpose where the conjugate transpose is needed on
    complex ones): the fuzzer finds it, and the real-only check in test_linalg.py could not."""
    prim = {"cholesky": OL.cholesky_p, "eigh": OL.eigh_p, "qr": OL.qr_p}[rule]
    monkeypatch.setattr(prim, "vjp", (prim.vjp[0].__wrapped__,))
    seeds = [s for s in range(200) if any(n.startswith(rule) for n, _ in F.generate(s).steps)][:6]
    assert _fuzz(seeds)


def test_shrinking_keeps_only_the_needed_steps():
    prog = F.Program(0, [("sin", (0,)), ("inv", (2,)), ("exp", (4,))], [None] * 3, None)
    assert F._needed(prog.steps) == [4, 5]


def test_real_rules_are_the_unwrapped_ones():
    """On real inputs the adjoint wrapper calls the rule itself: the real path is what it was."""
    rng = np.random.default_rng(12)
    a = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    s = a @ a.T
    ct = rng.normal(size=(3, 3))
    L = np.linalg.cholesky(s)
    np.testing.assert_array_equal(OL._cholesky_vjp(xp, ct, L, s, upper=False),
                                  OL._cholesky_vjp.__wrapped__(xp, ct, L, s, upper=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gt.grad(lambda a: gt.sum(gl.cholesky(a) ** 2))(gt.asarray(s))
