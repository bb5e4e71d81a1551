"""Making tensors: ``asarray`` (and ``astype``, which is what ``asarray`` does to a tensor of another dtype),
``from_dlpack``, ``to_numpy``, and the creation functions (``zeros``, ``ones``, ``full``, ``eye``, ``arange``,
``linspace``, ``empty`` and their ``*_like`` forms).

>>> import gradtape as gt
>>> gt.asarray([[1.0], [2.0]]).shape, gt.zeros((2,)).dtype
((2, 1), float64)
"""
from __future__ import annotations

from .. import backends
from .._core.dispatch import apply, apply1, wrap
from .._core.dtypes import DTYPES, backend_dtype, dtype_name, is_float, unsupported
from .._core.tensor import Tensor
from .._ops.device import transfer
from .._ops.shape import _concat_prim, astype_p, reshape_p
from .._state import state
from .device import backend_for, to_device
from .public import public, signed

__all__ = ["asarray", "astype", "from_dlpack", "to_numpy", "zeros", "ones", "empty", "full", "eye", "arange",
           "linspace", "zeros_like", "ones_like", "empty_like", "full_like"]


def checked(data, backend, obj, op="asarray"):
    """A fresh tensor around data, refusing a dtype gradtape has no name for (strings, objects, float16...)."""
    name = dtype_name(data.dtype)
    if name not in DTYPES:
        what = f"a {type(obj).__module__}.{type(obj).__name__}" if hasattr(obj, "dtype") else \
            f"a Python {type(obj).__name__}" if op in ("asarray", "from_dlpack") else f"the arguments {obj!r:.60}"
        raise unsupported(op, name, what)
    return wrap(data, backend)


@public
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
            x = astype(x, dtype)
        elif copy:
            x = astype(x, x.dtype, copy=True)
        return x
    if isinstance(obj, (list, tuple)) and obj and any(isinstance(o, Tensor) for o in _flat(obj)):
        return _stacked([asarray(o, dtype=dtype, device=device) for o in obj])
    backend = backends.backend_of(obj)
    if backend is not None:
        if device is not None and backends.canonical_device(device) != backend.device:
            dst = backends.get(device)
            data = transfer(obj, backend, dst)
            backend = dst
            copy = None
        else:
            data = obj
        return checked(backend.asarray(data, dtype=backend_dtype(backend, dtype, "asarray"), copy=copy), backend, obj)
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__") and not isinstance(obj, (list, tuple)):
        return from_dlpack(obj, device=device, copy=copy) if dtype is None else \
            asarray(from_dlpack(obj, device=device, copy=copy), dtype=dtype)
    backend = backend_for(device)
    if obj is None or isinstance(obj, (str, bytes, bytearray, dict, set, frozenset)) or \
            (hasattr(obj, "__next__") and not hasattr(obj, "__array__")):
        raise TypeError(f"gradtape.asarray: cannot make a tensor from a Python {type(obj).__name__} ({obj!r:.60}). "
                        f"Unsupported: str, bytes, dict, set, None and iterators; pass numbers, nested lists/tuples "
                        f"of numbers, or an array")
    raw = backend_dtype(backend, dtype, "asarray")
    try:
        data = backend.asarray(obj, dtype=raw, copy=copy)
    except TypeError as e:
        raise TypeError(f"gradtape.asarray: cannot make a tensor from a Python {type(obj).__name__} ({e})") from None
    return checked(data, backend, obj)


def as_tensor(x):
    """x itself when it is a tensor, else ``asarray(x)`` (the coercion every function applies to its arrays)."""
    return x if isinstance(x, Tensor) else asarray(x)


def tracked(*xs):
    """Whether a composite must go through primitives (differentiated, or being traced)."""
    return ((state.tracer is not None)       # this thread is being traced
            or any(isinstance(x, Tensor) and (x._requires_grad or x.tangents is not None or type(x) is not Tensor)
                   for x in xs))               # (a gt.vmap tracer: primitives batch, raw arrays would not)


def _flat(obj):
    for o in obj:
        if isinstance(o, (list, tuple)):
            yield from _flat(o)
        else:
            yield o


