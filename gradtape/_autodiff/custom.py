"""Custom derivative rules (JAX's ``custom_vjp``/``custom_jvp`` pattern) and ``checkpoint``.

A call of a decorated function with tracked inputs becomes one graph node
whose reverse rule is the user's. Rules are written with gradtape's own ops,
so when a backward pass is itself recorded (create_graph, ``grad(grad(f))``)
the user's rule is differentiated like any other code: higher order works.
"""
from __future__ import annotations

import contextlib
import functools
import threading

from .._core import engine as _engine
from .._core.dispatch import SELECT as _SELECT, Node, _seq, apply, apply1, apply_multi, wrap
from .._core.primitive import define
from .._core.tensor import Tensor
from .._state import state

__all__ = ["custom_vjp", "custom_jvp", "checkpoint", "random_stream"]


def _tracked(args):
    return any(isinstance(a, Tensor) and a._requires_grad for a in args)


def _tangents_active(args):
    return bool(state.levels) and any(isinstance(a, Tensor) and a.tangents and any(lv in state.levels for lv in a.tangents)
                                      for a in args)


def _as_tensor(v, bk):
    return v if isinstance(v, Tensor) else wrap(v, bk)


def _kind(owner):
    return type(owner).__name__


def _positions(owner, n):
    """Where the n differentiated arguments stand among the primal function's arguments."""
    skip = set(getattr(owner, "nondiff_argnums", ()))
    return [i for i in range(n + len(skip)) if i not in skip][:n]


def _check_ct(owner, i, g, want, ct):
    """The cotangent a user's rule gave input i has that input's shape (after the batch axes) and dtype (as JAX)."""
    shape, dtype, pos = want
    lead = tuple(getattr(ct, "shape", ())[:state.nb])
    ok_shape, ok_dtype = tuple(g.shape) == lead + shape, g.dtype == dtype
    if ok_shape and ok_dtype:
        return
    msg = (f"gradtape.{_kind(owner)} {owner.__name__}: the bwd rule must produce an output with the same "
           f"shape/dtypes as the args tuple of the primal function: for argument {pos} it produced shape "
           f"{tuple(g.shape)} dtype {g.dtype}, expected shape {lead + shape} dtype {dtype}")
    raise (ValueError if not ok_shape else TypeError)(msg)


def _node(owner, args, out, rule):
    """Record ``out`` (computed already) as the result of one node over ``args`` whose VJP is ``rule``.

    ``rule(ct_tensors) -> tuple of input cotangents (tensors or None)`` is called once per cotangent."""
    multi = isinstance(out, (tuple, list))
    outs = tuple(out) if multi else (out,)
    bk = next(a.backend for a in args if isinstance(a, Tensor))
    key = (len(args), multi)
    prim = owner._prims.get(key)
    if prim is None:
        def vjp_i(i):
            def f(xp, ct, out_, *xs, data, memo, rule, bk, like, ins):
                if memo[0] is not ct:
                    cts = ct if multi else (ct,)
                    cts = tuple(None if c is None else _as_tensor(c, bk) for c in cts)
                    if multi:       # outputs that got no cotangent: zeros
                        c0 = next(c for c in cts if c is not None)
                        lead = tuple(c0.shape[:state.nb])
                        cts = tuple(wrap(bk.xp.zeros(lead + sh, dtype=dt), bk) if c is None else c
                                    for c, (sh, dt) in zip(cts, like))
                    got = rule(cts if multi else cts[0])
                    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
                    if len(got) != len(xs):
                        raise ValueError(f"gradtape.{_kind(owner)} {owner.__name__}: the bwd rule must produce an "
                                         f"output with the same shape/dtypes as the args tuple of the primal "
                                         f"function: the VJP rule returned {len(got)} cotangents for {len(xs)} inputs")
                    memo[0], memo[1] = ct, got
                g = memo[1][i]
                if g is None:
                    return None
                if not isinstance(g, Tensor):
                    raise TypeError(f"gradtape.{owner.__name__}: the VJP rule must return tensors (or None), got "
                                    f"{type(g).__name__} for input {i}")
                _check_ct(owner, i, g, ins[i], ct if not multi else next(c for c in ct if c is not None))
                return g if state.enabled else g.data
            return f
        prim = _one_off(f"custom:{owner.__name__}",
                        (lambda xp, *xs, data, memo, rule, bk, like, ins: tuple(data)) if multi else
                        (lambda xp, *xs, data, memo, rule, bk, like, ins: data),
                        [vjp_i(i) for i in range(len(args))], multi)
        owner._prims[key] = prim
    params = {"data": tuple(o.data for o in outs) if multi else outs[0].data, "memo": [None, None],
              "rule": rule, "bk": bk, "like": tuple((tuple(o.shape), o.data.dtype) for o in outs),
              "ins": tuple((tuple(a.shape), a.dtype, pos) if isinstance(a, Tensor) else None
                           for a, pos in zip(args, _positions(owner, len(args))))}
    if multi:
        res = apply_multi(prim, tuple(args), params)
        res = type(out)(res) if isinstance(out, tuple) else list(res)
    else:
        res = apply(prim, tuple(args), params)
    params["data"] = None        # the output array was only needed to create the node: don't keep it alive
    return res


