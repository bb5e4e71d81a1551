"""The array-API namespace: dtypes, creation, and the public functions.

Differentiable functions call :func:`gradtape._core.apply` with a primitive;
non-differentiable ones (comparisons, rounding, searching, sets, ...) unwrap
their arguments, call the backend's function and return untracked tensors.
``T`` is the tensor-level namespace handed to rules when derivatives are
themselves recorded.
"""
from __future__ import annotations

import contextlib
import math
from builtins import any as _any
from .. import backends as _backends
from .._ops import elementwise as P
from .._ops import shape as S
from .._axes import AxisError, axis_index, axis_tuple
from .._core.tensor import Tensor
from .._state import _global_device, default_device as _default_device_str, state
from .._core.tensor import check_float as _check_float
from .._core.dispatch import apply, apply1, apply2, wrap

# ---- dtypes ------------------------------------------------------------------------------------


from .._core.dtypes import (DType, DTYPES, KINDS as _KINDS, dtype_name as _dtype_name, dtype_of as _gdt,  # noqa: E402
                            backend_dtype as _bdt, unsupported as _unsupported, is_float as _is_float)
import builtins as _builtins_mod  # noqa: E402
_builtin_bool = _builtins_mod.bool
bool = DTYPES["bool"]  # noqa: A001  (array API name)
int8 = DTYPES["int8"]
int16 = DTYPES["int16"]
int32 = DTYPES["int32"]
int64 = DTYPES["int64"]
uint8 = DTYPES["uint8"]
uint16 = DTYPES["uint16"]
uint32 = DTYPES["uint32"]
uint64 = DTYPES["uint64"]
float32 = DTYPES["float32"]
float64 = DTYPES["float64"]
complex64 = DTYPES["complex64"]
complex128 = DTYPES["complex128"]


def _checked(data, bk, obj, op="asarray"):
    """A fresh tensor around data, refusing a dtype gradtape has no name for (strings, objects, float16...)."""
    name = _dtype_name(data.dtype)
    if name not in DTYPES:
        what = f"a {type(obj).__module__}.{type(obj).__name__}" if hasattr(obj, "dtype") else \
            f"a Python {type(obj).__name__}" if op in ("asarray", "from_dlpack") else f"the arguments {obj!r:.60}"
        raise _unsupported(op, name, what)
    return wrap(data, bk)


def isdtype(dtype, kind):
    """Array API ``isdtype``.

    >>> import gradtape as gt
    >>> gt.isdtype(gt.float32, "real floating")
    True
    """
    if isinstance(kind, tuple):
        return _any(isdtype(dtype, k) for k in kind)
    name = _dtype_name(dtype)
    if isinstance(kind, str):
        k = _KINDS.get(name)
        if kind == "integral":
            return k in ("signed integer", "unsigned integer")
        if kind == "numeric":
            return k not in (None, "bool")
        return k == kind
    return name == _dtype_name(kind)


# ---- devices and backends ----------------------------------------------------------------------

def set_default_device(device):
    """Set the process-wide default device ("cpu", "cuda", "cuda:N", "strict").

    >>> import gradtape as gt
    >>> gt.set_default_device("cpu")
    """
    _backends.canonical_device(device)
    _global_device[0] = _backends.canonical_device(device)


@contextlib.contextmanager
def default_device(device):
    """Context manager: tensors created inside go to ``device`` (this thread only).

    >>> import gradtape as gt
    >>> with gt.default_device("cpu"):
    ...     gt.ones(2).device
    'cpu'
    """
    prev = state.device
    state.device = _backends.canonical_device(device)
    try:
        yield
    finally:
        state.device = prev


def get_default_device():
    """The device new tensors go to.

    >>> import gradtape as gt
    >>> gt.get_default_device()
    'cpu'
    """
    return _backends.canonical_device(_default_device_str())


def _bk_for(device):
    return _backends.get(device if device is not None else _default_device_str())


# ---- creation ----------------------------------------------------------------------------------

def _transfer(data, src, dst):
    if src is dst:
        return data
    if dst.name == "cupy" and src.name == "cupy":
        return dst.asarray(data, copy=True)
    return dst.asarray(src.to_numpy(data))


to_device_p = P.prim("to_device", lambda xp, x, src, dst: _transfer(x, src, dst),
                     [lambda xp, ct, out, x, src, dst: _move_back(ct, dst, src)],
                     [lambda xp, t, out, x, src, dst: to_device(t, dst.device)], [()], same=True)


