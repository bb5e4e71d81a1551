"""gt.jit's CUDA lowering (gradtape/_jit/cuda_lower.py): the generated CuPy kernel source for every
elementwise primitive and for fused regions (no GPU needed: nothing is compiled); with CuPy and a GPU the
kernels run against the replay (the ``cuda`` marker skips with a reason otherwise)."""
import re

import numpy as np
import pytest

import gradtape as gt
from gradtape import backends
from gradtape._core.primitive import PRIMS
from gradtape._jit import cuda_lower, scalar
from gradtape._jit.fusion import find_regions
from gradtape._jit.scalar import ScalarNS

ATTRS = {"abs": {"a": 0.0}, "relu": {"a": 0.0}, "clip": {"lo": -0.5, "hi": 0.75}, "exprel": {"k": 1},
         "sinc": {"k": 0}, "log1prel": {"k": 0}}
NOT_ELEMENTWISE = {"select", "to_device", "solve", "cross"}


def elementwise():
    return sorted(n for n, p in PRIMS.items() if (p.same_shape or p.broadcasting) and n not in NOT_ELEMENTWISE)


@pytest.mark.parametrize("ftype", ["float64", "float32"])
def test_c_form_for_every_elementwise_primitive(ftype):
    ctype = {"float64": "double", "float32": "float"}[ftype]
    for name in elementwise():
        p = PRIMS[name]
        ns = ScalarNS("c", ftype)
        xs = [ns.arg(f"x{i}", "b" if (name, i) == ("where", 0) else "f") for i in range(len(p.inputs))]
        out = ns.sym(scalar.forward(ns, p, xs, ATTRS.get(name, {})))
        for k in range(len(p.inputs)):
            if p.vjp[k] is not None:
                scalar.vjp(ns, p, k, ns.arg("ct"), out, xs, ATTRS.get(name, {}))
        text = "\n".join(f"const {ctype} {v} = {t};" for v, _, t in ns.lines)
        assert "math." not in text and " if " not in text and "**" not in text, (name, text)
        assert text.count("(") == text.count(")"), name
        if ftype == "float32":          # every finite literal is a float literal (no double promotion)
            bare = re.sub(r"\((-?1|0)\.0 / 0\.0\)", "", text)
            assert not re.search(r"(?<![\w.])\d+\.\d+(e[+-]?\d+)?(?![\w.f])", bare), (name, text)


def test_region_source_elementwise_and_reduction():
    def f(x, b):
        return gt.sum(gt.tanh(x * 2.0 + b) * gt.where(x > 0.5, x, 0.25))
    g = gt.trace(gt.grad(f), gt.ones((4, 3)), gt.ones(3))
    (r,) = find_regions(g)
    s = cuda_lower.region_source(r, g)
    assert s.kind == "elementwise"
    assert s.in_params.startswith("float64 x0") and "float64 o0" in s.out_params
    assert "tanh(" in s.preamble and "__device__ void gt_fused_body(" in s.preamble
    assert s.operation.startswith("gt_fused_body(") and s.operation.endswith(");")
    assert "gt_maximum" in s.preamble          # the helpers ride along
    fwd = gt.trace(lambda x: gt.sin(x) * 2.0 + 1.0, gt.ones(5))
    (r2,) = find_regions(fwd)
    red = cuda_lower.region_source(r2, fwd, reduce_sum=True)
    assert red.kind == "reduction" and red.operation == "gt_fused_map(x0)" and "return" in red.preamble


def test_literals_are_validated_in_c():
    assert scalar.literal(0.5, "c", "float32") == "0.5f"
    assert scalar.literal(float("nan"), "c", "float64") == "(0.0 / 0.0)"
    with pytest.raises(scalar.NotScalar):
        scalar.literal("1); system(\"x\"", "c", "float64")


def _cuda_or_skip():
    if "cuda" not in backends.available():
        pytest.skip("no CUDA GPU with CuPy available (gradtape.backends.available() lacks 'cuda')")
    return pytest.importorskip("cupy")


@pytest.mark.cuda
def test_kernels_run_on_cupy():
    cupy = _cuda_or_skip()
    x = gt.asarray(np.linspace(-2, 2, 64), device="cuda")

    def f(x):
        return gt.sum(gt.tanh(gt.sin(x) * 1.01 + 0.5))
    g = gt.trace(gt.grad(f), x)
    (r,) = find_regions(g)
    k = cuda_lower.CudaKernel(r, g, "gt_test", backends.get("cuda"))
    ins = [x.data if g.nodes[d].kind == "input" else g.nodes[d].value for d in r.inputs]
    got = k(cupy, *ins)
    np.testing.assert_allclose(cupy.asnumpy(got), gt.to_numpy(g(x)), rtol=1e-12)


@pytest.mark.cuda
def test_jit_on_cupy_through_a_cuda_graph(monkeypatch):
    """gt.jit on CuPy with the CUDA lowering on: the first call runs the plan, the second captures a CUDA graph,
    later calls launch it; every call equals eager, and a call's outputs are its own (the next launch rewrites
    the captured buffers, never what an earlier call returned)."""
    _cuda_or_skip()
    monkeypatch.setattr(cuda_lower, "ENABLED", True)
    c = gt.asarray(np.linspace(-0.5, 0.5, 16), device="cuda")

    def f(x):
        for _ in range(5):
            x = gt.tanh(gt.sin(x) * 1.01 + c)
        return gt.sum(x)
    df = gt.grad(f)
    jf = gt.jit(df)
    xs = [gt.asarray(np.linspace(-2, 2, 16) * s, device="cuda") for s in (1.0, 0.5, -1.5, 2.0)]
    outs = [jf(x) for x in xs]
    for x, o in zip(xs, outs):
        np.testing.assert_allclose(gt.to_numpy(o), gt.to_numpy(df(x)), rtol=1e-12, atol=1e-14)
    exe = jf.lower(xs[0])._entry.exe
    assert exe.kind == "cuda"
    assert isinstance(exe.fn, cuda_lower.Captured), type(exe.fn)
    assert exe.fn.graph is not None, exe.fn.reason
    assert jf.cache_info().traces == 1


@pytest.mark.cuda
def test_jit_mlp_step_on_cupy_equals_eager(monkeypatch):
    _cuda_or_skip()
    monkeypatch.setattr(cuda_lower, "ENABLED", True)
    rng = np.random.default_rng(0)
    W = gt.asarray(rng.standard_normal((8, 4)).astype(np.float32), device="cuda")
    b = gt.asarray(np.zeros(4, np.float32), device="cuda")
    x = gt.asarray(rng.random((16, 8), dtype=np.float32), device="cuda")
    y = gt.asarray(rng.integers(0, 4, 16), device="cuda")

    def loss(W, b):
        return gt.nn.cross_entropy(gt.nn.relu(x @ W + b), y)
    vg = gt.value_and_grad(loss, argnums=(0, 1))
    jvg = gt.jit(vg)
    for _ in range(3):
        (lj, gj), (le, ge) = jvg(W, b), vg(W, b)
        np.testing.assert_allclose(gt.to_numpy(lj), gt.to_numpy(le), rtol=1e-5)
        for a, w in zip(gj, ge):
            np.testing.assert_allclose(gt.to_numpy(a), gt.to_numpy(w), rtol=1e-5, atol=1e-6)
