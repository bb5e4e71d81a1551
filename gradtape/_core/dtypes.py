"""gradtape's backend-neutral dtypes and their mapping to backend dtypes.

>>> from gradtape._core.dtypes import DTYPES, dtype_name
>>> DTYPES["float32"] == "float32", dtype_name("int8")
(True, 'int8')
"""
from __future__ import annotations

import functools

__all__ = ["DType", "DTYPES", "KINDS", "STANDARD", "dtype_name", "dtype_of", "backend_dtype", "unsupported",
           "is_float", "in_float32"]


class DType:
    """A backend-neutral dtype (``gt.float32``...); compares equal to its name and to backend dtypes.

    >>> import gradtape as gt
    >>> gt.ones(2, dtype=gt.float32).dtype == gt.float32, gt.float32 == "float32"
    (True, True)
    """

    __slots__ = ("name", "kind")

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        if isinstance(other, DType):
            return other is self
        return dtype_name(other) == self.name

    def __hash__(self):
        return hash(self.name)


def dtype_name(d):
    """The name of a gradtape, backend or string dtype ("float32")."""
    if isinstance(d, str):
        return d
    n = getattr(d, "name", None)
    if isinstance(n, str):
        return n
    n = getattr(d, "__name__", None)
    if isinstance(n, str):
        return n
    r = repr(d)
    return r.rsplit(".", 1)[-1].strip("')")


KINDS = {"bool": "bool", "int8": "signed integer", "int16": "signed integer", "int32": "signed integer",
         "int64": "signed integer", "uint8": "unsigned integer", "uint16": "unsigned integer",
         "uint32": "unsigned integer", "uint64": "unsigned integer", "float16": "real floating",
         "float32": "real floating", "float64": "real floating", "complex64": "complex floating",
         "complex128": "complex floating"}
DTYPES = {n: DType(n, k) for n, k in KINDS.items()}
# the standard's dtypes: what __array_namespace_info__().dtypes() lists (as NumPy's and array_api_compat's do);
# float16 is an extension dtype, there where the backend has it (NumPy, CuPy; not array-api-strict)
STANDARD = {n: d for n, d in DTYPES.items() if n != "float16"}
_raw_to_dtype = {}


def dtype_of(raw):
    """gradtape DType of a backend dtype."""
    table = _raw_to_dtype.get(type(raw))     # one table per dtype class: never compare across libraries
    if table is None:
        table = _raw_to_dtype[type(raw)] = {}
    d = table.get(raw)
    if d is None:
        d = table[raw] = DTYPES[dtype_name(raw)]
    return d


def backend_dtype(backend, dtype, op=None):
    """Backend dtype for a gradtape/backend/str dtype (None stays None); TypeError for one gradtape lacks."""
    if dtype is None:
        return None
    name = dtype_name(dtype)
    if name not in DTYPES:
        raise unsupported(op, name)
    raw = getattr(backend.raw, name, None)
    if raw is None:             # float16 on array-api-strict
        raise unsupported(op, name, backend=backend)
    return raw


def unsupported(op, name, what=None, backend=None):
    """The TypeError for a dtype gradtape has no name for, or one the backend lacks (float16 on strict)."""
    where = f"gradtape.{op}" if op else "gradtape"
    if backend is not None:
        return TypeError(f"{where}: dtype {name} is not available on backend {backend.name} (device "
                         f"{backend.device!r}); use float32, or a backend that has {name} (NumPy 'cpu', CuPy 'cuda')")
    src = f"cannot make a tensor from {what} (dtype {name})" if what else f"dtype {name!r} is not supported"
    return TypeError(f"{where}: {src}; gradtape supports {', '.join(DTYPES)}")


def is_float(dtype):
    return dtype_name(dtype) in ("float32", "float64", "float16", "complex64", "complex128")


def in_float32(f):
    """``f(xp, x, ...)`` computed in float32 when ``x`` is float16 and rounded to float16 once, as PyTorch computes its
    half-precision softmax and special functions ("opmath"); other dtypes run ``f`` as it is (one attribute test).
    ``x`` is a raw array or, in a recorded higher-order rule, a Tensor (then the casts are recorded too).

    >>> import numpy as np
    >>> f = in_float32(lambda xp, x: x * 2)
    >>> f(np, np.ones(2, np.float16)).dtype, f(np, np.ones(2)).dtype
    (dtype('float16'), dtype('float64'))
    """
    def g(xp, x, *args, **kw):
        if getattr(x.dtype, "name", None) != "float16":
            return f(xp, x, *args, **kw)
        return xp.astype(f(xp, xp.astype(x, xp.float32), *args, **kw), x.dtype)
    return functools.wraps(f)(g)       # f's signature (graph.schema reads a forward's parameters from it)
