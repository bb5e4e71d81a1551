"""``gt.tree``: pytrees, nested containers of arrays, as in ``jax.tree`` (also ``gt.tree_util``).

Nodes are tuples, lists, dicts (flattened in sorted key order, as JAX), ``None`` (a node without leaves),
namedtuples, ``OrderedDict``/``defaultdict`` (each rebuilt as its own type), ``gt.nn.Module`` (its
parameters, by name) and any type given to :func:`register_pytree_node`; everything else is a leaf.
Every transform (``gt.grad``, ``gt.vjp``, ``gt.jvp``, ``gt.jacobian``...) takes and returns pytrees.

>>> import gradtape as gt
>>> leaves, treedef = gt.tree.flatten({"w": [1.0, 2.0], "b": None, "a": (3.0,)})
>>> leaves
[3.0, 1.0, 2.0]
>>> treedef
PyTreeDef({'a': (*,), 'b': None, 'w': [*, *]})
>>> gt.tree.unflatten(treedef, [30.0, 10.0, 20.0])
{'a': (30.0,), 'b': None, 'w': [10.0, 20.0]}
"""
from __future__ import annotations

from . import _tree
from ._tree import TreeDef, keystr

__all__ = ["flatten", "flatten_with_path", "unflatten", "map", "leaves", "structure", "register_pytree_node",
           "keystr", "TreeDef", "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure"]


def flatten(tree, is_leaf=None):
    """``(leaves, treedef)``: the leaves in order and the structure that :func:`unflatten` refills.

    >>> import gradtape as gt
    >>> gt.tree.flatten([1, (2, None), {"b": 3, "a": 4}])
    ([1, 2, 4, 3], PyTreeDef([*, (*, None), {'a': *, 'b': *}]))
    >>> gt.tree.flatten([1, (2, 3)], is_leaf=lambda v: isinstance(v, tuple))[0]
    [1, (2, 3)]
    """
    return _tree.tree_flatten(tree, is_leaf)


def flatten_with_path(tree, is_leaf=None):
    """``([(path, leaf), ...], treedef)``; ``gt.tree.keystr(path)`` spells a path as in messages.

    >>> import gradtape as gt
    >>> pairs, _ = gt.tree.flatten_with_path({"b": [1, 2]})
    >>> [(gt.tree.keystr(p), v) for p, v in pairs]
    [("['b'][0]", 1), ("['b'][1]", 2)]
    """
    return _tree.tree_flatten_with_path(tree, is_leaf)


def unflatten(treedef, leaves):
    """The pytree of structure ``treedef`` holding ``leaves`` (a ValueError if their number differs).

    >>> import gradtape as gt, collections
    >>> P = collections.namedtuple("P", "x y")
    >>> _, treedef = gt.tree.flatten(P(1, [2]))
    >>> gt.tree.unflatten(treedef, ["a", "b"])
    P(x='a', y=['b'])
    """
    return _tree.tree_unflatten(treedef, leaves)


def map(f, tree, *rest, is_leaf=None):
    """``f`` applied to every leaf of ``tree`` (and the corresponding leaves, or subtrees, of ``rest``).

    >>> import gradtape as gt
    >>> gt.tree.map(lambda x, y: x + y, {"a": 1, "b": (2, 3)}, {"a": 10, "b": (20, 30)})
    {'a': 11, 'b': (22, 33)}
    >>> gt.tree.map(lambda x: x * 2, [1, None, 3])
    [2, None, 6]
    """
    return _tree.tree_map(f, tree, *rest, is_leaf=is_leaf)


def leaves(tree, is_leaf=None):
    """The leaves of ``tree`` in order.

    >>> import gradtape as gt
    >>> gt.tree.leaves({"b": [gt.ones(2)], "a": 1.0})
    [1.0, Tensor([1., 1.])]
    """
    return _tree.tree_leaves(tree, is_leaf)


def structure(tree, is_leaf=None):
    """The :class:`TreeDef` of ``tree`` (two compare equal when the structures are the same).

    >>> import gradtape as gt
    >>> gt.tree.structure((1, [2])) == gt.tree.structure(("a", ["b"]))
    True
    """
    return _tree.tree_structure(tree, is_leaf)


def register_pytree_node(nodetype, flatten_func, unflatten_func):
    """Make ``nodetype`` a pytree node (JAX's signature): ``flatten_func(x) -> (children, aux_data)``,
    ``unflatten_func(aux_data, children) -> x``; ``aux_data`` is compared with ``==`` in structures.

    >>> import gradtape as gt
    >>> class Pair:
    ...     def __init__(self, a, b): self.a, self.b = a, b
    >>> gt.tree.register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda aux, c: Pair(*c))
    >>> gt.tree.leaves([Pair(1, 2), 3])
    [1, 2, 3]
    >>> gt.tree.map(lambda v: v * 10, Pair(1, 2)).b
    20
    """
    _tree.register_pytree_node(nodetype, flatten_func, unflatten_func)


tree_flatten, tree_unflatten, tree_map, tree_leaves, tree_structure = flatten, unflatten, map, leaves, structure
