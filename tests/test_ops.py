"""One op table drives forward- and reverse-mode checks, to second order, against finite differences.

Every differentiable function of the namespace appears here with the input
domain where it is smooth, on shapes including (), (0,) and broadcasting
pairs, on every backend (NumPy, array-api-strict; CuPy where a GPU exists).
"""
from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import gradtape as gt
from gradtape._core.dispatch import apply
from gradtape._core.primitive import PRIMS
from gradtape.testing import GradientCheckError, check_grads



@dataclass
class Op:
    name: str
    fn: object                       # takes tensors, returns a tensor
    shapes: list                     # list of tuples of argument shapes
    domain: tuple = (-2.0, 2.0)      # (lo, hi) for every arg, or a tuple of those per arg
    order: int = 2
    away: float = 0.0                # keep |x| >= away (kinks at 0)
    ints: dict = field(default_factory=dict)   # arg index -> callable(shape-of-others, rng) giving integer data
    covers: tuple = ()               # exact names of the primitives / public functions it checks besides its name


U = [(), (0,), (3,), (2, 3)]
B = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((0,), (0,)), ((0, 3), (3,))]
R = [(4,), (2, 3), (2, 3, 2)]


def _u(name, **kw):
    return Op(name, getattr(gt, name), [(s,) for s in U], **kw)


def _b(name, **kw):
    return Op(name, getattr(gt, name), B, **kw)


