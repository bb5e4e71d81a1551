"""Shape, indexing and selection primitives (all linear in the differentiated input).

For a linear op the JVP is the op applied to the tangent and the VJP its
transpose, so each block is short. Broadcasting (``broadcast_to``'s VJP) and
dtype casts (``astype``'s VJP) are undone by the engine from the recorded
input shape and dtype, so those VJPs just pass ``ct`` through.
"""
from __future__ import annotations

import operator

from ._axes import AxisError, axis_index, axis_tuple
from ._core import Tensor, apply, apply1, apply2, state
from ._prims import prim

# Rules accept cotangents/tangents with extra leading batch axes (batched Jacobians): shapes are
# taken from the end, axes are negative, index keys get a ``:`` per batch axis in front.
reshape_p = prim("reshape", lambda xp, x, shape, xshape: xp.reshape(x, shape),
                 [lambda xp, ct, out, x, shape, xshape: xp.reshape(ct, _lead(ct, len(shape)) + xshape)],
                 [lambda xp, t, out, x, shape, xshape: xp.reshape(t, _lead(t, len(xshape)) + shape)], [()], view=True)
permute_p = prim("permute_dims", lambda xp, x, axes: xp.permute_dims(x, axes),
                 [lambda xp, ct, out, x, axes: xp.permute_dims(ct, _shifted(_inverse(axes), ct.ndim))],
                 [lambda xp, t, out, x, axes: xp.permute_dims(t, _shifted(axes, t.ndim))], [()], view=True)
broadcast_p = prim("broadcast_to", lambda xp, x, shape, xshape: xp.broadcast_to(x, shape),
                   [lambda xp, ct, out, x, shape, xshape: ct],
                   [lambda xp, t, out, x, shape, xshape: xp.broadcast_to(
                       xp.reshape(t, _lead(t, len(xshape)) + (1,) * (len(shape) - len(xshape)) + xshape),
                       _lead(t, len(xshape)) + shape)], [()], view=True)
astype_p = prim("astype", lambda xp, x, dtype: xp.astype(x, dtype),
                [lambda xp, ct, out, x, dtype: ct],
                [lambda xp, t, out, x, dtype: xp.astype(t, dtype)], [()])
flip_p = prim("flip", lambda xp, x, axis: xp.flip(x, axis=axis),
              [lambda xp, ct, out, x, axis: xp.flip(ct, axis=axis)],
              [lambda xp, t, out, x, axis: xp.flip(t, axis=axis)], [()], view=True)
roll_p = prim("roll", lambda xp, x, shift, axis: xp.roll(x, shift, axis=axis),
              [lambda xp, ct, out, x, shift, axis: xp.roll(ct, _neg(shift), axis=axis)],
              [lambda xp, t, out, x, shift, axis: xp.roll(t, shift, axis=axis)], [()])
tril_p = prim("tril", lambda xp, x, k: xp.tril(x, k=k),
              [lambda xp, ct, out, x, k: xp.tril(ct, k=k)], [lambda xp, t, out, x, k: xp.tril(t, k=k)], [()])
triu_p = prim("triu", lambda xp, x, k: xp.triu(x, k=k),
              [lambda xp, ct, out, x, k: xp.triu(ct, k=k)], [lambda xp, t, out, x, k: xp.triu(t, k=k)], [()])
# x[key]; the VJP scatters ct back (accumulating repeated integer indices)
getitem_p = prim("getitem", lambda xp, x, key, xshape, basic: x[key],
                 [lambda xp, ct, out, x, key, xshape, basic: _scatter(xp, ct, key, xshape, basic)],
                 [lambda xp, t, out, x, key, xshape, basic: t[_pre(t.ndim - len(xshape)) + _tup(key)]], [()], view=True)
# out = x with out[key] = v, v already of the written region's shape (setitem broadcasts it)
setitem_p = prim("setitem", lambda xp, x, v, key: _set(xp, x, key, v),
                 [lambda xp, ct, out, x, v, key: _bset(xp, ct, key, 0.0, state.nb),
                  lambda xp, ct, out, x, v, key: _bget(xp, ct, key, state.nb)],
                 [lambda xp, t, out, x, v, key: _bset(xp, t, key, 0.0, t.ndim - x.ndim),
                  lambda xp, t, out, x, v, key: _bset(xp, _zeros_b(xp, t, v, out), key, t, t.ndim - _nd(v))], [(), ()])
