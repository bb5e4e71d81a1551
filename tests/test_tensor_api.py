"""The array object (attributes, operators, indexing, interchange, methods) and
forward results that equal the backend's own functions exactly."""
import math
import operator

import numpy as np
import pytest

import gradtape as gt
from conftest import to_np


# ---- helpers -----------------------------------------------------------------------------------

def xp_for(device):
    """The backend's own array-API namespace for a device."""
    if device == "cpu":
        import array_api_compat.numpy as m
    elif device == "strict":
        import array_api_strict as m
    else:
        import array_api_compat.cupy as m
    return m


def raw_np(a):
    """A NumPy copy of a raw backend array."""
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(a)
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.from_dlpack(a)


def arr(a, **kw):
    """A tensor on the test's default device (gt.asarray of a NumPy array would stay on NumPy)."""
    return gt.asarray(a if not isinstance(a, np.ndarray) else a.copy(), device=gt.get_default_device(), **kw)


def pair(device, data, dtype=None):
    """The same data as a gradtape tensor and as a raw backend array."""
    a = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
    return arr(a), xp_for(device).asarray(a.copy())


def assert_same(t, ref, device):
    """t (a Tensor) equals the backend array ``ref`` exactly: type, dtype, shape and every value."""
    assert isinstance(t, gt.Tensor), type(t)
    assert t.device == (gt.get_default_device() if device != "cuda" else t.device)
    assert type(t.data) is type(ref), (type(t.data), type(ref))
    assert t.dtype == str(ref.dtype).rsplit(".", 1)[-1], (t.dtype, ref.dtype)
    assert t.shape == tuple(ref.shape)
    got, want = to_np(t), raw_np(ref)
    np.testing.assert_array_equal(got, want)
    # bitwise for floats: signed zeros and NaN placement must match too
    if got.dtype.kind == "f":
        assert np.array_equal(np.signbit(got), np.signbit(want))


def rand(shape, lo=-2.0, hi=2.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape)


SHAPES = [(), (0,), (3, 4)]


# ---- attributes --------------------------------------------------------------------------------

def test_attributes(device):
    x = arr(np.arange(24.0).reshape(2, 3, 4))
    assert x.dtype == gt.float64
    assert x.device == device
    assert x.shape == (2, 3, 4) and isinstance(x.shape, tuple)
    assert x.ndim == 3
    assert x.size == 24
    m = arr(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(to_np(m.T), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(to_np(x.mT), np.swapaxes(np.arange(24.0).reshape(2, 3, 4), -1, -2))
    assert x.mT.shape == (2, 4, 3)
    with pytest.raises(ValueError):
        x.T          # .T is for at most two dimensions
    with pytest.raises(ValueError):
        arr([1.0, 2.0]).mT
    e = gt.zeros((0, 3))
    assert e.size == 0 and e.shape == (0, 3)
    s = arr(2.5)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    assert arr([1, 2]).dtype == gt.int64
    assert arr([True]).dtype == gt.bool
    assert arr([1.0], dtype=gt.float32).dtype == gt.float32
    assert gt.float32 != gt.float64


def test_array_namespace(device):
    x = gt.ones((2,))
    assert x.__array_namespace__() is gt
    assert x.__array_namespace__(api_version="2024.12") is gt
    assert gt.__array_api_version__ == "2024.12"


def test_default_device_context_is_restored():
    before = gt.get_default_device()
    with gt.default_device("strict"):
        assert gt.ones(1).device == "strict"
        with gt.default_device("cpu"):
            assert gt.ones(1).device == "cpu"
        assert gt.zeros(1).device == "strict"
    assert gt.get_default_device() == before


def test_asarray_follows_wrapped_array():
    import array_api_strict as xs
    assert gt.asarray(np.ones(2)).device == "cpu"
    assert gt.asarray(xs.ones(2)).device == "strict"
    with gt.default_device("strict"):
        # a NumPy array stays on NumPy even where the default device is strict
        assert gt.asarray(np.ones(2)).device == "cpu"
        assert gt.asarray([1.0]).device == "strict"


# ---- operators ---------------------------------------------------------------------------------

FLOAT_OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.mod,
             operator.floordiv]
INT_OPS = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift, operator.add,
           operator.mul, operator.floordiv, operator.mod, operator.sub]
CMP_OPS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("op", FLOAT_OPS + CMP_OPS, ids=lambda o: o.__name__)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2,)), ((0,), (1,))])
def test_binary_operators_float(device, op, shapes):
    a = rand(shapes[0], 0.5, 2.0, 1)
    b = rand(shapes[1], 0.5, 2.0, 2)
    ta, ra = pair(device, a)
    tb, rb = pair(device, b)
    assert_same(op(ta, tb), op(ra, rb), device)
    # with a Python scalar on either side (reflected operators)
    assert_same(op(ta, 1.5), op(ra, 1.5), device)
    assert_same(op(1.5, ta), op(1.5, ra), device)


@pytest.mark.parametrize("op", INT_OPS + CMP_OPS, ids=lambda o: o.__name__)
def test_binary_operators_int(device, op):
    a = np.array([[1, 7, 12], [3, 2, 5]])
    b = np.array([2, 1, 3])
    ta, ra = pair(device, a)
    tb, rb = pair(device, b)
    assert_same(op(ta, tb), op(ra, rb), device)
    assert_same(op(ta, 3), op(ra, 3), device)
    assert_same(op(3, ta), op(3, ra), device)


def test_bool_operators(device):
    a, b = np.array([True, False, True, False]), np.array([True, True, False, False])
    ta, ra = pair(device, a)
    tb, rb = pair(device, b)
    for op in (operator.and_, operator.or_, operator.xor, operator.eq, operator.ne):
        assert_same(op(ta, tb), op(ra, rb), device)
    assert_same(~ta, ~ra, device)


def test_unary_operators(device):
    a = rand((3, 4), seed=3)
    ta, ra = pair(device, a)
    assert_same(-ta, -ra, device)
    assert_same(+ta, +ra, device)
    assert_same(abs(ta), abs(ra), device)
    ti, ri = pair(device, np.array([1, -2, 3]))
    assert_same(~ti, ~ri, device)
    assert_same(-ti, -ri, device)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_operator(device, shapes):
    ta, ra = pair(device, rand(shapes[0], seed=4))
    tb, rb = pair(device, rand(shapes[1], seed=5))
    assert_same(ta @ tb, ra @ rb, device)
    assert_same(gt.matmul(ta, tb), xp_for(device).matmul(ra, rb), device)


