"""CUDA lowering: each fused region becomes a ``cupy.ElementwiseKernel`` (a region whose one output is summed
whole: a ``cupy.ReductionKernel``, :func:`reducing_regions`) from C templates, derived like the numba ones
(:class:`~gradtape._jit.scalar.ScalarNS` in its "c" language); a static-shape executable is captured into a
CUDA graph (stream capture, :class:`Captured`) and relaunched with one call.

The region's statements become a ``__device__`` function in the kernel's preamble (with the helpers of
:data:`~gradtape._jit.scalar.C_PRELUDE`), so the same text serves the elementwise kernel's operation and the
reduction's map expression. CuPy broadcasts the kernel's inputs itself. Source generation needs no CuPy and no
GPU: the CPU suite checks it for every elementwise primitive, and compiles it as host C++ (``__device__``
defined away, tests/cuda_host.py) to run the op table and the differential fuzzer through this lowering on
NumPy arrays. Building and running the kernels imports CuPy through the backend (``backend.raw``). It is used by
:func:`gradtape._jit.lower.compile_graph` on CuPy arrays when :data:`ENABLED` (``GRADTAPE_JIT_CUDA=1``): it has
not run on a GPU yet (tests/test_jit_cuda_source.py's ``cuda`` tests do where one is present), so by default
CuPy runs the replay plan.

A kernel's outputs are allocated by the kernel (the region's shape, which its inputs broadcast to), not left
to CuPy's broadcast of the inputs: a region that broadcasts inside (``broadcast_to``, a scalar's region)
would otherwise get an output of the inputs' shape.
"""
from __future__ import annotations

import math
import os

from .fusion import attach_sums, scalar_attrs
from .scalar import C_PRELUDE, NotScalar, ScalarNS, node_form
from .._api.info import broadcast_shapes
from ..graph.ir import Ref

__all__ = ["KernelSource", "region_source", "CudaKernel", "ENABLED", "Captured", "reducing_regions"]

ENABLED = os.environ.get("GRADTAPE_JIT_CUDA", "") == "1"
_CTYPE = {"float64": "double", "float32": "float", "bool": "bool"}


class KernelSource:
    """The text of one region's CuPy kernel: ``kind`` ("elementwise" or "reduction"), ``in_params``,
    ``out_params``, ``operation`` (or the reduction's ``map_expr``), ``preamble``, ``name``."""

    __slots__ = ("kind", "in_params", "out_params", "operation", "preamble", "name")

    def __init__(self, kind, in_params, out_params, operation, preamble, name):
        self.kind, self.in_params, self.out_params = kind, in_params, out_params
        self.operation, self.preamble, self.name = operation, preamble, name

    def text(self):
        """All of it, for reading (``exe.source()``)."""
        return (f"// {self.kind} kernel {self.name}\n// in: {self.in_params}\n// out: {self.out_params}\n"
                f"{self.preamble}\n// operation: {self.operation}\n")


def region_source(region, graph, reduce_sum=False, name="gt_fused"):
    """The :class:`KernelSource` of ``region``; ``reduce_sum``: its one output summed to a scalar (a
    ReductionKernel with the region as its map expression)."""
    ns = ScalarNS("c", region.ftype)
    nodes = graph.nodes
    syms, params = {}, []
    for k, d in enumerate(region.inputs):
        dt = nodes[d].dtype
        if dt not in _CTYPE:
            raise NotScalar(f"a {dt} input")
        syms[d] = ns.arg(f"x{k}", "b" if dt == "bool" else "f")
        params.append((_CTYPE[dt], f"x{k}", dt))
    for i in region.nodes:
        n = nodes[i]
        args = [syms[a.i] if type(a) is Ref else a for a in n.inputs]
        out = ns.sym(node_form(ns, n, args, scalar_attrs(n) or {}))
        want = "b" if n.dtype == "bool" else "f"
        if out.kind != want:
            out = ns.astype(out, "bool" if want == "b" else region.ftype)
        syms[i] = out
    ft = _CTYPE[region.ftype]
    decl = ", ".join(f"{c} {v}" for c, v, _ in params)
    body = "\n".join(f"    const {_CTYPE['bool'] if kind == 'b' else ft} {v} = {t};" for v, kind, t in ns.lines)
    outs = region.outputs
    in_params = ", ".join(f"{dt} {v}" for _, v, dt in params)
    call = ", ".join(v for _, v, _ in params)
    if reduce_sum:
        fn = (f"__device__ {ft} {name}_map({decl}) {{\n{body}\n    return {syms[outs[0]].text};\n}}\n")
        return KernelSource("reduction", in_params, f"{region.ftype} y", f"{name}_map({call})", C_PRELUDE + fn, name)
    out_decl = ", ".join(f"{_CTYPE[nodes[i].dtype]}& o{k}" for k, i in enumerate(outs))
    sets = "\n".join(f"    o{k} = {syms[i].text};" for k, i in enumerate(outs))
    fn = f"__device__ void {name}_body({decl}{', ' if decl else ''}{out_decl}) {{\n{body}\n{sets}\n}}\n"
    out_params = ", ".join(f"{nodes[i].dtype} o{k}" for k, i in enumerate(outs))
    op = f"{name}_body({call}{', ' if call else ''}{', '.join(f'o{k}' for k in range(len(outs)))});"
    return KernelSource("elementwise", in_params, out_params, op, C_PRELUDE + fn, name)


