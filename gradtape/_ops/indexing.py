"""Indexing primitives: ``getitem`` (x[key]), ``setitem`` (a copy with x[key] = v), ``index_add`` (its
transpose), and the gathers ``take``/``take_along_axis`` with their transposes ``take_add``/``along_add``.

Rules accept cotangents/tangents with extra leading batch axes (batched Jacobians): the number of batch
axes is derived from the shapes (``ct.ndim`` against the recorded ``xshape``), index keys get a ``:`` per
batch axis in front. The public functions (key normalisation, broadcasting of values) are in
:mod:`gradtape._api.indexing`.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.setitem.inputs, PRIMS.take.reads
(('x', 'v'), ((1,), ()))
"""
from __future__ import annotations

from .._core.dtypes import dtype_name
from .._core.primitive import define
from .._core.tensor import Tensor

__all__ = ["getitem_p", "setitem_p", "index_add_p", "take_p", "take_add_p", "along_p", "along_add_p", "indexed_ndim"]

# x[key]; the VJP scatters ct back (accumulating repeated integer indices)
getitem_p = define(
    "getitem", lambda xp, x, key, xshape, basic: x[key],
    vjp={"x": lambda xp, ct, out, x, key, xshape, basic: _scatter(xp, ct, key, xshape, basic)},
    jvp={"x": lambda xp, t, out, x, key, xshape, basic: t[_all(t.ndim - len(xshape)) + _as_tuple(key)]}, view=True)
# out = x with out[key] = v, v already of the written region's shape (setitem broadcasts it)
setitem_p = define(
    "setitem", lambda xp, x, v, key, xshape: _set(xp, x, key, v), inputs=("x", "v"),
    vjp={"x": lambda xp, ct, out, x, v, key, xshape: _batched_set(xp, ct, key, 0.0, ct.ndim - len(xshape)),
         "v": lambda xp, ct, out, x, v, key, xshape: _batched_get(xp, ct, key, ct.ndim - len(xshape))},
    jvp={"x": lambda xp, t, out, x, v, key, xshape: _batched_set(xp, t, key, 0.0, t.ndim - len(xshape)),
         "v": lambda xp, t, out, x, v, key, xshape: _batched_set(xp, _zeros_batched(xp, t, v, out), key, t,
                                                                  t.ndim - _ndim(v))})
# out = x with v added at x[key] (duplicates accumulate): the transpose of getitem
index_add_p = define(
    "index_add", lambda xp, x, v, key, xshape: xp.index_add(x, key, v), inputs=("x", "v"),
    vjp={"x": lambda xp, ct, out, x, v, key, xshape: ct,
         "v": lambda xp, ct, out, x, v, key, xshape: _batched_get(xp, ct, key, ct.ndim - len(xshape))},
    jvp={"x": lambda xp, t, out, x, v, key, xshape: t,
         "v": lambda xp, t, out, x, v, key, xshape: _batched_set(xp, _zeros_batched(xp, t, v, out), key, t,
                                                                  t.ndim - _ndim(v), add=True)})

# gathers along one (negative) axis and their transposes (scatter-adds, repeats accumulating)
take_p = define(
    "take", lambda xp, x, idx, axis, xshape: xp.take(x, idx, axis=axis), inputs=("x", "idx"),
    vjp={"x": lambda xp, ct, out, x, idx, axis, xshape: xp.take_add(
        xp.zeros(_lead(ct, len(xshape) + idx.ndim - 1) + xshape, dtype=ct.dtype, device=ct.device), idx, ct, axis)},
    jvp={"x": lambda xp, t, out, x, idx, axis, xshape: xp.take(t, idx, axis=axis)}, reads={"x": ("idx",)})
take_add_p = define(
    "take_add", lambda xp, z, idx, v, axis: xp.take_add(z, idx, v, axis), inputs=("z", "idx", "v"),
    vjp={"z": lambda xp, ct, out, z, idx, v, axis: ct,
         "v": lambda xp, ct, out, z, idx, v, axis: xp.take(ct, idx, axis=axis)},
    jvp={"z": lambda xp, t, out, z, idx, v, axis: t,
         "v": lambda xp, t, out, z, idx, v, axis: xp.take_add(_zeros_batched(xp, t, v, out), idx, t, axis)},
    reads={"v": ("idx",)})
along_p = define(
    "take_along_axis", lambda xp, x, idx, axis, xshape: xp.take_along_axis(x, idx, axis=axis), inputs=("x", "idx"),
    vjp={"x": lambda xp, ct, out, x, idx, axis, xshape: xp.along_add(
        xp.zeros(_lead(ct, len(xshape)) + xshape, dtype=ct.dtype, device=ct.device), _batched_index(xp, idx, ct), ct,
        axis)},
    jvp={"x": lambda xp, t, out, x, idx, axis, xshape: xp.take_along_axis(t, _batched_index(xp, idx, t), axis=axis)},
    reads={"x": ("idx",)})
