"""Primitives of ``gt.nn``: the stable log-sum-exp family and the softmax cross-entropy, with their own
rules (stable for large logits, one fused backward for the cross-entropy, as a hand-written gradient)."""
from __future__ import annotations

from .elementwise import prim, _keep, _unreduce


def _lse(xp, x, axis):
    """log(sum(exp(x))) along axis with keepdims, shifted by the (finite) max."""
    m = _finite_max(xp, x, axis)
    return m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))


logsumexp_p = prim("logsumexp", lambda xp, x, axis, keepdims: _lse(xp, x, axis) if keepdims else
                   xp.reshape(_lse(xp, x, axis), tuple(n for i, n in enumerate(x.shape) if i - x.ndim not in axis)),
                   [lambda xp, ct, out, x, axis, keepdims:
                    _unreduce(xp, ct, x.shape, axis, keepdims) * xp.exp(x - (out if keepdims else _keep(xp, out, x.shape, axis)))],
                   [lambda xp, t, out, x, axis, keepdims:
                    xp.sum(t * xp.exp(x - (out if keepdims else _keep(xp, out, x.shape, axis))), axis=axis, keepdims=keepdims)],
                   [(0, "out")])
def _log_softmax(xp, x, axis):
    d = x - _finite_max(xp, x, axis)       # (x - m) - log(sum(exp(x - m))): exact for the largest entries
    return d - xp.log(xp.sum(xp.exp(d), axis=axis, keepdims=True))


def _finite_max(xp, x, axis):
    if 0 in x.shape:    # max of an empty axis has no identity; any finite shift will do (then lse = -inf)
        shape = tuple(1 if i - x.ndim in axis else n for i, n in enumerate(x.shape))
        return xp.zeros(shape, dtype=x.dtype, device=x.device)
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


log_softmax_p = prim("log_softmax", lambda xp, x, axis: _log_softmax(xp, x, axis),
                     [lambda xp, ct, out, x, axis: ct - xp.exp(out) * xp.sum(ct, axis=axis, keepdims=True)],
                     [lambda xp, t, out, x, axis: t - xp.sum(xp.exp(out) * t, axis=axis, keepdims=True)],
                     [("out",)])
softmax_p = prim("softmax", lambda xp, x, axis: xp.exp(x - _lse(xp, x, axis)),
                 [lambda xp, ct, out, x, axis: out * (ct - xp.sum(ct * out, axis=axis, keepdims=True))],
                 [lambda xp, t, out, x, axis: out * (t - xp.sum(out * t, axis=axis, keepdims=True))],
                 [("out",)])


def _onehot(xp, labels, n, dtype):
    return xp.astype(xp.expand_dims(labels, axis=-1) == xp.arange(n, device=labels.device), dtype)


def _ce_fwd(xp, x, labels):
    d = x - _finite_max(xp, x, (-1,))
    lse = xp.log(xp.sum(xp.exp(d), axis=-1))
    picked = xp.squeeze(xp.take_along_axis(d, xp.expand_dims(labels, axis=-1), axis=-1), axis=-1)
    return xp.mean(lse - picked)


# mean over the batch of -log softmax(x)[label]; the VJP is (softmax(x) - onehot) * ct / N
cross_entropy_p = prim(
    "cross_entropy", lambda xp, x, labels: _ce_fwd(xp, x, labels),
    [lambda xp, ct, out, x, labels: (xp.exp(x - _lse(xp, x, (-1,))) - _onehot(xp, labels, x.shape[-1], x.dtype))
     * xp.reshape(ct / (x.size // x.shape[-1]), tuple(ct.shape) + (1,) * x.ndim), None],
    [lambda xp, t, out, x, labels: -xp.mean(xp.sum(t * (_onehot(xp, labels, x.shape[-1], x.dtype)
                                                        - xp.exp(x - _lse(xp, x, (-1,)))), axis=-1),
                                            axis=tuple(range(1 - x.ndim, 0))), None],
    [(0, 1), ()], fused=True)   # CuPy: softmax - onehot, scaled, in one kernel after the row log-sum-exp
