"""Pytrees (issue 11, part 1): gt.tree against jax.tree_util, and every transform taking and returning pytrees,
values and structures equal to JAX's on random nested dict/list/tuple/namedtuple/None trees of float64 arrays."""
import collections

import numpy as np
import pytest

import gradtape as gt

P = collections.namedtuple("P", "x y")


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


# ---- random trees -------------------------------------------------------------------------------------------

SHAPES = [(), (2,), (3,), (2, 3)]


def _rand_tree(rng, depth=0, leaf=None):
    """A random pytree; ``leaf(rng)`` makes a leaf. At least one leaf in every tree."""
    leaf = leaf or (lambda r: r.standard_normal(SHAPES[r.integers(len(SHAPES))]) * 0.5)
    k = rng.integers(6) if depth < 3 else 5
    if k == 0:
        n = int(rng.integers(1, 4))
        keys = list(rng.choice(list("edcba"), n, replace=False))
        return {str(key): _rand_tree(rng, depth + 1, leaf) for key in keys}
    if k == 1:
        return [_rand_tree(rng, depth + 1, leaf) for _ in range(int(rng.integers(1, 3)))]
    if k == 2:
        return tuple(_rand_tree(rng, depth + 1, leaf) for _ in range(int(rng.integers(1, 3))))
    if k == 3:
        return P(_rand_tree(rng, depth + 1, leaf), _rand_tree(rng, depth + 1, leaf))
    if k == 4:
        return [None, _rand_tree(rng, depth + 1, leaf)]
    return leaf(rng)


def _gt_tree(t):
    return gt.tree.map(lambda a: gt.asarray(a), t)


def _jax_tree(jax, t):
    return jax.tree_util.tree_map(lambda a: jax.numpy.asarray(a), t)


def _check_same(jax, got, want, rtol=1e-9, atol=1e-11):
    """``got`` (a gradtape tree) has ``want``'s (a JAX tree's) structure and values."""
    assert repr(gt.tree.structure(got)) == repr(jax.tree_util.tree_structure(want))
    gl, wl = gt.tree.leaves(got), jax.tree_util.tree_leaves(want)
    assert len(gl) == len(wl)
    for g, w in zip(gl, wl):
        assert isinstance(g, gt.Tensor)
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(gt.to_numpy(g), np.asarray(w), rtol=rtol, atol=atol)


def _scalar(xp, tree, leaves):
    """A scalar with cross terms between all the leaves."""
    ls = leaves(tree)
    s = sum(xp.sum(xp.sin(a) * (k + 1)) for k, a in enumerate(ls))
    q = sum(xp.sum(a * a) for a in ls)
    return s + q * q * 0.1


def _tree_out(xp, tree, tmap, leaves):
    """A pytree of the input's structure, each leaf depending on every leaf."""
    tot = sum(xp.sum(a) for a in leaves(tree))
    return {"z": tmap(lambda a: xp.cos(a) * tot, tree), "s": (xp.tanh(tot),)}


def _fns(jax):
    jnp = jax.numpy
    tl, tm = jax.tree_util.tree_leaves, jax.tree_util.tree_map
    return {
        "gt_scalar": lambda p: _scalar(gt, p, gt.tree.leaves),
        "jax_scalar": lambda p: _scalar(jnp, p, tl),
        "gt_tree": lambda p: _tree_out(gt, p, gt.tree.map, gt.tree.leaves),
        "jax_tree": lambda p: _tree_out(jnp, p, tm, tl),
    }


SEEDS = range(6)


