"""CuPy backend: devices "cuda:N". CuPy is imported only when this file is (``import gradtape`` never does).

* **Devices.** One backend per GPU (``"cuda"`` is ``"cuda:0"``). With one
  visible GPU there is nothing to switch and ``xp`` is a plain attribute (the
  fast path). With several, ``xp`` is a property that makes the backend's GPU
  CuPy's current device before handing out the namespace; every op's forward
  and every node's backward fetch ``bk.xp`` first, so the kernels, the
  operators in the rules (``ct * out``) and the arrays they allocate all run
  on the tensor's GPU. The switch is left in place (like
  ``cupy.cuda.Device(N).use()``), so the current device follows the last
  gradtape op; a ``with cupy.cuda.Device(k):`` block still restores its own
  device on exit. ``GRADTAPE_CUPY_DEVICE_GUARD=1`` forces the guarded path
  on one GPU (for tests).
* **Transfers.** ``asarray`` copies host data, other GPUs' arrays and
  ``__cuda_array_interface__`` objects onto this backend's GPU;
  ``from_dlpack`` is zero-copy (PyTorch/JAX CUDA tensors share memory).
* **Figures.** ``synchronize`` waits for the whole device;
  ``memory_stats`` reads CuPy's default memory pool for this GPU.
* **Fused kernels.** ``relu_vjp``, ``tanh_vjp``, ``sigmoid_vjp``,
  ``softplus_vjp`` and ``cross_entropy_vjp`` are ``cupy.ElementwiseKernel``
  overrides of the generic rules (one launch instead of 2-15; compiled on
  first use with ``--fmad=false`` so they round like the generic rules). Each
  returns None where it does not apply (a dtype other than float32/float64,
  mixed dtypes), and the rule then runs its generic code. Choose them with
  ``GRADTAPE_CUPY_FUSED=all|none|relu,tanh,...`` or ``backend.set_fused(...)``;
  ``benchmarks/gpu_bench.py`` times the MLP and the chain with and without.
"""
from __future__ import annotations

import os

try:
    import cupy as cp
    import array_api_compat.cupy as ccp
except ImportError:
    raise
except Exception as e:     # a broken CUDA install can raise other errors at import: report it as "not available"
    raise ImportError(f"cupy failed to import: {type(e).__name__}: {e}") from e

from .base import Backend, float16_accumulation, scatter_adds

_rt = cp.cuda.runtime
FUSED = ("relu", "tanh", "sigmoid", "softplus", "cross_entropy")


def device_count():
    try:
        return _rt.getDeviceCount()
    except Exception:  # no driver / no device
        return 0


def has_gpu():
    return device_count() > 0


# ---- scatter-adds (duplicate indices accumulate) ------------------------------------------------

# ---- fused backward kernels ---------------------------------------------------------------------
# Each computes what the generic rule computes, in one launch, operation for operation (no FMA
# contraction), so the results equal the generic path's to the last bit or within a few ulp
# (exp/log are the same CUDA functions CuPy's own kernels call). tests/test_cuda.py checks each.

_OPTS = ("--fmad=false",)
_k_relu = cp.ElementwiseKernel("T ct, T x", "T g", "g = x > T(0) ? ct : T(0)", "gradtape_relu_vjp", options=_OPTS)
_k_tanh = cp.ElementwiseKernel("T ct, T y", "T g", "g = ct * (T(1) - y * y)", "gradtape_tanh_vjp", options=_OPTS)
_k_sigmoid = cp.ElementwiseKernel("T ct, T y", "T g", "g = ct * (y * (T(1) - y))", "gradtape_sigmoid_vjp",
                                  options=_OPTS)
# softplus'(x) = sigmoid(x), the stable form of the generic rule: never exp of a positive number
_k_softplus = cp.ElementwiseKernel(
    "T ct, T x", "T g",
    "T e = exp(-fabs(x)); g = ct * (x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e))",
    "gradtape_softplus_vjp", options=_OPTS)
# mean softmax cross-entropy with integer labels: (softmax(x) - onehot(label)) * (ct / n), lse per row given;
# i is the flat index of the (C-contiguous, freshly allocated) output, so i % ncls is the class
_k_ce = cp.ElementwiseKernel(
    "T x, T lse, L label, T ct, T n, int64 ncls", "T g",
    "g = (exp(x - lse) - ((i % ncls) == (long long)label ? T(1) : T(0))) * (ct / n)",
    "gradtape_cross_entropy_vjp", options=_OPTS)
_k_finite = cp.ElementwiseKernel("T m", "T out", "out = isfinite(m) ? m : T(0)", "gradtape_finite_or_zero",
                                 options=_OPTS)
_FLOAT = "fd"


def _same_float(a, b):
    return a.dtype == b.dtype and a.dtype.char in _FLOAT


