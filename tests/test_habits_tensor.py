"""Issue 14, part 4: PyTorch and NumPy habits on tensors (format specs, NumPy's dispatch protocols, numpy(),
retain_grad and the non-leaf .grad warning)."""
import warnings

import numpy as np
import pytest

import gradtape as gt

W0 = np.array([[0.3, -1.2, 0.5], [2.0, 0.1, -0.7]])
X0 = np.array([0.4, -0.9, 1.5])


def to_np(t):
    return gt.to_numpy(t.detach())


def grad_of(f, w0=W0):
    w = gt.asarray(w0).requires_grad_()
    f(w).backward()
    return to_np(w.grad)


# ---- 1. format specs ---------------------------------------------------------------------------------

def test_format_spec_on_a_scalar_tensor():
    loss = gt.sum(gt.asarray([0.12345, 1.0]).requires_grad_() * 2)
    assert f"{loss:.3f}" == "2.247"
    assert f"{gt.asarray([2.5]):>6.1f}" == "   2.5"
    assert f"{gt.asarray(7, dtype=gt.int64):03d}" == "007"


def test_format_of_a_larger_tensor():
    x = gt.asarray([1.0, 2.0])
    assert f"{x}" == repr(x) and f"{x[:1]}" == repr(x[:1])
    assert f"{gt.asarray(2.5)}" == "2.5"                # 0-d: as PyTorch, its Python scalar
    with pytest.raises(TypeError, match=r"\.item\(\).*gt\.to_numpy"):
        f"{x:.3f}"


# ---- 2. NumPy's dispatch protocols ---------------------------------------------------------------------

X = gt.asarray(X0)
SAME = {   # NumPy spelling, gradtape spelling: the same gradient
    "np.sum": (lambda w: np.sum(w), lambda w: gt.sum(w)),
    "np.sum(axis, keepdims)": (lambda w: np.sum(np.sum(w, axis=1, keepdims=True) ** 2),
                               lambda w: gt.sum(gt.sum(w, axis=1, keepdims=True) ** 2)),
    "np.mean": (lambda w: np.mean(w * w), lambda w: gt.mean(w * w)),
    "np.mean(dtype)": (lambda w: np.mean(w * w, dtype=np.float64, axis=0).sum(),
                       lambda w: gt.mean(w * w, axis=0).sum()),
    "np.sin": (lambda w: gt.sum(np.sin(w)), lambda w: gt.sum(gt.sin(w))),
    "np.exp, np.log": (lambda w: gt.sum(np.log(np.exp(w) + 1.0)), lambda w: gt.sum(gt.log(gt.exp(w) + 1.0))),
    "np.dot": (lambda w: gt.sum(np.dot(w, X) ** 2), lambda w: gt.sum((w @ X) ** 2)),
    "np.matmul": (lambda w: gt.sum(np.matmul(w, w.T)), lambda w: gt.sum(w @ w.T)),
    "np.add, np.multiply": (lambda w: gt.sum(np.multiply(np.add(w, 1.0), w)), lambda w: gt.sum((w + 1.0) * w)),
    "np.maximum": (lambda w: gt.sum(np.maximum(w, 0.2) * w), lambda w: gt.sum(gt.maximum(w, 0.2) * w)),
    "np.concatenate": (lambda w: gt.sum(np.concatenate([w, 2 * w], axis=1) ** 2),
                       lambda w: gt.sum(gt.concat([w, 2 * w], axis=1) ** 2)),
    "np.stack": (lambda w: gt.sum(np.stack([w, w * w]) * 3), lambda w: gt.sum(gt.stack([w, w * w]) * 3)),
    "np.where": (lambda w: gt.sum(np.where(w > 0, w, -2 * w)), lambda w: gt.sum(gt.where(w > 0, w, -2 * w))),
    "np.reshape": (lambda w: gt.sum(np.reshape(w, (3, 2)) @ X[:2]), lambda w: gt.sum(gt.reshape(w, (3, 2)) @ X[:2])),
    "np.transpose": (lambda w: gt.sum(np.transpose(w) @ X[:2]), lambda w: gt.sum(gt.permute_dims(w, (1, 0)) @ X[:2])),
    "np.linalg.norm": (lambda w: np.linalg.norm(w), lambda w: gt.linalg.vector_norm(w)),
    "np.linalg.norm(axis)": (lambda w: gt.sum(np.linalg.norm(w, axis=1)),
                             lambda w: gt.sum(gt.linalg.vector_norm(w, axis=1))),
    "np.linalg.norm(ord='fro')": (lambda w: np.linalg.norm(w, ord="fro"), lambda w: gt.linalg.matrix_norm(w)),
    "np.linalg.det": (lambda w: np.linalg.det(w @ w.T), lambda w: gt.linalg.det(w @ w.T)),
    "np.cumsum": (lambda w: gt.sum(np.cumsum(w, axis=1) ** 2), lambda w: gt.sum(gt.cumulative_sum(w, axis=1) ** 2)),
    "np.tanh, np.arctan2, np.power": (lambda w: gt.sum(np.tanh(w) * np.arctan2(w, 2.0) + np.power(w, 2)),
                                      lambda w: gt.sum(gt.tanh(w) * gt.atan2(w, 2.0) + w ** 2)),
    "np.max, np.min": (lambda w: np.max(w) - np.min(w, axis=0).sum(), lambda w: gt.max(w) - gt.min(w, axis=0).sum()),
    "np.clip": (lambda w: gt.sum(np.clip(w, -0.5, 0.6) * w), lambda w: gt.sum(gt.clip(w, -0.5, 0.6) * w)),
    "np.std(ddof)": (lambda w: np.std(w, ddof=1), lambda w: gt.std(w, correction=1)),
}