def _stacked(parts):
    """The tensors ``parts`` stacked along a new first axis (``gt.stack``'s primitives: a reshape of each, a concat)."""
    shape = parts[0].shape
    if any(p.shape != shape for p in parts):
        raise ValueError(f"gradtape.stack: all arrays must have one shape, got {[p.shape for p in parts]}")
    rows = tuple(apply1(reshape_p, p, {"shape": (1,) + shape, "xshape": shape}) for p in parts)
    return apply(_concat_prim(len(rows)), rows, {"axis": -len(shape) - 1, "sizes": (1,) * len(rows)})


@public
def astype(x, dtype, /, *, copy=True, device=None):
    """Array API ``astype``; differentiable between floating dtypes.

    >>> import gradtape as gt
    >>> gt.astype(gt.asarray([1.5]), gt.float32).dtype
    float32
    """
    x = as_tensor(x)
    if device is not None:
        x = to_device(x, device)
    raw = backend_dtype(x.backend, dtype)
    if x.dtype == dtype:
        return apply1(astype_p, x, {"dtype": raw}) if copy else x
    if not is_float(dtype) or not is_float(x.dtype):     # not differentiable
        if type(x) is not Tensor and hasattr(x, "__gradtape_call__"):      # a gt.vmap tracer
            return x.__gradtape_call__(astype, "astype", (x, dtype), {"copy": copy})
        out = wrap(x.backend.xp.astype(x.data, raw), x.backend)
        if state.tracer is not None:
            state.tracer("astype", (x, dtype), {}, out)
        return out
    return apply1(astype_p, x, {"dtype": raw})


def from_dlpack(x, /, *, device=None, copy=None):
    """Array API ``from_dlpack``: zero-copy from any DLPack producer (PyTorch, JAX, CuPy...).

    >>> import gradtape as gt, numpy as np
    >>> gt.from_dlpack(np.ones(2)).device
    'cpu'
    """
    if isinstance(x, Tensor):
        x = x.data
    kind, index = x.__dlpack_device__()
    device_name = {1: "cpu", 2: f"cuda:{index}", 3: "cpu"}.get(int(kind))
    if device_name is None:
        raise TypeError(f"gradtape.from_dlpack: unsupported DLPack device type {kind}")
    backend = backends.get("strict" if type(x).__module__.startswith("array_api_strict") else device_name)
    try:
        data = backend.from_dlpack(x)
    except (RuntimeError, BufferError, TypeError) as e:     # e.g. bfloat16: "Unsupported dtype in DLTensor"
        raise TypeError(f"gradtape.from_dlpack: cannot import a {type(x).__module__}.{type(x).__name__} "
                        f"(dtype {getattr(x, 'dtype', '?')}): {e}") from None
    t = checked(data, backend, x, "from_dlpack")
    if device is not None:
        t = to_device(t, device)
    if copy:
        t = wrap(backend.asarray(t.data, copy=True), t.backend)
    return t


def to_numpy(x):
    """A NumPy array with the tensor's values (a copy from the GPU, no graph).

    >>> import gradtape as gt
    >>> gt.to_numpy(gt.ones(2)).tolist()
    [1.0, 1.0]
    """
    if not isinstance(x, Tensor):
        x = asarray(x)
    if type(x) is not Tensor:
        return x.__array__()        # a gt.vmap tracer refuses (one value per example)
    return x.backend.to_numpy(x.data)


def _creator(name, example):
    def f(*args, dtype=None, device=None, **kw):
        backend = backend_for(device)
        raw = backend_dtype(backend, dtype, name)
        try:
            data = getattr(backend.xp, name)(*args, dtype=raw, **kw)
        except TypeError as e:
            raise TypeError(f"gradtape.{name}: cannot make a tensor from the arguments {args!r:.60} ({e})") from None
        return checked(data, backend, args[-1:], name)
    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = f"Array API ``{name}``.\n\n>>> import gradtape as gt\n>>> {example}"
    return f


