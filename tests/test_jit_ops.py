"""Every op of the op table (tests/test_ops.py's OPS) through ``gt.jit``: values, gradients and second order
equal to eager.

One case per row (its first shape with elements), also for tests/test_linalg.py's table. The rows run on array-api-strict, where ``gt.jit``
lowers to the replay plan: what is checked here is tracing, the passes, the cache and the derivative
rules of a jitted call (reverse mode through its jitted vjp, second order through the jitted vjp's own
rule). A few elementwise rows run on NumPy as well, where regions become numba kernels (the kernels
per primitive are tests/test_jit_codegen*'s).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradtape as gt
from test_linalg import OPS as LINALG_OPS, _args as _linalg_args
from test_ops import OPS, _data


def _shapes(op):
    return next((s for s in op.shapes if all(np.prod(x) > 0 for x in s)), op.shapes[0])


def _args(op, device):
    rng = np.random.default_rng(zlib.crc32(repr(op.name).encode()) % 2**32)
    return [gt.asarray(a, device=device) for a in _data(op, _shapes(op), rng)]


def _close(a, b, tol=1e-10):
    a, b = gt.to_numpy(a), gt.to_numpy(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _weights(out, seed=1):
    rng = np.random.default_rng(seed)
    return gt.asarray(rng.uniform(0.5, 1.5, size=out.shape), device=out.device)


def _check(op, device, order=2, args=None):
    args = _args(op, device) if args is None else args
    jf = gt.jit(op.fn)
    want = op.fn(*args)
    _close(jf(*args), want)
    _close(jf(*args), want)               # the cached executable, no trace
    info = jf.cache_info()
    assert info.traces == 1 and info.hits >= 1, info
    nums = tuple(k for k, a in enumerate(args) if gt.isdtype(a.dtype, "real floating"))
    w = _weights(want)

    def loss(f):
        return lambda *a: gt.sum(f(*a) * w)
    g_jit = gt.grad(loss(jf), argnums=nums)(*args)
    g_eager = gt.grad(loss(op.fn), argnums=nums)(*args)
    for a, b in zip(g_jit, g_eager):
        _close(a, b, 1e-9)
    if order < 2 or op.order < 2:
        return
    # second order: the gradient of <grad, v> (reverse over reverse through the jitted vjp's own rule)
    vs = [_weights(args[k], seed=k + 2) for k in nums]

    def inner(f):
        def h(*a):
            gs = gt.grad(loss(f), argnums=nums)(*a)
            return sum(gt.sum(g * v) for g, v in zip(gs, vs))
        return h
    h_jit = gt.grad(inner(jf), argnums=nums)(*args)
    h_eager = gt.grad(inner(op.fn), argnums=nums)(*args)
    for a, b in zip(h_jit, h_eager):
        _close(a, b, 1e-8)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_op_through_jit(op):
    _check(op, "strict")


@pytest.mark.parametrize("op", LINALG_OPS, ids=[op.name for op in LINALG_OPS])
def test_linalg_op_through_jit(op):
    _check(op, "strict", args=_linalg_args(op.args[0], "strict", 1234))


NUMBA_ROWS = ["sin", "multiply", "where"]


@pytest.mark.parametrize("name", NUMBA_ROWS)
def test_op_through_jit_numpy(name):
    pytest.importorskip("numba")
    op = next(o for o in OPS if o.name == name)
    _check(op, "cpu", order=1)


def test_forward_mode_and_jacobian_through_jit():
    x = gt.asarray([0.3, -0.8, 1.2], device="strict")
    f = lambda x: gt.sin(x) * gt.exp(x) + x ** 2  # noqa: E731
    jf = gt.jit(f)
    v = gt.asarray([1.0, 0.5, -2.0], device="strict")
    for a, b in zip(gt.jvp(jf, (x,), (v,)), gt.jvp(f, (x,), (v,))):
        _close(a, b)
    _close(gt.jacobian(jf)(x), gt.jacobian(f)(x))
    _close(gt.jacfwd(jf)(x), gt.jacfwd(f)(x))
    s = lambda x: gt.sum(f(x) ** 2)  # noqa: E731
    _close(gt.hessian(gt.jit(s))(x), gt.hessian(s)(x), 1e-9)
    _close(gt.hvp(gt.jit(s), x, v), gt.hvp(s, x, v), 1e-9)


def test_differential_programs_through_jit():
    """30 fixed random programs of the differential fuzzer through gt.jit (forward, cached call, grad(jit),
    jit(grad), reverse over reverse) against PyTorch/JAX; longer runs: python -m tests.difftest.jit --n N."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from tests.difftest import jit as DJ
    counts, bad = DJ.run(range(100, 130), "general", "strict")
    assert not bad, f"{len(bad)} programs differ through gt.jit\n\n{bad[0].report()}"
    assert counts["ok"] >= 24, counts
