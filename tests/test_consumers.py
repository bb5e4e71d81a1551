"""Array-API consumers, unchanged: SciPy and scikit-learn code differentiated through gt.Tensor.

SciPy and scikit-learn dispatch on ``x.__array_namespace__()`` (gradtape)
when ``SCIPY_ARRAY_API=1`` (set in conftest.py before SciPy is imported) and,
for scikit-learn, ``sklearn.config_context(array_api_dispatch=True)``. Every
derivative is checked against finite differences (``gt.testing.check_grads``),
and the values against SciPy/scikit-learn on NumPy arrays. The boundary
cases (where a library converts to NumPy or to a Python float) are tested
too, so that a change on either side shows up here.
"""
import numpy as np
import pytest

import gradtape as gt
from gradtape.testing import check_grads
from conftest import to_np

scipy = pytest.importorskip("scipy", reason="needs SciPy (the `consumers` extra)")
import scipy.special  # noqa: E402
import scipy.stats  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _array_api_enabled():
    from scipy._lib import _array_api
    if not _array_api.SCIPY_ARRAY_API:
        pytest.fail("SciPy was imported before SCIPY_ARRAY_API=1 was set (tests/conftest.py sets it): "
                    "its array API dispatch is off")


X1 = np.array([0.5, -1.0, 2.0, 0.1, 1.3])
X2 = np.array([[0.3, -0.2, 1.1], [1.5, 0.4, -0.7], [-0.9, 2.0, 0.25], [0.6, -1.2, 0.8]])
P = np.array([0.1, 0.25, 0.4, 0.05, 0.2])


def arr(a):
    return gt.asarray(np.asarray(a, dtype=np.float64), device=gt.get_default_device())


def keeps_graph(f, *xs):
    """f(*tensors) is a gradtape tensor that requires grad (the graph went through the library)."""
    ts = [arr(x).requires_grad_() for x in xs]
    out = f(*ts)
    assert isinstance(out, gt.Tensor) and out.requires_grad, type(out)
    return out


# ---- SciPy ----------------------------------------------------------------------------------------

SCIPY_CASES = {
    "special.logsumexp": (lambda x: scipy.special.logsumexp(x), X1),
    "special.logsumexp(axis)": (lambda x: scipy.special.logsumexp(x, axis=0), X2),
    "special.softmax": (lambda x: scipy.special.softmax(x, axis=1), X2),
    "special.log_softmax": (lambda x: scipy.special.log_softmax(x, axis=-1), X2),
    "special.expit": (lambda x: scipy.special.expit(x), X1),
    "special.logit": (lambda p: scipy.special.logit(p), P),
    "special.xlogy": (lambda x: scipy.special.xlogy(x, x * x + 1.0), X1),
    "special.entr": (lambda p: scipy.special.entr(p), P),
    "special.rel_entr": (lambda p: scipy.special.rel_entr(p, p[::-1]), P),
    "special.kl_div": (lambda p: scipy.special.kl_div(p, p[::-1]), P),
    "special.huber": (lambda x: scipy.special.huber(0.6, x), X1),
    "special.boxcox": (lambda p: scipy.special.boxcox(p, 0.3), P),
    "stats.moment": (lambda x: scipy.stats.moment(x, order=3), X1),
    "stats.moment(axis=0)": (lambda x: scipy.stats.moment(x, order=2, axis=0), X2),
    "stats.skew": (lambda x: scipy.stats.skew(x), X1),
    "stats.kurtosis": (lambda x: scipy.stats.kurtosis(x), X1),
    "stats.zscore": (lambda x: scipy.stats.zscore(x), X1),
    "stats.zscore(axis=1, ddof=1)": (lambda x: scipy.stats.zscore(x, axis=1, ddof=1), X2),
    "stats.variation": (lambda x: scipy.stats.variation(x), X1),
    "stats.gmean": (lambda p: scipy.stats.gmean(p), P),
    "stats.hmean": (lambda p: scipy.stats.hmean(p), P),
    "stats.pmean": (lambda p: scipy.stats.pmean(p, 2.5), P),
    "stats.entropy": (lambda p: scipy.stats.entropy(p), P),
    "stats.entropy(qk)": (lambda p: scipy.stats.entropy(p, p[::-1]), P),
    "stats.sem": (lambda x: scipy.stats.sem(x), X1),
    "stats.tstd": (lambda x: scipy.stats.tstd(x), X1),
}


