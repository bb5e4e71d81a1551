"""``gt.linalg.vector_norm`` of every order on real and complex inputs with zero entries, against torch: value,
gradient (PyTorch's convention for complex inputs) and JVP (torch.func.jvp). The p-norms with p < 1 (and p < 0)
have an infinite slope (or value) at 0: torch's gradient there is 0, and gradtape's must be too (it was NaN)."""
import math

import numpy as np
import pytest

import gradtape as gt

torch = pytest.importorskip("torch")

ORDS = [0, 0.3, 0.5, 1, 1.5, 2, 3, math.inf, -math.inf, -1, -2.5]
INPUTS = {"real": np.array([3.0, 0.0, -1.0, 0.5]), "complex": np.array([3 + 4j, 0, 1 - 2j, -0.5j]),
          "real-nonzero": np.array([3.0, 2.0, -1.0, 0.5]), "zeros": np.zeros(4),
          "complex-nonzero": np.array([3 + 4j, 1j, 1 - 2j, -0.5j])}


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("name", list(INPUTS))
def test_vector_norm_matches_torch(name, ord):
    z = INPUTS[name]
    t = torch.tensor(z, requires_grad=True)
    tv = torch.linalg.vector_norm(t, ord=ord)
    if tv.requires_grad:
        tv.backward()
    want_g = np.zeros_like(z) if t.grad is None else t.grad.numpy()

    def f(x):
        return gt.linalg.vector_norm(x, ord=ord)
    v = f(gt.asarray(z))
    assert v.dtype == gt.float64                    # real for a complex input too
    np.testing.assert_allclose(float(v), float(tv.detach()), rtol=1e-12)
    g = gt.to_numpy(gt.grad(f)(gt.asarray(z)))
    assert g.dtype == z.dtype
    np.testing.assert_allclose(g, want_g, rtol=1e-10, atol=1e-12)
    tan = np.linspace(0.5, 2.0, z.size) * (1 + 0.5j if np.iscomplexobj(z) else 1)
    _, jt = gt.jvp(f, (gt.asarray(z),), (gt.asarray(tan),))
    _, tj = torch.func.jvp(lambda x: torch.linalg.vector_norm(x, ord=ord), (torch.tensor(z),), (torch.tensor(tan),))
    np.testing.assert_allclose(float(jt), float(tj), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ord", [0.5, -1.0, 3.0])
def test_vector_norm_axis_keepdims(ord):
    z = np.array([[3.0, 0.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 0.5]])
    t = torch.tensor(z, requires_grad=True)
    torch.linalg.vector_norm(t, ord=ord, dim=1, keepdim=True).sum().backward()
    g = gt.grad(lambda x: gt.sum(gt.linalg.vector_norm(x, ord=ord, axis=1, keepdims=True)))(gt.asarray(z))
    np.testing.assert_allclose(gt.to_numpy(g), t.grad.numpy(), rtol=1e-10, atol=1e-12)
