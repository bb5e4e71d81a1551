"""Graph IR: a function's operations as data, replayed on any backend, saved as JSON, drawn with Graphviz.

A :class:`Graph` is a list of :class:`Node` objects (an operation name, input
references, attributes, and the output's shape and dtype) with named inputs
and outputs. It is produced by tracing a function (:func:`trace`, exported as
``gt.trace``) or from a symbolic expression (``gt.trace(symbol, **inputs)``,
see :mod:`gradtape.sym`). Tracing a gradient function, ``gt.trace(gt.grad(f),
x)``, gives one graph holding the forward and the reverse pass (reverse-pass
nodes carry ``rev=True`` and are drawn apart).

Replay (``g(*args)``) does not go through the per-op Tensor dispatch: the
first call on a backend compiles the graph into one straight-line Python
function of pre-resolved backend calls (``sin(v3)``, ``v4 * 1.01``...), which
drops each intermediate value (``del``) right after its last use; later calls
on that backend reuse it. Constants are copied when traced (the graph is a
snapshot) and moved to the replay backend once.

Values are referenced by :class:`Ref`; in attributes, backend dtypes become
:class:`DTypeName`, backends :class:`DeviceName`, and raw arrays references to
the nodes that compute them (or constants), so nothing in a graph belongs to
one array library.
"""
from __future__ import annotations

import base64
import contextlib
import inspect
import json
import math
import os
import shutil
import subprocess
import threading

import numpy as np

from . import _core, _engine
from . import backends as _backends
from ._core import Primitive, Tensor, wrap
from ._namespace import DTYPES, DType, NONDIFF, _bdt, _dtype_name

__all__ = ["Graph", "Node", "Ref", "trace", "FORMAT_VERSION"]

FORMAT = "gradtape.graph"
FORMAT_VERSION = 1


# ---- value references and backend-neutral attribute values ---------------------------------------

class Ref:
    """A reference to the value of node ``i`` of a graph.

    >>> from gradtape.graph import Ref
    >>> Ref(3)
    %3
    """

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return f"%{self.i}"

    def __eq__(self, other):
        return type(other) is Ref and other.i == self.i

    def __hash__(self):
        return hash(("ref", self.i))


class DTypeName:
    """A dtype by its standard name (resolved to the replay backend's dtype object).

    >>> from gradtape.graph import DTypeName
    >>> DTypeName("float32")
    float32
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return type(other) is DTypeName and other.name == self.name

    def __hash__(self):
        return hash(("dtype", self.name))


class DeviceName:
    """A device by its gradtape name (resolved to a backend on replay).

    >>> from gradtape.graph import DeviceName
    >>> DeviceName("cpu")
    device('cpu')
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"device({self.name!r})"

    def __eq__(self, other):
        return type(other) is DeviceName and other.name == self.name

    def __hash__(self):
        return hash(("device", self.name))


class _Opaque:
    """A parameter value with no portable form (a Python callable...): replayable here, not savable."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"<{type(self.value).__name__}>"


def _walk_refs(v, out):
    """Append the node indices referenced anywhere in attribute value ``v`` to ``out``."""
    t = type(v)
    if t is Ref:
        out.append(v.i)
    elif t is tuple or t is list:
        for e in v:
            _walk_refs(e, out)
    elif t is dict:
        for e in v.values():
            _walk_refs(e, out)
    elif t is slice:
        _walk_refs(v.start, out)
        _walk_refs(v.stop, out)
        _walk_refs(v.step, out)


def _map_refs(v, f):
    """``v`` with every Ref r replaced by f(r)."""
    t = type(v)
    if t is Ref:
        return f(v)
    if t is tuple:
        return tuple(_map_refs(e, f) for e in v)
    if t is list:
        return [_map_refs(e, f) for e in v]
    if t is dict:
        return {k: _map_refs(e, f) for k, e in v.items()}
    if t is slice:
        return slice(_map_refs(v.start, f), _map_refs(v.stop, f), _map_refs(v.step, f))
    return v


# ---- nodes -------------------------------------------------------------------------------------------

class Node:
    """One value of a graph: an input, a constant, or an operation on earlier values.

    ``kind`` is ``"input"``, ``"const"``, ``"prim"`` (a differentiable
    primitive, ``op`` its name), ``"fn"`` (a non-differentiable array API
    function of the backend, ``op`` its name) or ``"item"`` (element
    ``attrs["k"]`` of a tuple-valued node). ``inputs`` holds :class:`Ref`
    objects and Python scalars; ``attrs`` the primitive's parameters.
    ``shape``/``dtype`` describe the output (``multi`` lists (shape, dtype)
    pairs for a tuple-valued node); ``rev`` marks reverse-pass nodes.

    >>> import gradtape as gt
    >>> g = gt.trace(lambda x: gt.sin(x) * 2.0, gt.ones(3))
    >>> [(n.kind, n.op) for n in g.nodes]
    [('input', 'x'), ('prim', 'sin'), ('prim', 'multiply')]
    >>> g.nodes[2].inputs, g.nodes[2].shape, g.nodes[2].dtype
    ((%1, 2.0), (3,), 'float64')
    """

    __slots__ = ("kind", "op", "prim", "inputs", "attrs", "shape", "dtype", "multi", "rev", "value", "bk",
                 "device")

    def __init__(self, kind, op, inputs=(), attrs=None, shape=None, dtype=None, multi=None, rev=False,
                 prim=None, value=None, bk=None, device=None):
        self.kind = kind
        self.op = op
        self.prim = prim
        self.inputs = tuple(inputs)
        self.attrs = attrs or {}
        self.shape = shape
        self.dtype = dtype
        self.multi = multi
        self.rev = rev
        self.value = value      # const: the raw array (of backend bk) or a NumPy array
        self.bk = bk
        self.device = device    # where the value lives, when not on the device the graph was traced on

    def deps(self):
        """Indices of the nodes this one reads, in order (repeats kept).

        >>> import gradtape as gt
        >>> g = gt.trace(lambda x: x * x, gt.ones(2))
        >>> g.nodes[1].deps()
        [0, 0]
        """
        out = []
        _walk_refs(self.inputs, out)
        _walk_refs(self.attrs, out)
        return out

    def __repr__(self):
        args = ", ".join(repr(a) for a in self.inputs)
        if self.attrs:
            args += ("; " if args else "") + ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"<Node {self.kind} {self.op}({args}) -> {_fmt_type(self)}{' rev' if self.rev else ''}>"


def _fmt_type(n):
    if n.multi is not None:
        return "(" + ", ".join(f"{_fmt_shape(s)} {d}" for s, d in n.multi) + ")"
    if n.shape is None and n.dtype is None:
        return "?"
    return f"{_fmt_shape(n.shape)} {n.dtype or '?'}"


def _fmt_shape(s):
    if s is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _np_value(n):
    """A const node's value as a NumPy array."""
    if isinstance(n.value, np.ndarray):
        return n.value
    return np.asarray(n.bk.to_numpy(n.value))


# ---- primitives by name ------------------------------------------------------------------------------

