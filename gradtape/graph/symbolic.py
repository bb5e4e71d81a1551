"""Explicit computation graphs, the seed's ``sym`` style: variables, expressions, eval, grad.

>>> import gradtape as gt
>>> from gradtape import sym
>>> a = sym.var("a"); b = sym.var("b")
>>> c = 2 * a + b
>>> c.eval(a=gt.ones((2, 1)), b=gt.ones((2, 1)))
Tensor([[3.],
        [3.]])

A :class:`Symbol` is an expression waiting for its inputs. Symbols combine
with the same operators, methods and ``gt.*`` functions as tensors; nothing
is computed until :meth:`Symbol.eval`, which runs on the backend of the
inputs it is given (NumPy, CuPy, array-api-strict). :func:`grad` gives
symbols for gradients, :meth:`Symbol.to_dot`/:meth:`Symbol.render` draw the
expression, and ``gt.trace(symbol, **inputs)`` turns it into a replayable
:class:`gradtape.Graph`.

How ``gt.*`` functions accept symbols, without re-wrapping anything: a
primitive reaches the dispatch, which hands a non-tensor argument with a
``__gradtape_apply__`` method the operation instead of computing it (no cost
for tensors); a hand-written (composite) function of ``gt``, ``gt.nn`` or
``gt.linalg`` carries ``@public`` (:mod:`gradtape._api.public`), which defers
the whole call when an argument is a symbol. This module registers the
Symbol type for that check at import (``hooks.SYMBOL``, ``hooks.has_symbol``,
``hooks.symbolic_call``). Pictures and formulas of symbols are drawn by
:mod:`gradtape.graph.dot`.
"""
from __future__ import annotations

import functools
import itertools
import operator

from .. import _tree
from .._api import asarray, sum as _sum, zeros
from .._autodiff import transforms
from .._core import hooks
from .._core.dispatch import apply
from .._core.dtypes import DTYPES, dtype_name
from .._core.primitive import Primitive
from .._core.tensor import Tensor
from ..graph.dot import dot_to_svg, render_dot, symbol_text, symbols_to_dot
from ..graph.ir import _fmt_shape

__all__ = ["Symbol", "var", "grad", "group", "Group"]

_ids = itertools.count()


def _call(label, fn, reflected=False):
    """The operator method of Symbol for ``fn`` (``self`` second for a reflected operator)."""
    if reflected:
        return lambda self, other: Symbol("call", fn, (other, self), label=label)
    return lambda self, *other: Symbol("call", fn, (self,) + other, label=label)


