"""The reverse pass: an iterative walk over recorded nodes.

No recursion (a 100,000-op chain works), every check done before any
gradient is computed or written (no half-written ``.grad``), cotangents and
saved values dropped as soon as they are used, broadcasting and dtype
promotion undone in one place (:func:`_fit`).
"""
from __future__ import annotations

from ._core import Node, Tensor, state, version, wrap


_FREED = {}


def _fit(xp, g, meta, nb=0):
    """Sum broadcast axes of ``g`` away and cast it to the input's (shape, dtype); nb leading batch axes stay."""
    shape, dtype = meta
    if g.shape[nb:] != shape:
        lead = g.ndim - nb - len(shape)
        axes = tuple(range(nb, nb + lead)) + tuple(
            i + nb + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + nb + lead] != 1)
        if axes:
            g = xp.sum(g, axis=axes, keepdims=True)
        if lead or g.shape[nb:] != shape:
            g = xp.reshape(g, tuple(g.shape[:nb]) + tuple(shape))
    if g.dtype != dtype:
        g = xp.astype(g, dtype)
    return g


def _collect(roots, stop=()):
    """All nodes reachable from the roots (not beyond ``stop``), newest first."""
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
            if type(p) is Node and p not in seen:
                stack.append(p)
    return sorted(seen, key=lambda n: n.seq, reverse=True)


def _prune(order, stop, leaves):
    """Keep the nodes through which a source (a node in ``stop`` or a leaf id in ``leaves``) is reached."""
    useful = set()
    for n in reversed(order):
        if n in stop or any((type(p) is Node and p in useful) or (type(p) is Tensor and id(p) in leaves)
                            for p in n.parents):
            useful.add(n)
    return [n for n in order if n in useful], useful


def _check(order):
    """Raise before any work if the graph cannot be used (freed, or a saved input changed in place)."""
    for n in order:
        if n.seq < 0:
            raise RuntimeError(
                f"gradtape: trying to backward through the graph a second time (node {n.prim.name!r}); "
                f"its saved values were freed by the first backward. Pass retain_graph=True to the "
                f"first backward if you need to call it twice")
        if n.saved is not None:
            for s, v in zip(n.saved, n.vers):
                if isinstance(s, Tensor) and version(s) != v:
                    raise RuntimeError(
                        f"gradtape: an input of {n.prim.name!r} (shape {tuple(s.shape)}, dtype {s.dtype}) was "
                        f"changed in place after it was recorded (version {v} -> {version(s)}), and the "
                        f"gradient needs its old value; compute the in-place update on a copy instead")


def run(roots, heads, retain_graph=False, create_graph=False, sources=None, batch=0):
    """Back-propagate ``heads``; see :func:`_run`. While ``gt.trace`` records this thread
    (``state.tracer``), the pass runs its rules on tensors (create_graph) so that it is traced too."""
    tr = state.tracer
    if tr is None:
        return _run(roots, heads, retain_graph, create_graph, sources, batch)
    heads = [h if h is None or isinstance(h, Tensor) else wrap(h, r._bk) for r, h in zip(roots, heads)]
    tr.rev += 1
    try:
        return _run(roots, heads, retain_graph, True, sources, batch)
    finally:
        tr.rev -= 1


def _run(roots, heads, retain_graph=False, create_graph=False, sources=None, batch=0):
    """Back-propagate ``heads`` (cotangents, one per root tensor).

    With ``sources`` (tensors), return their gradients (None where
    unreachable) and leave ``.grad`` alone; otherwise accumulate into the
    ``.grad`` of tracked leaves according to their grad_req. ``batch`` > 0:
    the heads carry that many leading batch axes (many cotangents pushed in
    one pass, for Jacobians), and so do the results."""
    from ._namespace import T
    want = {}
    useful = None
    if sources is not None:
        for i, s in enumerate(sources):
            want.setdefault(s._node if s._node is not None else id(s), []).append(i)
        stop = {k for k in want if type(k) is Node}
        order, useful = _prune(_collect([r._node for r in roots], stop), stop, {k for k in want if type(k) is int})
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
    prev, prev_nb = state.enabled, state.nb
    state.enabled = create_graph
    state.nb = batch
    try:
        for n in order:
            ct = grads.pop(n, None)
            if want and n in want:
                for i in want[n]:
                    found[i] = ct
                continue             # a source: its gradient is the answer, nothing above it is needed
            if ct is not None:
                saved = n.saved
                if create_graph:
                    ns = T
                    ins = saved or (None,) * len(n.parents)
                    out = None if n.out is None else _out_tensor(n)
                else:
                    ns = n.bk.xp
                    ins = (None,) * len(n.parents) if saved is None else \
                        [s.data if type(s) is Tensor else s for s in saved]
                    out = n.out
                vjp = n.prim.vjp
                meta = n.meta
                params = n.params
                i = 0
                for p in n.parents:
                    if p is not None and (useful is None or (p in useful if type(p) is Node else id(p) in want)):
                        g = vjp[i](ns, ct, out, *ins, **params)
                        if g is not None:
                            if meta[i] is not None:
                                g = _fit(ns, g, meta[i], batch)
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
                n.saved = n.out = n.vers = None
                n.params = _FREED    # custom rules keep residuals there
                n.seq = -1          # freed
    finally:
        state.enabled, state.nb = prev, prev_nb
    if sources is not None:
        for k, idx in want.items():
            if type(k) is int and k in grads:
                for i in idx:
                    found[i] = grads[k]
        return [None if g is None else (g if isinstance(g, Tensor) else wrap(g, s._bk))
                for g, s in zip(found, sources)]
    for k, t in leaf.items():
        g = grads[k]
        if not isinstance(g, Tensor):
            g = wrap(g, t._bk)
        if t._req == "add" and t.grad is not None:
            g = t.grad + g if create_graph else wrap(t.grad.data + g.data, t._bk)
        if t._req == "write" and t.grad is not None and not create_graph:
            t.grad.data = g.data          # MXNet: the buffer attach_grad made is updated
            t.grad._version += 1
        elif t._req is not None:
            t.grad = g
    return None


def _out_tensor(n):
    """The output of node ``n`` as a tracked tensor (for rules that read ``out`` under create_graph)."""
    if n.prim.multi:
        from ._core import _SELECT, apply1
        t = wrap(n.out, n.bk)
        t._node = n
        t._rg = True
        t._tan = getattr(n, "out_tan", None)
        return tuple(apply1(_SELECT, t, {"k": k, "n": len(n.out)}) for k in range(len(n.out)))
    t = wrap(n.out, n.bk)
    t._node = n
    t._rg = True
    t._tan = getattr(n, "out_tan", None)
    return t
