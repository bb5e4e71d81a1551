"""Indexing as NumPy reads it, on every backend: ``x[key]`` and ``x[key] = v``, and the gathers ``take``,
``take_along_axis``, ``repeat``, ``sort`` with the scatter-adds that are their transposes.

One normaliser (:func:`_norm_key`) reads a key (ints, slices, None, ``...``, integer and boolean arrays)
into entries naming every axis; basic keys are one ``getitem`` primitive, keys with arrays one
:func:`take` of the flattened indexed axes, so derivatives (batched ones too) are those of take, reshape
and permute_dims, and array-api-strict (which takes integer arrays only as full-rank keys) supports them.
The primitives are in :mod:`gradtape._ops.indexing`.

>>> import gradtape as gt
>>> x = gt.asarray([1.0, 2.0, 3.0])
>>> x[1:], gt.take(x, gt.asarray([2, 0]))
(Tensor([2., 3.]), Tensor([3., 1.]))
"""
from __future__ import annotations

import operator

from .._axes import axis_index
from .._core.dispatch import apply, apply1, device_error, wrap
from .._core.dtypes import DTYPES
from .._core.tensor import Tensor
from .._ops.indexing import along_add_p, along_p, getitem_p, index_add_p, setitem_p, take_add_p, take_p
from .._state import state
from .creation import as_tensor, asarray, tracked
from .info import broadcast_shapes
from .manipulation import broadcast_to, permute_dims, reshape, reshaped, where
from .nondiff import argsort
from .public import public

__all__ = ["getitem", "setitem", "index_add", "take", "take_add", "take_along_axis", "along_add", "repeat", "sort"]


class IndexRangeError(IndexError, ValueError):
    """An index out of range (an IndexError as in NumPy, and the ValueError of out-of-range values)."""


class _Mask:
    """A boolean array entry of a normalised key (it covers ``ndim`` axes)."""
    __slots__ = ("a", "ndim", "shape", "new")

    def __init__(self, a, new=False):        # new: a 0-d mask, read as a (1,) mask of a new size-1 axis
        self.a, self.ndim, self.shape, self.new = a, a.ndim, tuple(a.shape), new


class _Key(list):
    """Normalised key entries; ``gap``: where a ``...`` that stands for no axes was (it still separates
    advanced indices, as in NumPy), else None; ``vshape``: the shape the key indexes when 0-d masks add axes."""
    gap = vshape = None


def _isarr(e):
    return hasattr(e, "shape")


def _span(e):
    """How many axes of the array a (non-None) key entry consumes."""
    return e.ndim if type(e) is _Mask else 1


