"""``gt.vmap``: a function of one example mapped over a batch axis, with no Python loop over the batch.

Inside the mapped function every batched value is a :class:`BatchTracer`: a tensor that shows the
per-example shape and holds the batched value (``val``, batch axis at 0). Each primitive applied to a
tracer runs its batching rule (``Primitive.batch``, :mod:`gradtape._ops.batching`) once on the whole batch.
The tracer is opaque to autodiff (no node, no tangents): the ops are recorded on the underlying values, so
``grad(vmap(f))``, ``jvp(vmap(f))`` and ``jacobian(vmap(f))`` differentiate the batched computation as any.
Nested vmaps give nested tracers (``val`` a tracer of the outer level); levels are numbered in creation
order and listed innermost last in ``state.batch``.

Size: ~640 lines: the tracer (one example's Python behaviour), vmap's entry and exit over pytrees of
in_axes/out_axes, the helpers the transforms use, and the batching of the non-differentiable functions and of
indices batched by vmap, which need the API layer (the primitives' rules, below it: gradtape/_ops/batching.py).

>>> import gradtape as gt
>>> gt.vmap(lambda x: gt.sum(x * x))(gt.asarray([[1.0, 2.0], [3.0, 4.0]]))
Tensor([ 5., 25.])
"""
from __future__ import annotations

import functools
import itertools
import math

from .. import _tree
from .._api import (any as _any, asarray, broadcast_to, count_nonzero, equal, less, less_equal, logical_not,
                   moveaxis, ones_like, permute_dims, reshape, take, take_along_axis, where, zeros_like)
from .._api.indexing import take_add
from .._core import hooks
from .._core.dispatch import apply1
from .._core.tensor import Tensor
from .._ops import batching, batching_linalg  # noqa: F401  (attach the rules to the primitives)
from .._state import scoped, state

__all__ = ["vmap", "BatchTracer", "BatchedValueError", "current", "is_batched", "to_batched", "unwrap",
           "wrap_batched"]

_elementwise = batching.elementwise
_levels = itertools.count(1)
_new = object.__new__
_EMPTY = {}
_ONE = (True,)
_TWO, _FIRST, _SECOND = (True, True), (True, False), (False, True)


class BatchedValueError(TypeError):
    """A Python value (``bool``, ``float``, ``int``, an index, a NumPy array) asked of a batched tensor inside
    ``gt.vmap``: it has one value per example. A TypeError, as JAX's ConcretizationTypeError."""