@pytest.mark.parametrize("case", list(SCIPY_CASES))
def test_scipy_keeps_the_graph_and_its_gradients_check(device, case):
    f, x = SCIPY_CASES[case]
    out = keeps_graph(f, x)
    assert out.device == device
    np.testing.assert_allclose(to_np(out), np.asarray(f(x)), rtol=1e-12, atol=1e-15)   # SciPy on NumPy arrays
    check_grads(f, (arr(x),), order=2 if x.size <= 5 else 1)


def test_xlogy_and_entr_gradients_are_finite_at_zero():
    x = gt.asarray([0.0, 0.5]).requires_grad_()
    gt.sum(scipy.special.entr(x) + scipy.special.xlogy(x, x)).backward()
    assert np.isfinite(to_np(x.grad)[1]) and not np.isnan(to_np(x.grad)).any()


def test_scipy_logsumexp_with_weights_writes_into_a_saved_intermediate():
    """The boundary: logsumexp(a, b=...) takes max(a) and then sets a[argmax] = -inf in place (array-api-extra's
    ``at(...).set(copy=None)`` writes in place into a writeable array); max saved ``a`` for its gradient, so
    the backward refuses (as PyTorch does), loudly. Without ``b`` it copies first and works (tested above)."""
    x = gt.asarray(X2).requires_grad_()
    y = scipy.special.logsumexp(x, axis=0, b=gt.ones_like(x) * 0.5)
    np.testing.assert_allclose(to_np(y), scipy.special.logsumexp(X2, axis=0, b=0.5), rtol=1e-12)
    with pytest.raises(RuntimeError, match="changed in place"):
        gt.sum(y).backward()


def test_scipy_boundary_functions_without_an_array_api_formula():
    """erf, gammaln, ndtr, ...: SciPy's last resort is np.asarray(x), which gradtape refuses for a tracked tensor
    (no silent loss of the graph) and allows for an untracked one (values only)."""
    x = gt.asarray([0.1, 0.7]).requires_grad_()
    for f in (scipy.special.erf, scipy.special.gammaln, scipy.special.ndtr):
        with pytest.raises(RuntimeError, match="drop its graph"):
            f(x)
        y = f(x.detach())
        assert isinstance(y, gt.Tensor) and not y.requires_grad
        np.testing.assert_allclose(to_np(y), f(np.array([0.1, 0.7])))


# ---- scikit-learn ------------------------------------------------------------------------------------

sklearn = pytest.importorskip("sklearn", reason="needs scikit-learn (the `consumers` extra)")
from sklearn import metrics, preprocessing  # noqa: E402

Y_TRUE = np.array([1.0, 2.0, 3.0, 4.5, -0.5])
Y_PRED = np.array([1.1, 1.9, 3.3, 4.0, -0.2])
Y2_TRUE = np.array([[1.0, 0.5], [2.0, -1.0], [3.0, 0.0], [4.5, 2.0]])


@pytest.fixture
def dispatch():
    with sklearn.config_context(array_api_dispatch=True):
        yield


METRICS = {
    "mean_squared_error": metrics.mean_squared_error,
    "r2_score": metrics.r2_score,
    "explained_variance_score": metrics.explained_variance_score,
    "mean_absolute_error": metrics.mean_absolute_error,
    "root_mean_squared_error": metrics.root_mean_squared_error,
}


@pytest.mark.parametrize("name", list(METRICS))
def test_sklearn_metrics_raw_values_keep_the_graph(device, dispatch, name):
    m = METRICS[name]
    yt = arr(Y_TRUE)
    out = keeps_graph(lambda p: m(yt, p, multioutput="raw_values"), Y_PRED)
    assert out.shape == (1,)
    np.testing.assert_allclose(to_np(out)[0], m(Y_TRUE, Y_PRED), rtol=1e-12)
    order = 1 if name == "mean_absolute_error" else 2        # |x| has no second derivative to check
    check_grads(lambda p: m(yt, p, multioutput="raw_values"), (arr(Y_PRED),), order=order)
    # w.r.t. both arguments, two outputs
    check_grads(lambda t, p: m(t, p, multioutput="raw_values"), (arr(Y2_TRUE), arr(Y2_TRUE[::-1] * 0.9)),
                order=1)


