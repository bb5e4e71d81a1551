"""gt.jit's matmuls through MKL (gradtape/_jit/blas.py): every operand layout and dtype against NumPy's matmul,
derivatives through the jitted products (finite differences, first and second order, forward and reverse),
the fallbacks (a strided view, small products, ``GRADTAPE_BLAS=numpy``, a library that does not load), the
thread count and the shared pool's parallel threshold.

The MKL cases need the ``mkl`` wheel (``pip install gradtape[mkl]``; .ci/run installs it on x86_64)."""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt
from gradtape._jit import blas
from gradtape._jit import threads as _threads
from gradtape.testing import check_grads

pytest.importorskip("numba")

RNG = np.random.default_rng(11)


@pytest.fixture
def fresh(monkeypatch):
    """blas's process state emptied (library, thread count) for the test and restored after it."""
    state = dict(blas._state)
    blas._state.clear()
    yield monkeypatch
    blas._state.clear()
    blas._state.update(state)
    if blas._state.get("lib"):
        blas._state["lib"].gt_set_threads(_threads.get_num_threads())
        blas._state["threads"] = _threads.get_num_threads()


@pytest.fixture
def mkl(fresh):
    """MKL loaded (GRADTAPE_BLAS=mkl: on any CPU), and a list of the GEMMs it runs."""
    fresh.setenv("GRADTAPE_BLAS", "mkl")
    if blas.library() is None:
        pytest.skip(f"MKL not installed here ({blas.reason}): pip install gradtape[mkl]")
    calls = []
    gemm = blas.Product.gemm

    def counted(self, xp, x, y, a, b):
        calls.append((x.shape, y.shape, a[0], b[0]))
        return gemm(self, xp, x, y, a, b)
    fresh.setattr(blas.Product, "gemm", counted)
    return calls


def _t(shape, dtype="float64"):
    return gt.asarray(RNG.uniform(-1.0, 1.0, shape).astype(dtype))


_T = gt.matrix_transpose
SHAPES = {"nn": ((64, 80), (80, 72)), "tn": ((80, 64), (80, 72)), "nt": ((64, 80), (72, 80)),
          "tt": ((80, 64), (72, 80))}
