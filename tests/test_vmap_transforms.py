"""Transforms inside gt.vmap and vmap inside transforms, both orders (issue 11): per-example gradients, vjp,
jvp, Jacobians and Hessians equal a Python loop of per-example calls, and JAX's vmap of the same transform."""
import numpy as np
import pytest

import gradtape as gt

RNG = np.random.default_rng(11)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(gt.to_numpy(a) if isinstance(a, gt.Tensor) else a),
                               np.asarray(gt.to_numpy(b) if isinstance(b, gt.Tensor) else b), rtol=tol, atol=tol)


def _stack(xs):
    return gt.stack(list(xs))


def _mlp_params(din=5, dh=7, dout=3):
    return {"W1": gt.asarray(RNG.standard_normal((din, dh))), "b1": gt.asarray(RNG.standard_normal(dh)),
            "W2": gt.asarray(RNG.standard_normal((dh, dout))), "b2": gt.asarray(RNG.standard_normal(dout))}


def _loss(p, x, y):
    h = gt.tanh(x @ p["W1"] + p["b1"])
    logits = h @ p["W2"] + p["b2"]
    return gt.nn.logsumexp(logits) - gt.sum(logits * y)


def _batch(n=6, din=5, dout=3):
    x = gt.asarray(RNG.standard_normal((n, din)))
    y = gt.asarray(np.eye(dout)[RNG.integers(0, dout, n)])
    return x, y


def test_per_example_gradients_of_an_mlp_equal_a_loop():
    p = _mlp_params()
    x, y = _batch()
    got = gt.vmap(gt.grad(_loss), in_axes=(None, 0, 0))(p, x, y)
    assert set(got) == set(p)
    for k in p:
        assert got[k].shape == (6,) + p[k].shape
        _close(got[k], _stack(gt.grad(_loss)(p, x[b], y[b])[k] for b in range(6)))


def test_per_example_value_and_grad_with_aux():
    p = _mlp_params()
    x, y = _batch()

    def f(p, x, y):
        loss = _loss(p, x, y)
        return loss, {"twice": 2 * loss}
    (val, aux), g = gt.vmap(gt.value_and_grad(f, has_aux=True), in_axes=(None, 0, 0))(p, x, y)
    loop = [gt.value_and_grad(f, has_aux=True)(p, x[b], y[b]) for b in range(6)]
    _close(val, _stack(v for (v, _), _ in loop))
    _close(aux["twice"], _stack(a["twice"] for (_, a), _ in loop))
    _close(g["W1"], _stack(gb["W1"] for _, gb in loop))


def test_per_example_gradient_of_a_batched_argument_and_a_closure():
    w = gt.asarray(RNG.standard_normal(4))
    xs = gt.asarray(RNG.standard_normal((5, 4)))
    # the differentiated argument is batched
    got = gt.vmap(gt.grad(lambda x: gt.sum(gt.sin(x) * w) ** 2))(xs)
    _close(got, _stack(gt.grad(lambda x: gt.sum(gt.sin(x) * w) ** 2)(xs[b]) for b in range(5)))
    # the batch reaches the function through a closure only
    got = gt.vmap(lambda x: gt.grad(lambda w: gt.sum(gt.sin(x) * w) ** 2)(w))(xs)
    _close(got, _stack(gt.grad(lambda w: gt.sum(gt.sin(xs[b]) * w) ** 2)(w) for b in range(5)))