def _norm_key(x, key, op):
    """``key`` as a list of entries naming every axis of x: Nones, ints in [0, n), slices clamped as NumPy
    reads them, integer arrays (raw, negative entries wrapped) and _Masks (shape-checked)."""
    backend, shape = x.backend, x.shape
    xp = backend.xp
    ks = key if type(key) is tuple else (key,)
    items, used, ell = [], 0, None
    for k in ks:
        if k is None or type(k) is slice:
            used += k is not None
        elif k is Ellipsis:
            if ell is not None:
                raise IndexError(f"gradtape.{op}: an index can only have a single ellipsis ('...')")
            ell = len(items)
        elif type(k) is int:
            used += 1
        elif isinstance(k, bool) or _isarr(k) or isinstance(k, list):   # a list is an array index (NumPy, torch)
            if isinstance(k, Tensor):
                if type(k) is not Tensor:
                    return None         # a gt.vmap tracer: a batched index (see _batched_key)
                if k.backend is not backend:
                    raise device_error(op, [x, k])
                kt, k = k, k.data
            else:
                try:
                    kt, k = None, asarray(k, device=x.device, dtype=DTYPES["int64"] if type(k) is list and not k else None).data
                except (TypeError, ValueError) as e:
                    raise IndexError(f"gradtape.{op}: a list index must hold integers or booleans (an array "
                                     f"index), got {k!r:.60}: {e}") from None
            if xp.isdtype(k.dtype, "bool"):
                if kt is not None and state.tracer is not None:     # the positions fix the result's shape
                    state.tracer.guard(kt, "mask", kt.tolist())
                k = _Mask(k) if k.ndim else _Mask(xp.reshape(k, (1,)), new=True)
                used += 0 if k.new else k.ndim
            elif xp.isdtype(k.dtype, "integral"):
                k = int(k) if k.ndim == 0 else k
                if kt is not None and state.tracer is not None and type(k) is int:
                    state.tracer.guard(kt, "index", k)
                used += 1
            else:
                raise IndexError(f"gradtape.{op}: arrays used as indices must be of integer or boolean dtype, "
                                 f"got {k.dtype}")
        else:
            try:
                k = operator.index(k)
            except TypeError:
                raise IndexError(f"gradtape.{op}: only integers, slices, None, '...', and integer or boolean "
                                 f"arrays are valid indices, got {type(k).__name__}") from None
            used += 1
        if k is not Ellipsis:
            items.append(k)
    if used > len(shape):
        raise IndexError(f"gradtape.{op}: too many indices for an array of shape {shape}: {used} were given")
    out, d = _Key(), 0
    if used < len(shape):
        fill = [_ALL] * (len(shape) - used)
        items = items + fill if ell is None else items[:ell] + fill + items[ell:]
    elif ell is not None and ell < len(items):
        out.gap = ell
    if any(type(k) is _Mask and k.new for k in items):       # x[True] is x[None][[True]], as in NumPy
        vs, d = [], 0
        for k in items:
            if type(k) is _Mask and k.new:
                vs.append(1)
            elif k is not None:
                vs += shape[d:d + _span(k)]
                d += _span(k)
        shape = out.vshape = tuple(vs)
    d = 0
    for k in items:
        if k is None:
            out.append(k)
            continue
        n = shape[d]
        if type(k) is slice:
            r = range(*k.indices(n))      # bounds clamped as NumPy reads them; every backend gets in-range ones
            k = _ALL if not n or (r.start, r.stop, r.step) == (0, n, 1) else \
                slice(0, 0) if not r else slice(r.start, r.stop if r.stop >= 0 else None, r.step)
        elif type(k) is int:
            if not -n <= k < n:
                raise IndexRangeError(f"gradtape.{op}: index {k} is out of bounds for axis {d} with size {n} "
                                      f"(array shape {shape})")
            k %= n
        elif type(k) is _Mask:
            axes = shape[d:d + k.ndim]
            if k.shape != axes and len(axes) == k.ndim and all(m in (0, a) for m, a in zip(k.shape, axes)):
                # an empty mask selects nothing whatever the axis size (NumPy, array-api-strict): all False
                k = _Mask(xp.zeros(axes, dtype=xp.bool, device=k.a.device))
            elif k.shape != axes:
                raise IndexError(f"gradtape.{op}: boolean index of shape {k.shape} does not match the "
                                 f"indexed axes {shape[d:d + k.ndim]} of an array of shape {shape}")
            d += k.ndim - 1
        else:
            if k.size and bool(xp.any((k < -n) | (k >= n))):
                raise IndexRangeError(f"gradtape.{op}: an integer array index is out of bounds for axis {d} with "
                                      f"size {n} (array shape {shape})")
            k = xp.where(k < 0, k + n, k)      # the one-hot scatters of some backends never match a negative index
        d += 1
        out.append(k)
    return out


_ALL = slice(None)


def _adv_layout(xp, ents, shape):
    """For a key with arrays: the index arrays and sizes of the advanced axes (in key order; ints count, as
    in NumPy), their broadcast shape B, whether B stays in place (adjacent entries) and the slice axes before it."""
    arrays, sizes, pos, d = [], [], [], 0
    for i, e in enumerate(ents):
        if e is None or type(e) is slice:
            d += e is not None
            continue
        pos.append(i)
        if type(e) is _Mask:
            arrays += list(xp.nonzero(e.a))
            sizes += shape[d:d + e.ndim]
        else:
            arrays.append(e)
            sizes.append(shape[d])
        d += _span(e)
    b = broadcast_shapes(*[tuple(a.shape) for a in arrays if _isarr(a)])
    gap = getattr(ents, "gap", None)
    adjacent = pos == list(range(pos[0], pos[0] + len(pos))) and not (gap is not None and pos[0] < gap <= pos[-1])
    before = sum(1 for e in ents[:pos[0]] if type(e) is slice)
    return arrays, sizes, b, adjacent, before


def _result_shape(ents, b, adjacent, rest):
    """The shape of x[key]: B in place (adjacent) or in front, slice axes ``rest`` in order, 1 for each None."""
    out, rest, placed = ([] if adjacent else list(b)), list(rest), not adjacent
    for e in ents:
        if e is None:
            out.append(1)
        elif type(e) is slice:
            out.append(rest.pop(0))
        elif not placed:
            out += list(b)
            placed = True
    return tuple(out)


