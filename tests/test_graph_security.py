"""A graph file is data, never code: injection through every string field, load-time validation, deep nesting,
and tracing from several threads at once (one tracer per thread)."""
import ast
import json
import os
import pathlib
import threading
import tracemalloc

import numpy as np
import pytest

import gradtape as gt
from gradtape import graph as gt_graph
from gradtape._state import state as _state
from gradtape.graph import schema
from gradtape.graph.ir import _registry

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _opener(path):
    """Python source that creates ``path`` when evaluated, even with ``__builtins__ = {}`` (os.open reached
    through object's subclasses, as the issue's exploit did with os.system)."""
    return ("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
            f".__init__.__globals__['open']({str(path)!r}, 64 | 1)")        # O_CREAT | O_WRONLY


@pytest.fixture
def marker(tmp_path):
    """A marker path and the payload that would create it; the payload is proven live first."""
    probe = tmp_path / "probe"
    fd = eval(_opener(probe), {"__builtins__": {}})      # noqa: S307  (the test's own payload, to show it works)
    os.close(fd)
    assert probe.exists()
    path = tmp_path / "MARKER"
    yield path, _opener(path)
    assert not path.exists(), "a payload from a graph file ran"


def _reshape_doc():
    return json.loads(gt.trace(lambda x: gt.reshape(x, (3,)) * 2.0, gt.ones((3, 1))).to_json())


def _load(d):
    return gt.Graph.from_json(json.dumps(d))


def _call(g):
    return g(gt.ones((3, 1)))


# ---- injection through every string field --------------------------------------------------------------

def test_the_issues_exploit_is_refused_at_load(marker):
    path, payload = marker
    d = _reshape_doc()
    attrs = d["nodes"][1]["attrs"]
    attrs[f"xshape=(3,))*0 + ({payload})*0 + (lambda **k: 0)(k"] = attrs.pop("xshape")
    with pytest.raises(ValueError, match=r"node 1 \(reshape\): unknown attribute"):
        _load(d)


def test_the_exploit_in_an_in_process_graph_is_never_run(marker):
    """Even a Graph built by hand (no load-time checks) passes names as keywords, never as source."""
    path, payload = marker
    g = gt.trace(lambda x: gt.reshape(x, (3,)) * 2.0, gt.ones((3, 1)))
    n = g.nodes[1]
    n.attrs = {"shape": (3,), f"xshape=(3,))*0 + ({payload})*0 + (lambda **k: 0)(k": (3, 1)}
    g._plans.clear()
    with pytest.raises(TypeError):
        _call(g)
    assert payload in g.plan_source("cpu")          # shown as text, never run


def _set(path_, value):
    def f(d):
        obj = d
        for k in path_[:-1]:
            obj = obj[k]
        obj[path_[-1]] = value
    return f


def _fields(payload):
    """(what, mutation of the reshape graph's document) for every string field of the format."""
    return [
        ("primitive name", _set(["nodes", 1, "op"], payload)),
        ("function name", _set(["nodes", 1], {"kind": "fn", "op": payload, "in": [{"$": "ref", "i": 0}],
                                              "shape": [3], "dtype": "float64"})),
        ("node kind", _set(["nodes", 1, "kind"], payload)),
        ("attribute name", lambda d: d["nodes"][1]["attrs"].update({payload: 1})),
        ("attribute value", _set(["nodes", 1, "attrs", "shape"], payload)),
        ("attribute value in a tuple", _set(["nodes", 1, "attrs", "shape"], {"$": "tuple", "v": [payload]})),
        ("input name", _set(["nodes", 0, "op"], payload)),
        ("const op", lambda d: d["nodes"].insert(0, {"kind": "const", "op": payload, "shape": [],
                                                     "dtype": "float64", "value": {"dtype": "float64", "shape": [],
                                                                                   "data": "AAAAAAAA8D8="}})),
        ("node dtype", _set(["nodes", 0, "dtype"], payload)),
        ("result dtype", _set(["nodes", 2, "dtype"], payload)),
        ("dtype value", _set(["nodes", 1, "attrs", "shape"], {"$": "dtype", "v": payload})),
        ("constant dtype", lambda d: d["nodes"].insert(0, {"kind": "const", "op": "const", "shape": [],
                                                           "value": {"dtype": payload, "shape": [],
                                                                     "data": "AAAAAAAA8D8="}})),
        ("constant data", lambda d: d["nodes"].insert(0, {"kind": "const", "op": "const", "shape": [],
                                                          "value": {"dtype": "float64", "shape": [],
                                                                    "data": payload}})),
        ("node device", _set(["nodes", 1, "device"], payload)),
        ("home device", _set(["home"], payload)),
        ("device value", _set(["nodes", 1, "attrs", "shape"], {"$": "device", "v": payload})),
        ("value tag", _set(["nodes", 2, "in", 1], {"$": payload, "v": 1})),
        ("special float", _set(["nodes", 2, "in", 1], {"$": "float", "v": payload})),
        ("keyword argument name", _set(["kwargs"], {payload: {"$": "ref", "i": 0}})),
        ("field name", lambda d: d.update({payload: 1})),
        ("node field name", lambda d: d["nodes"][1].update({payload: 1})),
        ("multi dtype", lambda d: d["nodes"][1].update({"multi": [[[3], payload]]})),
        ("format", _set(["format"], payload)),
        ("version", _set(["version"], payload)),
    ]


