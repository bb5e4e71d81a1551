"""gradtape's backend-neutral dtypes and their mapping to backend dtypes.

>>> from gradtape._core.dtypes import DTYPES, dtype_name
>>> DTYPES["float32"] == "float32", dtype_name("int8")
(True, 'int8')
"""
from __future__ import annotations

__all__ = ["DType", "DTYPES", "KINDS", "dtype_name", "dtype_of", "backend_dtype", "unsupported", "is_float"]


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
         "uint32": "unsigned integer", "uint64": "unsigned integer", "float32": "real floating",
         "float64": "real floating", "complex64": "complex floating", "complex128": "complex floating"}
DTYPES = {n: DType(n, k) for n, k in KINDS.items()}
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
    return getattr(backend.raw, name)


def unsupported(op, name, what=None):
    """The TypeError for a dtype gradtape has no name for."""
    where = f"gradtape.{op}" if op else "gradtape"
    src = f"cannot make a tensor from {what} (dtype {name})" if what else f"dtype {name!r} is not supported"
    if name == "float16":
        return TypeError(f"{where}: {src}: float16 is not supported yet; convert to float32 first "
                         f"(e.g. gt.asarray(a, dtype=gt.float32))")
    return TypeError(f"{where}: {src}; gradtape supports {', '.join(DTYPES)}")


def is_float(dtype):
    return dtype_name(dtype) in ("float32", "float64", "float16", "complex64", "complex128")
