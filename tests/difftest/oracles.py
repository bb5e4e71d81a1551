"""The op table of the differential fuzzer: every differentiable gradtape function, its oracle and its domain.

``SPECS`` maps a gradtape path (``"sin"``, ``"nn.softmax"``, ``"linalg.eigh"``,
``"special.xlogy"``) to an :class:`Op`: its kind (which generator draws it),
arity, input domain, how to call it on gradtape, on PyTorch (float64, through
``array_api_compat.torch`` where the array API name exists) and on JAX (only
where PyTorch lacks the function), and how to print it as gradtape code.

Every callable takes ``(L, args, p)``: ``L`` a library adapter (``.ns`` the
array namespace, ``.const(a)`` turning a NumPy constant into that library's
array), ``args`` the operand arrays and ``p`` the op's parameters (plain
Python values and :class:`Const` NumPy constants).

Gauge freedom and documented choices are handled here, not in the runner:
eigenvectors and singular vectors are compared squared (their signs are
arbitrary), QR is normalised to diag(R) > 0; the README kinks table
(abs'(0) = 0, relu'(0) = 0, maximum/minimum ties 1/2, max/min reduction ties
split evenly, ||x||_2 at 0 -> 0, sqrt'(0) = +inf, clip bounds inside) agrees
with PyTorch's choices, so the oracle needs no correction for them;
``DEVIATIONS`` lists where gradtape documents a different choice.

torch and jax are imported lazily: this module imports without them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class Const:
    """A NumPy constant inside an op's parameters (index arrays, masks, shifts of the diagonal)."""

    __slots__ = ("a",)

    def __init__(self, a):
        self.a = np.asarray(a)

    def __repr__(self):
        a = self.a
        return f"gt.asarray(np.array({a.tolist()!r}, dtype=np.{a.dtype}).reshape({a.shape}), device=dev)"


def conv(L, p):
    """Parameters with every Const turned into L's array (recursively through tuples and lists)."""
    if isinstance(p, Const):
        return L.const(p.a)
    if isinstance(p, tuple):
        return tuple(conv(L, q) for q in p)
    if isinstance(p, list):
        return [conv(L, q) for q in p]
    if isinstance(p, dict):
        return {k: conv(L, v) for k, v in p.items()}
    return p


def np_key(p):
    """A Const-bearing indexing key as a NumPy key."""
    if isinstance(p, Const):
        return p.a
    if isinstance(p, tuple):
        return tuple(np_key(q) for q in p)
    return p


@dataclass
class Op:
    name: str                   # gradtape path relative to gt: "sin", "nn.relu", "linalg.inv", "special.xlogy"
    kind: str                   # ew1, ew2, scalar, red, shape, index, matmul, nn, linalg, special
    arity: int = 1              # number of tensor operands (-1: a list, as concat/stack)
    domain: tuple = None        # per operand: None (any real) or (lo, hi) the values must lie in
    gt: object = None           # (L, args, p) -> gradtape tensor; default getattr(gt, path)(*args, **p)
    torch: object = None        # (L, args, p) -> torch tensor; default array_api_compat.torch by the same path
    jax: object = None          # (L, args, p) -> jax array, only where torch lacks the function
    src: object = None          # (argnames, p) -> gradtape code; default "gt.path(a, b, k=v)"
    rtol: float = 1e-7
    atol: float = 1e-9
    note: str = ""
    covers: tuple = field(default_factory=tuple)   # registry primitives this op reaches besides its own name
    pos: tuple = ()             # parameters passed positionally (moveaxis's source, tile's repetitions)


def _path(mod, name):
    for part in name.split("."):
        mod = getattr(mod, part)
    return mod


def _default_call(L, op, args, p):
    p = conv(L, p)
    return _path(L.ns, op.name)(*args, *[p[k] for k in op.pos], **{k: v for k, v in p.items() if k not in op.pos})


def _default_src(op, argnames, p):
    kw = "".join(f", {p[k]!r}" for k in op.pos) + "".join(f", {k}={v!r}" for k, v in p.items() if k not in op.pos)
    return f"gt.{op.name}({', '.join(argnames)}{kw})"


def call(op, L, args, p):
    f = op.gt if L.name == "gt" else op.torch if L.name == "torch" else op.jax
    out = _default_call(L, op, args, p) if f is None else f(L, args, p)
    if L.name == "torch" and any(out is a for a in args):
        out = out.view_as(out)     # array_api_compat returns x itself for positive/real/...: gradtape makes a node
    return out


