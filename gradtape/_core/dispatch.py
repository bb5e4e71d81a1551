"""Running a primitive on tensors and recording it: :func:`apply` and its two fast paths.

Every differentiable op goes through :func:`apply` (any arity, parameters, forward mode, coercion),
:func:`apply1` (one tensor input) or :func:`apply2` (binary operators without parameters). The three share
one tensor constructor (:func:`new_tensor`) and one node constructor (:func:`_record`). A graph node
(:class:`Node`) references its parents' nodes (or leaf tensors), never the intermediate tensors
themselves, so an intermediate's data is freed as soon as nothing but the graph would hold it and no rule
saved it. While ``gt.trace`` records on this thread, every op is also handed to ``state.tracer``.
"""
from __future__ import annotations

import itertools

from .. import backends as _backends
from .._state import scoped, state
from . import hooks
from .primitive import Multi, define
from .tensor import Tensor, new_tensor
from .views import view_tensor

__all__ = ["Node", "apply", "apply1", "apply2", "apply_multi", "wrap", "version", "device_error", "SELECT"]

_seq = itertools.count()
_SCALARS = (bool, int, float, complex)
_EXACT = frozenset(_SCALARS)
_FAST_SCALARS = (int, float)
_EMPTY = {}
_new = object.__new__


class Node:
    """One recorded application of a primitive.

    parents[i] is the input's Node, the input tensor itself when it is a tracked leaf, or None for a
    constant. ``saved`` holds only the inputs the VJP rules read (as tensors, with their versions in
    ``versions``), ``out`` the output's array when a rule reads it. ``input_meta[i]`` is (shape, dtype) of
    input i, from which the engine brings every cotangent to its input's exact shape and dtype
    (broadcasting and promotion undone in one place); it is None only where the rule is known to return
    that already: an elementwise primitive (``same_shape``, or ``broadcasting`` with the input of the
    output's shape and dtype). Any other rule may return another shape (vecdot's vector, setitem's
    written region)."""

    __slots__ = ("prim", "parents", "saved", "versions", "out", "params", "input_meta",
                 "seq", "backend", "out_tangents", "__weakref__")


def wrap(data, backend=None):
    """A fresh untracked Tensor around a raw backend array."""
    return new_tensor(data, backend if backend is not None else _backends.backend_of(data))


def version(t):
    """A tensor's version, counting in-place updates of the tensors it is a view of."""
    v = t._version
    b = t._base
    while b is not None:
        v += b._version
        b = b._base
    return v


def device_error(name, tensors):
    descr = ", ".join(f"{t.backend.device!r} ({t.backend.name}, shape {tuple(t.data.shape)})" for t in tensors)
    return TypeError(f"gradtape.{name}: inputs live on different backends or devices: {descr}; "
                     f"move them to one device with .to_device(...) first")


def _record(t, prim, parents, saved, versions, out, params, input_meta, backend):
    """Make ``t`` the tracked output of a new node (the one node constructor of the three paths); ``saved``:
    the inputs the rules read (or None), ``versions`` their versions now."""
    n = _new(Node)
    n.prim = prim
    n.parents = parents
    n.saved = saved
    n.versions = versions
    n.out = out if prim.reads_out else None
    n.params = params
    n.input_meta = input_meta
    n.seq = next(_seq)
    n.backend = backend
    t._node = n
    t._requires_grad = True
    return t


