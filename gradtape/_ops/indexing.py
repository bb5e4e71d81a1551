"""Indexing as NumPy reads it, on every backend: ``x[key]`` and ``x[key] = v`` built from shape primitives.

One normaliser (:func:`_norm_key`) reads a key (ints, slices, None, ``...``, integer and boolean arrays)
into entries naming every axis; basic keys are one ``getitem`` primitive, keys with arrays one
:func:`take` of the flattened indexed axes, so derivatives (batched ones too) are those of take, reshape
and permute_dims, and array-api-strict (which takes integer arrays only as full-rank keys) supports them.
"""
from __future__ import annotations

import operator

from .._core.tensor import Tensor
from .._core.dispatch import apply, apply1
from .._ops.shape import getitem_p, index_add_p, setitem_p, take_p, _t, broadcast_to, permute_dims, reshape, take_add, where


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
    bk, shape = x.backend, x.shape
    xp = bk.xp
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
        elif isinstance(k, list):
            raise IndexError(f"gradtape.{op}: index with an integer array (gt.asarray(...)), not a list")
        elif isinstance(k, bool) or _isarr(k):
            if isinstance(k, Tensor):
                if k.backend is not bk:
                    from .._core.dispatch import device_error as _device_error
                    raise _device_error(op, [x, k])
                k = k.data
            else:
                from .._api.namespace import asarray
                k = asarray(k, device=x.device).data
            if xp.isdtype(k.dtype, "bool"):
                k = _Mask(k) if k.ndim else _Mask(xp.reshape(k, (1,)), new=True)
                used += 0 if k.new else k.ndim
            elif xp.isdtype(k.dtype, "integral"):
                k = int(k) if k.ndim == 0 else k
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
            if k.shape != shape[d:d + k.ndim]:
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
    from .._api.namespace import broadcast_shapes
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


def getitem(x, key):
    """x[key] as NumPy reads it: ints, slices, None, ``...``, integer and boolean arrays; differentiable.

    Integer/boolean arrays become one :func:`take` of the flattened indexed axes, so every backend supports
    any mix of them, and derivatives (also batched ones) are those of take, reshape and permute_dims.

    >>> import gradtape as gt
    >>> gt.asarray([1.0, 2.0, 3.0])[1:]
    Tensor([2., 3.])
    """
    x = _t(x)
    ents = _norm_key(x, key, "getitem")
    if ents.vshape is not None:
        x = reshape(x, ents.vshape)
    arr = [i for i, e in enumerate(ents) if _isarr(e)]
    if not arr:
        plain = tuple(e for e in ents if e is not None)
        y = apply1(getitem_p, x, {"key": plain + (Ellipsis,), "xshape": x.shape, "basic": True})
        if len(plain) == len(ents):
            return y
        return reshape(y, _result_shape([e for e in ents if type(e) is not int], (), True, y.shape))
    e = ents[arr[0]]
    if len(arr) == 1 and type(e) is not _Mask and all(k is _ALL for i, k in enumerate(ents) if i != arr[0]):
        return _take(x, e, arr[0])        # x[..., idx, ...]: one take (the common case)
    return _advanced(x, ents)


def _take(x, idx, a):
    """take of normalised raw indices of any shape along axis a, B in place."""
    from .._core.dispatch import wrap
    flat = idx if idx.ndim == 1 else x.backend.xp.reshape(idx, (-1,))
    out = apply(take_p, (x, wrap(flat, x.backend)), {"axis": a - x.ndim, "xshape": x.shape})
    return out if idx.ndim == 1 else reshape(out, x.shape[:a] + tuple(idx.shape) + x.shape[a + 1:])


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
    out = _take(reshape(y, (n,) + rshape) if len(adv) != 1 else y, lin, 0)
    if adjacent and before:
        nb = len(b)
        out = permute_dims(out, tuple(range(nb, nb + before)) + tuple(range(nb)) +
                           tuple(range(nb + before, out.ndim)))
    shape = _result_shape(ents, b, adjacent, rshape)
    return out if shape == out.shape else reshape(out, shape)


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
        v = reshape(v, v.shape[extra:])
    from .._api.namespace import broadcast_shapes
    try:
        ok = broadcast_shapes(v.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"gradtape.{op}: a value of shape {value.shape} cannot be broadcast to the indexed region "
                         f"of shape {shape} (array shape {x.shape})")
    v = broadcast_to(v, shape)
    return v if shape == region else reshape(v, region)


def setitem(x, key, value):
    """A copy of x with x[key] = value (differentiable in x and value); the value is broadcast to x[key]."""
    ents = _norm_key(x, key, "setitem")
    if ents.vshape is not None:
        return reshape(_setitem(reshape(x, ents.vshape), ents, value), x.shape)
    return _setitem(x, ents, value)


def _setitem(x, ents, value):
    shape, k, region = _region(x, ents)
    if not isinstance(value, Tensor) and not isinstance(value, (bool, int, float)):
        from .._api.namespace import asarray
        value = asarray(value, device=x.device)
    if isinstance(value, Tensor) and value.backend is not x.backend:
        from .._core.dispatch import device_error as _device_error
        raise _device_error("setitem", [x, value])
    value = _fit_value("setitem", value, x, shape, region)
    if len(k) > 1 and any(_isarr(e) for e in k) and not x.backend.fancy_setitem:
        return _put(x, ents, value, shape)
    return apply(setitem_p, (x, value), {"key": k})


def _put(x, ents, value, shape):
    """setitem with array indices from standard functions only (array-api-strict writes only a sole mask):
    the flat positions of x[key] scattered with one-hot take_adds, the last write to a position winning."""
    from .._core.dispatch import wrap
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


def index_add(x, key, v):
    """A copy of x with v added at x[key]; repeated integer indices accumulate (transpose of getitem)."""
    ents = _norm_key(x, key, "index_add")
    if ents.vshape is not None:
        y = reshape(x, ents.vshape)
        shape, k, region = _region(y, ents)
        return reshape(apply(index_add_p, (y, _fit_value("index_add", v, y, shape, region)), {"key": k}), x.shape)
    shape, k, region = _region(x, ents)
    return apply(index_add_p, (x, _fit_value("index_add", v, x, shape, region)), {"key": k})
