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


def _a(x, **k):
    """A tensor on the test's backend (gt.asarray keeps a NumPy array on the CPU)."""
    return gt.asarray(x, device=gt.get_default_device(), **k)


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

def test_jvp_output_returned_twice_keeps_both_tangents(device):
    def f(x, sin):
        y = sin(x)
        return (y, y)
    out, t = gt.jvp(lambda x: f(x, gt.sin), (_a(X0),), (_a(V0),))
    tout, tt = torch.func.jvp(lambda x: f(x, torch.sin), (torch.tensor(X0),), (torch.tensor(V0),))
    for a, b in zip(out + t, tout + tt):
        _close(a, b)
    assert np.abs(_np(t[1])).max() > 0.1


def test_hvp_by_jvp_of_grad_with_two_argnums_matches_torch(device):
    def f(x, y, m):
        return m.sum(m.sin(x) * y * y) + m.sum(x * x * y)

    def torch_f(x, y):
        return f(x, y, torch)
    g = gt.grad(lambda x, y: f(x, y, gt), argnums=(0, 1))
    (gx, gy), (hx, hy) = gt.jvp(g, (_a(X0), _a(Y0)), (_a(V0), _a(U0)))
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
def test_jacobian_of_tuple_output_matches_jax(device, mode):
    jax = _jax()
    jnp = jax.numpy

    def f(x, y, m):
        return m.sin(x) * y, m.sum(x * x) * 2.0 + m.sum(y), (m.cos(x[:2]),)
    J = gt.jacobian(lambda x, y: f(x, y, gt), mode=mode)(_a(X0), _a(Y0))
    JJ = jax.jacrev(lambda x, y: f(x, y, jnp))(jnp.asarray(X0), jnp.asarray(Y0))
    assert isinstance(J, tuple) and len(J) == 3 and isinstance(J[2], tuple) and len(J[2]) == 1
    for a, b in ((J[0], JJ[0]), (J[1], JJ[1]), (J[2][0], JJ[2][0])):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, np.asarray(b))
    J2 = gt.jacobian(lambda x, y: f(x, y, gt), argnums=(0, 1), mode=mode)(_a(X0), _a(Y0))
    JJ2 = jax.jacrev(lambda x, y: f(x, y, jnp), argnums=(0, 1))(jnp.asarray(X0), jnp.asarray(Y0))
    for k in range(2):
        for j in range(2):
            _close(J2[k][j], np.asarray(JJ2[k][j]))
    _close(J2[2][0][1], np.asarray(JJ2[2][0][1]))


def test_jacobian_output_returned_twice_both_modes(device):
    for mode in ("forward", "reverse"):
        Ja, Jb = gt.jacobian(lambda x: (lambda y: (y, y))(gt.sin(x)), mode=mode)(_a(X0))
        _close(Ja, np.diag(np.cos(X0)))
        _close(Jb, np.diag(np.cos(X0)))


def test_hessian_argnums_tuple_gives_nested_blocks_matching_jax(device):
    jax = _jax()
    jnp = jax.numpy

    def f(x, y, m):
        return m.sum(m.sin(x) * y * y) + m.sum(x * x * x) * m.sum(y)
    H = gt.hessian(lambda x, y: f(x, y, gt), argnums=(0, 1))(_a(X0), _a(Y0[:2].copy()[[0, 1, 0]]))
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


def test_hessian_single_argnum_of_two_argument_function(device):
    jax = _jax()
    jnp = jax.numpy
    f = lambda x, y, m: m.sum(m.exp(x) * y)  # noqa: E731
    H = gt.hessian(lambda x, y: f(x, y, gt), argnums=1)(_a(X0), _a(Y0))
    _close(H, np.zeros((3, 3)))
    H0 = gt.hessian(lambda x, y: f(x, y, gt), argnums=(0,))(_a(X0), _a(Y0))
    HJ = jax.hessian(lambda x, y: f(x, y, jnp), argnums=(0,))(jnp.asarray(X0), jnp.asarray(Y0))
    _close(H0[0][0], np.asarray(HJ[0][0]))


# ---- 5. has_aux, integer outputs, non-scalar outputs ------------------------------------------------------------

def test_has_aux_without_a_pair_says_what_it_expects(device):
    x = _a(X0)
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


def test_grad_of_integer_valued_function_is_a_type_error(device):
    x = _a(X0)
    for f in (gt.argmax, lambda x: gt.any(x > 0.0), lambda x: gt.astype(gt.sum(x), gt.int64)):
        with pytest.raises(TypeError, match="real-valued outputs"):
            gt.grad(f)(x)
        with pytest.raises(TypeError, match="real-valued outputs"):
            gt.value_and_grad(f)(x)