class Symbol:
    """A node of a symbolic expression: a variable, an operation on symbols, or a gradient.

    >>> from gradtape import sym
    >>> x = sym.var("x", shape=(3,))
    >>> y = (x * x).sum()
    >>> y.list_arguments(), y.eval(x=[1.0, 2.0, 3.0])
    (['x'], Tensor(14.))
    """

    __slots__ = ("kind", "op", "args", "kwargs", "name", "named", "shape", "dtype", "label", "__weakref__")
    __array_ufunc__ = None          # NumPy defers to our reflected operators

    def __init__(self, kind, op=None, args=(), kwargs=None, name=None, shape=None, dtype=None, label=None):
        self.kind = kind
        self.op = op
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.label = label or (op.name if isinstance(op, Primitive) else kind)
        self.named = name is not None
        self.name = name if name is not None else f"{self.label}{next(_ids)}"
        self.shape = shape
        self.dtype = dtype

    # -- the dispatch hook (gradtape._core.apply hands us operations on symbols)
    def __gradtape_apply__(self, prim, args, params):
        return Symbol("prim", prim, args, params)

    # -- operators: deferred calls of the tensor operators
    __add__, __radd__ = _call("add", operator.add), _call("add", operator.add, True)
    __sub__, __rsub__ = _call("subtract", operator.sub), _call("subtract", operator.sub, True)
    __mul__, __rmul__ = _call("multiply", operator.mul), _call("multiply", operator.mul, True)
    __truediv__, __rtruediv__ = _call("divide", operator.truediv), _call("divide", operator.truediv, True)
    __floordiv__ = _call("floor_divide", operator.floordiv)
    __rfloordiv__ = _call("floor_divide", operator.floordiv, True)
    __mod__, __rmod__ = _call("remainder", operator.mod), _call("remainder", operator.mod, True)
    __pow__, __rpow__ = _call("pow", operator.pow), _call("pow", operator.pow, True)
    __matmul__, __rmatmul__ = _call("matmul", operator.matmul), _call("matmul", operator.matmul, True)
    __and__, __rand__ = _call("bitwise_and", operator.and_), _call("bitwise_and", operator.and_, True)
    __or__, __ror__ = _call("bitwise_or", operator.or_), _call("bitwise_or", operator.or_, True)
    __xor__, __rxor__ = _call("bitwise_xor", operator.xor), _call("bitwise_xor", operator.xor, True)
    __lshift__ = _call("bitwise_left_shift", operator.lshift)
    __rlshift__ = _call("bitwise_left_shift", operator.lshift, True)
    __rshift__ = _call("bitwise_right_shift", operator.rshift)
    __rrshift__ = _call("bitwise_right_shift", operator.rshift, True)
    __lt__, __le__ = _call("less", operator.lt), _call("less_equal", operator.le)
    __gt__, __ge__ = _call("greater", operator.gt), _call("greater_equal", operator.ge)
    __eq__, __ne__ = _call("equal", operator.eq), _call("not_equal", operator.ne)
    __neg__, __pos__ = _call("negative", operator.neg), _call("positive", operator.pos)
    __abs__, __invert__ = _call("abs", operator.abs), _call("bitwise_invert", operator.invert)
    __getitem__ = _call("getitem", operator.getitem)

    # -- naming
    def rename(self, name):
        """Give this symbol a name (shown in pictures, used as the output name); returns the symbol.

        >>> from gradtape import sym
        >>> a = sym.var("a")
        >>> (a * 2).rename("twice").name
        'twice'
        """
        self.name = str(name)
        self.named = True
        return self

    # -- structure
    def _deps(self):
        """The symbols this one reads directly (for a gradient: its target and variables)."""
        if self.kind == "grad":
            target, wrt, _ = self.op
            return [target] + list(wrt)
        return [v for v in _tree.leaves((self.args, self.kwargs), subclasses=False) if type(v) is Symbol]

    def list_arguments(self):
        """Names of the variables this expression needs, in the order it reads them.

        >>> from gradtape import sym
        >>> b = sym.var("b"); a = sym.var("a")
        >>> (a * 2 + b).list_arguments()
        ['a', 'b']
        """
        return [s.name for s in _variables([self])]

    def eval(self, **inputs):
        """Compute the expression on the backend of ``inputs`` (one array per variable, by name).

        A missing or unknown variable is a ``TypeError``; an input whose shape
        (or dtype) differs from the variable's declaration a ``ValueError``
        (``TypeError``). Inputs that require grad give a result that does too.

        >>> import gradtape as gt
        >>> from gradtape import sym
        >>> a = sym.var("a", shape=(2,))
        >>> gt.sin(a).eval(a=gt.zeros(2, device="strict"))
        Tensor([0., 0.], device='strict')
        """
        return _evaluate([self], _bind([self], inputs))[0]

    # -- pictures
    def to_dot(self):
        """Graphviz DOT text of the expression: variables, operations, and the output.

        >>> from gradtape import sym
        >>> a = sym.var("a"); b = sym.var("b")
        >>> print((2 * a + b).to_dot())  # doctest: +ELLIPSIS
        digraph ...
          s0 [label="a", ...];
          s1 [label="multiply\\n(2, •)", ...];
          s2 [label="b", ...];
          s3 [label="add", ...];
          o0 [label="out", ...];
          s0 -> s1;
          s1 -> s3;
          s2 -> s3;
          s3 -> o0;
        }
        """
        roots = [self] if self.kind != "group" else list(self.args)
        return symbols_to_dot(_topo(roots), roots, self.name)

    def render(self, path, format=None):
        """Draw the expression with Graphviz (SVG/PNG/... from the suffix; ``.dot`` writes the DOT text).

        >>> from gradtape import sym
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "c.dot")
        >>> (sym.var("a") + 1.0).render(p); os.path.exists(p)
        True
        """
        render_dot(self.to_dot(), path, format)

    def _repr_svg_(self):
        """SVG for notebooks (None without Graphviz's ``dot``).

        >>> from gradtape import sym
        >>> svg = (sym.var("a") * 2)._repr_svg_()
        >>> svg is None or "<svg" in svg
        True
        """
        return dot_to_svg(self.to_dot())

    def __repr__(self):
        return f"<Symbol {self.name} = {symbol_text(self, 3)}>"

    # -- values a symbol does not have
    def __bool__(self):
        raise TypeError(f"gradtape.sym: symbol {self.name!r} has no value to test; Python control flow needs "
                        f"values: eval() it, or use gt.where for a data-dependent choice")

    def __len__(self):
        raise TypeError(f"gradtape.sym: symbol {self.name!r} has no length before eval()")

    def __iter__(self):
        raise TypeError(f"gradtape.sym: symbol {self.name!r} cannot be iterated before eval()")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"gradtape.sym: symbol {self.name!r} used where an array is needed; put the symbol first "
                        f"(sym @ x) or call the gt function (gt.matmul(x, sym)), then eval()")

    def __setitem__(self, key, value):
        raise TypeError("gradtape.sym: symbols are immutable; build a new expression (gt.where, concat...)")

    __hash__ = object.__hash__

    @property
    def ndim(self):
        """Number of axes, where the shape is declared (variables).

        >>> from gradtape import sym
        >>> sym.var("m", shape=(2, 3)).ndim
        2
        """
        if self.shape is None:
            raise AttributeError(f"gradtape.sym: the shape of {self.name!r} is not known before eval()")
        return len(self.shape)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        member = getattr(Tensor, name, None)
        if name in _VALUE_ONLY or member is None:
            raise AttributeError(f"gradtape.sym: a symbol has no {name!r} (it has no value before eval(); "
                                 f"tensor methods and T/mT are deferred)")
        if isinstance(member, property):
            if name not in ("T", "mT"):
                raise AttributeError(f"gradtape.sym: {name!r} of {self.name!r} is not known before eval()")
            return Symbol("call", operator.attrgetter(name), (self,), label=name)
        return functools.partial(_method_call, self, name)


