"""Regression tests for issue 9's indexing and shape defects (values and derivatives against NumPy and torch).

Indexing is linear, so the exact oracle for every derivative is the selection matrix: ``E = f_np(arange)``
names the source element of each output, ``J[r, E[r]] = 1``. Gradients, JVPs, both batched Jacobians and
the Hessian of ``sum(f(x) ** 3)`` are all checked against it, on every backend.
"""
import numpy as np
import pytest

import gradtape as gt
from gradtape._axes import AxisError


def _np(t):
    return gt.to_numpy(t)


def _ix(device, a):
    """An index tensor on the test's device (lists and ints made into arrays)."""
    return gt.asarray(np.asarray(a), device=device)


def check_select(f_gt, f_np, xshape, device, seed=0):
    """f_gt(x) == f_np(x) with every derivative equal to the selection matrix's, on ``device``."""
    rng = np.random.default_rng(seed)
    xn = rng.standard_normal(xshape) + 2.0
    size = xn.size
    E = np.asarray(f_np(np.arange(size).reshape(xshape)))
    want = xn.reshape(-1)[E]
    J = (E[..., None] == np.arange(size)).astype(float)             # R + (size,)
    x = gt.asarray(xn, device=device)
    out = f_gt(x)
    assert out.shape == want.shape, (out.shape, want.shape)
    np.testing.assert_array_equal(_np(out), want)
    W = rng.standard_normal(want.shape)
    g = gt.grad(lambda x: gt.sum(f_gt(x) * gt.asarray(W, device=device)))(x)
    assert g.shape == xshape
    np.testing.assert_allclose(_np(g), np.tensordot(W, J, W.ndim).reshape(xshape), atol=1e-12)
    v = rng.standard_normal(xshape)
    y, t = gt.jvp(f_gt, (x,), (gt.asarray(v, device=device),))
    assert t.shape == want.shape
    np.testing.assert_allclose(_np(t), J @ v.reshape(-1), atol=1e-12)
    Jx = J.reshape(want.shape + xshape)
    for mode in ("reverse", "forward"):
        Jg = gt.jacobian(f_gt, mode=mode)(x)
        assert Jg.shape == want.shape + xshape, (mode, Jg.shape)
        np.testing.assert_array_equal(_np(Jg), Jx, err_msg=mode)
    H = gt.hessian(lambda x: gt.sum(f_gt(x) ** 3))(x)
    Jf = J.reshape(-1, size)
    Hn = (Jf.T * (6 * want.reshape(-1))) @ Jf
    np.testing.assert_allclose(_np(H), Hn.reshape(xshape + xshape), rtol=1e-12, atol=1e-12)


