"""Regression tests for the reverse-mode engine, recording and the Tensor grad API (issue 9).

Each test reproduces one of the issue's examples; where the issue cites PyTorch, the result is compared
with torch (float64). The engine's debug checks (every cotangent has its input's exact shape and dtype)
are on for every test here.
"""
import numpy as np
import pytest

import gradtape as gt
from gradtape._core import engine as _engine
from conftest import to_np


@pytest.fixture(autouse=True)
def _debug_engine(monkeypatch):
    monkeypatch.setattr(_engine, "DEBUG", True)


def arr(a, dtype=None):
    a = np.asarray(a, dtype=dtype or (a.dtype if hasattr(a, "dtype") else float))
    return gt.asarray(a, device=gt.get_default_device())


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    return torch


# ---- 1. total derivatives through sources ------------------------------------------------------

def test_grad_through_intermediate_source_is_total(device):
    torch = _torch()
    a = arr(2.0).requires_grad_()
    b = a * 2.0
    y = b * 3.0 + a
    ga, gb = gt.autograd.grad(y, [a, b])
    ta = torch.tensor(2.0, requires_grad=True)
    tb = ta * 2.0
    ty = tb * 3.0 + ta
    wa, wb = torch.autograd.grad(ty, [ta, tb])
    assert (float(ga), float(gb)) == (float(wa), float(wb)) == (7.0, 3.0)


def test_tape_gradient_through_intermediate_source_is_total(device):
    a = arr(2.0)
    with gt.GradientTape() as tape:
        tape.watch(a)
        b = a * 2.0
        y = b * 3.0 + a
    ga, gb = tape.gradient(y, [a, b])
    assert (float(ga), float(gb)) == (7.0, 3.0)