_VALUE_ONLY = {"backward", "attach_grad", "requires_grad_", "zero_", "item", "tolist", "numpy", "asnumpy", "grad",
               "detach", "copy", "size", "device", "requires_grad", "is_leaf", "grad_req", "data"}


class _Method:
    """``x -> x.meth(*args, **kw)``: a tensor method called on a symbol's value."""

    __slots__ = ("meth",)

    def __init__(self, meth):
        self.meth = meth

    def __call__(self, x, *args, **kw):
        return getattr(x, self.meth)(*args, **kw)


def _method_call(self, name, *args, **kw):
    return Symbol("call", _Method(name), (self,) + args, kw, label=name)


def _has_symbol(v):
    """Whether value ``v`` (a tuple, list, dict or slice, walked) holds a Symbol."""
    return type(v) is Symbol or any(type(e) is Symbol for e in _tree.leaves(v, subclasses=False))


def _topo(roots):
    """All symbols the roots depend on, each after its dependencies (no recursion: deep expressions work)."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        s, done = stack.pop()
        if done:
            order.append(s)
            continue
        if id(s) in seen:
            continue
        seen.add(id(s))
        stack.append((s, True))
        for d in reversed(s._deps()):
            if id(d) not in seen:
                stack.append((d, False))
    return order


def _variables(roots):
    return [s for s in _topo(roots) if s.kind == "var"]


# ---- construction ---------------------------------------------------------------------------------------------

def var(name=None, shape=None, dtype=None):
    """A symbolic variable; unnamed ones get unique names (``var0``, ``var1``...).

    ``shape`` and ``dtype`` are optional declarations, checked when the
    expression is evaluated (``None`` in the shape matches any size).

    >>> from gradtape import sym
    >>> a = sym.var("a", shape=(2, 1), dtype="float64")
    >>> a.name, a.shape, a.dtype
    ('a', (2, 1), 'float64')
    >>> sym.var().name.startswith("var")
    True
    """
    if shape is not None:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(d is None or (isinstance(d, int) and d >= 0) for d in shape):
            raise ValueError(f"gradtape.sym.var: shape must hold non-negative ints (or None), got {shape}")
    if dtype is not None:
        dtype = dtype_name(dtype)
        if dtype not in DTYPES:
            raise TypeError(f"gradtape.sym.var: unknown dtype {dtype!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"gradtape.sym.var: name must be a string, got {type(name).__name__}")
    return Symbol("var", None, name=name, shape=shape, dtype=dtype, label="var")


def grad(c, wrt):
    """Symbols for the gradient of ``c`` (summed first when it is not a scalar) w.r.t. variables ``wrt``.

    ``wrt`` is one variable (giving one symbol) or a list of them (giving a
    list). Gradient symbols are symbols like any other: they combine, and
    ``grad`` of a gradient gives second derivatives.

    >>> import gradtape as gt
    >>> from gradtape import sym
    >>> a = sym.var("a"); b = sym.var("b")
    >>> da, db = sym.grad(2 * a * a + b, [a, b])
    >>> da.eval(a=gt.asarray([1.0, 2.0]), b=gt.zeros(2)), db.eval(a=gt.ones(2), b=gt.ones(2))
    (Tensor([4., 8.]), Tensor([1., 1.]))
    >>> sym.grad(sym.grad(a ** 3, a), a).eval(a=gt.asarray(2.0))
    Tensor(12.)
    """
    if not isinstance(c, Symbol):
        raise TypeError(f"gradtape.sym.grad: expected a Symbol to differentiate, got {type(c).__name__}")
    single = isinstance(wrt, Symbol)
    ws = (wrt,) if single else tuple(wrt)
    for w in ws:
        if not isinstance(w, Symbol) or w.kind != "var":
            raise TypeError(f"gradtape.sym.grad: can only differentiate with respect to variables (sym.var), "
                            f"got {w!r}")
    out = [Symbol("grad", (c, ws, k), label="grad", name=None) for k in range(len(ws))]
    for s, w in zip(out, ws):
        s.name = f"d{c.name}/d{w.name}"
    return out[0] if single else out


def group(*symbols):
    """Several symbols as one, evaluating to a tuple (MXNet ``sym.Group``).

    >>> import gradtape as gt
    >>> from gradtape import sym
    >>> a = sym.var("a")
    >>> sym.group(a + 1.0, a * 2.0).eval(a=gt.ones(1))
    (Tensor([2.]), Tensor([2.]))
    """
    if len(symbols) == 1 and isinstance(symbols[0], (list, tuple)):
        symbols = tuple(symbols[0])
    for s in symbols:
        if not isinstance(s, Symbol):
            raise TypeError(f"gradtape.sym.group: expected symbols, got {type(s).__name__}")
    return Symbol("group", tuple, symbols, label="group")


Group = group


# ---- evaluation -------------------------------------------------------------------------------------------------

def _bind(roots, inputs):
    """{variable: tensor} for a call's inputs, checked against the variables' declarations."""
    vs = _variables(roots)
    by_name = {}
    for v in vs:
        if v.name in by_name and by_name[v.name] is not v:
            raise ValueError(f"gradtape.sym: two different variables are named {v.name!r}; name them apart")
        by_name[v.name] = v
    unknown = [k for k in inputs if k not in by_name]
    if unknown:
        raise TypeError(f"gradtape.sym: unknown input(s) {unknown}; the expression's variables are {list(by_name)}")
    missing = [k for k in by_name if k not in inputs]
    if missing:
        raise TypeError(f"gradtape.sym: missing input(s) {missing}; the expression needs "
                        f"{', '.join(_decl(v) for v in vs)}")
    env = {}
    for v in vs:
        x = inputs[v.name]
        if not isinstance(x, Tensor):
            x = asarray(x, dtype=v.dtype) if v.dtype is not None and not hasattr(x, "dtype") else asarray(x)
        if v.shape is not None and (len(x.shape) != len(v.shape) or
                                    any(d is not None and d != n for d, n in zip(v.shape, x.shape))):
            raise ValueError(f"gradtape.sym: input {v.name!r} has shape {x.shape}, but the variable was declared "
                             f"with shape {v.shape}")
        if v.dtype is not None and dtype_name(x.dtype) != v.dtype:
            raise TypeError(f"gradtape.sym: input {v.name!r} has dtype {x.dtype}, but the variable was declared "
                            f"{v.dtype}")
        env[id(v)] = x
    return env


def _decl(v):
    bits = [v.name]
    if v.shape is not None:
        bits.append(_fmt_shape(v.shape))
    if v.dtype is not None:
        bits.append(v.dtype)
    return " ".join(bits)


def _value(v, vals):
    """Argument value ``v`` with each Symbol replaced by its value."""
    return _tree.map(lambda e: vals[id(e)] if type(e) is Symbol else e, v, subclasses=False)


def _evaluate(roots, env):
    """Values of the roots, given {id(variable): tensor}; gradient symbols run gt.grad on a re-evaluation.

    Everything is keyed by id: a symbol's == builds an expression, it does not compare."""
    vals = dict(env)
    grads = {}
    order = _topo(roots)
    for s in order:          # gradients first: their forward pass gives their targets' values too
        if s.kind == "grad":
            target, ws, k = s.op
            key = (id(target),) + tuple(id(w) for w in ws)
            if key not in grads:
                value, grads[key] = _gradients(target, ws, env)
                vals.setdefault(id(target), value)
    for s in order:
        if id(s) in vals:
            continue
        if s.kind == "var":
            raise TypeError(f"gradtape.sym: no value for variable {s.name!r}")
        if s.kind == "prim":
            vals[id(s)] = apply(s.op, _value(s.args, vals), s.kwargs or None)
        elif s.kind == "grad":
            target, ws, k = s.op
            vals[id(s)] = grads[(id(target),) + tuple(id(w) for w in ws)][k]
        elif s.kind == "group":
            vals[id(s)] = tuple(vals[id(a)] for a in s.args)
        else:
            vals[id(s)] = s.op(*_value(s.args, vals), **_value(s.kwargs, vals))
    return [vals[id(r)] for r in roots]


