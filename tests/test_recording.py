"""Recording in the seed's three styles (MXNet, PyTorch, TensorFlow), the JAX-style
transforms, per-thread recording state, and the subgradient conventions."""
import threading

import numpy as np
import pytest

import gradtape as gt
from conftest import to_np


def arr(a, **kw):
    """A tensor on the test's default device."""
    return gt.asarray(np.asarray(a, dtype=float) if not hasattr(a, "dtype") else a,
                      device=gt.get_default_device(), **kw)


X = np.array([0.5, -1.5, 2.0])


# ---- MXNet style -------------------------------------------------------------------------------

def test_attach_grad_allocates_zeros(device):
    x = arr(X)
    x.attach_grad()
    assert x.grad is not None
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype and x.grad.device == device
    np.testing.assert_array_equal(to_np(x.grad), np.zeros(3))
    assert x.requires_grad and x.grad_req == "write"
    x32 = arr(np.array([1.0, 2.0], dtype=np.float32))
    x32.attach_grad()
    assert x32.grad.dtype == gt.float32


def test_record_and_is_recording(device):
    assert not gt.is_recording()
    with gt.record():
        assert gt.is_recording()
        with gt.pause():
            assert not gt.is_recording()
            with gt.record():
                assert gt.is_recording()
            assert not gt.is_recording()
        assert gt.is_recording()
    assert not gt.is_recording()


def test_grad_req_write_overwrites(device):
    x = arr(X)
    x.attach_grad()
    buf = x.grad
    for k in (1.0, 3.0):
        with gt.record():
            y = k * x * x
        y.backward()
        np.testing.assert_allclose(to_np(x.grad), 2 * k * X)     # not the sum of both passes
    assert x.grad is buf           # MXNet: the buffer attach_grad made is updated


def test_grad_req_add_accumulates(device):
    x = arr(X)
    x.attach_grad(grad_req="add")
    for _ in range(3):
        with gt.record():
            y = gt.sum(x * x)
        y.backward()
    np.testing.assert_allclose(to_np(x.grad), 3 * 2 * X)


def test_grad_req_null_stops_tracking(device):
    x = arr(X)
    x.attach_grad()
    x.attach_grad(grad_req="null")
    assert not x.requires_grad and x.grad is None
    with gt.record():
        y = x * 2
    assert not y.requires_grad
    with pytest.raises(RuntimeError):
        y.backward()
    with pytest.raises(ValueError):
        x.attach_grad(grad_req="sometimes")


def test_pause_stops_recording(device):
    x = arr(X)
    x.attach_grad()
    with gt.record():
        y = x * 2
        with gt.pause():
            z = x * 3
        w = y + z            # z is a constant here
    assert y.requires_grad and not z.requires_grad
    w.backward()
    np.testing.assert_allclose(to_np(x.grad), np.full(3, 2.0))


def test_mxnet_autograd_module(device):
    from gradtape import autograd
    x = arr(X)
    x.attach_grad()
    with autograd.record():
        assert autograd.is_recording()
        y1 = x * x
        y2 = gt.sin(x)
    assert not autograd.is_recording()
    autograd.backward([y1, y2], head_grads=[arr([1.0, 1.0, 1.0]), arr([2.0, 0.0, 1.0])])
    np.testing.assert_allclose(to_np(x.grad), 2 * X + np.array([2.0, 0.0, 1.0]) * np.cos(X))
    # autograd.grad returns gradients and leaves .grad alone
    before = to_np(x.grad).copy()
    with autograd.record():
        y = gt.sum(x ** 3)
    (g,) = autograd.grad(y, [x])
    np.testing.assert_allclose(to_np(g), 3 * X ** 2)
    np.testing.assert_array_equal(to_np(x.grad), before)
    # higher order through autograd.grad(create_graph=True)
    with autograd.record():
        y = gt.sum(x ** 3)
        g = autograd.grad(y, x, create_graph=True)
        s = gt.sum(g)
    (h,) = autograd.grad(s, [x])
    np.testing.assert_allclose(to_np(h), 6 * X)
    with autograd.pause():
        assert not autograd.is_recording()


