"""The reverse pass: an iterative walk over recorded nodes.

No recursion (a 100,000-op chain works), every check done before any
gradient is computed or written (no half-written ``.grad``), cotangents and
saved values dropped as soon as they are used, broadcasting and dtype
promotion undone in one place (:func:`_fit`).
"""
from __future__ import annotations

import contextlib
import os

from .._state import scoped, state
from . import hooks
from .dispatch import SELECT, Node, apply1, version, wrap
from .primitive import Multi
from .tensor import Tensor


_FREED = {}


# GRADTAPE_DEBUG=1 (read once at import; tests set the attribute): every cotangent is checked against its
# input's exact shape and dtype as it leaves a rule
DEBUG = os.environ.get("GRADTAPE_DEBUG", "") not in ("", "0")


def _fit(xp, g, input_meta, batch=0):
    """Bring ``g`` to the input's (shape, dtype) = ``input_meta``: sum broadcast axes away, put back unit axes a rule
    dropped, cast; ``batch`` leading batch axes stay."""
    shape, dtype = input_meta
    gs = tuple(g.shape[batch:]) if batch else g.shape
    if gs != shape:
        if len(gs) < len(shape):      # e.g. setitem: a (1, 3) value broadcast into a (3,) slot
            gs = (1,) * (len(shape) - len(gs)) + gs
            g = xp.reshape(g, tuple(g.shape[:batch]) + gs)
        lead = len(gs) - len(shape)
        axes = tuple(range(batch, batch + lead)) + tuple(
            i + batch + lead for i, n in enumerate(shape) if n == 1 and gs[i + lead] != 1)
        if axes:
            g = xp.sum(g, axis=axes, keepdims=True)
        if lead or tuple(g.shape[batch:]) != shape:
            g = xp.reshape(g, tuple(g.shape[:batch]) + tuple(shape))
    gd = g.dtype
    if gd is not dtype and gd != dtype:      # `is`: the usual case, without NumPy's slower dtype comparison
        if _complex(gd) and not _complex(dtype):
            g = xp.real(g)     # a real input's gradient is the real part (PyTorch); astype would warn or refuse
            if g.dtype == dtype:
                return g
        g = xp.astype(g, dtype)
    return g


def _complex(dtype):
    """Whether ``dtype`` is complex: NumPy/CuPy kind "c", gradtape DType kind "complex floating", or by name
    (array-api-strict's dtypes have no kind). Cheap: only dtype-changing cotangents reach it."""
    kind = getattr(dtype, "kind", None)
    return kind in ("c", "complex floating") if kind is not None else "complex" in str(dtype)


def _like(g, ct, batch):
    """(shape, dtype) of an input recorded with input_meta None (its output's, ct's): a rule that crossed backends
    (to_device) gives the input's dtype on the input's backend."""
    return tuple(ct.shape[batch:]), (ct.dtype if type(g) is type(ct) else g.dtype)


def _debug_check(n, i, g, input_meta, ct, batch):
    """DEBUG: the cotangent of input ``i`` of node ``n`` has the input's exact shape and dtype."""
    if type(g) is Multi:
        return
    shape, dtype = input_meta or _like(g, ct, batch)
    if tuple(g.shape[batch:]) != tuple(shape) or g.dtype != dtype:
        raise AssertionError(f"gradtape engine: the cotangent of input {i} of {n.prim.name!r} has shape "
                             f"{tuple(g.shape[batch:])}, dtype {g.dtype}; the input has shape {tuple(shape)}, dtype "
                             f"{dtype}")


def _collect(roots, floor=-1, stop=()):
    """All nodes reachable from the roots, newest first; nodes older than ``floor`` (a seq: the oldest
    source node, when every source is a node) are left out, as no source can lie above them, and so is
    what lies above the nodes in ``stop``."""
    seen = set()
    stack = [r for r in roots if r is not None]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in stop:
            continue
        for p in n.parents:
            if type(p) is Node and p not in seen and p.seq >= floor:
                stack.append(p)
    return sorted(seen, key=lambda n: n.seq, reverse=True)


def _prune(order, want):
    """Keep the nodes through which a source (a Node key or a leaf id of ``want``) is reached; a source node
    is kept and the walk goes on through it to the sources above (total derivatives, as PyTorch)."""
    useful = set()
    for n in reversed(order):        # oldest first: a node's parents come before it
        if n in want or any((type(p) is Node and p in useful) or (type(p) is Tensor and id(p) in want)
                            for p in n.parents):
            useful.add(n)
    return [n for n in order if n in useful], useful


