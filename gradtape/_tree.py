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

This module imports nothing from gradtape (a leaf utility).
"""
from __future__ import annotations

__all__ = ["Spec", "flatten", "unflatten", "map", "leaves"]

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
    return slice(*children)


class Spec:
    """The structure of a tree without its leaves (compare two with ``==``); ``num_leaves`` leaves fill it."""

    __slots__ = ("kind", "keys", "children", "num_leaves")

    def __init__(self, kind, keys=(), children=()):
        self.kind, self.keys, self.children = kind, tuple(keys), tuple(children)
        self.num_leaves = 1 if kind is _LEAF else sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return isinstance(other, Spec) and (self.kind, self.keys, self.children) == \
            (other.kind, other.keys, other.children)

    def __hash__(self):
        return hash((str(self.kind), self.keys, self.children))

    def __repr__(self):
        if self.kind is _LEAF:
            return "*"
        if self.kind is None:
            return "None"
        inner = ", ".join(repr(c) if self.kind is not dict else f"{k!r}: {c!r}"
                          for k, c in zip(self.keys or [None] * len(self.children), self.children))
        return {tuple: "({})", list: "[{}]", dict: "{{{}}}", slice: "slice({})"}[self.kind].format(inner)


def flatten(tree, *, is_leaf=None, subclasses=True):
    """``(leaves, spec)``: the leaves in order and the structure ``unflatten`` rebuilds from them."""
    out = []

    def walk(v):
        kind = _kind(v, is_leaf, subclasses)
        if kind is _LEAF:
            out.append(v)
            return Spec(_LEAF)
        if kind is None:
            return Spec(None)
        return Spec(kind, v.keys() if kind is dict else (), [walk(c) for c in _children(v, kind)])
    spec = walk(tree)
    return out, spec


def unflatten(spec, leaves):
    """The tree of structure ``spec`` with the given leaves, in order (a ValueError if their number differs)."""
    leaves = list(leaves)
    if len(leaves) != spec.num_leaves:
        raise ValueError(f"gradtape: a tree of structure {spec!r} takes {spec.num_leaves} leaves, "
                         f"got {len(leaves)}")
    it = iter(leaves)

    def build(s):
        if s.kind is _LEAF:
            return next(it)
        if s.kind is None:
            return None
        return _build(s.kind, s.keys, [build(c) for c in s.children])
    return build(spec)


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