def source(op, argnames, p):
    return op.src(argnames, p) if op.src else _default_src(op, argnames, p)


SPECS = {}


def add(op):
    SPECS[op.name] = op
    return op


# ---- elementwise unary: the array API names, the same on gradtape, array_api_compat.torch, jax.numpy -----------
POS = (0.1, 5.0)
_EW1 = {"sin": None, "cos": None, "tan": (-1.3, 1.3), "asin": (-0.95, 0.95), "acos": (-0.95, 0.95), "atan": None,
        "sinh": (-6.0, 6.0), "cosh": (-6.0, 6.0), "tanh": None, "asinh": None, "acosh": (1.05, 5.0),
        "atanh": (-0.95, 0.95), "exp": (-8.0, 8.0), "expm1": (-8.0, 8.0), "log": POS, "log1p": (-0.9, 5.0),
        "log2": POS, "log10": POS, "sqrt": (0.02, 5.0), "square": None, "reciprocal": (0.2, 5.0), "abs": None,
        "negative": None, "positive": None, "real": None, "conj": None}
for _n, _d in _EW1.items():
    add(Op(_n, "ew1", 1, (_d,)))


def _jnn(f):
    return lambda L, a, p: getattr(L.jax_nn, f)(a[0])


add(Op("nn.relu", "ew1", 1, (None,), torch=lambda L, a, p: L.F.relu(a[0]), jax=_jnn("relu"),
       note="relu'(0) = 0 in both (README kinks table)"))
add(Op("nn.sigmoid", "ew1", 1, (None,), torch=lambda L, a, p: L.torch.sigmoid(a[0]), jax=_jnn("sigmoid")))
# torch's softplus turns linear past its threshold (20); logaddexp(x, 0) is the exact function
add(Op("nn.softplus", "ew1", 1, ((-30.0, 30.0),), torch=lambda L, a, p: L.torch.logaddexp(a[0], L.torch.zeros_like(a[0])),
       jax=_jnn("softplus")))

# ---- elementwise binary, broadcasting ---------------------------------------------------------------------------
def _t_logaddexp(L, a, p):
    """m + log(exp(a - m) + exp(b - m)) with m the (finite) max, held constant: the function exactly, with
    derivatives of every order. torch.logaddexp's own double backward is NaN where exp(-|a - b|) underflows
    (a - b ~ 800: seed 61319512; JAX and gradtape agree on the finite value there)."""
    t = L.torch
    m = t.maximum(a[0], a[1]).detach()
    m = t.where(t.isfinite(m), m, t.zeros_like(m))
    return m + t.log(t.exp(a[0] - m) + t.exp(a[1] - m))


_EW2 = {"add": None, "subtract": None, "multiply": None, "divide": (None, (0.3, 3.0)), "pow": ((0.2, 3.0), (-2.0, 2.0)),
        "atan2": None, "hypot": None, "logaddexp": None, "maximum": None, "minimum": None,
        "copysign": None, "remainder": (None, (0.5, 2.0))}
for _n, _d in _EW2.items():
    add(Op(_n, "ew2", 2, _d if _d else (None, None), torch=_t_logaddexp if _n == "logaddexp" else None,
           note="maximum/minimum ties split 1/2 in both" if _n in ("maximum", "minimum") else ""))

# a tensor with a Python scalar: x + c, c - x, x ** k, c ** x ...
_SCALAR = {"+": lambda x, c: x + c, "-": lambda x, c: x - c, "*": lambda x, c: x * c, "/": lambda x, c: x / c,
           "**": lambda x, c: x ** c, "r+": lambda x, c: c + x, "r-": lambda x, c: c - x, "r*": lambda x, c: c * x,
           "r/": lambda x, c: c / x, "r**": lambda x, c: c ** x}


def _scalar_src(n, p):
    o, c = p["op"], p["c"]
    return f"{c!r} {o[1:]} {n[0]}" if o.startswith("r") else f"{n[0]} {o} {c!r}"


add(Op("scalar_ops", "scalar", 1, (None,), gt=lambda L, a, p: _SCALAR[p["op"]](a[0], p["c"]),
       torch=lambda L, a, p: _SCALAR[p["op"]](a[0], p["c"]), jax=lambda L, a, p: _SCALAR[p["op"]](a[0], p["c"]),
       src=_scalar_src, note="operators with Python scalars (__radd__, __rpow__, ...)"))

