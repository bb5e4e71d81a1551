"""gt.jit's buffer reuse (gradtape/_jit/buffers.py): fused kernels writing into the buffers of inputs that die
there, and donated arguments written in place. Every case compares values with eager gradtape; the unsafe
cases (an alias still read later, a graph output, an array the caller still holds) would give other values if
the buffer were written."""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt

pytest.importorskip("numba")

RNG = np.random.default_rng(5)


def _t(shape):
    return gt.asarray(RNG.uniform(-1.0, 1.0, shape))


def _eq(a, b):
    np.testing.assert_array_equal(gt.to_numpy(a), gt.to_numpy(b))


def _close(a, b):
    np.testing.assert_allclose(gt.to_numpy(a), gt.to_numpy(b), rtol=1e-12, atol=1e-12)


def _source(jf, *args):
    return jf.lower(*args).source()


# ---- intermediates ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [8, 300])            # the small kernel path and the general one
def test_elementwise_after_matmul_writes_into_the_matmul_result(n):
    # (arithmetic: a vecmath strip-form region, tanh of 90,000 elements, never writes in place)
    f = lambda x, w: gt.maximum(x @ w, 0.0) * 2.0 + 1.0        # noqa: E731
    x, w = _t((n, 16)), _t((16, n))
    jf = gt.jit(f)
    assert "# in place: output 0 into input 0's buffer" in _source(jf, x, w)
    _close(jf(x, w), f(x, w))
    _close(jf(x, w), f(x, w))


def test_no_reuse_where_a_view_of_the_input_is_read_by_the_same_kernel():
    def f(x, w):
        y = x @ w
        return gt.tanh(y) + gt.matrix_transpose(y)
    x, w = _t((40, 40)), _t((40, 40))
    jf = gt.jit(f)
    assert jf.lower(x, w).kind == "numba"
    assert "in place" not in _source(jf, x, w)
    _close(jf(x, w), f(x, w))


def test_no_reuse_where_a_view_of_the_input_is_read_later():
    def f(x, w):
        y = x @ w
        v = gt.reshape(y, (-1,))                        # a view of y, made before...
        z = y * 3.0 + 1.0                               # ...the kernel that is the last reader of y itself...
        return gt.sum(v * gt.reshape(z, (-1,)))         # ...and read after it
    x, w = _t((30, 20)), _t((20, 30))
    jf = gt.jit(f)
    assert jf.lower(x, w).kind == "numba"
    _close(jf(x, w), f(x, w))
    _close(jf(x, w), f(x, w))


def test_no_reuse_of_a_graph_output():
    def f(x, w):
        y = x @ w
        return y, y * 3.0 + 1.0
    x, w = _t((30, 20)), _t((20, 30))
    jf = gt.jit(f)
    assert jf.lower(x, w).kind == "numba"
    y, t = jf(x, w)
    _close(y, x @ w)
    _close(t, (x @ w) * 3.0 + 1.0)


def test_chained_kernels_reuse_and_match_eager_gradients():
    def loss(x, w):
        h = gt.nn.relu(x @ w + 0.1)
        return gt.sum(gt.tanh(h @ gt.matrix_transpose(w)) ** 2)
    x, w = _t((64, 32)), _t((32, 48))
    jg = gt.jit(gt.grad(loss, argnums=(0, 1)))
    assert "in place" in _source(jg, x, w)
    for got, want in zip(jg(x, w), gt.grad(loss, argnums=(0, 1))(x, w)):
        _close(got, want)


# ---- donated arguments ----------------------------------------------------------------------------------------

def _step(w, x):
    """An SGD step returning its gradient too (so the update cannot take the gradient's buffer)."""
    g = gt.matrix_transpose(x) @ (x @ w)
    return w - 0.01 * g, g


