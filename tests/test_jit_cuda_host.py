"""gt.jit's CUDA lowering run on the host (tests/cuda_host.py): every row of the op table through it, values,
gradients and second order equal to eager, with the generated CUDA source of each region compiled as host C++.

What a GPU adds (CuPy's ElementwiseKernel, NVRTC, the device's libm, CUDA graphs) is tests/test_jit_cuda_source.py's
``cuda`` tests; what this proves is the C templates and the lowering's glue, on every elementwise primitive.
Skipped (with the reason) only where there is no C++ compiler.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import gradtape as gt
from gradtape._jit import lower

import cuda_host
from test_jit_ops import _check
from test_ops import OPS

pytestmark = pytest.mark.skipif(cuda_host.CXX is None, reason="no C++ compiler (g++ or c++) to build the host kernels")


@pytest.fixture
def lowered():
    """The lowerings made inside the test: [kind of each executable]."""
    kinds = []
    old = lower._lower_cuda

    def spy(graph, backend, kernel=None):
        exe = old(graph, backend, kernel=kernel)
        kinds.append(exe.kind)
        return exe
    lower._lower_cuda = spy
    try:
        with cuda_host.host_lowering():
            yield kinds
    finally:
        lower._lower_cuda = old


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_op_through_host_cuda_lowering(op, lowered):
    _check(op, "cpu")
    assert lowered, "no graph went through the CUDA lowering"


@pytest.fixture(scope="module")
def host_regions():
    """The op table's rows (scaled by 1.5: a row of one op is then a region with its neighbour), float64 and,
    where they stay float32, float32, first order, through the host CUDA lowering: (the primitives lowered into
    a kernel, forward and VJP; every distinct KernelSource, in order)."""
    seen, srcs = set(), {}
    old = cuda_host.HostKernel.__init__

    def init(self, region, graph, name, backend):
        old(self, region, graph, name, backend)
        seen.update(graph.nodes[i].op for i in region.nodes)
        srcs.setdefault(self.src.text(), self.src)
    cuda_host.HostKernel.__init__ = init
    try:
        with cuda_host.host_lowering():
            for op in OPS:
                _check(_Scaled(op), "cpu", order=1)
            for op in _F32_ROWS:        # (lowered, values not compared: test_float32_op_... compares them)
                args, jf = _f32(op), gt.jit(_Scaled(op).fn)
                nums = tuple(k for k, a in enumerate(args) if a.dtype == gt.float32)
                gt.grad(lambda *a: gt.sum(jf(*a)), argnums=nums)(*args)
            for dt in (gt.float64, gt.float32):     # regions summed whole: ReductionKernels
                x = gt.astype(gt.asarray(np.linspace(-1.0, 1.0, 12).reshape(3, 4)), dt)
                gt.jit(lambda x: gt.sum(gt.tanh(x) * 1.5 + gt.exp(x)))(x)
                gt.jit(lambda x: gt.sum(gt.where(x > 0.25, gt.log1p(x * x), x)))(x)
    finally:
        cuda_host.HostKernel.__init__ = old
    return seen, list(srcs.values())


def test_every_elementwise_primitive_ran_in_a_host_kernel(host_regions):
    """The op table's rows together put every elementwise primitive into a compiled region (forward and VJP)."""
    from test_jit_cuda_source import elementwise
    seen, _ = host_regions
    missing = set(elementwise()) - seen - {"conj_complex"}     # (complex regions are not fused: backend calls)
    assert not missing, f"primitives never lowered to a host kernel: {sorted(missing)}"


@pytest.mark.skipif(cuda_host.NVCC is None, reason="no nvcc (CUDA toolkit) to compile the kernels for the device")
def test_every_kernel_source_compiles_for_the_device(host_regions):
    """Each generated kernel (every elementwise primitive's forward and VJP, float64 and float32) compiled for
    the device by nvcc as CuPy's ElementwiseKernel / ReductionKernel call it (no GPU needed; CuPy compiles with
    NVRTC, which has the same device math and no headers); and float32 kernels never compute in double
    (a double literal or a double overload would convert a float to double: no cvt.f64.f32 in their PTX; the
    device's own sinf/cosf reduce huge arguments in double from integers, cvt.rn.f64.s64, which is theirs)."""
    _, srcs = host_regions
    assert len(srcs) > 100 and {s.kind for s in srcs} == {"elementwise", "reduction"}, len(srcs)
    ptx = cuda_host.device_compile(srcs)
    assert sorted(ptx) == list(range(len(srcs))), "a kernel is missing from the PTX"
    promoted = [srcs[k].name + ": " + srcs[k].in_params for k, t in ptx.items()
                if "float64" not in srcs[k].in_params + srcs[k].out_params and "cvt.f64.f32" in t]
    assert not promoted, f"float32 kernels computing in double: {promoted[:5]}"


