"""Regression tests for issue 9, transforms: jvp, jacobian/hessian structure, checkpoint, custom rules, errors.

Each reproduces a reported example and checks it against PyTorch (float64) or JAX (x64).
"""
import numpy as np
import pytest

import gradtape as gt

torch = pytest.importorskip("torch")


def _np(t):
    if isinstance(t, gt.Tensor):
        return gt.to_numpy(t)
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _close(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


X0 = np.array([0.3, -1.2, 0.7])
V0 = np.array([1.0, -0.5, 2.0])
Y0 = np.array([0.9, 0.4, -0.6])
U0 = np.array([-0.3, 1.5, 0.25])


# ---- 1. jvp keeps the tangent of an output returned twice ------------------------------------------------------

def test_jvp_output_returned_twice_keeps_both_tangents():
    def f(x, sin):
        y = sin(x)
        return (y, y)
    out, t = gt.jvp(lambda x: f(x, gt.sin), (gt.asarray(X0),), (gt.asarray(V0),))
    tout, tt = torch.func.jvp(lambda x: f(x, torch.sin), (torch.tensor(X0),), (torch.tensor(V0),))
    for a, b in zip(out + t, tout + tt):
        _close(a, b)
    assert np.abs(_np(t[1])).max() > 0.1


def test_hvp_by_jvp_of_grad_with_two_argnums_matches_torch():
    def f(x, y, m):
        return m.sum(m.sin(x) * y * y) + m.sum(x * x * y)

    def torch_f(x, y):
        return f(x, y, torch)
    g = gt.grad(lambda x, y: f(x, y, gt), argnums=(0, 1))
    (gx, gy), (hx, hy) = gt.jvp(g, (gt.asarray(X0), gt.asarray(Y0)), (gt.asarray(V0), gt.asarray(U0)))
    tg = torch.func.grad(torch_f, argnums=(0, 1))
    (tgx, tgy), (thx, thy) = torch.func.jvp(tg, (torch.tensor(X0), torch.tensor(Y0)),
                                            (torch.tensor(V0), torch.tensor(U0)))
    for a, b in ((gx, tgx), (gy, tgy), (hx, thx), (hy, thy)):
        _close(a, b)
    # the same blocks from the full Hessian
    H = torch.func.hessian(lambda z: torch_f(z[:3], z[3:]))(torch.tensor(np.concatenate([X0, Y0])))
    hv = H @ torch.tensor(np.concatenate([V0, U0]))
    _close(hx, hv[:3])
    _close(hy, hv[3:])


# ---- 4. jacobian of several outputs, hessian with argnums tuple --------------------------------------------------

@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_of_tuple_output_matches_jax(mode):
    jax = _jax()
    jnp = jax.numpy

    def f(x, y, m):
        return m.sin(x) * y, m.sum(x * x) * 2.0 + m.sum(y), (m.cos(x[:2]),)
    J = gt.jacobian(lambda x, y: f(x, y, gt), mode=mode)(gt.asarray(X0), gt.asarray(Y0))
    JJ = jax.jacrev(lambda x, y: f(x, y, jnp))(jnp.asarray(X0), jnp.asarray(Y0))
    assert isinstance(J, tuple) and len(J) == 3 and isinstance(J[2], tuple) and len(J[2]) == 1
    for a, b in ((J[0], JJ[0]), (J[1], JJ[1]), (J[2][0], JJ[2][0])):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, np.asarray(b))
    J2 = gt.jacobian(lambda x, y: f(x, y, gt), argnums=(0, 1), mode=mode)(gt.asarray(X0), gt.asarray(Y0))
    JJ2 = jax.jacrev(lambda x, y: f(x, y, jnp), argnums=(0, 1))(jnp.asarray(X0), jnp.asarray(Y0))
    for k in range(2):
        for j in range(2):
            _close(J2[k][j], np.asarray(JJ2[k][j]))
    _close(J2[2][0][1], np.asarray(JJ2[2][0][1]))


def test_jacobian_output_returned_twice_both_modes():
    for mode in ("forward", "reverse"):
        Ja, Jb = gt.jacobian(lambda x: (lambda y: (y, y))(gt.sin(x)), mode=mode)(gt.asarray(X0))
        _close(Ja, np.diag(np.cos(X0)))
        _close(Jb, np.diag(np.cos(X0)))


