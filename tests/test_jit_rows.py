"""gt.jit's row kernels (gradtape/_jit/rows.py): the softmax cross-entropy's forward and its gradient's residual
(softmax - onehot) each as one numba kernel, against eager gradtape and PyTorch; derivatives through them
(finite differences, first and second order, forward and reverse); non-finite logits; the fallbacks (strided
logits, large ones, float16, labels out of range). Longer fuzz: python -m tests.difftest.jit --backend cpu
--only-op nn.cross_entropy --n N."""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt
from gradtape._jit import rows
from gradtape.testing import check_grads

pytest.importorskip("numba")

RNG = np.random.default_rng(5)


def _logits(shape, dtype="float64", scale=3.0):
    return gt.asarray(RNG.uniform(-scale, scale, shape).astype(dtype))


def _labels(shape, classes, dtype="int64"):
    return gt.asarray(RNG.integers(0, classes, shape).astype(dtype))


def _kernel_calls(monkeypatch):
    """A list of the row kernels' calls (kind, logits shape)."""
    calls = []
    call = rows.RowOp.__call__

    def counted(self, xp, x, labels):
        calls.append((self.kind, tuple(x.shape)))
        return call(self, xp, x, labels)
    monkeypatch.setattr(rows.RowOp, "__call__", counted)
    return calls


def _loss(x, y):
    return gt.nn.cross_entropy(x, y)


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")   # (eager's, at 0 rows)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4), (7,), (1, 1), (0, 4)])
@pytest.mark.parametrize("label_dtype", ["int64", "int32", "uint8"])
def test_values_and_gradients_equal_eager(monkeypatch, dtype, shape, label_dtype):
    """Loss and gradient through the kernels equal eager gradtape's (float32: to its precision; the kernels
    round once, eager at every step), for N-D logits, one row, one class, an empty batch (NaN loss)."""
    calls = _kernel_calls(monkeypatch)
    x, y = _logits(shape, dtype), _labels(shape[:-1], shape[-1], label_dtype)
    vg = gt.value_and_grad(_loss)
    want_v, want_g = vg(x, y)
    got_v, got_g = gt.jit(vg)(x, y)
    tol = dict(rtol=2e-6, atol=2e-7) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gt.to_numpy(got_v), gt.to_numpy(want_v), **tol)
    np.testing.assert_allclose(gt.to_numpy(got_g), gt.to_numpy(want_g), **tol)
    assert got_v.dtype == want_v.dtype and got_g.dtype == want_g.dtype and got_g.shape == x.shape
    assert sorted({k for k, _ in calls}) == ["cross_entropy", "softmax_minus_onehot"], calls


def test_against_torch():
    """Loss, gradient and Hessian-vector product of the jitted loss against torch's cross_entropy (float64)."""
    torch = pytest.importorskip("torch")
    x, y = _logits((8, 6)), _labels((8,), 6)
    v = _logits((8, 6), scale=1.0)
    xt = torch.from_numpy(gt.to_numpy(x)).requires_grad_()
    lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(gt.to_numpy(y)))
    (gt_,) = torch.autograd.grad(lt, xt, create_graph=True)
    (hv,) = torch.autograd.grad((gt_ * torch.from_numpy(gt.to_numpy(v))).sum(), xt)
    loss, g = gt.jit(gt.value_and_grad(_loss))(x, y)
    hvp = gt.jit(lambda x, y, v: gt.jvp(lambda x: gt.grad(_loss)(x, y), (x,), (v,))[1])(x, y, v)
    np.testing.assert_allclose(float(loss), lt.item(), rtol=1e-13)
    np.testing.assert_allclose(gt.to_numpy(g), gt_.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gt.to_numpy(hvp), hv.numpy(), rtol=1e-11, atol=1e-14)


def test_derivatives_through_the_kernels_against_finite_differences(monkeypatch):
    """check_grads of the jitted loss and of its jitted gradient: first and second order, forward and reverse
    (the kernels run: counted)."""
    calls = _kernel_calls(monkeypatch)
    x, y = _logits((4, 5), scale=2.0), _labels((4,), 5)
    check_grads(gt.jit(lambda x: _loss(x, y)), (x,), order=2, modes=("fwd", "rev"))
    check_grads(gt.jit(gt.grad(lambda x: _loss(x, y))), (x,), order=1, modes=("fwd", "rev"))
    assert {k for k, _ in calls} == {"cross_entropy", "softmax_minus_onehot"}