def test_numpy_array_on_the_left_defers_to_tensor():
    x = arr([1.0, 2.0])
    a = np.array([10.0, 20.0])
    for op in (operator.add, operator.sub, operator.mul, operator.truediv, operator.pow):
        r = op(a, x)
        assert isinstance(r, gt.Tensor), (op, type(r))
        np.testing.assert_array_equal(to_np(r), op(a, np.array([1.0, 2.0])))
    r = a @ x
    assert isinstance(r, gt.Tensor)
    assert float(r) == 50.0


INPLACE = [("__iadd__", operator.add), ("__isub__", operator.sub), ("__imul__", operator.mul),
           ("__itruediv__", operator.truediv), ("__ipow__", operator.pow), ("__imod__", operator.mod),
           ("__ifloordiv__", operator.floordiv)]


@pytest.mark.parametrize("name,op", INPLACE, ids=[n for n, _ in INPLACE])
def test_inplace_operators_float(device, name, op):
    a = rand((3, 4), 0.5, 2.0, 6)
    b = rand((4,), 0.5, 2.0, 7)
    x, ra = pair(device, a)
    y, rb = pair(device, b)
    alias = x.detach()          # shares x's current data
    obj = x
    x = getattr(x, name)(y)
    assert x is obj
    assert_same(x, op(ra, rb), device)
    # value semantics: the tensor is rebound, an alias of the old data keeps the old values
    np.testing.assert_array_equal(to_np(alias), a)
    x = getattr(x, name)(2.0)
    assert_same(x, op(op(ra, rb), 2.0), device)


@pytest.mark.parametrize("name,op", [("__iand__", operator.and_), ("__ior__", operator.or_),
                                     ("__ixor__", operator.xor), ("__ilshift__", operator.lshift),
                                     ("__irshift__", operator.rshift)])
def test_inplace_operators_int(device, name, op):
    a = np.array([5, 6, 7, 12])
    x, ra = pair(device, a)
    y, rb = pair(device, np.array([1, 2, 3, 1]))
    x = getattr(x, name)(y)
    assert_same(x, op(ra, rb), device)


def test_inplace_matmul_and_statement_forms(device):
    a = rand((3, 3), seed=8)
    m = rand((3, 3), seed=9)
    x, ra = pair(device, a)
    tm, rm = pair(device, m)
    x @= tm
    assert_same(x, ra @ rm, device)
    v = arr([1.0, 2.0])
    v += 1
    v *= 3
    v -= arr([1.0, 1.0])
    v /= 2
    np.testing.assert_array_equal(to_np(v), ((np.array([1.0, 2.0]) + 1) * 3 - 1) / 2)


def test_inplace_that_changes_shape_or_dtype_is_an_error(device):
    x = arr([1.0, 2.0])
    with pytest.raises(ValueError):
        x += gt.ones((3, 2))
    i = arr([1, 2])
    with pytest.raises(TypeError):
        i += 1.5
    np.testing.assert_array_equal(to_np(i), [1, 2])


def test_inplace_while_recording_is_differentiated(device):
    x = arr([1.0, 2.0, 3.0]).requires_grad_()
    y = x * 2
    y += x          # recorded: y = 2x + x
    y *= 3.0        # y = 9x
    y -= 1.0
    y /= 2.0        # y = (9x - 1) / 2
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [4.5, 4.5, 4.5])
    np.testing.assert_allclose(to_np(y), (9 * np.array([1.0, 2.0, 3.0]) - 1) / 2)


def test_inplace_on_tracked_leaf_while_recording_raises(device):
    x = arr([1.0, 2.0]).requires_grad_()
    with pytest.raises(RuntimeError):
        x += arr([1.0, 1.0]).requires_grad_()
    with gt.no_grad():
        x += 1.0     # the PyTorch optimiser pattern works under no_grad
    np.testing.assert_array_equal(to_np(x), [2.0, 3.0])
    assert x.requires_grad and x.is_leaf


def test_comparison_with_none_and_hash():
    x = arr([1.0])
    assert (x == None) is False  # noqa: E711
    assert (x != None) is True  # noqa: E711
    assert hash(x) == hash(x)
    assert len({x, arr([1.0])}) == 2


# ---- indexing ----------------------------------------------------------------------------------

def _keys(device):
    idx = lambda v: arr(np.asarray(v))  # noqa: E731
    return [
        ("int", 1, 1),
        ("negint", -1, -1),
        ("slice", slice(1, 3), slice(1, 3)),
        ("step", (slice(None), slice(None, None, 2)), (slice(None), slice(None, None, 2))),
        ("neg-step", slice(None, None, -1), slice(None, None, -1)),
        ("int-slice", (0, slice(1, None)), (0, slice(1, None))),
        ("ellipsis", (Ellipsis, 1), (Ellipsis, 1)),
        ("ellipsis-only", Ellipsis, Ellipsis),
        ("empty-tuple", (), ()),
        ("none-front", None, None),
        ("none-mid", (slice(None), None, 1), (slice(None), None, 1)),
        ("none-back", (Ellipsis, None), (Ellipsis, None)),
        ("none-int", (None, 1), (None, 1)),
        ("intarr", idx([2, 0, 2]), np.array([2, 0, 2])),
        ("intarr-axis1", (slice(None), idx([3, 1, 1])), (slice(None), np.array([3, 1, 1]))),
        ("intarr-2d", idx([[0, 1], [2, 2]]), np.array([[0, 1], [2, 2]])),
        ("intarr-ellipsis", (Ellipsis, idx([0, 3])), (Ellipsis, np.array([0, 3]))),
        ("bool-full", idx(np.arange(12).reshape(3, 4) % 3 == 0), np.arange(12).reshape(3, 4) % 3 == 0),
        ("bool-rows", idx([True, False, True]), np.array([True, False, True])),
        ("empty-slice", slice(2, 2), slice(2, 2)),
    ]


KEY_NAMES = ["int", "negint", "slice", "step", "neg-step", "int-slice", "ellipsis", "ellipsis-only", "empty-tuple",
             "none-front", "none-mid", "none-back", "none-int", "intarr", "intarr-axis1", "intarr-2d",
             "intarr-ellipsis", "bool-full", "bool-rows", "empty-slice"]


@pytest.mark.parametrize("k", range(20), ids=KEY_NAMES)
def test_getitem_values(device, k):
    name, key, npkey = _keys(device)[k]
    assert name == KEY_NAMES[k]
    a = np.arange(12.0).reshape(3, 4)
    x = arr(a)
    got = x[key]
    want = a[npkey]
    assert got.shape == want.shape, name
    np.testing.assert_array_equal(to_np(got), want)
    assert got.device == device


