"""The non-differentiable functions of the array API (comparisons, logical and bitwise functions, rounding,
searching, sets, ``all``/``any``): declared in :data:`TABLE` (name, signature of the standard, example)
and bound here to one body that unwraps the tensors, calls the backend's function and wraps the result,
which never requires grad. A traced function records them as calls (``state.tracer``); a loaded graph may
call exactly these (:data:`NONDIFF`).

>>> import gradtape as gt
>>> gt.equal(gt.asarray([1, 2]), gt.asarray([1, 3])), gt.equal.__name__
(Tensor([ True, False]), 'equal')
"""
from __future__ import annotations

import inspect

from .._axes import axis_index, axis_tuple
from .._core.dispatch import device_error, wrap
from .._core.tensor import Tensor
from .._state import state
from .device import backend_for
from .public import public, table_module

_POSITIONAL, _KEYWORD = inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.KEYWORD_ONLY


def _signature(*arrays, **keywords):
    """``f(array, ..., /, *, keyword=default, ...)``"""
    return inspect.Signature([inspect.Parameter(a, _POSITIONAL) for a in arrays] +
                             [inspect.Parameter(k, _KEYWORD, default=v) for k, v in keywords.items()])


# name -> (signature in the 2024.12 standard, example, what the example gives)
TABLE = {
    "equal": (_signature("x1", "x2"),
            "gt.equal(gt.asarray([1, 2]), gt.asarray([1, 3]))", "Tensor([ True, False])"),
    "not_equal": (_signature("x1", "x2"),
            "gt.not_equal(gt.asarray([1, 2]), gt.asarray([1, 3]))", "Tensor([False,  True])"),
    "less": (_signature("x1", "x2"),
            "gt.less(gt.asarray([1, 2]), gt.asarray([2, 2]))", "Tensor([ True, False])"),
    "less_equal": (_signature("x1", "x2"),
            "gt.less_equal(gt.asarray([1, 3]), gt.asarray([2, 2]))", "Tensor([ True, False])"),
    "greater": (_signature("x1", "x2"),
            "gt.greater(gt.asarray([1, 3]), gt.asarray([2, 2]))", "Tensor([False,  True])"),
    "greater_equal": (_signature("x1", "x2"),
            "gt.greater_equal(gt.asarray([1, 2]), gt.asarray([2, 2]))", "Tensor([False,  True])"),
    "logical_and": (_signature("x1", "x2"),
            "gt.logical_and(gt.asarray([True, False]), gt.asarray([True, True]))", "Tensor([ True, False])"),
    "logical_or": (_signature("x1", "x2"),
            "gt.logical_or(gt.asarray([True, False]), gt.asarray([False, False]))", "Tensor([ True, False])"),
    "logical_xor": (_signature("x1", "x2"),
            "gt.logical_xor(gt.asarray([True, False]), gt.asarray([True, True]))", "Tensor([False,  True])"),
    "logical_not": (_signature("x"),
            "gt.logical_not(gt.asarray([True, False]))", "Tensor([False,  True])"),
    "bitwise_and": (_signature("x1", "x2"),
            "gt.bitwise_and(gt.asarray([12]), gt.asarray([10]))", "Tensor([8])"),
    "bitwise_or": (_signature("x1", "x2"),
            "gt.bitwise_or(gt.asarray([12]), gt.asarray([10]))", "Tensor([14])"),
    "bitwise_xor": (_signature("x1", "x2"),
            "gt.bitwise_xor(gt.asarray([12]), gt.asarray([10]))", "Tensor([6])"),
    "bitwise_invert": (_signature("x"),
            "gt.bitwise_invert(gt.asarray([0]))", "Tensor([-1])"),
    "bitwise_left_shift": (_signature("x1", "x2"),
            "gt.bitwise_left_shift(gt.asarray([1]), gt.asarray([3]))", "Tensor([8])"),
    "bitwise_right_shift": (_signature("x1", "x2"),
            "gt.bitwise_right_shift(gt.asarray([8]), gt.asarray([2]))", "Tensor([2])"),
    "isnan": (_signature("x"),
            "gt.isnan(gt.asarray([1.0, gt.nan]))", "Tensor([False,  True])"),
    "isinf": (_signature("x"),
            "gt.isinf(gt.asarray([1.0, gt.inf]))", "Tensor([False,  True])"),
    "isfinite": (_signature("x"),
            "gt.isfinite(gt.asarray([1.0, gt.inf]))", "Tensor([ True, False])"),
    "signbit": (_signature("x"),
            "gt.signbit(gt.asarray([-1.0, 2.0]))", "Tensor([ True, False])"),
    "sign": (_signature("x"),
            "gt.sign(gt.asarray([-2.0, 0.0, 3.0]))", "Tensor([-1.,  0.,  1.])"),
    "floor": (_signature("x"),
            "gt.floor(gt.asarray([1.5, -1.5]))", "Tensor([ 1., -2.])"),
    "ceil": (_signature("x"),
            "gt.ceil(gt.asarray([1.5, -1.5]))", "Tensor([ 2., -1.])"),
    "round": (_signature("x"),
            "gt.round(gt.asarray([1.25, 2.75]))", "Tensor([1., 3.])"),
    "trunc": (_signature("x"),
            "gt.trunc(gt.asarray([1.5, -1.5]))", "Tensor([ 1., -1.])"),
    "floor_divide": (_signature("x1", "x2"),
            "gt.floor_divide(gt.asarray([7, -7]), gt.asarray([2, 2]))", "Tensor([ 3, -4])"),
    "nextafter": (_signature("x1", "x2"),
            "gt.nextafter(gt.asarray([1.0]), gt.asarray([2.0])) > 1.0", "Tensor([ True])"),
    "argmax": (_signature("x", axis=None, keepdims=False),
            "gt.argmax(gt.asarray([1.0, 3.0, 2.0]))", "Tensor(1)"),
    "argmin": (_signature("x", axis=None, keepdims=False),
            "gt.argmin(gt.asarray([1.0, 3.0, 2.0]))", "Tensor(0)"),
    "argsort": (_signature("x", axis=-1, descending=False, stable=True),
            "gt.argsort(gt.asarray([3.0, 1.0, 2.0]))", "Tensor([1, 2, 0])"),
    "nonzero": (_signature("x"),
            "gt.nonzero(gt.asarray([0.0, 2.0, 3.0]))", "(Tensor([1, 2]),)"),
    "count_nonzero": (_signature("x", axis=None, keepdims=False),
            "gt.count_nonzero(gt.asarray([0.0, 2.0, 3.0]))", "Tensor(2)"),
    "searchsorted": (_signature("x1", "x2", side="left", sorter=None),
            "gt.searchsorted(gt.asarray([1.0, 2.0, 3.0]), gt.asarray([2.5]))", "Tensor([2])"),
    "unique_all": (_signature("x"),
            "gt.unique_all(gt.asarray([2.0, 1.0, 2.0])).counts", "Tensor([1, 2])"),
    "unique_counts": (_signature("x"),
            "gt.unique_counts(gt.asarray([2.0, 1.0, 2.0])).counts", "Tensor([1, 2])"),
    "unique_inverse": (_signature("x"),
            "gt.unique_inverse(gt.asarray([2.0, 1.0, 2.0])).inverse_indices", "Tensor([1, 0, 1])"),
    "unique_values": (_signature("x"),
            "gt.unique_values(gt.asarray([2.0, 1.0, 2.0]))", "Tensor([1., 2.])"),
    "all": (_signature("x", axis=None, keepdims=False),
            "gt.all(gt.asarray([True, False]))", "Tensor(False)"),
    "any": (_signature("x", axis=None, keepdims=False),
            "gt.any(gt.asarray([True, False]))", "Tensor(True)"),
    "isin": (_signature("x1", "x2", invert=False),
            "gt.isin(gt.asarray([1, 2, 3]), gt.asarray([2, 5]))", "Tensor([False,  True, False])"),
}
NONDIFF = list(TABLE)
# the axis each takes: one axis, or a tuple of distinct ones (validated as the differentiable ops do)
_AXIS_CHECK = {"argmax": axis_index, "argmin": axis_index, "argsort": axis_index, "count_nonzero": axis_tuple,
               "all": axis_tuple, "any": axis_tuple}


