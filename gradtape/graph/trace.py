"""Tracing: recording the operations a function runs into graph nodes.

:func:`gradtape.graph.trace` (``gt.trace``) builds a :class:`gradtape.graph.Graph`
from what :func:`_record` returns. The tracer is per thread: it is
``state.tracer`` of the thread that traces (the thread-local state of
:mod:`gradtape._core`), so threads tracing at once each record only their own
ops; every op checks it (one thread-local read).

Arguments and outputs are pytrees (``gt.tree``): every array leaf of an
argument becomes an input (named after the parameter and the leaf's path,
``p_w``, ``p_layers_0``), other leaves are fixed; the argument's slot is
``("tree", treedef, slots)`` (:func:`_bind_tree` binds a call's argument to
it). An output with other nodes than tuples, lists and dicts (namedtuples,
modules, registered types) is kept as the tuple of its leaves with a
function rebuilding it (:func:`_record_tree`'s ``restore``).
"""
from __future__ import annotations

import inspect
import os
import re
import sys
import weakref

from .. import _tree
from .. import backends as _backends
from ..backends import host as _host
from .._api import asarray
from .._core.dispatch import wrap
from .._core.dtypes import DTYPES, DType
from .._core.primitive import Primitive
from .._core.tensor import Tensor
from .._state import scoped, state
from ..graph.ir import DeviceName, DTypeName, Guard, IRNode, Ref, _dtype_str, _Opaque, _walk_refs


def _is_raw_dtype(v):
    if _host.is_dtype(v):
        return True
    t = type(v)
    return t.__name__ == "DType" and t.__module__.startswith("array_api_strict")


def _kept_whole(v):
    """Containers norm does not walk: list and dict subclasses (tuple subclasses walk as plain tuples)."""
    return (isinstance(v, list) and type(v) is not list) or (isinstance(v, dict) and type(v) is not dict)


