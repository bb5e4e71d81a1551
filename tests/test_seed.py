"""Every formula and cell of the seed notes (seed/matrix-calculus-and-autograd-notes.md)
and the d2l autograd chapter's examples, on every backend.

Jacobians are built here by stacking VJP rows (gt.vjp) or JVP columns (gt.jvp):
gt.jacobian comes with a later issue. The ``sym.var`` cell is a later issue too.
"""
import numpy as np
import pytest

import gradtape as gt
from conftest import to_np


def arr(a, **kw):
    """A tensor on the test's default device."""
    return gt.asarray(np.asarray(a, dtype=float) if not hasattr(a, "dtype") else a,
                      device=gt.get_default_device(), **kw)


def jac_rows(f, x):
    """Numerator-layout Jacobian (y.size x x.size) from one VJP per output element."""
    y, f_vjp = gt.vjp(f, x)
    rows = []
    for i in range(y.size):
        e = np.zeros(y.size)
        e[i] = 1.0
        rows.append(to_np(f_vjp(arr(e.reshape(y.shape)))[0]).reshape(-1))
    return np.array(rows).reshape(y.size, x.size)


def jac_cols(f, x):
    """The same Jacobian from one JVP per input element (forward mode)."""
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = 1.0
        _, t = gt.jvp(f, (x,), (arr(e.reshape(x.shape)),))
        cols.append(to_np(t).reshape(-1))
    return np.array(cols).T.reshape(-1, x.size)


def jac(f, x):
    """Both ways, checked against each other."""
    r, c = jac_rows(f, x), jac_cols(f, x)
    np.testing.assert_allclose(r, c, rtol=1e-12, atol=1e-14)
    return r


RNG = np.random.default_rng(2024)
A = RNG.normal(size=(3, 4))          # m = 3, n = 4
B = RNG.normal(size=(4, 4))
X0 = RNG.normal(size=4)


# ---- subderivatives ----------------------------------------------------------------------------

def _d(f, x0):
    x = arr(x0).requires_grad_()
    f(x).backward()
    return float(x.grad)


@pytest.mark.parametrize("x0,expect", [(2.5, 1.0), (1e-300, 1.0), (-0.7, -1.0), (-1e-300, -1.0)])
def test_abs_subderivative_away_from_zero(device, x0, expect):
    assert _d(gt.abs, x0) == expect


@pytest.mark.parametrize("a", [-1.0, -0.5, 0.0, 0.5, 1.0])
def test_abs_subderivative_at_zero_is_a(device, a):
    with gt.subgradient(abs=a):
        assert _d(gt.abs, 0.0) == a
        assert _d(gt.abs, 3.0) == 1.0 and _d(gt.abs, -3.0) == -1.0


@pytest.mark.parametrize("x0,expect", [(2.5, 1.0), (-0.7, 0.0), (1e-300, 1.0)])
def test_relu_subderivative_away_from_zero(device, x0, expect):
    assert _d(gt.nn.relu, x0) == expect
    assert _d(lambda x: gt.maximum(x, 0.0) * 1.0, x0) == expect     # max(x, 0) written out


@pytest.mark.parametrize("a", [0.0, 0.25, 1.0])
def test_relu_subderivative_at_zero_is_a(device, a):
    with gt.subgradient(relu=a):
        assert _d(gt.nn.relu, 0.0) == a


# ---- gradient layouts --------------------------------------------------------------------------

def test_scalar_by_column_vector_is_a_row_shaped_like_x(device):
    # y = sum(x_i^2) + x_1 x_2: dy/dx = [2x_1 + x_2, 2x_2 + x_1, 2x_3, 2x_4], the shape of x
    def f(x):
        return gt.sum(x * x) + x[0] * x[1]

    x = arr(X0).requires_grad_()
    f(x).backward()
    assert x.grad.shape == (4,)
    expect = 2 * X0 + np.array([X0[1], X0[0], 0.0, 0.0])
    np.testing.assert_allclose(to_np(x.grad), expect)
    # x as a column (n, 1): the gradient is a column too (.grad has the shape of its variable)
    xc = arr(X0.reshape(4, 1)).requires_grad_()
    gt.sum(xc * xc).backward()
    assert xc.grad.shape == (4, 1)
    np.testing.assert_allclose(to_np(xc.grad), 2 * X0.reshape(4, 1))
    # and it is the only row of the 1 x n Jacobian
    np.testing.assert_allclose(jac(f, arr(X0)), expect.reshape(1, 4))


