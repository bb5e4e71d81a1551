"""The CUDA lowering's generated source run on the host, for the CPU suite and the differential fuzzer.

:class:`HostKernel` stands in for :class:`gradtape._jit.cuda_lower.CudaKernel`: each region's
:class:`~gradtape._jit.cuda_lower.KernelSource` (the ``__device__`` function and its helpers, exactly the
text CuPy would get) is compiled by the host C++ compiler with ``__device__`` defined away and ``<cmath>``'s
float and double overloads in scope (as CUDA's device math has them), into a shared library called through
ctypes. Its arguments are checked and broadcast as ``cupy.ElementwiseKernel`` does with typed parameters
(dtypes exactly those declared, outputs given, inputs broadcast to the outputs' shape). So the templates,
the parameter lists and the lowering's glue (regions, the rewrite, the plan) are run on every elementwise
primitive without a GPU; CuPy itself, NVRTC and the device's libm are not.

:func:`host_lowering` makes ``gt.jit`` on NumPy lower through it (``compile_graph`` -> the CUDA lowering with
this kernel): ``python -m tests.difftest.jit --cuda-host``.

Only the generated text is compiled (never data: literals are validated by ``scalar.literal``). The
libraries go to a temporary directory, one per source text.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from gradtape._jit import cuda_lower, lower

CXX = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
_CT = {"float64": "double", "float32": "float", "bool": "bool"}
_DIR = None
_LIBS = {}


def _params(text):
    """[(dtype, name)] of a CuPy parameter list ("float64 x0, bool x1")."""
    out = []
    for p in filter(None, (t.strip() for t in text.split(","))):
        dt, name = p.split()
        if dt not in _CT or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"cuda_host: unexpected parameter {p!r}")
        out.append((dt, name))
    return out


def driver(src):
    """The C++ text of ``src`` (a KernelSource) with an ``extern "C"`` loop calling its operation per element
    (a reduction's: its map expression summed, in element order, in the output's type, as CuPy's reduce_type
    defaults)."""
    ins, outs = _params(src.in_params), _params(src.out_params)
    lines = [f"        const {_CT[dt]} {v} = ((const {_CT[dt]}*)a[{k}])[i];" for k, (dt, v) in enumerate(ins)]
    head = "#define __device__\n#include <cmath>\nusing namespace std;\n" + src.preamble
    if src.kind == "reduction":
        (dt, v), = outs
        t = _CT[dt]
        return (head + f"\nextern \"C\" void gt_host_run(long n, void** a) {{\n    {t} acc = ({t})0;\n"
                "    for (long i = 0; i < n; i++) {\n" + "\n".join(lines) +
                f"\n        acc = acc + ({t})({src.operation});\n    }}\n    *(({t}*)a[{len(ins)}]) = acc;\n}}\n")
    lines += [f"        {_CT[dt]}& {v} = (({_CT[dt]}*)a[{len(ins) + k}])[i];" for k, (dt, v) in enumerate(outs)]
    return (head + "\nextern \"C\" void gt_host_run(long n, void** a) {\n    for (long i = 0; i < n; i++) {\n" +
            "\n".join(lines) + f"\n        {src.operation}\n    }}\n}}\n")


def compile_source(src):
    """The ctypes function ``gt_host_run(n, void** arrays)`` of ``src``, compiled once per text."""
    global _DIR
    text = driver(src)
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    fn = _LIBS.get(key)
    if fn is not None:
        return fn
    if CXX is None:
        raise RuntimeError("cuda_host: no C++ compiler (g++ or c++) on PATH")
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="gradtape-cuda-host-")
    cpp, so = os.path.join(_DIR, key + ".cpp"), os.path.join(_DIR, key + ".so")
    with open(cpp, "w") as f:
        f.write(text)
    # -ffp-contract=off: no fused multiply-adds the NumPy reference does not make either
    r = subprocess.run([CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", so, cpp],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"cuda_host: the generated source of {src.name} does not compile:\n{r.stderr[-3000:]}"
                           f"\n---- source:\n{text}")
    fn = ctypes.CDLL(so).gt_host_run
    fn.argtypes, fn.restype = [ctypes.c_long, ctypes.POINTER(ctypes.c_void_p)], None
    _LIBS[key] = fn
    return fn


class ElementwiseKernel:
    """A host ``cupy.ElementwiseKernel`` of typed parameters: ``k(*inputs, *outputs)``."""

    def __init__(self, src):
        self.src, self.fn = src, compile_source(src)
        self.ins, self.outs = _params(src.in_params), _params(src.out_params)

    def __call__(self, *arrays):
        if len(arrays) != len(self.ins) + len(self.outs):
            raise TypeError(f"{self.src.name}: {len(arrays)} arguments for {len(self.ins)} inputs and "
                            f"{len(self.outs)} outputs")
        xs, os_ = arrays[:len(self.ins)], arrays[len(self.ins):]
        shape = os_[0].shape
        for (dt, v), o in zip(self.outs, os_):
            if not isinstance(o, np.ndarray) or o.dtype != np.dtype(dt) or o.shape != shape or not o.flags.c_contiguous:
                raise TypeError(f"{self.src.name}: output {v} must be a contiguous {dt} array of shape {shape}")
        held = [np.ascontiguousarray(np.broadcast_to(x, shape)) for x in self._inputs(xs)]   # (or ValueError)
        ptrs = (ctypes.c_void_p * (len(held) + len(os_)))(*[a.ctypes.data for a in held + list(os_)])
        self.fn(int(np.prod(shape, dtype=np.int64)), ptrs)

    def _inputs(self, xs):
        """The inputs as arrays of exactly their declared dtypes (NumPy's 0-d results, numpy scalars, as 0-d
        arrays: CuPy's are 0-d arrays), else TypeError."""
        out = []
        for (dt, v), x in zip(self.ins, xs):
            if isinstance(x, np.generic):
                x = np.asarray(x)
            if not isinstance(x, np.ndarray) or x.dtype != np.dtype(dt):
                raise TypeError(f"{self.src.name}: input {v} is {getattr(x, 'dtype', type(x).__name__)}, "
                                f"declared {dt}")
            out.append(x)
        return out


class ReductionKernel(ElementwiseKernel):
    """A host ``cupy.ReductionKernel`` summing its map expression over the inputs' broadcast: ``k(*inputs)``,
    a 0-d array of the output's type."""

    def __call__(self, *arrays):
        if len(arrays) != len(self.ins):
            raise TypeError(f"{self.src.name}: {len(arrays)} arguments for {len(self.ins)} inputs")
        arrays = self._inputs(arrays)
        shape = np.broadcast_shapes(*[x.shape for x in arrays])
        held = [np.ascontiguousarray(np.broadcast_to(x, shape)) for x in arrays]
        out = np.zeros((), dtype=self.outs[0][0])
        ptrs = (ctypes.c_void_p * (len(held) + 1))(*[a.ctypes.data for a in held + [out]])
        self.fn(int(np.prod(shape, dtype=np.int64)), ptrs)
        return out


class HostKernel(cuda_lower.CudaKernel):
    """:class:`~gradtape._jit.cuda_lower.CudaKernel` with the host stand-ins of ElementwiseKernel and empty."""

    def build(self, s):
        return ReductionKernel(s) if s.kind == "reduction" else ElementwiseKernel(s)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)


