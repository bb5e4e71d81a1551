"""Custom derivative rules (JAX's ``custom_vjp``/``custom_jvp`` pattern); ``checkpoint`` is in
:mod:`.checkpoint`.

A call of a decorated function with tracked inputs becomes one graph node
whose reverse rule is the user's. Rules are written with gradtape's own ops,
so when a backward pass is itself recorded (create_graph, ``grad(grad(f))``)
the user's rule is differentiated like any other code: higher order works.
A rule's cotangents may carry leading batch axes (a batched Jacobian pass):
they are the cotangent's axes beyond the output's shape.
"""
from __future__ import annotations

import functools

from .._api import zeros_like
from .._core import engine as _engine
from .._core.dispatch import apply, apply_multi, wrap
from .._core.primitive import define
from .._core.tensor import Tensor
from .._state import scoped, state

__all__ = ["custom_vjp", "custom_jvp"]


def _tracked(args):
    return any(isinstance(a, Tensor) and a._requires_grad for a in args)


def _tangents_active(args):
    """Whether an argument carries a tangent of an active forward-mode level."""
    levels = state.levels
    return bool(levels) and any(isinstance(a, Tensor) and a.tangents and any(lv in levels for lv in a.tangents)
                                for a in args)


def _as_tensor(v, backend):
    return v if isinstance(v, Tensor) else wrap(v, backend)


def _kind(owner):
    return type(owner).__name__


def _positions(owner, n):
    """Where the n differentiated arguments stand among the primal function's arguments."""
    skip = set(getattr(owner, "nondiff_argnums", ()))
    return [i for i in range(n + len(skip)) if i not in skip][:n]


def _check_ct(owner, g, want, lead):
    """The cotangent a user's rule gave an input has that input's shape (after the batch axes ``lead``) and
    dtype (as JAX)."""
    shape, dtype, pos = want
    ok_shape, ok_dtype = tuple(g.shape) == lead + shape, g.dtype == dtype
    if ok_shape and ok_dtype:
        return
    msg = (f"gradtape.{_kind(owner)} {owner.__name__}: the bwd rule must produce an output with the same "
           f"shape/dtypes as the args tuple of the primal function: for argument {pos} it produced shape "
           f"{tuple(g.shape)} dtype {g.dtype}, expected shape {lead + shape} dtype {dtype}")
    raise (ValueError if not ok_shape else TypeError)(msg)


def _run_rule(owner, ct, rule, backend, like, multi, n):
    """``(lead, input cotangents)``: the user's ``rule`` on the output cotangent(s) ``ct``; ``lead`` holds the
    leading batch axes, the cotangent's shape beyond its output's (``like``: each output's shape, dtype)."""
    cts = tuple(None if c is None else _as_tensor(c, backend) for c in (ct if multi else (ct,)))
    k = next(k for k, c in enumerate(cts) if c is not None)
    lead = tuple(cts[k].shape[:cts[k].ndim - len(like[k][0])])
    if multi:       # outputs that got no cotangent: zeros
        cts = tuple(wrap(backend.xp.zeros(lead + shape, dtype=dtype), backend) if c is None else c
                    for c, (shape, dtype) in zip(cts, like))
    got = rule(cts if multi else cts[0])
    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
    if len(got) != n:
        raise ValueError(f"gradtape.{_kind(owner)} {owner.__name__}: the bwd rule must produce an output with the "
                         f"same shape/dtypes as the args tuple of the primal function: the VJP rule returned "
                         f"{len(got)} cotangents for {n} inputs")
    return lead, got


def _input_vjp(owner, i, multi):
    """The VJP of input ``i`` of a custom node: the user's rule runs once per cotangent (``memo``)."""
    def vjp(xp, ct, out, *xs, data, memo, rule, backend, like, ins):
        if memo[0] is not ct:
            memo[0], memo[1] = ct, _run_rule(owner, ct, rule, backend, like, multi, len(xs))
        lead, got = memo[1]
        g = got[i]
        if g is None:
            return None
        if not isinstance(g, Tensor):
            raise TypeError(f"gradtape.{owner.__name__}: the VJP rule must return tensors (or None), got "
                            f"{type(g).__name__} for input {i}")
        _check_ct(owner, g, ins[i], lead)
        return g if state.enabled else g.data
    return vjp


def _forward_single(xp, *xs, data, memo, rule, backend, like, ins):
    return data            # the output, computed before the node is made


def _forward_multi(xp, *xs, data, memo, rule, backend, like, ins):
    return tuple(data)


