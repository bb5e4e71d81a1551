"""Primitives of ``gt.nn``: the stable log-sum-exp family and the softmax cross-entropy, with their own
rules (stable for large logits, one fused backward for the cross-entropy, as a hand-written gradient).

Axes arrive negative (as for the reductions), so rules accept leading batch axes. float16 logits are computed in
float32 and rounded once (:func:`gradtape._core.dtypes.in_float32`): float16 roundings of the shift and the
log-sum-exp would cost softmax 0.4%.

>>> from gradtape._ops.nn import cross_entropy_p
>>> cross_entropy_p.inputs, cross_entropy_p.vjp[1] is None     # labels are not differentiable
(('x', 'labels'), True)
"""
from __future__ import annotations

from ..backends import host as _host
from .._core.dispatch import apply
from .._core.dtypes import in_float32
from .._core.primitive import define
from .._core.tensor import Tensor
from .reduction import _keep

__all__ = ["logsumexp_p", "log_softmax_p", "softmax_p", "cross_entropy_p", "softmax_minus_onehot_p"]


def _finite_max(xp, x, axis):
    """max along axis (keepdims), with non-finite maxima replaced by 0: the shift of a stable log-sum-exp."""
    if 0 in x.shape:    # max of an empty axis has no identity; any finite shift will do (then lse = -inf)
        shape = tuple(1 if i - x.ndim in axis else n for i, n in enumerate(x.shape))
        return xp.zeros(shape, dtype=x.dtype, device=x.device)
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def _lse(xp, x, axis):
    """log(sum(exp(x))) along axis with keepdims, shifted by the (finite) max."""
    m = _finite_max(xp, x, axis)
    return m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))


def _softmax(xp, x, axis):
    return xp.exp(x - _lse(xp, x, axis))


def _kept(xp, g, x, axis, keepdims):
    return g if keepdims else _keep(xp, g, x.shape, axis)


logsumexp_p = define(
    "logsumexp", in_float32(lambda xp, x, axis, keepdims: _lse(xp, x, axis) if keepdims else xp.reshape(
        _lse(xp, x, axis), tuple(n for i, n in enumerate(x.shape) if i - x.ndim not in axis))),
    vjp={"x": lambda xp, ct, out, x, axis, keepdims:     # broadcasts: no broadcast_to needed
         _kept(xp, ct, x, axis, keepdims) * xp.exp(x - _kept(xp, out, x, axis, keepdims))},
    jvp={"x": lambda xp, t, out, x, axis, keepdims:
         xp.sum(t * xp.exp(x - _kept(xp, out, x, axis, keepdims)), axis=axis, keepdims=keepdims)},
    reads={"x": ("x", "out")})


def _log_softmax(xp, x, axis):
    d = x - _finite_max(xp, x, axis)       # (x - m) - log(sum(exp(x - m))): exact for the largest entries
    return d - xp.log(xp.sum(xp.exp(d), axis=axis, keepdims=True))


log_softmax_p = define(
    "log_softmax", in_float32(_log_softmax),
    vjp={"x": lambda xp, ct, out, x, axis: ct - xp.exp(out) * xp.sum(ct, axis=axis, keepdims=True)},
    jvp={"x": lambda xp, t, out, x, axis: t - xp.sum(xp.exp(out) * t, axis=axis, keepdims=True)},
    reads={"x": ("out",)})

softmax_p = define(
    "softmax", in_float32(_softmax),
    vjp={"x": lambda xp, ct, out, x, axis: out * (ct - xp.sum(ct * out, axis=axis, keepdims=True))},
    jvp={"x": lambda xp, t, out, x, axis: out * (t - xp.sum(out * t, axis=axis, keepdims=True))},
    reads={"x": ("out",)})


# ---- cross-entropy: mean over the batch of -log softmax(x)[label]; VJP (softmax(x) - onehot) * ct / N -------------
def _onehot(xp, labels, n, dtype):
    return xp.astype(xp.expand_dims(labels, axis=-1) == xp.arange(n, device=labels.device), dtype)


