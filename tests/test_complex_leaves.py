"""Complex leaves: ``requires_grad_()``, ``.backward()``, ``gt.autograd.grad`` and ``GradientTape`` give PyTorch's
``.grad`` (the conjugate Wirtinger convention of README "Complex numbers"), checked against torch complex128.

The rules run in JAX's convention; the engine conjugates once where a gradient reaches a user (a leaf's ``.grad``,
the results of autograd.grad and GradientTape.gradient), as gt.grad does at its boundary.
"""
import numpy as np
import pytest

import gradtape as gt

torch = pytest.importorskip("torch")

Z = np.array([1 + 2j, -0.5 + 0.3j, 2 - 1j])
A = np.array([[2 + 1j, 0.3 - 0.2j], [0.1 + 0.5j, 1.5 - 0.7j]])

CASES = {
    "abs2": (Z, lambda z: gt.sum(gt.abs(z) ** 2), lambda z: (z.abs() ** 2).sum()),
    "real_sin": (Z, lambda z: gt.sum(gt.real(gt.sin(z))), lambda z: torch.sin(z).real.sum()),
    "imag_exp_times_z": (Z, lambda z: gt.sum(gt.imag(gt.exp(z) * z)), lambda z: (torch.exp(z) * z).imag.sum()),
    "abs_of_log": (Z, lambda z: gt.sum(gt.abs(gt.log(z))), lambda z: torch.log(z).abs().sum()),
    "real_det": (A, lambda a: gt.real(gt.linalg.det(a)), lambda a: torch.linalg.det(a).real),
    "fro_of_inv": (A, lambda a: gt.linalg.matrix_norm(gt.linalg.inv(a)), lambda a: torch.linalg.matrix_norm(
        torch.linalg.inv(a))),
}


def _torch_grad(tf, v):
    t = torch.tensor(v, requires_grad=True)
    tf(t).backward()
    return t.grad.numpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_autograd_grad_and_tape_match_torch(name):
    v, f, tf = CASES[name]
    want = _torch_grad(tf, v)
    x = gt.asarray(v).requires_grad_()
    f(x).backward()
    np.testing.assert_allclose(gt.to_numpy(x.grad), want, rtol=1e-12, atol=1e-12)
    x = gt.asarray(v).requires_grad_()
    np.testing.assert_allclose(gt.to_numpy(gt.autograd.grad(f(x), [x])[0]), want, rtol=1e-12, atol=1e-12)
    with gt.GradientTape() as tape:
        x = gt.asarray(v)
        tape.watch(x)
        y = f(x)
    np.testing.assert_allclose(gt.to_numpy(tape.gradient(y, x)), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gt.to_numpy(gt.grad(f)(gt.asarray(v))), want, rtol=1e-12, atol=1e-12)


def test_gradients_accumulate_in_the_user_convention():
    v, f, tf = CASES["real_sin"]
    x = gt.asarray(v).requires_grad_()
    f(x).backward()
    f(x).backward()
    np.testing.assert_allclose(gt.to_numpy(x.grad), 2 * _torch_grad(tf, v), rtol=1e-12)


def test_second_order_through_a_complex_leaf_matches_torch():
    """create_graph: the .grad is itself differentiable (its real part's sum, differentiated again)."""
    x = gt.asarray(Z).requires_grad_()
    (g,) = gt.autograd.grad(gt.sum(gt.real(gt.sin(x) * x)), [x], create_graph=True)
    (gg,) = gt.autograd.grad(gt.sum(gt.real(g) ** 2), [x])
    t = torch.tensor(Z, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.sin(t) * t).real.sum(), [t], create_graph=True)
    (tgg,) = torch.autograd.grad((tg.real ** 2).sum(), [t])
    np.testing.assert_allclose(gt.to_numpy(g), tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gt.to_numpy(gg), tgg.numpy(), rtol=1e-12)


def test_integer_leaves_are_still_refused():
    with pytest.raises(TypeError, match="floating-point"):
        gt.asarray([1, 2]).requires_grad_()


@pytest.mark.parametrize("ord_", [2, 3.0])
def test_norm_rules_of_complex_inputs_match_torch(ord_):
    """The norm primitives' own rules (not gt.linalg's abs() route): VJP conj(x)/||x|| inside, a real JVP."""
    from gradtape._api.products import vector_norm
    z, t = np.array([3 + 4j, 1 - 2j, 0.5 + 0.1j]), np.array([1j, 0.5, -1 + 1j])
    g = gt.grad(lambda a: vector_norm(a, ord=ord_))(gt.asarray(z))
    _, jv = gt.jvp(lambda a: vector_norm(a, ord=ord_), (gt.asarray(z),), (gt.asarray(t),))
    np.testing.assert_allclose(gt.to_numpy(g), _torch_grad(lambda a: torch.linalg.vector_norm(a, ord=ord_), z),
                               rtol=1e-12)
    want = torch.func.jvp(lambda a: torch.linalg.vector_norm(a, ord=ord_), (torch.tensor(z),), (torch.tensor(t),))[1]
    assert jv.dtype == gt.float64
    np.testing.assert_allclose(gt.to_numpy(jv), want.numpy(), rtol=1e-12)


def test_matrix_power_zero_is_attached_with_a_zero_derivative():
    """Fuzz finding (runner --kind linalg, seeds 165422788, 165423003): matrix_power(x, 0) was a constant cut
    off the graph; torch's is the identity attached to x with a zero derivative, values whatever x holds."""
    x0 = gt.asarray(np.ones((1, 1, 1))).requires_grad_()
    v1 = gt.linalg.matrix_power(x0 + gt.asarray(5.0 * np.eye(3)), 0)
    (ct,) = gt.autograd.grad(gt.sum(gt.positive(v1)), [v1])          # v1 as an intermediate source
    np.testing.assert_array_equal(gt.to_numpy(ct), np.ones((1, 3, 3)))
    g = gt.grad(lambda x: gt.sum(gt.linalg.matrix_power(x, 0)))(gt.asarray(np.eye(2)))
    np.testing.assert_array_equal(gt.to_numpy(g), np.zeros((2, 2)))
    np.testing.assert_array_equal(gt.to_numpy(gt.linalg.matrix_power(gt.asarray([[np.inf, 1.0], [np.nan, 2.0]]), 0)),
                                  np.eye(2))