# ---- gt.tree against jax.tree_util -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_flatten_order_structure_paths_as_jax(jax, seed):
    rng = np.random.default_rng(seed)
    counter = iter(range(1000))
    t = _rand_tree(rng, leaf=lambda r: next(counter))
    leaves, treedef = gt.tree.flatten(t)
    jleaves, jdef = jax.tree_util.tree_flatten(t)
    assert leaves == jleaves
    assert repr(treedef) == repr(jdef)
    assert gt.tree.leaves(t) == jleaves
    back = gt.tree.unflatten(treedef, [v * 10 for v in leaves])
    assert back == jax.tree_util.tree_unflatten(jdef, [v * 10 for v in jleaves])
    assert gt.tree.structure(back) == treedef
    pairs, _ = gt.tree.flatten_with_path(t)
    jpairs, _ = jax.tree_util.tree_flatten_with_path(t)
    assert [gt.tree.keystr(p) for p, _ in pairs] == [jax.tree_util.keystr(p) for p, _ in jpairs]
    assert gt.tree.map(lambda v: v + 1, t) == jax.tree_util.tree_map(lambda v: v + 1, t)


def test_sorted_dict_keys_namedtuple_none(jax):
    t = {"b": 1, "a": P(x=[2, None], y=(3,)), "c": None}
    assert gt.tree.leaves(t) == [2, 3, 1] == jax.tree_util.tree_leaves(t)
    back = gt.tree.map(lambda v: -v, t)
    assert type(back["a"]) is P and back["a"].x == [-2, None] and back["c"] is None
    assert list(back) == ["a", "b", "c"]                      # rebuilt in sorted order, as JAX
    assert gt.tree.leaves(None) == [] and gt.tree.unflatten(gt.tree.structure(None), []) is None
    od = collections.OrderedDict([("b", 1), ("a", 2)])       # OrderedDict keeps its order (as JAX)
    assert gt.tree.leaves(od) == [1, 2] == jax.tree_util.tree_leaves(od)
    assert type(gt.tree.map(str, od)) is collections.OrderedDict
    assert gt.tree.structure({"a": 1}) != gt.tree.structure({"b": 1})
    assert gt.tree.structure((1, 2)) != gt.tree.structure([1, 2])
    assert gt.tree.structure(P(1, 2)) != gt.tree.structure((1, 2))


def test_map_several_trees_and_is_leaf(jax):
    a, b = {"x": [1, 2], "y": 3}, {"x": [10, 20], "y": 30}
    assert gt.tree.map(lambda u, v: u + v, a, b) == {"x": [11, 22], "y": 33}
    # the first tree is a prefix of the others (as jax.tree.map): a leaf there takes a whole subtree
    assert gt.tree.map(lambda u, v: (u, v), {"x": 0, "y": 1}, a) == {"x": (0, [1, 2]), "y": (1, 3)}
    with pytest.raises(ValueError, match=r"structures differ at \['x'\]"):
        gt.tree.map(lambda u, v: u, a, {"x": (1, 2), "y": 3})
    pairs = [(1, 2), [(3, 4)]]
    is_pair = lambda v: isinstance(v, tuple)  # noqa: E731
    assert gt.tree.leaves(pairs, is_leaf=is_pair) == jax.tree_util.tree_leaves(pairs, is_leaf=is_pair)
    assert gt.tree.map(sum, pairs, is_leaf=is_pair) == [3, [7]]
    assert gt.tree_util is gt.tree and gt.tree.tree_map is gt.tree.map


class Box:
    def __init__(self, a, b, tag):
        self.a, self.b, self.tag = a, b, tag


def _box_flatten(x):
    return (x.a, x.b), x.tag


def _box_unflatten(tag, children):
    return Box(*children, tag)


gt.tree.register_pytree_node(Box, _box_flatten, _box_unflatten)


def test_registered_custom_node(jax):
    jax.tree_util.register_pytree_node(Box, _box_flatten, _box_unflatten)
    t = [Box({"q": 1, "p": 2}, 3, "t1"), 4]
    assert gt.tree.leaves(t) == jax.tree_util.tree_leaves(t) == [2, 1, 3, 4]
    back = gt.tree.map(lambda v: v * 2, t)
    assert isinstance(back[0], Box) and back[0].tag == "t1" and back[0].a == {"p": 4, "q": 2} and back[1] == 8
    assert gt.tree.structure(Box(1, 2, "u")) != gt.tree.structure(Box(1, 2, "v"))     # aux data compared
    assert gt.tree.structure(Box(1, 2, "u")) == gt.tree.structure(Box(5, 6, "u"))
    with pytest.raises(ValueError, match="already a pytree node"):
        gt.tree.register_pytree_node(Box, _box_flatten, _box_unflatten)
    with pytest.raises(ValueError, match="already a pytree node"):
        gt.tree.register_pytree_node(dict, _box_flatten, _box_unflatten)
    x = {"w": gt.asarray([1.0, 2.0])}
    g = gt.grad(lambda b: gt.sum(b.a["w"] ** 2) * b.b)(Box(x, gt.asarray(3.0), "t"))
    assert isinstance(g, Box) and g.tag == "t"
    np.testing.assert_allclose(gt.to_numpy(g.a["w"]), [6.0, 12.0])
    np.testing.assert_allclose(gt.to_numpy(g.b), 5.0)


