"""gt.trace with pytree arguments and outputs (issue 11): needs /tmp/coord/issue11_trace_graph_init.patch applied
to gradtape/graph/__init__.py. Suggested file: tests/test_trace_pytree.py."""
import collections

import numpy as np
import pytest

import gradtape as gt

P = collections.namedtuple("P", "x y")


def test_trace_replays_pytree_arguments_and_outputs():
    f = lambda p, s, x: P(gt.sum(p["w"] * x) * s, [p["b"][0] + 1.0])  # noqa: E731
    g = gt.trace(f, {"w": gt.ones(3), "b": [gt.zeros(2)]}, 2.0, gt.ones(3))
    assert g.inputs == ("p_b_0", "p_w", "x")
    p2 = {"w": gt.asarray([1.0, 2.0, 3.0]), "b": [gt.ones(2)]}
    out = g(p2, 2.0, gt.ones(3))
    want = f(p2, 2.0, gt.ones(3))
    assert type(out) is P and type(out.y) is list
    assert float(out.x) == float(want.x) == 12.0 and out.y[0].tolist() == want.y[0].tolist()
    with pytest.raises(ValueError, match=r"positional argument 0: the structures differ at the root"):
        g({"w": gt.ones(3)}, 2.0, gt.ones(3))
    with pytest.raises(ValueError, match="positional argument 1 was 2.0 when traced"):
        g(p2, 3.0, gt.ones(3))
    with pytest.raises(ValueError, match="no JSON form; the graph still replays"):
        g.to_json()


def test_trace_of_grad_of_a_module():
    net = gt.nn.Sequential(gt.nn.Linear(3, 4, dtype=gt.float64), gt.nn.ReLU(), gt.nn.Linear(4, 1, dtype=gt.float64))
    x = gt.asarray(np.random.default_rng(0).standard_normal((5, 3)))
    loss = lambda m, x: gt.sum(m(x) ** 2)  # noqa: E731
    g = gt.trace(gt.grad(loss), net, x)
    assert g.inputs == ("m_0_weight", "m_0_bias", "m_2_weight", "m_2_bias", "x")
    got, want = g(net, x), gt.grad(loss)(net, x)
    assert type(got) is gt.nn.Sequential
    for (n, a), (m, b) in zip(got.named_parameters(), want.named_parameters()):
        assert n == m and np.allclose(gt.to_numpy(a), gt.to_numpy(b), rtol=1e-12)


def test_trace_keyword_pytree_and_plain_outputs_unchanged():
    g = gt.trace(lambda x, p=None: {"y": x * p["a"], "n": 3}, gt.ones(2), p={"a": gt.asarray(2.0)})
    out = g(gt.ones(2), p={"a": gt.asarray(5.0)})
    assert type(out) is dict and out["n"] == 3 and out["y"].tolist() == [5.0, 5.0]
    g = gt.trace(lambda x: (x, [2 * x]), gt.ones(2))
    assert g.outputs == ("out0", "out1") and type(g(gt.ones(2))[1]) is list
