"""NumPy's dispatch protocols for gradtape tensors: ``np.sin(x)``, ``np.sum(x)``, ``np.dot(W, x)`` run gradtape's
functions, so NumPy code keeps the graph (as CuPy and MyGrad do).

``Tensor.__array_ufunc__`` (NEP 13) and ``Tensor.__array_function__`` (NEP 18) call :func:`ufunc` and
:func:`function` (through ``hooks.API``). The tables below map NumPy's names to gradtape's (keyed by name: the
package never imports NumPy). The rule:

- a mapped ufunc (``method == "__call__"``, no ``out=``) or function runs gradtape's; NumPy's keyword arguments
  (axis, keepdims, dtype...) are mapped, any other is a TypeError naming it and the gradtape spelling;
- anything else (an unmapped function, ``np.add.reduce``, ``out=``) on a tensor that requires grad is a
  TypeError naming the NumPy function and the gradtape spelling if there is one; on tensors that do not
  require grad NumPy computes it on their values, as before (``np.allclose(x, y)``, ``np.histogram(x)``).

>>> import numpy as np, gradtape as gt
>>> w = gt.asarray([1.0, 2.0]).requires_grad_()
>>> np.sum(np.sin(w) * w).backward(); w.grad.tolist() == (gt.sin(w) + w * gt.cos(w)).detach().tolist()
True
"""
from __future__ import annotations

from .._core import hooks
from .._core.tensor import Tensor
from . import linalg as _linalg

_NO = object()      # "not given" for NumPy parameters gradtape does not take

# NumPy ufunc name -> gradtape function name (hooks.API); names gradtape lacks are left out at call time
UFUNCS = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide", "true_divide": "divide",
    "floor_divide": "floor_divide", "remainder": "remainder", "mod": "remainder", "power": "pow",
    "negative": "negative", "positive": "positive", "absolute": "abs", "fabs": "abs", "reciprocal": "reciprocal",
    "sqrt": "sqrt", "square": "square", "exp": "exp", "expm1": "expm1", "log": "log", "log2": "log2",
    "log10": "log10", "log1p": "log1p", "logaddexp": "logaddexp", "sin": "sin", "cos": "cos", "tan": "tan",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arctan2": "atan2", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "hypot": "hypot",
    "maximum": "maximum", "minimum": "minimum", "copysign": "copysign", "nextafter": "nextafter",
    "matmul": "matmul", "conjugate": "conj", "conj": "conj", "sign": "sign", "signbit": "signbit",
    "floor": "floor", "ceil": "ceil", "trunc": "trunc", "rint": "round", "equal": "equal",
    "not_equal": "not_equal", "less": "less", "less_equal": "less_equal", "greater": "greater",
    "greater_equal": "greater_equal", "logical_and": "logical_and", "logical_or": "logical_or",
    "logical_xor": "logical_xor", "logical_not": "logical_not", "isnan": "isnan", "isinf": "isinf",
    "isfinite": "isfinite", "bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or",
    "bitwise_xor": "bitwise_xor", "invert": "bitwise_invert", "bitwise_invert": "bitwise_invert",
    "left_shift": "bitwise_left_shift", "right_shift": "bitwise_right_shift",
}


def _tracked(values):
    """Whether a tensor that requires grad is among ``values`` (one level of lists/tuples, as NumPy's args)."""
    for v in values:
        if isinstance(v, Tensor):
            if v._requires_grad:
                return True
        elif isinstance(v, (list, tuple)) and _tracked(v):
            return True
    return False


def _values(v):
    """``v`` with every Tensor replaced by its NumPy array (one level of lists/tuples)."""
    if isinstance(v, Tensor):
        return v.__array__()
    if isinstance(v, (list, tuple)):
        return type(v)(_values(u) for u in v)
    return v


# ufunc methods with a gradtape spelling
METHODS = {"add.reduce": "gt.sum(x, axis=...)", "multiply.reduce": "gt.prod(x, axis=...)",
           "maximum.reduce": "gt.max(x, axis=...)", "minimum.reduce": "gt.min(x, axis=...)",
           "add.accumulate": "gt.cumulative_sum(x, axis=...)", "multiply.accumulate": "gt.cumulative_prod(x, axis=...)",
           "multiply.outer": "gt.linalg.outer(a, b)"}


