"""CuPy backend: devices "cuda:N". CuPy is imported only when this file is."""
import cupy as cp
import array_api_compat.cupy as ccp

from . import Backend


def has_gpu():
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver / no device
        return False


def _index_add(x, key, ct):
    out = cp.array(x, copy=True)
    cp.add.at(out, key, ct)
    return out


def _take_add(z, idx, v, axis):
    out = cp.array(z, copy=True)
    cp.add.at(out, (slice(None),) * (axis % z.ndim) + (idx,), v)
    return out


def _along_add(z, idx, v, axis):
    out = cp.array(z, copy=True)
    axis %= z.ndim
    key = tuple(idx if d == axis else cp.arange(idx.shape[d]).reshape([-1 if e == d else 1 for e in range(z.ndim)])
                for d in range(z.ndim))
    cp.add.at(out, key, v)
    return out


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, index):
        super().__init__(ccp, {"index_add": _index_add, "take_add": _take_add, "along_add": _along_add,
                          "relu_vjp": _relu_vjp})
        self.index = index
        self.device = f"cuda:{index}"
        self.version = cp.__version__
        self.cp_device = cp.cuda.Device(index)

    def asarray(self, obj, dtype=None, copy=None):
        with self.cp_device:
            if hasattr(obj, "__cuda_array_interface__") or isinstance(obj, cp.ndarray):
                return ccp.asarray(obj, dtype=dtype, copy=copy)
            import numpy as np
            host = np.asarray(obj) if not isinstance(obj, (int, float, bool, complex, list, tuple)) else obj
            return ccp.asarray(host, dtype=dtype, copy=copy)

    def to_numpy(self, arr):
        return cp.asnumpy(arr)

    def from_dlpack(self, obj):
        with self.cp_device:
            return cp.from_dlpack(obj)

    def synchronize(self):
        with self.cp_device:
            cp.cuda.get_current_stream().synchronize()

    def memory_stats(self):
        pool = cp.get_default_memory_pool()
        return {"used_bytes": pool.used_bytes(), "total_bytes": pool.total_bytes()}


def _relu_vjp(ct, x):
    """ct where x > 0 else 0, as a mask product (8x faster than where() with a random mask)."""
    return ct * (x > 0)


def make(dev):
    if not has_gpu():
        raise ImportError("CuPy imported but no CUDA device is visible")
    return CupyBackend(int(dev.split(":")[1]))


def register(table, get):
    table[cp.ndarray] = lambda a: get(f"cuda:{a.device.id}")


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