def test_hessian_argnums_tuple_gives_nested_blocks_matching_jax():
    jax = _jax()
    jnp = jax.numpy

    def f(x, y, m):
        return m.sum(m.sin(x) * y * y) + m.sum(x * x * x) * m.sum(y)
    H = gt.hessian(lambda x, y: f(x, y, gt), argnums=(0, 1))(gt.asarray(X0), gt.asarray(Y0[:2].copy()[[0, 1, 0]]))
    y = Y0[:2].copy()[[0, 1, 0]]
    HJ = jax.hessian(lambda x, y: f(x, y, jnp), argnums=(0, 1))(jnp.asarray(X0), jnp.asarray(y))
    assert isinstance(H, tuple) and all(isinstance(r, tuple) and len(r) == 2 for r in H)
    for i in range(2):
        for j in range(2):
            assert tuple(H[i][j].shape) == tuple(HJ[i][j].shape)
            _close(H[i][j], np.asarray(HJ[i][j]))
    # and against torch's full Hessian
    Ht = torch.func.hessian(lambda x, y: f(x, y, torch), argnums=(0, 1))(torch.tensor(X0), torch.tensor(y))
    _close(H[0][1], Ht[0][1])
    _close(H[1][0], Ht[1][0])


def test_hessian_single_argnum_of_two_argument_function():
    jax = _jax()
    jnp = jax.numpy
    f = lambda x, y, m: m.sum(m.exp(x) * y)  # noqa: E731
    H = gt.hessian(lambda x, y: f(x, y, gt), argnums=1)(gt.asarray(X0), gt.asarray(Y0))
    _close(H, np.zeros((3, 3)))
    H0 = gt.hessian(lambda x, y: f(x, y, gt), argnums=(0,))(gt.asarray(X0), gt.asarray(Y0))
    HJ = jax.hessian(lambda x, y: f(x, y, jnp), argnums=(0,))(jnp.asarray(X0), jnp.asarray(Y0))
    _close(H0[0][0], np.asarray(HJ[0][0]))


# ---- 5. has_aux, integer outputs, non-scalar outputs ------------------------------------------------------------

def test_has_aux_without_a_pair_says_what_it_expects():
    x = gt.asarray(X0)
    with pytest.raises(TypeError, match=r"has_aux=True expects .* pair \(output, aux\)"):
        gt.grad(lambda x: gt.sum(x), has_aux=True)(x)
    with pytest.raises(TypeError, match="pair"):
        gt.grad(lambda x: (gt.sum(x), 1.0, 2.0), has_aux=True)(x)
    with pytest.raises(TypeError, match="pair"):
        gt.jvp(lambda x: x, (x,), (x,), has_aux=True)
    with pytest.raises(TypeError, match="pair"):
        gt.vjp(lambda x: x, x, has_aux=True)
    g, aux = gt.grad(lambda x: (gt.sum(x * x), "aux"), has_aux=True)(x)
    _close(g, 2 * X0)
    assert aux == "aux"


def test_grad_of_integer_valued_function_is_a_type_error():
    x = gt.asarray(X0)
    for f in (gt.argmax, lambda x: gt.sum(x > 0.0), lambda x: gt.astype(gt.sum(x), gt.int64)):
        with pytest.raises(TypeError, match="real-valued outputs"):
            gt.grad(f)(x)
        with pytest.raises(TypeError, match="real-valued outputs"):
            gt.value_and_grad(f)(x)


def test_grad_of_non_scalar_function_is_the_documented_value_error():
    with pytest.raises(ValueError, match="scalar"):
        gt.grad(lambda x: x * 2.0)(gt.asarray(X0))


# ---- 6. jvp argument checks ---------------------------------------------------------------------------------------

def test_jvp_bare_tensor_primals_is_a_type_error():
    x, v = gt.asarray(X0), gt.asarray(V0)
    with pytest.raises(TypeError, match="primals must be a tuple or list"):
        gt.jvp(gt.sin, x, v)
    with pytest.raises(TypeError, match="tangents must be a tuple or list"):
        gt.jvp(gt.sin, (x,), v)