def _registry():
    from . import _prims
    reg = dict(_prims.PRIMS)
    reg["select"] = _core._SELECT
    return reg


def _prim_by_name(name):
    p = _registry().get(name)
    if p is None and name.startswith("concat") and name[6:].isdigit():
        from ._shape import _concat_prim
        p = _concat_prim(int(name[6:]))
    return p


# ---- tracing -----------------------------------------------------------------------------------------

def _is_raw_dtype(v):
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return True
    t = type(v)
    return t.__name__ == "DType" and t.__module__.startswith("array_api_strict")


def _dtype_str(d):
    return _dtype_name(d)


_FNS = frozenset(NONDIFF) | {"astype"}      # the backend functions a loaded graph may call


class _Tracer:
    """The TRACE hook: turns every op the traced function runs into a node."""

    def __init__(self, prev):
        self.nodes = []
        self.by_tensor = {}     # id(Tensor) -> node index
        self.by_data = {}       # id(raw array) -> node index (tensors made around the same array alias it)
        self.keep = []          # everything whose id is a key above stays alive while tracing
        self.consts = set()     # indices of constant nodes
        self.rev = 0            # > 0 while a reverse pass runs
        self.prev = prev
        self.thread = threading.get_ident()

    # -- values
    def _add(self, node):
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _bind(self, t, i):
        self.by_tensor[id(t)] = i
        self.by_data.setdefault(id(t.data), i)
        self.keep.append(t)

    def add_input(self, name, t):
        i = self._add(Node("input", name, shape=tuple(t.data.shape), dtype=_dtype_str(t.data.dtype),
                           device=t._bk.device))
        self._bind(t, i)
        return i

    def add_const(self, raw, bk):
        n = Node("const", "const", shape=tuple(raw.shape), dtype=_dtype_str(raw.dtype), value=raw, bk=bk,
                 device=bk.device)
        i = self._add(n)
        self.consts.add(i)
        self.by_data[id(raw)] = i
        self.keep.append(raw)
        return i

    def lookup(self, t):
        i = self.by_tensor.get(id(t))
        if i is None:
            i = self.by_data.get(id(t.data))
            if i is None:      # made outside the traced ops (creation functions, closures): a constant
                i = self.add_const(t.data, t._bk)
            self.by_tensor[id(t)] = i
            self.keep.append(t)
        return i

    def norm(self, v):
        """A backend-neutral form of an argument or parameter value."""
        t = type(v)
        if t is Tensor or isinstance(v, Tensor):
            return Ref(self.lookup(v))
        if t in (bool, int, float, complex, str) or v is None or v is Ellipsis:
            return v
        if t is tuple or t is list:
            return t(self.norm(e) for e in v)
        if isinstance(v, tuple):           # a namedtuple: a plain tuple
            return tuple(self.norm(e) for e in v)
        if t is dict:
            return {k: self.norm(e) for k, e in v.items()}
        if t is slice:
            return slice(self.norm(v.start), self.norm(v.stop), self.norm(v.step))
        if t is DType:
            return DTypeName(v.name)
        if isinstance(v, _backends.Backend):
            return DeviceName(v.device)
        if _is_raw_dtype(v):
            return DTypeName(_dtype_str(v))
        if isinstance(v, (bool, int, float, complex, np.generic)) and not hasattr(v, "shape"):
            return v
        bk = _backends.backend_of(v) if hasattr(v, "shape") and hasattr(v, "dtype") else None
        if bk is not None:                 # a raw array (an index key...): the node computing it, or a constant
            i = self.by_data.get(id(v))
            if i is None:
                i = self.add_const(v, bk)
            return Ref(i)
        if isinstance(v, (np.generic,)):
            return v
        return _Opaque(v)

    # -- the hook
    def __call__(self, op, args, params, out):
        if self.prev is not None:
            self.prev(op, args, params, out)
        if threading.get_ident() != self.thread:
            return
        ins = tuple(self.norm(a) for a in args)
        attrs = {k: self.norm(v) for k, v in (params or {}).items()}
        if not isinstance(op, Primitive):      # dtypes given by name: resolved per backend too
            if op == "astype" and len(ins) > 1 and type(ins[1]) is str and ins[1] in DTYPES:
                ins = (ins[0], DTypeName(ins[1])) + ins[2:]
            if type(attrs.get("dtype")) is str and attrs["dtype"] in DTYPES:
                attrs["dtype"] = DTypeName(attrs["dtype"])
        deps = []
        _walk_refs(ins, deps)
        _walk_refs(attrs, deps)
        if all(d in self.consts for d in deps):
            return          # constant folding: nothing here depends on an input (looked up later as a constant)
        if isinstance(op, Primitive):
            node = Node("prim", op.name, ins, attrs, rev=self.rev > 0, prim=op)
        else:
            node = Node("fn", op, ins, attrs, rev=self.rev > 0)
        outs = out if isinstance(out, (tuple, list)) else None
        first = out if outs is None else next((o for o in outs if isinstance(o, Tensor)), None)
        if isinstance(op, Primitive) and op.name == "to_device":
            node.device = params["dst"].device      # (to_device sets the result's backend after the hook)
        elif isinstance(first, Tensor):
            node.device = first._bk.device
        if outs is None and isinstance(out, Tensor) and isinstance(out.data, (tuple, list)):
            node.multi = [(tuple(d.shape), _dtype_str(d.dtype)) for d in out.data]
        elif outs is None:
            if not isinstance(out, Tensor):
                return      # a Python value (not an array): nothing to record
            node.shape, node.dtype = tuple(out.data.shape), _dtype_str(out.data.dtype)
        else:
            node.multi = [(tuple(o.data.shape), _dtype_str(o.data.dtype)) if isinstance(o, Tensor) else ((), "?")
                          for o in outs]
        i = self._add(node)
        if outs is None:
            self._bind(out, i)
            return
        for k, o in enumerate(outs):       # a tuple of results: one item node each
            if isinstance(o, Tensor):
                j = self._add(Node("item", "item", (Ref(i),), {"k": k}, shape=tuple(o.data.shape),
                                   dtype=_dtype_str(o.data.dtype), rev=node.rev, device=o._bk.device))
                self._bind(o, j)

    def norm_out(self, v):
        if isinstance(v, Tensor):
            return Ref(self.lookup(v))
        if isinstance(v, (tuple, list)):
            return type(v)(self.norm_out(e) for e in v) if type(v) in (tuple, list) else \
                tuple(self.norm_out(e) for e in v)
        if isinstance(v, dict):
            return {k: self.norm_out(e) for k, e in v.items()}
        if v is None or isinstance(v, (bool, int, float, complex, str)):
            return v
        raise TypeError(f"gradtape.trace: the function returned a {type(v).__name__}; a traced function must "
                        f"return tensors (or tuples, lists or dicts of them)")