def apply(prim, args, params=None):
    """Run primitive ``prim`` on ``args`` (tensors or Python scalars); record it if needed."""
    backend = None
    tracked = False
    forward = False
    datas = []
    for a in args:
        if type(a) is not Tensor:
            if isinstance(a, _SCALARS):
                if type(a) not in _EXACT:     # NumPy's float64 & co: plain Python numbers for every backend
                    return apply(prim, tuple(x.item() if x is a else x for x in args), params)
                datas.append(a)
                continue
            if not isinstance(a, Tensor):
                defer = getattr(a, "__gradtape_apply__", None)
                if defer is not None:       # a gradtape.sym Symbol: it builds the expression instead
                    return defer(prim, args, params)
                return apply(prim, _coerce(prim, args), params)
            defer = getattr(a, "__gradtape_apply__", None)
            if defer is not None:           # a Tensor subclass that runs ops itself (gt.vmap's BatchTracer)
                return defer(prim, args, params)
        if backend is None:
            backend = a.backend
        elif a.backend is not backend:
            raise device_error(prim.name, [t for t in args if isinstance(t, Tensor)])
        datas.append(a.data)
        if a._requires_grad:
            tracked = True
        if a.tangents is not None:
            forward = True
    if backend is None:
        return apply(prim, (hooks.API.asarray(args[0]),) + tuple(args[1:]), params)
    if forward and state.levels:
        return _apply_forward(prim, args, params)
    if params is None:
        params = _EMPTY
    out = prim.fwd(backend.xp, *datas, **params)
    # a view shares its base's version counter (and writes through it reach its base: gradtape._core.views)
    t = view_tensor(out, backend, args[0], prim, params) if prim.view else new_tensor(out, backend)
    if tracked and state.enabled:
        parents = []
        input_meta = []
        mask = 0
        oshape = None if prim.multi_output else out.shape
        odtype = None if prim.multi_output else out.dtype
        for i, a in enumerate(args):
            if isinstance(a, Tensor) and a._requires_grad and prim.vjp[i] is not None:
                parents.append(a._node if a._node is not None else a)
                mask |= 1 << i
                d = a.data
                input_meta.append(None if (prim.same_shape or (prim.broadcasting and d.shape == oshape
                                                           and d.dtype == odtype)) else (d.shape, d.dtype))
            else:
                parents.append(None)
                input_meta.append(None)
        if mask:
            keep = prim._kept.get(mask)
            if keep is None:
                keep = prim.kept_inputs(mask)
            if keep:
                saved = tuple(args[j] if j in keep else None for j in range(len(args)))
                versions = tuple(version(a) if type(a) is Tensor else 0 for a in saved)
            else:
                saved = versions = None
            _record(t, prim, tuple(parents), saved, versions, out, params, tuple(input_meta), backend)
    tracer = state.tracer
    if tracer is not None:
        tracer(prim, args, params, t)
    return t


_ONE_INPUT_META = (None,)


def apply1(prim, x, params=_EMPTY):
    """:func:`apply` for one-input primitives (the hot path: no loops, no lists)."""
    if type(x) is not Tensor or (x.tangents is not None and state.levels):
        defer = None if type(x) is Tensor else getattr(x, "__gradtape_apply__", None)
        if defer is not None:           # as apply would (a gt.vmap tracer, a sym Symbol), without its loop
            return defer(prim, (x,), params)
        return apply(prim, (x,), params)
    backend = x.backend
    d = x.data
    out = prim.fwd(backend.xp, d, **params) if params else prim.fwd(backend.xp, d)
    t = view_tensor(out, backend, x, prim, params) if prim.view else new_tensor(out, backend)
    if x._requires_grad and state.enabled:
        if prim.reads_only_x:
            saved, versions = (x,), (x._version if x._base is None else version(x),)
        else:
            saved = versions = None
        _record(t, prim, (x if x._node is None else x._node,), saved, versions, out, params,
                _ONE_INPUT_META if prim.same_shape else ((d.shape, d.dtype),), backend)
    tracer = state.tracer
    if tracer is not None:
        tracer(prim, (x,), params, t)
    return t


def apply2(prim, x, y):
    """:func:`apply` for two-input elementwise primitives without parameters (the binary operators)."""
    tx = type(x) is Tensor
    ty = type(y) is Tensor
    if tx and ty:
        backend = x.backend
        if y.backend is not backend or x.tangents is not None or y.tangents is not None:
            return apply(prim, (x, y))
        rx, ry = x._requires_grad, y._requires_grad
        dx, dy = x.data, y.data
    elif tx and type(y) in _FAST_SCALARS:
        backend = x.backend
        if x.tangents is not None:
            return apply(prim, (x, y))
        rx, ry = x._requires_grad, False
        dx, dy = x.data, y
    elif ty and type(x) in _FAST_SCALARS:
        backend = y.backend
        if y.tangents is not None:
            return apply(prim, (x, y))
        rx, ry = False, y._requires_grad
        dx, dy = x, y.data
    else:
        defer = None if tx else getattr(x, "__gradtape_apply__", None)
        if defer is None and not ty:
            defer = getattr(y, "__gradtape_apply__", None)
        if defer is not None:           # as apply would (a gt.vmap tracer, a sym Symbol), without its loop
            return defer(prim, (x, y), None)
        return apply(prim, (x, y))
    out = prim.fwd(backend.xp, dx, dy)
    t = new_tensor(out, backend)
    if (rx or ry) and state.enabled:
        oshape = out.shape          # broadcasting elementwise primitives only: see Node.input_meta
        odtype = out.dtype
        if rx:
            px = x if x._node is None else x._node
            mx = None if (dx.shape == oshape and dx.dtype == odtype) else (dx.shape, dx.dtype)
        else:
            px = mx = None
        if ry:
            py = y if y._node is None else y._node
            my = None if (dy.shape == oshape and dy.dtype == odtype) else (dy.shape, dy.dtype)
        else:
            py = my = None
        mask = rx | (ry << 1)
        keep = prim._kept.get(mask)
        if keep is None:
            keep = prim.kept_inputs(mask)
        if keep:
            saved = (x if 0 in keep else None, y if 1 in keep else None)
            versions = (0 if not tx else x._version if x._base is None else version(x),
                        0 if not ty else y._version if y._base is None else version(y))
        else:
            saved = versions = None
        _record(t, prim, (px, py), saved, versions, out, _EMPTY, (mx, my), backend)
    tracer = state.tracer
    if tracer is not None:
        tracer(prim, (x, y), _EMPTY, t)
    return t


