"""Function transforms (JAX style): grad, value_and_grad, vjp, jvp (true forward mode), linearize, jacobian.

They compose: ``grad(grad(f))``, ``jvp(grad(f), ...)`` (forward-over-reverse),
``grad`` of a function that calls ``jvp``. An argument that is already being
differentiated by an outer transform is passed in through an identity op, so
the inner pass is recorded for the outer one.

Arguments and results are pytrees (``gt.tree``): a layer flattens the
differentiated argument positions and the outputs into leaves, the leaf
machinery (``_source``, ``_call``, ``_grads``, ``_jvp``) works on those, and the
results are unflattened into the arguments' (and outputs') structures.

Size: the transforms share their helpers (pytree layer, sources, checks), so they stay in one file.
"""
from __future__ import annotations

import inspect
import itertools
import math
import threading

from .. import _tree
from .._api import asarray, eye, permute_dims, reshape
from .._core import engine as _engine
from .._core.dispatch import apply1, wrap
from .._core.dtypes import dtype_name, is_float
from .._core.tensor import Tensor
from .._ops.shape import reshape_p
from .._state import scoped, state
from . import batched as _batched
from .tape import gradients_or_zeros, head_gradients, reverse_jacobians, user_convention

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "linearize", "jacobian", "jacfwd", "jacrev", "hessian", "hvp"]

_level = itertools.count(1)


class _Reverse(threading.local):
    depth = 0       # functions of reverse transforms (grad, vjp, jacobian) running on this thread


_reverse = _Reverse()


def _argnums(argnums, n):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"argnums {a} out of range for a function called with {n} positional arguments")
    return single, tuple(a % n for a in nums)


def _alias(x):
    """``x`` through an identity op that copies nothing: a reshape to its own shape, a view of ``x`` (sharing
    its version counter) recorded as a node of its own below ``x``'s node or leaf, carrying its tangents."""
    return apply1(reshape_p, x, {"shape": x.shape, "xshape": x.shape})


def _source(x, what, i=None):
    """A fresh differentiable stand-in for argument ``x``, connected to any outer differentiation of it.

    It is a tensor of its own, never ``x``: the gradient is w.r.t. this argument only (not what the function
    reads of ``x`` through a closure, nor another argument that is the same tensor), and the walk of an
    intermediate source goes on above it (total derivatives). It shares ``x``'s memory and version counter:
    in-place operators on it have value semantics (only a leaf with a grad_req is updated in place, and it
    has none), and a truly in-place update of ``x`` while it is saved is the usual error at backward."""
    if not isinstance(x, Tensor):
        x = asarray(x)
    _check_real(x, what, "an argument" if i is None else f"argument {i}")
    if x._requires_grad and state.enabled:
        return _alias(x), True
    w = _alias(x) if x.tangents is not None else wrap(x.data, x.backend)
    w._node = None
    w._requires_grad = True
    w._grad_req = None
    return w, x.tangents is not None


# transforms that take complex arguments (PyTorch's convention, README "Complex numbers"); jacobian, hessian, hvp and
# linearize refuse them (a complex Jacobian of a non-holomorphic function is not one matrix)
_COMPLEX_OK = frozenset(("grad", "vjp", "jvp"))


def _check_real(x, what, which="an argument"):
    """Differentiation is w.r.t. floating arrays (complex ones by grad, value_and_grad, vjp, jvp); integers have no
    derivative."""
    name = dtype_name(x.dtype)
    if name.startswith("complex"):
        if what in _COMPLEX_OK:
            return
        raise TypeError(f"gradtape.{what}: {which} is complex ({name}, shape {x.shape}); complex "
                        f"differentiation is not supported yet by {what} (gt.grad, gt.vjp and gt.jvp take complex "
                        f"arguments): differentiate w.r.t. the real and imaginary parts as separate real arrays")
    if not is_float(x.dtype):
        raise TypeError(f"gradtape.{what}: cannot differentiate with respect to {which} of dtype {x.dtype} "
                        f"(shape {x.shape}); pass a floating-point array")