@public
def getitem(x, key):
    """x[key] as NumPy reads it: ints, slices, None, ``...``, integer and boolean arrays; differentiable.

    Integer/boolean arrays become one :func:`take` of the flattened indexed axes, so every backend supports
    any mix of them, and derivatives (also batched ones) are those of take, reshape and permute_dims.

    >>> import gradtape as gt
    >>> gt.asarray([1.0, 2.0, 3.0])[1:]
    Tensor([2., 3.])
    """
    x = as_tensor(x)
    ents = _norm_key(x, key, "getitem")
    if ents is None:
        return _batched_key(x, key)
    if ents.vshape is not None:
        x = reshaped(x, ents.vshape)
    arr = [i for i, e in enumerate(ents) if _isarr(e)]
    if not arr:
        plain = tuple(e for e in ents if e is not None)
        y = apply1(getitem_p, x, {"key": plain + (Ellipsis,), "xshape": x.shape, "basic": True})
        if len(plain) == len(ents):
            return y
        return reshaped(y, _result_shape([e for e in ents if type(e) is not int], (), True, y.shape))
    e = ents[arr[0]]
    if len(arr) == 1 and type(e) is not _Mask and all(k is _ALL for i, k in enumerate(ents) if i != arr[0]):
        return _take(x, e, arr[0])        # x[..., idx, ...]: one take (the common case)
    return _advanced(x, ents)


def _batched_key(x, key, value=None, op="getitem"):
    """A key holding an index batched by gt.vmap: its tracer does the op (gradtape/_autodiff/vmap.py)."""
    ks = key if type(key) is tuple else (key,)
    t = next(k for k in ks if isinstance(k, Tensor) and type(k) is not Tensor)
    return t.__gradtape_index__(x, key, value, op)


def _take(x, idx, a):
    """take of normalised raw indices of any shape along axis a, B in place."""
    flat = idx if idx.ndim == 1 else x.backend.xp.reshape(idx, (-1,))
    out = apply(take_p, (x, wrap(flat, x.backend)), {"axis": a - x.ndim, "xshape": x.shape})
    return out if idx.ndim == 1 else reshaped(out, x.shape[:a] + tuple(idx.shape) + x.shape[a + 1:])


def _advanced(x, ents):
    xp = x.backend.xp
    sub = []
    for e in ents:
        if e is not None:
            sub += [e] if type(e) is slice else [_ALL] * _span(e)
    y = x if all(e is _ALL for e in sub) else getitem(x, tuple(sub))
    arrays, sizes, b, adjacent, before = _adv_layout(xp, ents, x.shape)
    adv, d = [], 0          # y's axes indexed by arrays (ints included)
    for e in ents:
        if e is not None:
            if type(e) is not slice:
                adv += range(d, d + _span(e))
            d += _span(e)
    rest = [i for i in range(y.ndim) if i not in adv]
    if adv + rest != list(range(y.ndim)):
        y = permute_dims(y, tuple(adv + rest))
    rshape = tuple(y.shape[len(adv):])
    lin = arrays[0]
    for a, n in zip(arrays[1:], sizes[1:]):
        lin = lin * n + a
    if not _isarr(lin) or tuple(lin.shape) != b:
        lin = xp.broadcast_to(xp.asarray(lin, device=x.data.device), b)
    n = 1
    for s in sizes:
        n *= s
    out = _take(reshaped(y, (n,) + rshape) if len(adv) != 1 else y, lin, 0)
    if adjacent and before:
        k = len(b)        # B's axes go back after the slice axes before them
        out = permute_dims(out, tuple(range(k, k + before)) + tuple(range(k)) + tuple(range(k + before, out.ndim)))
    shape = _result_shape(ents, b, adjacent, rshape)
    return reshaped(out, shape)


def _region(x, ents):
    """The shape of x[key] (with the Nones), the backend key that writes it and the written region's shape."""
    if not any(_isarr(e) for e in ents):
        plain = tuple(e for e in ents if e is not None)
        rest = tuple(len(range(*e.indices(n))) for e, n in zip(plain, x.shape) if type(e) is slice)
        return _result_shape([e for e in ents if type(e) is not int], (), True, rest), plain + (Ellipsis,), rest
    _, _, b, adjacent, _ = _adv_layout(x.backend.xp, ents, x.shape)
    sl, d = [], 0
    for e in ents:
        if e is not None:
            if type(e) is slice:
                sl.append(len(range(*e.indices(x.shape[d]))))
            d += _span(e)
    shape = _result_shape(ents, b, adjacent, sl)
    if type(ents[0]) is _Mask and all(e is _ALL for e in ents[1:]):
        return shape, (ents[0].a,), shape        # a sole mask: the form every backend (array-api-strict) writes
    k = [e.a if type(e) is _Mask else e for e in ents]
    g = len(k) if ents.gap is None else ents.gap        # NumPy reads the same layout from the same ``...``
    return shape, tuple(k[:g]) + (Ellipsis,) + tuple(k[g:]), shape