class BatchTracer(Tensor):
    """A batched tensor inside ``gt.vmap``: it behaves as one example (``shape``, ``ndim``, ``len``, iteration
    and unpacking are per example) and holds the whole batch in ``val`` (batch axis at 0; a tracer of the
    outer level under nested vmaps) at vmap level ``level``.

    Asking it for a Python value (``bool(x)``, ``float(x)``, ``x.item()``, ``int(x)``, ``x.numpy()``,
    ``np.asarray(x)``) is a :class:`BatchedValueError` (a TypeError): select with ``gt.where`` instead of
    ``if``. In-place operators (``x[i] = v``, ``x += y``) rebind the tracer to the new batched value.

    >>> import gradtape as gt
    >>> def f(x):
    ...     print(x.shape, len(x))
    ...     a, b = x
    ...     return a * b
    >>> gt.vmap(f)(gt.asarray([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    (2,) 2
    Tensor([ 2., 12., 30.])
    """

    __slots__ = ("val", "level")

    @property
    def shape(self):
        """Per-example shape."""
        return tuple(self.val.shape[1:])

    @property
    def ndim(self):
        """Per-example rank."""
        return self.val.ndim - 1

    @property
    def size(self):
        """Per-example number of elements."""
        return math.prod(self.val.shape[1:])

    def __len__(self):
        if self.val.ndim == 1:
            raise TypeError("len() of a 0-d tensor (one example of a gt.vmap batch)")
        return self.val.shape[1]

    def __iter__(self):
        if self.val.ndim == 1:
            raise TypeError("iteration over a 0-d tensor (one example of a gt.vmap batch)")
        for i in range(self.val.shape[1]):
            yield self[i]

    def __repr__(self):
        return (f"BatchTracer(shape={self.shape}, dtype={self.dtype}, vmap level {self.level}, batch size "
                f"{self.val.shape[0]})")

    __str__ = __repr__

    def _concrete(self, what):
        raise BatchedValueError(
            f"gradtape.vmap: {what} of a batched tensor (per-example shape {self.shape}, batch size "
            f"{self.val.shape[0]}) has one value per example: inside gt.vmap select with gt.where(cond, a, b) "
            f"instead of Python's if/while, and return values rather than converting them")

    def __bool__(self):
        self._concrete("bool()")

    def __float__(self):
        self._concrete("float()")

    def __int__(self):
        self._concrete("int()")

    def __complex__(self):
        self._concrete("complex()")

    def __index__(self):
        self._concrete("use as a Python index (__index__)")

    def item(self):
        self._concrete("item()")

    def tolist(self):
        self._concrete("tolist()")

    def numpy(self):
        self._concrete("numpy()")

    def asnumpy(self):
        self._concrete("asnumpy()")

    def __array__(self, dtype=None, copy=None):
        self._concrete("conversion to a NumPy array")

    def __reduce__(self):
        self._concrete("pickling")

    def _no_tape(self, what):
        raise RuntimeError(f"gradtape.vmap: {what} on a batched tensor (per-example shape {self.shape}) inside "
                           f"gt.vmap; differentiate with gt.grad/gt.vjp inside the mapped function (per-example "
                           f"gradients), or outside gt.vmap")

    def requires_grad_(self, requires_grad=True):
        if requires_grad:
            self._no_tape("requires_grad_()")
        return self

    def attach_grad(self, grad_req="write", stype=None):
        self._no_tape("attach_grad()")

    def backward(self, head=None, retain_graph=False, create_graph=False, train_mode=True):
        self._no_tape("backward()")

    def zero_(self):
        """Every element set to 0 (rebinds the tracer)."""
        self._rebind(hooks.API.zeros_like(self), "zero_")
        return self

    def detach(self):
        """The batch detached (no gradient flows through it), as a tracer of the same level."""
        return wrap_batched(self.val.detach(), self.level)

    def _rebind(self, new, what):
        """``self`` rebound to ``new`` (in-place operators and ``x[key] = v`` on a tracer: value semantics)."""
        if type(new) is BatchTracer and new.level > self.level:
            raise RuntimeError(f"gradtape.vmap: in-place {what} writes a value batched by an inner vmap into a "
                               f"tensor of an outer one; compute a new value instead (y = gt.where(...), "
                               f"y = x + v)")
        if new.shape != self.shape:
            raise ValueError(f"gradtape: in-place {what} would change shape {self.shape} to {new.shape}")
        if new.dtype != self.dtype:
            raise TypeError(f"gradtape: in-place {what} would change dtype {self.dtype} to {new.dtype}")
        self.val = unwrap(new, self.level, self.val.shape[0])
        self.data = self.val.data
        self._version += 1

    @staticmethod
    def __gradtape_apply__(prim, args, params):
        """Run primitive ``prim`` on arguments some of which are tracers: its batching rule at the innermost
        level among them (tracers of outer levels and plain values are unbatched at that level)."""
        if params is None:
            params = _EMPTY
        if len(args) == 1:
            x = args[0]
            val = x.val         # (a tuple: the outputs of a multi-output primitive, which only select reads)
            rule = prim.batch or batching.rule_of(prim)
            if rule is _elementwise:        # the usual case, without the batch size
                return wrap_batched(apply1(prim, val, params) if params else apply1(prim, val), x.level)
            size = val.data.shape[0] if type(val) is Tensor else val.shape[0] if type(val) is not tuple else \
                val[0].shape[0]
            return _wrapped(prim, rule(prim, (val,), _ONE, params, size), x.level)
        if len(args) == 2:
            x, y = args
            if type(x) is BatchTracer:
                if type(y) is BatchTracer and y.level >= x.level:
                    if y.level == x.level:
                        vals, batched, level = (x.val, y.val), _TWO, x.level
                    else:
                        vals, batched, level = (x, y.val), _SECOND, y.level
                elif type(y) is BatchTracer or isinstance(y, (Tensor, int, float, bool, complex)):
                    vals, batched, level = (x.val, y), _FIRST, x.level
                else:
                    vals, batched, level = (x.val, asarray(y)), _FIRST, x.level
                b = x.val if level == x.level else y.val
            else:
                x = x if isinstance(x, (Tensor, int, float, bool, complex)) else asarray(x)
                vals, batched, level = (x, y.val), _SECOND, y.level
                b = y.val
            rule = prim.batch or batching.rule_of(prim)
            if rule is _elementwise:        # (it needs no batch size)
                return wrap_batched(_elementwise(prim, vals, batched, params, 0), level)
            out = rule(prim, vals, batched, params, b.data.shape[0] if type(b) is Tensor else b.shape[0])
            return wrap_batched(out, level) if not prim.multi_output else _wrapped(prim, out, level)
        level = -1
        coerce = False
        for a in args:
            if type(a) is BatchTracer:
                if a.level > level:
                    level = a.level
            elif not isinstance(a, (Tensor, bool, int, float, complex)):
                coerce = True
        vals = []
        batched = []
        size = 0
        for a in args:
            if type(a) is BatchTracer and a.level == level:
                a = a.val
                size = a.shape[0]
                batched.append(True)
            else:
                if coerce and not isinstance(a, (Tensor, bool, int, float, complex)):
                    a = asarray(a)
                batched.append(False)
            vals.append(a)
        out = (prim.batch or batching.rule_of(prim))(prim, tuple(vals), tuple(batched), params, size)
        return _wrapped(prim, out, level)

    @staticmethod
    def __gradtape_index__(x, key, value, op):
        """x[key] and the writes at a key holding this tracer (an index batched by vmap)."""
        return _index(x, key, value, op)

    @staticmethod
    def __gradtape_call__(f, name, args, kw):
        """A non-differentiable function (``gradtape._api.nondiff``, a non-float ``astype``) called with tracers."""
        return _call(f, name, args, kw)


