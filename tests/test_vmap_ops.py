"""``gt.vmap`` of every row of the op tables (tests/test_ops.py's and tests/test_linalg.py's), generated from them.

Each row and shape is batched along random ``in_axes`` (0, -1, another axis, or None for some inputs: an
unbatched input is shared by every example) and a random ``out_axes``, and must equal a Python loop of
per-example calls stacked along ``out_axes``: the values, and the gradient of a weighted sum with respect to
every float input, batched or not (so the batched computation is recorded right: an unbatched input's
gradient sums over the examples). A row whose op has no batching rule fails, except the ones in
EXPECTED_UNBATCHABLE, which must raise the documented NotImplementedError. A registry-generated test checks
that every primitive has a batching rule (or is elementwise, which has the default one).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradtape as gt
import test_linalg
import test_ops
from gradtape._core.primitive import PRIMS
from gradtape._ops import batching, batching_linalg

B = 5                   # the batch size: no axis of the tables' shapes has it, so a wrong axis cannot pass unnoticed
RTOL, ATOL = 1e-9, 1e-10

# rows that cannot be batched (row id -> reason); each must raise NotImplementedError naming its primitive. None
# now: the tables' data-dependent-shape ops (boolean masks, integer keys) index with constants, unbatched
EXPECTED_UNBATCHABLE = {}
# rows whose function writes in place into a value made from its first argument (y = x * 1.0; y[1:3] = v): with
# that argument unbatched and a batched value written, vmap raises the documented RuntimeError (as torch.func:
# the unbatched tensor cannot hold a batch); the row is checked with its first argument batched as well
WRITES_INTO_FIRST = {"setitem"}


# ---- the cases: (id, fn, per-argument batched data maker, which arguments are integers) ------------------------
def _ops_case(op, shapes):
    def make(size, rng):
        return test_ops._data(op, [(size,) + tuple(s) for s in shapes], rng)
    return (f"ops-{op.name}-{'x'.join(str(s) for s in shapes)}", op.fn, make, [tuple(s) for s in shapes],
            set(op.ints))


def _linalg_case(op, case):
    def make(size, rng):
        return [np.asarray(gen((size,) + tuple(shape), rng), dtype=np.float64) for shape, gen in case]
    return (test_linalg._case_id(op, case).replace(" ", ""), op.fn, make, [tuple(s) for s, _ in case], set())


CASES = ([_ops_case(op, shapes) for op in test_ops.OPS for shapes in op.shapes]
         + [_linalg_case(op, case) for op in test_linalg.OPS for case in op.args])


def _axes(rng, shapes):
    """Random in_axes, one per argument: 0, -1, another axis, or None (never all None)."""
    n = len(shapes)
    while True:
        axes = []
        for s in shapes:
            kind = rng.integers(0, 4)
            axes.append(0 if kind == 0 else -1 if kind == 1 else None if kind == 2 and n > 1
                        else int(rng.integers(-len(s) - 1, len(s) + 1)))
        if any(a is not None for a in axes):
            return tuple(axes)


def _inputs(case, device, seed):
    """(in_axes, batched arguments as tensors, per-example arguments as lists, size, rng)."""
    name, fn, make, shapes, ints = case
    rng = np.random.default_rng(seed)
    size = B
    full = make(size, rng)
    axes = _axes(rng, shapes)
    args, examples = [], []
    for a, ax in zip(full, axes):
        if ax is None:
            args.append(gt.asarray(a[0], device=device))
            examples.append([args[-1]] * size)
        else:
            args.append(gt.asarray(np.moveaxis(a, 0, ax), device=device))
            examples.append([gt.asarray(a[i], device=device) for i in range(size)])
    return axes, args, examples, size, rng


def _loop(fn, examples, size, out_axis):
    """The reference: per-example calls stacked along out_axis."""
    return gt.stack([fn(*(e[i] for e in examples)) for i in range(size)], axis=out_axis)


def _in_axes_arg(axes, rng):
    """in_axes as vmap takes it: an int where every argument shares it (sometimes), else the tuple."""
    if len(set(axes)) == 1 and axes[0] is not None and rng.integers(0, 2):
        return axes[0]
    return axes


def _seed(name):
    return zlib.crc32(name.encode())


def _close(got, want, what):
    g, w = gt.to_numpy(got), gt.to_numpy(want)
    assert g.shape == w.shape, f"{what}: shape {g.shape}, the loop's {w.shape}"
    np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=what)


PARAMS = [pytest.param(c, id=c[0]) for c in CASES]


def _check(case, device, seed=0):
    name, fn, _, _, ints = case
    axes, args, examples, size, rng = _inputs(case, device, _seed(name) + seed)
    per_example = fn(*(e[0] for e in examples))
    r = per_example.ndim
    out_axis = int(rng.integers(-r - 1, r + 1))
    in_axes = _in_axes_arg(axes, rng)
    what = f"{name}: vmap(in_axes={in_axes}, out_axes={out_axis})"
    batched = gt.vmap(fn, in_axes=in_axes, out_axes=out_axis)
    want = _loop(fn, examples, size, out_axis)
    _close(batched(*args), want, what)

    # gradient of a weighted sum, with respect to every float argument (batched or shared)
    w = gt.asarray(rng.normal(size=tuple(want.shape)), device=device)
    argnums = tuple(i for i in range(len(args)) if i not in ints)

    def through_vmap(*xs):
        return gt.sum(gt.vmap(fn, in_axes=in_axes, out_axes=out_axis)(*xs) * w)

    def through_loop(*xs):
        parts = []
        for x, ax in zip(xs, axes):
            parts.append([x] * size if ax is None else gt.unstack(x, axis=ax))
        return gt.sum(_loop(fn, parts, size, out_axis) * w)

    got = gt.grad(through_vmap, argnums=argnums)(*args)
    ref = gt.grad(through_loop, argnums=argnums)(*args)
    for i, g, r_ in zip(argnums, got, ref):
        _close(g, r_, f"{what}: gradient of argument {i} (in_axes {axes[i]})")


def _row(case):
    return case[0].split("-")[1] if case[0].startswith("ops-") else case[0].split("-")[0]


@pytest.mark.parametrize("case", PARAMS)
def test_vmap_equals_loop(device, case):
    """Values and gradients of vmap(op) over random in_axes/out_axes equal a loop of per-example calls."""
    if case[0] in EXPECTED_UNBATCHABLE:
        with pytest.raises(NotImplementedError, match="no batching rule"):
            _check(case, device)
        return
    if _row(case) not in WRITES_INTO_FIRST:
        _check(case, device)
        return
    tried = set()
    for seed in range(40):                  # both: the first argument batched, and shared (the documented error)
        shared = _inputs(case, device, _seed(case[0]) + seed)[0][0] is None
        if shared in tried:
            continue
        tried.add(shared)
        if shared:
            with pytest.raises(RuntimeError, match="in-place"):
                _check(case, device, seed)
        else:
            _check(case, device, seed)
    assert tried == {True, False}


# ---- coverage, from the registry -----------------------------------------------------------------------------
def _families():
    """Make the on-demand primitives (concat<n>) exist, so the registry has them."""
    x = gt.asarray([1.0])
    gt.concat([x, x]), gt.concat([x, x, x])


def test_every_primitive_has_a_batching_rule():
    """Every registered primitive has a batching rule of its own, or is elementwise (the default rule), or is
    made on demand with one (concat<n>): ``rule_of`` finds one for each."""
    _families()
    missing = []
    for p in PRIMS.values():
        try:
            batching.rule_of(p)
        except NotImplementedError:
            missing.append(p.name)
    assert not missing, f"primitives without a batching rule (gradtape/_ops/batching*.py): {sorted(missing)}"
    no_rule = [p.name for p in PRIMS.values() if not (p.same_shape or p.broadcasting or p.name.startswith("concat"))
               and p.batch is None]
    assert not no_rule, no_rule


def test_a_primitive_without_a_rule_is_a_clear_error():
    """vmap of a primitive with no batching rule raises NotImplementedError naming it."""
    from gradtape._core.dispatch import apply
    from gradtape._core.primitive import define
    bare = define("bare_vmap_doc", lambda xp, x: 2 * x, vjp={"x": lambda xp, ct, out, x: 2 * ct}, register=False)
    with pytest.raises(NotImplementedError, match="bare_vmap_doc"):
        gt.vmap(lambda x: apply(bare, (x,)))(gt.ones((3, 2)))


def test_linalg_rules_are_attached():
    """The rules of gradtape/_ops/batching_linalg.py are the primitives' (an elementwise default cannot shadow
    solve's or cross's: they are flagged broadcasting but batch as stacks)."""
    for name, rule in batching_linalg.RULES.items():
        assert PRIMS[name].batch is rule, name


def test_expected_unbatchable_is_current():
    """Every EXPECTED_UNBATCHABLE entry names a row and gives a reason."""
    ids = {c[0] for c in CASES}
    assert all(k in ids and v.strip() for k, v in EXPECTED_UNBATCHABLE.items())


# ---- matmul batches into one GEMM (the per-example gradients of an MLP rest on it) --------------------------------
GEMM = [  # per-example x shape, y shape, which are batched, the one matmul's nd
    ((3,), (3, 4), (True, False), (2, 2)),        # batch of vectors @ matrix: (B, k) @ (k, m)
    ((2, 3), (3, 4), (True, False), (2, 2)),      # batch of matrices @ matrix: (B*n, k) @ (k, m), no copy of y
    ((2, 2, 3), (3, 4), (True, False), (2, 2)),
    ((3,), (3,), (True, False), (2, 1)),          # batch of vectors @ vector: one GEMV
    ((4, 3), (3,), (False, True), (2, 2)),        # matrix @ batch of vectors: (B, k) @ (k, n)
]


@pytest.mark.parametrize("sx,sy,which,nd", GEMM, ids=[f"{a}@{b}-{w}" for a, b, w, _ in GEMM])
def test_matmul_is_one_gemm(sx, sy, which, nd):
    """vmap of x @ y against an unbatched matrix or vector is one matmul on 2-D operands, with no broadcast copy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=((B,) if which[0] else ()) + sx)
    y = rng.normal(size=((B,) if which[1] else ()) + sy)
    if which[0]:
        g = gt.trace(gt.vmap(lambda a: a @ gt.asarray(y)), gt.asarray(x))
    else:
        g = gt.trace(gt.vmap(lambda b: gt.asarray(x) @ b), gt.asarray(y))
    prims = [n for n in g.nodes if n.kind == "prim"]
    mm = [n for n in prims if n.op == "matmul"]
    assert len(mm) == 1 and mm[0].attrs["nd"] == nd, prims
    assert not any(n.op == "broadcast_to" for n in prims), prims
    want = np.stack([(x[i] if which[0] else x) @ (y[i] if which[1] else y) for i in range(B)])
    np.testing.assert_allclose(gt.to_numpy(g(gt.asarray(x if which[0] else y))), want, rtol=1e-12)