@contextlib.contextmanager
def _traced_reverse(tracer):
    """While tracing, run reverse passes with their rules on tensors (create_graph), so they are traced too."""
    orig = _engine.run

    def run(roots, heads, *args, **kw):
        if threading.get_ident() != tracer.thread:
            return orig(roots, heads, *args, **kw)
        heads = [h if h is None or isinstance(h, Tensor) else wrap(h, r._bk) for r, h in zip(roots, heads)]
        if len(args) >= 2:
            args = (args[0], True) + tuple(args[2:])
        else:
            kw["create_graph"] = True
        tracer.rev += 1
        try:
            return orig(roots, heads, *args, **kw)
        finally:
            tracer.rev -= 1
    _engine.run = run
    try:
        yield
    finally:
        _engine.run = orig


def _is_array_arg(a):
    if isinstance(a, Tensor):
        return True
    if isinstance(a, (bool, int, float, complex, str)) or a is None:
        return False
    return hasattr(a, "shape") and hasattr(a, "dtype") and _backends.backend_of(a) is not None


def _placeholder(a):
    from ._namespace import asarray
    x = a if isinstance(a, Tensor) else asarray(a)
    t = wrap(x.data, x._bk)
    if x._rg:        # keep the example's grad state, so backward() inside f has a leaf to write to
        t._rg = True
        t._req = x._req if x._node is None else None
    return t


def _arg_names(f, n):
    try:
        ps = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        ps = []
    names = []
    for p in ps:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            break
    if len(names) < n:
        names = names + [("x" if n == 1 else f"x{i}") for i in range(len(names), n)]
    return names[:n]


def trace(f, *args, **kwargs):
    """Record the operations ``f(*args, **kwargs)`` runs into a :class:`Graph`.

    Array arguments (tensors, NumPy/CuPy/array-api-strict arrays) become the
    graph's named inputs (named after ``f``'s parameters); other arguments
    (Python numbers, strings...) are fixed at trace time, as is every
    data-dependent Python decision (``if``/``while`` on tensor values, shapes)
    and the positions a boolean mask selects (``x[x > 0]``): the graph holds
    the path the example took. Calling the graph with inputs of other shapes
    or dtypes than the example's is an error (trace again). Tensors ``f``
    reads from outside (closures), makes with creation functions (``gt.zeros``,
    random numbers) or computes outside gradtape's operations (through NumPy
    on ``.data``) become constants, copied when traced. Gradients taken inside
    ``f`` (``gt.grad``, ``gt.vjp``, ``backward()``...) are traced too, so
    ``trace(gt.grad(f), x)`` is one graph with the forward and the reverse
    pass. ``f`` may also be a :class:`gradtape.sym.Symbol`, with its variables
    given by name.

    The graph replays on the backend its inputs come from, without the
    per-op dispatch; its results do not require grad. Tracing watches every
    op of the calling thread, so trace one function at a time per thread.

    >>> import gradtape as gt
    >>> f = lambda x: gt.sum(gt.sin(x) ** 2)
    >>> g = gt.trace(gt.grad(f), gt.asarray([0.5, 1.0]))
    >>> g
    <Graph grad(<lambda>)(x: (2,) float64) -> (out: (2,) float64), 8 nodes>
    >>> x = gt.asarray([0.1, 0.2])
    >>> bool(gt.all(gt.abs(g(x) - gt.grad(f)(x)) < 1e-15))
    True
    """
    from . import sym as _sym
    if isinstance(f, _sym.Symbol):
        return _sym._trace_symbol(f, args, kwargs)
    tracer = _Tracer(_core.TRACE)
    names = _arg_names(f, len(args))
    call_args, layout = [], []
    home = None
    for name, a in zip(names, args):
        if _is_array_arg(a):
            t = _placeholder(a)
            home = home or t._bk.device
            layout.append(Ref(tracer.add_input(name, t)))
            call_args.append(t)
        else:
            layout.append(("static", a))
            call_args.append(a)
    call_kw, kw_layout = {}, {}
    for name, a in kwargs.items():
        if _is_array_arg(a):
            t = _placeholder(a)
            home = home or t._bk.device
            kw_layout[name] = Ref(tracer.add_input(name, t))
            call_kw[name] = t
        else:
            kw_layout[name] = ("static", a)
            call_kw[name] = a
    _core.TRACE = tracer
    try:
        with _traced_reverse(tracer):
            out = f(*call_args, **call_kw)
        tree = tracer.norm_out(out)
    finally:
        _core.TRACE = tracer.prev
    name = getattr(f, "__name__", None) or type(f).__name__
    g = Graph._build(tracer.nodes, tree, layout, kw_layout, name=name, home=home)
    for n in g.nodes:
        if n.device == home:        # on the device traced on: follows the replay device
            n.device = None
    for n in g.nodes:            # the graph is a snapshot: constants are copied
        if n.kind == "const":
            n.value = n.bk.asarray(n.value, copy=True)
    return g


# ---- the graph -----------------------------------------------------------------------------------------