def _check(order):
    """Raise before any work if the graph cannot be used (freed, or a saved input changed in place)."""
    for n in order:
        if n.params is _FREED:
            raise RuntimeError(
                f"gradtape: trying to backward through the graph a second time (node {n.prim.name!r}); "
                f"its saved values were freed by the first backward. Pass retain_graph=True to the "
                f"first backward if you need to call it twice")
        if n.saved is not None:
            for s, v in zip(n.saved, n.versions):
                if isinstance(s, Tensor) and version(s) != v:
                    raise RuntimeError(
                        f"gradtape: an input of {n.prim.name!r} (shape {tuple(s.shape)}, dtype {s.dtype}) was "
                        f"changed in place after it was recorded (version {v} -> {version(s)}), and the "
                        f"gradient needs its old value; compute the in-place update on a copy instead")


def run(roots, heads, retain_graph=False, create_graph=False, sources=None, batch=0, partial=False):
    """Back-propagate ``heads``; see :func:`_run`. While ``gt.trace`` records this thread
    (``state.tracer``), the pass runs its rules on tensors (create_graph) so that it is traced too, but records
    second-order autograd nodes only where the caller asked for create_graph (a node would hold the forward
    values it read: tracing a gradient would keep three times eager's memory)."""
    tr = state.tracer
    if tr is None:
        return _run(roots, heads, retain_graph, create_graph, sources, batch, partial)
    heads = [h if h is None or isinstance(h, Tensor) else wrap(h, r.backend) for r, h in zip(roots, heads)]
    tr.rev += 1
    try:
        return _run(roots, heads, retain_graph, True, sources, batch, partial, record=create_graph)
    finally:
        tr.rev -= 1


def _run(roots, heads, retain_graph=False, create_graph=False, sources=None, batch=0, partial=False, record=None):
    """Back-propagate ``heads`` (cotangents, one per root tensor).

    With ``sources`` (tensors), return their gradients (None where
    unreachable) and leave ``.grad`` alone: a source that is an intermediate
    gets the total cotangent arriving at it, and the walk goes on through it
    to the sources above. Otherwise accumulate into the ``.grad`` of tracked
    leaves according to their grad_req, all of them validated before any is
    written. ``batch`` > 0: the heads carry that many leading batch axes
    (many cotangents pushed in one pass, for Jacobians), and so do the
    results. ``partial``: the walk stops at source nodes (partial
    derivatives: each source's own cotangent, not what reaches the sources
    above it through it; gt.checkpoint's recomputation needs that). ``record``: whether the rules' own ops are
    recorded for autograd (default: ``create_graph``; False under a tracer that only needs them traced)."""
    T = hooks.RULES
    want = {}
    useful = None
    if sources is not None:
        for i, s in enumerate(sources):
            want.setdefault(s._node if s._node is not None else id(s), []).append(i)
        nodes = [k for k in want if type(k) is Node]
        floor = min(k.seq for k in nodes) if nodes and len(nodes) == len(want) else -1
        stop = {k for k in want if type(k) is Node} if partial else ()
        order, useful = _prune(_collect([r._node for r in roots], floor, stop), want)
    else:
        order = _collect([r._node for r in roots])
    _check(order)
    grads = {}      # Node or id(leaf) -> accumulated cotangent
    leaf = {}       # id(leaf) -> leaf tensor
    found = [None] * len(sources) if sources is not None else None
    for r, h in zip(roots, heads):
        key = r._node if r._node is not None else id(r)
        if key in grads:
            grads[key] = grads[key] + h
        else:
            grads[key] = h
        if r._node is None:
            leaf[key] = r
    debug = DEBUG
    quiet = roots[0].backend.quiet() if roots else contextlib.nullcontext()   # inf/NaN of rules are documented
    with scoped(enabled=create_graph if record is None else record), quiet:
        for n in order:
            ct = grads.pop(n, None)
            if want and n in want:   # a source: the total cotangent arriving here; the walk goes on above
                for i in want[n]:
                    found[i] = ct
                if partial:
                    continue
            if ct is not None:
                saved = n.saved
                if create_graph:
                    ns = T
                    ins = saved or (None,) * len(n.parents)
                    out = None if n.out is None else _out_tensor(n)
                else:
                    ns = n.backend.xp
                    ins = (None,) * len(n.parents) if saved is None else \
                        [s.data if type(s) is Tensor else s for s in saved]
                    out = n.out
                vjp = n.prim.vjp
                input_meta = n.input_meta
                params = n.params
                i = 0
                for p in n.parents:
                    if p is not None and (useful is None or (p in useful if type(p) is Node else id(p) in want)):
                        g = vjp[i](ns, ct, out, *ins, **params)
                        if g is not None:
                            if input_meta[i] is not None:       # see Node.input_meta: None only for elementwise rules
                                g = _fit(ns, g, input_meta[i], batch)
                                if debug:
                                    _debug_check(n, i, g, input_meta[i], ct, batch)
                            elif debug:
                                _debug_check(n, i, g, None, ct, batch)
                            if type(p) is Node:
                                key = p
                            else:
                                key = id(p)
                                leaf[key] = p
                            old = grads.get(key)
                            grads[key] = g if old is None else old + g
                    i += 1
                del ct
            if not retain_graph:
                n.saved = n.out = n.versions = None
                n.params = _FREED    # the freed mark (custom rules keep residuals in params)
    if sources is not None:
        for k, idx in want.items():
            if type(k) is int and k in grads:
                for i in idx:
                    found[i] = grads[k]
        got = [None if g is None else (g if isinstance(g, Tensor) else wrap(g, s.backend))
               for g, s in zip(found, sources)]
        if debug:
            for g, s in zip(got, sources):
                if g is not None and s.data is not None:
                    _debug_check_leaf(g, s, batch)
        return got
    _write(leaf, grads, create_graph, debug)
    return None