# ---- the pytree layer: argument positions and outputs as leaves ---------------------------------------

def _arg_name(f, i):
    """The name of ``f``'s positional parameter ``i`` (for messages), or ``args[i]``."""
    try:
        ps = [p.name for p in inspect.signature(f).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        ps = []
    return ps[i] if i < len(ps) else f"args[{i}]"


def _as_array(v):
    """A leaf of a differentiated tree as a Tensor (tensors, Python numbers, backend arrays), else None."""
    if isinstance(v, Tensor):
        return v
    if isinstance(v, (bool, str)) or not (isinstance(v, (int, float, complex)) or
                                         (hasattr(v, "shape") and hasattr(v, "dtype"))):
        return None
    return asarray(v)


def _real_float(t):
    return is_float(t.dtype) and not dtype_name(t.dtype).startswith("complex")


def _bad_leaf(where, v, what):
    """The TypeError for leaf ``v`` at ``where`` (a non-array, or not a real floating array)."""
    t = _as_array(v)
    if t is None:
        raise TypeError(f"gradtape.{what}: {where} is a {type(v).__name__} ({str(v)[:40]!r}), not an array; every "
                        f"leaf of a differentiated argument must be a floating-point array (pass other values "
                        f"through a non-differentiated argument, or close over them)")
    _check_real(t, what, where)


def _leaves(x):
    """``(leaves, spec)`` of one argument (a Tensor is one leaf, without the walker)."""
    if type(x) is Tensor:
        return [x], _tree._LEAF_SPEC
    return _tree.tree_flatten(x)


def _diff_leaves(f, args, nums, what):
    """The leaves of the differentiated positions, as tensors, flat in ``nums`` order, and each position's
    structure. A leaf that is not a real floating array is a TypeError naming its path (``p['b']``)."""
    flat, specs = [], []
    for i in nums:
        leaves, spec = _leaves(args[i])
        for k, v in enumerate(leaves):
            t = _as_array(v)
            if t is None or not _real_float(t):
                path = _tree.keystr(_tree.tree_flatten_with_path(args[i])[0][k][0])
                _bad_leaf(f"{_arg_name(f, i)}{path} (argument {i})" if path else f"argument {i}", v, what)
            leaves[k] = t
        flat += leaves
        specs.append(spec)
    return flat, specs


def _unflat(specs, flat):
    """The trees of structures ``specs`` filled with ``flat``, one after the other."""
    out, lo = [], 0
    for s in specs:
        out.append(flat[lo] if s.kind is _tree._LEAF else _tree.unflatten(s, flat[lo:lo + s.num_leaves]))
        lo += s.num_leaves
    return out


def _structure_error(exc, a, b, what, sa, sb):
    """``exc`` saying where trees of structures ``sa`` (``a``) and ``sb`` (``b``) differ."""
    path, da, db = _tree.spec_difference(sa, sb)
    return exc(f"gradtape.{what}: {a} and {b} must have the same tree structure, but at "
               f"{_tree.keystr(path) or 'the root'} {a} have {da} and {b} have {db} ({a}: {sa!r}; {b}: {sb!r})")


def _split_aux(res, has_aux, what):
    """``(out, aux)`` of a has_aux function's result, ``(res, None)`` without has_aux."""
    if not has_aux:
        return res, None
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        got = f"a {type(res).__name__} of length {len(res)}" if isinstance(res, (tuple, list)) else type(res).__name__
        raise TypeError(f"gradtape.{what}: has_aux=True expects the function to return a pair (output, aux), "
                        f"got {got}")
    return res[0], res[1]


def _flatten(out):
    """Leaves and structure of a function's outputs (a pytree)."""
    return _leaves(out)


def _out_tensors(outs, what):
    got = []
    for o in outs:
        if not isinstance(o, Tensor):
            if not isinstance(o, (int, float)):
                raise TypeError(f"gradtape.{what}: the function must return tensors (or pytrees of them: tuples, "
                                f"lists, dicts...), got {type(o).__name__}")
            o = asarray(o)
        got.append(o)
    return got


def _call(f, args, nums, what, flat=None):
    """Run ``f`` with a source in place of every leaf of the ``nums`` positions: ``(sources, structures,
    result, nested)``; ``flat``: those positions' ``(leaves, structures)`` when known already."""
    args = list(args)
    leaves, specs = flat if flat is not None else _diff_leaves(f, args, nums, what)
    # nested: an enclosing transform may differentiate our result, through the arguments or through what
    # the function closes over (an outer transform's variable): then the pass is recorded
    nested = bool(state.levels) or (state.enabled and (state.recording > 0 or _reverse.depth > 0))
    srcs = []
    for x in leaves:
        w, outer = _source(x, what)
        srcs.append(w)
        nested = nested or outer
    for i, a in zip(nums, _unflat(specs, srcs)):
        args[i] = a
    _reverse.depth += 1
    try:
        with scoped(enabled=True):
            out = f(*args)
    finally:
        _reverse.depth -= 1
    return srcs, specs, out, nested


def _scalar_out(out, what):
    if not isinstance(out, Tensor):
        raise TypeError(f"gradtape.{what}: the function must return a scalar Tensor, got {type(out).__name__}")
    if out.shape != ():
        raise ValueError(f"gradtape.{what}: the function returned shape {out.shape}, but {what} needs a scalar "
                         f"output; use gt.vjp for a vector-Jacobian product or gt.jacobian for the full Jacobian")
    name = dtype_name(out.dtype)
    if name not in ("float16", "float32", "float64"):
        raise TypeError(f"gradtape.{what} requires real-valued outputs (float dtype), but the function returned "
                        f"dtype {name}" + ("; grad can be implicitly created only for real scalar outputs (as in "
                                           "torch): take gt.real, gt.abs... of it, or use gt.vjp with a cotangent"
                                           if "complex" in name else
                                           "; integer and boolean results (argmax, comparisons) have no gradient"))


def _grads(out, srcs, create):
    if not out._requires_grad:   # output does not depend on the arguments
        return gradients_or_zeros([None] * len(srcs), srcs)
    head = wrap(out.backend.xp.ones_like(out.data), out.backend) if create else out.backend.xp.ones_like(out.data)
    return user_convention(
        gradients_or_zeros(_engine.run([out], [head], retain_graph=create, create_graph=create, sources=srcs), srcs))



def value_and_grad(f, argnums=0, has_aux=False):
    """``f``'s value and its gradient w.r.t. the ``argnums`` arguments (pytrees: each gradient has its
    argument's structure); with ``has_aux`` ``f`` returns ``(value, aux)`` and this ``((value, aux), grad)``.

    >>> import gradtape as gt
    >>> gt.value_and_grad(lambda x: (x * x).sum())(gt.asarray([1.0, 2.0]))
    (Tensor(5.), Tensor([2., 4.]))
    >>> gt.value_and_grad(lambda p: gt.sum(p["w"] * p["b"]))({"w": gt.asarray([1.0, 2.0]), "b": gt.asarray(3.0)})
    (Tensor(9.), {'b': Tensor(3.), 'w': Tensor([3., 3.])})
    """
    def vg(*args):
        if state.batch:         # inside gt.vmap: per example, on the batched values
            return _batched.value_and_grad(value_and_grad, f, argnums, has_aux, args)
        single, nums = _argnums(argnums, len(args))
        srcs, specs, res, nested = _call(f, args, nums, "grad")
        out, aux = _split_aux(res, has_aux, "grad")
        _scalar_out(out, "grad")
        gs = _unflat(specs, _grads(out, srcs, nested))
        g = gs[0] if single else tuple(gs)
        val = out if nested else wrap(out.data, out.backend)
        if has_aux and not nested:      # aux is a value (as JAX): no graph kept through it
            aux = _tree.tree_map(_plain, aux)
        return ((val, aux), g) if has_aux else (val, g)
    vg.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    vg.__wrapped__ = f          # inspect.signature (a traced graph's input names) sees f's parameters
    return vg


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``f`` w.r.t. argument ``argnums`` (an int, or a tuple giving a tuple).

    An argument may be a pytree (dicts, lists, tuples... of arrays, ``gt.tree``): its gradient has the same
    structure. A leaf that is not a floating-point array (an int, a string) is a ``TypeError`` naming its path.

    >>> import gradtape as gt
    >>> gt.grad(lambda x: gt.sum(gt.sin(x)))(gt.asarray([0.0]))
    Tensor([1.])
    >>> gt.grad(lambda p: gt.sum(p[0] ** 2) + gt.sum(p[1]))([gt.asarray([1.0, 2.0]), gt.asarray([5.0])])
    [Tensor([2., 4.]), Tensor([1.])]
    """
    vg = value_and_grad(f, argnums, has_aux)

    def g(*args):
        (val, g_) = vg(*args)
        return (g_, val[1]) if has_aux else g_
    g.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    g.__wrapped__ = f
    return g


def vjp(f, *primals, has_aux=False):
    """``(out, f_vjp)``: ``f_vjp(ct)`` gives the cotangent of every primal (a tuple, one tree per primal).

    ``ct`` has the structure of ``out`` (a pytree); another structure is a ``ValueError`` naming where.

    >>> import gradtape as gt
    >>> y, f_vjp = gt.vjp(lambda x: 2 * x, gt.asarray([1.0, 2.0]))
    >>> f_vjp(gt.asarray([1.0, 1.0]))
    (Tensor([2., 2.]),)
    >>> y, f_vjp = gt.vjp(lambda p: {"s": p["a"] * 3.0}, {"a": gt.asarray(1.0)})
    >>> f_vjp({"s": gt.asarray(1.0)})
    ({'a': Tensor(3.)},)
    """
    if state.batch:
        return _batched.vjp(vjp, f, primals, has_aux)
    srcs, specs, res, nested = _call(f, primals, tuple(range(len(primals))), "vjp")
    out, aux = _split_aux(res, has_aux, "vjp")
    outs, ospec = _flatten(out)
    outs = _out_tensors(outs, "vjp")

    def f_vjp(ct):
        cts = [ct] if ospec.kind is _tree._LEAF else _tree.flatten_up_to(ospec, ct, "vjp: the cotangent")
        roots, heads = [], []
        for o, c in zip(outs, cts):
            if not o._requires_grad:
                continue
            roots.append(o)
            heads.append(c)      # head_gradients conjugates a complex one for the rules
        if not roots:
            return tuple(_unflat(specs, gradients_or_zeros([None] * len(srcs), srcs)))
        create = nested or any(isinstance(c, Tensor) and (c._requires_grad or c.tangents is not None) for c in cts)
        got = _engine.run(roots, head_gradients(roots, heads, create, "vjp"), retain_graph=True,
                          create_graph=create, sources=srcs)
        return tuple(_unflat(specs, user_convention(gradients_or_zeros(got, srcs))))

    shown = out if nested else _tree.unflatten(ospec, [wrap(o.data, o.backend) for o in outs])
    if has_aux and not nested:
        aux = _tree.tree_map(_plain, aux)
    return (shown, f_vjp, aux) if has_aux else (shown, f_vjp)


def jvp(f, primals, tangents, has_aux=False):
    """Forward mode: ``(f(*primals), J @ tangents)`` from the JVP rules, in one pass.

    >>> import gradtape as gt
    >>> gt.jvp(gt.sin, (gt.asarray([0.0]),), (gt.asarray([2.0]),))
    (Tensor([0.]), Tensor([2.]))
    """
    if state.batch:
        return _batched.jvp(jvp, f, primals, tangents, has_aux)
    return _jvp(f, primals, tangents, has_aux, batch=False)


def _jvp(f, primals, tangents, has_aux=False, batch=False):
    """jvp; with batch=True each tangent carries leading batch axes (many directions in one pass)."""
    for name, v in (("primals", primals), ("tangents", tangents)):
        if not isinstance(v, (tuple, list)):
            raise TypeError(f"gradtape.jvp: {name} must be a tuple or list (one entry per argument of the "
                            f"function), got {type(v).__name__}; write gt.jvp(f, (x,), (v,))")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"gradtape.jvp: {len(primals)} primals but {len(tangents)} tangents")
    xs, pspec = _leaves(primals)
    ts, tspec = _leaves(tangents)
    if pspec != tspec:
        raise _structure_error(TypeError, "primals", "tangents", "jvp", pspec, tspec)
    level = next(_level)
    ws = [_tangent_source(x, t, k, primals, batch, level) for k, (x, t) in enumerate(zip(xs, ts))]
    with scoped(levels=state.levels + (level,)):
        res = f(*_tree.unflatten(pspec, ws))
    out, aux = _split_aux(res, has_aux, "jvp")
    outs, spec = _flatten(out)
    outs = _out_tensors(outs, "jvp")
    lead = tuple(ts[0].shape[:ts[0].ndim - asarray(xs[0]).ndim]) if batch and ts else ()
    touts = []
    for o in outs:          # read every tangent before clearing any: an output may be returned twice
        t = o.tangents.get(level) if o.tangents else None
        if t is None:
            t = wrap(o.backend.xp.zeros(lead + tuple(o.data.shape), dtype=o.data.dtype), o.backend)
        touts.append(t)
    for o in outs:
        if o.tangents and level in o.tangents:
            o.tangents = {k: v for k, v in o.tangents.items() if k != level} or None
    if not _outer(xs + ts):      # nobody differentiates the result: hand back plain values
        outs, touts = [_plain(o) for o in outs], [_plain(t) for t in touts]
    out, tout = _tree.unflatten(spec, outs), _tree.unflatten(spec, touts)
    return (out, tout, aux) if has_aux else (out, tout)


def _tangent_source(x, t, k, primals, batch, level, what="jvp"):
    """Primal leaf ``k`` (``x``) as an argument carrying tangent ``t`` at ``level``."""
    x, t = _checked_tangent(x, t, k, primals, batch, what)
    w = _alias(x) if (x._requires_grad or x.tangents is not None) else wrap(x.data, x.backend)
    w.tangents = dict(w.tangents or ())
    w.tangents[level] = t
    return w


def _checked_tangent(x, t, k, primals, batch, what):
    """``(x, t)`` as tensors, ``t`` of ``x``'s shape (after batch axes), dtype and device, else the error."""
    def where(kind):
        path = _tree.tree_flatten_with_path(primals)[0][k][0]
        return f"{kind} {path[0][1:-1]}" + (f" {_tree.keystr(path[1:])}" if len(path) > 1 else "")
    xa = _as_array(x)
    if xa is None or not _real_float(xa):
        _bad_leaf(where("primal"), x, what)
    x = xa
    if not isinstance(t, Tensor):
        if _as_array(t) is None:
            _bad_leaf(where("tangent"), t, what)
        t = asarray(t, dtype=x.dtype, device=x.device) if isinstance(t, (int, float)) else asarray(t, device=x.device)
    if (t.shape[t.ndim - x.ndim:] if batch else t.shape) != x.shape or t.ndim < x.ndim:
        raise ValueError(f"gradtape.{what}: {where('tangent')} has shape {t.shape} but {where('primal')} has shape "
                         f"{x.shape}; each tangent must have its primal's shape")
    if t.backend is not x.backend:
        raise TypeError(f"gradtape.{what}: {where('tangent')} on {t.device!r} but {where('primal')} on {x.device!r}")
    if t.dtype != x.dtype:
        raise TypeError(f"gradtape.{what}: {where('tangent')} has dtype {t.dtype} but {where('primal')} has dtype "
                        f"{x.dtype}; each tangent must have its primal's dtype")
    return x, t


def linearize(f, *primals, has_aux=False):
    """``(out, f_jvp)``: ``f`` runs once, at ``primals``; ``f_jvp(*tangents)`` is ``J @ tangents`` (as
    ``gt.jvp``'s tangent output) from that one linearization, without calling ``f`` again.

    As JAX's ``linearize``, by transposition: the VJP of ``f`` is recorded once at a symbolic cotangent
    ``c`` (a graph linear in ``c``, ``c -> J^T c``) and every ``f_jvp(t)`` is one reverse pass of that
    recorded graph, the gradient of ``<J^T c, t>`` w.r.t. ``c``: ``J t``. It keeps both graphs alive while
    ``f_jvp`` is. Tangents are trees of the primals' structures (another structure is a ``TypeError``, another
    shape a ``ValueError``); the result has the output's structure. With ``has_aux`` ``f`` returns
    ``(out, aux)`` and this ``(out, f_jvp, aux)``. Inside ``gt.vmap`` ``f_jvp`` is ``gt.jvp``
    at the primals (it recomputes ``f``).

    >>> import gradtape as gt
    >>> out, f_jvp = gt.linearize(gt.sin, gt.asarray([0.0, 1.0]))
    >>> f_jvp(gt.asarray([2.0, 0.0]))
    Tensor([2., 0.])
    >>> out, f_jvp = gt.linearize(lambda p: p["a"] * p["b"], {"a": gt.asarray(2.0), "b": gt.asarray(3.0)})
    >>> f_jvp({"a": gt.asarray(1.0), "b": gt.asarray(0.0)})
    Tensor(3.)
    """
    if state.batch:             # inside gt.vmap: each f_jvp call runs jvp (recomputes f)
        out, aux = _split_aux(f(*primals), has_aux, "linearize")
        f_jvp = lambda *ts: jvp(f, primals, ts, has_aux=has_aux)[1]  # noqa: E731
        return (out, f_jvp, aux) if has_aux else (out, f_jvp)
    srcs, specs, res, nested = _call(f, primals, tuple(range(len(primals))), "linearize")
    res, aux = _split_aux(res, has_aux, "linearize")
    outs, ospec = _flatten(res)
    outs = _out_tensors(outs, "linearize")
    cts = []          # one symbolic cotangent per output that depends on the primals
    for o in outs:
        c = None
        if o._requires_grad:
            c = wrap(o.backend.xp.zeros_like(o.data), o.backend)
            c._requires_grad, c._grad_req = True, None
        cts.append(c)
    live = [(o, c) for o, c in zip(outs, cts) if c is not None]
    vjps = []
    if live:
        with scoped(enabled=True):      # J^T c, recorded: a graph from the cotangents to the primals' cotangents
            vjps = _engine.run([o for o, _ in live], [c for _, c in live], retain_graph=True, create_graph=True,
                               sources=srcs)
    pspec = _tree.tree_structure(tuple(primals))
    xs = _tree.tree_leaves(tuple(primals))

    def f_jvp(*tangents):
        ts, tspec = _leaves(tangents)
        if tspec != pspec:
            raise _structure_error(TypeError, "primals", "tangents", "linearize", pspec, tspec)
        ts = [_checked_tangent(x, t, k, tuple(primals), False, "linearize")[1] for k, (x, t) in enumerate(zip(xs, ts))]
        roots, heads = [], []
        for g, t in zip(vjps, ts):
            if isinstance(g, Tensor) and g._requires_grad:
                roots.append(g)
                heads.append(t)
        csrc = [c for c in cts if c is not None]
        got = [None] * len(csrc)
        if roots:
            create = nested or any(t._requires_grad or t.tangents is not None for t in ts)
            got = _engine.run(roots, head_gradients(roots, heads, create, "linearize"), retain_graph=True,
                              create_graph=create, sources=csrc)
        it = iter(gradients_or_zeros(got, csrc) if csrc else ())
        touts = [next(it) if c is not None else wrap(o.backend.xp.zeros_like(o.data), o.backend)
                 for o, c in zip(outs, cts)]
        if not nested and not _outer(ts):
            touts = [_plain(t) for t in touts]
        return _tree.unflatten(ospec, touts)

    shown = res if nested else _tree.unflatten(ospec, [wrap(o.data, o.backend) for o in outs])
    if has_aux and not nested:
        aux = _tree.tree_map(_plain, aux)
    return (shown, f_jvp, aux) if has_aux else (shown, f_jvp)


def _outer(args):
    """Whether an enclosing transform, tape or record scope may differentiate what we return."""
    return bool(state.levels) or (state.enabled and (state.recording > 0 or _reverse.depth > 0)) or any(
        isinstance(a, Tensor) and (a._requires_grad or a.tangents is not None) for a in args)


def _plain(t):
    return wrap(t.data, t.backend) if isinstance(t, Tensor) and (t._requires_grad or t.tangents is not None) else t


def _numerator_layout(J, out_shape, x_shape):
    """A forward-mode batched derivative, (n,) + out_shape for x of n elements, in numerator layout
    out_shape + x_shape."""
    n = math.prod(x_shape)
    m = math.prod(out_shape)
    return reshape(permute_dims(reshape(J, (n, m)), (1, 0)), tuple(out_shape) + tuple(x_shape))


def jacobian(f, argnums=0, mode="auto", has_aux=False):
    """The Jacobian of ``f``, shaped ``y.shape + x.shape`` (numerator layout), batched.

    One pass pushes every basis vector at once: ``mode="reverse"`` one VJP pass
    with an identity of cotangents, ``"forward"`` one JVP pass with an
    identity of tangents, ``"auto"`` forward when the inputs have fewer
    elements than the outputs. As in JAX, a tuple ``argnums`` gives a tuple of
    Jacobians, and a function returning a tuple (or list, dict, any pytree) of
    outputs gives one such result per output.

    >>> import gradtape as gt
    >>> A = gt.asarray([[1.0, 2.0], [3.0, 4.0]])
    >>> gt.jacobian(lambda x: A @ x)(gt.asarray([1.0, 1.0]))
    Tensor([[1., 2.],
            [3., 4.]])
    >>> J_sin, J_cos = gt.jacobian(lambda x: (gt.sin(x), gt.cos(x)))(gt.asarray([0.0]))
    >>> J_sin, J_cos
    (Tensor([[1.]]), Tensor([[-0.]]))

    Pytrees: the result nests the output's structure over the argument's, as ``jax.jacobian``.

    >>> gt.jacobian(lambda p: {"y": p["w"] * 2.0})({"w": gt.asarray([1.0])})
    {'y': {'w': Tensor([[2.]])}}
    """
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"gradtape.jacobian: mode must be 'auto', 'forward' or 'reverse', got {mode!r}")

    def jac(*args):
        if state.batch:
            return _batched.jacobian(jvp, f, argnums, has_aux, args)
        single, nums = _argnums(argnums, len(args))
        xs, specs = _diff_leaves(f, args, nums, "jacobian")
        n_in = sum(x.size for x in xs)
        use_fwd = mode == "forward"
        if mode != "forward":
            srcs, _, res, nested = _call(f, args, nums, "jacobian", (xs, specs))
            out, aux = _split_aux(res, has_aux, "jacobian")
            outs, spec = _flatten(out)
            outs = _out_tensors(outs, "jacobian")
            use_fwd = mode == "auto" and n_in < sum(o.size for o in outs)
        if use_fwd:
            out, tout, aux = _jac_fwd(f, args, nums, xs, specs, n_in, has_aux)
            outs, spec = _flatten(out)
            touts = _tree.flatten_up_to(spec, tout)
            rows = []
            for o, t in zip(outs, touts):
                Js, lo = [], 0
                for x in xs:
                    Js.append(_numerator_layout(t[lo:lo + x.size], o.shape, x.shape))
                    lo += x.size
                rows.append(Js)
        else:
            rows = reverse_jacobians(outs, srcs, create=nested)
        if not _outer(xs):
            rows = [[_plain(J) for J in Js] for Js in rows]
        # numerator layout on the trees too: the output's structure over the arguments' (as jax.jacobian)
        J = _tree.unflatten(spec, [(lambda t: t[0] if single else tuple(t))(_unflat(specs, Js)) for Js in rows])
        return (J, aux) if has_aux else J
    jac.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    jac.__wrapped__ = f
    return jac