M23 = [[True, False, True], [False, True, True]]
M2 = [True, True]
# (name, x shape, key builder: (index maker) -> key); each is compared with NumPy's reading of the same key
KEYS = [
    ("mask_none", (2, 4), lambda i: (i(M2), None)),
    ("mask_none_one_true", (2, 4), lambda i: (i([False, True]), None)),
    ("none_mask", (2, 4), lambda i: (None, i(M2))),
    ("mask2d_none", (2, 3, 4), lambda i: (i(M23), None)),
    ("mask2d_int", (2, 3, 4), lambda i: (i(M23), 1)),
    ("mask2d_slice", (2, 3, 4), lambda i: (i(M23), slice(1, 3))),
    ("mask_axis1", (2, 3, 4), lambda i: (slice(None), i([True, False, True]))),
    ("mask_axis1_ell_none", (2, 3, 4), lambda i: (None, slice(None), i([True, False, True]), ..., None)),
    ("mask_then_array", (2, 3, 4), lambda i: (slice(None), i([True, False, True]), i([3, -1]))),
    ("mask_all_false", (2, 3, 4), lambda i: (i([[False] * 3] * 2),)),
    ("separated_int", (2, 3, 4), lambda i: (i([1, 0]), slice(None), 0)),
    ("separated_int_first", (2, 3, 4), lambda i: (0, slice(None), i([3, 1, 1]))),
    ("adjacent_int", (2, 3, 4), lambda i: (slice(None), i([2, 0]), 0)),
    ("array_none_array", (2, 3, 4), lambda i: (i([1, 0]), None, i([2, 2]))),
    ("array_ell_array", (2, 3, 4), lambda i: (i([1, 0]), ..., i([-1, 2]))),
    ("ell_array", (2, 3, 4), lambda i: (..., i([-1, 0, -4]))),
    ("array_2d", (2, 3, 4), lambda i: (i([[1, 0], [0, 0]]),)),
    ("broadcast_arrays", (2, 3, 4), lambda i: (i([[1], [0]]), i([2, 0, 1]))),
    ("three_arrays", (2, 3, 4), lambda i: (i([1, 0]), i([2, -3]), i([3, -4]))),
    ("negative_array", (3, 4), lambda i: (i([-1, 0, -3]),)),
    ("neg_step_then_array", (2, 3, 4), lambda i: (slice(None, None, -1), i([2, 0]))),
    ("slices_around_array", (2, 3, 4), lambda i: (slice(1, None), i([1, 1]), slice(None, None, -2))),
    ("none_ell_array_none", (2, 3, 4), lambda i: (None, ..., i([0, 3]), None)),
    ("empty_array", (2, 3, 4), lambda i: (slice(None), i(np.zeros(0, dtype=np.int64)))),
    ("int_array_row_int", (3, 4), lambda i: (i([2, 0]), 1)),
    ("basic_none", (2, 3, 4), lambda i: (None, 1, ..., None, slice(None, None, -1))),
    ("slice_oob_start", (5,), lambda i: slice(-7, None)),
    ("slice_oob_rev", (5,), lambda i: slice(10, None, -1)),
    ("slice_oob_ell", (2, 5), lambda i: (..., slice(None, 10))),
    ("slice_oob_both", (5,), lambda i: slice(-10, 10, 2)),
    ("slice_empty_past_end", (5,), lambda i: slice(7, 9)),
    ("slice_rev_to_start", (5,), lambda i: slice(3, -10, -1)),
    ("slice_rev_empty", (5,), lambda i: slice(1, 3, -1)),
    ("zero_width_ellipsis_separates", (2, 2, 3), lambda i: (None, i([-2, 1]), i([1]), ..., i([True, False, True]))),
    ("true_0d_mask", (2, 3), lambda i: (i(True), 1)),
    ("false_0d_mask", (2, 3), lambda i: (0, i(False))),
    ("python_true_with_array", (2, 3), lambda i: (True, slice(None), i([2, 0]))),
    ("true_0d_mask_of_0d", (), lambda i: i(True)),
]


def _np_key(key):
    ks = key if isinstance(key, tuple) else (key,)
    return tuple(np.asarray(k) if isinstance(k, gt.Tensor) else k for k in ks)


@pytest.mark.parametrize("name,shape,build", KEYS, ids=[k[0] for k in KEYS])
def test_getitem_matches_numpy_with_derivatives(device, name, shape, build):
    key = build(lambda a: _ix(device, a))
    nkey = build(lambda a: np.asarray(a))
    nkey = nkey if isinstance(nkey, tuple) else (nkey,)
    assert np.zeros(shape)[nkey].shape == gt.zeros(shape, device=device)[key].shape
    check_select(lambda x: x[key], lambda a: a[nkey], shape, device)


def test_mask_none_shape_is_numpys():
    x = gt.reshape(gt.arange(8.0), (2, 4))
    assert x[gt.asarray([True, True]), None].shape == (2, 1, 4)
    assert x[gt.asarray([False, True]), None, 1:].shape == (1, 1, 3)


def test_negative_indices_keep_their_gradient(device):
    """array-api-strict's one-hot scatter never matched -1: a[[-1, 0]], take and take_along_axis."""
    a = gt.asarray([1.0, 2.0, 3.0], device=device)
    expect = [1.0, 0.0, 1.0]
    idx = _ix(device, [-1, 0])
    for f in (lambda a: a[idx], lambda a: gt.take(a, idx), lambda a: gt.take(a, idx, axis=0),
              lambda a: gt.take_along_axis(a, idx, axis=0), lambda a: gt.take_along_axis(a, idx, axis=-1)):
        np.testing.assert_array_equal(_np(f(a)), [3.0, 1.0])
        np.testing.assert_array_equal(_np(gt.grad(lambda a: gt.sum(f(a)))(a)), expect)
        np.testing.assert_array_equal(_np(gt.jacobian(f, mode="reverse")(a)), [[0, 0, 1], [1, 0, 0]])
    check_select(lambda x: gt.take(x, _ix(device, [-1, 2, -3, -3]), axis=1), lambda a: np.take(a, [-1, 2, -3, -3], 1),
                 (2, 3), device)
    ia = np.array([[-1, 0], [1, -2]])
    check_select(lambda x: gt.take_along_axis(x, _ix(device, ia), axis=1),
                 lambda a: np.take_along_axis(a, ia, 1), (2, 3), device)


