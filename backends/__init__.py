"""Backend adapters: one file per array library (numpy.py, strict.py, cupy.py), the contract they
fulfil (base.py), host helpers for the core (host.py: repr, .npz, the JSON codec), and this registry
(device string -> backend, array type -> backend). Each backend gives:

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

from .base import (FUSABLE, Backend, HostRandom, generic_along_add, generic_take_add,  # noqa: F401
                   scatter_adds)

_BY_DEVICE = {}      # canonical device string -> Backend
_BY_TYPE = {}        # array type -> callable(array) -> Backend
_MODULES = {"cpu": "numpy", "strict": "strict", "cuda": "cupy"}


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