# ---- reductions ---------------------------------------------------------------------------------------------------
for _n in ("sum", "prod", "mean", "max", "min"):
    add(Op(_n, "red", 1, (None,), note="max/min: ties split evenly (torch.amax does the same)" if _n in ("max", "min") else ""))
add(Op("var", "red", 1, (None,)))
add(Op("std", "red", 1, (None,)))
add(Op("cumulative_sum", "red", 1, (None,)))
add(Op("cumulative_prod", "red", 1, (None,)))


def _t_lse(L, a, p):
    x, ax, kd = a[0], p.get("axis"), p.get("keepdims", False)
    if x.ndim == 0:
        return x + 0.0
    dims = tuple(range(x.ndim)) if ax is None else (ax,) if isinstance(ax, int) else tuple(ax)
    return L.torch.logsumexp(x, dim=dims, keepdim=kd)


add(Op("nn.logsumexp", "red", 1, (None,), torch=_t_lse))
add(Op("linalg.vector_norm", "red", 1, (None,), note="the 2-norm's gradient at 0 is 0 in both",
       covers=("vector_norm2", "vector_normp")))

# ---- shape ops ----------------------------------------------------------------------------------------------------
_POS = {"moveaxis": ("source", "destination"), "tile": ("repetitions",)}
for _n in ("reshape", "permute_dims", "expand_dims", "squeeze", "flip", "roll", "moveaxis", "broadcast_to", "tile",
           "tril", "triu", "matrix_transpose", "sort", "diff", "clip"):
    add(Op(_n, "shape", 1, (None,), pos=_POS.get(_n, ())))
add(Op("repeat", "shape", 1, (None,), torch=lambda L, a, p: L.torch.repeat_interleave(
    a[0] if p.get("axis") is not None else a[0].reshape(-1), conv(L, p["repeats"]) if isinstance(p["repeats"], Const)
    else p["repeats"], dim=p.get("axis") if p.get("axis") is not None else 0),
    src=lambda n, p: f"gt.repeat({n[0]}, {p['repeats']!r}, axis={p.get('axis')!r})",
    gt=lambda L, a, p: L.ns.repeat(a[0], conv(L, p["repeats"]), axis=p.get("axis"))))
add(Op("clip_tensor", "shape", 2, (None, None), gt=lambda L, a, p: L.ns.clip(a[0], **{p["which"]: a[1]}),
       torch=lambda L, a, p: L.torch.clamp(a[0], **{p["which"]: a[1]}),
       src=lambda n, p: f"gt.clip({n[0]}, {p['which']}={n[1]})", note="clip with a tensor bound (a where)"))
add(Op("astype", "shape", 1, (None,), gt=lambda L, a, p: L.ns.astype(L.ns.astype(a[0], L.ns.float32), L.ns.float64),
       torch=lambda L, a, p: a[0].to(L.torch.float32).to(L.torch.float64),
       src=lambda n, p: f"gt.astype(gt.astype({n[0]}, gt.float32), gt.float64)", note="a float32 round trip",
       rtol=1e-6, atol=2.5e-7))      # reverse mode rounds the cotangent to float32 there, forward mode's basis
# tangents pass exactly: where paths cancel, jacrev and jacfwd differ by float32 rounding (gradtape's forward mode
# equals torch's jacfwd, its reverse mode torch's jacrev; fuzz seed 615639169, jacobian, strict)
add(Op("concat", "shape", -1, None,
       gt=lambda L, a, p: L.ns.concat(list(a), axis=p["axis"]),
       torch=lambda L, a, p: L.ns.concat(list(a), axis=p["axis"]),
       src=lambda n, p: f"gt.concat([{', '.join(n)}], axis={p['axis']!r})"))
add(Op("stack", "shape", -1, None, gt=lambda L, a, p: L.ns.stack(list(a), axis=p["axis"]),
       torch=lambda L, a, p: L.ns.stack(list(a), axis=p["axis"]),
       src=lambda n, p: f"gt.stack([{', '.join(n)}], axis={p['axis']!r})"))
add(Op("unstack", "shape", 1, (None,), gt=lambda L, a, p: L.ns.unstack(a[0], axis=p["axis"])[p["pick"]],
       torch=lambda L, a, p: L.torch.unbind(a[0], dim=p["axis"])[p["pick"]],
       src=lambda n, p: f"gt.unstack({n[0]}, axis={p['axis']!r})[{p['pick']}]"))