# out = x with v added at x[key] (duplicates accumulate): the transpose of getitem
index_add_p = prim("index_add", lambda xp, x, v, key: xp.index_add(x, key, v),
                   [lambda xp, ct, out, x, v, key: ct, lambda xp, ct, out, x, v, key: _bget(xp, ct, key, state.nb)],
                   [lambda xp, t, out, x, v, key: t,
                    lambda xp, t, out, x, v, key: _bset(xp, _zeros_b(xp, t, v, out), key, t, t.ndim - _nd(v), add=True)],
                   [(), ()])
# gathers along one (negative) axis and their transposes (scatter-adds, repeats accumulating)
take_p = prim("take", lambda xp, x, idx, axis, xshape: xp.take(x, idx, axis=axis),
              [lambda xp, ct, out, x, idx, axis, xshape: xp.take_add(
                  xp.zeros(_lead(ct, len(xshape) + idx.ndim - 1) + xshape, dtype=ct.dtype, device=ct.device), idx, ct, axis),
               None],
              [lambda xp, t, out, x, idx, axis, xshape: xp.take(t, idx, axis=axis), None], [(1,), ()])
take_add_p = prim("take_add", lambda xp, z, idx, v, axis: xp.take_add(z, idx, v, axis),
                  [lambda xp, ct, out, z, idx, v, axis: ct, None, lambda xp, ct, out, z, idx, v, axis: xp.take(ct, idx, axis=axis)],
                  [lambda xp, t, out, z, idx, v, axis: t, None,
                   lambda xp, t, out, z, idx, v, axis: xp.take_add(_zeros_b(xp, t, v, out), idx, t, axis)], [(), (), (1,)])
along_p = prim("take_along_axis", lambda xp, x, idx, axis, xshape: xp.take_along_axis(x, idx, axis=axis),
               [lambda xp, ct, out, x, idx, axis, xshape: xp.along_add(
                   xp.zeros(_lead(ct, len(xshape)) + xshape, dtype=ct.dtype, device=ct.device), _bidx(xp, idx, ct), ct, axis),
                None],
               [lambda xp, t, out, x, idx, axis, xshape: xp.take_along_axis(t, _bidx(xp, idx, t), axis=axis), None],
               [(1,), ()])
along_add_p = prim("along_add", lambda xp, z, idx, v, axis: xp.along_add(z, idx, v, axis),
                   [lambda xp, ct, out, z, idx, v, axis: ct, None,
                    lambda xp, ct, out, z, idx, v, axis: xp.take_along_axis(ct, _bidx(xp, idx, ct), axis=axis)],
                   [lambda xp, t, out, z, idx, v, axis: t, None,
                    lambda xp, t, out, z, idx, v, axis: xp.along_add(_zeros_b(xp, t, v, out), _bidx(xp, idx, t), t, axis)],
                   [(), (), (1,)])
where_p = prim("where", lambda xp, c, x, y: xp.where(c, x, y),
               [None, lambda xp, ct, out, c, x, y: xp.where(c, ct, xp.zeros_like(ct)),
                lambda xp, ct, out, c, x, y: xp.where(c, xp.zeros_like(ct), ct)],
               [None, lambda xp, t, out, c, x, y: xp.where(c, t, xp.zeros_like(t)),
                lambda xp, t, out, c, x, y: xp.where(c, xp.zeros_like(t), t)], [(), (0,), (0,)])
where_p.bcast = True


def _lead(a, n):
    """The leading (batch) part of a's shape, beyond its last n axes."""
    return tuple(a.shape[:a.ndim - n])


def _pre(nb):
    return (slice(None),) * nb


def _tup(key):
    return key if isinstance(key, tuple) else (key,)


def _nd(v):
    return v.ndim if hasattr(v, "ndim") else 0


def _shifted(axes, ndim):
    nb = ndim - len(axes)
    return tuple(range(nb)) + tuple(a + nb for a in axes)


def _zeros_b(xp, t, v, out):
    """Zeros of out's shape with t's batch axes (t is a tangent of v)."""
    return xp.zeros(_lead(t, _nd(v)) + tuple(out.shape), dtype=t.dtype, device=t.device)