def _move_back(ct, dst, src):
    if isinstance(ct, Tensor):
        return to_device(ct, src.device)
    return _transfer(ct, dst, src)


def to_device(x, device, /, *, stream=None):
    """Move a tensor to ``device``; differentiable (gradients flow back to the source device).

    >>> import gradtape as gt
    >>> gt.to_device(gt.ones(2), "cpu").device
    'cpu'
    """
    dst = _backends.get(device)
    if dst is x.backend:
        return x
    src = x.backend
    out = apply1(to_device_p, x, {"src": src, "dst": dst})
    out.backend = dst
    if out._node is not None:
        out._node.backend = dst
    return out


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """Array API ``asarray``: wrap Python data, NumPy/CuPy/strict arrays or tensors.

    The backend follows a wrapped array; a tracked tensor stays tracked.

    >>> import gradtape as gt
    >>> gt.asarray([[1.0], [2.0]]).shape
    (2, 1)
    """
    if isinstance(obj, Tensor):
        x = obj
        if device is not None:
            x = to_device(x, device)
        if dtype is not None and x.dtype != dtype:
            if copy is False:
                raise ValueError(f"gradtape.asarray: copy=False but dtype {x.dtype} -> {dtype} needs a copy")
            x = S.astype(x, dtype)
        elif copy:
            x = S.astype(x, x.dtype, copy=True)
        return x
    if isinstance(obj, (list, tuple)) and obj and _any(isinstance(o, Tensor) for o in _flat(obj)):
        parts = [asarray(o, dtype=dtype, device=device) for o in obj]
        return S.stack(parts)
    bk = _backends.backend_of(obj)
    if bk is not None:
        if device is not None and _backends.canonical_device(device) != bk.device:
            dst = _backends.get(device)
            data = _transfer(obj, bk, dst)
            bk = dst
            copy = None
        else:
            data = obj
        return _checked(bk.asarray(data, dtype=_bdt(bk, dtype, "asarray"), copy=copy), bk, obj)
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__") and not isinstance(obj, (list, tuple)):
        return from_dlpack(obj, device=device, copy=copy) if dtype is None else \
            asarray(from_dlpack(obj, device=device, copy=copy), dtype=dtype)
    bk = _bk_for(device)
    if obj is None or isinstance(obj, (str, bytes, bytearray, dict, set, frozenset)) or \
            (hasattr(obj, "__next__") and not hasattr(obj, "__array__")):
        raise TypeError(f"gradtape.asarray: cannot make a tensor from a Python {type(obj).__name__} ({obj!r:.60}); "
                        f"pass numbers, nested lists/tuples of numbers, or an array")
    try:
        data = bk.asarray(obj, dtype=_bdt(bk, dtype, "asarray"), copy=copy)
    except TypeError as e:
        raise TypeError(f"gradtape.asarray: cannot make a tensor from a Python {type(obj).__name__} ({e})") from None
    return _checked(data, bk, obj)


def _flat(obj):
    for o in obj:
        if isinstance(o, (list, tuple)):
            yield from _flat(o)
        else:
            yield o


def from_dlpack(x, /, *, device=None, copy=None):
    """Array API ``from_dlpack``: zero-copy from any DLPack producer (PyTorch, JAX, CuPy...).

    >>> import gradtape as gt, numpy as np
    >>> gt.from_dlpack(np.ones(2)).device
    'cpu'
    """
    if isinstance(x, Tensor):
        x = x.data
    kind, idx = x.__dlpack_device__()
    dev = {1: "cpu", 2: f"cuda:{idx}", 3: "cpu"}.get(int(kind))
    if dev is None:
        raise TypeError(f"gradtape.from_dlpack: unsupported DLPack device type {kind}")
    src_dev = "strict" if type(x).__module__.startswith("array_api_strict") else dev
    bk = _backends.get(src_dev)
    try:
        data = bk.from_dlpack(x)
    except (RuntimeError, BufferError, TypeError) as e:     # e.g. bfloat16: "Unsupported dtype in DLTensor"
        raise TypeError(f"gradtape.from_dlpack: cannot import a {type(x).__module__}.{type(x).__name__} "
                        f"(dtype {getattr(x, 'dtype', '?')}): {e}") from None
    t = _checked(data, bk, x, "from_dlpack")
    if device is not None:
        t = to_device(t, device)
    if copy:
        t = wrap(bk.asarray(t.data, copy=True), t.backend)
    return t


