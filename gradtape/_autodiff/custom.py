"""Custom derivative rules (JAX's ``custom_vjp``/``custom_jvp`` pattern); ``checkpoint`` is in
:mod:`.checkpoint`.

A call of a decorated function with tracked inputs becomes one graph node
whose reverse rule is the user's. Rules are written with gradtape's own ops,
so when a backward pass is itself recorded (create_graph, ``grad(grad(f))``)
the user's rule is differentiated like any other code: higher order works.
A rule's cotangents may carry leading batch axes (a batched Jacobian pass):
they are the cotangent's axes beyond the output's shape.

Arguments and outputs are pytrees (``gt.tree``), as in JAX: the node's inputs
are the leaves of the differentiated arguments and its outputs the output's
leaves; the user's rules see (and return) trees of the arguments' and the
output's structures.
"""
from __future__ import annotations

import functools

from .. import _tree
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


def _flat_args(diff):
    """``(leaves, structures)`` of the differentiated arguments (structures None: every one is a Tensor)."""
    if all(type(a) is Tensor for a in diff):
        return list(diff), None
    leaves, specs = [], []
    for a in diff:
        got, spec = _tree.tree_flatten(a)
        leaves += got
        specs.append(spec)
    return leaves, specs


def _leaf_positions(owner, diff, specs):
    """Where each leaf stands, for messages: its argument's position, and its path inside that argument."""
    pos = _positions(owner, len(diff))
    if specs is None:
        return pos
    out = []
    for p, a in zip(pos, diff):
        out += [f"{p} {_tree.keystr(path)}" if path else p for path, _ in _tree.tree_flatten_with_path(a)[0]]
    return out


def _flat_cts(owner, got, diff, specs):
    """The user's rule's cotangents (one tree per differentiated argument, None for zeros) as leaves."""
    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
    if len(got) != len(diff):
        raise ValueError(f"gradtape.{_kind(owner)} {owner.__name__}: the bwd rule must produce an output with the "
                         f"same shape/dtypes as the args tuple of the primal function: the VJP rule returned "
                         f"{len(got)} cotangents for {len(diff)} inputs")
    if specs is None:
        return got
    out = []
    for g, s in zip(got, specs):
        out += [None] * s.num_leaves if g is None else _tree.flatten_up_to(
            s, g, f"{_kind(owner)} {owner.__name__}: the rule's cotangent and its argument")
    return tuple(out)


def _record(owner, diff, specs, out, rule):
    """``_node`` over the leaves of ``diff`` and of the output tree ``out``; ``rule(ct)`` gets the output's
    leaf cotangent(s) and returns the flat input cotangents."""
    leaves = diff if specs is None else _flat_args(diff)[0]
    pos = _leaf_positions(owner, diff, specs)
    if isinstance(out, Tensor):
        return _node(owner, leaves, out, rule, pos)
    outs, ospec = _tree.tree_flatten(out)
    res = _node(owner, leaves, tuple(outs), rule, pos, tree=ospec)
    return _tree.unflatten(ospec, list(res))


