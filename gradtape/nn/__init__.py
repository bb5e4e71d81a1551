"""Functions outside the array API standard: activations, stable log-sum-exp family, cross-entropy.

``log_softmax``, ``softmax``, ``logsumexp`` and ``cross_entropy`` are
primitives with their own rules (stable for large logits, and one fused
backward for the softmax cross-entropy, as a hand-written gradient would do).
"""
from __future__ import annotations

from .._core.tensor import Tensor
from .._core.dispatch import apply, apply1, apply2
from .._ops.elementwise import relu_fn as relu, sigmoid_fn as sigmoid, softplus_fn as softplus
from .._ops.nn import logsumexp_p, log_softmax_p, softmax_p, cross_entropy_p
from .._api.namespace import asarray

__all__ = ["relu", "sigmoid", "softplus", "logsumexp", "softmax", "log_softmax", "cross_entropy"]




def _axes(x, axis, op):
    from .._api.namespace import _ax
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
    from .._api.namespace import isdtype, mean, sum
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
    xp = t.backend.xp
    bad = (t.data < 0) | (t.data >= n)
    if bool(xp.any(bad)):
        first = int(xp.reshape(t.data, (-1,))[int(xp.argmax(xp.reshape(xp.astype(bad, xp.int8), (-1,))))])
        raise ValueError(f"gradtape.nn.cross_entropy: label {first} is out of range for {n} classes (logits of "
                         f"shape {x.shape}); labels must be in [0, {n - 1}] (no ignore index)")


# ---- modules, parameters, initialisers (gradtape/modules.py), re-exported here as gt.nn.* ----
from ..nn.modules import Module, Parameter, Linear, Sequential, ReLU, Sigmoid, Tanh, Softplus, Identity, Flatten, Dropout, LogSoftmax, Softmax, CrossEntropyLoss, MSELoss, StateDictKeyError, Generator, manual_seed, default_generator, init, calculate_gain, xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_, uniform_, normal_, zeros_, ones_, constant_
from ..nn import modules as _modules  # noqa: E402
__all__ = __all__ + [n for n in _modules.__all__ if n not in __all__]
