"""``gt.fft`` against ``torch.fft``: values, the gradient of a real loss (PyTorch's convention, see
tests/test_complex.py), the JVP (torch.func.jvp) and second order, for every transform, every norm, lengths that
pad and truncate, and chosen axes; on NumPy and array-api-strict (the ``device`` fixture); gt.vmap of a transform.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt

torch = pytest.importorskip("torch")

NORMS = ("backward", "ortho", "forward")


def _z(rng, shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


# (name, input kind, shape, gradtape kwargs, torch kwargs)
CASES = []
for norm in NORMS:
    for n in (None, 3, 8):
        for name in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft"):
            kind = "real" if name in ("rfft", "ihfft") else "complex"
            CASES.append((name, kind, (2, 5), {"n": n, "axis": -1, "norm": norm}, {"n": n, "dim": -1, "norm": norm}))
    CASES.append(("fft", "real", (5, 3), {"axis": 0, "norm": norm}, {"dim": 0, "norm": norm}))
    CASES.append(("irfft", "complex", (4, 3), {"n": 5, "axis": 0, "norm": norm}, {"n": 5, "dim": 0, "norm": norm}))
    for name in ("fftn", "ifftn", "rfftn", "irfftn"):
        kind = "real" if name == "rfftn" else "complex"
        for s, axes in ((None, None), ((3, 6), (0, 2)), ((4,), (-2,)), ((5, 2), None)):
            CASES.append((name, kind, (3, 4, 5), {"s": s, "axes": axes, "norm": norm},
                          {"s": s, "dim": axes, "norm": norm}))
IDS = [f"{c[0]}-{c[1]}-{c[3]}".replace(" ", "") for c in CASES]


def _data(rng, kind, shape):
    return rng.normal(size=shape) if kind == "real" else _z(rng, shape)


def _np(t):
    return t.detach().resolve_conj().numpy()


@pytest.mark.parametrize("name,kind,shape,kw,tkw", CASES, ids=IDS)
def test_value_and_grad_match_torch(device, name, kind, shape, kw, tkw):
    rng = np.random.default_rng(len(IDS[CASES.index((name, kind, shape, kw, tkw))]))
    x = _data(rng, kind, shape)
    f = lambda x: getattr(gt.fft, name)(x, **kw)              # noqa: E731
    tf = lambda x: getattr(torch.fft, name)(x, **tkw)         # noqa: E731
    tx = torch.tensor(x, requires_grad=True)
    tout = tf(tx)
    w = _data(rng, "complex" if tout.is_complex() else "real", tuple(tout.shape))
    (tout * torch.tensor(w).conj()).real.sum().backward()
    out = f(gt.asarray(x))
    np.testing.assert_allclose(gt.to_numpy(out), _np(tout), rtol=1e-10, atol=1e-10)
    gw = gt.asarray(w)
    g = gt.grad(lambda x: gt.sum(gt.real(f(x) * gt.conj(gw))))(gt.asarray(x))
    assert g.dtype == gt.asarray(x).dtype
    np.testing.assert_allclose(gt.to_numpy(g), _np(tx.grad), rtol=1e-9, atol=1e-10)
    t = _data(rng, kind, shape)
    _, tan = gt.jvp(f, (gt.asarray(x),), (gt.asarray(t),))
    _, ttan = torch.func.jvp(tf, (torch.tensor(x),), (torch.tensor(t),))
    np.testing.assert_allclose(gt.to_numpy(tan), _np(ttan), rtol=1e-9, atol=1e-10)


SECOND = [("fft", "complex", {"n": 6, "norm": "ortho"}), ("rfft", "real", {"n": 7}), ("irfft", "complex", {"n": 6}),
          ("rfftn", "real", {"s": (3, 4), "norm": "forward"}), ("hfft", "complex", {})]


@pytest.mark.parametrize("name,kind,kw", SECOND, ids=[s[0] for s in SECOND])
def test_grad_of_grad_matches_torch(device, name, kind, kw):
    rng = np.random.default_rng(7)
    x = _data(rng, kind, (3, 5))
    tkw = {k: v for k, v in kw.items()}
    f = lambda x: gt.sum(gt.abs(getattr(gt.fft, name)(gt.sin(x), **kw)) ** 2)      # noqa: E731
    tf = lambda x: (torch.abs(getattr(torch.fft, name)(torch.sin(x), **tkw)) ** 2).sum()   # noqa: E731
    v = _data(rng, kind, (3, 5))
    gv = gt.asarray(v)
    h = gt.grad(lambda x: gt.sum(gt.real(gt.grad(f)(x) * gt.conj(gv))))(gt.asarray(x))
    tx = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(tf(tx), tx, create_graph=True)
    (g * torch.tensor(v).conj()).real.sum().backward()
    np.testing.assert_allclose(gt.to_numpy(h), _np(tx.grad), rtol=1e-8, atol=1e-9)


def test_freqs_and_shifts_match_numpy(device):
    for n in (1, 4, 5):
        for d in (1.0, 0.1):
            np.testing.assert_allclose(gt.to_numpy(gt.fft.fftfreq(n, d=d)), np.fft.fftfreq(n, d=d))
            np.testing.assert_allclose(gt.to_numpy(gt.fft.rfftfreq(n, d=d)), np.fft.rfftfreq(n, d=d))
    assert gt.fft.fftfreq(4, dtype=gt.float32).dtype == gt.float32
    x = np.arange(15.0).reshape(3, 5)
    for axes in (None, 0, (1,), (0, 1)):
        np.testing.assert_array_equal(gt.to_numpy(gt.fft.fftshift(gt.asarray(x), axes=axes)), np.fft.fftshift(x, axes))
        np.testing.assert_array_equal(gt.to_numpy(gt.fft.ifftshift(gt.asarray(x), axes=axes)),
                                      np.fft.ifftshift(x, axes))
    g = gt.grad(lambda x: gt.sum(gt.fft.fftshift(x) * gt.asarray(x)))(gt.asarray(x))
    np.testing.assert_allclose(gt.to_numpy(g), np.fft.fftshift(x) + np.fft.ifftshift(x))


def test_dtypes(device):
    x32 = gt.asarray(np.ones(4, dtype=np.float32))
    assert gt.fft.rfft(x32).dtype == gt.complex64 and gt.fft.fft(x32).dtype == gt.complex64
    assert gt.fft.irfft(gt.fft.rfft(x32)).dtype == gt.float32
    assert gt.grad(lambda x: gt.sum(gt.abs(gt.fft.fft(x)) ** 2))(x32).dtype == gt.float32


def test_errors():
    with pytest.raises(ValueError, match="norm"):
        gt.fft.fft(gt.ones(4), norm="bad")
    with pytest.raises(TypeError, match="real floating"):
        gt.fft.rfft(gt.asarray([1j]))
    with pytest.raises(ValueError, match="lengths"):
        gt.fft.fftn(gt.ones((2, 2)), s=(2,), axes=(0, 1))
    with pytest.raises(ValueError, match="0-d"):
        gt.fft.fft(gt.asarray(1.0))


def test_vmap_of_transforms():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 3, 6))
    for f in (lambda x: gt.fft.fft(x, n=5), lambda x: gt.fft.rfftn(x, s=(2, 4)), lambda x: gt.fft.irfft(gt.fft.rfft(x)),
              lambda x: gt.fft.ifftn(x, axes=(0,))):
        got = gt.vmap(f)(gt.asarray(x))
        want = np.stack([gt.to_numpy(f(gt.asarray(r))) for r in x])
        np.testing.assert_allclose(gt.to_numpy(got), want, rtol=1e-12, atol=1e-12)
    g = gt.vmap(gt.grad(lambda x: gt.sum(gt.abs(gt.fft.rfft(x, n=8)) ** 2)))(gt.asarray(x[:, 0]))
    want = np.stack([gt.to_numpy(gt.grad(lambda x: gt.sum(gt.abs(gt.fft.rfft(x, n=8)) ** 2))(gt.asarray(r)))
                     for r in x[:, 0]])
    np.testing.assert_allclose(gt.to_numpy(g), want, rtol=1e-12)
