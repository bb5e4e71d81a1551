"""gt.jit's elementwise fusion (gradtape/_jit/fusion.py): region boundaries and outputs on small traced graphs,
across the forward and the reverse pass; non-elementwise nodes split regions; no region makes a cycle."""
import numpy as np

import gradtape as gt
from gradtape._jit.fusion import find_regions, is_elementwise
from gradtape._jit.lower import rewrite


def ops(g, region):
    return [g.nodes[i].op for i in region.nodes]


def test_forward_and_backward_in_one_region():
    def f(x):
        return gt.sum(gt.tanh(gt.sin(x) * 1.01 + 0.5))
    g = gt.trace(gt.grad(f), gt.ones(4))
    (r,) = find_regions(g)
    rev = [g.nodes[i].rev for i in r.nodes]
    assert any(rev) and not all(rev)                  # both passes
    assert r.outputs == g._out_refs()                   # only the gradient leaves the region
    assert r.shape == (4,) and r.ftype == "float64"
    assert all(g.nodes[i].kind in ("input", "const") for i in r.inputs)


def test_outputs_are_only_values_used_outside():
    def f(x):
        a = gt.sin(x)
        b = a * 2.0
        c = gt.exp(b)
        return gt.sum(c), b + 1.0
    g = gt.trace(f, gt.ones(3))
    regs = find_regions(g)
    assert len(regs) == 1
    (r,) = regs
    outs = {g.nodes[i].op for i in r.outputs}
    assert outs == {"exp", "add"}                       # exp feeds the sum; b + 1 is a graph output
    assert all(g.nodes[i].op != "sin" for i in r.outputs)


def test_reduction_and_matmul_split_regions():
    def f(x, w):
        h = gt.tanh(x * 2.0 + 1.0)
        s = gt.sum(h, axis=1, keepdims=True)            # a reduction: not elementwise
        z = (h - s) * 3.0
        y = gt.sin(z @ w) * 0.5                         # matmul splits again
        return gt.cos(y) + y
    g = gt.trace(f, gt.ones((2, 3)), gt.ones((3, 3)))
    regs = find_regions(g)
    kinds = [set(ops(g, r)) for r in regs]
    assert len(regs) == 3
    assert {"multiply", "add", "tanh"} <= kinds[0]
    assert {"subtract", "multiply"} == kinds[1]
    assert {"sin", "multiply", "cos", "add"} <= kinds[2]
    for r in regs:
        assert not {"sum", "matmul"} & set(ops(g, r))


def test_reshape_splits_and_shapes_differ():
    def f(x):
        a = gt.exp(x) * 2.0                             # shape (6,)
        b = gt.reshape(a, (2, 3))
        return gt.log(b) + 1.0                          # shape (2, 3)
    g = gt.trace(f, gt.ones(6))
    regs = find_regions(g)
    assert [r.shape for r in regs] == [(6,), (2, 3)]
    assert "reshape" not in ops(g, regs[0]) + ops(g, regs[1])


def test_broadcast_input_stays_at_the_edge():
    def f(x, b):
        return gt.tanh(x + b) * 2.0
    g = gt.trace(f, gt.ones((4, 3)), gt.ones(3))
    (r,) = find_regions(g)
    assert r.shape == (4, 3) and set(r.inputs) == {0, 1}


def test_no_cycle_through_an_outside_node():
    # a = sin(x); s = sum(a) (outside); b = a * s; a region {a, b} would need s before and after it
    def f(x):
        a = gt.sin(x) * 2.0
        s = gt.sum(a)
        return gt.exp(a) * s
    g = gt.trace(f, gt.ones(5))
    regs = find_regions(g)
    where = {i: k for k, r in enumerate(regs) for i in r.nodes}
    mul_s = next(i for i, n in enumerate(g.nodes) if n.op == "multiply" and any(
        getattr(a, "i", None) is not None and g.nodes[a.i].op == "sum" for a in n.inputs))
    sin = next(i for i, n in enumerate(g.nodes) if n.op == "sin")
    assert where.get(mul_s) != where.get(sin) or mul_s not in where
    # the rewritten graph is a valid order (Graph checks every read is of an earlier node)
    class K:
        def __init__(self, r):
            self.region = r
    g2 = rewrite(g, [K(r) for r in regs])
    assert sum(n.op.startswith("fused") for n in g2.nodes) == len(regs) >= 1


def test_integer_and_complex_nodes_are_not_fused():
    g = gt.trace(lambda x: (x + 1) * 2, gt.asarray(np.arange(4)))
    assert all(is_elementwise(g, i) is None for i in range(len(g.nodes)))
    g = gt.trace(lambda x: gt.sin(x) * 2.0, gt.asarray(np.ones(3, complex)))
    assert find_regions(g) == []