def test_grad_of_non_scalar_function_is_the_documented_value_error(device):
    with pytest.raises(ValueError, match="scalar"):
        gt.grad(lambda x: x * 2.0)(_a(X0))


# ---- 6. jvp argument checks ---------------------------------------------------------------------------------------

def test_jvp_bare_tensor_primals_is_a_type_error(device):
    x, v = _a(X0), _a(V0)
    with pytest.raises(TypeError, match="primals must be a tuple or list"):
        gt.jvp(gt.sin, x, v)
    with pytest.raises(TypeError, match="tangents must be a tuple or list"):
        gt.jvp(gt.sin, (x,), v)


def test_jvp_mismatched_tangent_names_the_argument(device):
    x, v = _a(X0), _a(V0)
    with pytest.raises(ValueError, match=r"tangent 1 has shape \(2,\) but primal 1 has shape \(3,\)"):
        gt.jvp(lambda a, b: a * b, (x, x), (v, v[:2]))
    with pytest.raises(TypeError, match="tangent 0 has dtype float32 but primal 0 has dtype float64"):
        gt.jvp(gt.sin, (x,), (gt.astype(v, gt.float32),))
    with pytest.raises(TypeError, match="tangent 0 has dtype int64"):
        gt.jvp(gt.sin, (x,), (_a([1, 2, 3]),))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        gt.jvp(lambda a, b: a * b, (x, x), (v,))
    # issue 11: a list is a pytree, never an array, inside a transform (it used to be stacked into one)
    with pytest.raises(TypeError, match=r"same tree structure.*at \[0\] primals have a leaf and tangents have a list"):
        gt.jvp(gt.sin, (x,), ([1.0, 1.0, 1.0],))
    x32 = gt.astype(x[0], gt.float32)
    _, t = gt.jvp(gt.sin, (x32,), (1.0,))          # plain numbers take the primal's dtype
    assert t.dtype == gt.float32
    _close(t, np.cos(np.float32(X0[0])))


# ---- 7. complex and integer arguments ------------------------------------------------------------------------------

def test_complex_arguments_are_refused_by_the_jacobian_transforms(device):
    """grad, value_and_grad, vjp and jvp take complex arguments (PyTorch's convention: tests/test_complex.py), and so
    hvp (jvp of grad); jacobian and hessian still refuse them."""
    c = _a([1 + 2j, 3 - 1j])
    f = lambda x: gt.sum(gt.abs(x * x))  # noqa: E731
    calls = [lambda: gt.jacobian(lambda x: x * x)(c), lambda: gt.jacobian(lambda x: x * x, mode="forward")(c),
             lambda: gt.hessian(f)(c)]
    for call in calls:
        with pytest.raises(TypeError, match="complex differentiation is not supported yet"):
            call()
    assert gt.grad(f)(c).dtype == c.dtype and gt.value_and_grad(f)(c)[1].dtype == c.dtype


def test_grad_of_complex_output_is_a_type_error(device):
    with pytest.raises(TypeError, match="real-valued"):
        gt.grad(lambda x: gt.sum(x * (1 + 1j)))(_a(X0))


def test_integer_arguments_are_refused(device):
    i = _a([1, 2, 3])
    with pytest.raises(TypeError, match="int64"):
        gt.grad(lambda x: gt.sum(x * 1.0))(i)
    with pytest.raises(TypeError, match="int64"):
        gt.jacobian(lambda x: x * 1.0)(i)
    with pytest.raises(TypeError, match="int64"):
        gt.jvp(lambda x: x * 1.0, (i,), (_a([1.0, 1.0, 1.0]),))


# ---- 8. var with correction on one element: NaN, no ZeroDivisionError ------------------------------------------

def test_var_correction_one_element_derivatives_are_nan(device):
    x, v = _a([1.5]), _a([1.0])
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
def test_jacobian_with_separated_advanced_indices(device, mode):
    J = gt.jacobian(lambda a: _idx9(a, gt) ** 2, mode=mode)(_a(A9))
    jf = torch.func.jacfwd if mode == "forward" else torch.func.jacrev
    Jt = jf(lambda a: a[torch.tensor([1, 0]), :, 0] ** 2)(torch.tensor(A9))
    assert tuple(J.shape) == tuple(Jt.shape) == (2, 3, 2, 3, 2)
    _close(J, Jt)


