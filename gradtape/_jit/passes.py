"""Graph passes for ``gt.jit``: each a function ``Graph -> Graph`` (a new graph; the argument is unchanged).

:func:`optimize` runs them in order: :func:`fold_constants` (nodes whose inputs are all constants,
within :data:`FOLD_MAX_ELEMENTS`), :func:`simplify` (algebraic identities: ``x*1``, ``x+0``, ``x-0``,
``x/1``, ``x**1``, ``--x``, ``reshape`` of a ``reshape``, ``permute_dims`` of a ``permute_dims`` (one
permutation, or none), ``astype`` to the same dtype, a reshape to the same shape), :func:`cse` (same op,
same inputs, same attributes; never random or stateful ops) and :func:`dce` (nodes no output or guard
reads). Every pass keeps the graph's inputs, outputs, guards and calling layout, and each node's
shape and dtype; none changes a value (an identity is only applied where the result has exactly the
input's shape and dtype). The memory plan is the replay plan's (:mod:`gradtape.graph.plan`: every value
dropped after its last use, results written into the slots of dying values) and ``donate_argnums``
(:mod:`gradtape._jit.api`); elementwise fusion is :mod:`gradtape._jit.fusion`'s.

>>> import gradtape as gt
>>> from gradtape._jit import passes
>>> g = gt.trace(lambda x: (x * 1.0 - 0.0) * (x * 1.0 - 0.0), gt.ones(3))
>>> len(g), len(passes.optimize(g))
(6, 2)
"""
from __future__ import annotations

import math

from .. import _tree
from ..graph import Graph, Guard, IRNode, Ref
from ..graph.ir import DTypeName, _map_refs
from ..graph.plan import _Plan

__all__ = ["optimize", "dce", "cse", "fold_constants", "simplify", "FOLD_MAX_ELEMENTS"]

FOLD_MAX_ELEMENTS = 1 << 16     # constant folding computes nodes of at most this many elements

# ops whose result is not a function of the inputs alone (random draws, clocks) or that act on state
_IMPURE = frozenset({"random", "rand", "randn", "uniform", "normal", "dropout", "bernoulli", "permutation",
                     "shuffle", "empty", "empty_like"})


def optimize(graph):
    """The passes :func:`gradtape.jit` runs before lowering, in order: fold, simplify, cse, dce.

    >>> import gradtape as gt
    >>> from gradtape._jit.passes import optimize
    >>> g = optimize(gt.trace(lambda x: gt.sin(x) + gt.sin(x), gt.ones(2)))
    >>> [n.op for n in g.nodes]
    ['x', 'sin', 'add']
    """
    g = fold_constants(graph)
    g = simplify(g)
    g = cse(g)
    return dce(g)


# ---- the shared rebuild ------------------------------------------------------------------------------

def _copy(n, inputs=None, attrs=None):
    m = IRNode(n.kind, n.op, n.inputs if inputs is None else inputs, dict(n.attrs) if attrs is None else attrs,
               shape=n.shape, dtype=n.dtype, result_types=n.result_types, rev=n.rev, prim=n.prim, value=n.value,
               backend=n.backend, device=n.device)
    return m


def _rebuild(graph, nodes, alias):
    """A Graph of ``nodes`` (new node objects, same order) where node i's value is that of ``alias[i]`` (an
    earlier node) when i is in alias; the aliased nodes stay (dce removes them), references are rewired."""
    def res(i):
        while i in alias:
            i = alias[i]
        return i
    fix = lambda r: Ref(res(r.i))  # noqa: E731
    out = []
    for n in nodes:
        m = _copy(n, _map_refs(n.inputs, fix), _map_refs(n.attrs, fix))
        out.append(m)
    g = Graph(out, list(graph._in), _map_refs(graph._out_tree, fix), name=graph.name,
              layout=graph._layout, kw_layout=graph._kw_layout, home=graph._home,
              guards=[Guard(res(gd.node), gd.kind, gd.value, gd.where) for gd in graph.guards])
    g._restore = graph._restore
    return g


# ---- dead code -----------------------------------------------------------------------------------------

def dce(graph):
    """Drop the nodes no output or guard depends on (inputs always stay).

    >>> import gradtape as gt
    >>> from gradtape._jit.passes import dce, simplify
    >>> g = simplify(gt.trace(lambda x: x * 1.0, gt.ones(2)))
    >>> len(g), len(dce(g))
    (2, 1)
    """
    nodes = [_copy(n) for n in graph.nodes]
    g = Graph._build(nodes, graph._out_tree, graph._layout, graph._kw_layout, name=graph.name, home=graph._home,
                     guards=graph.guards)
    g._restore = graph._restore
    return g


# ---- common subexpressions -----------------------------------------------------------------------------