add(Op("where", "shape", 3, (None, None, None),
       gt=lambda L, a, p: L.ns.where(a[0] > 0, a[1], a[2]),
       torch=lambda L, a, p: L.ns.where(a[0] > 0, a[1], a[2]),   # array_api_compat's: the standard's promotion
                                                                 # (torch.where keeps a 0-d float64 out of it)
       src=lambda n, p: f"gt.where({n[0]} > 0, {n[1]}, {n[2]})", note="condition from a comparison (not differentiable)"))
add(Op("where_scalar", "shape", 2, (None, None),
       gt=lambda L, a, p: L.ns.where(a[0] > 0, a[1], p["c"]),
       torch=lambda L, a, p: L.torch.where(a[0] > 0, a[1], L.torch.tensor(p["c"], dtype=a[1].dtype)),
       src=lambda n, p: f"gt.where({n[0]} > 0, {n[1]}, {p['c']!r})"))
add(Op("broadcast_arrays", "shape", 2, (None, None),
       gt=lambda L, a, p: L.ns.broadcast_arrays(a[0], a[1])[p["pick"]],
       torch=lambda L, a, p: L.torch.broadcast_tensors(a[0], a[1])[p["pick"]],
       src=lambda n, p: f"gt.broadcast_arrays({n[0]}, {n[1]})[{p['pick']}]"))
add(Op("meshgrid", "shape", 2, (None, None),
       gt=lambda L, a, p: L.ns.meshgrid(a[0], a[1], indexing=p["indexing"])[p["pick"]],
       torch=lambda L, a, p: L.torch.meshgrid(a[0], a[1], indexing=p["indexing"])[p["pick"]],
       src=lambda n, p: f"gt.meshgrid({n[0]}, {n[1]}, indexing={p['indexing']!r})[{p['pick']}]"))


# ---- indexing: the oracle gathers through NumPy's own indexing of a grid of flat positions ------------------------
def _grid(shape):
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def _gather(L, x, idx):
    idx = np.array(idx, dtype=np.int64)      # a contiguous copy (0-d stays 0-d)
    flat = L.torch.reshape(x, (-1,))
    return L.torch.reshape(flat[L.torch.as_tensor(idx.reshape(-1))], idx.shape)


def _t_getitem(L, a, p):
    return _gather(L, a[0], _grid(tuple(a[0].shape))[np_key(p["key"])])


def _t_setitem(L, a, p):
    x, v = a
    idx = _grid(tuple(x.shape))[np_key(p["key"])]
    while v.ndim > idx.ndim and v.shape[0] == 1:      # NumPy drops leading unit axes of the value
        v = v[0]
    v = L.torch.broadcast_to(v, idx.shape).reshape(-1)
    flat = L.torch.reshape(x * 1.0, (-1,))
    out = flat.index_put((L.torch.as_tensor(idx.reshape(-1)),), v)
    return L.torch.reshape(out, tuple(x.shape))


def _key_src(key):
    def one(k):
        if k is Ellipsis:
            return "..."
        if k is None:
            return "None"
        if isinstance(k, slice):
            s = lambda v: "" if v is None else repr(v)   # noqa: E731
            return f"{s(k.start)}:{s(k.stop)}" + (f":{k.step!r}" if k.step is not None else "")
        return repr(k)
    key = key if isinstance(key, tuple) else (key,)
    return ", ".join(one(k) for k in key) if key else "()"


def _gt_setitem(L, a, p):
    y = a[0] * 1.0
    y[conv(L, p["key"])] = a[1]
    return y


_INPLACE = {"+=": lambda y, v: y.__iadd__(v), "-=": lambda y, v: y.__isub__(v), "*=": lambda y, v: y.__imul__(v),
            "/=": lambda y, v: y.__itruediv__(v)}
_OUTPLACE = {"+=": lambda y, v: y + v, "-=": lambda y, v: y - v, "*=": lambda y, v: y * v, "/=": lambda y, v: y / v}
add(Op("inplace", "index", 2, (None, None), gt=lambda L, a, p: _INPLACE[p["op"]](a[0] * 1.0, a[1]),
       torch=lambda L, a, p: _OUTPLACE[p["op"]](a[0] * 1.0, a[1]),
       jax=lambda L, a, p: _OUTPLACE[p["op"]](a[0] * 1.0, a[1]),
       src=lambda n, p: f"{n[0]} * 1.0\n@OUT@ {p['op']} {n[1]}",
       note="in-place operators on a copy (value semantics: the tensor is rebound)"))
