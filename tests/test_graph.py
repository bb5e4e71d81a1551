"""gt.trace / gt.Graph: replay across backends, the replay plan, JSON save/load, pictures, the main job."""
import base64
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import gradtape as gt
from gradtape import graph as gt_graph
from gradtape import sym

from conftest import to_np

RNG = np.random.default_rng(7)
X = RNG.normal(size=(4, 3))
V = RNG.normal(size=3)
A = RNG.normal(size=(3, 3))
SPD = A @ A.T + 3 * np.eye(3)


def _close(a, b, tol=1e-12):
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    a, b = to_np(a), to_np(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)


# (name, function of tensors, example arguments as NumPy arrays); functions take everything as arguments, so
# the same function runs eagerly on any device
CASES = [
    ("elementwise", lambda x: gt.exp(gt.sin(x)) * 2.0 - gt.tanh(x) / 3.0, [X]),
    ("grad chain", gt.grad(lambda x: gt.sum(gt.tanh(gt.sin(x) * 1.01 + 0.5))), [X]),
    ("value_and_grad matmul", gt.value_and_grad(lambda x, v: gt.sum((x @ v) ** 2), argnums=(0, 1)), [X, V]),
    ("broadcast and reduce", gt.grad(lambda x, v: gt.sum(gt.mean(x * v, axis=0) + gt.max(x, axis=1)[0])), [X, V]),
    ("indexing", gt.grad(lambda x: gt.sum(x[1:, ::2] ** 2) + x[0, 1]), [X]),
    ("where and comparisons", gt.grad(lambda x: gt.sum(gt.where(x > 0, x, 0.1 * x))), [X]),
    ("non-differentiable fns", lambda x: gt.astype(gt.argmax(x, axis=1), gt.float64) + gt.floor(x[:, 0])
     + gt.astype(x[:, 1] > 0, "float64"), [X]),
    ("softmax cross-entropy", gt.grad(lambda x: gt.nn.cross_entropy(x, gt.argmax(x, axis=1))), [X]),
    ("var, std, logsumexp", gt.grad(lambda x: gt.var(x) + gt.sum(gt.std(x, axis=0))
                                     + gt.sum(gt.nn.logsumexp(x, axis=1))), [X]),
    ("sort, stack, concat", gt.grad(lambda x: gt.sum(gt.sort(x, axis=1)[:, -1])
                                     + gt.sum(gt.concat([x, 2 * x]) ** 2)), [X]),
    ("linalg inv", gt.grad(lambda s: gt.sum(gt.linalg.inv(s))), [SPD]),
    ("hessian", gt.hessian(lambda v: gt.sum(gt.sin(v) * v)), [V]),
    ("jvp", lambda v, t: gt.jvp(lambda u: gt.sin(u) ** 2, (v,), (t,))[1], [V, np.ones(3)]),
    ("second order", gt.grad(lambda v: gt.sum(gt.grad(lambda u: gt.sum(u ** 3))(v))), [V]),
]


@pytest.mark.parametrize("name,f,args", CASES, ids=[c[0] for c in CASES])
def test_trace_replays_like_eager(device, name, f, args):
    xs = [gt.asarray(a) for a in args]
    g = gt.trace(f, *xs)
    assert _close(g(*xs), f(*xs))
    ys = [gt.asarray(a + 0.25) for a in args]           # other values, same shapes: no re-trace needed
    assert _close(g(*ys), f(*ys))


@pytest.mark.parametrize("name,f,args", CASES, ids=[c[0] for c in CASES])
def test_traced_on_numpy_replays_on_strict(name, f, args):
    g = gt.trace(f, *[gt.asarray(a) for a in args])
    ys = [gt.asarray(a + 0.25, device="strict") for a in args]
    got = g(*ys)

    def leaves(v):
        return [e for x in v for e in leaves(x)] if isinstance(v, (tuple, list)) else [v]
    assert all(t.device == "strict" for t in leaves(got))
    assert _close(got, f(*[gt.asarray(a + 0.25) for a in args]))


def test_traced_on_strict_replays_on_numpy():
    f = gt.grad(lambda x: gt.sum(gt.sin(x) * x))
    g = gt.trace(f, gt.asarray(X, device="strict"))
    got = g(gt.asarray(X))
    assert got.device == "cpu" and _close(got, f(gt.asarray(X)))