def check_labels(xp, labels, classes, shape):
    """ValueError naming the first label outside [0, classes) (``shape``: the logits'). The API runs it on every
    backend before the primitive; the primitives' forwards run it on NumPy arrays too, since a replayed or
    jitted graph runs them without the API (a -1 would pick the last class); a device array is not checked
    there (the check would wait for the device)."""
    if labels.size == 0:
        return
    bad = (labels < 0) | (labels >= classes)
    if bool(xp.any(bad)):
        first = int(xp.reshape(labels, (-1,))[int(xp.argmax(xp.reshape(xp.astype(bad, xp.int8), (-1,))))])
        raise ValueError(f"gradtape.nn.cross_entropy: label {first} is out of range for {classes} classes (logits "
                         f"of shape {tuple(shape)}); labels must be in [0, {classes - 1}] (no ignore index)")


def _host_check(xp, x, labels):
    """Check NumPy labels (ValueError); for labels on a device (or array-api-strict) return a NaN poison of the
    labels' shape in x's dtype: 0 where a label is in range, NaN where not, added to that row's loss or
    residual, so a replayed or jitted graph (which runs the forward without the API's check) gives NaN rows,
    never another class's value, without waiting for the device. None on NumPy."""
    if _host.is_array(labels):
        check_labels(xp, labels, x.shape[-1], x.shape)
        return None
    ok = (labels >= 0) & (labels < x.shape[-1])
    return xp.where(ok, xp.zeros(labels.shape, dtype=x.dtype, device=x.device),
                    xp.full(labels.shape, float("nan"), dtype=x.dtype, device=x.device))


@in_float32
def _cross_entropy(xp, x, labels):
    poison = _host_check(xp, x, labels)
    d = x - _finite_max(xp, x, (-1,))
    lse = xp.log(xp.sum(xp.exp(d), axis=-1))
    if poison is not None:      # (an index out of range: clamped to 0 for the take, the row's loss NaN)
        lse = lse + poison
        labels = xp.where((labels >= 0) & (labels < x.shape[-1]), labels, xp.zeros_like(labels))
    picked = xp.squeeze(xp.take_along_axis(d, xp.expand_dims(labels, axis=-1), axis=-1), axis=-1)
    return xp.mean(lse - picked)


def _cross_entropy_vjp(xp, ct, out, x, labels):
    rows = x.size // x.shape[-1]
    residual = _residual(xp, x, labels)
    return residual * xp.reshape(ct / rows, tuple(ct.shape) + (1,) * x.ndim)   # ct may carry batch axes


@in_float32
def _softmax_minus_onehot(xp, x, labels):
    return _softmax(xp, x, (-1,)) - _onehot(xp, labels, x.shape[-1], x.dtype)


def _residual(xp, x, labels):
    """softmax(x) - onehot(labels): one primitive where a rule is recorded (gt.jit then runs it as one kernel),
    the forward itself on raw arrays (the labels the forward pass checked)."""
    if isinstance(x, Tensor):
        return apply(softmax_minus_onehot_p, (x, labels))
    return _softmax_minus_onehot(xp, x, labels)


def _checked_residual(xp, x, labels):
    """The primitive's forward: a replayed or jitted gradient may hold it without the loss that checked the
    labels (dead code once only the gradient is an output)."""
    poison = _host_check(xp, x, labels)
    out = _softmax_minus_onehot(xp, x, labels)
    return out if poison is None else out + xp.expand_dims(poison, axis=-1)


def _softmax_jvp_rows(xp, t, out, x, labels):
    """The residual's derivative is the softmax's (the one-hot is constant): s * (t - sum(s * t)), s recomputed
    from x (out + onehot would round the small probabilities of the labelled class away). Symmetric: the VJP
    is the same map of the cotangent."""
    s = _softmax(xp, x, (-1,))
    return s * (t - xp.sum(s * t, axis=-1, keepdims=True))


def _cross_entropy_jvp(xp, t, out, x, labels):
    residual = _residual(xp, x, labels)
    return xp.mean(xp.sum(t * residual, axis=-1), axis=tuple(range(1 - x.ndim, 0)))


softmax_minus_onehot_p = define("softmax_minus_onehot", _checked_residual, inputs=("x", "labels"),
                                vjp={"x": _softmax_jvp_rows}, jvp={"x": _softmax_jvp_rows}, reads={"x": ("x",)})

# CuPy: softmax - onehot, scaled, in one kernel after the row log-sum-exp (fused_vjp)
cross_entropy_p = define("cross_entropy", _cross_entropy, inputs=("x", "labels"), vjp={"x": _cross_entropy_vjp},
                         jvp={"x": _cross_entropy_jvp}, reads={"x": ("x", "labels")}, fused_vjp=True)