add(Op("getitem", "index", 1, (None,), gt=lambda L, a, p: a[0][conv(L, p["key"])], torch=_t_getitem,
       src=lambda n, p: f"{n[0]}[{_key_src(p['key'])}]",
       note="ints, slices (negative steps, out-of-range bounds), None, Ellipsis, integer arrays, boolean masks"))
add(Op("setitem", "index", 2, (None, None), gt=_gt_setitem, torch=_t_setitem,
       src=lambda n, p: f"{n[0]} * 1.0\n@OUT@[{_key_src(p['key'])}] = {n[1]}",
       note="y = x * 1.0; y[key] = v, both x and v tracked"))
add(Op("take", "index", 1, (None,), gt=lambda L, a, p: L.ns.take(a[0], conv(L, p["idx"]), axis=p["axis"]),
       torch=lambda L, a, p: _gather(L, a[0], np.take(_grid(tuple(a[0].shape)), p["idx"].a, axis=p["axis"])),
       src=lambda n, p: f"gt.take({n[0]}, {p['idx']!r}, axis={p['axis']!r})", covers=("take_add",)))
add(Op("take_along_axis", "index", 1, (None,),
       gt=lambda L, a, p: L.ns.take_along_axis(a[0], conv(L, p["idx"]), axis=p["axis"]),
       torch=lambda L, a, p: _gather(L, a[0], np.take_along_axis(_grid(tuple(a[0].shape)), p["idx"].a, axis=p["axis"])),
       src=lambda n, p: f"gt.take_along_axis({n[0]}, {p['idx']!r}, axis={p['axis']!r})", covers=("along_add",)))

# ---- matrix products ----------------------------------------------------------------------------------------------
add(Op("matmul", "matmul", 2, (None, None), src=lambda n, p: f"{n[0]} @ {n[1]}"))
add(Op("vecdot", "matmul", 2, (None, None)))
add(Op("tensordot", "matmul", 2, (None, None)))
# gt.linalg.matmul/tensordot/vecdot/matrix_transpose are gt's (ALIASES below, checked by the coverage test)

# ---- nn -----------------------------------------------------------------------------------------------------------
add(Op("nn.softmax", "nn", 1, (None,), torch=lambda L, a, p: L.torch.softmax(a[0], dim=p["axis"])))
add(Op("nn.log_softmax", "nn", 1, (None,), torch=lambda L, a, p: L.torch.log_softmax(a[0], dim=p["axis"])))


def _t_ce(L, a, p):
    x = a[0]
    lab = L.torch.as_tensor(p["labels"].a)
    return L.F.cross_entropy(x.reshape(-1, x.shape[-1]), lab.reshape(-1))


def _t_ce_probs(L, x, t):
    """torch's own cross_entropy (classes last, rows flattened): NaN with zero derivatives on an empty batch."""
    rows = math.prod(x.shape[:-1])
    return L.F.cross_entropy(x.reshape(rows, x.shape[-1]), t.reshape(rows, x.shape[-1]))


add(Op("nn.cross_entropy", "nn", 1, (None,), gt=lambda L, a, p: L.ns.nn.cross_entropy(a[0], conv(L, p["labels"])),
       torch=_t_ce, src=lambda n, p: f"gt.nn.cross_entropy({n[0]}, {p['labels']!r})"))
add(Op("nn.cross_entropy_probs", "nn", 2, (None, None),
       gt=lambda L, a, p: L.ns.nn.cross_entropy(a[0], L.ns.nn.softmax(a[1], axis=-1)),
       torch=lambda L, a, p: _t_ce_probs(L, a[0], L.torch.softmax(a[1], dim=-1)),
       src=lambda n, p: f"gt.nn.cross_entropy({n[0]}, gt.nn.softmax({n[1]}, axis=-1))",
       note="probability targets (differentiable too)"))

# ---- linalg: inputs are conditioned by the generator (SPD, distinct spectra, well-conditioned) -------------------
LIN = dict(rtol=1e-6, atol=1e-8)


def _lin(name, **kw):
    return add(Op("linalg." + name, "linalg", kw.pop("arity", 1), kw.pop("domain", None), **{**LIN, **kw}))


