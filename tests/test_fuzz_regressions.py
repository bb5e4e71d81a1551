"""Programs the differential fuzzer found (shrunk), kept as regression tests on NumPy and array-api-strict.

Each entry was produced by ``tests/difftest/runner.py`` (``shrink`` then ``dump``)
and is recorded with its reproducer in the issue-9 findings. A test fails while
gradtape still differs from the oracle (PyTorch float64, or JAX).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.difftest.oracles import Const
from tests.difftest.programs import Instr as I, Program


def A(values, shape):
    return np.array(values, dtype=np.float64).reshape(shape)


def C(values, dtype):
    return Const(np.array(values, dtype=dtype))


FOUND = {
    # issue 9 §2: broadcast undone only when shapes differ (vecdot of (3,3) with (3,))
    "vecdot-broadcast-operand": Program(
        "general", 4, {"x0": A([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]], (3, 3)), "x1": A([1., 2., 3.], (3,))},
        [I("v0", "vecdot", ["x0", "x1"], {})], ["v0"]),
    # issue 9 §2: y[0] = v with v (1, 3) -- the value's gradient must keep v's shape
    "setitem-value-leading-unit-axis": Program(
        "general", 5, {"x0": A([[1., 2., 3.], [4., 5., 6.]], (2, 3)), "x1": A([[1., 2., 3.]], (1, 3))},
        [I("v0", "setitem", ["x0", "x1"], {"key": 0})], ["v0"]),
    # issue 9 §2: total derivatives through intermediate sources (dy/da = 7, dy/db = 3)
    "total-derivative-through-sources": Program(
        "general", 2, {"x0": A(2.0, ())},
        [I("v0", "scalar_ops", ["x0"], {"op": "*", "c": 2.0}), I("v1", "scalar_ops", ["v0"], {"op": "*", "c": 3.0}),
         I("v2", "add", ["v1", "x0"], {})], ["v2"], ["v0"]),
    # issue 9 §2: x[mask, None]
    "mask-then-newaxis": Program(
        "general", 3, {"x0": A([[1., 2., 3., 4.], [5., 6., 7., 8.]], (2, 4))},
        [I("v0", "getitem", ["x0"], {"key": (C([True, False], "bool"), None)})], ["v0"]),
    # issue 9 §2 (strict): negative integer indices
    "take-negative-index": Program(
        "general", 6, {"x0": A([1., 2., 3.], (3,))},
        [I("v0", "take", ["x0"], {"idx": C([-1, 0], "int64"), "axis": 0})], ["v0"]),
    # issue 9 §3: separated advanced indices through batched jacobian / hessian
    "jacobian-separated-advanced-indices": Program(
        "jacobian", 7, {"x0": A(list(range(12)), (2, 3, 2))},
        [I("v0", "getitem", ["x0"], {"key": (C([1, 0], "int64"), slice(None), 0)})], ["v0"]),
    # issue 9 §3: take_along_axis with broadcasting indices
    "take-along-axis-broadcast-indices": Program(
        "general", 8, {"x0": A([[1., 2., 3., 4.], [5., 6., 7., 8.], [9., 1., 2., 3.]], (3, 4))},
        [I("v0", "take_along_axis", ["x0"], {"idx": C([[0, 2]], "int64"), "axis": 1})], ["v0"]),
    # issue 9 §3: matmul with an empty operand (backward crashed)
    "matmul-empty": Program(
        "general", 61, {"x0": A([[[1.0, 1.0]]], (1, 1, 2)), "x1": A([[], []], (2, 0))},
        [I("v0", "matmul", ["x0", "x1"], {})], ["v0"]),
    # NEW: d/dx x**0 at x = 0 is NaN (torch and JAX: 0)
    "pow-int-zero-at-zero": Program(
        "general", 1, {"x0": A([0.0, 2.0], (2,))}, [I("v0", "scalar_ops", ["x0"], {"op": "**", "c": 0})], ["v0"]),
    # NEW: the tangent of a p-norm (ord=3) over an empty axis is NaN (torch: 0; the Jacobian is empty)
    "pnorm-empty-axis-tangent": Program(
        "jacobian", 33, {"x0": A([[], []], (2, 0))},
        [I("v0", "moveaxis", ["x0"], {"source": 0, "destination": 1}),
         I("v2", "linalg.vector_norm", ["v0"], {"axis": -2, "ord": 3})], ["v2"]),
    # NEW: gt.trace drops an indexed write on an untracked tensor (the replay returns the value before the write)
    "trace-setitem": Program(
        "general", 7043, {"x2": A([[1.0]], (1, 1)), "x5": A(-1.6, ())},
        [I("v6", "setitem", ["x2", "x5"], {"key": (None, 0)})], ["v6"]),
    # the same defect through a traced gradient: the dropped write makes maximum see a tie (gradient halved)
    "trace-grad-setitem-maximum": Program(
        "general", 7052, {"x2": A([[1.0]], (1, 1)), "x3": A(-2.0, ())},
        [I("v2", "setitem", ["x2", "x3"], {"key": 0}), I("v6", "maximum", ["x2", "v2"], {})], ["v6"]),
    # NEW: forward-mode (batched) jacobian through y[empty slice, ..., int array] = v raises ValueError
    "jacobian-forward-setitem-empty-region": Program(
        "jacobian", 20026, {"x1": A([[1.0]], (1, 1)), "x2": A(-2.0, ())},
        [I("v4", "setitem", ["x1", "x2"], {"key": (slice(4, 3, 2), Ellipsis, C([-1], "int64"))})], ["v4"]),
    # NEW: jacobian (both modes) through y[..., 1, [-1]] = v on a (2, 1) array raises IndexError
    "jacobian-setitem-ellipsis-int-array": Program(
        "jacobian", 1000010, {"x1": A([[1.0], [1.0]], (2, 1)), "x2": A([1.0], (1,))},
        [I("v0", "setitem", ["x1", "x2"], {"key": (Ellipsis, 1, C([-1], "int64"))})], ["v0"]),
    # NEW: forward-mode jacobian through y[..., [0], ::2] = v raises ValueError (the value's batch axis)
    "jacobian-forward-setitem-array-then-slice": Program(
        "jacobian", 1000233, {"x0": A([[1.0]], (1, 1)), "x2": A([[1.0]], (1, 1))},
        [I("v1", "setitem", ["x0", "x2"], {"key": (Ellipsis, C([0], "int64"), slice(None, None, 2))})], ["v1"]),
    # NEW: jacobian (both modes) through y[[1, 0], ..., 4:-2:2, -5:] = v (an empty region after an array index)
    "jacobian-setitem-array-ellipsis-empty-slice": Program(
        "jacobian", 2000360, {"x0": A([[[1.0]], [[1.0]]], (2, 1, 1)), "x1": A([[[1.0]]], (1, 1, 1))},
        [I("v2", "setitem", ["x0", "x1"], {"key": (C([1, 0], "int64"), Ellipsis, slice(4, -2, 2), slice(-5, None))})],
        ["v2"]),
    # NEW (strict only): y[mask] = v on an empty (0, 1) array with a (0, 1) mask raises ValueError
    "strict-setitem-empty-mask": Program(
        "general", 10300730, {"x0": A([], (0, 1)), "x1": A([], (0,))},
        [I("v0", "setitem", ["x0", "x1"], {"key": Const(np.zeros((0, 1), bool))})], ["v0"]),
    # issue 10 campaign (seed 22401): logaddexp(expm1(x), x)'s second derivative at x = 6.7, where torch's double
    # backward overflows to NaN (exp(expm1(6.7)) ~ e^811); gradtape is finite and equals JAX
    "logaddexp-expm1-second-order": Program(
        "general", 22401, {"x3": A([[[2.1]], [[6.7]]], (2, 1, 1))},
        [I("v0", "expm1", ["x3"], {}), I("v3", "logaddexp", ["v0", "x3"], {})], ["v3"], oracle="jax"),
    # nested gt.grad over a closure (found by the namespace helper; fuzzer route "nested")
    "nested-grad-closure": Program(
        "general", 3, {"x0": A([0.0, 0.0], (2,)), "x1": A([2.0, 0.5], (2,))},
        [I("v0", "log", ["x1"], {}), I("v1", "multiply", ["x0", "v0"], {})], ["v1"]),
}


@pytest.mark.parametrize("backend", ["cpu", "strict"])
@pytest.mark.parametrize("name", sorted(FOUND))
def test_fuzz_regression(name, backend):
    pytest.importorskip("torch")
    prog = FOUND[name]
    if prog.oracle == "jax":
        pytest.importorskip("jax")
    from tests.difftest import runner as R
    r = R.check(prog, backend)
    assert r.status == "ok", r.report()


def test_abs_derivative_at_nan_is_nan():
    """Fuzzer seed 21589 (issue 10 campaign): cross_entropy over an empty batch is NaN, and the gradient of
    |v| at v = NaN then differs between the oracles (PyTorch 0, JAX -1): both pick a branch for a value that
    has none. gradtape propagates the NaN (NumPy's sign(NaN)), on every backend and in forward mode."""
    import gradtape as gt
    for device in ("cpu", "strict"):
        x = gt.asarray(float("nan"), device=device).requires_grad_()
        gt.abs(x).backward()
        assert np.isnan(gt.to_numpy(x.grad))
        _, t = gt.jvp(gt.abs, (gt.asarray(float("nan"), device=device),), (gt.asarray(1.0, device=device),))
        assert np.isnan(gt.to_numpy(t))
