"""One axis normaliser for every op that takes ``axis``: errors as NumPy and the standard give them."""
from __future__ import annotations

import operator


class AxisError(ValueError, IndexError):
    """An axis out of range or repeated (a ValueError, and an IndexError as NumPy's AxisError is)."""


def axis_index(axis, ndim, op, shape=None):
    """``axis`` (an int in [-ndim, ndim)) as a non-negative index; AxisError naming ``op`` otherwise.

    >>> axis_index(-1, 3, "flip")
    2
    """
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"gradtape.{op}: axis must be an integer, got {axis!r}") from None
    if not -ndim <= a < ndim:
        where = f"shape {tuple(shape)}" if shape is not None else f"{ndim} dimension(s)"
        raise AxisError(f"gradtape.{op}: axis {a} is out of range for an array of {where} "
                        f"(valid: {-ndim} to {ndim - 1})" if ndim else
                        f"gradtape.{op}: axis {a} is out of range for a 0-d array (it has no axes)")
    return a % ndim


def axis_tuple(axis, ndim, op, shape=None, allow_none=True):
    """``axis`` (None, an int or a sequence of ints) as a tuple of distinct non-negative indices.

    None means every axis. A repeated axis is an AxisError.

    >>> axis_tuple((-1, 0), 3, "sum")
    (2, 0)
    """
    if axis is None:
        if not allow_none:
            raise TypeError(f"gradtape.{op}: axis must be given")
        return tuple(range(ndim))
    if not isinstance(axis, (tuple, list)):
        return (axis_index(axis, ndim, op, shape),)
    out = tuple(axis_index(a, ndim, op, shape) for a in axis)
    if len(set(out)) != len(out):
        raise AxisError(f"gradtape.{op}: repeated axis in {tuple(axis)} for an array of "
                        f"{'shape ' + str(tuple(shape)) if shape is not None else str(ndim) + ' dimension(s)'}")
    return out
