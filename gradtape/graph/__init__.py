"""Graph IR: a function's operations as data, replayed on any backend, saved as JSON, drawn with Graphviz.

A :class:`Graph` is a list of :class:`IRNode` objects (an operation name, input
references, attributes, and the output's shape and dtype) with named inputs
and outputs. It is produced by tracing a function (:func:`trace`, exported as
``gt.trace``) or from a symbolic expression (``gt.trace(symbol, **inputs)``,
see :mod:`gradtape.sym`). Tracing a gradient function, ``gt.trace(gt.grad(f),
x)``, gives one graph holding the forward and the reverse pass (reverse-pass
nodes carry ``rev=True`` and are drawn apart).

Replay (``g(*args)``) does not go through the per-op Tensor dispatch: the
first call on a backend turns the graph into a plan, a list of steps of
pre-resolved backend calls (``sin``, ``multiply`` by 1.01...) with their
parameters as objects, run by a small interpreter loop that drops each
intermediate value right after its last use; later calls on that backend
reuse it. Nothing in a graph, or in a file it was loaded from, is ever turned
into source code (:meth:`Graph.plan_source` is a listing to read). Constants
are copied when traced (the graph is a snapshot) and moved to the replay
backend once.

Values are referenced by :class:`Ref`; in attributes, backend dtypes become
:class:`DTypeName`, backends :class:`DeviceName`, and raw arrays references to
the nodes that compute them (or constants), so nothing in a graph belongs to
one array library.

The parts live in small modules, re-exported here: the values and nodes in
:mod:`~gradtape.graph.ir`, tracing in :mod:`~gradtape.graph.trace`, replay
plans in :mod:`~gradtape.graph.plan`, JSON in :mod:`~gradtape.graph.io` (checked
by :mod:`~gradtape.graph.schema`), DOT and Graphviz in :mod:`~gradtape.graph.dot`,
and the explicit expressions of ``gradtape.sym`` in :mod:`~gradtape.graph.symbolic`.
"""
from __future__ import annotations

import json
import os
import shutil  # noqa: F401  (not used here: kept as gradtape.graph.shutil, through which tests patch shutil.which)
from .. import backends as _backends
from .._state import default_device
from ..graph import dot as _graph_dot
from ..graph import guards as _guards
from ..graph import io as _graph_io
from ..graph import symbolic as _symbolic
from ..graph.dot import _STYLES, _short, dot_source, dot_to_svg, render_dot  # noqa: F401
from ..graph.io import FORMAT, FORMAT_VERSION  # noqa: F401
from ..graph.ir import (GUARD_KINDS, DeviceName, DTypeName, Guard, IRNode, Ref, _dtype_str,  # noqa: F401
                        _fmt_shape, _fmt_type, _map_refs, _prim_by_name, _walk_refs)
from ..graph.plan import _Plan, gather_raws
from ..graph.trace import _record_tree, _bind_tree

__all__ = ["Graph", "Guard", "IRNode", "Node", "Ref", "trace", "FORMAT_VERSION"]

Node = IRNode        # the public name before issue 10 (gradtape.graph.Node); the engine's Node is another class


# ---- tracing -----------------------------------------------------------------------------------------