def _relu_vjp(ct, x):
    """ct where x > 0 else 0 (the rule's ``where``), one kernel."""
    if isinstance(ct, cp.ndarray) and _same_float(ct, x):
        return _k_relu(ct, x)
    return ct * (x > 0)


def _tanh_vjp(ct, out, x):
    """ct * (1 - out**2)."""
    if isinstance(ct, cp.ndarray) and _same_float(ct, out):
        return _k_tanh(ct, out)
    return None


def _sigmoid_vjp(ct, out, x):
    """ct * out * (1 - out)."""
    if isinstance(ct, cp.ndarray) and _same_float(ct, out):
        return _k_sigmoid(ct, out)
    return None


def _softplus_vjp(ct, out, x):
    """ct * sigmoid(x)."""
    if isinstance(ct, cp.ndarray) and _same_float(ct, x):
        return _k_softplus(ct, x)
    return None


def _cross_entropy_vjp(ct, out, x, labels):
    """Cotangent of the logits of mean softmax cross-entropy: (softmax(x) - onehot) * ct / rows.

    The log-sum-exp per row is computed as the generic rule does (shifted by the finite row max);
    everything after it is one kernel instead of about ten."""
    if not (isinstance(ct, cp.ndarray) and ct.ndim == 0 and _same_float(ct, x) and x.ndim >= 1
            and labels.shape == x.shape[:-1] and labels.dtype.kind in "iu"):
        return None
    m = _k_finite(cp.max(x, axis=-1, keepdims=True))
    lse = m + cp.log(cp.sum(cp.exp(x - m), axis=-1, keepdims=True))
    ncls = x.shape[-1]
    return _k_ce(x, lse, cp.expand_dims(labels, -1), ct, x.size // ncls, ncls)


_FUSED_FNS = {"relu": _relu_vjp, "tanh": _tanh_vjp, "sigmoid": _sigmoid_vjp, "softplus": _softplus_vjp,
              "cross_entropy": _cross_entropy_vjp}


def _fused_from_env():
    v = os.environ.get("GRADTAPE_CUPY_FUSED", "all").strip().lower()
    if v in ("", "all", "1"):
        return FUSED
    if v in ("none", "0"):
        return ()
    names = tuple(n.strip() for n in v.split(",") if n.strip())
    bad = [n for n in names if n not in FUSED]
    if bad:
        raise ValueError(f"GRADTAPE_CUPY_FUSED: unknown kernel(s) {bad}; expected 'all', 'none' or names from {FUSED}")
    return names


# ---- the backend ---------------------------------------------------------------------------------

class CupyBackend(Backend):
    """CuPy on GPU ``index``; see the module docstring."""

    name = "cupy"
    guarded = False

    def __init__(self, index):
        super().__init__(ccp, {**scatter_adds(cp), **float16_accumulation(ccp, cp)})
        self.index = index
        self.device = f"cuda:{index}"
        self.version = cp.__version__
        self.cp_device = cp.cuda.Device(index)
        self.fused = ()
        self.set_fused(_fused_from_env())

    # -- fused kernels --
    def set_fused(self, names):
        """Use the fused kernels ``names`` (True/"all": every one, False/None/"none": none); returns the old set.

        Where a kernel is off, its rule runs its generic (standard-only) code."""
        if names in (True, "all"):
            names = FUSED
        elif names in (False, None, "none"):
            names = ()
        names = tuple(names)
        for n in names:
            if n not in _FUSED_FNS:
                raise ValueError(f"unknown fused kernel {n!r}; expected names from {FUSED}")
        ns = self._namespace()
        for n in FUSED:
            key = n + "_vjp"
            setattr(ns, key, _FUSED_FNS[n] if n in names else None)    # None: the generic rule runs
        old, self.fused = self.fused, names
        return old

    def _namespace(self):
        return self.__dict__["xp"]

    # -- data --
    def asarray(self, obj, dtype=None, copy=None):
        if isinstance(obj, cp.ndarray) and obj.device.id != self.index:      # another GPU's array: copy it here
            if copy is False:
                raise ValueError(f"gradtape: copy=False, but the array lives on cuda:{obj.device.id}, not {self.device}")
            copy = True
        elif not isinstance(obj, (cp.ndarray, int, float, bool, complex, list, tuple)) \
                and not hasattr(obj, "__cuda_array_interface__"):
            import numpy as np
            obj = np.asarray(obj)            # strict arrays, memoryviews, CPU tensors...: through the host
        if not self.guarded:                 # one GPU: it is always the current device
            return ccp.asarray(obj, dtype=dtype, copy=copy)
        with self.cp_device:
            out = ccp.asarray(obj, dtype=dtype, copy=copy)
            if out.device.id != self.index:   # a __cuda_array_interface__ view of another GPU's memory
                out = ccp.asarray(out, copy=True)
            return out

    def to_numpy(self, arr):
        return cp.asnumpy(arr)

    def from_dlpack(self, obj):
        with self.cp_device:
            return cp.from_dlpack(obj)

    def peak_bytes(self, fn):
        """Peak bytes of CuPy's memory pool in use while fn runs (pool malloc/free events)."""
        from cupy.cuda import memory_hook

        class Peak(memory_hook.MemoryHook):
            name = "gradtape_peak"

            def __init__(self):
                self.now = self.peak = 0

            def malloc_postprocess(self, **kw):       # a block handed out by the pool
                self.now += kw["mem_size"]
                self.peak = max(self.peak, self.now)

            def free_postprocess(self, **kw):         # a block given back to the pool
                self.now -= kw["mem_size"]
        hook = Peak()
        with hook:
            fn()
            self.synchronize()
        return hook.peak

    def describe(self):
        """Lines describing the CUDA runtime and every visible device (``python -m gradtape info``)."""
        rt = cp.cuda.runtime
        n = rt.getDeviceCount()
        lines = [f"(CUDA runtime {rt.runtimeGetVersion()}, driver {rt.driverGetVersion()}): {n} device(s)"]
        for i in range(n):
            props = rt.getDeviceProperties(i)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            lines.append(f"'cuda:{i}': {name}, {props['totalGlobalMem'] / 2**30:.1f} GiB")
        return lines

    def synchronize(self):
        """Wait for all queued work on this GPU (every stream)."""
        self.cp_device.synchronize()

    def memory_stats(self):
        """CuPy's default pool on this GPU: bytes in arrays (``used_bytes``), held by the pool
        (``total_bytes``, of which ``free_bytes`` are cached for reuse), and the device's own figures."""
        pool = cp.get_default_memory_pool()
        with self.cp_device:
            free, total = _rt.memGetInfo()
            return {"device": self.device, "used_bytes": pool.used_bytes(), "total_bytes": pool.total_bytes(),
                    "free_bytes": pool.free_bytes(), "device_free_bytes": free, "device_total_bytes": total}

    def free_cached(self):
        """Give the pool's cached (unused) blocks on this GPU back to the driver."""
        with self.cp_device:
            cp.get_default_memory_pool().free_all_blocks()


class GuardedCupyBackend(CupyBackend):
    """Several GPUs: fetching ``xp`` (each op's forward, each node's backward) makes this GPU current."""

    guarded = True

    @property
    def xp(self):
        if _rt.getDevice() != self.index:
            _rt.setDevice(self.index)
        return self._xp

    @xp.setter
    def xp(self, ns):
        self._xp = ns

    def _namespace(self):
        return self._xp


def make(dev):
    index = int(dev.split(":")[1])
    n = device_count()
    if n == 0:
        raise RuntimeError(f"gradtape: device {dev!r}: CuPy {cp.__version__} is installed but sees no CUDA GPU "
                           f"(no driver, or CUDA_VISIBLE_DEVICES hides them); use device 'cpu'")
    if index >= n:
        raise ValueError(f"gradtape: device {dev!r} does not exist: {n} CUDA device(s) visible "
                         f"(cuda:0{'' if n == 1 else f' .. cuda:{n - 1}'})")
    guard = n > 1 or os.environ.get("GRADTAPE_CUPY_DEVICE_GUARD", "0") == "1"
    return (GuardedCupyBackend if guard else CupyBackend)(index)


def register(table, get):
    by_id = {}

    def resolve(a):
        i = a.device.id
        bk = by_id.get(i)
        if bk is None:
            bk = by_id[i] = get(f"cuda:{i}")
        return bk
    table[cp.ndarray] = resolve


# ---- random numbers on the GPU (gradtape.nn initialisers, Dropout); added for issue 6 ----

class _CupyRandom:
    """Backend.random for CuPy: cuRAND via ``cupy.random.RandomState(seed)``; dtype arguments are names."""

    def __init__(self, seed, device):
        with device:
            self._rs = cp.random.RandomState(seed)
        self._device = device

    def normal(self, shape, dtype="float64", mean=0.0, std=1.0):
        with self._device:
            return self._rs.normal(mean, std, tuple(shape), dtype=dtype)

    def uniform(self, shape, dtype="float64", low=0.0, high=1.0):
        with self._device:
            return self._rs.uniform(low, high, tuple(shape), dtype=dtype)

    def bernoulli(self, p, shape, dtype="float64"):
        with self._device:
            return (self._rs.random_sample(tuple(shape), dtype=cp.float32) < p).astype(dtype)

    def integers(self, low, high, shape):
        with self._device:
            return self._rs.randint(low, high, tuple(shape), dtype=cp.int64)

    def permutation(self, n):
        with self._device:
            return self._rs.permutation(n).astype(cp.int64)


CupyBackend.random = lambda self, seed=None: _CupyRandom(seed, self.cp_device)
