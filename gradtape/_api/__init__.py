"""The array-API layer: the functions users call (``gt.sin``, ``gt.sum``, ``gt.reshape``...).

This package module is also what the core reaches as ``hooks.API`` (Tensor methods, coercion) and,
through :mod:`.rules`, the tensor-level namespace of recorded derivatives (``hooks.RULES``).
"""
from __future__ import annotations

import sys
import types

from .._core import hooks
from .._core.dispatch import device_error
from .._ops.elementwise import abs, relu_fn as relu, sigmoid_fn as sigmoid, softplus_fn as softplus  # noqa: F401
from .._ops import linalg as _linalg
from .._ops.indexing import getitem, setitem, index_add  # noqa: F401
from .._ops.shape import (reshape, permute_dims, matrix_transpose, broadcast_to, broadcast_arrays, astype,  # noqa: F401
                          expand_dims, squeeze, moveaxis, flip, roll, tril, triu, concat, stack, unstack, where,
                          take, take_along_axis, repeat, tile, take_add, along_add)
from . import elementwise as _elementwise
from . import namespace as _namespace
from . import rules as _rules
from .elementwise import *  # noqa: F401,F403  (the functions bound from the registry)
from .namespace import *  # noqa: F401,F403
from .namespace import __array_namespace_info__  # noqa: F401

_LINALG = types.SimpleNamespace(**{n: getattr(_linalg, n) for n in _linalg.__all__},
                                matmul=_namespace.matmul, tensordot=_namespace.tensordot,
                                vecdot=_namespace.vecdot, vector_norm=_namespace.vector_norm,
                                matrix_transpose=matrix_transpose)

# the array-API names of ``gt`` besides the elementwise functions bound from the registry
_NAMES = [
    'DTYPES', 'DType', 'NONDIFF', 'abs', 'all', 'any', 'arange', 'argmax', 'argmin', 'argsort', 'asarray',
    'astype', 'bitwise_and', 'bitwise_invert', 'bitwise_left_shift', 'bitwise_or', 'bitwise_right_shift',
    'bitwise_xor', 'bool', 'broadcast_arrays', 'broadcast_shapes', 'broadcast_to', 'can_cast', 'ceil', 'clip',
    'complex128', 'complex64', 'concat', 'conj', 'count_nonzero', 'cumulative_prod', 'cumulative_sum',
    'default_device', 'diff', 'e', 'empty', 'empty_like', 'equal', 'expand_dims', 'eye', 'finfo', 'flip',
    'float32', 'float64', 'floor', 'floor_divide', 'from_dlpack', 'full', 'full_like', 'get_default_device',
    'greater', 'greater_equal', 'iinfo', 'imag', 'inf', 'int16', 'int32', 'int64', 'int8', 'isdtype', 'isfinite',
    'isin', 'isinf', 'isnan', 'less', 'less_equal', 'linspace', 'logical_and', 'logical_not', 'logical_or',
    'logical_xor', 'matmul', 'matrix_transpose', 'max', 'mean', 'memory_stats', 'meshgrid', 'min', 'moveaxis',
    'nan', 'newaxis', 'nextafter', 'nonzero', 'not_equal', 'ones', 'ones_like', 'permute_dims', 'pi', 'prod',
    'real', 'repeat', 'reshape', 'result_type', 'roll', 'round', 'searchsorted', 'set_default_device', 'sign',
    'signbit', 'sort', 'squeeze', 'stack', 'std', 'sum', 'synchronize', 'take', 'take_along_axis', 'tensordot',
    'tile', 'to_device', 'to_numpy', 'tril', 'triu', 'trunc', 'uint16', 'uint32', 'uint64', 'uint8', 'unique_all',
    'unique_counts', 'unique_inverse', 'unique_values', 'unstack', 'var', 'vecdot', 'where', 'zeros',
    'zeros_like', '__array_namespace_info__']
__all__ = sorted(_NAMES + _elementwise.__all__)

hooks.API = sys.modules[__name__]
hooks.RULES = _rules.namespace({k: v for k, v in vars(sys.modules[__name__]).items()
                                if not k.startswith("_") and not isinstance(v, types.ModuleType)}, _LINALG)