@pytest.mark.parametrize("what", [w for w, _ in _fields("")])
def test_injection_through_every_string_field_is_a_value_error(marker, what):
    path, payload = marker
    for p in (payload, f"x)*0 + ({payload})*0 + (0", f"'; {payload}; '", f"\"]}}; {payload}"):
        d = _reshape_doc()
        dict(_fields(p))[what](d)
        with pytest.raises(ValueError, match="gradtape.Graph.load"):
            g = _load(d)
            _call(g)            # (not reached: load refuses)


@pytest.mark.parametrize("where", ["name", "gradtape", "static argument", "output key"])
def test_strings_that_are_data_load_as_data_and_replay(marker, where):
    """Free-text fields (graph name, version, static arguments, output keys) hold the payload as a plain string."""
    path, payload = marker
    f = lambda x, s: {payload: x * 2.0, "s": s}                     # noqa: E731
    g = gt.trace(f, gt.ones(2), payload)
    d = json.loads(g.to_json())
    if where == "name":
        d["name"] = payload
    elif where == "gradtape":
        d["gradtape"] = payload
    h = _load(d)
    out = h(gt.ones(2), payload)
    assert set(out) == {payload, "s"} and out["s"] == payload
    assert np.array_equal(gt.to_numpy(out[payload]), [2.0, 2.0])
    assert (h.name == payload) == (where == "name")
    assert "digraph" in h.to_dot() and str(h)
    with pytest.raises(ValueError, match="fixed in the graph"):
        h(gt.ones(2), "other")


def test_replay_source_has_no_exec_eval_or_compile():
    """No module of the graph IR calls exec/eval/compile (or __import__): replay is an interpreter loop."""
    mods = ["graph/__init__.py", "graph/plan.py", "graph/io.py", "graph/ir.py", "graph/trace.py", "graph/dot.py",
            "graph/schema.py", "graph/symbolic.py", "sym.py", "_tree.py"]
    for m in mods:
        tree = ast.parse((ROOT / "gradtape" / m).read_text())
        bad = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
               and n.func.id in ("exec", "eval", "compile", "__import__")]
        assert not bad, (m, bad)


# ---- load-time validation: every name against the registry and what the primitive declares ----------------

def _grad_doc():
    f = gt.grad(lambda x: gt.sum(gt.mean(x * 2.0, axis=0, keepdims=True) + gt.max(x, axis=1)[0]))
    return json.loads(gt.trace(f, gt.ones((2, 3))).to_json())


def _node(d, op):
    return next(n for n in d["nodes"] if n.get("op") == op)