def _creator(name, doc):
    def f(*args, dtype=None, device=None, **kw):
        bk = _bk_for(device)
        dt = _bdt(bk, dtype, name)
        try:
            data = getattr(bk.xp, name)(*args, dtype=dt, **kw)
        except TypeError as e:
            raise TypeError(f"gradtape.{name}: cannot make a tensor from the arguments {args!r:.60} ({e})") from None
        return _checked(data, bk, args[-1:], name)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return f


def _like(name, doc):
    def f(x, /, *args, dtype=None, device=None, **kw):
        x = x if isinstance(x, Tensor) else asarray(x)
        bk = _backends.get(device) if device is not None else x.backend
        data = x.data if bk is x.backend else _transfer(x.data, x.backend, bk)
        return _checked(getattr(bk.xp, name)(data, *args, dtype=_bdt(bk, dtype, name), **kw), bk, args[-1:], name)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return f


zeros = _creator("zeros", "Array API ``zeros``.\n\n>>> import gradtape as gt\n>>> gt.zeros((2,))\nTensor([0., 0.])\n")
ones = _creator("ones", "Array API ``ones``.\n\n>>> import gradtape as gt\n>>> gt.ones((2,))\nTensor([1., 1.])\n")
empty = _creator("empty", "Array API ``empty``.\n\n>>> import gradtape as gt\n>>> gt.empty((2,)).shape\n(2,)\n")
full = _creator("full", "Array API ``full``.\n\n>>> import gradtape as gt\n>>> gt.full((2,), 3.0)\nTensor([3., 3.])\n")
eye = _creator("eye", "Array API ``eye``.\n\n>>> import gradtape as gt\n>>> gt.eye(2).shape\n(2, 2)\n")
arange = _creator("arange", "Array API ``arange``.\n\n>>> import gradtape as gt\n>>> gt.arange(3)\nTensor([0, 1, 2])\n")
linspace = _creator("linspace", "Array API ``linspace``.\n\n>>> import gradtape as gt\n>>> gt.linspace(0.0, 1.0, 3)\nTensor([0. , 0.5, 1. ])\n")
zeros_like = _like("zeros_like", "Array API ``zeros_like``.\n\n>>> import gradtape as gt\n>>> gt.zeros_like(gt.ones(2))\nTensor([0., 0.])\n")
ones_like = _like("ones_like", "Array API ``ones_like``.\n\n>>> import gradtape as gt\n>>> gt.ones_like(gt.zeros(2))\nTensor([1., 1.])\n")
empty_like = _like("empty_like", "Array API ``empty_like``.\n\n>>> import gradtape as gt\n>>> gt.empty_like(gt.zeros(2)).shape\n(2,)\n")
full_like = _like("full_like", "Array API ``full_like``.\n\n>>> import gradtape as gt\n>>> gt.full_like(gt.zeros(2), 7.0)\nTensor([7., 7.])\n")


