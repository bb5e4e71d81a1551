"""Transforms called inside ``gt.vmap``: per-example ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``.

Inside vmap the arguments are tracers: per-example views of batched values, opaque to autodiff. A transform
called there runs on the batched values underneath them (one leading batch axis per active vmap level):

- every differentiated argument is lifted to every active level (an unbatched one is broadcast: its
  per-example derivative may still differ from example to example, through a batched value the function
  reads) and peeled down to its batched value;
- the function runs on tracers re-wrapped around those values, and its outputs are peeled the same way;
- the transform itself runs once on the batched values: ``grad`` differentiates the *sum* over the batch of
  the per-example outputs (examples are independent under vmap, so that gradient, example by example, is
  each example's gradient), ``vjp``/``jvp`` push batched cotangents/tangents, ``jacobian`` pushes a basis per
  example in forward mode (``vmap`` of ``jvp`` over the basis);
- the results are wrapped back as tracers.

So ``gt.vmap(gt.grad(loss), in_axes=(None, 0, 0))(params, x, y)`` gives per-example gradients with one
batched forward and one batched reverse pass, and every transform nests inside any number of vmaps.
The transforms hand themselves in (``impl``): this module sits below them.

>>> import gradtape as gt
>>> w = gt.asarray([1.0, 2.0])
>>> xs = gt.asarray([[1.0, 0.0], [0.0, 3.0]])
>>> gt.vmap(gt.grad(lambda w, x: gt.sum(w * x) ** 2), in_axes=(None, 0))(w, xs)
Tensor([[ 2.,  0.],
        [ 0., 36.]])
"""
from __future__ import annotations

from .. import _tree
from .._api import asarray, eye, reshape, sum as _sum
from .._core.tensor import Tensor
from .._state import scoped, state
from .vmap import unwrap, vmap, wrap_batched

__all__ = ["active", "value_and_grad", "vjp", "jvp", "jacobian"]


def active():
    """Whether a transform called now runs inside gt.vmap (this thread)."""
    return bool(state.batch)


def _is_leaf(v):
    return isinstance(v, Tensor)


def _peel(x, levels):
    """The batched value behind ``x``: one leading axis per level, outermost first (broadcast where unbatched)."""
    if not isinstance(x, Tensor):
        x = asarray(x)
    for level, size in reversed(levels):
        x = unwrap(x, level, size)
    return x


def _wrap(x, levels):
    """The tracer of the innermost level around batched value ``x`` (the inverse of :func:`_peel`)."""
    for level, _ in levels:
        x = wrap_batched(x, level)
    return x


def _peel_tree(tree, levels):
    return _tree.tree_map(lambda v: _peel(v, levels) if isinstance(v, (Tensor, int, float)) and not isinstance(v, bool)
                     else v, tree)


def _wrap_tree(tree, levels):
    return _tree.tree_map(lambda v: _wrap(v, levels) if isinstance(v, Tensor) else v, tree)


def _nums(argnums, n):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    return tuple(a % n if -n <= a < n else a for a in nums)


def _lifted(args, nums, levels):
    """The arguments with the differentiated positions peeled to their batched values."""
    args = list(args)
    for i in nums:
        if isinstance(i, int) and 0 <= i < len(args):
            args[i] = _peel_tree(args[i], levels)
    return args


def _rewrapped(vals, nums, levels):
    vals = list(vals)
    for i in nums:
        vals[i] = _wrap_tree(vals[i], levels)
    return vals


def value_and_grad(impl, f, argnums, has_aux, args):
    """``impl`` (gt.value_and_grad) of ``f`` at tracer arguments: per-example values and gradients."""
    levels = state.batch
    nums = _nums(argnums, len(args))
    box = {}

    def g(*vals):
        with scoped(batch=levels):
            res = f(*_rewrapped(vals, nums, levels))
            if has_aux and not (isinstance(res, (tuple, list)) and len(res) == 2):
                return res          # the impl reports the has_aux error
            out, aux = (res[0], res[1]) if has_aux else (res, None)
            if not isinstance(out, Tensor) or out.shape != ():
                return res          # the impl reports a non-scalar output (its shape per example)
            box["out"] = peeled = _peel(out, levels)
            total = _sum(peeled)
        return (total, aux) if has_aux else total

    with scoped(batch=()):
        res = impl(g, argnums, has_aux=has_aux)(*_lifted(args, nums, levels))
    (val, aux), gs = res if has_aux else ((res[0], None), res[1])
    out = box["out"]
    if not val._requires_grad and out._requires_grad:   # the impl detached its value: nothing outer needs it
        out = out.detach()
    out = _wrap(out, levels)
    gs = _wrap_tree(gs, levels)
    return ((out, aux), gs) if has_aux else (out, gs)