LAYOUTS = {"nn": lambda x, w: x @ w, "tn": lambda x, w: _T(x) @ w, "nt": lambda x, w: x @ _T(w),
           "tt": lambda x, w: _T(x) @ _T(w)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_and_dtype_equals_numpy(mkl, dtype, layout):
    f = LAYOUTS[layout]
    x, w = (_t(s, dtype) for s in SHAPES[layout])
    jf = gt.jit(lambda x, w: f(x, w) * 2.0)
    assert "gemm0(xp" in jf.lower(x, w).source()
    out = jf(x, w)
    want = 2.0 * gt.to_numpy(f(x, w))
    assert out.dtype == x.dtype and out.shape == want.shape
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(gt.to_numpy(out), want, rtol=tol, atol=tol * 80)
    flags = {"nn": (111, 111), "tn": (112, 111), "nt": (111, 112), "tt": (112, 112)}[layout]
    assert mkl and {c[2:] for c in mkl} == {flags}


def test_the_mlp_step_gradients_equal_eager(mkl):
    def loss(w1, w2, x):
        return gt.sum(gt.tanh(gt.maximum(x @ w1, 0.0) @ w2) ** 2)
    w1, w2, x = _t((96, 128), "float32"), _t((128, 64), "float32"), _t((64, 96), "float32")
    vg = gt.value_and_grad(loss, argnums=(0, 1))
    (v, g), (v0, g0) = gt.jit(vg)(w1, w2, x), vg(w1, w2, x)
    np.testing.assert_allclose(gt.to_numpy(v), gt.to_numpy(v0), rtol=1e-5)
    for a, b in zip(g, g0):
        np.testing.assert_allclose(gt.to_numpy(a), gt.to_numpy(b), rtol=1e-4, atol=1e-4)
    # forward 2, reverse: dW2 = h^T ct and dh = ct W2^T, dW1 = x^T dh (x itself needs no gradient)
    assert len(mkl) >= 5 and {(112, 111), (111, 112)} <= {c[2:] for c in mkl}


def test_derivatives_of_a_jitted_product_against_finite_differences(mkl):
    # 64-cubes: 262,144 multiply-adds, the smallest products handed to the BLAS
    f = gt.jit(lambda x, w: gt.sin(x @ w) @ _T(w))
    x, w = _t((64, 64)), _t((64, 64))
    check_grads(f, (x, w), order=2, modes=("fwd", "rev"), full_max=8, atol=1e-5, rtol=1e-4)
    assert len(mkl) >= 2


def test_second_order_through_jit_of_grad(mkl):
    x = _t((64, 64))

    def inner(w):
        return gt.sum(gt.tanh(x @ w))

    def outer(w):
        return gt.sum(gt.grad(inner)(w) ** 2)
    w = _t((64, 64))
    got, want = gt.jit(gt.grad(outer))(w), gt.grad(outer)(w)
    np.testing.assert_allclose(gt.to_numpy(got), gt.to_numpy(want), rtol=1e-11, atol=1e-12)
    assert len(mkl) >= 4


def test_a_strided_operand_goes_to_numpys_matmul(mkl):
    f = gt.jit(lambda x, w: x[:, ::2] @ w + 1.0)
    x, w = _t((64, 160)), _t((80, 64))
    assert "gemm0(xp" in f.lower(x, w).source()
    np.testing.assert_allclose(gt.to_numpy(f(x, w)), gt.to_numpy(x)[:, ::2] @ gt.to_numpy(w) + 1.0, rtol=1e-13, atol=1e-12)
    assert mkl == []


def test_small_products_stay_numpys(mkl):
    f = gt.jit(lambda x, w: x @ w + 1.0)
    x, w = _t((8, 8)), _t((8, 8))
    assert "gemm" not in f.lower(x, w).source()
    assert blas.product_for((8, 8), (8, 8), "float64") is None
    assert blas.product_for((64, 64), (64, 64), "complex128") is None
    assert blas.product_for((64, 64, 2), (2, 64), "float64") is None
    assert blas.product_for((64, 64), (64, 64), "float64") is not None


def test_numpy_mode_never_loads_a_blas(fresh):
    fresh.setenv("GRADTAPE_BLAS", "numpy")
    assert blas.library() is None and blas.product_for((64, 64), (64, 64), "float64") is None
    x, w = _t((64, 64)), _t((64, 64))
    src = gt.jit(lambda x, w: gt.tanh(x @ w)).lower(x, w).source()
    assert "gemm" not in src and "matmul(xp" in src
    assert "lib" not in blas._state


def test_a_library_that_does_not_load_counts_as_none(fresh, tmp_path):
    bad = tmp_path / "libnot_a_blas.so"
    bad.write_bytes(b"not an ELF file")
    assert blas._load([str(bad)]) is False and str(bad) in blas.reason
    fresh.setattr(blas, "_candidates", lambda: [str(bad)])
    fresh.setenv("GRADTAPE_BLAS", "mkl")
    assert blas.library() is None and not blas.shares_pool()
    x, w = _t((64, 64)), _t((64, 64))
    f = gt.jit(lambda x, w: gt.tanh(x @ w))
    assert "gemm" not in f.lower(x, w).source()
    np.testing.assert_allclose(gt.to_numpy(f(x, w)), np.tanh(gt.to_numpy(x) @ gt.to_numpy(w)), rtol=1e-13, atol=1e-12)


def test_a_library_without_gemm_counts_as_none(fresh):
    import ctypes.util
    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no libm to load by name")
    assert blas._load([libm]) is False and "cblas_sgemm" in blas.reason


def test_no_library_found_says_how_to_install(fresh):
    fresh.setenv("GRADTAPE_BLAS", "mkl")
    fresh.setattr(blas, "_candidates", lambda: [])
    assert blas.library() is None and "gradtape[mkl]" in blas.reason


@pytest.mark.parametrize("cpu", ["AuthenticAMD", "HygonGenuine", "GenuineIntel", ""])
def test_auto_takes_mkl_on_intel_cpus_only(fresh, cpu):
    """GRADTAPE_BLAS unset (auto): MKL on an Intel CPU (or one whose vendor cannot be read), NumPy's OpenBLAS on
    others (MKL measured slower there), with the reason; GRADTAPE_BLAS=mkl takes it on any CPU."""
    fresh.delenv("GRADTAPE_BLAS", raising=False)
    fresh.setitem(blas._state, "vendor", cpu)
    fresh.setattr(blas, "_load", lambda paths: loaded.append(paths) or False)
    loaded = []
    assert blas.library() is None and blas.product_for((64, 64), (64, 64), "float64") is None
    if cpu in ("GenuineIntel", ""):
        assert loaded and "AMD" not in blas.reason
    else:
        assert not loaded and f"the CPU is {cpu}'s" in blas.reason and "GRADTAPE_BLAS=mkl" in blas.reason
        fresh.setenv("GRADTAPE_BLAS", "mkl")
        blas.library()
        assert loaded
        fake = type("Lib", (), {"gt_gomp": True})()     # a loaded MKL on GNU OpenMP: shared only while in use
        fresh.setitem(blas._state, "lib", fake)
        assert blas.shares_pool()
        fresh.setenv("GRADTAPE_BLAS", "auto")
        assert not blas.shares_pool()


def test_the_vendor_is_read_from_cpuinfo(fresh):
    v = blas.vendor()
    try:
        with open("/proc/cpuinfo") as fh:
            want = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("vendor_id")), "")
    except OSError:
        want = ""
    assert v == want