def test_hessian_with_separated_advanced_indices(device):
    H = gt.hessian(lambda a: gt.sum(_idx9(a, gt) ** 3))(_a(A9))
    Ht = torch.func.hessian(lambda a: torch.sum(a[torch.tensor([1, 0]), :, 0] ** 3))(torch.tensor(A9))
    _close(H, Ht)


# ---- 2. checkpoint: closed-over tensors get gradients, random draws are replayed -----------------------------------

W0 = np.array([[0.5, -1.0], [0.3, 0.8], [1.2, 0.1]])
XB = np.array([[0.2, -0.4, 0.9], [1.0, 0.5, -0.3]])


def _tcp(f, *a):
    from torch.utils.checkpoint import checkpoint as tcp
    return tcp(f, *a, use_reentrant=False)


def test_checkpoint_closed_over_weight_gets_its_gradient(device):
    x0 = _a(XB)
    g = gt.grad(lambda w: gt.sum(gt.checkpoint(lambda x: gt.tanh(x @ w))(x0)))(_a(W0))
    Wt = torch.tensor(W0, requires_grad=True)
    _tcp(lambda x: torch.tanh(x @ Wt), torch.tensor(XB)).sum().backward()
    _close(g, Wt.grad)
    assert np.abs(_np(g)).max() > 0.1


def test_checkpoint_of_a_module_gives_every_parameter_its_grad(device):
    gt.nn.manual_seed(0)
    net = gt.nn.Sequential(gt.nn.Linear(3, 4, dtype=gt.float64), gt.nn.Tanh(), gt.nn.Linear(4, 2, dtype=gt.float64))
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        for tp, p in zip(tnet.parameters(), net.parameters()):
            tp.copy_(torch.tensor(_np(p)))
    x = _a(XB).requires_grad_()
    xt = torch.tensor(XB, requires_grad=True)
    gt.sum(gt.checkpoint(net)(x) ** 2).backward()
    (_tcp(tnet, xt) ** 2).sum().backward()
    for p, tp in zip(net.parameters(), tnet.parameters()):
        assert p.grad is not None
        _close(p.grad, tp.grad)
    _close(x.grad, xt.grad)


def test_checkpoint_block_reading_an_intermediate_and_its_leaf(device):
    w = _a(3.0).requires_grad_()
    h = w * 2.0
    y = gt.checkpoint(lambda x: h * x * w)(_a(5.0))
    y.backward()
    wt = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    ht = wt * 2.0
    _tcp(lambda x: ht * x * wt, torch.tensor(5.0, dtype=torch.float64)).backward()
    assert float(w.grad) == float(wt.grad) == 60.0


def test_checkpoint_several_outputs_passed_through_and_twice_with_retain_graph(device):
    a0 = np.array([1.0, 2.0])
    a = _a(a0).requires_grad_()
    at = torch.tensor(a0, requires_grad=True)
    for m, t, cp in ((gt, a, gt.checkpoint), (torch, at, lambda f: (lambda x: _tcp(f, x)))):
        o = cp(lambda x: (m.sin(x) * t, x, t * 2.0))(t * 1.0)
        y = m.sum(o[0] + o[1] * 3.0 + o[2])
        y.backward(retain_graph=True)
        y.backward()
    _close(a.grad, at.grad)


def test_checkpoint_second_order_through_closed_over_weight(device):
    x0 = _a(XB)

    def inner(w, m, cp):
        return m.sum(cp(lambda x: m.tanh(x @ w))(x0 if m is gt else torch.tensor(XB)) ** 2)
    H = gt.hessian(lambda w: inner(w, gt, gt.checkpoint))(_a(W0))
    Ht = torch.func.hessian(lambda w: inner(w, torch, lambda f: f))(torch.tensor(W0))
    _close(H, Ht)
    gg = gt.grad(lambda w: gt.sum(gt.grad(lambda w: inner(w, gt, gt.checkpoint))(w) ** 2))(_a(W0))
    Wt = torch.tensor(W0, requires_grad=True)
    (g1,) = torch.autograd.grad(inner(Wt, torch, lambda f: (lambda x: _tcp(f, x))), Wt, create_graph=True)
    (g1 ** 2).sum().backward()
    _close(gg, Wt.grad)
    # create_graph backward through the checkpoint, then a second backward
    w = _a(W0).requires_grad_()
    (g,) = gt.autograd.grad(inner(w, gt, gt.checkpoint), [w], create_graph=True)
    gt.sum(g ** 2).backward()
    _close(w.grad, Wt.grad)