class Graph:
    """A computation graph: nodes (op, inputs, attributes), named inputs and outputs.

    Build one with :func:`gradtape.trace` (``gt.trace``) or load one with
    :meth:`Graph.load`. ``g(*args)`` replays it on the backend of its inputs;
    ``g.to_dot()``/``g.render(path)`` draw it; ``g.save(path)`` writes JSON.

    >>> import gradtape as gt
    >>> g = gt.trace(lambda a, b: 2 * a + b, gt.ones((2, 1)), gt.ones((2, 1)))
    >>> g.inputs, g.outputs
    (('a', 'b'), ('out',))
    >>> g(gt.ones((2, 1)), gt.zeros((2, 1)))
    Tensor([[2.],
            [2.]])
    """

    def __init__(self, nodes, inputs, outputs, *, name="graph", layout=None, kw_layout=None, home=None):
        self.nodes = list(nodes)
        self.name = name
        self._tree = outputs                   # output structure with Refs at the leaves
        self._in = list(inputs)                # node indices of the inputs, in order
        self._layout = list(layout) if layout is not None else [Ref(i) for i in self._in]
        self._kw_layout = dict(kw_layout or {})
        self._home = home                      # the device it was traced on
        self._plans = {}
        self._check()
        # calls whose arguments are exactly the inputs, in order, skip the binding step
        self._arity = len(self._in) if self._layout == [Ref(i) for i in self._in] and not self._kw_layout else -1

    # -- construction
    @classmethod
    def _build(cls, nodes, tree, layout, kw_layout, name, home):
        """Keep the inputs and the nodes an output depends on, renumbered in order."""
        out_refs = []
        _walk_refs(tree, out_refs)
        need = set(out_refs)
        for i in range(len(nodes) - 1, -1, -1):
            if i in need:
                need.update(nodes[i].deps())
        keep = [i for i, n in enumerate(nodes) if i in need or n.kind == "input"]
        new = {old: k for k, old in enumerate(keep)}
        remap = lambda r: Ref(new[r.i])  # noqa: E731
        out = []
        for old in keep:
            n = nodes[old]
            n.inputs = _map_refs(n.inputs, remap)
            n.attrs = _map_refs(n.attrs, remap)
            out.append(n)
        inputs = [new[i] for i, n in enumerate(nodes) if n.kind == "input"]
        return cls(out, inputs, _map_refs(tree, remap), name=name, layout=_map_refs(layout, remap),
                   kw_layout=_map_refs(kw_layout, remap), home=home)

    def _check(self):
        for i, n in enumerate(self.nodes):
            for d in n.deps():
                if not 0 <= d < i:
                    raise ValueError(f"gradtape.Graph: node {i} ({n.op}) reads node {d}, which is not an earlier "
                                     f"node of the graph (0..{i - 1})")
            if n.kind == "prim" and n.prim is None:
                n.prim = _prim_by_name(n.op)
                if n.prim is None:
                    raise ValueError(f"gradtape.Graph: node {i} uses the unknown primitive {n.op!r} (not in this "
                                     f"gradtape's registry, gradtape._prims.PRIMS)")
        refs = []
        _walk_refs(self._tree, refs)
        for r in refs:
            if not 0 <= r < len(self.nodes):
                raise ValueError(f"gradtape.Graph: an output reads node {r}, but the graph has {len(self.nodes)} nodes")
        for i in self._in:
            if not 0 <= i < len(self.nodes) or self.nodes[i].kind != "input":
                raise ValueError(f"gradtape.Graph: input reference {i} is not an input node")
        if sorted(self._in) != [i for i, n in enumerate(self.nodes) if n.kind == "input"]:
            raise ValueError("gradtape.Graph: the input list does not name every input node exactly once")

    # -- description
    @property
    def inputs(self):
        """Names of the inputs, in order.

        >>> import gradtape as gt
        >>> gt.trace(lambda x, y: x * y, gt.ones(2), gt.ones(2)).inputs
        ('x', 'y')
        """
        return tuple(self.nodes[i].op for i in self._in)

    @property
    def outputs(self):
        """Names of the outputs (``out``, or ``out0``, ``out1``... in the order the function returns them).

        >>> import gradtape as gt
        >>> gt.trace(lambda x: (x, 2 * x), gt.ones(2)).outputs
        ('out0', 'out1')
        """
        refs = self._out_refs()
        if len(refs) == 1 and type(self._tree) is Ref:
            return ("out",)
        return tuple(f"out{k}" for k in range(len(refs)))

    def _out_refs(self):
        refs = []
        _walk_refs(self._tree, refs)
        return refs

    def input_types(self):
        """``{name: (shape, dtype)}`` of the inputs, as traced.

        >>> import gradtape as gt
        >>> gt.trace(lambda x: x + 1, gt.ones((2, 3))).input_types()
        {'x': ((2, 3), 'float64')}
        """
        return {self.nodes[i].op: (self.nodes[i].shape, self.nodes[i].dtype) for i in self._in}

    def __len__(self):
        return len(self.nodes)

    def __repr__(self):
        ins = ", ".join(f"{self.nodes[i].op}: {_fmt_type(self.nodes[i])}" for i in self._in)
        outs = ", ".join(f"{n}: {_fmt_type(self.nodes[r])}" for n, r in zip(self.outputs, self._out_refs()))
        return f"<Graph {self.name}({ins}) -> ({outs}), {len(self.nodes)} nodes>"

    def __str__(self):
        lines = [repr(self)]
        for i, n in enumerate(self.nodes):
            if n.kind == "input":
                rhs = f"input {n.op!r}"
            elif n.kind == "const":
                rhs = "const"
            else:
                args = [repr(a) for a in n.inputs] + [f"{k}={v!r}" for k, v in n.attrs.items()]
                rhs = f"{n.op}({', '.join(args)})"
            lines.append(f"  %{i} = {rhs}  # {_fmt_type(n)}{'  (reverse)' if n.rev else ''}")
        lines.append("  return " + ", ".join(f"{n}=%{r}" for n, r in zip(self.outputs, self._out_refs())))
        return "\n".join(lines)

    # -- replay
    def __call__(self, *args, **kwargs):
        """Replay on the backend the inputs come from; results are tensors that do not require grad.

        >>> import gradtape as gt
        >>> g = gt.trace(lambda x: gt.exp(x), gt.zeros(2))
        >>> g(gt.asarray([0.0, 1.0]))
        Tensor([1.        , 2.71828183])
        """
        vals = args if not kwargs and len(args) == self._arity else self._bind(args, kwargs)
        bk = None
        raws = []
        for v in vals:
            if type(v) is Tensor:
                b, r = v._bk, v.data
            else:
                b = _backends.backend_of(v) if hasattr(v, "shape") else None
                r = v
                if b is None:
                    b = bk or _backends.get(_core.default_device())
                    r = b.asarray(v)
            if bk is None:
                bk = b
            elif b is not bk:
                raise TypeError(f"gradtape.Graph {self.name}: inputs live on different backends or devices "
                                f"({bk.device!r} and {b.device!r}); move them to one device first")
            raws.append(r)
        if bk is None:
            bk = _backends.get(_core.default_device())
        plan = self._plans.get(bk)
        if plan is None:
            plan = self._plans[bk] = _Plan(self, bk)
        for r, shape, dt in zip(raws, plan.shapes, plan.dtypes):
            if r.shape != shape or r.dtype != dt:
                self._type_error(raws)
        return plan.post(plan.fn(*raws))

    def _type_error(self, raws):
        for i, r in zip(self._in, raws):
            n = self.nodes[i]
            if tuple(r.shape) != n.shape:
                raise ValueError(f"gradtape.Graph {self.name}: input {n.op!r} has shape {tuple(r.shape)}, but the "
                                 f"graph was traced with shape {n.shape}; shapes (and the Python control flow "
                                 f"that depended on them) are fixed at trace time: trace again for this shape")
            if _dtype_str(r.dtype) != n.dtype:
                raise TypeError(f"gradtape.Graph {self.name}: input {n.op!r} has dtype {_dtype_str(r.dtype)}, but "
                                f"the graph was traced with {n.dtype}; cast it or trace again")

    def _bind(self, args, kwargs):
        """Map a call's arguments to input values (checking fixed arguments)."""
        vals = [None] * len(self._in)
        pos = {i: k for k, i in enumerate(self._in)}
        names = {self.nodes[i].op: k for k, i in enumerate(self._in)}
        if len(args) > len(self._layout):
            raise TypeError(f"gradtape.Graph {self.name}: takes {len(self._layout)} positional arguments, got "
                            f"{len(args)}")
        for k, (slot, a) in enumerate(zip(self._layout, args)):
            if type(slot) is Ref:
                vals[pos[slot.i]] = a
            elif not _same_static(slot[1], a):
                raise ValueError(f"gradtape.Graph {self.name}: positional argument {k} was {slot[1]!r} when traced "
                                 f"(fixed in the graph), got {a!r}; trace again for another value")
        for key, a in kwargs.items():
            slot = self._kw_layout.get(key)
            if slot is None:
                if key not in names:
                    raise TypeError(f"gradtape.Graph {self.name}: unknown argument {key!r}; inputs are "
                                    f"{list(self.inputs)}")
                vals[names[key]] = a
            elif type(slot) is Ref:
                vals[pos[slot.i]] = a
            elif not _same_static(slot[1], a):
                raise ValueError(f"gradtape.Graph {self.name}: argument {key!r} was {slot[1]!r} when traced "
                                 f"(fixed in the graph), got {a!r}; trace again for another value")
        missing = [self.nodes[i].op for i, v in zip(self._in, vals) if v is None]
        if missing:
            raise TypeError(f"gradtape.Graph {self.name}: missing input(s) {missing}; the graph takes "
                            f"{', '.join(f'{n}: {_fmt_type(self.nodes[i])}' for n, i in zip(self.inputs, self._in))}")
        return vals

    def plan_source(self, device=None):
        """The Python source the graph compiles to on ``device`` (default: the default device).

        >>> import gradtape as gt
        >>> print(gt.trace(lambda x: gt.sin(x) * 2.0, gt.ones(2)).plan_source())
        def replay(v0):
            v1 = sin(v0)
            del v0
            v2 = v1 * 2.0
            del v1
            return (v2,)
        """
        bk = _backends.get(device or _core.default_device())
        plan = self._plans.get(bk)
        if plan is None:
            plan = self._plans[bk] = _Plan(self, bk)
        return plan.source

    # -- JSON
    def to_json(self):
        """The graph as a JSON string (see :meth:`save`).

        >>> import gradtape as gt, json
        >>> d = json.loads(gt.trace(lambda x: x + 1.0, gt.ones(2)).to_json())
        >>> d["format"], d["version"], [n["op"] for n in d["nodes"]]
        ('gradtape.graph', 1, ['x', 'add'])
        """
        return json.dumps(self._to_dict(), allow_nan=False, separators=(",", ":"))

    def _to_dict(self):
        nodes = []
        for i, n in enumerate(self.nodes):
            if n.kind == "prim":
                reg = _prim_by_name(n.op)
                if reg is not n.prim:
                    raise ValueError(f"gradtape.Graph.save: node {i} uses primitive {n.op!r}, which is not in the "
                                     f"registry (a custom_vjp or other locally made primitive), so it cannot be "
                                     f"saved; the graph still replays in this process")
            if n.kind == "fn" and n.op not in _FNS:
                raise ValueError(f"gradtape.Graph.save: node {i} calls {n.op!r}, which a saved graph may not call "
                                 f"(allowed: the non-differentiable array API functions)")
            d = {"kind": n.kind, "op": n.op}
            if n.inputs:
                d["in"] = [_enc(a, f"node {i} ({n.op}) input") for a in n.inputs]
            if n.attrs:
                d["attrs"] = {k: _enc(v, f"node {i} ({n.op}) attribute {k!r}") for k, v in n.attrs.items()}
            if n.multi is not None:
                d["multi"] = [[list(s), dt] for s, dt in n.multi]
            else:
                d["shape"] = None if n.shape is None else list(n.shape)
                d["dtype"] = n.dtype
            if n.rev:
                d["rev"] = True
            if n.device is not None:
                d["device"] = n.device
            if n.kind == "const":
                d["value"] = _enc_array(_np_value(n))
            nodes.append(d)
        return {"format": FORMAT, "version": FORMAT_VERSION, "gradtape": _gt_version(), "name": self.name,
                "home": self._home, "inputs": list(self._in),
                "args": [_enc(s, "argument") if type(s) is Ref else {"$": "static", "v": _enc(s[1], "argument")}
                         for s in self._layout],
                "kwargs": {k: (_enc(s, "argument") if type(s) is Ref else {"$": "static", "v": _enc(s[1], "argument")})
                           for k, s in self._kw_layout.items()},
                "outputs": _enc(self._tree, "output"), "nodes": nodes}

    def save(self, path):
        """Write the graph to ``path`` as versioned JSON (no pickle; constants exact, as base64 bytes).

        >>> import gradtape as gt, os, tempfile
        >>> g = gt.trace(lambda x: gt.sin(x) * gt.asarray([1.0, 2.0]), gt.ones(2))
        >>> p = os.path.join(tempfile.mkdtemp(), "g.json")
        >>> g.save(p); h = gt.Graph.load(p)
        >>> bool(gt.all(h(gt.ones(2)) == g(gt.ones(2))))
        True
        """
        text = self.to_json()
        with open(os.fspath(path), "w", encoding="utf-8") as fh:
            fh.write(text)

    @classmethod
    def from_json(cls, text):
        """A graph from :meth:`to_json`'s string; anything malformed is a ``ValueError`` saying what.

        >>> import gradtape as gt
        >>> g = gt.Graph.from_json(gt.trace(lambda x: x * 3.0, gt.ones(2)).to_json())
        >>> g(gt.ones(2))
        Tensor([3., 3.])
        """
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
            raise ValueError(f"gradtape.Graph.load: not a JSON document ({e})") from None
        return cls._from_dict(d)

    @classmethod
    def load(cls, path):
        """Read a graph written by :meth:`save`.

        A file that is not a gradtape graph, is malformed, names an unknown
        primitive or comes from a newer format version is a ``ValueError``.

        >>> import gradtape as gt, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "g.json")
        >>> gt.trace(lambda x: x @ x, gt.ones(3)).save(p)
        >>> gt.Graph.load(p)(gt.ones(3))
        Tensor(3.)
        """
        with open(os.fspath(path), "rb") as fh:
            raw = fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"gradtape.Graph.load: {os.fspath(path)!r} is not UTF-8 text ({e})") from None
        return cls.from_json(text)

    @classmethod
    def _from_dict(cls, d):
        where = "gradtape.Graph.load"
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{where}: not a gradtape graph (expected a JSON object with \"format\": \"{FORMAT}\")")
        ver = d.get("version")
        if type(ver) is not int or ver < 1:
            raise ValueError(f"{where}: malformed graph: \"version\" must be a positive integer, got {ver!r}")
        if ver > FORMAT_VERSION:
            raise ValueError(f"{where}: the graph has format version {ver} (written by gradtape "
                             f"{d.get('gradtape', '?')}), newer than this gradtape reads ({FORMAT_VERSION}); "
                             f"upgrade gradtape")
        try:
            raw_nodes = d["nodes"]
            if not isinstance(raw_nodes, list):
                raise ValueError("\"nodes\" must be a list")
            nodes = []
            for i, nd in enumerate(raw_nodes):
                nodes.append(_dec_node(nd, i))
            inputs = d["inputs"]
            if not isinstance(inputs, list) or not all(type(i) is int for i in inputs):
                raise ValueError("\"inputs\" must be a list of node indices")
            layout = None if "args" not in d else \
                [_dec(s) if not (isinstance(s, dict) and s.get("$") == "static") else ("static", _dec(s["v"]))
                 for s in _list(d["args"])]
            kw = d.get("kwargs", {})
            if not isinstance(kw, dict):
                raise ValueError("\"kwargs\" must be an object")
            kw_layout = {k: (_dec(s) if not (isinstance(s, dict) and s.get("$") == "static")
                             else ("static", _dec(s["v"]))) for k, s in kw.items()}
            tree = _dec(d["outputs"])
            name = d.get("name", "graph")
            home = d.get("home")
            for i in inputs:
                if not 0 <= i < len(nodes):
                    raise ValueError(f"input reference {i} is out of range")
            if home is not None and not isinstance(home, str):
                raise ValueError(f"\"home\" must be a device name, got {home!r}")
            for s in (layout or []) + list(kw_layout.values()):
                if type(s) is Ref and s.i not in inputs:
                    raise ValueError(f"argument reference {s.i} is not an input")
        except ValueError as e:
            raise ValueError(f"{where}: malformed graph: {e}") from None
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            raise ValueError(f"{where}: malformed graph: missing or ill-typed field ({type(e).__name__}: {e})") \
                from None
        try:
            return cls(nodes, inputs, tree, name=name, layout=layout, kw_layout=kw_layout, home=home)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    # -- pictures
    def to_dot(self):
        """Graphviz DOT text: inputs, operations and outputs labelled with shapes and dtypes.

        Inputs are blue ellipses, constants grey notes, forward operations
        boxes, reverse-pass operations red boxes, outputs green ellipses.

        >>> import gradtape as gt
        >>> print(gt.trace(lambda x: gt.sin(x), gt.ones(2)).to_dot())  # doctest: +ELLIPSIS
        digraph "<lambda>" {
        ...
          n0 [label="x\\n(2,) float64", ...];
          n1 [label="sin\\n(2,) float64", ...];
          o0 [label="out\\n(2,) float64", ...];
          n0 -> n1;
          n1 -> o0;
        }
        """
        items, edges = [], []
        for i, n in enumerate(self.nodes):
            if n.kind == "input":
                items.append((f"n{i}", [n.op, _fmt_type(n)], "input"))
            elif n.kind == "const":
                items.append((f"n{i}", ["const", _fmt_type(n)], "const"))
            else:
                items.append((f"n{i}", _op_label(n.op if n.kind != "item" else f"item {n.attrs.get('k')}",
                                                 n.inputs) + [_fmt_type(n)], "rev" if n.rev else "op"))
            for d in n.deps():
                edges.append((f"n{d}", f"n{i}"))
        for k, (name, r) in enumerate(zip(self.outputs, self._out_refs())):
            items.append((f"o{k}", [name, _fmt_type(self.nodes[r])], "output"))
            edges.append((f"n{r}", f"o{k}"))
        return dot_source(self.name, items, edges)

    def render(self, path, format=None):
        """Draw the graph to ``path`` (SVG, PNG, PDF... from the suffix, or ``format``) with Graphviz.

        ``.dot``/``.gv`` writes the DOT text itself; the other formats need
        Graphviz's ``dot`` program (Debian/Ubuntu package ``graphviz``).

        >>> import gradtape as gt, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "g.dot")
        >>> gt.trace(lambda x: gt.sin(x), gt.ones(2)).render(p)
        >>> open(p).read().startswith("digraph")
        True
        """
        render_dot(self.to_dot(), path, format)

    def _repr_svg_(self):
        """SVG for notebooks (None where Graphviz's ``dot`` is not installed).

        >>> import gradtape as gt, shutil
        >>> svg = gt.trace(lambda x: x * 2.0, gt.ones(2))._repr_svg_()
        >>> svg is None or "<svg" in svg
        True
        """
        return dot_to_svg(self.to_dot())