# ---- the issue's three examples ------------------------------------------------------------------------------

def test_issue_examples(jax):
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    X, w, b = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(())
    Xg = gt.asarray(X)
    g = gt.grad(lambda p: gt.sum((Xg @ p["w"] + p["b"]) ** 2))({"w": gt.asarray(w), "b": gt.asarray(b)})
    jg = jax.grad(lambda p: jnp.sum((X @ p["w"] + p["b"]) ** 2))({"w": jnp.asarray(w), "b": jnp.asarray(b)})
    _check_same(jax, g, jg)
    f_gt = lambda p: gt.sum(p[0] ** 2) + gt.sum(p[1])  # noqa: E731
    f_jx = lambda p: jnp.sum(p[0] ** 2) + jnp.sum(p[1])  # noqa: E731
    g = gt.grad(f_gt)((gt.asarray(w), gt.asarray(b)))
    assert type(g) is tuple
    _check_same(jax, g, jax.grad(f_jx)((jnp.asarray(w), jnp.asarray(b))))
    g = gt.grad(f_gt)([gt.asarray(w), gt.asarray(w)])         # a list of two leaves, never stacked
    assert type(g) is list and len(g) == 2 and g[0].shape == (3,)
    _check_same(jax, g, jax.grad(f_jx)([jnp.asarray(w), jnp.asarray(w)]))


# ---- every transform on random pytrees, against JAX ------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_grad_value_and_grad_argnums(jax, seed):
    F = _fns(jax)
    rng = np.random.default_rng(seed)
    t1, t2 = _rand_tree(rng), _rand_tree(rng)
    g1, g2, j1, j2 = _gt_tree(t1), _gt_tree(t2), _jax_tree(jax, t1), _jax_tree(jax, t2)
    _check_same(jax, gt.grad(F["gt_scalar"])(g1), jax.grad(F["jax_scalar"])(j1))
    two_gt = lambda a, s, b: F["gt_scalar"]((a, b)) * 2.0  # noqa: E731
    two_jx = lambda a, s, b: F["jax_scalar"]((a, b)) * 2.0  # noqa: E731
    got = gt.grad(two_gt, argnums=(0, 2))(g1, "static anything", g2)
    want = jax.grad(two_jx, argnums=(0, 2))(j1, "static anything", j2)
    assert type(got) is tuple and len(got) == 2
    _check_same(jax, got, want)
    aux_gt = lambda p: (F["gt_scalar"](p), {"n": gt.tree.leaves(p)[0] * 2.0})  # noqa: E731
    aux_jx = lambda p: (F["jax_scalar"](p), {"n": jax.tree_util.tree_leaves(p)[0] * 2.0})  # noqa: E731
    (v, aux), g = gt.value_and_grad(aux_gt, has_aux=True)(g1)
    (jv, jaux), jg = jax.value_and_grad(aux_jx, has_aux=True)(j1)
    np.testing.assert_allclose(gt.to_numpy(v), float(jv), rtol=1e-12)
    _check_same(jax, aux, jaux)
    assert not aux["n"].requires_grad
    _check_same(jax, g, jg)
    g, aux = gt.grad(aux_gt, has_aux=True)(g1)
    _check_same(jax, g, jg)


