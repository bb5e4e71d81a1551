"""Conformance details of the array API (issue 12, part 5), with array_api_strict as the oracle.

* the standard's signatures (``inspect.signature``) for every function both namespaces have;
* 0-d tensors behave as arrays: ``iter`` refuses at once, ``format`` as NumPy's scalars, ``operator.index``;
* ``concat`` of mismatched ranks, the ``strict`` device, ``__array_namespace_info__().devices()``;
* what array-api-tests' ``test_getitem``, ``test_getitem_masking``, ``test_asarray_arrays``, ``test_eye``,
  ``test_repeat`` and ``test_unstack`` check, on random cases (hypothesis) against array_api_strict.
"""
import inspect
import operator

import numpy as np
import pytest

import gradtape as gt

strict = pytest.importorskip("array_api_strict")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)

# name -> why gradtape's signature differs from array_api_strict's (each one checked below)
EXCEPTIONS = {
    # strict's defaults are a private sentinel (Undef); the standard writes None, as gradtape
    "astype": "device=None", "from_dlpack": "device=None, copy=None",
    # the standard gives axis no default; gradtape keeps 0 (its former keyword default) so old calls still work
    "expand_dims": "axis=0",
}
# strict's own helpers, not functions of the standard
NOT_STANDARD = {"get_array_api_strict_flags", "set_array_api_strict_flags", "reset_array_api_strict_flags",
                "Literal", "NamedTuple", "normalize_axis_tuple", "requires_api_version", "requires_extension",
                "conj", "finfo", "reshape", "device_supports_dtype"}


def _params(f):
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]


def _functions(mod):
    return [n for n in dir(mod) if not n.startswith("_") and n not in NOT_STANDARD
            and callable(getattr(mod, n)) and not isinstance(getattr(mod, n), type)]


def _pairs():
    out = []
    for sub in ("", "linalg", "fft"):
        sm, gm = (strict, gt) if not sub else (getattr(strict, sub), getattr(gt, sub, None))
        if gm is None:
            continue
        out += [(f"{sub}.{n}" if sub else n, getattr(sm, n), getattr(gm, n))
                for n in _functions(sm) if hasattr(gm, n)]
    return out


PAIRS = _pairs()


def test_signature_table_is_not_empty():
    names = {n for n, _, _ in PAIRS}
    assert len(names) > 150, len(names)
    assert {"zeros", "arange", "eye", "linspace", "full_like", "argmax", "searchsorted", "linalg.matmul"} <= names


@pytest.mark.parametrize("name,sf,gf", PAIRS, ids=[p[0] for p in PAIRS])
def test_signature_matches_the_standard(name, sf, gf):
    want, got = _params(sf), _params(gf)
    if name in EXCEPTIONS:      # same names and kinds; only the documented defaults differ
        assert [(n, k) for n, k, _ in got] == [(n, k) for n, k, _ in want], (name, got, want)
        assert EXCEPTIONS[name] in str(inspect.signature(gf)), (name, inspect.signature(gf))
    else:
        assert got == want, f"gt.{name}{inspect.signature(gf)} != standard {name}{inspect.signature(sf)}"


def test_creation_signatures_are_the_standards():
    assert str(inspect.signature(gt.zeros)) == "(shape, *, dtype=None, device=None)"
    assert str(inspect.signature(gt.eye)) == "(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None)"
    assert str(inspect.signature(gt.arange)) == "(start, /, stop=None, step=1, *, dtype=None, device=None)"
    assert str(inspect.signature(gt.linspace)) == \
        "(start, stop, /, num, *, dtype=None, device=None, endpoint=True)"
    assert str(inspect.signature(gt.full_like)) == "(x, /, fill_value, *, dtype=None, device=None)"


def test_extensions_still_accepted_at_runtime():
    """The signature is the standard's; PyTorch's varargs shape and positional axis still work."""
    assert gt.zeros(2, 3).shape == gt.ones(2, 3).shape == gt.empty(2, 3).shape == (2, 3)
    assert gt.zeros([2, 3]).shape == gt.zeros(shape=(2, 3)).shape == (2, 3)
    assert gt.expand_dims(gt.ones(2)).shape == (1, 2)
    assert gt.expand_dims(gt.ones(2), 1).shape == gt.expand_dims(gt.ones(2), axis=1).shape == (2, 1)
    assert gt.full_like(gt.ones(2), fill_value=4.0).tolist() == [4.0, 4.0]
    assert gt.eye(2, 3, k=1).tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert gt.linspace(0.0, 1.0, num=3, endpoint=False).shape == (3,)


