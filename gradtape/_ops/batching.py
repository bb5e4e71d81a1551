"""Batching rules (``gt.vmap``) of the elementwise, reduction, shape and indexing primitives, and the helpers
rules share.

A rule ``rule(prim, args, batched, params, size)`` gets the underlying values (a batched one with the batch
axis at 0, its per-example rank one less than its rank), which of them are batched, the primitive's
parameters (computed per example by the API layer) and the batch size, and returns the output with the
batch axis at 0 (a tuple of outputs for a multi-output primitive). It runs the primitive (or others) on the
underlying values with :func:`apply`, so they are recorded and differentiated as any op: ``grad(vmap(f))``
needs nothing more. Most rules only adjust parameters: reductions, ``flip``, ``roll``... take negative axes,
which already skip the batch axis; shapes get the batch size in front, positive axes one more.

Elementwise primitives (``same_shape`` or ``broadcasting``) without a rule of their own get
:func:`elementwise`: batched inputs of a lower per-example rank get size-1 axes after the batch axis (so
per-example axes line up from the right), then the primitive runs as it is.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.sum.batch is _passthrough and PRIMS.sin.batch is elementwise
True
"""
from __future__ import annotations

from .._core import hooks
from .._core.dispatch import apply, apply1, apply2
from .._core.primitive import PRIMS
from .._core.tensor import Tensor
from . import elementwise as _ew, linalg as _la, nn as _nn, reduction as _red, special as _sp  # noqa: F401 (the prims)
from .indexing import along_add_p, along_p
from .shape import broadcast_p, permute_p, reshape_p

__all__ = ["elementwise", "rule_of", "no_rule", "align", "pad", "move_to_front", "move_from_front", "ensure_batched",
           "shift_axis", "shift_axes", "example_ndim"]

_ALL = slice(None)


# ---- helpers -----------------------------------------------------------------------------------------------------
def example_ndim(x, batched):
    """The per-example rank of an argument (0 for a Python scalar)."""
    n = x.ndim if isinstance(x, Tensor) else 0
    return n - 1 if batched else n


def pad(x, ndim):
    """Batched ``x`` with size-1 axes after the batch axis, to per-example rank ``ndim``."""
    shape = x.shape
    extra = ndim - (len(shape) - 1)
    if extra <= 0:
        return x
    new = shape[:1] + (1,) * extra + shape[1:]
    return apply1(reshape_p, x, {"shape": new, "xshape": shape})


def align(args, batched):
    """The arguments with the batched ones padded to the largest per-example rank of all (unbatched ones
    broadcast from the right against the batched ones' per-example axes, as they do per example)."""
    ndim = max(example_ndim(a, b) for a, b in zip(args, batched))
    return tuple(pad(a, ndim) if b else a for a, b in zip(args, batched))


def move_to_front(x, axis):
    """``x`` with its axis ``axis`` (any sign) moved to position 0."""
    nd = x.ndim
    axis %= nd
    if axis == 0:
        return x
    return apply1(permute_p, x, {"axes": (axis,) + tuple(i for i in range(nd) if i != axis)})


def move_from_front(x, axis):
    """``x`` with its axis 0 moved to position ``axis`` (any sign, of the result)."""
    nd = x.ndim
    axis %= nd
    if axis == 0:
        return x
    rest = list(range(1, nd))
    rest.insert(axis, 0)
    return apply1(permute_p, x, {"axes": tuple(rest)})


def ensure_batched(x, size):
    """An unbatched value (a tensor of the per-example shape, or a Python scalar) broadcast to ``(size,) +
    shape``: the same value for every example."""
    if not isinstance(x, Tensor):
        x = hooks.API.asarray(x)
    shape = x.shape
    return apply1(broadcast_p, x, {"shape": (size,) + shape, "xshape": shape})


def shift_axis(axis, ndim):
    """A per-example axis (any sign, of a per-example rank ``ndim``) as an axis of the batched value."""
    return axis % ndim + 1 if ndim else axis + 1