_lin("inv")
_lin("det")
_lin("slogdet", gt=lambda L, a, p: L.ns.linalg.slogdet(a[0])[1], torch=lambda L, a, p: L.torch.linalg.slogdet(a[0])[1],
     src=lambda n, p: f"gt.linalg.slogdet({n[0]}).logabsdet")
_lin("solve", arity=2)
_lin("cholesky")
_lin("eigh", gt=lambda L, a, p: _pick_sq(L, L.ns.linalg.eigh(a[0]), p["pick"]),
     torch=lambda L, a, p: _pick_sq(L, L.torch.linalg.eigh(a[0]), p["pick"]),
     src=lambda n, p: f"gt.linalg.eigh({n[0]})[{p['pick']}]" + (" ** 2" if p["pick"] else ""),
     note="eigenvectors compared squared (sign-free)")
_lin("eigvalsh")
_lin("svd", gt=lambda L, a, p: _pick_sq(L, L.ns.linalg.svd(a[0], full_matrices=False), p["pick"], vals=1),
     torch=lambda L, a, p: _pick_sq(L, L.torch.linalg.svd(a[0], full_matrices=False), p["pick"], vals=1),
     src=lambda n, p: f"gt.linalg.svd({n[0]}, full_matrices=False)[{p['pick']}]" + (" ** 2" if p["pick"] != 1 else ""),
     note="singular vectors compared squared (sign-free)")
_lin("svdvals")


def _pick_sq(L, res, i, vals=0):
    v = res[i]
    return v if i == vals else v * v


def _qr_norm(L, res, pick, sign_of):
    q, r = res
    s = sign_of(L.ns.linalg.diagonal(r) if L.name == "gt" else L.torch.diagonal(r, dim1=-2, dim2=-1))
    return q * s[..., None, :] if pick == 0 else r * s[..., :, None]


_lin("qr", gt=lambda L, a, p: _qr_norm(L, L.ns.linalg.qr(a[0]), p["pick"], L.ns.sign),
     torch=lambda L, a, p: _qr_norm(L, L.torch.linalg.qr(a[0]), p["pick"], lambda d: L.torch.sign(d).detach()),
     src=lambda n, p: f"(lambda q, r: {'q * gt.sign(gt.linalg.diagonal(r))[..., None, :]' if p['pick'] == 0 else 'r * gt.sign(gt.linalg.diagonal(r))[..., :, None]'})(*gt.linalg.qr({n[0]}))",
     note="normalised to diag(R) > 0")
_lin("pinv")
_lin("matrix_norm")
_lin("matrix_power", gt=lambda L, a, p: L.ns.linalg.matrix_power(a[0], p["n"]),
     torch=lambda L, a, p: L.torch.linalg.matrix_power(a[0], p["n"]), src=lambda n, p: f"gt.linalg.matrix_power({n[0]}, {p['n']})")
_lin("cross", arity=2)
_lin("trace")
_lin("outer", arity=2)
_lin("diagonal")

# ---- gt.special: torch.special where it exists, JAX where torch lacks the function, a formula otherwise -----------


def _ts(f):
    return lambda L, a, p: getattr(L.torch.special, f)(*a)


def _js(f):
    return lambda L, a, p: getattr(L.jax_special, f)(*a)


def _t_huber(L, a, p):
    d, r = L.torch.broadcast_tensors(*a)
    return L.torch.where(r.abs() <= d, 0.5 * r * r, d * (r.abs() - 0.5 * d))


def _t_inv_boxcox(L, a, p, one_p=False):
    y, lm = L.torch.broadcast_tensors(*a)
    lm_s = L.torch.where(lm == 0, L.torch.ones_like(lm), lm)
    v = L.torch.where(lm == 0, L.torch.exp(y), L.torch.pow(1 + lm_s * y, 1 / lm_s))
    return v - 1 if one_p else v


def _sp(name, arity=1, domain=None, **kw):
    return add(Op("special." + name, "special", arity, domain or (None,) * arity, **kw))


