"""gt.jit's fast paths: the plain-call hit path, the kernel run with no plan (lower._direct), sums reduced
inside a kernel (fusion.attach_sums), and the numba disk cache loaded without numba's registry refresh.

Each test checks values against eager gradtape (or NumPy) and that the cache semantics, guards and donation
are what the slow path gives."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gradtape as gt
from gradtape._jit import lower as _lower

pytest.importorskip("numba")


def _entry(f):
    (entries,) = f._cache.values()
    return entries[0]


def _chain(c):
    def f(x):
        for _ in range(5):
            x = gt.tanh(gt.sin(x)) * 1.01 + c
        return gt.sum(x)
    return f


def _chain_np(x, c):
    xs, ys = [], []
    for _ in range(5):
        xs.append(x)
        y = np.tanh(np.sin(x))
        ys.append(y)
        x = y * 1.01 + c
    g = np.ones_like(x)
    for k in range(4, -1, -1):
        g = g * 1.01 * (1.0 - ys[k] ** 2) * np.cos(xs[k])
    return np.sum(x), g


# ---- the kernel as the executable --------------------------------------------------------------------------

def test_value_and_grad_of_a_chain_is_one_kernel_run_directly():
    rng = np.random.default_rng(1)
    x, c = rng.uniform(-2, 2, 16), rng.uniform(-0.5, 0.5, 16)
    f = gt.jit(gt.value_and_grad(_chain(gt.asarray(c))))
    loss, g = f(gt.asarray(x))
    want_loss, want_g = _chain_np(x, c)
    np.testing.assert_allclose(float(loss), want_loss, rtol=1e-13)
    np.testing.assert_allclose(g.data, want_g, rtol=1e-13, atol=1e-15)
    e = _entry(f)
    assert e.exe.kind == "numba" and len(e.exe.kernels) == 1
    assert [n.op for n in e.exe.graph.nodes if n.kind == "prim"] == ["fused0"]     # the sum is in the kernel
    assert "s0 += " in e.exe.kernels[0].source and "o0[0] = s0" in e.exe.kernels[0].source
    assert e.run is not _lower._Plan                                               # (sanity)
    assert getattr(e.run, "__qualname__", "").startswith("Kernel.direct")          # no plan around it
    assert type(loss.data) is np.float64 and g.data.shape == (16,)                 # as eager's sum gives it


def test_direct_run_reorders_and_repeats_outputs():
    f = gt.jit(lambda x: (gt.cos(x) * 2.0, gt.sin(x) + 1.0, gt.cos(x) * 2.0))
    x = gt.asarray(np.linspace(-1, 1, 5))
    a, b, c = f(x)
    np.testing.assert_allclose(a.data, np.cos(x.data) * 2, rtol=1e-15)
    np.testing.assert_allclose(b.data, np.sin(x.data) + 1, rtol=1e-15)
    np.testing.assert_allclose(c.data, a.data, rtol=0)
    assert getattr(_entry(f).run, "__qualname__", "").startswith(("Kernel.direct", "_direct"))


def test_direct_run_reads_several_arguments_and_2d_shapes():
    f = gt.jit(lambda x, y: gt.sum(gt.exp(x) * y + x))
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = f(gt.asarray(x), gt.asarray(y))
    np.testing.assert_allclose(float(got), np.sum(np.exp(x) * y + x), rtol=1e-13)
    # the same signature again, and the arguments swapped: the same entry, values of these arrays
    got = f(gt.asarray(y), gt.asarray(x))
    np.testing.assert_allclose(float(got), np.sum(np.exp(y) * x + y), rtol=1e-13)
    assert f.cache_info().hits == 1 and f.cache_info().compiles == 1


def test_non_contiguous_argument_through_the_direct_run():
    f = gt.jit(lambda x: gt.sin(x) * 3.0)
    base = np.linspace(-2, 2, 32)
    full = f(gt.asarray(base[::2].copy()))
    view = f(gt.asarray(base[::2]))          # same shape, dtype, device: the same entry, a strided view
    np.testing.assert_allclose(view.data, np.sin(base[::2]) * 3.0, rtol=1e-15)
    np.testing.assert_allclose(view.data, full.data, rtol=0)
    assert f.cache_info().compiles == 1


# ---- sums reduced in the kernel ----------------------------------------------------------------------------

def test_sum_in_the_kernel_float32_and_other_readers():
    x = gt.asarray(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4))
    f = gt.jit(lambda x: (gt.sum(gt.sin(x) * 2.0), gt.sum(gt.cos(x)), gt.exp(x) * 0.5))
    s1, s2, e = f(x)
    assert s1.dtype == gt.float32 and s2.dtype == gt.float32 and s1.shape == ()
    np.testing.assert_allclose(float(s1), np.sum(np.sin(x.data.astype(np.float64)) * 2), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(float(s2), np.sum(np.cos(x.data.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(e.data, np.exp(x.data) * 0.5, rtol=1e-6)
    src = _entry(f).exe.kernels[0].source
    assert "s0 += " in src and "s1 += " in src
    # an output read by the sum and by something else stays an array (the sum a backend call)
    g = gt.jit(lambda x: (gt.sum(gt.sin(x) * 2.0), gt.sin(x) * 2.0))
    s, y = g(x)
    np.testing.assert_allclose(float(s), float(np.sum(y.data)), rtol=1e-6)
    assert "s0 += " not in _entry(g).exe.kernels[0].source


def test_partial_sums_keepdims_and_large_regions_are_not_fused():
    x = gt.asarray(np.linspace(-1, 1, 12).reshape(3, 4))
    for fn in (lambda x: gt.sum(gt.sin(x) * 2.0, axis=0), lambda x: gt.sum(gt.sin(x) * 2.0, keepdims=True)):
        f = gt.jit(fn)
        np.testing.assert_allclose(f(x).data, fn(x).data, rtol=1e-14)
        assert "s0 += " not in _entry(f).exe.source()
    big = gt.asarray(np.linspace(-1, 1, 5000))
    f = gt.jit(lambda x: gt.sum(gt.sin(x) * 2.0))
    np.testing.assert_allclose(float(f(big)), float(gt.sum(gt.sin(big) * 2.0)), rtol=1e-14)
    assert "s0 += " not in _entry(f).exe.source()


def test_sum_of_an_empty_region_is_zero():
    f = gt.jit(lambda x: gt.sum(gt.sin(x) * 2.0))
    got = f(gt.asarray(np.zeros((0,))))
    assert float(got) == 0.0 and got.shape == ()


# ---- the call's fast path: cache semantics -----------------------------------------------------------------

def test_fast_path_hits_misses_and_signatures():
    f = gt.jit(lambda x: gt.sin(x) * 2.0 + 1.0)
    a, b = gt.asarray(np.arange(4.0)), gt.asarray(np.arange(5.0))
    for _ in range(3):
        np.testing.assert_allclose(f(a).data, np.sin(a.data) * 2 + 1, rtol=1e-15)
        np.testing.assert_allclose(f(b).data, np.sin(b.data) * 2 + 1, rtol=1e-15)   # alternating: right entry
        assert f(a).shape == (4,) and f(b).shape == (5,)
    info = f.cache_info()
    assert (info.misses, info.compiles, info.currsize) == (2, 2, 2) and info.hits == 10
    h = f(gt.asarray(np.arange(4.0, dtype=np.float32)))           # another dtype: a miss, not the float64 entry
    assert h.dtype == gt.float32 and f.cache_info().misses == 3
    s = f(gt.asarray([0.0, 1.0, 2.0, 3.0], device="strict"))      # another backend: a miss
    assert s.device == "strict" and f.cache_info().misses == 4
    np.testing.assert_allclose(np.asarray(s.data), np.sin(a.data) * 2 + 1, rtol=1e-15)


def test_fast_path_keeps_the_lru_order():
    f = gt.jit(lambda x: x * 2.0, maxsize=2)
    xs = [gt.ones(n) for n in (1, 2, 3)]
    f(xs[0]); f(xs[1]); f(xs[0]); f(xs[0])        # 0 is the most recent (twice through the memo of the last hit)
    f(xs[2])                                       # evicts 1, keeps 0
    assert f.cache_info().currsize == 2
    before = f.cache_info().misses
    f(xs[0])
    assert f.cache_info().misses == before         # still cached
    f(xs[1])
    assert f.cache_info().misses == before + 1     # was evicted
    f.clear_cache()
    f(xs[0])
    assert f.cache_info().misses == before + 2 and f(xs[0]).shape == (1,)


def test_tracked_arguments_leave_the_fast_path():
    f = gt.jit(lambda x: gt.sum(gt.sin(x) * 2.0))
    x = gt.asarray(np.linspace(-1, 1, 6))
    f(x)
    x.requires_grad_()
    y = f(x)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.cos(x.data), rtol=1e-14)
    _, t = gt.jvp(f, (gt.asarray(np.linspace(-1, 1, 6)),), (gt.ones(6),))
    np.testing.assert_allclose(float(t), np.sum(2 * np.cos(np.linspace(-1, 1, 6))), rtol=1e-14)


def test_guards_are_checked_on_the_fast_path():
    def f(x):
        if gt.sum(x) > 0:
            return gt.sin(x) * 2.0
        return gt.cos(x) * 3.0
    jf = gt.jit(f)
    pos, neg = gt.asarray(np.linspace(0.1, 1, 4)), gt.asarray(np.linspace(-1, -0.1, 4))
    for _ in range(2):
        np.testing.assert_allclose(jf(pos).data, np.sin(pos.data) * 2, rtol=1e-15)
        np.testing.assert_allclose(jf(neg).data, np.cos(neg.data) * 3, rtol=1e-15)
    assert jf.cache_info().traces == 2 and jf.cache_info().currsize == 2


def test_donation_is_not_the_fast_path():
    f = gt.jit(lambda x: gt.sin(x) * 2.0, donate_argnums=0)
    x = gt.asarray(np.linspace(-1, 1, 4))
    want = np.sin(x.data) * 2
    np.testing.assert_allclose(f(x).data, want, rtol=1e-15)
    with pytest.raises(RuntimeError, match="donated"):
        x + 1.0
    y = gt.asarray(np.linspace(-1, 1, 4))
    np.testing.assert_allclose(f(y).data, want, rtol=1e-15)     # a hit, and donated too
    with pytest.raises(RuntimeError, match="donated"):
        gt.sin(y)
    assert f.cache_info().hits == 1


# ---- the disk cache in a new process -----------------------------------------------------------------------

_CHILD = """
import numpy as np, gradtape as gt
from gradtape._jit import numba_lower as nl
f = gt.jit(gt.value_and_grad(lambda x: gt.sum(gt.tanh(gt.sin(x)) * 1.5 + x)))
x = gt.asarray(np.linspace(-1, 1, 7))
v, g = f(x)
want = np.tanh(np.sin(x.data))
print(abs(float(v) - np.sum(want * 1.5 + x.data)) < 1e-12,
      float(np.max(np.abs(g.data - (1.5 * (1 - want ** 2) * np.cos(x.data) + 1)))) < 1e-12, nl.LOADS[-1])
