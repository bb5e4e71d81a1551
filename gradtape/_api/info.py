"""Inspection and constants: ``__array_namespace_info__``, ``broadcast_shapes`` and ``e``, ``pi``, ``inf``,
``nan``, ``newaxis``.

>>> import gradtape as gt
>>> gt.broadcast_shapes((3, 1), (4,)), gt.newaxis is None
((3, 4), True)
"""
from __future__ import annotations

import math

from .. import backends
from .._core.dtypes import DTYPES, STANDARD
from .device import get_default_device
from .dtypes import isdtype

__all__ = ["broadcast_shapes", "__array_namespace_info__", "e", "pi", "inf", "nan", "newaxis"]

e = math.e
pi = math.pi
inf = math.inf
nan = math.nan
newaxis = None


def broadcast_shapes(*shapes):
    """The broadcast of several shapes (ValueError naming them when they do not broadcast).

    >>> import gradtape as gt
    >>> gt.broadcast_shapes((3, 1), (4,))
    (3, 4)
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        n = 1
        for s in shapes:
            k = s[i - ndim + len(s)] if i - ndim + len(s) >= 0 else 1
            if k != 1:
                if n != 1 and n != k:
                    raise ValueError(f"gradtape.broadcast_shapes: shapes {', '.join(str(tuple(s)) for s in shapes)} "
                                     f"cannot be broadcast together")      # (NumPy's words; SciPy matches them)
                n = k
        out.append(n)
    return tuple(out)


class NamespaceInfo:
    """What ``__array_namespace_info__()`` returns: capabilities, devices and dtypes of ``gt``."""

    def capabilities(self):
        """What the namespace supports beyond the minimum.

        >>> import gradtape as gt
        >>> gt.capabilities()["boolean indexing"]
        True
        """
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self):
        return get_default_device()

    def devices(self):
        """Where a user can put arrays: "cpu", "strict" (array_api_strict installed), "cuda:N" per GPU CuPy sees.

        >>> import gradtape as gt
        >>> "cpu" in gt.devices()
        True
        """
        kinds = backends.available()        # (imports each library that is installed; "cuda" only with a GPU)
        devices = [k for k in kinds if k != "cuda"]
        if "cuda" in kinds:
            devices += [f"cuda:{i}" for i in range(backends.cupy.device_count())]
        return devices

    def default_dtypes(self, *, device=None):
        """The dtypes that creation functions choose.

        >>> import gradtape as gt
        >>> gt.default_dtypes()["real floating"]
        float64
        """
        return {"real floating": DTYPES["float64"], "complex floating": DTYPES["complex128"],
                "integral": DTYPES["int64"], "indexing": DTYPES["int64"]}

    def dtypes(self, *, device=None, kind=None):
        """The standard's dtypes (as NumPy's and array_api_compat's info list them): float16, an extension dtype
        of the NumPy and CuPy backends, is ``gt.float16`` but not listed here.

        >>> import gradtape as gt
        >>> list(gt.dtypes(kind="real floating"))
        ['float32', 'float64']
        """
        return {n: d for n, d in STANDARD.items() if kind is None or isdtype(d, kind)}


# the info object's functions as module functions too (array-api-tests reads them at the top level; gt exports
# them, not _api's namespace, where ``dtypes`` is a module): ``gt.default_device`` stays the device context manager
_INFO = NamespaceInfo()
capabilities, devices, default_dtypes, dtypes = _INFO.capabilities, _INFO.devices, _INFO.default_dtypes, _INFO.dtypes


def __array_namespace_info__():
    """Array API inspection object.

    >>> import gradtape as gt
    >>> "cpu" in gt.__array_namespace_info__().devices()
    True
    """
    return NamespaceInfo()