def _refuse(what, spelling, why=""):
    hint = f"use {spelling} to keep the graph" if spelling else "gradtape has no such function"
    raise TypeError(f"gradtape: {what} on a tensor that requires grad is not supported{why}; {hint}, or call it on "
                    f"gt.to_numpy(x.detach()) to drop the graph")


def ufunc(uf, method, inputs, kwargs):
    """``Tensor.__array_ufunc__``: a mapped ufunc called plainly runs gradtape's function."""
    name = UFUNCS.get(uf.__name__)
    fn = getattr(hooks.API, name, None) if name else None
    if fn is not None and method == "__call__" and not kwargs:
        return fn(*inputs)
    out = kwargs.get("out", ())
    if _tracked(inputs) or _tracked(out if isinstance(out, tuple) else (out,)):
        what = f"{uf.__name__}" + ("" if method == "__call__" else f".{method}")
        spelling = METHODS.get(what) or (f"gt.{name}(...)" if fn is not None and method == "__call__" else None)
        what = "numpy." + what
        why = f" (with {', '.join(sorted(kwargs))}=)" if method == "__call__" and fn is not None else ""
        _refuse(what, spelling, why)
    if any(isinstance(o, Tensor) for o in (out if isinstance(out, tuple) else (out,))):
        raise TypeError(f"gradtape: numpy.{uf.__name__}(..., out=tensor): NumPy cannot write into a gradtape tensor; "
                        f"use y = gt.{name or uf.__name__}(...) instead")
    kw = {k: _values(v) for k, v in kwargs.items()}
    return getattr(uf, method)(*_values(inputs), **kw)


def function(func, types, args, kwargs):
    """``Tensor.__array_function__``: a mapped NumPy function runs gradtape's."""
    key = func.__name__ if func.__module__ in ("numpy", "numpy.core.fromnumeric") else \
        f"{func.__module__.rpartition('.')[2]}.{func.__name__}"
    impl = FUNCTIONS.get(key)
    if impl is not None:
        return impl(*args, **kwargs)
    if _tracked(args) or _tracked(kwargs.values()):
        _refuse(f"numpy.{key}", SPELLINGS.get(key) or (f"gt.{key}(...)" if hasattr(hooks.API, key) else None))
    return getattr(func, "_implementation", func)(*_values(args), **{k: _values(v) for k, v in kwargs.items()})


# ---- the mapped functions: NumPy's signatures, gradtape's functions ----------------------------------

def _check(name, spelling, **given):
    """TypeError for NumPy arguments gradtape does not take (given and not their default)."""
    bad = [k for k, v in given.items() if v is not _NO and v is not None]
    if bad:
        raise TypeError(f"gradtape: numpy.{name}(..., {'=, '.join(bad)}=) on a gradtape tensor is not supported; "
                        f"use {spelling}")


def _t(x):
    return x if isinstance(x, Tensor) else hooks.API.asarray(x)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _reduction(name, dtype_ok):
    def f(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NO, where=_NO):
        _check(name, f"gt.{name}(x, axis=..., keepdims=...)", out=out, initial=initial, where=where)
        x = _t(a)
        if dtype is not None and not dtype_ok:
            x = hooks.API.astype(x, dtype)
        kw = {"dtype": dtype} if dtype is not None and dtype_ok else {}
        return getattr(hooks.API, name)(x, axis=_axis(axis), keepdims=bool(keepdims), **kw)
    return f


def _extremum(name):
    def f(a, axis=None, out=None, keepdims=False, initial=_NO, where=_NO):
        _check(name, f"gt.{name}(x, axis=..., keepdims=...)", out=out, initial=initial, where=where)
        return getattr(hooks.API, name)(_t(a), axis=_axis(axis), keepdims=bool(keepdims))
    return f


def _spread(name):
    def f(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NO, mean=_NO, correction=_NO):
        _check(name, f"gt.{name}(x, axis=..., correction=..., keepdims=...)", out=out, where=where, mean=mean)
        x = _t(a) if dtype is None else hooks.API.astype(_t(a), dtype)
        c = ddof if correction is _NO else correction
        return getattr(hooks.API, name)(x, axis=_axis(axis), correction=c, keepdims=bool(keepdims))
    return f