@pytest.mark.parametrize("seed", SEEDS)
def test_vjp_jvp_trees(jax, seed):
    F = _fns(jax)
    rng = np.random.default_rng(100 + seed)
    t = _rand_tree(rng)
    gp, jp = _gt_tree(t), _jax_tree(jax, t)
    out, f_vjp = gt.vjp(F["gt_tree"], gp)
    jout, jf_vjp = jax.vjp(F["jax_tree"], jp)
    _check_same(jax, out, jout)
    ct = jax.tree_util.tree_map(lambda a: np.asarray(rng.standard_normal(a.shape)), jout)
    got = f_vjp(_gt_tree(ct))
    assert type(got) is tuple and len(got) == 1
    _check_same(jax, got, jf_vjp(_jax_tree(jax, ct)))
    tan = gt.tree.map(lambda a: rng.standard_normal(a.shape), t)
    o, to = gt.jvp(F["gt_tree"], (gp,), (_gt_tree(tan),))
    jo, jto = jax.jvp(F["jax_tree"], (jp,), (_jax_tree(jax, tan),))
    _check_same(jax, o, jo)
    _check_same(jax, to, jto)
    assert not any(v.requires_grad for v in gt.tree.leaves(to))
    # two primals, one of them a tree
    f2 = lambda p, x: gt.tree.map(lambda a: a * gt.sum(x), p)  # noqa: E731
    jf2 = lambda p, x: jax.tree_util.tree_map(lambda a: a * jax.numpy.sum(x), p)  # noqa: E731
    x = rng.standard_normal(3)
    o, to = gt.jvp(f2, (gp, gt.asarray(x)), (_gt_tree(tan), gt.asarray(x * 0 + 1.0)))
    jo, jto = jax.jvp(jf2, (jp, x), (_jax_tree(jax, tan), x * 0 + 1.0))
    _check_same(jax, to, jto)


@pytest.mark.parametrize("seed", range(4))
def test_jacobian_hessian_hvp_trees(jax, seed):
    F = _fns(jax)
    rng = np.random.default_rng(200 + seed)
    # smaller trees (JAX's Jacobians of many leaves take seconds to trace)
    t = _rand_tree(rng, depth=1, leaf=lambda r: r.standard_normal(SHAPES[r.integers(3)]) * 0.5)
    gp, jp = _gt_tree(t), _jax_tree(jax, t)
    # the references in JAX's reverse mode only (its eager forward mode takes seconds per call here): jacobian
    # is jacrev, and the Hessian is jacrev of jacrev (the same nesting as jacfwd of jacrev)
    want = jax.jacrev(F["jax_tree"])(jp)
    for mode in ("reverse", "forward", "auto"):
        _check_same(jax, gt.jacobian(F["gt_tree"], mode=mode)(gp), want)
    _check_same(jax, gt.jacfwd(F["gt_tree"])(gp), want)
    _check_same(jax, gt.jacrev(F["gt_tree"])(gp), want)
    _check_same(jax, gt.hessian(F["gt_scalar"])(gp), jax.jacrev(jax.jacrev(F["jax_scalar"]))(jp), rtol=1e-8)
    v = gt.tree.map(lambda a: rng.standard_normal(a.shape), t)
    got = gt.hvp(F["gt_scalar"], gp, _gt_tree(v))
    jv = _jax_tree(jax, v)
    dot = lambda a, b: sum(jax.numpy.sum(x * y) for x, y in zip(jax.tree_util.tree_leaves(a),  # noqa: E731
                                                                jax.tree_util.tree_leaves(b)))
    want = jax.grad(lambda p: dot(jax.grad(F["jax_scalar"])(p), jv))(jp)      # H v, H symmetric
    _check_same(jax, got, want, rtol=1e-8)


def test_jacobian_argnums_tuple_of_trees(jax):
    jnp = jax.numpy
    a, b = {"u": np.array([1.0, 2.0])}, [np.array(0.5)]
    f_gt = lambda a, b: {"o": a["u"] * b[0], "p": gt.sum(a["u"]) + b[0]}  # noqa: E731
    f_jx = lambda a, b: {"o": a["u"] * b[0], "p": jnp.sum(a["u"]) + b[0]}  # noqa: E731
    for mode in ("forward", "reverse"):
        got = gt.jacobian(f_gt, argnums=(0, 1), mode=mode)(_gt_tree(a), _gt_tree(b))
        _check_same(jax, got, jax.jacobian(f_jx, argnums=(0, 1))(_jax_tree(jax, a), _jax_tree(jax, b)))


