"""``gt.special``: SciPy special functions that have an array-API formula, differentiable.

SciPy (``SCIPY_ARRAY_API=1``) evaluates ``scipy.special.f(x)`` for a
non-NumPy namespace ``xp`` with ``xp.special.f`` when that exists (its hook
for the proposed array API ``special`` extension), else with a generic
array-API implementation, else by converting to NumPy. Defining the
functions here makes ``scipy.special.expit(t)``, ``scipy.stats.entropy(t)``
(through ``entr``) and the like keep gradtape's graph. Every function is a
composition of gradtape's differentiable ops, so all orders of derivatives
come free; a ``where`` picks the branch, with the unused branch fed safe
inputs so that its gradient is 0, not NaN.

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

import gradtape as _gt

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
    """-x log x for x > 0, 0 at 0, -inf below.

    >>> import gradtape as gt
    >>> gt.special.entr(gt.asarray([0.0, 0.5, -1.0])).tolist()
    [0.0, 0.34657359027997264, -inf]
    """
    x = _t(x)
    pos = x > 0
    xs = _safe(pos, x, 1.0)
    return _gt.where(pos, -xs * _gt.log(xs), _gt.where(x == 0, _gt.zeros_like(x), _gt.full_like(x, -_gt.inf)))


def rel_entr(x, y):
    """x log(x / y) for x, y > 0; 0 for x = 0, y >= 0; inf otherwise.

    >>> import gradtape as gt
    >>> gt.special.rel_entr(gt.asarray([1.0, 0.0]), gt.asarray([2.0, 3.0]))
    Tensor([-0.69314718,  0.        ])
    """
    x, y = _t(x, y)
    ok = (x > 0) & (y > 0)
    xs, ys = _safe(ok, x, 1.0), _safe(ok, y, 1.0)
    other = _gt.where((x == 0) & (y >= 0), _gt.zeros_like(x), _gt.full_like(x, _gt.inf))
    return _gt.where(ok, xs * (_gt.log(xs) - _gt.log(ys)), other)


def kl_div(x, y):
    """x log(x / y) - x + y for x, y > 0; y for x = 0, y >= 0; inf otherwise.

    >>> import gradtape as gt
    >>> gt.special.kl_div(gt.asarray([1.0]), gt.asarray([1.0]))
    Tensor([0.])
    """
    x, y = _t(x, y)
    ok = (x > 0) & (y > 0)
    xs, ys = _safe(ok, x, 1.0), _safe(ok, y, 1.0)
    other = _gt.where((x == 0) & (y >= 0), y, _gt.full_like(x, _gt.inf))
    return _gt.where(ok, xs * (_gt.log(xs) - _gt.log(ys)) - xs + ys, other)


def xlogy(x, y):
    """x log y, 0 where x = 0 (also for y = 0).

    >>> import gradtape as gt
    >>> gt.special.xlogy(gt.asarray([0.0, 2.0]), gt.asarray([0.0, 3.0]))
    Tensor([0.        , 2.19722458])
    """
    x, y = _t(x, y)
    nz = x != 0
    return _gt.where(nz, x * _gt.log(_safe(nz, y, 1.0)), _gt.zeros_like(x))


def xlog1py(x, y):
    """x log1p(y), 0 where x = 0.

    >>> import gradtape as gt
    >>> gt.special.xlog1py(gt.asarray([0.0, 2.0]), gt.asarray([-1.0, 0.0]))
    Tensor([0., 0.])
    """
    x, y = _t(x, y)
    nz = x != 0
    return _gt.where(nz, x * _gt.log1p(_safe(nz, y, 0.0)), _gt.zeros_like(x))


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


def boxcox(x, lmbda):
    """(x**lmbda - 1) / lmbda, log(x) for lmbda = 0.

    >>> import gradtape as gt
    >>> gt.special.boxcox(gt.asarray([1.0, 4.0]), 0.5)
    Tensor([0., 2.])
    """
    x, lmbda = _t(x, lmbda)
    nz = lmbda != 0
    ls = _safe(nz, lmbda, 1.0)
    return _gt.where(nz, _gt.expm1(ls * _gt.log(x)) / ls, _gt.log(x))


def boxcox1p(x, lmbda):
    """((1 + x)**lmbda - 1) / lmbda, log1p(x) for lmbda = 0.

    >>> import gradtape as gt
    >>> gt.special.boxcox1p(gt.asarray([0.0, 3.0]), 0.5)
    Tensor([0., 2.])
    """
    x, lmbda = _t(x, lmbda)
    nz = lmbda != 0
    ls = _safe(nz, lmbda, 1.0)
    return _gt.where(nz, _gt.expm1(ls * _gt.log1p(x)) / ls, _gt.log1p(x))


def inv_boxcox(y, lmbda):
    """The inverse of :func:`boxcox`.

    >>> import gradtape as gt
    >>> gt.special.inv_boxcox(gt.asarray([2.0]), 0.5)
    Tensor([4.])
    """
    y, lmbda = _t(y, lmbda)
    nz = lmbda != 0
    ls = _safe(nz, lmbda, 1.0)
    return _gt.where(nz, _gt.exp(_gt.log1p(ls * y) / ls), _gt.exp(y))


def inv_boxcox1p(y, lmbda):
    """The inverse of :func:`boxcox1p`.

    >>> import gradtape as gt
    >>> gt.special.inv_boxcox1p(gt.asarray([2.0]), 0.5)
    Tensor([3.])
    """
    y, lmbda = _t(y, lmbda)
    nz = lmbda != 0
    ls = _safe(nz, lmbda, 1.0)
    return _gt.where(nz, _gt.expm1(_gt.log1p(ls * y) / ls), _gt.expm1(y))


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
    """(exp(x) - 1) / x, 1 at 0.

    >>> import gradtape as gt
    >>> gt.special.exprel(gt.asarray([0.0]))
    Tensor([1.])
    """
    x = _t(x)
    nz = x != 0
    xs = _safe(nz, x, 1.0)
    return _gt.where(nz, _gt.expm1(xs) / xs, _gt.ones_like(x))


def cbrt(x):
    """The real cube root.

    >>> import gradtape as gt
    >>> gt.special.cbrt(gt.asarray([-8.0, 27.0]))
    Tensor([-2.,  3.])
    """
    x = _t(x)
    return _gt.sign(x) * _gt.abs(x) ** (1.0 / 3.0)


def sinc(x):
    """sin(πx) / (πx), 1 at 0 (SciPy's ``scipy.special.sinc``).

    >>> import gradtape as gt
    >>> gt.special.sinc(gt.asarray([0.0, 1.0])).tolist()[0]
    1.0
    """
    x = _t(x)
    nz = x != 0
    xs = _safe(nz, x, 1.0) * _gt.pi
    return _gt.where(nz, _gt.sin(xs) / xs, _gt.ones_like(x))