def test_single_nodes_are_not_regions():
    g = gt.trace(lambda x: gt.sum(gt.sin(x)), gt.ones(3))
    assert find_regions(g) == []
    assert len(find_regions(g, min_size=1)) == 1


def test_exclude_policy_splits():
    def f(x):
        return gt.sin(gt.asin(x * 0.5) * 2.0) + 1.0
    g = gt.trace(f, gt.ones(4))
    assert len(find_regions(g)) == 1
    regs = find_regions(g, exclude=lambda n: n.op == "asin")
    assert all("asin" not in ops(g, r) for r in regs)


# ---- no cycle between regions: the graph with one node per region stays acyclic -------------------------

def _acyclic(g, regs):
    """Whether the condensed graph (a node per region, the other nodes as they are) has a topological order
    (checked here independently of lower.rewrite)."""
    unit = {i: ("r", k) for k, r in enumerate(regs) for i in r.nodes}
    need = {}
    for i, n in enumerate(g.nodes):
        u = unit.get(i, ("n", i))
        need.setdefault(u, set()).update(unit.get(d, ("n", d)) for d in n.deps())
        need[u].discard(u)
    done, left = set(), dict(need)
    while left:
        ready = [u for u, v in left.items() if v <= done]
        if not ready:
            return False
        for u in ready:
            done.add(u)
            del left[u]
    return True


class _K:
    def __init__(self, r):
        self.region = r


def _ops_of(g, regs):
    return [sorted(g.nodes[i].op for i in r.nodes) for r in regs]


def test_two_regions_never_feed_each_other():
    # b = a * sum(a) cannot join a's region (the sum runs between them); c = cos(y) would join b's; then
    # e = a + c must not join a's region: {a, e} and {b, c} would each need the other first.
    def f(x, y):
        a = gt.sin(x)
        b = a * gt.sum(a)
        c = gt.cos(y)
        e = a + c
        return b, e
    g = gt.trace(f, gt.ones(3), gt.ones(3))
    regs = find_regions(g)
    assert _acyclic(g, regs)
    assert _ops_of(g, regs) == [["add", "cos", "multiply"]]     # maximal: e joins b's region instead
    rewrite(g, [_K(r) for r in regs])


def test_a_node_reading_two_regions_joins_the_one_it_can():
    # t = cos(y) * sum(a) starts a second region (the sum needs a's region first); e = a + 2t reads both
    # regions: a's region must not take it (a -> sum -> t -> e would leave and re-enter it).
    def f(x, y):
        a = gt.sin(x)
        u = gt.cos(y) * gt.sum(a)
        t = u * 2.0
        return a * 3.0 + t
    g = gt.trace(f, gt.ones(3), gt.ones(3))
    regs = find_regions(g, min_size=1)
    assert _acyclic(g, regs)
    add = next(i for i, n in enumerate(g.nodes) if n.op == "add")
    sin = next(i for i, n in enumerate(g.nodes) if n.op == "sin")
    reg_of = {i: k for k, r in enumerate(regs) for i in r.nodes}
    assert reg_of[add] != reg_of[sin]
    rewrite(g, [_K(r) for r in regs])


def test_a_region_through_a_later_member_of_another():
    # A region D = {d, e} where only e (its later member) reads region T: a T member reading d closes
    # T -> D -> T at the region level although no single path leaves T and comes back into it.
    def f(x, y):
        t0 = gt.exp(x)
        d = gt.sin(y) * gt.sum(t0)          # d's region cannot be t0's (the sum)
        e = d + t0                            # joins d's region, reads t0's
        t1 = t0 * gt.tanh(d)                  # reads d: t0's region must not take it
        return e, t1
    g = gt.trace(f, gt.ones(3), gt.ones(3))
    for m in (1, 2):
        regs = find_regions(g, min_size=m)
        assert _acyclic(g, regs)
        rewrite(g, [_K(r) for r in regs])