def trace(f, *args, **kwargs):
    """Record the operations ``f(*args, **kwargs)`` runs into a :class:`Graph`.

    Array arguments (tensors, NumPy/CuPy/array-api-strict arrays) become the
    graph's named inputs (named after ``f``'s parameters); other arguments
    (Python numbers, strings...) are fixed at trace time, as is every
    data-dependent Python decision (``if``/``while`` on tensor values, shapes)
    and the positions a boolean mask selects (``x[x > 0]``): the graph holds
    the path the example took, each decision a guard (``g.guards``) checked on
    replay: an input taking another path is a RuntimeError naming the decision
    and its line, never the traced path's value. Other input shapes or dtypes
    than the example's are an error (trace again). Tensors ``f``
    reads from outside (closures), makes with creation functions (``gt.zeros``,
    random numbers) or computes outside gradtape's operations (through NumPy
    on ``.data``) become constants, copied when traced. Gradients taken inside
    ``f`` (``gt.grad``, ``gt.vjp``, ``backward()``...) are traced too, so
    ``trace(gt.grad(f), x)`` is one graph with the forward and the reverse
    pass. ``f`` may also be a :class:`gradtape.sym.Symbol`, with its variables
    given by name.

    The graph replays on the backend its inputs come from, without the
    per-op dispatch; its results do not require grad. Tracing records the
    calling thread's ops only: other threads may trace or compute at the
    same time, each trace getting its own graph.

    >>> import gradtape as gt
    >>> f = lambda x: gt.sum(gt.sin(x) ** 2)
    >>> g = gt.trace(gt.grad(f), gt.asarray([0.5, 1.0]))
    >>> g
    <Graph grad(<lambda>)(x: (2,) float64) -> (out: (2,) float64), 8 nodes>
    >>> x = gt.asarray([0.1, 0.2])
    >>> bool(gt.all(gt.abs(g(x) - gt.grad(f)(x)) < 1e-15))
    True
    """
    if isinstance(f, _symbolic.Symbol):
        run, inputs = _symbolic._trace_inputs(f, args, kwargs)
        return trace(run, **inputs)
    guards, info = [], {}
    nodes, tree, layout, kw_layout, name, home, restore = _record_tree(f, args, kwargs, guards=guards, info=info)
    g = Graph._build(nodes, tree, layout, kw_layout, name=name, home=home, guards=guards)
    # restore: rebuilds an output pytree of namedtuples, modules... (None: plain); _grad_consts: gt.jit warns
    g._restore, g._grad_consts = restore, info["grad_consts"]
    for n in g.nodes:
        if n.device == home:        # on the device traced on: follows the replay device
            n.device = None
    for n in g.nodes:            # the graph is a snapshot: constants are copied
        if n.kind == "const":
            n.value = n.backend.asarray(n.value, copy=True)
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

    def __init__(self, nodes, inputs, outputs, *, name="graph", layout=None, kw_layout=None, home=None,
                 guards=()):
        self.nodes = list(nodes)
        self.guards = list(guards)             # Guard records: the Python decisions the traced path took
        self.name = name
        self._out_tree = outputs               # output structure with Refs at the leaves
        self._in = list(inputs)                # node indices of the inputs, in order
        self._layout = list(layout) if layout is not None else [Ref(i) for i in self._in]
        self._kw_layout = dict(kw_layout or {})
        self._home = home                      # the device it was traced on
        self._plans = {}
        self._restore = None                   # set by trace: the output pytree's rebuild, where not plain
        self._check()
        # calls whose arguments are exactly the inputs, in order, skip the binding step
        self._arity = len(self._in) if self._layout == [Ref(i) for i in self._in] and not self._kw_layout else -1

    # -- construction
    @classmethod
    def _build(cls, nodes, tree, layout, kw_layout, name, home, guards=()):
        """Keep the inputs and the nodes an output or a guard depends on, renumbered in order."""
        out_refs = []
        _walk_refs(tree, out_refs)
        need = set(out_refs) | {gd.node for gd in guards}
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
        guards = [Guard(new[gd.node], gd.kind, gd.value, gd.where) for gd in guards]
        return cls(out, inputs, _map_refs(tree, remap), name=name, layout=_map_refs(layout, remap),
                   kw_layout=_map_refs(kw_layout, remap), home=home, guards=guards)

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
                                     f"gradtape's registry, gradtape._core.primitive.PRIMS)")
        refs = []
        _walk_refs(self._out_tree, refs)
        for r in refs:
            if not 0 <= r < len(self.nodes):
                raise ValueError(f"gradtape.Graph: an output reads node {r}, but the graph has {len(self.nodes)} nodes")
        for gd in self.guards:
            if type(gd.node) is not int or not 0 <= gd.node < len(self.nodes) or gd.kind not in GUARD_KINDS:
                raise ValueError(f"gradtape.Graph: guard {gd!r} does not name a node of the graph and a guard kind "
                                 f"({', '.join(GUARD_KINDS)})")
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
        if len(refs) == 1 and type(self._out_tree) is Ref:
            return ("out",)
        return tuple(f"out{k}" for k in range(len(refs)))

    def _out_refs(self):
        refs = []
        _walk_refs(self._out_tree, refs)
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
        for gd in self.guards:
            lines.append(f"  guard %{gd.node} {gd.kind} == {gd.value!r:.60}  # {gd.where}")
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
        raws, backend = gather_raws(vals, f"gradtape.Graph {self.name}: inputs")
        plan = self._plans.get(backend)
        if plan is None:
            plan = self._plans[backend] = _Plan(self, backend)
        for r, shape, dt in zip(raws, plan.shapes, plan.dtypes):
            if r.shape != shape or r.dtype != dt:
                self._type_error(raws)
        res = plan.post(plan.fn(*raws))
        return res if self._restore is None else self._restore(res)

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
        put = lambda r, v: vals.__setitem__(pos[r.i], v)  # noqa: E731
        for k, (slot, a) in enumerate(zip(self._layout, args)):
            if type(slot) is Ref:
                vals[pos[slot.i]] = a
            elif slot[0] == "tree":
                _bind_tree(slot, a, put, _same_static, f"gradtape.Graph {self.name}: positional argument {k}")
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
            elif slot[0] == "tree":
                _bind_tree(slot, a, put, _same_static, f"gradtape.Graph {self.name}: argument {key!r}")
            elif not _same_static(slot[1], a):
                raise ValueError(f"gradtape.Graph {self.name}: argument {key!r} was {slot[1]!r} when traced "
                                 f"(fixed in the graph), got {a!r}; trace again for another value")
        missing = [self.nodes[i].op for i, v in zip(self._in, vals) if v is None]
        if missing:
            raise TypeError(f"gradtape.Graph {self.name}: missing input(s) {missing}; the graph takes "
                            f"{', '.join(f'{n}: {_fmt_type(self.nodes[i])}' for n, i in zip(self.inputs, self._in))}")
        return vals

    def plan_source(self, device=None):
        """A Python-like listing of the replay plan on ``device`` (default: the default device).

        For reading only: the plan is a list of steps run by an interpreter
        loop, and this text is never compiled or executed. ``del`` lines show
        where each value is dropped.

        >>> import gradtape as gt
        >>> print(gt.trace(lambda x: gt.sin(x) * 2.0, gt.ones(2)).plan_source())
        def replay(v0):
            v1 = sin(v0)
            del v0
            v2 = v1 * 2.0
            del v1
            return (v2,)
        """
        backend = _backends.get(device or default_device())
        plan = self._plans.get(backend)
        if plan is None:
            plan = self._plans[backend] = _Plan(self, backend)
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
        d = _graph_io._to_dict(self)       # guards: data only, (node, kind, value, where)
        return dict(d, guards=_guards.to_json(self.guards)) if self.guards else d

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
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"gradtape.Graph.load: not UTF-8 text ({e})") from None
        if not isinstance(text, str):
            raise ValueError(f"gradtape.Graph.load: expected JSON text, got a {type(text).__name__}")
        return cls._from_dict(_graph_io.parse(text))

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
        guards = d.pop("guards", None) if isinstance(d, dict) else None
        g = _graph_io._from_dict(cls, d)
        if guards is not None:
            g.guards = _guards.load(guards, len(g.nodes))
            g._check()
        return g
    # -- pictures
    def to_dot(self, *, detail=True, names=None):
        """Graphviz DOT text: inputs, operations and outputs labelled with shapes and dtypes.

        Inputs are blue ellipses, constants grey notes, forward operations
        boxes, reverse-pass operations red boxes, outputs green ellipses.
        ``detail=False`` hides the reverse pass's bookkeeping (the seed of
        ones, reshapes and broadcasts of cotangents, ``pow(•, 1)``,
        multiplications by one), joining their neighbours. ``names`` relabels:
        a sequence names the outputs in order, a dict maps input/output names
        (or node indices, shown as ``name = op``) to the names to show.

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
        >>> g = gt.trace(gt.grad(lambda x: gt.sum(x ** 2)), gt.ones(2))
        >>> len(g.to_dot(detail=False)) < len(g.to_dot())
        True
        """
        return _graph_dot._to_dot(self, detail, names)

    def render(self, path, format=None, *, detail=False, names=None, legend=True):
        """Draw the graph to ``path`` (SVG, PNG, PDF... from the suffix, or ``format``), with a legend.

        ``.dot``/``.gv`` writes the DOT text itself. The pictures are drawn by
        Graphviz's ``dot`` program where it is on PATH, otherwise by
        matplotlib and grandalf (``pip install "gradtape[main]"``: SVG, PNG,
        PDF). Bookkeeping nodes are hidden unless ``detail=True``; ``names``
        as in :meth:`to_dot`.

        >>> import gradtape as gt, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "g.dot")
        >>> gt.trace(lambda x: gt.sin(x), gt.ones(2)).render(p)
        >>> open(p).read().startswith("digraph")
        True
        """
        render_dot(self.to_dot(detail=detail, names=names), path, format, legend=legend)

    def _repr_svg_(self):
        """SVG for notebooks (None where neither Graphviz's ``dot`` nor matplotlib and grandalf are installed).

        >>> import gradtape as gt, shutil
        >>> svg = gt.trace(lambda x: x * 2.0, gt.ones(2))._repr_svg_()
        >>> svg is None or "<svg" in svg
        True
        """
        return dot_to_svg(self.to_dot(detail=False))


def _same_static(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return a is b