class custom_vjp:
    """A function with a user-defined reverse-mode rule.

    ``f.defvjp(f_fwd, f_bwd)``: ``f_fwd(*args) -> (out, residuals)``,
    ``f_bwd(residuals, ct) -> tuple of cotangents`` (one per argument, None
    for no gradient). Forward mode differentiates ``f`` itself.

    >>> import gradtape as gt
    >>> @gt.custom_vjp
    ... def clip_grad(x):
    ...     return x
    >>> clip_grad.defvjp(lambda x: (x, None), lambda res, ct: (gt.clip(ct, -1.0, 1.0),))
    >>> gt.grad(lambda x: gt.sum(clip_grad(x) * 10.0))(gt.asarray([1.0, 2.0]))
    Tensor([1., 1.])
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None
        self._prims = {}

    def defvjp(self, fwd, bwd):
        """Set the forward (out, residuals) and backward (residuals, ct) -> cotangents rules."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"gradtape.custom_vjp {self.__name__}: no rule defined; call .defvjp(fwd, bwd) first")
        nd = [args[i] for i in self.nondiff_argnums]
        diff = [a for i, a in enumerate(args) if i not in self.nondiff_argnums]
        if not _tracked(diff) or not state.enabled or _tangents_active(args):
            return self.fun(*args)
        out, res = self.fwd(*args)     # recorded: residuals keep their graph, for higher order

        def rule(ct):
            return self.bwd(*nd, res, ct)
        return _node(self, diff, out, rule)