def test_replay_accepts_raw_arrays_and_keywords(device):
    g = gt.trace(lambda x, y: x * y + 1.0, gt.asarray(V), gt.asarray(V))
    ref = gt.asarray(V) * gt.asarray(V) + 1.0
    assert _close(g(gt.asarray(V).data, gt.asarray(V).data), ref)
    assert _close(g(y=gt.asarray(V), x=gt.asarray(V)), ref)
    assert g.inputs == ("x", "y") and g.outputs == ("out",)


def test_outputs_keep_their_structure():
    g = gt.trace(lambda x: {"a": x + 1.0, "b": (2 * x, [x * x]), "n": 3}, gt.asarray(V))
    out = g(gt.asarray(V))
    assert set(out) == {"a", "b", "n"} and out["n"] == 3
    assert _close(out["b"][1][0], gt.asarray(V) ** 2)
    assert g.outputs == ("out0", "out1", "out2")


def test_trace_holds_forward_and_reverse():
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) ** 2)), gt.asarray(V))
    ops = [(n.op, n.rev) for n in g.nodes if n.kind == "prim"]
    assert ("sin", False) in ops and ("cos", True) in ops
    assert any(not rev for _, rev in ops) and any(rev for _, rev in ops)


def test_backward_inside_a_traced_function_is_traced():
    def f(x):
        gt.sum(x * x * x).backward()
        return x.grad
    x = gt.asarray(V).requires_grad_()
    g = gt.trace(f, x)
    assert x.grad is None                     # the example's .grad is left alone
    assert _close(g(gt.asarray(V + 1.0)), 3 * gt.asarray(V + 1.0) ** 2)


def test_closure_constants_are_snapshots():
    c = gt.asarray([1.0, 2.0, 3.0])
    g = gt.trace(lambda x: x * c, gt.ones(3))
    c.data[...] = 0.0                          # a later in-place change of the captured array
    assert _close(g(gt.ones(3)), gt.asarray([1.0, 2.0, 3.0]))


def test_data_dependent_control_flow_is_guarded():
    def f(x):
        return x * 2.0 if gt.sum(x) > 0 else x * -1.0
    g = gt.trace(f, gt.ones(2))
    assert _close(g(gt.asarray([3.0, 1.0])), gt.asarray([6.0, 2.0]))     # the traced branch holds
    with pytest.raises(RuntimeError, match=r"traced path took `if`/`bool\(\)` at test_graph.py:\d+ with value "
                                           r"True; this input gives False"):
        g(-gt.ones(2))                          # never the traced branch's value for another path


def test_mask_and_index_keys_are_guarded():
    g = gt.trace(lambda x: gt.sum(x[x > 0]), gt.asarray([1.0, -1.0]))
    assert _close(g(gt.asarray([2.0, -3.0])), gt.asarray(2.0))
    with pytest.raises(RuntimeError):
        g(gt.asarray([-1.0, 1.0]))
    i = gt.asarray(1)
    g = gt.trace(lambda x, i: x[i] * 2.0, gt.asarray([1.0, 5.0, 7.0]), i)
    assert _close(g(gt.asarray([0.0, 4.0, 0.0]), gt.asarray(1)), gt.asarray(8.0))
    with pytest.raises(RuntimeError):
        g(gt.asarray([0.0, 4.0, 0.0]), gt.asarray(2))


def test_replay_checks_shapes_dtypes_and_arguments():
    g = gt.trace(lambda x, n: x * n, gt.ones((2, 3)), 3)
    assert _close(g(gt.ones((2, 3)), 3), 3 * gt.ones((2, 3)))
    with pytest.raises(ValueError, match=r"input 'x' has shape \(3, 2\).*traced with shape \(2, 3\).*trace again"):
        g(gt.ones((3, 2)), 3)
    with pytest.raises(TypeError, match="input 'x' has dtype float32.*traced with float64"):
        g(gt.ones((2, 3), dtype=gt.float32), 3)
    with pytest.raises(ValueError, match="was 3 when traced"):
        g(gt.ones((2, 3)), 4)
    with pytest.raises(TypeError, match="missing input"):
        g()
    with pytest.raises(TypeError, match="unknown argument 'z'"):
        g(gt.ones((2, 3)), 3, z=1)
    h = gt.trace(lambda x, y: x + y, gt.ones(2), gt.ones(2))
    with pytest.raises(TypeError, match="different backends or devices"):
        h(gt.ones(2), gt.ones(2, device="strict"))


def test_replay_does_not_dispatch(monkeypatch):
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) * x)), gt.asarray(V))
    calls = []
    from gradtape._state import state
    monkeypatch.setattr(state, "tracer", lambda *a: calls.append(a))   # every dispatched op would call this
    out = g(gt.asarray(V))
    assert calls == [] and isinstance(out, gt.Tensor) and not out.requires_grad