# ---- custom rules, checkpoint ----------------------------------------------------------------------------------

def test_custom_vjp_pytrees(jax):
    jnp = jax.numpy

    def make(lib, np_):
        def plain(p, s):
            return {"y": p["a"] * s, "z": (np_.sin(p["b"]),)}
        f = lib.custom_vjp(plain)

        def fwd(p, s):
            return plain(p, s), (p, s)

        def bwd(res, ct):
            p, s = res
            return ({"a": ct["y"] * s * 2.0, "b": ct["z"][0] * np_.cos(p["b"])}, np_.sum(ct["y"] * p["a"]))
        f.defvjp(fwd, bwd)
        return f
    fg, fj = make(gt, gt), make(jax, jnp)
    p = {"a": np.array([1.0, 2.0]), "b": np.array(0.3)}
    s = np.array(1.5)
    loss_g = lambda p, s: gt.sum(fg(p, s)["y"] ** 2) + gt.sum(fg(p, s)["z"][0])  # noqa: E731
    loss_j = lambda p, s: jnp.sum(fj(p, s)["y"] ** 2) + jnp.sum(fj(p, s)["z"][0])  # noqa: E731
    got = gt.grad(loss_g, argnums=(0, 1))(_gt_tree(p), gt.asarray(s))
    want = jax.grad(loss_j, argnums=(0, 1))(_jax_tree(jax, p), jnp.asarray(s))
    _check_same(jax, got, want)
    out = fg(_gt_tree(p), gt.asarray(s))
    assert isinstance(out["z"], tuple)


def test_custom_jvp_pytrees(jax):
    jnp = jax.numpy

    def make(lib, np_):
        @lib.custom_jvp
        def f(p):
            return {"y": np_.sin(p["a"]) * p["b"]}

        @f.defjvp
        def f_jvp(primals, tangents):
            (p,), (t,) = primals, tangents
            y = f(p)
            return y, {"y": np_.cos(p["a"]) * p["b"] * t["a"] + np_.sin(p["a"]) * t["b"]}
        return f
    fg, fj = make(gt, gt), make(jax, jnp)
    p = {"a": np.array([0.1, 0.7]), "b": np.array(2.0)}
    loss_g = lambda p: gt.sum(fg(p)["y"] ** 2)  # noqa: E731
    loss_j = lambda p: jnp.sum(fj(p)["y"] ** 2)  # noqa: E731
    _check_same(jax, gt.grad(loss_g)(_gt_tree(p)), jax.grad(loss_j)(_jax_tree(jax, p)))
    t = {"a": np.array([1.0, -1.0]), "b": np.array(0.5)}
    _check_same(jax, gt.jvp(fg, (_gt_tree(p),), (_gt_tree(t),))[1],
                jax.jvp(fj, (_jax_tree(jax, p),), (_jax_tree(jax, t),))[1])


def test_checkpoint_pytree_output(jax):
    jnp = jax.numpy
    block = gt.checkpoint(lambda p: {"h": gt.tanh(p["w"] * 2.0), "k": [gt.sin(p["v"])]})
    p = {"w": np.array([0.1, 0.2]), "v": np.array(0.4)}
    out = block(_gt_tree(p))
    assert set(out) == {"h", "k"} and isinstance(out["k"], list)
    got = gt.grad(lambda p: gt.sum(block(p)["h"] ** 2) + block(p)["k"][0])(_gt_tree(p))
    want = jax.grad(lambda p: jnp.sum(jnp.tanh(p["w"] * 2.0) ** 2) + jnp.sin(p["v"]))(_jax_tree(jax, p))
    _check_same(jax, got, want)


# ---- errors ---------------------------------------------------------------------------------------------------