# ---- torch.func as a second oracle for some linalg rules ----------------------------------------------------------
TORCH = [  # name, gradtape function, torch function, per-example shape, generator
    ("inv", gt.linalg.inv, "linalg.inv", (3, 3), test_linalg.general),
    ("det", gt.linalg.det, "linalg.det", (3, 3), test_linalg.general),
    ("logabsdet", lambda a: gt.linalg.slogdet(a).logabsdet, "logabsdet", (3, 3), test_linalg.general),
    ("cholesky", gt.linalg.cholesky, "linalg.cholesky", (3, 3), test_linalg.spd),
    ("eigvalsh", gt.linalg.eigvalsh, "linalg.eigvalsh", (3, 3), test_linalg.sym_distinct),
    ("svdvals", gt.linalg.svdvals, "linalg.svdvals", (4, 3), test_linalg.sv_distinct),
    ("pinv", gt.linalg.pinv, "linalg.pinv", (4, 3), test_linalg.sv_distinct),
    ("matrix_norm_nuc", lambda a: gt.linalg.matrix_norm(a, ord="nuc"), "nuc", (3, 4), test_linalg.sv_distinct),
    ("log_softmax", lambda a: gt.nn.log_softmax(a, axis=0), "log_softmax0", (3, 4), test_linalg.uniform),
]