def _debug_check_leaf(g, t, batch):
    """DEBUG: a source's or leaf's gradient has its exact shape and dtype."""
    if tuple(g.shape[batch:]) != tuple(t.shape) or g.data.dtype != t.data.dtype:
        raise AssertionError(f"gradtape engine: the gradient of a leaf of shape {t.shape}, dtype {t.dtype} has "
                             f"shape {tuple(g.shape[batch:])}, dtype {g.dtype}")


def _write(leaf, grads, create_graph, debug):
    """Accumulate into the leaves' ``.grad``: compute and check every new value first, then write them all,
    so an error leaves every ``.grad`` as it was."""
    T = hooks.RULES
    new = []
    for k, t in leaf.items():
        req = t._grad_req
        if req is None:
            continue
        g = grads[k]
        if not isinstance(g, Tensor):
            g = wrap(g, t.backend)
        if debug:
            _debug_check_leaf(g, t, 0)
        if t.dtype.kind == "complex floating":     # the rules' (JAX's) convention -> PyTorch's, as gt.grad's
            g = T.conj(g) if create_graph else wrap(t.backend.xp.conj(g.data), t.backend)
        old = t._grad
        if req == "add" and old is not None:
            if old.backend is not t.backend:
                raise TypeError(f"gradtape.backward: the .grad of a leaf of shape {t.shape} is on {old.device!r} "
                                f"but the leaf is on {t.device!r}; no .grad was changed")
            if tuple(old.data.shape) != tuple(t.data.shape):
                raise ValueError(f"gradtape.backward: the .grad of a leaf has shape {old.shape} but the leaf has "
                                 f"shape {t.shape}; no .grad was changed (set .grad = None first)")
            g = old + g if create_graph else wrap(old.data + g.data, t.backend)
        if g.data.dtype != t.data.dtype:    # gradients have their variable's dtype
            g = T.astype(g, t.dtype) if create_graph else wrap(t.backend.xp.astype(g.data, t.data.dtype), t.backend)
        new.append((t, g))
    for t, g in new:
        old = t._grad
        if (t._grad_req == "write" and old is not None and not create_graph and old.backend is t.backend
                and old.data.shape == g.data.shape and old.data.dtype == g.data.dtype):
            old.data = g.data          # MXNet: the buffer attach_grad made is updated
            old._version += 1
        else:
            t._grad = g


def _out_tensor(n):
    """The output of node ``n`` as a tracked tensor (for rules that read ``out`` under create_graph)."""
    if n.prim.multi_output:
        t = wrap(n.out, n.backend)
        t._node = n
        t._requires_grad = True
        t.tangents = getattr(n, "out_tangents", None)
        return tuple(apply1(SELECT, t, {"k": k, "n": len(n.out)}) for k in range(len(n.out)))
    t = wrap(n.out, n.backend)
    t._node = n
    t._requires_grad = True
    t.tangents = getattr(n, "out_tangents", None)
    return t
