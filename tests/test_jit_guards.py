"""Guards: a Python decision on a traced value is recorded, checked on replay, and never replays another
path's value: ``gt.trace`` replay raises naming the guard and the line, ``gt.jit`` retraces for the path."""
from __future__ import annotations

import json
import os
import zlib

import numpy as np
import pytest

import gradtape as gt
from gradtape.graph.guards import GuardError

HERE = os.path.basename(__file__)
DEV = "strict"          # the replay plan (the numba lowering is checked at the end)


def _a(v, device=DEV):
    return gt.asarray(v, device=device)


def _eq(a, b):
    a, b = gt.to_numpy(a), gt.to_numpy(b)
    assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=1e-12), (a, b)


def branch(x):
    if gt.sum(x) > 0:
        return x * 2.0
    return x - 1.0


def loop(x):
    n = 0
    while gt.max(x) > 1.0:           # the loop count depends on the values
        x = x / 2.0
        n += 1
    return x + float(n)


def use_float(x):
    return x * float(gt.sum(x))       # a Python float used in arithmetic


def use_item(x):
    k = gt.count_nonzero(x > 0).item()         # a Python int from .item() picks a slice
    return x[:k] * 1.0 if k else x * 0.0


def use_int(x):
    return gt.ones(int(gt.count_nonzero(x > 0)), device=x.device) * gt.sum(x)


def use_index(x):
    i = gt.argmax(x)
    return x * [1.0, 2.0, 3.0][i]    # operator.index of a traced integer


def use_tolist(x):
    return x + sum(1.0 for v in (x > 0).tolist() if v)


def use_nonzero(x):
    return gt.sum(gt.astype(gt.nonzero(x)[0], x.dtype)) + x


def use_mask(x):
    return gt.sum(x[x > 0]) * x          # a boolean mask's positions


def use_tensor_index(x):
    return x[gt.argmax(x)] * x           # a 0-d integer tensor as an index


PROGRAMS = [(use_mask, [1.0, -1.0, 2.0], [-1.0, 1.0, 2.0]), (use_tensor_index, [3.0, 1.0], [1.0, 3.0]),
            (branch, [1.0, 2.0], [-1.0, -2.0]), (loop, [3.0, 0.5], [9.0, 0.5]),
            (use_float, [1.0, 2.0], [1.0, 3.0]), (use_item, [1.0, -2.0, 3.0], [1.0, 2.0, 3.0]),
            (use_int, [1.0, -2.0], [1.0, 2.0]), (use_index, [3.0, 1.0, 2.0], [1.0, 3.0, 2.0]),
            (use_tolist, [1.0, -1.0], [1.0, 1.0]), (use_nonzero, [1.0, 0.0, 2.0], [1.0, 1.0, 2.0])]
IDS = [p[0].__name__ for p in PROGRAMS]


@pytest.mark.parametrize("f,ex,other", PROGRAMS, ids=IDS)
def test_trace_records_a_guard_and_replay_refuses_the_other_path(f, ex, other):
    g = gt.trace(f, _a(ex))
    assert g.guards, f"{f.__name__}: no guard recorded"
    assert all(gd.where.startswith(HERE + ":") for gd in g.guards), g.guards
    _eq(g(_a(ex)), f(_a(ex)))                     # the traced path replays
    with pytest.raises(RuntimeError, match=rf"gradtape.Graph {f.__name__}: the traced path took .* at "
                                           rf"{HERE}:\d+ with value .*; this input gives .*: trace again"):
        g(_a(other))


@pytest.mark.parametrize("f,ex,other", PROGRAMS, ids=IDS)
def test_jit_retraces_for_the_other_path(f, ex, other):
    jf = gt.jit(f)
    for v in (ex, other, ex, other):
        _eq(jf(_a(v)), f(_a(v)))
    info = jf.cache_info()
    assert info.traces == 2 and info.misses == 1 and info.currsize == 2 and info.hits == 2, info


def test_guard_message_names_the_kind_value_and_line():
    g = gt.trace(branch, _a([1.0]))
    line = branch.__code__.co_firstlineno + 1
    with pytest.raises(GuardError) as e:
        g(_a([-1.0]))
    assert e.value.guard.where == f"{HERE}:{line}" and e.value.guard.value is True and e.value.got is False
    assert f"took `if`/`bool()` at {HERE}:{line} with value True; this input gives False" in str(e.value)


