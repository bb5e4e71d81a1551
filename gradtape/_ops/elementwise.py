"""Elementwise primitives: forward, VJP and JVP side by side, one block each.

Rules use ``xp`` (the backend namespace on raw arrays, or gradtape's tensor-level namespace when the
derivative is recorded), ``ct`` the cotangent, ``t`` the tangent, ``out`` the forward result. For an
elementwise op only the partial derivative ``d`` is written (:func:`~gradtape._core.primitive.unary`,
:func:`~gradtape._core.primitive.binary`): VJP = ct * d and JVP = t * d. A block with ``namespace="gt"``
is a public function of ``gt`` of the same name (bound by :mod:`gradtape._api.elementwise`): adding such
an op is this one block plus a row in the op table of ``tests/test_ops.py``.

>>> from gradtape._ops.elementwise import sin
>>> sin.name, sin.inputs, sin.namespace
('sin', ('x',), 'gt')
"""
from __future__ import annotations

import math

from .._core.dispatch import apply1
from .._core.dtypes import in_float32
from .._core.primitive import binary, define, define_linear, unary

# ---- complex numbers -------------------------------------------------------------------------------------------------
# Rules are written in JAX's convention: the VJP of a holomorphic f is ct * f'(z) (the rules of real tensors as they
# are: no conjugation, no cost on real tensors), the JVP f'(z) t. The transforms conjugate complex cotangents where
# they enter (gt.vjp's) and complex gradients where they leave (gt.grad, gt.vjp), which gives PyTorch's convention
# to the user (README "Complex numbers"). Non-holomorphic ops of complex tensors (real, imag, conj, abs) have their
# own primitives at the end, chosen by gradtape._api.elementwise at the call.
_CKINDS = frozenset(("c", "complex floating"))     # NumPy/CuPy dtype.kind, gradtape DType.kind


def _complex(v):
    """Whether ``v`` (an array, a Tensor, a number, a jit symbol) is complex: the test of the rules' complex branches."""
    try:
        return v.dtype.kind in _CKINDS
    except AttributeError:      # Python numbers, array-api-strict dtypes (no .kind)
        return type(v) is complex or "complex" in str(getattr(v, "dtype", ""))


def _c(xp, v):
    """conj(v) for a complex array or number ``v``; ``v`` itself otherwise (for the few rules that conjugate)."""
    if not _complex(v):
        return v
    return v.conjugate() if type(v) is complex else xp.conj(v)


def _over(name, fwd, d, den, reads="x", **kw):
    """:func:`unary` for an f' = 1 / den: real tensors take ct * d as unary's rules (unchanged), complex ones
    ct / den, as torch writes these rules (derivatives.yaml: sqrt ``grad / (2 * result.conj())``, log
    ``grad.div(self.conj())``), so that at a pole ct / (0+0j) gives torch's infinities (re/0, im/0) rather than
    ct * (inf + nan j) = NaN + NaN j. The branch tests the cotangent's dtype: real ones never reach the division."""
    return define(name, fwd, vjp={"x": lambda xp, ct, out, x: ct / den(xp, x, out) if _complex(ct) else
                                  ct * d(xp, x, out)},
                  jvp={"x": lambda xp, t, out, x: t / den(xp, x, out) if _complex(t) else t * d(xp, x, out)},
                  reads={"x": tuple(reads.split())}, same_shape=True, **kw)


def _acosh_d(xp, x):
    """1 / sqrt(x^2 - 1); on complex x as 1 / (sqrt(x - 1) sqrt(x + 1)), acosh's principal branch."""
    return 1 / xp.sqrt(x * x - 1) if _c(xp, x) is x else 1 / (xp.sqrt(x - 1) * xp.sqrt(x + 1))


# ---- unary ---------------------------------------------------------------------------------------------------------
negative = define_linear("negative", lambda xp, x: -x, lambda xp, ct, out, x: -ct, same_shape=True, namespace="gt")
positive = define("positive", lambda xp, x: +x, vjp={"x": lambda xp, ct, out, x: ct},
                  jvp={"x": lambda xp, t, out, x: t}, same_shape=True, namespace="gt")
