"""``gt.special``: SciPy special functions that have an array-API formula, differentiable.

SciPy (``SCIPY_ARRAY_API=1``) evaluates ``scipy.special.f(x)`` for a
non-NumPy namespace ``xp`` with ``xp.special.f`` when that exists (its hook
for the proposed array API ``special`` extension), else with a generic
array-API implementation, else by converting to NumPy. Defining the
functions here makes ``scipy.special.expit(t)``, ``scipy.stats.entropy(t)``
(through ``entr``) and the like keep gradtape's graph. Every function is a
composition of gradtape's differentiable ops, so all orders of derivatives
come free; a ``where`` picks the branch, with the unused branch fed safe
inputs so that its gradient is 0, not NaN. Where a ``where`` would pick a
constant at a point the function is smooth (``exprel`` and ``sinc`` at 0,
``xlogy`` at x = 0, ...), the function is a primitive with its own rule
instead, right at that point to every order (JAX's conventions:
``entr'(0) = +inf``, ``cbrt'(0) = +inf``, ``d/dx kl_div(0, y) = -1``,
``d/dx rel_entr(0, y) = 0``).

Functions without such a formula (``erf``, ``gammaln``, ``ndtr``, Bessel
functions, ...) are not here: SciPy converts their arguments with
``np.asarray``, which gradtape refuses for a tensor that requires grad.

>>> import gradtape as gt
>>> gt.special.expit(gt.asarray([0.0]))
Tensor([0.5])
>>> gt.special.xlogy(gt.asarray([0.0, 2.0]), gt.asarray([0.0, 1.0]))
Tensor([0., 0.])
"""
from __future__ import annotations

import math

import gradtape as _gt
from ._core.tensor import Tensor
from ._core.dispatch import apply, apply1
from ._ops.elementwise import binary, unary

__all__ = ["expit", "logit", "log_expit", "entr", "rel_entr", "kl_div", "xlogy", "xlog1py", "huber",
           "pseudo_huber", "boxcox", "boxcox1p", "inv_boxcox", "inv_boxcox1p", "exp2", "exp10", "exprel", "cbrt",
           "sinc"]


def _t(*xs):
    """Tensors on one device with the promoted floating dtype (SciPy's ufuncs return floats)."""
    ts = [x if isinstance(x, _gt.Tensor) else None for x in xs]
    like = next((t for t in ts if t is not None), None)
    dev = like.device if like is not None else None
    out = [t if t is not None else _gt.asarray(x, device=dev) for t, x in zip(ts, xs)]
    dt = _gt.result_type(*out)
    if not _gt.isdtype(dt, "real floating"):
        dt = _gt.float64
    out = [o if o.dtype == dt else _gt.astype(o, dt) for o in out]
    if len(out) > 1:
        out = list(_gt.broadcast_arrays(*out))
    return out if len(out) > 1 else out[0]


def _safe(cond, x, value):
    """x where cond, else a harmless constant (so a masked-out branch has finite values and gradient 0)."""
    return _gt.where(cond, x, _gt.full_like(x, value))


# ---- primitives: functions whose derivatives a branch-picking ``where`` would get wrong ---------------

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
    p = unary(name, fwd, lambda xp, x, out, k: _at(p, xp, x, k + 1))
    return p


_exprel = _quotient("exprel", lambda xp, u, j: xp.exp(u) if j else xp.expm1(u),
                    lambda m: 1.0 / math.factorial(m + 1), at_inf=math.inf)
