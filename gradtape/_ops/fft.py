"""The ``fft`` extension's primitives: complex-to-complex, real-to-complex and complex-to-real n-dimensional
transforms, forward, VJP and JVP side by side (the 1-D, Hermitian and shift functions of ``gt.fft`` are
composed from these in :mod:`gradtape._api.fft`).

Parameters: ``shape`` the transform lengths and ``axes`` the axes (negative, so a tangent or cotangent with
leading batch axes takes the same parameters), ``sizes`` the input's lengths along ``axes`` (norm "backward"
always: the API scales the others) (the VJP crops or zero-pads back to them: the transpose of the forward's
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

__all__ = ["fftn_p", "ifftn_p", "rfftn_p", "irfftn_p", "module"]


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


def _fftn_vjp(xp, ct, out, x, shape, axes, sizes):     # the DFT matrix is symmetric: its transpose is itself
    return _resize(xp, _apply(xp, fftn_p, ct, shape=shape, axes=axes, sizes=shape), axes, sizes)


def _ifftn_vjp(xp, ct, out, x, shape, axes, sizes):
    return _resize(xp, _apply(xp, ifftn_p, ct, shape=shape, axes=axes, sizes=shape), axes, sizes)


def _r2c_vjp(xp, ct, out, x, shape, axes, sizes):
    full = _resize(xp, ct, axes[-1:], shape[-1:])          # the half spectrum zero-padded to the full length
    g = _apply(xp, fftn_p, full, shape=shape, axes=axes, sizes=shape)
    return _resize(xp, xp.real(g), axes, sizes)


def _c2r_vjp(xp, ct, out, x, shape, axes, sizes):
    half = shape[-1] // 2 + 1
    r = _apply(xp, rfftn_p, ct, shape=shape, axes=axes, sizes=shape)
    odd = shape[-1] % 2
    if half > 1:      # the bins 1 .. half-1 (-1 more where the length is even: the Nyquist bin) stand for two
        a = axes[-1]
        parts = [_along(r, a, 0, 1), 2 * _along(r, a, 1, half - 1 + odd)] + ([] if odd else [_along(r, a, half - 1,
                                                                                                     half)])
        r = xp.concat(parts, axis=a)
    return _resize(xp, xp.conj(r) * (1 / math.prod(shape)), axes, sizes)


def _linear(name, fwd, vjp):
    """A transform: its JVP is itself on the tangent."""
    p = define(name, fwd, vjp={"x": vjp}, jvp={"x": lambda xp, t, out, x, shape, axes, sizes:
                                                _apply(xp, p, t, shape=shape, axes=axes, sizes=sizes)})
    return p


# (norm "backward" always: gradtape._api.fft scales for "ortho" and "forward")
fftn_p = _linear("fftn", lambda xp, x, shape, axes, sizes: module(xp, x).fftn(x, s=shape, axes=axes), _fftn_vjp)
ifftn_p = _linear("ifftn", lambda xp, x, shape, axes, sizes: module(xp, x).ifftn(x, s=shape, axes=axes), _ifftn_vjp)
rfftn_p = _linear("rfftn", lambda xp, x, shape, axes, sizes: module(xp, x).rfftn(x, s=shape, axes=axes), _r2c_vjp)
irfftn_p = _linear("irfftn", lambda xp, x, shape, axes, sizes: module(xp, x).irfftn(x, s=shape, axes=axes), _c2r_vjp)


def _batch(prim, args, batched, params, size):
    """gt.vmap: the batch axis in front, the (negative) axes as they are."""
    return apply1(prim, args[0], params)


for _p in (fftn_p, ifftn_p, rfftn_p, irfftn_p):
    _p.batch = _batch