along_add_p = define(
    "along_add", lambda xp, z, idx, v, axis: xp.along_add(z, idx, v, axis), inputs=("z", "idx", "v"),
    vjp={"z": lambda xp, ct, out, z, idx, v, axis: ct,
         "v": lambda xp, ct, out, z, idx, v, axis: xp.take_along_axis(ct, _batched_index(xp, idx, ct), axis=axis)},
    jvp={"z": lambda xp, t, out, z, idx, v, axis: t,
         "v": lambda xp, t, out, z, idx, v, axis: xp.along_add(_zeros_batched(xp, t, v, out),
                                                               _batched_index(xp, idx, t), t, axis)},
    reads={"v": ("idx",)})

def _lead(a, n):
    """The leading (batch) part of a's shape, beyond its last n axes."""
    return tuple(a.shape[:a.ndim - n])


def _all(n):
    return (slice(None),) * n


def _as_tuple(key):
    return key if isinstance(key, tuple) else (key,)


def _ndim(v):
    return v.ndim if hasattr(v, "ndim") else 0


def _zeros_batched(xp, t, v, out):
    """Zeros of out's shape with t's batch axes (t is a tangent of v)."""
    return xp.zeros(_lead(t, _ndim(v)) + tuple(out.shape), dtype=t.dtype, device=t.device)


def _is_basic(key):
    return not any(hasattr(e, "shape") for e in _as_tuple(key))


def _to_end(xp, a, batch):
    return xp.permute_dims(a, tuple(range(batch, a.ndim)) + tuple(range(batch)))


def _to_front(xp, a, batch):
    return xp.permute_dims(a, tuple(range(a.ndim - batch, a.ndim)) + tuple(range(a.ndim - batch)))


def _batched_get(xp, a, key, batch):
    """a[key] for an a with ``batch`` leading batch axes, kept in front. An array key gets them at the end,
    where its ``...`` keeps them (a ``:`` in front would move NumPy's separated advanced axes ahead of them)."""
    if not batch:
        return a[key]
    if _is_basic(key):
        return a[_all(batch) + _as_tuple(key)]
    return _to_front(xp, _to_end(xp, a, batch)[_batch_at_end(key, batch)], batch)


def _batched_set(xp, a, key, v, batch, add=False):
    """A copy of a (``batch`` leading axes) with v (batch axes in front, or a scalar) written or added at key."""
    write = xp.index_add if add else (lambda z, k, w: _set(xp, z, k, w))
    if not batch:
        return write(a, key, v)
    if _is_basic(key):
        if _ndim(v):        # v's own axes line up with the region's last ones, after the batch axes
            lead, nv = tuple(v.shape[:batch]), _ndim(v) - batch
            extra = indexed_ndim(_as_tuple(key), a.ndim - batch) - nv
            if extra > 0:
                v = xp.reshape(v, lead + (1,) * extra + tuple(v.shape[batch:]))
        return write(a, _all(batch) + _as_tuple(key), v)
    return _to_front(xp, write(_to_end(xp, a, batch), _batch_at_end(key, batch),
                               _to_end(xp, v, batch) if _ndim(v) else v), batch)


def _batch_at_end(key, batch):
    """``key`` for an array whose batch axes were moved to the end: entries after a ``...`` must still index
    the axes they did, so the batch axes get their own trailing ``:`` (the ``...`` spans what it did)."""
    key = _as_tuple(key)
    return key + _all(batch) if any(e is Ellipsis for e in key) else key


def _batched_index(xp, idx, a):
    """take_along_axis indices broadcast to a's leading batch axes."""
    return idx if a.ndim == idx.ndim else xp.broadcast_to(idx, tuple(a.shape[:a.ndim - idx.ndim]) + tuple(idx.shape))


def indexed_ndim(key, ndim):
    """The number of axes of a[key] for an array a of ``ndim`` axes (NumPy's rules; it runs in every getitem VJP)."""
    kept, advanced = ndim, -1
    for e in (key if type(key) is tuple else (key,)):
        if e is None:
            kept += 1
        elif e is Ellipsis or type(e) is slice:
            continue
        elif hasattr(e, "shape"):
            mask = dtype_name(e.dtype) == "bool"
            kept -= e.ndim if mask else 1
            advanced = max(advanced, 1 if mask else e.ndim)
        else:               # an integer
            kept -= 1
    return kept if advanced < 0 else kept + advanced


def _scatter(xp, ct, key, xshape, basic):
    """The transpose of x[key]: ct (with any leading batch axes) placed into zeros of x's shape."""
    batch = ct.ndim - indexed_ndim(key, len(xshape))
    z = xp.zeros(_lead(ct, ct.ndim - batch) + xshape, dtype=ct.dtype, device=ct.device)
    key = _all(batch) + _as_tuple(key)
    if basic:
        z[key] = ct
        return z
    return xp.index_add(z, key, ct)


def _set(xp, x, key, v):
    if isinstance(x, Tensor):
        return xp.setitem(x, key, v)     # a tangent (forward mode): xp is the tensor-level namespace
    out = xp.asarray(x, copy=True)
    if type(key) is tuple and len(key) == 1:
        key = key[0]        # array-api-strict misreads a 1-tuple holding an empty mask
    out[key] = v
    return out

