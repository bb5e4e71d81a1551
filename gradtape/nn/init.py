"""Initialisers (PyTorch's names): fill a parameter in place, drawing on its own device.

Reached as ``gt.nn.init.xavier_uniform_(w)`` (this module) and as ``gt.nn.xavier_uniform_(w)``.
Each writes new values into a leaf tensor and bumps its version, so a graph that saved the old
values raises at backward instead of using the new ones.

>>> import gradtape as gt
>>> w = gt.nn.init.zeros_(gt.ones((2, 3)))
>>> w.shape, float(gt.sum(w))
((2, 3), 0.0)
"""
from __future__ import annotations

import math

from .._core.dtypes import dtype_name, is_float
from .._core.tensor import Tensor
from .random import drawn, resolve_generator

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]


def write_leaf(t, values, what):
    """Write ``values`` (a backend array of t's shape) into the leaf tensor ``t`` in place; returns t.

    Also what :meth:`gradtape.nn.Module.load_state_dict` writes with (``what`` names the caller in errors)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"gradtape.nn.init.{what}: expected a Tensor, got {type(t).__name__}")
    if t._node is not None:
        raise RuntimeError(f"gradtape.nn.init.{what}: the tensor (shape {t.shape}) is the result of a recorded "
                           f"operation, not a leaf; initialise parameters, not intermediate results")
    if tuple(values.shape) != t.shape:
        raise ValueError(f"gradtape.nn.init.{what}: values of shape {tuple(values.shape)} for a tensor of shape "
                         f"{t.shape}")
    t.data = values
    t._version += 1          # graphs that saved the old values see the change
    return t


def _float_dtype(t, what):
    if not is_float(t.dtype):
        raise TypeError(f"gradtape.nn.init.{what}: needs a floating-point tensor, got dtype {t.dtype} "
                        f"(shape {t.shape})")
    return dtype_name(t.dtype)


def _fans(t, what):
    if t.ndim < 2:
        raise ValueError(f"gradtape.nn.init.{what}: fan in and fan out need a tensor of at least 2 dimensions "
                         f"(out_features, in_features, ...), got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """Recommended gain for an activation (PyTorch's table).

    >>> import gradtape as gt
    >>> round(gt.nn.init.calculate_gain("relu"), 4)
    1.4142
    """
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"gradtape.nn.init.calculate_gain: unknown nonlinearity {nonlinearity!r}")


def uniform_(t, low=0.0, high=1.0, *, generator=None):
    """Fill ``t`` in place with U[low, high) samples drawn on its device.

    >>> import gradtape as gt
    >>> w = gt.nn.init.uniform_(gt.zeros((100,)), -1.0, 1.0, generator=0)
    >>> bool(gt.all(gt.abs(w) <= 1.0))
    True
    """
    g, backend = resolve_generator(generator).stream(t.device)
    return write_leaf(t, drawn(lambda d: g.uniform(t.shape, d, low, high), _float_dtype(t, "uniform_"), backend),
                      "uniform_")


def normal_(t, mean=0.0, std=1.0, *, generator=None):
    """Fill ``t`` in place with N(mean, std²) samples drawn on its device.

    >>> import gradtape as gt
    >>> gt.nn.init.normal_(gt.zeros((2, 2)), generator=0).shape
    (2, 2)
    """
    g, backend = resolve_generator(generator).stream(t.device)
    return write_leaf(t, drawn(lambda d: g.normal(t.shape, d, mean, std), _float_dtype(t, "normal_"), backend),
                      "normal_")


def constant_(t, value):
    """Fill ``t`` in place with ``value``.

    >>> import gradtape as gt
    >>> gt.nn.init.constant_(gt.zeros((2,)), 0.5)
    Tensor([0.5, 0.5])
    """
    return write_leaf(t, t.backend.xp.full(t.data.shape, value, dtype=t.data.dtype), "constant_")


def zeros_(t):
    """Fill ``t`` in place with zeros.

    >>> import gradtape as gt
    >>> gt.nn.init.zeros_(gt.ones((2,)))
    Tensor([0., 0.])
    """
    return write_leaf(t, t.backend.xp.zeros_like(t.data), "zeros_")


def ones_(t):
    """Fill ``t`` in place with ones.

    >>> import gradtape as gt
    >>> gt.nn.init.ones_(gt.zeros((2,)))
    Tensor([1., 1.])
    """
    return write_leaf(t, t.backend.xp.ones_like(t.data), "ones_")


def xavier_uniform_(t, gain=1.0, *, generator=None):
    """Glorot/Xavier uniform: U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)); shape (out, in, ...).

    >>> import gradtape as gt
    >>> w = gt.nn.init.xavier_uniform_(gt.zeros((30, 20)), generator=0)
    >>> bool(gt.max(gt.abs(w)) <= (6 / 50) ** 0.5)
    True
    """
    fan_in, fan_out = _fans(t, "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, generator=generator)


def xavier_normal_(t, gain=1.0, *, generator=None):
    """Glorot/Xavier normal: N(0, std²) with std = gain·sqrt(2 / (fan_in + fan_out)).

    >>> import gradtape as gt
    >>> gt.nn.init.xavier_normal_(gt.zeros((30, 20)), generator=0).shape
    (30, 20)
    """
    fan_in, fan_out = _fans(t, "xavier_normal_")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)


def _kaiming_std(t, a, mode, nonlinearity, what):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"gradtape.nn.init.{what}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t, what)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, generator=None):
    """He/Kaiming uniform: U(-b, b) with b = gain·sqrt(3 / fan) (``a``: leaky_relu slope).

    >>> import gradtape as gt
    >>> w = gt.nn.init.kaiming_uniform_(gt.zeros((30, 20)), nonlinearity="relu", generator=0)
    >>> bool(gt.max(gt.abs(w)) <= (6 / 20) ** 0.5)
    True
    """
    b = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(t, -b, b, generator=generator)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, generator=None):
    """He/Kaiming normal: N(0, std²) with std = gain / sqrt(fan).

    >>> import gradtape as gt
    >>> gt.nn.init.kaiming_normal_(gt.zeros((30, 20)), nonlinearity="relu", generator=0).shape
    (30, 20)
    """
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"), generator=generator)
