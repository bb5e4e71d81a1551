"""Complex numbers, differentiable, in PyTorch's convention, checked against torch (complex128).

For a real loss L of complex z, ``gt.grad`` gives dL/dRe z + i dL/dIm z (what torch puts in ``.grad``: gradient
descent z -= lr * grad decreases L). Each op of the list below is checked on random complex inputs: the gradient of
the real loss sum(real(f(z) * conj(w))) (w random complex) equal to torch's, the JVP equal to torch.func.jvp's, and
the gradient equal to central finite differences along random complex directions; a few ops to second order.
On NumPy and array-api-strict (the ``device`` fixture).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradtape as gt

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-9, 1e-10


def _z(rng, shape, lo=0.3, hi=1.2):
    """Complex data with modulus in [lo, hi] and any phase (away from 0 and the branch cuts' ends)."""
    r = rng.uniform(lo, hi, shape)
    a = rng.uniform(-2.5, 2.5, shape)
    return r * np.exp(1j * a)


# (name, gradtape function, torch function, argument shapes)
U = ((2, 3),)
B = ((2, 3), (3,))
OPS = [(n, getattr(gt, n), getattr(torch, n), U) for n in (
    "sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "expm1", "log", "log1p", "log10", "sqrt", "square",
    "reciprocal", "abs", "real", "imag", "conj", "negative", "positive")] + [
    ("asin", gt.asin, torch.asin, U), ("acos", gt.acos, torch.acos, U), ("atan", gt.atan, torch.atan, U),
    ("asinh", gt.asinh, torch.asinh, U), ("acosh", gt.acosh, torch.acosh, U), ("atanh", gt.atanh, torch.atanh, U),
    ("log2", gt.log2, torch.log2, U),
    ("add", gt.add, torch.add, B), ("subtract", gt.subtract, torch.subtract, B),
    ("multiply", gt.multiply, torch.multiply, B), ("divide", gt.divide, torch.divide, B),
    ("pow", gt.pow, torch.pow, B),
    ("sum", lambda x: gt.sum(x, axis=1), lambda x: torch.sum(x, dim=1), U),
    ("mean", lambda x: gt.mean(x), lambda x: torch.mean(x), U),
    ("prod", lambda x: gt.prod(x, axis=0), lambda x: torch.prod(x, dim=0), U),
    ("matmul", gt.matmul, torch.matmul, ((2, 3), (3, 4))),
    ("matmul_vec", gt.matmul, torch.matmul, ((3,), (3, 2))),
    ("vecdot", gt.vecdot, torch.linalg.vecdot, ((2, 3), (3,))),
    ("abs_of_exp_times", lambda x, y: gt.abs(gt.exp(x) * y), lambda x, y: torch.abs(torch.exp(x) * y), B),
    ("scalar_ops", lambda x: (2.0 - 1j) * x + x ** 2 / (1 + 0.5j) - 1j, lambda x: (2.0 - 1j) * x + x ** 2 /
     (1 + 0.5j) - 1j, U),
    ("reshape_transpose", lambda x: gt.matrix_transpose(gt.reshape(x, (3, 2))),
     lambda x: torch.reshape(x, (3, 2)).mT, U),
    ("getitem", lambda x: x[1, ::2], lambda x: x[1, ::2], U),
]
IDS = [o[0] for o in OPS]


def _args(rng, shapes):
    return [_z(rng, s) for s in shapes]


def _loss(fn, w):
    return lambda *a: gt.sum(gt.real(fn(*a) * gt.conj(w)))


def _torch_grads(tfn, args, w):
    ts = [torch.tensor(a, requires_grad=True) for a in args]
    out = tfn(*ts)
    (out * torch.tensor(w).conj()).real.sum().backward()
    return [t.grad.resolve_conj().numpy() for t in ts], out.detach().resolve_conj().numpy()


@pytest.mark.parametrize("name,fn,tfn,shapes", OPS, ids=IDS)
def test_value_and_grad_match_torch(device, name, fn, tfn, shapes):
    rng = np.random.default_rng(zlib.crc32(repr(name).encode()) % 2**32)
    args = _args(rng, shapes)
    tgrads, tout = _torch_grads(tfn, args, w := _z(rng, np.shape(tfn(*map(torch.tensor, args)))))
    xs = [gt.asarray(a) for a in args]
    out = fn(*xs)
    np.testing.assert_allclose(gt.to_numpy(out), tout, rtol=RTOL, atol=ATOL)
    got = gt.grad(_loss(fn, gt.asarray(w)), argnums=tuple(range(len(xs))))(*xs)
    for g, tg, x in zip(got, tgrads, xs):
        assert g.dtype == x.dtype
        np.testing.assert_allclose(gt.to_numpy(g), tg, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name,fn,tfn,shapes", OPS, ids=IDS)
def test_grad_matches_finite_differences(name, fn, tfn, shapes):
    """Re(sum(conj(grad) v)) is the derivative of the real loss along the complex direction v."""
    rng = np.random.default_rng(1 + zlib.crc32(repr(name).encode()) % 2**31)
    args = _args(rng, shapes)
    w = gt.asarray(_z(rng, np.shape(tfn(*map(torch.tensor, args)))))
    loss = _loss(fn, w)
    grads = gt.grad(loss, argnums=tuple(range(len(args))))(*map(gt.asarray, args))
    vs = [rng.normal(size=np.shape(a)) + 1j * rng.normal(size=np.shape(a)) for a in args]
    h = 1e-6
    plus = float(loss(*[gt.asarray(a + h * v) for a, v in zip(args, vs)]))
    minus = float(loss(*[gt.asarray(a - h * v) for a, v in zip(args, vs)]))
    want = (plus - minus) / (2 * h)
    got = sum(float(np.sum(np.conj(gt.to_numpy(g)) * v).real) for g, v in zip(grads, vs))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,fn,tfn,shapes", OPS, ids=IDS)
def test_jvp_matches_torch_func_jvp(device, name, fn, tfn, shapes):
    rng = np.random.default_rng(2 + zlib.crc32(repr(name).encode()) % 2**31)
    args = _args(rng, shapes)
    ts = [rng.normal(size=np.shape(a)) + 1j * rng.normal(size=np.shape(a)) for a in args]
    out, tan = gt.jvp(fn, tuple(map(gt.asarray, args)), tuple(map(gt.asarray, ts)))
    tout, ttan = torch.func.jvp(tfn, tuple(map(torch.tensor, args)), tuple(map(torch.tensor, ts)))
    np.testing.assert_allclose(gt.to_numpy(out), tout.resolve_conj().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gt.to_numpy(tan), ttan.resolve_conj().numpy(), rtol=1e-8, atol=1e-10)


SECOND = [("abs_exp", lambda z: gt.sum(gt.abs(gt.exp(z) * z) ** 2), lambda z: (torch.abs(torch.exp(z) * z) ** 2).sum()),
          ("real_log_sin", lambda z: gt.sum(gt.real(gt.log(z) * gt.sin(z))),
           lambda z: (torch.log(z) * torch.sin(z)).real.sum()),
          ("imag_matmul", lambda z: gt.sum(gt.imag(gt.matmul(z, gt.conj(gt.matrix_transpose(z))) ** 2)),
           lambda z: ((z @ z.conj().mT) ** 2).imag.sum())]


@pytest.mark.parametrize("name,f,tf", SECOND, ids=[s[0] for s in SECOND])
def test_grad_of_grad_matches_torch(device, name, f, tf):
    """The gradient of Re(sum(grad(f)(z) * conj(w))): second order through complex rules."""
    rng = np.random.default_rng(3)
    z, w = _z(rng, (3, 3)), _z(rng, (3, 3))
    gw = gt.asarray(w)
    h = gt.grad(lambda z: gt.sum(gt.real(gt.grad(f)(z) * gt.conj(gw))))(gt.asarray(z))
    tz = torch.tensor(z, requires_grad=True)
    (g,) = torch.autograd.grad(tf(tz), tz, create_graph=True)
    (g * torch.tensor(w).conj()).real.sum().backward()
    np.testing.assert_allclose(gt.to_numpy(h), tz.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_gradient_descent_convention():
    """|z|^2: the gradient is 2z (torch), not JAX's 2 conj(z); a descent step decreases the loss."""
    z = gt.asarray([1 + 2j, -0.5 + 0.25j])
    g = gt.grad(lambda z: gt.sum(gt.abs(z) ** 2))(z)
    np.testing.assert_allclose(gt.to_numpy(g), 2 * gt.to_numpy(z))
    f = lambda z: gt.sum(gt.abs(gt.exp(z) - 1j) ** 2)   # noqa: E731
    assert float(f(z - 1e-3 * gt.grad(f)(z))) < float(f(z))


def test_grad_of_a_complex_output_is_a_type_error():
    with pytest.raises(TypeError, match="real scalar outputs"):
        gt.grad(lambda z: gt.sum(z * z))(gt.asarray([1 + 1j]))


def test_vjp_with_a_complex_cotangent_matches_torch(device):
    rng = np.random.default_rng(4)
    z, ct = _z(rng, (4,)), _z(rng, (4,))
    out, back = gt.vjp(lambda z: gt.exp(z) * z, gt.asarray(z))
    (g,) = back(gt.asarray(ct))
    tz = torch.tensor(z, requires_grad=True)
    (torch.exp(tz) * tz).backward(torch.tensor(ct))
    np.testing.assert_allclose(gt.to_numpy(g), tz.grad.numpy(), rtol=1e-10)


def test_abs_at_zero_has_gradient_zero():
    g = gt.grad(lambda z: gt.sum(gt.abs(z)))(gt.asarray([0j, 3 + 4j]))
    np.testing.assert_allclose(gt.to_numpy(g), [0, 0.6 + 0.8j])


def test_complex64_stays_complex64(device):
    z = gt.asarray(np.array([1 + 2j, 0.5j], dtype=np.complex64))
    g = gt.grad(lambda z: gt.sum(gt.abs(gt.sin(z)) ** 2))(z)
    assert g.dtype == gt.complex64 and gt.real(z).dtype == gt.float32
    assert gt.result_type(gt.float32, gt.complex64) == gt.complex64
    assert gt.result_type(gt.float64, gt.complex64) == gt.complex128
    assert gt.asarray(1 + 2j).dtype == gt.complex128


def test_real_argument_of_a_complex_program_gets_the_real_part(device):
    """A real x promoted into complex arithmetic: its gradient is real, torch's."""
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=3), _z(rng, (3,))
    g = gt.grad(lambda x: gt.sum(gt.abs(gt.exp(x * gt.asarray(w)) + x) ** 2))(gt.asarray(x))
    tx = torch.tensor(x, requires_grad=True)
    (torch.abs(torch.exp(tx * torch.tensor(w)) + tx) ** 2).sum().backward()
    assert g.dtype == gt.float64
    np.testing.assert_allclose(gt.to_numpy(g), tx.grad.numpy(), rtol=1e-10)


def test_vmap_of_grad_on_complex_inputs():
    rng = np.random.default_rng(6)
    z = _z(rng, (4, 3))
    f = lambda z: gt.sum(gt.abs(gt.sin(z) * gt.conj(z)) ** 2)   # noqa: E731
    got = gt.vmap(gt.grad(f))(gt.asarray(z))
    want = np.stack([gt.to_numpy(gt.grad(f)(gt.asarray(r))) for r in z])
    np.testing.assert_allclose(gt.to_numpy(got), want, rtol=1e-12)


def test_backward_with_a_complex_head_gradient_follows_torch():
    """y.backward(gradient=g) with a complex g (real leaves, complex intermediates) and gt.vjp with a complex
    cotangent: the head is in PyTorch's convention, conjugated once for the rules (was not: a wrong gradient)."""
    torch = pytest.importorskip("torch")
    x = np.array([1.0, 2.0])
    g = np.array([1 + 2j, -0.5 + 1j])
    a = np.array([0.3 - 1.2j, 2 + 0.5j])
    tx = torch.tensor(x, requires_grad=True)
    torch.exp(tx * torch.tensor(a)).backward(torch.tensor(g))
    gx = gt.asarray(x).requires_grad_()
    gt.exp(gx * gt.asarray(a)).backward(gt.asarray(g))
    np.testing.assert_allclose(gt.to_numpy(gx.grad), tx.grad.numpy(), rtol=1e-12)
    _, f = gt.vjp(lambda x: gt.exp(x * gt.asarray(a)), gt.asarray(x))
    np.testing.assert_allclose(gt.to_numpy(f(gt.asarray(g))[0]), tx.grad.numpy(), rtol=1e-12)
    z = np.array([0.5 + 0.1j, -1 + 2j])
    tz = torch.tensor(z, requires_grad=True)
    (torch.sin(tz) * torch.tensor(a)).backward(torch.tensor(g))
    _, f = gt.vjp(lambda z: gt.sin(z) * gt.asarray(a), gt.asarray(z))
    np.testing.assert_allclose(gt.to_numpy(f(gt.asarray(g))[0]), tz.grad.numpy(), rtol=1e-12)
