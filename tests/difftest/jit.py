"""The differential fuzzer's programs through ``gt.jit``: random programs against the same oracles (PyTorch
float64, or JAX), by the routes a jitted function offers.

``check(prog, backend)`` compares, in this order:

jit           ``gt.jit(program)`` outputs (first call: trace and compile; second call: the cached executable)
jit donated   ``gt.jit(program, donate_argnums=all)``: arrays the caller still holds are never written; with
              tensors that are their arrays' only holders the kernels may write into them (same outputs)
jit(loss)     ``gt.jit`` of the loss L below itself (regions summed whole: a reduction kernel in the CUDA lowering)
grad(jit)     ``gt.grad`` of the loss L = sum_i sum(w_i * out_i) over the jitted program (its jitted vjp rule)
jit(grad)     ``gt.jit(gt.grad(L))``: one compiled graph of the forward and the reverse pass
double        reverse over reverse through the jitted function: grad of sum(grad(L) * v) (every 3rd seed)

Command line (long runs)::

    python -m tests.difftest.jit --n 200 --kind general --backend cpu --seed 1
    python -m tests.difftest.jit --n 200 --backend cpu --strip-vm     (every float64 region by the interpreter)
    python -m tests.difftest.jit --n 200 --backend cpu --cuda-host    (the CUDA lowering, its source compiled
                                                                         as host C++: tests/cuda_host.py)
    python -m tests.difftest.jit --n 200 --backend cpu --cuda-host --nvcc   (and every kernel source of the run
                                                   compiled for the device by nvcc, float32 never promoted)
    python -m tests.difftest.jit --n 200 --backend cpu --blas --only-matmul   (every 2-D float matmul through
                                                   MKL, gradtape/_jit/blas.py; only programs with a matmul)
    python -m tests.difftest.jit --n 200 --backend cpu --only-op nn.cross_entropy   (the programs with a
                                                   cross-entropy: its row kernels, gradtape/_jit/rows.py)
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings

import numpy as np

from . import programs as P
from . import runner as R


def _gt():
    import gradtape as gt
    return gt


def _jitted(prog, backend):
    GL = R.lib("gt", backend)
    gt = _gt()
    return gt.jit(lambda *a: tuple(P.run(prog, GL, list(a))))


def _loss_of(f, ref, backend):
    """The fuzzer's loss (runner's: sum of each tracked output times its fixed weights) of f's outputs."""
    gt = _gt()
    return lambda *a: R._loss(gt, f(*a), ref.W, ref.tracked, backend)