OPS = [
    _u("sin"), _u("cos"), _u("tan", domain=(-1.0, 1.0)), _u("asin", domain=(-0.9, 0.9)),
    _u("acos", domain=(-0.9, 0.9)), _u("atan"), _u("sinh"), _u("cosh"), _u("tanh"),
    _u("asinh"), _u("acosh", domain=(1.2, 3.0)), _u("atanh", domain=(-0.9, 0.9)), _u("exp"), _u("expm1"),
    _u("log", domain=(0.5, 2.0)), _u("log1p", domain=(-0.5, 2.0)), _u("log2", domain=(0.5, 2.0)),
    _u("log10", domain=(0.5, 2.0)), _u("sqrt", domain=(0.5, 2.0)), _u("square"),
    _u("reciprocal", domain=(0.5, 2.0)), _u("abs", away=0.2), _u("negative"), _u("positive"),
    _u("real"), _u("conj"),
    Op("nn.relu", gt.nn.relu, [(s,) for s in U], away=0.2, covers=("relu",)),
    Op("nn.sigmoid", gt.nn.sigmoid, [(s,) for s in U], covers=("sigmoid",)),
    Op("nn.softplus", gt.nn.softplus, [(s,) for s in U], domain=(-30.0, 30.0), covers=("softplus",)),
    _b("add"), _b("subtract"), _b("multiply"), _b("divide", domain=((-2.0, 2.0), (0.5, 2.0))),
    _b("pow", domain=((0.5, 2.0), (-1.0, 2.0))), _b("atan2", domain=((-2.0, 2.0), (0.3, 2.0))),
    _b("hypot", domain=(0.3, 2.0)), _b("logaddexp"), _b("maximum"), _b("minimum"),
    _b("copysign", away=0.3), _b("remainder", domain=((0.1, 0.9), (1.1, 2.0))),
    Op("scalar_ops", lambda x: (2.0 * x - 1.5) / 3.0 + x ** 2 - 2.0 ** x + 1.0 / (x + 3.0), [(s,) for s in U]),
    # gt.special (the primitives of gradtape/_ops/special.py)
    Op("special.exprel", gt.special.exprel, [(s,) for s in U], covers=("exprel",)),
    Op("special.sinc", gt.special.sinc, [(s,) for s in U], covers=("sinc",)),
    Op("special.cbrt", gt.special.cbrt, [(s,) for s in U], away=0.3, covers=("cbrt",)),
    Op("special.entr", gt.special.entr, [(s,) for s in U], domain=(0.2, 2.0), covers=("xlogx",)),
    Op("special.xlogy", gt.special.xlogy, B, domain=((-2.0, 2.0), (0.3, 2.0)), covers=("xlogy",)),
    Op("special.xlog1py", gt.special.xlog1py, B, domain=((-2.0, 2.0), (-0.5, 2.0)), covers=("xlog1py",)),
    Op("special.inv_boxcox", gt.special.inv_boxcox, [((3,), (3,)), ((2, 3), (3,))], domain=((0.1, 1.0), (0.2, 1.0)),
       covers=("log1prel",)),
    # reductions
    Op("sum", lambda x: gt.sum(x), [(s,) for s in U + [(2, 3, 2)]]),
    Op("sum_axis", lambda x: gt.sum(x, axis=1), [((2, 3),), ((0, 3),), ((2, 3, 2),)], covers=("sum",)),
    Op("sum_axes_keep", lambda x: gt.sum(x, axis=(0, -1), keepdims=True), [((2, 3),), ((2, 3, 2),)], covers=("sum",)),
    Op("mean", lambda x: gt.mean(x, axis=0), [((4,),), ((2, 3),)]),
    Op("prod", lambda x: gt.prod(x, axis=-1), [((4,),), ((2, 3),), ((2, 3, 2),)]),
    Op("prod_all", lambda x: gt.prod(x), [((),), ((3,),), ((2, 3),)], covers=("prod",)),
    Op("prod_zero", lambda x: gt.prod(x * gt.asarray([1.0, 0.0, 1.0], device=x.device)), [((3,),)], covers=("prod",)),
    Op("var", lambda x: gt.var(x, axis=0), [((4,),), ((3, 2),)]),
    Op("var_corrected", lambda x: gt.var(x, correction=1), [((4,),), ((3, 2),)], covers=("var",)),
    Op("std", lambda x: gt.std(x, axis=-1, keepdims=True), [((4,),), ((3, 4),)]),
    Op("max", lambda x: gt.max(x, axis=-1), [((4,),), ((2, 3),)]),
    Op("min", lambda x: gt.min(x), [((),), ((4,),), ((2, 3),)]),
    Op("cumulative_sum", lambda x: gt.cumulative_sum(x, axis=-1), [((4,),), ((2, 3),), ((0, 2),)]),
    Op("cumulative_sum_init", lambda x: gt.cumulative_sum(x, axis=0, include_initial=True), [((4,),), ((2, 3),)],
       covers=("cumulative_sum",)),
    Op("cumulative_prod", lambda x: gt.cumulative_prod(x, axis=1), [((2, 3),)]),
    Op("vector_norm", lambda x: gt.linalg.vector_norm(x), [((),), ((3,),), ((2, 3),)], away=0.1,
       covers=("vector_norm2",)),
    Op("vector_norm_axis", lambda x: gt.linalg.vector_norm(x, axis=-1, keepdims=True), [((2, 3),)],
       covers=("vector_norm2",)),
    Op("vector_norm_1", lambda x: gt.linalg.vector_norm(x, ord=1), [((3,),)], away=0.2),
    Op("vector_norm_inf", lambda x: gt.linalg.vector_norm(x, ord=math.inf), [((3,),)]),
    Op("vector_norm_3", lambda x: gt.linalg.vector_norm(x, ord=3, axis=0), [((3, 2),)], away=0.2,
       covers=("vector_normp",)),
    Op("nn.logsumexp", lambda x: gt.nn.logsumexp(x, axis=-1), [((4,),), ((2, 3),)], covers=("logsumexp",)),
    Op("nn.logsumexp_all", lambda x: gt.nn.logsumexp(x), [((),), ((2, 3),)], covers=("logsumexp",)),
    Op("nn.softmax", lambda x: gt.nn.softmax(x), [((4,),), ((2, 3),)], covers=("softmax",)),
    Op("nn.log_softmax", lambda x: gt.nn.log_softmax(x, axis=0), [((4,),), ((2, 3),)], covers=("log_softmax",)),
    Op("nn.cross_entropy_labels", lambda x, y: gt.nn.cross_entropy(x, y), [((3, 4), (3,))],
       ints={1: lambda shape, rng: rng.integers(0, 4, size=shape)}, covers=("nn.cross_entropy", "cross_entropy")),
    Op("nn.cross_entropy_probs", lambda x, p: gt.nn.cross_entropy(x, gt.nn.softmax(p)), [((3, 4), (3, 4))],
       covers=("nn.cross_entropy",)),
    # the residual of cross_entropy's VJP and JVP (softmax(x) - onehot): a primitive of its own, reached by the rows
    # above only through their derivatives; its rows-by-labels shapes include N-D logits and one row
    Op("softmax_minus_onehot", lambda x, y: apply(PRIMS.softmax_minus_onehot, (x, y)),
       [((3, 4), (3,)), ((2, 2, 3), (2, 2)), ((5,), ())], ints={1: lambda shape, rng: rng.integers(0, 3, size=shape)}),
    # matrix products
    Op("matmul", gt.matmul, [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
                             ((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)), ((2, 1, 2, 3), (3, 3, 2))]),
    Op("matmul_op", lambda x, y: x @ y.mT, [((2, 3), (4, 3))], covers=("matmul",)),
    Op("vecdot", gt.vecdot, [((3,), (3,)), ((2, 3), (3,)), ((2, 1, 3), (4, 3))]),
    Op("vecdot_axis0", lambda x, y: gt.vecdot(x, y, axis=0), [((3, 2), (3, 2))], covers=("vecdot",)),
    Op("tensordot", lambda x, y: gt.tensordot(x, y, axes=1), [((2, 3), (3, 4))]),
    Op("tensordot_pairs", lambda x, y: gt.tensordot(x, y, axes=([0, 2], [1, 0])), [((2, 3, 2), (2, 2, 4))],
       covers=("tensordot",)),
    # shape and indexing
    Op("reshape", lambda x: gt.reshape(x, (-1,)), [((),), ((0, 3),), ((2, 3),)]),
    Op("reshape2", lambda x: x.reshape((3, 2)), [((2, 3),)], covers=("reshape",)),
    Op("permute_dims", lambda x: gt.permute_dims(x, (2, 0, 1)), [((2, 3, 2),)]),
    Op("matrix_transpose", lambda x: x.mT, [((2, 3),), ((2, 2, 3),)]),
    Op("T", lambda x: x.T, [((2, 3),)], covers=("permute_dims",)),
    Op("broadcast_to", lambda x: gt.broadcast_to(x, (2, 2, 3)), [((),), ((3,),), ((2, 1, 3),)]),
    Op("broadcast_arrays", lambda x, y: gt.broadcast_arrays(x, y)[0] * gt.broadcast_arrays(x, y)[1],
       [((2, 1), (3,))]),
    Op("expand_dims", lambda x: gt.expand_dims(x, axis=-1), [((),), ((3,),)]),
    Op("squeeze", lambda x: gt.squeeze(x, axis=1), [((3, 1),)]),
    Op("moveaxis", lambda x: gt.moveaxis(x, 0, -1), [((2, 3, 2),)]),
    Op("flip", lambda x: gt.flip(x, axis=0), [((3,),), ((2, 3),)]),
    Op("flip_all", lambda x: gt.flip(x), [((2, 3),)], covers=("flip",)),
    Op("roll", lambda x: gt.roll(x, 1, axis=-1), [((3,),), ((2, 3),)]),
    Op("roll_flat", lambda x: gt.roll(x, -2), [((2, 3),)], covers=("roll",)),
    Op("tril", lambda x: gt.tril(x), [((3, 3),), ((2, 3, 3),)]),
    Op("triu", lambda x: gt.triu(x, k=1), [((3, 4),)]),
    Op("concat", lambda x, y: gt.concat([x, y, x], axis=-1), [((2, 3), (2, 1)), ((0,), (2,))]),
    Op("concat_none", lambda x, y: gt.concat([x, y], axis=None), [((2, 3), (2,))], covers=("concat",)),
    Op("stack", lambda x, y: gt.stack([x, y], axis=1), [((3,), (3,)), ((2, 3), (2, 3))]),
    Op("unstack", lambda x: gt.unstack(x, axis=1)[1], [((2, 3),)]),
    Op("getitem_basic", lambda x: x[1:, ::2], [((3, 4),)], covers=("getitem",)),
    Op("getitem_int", lambda x: x[1], [((3, 4),)], covers=("getitem",)),
    Op("getitem_ellipsis_newaxis", lambda x: x[..., None, 0], [((3, 4),)], covers=("getitem",)),
    Op("getitem_intarray", lambda x: x[gt.asarray([0, 2, 0], device=x.device)], [((3, 2),)],
       covers=("getitem", "take")),
    Op("getitem_bool", lambda x: x[gt.asarray([True, False, True], device=x.device)], [((3, 2),)],
       covers=("getitem", "take")),
    Op("setitem", lambda x, v: _setitem(x, v), [((3, 4), (4,)), ((3, 4), ())]),
    Op("take", lambda x: gt.take(x, gt.asarray([2, 0, 2], device=x.device), axis=1), [((2, 3),)]),
    Op("take_along_axis", lambda x: gt.take_along_axis(x, gt.asarray([[0, 2], [1, 1]], device=x.device), axis=1),
       [((2, 3),)]),
    Op("repeat", lambda x: gt.repeat(x, 2, axis=0), [((2, 3),)]),
    Op("repeat_flat", lambda x: gt.repeat(x, 3), [((3,),)], covers=("repeat",)),
    Op("tile", lambda x: gt.tile(x, (2, 1, 2)), [((2, 3),)]),
    Op("where", lambda c, x, y: gt.where(c > 0, x, y), [((3,), (3,), (3,)), ((2, 3), (3,), ())], away=0.2),
    Op("sort", lambda x: gt.sort(x, axis=-1), [((4,),), ((2, 3),)]),
    Op("sort_desc", lambda x: gt.sort(x, axis=0, descending=True), [((3, 2),)], covers=("sort",)),
    Op("diff", lambda x: gt.diff(x), [((4,),), ((2, 3),)]),
    Op("diff_prepend", lambda x, p: gt.diff(x, axis=0, n=2, prepend=p), [((3, 2), (1, 2))], covers=("diff",)),
    Op("clip", lambda x: gt.clip(x, -1.0, 1.0), [((4,),)], domain=(-3.0, 3.0)),
    Op("clip_tensor_bounds", lambda x, lo: gt.clip(x, min=lo), [((4,), (4,))], covers=("clip",)),
    Op("meshgrid", lambda x, y: gt.meshgrid(x, y)[0] * gt.meshgrid(x, y)[1], [((3,), (2,))]),
    Op("astype_copy", lambda x: gt.astype(x, gt.float64) * 2.0, [((3,),)], covers=("astype",)),
]