@pytest.mark.parametrize("case", list(SAME))
def test_numpy_functions_keep_the_graph(case):
    np_f, gt_f = SAME[case]
    w = gt.asarray(W0).requires_grad_()
    y = np_f(w)
    assert isinstance(y, gt.Tensor) and y.requires_grad
    np.testing.assert_allclose(to_np(y), to_np(gt_f(gt.asarray(W0))), rtol=1e-12)
    np.testing.assert_allclose(grad_of(np_f), grad_of(gt_f), rtol=1e-12, atol=1e-15)
    assert np.abs(grad_of(np_f)).sum() > 0


def test_the_issue_reproductions():
    w = gt.asarray(W0).requires_grad_()
    loss = np.sum(np.sin(np.dot(w, X))) + np.mean(w)
    loss.backward()
    np.testing.assert_allclose(to_np(w.grad), np.outer(np.cos(W0 @ X0), X0) + 1 / 6, rtol=1e-12)


def test_untracked_tensors_give_tensors_and_values_elsewhere():
    x = gt.asarray(X0)
    assert isinstance(np.exp(x), gt.Tensor) and isinstance(np.sum(x), gt.Tensor)
    np.testing.assert_allclose(to_np(np.exp(x)), np.exp(X0))
    np.testing.assert_allclose(to_np(np.ones(3) + x), 1 + X0)       # ndarray + tensor: gradtape's add
    assert np.allclose(x, X0) and not np.allclose(x, X0 + 1)          # unmapped: NumPy on the values
    counts, _ = np.histogram(x, bins=2)
    assert counts.tolist() == [1, 2]
    np.testing.assert_array_equal(np.asarray(x), X0)
    a = np.zeros(3)
    a += x                                                            # out= an ndarray: NumPy on the values
    np.testing.assert_array_equal(a, X0)


@pytest.mark.parametrize("call, spelling", [
    (lambda w: np.add.reduce(w), r"numpy\.add\.reduce.*gt\.sum"),
    (lambda w: np.sin(w, out=np.zeros((2, 3))), r"numpy\.sin.*out.*gt\.sin"),
    (lambda w: np.sum(w, out=np.zeros(())), r"numpy\.sum.*out.*gt\.sum"),
    (lambda w: np.histogram(w), r"numpy\.histogram.*no such function"),
    (lambda w: np.sort(w), r"numpy\.sort.*gt\.sort"),
    (lambda w: np.einsum("ij->", w), r"numpy\.einsum.*gt\.tensordot"),
    (lambda w: np.reshape(w, (3, 2), order="F"), r"numpy\.reshape.*order.*gt\.reshape"),
])
def test_unmapped_numpy_calls_on_a_tracked_tensor_name_the_gradtape_spelling(call, spelling):
    w = gt.asarray(W0).requires_grad_()
    with pytest.raises(TypeError, match=spelling):
        call(w)
    assert w.grad is None