def test_nd_facade(device):
    from gradtape import nd
    a = nd.ones((2, 1))
    assert a.dtype == gt.float32 and a.shape == (2, 1) and a.device == device
    assert nd.zeros((3,)).dtype == gt.float32
    np.testing.assert_array_equal(to_np(nd.full((2,), 4.0)), [4.0, 4.0])
    r = nd.arange(4)
    assert r.dtype == gt.float32
    np.testing.assert_array_equal(to_np(r), [0.0, 1.0, 2.0, 3.0])
    b = nd.array([[1.0, 2.0], [3.0, 4.0]])
    assert b.dtype == gt.float32
    assert nd.array(np.array([1.0, 2.0])).dtype == gt.float64
    np.testing.assert_array_equal(to_np(nd.dot(b, b)), np.array([[7.0, 10.0], [15.0, 22.0]]))
    np.testing.assert_array_equal(to_np(nd.dot(b, b, transpose_a=True)), np.array([[10.0, 14.0], [14.0, 20.0]]))
    np.testing.assert_array_equal(to_np(nd.transpose(b)), [[1.0, 3.0], [2.0, 4.0]])
    np.testing.assert_allclose(to_np(nd.norm(nd.array([3.0, 4.0]))), 5.0)
    assert isinstance(b, nd.NDArray)


def test_nd_array_of_python_ints_is_float32(device):
    # MXNet's nd.array makes float32 from any Python data (the facade's docstring says so too)
    from gradtape import nd
    assert nd.array([[1, 2], [3, 4]]).dtype == gt.float32
    assert nd.array([1, 2], dtype=gt.int32).dtype == gt.int32


# ---- PyTorch style -----------------------------------------------------------------------------

def test_requires_grad_accumulates_and_zero(device):
    x = arr(X).requires_grad_()
    assert x.grad is None and x.requires_grad and x.is_leaf
    gt.sum(x * x).backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * X)
    gt.sum(3 * x).backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * X + 3)
    x.grad.zero_()
    np.testing.assert_array_equal(to_np(x.grad), np.zeros(3))
    gt.sum(x).backward()
    np.testing.assert_array_equal(to_np(x.grad), np.ones(3))


def test_requires_grad_property(device):
    x = arr(X)
    assert not x.requires_grad
    x.requires_grad = True
    assert x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad
    y = arr(X).requires_grad_() * 2
    assert not y.is_leaf
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)


def test_detach(device):
    x = arr(X).requires_grad_()
    y = x * x
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(to_np(d), X * X)
    (d * x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), X * X)


def test_no_grad_and_enable_grad(device):
    x = arr(X).requires_grad_()
    assert gt.is_grad_enabled()
    with gt.no_grad():
        assert not gt.is_grad_enabled()
        y = x * 2
        with gt.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad
    assert gt.is_grad_enabled()


def test_nonscalar_backward_seeded_with_ones(device):
    x = arr(X).requires_grad_()
    y = x * x
    y.backward()                  # like y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * X)
    x2 = arr(X).requires_grad_()
    y2 = gt.sin(x2)
    head = arr([1.0, -2.0, 0.5])
    y2.backward(head)
    np.testing.assert_allclose(to_np(x2.grad), np.array([1.0, -2.0, 0.5]) * np.cos(X))


def test_retain_graph(device):
    x = arr(X).requires_grad_()
    y = gt.sum(gt.exp(x))
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * np.exp(X))
    with pytest.raises(RuntimeError):
        y.backward()


def test_create_graph_grad_of_grad(device):
    x = arr(X).requires_grad_()
    y = gt.sum(x ** 3)
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    np.testing.assert_allclose(to_np(g.detach()), 3 * X ** 2)
    x.grad = None
    gt.sum(g * g).backward()      # d/dx sum(9 x^4) = 36 x^3
    np.testing.assert_allclose(to_np(x.grad), 36 * X ** 3)


