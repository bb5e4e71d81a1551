"""gt.jit's rows x cols kernels: 2-D views in the grid loop, and outer-product broadcasts ((B, M, 1) * (B, 1, N),
the per-example weight gradients of gt.vmap(gt.grad)) as kernels of their own (numba_lower.alone_worth_a_kernel),
each equal to eager NumPy exactly."""
import numpy as np
import pytest

import gradtape as gt

pytest.importorskip("numba", reason="gt.jit's kernels need numba (the `jit` extra)")
from gradtape._jit import numba_lower as NL  # noqa: E402

RNG = np.random.default_rng(7)
OUTER = [((256, 64, 1), (256, 1, 256)), ((256, 10, 1), (256, 1, 256)), ((4, 64, 1), (4, 1, 300)),
         ((3, 5, 64, 1), (3, 1, 1, 512)), ((256, 1, 300), (256, 64, 1))]


def _kernels(f, *args):
    lo = f.lower(*args)
    return lo.source().count("# ---- fused") if lo.kind == "numba" else 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sa, sb", OUTER)
def test_outer_broadcast_is_a_kernel_equal_to_numpy(sa, sb, dtype):
    a, b = RNG.random(sa).astype(dtype), RNG.random(sb).astype(dtype)
    for op, ref in ((gt.multiply, np.multiply), (gt.add, np.add), (gt.subtract, np.subtract)):
        f = gt.jit(lambda x, y: op(x, y))
        out = f(gt.asarray(a), gt.asarray(b))
        want = ref(a, b)
        assert out.shape == want.shape and out.dtype == gt.asarray(want).dtype
        np.testing.assert_array_equal(gt.to_numpy(out), want)
        assert _kernels(f, gt.asarray(a), gt.asarray(b)) == 1


def test_outer_of_strided_views():
    a, b = RNG.random((64, 256)), RNG.random((256, 300))     # transposed views: (256, 64, 1), (256, 1, 300)
    x = gt.reshape(gt.matrix_transpose(gt.asarray(a)), (256, 64, 1))
    y = gt.expand_dims(gt.asarray(b)[:, ::1], axis=1)
    f = gt.jit(lambda x, y: x * y)
    np.testing.assert_array_equal(gt.to_numpy(f(x, y)), gt.to_numpy(x) * gt.to_numpy(y))


def test_outer_at_two_threads_is_the_same():
    a, b = RNG.random((256, 64, 1)), RNG.random((256, 1, 256))
    f = gt.jit(lambda x, y: gt.tanh(x * y))
    want = np.tanh(a * b)
    for n in (1, 2):
        gt.set_num_threads(n)
        try:
            np.testing.assert_allclose(gt.to_numpy(f(gt.asarray(a), gt.asarray(b))), want, rtol=1e-15, atol=0)
        finally:
            gt.set_num_threads(1)


@pytest.mark.parametrize("shape", [(300, 400), (64, 1030), (2, 3, 500)])
def test_grid_with_a_row_a_column_and_full_inputs(shape):
    x = RNG.standard_normal(shape)
    row = RNG.standard_normal(shape[-1:])
    col = RNG.standard_normal(shape[:-1] + (1,))
    f = gt.jit(lambda x, r, c: gt.tanh(x + r) * c - x)
    got = gt.to_numpy(f(gt.asarray(x), gt.asarray(row), gt.asarray(col)))
    np.testing.assert_allclose(got, np.tanh(x + row) * col - x, rtol=1e-14, atol=1e-15)
    g = gt.jit(gt.grad(lambda x, r, c: gt.sum(gt.tanh(x + r) * c), argnums=(0, 1, 2)))
    want = gt.grad(lambda x, r, c: gt.sum(gt.tanh(x + r) * c), argnums=(0, 1, 2))(
        gt.asarray(x), gt.asarray(row), gt.asarray(col))
    for u, v in zip(g(gt.asarray(x), gt.asarray(row), gt.asarray(col)), want):
        np.testing.assert_allclose(gt.to_numpy(u), gt.to_numpy(v), rtol=1e-12, atol=1e-13)


def test_which_single_ops_get_a_kernel():
    assert NL.alone_worth_a_kernel([(256, 64, 1), (256, 1, 256)], (256, 64, 256))
    assert NL.alone_worth_a_kernel([(256, 1, 300), (256, 64, 1)], (256, 64, 300))
    assert not NL.alone_worth_a_kernel([(4, 8, 1), (4, 1, 8)], (4, 8, 8))            # small: NumPy
    assert not NL.alone_worth_a_kernel([(64, 1), (1, 2048)], (64, 2048))             # NumPy's loop is long already
    assert not NL.alone_worth_a_kernel([(2, 1, 300, 1), (2, 7, 1, 300)], (2, 7, 300, 300))   # a broadcast copy


def test_per_example_gradients_through_jit_equal_eager():
    sizes = (64, 256, 10)
    w1, b1 = (RNG.standard_normal(sizes[:2]) * 0.18).astype(np.float32), np.full(sizes[1], 0.01, np.float32)
    w2, b2 = (RNG.standard_normal(sizes[1:]) * 0.09).astype(np.float32), np.full(sizes[2], 0.01, np.float32)
    p = {"W1": gt.asarray(w1), "b1": gt.asarray(b1), "W2": gt.asarray(w2), "b2": gt.asarray(b2)}
    x = gt.asarray(RNG.random((256, 64)).astype(np.float32))
    y = gt.asarray(RNG.integers(0, 10, 256))

    def loss(p, x, y):
        h = gt.nn.relu(x @ p["W1"] + p["b1"])
        return gt.nn.cross_entropy(h @ p["W2"] + p["b2"], y)
    f = gt.vmap(gt.grad(loss), in_axes=(None, 0, 0))
    jf = gt.jit(f)
    got, want = jf(p, x, y), f(p, x, y)
    assert jf.lower(p, x, y).kind == "numba"
    assert "w1, c]" in jf.lower(p, x, y).source()        # the outer products are kernels
    for k in want:
        np.testing.assert_allclose(gt.to_numpy(got[k]), gt.to_numpy(want[k]), rtol=1e-5, atol=2e-6)   # (float32: the kernels round differently)
