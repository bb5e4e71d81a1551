"""gt.jit regressions found by the differential fuzzer through jit (``python -m tests.difftest.jit``), shrunk.

Each program failed on NumPy with "gradtape.jit: fused regions make a cycle (a fusion bug)" (elementwise
regions that fed each other through a reduction: gradtape/_jit/fusion.py checked only paths leaving and
re-entering one region). Every route is checked against eager gradtape on NumPy: the jitted values, the
gradient of the jitted function, the jitted gradient, and reverse over reverse through the jitted function.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt

pytest.importorskip("numba")     # the cycles were in the numba lowering's regions (replay never fused)

DEV = "cpu"
NINF = float("-inf")


def _a(v, dtype=np.float64):
    return gt.asarray(np.asarray(v, dtype=dtype), device=DEV)


def seed2034(x0, x1, x2, x3):
    v0 = gt.var(x2, axis=-1, keepdims=True, correction=0)
    v1 = gt.tensordot(v0, x3, axes=0)
    v2 = gt.cumulative_prod(v1, axis=1, include_initial=False)
    return v2, v1


def seed2046(x0, x1, x2, x3):
    v0 = gt.log(x1)
    gt.divide(x0, x2)
    v2 = gt.nn.cross_entropy(x2, gt.nn.softmax(x3, axis=-1))
    return v2, v0


def seed2063(x0, x1):
    v0 = gt.negative(x0)
    gt.reciprocal(x1)
    v2 = gt.linalg.vector_norm(v0, axis=1, ord=NINF)
    v3 = gt.linalg.vector_norm(v2, axis=(-1,), keepdims=True, ord=2)
    v6 = gt.nn.sigmoid(v3) * 1.35 + 0.575
    return gt.remainder(v2, v6), v6


def seed2067(x0, x1, x2):
    v0 = gt.log(x2)
    v1 = gt.reshape(v0, shape=(3, -1))
    v1[-3, -4:-4:-1]
    return (gt.std(x2, axis=None, keepdims=True, correction=1.0),)


def seed2073(x0, x1, x2, x3, x4):
    gt.acos(x3)
    v1 = gt.subtract(x4, x3)
    v2 = gt.nn.logsumexp(v1, axis=(-2,), keepdims=True)
    v5 = gt.nn.sigmoid(v2) * 1.71 + -0.855
    return gt.acos(v5), v2


def seed2079(x0, x1, x2):
    v0 = gt.nn.logsumexp(x2, axis=(-3,), keepdims=True)
    v1 = gt.std(v0, axis=2, keepdims=True, correction=0)
    v4 = gt.nn.sigmoid(v0) * 1.35 + 0.575
    return (gt.remainder(v1, v4),)


PROGRAMS = [
    (seed2034, lambda: [_a([[[-1.979], [-1.759], [0.991]], [[1.961], [-0.518], [-0.352]]]),
                        _a([[[0.510], [-0.264], [0.172]], [[-0.591], [-0.977], [-0.699]]]),
                        _a([-1.398]), _a([-1.026])]),
    (seed2046, lambda: [_a([1.524, 1.898, -1.78]), _a([3.834]),
                        _a([[2.978, 1.571, 0.337], [0.360, 2.567, 0.373]]),
                        _a([[1.779, -1.822, -0.463], [-0.200, -0.622, -0.578]])]),
    (seed2063, lambda: [_a([[-1.309], [0.696], [1.909]]), _a([1.652, 4.2, 3.41, 4.537])]),
    (seed2067, lambda: [_a(np.zeros(0), np.float32), _a([[-0.970]], np.float32),
                        _a([[0.992, 2.786, 4.638]], np.float32)]),
    (seed2073, lambda: [_a([-1.995, -1.398, -1.609]), _a([[-1.263, -0.049, 1.185], [-0.985, 1.879, 0.383]]),
                        _a([-0.350, 0.303, -0.687, -1.351]),
                        _a([[-0.716, -0.221, -0.423], [0.504, 0.371, -0.652]]), _a(0.211)]),
    (seed2079, lambda: [_a([[-0.214, 1.154], [-0.841, -0.072]]), _a([[-0.419]]),
                        _a(np.linspace(-1.8, 1.9, 12).reshape(2, 3, 2))]),
]
IDS = [f.__name__ for f, _ in PROGRAMS]


def _eq(got, want, tol):
    got, want = gt.to_numpy(got), gt.to_numpy(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    assert np.allclose(got, want, rtol=tol, atol=tol, equal_nan=True), (got, want)


def _loss(f):
    def L(*xs):
        outs = f(*xs)
        total = None
        for k, o in enumerate(outs):
            w = gt.reshape(gt.linspace(0.5, 1.5 + k, o.size, dtype=o.dtype, device=DEV), o.shape)
            t = gt.sum(o * w)
            total = t if total is None else total + t
        return total
    return L


def _double(f, xs):
    nums = tuple(range(len(xs)))

    def s(*a):
        gs = gt.grad(_loss(f), argnums=nums)(*a)
        total = None
        for k, g in enumerate(gs):
            t = gt.sum(g * (0.25 * (k + 1)))
            total = t if total is None else total + t
        return total
    return gt.grad(s, argnums=nums)(*xs)


@pytest.mark.parametrize("f,args", PROGRAMS, ids=IDS)
def test_values_and_gradients_through_jit_equal_eager(f, args):
    xs = args()
    tol = 1e-4 if xs[0].dtype == gt.float32 else 1e-9
    jf = gt.jit(f)
    for _ in range(2):                                   # compile, then the cached executable
        for got, want in zip(jf(*xs), f(*xs), strict=True):
            _eq(got, want, tol)
    assert jf.cache_info().traces == 1
    nums = tuple(range(len(xs)))
    want = gt.grad(_loss(f), argnums=nums)(*xs)
    for route in (gt.grad(_loss(jf), argnums=nums), gt.jit(gt.grad(_loss(f), argnums=nums))):
        for got, w in zip(route(*xs), want, strict=True):
            _eq(got, w, tol)
    for got, w in zip(_double(jf, xs), _double(f, xs), strict=True):     # the reverse-over-reverse graphs
        _eq(got, w, 10 * tol)
