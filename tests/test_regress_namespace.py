"""Regression tests for issue 9 (namespace functions, reductions, gt.special, gt.nn): each defect found by
differential testing against PyTorch / JAX, checked forward and reverse (and to second order where it
matters) on the cpu and strict backends."""
import math
import warnings

import numpy as np
import pytest

import gradtape as gt
from gradtape.testing import check_grads
from conftest import to_np

S = gt.special


def _d1(f, x):
    """f' elementwise, reverse and forward mode."""
    rev = gt.grad(lambda t: gt.sum(f(t)))(x)
    fwd = gt.jvp(f, (x,), (gt.ones_like(x),))[1]
    return to_np(rev), to_np(fwd)


def _d2(f, x):
    """f'' elementwise: reverse over reverse, forward over reverse and reverse over forward."""
    g = gt.grad(lambda t: gt.sum(f(t)))
    rr = gt.grad(lambda t: gt.sum(g(t)))(x)
    fr = gt.jvp(g, (x,), (gt.ones_like(x),))[1]
    rf = gt.grad(lambda t: gt.sum(gt.jvp(f, (t,), (gt.ones_like(t),))[1]))(x)
    return to_np(rr), to_np(fr), to_np(rf)


# ---- gt.special at exactly 0 (and around it) ------------------------------------------------------------

AT_ZERO = {   # f, f(0), f'(0), f''(0)  (JAX's conventions; exprel: the Taylor series 1/(k+1))
    "exprel": (S.exprel, 1.0, 0.5, 1.0 / 3.0),
    "xlogy(x, 2)": (lambda x: S.xlogy(x, 2.0), 0.0, math.log(2.0), 0.0),
    "xlog1py(x, 2)": (lambda x: S.xlog1py(x, 2.0), 0.0, math.log(3.0), 0.0),
    "sinc": (S.sinc, 1.0, 0.0, -math.pi ** 2 / 3.0),
    "kl_div(x, 2)": (lambda x: S.kl_div(x, 2.0), 2.0, -1.0, 0.0),
    "rel_entr(x, 2)": (lambda x: S.rel_entr(x, 2.0), 0.0, 0.0, 0.0),
    "entr": (S.entr, 0.0, math.inf, -math.inf),
    "cbrt": (S.cbrt, 0.0, math.inf, -math.inf),
    "boxcox(2, l)": (lambda lam: S.boxcox(2.0, lam), math.log(2.0), math.log(2.0) ** 2 / 2, math.log(2.0) ** 3 / 3),
    "boxcox1p(1, l)": (lambda lam: S.boxcox1p(1.0, lam), math.log(2.0), math.log(2.0) ** 2 / 2,
                       math.log(2.0) ** 3 / 3),
    "inv_boxcox(2, l)": (lambda lam: S.inv_boxcox(2.0, lam), math.exp(2.0), -2 * math.exp(2.0),
                         math.exp(2.0) * (4.0 + 16.0 / 3.0)),
}


