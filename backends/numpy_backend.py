"""NumPy backend: device "cpu"."""
import numpy as np
import array_api_compat.numpy as cnp

from . import Backend


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"

    def __init__(self):
        super().__init__(cnp, {"index_add": _index_add, "take_add": _take_add, "along_add": _along_add})
        self.version = np.__version__

    def asarray(self, obj, dtype=None, copy=None):
        return cnp.asarray(obj, dtype=dtype, copy=copy)

    def to_numpy(self, arr):
        return np.asarray(arr)

    def from_dlpack(self, obj):
        return np.from_dlpack(obj)

    def memory_stats(self):
        return {}


def _index_add(x, key, ct):
    """out = copy of x with ct added at x[key] (duplicate integer indices accumulate)."""
    out = np.array(x, copy=True)
    np.add.at(out, key, ct)
    return out


def _take_add(z, idx, v, axis):
    out = np.array(z, copy=True)
    np.add.at(out, (slice(None),) * (axis % z.ndim) + (idx,), v)
    return out


def _along_add(z, idx, v, axis):
    out = np.array(z, copy=True)
    axis %= z.ndim
    key = tuple(idx if d == axis else np.arange(idx.shape[d]).reshape([-1 if e == d else 1 for e in range(z.ndim)])
                for d in range(z.ndim))
    np.add.at(out, key, v)
    return out


def make(dev):
    return NumpyBackend()


def register(table, get):
    bk = get("cpu")
    table[np.ndarray] = lambda a: bk
    for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64, np.complex128):
        table[t] = lambda a: bk