def test_vmap_of_jvp_vjp_jacobian_hessian_hvp():
    f = lambda x: gt.sin(x) * gt.sum(x ** 2)   # noqa: E731
    xs = gt.asarray(RNG.standard_normal((4, 3)))
    ts = gt.asarray(RNG.standard_normal((4, 3)))
    out, tout = gt.vmap(lambda x, t: gt.jvp(f, (x,), (t,)))(xs, ts)
    _close(out, _stack(f(xs[b]) for b in range(4)))
    _close(tout, _stack(gt.jvp(f, (xs[b],), (ts[b],))[1] for b in range(4)))
    cts = gt.vmap(lambda x, c: gt.vjp(f, x)[1](c)[0])(xs, ts)
    _close(cts, _stack(gt.vjp(f, xs[b])[1](ts[b])[0] for b in range(4)))
    for mode in ("forward", "reverse"):
        J = gt.vmap(gt.jacobian(f, mode=mode))(xs)
        _close(J, _stack(gt.jacobian(f)(xs[b]) for b in range(4)))
    s = lambda x: gt.sum(gt.sin(x) * x ** 3)   # noqa: E731
    _close(gt.vmap(gt.hessian(s))(xs), _stack(gt.hessian(s)(xs[b]) for b in range(4)))
    _close(gt.vmap(lambda x, v: gt.hvp(s, x, v))(xs, ts), _stack(gt.hvp(s, xs[b], ts[b]) for b in range(4)))
    _close(gt.vmap(gt.jacfwd(f))(xs), gt.vmap(gt.jacrev(f))(xs))


def test_grad_of_vmap_of_grad_and_nested_vmaps():
    p = _mlp_params()
    x, y = _batch()

    def total(p):
        g = gt.vmap(gt.grad(_loss), in_axes=(None, 0, 0))(p, x, y)
        return gt.sum(g["W1"] ** 2) + gt.sum(g["b2"] ** 2)

    def total_loop(p):
        out = 0.0
        for b in range(6):
            g = gt.grad(_loss)(p, x[b], y[b])
            out = out + gt.sum(g["W1"] ** 2) + gt.sum(g["b2"] ** 2)
        return out
    got, want = gt.grad(total)(p), gt.grad(total_loop)(p)
    for k in p:
        _close(got[k], want[k], 1e-9)
    # two vmap levels around a grad: per (i, j) gradient
    xs = gt.asarray(RNG.standard_normal((3, 2, 4)))
    w = gt.asarray(RNG.standard_normal(4))
    f = lambda w, x: gt.sum(gt.tanh(w * x)) ** 2   # noqa: E731
    got = gt.vmap(gt.vmap(gt.grad(f), in_axes=(None, 0)), in_axes=(None, 0))(w, xs)
    assert got.shape == (3, 2, 4)
    for i in range(3):
        for j in range(2):
            _close(got[i, j], gt.grad(f)(w, xs[i, j]))


def test_grad_outside_vmap_equals_loop_of_grads():
    xs = gt.asarray(RNG.standard_normal((5, 3)))
    f = lambda x: gt.sum(gt.exp(x) * x)   # noqa: E731
    got = gt.grad(lambda xs: gt.sum(gt.vmap(f)(xs)))(xs)
    _close(got, _stack(gt.grad(f)(xs[b]) for b in range(5)))
    J = gt.jacobian(gt.vmap(f))(xs)
    assert J.shape == (5, 5, 3)


def test_against_jax_vmap_of_grad():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    p = _mlp_params()
    x, y = _batch()
    jp = {k: jnp.asarray(gt.to_numpy(v)) for k, v in p.items()}

    def jloss(p, x, y):
        h = jnp.tanh(x @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        return jax.scipy.special.logsumexp(logits) - jnp.sum(logits * y)
    want = jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0))(jp, jnp.asarray(gt.to_numpy(x)), jnp.asarray(gt.to_numpy(y)))
    got = gt.vmap(gt.grad(_loss), in_axes=(None, 0, 0))(p, x, y)
    for k in p:
        _close(got[k], np.asarray(want[k]))
    # and per-example Hessians of a small function, batched in axis 1
    xs = RNG.standard_normal((3, 4))
    s_gt = lambda v: gt.sum(gt.sin(v) * v ** 2)   # noqa: E731
    s_jax = lambda v: jnp.sum(jnp.sin(v) * v ** 2)   # noqa: E731
    _close(gt.vmap(gt.hessian(s_gt), in_axes=1)(gt.asarray(xs)),
           np.asarray(jax.vmap(jax.hessian(s_jax), in_axes=1)(jnp.asarray(xs))))


