"""The one walker over nested containers ("trees") that gradtape uses: transforms, graph tracing, sym.

Containers are tuples, lists, dicts, slices and ``None``; everything else is a leaf. Tuples include their
subclasses (namedtuples, ``torch.Size``), lists and dicts theirs, and all three come back as the plain type;
a slice is a container of its ``start``, ``stop`` and ``step``; ``None`` is a container without leaves
(as in JAX), so it comes back as ``None`` and ``fn`` never sees it. Dict leaves follow the dict's order.
``is_leaf(v)``, where given, is asked first at every node: true makes ``v`` a leaf even if it is a container.
``subclasses=False`` walks only the plain types: a namedtuple, an OrderedDict... is then a leaf, kept whole.

>>> from gradtape import _tree
>>> leaves, spec = _tree.flatten((1, [2, None], {"a": 3}))
>>> leaves
[1, 2, 3]
>>> _tree.unflatten(spec, [10, 20, 30])
(10, [20, None], {'a': 30})
>>> _tree.map(lambda v: v * 2, {"w": [1, 2], "s": slice(1, None)})
{'w': [2, 4], 's': slice(2, None, None)}
>>> _tree.map(str, [(1, 2), 3], is_leaf=lambda v: type(v) is tuple)
['(1, 2)', '3']
>>> _tree.leaves([1, (2, 3)])
[1, 2, 3]
>>> import collections
>>> P = collections.namedtuple("P", "x y")
>>> _tree.map(str, [P(1, 2), (1, 2)], subclasses=False)
['P(x=1, y=2)', ('1', '2')]

The second half is the pytree walker of ``gt.tree`` and the transforms, with JAX's semantics
(:func:`tree_flatten`, :func:`tree_unflatten`, :func:`tree_map`...): tuples, lists, dicts (keys sorted),
``None`` (no leaves), namedtuples, ``OrderedDict`` and ``defaultdict`` (each kept as its own type) and the
types given to :func:`register_pytree_node` are nodes; everything else, a slice or a list subclass
included, is a leaf. Paths name a leaf in messages (``['b'][0].x``).

>>> leaves, spec = _tree.tree_flatten({"b": [1, None], "a": (P(2, 3),)})
>>> leaves, spec
([2, 3, 1], PyTreeDef({'a': (CustomNode(namedtuple[P], [*, *]),), 'b': [*, None]}))
>>> _tree.tree_unflatten(spec, [20, 30, 10])
{'a': (P(x=20, y=30),), 'b': [10, None]}

This module imports nothing from gradtape (a leaf utility).
"""
from __future__ import annotations

import collections

__all__ = ["Spec", "flatten", "unflatten", "map", "leaves", "TreeDef", "register_pytree_node", "tree_flatten",
           "tree_flatten_with_path", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure", "keystr",
           "flatten_up_to", "spec_difference"]

_LEAF = "leaf"
_EXACT = {tuple: tuple, list: list, dict: dict, slice: slice, type(None): None}


def _kind(v, is_leaf, subclasses):
    """The container kind of ``v``: tuple, list, dict, slice, None, or _LEAF (one dict lookup for most values)."""
    if is_leaf is not None and is_leaf(v):
        return _LEAF
    kind = _EXACT.get(type(v), _LEAF)
    if kind is _LEAF and subclasses:
        if isinstance(v, tuple):
            return tuple
        if isinstance(v, list):
            return list
        if isinstance(v, dict):
            return dict
    return kind


def _children(v, kind):
    if kind is dict:
        return v.values()
    if kind is slice:
        return (v.start, v.stop, v.step)
    return v


def _build(kind, keys, children):
    if kind is tuple:
        return tuple(children)
    if kind is list:
        return list(children)
    if kind is dict:
        return dict(zip(keys, children))
    if type(kind) is _Node:
        return kind.unflatten(keys, list(children))
    return slice(*children)


class Spec:
    """The structure of a tree without its leaves (compare two with ``==``); ``num_leaves`` leaves fill it."""

    __slots__ = ("kind", "keys", "children", "num_leaves")

    def __init__(self, kind, keys=(), children=()):
        # keys: a dict's keys; for a registered node (a _Node kind) its aux data, kept as given
        self.kind, self.keys, self.children = kind, keys if type(kind) is _Node else tuple(keys), tuple(children)
        self.num_leaves = 1 if kind is _LEAF else sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return isinstance(other, Spec) and (self.kind, self.keys, self.children) == \
            (other.kind, other.keys, other.children)

    def __hash__(self):
        try:
            return hash((str(self.kind), self.keys, self.children))
        except TypeError:       # aux data that cannot be hashed
            return hash((str(self.kind), self.children))

    def __repr__(self):
        if self.kind is _LEAF:
            return "*"
        if self.kind is None:
            return "None"
        if type(self.kind) is _Node:
            aux = "" if self.kind.name.startswith("namedtuple") else f"[{self.keys!r}]"
            return f"CustomNode({self.kind.name}{aux}, [{', '.join(map(repr, self.children))}])"
        if self.kind is tuple and len(self.children) == 1:
            return f"({self.children[0]!r},)"
        inner = ", ".join(repr(c) if self.kind is not dict else f"{k!r}: {c!r}"
                          for k, c in zip(self.keys or [None] * len(self.children), self.children))
        return {tuple: "({})", list: "[{}]", dict: "{{{}}}", slice: "slice({})"}[self.kind].format(inner)