def reducing_regions(graph, regions, exclude=None):
    """Let a region whose one output only a full ``sum`` reads reduce it itself (a ``cupy.ReductionKernel`` with
    the region as its map expression): ``region.sums`` as :func:`~gradtape._jit.fusion.attach_sums` sets it,
    kept only for a single-output region whose inputs broadcast to its whole shape (the reduction runs over
    the inputs' broadcast). Returns ``regions``."""
    attach_sums(graph, regions, math.inf, exclude)
    nodes = graph.nodes
    for r in regions:
        if r.sums and (len(r.outputs) != 1 or
                       broadcast_shapes(*[nodes[d].shape for d in r.inputs]) != tuple(r.shape)):
            r.sums = {}
    return regions


class CudaKernel:
    """One region's CuPy kernel (built on first use): ``kernel(xp, *raws)`` like the numba Kernel; ``build(src)``
    makes the callable ``k(*inputs, *outputs)`` (``cupy.ElementwiseKernel`` here, the host compiler in
    tests/cuda_host.py), ``empty(shape, dtype)`` an output."""

    def __init__(self, region, graph, name, backend):
        self.src = region_source(region, graph, reduce_sum=bool(region.sums), name=name)
        self.region, self.backend = region, backend
        self.source, self._k = self.src.text(), None
        self.results = [(region.out_shape(k), graph.nodes[i].dtype) for k, i in enumerate(region.results())]

    def build(self, s):
        cupy = self.backend.raw                 # the CuPy module, through the backend (gradtape imports no cupy)
        if s.kind == "reduction":               # (accumulated in the output's type, as cupy.sum)
            return cupy.ReductionKernel(s.in_params, s.out_params, s.operation, "a + b", "y = a", "0", s.name,
                                        preamble=s.preamble)
        return cupy.ElementwiseKernel(s.in_params, s.out_params, s.operation, s.name, preamble=s.preamble)

    def empty(self, shape, dtype):
        return self.backend.raw.empty(shape, dtype=dtype)

    def __call__(self, xp, *raws):
        if self._k is None:
            self._k = self.build(self.src)
        if self.src.kind == "reduction":
            return self._k(*raws)
        outs = [self.empty(shape, dt) for shape, dt in self.results]
        self._k(*raws, *outs)
        return outs[0] if len(outs) == 1 else tuple(outs)


class Captured:
    """``fn`` (an executable's ``fn(*raws) -> tuple of raws``, static shapes, no guards) replayed from a CUDA
    graph: the first call runs ``fn`` as it is (kernels compiled, the result returned); the second captures
    it on a side stream, into a memory pool of its own, and every call from then on copies the inputs into
    the captured buffers, launches the graph on the current stream and returns copies of the outputs (the
    captured buffers are rewritten by the next launch). The pool is only this graph's: blocks freed during
    the capture stay its (a later allocation elsewhere never gets an address the graph writes). A capture
    that fails (an op that synchronises with the host, an allocation capture refuses) leaves ``fn`` as the
    executable; ``reason`` says why.
    (Untested without a GPU: tests/test_jit_cuda_source.py's ``cuda`` tests run it where one is present.)"""

    def __init__(self, fn, backend):
        self.fn, self.backend = fn, backend
        self.calls, self.graph, self.reason = 0, None, None
        self._in = self._out = self._pool = None

    def __call__(self, *raws):
        self.calls += 1
        if self.graph is None:
            if self.calls != 2 or self.reason is not None:
                return self.fn(*raws)
            try:
                self._capture(raws)
            except Exception as e:      # noqa: BLE001 - any refusal of the capture: run uncaptured
                self.reason = f"{type(e).__name__}: {e}"       # (_capture sets nothing before it succeeds)
                return self.fn(*raws)
        for buf, r in zip(self._in, raws):
            buf[...] = r
        self.graph.launch()
        return tuple([o.copy() for o in self._out])

    def _capture(self, raws):
        cupy = self.backend.raw
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)
        stream.wait_event(cupy.cuda.get_current_stream().record())     # the inputs are written
        with cupy.cuda.using_allocator(pool.malloc), stream:
            static_in = [cupy.array(r, copy=True) for r in raws]
            self.fn(*static_in)                         # on this stream and pool: their blocks cached
            stream.begin_capture()
            try:
                static_out = self.fn(*static_in)
            finally:
                graph = stream.end_capture()
        stream.synchronize()
        self.graph, self._in, self._out, self._pool = graph, static_in, static_out, pool