def test_errors_inside_vmap_keep_their_types():
    xs = gt.asarray(RNG.standard_normal((4, 3)))
    with pytest.raises(ValueError, match="scalar"):
        gt.vmap(gt.grad(lambda x: x * 2))(xs)            # per example, the output is not a scalar
    with pytest.raises(TypeError):
        gt.vmap(gt.grad(lambda x: gt.sum(x), has_aux=True))(xs)   # has_aux without a pair


def test_per_example_gradients_keep_namedtuples_and_sorted_dicts():
    import collections
    P = collections.namedtuple("P", "w b")
    p = P(gt.asarray(RNG.standard_normal(3)), gt.asarray(0.5))
    xs = gt.asarray(RNG.standard_normal((4, 3)))
    f = lambda p, x: gt.sum(gt.tanh(p.w * x + p.b))   # noqa: E731
    got = gt.vmap(gt.grad(f), in_axes=(None, 0))(p, xs)
    assert type(got) is P and got.w.shape == (4, 3) and got.b.shape == (4,)
    for b in range(4):
        want = gt.grad(f)(p, xs[b])
        _close(got.w[b], want.w)
        _close(got.b[b], want.b)
    d = {"z": gt.asarray(1.0), "a": gt.asarray(2.0)}
    got = gt.vmap(gt.grad(lambda d, x: d["z"] * gt.sum(x) + d["a"] ** 2), in_axes=(None, 0))(d, xs)
    assert list(got) == ["a", "z"]
    _close(got["z"], gt.sum(xs, axis=1))
    _close(got["a"], gt.full((4,), 4.0))


def _custom_pair():
    @gt.custom_vjp
    def f(x):
        return gt.sin(x) * x

    def f_fwd(x):
        return gt.sin(x) * x, x

    def f_bwd(x, ct):
        return (ct * (gt.cos(x) * x + gt.sin(x)),)
    f.defvjp(f_fwd, f_bwd)

    @gt.custom_jvp
    def g(x):
        return gt.sin(x) * x

    @g.defjvp
    def g_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return gt.sin(x) * x, (gt.cos(x) * x + gt.sin(x)) * t
    return f, g


@pytest.mark.parametrize("which", ["custom_vjp", "custom_jvp", "checkpoint"])
def test_custom_rules_and_checkpoint_compose_with_vmap_both_ways(which):
    f, g = _custom_pair()
    h = {"custom_vjp": f, "custom_jvp": g, "checkpoint": gt.checkpoint(lambda x: gt.sin(x) * x)}[which]
    xs = gt.asarray(RNG.standard_normal((4, 3)))
    ts = gt.asarray(RNG.standard_normal((4, 3)))
    d = gt.cos(xs) * xs + gt.sin(xs)                    # the closed-form derivative
    _close(gt.vmap(h)(xs), gt.sin(xs) * xs)
    _close(gt.grad(lambda xs: gt.sum(gt.vmap(h)(xs)))(xs), d)
    _close(gt.vmap(gt.grad(lambda x: gt.sum(h(x) ** 2)))(xs), 2 * gt.sin(xs) * xs * d)
    if which != "custom_vjp":                           # custom_vjp has no forward mode, as in JAX
        _close(gt.vmap(lambda x, t: gt.jvp(h, (x,), (t,))[1])(xs, ts), d * ts)
        _close(gt.jvp(gt.vmap(h), (xs,), (ts,))[1], d * ts)


def test_vmap_of_linearize_and_trace_of_vmap():
    xs = gt.asarray(RNG.standard_normal((4, 3)))
    ts = gt.asarray(RNG.standard_normal((4, 3)))
    _close(gt.vmap(lambda x, t: gt.linearize(gt.sin, x)[1](t))(xs, ts), gt.cos(xs) * ts)
    g = gt.trace(gt.vmap(lambda x: gt.sum(gt.sin(x) * x)), xs)
    _close(g(2 * xs), gt.sum(gt.sin(2 * xs) * 2 * xs, axis=1))