@pytest.mark.parametrize("k", range(20), ids=KEY_NAMES)
def test_getitem_gradient(device, k):
    name, key, npkey = _keys(device)[k]
    a = np.arange(12.0).reshape(3, 4)
    x = arr(a).requires_grad_()
    y = x[key]
    w = np.random.default_rng(k).normal(size=y.shape)
    (y * arr(w)).sum().backward()
    expect = np.zeros_like(a)
    # NumPy's unbuffered scatter-add: repeated integer indices accumulate
    np.add.at(expect, npkey if not isinstance(npkey, tuple) or npkey else Ellipsis, w)
    np.testing.assert_allclose(to_np(x.grad), expect, err_msg=name)


def test_newaxis_is_none():
    assert gt.newaxis is None
    x = arr([1.0, 2.0])
    assert x[gt.newaxis].shape == (1, 2)
    assert x[:, gt.newaxis].shape == (2, 1)


def test_index_out_of_bounds(device):
    x = arr([1.0, 2.0])
    with pytest.raises(IndexError):
        x[5]


def test_iter_and_len(device):
    x = arr(np.arange(6.0).reshape(3, 2))
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3
    np.testing.assert_array_equal(to_np(rows[2]), [4.0, 5.0])
    with pytest.raises(TypeError):
        len(arr(1.0))


def _set_cases():
    idx = lambda v: arr(np.asarray(v))  # noqa: E731
    return [
        ("int", 1, 1),
        ("slice", (slice(None), slice(1, 3)), (slice(None), slice(1, 3))),
        ("ellipsis", (Ellipsis, 0), (Ellipsis, 0)),
        ("intarr", idx([0, 2]), np.array([0, 2])),
        ("bool", idx(np.arange(12).reshape(3, 4) % 5 == 1), np.arange(12).reshape(3, 4) % 5 == 1),
    ]


@pytest.mark.parametrize("k", range(5), ids=["int", "slice", "ellipsis", "intarr", "bool"])
def test_setitem_values_and_value_semantics(device, k):
    name, key, npkey = _set_cases()[k]
    if name == "intarr" and device == "strict":
        pytest.skip("array-api-strict has no integer-array __setitem__ (the standard leaves it out)")
    a = np.arange(12.0).reshape(3, 4)
    x = arr(a)
    alias = x.detach()
    x[key] = -1.0
    want = a.copy()
    want[npkey] = -1.0
    np.testing.assert_array_equal(to_np(x), want, err_msg=name)
    np.testing.assert_array_equal(to_np(alias), a)       # the old value is untouched


@pytest.mark.parametrize("k", range(5), ids=["int", "slice", "ellipsis", "intarr", "bool"])
def test_setitem_gradient(device, k):
    name, key, npkey = _set_cases()[k]
    if name == "intarr" and device == "strict":
        pytest.skip("array-api-strict has no integer-array __setitem__ (the standard leaves it out)")
    a = np.arange(12.0).reshape(3, 4)
    mask = np.zeros_like(a, dtype=bool)
    mask[npkey] = True
    n = int(mask.sum())
    x = arr(a).requires_grad_()
    v = arr(np.linspace(1.0, 2.0, n).reshape(a[npkey].shape)).requires_grad_()
    w = np.random.default_rng(k).normal(size=a.shape)
    y = x * 3.0
    y[key] = v * v
    (y * arr(w)).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), np.where(mask, 0.0, 3.0 * w), err_msg=name)
    vv = np.linspace(1.0, 2.0, n).reshape(a[npkey].shape)
    np.testing.assert_allclose(to_np(v.grad), 2 * vv * w[npkey], err_msg=name)


def test_setitem_tensor_value_wrong_device_is_type_error():
    x = arr([1.0, 2.0])
    with gt.default_device("strict"):
        v = arr(5.0)
    with pytest.raises(TypeError):
        x[0] = v


# ---- interchange -------------------------------------------------------------------------------

def test_to_device_and_gradient_back(device):
    a = np.array([1.0, 2.0, 3.0])
    x = arr(a).requires_grad_()
    other = "strict" if device != "strict" else "cpu"
    y = x.to_device(other)
    assert y.device == other and x.device == device
    np.testing.assert_array_equal(to_np(y), a)
    (y * y).sum().backward()
    assert x.grad.device == device
    np.testing.assert_array_equal(to_np(x.grad), 2 * a)
    assert gt.to_device(x, device).device == device
    z = gt.to_device(arr(a), other)
    assert z.device == other


def test_dlpack_round_trip_numpy():
    a = np.arange(6.0).reshape(2, 3)
    t = gt.from_dlpack(a)
    assert isinstance(t, gt.Tensor) and t.device == "cpu"
    np.testing.assert_array_equal(to_np(t), a)
    assert np.shares_memory(to_np(t), a)          # zero copy
    back = np.from_dlpack(t)
    np.testing.assert_array_equal(back, a)
    assert np.shares_memory(back, a)
    assert t.__dlpack_device__()[0] == 1          # kDLCPU
    assert gt.from_dlpack(a, copy=True) is not None
    assert not np.shares_memory(to_np(gt.from_dlpack(a, copy=True)), a)


def test_dlpack_strict_round_trip():
    import array_api_strict as xs
    s = xs.asarray([1.0, 2.0, 3.0])
    t = gt.from_dlpack(s)
    assert t.device == "strict"
    np.testing.assert_array_equal(to_np(t), [1.0, 2.0, 3.0])
    back = xs.from_dlpack(t)
    np.testing.assert_array_equal(np.from_dlpack(back), [1.0, 2.0, 3.0])


def test_dlpack_torch_zero_copy():
    torch = pytest.importorskip("torch")
    src = torch.arange(5, dtype=torch.float64)
    t = gt.from_dlpack(src)
    assert t.device == "cpu" and t.dtype == gt.float64
    src[0] = 100.0                                    # shared memory: the tensor sees the write
    assert to_np(t)[0] == 100.0
    back = torch.from_dlpack(t)
    assert back.data_ptr() == src.data_ptr()
    g = gt.asarray(np.array([1.0, 2.0]))
    tt = torch.from_dlpack(g)
    tt[1] = -7.0
    assert to_np(g)[1] == -7.0
    # gt.asarray of a DLPack producer
    np.testing.assert_array_equal(to_np(gt.asarray(torch.ones(2, dtype=torch.float32))), [1.0, 1.0])


