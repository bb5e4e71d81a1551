"""The array API ``fft`` extension, every transform differentiable (VJP and JVP, any order), on every backend.

The functions are defined in :mod:`gradtape._api.fft`, their primitives in :mod:`gradtape._ops.fft`.

>>> import gradtape as gt
>>> gt.fft.rfft(gt.asarray([1.0, 2.0, 3.0, 4.0])).shape
(3,)
"""
from ._api.fft import (fft, ifft, fftn, ifftn, rfft, irfft, rfftn, irfftn, hfft, ihfft, fftfreq,  # noqa: F401
                       rfftfreq, fftshift, ifftshift)

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft", "fftfreq",
           "rfftfreq", "fftshift", "ifftshift"]
