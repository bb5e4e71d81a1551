"""Functions outside the array API standard: activations, the stable log-sum-exp family, cross-entropy.

``relu``, ``sigmoid`` and ``softplus`` are elementwise primitives (defined in
:mod:`gradtape._ops.elementwise`, their functions in :mod:`gradtape._api.elementwise`). ``logsumexp``, ``log_softmax``, ``softmax`` and
``cross_entropy`` check their arguments here and then run one primitive each
(:mod:`gradtape._ops.nn`: stable for large logits, and one fused backward for the
softmax cross-entropy, as a hand-written gradient would do). They inspect shapes
before reaching the primitive, so they are ``@public``: called with a
``gradtape.sym`` Symbol they return the Symbol of the call.

>>> import gradtape as gt
>>> from gradtape import sym
>>> gt.nn.softmax(sym.var("a")).eval(a=gt.asarray([0.0, 0.0]))
Tensor([0.5, 0.5])
"""
from __future__ import annotations

from .._api import asarray, isdtype, mean, sum as array_sum   # the array-API sum (builtins.sum not shadowed)
from .._api.public import public
from .._axes import axis_tuple
from .._core.dispatch import apply, apply1
from .._core.tensor import Tensor
from .._api.elementwise import relu, sigmoid, softplus
from .._ops.nn import check_labels, cross_entropy_p, log_softmax_p, logsumexp_p, softmax_p

__all__ = ["relu", "sigmoid", "softplus", "logsumexp", "softmax", "log_softmax", "cross_entropy"]


def _reduced_axes(x, axis, op):
    """The reduced axes as distinct negative indices (the rules then accept leading batch axes)."""
    ndim = x.ndim
    if axis is None:
        return tuple(range(-ndim, 0))
    return tuple(sorted(a - ndim for a in axis_tuple(axis, ndim, op, x.shape)))


def _tensor(x, device=None):
    return x if isinstance(x, Tensor) else asarray(x, device=device)


@public
def logsumexp(x, /, *, axis=None, keepdims=False):
    """log(sum(exp(x))) computed without overflow.

    >>> import gradtape as gt
    >>> gt.nn.logsumexp(gt.asarray([1000.0, 1000.0]))
    Tensor(1000.69314718)
    """
    x = _tensor(x)
    return apply1(logsumexp_p, x, {"axis": _reduced_axes(x, axis, "nn.logsumexp"), "keepdims": keepdims})


@public
def log_softmax(x, /, *, axis=-1):
    """x - logsumexp(x) along ``axis``, stable.

    >>> import gradtape as gt
    >>> gt.nn.log_softmax(gt.asarray([0.0, 0.0]))
    Tensor([-0.69314718, -0.69314718])
    """
    x = _tensor(x)
    return apply1(log_softmax_p, x, {"axis": _reduced_axes(x, axis, "nn.log_softmax")})


@public
def softmax(x, /, *, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, stable.

    >>> import gradtape as gt
    >>> gt.nn.softmax(gt.asarray([0.0, 0.0]))
    Tensor([0.5, 0.5])
    """
    x = _tensor(x)
    return apply1(softmax_p, x, {"axis": _reduced_axes(x, axis, "nn.softmax")})


@public
def cross_entropy(logits, target, /):
    """Mean softmax cross-entropy over the batch (last axis = classes).

    ``target`` holds integer class indices (shape ``logits.shape[:-1]``) or
    class probabilities (the shape of ``logits``, differentiable too). Over an empty batch it is NaN, as
    torch's (with probabilities, also torch's zero derivatives there; with labels, NaN ones, as ``nll_loss``).

    >>> import gradtape as gt
    >>> gt.nn.cross_entropy(gt.asarray([[0.0, 0.0]]), gt.asarray([1]))
    Tensor(0.69314718)
    >>> gt.nn.cross_entropy(gt.asarray([[0.0, 0.0]]), gt.asarray([[0.5, 0.5]]))
    Tensor(0.69314718)
    """
    x = _tensor(logits)
    t = _tensor(target, device=x.device)
    if isdtype(t.dtype, "integral"):
        if t.shape != x.shape[:-1]:
            raise ValueError(f"gradtape.nn.cross_entropy: labels of shape {t.shape} do not match logits of shape "
                             f"{x.shape} (expected {x.shape[:-1]})")
        _check_labels(x, t)
        return apply(cross_entropy_p, (x, t))
    if t.shape != x.shape:
        raise ValueError(f"gradtape.nn.cross_entropy: target probabilities of shape {t.shape} do not match logits "
                         f"of shape {x.shape}")
    if x.size == 0:     # no rows or no classes: NaN with zero derivatives, as torch's -(x * t).sum().fill_(nan)
        return -(array_sum(t * x) * 0.0 + float("nan"))      # (the mean's JVP would be 0/0: NaN)
    return -mean(array_sum(t * log_softmax(x, axis=-1), axis=-1))


def _check_labels(x, t):
    """Class labels in [0, classes): a -1 would pick the last class forward and none in the gradient."""
    classes = x.shape[-1] if x.ndim else 0
    if classes == 0:
        raise ValueError(f"gradtape.nn.cross_entropy: logits of shape {x.shape} have no classes (last axis of "
                         f"size 0)")
    check_labels(t.backend.xp, t.data, classes, x.shape)