BAD = [
    ("unknown op", lambda d: _node(d, "multiply").update(op="multiply_"), "unknown primitive 'multiply_'"),
    ("fn named like a primitive", lambda d: _node(d, "multiply").update(kind="fn"), "unknown function 'multiply'"),
    ("unknown attribute", lambda d: _node(d, "max")["attrs"].update(axes={"$": "tuple", "v": [0]}),
     r"node \d+ \(max\): unknown attribute 'axes'"),
    ("missing attribute", lambda d: _node(d, "max")["attrs"].pop("keepdims"), "missing attribute.*'keepdims'"),
    ("axis of the wrong kind", lambda d: _node(d, "max")["attrs"].update(axis="0"),
     r"\(max\): attribute 'axis' must be None, an int or a tuple of ints, got '0'"),
    ("keepdims of the wrong kind", lambda d: _node(d, "max")["attrs"].update(keepdims=1),
     "attribute 'keepdims' must be a bool"),
    ("dtype as a bare string", lambda d: _node(d, "sum")["attrs"].update(dtype="float64"),
     "attribute 'dtype' must be None or a dtype"),
    ("too many inputs", lambda d: _node(d, "multiply")["in"].append(1.0), r"\(multiply\): takes 2 input"),
    ("input of the wrong kind", lambda d: _node(d, "multiply")["in"].__setitem__(1, "2.0"),
     "input 1 must be a node reference or a number"),
    ("unknown dtype", lambda d: d["nodes"][0].update(dtype="float128"), "unknown dtype 'float128'"),
    ("dtype that is a numpy attribute", lambda d: d["nodes"][0].update(dtype="load"), "unknown dtype 'load'"),
    ("unknown device", lambda d: _node(d, "multiply").update(device="tpu"), "unknown device 'tpu'"),
    ("device not in canonical form", lambda d: _node(d, "multiply").update(device="CUDA"), "unknown device"),
    ("bad home", lambda d: d.update(home="cuda:x"), "unknown device"),
    ("input name not an identifier", lambda d: d["nodes"][0].update(op="x y"), "bad input name 'x y'"),
    ("duplicate input names", lambda d: (d["nodes"].insert(1, dict(d["nodes"][0])), d.update(inputs=[0, 1])),
     "same name"),
    ("bad keyword name", lambda d: d.update(kwargs={"1x": {"$": "ref", "i": 0}}), "bad argument name"),
    ("reference to a later node", lambda d: _node(d, "multiply")["in"].__setitem__(0, {"$": "ref", "i": 10 ** 6}),
     "reads node 1000000"),
    ("negative reference", lambda d: _node(d, "multiply")["in"].__setitem__(0, {"$": "ref", "i": -1}),
     "reads node -1"),
    ("reference with extra fields", lambda d: _node(d, "multiply")["in"].__setitem__(0, {"$": "ref", "i": 0, "j": 1}),
     "has the fields"),
    ("output to a node with several results", None, "holds several results"),
    ("item out of range", None, "does not pick one"),
    ("unknown top-level field", lambda d: d.update(code="print(1)"), "unknown field 'code'"),
    ("unknown node field", lambda d: d["nodes"][0].update(source="x"), "unknown field 'source'"),
    ("rev not a bool", lambda d: _node(d, "multiply").update(rev="yes"), "rev"),
    ("huge concat arity", lambda d: _node(d, "multiply").update(op="concat" + "9" * 30), r"has 2 inputs"),
    ("concat with a leading zero", lambda d: _node(d, "multiply").update(op="concat02"), "unknown primitive"),
    ("NaN literal", "NaN", "not JSON"),
]


def _multi_doc(fix):
    d = json.loads(gt.trace(lambda s: gt.linalg.eigh(s).eigenvalues * 1.0, gt.eye(2) * 2.0).to_json())
    m = next(i for i, n in enumerate(d["nodes"]) if "multi" in n)
    pick = next(n for n in d["nodes"] if n.get("op") in ("select", "item"))
    if fix == "output":
        d["outputs"] = {"$": "ref", "i": m}
    else:
        pick["attrs"]["k"] = 7
    return d


@pytest.mark.parametrize("name,mutate,msg", BAD, ids=[b[0] for b in BAD])
def test_load_validates_every_field(name, mutate, msg):
    if name == "output to a node with several results":
        text = json.dumps(_multi_doc("output"))
    elif name == "item out of range":
        text = json.dumps(_multi_doc("item"))
    elif isinstance(mutate, str):
        text = json.dumps(_grad_doc()).replace('"version": 1', f'"version": 1, "x": {mutate}')
    else:
        d = _grad_doc()
        mutate(d)
        text = json.dumps(d)
    with pytest.raises(ValueError, match=msg):
        gt.Graph.from_json(text)