def _setitem(x, v):
    y = x * 1.0
    y[1:3] = v
    return y * x


def _data(op, shapes, rng):
    args = []
    for i, s in enumerate(shapes):
        if i in op.ints:
            args.append(np.asarray(op.ints[i](s, rng), dtype=np.int64))
            continue
        lo, hi = op.domain[i] if isinstance(op.domain[0], tuple) else op.domain
        a = rng.uniform(lo, hi, size=s)
        if op.away:
            a = np.where(np.abs(a) < op.away, np.sign(a + 1e-12) * (op.away + np.abs(a)), a)
        args.append(np.asarray(a, dtype=np.float64))
    return args


CASES = [pytest.param(op, shapes, id=f"{op.name}-{'x'.join(str(s) for s in shapes)}")
         for op in OPS for shapes in op.shapes]


@pytest.mark.parametrize("op,shapes", CASES)
def test_op_grads(device, op, shapes):
    rng = np.random.default_rng(zlib.crc32(repr(op.name).encode()) % 2**32)
    args = [gt.asarray(a, device=device) for a in _data(op, shapes, rng)]
    out = op.fn(*args)
    assert out.device == gt.asarray(1.0, device=device).device
    check_grads(op.fn, args, order=op.order)


# ---- coverage, computed from the registry (exact names) ----------------------------------------------------------
# Registered primitives that have no row of their own, each with the reason. Nothing else may be missing: a new
# primitive (one block in gradtape/_ops/) fails test_table_covers_every_primitive until it has a row here.
NOT_IN_TABLE = {
    "select": "picks one output of a multi-output primitive (eigh, svd, qr, slogdet): tests/test_linalg.py's rows",
    "to_device": "a transfer, not math: tests/test_tensor_api.py checks it across devices",
    "index_add": "the transpose (VJP) of getitem: checked to second order by the getitem rows",
    "take_add": "the VJP of take: checked to second order by the take row",
    "along_add": "the VJP of take_along_axis: checked to second order by the take_along_axis row",
    **{name: "gt.linalg: tests/test_linalg.py's op table (a row of the same name)"
       for name in ("inv", "det", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv",
                    "trace", "diagonal", "cross")},
    "matrix_norm": "gt.linalg.matrix_norm: tests/test_linalg.py's matrix_norm_* rows",
    **{name: "complex inputs only (gt.real/imag/conj/abs of a complex tensor): tests/test_complex.py, against torch"
       for name in ("real_complex", "imag_complex", "conj_complex", "abs_complex")},
    **{name: "gt.fft: tests/test_fft.py, against torch.fft (values, VJP, JVP, second order, every norm and length)"
       for name in ("fftn", "ifftn", "rfftn", "irfftn")},
}
# primitives made on first use, one per number of inputs (concat2, concat3...): counted under the family's name
FAMILIES = {"concat": re.compile(r"concat\d+")}
# the differentiable public functions (gt.*, gt.nn.*) the table must check by exact name
DIFFERENTIABLE = [
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp", "expm1",
    "log", "log1p", "log2", "log10", "sqrt", "square", "reciprocal", "abs", "negative", "positive", "add", "subtract",
    "multiply", "divide", "pow", "atan2", "hypot", "logaddexp", "maximum", "minimum", "copysign", "remainder", "sum",
    "mean", "prod", "var", "std", "max", "min", "cumulative_sum", "cumulative_prod", "vector_norm", "matmul", "vecdot",
    "tensordot", "reshape", "permute_dims", "matrix_transpose", "broadcast_to", "broadcast_arrays", "expand_dims",
    "squeeze", "moveaxis", "flip", "roll", "tril", "triu", "concat", "stack", "unstack", "getitem", "setitem", "take",
    "take_along_axis", "repeat", "tile", "where", "sort", "diff", "clip", "meshgrid", "astype", "real", "conj",
    "nn.relu", "nn.sigmoid", "nn.softplus", "nn.logsumexp", "nn.softmax", "nn.log_softmax", "nn.cross_entropy"]