def test_traced_index_stays_an_input_with_negative_entries(device):
    x = gt.asarray(np.arange(6.0).reshape(2, 3), device=device)
    g = gt.trace(lambda x, i: gt.take(x, i, axis=1), x, _ix(device, [0, 1]))
    np.testing.assert_array_equal(_np(g(x, _ix(device, [-1, 0]))), [[2.0, 0.0], [5.0, 3.0]])
    g = gt.trace(lambda x, i: gt.take_along_axis(x, i, axis=1), x, _ix(device, [[0], [1]]))
    np.testing.assert_array_equal(_np(g(x, _ix(device, [[-1], [0]]))), [[2.0], [3.0]])


def test_backend_scatters_wrap_negative_indices(device):
    from gradtape import backends
    bk = backends.get(device)
    xp = bk.xp
    z = xp.zeros((2, 3), dtype=xp.float64)
    v = xp.ones((2, 2), dtype=xp.float64)
    got = bk.to_numpy(xp.take_add(z, bk.asarray([-1, 0]), v, 1))
    np.testing.assert_array_equal(got, [[1, 0, 1], [1, 0, 1]])
    got = bk.to_numpy(xp.along_add(z, bk.asarray([[-1, -1], [0, -3]]), v, 1))
    np.testing.assert_array_equal(got, [[0, 0, 2], [2, 0, 0]])


def test_separated_advanced_indices_jacobian_hessian_match_torch(device):
    torch = pytest.importorskip("torch")
    from torch.func import hessian, jacfwd, jacrev
    xn = np.random.default_rng(3).standard_normal((2, 3, 4))
    x = gt.asarray(xn, device=device)
    idx = _ix(device, [1, 0])
    f = lambda x: gt.sin(x[idx, :, 0]) * 2.0             # noqa: E731
    tf = lambda x: torch.sin(x[torch.tensor([1, 0]), :, 0]) * 2.0       # noqa: E731
    xt = torch.tensor(xn, dtype=torch.float64)
    for mode, oracle in (("reverse", jacrev), ("forward", jacfwd)):
        J = gt.jacobian(f, mode=mode)(x)
        np.testing.assert_allclose(_np(J), oracle(tf)(xt).numpy(), rtol=1e-12, atol=1e-12, err_msg=mode)
    H = gt.hessian(lambda x: gt.sum(f(x) ** 3))(x)
    np.testing.assert_allclose(_np(H), hessian(lambda x: torch.sum(tf(x) ** 3))(xt).numpy(), rtol=1e-10, atol=1e-10)


