"""``checkpoint``: a block whose intermediates are recomputed in the backward pass instead of being kept,
and the replay of its random draws (:func:`random_stream`, asked by ``gt.nn``'s generators).
"""
from __future__ import annotations

import contextlib
import threading

from .. import _tree
from .._core import engine as _engine
from .._core.dispatch import SELECT, Node, _record, _seq, apply1, wrap
from .._core.primitive import define
from .._core.tensor import Tensor
from .._state import scoped, state

__all__ = ["checkpoint", "random_stream"]


class _Streams(threading.local):
    hook = None             # set while a checkpointed block runs: notes (forward) or replays (recomputation) draws


_streams = _Streams()


def random_stream(gen, device, g):
    """The random stream that generator ``gen`` draws from on ``device`` (normally its own ``g``).

    ``gt.nn.Generator`` asks here before every draw, so that a checkpointed
    block's recomputation draws the same numbers (Dropout masks) as its forward
    pass did, as ``torch.utils.checkpoint`` replays the RNG state."""
    h = _streams.hook
    return g if h is None else h(gen, device, g)


class _Tape:
    """A stream that cannot be copied: its draws are kept for the recomputation (costs their memory)."""

    def __init__(self, g):
        self._g, self.draws = g, []

    def __getattr__(self, name):
        fn = getattr(self._g, name)

        def draw(*a, **k):
            out = fn(*a, **k)
            self.draws.append(out)
            return out
        return draw


class _Replay:
    def __init__(self, draws):
        self._it = iter(draws)

    def __getattr__(self, name):
        return lambda *a, **k: next(self._it)


class _RandomLog:
    """Where each random stream a block drew from stood when it began, to replay it in the recomputation."""

    def __init__(self):
        self.start = {}         # (id(gen), device) -> (gen, snapshot or None, _Tape or None)

    def note(self, gen, device, g):
        key = (id(gen), device)
        got = self.start.get(key)
        if got is not None:
            return got[2] if got[2] is not None else g
        snap = getattr(g, "snapshot", None)
        if snap is not None:
            self.start[key] = (gen, snap(), None)
            return g
        tape = _Tape(g)
        self.start[key] = (gen, None, tape)
        return tape

    def replayer(self):
        live = {}

        def replay(gen, device, g):
            key = (id(gen), device)
            got = self.start.get(key)
            if got is None:         # a stream the forward pass never used
                return g
            if key not in live:
                live[key] = got[1].snapshot() if got[1] is not None else _Replay(got[2].draws)
            return live[key]
        return replay


@contextlib.contextmanager
def _stream_hook(fn):
    prev = _streams.hook
    _streams.hook = fn if prev is None else (lambda gen, device, g: fn(gen, device, prev(gen, device, g)))
    try:
        yield
    finally:
        _streams.hook = prev


def _block_inputs(outs, start):
    """The tracked tensors from outside a block that its outputs were computed from, as {key: (parent,
    (shape, dtype))}: graph nodes made before ``start`` (key and parent: the node) and tracked leaves (key: id,
    parent: the leaf). A node's output shape comes from its consumers' records (meta None: the consumer's)."""
    known, ext, stack = {}, {}, []
    for o in outs:
        n, like = o._node, (tuple(o.data.shape), o.data.dtype)
        if n is None or n.seq < start:          # an output the block passed through unchanged
            ext.setdefault(n if n is not None else id(o), (n if n is not None else o, like))
        elif n not in known:
            known[n] = like
            stack.append(n)
    while stack:
        n = stack.pop()
        for p, m in zip(n.parents, n.input_meta):
            if p is None:
                continue
            like = m if m is not None else known[n]
            if type(p) is not Node:
                ext.setdefault(id(p), (p, (tuple(p.data.shape), p.data.dtype)))
            elif p.seq < start:
                ext.setdefault(p, (p, like))
            elif p not in known:
                known[p] = like
                stack.append(p)
    return ext


def _output_of(n):
    """A stand-in tensor for the output of node ``n`` (a source of the recomputation's backward pass)."""
    t = wrap(None, n.backend)
    t._node, t._requires_grad = n, True
    return t


