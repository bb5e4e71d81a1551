"""Graph JSON fuzzing: mutations of valid saved graphs either fail to load with a ValueError, or load and
replay exactly as an independent reference evaluation of the loaded graph does (and, for mutations that
change no meaning, equal to the original).

CI runs a fixed seed set (a few hundred mutants); ``GRADTAPE_FUZZ=N`` runs N fresh ones (seeded from the
clock; a failure prints its seed and mutations, and ``GRADTAPE_FUZZ_SEED=S`` replays that seed).
"""
import copy
import json
import os
import random
import time

import numpy as np
import pytest

import gradtape as gt
from gradtape import backends as _backends
from gradtape.graph.ir import DeviceName, DTypeName, Ref, _np_value, _Opaque, _registry
from gradtape.graph.io import _FNS
from gradtape._core.dtypes import DTYPES, backend_dtype as _bdt

N = int(os.environ.get("GRADTAPE_FUZZ", "0"))
SEED = int(os.environ.get("GRADTAPE_FUZZ_SEED", str(time.time_ns() % 2 ** 31 if N else 20261201)))
COUNT = N or 500

RNG = np.random.default_rng(3)
X = RNG.normal(size=(3, 4))
SPD = X[:, :3].T @ X[:, :3] + 3 * np.eye(3)
C = gt.asarray(RNG.normal(size=4))


def _cases():
    """(name, function, example inputs): several valid graphs, a traced gradient among them."""
    return [
        ("elementwise", lambda x: gt.exp(gt.sin(x)) * 2.0 - gt.tanh(x) / 3.0 + C, [X]),
        ("grad", gt.grad(lambda x: gt.sum(gt.tanh(gt.sin(x) * 1.01 + 0.5) * C)), [X]),
        ("index and reduce", gt.grad(lambda x: gt.sum(x[1:, ::2] ** 2) + gt.sum(gt.max(x, axis=1))
                                     + gt.mean(x[..., None, 0])), [X]),
        ("fns and outputs", lambda x: {"i": gt.argmax(x, axis=1), "f": gt.astype(x > 0, "float64") + gt.floor(x),
                                       "t": (gt.sum(x, axis=0, keepdims=True), 3)}, [X]),
        ("linalg", gt.grad(lambda s: gt.sum(gt.linalg.eigh(s).eigenvalues ** 2) + gt.linalg.det(s)), [SPD]),
        ("concat and where", gt.grad(lambda x: gt.sum(gt.where(x > 0, x, 0.1 * x))
                                     + gt.sum(gt.concat([x, 2 * x], axis=1) ** 2)), [X]),
    ]


CASES = _cases()
DOCS = {name: json.loads(gt.trace(f, *[gt.asarray(a) for a in args]).to_json()) for name, f, args in CASES}
ARGS = {name: [gt.asarray(a) for a in args] for name, _, args in CASES}
PRIMS = sorted(_registry())
FNS = sorted(_FNS)
POOL = [None, True, False, 0, 1, -1, 2, 3, 10 ** 20, -(10 ** 20), 0.5, -2.5, 1e308, "", "x", "float64", "cpu",
        [], {}, [0], [1, 2], {"$": "tuple", "v": []}, {"$": "tuple", "v": [0]}, {"$": "tuple", "v": [-1, 1]},
        {"$": "float", "v": "nan"}, {"$": "float", "v": "inf"}, {"$": "ellipsis"}, {"$": "slice", "v": [None, 2, -1]},
        {"$": "dtype", "v": "float32"}, {"$": "dtype", "v": "int64"}, {"$": "device", "v": "strict"},
        {"$": "complex", "re": 1.0, "im": 2.0}, {"$": "ref", "i": 0}, {"$": "ref", "i": 1}, {"$": "dict", "v": {}},
        {"$": "npscalar", "v": {"dtype": "int32", "shape": [], "data": "AQAAAA=="}}, {"$": "pickle", "v": "x"}]
DEVICES = ["cpu", "strict", "cuda", "cuda:0", "tpu", "", "CPU", None, 0]
DTYPE_NAMES = sorted(DTYPES) + ["float128", "object", "load", "", None, 3]


