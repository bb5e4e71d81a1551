"""The elementwise functions of ``gt``, bound from the primitive registry.

Every primitive declared with ``namespace="gt"`` gets a public function of its name here, with the
array-API signature (``sin(x, /)``, ``add(x1, x2, /)``) and a docstring with an example: adding an
elementwise op needs no edit in this file. Written by hand at the end: those with bounds or complex parts
(``clip``, ``real``, ``imag``, ``conj``) and those with parameters read from the modes (``abs`` and gt.nn's
``relu``: their subgradient at 0; ``sigmoid``, ``softplus`` beside them).

>>> import gradtape as gt
>>> gt.sin is gt._api.elementwise.sin, gt.sin.__name__
(True, 'sin')
"""
from __future__ import annotations

import inspect

from .._core.dispatch import apply1, apply2
from .._core.primitive import PRIMS
from .._core.tensor import Tensor
from .._state import state
from .._ops import elementwise as ops       # (importing it declares the primitives)
from .creation import as_tensor, asarray, zeros_like
from .dtypes import isdtype
from .manipulation import broadcast_to, where
from .public import public, table_module

_ONE = inspect.Signature([inspect.Parameter("x", inspect.Parameter.POSITIONAL_ONLY)])
_TWO = inspect.Signature([inspect.Parameter("x1", inspect.Parameter.POSITIONAL_ONLY),
                          inspect.Parameter("x2", inspect.Parameter.POSITIONAL_ONLY)])


def bind(p, where="gt"):
    """The public function applying primitive ``p`` (one or two array inputs, no parameters)."""
    if len(p.inputs) == 1:
        def f(x, /):
            return apply1(p, x)
        example, f.__signature__ = f"{where}.{p.name}(gt.asarray([0.5])).shape", _ONE
    else:
        def f(x1, x2, /):
            return apply2(p, x1, x2)
        example, f.__signature__ = f"{where}.{p.name}(gt.asarray([0.5]), gt.asarray([0.25])).shape", _TWO
    f.__name__ = f.__qualname__ = p.name
    f.__module__ = "gradtape"
    f.__doc__ = f"Elementwise ``{p.name}`` (array API), differentiable.\n\n>>> import gradtape as gt\n>>> {example}\n(1,)\n"
    f.primitive = p
    return f


FUNCTIONS = {}
for _p in PRIMS.values():
    if _p.namespace == "gt":
        _p.function = FUNCTIONS[_p.name] = bind(_p)
__all__ = sorted(FUNCTIONS) + ["abs", "clip", "real", "imag", "conj"]     # (relu, sigmoid, softplus: gt.nn's)

__getattr__, __dir__ = table_module(__name__, FUNCTIONS, globals())


# ---- written by hand ---------------------------------------------------------------------------------------

@public
def clip(x, /, min=None, max=None):  # noqa: A002  (array API names)
    """Array API ``clip``; derivative 1 inside [min, max] (bounds included), 0 outside.

    >>> import gradtape as gt
    >>> gt.clip(gt.asarray([-2.0, 0.5, 2.0]), -1.0, 1.0)
    Tensor([-1. ,  0.5,  1. ])
    """
    x = as_tensor(x)
    if isinstance(min, Tensor) or isinstance(max, Tensor) or not _number_or_none(min) or not _number_or_none(max):
        out = x
        if min is not None:
            low = min if isinstance(min, (int, float)) else broadcast_to(as_tensor(min), out.shape)
            out = where(out < min, low, out)
        if max is not None:
            out = where(out > max, max, out)
        return out
    return apply1(ops.clip_, x, {"lo": min, "hi": max})


def _number_or_none(v):
    return v is None or isinstance(v, (int, float))


@public
def real(x, /):
    """Real part (the identity on real tensors); differentiable on complex ones (VJP ct + 0i).

    >>> import gradtape as gt
    >>> gt.real(gt.asarray([1.5])), gt.real(gt.asarray([1 + 2j]))
    (Tensor([1.5]), Tensor([1.]))
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        return apply1(ops.real_c, x)
    return apply1(ops.positive, x)


@public
def imag(x, /):
    """Imaginary part (zeros on real tensors); differentiable on complex ones (VJP i ct).

    >>> import gradtape as gt
    >>> gt.imag(gt.asarray([1.5])), gt.imag(gt.asarray([1 + 2j]))
    (Tensor([0.]), Tensor([2.]))
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        return apply1(ops.imag_c, x)
    return zeros_like(x)


@public
def conj(x, /):
    """Complex conjugate (the identity on real tensors); VJP conj(ct).

    >>> import gradtape as gt
    >>> gt.conj(gt.asarray([1.5])), gt.conj(gt.asarray([1 + 2j]))
    (Tensor([1.5]), Tensor([1.-2.j]))
    """
    x = asarray(x)
    if isdtype(x.dtype, "complex floating"):
        return apply1(ops.conj_c, x)
    return apply1(ops.positive, x)


# ---- elementwise functions whose parameters come from the modes (gt.abs, and gt.nn's relu, sigmoid, softplus) ----
def abs(x, /):
    """Elementwise absolute value; abs'(0) is 0 unless set with ``gt.subgradient(abs=a)``.

    >>> import gradtape as gt
    >>> gt.abs(gt.asarray([-2.0, 3.0]))
    Tensor([2., 3.])
    """
    if getattr(getattr(x, "dtype", None), "kind", None) == "complex floating":   # |z| (tensors, vmap tracers)
        return apply1(ops.abs_c, x)
    return apply1(ops.abs_, x, {"a": state.abs_sub})


def relu(x, /):
    """max(x, 0); relu'(0) is 0 unless set with ``gt.subgradient(relu=a)``.

    >>> import gradtape as gt
    >>> gt.nn.relu(gt.asarray([-1.0, 2.0]))
    Tensor([0., 2.])
    """
    return apply1(ops.relu, x, {"a": state.relu_sub})


def sigmoid(x, /):
    """The logistic function 1 / (1 + exp(-x)), computed stably.

    >>> import gradtape as gt
    >>> gt.nn.sigmoid(gt.asarray([0.0]))
    Tensor([0.5])
    """
    return apply1(ops.sigmoid, x)


def softplus(x, /):
    """log(1 + exp(x)), computed stably.

    >>> import gradtape as gt
    >>> gt.nn.softplus(gt.asarray([0.0])).shape
    (1,)
    """
    return apply1(ops.softplus, x)