def test_jit_of_hessian_equals_eager():
    x, y = _logits((3, 4)), _labels((3,), 4)
    h = gt.hessian(lambda x: _loss(x, y))
    np.testing.assert_allclose(gt.to_numpy(gt.jit(h)(x)), gt.to_numpy(h(x)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_logits_follow_eager(bad):
    """A row holding inf, -inf or NaN, and a row of all -inf: the same NaNs and infinities as eager."""
    a = RNG.uniform(-1, 1, (4, 3))
    a[1, 2] = bad
    a[2, :] = -np.inf
    x, y = gt.asarray(a), gt.asarray(np.array([0, 2, 1, 1]))
    vg = gt.value_and_grad(_loss)
    with np.errstate(all="ignore"):
        want_v, want_g = vg(x, y)
        got_v, got_g = gt.jit(vg)(x, y)
    np.testing.assert_array_equal(np.isnan(gt.to_numpy(got_v)), np.isnan(gt.to_numpy(want_v)))
    np.testing.assert_allclose(gt.to_numpy(got_g), gt.to_numpy(want_g), rtol=1e-13, atol=1e-15)


def test_listing_names_the_kernels():
    x, y = _logits((6, 5)), _labels((6,), 5)
    src = gt.jit(gt.value_and_grad(_loss)).lower(x, y).source()
    assert "= cross_entropy_rows(xp, " in src and "= softmax_minus_onehot_rows(xp, " in src, src
    assert "# ---- cross_entropy_rows, softmax_minus_onehot_rows: the softmax cross-entropy's row kernels" in src
    assert "gemm0" not in src          # (no product: the note names the row kernels only)


def test_strided_logits_fall_back_to_the_eager_forward(monkeypatch):
    """Logits that are a transposed view reach the kernel's wrapper, which hands them to the eager forward."""
    fallback = []
    monkeypatch.setattr(rows.RowOp, "__init__", _spy_init(rows.RowOp.__init__, fallback))
    xt = _logits((5, 6))
    y = _labels((6,), 5)
    f = gt.jit(gt.value_and_grad(lambda x: _loss(gt.matrix_transpose(x), y)))
    got_v, got_g = f(xt)
    want_v, want_g = gt.value_and_grad(lambda x: _loss(gt.matrix_transpose(x), y))(xt)
    np.testing.assert_allclose(gt.to_numpy(got_v), gt.to_numpy(want_v), rtol=1e-13)
    np.testing.assert_allclose(gt.to_numpy(got_g), gt.to_numpy(want_g), rtol=1e-13, atol=1e-15)
    assert fallback


def _spy_init(init, seen):
    def spy(self, kind, fallback, kernel=True):
        def counted(xp, x, labels):
            seen.append(kind)
            return fallback(xp, x, labels)
        init(self, kind, counted, kernel)
    return spy


@pytest.mark.parametrize("shape,dtype", [((200, 100), "float32"), ((4, 3), "float16")])
def test_large_or_half_logits_stay_numpy(monkeypatch, shape, dtype):
    """More than ROWS_MAX elements of more than NARROW classes (NumPy's vectorized exp is faster there), and
    float16: the eager forward."""
    calls = []
    call = rows.RowOp.__call__
    monkeypatch.setattr(rows.RowOp, "__call__", lambda self, xp, x, labels: calls.append(self.f) or call(self, xp, x, labels))
    x, y = _logits(shape, dtype), _labels(shape[:-1], shape[-1])
    got = gt.jit(gt.grad(_loss))(x, y)
    np.testing.assert_allclose(gt.to_numpy(got).astype(np.float64), gt.to_numpy(gt.grad(_loss)(x, y)).astype(np.float64),
                               rtol=1e-6, atol=1e-7)
    assert len(calls) == 1 and calls[0] is None, calls       # (the gradient's residual; no kernel)
    assert (np.prod(shape) > rows.ROWS_MAX and shape[-1] > rows.NARROW) or dtype == "float16"


def test_many_rows_of_few_classes_take_the_kernel(monkeypatch):
    """A large batch of few classes (the MLP at b=4096) runs the kernels: NumPy pays per row there."""
    calls = _kernel_calls(monkeypatch)
    x, y = _logits((4096, 10), "float32"), _labels((4096,), 10)
    got_v, got_g = gt.jit(gt.value_and_grad(_loss))(x, y)
    want_v, want_g = gt.value_and_grad(_loss)(x, y)
    np.testing.assert_allclose(gt.to_numpy(got_v), gt.to_numpy(want_v), rtol=2e-6)
    np.testing.assert_allclose(gt.to_numpy(got_g), gt.to_numpy(want_g), rtol=2e-6, atol=1e-9)
    assert {k for k, _ in calls} == {"cross_entropy", "softmax_minus_onehot"}
    assert 4096 * 10 > rows.ROWS_MAX


@pytest.mark.parametrize("shape", [(3, 4), (300, 100), (2000, 8)])
def test_labels_out_of_range_are_the_eager_error(shape):
    """A jitted graph holds no label check of its own (the API's runs at trace time): a later call with a label
    out of range is eager's ValueError, from the kernel and from the eager forward (large logits), never a -1
    silently picking the last class."""
    x = _logits(shape)
    n = shape[0]
    for f in (gt.jit(lambda x, y: _loss(x, y)), gt.jit(gt.grad(_loss))):
        f(x, _labels((n,), shape[1]))
        for bad in (shape[1], -1):
            y = np.zeros(n, dtype=np.int64)
            y[n // 2] = bad
            with pytest.raises(ValueError, match=f"label {bad} is out of range for {shape[1]} classes"):
                f(x, gt.asarray(y))


def test_kernel_declines_a_label_out_of_range():
    """The kernels' own check: out of range goes to the fallback; in range, the values."""
    seen = []
    op = rows.RowOp("cross_entropy", lambda xp, x, labels: seen.append("ce") or xp.asarray(-1.0))
    res = rows.RowOp("softmax_minus_onehot", lambda xp, x, labels: seen.append("res") or x)
    x = np.zeros((2, 3))
    assert float(op(np, x, np.array([0, 3]))) == -1.0
    assert res(np, x, np.array([-1, 0])) is x
    assert seen == ["ce", "res"]
    np.testing.assert_allclose(float(op(np, x, np.array([0, 2]))), np.log(3.0), rtol=1e-15)
    np.testing.assert_allclose(res(np, x, np.array([0, 2])), np.array([[-2, 1, 1], [1, 1, -2]]) / 3.0, rtol=1e-15)


@pytest.mark.parametrize("bad", [4, -1])
def test_replayed_graph_reports_labels_out_of_range(bad):
    """gt.trace's replay (no jit) runs the primitives without the API: on NumPy their forwards report a label
    out of range too (before, a -1 picked the last class)."""
    x = _logits((3, 4))
    for f in (_loss, gt.grad(_loss)):
        g = gt.trace(f, x, _labels((3,), 4))
        with pytest.raises(ValueError, match=f"label {bad} is out of range for 4 classes"):
            g(x, gt.asarray(np.array([0, bad, 1])))


def test_vmap_of_jitted_per_example_gradients():
    """Per-example gradients (vmap of the jitted gradient, the residual batched) equal a loop."""
    x, y = _logits((5, 2, 4)), _labels((5, 2), 4)
    g = gt.jit(gt.grad(_loss))
    got = gt.vmap(g)(x, y)
    want = np.stack([gt.to_numpy(gt.grad(_loss)(x[i], y[i])) for i in range(5)])
    np.testing.assert_allclose(gt.to_numpy(got), want, rtol=1e-13, atol=1e-15)


def test_fuzz_programs_with_a_cross_entropy():
    """The differential fuzzer's programs with a cross-entropy (the first 12 general ones from seed 0) through
    gt.jit, the row kernels running them, against PyTorch/JAX."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from tests.difftest import jit as DJ
    from tests.difftest import programs as P
    seeds = [s for s in range(0, 3000) if DJ.has_op(P.generate(s, "general"), "nn.cross_entropy")][:12]
    assert len(seeds) == 12
    counts, bad = DJ.run(seeds, "general", "cpu")
    assert not bad, f"{len(bad)} programs differ\n\n{bad[0].report()}"
    assert counts["ok"] >= 8, counts