def test_column_vector_by_scalar_is_a_column(device):
    # y = [x, x^2, sin x]: dy/dx = [1, 2x, cos x] as a column
    def f(x):
        return gt.stack([x, x * x, gt.sin(x)])

    x0 = 0.8
    y, t = gt.jvp(f, (arr(x0),), (arr(1.0),))
    assert t.shape == y.shape == (3,)
    np.testing.assert_allclose(to_np(t), [1.0, 2 * x0, np.cos(x0)])
    J = jac(f, arr(x0))
    assert J.shape == (3, 1)
    np.testing.assert_allclose(J[:, 0], [1.0, 2 * x0, np.cos(x0)])


def test_vector_by_vector_rows_are_gradients(device):
    # row i of dy/dx is the gradient of y_i
    def f(x):
        return gt.stack([gt.sum(x * x), x[0] * x[3], gt.sin(x[1])])

    J = jac(f, arr(X0))
    assert J.shape == (3, 4)
    for i in range(3):
        g = gt.grad(lambda x: f(x)[i])(arr(X0))
        np.testing.assert_allclose(J[i], to_np(g))
    np.testing.assert_allclose(J[1], [X0[3], 0, 0, X0[0]])
    np.testing.assert_allclose(J[2], [0, np.cos(X0[1]), 0, 0])


# ---- the identity tables -----------------------------------------------------------------------

def test_d_constant_is_zero(device):
    a = arr([1.0, -2.0, 3.0])
    J = jac(lambda x: a + 0.0 * gt.sum(x), arr(X0))
    np.testing.assert_array_equal(J, np.zeros((3, 4)))
    # a function that does not use x at all
    _, f_vjp = gt.vjp(lambda x: a * 1.0, arr(X0))
    np.testing.assert_array_equal(to_np(f_vjp(arr([1.0, 1.0, 1.0]))[0]), np.zeros(4))
    _, t = gt.jvp(lambda x: a * 1.0, (arr(X0),), (arr(np.ones(4)),))
    np.testing.assert_array_equal(to_np(t), np.zeros(3))


def test_d_x_is_identity(device):
    np.testing.assert_array_equal(jac(lambda x: x * 1.0, arr(X0)), np.eye(4))
    np.testing.assert_array_equal(jac(lambda x: +x, arr(X0)), np.eye(4))


def test_d_Ax_is_A(device):
    np.testing.assert_allclose(jac(lambda x: arr(A) @ x, arr(X0)), A, rtol=1e-15)


def test_d_xTA_is_AT(device):
    At = A.T.copy()                       # (4, 3): x^T A maps R^4 -> R^3
    np.testing.assert_allclose(jac(lambda x: x @ arr(At), arr(X0)), At.T, rtol=1e-15)
    xc = arr(X0.reshape(4, 1))           # with an explicit column and .T: (x^T A) is 1 x 3
    np.testing.assert_allclose(jac(lambda x: x.T @ arr(At), xc), At.T, rtol=1e-15)


def u_of(x):
    return gt.sin(arr(B) @ x)


def v_of(x):
    return x * x * x


def test_d_a_u(device):
    a = 2.5
    Ju = jac(u_of, arr(X0))
    np.testing.assert_allclose(jac(lambda x: a * u_of(x), arr(X0)), a * Ju, rtol=1e-14)
    np.testing.assert_allclose(Ju, np.cos(B @ X0)[:, None] * B, rtol=1e-14)
    # a a scalar tensor too
    np.testing.assert_allclose(jac(lambda x: arr(a) * u_of(x), arr(X0)), a * Ju, rtol=1e-14)


def test_d_A_u(device):
    Ju = jac(u_of, arr(X0))
    np.testing.assert_allclose(jac(lambda x: arr(A) @ u_of(x), arr(X0)), A @ Ju, rtol=1e-13, atol=1e-15)