class _Tracer:
    """A thread's tracing hook (``state.tracer``): turns every op the traced function runs into a node.

    It never keeps a traced value alive: tensors and raw arrays are known by id together with a weak
    reference (an id whose object died is stale, not a match), so intermediates are freed as in eager
    execution; a node records only its output's shape and dtype. Constants (values made outside the traced
    ops) are kept: the graph holds them. Python decisions on traced values are recorded as guards."""

    def __init__(self, prev):
        self.nodes = []
        self.by_tensor = {}     # id(Tensor) -> (node index, weak reference)
        self.by_data = {}       # id(raw array) -> (node index, weak reference or the array itself)
        self.consts = set()     # indices of constant nodes
        self.guards = []        # Guard records, in the order the decisions were taken
        self.grad_consts = 0    # constants made from tensors that require grad (closures over parameters)
        self.rev = 0            # > 0 while a reverse pass runs
        self.prev = prev        # the tracer of an enclosing trace on this thread (it records the same ops)

    # -- values
    def _add(self, node):
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _bind(self, t, i):
        self.by_tensor[id(t)] = (i, _ref(t))
        self._bind_data(t.data, i, first=True)     # (a multi-output node's tuple too: the engine rewraps it)

    def _bind_data(self, raw, i, first=False):
        k = id(raw)
        e = self.by_data.get(k)
        if first and e is not None and _alive(e[1]) is raw:
            return              # (tensors made around the same array alias the first node computing it)
        self.by_data[k] = (i, _ref(raw))

    def _known(self, t):
        """The node index of tensor ``t`` (or of its array), or None where this trace has not seen it."""
        e = self.by_tensor.get(id(t))
        if e is not None and _alive(e[1]) is t:
            return e[0]
        return self._known_data(t.data)

    def _known_data(self, raw):
        e = self.by_data.get(id(raw))
        if e is not None and _alive(e[1]) is raw:
            return e[0]
        return None

    def add_input(self, name, t):
        i = self._add(IRNode("input", name, shape=tuple(t.data.shape), dtype=_dtype_str(t.data.dtype),
                             device=t.backend.device))
        self._bind(t, i)
        return i

    def add_const(self, raw, backend):
        n = IRNode("const", "const", shape=tuple(raw.shape), dtype=_dtype_str(raw.dtype), value=raw,
                   backend=backend, device=backend.device)
        i = self._add(n)
        self.consts.add(i)
        self.by_data[id(raw)] = (i, raw)        # (the node holds the array: a strong entry)
        return i

    def lookup(self, t):
        i = self._known(t)
        if i is None:          # made outside the traced ops (creation functions, closures): a constant
            i = self.add_const(t.data, t.backend)
            if t._requires_grad:
                self.grad_consts += 1       # (a parameter read from outside: no gradient reaches it)
        self.by_tensor[id(t)] = (i, _ref(t))
        return i

    def rebind(self, t, new):
        """An in-place write rebound ``t`` to the value of ``new``: ``t`` now stands for new's traced value
        (here and in the enclosing traces), never for the value it had before."""
        tr = self
        while tr is not None:
            i = tr._known(new)
            if i is None:          # nothing recorded (constant folded): looked up by its data later
                tr.by_tensor.pop(id(t), None)
            else:
                tr.by_tensor[id(t)] = (i, _ref(t))
            tr = tr.prev

    # -- guards
    def guard(self, t, kind, value):
        """Record that the traced function read tensor ``t`` as ``kind`` and got ``value`` (a Python decision
        the graph depends on); nothing is recorded for constants (they do not depend on the inputs)."""
        if self.prev is not None:
            self.prev.guard(t, kind, value)
        i = self._known(t)
        if i is None or i in self.consts:
            return
        gs = self.guards
        if gs and gs[-1].node == i and gs[-1].kind == "tolist" and kind == "mask":
            gs.pop()            # (the mask was read with .tolist() to record it: one guard, named a mask)
        gs.append(Guard(i, kind, value, _user_location()))

    def norm(self, v):
        """A backend-neutral form of an argument or parameter value."""
        t = type(v)
        if t is Tensor:           # the common cases, without the walker
            return Ref(self.lookup(v))
        if t is float or t is int or t is bool or v is None:
            return v
        return _tree.map(self._norm_leaf, v, is_leaf=_kept_whole)

    def _norm_leaf(self, v):
        t = type(v)
        if t is Tensor or isinstance(v, Tensor):
            return Ref(self.lookup(v))
        if t in (bool, int, float, complex, str) or v is Ellipsis:
            return v
        if t is DType:
            return DTypeName(v.name)
        if isinstance(v, _backends.Backend):
            return DeviceName(v.device)
        if _is_raw_dtype(v):
            return DTypeName(_dtype_str(v))
        if (isinstance(v, (bool, int, float, complex)) or _host.is_scalar(v)) and not hasattr(v, "shape"):
            return v
        backend = _backends.backend_of(v) if hasattr(v, "shape") and hasattr(v, "dtype") else None
        if backend is not None:            # a raw array (an index key...): the node computing it, or a constant
            i = self._known_data(v)
            if i is None:
                i = self.add_const(v, backend)
            return Ref(i)
        if _host.is_scalar(v):
            return v
        return _Opaque(v)

    # -- the hook
    def __call__(self, op, args, params, out):
        if self.prev is not None:
            self.prev(op, args, params, out)
        ins = tuple(self.norm(a) for a in args)
        attrs = {k: self.norm(v) for k, v in (params or {}).items()}
        if not isinstance(op, Primitive):      # dtypes given by name: resolved per backend too
            if op == "astype" and len(ins) > 1 and type(ins[1]) is str and ins[1] in DTYPES:
                ins = (ins[0], DTypeName(ins[1])) + ins[2:]
            if type(attrs.get("dtype")) is str and attrs["dtype"] in DTYPES:
                attrs["dtype"] = DTypeName(attrs["dtype"])
        deps = _deps(ins)
        if attrs:
            deps += _deps(attrs.values())
        if all(d in self.consts for d in deps):
            return          # constant folding: nothing here depends on an input (looked up later as a constant)
        if isinstance(op, Primitive):
            node = IRNode("prim", op.name, ins, attrs, rev=self.rev > 0, prim=op)
        else:
            node = IRNode("fn", op, ins, attrs, rev=self.rev > 0)
        outs = out if isinstance(out, (tuple, list)) else None
        first = out if outs is None else next((o for o in outs if isinstance(o, Tensor)), None)
        if isinstance(op, Primitive) and op.name == "to_device":
            node.device = params["dst"].device      # (to_device sets the result's backend after the hook)
        elif isinstance(first, Tensor):
            node.device = first.backend.device
        if outs is None and isinstance(out, Tensor) and isinstance(out.data, (tuple, list)):
            node.result_types = [(tuple(d.shape), _dtype_of(d)) for d in out.data]
        elif outs is None:
            if not isinstance(out, Tensor):
                return      # a Python value (not an array): nothing to record
            node.shape, node.dtype = tuple(out.data.shape), _dtype_of(out.data)
        else:
            node.result_types = [(tuple(o.data.shape), _dtype_of(o.data)) if isinstance(o, Tensor)
                                 else ((), "?") for o in outs]
        i = self._add(node)
        if outs is None:
            self._bind(out, i)
            if node.kind == "fn" and op in _VALUE_SHAPED:
                self.guards.append(Guard(i, "shape", node.shape, _user_location()))
            return
        shaped = node.kind == "fn" and op in _VALUE_SHAPED
        for k, o in enumerate(outs):       # a tuple of results: one item node each
            if isinstance(o, Tensor):
                j = self._add(IRNode("item", "item", (Ref(i),), {"k": k}, shape=tuple(o.data.shape),
                                     dtype=_dtype_str(o.data.dtype), rev=node.rev, device=o.backend.device))
                self._bind(o, j)
                if shaped:          # a shape computed from values: the rest of the graph was traced for it
                    self.guards.append(Guard(j, "shape", tuple(o.data.shape), _user_location()))

    def norm_out(self, v):
        return _tree.map(self._norm_out_leaf, v)

    def _norm_out_leaf(self, v):
        if isinstance(v, Tensor):
            return Ref(self.lookup(v))
        if isinstance(v, (bool, int, float, complex, str)):
            return v
        raise TypeError(f"gradtape.trace: the function returned a {type(v).__name__}; a traced function must "
                        f"return tensors (or tuples, lists or dicts of them)")


