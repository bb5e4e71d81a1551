"""Manipulation functions of the array API, differentiable: ``reshape``, ``permute_dims``, ``broadcast_to``,
``expand_dims``, ``squeeze``, ``moveaxis``, ``flip``, ``roll``, ``tril``/``triu``, ``concat``, ``stack``,
``unstack``, ``where``, ``tile``, ``meshgrid`` (their primitives: :mod:`gradtape._ops.shape`).

>>> import gradtape as gt
>>> gt.reshape(gt.arange(6.0), (2, 3)).shape
(2, 3)
"""
from __future__ import annotations

from .._axes import axis_index, axis_tuple
from .._core.dispatch import apply, apply1
from .._core.tensor import Tensor
from .._ops.shape import (_concat_prim, broadcast_p, flip_p, permute_p, reshape_p, roll_p, tril_p, triu_p,
                          where_p)
from .creation import as_tensor, asarray
from .info import broadcast_shapes
from .public import public

__all__ = ["reshape", "permute_dims", "matrix_transpose", "broadcast_to", "broadcast_arrays", "expand_dims",
           "squeeze", "moveaxis", "flip", "roll", "tril", "triu", "concat", "stack", "unstack", "where", "tile",
           "meshgrid"]


@public
def reshape(x, /, shape, *, copy=None):
    """Array API ``reshape``; differentiable.

    >>> import gradtape as gt
    >>> gt.reshape(gt.arange(6.0), (2, 3)).shape
    (2, 3)
    """
    x = as_tensor(x)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if -1 in shape:       # resolve it, so the rules can use the shape with leading batch axes
        known = 1
        for n in shape:
            known *= n if n != -1 else 1
        if shape.count(-1) > 1 or (known == 0 or x.size % known) and x.size:
            raise ValueError(f"gradtape.reshape: cannot reshape an array of shape {x.shape} into {shape}")
        shape = tuple(n if n != -1 else (x.size // known if known else 0) for n in shape)
    if shape == x.shape and not copy:
        return x
    return apply1(reshape_p, x, {"shape": shape, "xshape": x.shape})


def reshaped(x, shape):
    """Tensor x reshaped to ``shape`` (resolved: no -1), or x itself when that is its shape: what the other
    functions of this layer call (no argument checks, no ``@public`` frame)."""
    return x if shape == x.shape else apply1(reshape_p, x, {"shape": shape, "xshape": x.shape})


@public
def permute_dims(x, /, axes):
    """Array API ``permute_dims``; differentiable.

    >>> import gradtape as gt
    >>> gt.permute_dims(gt.ones((2, 3)), (1, 0)).shape
    (3, 2)
    """
    x = as_tensor(x)
    axes = axis_tuple(tuple(axes), x.ndim, "permute_dims", x.shape, allow_none=False)
    if len(axes) != x.ndim:
        raise ValueError(f"gradtape.permute_dims: axes {axes} are not a permutation of the {x.ndim} axes of an "
                         f"array of shape {x.shape}")
    return apply1(permute_p, x, {"axes": axes})


@public
def matrix_transpose(x, /):
    """Transpose of the last two axes.

    >>> import gradtape as gt
    >>> gt.matrix_transpose(gt.ones((4, 2, 3))).shape
    (4, 3, 2)
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"gradtape.matrix_transpose: needs at least 2 dimensions, got shape {x.shape}")
    return apply1(permute_p, x, {"axes": tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)})


@public
def broadcast_to(x, /, shape):
    """Array API ``broadcast_to``; its VJP sums the broadcast axes.

    >>> import gradtape as gt
    >>> gt.broadcast_to(gt.ones((3, 1)), (2, 3, 4)).shape
    (2, 3, 4)
    """
    x = as_tensor(x)
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return apply1(broadcast_p, x, {"shape": shape, "xshape": x.shape})


@public
def broadcast_arrays(*arrays):
    """Array API ``broadcast_arrays``.

    >>> import gradtape as gt
    >>> [a.shape for a in gt.broadcast_arrays(gt.ones((3, 1)), gt.ones((4,)))]
    [(3, 4), (3, 4)]
    """
    arrays = [as_tensor(a) for a in arrays]
    shape = broadcast_shapes(*[a.shape for a in arrays])
    return [broadcast_to(a, shape) for a in arrays]


@public
def expand_dims(x, /, axis=0):
    """Array API ``expand_dims`` (``axis`` also positional, as in the 2024.12 standard; it defaults to 0).

    >>> import gradtape as gt
    >>> gt.expand_dims(gt.ones((2,)), axis=-1).shape
    (2, 1)
    """
    x = as_tensor(x)
    axes = axis_tuple(axis, x.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1), "expand_dims")
    shape, it = [], iter(x.shape)
    for i in range(x.ndim + len(axes)):
        shape.append(1 if i in axes else next(it))
    return apply1(reshape_p, x, {"shape": tuple(shape), "xshape": x.shape})


@public
def squeeze(x, /, axis):
    """Array API ``squeeze`` (axis required, the squeezed axes must have size 1).

    >>> import gradtape as gt
    >>> gt.squeeze(gt.ones((2, 1)), axis=1).shape
    (2,)
    """
    x = as_tensor(x)
    axes = axis_tuple(axis, x.ndim, "squeeze", x.shape, allow_none=False)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"gradtape.squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return x if shape == x.shape else apply1(reshape_p, x, {"shape": shape, "xshape": x.shape})


@public
def moveaxis(x, source, destination, /):
    """Array API ``moveaxis``.

    >>> import gradtape as gt
    >>> gt.moveaxis(gt.ones((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    x = as_tensor(x)
    src = axis_tuple(source, x.ndim, "moveaxis", x.shape, allow_none=False)
    dst = axis_tuple(destination, x.ndim, "moveaxis", x.shape, allow_none=False)
    if len(src) != len(dst):
        raise ValueError(f"gradtape.moveaxis: source {source!r} and destination {destination!r} must have the same "
                         f"number of elements")
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return apply1(permute_p, x, {"axes": tuple(order)})


@public
def flip(x, /, *, axis=None):
    """Array API ``flip``.

    >>> import gradtape as gt
    >>> gt.flip(gt.asarray([1.0, 2.0]))
    Tensor([2., 1.])
    """
    x = as_tensor(x)
    axes = axis_tuple(axis, x.ndim, "flip", x.shape)
    return apply1(flip_p, x, {"axis": tuple(a - x.ndim for a in axes)})


@public
def roll(x, /, shift, *, axis=None):
    """Array API ``roll``.

    >>> import gradtape as gt
    >>> gt.roll(gt.asarray([1.0, 2.0, 3.0]), 1)
    Tensor([3., 1., 2.])
    """
    x = as_tensor(x)
    shift = tuple(shift) if isinstance(shift, (list, tuple)) else shift
    if axis is None:          # roll of the flattened array
        return reshape(roll(reshape(x, (-1,)), shift if isinstance(shift, int) else sum(shift), axis=0), x.shape)
    if isinstance(axis, (list, tuple)):      # a repeated axis is allowed: its shifts add, as in NumPy
        shift = shift if isinstance(shift, tuple) else (shift,) * len(axis)
        if len(shift) != len(axis):
            raise ValueError(f"gradtape.roll: shift {shift!r} and axis {tuple(axis)!r} must have the same length")
        axis = tuple(axis_index(a, x.ndim, "roll", x.shape) - x.ndim for a in axis)
    else:
        axis = axis_index(axis, x.ndim, "roll", x.shape) - x.ndim
        if isinstance(shift, tuple):      # NumPy broadcasts the shifts against the one axis: they add
            shift = sum(shift)
    return apply1(roll_p, x, {"shift": shift, "axis": axis})


@public
def tril(x, /, *, k=0):
    """Array API ``tril``.

    >>> import gradtape as gt
    >>> gt.tril(gt.ones((2, 2)))
    Tensor([[1., 0.],
            [1., 1.]])
    """
    return apply(tril_p, (_matrix(x, "tril"),), {"k": k})


@public
def triu(x, /, *, k=0):
    """Array API ``triu``.

    >>> import gradtape as gt
    >>> gt.triu(gt.ones((2, 2)))
    Tensor([[1., 1.],
            [0., 1.]])
    """
    return apply(triu_p, (_matrix(x, "triu"),), {"k": k})


def _matrix(x, op):
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"gradtape.{op}: needs at least 2 dimensions, got shape {x.shape}")
    return x


@public
def concat(arrays, /, *, axis=0):
    """Array API ``concat``.

    >>> import gradtape as gt
    >>> gt.concat([gt.ones((2,)), gt.zeros((1,))])
    Tensor([1., 1., 0.])
    """
    arrays = [as_tensor(a) for a in arrays]
    if axis is None:
        arrays = [reshape(a, (-1,)) for a in arrays]
        axis = 0
    if not arrays:
        raise ValueError("gradtape.concat: needs at least one array")
    ndim = arrays[0].ndim
    if ndim == 0:
        raise ValueError("gradtape.concat: zero-dimensional arrays cannot be concatenated")
    ax = axis_index(axis, ndim, "concat", arrays[0].shape) - ndim
    if any(a.ndim != ndim or a.shape[:ndim + ax] + a.shape[ndim + ax + 1:] !=
           arrays[0].shape[:ndim + ax] + arrays[0].shape[ndim + ax + 1:] for a in arrays):
        raise ValueError(f"gradtape.concat: shapes {[a.shape for a in arrays]} differ outside axis {axis}")
    return _joined(arrays, ax)


def _joined(arrays, axis):
    """concat of tensors that fit along the negative ``axis``."""
    sizes = tuple(a.shape[axis] for a in arrays)
    return apply(_concat_prim(len(arrays)), tuple(arrays), {"axis": axis, "sizes": sizes})


@public
def stack(arrays, /, *, axis=0):
    """Array API ``stack``.

    >>> import gradtape as gt
    >>> gt.stack([gt.ones((2,)), gt.zeros((2,))]).shape
    (2, 2)
    """
    arrays = [as_tensor(a) for a in arrays]
    if not arrays:
        raise ValueError("gradtape.stack: needs at least one array")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"gradtape.stack: all arrays must have one shape, got {[a.shape for a in arrays]}")
    shape = arrays[0].shape
    a = axis_index(axis, len(shape) + 1, "stack", shape)
    row = shape[:a] + (1,) + shape[a:]
    return _joined([apply1(reshape_p, x, {"shape": row, "xshape": shape}) for x in arrays], a - len(shape) - 1)


@public
def unstack(x, /, *, axis=0):
    """Array API ``unstack``.

    >>> import gradtape as gt
    >>> len(gt.unstack(gt.ones((3, 2))))
    3
    """
    x = as_tensor(x)
    a = axis_index(axis, x.ndim, "unstack", x.shape)
    return tuple(x[(slice(None),) * a + (i,)] for i in range(x.shape[a]))


@public
def where(condition, x1, x2, /):
    """Array API ``where``; differentiable in x1 and x2.

    >>> import gradtape as gt
    >>> gt.where(gt.asarray([True, False]), gt.asarray([1.0, 2.0]), 0.0)
    Tensor([1., 0.])
    """
    c = as_tensor(condition)
    if not isinstance(x1, Tensor) and not isinstance(x2, Tensor):
        x1 = as_tensor(x1) if not isinstance(x1, (bool, int, float)) else x1
        x2 = as_tensor(x2) if not isinstance(x2, (bool, int, float)) else x2
    return apply(where_p, (c, x1, x2))


@public
def tile(x, repetitions, /):
    """Array API ``tile``.

    >>> import gradtape as gt
    >>> gt.tile(gt.asarray([1.0, 2.0]), (2,))
    Tensor([1., 2., 1., 2.])
    """
    x = as_tensor(x)
    reps = tuple(repetitions)
    ndim = max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    x = reshape(x, (1,) * (ndim - x.ndim) + x.shape)
    inter, big = [], []
    for r, n in zip(reps, x.shape):
        inter += [1, n]
        big += [r, n]
    y = broadcast_to(reshape(x, tuple(inter)), tuple(big))
    return reshape(y, tuple(r * n for r, n in zip(reps, x.shape)))


@public
def meshgrid(*arrays, indexing="xy"):
    """Array API ``meshgrid``; differentiable (broadcasts of the inputs).

    >>> import gradtape as gt
    >>> [a.shape for a in gt.meshgrid(gt.arange(3.0), gt.arange(2.0))]
    [(2, 3), (2, 3)]
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"gradtape.meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    arrays = [asarray(a) for a in arrays]
    n = len(arrays)
    sizes = [a.shape[0] if a.ndim else 1 for a in arrays]
    swap = indexing == "xy" and n >= 2
    if swap:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, a in enumerate(arrays):
        position = 1 - i if swap and i < 2 else i
        shape = [1] * n
        shape[position] = a.size
        out.append(broadcast_to(reshape(a, tuple(shape)), tuple(sizes)))
    return out
