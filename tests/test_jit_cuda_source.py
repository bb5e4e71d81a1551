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


@pytest.mark.cuda
def test_kernels_run_on_cupy():
    if "cuda" not in backends.available():
        pytest.skip("no CUDA GPU with CuPy available (gradtape.backends.available() lacks 'cuda')")
    cupy = pytest.importorskip("cupy")
    x = gt.asarray(np.linspace(-2, 2, 64), device="cuda")

    def f(x):
        return gt.sum(gt.tanh(gt.sin(x) * 1.01 + 0.5))
    g = gt.trace(gt.grad(f), x)
    (r,) = find_regions(g)
    k = cuda_lower.CudaKernel(r, g, "gt_test", backends.get("cuda"))
    ins = [x.data if g.nodes[d].kind == "input" else g.nodes[d].value for d in r.inputs]
    got = k(cupy, *ins)
    np.testing.assert_allclose(cupy.asnumpy(got), gt.to_numpy(g(x)), rtol=1e-12)
    run = cuda_lower.capture(lambda a: k(cupy, a, *ins[1:]), [x.data], backends.get("cuda"))
    np.testing.assert_allclose(cupy.asnumpy(run(x.data)), gt.to_numpy(g(x)), rtol=1e-12)
