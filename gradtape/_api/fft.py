"""The array API ``fft`` extension (2024.12), every transform differentiable to any order (``gt.fft``).

The n-dimensional transforms apply the primitives of :mod:`gradtape._ops.fft`; the 1-D ones are their one-axis
case, ``hfft``/``ihfft`` are ``irfft``/``rfft`` of the conjugate (NumPy's definition, norm direction swapped),
``fftshift``/``ifftshift`` are ``roll``. A real input of a complex transform is promoted (float32 to complex64,
float64 to complex128), as NumPy and torch do; a complex input of ``rfft``/``rfftn``/``ihfft`` is a TypeError.

>>> import gradtape as gt
>>> gt.fft.fft(gt.asarray([1.0, 0.0, 0.0, 0.0]))
Tensor([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
"""
from __future__ import annotations

import math
import operator

from .._axes import axis_tuple
from .._core.dispatch import apply1
from .._ops.fft import fftn_p, ifftn_p, irfftn_p, rfftn_p
from .creation import arange, as_tensor, astype
from .dtypes import float64, isdtype
from .elementwise import conj
from .manipulation import concat, roll

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft", "fftfreq",
           "rfftfreq", "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")
_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _plan(op, x, s, axes, norm, c2r=False):
    """(s, axes as negative ints, sizes of x along them), checked; s None: x's lengths (c2r: 2 (m - 1) last)."""
    if norm not in _NORMS:
        raise ValueError(f"gradtape.fft.{op}: norm must be one of {_NORMS}, got {norm!r}")
    if axes is None:
        axes = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
    if x.ndim == 0:
        raise ValueError(f"gradtape.fft.{op}: the input must have at least one dimension, got a 0-d array")
    axes = tuple(a - x.ndim for a in axis_tuple(tuple(axes), x.ndim, f"fft.{op}", x.shape))
    sizes = tuple(x.shape[a] for a in axes)
    if s is None:
        s = sizes[:-1] + (2 * (sizes[-1] - 1),) if c2r else sizes
    else:
        s = tuple(operator.index(n) for n in s)
        if len(s) != len(axes):
            raise ValueError(f"gradtape.fft.{op}: s has {len(s)} lengths for {len(axes)} axes {axes}")
    if any(n < 1 for n in s) or not axes:
        raise ValueError(f"gradtape.fft.{op}: invalid transform lengths {s} for the input of shape {x.shape}")
    return s, axes, sizes


def _complex(x):
    x = as_tensor(x)
    if isdtype(x.dtype, "complex floating"):
        return x
    if not isdtype(x.dtype, "real floating"):
        raise TypeError(f"gradtape.fft: the input must be a floating-point array, got dtype {x.dtype}")
    return astype(x, "complex64" if x.dtype == "float32" else "complex128")


def _real(x, op):
    x = as_tensor(x)
    if not isdtype(x.dtype, "real floating"):
        raise TypeError(f"gradtape.fft.{op}: the input must be a real floating-point array, got dtype {x.dtype} "
                        f"(shape {x.shape})")
    return x


def _transform(prim, x, s, axes, sizes, norm, inverse):
    """``prim`` (norm "backward") scaled for ``norm``: an extra product only for "ortho" and "forward"."""
    out = apply1(prim, x, {"shape": s, "axes": axes, "sizes": sizes})
    if norm == "backward":
        return out
    n = math.prod(s)
    scale = math.sqrt(n) if norm == "ortho" else n
    return out * scale if inverse else out * (1 / scale)


def _c2c(op, x, s, axes, norm, inverse):
    x = _complex(x)
    s, axes, sizes = _plan(op, x, s, axes, norm)
    return _transform(ifftn_p if inverse else fftn_p, x, s, axes, sizes, norm, inverse)


def _one(n, axis):
    return (None if n is None else (n,)), (axis,)


def fftn(x, /, *, s=None, axes=None, norm="backward"):
    """The n-dimensional discrete Fourier transform (array API); VJP and JVP any order.

    >>> import gradtape as gt
    >>> gt.fft.fftn(gt.ones((2, 2))).shape
    (2, 2)
    """
    return _c2c("fftn", x, s, axes, norm, False)


def ifftn(x, /, *, s=None, axes=None, norm="backward"):
    """The n-dimensional inverse discrete Fourier transform (array API).

    >>> import gradtape as gt
    >>> gt.real(gt.fft.ifftn(gt.fft.fftn(gt.asarray([[1.0, 2.0], [3.0, 4.0]]))))
    Tensor([[1., 2.],
            [3., 4.]])
    """
    return _c2c("ifftn", x, s, axes, norm, True)


def fft(x, /, *, n=None, axis=-1, norm="backward"):
    """The one-dimensional discrete Fourier transform along ``axis`` (length ``n``: cropped or zero-padded).

    >>> import gradtape as gt
    >>> gt.fft.fft(gt.asarray([1.0, 1.0]), n=4).shape
    (4,)
    """
    s, axes = _one(n, axis)
    return _c2c("fft", x, s, axes, norm, False)


