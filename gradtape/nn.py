"""Functions outside the array API standard: activations, stable log-sum-exp family, cross-entropy.

``log_softmax``, ``softmax``, ``logsumexp`` and ``cross_entropy`` are
primitives with their own rules (stable for large logits, and one fused
backward for the softmax cross-entropy, as a hand-written gradient would do).
"""
from __future__ import annotations

from ._core import Tensor, apply, apply1, apply2
from ._prims import _fusable, prim, _keep, _unreduce, relu_fn as relu, sigmoid_fn as sigmoid, softplus_fn as softplus
from ._namespace import asarray

__all__ = ["relu", "sigmoid", "softplus", "logsumexp", "softmax", "log_softmax", "cross_entropy"]


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
    [(0, 1), ()])
_fusable(cross_entropy_p)      # CuPy: softmax - onehot, scaled, in one kernel after the row log-sum-exp


def _axes(x, axis, op):
    from ._namespace import _ax
    return _ax(x, axis, op)


def logsumexp(x, /, *, axis=None, keepdims=False):
    """log(sum(exp(x))) computed without overflow.

    >>> import gradtape as gt
    >>> gt.nn.logsumexp(gt.asarray([1000.0, 1000.0]))
    Tensor(1000.69314718)
    """
    x = x if isinstance(x, Tensor) else asarray(x)
    return apply1(logsumexp_p, x, {"axis": _axes(x, axis, "nn.logsumexp"), "keepdims": keepdims})


def log_softmax(x, /, *, axis=-1):
    """x - logsumexp(x) along ``axis``, stable.

    >>> import gradtape as gt
    >>> gt.nn.log_softmax(gt.asarray([0.0, 0.0]))
    Tensor([-0.69314718, -0.69314718])
    """
    x = x if isinstance(x, Tensor) else asarray(x)
    return apply1(log_softmax_p, x, {"axis": _axes(x, axis, "nn.log_softmax")})


def softmax(x, /, *, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, stable.

    >>> import gradtape as gt
    >>> gt.nn.softmax(gt.asarray([0.0, 0.0]))
    Tensor([0.5, 0.5])
    """
    x = x if isinstance(x, Tensor) else asarray(x)
    return apply1(softmax_p, x, {"axis": _axes(x, axis, "nn.softmax")})


def cross_entropy(logits, target, /):
    """Mean softmax cross-entropy over the batch (last axis = classes).

    ``target`` holds integer class indices (shape ``logits.shape[:-1]``) or
    class probabilities (the shape of ``logits``, differentiable too).

    >>> import gradtape as gt
    >>> gt.nn.cross_entropy(gt.asarray([[0.0, 0.0]]), gt.asarray([1]))
    Tensor(0.69314718)
    """
    from ._namespace import isdtype, mean, sum
    x = logits if isinstance(logits, Tensor) else asarray(logits)
    t = target if isinstance(target, Tensor) else asarray(target, device=x.device)
    if isdtype(t.dtype, "integral"):
        if t.shape != x.shape[:-1]:
            raise ValueError(f"gradtape.nn.cross_entropy: labels of shape {t.shape} do not match logits of shape "
                             f"{x.shape} (expected {x.shape[:-1]})")
        _check_labels(x, t)
        return apply(cross_entropy_p, (x, t))
    if t.shape != x.shape:
        raise ValueError(f"gradtape.nn.cross_entropy: target probabilities of shape {t.shape} do not match logits "
                         f"of shape {x.shape}")
    return -mean(sum(t * log_softmax(x, axis=-1), axis=-1))


def _check_labels(x, t):
    """Class labels in [0, classes): a -1 would pick the last class forward and none in the gradient."""
    n = x.shape[-1] if x.ndim else 0
    if n == 0:
        raise ValueError(f"gradtape.nn.cross_entropy: logits of shape {x.shape} have no classes (last axis of "
                         f"size 0)")
    if t.size == 0:
        return
    xp = t._bk.xp
    bad = (t.data < 0) | (t.data >= n)
    if bool(xp.any(bad)):
        first = int(xp.reshape(t.data, (-1,))[int(xp.argmax(xp.reshape(xp.astype(bad, xp.int8), (-1,))))])
        raise ValueError(f"gradtape.nn.cross_entropy: label {first} is out of range for {n} classes (logits of "
                         f"shape {x.shape}); labels must be in [0, {n - 1}] (no ignore index)")


# ---- modules, parameters, initialisers (gradtape/modules.py), re-exported here as gt.nn.* ----
from .modules import (  # noqa: E402
    Module, Parameter, Linear, Sequential, ReLU, Sigmoid, Tanh, Softplus, Identity, Flatten, Dropout, LogSoftmax,
    Softmax, CrossEntropyLoss, MSELoss, StateDictKeyError, Generator, manual_seed, default_generator, init,
    calculate_gain, xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_, uniform_, normal_, zeros_,
    ones_, constant_,
)
from . import modules as _modules  # noqa: E402
__all__ = __all__ + [n for n in _modules.__all__ if n not in __all__]