def _basic(key):
    return not any(hasattr(e, "shape") for e in _tup(key))


def _to_end(xp, a, nb):
    return xp.permute_dims(a, tuple(range(nb, a.ndim)) + tuple(range(nb)))


def _to_front(xp, a, nb):
    return xp.permute_dims(a, tuple(range(a.ndim - nb, a.ndim)) + tuple(range(a.ndim - nb)))


def _bget(xp, a, key, nb):
    """a[key] for an a with nb leading batch axes, kept in front. An array key gets them at the end, where
    its ``...`` keeps them (a ``:`` in front would move NumPy's separated advanced axes ahead of them)."""
    if not nb:
        return a[key]
    if _basic(key):
        return a[_pre(nb) + _tup(key)]
    return _to_front(xp, _to_end(xp, a, nb)[key], nb)


def _bset(xp, a, key, v, nb, add=False):
    """A copy of a (nb leading batch axes) with v (batch axes in front, or a scalar) written or added at key."""
    f = xp.index_add if add else (lambda z, k, w: _set(xp, z, k, w))
    if not nb:
        return f(a, key, v)
    if _basic(key):
        return f(a, _pre(nb) + _tup(key), v)
    return _to_front(xp, f(_to_end(xp, a, nb), key, _to_end(xp, v, nb) if _nd(v) else v), nb)


def _bidx(xp, idx, a):
    """take_along_axis indices broadcast to a's leading batch axes."""
    return idx if a.ndim == idx.ndim else xp.broadcast_to(idx, tuple(a.shape[:a.ndim - idx.ndim]) + tuple(idx.shape))


def _inverse(axes):
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