def test_third_derivative(device):
    x = arr(1.5).requires_grad_()
    y = x ** 4
    (g1,) = gt.autograd.grad(y, [x], create_graph=True)
    (g2,) = gt.autograd.grad(g1, [x], create_graph=True)
    (g3,) = gt.autograd.grad(g2, [x])
    np.testing.assert_allclose([float(g1.detach()), float(g2.detach()), float(g3)],
                               [4 * 1.5 ** 3, 12 * 1.5 ** 2, 24 * 1.5])


def test_broadcast_gradient_summed_back(device):
    x = arr(np.array([[1.0], [2.0]])).requires_grad_()      # (2, 1)
    b = arr(np.array([1.0, 2.0, 3.0])).requires_grad_()      # (3,)
    s = arr(2.0).requires_grad_()                           # ()
    y = x * b + s
    assert y.shape == (2, 3)
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), [[6.0], [6.0]])
    np.testing.assert_allclose(to_np(b.grad), [3.0, 3.0, 3.0])
    assert s.grad.shape == ()
    np.testing.assert_allclose(to_np(s.grad), 6.0)


def test_gradient_dtype_is_variable_dtype(device):
    x = arr(np.array([1.0, 2.0], dtype=np.float32)).requires_grad_()
    w = arr(np.array([3.0, 4.0]))         # float64: promotes the product
    y = gt.sum(x * w)
    assert y.dtype == gt.float64
    y.backward()
    assert x.grad.dtype == gt.float32
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 4.0])


# ---- TensorFlow style --------------------------------------------------------------------------

def test_gradient_tape_watch(device):
    c = arr(X)
    assert not c.requires_grad
    with gt.GradientTape() as tape:
        tape.watch(c)
        y = gt.sum(c * c * c)
    g = tape.gradient(y, c)
    np.testing.assert_allclose(to_np(g), 3 * X ** 2)
    assert not c.requires_grad       # only the tape was tracking it
    assert c.grad is None            # tape.gradient does not write .grad