def test_python_scalar_conversions(device):
    assert bool(arr(True)) is True
    assert bool(arr(0.0)) is False
    f = float(arr(2.5))
    assert f == 2.5 and type(f) is float
    i = int(arr(7))
    assert i == 7 and type(i) is int
    assert operator.index(arr(3)) == 3
    assert [10, 20, 30, 40][arr(2)] == 30
    assert complex(arr(1.5)) == 1.5 + 0j
    with pytest.raises((TypeError, ValueError)):
        bool(arr([1.0, 2.0]))
    with pytest.raises(TypeError):
        operator.index(arr(3.0))


def test_array_protocol_refuses_tracked_tensor():
    x = arr([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(x), [1.0, 2.0])
    xt = arr([1.0, 2.0]).requires_grad_()
    with pytest.raises(RuntimeError):
        np.asarray(xt)
    np.testing.assert_array_equal(gt.to_numpy(xt.detach()), [1.0, 2.0])


# ---- methods -----------------------------------------------------------------------------------

def test_methods(device):
    a = rand((3, 4), seed=11)
    x = arr(a)
    np.testing.assert_array_equal(to_np(x.sum()), a.sum())
    np.testing.assert_array_equal(to_np(x.sum(axis=0)), a.sum(axis=0))
    np.testing.assert_array_equal(to_np(x.sum(axis=1, keepdims=True)), a.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(to_np(x.mean(axis=0)), a.mean(axis=0))
    np.testing.assert_array_equal(to_np(x.max()), a.max())
    np.testing.assert_array_equal(to_np(x.min(axis=1)), a.min(axis=1))
    np.testing.assert_array_equal(to_np(x.prod(axis=0)), a.prod(axis=0))
    np.testing.assert_array_equal(to_np(x.std()), a.std())
    np.testing.assert_array_equal(to_np(x.var(axis=1)), a.var(axis=1))
    np.testing.assert_array_equal(to_np(x.argmax(axis=1)), a.argmax(axis=1))
    np.testing.assert_array_equal(to_np(x.argmin()), a.argmin())
    assert x.reshape(4, 3).shape == (4, 3)
    assert x.reshape((2, 6)).shape == (2, 6)
    assert x.reshape(-1).shape == (12,)
    np.testing.assert_array_equal(to_np(x.reshape((6, 2))), a.reshape(6, 2))
    np.testing.assert_array_equal(to_np(x.transpose()), a.T)
    np.testing.assert_array_equal(to_np(x.flatten()), a.ravel())
    assert gt.ones((1, 3, 1)).squeeze().shape == (3,)
    assert gt.ones((1, 3, 1)).squeeze(axis=0).shape == (3, 1)
    assert x.expand_dims(0).shape == (1, 3, 4)
    assert x.astype(gt.float32).dtype == gt.float32
    np.testing.assert_array_equal(to_np(x.clip(-0.5, 0.5)), np.clip(a, -0.5, 0.5))
    np.testing.assert_allclose(to_np(x.norm()), np.linalg.norm(a), rtol=1e-15)
    np.testing.assert_array_equal(to_np(x.exp()), np.exp(a))
    np.testing.assert_array_equal(to_np(x.abs()), np.abs(a))
    np.testing.assert_array_equal(to_np(x.square()), np.square(a))
    np.testing.assert_array_equal(to_np(x.tanh()), np.tanh(a))
    np.testing.assert_array_equal(to_np(x.relu()), np.maximum(a, 0))
    np.testing.assert_array_equal(to_np(x.dot(gt.ones((4,)))), a @ np.ones(4))
    c = x.copy()
    np.testing.assert_array_equal(to_np(c), a)
    assert (x > 0).all().item() == bool((a > 0).all())
    assert (x > 0).any().item() == bool((a > 0).any())
    assert arr([[2.5]]).item() == 2.5 and type(arr([[2.5]]).item()) is float
    assert arr(3).item() == 3
    with pytest.raises(ValueError):
        x.item()
    assert x.tolist() == a.tolist()
    assert arr(1.5).tolist() == 1.5
    np.testing.assert_array_equal(x.numpy(), a)
    np.testing.assert_array_equal(x.asnumpy(), a)


def test_methods_are_differentiable(device):
    a = rand((3, 4), seed=12)
    x = arr(a).requires_grad_()
    y = x.reshape(4, 3).transpose().sum(axis=0).mean() + x.max()
    y.backward()
    expect = np.full_like(a, 1.0 / 4)
    i = np.unravel_index(a.argmax(), a.shape)
    expect[i] += 1
    np.testing.assert_allclose(to_np(x.grad), expect)


def test_repr(device):
    x = arr([1.0, 2.0])
    r = repr(x)
    assert r.startswith("Tensor([1., 2.]")
    if device == "cpu":
        assert r == "Tensor([1., 2.])"
    else:
        assert f"device={device!r}" in r
    assert "requires_grad=True" in repr(x.requires_grad_())
    assert "requires_grad" not in repr(arr([1.0]))
    assert "dtype=float32" in repr(arr([1.0], dtype=gt.float32))
    assert str(arr(3.0)).startswith("Tensor(3.")


def test_asarray_keeps_graph(device):
    x = gt.asarray([1.0, 2.0]).requires_grad_()
    y = gt.asarray(x)
    assert y.requires_grad
    z = gt.asarray(x * 3.0)
    assert z.requires_grad
    (z * y).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 6 * np.array([1.0, 2.0]))
    x2 = gt.asarray([1.0, 2.0]).requires_grad_()
    w = gt.asarray(x2, dtype=gt.float32)
    assert w.requires_grad and w.dtype == gt.float32
    w.sum().backward()
    assert x2.grad.dtype == gt.float64
    np.testing.assert_array_equal(to_np(x2.grad), [1.0, 1.0])
    # asarray inside gt.grad keeps the function differentiable
    g = gt.grad(lambda v: gt.sum(gt.asarray(v) ** 2))(gt.asarray([3.0]))
    np.testing.assert_array_equal(to_np(g), [6.0])


def test_asarray_copy_semantics(device):
    a = np.array([1.0, 2.0])
    t = gt.asarray([1.0, 2.0])
    c = gt.asarray(t, copy=True)
    np.testing.assert_array_equal(to_np(c), a)
    c[0] = 9.0
    assert to_np(t)[0] == 1.0
    with pytest.raises(ValueError):
        gt.asarray(t, dtype=gt.float32, copy=False)


# ---- forward results equal the backend's own functions exactly -------------------------------

UNARY = {
    "abs": (-2, 2), "negative": (-2, 2), "positive": (-2, 2), "sin": (-3, 3), "cos": (-3, 3),
    "tan": (-1.2, 1.2), "asin": (-0.95, 0.95), "acos": (-0.95, 0.95), "atan": (-3, 3), "sinh": (-2, 2),
    "cosh": (-2, 2), "tanh": (-2, 2), "asinh": (-3, 3), "acosh": (1.05, 3), "atanh": (-0.95, 0.95),
    "exp": (-3, 3), "expm1": (-1, 1), "log": (0.1, 3), "log1p": (-0.9, 3), "log2": (0.1, 3),
    "log10": (0.1, 3), "sqrt": (0, 4), "square": (-2, 2), "reciprocal": (0.2, 3), "sign": (-2, 2),
    "floor": (-3, 3), "ceil": (-3, 3), "round": (-3, 3), "trunc": (-3, 3), "isnan": (-1, 1),
    "isinf": (-1, 1), "isfinite": (-1, 1), "signbit": (-1, 1),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_unary_forward_exact(device, name, shape, dtype, tracked):
    lo, hi = UNARY[name]
    a = rand(shape, lo, hi, seed=sum(map(ord, name))).astype(dtype)
    x, ra = pair(device, a)
    if tracked:
        x.requires_grad_()
    assert_same(getattr(gt, name)(x), getattr(xp_for(device), name)(ra), device)


SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0])