def test_the_device_check_catches_a_bad_source():
    """The nvcc check fails on a source that would not compile (a host-only call) and on a float32 kernel
    promoted to double, so the test above can fail."""
    if cuda_host.NVCC is None:
        pytest.skip("no nvcc (CUDA toolkit) to compile the kernels for the device")
    from gradtape._jit.cuda_lower import KernelSource
    bad = KernelSource("elementwise", "float32 x0", "float32 o0", "gt_b_body(x0, o0);",
                       "__device__ void gt_b_body(float x0, float& o0) { o0 = printf_host_only(x0); }", "gt_b")
    with pytest.raises(RuntimeError, match="nvcc rejects"):
        cuda_host.device_compile([bad])
    promoted = KernelSource("elementwise", "float32 x0", "float32 o0", "gt_p_body(x0, o0);",
                            "__device__ void gt_p_body(float x0, float& o0) { o0 = x0 * 0.1; }", "gt_p")
    assert "cvt.f64.f32" in cuda_host.device_compile([promoted])[0]


class _Scaled:
    """An op-table row whose function's output is scaled (the row's other fields as they are)."""

    def __init__(self, op):
        self._op = op

    def __getattr__(self, name):
        return getattr(self._op, name)

    def fn(self, *a):
        out = self._op.fn(*a)
        return out * 1.5 if gt.isdtype(out.dtype, ("real floating", "complex floating")) else out


def test_kernel_outputs_have_the_region_shape(lowered):
    """A region that broadcasts inside gets outputs of its own shape, not of its inputs' broadcast (the kernel
    allocates them: CuPy would otherwise size them by the inputs)."""
    x = gt.asarray(np.linspace(-1.0, 1.0, 3))
    f = gt.jit(lambda x: gt.sin(gt.broadcast_to(x, (4, 3))) * 2.0)
    got = f(x)
    assert got.shape == (4, 3)
    np.testing.assert_allclose(gt.to_numpy(got), np.broadcast_to(np.sin(np.linspace(-1.0, 1.0, 3)) * 2.0, (4, 3)))
    assert lowered and lowered[-1] == "cuda"


def test_host_kernel_checks_its_arguments():
    g = gt.trace(lambda x: gt.tanh(x) * 2.0, gt.ones(3))
    from gradtape._jit.fusion import find_regions
    from gradtape import backends
    (r,) = find_regions(g)
    k = cuda_host.HostKernel(r, g, "gt_t", backends.get("cpu"))
    np.testing.assert_allclose(k(None, np.linspace(0, 1, 3)), np.tanh(np.linspace(0, 1, 3)) * 2.0, rtol=1e-15)
    with pytest.raises(TypeError, match="declared float64"):
        k(None, np.ones(3, dtype=np.float32))