def flatten(tree, *, is_leaf=None, subclasses=True):
    """``(leaves, spec)``: the leaves in order and the structure ``unflatten`` rebuilds from them."""
    out = []
    return out, _flatten_into(tree, out, is_leaf, subclasses)


# The recursions below are module-level functions taking their state as arguments: a nested function that calls
# itself is a reference cycle (function -> closure cell -> function) holding the leaves until the garbage collector
# runs, which kept every flattened tensor (per-example gradients of many MB under gt.vmap) alive past its last use.
def _flatten_into(v, out, is_leaf, subclasses):
    kind = _kind(v, is_leaf, subclasses)
    if kind is _LEAF:
        out.append(v)
        return Spec(_LEAF)
    if kind is None:
        return Spec(None)
    return Spec(kind, v.keys() if kind is dict else (),
                [_flatten_into(c, out, is_leaf, subclasses) for c in _children(v, kind)])


def unflatten(spec, leaves):
    """The tree of structure ``spec`` with the given leaves, in order (a ValueError if their number differs)."""
    leaves = list(leaves)
    if len(leaves) != spec.num_leaves:
        raise ValueError(f"gradtape: a tree of structure {spec!r} takes {spec.num_leaves} leaves, "
                         f"got {len(leaves)}")
    return _unflatten_from(spec, iter(leaves))


def _unflatten_from(s, it):
    if s.kind is _LEAF:
        return next(it)
    if s.kind is None:
        return None
    return _build(s.kind, s.keys, [_unflatten_from(c, it) for c in s.children])


def map(fn, tree, *, is_leaf=None, subclasses=True):
    """The tree with every leaf ``v`` replaced by ``fn(v)`` (containers rebuilt as their plain type)."""
    return _map(fn, tree, is_leaf, subclasses)


def _map(fn, v, is_leaf, subclasses):
    # written out by type, not through _kind: tracing and graph building call this for every value
    if is_leaf is not None and is_leaf(v):
        return fn(v)
    t = type(v)
    if t is tuple:
        return tuple([_map(fn, e, is_leaf, subclasses) for e in v])
    if t is list:
        return [_map(fn, e, is_leaf, subclasses) for e in v]
    if t is dict:
        return {k: _map(fn, e, is_leaf, subclasses) for k, e in v.items()}
    if t is slice:
        return slice(_map(fn, v.start, is_leaf, subclasses), _map(fn, v.stop, is_leaf, subclasses),
                     _map(fn, v.step, is_leaf, subclasses))
    if v is None:
        return None
    if subclasses and isinstance(v, (tuple, list, dict)):
        items = v.items() if isinstance(v, dict) else None
        if items is not None:
            return {k: _map(fn, e, is_leaf, subclasses) for k, e in items}
        out = [_map(fn, e, is_leaf, subclasses) for e in v]
        return tuple(out) if isinstance(v, tuple) else out
    return fn(v)


def leaves(tree, *, is_leaf=None, subclasses=True):
    """The leaves of ``tree`` in order (``flatten(tree)[0]``)."""
    out = []
    _leaves(tree, out, is_leaf, subclasses)
    return out


def _leaves(v, out, is_leaf, subclasses):
    if is_leaf is None or not is_leaf(v):
        t = type(v)
        if t is tuple or t is list:
            for e in v:
                _leaves(e, out, is_leaf, subclasses)
            return
        if t is dict:
            for e in v.values():
                _leaves(e, out, is_leaf, subclasses)
            return
        if t is slice:
            _leaves(v.start, out, is_leaf, subclasses)
            _leaves(v.stop, out, is_leaf, subclasses)
            _leaves(v.step, out, is_leaf, subclasses)
            return
        if v is None:
            return
        if subclasses and isinstance(v, (tuple, list, dict)):
            for e in (v.values() if isinstance(v, dict) else v):
                _leaves(e, out, is_leaf, subclasses)
            return
    out.append(v)


# ---- pytrees (JAX semantics): the registry behind gt.tree and the transforms ---------------------------