@pytest.mark.parametrize("case", list(AT_ZERO))
def test_special_derivatives_at_zero(device, case):
    f, v, d1, d2 = AT_ZERO[case]
    x = gt.asarray([0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(to_np(f(x)), [v], rtol=1e-12, atol=1e-15)
        for got in _d1(f, x):
            np.testing.assert_allclose(got, [d1], rtol=1e-12, atol=1e-15)
        for got in _d2(f, x):
            np.testing.assert_allclose(got, [d2], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_np(gt.hessian(lambda t: f(t)[0])(x)), [[d2]], rtol=1e-10, atol=1e-12)


def test_exprel_and_sinc_every_order_at_zero():
    """exprel^(k)(0) = 1/(k+1); sinc^(2j)(0) = (-1)^j pi^(2j) / (2j+1), odd orders 0."""
    for f, ref in ((S.exprel, lambda k: 1.0 / (k + 1)),
                   (S.sinc, lambda k: 0.0 if k % 2 else (-1) ** (k // 2) * math.pi ** k / (k + 1))):
        g = lambda t: f(t)[0]  # noqa: E731
        x = gt.asarray([0.0])
        for k in range(1, 5):
            g = (lambda h: lambda t: gt.grad(h)(t)[0])(g)
            np.testing.assert_allclose(float(g(x)), ref(k), rtol=1e-10, atol=1e-12)


JAX_CASES = {  # gradtape function, JAX function, points (across the series/closed-form switches too)
    "exprel": (S.exprel, lambda jnp, jsp: (lambda x: jnp.expm1(x) / x),
               [-30.0, -3.0, -1.001, -0.999, -0.3, -1e-3, 2e-3, 0.4, 0.999, 1.001, 2.5, 20.0]),
    "sinc": (S.sinc, lambda jnp, jsp: jnp.sinc, [-3.3, -0.33, -0.31, -1e-3, 1e-3, 0.2, 0.317, 0.32, 1.5, 7.25]),
    "cbrt": (S.cbrt, lambda jnp, jsp: jnp.cbrt, [-8.0, -0.3, -1e-3, 1e-3, 0.5, 27.0]),
    "entr": (S.entr, lambda jnp, jsp: jsp.entr, [1e-4, 0.3, 1.0, 2.5]),
    "xlogy(x, 1.7)": (lambda x: S.xlogy(x, 1.7), lambda jnp, jsp: (lambda x: jsp.xlogy(x, 1.7)), [-2.0, -0.1, 0.3, 4.0]),
    "xlogy(0.8, y)": (lambda y: S.xlogy(0.8, y), lambda jnp, jsp: (lambda y: jsp.xlogy(0.8, y)), [0.1, 0.9, 3.0]),
    "xlog1py(x, 0.4)": (lambda x: S.xlog1py(x, 0.4), lambda jnp, jsp: (lambda x: jsp.xlog1py(x, 0.4)), [-1.0, 0.5]),
    "xlog1py(0.8, y)": (lambda y: S.xlog1py(0.8, y), lambda jnp, jsp: (lambda y: jsp.xlog1py(0.8, y)),
                        [-0.5, 0.2, 3.0]),
    "kl_div(x, 1.5)": (lambda x: S.kl_div(x, 1.5), lambda jnp, jsp: (lambda x: jsp.kl_div(x, 1.5)), [0.1, 1.0, 3.0]),
    "kl_div(0.7, y)": (lambda y: S.kl_div(0.7, y), lambda jnp, jsp: (lambda y: jsp.kl_div(0.7, y)), [0.1, 1.0, 3.0]),
    "rel_entr(x, 1.5)": (lambda x: S.rel_entr(x, 1.5), lambda jnp, jsp: (lambda x: jsp.rel_entr(x, 1.5)), [0.2, 2.0]),
}


@pytest.mark.parametrize("case", list(JAX_CASES))
def test_special_values_and_two_derivatives_match_jax(device, case):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax.scipy.special as jsp
    f, jf, pts = JAX_CASES[case]
    jf = jf(jnp, jsp)
    xs = np.asarray(pts)
    x = gt.asarray(xs)
    ref0 = np.asarray(jax.vmap(jf)(xs))
    ref1 = np.asarray(jax.vmap(jax.grad(jf))(xs))
    ref2 = np.asarray(jax.vmap(jax.grad(jax.grad(jf)))(xs))
    np.testing.assert_allclose(to_np(f(x)), ref0, rtol=1e-12)
    for got in _d1(f, x):
        np.testing.assert_allclose(got, ref1, rtol=1e-9, atol=1e-12)
    for got in _d2(f, x):
        np.testing.assert_allclose(got, ref2, rtol=1e-7, atol=1e-10)


def test_special_xlogy_partials_at_zero_both_arguments(device):
    """d/dx xlogy(0, y) = log y, d/dy = x / y = 0, d2/dxdy = 1/y; at the singular x = y = 0 both are 0."""
    x, y = gt.asarray([0.0, 0.0, 0.0]), gt.asarray([2.0, 0.5, 0.0])
    gx, gy = gt.grad(lambda a, b: gt.sum(S.xlogy(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(to_np(gx), [math.log(2.0), math.log(0.5), 0.0], rtol=1e-14)
    np.testing.assert_allclose(to_np(gy), [0.0, 0.0, 0.0])
    h = gt.hessian(lambda ab: S.xlogy(ab[0], ab[1]))(gt.asarray([0.0, 2.0]))
    np.testing.assert_allclose(to_np(h), [[0.0, 0.5], [0.5, 0.0]], rtol=1e-14)


def test_special_values_match_scipy_at_edges(device):
    sp = pytest.importorskip("scipy.special")
    x = np.array([0.0, 0.0, 0.0, 0.0, 1.5, -2.0, np.nan])
    y = np.array([0.0, np.inf, -1.0, np.nan, 0.0, 3.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in ("xlogy", "xlog1py", "kl_div", "rel_entr"):
            np.testing.assert_allclose(to_np(getattr(S, name)(gt.asarray(x), gt.asarray(y))),
                                       getattr(sp, name)(x, y), rtol=1e-14, err_msg=name)
        t = np.array([-np.inf, -40.0, -1.0, -1e-9, 0.0, 1e-9, 0.5, 1.0, 30.0, 700.0, np.inf, np.nan])
        for name in ("exprel", "entr", "cbrt"):
            np.testing.assert_allclose(to_np(getattr(S, name)(gt.asarray(t))), getattr(sp, name)(t),
                                       rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(to_np(S.sinc(gt.asarray(t[1:-3]))), np.sinc(t[1:-3]), rtol=1e-13, atol=1e-16)
        for name in ("boxcox", "boxcox1p", "inv_boxcox", "inv_boxcox1p"):
            v = np.array([0.0, 0.5, 2.0, -1.0, -0.5, np.nan])
            for lam in (0.0, 0.5, -0.5, 2.0):
                np.testing.assert_allclose(to_np(getattr(S, name)(gt.asarray(v), lam)), getattr(sp, name)(v, lam),
                                           rtol=1e-13, err_msg=f"{name} {lam}")


def test_special_boxcox_family_gradients_check():
    x = gt.asarray([0.4, 1.3, 2.0])
    for f in (S.boxcox, S.boxcox1p, S.inv_boxcox, S.inv_boxcox1p):
        for lam in (gt.asarray([0.0, 1e-9, -0.3]), gt.asarray([0.7, -1e-4, 0.0])):
            check_grads(f, (x, lam), order=2)