def _wrapped(res, backend):
    if isinstance(res, tuple):
        values = [_wrapped(r, backend) for r in res]
        return type(res)(*values) if hasattr(res, "_fields") else tuple(values)
    if isinstance(res, list):
        return [_wrapped(r, backend) for r in res]
    if hasattr(res, "shape") and hasattr(res, "dtype"):
        return wrap(res, backend)
    return res


def bind(name, signature, example, result):
    """The public function ``gt.<name>``: the backend's function on the raw arrays of its arguments, the result
    wrapped (untracked); the standard's signature and a docstring with its example."""
    check = _AXIS_CHECK.get(name)

    def f(*args, **kw):
        backend = None
        raw = []
        for a in args:
            if isinstance(a, Tensor):
                if type(a) is not Tensor and hasattr(a, "__gradtape_call__"):     # a gt.vmap tracer
                    return a.__gradtape_call__(f, name, args, kw)
                if backend is None:
                    backend = a.backend
                elif a.backend is not backend:
                    raise device_error(name, [t for t in args if isinstance(t, Tensor)])
                raw.append(a.data)
            elif isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor):
                raw.append(type(a)(t.data for t in a))
                backend = backend or a[0].backend
            else:
                raw.append(a)
        if kw:
            for v in kw.values():
                if type(v) is not Tensor and hasattr(v, "__gradtape_call__"):
                    return v.__gradtape_call__(f, name, args, kw)
            kw = {k: (v.data if isinstance(v, Tensor) else v) for k, v in kw.items()}
        if backend is None:
            backend = backend_for(None)
            raw = [backend.asarray(a) if not isinstance(a, (int, float, bool)) else a for a in raw]
        if check is not None and kw.get("axis") is not None and raw and hasattr(raw[0], "ndim"):
            check(kw["axis"], raw[0].ndim, name, raw[0].shape)      # AxisError naming the op
        out = _wrapped(getattr(backend.xp, name)(*raw, **kw), backend)
        if state.tracer is not None:
            state.tracer(name, args, kw, out)
        return out
    f.__name__ = f.__qualname__ = name
    f.__module__ = "gradtape"
    f.__signature__ = signature
    f.__doc__ = (f"Array API ``{name}`` (not differentiable: the result does not require grad).\n\n"
                 f">>> import gradtape as gt\n>>> {example}\n{result}\n")
    return public(f)


FUNCTIONS = {name: bind(name, *row) for name, row in TABLE.items()}
__all__ = sorted(FUNCTIONS) + ["NONDIFF"]
__test__ = dict(FUNCTIONS)      # doctest runs their examples (they are not module globals)

__getattr__, __dir__ = table_module(__name__, FUNCTIONS, globals())