def _node(owner, args, out, rule):
    """Record ``out`` (computed already) as the result of one node over ``args`` whose VJP is ``rule``.

    ``rule(ct_tensors) -> tuple of input cotangents (tensors or None)`` is called once per cotangent."""
    multi = isinstance(out, (tuple, list))
    outs = tuple(out) if multi else (out,)
    backend = next(a.backend for a in args if isinstance(a, Tensor))
    key = (len(args), multi)
    prim = owner._prims.get(key)
    if prim is None:
        inputs = tuple(f"x{i}" for i in range(len(args)))
        prim = define(f"custom:{owner.__name__}", _forward_multi if multi else _forward_single, inputs=inputs,
                      vjp={name: _input_vjp(owner, i, multi) for i, name in enumerate(inputs)},
                      multi_output=multi, register=False)
        owner._prims[key] = prim
    params = {"data": tuple(o.data for o in outs) if multi else outs[0].data, "memo": [None, None],
              "rule": rule, "backend": backend, "like": tuple((tuple(o.shape), o.data.dtype) for o in outs),
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
        static = [args[i] for i in self.nondiff_argnums]
        diff = [a for i, a in enumerate(args) if i not in self.nondiff_argnums]
        if not _tracked(diff) or not state.enabled or _tangents_active(args):
            return self.fun(*args)
        out, res = self.fwd(*args)     # recorded: residuals keep their graph, for higher order

        def rule(ct):
            return self.bwd(*static, res, ct)
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
        static = [args[i] for i in self.nondiff_argnums]
        return static, [a for i, a in enumerate(args) if i not in self.nondiff_argnums]

    def _call_jvp(self, static, primals, tangents):
        return self.jvp(*static, tuple(primals), tuple(tangents))

    def __call__(self, *args):
        if self.jvp is None:
            raise TypeError(f"gradtape.custom_jvp {self.__name__}: no rule defined; use @f.defjvp first")
        static, diff = self._split(args)
        if _tangents_active(diff):
            return self._forward(static, diff)
        if not _tracked(diff) or not state.enabled:
            return self.fun(*args)
        with scoped(enabled=False):
            out = self.fun(*args)
        out_shape = tuple(getattr(out, "shape", ()))

        def rule(ct):
            return self._transpose(static, diff, ct, out_shape)
        return _node(self, diff, out, rule)

    def _forward(self, static, diff):
        """Forward mode at the innermost active level: the user's rule gives the tangent.

        As for primitives, the rule runs with that level switched off, on the
        original arguments, so anything it records still sees their tangents."""
        levels = state.levels
        level = max(lv for a in diff if isinstance(a, Tensor) and a.tangents for lv in a.tangents if lv in levels)
        tans = [((a.tangents or {}).get(level) if isinstance(a, Tensor) else None) for a in diff]
        tans = [t if t is not None else (zeros_like(a) if isinstance(a, Tensor) else 0.0) for t, a in zip(tans, diff)]
        with scoped(levels=tuple(lv for lv in levels if lv < level)):
            out, tout = self._call_jvp(static, diff, tans)
        lead = max((tuple(t.shape[:t.ndim - a.ndim]) for t, a in zip(tans, diff) if isinstance(t, Tensor)
                    and isinstance(a, Tensor)), key=len, default=())
        if not isinstance(out, Tensor):
            raise TypeError(f"gradtape.custom_jvp {self.__name__}: the jvp rule must return (out, tangent_out) "
                            f"tensors, got an output of type {type(out).__name__}")
        self._check_tangent(tout, lead + tuple(out.shape), out.dtype)
        out.tangents = dict(out.tangents or ())
        out.tangents[level] = tout
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

    def _transpose(self, static, primals, ct, out_shape):
        """VJP from the JVP rule: reverse-mode through the rule, w.r.t. its (linear) tangent inputs; ``ct`` has
        leading batch axes in front of the output's shape ``out_shape`` in a batched pass."""
        ts = []
        for a in primals:
            t = zeros_like(a) if isinstance(a, Tensor) else 0.0
            if isinstance(t, Tensor):
                t._requires_grad = True
            ts.append(t)
        with scoped(enabled=True):
            _, tout = self._call_jvp(static, primals, ts)
        srcs = [t for t in ts if isinstance(t, Tensor)]
        self._check_tangent(tout, out_shape, None)
        if not tout._requires_grad:
            return tuple(None for _ in primals)
        create = state.enabled
        got = _engine.run([tout], [ct if create else ct.data], retain_graph=create, create_graph=create,
                          sources=srcs, batch=ct.ndim - len(out_shape))
        it = iter(got)
        return tuple(next(it) if isinstance(t, Tensor) else None for t in ts)
