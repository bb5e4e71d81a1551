"""The array-API layer: the functions users call (``gt.sin``, ``gt.sum``, ``gt.reshape``...), one module per topic.

  dtypes        the dtype objects and isdtype/result_type/can_cast/finfo/iinfo
  device        default device, to_device, synchronize, memory_stats
  creation      asarray, astype, from_dlpack, to_numpy, zeros/ones/full/eye/arange/linspace/empty (+ *_like)
  info          __array_namespace_info__, broadcast_shapes, e/pi/inf/nan/newaxis
  manipulation  reshape, permute_dims, broadcast_to, expand_dims, squeeze, concat, stack, where, tile, meshgrid...
  indexing      x[key] (getitem), setitem, index_add, take, take_along_axis, repeat, sort (+ the scatter-adds)
  elementwise   the functions bound from the primitive registry, and clip/real/imag/conj
  reductions    sum, prod, mean, var, std, max, min, cumulative_sum/prod, diff
  products      matmul, vecdot, tensordot, vector_norm
  nondiff       comparisons, rounding, searching, sets, all/any (declared in a table)
  linalg        the gt.linalg extension

This package also fills two registration points of the core: ``hooks.API`` (the functions the Tensor
methods and the lower layers call at run time: the same functions, without the ``@public`` check for
symbols) and ``hooks.RULES`` (the tensor-level namespace rules see when their derivatives are recorded).

>>> import gradtape as gt
>>> from gradtape._core import hooks
>>> hooks.API.reshape is gt.reshape.__wrapped__
True
"""
from __future__ import annotations

import types

from .._core import hooks
from .._core.dispatch import device_error
from .elementwise import abs, relu, sigmoid, softplus
from . import (creation, device, dtypes, elementwise, indexing, info, linalg, manipulation, nondiff, numpy_protocol,
               products, reductions, rules)
from .creation import *  # noqa: F401,F403
from .device import *  # noqa: F401,F403
from .dtypes import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403  (the functions bound from the registry)
from .indexing import *  # noqa: F401,F403
from .info import *  # noqa: F401,F403
from .info import __array_namespace_info__  # noqa: F401
from .manipulation import *  # noqa: F401,F403
from .nondiff import *  # noqa: F401,F403
from .products import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403

# the array-API names of ``gt`` besides the elementwise functions bound from the registry
_NAMES = [
    'DTYPES', 'DType', 'NONDIFF', 'abs', 'all', 'any', 'arange', 'argmax', 'argmin', 'argsort', 'asarray',
    'astype', 'bitwise_and', 'bitwise_invert', 'bitwise_left_shift', 'bitwise_or', 'bitwise_right_shift',
    'bitwise_xor', 'bool', 'broadcast_arrays', 'broadcast_shapes', 'broadcast_to', 'can_cast', 'ceil', 'clip',
    'complex128', 'complex64', 'concat', 'conj', 'count_nonzero', 'cumulative_prod', 'cumulative_sum',
    'default_device', 'diff', 'e', 'empty', 'empty_like', 'equal', 'expand_dims', 'eye', 'finfo', 'flip',
    'float16', 'float32', 'float64', 'floor', 'floor_divide', 'from_dlpack', 'full', 'full_like', 'get_default_device',
    'greater', 'greater_equal', 'iinfo', 'imag', 'inf', 'int16', 'int32', 'int64', 'int8', 'isdtype', 'isfinite',
    'isin', 'isinf', 'isnan', 'less', 'less_equal', 'linspace', 'logical_and', 'logical_not', 'logical_or',
    'logical_xor', 'matmul', 'matrix_transpose', 'max', 'mean', 'memory_stats', 'meshgrid', 'min', 'moveaxis',
    'nan', 'newaxis', 'nextafter', 'nonzero', 'not_equal', 'ones', 'ones_like', 'permute_dims', 'pi', 'prod',
    'real', 'repeat', 'reshape', 'result_type', 'roll', 'round', 'searchsorted', 'set_default_device', 'sign',
    'signbit', 'sort', 'squeeze', 'stack', 'std', 'sum', 'synchronize', 'take', 'take_along_axis', 'tensordot',
    'tile', 'to_device', 'to_numpy', 'tril', 'triu', 'trunc', 'uint16', 'uint32', 'uint64', 'uint8', 'unique_all',
    'unique_counts', 'unique_inverse', 'unique_values', 'unstack', 'var', 'vecdot', 'where', 'zeros',
    'zeros_like', '__array_namespace_info__']
__all__ = sorted(set(_NAMES) | set(elementwise.__all__))


def _plain(f):
    """The function itself, without the ``@public`` check for symbols (the core calls it with tensors)."""
    return f.__wrapped__ if getattr(f, "__gradtape_symbolic__", False) else f


_TOPICS = (dtypes, device, creation, info, manipulation, indexing, elementwise, reductions, products, nondiff)
hooks.API = types.SimpleNamespace(
    **{name: _plain(getattr(module, name)) for module in _TOPICS for name in module.__all__},
    relu=relu, sigmoid=sigmoid, softplus=softplus, device_error=device_error,
    numpy_ufunc=numpy_protocol.ufunc, numpy_function=numpy_protocol.function)
hooks.RULES = rules.namespace(vars(hooks.API), linalg.namespace)
