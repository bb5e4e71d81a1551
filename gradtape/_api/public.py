"""``@public``: an array-API function written by hand (not bound from the registry) also accepts
``gradtape.sym`` Symbols: called with one, it returns the Symbol of the call instead of computing.

Primitives need nothing of this (``apply`` hands a Symbol argument the op, see
:mod:`gradtape._core.dispatch`); composite functions inspect their arguments (shapes, dtypes) before
reaching a primitive, so they defer as a whole. The Symbol type registers itself (``hooks.SYMBOL``)
when :mod:`gradtape.graph.symbolic` is imported; until then the check costs one attribute read.

>>> import gradtape as gt
>>> from gradtape import sym
>>> gt.mean(sym.var("a")).eval(a=gt.asarray([1.0, 3.0]))
Tensor(2.)
"""
from __future__ import annotations

import functools
import inspect

from .._core import hooks

__all__ = ["public", "signed", "table_module"]


def public(fn=None, *, label=None):
    """Decorate ``fn`` (optionally ``@public(label="name")``, the node label in drawn graphs)."""
    if fn is None:
        return functools.partial(public, label=label)
    name = label or fn.__name__

    @functools.wraps(fn)
    def f(*args, **kw):
        symbol = hooks.SYMBOL
        if symbol is not None:
            for a in args:
                if type(a) is symbol or (type(a) in (list, tuple) and hooks.has_symbol(a)):
                    return hooks.symbolic_call(fn, name, args, kw)
            if kw:
                for v in kw.values():
                    if type(v) is symbol:
                        return hooks.symbolic_call(fn, name, args, kw)
        return fn(*args, **kw)
    f.__gradtape_symbolic__ = True
    return f


def signed(fn, stub):
    """``fn`` with the signature of ``stub`` as its ``__signature__`` (what ``inspect.signature`` reports): the
    standard's, for a function that also accepts more at runtime (``gt.zeros(2, 3)``, PyTorch's varargs shape).

    >>> import inspect, gradtape as gt
    >>> str(inspect.signature(gt.zeros))
    '(shape, *, dtype=None, device=None)'
    """
    fn.__signature__ = inspect.signature(stub)
    return fn


def table_module(module_name, functions, module_globals):
    """``__getattr__`` and ``__dir__`` for a module whose public functions live in the dict ``functions`` (bound
    from a table or the registry, not assigned as module globals)."""
    def __getattr__(name):
        try:
            return functions[name]
        except KeyError:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}") from None

    def __dir__():
        return sorted(set(module_globals) | set(functions))
    return __getattr__, __dir__