def test_out_tensor_is_refused():
    with pytest.raises(TypeError, match="out="):
        np.sin(np.ones(2), out=gt.zeros(2))


def test_asarray_of_a_tracked_tensor_says_how_to_keep_the_graph():
    w = gt.asarray(W0).requires_grad_()
    with pytest.raises(RuntimeError, match=r"drop its graph.*detach.*keep the graph.*np\.sin"):
        np.asarray(w)
    np.testing.assert_array_equal(np.asarray(w.detach()), W0)


# ---- 3. numpy() ------------------------------------------------------------------------------------

def test_numpy_of_a_tensor_that_requires_grad_raises_like_pytorch():
    x = gt.asarray([1.0, 2.0]).requires_grad_()
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad.*detach\(\)\.numpy\(\)"):
        x.numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(gt.to_numpy(x), [1.0, 2.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [2.0, 4.0])
    np.testing.assert_array_equal(gt.asarray([3.0]).numpy(), [3.0])


def test_asnumpy_is_an_mxnet_copy():
    x = gt.asarray([1.0, 2.0])
    x.attach_grad()
    n = x.asnumpy()
    n[:] = 7.0
    np.testing.assert_array_equal(to_np(x), [1.0, 2.0])


# ---- 4. retain_grad and the non-leaf .grad ----------------------------------------------------------

def test_retain_grad_keeps_the_grad_of_a_non_leaf_and_accumulates():
    x = gt.asarray([1.0, 2.0, 3.0]).requires_grad_()
    h = x * x
    h.retain_grad()
    assert h.retains_grad and not (x * 2).retains_grad
    y = gt.sum(3.0 * h) + gt.sum(h * h)              # two consumers: the total cotangent 3 + 2h
    y.backward(retain_graph=True)
    np.testing.assert_allclose(to_np(h.grad), 3 + 2 * np.array([1.0, 4.0, 9.0]))
    np.testing.assert_allclose(to_np(x.grad), (3 + 2 * np.array([1.0, 4.0, 9.0])) * 2 * np.array([1.0, 2.0, 3.0]))
    y.backward()
    np.testing.assert_allclose(to_np(h.grad), 2 * (3 + 2 * np.array([1.0, 4.0, 9.0])))


def test_retain_grad_on_the_root_and_through_a_multi_input_node():
    a = gt.asarray([1.0, 2.0]).requires_grad_()
    b = gt.asarray([3.0, 5.0]).requires_grad_()
    h = a * b
    h.retain_grad()
    z = gt.sum(h)
    z.retain_grad()
    (2 * z).backward()
    np.testing.assert_allclose(to_np(z.grad), 2.0)
    np.testing.assert_allclose(to_np(h.grad), [2.0, 2.0])
    np.testing.assert_allclose(to_np(a.grad), [6.0, 10.0])


def test_retain_grad_leaves_other_passes_alone():
    x = gt.asarray([1.0, 2.0]).requires_grad_()
    h = gt.sin(x)
    h.retain_grad()
    g, = gt.autograd.grad(gt.sum(h * h), [x], retain_graph=True)
    np.testing.assert_allclose(to_np(g), 2 * np.sin([1.0, 2.0]) * np.cos([1.0, 2.0]))
    assert h.grad is None and x.grad is None


def test_retain_grad_writes_nothing_when_the_backward_fails():
    @gt.custom_vjp
    def bad(x):
        return x * 1.0

    def fail(res, ct):
        raise ValueError("bad rule")

    bad.defvjp(lambda x: (x * 1.0, None), fail)
    x = gt.asarray([1.0, 2.0]).requires_grad_()
    h = bad(x) * 2.0
    h.retain_grad()
    with pytest.raises(ValueError, match="bad rule"):
        gt.sum(h).backward()
    assert h.grad is None and x.grad is None


def test_retain_grad_of_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gt.asarray([1.0]).retain_grad()


def test_grad_of_a_non_leaf_warns_as_pytorch():
    x = gt.asarray([1.0, 2.0]).requires_grad_()
    h = x * 2
    with pytest.warns(UserWarning, match="not a leaf Tensor is being accessed.*retain_grad"):
        assert h.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is None                      # a leaf: no warning
        h.retain_grad()
        assert h.grad is None                      # retained, before backward: no warning
        assert gt.asarray([1.0]).grad is None