def check(prog, backend="strict"):
    """A :class:`tests.difftest.runner.Result` of prog through gt.jit on ``backend``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = R.jax_ref(prog) if prog.oracle == "jax" else R.torch_ref(prog, hessian=False)
    except R.Invalid as e:
        return R.Result("invalid", "oracle", str(e), prog, backend)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _checks(prog, backend, ref, *R.tol(prog))
    except R.Mismatch as m:
        return R.Result("mismatch", m.check, m.detail, prog, backend)
    return R.Result("ok", prog=prog, backend=backend)


def _checks(prog, backend, ref, rt, at):
    gt = _gt()
    xs = [gt.asarray(a, device=backend) for a in prog.arrays()]
    jf = _jitted(prog, backend)
    for call in ("first call", "cached call"):
        outs = R._guard(f"jit ({call})", lambda: jf(*xs))
        if len(outs) != len(ref.outs):
            raise R.Mismatch("jit", f"{len(outs)} outputs, oracle {len(ref.outs)}")
        for i, (o, w) in enumerate(zip(outs, ref.outs)):
            R.compare(f"jit ({call}): output {prog.outputs[i]}", o, w, rt, at)
    if jf.cache_info().traces != 1:
        raise R.Mismatch("jit", f"traced {jf.cache_info().traces} times for one signature")
    _donated(prog, backend, ref, rt, at)
    if not ref.has_grad:
        return
    eager = P.run(prog, R.lib("gt", backend), [x.requires_grad_() for x in
                                                [gt.asarray(a, device=backend) for a in prog.arrays()]])
    ref.tracked = [t and o.requires_grad for o, t in zip(eager, ref.tracked)]
    if not any(ref.tracked):
        return
    _jit_loss(prog, backend, ref, xs, rt, at)
    n = len(xs)
    nums = tuple(range(n))
    grads = ref.grads[:n]
    for route, fn in (("grad(jit)", lambda: gt.grad(_loss_of(jf, ref, backend), argnums=nums)(*xs)),
                      ("jit(grad)", lambda: gt.jit(gt.grad(_loss_of(_eager(prog, backend), ref, backend),
                                                           argnums=nums))(*xs))):
        for nm, g, w in zip(list(prog.inputs), R._guard(route, fn), grads):
            R.compare(f"{route}: gradient w.r.t. {nm}", g, w, rt, at)
    if prog.seed % 3 == 0:
        V = [gt.asarray(v, device=backend) for v in ref.V]

        def dbl():
            def s(*a):
                gs = gt.grad(_loss_of(jf, ref, backend), argnums=nums)(*a)
                terms = [gt.sum(g * v) for g, v in zip(gs, V)]
                out = terms[0]
                for t in terms[1:]:
                    out = out + t
                return out
            return gt.grad(s, argnums=nums)(*xs)
        for nm, g, w in zip(list(prog.inputs), R._guard("double", dbl), ref.hvp):
            R.compare(f"double (reverse over reverse through jit): {nm}", g, w, rt * 10, at * 10)


def _jit_loss(prog, backend, ref, xs, rt, at):
    """``gt.jit(L)``: the loss itself compiled (its weighted sums of the outputs, where a region summed whole is
    one reduction), against the oracle's outputs weighted and summed in float64 (to the terms' scale)."""
    gt = _gt()
    got = R._guard("jit(loss)", lambda: gt.jit(_loss_of(_eager(prog, backend), ref, backend))(*xs))
    terms = [np.asarray(w, dtype=np.float64) * np.asarray(o, dtype=np.float64)
             for o, w, t in zip(ref.outs, ref.W, ref.tracked) if t]
    want = sum(float(np.sum(t)) for t in terms)
    scale = max(1.0, sum(float(np.sum(np.abs(t))) for t in terms))
    g = float(gt.to_numpy(got))
    if not (abs(g - want) <= at * scale + rt * abs(want) or (np.isnan(g) and np.isnan(want))):
        raise R.Mismatch("jit(loss)", f"gt.jit of the loss gave {g!r}, the oracle's outputs {want!r}")


def _donated(prog, backend, ref, rt, at):
    """``gt.jit(program, donate_argnums=every argument)``: first with tensors around arrays this check still
    holds (the call must copy them, never write them), then with tensors that are their arrays' only
    holders (the kernels may write into them)."""
    gt = _gt()
    GL = R.lib("gt", backend)
    n = len(prog.inputs)
    jd = gt.jit(lambda *a: tuple(P.run(prog, GL, list(a))), donate_argnums=tuple(range(n)))
    held = [gt.asarray(a, device=backend) for a in prog.arrays()]
    kept = [gt.to_numpy(h).copy() for h in held]
    raws = [h.data for h in held]
    for call, xs in (("held arrays", [gt.asarray(r) for r in raws] if backend == "cpu" else held),
                     ("sole holders", [gt.asarray(a.copy(), device=backend) for a in prog.arrays()])):
        outs = R._guard(f"jit donated ({call})", lambda: jd(*xs))
        for i, (o, w) in enumerate(zip(outs, ref.outs)):
            R.compare(f"jit donated ({call}): output {prog.outputs[i]}", o, w, rt, at)
    for nm, r, k in zip(prog.inputs, raws, kept):
        if not np.array_equal(gt.to_numpy(gt.asarray(r)), k, equal_nan=True):
            raise R.Mismatch("jit donated", f"the donated call wrote into {nm}'s array, which the caller "
                             f"still holds")


def _eager(prog, backend):
    GL = R.lib("gt", backend)
    return lambda *a: tuple(P.run(prog, GL, list(a)))


@contextlib.contextmanager
def strip_vm_forced(specialize=False):
    """Every float64 region of a NumPy ``gt.jit`` lowering run by the strip interpreter
    (gradtape/_jit/strip_vm.py), not only those with many vecmath calls: the interpreter of every opcode (one
    compile), or with ``specialize`` each program's own opcodes' (as unforced; one compile per opcode set)."""
    from gradtape._jit import numba_lower as NL
    from gradtape._jit import strip_vm as SV
    old = NL.VM_TAPE_WORK, NL.VM_TAPE_MIN, NL.VM_MAX_CALLS, SV.SPECIALIZE
    NL.VM_TAPE_WORK, NL.VM_TAPE_MIN, NL.VM_MAX_CALLS, SV.SPECIALIZE = 0, 0, -1, specialize
    try:
        yield
    finally:
        NL.VM_TAPE_WORK, NL.VM_TAPE_MIN, NL.VM_MAX_CALLS, SV.SPECIALIZE = old


@contextlib.contextmanager
def blas_forced():
    """Every 2-D float matmul of a NumPy ``gt.jit`` lowering through MKL (gradtape/_jit/blas.py), however small
    (no size threshold). Raises RuntimeError where MKL is not installed."""
    import os
    from gradtape._jit import blas
    old_env, old = os.environ.get("GRADTAPE_BLAS"), (blas._MIN_FLOPS, blas._MIN_SIDE)
    os.environ["GRADTAPE_BLAS"] = "mkl"          # (on any CPU: auto takes it on Intel's only)
    blas._MIN_FLOPS, blas._MIN_SIDE = 0, 1
    try:
        if blas.library() is None:
            raise RuntimeError(f"--blas: MKL not loaded ({blas.reason})")
        yield
    finally:
        blas._MIN_FLOPS, blas._MIN_SIDE = old
        if old_env is None:
            os.environ.pop("GRADTAPE_BLAS", None)
        else:
            os.environ["GRADTAPE_BLAS"] = old_env


def has_op(prog, name):
    """Whether ``prog`` has an instruction of op ``name`` (``nn.cross_entropy``...)."""
    return any(ins.op == name for ins in prog.instrs)


def has_matmul(prog):
    """Whether ``prog`` multiplies matrices (a ``matmul`` instruction)."""
    return has_op(prog, "matmul")


def _cuda_host():
    from tests.cuda_host import host_lowering
    return host_lowering()


@contextlib.contextmanager
def device_sources():
    """The distinct kernel sources the CUDA lowering makes inside (a list, filled as the block runs), with each
    region's dtype: [(KernelSource, ftype)]."""
    from tests import cuda_host
    seen, out = set(), []
    old = cuda_host.HostKernel.__init__

    def init(self, region, graph, name, backend):
        old(self, region, graph, name, backend)
        if self.src.text() not in seen:
            seen.add(self.src.text())
            out.append((self.src, region.ftype))
    cuda_host.HostKernel.__init__ = init
    try:
        yield out
    finally:
        cuda_host.HostKernel.__init__ = old


