"""The primitives of ``gt.special``: functions whose derivatives a branch-picking ``where`` would get wrong.

Where ``where(cond, f(x), constant)`` would pick a constant at a point the function is smooth (``exprel``
and ``sinc`` at 0, ``xlogy`` at x = 0, ...), the function is a primitive with its own rule instead, right
at that point to every order (JAX's conventions: ``entr'(0) = +inf``, ``cbrt'(0) = +inf``). The public
functions, composed of these and gradtape's ops, are in :mod:`gradtape.special`.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.xlogy.inputs
('x', 'y')
"""
from __future__ import annotations

import math

from .._core.dispatch import apply1
from .._core.dtypes import in_float32
from .._core.primitive import binary, unary
from .._core.tensor import Tensor

__all__ = ["exprel_p", "sinc_p", "log1prel_p", "cbrt_p", "xlogx_p", "xlogy_p", "xlog1py_p"]


def _at(p, xp, x, k):
    """p at derivative order k: recorded on tensors (higher-order rules), the forward on raw arrays."""
    return apply1(p, x, {"k": k}) if isinstance(x, Tensor) else p.fwd(xp, x, k=k)


def _quotient(name, h, coef, scale=1.0, radius=1.0, terms=30, at_inf=None):
    """f(x) = g(scale x), g(u) = h(u) / u analytic at 0, as one primitive whose attribute k is the order of
    derivative it computes; its derivative is the same primitive at k + 1, so every order is exact at 0.
    Near 0 the Taylor series of g^(k) (g(u) = sum of coef(m) u^m), beyond the Leibniz rule on h(u) u⁻¹
    (``h(xp, u, j)`` is h's j-th derivative); ``at_inf``: the value of every order at u = +inf."""
    def fwd(xp, x, k):
        u = x * scale if scale != 1.0 else x
        near = xp.abs(u) < radius
        un = xp.where(near, u, xp.zeros_like(u))
        cs = [coef(m) * math.perm(m, k) for m in range(k, k + terms)]
        acc = xp.full_like(u, cs[-1])
        for c in reversed(cs[:-1]):
            acc = acc * un + c
        uf = xp.where(near, xp.full_like(u, 2.0 * radius), u)
        inv = 1.0 / uf
        far, pw = 0.0, inv
        for i in range(k + 1):                            # i = k - j: the order of the derivative of u⁻¹
            far = far + (math.comb(k, i) * (-1) ** i * math.factorial(i)) * h(xp, uf, k - i) * pw
            pw = pw * inv
        out = xp.where(near, acc, far)
        if at_inf is not None:
            out = xp.where(u == math.inf, xp.full_like(u, at_inf), out)
        return out * scale ** k if k and scale != 1.0 else out
    # float16 in float32: the series and the Leibniz sum cancel terms (2% off for sinc'' in float16 arithmetic)
    p = unary(name, in_float32(fwd), lambda xp, x, out, k: _at(p, xp, x, k + 1))
    return p


# (exp(u) - 1) / u
exprel_p = _quotient("exprel", lambda xp, u, j: xp.exp(u) if j else xp.expm1(u),
                     lambda m: 1.0 / math.factorial(m + 1), at_inf=math.inf)
# sin(πx) / (πx)
sinc_p = _quotient("sinc", lambda xp, u, j: (xp.sin, xp.cos)[j % 2](u) * (1.0 if j % 4 < 2 else -1.0),
                   lambda m: 0.0 if m % 2 else (-1.0) ** (m // 2) / math.factorial(m + 1), scale=math.pi)
# log1p(u) / u (inv_boxcox): h^(j) = (-1)^(j-1) (j-1)! (1 + u)^-j
log1prel_p = _quotient("log1prel", lambda xp, u, j: xp.log1p(u) if j == 0 else
                       ((-1.0) ** (j - 1) * math.factorial(j - 1)) * (1.0 + u) ** float(-j),
                       lambda m: (-1.0) ** m / (m + 1), radius=0.5, terms=60)
# cbrt' = 1 / (3 cbrt²): +inf at 0, as JAX
cbrt_p = unary("cbrt", lambda xp, x: xp.sign(x) * xp.abs(x) ** (1.0 / 3.0), lambda xp, x, out: out ** -2.0 / 3.0,
               reads="out")
# x log x for x >= 0 (JAX's _xlogx): the derivative log x + 1 is -inf at 0, so entr'(0) = +inf
xlogx_p = unary("xlogx", lambda xp, x: xp.where(x == 0, xp.zeros_like(x), x * xp.log(xp.where(x == 0, 1.0, x))),
                lambda xp, x, out: xp.log(x) + 1.0)


def _ones_where(xp, c, y):
    return xp.where(c, xp.ones_like(y), y)


def _xlogy_fwd(xp, x, y, lg, safe):
    zero = (x == 0) & ~xp.isnan(y)
    return xp.where(zero, xp.zeros_like(x), x * lg(xp.where(zero, xp.full_like(y, safe), y)))


# d/dx = log y (also at x = 0), d/dy = x / y; at the singular point x = y = 0 both 0
xlogy_p = binary("xlogy", lambda xp, x, y: _xlogy_fwd(xp, x, y, xp.log, 1.0),
                 lambda xp, x, y, out: xp.log(_ones_where(xp, (x == 0) & (y <= 0), y)),
                 lambda xp, x, y, out: x / _ones_where(xp, (x == 0) & (y == 0), y),
                 reads={"x": ("x", "y"), "y": ("x", "y")})
# d/dx = log1p(y), d/dy = x / (1 + y); both 0 at x = 0, y = -1
xlog1py_p = binary("xlog1py", lambda xp, x, y: _xlogy_fwd(xp, x, y, xp.log1p, 0.0),
                   lambda xp, x, y, out: xp.log1p(xp.where((x == 0) & (y <= -1), xp.zeros_like(y), y)),
                   lambda xp, x, y, out: x / _ones_where(xp, (x == 0) & (y == -1), 1 + y),
                   reads={"x": ("x", "y"), "y": ("x", "y")})