def wrap_batched(val, level):
    """A :class:`BatchTracer` of vmap level ``level`` around ``val`` (its batch axis at 0)."""
    t = _new(BatchTracer)
    t.val = val
    t.level = level
    t.data = val.data
    t.backend = val.backend
    t._node = None
    t._requires_grad = False
    t._grad = None
    t._grad_req = None
    t._version = 0
    t.tangents = None
    t._base = None
    return t


def _wrapped(prim, out, level):
    if not prim.multi_output:
        return wrap_batched(out, level)
    if isinstance(out, Tensor):       # the hidden tuple-valued tensor: its outputs as tensors
        out = tuple(out[k] for k in range(len(out.data)))
    t = _new(BatchTracer)           # hidden as well: only select (apply_multi) reads it
    t.val = tuple(out)
    t.level = level
    t.data = tuple(o.data for o in out)
    t.backend = out[0].backend
    t._node = None
    t._requires_grad = False
    t.tangents = None
    t._base = None
    return t


# ---- the helpers transforms use --------------------------------------------------------------------------------
def current():
    """The innermost active vmap level and its batch size, ``(level, size)``, or None outside vmap."""
    b = state.batch
    return b[-1] if b else None


def is_batched(x, level):
    """Whether ``x`` is a tracer of vmap level ``level``."""
    return type(x) is BatchTracer and x.level == level


def _check_level(x, level):
    if type(x) is BatchTracer and x.level > level:
        raise RuntimeError(f"gradtape.vmap: a tensor batched at vmap level {x.level} used at the outer level "
                           f"{level} (a value leaked out of an inner vmap)")