def _key(n):
    """A hashable description of what node ``n`` computes, or None (not merged: inputs, constants, impure
    ops, unhashable attributes)."""
    if n.kind in ("input", "const") or n.op in _IMPURE or n.op.startswith("random"):
        return None
    try:
        k = (n.kind, n.op, n.prim, _hashable(n.inputs), _hashable(n.attrs), n.device, n.rev)
        hash(k)
    except TypeError:
        return None
    return k


def _hashable(v):
    t = type(v)
    if t is dict:
        return ("dict",) + tuple((k, _hashable(e)) for k, e in v.items())
    if t is list or t is tuple:
        return (t.__name__,) + tuple(_hashable(e) for e in v)
    if t is slice:
        return ("slice", _hashable(v.start), _hashable(v.stop), _hashable(v.step))
    if t is float or t is complex:
        return (t.__name__, repr(v))        # -0.0 is not 0.0 here (x * -0.0 is not x * 0.0); nan is nan
    if t in (bool, int, str) or v is None or v is Ellipsis or t in (Ref, DTypeName):
        return (t.__name__, v)
    raise TypeError("not hashable")      # an opaque value (a callable...): never merged


def cse(graph):
    """Merge nodes computing the same op on the same inputs with the same attributes (one computation).

    >>> import gradtape as gt
    >>> from gradtape._jit.passes import cse, dce
    >>> g = dce(cse(gt.trace(lambda x: gt.exp(x) * gt.exp(x), gt.ones(2))))
    >>> [n.op for n in g.nodes]
    ['x', 'exp', 'multiply']
    """
    seen, alias, nodes = {}, {}, []
    for i, n in enumerate(graph.nodes):
        m = _copy(n, _map_refs(n.inputs, lambda r: Ref(alias.get(r.i, r.i))),
                  _map_refs(n.attrs, lambda r: Ref(alias.get(r.i, r.i))))
        nodes.append(m)
        k = _key(m)
        if k is None:
            continue
        j = seen.get(k)
        if j is None:
            seen[k] = i
        else:
            alias[i] = j
    return _rebuild(graph, nodes, alias)


# ---- constant folding ------------------------------------------------------------------------------------

def fold_constants(graph, max_elements=FOLD_MAX_ELEMENTS):
    """Compute, once, the nodes whose inputs are all constants and whose results have at most
    ``max_elements`` elements; they become constants (tracing already folds most such nodes).

    >>> import gradtape as gt
    >>> from gradtape.graph import Graph, IRNode, Ref
    >>> from gradtape._jit.passes import fold_constants
    >>> import gradtape.backends as B
    >>> b = B.get("cpu")
    >>> c = IRNode("const", "const", shape=(2,), dtype="float64", value=b.asarray([1.0, 2.0]), backend=b)
    >>> g = Graph([IRNode("input", "x", shape=(2,), dtype="float64"), c,
    ...            IRNode("prim", "sin", (Ref(1),), shape=(2,), dtype="float64")], [0], Ref(2))
    >>> [n.kind for n in fold_constants(g).nodes]
    ['input', 'const', 'const']
    """
    nodes = graph.nodes
    const = {i for i, n in enumerate(nodes) if n.kind == "const"}
    fold = []
    for i, n in enumerate(nodes):
        if n.kind not in ("prim", "fn") or n.op in _IMPURE or n.result_types is not None:
            continue
        deps = n.deps()
        if deps and all(d in const for d in deps) and n.shape is not None and \
                math.prod(n.shape) <= max_elements and not _opaque(n):
            fold.append(i)
            const.add(i)
    if not fold:
        return graph
    values = _evaluate(graph, fold)
    out = []
    for i, n in enumerate(nodes):
        if i in values:
            v, b = values[i]
            out.append(IRNode("const", "const", shape=n.shape, dtype=n.dtype, value=v, backend=b, device=n.device,
                              rev=n.rev))
        else:
            out.append(_copy(n))
    return _rebuild(graph, out, {})


def _opaque(n):
    return any(type(v).__name__ == "_Opaque" for v in _tree.leaves((n.inputs, n.attrs), subclasses=False))


def _evaluate(graph, targets):
    """{node: (raw value, backend)} of the target nodes (constants only feed them), by replaying a graph
    of the constants and the targets on the backend the constants live on."""
    nodes = graph.nodes
    need = set(targets)
    for i in sorted(targets, reverse=True):
        need.update(nodes[i].deps())
    keep = sorted(need)
    new = {old: k for k, old in enumerate(keep)}
    sub = [_copy(nodes[i], _map_refs(nodes[i].inputs, lambda r: Ref(new[r.i])),
                 _map_refs(nodes[i].attrs, lambda r: Ref(new[r.i]))) for i in keep]
    b = next((nodes[i].backend for i in keep if nodes[i].kind == "const"), None)
    if b is None:
        return {}
    outs = tuple(Ref(new[i]) for i in targets)
    g = Graph(sub, [], outs, name=graph.name, home=graph._home)
    raws = _Plan(g, b).fn()
    return {i: (r, b) for i, r in zip(targets, raws)}


# ---- algebraic identities -----------------------------------------------------------------------------