def _gradients(target, ws, env):
    """(target's value, its gradients w.r.t. variables ws): one forward and one reverse pass."""
    def f(*xs):
        sub = dict(env)
        sub.update((id(w), x) for w, x in zip(ws, xs))
        out = _evaluate([target], sub)[0]
        if not isinstance(out, Tensor):
            raise TypeError(f"gradtape.sym.grad: {target.name!r} does not evaluate to a tensor")
        return (out if out.ndim == 0 else _sum(out)), out
    (_, value), got = transforms.value_and_grad(f, argnums=tuple(range(len(ws))), has_aux=True)(
        *[env[id(w)] for w in ws])
    if not any(t._requires_grad or t.tangents is not None for t in env.values()):
        value = value.detach()     # nothing outside differentiates this evaluation
    return value, tuple(got)


def _trace_inputs(s, args, kwargs):
    """``(run, inputs)`` for gt.trace(symbol, **inputs): a function of the symbol's variables, by name, and
    an example for each (declared shapes give zeros); :func:`gradtape.graph.trace` traces ``run(**inputs)``."""
    if args:
        raise TypeError("gradtape.trace: give a symbol's inputs by name (gt.trace(sym, a=..., b=...))")
    roots = list(s.args) if s.kind == "group" else [s]
    inputs = dict(kwargs)
    for v in _variables(roots):
        if v.name not in inputs:
            if v.shape is None or None in v.shape:
                raise TypeError(f"gradtape.trace: no example for variable {v.name!r}, and its shape is not declared; "
                                f"pass {v.name}=<array>")
            inputs[v.name] = zeros(v.shape, dtype=v.dtype or "float64")

    def run(**kw):
        vals = _evaluate(roots, _bind(roots, kw))
        return tuple(vals) if s.kind == "group" else vals[0]
    run.__name__ = s.name
    return run, inputs


# ---- gt functions accept symbols: the Symbol type, registered for @public (gradtape._api.public) -------------

def _symbolic_call(fn, label, args, kwargs):
    """The Symbol of ``fn(*args, **kwargs)`` (a composite function called with a Symbol argument)."""
    return Symbol("call", fn, args, kwargs, label=label)


hooks.SYMBOL = Symbol
hooks.has_symbol = _has_symbol
hooks.symbolic_call = _symbolic_call
