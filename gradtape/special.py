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
(in :mod:`gradtape._ops.special`) instead, right at that point to every
order (JAX's conventions: ``entr'(0) = +inf``, ``cbrt'(0) = +inf``,
``d/dx kl_div(0, y) = -1``, ``d/dx rel_entr(0, y) = 0``).

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

from ._api import (abs, asarray, astype, broadcast_arrays, exp, expm1, float64, full_like, isdtype, isnan, log,
                   log1p, result_type, sqrt, where, zeros_like)
from ._core.dispatch import apply, apply1
from ._core.tensor import Tensor
from ._ops.special import cbrt_p, exprel_p, log1prel_p, sinc_p, xlog1py_p, xlogx_p, xlogy_p
from .nn import sigmoid, softplus

__all__ = ["expit", "logit", "log_expit", "entr", "rel_entr", "kl_div", "xlogy", "xlog1py", "huber",
           "pseudo_huber", "boxcox", "boxcox1p", "inv_boxcox", "inv_boxcox1p", "exp2", "exp10", "exprel", "cbrt",
           "sinc"]


def _tensors(*xs):
    """Tensors on one device with the promoted floating dtype (SciPy's ufuncs return floats)."""
    ts = [x if isinstance(x, Tensor) else None for x in xs]
    like = next((t for t in ts if t is not None), None)
    device = like.device if like is not None else None
    out = [t if t is not None else asarray(x, device=device) for t, x in zip(ts, xs)]
    dtype = result_type(*out)
    if not isdtype(dtype, "real floating"):
        dtype = float64
    out = [o if o.dtype == dtype else astype(o, dtype) for o in out]
    if len(out) > 1:
        out = list(broadcast_arrays(*out))
    return out if len(out) > 1 else out[0]


def _safe(cond, x, value):
    """x where cond, else a harmless constant (so a masked-out branch has finite values and gradient 0)."""
    return where(cond, x, full_like(x, value))


def expit(x):
    """1 / (1 + exp(-x)) (``gt.nn.sigmoid``).

    >>> import gradtape as gt
    >>> gt.special.expit(gt.asarray([0.0, 1000.0]))
    Tensor([0.5, 1. ])
    """
    return sigmoid(_tensors(x))


def log_expit(x):
    """log(expit(x)) = -softplus(-x), without overflow.

    >>> import gradtape as gt
    >>> gt.special.log_expit(gt.asarray([-1000.0]))
    Tensor([-1000.])
    """
    return -softplus(-_tensors(x))


def logit(p):
    """log(p / (1 - p)).

    >>> import gradtape as gt
    >>> gt.special.logit(gt.asarray([0.5]))
    Tensor([0.])
    """
    p = _tensors(p)
    return log(p) - log1p(-p)


def entr(x):
    """-x log x for x > 0, 0 at 0, -inf below; entr'(0) = +inf (-log x - 1 as x -> 0+).

    >>> import gradtape as gt
    >>> gt.special.entr(gt.asarray([0.0, 0.5, -1.0])).tolist()
    [0.0, 0.34657359027997264, -inf]
    """
    x = _tensors(x)
    neg = x < 0
    return where(neg, full_like(x, -math.inf), 0.0 - apply1(xlogx_p, _safe(~neg, x, 1.0)))   # +0 at 0


def rel_entr(x, y):
    """x log(x / y) for x, y > 0; 0 for x = 0, y >= 0; inf otherwise (NaN where an input is NaN).

    At x = 0 (the boundary of the domain) the derivatives are 0, as in JAX.

    >>> import gradtape as gt
    >>> gt.special.rel_entr(gt.asarray([1.0, 0.0]), gt.asarray([2.0, 3.0]))
    Tensor([-0.69314718,  0.        ])
    """
    x, y = _tensors(x, y)
    ok = (x > 0) & (y > 0)
    xs, ys = _safe(ok, x, 1.0), _safe(ok, y, 1.0)
    other = where((x == 0) & (y >= 0), zeros_like(x), full_like(x, math.inf))
    other = where(isnan(x) | isnan(y), full_like(x, math.nan), other)
    return where(ok, xs * (log(xs) - log(ys)), other)


def kl_div(x, y):
    """x log(x / y) - x + y for x, y > 0; y for x = 0, y >= 0; inf otherwise.

    ``rel_entr(x, y) - x + y`` (as JAX): at x = 0 the derivative in x is -1.

    >>> import gradtape as gt
    >>> gt.special.kl_div(gt.asarray([1.0]), gt.asarray([1.0]))
    Tensor([0.])
    """
    x, y = _tensors(x, y)
    return rel_entr(x, y) - x + y


def xlogy(x, y):
    """x log y, 0 where x = 0 (also for y = 0; NaN for y NaN).

    Its own primitive: d/dx = log y also at x = 0 (``d/dx xlogy(x, 2) = log 2``), d/dy = x / y; at the
    singular point x = y = 0 both are taken as 0.

    >>> import gradtape as gt
    >>> gt.special.xlogy(gt.asarray([0.0, 2.0]), gt.asarray([0.0, 3.0]))
    Tensor([0.        , 2.19722458])
    """
    return apply(xlogy_p, _tensors(x, y))


def xlog1py(x, y):
    """x log1p(y), 0 where x = 0 (NaN for y NaN).

    Its own primitive: d/dx = log1p(y) also at x = 0, d/dy = x / (1 + y); both 0 at x = 0, y = -1.

    >>> import gradtape as gt
    >>> gt.special.xlog1py(gt.asarray([0.0, 2.0]), gt.asarray([-1.0, 0.0]))
    Tensor([0., 0.])
    """
    return apply(xlog1py_p, _tensors(x, y))