def test_tape_jacobian_through_intermediate_source_is_total(device):
    a = arr([2.0, -1.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(a)
        b = a * 2.0
        y = b * 3.0 + a
    ja, jb = tape.jacobian(y, [a, b])
    np.testing.assert_array_equal(to_np(ja), 7.0 * np.eye(2))
    np.testing.assert_array_equal(to_np(jb), 3.0 * np.eye(2))


def test_grad_several_intermediate_sources_match_torch(device):
    torch = _torch()
    X = np.array([0.3, -1.2, 2.0])

    def prog(m, x):
        u = m.sin(x) * x          # source 1
        v = u * u + x             # source 2, above u
        w = m.exp(v * 0.1) + u    # source 3, above both
        return (w * v).sum(), [x, u, v, w]

    x = arr(X).requires_grad_()
    y, srcs = prog(gt, x)
    got = gt.autograd.grad(y, srcs)
    tx = torch.tensor(X, requires_grad=True)
    ty, tsrcs = prog(torch, tx)
    want = torch.autograd.grad(ty, tsrcs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(to_np(g), w.numpy(), rtol=1e-12)
    # the sources in another order (newest first), and a leaf given twice
    y2, (x2, u2, v2, w2) = prog(gt, x)
    got2 = gt.autograd.grad(y2, [w2, v2, x, u2, x])
    for g, w in zip(got2, [want[3], want[2], want[0], want[1], want[0]]):
        np.testing.assert_allclose(to_np(g), w.numpy(), rtol=1e-12)


def test_grad_intermediate_source_create_graph_second_order(device):
    torch = _torch()
    a = arr(1.5).requires_grad_()
    b = a * a
    y = b * b + a * b
    ga, gb = gt.autograd.grad(y, [a, b], create_graph=True)
    (d2,) = gt.autograd.grad(ga, [a])
    ta = torch.tensor(1.5, requires_grad=True)
    tb = ta * ta
    ty = tb * tb + ta * tb
    tga, tgb = torch.autograd.grad(ty, [ta, tb], create_graph=True)
    (td2,) = torch.autograd.grad(tga, [ta])
    np.testing.assert_allclose([float(ga), float(gb), float(d2)], [tga.item(), tgb.item(), td2.item()],
                               rtol=1e-12)


def test_engine_partial_mode_stops_at_source_nodes(device):
    a = arr(2.0).requires_grad_()
    b = a * 2.0
    y = b * 3.0 + a
    head = gt.ones(()).data if device != "strict" else y.data * 0.0 + 1.0
    ga, gb = _engine.run([y], [head], retain_graph=True, sources=[a, b], partial=True)
    assert (float(ga), float(gb)) == (1.0, 3.0)          # a's own use only: what checkpoint needs
    ga, gb = _engine.run([y], [head], sources=[a, b])
    assert (float(ga), float(gb)) == (7.0, 3.0)


def test_second_grad_through_freed_intermediate_raises(device):
    a = arr([1.0, 2.0]).requires_grad_()
    b = gt.sin(a)
    y = gt.sum(b * b)
    gt.autograd.grad(y, [a, b])
    with pytest.raises(RuntimeError, match="second time"):
        gt.autograd.grad(y, [a, b])


# ---- 2. views made under no_grad share the version counter --------------------------------------

def test_view_made_under_no_grad_sees_in_place_update(device):
    p = arr([1.0, 2.0, 3.0]).requires_grad_()
    with gt.no_grad():
        v = gt.reshape(p, (3, 1))[:, 0]
    y = gt.sum(v * p)
    with gt.no_grad():
        p -= 1.0
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()
    assert p.grad is None


def test_view_made_under_no_grad_matches_torch():
    torch = _torch()
    p = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with torch.no_grad():
        v = p.reshape(3, 1)[:, 0]
    y = (v * p).sum()
    with torch.no_grad():
        p -= 1.0
    with pytest.raises(RuntimeError):
        y.backward()


def test_untracked_view_of_untracked_tensor_keeps_base(device):
    x = arr([1.0, 2.0, 3.0, 4.0])
    v = gt.reshape(x, (2, 2))
    assert v._base is x
    w = gt.sin(x)
    assert w._base is None              # not a view


# ---- 3. every cotangent leaves the engine with its input's shape and dtype -----------------------

def test_vecdot_vector_gets_vector_gradient(device):
    torch = _torch()
    Xv = np.arange(9.0).reshape(3, 3) / 7.0
    yv = np.array([0.5, -1.0, 2.0])
    X = arr(Xv).requires_grad_()
    y = arr(yv).requires_grad_()
    gt.sum(gt.vecdot(X, y) ** 2).backward()
    tX = torch.tensor(Xv, requires_grad=True)
    ty = torch.tensor(yv, requires_grad=True)
    (torch.linalg.vecdot(tX, ty) ** 2).sum().backward()
    assert y.grad.shape == (3,) and X.grad.shape == (3, 3)
    np.testing.assert_allclose(to_np(y.grad), ty.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_np(X.grad), tX.grad.numpy(), rtol=1e-12)


def test_setitem_value_with_extra_unit_axis(device):
    torch = _torch()
    vv = np.array([[1.0, 2.0, 3.0]])
    y = arr(np.zeros((1, 3)))
    v = arr(vv).requires_grad_()
    y[0] = v
    w = arr([[2.0, -1.0, 0.5]])
    gt.sum(y * w).backward()
    ty = torch.zeros((1, 3))
    tv = torch.tensor(vv, requires_grad=True)
    ty[0] = tv
    (ty * torch.tensor([[2.0, -1.0, 0.5]])).sum().backward()
    assert v.grad.shape == (1, 3)
    np.testing.assert_allclose(to_np(v.grad), tv.grad.numpy())


def test_setitem_into_empty_slice(device):
    torch = _torch()
    y = arr([5.0])
    v = arr([2.0]).requires_grad_()
    y[1:] = v
    gt.sum(y * 3.0).backward()
    ty = torch.tensor([5.0])
    tv = torch.tensor([2.0], requires_grad=True)
    ty[1:] = tv
    (ty * 3.0).sum().backward()
    assert v.grad.shape == (1,)
    np.testing.assert_allclose(to_np(v.grad), tv.grad.numpy())


def _prim(name, fwd, vjp_v):
    from gradtape._core.primitive import define
    return define(name, fwd, inputs=("x", "v"), vjp={"x": lambda xp, ct, out, x, v: ct, "v": vjp_v}, register=False)


def test_rule_cotangent_of_output_shape_is_fitted_even_when_shapes_agree(device):
    # the setitem examples at the engine level: input and output have the same shape (meta None), yet
    # the rule returns the written region's shape; the engine must still fit it to the input
    from gradtape._core.dispatch import apply
    row0 = _prim("put_row0", lambda xp, x, v: x * 0.0 + v, lambda xp, ct, out, x, v: ct[0, ...])
    v = arr([[1.0, 2.0, 3.0]]).requires_grad_()
    y = apply(row0, (arr(np.zeros((1, 3))), v))
    gt.sum(y * arr([[2.0, -1.0, 0.5]])).backward()
    assert v.grad.shape == (1, 3)
    np.testing.assert_array_equal(to_np(v.grad), [[2.0, -1.0, 0.5]])
    tail = _prim("put_tail", lambda xp, x, v: x * 1.0, lambda xp, ct, out, x, v: ct[1:])
    w = arr([2.0]).requires_grad_()
    gt.sum(apply(tail, (arr([5.0]), w)) * 3.0).backward()
    assert w.grad.shape == (1,)
    np.testing.assert_array_equal(to_np(w.grad), [0.0])
    (gw,) = gt.autograd.grad(gt.sum(apply(tail, (arr([5.0]), w))), [w], create_graph=True)
    assert gw.shape == (1,)


def test_vecdot_jacobian_and_intermediate_source_shapes(device):
    X = arr(np.arange(9.0).reshape(3, 3))
    J = gt.jacobian(lambda y: gt.vecdot(X, y))(arr([1.0, 2.0, 3.0]))
    assert J.shape == (3, 3)
    np.testing.assert_allclose(to_np(J), np.arange(9.0).reshape(3, 3))
    y = arr([1.0, 2.0, 3.0]).requires_grad_()
    (gy,) = gt.autograd.grad(gt.sum(gt.vecdot(X, y)), [y], create_graph=True)
    assert gy.shape == (3,)


def test_debug_check_catches_an_unfitted_cotangent(device, monkeypatch):
    # with the engine's fitting disabled, the debug assertion must report the (3, 3) cotangent of y
    monkeypatch.setattr(_engine, "_fit", lambda xp, g, meta, nb=0: g)
    X = arr(np.ones((3, 3)))
    y = arr([1.0, 2.0, 3.0]).requires_grad_()
    with pytest.raises(AssertionError, match="vecdot"):
        gt.sum(gt.vecdot(X, y)).backward()


def test_fit_puts_back_dropped_unit_axes():
    import numpy as onp
    g = _engine._fit(onp, onp.ones(3), ((1, 3), onp.dtype("float64")))
    assert g.shape == (1, 3)
    g = _engine._fit(onp, onp.ones((2, 4, 3)), ((4, 1), onp.dtype("float32")))
    assert g.shape == (4, 1) and g.dtype == onp.float32 and g[0, 0] == 6.0
    g = _engine._fit(onp, onp.ones((5, 2, 3)), ((1, 3), onp.dtype("float64")), batch=1)
    assert g.shape == (5, 1, 3) and g[0, 0, 0] == 2.0


# ---- 4. a failing backward writes no .grad; .grad assignment is checked --------------------------

def test_failing_backward_wrong_shape_grad_leaves_every_grad(device):
    a = arr([1.0, 2.0]).requires_grad_()
    b = arr([3.0, 4.0]).requires_grad_()
    gt.sum(a * b).backward()
    ga, gb = to_np(a.grad).copy(), to_np(b.grad).copy()
    b.data = arr([3.0, 4.0, 5.0]).data[:2] * 1.0     # fine: same shape
    b.data = arr(np.ones((2, 1))).data               # the leaf changed shape; its .grad (2,) no longer fits
    with pytest.raises(ValueError, match="shape"):
        gt.sum(a * gt.reshape(b, (2,))).backward()
    np.testing.assert_array_equal(to_np(a.grad), ga)
    np.testing.assert_array_equal(to_np(b.grad), gb)


def test_failing_backward_wrong_device_grad_leaves_every_grad(device):
    other = "strict" if device != "strict" else "cpu"
    a = arr([1.0, 2.0]).requires_grad_()
    b = arr([3.0, 4.0]).requires_grad_()
    gt.sum(a * b).backward()
    ga = to_np(a.grad).copy()
    b._grad = gt.asarray([1.0, 1.0], device=other)      # as if assigned before the checks existed
    with pytest.raises(TypeError, match="on"):
        gt.sum(a * b).backward()
    np.testing.assert_array_equal(to_np(a.grad), ga)
    assert b.grad.device == other


def test_grad_assignment_is_checked(device):
    other = "strict" if device != "strict" else "cpu"
    x = arr([1.0, 2.0, 3.0]).requires_grad_()
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        x.grad = arr([1.0, 2.0])
    with pytest.raises(TypeError, match="float32"):
        x.grad = arr(np.ones(3, np.float32))
    with pytest.raises(TypeError, match=other):
        x.grad = gt.asarray([1.0, 2.0, 3.0], device=other)
    with pytest.raises(TypeError, match="Tensor or None"):
        x.grad = np.ones(3)
    assert x.grad is None
    x.grad = arr([1.0, 1.0, 1.0])
    gt.sum(x * x).backward()
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 5.0, 7.0])
    x.grad = None
    assert x.grad is None


def test_grad_assignment_matches_torch_refusals():
    torch = _torch()
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        x.grad = torch.zeros(2)
    with pytest.raises(RuntimeError):
        x.grad = torch.zeros(3, dtype=torch.float32)


# ---- 5. GradientTape does not record after its block ---------------------------------------------

def test_tape_gradient_of_target_made_after_block_is_none(device):
    c = arr(3.0)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(c)
        y = c * c
    assert tape.gradient(y * c, c) is None              # TensorFlow: y * c is not on the tape
    assert tape.gradient([y * c, y * 2.0], [c]) == [None]
    assert tape.jacobian(y * c, c) is None
    assert float(tape.gradient(y, c)) == 6.0            # what was recorded still works


def test_tape_target_made_after_block_with_requires_grad_leaf(device):
    w = arr(2.0).requires_grad_()
    with gt.GradientTape() as tape:
        y = w * w
    z = y * 3.0
    assert tape.gradient(z, w) is None
    z.backward()                                        # the PyTorch-style graph is unaffected
    assert float(w.grad) == 12.0


def test_tape_watched_tensor_as_its_own_target_after_block(device):
    # the differential fuzzer's GradientTape.jacobian case: the target is a watched input passed through
    x = arr(np.ones((1, 1, 1)))
    u = arr([1.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch([x, u])
        out = gt.broadcast_arrays(x, u)[0]
    jx, ju = tape.jacobian(out, [x, u])
    np.testing.assert_array_equal(to_np(jx), np.ones((1, 1, 1, 1, 1, 1)))
    np.testing.assert_array_equal(to_np(ju), np.zeros((1, 1, 1, 1)))
    gx, gu = tape.gradient(out, [x, u])
    np.testing.assert_array_equal(to_np(gx), np.ones((1, 1, 1)))
    assert gu is None
    assert not x.requires_grad and not u.requires_grad      # still untracked after the calls


def test_tape_inside_block_sees_everything(device):
    c = arr(3.0)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(c)
        y = c * c
        assert float(tape.gradient(y * c, c)) == 27.0
        z = y * c
    assert float(tape.gradient(z, c)) == 27.0


# ---- 6. gradients have their variable's dtype ----------------------------------------------------

def test_float32_leaf_float64_head_create_graph_gives_float32(device):
    torch = _torch()
    for create in (False, True):
        x = arr(np.array([1.0, 2.0], np.float32)).requires_grad_()
        y = x * x
        y.backward(arr(np.array([1.0, -1.0])), create_graph=create)
        assert x.grad.dtype == gt.float32
        np.testing.assert_array_equal(to_np(x.grad), [2.0, -4.0])
    tx = torch.tensor([1.0, 2.0], dtype=torch.float32, requires_grad=True)
    (tx * tx).backward(torch.tensor([1.0, -1.0], dtype=torch.float64), create_graph=True)
    assert tx.grad.dtype == torch.float32


def test_float32_accumulation_stays_float32(device):
    x = arr(np.array([1.0, 2.0], np.float32)).requires_grad_()
    with pytest.raises(TypeError, match="dtype"):
        x.grad = arr(np.array([1.0, 1.0]))               # float64 .grad on a float32 leaf is refused
    x.grad = arr(np.array([1.0, 1.0], np.float32))
    (x * x).backward(arr(np.array([1.0, 1.0])), create_graph=True)
    assert x.grad.dtype == gt.float32
    (x * 3.0).backward(arr(np.array([1.0, 1.0])))
    assert x.grad.dtype == gt.float32
    np.testing.assert_array_equal(to_np(x.grad), [6.0, 8.0])


def test_autograd_grad_float64_head_on_float32(device):
    x = arr(np.array([1.0, 2.0], np.float32)).requires_grad_()
    (g,) = gt.autograd.grad(x * x, [x], head_grads=[arr(np.array([1.0, 1.0]))], create_graph=True)
    assert g.dtype == gt.float32


# ---- 7. complex leaves: requires_grad_, attach_grad and tape.watch take them (PyTorch's .grad) --------------

def test_complex_leaves_are_differentiable(device):
    z0 = np.array([1 + 2j, 3 - 1j])
    z = gt.asarray(z0, device=device).requires_grad_()
    gt.sum(gt.abs(z) ** 2).backward()
    assert np.allclose(gt.to_numpy(z.grad), 2 * z0)             # torch: d|z|^2 gives 2z
    w = gt.asarray(z0, device=device)
    w.attach_grad()
    with gt.record():
        y = gt.sum(gt.real(w * w))
    y.backward()
    assert np.allclose(gt.to_numpy(w.grad), 2 * np.conj(z0))   # Re(z^2): 2 conj(z), torch's
    with gt.GradientTape() as tape:
        v = gt.asarray(z0, device=device)
        tape.watch(v)
        y = gt.sum(gt.abs(v) ** 2)
    assert np.allclose(gt.to_numpy(tape.gradient(y, v)), 2 * z0)


# ---- 8. argument checks of autograd.grad / backward / tape.gradient ------------------------------

def test_autograd_grad_non_tensor_variables(device):
    a = arr(2.0).requires_grad_()
    with pytest.raises(TypeError, match="variables"):
        gt.autograd.grad(a * 2.0, variables=["a"])
    with pytest.raises(TypeError, match="variables"):
        gt.autograd.grad(a * 2.0, variables=[a, 3.0])


def test_extra_or_missing_head_gradients(device):
    a = arr([1.0, 2.0]).requires_grad_()
    y = a * 2.0
    with pytest.raises(ValueError, match="2 head gradients for 1 outputs"):
        gt.autograd.grad(y, [a], head_grads=[arr([1.0, 1.0]), arr([1.0, 1.0])])
    with pytest.raises(ValueError, match="head gradients"):
        gt.autograd.backward([y, y * 3.0], head_grads=[arr([1.0, 1.0])])
    with pytest.raises(ValueError, match="shape"):
        y.backward(arr([1.0, 1.0, 1.0]))
    assert a.grad is None
    with gt.GradientTape() as tape:
        tape.watch(a)
        z = a * 2.0
    with pytest.raises(ValueError, match="output_gradients"):
        tape.gradient(z, a, output_gradients=[arr([1.0, 1.0]), arr([1.0, 1.0])])
    with pytest.raises(TypeError, match="sources"):
        tape.gradient(z, ["a"])
    np.testing.assert_array_equal(to_np(tape.gradient(z, a)), [2.0, 2.0])   # the errors did not use the tape


# ---- gt.trace sees in-place writes (the differential fuzzer's "graph" route) ---------------------

def test_trace_records_in_place_writes_on_untracked_tensors(device):
    def f(x, v):
        y = x * 1.0
        y[0] = v
        y += v
        return y
    x, v = arr([1.0, 2.0]), arr(5.0)
    g = gt.trace(f, x, v)
    np.testing.assert_array_equal(to_np(g(x, v)), [10.0, 7.0])
    np.testing.assert_array_equal(to_np(g(arr([0.0, 1.0]), arr(2.0))), [4.0, 3.0])
    df = gt.grad(lambda x, v: gt.sum(gt.maximum(x, f(x, v) * 0.1)), argnums=(0, 1))
    gx, gv = gt.trace(df, x, v)(x, v)
    wx, wv = df(x, v)
    np.testing.assert_array_equal(to_np(gx), to_np(wx))
    np.testing.assert_array_equal(to_np(gv), to_np(wv))


def test_trace_records_parameter_update_under_no_grad(device):
    def step(p, g):
        with gt.no_grad():
            p -= 0.5 * g
        return p * 1.0
    p = arr([1.0, 2.0]).requires_grad_()
    tr = gt.trace(step, p, arr([2.0, 2.0]))
    np.testing.assert_array_equal(to_np(tr(arr([1.0, 2.0]), arr([4.0, 0.0]))), [-1.0, 2.0])


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_sqrt_grad_at_zero_is_inf_without_a_numpy_warning(device):
    """sqrt'(0) = +inf by design (as torch and JAX, which print nothing): the reverse pass runs in the backend's
    quiet context, so NumPy's divide warning does not point at gradtape's rule (issue 14)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = gt.grad(gt.sqrt)(gt.asarray(0.0, device=device))
    assert gt.to_numpy(g) == np.inf