def checkpoint(f):
    """``f`` whose intermediates are recomputed in the backward pass instead of being kept.

    As ``torch.utils.checkpoint``: every tracked tensor the block reads, its
    arguments and those it closes over (a module's parameters), gets its
    gradient; random draws (Dropout masks) are replayed in the recomputation,
    and so are the training and subgradient modes. Higher order works too.

    >>> import gradtape as gt
    >>> block = gt.checkpoint(lambda x: gt.tanh(gt.tanh(x) * 2.0))
    >>> gt.grad(lambda x: gt.sum(block(x)))(gt.asarray([0.0]))
    Tensor([2.])
    >>> w = gt.asarray([3.0]).requires_grad_()
    >>> gt.sum(gt.checkpoint(lambda x: x * w)(gt.asarray([2.0]))).backward(); w.grad
    Tensor([2.])
    """
    name = f"checkpoint({getattr(f, '__name__', 'f')})"

    def cf(*args):
        if not state.enabled or state.levels or state.tracer is not None:
            return f(*args)     # nothing to save (or forward mode, or a trace that must see the ops): just run
        log = _RandomLog()
        modes = {"train": state.train, "abs_sub": state.abs_sub, "relu_sub": state.relu_sub}
        start = next(_seq)
        with _stream_hook(log.note):
            res = f(*args)      # recorded, to learn which tracked tensors it reads; the graph is dropped below
        multi = not isinstance(res, Tensor)      # a pytree of tensors: its leaves are the node's outputs
        outs, ospec = _tree.tree_flatten(res) if multi else ([res], None)
        if not outs or not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(f"gradtape.{name}: the block must return a Tensor or a pytree (tuple, list, dict...) of "
                            f"tensors, got {', '.join(type(o).__name__ for o in outs) or type(res).__name__}")
        tracked = [o for o in outs if o._requires_grad]
        if not tracked:
            return res
        shapes = [tuple(o.shape) for o in outs]
        ext = _block_inputs(tracked, start)
        del tracked
        keys = list(ext)
        srcs = [ext[k][0] if type(k) is not Node else _output_of(k) for k in keys]

        def recompute(cts):
            create = state.enabled
            revive = [p for k, (p, _) in ext.items() if type(k) is not Node and not p._requires_grad]
            for p in revive:        # a leaf tracked only while the forward ran (a tape's watch): tracked again
                p._requires_grad = True
            try:
                with _stream_hook(log.replayer()), scoped(enabled=True, **modes):
                    res2 = f(*args)     # with the forward pass's training and subgradient modes
            finally:
                for p in revive:
                    p._requires_grad = False
            outs2 = _tree.tree_leaves(res2) if multi else [res2]
            roots, heads, batch = [], [], 0
            for o, c, shape in zip(outs2, cts, shapes):
                if c is None or not isinstance(o, Tensor) or not o._requires_grad:
                    continue
                roots.append(o)
                batch = len(c.shape) - len(shape)        # leading batch axes of a batched pass
                heads.append((c if isinstance(c, Tensor) else wrap(c, o.backend)) if create else
                             (c.data if isinstance(c, Tensor) else c))
            if not roots:
                return [None] * len(keys)
            # partial: the pass stops at the block's inputs; the outer pass carries on from there
            return _engine.run(roots, heads, retain_graph=create, create_graph=create, sources=srcs,
                               batch=batch, partial=True)     # the recomputed graph is freed as it goes
        got = _attach(name, multi, outs, [ext[k] for k in keys], recompute)
        return _tree.unflatten(ospec, got) if multi else got
    cf.__name__ = name
    cf.__wrapped__ = f
    return cf


def _attach(name, multi, outs, ins, recompute):
    """Fresh outputs over one node whose parents and their (shape, dtype) are ``ins`` and whose VJP is
    ``recompute`` (run once per cotangent): one tensor, or (``multi``) a list of them."""

    def input_vjp(i):
        def vjp(xp, ct, out, *xs, memo, recompute):    # in the node's params: freed with the node
            if memo[0] is not ct:
                memo[0] = ct
                memo[1] = recompute(tuple(ct) if multi else (ct,))
            g, memo[1][i] = memo[1][i], None     # handed over once: not kept alive by the node
            if g is None:
                return None
            return g if state.enabled else g.data
        return vjp
    inputs = tuple(f"x{i}" for i in range(len(ins)))
    prim = define(f"custom:{name}", lambda xp, *xs: None, inputs=inputs,
                  vjp={n: input_vjp(i) for i, n in enumerate(inputs)}, multi_output=multi, register=False)
    params = {"memo": [None, None], "recompute": recompute}   # holds the inputs until the node is used
    parents = tuple(p for p, _ in ins)
    meta = tuple(like for _, like in ins)
    backend = outs[0].backend
    data = tuple(o.data for o in outs) if multi else outs[0].data
    t = _record(wrap(data, backend), prim, parents, None, None, None, params, meta, backend)
    if not multi:
        return t
    return [apply1(SELECT, t, {"k": j, "n": len(outs)}) for j in range(len(outs))]