# ---- 0-d tensors -----------------------------------------------------------------------------------

def test_iter_of_0d_raises_at_iter():
    with pytest.raises(TypeError, match="0-d"):
        iter(gt.asarray(1.0))
    with pytest.raises(TypeError):
        iter(gt.asarray([1.0, 2.0])[0])
    it = iter(gt.asarray([1.0, 2.0]))
    assert [float(v) for v in it] == [1.0, 2.0]


@pytest.mark.parametrize("value,dtype", [(0.1, "float32"), (2.5, "float64"), (-3, "int64"), (7, "int8"),
                                         (True, "bool"), (1e-7, "float64")])
@pytest.mark.parametrize("spec", ["", "g", ".3f", ">8", "<10", "^9", "+", ".2e", "08.3f"])
def test_format_of_0d_as_numpy_scalars(value, dtype, spec):
    if dtype == "bool" and any(c in spec for c in "fe+"):
        spec = ">8"
    want = format(np.asarray(value, dtype=dtype)[()], spec)
    t = gt.asarray(value, dtype=getattr(gt, dtype))
    assert format(t, spec) == want
    assert format(gt.asarray([value], dtype=getattr(gt, dtype))[0], spec) == want
    assert f"{t:{spec}}" == want


def test_format_on_strict_device():
    assert f"{gt.asarray(1.25, device='strict'):.1f}" == "1.2"


def test_operator_index_of_an_element():
    x = gt.asarray([3, -4], dtype=gt.int32)
    assert operator.index(x[0]) == 3 and operator.index(x[1]) == -4
    assert [10, 20, 30, 40][x[0]] == 40
    with pytest.raises(TypeError):
        operator.index(gt.asarray([1.5])[0])


def test_element_dunders_behave_as_an_arrays():
    x, a = gt.asarray([2.5, -1.0]), np.asarray([2.5, -1.0])
    t, e = x[0], a[0:1].reshape(())
    assert isinstance(t, gt.Tensor) and t.shape == () and t.ndim == 0 and t.size == 1
    for op in (operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.floordiv,
               operator.mod, operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
        for u, v in ((t, 2.0), (2.0, t), (t, x[1])):
            nu = e if u is t else (a[1:2].reshape(()) if u is x[1] else u)
            nv = e if v is t else (a[1:2].reshape(()) if v is x[1] else v)
            out = op(u, v)
            assert isinstance(out, gt.Tensor) and out.shape == (), (op, u, v)
            assert gt.to_numpy(out).tolist() == op(nu, nv).tolist(), (op, u, v)
    for op in (operator.neg, operator.pos, abs):
        assert gt.to_numpy(op(t)).tolist() == op(e).tolist()
    assert float(t) == 2.5 and int(t) == 2 and complex(t) == 2.5 and bool(t) is True
    assert bool(x[1] > 0) is False
    with pytest.raises(TypeError):
        len(t)
    assert t.item() == 2.5 and gt.to_numpy(t).shape == ()
    assert np.asarray(t).shape == () and float(np.asarray(t)) == 2.5
    assert gt.to_numpy(~gt.asarray([5])[0]).tolist() == ~5


# ---- concat, strict device, devices() -------------------------------------------------------------

def test_concat_mismatched_ranks_is_a_value_error_naming_shapes():
    with pytest.raises(ValueError, match=r"\(2,\).*\(2, 2\)"):
        gt.concat([gt.ones((2,)), gt.ones((2, 2))])
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        gt.concat([gt.ones((2, 3)), gt.ones((2, 4))])
    assert gt.concat([gt.ones((2, 3)), gt.ones((2, 4))], axis=1).shape == (2, 7)


def test_broadcast_error_uses_numpys_words():
    """SciPy's tests match NumPy's message (``...be broadcast...``, scipy.optimize's input validation)."""
    with pytest.raises(ValueError, match=r"broadcast_shapes: shapes \(2,\), \(3,\) cannot be broadcast"):
        gt.broadcast_shapes((2,), (3,))
    with pytest.raises(ValueError, match="be broadcast"):
        gt.broadcast_arrays(gt.ones(2), gt.ones(3))


def test_strict_device_result_type_and_masks():
    x = gt.asarray([1.0, 2.0, 3.0], device="strict")
    assert gt.result_type(x, gt.float32) == gt.float64
    i8 = gt.asarray([1], dtype=gt.int8, device="strict")
    assert gt.result_type(i8, gt.asarray([1], dtype=gt.int16, device="strict")) == gt.int16
    assert gt.result_type(i8, 1) == gt.int8 and gt.result_type(x, 1.0, gt.float32) == gt.float64
    mask = x > 1.5
    assert mask.device == "strict"
    assert x[mask].tolist() == [2.0, 3.0] and x[mask].device == "strict"
    y = gt.asarray([1.0, 2.0, 3.0], device="strict")
    y[mask] = 0.0
    assert y.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(TypeError):
        gt.asarray([1.0, 2.0, 3.0])[mask]       # a mask of another device


def test_devices_lists_where_arrays_can_go():
    devices = gt.__array_namespace_info__().devices()
    assert devices[0] == "cpu" and "strict" in devices
    for d in devices:
        assert gt.zeros(2, device=d).device == d
    cuda = [d for d in devices if d.startswith("cuda")]
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        n = 0
    assert cuda == [f"cuda:{i}" for i in range(n)]
    assert gt.__array_namespace_info__().default_device() in devices


# ---- array-api-tests cases, array_api_strict as the oracle ----------------------------------------

def _same(t, a):
    assert isinstance(t, gt.Tensor), type(t)
    assert t.shape == tuple(a.shape), (t.shape, a.shape)
    assert str(t.dtype) == str(a.dtype).split(".")[-1], (t.dtype, a.dtype)
    np.testing.assert_array_equal(gt.to_numpy(t), np.asarray(a))


@st.composite
def _shapes(draw, min_dims=0, max_dims=4, max_side=4):
    return tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims)))


