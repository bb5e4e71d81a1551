"""MXNet ``nd`` names over gradtape (the seed's ``from mxnet import nd``).

As in MXNet, the creation functions default to float32.

>>> from gradtape import nd
>>> nd.ones((2, 1)).shape
(2, 1)
"""
from .. import _api
from .._api import (  # noqa: F401
    exp, log, sin, cos, tanh, sqrt, abs, sum, mean, max, min, prod, maximum, minimum, reshape, concat, stack,
    where, clip, sign, square, zeros_like, ones_like,
)
from .._core.tensor import Tensor as NDArray  # noqa: F401
from ..nn import relu, sigmoid, softmax, log_softmax  # noqa: F401

__all__ = ["exp", "log", "sin", "cos", "tanh", "sqrt", "abs", "sum", "mean", "max", "min", "prod", "maximum",
           "minimum", "reshape", "concat", "stack", "where", "clip", "sign", "square", "zeros_like", "ones_like",
           "NDArray", "relu", "sigmoid", "softmax", "log_softmax", "power", "array", "ones", "zeros", "full",
           "arange", "dot", "transpose", "norm"]

power = _api.pow


def _dtype(dtype):
    return _api.float32 if dtype is None else dtype


def _device(ctx):
    return None if ctx is None else str(ctx)


def array(source_array, ctx=None, dtype=None):
    """``nd.array``: float32 for Python numbers (as MXNet, ints included), the source's dtype for arrays, unless
    ``dtype`` is given."""
    t = _api.asarray(source_array, device=_device(ctx))
    if dtype is not None:
        return _api.astype(t, dtype)
    if isinstance(source_array, (list, tuple, int, float)) and not _api.isdtype(t.dtype, "bool"):
        return _api.astype(t, _api.float32)
    return t


def ones(shape, ctx=None, dtype=None):
    """``nd.ones`` (float32)."""
    return _api.ones(shape, dtype=_dtype(dtype), device=_device(ctx))


def zeros(shape, ctx=None, dtype=None):
    """``nd.zeros`` (float32)."""
    return _api.zeros(shape, dtype=_dtype(dtype), device=_device(ctx))


def full(shape, val, ctx=None, dtype=None):
    """``nd.full`` (float32)."""
    return _api.full(shape, val, dtype=_dtype(dtype), device=_device(ctx))


def arange(start, stop=None, step=1.0, ctx=None, dtype=None):
    """``nd.arange`` (float32)."""
    return _api.arange(start, stop, step, dtype=_dtype(dtype), device=_device(ctx))


def dot(lhs, rhs, transpose_a=False, transpose_b=False):
    """``nd.dot``: matrix product (with optional transposes)."""
    a = _api.matrix_transpose(lhs) if transpose_a else lhs
    b = _api.matrix_transpose(rhs) if transpose_b else rhs
    return _api.matmul(a, b)


def transpose(data, axes=None):
    """``nd.transpose``."""
    return _api.permute_dims(data, tuple(range(data.ndim))[::-1] if axes is None else axes)


def norm(data, ord=2, axis=None, keepdims=False):
    """``nd.norm``."""
    return _api.vector_norm(data, ord=ord, axis=axis, keepdims=keepdims)
