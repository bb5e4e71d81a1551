"""Tensor, recording state, primitives and the per-op dispatch (``apply``).

Hot path: every differentiable op goes through :func:`apply`, so it is kept
flat. A graph node (:class:`Node`) references its parents' nodes (or leaf
tensors), never the intermediate tensors themselves, so an intermediate's
data is freed as soon as nothing but the graph would hold it and no rule
saved it.
"""
from __future__ import annotations

import itertools
import os
import threading

from . import backends as _backends

__all__ = ["Tensor", "Primitive", "Node", "state", "apply"]


class _State(threading.local):
    enabled = True          # grad mode; pause()/no_grad() switch it off
    recording = 0           # depth of record()/GradientTape scopes (is_recording)
    train = False           # MXNet train_mode (Dropout)
    levels = ()             # active forward-mode (jvp) levels, increasing ints
    nb = 0                  # leading batch axes of the cotangents in the running reverse pass
    abs_sub = 0.0           # subgradient of abs at 0
    relu_sub = 0.0          # subgradient of relu at 0
    device = None           # per-thread default device override
    tracer = None           # gt.trace's recorder while it runs on this thread (reverse passes are recorded)


state = _State()
_global_device = [os.environ.get("GRADTAPE_DEVICE", "cpu")]
# called as TRACE(prim_or_name, args, params, out) for every op. Only a gate: None unless some thread runs
# gradtape.trace, else a function handing the op to the calling thread's own tracer (state.tracer); see
# gradtape._graph_trace. The tracer itself is per thread.
TRACE = None
_seq = itertools.count()
_SCALARS = (bool, int, float, complex)
_EXACT = frozenset(_SCALARS)


class Node:
    """One recorded application of a primitive.

    parents[i] is the input's Node, the input tensor itself when it is a
    tracked leaf, or None for a constant. ``saved`` holds only the inputs the
    VJP rules need (as tensors, with their versions in ``vers``), ``out`` the
    output's array when a rule needs it. ``meta[i]`` is (shape, dtype) of
    input i, from which the engine brings every cotangent to its input's
    exact shape and dtype (broadcasting and promotion undone in one place);
    it is None only where the rule is known to return that already: an
    elementwise primitive (``same``, or ``bcast`` with the input of the
    output's shape and dtype). Any other rule may return another shape
    (vecdot's vector, setitem's written region)."""

    __slots__ = ("prim", "parents", "saved", "vers", "out", "params", "meta",
                 "seq", "bk", "out_tan", "__weakref__")


class Primitive:
    """A differentiable operation: forward, per-input VJP and JVP rules.

    ``fwd(xp, *xs, **params)`` computes on raw backend arrays. ``vjp[i](xp,
    ct, out, *xs, **params)`` gives the cotangent of input i (output-shaped
    is fine: the engine sums broadcast axes away), ``jvp[i](xp, t, out, *xs,
    **params)`` the output tangent contributed by input i's tangent ``t``. In
    rules ``xp`` is the backend namespace on raw arrays for first-order
    derivatives, or gradtape itself on tensors when the derivative is being
    recorded (create_graph, nested transforms): higher order comes free.
    ``save[i]`` names what rule i reads: input indices and/or "out"."""

    __slots__ = ("name", "fwd", "vjp", "jvp", "save", "save_out", "_need", "save1", "same", "multi", "view",
                 "bcast")

    def __init__(self, name, fwd, vjp, jvp, save, same=False, multi=False, view=False):
        self.name = name
        self.fwd = fwd
        self.vjp = tuple(vjp)
        self.jvp = tuple(jvp)
        self.save = tuple(save)
        self.save_out = any("out" in s for s in self.save)
        self.save1 = len(self.save) == 1 and 0 in self.save[0]
        self.same = same          # output has the input's shape and dtype (elementwise unary)
        self.multi = multi        # fwd returns a tuple; cotangents/tangents are Multi tuples (None = zero)
        self.view = view          # the output may share the input's memory (reshape, transpose, basic index)
        self.bcast = False        # elementwise with broadcasting: batched tangents get aligned first
        # _need[mask] = input indices to keep when the inputs in mask are tracked
        self._need = {}

    def need(self, mask):
        got = self._need.get(mask)
        if got is None:
            got = set()
            for i, s in enumerate(self.save):
                if mask >> i & 1:
                    got.update(j for j in s if j != "out")
            got = self._need[mask] = tuple(sorted(got))
        return got

    def __repr__(self):
        return f"<primitive {self.name}>"