def test_checkpoint_replays_dropout_mask(device):
    drop = gt.nn.Dropout(0.5, generator=0)
    x0 = np.linspace(0.1, 2.0, 40)
    x = _a(x0).requires_grad_()
    with gt.record():                       # training mode only here: the recomputation must use it too
        out = gt.checkpoint(lambda x: drop(x) * x)(x)
    gt.sum(out).backward()
    mask = _np(out) / x0 ** 2
    assert set(np.round(mask, 12)) == {0.0, 2.0}
    _close(x.grad, 2 * mask * x0)


def test_checkpoint_replays_dropout_inside_a_module_and_the_default_generator(device):
    gt.nn.manual_seed(3)
    net = gt.nn.Sequential(gt.nn.Linear(3, 16, dtype=gt.float64), gt.nn.Dropout(0.5), gt.nn.Linear(16, 1, dtype=gt.float64))
    net.train()
    x = _a(np.tile(XB, (4, 1)))
    ps = list(net.parameters())
    gt.nn.manual_seed(7)
    gt.sum(net(x) ** 2).backward()
    plain = [_np(p.grad) for p in ps]
    for p in ps:
        p.grad = None
    gt.nn.manual_seed(7)
    gt.sum(gt.checkpoint(net)(x) ** 2).backward()
    for p, g in zip(ps, plain):
        _close(p.grad, g)


# ---- 3. custom_vjp / custom_jvp rules of the wrong shape, dtype or arity --------------------------------------------

def _bad_vjp(bwd, nondiff=()):
    @gt.custom_vjp
    def f(x, y):
        return gt.sin(x) * y
    if nondiff:
        f = gt.custom_vjp(f.fun, nondiff_argnums=nondiff)
    f.defvjp(lambda x, y: (gt.sin(x) * y, (x, y)), bwd)
    return f


def test_custom_vjp_bwd_of_the_wrong_shape_is_a_value_error(device):
    f = _bad_vjp(lambda res, ct: (gt.ones(5), ct))
    x = _a([1.0, 2.0, 3.0]).requires_grad_()
    y = _a([1.0, 1.0, 1.0]).requires_grad_()
    msg = (r"custom_vjp f: the bwd rule must produce an output with the same shape/dtypes as the args tuple of the "
           r"primal function: for argument 0 it produced shape \(5,\) dtype float64, expected shape \(3,\)")
    with pytest.raises(ValueError, match=msg):
        gt.grad(lambda x: gt.sum(f(x, y)))(x)
    with pytest.raises(ValueError, match="same shape/dtypes"):
        gt.sum(f(x, y)).backward()
    assert x.grad is None and y.grad is None           # nothing written
    with pytest.raises(ValueError, match="same shape/dtypes"):         # batched cotangents too
        gt.jacobian(lambda x: f(x, y), mode="reverse")(x)


def test_custom_vjp_bwd_of_the_wrong_dtype_or_arity(device):
    x = _a([1.0, 2.0, 3.0])
    y = _a([1.0, 1.0, 1.0])
    f = _bad_vjp(lambda res, ct: (gt.astype(ct, gt.float32), ct))
    with pytest.raises(TypeError, match=r"for argument 0 it produced shape \(3,\) dtype float32, expected shape "
                                        r"\(3,\) dtype float64"):
        gt.grad(lambda x: gt.sum(f(x, y)))(x)
    f = _bad_vjp(lambda res, ct: (ct,))
    with pytest.raises(ValueError, match="same shape/dtypes.*returned 1 cotangents for 2 inputs"):
        gt.grad(lambda x: gt.sum(f(x, y)))(x)
    f = _bad_vjp(lambda y, res, ct: (gt.ones(2),), nondiff=(1,))        # names the primal's argument index
    with pytest.raises(ValueError, match="for argument 0 it produced shape"):
        gt.grad(lambda x: gt.sum(f(x, y)))(x)
    g = _bad_vjp(lambda x, res, ct: (gt.ones(2),), nondiff=(0,))
    with pytest.raises(ValueError, match="for argument 1 it produced shape"):
        gt.grad(lambda y: gt.sum(g(x, y)))(y)
    ok = _bad_vjp(lambda res, ct: (ct * gt.cos(res[0]) * res[1], ct * gt.sin(res[0])))
    _close(gt.grad(lambda x: gt.sum(ok(x, y)))(x), np.cos([1.0, 2.0, 3.0]))