class custom_jvp:
    """A function with a user-defined forward-mode rule.

    ``@f.defjvp``: ``f_jvp(primals, tangents) -> (out, tangent_out)``, linear
    in the tangents and written with gradtape ops. Reverse mode transposes it
    (reverse-mode differentiation of the rule in its tangents), so one rule
    serves both modes and every order.

    >>> import gradtape as gt
    >>> @gt.custom_jvp
    ... def safe_log(x):
    ...     return gt.log(x)
    >>> @safe_log.defjvp
    ... def _(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return safe_log(x), t / gt.maximum(x, 1e-6)
    >>> gt.grad(lambda x: gt.sum(safe_log(x)))(gt.asarray([0.0, 2.0]))
    Tensor([1.e+06, 5.e-01])
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None
        self._prims = {}

    def defjvp(self, jvp):
        """Set ``jvp(primals, tangents) -> (out, tangent_out)``; returns it (usable as a decorator)."""
        self.jvp = jvp
        return jvp

    def _split(self, args):
        nd = [args[i] for i in self.nondiff_argnums]
        return nd, [a for i, a in enumerate(args) if i not in self.nondiff_argnums]

    def _call_jvp(self, nd, primals, tangents):
        return self.jvp(*nd, tuple(primals), tuple(tangents)) if nd else self.jvp(tuple(primals), tuple(tangents))

    def __call__(self, *args):
        if self.jvp is None:
            raise TypeError(f"gradtape.custom_jvp {self.__name__}: no rule defined; use @f.defjvp first")
        nd, diff = self._split(args)
        if _tangents_active(diff):
            return self._forward(nd, diff)
        if not _tracked(diff) or not state.enabled:
            return self.fun(*args)
        prev = state.enabled
        state.enabled = False
        try:
            out = self.fun(*args)
        finally:
            state.enabled = prev

        def rule(ct):
            return self._transpose(nd, diff, ct)
        return _node(self, diff, out, rule)

    def _forward(self, nd, diff):
        """Forward mode at the innermost active level: the user's rule gives the tangent.

        As for primitives, the rule runs with that level switched off, on the
        original arguments, so anything it records still sees their tangents."""
        from .._api.namespace import zeros_like
        levels = state.levels
        L = max(lv for a in diff if isinstance(a, Tensor) and a.tangents for lv in a.tangents if lv in levels)
        tans = [((a.tangents or {}).get(L) if isinstance(a, Tensor) else None) for a in diff]
        tans = [t if t is not None else (zeros_like(a) if isinstance(a, Tensor) else 0.0) for t, a in zip(tans, diff)]
        state.levels = tuple(lv for lv in levels if lv < L)
        try:
            out, tout = self._call_jvp(nd, diff, tans)
        finally:
            state.levels = levels
        lead = max((tuple(t.shape[:t.ndim - a.ndim]) for t, a in zip(tans, diff) if isinstance(t, Tensor)
                    and isinstance(a, Tensor)), key=len, default=())
        if not isinstance(out, Tensor):
            raise TypeError(f"gradtape.custom_jvp {self.__name__}: the jvp rule must return (out, tangent_out) "
                            f"tensors, got an output of type {type(out).__name__}")
        self._check_tangent(tout, lead + tuple(out.shape), out.dtype)
        out.tangents = dict(out.tangents or ())
        out.tangents[L] = tout
        return out

    def _check_tangent(self, tout, shape, dtype):
        """The rule's tangent output has the primal output's shape (and batch axes) and dtype (as JAX)."""
        if not isinstance(tout, Tensor):
            raise TypeError(f"gradtape.custom_jvp {self.__name__}: the jvp rule must return (out, tangent_out) "
                            f"tensors, got a tangent of type {type(tout).__name__}")
        if tuple(tout.shape) != shape or (dtype is not None and tout.dtype != dtype):
            raise (ValueError if tuple(tout.shape) != shape else TypeError)(
                f"gradtape.custom_jvp {self.__name__}: the jvp rule must produce primal and tangent outputs with "
                f"corresponding shapes and dtypes: the tangent output has shape {tuple(tout.shape)} dtype "
                f"{tout.dtype}, expected shape {shape} dtype {dtype}")

    def _transpose(self, nd, primals, ct):
        """VJP from the JVP rule: reverse-mode through the rule, w.r.t. its (linear) tangent inputs."""
        from .._api.namespace import zeros_like
        ts = []
        for a in primals:
            t = zeros_like(a) if isinstance(a, Tensor) else 0.0
            if isinstance(t, Tensor):
                t._requires_grad = True
            ts.append(t)
        prev = state.enabled
        state.enabled = True
        try:
            _, tout = self._call_jvp(nd, primals, ts)
        finally:
            state.enabled = prev
        srcs = [t for t in ts if isinstance(t, Tensor)]
        self._check_tangent(tout, tuple(getattr(ct, "shape", ())[state.nb:]), None)
        if not tout._requires_grad:
            return tuple(None for _ in primals)
        create = state.enabled
        got = _engine.run([tout], [ct if create else ct.data], retain_graph=create, create_graph=create,
                          sources=srcs, batch=state.nb)
        it = iter(got)
        return tuple(next(it) if isinstance(t, Tensor) else None for t in ts)


# ---- checkpoint ------------------------------------------------------------------------------------------------

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


@contextlib.contextmanager
def _modes(saved):
    """Run with the training/subgradient modes ``saved`` (those of the forward pass) and recording on."""
    keys = ("train", "abs_sub", "relu_sub", "enabled")
    prev = tuple(getattr(state, k) for k in keys)
    for k, v in zip(keys, saved + (True,)):
        setattr(state, k, v)
    try:
        yield
    finally:
        for k, v in zip(keys, prev):
            setattr(state, k, v)


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


def _over(n):
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
        if not state.enabled or state.levels or state.tracer is not None or \
                getattr(state, "tracer", None) is not None:
            return f(*args)     # nothing to save (or forward mode, or a trace that must see the ops): just run
        log = _RandomLog()
        modes = (state.train, state.abs_sub, state.relu_sub)
        start = next(_seq)
        with _stream_hook(log.note):
            res = f(*args)      # recorded, to learn which tracked tensors it reads; the graph is dropped below
        multi = isinstance(res, (tuple, list))
        outs = list(res) if multi else [res]
        if not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(f"gradtape.{name}: the block must return a Tensor or a tuple/list of tensors, got "
                            f"{', '.join(type(o).__name__ for o in outs)}")
        tracked = [o for o in outs if o._requires_grad]
        if not tracked:
            return res
        ext = _block_inputs(tracked, start)
        del tracked
        keys = list(ext)
        srcs = [ext[k][0] if type(k) is not Node else _over(k) for k in keys]

        def recompute(cts):
            create = state.enabled
            revive = [p for k, (p, _) in ext.items() if type(k) is not Node and not p._requires_grad]
            for p in revive:        # a leaf tracked only while the forward ran (a tape's watch): tracked again
                p._requires_grad = True
            try:
                with _stream_hook(log.replayer()), _modes(modes):
                    res2 = f(*args)
            finally:
                for p in revive:
                    p._requires_grad = False
            outs2 = list(res2) if multi else [res2]
            roots, heads = [], []
            for o, c in zip(outs2, cts):
                if c is None or not isinstance(o, Tensor) or not o._requires_grad:
                    continue
                roots.append(o)
                heads.append((c if isinstance(c, Tensor) else wrap(c, o.backend)) if create else
                             (c.data if isinstance(c, Tensor) else c))
            if not roots:
                return [None] * len(keys)
            # partial: the pass stops at the block's inputs; the outer pass carries on from there
            return _engine.run(roots, heads, retain_graph=create, create_graph=create, sources=srcs,
                               batch=state.nb, partial=True)     # the recomputed graph is freed as it goes
        return _attach(name, res, outs, [ext[k] for k in keys], recompute)
    cf.__name__ = name
    cf.__wrapped__ = f
    return cf


def _attach(name, res, outs, ins, recompute):
    """Fresh outputs over one node whose parents and their (shape, dtype) are ``ins`` and whose VJP is
    ``recompute`` (run once per cotangent)."""
    multi = isinstance(res, (tuple, list))

    def vjp_i(i):
        def rule(xp, ct, out_, *xs, memo, recompute):    # in the node's params: freed with the node
            if memo[0] is not ct:
                memo[0] = ct
                memo[1] = recompute(tuple(ct) if multi else (ct,))
            g, memo[1][i] = memo[1][i], None     # handed over once: not kept alive by the node
            if g is None:
                return None
            return g if state.enabled else g.data
        return rule
    k = len(ins)
    prim = _one_off(f"custom:{name}", lambda xp, *xs: None, [vjp_i(i) for i in range(k)], multi)
    node = Node()
    node.prim, node.parents = prim, tuple(p for p, _ in ins)
    node.saved = node.versions = node.out = None
    node.params = {"memo": [None, None], "recompute": recompute}   # holds the inputs until the node is used
    node.input_meta = tuple(like for _, like in ins)
    node.out_tangents = None
    node.seq = next(_seq)
    node.backend = outs[0].backend
    if not multi:
        t = wrap(outs[0].data, outs[0].backend)
        t._node, t._requires_grad = node, True
        return t
    hidden = wrap(tuple(o.data for o in outs), node.backend)
    hidden._node, hidden._requires_grad = node, True
    got = [apply1(_SELECT, hidden, {"k": j, "n": len(outs)}) for j in range(len(outs))]
    return list(got) if isinstance(res, list) else tuple(got)


def _one_off(name, fwd, vjps, multi):
    """An unregistered primitive of len(vjps) inputs (a custom rule, a checkpointed block)."""
    inputs = tuple(f"x{i}" for i in range(len(vjps)))
    return define(name, fwd, inputs=inputs, vjp=dict(zip(inputs, vjps)), multi_output=multi, register=False)