def test_take_along_axis_broadcasting_indices(device):
    torch = pytest.importorskip("torch")
    xn = np.random.default_rng(1).standard_normal((3, 4))
    for ind, shape in (([[0, 2]], (3, 4)), ([[0], [3], [-1]], (3, 4)), ([[1, 0, 2], [2, 2, 0]], (1, 3))):
        ind = np.asarray(ind)
        xs = xn[:shape[0], :shape[1]]
        check_select(lambda x: gt.take_along_axis(x, _ix(device, ind), axis=1),
                     lambda a: np.take_along_axis(a, ind, 1), shape, device)
        xt = torch.tensor(xs, requires_grad=True)
        torch.take_along_dim(xt, torch.tensor(ind % shape[1]), dim=1).pow(2).sum().backward()
        x = gt.asarray(xs, device=device)
        g = gt.grad(lambda x: gt.sum(gt.take_along_axis(x, _ix(device, ind), axis=1) ** 2))(x)
        np.testing.assert_allclose(_np(g), xt.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        gt.take_along_axis(gt.ones((3, 4), device=device), _ix(device, [0, 1]), axis=1)


def test_mask_on_empty_trailing_axes(device):
    m = np.array([[True, False], [True, True]])
    x = gt.zeros((2, 2, 0), device=device)
    out = x[_ix(device, m)]
    assert out.shape == (3, 0)
    g = gt.grad(lambda x: gt.sum(x[_ix(device, m)]))(x)
    assert g.shape == (2, 2, 0)
    assert gt.zeros((2, 0, 3), device=device)[_ix(device, np.zeros((2, 0), bool))].shape == (0, 3)


def test_out_of_range_slices_on_every_backend(device):
    x = gt.arange(5.0, device=device)
    a = np.arange(5.0)
    for key in (slice(-5, None), slice(-7, None), slice(10, None, -1), slice(None, 10), slice(7, None),
                slice(None, None, -3), slice(-1, -10, -2)):
        np.testing.assert_array_equal(_np(x[key]), a[key], err_msg=str(key))
    np.testing.assert_array_equal(_np(gt.reshape(x, (1, 5))[..., :10]), a.reshape(1, 5)[..., :10])


def _torch_setitem(torch, y, key, v):
    z = y.clone()
    z[key] = v
    return z


SET = [
    ("mask_row", (2, 3), lambda i: i([True, False]), (3,)),
    ("mask_row_scalar_value", (2, 3), lambda i: i([False, True]), ()),
    ("mask_2d_of_3d", (2, 3, 2), lambda i: i(M23), (1, 2)),
    ("mask_full", (2, 3), lambda i: i(M23), (4,)),
    ("int_row", (2, 3), lambda i: 0, (1, 3)),
    ("slice_block", (3, 4), lambda i: (slice(1, None), slice(None, None, 2)), (2, 1)),
    ("ellipsis_col", (2, 3), lambda i: (..., 1), (1,)),
    ("empty_target", (1,), lambda i: slice(1, None), (1,)),
    ("int_array_rows", (3, 2), lambda i: i([2, 0]), (2, 1)),
    ("mask_then_int", (2, 3), lambda i: (i([True, False]), 1), ()),
    ("slice_then_mask", (2, 3), lambda i: (slice(None), i([True, False, True])), (2, 1)),
    ("separated_arrays", (2, 3, 4), lambda i: (i([1, 0]), slice(None), i([3, -1])), (2, 3)),
    ("adjacent_negative", (2, 3, 4), lambda i: (slice(None), i([-1, 0]), 2), (2,)),
]


@pytest.mark.parametrize("name,shape,build,vshape", SET, ids=[s[0] for s in SET])
def test_setitem_values_and_derivatives(device, name, shape, build, vshape):
    """z = y * 1; z[key] = v against NumPy's write (the exact oracle: which v element lands where) and torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    yn, vn = rng.standard_normal(shape), rng.standard_normal(vshape)
    key = build(lambda a: _ix(device, a))
    nkey = build(lambda a: np.asarray(a))
    src = np.full(shape, -1)
    src[nkey] = np.arange(vn.size).reshape(vshape)           # the v element each position gets, -1: y's own
    src = src.reshape(-1)
    Jy = np.diag((src == -1).astype(float)).reshape(shape + shape)
    Jv = (src[:, None] == np.arange(vn.size)).astype(float).reshape(shape + vshape)
    want = np.where(src == -1, yn.reshape(-1), vn.reshape(-1)[src]).reshape(shape)

    def f(y, v):
        z = y * 1.0
        z[key] = v
        return z
    y, v = gt.asarray(yn, device=device), gt.asarray(vn, device=device)
    np.testing.assert_array_equal(_np(f(y, v)), want)
    W = rng.standard_normal(shape)
    gy, gv = gt.grad(lambda y, v: gt.sum(f(y, v) * gt.asarray(W, device=device)), argnums=(0, 1))(y, v)
    assert gy.shape == shape and gv.shape == vshape, (gy.shape, gv.shape)
    np.testing.assert_allclose(_np(gy), np.tensordot(W, Jy, len(shape)), atol=1e-12)
    np.testing.assert_allclose(_np(gv), np.tensordot(W, Jv, len(shape)), atol=1e-12)
    yt, vt = torch.tensor(yn, requires_grad=True), torch.tensor(vn, requires_grad=True)
    z = yt.clone()
    z[build(lambda a: torch.tensor(np.asarray(a)))] = vt
    (z * torch.tensor(W)).sum().backward()
    np.testing.assert_allclose(_np(gy), yt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(_np(gv), vt.grad.numpy(), atol=1e-12)
    for mode in ("reverse", "forward"):
        Jgy, Jgv = gt.jacobian(f, argnums=(0, 1), mode=mode)(y, v)
        np.testing.assert_array_equal(_np(Jgy), Jy, err_msg=mode)
        np.testing.assert_array_equal(_np(Jgv), Jv, err_msg=mode)
    ty, tv = rng.standard_normal(shape), rng.standard_normal(vshape)
    _, t = gt.jvp(f, (y, v), (gt.asarray(ty, device=device), gt.asarray(tv, device=device)))
    np.testing.assert_allclose(_np(t), np.tensordot(Jy, ty, len(shape)) + np.tensordot(Jv, tv, len(vshape)),
                               atol=1e-12)
    H = gt.hessian(lambda v: gt.sum(f(y, v) ** 3))(v)
    Jf = Jv.reshape(-1, vn.size)
    Hn = (Jf.T * (6 * want.reshape(-1))) @ Jf
    np.testing.assert_allclose(_np(H), Hn.reshape(vshape + vshape), rtol=1e-12, atol=1e-12)


def test_setitem_repeated_index_last_write_wins(device):
    key = _ix(device, [0, 2, 0])
    z = gt.zeros((3,), device=device)
    z[key] = gt.asarray([1.0, 2.0, 3.0], device=device)
    n = np.zeros(3)
    n[np.array([0, 2, 0])] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(_np(z), n)


def test_setitem_gradient_shapes_follow_the_value():
    """y[0] = v with v (1, 3) gives v a (1, 3) gradient; y[1:] = v into an empty target a (1,) one of zeros."""
    def f(y, v, key):
        z = y * 1.0
        z[key] = v
        return gt.sum(z * gt.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[:z.shape[0], :z.shape[-1]])
    gv = gt.grad(lambda v: f(gt.ones((2, 3)), v, 0))(gt.ones((1, 3)))
    assert gv.shape == (1, 3)
    np.testing.assert_array_equal(_np(gv), [[1.0, 2.0, 3.0]])
    gv = gt.grad(lambda v: f(gt.ones((1,)), v, slice(1, None)))(gt.ones((1,)))
    assert gv.shape == (1,)
    np.testing.assert_array_equal(_np(gv), [0.0])
    with pytest.raises(ValueError, match="setitem"):
        z = gt.ones((2, 3))
        z[0] = gt.ones((2, 3))


def test_index_of_another_backend_is_the_mixed_device_type_error():
    x = gt.ones((3, 2))
    si = gt.asarray([0, 1], device="strict")
    for f in (lambda: x[si], lambda: x[si, 0], lambda: gt.take(x, si, axis=0),
              lambda: gt.take_along_axis(x, gt.asarray([[0], [1], [0]], device="strict"), axis=1)):
        with pytest.raises(TypeError, match="different backends or devices"):
            f()
    with pytest.raises(TypeError, match="different backends or devices"):
        x[si] = 1.0
    with pytest.raises(TypeError, match="different backends or devices"):
        gt.asarray([1.0, 2.0], device="strict")[gt.asarray([True, False])]


def test_out_of_bounds_integer_indices_raise(device):
    x = gt.ones((2, 3), device=device)
    for key in (5, (0, 3), (0, -4), (_ix(device, [0, 2]),), (_ix(device, [0, -3]), 0), (0, _ix(device, [3]))):
        with pytest.raises(IndexError):
            x[key]


X2 = (2, 3)
# (call, NumPy's call or None): each must raise AxisError (a ValueError and an IndexError), as NumPy does
AXIS_ERRORS = [
    ("squeeze", lambda m: m.squeeze(m.ones((1, 1)), axis=5)),
    ("squeeze_dup", lambda m: m.squeeze(m.ones((1, 1)), axis=(0, 0))),
    ("flip", lambda m: m.flip(m.ones(X2), axis=5)),
    ("flip_dup", lambda m: m.flip(m.ones(X2), axis=(1, -1))),
    ("roll", lambda m: m.roll(m.ones(X2), 1, axis=2)),
    ("take", lambda m: m.take(m.ones(X2), m.asarray([0]), axis=-3)),
    ("take_along_axis", lambda m: m.take_along_axis(m.ones(X2), m.asarray([[0]]), axis=2)),
    ("concat", lambda m: m.concat([m.ones(X2), m.ones(X2)], axis=2)),
    ("permute_dims", lambda m: m.permute_dims(m.ones(X2), (0, 5))),
    ("permute_dims_dup", lambda m: m.permute_dims(m.ones(X2), (1, 1))),
    ("moveaxis", lambda m: m.moveaxis(m.ones(X2), 0, 5)),
    ("moveaxis_dup", lambda m: m.moveaxis(m.ones((2, 3, 4)), (0, 0), (1, 2))),
    ("unstack", lambda m: m.unstack(m.ones(X2), axis=-3)),
    ("expand_dims", lambda m: m.expand_dims(m.ones(X2), axis=5)),
    ("stack", lambda m: m.stack([m.ones(X2), m.ones(X2)], axis=3)),
    ("flip_0d", lambda m: m.flip(m.asarray(1.0), axis=0)),
    ("roll_0d", lambda m: m.roll(m.asarray(1.0), 1, axis=0)),
    ("squeeze_0d", lambda m: m.squeeze(m.asarray(1.0), axis=0) if m is gt else np.squeeze(np.ones(1), axis=1)),
    ("unstack_0d", lambda m: m.unstack(m.asarray(1.0), axis=0)),
    ("repeat", lambda m: m.repeat(m.ones(X2), 2, axis=2)),
]


class _NpNs:
    """NumPy spelled as the array API (for the oracle of the axis errors)."""

    def __getattr__(self, name):
        return getattr(np, {"concat": "concatenate", "permute_dims": "transpose"}.get(name, name))

    def unstack(self, x, axis=0):
        np.lib.array_utils.normalize_axis_index(axis, x.ndim)
        return tuple(np.moveaxis(x, axis, 0))


@pytest.mark.parametrize("name,call", AXIS_ERRORS, ids=[a[0] for a in AXIS_ERRORS])
def test_axis_errors_as_numpy(device, name, call):
    with pytest.raises((np.exceptions.AxisError, ValueError)):
        call(_NpNs())
    with gt.default_device(device), pytest.raises(AxisError) as info:
        call(gt)
    assert isinstance(info.value, ValueError) and isinstance(info.value, IndexError)
    assert name.split("_")[0] in str(info.value)


def test_shape_value_errors(device):
    with gt.default_device(device):
        with pytest.raises(ValueError, match="permutation"):
            gt.permute_dims(gt.ones((2, 3)), (0,))
        with pytest.raises(ValueError, match="size 3, not 1"):
            gt.squeeze(gt.ones((2, 3)), axis=1)
        with pytest.raises(ValueError, match="concat"):
            gt.concat([gt.ones((2, 3)), gt.ones((2, 4))], axis=0)
        with pytest.raises(ValueError, match="stack"):
            gt.stack([gt.ones((2, 3)), gt.ones((3, 2))])
        with pytest.raises(ValueError, match="moveaxis"):
            gt.moveaxis(gt.ones((2, 3)), (0, 1), 0)
        with pytest.raises(ValueError, match="roll"):
            gt.roll(gt.ones((2, 3)), (1, 2, 3), axis=(0, 1))
        a = np.arange(6.0).reshape(2, 3)
        for shift, axis in (((1, 2), 1), (1, (0, 1)), ((1, 2), (1, 1)), ((-1, 4), (0, -1))):
            np.testing.assert_array_equal(_np(gt.roll(gt.asarray(a), shift, axis=axis)), np.roll(a, shift, axis))


@pytest.mark.parametrize("axis", [-3, -2, -1, 0, 1, 2])
def test_valid_axes_match_numpy(device, axis):
    a = np.arange(24.0).reshape(2, 3, 4)
    x = gt.asarray(a, device=device)
    np.testing.assert_array_equal(_np(gt.flip(x, axis=axis)), np.flip(a, axis))
    np.testing.assert_array_equal(_np(gt.roll(x, 2, axis=axis)), np.roll(a, 2, axis))
    np.testing.assert_array_equal(_np(gt.moveaxis(x, axis, 0)), np.moveaxis(a, axis, 0))
    np.testing.assert_array_equal(_np(gt.concat([x, x], axis=axis)), np.concatenate([a, a], axis))
    np.testing.assert_array_equal(_np(gt.stack([x, x], axis=axis)), np.stack([a, a], axis))
    np.testing.assert_array_equal(_np(gt.expand_dims(x, axis=axis)), np.expand_dims(a, axis))
    np.testing.assert_array_equal(_np(gt.take(x, _ix(device, [1, -1]), axis=axis)), np.take(a, [1, -1], axis))
    np.testing.assert_array_equal(_np(gt.unstack(x, axis=axis)[-1]), np.moveaxis(a, axis, 0)[-1])
    check_select(lambda x: gt.flip(gt.roll(x, 1, axis=axis), axis=(axis, 0) if axis % 3 else axis),
                 lambda t: np.flip(np.roll(t, 1, axis), (axis, 0) if axis % 3 else axis), (2, 3, 4), device)


def _random_key(rng, shape):
    """A random NumPy key: ints, slices (any bounds and steps), None, ..., integer arrays, masks, 0-d masks."""
    ents, d, ell = [], 0, False
    while d < len(shape):
        r, n = rng.random(), shape[d]
        if r < 0.1:
            ents.append(None)
        elif r < 0.13:
            ents.append(np.asarray(rng.random() < 0.5))
        elif r < 0.2 and not ell:
            ell = True
            ents.append(Ellipsis)
            d += int(rng.integers(0, len(shape) - d + 1))
        elif r < 0.4:
            b = [int(v) if rng.random() < 0.7 else None for v in rng.integers(-n - 3, n + 4, 2)]
            ents.append(slice(b[0], b[1], [None, 1, 2, -1, -2, 3][rng.integers(0, 6)]))
            d += 1
        elif r < 0.55 and n:
            ents.append(int(rng.integers(-n, n)))
            d += 1
        elif r < 0.8 and n:
            ents.append(rng.integers(-n, n, size=tuple(rng.integers(1, 3, size=rng.integers(1, 3)))))
            d += 1
        else:
            k = int(rng.integers(1, len(shape) - d + 1))
            ents.append(rng.random(shape[d:d + k]) < 0.5)
            d += k
    if rng.random() < 0.4 and ents:
        ents = ents[:int(rng.integers(1, len(ents) + 1))]
    return tuple(ents)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_keys_match_numpy(device, seed):
    """A bounded differential run: getitem values, gradients and Jacobians, setitem values, against NumPy."""
    rng = np.random.default_rng(seed)
    checked = 0
    for it in range(150):
        shape = tuple(int(n) for n in rng.integers(1, 4, size=rng.integers(1, 4)))
        key = _random_key(rng, shape)
        a = np.asarray(np.arange(np.prod(shape), dtype=float).reshape(shape) + 1.0)
        try:
            want = a[key]
        except IndexError:               # integer arrays that do not broadcast together
            continue
        gkey = tuple(gt.asarray(k, device=device) if isinstance(k, np.ndarray) else k for k in key)
        x = gt.asarray(a, device=device)
        out = x[gkey]
        assert out.shape == want.shape, (shape, key)
        np.testing.assert_array_equal(_np(out), want, err_msg=str((shape, key)))
        W = rng.standard_normal(want.shape)
        g = gt.grad(lambda x: gt.sum(x[gkey] * gt.asarray(W, device=device)))(x)
        E = np.arange(a.size).reshape(shape)[key]
        gn = np.zeros(a.size)
        np.add.at(gn, E.reshape(-1), W.reshape(-1))
        np.testing.assert_allclose(_np(g), gn.reshape(shape), atol=1e-12, err_msg=str((shape, key)))
        if it % 3 == 0:
            J = gt.jacobian(lambda x: x[gkey], mode=("forward", "reverse")[it % 2])(x)
            Jn = (E[..., None] == np.arange(a.size)).astype(float).reshape(want.shape + shape)
            np.testing.assert_array_equal(_np(J), Jn, err_msg=str((shape, key)))
        if want.size and E.size == np.unique(E).size:
            v = rng.standard_normal(want.shape)
            n = a.copy()
            n[key] = v
            z = x * 1.0
            z[gkey] = gt.asarray(v, device=device)
            np.testing.assert_array_equal(_np(z), n, err_msg=str((shape, key)))
        checked += 1
    assert checked > 100