def _is_scalar(v, x):
    return type(v) in (int, float) and not isinstance(v, bool) and v == x


def _keeps_zero_sign(n, zero, sign):
    """Whether ``x + zero`` (sign -1) or ``x - zero`` (sign +1) is exactly x: always for integers; for floats only
    x + (-0.0) and x - (+0.0), since -0.0 + 0.0 is +0.0 (XLA keeps x + 0 for the same reason)."""
    return not str(n.dtype).startswith(("float", "complex")) or \
        (type(zero) is float and math.copysign(1.0, zero) == sign)


def _same_type(a, b):
    return a.shape is not None and a.shape == b.shape and a.dtype == b.dtype and a.result_types is None \
        and b.result_types is None


def simplify(graph):
    """Algebraic identities where the result is exactly the input (same shape and dtype): ``x*1``,
    ``1*x``, ``x+0`` and ``0+x`` (integers; floats only with -0.0), ``x-0`` (not -0.0 for floats), ``x/1``, ``x**1``, ``-(-x)``, ``astype`` to the same dtype, a
    reshape to the same shape; ``reshape(reshape(x))`` is one reshape, ``permute_dims(permute_dims(x))``
    one permutation (or ``x``).

    >>> import gradtape as gt
    >>> from gradtape._jit.passes import simplify, dce
    >>> g = dce(simplify(gt.trace(lambda x: gt.permute_dims(gt.permute_dims(x, (1, 0)), (1, 0)) * 1.0,
    ...                           gt.ones((2, 3)))))
    >>> len(g)
    1
    """
    nodes = [_copy(n) for n in graph.nodes]
    alias = {}

    def res(i):
        while i in alias:
            i = alias[i]
        return i
    for i, n in enumerate(nodes):
        n.inputs = _map_refs(n.inputs, lambda r: Ref(res(r.i)))
        n.attrs = _map_refs(n.attrs, lambda r: Ref(res(r.i)))
        _combine(nodes, n)
        j = _identity(nodes, n)
        if j is not None and _same_type(nodes[j], n) and nodes[j].device == n.device:
            alias[i] = j
    return _rebuild(graph, nodes, alias)


def _identity(nodes, n):
    """The index of the node whose value ``n`` equals, or None."""
    if n.kind not in ("prim", "fn"):
        return None
    ins, op = n.inputs, n.op
    refs = [type(a) is Ref for a in ins]
    if n.kind == "prim" and not n.attrs and len(ins) == 2:
        a, b = ins
        if op == "multiply":
            if refs[0] and _is_scalar(b, 1):
                return a.i
            if refs[1] and _is_scalar(a, 1):
                return b.i
        elif op == "add":
            if refs[0] and _is_scalar(b, 0) and _keeps_zero_sign(n, b, -1.0):
                return a.i
            if refs[1] and _is_scalar(a, 0) and _keeps_zero_sign(n, a, -1.0):
                return b.i
        elif op == "subtract":
            if refs[0] and _is_scalar(b, 0) and _keeps_zero_sign(n, b, 1.0):
                return a.i
        elif op in ("divide", "pow"):
            if refs[0] and _is_scalar(b, 1):
                return a.i
    if op == "negative" and len(ins) == 1 and refs[0]:
        p = nodes[ins[0].i]
        if p.kind == "prim" and p.op == "negative" and type(p.inputs[0]) is Ref:
            return p.inputs[0].i
    if op == "astype" and ins and refs[0]:
        return ins[0].i             # (kept only where the dtype is the input's: _same_type)
    if op == "reshape" and ins and refs[0]:
        return ins[0].i             # (kept only where the shape is the input's)
    if op == "permute_dims" and ins and refs[0]:
        axes = n.attrs.get("axes")
        if axes is not None and tuple(axes) == tuple(range(len(axes))):
            return ins[0].i
    return None


def _combine(nodes, n):
    """reshape(reshape(x)) -> reshape(x); permute_dims(permute_dims(x, p), q) -> permute_dims(x, p∘q)."""
    if n.kind != "prim" or not n.inputs or type(n.inputs[0]) is not Ref:
        return
    p = nodes[n.inputs[0].i]
    if p.kind != "prim" or p.op != n.op or not p.inputs or type(p.inputs[0]) is not Ref:
        return
    if n.op == "reshape" and set(n.attrs) == set(p.attrs) and "xshape" in n.attrs:
        src = nodes[p.inputs[0].i]
        if src.shape is not None:
            n.inputs = (p.inputs[0],) + tuple(n.inputs[1:])
            n.attrs = dict(n.attrs, xshape=tuple(src.shape))
    elif n.op == "permute_dims" and set(n.attrs) == {"axes"} == set(p.attrs):
        q, r = tuple(p.attrs["axes"]), tuple(n.attrs["axes"])
        if len(q) == len(r):
            n.inputs = (p.inputs[0],) + tuple(n.inputs[1:])
            n.attrs = {"axes": tuple(q[k] for k in r)}

