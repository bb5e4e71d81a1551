"""Custom derivative rules (JAX's ``custom_vjp``/``custom_jvp`` pattern) and ``checkpoint``.

A call of a decorated function with tracked inputs becomes one graph node
whose reverse rule is the user's. Rules are written with gradtape's own ops,
so when a backward pass is itself recorded (create_graph, ``grad(grad(f))``)
the user's rule is differentiated like any other code: higher order works.
"""
from __future__ import annotations

import functools

from ._core import Multi, Primitive, Tensor, apply, apply_multi, state, wrap

__all__ = ["custom_vjp", "custom_jvp", "checkpoint"]


def _tracked(args):
    return any(isinstance(a, Tensor) and a._rg for a in args)


def _tangents_active(args):
    return bool(state.levels) and any(isinstance(a, Tensor) and a._tan and any(lv in state.levels for lv in a._tan)
                                      for a in args)


def _as_tensor(v, bk):
    return v if isinstance(v, Tensor) else wrap(v, bk)


def _node(owner, args, out, rule):
    """Record ``out`` (computed already) as the result of one node over ``args`` whose VJP is ``rule``.

    ``rule(ct_tensors) -> tuple of input cotangents (tensors or None)`` is called once per cotangent."""
    multi = isinstance(out, (tuple, list))
    outs = tuple(out) if multi else (out,)
    bk = next(a._bk for a in args if isinstance(a, Tensor))
    key = (len(args), multi)
    prim = owner._prims.get(key)
    if prim is None:
        def vjp_i(i):
            def f(xp, ct, out_, *xs, data, memo, rule, bk, like):
                if memo[0] is not ct:
                    cts = ct if multi else (ct,)
                    cts = tuple(None if c is None else _as_tensor(c, bk) for c in cts)
                    if multi:       # outputs that got no cotangent: zeros
                        cts = tuple(wrap(bk.xp.zeros(tuple(c0.shape[:c0.ndim - len(sh)]) + sh, dtype=dt), bk)
                                    if c is None else c
                                    for c, (sh, dt), c0 in zip(cts, like, [next(c for c in cts if c is not None)] * len(cts)))
                    got = rule(cts if multi else cts[0])
                    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
                    if len(got) != len(xs):
                        raise ValueError(f"gradtape.{owner.__name__}: the VJP rule returned {len(got)} cotangents "
                                         f"for {len(xs)} inputs")
                    memo[0], memo[1] = ct, got
                g = memo[1][i]
                if g is None:
                    return None
                if not isinstance(g, Tensor):
                    raise TypeError(f"gradtape.{owner.__name__}: the VJP rule must return tensors (or None), got "
                                    f"{type(g).__name__} for input {i}")
                return g if state.enabled else g.data
            return f
        prim = Primitive(f"custom:{owner.__name__}",
                         (lambda xp, *xs, data, memo, rule, bk, like: tuple(data)) if multi else
                         (lambda xp, *xs, data, memo, rule, bk, like: data),
                         [vjp_i(i) for i in range(len(args))], [None] * len(args), [()] * len(args), multi=multi)
        owner._prims[key] = prim
    params = {"data": tuple(o.data for o in outs) if multi else outs[0].data, "memo": [None, None],
              "rule": rule, "bk": bk, "like": tuple((tuple(o.shape), o.data.dtype) for o in outs)}
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
        from ._namespace import zeros_like
        levels = state.levels
        L = max(lv for a in diff if isinstance(a, Tensor) and a._tan for lv in a._tan if lv in levels)
        tans = [((a._tan or {}).get(L) if isinstance(a, Tensor) else None) for a in diff]
        tans = [t if t is not None else (zeros_like(a) if isinstance(a, Tensor) else 0.0) for t, a in zip(tans, diff)]
        state.levels = tuple(lv for lv in levels if lv < L)
        try:
            out, tout = self._call_jvp(nd, diff, tans)
        finally:
            state.levels = levels
        out._tan = dict(out._tan or ())
        out._tan[L] = tout
        return out

    def _transpose(self, nd, primals, ct):
        """VJP from the JVP rule: reverse-mode through the rule, w.r.t. its (linear) tangent inputs."""
        from . import _engine
        from ._namespace import zeros_like
        ts = []
        for a in primals:
            t = zeros_like(a) if isinstance(a, Tensor) else 0.0
            if isinstance(t, Tensor):
                t._rg = True
            ts.append(t)
        prev = state.enabled
        state.enabled = True
        try:
            _, tout = self._call_jvp(nd, primals, ts)
        finally:
            state.enabled = prev
        srcs = [t for t in ts if isinstance(t, Tensor)]
        if not tout._rg:
            return tuple(None for _ in primals)
        create = state.enabled
        got = _engine.run([tout], [ct if create else ct.data], retain_graph=create, create_graph=create,
                          sources=srcs, batch=state.nb)
        it = iter(got)
        return tuple(next(it) if isinstance(t, Tensor) else None for t in ts)


def checkpoint(f):
    """``f`` whose intermediates are recomputed in the backward pass instead of being kept.

    Only the inputs are saved; the backward re-runs ``f`` with recording on and
    back-propagates through that fresh graph (higher order works too).

    >>> import gradtape as gt
    >>> block = gt.checkpoint(lambda x: gt.tanh(gt.tanh(x) * 2.0))
    >>> gt.grad(lambda x: gt.sum(block(x)))(gt.asarray([0.0]))
    Tensor([2.])
    """
    def fwd(*args):
        prev = state.enabled
        state.enabled = False          # no graph for the intermediates
        try:
            out = f(*args)
        finally:
            state.enabled = prev
        return out, args

    def bwd(args, ct):
        from . import _engine
        from ._autograd import _heads
        from .transforms import _call, _grads_or_zeros
        srcs, out, nested = _call(f, args, tuple(range(len(args))), "checkpoint")
        if not isinstance(out, Tensor) or not out._rg:
            return tuple(None for _ in args)
        create = nested or state.enabled
        head = _heads([out], [ct], create)[0] if not state.nb else (ct if create else ct.data)
        got = _engine.run([out], [head], retain_graph=create, create_graph=create,
                          sources=list(srcs), batch=state.nb)    # the recomputed graph is freed as it goes
        return _grads_or_zeros(got, srcs)

    cf = custom_vjp(f)
    cf.defvjp(fwd, bwd)
    cf.__name__ = f"checkpoint({getattr(f, '__name__', 'f')})"
    return cf