def test_non_array_leaf_is_a_type_error_naming_the_path():
    f = lambda p: gt.sum(p["a"])  # noqa: E731
    a = gt.asarray([1.0, 2.0])
    with pytest.raises(TypeError, match=r"p\['b'\] \(argument 0\) of dtype int64"):
        gt.grad(f)({"a": a, "b": 1})
    with pytest.raises(TypeError, match=r"p\['b'\]\[1\] \(argument 0\) is a str"):
        gt.grad(f)({"a": a, "b": [a, "text"]})
    with pytest.raises(TypeError, match=r"q\.y \(argument 1\) is a str"):
        gt.grad(lambda p, q: f(p), argnums=(0, 1))({"a": a}, P(a, "s"))
    with pytest.raises(TypeError, match=r"p\['b'\]"):
        gt.jacobian(f)({"a": a, "b": 1})
    with pytest.raises(TypeError, match=r"p\['b'\]"):
        gt.vjp(f, {"a": a, "b": True})
    with pytest.raises(TypeError, match=r"primal 0 \['b'\]"):
        gt.jvp(f, ({"a": a, "b": 1},), ({"a": a, "b": 1},))
    with pytest.raises(TypeError, match="argument 0 of dtype int64"):   # a whole argument: as before
        gt.grad(lambda x: x * 1.0)(3)
    # a Python float is an array leaf (as JAX); a non-differentiated position holds anything
    assert float(gt.grad(lambda x: x * x)(3.0)) == 6.0
    g = gt.grad(lambda p, s: gt.sum(p["a"]) * p["c"])({"a": a, "c": 2.0}, "anything")
    assert float(g["c"]) == 3.0 and g["a"].tolist() == [2.0, 2.0]


def test_jvp_structure_and_shape_mismatch():
    f = lambda p: p["a"] * 2.0  # noqa: E731
    a = gt.asarray([1.0, 2.0])
    with pytest.raises(TypeError, match=r"same tree structure.*at \[0\] primals have a dict.*tangents have a list"):
        gt.jvp(f, ({"a": a},), ([a],))
    with pytest.raises(TypeError, match=r"same tree structure.*\['b'\]|keys \['a', 'b'\]"):
        gt.jvp(f, ({"a": a},), ({"a": a, "b": a},))
    with pytest.raises(ValueError, match=r"tangent 0 \['a'\] has shape \(3,\) but primal 0 \['a'\] has shape \(2,\)"):
        gt.jvp(f, ({"a": a},), ({"a": gt.ones(3)},))
    with pytest.raises(TypeError, match=r"tangent 0 \['a'\] has dtype float32"):
        gt.jvp(f, ({"a": a},), ({"a": gt.ones(2, dtype=gt.float32)},))


def test_vjp_cotangent_of_the_wrong_structure():
    a = gt.asarray([1.0, 2.0])
    _, f_vjp = gt.vjp(lambda p: {"y": p * 2.0, "z": (p,)}, a)
    with pytest.raises(ValueError, match=r"cotangent.*structures differ at the root: expected a dict of 2 children"):
        f_vjp({"y": a})
    with pytest.raises(ValueError, match=r"structures differ at \['z'\]: expected a tuple of 1 child, got a list"):
        f_vjp({"y": a, "z": [a]})
    with pytest.raises(ValueError, match="head gradient has shape"):
        f_vjp({"y": gt.ones(3), "z": (a,)})
    assert f_vjp({"y": a, "z": (a,)})[0].tolist() == [3.0, 6.0]


# ---- gt.nn.Module as a pytree ---------------------------------------------------------------------------------