def _neg(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


def _scatter(xp, ct, key, xshape, basic):
    nb = state.nb
    z = xp.zeros(_lead(ct, ct.ndim - nb) + xshape, dtype=ct.dtype, device=ct.device)
    key = _pre(nb) + _tup(key)
    if basic:
        z[key] = ct
        return z
    return xp.index_add(z, key, ct)


def _set(xp, x, key, v):
    if isinstance(x, Tensor):
        return setitem(x, key, v)
    out = xp.asarray(x, copy=True)
    out[key] = v
    return out


_concat_prims = {}


def _concat_prim(n):
    """concat of n inputs (one primitive per arity, cached)."""
    p = _concat_prims.get(n)
    if p is None:
        def piece(i):
            def vjp(xp, ct, out, *xs, axis, sizes):
                lo = sum(sizes[:i])
                return ct[(Ellipsis, slice(lo, lo + sizes[i])) + (slice(None),) * (-axis - 1)]
            return vjp

        def jvp(i):
            def rule(xp, t, out, *xs, axis, sizes):
                lead = _lead(t, xs[i].ndim)
                parts = [xp.zeros(lead + tuple(xs[j].shape), dtype=t.dtype, device=t.device) if j != i else t
                         for j in range(n)]
                return xp.concat(parts, axis=axis)
            return rule
        p = _concat_prims[n] = prim(f"concat{n}", lambda xp, *xs, axis, sizes: xp.concat(xs, axis=axis),
                                    [piece(i) for i in range(n)], [jvp(i) for i in range(n)], [()] * n)
    return p


# ---- public functions --------------------------------------------------------------------------

def _t(x):
    if isinstance(x, Tensor):
        return x
    from ._namespace import asarray
    return asarray(x)


def reshape(x, /, shape, *, copy=None):
    """Array API ``reshape``; differentiable.

    >>> import gradtape as gt
    >>> gt.reshape(gt.arange(6.0), (2, 3)).shape
    (2, 3)
    """
    x = _t(x)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if -1 in shape:       # resolve it, so the rules can use the shape with leading batch axes
        known = 1
        for n in shape:
            known *= n if n != -1 else 1
        if shape.count(-1) > 1 or (known == 0 or x.size % known) and x.size:
            raise ValueError(f"gradtape.reshape: cannot reshape an array of shape {x.shape} into {shape}")
        shape = tuple(n if n != -1 else (x.size // known if known else 0) for n in shape)
    if shape == x.shape:
        return x if not copy else apply1(reshape_p, x, {"shape": shape, "xshape": x.shape})
    return apply1(reshape_p, x, {"shape": shape, "xshape": x.shape})


def permute_dims(x, /, axes):
    """Array API ``permute_dims``; differentiable.

    >>> import gradtape as gt
    >>> gt.permute_dims(gt.ones((2, 3)), (1, 0)).shape
    (3, 2)
    """
    x = _t(x)
    axes = axis_tuple(tuple(axes), x.ndim, "permute_dims", x.shape, allow_none=False)
    if len(axes) != x.ndim:
        raise ValueError(f"gradtape.permute_dims: axes {axes} are not a permutation of the {x.ndim} axes of an "
                         f"array of shape {x.shape}")
    return apply1(permute_p, x, {"axes": axes})


def matrix_transpose(x, /):
    """Transpose of the last two axes.

    >>> import gradtape as gt
    >>> gt.matrix_transpose(gt.ones((4, 2, 3))).shape
    (4, 3, 2)
    """
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"gradtape.matrix_transpose: needs at least 2 dimensions, got shape {x.shape}")
    return permute_dims(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def broadcast_to(x, /, shape):
    """Array API ``broadcast_to``; its VJP sums the broadcast axes.

    >>> import gradtape as gt
    >>> gt.broadcast_to(gt.ones((3, 1)), (2, 3, 4)).shape
    (2, 3, 4)
    """
    x = _t(x)
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return apply1(broadcast_p, x, {"shape": shape, "xshape": x.shape})


def broadcast_arrays(*arrays):
    """Array API ``broadcast_arrays``.

    >>> import gradtape as gt
    >>> [a.shape for a in gt.broadcast_arrays(gt.ones((3, 1)), gt.ones((4,)))]
    [(3, 4), (3, 4)]
    """
    from ._namespace import broadcast_shapes
    arrays = [_t(a) for a in arrays]
    shape = broadcast_shapes(*[a.shape for a in arrays])
    return [broadcast_to(a, shape) for a in arrays]


def astype(x, dtype, /, *, copy=True, device=None):
    """Array API ``astype``; differentiable between floating dtypes.

    >>> import gradtape as gt
    >>> gt.astype(gt.asarray([1.5]), gt.float32).dtype
    float32
    """
    x = _t(x)
    if device is not None:
        x = x.to_device(device)
    from ._namespace import _is_float, _bdt
    bdt = _bdt(x._bk, dtype)
    if x.dtype == dtype:
        return apply1(astype_p, x, {"dtype": bdt}) if copy else x
    if not _is_float(dtype) or not _is_float(x.dtype):     # not differentiable
        from . import _core
        out = _core.wrap(x._bk.xp.astype(x.data, bdt), x._bk)
        if _core.TRACE is not None:
            _core.TRACE("astype", (x, dtype), {}, out)
        return out
    return apply1(astype_p, x, {"dtype": bdt})


def expand_dims(x, /, *, axis=0):
    """Array API ``expand_dims``.

    >>> import gradtape as gt
    >>> gt.expand_dims(gt.ones((2,)), axis=-1).shape
    (2, 1)
    """
    x = _t(x)
    axes = axis_tuple(axis, x.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1), "expand_dims")
    shape, it = [], iter(x.shape)
    for i in range(x.ndim + len(axes)):
        shape.append(1 if i in axes else next(it))
    return reshape(x, tuple(shape))


def squeeze(x, /, axis):
    """Array API ``squeeze`` (axis required, the squeezed axes must have size 1).

    >>> import gradtape as gt
    >>> gt.squeeze(gt.ones((2, 1)), axis=1).shape
    (2,)
    """
    x = _t(x)
    axes = axis_tuple(axis, x.ndim, "squeeze", x.shape, allow_none=False)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"gradtape.squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def moveaxis(x, source, destination, /):
    """Array API ``moveaxis``.

    >>> import gradtape as gt
    >>> gt.moveaxis(gt.ones((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    x = _t(x)
    src = axis_tuple(source, x.ndim, "moveaxis", x.shape, allow_none=False)
    dst = axis_tuple(destination, x.ndim, "moveaxis", x.shape, allow_none=False)
    if len(src) != len(dst):
        raise ValueError(f"gradtape.moveaxis: source {source!r} and destination {destination!r} must have the same "
                         f"number of elements")
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, tuple(order))


def flip(x, /, *, axis=None):
    """Array API ``flip``.

    >>> import gradtape as gt
    >>> gt.flip(gt.asarray([1.0, 2.0]))
    Tensor([2., 1.])
    """
    x = _t(x)
    axes = axis_tuple(axis, x.ndim, "flip", x.shape)
    return apply1(flip_p, x, {"axis": tuple(a - x.ndim for a in axes)})


def roll(x, /, shift, *, axis=None):
    """Array API ``roll``.

    >>> import gradtape as gt
    >>> gt.roll(gt.asarray([1.0, 2.0, 3.0]), 1)
    Tensor([3., 1., 2.])
    """
    x = _t(x)
    shift = tuple(shift) if isinstance(shift, (list, tuple)) else shift
    if axis is None:          # roll of the flattened array
        return reshape(roll(reshape(x, (-1,)), shift if isinstance(shift, int) else sum(shift), axis=0), x.shape)
    if isinstance(axis, (list, tuple)):      # a repeated axis is allowed: its shifts add, as in NumPy
        axis = tuple(axis_index(a, x.ndim, "roll", x.shape) - x.ndim for a in axis)
        if len(shift if isinstance(shift, tuple) else (shift,) * len(axis)) != len(axis):
            raise ValueError(f"gradtape.roll: shift {shift!r} and axis {axis!r} must have the same length")
        shift = shift if isinstance(shift, tuple) else (shift,) * len(axis)
    else:
        axis = axis_index(axis, x.ndim, "roll", x.shape) - x.ndim
        if isinstance(shift, tuple):
            raise ValueError(f"gradtape.roll: a tuple shift {shift!r} needs a tuple axis")
    return apply1(roll_p, x, {"shift": shift, "axis": axis})


def tril(x, /, *, k=0):
    """Array API ``tril``.

    >>> import gradtape as gt
    >>> gt.tril(gt.ones((2, 2)))
    Tensor([[1., 0.],
            [1., 1.]])
    """
    return apply(tril_p, (_matrix(x, "tril"),), {"k": k})


def triu(x, /, *, k=0):
    """Array API ``triu``.

    >>> import gradtape as gt
    >>> gt.triu(gt.ones((2, 2)))
    Tensor([[1., 1.],
            [0., 1.]])
    """
    return apply(triu_p, (_matrix(x, "triu"),), {"k": k})


def _matrix(x, op):
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"gradtape.{op}: needs at least 2 dimensions, got shape {x.shape}")
    return x


def concat(arrays, /, *, axis=0):
    """Array API ``concat``.

    >>> import gradtape as gt
    >>> gt.concat([gt.ones((2,)), gt.zeros((1,))])
    Tensor([1., 1., 0.])
    """
    arrays = [_t(a) for a in arrays]
    if axis is None:
        arrays = [reshape(a, (-1,)) for a in arrays]
        axis = 0
    if not arrays:
        raise ValueError("gradtape.concat: needs at least one array")
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("gradtape.concat: zero-dimensional arrays cannot be concatenated")
    ax = axis_index(axis, nd, "concat", arrays[0].shape) - nd
    if any(a.ndim != nd or a.shape[:nd + ax] + a.shape[nd + ax + 1:] !=
           arrays[0].shape[:nd + ax] + arrays[0].shape[nd + ax + 1:] for a in arrays):
        raise ValueError(f"gradtape.concat: shapes {[a.shape for a in arrays]} differ outside axis {axis}")
    sizes = tuple(a.shape[ax] for a in arrays)
    return apply(_concat_prim(len(arrays)), tuple(arrays), {"axis": ax, "sizes": sizes})


def stack(arrays, /, *, axis=0):
    """Array API ``stack``.

    >>> import gradtape as gt
    >>> gt.stack([gt.ones((2,)), gt.zeros((2,))]).shape
    (2, 2)
    """
    arrays = [_t(a) for a in arrays]
    if not arrays:
        raise ValueError("gradtape.stack: needs at least one array")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"gradtape.stack: all arrays must have one shape, got {[a.shape for a in arrays]}")
    a = axis_index(axis, arrays[0].ndim + 1, "stack", arrays[0].shape)
    return concat([expand_dims(x, axis=a) for x in arrays], axis=a)


def unstack(x, /, *, axis=0):
    """Array API ``unstack``.

    >>> import gradtape as gt
    >>> len(gt.unstack(gt.ones((3, 2))))
    3
    """
    x = _t(x)
    a = axis_index(axis, x.ndim, "unstack", x.shape)
    return tuple(x[(slice(None),) * a + (i,)] for i in range(x.shape[a]))


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
    bk, shape = x._bk, x.shape
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
                if k._bk is not bk:
                    from ._core import _device_error
                    raise _device_error(op, [x, k])
                k = k.data
            else:
                from ._namespace import asarray
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
            if k == _ALL:
                k = _ALL
            else:
                r = range(*k.indices(n))
                k = _ALL if (r.start, r.stop, r.step) == (0, n, 1) or (not n and r.step > 0) else \
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
    from ._namespace import broadcast_shapes
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
    from ._core import wrap
    flat = idx if idx.ndim == 1 else x._bk.xp.reshape(idx, (-1,))
    out = apply(take_p, (x, wrap(flat, x._bk)), {"axis": a - x.ndim, "xshape": x.shape})
    return out if idx.ndim == 1 else reshape(out, x.shape[:a] + tuple(idx.shape) + x.shape[a + 1:])


def _advanced(x, ents):
    xp = x._bk.xp
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
    _, _, b, adjacent, _ = _adv_layout(x._bk.xp, ents, x.shape)
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
    from ._namespace import broadcast_shapes
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
        from ._namespace import asarray
        value = asarray(value, device=x.device)
    if isinstance(value, Tensor) and value._bk is not x._bk:
        from ._core import _device_error
        raise _device_error("setitem", [x, value])
    value = _fit_value("setitem", value, x, shape, region)
    if len(k) > 1 and any(_isarr(e) for e in k) and not x._bk.fancy_setitem:
        return _put(x, ents, value, shape)
    return apply(setitem_p, (x, value), {"key": k})


def _put(x, ents, value, shape):
    """setitem with array indices from standard functions only (array-api-strict writes only a sole mask):
    the flat positions of x[key] scattered with one-hot take_adds, the last write to a position winning."""
    from ._core import wrap
    xp = x._bk.xp
    dev = x.data.device
    pos = _advanced(wrap(xp.reshape(xp.arange(x.size, device=dev), x.shape), x._bk), ents).data
    pos = xp.reshape(pos, (-1,))
    k = pos.shape[0]
    later = xp.reshape(xp.arange(k, device=dev), (1, k)) > xp.reshape(xp.arange(k, device=dev), (k, 1))
    keep = ~xp.any((xp.reshape(pos, (k, 1)) == xp.reshape(pos, (1, k))) & later, axis=1)
    xf = reshape(x, (-1,))
    pos_t, keep_t = wrap(pos, x._bk), wrap(keep, x._bk)
    zk = wrap(xp.zeros((k,), dtype=x.data.dtype, device=dev), x._bk)
    if not isinstance(value, Tensor):
        value = wrap(xp.full((k,), value, dtype=x.data.dtype, device=dev), x._bk)
    vf = where(keep_t, reshape(value, (-1,)), zk)
    z = wrap(xp.zeros((x.size,), dtype=x.data.dtype, device=dev), x._bk)
    written = take_add(z, pos_t, wrap(xp.astype(keep, x.data.dtype), x._bk), -1).data > 0
    return reshape(where(wrap(written, x._bk), take_add(z, pos_t, vf, -1), xf), x.shape)


def index_add(x, key, v):
    """A copy of x with v added at x[key]; repeated integer indices accumulate (transpose of getitem)."""
    ents = _norm_key(x, key, "index_add")
    if ents.vshape is not None:
        y = reshape(x, ents.vshape)
        shape, k, region = _region(y, ents)
        return reshape(apply(index_add_p, (y, _fit_value("index_add", v, y, shape, region)), {"key": k}), x.shape)
    shape, k, region = _region(x, ents)
    return apply(index_add_p, (x, _fit_value("index_add", v, x, shape, region)), {"key": k})


def where(condition, x1, x2, /):
    """Array API ``where``; differentiable in x1 and x2.

    >>> import gradtape as gt
    >>> gt.where(gt.asarray([True, False]), gt.asarray([1.0, 2.0]), 0.0)
    Tensor([1., 0.])
    """
    c = _t(condition)
    if not isinstance(x1, Tensor) and not isinstance(x2, Tensor):
        x1 = _t(x1) if not isinstance(x1, (bool, int, float)) else x1
        x2 = _t(x2) if not isinstance(x2, (bool, int, float)) else x2
    return apply(where_p, (c, x1, x2))


def take(x, indices, /, *, axis=None):
    """Array API ``take``; its VJP accumulates repeated indices.

    >>> import gradtape as gt
    >>> gt.take(gt.asarray([1.0, 2.0, 3.0]), gt.asarray([2, 2]))
    Tensor([3., 3.])
    """
    x = _t(x)
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"gradtape.take: axis is required for a {x.ndim}-d array (shape {x.shape})")
        axis = 0
    a = axis_index(axis, x.ndim, "take", x.shape)
    return apply(take_p, (x, _index(x, indices, x.shape[a], "take")), {"axis": a - x.ndim, "xshape": x.shape})


def take_add(z, indices, v, axis):
    """z with v added at ``indices`` along ``axis`` (repeats accumulate): the transpose of :func:`take`."""
    z = _t(z)
    return apply(take_add_p, (z, _t(indices), v), {"axis": axis_index(axis, z.ndim, "take_add") - z.ndim})


def take_along_axis(x, indices, /, *, axis=-1):
    """Array API ``take_along_axis``.

    >>> import gradtape as gt
    >>> gt.take_along_axis(gt.asarray([[1.0, 2.0]]), gt.asarray([[1, 1]]), axis=1)
    Tensor([[2., 2.]])
    """
    x = _t(x)
    a = axis_index(axis, x.ndim, "take_along_axis", x.shape)
    idx = _index(x, indices, x.shape[a], "take_along_axis")
    if idx.ndim != x.ndim:
        raise ValueError(f"gradtape.take_along_axis: indices of shape {idx.shape} need the {x.ndim} dimensions of "
                         f"the array (shape {x.shape})")
    if idx.shape[:a] + idx.shape[a + 1:] != x.shape[:a] + x.shape[a + 1:]:     # broadcast the other axes
        from ._namespace import broadcast_shapes
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
    idx = _t(indices)
    if idx._bk is not x._bk:
        from ._core import _device_error
        raise _device_error(op, [x, idx])
    if not idx._bk.xp.isdtype(idx.data.dtype, "integral"):
        raise TypeError(f"gradtape.{op}: indices must have an integer dtype, got {idx.dtype}")
    return where(idx < 0, idx + n, idx)


def along_add(z, indices, v, axis):
    """z with v added at take_along_axis positions (the transpose of :func:`take_along_axis`)."""
    z = _t(z)
    return apply(along_add_p, (z, _t(indices), v), {"axis": axis_index(axis, z.ndim, "along_add") - z.ndim})


def repeat(x, repeats, /, *, axis=None):
    """Array API ``repeat`` (a gather, so its VJP sums the repeats).

    >>> import gradtape as gt
    >>> gt.repeat(gt.asarray([1.0, 2.0]), 2)
    Tensor([1., 1., 2., 2.])
    """
    x = _t(x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = axis_index(axis, x.ndim, "repeat", x.shape)
    xp = x._bk.xp
    n = x.shape[axis]
    r = repeats.data if isinstance(repeats, Tensor) else repeats
    idx = xp.repeat(xp.arange(n, device=x.data.device), r)
    from ._core import wrap
    return take(x, wrap(idx, x._bk), axis=axis)


def tile(x, repetitions, /):
    """Array API ``tile``.

    >>> import gradtape as gt
    >>> gt.tile(gt.asarray([1.0, 2.0]), (2,))
    Tensor([1., 2., 1., 2.])
    """
    x = _t(x)
    reps = tuple(repetitions)
    nd = max(len(reps), x.ndim)
    reps = (1,) * (nd - len(reps)) + reps
    x = reshape(x, (1,) * (nd - x.ndim) + x.shape)
    inter = []
    for r, n in zip(reps, x.shape):
        inter += [1, n]
    big = []
    for r, n in zip(reps, x.shape):
        big += [r, n]
    y = broadcast_to(reshape(x, tuple(inter)), tuple(big))
    return reshape(y, tuple(r * n for r, n in zip(reps, x.shape)))