@pytest.mark.parametrize("name", ["abs", "negative", "sign", "floor", "ceil", "trunc", "round", "isnan", "isinf",
                                  "isfinite", "signbit", "exp", "tanh", "atan", "sqrt", "square", "expm1"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_unary_forward_special_values(device, name):
    x, ra = pair(device, SPECIAL)
    assert_same(getattr(gt, name)(x), getattr(xp_for(device), name)(ra), device)


@pytest.mark.parametrize("name", ["abs", "negative", "positive", "square", "sign"])
def test_unary_forward_integer(device, name):
    x, ra = pair(device, np.array([-3, 0, 2, 5]))
    assert_same(getattr(gt, name)(x), getattr(xp_for(device), name)(ra), device)


def test_logical_and_bitwise_functions(device):
    b1, rb1 = pair(device, np.array([True, False, True, False]))
    b2, rb2 = pair(device, np.array([True, True, False, False]))
    xp = xp_for(device)
    for n in ("logical_and", "logical_or", "logical_xor"):
        assert_same(getattr(gt, n)(b1, b2), getattr(xp, n)(rb1, rb2), device)
    assert_same(gt.logical_not(b1), xp.logical_not(rb1), device)
    i1, ri1 = pair(device, np.array([5, 6, 7, 12]))
    i2, ri2 = pair(device, np.array([1, 2, 3, 0]))
    for n in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"):
        assert_same(getattr(gt, n)(i1, i2), getattr(xp, n)(ri1, ri2), device)
    assert_same(gt.bitwise_invert(i1), xp.bitwise_invert(ri1), device)


BINARY = {
    "add": ((-2, 2), (-2, 2)), "subtract": ((-2, 2), (-2, 2)), "multiply": ((-2, 2), (-2, 2)),
    "divide": ((-2, 2), (0.5, 2)), "pow": ((0.1, 2), (-2, 2)), "atan2": ((-2, 2), (-2, 2)),
    "hypot": ((-2, 2), (-2, 2)), "logaddexp": ((-2, 2), (-2, 2)), "maximum": ((-2, 2), (-2, 2)),
    "minimum": ((-2, 2), (-2, 2)), "copysign": ((-2, 2), (-2, 2)), "remainder": ((-3, 3), (0.5, 2)),
    "floor_divide": ((-3, 3), (0.5, 2)), "nextafter": ((-2, 2), (-2, 2)), "equal": ((-1, 1), (-1, 1)),
    "not_equal": ((-1, 1), (-1, 1)), "less": ((-1, 1), (-1, 1)), "less_equal": ((-1, 1), (-1, 1)),
    "greater": ((-1, 1), (-1, 1)), "greater_equal": ((-1, 1), (-1, 1)),
}
PAIRS = [((3, 4), (3, 4)), ((), ()), ((3, 1), (4,)), ((), (3,)), ((0,), (1,)), ((2, 1, 3), (4, 1))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_binary_forward_exact(device, name, shapes, tracked):
    (l1, h1), (l2, h2) = BINARY[name]
    a = rand(shapes[0], l1, h1, seed=1)
    b = rand(shapes[1], l2, h2, seed=2)
    if name in ("maximum", "minimum", "equal", "less_equal") and a.size and b.size:
        b = np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)).copy()
        b.flat[0] = np.broadcast_to(a, b.shape).flat[0]         # a tie
        a = np.broadcast_to(a, b.shape).copy()
    x, ra = pair(device, a)
    y, rb = pair(device, b)
    if tracked:
        x.requires_grad_()
        y.requires_grad_()
    xp = xp_for(device)
    assert_same(getattr(gt, name)(x, y), getattr(xp, name)(ra, rb), device)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "pow", "atan2", "maximum", "minimum",
                                  "logaddexp", "hypot", "copysign"])
def test_binary_forward_with_python_scalar(device, name):
    a = rand((5,), 0.5, 2.0, 3)
    x, ra = pair(device, a)
    xp = xp_for(device)
    assert_same(getattr(gt, name)(x, 1.5), getattr(xp, name)(ra, 1.5), device)


def test_real_imag_conj_on_real(device):
    a = rand((3,), seed=4)
    x = arr(a)
    np.testing.assert_array_equal(to_np(gt.real(x)), a)
    np.testing.assert_array_equal(to_np(gt.conj(x)), a)
    np.testing.assert_array_equal(to_np(gt.imag(x)), np.zeros(3))


REDUCTIONS = ["sum", "prod", "mean", "max", "min", "var", "std"]
AXES = [None, 0, 1, -1, (0, 1)]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_reductions_exact(device, name, axis, keepdims, tracked):
    x, ra = pair(device, rand((3, 4), seed=5))
    if tracked:
        x.requires_grad_()
    assert_same(getattr(gt, name)(x, axis=axis, keepdims=keepdims),
                getattr(xp_for(device), name)(ra, axis=axis, keepdims=keepdims), device)


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_correction(device, name):
    x, ra = pair(device, rand((3, 4), seed=6))
    assert_same(getattr(gt, name)(x, axis=0, correction=1), getattr(xp_for(device), name)(ra, axis=0, correction=1),
                device)


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "mean"])
def test_reductions_of_a_scalar(device, name):
    x, ra = pair(device, np.array(1.75))
    assert_same(getattr(gt, name)(x), getattr(xp_for(device), name)(ra), device)


