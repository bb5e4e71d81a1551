"""Shape, indexing and selection primitives (all linear in the differentiated input).

For a linear op the JVP is the op applied to the tangent and the VJP its
transpose, so each block is short. Broadcasting (``broadcast_to``'s VJP) and
dtype casts (``astype``'s VJP) are undone by the engine from the recorded
input shape and dtype, so those VJPs just pass ``ct`` through.
"""
from __future__ import annotations

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
# out = x with out[key] = v
setitem_p = prim("setitem", lambda xp, x, v, key: _set(xp, x, key, v),
                 [lambda xp, ct, out, x, v, key: _set(xp, ct, _pre(state.nb) + _tup(key), 0.0),
                  lambda xp, ct, out, x, v, key: ct[_pre(state.nb) + _tup(key)]],
                 [lambda xp, t, out, x, v, key: _set(xp, t, _pre(t.ndim - x.ndim) + _tup(key), 0.0),
                  lambda xp, t, out, x, v, key: _set(xp, _zeros_b(xp, t, v, out), _pre(t.ndim - _nd(v)) + _tup(key),
                                                     _align(xp, t, v, out[key]))], [(), ()])
# out = x with v added at x[key] (duplicates accumulate): the transpose of getitem
index_add_p = prim("index_add", lambda xp, x, v, key: xp.index_add(x, key, v),
                   [lambda xp, ct, out, x, v, key: ct, lambda xp, ct, out, x, v, key: ct[_pre(state.nb) + _tup(key)]],
                   [lambda xp, t, out, x, v, key: t,
                    lambda xp, t, out, x, v, key: xp.index_add(_zeros_b(xp, t, v, out), _pre(t.ndim - _nd(v)) + _tup(key),
                                                               _align(xp, t, v, out[key]))],
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


def _align(xp, t, v, region):
    """A tangent of v with batch axes, reshaped so it broadcasts into ``region`` behind the batch axes."""
    nb = t.ndim - _nd(v)
    if not nb:
        return t
    return xp.reshape(t, _lead(t, _nd(v)) + (1,) * (region.ndim - _nd(v)) + tuple(t.shape[nb:]))


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
    axes = tuple(a % x.ndim for a in axes)
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
    nd = x.ndim + 1
    if not -nd <= axis < nd:
        raise IndexError(f"gradtape.expand_dims: axis {axis} out of range for shape {x.shape}")
    a = axis % nd
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def squeeze(x, /, axis):
    """Array API ``squeeze`` (axis required, the squeezed axes must have size 1).

    >>> import gradtape as gt
    >>> gt.squeeze(gt.ones((2, 1)), axis=1).shape
    (2,)
    """
    x = _t(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = {a % x.ndim for a in axes}
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
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % x.ndim for s in src]
    dst = [d % x.ndim for d in dst]
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
    axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    return apply1(flip_p, x, {"axis": tuple(a % x.ndim - x.ndim for a in axes)})


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
    axis = tuple(a % x.ndim - x.ndim for a in axis) if isinstance(axis, (list, tuple)) else axis % x.ndim - x.ndim
    return apply1(roll_p, x, {"shift": shift, "axis": axis})


def tril(x, /, *, k=0):
    """Array API ``tril``.

    >>> import gradtape as gt
    >>> gt.tril(gt.ones((2, 2)))
    Tensor([[1., 0.],
            [1., 1.]])
    """
    return apply(tril_p, (_t(x),), {"k": k})


def triu(x, /, *, k=0):
    """Array API ``triu``.

    >>> import gradtape as gt
    >>> gt.triu(gt.ones((2, 2)))
    Tensor([[1., 1.],
            [0., 1.]])
    """
    return apply(triu_p, (_t(x),), {"k": k})


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
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("gradtape.concat: zero-dimensional arrays cannot be concatenated")
    ax = axis % nd - nd
    sizes = tuple(a.shape[ax] for a in arrays)
    return apply(_concat_prim(len(arrays)), tuple(arrays), {"axis": ax, "sizes": sizes})


def stack(arrays, /, *, axis=0):
    """Array API ``stack``.

    >>> import gradtape as gt
    >>> gt.stack([gt.ones((2,)), gt.zeros((2,))]).shape
    (2, 2)
    """
    arrays = [_t(a) for a in arrays]
    return concat([expand_dims(a, axis=axis) for a in arrays], axis=axis)


def unstack(x, /, *, axis=0):
    """Array API ``unstack``.

    >>> import gradtape as gt
    >>> len(gt.unstack(gt.ones((3, 2))))
    3
    """
    x = _t(x)
    a = axis % x.ndim
    return tuple(x[(slice(None),) * a + (i,)] for i in range(x.shape[a]))


def _unwrap_key(key, shape):
    """Raw backend key for indexing, and whether it is basic (no integer arrays).

    A key naming fewer axes than the array has gets a trailing ``...``, and
    slice bounds past the end of an axis are clamped (NumPy's readings, which
    the standard leaves to the library)."""
    ndim = len(shape)
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    basic = True
    used = 0
    after_ellipsis = False
    for k in key:
        if k is Ellipsis:
            after_ellipsis = True
        elif isinstance(k, slice) and not after_ellipsis and used < ndim and (k.step is None or k.step > 0):
            n = shape[used]
            if (k.start is not None and k.start > n) or (k.stop is not None and k.stop > n):
                k = slice(None if k.start is None else min(k.start, n), None if k.stop is None else min(k.stop, n),
                          k.step)
        if isinstance(k, list):
            raise IndexError("gradtape: index with an integer array (gt.asarray(...)), not a list")
        if not isinstance(k, (int, slice, type(None), type(Ellipsis))) and hasattr(k, "shape"):
            if not isinstance(k, Tensor):
                from ._namespace import asarray
                k = asarray(k)
            is_bool = k._bk.xp.isdtype(k.data.dtype, "bool")
            basic = basic and is_bool
            used += k.ndim if is_bool else 1
            k = k.data
        elif k is not None and k is not Ellipsis:
            used += 1
        out.append(k)
    if Ellipsis not in [k for k in out if not hasattr(k, "shape")] and used < ndim:
        out.append(Ellipsis)
    return (out[0] if len(out) == 1 else tuple(out)), basic


def getitem(x, key):
    """x[key]: basic, integer-array and boolean indexing; differentiable.

    ``None`` (new axes) is applied as a reshape; a single integer array with
    full slices elsewhere is a :func:`take`, so every backend supports it.

    >>> import gradtape as gt
    >>> gt.asarray([1.0, 2.0, 3.0])[1:]
    Tensor([2., 3.])
    """
    x = _t(x)
    k, basic = _unwrap_key(key, x.shape)
    ks = k if isinstance(k, tuple) else (k,)
    if any(e is None for e in ks) and basic:
        return _with_newaxes(x, ks)
    if ks and hasattr(ks[0], "shape") and all(e is Ellipsis for e in ks[1:]) and x._bk.xp.isdtype(ks[0].dtype, "bool"):
        # x[mask] is a take of the flattened masked axes at the mask's nonzero positions
        from ._core import wrap
        xp = x._bk.xp
        m = ks[0]
        if tuple(m.shape) != x.shape[:m.ndim]:
            raise IndexError(f"gradtape.getitem: boolean index of shape {tuple(m.shape)} does not match the "
                             f"array's leading shape {x.shape[:m.ndim]}")
        flat = reshape(x, (-1,) + x.shape[m.ndim:]) if m.ndim != 1 else x
        pos = xp.nonzero(xp.reshape(m, (-1,)))[0]
        return take(flat, wrap(pos, x._bk), axis=0)
    if not basic:
        arrays = [i for i, e in enumerate(ks) if hasattr(e, "shape")]
        rest = [e for i, e in enumerate(ks) if i not in arrays]
        ell = [i for i, e in enumerate(ks) if e is Ellipsis]
        if len(arrays) == 1 and all(e is Ellipsis or (isinstance(e, slice) and e == slice(None)) for e in rest):
            from ._core import wrap
            idx = wrap(ks[arrays[0]], x._bk)
            # the array's axis: counted from the front, or from the back when an ellipsis precedes it
            a = arrays[0] if not ell or ell[0] > arrays[0] else x.ndim - (len(ks) - arrays[0])
            if idx.ndim == 1:
                return take(x, idx, axis=a)
            out = take(x, reshape(idx, (-1,)), axis=a)
            return reshape(out, out.shape[:a] + idx.shape + out.shape[a + 1:])
    return apply1(getitem_p, x, {"key": k, "xshape": x.shape, "basic": basic})


def _with_newaxes(x, ks):
    """x[key] for a basic key holding None: index without the Nones, then insert the size-1 axes."""
    plain = tuple(e for e in ks if e is not None)
    y = getitem(x, plain if plain else (Ellipsis,))
    # walk the key to find where each None lands in the result
    shape = []
    dims = list(y.shape)
    pos = 0
    n_ell = x.ndim - sum(1 for e in plain if e is not Ellipsis)
    for e in ks:
        if e is None:
            shape.append(1)
        elif e is Ellipsis:
            shape += dims[pos:pos + n_ell]
            pos += n_ell
        elif isinstance(e, slice):
            shape.append(dims[pos])
            pos += 1
    shape += dims[pos:]
    return reshape(y, tuple(shape))


def setitem(x, key, value):
    """A copy of x with x[key] = value (differentiable in x and value)."""
    k, _ = _unwrap_key(key, x.shape)
    if not isinstance(value, Tensor) and not isinstance(value, (bool, int, float)):
        from ._namespace import asarray
        value = asarray(value, device=x.device)
    return apply(setitem_p, (x, value), {"key": k})


def index_add(x, key, v):
    """A copy of x with v added at x[key]; repeated integer indices accumulate (transpose of getitem)."""
    k, _ = _unwrap_key(key, x.shape)
    return apply(index_add_p, (x, v), {"key": k})


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
    idx = _t(indices)
    return apply(take_p, (x, idx), {"axis": axis % x.ndim - x.ndim, "xshape": x.shape})


def take_add(z, indices, v, axis):
    """z with v added at ``indices`` along ``axis`` (repeats accumulate): the transpose of :func:`take`."""
    return apply(take_add_p, (_t(z), _t(indices), v), {"axis": axis})


def take_along_axis(x, indices, /, *, axis=-1):
    """Array API ``take_along_axis``.

    >>> import gradtape as gt
    >>> gt.take_along_axis(gt.asarray([[1.0, 2.0]]), gt.asarray([[1, 1]]), axis=1)
    Tensor([[2., 2.]])
    """
    x = _t(x)
    return apply(along_p, (x, _t(indices)), {"axis": axis % x.ndim - x.ndim, "xshape": x.shape})


def along_add(z, indices, v, axis):
    """z with v added at take_along_axis positions (the transpose of :func:`take_along_axis`)."""
    return apply(along_add_p, (_t(z), _t(indices), v), {"axis": axis})


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