def nvcc_problems(sources):
    """What is wrong with ``sources`` ([(KernelSource, ftype)]) compiled for the device: nvcc's messages, or
    the float32 kernels whose PTX converts a float to double; [] where nothing."""
    from tests import cuda_host
    if not sources:
        return []
    try:
        ptx = cuda_host.device_compile([s for s, _ in sources])
    except RuntimeError as e:
        return [str(e)]
    return [f"{sources[k][0].name} (float32) converts to double:\n{sources[k][0].text()}" for k, t in ptx.items()
            if sources[k][1] == "float32" and "cvt.f64.f32" in t]


def run(seeds, kind="general", backend="strict", only=None):
    """(counts, mismatching results) over the programs of ``seeds`` (those ``only(prog)`` keeps, if given)."""
    counts, bad = {"ok": 0, "invalid": 0, "mismatch": 0}, []
    for s in seeds:
        prog = P.generate(s, kind)
        if only is not None and not only(prog):
            continue
        r = check(prog, backend)
        counts[r.status] += 1
        if r.status == "mismatch":
            bad.append(r)
    return counts, bad


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.difftest.jit", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--kind", choices=P.KINDS, default="general")
    ap.add_argument("--backend", choices=("cpu", "strict"), default="strict")
    ap.add_argument("--seed", type=int, default=0, help="first seed; programs use seed, seed+1, ...")
    ap.add_argument("--max-report", type=int, default=10)
    ap.add_argument("--strip-vm", action="store_true", help="every float64 region through the strip interpreter "
                    "(--backend cpu)")
    ap.add_argument("--specialize", action="store_true", help="with --strip-vm: the interpreter of each "
                    "program's opcodes, as unforced (a compile per opcode set), not the one of all")
    ap.add_argument("--cuda-host", action="store_true", help="NumPy regions through the CUDA lowering, its kernels "
                    "compiled as host C++ (tests/cuda_host.py; --backend cpu)")
    ap.add_argument("--nvcc", action="store_true", help="with --cuda-host: every kernel source of the run also "
                    "compiled for the device by nvcc (tests/cuda_host.py: device_compile)")
    ap.add_argument("--blas", action="store_true", help="every 2-D float matmul through MKL, however small "
                    "(gradtape/_jit/blas.py; --backend cpu)")
    ap.add_argument("--only-matmul", action="store_true", help="only the programs with a matmul instruction")
    ap.add_argument("--only-op", metavar="OP", help="only the programs with an instruction of OP (nn.cross_entropy: "
                    "the row kernels of gradtape/_jit/rows.py)")
    a = ap.parse_args(argv)
    t0 = time.time()
    ctx = (strip_vm_forced(a.specialize) if a.strip_vm else _cuda_host() if a.cuda_host else blas_forced() if a.blas
           else contextlib.nullcontext())
    if a.nvcc and not a.cuda_host:
        ap.error("--nvcc needs --cuda-host")
    with ctx, (device_sources() if a.nvcc else contextlib.nullcontext([])) as sources:
        only = (has_matmul if a.only_matmul else (lambda prog: has_op(prog, a.only_op)) if a.only_op else None)
        counts, bad = run(range(a.seed, a.seed + a.n), a.kind, a.backend, only)
    for r in bad[:a.max_report]:
        print(r.report() + "\n" + "=" * 100, flush=True)
    problems = nvcc_problems(sources) if a.nvcc else []
    for p in problems[:a.max_report]:
        print(p + "\n" + "=" * 100, flush=True)
    print(f"{sum(counts.values())} {a.kind} programs (of {a.n} seeds) through gt.jit on {a.backend}: {counts} "
          f"in {time.time() - t0:.0f}s" + (f"; {len(sources)} kernel sources through nvcc: {len(problems)} problems"
                                            if a.nvcc else ""))
    return 1 if bad or problems else 0


if __name__ == "__main__":
    sys.exit(main())