@pytest.mark.parametrize("name", ["sum", "prod"])
def test_reductions_of_empty(device, name):
    x, ra = pair(device, np.zeros((0,)))
    assert_same(getattr(gt, name)(x), getattr(xp_for(device), name)(ra), device)
    x2, ra2 = pair(device, np.zeros((0, 3)))
    assert_same(getattr(gt, name)(x2, axis=0), getattr(xp_for(device), name)(ra2, axis=0), device)


def test_sum_prod_dtype(device):
    x, ra = pair(device, np.array([1, 2, 3]))
    xp = xp_for(device)
    assert_same(gt.sum(x), xp.sum(ra), device)
    assert_same(gt.sum(x, dtype=gt.float64), xp.sum(ra, dtype=xp.float64), device)
    f, rf = pair(device, np.array([1.5, 2.5], dtype=np.float32))
    assert_same(gt.prod(f, dtype=gt.float64), xp.prod(rf, dtype=xp.float64), device)


@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("include_initial", [False, True])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_cumulative_exact(device, name, axis, include_initial, tracked):
    x, ra = pair(device, rand((3, 4), 0.5, 1.5, seed=7))
    if tracked:
        x.requires_grad_()
    assert_same(getattr(gt, name)(x, axis=axis, include_initial=include_initial),
                getattr(xp_for(device), name)(ra, axis=axis, include_initial=include_initial), device)


def test_searching_and_sets_exact(device):
    a = np.array([[3.0, 1.0, 2.0, 1.0], [0.0, 5.0, 5.0, -1.0]])
    x, ra = pair(device, a)
    xp = xp_for(device)
    for axis in (None, 0, 1):
        assert_same(gt.argmax(x, axis=axis), xp.argmax(ra, axis=axis), device)
        assert_same(gt.argmin(x, axis=axis, keepdims=True), xp.argmin(ra, axis=axis, keepdims=True), device)
        assert_same(gt.count_nonzero(x, axis=axis), xp.count_nonzero(ra, axis=axis), device)
        assert_same(gt.all(x > 0, axis=axis), xp.all(ra > 0, axis=axis), device)
        assert_same(gt.any(x > 4, axis=axis), xp.any(ra > 4, axis=axis), device)
    for g, r in zip(gt.nonzero(x), xp.nonzero(ra)):
        assert_same(g, r, device)
    assert_same(gt.unique_values(x), xp.unique_values(ra), device)
    s, rs = pair(device, np.array([0.0, 1.0, 2.0, 5.0]))
    v, rv = pair(device, np.array([-1.0, 1.0, 1.5, 9.0]))
    assert_same(gt.searchsorted(s, v), xp.searchsorted(rs, rv), device)
    assert_same(gt.searchsorted(s, v, side="right"), xp.searchsorted(rs, rv, side="right"), device)
    assert_same(gt.argsort(x, axis=1), xp.argsort(ra, axis=1), device)
    assert_same(gt.argsort(x, axis=1, descending=True), xp.argsort(ra, axis=1, descending=True), device)
    uc = gt.unique_counts(x)
    ruc = xp.unique_counts(ra)
    assert_same(uc.values, ruc.values, device)
    assert_same(uc.counts, ruc.counts, device)