def family(name):
    """The name a primitive is counted under: its family for the per-arity ones (concat3 -> concat), else itself."""
    return next((f for f, pattern in FAMILIES.items() if pattern.fullmatch(name)), name)


def covered(ops):
    """The exact names the rows check: each row's name and its ``covers``."""
    return {n for op in ops for n in (op.name, *op.covers)}


def missing_rows(ops, registry, excluded=NOT_IN_TABLE):
    """The registered primitives that no row checks (by exact name, see :func:`covered`) and ``excluded`` lacks."""
    have = covered(ops)
    return sorted(n for n in registry if family(n) not in have and family(n) not in excluded)


def reached(op):
    """The primitives (families) a row's function applies, read from its traced graph (first shape)."""
    args = [gt.asarray(a) for a in _data(op, op.shapes[0], np.random.default_rng(0))]
    return {family(node.op) for node in gt.trace(op.fn, *args).nodes if node.kind == "prim"}


def test_table_covers_every_primitive():
    """Every registered primitive has a row, by exact name (a row's name or covers), or a reason in NOT_IN_TABLE."""
    missing = missing_rows(OPS, PRIMS)
    assert not missing, (f"registry primitives without a row in tests/test_ops.py's OPS (add a row, or a reason to "
                         f"NOT_IN_TABLE): {missing}")
    stale = sorted(n for n in NOT_IN_TABLE if not any(family(p) == n for p in PRIMS))
    assert not stale, f"NOT_IN_TABLE names no registered primitive: {stale}"
    assert all(reason.strip() for reason in NOT_IN_TABLE.values())


