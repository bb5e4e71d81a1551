"""Backend fused kernels equal the generic, standard-only rules they override."""
import numpy as np
import pytest

import gradtape as gt
from gradtape import backends


def _backends():
    out = [backends.get("cpu")]
    if "cuda" in backends.available():
        out.append(backends.get("cuda"))
    return out


@pytest.mark.parametrize("bk", _backends(), ids=lambda b: b.device)
def test_relu_vjp_override_equals_generic(bk):
    rng = np.random.default_rng(0)
    x = bk.asarray(np.concatenate([rng.standard_normal(50), np.zeros(3)]).astype(np.float32))
    ct = bk.asarray(rng.standard_normal(53).astype(np.float32))
    xp = bk.xp
    fused = bk.to_numpy(xp.relu_vjp(ct, x))
    generic = bk.to_numpy(xp.where(x > 0, ct, xp.zeros_like(ct)))
    assert fused.dtype == generic.dtype and np.array_equal(fused, generic)


@pytest.mark.parametrize("bk", _backends(), ids=lambda b: b.device)
def test_scatter_add_overrides_equal_generic(bk):
    rng = np.random.default_rng(1)
    xp = bk.xp
    z = bk.asarray(rng.standard_normal((3, 5)))
    idx = bk.asarray(np.array([4, 0, 4, 4, 2]))
    v = bk.asarray(rng.standard_normal((3, 5)))
    got = bk.to_numpy(xp.take_add(z, idx, v, 1))
    want = bk.to_numpy(backends.generic_take_add(xp, z, idx, v, 1))
    assert np.allclose(got, want, rtol=1e-14, atol=1e-14)
    idx2 = bk.asarray(np.array([[0, 0], [2, 1], [4, 4]]))
    v2 = bk.asarray(rng.standard_normal((3, 2)))
    got = bk.to_numpy(xp.along_add(z, idx2, v2, 1))
    want = bk.to_numpy(backends.generic_along_add(xp, z, idx2, v2, 1))
    assert np.allclose(got, want, rtol=1e-14, atol=1e-14)


def test_relu_gradient_same_on_fused_and_generic_backends():
    """NumPy (fused relu VJP) and array-api-strict (generic) give the same gradient."""
    data = np.array([-1.0, 0.0, 2.0, -3.0, 4.0])
    grads = []
    for dev in ("cpu", "strict"):
        x = gt.asarray(data, device=dev).requires_grad_()
        gt.sum(gt.nn.relu(x) * gt.asarray(data + 10, device=dev)).backward()
        grads.append(gt.to_numpy(x.grad))
    assert np.array_equal(grads[0], grads[1])