def test_sklearn_scalar_metrics_return_python_floats(dispatch):
    """The boundary: with the default multioutput="uniform_average" scikit-learn ends with float(result)
    (it returns eager Python floats by design), so the graph stops there; use multioutput="raw_values"."""
    p = gt.asarray(Y_PRED).requires_grad_()
    r = metrics.mean_squared_error(gt.asarray(Y_TRUE), p)
    assert type(r) is float and r == pytest.approx(metrics.mean_squared_error(Y_TRUE, Y_PRED))


SCALERS = {
    "MinMaxScaler": lambda: preprocessing.MinMaxScaler(feature_range=(-1, 1)),
    "MaxAbsScaler": lambda: preprocessing.MaxAbsScaler(),
}


@pytest.mark.parametrize("name", list(SCALERS))
def test_sklearn_preprocessing_fit_transform_is_differentiable(device, dispatch, name):
    make = SCALERS[name]
    f = lambda X: make().fit_transform(X)          # noqa: E731  (the statistics depend on X too)
    out = keeps_graph(f, X2)
    np.testing.assert_allclose(to_np(out), make().fit_transform(X2), rtol=1e-12)
    check_grads(f, (arr(X2),), order=1)         # piecewise linear in X: first derivatives


def test_sklearn_fitted_transform_and_inverse(device, dispatch):
    scaler = preprocessing.StandardScaler().fit(arr(X2))
    check_grads(lambda X: scaler.inverse_transform(scaler.transform(X) ** 2), (arr(X2[:2]),), order=2)
    np.testing.assert_allclose(to_np(scaler.inverse_transform(scaler.transform(arr(X2)))), X2, rtol=1e-12)


def test_sklearn_standard_scaler_fit_has_a_masked_nan_branch(dispatch):
    """The boundary: StandardScaler.fit's incremental variance computes last_sum / (last_count / new_count), which
    is 0/0 = NaN on a first fit, and overwrites those entries (``var[count == 0] = new_var[...]``). Values are
    right, but reverse mode multiplies the zero cotangent of the overwritten entries by that NaN (0 * NaN =
    NaN), as PyTorch or JAX would: differentiate transform() with fitted statistics instead (tested above)."""
    X = gt.asarray(X2).requires_grad_()
    out = preprocessing.StandardScaler().fit_transform(X)
    np.testing.assert_allclose(to_np(out), preprocessing.StandardScaler().fit_transform(X2), rtol=1e-12)
    with np.errstate(invalid="ignore"):
        gt.sum(out * out).backward()
    assert np.isnan(to_np(X.grad)).all()


def test_sklearn_normalizer_divides_in_place_what_it_saved(dispatch):
    """The boundary: normalize(X) computes the row norms from X and then does ``X /= norms``; the product X * X
    saved X, so the backward refuses (as PyTorch does) instead of differentiating a changed value."""
    X = gt.asarray(X2).requires_grad_()
    out = preprocessing.Normalizer().fit_transform(X)
    np.testing.assert_allclose(to_np(out), preprocessing.Normalizer().fit_transform(X2), rtol=1e-12)
    with pytest.raises(RuntimeError, match="changed in place"):
        gt.sum(out).backward()


def test_sklearn_function_without_array_api_support_refuses_loudly(dispatch):
    """preprocessing.scale calls np.asarray(X): gradtape refuses rather than silently dropping the graph."""
    X = gt.asarray(X2).requires_grad_()
    with pytest.raises(RuntimeError, match="drop its graph"):
        preprocessing.scale(X)


def test_ndimage_vectorized_filter_refuses_a_string_cval_as_scipy_expects():
    """SciPy's own test (TestVectorizedFilter::test_input_validation) accepts any backend's refusal of
    ``cval='a duck'`` whose message says what is unsupported; gradtape refuses at asarray with a TypeError."""
    from scipy import ndimage
    x = gt.ones((10, 10))
    with pytest.raises(TypeError, match=r"gradtape\.asarray: cannot make a tensor from a Python str .*Unsupported"):
        ndimage.vectorized_filter(x, gt.mean, size=2, mode="constant", cval="a duck")
    with pytest.raises(ValueError, match="`batch_memory` must be positive number"):
        ndimage.vectorized_filter(x, gt.mean, size=2, batch_memory=0)
