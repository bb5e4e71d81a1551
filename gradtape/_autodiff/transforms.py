"""Function transforms (JAX style): grad, value_and_grad, vjp, jvp (true forward mode).

They compose: ``grad(grad(f))``, ``jvp(grad(f), ...)`` (forward-over-reverse),
``grad`` of a function that calls ``jvp``. An argument that is already being
differentiated by an outer transform is passed in through an identity op, so
the inner pass is recorded for the outer one.
"""
from __future__ import annotations

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
from .tape import gradients_or_zeros, head_gradients, reverse_jacobians

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp"]

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


def _check_real(x, what, which="an argument"):
    """Differentiation is w.r.t. real floating arrays only (complex: not built yet; integers: no derivative)."""
    name = dtype_name(x.dtype)
    if name.startswith("complex"):
        raise TypeError(f"gradtape.{what}: {which} is complex ({name}, shape {x.shape}); complex "
                        f"differentiation is not supported yet: differentiate w.r.t. the real and imaginary "
                        f"parts as separate real arrays")
    if not is_float(x.dtype):
        raise TypeError(f"gradtape.{what}: cannot differentiate with respect to {which} of dtype {x.dtype} "
                        f"(shape {x.shape}); pass a floating-point array")


def _split_aux(res, has_aux, what):
    """``(out, aux)`` of a has_aux function's result, ``(res, None)`` without has_aux."""
    if not has_aux:
        return res, None
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        got = f"a {type(res).__name__} of length {len(res)}" if isinstance(res, (tuple, list)) else type(res).__name__
        raise TypeError(f"gradtape.{what}: has_aux=True expects the function to return a pair (output, aux), "
                        f"got {got}")
    return res[0], res[1]


def _output_leaf(v):
    return not isinstance(v, (tuple, list))


def _flatten(out):
    """Leaves and structure of a function's outputs: nested tuples and lists (anything else, a dict or None
    included, is one leaf; the full pytree semantics of ``_tree`` are for a later issue)."""
    return _tree.flatten(out, is_leaf=_output_leaf)


def _out_tensors(outs, what):
    got = []
    for o in outs:
        if not isinstance(o, Tensor):
            if not isinstance(o, (int, float)):
                raise TypeError(f"gradtape.{what}: the function must return tensors (or tuples/lists of them), "
                                f"got {type(o).__name__}")
            o = asarray(o)
        got.append(o)
    return got


def _call(f, args, nums, what):
    args = list(args)
    # nested: an enclosing transform may differentiate our result, through the arguments or through what
    # the function closes over (an outer transform's variable): then the pass is recorded
    nested = bool(state.levels) or (state.enabled and (state.recording > 0 or _reverse.depth > 0))
    for i in nums:
        args[i], outer = _source(args[i], what, i)
        nested = nested or outer
    _reverse.depth += 1
    try:
        with scoped(enabled=True):
            out = f(*args)
    finally:
        _reverse.depth -= 1
    return args, out, nested


def _scalar_out(out, what):
    if not isinstance(out, Tensor):
        raise TypeError(f"gradtape.{what}: the function must return a scalar Tensor, got {type(out).__name__}")
    if out.shape != ():
        raise ValueError(f"gradtape.{what}: the function returned shape {out.shape}, but {what} needs a scalar "
                         f"output; use gt.vjp for a vector-Jacobian product or gt.jacobian for the full Jacobian")
    name = dtype_name(out.dtype)
    if name not in ("float16", "float32", "float64"):
        raise TypeError(f"gradtape.{what} requires real-valued outputs (float dtype), but the function returned "
                        f"dtype {name}" + ("; complex differentiation is not supported yet" if "complex" in name else
                                           "; integer and boolean results (argmax, comparisons) have no gradient"))


def _grads(out, srcs, create):
    if not out._requires_grad:   # output does not depend on the arguments
        return gradients_or_zeros([None] * len(srcs), srcs)
    head = wrap(out.backend.xp.ones_like(out.data), out.backend) if create else out.backend.xp.ones_like(out.data)
    return gradients_or_zeros(_engine.run([out], [head], retain_graph=create, create_graph=create, sources=srcs), srcs)