def _jac_fwd(f, args, nums, xs, specs, n_in, has_aux):
    """One batched JVP pass with an identity of tangents: (out, tangents (n_in,) + out shapes, aux)."""
    tans, lo = [], 0
    for x in xs:        # one identity block per leaf, all in one batch
        e = eye(n_in, dtype=x.dtype, device=x.device)
        tans.append(reshape(e[:, lo:lo + x.size], (n_in,) + x.shape))
        lo += x.size

    def g(*ws):
        a = list(args)
        for i, w in zip(nums, _unflat(specs, list(ws))):
            a[i] = w
        return f(*a)
    out, tout, *rest = _jvp(g, xs, tans, has_aux=has_aux, batch=True)
    return out, tout, (rest[0] if has_aux else None)


def jacfwd(f, argnums=0, has_aux=False):
    """The Jacobian of ``f`` in forward mode (``jacobian(f, argnums, mode="forward")``), as JAX and torch.func.

    >>> import gradtape as gt
    >>> gt.jacfwd(lambda x: x ** 2)(gt.asarray([1.0, 2.0]))
    Tensor([[2., 0.],
            [0., 4.]])
    """
    jac = jacobian(f, argnums, mode="forward", has_aux=has_aux)
    jac.__name__ = f"jacfwd({getattr(f, '__name__', 'f')})"
    return jac