def _gt_version():
    from . import __version__
    return __version__


def _same_static(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return a is b


# ---- replay plans ---------------------------------------------------------------------------------------

_BINOPS = {"+": lambda xp, x, y: x + y, "-": lambda xp, x, y: x - y, "*": lambda xp, x, y: x * y,
           "/": lambda xp, x, y: x / y, "**": lambda xp, x, y: x ** y, "@": lambda xp, x, y: x @ y}
_UNOPS = {"-": lambda xp, x: -x, "+": lambda xp, x: +x}
_CALL1 = (lambda xp, x: xp.sin(x)).__code__
_CALL2 = (lambda xp, x, y: xp.pow(x, y)).__code__


def _same_code(f, template):
    c = getattr(f, "__code__", None)
    return (c is not None and c.co_code == template.co_code and c.co_argcount == template.co_argcount
            and c.co_consts == template.co_consts and not c.co_freevars and not c.co_kwonlyargcount)


def _template(prim):
    """A direct expression for a primitive whose forward is one operator or one ``xp.NAME(...)`` call."""
    f = prim.fwd
    for op, t in _BINOPS.items():
        if _same_code(f, t.__code__) and not f.__code__.co_names:
            return ("bin", op)
    for op, t in _UNOPS.items():
        if _same_code(f, t.__code__) and not f.__code__.co_names:
            return ("un", op)
    if _same_code(f, _CALL1) and len(f.__code__.co_names) == 1:
        return ("call", f.__code__.co_names[0])
    if _same_code(f, _CALL2) and len(f.__code__.co_names) == 1:
        return ("call", f.__code__.co_names[0])
    return None


class _Plan:
    """One graph compiled for one backend: a straight-line function of backend calls.

    Every node runs on its own backend: the replay backend, unless the traced
    function moved data (``to_device``); devices other than the one traced on
    stay as they were."""

    def __init__(self, graph, bk):
        self.bk = bk
        g = {"xp": bk.xp, "__builtins__": {}, "slice": slice}
        names = {}

        def glob(value, hint="K"):
            name = f"{hint}{len(g)}"
            g[name] = value
            return name

        home = graph._home

        def dev(name):
            if name is None or (home is not None and name == home):
                return bk
            return _backends.get(name)

        def fn_name(b, fname):
            """A global bound to b.xp.<fname> (the bare name where free: sin(v3) reads better)."""
            key = (b, fname)
            if key not in names:
                fn = getattr(b.xp, fname)
                names[key] = fname if fname not in g else glob(fn, "F")
                g[names[key]] = fn
            return names[key]

        def expr(v, b):
            t = type(v)
            if t is Ref:
                n = graph.nodes[v.i]
                return consts[v.i] if n.kind == "const" else f"v{v.i}"
            if v is None:
                return "None"
            if v is Ellipsis:
                return "..."
            if t is bool or t is str or t is int:
                return repr(v)
            if t is float:
                return repr(v) if math.isfinite(v) else glob(v)
            if t is tuple:
                return "(" + ", ".join(expr(e, b) for e in v) + ("," if len(v) == 1 else "") + ")"
            if t is list:
                return "[" + ", ".join(expr(e, b) for e in v) + "]"
            if t is dict:
                return "{" + ", ".join(f"{k!r}: {expr(e, b)}" for k, e in v.items()) + "}"
            if t is slice:
                return f"slice({expr(v.start, b)}, {expr(v.stop, b)}, {expr(v.step, b)})"
            if t is DTypeName:
                return glob(_bdt(b, v.name), "D")
            if t is DeviceName:
                return glob(dev(v.name), "B")
            if t is _Opaque:
                return glob(v.value)
            return glob(v)

        def ns(b):
            return "xp" if b is bk else glob(b.xp, "X")

        consts = {}
        nodes = graph.nodes
        outs = graph._out_refs()
        last = {}
        for i, n in enumerate(nodes):
            for d in n.deps():
                last[d] = i
        for r in outs:
            last[r] = len(nodes)          # outputs live to the end
        frees = {}
        for d, i in last.items():
            frees.setdefault(i, []).append(d)
        lines = ["def replay(" + ", ".join(f"v{i}" for i in graph._in) + "):"]
        unused = [i for i in graph._in if i not in last]
        if unused:
            lines.append("    del " + ", ".join(f"v{i}" for i in unused))
        cross = False
        for i, n in enumerate(nodes):
            if n.kind == "input":
                continue
            b = dev(n.device)
            cross = cross or b is not bk
            if n.kind == "const":
                value = n.value if (n.bk is b and not isinstance(n.value, np.ndarray)) else b.asarray(_np_value(n))
                consts[i] = glob(value, "C")
                continue
            ins = n.inputs
            if n.kind == "item":
                rhs = f"{expr(ins[0], b)}[{int(n.attrs['k'])}]"
            elif n.kind == "fn":
                if not hasattr(b.xp, n.op):
                    raise TypeError(f"gradtape.Graph {graph.name}: backend {b.name} ({b.device}) has no function "
                                    f"{n.op!r} (node {i})")
                args = [expr(a, b) for a in ins] + [f"{k}={expr(v, b)}" for k, v in n.attrs.items()]
                rhs = f"{fn_name(b, n.op)}({', '.join(args)})"
            else:
                tpl = _template(n.prim) if not n.attrs else None
                if tpl is not None and tpl[0] == "bin":
                    rhs = f"{expr(ins[0], b)} {tpl[1]} {expr(ins[1], b)}"
                elif tpl is not None and tpl[0] == "un":
                    rhs = f"{tpl[1]}{expr(ins[0], b)}"
                elif tpl is not None and hasattr(b.xp, tpl[1]):
                    rhs = f"{fn_name(b, tpl[1])}({', '.join(expr(a, b) for a in ins)})"
                else:
                    args = [ns(b)] + [expr(a, b) for a in ins] + [f"{k}={expr(v, b)}" for k, v in n.attrs.items()]
                    rhs = f"{glob(n.prim.fwd, 'P')}({', '.join(args)})"
            lines.append(f"    v{i} = {rhs}")
            dead = [d for d in frees.get(i, ()) if nodes[d].kind != "const"]
            if dead:
                lines.append("    del " + ", ".join(f"v{d}" for d in dead))
        lines.append("    return (" + ", ".join(expr(Ref(r), bk) for r in outs) + ",)")
        self.source = "\n".join(lines)
        exec(compile(self.source, f"<gradtape graph {graph.name}>", "exec"), g)  # noqa: S102
        self.fn = g["replay"]
        self.shapes = [graph.nodes[i].shape for i in graph._in]
        self.dtypes = [_bdt(bk, graph.nodes[i].dtype) for i in graph._in]
        self.post = _unflattener(graph._tree, bk, cross)


def _unflattener(tree, bk, cross):
    """A function turning the plan's flat tuple of raw results into the traced output structure of tensors."""
    if cross:           # to_device inside: each result's backend from its type
        def w(r):
            return wrap(r, _backends.backend_of(r) or bk)
    else:
        def w(r):
            return wrap(r, bk)
    if type(tree) is Ref:
        return lambda res: w(res[0])
    if type(tree) is tuple and all(type(e) is Ref for e in tree):
        return lambda res: tuple(w(r) for r in res)

    def post(res):
        it = iter(res)

        def build(v):
            t = type(v)
            if t is Ref:
                return w(next(it))
            if t is tuple or t is list:
                return t(build(e) for e in v)
            if t is dict:
                return {k: build(e) for k, e in v.items()}
            return v
        return build(tree)
    return post


# ---- JSON encoding of values -------------------------------------------------------------------------------

def _enc(v, what):
    t = type(v)
    if t is Ref:
        return {"$": "ref", "i": v.i}
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$": "float", "v": repr(v)}
    if t is complex:
        return {"$": "complex", "re": _enc(v.real, what), "im": _enc(v.imag, what)}
    if v is Ellipsis:
        return {"$": "ellipsis"}
    if t is tuple:
        return {"$": "tuple", "v": [_enc(e, what) for e in v]}
    if t is list:
        return [_enc(e, what) for e in v]
    if t is dict:
        if not all(isinstance(k, str) for k in v):
            raise ValueError(f"gradtape.Graph.save: {what}: dict keys must be strings")
        return {"$": "dict", "v": {k: _enc(e, what) for k, e in v.items()}}
    if t is slice:
        return {"$": "slice", "v": [_enc(v.start, what), _enc(v.stop, what), _enc(v.step, what)]}
    if t is DTypeName:
        return {"$": "dtype", "v": v.name}
    if t is DeviceName:
        return {"$": "device", "v": v.name}
    if isinstance(v, np.generic):
        return {"$": "npscalar", "v": _enc_array(np.asarray(v))}
    raise ValueError(f"gradtape.Graph.save: {what} holds a {type(v).__name__} ({v!r:.60}), which has no JSON form; "
                     f"the graph still replays in this process")


def _enc_array(a):
    a = np.asarray(a)
    if a.dtype.kind not in "biufc":
        raise ValueError(f"gradtape.Graph.save: cannot store a constant of dtype {a.dtype}")
    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": base64.b64encode(le.tobytes()).decode("ascii")}


def _dec_array(d):
    if not isinstance(d, dict) or not {"dtype", "shape", "data"} <= set(d):
        raise ValueError("a constant must be an object with \"dtype\", \"shape\" and \"data\"")
    if d["dtype"] not in DTYPES:
        raise ValueError(f"unknown dtype {d['dtype']!r}")
    shape = d["shape"]
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise ValueError(f"bad shape {shape!r}")
    try:
        buf = base64.b64decode(d["data"], validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"constant data is not valid base64 ({e})") from None
    dt = np.dtype(d["dtype"]).newbyteorder("<")
    n = math.prod(shape)
    if len(buf) != n * dt.itemsize:
        raise ValueError(f"constant data has {len(buf)} bytes, but shape {tuple(shape)} of {d['dtype']} needs "
                         f"{n * dt.itemsize}")
    return np.frombuffer(buf, dtype=dt).astype(np.dtype(d["dtype"])).reshape(shape)


def _dec(v):
    if v is None or type(v) in (bool, int, float, str):
        return v
    if type(v) is list:
        return [_dec(e) for e in v]
    if type(v) is not dict:
        raise ValueError(f"unexpected value {v!r}")
    tag = v.get("$")
    if tag == "ref":
        if type(v.get("i")) is not int:
            raise ValueError(f"bad reference {v!r}")
        return Ref(v["i"])
    if tag == "float":
        if v.get("v") not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad special float {v!r}")
        return float(v["v"])
    if tag == "complex":
        return complex(_dec(v["re"]), _dec(v["im"]))
    if tag == "ellipsis":
        return Ellipsis
    if tag == "tuple":
        return tuple(_dec(e) for e in _list(v["v"]))
    if tag == "dict":
        if not isinstance(v["v"], dict):
            raise ValueError(f"bad dict {v!r}")
        return {k: _dec(e) for k, e in v["v"].items()}
    if tag == "slice":
        parts = _list(v["v"])
        if len(parts) != 3:
            raise ValueError(f"bad slice {v!r}")
        return slice(*(_dec(e) for e in parts))
    if tag == "dtype":
        if v.get("v") not in DTYPES:
            raise ValueError(f"unknown dtype {v.get('v')!r}")
        return DTypeName(v["v"])
    if tag == "device":
        try:
            return DeviceName(_backends.canonical_device(v["v"]))
        except ValueError as e:
            raise ValueError(str(e)) from None
    if tag == "npscalar":
        return _dec_array(v["v"])[()]
    raise ValueError(f"unknown value tag {tag!r}")


def _list(v):
    if type(v) is not list:
        raise ValueError(f"expected a list, got {v!r}")
    return v


_KINDS = ("input", "const", "prim", "fn", "item")


def _dec_node(d, i):
    if not isinstance(d, dict):
        raise ValueError(f"node {i} is not an object")
    kind, op = d.get("kind"), d.get("op")
    if kind not in _KINDS:
        raise ValueError(f"node {i} has unknown kind {kind!r} (expected one of {', '.join(_KINDS)})")
    if not isinstance(op, str):
        raise ValueError(f"node {i} has no operation name")
    prim = None
    if kind == "prim":
        prim = _prim_by_name(op)
        if prim is None:
            raise ValueError(f"node {i} uses the unknown primitive {op!r}: not in this gradtape's registry "
                             f"(written by a newer or extended gradtape?)")
    elif kind == "fn" and op not in _FNS:
        raise ValueError(f"node {i} calls the unknown function {op!r}")
    ins = tuple(_dec(a) for a in _list(d.get("in", [])))
    attrs = d.get("attrs", {})
    if not isinstance(attrs, dict):
        raise ValueError(f"node {i}: \"attrs\" must be an object")
    attrs = {k: _dec(v) for k, v in attrs.items()}
    if kind == "item" and type(attrs.get("k")) is not int:
        raise ValueError(f"node {i}: an item node needs an integer \"k\"")
    multi = None
    shape = dtype = None
    if "multi" in d:
        multi = [(tuple(_shape(s, i)), str(dt)) for s, dt in _list(d["multi"])]
    else:
        shape = None if d.get("shape") is None else tuple(_shape(d["shape"], i))
        dtype = d.get("dtype")
        if dtype is not None and not isinstance(dtype, str):
            raise ValueError(f"node {i}: bad dtype {dtype!r}")
    if kind == "input":
        if shape is None or dtype not in DTYPES:
            raise ValueError(f"input node {i} ({op!r}) needs a shape and a known dtype")
    value = None
    if kind == "const":
        value = _dec_array(d.get("value"))
        if shape is not None and tuple(value.shape) != shape:
            raise ValueError(f"node {i}: constant of shape {value.shape} but the node says {shape}")
    device = d.get("device")
    if device is not None:
        try:
            device = _backends.canonical_device(device)
        except ValueError as e:
            raise ValueError(f"node {i}: {e}") from None
    return Node(kind, op, ins, attrs, shape=shape, dtype=dtype, multi=multi, rev=bool(d.get("rev", False)),
                prim=prim, value=value, device=device)


def _shape(s, i):
    if not isinstance(s, list) or not all(type(e) is int and e >= 0 for e in s):
        raise ValueError(f"node {i}: bad shape {s!r}")
    return s


# ---- DOT and Graphviz ----------------------------------------------------------------------------------------

_STYLES = {
    "input": 'shape=ellipse, style=filled, fillcolor="#dbeafe", color="#1d4ed8"',
    "const": 'shape=note, style=filled, fillcolor="#f3f4f6", color="#6b7280", fontcolor="#374151"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#ffffff", color="#111827"',
    "rev": 'shape=box, style="rounded,filled", fillcolor="#fee2e2", color="#b91c1c", fontcolor="#7f1d1d"',
    "output": 'shape=ellipse, style=filled, fillcolor="#dcfce7", color="#15803d", peripheries=2',
}


def _dot_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _op_label(op, inputs):
    """[op] plus a line with the literal arguments (``•`` standing for array inputs) when there are any."""
    if any(type(a) is not Ref for a in inputs):
        return [op, "(" + ", ".join("•" if type(a) is Ref else _short(a) for a in inputs) + ")"]
    return [op]


def _short(v):
    if type(v) is float:
        return f"{v:.6g}"
    r = repr(v)
    return r if len(r) <= 16 else r[:15] + "…"


def dot_source(title, items, edges):
    """DOT text for nodes ``items`` = [(id, label lines, style)] and ``edges`` = [(from, to)].

    Styles: ``input``, ``const``, ``op``, ``rev`` (reverse pass) and ``output``.

    >>> from gradtape.graph import dot_source
    >>> print(dot_source("g", [("a", ["a"], "input"), ("o", ["out"], "output")], [("a", "o")]))
    ... # doctest: +ELLIPSIS
    digraph "g" {
    ...
      a [label="a", shape=ellipse, ...];
      o [label="out", ...];
      a -> o;
    }
    """
    lines = [f"digraph {_dot_str(title)} {{",
             '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.3, ranksep=0.35];',
             '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.04"];',
             '  edge [color="#4b5563", arrowsize=0.7];']
    for ident, label, style in items:
        lines.append(f"  {ident} [label={_dot_str(chr(10).join(label))}, {_STYLES[style]}];")
    for a, b in edges:
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines)