def test_table_covers_every_differentiable_function():
    """Every differentiable public function has a row, by exact name."""
    have = covered(OPS)
    missing = [d for d in DIFFERENTIABLE if d not in have]
    assert not missing, f"no row checks {missing}"
    assert len(set(op.name for op in OPS)) == len(OPS), "two rows share a name"


def test_rows_reach_the_primitives_they_claim():
    """A primitive the table counts as covered is applied by at least one row that claims it (the claims are real)."""
    claims = {}
    for op in OPS:
        for n in (op.name, *op.covers):
            if n in PRIMS or n in FAMILIES:
                claims.setdefault(n, []).append(op)
    typos = sorted({n for op in OPS for n in op.covers if n not in DIFFERENTIABLE and n not in PRIMS
                    and n not in FAMILIES})
    assert not typos, f"covers names no primitive or function: {typos}"
    applied = {op.name: reached(op) for rows in claims.values() for op in rows}
    unreached = sorted(n for n, rows in claims.items() if not any(n in applied[op.name] for op in rows))
    assert not unreached, f"claimed by rows that never apply them: {unreached}"


def test_checker_catches_a_rule_off_by_a_tenth_of_a_percent():
    """A sin whose derivative is 0.1% too large is caught in forward and in reverse mode."""
    from gradtape._core.dispatch import apply
    from gradtape._core.primitive import define
    bad = define("bad_sin", lambda xp, x: xp.sin(x), vjp={"x": lambda xp, ct, out, x: ct * xp.cos(x) * 1.001},
                 jvp={"x": lambda xp, t, out, x: t * xp.cos(x) * 1.001}, reads={"x": ("x",)}, register=False)
    x = gt.asarray([0.1, 0.4, 0.9])
    for modes in (("rev",), ("fwd",)):
        with pytest.raises(GradientCheckError):
            check_grads(lambda x: apply(bad, (x,)), (x,), order=1, modes=modes)
    # large inputs go through random projections: caught there too
    big = gt.asarray(np.linspace(0.1, 0.9, 200))
    for modes in (("rev",), ("fwd",)):
        with pytest.raises(GradientCheckError):
            check_grads(lambda x: apply(bad, (x,)), (big,), order=1, modes=modes)
    check_grads(lambda x: gt.sin(x), (big,), order=1)  # and the right rule passes


def test_checker_catches_a_wrong_second_derivative():
    """First derivative right, second wrong (the rule is not built from differentiable ops)."""
    from gradtape._core.dispatch import apply, wrap
    from gradtape._core.primitive import define
    # VJP computes cos(x) on raw data even under create_graph: the derivative of the rule is lost
    frozen = define("frozen_sin", lambda xp, x: xp.sin(x),
                    vjp={"x": lambda xp, ct, out, x: ct * wrap(x.backend.xp.cos(x.data), x.backend)
                         if isinstance(x, gt.Tensor) else ct * xp.cos(x)},
                    jvp={"x": lambda xp, t, out, x: t * xp.cos(x)}, reads={"x": ("x",)}, register=False)
    x = gt.asarray([0.1, 0.4, 0.9])
    check_grads(lambda x: apply(frozen, (x,)), (x,), order=1)
    with pytest.raises(GradientCheckError):
        check_grads(lambda x: apply(frozen, (x,)), (x,), order=2, modes=("rev",))