# ---- mutations ---------------------------------------------------------------------------------------------

def _paths(v, path=()):
    """Every position in a JSON value: (path, value)."""
    yield path, v
    if isinstance(v, dict):
        for k, e in v.items():
            yield from _paths(e, path + (k,))
    elif isinstance(v, list):
        for k, e in enumerate(v):
            yield from _paths(e, path + (k,))


def _get(d, path):
    for k in path:
        d = d[k]
    return d


def _put(d, path, value):
    if not path:
        return value
    _get(d, path[:-1])[path[-1]] = value
    return d


def _mutate(d, rnd, log):
    """One random mutation of document ``d`` (in place where possible); returns the new document."""
    paths = list(_paths(d))
    path, v = rnd.choice(paths)
    kind = rnd.choice(["delete", "duplicate", "replace", "retype", "ref", "op", "dtype", "device", "shape", "nest",
                       "swap", "number"])
    log.append((kind, path))
    if kind == "delete" and path:
        parent = _get(d, path[:-1])
        del parent[path[-1]]
    elif kind == "duplicate":
        if isinstance(v, dict) and v:
            k = rnd.choice(list(v))
            v[rnd.choice([k + "_", "extra", rnd.choice(list(v))])] = copy.deepcopy(v[k])
        elif isinstance(v, list) and v:
            k = rnd.randrange(len(v))
            v.insert(rnd.randrange(len(v) + 1), copy.deepcopy(v[k]))
    elif kind == "replace":
        d = _put(d, path, copy.deepcopy(rnd.choice(POOL + [e for _, e in rnd.sample(paths, min(3, len(paths)))])))
    elif kind == "retype":
        new = {int: lambda x: str(x), float: lambda x: int(x) if abs(x) < 1e300 else x, str: lambda x: [x],
               list: lambda x: {"$": "tuple", "v": x}, bool: lambda x: int(x),
               dict: lambda x: list(x.values())}.get(type(v), lambda x: 0)
        d = _put(d, path, new(v))
    elif kind == "ref":
        refs = [p for p, e in paths if isinstance(e, dict) and e.get("$") == "ref"]
        if refs:
            p = rnd.choice(refs)
            _get(d, p)["i"] = rnd.randrange(-2, len(d.get("nodes", [])) + 2) if isinstance(d, dict) else 0
    elif kind == "op":
        ops = [p for p, e in paths if p and p[-1] == "op"]
        if ops:
            d = _put(d, rnd.choice(ops), rnd.choice(PRIMS + FNS + ["x", "const", "item", "concat7", "sin("]))
    elif kind == "dtype":
        ps = [p for p, e in paths if p and p[-1] == "dtype"]
        if ps:
            d = _put(d, rnd.choice(ps), rnd.choice(DTYPE_NAMES))
    elif kind == "device":
        nodes = [n for n in d.get("nodes", [])] if isinstance(d, dict) and isinstance(d.get("nodes"), list) else []
        nodes = [n for n in nodes if isinstance(n, dict)]
        if nodes:
            rnd.choice(nodes)["device"] = rnd.choice(DEVICES)
    elif kind == "shape":
        ps = [p for p, e in paths if p and p[-1] in ("shape", "xshape", "axis", "axes", "k", "sizes")]
        if ps:
            p = rnd.choice(ps)
            e = _get(d, p)
            if isinstance(e, list) and e:
                e[rnd.randrange(len(e))] += rnd.choice([-1, 1])
            elif isinstance(e, dict) and isinstance(e.get("v"), list):
                e["v"].append(rnd.choice([0, 1, -1]))
            elif isinstance(e, int) and not isinstance(e, bool):
                d = _put(d, p, e + rnd.choice([-1, 1]))
            elif isinstance(e, list):
                e.append(1)
    elif kind == "nest":
        d = _put(d, path, rnd.choice([[v], {"$": "tuple", "v": [v]}, {"v": v}]))
    elif kind == "swap":
        a, b = rnd.sample(paths, 2)
        if a[0] and b[0] and not _prefix(a[0], b[0]) and not _prefix(b[0], a[0]):
            va, vb = _get(d, a[0]), _get(d, b[0])
            d = _put(d, a[0], copy.deepcopy(vb))
            d = _put(d, b[0], copy.deepcopy(va))
    elif kind == "number":
        ps = [p for p, e in paths if type(e) in (int, float)]
        if ps:
            p = rnd.choice(ps)
            d = _put(d, p, _get(d, p) + rnd.choice([1, -1, 0.5]))
    return d