def test_a_graph_without_guards_runs_the_plain_loop():
    from gradtape import backends
    g = gt.trace(lambda x: gt.sin(x) * 2.0, _a([1.0]))
    assert g.guards == [] and "guard" not in g.plan_source(DEV)
    assert g(_a([2.0])).shape == (1,)
    assert g._plans[backends.get(DEV)].fn.__qualname__ == "_runner.<locals>.replay"
    h = gt.trace(branch, _a([1.0]))
    assert "guard(v" in h.plan_source(DEV) and "guard %" in str(h)
    assert h._plans[backends.get(DEV)].fn.__qualname__ == "_guarded_runner.<locals>.replay"


def test_constants_record_no_guard():
    c = _a([1.0, 2.0])
    g = gt.trace(lambda x: x * 2.0 if gt.sum(c) > 0 else x, _a([1.0, 1.0]))
    assert g.guards == []


def test_guards_survive_json():
    g = gt.trace(loop, _a([3.0, 0.5]))
    h = gt.Graph.from_json(g.to_json())
    assert [(x.node, x.kind, x.value, x.where) for x in h.guards] == \
        [(x.node, x.kind, x.value, x.where) for x in g.guards]
    _eq(h(_a([2.5, 0.1])), loop(_a([2.5, 0.1])))
    with pytest.raises(RuntimeError, match="trace again"):
        h(_a([9.0, 0.1]))
    s = gt.trace(use_nonzero, _a([1.0, 0.0, 2.0]))
    assert gt.Graph.from_json(s.to_json()).guards[0].value == (2,)


@pytest.mark.parametrize("bad", [{"node": 99, "kind": "bool", "value": True, "where": "f.py:1"},
                                 {"node": 1, "kind": "exec", "value": True, "where": "f.py:1"},
                                 {"node": 1, "kind": "bool", "value": True},
                                 {"node": 1, "kind": "shape", "value": "(2,)", "where": "f.py:1"},
                                 {"node": 1, "kind": "bool", "value": {"$": "dict", "v": {}}, "where": "x"}])
def test_malformed_guards_are_refused_on_load(bad):
    d = json.loads(gt.trace(branch, _a([1.0])).to_json())
    d["guards"] = [bad]
    with pytest.raises(ValueError, match="guard"):
        gt.Graph.from_json(json.dumps(d))


def test_nested_traces_both_record_the_guard():
    inner = {}

    def outer(x):
        inner["g"] = gt.trace(branch, x)
        return branch(x)
    g = gt.trace(outer, _a([1.0]))
    assert inner["g"].guards and g.guards


def test_trace_of_grad_guards_the_forward_decision():
    f = lambda x: gt.sum(branch(x) ** 2)  # noqa: E731
    g = gt.trace(gt.grad(f), _a([1.0, 2.0]))
    _eq(g(_a([3.0, 1.0])), gt.grad(f)(_a([3.0, 1.0])))
    with pytest.raises(RuntimeError, match="traced path took"):
        g(_a([-3.0, -1.0]))
    jg = gt.jit(gt.grad(f))
    for v in ([1.0, 2.0], [-3.0, -1.0]):
        _eq(jg(_a(v)), gt.grad(f)(_a(v)))


def test_guarded_jit_is_differentiable_on_each_path():
    jf = gt.jit(branch)
    for v in ([1.0, 2.0], [-1.0, -2.0]):
        _eq(gt.grad(lambda x: gt.sum(jf(x) ** 2))(_a(v)), gt.grad(lambda x: gt.sum(branch(x) ** 2))(_a(v)))


def test_guards_with_the_numba_lowering():
    pytest.importorskip("numba")
    jf = gt.jit(loop)
    for v in ([3.0, 0.5], [9.0, 0.5], [3.0, 0.5]):
        _eq(jf(_a(v, "cpu")), loop(_a(v, "cpu")))
    assert jf.cache_info().traces == 2


@pytest.mark.parametrize("f,ex,other", PROGRAMS, ids=IDS)
def test_random_inputs_never_get_another_paths_value(f, ex, other):
    """Replay of one traced graph on random inputs: the eager value, or a RuntimeError, never anything else;
    the jitted function always gives the eager value."""
    rng = np.random.default_rng(zlib.crc32(f.__name__.encode()))     # (not hash(): salted per process)
    g = gt.trace(f, _a(ex))
    jf = gt.jit(f)
    refused = 0
    for _ in range(12):
        v = np.round(rng.uniform(-3.0, 3.0, size=len(ex)) * 2) / 2        # ties and zeros happen
        want = f(_a(v))
        _eq(jf(_a(v)), want)
        try:
            got = g(_a(v))
        except RuntimeError as e:
            assert "traced path took" in str(e)
            refused += 1
            continue
        _eq(got, want)
    assert refused > 0, "the random inputs never took another path: nothing was tested"
    assert jf.cache_info().traces >= 2