def _arg(name):
    def f(a, axis=None, out=None, *, keepdims=False):
        _check(name, f"gt.{name}(x, axis=...)", out=out)
        return getattr(hooks.API, name)(_t(a), axis=axis, keepdims=bool(keepdims))
    return f


def _dot(a, b, out=None):
    _check("dot", "gt.matmul(a, b) or a @ b", out=out)
    a, b = _t(a), _t(b)
    if a.ndim == 0 or b.ndim == 0:
        return hooks.API.multiply(a, b)
    if b.ndim <= 2 and a.ndim <= 2 or b.ndim == 1:
        return hooks.API.matmul(a, b)
    return hooks.API.tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))


def _inner(a, b):
    a, b = _t(a), _t(b)
    if a.ndim == 0 or b.ndim == 0:
        return hooks.API.multiply(a, b)
    return hooks.API.tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


def _outer(a, b, out=None):
    _check("outer", "gt.linalg.outer(a, b)", out=out)
    return hooks.API.multiply(hooks.API.reshape(_t(a), (-1, 1)), hooks.API.reshape(_t(b), (1, -1)))


def _tensordot(a, b, axes=2):
    return hooks.API.tensordot(_t(a), _t(b), axes=axes)


def _joined(name):
    def f(arrays, axis=0, out=None, *, dtype=None, casting=_NO):
        _check(name, f"gt.{'concat' if name == 'concatenate' else name}(arrays, axis=...)", out=out, casting=casting)
        xs = [_t(x) for x in arrays]
        if dtype is not None:
            xs = [hooks.API.astype(x, dtype) for x in xs]
        if name == "concatenate":
            if axis is None:
                return hooks.API.concat([hooks.API.reshape(x, (-1,)) for x in xs], axis=0)
            return hooks.API.concat(xs, axis=axis)
        return hooks.API.stack(xs, axis=axis)
    return f


def _where(condition, x=_NO, y=_NO):
    if x is _NO or y is _NO:
        if x is not _NO or y is not _NO:
            raise TypeError("numpy.where: either both or neither of x and y should be given")
        return hooks.API.nonzero(_t(condition))
    return hooks.API.where(_t(condition), x, y)


def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    _check("reshape", "gt.reshape(x, shape) (C order)", order=None if order == "C" else order)
    shape = newshape if shape is None else shape
    return hooks.API.reshape(_t(a), (shape,) if isinstance(shape, int) else tuple(shape), copy=copy)


def _transpose(a, axes=None):
    x = _t(a)
    return hooks.API.permute_dims(x, tuple(range(x.ndim))[::-1] if axes is None else tuple(axes))


def _swapaxes(a, axis1, axis2):
    x = _t(a)
    perm = list(range(x.ndim))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return hooks.API.permute_dims(x, tuple(perm))


def _squeeze(a, axis=None):
    x = _t(a)
    if axis is None:
        axis = tuple(i for i, n in enumerate(x.shape) if n == 1)
    return hooks.API.squeeze(x, axis=axis)


def _ravel(a, order="C"):
    _check("ravel", "gt.reshape(x, (-1,)) (C order)", order=None if order == "C" else order)
    return hooks.API.reshape(_t(a), (-1,))


def _norm(x, ord=None, axis=None, keepdims=False):
    x = _t(x)
    if ord is None or isinstance(axis, int) or axis is None and x.ndim == 1:
        return hooks.API.vector_norm(x, axis=_axis(axis), ord=2 if ord is None else ord, keepdims=bool(keepdims))
    if axis is not None and (keepdims or tuple(axis) not in ((-2, -1), (x.ndim - 2, x.ndim - 1))):
        _refuse(f"numpy.linalg.norm(x, ord={ord!r}, axis={axis!r})", "gt.linalg.matrix_norm(x, ord=...) on "
                "gt.moveaxis(x, axis, (-2, -1))")
    return _linalg.matrix_norm(x, ord=ord, keepdims=bool(keepdims))


def _clip(a, a_min=_NO, a_max=_NO, out=None, *, min=_NO, max=_NO, **kw):
    _check("clip", "gt.clip(x, min, max)", out=out, **{k: v for k, v in kw.items()})
    lo = min if a_min is _NO else a_min
    hi = max if a_max is _NO else a_max
    return hooks.API.clip(_t(a), None if lo is _NO else lo, None if hi is _NO else hi)