def test_module_is_a_pytree_of_its_parameters():
    gt.nn.manual_seed(0)
    net = gt.nn.Sequential(gt.nn.Linear(3, 4, dtype=gt.float64), gt.nn.ReLU(), gt.nn.Linear(4, 2, dtype=gt.float64))
    names = [n for n, _ in net.named_parameters()]
    leaves, treedef = gt.tree.flatten(net)
    assert len(leaves) == 4 and all(a is b for a, b in zip(leaves, net.parameters()))
    pairs, _ = gt.tree.flatten_with_path({"net": net})
    assert [gt.tree.keystr(p) for p, _ in pairs] == [f"['net'].{n}" for n in names]
    x = gt.asarray(np.random.default_rng(1).standard_normal((5, 3)))
    loss = lambda m: gt.sum(m(x) ** 2)  # noqa: E731
    g = gt.grad(loss)(net)
    assert type(g) is gt.nn.Sequential and g is not net
    with gt.record():
        y = loss(net)
    y.backward()
    got = dict(g.named_parameters())
    assert list(got) == names
    for n, p in net.named_parameters():
        np.testing.assert_allclose(gt.to_numpy(got[n]), gt.to_numpy(p.grad), rtol=1e-12)
    assert gt.tree.structure(g) == treedef                     # same module types, same parameter names
    half = gt.tree.map(lambda p, d: p - 0.5 * d, net, g)       # an SGD step, functionally: a callable module
    assert half(x).shape == (5, 2) and half[0].weight is not net[0].weight
    assert net[0].weight.grad is not None                      # the original is untouched


# ---- tracing: pytree arguments and outputs (gradtape.graph.trace) ---------------------------------------------

def test_trace_records_pytree_arguments_and_outputs():
    import importlib
    from gradtape.graph.ir import Ref
    tr = importlib.import_module("gradtape.graph.trace")      # (gradtape.graph.trace is also the function)
    f = lambda p, s, x: P(gt.sum(p["w"] * x) * s, [p["b"][0] + 1.0])  # noqa: E731
    p = {"w": gt.ones(3), "b": [gt.zeros(2)]}
    nodes, tree, layout, kw, name, home, restore = tr._record_tree(f, (p, 2.0, gt.ones(3)), {})
    assert [n.op for n in nodes if n.kind == "input"] == ["p_b_0", "p_w", "x"]   # leaves in JAX's order
    assert layout[0][0] == "tree" and layout[0][1] == gt.tree.structure(p) and layout[1] == ("static", 2.0)
    assert all(type(s) is Ref for s in layout[0][2]) and type(layout[2]) is Ref
    assert type(tree) is tuple and len(tree) == 2                  # a namedtuple output: its leaves, and a rebuild
    back = restore(("a", "b"))
    assert type(back) is P and back == P("a", ["b"])
    got = {}
    tr._bind_tree(layout[0], {"w": "W", "b": ["B"]}, lambda r, v: got.__setitem__(r.i, v), lambda a, b: a == b,
                  "gradtape.Graph f: positional argument 0")
    assert sorted(got.values()) == ["B", "W"]
    with pytest.raises(ValueError, match=r"positional argument 0: the structures differ at the root.*keys \['w'\]"):
        tr._bind_tree(layout[0], {"w": 1}, lambda r, v: None, lambda a, b: a == b, "gradtape.Graph f: positional "
                      "argument 0")
    # plain outputs keep the graph's own structure (no rebuild); the old entry point keeps non-array args fixed
    *_, restore = tr._record_tree(lambda p: {"y": p["w"] * 2.0}, (p,), {})
    assert restore is None
    _, _, layout, *_ = tr._record(lambda p: p["w"] * 2.0, (p,), {})
    assert layout[0][0] == "static"
    net = gt.nn.Linear(3, 2, dtype=gt.float64)
    nodes, *_ = tr._record_tree(lambda m, x: m(x), (net, gt.ones((4, 3))), {})
    assert [n.op for n in nodes if n.kind == "input"] == ["m_weight", "m_bias", "x"]


def test_structures_survive_a_later_registration():
    before = gt.tree.structure([P(1, 2)])

    class Late:
        pass
    gt.tree.register_pytree_node(Late, lambda v: ((), None), lambda aux, c: Late())
    assert gt.tree.structure([P(3, 4)]) == before
    assert gt.tree.leaves([Late(), 1]) == [1]