def test_gradient_tape_sources_structure(device):
    x = arr(X)
    c = arr([1.0, 2.0, 3.0])
    u = arr([7.0])
    with gt.GradientTape() as tape:
        tape.watch([x, c, u])
        y = gt.sum(x * c)
    gx, gc, gu = tape.gradient(y, [x, c, u])
    np.testing.assert_allclose(to_np(gx), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(to_np(gc), X)
    assert gu is None               # not connected to the target


def test_gradient_tape_persistent(device):
    x = arr(X)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = gt.sum(x * x)
        z = gt.sum(gt.sin(x))
    np.testing.assert_allclose(to_np(tape.gradient(y, x)), 2 * X)
    np.testing.assert_allclose(to_np(tape.gradient(z, x)), np.cos(X))
    np.testing.assert_allclose(to_np(tape.gradient(y, x)), 2 * X)


def test_gradient_tape_output_gradients(device):
    x = arr(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    og = arr([1.0, 0.0, -1.0])
    np.testing.assert_allclose(to_np(tape.gradient(y, x, output_gradients=og)), 2 * X * np.array([1.0, 0.0, -1.0]))


def test_gradient_tape_nonscalar_target_sums(device):
    x = arr(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    np.testing.assert_allclose(to_np(tape.gradient(y, x)), 2 * X)


def test_nested_tapes_second_order(device):
    x = arr(X)
    with gt.GradientTape() as outer:
        outer.watch(x)
        with gt.GradientTape() as inner:
            inner.watch(x)
            y = gt.sum(x ** 3)
        dy = inner.gradient(y, x)
        s = gt.sum(dy)
    d2 = outer.gradient(s, x)
    np.testing.assert_allclose(to_np(dy.detach()), 3 * X ** 2)
    np.testing.assert_allclose(to_np(d2), 6 * X)


def test_tape_jacobian(device):
    A = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    x = arr(X)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = arr(A) @ x
    np.testing.assert_allclose(to_np(tape.jacobian(y, x)), A)


def test_stop_gradient(device):
    x = arr(X).requires_grad_()
    y = gt.sum(x * gt.stop_gradient(x))
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), X)         # not 2x
    s = gt.stop_gradient(x * 2)
    assert not s.requires_grad
    np.testing.assert_array_equal(to_np(s), 2 * X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        z = gt.sum(gt.stop_gradient(x) * 5.0 + x)
    np.testing.assert_allclose(to_np(tape.gradient(z, x)), np.ones(3))


def test_tape_gradient_of_unconnected_target_is_none(device):
    # TensorFlow: a target that does not depend on the sources gives None (the docstring says so too)
    x = arr(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        z = gt.sum(gt.stop_gradient(x) * 5.0)
    assert tape.gradient(z, x) is None


def test_tape_stop_recording(device):
    x = arr(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        with tape.stop_recording():
            z = x * 10.0
        w = gt.sum(y + z)
    np.testing.assert_allclose(to_np(tape.gradient(w, x)), 2 * X)


# ---- JAX-style transforms ----------------------------------------------------------------------

def f3(x, y, z):
    return gt.sum(x * x * y + gt.sin(z) * y)


def test_grad_argnums(device):
    x, y, z = arr(X), arr([1.0, 2.0, 3.0]), arr([0.1, 0.2, 0.3])
    xs, ys, zs = X, np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])
    g0 = gt.grad(f3)(x, y, z)
    assert isinstance(g0, gt.Tensor)
    np.testing.assert_allclose(to_np(g0), 2 * xs * ys)
    np.testing.assert_allclose(to_np(gt.grad(f3, argnums=1)(x, y, z)), xs * xs + np.sin(zs))
    np.testing.assert_allclose(to_np(gt.grad(f3, argnums=-1)(x, y, z)), np.cos(zs) * ys)
    g = gt.grad(f3, argnums=(0, 2))(x, y, z)
    assert isinstance(g, tuple) and len(g) == 2
    np.testing.assert_allclose(to_np(g[0]), 2 * xs * ys)
    np.testing.assert_allclose(to_np(g[1]), np.cos(zs) * ys)
    assert not x.requires_grad and x.grad is None     # arguments are left alone
    with pytest.raises(ValueError):
        gt.grad(f3, argnums=3)(x, y, z)


def test_grad_has_aux_and_value_and_grad(device):
    def f(x):
        y = gt.sum(x ** 2)
        return y, {"double": 2 * x}

    x = arr(X)
    g, aux = gt.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(to_np(g), 2 * X)
    np.testing.assert_allclose(to_np(aux["double"]), 2 * X)
    v, g2 = gt.value_and_grad(lambda x: gt.sum(x ** 2))(x)
    np.testing.assert_allclose(to_np(v), np.sum(X ** 2))
    np.testing.assert_allclose(to_np(g2), 2 * X)
    assert not v.requires_grad and not g2.requires_grad
    (v3, aux3), g3 = gt.value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(to_np(v3), np.sum(X ** 2))
    np.testing.assert_allclose(to_np(aux3["double"]), 2 * X)
    np.testing.assert_allclose(to_np(g3), 2 * X)
    vt, gt_ = gt.value_and_grad(f3, argnums=(0, 1))(x, arr([1.0, 1.0, 1.0]), arr([0.0, 0.0, 0.0]))
    assert isinstance(gt_, tuple) and len(gt_) == 2


def test_grad_of_constant_function_is_zero(device):
    g = gt.grad(lambda x: gt.sum(arr([1.0, 2.0])))(arr(X))
    np.testing.assert_array_equal(to_np(g), np.zeros(3))
    assert g.shape == (3,)


def test_vjp(device):
    A = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])

    def f(x, w):
        return gt.sin(arr(A) @ x) * w

    w0 = np.array([2.0, 3.0])
    y, f_vjp = gt.vjp(f, arr(X), arr(w0))
    np.testing.assert_allclose(to_np(y), np.sin(A @ X) * w0)
    ct = np.array([1.0, -1.0])
    gx, gw = f_vjp(arr(ct))
    np.testing.assert_allclose(to_np(gx), A.T @ (ct * w0 * np.cos(A @ X)))
    np.testing.assert_allclose(to_np(gw), ct * np.sin(A @ X))
    gx2, _ = f_vjp(arr([0.0, 1.0]))              # f_vjp can be called again
    np.testing.assert_allclose(to_np(gx2), A.T @ (np.array([0.0, 1.0]) * w0 * np.cos(A @ X)))