@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_shape_functions_exact(device, tracked):
    xp = xp_for(device)
    a = rand((2, 3, 4), seed=8)
    x, ra = pair(device, a)
    m, rm = pair(device, rand((4, 4), seed=9))
    c, rc = pair(device, rand((3, 1), seed=10))
    if tracked:
        x.requires_grad_()
        m.requires_grad_()
        c.requires_grad_()
    chk = lambda t, r: assert_same(t, r, device)  # noqa: E731
    chk(gt.reshape(x, (6, 4)), xp.reshape(ra, (6, 4)))
    chk(gt.reshape(x, (-1,)), xp.reshape(ra, (-1,)))
    chk(gt.permute_dims(x, (2, 0, 1)), xp.permute_dims(ra, (2, 0, 1)))
    chk(gt.matrix_transpose(x), xp.matrix_transpose(ra))
    chk(gt.broadcast_to(c, (2, 3, 5)), xp.broadcast_to(rc, (2, 3, 5)))
    for g, r in zip(gt.broadcast_arrays(c, m[0]), xp.broadcast_arrays(rc, rm[0, ...])):
        chk(g, r)
    chk(gt.expand_dims(x, axis=1), xp.expand_dims(ra, axis=1))
    chk(gt.expand_dims(x, axis=-1), xp.expand_dims(ra, axis=-1))
    chk(gt.squeeze(c, axis=1), xp.squeeze(rc, axis=1))
    chk(gt.moveaxis(x, 0, -1), xp.moveaxis(ra, 0, -1))
    chk(gt.moveaxis(x, (0, 1), (2, 0)), xp.moveaxis(ra, (0, 1), (2, 0)))
    chk(gt.flip(x), xp.flip(ra))
    chk(gt.flip(x, axis=1), xp.flip(ra, axis=1))
    chk(gt.flip(x, axis=(0, 2)), xp.flip(ra, axis=(0, 2)))
    chk(gt.roll(x, 2), xp.roll(ra, 2))
    chk(gt.roll(x, -1, axis=2), xp.roll(ra, -1, axis=2))
    chk(gt.roll(x, (1, 2), axis=(0, 2)), xp.roll(ra, (1, 2), axis=(0, 2)))
    for k in (-1, 0, 2):
        chk(gt.tril(m, k=k), xp.tril(rm, k=k))
        chk(gt.triu(x, k=k), xp.triu(ra, k=k))
    chk(gt.concat([x, x], axis=1), xp.concat([ra, ra], axis=1))
    chk(gt.concat([x, x[:1]], axis=0), xp.concat([ra, ra[:1, ...]], axis=0))
    chk(gt.concat([x, m], axis=None), xp.concat([ra, rm], axis=None))
    chk(gt.stack([m, m, m], axis=0), xp.stack([rm, rm, rm], axis=0))
    chk(gt.stack([m, m], axis=-1), xp.stack([rm, rm], axis=-1))
    for g, r in zip(gt.unstack(x, axis=1), xp.unstack(ra, axis=1)):
        chk(g, r)
    cond, rcond = pair(device, a > 0)
    chk(gt.where(cond, x, 0.0), xp.where(rcond, ra, 0.0))
    chk(gt.where(cond, x, x * 2), xp.where(rcond, ra, ra * 2))
    idx, ridx = pair(device, np.array([3, 0, 0, 2]))
    chk(gt.take(x, idx, axis=2), xp.take(ra, ridx, axis=2))
    chk(gt.take(m[0], idx), xp.take(rm[0, ...], ridx))
    ia, ria = pair(device, np.argsort(a, axis=-1))
    chk(gt.take_along_axis(x, ia, axis=-1), xp.take_along_axis(ra, ria, axis=-1))
    chk(gt.repeat(m, 2, axis=0), xp.repeat(rm, 2, axis=0))
    chk(gt.repeat(m, 3), xp.repeat(rm, 3))
    rep, rrep = pair(device, np.array([1, 0, 2, 1]))
    chk(gt.repeat(m, rep, axis=1), xp.repeat(rm, rrep, axis=1))
    chk(gt.tile(m, (2, 1)), xp.tile(rm, (2, 1)))
    chk(gt.tile(c, (2, 1, 3)), xp.tile(rc, (2, 1, 3)))
    chk(gt.astype(x, gt.float32), xp.astype(ra, xp.float32))
    chk(gt.astype(x, gt.int64), xp.astype(ra, xp.int64))
    chk(gt.sort(x, axis=1), xp.sort(ra, axis=1))
    chk(gt.sort(x, axis=-1, descending=True), xp.sort(ra, axis=-1, descending=True))
    chk(gt.clip(x, -0.5, 0.7), xp.clip(ra, -0.5, 0.7))
    chk(gt.clip(x, min=-0.5), xp.clip(ra, min=-0.5))
    lo, rlo = pair(device, np.full((4,), -0.3))
    chk(gt.clip(x, lo, 0.3), xp.clip(ra, rlo, 0.3))
    chk(gt.diff(x), xp.diff(ra))
    chk(gt.diff(x, axis=0, n=1), xp.diff(ra, axis=0, n=1))
    chk(gt.diff(x, axis=2, n=2), xp.diff(ra, axis=2, n=2))
    chk(gt.diff(m, prepend=m[:1], append=m[:2], axis=0), xp.diff(rm, prepend=rm[:1, ...], append=rm[:2, ...], axis=0))
    for ind in ("xy", "ij"):
        for g, r in zip(gt.meshgrid(m[0], c[:, 0], indexing=ind), xp.meshgrid(rm[0, ...], rc[:, 0], indexing=ind)):
            chk(g, r)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_creation_functions_exact(device, shape):
    xp = xp_for(device)
    chk = lambda t, r: assert_same(t, r, device)  # noqa: E731
    chk(gt.zeros(shape), xp.zeros(shape))
    chk(gt.ones(shape, dtype=gt.float32), xp.ones(shape, dtype=xp.float32))
    chk(gt.full(shape, 2.5), xp.full(shape, 2.5))
    assert gt.empty(shape).shape == shape
    chk(gt.zeros_like(gt.ones(shape)), xp.zeros_like(xp.ones(shape)))
    chk(gt.ones_like(gt.zeros(shape, dtype=gt.int32)), xp.ones_like(xp.zeros(shape, dtype=xp.int32)))
    chk(gt.full_like(gt.zeros(shape), 7.0), xp.full_like(xp.zeros(shape), 7.0))
    chk(gt.arange(5), xp.arange(5))
    chk(gt.arange(1.0, 2.0, 0.25), xp.arange(1.0, 2.0, 0.25))
    chk(gt.linspace(0.0, 1.0, 7), xp.linspace(0.0, 1.0, 7))
    chk(gt.eye(3, 4, k=1), xp.eye(3, 4, k=1))


@pytest.mark.parametrize("ord", [2, 1, math.inf, -math.inf, 3, 0, 0.5])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_vector_norm_exact(device, ord, axis, keepdims, tracked):
    x, ra = pair(device, rand((3, 4), seed=13))
    if tracked:
        x.requires_grad_()
    assert_same(gt.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord),
                xp_for(device).linalg.vector_norm(ra, axis=axis, keepdims=keepdims, ord=ord), device)


@pytest.mark.parametrize("shapes,axes", [(((3, 4), (4, 5)), 1), (((2, 3, 4), (3, 4, 5)), 2), (((3,), (4,)), 0),
                                         (((3, 4), (4, 3)), ((1, 0), (0, 1))), (((2, 3, 4), (4, 2)), ((0, 2), (1, 0)))])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_linalg_exact(device, shapes, axes, tracked):
    xp = xp_for(device)
    x, ra = pair(device, rand(shapes[0], seed=14))
    y, rb = pair(device, rand(shapes[1], seed=15))
    if tracked:
        x.requires_grad_()
        y.requires_grad_()
    assert_same(gt.tensordot(x, y, axes=axes), xp.tensordot(ra, rb, axes=axes), device)
    assert_same(gt.linalg.tensordot(x, y, axes=axes), xp.linalg.tensordot(ra, rb, axes=axes), device)


@pytest.mark.parametrize("shapes,axis", [(((3, 4), (3, 4)), -1), (((3, 4), (4,)), -1), (((3, 4), (3, 4)), 0),
                                         (((2, 1, 4), (3, 4)), -1), (((4,), (4,)), 0)])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_vecdot_matmul_exact(device, shapes, axis, tracked):
    xp = xp_for(device)
    x, ra = pair(device, rand(shapes[0], seed=16))
    y, rb = pair(device, rand(shapes[1], seed=17))
    if tracked:
        x.requires_grad_()
        y.requires_grad_()
    neg = axis - max(len(shapes[0]), len(shapes[1])) if axis >= 0 else axis   # the standard wants axis < 0
    assert_same(gt.vecdot(x, y, axis=axis), xp.vecdot(ra, rb, axis=neg), device)
    assert_same(gt.linalg.vecdot(x, y, axis=neg), xp.linalg.vecdot(ra, rb, axis=neg), device)
    m, rm = pair(device, rand((4, 2), seed=18))
    if shapes[0][-1] == 4:
        assert_same(gt.linalg.matmul(x, m), xp.linalg.matmul(ra, rm), device)
    assert_same(gt.linalg.matrix_transpose(m), xp.linalg.matrix_transpose(rm), device)