def meshgrid(*arrays, indexing="xy"):
    """Array API ``meshgrid``; differentiable (broadcasts of the inputs).

    >>> import gradtape as gt
    >>> [a.shape for a in gt.meshgrid(gt.arange(3.0), gt.arange(2.0))]
    [(2, 3), (2, 3)]
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"gradtape.meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    arrays = [asarray(a) for a in arrays]
    n = len(arrays)
    sizes = [a.shape[0] if a.ndim else 1 for a in arrays]
    if indexing == "xy" and n >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, a in enumerate(arrays):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        shape = [1] * n
        shape[pos] = a.size
        out.append(S.broadcast_to(S.reshape(a, tuple(shape)), tuple(sizes)))
    return out


# ---- reductions and friends --------------------------------------------------------------------

def _t(x):
    return x if isinstance(x, Tensor) else asarray(x)


def _ax(x, axis, op="sum"):
    """The reduced axes, distinct and negative (rules then accept leading batch axes); AxisError naming op."""
    nd = x.ndim
    if axis is None:
        return tuple(range(-nd, 0))
    return tuple(sorted(a - nd for a in axis_tuple(axis, nd, op, x.shape)))


def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    """Array API ``sum``; differentiable.

    >>> import gradtape as gt
    >>> gt.sum(gt.asarray([1.0, 2.0]))
    Tensor(3.)
    """
    x = _t(x)
    return apply1(P.sum_, x, {"axis": _ax(x, axis), "keepdims": keepdims, "dtype": _bdt(x.backend, dtype),
                                "xshape": x.shape})


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    """Array API ``prod``; its gradient is exact where x has zeros.

    >>> import gradtape as gt
    >>> gt.prod(gt.asarray([2.0, 3.0]))
    Tensor(6.)
    """
    x = _t(x)
    return apply1(P.prod_, x, {"axis": _ax(x, axis, "prod"), "keepdims": keepdims, "dtype": _bdt(x.backend, dtype)})


def mean(x, /, *, axis=None, keepdims=False):
    """Array API ``mean``.

    >>> import gradtape as gt
    >>> gt.mean(gt.asarray([1.0, 2.0]))
    Tensor(1.5)
    """
    x = _t(x)
    return apply1(P.mean_, x, {"axis": _ax(x, axis, "mean"), "keepdims": keepdims, "xshape": x.shape})


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Array API ``var``.

    >>> import gradtape as gt
    >>> gt.var(gt.asarray([1.0, 3.0]))
    Tensor(1.)
    """
    x = _t(x)
    return apply1(P.var_, x, {"axis": _ax(x, axis, "var"), "correction": correction, "keepdims": keepdims})


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Array API ``std`` (its derivative is infinite where the spread is 0).

    >>> import gradtape as gt
    >>> gt.std(gt.asarray([1.0, 3.0]))
    Tensor(1.)
    """
    x = _t(x)
    return apply1(P.std_, x, {"axis": _ax(x, axis, "std"), "correction": correction, "keepdims": keepdims})


def max(x, /, *, axis=None, keepdims=False):
    """Array API ``max``; ties share the gradient evenly.

    >>> import gradtape as gt
    >>> gt.max(gt.asarray([1.0, 3.0]))
    Tensor(3.)
    """
    x = _t(x)
    return apply1(P.max_, x, {"axis": _nonempty(x, _ax(x, axis, "max"), "max"), "keepdims": keepdims})


def min(x, /, *, axis=None, keepdims=False):
    """Array API ``min``; ties share the gradient evenly.

    >>> import gradtape as gt
    >>> gt.min(gt.asarray([1.0, 3.0]))
    Tensor(1.)
    """
    x = _t(x)
    return apply1(P.min_, x, {"axis": _nonempty(x, _ax(x, axis, "min"), "min"), "keepdims": keepdims})


def _nonempty(x, axes, op):
    """axes, checked to have at least one element each (max/min of nothing has no value)."""
    if 0 in x.shape and _any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"gradtape.{op}: cannot reduce an empty axis (shape {x.shape}, axis {axes}): {op} of no "
                         f"elements has no value")
    return axes


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array API ``cumulative_sum``.

    >>> import gradtape as gt
    >>> gt.cumulative_sum(gt.asarray([1.0, 2.0]))
    Tensor([1., 3.])
    """
    x = _t(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"gradtape.cumulative_sum: axis is required for shape {x.shape}")
        axis = 0
    return apply1(P.cumsum, x, {"axis": axis_index(axis, x.ndim, "cumulative_sum", x.shape) - x.ndim,
                                "dtype": _bdt(x.backend, dtype),
                                "include_initial": include_initial})