def _device_error(name, tensors):
    descr = ", ".join(f"{t._bk.device!r} ({t._bk.name}, shape {tuple(t.data.shape)})" for t in tensors)
    return TypeError(f"gradtape.{name}: inputs live on different backends or devices: {descr}; "
                     f"move them to one device with .to_device(...) first")


def apply(prim, args, params=None):
    """Run primitive ``prim`` on ``args`` (tensors or Python scalars); record it if needed."""
    bk = None
    rg = False
    fw = False
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
        if bk is None:
            bk = a._bk
        elif a._bk is not bk:
            raise _device_error(prim.name, [t for t in args if isinstance(t, Tensor)])
        datas.append(a.data)
        if a._rg:
            rg = True
        if a._tan is not None:
            fw = True
    if bk is None:
        from ._namespace import asarray
        return apply(prim, (asarray(args[0]),) + tuple(args[1:]), params)
    if fw and state.levels:
        return _apply_fwd(prim, args, params)
    if params is None:
        params = _EMPTY
    out = prim.fwd(bk.xp, *datas, **params)
    t = Tensor.__new__(Tensor)
    t.data = out
    t._bk = bk
    t._grad = None
    t._req = None
    t._version = 0
    t._tan = None
    t._base = args[0] if prim.view else None      # a view shares its base's version counter, tracked or not
    if not (rg and state.enabled):
        t._node = None
        t._rg = False
        if TRACE is not None:
            TRACE(prim, args, params, t)
        return t
    # record
    node = Node()
    parents = []
    mask = 0
    meta = []
    oshape = None if prim.multi else out.shape
    odtype = None if prim.multi else out.dtype
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._rg and prim.vjp[i] is not None:
            parents.append(a._node if a._node is not None else a)
            mask |= 1 << i
            d = a.data
            meta.append(None if (prim.same or (prim.bcast and d.shape == oshape and d.dtype == odtype))
                        else (d.shape, d.dtype))
        else:
            parents.append(None)
            meta.append(None)
    if not mask:
        t._node = None
        t._rg = False
        if TRACE is not None:
            TRACE(prim, args, params, t)
        return t
    need = prim._need.get(mask)
    if need is None:
        need = prim.need(mask)
    if need:
        node.saved = tuple(args[j] if j in need else None for j in range(len(args)))
        node.vers = tuple(version(a) if isinstance(a, Tensor) else 0 for a in node.saved)
    else:
        node.saved = None
        node.vers = None
    node.prim = prim
    node.parents = tuple(parents)
    node.out = out if prim.save_out else None
    node.params = params
    node.meta = tuple(meta)
    node.seq = next(_seq)
    node.bk = bk
    t._node = node
    t._rg = True
    if TRACE is not None:
        TRACE(prim, args, params, t)
    return t


_EMPTY = {}
_new = object.__new__


def version(t):
    """A tensor's version, counting in-place updates of the tensors it is a view of."""
    v = t._version
    b = t._base
    while b is not None:
        v += b._version
        b = b._base
    return v


