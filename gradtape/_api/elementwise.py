"""The elementwise functions of ``gt``, bound from the primitive registry.

Every primitive declared with ``namespace="gt"`` gets a public function of its name here, with the
array-API signature (``sin(x, /)``, ``add(x1, x2, /)``) and a docstring with an example: adding an
elementwise op needs no edit in this file. The functions with parameters read from the modes (``abs``:
its subgradient at 0) are written by hand in :mod:`gradtape._ops.elementwise`.

>>> import gradtape as gt
>>> gt.sin is gt._api.elementwise.sin, gt.sin.__name__
(True, 'sin')
"""
from __future__ import annotations

import inspect

from .._core.dispatch import apply1, apply2
from .._core.primitive import PRIMS
from .._ops import elementwise as _definitions  # noqa: F401  (declares the primitives)

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
__all__ = sorted(FUNCTIONS)


def __getattr__(name):
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(FUNCTIONS))
