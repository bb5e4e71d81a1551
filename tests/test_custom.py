"""custom_vjp, custom_jvp and checkpoint: the user's rules are used, compose with higher order, and checkpoint
recomputes instead of keeping intermediates."""
import gc
import weakref

import numpy as np
import pytest

import gradtape as gt
from gradtape.testing import check_grads


def _sin_times():
    @gt.custom_vjp
    def f(x, y):
        return gt.sin(x) * y

    def fwd(x, y):
        return gt.sin(x) * y, (x, y)

    def bwd(res, ct):
        x, y = res
        return ct * gt.cos(x) * y, ct * gt.sin(x)
    f.defvjp(fwd, bwd)
    return f


def test_custom_vjp_correct_rule_checks_to_second_order(device):
    f = _sin_times()
    x = gt.asarray([0.3, 0.9], device=device)
    y = gt.asarray([1.5, -2.0], device=device)
    check_grads(f, (x, y), order=2)


def test_custom_vjp_rule_is_what_reverse_mode_uses(device):
    @gt.custom_vjp
    def clip_gradient(x):
        return x
    clip_gradient.defvjp(lambda x: (x, None), lambda res, ct: (gt.clip(ct, -1.0, 1.0),))
    x = gt.asarray([1.0, 2.0], device=device)
    g = gt.grad(lambda x: gt.sum(clip_gradient(x) * 10.0))(x)
    assert gt.to_numpy(g).tolist() == [1.0, 1.0]          # not 10: the custom rule ran
    # forward mode differentiates the function itself
    _, t = gt.jvp(lambda x: clip_gradient(x) * 10.0, (x,), (gt.ones_like(x),))
    assert gt.to_numpy(t).tolist() == [10.0, 10.0]


def test_custom_vjp_nondiff_argnums_and_tuple_output(device):
    @gt.custom_vjp
    def scaled_pair(k, x):
        return x * k, x * x

    def fwd(k, x):
        return (x * k, x * x), x

    def bwd(k, x, cts):
        c1, c2 = cts
        return (c1 * k + 2 * x * c2,)
    scaled_pair.nondiff_argnums = (0,)
    scaled_pair.defvjp(fwd, bwd)
    x = gt.asarray([0.5, -1.5], device=device)
    g = gt.grad(lambda x: gt.sum(scaled_pair(3.0, x)[0]) + gt.sum(scaled_pair(3.0, x)[1]))(x)
    np.testing.assert_allclose(gt.to_numpy(g), 3.0 + 2 * gt.to_numpy(x))
    g1 = gt.grad(lambda x: gt.sum(scaled_pair(3.0, x)[1]))(x)        # the unused output's cotangent is zero
    np.testing.assert_allclose(gt.to_numpy(g1), 2 * gt.to_numpy(x))


def test_custom_vjp_errors(device):
    @gt.custom_vjp
    def f(x):
        return x * 2.0
    x = gt.asarray([1.0], device=device)
    with pytest.raises(TypeError, match="defvjp"):
        f(x)
    f.defvjp(lambda x: (x * 2.0, None), lambda res, ct: (ct, ct))
    with pytest.raises(ValueError, match="returned 2 cotangents for 1 inputs"):
        gt.grad(lambda x: gt.sum(f(x)))(x)


def _expx():
    @gt.custom_jvp
    def g(x):
        return gt.exp(x) * x

    @g.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return g(x), t * (gt.exp(x) * (x + 1.0))
    return g


def test_custom_jvp_all_modes_to_third_order(device):
    g = _expx()
    check_grads(lambda x: g(x) * 2.0, (gt.asarray([0.3, -0.9], device=device),), order=3)


def test_custom_jvp_rule_is_used_in_both_modes(device):
    @gt.custom_jvp
    def straight_through_round(x):
        return gt.round(x)

    @straight_through_round.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return straight_through_round(x), t           # identity derivative
    x = gt.asarray([0.4, 1.6], device=device)
    assert gt.to_numpy(gt.grad(lambda x: gt.sum(straight_through_round(x) * 3.0))(x)).tolist() == [3.0, 3.0]
    _, t = gt.jvp(straight_through_round, (x,), (gt.asarray([2.0, 5.0], device=device),))
    assert gt.to_numpy(t).tolist() == [2.0, 5.0]
    H = gt.hessian(lambda x: gt.sum(_expx()(x)))(x)
    xn = gt.to_numpy(x)
    np.testing.assert_allclose(np.diag(gt.to_numpy(H)), np.exp(xn) * (xn + 2.0), rtol=1e-12)


def _chain(x, depth=6):
    for _ in range(depth):
        x = gt.tanh(x * 1.3 + 0.1)
    return x


def test_checkpoint_same_gradients_and_higher_order(device):
    x = gt.asarray(np.linspace(-1, 1, 5), device=device)
    f = lambda x: gt.sum(_chain(x) ** 2)  # noqa: E731
    fc = lambda x: gt.sum(gt.checkpoint(_chain)(x) ** 2)  # noqa: E731
    np.testing.assert_allclose(gt.to_numpy(gt.grad(fc)(x)), gt.to_numpy(gt.grad(f)(x)), rtol=1e-12)
    np.testing.assert_allclose(gt.to_numpy(gt.hessian(fc)(x)), gt.to_numpy(gt.hessian(f)(x)), rtol=1e-10)
    check_grads(lambda x: gt.checkpoint(_chain)(x), (x,), order=2)


def test_checkpoint_keeps_no_intermediates(device):
    """With checkpoint, the intermediates of the block die right after the forward pass."""
    seen = []

    def block(x):
        h = gt.tanh(x * 2.0)
        seen.append(weakref.ref(h))
        return gt.sin(h) * h
    x = gt.asarray(np.ones(3), device=device).requires_grad_()
    y = gt.sum(gt.checkpoint(block)(x))
    gc.collect()
    assert seen[0]() is None                      # forward intermediate not kept by the graph
    y.backward()
    plain = gt.asarray(np.ones(3), device=device).requires_grad_()
    gt.sum(block(plain)).backward()
    np.testing.assert_allclose(gt.to_numpy(x.grad), gt.to_numpy(plain.grad), rtol=1e-12)


def test_custom_rules_under_batched_jacobians(device):
    x = gt.asarray(np.linspace(-1, 1, 4), device=device)
    f = lambda x: _chain(x) * 2.0  # noqa: E731
    J = gt.to_numpy(gt.jacobian(f, mode="reverse")(x))
    np.testing.assert_allclose(gt.to_numpy(gt.jacobian(lambda x: gt.checkpoint(_chain)(x) * 2.0, mode="reverse")(x)),
                               J, rtol=1e-12)
    g = _sin_times()
    y = gt.asarray([1.0, 2.0, 3.0, 4.0], device=device)
    for mode in ("reverse", "forward"):
        np.testing.assert_allclose(gt.to_numpy(gt.jacobian(lambda x: g(x, y), mode=mode)(x)),
                                   np.diag(np.cos(gt.to_numpy(x)) * gt.to_numpy(y)), rtol=1e-12, atol=1e-15)
    e = _expx()
    np.testing.assert_allclose(gt.to_numpy(gt.jacobian(e, mode="reverse")(x)),
                               np.diag(np.exp(gt.to_numpy(x)) * (gt.to_numpy(x) + 1)), rtol=1e-12, atol=1e-15)