_sp("expit", torch=_ts("expit"), jax=_js("expit"))
_sp("logit", domain=((0.05, 0.95),), torch=_ts("logit"), jax=_js("logit"))
_sp("log_expit", torch=lambda L, a, p: L.F.logsigmoid(a[0]), note="torch.nn.functional.logsigmoid")
_sp("entr", domain=((0.05, 3.0),), torch=_ts("entr"), jax=_js("entr"))
_sp("rel_entr", 2, ((0.05, 3.0), (0.05, 3.0)), jax=_js("rel_entr"), note="JAX oracle (torch lacks it)")
_sp("kl_div", 2, ((0.05, 3.0), (0.05, 3.0)), jax=_js("kl_div"), note="JAX oracle (torch lacks it)")
_sp("xlogy", 2, (None, (0.05, 3.0)), torch=_ts("xlogy"), jax=_js("xlogy"))
_sp("xlog1py", 2, (None, (-0.9, 3.0)), torch=_ts("xlog1py"), jax=_js("xlog1py"))
_sp("huber", 2, ((0.3, 2.0), None), torch=_t_huber, note="formula oracle (scipy's definition)")
_sp("pseudo_huber", 2, ((0.3, 2.0), None),
    torch=lambda L, a, p: a[0] * a[0] * (L.torch.sqrt(1 + (a[1] / a[0]) ** 2) - 1), note="formula oracle")
_sp("boxcox", 2, ((0.1, 3.0), (-1.0, 1.0)), jax=_js("boxcox"), note="JAX oracle (torch lacks it)")
_sp("boxcox1p", 2, ((-0.9, 3.0), (-1.0, 1.0)), jax=_js("boxcox1p"), note="JAX oracle (torch lacks it)")
_sp("inv_boxcox", 2, ((-0.5, 0.5), (-1.0, 1.0)), torch=_t_inv_boxcox, note="formula oracle")
_sp("inv_boxcox1p", 2, ((-0.5, 0.5), (-1.0, 1.0)), torch=lambda L, a, p: _t_inv_boxcox(L, a, p, True),
    note="formula oracle")
_sp("exp2", domain=((-8.0, 8.0),), torch=_ts("exp2"), jax=lambda L, a, p: L.jnp.exp2(a[0]))
_sp("exp10", domain=((-3.0, 3.0),), torch=lambda L, a, p: L.torch.pow(10.0, a[0]), note="formula oracle")
_sp("exprel", domain=((-5.0, 5.0),), torch=lambda L, a, p: L.torch.expm1(a[0]) / a[0],
    note="formula oracle (inputs are never exactly 0; test_differential checks exprel'(0) = 1/2)")
_sp("cbrt", jax=lambda L, a, p: L.jnp.cbrt(a[0]), note="JAX oracle (torch lacks it)")
_sp("sinc", torch=_ts("sinc"), jax=lambda L, a, p: L.jnp.sinc(a[0]))

# a value plus a constant array (conditioning of linalg inputs; part of the program, not fuzzed by itself)
add(Op("add_const", "helper", 1, (None,), gt=lambda L, a, p: a[0] + conv(L, p["c"]),
       torch=lambda L, a, p: a[0] + conv(L, p["c"]), jax=lambda L, a, p: a[0] + conv(L, p["c"]),
       src=lambda n, p: f"{n[0]} + {p['c']!r}"))

# ---- what is not fuzzed, and why ---------------------------------------------------------------------------------
EXCLUDED = {
    "imag": "zeros on real tensors: no gradient path (complex differentiation is refused, issue 9)",
    "to_device": "a transfer, not math: cross-device tests live in tests/test_tensor_api.py",
    "linalg.matrix_rank": "integer-valued (not differentiable)",
    "trace": "gt.trace is the graph tracer (layer 5); gt.linalg.trace is fuzzed",
    "stop_gradient": "a constant by definition", "nn.default_generator": "the random generator, not an op", "checkpoint": "a transform (tests/test_custom.py)",
}
# namespace aliases of fuzzed functions
ALIASES = {"linalg.matmul": "matmul", "linalg.tensordot": "tensordot", "linalg.vecdot": "vecdot",
           "linalg.matrix_transpose": "matrix_transpose", "vector_norm": "linalg.vector_norm"}
