"""Backend adapters: one file per array library.

A backend instance stands for one (library, device) pair, so "same backend"
(``a._bk is b._bk``) means same library *and* same device. Each gives:

* ``xp``: the array-API namespace used by forward functions and first-order
  rules (array_api_compat's wrapper plus a few gradtape extras such as
  ``scatter_add``),
* ``device``: the gradtape device string (``"cpu"``, ``"cuda:0"``, ``"strict"``),
* ``asarray``/``to_numpy``/``synchronize``/``memory_stats``,
* ``overrides``: optional fused rules that replace a generic rule,
* ``random(seed)``: a seedable generator of random arrays (``normal``, ``uniform``, ``bernoulli``,
  ``integers``, ``permutation``), which the array API standard does not have.
"""
from __future__ import annotations

import importlib
import types

_BY_DEVICE = {}      # canonical device string -> Backend
_BY_TYPE = {}        # array type -> callable(array) -> Backend
_MODULES = {"cpu": "numpy_backend", "strict": "strict_backend", "cuda": "cupy_backend"}


# names of the optional fused kernels a backend may provide (rules look them up with getattr(xp, name, None))
FUSABLE = ("relu_vjp", "tanh_vjp", "sigmoid_vjp", "softplus_vjp", "cross_entropy_vjp")


class Backend:
    """Base class; subclasses fill in the library-specific parts."""

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

    def owns(self, arr):
        return backend_of(arr) is self

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


def canonical_device(device):
    """'cpu' | 'strict' | 'cuda' | 'cuda:N' -> canonical string ('cuda' -> 'cuda:0')."""
    if device is None:
        return None
    if isinstance(device, Backend):
        return device.device
    d = str(device).strip().lower()
    if d == "cuda":
        return "cuda:0"
    if d in ("cpu", "strict") or (d.startswith("cuda:") and d[5:].isdigit()):
        return d
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'strict', 'cuda' or 'cuda:N'")


def _load(kind):
    return importlib.import_module(f"{__name__}.{_MODULES[kind]}")


def get(device):
    """The Backend for a device string (imports its library on first use)."""
    dev = canonical_device(device)
    bk = _BY_DEVICE.get(dev)
    if bk is None:
        kind = dev.split(":")[0]
        try:
            mod = _load(kind)
        except ImportError as e:
            raise RuntimeError(f"device {device!r} needs its array library, which failed to import: {e}") from e
        bk = mod.make(dev)
        _BY_DEVICE[dev] = bk
        mod.register(_BY_TYPE, get)
    return bk


def register_type(typ, resolver):
    _BY_TYPE[typ] = resolver


def backend_of(arr):
    """The Backend owning a raw array, or None if no loaded backend knows its type."""
    r = _BY_TYPE.get(type(arr))
    if r is not None:
        return r(arr)
    mod = type(arr).__module__.split(".")[0]
    kind = {"numpy": "cpu", "array_api_strict": "strict", "cupy": "cuda"}.get(mod)
    if kind is None:
        return None
    get(kind if kind != "cuda" else "cuda:0")
    r = _BY_TYPE.get(type(arr))
    return r(arr) if r is not None else None


def available():
    """Names of the backends whose library imports here."""
    out = []
    for kind in ("cpu", "strict", "cuda"):
        try:
            mod = _load(kind)
            if kind == "cuda" and not mod.has_gpu():
                continue
            out.append(kind)
        except ImportError:
            pass
    return out