def test_vjp_has_aux_and_tuple_outputs(device):
    (a, b), f_vjp = gt.vjp(lambda x: (x * 2, gt.sum(x * x)), arr(X))
    (g,) = f_vjp((arr([1.0, 1.0, 1.0]), arr(1.0)))
    np.testing.assert_allclose(to_np(g), 2 + 2 * X)
    y, f_vjp2, aux = gt.vjp(lambda x: (x * 3, "hello"), arr(X), has_aux=True)
    assert aux == "hello"
    np.testing.assert_allclose(to_np(f_vjp2(arr([1.0, 0.0, 0.0]))[0]), [3.0, 0.0, 0.0])


def _jac_from_vjp(f, x):
    y, f_vjp = gt.vjp(f, x)
    m = y.size
    rows = []
    for i in range(m):
        e = np.zeros(m)
        e[i] = 1.0
        rows.append(to_np(f_vjp(arr(e.reshape(y.shape)))[0]).reshape(-1))
    return np.array(rows)


def test_jvp_matches_vjp(device):
    A = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])

    def f(x):
        return gt.exp(arr(A) @ gt.tanh(x)) + gt.sum(x * x)

    v = np.array([0.3, -0.2, 1.0])
    y, t = gt.jvp(f, (arr(X),), (arr(v),))
    J = _jac_from_vjp(f, arr(X))
    np.testing.assert_allclose(to_np(t), J @ v, rtol=1e-12)
    np.testing.assert_allclose(to_np(y), np.exp(A @ np.tanh(X)) + np.sum(X * X))


def test_jvp_is_forward_mode(device):
    # nothing is recorded for reverse mode: output and tangent are plain tensors
    x = arr(X)
    y, t = gt.jvp(lambda x: gt.sin(x) * x, (x,), (arr([1.0, 0.0, 2.0]),))
    assert not y.requires_grad and not t.requires_grad
    assert not x.requires_grad
    np.testing.assert_allclose(to_np(t), (np.cos(X) * X + np.sin(X)) * np.array([1.0, 0.0, 2.0]))
    # a primitive whose tangent rule is used even where it has no reverse input: several primals
    y2, t2 = gt.jvp(lambda a, b: a * b, (arr(X), arr([1.0, 2.0, 3.0])), (arr([1.0, 1.0, 1.0]), arr([0.0, 0.0, 1.0])))
    np.testing.assert_allclose(to_np(t2), np.array([1.0, 2.0, 3.0]) + X * np.array([0.0, 0.0, 1.0]))


def test_jvp_of_grad_is_hvp(device):
    A = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 3.0]])

    def f(x):
        return 0.5 * gt.sum(x * (arr(A) @ x)) + gt.sum(x ** 3)

    v = np.array([1.0, -2.0, 0.5])
    H = (A + A.T) / 2 + np.diag(6 * X)
    g, hv = gt.jvp(gt.grad(f), (arr(X),), (arr(v),))
    np.testing.assert_allclose(to_np(g), (A + A.T) / 2 @ X + 3 * X ** 2, rtol=1e-12)
    np.testing.assert_allclose(to_np(hv), H @ v, rtol=1e-12)
    # reverse-over-forward gives the same
    hv2 = gt.grad(lambda x: gt.jvp(f, (x,), (arr(v),))[1])(arr(X))
    np.testing.assert_allclose(to_np(hv2), H @ v, rtol=1e-12)
    # forward-over-forward: v^T H v
    _, vhv = gt.jvp(lambda x: gt.jvp(f, (x,), (arr(v),))[1], (arr(X),), (arr(v),))
    np.testing.assert_allclose(to_np(vhv), v @ H @ v, rtol=1e-12)