def to_batched(x, level, size):
    """``x`` as a tracer of vmap level ``level``: itself if it is one, else its value broadcast to
    ``(size,) + shape`` (the same for every example)."""
    if is_batched(x, level):
        return x
    return wrap_batched(unwrap(x, level, size), level)


def unwrap(x, level, size):
    """The batched value behind ``x`` at vmap level ``level`` (batch axis at 0): a tracer's ``val``, or an
    unbatched ``x`` broadcast to ``(size,) + shape``."""
    if is_batched(x, level):
        return x.val
    _check_level(x, level)
    if not isinstance(x, Tensor):
        x = asarray(x)
    return broadcast_to(x, (size,) + tuple(x.shape))


# ---- vmap --------------------------------------------------------------------------------------------------------
def _is_axis(a):
    return a is None or (isinstance(a, int) and not isinstance(a, bool))


def _path(path):
    return "".join(f"[{p!r}]" for p in path)


def _leaves_with_axes(axes, tree, path, out, what):
    """``out`` += (path, leaf, axis) for each leaf of ``tree``, its axis from the prefix tree ``axes``."""
    if _is_axis(axes):
        _walk(tree, path, axes, out)
        return
    if isinstance(axes, (tuple, list)) and isinstance(tree, (tuple, list)) and len(axes) == len(tree):
        for i, (a, t) in enumerate(zip(axes, tree)):
            _leaves_with_axes(a, t, path + (i,), out, what)
        return
    if isinstance(axes, dict) and isinstance(tree, dict) and set(axes) == set(tree):
        for k in tree:
            _leaves_with_axes(axes[k], tree[k], path + (k,), out, what)
        return
    raise ValueError(f"gradtape.vmap: {what} {_path(path)} is {_describe(axes)} but the value there is "
                     f"{_describe(tree)}; {what} must be an int, None, or a tree prefix of the value (a tuple/list "
                     f"of its length, a dict with its keys)")


def _walk(tree, path, axis, out):
    """``out`` += (path, leaf, axis) for the leaves of ``tree`` (None has none; other pytree nodes than tuples,
    lists and dicts are walked by gradtape._tree, their leaves numbered)."""
    if tree is None:
        return
    if isinstance(tree, dict):
        for k, v in tree.items():
            _walk(v, path + (k,), axis, out)
    elif isinstance(tree, (tuple, list)):
        for i, v in enumerate(tree):
            _walk(v, path + (i,), axis, out)
    else:
        flat, _ = _tree.flatten(tree)
        if len(flat) == 1 and flat[0] is tree:
            out.append((path, tree, axis))
        else:
            out.extend((path + (i,), leaf, axis) for i, leaf in enumerate(flat))


