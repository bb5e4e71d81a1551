"""gt.jit's numba lowering: scalar forms derived from every elementwise primitive's rules, evaluated by numba
against the NumPy forward and VJP (float64, float32, nan/inf edge values); fused kernels of traced graphs
(forward and backward) against replay; the kernel file cache (content checked, never read as code); broadcasting
inputs; the vecmath strip form; the fallback without numba; the benchmark's quick path."""
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gradtape as gt
from gradtape import backends
from gradtape._core.primitive import PRIMS
from gradtape._jit import lower as jl
from gradtape._jit import numba_lower, scalar, threads, vecmath
from gradtape._jit.scalar import NotScalar, ScalarNS

numba = pytest.importorskip("numba")      # required in CI (the [jit] extra); absent only in a bare install

CPU = backends.get("cpu")
XP = CPU.xp
# attribute values the elementwise primitives with parameters are checked at
ATTRS = {"abs": [{"a": 0.0}, {"a": 0.5}], "relu": [{"a": 0.0}, {"a": 0.25}], "clip": [{"lo": -0.5, "hi": 0.75}],
         "exprel": [{"k": 0}, {"k": 1}], "sinc": [{"k": 0}, {"k": 1}], "log1prel": [{"k": 0}, {"k": 1}]}
NOT_ELEMENTWISE = {"select", "to_device", "solve", "cross"}
EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, math.inf, -math.inf, math.nan, 1e-30, -1e-30, 30.0, -30.0]


def elementwise():
    return sorted(n for n, p in PRIMS.items() if (p.same_shape or p.broadcasting) and n not in NOT_ELEMENTWISE)


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("gtjit"))
    old = os.environ.get("GRADTAPE_CACHE_DIR")
    os.environ["GRADTAPE_CACHE_DIR"] = d
    yield d
    if old is None:
        os.environ.pop("GRADTAPE_CACHE_DIR", None)
    else:
        os.environ["GRADTAPE_CACHE_DIR"] = old


def _cases():
    for name in elementwise():
        for attrs in ATTRS.get(name, [{}]):
            yield name, attrs


def test_every_elementwise_primitive_has_a_derived_scalar_form():
    names = set()
    for name, attrs in _cases():
        p = PRIMS[name]
        ns = ScalarNS("py", "float64")
        xs = [ns.arg(f"x{i}", "b" if (name, i) == ("where", 0) else "f") for i in range(len(p.inputs))]
        out = scalar.forward(ns, p, xs, attrs)
        for k in range(len(p.inputs)):
            if p.vjp[k] is not None:
                scalar.vjp(ns, p, k, ns.arg("ct"), out, xs, attrs)
                scalar.jvp(ns, p, k, ns.arg("tn"), out, xs, attrs)
        names.add(name)
    assert len(names) >= 45 and {"sin", "tanh", "pow", "logaddexp", "where", "xlogy", "relu"} <= names
    assert scalar.EXPLICIT == {}        # nothing needed a hand-written table
    for name in NOT_ELEMENTWISE:
        p = PRIMS[name] if name in PRIMS else None
        if p is not None:
            with pytest.raises(NotScalar):
                scalar.forward(ScalarNS("py", "float64"), p, [ScalarNS("py", "float64").arg("x0")], {})


def test_data_is_never_code_literals():
    assert scalar.literal(0.1, "py", "float64") == "0.1"
    assert scalar.literal(-math.inf, "py", "float64") == "-math.inf"
    for bad in ("1; import os", object(), 1j, np.float64(1.0)):
        with pytest.raises(NotScalar):
            scalar.literal(bad, "py", "float64")
    with pytest.raises(NotScalar):
        bool(ScalarNS("py", "float64").arg("x0") > 0)        # a Python decision on data
    with pytest.raises(AttributeError):
        ScalarNS("py", "float64").linalg


