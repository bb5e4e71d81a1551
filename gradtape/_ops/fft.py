"""The ``fft`` extension's primitives: complex-to-complex, real-to-complex and complex-to-real n-dimensional
transforms, forward, VJP and JVP side by side (the 1-D, Hermitian and shift functions of ``gt.fft`` are
composed from these in :mod:`gradtape._api.fft`).

Parameters: ``s`` the transform lengths and ``axes`` the axes (negative, so a tangent or cotangent with
leading batch axes takes the same parameters), ``norm`` ("backward", "ortho", "forward"), ``sizes`` the
input's lengths along ``axes`` (the VJP crops or zero-pads back to them: the transpose of the forward's
padding or truncation). The transforms are linear, so the JVP is the forward applied to the tangent; the VJP
is the transpose in the rules' convention (JAX's, see :mod:`gradtape._ops.elementwise`): fftn's is fftn
itself, rfftn's the real part of fftn of the zero-padded half spectrum, irfftn's the conjugate of rfftn of
the cotangent with the bins that stand for two (all but the DC and Nyquist ones) doubled (JAX's rules).
Rules call the primitives again (on tensors when the derivative is recorded): any order.

>>> from gradtape._ops.fft import fftn_p
>>> fftn_p.name, fftn_p.inputs
('fftn', ('x',))
"""
from __future__ import annotations

import math

from .._core.dispatch import apply1
from .._core.primitive import define
from .._core.tensor import Tensor

__all__ = ["fftn_p", "rfftn_p", "irfftn_p", "module"]


def module(xp, x):
    """The backend's ``fft`` namespace (array_api_compat's NumPy and CuPy hold it; strict's arrays give it)."""
    m = getattr(xp, "fft", None)
    return m if m is not None else x.__array_namespace__().fft


def _apply(xp, prim, x, **params):
    """``prim`` on ``x``: recorded where ``x`` is a tensor (a rule under create_graph), else run on raw arrays."""
    return apply1(prim, x, params) if isinstance(x, Tensor) else prim.fwd(xp, x, **params)


def _along(g, a, start, stop):
    """``g[start:stop]`` along (negative) axis ``a``."""
    return g[(Ellipsis, slice(start, stop)) + (slice(None),) * (-a - 1)]


def _resize(xp, g, axes, sizes):
    """``g`` cropped or zero-padded (at the end) to ``sizes`` along ``axes``."""
    for a, m in zip(axes, sizes):
        n = g.shape[a]
        if n > m:
            g = _along(g, a, 0, m)
        elif n < m:
            shape = list(g.shape)
            shape[a] = m - n
            g = xp.concat([g, xp.zeros(tuple(shape), dtype=g.dtype, device=g.device)], axis=a)
    return g


def _c2c(xp, x, s, axes, norm, sizes, inverse):
    m = module(xp, x)
    return (m.ifftn if inverse else m.fftn)(x, s=s, axes=axes, norm=norm)


def _c2c_vjp(xp, ct, out, x, s, axes, norm, sizes, inverse):
    g = _apply(xp, fftn_p, ct, s=tuple(ct.shape[a] for a in axes), axes=axes, norm=norm, sizes=s, inverse=inverse)
    return _resize(xp, g, axes, sizes)


def _r2c_vjp(xp, ct, out, x, s, axes, norm, sizes):
    full = _resize(xp, ct, axes[-1:], s[-1:])          # the half spectrum zero-padded to the full length
    g = _apply(xp, fftn_p, full, s=s, axes=axes, norm=norm, sizes=s, inverse=False)
    return _resize(xp, xp.real(g), axes, sizes)


def _c2r_vjp(xp, ct, out, x, s, axes, norm, sizes):
    half = s[-1] // 2 + 1
    r = _apply(xp, rfftn_p, ct, s=s, axes=axes, norm="backward", sizes=s)
    odd = s[-1] % 2
    if half > 1:      # the bins 1 .. half-1 (-1 more where the length is even: the Nyquist bin) stand for two
        a = axes[-1]
        parts = [_along(r, a, 0, 1), 2 * _along(r, a, 1, half - 1 + odd)] + ([] if odd else [_along(r, a, half - 1,
                                                                                                     half)])
        r = xp.concat(parts, axis=a)
    n = math.prod(s)
    scale = {"backward": 1 / n, "ortho": 1 / math.sqrt(n), "forward": 1.0}[norm]
    g = xp.conj(r) * scale if scale != 1.0 else xp.conj(r)
    return _resize(xp, g, axes, sizes)


fftn_p = define("fftn", _c2c, vjp={"x": _c2c_vjp},
                jvp={"x": lambda xp, t, out, x, s, axes, norm, sizes, inverse:
                     _apply(xp, fftn_p, t, s=s, axes=axes, norm=norm, sizes=sizes, inverse=inverse)})
rfftn_p = define("rfftn", lambda xp, x, s, axes, norm, sizes: module(xp, x).rfftn(x, s=s, axes=axes, norm=norm),
                 vjp={"x": _r2c_vjp},
                 jvp={"x": lambda xp, t, out, x, s, axes, norm, sizes:
                      _apply(xp, rfftn_p, t, s=s, axes=axes, norm=norm, sizes=sizes)})
irfftn_p = define("irfftn", lambda xp, x, s, axes, norm, sizes: module(xp, x).irfftn(x, s=s, axes=axes, norm=norm),
                  vjp={"x": _c2r_vjp},
                  jvp={"x": lambda xp, t, out, x, s, axes, norm, sizes:
                       _apply(xp, irfftn_p, t, s=s, axes=axes, norm=norm, sizes=sizes)})


def _batch(prim, args, batched, params, size):
    """gt.vmap: the batch axis in front, the (negative) axes as they are."""
    return apply1(prim, args[0], params)


for _p in (fftn_p, rfftn_p, irfftn_p):
    _p.batch = _batch