def test_an_unknown_mode_is_an_error(fresh):
    fresh.setenv("GRADTAPE_BLAS", "openblas")
    with pytest.raises(ValueError, match="GRADTAPE_BLAS='openblas'"):
        blas.mode()


def test_the_thread_count_follows_set_num_threads(mkl):
    x, w = _t((64, 64)), _t((64, 64))
    f = gt.jit(lambda x, w: (x @ w) * 3.0)
    try:
        gt.set_num_threads(1)
        f(x, w)
        assert blas._state["threads"] == 1
        gt.set_num_threads(2)
        np.testing.assert_allclose(gt.to_numpy(f(x, w)), 3.0 * gt.to_numpy(x) @ gt.to_numpy(w), rtol=1e-13, atol=1e-12)
        assert blas._state["threads"] == 2
    finally:
        gt.set_num_threads(None)


def test_the_listing_names_the_library(mkl):
    x, w = _t((64, 64)), _t((64, 64))
    src = gt.jit(lambda x, w: x @ w - 1.0).lower(x, w).source()
    assert "# ---- gemm0..gemm0: x @ y through " + blas.library().gt_path in src


def test_kernels_go_parallel_sooner_where_the_pool_is_shared(mkl):
    """With MKL on GNU OpenMP (numba's pool) a region of 2**18 element-ops runs prange at 2 threads; with
    NumPy's BLAS it takes PARALLEL_WORK (2**23). Counted by the pool's preparation (parallel calls only)."""
    if not blas.library().gt_gomp:
        pytest.skip("MKL runs on its sequential layer here (no libgomp)")
    x = _t((256, 1024), "float32")
    f = gt.jit(lambda x: gt.maximum(x * 2.0 + 1.0, 0.0))
    want = np.maximum(gt.to_numpy(x) * 2.0 + 1.0, 0.0)
    calls = []
    prepare = _threads.prepare
    mkl.clear()
    try:
        gt.set_num_threads(2)
        mkl_ = blas.shares_pool()
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_threads, "prepare", lambda: calls.append(1) or prepare())
            np.testing.assert_allclose(gt.to_numpy(f(x)), want, rtol=1e-6)
            assert mkl_ and len(calls) == 1, calls
            m.setenv("GRADTAPE_BLAS", "numpy")
            np.testing.assert_allclose(gt.to_numpy(f(x)), want, rtol=1e-6)
            assert len(calls) == 1 and not blas.shares_pool()
    finally:
        gt.set_num_threads(None)


def test_differential_programs_with_a_matmul_through_mkl(mkl):
    """The differential fuzzer's programs with a matmul (the first 30 general ones from seed 300) through gt.jit
    with every 2-D float matmul on MKL, however small, against PyTorch/JAX (the linalg kind's products are
    stacks: NumPy's). Longer: python -m tests.difftest.jit --backend cpu --blas --only-matmul --n N."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from tests.difftest import jit as DJ
    from tests.difftest import programs as P
    seeds = [s for s in range(300, 800) if DJ.has_matmul(P.generate(s, "general"))][:30]
    assert len(seeds) == 30
    with DJ.blas_forced():
        counts, bad = DJ.run(seeds, "general", "cpu")
    assert not bad, f"{len(bad)} programs differ with MKL's products\n\n{bad[0].report()}"
    assert counts["ok"] >= 0.7 * len(seeds), counts
    assert len(mkl) >= 20, len(mkl)               # (some programs multiply vectors or stacks: NumPy's)