def _inputs(dtype, n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-3, 3, n), EDGES]).astype(dtype)
    y = np.concatenate([rng.uniform(-3, 3, n), EDGES[::-1]]).astype(dtype)
    ct = np.concatenate([rng.uniform(-2, 2, n), np.ones(len(EDGES))]).astype(dtype)
    return x, y, ct


def _build(dtype):
    """One numba function computing every primitive's forward and VJPs from the derived forms (one compile)."""
    ftype = np.dtype(dtype).name
    ns = ScalarNS("py", ftype)
    x, y, c = ns.arg("x"), ns.arg("y"), ns.arg("c")
    cond = ns.emit("(x > 0.0)", "b")
    rows = []
    for name, attrs in _cases():
        p = PRIMS[name]
        args = [cond, x, y] if name == "where" else [x, y][:len(p.inputs)]
        out = ns.sym(scalar.forward(ns, p, args, attrs))
        rows.append((name, attrs, "fwd", out))
        for k in range(len(p.inputs)):
            if p.vjp[k] is not None:
                g = ns.sym(scalar.vjp(ns, p, k, c, out, args, attrs))
                rows.append((name, attrs, f"vjp{k}", g))
    body = "\n".join(f"        {n} = {t}" for n, _, t in ns.lines)
    stores = "\n".join(f"        o[{j}, i] = {s.text}" for j, (*_, s) in enumerate(rows))
    src = (f"import math\nimport numpy as np\nfrom numba import njit, {ftype} as F\n{scalar.PY_PRELUDE.replace('cache=True', 'cache=False')}"
           f"\n\n@njit(error_model='numpy')\ndef run(xs, ys, cs, o):\n    for i in range(xs.size):\n"
           f"        x = xs[i]\n        y = ys[i]\n        c = cs[i]\n{body}\n{stores}\n")
    env = {}
    exec(compile(src, f"<test kernel {ftype}>", "exec"), env)
    return env["run"], rows


@pytest.fixture(scope="module", params=["float64", "float32"])
def evaluated(request):
    dtype = request.param
    run, rows = _build(dtype)
    x, y, ct = _inputs(dtype)
    o = np.empty((len(rows), x.size), dtype=dtype)
    run(x, y, ct, o)
    return dtype, rows, o, (x, y, ct)


def _numpy(name, attrs, role, x, y, ct):
    p = PRIMS[name]
    args = [x > 0, x, y] if name == "where" else [x, y][:len(p.inputs)]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = p.fwd(XP, *args, **attrs)
        if role == "fwd":
            return out
        return p.vjp[int(role[3:])](XP, ct, out, *args, **attrs)


def _close(got, want, rtol, what):
    got = np.asarray(got, np.float64)
    want = np.broadcast_to(np.asarray(want, np.float64), got.shape)
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    assert (nan_g == nan_w).all(), f"{what}: nan at {np.nonzero(nan_g != nan_w)[0][:5]}"
    inf = np.isinf(want)
    assert (got[inf] == want[inf]).all(), f"{what}: inf mismatch"
    fin = ~nan_w & ~inf
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=rtol, err_msg=what)


def test_scalar_forms_match_numpy_forward_and_vjp(evaluated):
    dtype, rows, o, (x, y, ct) = evaluated
    rtol = 1e-9 if dtype == "float64" else 2e-4
    checked = set()
    for j, (name, attrs, role, _) in enumerate(rows):
        want = _numpy(name, attrs, role, x, y, ct)
        _close(o[j], want, rtol, f"{name}{attrs} {role} {dtype}")
        checked.add((name, role))
    assert {n for n, _ in checked} == set(elementwise())
    assert ("pow", "vjp1") in checked and ("tanh", "vjp0") in checked


def test_a_wrong_scalar_form_is_caught(evaluated):
    dtype, rows, o, (x, y, ct) = evaluated
    j = next(k for k, r in enumerate(rows) if r[0] == "sin" and r[2] == "fwd")
    with pytest.raises(AssertionError), np.errstate(all="ignore"):
        _close(o[j], np.cos(x), 1e-9, "sin vs cos")


# ---- fused graphs ---------------------------------------------------------------------------------------------

