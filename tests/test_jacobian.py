"""Batched Jacobians and Hessians: forward == reverse == finite differences, on the whole op table."""
import zlib

import numpy as np
import pytest

import gradtape as gt

from test_ops import CASES, _data


def _numeric_jac(f, args, i, eps=1e-6):
    """Central differences w.r.t. args[i], shaped out.shape + args[i].shape (NumPy on the host)."""
    base = [gt.to_numpy(a) if isinstance(a, gt.Tensor) else a for a in args]
    dev = args[i].device
    out = gt.to_numpy(f(*args))
    x = base[i]
    J = np.zeros(out.shape + x.shape)
    for k in np.ndindex(*x.shape):
        hi, lo = x.copy(), x.copy()
        hi[k] += eps
        lo[k] -= eps
        a_hi = list(args)
        a_lo = list(args)
        a_hi[i] = gt.asarray(hi, device=dev)
        a_lo[i] = gt.asarray(lo, device=dev)
        J[(Ellipsis,) + k] = (gt.to_numpy(f(*a_hi)) - gt.to_numpy(f(*a_lo))) / (2 * eps)
    return J


@pytest.mark.parametrize("op,shapes", CASES)
def test_batched_jacobian_forward_reverse_numeric(device, op, shapes):
    rng = np.random.default_rng(zlib.crc32(repr(op.name).encode()) % 2**32)
    args = [gt.asarray(a, device=device) for a in _data(op, shapes, rng)]
    wrt = tuple(i for i, a in enumerate(args) if gt.isdtype(a.dtype, "real floating"))
    out = op.fn(*args)
    for mode in ("forward", "reverse"):
        Js = gt.jacobian(op.fn, argnums=wrt, mode=mode)(*args)
        assert isinstance(Js, tuple) and len(Js) == len(wrt)
        for i, J in zip(wrt, Js):
            assert J.shape == out.shape + args[i].shape, (mode, J.shape)
            assert not J.requires_grad
            if J.size:
                np.testing.assert_allclose(gt.to_numpy(J), _numeric_jac(op.fn, args, i), rtol=1e-4, atol=1e-6,
                                           err_msg=f"{mode} Jacobian w.r.t. arg{i}")


SMOOTH = {
    "sin-sum": lambda x: gt.sum(gt.sin(x) * x),
    "quartic": lambda x: gt.sum(x ** 4) + gt.prod(x[:2]),
    "logsumexp": lambda x: gt.nn.logsumexp(x * x),
    "matrix": lambda x: gt.sum(gt.tanh(gt.reshape(x, (2, 3)) @ gt.reshape(x, (3, 2)))),
    "norm": lambda x: gt.linalg.vector_norm(x) ** 3,
    "softmax-ce": lambda x: gt.nn.cross_entropy(gt.reshape(x, (2, 3)), gt.asarray([0, 2], device=x.device)),
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_hessian_symmetric_and_numeric(device, name):
    f = SMOOTH[name]
    x = gt.asarray(np.linspace(0.2, 1.1, 6), device=device)
    H = gt.hessian(f)(x)
    assert H.shape == (6, 6)
    Hn = gt.to_numpy(H)
    np.testing.assert_allclose(Hn, Hn.T, rtol=1e-10, atol=1e-12)
    g = lambda z: gt.grad(f)(z)  # noqa: E731
    np.testing.assert_allclose(Hn, _numeric_jac(g, [x], 0), rtol=1e-4, atol=1e-6)
    v = gt.asarray(np.arange(6.0) - 2.0, device=device)
    np.testing.assert_allclose(gt.to_numpy(gt.hvp(f, x, v)), Hn @ gt.to_numpy(v), rtol=1e-10, atol=1e-10)


def test_hessian_of_quadratic_form_is_A_plus_AT(device):
    rng = np.random.default_rng(3)
    A = gt.asarray(rng.standard_normal((5, 5)), device=device)
    x = gt.asarray(rng.standard_normal(5), device=device)
    H = gt.hessian(lambda x: x @ (A @ x))(x)
    np.testing.assert_allclose(gt.to_numpy(H), gt.to_numpy(A + A.T), rtol=1e-12, atol=1e-12)


def test_auto_mode_picks_by_sizes_and_agrees(device):
    A = gt.asarray(np.arange(12.0).reshape(6, 2), device=device)
    x = gt.asarray([0.5, -1.0], device=device)
    wide = lambda x: gt.sin(A @ x)  # noqa: E731  (2 inputs, 6 outputs: forward)
    for mode in ("auto", "forward", "reverse"):
        np.testing.assert_allclose(gt.to_numpy(gt.jacobian(wide, mode=mode)(x)),
                                   gt.to_numpy(gt.cos(A @ x))[:, None] * gt.to_numpy(A), rtol=1e-12)


def test_seed_layouts_through_jacobian(device):
    """Numerator layout: scalar-by-vector gives the row (shape of x), vector-by-scalar a column."""
    x = gt.asarray([1.0, 2.0, 3.0], device=device)
    assert gt.jacobian(lambda x: gt.sum(x * x))(x).shape == (3,)
    s = gt.asarray(2.0, device=device)
    assert gt.jacobian(lambda s: gt.stack([s, s * s]))(s).shape == (2,)
    A = gt.asarray(np.arange(6.0).reshape(2, 3), device=device)
    np.testing.assert_array_equal(gt.to_numpy(gt.jacobian(lambda x: A @ x)(x)), gt.to_numpy(A))
    y = gt.asarray([1.0, -1.0], device=device)
    np.testing.assert_array_equal(gt.to_numpy(gt.jacobian(lambda y: y @ A)(y)), gt.to_numpy(A).T)
    np.testing.assert_array_equal(gt.to_numpy(gt.jacobian(lambda x: x)(x)), np.eye(3))
    np.testing.assert_array_equal(gt.to_numpy(gt.jacobian(lambda x: 0 * x + 5.0)(x)), np.zeros((3, 3)))


def test_tape_jacobian(device):
    x = gt.asarray([1.0, 2.0], device=device)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.stack([x[0] * x[1], gt.sin(x[1])])
    J = tape.jacobian(y, x)
    np.testing.assert_allclose(gt.to_numpy(J), [[2.0, 1.0], [0.0, np.cos(2.0)]], rtol=1e-12)


def test_jacobian_is_one_pass_not_a_loop(device, monkeypatch):
    """Reverse mode runs the engine once for all rows; forward mode one jvp level."""
    from gradtape._core import engine as _engine
    calls = []
    real = _engine.run

    def counting(*a, **k):
        calls.append(k.get("batch", 0))
        return real(*a, **k)
    monkeypatch.setattr(_engine, "run", counting)
    A = gt.asarray(np.arange(20.0).reshape(4, 5), device=device)
    gt.jacobian(lambda x: gt.tanh(A @ x), mode="reverse")(gt.asarray(np.ones(5), device=device))
    assert calls == [1]