def _shape_of(name, size, shape):
    """The shape of ``zeros(3, 4)``, ``zeros((3, 4))``, ``zeros([3, 4])`` or ``zeros(shape=(3, 4))`` (PyTorch's
    varargs and the array API's tuple), checked to be whole numbers."""
    if shape is not None:
        if size:
            raise TypeError(f"gradtape.{name}: got a shape both positionally {size!r:.60} and as shape={shape!r:.60}")
        size = (shape,)
    if not size:
        raise TypeError(f"gradtape.{name}: missing the shape, e.g. gt.{name}((3, 4)) or gt.{name}(3, 4)")
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"gradtape.{name}: the shape must be whole numbers, as gt.{name}((3, 4)) or "
                            f"gt.{name}(3, 4); got {size!r:.60} (a {type(n).__name__} in it)")
    size = tuple(n.__index__() for n in size)
    if any(n < 0 for n in size):
        raise ValueError(f"gradtape.{name}: negative dimension in the shape {size}")
    return size


def _shaped(name, example):
    def f(*size, shape=None, dtype=None, device=None):
        backend = backend_for(device)
        raw = backend_dtype(backend, dtype, name)
        size = _shape_of(name, size, shape)
        return checked(getattr(backend.xp, name)(size, dtype=raw), backend, (size,), name)
    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = (f"Array API ``{name}(shape, *, dtype=None, device=None)``; the shape may also be given as "
                 f"separate integers, as in PyTorch (``gt.{name}(2, 3)``).\n\n>>> import gradtape as gt\n>>> {example}")
    return f


def _like(name, example):
    def f(x, /, *args, dtype=None, device=None, **kw):
        x = as_tensor(x)
        backend = backends.get(device) if device is not None else x.backend
        if type(x) is not Tensor:       # a gt.vmap tracer: a tensor of its per-example shape (one for all examples)
            raw = backend_dtype(backend, x.dtype if dtype is None else dtype, name)
            return checked(getattr(backend.xp, name[:-5])(x.shape, *args, dtype=raw, **kw), backend, args[-1:], name)
        data = x.data if backend is x.backend else transfer(x.data, x.backend, backend)
        return checked(getattr(backend.xp, name)(data, *args, dtype=backend_dtype(backend, dtype, name), **kw),
                       backend, args[-1:], name)
    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = f"Array API ``{name}``.\n\n>>> import gradtape as gt\n>>> {example}"
    return public(f)


zeros = signed(_shaped("zeros", "gt.zeros((2,))\nTensor([0., 0.])\n>>> gt.zeros(2, 3).shape\n(2, 3)\n"),
               lambda shape, *, dtype=None, device=None: None)
ones = signed(_shaped("ones", "gt.ones((2,))\nTensor([1., 1.])\n"), lambda shape, *, dtype=None, device=None: None)
empty = signed(_shaped("empty", "gt.empty((2,)).shape\n(2,)\n"), lambda shape, *, dtype=None, device=None: None)
full = signed(_creator("full", "gt.full((2,), 3.0)\nTensor([3., 3.])\n"),
              lambda shape, fill_value, *, dtype=None, device=None: None)
eye = signed(_creator("eye", "gt.eye(2).shape\n(2, 2)\n"),
             lambda n_rows, n_cols=None, /, *, k=0, dtype=None, device=None: None)
arange = signed(_creator("arange", "gt.arange(3)\nTensor([0, 1, 2])\n"),
                lambda start, /, stop=None, step=1, *, dtype=None, device=None: None)
linspace = signed(_creator("linspace", "gt.linspace(0.0, 1.0, 3)\nTensor([0. , 0.5, 1. ])\n"),
                  lambda start, stop, /, num, *, dtype=None, device=None, endpoint=True: None)
zeros_like = signed(_like("zeros_like", "gt.zeros_like(gt.ones(2))\nTensor([0., 0.])\n"),
                    lambda x, /, *, dtype=None, device=None: None)
ones_like = signed(_like("ones_like", "gt.ones_like(gt.zeros(2))\nTensor([1., 1.])\n"),
                   lambda x, /, *, dtype=None, device=None: None)
empty_like = signed(_like("empty_like", "gt.empty_like(gt.zeros(2)).shape\n(2,)\n"),
                    lambda x, /, *, dtype=None, device=None: None)
full_like = signed(_like("full_like", "gt.full_like(gt.zeros(2), 7.0)\nTensor([7., 7.])\n"),
                   lambda x, /, fill_value, *, dtype=None, device=None: None)