def test_jvp_mismatched_tangent_names_the_argument():
    x, v = gt.asarray(X0), gt.asarray(V0)
    with pytest.raises(ValueError, match=r"tangent 1 has shape \(2,\) but primal 1 has shape \(3,\)"):
        gt.jvp(lambda a, b: a * b, (x, x), (v, v[:2]))
    with pytest.raises(TypeError, match="tangent 0 has dtype float32 but primal 0 has dtype float64"):
        gt.jvp(gt.sin, (x,), (gt.astype(v, gt.float32),))
    with pytest.raises(TypeError, match="tangent 0 has dtype int64"):
        gt.jvp(gt.sin, (x,), (gt.asarray([1, 2, 3]),))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        gt.jvp(lambda a, b: a * b, (x, x), (v,))
    _, t = gt.jvp(gt.sin, (x,), ([1.0, 1.0, 1.0],))          # plain numbers take the primal's dtype
    _close(t, np.cos(X0))


# ---- 7. complex and integer arguments ------------------------------------------------------------------------------

def test_complex_arguments_are_refused_by_every_transform():
    c = gt.asarray([1 + 2j, 3 - 1j])
    f = lambda x: gt.sum(gt.abs(x * x))  # noqa: E731
    calls = [lambda: gt.grad(f)(c), lambda: gt.value_and_grad(f)(c), lambda: gt.vjp(lambda x: x * x, c),
             lambda: gt.jvp(lambda x: x * x, (c,), (c,)), lambda: gt.jacobian(lambda x: x * x)(c),
             lambda: gt.jacobian(lambda x: x * x, mode="forward")(c), lambda: gt.hessian(f)(c),
             lambda: gt.hvp(f, c, c)]
    for call in calls:
        with pytest.raises(TypeError, match="complex differentiation is not supported yet"):
            call()


def test_grad_of_complex_output_is_a_type_error():
    with pytest.raises(TypeError, match="real-valued"):
        gt.grad(lambda x: gt.sum(x * (1 + 1j)))(gt.asarray(X0))


def test_integer_arguments_are_refused():
    i = gt.asarray([1, 2, 3])
    with pytest.raises(TypeError, match="int64"):
        gt.grad(lambda x: gt.sum(x * 1.0))(i)
    with pytest.raises(TypeError, match="int64"):
        gt.jacobian(lambda x: x * 1.0)(i)
    with pytest.raises(TypeError, match="int64"):
        gt.jvp(lambda x: x * 1.0, (i,), (gt.asarray([1.0, 1.0, 1.0]),))


# ---- 8. var with correction on one element: NaN, no ZeroDivisionError ------------------------------------------

def test_var_correction_one_element_derivatives_are_nan():
    x, v = gt.asarray([1.5]), gt.asarray([1.0])
    val, t = gt.jvp(lambda x: gt.var(x, correction=1), (x,), (v,))
    tv, tt = torch.func.jvp(lambda x: torch.var(x, correction=1), (torch.tensor([1.5]),), (torch.tensor([1.0]),))
    assert np.isnan(_np(val)) and np.isnan(_np(tv))
    assert np.isnan(_np(t)).all() and np.isnan(_np(tt)).all()
    assert np.isnan(_np(gt.hessian(lambda x: gt.var(x, correction=1))(x))).all()
    assert np.isnan(_np(gt.grad(lambda x: gt.var(x, correction=1))(x))).all()


# ---- 9. separated advanced indices under batched jacobians / hessian ---------------------------------------------

A9 = np.arange(1.0, 13.0).reshape(2, 3, 2) / 7.0


def _idx9(a, m):
    return a[m.asarray([1, 0]), :, 0]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_with_separated_advanced_indices(mode):
    J = gt.jacobian(lambda a: _idx9(a, gt) ** 2, mode=mode)(gt.asarray(A9))
    jf = torch.func.jacfwd if mode == "forward" else torch.func.jacrev
    Jt = jf(lambda a: a[torch.tensor([1, 0]), :, 0] ** 2)(torch.tensor(A9))
    assert tuple(J.shape) == tuple(Jt.shape) == (2, 3, 2, 3, 2)
    _close(J, Jt)


def test_hessian_with_separated_advanced_indices():
    H = gt.hessian(lambda a: gt.sum(_idx9(a, gt) ** 3))(gt.asarray(A9))
    Ht = torch.func.hessian(lambda a: torch.sum(a[torch.tensor([1, 0]), :, 0] ** 3))(torch.tensor(A9))
    _close(H, Ht)
