"""Differential fuzzing of ``gt.vmap``: random programs of the op table, mapped over a random batch.

A program of :mod:`tests.difftest.programs` computes on one example. ``case(prog)`` draws, from the
program's seed, a batch size ``B``, an ``in_axes`` entry per input (an axis, negative or not, or None for
an input shared by every example; at least one is mapped), an ``out_axes`` entry per output, whether the
inputs travel as one dict argument (``in_axes`` then a dict prefix), and ``B`` example values per mapped
input (example 0 is the program's own input, the others convex mixes of its elements, pulled back towards it
where a value computed from them leaves the domain the generator chose: :func:`_in_domains`). ``check(prog)``
then compares, in float64:

forward     ``gt.vmap(program, in_axes, out_axes)`` with a Python loop of per-example gradtape calls
            stacked at ``out_axes``, and with ``jax.vmap`` of the JAX translation of the program
grad        ``gt.grad`` of ``L = sum_i sum(vmap(program)(xs)_i * W_i)`` w.r.t. every input, with the loop
            (per-example gradients stacked at the input's axis; summed for a shared input) and ``jax.grad``
vmap_grad   per-example gradients ``gt.vmap(gt.grad(L_example))``, the weights mapped too, with the loop and
            ``jax.vmap(jax.grad(...))``
vmap_jvp    ``gt.vmap`` of ``gt.jvp(program)`` (tangents mapped as the primals), with ``jax.vmap(jax.jvp)``
            (or the loop where the program has no JAX translation)
nested      ``gt.vmap(gt.vmap(program, in_axes, out_axes))`` over an outer batch of 2 on axis 0 of every input
            (the inner-shared ones too), with a loop over both levels and ``jax.vmap(jax.vmap(...))``
jacobian    ``gt.jacobian(vmap(program)[0], mode=...)`` in reverse and forward mode w.r.t. every input, with
            ``jax.jacrev(jax.vmap(...))`` (small programs only: JAC_MAX elements in and out; JAX only)

A program whose JAX translation JAX refuses is still compared with the loop (``Result.jax`` says why not).
Command line::

    python -m tests.difftest.vmap --n 500 --seed 0 [--kind general|linalg] [--checks forward,grad]

A mismatch is shrunk (the runner's program variants, this module's check) and printed as gradtape code with
its vmap configuration.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import programs as P
from . import runner as R
from .oracles import SPECS, call, conv, np_key

CHECKS = ("forward", "grad", "vmap_grad", "vmap_jvp", "nested", "jacobian")
JAC_MAX = 96           # the "jacobian" check runs where the batched inputs and the first output are this small
# gradtape's documented refusals inside vmap (as torch.func's): an in-place write of a batched value into a
# tensor that is not batched (or batched by an outer vmap only). JAX's functional .at[].set has no such case; the program is then "invalid".
REFUSED = ("writes a value batched by gt.vmap into a tensor that is not batched",
           "writes a value batched by an inner vmap into a tensor of an outer one")


# ---- the JAX translation of the ops the shared table gives only a torch oracle for ---------------------------------
def _jkey(p):
    return conv(_NumpyConst, p)


class _NumpyConst:
    """An adapter for ``conv``: Const arrays as plain NumPy arrays (static under jax.vmap and jit)."""

    @staticmethod
    def const(a):
        return np.array(a)


def _take(J, a, p):
    x, idx, ax = a[0], p["idx"].a, p["axis"]
    if ax is None:
        x, ax = J.jnp.reshape(x, (-1,)), 0
    return J.jnp.take(x, idx % x.shape[ax], axis=ax)


def _setitem(J, a, p):
    x, v = a
    key = np_key(p["key"])
    sub = np.zeros(x.shape)[key].shape
    while v.ndim > len(sub) and v.shape[0] == 1:      # NumPy drops leading unit axes of the value
        v = v[0]
    return (x * 1.0).at[key].set(J.jnp.broadcast_to(v, sub))


def _lse(J, a, p):
    x = a[0]
    if x.ndim == 0:
        return x + 0.0
    return J.jax.scipy.special.logsumexp(x, axis=p.get("axis"), keepdims=p.get("keepdims", False))


def _ce(J, a, p):
    x, lab = a[0], p["labels"].a
    ls = J.jax.nn.log_softmax(x, axis=-1)
    return -J.jnp.mean(J.jnp.take_along_axis(ls, lab[..., None], axis=-1))


def _pick_sq(res, i, vals=0):
    return res[i] if i == vals else res[i] * res[i]


def _qr(J, a, p):
    q, r = J.jnp.linalg.qr(a[0])
    s = J.jax.lax.stop_gradient(J.jnp.sign(J.jnp.diagonal(r, axis1=-2, axis2=-1)))
    return q * s[..., None, :] if p["pick"] == 0 else r * s[..., :, None]


def _inv_boxcox(J, a, p, one_p=False):
    jnp = J.jnp
    y, lm = jnp.broadcast_arrays(*a)
    lm_s = jnp.where(lm == 0, 1.0, lm)
    v = jnp.where(lm == 0, jnp.exp(y), jnp.power(1 + lm_s * y, 1 / lm_s))
    return v - 1 if one_p else v


def _huber(J, a, p):
    d, r = J.jnp.broadcast_arrays(*a)
    return J.jnp.where(J.jnp.abs(r) <= d, 0.5 * r * r, d * (J.jnp.abs(r) - 0.5 * d))


JAX_EXTRA = {
    "getitem": lambda J, a, p: a[0][np_key(p["key"])],
    "setitem": _setitem,
    "take": _take,
    "take_along_axis": lambda J, a, p: J.jnp.take_along_axis(a[0], p["idx"].a % a[0].shape[p["axis"]], axis=p["axis"]),
    "nn.logsumexp": _lse,
    "nn.softmax": lambda J, a, p: J.jax.nn.softmax(a[0], axis=p["axis"]),
    "nn.log_softmax": lambda J, a, p: J.jax.nn.log_softmax(a[0], axis=p["axis"]),
    "nn.cross_entropy": _ce,
    "nn.cross_entropy_probs": lambda J, a, p: -J.jnp.mean(J.jnp.sum(
        J.jax.nn.softmax(a[1], axis=-1) * J.jax.nn.log_softmax(a[0], axis=-1), axis=-1)),
    "nn.relu": lambda J, a, p: J.jnp.where(a[0] > 0, a[0], 0.0),
    "linalg.eigh": lambda J, a, p: _pick_sq(J.jnp.linalg.eigh(a[0]), p["pick"]),
    "linalg.svd": lambda J, a, p: _pick_sq(J.jnp.linalg.svd(a[0], full_matrices=False), p["pick"], vals=1),
    "linalg.qr": _qr,
    "linalg.slogdet": lambda J, a, p: J.jnp.linalg.slogdet(a[0])[1],
    "astype": lambda J, a, p: a[0].astype(J.jnp.float32).astype(J.jnp.float64),
    "clip_tensor": lambda J, a, p: J.jnp.clip(a[0], **{p["which"]: a[1]}),
    "where": lambda J, a, p: J.jnp.where(a[0] > 0, a[1], a[2]),
    "where_scalar": lambda J, a, p: J.jnp.where(a[0] > 0, a[1], p["c"]),
    "concat": lambda J, a, p: J.jnp.concatenate(list(a), axis=p["axis"]),
    "stack": lambda J, a, p: J.jnp.stack(list(a), axis=p["axis"]),
    "unstack": lambda J, a, p: J.jnp.moveaxis(a[0], p["axis"], 0)[p["pick"]],
    "meshgrid": lambda J, a, p: J.jnp.meshgrid(a[0], a[1], indexing=p["indexing"])[p["pick"]],
    "broadcast_arrays": lambda J, a, p: J.jnp.broadcast_arrays(a[0], a[1])[p["pick"]],
    "repeat": lambda J, a, p: J.jnp.repeat(a[0] if p.get("axis") is not None else J.jnp.reshape(a[0], (-1,)),
                                           _jkey(p["repeats"]), axis=p.get("axis") if p.get("axis") is not None
                                           else 0),
    "special.log_expit": lambda J, a, p: J.jax.nn.log_sigmoid(a[0]),
    "special.exp10": lambda J, a, p: J.jnp.power(10.0, a[0]),
    "special.exprel": lambda J, a, p: J.jnp.expm1(a[0]) / a[0],
    "special.huber": _huber,
    "special.pseudo_huber": lambda J, a, p: a[0] * a[0] * (J.jnp.sqrt(1 + (a[1] / a[0]) ** 2) - 1),
    "special.inv_boxcox": _inv_boxcox,
    "special.inv_boxcox1p": lambda J, a, p: _inv_boxcox(J, a, p, True),
}


def jcall(op, J, args, p):
    f = JAX_EXTRA.get(op.name)
    return f(J, args, p) if f is not None else call(op, J, args, p)


def jrun(prog, J, leaves):
    env = dict(zip(prog.inputs, leaves))
    for ins in prog.instrs:
        env[ins.out] = jcall(SPECS[ins.op], J, [env[a] for a in ins.args], ins.params)
    return tuple(env[o] for o in prog.outputs)


# ---- the batch configuration of a program --------------------------------------------------------------------------
@dataclass
class Case:
    B: int
    in_axes: list            # per input: an int or None
    out_axes: list           # per output: an int
    as_dict: bool            # the inputs as one dict argument {name: array}
    batched: list            # per input: the batched NumPy array (the shared one where in_axes is None)
    examples: list           # per input: the B example arrays (the same array B times where shared)
    W: list = field(default_factory=list)      # per output: the loss weights, of the batched output's shape
    V: list = field(default_factory=list)      # per input: the tangents, of the batched input's shape
    outer: list = field(default_factory=list)  # per input: 2 batched arrays stacked on a new axis 0 ("nested")

    def describe(self, prog):
        names = list(prog.inputs)
        ia = {n: a for n, a in zip(names, self.in_axes)}
        return (f"B={self.B} in_axes={(ia,) if self.as_dict else tuple(self.in_axes)!r} "
                f"out_axes={tuple(self.out_axes)!r} (outputs {prog.outputs}, inputs as "
                f"{'one dict' if self.as_dict else 'positional arguments'})")


def _examples(rng, a, B):
    """B arrays of a's shape: a itself, then convex mixes of a's elements (inside any interval a lies in)."""
    out = [a]
    flat = a.reshape(-1)
    for _ in range(B - 1):
        t = rng.uniform(0.0, 0.6, size=a.shape)
        other = flat[rng.permutation(flat.size)].reshape(a.shape) if flat.size else a
        out.append(np.asarray((1 - t) * a + t * other, dtype=np.float64))
    return out


def _nonfinite(prog, leaves):
    """{value name: number of NaN/inf elements} of the program on one example (None where gradtape refuses)."""
    import gradtape as gt
    env = {}
    try:
        with gt.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            P.run(prog, R.lib("gt", "cpu"), [gt.asarray(a) for a in leaves], env)
    except Exception:
        return None
    return {k: int(np.size(v) - np.isfinite(gt.to_numpy(v)).sum()) for k, v in env.items()
            if hasattr(v, "shape") and gt.to_numpy(v).dtype.kind in "fc"}


def _in_domains(prog, exs, base, shared=()):
    """The examples ``exs`` (per input, B arrays) kept inside the domains the generator chose for the values
    of ``base`` (per input, B arrays in the domains: the program's own input, or a batch already checked):
    mixes keep each input inside its interval, not the values computed from them (a norm of mixed elements
    may leave acos's), so an example whose values have more NaN/inf elements than ``base``'s is pulled
    towards it (a quarter of the way left, three times), then replaced by it. The inputs in ``shared`` (the
    same array in every example) are not pulled per example: where an example leaves the domains even with
    its own inputs replaced, the shared ones are replaced by ``base``'s, for every example, and all checked
    again. Deterministic: no draws."""
    B = len(exs[0]) if exs else 0
    out = [list(e) for e in exs]
    own = [i for i in range(len(out)) if i not in shared]
    ref = [_nonfinite(prog, [b[k] for b in base]) for k in range(B)]

    def inside(k):
        got = _nonfinite(prog, [e[k] for e in out])
        return ref[k] is None or (got is not None and all(got.get(n, 0) <= m for n, m in ref[k].items()))
    for k in range(B):
        for _ in range(3):
            if inside(k):
                break
            for i in own:
                out[i][k] = base[i][k] + (out[i][k] - base[i][k]) * 0.25
        else:
            if not inside(k):
                for i in own:
                    out[i][k] = base[i][k]
                if shared and not inside(k):
                    for i in shared:
                        out[i] = list(base[i])
                    return _in_domains(prog, out, base)
    return out


def _rng(prog, what, name):
    """The random stream of one input or output, by its name: shrinking (dropping other inputs, ops or outputs)
    leaves each remaining value's axis and example values as they were."""
    num = int(name[1:]) if name[1:].isdigit() else sum(map(ord, name))
    return np.random.default_rng([prog.seed, 1729, what, num])


def case(prog, outs):
    """The vmap configuration of prog (``outs``: its outputs' names and ranks), from its seed and names."""
    rng = np.random.default_rng([prog.seed, 1729])
    B = int(rng.choice([1, 2, 3, 3, 4, 5]))
    as_dict = bool(rng.random() < 0.3)
    names = list(prog.inputs)
    rngs = {n: _rng(prog, 0, n) for n in names}
    in_axes = []
    for n in names:
        nd = prog.inputs[n].ndim
        r = rngs[n]
        in_axes.append(None if r.random() < 0.25 else int(r.integers(-nd - 1, nd + 1)))
    if all(a is None for a in in_axes):
        in_axes[0] = 0
    c = Case(B, in_axes, [], as_dict, [], [])
    draws = []
    for n, ax in zip(names, in_axes):
        a, r = np.asarray(prog.inputs[n], dtype=np.float64), rngs[n]
        ex = [a] * B if ax is None else _examples(r, a, B)
        batched = a if ax is None else np.ascontiguousarray(np.moveaxis(np.stack(ex), 0, ax))
        draws.append((ex, r.uniform(-1.0, 1.0, size=batched.shape), _examples(r, batched, 2)[1]))
    exs = _in_domains(prog, [d[0] for d in draws], [[a] * B for a in prog.inputs.values()])     # (shared: a * B)
    for ex, (_, v, _), ax in zip(exs, draws, in_axes):
        c.examples.append(ex)
        c.batched.append(ex[0] if ax is None else np.ascontiguousarray(np.moveaxis(np.stack(ex), 0, ax)))
        c.V.append(v)
    # the nested check's second outer example: a mix of the batch, checked example by example the same way
    mix = [d[2] for d in draws]
    per = lambda arrs: [[a if ax is None else np.take(a, k, axis=ax) for k in range(B)]     # noqa: E731
                        for a, ax in zip(arrs, in_axes)]
    shared = [i for i, ax in enumerate(in_axes) if ax is None]
    inner = _in_domains(prog, per(mix), per(c.batched), shared=shared)
    for k, (ex, ax) in enumerate(zip(inner, in_axes)):
        second = ex[0] if ax is None else np.ascontiguousarray(np.moveaxis(np.stack(ex), 0, ax))
        c.outer.append(np.stack([c.batched[k], second]))
    for name, nd in outs:
        r = _rng(prog, 1, name)
        ax = int(r.integers(-nd - 1, nd + 1))
        c.out_axes.append(ax)
        c.W.append(ax)       # the weights' shape needs the output's shape: filled in by prepare
    return c


def _small(c):
    return sum(a.size for a in c.batched) <= JAC_MAX and c.W and np.size(c.W[0]) <= JAC_MAX


def _stack_at(arrs, ax):
    return np.moveaxis(np.stack(arrs), 0, ax)


# ---- the three computations: gradtape vmap, the gradtape loop, JAX ----------------------------------------------------
def _gt_fn(prog, c):
    """The program as a function of the vmap arguments (positional arrays or one dict), gradtape side."""
    GL = R.lib("gt", "cpu")
    names = list(prog.inputs)
    if c.as_dict:
        return lambda d: P.run(prog, GL, [d[n] for n in names])
    return lambda *xs: P.run(prog, GL, list(xs))


def _axes_arg(prog, c, axes=None):
    axes = c.in_axes if axes is None else axes
    if c.as_dict:
        return ({n: a for n, a in zip(prog.inputs, axes)},)
    return tuple(axes)


def _pack(prog, c, xs):
    return (dict(zip(prog.inputs, xs)),) if c.as_dict else tuple(xs)


def _unpack(prog, c, grads):
    """Gradients w.r.t. the packed arguments as a list per input."""
    if c.as_dict:
        g = grads[0] if isinstance(grads, tuple) else grads
        return [g[n] for n in prog.inputs]
    return list(grads) if isinstance(grads, tuple) else [grads]


def loop_ref(prog, c, which):
    """The per-example gradtape loop: outputs, grad of L, per-example gradients, per-example JVPs (NumPy)."""
    import gradtape as gt
    GL = R.lib("gt", "cpu")
    n = len(prog.inputs)
    outs_b, grads_b, jvps_b = [], [], []
    for b in range(c.B):
        xs = [gt.asarray(e[b]) for e in c.examples]
        ws = [gt.asarray(np.take(w, b, axis=ax)) for w, ax in zip(c.W, c.out_axes)]
        outs_b.append([gt.to_numpy(o) for o in P.run(prog, GL, xs)])
        if "grad" in which or "vmap_grad" in which:
            def loss(*a):
                return _sum_loss(gt, P.run(prog, GL, list(a)), ws)
            g = gt.grad(loss, argnums=tuple(range(n)))(*xs)
            grads_b.append([gt.to_numpy(t) for t in g])
        if "vmap_jvp" in which:
            vs = [gt.asarray(np.take(v, b, axis=ax) if ax is not None else v) for v, ax in zip(c.V, c.in_axes)]
            _, t = gt.jvp(lambda *a: P.run(prog, GL, list(a)), tuple(xs), tuple(vs))
            jvps_b.append([gt.to_numpy(u) for u in t])
    ref = {"forward": [_stack_at([o[i] for o in outs_b], ax) for i, ax in enumerate(c.out_axes)]}
    if grads_b:
        ref["grad"] = [_stack_at([g[i] for g in grads_b], ax) if ax is not None else
                       sum(g[i] for g in grads_b) for i, ax in enumerate(c.in_axes)]
        ref["vmap_grad"] = [np.stack([g[i] for g in grads_b]) for i in range(n)]
    if jvps_b:
        ref["vmap_jvp"] = [_stack_at([t[i] for t in jvps_b], ax) for i, ax in enumerate(c.out_axes)]
    if "nested" in which:
        per_outer = []
        for o in range(2):
            rows = []
            for b in range(c.B):
                xs = [gt.asarray(np.take(a[o], b, axis=ax) if ax is not None else a[o])
                      for a, ax in zip(c.outer, c.in_axes)]
                rows.append([gt.to_numpy(t) for t in P.run(prog, GL, xs)])
            per_outer.append([_stack_at([r[i] for r in rows], ax) for i, ax in enumerate(c.out_axes)])
        ref["nested"] = [np.stack([po[i] for po in per_outer]) for i in range(len(c.out_axes))]
    return ref


def _sum_loss(ns, outs, ws):
    total = None
    for o, w in zip(outs, ws):
        t = ns.sum(o * w)
        total = t if total is None else total + t
    return total


def jax_ref(prog, c, which):
    """jax.vmap of the JAX translation (jitted): the same four quantities, or a string saying why not."""
    J = R.lib("jax")
    jax, jnp = J.jax, J.jnp
    try:
        jax.eval_shape(lambda *a: jrun(prog, J, list(a)), *[jnp.asarray(a) for a in prog.arrays()])
    except Exception as e:
        return f"no JAX translation: {type(e).__name__}: {str(e)[:200]}"
    names = list(prog.inputs)
    n = len(names)
    if c.as_dict:
        f = lambda d: jrun(prog, J, [d[k] for k in names])   # noqa: E731
    else:
        f = lambda *xs: jrun(prog, J, list(xs))               # noqa: E731
    ia, oa = _axes_arg(prog, c), tuple(c.out_axes)
    W = [jnp.asarray(w) for w in c.W]
    V = [jnp.asarray(v) for v in c.V]

    def everything(*xs):
        vf = jax.vmap(f, in_axes=ia, out_axes=oa)
        args = _pack(prog, c, xs)
        out = {"forward": vf(*args)}
        if "grad" in which:
            L = lambda *a: _sum_loss(jnp, vf(*_pack(prog, c, a)), W)   # noqa: E731
            out["grad"] = jax.grad(L, argnums=tuple(range(n)))(*xs)
        if "vmap_grad" in which:
            def per_example(xs_, ws_):
                return jax.grad(lambda *a: _sum_loss(jnp, f(*_pack(prog, c, a)), ws_),
                                argnums=tuple(range(n)))(*xs_)
            out["vmap_grad"] = jax.vmap(per_example, in_axes=(tuple(c.in_axes), tuple(oa)))(xs, tuple(W))
        if "vmap_jvp" in which:
            def jv(xs_, vs_):
                return jax.jvp(lambda *a: f(*_pack(prog, c, a)), tuple(xs_), tuple(vs_))[1]
            out["vmap_jvp"] = jax.vmap(jv, in_axes=(tuple(c.in_axes), tuple(c.in_axes)), out_axes=oa)(xs, tuple(V))
        if "jacobian" in which and _small(c):
            f1 = lambda *a: jax.vmap(f, in_axes=ia, out_axes=oa)(*_pack(prog, c, a))[0]   # noqa: E731
            out["jacobian"] = jax.jacrev(f1, argnums=tuple(range(n)))(*xs)
        if "nested" in which:
            out["nested"] = jax.vmap(lambda *a: jax.vmap(f, in_axes=ia, out_axes=oa)(*_pack(prog, c, a)))(
                *[jnp.asarray(a) for a in c.outer])
        return out
    try:
        res = jax.jit(everything)(*[jnp.asarray(a) for a in c.batched])
    except Exception as e:
        return f"JAX refused the batched program: {type(e).__name__}: {str(e)[:200]}"
    return {k: [np.asarray(v) for v in vs] for k, vs in res.items()}


def gt_vmap(prog, c, which, check_name):
    """gradtape's value for one check (a list of tensors)."""
    import gradtape as gt
    f = _gt_fn(prog, c)
    n = len(prog.inputs)
    xs = [gt.asarray(a) for a in c.batched]
    ia, oa = _axes_arg(prog, c), tuple(c.out_axes)
    if check_name == "forward":
        return list(gt.vmap(f, in_axes=ia, out_axes=oa)(*_pack(prog, c, xs)))
    if check_name == "grad":
        W = [gt.asarray(w) for w in c.W]
        vf = gt.vmap(f, in_axes=ia, out_axes=oa)
        L = lambda *a: _sum_loss(gt, vf(*_pack(prog, c, a)), W)   # noqa: E731
        return list(gt.grad(L, argnums=tuple(range(n)))(*xs))
    if check_name == "vmap_grad":
        GL = R.lib("gt", "cpu")

        def per_example(*a):
            xs_, ws_ = a[:n], a[n:]
            return gt.grad(lambda *b: _sum_loss(gt, P.run(prog, GL, list(b)), ws_), argnums=tuple(range(n)))(*xs_)
        W = [gt.asarray(w) for w in c.W]
        return list(gt.vmap(per_example, in_axes=tuple(c.in_axes) + oa)(*xs, *W))
    if check_name == "vmap_jvp":
        GL = R.lib("gt", "cpu")
        V = [gt.asarray(v) for v in c.V]

        def jv(*a):
            return gt.jvp(lambda *b: P.run(prog, GL, list(b)), tuple(a[:n]), tuple(a[n:]))[1]
        return list(gt.vmap(jv, in_axes=tuple(c.in_axes) * 2, out_axes=oa)(*xs, *V))
    if check_name == "jacobian":
        vf = gt.vmap(f, in_axes=ia, out_axes=oa)
        f1 = lambda *a: vf(*_pack(prog, c, a))[0]   # noqa: E731
        rev = gt.jacobian(f1, argnums=tuple(range(n)), mode="reverse")(*xs)
        fwd = gt.jacobian(f1, argnums=tuple(range(n)), mode="forward")(*xs)
        return list(rev) + list(fwd)
    if check_name == "nested":
        inner = gt.vmap(f, in_axes=ia, out_axes=oa)
        outer = gt.vmap(lambda *a: inner(*_pack(prog, c, a)))
        return list(outer(*[gt.asarray(a) for a in c.outer]))
    raise ValueError(check_name)


# ---- one program --------------------------------------------------------------------------------------------------
@dataclass
class Result:
    status: str              # "ok", "invalid", "mismatch"
    check: str = ""
    detail: str = ""
    prog: object = None
    case: object = None
    jax: str = ""            # why the JAX comparison did not run ("" where it did)
    checks: tuple = CHECKS

    def report(self):
        if self.status != "mismatch":
            return self.status + (f" ({self.detail})" if self.detail else "")
        return (f"MISMATCH [{self.check}] kind={self.prog.kind} seed={self.prog.seed} vmap: "
                f"{self.case.describe(self.prog)}\n{self.detail}\n--- reproducer (one example) ---\n"
                f"{P.to_source(self.prog)}")


def prepare(prog):
    """(prog in float64, its Case) or a reason it cannot be batched (gradtape refuses the single example)."""
    import gradtape as gt
    prog = prog.copy(dtype="float64", sources=[])
    try:
        with gt.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = P.run(prog, R.lib("gt", "cpu"), [gt.asarray(a) for a in prog.arrays()])
    except Exception as e:
        return prog, f"gradtape refuses the single example: {type(e).__name__}: {e}"
    if not prog.inputs:
        return prog, "no inputs"
    c = case(prog, [(n, o.ndim) for n, o in zip(prog.outputs, outs)])
    for i, (n, o, ax) in enumerate(zip(prog.outputs, outs, c.out_axes)):
        shp = list(o.shape)
        shp.insert(ax % (o.ndim + 1), c.B)
        c.W[i] = _rng(prog, 2, n).uniform(-1.0, 1.0, size=shp)
    return prog, c


def check(prog, checks=CHECKS):
    """Compare gradtape's vmap of prog (and its derivatives) with the loop and with JAX; a Result."""
    prog, c = prepare(prog)
    if isinstance(c, str):
        return Result("invalid", detail=c, prog=prog)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loop = loop_ref(prog, c, checks)
        except Exception as e:
            return Result("invalid", detail=f"the per-example loop fails: {type(e).__name__}: {e}", prog=prog, case=c)
        jref = jax_ref(prog, c, checks)
        rt, at = R.tol(prog)
        try:
            for name in checks:
                if name == "jacobian":
                    if isinstance(jref, dict) and "jacobian" in jref:
                        got = R._guard(name, lambda: gt_vmap(prog, c, name, name))
                        n = len(prog.inputs)
                        for k, (g, w) in enumerate(zip(got, list(jref[name]) * 2)):
                            mode = "reverse" if k < n else "forward"
                            R.compare(f"jacobian mode={mode} vs jax.jacrev(jax.vmap): {list(prog.inputs)[k % n]}",
                                      g, w, rt * 10, at * 10)
                    continue
                got = R._guard(name, lambda: gt_vmap(prog, c, name, name))
                if len(got) != len(loop[name]):
                    raise R.Mismatch(name, f"{len(got)} results, the loop {len(loop[name])}")
                labels = prog.outputs if name in ("forward", "vmap_jvp", "nested") else list(prog.inputs)
                for lab, g, w in zip(labels, got, loop[name]):
                    R.compare(f"{name} vs the per-example loop: {lab}", g, w, rt * 10, at * 10)
                if isinstance(jref, dict):
                    for lab, g, w in zip(labels, got, jref[name]):
                        R.compare(f"{name} vs jax.vmap: {lab}", g, w, rt * 10, at * 10)
        except R.Mismatch as m:
            if any(r in m.detail for r in REFUSED):
                return Result("invalid", m.check, "refused (documented): " + m.detail.split("\n")[0], prog, c)
            return Result("mismatch", m.check, m.detail, prog, c, jref if isinstance(jref, str) else "", checks)
    return Result("ok", prog=prog, case=c, jax=jref if isinstance(jref, str) else "", checks=checks)


# ---- shrinking -----------------------------------------------------------------------------------------------------
def _same(cand, checks, want):
    try:
        r = check(cand, checks)
    except Exception:
        return False
    return r.status == "mismatch" and (r.check.split(":")[0], R._kind_of(r.detail)) == want


def shrink(result, budget=200):
    """A smaller program failing the same check the same way (the runner's variants, greedy)."""
    checks = (result.check.split(":")[0].split()[0],)
    prog = R._prune(result.prog)
    want = (result.check.split(":")[0], R._kind_of(result.detail))
    if not _same(prog, checks, want):
        prog = result.prog
    tries, improved = 0, True
    while improved and tries < budget:
        improved = False
        for cand in R._variants(prog):
            tries += 1
            if tries > budget:
                break
            cand = R._prune(cand)
            if not cand.instrs or R._size(cand) >= R._size(prog):
                continue
            if _same(cand, checks, want):
                prog, improved = cand, True
                break
    return check(prog, checks)


def programs(seed, kind="general"):
    return P.generate(seed, kind)


# ---- command line --------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.difftest.vmap", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="first seed; programs use seed, seed+1, ...")
    ap.add_argument("--kind", choices=("general", "linalg", "jacobian"), default="general")
    ap.add_argument("--checks", default=",".join(CHECKS), help=f"a comma-separated subset of {','.join(CHECKS)}")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--max-report", type=int, default=20)
    ap.add_argument("--out", default=None, help="append mismatches (shrunk reproducers) here")
    a = ap.parse_args(argv)
    checks = tuple(x for x in a.checks.split(",") if x)
    bad = [x for x in checks if x not in CHECKS]
    if bad:
        ap.error(f"unknown checks {bad}; choose from {CHECKS}")
    counts, by_check, seen, nojax = {"ok": 0, "invalid": 0, "mismatch": 0}, {}, set(), 0
    out = open(a.out, "a") if a.out else None
    t0 = time.time()
    for k in range(a.n):
        seed = a.seed + k
        try:
            r = check(programs(seed, a.kind), checks)
        except Exception as e:                     # a defect of the fuzzer itself: say so, go on
            counts["harness"] = counts.get("harness", 0) + 1
            print(f"HARNESS ERROR seed={seed}: {type(e).__name__}: {e}", flush=True)
            continue
        counts[r.status] += 1
        nojax += r.status == "ok" and bool(r.jax)
        if r.status != "mismatch":
            continue
        head = r.check.split(":")[0]
        by_check.setdefault(head, []).append(seed)
        key = (head, R._kind_of(r.detail), tuple(sorted({i.op for i in r.prog.instrs})))
        if key in seen or len(seen) >= a.max_report or len(by_check[head]) > 3:
            continue
        seen.add(key)
        s = r if a.no_shrink else shrink(r)
        text = (s if s.status == "mismatch" else r).report()
        print(text + "\n" + "=" * 100, flush=True)
        if out:
            out.write(f"\n## vmap seed {seed} kind {a.kind}\n```\n{text}\n```\n"
                      f"regression: {R.dump((s if s.status == 'mismatch' else r).prog)}\n")
            out.flush()
    dt = time.time() - t0
    print(f"vmap kind={a.kind} seeds {a.seed}..{a.seed + a.n - 1} checks {','.join(checks)}: {counts} "
          f"({nojax} ok without a JAX translation) in {dt:.0f}s ({1000 * dt / max(a.n, 1):.0f} ms/program)")
    for head, seeds in by_check.items():
        print(f"  {head}: {len(seeds)} programs, seeds {seeds[:20]}{' ...' if len(seeds) > 20 else ''}")
    if out:
        out.close()
    return 1 if counts["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