@contextlib.contextmanager
def host_lowering():
    """``gt.jit`` on NumPy lowered by the CUDA lowering with :class:`HostKernel` (instead of numba's)."""
    old = lower.compile_graph

    def compile_graph(graph, backend, *, fuse=True, donated=frozenset()):
        if fuse and backend.name == "numpy":
            return lower._lower_cuda(graph, backend, kernel=HostKernel)
        return old(graph, backend, fuse=fuse, donated=donated)
    lower.compile_graph = compile_graph
    try:
        yield
    finally:
        lower.compile_graph = old


# ---- the same sources compiled for the device (nvcc, no GPU needed) ----------------------------------------------

NVCC = shutil.which("nvcc") or next((p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


def device_unit(srcs):
    """One CUDA translation unit holding every KernelSource of ``srcs`` as a ``__global__`` kernel
    ``gt_dev_<k>`` (each preamble in a namespace of its own), called as ``cupy.ElementwiseKernel`` calls its
    operation: the inputs as const values of their declared types, the outputs as references (a reduction:
    its map expression stored per element). No headers: NVRTC, which CuPy uses, has none either, only the
    device math built in."""
    parts = []
    for k, s in enumerate(srcs):
        ins, outs = _params(s.in_params), _params(s.out_params)
        args = ([f"const {_CT[dt]}* __restrict__ p_{v}" for dt, v in ins] +
                [f"{_CT[dt]}* __restrict__ p_{v}" for dt, v in outs] + ["long long n"])
        body = [f"    const {_CT[dt]} {v} = p_{v}[i];" for dt, v in ins]
        if s.kind == "reduction":
            (dt, v), = outs
            body.append(f"    p_{v}[i] = ({_CT[dt]})({s.operation});")
        else:
            body += [f"    {_CT[dt]}& {v} = p_{v}[i];" for dt, v in outs] + [f"    {s.operation}"]
        parts.append(f"namespace gt_s{k} {{\n{s.preamble}\n}}\n"
                     f"extern \"C\" __global__ void gt_dev_{k}({', '.join(args)}) {{\n    using namespace gt_s{k};\n"
                     f"    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n    if (i >= n) return;\n"
                     + "\n".join(body) + "\n}\n")
    return "\n".join(parts)


def device_compile(srcs, arch="sm_90"):
    """The PTX of :func:`device_unit` of ``srcs`` compiled by nvcc for ``arch`` (RuntimeError with nvcc's
    messages where it does not compile): {k: PTX text of kernel gt_dev_<k>}."""
    if NVCC is None:
        raise RuntimeError("cuda_host: no nvcc (the CUDA toolkit) on PATH")
    d = tempfile.mkdtemp(prefix="gradtape-nvcc-")
    cu, ptx = os.path.join(d, "kernels.cu"), os.path.join(d, "kernels.ptx")
    with open(cu, "w") as f:
        f.write(device_unit(srcs))
    r = subprocess.run([NVCC, f"-arch={arch}", "-std=c++17", "--ptx", "-o", ptx, cu], capture_output=True, text=True)
    try:
        if r.returncode:
            raise RuntimeError(f"cuda_host: nvcc rejects the generated sources:\n{r.stderr[-4000:]}")
        with open(ptx) as f:
            text = f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    out = {}
    for m in re.finditer(r"\.entry gt_dev_(\d+)\(.*?\n\}\n", text, re.S):
        out[int(m.group(1))] = m.group(0)
    return out
