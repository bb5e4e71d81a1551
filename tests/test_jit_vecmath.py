"""gradtape/_jit/vecmath.py: exp, expm1, tanh, sin, cos, log as vectorisable arithmetic, checked against NumPy
(libm-accurate) to the stated ulp bounds over many points and edge values (nan, ±inf, 0, subnormals, large
arguments), float64 and float32; sin/cos beyond TRIG_LIMIT are counted (the kernels rerun with libm)."""
import math
import time
import warnings

import numpy as np
import pytest

from gradtape._jit import vecmath

numba = pytest.importorskip("numba")

EDGES = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1e-310, 2.2250738585072014e-308, 1e-20,
         -1e-20, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 2.0, 20.0, -20.0, 21.0, 40.0, 700.0, 709.78, 709.79, -708.0,
         -745.1, -746.0, 1e5, -1e5, vecmath.TRIG_LIMIT, -vecmath.TRIG_LIMIT, 1e300, -1e300]
DOMAINS = {"exp": (-745, 710), "expm1": (-40, 40), "tanh": (-25, 25), "sin": (-1e4, 1e4), "cos": (-1e4, 1e4),
           "log": None}


@pytest.fixture(scope="module")
def fns():
    return vecmath.jitted(numba, "float64")


def points(name, n=200_000):
    rng = np.random.default_rng(7)
    if name == "log":
        x = np.exp(rng.uniform(-740, 709, n))
    else:
        lo, hi = DOMAINS[name]
        x = np.concatenate([rng.uniform(lo, hi, n // 2), rng.uniform(-2, 2, n // 2)])
    return np.concatenate([x, EDGES])


def ulps(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref)
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    sp = np.spacing(np.abs(ref)).astype(np.float64)
    with np.errstate(all="ignore"):
        e = np.where(same, 0.0, np.abs(got - ref.astype(np.float64)) / np.where(sp == 0, 5e-324, sp))
    return float(np.max(np.where(np.isfinite(e), e, np.inf)))


def run_array(fns, name, x):
    out = np.empty_like(x)
    far = fns[f"_vm_{name}_a"](x, out, x.size)
    return out, far


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_float64_within_stated_ulps(fns, name):
    x = points(name)
    if name in ("sin", "cos"):
        x = x[np.abs(x) <= vecmath.TRIG_LIMIT]
        x = np.concatenate([x, [math.inf, -math.inf, math.nan]])
    got, _ = run_array(fns, name, x)
    with np.errstate(all="ignore"):
        ref = getattr(np, name)(x)
    assert ulps(got, ref) <= vecmath.ULP_BOUNDS[name], name
    # nan, inf exactly as libm
    spec = ~np.isfinite(ref)
    assert np.array_equal(np.isnan(got[spec]), np.isnan(ref[spec]))
    assert np.array_equal(got[np.isinf(ref)], ref[np.isinf(ref)])


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_float32_within_one_ulp(fns, name):
    x = points(name, 50_000)
    with np.errstate(all="ignore"):
        x32 = x.astype(np.float32)
    x32 = x32[np.isfinite(x32) | np.isnan(x32)]
    if name in ("sin", "cos"):
        x32 = x32[np.abs(x32) <= 1e4]
    got, _ = run_array(fns, name, x32.astype(np.float64))
    with np.errstate(all="ignore"):
        ref = getattr(np, name)(x32.astype(np.float64)).astype(np.float32)      # correctly rounded float32
        got32 = got.astype(np.float32)
    assert ulps(got32, ref) <= 1, name


def test_far_trig_arguments_are_counted(fns):
    x = np.array([0.5, 1e7, -3e6, math.inf, math.nan, vecmath.TRIG_LIMIT])
    out, far = run_array(fns, "sin", x)
    assert far == 2                                   # 1e7, -3e6 (inf and nan are exact as nan)
    assert np.isnan(out[3]) and np.isnan(out[4]) and out[0] == pytest.approx(math.sin(0.5), rel=1e-15)


def test_an_error_is_caught(fns):
    x = points("exp", 1000)
    got, _ = run_array(fns, "exp", x)
    with np.errstate(all="ignore"):
        assert ulps(got * (1 + 1e-14), np.exp(x)) > vecmath.ULP_BOUNDS["exp"]


def test_speed_against_numpy_is_measured(fns, capsys):
    """Not a pass/fail figure (a shared machine): prints vecmath vs np.<name> vs numba's libm on 1e6 elements."""
    x = np.random.default_rng(0).uniform(-3, 3, 1_000_000)
    out = np.empty_like(x)
    for name in ("exp", "tanh", "sin"):
        f = fns[f"_vm_{name}_a"]
        f(x, out, x.size)
        t0 = time.perf_counter()
        f(x, out, x.size)
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(np, name)(x)
        t2 = time.perf_counter()
        print(f"{name}: vecmath {1e3 * (t1 - t0):.2f} ms, numpy {1e3 * (t2 - t1):.2f} ms")
        assert t1 > t0