class _Node:
    """How a registered type splits: ``flatten(v) -> (children, aux)``, ``unflatten(aux, children) -> v``,
    ``keys(v, aux, n)``: the path entry of each of the n children (for messages)."""

    __slots__ = ("type", "flatten", "unflatten", "keys", "name")

    def __init__(self, type_, flatten, unflatten, keys=None, name=None):
        self.type, self.flatten, self.unflatten = type_, flatten, unflatten
        self.keys = keys or (lambda v, aux, n: [f"[<flat index {i}>]" for i in range(n)])
        self.name = name or type_.__name__

    def __repr__(self):
        return self.name


_REGISTRY = {}          # type -> _Node, exact types
_SUBCLASS_NODES = []    # (type, _Node): types whose subclasses are nodes too (gt.nn.Module)
_FOUND = {}             # type -> _Node or None: the lookup of _node_of, cached (cleared by registration)
_NAMEDTUPLES = {}       # namedtuple type -> its _Node
_BUILTIN = (tuple, list, dict, type(None))
_LEAF_SPEC, _NONE_SPEC = Spec(_LEAF), Spec(None)


def register_pytree_node(nodetype, flatten_func, unflatten_func, *, subclasses=False, keys=None):
    """Make ``nodetype`` a pytree node: ``flatten_func(x) -> (children, aux_data)``,
    ``unflatten_func(aux_data, children) -> x`` (JAX's signature). ``subclasses=True`` (gradtape's): its
    subclasses too; ``keys(x, aux_data, n)``: the path entries of the children in messages."""
    if nodetype in _BUILTIN or nodetype in _REGISTRY or any(t is nodetype for t, _ in _SUBCLASS_NODES):
        raise ValueError(f"gradtape.tree.register_pytree_node: {nodetype.__name__} is already a pytree node type")
    node = _Node(nodetype, flatten_func, unflatten_func, keys)
    if subclasses:
        _SUBCLASS_NODES.append((nodetype, node))
    else:
        _REGISTRY[nodetype] = node
    _FOUND.clear()


def _dict_keys(v, aux, n):
    return [f"[{k!r}]" for k in (aux[1] if type(v) is collections.defaultdict else aux)]


def _namedtuple_node(t):
    return _Node(t, lambda v: (tuple(v), None), lambda aux, c: t(*c),
                 lambda v, aux, n: [f".{f}" for f in t._fields], f"namedtuple[{t.__name__}]")


def _node_of(t):
    """The _Node of a non-builtin type, or None for a leaf."""
    try:
        return _FOUND[t]
    except KeyError:
        pass
    node = _REGISTRY.get(t)
    if node is None and issubclass(t, tuple) and hasattr(t, "_fields"):
        node = _NAMEDTUPLES.get(t)
        if node is None:        # one node per type for good: structures compare their nodes by identity
            node = _NAMEDTUPLES[t] = _namedtuple_node(t)
    if node is None:
        node = next((n for base, n in _SUBCLASS_NODES if issubclass(t, base)), None)
    _FOUND[t] = node
    return node


def _sorted_keys(d):
    try:
        return tuple(sorted(d))
    except TypeError:
        raise TypeError(f"gradtape.tree: a dict's keys are sorted to flatten it (as in JAX), but these cannot be "
                        f"compared: {list(d)!r}") from None


register_pytree_node(collections.OrderedDict, lambda v: (list(v.values()), tuple(v)),
                     lambda aux, c: collections.OrderedDict(zip(aux, c)), keys=_dict_keys)
register_pytree_node(collections.defaultdict,
                     lambda v: ([v[k] for k in _sorted_keys(v)], (v.default_factory, _sorted_keys(v))),
                     lambda aux, c: collections.defaultdict(aux[0], zip(aux[1], c)), keys=_dict_keys)


class TreeDef(Spec):
    """The structure of a pytree (``gt.tree.structure``), as JAX's ``PyTreeDef``; ``unflatten(leaves)`` fills it."""

    __slots__ = ()

    @classmethod
    def _of(cls, spec):
        t = cls.__new__(cls)
        t.kind, t.keys, t.children, t.num_leaves = spec.kind, spec.keys, spec.children, spec.num_leaves
        return t

    def unflatten(self, leaves):
        return unflatten(self, leaves)

    def __repr__(self):
        return f"PyTreeDef({Spec.__repr__(self)})"


def _split(v):
    """``(kind, keys, children)`` of a pytree node, or None for a leaf."""
    t = type(v)
    if t is tuple or t is list:
        return t, (), v
    if t is dict:
        ks = _sorted_keys(v)
        return dict, ks, [v[k] for k in ks]
    if v is None:
        return None, (), ()
    node = _node_of(t)
    if node is None:
        return _LEAF, None, None
    children, aux = node.flatten(v)
    return node, aux, children


def _entries(v, kind, keys, n):
    if kind is tuple or kind is list:
        return [f"[{i}]" for i in range(n)]
    if kind is dict:
        return [f"[{k!r}]" for k in keys]
    return kind.keys(v, keys, n)