def _random_program(rng, n_ops):
    def f(x, y):
        vals = [x, y]
        for _ in range(n_ops):
            k = rng.integers(0, 6)
            a = vals[rng.integers(0, len(vals))]
            b = vals[rng.integers(0, len(vals))]
            if k == 0:
                v = gt.sin(a)
            elif k == 1:
                v = a * b
            elif k == 2:
                v = a + 0.5 * b
            elif k == 3:
                v = a * gt.sum(b) * 0.1          # a reduction between elementwise nodes
            elif k == 4:
                v = gt.tanh(a - gt.max(b))
            else:
                v = gt.reshape(gt.reshape(a, (2, 2)) * 1.5, (4,))
            vals.append(v)
        return gt.sum(vals[-1]) + gt.sum(vals[len(vals) // 2])
    return f


def test_random_graphs_and_their_gradients_have_acyclic_regions():
    rng = np.random.default_rng(13)
    x, y = gt.asarray(np.linspace(-1, 1, 4)), gt.asarray(np.linspace(0.5, 2, 4))
    fused = 0
    for k in range(60):
        f = _random_program(np.random.default_rng(k), int(rng.integers(4, 14)))
        for h in (f, gt.grad(f, argnums=(0, 1)),
                  gt.grad(lambda a, b, f=f: gt.sum(gt.grad(f)(a, b) * 0.3), argnums=(0, 1))):
            g = gt.trace(h, x, y)
            for m in (1, 2):
                regs = find_regions(g, min_size=m)
                assert _acyclic(g, regs), (k, regs)
                fused += sum(len(r.nodes) for r in regs)
    assert fused > 1000                                   # the graphs did fuse


# ---- guards: the numba lowering keeps them (guarded nodes stay outside the kernels) ------------------------

def _chain_loop(x):
    y = gt.sin(x) * 2.0 + 1.5
    while gt.max(y) > 1.0:                   # the loop count depends on the values
        y = gt.tanh(y) * 0.8 - 0.1
    return gt.exp(y) * y + 1.0


def _chain_branch(x):
    y = gt.cos(x) * 3.0 - 1.0
    if gt.sum(y) > 0:
        return gt.exp(y) * 0.5 + y
    return gt.sin(y) * y - 2.0


def test_guarded_graphs_are_fused_and_checked():
    pytest = __import__("pytest")
    pytest.importorskip("numba")
    from gradtape import backends
    from gradtape._jit import passes
    from gradtape._jit.lower import compile_graph
    from gradtape.graph.guards import GuardError
    x = gt.asarray(np.array([0.1, 0.2, 0.3]))
    g = passes.optimize(gt.trace(_chain_branch, x))
    assert g.guards
    exe = compile_graph(g, backends.get("cpu"))
    assert exe.kind == "numba" and len(exe.graph.guards) == len(g.guards)
    for gd in exe.graph.guards:                                     # on nodes the plan computes itself
        assert not exe.graph.nodes[gd.node].op.startswith("fused")
    (got,) = exe(np.array([0.2, 0.1, 0.0]))
    assert np.allclose(got, gt.to_numpy(_chain_branch(gt.asarray(np.array([0.2, 0.1, 0.0])))), rtol=1e-12)
    with pytest.raises(GuardError, match="traced path took"):
        exe(np.array([3.0, 3.0, 3.0]))                              # the other branch: refused, not replayed


def test_jit_of_guarded_functions_runs_fused_kernels():
    __import__("pytest").importorskip("numba")
    for f, inputs, paths in ((_chain_loop, ([0.1, 0.2], [-1.5, -1.4], [0.1, 0.2], [1.2, 1.0]), 2),
                             (_chain_branch, ([0.1, 0.2], [3.0, 3.0], [0.3, 0.1]), 2)):
        jf = gt.jit(f)
        for v in inputs:
            x = gt.asarray(np.array(v))
            want, got = gt.to_numpy(f(x)), gt.to_numpy(jf(x))
            assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (f.__name__, v, got, want)
            low = jf.lower(x)
            assert low.kind == "numba" and low.graph.guards
        assert jf.cache_info().traces >= paths


def test_astype_between_bool_and_float_is_fused():
    """astype's dtype is a positional input (a DTypeName): a mask cast to the float type, and a float cast to
    bool, join the region around them (they were backend calls between two kernels)."""
    import pytest
    pytest.importorskip("numba")

    def f(x, y):
        a = gt.astype(x > 0.0, gt.float64) * gt.sin(x)
        b = gt.astype(x, gt.bool)
        return gt.where(b, a, y) * gt.cos(y)
    x = gt.asarray(np.array([-1.0, 0.0, 0.5, 2.0, -0.0, 3.0]))
    y = gt.asarray(np.linspace(-1, 1, 6))
    g = gt.trace(f, x, y)
    fused = {g.nodes[i].op for r in find_regions(g) for i in r.nodes}
    assert "astype" in fused, fused
    jf = gt.jit(f)
    np.testing.assert_array_equal(gt.to_numpy(jf(x, y)), gt.to_numpy(f(x, y)))
    assert "astype(" not in jf.lower(x, y).source().split("# ---- steps")[1]
    dx = gt.grad(lambda a, b: gt.sum(jf(a, b)), argnums=(0, 1))(x, y)
    for a, b in zip(dx, gt.grad(lambda a, b: gt.sum(f(a, b)), argnums=(0, 1))(x, y)):
        np.testing.assert_allclose(gt.to_numpy(a), gt.to_numpy(b), rtol=1e-12, atol=1e-15)