def _torch_fn(torch, name):
    if name == "logabsdet":
        return lambda a: torch.linalg.slogdet(a).logabsdet
    if name == "nuc":
        return lambda a: torch.linalg.matrix_norm(a, ord="nuc")
    if name == "log_softmax0":
        return lambda a: torch.log_softmax(a, dim=0)
    mod, fn = name.split(".")
    return getattr(getattr(torch, mod), fn)


def _torch_case(name, tname, shape, gen, axis):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(_seed(name) + axis)
    return torch, _torch_fn(torch, tname), np.moveaxis(gen((B,) + shape, rng), 0, axis)


@pytest.mark.parametrize("name,fn,tname,shape,gen", TORCH, ids=[t[0] for t in TORCH])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_against_torch_func(name, fn, tname, shape, gen, axis):
    """gt.vmap(f, in_axes=axis) equals torch.func.vmap(f, in_dims=axis)."""
    torch, tf, x = _torch_case(name, tname, shape, gen, axis)
    want = torch.func.vmap(tf, in_dims=axis)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(gt.to_numpy(gt.vmap(fn, in_axes=axis)(gt.asarray(x))), want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,fn,tname,shape,gen", TORCH, ids=[t[0] for t in TORCH])
@pytest.mark.parametrize("axis", [0, -1])
def test_per_example_grads_against_torch_func(name, fn, tname, shape, gen, axis):
    """gt.vmap(gt.grad(sum of squares of f)) equals torch.func.vmap(torch.func.grad(...)) (the rules inside a
    gradient: per-example gradients)."""
    torch, tf, x = _torch_case(name, tname, shape, gen, axis)
    grad = gt.vmap(gt.grad(lambda a: gt.sum(fn(a) ** 2)), in_axes=axis)(gt.asarray(x))
    tgrad = torch.func.vmap(torch.func.grad(lambda a: (tf(a) ** 2).sum()), in_dims=axis)(torch.from_numpy(x))
    np.testing.assert_allclose(gt.to_numpy(grad), tgrad.numpy(), rtol=1e-8, atol=1e-10)


def test_mlp_per_example_grads_equal_a_loop():
    """vmap(grad(loss), in_axes=(None,)*4 + (0, 0)): the per-example gradients of an MLP (matmul against shared
    weights, cross_entropy of one example's logits) equal a loop of gt.grad, and torch.func's."""
    rng = np.random.default_rng(5)
    w1, b1, w2, b2 = (gt.asarray(rng.normal(size=s)) for s in ((6, 8), (8,), (8, 3), (3,)))
    x, y = gt.asarray(rng.normal(size=(B, 6))), gt.asarray(rng.integers(0, 3, size=B))

    def loss(w1, b1, w2, b2, x, y):
        return gt.nn.cross_entropy(gt.tanh(x @ w1 + b1) @ w2 + b2, y)

    grads = gt.vmap(gt.grad(loss, argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0))(w1, b1, w2, b2, x, y)
    for i in range(B):
        for g, r in zip(grads, gt.grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2, x[i], y[i])):
            _close(g[i], r, f"example {i}")