def _node(owner, args, out, rule, pos=None, tree=None):
    """Record ``out`` (computed already) as the result of one node over ``args`` whose VJP is ``rule``.

    ``rule(ct_tensors) -> tuple of input cotangents (tensors or None)`` is called once per cotangent; ``pos``
    names the inputs in messages; ``tree``: ``out`` is the tuple of the leaves of an output of that structure."""
    multi = isinstance(out, (tuple, list))
    outs = tuple(out) if multi else (out,)
    if not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"gradtape.{_kind(owner)} {owner.__name__}: the function must return tensors (or a pytree "
                        f"of them), got {', '.join(type(o).__name__ for o in outs)}")
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
                           for a, pos in zip(args, pos or _positions(owner, len(args))))}
    if multi:
        res = apply_multi(prim, tuple(args), params)
        res = res if tree is not None else type(out)(res) if isinstance(out, tuple) else list(res)
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
        leaves, specs = _flat_args(diff)
        if not _tracked(leaves) or not state.enabled or _tangents_active(leaves):
            return self.fun(*args)
        out, res = self.fwd(*args)     # recorded: residuals keep their graph, for higher order
        ospec = None if isinstance(out, Tensor) else _tree.tree_structure(out)

        def rule(ct):
            ct = ct if ospec is None else _tree.unflatten(ospec, list(ct))
            return _flat_cts(self, self.bwd(*static, res, ct), diff, specs)
        return _record(self, diff, specs, out, rule)


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
        leaves, specs = _flat_args(diff)
        if _tangents_active(leaves):
            return self._forward(static, diff, leaves, specs)
        if not _tracked(leaves) or not state.enabled:
            return self.fun(*args)
        with scoped(enabled=False):
            out = self.fun(*args)
        outs, ospec = _tree.tree_flatten(out)
        like = [tuple(getattr(o, "shape", ())) for o in outs]

        def rule(ct):
            return self._transpose(static, diff, leaves, specs, ct if isinstance(out, Tensor) else tuple(ct), like)
        return _record(self, diff, specs, out, rule)

    def _forward(self, static, diff, leaves, specs):
        """Forward mode at the innermost active level: the user's rule gives the tangent.

        As for primitives, the rule runs with that level switched off, on the
        original arguments, so anything it records still sees their tangents."""
        levels = state.levels
        level = max(lv for a in leaves if isinstance(a, Tensor) and a.tangents for lv in a.tangents if lv in levels)
        tans = [((a.tangents or {}).get(level) if isinstance(a, Tensor) else None) for a in leaves]
        tans = [t if t is not None else (zeros_like(a) if isinstance(a, Tensor) else 0.0)
                for t, a in zip(tans, leaves)]
        with scoped(levels=tuple(lv for lv in levels if lv < level)):
            out, tout = self._call_jvp(static, diff, self._trees(tans, diff, specs))
        lead = max((tuple(t.shape[:t.ndim - a.ndim]) for t, a in zip(tans, leaves) if isinstance(t, Tensor)
                    and isinstance(a, Tensor)), key=len, default=())
        outs, ospec = _tree.tree_flatten(out)
        touts = self._tangent_leaves(ospec, tout)
        for o, t in zip(outs, touts):
            if not isinstance(o, Tensor):
                raise TypeError(f"gradtape.custom_jvp {self.__name__}: the jvp rule must return (out, tangent_out) "
                                f"tensors, got an output of type {type(o).__name__}")
            self._check_tangent(t, lead + tuple(o.shape), o.dtype)
        for o, t in zip(outs, touts):
            o.tangents = dict(o.tangents or ())
            o.tangents[level] = t
        return out

    @staticmethod
    def _trees(flat, diff, specs):
        """Tangent trees of the primals' structures from the flat leaves."""
        if specs is None:
            return flat
        out, lo = [], 0
        for s in specs:
            out.append(_tree.unflatten(s, flat[lo:lo + s.num_leaves]))
            lo += s.num_leaves
        return out

    def _tangent_leaves(self, ospec, tout):
        if ospec.kind == "leaf":
            return [tout]
        return _tree.flatten_up_to(ospec, tout, f"custom_jvp {self.__name__}: the jvp rule's tangent output and "
                                                f"its primal output")

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

    def _transpose(self, static, diff, leaves, specs, ct, like):
        """VJP from the JVP rule: reverse-mode through the rule, w.r.t. its (linear) tangent inputs; ``ct`` (one
        per output leaf, a tuple when the output is a tree) has leading batch axes in front of each output
        leaf's shape (``like``) in a batched pass."""
        ts = []
        for a in leaves:
            t = zeros_like(a) if isinstance(a, Tensor) else 0.0
            if isinstance(t, Tensor):
                t._requires_grad = True
            ts.append(t)
        with scoped(enabled=True):
            out, tout = self._call_jvp(static, diff, self._trees(ts, diff, specs))
        srcs = [t for t in ts if isinstance(t, Tensor)]
        cts = ct if isinstance(ct, tuple) else (ct,)
        touts = self._tangent_leaves(_tree.tree_structure(out), tout)
        roots, heads, batch = [], [], 0
        create = state.enabled
        for t, c, shape in zip(touts, cts, like):
            self._check_tangent(t, shape, None)
            if c is None or not t._requires_grad:
                continue
            roots.append(t)
            heads.append(c if create else c.data)
            batch = c.ndim - len(shape)
        if not roots:
            return tuple(None for _ in leaves)
        got = _engine.run(roots, heads, retain_graph=create, create_graph=create, sources=srcs, batch=batch)
        it = iter(got)
        return tuple(next(it) if isinstance(t, Tensor) else None for t in ts)