def test_donated_argument_is_written_in_place_and_matches_the_undonated_step():
    x = _t((50, 64))
    start = RNG.uniform(-1.0, 1.0, (64, 64))
    plain, donating = gt.jit(_step), gt.jit(_step, donate_argnums=0)
    w_ref, w = gt.asarray(start.copy()), gt.asarray(start.copy())
    for _ in range(3):
        addr = w.data.ctypes.data
        (w_ref, g_ref), (w, g) = plain(w_ref, x), donating(w, x)
        assert w.data.ctypes.data == addr               # the update wrote into the donated buffer
        _eq(w, w_ref)
        _eq(g, g_ref)


def test_an_array_the_caller_still_holds_is_never_written():
    x = _t((50, 64))
    donating = gt.jit(_step, donate_argnums=0)
    a = RNG.uniform(-1.0, 1.0, (64, 64))
    keep = a.copy()
    out = donating(gt.asarray(a), x)[0]                 # (gt.asarray shares a's memory: a is held)
    np.testing.assert_array_equal(a, keep)
    _close(out, _step(gt.asarray(keep), x)[0])
    out2 = donating(a, x)[0]                            # a NumPy array itself as the donated argument
    np.testing.assert_array_equal(a, keep)
    _close(out2, out)


def test_a_tensor_sharing_the_donated_array_keeps_its_values():
    x = _t((50, 64))
    donating = gt.jit(_step, donate_argnums=0)
    w = gt.asarray(RNG.uniform(-1.0, 1.0, (64, 64)))
    other = w.detach()                                  # the same array
    view = w.data[:3]                                   # a NumPy view of it
    keep, keep_view = gt.to_numpy(other).copy(), view.copy()
    out = donating(w, x)[0]
    np.testing.assert_array_equal(gt.to_numpy(other), keep)
    np.testing.assert_array_equal(view, keep_view)
    _close(out, _step(other, x)[0])
    with pytest.raises(RuntimeError, match="was donated"):
        w + 1.0


def test_donation_with_guards_is_not_written_in_place_and_takes_each_path():
    def f(w, x):
        if gt.sum(w) > 0:
            return _step(w, x)[0]
        return w * 0.5 + 1.0
    x = _t((50, 64))
    donating = gt.jit(f, donate_argnums=0)
    for sign in (1.0, -1.0, 1.0):
        start = np.abs(RNG.uniform(0.1, 1.0, (64, 64))) * sign
        out = donating(gt.asarray(start.copy()), x)
        _close(out, f(gt.asarray(start), x))


def test_donated_training_loop_equals_the_undonated_one():
    """An MLP step (value_and_grad inside, SGD update returned) over 3 steps: bitwise the same with donation."""
    x, y = _t((32, 20)), gt.asarray(RNG.integers(0, 5, 32))

    def loss(w1, b1, w2):
        return gt.nn.cross_entropy(gt.nn.relu(x @ w1 + b1) @ w2, y)

    def step(w1, b1, w2):
        val, grads = gt.value_and_grad(loss, argnums=(0, 1, 2))(w1, b1, w2)
        return val, tuple(p - 0.1 * g for p, g in zip((w1, b1, w2), grads))
    init = [RNG.uniform(-0.5, 0.5, s) for s in ((20, 64), (64,), (64, 5))]
    plain, donating = gt.jit(step), gt.jit(step, donate_argnums=(0, 1, 2))
    ps = [gt.asarray(a.copy()) for a in init]
    qs = [gt.asarray(a.copy()) for a in init]
    for _ in range(3):
        v1, ps = plain(*ps)
        v2, qs = donating(*qs)
        _eq(v1, v2)
        for p, q in zip(ps, qs):
            _eq(p, q)


def test_a_call_that_raises_after_getting_a_donated_buffer_spends_the_tensor():
    def f(w):
        return gt.linalg.inv(w * 2.0 + 1.0)             # the kernel may write into w, then inv raises
    donating = gt.jit(f, donate_argnums=0)
    good = np.eye(4) + 0.1
    _close(donating(gt.asarray(good.copy())), f(gt.asarray(good)))
    w = gt.asarray(np.full((4, 4), -0.5))               # w * 2 + 1 = 0: singular
    with pytest.raises(Exception, match="[Ss]ingular"):
        donating(w)
    with pytest.raises(RuntimeError, match="was donated"):
        w + 1.0