def _fit_value(op, value, x, shape, region):
    """A tensor value broadcast to the written region (NumPy drops leading 1s of a longer value)."""
    if not isinstance(value, Tensor):
        return value
    v = value
    if v.ndim > len(shape):
        extra = v.ndim - len(shape)
        if any(n != 1 for n in v.shape[:extra]):
            raise ValueError(f"gradtape.{op}: a value of shape {v.shape} cannot be written to a region of shape "
                             f"{shape} (array shape {x.shape})")
        v = reshaped(v, v.shape[extra:])
    try:
        ok = broadcast_shapes(v.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"gradtape.{op}: a value of shape {value.shape} cannot be broadcast to the indexed region "
                         f"of shape {shape} (array shape {x.shape})")
    v = broadcast_to(v, shape)
    return reshaped(v, region)


@public
def setitem(x, key, value):
    """A copy of x with x[key] = value (differentiable in x and value); the value is broadcast to x[key]."""
    ents = _norm_key(x, key, "setitem")
    if ents is None:
        return _batched_key(x, key, value, "setitem")
    if ents.vshape is not None:
        return reshaped(_setitem(reshaped(x, ents.vshape), ents, value), x.shape)
    return _setitem(x, ents, value)


def _setitem(x, ents, value):
    shape, k, region = _region(x, ents)
    if not isinstance(value, Tensor) and not isinstance(value, (bool, int, float)):
        value = asarray(value, device=x.device)
    if isinstance(value, Tensor) and value.backend is not x.backend:
        raise device_error("setitem", [x, value])
    value = _fit_value("setitem", value, x, shape, region)
    if len(k) > 1 and any(_isarr(e) for e in k) and not x.backend.fancy_setitem:
        return _put(x, ents, value, shape)
    return apply(setitem_p, (x, value), {"key": k, "xshape": x.shape})


def _put(x, ents, value, shape):
    """setitem with array indices from standard functions only (array-api-strict writes only a sole mask):
    the flat positions of x[key] scattered with one-hot take_adds, the last write to a position winning."""
    xp = x.backend.xp
    dev = x.data.device
    pos = _advanced(wrap(xp.reshape(xp.arange(x.size, device=dev), x.shape), x.backend), ents).data
    pos = xp.reshape(pos, (-1,))
    k = pos.shape[0]
    later = xp.reshape(xp.arange(k, device=dev), (1, k)) > xp.reshape(xp.arange(k, device=dev), (k, 1))
    keep = ~xp.any((xp.reshape(pos, (k, 1)) == xp.reshape(pos, (1, k))) & later, axis=1)
    xf = reshape(x, (-1,))
    pos_t, keep_t = wrap(pos, x.backend), wrap(keep, x.backend)
    zk = wrap(xp.zeros((k,), dtype=x.data.dtype, device=dev), x.backend)
    if not isinstance(value, Tensor):
        value = wrap(xp.full((k,), value, dtype=x.data.dtype, device=dev), x.backend)
    vf = where(keep_t, reshape(value, (-1,)), zk)
    z = wrap(xp.zeros((x.size,), dtype=x.data.dtype, device=dev), x.backend)
    written = take_add(z, pos_t, wrap(xp.astype(keep, x.data.dtype), x.backend), -1).data > 0
    return reshape(where(wrap(written, x.backend), take_add(z, pos_t, vf, -1), xf), x.shape)


@public
def index_add(x, key, v):
    """A copy of x with v added at x[key]; repeated integer indices accumulate (transpose of getitem)."""
    ents = _norm_key(x, key, "index_add")
    if ents is None:
        return _batched_key(x, key, v, "index_add")
    if ents.vshape is not None:
        y = reshaped(x, ents.vshape)
        shape, k, region = _region(y, ents)
        return reshaped(apply(index_add_p, (y, _fit_value("index_add", v, y, shape, region)),
                             {"key": k, "xshape": y.shape}), x.shape)
    shape, k, region = _region(x, ents)
    return apply(index_add_p, (x, _fit_value("index_add", v, x, shape, region)), {"key": k, "xshape": x.shape})


@public
def take(x, indices, /, *, axis=None):
    """Array API ``take``; its VJP accumulates repeated indices.

    >>> import gradtape as gt
    >>> gt.take(gt.asarray([1.0, 2.0, 3.0]), gt.asarray([2, 2]))
    Tensor([3., 3.])
    """
    x = as_tensor(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"gradtape.take: axis is required for a {x.ndim}-d array (shape {x.shape})")
        axis = 0
    a = axis_index(axis, x.ndim, "take", x.shape)
    return apply(take_p, (x, _index(x, indices, x.shape[a], "take")), {"axis": a - x.ndim, "xshape": x.shape})