_ATOMS = frozenset({int, float, bool, str, complex, type(None), DTypeName, DeviceName})
_DTYPE_NAMES = {}


def _deps(vals):
    """The node indices referenced in ``vals`` (an iterable of normalised values), in order."""
    out = []
    for v in vals:
        t = type(v)
        if t is Ref:
            out.append(v.i)
        elif t not in _ATOMS:
            _walk_refs(v, out)
    return out


def _dtype_of(raw):
    """The dtype name of a raw array (cached per dtype object: names are asked for every traced op)."""
    d = raw.dtype
    k = (type(d), d)        # (the type first: dtypes of two libraries are never compared)
    try:
        return _DTYPE_NAMES[k]
    except KeyError:
        name = _DTYPE_NAMES[k] = _dtype_str(d)
        return name
    except TypeError:
        return _dtype_str(d)


# non-differentiable functions whose output shape depends on the input's values
_VALUE_SHAPED = frozenset({"nonzero", "unique_all", "unique_counts", "unique_inverse", "unique_values"})


def _ref(obj):
    """A weak reference to ``obj``, or ``obj`` itself where it takes none (then the entry keeps it alive)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return obj


def _alive(r):
    return r() if type(r) is weakref.ref else r


_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))    # gradtape/


def _user_location():
    """``file:line`` of the innermost frame outside gradtape (the user's code that took the decision)."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG + os.sep):
        f = f.f_back
    if f is None:
        return "?"
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def _is_array_arg(a):
    if isinstance(a, Tensor):
        return True
    if isinstance(a, (bool, int, float, complex, str)) or a is None:
        return False
    return hasattr(a, "shape") and hasattr(a, "dtype") and _backends.backend_of(a) is not None


def _placeholder(a):
    x = a if isinstance(a, Tensor) else asarray(a)
    t = wrap(x.data, x.backend)
    if x._requires_grad:        # keep the example's grad state, so backward() inside f has a leaf to write to
        t._requires_grad = True
        t._grad_req = x._grad_req if x._node is None else None
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


def _record(f, args, kwargs):
    """Run ``f(*args, **kwargs)`` under a tracer: (nodes, output tree, argument layouts, name, home device).
    Arguments that are not arrays are fixed whole, and outputs walked as plain containers (before pytrees)."""
    return _record_tree(f, args, kwargs, trees=False)[:6]


def _record_tree(f, args, kwargs, trees=True, guards=None, info=None):
    """:func:`_record` with pytree arguments and outputs, and ``restore``: None, or the function rebuilding the
    traced output's pytree (its namedtuples, modules...) from the replayed output tree. ``guards``: a list
    the trace's guards (:class:`~gradtape.graph.ir.Guard`) are appended to; ``info``: a dict that gets
    ``grad_consts`` (how many constants were read from tensors that require grad)."""
    tracer = _Tracer(state.tracer)
    if guards is not None:
        tracer.guards = guards
    names = _arg_names(f, len(args))
    taken = set(names) | set(kwargs)
    call_args, layout, homes = [], [], []
    for name, a in zip(names, args):
        slot, v = _arg_slot(tracer, name, a, taken, homes, trees)
        layout.append(slot)
        call_args.append(v)
    call_kw, kw_layout = {}, {}
    for name, a in kwargs.items():
        kw_layout[name], call_kw[name] = _arg_slot(tracer, name, a, taken, homes, trees)
    with scoped(tracer=tracer):     # (reverse passes read state.tracer too: they are traced with their rules)
        out = f(*call_args, **call_kw)
        tree, restore = _norm_out_tree(tracer, out) if trees else (tracer.norm_out(out), None)
    name = getattr(f, "__name__", None) or type(f).__name__
    if info is not None:
        info["grad_consts"] = tracer.grad_consts
    return tracer.nodes, tree, layout, kw_layout, name, (homes[0] if homes else None), restore


def _arg_slot(tracer, name, a, taken, homes, trees=True):
    """``(slot, value f is called with)`` of one argument: an input (an array), a tree of inputs and fixed
    leaves (a pytree holding arrays, with ``trees``), or a fixed value."""
    if _is_array_arg(a):
        t = _placeholder(a)
        homes.append(t.backend.device)
        return Ref(tracer.add_input(name, t)), t
    if not trees or type(a) in (str, int, float, bool, complex) or a is None:
        return ("static", a), a
    pairs, treedef = _tree.tree_flatten_with_path(a)
    if not any(_is_array_arg(v) for _, v in pairs):
        return ("static", a), a
    slots, vals = [], []
    for path, v in pairs:
        if _is_array_arg(v):
            t = _placeholder(v)
            homes.append(t.backend.device)
            slots.append(Ref(tracer.add_input(_leaf_name(name, path, taken), t)))
            vals.append(t)
        else:
            slots.append(("static", v))
            vals.append(v)
    return ("tree", treedef, tuple(slots)), _tree.tree_unflatten(treedef, vals)


def _leaf_name(name, path, taken):
    """An input name (a plain identifier, unique in the graph) for the leaf at ``path`` of argument ``name``."""
    parts = [re.sub(r"\W", "_", e.strip("[].'\"")) for e in path]
    base = "_".join([name] + [p for p in parts if p])[:90]
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _bind_tree(slot, a, put, same_static, what):
    """Bind a call's argument ``a`` to a ``("tree", treedef, slots)`` slot: ``put(ref, leaf)`` for each input
    leaf; a fixed leaf that differs, or another structure, is a ValueError (``what`` names the argument)."""
    _, treedef, slots = slot
    try:
        leaves = _tree.flatten_up_to(treedef, a, what.removeprefix("gradtape."))
    except ValueError as e:
        raise ValueError(f"{e} (the structure traced: {treedef!r}; trace again for another)") from None
    for s, v in zip(slots, leaves):
        if type(s) is Ref:
            put(s, v)
        elif not same_static(s[1], v):
            raise ValueError(f"{what}: a leaf was {s[1]!r} when traced (fixed in the graph), got {v!r}; trace "
                             f"again for another value")


def _norm_out_tree(tracer, out):
    """The output tree with Refs at its leaves, and None or the function rebuilding the output's pytree."""
    leaves, treedef = _tree.tree_flatten(out)
    if not _has_nodes(treedef):          # tuples, lists, dicts: the graph keeps the structure itself
        return tracer.norm_out(out), None
    return tuple(tracer.norm_out(v) for v in leaves), lambda res: _tree.tree_unflatten(treedef, list(res))


def _has_nodes(spec):
    """Whether a structure holds other nodes than tuples, lists, dicts and None (namedtuples, modules...)."""
    return spec.kind not in (tuple, list, dict, None, "leaf") or any(_has_nodes(c) for c in spec.children)