def chain(x, cycles=5):
    y = x
    for _ in range(cycles):
        y = gt.tanh(gt.sin(y) * 1.01 + 0.5)
    return gt.sum(y)


@pytest.fixture(scope="module")
def chain_exe():
    x = gt.asarray(np.linspace(-2, 2, 16))
    g = gt.trace(gt.grad(chain), x)
    return g, jl.compile_graph(g, CPU), x


def test_chain_fwd_bwd_is_one_kernel_equal_to_replay(chain_exe):
    g, exe, x = chain_exe
    assert exe.kind == "numba" and len(exe.kernels) == 1
    assert "def kernel(" in exe.source() and "fused0(" in exe.source()
    got = exe(x.data)[0]
    want = gt.grad(chain)(x).data
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    x2 = np.linspace(-1, 3, 16)
    np.testing.assert_allclose(exe(x2)[0], g(gt.asarray(x2)).data, rtol=1e-13, atol=1e-15)


def test_cache_file_is_checked_not_trusted(chain_exe, cache_dir):
    g, exe, x = chain_exe
    k = exe.kernels[0]
    assert os.path.dirname(k.path) == cache_dir and os.path.basename(k.path) == f"k_{k.digest}.py"
    with open(k.path) as f:
        assert f.read() == k.source
    with open(k.path, "w") as f:        # a tampered file: rewritten from the generated source, never run
        f.write("raise SystemExit('ran the file')\n")
    k2 = numba_lower.region_kernel(k.region, g, CPU)
    assert k2.source == k.source
    numba_lower._cache_file(k2.digest, k2.source)
    with open(k.path) as f:
        assert f.read() == k.source


def test_mlp_like_graph_broadcast_bias_and_matmul_splits():
    rng = np.random.default_rng(1)
    x, w, b = (gt.asarray(rng.standard_normal(s)) for s in ((4, 3), (3, 5), (5,)))
    col = gt.asarray(rng.standard_normal((4, 1)))

    def f(x, w, b):
        h = gt.tanh(x @ w + b) * col + gt.nn.relu(x @ w - 0.1)
        return gt.sum(gt.exp(-h * h))
    gf = gt.grad(f, argnums=(0, 1, 2))
    g = gt.trace(gf, x, w, b)
    exe = jl.compile_graph(g, CPU)
    assert exe.kind == "numba"
    modes = {rd.mode for k in exe.kernels for rd in k.reads}
    assert "block" in modes          # the bias row and the column are read by index, not expanded
    assert any(k.cols for k in exe.kernels) and "for c in range(ncols)" in exe.source()
    for got, want in zip(exe(x.data, w.data, b.data), gf(x, w, b)):
        np.testing.assert_allclose(got, want.data, rtol=1e-12, atol=1e-14)


def test_float32_region_and_bool_values():
    x = gt.asarray(np.linspace(-2, 2, 33, dtype=np.float32))

    def f(x):
        return gt.sum(gt.where(x > 0.25, gt.sqrt(gt.abs(x)), x * x) + gt.maximum(x, 0.5))
    g = gt.trace(gt.grad(f), x)
    exe = jl.compile_graph(g, CPU)
    got = exe(x.data)[0]
    assert got.dtype == np.float32 and exe.kind == "numba"
    np.testing.assert_allclose(got, gt.grad(f)(x).data, rtol=1e-6, atol=1e-6)


def test_vecmath_strip_form_large_region():
    x = gt.asarray(np.linspace(-4, 4, numba_lower.VM_MIN + 3))
    x.data[5] = 1e7                       # a sin argument beyond vecmath's range: the libm form reruns

    def f(x):
        return gt.sum(gt.sin(x) * gt.exp(-x * x) + gt.tanh(x))
    g = gt.trace(gt.grad(f), x)
    exe = jl.compile_graph(g, CPU)
    assert any(k.uses_vm for k in exe.kernels) and "_vm_sin_a" in exe.source()
    np.testing.assert_allclose(exe(x.data)[0], gt.grad(f)(x).data, rtol=1e-13, atol=1e-15)
    y = np.linspace(-4, 4, numba_lower.VM_MIN + 3)
    np.testing.assert_allclose(exe(y)[0], g(gt.asarray(y)).data, rtol=1e-13, atol=1e-15)