_sinc = _quotient("sinc", lambda xp, u, j: (xp.sin, xp.cos)[j % 2](u) * (1.0 if j % 4 < 2 else -1.0),
                  lambda m: 0.0 if m % 2 else (-1.0) ** (m // 2) / math.factorial(m + 1), scale=math.pi)
# log1p(u) / u (inv_boxcox): h^(j) = (-1)^(j-1) (j-1)! (1 + u)^-j
_log1prel = _quotient("log1prel", lambda xp, u, j: xp.log1p(u) if j == 0 else
                      ((-1.0) ** (j - 1) * math.factorial(j - 1)) * (1.0 + u) ** float(-j),
                      lambda m: (-1.0) ** m / (m + 1), radius=0.5, terms=60)
# cbrt' = 1 / (3 cbrt²): +inf at 0, as JAX
_cbrt = unary("cbrt", lambda xp, x: xp.sign(x) * xp.abs(x) ** (1.0 / 3.0), lambda xp, x, out: out ** -2.0 / 3.0, "out")
# x log x for x >= 0 (JAX's _xlogx): the derivative log x + 1 is -inf at 0, so entr'(0) = +inf
_xlogx = unary("xlogx", lambda xp, x: xp.where(x == 0, xp.zeros_like(x), x * xp.log(xp.where(x == 0, 1.0, x))),
               lambda xp, x, out: xp.log(x) + 1.0)


def _ones_where(xp, c, y):
    return xp.where(c, xp.ones_like(y), y)


def _xlogy_fwd(xp, x, y, lg, safe):
    zero = (x == 0) & ~xp.isnan(y)
    return xp.where(zero, xp.zeros_like(x), x * lg(xp.where(zero, xp.full_like(y, safe), y)))


# d/dx = log y (also at x = 0), d/dy = x / y; at the singular point x = y = 0 both 0
_xlogy = binary("xlogy", lambda xp, x, y: _xlogy_fwd(xp, x, y, xp.log, 1.0),
                lambda xp, x, y, out: xp.log(_ones_where(xp, (x == 0) & (y <= 0), y)),
                lambda xp, x, y, out: x / _ones_where(xp, (x == 0) & (y == 0), y), save=(("x", "y"), ("x", "y")))
_xlog1py = binary("xlog1py", lambda xp, x, y: _xlogy_fwd(xp, x, y, xp.log1p, 0.0),
                  lambda xp, x, y, out: xp.log1p(xp.where((x == 0) & (y <= -1), xp.zeros_like(y), y)),
                  lambda xp, x, y, out: x / _ones_where(xp, (x == 0) & (y == -1), 1 + y),
                  save=(("x", "y"), ("x", "y")))


def expit(x):
    """1 / (1 + exp(-x)) (``gt.nn.sigmoid``).

    >>> import gradtape as gt
    >>> gt.special.expit(gt.asarray([0.0, 1000.0]))
    Tensor([0.5, 1. ])
    """
    return _gt.nn.sigmoid(_t(x))


def log_expit(x):
    """log(expit(x)) = -softplus(-x), without overflow.

    >>> import gradtape as gt
    >>> gt.special.log_expit(gt.asarray([-1000.0]))
    Tensor([-1000.])
    """
    return -_gt.nn.softplus(-_t(x))


def logit(p):
    """log(p / (1 - p)).

    >>> import gradtape as gt
    >>> gt.special.logit(gt.asarray([0.5]))
    Tensor([0.])
    """
    p = _t(p)
    return _gt.log(p) - _gt.log1p(-p)


def entr(x):
    """-x log x for x > 0, 0 at 0, -inf below; entr'(0) = +inf (-log x - 1 as x -> 0+).

    >>> import gradtape as gt
    >>> gt.special.entr(gt.asarray([0.0, 0.5, -1.0])).tolist()
    [0.0, 0.34657359027997264, -inf]
    """
    x = _t(x)
    neg = x < 0
    return _gt.where(neg, _gt.full_like(x, -_gt.inf), 0.0 - apply1(_xlogx, _safe(~neg, x, 1.0)))   # +0 at 0


def rel_entr(x, y):
    """x log(x / y) for x, y > 0; 0 for x = 0, y >= 0; inf otherwise (NaN where an input is NaN).

    At x = 0 (the boundary of the domain) the derivatives are 0, as in JAX.

    >>> import gradtape as gt
    >>> gt.special.rel_entr(gt.asarray([1.0, 0.0]), gt.asarray([2.0, 3.0]))
    Tensor([-0.69314718,  0.        ])
    """
    x, y = _t(x, y)
    ok = (x > 0) & (y > 0)
    xs, ys = _safe(ok, x, 1.0), _safe(ok, y, 1.0)
    other = _gt.where((x == 0) & (y >= 0), _gt.zeros_like(x), _gt.full_like(x, _gt.inf))
    other = _gt.where(_gt.isnan(x) | _gt.isnan(y), _gt.full_like(x, _gt.nan), other)
    return _gt.where(ok, xs * (_gt.log(xs) - _gt.log(ys)), other)


def kl_div(x, y):
    """x log(x / y) - x + y for x, y > 0; y for x = 0, y >= 0; inf otherwise.

    ``rel_entr(x, y) - x + y`` (as JAX): at x = 0 the derivative in x is -1.

    >>> import gradtape as gt
    >>> gt.special.kl_div(gt.asarray([1.0]), gt.asarray([1.0]))
    Tensor([0.])
    """
    x, y = _t(x, y)
    return rel_entr(x, y) - x + y


def xlogy(x, y):
    """x log y, 0 where x = 0 (also for y = 0; NaN for y NaN).

    Its own primitive: d/dx = log y also at x = 0 (``d/dx xlogy(x, 2) = log 2``), d/dy = x / y; at the
    singular point x = y = 0 both are taken as 0.

    >>> import gradtape as gt
    >>> gt.special.xlogy(gt.asarray([0.0, 2.0]), gt.asarray([0.0, 3.0]))
    Tensor([0.        , 2.19722458])
    """
    return apply(_xlogy, _t(x, y))


def xlog1py(x, y):
    """x log1p(y), 0 where x = 0 (NaN for y NaN).

    Its own primitive: d/dx = log1p(y) also at x = 0, d/dy = x / (1 + y); both 0 at x = 0, y = -1.

    >>> import gradtape as gt
    >>> gt.special.xlog1py(gt.asarray([0.0, 2.0]), gt.asarray([-1.0, 0.0]))
    Tensor([0., 0.])
    """
    return apply(_xlog1py, _t(x, y))


def huber(delta, r):
    """r²/2 for |r| <= delta, delta (|r| - delta/2) beyond, inf for delta < 0.

    >>> import gradtape as gt
    >>> gt.special.huber(1.0, gt.asarray([0.5, 3.0]))
    Tensor([0.125, 2.5  ])
    """
    delta, r = _t(delta, r)
    a = _gt.abs(r)
    out = _gt.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return _gt.where(delta < 0, _gt.full_like(out, _gt.inf), out)


def pseudo_huber(delta, r):
    """delta² (sqrt(1 + (r/delta)²) - 1); 0 for delta = 0, inf for delta < 0.

    >>> import gradtape as gt
    >>> gt.special.pseudo_huber(1.0, gt.asarray([0.0]))
    Tensor([0.])
    """
    delta, r = _t(delta, r)
    pos = delta > 0
    d = _safe(pos, delta, 1.0)
    out = d * d * (_gt.sqrt(1 + (r / d) ** 2) - 1)
    return _gt.where(pos, out, _gt.where(delta == 0, _gt.zeros_like(out), _gt.full_like(out, _gt.inf)))


def _boxcox_at(v, lmbda, edge):
    """(exp(lmbda v) - 1) / lmbda = v exprel(lmbda v) where ``edge`` is False (smooth in lmbda at 0, to every
    order); at v = -inf (``edge``: x at the domain's end) -1/lmbda for lmbda > 0, -inf otherwise."""
    vs = _safe(~edge, v, 0.0)
    pos = lmbda > 0
    at_end = _gt.where(pos, -1.0 / _safe(pos, lmbda, 1.0), _gt.full_like(v, -_gt.inf))
    return _gt.where(edge, at_end, vs * exprel(lmbda * vs))


def boxcox(x, lmbda):
    """(x**lmbda - 1) / lmbda, log(x) for lmbda = 0 (differentiable in lmbda there too: log(x)²/2).

    >>> import gradtape as gt
    >>> gt.special.boxcox(gt.asarray([1.0, 4.0]), 0.5)
    Tensor([0., 2.])
    """
    x, lmbda = _t(x, lmbda)
    pos = x > 0
    out = _boxcox_at(_gt.log(_safe(pos, x, 1.0)), lmbda, x == 0)
    return _gt.where(pos | (x == 0), out, _gt.full_like(out, _gt.nan))


def boxcox1p(x, lmbda):
    """((1 + x)**lmbda - 1) / lmbda, log1p(x) for lmbda = 0 (differentiable in lmbda there too).

    >>> import gradtape as gt
    >>> gt.special.boxcox1p(gt.asarray([0.0, 3.0]), 0.5)
    Tensor([0., 2.])
    """
    x, lmbda = _t(x, lmbda)
    pos = x > -1
    out = _boxcox_at(_gt.log1p(_safe(pos, x, 0.0)), lmbda, x == -1)
    return _gt.where(pos | (x == -1), out, _gt.full_like(out, _gt.nan))


def inv_boxcox(y, lmbda):
    """The inverse of :func:`boxcox`: exp(log1p(lmbda y) / lmbda), exp(y) at lmbda = 0 (smooth in lmbda there).

    >>> import gradtape as gt
    >>> gt.special.inv_boxcox(gt.asarray([2.0]), 0.5)
    Tensor([4.])
    """
    y, lmbda = _t(y, lmbda)
    return _gt.exp(y * apply1(_log1prel, lmbda * y, {"k": 0}))


def inv_boxcox1p(y, lmbda):
    """The inverse of :func:`boxcox1p`.

    >>> import gradtape as gt
    >>> gt.special.inv_boxcox1p(gt.asarray([2.0]), 0.5)
    Tensor([3.])
    """
    y, lmbda = _t(y, lmbda)
    return _gt.expm1(y * apply1(_log1prel, lmbda * y, {"k": 0}))


def exp2(x):
    """2**x.

    >>> import gradtape as gt
    >>> gt.special.exp2(gt.asarray([3.0]))
    Tensor([8.])
    """
    x = _t(x)
    return _gt.exp(x * 0.6931471805599453)


def exp10(x):
    """10**x.

    >>> import gradtape as gt
    >>> gt.special.exp10(gt.asarray([2.0]))
    Tensor([100.])
    """
    x = _t(x)
    return _gt.exp(x * 2.302585092994046)


def exprel(x):
    """(exp(x) - 1) / x, 1 at 0; every derivative exact at 0 too (exprel^(k)(0) = 1/(k + 1)).

    >>> import gradtape as gt
    >>> gt.special.exprel(gt.asarray([0.0]))
    Tensor([1.])
    """
    return apply1(_exprel, _t(x), {"k": 0})


def cbrt(x):
    """The real cube root; cbrt'(x) = 1 / (3 cbrt(x)²), +inf at 0.

    >>> import gradtape as gt
    >>> gt.special.cbrt(gt.asarray([-8.0, 27.0]))
    Tensor([-2.,  3.])
    """
    return apply1(_cbrt, _t(x))


def sinc(x):
    """sin(πx) / (πx), 1 at 0 (SciPy's ``scipy.special.sinc``); every derivative exact at 0 (sinc''(0) = -π²/3).

    >>> import gradtape as gt
    >>> gt.special.sinc(gt.asarray([0.0, 1.0])).tolist()[0]
    1.0
    """
    return apply1(_sinc, _t(x), {"k": 0})
