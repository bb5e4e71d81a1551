"""The backend contract (:class:`Backend`) and what the backends share: host random numbers, scatter-adds.

A backend instance stands for one (library, device) pair, so "same backend" (``a.backend is b.backend``)
means same library *and* same device.
"""
from __future__ import annotations

import contextlib
import functools
import types

# names of the optional fused kernels a backend may provide (rules look them up with getattr(xp, name, None))
FUSABLE = ("relu_vjp", "tanh_vjp", "sigmoid_vjp", "softplus_vjp", "cross_entropy_vjp")


class Backend:
    """One array library on one device: the contract every backend fulfils.

    * ``xp``: the array-API namespace used by forward functions and first-order rules (the library's own, or
      array_api_compat's wrapper) plus gradtape's extras (``index_add``, ``take_add``, ``along_add``) and the
      optional fused VJP kernels ``<primitive>_vjp`` (None where absent; see ``FUSABLE``);
    * ``name``, ``device`` (the gradtape device string), ``raw`` (the unwrapped library);
    * ``asarray``, ``from_dlpack``, ``to_numpy`` (to the host), ``synchronize``, ``memory_stats``, ``random``.
    """

    name = "?"
    device = "?"
    fancy_setitem = True      # x[key] = v takes integer arrays and masks anywhere in key (not only a sole mask)

    def __init__(self, xp, extras=None):
        self.raw = xp
        ns = {k: getattr(xp, k) for k in dir(xp) if not k.startswith("__")}
        if hasattr(xp, "linalg"):
            ns["linalg"] = xp.linalg
        for name in FUSABLE:        # absent kernels are None: a failed getattr would cost an exception per op
            ns[name] = None
        ns.update(extras or {})
        self.xp = types.SimpleNamespace(**ns)
        self.overrides = {}

    def __repr__(self):
        return f"<gradtape backend {self.name} on {self.device}>"

    def asarray(self, obj, dtype=None, copy=None):
        """An array of this backend from Python data or another array (the array API's asarray)."""
        raise NotImplementedError

    def from_dlpack(self, obj):
        """Zero-copy import of a DLPack producer."""
        raise NotImplementedError

    def to_numpy(self, arr):
        """A NumPy array with the values of ``arr`` (a copy from a device)."""
        raise NotImplementedError

    def quiet(self):
        """A context in which the library does not warn about divide-by-zero or invalid results: the reverse
        pass runs in it, where inf and NaN are documented values of derivative rules (sqrt'(0) = +inf)."""
        return contextlib.nullcontext()

    def synchronize(self):
        pass

    def memory_stats(self):
        return {}

    def random(self, seed=None):
        """A seedable random generator making arrays of this backend (the array API has no RNG).

        The default draws with ``numpy.random.Generator`` (PCG64) on the host and moves the result
        here; a backend with a device RNG overrides it (CuPy)."""
        return HostRandom(seed, self.asarray)


class HostRandom:
    """Random arrays drawn with ``numpy.random.default_rng(seed)`` and converted by ``to`` (a backend's asarray).

    ``dtype`` arguments are dtype names ("float32", "float64"). NumPy is imported here, lazily, never by
    the core."""

    def __init__(self, seed, to):
        import numpy as np
        self._np = np
        self._gen = np.random.default_rng(seed)
        self._to = to

    def normal(self, shape, dtype="float64", mean=0.0, std=1.0):
        out = self._gen.standard_normal(tuple(shape), dtype=self._np.dtype(dtype))
        return self._to(out * self._np.asarray(std, dtype=out.dtype) + self._np.asarray(mean, dtype=out.dtype))

    def uniform(self, shape, dtype="float64", low=0.0, high=1.0):
        out = self._gen.random(tuple(shape), dtype=self._np.dtype(dtype))
        return self._to(out * self._np.asarray(high - low, dtype=out.dtype) + self._np.asarray(low, dtype=out.dtype))

    def bernoulli(self, p, shape, dtype="float64"):
        """1 with probability ``p``, else 0."""
        return self._to((self._gen.random(tuple(shape), dtype=self._np.float32) < p).astype(dtype))

    def integers(self, low, high, shape):
        return self._to(self._gen.integers(low, high, tuple(shape), dtype=self._np.int64))

    def snapshot(self):
        """A new stream that draws exactly what this one will draw next (this one is left alone)."""
        c = HostRandom.__new__(HostRandom)
        c._np, c._to = self._np, self._to
        c._gen = self._np.random.Generator(type(self._gen.bit_generator)())
        c._gen.bit_generator.state = self._gen.bit_generator.state
        return c

    def permutation(self, n):
        return self._to(self._gen.permutation(n).astype(self._np.int64))