def test_numpy_scalars_in_a_graph_save_and_load():
    """NumPy scalars (saved as "npscalar") are numbers wherever a number may stand."""
    f = lambda x: gt.astype(gt.greater(x, np.float64(0.25)), "float64") + gt.clip(x, np.float64(0.1), 0.9)  # noqa
    x = gt.asarray([0.0, 0.5, 1.0])
    g = gt.trace(f, x)
    h = gt.Graph.from_json(g.to_json())
    assert np.array_equal(gt.to_numpy(h(x)), gt.to_numpy(f(x)))


def test_every_primitive_parameter_has_a_declared_kind():
    """A new primitive whose parameter has a new name must say what kind of value it takes (PARAM_KINDS)."""
    missing = {k: p for p, prim in _registry().items() for k in schema.prim_params(prim)[2]
               if k not in schema.PARAM_KINDS}
    assert not missing, f"declare these in gradtape.graph.schema.PARAM_KINDS: {missing}"
    fns = set(gt_graph._graph_io._FNS)
    assert fns == set(schema.FN_SIGS), fns ^ set(schema.FN_SIGS)


def test_saving_refuses_what_loading_would_refuse():
    g = gt.trace(lambda x: gt.reshape(x, (3,)) * 2.0, gt.ones((3, 1)))
    g.nodes[1].attrs = dict(g.nodes[1].attrs, bogus=1)
    with pytest.raises(ValueError, match="gradtape.Graph.save: node 1 \\(reshape\\): unknown attribute 'bogus'"):
        g.to_json()