def apply1(prim, x, params=_EMPTY):
    """:func:`apply` for one-input primitives (the hot path: no loops, no lists)."""
    if type(x) is not Tensor or (x._tan is not None and state.levels):
        return apply(prim, (x,), params)
    bk = x._bk
    d = x.data
    out = prim.fwd(bk.xp, d, **params)
    t = _new(Tensor)
    t.data = out
    t._bk = bk
    t._grad = None
    t._req = None
    t._version = 0
    t._tan = None
    t._base = x if prim.view else None     # shares x's memory: an in-place update of x invalidates what saved t
    if not x._rg or not state.enabled:
        t._node = None
        t._rg = False
        if TRACE is not None:
            TRACE(prim, (x,), params, t)
        return t
    n = _new(Node)
    n.prim = prim
    n.parents = (x if x._node is None else x._node,)
    if prim.save1:
        n.saved = (x,)
        n.vers = (x._version if x._base is None else version(x),)
    else:
        n.saved = n.vers = None
    n.out = out if prim.save_out else None
    n.params = params
    n.meta = _NOMETA1 if prim.same else ((d.shape, d.dtype),)
    n.seq = next(_seq)
    n.bk = bk
    t._node = n
    t._rg = True
    if TRACE is not None:
        TRACE(prim, (x,), params, t)
    return t


_NOMETA1 = (None,)


def apply2(prim, x, y):
    """:func:`apply` for two-input primitives without parameters (binary operators)."""
    tx = type(x) is Tensor
    ty = type(y) is Tensor
    if tx and ty:
        bk = x._bk
        if y._bk is not bk or x._tan is not None or y._tan is not None:
            return apply(prim, (x, y))
        rx, ry = x._rg, y._rg
        dx, dy = x.data, y.data
    elif tx and type(y) in _FAST_SCALARS:
        bk = x._bk
        if x._tan is not None:
            return apply(prim, (x, y))
        rx, ry = x._rg, False
        dx, dy = x.data, y
    elif ty and type(x) in _FAST_SCALARS:
        bk = y._bk
        if y._tan is not None:
            return apply(prim, (x, y))
        rx, ry = False, y._rg
        dx, dy = x, y.data
    else:
        return apply(prim, (x, y))
    out = prim.fwd(bk.xp, dx, dy)
    t = _new(Tensor)
    t.data = out
    t._bk = bk
    t._grad = None
    t._req = None
    t._version = 0
    t._tan = None
    t._base = None
    if not (rx or ry) or not state.enabled:
        t._node = None
        t._rg = False
        if TRACE is not None:
            TRACE(prim, (x, y), _EMPTY, t)
        return t
    n = _new(Node)
    n.prim = prim
    oshape = out.shape          # binary operators: elementwise (bcast) primitives only, see Node.meta
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
    n.parents = (px, py)
    n.meta = (mx, my)
    need = prim._need.get(rx | (ry << 1))
    if need is None:
        need = prim.need(rx | (ry << 1))
    if need:
        n.saved = (x if 0 in need else None, y if 1 in need else None)
        n.vers = (0 if not tx else x._version if x._base is None else version(x),
                  0 if not ty else y._version if y._base is None else version(y))
    else:
        n.saved = n.vers = None
    n.out = out if prim.save_out else None
    n.params = _EMPTY
    n.seq = next(_seq)
    n.bk = bk
    t._node = n
    t._rg = True
    if TRACE is not None:
        TRACE(prim, (x, y), _EMPTY, t)
    return t


_FAST_SCALARS = (int, float)


class Multi(tuple):
    """Cotangents or tangents of a multi-output primitive; None stands for zero, + adds elementwise."""

    __slots__ = ()

    def __add__(self, other):
        return Multi(a if b is None else b if a is None else a + b for a, b in zip(self, other))


def _select_fwd(xp, x, k, n):
    return x[k]


_SELECT = Primitive("select", _select_fwd,
                    [lambda xp, ct, out, x, k, n: Multi(ct if i == k else None for i in range(n))],
                    [lambda xp, t, out, x, k, n: t[k]], [()], same=True)


def apply_multi(prim, args, params=None):
    """Run a multi-output primitive: a hidden tuple-valued tensor, then one ``select`` per output."""
    t0 = apply(prim, args, params)
    n = len(t0.data)
    return tuple(apply1(_SELECT, t0, {"k": k, "n": n}) for k in range(n))