def test_result_type_and_promotion(device):
    f32 = gt.ones(2, dtype=gt.float32)
    f64 = gt.ones(2, dtype=gt.float64)
    assert (f32 + f64).dtype == gt.float64
    assert (f32 * 2.0).dtype == gt.float32
    assert (gt.ones(2, dtype=gt.int32) + gt.ones(2, dtype=gt.int64)).dtype == gt.int64
    assert gt.result_type(gt.float32, gt.float64) == gt.float64
    assert gt.isdtype(gt.float32, "real floating") and not gt.isdtype(gt.int8, "real floating")
    assert gt.isdtype(gt.int8, ("integral", "bool"))
    assert gt.can_cast(gt.float32, gt.float64) and not gt.can_cast(gt.float64, gt.int32)
    assert gt.finfo(gt.float32).bits == 32 and gt.iinfo(gt.int16).max == 32767
    assert gt.broadcast_shapes((3, 1), (4,), ()) == (3, 4)
    with pytest.raises(ValueError):
        gt.broadcast_shapes((3,), (4,))


def test_namespace_info():
    info = gt.__array_namespace_info__()
    assert "cpu" in info.devices() and "strict" in info.devices()
    assert info.default_dtypes()["real floating"] == gt.float64
    assert gt.float32 in info.dtypes(kind="real floating").values()
    assert gt.int8 not in info.dtypes(kind="real floating").values()


# ---- gt.nn against NumPy formulas (scipy is not installed here) --------------------------------

def _np_lse(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4)], ids=str)
def test_nn_against_numpy(device, shape):
    a = rand(shape, -4, 4, seed=19)
    x = arr(a)
    np.testing.assert_array_equal(to_np(gt.nn.relu(x)), np.maximum(a, 0))
    np.testing.assert_allclose(to_np(gt.nn.sigmoid(x)), 1 / (1 + np.exp(-a)), rtol=1e-14)
    np.testing.assert_allclose(to_np(gt.nn.softplus(x)), np.log1p(np.exp(a)), rtol=1e-14)
    np.testing.assert_allclose(to_np(gt.nn.logsumexp(x)), np.log(np.sum(np.exp(a))), rtol=1e-14)
    if len(shape) >= 1:
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        np.testing.assert_allclose(to_np(gt.nn.softmax(x)), e / e.sum(axis=-1, keepdims=True), rtol=1e-14)
        np.testing.assert_allclose(to_np(gt.nn.log_softmax(x)), a - _np_lse(a, -1, True), rtol=1e-14, atol=1e-15)
    if len(shape) == 2:
        for axis in (0, 1, (0, 1)):
            for kd in (False, True):
                np.testing.assert_allclose(to_np(gt.nn.logsumexp(x, axis=axis, keepdims=kd)), _np_lse(a, axis, kd),
                                           rtol=1e-14)
        e = np.exp(a - a.max(axis=0, keepdims=True))
        np.testing.assert_allclose(to_np(gt.nn.softmax(x, axis=0)), e / e.sum(axis=0, keepdims=True), rtol=1e-14)


def test_cross_entropy_against_numpy(device):
    a = rand((5, 3), -3, 3, seed=20)
    labels = np.array([0, 2, 1, 1, 0])
    want = -np.mean((a - _np_lse(a, -1, True))[np.arange(5), labels])
    got = gt.nn.cross_entropy(arr(a), arr(labels))
    assert got.shape == ()
    np.testing.assert_allclose(to_np(got), want, rtol=1e-14)
    probs = np.eye(3)[labels] * 0.8 + 0.2 / 3
    want_p = -np.mean(np.sum(probs * (a - _np_lse(a, -1, True)), axis=-1))
    np.testing.assert_allclose(to_np(gt.nn.cross_entropy(arr(a), arr(probs))), want_p, rtol=1e-14)
    with pytest.raises(ValueError):
        gt.nn.cross_entropy(arr(a), arr(labels[:4]))


@pytest.mark.filterwarnings("error")
def test_nn_numerically_stable(device):
    big = arr([1000.0, 1000.0, -1000.0])
    np.testing.assert_allclose(to_np(gt.nn.logsumexp(big)), 1000 + np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(to_np(gt.nn.softmax(big)), [0.5, 0.5, 0.0], atol=1e-300)
    ls = to_np(gt.nn.log_softmax(big))
    assert np.all(np.isfinite(ls))
    np.testing.assert_allclose(ls, [-np.log(2.0), -np.log(2.0), -2000 - np.log(2.0)], rtol=1e-12)
    s = to_np(gt.nn.sigmoid(arr([-1000.0, 0.0, 1000.0])))
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])
    sp = to_np(gt.nn.softplus(arr([-1000.0, 1000.0])))
    np.testing.assert_array_equal(sp, [0.0, 1000.0])
    ce = gt.nn.cross_entropy(arr([[1000.0, -1000.0]]), arr([1]))
    np.testing.assert_allclose(to_np(ce), 2000.0)
    allneg = arr([-np.inf, -np.inf])
    with np.errstate(divide="ignore"):      # log(0) = -inf is the right answer here
        assert to_np(gt.nn.logsumexp(allneg)) == -np.inf
    # their gradients are finite too
    x = arr([1000.0, -1000.0]).requires_grad_()
    (gt.nn.logsumexp(x) + gt.nn.softplus(x).sum() + gt.nn.sigmoid(x).sum()).backward()
    assert np.all(np.isfinite(to_np(x.grad)))
    np.testing.assert_allclose(to_np(x.grad), [1.0 + 1.0 + 0.0, 0.0 + 0.0 + 0.0], atol=1e-300)


def test_nn_against_scipy_where_installed(device):
    sp = pytest.importorskip("scipy.special")
    a = rand((3, 5), -6, 6, seed=21)
    x = arr(a)
    np.testing.assert_allclose(to_np(gt.nn.sigmoid(x)), sp.expit(a), rtol=1e-14)
    np.testing.assert_allclose(to_np(gt.nn.logsumexp(x, axis=1)), sp.logsumexp(a, axis=1), rtol=1e-14)
    np.testing.assert_allclose(to_np(gt.nn.softmax(x, axis=0)), sp.softmax(a, axis=0), rtol=1e-14)
    np.testing.assert_allclose(to_np(gt.nn.log_softmax(x)), sp.log_softmax(a, axis=-1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_np(gt.nn.softplus(x)), np.logaddexp(0.0, a), rtol=1e-14)