# primitives reached only through another public function
PRIM_VIA = {"getitem": "getitem", "setitem": "setitem", "index_add": "setitem (accumulating rule of indexed writes)",
            "along_add": "take_along_axis", "take_add": "take", "vector_norm2": "linalg.vector_norm",
            "relu": "nn.relu", "sigmoid": "nn.sigmoid", "softplus": "nn.softplus", "logsumexp": "nn.logsumexp",
            "log_softmax": "nn.log_softmax", "softmax": "nn.softmax", "cross_entropy": "nn.cross_entropy",
            "softmax_minus_onehot": "nn.cross_entropy (the residual of its gradient and JVP)",
            "xlogx": "special.entr, special.xlogy, special.rel_entr", "log1prel": "special.exprel",
            "to_device": None, "astype": "astype", "abs": "abs", "pow": "pow",
            "select": "the outputs of the multi-output primitives (linalg.eigh, svd, qr, slogdet)",
            # gt.real/imag/conj/abs of complex tensors (the real-valued fuzzer draws none): tests/test_complex.py
            "real_complex": "real", "imag_complex": "imag", "conj_complex": "conj", "abs_complex": "abs",
            # gt.fft's primitives (complex-valued: tests/test_fft.py, against torch.fft)
            "fftn": "fft.fft, fft.fftn", "ifftn": "fft.ifft, fft.ifftn", "rfftn": "fft.rfft, fft.rfftn, fft.ihfft",
            "irfftn": "fft.irfft, fft.irfftn, fft.hfft"}

# Where gradtape documents a choice PyTorch does not make, the generator avoids the point and
# tests/test_differential.py checks the documented value directly.
DEVIATIONS = {
    "pow": "x ** 0 at x = 0: gradtape's d/dx is 0 (JAX's choice); inputs of pow are kept > 0",
    "std": "zero spread: the derivative is not finite; the generator avoids exactly tied reductions for std",
    "special.exprel": "exprel'(0) = 1/2 (checked directly; the formula oracle is 0/0 there)",
}


def namespace_functions():
    """The differentiable public functions of gradtape: gt.*, gt.linalg.*, gt.nn.* (functions), gt.special.*."""
    import inspect
    import gradtape as gt
    skip = set(gt.NONDIFF) | {
        # creation, dtypes, devices, transforms, recording state: not differentiable ops
        "arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like", "linspace", "ones",
        "ones_like", "zeros", "zeros_like", "broadcast_shapes", "can_cast", "finfo", "iinfo", "isdtype", "result_type",
        "default_device", "get_default_device", "set_default_device", "enable_grad", "no_grad", "pause", "record",
        "is_grad_enabled", "is_recording", "is_training", "predict_mode", "train_mode", "subgradient", "grad",
        "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "custom_vjp", "custom_jvp", "memory_stats",
        "vmap", "linearize", "jacfwd", "jacrev", "jit", "set_num_threads",
        "capabilities", "devices", "default_dtypes", "dtypes",          # the inspection functions
        "synchronize", "to_numpy"}
    names = []
    for n in dir(gt):
        f = getattr(gt, n)
        if n.startswith("_") or n in skip or inspect.isclass(f) or inspect.ismodule(f) or not callable(f):
            continue
        names.append(n)
    names += ["linalg." + n for n in gt.linalg.__all__]
    names += ["nn." + n for n in gt.nn.__all__ if inspect.isfunction(getattr(gt.nn, n)) and not n.endswith("_")
              and n not in ("manual_seed", "calculate_gain")]
    names += ["special." + n for n in gt.special.__all__]
    return sorted(set(names))


def missing_specs():
    """Differentiable functions and registry primitives without a fuzz spec (nor a listed exclusion)."""
    from gradtape._core.primitive import PRIMS
    out = [n for n in namespace_functions() if n not in SPECS and n not in EXCLUDED and n not in ALIASES]
    have = {n.split(".")[-1] for n in SPECS} | {c for op in SPECS.values() for c in op.covers}
    base = lambda p: p.rstrip("0123456789") or p      # noqa: E731  (concat1, concat2...: one per arity)
    out += [f"PRIMS[{p!r}]" for p in PRIMS if base(p) not in have and p not in have and p not in PRIM_VIA
            and p not in EXCLUDED]
    return out


# ---- library adapters -----------------------------------------------------------------------------------------------
class GTLib:
    name = "gt"

    def __init__(self, device):
        import gradtape as gt
        self.ns, self.device = gt, device

    def const(self, a):
        return self.ns.asarray(a, device=self.device)


class TorchLib:
    name = "torch"

    def __init__(self):
        import torch
        import torch.nn.functional as F
        import array_api_compat.torch as xt
        self.torch, self.F, self.ns = torch, F, xt

    def const(self, a):
        return self.torch.as_tensor(np.array(a))       # a contiguous copy (torch refuses negative strides)


class JaxLib:
    name = "jax"

    def __init__(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jax.scipy.special as jsp
        self.jax, self.jnp, self.ns, self.jax_special, self.jax_nn = jax, jnp, jnp, jsp, jax.nn

    def const(self, a):
        return self.jnp.asarray(a)