def test_differential_programs_through_the_host_cuda_lowering():
    """40 fixed programs of the differential fuzzer (general and jacobian kinds) through gt.jit with the CUDA
    lowering on the host, against PyTorch/JAX, their kernel sources compiled for the device too where nvcc is.
    Longer: python -m tests.difftest.jit --backend cpu --cuda-host --nvcc --n N."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from tests.difftest import jit as DJ
    with DJ._cuda_host(), DJ.device_sources() as sources:      # (tests.cuda_host: the module DJ patches)
        for kind, seeds in (("general", range(500, 525)), ("jacobian", range(500, 515))):
            counts, bad = DJ.run(seeds, kind, "cpu")
            assert not bad, f"{len(bad)} {kind} programs differ through the host CUDA lowering\n\n{bad[0].report()}"
            assert counts["ok"] >= len(seeds) - 5, counts
    assert len(sources) > 40, len(sources)
    if cuda_host.NVCC is not None:          # (and compiled for the device, where nvcc is)
        problems = DJ.nvcc_problems(sources)
        assert not problems, problems[0]


def _f32(op):
    from test_jit_ops import _args
    args = _args(op, "cpu")
    return [gt.astype(a, gt.float32) if a.dtype == gt.float64 else a for a in args]


def _f32_rows():
    """The rows with a float input whose output stays float32 when the inputs are made float32."""
    rows = []
    for op in OPS:
        args = _f32(op)
        if any(a.dtype == gt.float32 for a in args) and _Scaled(op).fn(*args).dtype == gt.float32:
            rows.append(op)
    return rows


_F32_ROWS = _f32_rows()


@pytest.mark.parametrize("op", _F32_ROWS, ids=[op.name for op in _F32_ROWS])
def test_float32_op_through_host_cuda_lowering(op, lowered):
    """float32 regions (the C templates' float literals and float overloads, as the MLP's): values and
    gradients of each row scaled by 1.5, against eager float32, to float32 rounding."""
    args = _f32(op)
    f = _Scaled(op).fn
    want = f(*args)
    got = gt.jit(f)(*args)
    np.testing.assert_allclose(gt.to_numpy(got), gt.to_numpy(want), rtol=2e-5, atol=2e-6)
    nums = tuple(k for k, a in enumerate(args) if a.dtype == gt.float32)
    w = gt.astype(gt.asarray(np.random.default_rng(1).uniform(0.5, 1.5, size=want.shape)), gt.float32)
    g = gt.grad(lambda *a: gt.sum(f(*a) * w), argnums=nums)
    for a, b in zip(gt.jit(g)(*args), g(*args)):
        scale = float(np.max(np.abs(gt.to_numpy(b)))) if b.size else 1.0
        np.testing.assert_allclose(gt.to_numpy(a), gt.to_numpy(b), rtol=1e-4, atol=1e-5 * max(scale, 1.0))


class _FakeCupy:
    """The part of CuPy's API that :class:`~gradtape._jit.cuda_lower.Captured` uses, on NumPy arrays: a captured
    graph's launch reruns the captured function into the captured output buffers (as a CUDA graph rewrites
    the same addresses). ``refuse``: begin_capture raises (as CUDA does for a capture it cannot make)."""

    def __init__(self, refuse=False):
        fake = self

        class Stream:
            def __init__(self, non_blocking=False):
                assert non_blocking, "capture needs a non-blocking stream"
                self.capturing = None

            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def record(self, event=None):
                return "event"

            def wait_event(self, event):
                assert event == "event"

            def begin_capture(self):
                if refuse:
                    raise RuntimeError("cudaErrorStreamCaptureUnsupported")
                fake.capturing = True

            def end_capture(self):
                fake.capturing = False
                return Graph(fake.last)

            def synchronize(self):
                pass

        class Graph:
            def __init__(self, captured):
                self.fn, self.ins, self.outs = captured

            def launch(self, stream=None):
                for o, v in zip(self.outs, self.fn(*self.ins)):
                    o[...] = v
                fake.launches += 1

        class MemoryPool:
            def malloc(self, size):
                raise AssertionError("not called by the fake arrays")

        @contextlib.contextmanager
        def using_allocator(alloc):
            yield

        self.cuda = type("cuda", (), {"Stream": Stream, "MemoryPool": MemoryPool, "using_allocator":
                                      staticmethod(using_allocator),
                                      "get_current_stream": staticmethod(lambda: Stream(True))})
        self.capturing, self.launches, self.last = None, 0, None

    def array(self, r, copy=True):
        return np.array(r, copy=True)



def test_captured_replays_into_its_buffers_and_returns_copies():
    from gradtape._jit.cuda_lower import Captured
    fake = _FakeCupy()

    def impl(x, c):
        return (np.sin(x) * c, x + 1.0)

    def fn(x, c):
        out = impl(x, c)
        if fake.capturing:          # (what the graph records: this function on the captured buffers)
            fake.last = (impl, (x, c), out)
        return out
    cap = Captured(fn, type("B", (), {"raw": fake})())
    xs = [np.linspace(-1, 1, 5) * s for s in (1.0, 2.0, -0.5, 3.0)]
    c = np.full(5, 0.5)
    outs = [cap(x, c) for x in xs]
    assert cap.graph is not None and cap.reason is None and fake.launches == 3
    for x, o in zip(xs, outs):
        np.testing.assert_allclose(o[0], np.sin(x) * c)
        np.testing.assert_allclose(o[1], x + 1.0)
    assert not np.shares_memory(outs[1][0], outs[2][0])       # each call's outputs are its own


def test_captured_falls_back_when_the_capture_is_refused():
    from gradtape._jit.cuda_lower import Captured
    fake = _FakeCupy(refuse=True)
    cap = Captured(lambda x: (x * 2.0,), type("B", (), {"raw": fake})())
    got = [cap(np.arange(3.0) + k)[0] for k in range(4)]
    assert cap.graph is None and "cudaErrorStreamCaptureUnsupported" in cap.reason
    for k, g in enumerate(got):
        np.testing.assert_allclose(g, (np.arange(3.0) + k) * 2.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_region_summed_whole_is_a_reduction_kernel(lowered, dtype):
    """A region whose one output only a full sum reads: one ReductionKernel (its map expression the region)."""
    c = gt.asarray(np.linspace(-0.5, 0.5, 12).reshape(4, 3).astype(dtype))
    x = gt.asarray(np.linspace(-2, 2, 12).reshape(4, 3).astype(dtype))

    def f(x):
        return gt.sum(gt.tanh(gt.sin(x) * 1.01 + c))
    jf = gt.jit(f)
    got = jf(x)
    assert got.dtype == x.dtype and got.shape == ()
    np.testing.assert_allclose(float(got), float(f(x)), atol=1e-13 if dtype == "float64" else 1e-5)
    src = jf.lower(x).source()
    assert src.count("// reduction kernel") == 1 and "sum(" not in src.split("# ---- steps")[1]


def test_a_region_larger_than_its_inputs_broadcast_is_not_reduced():
    """The reduction runs over its inputs' broadcast: a region of another shape keeps its sum a backend call
    (here made so by hand: the passes put broadcasts outside the regions)."""
    from gradtape._jit import cuda_lower
    from gradtape._jit.fusion import find_regions
    x = gt.asarray(np.linspace(-1.0, 1.0, 3))
    g = gt.trace(lambda x: gt.sum(gt.sin(x) * 2.0), x)
    (r,) = cuda_lower.reducing_regions(g, find_regions(g))
    assert r.sums, "a region summed whole reduces itself"
    (r,) = find_regions(g)
    r.shape = (4, 3)
    (r,) = cuda_lower.reducing_regions(g, [r])
    assert r.sums == {}