def _tracked(*xs):
    """Whether a composite must go through primitives (differentiated, or being traced)."""
    return ((state.tracer is not None)       # this thread is being traced
            or _any(isinstance(x, Tensor) and (x._requires_grad or x.tangents is not None) for x in xs))


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array API ``cumulative_prod`` (differentiated as a chain of products, exact with zeros).

    >>> import gradtape as gt
    >>> gt.cumulative_prod(gt.asarray([2.0, 3.0]))
    Tensor([2., 6.])
    """
    x = _t(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"gradtape.cumulative_prod: axis is required for shape {x.shape}")
        axis = 0
    axis = axis_index(axis, x.ndim, "cumulative_prod", x.shape)
    if not _tracked(x):
        return wrap(x.backend.xp.cumulative_prod(x.data, axis=axis, dtype=_bdt(x.backend, dtype),
                                             include_initial=include_initial), x.backend)
    if dtype is not None:
        x = S.astype(x, dtype)
    if x.shape[axis] == 0:          # still tracked: 1 + an empty sum (exactly 1), or x itself (empty)
        return sum(x, axis=axis, keepdims=True) + 1 if include_initial else x * 1
    parts = S.unstack(x, axis=axis)
    outs = [ones_like(parts[0])] if include_initial else []
    run = None
    for p in parts:
        run = p if run is None else run * p
        outs.append(run)
    return S.stack(outs, axis=axis)


def clip(x, /, min=None, max=None):
    """Array API ``clip``; derivative 1 inside [min, max] (bounds included), 0 outside.

    >>> import gradtape as gt
    >>> gt.clip(gt.asarray([-2.0, 0.5, 2.0]), -1.0, 1.0)
    Tensor([-1. ,  0.5,  1. ])
    """
    x = _t(x)
    if isinstance(min, Tensor) or isinstance(max, Tensor) or not _scalar_or_none(min) or not _scalar_or_none(max):
        out = x
        if min is not None:
            out = S.where(out < min, S.broadcast_to(_t(min), out.shape) if not isinstance(min, (int, float)) else min, out)
        if max is not None:
            out = S.where(out > max, max, out)
        return out
    return apply1(P.clip_, x, {"lo": min, "hi": max})


def _scalar_or_none(v):
    return v is None or isinstance(v, (int, float))


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    """Array API ``diff``.

    >>> import gradtape as gt
    >>> gt.diff(gt.asarray([1.0, 4.0, 9.0]))
    Tensor([3., 5.])
    """
    x = _t(x)
    a = axis_index(axis, x.ndim, "diff", x.shape)
    if not isinstance(n, int) or isinstance(n, _builtin_bool) or n < 0:
        raise ValueError(f"gradtape.diff: n must be a non-negative integer, got {n!r}")
    parts = [p if p is x else _edge(p if isinstance(p, Tensor) else asarray(p, device=x.device), x, a)
             for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = S.concat(parts, axis=a)
    for _ in range(n):
        hi = (slice(None),) * a + (slice(1, None),)
        lo = (slice(None),) * a + (slice(None, -1),)
        x = x[hi] - x[lo]
    return x


def _edge(p, x, a):
    """A 0-d prepend/append of diff as one slice along axis a (NumPy broadcasts scalars so)."""
    return S.broadcast_to(p, x.shape[:a] + (1,) + x.shape[a + 1:]) if p.ndim == 0 else p


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """Array API ``sort``; gradients follow the permutation.

    >>> import gradtape as gt
    >>> gt.sort(gt.asarray([3.0, 1.0]))
    Tensor([1., 3.])
    """
    x = _t(x)
    axis = axis_index(axis, x.ndim, "sort", x.shape)
    if not _tracked(x):
        return wrap(x.backend.xp.sort(x.data, axis=axis, descending=descending, stable=stable), x.backend)
    idx = argsort(x, axis=axis, descending=descending, stable=stable)
    return S.take_along_axis(x, idx, axis=axis)


# ---- linear algebra in the main namespace ------------------------------------------------------

def matmul(x1, x2, /):
    """Array API ``matmul`` (``@``).

    >>> import gradtape as gt
    >>> gt.matmul(gt.ones((2, 3)), gt.ones((3,)))
    Tensor([3., 3.])
    """
    x1, x2 = _t(x1), _t(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError(f"gradtape.matmul: operands must have at least 1 dimension, got shapes {x1.shape} and {x2.shape}")
    k2 = x2.shape[-2] if x2.ndim > 1 else x2.shape[0]
    if x1.shape[-1] != k2:
        raise ValueError(f"gradtape.matmul: shapes {x1.shape} and {x2.shape} do not match: {x1.shape[-1]} columns "
                         f"against {k2} rows")
    if x1.ndim > 2 or x2.ndim > 2:
        try:
            broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
        except ValueError:
            raise ValueError(f"gradtape.matmul: the stack shapes of {x1.shape} and {x2.shape} do not broadcast "
                             f"({x1.shape[:-2]} and {x2.shape[:-2]})") from None
    return apply(P.matmul, (x1, x2), {"nd": (x1.ndim, x2.ndim)})


def vecdot(x1, x2, /, *, axis=-1):
    """Array API ``vecdot`` (real inputs).

    >>> import gradtape as gt
    >>> gt.vecdot(gt.ones((2, 3)), gt.ones((3,)))
    Tensor([3., 3.])
    """
    x1, x2 = _t(x1), _t(x2)
    nd = builtins_max(x1.ndim, x2.ndim)
    given, axis = axis, axis_index(axis, nd, "vecdot", x1.shape if x1.ndim == nd else x2.shape) - nd
    if -axis > builtins_min(x1.ndim, x2.ndim):
        raise AxisError(f"gradtape.vecdot: axis {given} is out of range for shapes {x1.shape} and {x2.shape} "
                        f"(it must be an axis of both)")
    if x1.shape[axis] != x2.shape[axis]:
        raise ValueError(f"gradtape.vecdot: shapes {x1.shape} and {x2.shape} differ along axis {axis}")
    return apply(P.vecdot_, (x1, x2), {"axis": axis, "nd": (x1.ndim, x2.ndim)})


def tensordot(x1, x2, /, *, axes=2):
    """Array API ``tensordot``.

    >>> import gradtape as gt
    >>> gt.tensordot(gt.ones((2, 3)), gt.ones((3, 4)), axes=1).shape
    (2, 4)
    """
    x1, x2 = _t(x1), _t(x2)
    if isinstance(axes, int):
        if not 0 <= axes <= builtins_min(x1.ndim, x2.ndim):
            raise ValueError(f"gradtape.tensordot: axes={axes} is out of range for shapes {x1.shape} and {x2.shape}")
        a1 = list(range(x1.ndim - axes, x1.ndim))
        a2 = list(range(axes))
    else:
        a1 = list(axis_tuple(tuple(axes[0]), x1.ndim, "tensordot", x1.shape, allow_none=False))
        a2 = list(axis_tuple(tuple(axes[1]), x2.ndim, "tensordot", x2.shape, allow_none=False))
        if len(a1) != len(a2):
            raise ValueError(f"gradtape.tensordot: axes {axes} pair {len(a1)} axes of x1 with {len(a2)} of x2")
    if _any(x1.shape[i] != x2.shape[j] for i, j in zip(a1, a2)):
        raise ValueError(f"gradtape.tensordot: shapes {x1.shape} and {x2.shape} differ along the contracted axes "
                         f"{tuple(a1)} and {tuple(a2)}")
    if not _tracked(x1, x2):
        _same(x1, x2, name="tensordot")
        return wrap(x1.backend.xp.tensordot(x1.data, x2.data, axes=(tuple(a1), tuple(a2))), x1.backend)
    f1 = [i for i in range(x1.ndim) if i not in a1]
    f2 = [i for i in range(x2.ndim) if i not in a2]
    k = math.prod(x1.shape[i] for i in a1)
    m1 = S.reshape(S.permute_dims(x1, tuple(f1 + a1)), (math.prod(x1.shape[i] for i in f1), k))
    m2 = S.reshape(S.permute_dims(x2, tuple(a2 + f2)), (k, math.prod(x2.shape[i] for i in f2)))
    return S.reshape(matmul(m1, m2), tuple(x1.shape[i] for i in f1) + tuple(x2.shape[i] for i in f2))


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """``linalg.vector_norm``; the gradient of every p-norm with p >= 1 (and inf) at 0 is 0 (not NaN), as torch.

    >>> import gradtape as gt
    >>> gt.linalg.vector_norm(gt.asarray([3.0, 4.0]))
    Tensor(5.)
    """
    x = _t(x)
    ax = _ax(x, axis, "linalg.vector_norm")
    if ord == 2:
        return apply1(P.norm2, x, {"axis": ax, "keepdims": keepdims})
    if isinstance(ord, (int, float)) and not isinstance(ord, _builtin_bool) and 1 < ord < math.inf:
        return apply1(P.normp, x, {"axis": ax, "keepdims": keepdims, "p": float(ord)})
    if not _tracked(x):
        return wrap(x.backend.xp.linalg.vector_norm(x.data, axis=axis, keepdims=keepdims, ord=ord), x.backend)
    a = P_abs(x)
    if ord == math.inf:
        return max(a, axis=ax, keepdims=keepdims)
    if ord == -math.inf:
        return min(a, axis=ax, keepdims=keepdims)
    if ord == 0:
        return sum(S.astype(x != 0, x.dtype), axis=ax, keepdims=keepdims)
    if ord == 1:
        return sum(a, axis=ax, keepdims=keepdims)
    return sum(a ** ord, axis=ax, keepdims=keepdims) ** (1.0 / ord)


def _same(*xs, name="op"):
    bk = None
    for x in xs:
        if isinstance(x, Tensor):
            if bk is None:
                bk = x.backend
            elif x.backend is not bk:
                from .._core.dispatch import device_error as _device_error
                raise _device_error(name, [t for t in xs if isinstance(t, Tensor)])
    return bk


# ---- non-differentiable functions --------------------------------------------------------------

def _nondiff(name, doc=None):
    def f(*args, **kw):
        bk = None
        raw = []
        for a in args:
            if isinstance(a, Tensor):
                if bk is None:
                    bk = a.backend
                elif a.backend is not bk:
                    from .._core.dispatch import device_error as _device_error
                    raise _device_error(name, [t for t in args if isinstance(t, Tensor)])
                raw.append(a.data)
            elif isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor):
                raw.append(type(a)(t.data for t in a))
                bk = bk or a[0].backend
            else:
                raw.append(a)
        kw = {k: (v.data if isinstance(v, Tensor) else v) for k, v in kw.items()}
        if bk is None:
            bk = _bk_for(None)
            raw = [bk.asarray(a) if not isinstance(a, (int, float, _builtin_bool)) else a for a in raw]
        if kw.get("axis") is not None and name in _AXIS_OPS and raw and hasattr(raw[0], "ndim"):
            _AXIS_OPS[name](kw["axis"], raw[0].ndim, name, raw[0].shape)      # AxisError naming the op
        res = _wrap_out(getattr(bk.xp, name)(*raw, **kw), bk)
        if state.tracer is not None:
            state.tracer(name, args, kw, res)
        return res
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc or (f"Array API ``{name}`` (not differentiable: the result does not require grad).\n\n"
                        f">>> import gradtape as gt\n>>> gt.{name}.__name__\n'{name}'\n")
    return f


def _wrap_out(res, bk):
    if isinstance(res, tuple):
        vals = [_wrap_out(r, bk) for r in res]
        return type(res)(*vals) if hasattr(res, "_fields") else tuple(vals)
    if isinstance(res, list):
        return [_wrap_out(r, bk) for r in res]
    if hasattr(res, "shape") and hasattr(res, "dtype"):
        return wrap(res, bk)
    return res


# the axis each takes: one axis, or a tuple of distinct ones (validated as the differentiable ops do)
_AXIS_OPS = {"argmax": axis_index, "argmin": axis_index, "argsort": axis_index, "count_nonzero": axis_tuple,
             "all": axis_tuple, "any": axis_tuple}
NONDIFF = """equal not_equal less less_equal greater greater_equal logical_and logical_or logical_xor
logical_not bitwise_and bitwise_or bitwise_xor bitwise_invert bitwise_left_shift bitwise_right_shift isnan
isinf isfinite signbit sign floor ceil round trunc floor_divide nextafter argmax argmin argsort nonzero
count_nonzero searchsorted unique_all unique_counts unique_inverse unique_values all any isin""".split()
for _n in NONDIFF:
    globals()[_n] = _nondiff(_n)


def result_type(*arrays_and_dtypes):
    """Array API ``result_type`` (gradtape dtypes).

    >>> import gradtape as gt
    >>> gt.result_type(gt.float32, gt.float64)
    float64
    """
    bk = _backends.get("cpu")
    args = [a.data if isinstance(a, Tensor) else (_bdt(bk, a) if isinstance(a, (DType, str)) else a)
            for a in arrays_and_dtypes]
    if _any(isinstance(a, Tensor) for a in arrays_and_dtypes):
        bk = next(a for a in arrays_and_dtypes if isinstance(a, Tensor)).backend
        args = [a.data if isinstance(a, Tensor) else (_bdt(bk, a) if isinstance(a, (DType, str)) else a)
                for a in arrays_and_dtypes]
    return _gdt(bk.xp.result_type(*args))


def can_cast(from_, to, /):
    """Array API ``can_cast``.

    >>> import gradtape as gt
    >>> gt.can_cast(gt.float32, gt.float64)
    True
    """
    bk = from_.backend if isinstance(from_, Tensor) else _backends.get("cpu")
    f = from_.data if isinstance(from_, Tensor) else _bdt(bk, from_)
    return _builtin_bool(bk.xp.can_cast(f, _bdt(bk, to)))


def finfo(type, /):
    """Array API ``finfo``.

    >>> import gradtape as gt
    >>> gt.finfo(gt.float32).bits
    32
    """
    bk = type.backend if isinstance(type, Tensor) else _backends.get("cpu")
    f = bk.xp.finfo(type.data.dtype if isinstance(type, Tensor) else _bdt(bk, type))
    # the standard's finfo object has Python int/float fields (NumPy's are NumPy scalars, which strict rejects)
    return _FInfo(int(f.bits), float(f.eps), float(f.max), float(f.min), float(f.smallest_normal), _gdt(f.dtype))


class _FInfo:
    """Array API finfo object: ``bits``, ``eps``, ``max``, ``min``, ``smallest_normal`` (Python numbers), ``dtype``."""

    __slots__ = ("bits", "eps", "max", "min", "smallest_normal", "dtype")

    def __init__(self, bits, eps, max, min, smallest_normal, dtype):  # noqa: A002
        self.bits, self.eps, self.max, self.min, self.smallest_normal, self.dtype = \
            bits, eps, max, min, smallest_normal, dtype

    def __repr__(self):
        return (f"finfo(bits={self.bits}, eps={self.eps}, max={self.max}, min={self.min}, "
                f"smallest_normal={self.smallest_normal}, dtype={self.dtype})")


def iinfo(type, /):
    """Array API ``iinfo``.

    >>> import gradtape as gt
    >>> gt.iinfo(gt.int8).max
    127
    """
    bk = type.backend if isinstance(type, Tensor) else _backends.get("cpu")
    return bk.xp.iinfo(type.data.dtype if isinstance(type, Tensor) else _bdt(bk, type))


def broadcast_shapes(*shapes):
    """The broadcast of several shapes (ValueError naming them when they do not broadcast).

    >>> import gradtape as gt
    >>> gt.broadcast_shapes((3, 1), (4,))
    (3, 4)
    """
    nd = builtins_max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        n = 1
        for s in shapes:
            k = s[i - nd + len(s)] if i - nd + len(s) >= 0 else 1
            if k != 1:
                if n != 1 and n != k:
                    raise ValueError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast")
                n = k
        out.append(n)
    return tuple(out)


class _Info:
    """``__array_namespace_info__()`` result."""

    def capabilities(self):
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self):
        return get_default_device()

    def devices(self):
        devs = ["cpu", "strict"]
        if "cuda" in _backends.available():
            devs.append("cuda:0")
        return devs

    def default_dtypes(self, *, device=None):
        return {"real floating": float64, "complex floating": complex128, "integral": int64, "indexing": int64}

    def dtypes(self, *, device=None, kind=None):
        return {n: d for n, d in DTYPES.items() if kind is None or isdtype(d, kind)}


def __array_namespace_info__():
    """Array API inspection object.

    >>> import gradtape as gt
    >>> "cpu" in gt.__array_namespace_info__().devices()
    True
    """
    return _Info()


import builtins as _builtins  # noqa: E402
builtins_max = _builtins.max
builtins_min = _builtins.min
P_abs = P.abs
e = math.e
pi = math.pi
inf = math.inf
nan = math.nan
newaxis = None


def real(x, /):
    """Real part (the identity on real tensors).

    >>> import gradtape as gt
    >>> gt.real(gt.asarray([1.5]))
    Tensor([1.5])
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        raise TypeError("gradtape.real: complex tensors are not differentiable in this version")
    return apply1(P.positive, x)


