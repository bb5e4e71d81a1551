"""The array API's dtype objects (``gt.float32``...) and dtype functions (``isdtype``, ``result_type``,
``can_cast``, ``finfo``, ``iinfo``). ``astype`` is in :mod:`.creation`, beside ``asarray``.

This module defines ``bool`` (the dtype), so it spells the builtin ``builtins.bool``.

>>> import gradtape as gt
>>> gt.bool, gt.isdtype(gt.int8, "integral")
(bool, True)
"""
from __future__ import annotations

import builtins

from .. import backends
from .._core.dtypes import DType, DTYPES, KINDS, dtype_name, dtype_of, backend_dtype
from .._core.tensor import Tensor

__all__ = ["DType", "DTYPES", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128", "isdtype", "result_type", "can_cast", "finfo", "iinfo"]

bool = DTYPES["bool"]  # noqa: A001  (array API name)
int8 = DTYPES["int8"]
int16 = DTYPES["int16"]
int32 = DTYPES["int32"]
int64 = DTYPES["int64"]
uint8 = DTYPES["uint8"]
uint16 = DTYPES["uint16"]
uint32 = DTYPES["uint32"]
uint64 = DTYPES["uint64"]
float16 = DTYPES["float16"]     # an extension dtype: NumPy and CuPy have it, array-api-strict does not
float32 = DTYPES["float32"]
float64 = DTYPES["float64"]
complex64 = DTYPES["complex64"]
complex128 = DTYPES["complex128"]


def isdtype(dtype, kind):
    """Array API ``isdtype``.

    >>> import gradtape as gt
    >>> gt.isdtype(gt.float32, "real floating")
    True
    """
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    name = dtype_name(dtype)
    if isinstance(kind, str):
        k = KINDS.get(name)
        if kind == "integral":
            return k in ("signed integer", "unsigned integer")
        if kind == "numeric":
            return k not in (None, "bool")
        return k == kind
    return name == dtype_name(kind)


def result_type(*arrays_and_dtypes):
    """Array API ``result_type`` (gradtape dtypes).

    >>> import gradtape as gt
    >>> gt.result_type(gt.float32, gt.float64)
    float64
    """
    tensors = [a for a in arrays_and_dtypes if isinstance(a, Tensor)]
    backend = tensors[0].backend if tensors else backends.get("cpu")
    args = [a.data if isinstance(a, Tensor) else (backend_dtype(backend, a) if isinstance(a, (DType, str)) else a)
            for a in arrays_and_dtypes]
    return dtype_of(backend.xp.result_type(*args))


def can_cast(from_, to, /):
    """Array API ``can_cast``.

    >>> import gradtape as gt
    >>> gt.can_cast(gt.float32, gt.float64)
    True
    """
    backend = from_.backend if isinstance(from_, Tensor) else backends.get("cpu")
    f = from_.data if isinstance(from_, Tensor) else backend_dtype(backend, from_)
    return builtins.bool(backend.xp.can_cast(f, backend_dtype(backend, to)))


def finfo(type, /):  # noqa: A002  (array API name)
    """Array API ``finfo``.

    >>> import gradtape as gt
    >>> gt.finfo(gt.float32).bits
    32
    """
    backend = type.backend if isinstance(type, Tensor) else backends.get("cpu")
    f = backend.xp.finfo(type.data.dtype if isinstance(type, Tensor) else backend_dtype(backend, type))
    # the standard's finfo object has Python int/float fields (NumPy's are NumPy scalars, which strict rejects)
    return FloatInfo(int(f.bits), float(f.eps), float(f.max), float(f.min), float(f.smallest_normal),
                     dtype_of(f.dtype))


class FloatInfo:
    """Array API finfo object: ``bits``, ``eps``, ``max``, ``min``, ``smallest_normal`` (Python numbers), ``dtype``."""

    __slots__ = ("bits", "eps", "max", "min", "smallest_normal", "dtype")

    def __init__(self, bits, eps, max, min, smallest_normal, dtype):  # noqa: A002
        self.bits, self.eps, self.max, self.min, self.smallest_normal, self.dtype = \
            bits, eps, max, min, smallest_normal, dtype

    def __repr__(self):
        return (f"finfo(bits={self.bits}, eps={self.eps}, max={self.max}, min={self.min}, "
                f"smallest_normal={self.smallest_normal}, dtype={self.dtype})")


def iinfo(type, /):  # noqa: A002  (array API name)
    """Array API ``iinfo``.

    >>> import gradtape as gt
    >>> gt.iinfo(gt.int8).max
    127
    """
    backend = type.backend if isinstance(type, Tensor) else backends.get("cpu")
    return backend.xp.iinfo(type.data.dtype if isinstance(type, Tensor) else backend_dtype(backend, type))