def shift_axes(axis, ndim):
    """Per-example axes (an int, a tuple, or None for all of them) as axes of the batched value (a tuple)."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, int):
        return (shift_axis(axis, ndim),)
    return tuple(shift_axis(a, ndim) for a in axis)


def _batched_shape(params, size, *names):
    """``params`` with the shapes ``names`` given the batch size in front (a new dict)."""
    p = dict(params)
    for n in names:
        p[n] = (size,) + tuple(p[n])
    return p


# ---- the default: elementwise ----------------------------------------------------------------------------------
def elementwise(prim, args, batched, params, size):
    """Elementwise primitives: batched inputs padded to the output's per-example rank, then the primitive."""
    if len(args) == 1:
        return apply1(prim, args[0], params) if params else apply1(prim, args[0])
    if len(args) == 2 and not params:        # the binary operators: apply2's fast path
        x, y = args
        bx, by = batched
        nx = x.ndim if isinstance(x, Tensor) else 0
        ny = y.ndim if isinstance(y, Tensor) else 0
        if bx and by:
            if nx != ny:
                x, y = (pad(x, ny - 1), y) if nx < ny else (x, pad(y, nx - 1))
        elif bx:
            if nx <= ny:
                x = pad(x, ny)
        elif ny <= nx:
            y = pad(y, nx)
        return apply2(prim, x, y)
    ndim = -1
    for a, b in zip(args, batched):
        n = example_ndim(a, b)
        if n > ndim:
            ndim = n
    for a, b in zip(args, batched):      # the usual case: every batched input has the output's rank
        if b and a.ndim - 1 != ndim:
            args = align(args, batched)
            break
    return apply(prim, args, params or None)


def no_rule(prim):
    """The error for a primitive without a batching rule."""
    fn = prim.function
    if fn is not None and prim.namespace:
        where = ("gt." if prim.namespace == "gt" else f"gt.{prim.namespace}.") + fn.__name__
    else:
        where = f"gt.{prim.name}"
    return NotImplementedError(
        f"gradtape.vmap: no batching rule for primitive {prim.name!r} (called as {where}); write it with the batch "
        f"as an explicit axis, call it outside vmap, or give the primitive a rule (Primitive.batch, see "
        f"gradtape/_ops/batching.py)")


def rule_of(prim):
    """The batching rule of ``prim``: its own, the elementwise default, or a NotImplementedError (a
    RuntimeError) naming it. Primitives made on demand (``concat<n>``) get theirs here, once."""
    rule = prim.batch
    if rule is not None:
        return rule
    if prim.same_shape or prim.broadcasting:
        rule = elementwise
    elif prim.name.startswith("concat") and prim.name[6:].isdigit():
        rule = _concat
    else:
        raise no_rule(prim)
    prim.batch = rule
    return rule


# ---- reductions, and the shape ops on negative axes: the parameters as they are ------------------------------
def _passthrough(prim, args, batched, params, size):
    """Primitives on negative axes (reductions, scans, flip, roll, tril/triu, diagonal, astype): batched as
    they are, a recorded ``xshape`` given the batch axis."""
    if "xshape" in params:
        params = _batched_shape(params, size, "xshape")
    return apply(prim, args, params)


def _reshape(prim, args, batched, params, size):
    return apply1(prim, args[0], _batched_shape(params, size, "shape", "xshape"))


def _permute(prim, args, batched, params, size):
    return apply1(prim, args[0], {"axes": (0,) + tuple(a + 1 for a in params["axes"])})


def _broadcast(prim, args, batched, params, size):
    shape = tuple(params["shape"])
    x = pad(args[0], len(shape))
    return apply1(prim, x, {"shape": (size,) + shape, "xshape": x.shape})


def _select(prim, args, batched, params, size):
    """One output of a multi-output primitive: the batched outputs are already separate tensors."""
    return args[0][params["k"]]


def _concat(prim, args, batched, params, size):
    args = tuple(a if b else ensure_batched(a, size) for a, b in zip(args, batched))
    return apply(prim, args, params)


# ---- indexing ----------------------------------------------------------------------------------------------------
def _basic(key):
    return not any(hasattr(e, "shape") for e in (key if type(key) is tuple else (key,)))


def _region_ndim(ndim, key):
    """The rank of ``x[key]`` for a basic ``key`` (ints, slices, None, Ellipsis) and ``x`` of rank ``ndim``."""
    ints = sum(1 for e in key if isinstance(e, int) and not isinstance(e, bool))
    news = sum(1 for e in key if e is None)
    return ndim - ints + news


def _to_end(x):
    nd = x.ndim
    return x if nd <= 1 else apply1(permute_p, x, {"axes": tuple(range(1, nd)) + (0,)})


def _from_end(x):
    nd = x.ndim
    return x if nd <= 1 else apply1(permute_p, x, {"axes": (nd - 1,) + tuple(range(nd - 1))})


def _key_at_end(key):
    """A key for an array whose batch axis was moved to the end (after a ``...``, entries index what they did)."""
    key = key if type(key) is tuple else (key,)
    return key + (_ALL,) if any(e is Ellipsis for e in key) else key