def test_d_u_plus_v(device):
    Ju, Jv = jac(u_of, arr(X0)), jac(v_of, arr(X0))
    np.testing.assert_allclose(jac(lambda x: u_of(x) + v_of(x), arr(X0)), Ju + Jv, rtol=1e-14)
    np.testing.assert_allclose(Jv, np.diag(3 * X0 ** 2), rtol=1e-14)


# ---- the vector chain rule ---------------------------------------------------------------------

def test_chain_rule_scalar(device):
    # y = f(u), u = g(x), all scalars
    f, g = gt.exp, lambda x: x * x + gt.sin(x)
    x0 = 0.4
    u0 = x0 * x0 + np.sin(x0)
    dy = float(gt.grad(lambda x: f(g(x)))(arr(x0)))
    np.testing.assert_allclose(dy, np.exp(u0) * (2 * x0 + np.cos(x0)), rtol=1e-14)
    dydu = float(gt.grad(f)(arr(u0)))
    dudx = float(gt.grad(g)(arr(x0)))
    np.testing.assert_allclose(dy, dydu * dudx, rtol=1e-14)


def test_chain_rule_scalar_of_scalar_of_vector(device):
    # y = f(u) scalar u, u = g(x) vector x: dy/dx = dy/du * du/dx
    def g(x):
        return gt.sum(gt.tanh(x) * arr(np.arange(1.0, 5.0)))

    u0 = float(g(arr(X0)))
    dy = to_np(gt.grad(lambda x: gt.log1p(g(x) ** 2))(arr(X0)))
    dydu = 2 * u0 / (1 + u0 ** 2)
    np.testing.assert_allclose(dy, dydu * to_np(gt.grad(g)(arr(X0))), rtol=1e-13)


def test_chain_rule_scalar_of_vector_of_vector(device):
    # y = f(u), u = g(x): dy/dx (1 x n) = dy/du (1 x m) @ du/dx (m x n)
    def g(x):
        return arr(A) @ gt.sin(x)

    def f(u):
        return gt.sum(u ** 3)

    dy = to_np(gt.grad(lambda x: f(g(x)))(arr(X0)))
    u0 = to_np(g(arr(X0)))
    dydu = to_np(gt.grad(f)(arr(u0)))
    np.testing.assert_allclose(dy, dydu @ jac(g, arr(X0)), rtol=1e-12)


def test_chain_rule_vector_of_vector_of_vector(device):
    # dy/dx (k x n) = dy/du (k x m) @ du/dx (m x n)
    def g(x):
        return arr(A) @ gt.sin(x)

    def f(u):
        return gt.stack([gt.sum(u * u), u[0] * u[2], gt.exp(u[1]), gt.sum(u)])

    u0 = to_np(g(arr(X0)))
    Jyx = jac(lambda x: f(g(x)), arr(X0))
    np.testing.assert_allclose(Jyx, jac(f, arr(u0)) @ jac(g, arr(X0)), rtol=1e-12, atol=1e-14)


# ---- the `from mxnet import autograd, nd` cell, with gradtape -----------------------------------

def test_seed_cell_autograd_nd(device):
    from gradtape import autograd, nd

    with autograd.record():
        a = nd.ones((2, 1))
        b = nd.ones((2, 1))

    assert a.shape == (2, 1) and b.shape == (2, 1)
    assert a.dtype == gt.float32 and a.device == device
    np.testing.assert_array_equal(to_np(a), np.ones((2, 1), dtype=np.float32))
    np.testing.assert_array_equal(to_np(b), np.ones((2, 1), dtype=np.float32))


def test_seed_graph_c_equals_2a_plus_b_recorded(device):
    # the graph the explicit `sym.var` cell builds (c = 2 * a + b), recorded implicitly
    from gradtape import autograd, nd
    a = nd.ones((2, 1))
    b = nd.ones((2, 1))
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        c = 2 * a + b
    np.testing.assert_array_equal(to_np(c), np.full((2, 1), 3.0))
    c.backward()
    np.testing.assert_array_equal(to_np(a.grad), np.full((2, 1), 2.0))
    np.testing.assert_array_equal(to_np(b.grad), np.full((2, 1), 1.0))
    assert a.grad.dtype == gt.float32