def imag(x, /):
    """Imaginary part (zeros on real tensors).

    >>> import gradtape as gt
    >>> gt.imag(gt.asarray([1.5]))
    Tensor([0.])
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        raise TypeError("gradtape.imag: complex tensors are not differentiable in this version")
    return zeros_like(x)


def conj(x, /):
    """Complex conjugate (the identity on real tensors).

    >>> import gradtape as gt
    >>> gt.conj(gt.asarray([1.5]))
    Tensor([1.5])
    """
    return real(x)


def synchronize(device=None):
    """Wait for queued work on ``device``, or on every device in use when None (a no-op on the CPU).

    >>> import gradtape as gt
    >>> gt.synchronize()
    """
    if device is not None:
        _backends.get(device).synchronize()
        return
    for bk in list(_backends._BY_DEVICE.values()):
        bk.synchronize()


def memory_stats(device=None):
    """Memory figures of ``device``'s allocator (CuPy pool on GPUs; empty on the CPU).

    >>> import gradtape as gt
    >>> isinstance(gt.memory_stats(), dict)
    True
    """
    return _backends.get(device or get_default_device()).memory_stats()


def to_numpy(x):
    """A NumPy array with the tensor's values (a copy from the GPU, no graph).

    >>> import gradtape as gt
    >>> gt.to_numpy(gt.ones(2)).tolist()
    [1.0, 1.0]
    """
    if not isinstance(x, Tensor):
        x = asarray(x)
    return x.backend.to_numpy(x.data)