def huber(delta, r):
    """r²/2 for |r| <= delta, delta (|r| - delta/2) beyond, inf for delta < 0.

    >>> import gradtape as gt
    >>> gt.special.huber(1.0, gt.asarray([0.5, 3.0]))
    Tensor([0.125, 2.5  ])
    """
    delta, r = _tensors(delta, r)
    a = abs(r)
    out = where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return where(delta < 0, full_like(out, math.inf), out)


def pseudo_huber(delta, r):
    """delta² (sqrt(1 + (r/delta)²) - 1); 0 for delta = 0, inf for delta < 0.

    >>> import gradtape as gt
    >>> gt.special.pseudo_huber(1.0, gt.asarray([0.0]))
    Tensor([0.])
    """
    delta, r = _tensors(delta, r)
    pos = delta > 0
    d = _safe(pos, delta, 1.0)
    out = d * d * (sqrt(1 + (r / d) ** 2) - 1)
    return where(pos, out, where(delta == 0, zeros_like(out), full_like(out, math.inf)))


def _boxcox_at(v, lmbda, edge):
    """(exp(lmbda v) - 1) / lmbda = v exprel(lmbda v) where ``edge`` is False (smooth in lmbda at 0, to every
    order); at v = -inf (``edge``: x at the domain's end) -1/lmbda for lmbda > 0, -inf otherwise."""
    vs = _safe(~edge, v, 0.0)
    pos = lmbda > 0
    at_end = where(pos, -1.0 / _safe(pos, lmbda, 1.0), full_like(v, -math.inf))
    return where(edge, at_end, vs * exprel(lmbda * vs))


def boxcox(x, lmbda):
    """(x**lmbda - 1) / lmbda, log(x) for lmbda = 0 (differentiable in lmbda there too: log(x)²/2).

    >>> import gradtape as gt
    >>> gt.special.boxcox(gt.asarray([1.0, 4.0]), 0.5)
    Tensor([0., 2.])
    """
    x, lmbda = _tensors(x, lmbda)
    pos = x > 0
    out = _boxcox_at(log(_safe(pos, x, 1.0)), lmbda, x == 0)
    return where(pos | (x == 0), out, full_like(out, math.nan))


def boxcox1p(x, lmbda):
    """((1 + x)**lmbda - 1) / lmbda, log1p(x) for lmbda = 0 (differentiable in lmbda there too).

    >>> import gradtape as gt
    >>> gt.special.boxcox1p(gt.asarray([0.0, 3.0]), 0.5)
    Tensor([0., 2.])
    """
    x, lmbda = _tensors(x, lmbda)
    pos = x > -1
    out = _boxcox_at(log1p(_safe(pos, x, 0.0)), lmbda, x == -1)
    return where(pos | (x == -1), out, full_like(out, math.nan))


def inv_boxcox(y, lmbda):
    """The inverse of :func:`boxcox`: exp(log1p(lmbda y) / lmbda), exp(y) at lmbda = 0 (smooth in lmbda there).

    >>> import gradtape as gt
    >>> gt.special.inv_boxcox(gt.asarray([2.0]), 0.5)
    Tensor([4.])
    """
    y, lmbda = _tensors(y, lmbda)
    return exp(y * apply1(log1prel_p, lmbda * y, {"k": 0}))


def inv_boxcox1p(y, lmbda):
    """The inverse of :func:`boxcox1p`.

    >>> import gradtape as gt
    >>> gt.special.inv_boxcox1p(gt.asarray([2.0]), 0.5)
    Tensor([3.])
    """
    y, lmbda = _tensors(y, lmbda)
    return expm1(y * apply1(log1prel_p, lmbda * y, {"k": 0}))


def exp2(x):
    """2**x.

    >>> import gradtape as gt
    >>> gt.special.exp2(gt.asarray([3.0]))
    Tensor([8.])
    """
    x = _tensors(x)
    return exp(x * 0.6931471805599453)


def exp10(x):
    """10**x.

    >>> import gradtape as gt
    >>> gt.special.exp10(gt.asarray([2.0]))
    Tensor([100.])
    """
    x = _tensors(x)
    return exp(x * 2.302585092994046)


def exprel(x):
    """(exp(x) - 1) / x, 1 at 0; every derivative exact at 0 too (exprel^(k)(0) = 1/(k + 1)).

    >>> import gradtape as gt
    >>> gt.special.exprel(gt.asarray([0.0]))
    Tensor([1.])
    """
    return apply1(exprel_p, _tensors(x), {"k": 0})


def cbrt(x):
    """The real cube root; cbrt'(x) = 1 / (3 cbrt(x)²), +inf at 0.

    >>> import gradtape as gt
    >>> gt.special.cbrt(gt.asarray([-8.0, 27.0]))
    Tensor([-2.,  3.])
    """
    return apply1(cbrt_p, _tensors(x))


def sinc(x):
    """sin(πx) / (πx), 1 at 0 (SciPy's ``scipy.special.sinc``); every derivative exact at 0 (sinc''(0) = -π²/3).

    >>> import gradtape as gt
    >>> gt.special.sinc(gt.asarray([0.0, 1.0])).tolist()[0]
    1.0
    """
    return apply1(sinc_p, _tensors(x), {"k": 0})