def test_has_aux_vjp_jvp_and_hessian_argnums_trees(jax):
    jnp = jax.numpy
    p = {"a": np.array([0.2, -0.4]), "b": (np.array(1.5),)}
    f_gt = lambda p, q: ({"y": gt.sin(p["a"]) * p["b"][0] * q}, [p["a"] * 2.0])  # noqa: E731
    f_jx = lambda p, q: ({"y": jnp.sin(p["a"]) * p["b"][0] * q}, [p["a"] * 2.0])  # noqa: E731
    q = np.array(0.7)
    out, f_vjp, aux = gt.vjp(f_gt, _gt_tree(p), gt.asarray(q), has_aux=True)
    jout, jf_vjp, jaux = jax.vjp(f_jx, _jax_tree(jax, p), jnp.asarray(q), has_aux=True)
    _check_same(jax, out, jout)
    _check_same(jax, aux, jaux)
    ct = {"y": np.array([1.0, -3.0])}
    _check_same(jax, f_vjp(_gt_tree(ct)), jf_vjp(_jax_tree(jax, ct)))
    t = ({"a": np.array([1.0, 0.5]), "b": (np.array(-1.0),)}, np.array(2.0))
    o, to, aux = gt.jvp(f_gt, (_gt_tree(p), gt.asarray(q)), _gt_tree(t), has_aux=True)
    jo, jto, jaux = jax.jvp(f_jx, (_jax_tree(jax, p), jnp.asarray(q)), _jax_tree(jax, t), has_aux=True)
    _check_same(jax, to, jto)
    _check_same(jax, aux, jaux)
    s_gt = lambda p, q: gt.sum(gt.sin(p["a"]) * p["b"][0] * q[0] ** 2)  # noqa: E731
    s_jx = lambda p, q: jnp.sum(jnp.sin(p["a"]) * p["b"][0] * q[0] ** 2)  # noqa: E731
    got = gt.hessian(s_gt, argnums=(0, 1))(_gt_tree(p), [gt.asarray(q)])
    want = jax.jacrev(jax.jacrev(s_jx, argnums=(0, 1)), argnums=(0, 1))(_jax_tree(jax, p), [jnp.asarray(q)])
    _check_same(jax, got, want)


def test_module_tangents_and_jvp():
    net = gt.nn.Linear(2, 1, dtype=gt.float64)
    x = gt.asarray([[1.0, 2.0]])
    tan = gt.tree.map(gt.ones_like, net)                     # a Module of tangents: the same structure
    assert gt.tree.structure(tan) == gt.tree.structure(net)
    out, t = gt.jvp(lambda m: m(x), (net,), (tan,))
    assert t.tolist() == [[4.0]]                              # d(w.x + b) along ones: 1 + 2 + 1
    with pytest.raises(TypeError, match="same tree structure"):
        gt.jvp(lambda m: m(x), (net,), ({"weight": gt.ones((1, 2)), "bias": gt.ones(1)},))


def test_custom_vjp_rule_errors_name_the_leaf():
    def plain(p):
        return p["a"] * p["b"]
    f = gt.custom_vjp(plain)
    p = {"a": gt.ones(2), "b": gt.ones(2)}
    loss = lambda p: gt.sum(f(p))  # noqa: E731
    f.defvjp(lambda p: (plain(p), p), lambda p, ct: ({"a": gt.ones(3), "b": ct},))
    with pytest.raises(ValueError, match=r"for argument 0 \['a'\] it produced shape \(3,\)"):
        gt.grad(loss)(p)
    f.defvjp(lambda p: (plain(p), p), lambda p, ct: ({"a": ct},))
    with pytest.raises(ValueError, match=r"structures differ at the root: expected a dict of 2 children"):
        gt.grad(loss)(p)
    f.defvjp(lambda p: (plain(p), p), lambda p, ct: ({"a": ct, "b": ct}, ct))
    with pytest.raises(ValueError, match="returned 2 cotangents for 1 inputs"):
        gt.grad(loss)(p)
    f.defvjp(lambda p: (plain(p), p), lambda p, ct: (None,))          # None: zeros for the whole argument
    assert gt.grad(loss)(p)["b"].tolist() == [0.0, 0.0]