def ifft(x, /, *, n=None, axis=-1, norm="backward"):
    """The one-dimensional inverse discrete Fourier transform.

    >>> import gradtape as gt
    >>> gt.fft.ifft(gt.asarray([4.0, 0.0, 0.0, 0.0]))
    Tensor([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    s, axes = _one(n, axis)
    return _c2c("ifft", x, s, axes, norm, True)


def rfftn(x, /, *, s=None, axes=None, norm="backward"):
    """The n-dimensional transform of a real input, the last axis halved (s[-1] // 2 + 1 bins).

    >>> import gradtape as gt
    >>> gt.fft.rfftn(gt.ones((2, 4))).shape
    (2, 3)
    """
    x = _real(x, "rfftn")
    s, axes, sizes = _plan("rfftn", x, s, axes, norm)
    return _transform(rfftn_p, x, s, axes, sizes, norm, False)


def irfftn(x, /, *, s=None, axes=None, norm="backward"):
    """The inverse of :func:`rfftn`: a real output of lengths ``s`` (default: the last 2 (m - 1)).

    >>> import gradtape as gt
    >>> gt.fft.irfftn(gt.fft.rfftn(gt.asarray([[1.0, 2.0], [3.0, 4.0]])))
    Tensor([[1., 2.],
            [3., 4.]])
    """
    x = _complex(x)
    s, axes, sizes = _plan("irfftn", x, s, axes, norm, c2r=True)
    return _transform(irfftn_p, x, s, axes, sizes, norm, True)


def rfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The one-dimensional transform of a real input (n // 2 + 1 bins).

    >>> import gradtape as gt
    >>> gt.fft.rfft(gt.asarray([1.0, 1.0, 1.0, 1.0]))
    Tensor([4.+0.j, 0.+0.j, 0.+0.j])
    """
    s, axes = _one(n, axis)
    return rfftn(x, s=s, axes=axes, norm=norm)


def irfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The inverse of :func:`rfft`: a real output of length ``n`` (default 2 (m - 1)).

    >>> import gradtape as gt
    >>> gt.fft.irfft(gt.asarray([4.0, 0.0, 0.0]))
    Tensor([1., 1., 1., 1.])
    """
    s, axes = _one(n, axis)
    return irfftn(x, s=s, axes=axes, norm=norm)


def hfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The transform of a Hermitian-symmetric signal (given by its first half): a real spectrum of length ``n``.

    >>> import gradtape as gt
    >>> gt.fft.hfft(gt.asarray([1.0, 0.0, 0.0]))
    Tensor([1., 1., 1., 1.])
    """
    return irfft(conj(_complex(x)), n=n, axis=axis, norm=_swap(norm, "hfft"))


def ihfft(x, /, *, n=None, axis=-1, norm="backward"):
    """The inverse of :func:`hfft`: the first half of a Hermitian spectrum from a real signal.

    >>> import gradtape as gt
    >>> gt.fft.ihfft(gt.asarray([1.0, 1.0, 1.0, 1.0]))
    Tensor([1.-0.j, 0.-0.j, 0.-0.j])
    """
    return conj(rfft(_real(x, "ihfft"), n=n, axis=axis, norm=_swap(norm, "ihfft")))


def _swap(norm, op):
    if norm not in _NORMS:
        raise ValueError(f"gradtape.fft.{op}: norm must be one of {_NORMS}, got {norm!r}")
    return _SWAP[norm]


def fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    """The sample frequencies of an ``n``-point transform with spacing ``d`` (not differentiable).

    >>> import gradtape as gt
    >>> gt.fft.fftfreq(4)
    Tensor([ 0.  ,  0.25, -0.5 , -0.25])
    """
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"gradtape.fft.fftfreq: n must be a positive integer, got {n}")
    dtype = float64 if dtype is None else dtype
    k = concat([arange(0, (n - 1) // 2 + 1, dtype=dtype, device=device),
                arange(-(n // 2), 0, dtype=dtype, device=device)])
    return k / (d * n)


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    """The sample frequencies of :func:`rfft` (n // 2 + 1 of them; not differentiable).

    >>> import gradtape as gt
    >>> gt.fft.rfftfreq(4)
    Tensor([0.  , 0.25, 0.5 ])
    """
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"gradtape.fft.rfftfreq: n must be a positive integer, got {n}")
    return arange(0, n // 2 + 1, dtype=float64 if dtype is None else dtype, device=device) / (d * n)


def _shift(x, axes, sign):
    x = as_tensor(x)
    axes = tuple(range(x.ndim)) if axes is None else ((axes,) if isinstance(axes, int) else tuple(axes))
    if not axes:
        return x
    return roll(x, tuple(sign * (x.shape[a] // 2) for a in axes), axis=axes)


def fftshift(x, /, *, axes=None):
    """The zero-frequency bin moved to the centre (``roll`` by n // 2 along ``axes``; differentiable).

    >>> import gradtape as gt
    >>> gt.fft.fftshift(gt.fft.fftfreq(4))
    Tensor([-0.5 , -0.25,  0.  ,  0.25])
    """
    return _shift(x, axes, 1)


def ifftshift(x, /, *, axes=None):
    """The inverse of :func:`fftshift`.

    >>> import gradtape as gt
    >>> gt.fft.ifftshift(gt.fft.fftshift(gt.fft.fftfreq(5)))
    Tensor([ 0. ,  0.2,  0.4, -0.4, -0.2])
    """
    return _shift(x, axes, -1)