def test_replay_frees_values_after_last_use():
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.tanh(gt.sin(x) * 1.5))), gt.asarray(V))
    src = g.plan_source("cpu")
    lines = [ln.strip() for ln in src.splitlines()[1:]]
    outs = set(re.findall(r"v\d+", lines[-1]))
    assigned = [m.group(1) for ln in lines if (m := re.match(r"(v\d+) = ", ln))]
    params = re.findall(r"v\d+", src.splitlines()[0])
    for v in assigned + params:
        if v in outs:
            continue
        uses = [i for i, ln in enumerate(lines) if re.search(rf"\b{v}\b", ln.split(" = ", 1)[-1])
                and not ln.startswith("del ")]
        dels = [i for i, ln in enumerate(lines) if ln.startswith("del ") and re.search(rf"\b{v}\b", ln)]
        assert len(dels) == 1, (v, src)
        assert not uses or dels[0] == max(uses) + 1, (v, src)
    assert "Tensor" not in src and "apply" not in src


def test_replay_is_a_straight_line_of_backend_calls():
    g = gt.trace(lambda x: gt.tanh(gt.sin(x)) * 1.01 + 2.0, gt.ones(4))
    assert g.plan_source("cpu").splitlines()[1:] == [
        "    v1 = sin(v0)", "    del v0", "    v2 = tanh(v1)", "    del v1", "    v3 = v2 * 1.01", "    del v2",
        "    v4 = v3 + 2.0", "    del v3", "    return (v4,)"]


# ---- save / load -----------------------------------------------------------------------------------------

def _roundtrip_cases():
    c32 = gt.asarray(RNG.normal(size=3), dtype=gt.float32)
    ci = gt.asarray([2, 0, 1])
    return [
        ("float64 grad", gt.grad(lambda x: gt.sum(gt.sin(x) * gt.asarray(V) ** 3)), [gt.asarray(V)]),
        ("float32 constant", lambda x: x * c32 + 0.1, [gt.asarray(V, dtype=gt.float32)]),
        ("integer index constant", gt.grad(lambda x: gt.sum(gt.take(x, ci, axis=0) ** 2)), [gt.asarray(X)]),
        ("inf and keys", lambda x: gt.clip(x, -math.inf, 1.0)[..., 1:] + x[None, 0, :2], [gt.asarray(X)]),
        ("bool constant", lambda x: gt.where(gt.asarray([True, False, True]), x, -x), [gt.asarray(V)]),
        ("multi-output linalg", gt.grad(lambda s: gt.sum(gt.linalg.eigh(s).eigenvalues ** 2)), [gt.asarray(SPD)]),
        ("tuple output", lambda x: (gt.argmax(x, axis=0), gt.sum(x, axis=1, dtype=gt.float32)), [gt.asarray(X)]),
    ]


@pytest.mark.parametrize("name,f,args", _roundtrip_cases(), ids=[c[0] for c in _roundtrip_cases()])
def test_save_load_roundtrip_is_exact(tmp_path, name, f, args):
    g = gt.trace(f, *args)
    p = tmp_path / "g.json"
    g.save(p)
    h = gt.Graph.load(p)
    assert h.inputs == g.inputs and h.outputs == g.outputs and len(h) == len(g)
    assert [(n.kind, n.op, n.shape, n.dtype, n.rev) for n in h.nodes] == \
        [(n.kind, n.op, n.shape, n.dtype, n.rev) for n in g.nodes]
    a, b = g(*args), h(*args)
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert x.dtype == y.dtype and np.array_equal(to_np(x), to_np(y))      # identical, not just close
    strict = [gt.asarray(to_np(x), device="strict") for x in args]
    assert _close(h(*strict), a)
    assert h.to_json() == g.to_json()                                        # stable text


def test_saved_file_is_json_without_pickle(tmp_path):
    g = gt.trace(lambda x: x * gt.asarray([1.5, 2.5]), gt.ones(2))
    g.save(tmp_path / "g.json")
    d = json.loads((tmp_path / "g.json").read_text())
    assert d["format"] == "gradtape.graph" and d["version"] == gt_graph.FORMAT_VERSION
    const = next(n for n in d["nodes"] if n["kind"] == "const")
    assert const["value"]["dtype"] == "float64" and const["value"]["shape"] == [2]
    assert np.frombuffer(base64.b64decode(const["value"]["data"]), "<f8").tolist() == [1.5, 2.5]