def _prefix(a, b):
    return len(a) <= len(b) and b[:len(a)] == a


def _text_mutation(text, rnd, log):
    kind = rnd.choice(["truncate", "insert", "nest", "drop"])
    log.append(("text " + kind,))
    k = rnd.randrange(len(text))
    if kind == "truncate":
        return text[:k]
    if kind == "insert":
        return text[:k] + rnd.choice(["[", "]", "{", "}", ",", '"', "\\", "NaN", "1e999", "\x00"]) + text[k:]
    if kind == "nest":
        return text[:k] + "[" * rnd.choice([70, 5000]) + text[k:]
    return text[:k] + text[k + rnd.randrange(1, 20):]


# ---- the reference evaluation of a loaded graph ------------------------------------------------------------

def _reference(g, args):
    """What replaying ``g`` means, evaluated node by node from its IRNode objects (no plan, no templates)."""
    home = g._home
    raws = [a.data for a in args]
    bk = args[0].backend

    def dev(name):
        return bk if name is None or name == home else _backends.get(name)

    if len(raws) > len(g._layout) or any(type(s) is not Ref for s in g._layout[:len(raws)]):
        raise TypeError("arguments")
    vals = {s.i: r for s, r in zip(g._layout, raws)}
    if set(vals) != set(g._in):
        raise TypeError("missing inputs")
    for i in g._in:
        n, r = g.nodes[i], vals[i]
        if tuple(r.shape) != n.shape or r.dtype != _bdt(bk, n.dtype):
            raise ValueError("input type")

    def res(v, b):
        t = type(v)
        if t is Ref:
            return vals[v.i]
        if t is DTypeName:
            return _bdt(b, v.name)
        if t is DeviceName:
            return dev(v.name)
        if t is _Opaque:
            return v.value
        if t in (tuple, list):
            return t(res(e, b) for e in v)
        if t is dict:
            return {k: res(e, b) for k, e in v.items()}
        if t is slice:
            return slice(res(v.start, b), res(v.stop, b), res(v.step, b))
        return v

    for i, n in enumerate(g.nodes):
        if n.kind == "input":
            continue
        b = dev(n.device)
        if n.kind == "const":
            vals[i] = b.asarray(_np_value(n))
        elif n.kind == "item":
            vals[i] = vals[n.inputs[0].i][n.attrs["k"]]
        elif n.kind == "fn":
            f = b.xp
            for part in n.op.split("."):
                f = getattr(f, part)
            vals[i] = f(*res(n.inputs, b), **res(n.attrs, b))
        else:
            vals[i] = n.prim.fwd(b.xp, *res(n.inputs, b), **res(n.attrs, b))

    def out(v):
        t = type(v)
        if t is Ref:
            return gt.to_numpy(gt.asarray(vals[v.i])) if not isinstance(vals[v.i], tuple) else vals[v.i]
        if t in (tuple, list):
            return t(out(e) for e in v)
        if t is dict:
            return {k: out(e) for k, e in v.items()}
        return v
    return out(g._out_tree)


def _np(v):
    if isinstance(v, gt.Tensor):
        return gt.to_numpy(v)
    if isinstance(v, (tuple, list)):
        return type(v)(_np(e) for e in v)
    if isinstance(v, dict):
        return {k: _np(e) for k, e in v.items()}
    return v


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(b) is dict and set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


