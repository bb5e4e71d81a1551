"""One op table drives forward- and reverse-mode checks, to second order, against finite differences.

Every differentiable function of the namespace appears here with the input
domain where it is smooth, on shapes including (), (0,) and broadcasting
pairs, on every backend (NumPy, array-api-strict; CuPy where a GPU exists).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import gradtape as gt
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
    Op("nn.relu", gt.nn.relu, [(s,) for s in U], away=0.2), Op("nn.sigmoid", gt.nn.sigmoid, [(s,) for s in U]),
    Op("nn.softplus", gt.nn.softplus, [(s,) for s in U], domain=(-30.0, 30.0)),
    _b("add"), _b("subtract"), _b("multiply"), _b("divide", domain=((-2.0, 2.0), (0.5, 2.0))),
    _b("pow", domain=((0.5, 2.0), (-1.0, 2.0))), _b("atan2", domain=((-2.0, 2.0), (0.3, 2.0))),
    _b("hypot", domain=(0.3, 2.0)), _b("logaddexp"), _b("maximum"), _b("minimum"),
    _b("copysign", away=0.3), _b("remainder", domain=((0.1, 0.9), (1.1, 2.0))),
    Op("scalar_ops", lambda x: (2.0 * x - 1.5) / 3.0 + x ** 2 - 2.0 ** x + 1.0 / (x + 3.0), [(s,) for s in U]),
    # reductions
    Op("sum", lambda x: gt.sum(x), [(s,) for s in U + [(2, 3, 2)]]),
    Op("sum_axis", lambda x: gt.sum(x, axis=1), [((2, 3),), ((0, 3),), ((2, 3, 2),)]),
    Op("sum_axes_keep", lambda x: gt.sum(x, axis=(0, -1), keepdims=True), [((2, 3),), ((2, 3, 2),)]),
    Op("mean", lambda x: gt.mean(x, axis=0), [((4,),), ((2, 3),)]),
    Op("prod", lambda x: gt.prod(x, axis=-1), [((4,),), ((2, 3),), ((2, 3, 2),)]),
    Op("prod_all", lambda x: gt.prod(x), [((),), ((3,),), ((2, 3),)]),
    Op("prod_zero", lambda x: gt.prod(x * gt.asarray([1.0, 0.0, 1.0], device=x.device)), [((3,),)]),
    Op("var", lambda x: gt.var(x, axis=0), [((4,),), ((3, 2),)]),
    Op("var_corrected", lambda x: gt.var(x, correction=1), [((4,),), ((3, 2),)]),
    Op("std", lambda x: gt.std(x, axis=-1, keepdims=True), [((4,),), ((3, 4),)]),
    Op("max", lambda x: gt.max(x, axis=-1), [((4,),), ((2, 3),)]),
    Op("min", lambda x: gt.min(x), [((),), ((4,),), ((2, 3),)]),
    Op("cumulative_sum", lambda x: gt.cumulative_sum(x, axis=-1), [((4,),), ((2, 3),), ((0, 2),)]),
    Op("cumulative_sum_init", lambda x: gt.cumulative_sum(x, axis=0, include_initial=True), [((4,),), ((2, 3),)]),
    Op("cumulative_prod", lambda x: gt.cumulative_prod(x, axis=1), [((2, 3),)]),
    Op("vector_norm", lambda x: gt.linalg.vector_norm(x), [((),), ((3,),), ((2, 3),)], away=0.1),
    Op("vector_norm_axis", lambda x: gt.linalg.vector_norm(x, axis=-1, keepdims=True), [((2, 3),)]),
    Op("vector_norm_1", lambda x: gt.linalg.vector_norm(x, ord=1), [((3,),)], away=0.2),
    Op("vector_norm_inf", lambda x: gt.linalg.vector_norm(x, ord=math.inf), [((3,),)]),
    Op("vector_norm_3", lambda x: gt.linalg.vector_norm(x, ord=3, axis=0), [((3, 2),)], away=0.2),
    Op("nn.logsumexp", lambda x: gt.nn.logsumexp(x, axis=-1), [((4,),), ((2, 3),)]),
    Op("nn.logsumexp_all", lambda x: gt.nn.logsumexp(x), [((),), ((2, 3),)]),
    Op("nn.softmax", lambda x: gt.nn.softmax(x), [((4,),), ((2, 3),)]),
    Op("nn.log_softmax", lambda x: gt.nn.log_softmax(x, axis=0), [((4,),), ((2, 3),)]),
    Op("nn.cross_entropy_labels", lambda x, y: gt.nn.cross_entropy(x, y), [((3, 4), (3,))],
       ints={1: lambda shape, rng: rng.integers(0, 4, size=shape)}),
    Op("nn.cross_entropy_probs", lambda x, p: gt.nn.cross_entropy(x, gt.nn.softmax(p)), [((3, 4), (3, 4))]),
    # matrix products
    Op("matmul", gt.matmul, [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
                             ((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)), ((2, 1, 2, 3), (3, 3, 2))]),
    Op("matmul_op", lambda x, y: x @ y.mT, [((2, 3), (4, 3))]),
    Op("vecdot", gt.vecdot, [((3,), (3,)), ((2, 3), (3,)), ((2, 1, 3), (4, 3))]),
    Op("vecdot_axis0", lambda x, y: gt.vecdot(x, y, axis=0), [((3, 2), (3, 2))]),
    Op("tensordot", lambda x, y: gt.tensordot(x, y, axes=1), [((2, 3), (3, 4))]),
    Op("tensordot_pairs", lambda x, y: gt.tensordot(x, y, axes=([0, 2], [1, 0])), [((2, 3, 2), (2, 2, 4))]),
    # shape and indexing
    Op("reshape", lambda x: gt.reshape(x, (-1,)), [((),), ((0, 3),), ((2, 3),)]),
    Op("reshape2", lambda x: x.reshape((3, 2)), [((2, 3),)]),
    Op("permute_dims", lambda x: gt.permute_dims(x, (2, 0, 1)), [((2, 3, 2),)]),
    Op("matrix_transpose", lambda x: x.mT, [((2, 3),), ((2, 2, 3),)]),
    Op("T", lambda x: x.T, [((2, 3),)]),
    Op("broadcast_to", lambda x: gt.broadcast_to(x, (2, 2, 3)), [((),), ((3,),), ((2, 1, 3),)]),
    Op("broadcast_arrays", lambda x, y: gt.broadcast_arrays(x, y)[0] * gt.broadcast_arrays(x, y)[1],
       [((2, 1), (3,))]),
    Op("expand_dims", lambda x: gt.expand_dims(x, axis=-1), [((),), ((3,),)]),
    Op("squeeze", lambda x: gt.squeeze(x, axis=1), [((3, 1),)]),
    Op("moveaxis", lambda x: gt.moveaxis(x, 0, -1), [((2, 3, 2),)]),
    Op("flip", lambda x: gt.flip(x, axis=0), [((3,),), ((2, 3),)]),
    Op("flip_all", lambda x: gt.flip(x), [((2, 3),)]),
    Op("roll", lambda x: gt.roll(x, 1, axis=-1), [((3,),), ((2, 3),)]),
    Op("roll_flat", lambda x: gt.roll(x, -2), [((2, 3),)]),
    Op("tril", lambda x: gt.tril(x), [((3, 3),), ((2, 3, 3),)]),
    Op("triu", lambda x: gt.triu(x, k=1), [((3, 4),)]),
    Op("concat", lambda x, y: gt.concat([x, y, x], axis=-1), [((2, 3), (2, 1)), ((0,), (2,))]),
    Op("concat_none", lambda x, y: gt.concat([x, y], axis=None), [((2, 3), (2,))]),
    Op("stack", lambda x, y: gt.stack([x, y], axis=1), [((3,), (3,)), ((2, 3), (2, 3))]),
    Op("unstack", lambda x: gt.unstack(x, axis=1)[1], [((2, 3),)]),
    Op("getitem_basic", lambda x: x[1:, ::2], [((3, 4),)]),
    Op("getitem_int", lambda x: x[1], [((3, 4),)]),
    Op("getitem_ellipsis_newaxis", lambda x: x[..., None, 0], [((3, 4),)]),
    Op("getitem_intarray", lambda x: x[gt.asarray([0, 2, 0], device=x.device)], [((3, 2),)]),
    Op("getitem_bool", lambda x: x[gt.asarray([True, False, True], device=x.device)], [((3, 2),)]),
    Op("setitem", lambda x, v: _setitem(x, v), [((3, 4), (4,)), ((3, 4), ())]),
    Op("take", lambda x: gt.take(x, gt.asarray([2, 0, 2], device=x.device), axis=1), [((2, 3),)]),
    Op("take_along_axis", lambda x: gt.take_along_axis(x, gt.asarray([[0, 2], [1, 1]], device=x.device), axis=1),
       [((2, 3),)]),
    Op("repeat", lambda x: gt.repeat(x, 2, axis=0), [((2, 3),)]),
    Op("repeat_flat", lambda x: gt.repeat(x, 3), [((3,),)]),
    Op("tile", lambda x: gt.tile(x, (2, 1, 2)), [((2, 3),)]),
    Op("where", lambda c, x, y: gt.where(c > 0, x, y), [((3,), (3,), (3,)), ((2, 3), (3,), ())], away=0.2),
    Op("sort", lambda x: gt.sort(x, axis=-1), [((4,),), ((2, 3),)]),
    Op("sort_desc", lambda x: gt.sort(x, axis=0, descending=True), [((3, 2),)]),
    Op("diff", lambda x: gt.diff(x), [((4,),), ((2, 3),)]),
    Op("diff_prepend", lambda x, p: gt.diff(x, axis=0, n=2, prepend=p), [((3, 2), (1, 2))]),
    Op("clip", lambda x: gt.clip(x, -1.0, 1.0), [((4,),)], domain=(-3.0, 3.0)),
    Op("clip_tensor_bounds", lambda x, lo: gt.clip(x, min=lo), [((4,), (4,))]),
    Op("meshgrid", lambda x, y: gt.meshgrid(x, y)[0] * gt.meshgrid(x, y)[1], [((3,), (2,))]),
    Op("astype_copy", lambda x: gt.astype(x, gt.float64) * 2.0, [((3,),)]),
]


def _setitem(x, v):
    y = x * 1.0
    y[1:3] = v
    return y * x


def _data(op, shapes, rng):
    args = []
    for i, s in enumerate(shapes):
        if i in op.ints:
            others = shapes[0][:-1]
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
    rng = np.random.default_rng(abs(hash(op.name)) % 2**32)
    args = [gt.asarray(a, device=device) for a in _data(op, shapes, rng)]
    out = op.fn(*args)
    assert out.device == gt.asarray(1.0, device=device).device
    check_grads(op.fn, args, order=op.order)


def test_table_covers_every_differentiable_function():
    """Every differentiable function of the namespace has a row in the table."""
    names = {op.name.split("_")[0] if op.name.split("_")[0] in ("nn.cross", ) else op.name for op in OPS}
    flat = " ".join(op.name for op in OPS)
    diff = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp",
            "expm1", "log", "log1p", "log2", "log10", "sqrt", "square", "reciprocal", "abs", "negative", "positive",
            "add", "subtract", "multiply", "divide", "pow", "atan2", "hypot", "logaddexp", "maximum", "minimum",
            "copysign", "remainder", "sum", "mean", "prod", "var", "std", "max", "min", "cumulative_sum",
            "cumulative_prod", "vector_norm", "matmul", "vecdot", "tensordot", "reshape", "permute_dims",
            "matrix_transpose", "broadcast_to", "broadcast_arrays", "expand_dims", "squeeze", "moveaxis", "flip",
            "roll", "tril", "triu", "concat", "stack", "unstack", "getitem", "setitem", "take", "take_along_axis",
            "repeat", "tile", "where", "sort", "diff", "clip", "meshgrid", "astype", "real", "conj",
            "nn.relu", "nn.sigmoid", "nn.softplus", "nn.logsumexp", "nn.softmax", "nn.log_softmax",
            "nn.cross_entropy"]
    missing = [d for d in diff if d not in flat]
    assert not missing and names


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