def _pwalk(v, out, is_leaf, path, paths):
    if is_leaf is not None and is_leaf(v):
        kind = _LEAF
    else:
        kind, keys, children = _split(v)
    if kind is _LEAF:
        out.append(v)
        if paths is not None:
            paths.append(path)
        return _LEAF_SPEC
    if kind is None:
        return _NONE_SPEC
    children = list(children)
    if paths is None:
        return Spec(kind, keys, [_pwalk(c, out, is_leaf, None, None) for c in children])
    es = _entries(v, kind, keys, len(children))
    return Spec(kind, keys, [_pwalk(c, out, is_leaf, path + (e,), paths) for c, e in zip(children, es)])


def tree_flatten(tree, is_leaf=None):
    """``(leaves, treedef)`` of a pytree, JAX's order (dict keys sorted); ``is_leaf(v)`` true stops descent."""
    out = []
    return out, TreeDef._of(_pwalk(tree, out, is_leaf, None, None))


def tree_flatten_with_path(tree, is_leaf=None):
    """``([(path, leaf)...], treedef)``; a path is a tuple of entries such as ``"['b']"``, ``"[0]"``, ``".x"``."""
    out, paths = [], []
    spec = _pwalk(tree, out, is_leaf, (), paths)
    return list(zip(paths, out)), TreeDef._of(spec)


def keystr(path):
    """A path as one string, e.g. ``['b'][0].x``."""
    return "".join(path)


def tree_unflatten(treedef, leaves):
    """The pytree of structure ``treedef`` with ``leaves`` (in order)."""
    return unflatten(treedef, leaves)


def tree_leaves(tree, is_leaf=None):
    """The leaves of a pytree in JAX's order."""
    out = []
    _pwalk(tree, out, is_leaf, None, None)
    return out


def tree_structure(tree, is_leaf=None):
    """The TreeDef of a pytree."""
    return tree_flatten(tree, is_leaf)[1]


def _describe(spec):
    if spec.kind is _LEAF:
        return "a leaf"
    if spec.kind is None:
        return "None"
    name = spec.kind.name if type(spec.kind) is _Node else spec.kind.__name__
    n = len(spec.children)
    extra = f" with keys {list(spec.keys)}" if spec.kind is dict else ""
    return f"a {name} of {n} child{'' if n == 1 else 'ren'}{extra}"


def spec_difference(a, b, path=()):
    """Where and how two structures differ first (``(path, description of a, description of b)``), or None."""
    if a.kind is _LEAF or b.kind is _LEAF or a.kind != b.kind or len(a.children) != len(b.children) or \
            a.keys != b.keys:
        return None if a == b else (path, _describe(a), _describe(b))
    es = _spec_entries(a)
    for ca, cb, e in zip(a.children, b.children, es):
        got = spec_difference(ca, cb, path + (e,))
        if got is not None:
            return got
    return None


def _spec_entries(s):
    if s.kind is tuple or s.kind is list:
        return [f"[{i}]" for i in range(len(s.children))]
    if s.kind is dict:
        return [f"[{k!r}]" for k in s.keys]
    if type(s.kind) is _Node and s.kind.name.startswith("namedtuple"):
        return [f".{f}" for f in s.kind.type._fields]
    return [f"[<flat index {i}>]" for i in range(len(s.children))]


def flatten_up_to(spec, tree, what="tree"):
    """The subtrees of ``tree`` at the leaves of ``spec`` (``tree`` has ``spec`` as a prefix), in order; a
    ValueError naming the path where they differ."""
    out = []
    _up_to_into(spec, tree, (), out, what)
    return out


def _up_to_into(s, v, path, out, what):
    if s.kind is _LEAF:
        out.append(v)
        return
    kind, keys, children = _split(v)
    children = list(children or ())
    if kind is not s.kind or keys != s.keys or len(children) != len(s.children):
        got = Spec(kind, keys, [_LEAF_SPEC] * len(children)) if kind is not _LEAF else _LEAF_SPEC
        raise ValueError(f"gradtape.{what}: the structures differ at {keystr(path) or 'the root'}: expected "
                         f"{_describe(s)}, got {_describe(got)}")
    for c, sc, e in zip(children, s.children, _spec_entries(s)):
        _up_to_into(sc, c, path + (e,), out, what)


def tree_map(fn, tree, *rest, is_leaf=None):
    """``fn`` applied leaf by leaf to ``tree`` and the trees ``rest`` (which have ``tree``'s structure)."""
    leaves, spec = tree_flatten(tree, is_leaf)
    others = [flatten_up_to(spec, r, "tree.map") for r in rest]
    return unflatten(spec, [fn(*xs) for xs in zip(leaves, *others)])
