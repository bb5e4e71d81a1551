"""array-api-strict backend: device "strict". Proves the core uses only the standard."""
import array_api_strict as xs

from . import Backend

xs.set_array_api_strict_flags(api_version="2024.12")


def _index_add(x, key, ct):
    """Generic (standard-only) x[key] += ct with accumulation of duplicates.

    Integer-array keys are handled with a one-hot matrix product, which is
    O(n*m) but uses only standard functions."""
    out = xs.asarray(x, copy=True)
    flat = xs.reshape(xs.arange(x.size if x.ndim else 1, dtype=xs.int64), x.shape)
    pos = xs.reshape(flat[key], (-1,))
    vals = xs.reshape(xs.broadcast_to(ct, flat[key].shape), (-1,))
    if pos.shape[0] == 0:
        return out
    onehot = xs.astype(xs.reshape(pos, (-1, 1)) == xs.reshape(xs.arange(x.size, dtype=xs.int64), (1, -1)), ct.dtype)
    add = xs.reshape(xs.matmul(xs.reshape(vals, (1, -1)), onehot), x.shape)
    return out + add


class StrictBackend(Backend):
    name = "array_api_strict"
    device = "strict"

    def __init__(self):
        super().__init__(xs, {"index_add": _index_add})
        self.version = xs.__version__

    def asarray(self, obj, dtype=None, copy=None):
        return xs.asarray(obj, dtype=dtype, copy=copy)

    def to_numpy(self, arr):
        import numpy as np
        return np.asarray(xs.asarray(arr, copy=True)._array) if hasattr(arr, "_array") else np.asarray(arr)

    def from_dlpack(self, obj):
        return xs.from_dlpack(obj)


def make(dev):
    return StrictBackend()


def register(table, get):
    bk = get("strict")
    table[type(xs.asarray(0.0))] = lambda a: bk