def value_and_grad(f, argnums=0, has_aux=False):
    """``f``'s value and its gradient w.r.t. the ``argnums`` arguments.

    >>> import gradtape as gt
    >>> gt.value_and_grad(lambda x: (x * x).sum())(gt.asarray([1.0, 2.0]))
    (Tensor(5.), Tensor([2., 4.]))
    """
    def vg(*args):
        single, nums = _argnums(argnums, len(args))
        args2, res, nested = _call(f, args, nums, "grad")
        out, aux = _split_aux(res, has_aux, "grad")
        _scalar_out(out, "grad")
        gs = _grads(out, [args2[i] for i in nums], nested)
        g = gs[0] if single else tuple(gs)
        val = out if nested else wrap(out.data, out.backend)
        return ((val, aux), g) if has_aux else (val, g)
    vg.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return vg


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``f`` w.r.t. argument ``argnums`` (an int, or a tuple giving a tuple).

    >>> import gradtape as gt
    >>> gt.grad(lambda x: gt.sum(gt.sin(x)))(gt.asarray([0.0]))
    Tensor([1.])
    """
    vg = value_and_grad(f, argnums, has_aux)

    def g(*args):
        (val, g_) = vg(*args)
        return (g_, val[1]) if has_aux else g_
    g.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return g


def vjp(f, *primals, has_aux=False):
    """``(out, f_vjp)``: ``f_vjp(ct)`` gives the cotangent of every primal (a tuple).

    >>> import gradtape as gt
    >>> y, f_vjp = gt.vjp(lambda x: 2 * x, gt.asarray([1.0, 2.0]))
    >>> f_vjp(gt.asarray([1.0, 1.0]))
    (Tensor([2., 2.]),)
    """
    args, res, nested = _call(f, primals, tuple(range(len(primals))), "vjp")
    out, aux = _split_aux(res, has_aux, "vjp")
    outs = list(out) if isinstance(out, (tuple, list)) else [out]

    def f_vjp(ct):
        cts = list(ct) if isinstance(ct, (tuple, list)) else [ct]
        if len(cts) != len(outs):
            raise ValueError(f"gradtape.vjp: got {len(cts)} cotangents for {len(outs)} outputs")
        roots, heads = [], []
        for o, c in zip(outs, cts):
            if not o._requires_grad:
                continue
            roots.append(o)
            heads.append(c)
        if not roots:
            return tuple(gradients_or_zeros([None] * len(args), args))
        create = nested or any(isinstance(c, Tensor) and (c._requires_grad or c.tangents is not None) for c in cts)
        got = _engine.run(roots, head_gradients(roots, heads, create), retain_graph=True, create_graph=create,
                          sources=list(args))
        return tuple(gradients_or_zeros(got, args))

    shown = out if nested else (type(out)(wrap(o.data, o.backend) for o in outs) if isinstance(out, (tuple, list))
                                else wrap(out.data, out.backend))
    return (shown, f_vjp, aux) if has_aux else (shown, f_vjp)


def jvp(f, primals, tangents, has_aux=False):
    """Forward mode: ``(f(*primals), J @ tangents)`` from the JVP rules, in one pass.

    >>> import gradtape as gt
    >>> gt.jvp(gt.sin, (gt.asarray([0.0]),), (gt.asarray([2.0]),))
    (Tensor([0.]), Tensor([2.]))
    """
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
    level = next(_level)
    args = []
    for i, (x, t) in enumerate(zip(primals, tangents)):
        x = x if isinstance(x, Tensor) else asarray(x)
        _check_real(x, "jvp", f"primal {i}")
        if not isinstance(t, Tensor):
            t = asarray(t, dtype=x.dtype, device=x.device) if isinstance(t, (int, float, list, tuple)) else \
                asarray(t, device=x.device)
        if (t.shape[t.ndim - x.ndim:] if batch else t.shape) != x.shape or t.ndim < x.ndim:
            raise ValueError(f"gradtape.jvp: tangent {i} has shape {t.shape} but primal {i} has shape {x.shape}; "
                             f"each tangent must have its primal's shape")
        if t.backend is not x.backend:
            raise TypeError(f"gradtape.jvp: tangent {i} on {t.device!r} but primal {i} on {x.device!r}")
        if t.dtype != x.dtype:
            raise TypeError(f"gradtape.jvp: tangent {i} has dtype {t.dtype} but primal {i} has dtype {x.dtype}; "
                            f"each tangent must have its primal's dtype")
        w = _alias(x) if (x._requires_grad or x.tangents is not None) else wrap(x.data, x.backend)
        w.tangents = dict(w.tangents or ())
        w.tangents[level] = t
        args.append(w)
    with scoped(levels=state.levels + (level,)):
        res = f(*args)
    out, aux = _split_aux(res, has_aux, "jvp")
    outs, spec = _flatten(out)
    outs = _out_tensors(outs, "jvp")
    lead = tuple(tangents[0].shape[:tangents[0].ndim - asarray(primals[0]).ndim]) if batch and tangents else ()
    touts = []
    for o in outs:          # read every tangent before clearing any: an output may be returned twice
        t = o.tangents.get(level) if o.tangents else None
        if t is None:
            t = wrap(o.backend.xp.zeros(lead + tuple(o.data.shape), dtype=o.data.dtype), o.backend)
        touts.append(t)
    for o in outs:
        if o.tangents and level in o.tangents:
            o.tangents = {k: v for k, v in o.tangents.items() if k != level} or None
    if not _outer(primals + tangents):      # nobody differentiates the result: hand back plain values
        outs, touts = [_plain(o) for o in outs], [_plain(t) for t in touts]
    out, tout = _tree.unflatten(spec, outs), _tree.unflatten(spec, touts)
    return (out, tout, aux) if has_aux else (out, tout)


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
    Jacobians, and a function returning a tuple (or list) of outputs gives one
    such result per output.

    >>> import gradtape as gt
    >>> A = gt.asarray([[1.0, 2.0], [3.0, 4.0]])
    >>> gt.jacobian(lambda x: A @ x)(gt.asarray([1.0, 1.0]))
    Tensor([[1., 2.],
            [3., 4.]])
    >>> J_sin, J_cos = gt.jacobian(lambda x: (gt.sin(x), gt.cos(x)))(gt.asarray([0.0]))
    >>> J_sin, J_cos
    (Tensor([[1.]]), Tensor([[-0.]]))
    """
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"gradtape.jacobian: mode must be 'auto', 'forward' or 'reverse', got {mode!r}")

    def jac(*args):
        single, nums = _argnums(argnums, len(args))
        args = list(args)
        for i in nums:
            args[i] = args[i] if isinstance(args[i], Tensor) else asarray(args[i])
            _check_real(args[i], "jacobian", f"argument {i}")
        xs = [args[i] for i in nums]
        n_in = sum(x.size for x in xs)
        use_fwd = mode == "forward"
        if mode != "forward":
            args2, res, nested = _call(f, args, nums, "jacobian")
            out, aux = _split_aux(res, has_aux, "jacobian")
            outs, spec = _flatten(out)
            outs = _out_tensors(outs, "jacobian")
            use_fwd = mode == "auto" and n_in < sum(o.size for o in outs)
        if use_fwd:
            out, tout, aux = _jac_fwd(f, args, nums, xs, n_in, has_aux)
            outs, spec = _flatten(out)
            touts, _ = _flatten(tout)
            rows = []
            for o, t in zip(outs, touts):
                Js, lo = [], 0
                for x in xs:
                    Js.append(_numerator_layout(t[lo:lo + x.size], o.shape, x.shape))
                    lo += x.size
                rows.append(Js)
        else:
            rows = reverse_jacobians(outs, [args2[i] for i in nums], create=nested)
        if not _outer(args):
            rows = [[_plain(J) for J in Js] for Js in rows]
        J = _tree.unflatten(spec, [Js[0] if single else tuple(Js) for Js in rows])
        return (J, aux) if has_aux else J
    jac.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return jac


def _jac_fwd(f, args, nums, xs, n_in, has_aux):
    """One batched JVP pass with an identity of tangents: (out, tangents (n_in,) + out shapes, aux)."""
    tans, lo = [], 0
    for x in xs:        # one identity block per argument, all in one batch
        e = eye(n_in, dtype=x.dtype, device=x.device)
        tans.append(reshape(e[:, lo:lo + x.size], (n_in,) + x.shape))
        lo += x.size

    def g(*ws):
        a = list(args)
        for i, w in zip(nums, ws):
            a[i] = w
        return f(*a)
    out, tout, *rest = _jvp(g, xs, tans, has_aux=has_aux, batch=True)
    return out, tout, (rest[0] if has_aux else None)


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

