"""Everything about an elementwise op follows from its one block in ``gradtape/_ops/`` (the registry).

A new primitive is declared here with ``register=False`` and put in a separate :class:`Registry` (a copy of
``PRIMS`` plus the new one), so nothing global changes: the real ``PRIMS`` never holds it, and code that reads
the registry at call time (the fuzzer's coverage check) sees the copy only inside ``monkeypatch``.
"""
from __future__ import annotations

import doctest
import inspect

import numpy as np
import pytest

import gradtape as gt
from gradtape import sym
from gradtape._api import elementwise as bound
from gradtape._core import primitive
from gradtape._core.primitive import PRIMS, Registry, binary, unary
from gradtape.testing import check_grads
from tests.difftest import oracles

from test_ops import NOT_IN_TABLE, OPS, U, Op, covered, missing_rows


def _cube():
    return unary("cube_test", lambda xp, x: x * x * x, lambda xp, x, out: 3 * (x * x), namespace="gt",
                 register=False)


def _with(*new):
    """A registry holding every primitive of PRIMS and ``new``."""
    registry = Registry()
    for p in (*PRIMS.values(), *new):
        registry.register(p)
    return registry


# ---- the coverage test of tests/test_ops.py is computed from the registry, by exact names ----------------------
def test_the_full_table_misses_nothing():
    assert missing_rows(OPS, PRIMS) == []


def test_a_deleted_row_is_reported_even_when_a_longer_name_remains():
    without_exp = [op for op in OPS if op.name != "exp"]
    assert len(without_exp) == len(OPS) - 1
    assert missing_rows(without_exp, PRIMS) == ["exp"]
    assert "expm1" in covered(without_exp)          # the substring match of old counted "expm1" as "exp"
    without_log = [op for op in OPS if op.name != "log"]
    assert missing_rows(without_log, PRIMS) == ["log"]      # log1p, log2, log10 do not stand in for it


def test_a_deleted_cover_or_reason_is_reported():
    without_relu = [op for op in OPS if op.name != "nn.relu"]
    assert missing_rows(without_relu, PRIMS) == ["relu"]    # the primitive behind gt.nn.relu
    reasons = {k: v for k, v in NOT_IN_TABLE.items() if k != "take_add"}
    assert missing_rows(OPS, PRIMS, reasons) == ["take_add"]


def test_rows_for_a_family_of_primitives_count_each_member():
    gt.concat([gt.ones(2)] * 7)     # makes the primitive concat7 on first use
    assert "concat7" in PRIMS
    assert missing_rows(OPS, PRIMS) == []
    without_concat = [op for op in OPS if not op.name.startswith("concat") and "concat" not in op.covers]
    assert "concat7" in missing_rows(without_concat, PRIMS)


# ---- a new elementwise primitive: one block, and everything else follows ------------------------------------------
def test_a_new_primitive_is_missing_from_the_table_until_it_has_a_row():
    cube = _cube()
    registry = _with(cube)
    assert "cube_test" not in PRIMS
    assert missing_rows(OPS, registry) == ["cube_test"]
    row = Op("cube_test", bound.bind(cube), [(s,) for s in U])
    assert missing_rows(OPS + [row], registry) == []


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_the_bound_function_of_a_new_primitive(device, monkeypatch):
    cube = _cube()
    f = bound.bind(cube)
    assert f.__name__ == "cube_test" and f.primitive is cube
    assert str(inspect.signature(f)) == "(x, /)"
    x = gt.asarray([2.0, -1.0], device=device).requires_grad_()
    y = f(x)
    assert y.tolist() == [8.0, -1.0] and y.device == x.device
    gt.sum(y).backward()
    assert x.grad.tolist() == [12.0, 3.0]
    check_grads(f, (gt.asarray(np.linspace(-1.0, 1.5, 5), device=device),), order=2)
    # its docstring example runs where gradtape._api.elementwise puts the function: at gt.<name>
    monkeypatch.setattr(gt, "cube_test", f, raising=False)
    test = doctest.DocTestParser().get_doctest(f.__doc__, {}, "cube_test", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert test.examples and runner.failures == 0


def test_a_new_binary_primitive_binds_with_two_inputs():
    scaled = binary("scaled_test", lambda xp, x, y: 2 * x * y, lambda xp, x, y, out: 2 * y,
                    lambda xp, x, y, out: 2 * x, namespace="gt", register=False)
    f = bound.bind(scaled)
    assert str(inspect.signature(f)) == "(x1, x2, /)"
    assert f(gt.asarray([3.0]), gt.asarray([0.5])).tolist() == [3.0]
    check_grads(f, (gt.asarray([0.3, -1.2]), gt.asarray([2.0])), order=2)


def test_a_new_primitive_works_in_sym_expressions():
    f = bound.bind(_cube())
    a = sym.var("a")
    e = f(a) + 1.0
    assert isinstance(e, sym.Symbol)
    assert e.eval(a=gt.asarray([2.0, 3.0])).tolist() == [9.0, 28.0]
    assert e.list_arguments() == ["a"] and "cube_test" in e.to_dot()
    assert sym.grad(e, a).eval(a=gt.asarray([2.0, -1.0])).tolist() == [12.0, 3.0]


def test_the_fuzzer_reports_a_new_primitive_until_it_has_a_spec(monkeypatch):
    assert oracles.missing_specs() == []
    monkeypatch.setattr(primitive, "PRIMS", _with(_cube()))
    assert oracles.missing_specs() == ["PRIMS['cube_test']"]
    monkeypatch.setitem(oracles.SPECS, "cube_test", oracles.Op("cube_test", "ew1", 1, (None,)))
    assert oracles.missing_specs() == []


def test_the_registry_alone_makes_the_gt_functions():
    """Every primitive with namespace "gt" is the public gt function of its name (and in gt.__all__); nothing else
    is bound."""
    public = {name for name, p in PRIMS.items() if p.namespace == "gt"}
    assert public and public == set(bound.FUNCTIONS)
    for name in public:
        assert getattr(gt, name).primitive is PRIMS[name], name
        assert name in gt.__all__, name
    assert gt.sin(gt.asarray([0.0])).tolist() == [0.0]