def test_cross_entropy_per_example_mean():
    """cross_entropy is a mean over each example's rows: under vmap, one loss per example (as torch.func)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, labels = rng.normal(size=(B, 2, 4)), rng.integers(0, 4, size=(B, 2))
    want = torch.func.vmap(torch.nn.functional.cross_entropy)(torch.from_numpy(x), torch.from_numpy(labels)).numpy()
    np.testing.assert_allclose(gt.to_numpy(gt.vmap(gt.nn.cross_entropy)(gt.asarray(x), gt.asarray(labels))), want,
                               rtol=1e-12)


def test_to_device_under_vmap():
    """A transfer under vmap lands on the destination backend, and its gradient flows back to the source."""
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(3, B)), rng.normal(size=(B, 3))

    def f(v):
        return gt.sin(v).to_device("strict") * 2.0

    y = gt.vmap(f, in_axes=1)(gt.asarray(x))
    assert y.device == gt.asarray(1.0, device="strict").device and y.shape == (B, 3)
    np.testing.assert_allclose(gt.to_numpy(y), 2.0 * np.sin(x.T), rtol=1e-12)
    g = gt.grad(lambda v: gt.sum(gt.to_device(gt.vmap(f, in_axes=1)(v), "cpu") * gt.asarray(w)))(gt.asarray(x))
    assert g.device == "cpu"
    np.testing.assert_allclose(gt.to_numpy(g), 2.0 * np.cos(x) * w.T, rtol=1e-12)


# ---- nested vmap: an outer level's tracer reaches a rule as an unbatched operand -------------------------------
NESTED = [c for c in CASES if len(c[3]) == 2 and c[0].split("-")[0 if not c[0].startswith("ops-") else 1]
          in ("matmul", "vecdot", "solve", "cross", "nn.cross_entropy_labels", "multiply", "special.xlogy")]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in NESTED])
def test_nested_vmap_all_pairs(case):
    """vmap(vmap(f, in_axes=(0, None)), in_axes=(None, 0)) is f of every pair (x_i, y_j), out[j, i]: values and
    the gradient with respect to both."""
    name, fn, make, shapes, ints = case
    rng = np.random.default_rng(_seed(name))
    xs = make(B, rng)
    ys = make(B - 1, rng)
    x, y = gt.asarray(xs[0]), gt.asarray(ys[1])
    pairs = gt.vmap(gt.vmap(fn, in_axes=(0, None)), in_axes=(None, 0))
    want = gt.stack([gt.stack([fn(x[i], y[j]) for i in range(B)]) for j in range(B - 1)])
    _close(pairs(x, y), want, f"{name}: all pairs")
    w = gt.asarray(rng.normal(size=tuple(want.shape)))
    argnums = tuple(i for i in range(2) if i not in ints)
    got = gt.grad(lambda a, b: gt.sum(pairs(a, b) * w), argnums=argnums)(x, y)
    ref = gt.grad(lambda a, b: gt.sum(gt.stack([gt.stack([fn(a[i], b[j]) for i in range(B)])
                                               for j in range(B - 1)]) * w), argnums=argnums)(x, y)
    for i, g, r in zip(argnums, got, ref):
        _close(g, r, f"{name}: all pairs, gradient of argument {i}")


# ---- the rules under forward mode: vmap of jvp over the linalg, product and nn rows ----------------------------
MINE = [c for c in CASES if not c[0].startswith("ops-") or c[0].startswith(("ops-matmul", "ops-vecdot", "ops-nn.",
                                                                            "ops-vector_norm", "ops-tensordot"))]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in MINE])
def test_vmap_of_jvp_equals_loop(case):
    """vmap over (primal, tangent) of jvp with respect to the first argument equals per-example jvp calls."""
    name, fn, _, _, ints = case
    if 0 in ints:
        pytest.fail("the first argument is an integer")   # pragma: no cover
    axes, args, examples, size, rng = _inputs(case, "cpu", _seed(name) + 1)
    ax = 0 if axes[0] is None else axes[0]
    x = args[0] if axes[0] is not None else gt.stack(examples[0], axis=0)
    t = gt.asarray(rng.normal(size=tuple(x.shape)))

    def per(a, ta, *rest):
        return gt.jvp(lambda z: fn(z, *rest), (a,), (ta,))

    out, tan = gt.vmap(per, in_axes=(ax, ax) + tuple(axes[1:]))(x, t, *args[1:])
    xs, ts = gt.unstack(x, axis=ax), gt.unstack(t, axis=ax)
    ref = [gt.jvp(lambda z: fn(z, *(e[i] for e in examples[1:])), (xs[i],), (ts[i],)) for i in range(size)]
    _close(out, gt.stack([r[0] for r in ref]), f"{name}: vmap(jvp) primal")
    _close(tan, gt.stack([r[1] for r in ref]), f"{name}: vmap(jvp) tangent")


TORCH2 = [  # name, gradtape function, torch function name, per-example shapes, generators
    ("solve", gt.linalg.solve, "solve", ((3, 3), (3,)), (test_linalg.general, test_linalg.uniform)),
    ("solve_matrix", gt.linalg.solve, "solve", ((3, 3), (3, 2)), (test_linalg.general, test_linalg.uniform)),
    ("matmul_vm", gt.matmul, "matmul", ((4,), (4, 2)), (test_linalg.uniform, test_linalg.uniform)),
    ("matmul_mm", gt.matmul, "matmul", ((2, 4), (4, 3)), (test_linalg.uniform, test_linalg.uniform)),
    ("cross", gt.linalg.cross, "cross", ((2, 3), (1, 3)), (test_linalg.uniform, test_linalg.uniform)),
]


@pytest.mark.parametrize("dims", [(0, None), (None, 0), (1, 0), (-1, -1)], ids=str)
@pytest.mark.parametrize("name,fn,tname,shapes,gens", TORCH2, ids=[t[0] for t in TORCH2])
def test_binary_against_torch_func(name, fn, tname, shapes, gens, dims):
    """Two operands, batched along different axes or one shared: gt.vmap equals torch.func.vmap."""
    torch = pytest.importorskip("torch")
    tf = torch.matmul if tname == "matmul" else getattr(torch.linalg, tname)
    rng = np.random.default_rng(_seed(name))
    xs = [gen(s, rng) if d is None else np.moveaxis(gen((B,) + s, rng), 0, d) for s, gen, d in zip(shapes, gens, dims)]
    want = torch.func.vmap(tf, in_dims=dims)(*(torch.from_numpy(np.ascontiguousarray(a)) for a in xs)).numpy()
    np.testing.assert_allclose(gt.to_numpy(gt.vmap(fn, in_axes=dims)(*map(gt.asarray, xs))), want, rtol=1e-10,
                               atol=1e-12)