# ---- the d2l autograd chapter ------------------------------------------------------------------

def test_d2l_y_equals_2_xT_x(device):
    x = gt.arange(4.0)
    x.attach_grad()
    with gt.record():
        y = 2 * x.T @ x
    assert y.shape == ()
    np.testing.assert_array_equal(to_np(y), 28.0)
    y.backward()
    np.testing.assert_array_equal(to_np(x.grad), 4 * np.arange(4.0))
    assert bool(gt.all(x.grad == 4 * x))
    # then the gradient of another function of x (grad_req "write" overwrites)
    with gt.record():
        y = x.sum()
    y.backward()
    np.testing.assert_array_equal(to_np(x.grad), np.ones(4))


def test_d2l_mxnet_column_version(device):
    from gradtape import autograd, nd
    x = nd.arange(4).reshape((4, 1))
    x.attach_grad()
    with autograd.record():
        y = 2 * nd.dot(x.T, x)
    y.backward()
    np.testing.assert_array_equal(to_np(x.grad), 4 * np.arange(4.0).reshape(4, 1))
    assert x.grad.dtype == gt.float32


def test_d2l_pytorch_version(device):
    x = gt.arange(4.0).requires_grad_()
    y = 2 * gt.vecdot(x, x)
    y.backward()
    np.testing.assert_array_equal(to_np(x.grad), 4 * np.arange(4.0))
    x.grad.zero_()
    y = x.sum()
    y.backward()
    np.testing.assert_array_equal(to_np(x.grad), np.ones(4))
    x.grad.zero_()
    y = x * x
    y.backward(gt.ones(4))         # d2l: y.backward(torch.ones(len(x))) == y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), 2 * np.arange(4.0))


def test_d2l_detach(device):
    x = gt.arange(4.0)
    x.attach_grad()
    with gt.record():
        y = x * x
        u = y.detach()
        z = u * x
    z.backward()
    np.testing.assert_array_equal(to_np(x.grad), to_np(u))
    np.testing.assert_array_equal(to_np(x.grad), np.arange(4.0) ** 2)
    with gt.record():
        y = x * x
    y.backward()
    np.testing.assert_array_equal(to_np(x.grad), 2 * np.arange(4.0))


def f_control_flow(a):
    b = a * 2
    while gt.linalg.vector_norm(b) < 1000:
        b = b * 2
    if gt.sum(b) > 0:
        c = b
    else:
        c = 100 * b
    return c


@pytest.mark.parametrize("a0", [None, 0.37, -0.37, 1e-3, -2.5], ids=["random", "pos", "neg", "tiny", "neg-big"])
def test_d2l_control_flow_mxnet(device, a0):
    a = arr(np.random.default_rng(7).normal() if a0 is None else a0)
    a.attach_grad()
    with gt.record():
        d = f_control_flow(a)
    d.backward()
    assert a.grad.shape == ()
    np.testing.assert_allclose(to_np(a.grad), to_np(d / a), rtol=1e-15)
    k = to_np(a.grad)
    # the gradient is the multiplier: a power of two, times 100 on the negative branch
    m = k if float(a) > 0 else k / 100
    assert m > 1 and np.log2(m) == np.round(np.log2(m))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_d2l_control_flow_pytorch_and_grad(device, seed):
    a0 = np.random.default_rng(seed).normal()
    a = arr(a0).requires_grad_()
    d = f_control_flow(a)
    d.backward()
    np.testing.assert_allclose(to_np(a.grad), to_np(d.detach() / a.detach()), rtol=1e-15)
    g = gt.grad(f_control_flow)(arr(a0))
    np.testing.assert_allclose(to_np(g), to_np(a.grad), rtol=0)
    # vector version (d2l exercise): a random vector, the same rule elementwise
    v = arr(np.random.default_rng(seed + 10).normal(size=3)).requires_grad_()
    dv = f_control_flow(v)
    dv.sum().backward()
    np.testing.assert_allclose(to_np(v.grad), to_np(dv.detach() / v.detach()), rtol=1e-15)
