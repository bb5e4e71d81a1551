"""The fast paths of the products' one helper (gradtape._ops.matmul._mm) give np.matmul's result.

_mm multiplies a stack by one broadcast matrix (an unmapped parameter lifted inside gt.vmap: stride 0 on its
stack axes) as one GEMM, a stack of outer products as a broadcast product (the longer side innermost, a
transposed view where that is the rows), and a stack against a plain matrix through its rows. Each case is
checked against np.matmul, including stacks that the broadcast matrix's stack axes extend (no fast path).
"""
import array_api_compat.numpy as xp
import numpy as np
import pytest

import gradtape as gt
from gradtape._ops.matmul import _mm, _one_matrix

rng = np.random.default_rng(7)


def _arr(shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


CASES = [
    ("stack @ broadcast matrix", lambda: (_arr((5, 1, 4)), np.broadcast_to(_arr((4, 3)), (5, 4, 3)))),
    ("broadcast matrix @ stack", lambda: (np.broadcast_to(_arr((3, 4)), (5, 3, 4)), _arr((5, 4, 2)))),
    ("two-axis stack @ broadcast", lambda: (_arr((2, 5, 3, 4)), np.broadcast_to(_arr((4, 6)), (2, 5, 4, 6)))),
    ("broadcast adds stack axes", lambda: (_arr((1, 3, 4)), np.broadcast_to(_arr((4, 2)), (6, 4, 2)))),
    ("broadcast over a size-1 axis", lambda: (_arr((5, 2, 4)), np.broadcast_to(_arr((1, 4, 3)), (5, 4, 3)))),
    ("outer products, long rows", lambda: (_arr((3, 64, 1)), _arr((3, 1, 5)))),
    ("outer products, long columns", lambda: (_arr((3, 5, 1)), _arr((3, 1, 64)))),
    ("stack @ matrix", lambda: (_arr((4, 3, 5)), _arr((5, 2)))),
    ("matrix @ stack", lambda: (_arr((3, 5)), _arr((4, 5, 2)))),
    ("empty stack @ broadcast", lambda: (_arr((0, 2, 4)), np.broadcast_to(_arr((4, 3)), (0, 4, 3)))),
    ("float32 outer products", lambda: (_arr((2, 40, 1), np.float32), _arr((2, 1, 3), np.float32))),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_mm_matches_numpy(name, make):
    a, b = make()
    out = _mm(xp, a, b)
    want = np.matmul(a, b)
    assert out.shape == want.shape and out.dtype == want.dtype
    np.testing.assert_allclose(out, want, rtol=1e-5 if a.dtype == np.float32 else 1e-12, atol=1e-12)


def test_one_matrix_only_for_stride_zero_stacks():
    m = _arr((4, 3))
    assert _one_matrix(np.broadcast_to(m, (5, 4, 3))) is not None
    assert _one_matrix(np.stack([m] * 5)) is None          # equal values but real copies: not a broadcast
    assert _one_matrix(m) is None                           # a matrix is not a stack
    assert _one_matrix(gt.asarray(m)) is None               # tensors (recorded rules) have no strides


def test_per_example_gradients_with_broadcast_parameter_path():
    """vmap(grad) of x @ W + b with W unmapped: the lifted W takes the broadcast path; equal to a loop."""
    W, b, xs = gt.asarray(_arr((4, 3))), gt.asarray(_arr(3)), gt.asarray(_arr((6, 4)))
    loss = lambda p, x: gt.sum(gt.tanh(x @ p["W"] + p["b"]) ** 2)   # noqa: E731
    got = gt.vmap(gt.grad(loss), in_axes=(None, 0))({"W": W, "b": b}, xs)
    for i in range(6):
        want = gt.grad(loss)({"W": W, "b": b}, xs[i])
        for k in ("W", "b"):
            np.testing.assert_allclose(np.asarray(got[k][i]), np.asarray(want[k]), rtol=1e-12, atol=1e-14)