@st.composite
def _basic_index(draw, shape):
    key, dims = [], list(shape)
    used_ellipsis = False
    while dims or (draw(st.booleans()) and len(key) < 5):
        kind = draw(st.sampled_from(["int", "slice", "none", "ellipsis"] if dims else ["none"]))
        if kind == "int" and dims[0] > 0:
            key.append(draw(st.integers(-dims[0], dims[0] - 1)))
            dims.pop(0)
        elif kind == "slice" or (kind == "int" and dims):
            n = dims.pop(0)
            step = draw(st.sampled_from([None, 1, 2, -1, -2, 3]))
            lo = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
            hi = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
            key.append(slice(lo, hi, step))
        elif kind == "none":
            key.append(None)
        elif not used_ellipsis:
            key.append(Ellipsis)
            used_ellipsis = True
            dims = dims[draw(st.integers(0, len(dims))):] if dims else []
        if not draw(st.booleans()) and (used_ellipsis or not dims):
            break
    if not used_ellipsis and dims:
        key.append(Ellipsis)
    return tuple(key) if len(key) != 1 or draw(st.booleans()) else key[0]


@SETTINGS
@given(st.data())
def test_getitem_basic(data):
    shape = data.draw(_shapes(max_side=4))
    key = data.draw(_basic_index(shape))
    a = strict.reshape(strict.arange(int(np.prod(shape)), dtype=strict.int32), shape)
    x = gt.asarray(np.asarray(a))
    try:
        want = a[key]
    except IndexError:          # out-of-bounds slice bounds are unspecified: NumPy's (Python's) clipping
        want = np.asarray(a)[key]
    _same(x[key], want)


@SETTINGS
@given(st.data())
def test_getitem_masking(data):
    shape = data.draw(_shapes(max_dims=3, max_side=3))
    k = data.draw(st.integers(0, len(shape)))
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=int(np.prod(shape[:k])),
                                         max_size=int(np.prod(shape[:k]))))).reshape(shape[:k]).astype(bool)
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x, s = gt.asarray(a), strict.asarray(a)
    _same(x[gt.asarray(mask)], s[strict.asarray(mask)])
    if k == len(shape):         # setitem with a scalar through the mask
        y = gt.asarray(a)
        y[gt.asarray(mask)] = -1.0
        s[strict.asarray(mask)] = -1.0
        _same(y, s)


