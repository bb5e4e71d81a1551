"""The graph passes of gt.jit (gradtape/_jit/passes.py), each alone: what it removes, what it must keep, and
that the optimised graph computes the same values (also through its JSON form)."""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt
from gradtape import backends
from gradtape._jit import passes
from gradtape.graph import Graph, IRNode, Ref

DEV = "strict"


def _a(v):
    return gt.asarray(v, device=DEV)


def _ops(g):
    return [n.op for n in g.nodes]


def _same(g, h, *args):
    for a, b in zip(gt.tree.leaves(g(*args)), gt.tree.leaves(h(*args))):
        a, b = gt.to_numpy(a), gt.to_numpy(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


X = _a([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]])


IDENTITIES = [
    ("x*1", lambda x: x * 1.0), ("1*x", lambda x: 1.0 * x), ("x+(-0.0)", lambda x: x + (-0.0)),
    ("(-0.0)+x", lambda x: -0.0 + x), ("x-0", lambda x: x - 0.0), ("x/1", lambda x: x / 1.0), ("x**1", lambda x: x ** 1),
    ("--x", lambda x: -(-x)), ("astype same", lambda x: gt.astype(x, gt.float64)),
    ("reshape same", lambda x: gt.reshape(x, (2, 3))),
    ("reshape reshape back", lambda x: gt.reshape(gt.reshape(x, (6,)), (2, 3))),
    ("permute permute back", lambda x: gt.permute_dims(gt.permute_dims(x, (1, 0)), (1, 0))),
    ("mT mT", lambda x: x.T.T),
]


@pytest.mark.parametrize("name,f", IDENTITIES, ids=[n for n, _ in IDENTITIES])
def test_simplify_removes_identities(name, f):
    g = gt.trace(f, X)
    h = passes.dce(passes.simplify(g))
    assert _ops(h) == ["x"], (name, _ops(h))
    _same(g, h, X)


def test_simplify_combines_reshapes_and_permutations():
    g = gt.trace(lambda x: gt.reshape(gt.reshape(x, (6,)), (3, 2)), X)
    h = passes.dce(passes.simplify(g))
    assert _ops(h) == ["x", "reshape"] and h.nodes[1].attrs["xshape"] == (2, 3)
    _same(g, h, X)
    y = _a(np.arange(24.0).reshape(2, 3, 4))
    g = gt.trace(lambda x: gt.permute_dims(gt.permute_dims(x, (2, 0, 1)), (0, 2, 1)), y)
    h = passes.dce(passes.simplify(g))
    assert _ops(h) == ["x", "permute_dims"]
    _same(g, h, y)


@pytest.mark.parametrize("f", [lambda x: x * 2.0, lambda x: x + 1.0, lambda x: x - x, lambda x: x * 1.0 + x,
                               lambda x: gt.astype(x, gt.float32), lambda x: gt.reshape(x, (3, 2)),
                               lambda x: x * gt.ones((4, 2, 3), device=DEV)])
def test_simplify_keeps_what_is_not_an_identity(f):
    g = gt.trace(f, X)
    h = passes.dce(passes.simplify(g))
    assert len(h) >= 2
    _same(g, h, X)


@pytest.mark.parametrize("f", [lambda x: x + 0.0, lambda x: 0.0 + x, lambda x: 0 + x, lambda x: x - (-0.0)],
                         ids=["x+0.0", "0.0+x", "0+x", "x-(-0.0)"])
def test_simplify_keeps_the_sign_of_zero(f):
    """-0.0 + 0.0 is +0.0: for floats x + 0 and x - (-0.0) are not identities (XLA keeps them too)."""
    z = _a([-0.0, 1.0])
    h = passes.dce(passes.simplify(gt.trace(f, z)))
    assert len(h) == 2
    assert not np.signbit(gt.to_numpy(gt.jit(f)(z))[0]) and not np.signbit(gt.to_numpy(f(z))[0])
    i = gt.asarray([-3, 4], device="cpu")              # integers: x + 0 is x
    assert len(passes.dce(passes.simplify(gt.trace(lambda i: i + 0, i)))) == 1


def test_simplify_keeps_a_change_of_dtype():
    i = gt.asarray([1, 2, 3], device="cpu")
    g = gt.trace(lambda i: i * 1.0, i)
    h = passes.dce(passes.simplify(g))
    assert _ops(h) == ["i", "multiply"] and h.nodes[1].dtype == "float64"


def test_cse_merges_same_op_inputs_and_attrs_only():
    def f(x):
        a, b = gt.exp(x), gt.exp(x)
        c, d = gt.sum(x, axis=0), gt.sum(x, axis=1)
        return a * b, gt.sum(c) + gt.sum(d)
    g = gt.trace(f, X)
    h = passes.dce(passes.cse(g))
    assert _ops(h).count("exp") == 1 and _ops(h).count("sum") == 4     # sum(axis=0) and sum(axis=1) differ
    _same(g, h, X)