sin = unary("sin", lambda xp, x: xp.sin(x), lambda xp, x, out: xp.cos(x), namespace="gt")
cos = unary("cos", lambda xp, x: xp.cos(x), lambda xp, x, out: -xp.sin(x), namespace="gt")
tan = unary("tan", lambda xp, x: xp.tan(x), lambda xp, x, out: 1 + out * out, reads="out", namespace="gt")
asin = unary("asin", lambda xp, x: xp.asin(x), lambda xp, x, out: 1 / xp.sqrt(1 - x * x), namespace="gt")
acos = unary("acos", lambda xp, x: xp.acos(x), lambda xp, x, out: -1 / xp.sqrt(1 - x * x), namespace="gt")
atan = unary("atan", lambda xp, x: xp.atan(x), lambda xp, x, out: 1 / (1 + x * x), namespace="gt")
sinh = unary("sinh", lambda xp, x: xp.sinh(x), lambda xp, x, out: xp.cosh(x), namespace="gt")
cosh = unary("cosh", lambda xp, x: xp.cosh(x), lambda xp, x, out: xp.sinh(x), namespace="gt")
tanh = unary("tanh", lambda xp, x: xp.tanh(x), lambda xp, x, out: 1 - out * out, reads="out", fused_vjp=True,
             namespace="gt")
asinh = unary("asinh", lambda xp, x: xp.asinh(x), lambda xp, x, out: 1 / xp.sqrt(x * x + 1), namespace="gt")
acosh = unary("acosh", lambda xp, x: xp.acosh(x), lambda xp, x, out: _acosh_d(xp, x), namespace="gt")
atanh = unary("atanh", lambda xp, x: xp.atanh(x), lambda xp, x, out: 1 / (1 - x * x), namespace="gt")
exp = unary("exp", lambda xp, x: xp.exp(x), lambda xp, x, out: out, reads="out", namespace="gt")
expm1 = unary("expm1", lambda xp, x: xp.expm1(x), lambda xp, x, out: out + 1, reads="out", namespace="gt")
log = _over("log", lambda xp, x: xp.log(x), lambda xp, x, out: 1 / x, lambda xp, x, out: x, namespace="gt")
log1p = _over("log1p", lambda xp, x: xp.log1p(x), lambda xp, x, out: 1 / (1 + x), lambda xp, x, out: 1 + x,
              namespace="gt")
log2 = _over("log2", lambda xp, x: xp.log2(x), lambda xp, x, out: 1 / (x * math.log(2.0)),
             lambda xp, x, out: x * math.log(2.0), namespace="gt")
log10 = _over("log10", lambda xp, x: xp.log10(x), lambda xp, x, out: 1 / (x * math.log(10.0)),
              lambda xp, x, out: x * math.log(10.0), namespace="gt")
sqrt = _over("sqrt", lambda xp, x: xp.sqrt(x), lambda xp, x, out: 0.5 / out, lambda xp, x, out: 2 * out,
             reads="out", namespace="gt")     # sqrt'(0) = +inf (real); complex: ct / (0+0j) = (re/0, im/0)
square = unary("square", lambda xp, x: xp.square(x), lambda xp, x, out: 2 * x, namespace="gt")
reciprocal = unary("reciprocal", lambda xp, x: xp.reciprocal(x), lambda xp, x, out: -(out * out), reads="out",
                   namespace="gt")

# ---- kinks and parameters ---------------------------------------------------------------------------------------
# abs'(0) = a, relu'(0) = a: the parameter a is read from gt.subgradient when the op runs (abs, relu_fn below)
abs_ = unary("abs", lambda xp, x, a: xp.abs(x), lambda xp, x, out, a: xp.where(x == 0, a, xp.sign(x)))
relu = define("relu", lambda xp, x, a: xp.maximum(x, 0),
              vjp={"x": lambda xp, ct, out, x, a: _relu_vjp(xp, ct, x, a)},
              jvp={"x": lambda xp, t, out, x, a: _relu_d(xp, t, x, a)}, reads={"x": ("x",)}, same_shape=True)
# clip with scalar bounds: derivative 1 inside [lo, hi] (bounds included), 0 outside
clip_ = unary("clip", lambda xp, x, lo, hi: xp.clip(x, lo, hi),
              lambda xp, x, out, lo, hi: xp.astype(out == x, x.dtype), reads="x out")
# CuPy: one ElementwiseKernel each for the VJPs of relu, tanh, sigmoid, softplus (backends/cupy.py)
# (float16: computed in float32 and rounded once, as torch's opmath: three float16 roundings put sigmoid(4.78) an
# ulp off, 0.99121 for 0.99170, and 1 - sigmoid 6% off; the differential float16 fuzzer, seed 75618)
sigmoid = unary("sigmoid", lambda xp, x: _sigmoid(xp, x), lambda xp, x, out: out * (1 - out), reads="out",
                fused_vjp=True)