def _dot_program():
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("gradtape: Graphviz's `dot` program is not installed (or not on PATH), so graphs cannot "
                           "be drawn to SVG/PNG; install the Debian/Ubuntu package `graphviz` (apt-get install "
                           "graphviz; elsewhere see graphviz.org), or write the DOT text with .to_dot() or "
                           "render('graph.dot')")
    return dot


def render_dot(text, path, format=None):
    """Write DOT ``text`` to ``path``: as is for ``.dot``/``.gv``, else drawn by Graphviz's ``dot``.

    >>> from gradtape.graph import render_dot, dot_source
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "g.gv")
    >>> render_dot(dot_source("g", [("a", ["a"], "input")], []), p)
    >>> os.path.exists(p)
    True
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
    if fmt in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        return
    dot = _dot_program()
    r = subprocess.run([dot, f"-T{fmt}", "-o", path], input=text.encode("utf-8"), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"gradtape: Graphviz's dot failed to write {path!r} as {fmt!r}: "
                           f"{r.stderr.decode(errors='replace').strip()}")


def dot_to_svg(text):
    """SVG text for DOT ``text``, or None where Graphviz's ``dot`` is not installed.

    >>> from gradtape.graph import dot_to_svg, dot_source
    >>> svg = dot_to_svg(dot_source("g", [("a", ["a"], "input")], []))
    >>> svg is None or svg.lstrip().startswith("<?xml")
    True
    """
    dot = shutil.which("dot")
    if dot is None:
        return None
    r = subprocess.run([dot, "-Tsvg"], input=text.encode("utf-8"), capture_output=True)
    return r.stdout.decode("utf-8") if r.returncode == 0 else None