def scatter_adds(lib):
    """index_add, take_add and along_add for a NumPy-like library with ``add.at`` (NumPy, CuPy).

    Each returns a copy of its first argument with values added at indexed positions, repeated
    indices accumulating: the transposes of getitem, take and take_along_axis."""
    def index_add(x, key, ct):
        out = lib.array(x, copy=True)
        lib.add.at(out, key, ct)
        return out

    def take_add(z, idx, v, axis):
        return index_add(z, (slice(None),) * (axis % z.ndim) + (idx,), v)

    def along_add(z, idx, v, axis):
        axis %= z.ndim
        key = tuple(idx if d == axis else lib.arange(idx.shape[d]).reshape([-1 if e == d else 1 for e in range(z.ndim)])
                    for d in range(z.ndim))
        return index_add(z, key, v)
    return {"index_add": index_add, "take_add": take_add, "along_add": along_add}


# the reductions and scans that accumulate: of a float16 array, in float32, returned in float16 (PyTorch's choice)
ACCUMULATING = ("sum", "prod", "mean", "var", "std", "cumulative_sum", "cumulative_prod")


def float16_accumulation(xp, lib):
    """The functions of ``ACCUMULATING`` for a library with float16 (NumPy, CuPy): a float16 input is reduced in
    float32 and the result rounded to float16 once, as PyTorch does (NumPy's own ``sum`` of float16 along a
    strided axis adds in float16 and stalls: 4,096 times 0.1 gives 256). Matrix products (``matmul``,
    ``vecdot``, ``tensordot``) are left to the library: NumPy and cuBLAS accumulate float16 products in
    float32 already. Other dtypes pay one identity test of the dtype."""
    f16 = lib.dtype(lib.float16)
    f32 = lib.float32

    def accumulating(f):
        def g(x, /, *args, **kw):
            if x.dtype is not f16 or kw.get("dtype") not in (None, f16, lib.float16):
                return f(x, *args, **kw)
            if "dtype" in kw:
                kw["dtype"] = None
            return f(x.astype(f32), *args, **kw).astype(f16)
        return functools.wraps(f)(g)
    return {name: accumulating(getattr(xp, name)) for name in ACCUMULATING}


def generic_take_add(xp, z, idx, v, axis):
    """z + (v scattered to positions idx along axis, repeats accumulating), standard functions only.

    Used by backends without a scatter-add (array-api-strict); O(len(idx) * z.shape[axis])."""
    n = z.shape[axis]
    idx = xp.where(idx < 0, idx + n, idx)        # a one-hot never matches a negative index
    onehot = xp.astype(xp.reshape(idx, (-1, 1)) == xp.reshape(xp.arange(n), (1, n)), v.dtype)
    vm = xp.moveaxis(v, axis, -1)
    return z + xp.moveaxis(xp.matmul(vm, onehot), -1, axis)


def generic_along_add(xp, z, idx, v, axis):
    """z + scatter of v along ``axis`` at take_along_axis positions idx (standard functions only)."""
    n = z.shape[axis]
    zi = xp.moveaxis(xp.where(idx < 0, idx + n, idx), axis, -1)
    vm = xp.moveaxis(v, axis, -1)
    onehot = xp.astype(xp.expand_dims(zi, axis=-1) == xp.arange(n), v.dtype)     # (..., k, n)
    add = xp.sum(xp.expand_dims(vm, axis=-1) * onehot, axis=-2)
    return z + xp.moveaxis(add, -1, axis)