def _fill(tree, it):
    """``tree`` with its leaves (in :func:`_walk`'s order) taken from the iterator ``it``."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: _fill(v, it) for k, v in tree.items()}
    if isinstance(tree, tuple):
        vals = [_fill(v, it) for v in tree]
        return type(tree)(*vals) if hasattr(tree, "_fields") else tuple(vals)
    if isinstance(tree, list):
        return [_fill(v, it) for v in tree]
    flat, spec = _tree.flatten(tree)
    if len(flat) == 1 and flat[0] is tree:
        return next(it)
    new = [next(it) for _ in flat]
    return tree if all(a is b for a, b in zip(new, flat)) else _tree.unflatten(spec, new)   # (a Module: kept)


def _describe(v):
    if isinstance(v, dict):
        return f"a dict with keys {sorted(map(str, v))}"
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)}"
    if isinstance(v, Tensor):
        return f"an array of shape {v.shape}"
    return f"{type(v).__name__} {v!r:.40}"


def _normalize_axis(axis, ndim, where, what):
    if not -ndim <= axis < ndim:
        raise ValueError(f"gradtape.vmap: {what} {axis} is out of range for {where} (valid axes: -{ndim} to "
                         f"{ndim - 1})")
    return axis % ndim


def _arg_axes(in_axes, n):
    """in_axes as one entry per positional argument (a ValueError if it has another length or kind)."""
    if _is_axis(in_axes):
        return (in_axes,) * n
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != n:
            raise ValueError(f"gradtape.vmap: in_axes has {len(in_axes)} entries but the function was called with "
                             f"{n} positional arguments; give one entry (int, None or a tree prefix) per argument")
        return tuple(in_axes)
    raise ValueError(f"gradtape.vmap: in_axes must be an int, None, or a tuple/list with one entry per "
                     f"positional argument, got {_describe(in_axes)}")


def _enter(args, per_arg, axis_size):
    """The flat leaves of the arguments with their axes, the values (batched ones with the axis moved to 0)
    with whether each is batched, and the batch size."""
    found = []
    for i, (a, x) in enumerate(zip(per_arg, args)):
        _leaves_with_axes(a, x, (i,), found, "in_axes")
    sizes = {}
    moved = []
    for path, leaf, axis in found:
        if axis is None:
            moved.append((leaf, False))
            continue
        if not isinstance(leaf, Tensor):
            if not hasattr(leaf, "shape"):
                raise ValueError(f"gradtape.vmap: argument args{_path(path)} ({_describe(leaf)}) is mapped over "
                                 f"axis {axis} but is not an array; give it in_axes None")
            leaf = asarray(leaf)
        where = f"argument args{_path(path)} of shape {leaf.shape}"
        if leaf.ndim == 0:
            raise ValueError(f"gradtape.vmap: {where} is mapped over axis {axis} but has no axes; give it "
                             f"in_axes None")
        ax = _normalize_axis(axis, leaf.ndim, where, "in_axes")
        sizes[f"args{_path(path)}"] = leaf.shape[ax]
        moved.append((moveaxis(leaf, ax, 0) if ax else leaf, True))
    distinct = set(sizes.values())
    if axis_size is not None:
        distinct.add(axis_size)
    if len(distinct) > 1:
        given = ", ".join(f"{k}: {n}" for k, n in sizes.items())
        extra = f", axis_size: {axis_size}" if axis_size is not None else ""
        raise ValueError(f"gradtape.vmap: the mapped axes have different sizes ({given}{extra}); every mapped "
                         f"argument must have the same batch size")
    if not distinct:
        raise ValueError("gradtape.vmap: no argument is mapped (every in_axes is None); give axis_size")
    return found, moved, distinct.pop()


def _exit(out, out_axes, level, size):
    found = []
    _leaves_with_axes(out_axes, out, (), found, "out_axes")
    flat = []
    for path, leaf, axis in found:
        if axis is None:
            if is_batched(leaf, level):
                raise ValueError(f"gradtape.vmap: out_axes is None for output out{_path(path)}, but it depends on "
                                 f"the mapped arguments (shape {leaf.shape} per example); give it an axis")
            flat.append(leaf)
            continue
        if leaf is None:
            flat.append(None)
            continue
        val = unwrap(leaf, level, size)
        ax = _normalize_axis(axis, val.ndim, f"output out{_path(path)} of shape {val.shape[1:]} per example",
                             "out_axes")
        flat.append(moveaxis(val, 0, ax) if ax else val)
    return flat


def _rebuild(tree, axes, it):
    """``tree`` with its leaves (in the order of :func:`_leaves_with_axes`) taken from the iterator ``it`` (a
    module-level recursion: a nested function calling itself would be a reference cycle keeping the leaves)."""
    if _is_axis(axes):
        return _fill(tree, it)
    if isinstance(axes, dict):
        return {k: _rebuild(tree[k], axes[k], it) for k in tree}
    vals = [_rebuild(y, x, it) for x, y in zip(axes, tree)]
    return list(vals) if isinstance(tree, list) else type(tree)(*vals) if hasattr(tree, "_fields") else tuple(vals)


def vmap(f, in_axes=0, out_axes=0, axis_size=None):
    """``f`` mapped over an axis of its arguments (JAX's ``vmap``): ``vmap(f)(xs)[i] == f(xs[i])``, computed
    by batching every operation once, with no Python loop over the batch.

    ``in_axes``: the mapped axis of each positional argument: an int (negative counts from the end), None
    (not mapped: the same value for every example), or a tuple/list with one entry per positional argument,
    each an int, None, or a tree prefix of that argument (``{"w": None, "b": 0}`` for a dict). Keyword
    arguments are mapped over their axis 0 (as in JAX). ``out_axes``: where the batch axis goes in each
    output leaf (an int, or a tree prefix of the output; None for an output that does not depend on the
    mapped arguments). An output that
    does not depend on them is broadcast to the batch size. ``axis_size``: the batch size, needed when no
    argument is mapped. Errors (all ValueError): mapped axes of different sizes, an ``in_axes`` that does not
    fit the arguments, an axis out of range, ``out_axes`` None for a batched output. An op without a batching
    rule is a NotImplementedError naming it; ``bool()``/``float()`` of a batched value a
    :class:`BatchedValueError` (a TypeError). vmap nests and composes with ``grad``, ``jvp``, ``jacobian``.

    Random functions inside vmap draw the same values for every example (the mapped function is traced
    once, not run per example): pass per-example keys or noise as a mapped argument for independent draws.

    >>> import gradtape as gt
    >>> x = gt.asarray([[1.0, 2.0], [3.0, 4.0]])
    >>> gt.vmap(lambda x, y: x * y, in_axes=(1, None))(x, gt.asarray(2.0))
    Tensor([[2., 6.],
            [4., 8.]])
    >>> gt.vmap(lambda p: p["w"] * p["b"], in_axes=({"w": 0, "b": None},))({"w": x, "b": gt.asarray(10.0)})
    Tensor([[10., 20.],
            [30., 40.]])
    """
    if not callable(f):
        raise TypeError(f"gradtape.vmap: f must be callable, got {type(f).__name__}")
    if axis_size is not None and (not isinstance(axis_size, int) or isinstance(axis_size, bool) or axis_size < 0):
        raise ValueError(f"gradtape.vmap: axis_size must be a non-negative int, got {axis_size!r}")

    @functools.wraps(f)
    def batched(*args, **kwargs):
        per_arg = _arg_axes(in_axes, len(args))
        if kwargs:          # keyword arguments are mapped over their axis 0, as in JAX
            args, per_arg = args + (kwargs,), per_arg + (0,)
        found, moved, size = _enter(args, per_arg, axis_size)
        level = next(_levels)
        leaves = iter([wrap_batched(x, level) if b else x for x, b in moved])
        new_args = tuple(_rebuild(a, ax, leaves) for a, ax in zip(args, per_arg))
        with scoped(batch=state.batch + ((level, size),)):
            out = f(*new_args[:-1], **new_args[-1]) if kwargs else f(*new_args)
        return _rebuild(out, out_axes, iter(_exit(out, out_axes, level, size)))
    return batched


# ---- non-differentiable functions on tracers (gradtape._api.nondiff) ------------------------------------------
_ELEMENTWISE = frozenset((
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or",
    "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_invert", "bitwise_left_shift",
    "bitwise_right_shift", "isnan", "isinf", "isfinite", "signbit", "sign", "floor", "ceil", "round", "trunc",
    "floor_divide", "nextafter", "astype", "linalg.matrix_rank"))       # (matrix_rank: over stacks of matrices)
_DATA_DEPENDENT = frozenset(("nonzero", "unique_all", "unique_counts", "unique_inverse", "unique_values"))


def _call(f, name, args, kw):
    level = -1
    for a in itertools.chain(args, kw.values()):
        if type(a) is BatchTracer and a.level > level:
            level = a.level
    if name in _DATA_DEPENDENT:
        raise BatchedValueError(f"gradtape.vmap: gt.{name} of a batched tensor has a data-dependent shape per "
                                f"example; call it outside vmap, or use a fixed-size form (gt.where, gt.sort)")
    vals, batched, size = [], [], 0
    for a in args:
        if is_batched(a, level):
            size = a.val.shape[0]
            vals.append(a.val)
            batched.append(True)
        else:
            vals.append(a)
            batched.append(False)
    kw = dict(kw)
    if name in _ELEMENTWISE:
        out = f(*batching.align(vals, batched), **kw)
    elif name in ("argmax", "argmin"):
        out = _arg_extreme(f, vals[0], kw, size)
    elif name in ("argsort", "count_nonzero", "all", "any"):
        nd = vals[0].ndim - 1
        axis = kw.get("axis", -1 if name == "argsort" else None)
        kw["axis"] = batching.shift_axis(axis, nd) if name == "argsort" else batching.shift_axes(axis, nd)
        out = f(vals[0], **kw)
    elif name == "searchsorted":
        out = _searchsorted(f, vals, batched, kw, level, size)
    elif name == "isin":
        out = _isin(f, vals, batched, kw, size)
    else:
        raise NotImplementedError(f"gradtape.vmap: no batching rule for gt.{name}")
    return wrap_batched(out, level)


def _arg_extreme(f, x, kw, size):
    axis, keepdims = kw.get("axis"), kw.get("keepdims", False)
    nd = x.ndim - 1
    if axis is not None:
        return f(x, axis=batching.shift_axis(axis, nd), keepdims=keepdims)
    out = f(reshape(x, (size, -1)), axis=1)
    return reshape(out, (size,) + (1,) * nd) if keepdims else out


def _searchsorted(f, vals, batched, kw, level, size):
    """Per-example sorted sequences: the count of the elements before each value (left: <, right: <=)."""
    x1, x2 = vals
    sorter = kw.get("sorter")
    if not batched[0] and not is_batched(sorter, level):
        return f(x1, x2, **kw)
    x1 = x1 if batched[0] else unwrap(x1, level, size)
    if sorter is not None:
        x1 = take_along_axis(x1, unwrap(sorter, level, size), axis=1)
    x2 = x2 if batched[1] else unwrap(asarray(x2), level, size)
    nd = x2.ndim - 1
    a = reshape(x1, (size,) + (1,) * nd + (x1.shape[1],))
    v = reshape(x2, tuple(x2.shape) + (1,))
    hit = less(a, v) if kw.get("side", "left") == "left" else less_equal(a, v)
    return count_nonzero(hit, axis=-1)


def _isin(f, vals, batched, kw, size):
    x1, x2 = vals
    if not batched[1]:
        return f(x1, x2, **kw)
    x1 = x1 if batched[0] else broadcast_to(asarray(x1), (size,) + tuple(asarray(x1).shape))
    nd = x1.ndim - 1
    flat = reshape(x2, (size,) + (1,) * nd + (-1,))
    out = _any(equal(reshape(x1, tuple(x1.shape) + (1,)), flat), axis=-1)
    return logical_not(out) if kw.get("invert", False) else out


# ---- indices batched by vmap (gradtape._api.indexing hands them over) -------------------------------------------
_ALL = slice(None)


def _index(x, key, value, op):
    """x[key] (op "getitem"), or x with x[key] = value ("setitem") or += value ("index_add"), for a key holding
    an integer index batched by vmap."""
    return _get_at(x, key) if op == "getitem" else _write_at(x, key, value, op)


def _get_at(x, key):
    """x[key] for a key holding one integer index batched by gt.vmap (the other entries ints, slices, None,
    ``...``): a take of it along its axis from x[key with that entry a full slice], as NumPy lays it out."""
    ks = key if type(key) is tuple else (key,)
    pos = [i for i, k in enumerate(ks) if hasattr(k, "shape")]
    if any(not isinstance(ks[i], Tensor) or not ks[i].backend.xp.isdtype(ks[i].data.dtype, "integral") for i in pos):
        raise NotImplementedError("gradtape.getitem: inside gt.vmap, a key with an index batched by vmap takes integer "
                                  "tensors only (a boolean mask has a per-example size); use gt.where")
    if len(pos) > 1:
        return _get_at(*_linearized(x, ks, pos))
    idx = ks[pos[0]]
    rest = ks[:pos[0]] + (_ALL,) + ks[pos[0] + 1:]
    y = hooks.API.getitem(x, rest)
    a = 0                   # y's axis the index selects along: ints before it drop theirs, None adds one
    for k in ks[:pos[0]]:
        if k is Ellipsis:
            a += x.ndim - sum(1 for e in rest if e is not None and e is not Ellipsis)
        elif k is None or type(k) is slice:
            a += 1
    out = take(y, reshape(idx, (-1,)), axis=a)
    out = reshape(out, y.shape[:a] + idx.shape + y.shape[a + 1:])
    adv = [i for i, k in enumerate(ks) if i == pos[0] or (type(k) is not slice and k is not None and k is not Ellipsis)]
    if adv != list(range(adv[0], adv[0] + len(adv))) and idx.ndim:      # separated advanced indices: B in front
        n = idx.ndim
        out = permute_dims(out, tuple(range(a, a + n)) + tuple(range(a)) + tuple(range(a + n, out.ndim)))
    return out


def _linearized(x, ks, pos):
    """x[i, j, ...] (adjacent integer indices, the other entries full slices) as xm[lin] with xm's indexed axes
    merged into one and lin = (i * n_j + j) * ...: a key with one index."""
    if pos != list(range(pos[0], pos[0] + len(pos))) or any(
            not (type(k) is slice and k == _ALL) and k is not Ellipsis for i, k in enumerate(ks) if i not in pos):
        raise NotImplementedError("gradtape.getitem: inside gt.vmap, several integer indices (one of them batched by "
                                  "vmap) must be adjacent, the other entries full slices; use gt.take_along_axis")
    a = pos[0] if Ellipsis not in ks[:pos[0]] else x.ndim - (len(ks) - pos[0])
    sizes = x.shape[a:a + len(pos)]
    lin = None
    for i, n in zip(pos, sizes):
        k = where(ks[i] < 0, ks[i] + n, ks[i])
        lin = k if lin is None else lin * n + k
    xm = reshape(x, x.shape[:a] + (math.prod(sizes),) + x.shape[a + len(pos):])
    return xm, ks[:pos[0]] + (lin,) + ks[pos[-1] + 1:]


def _write_at(x, key, value, op):
    """x[..., idx, ...] = value (or += value) for an integer index batched by gt.vmap, the other entries full
    slices: scatter-adds along its axis. A position written twice by setitem gets the mean of its values."""
    ks = key if type(key) is tuple else (key,)
    pos = [i for i, k in enumerate(ks) if isinstance(k, Tensor) and type(k) is not Tensor]
    idx = ks[pos[0]]
    if len(pos) > 1 or any(not (type(k) is slice and k == _ALL) and k is not Ellipsis for i, k in enumerate(ks)
                           if i != pos[0]) or \
            not idx.backend.xp.isdtype(idx.data.dtype, "integral"):
        raise NotImplementedError(f"gradtape.{op}: inside gt.vmap, writing at an index batched by vmap needs a key "
                                  f"x[..., idx, ...] (one integer index, the other entries full slices); use "
                                  f"gt.take_add(z, idx, v, axis) (adds) or gt.where (selects)")
    a = pos[0] if Ellipsis not in ks[:pos[0]] else x.ndim - (len(ks) - pos[0])
    flat = reshape(idx, (-1,))
    rows = x.shape[:a] + (flat.shape[0],) + x.shape[a + 1:]
    v = value if isinstance(value, Tensor) else asarray(value, dtype=x.dtype, device=x.device)
    v = reshape(broadcast_to(v, x.shape[:a] + idx.shape + x.shape[a + 1:]), rows)
    if op == "index_add":
        return take_add(x, flat, v, a)
    z = zeros_like(x)
    count = take_add(z, flat, ones_like(v), a)
    hit = count > 0
    return where(hit, take_add(z, flat, v, a) / where(hit, count, 1.0), x)