def test_custom_jvp_tangent_output_of_the_wrong_shape_or_dtype(device):
    def make(tan):
        @gt.custom_jvp
        def f(x):
            return gt.sin(x)

        @f.defjvp
        def _(primals, tangents):
            (x,), (t,) = primals, tangents
            return f(x), tan(x, t)
        return f
    x, v = _a([1.0, 2.0, 3.0]), _a([1.0, 0.0, 0.0])
    f = make(lambda x, t: gt.ones(5))
    with pytest.raises(ValueError, match=r"custom_jvp f: the jvp rule must produce primal and tangent outputs with "
                                         r"corresponding shapes and dtypes.*shape \(5,\).*expected shape \(3,\)"):
        gt.jvp(f, (x,), (v,))
    with pytest.raises(ValueError, match="corresponding shapes"):
        gt.grad(lambda x: gt.sum(f(x)))(x)
    f = make(lambda x, t: gt.astype(t * gt.cos(x), gt.float32))
    with pytest.raises(TypeError, match="dtype float32, expected shape \\(3,\\) dtype float64"):
        gt.jvp(f, (x,), (v,))
    f = make(lambda x, t: t * gt.cos(x))
    _close(gt.jvp(f, (x,), (v,))[1], np.cos([1.0, 2.0, 3.0]) * [1.0, 0.0, 0.0])
    _close(gt.jacobian(f, mode="forward")(x), np.diag(np.cos([1.0, 2.0, 3.0])))


# ---- nested transforms through closures (reported by the namespace helper) ------------------------------------------

def test_inner_transforms_stay_differentiable_in_what_they_close_over(device):
    jax = _jax()
    jnp = jax.numpy
    x0, y0 = np.array([0.3, -0.2]), np.array([2.0, 0.5])
    x = _a(x0)
    want = np.asarray(jax.grad(lambda b: jnp.sum(jax.grad(lambda a: jnp.sum(a * a * jnp.log(b)))(jnp.asarray(x0))))(
        jnp.asarray(y0)))
    inner = [lambda b: gt.grad(lambda a: gt.sum(a * a * gt.log(b)))(x),
             lambda b: gt.vjp(lambda a: a * a * gt.log(b), x)[1](gt.ones(2))[0],
             lambda b: gt.jvp(lambda a: a * a * gt.log(b), (x,), (gt.ones(2),))[1],
             lambda b: gt.sum(gt.jacobian(lambda a: a * a * gt.log(b), mode="reverse")(x), axis=0),
             lambda b: gt.sum(gt.jacobian(lambda a: a * a * gt.log(b), mode="forward")(x), axis=0),
             lambda b: gt.value_and_grad(lambda a: gt.sum(a * a * gt.log(b)))(x)[1]]
    for g in inner:
        _close(gt.grad(lambda b: gt.sum(g(b)))(_a(y0)), want)


def test_checkpoint_nested_batched_taped_and_traced(device):
    x0, b = _a(XB), _a([0.1, -0.2])
    W = _a(W0)

    def net(w, cp):
        return gt.sin(cp(lambda z: gt.tanh(z @ w) + b)(x0)) * w[0]
    ident = lambda f: f  # noqa: E731
    fc = lambda w: gt.checkpoint(lambda x: net(w, gt.checkpoint))(x0)  # noqa: E731
    fp = lambda w: net(w, ident)  # noqa: E731
    for mode in ("reverse", "forward"):
        _close(gt.jacobian(fc, mode=mode)(W), gt.jacobian(fp, mode=mode)(W))
    _close(gt.hessian(lambda w: gt.sum(fc(w)))(W), gt.hessian(lambda w: gt.sum(fp(w)))(W))
    want = gt.grad(lambda w: gt.sum(fp(w)))(W)
    c = _a(W0)
    with gt.GradientTape() as tape:           # a watched tensor, untracked again after the block
        tape.watch(c)
        y = gt.sum(fc(c))
    _close(tape.gradient(y, c), want)
    g = gt.trace(gt.grad(lambda w: gt.sum(fc(w))), W)
    _close(g(W * 2.0), gt.grad(lambda w: gt.sum(fp(w)))(W * 2.0))


def test_checkpoint_keeps_its_input_only_until_its_backward_ran(device):
    import gc
    import weakref
    x = _a([0.5, -1.0]).requires_grad_()
    h = gt.sin(x)                   # the block's input, an intermediate nobody else keeps
    ref = weakref.ref(h)
    y = gt.sum(gt.checkpoint(lambda z: gt.tanh(z) * 2.0)(h))
    del h
    gc.collect()
    assert ref() is not None        # kept for the recomputation
    y.backward()
    gc.collect()
    assert ref() is None            # and released with the node
    _close(x.grad, 2 * (1 - np.tanh(np.sin([0.5, -1.0])) ** 2) * np.cos([0.5, -1.0]))