"""


def test_disk_cache_loads_in_a_new_process(tmp_path):
    env = dict(os.environ, GRADTAPE_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=root, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(r.stdout.split())
    assert outs[0] == ["True", "True", "compiled"]
    assert outs[1] == ["True", "True", "cache"]         # numba's cache entry, loaded without recompiling


_SOURCE = """
import numpy as np, gradtape as gt
from gradtape import backends
from gradtape._jit import numba_lower as nl, passes, vecmath
from gradtape._jit.fusion import find_regions
f = lambda x: gt.sum(gt.tanh(gt.cos(x) * gt.log(x * x + 1.0)) * gt.expm1(x) + gt.sin(x * 3.0))
g = passes.optimize(gt.trace(gt.value_and_grad(f), gt.asarray(np.linspace(-3, 3, 5000))))
ks = [nl.region_kernel(r, g, backends.get("cpu"), vecmath.kernel_ops(r.ftype)) for r in find_regions(g)]
print(sum(k.uses_vm for k in ks), " ".join(k.digest for k in ks))
"""


def test_generated_source_is_the_same_in_every_process():
    # the kernel file (and numba's cache entry) is named by the source's digest: a text depending on the
    # process's string hashing (set order) would miss the disk cache in the next process
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outs = []
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", _SOURCE], env=env, cwd=root, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(r.stdout.strip())
    assert outs[0].split()[0] != "0"            # a strip-form (vecmath) kernel is among them
    assert outs[0] == outs[1] == outs[2]
