"""Views and in-place writes with NumPy/PyTorch semantics, tracked by autograd (issue 12, part 1).

The consumers' failures reduced to small programs (SciPy's oaconvolve, tanhsinh, ndimage's ``output=``,
scikit-learn's GaussianMixture ``reg_covar``), each run on gradtape and on PyTorch (through
array_api_compat.torch, so one program text serves both) and compared for values and gradients; then
alias visibility for each kind of view, version errors and the leaf rule.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt


def _both(prog, *shapes, seed=0):
    """prog(xp, *xs) on gradtape and on torch float64: values and gradients of sum(out * w) must agree."""
    torch = pytest.importorskip("torch")
    tx = pytest.importorskip("array_api_compat.torch")
    rng = np.random.default_rng(seed)
    vals = [rng.standard_normal(s) for s in shapes]
    gx = [gt.asarray(v).requires_grad_() for v in vals]
    g_out = prog(gt, *gx)
    w = np.cos(np.arange(g_out.size, dtype=np.float64)).reshape(g_out.shape)
    gt.sum(g_out * gt.asarray(w)).backward()
    tx_in = [torch.tensor(v, requires_grad=True) for v in vals]
    t_out = prog(tx, *tx_in)
    (t_out * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(gt.to_numpy(g_out), t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for g, t in zip(gx, tx_in):
        np.testing.assert_allclose(gt.to_numpy(g.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)
    return g_out


def test_oaconvolve_overlap_add_on_split_views():
    # scipy.signal.oaconvolve: ret_overpart = ret[1:, :overlap]; overpart = ret[:-1, -overlap:]; +=
    def prog(xp, x, k):
        ret = xp.reshape(x * 1.0, (4, 6)) * k        # the blocks' convolutions (4 blocks of step 4 + overlap 2)
        ret_overpart = ret[1:, :2]
        overpart = ret[:-1, -2:]
        ret_overpart += overpart
        return xp.sin(xp.reshape(ret[:, :4], (-1,)))
    out = _both(prog, (24,), (6,))
    assert out.shape == (16,)


def test_oaconvolve_overlap_add_values_change_the_base():
    x = gt.ones((3, 4))
    a, b = x[1:, :2], x[:-1, -2:]
    a += b
    assert gt.to_numpy(x).tolist() == [[1, 1, 1, 1], [2, 2, 1, 1], [2, 2, 1, 1]]


def test_tanhsinh_unpacked_reshape_views_then_masked_write():
    # scipy.integrate.tanhsinh: fr, fl = xp.reshape(f, (2, -1)); fr[invalid] = xp.nan (here: 0.5)
    def prog(xp, f):
        f = xp.sin(f) + 1.0
        f2 = xp.reshape(f, (2, -1))
        fr, fl = f2 if xp is gt else (f2[0], f2[1])     # torch forbids writes into unbind's views
        invalid = fr > 1.5
        fr[invalid] = 0.5
        fl *= 2.0
        return f * f
    _both(prog, (10,), seed=3)


def test_tanhsinh_values():
    f = gt.arange(6.0)
    fr, fl = gt.reshape(f, (2, -1))
    fr[fr > 0.5] = -1.0
    assert gt.to_numpy(f).tolist() == [0, -1, -1, 3, 4, 5]


def test_gaussian_mixture_reg_covar_on_the_diagonal():
    # sklearn: cov.flat[::n_features + 1] += reg_covar, written as a reshape view
    def prog(xp, x):
        n = 4
        cov = (xp.matrix_transpose(x) @ x) / 5.0
        flat = xp.reshape(cov, (-1,))
        flat[::n + 1] += 0.25
        return xp.linalg.cholesky(cov)
    out = _both(prog, (5, 4))
    assert out.shape == (4, 4)


def test_gaussian_mixture_values():
    cov = gt.zeros((3, 3))
    gt.reshape(cov, (-1,))[::4] += 2.0
    assert gt.to_numpy(cov).tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_ndimage_output_argument_written_through_a_view():
    # ndimage: output[...] = result, output a moveaxis view of the caller's array
    def prog(xp, x, r):
        buf = x * 2.0
        output = xp.moveaxis(buf, 0, -1)
        output[...] = xp.tanh(r)
        return buf * x
    _both(prog, (2, 3), (3, 2))


def test_ndimage_output_values():
    buf = gt.zeros((2, 3))
    out = gt.moveaxis(buf, 0, -1)
    out[...] = gt.reshape(gt.arange(6.0), (3, 2))
    assert gt.to_numpy(buf).tolist() == [[0, 2, 4], [1, 3, 5]]


def _views(x):
    """(name, view of the (2, 3, 1) tensor x, index of an element of the view, the element of x it is)."""
    return [("slice", x[1:, ::2], (0, 1, 0), (1, 2, 0)),
            ("int", x[1], (2, 0), (1, 2, 0)),
            ("newaxis", x[None, 0], (0, 1, 0), (0, 1, 0)),
            ("reshape", gt.reshape(x, (6,)), (4,), (1, 1, 0)),
            ("permute_dims", gt.permute_dims(x, (2, 1, 0)), (0, 2, 1), (1, 2, 0)),
            ("mT", x.mT, (1, 0, 2), (1, 2, 0)),
            ("moveaxis", gt.moveaxis(x, 0, -1), (2, 0, 1), (1, 2, 0)),
            ("squeeze", gt.squeeze(x, axis=2), (1, 0), (1, 0, 0)),
            ("expand_dims", gt.expand_dims(x, axis=0), (0, 0, 1, 0), (0, 1, 0)),
            ("unpacking", tuple(iter(x))[1], (1, 0), (1, 1, 0)),
            ("view of a view", gt.reshape(x[1:], (3,))[1:], (0,), (1, 1, 0))]


@pytest.mark.parametrize("kind", [v[0] for v in _views(gt.zeros((2, 3, 1)))])
def test_a_write_through_a_view_reaches_the_base_and_every_alias(kind):
    x = gt.reshape(gt.arange(6.0), (2, 3, 1))
    name, v, iv, ix = next(e for e in _views(x) if e[0] == kind)
    other = x[1:]                    # another alias
    v[iv] = -7.0
    assert float(x[ix]) == -7.0
    assert float(other[(ix[0] - 1,) + ix[1:]]) == -7.0 if ix[0] == 1 else float(other[0, 0, 0]) == 3.0
    x[ix] = 9.0                      # and a write into the base reaches the view
    assert float(v[iv]) == 9.0


def xp_new(xp, a, b):
    """A new value of a from a and b, keeping no view alive in the graph (PyTorch, as gradtape, refuses a
    backward through a view saved before a write into its base)."""
    return xp.sin(a * 1.0) * (b * 3.0)


@pytest.mark.parametrize("kind", [v[0] for v in _views(gt.zeros((2, 3, 1)))])
def test_gradients_through_a_write_into_each_kind_of_view(kind):
    torch = pytest.importorskip("torch")
    vals = np.arange(1.0, 7.0).reshape(2, 3, 1)
    x = gt.asarray(vals).requires_grad_()
    y = x * 1.0
    name, v, iv, ix = next(e for e in _views(y) if e[0] == kind)
    v[iv] = xp_new(gt, v[iv], y[0, 0, 0])   # the new value depends on the old one and on another element
    gt.sum(y * y).backward()
    t = torch.tensor(vals, requires_grad=True)
    u = t * 1.0
    u[ix] = xp_new(torch, u[ix], u[0, 0, 0])
    (u * u).sum().backward()
    np.testing.assert_allclose(gt.to_numpy(y), u.detach().numpy())
    np.testing.assert_allclose(gt.to_numpy(x.grad), t.grad.numpy())


def test_a_reshape_that_copies_is_not_a_view():
    x = gt.reshape(gt.arange(6.0), (2, 3))
    y = gt.reshape(x.mT, (6,))        # NumPy copies here (and PyTorch's reshape too)
    y[0] = 100.0
    assert float(x[0, 0]) == 0.0


def test_a_value_saved_before_a_write_raises_at_backward():
    x = gt.asarray([1.0, 2.0, 3.0]).requires_grad_()
    y = x * 1.0
    v = y[:2]
    z = gt.sin(v)                     # sin saves v
    y[0] = 5.0                        # v's version changes
    with pytest.raises(RuntimeError, match="in place|in-place|modified|changed"):
        gt.sum(z).backward()


def test_a_write_into_the_base_invalidates_a_view_saved_by_the_graph():
    x = gt.asarray([1.0, 2.0, 3.0]).requires_grad_()
    y = x * 1.0
    z = gt.sin(y[1:])                 # sin saves its input, the view
    y[1:] += 1.0
    with pytest.raises(RuntimeError):
        gt.sum(z).backward()


def test_an_inplace_op_on_a_view_keeps_its_own_input():
    x = gt.asarray([1.0, 2.0, 3.0]).requires_grad_()
    y = x * 1.0
    v = y[1:]
    v *= x[:2]                        # mul saves the old v: it must not see the new one
    gt.sum(y).backward()
    assert gt.to_numpy(x.grad).tolist() == [1 + 2, 1 + 3, 2]


def test_a_view_of_a_leaf_that_requires_grad_cannot_be_written_while_recording():
    x = gt.ones(3).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x[1:][0] = 2.0
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x[0] = 2.0
    assert gt.to_numpy(x).tolist() == [1, 1, 1]


def test_writes_under_no_grad_keep_working_for_leaves_and_their_views():
    x = gt.ones(3).requires_grad_()
    v = x[1:]
    with gt.no_grad():
        v -= 0.5
        x[0] = 3.0
    assert gt.to_numpy(x).tolist() == [3, 0.5, 0.5] and x.requires_grad and x.is_leaf
    gt.sum(x * x).backward()
    assert gt.to_numpy(x.grad).tolist() == [6, 1, 1]


def test_a_tracked_value_written_into_an_untracked_base_tracks_the_base_and_its_aliases():
    w = gt.asarray([2.0, 3.0]).requires_grad_()
    buf = gt.zeros((2, 2))
    row = buf[1]
    buf[0] = w * w
    assert row.requires_grad         # a view of a tracked tensor (as in PyTorch)
    row += w
    assert buf.requires_grad and row.requires_grad
    gt.sum(buf).backward()
    assert gt.to_numpy(w.grad).tolist() == [5, 7]


def test_is_writeable_array_tells_the_truth():
    compat = pytest.importorskip("array_api_compat")
    x = gt.zeros(4)
    assert compat.is_writeable_array(x)
    v = x[::2]
    v += 1.0
    assert gt.to_numpy(x).tolist() == [1, 0, 1, 0]


def test_views_on_the_strict_backend():
    pytest.importorskip("array_api_strict")
    x = gt.zeros((2, 3), device="strict") if "strict" in gt.backends.available() else None
    if x is None:
        pytest.skip("array-api-strict backend not available")
    y = gt.reshape(x, (6,))
    y[1:3] = 2.0
    a, b = x
    b += 1.0
    assert gt.to_numpy(x).tolist() == [[0, 2, 2], [1, 1, 1]]


def test_an_optimiser_step_on_a_parameter_updates_its_live_views():
    p = gt.ones(3).requires_grad_()
    v = p[1:]
    gt.sum(p * p).backward()
    with gt.no_grad():
        p -= 0.25 * p.grad
    assert gt.to_numpy(v).tolist() == [0.5, 0.5] and p.is_leaf and p.requires_grad


def test_forward_mode_through_a_write_into_a_view():
    def f(x):
        y = x * 1.0
        v = gt.reshape(y, (2, 2))[1]
        v *= 3.0
        return y * y
    x = gt.asarray([1.0, 2.0, 3.0, 4.0])
    out, tan = gt.jvp(f, (x,), (gt.ones(4),))
    assert gt.to_numpy(out).tolist() == [1, 4, 81, 144]
    assert gt.to_numpy(tan).tolist() == [2, 4, 54, 72]      # d(9 x^2) = 18 x for the written half


def test_reverse_through_a_write_then_higher_order():
    def f(x):
        y = x * 1.0
        y[1:] = gt.sin(y[1:] * 1.0)
        return gt.sum(y * y)
    x = gt.asarray([0.5, 1.0, 2.0])
    h = gt.hessian(f)(x)
    expect = [2.0] + [2 * (gt.cos(gt.asarray(a)) ** 2 - gt.sin(gt.asarray(a)) ** 2).item() for a in (1.0, 2.0)]
    np.testing.assert_allclose(np.diag(gt.to_numpy(h)), expect, rtol=1e-12)


def test_many_temporary_views_do_not_accumulate():
    x = gt.zeros(50)
    for i in range(2000):
        x[i % 50]                          # a view each time, dropped at once
    assert len(x._views) < 200


@pytest.mark.parametrize("n, m", [(1000, 10), (400, 37)])
def test_scipy_oaconvolve_overlap_add_matches_numpy(n, m):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n), rng.standard_normal(m)
    r = signal.oaconvolve(gt.asarray(a), gt.asarray(b))     # off by ~4 with value semantics
    np.testing.assert_allclose(gt.to_numpy(r), np.convolve(a, b), atol=1e-12)


def test_sklearn_gaussian_mixture_covariances_get_reg_covar():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.mixture import GaussianMixture
    X = np.random.default_rng(0).standard_normal((40, 3))
    with sklearn.config_context(array_api_dispatch=True):
        g = GaussianMixture(2, reg_covar=0.5, random_state=0, init_params="random").fit(gt.asarray(X))
    ref = GaussianMixture(2, reg_covar=0.5, random_state=0, init_params="random").fit(X)
    np.testing.assert_allclose(gt.to_numpy(gt.asarray(g.covariances_)), ref.covariances_, rtol=1e-10, atol=1e-12)