def test_grad_of_grad(device):
    f = lambda x: x ** 3 + gt.sin(x)  # noqa: E731
    x = arr(0.7)
    np.testing.assert_allclose(float(gt.grad(f)(x)), 3 * 0.49 + np.cos(0.7))
    np.testing.assert_allclose(float(gt.grad(gt.grad(f))(x)), 6 * 0.7 - np.sin(0.7))
    np.testing.assert_allclose(float(gt.grad(gt.grad(gt.grad(f)))(x)), 6 - np.cos(0.7))
    # vector version: grad of sum of the gradient
    h = gt.grad(lambda v: gt.sum(gt.grad(lambda u: gt.sum(u ** 4))(v)))(arr(X))
    np.testing.assert_allclose(to_np(h), 12 * X ** 2)


def test_transforms_inside_record(device):
    # grad inside an outer record is itself differentiable
    x = arr(X).requires_grad_()
    g = gt.grad(lambda u: gt.sum(u ** 3))(x)
    gt.sum(g).backward()
    np.testing.assert_allclose(to_np(x.grad), 6 * X)


# ---- recording state is per thread -------------------------------------------------------------

def _in_thread(body):
    """Run body(entered, release) in a thread that holds some state until released."""
    entered, release, done = threading.Event(), threading.Event(), []

    def run():
        try:
            body(entered, release)
            done.append(None)
        except BaseException as e:  # pragma: no cover - reported below
            done.append(e)
            entered.set()

    t = threading.Thread(target=run)
    t.start()
    assert entered.wait(10)
    return t, release, done


def test_record_is_per_thread():
    seen = {}

    def body(entered, release):
        with gt.record():
            seen["inside"] = gt.is_recording()
            entered.set()
            release.wait(10)

    t, release, done = _in_thread(body)
    try:
        assert seen["inside"] is True
        assert not gt.is_recording()       # the other thread's record() does not leak here
    finally:
        release.set()
        t.join(10)
    assert done == [None]


def test_pause_is_per_thread():
    def body(entered, release):
        with gt.pause():
            entered.set()
            release.wait(10)

    x = gt.asarray([1.0, 2.0]).requires_grad_()
    t, release, done = _in_thread(body)
    try:
        assert gt.is_grad_enabled()
        y = x * 2
        assert y.requires_grad
    finally:
        release.set()
        t.join(10)
    assert done == [None]


def test_thread_records_while_main_is_paused():
    x = gt.asarray([1.0, 2.0]).requires_grad_()
    out = {}

    def work():
        y = gt.sum(x * x)
        out["rg"] = y.requires_grad
        out["g"] = gt.autograd.grad(y, [x])[0]

    with gt.pause():
        t = threading.Thread(target=work)
        t.start()
        t.join(10)
        assert not (x * 2).requires_grad
    assert out["rg"] is True
    np.testing.assert_allclose(to_np(out["g"]), [2.0, 4.0])


def test_default_device_and_subgradient_are_per_thread():
    def body(entered, release):
        with gt.default_device("strict"), gt.subgradient(abs=1.0):
            entered.set()
            release.wait(10)

    t, release, done = _in_thread(body)
    try:
        assert gt.ones(2).device == "cpu"
        x = gt.asarray(0.0).requires_grad_()
        gt.abs(x).backward()
        assert float(x.grad) == 0.0
    finally:
        release.set()
        t.join(10)
    assert done == [None]


# ---- subgradients ------------------------------------------------------------------------------

def _g(f, a):
    x = arr(a).requires_grad_()
    f(x).backward()
    return to_np(x.grad)


