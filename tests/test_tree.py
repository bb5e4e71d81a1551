"""gradtape._tree: the one walker over tuple/list/dict/slice/None trees."""
import collections

import pytest

from gradtape import _tree

Point = collections.namedtuple("Point", "x y")


def test_flatten_order_and_roundtrip():
    tree = (1, [2, (3, None)], {"b": 4, "a": [5]}, slice(6, None, 7))
    leaves, spec = _tree.flatten(tree)
    assert leaves == [1, 2, 3, 4, 5, 6, 7]
    assert spec.num_leaves == 7
    assert _tree.unflatten(spec, leaves) == tree
    back = _tree.unflatten(spec, [x * 10 for x in leaves])
    assert back == (10, [20, (30, None)], {"b": 40, "a": [50]}, slice(60, None, 70))
    assert list(back[2]) == ["b", "a"]          # dict order kept


def test_types_rebuilt_plain():
    assert type(_tree.map(abs, [1, -2])) is list
    out = _tree.map(abs, Point(-1, -2))          # namedtuples walk as tuples, come back plain
    assert type(out) is tuple and out == (1, 2)
    out = _tree.map(abs, collections.OrderedDict(a=-1))
    assert type(out) is dict and out == {"a": 1}
    assert _tree.map(abs, slice(-1, None)) == slice(1, None, None)


def test_none_has_no_leaves():
    calls = []
    assert _tree.map(calls.append, None) is None
    assert calls == []
    assert _tree.leaves([None, (None,)]) == []
    leaves, spec = _tree.flatten(None)
    assert leaves == [] and _tree.unflatten(spec, []) is None


def test_scalar_is_one_leaf():
    leaves, spec = _tree.flatten(3.5)
    assert leaves == [3.5]
    assert _tree.unflatten(spec, ["x"]) == "x"
    assert _tree.map(str, "ab") == "ab"          # a string is a leaf, not a sequence


def test_is_leaf_stops_descent():
    pairs = [(1, 2), ((3, 4), 5)]
    is_pair = lambda v: type(v) is tuple and len(v) == 2 and not isinstance(v[0], tuple)  # noqa: E731
    assert _tree.leaves(pairs, is_leaf=is_pair) == [(1, 2), (3, 4), 5]
    assert _tree.map(sum, [(1, 2), [(3, 4)]], is_leaf=is_pair) == [3, [7]]
    assert _tree.flatten(pairs, is_leaf=is_pair)[0] == [(1, 2), (3, 4), 5]
    # is_leaf sees None too: it can make None a leaf
    assert _tree.leaves([None, 1], is_leaf=lambda v: v is None) == [None, 1]


def test_subclasses_false_keeps_subclasses_whole():
    tree = [Point(1, 2), collections.OrderedDict(a=1), (3,), {"b": [4]}, slice(5, None)]
    assert _tree.leaves(tree, subclasses=False) == [Point(1, 2), collections.OrderedDict(a=1), 3, 4, 5]
    out = _tree.map(lambda v: v, tree, subclasses=False)
    assert type(out[0]) is Point and type(out[1]) is collections.OrderedDict and out[2:] == tree[2:]
    leaves, spec = _tree.flatten(tree, subclasses=False)
    assert len(leaves) == 5 and _tree.unflatten(spec, leaves) == tree
    assert _tree.leaves(tree) == [1, 2, 1, 3, 4, 5]         # the default walks them


def test_spec_equality():
    _, a = _tree.flatten((1, [2, 3]))
    _, b = _tree.flatten(("x", ["y", "z"]))
    _, c = _tree.flatten((1, (2, 3)))
    _, d = _tree.flatten({"a": 1})
    _, e = _tree.flatten({"b": 1})
    assert a == b and hash(a) == hash(b)
    assert a != c and d != e
    assert repr(a) == "(*, [*, *])"


def test_unflatten_wrong_count():
    _, spec = _tree.flatten([1, 2])
    with pytest.raises(ValueError, match="takes 2 leaves, got 3"):
        _tree.unflatten(spec, [1, 2, 3])
    with pytest.raises(ValueError, match="takes 2 leaves, got 1"):
        _tree.unflatten(spec, [1])


def test_leaf_module_imports_nothing_from_gradtape():
    import ast
    import inspect
    mods = [n for n in ast.walk(ast.parse(inspect.getsource(_tree)))
            if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in mods for a in n.names] + [getattr(n, "module", None) or "" for n in mods]
    assert all(not x.startswith(("gradtape", ".")) and getattr(n, "level", 0) == 0
               for x in names for n in mods), names