def test_parallel_kernel_threads(monkeypatch):
    monkeypatch.setattr(numba_lower, "PARALLEL_MIN", 64)
    monkeypatch.setattr(numba_lower, "PARALLEL_WORK", 64)
    x = gt.asarray(np.linspace(-1, 1, 100))
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) * x + 1.0)), x)
    exe = jl.compile_graph(g, CPU)
    threads.set_num_threads(2)
    try:
        got = exe(x.data)[0]
    finally:
        threads.set_num_threads(None)
    np.testing.assert_allclose(got, np.cos(x.data) * x.data + np.sin(x.data), rtol=1e-14)


def test_threads_setting(monkeypatch):
    monkeypatch.setenv("GRADTAPE_NUM_THREADS", "1")
    assert threads.get_num_threads() == 1
    monkeypatch.delenv("GRADTAPE_NUM_THREADS")
    assert threads.get_num_threads() == threads.available_cores()
    with pytest.raises(ValueError):
        threads.set_num_threads(0)
    with pytest.raises(TypeError):
        threads.set_num_threads(1.5)
    monkeypatch.setenv("GRADTAPE_NUM_THREADS", "x")
    with pytest.raises(ValueError, match="GRADTAPE_NUM_THREADS"):
        threads.get_num_threads()


def test_not_numpy_backend_replays():
    x = gt.asarray([0.5, 1.0], device="strict")
    g = gt.trace(lambda x: gt.sin(x) * 2.0 + 1.0, x)
    exe = jl.compile_graph(g, backends.get("strict"))
    assert exe.kind == "replay"


def test_without_numba_warns_once_and_replays(monkeypatch):
    monkeypatch.setattr(numba_lower, "numba_available", lambda: False)
    monkeypatch.setattr(jl, "_warned", [])
    g = gt.trace(lambda x: gt.sin(x) * 2.0 + 1.0, gt.ones(3))
    with pytest.warns(RuntimeWarning, match="numba not installed"):
        exe = jl.compile_graph(g, CPU)
    assert exe.kind == "replay"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jl.compile_graph(g, CPU).kind == "replay"       # said once
    np.testing.assert_allclose(exe(np.zeros(3))[0], np.ones(3))


def test_benchmark_quick_smoke(tmp_path):
    out = tmp_path / "jit.json"
    env = dict(os.environ, GRADTAPE_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "benchmarks.jit", "--smoke", "--json", str(out)], env=env,
                       capture_output=True, text=True, timeout=240, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.exists() and "gt.jit" in r.stdout


_STALE = """
import sys
import numpy as np
from gradtape._jit import kernel_cache as KC
src = "from numba import njit\\n@njit(cache=True)\\ndef run(a):\\n    return a.sum() * 2.0\\n"
path, env = KC.module("stale_test", src, lambda: {}, sys.argv[1])
KC._warm(env["run"], np.ones(3))
print(env["run"](np.ones(3)), KC.LOADS[-1])
"""


def test_a_cache_entry_of_another_module_name_is_recompiled(tmp_path):
    """numba's disk cache records a kernel's module name; an entry written under another name (another
    gradtape version's naming) does not load (ModuleNotFoundError): it is dropped and the kernel compiled
    again, then cached under the new name."""
    env = dict(os.environ, GRADTAPE_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(name):
        r = subprocess.run([sys.executable, "-c", _STALE, name], env=env, cwd=root, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout.split()
    assert run("gradtape_stale_a") == ["6.0", "compiled"]
    assert run("gradtape_stale_a") == ["6.0", "cache"]
    assert run("gradtape_stale_b") == ["6.0", "recompiled"]
    assert run("gradtape_stale_b") == ["6.0", "cache"]