def test_default_kinks(device):
    np.testing.assert_array_equal(_g(gt.abs, [-2.0, 0.0, 3.0]), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(_g(gt.nn.relu, [-2.0, 0.0, 3.0]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(_g(gt.sqrt, [0.0, 4.0]), [np.inf, 0.25])


def test_maximum_minimum_ties_split(device):
    for fn, win in ((gt.maximum, [1.0, 0.0]), (gt.minimum, [0.0, 1.0])):
        x = arr([1.0, 2.0, 3.0]).requires_grad_()
        y = arr([1.0, 1.0, 5.0]).requires_grad_()
        fn(x, y).backward()
        gx, gy = to_np(x.grad), to_np(y.grad)
        np.testing.assert_array_equal(gx[0], 0.5)
        np.testing.assert_array_equal(gy[0], 0.5)
        np.testing.assert_array_equal(gx[1:], win)
        np.testing.assert_array_equal(gy[1:], [1.0 - win[0], 1.0 - win[1]])


def test_maximum_tie_with_scalar(device):
    np.testing.assert_array_equal(_g(lambda x: gt.maximum(x, 0.0), [-1.0, 0.0, 1.0]), [0.0, 0.5, 1.0])


def test_max_min_reduction_ties_split_evenly(device):
    np.testing.assert_allclose(_g(gt.max, [3.0, 1.0, 3.0, 2.0]), [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(_g(gt.min, [1.0, 1.0, 1.0, 2.0]), [1 / 3, 1 / 3, 1 / 3, 0.0])
    a = [[1.0, 4.0, 4.0], [2.0, 0.0, 2.0]]
    np.testing.assert_allclose(_g(lambda x: gt.sum(gt.max(x, axis=1)), a), [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    np.testing.assert_allclose(_g(lambda x: gt.sum(gt.min(x, axis=0, keepdims=True)), a), [[1, 0, 0], [0, 1, 1]])
    # forward mode agrees: the tangent of a tied max is the mean of the tied tangents
    _, t = gt.jvp(gt.max, (arr([3.0, 1.0, 3.0]),), (arr([1.0, 5.0, 2.0]),))
    np.testing.assert_allclose(float(t), 1.5)


def test_norm_at_zero_is_zero_not_nan(device):
    g = _g(gt.linalg.vector_norm, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])
    g2 = _g(lambda x: gt.sum(gt.linalg.vector_norm(x, axis=1)), [[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(g2, [[0.0, 0.0], [0.6, 0.8]])
    _, t = gt.jvp(gt.linalg.vector_norm, (arr([0.0, 0.0]),), (arr([1.0, 1.0]),))
    assert float(t) == 0.0


def test_subgradient_context(device):
    for a in (-1.0, -0.25, 0.0, 0.5, 1.0):
        with gt.subgradient(abs=a):
            np.testing.assert_array_equal(_g(gt.abs, [0.0, -3.0, 2.0]), [a, -1.0, 1.0])
    for a in (0.0, 0.3, 1.0):
        with gt.subgradient(relu=a):
            np.testing.assert_array_equal(_g(gt.nn.relu, [0.0, -3.0, 2.0]), [a, 0.0, 1.0])
    with gt.subgradient(abs=0.5, relu=0.25):
        np.testing.assert_array_equal(_g(gt.abs, [0.0]), [0.5])
        np.testing.assert_array_equal(_g(gt.nn.relu, [0.0]), [0.25])
        with gt.subgradient(abs=-0.5):
            np.testing.assert_array_equal(_g(gt.abs, [0.0]), [-0.5])
            np.testing.assert_array_equal(_g(gt.nn.relu, [0.0]), [0.25])   # unchanged
        np.testing.assert_array_equal(_g(gt.abs, [0.0]), [0.5])
        _, t = gt.jvp(gt.abs, (arr([0.0]),), (arr([2.0]),))               # forward mode too
        np.testing.assert_array_equal(to_np(t), [1.0])
    np.testing.assert_array_equal(_g(gt.abs, [0.0]), [0.0])                # restored
    np.testing.assert_array_equal(_g(gt.nn.relu, [0.0]), [0.0])


@pytest.mark.parametrize("kw", [{"abs": 1.5}, {"abs": -1.01}, {"relu": -0.1}, {"relu": 1.2},
                                {"abs": 0.0, "relu": 2.0}])
def test_subgradient_out_of_range(kw):
    with pytest.raises(ValueError):
        with gt.subgradient(**kw):
            pass
    np.testing.assert_array_equal(_g(gt.abs, [0.0]), [0.0])                # nothing was set