def _on_batched(f, levels, has_aux):
    """``f`` as a function of the batched values: its arguments re-wrapped as tracers of ``levels``, its output
    (not its aux) peeled; a has_aux result that is not a pair goes back as it is, for the impl to report."""
    def g(*vals):
        with scoped(batch=levels):
            res = f(*[_wrap_tree(v, levels) for v in vals])
            if has_aux:
                if not isinstance(res, (tuple, list)) or len(res) != 2:
                    return res
                return _peel_tree(res[0], levels), res[1]
            return _peel_tree(res, levels)
    return g


def vjp(impl, f, primals, has_aux):
    """``impl`` (gt.vjp) of ``f`` at tracer primals: ``(out, f_vjp[, aux])``, f_vjp taking per-example
    cotangents (tracers or unbatched values)."""
    levels = state.batch

    g = _on_batched(f, levels, has_aux)

    with scoped(batch=()):
        res = impl(g, *[_peel_tree(p, levels) for p in primals], has_aux=has_aux)
    out_u, f_vjp_u = res[0], res[1]

    def f_vjp(ct):
        ct_u = _peel_tree(ct, levels)
        with scoped(batch=()):
            gs = f_vjp_u(ct_u)
        return tuple(_wrap_tree(g_, levels) for g_ in gs)

    out = _wrap_tree(out_u, levels)
    return (out, f_vjp, res[2]) if has_aux else (out, f_vjp)


def jvp(impl, f, primals, tangents, has_aux):
    """``impl`` (gt.jvp) of ``f`` at tracer primals/tangents: per-example outputs and output tangents."""
    levels = state.batch

    g = _on_batched(f, levels, has_aux)

    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        with scoped(batch=()):
            return impl(g, primals, tangents, has_aux=has_aux)     # the impl reports the error
    ps = [_peel_tree(p, levels) for p in primals]
    ts = []
    for p, t in zip(primals, tangents):     # a Python-number tangent takes its primal's dtype, as outside vmap
        ts.append(_tree.tree_map(lambda v: asarray(v, dtype=p.dtype) if isinstance(p, Tensor) and isinstance(v, (int, float))
                            else v, t) if isinstance(p, Tensor) else t)
    ts = [_peel_tree(t, levels) for t in ts]
    with scoped(batch=()):
        res = impl(g, tuple(ps), tuple(ts), has_aux=has_aux)
    out, tout = _wrap_tree(res[0], levels), _wrap_tree(res[1], levels)
    return (out, tout, res[2]) if has_aux else (out, tout)


def jacobian(jvp_impl, f, argnums, has_aux, args):
    """The per-example Jacobian (``out.shape + x.shape`` per example, numerator layout) of ``f`` at tracer
    arguments: forward mode, ``vmap`` of ``jvp`` over a basis of each differentiated leaf. The structure is
    JAX's: the output's tree over (a tuple of, for a tuple ``argnums``) the argument's tree."""
    single = isinstance(argnums, int)
    nums = _nums(argnums, len(args))
    aux_box = {}
    per_num = []
    for i in nums:
        leaves, spec = _tree.tree_flatten(args[i], is_leaf=_is_leaf)
        leaves = [x if isinstance(x, Tensor) else asarray(x) for x in leaves]
        cols = []
        for k, x in enumerate(leaves):
            n = x.size
            basis = reshape(eye(n, dtype=x.dtype, device=x.device), (n,) + tuple(x.shape))

            def push(e, i=i, k=k, leaves=leaves, spec=spec):
                tans = [_zeros_tree(a) for a in args]
                tl = [_zeros_like(v) for v in leaves]
                tl[k] = e
                tans[i] = _tree.tree_unflatten(spec, tl)
                ps = list(args)
                ps[i] = _tree.tree_unflatten(spec, leaves)
                res = jvp(jvp_impl, f, tuple(ps), tuple(tans), has_aux)
                if has_aux:
                    aux_box.setdefault("aux", res[2])
                return res[1]

            tout = vmap(push, out_axes=-1)(basis)
            cols.append((tout, x.shape))
        per_num.append((cols, spec))
    # rebuild: out tree over in tree
    first = per_num[0][0][0][0]
    out_leaves, out_spec = _tree.tree_flatten(first, is_leaf=_is_leaf)
    rows = []
    for o in range(len(out_leaves)):
        per_arg = []
        for cols, spec in per_num:
            js = []
            for tout, xshape in cols:
                t = _tree.tree_flatten(tout, is_leaf=_is_leaf)[0][o]
                js.append(reshape(t, tuple(t.shape[:-1]) + tuple(xshape)))
            per_arg.append(_tree.tree_unflatten(spec, js))
        rows.append(per_arg[0] if single else tuple(per_arg))
    J = _tree.tree_unflatten(out_spec, rows)
    if has_aux:
        return J, aux_box.get("aux")
    return J


def _zeros_like(v):
    from_t = v if isinstance(v, Tensor) else asarray(v)
    return from_t * 0


def _zeros_tree(tree):
    return _tree.tree_map(lambda v: _zeros_like(v) if isinstance(v, (Tensor, int, float)) and not isinstance(v, bool)
                     else v, tree)