def test_cse_never_merges_impure_ops():
    b = backends.get(DEV)
    nodes = [IRNode("input", "x", shape=(2,), dtype="float64", device=None)]
    for _ in range(2):
        nodes.append(IRNode("fn", "random", (Ref(0),), shape=(2,), dtype="float64"))
    assert passes._key(nodes[1]) is None
    assert passes._key(IRNode("prim", "sin", (Ref(0),), shape=(2,), dtype="float64")) is not None
    assert b is not None


def test_dce_drops_unused_nodes_keeps_inputs_and_guards():
    g = gt.trace(lambda x, y: x * 2.0, X, X)
    nodes = [passes._copy(n) for n in g.nodes] + [IRNode("prim", "sin", (Ref(0),), shape=(2, 3), dtype="float64")]
    h = Graph(nodes, list(g._in), g._out_tree, name="h")
    assert len(passes.dce(h)) == 3 and _ops(passes.dce(h))[:2] == ["x", "y"]

    def branch(x):
        return x * 2.0 if gt.sum(x) > 0 else x
    g = gt.trace(branch, X)
    h = passes.optimize(g)
    assert [gd.kind for gd in h.guards] == ["bool"] and h.nodes[h.guards[0].node].op == "greater"
    with pytest.raises(RuntimeError, match="traced path took"):
        h(-X)


def test_fold_constants_within_the_size_bound():
    b = backends.get(DEV)
    small = IRNode("const", "const", shape=(3,), dtype="float64", value=b.asarray([1.0, 2.0, 3.0]), backend=b)
    big = IRNode("const", "const", shape=(3,), dtype="float64", value=b.asarray([1.0, 2.0, 3.0]), backend=b)
    x = IRNode("input", "x", shape=(3,), dtype="float64")
    sin = gt.trace(gt.sin, _a([1.0])).nodes[1]
    nodes = [x, small, IRNode("prim", "sin", (Ref(1),), shape=(3,), dtype="float64", prim=sin.prim),
             IRNode("prim", "add", (Ref(0), Ref(2)), shape=(3,), dtype="float64", prim=gt.trace(
                 lambda a: a + a, _a(1.0)).nodes[1].prim), big]
    g = Graph(nodes, [0], Ref(3))
    h = passes.fold_constants(g)
    assert [n.kind for n in h.nodes] == ["input", "const", "const", "prim", "const"]
    np.testing.assert_allclose(gt.to_numpy(gt.asarray(h.nodes[2].value)), np.sin([1.0, 2.0, 3.0]))
    assert [n.kind for n in passes.fold_constants(g, max_elements=2).nodes][2] == "prim"
    _same(g, h, _a([0.5, 0.5, 0.5]))


def test_optimize_keeps_values_json_and_gradients():
    def f(x):
        y = gt.sin(x) * 1.0 + 0.0
        return gt.sum(y * gt.sin(x)) + gt.sum(gt.reshape(gt.reshape(x, (6,)), (2, 3)) ** 1)
    g = gt.trace(gt.grad(f), X)
    h = passes.optimize(g)
    assert len(h) < len(g)
    _same(g, h, X)
    _same(h, Graph.from_json(h.to_json()), X)


def test_passes_do_not_change_the_input_graph():
    g = gt.trace(lambda x: x * 1.0 + gt.exp(x) + gt.exp(x), X)
    before = str(g)
    passes.optimize(g)
    assert str(g) == before


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_cse_keeps_signed_zero_and_nan_constants_apart(backend):
    """x * 0.0 and x * -0.0 are different computations (-0.0 for x > 0), as are x + nan and x + 0.0: common
    subexpressions keyed the constants by ==, which merged the first pair (found by the strip interpreter's
    constant tests)."""
    x = gt.asarray(np.linspace(0.1, 1.0, 5), device="cpu" if backend == "numpy" else "strict")
    f = lambda v: (gt.sin(v) * 0.0, gt.sin(v) * -0.0, gt.exp(v) + float("nan"), gt.exp(v) + float("nan"))  # noqa: E731
    g = gt.trace(f, x)
    h = passes.cse(g)
    outs = [gt.to_numpy(o) for o in h(x)]
    want = [gt.to_numpy(o) for o in f(x)]
    for a, b in zip(outs, want):
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
        np.testing.assert_array_equal(a, b)
    jf = gt.jit(f)
    for a, b in zip(jf(x), want):
        np.testing.assert_array_equal(np.signbit(gt.to_numpy(a)), np.signbit(b))
    assert len(passes.dce(h)) == len(g) - 3   # sin, exp and the nan addition merge; the products do not