softplus = unary("softplus", in_float32(lambda xp, x: xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))),
                 lambda xp, x, out: _sigmoid(xp, x), fused_vjp=True)


def _relu_vjp(xp, ct, x, a):
    """ct * relu'(x) by the backend's kernel ``xp.relu_vjp(ct, x)`` where it has one (NumPy, CuPy; tested equal
    to the generic rule) and a = 0."""
    kernel = getattr(xp, "relu_vjp", None) if a == 0 else None
    return _relu_d(xp, ct, x, a) if kernel is None else kernel(ct, x)


def _relu_d(xp, ct, x, a):
    """ct * relu'(x), relu'(0) = a."""
    if a == 0:
        return ct * xp.astype(x > 0, ct.dtype)      # a mask product: where() with a random mask is ~10x slower
    return xp.where(x > 0, ct, xp.where(x == 0, a * ct, 0.0))


@in_float32
def _sigmoid(xp, x):
    """Stable logistic function: never exponentiates a positive number."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---- binary (broadcasting) -----------------------------------------------------------------------------------------
# the four arithmetic operators written out (no partial-derivative call: they are the hot path of every backward)
add = define("add", lambda xp, x, y: x + y, inputs=("x", "y"),
             vjp={"x": lambda xp, ct, out, x, y: ct, "y": lambda xp, ct, out, x, y: ct},
             jvp={"x": lambda xp, t, out, x, y: t, "y": lambda xp, t, out, x, y: t}, broadcasting=True, namespace="gt")
subtract = define("subtract", lambda xp, x, y: x - y, inputs=("x", "y"),
                  vjp={"x": lambda xp, ct, out, x, y: ct, "y": lambda xp, ct, out, x, y: -ct},
                  jvp={"x": lambda xp, t, out, x, y: t, "y": lambda xp, t, out, x, y: -t}, broadcasting=True,
                  namespace="gt")
multiply = define("multiply", lambda xp, x, y: x * y, inputs=("x", "y"),
                  vjp={"x": lambda xp, ct, out, x, y: ct * y, "y": lambda xp, ct, out, x, y: ct * x},
                  jvp={"x": lambda xp, t, out, x, y: t * y, "y": lambda xp, t, out, x, y: x * t},
                  reads={"x": ("y",), "y": ("x",)}, broadcasting=True, namespace="gt")
# d/dy = -(x / y) / y as torch writes it, not -x / y²: y² overflows float16 for |y| > 256, and on complex y = 0 this
# form gives torch's non-finite values; x / y is recomputed, not read from out (a consumer may write into out)
divide = define("divide", lambda xp, x, y: x / y, inputs=("x", "y"),
                vjp={"x": lambda xp, ct, out, x, y: ct / y, "y": lambda xp, ct, out, x, y: -ct * ((x / y) / y)},
                jvp={"x": lambda xp, t, out, x, y: t / y, "y": lambda xp, t, out, x, y: -(t * (x / y)) / y},
                reads={"x": ("y",), "y": ("x", "y")}, broadcasting=True, namespace="gt")
pow_ = binary("pow", lambda xp, x, y: xp.pow(x, y),
              lambda xp, x, y, out: _pow_dx(xp, x, y), lambda xp, x, y, out: _log_or_zero(xp, x) * out,
              reads={"x": ("x", "y"), "y": ("x", "out")}, namespace="gt")
atan2 = binary("atan2", lambda xp, x, y: xp.atan2(x, y),
               lambda xp, x, y, out: y / (x * x + y * y), lambda xp, x, y, out: -x / (x * x + y * y),
               reads={"x": ("x", "y"), "y": ("x", "y")}, namespace="gt")
hypot = binary("hypot", lambda xp, x, y: xp.hypot(x, y), lambda xp, x, y, out: x / out, lambda xp, x, y, out: y / out,
               reads={"x": ("x", "out"), "y": ("y", "out")}, namespace="gt")
logaddexp = binary("logaddexp", lambda xp, x, y: xp.logaddexp(x, y),
                   lambda xp, x, y, out: xp.exp(x - out), lambda xp, x, y, out: xp.exp(y - out),
                   reads={"x": ("x", "out"), "y": ("y", "out")}, namespace="gt")
# ties split 1/2-1/2
maximum = binary("maximum", lambda xp, x, y: xp.maximum(x, y),
                 lambda xp, x, y, out: _tie(xp, x > y, x == y, out), lambda xp, x, y, out: _tie(xp, y > x, x == y, out),
                 reads={"x": ("x", "y", "out"), "y": ("x", "y", "out")}, namespace="gt")
minimum = binary("minimum", lambda xp, x, y: xp.minimum(x, y),
                 lambda xp, x, y, out: _tie(xp, x < y, x == y, out), lambda xp, x, y, out: _tie(xp, y < x, x == y, out),
                 reads={"x": ("x", "y", "out"), "y": ("x", "y", "out")}, namespace="gt")
copysign = binary("copysign", lambda xp, x, y: xp.copysign(x, y),
                  lambda xp, x, y, out: xp.where(x == 0, 0.0, out / xp.where(x == 0, 1.0, x)),
                  lambda xp, x, y, out: xp.zeros_like(out), reads={"x": ("x", "out"), "y": ("out",)}, namespace="gt")
remainder = binary("remainder", lambda xp, x, y: xp.remainder(x, y),
                   lambda xp, x, y, out: xp.ones_like(out), lambda xp, x, y, out: -xp.floor(x / y),
                   reads={"x": ("out",), "y": ("x", "y")}, namespace="gt")


def _pow_dx(xp, x, y):
    """y x**(y-1); x**0 is the constant 1, so 0 also at x = 0 (JAX's integer_pow, torch; not 0 * inf). For a tensor
    exponent only the point x = y = 0 is masked (torch's 0), so mixed derivatives stay right elsewhere."""
    if isinstance(y, (int, float)):
        return y * xp.pow(x, y - 1) if y != 0 else xp.zeros_like(x)
    return xp.where((y == 0) & (x == 0), xp.zeros_like(x), y * xp.pow(x, y - 1))


def _log_or_zero(xp, x):
    """log(x), taken as 0 at x = 0 (d(0**y)/dy = 0 for y > 0)."""
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
    return xp.where(x == 0, xp.zeros_like(x), xp.log(xp.where(x == 0, xp.ones_like(x), x)))


def _tie(xp, win, tie, out):
    return xp.astype(win, out.dtype) + 0.5 * xp.astype(tie, out.dtype)


# ---- non-holomorphic functions of complex tensors (gt.real, gt.imag, gt.conj, gt.abs pick these for complex x) ------
# Rules in JAX's convention (see _c): real: VJP ct + 0i, JVP Re t; imag: VJP -i ct, JVP Im t; conj: linear, VJP
# conj(ct); abs: VJP ct conj(z)/|z| (0 at z = 0), JVP Re(conj(z/|z|) t). Outputs real (conj's complex): no same_shape.
# (the engine casts real's real cotangent to the complex input's dtype)
real_c = define("real_complex", lambda xp, x: xp.real(x), vjp={"x": lambda xp, ct, out, x: ct},
                jvp={"x": lambda xp, t, out, x: xp.real(t)})
imag_c = define("imag_complex", lambda xp, x: xp.imag(x),
                vjp={"x": lambda xp, ct, out, x: xp.astype(ct, x.dtype) * -1j},
                jvp={"x": lambda xp, t, out, x: xp.imag(t)}, reads={"x": ("x",)})
conj_c = define_linear("conj_complex", lambda xp, x: xp.conj(x), lambda xp, ct, out, x: xp.conj(ct), same_shape=True)
abs_c = define("abs_complex", lambda xp, x: xp.abs(x),
               vjp={"x": lambda xp, ct, out, x: ct * xp.conj(_sgn(xp, x, out))},
               jvp={"x": lambda xp, t, out, x: xp.real(xp.conj(_sgn(xp, x, out)) * t)}, reads={"x": ("x", "out")})


def _sgn(xp, x, out):
    """z / |z|, 0 at z = 0 (torch's sgn)."""
    return x / xp.where(out == 0, xp.ones_like(out), out)


def _batch1(prim, args, batched, params, size):
    """gt.vmap's rule of real_complex, imag_complex, abs_complex: elementwise, applied as they are."""
    return apply1(prim, args[0])


real_c.batch = imag_c.batch = abs_c.batch = _batch1