def _cumulative(name, gt_name):
    def f(a, axis=None, dtype=None, out=None):
        _check(name, f"gt.{gt_name}(x, axis=...)", out=out)
        x = _t(a)
        if axis is None:
            x, axis = hooks.API.reshape(x, (-1,)), 0
        return getattr(hooks.API, gt_name)(x, axis=axis, dtype=dtype)
    return f


def _like(name):
    def f(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
        x = _t(a)
        return getattr(hooks.API, name)(x if shape is None else hooks.API.broadcast_to(x, tuple(shape)),
                                        dtype=dtype)
    return f


def _linalg_fn(name):
    def f(*args, **kwargs):
        if kwargs:
            _check(f"linalg.{name}", f"gt.linalg.{name}(...)", **kwargs)
        return getattr(_linalg, name)(*[_t(a) for a in args])
    return f


FUNCTIONS = {
    "sum": _reduction("sum", True), "prod": _reduction("prod", True), "mean": _reduction("mean", False),
    "max": _extremum("max"), "amax": _extremum("max"), "min": _extremum("min"), "amin": _extremum("min"),
    "std": _spread("std"), "var": _spread("var"), "argmax": _arg("argmax"), "argmin": _arg("argmin"),
    "dot": _dot, "inner": _inner, "outer": _outer, "tensordot": _tensordot,
    "concatenate": _joined("concatenate"), "stack": _joined("stack"), "where": _where,
    "reshape": _reshape, "transpose": _transpose, "swapaxes": _swapaxes, "squeeze": _squeeze, "ravel": _ravel,
    "expand_dims": lambda a, axis: hooks.API.expand_dims(_t(a), axis=axis),
    "moveaxis": lambda a, source, destination: hooks.API.moveaxis(_t(a), source, destination),
    "broadcast_to": lambda array, shape, subok=False: hooks.API.broadcast_to(_t(array), tuple(shape)),
    "flip": lambda m, axis=None: hooks.API.flip(_t(m), axis=axis),
    "roll": lambda a, shift, axis=None: hooks.API.roll(_t(a), shift, axis=axis),
    "tile": lambda A, reps: hooks.API.tile(_t(A), (reps,) if isinstance(reps, int) else tuple(reps)),
    "clip": _clip, "cumsum": _cumulative("cumsum", "cumulative_sum"),
    "cumprod": _cumulative("cumprod", "cumulative_prod"),
    "copy": lambda a, order="K", subok=False: hooks.API.astype(_t(a), _t(a).dtype, copy=True),
    "zeros_like": _like("zeros_like"), "ones_like": _like("ones_like"),
    "shape": lambda a: _t(a).shape, "ndim": lambda a: _t(a).ndim, "size": lambda a, axis=None:
        _t(a).size if axis is None else _t(a).shape[axis],
    "linalg.norm": _norm,
    **{f"linalg.{n}": _linalg_fn(n) for n in ("inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh",
                                                "svd", "pinv", "matrix_power", "qr")},
}

# the gradtape spelling of NumPy functions that are not mapped
SPELLINGS = {
    "einsum": "gt.tensordot / gt.matmul / gt.vecdot", "trace": "gt.linalg.trace(x)",
    "diagonal": "gt.linalg.diagonal(x)", "split": "slicing x[a:b] or gt.unstack(x)", "sort": "gt.sort(x)",
    "argsort": "gt.argsort(x)", "take": "gt.take(x, indices, axis=...)", "repeat": "gt.repeat(x, n, axis=...)",
    "diff": "gt.diff(x, axis=...)", "cross": "gt.linalg.cross(a, b)", "round": "gt.round(x)",
    "around": "gt.round(x)", "abs": "gt.abs(x)", "triu": "gt.triu(x)", "tril": "gt.tril(x)",
    "meshgrid": "gt.meshgrid(...)", "full_like": "gt.full_like(x, value)", "vdot": "gt.vecdot(a, b)",
    "take_along_axis": "gt.take_along_axis(x, indices, axis)", "unstack": "gt.unstack(x)",
    "linalg.matrix_norm": "gt.linalg.matrix_norm(x)", "linalg.vector_norm": "gt.vector_norm(x)",
    "linalg.svdvals": "gt.linalg.svdvals(x)", "linalg.matrix_rank": "gt.linalg.matrix_rank(x)",
    "allclose": None, "isclose": None,
}