@public
def take_add(z, indices, v, axis):
    """z with v added at ``indices`` along ``axis`` (repeats accumulate): the transpose of :func:`take`."""
    z = as_tensor(z)
    return apply(take_add_p, (z, as_tensor(indices), v), {"axis": axis_index(axis, z.ndim, "take_add") - z.ndim})


@public
def take_along_axis(x, indices, /, *, axis=-1):
    """Array API ``take_along_axis``.

    >>> import gradtape as gt
    >>> gt.take_along_axis(gt.asarray([[1.0, 2.0]]), gt.asarray([[1, 1]]), axis=1)
    Tensor([[2., 2.]])
    """
    x = as_tensor(x)
    a = axis_index(axis, x.ndim, "take_along_axis", x.shape)
    idx = _index(x, indices, x.shape[a], "take_along_axis")
    if idx.ndim != x.ndim:
        raise ValueError(f"gradtape.take_along_axis: indices of shape {idx.shape} need the {x.ndim} dimensions of "
                         f"the array (shape {x.shape})")
    if idx.shape[:a] + idx.shape[a + 1:] != x.shape[:a] + x.shape[a + 1:]:     # broadcast the other axes
        try:
            b = broadcast_shapes(x.shape[:a] + (1,) + x.shape[a + 1:], idx.shape[:a] + (1,) + idx.shape[a + 1:])
        except ValueError:
            raise ValueError(f"gradtape.take_along_axis: indices of shape {idx.shape} do not broadcast with the "
                             f"array's shape {x.shape} outside axis {axis}") from None
        x = broadcast_to(x, b[:a] + x.shape[a:a + 1] + b[a + 1:])
        idx = broadcast_to(idx, b[:a] + idx.shape[a:a + 1] + b[a + 1:])
    return apply(along_p, (x, idx), {"axis": a - x.ndim, "xshape": x.shape})


def _index(x, indices, n, op):
    """An integer index tensor on x's backend with its negative entries wrapped (``i + n``), as recorded ops so a
    traced index stays an input; the one-hot scatters of some backends never match a negative index."""
    idx = as_tensor(indices)
    if idx.backend is not x.backend:
        raise device_error(op, [x, idx])
    if not idx.backend.xp.isdtype(idx.data.dtype, "integral"):
        raise TypeError(f"gradtape.{op}: indices must have an integer dtype, got {idx.dtype}")
    if state.tracer is None and type(idx) is Tensor:   # nothing traced nor batched: wrap the raw array (~10 us less)
        d = idx.data
        return wrap(idx.backend.xp.where(d < 0, d + n, d), idx.backend)
    return where(idx < 0, idx + n, idx)


@public
def along_add(z, indices, v, axis):
    """z with v added at take_along_axis positions (the transpose of :func:`take_along_axis`)."""
    z = as_tensor(z)
    return apply(along_add_p, (z, as_tensor(indices), v), {"axis": axis_index(axis, z.ndim, "along_add") - z.ndim})


@public
def repeat(x, repeats, /, *, axis=None):
    """Array API ``repeat`` (a gather, so its VJP sums the repeats).

    >>> import gradtape as gt
    >>> gt.repeat(gt.asarray([1.0, 2.0]), 2)
    Tensor([1., 1., 2., 2.])
    """
    x = as_tensor(x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = axis_index(axis, x.ndim, "repeat", x.shape)
    xp = x.backend.xp
    n = x.shape[axis]
    r = repeats.data if isinstance(repeats, Tensor) else repeats
    idx = xp.repeat(xp.arange(n, device=x.data.device), r)
    return take(x, wrap(idx, x.backend), axis=axis)


@public
def sort(x, /, *, axis=-1, descending=False, stable=True):
    """Array API ``sort``; gradients follow the permutation (a take_along_axis of the argsort).

    >>> import gradtape as gt
    >>> gt.sort(gt.asarray([3.0, 1.0]))
    Tensor([1., 3.])
    """
    x = as_tensor(x)
    axis = axis_index(axis, x.ndim, "sort", x.shape)
    if not tracked(x):
        return wrap(x.backend.xp.sort(x.data, axis=axis, descending=descending, stable=stable), x.backend)
    return take_along_axis(x, argsort(x, axis=axis, descending=descending, stable=stable), axis=axis)
