"""The linear-algebra functions of the main namespace (also in ``gt.linalg``): ``matmul``, ``vecdot``,
``tensordot``, ``vector_norm`` (their primitives: :mod:`gradtape._ops.matmul`).

>>> import gradtape as gt
>>> gt.matmul(gt.ones((2, 3)), gt.ones((3,)))
Tensor([3., 3.])
"""
from __future__ import annotations

import math

from .._axes import AxisError, axis_index, axis_tuple
from .._core.dispatch import apply, apply1, device_error, wrap
from .._ops import matmul as ops
from .elementwise import abs as absolute
from .creation import as_tensor, astype, tracked
from .info import broadcast_shapes
from .manipulation import permute_dims, reshape, where
from .public import public
from .reductions import max as maximum, min as minimum, reduced_axes, sum as total

__all__ = ["matmul", "vecdot", "tensordot", "vector_norm"]


@public
def matmul(x1, x2, /):
    """Array API ``matmul`` (``@``).

    >>> import gradtape as gt
    >>> gt.matmul(gt.ones((2, 3)), gt.ones((3,)))
    Tensor([3., 3.])
    """
    x1, x2 = as_tensor(x1), as_tensor(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError(f"gradtape.matmul: operands must have at least 1 dimension, got shapes {x1.shape} and "
                         f"{x2.shape}")
    k2 = x2.shape[-2] if x2.ndim > 1 else x2.shape[0]
    if x1.shape[-1] != k2:
        raise ValueError(f"gradtape.matmul: shapes {x1.shape} and {x2.shape} do not match: {x1.shape[-1]} columns "
                         f"against {k2} rows")
    if x1.ndim > 2 or x2.ndim > 2:
        try:
            broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
        except ValueError:
            raise ValueError(f"gradtape.matmul: the stack shapes of {x1.shape} and {x2.shape} do not broadcast "
                             f"({x1.shape[:-2]} and {x2.shape[:-2]})") from None
    return apply(ops.matmul, (x1, x2), {"nd": (x1.ndim, x2.ndim)})


@public
def vecdot(x1, x2, /, *, axis=-1):
    """Array API ``vecdot`` (real inputs).

    >>> import gradtape as gt
    >>> gt.vecdot(gt.ones((2, 3)), gt.ones((3,)))
    Tensor([3., 3.])
    """
    x1, x2 = as_tensor(x1), as_tensor(x2)
    ndim = max(x1.ndim, x2.ndim)
    given, axis = axis, axis_index(axis, ndim, "vecdot", x1.shape if x1.ndim == ndim else x2.shape) - ndim
    if -axis > min(x1.ndim, x2.ndim):
        raise AxisError(f"gradtape.vecdot: axis {given} is out of range for shapes {x1.shape} and {x2.shape} "
                        f"(it must be an axis of both)")
    if x1.shape[axis] != x2.shape[axis]:
        raise ValueError(f"gradtape.vecdot: shapes {x1.shape} and {x2.shape} differ along axis {axis}")
    return apply(ops.vecdot_, (x1, x2), {"axis": axis, "nd": (x1.ndim, x2.ndim)})


@public
def tensordot(x1, x2, /, *, axes=2):
    """Array API ``tensordot``.

    >>> import gradtape as gt
    >>> gt.tensordot(gt.ones((2, 3)), gt.ones((3, 4)), axes=1).shape
    (2, 4)
    """
    x1, x2 = as_tensor(x1), as_tensor(x2)
    if isinstance(axes, int):
        if not 0 <= axes <= min(x1.ndim, x2.ndim):
            raise ValueError(f"gradtape.tensordot: axes={axes} is out of range for shapes {x1.shape} and {x2.shape}")
        a1 = list(range(x1.ndim - axes, x1.ndim))
        a2 = list(range(axes))
    else:
        a1 = list(axis_tuple(tuple(axes[0]), x1.ndim, "tensordot", x1.shape, allow_none=False))
        a2 = list(axis_tuple(tuple(axes[1]), x2.ndim, "tensordot", x2.shape, allow_none=False))
        if len(a1) != len(a2):
            raise ValueError(f"gradtape.tensordot: axes {axes} pair {len(a1)} axes of x1 with {len(a2)} of x2")
    if any(x1.shape[i] != x2.shape[j] for i, j in zip(a1, a2)):
        raise ValueError(f"gradtape.tensordot: shapes {x1.shape} and {x2.shape} differ along the contracted axes "
                         f"{tuple(a1)} and {tuple(a2)}")
    if not tracked(x1, x2):
        if x1.backend is not x2.backend:
            raise device_error("tensordot", [x1, x2])
        return wrap(x1.backend.xp.tensordot(x1.data, x2.data, axes=(tuple(a1), tuple(a2))), x1.backend)
    f1 = [i for i in range(x1.ndim) if i not in a1]
    f2 = [i for i in range(x2.ndim) if i not in a2]
    k = math.prod(x1.shape[i] for i in a1)
    m1 = reshape(permute_dims(x1, tuple(f1 + a1)), (math.prod(x1.shape[i] for i in f1), k))
    m2 = reshape(permute_dims(x2, tuple(a2 + f2)), (k, math.prod(x2.shape[i] for i in f2)))
    return reshape(matmul(m1, m2), tuple(x1.shape[i] for i in f1) + tuple(x2.shape[i] for i in f2))


@public
def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002  (array API name)
    """``linalg.vector_norm``: the vector ``ord``-norm over ``axis`` (all axes when None), a real result for
    complex ``x`` too; the gradient of every p-norm with p >= 1 (and inf) at 0 is 0 (not NaN), as torch, and of
    a complex input PyTorch's (x/‖x‖ for ord 2), the JVP Re(conj(x) · t)/‖x‖.

    >>> import gradtape as gt
    >>> gt.linalg.vector_norm(gt.asarray([3.0, 4.0]))
    Tensor(5.)
    >>> gt.grad(gt.linalg.vector_norm)(gt.asarray([3.0 + 4.0j]))
    Tensor([0.6+0.8j])
    """
    x = as_tensor(x)
    axes = reduced_axes(x, axis, "linalg.vector_norm")
    if ord == 2:
        return apply1(ops.norm2, x, {"axis": axes, "keepdims": keepdims})
    if isinstance(ord, (int, float)) and not isinstance(ord, bool) and 1 < ord < math.inf:
        return apply1(ops.normp, x, {"axis": axes, "keepdims": keepdims, "p": float(ord)})
    if not tracked(x):
        return wrap(x.backend.xp.linalg.vector_norm(x.data, axis=axis, keepdims=keepdims, ord=ord), x.backend)
    a = absolute(x)
    if ord == math.inf:
        return maximum(a, axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return minimum(a, axis=axes, keepdims=keepdims)
    if ord == 0:
        return total(astype(x != 0, a.dtype), axis=axes, keepdims=keepdims)
    if ord == 1:
        return total(a, axis=axes, keepdims=keepdims)
    if ord < 1:     # (0 < p < 1, p < 0) |x|^p has an infinite slope or value at 0: gradients 0 there (torch), not NaN
        zero = a == 0
        a = where(zero, 0.0 if ord > 0 else math.inf, where(zero, 1.0, a) ** ord)
        return total(a, axis=axes, keepdims=keepdims) ** (1.0 / ord)
    return total(a ** ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)