# errors a loaded graph may raise when called with the original inputs: shapes/values (ValueError), dtypes and
# kinds (TypeError); a device whose library is absent is a RuntimeError naming the device
def _documented(e):
    return isinstance(e, (ValueError, TypeError)) or (isinstance(e, RuntimeError) and "device" in str(e))


def _check_one(name, rnd):
    """One mutant of graph ``name``: returns 'load', 'call' or 'ok' (how it ended) or raises AssertionError."""
    log = []
    d = copy.deepcopy(DOCS[name])
    for _ in range(rnd.choice([1, 1, 2, 3])):
        try:
            d = _mutate(d, rnd, log)
        except (TypeError, KeyError, IndexError, AttributeError, ValueError):
            log.append("(not applicable)")     # a mutation that does not fit the document as earlier ones left it
    text = json.dumps(d)
    if rnd.random() < 0.15:
        text = _text_mutation(text, rnd, log)
    try:
        g = gt.Graph.from_json(text)
    except ValueError:
        return "load", log
    except Exception as e:          # anything else escaping load is a bug
        raise AssertionError(f"{name}: load raised {type(e).__name__}: {e} after {log}") from e
    args = ARGS[name]
    failed = object()
    try:
        want = _reference(g, args)
    except Exception:
        want = failed
    try:
        got = _np(g(*args))
    except Exception as e:
        assert _documented(e), f"{name}: replay raised {type(e).__name__}: {e} after {log}"
        assert want is failed, f"{name}: replay raised {type(e).__name__}: {e}, the reference did not, after {log}"
        return "call", log
    assert want is not failed, f"{name}: replay succeeded where the reference failed, after {log}"
    assert _same(got, want), f"{name}: replay differs from the reference after {log}"
    again = gt.Graph.from_json(g.to_json())                  # what loaded saves and loads back the same
    assert _same(_np(again(*args)), got), f"{name}: save/load of the mutant changed it, after {log}"
    return "ok", log


@pytest.mark.parametrize("name", list(DOCS))
def test_unmutated_graphs_load_and_replay_equal_to_the_original(name):
    f = next(c[1] for c in CASES if c[0] == name)
    g = gt.Graph.from_json(json.dumps(DOCS[name]))
    got, ref, want = _np(g(*ARGS[name])), _reference(g, ARGS[name]), _np(f(*ARGS[name]))
    assert _same(got, ref)
    assert _same(got, want) or name in ("grad", "linalg", "index and reduce", "concat and where") and np.allclose(
        np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_meaning_preserving_mutations_replay_equal_to_the_original(name):
    """Renaming the graph, reordering fields, metadata of intermediate nodes: same results as the original."""
    rnd = random.Random(SEED)
    want = _np(gt.Graph.from_json(json.dumps(DOCS[name]))(*ARGS[name]))
    for _ in range(10):
        d = copy.deepcopy(DOCS[name])
        d["name"] = rnd.choice(["g", "", "a b", "ünï"])
        d["gradtape"] = "9.9"
        for n in d["nodes"]:
            if n["kind"] != "input" and "shape" in n and rnd.random() < 0.5:
                n["shape"] = None
            if n["kind"] not in ("input", "const") and rnd.random() < 0.3:
                n["rev"] = not n.get("rev", False)
        d = dict(rnd.sample(list(d.items()), len(d)))
        got = _np(gt.Graph.from_json(json.dumps(d))(*ARGS[name]))
        assert _same(got, want), (name, d["name"])


def test_mutated_graphs_are_value_errors_or_replay_as_the_reference():
    rnd = random.Random(SEED)
    seen = {"load": 0, "call": 0, "ok": 0}
    names = list(DOCS)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for k in range(COUNT):
            name = names[k % len(names)]
            try:
                how, _ = _check_one(name, rnd)
            except AssertionError as e:
                raise AssertionError(f"mutant {k} (GRADTAPE_FUZZ_SEED={SEED}): {e}") from None
            seen[how] += 1
    # the fuzzer reaches every outcome (it is not only producing unloadable files)
    assert seen["load"] > COUNT // 10 and seen["ok"] > COUNT // 20, seen
    assert N or time.perf_counter() - t0 < 60
