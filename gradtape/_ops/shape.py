"""Shape, indexing and selection primitives (all linear in the differentiated input).

For a linear op the JVP is the op applied to the tangent and the VJP its
transpose, so each block is short. Broadcasting (``broadcast_to``'s VJP) and
dtype casts (``astype``'s VJP) are undone by the engine from the recorded
input shape and dtype, so those VJPs just pass ``ct`` through.
"""
from __future__ import annotations

from .._axes import axis_index, axis_tuple
from .._core.tensor import Tensor
from .._core import hooks
from .._core.dispatch import apply, apply1, apply2, wrap
from .._state import state
from .._ops.elementwise import prim

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
                lambda xp, t, out, c, x, y: xp.where(c, xp.zeros_like(t), t)], [(), (0,), (0,)], bcast=True)


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
    return _to_front(xp, _to_end(xp, a, nb)[_end(key, nb)], nb)


def _bset(xp, a, key, v, nb, add=False):
    """A copy of a (nb leading batch axes) with v (batch axes in front, or a scalar) written or added at key."""
    f = xp.index_add if add else (lambda z, k, w: _set(xp, z, k, w))
    if not nb:
        return f(a, key, v)
    if _basic(key):
        return f(a, _pre(nb) + _tup(key), v)
    return _to_front(xp, f(_to_end(xp, a, nb), _end(key, nb), _to_end(xp, v, nb) if _nd(v) else v), nb)


def _end(key, nb):
    """``key`` for an array whose nb batch axes were moved to the end: entries after a ``...`` must still
    index the axes they did, so the batch axes get their own trailing ``:`` (the ``...`` spans what it did)."""
    key = _tup(key)
    return key + _pre(nb) if any(e is Ellipsis for e in key) else key


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
        return hooks.API.setitem(x, key, v)     # a tangent (forward mode): the recorded function
    out = xp.asarray(x, copy=True)
    if type(key) is tuple and len(key) == 1:
        key = key[0]        # array-api-strict misreads a 1-tuple holding an empty mask
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
    from .._api.namespace import asarray
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
    from .._api.namespace import broadcast_shapes
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
    from .._api.namespace import _is_float, _bdt
    bdt = _bdt(x.backend, dtype)
    if x.dtype == dtype:
        return apply1(astype_p, x, {"dtype": bdt}) if copy else x
    if not _is_float(dtype) or not _is_float(x.dtype):     # not differentiable
        out = wrap(x.backend.xp.astype(x.data, bdt), x.backend)
        if state.tracer is not None:
            state.tracer("astype", (x, dtype), {}, out)
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
        shift = shift if isinstance(shift, tuple) else (shift,) * len(axis)
        if len(shift) != len(axis):
            raise ValueError(f"gradtape.roll: shift {shift!r} and axis {tuple(axis)!r} must have the same length")
        axis = tuple(axis_index(a, x.ndim, "roll", x.shape) - x.ndim for a in axis)
    else:
        axis = axis_index(axis, x.ndim, "roll", x.shape) - x.ndim
        if isinstance(shift, tuple):      # NumPy broadcasts the shifts against the one axis: they add
            shift = sum(shift)
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
        from .._api.namespace import broadcast_shapes
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
    if idx.backend is not x.backend:
        from .._core.dispatch import device_error as _device_error
        raise _device_error(op, [x, idx])
    if not idx.backend.xp.isdtype(idx.data.dtype, "integral"):
        raise TypeError(f"gradtape.{op}: indices must have an integer dtype, got {idx.dtype}")
    if state.tracer is None:         # nothing is traced: wrap the raw array (three recorded ops cost ~10 us)
        d = idx.data
        return wrap(idx.backend.xp.where(d < 0, d + n, d), idx.backend)
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
    xp = x.backend.xp
    n = x.shape[axis]
    r = repeats.data if isinstance(repeats, Tensor) else repeats
    idx = xp.repeat(xp.arange(n, device=x.data.device), r)
    from .._core.dispatch import wrap
    return take(x, wrap(idx, x.backend), axis=axis)


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


# indexing (x[key], x[key] = v) builds on the primitives above