def _getitem(prim, args, batched, params, size):
    x = args[0]
    key = params["key"]
    key = key if type(key) is tuple else (key,)
    p = dict(params, xshape=(size,) + tuple(params["xshape"]))
    if params.get("basic", True) and _basic(key):
        p["key"] = (_ALL,) + key
        return apply1(prim, x, p)
    p["key"] = _key_at_end(key)
    p["xshape"] = tuple(params["xshape"]) + (size,)
    return _from_end(apply1(prim, _to_end(x), p))


def _write(prim, args, batched, params, size):
    """setitem, index_add (x, v): x[key] = v or += v in every example."""
    x, v = args
    if not batched[0]:
        x = ensure_batched(x, size)
    key = params["key"]
    key = key if type(key) is tuple else (key,)
    if _basic(key):
        if batched[1]:      # the value's axes line up with the region's last ones, after the batch axis
            v = pad(v, _region_ndim(len(params["xshape"]), key))
        return apply(prim, (x, v), dict(params, key=(_ALL,) + key, xshape=x.shape))
    xe = _to_end(x)
    if batched[1]:
        v = _to_end(v)
    elif isinstance(v, Tensor) and v.ndim:       # the written region gets the batch axis last
        v = apply1(reshape_p, v, {"shape": v.shape + (1,), "xshape": v.shape})
    return _from_end(apply(prim, (xe, v), dict(params, key=_key_at_end(key), xshape=xe.shape)))


def _spread(idx, ndim, axis, shape):
    """Batched 1-d indices (B, k) as indices of per-example rank ``ndim`` along the negative ``axis``,
    broadcast to ``shape`` (the gather/scatter's batched shape)."""
    a = axis + ndim
    new = idx.shape[:1] + (1,) * a + idx.shape[1:] + (1,) * (ndim - a - 1)
    idx = apply1(reshape_p, idx, {"shape": new, "xshape": idx.shape})
    return apply1(broadcast_p, idx, {"shape": tuple(shape), "xshape": new})


def _take(prim, args, batched, params, size):
    x, idx = args
    if not batched[1]:
        return apply(prim, (x, idx), _batched_shape(params, size, "xshape"))
    if not batched[0]:
        x = ensure_batched(x, size)
    nd = x.ndim - 1
    axis = params["axis"]
    a = nd + axis
    out_shape = x.shape[:a + 1] + idx.shape[1:] + x.shape[a + 2:]
    full = _spread(idx, nd, axis, out_shape)
    return apply(along_p, (x, full), {"axis": axis, "xshape": x.shape})


def _fitted(v, vb, z, shape):
    """The added values ``v`` (batched or not, maybe a Python number) broadcast to the batched ``shape``."""
    if not isinstance(v, Tensor):
        v = hooks.API.asarray(v, dtype=z.dtype, device=z.device)
    if vb:
        v = pad(v, len(shape) - 1)
    return v if v.shape == shape else apply1(broadcast_p, v, {"shape": shape, "xshape": v.shape})


def _take_add(prim, args, batched, params, size):
    z, idx, v = args
    z = z if batched[0] else ensure_batched(z, size)
    a = z.ndim - 1 + params["axis"]
    v = _fitted(v, batched[2], z, z.shape[:a + 1] + idx.shape[-1:] + z.shape[a + 2:])
    if not batched[1]:
        return apply(prim, (z, idx, v), params)
    full = _spread(idx, z.ndim - 1, params["axis"], v.shape)
    return apply(along_add_p, (z, full, v), params)


def _along(prim, args, batched, params, size):
    """take_along_axis (x, idx) and along_add (z, idx, v): every operand batched (v of idx's shape)."""
    if len(args) == 3 and not isinstance(args[2], Tensor):
        z, idx, v = args
        args = (z, idx, hooks.API.asarray(v, dtype=z.dtype, device=z.device))
    args = tuple(a if b else ensure_batched(a, size) for a, b in zip(args, batched))
    if len(args) == 3:
        args = args[:2] + (_fitted(args[2], True, args[0], args[1].shape),)
    if "xshape" in params:
        params = _batched_shape(params, size, "xshape")
    return apply(prim, args, params)


def _attach():
    rules = {
        "reshape": _reshape, "permute_dims": _permute, "broadcast_to": _broadcast, "select": _select,
        "getitem": _getitem, "setitem": _write, "index_add": _write, "take": _take, "take_add": _take_add,
        "take_along_axis": _along, "along_add": _along,
    }
    for name in ("sum", "prod", "max", "min", "mean", "var", "std", "cumulative_sum", "logsumexp", "astype", "flip",
                 "roll", "tril", "triu", "diagonal"):
        rules[name] = _passthrough
    for name, rule in rules.items():
        PRIMS[name].batch = rule
    for p in PRIMS.values():
        if p.batch is None and (p.same_shape or p.broadcasting):
            p.batch = elementwise


_attach()