@SETTINGS
@given(st.data())
def test_getitem_integer_arrays(data):
    """2024.12: integer arrays (broadcast together) and integers, one per axis."""
    shape = data.draw(_shapes(min_dims=1, max_dims=3, max_side=3).filter(lambda s: all(s)))
    ishape = data.draw(_shapes(max_dims=2, max_side=3))
    key, skey = [], []
    for n in shape:
        if data.draw(st.booleans()):
            k = data.draw(st.integers(-n, n - 1))
            key.append(k), skey.append(k)
        else:
            idx = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(ishape)),
                                                max_size=int(np.prod(ishape)))), dtype=np.int64).reshape(ishape)
            key.append(gt.asarray(idx)), skey.append(strict.asarray(idx))
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    _same(gt.asarray(a)[tuple(key)], strict.asarray(a)[tuple(skey)])


def test_getitem_zero_d_masks_and_keys():
    a = np.arange(3.0)
    for key in (True, False):
        _same(gt.asarray(a)[gt.asarray(key)], strict.asarray(a)[strict.asarray(key)])
        _same(gt.asarray(2.0)[gt.asarray(key)], strict.asarray(2.0)[strict.asarray(key)])
    for key in ((), Ellipsis, None, (None, Ellipsis)):
        _same(gt.asarray(2.0)[key], strict.asarray(2.0)[key])
    _same(gt.asarray(a)[gt.asarray(1)], strict.asarray(a)[strict.asarray(1)])


@SETTINGS
@given(st.data())
def test_asarray_arrays(data):
    shape = data.draw(_shapes(max_dims=3, max_side=3))
    src = data.draw(st.sampled_from(["float64", "float32", "int64", "int32", "int8", "uint8", "bool"]))
    dst = data.draw(st.one_of(st.none(), st.sampled_from(["float64", "float32", "int64", "int16", "bool"])))
    copy = data.draw(st.sampled_from([None, True, False]))
    a = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(src)
    x = gt.asarray(a)
    kw = {} if dst is None else {"dtype": getattr(gt, dst)}
    skw = {} if dst is None else {"dtype": getattr(strict, dst)}
    try:
        want = strict.asarray(strict.asarray(a), copy=copy, **skw)
    except ValueError:
        with pytest.raises(ValueError):
            gt.asarray(x, copy=copy, **kw)
        return
    out = gt.asarray(x, copy=copy, **kw)
    _same(out, want)
    if copy is True:
        assert out is not x
    if copy is False or (dst is None or dst == src) and copy is None:
        assert out.dtype == x.dtype


@SETTINGS
@given(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 5)), st.integers(-8, 8),
       st.sampled_from([None, "float64", "float32", "int64", "int16", "uint8", "bool"]))
def test_eye(n_rows, n_cols, k, dtype):
    kw = {} if dtype is None else {"dtype": getattr(gt, dtype)}
    skw = {} if dtype is None else {"dtype": getattr(strict, dtype)}
    _same(gt.eye(n_rows, n_cols, k=k, **kw), strict.eye(n_rows, n_cols, k=k, **skw))
    if n_cols is None:
        _same(gt.eye(n_rows, k=k, **kw), strict.eye(n_rows, k=k, **skw))


def test_eye_huge_k():
    for k in (2**40, -(2**40)):
        _same(gt.eye(3, 2, k=k), strict.eye(3, 2, k=k))


@SETTINGS
@given(st.data())
def test_repeat(data):
    shape = data.draw(_shapes(max_dims=3, max_side=3))
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))) if shape else None
    n = a.size if axis is None else shape[axis]
    if data.draw(st.booleans()):
        r = data.draw(st.integers(0, 3))
        gr, sr = r, r
    else:
        r = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
        if data.draw(st.booleans()) and n:
            r = r[:1].reshape(())           # a 0-d repeats array broadcasts
        gr, sr = gt.asarray(r), strict.asarray(r)
    _same(gt.repeat(gt.asarray(a), gr, axis=axis), strict.repeat(strict.asarray(a), sr, axis=axis))


@SETTINGS
@given(st.data())
def test_unstack(data):
    shape = data.draw(_shapes(min_dims=1, max_dims=4, max_side=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    got, want = gt.unstack(gt.asarray(a), axis=axis), strict.unstack(strict.asarray(a), axis=axis)
    assert isinstance(got, tuple) and len(got) == len(want)
    for t, s in zip(got, want):
        _same(t, s)
    got2 = gt.unstack(gt.asarray(a), axis=axis)      # positional-or-keyword as in the standard
    assert len(got2) == len(want)


def test_unstack_axis_out_of_range():
    with pytest.raises(ValueError):
        gt.unstack(gt.ones((2, 3)), axis=2)
    with pytest.raises(ValueError):
        gt.unstack(gt.asarray(1.0))