def jacrev(f, argnums=0, has_aux=False):
    """The Jacobian of ``f`` in reverse mode (``jacobian(f, argnums, mode="reverse")``), as JAX and torch.func.

    >>> import gradtape as gt
    >>> gt.jacrev(lambda p: p["a"] * p["b"])({"a": gt.asarray([1.0]), "b": gt.asarray([3.0])})
    {'a': Tensor([[3.]]), 'b': Tensor([[1.]])}
    """
    jac = jacobian(f, argnums, mode="reverse", has_aux=has_aux)
    jac.__name__ = f"jacrev({getattr(f, '__name__', 'f')})"
    return jac


def hessian(f, argnums=0):
    """The Hessian of scalar ``f``, shaped ``x.shape + x.shape`` (forward over reverse, batched).

    A tuple ``argnums`` gives the nested blocks ``((H00, H01), (H10, H11))``, as in JAX.

    >>> import gradtape as gt
    >>> gt.hessian(lambda x: gt.sum(x ** 3))(gt.asarray([1.0, 2.0]))
    Tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    def h(*args):
        return jacobian(jacobian(f, argnums, mode="reverse"), argnums, mode="forward")(*args)
    h.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return h


def hvp(f, x, v):
    """Hessian-vector product H(x) @ v of scalar ``f``, forward over reverse, without forming H.

    >>> import gradtape as gt
    >>> gt.hvp(lambda x: gt.sum(x ** 3), gt.asarray([1.0, 2.0]), gt.asarray([1.0, 0.0]))
    Tensor([6., 0.])
    """
    return jvp(grad(f), (x,), (v,))[1]