def _doc():
    return json.loads(gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) * gt.asarray([1.0, 2.0]))), gt.ones(2)).to_json())


def _corrupt(fn):
    d = _doc()
    fn(d)
    return json.dumps(d)


def _const(d):
    return next(n for n in d["nodes"] if n["kind"] == "const")


def _prim(d):
    return next(n for n in d["nodes"] if n["kind"] == "prim")


CORRUPT = [
    ("not JSON", "{ this is not json", "not a JSON document"),
    ("truncated", json.dumps(_doc())[:-40], "not a JSON document"),
    ("a JSON array", "[1, 2, 3]", "not a gradtape graph"),
    ("other format", _corrupt(lambda d: d.update(format="onnx")), "not a gradtape graph"),
    ("newer version", _corrupt(lambda d: d.update(version=gt_graph.FORMAT_VERSION + 1)),
     "format version 2.*newer.*upgrade gradtape"),
    ("bad version", _corrupt(lambda d: d.update(version="one")), "version"),
    ("no nodes", _corrupt(lambda d: d.pop("nodes")), "malformed graph"),
    ("unknown primitive", _corrupt(lambda d: _prim(d).update(op="frobnicate")), "unknown primitive 'frobnicate'"),
    ("unknown function", _corrupt(lambda d: d["nodes"].insert(1, {"kind": "fn", "op": "save", "shape": [],
                                                                  "dtype": "float64"})),
     "unknown function 'save'"),
    ("unknown kind", _corrupt(lambda d: _prim(d).update(kind="lambda")), "unknown kind 'lambda'"),
    ("forward reference", _corrupt(lambda d: _prim(d).update({"in": [{"$": "ref", "i": 99}]})),
     "reads node 99"),
    ("bad base64", _corrupt(lambda d: _const(d)["value"].update(data="@@not base64@@")), "base64"),
    ("wrong byte count", _corrupt(lambda d: _const(d)["value"].update(
        data=base64.b64encode(b"\0" * 7).decode())), "7 bytes"),
    ("unknown dtype", _corrupt(lambda d: _const(d)["value"].update(dtype="float128")), "unknown dtype"),
    ("bad shape", _corrupt(lambda d: _const(d)["value"].update(shape=[-2])), "bad shape"),
    ("unknown tag", _corrupt(lambda d: _prim(d).update({"in": [{"$": "pickle", "v": "x"}]})),
     "unknown value tag 'pickle'"),
    ("input without dtype", _corrupt(lambda d: d["nodes"][0].update(dtype=None)), "needs a shape and a known dtype"),
    ("output out of range", _corrupt(lambda d: d.update(outputs={"$": "ref", "i": 1000})), "output reads node 1000"),
    ("inputs not a list", _corrupt(lambda d: d.update(inputs="x")), "inputs"),
]


@pytest.mark.parametrize("name,text,msg", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupted_files_are_value_errors(tmp_path, name, text, msg):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=msg):
        gt.Graph.load(p)


def test_binary_garbage_is_a_value_error(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not UTF-8"):
        gt.Graph.load(p)


def test_unsavable_graphs_say_why():
    @gt.custom_vjp
    def f(x):
        return gt.sin(x)
    f.defvjp(lambda x: (gt.sin(x), x), lambda x, ct: (ct * gt.cos(x),))
    g = gt.trace(lambda x: f(x) * 2.0, gt.ones(2).requires_grad_())     # goes through the custom primitive
    assert any(n.op.startswith("custom:") for n in g.nodes)
    assert _close(g(gt.zeros(2)), gt.zeros(2))            # replays in this process
    with pytest.raises(ValueError, match="not in the registry"):
        g.to_json()


# ---- pictures ----------------------------------------------------------------------------------------------

def _parse_dot(text):
    nodes = dict(re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', text, re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);", text, re.M)
    return nodes, edges


def _named_edges(text):
    nodes, edges = _parse_dot(text)
    first = {k: v.split("\\n")[0] for k, v in nodes.items()}
    return sorted(first.values()), sorted((first[a], first[b]) for a, b in edges)


def test_to_dot_of_the_seed_graph_symbolic():
    a = sym.var("a")
    b = sym.var("b")
    c = 2 * a + b
    labels, edges = _named_edges(c.to_dot())
    assert labels == ["a", "add", "b", "multiply", "out"]
    assert edges == [("a", "multiply"), ("add", "out"), ("b", "add"), ("multiply", "add")]
    nodes, _ = _parse_dot(c.to_dot())
    assert "multiply\\n(2, •)" in nodes.values()


def test_to_dot_of_the_seed_graph_traced():
    g = gt.trace(lambda a, b: 2 * a + b, gt.ones((2, 1)), gt.ones((2, 1)))
    text = g.to_dot()
    nodes, edges = _parse_dot(text)
    assert nodes == {"n0": "a\\n(2, 1) float64", "n1": "b\\n(2, 1) float64",
                     "n2": "multiply\\n(2, •)\\n(2, 1) float64", "n3": "add\\n(2, 1) float64",
                     "o0": "out\\n(2, 1) float64"}
    assert sorted(edges) == [("n0", "n2"), ("n1", "n3"), ("n2", "n3"), ("n3", "o0")]


def test_to_dot_styles_the_reverse_pass_apart():
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x))), gt.ones(2))
    text = g.to_dot()
    rev = [ln for ln in text.splitlines() if "cos" in ln]
    fwd = [ln for ln in text.splitlines() if 'label="x' in ln]
    assert rev and gt_graph._STYLES["rev"] in rev[0] and gt_graph._STYLES["rev"] not in fwd[0]


needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's `dot` is not installed (Debian package graphviz; .ci/run installs it)")


@needs_dot
@pytest.mark.parametrize("suffix,magic", [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_render(tmp_path, suffix, magic):
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) ** 2)), gt.ones(2))
    p = tmp_path / ("g" + suffix)
    g.render(p)
    assert p.read_bytes().startswith(magic)
    q = tmp_path / ("c" + suffix)
    (2 * sym.var("a") + sym.var("b")).render(q)
    assert q.read_bytes().startswith(magic)


@needs_dot
def test_repr_svg():
    assert "<svg" in gt.trace(lambda x: x * 2.0, gt.ones(2))._repr_svg_()
    assert "<svg" in (sym.var("a") + 1.0)._repr_svg_()


def test_render_without_dot_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(gt_graph.shutil, "which", lambda name: None)
    for mod in ("grandalf", "grandalf.graphs", "grandalf.layouts"):    # nor the pip drawing path (issue 14)
        monkeypatch.setitem(sys.modules, mod, None)
    g = gt.trace(lambda x: x * 2.0, gt.ones(2))
    with pytest.raises(RuntimeError, match="package `graphviz`"):
        g.render(tmp_path / "g.svg")
    assert g._repr_svg_() is None
    g.render(tmp_path / "g.dot")                 # DOT text needs no Graphviz
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


# ---- documentation and the main job ----------------------------------------------------------------------

def test_public_api_has_runnable_examples():
    missing = []
    for owner in (gt_graph, sym, gt_graph.Graph, gt_graph.IRNode, sym.Symbol):
        for name, obj in vars(owner).items():
            if name.startswith("_") and name not in ("__call__", "_repr_svg_"):
                continue
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
            if isinstance(obj, property):
                obj = obj.fget
            mod = getattr(obj, "__module__", None) or ""
            ours = mod in (gt_graph.__name__, sym.__name__) or mod.startswith("gradtape.graph.")
            if not callable(obj) or not ours:
                continue
            if ">>>" not in (inspect.getdoc(obj) or ""):
                missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
    assert not missing, missing
    assert gt.trace is gt_graph.trace and gt.Graph is gt_graph.Graph


def _main(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(gt.__file__))]
                                                      + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    return subprocess.run([sys.executable, "-m", "gradtape", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_main_job_writes_the_pictures_and_the_plot(tmp_path):
    out = tmp_path / "out"
    r = _main("--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "all lecture checks passed" in r.stdout and "FAILED" not in r.stdout
    assert "forward" in r.stdout and "reverse" in r.stdout
    assert (out / "lecture_graph.dot").exists() and (out / "lecture_graph.json").exists()
    if shutil.which("dot"):
        svg = (out / "lecture_graph.svg").read_text()
        assert "<svg" in svg and "vecdot" in svg
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("matplotlib is not installed (pip install -e '.[main]'): no PNG to check")
    assert (out / "forward_vs_reverse.png").read_bytes().startswith(b"\x89PNG")


def test_main_job_info_and_help(tmp_path):
    r = _main("info", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "numpy" in r.stdout and "array_api_strict" in r.stdout and "cupy" in r.stdout
    assert "graphviz" in r.stdout
    r = _main("--help", cwd=tmp_path)
    assert r.returncode == 0 and "--out" in r.stdout and "--device" in r.stdout and "info" in r.stdout