def _coerce(prim, args):
    """Wrap non-tensor array arguments (NumPy/CuPy/strict arrays, lists) as tensors."""
    from ._namespace import asarray
    out = []
    for a in args:
        if isinstance(a, (Tensor,) + _SCALARS):
            out.append(a)
            continue
        if getattr(a, "shape", None) == () and type(a).__module__ == "numpy" and hasattr(a, "item"):
            out.append(a.item())          # a NumPy scalar (np.float32(2.0)): a Python number, like a literal
            continue
        try:
            out.append(asarray(a))
        except Exception as e:
            raise TypeError(f"gradtape.{prim.name}: cannot use an argument of type {type(a).__name__} "
                            f"as an array ({e})") from e
    return tuple(out)


def _apply_fwd(prim, args, params):
    """Forward mode: the primal at the outer levels, then this level's tangent from the JVP rules."""
    levels = state.levels
    L = -1
    for a in args:
        if isinstance(a, Tensor) and a._tan:
            for lv in a._tan:
                if lv in levels and lv > L:
                    L = lv
    if L < 0:  # stale tangents of finished jvp calls
        saved = [(a, a._tan) for a in args if isinstance(a, Tensor) and a._tan is not None]
        for a, _ in saved:
            a._tan = None
        try:
            return apply(prim, args, params)
        finally:
            for a, tan in saved:
                a._tan = tan
    from ._namespace import T  # tensor-level namespace for rules
    p = params or _EMPTY
    state.levels = tuple(lv for lv in levels if lv < L)
    try:
        out = apply(prim, args, params)
        tan = None
        for i, a in enumerate(args):
            t = a._tan.get(L) if isinstance(a, Tensor) and a._tan else None
            if t is None or prim.jvp[i] is None:
                continue
            if prim.bcast and t.ndim > a.ndim and a.ndim < out.ndim:
                # a batched tangent of a lower-rank input: put its batch axes in front of out's axes
                nb = t.ndim - a.ndim
                t = T.reshape(t, t.shape[:nb] + (1,) * (out.ndim - a.ndim) + a.shape)
            c = prim.jvp[i](T, t, out, *args, **p)
            if c is not None:
                tan = c if tan is None else tan + c
        if tan is not None and not prim.multi:
            nb = tan.ndim - out.ndim
            if nb < 0 or tan.shape[nb:] != out.shape:
                tan = T.broadcast_to(tan, tan.shape[:max(nb, 0)] + out.shape)
            if tan.dtype != out.dtype:
                tan = T.astype(tan, out.dtype)
    finally:
        state.levels = levels
    if tan is not None:
        out._tan = dict(out._tan or ())
        out._tan[L] = tan
        if out._node is not None and out._node.prim.save_out:
            out._node.out_tan = out._tan   # rules that read `out` under create_graph need its tangents too
    return out


def default_device():
    return state.device or _global_device[0]


def wrap(data, bk=None):
    """A fresh untracked Tensor around a raw backend array."""
    t = Tensor.__new__(Tensor)
    t.data = data
    t._bk = bk if bk is not None else _backends.backend_of(data)
    t._node = None
    t._rg = False
    t._grad = None
    t._req = None
    t._version = 0
    t._tan = None
    t._base = None
    return t


class Tensor:
    """An array of some backend (``.data``) that records the operations on it.

    ``gt.Tensor`` implements the array API array object; create one with
    :func:`gradtape.asarray`.

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0, 2.0])
    >>> x.requires_grad_()
    Tensor([1., 2.], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    Tensor([2., 4.])
    """

    __slots__ = ("data", "_bk", "_node", "_rg", "_grad", "_req", "_version", "_tan", "_base", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __init__(self, obj, dtype=None, device=None, copy=None):
        from ._namespace import asarray
        src = asarray(obj, dtype=dtype, device=device, copy=copy)
        for s in Tensor.__slots__[:-1]:
            setattr(self, s, getattr(src, s))