SELECT = define("select", lambda xp, x, k, n: x[k],
                vjp={"x": lambda xp, ct, out, x, k, n: Multi(ct if i == k else None for i in range(n))},
                jvp={"x": lambda xp, t, out, x, k, n: t[k]}, same_shape=True)


def apply_multi(prim, args, params=None):
    """Run a multi-output primitive: a hidden tuple-valued tensor, then one ``select`` per output."""
    t0 = apply(prim, args, params)
    n = len(t0.data)
    return tuple(apply1(SELECT, t0, {"k": k, "n": n}) for k in range(n))


def _coerce(prim, args):
    """Wrap non-tensor array arguments (NumPy/CuPy/strict arrays, lists) as tensors."""
    out = []
    for a in args:
        if isinstance(a, (Tensor,) + _SCALARS):
            out.append(a)
            continue
        if getattr(a, "shape", None) == () and type(a).__module__ == "numpy" and hasattr(a, "item"):
            out.append(a.item())          # a NumPy scalar (np.float32(2.0)): a Python number, like a literal
            continue
        try:
            out.append(hooks.API.asarray(a))
        except Exception as e:
            raise TypeError(f"gradtape.{prim.name}: cannot use an argument of type {type(a).__name__} "
                            f"as an array ({e})") from e
    return tuple(out)


def _apply_forward(prim, args, params):
    """Forward mode: the primal at the outer levels, then this level's tangent from the JVP rules."""
    levels = state.levels
    level = -1
    for a in args:
        if isinstance(a, Tensor) and a.tangents:
            for lv in a.tangents:
                if lv in levels and lv > level:
                    level = lv
    if level < 0:  # stale tangents of finished jvp calls
        stale = [(a, a.tangents) for a in args if isinstance(a, Tensor) and a.tangents is not None]
        for a, _ in stale:
            a.tangents = None
        try:
            return apply(prim, args, params)
        finally:
            for a, tan in stale:
                a.tangents = tan
    T = hooks.RULES
    p = params or _EMPTY
    with scoped(levels=tuple(lv for lv in levels if lv < level)):
        out = apply(prim, args, params)
        tan = None
        for i, a in enumerate(args):
            t = a.tangents.get(level) if isinstance(a, Tensor) and a.tangents else None
            if t is None or prim.jvp[i] is None:
                continue
            if prim.broadcasting and t.ndim > a.ndim and a.ndim < out.ndim:
                # a batched tangent of a lower-rank input: put its batch axes in front of out's axes
                nb = t.ndim - a.ndim
                t = T.reshape(t, t.shape[:nb] + (1,) * (out.ndim - a.ndim) + a.shape)
            c = prim.jvp[i](T, t, out, *args, **p)
            if c is not None:
                tan = c if tan is None else tan + c
        if tan is not None and not prim.multi_output:
            nb = tan.ndim - out.ndim
            if nb < 0 or tan.shape[nb:] != out.shape:
                tan = T.broadcast_to(tan, tan.shape[:max(nb, 0)] + out.shape)
            if tan.dtype != out.dtype:
                tan = T.astype(tan, out.dtype)
    if tan is not None:
        out.tangents = dict(out.tangents or ())
        out.tangents[level] = tan
        if out._node is not None and out._node.prim.reads_out:
            out._node.out_tangents = out.tangents   # rules reading `out` under create_graph need its tangents
    return out


hooks.apply, hooks.apply1, hooks.apply2 = apply, apply1, apply2