@pytest.mark.parametrize("text", ["[" * 100000, '{"a":' * 100000, "[" * 65 + "]" * 65,
                                  '{"format": "gradtape.graph", "x": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_deeply_nested_json_is_a_value_error(text):
    with pytest.raises(ValueError, match="nested deeper"):
        gt.Graph.from_json(text)


def test_nesting_inside_strings_does_not_count():
    d = _reshape_doc()
    d["name"] = "[" * 1000 + '\\"{' * 100
    assert gt.Graph.from_json(json.dumps(d)).name == d["name"]


def test_valid_graphs_still_load_and_replay_equal():
    x = gt.asarray(np.linspace(-1, 1, 6).reshape(2, 3))
    f = gt.grad(lambda x: gt.sum(gt.mean(x * 2.0, axis=0, keepdims=True) + gt.max(x, axis=1)[0]))
    g = gt.trace(f, x)
    h = gt.Graph.from_json(g.to_json())
    assert np.array_equal(gt.to_numpy(h(x)), gt.to_numpy(f(x)))


# ---- replay: a plan of steps, values dropped after their last use ----------------------------------------

def test_replay_drops_intermediates_after_last_use():
    """A 30-op chain on 8 MB arrays replays within a few arrays' memory (values are not kept to the end)."""
    def f(x):
        for _ in range(10):
            x = gt.tanh(gt.sin(x) * 1.01)
        return x
    x = gt.asarray(np.linspace(0, 1, 1_000_000))
    g = gt.trace(f, x)
    g(x)
    tracemalloc.start()
    try:
        out = g(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 8_000_000, peak
    assert np.allclose(gt.to_numpy(out), gt.to_numpy(f(x)))


def test_slot_reuse_keeps_every_live_value():
    """A DAG with reuse after other values die, an unused input, a result nothing reads, a constant and an input
    returned directly, and one node returned twice: replay equals eager."""
    c = gt.asarray([0.5, -1.0, 2.0])

    def f(x, unused, y):
        a = gt.sin(x)
        b = a * y
        gt.exp(b)                   # read by nothing
        d = gt.tanh(b) + a          # a read again after b's temporaries died
        e = gt.where(d > 0, d, y) * c
        return {"e": e, "again": (e, x, c), "z": gt.sum(e, axis=0, keepdims=True) - b[0]}
    args = [gt.asarray([0.1, 0.7, -0.3]), gt.ones(2), gt.asarray([1.5, -2.0, 0.25])]
    g = gt.trace(f, *args)
    for h in (g, gt.Graph.from_json(g.to_json())):
        got, want = h(*args), f(*args)
        assert set(got) == set(want)
        for k in want:
            ws = want[k] if isinstance(want[k], tuple) else (want[k],)
            gs = got[k] if isinstance(got[k], tuple) else (got[k],)
            assert all(np.array_equal(gt.to_numpy(a), gt.to_numpy(b)) for a, b in zip(gs, ws)), k
    listing = g.plan_source("cpu")
    assert "del v1" in listing and listing.splitlines()[-1].startswith("    return (")


def test_a_failing_step_names_its_node():
    g = gt.trace(lambda x: x[1:] * 2.0, gt.ones(3))
    g.nodes[1].attrs = dict(g.nodes[1].attrs, key=(7,))
    with pytest.raises(ValueError, match=r"node 1 \(getitem\) failed on replay: IndexError"):
        g(gt.ones(3))


# ---- two threads tracing at once -------------------------------------------------------------------------

def test_two_threads_tracing_at_once_each_get_their_own_graph():
    bar = threading.Barrier(2, timeout=20)
    out, errors = {}, []

    def fa(x):
        bar.wait()          # 1: both traces are running
        y = gt.sin(x) * 2.0
        bar.wait()          # 2: both computed something
        return y            # a finishes first

    def fb(x):
        bar.wait()
        y = gt.cos(x) + 1.0
        bar.wait()
        bar.wait()          # 3: a has finished its trace
        return gt.exp(y)    # still traced after a's trace ended

    def run(key, f):
        try:
            out[key] = gt.trace(f, gt.ones(3))
        except Exception as e:      # (reported below)
            errors.append(e)
        finally:
            if key == "a":
                bar.wait()

    ta = threading.Thread(target=run, args=("a", fa))
    tb = threading.Thread(target=run, args=("b", fb))
    ta.start(), tb.start()
    ta.join(30), tb.join(30)
    assert not errors, errors
    ga, gb = out["a"], out["b"]
    assert [n.op for n in ga.nodes] == ["x", "sin", "multiply"]
    assert [n.op for n in gb.nodes] == ["x", "cos", "add", "exp"]
    x = gt.asarray([0.1, 0.2, 0.3])
    assert np.allclose(gt.to_numpy(gb(x)), np.exp(np.cos([0.1, 0.2, 0.3]) + 1.0))
    assert np.allclose(gt.to_numpy(ga(x)), np.sin([0.1, 0.2, 0.3]) * 2.0)
    assert _state.tracer is None      # nothing stale stays installed


def test_many_threads_tracing_gradients_at_once():
    n = 4
    bar = threading.Barrier(n, timeout=20)
    out, errors = {}, []

    def run(k):
        def f(x):
            bar.wait()
            return gt.sum(gt.sin(x) * float(k + 1))
        try:
            out[k] = gt.trace(gt.grad(f), gt.ones(2))
        except Exception as e:
            errors.append(e)
    ts = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors
    x = gt.asarray([0.3, -0.7])
    for k in range(n):
        assert np.allclose(gt.to_numpy(out[k](x)), np.cos([0.3, -0.7]) * (k + 1))
    assert _state.tracer is None


def test_a_thread_not_tracing_is_not_recorded():
    started, done = threading.Event(), threading.Event()
    seen = {}

    def f(x):
        started.set()
        assert done.wait(20)
        return x * 3.0

    def other():
        assert started.wait(20)
        y = gt.asarray([1.0, 2.0])
        for _ in range(5):
            y = gt.tanh(y)          # another thread computing while the trace runs
        seen["tracer"] = _state.tracer
        done.set()
    t = threading.Thread(target=other)
    t.start()
    g = gt.trace(f, gt.ones(2))
    t.join(30)
    assert [n.op for n in g.nodes] == ["x", "multiply"] and seen["tracer"] is None


def test_nested_trace_on_one_thread_still_records_in_the_outer():
    inner = {}

    def f(x):
        inner["g"] = gt.trace(lambda y: gt.sin(y), x)
        return gt.sin(x) * 2.0
    g = gt.trace(f, gt.ones(2))
    assert [n.op for n in inner["g"].nodes] == ["y", "sin"]
    assert [n.op for n in g.nodes] == ["x", "sin", "multiply"]
    assert _state.tracer is None


def test_a_failing_trace_uninstalls_its_tracer():
    with pytest.raises(ZeroDivisionError):
        gt.trace(lambda x: 1 / 0, gt.ones(2))
    assert _state.tracer is None
