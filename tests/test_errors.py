"""Each error of DESIGN.md's conventions by type, no half-written ``.grad`` after a
failed backward, the deep chain, and freeing of intermediates after backward."""
import gc
import weakref

import numpy as np
import pytest

import gradtape as gt
from conftest import to_np


def arr(a, **kw):
    """A tensor on the test's default device."""
    return gt.asarray(np.asarray(a, dtype=float) if not hasattr(a, "dtype") else a,
                      device=gt.get_default_device(), **kw)


def snapshot(*leaves):
    """The .grad of each leaf as a NumPy copy (None stays None)."""
    return [None if t.grad is None else to_np(t.grad).copy() for t in leaves]


def assert_unchanged(before, *leaves):
    after = snapshot(*leaves)
    for b, a in zip(before, after):
        if b is None:
            assert a is None
        else:
            assert a is not None
            np.testing.assert_array_equal(a, b)


# ---- mixing devices / backends -----------------------------------------------------------------

def _cpu_and_strict():
    a = gt.asarray([1.0, 2.0], device="cpu")
    b = gt.asarray([3.0, 4.0], device="strict")
    return a, b


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: gt.maximum(a, b), lambda a, b: gt.atan2(a, b),
    lambda a, b: a @ b, lambda a, b: gt.vecdot(a, b), lambda a, b: gt.tensordot(a, b, axes=1),
    lambda a, b: gt.where(a > 0, a, b), lambda a, b: gt.concat([a, b]), lambda a, b: gt.stack([a, b]),
    lambda a, b: gt.equal(a, b), lambda a, b: a < b, lambda a, b: gt.logaddexp(a, b),
], ids=["add", "mul", "maximum", "atan2", "matmul", "vecdot", "tensordot", "where", "concat", "stack", "equal",
        "less", "logaddexp"])
@pytest.mark.parametrize("tracked", [False, True], ids=["plain", "tracked"])
def test_mixed_backends_type_error_names_both(op, tracked):
    a, b = _cpu_and_strict()
    if tracked:
        a.requires_grad_()
        b.requires_grad_()
    with pytest.raises(TypeError) as e:
        op(a, b)
    msg = str(e.value)
    assert "cpu" in msg and "strict" in msg, msg
    with pytest.raises(TypeError) as e2:
        op(b, a)
    assert "cpu" in str(e2.value) and "strict" in str(e2.value)


def test_mixed_backends_setitem_and_head():
    a, b = _cpu_and_strict()
    with pytest.raises(TypeError) as e:
        a[0] = b[0]
    assert "cpu" in str(e.value) and "strict" in str(e.value)
    x = gt.asarray([1.0, 2.0], device="cpu").requires_grad_()
    y = x * x
    with pytest.raises(TypeError):
        y.backward(gt.ones((2,), device="strict"))
    assert x.grad is None
    y.backward()                           # the graph is still usable after the refused call
    np.testing.assert_array_equal(to_np(x.grad), [2.0, 4.0])


def test_mixed_backends_in_transforms():
    a, b = _cpu_and_strict()
    with pytest.raises(TypeError):
        gt.grad(lambda u: gt.sum(u * b))(a)
    with pytest.raises(TypeError):
        gt.jvp(lambda u: u * 2, (a,), (b,))


# ---- freed graph -------------------------------------------------------------------------------

def test_second_backward_through_freed_graph(device):
    x = arr([1.0, 2.0]).requires_grad_()
    y = gt.sum(gt.sin(x) * x)
    y.backward()
    before = snapshot(x)
    with pytest.raises(RuntimeError) as e:
        y.backward()
    assert "retain_graph" in str(e.value)
    assert_unchanged(before, x)


def test_partly_freed_graph_writes_nothing(device):
    x = arr([1.0, 2.0]).requires_grad_()
    w = arr([3.0, -1.0]).requires_grad_()
    a = gt.exp(x) * w
    gt.sum(a).backward()                   # frees a's part of the graph
    before = snapshot(x, w)
    c = gt.sum(a * x) + gt.sum(w * w)      # new nodes on top of the freed ones
    with pytest.raises(RuntimeError):
        c.backward()
    assert_unchanged(before, x, w)


def test_freed_graph_in_autograd_grad_and_tape(device):
    x = arr([1.0, 2.0]).requires_grad_()
    y = gt.sum(x ** 3)
    gt.autograd.grad(y, [x])
    with pytest.raises(RuntimeError):
        gt.autograd.grad(y, [x])
    assert x.grad is None


# ---- saved value changed in place --------------------------------------------------------------

def test_saved_input_changed_in_place_inplace_op(device):
    x = arr([1.0, 2.0]).requires_grad_()
    x.grad = arr([10.0, 20.0])             # a previous gradient that must survive
    a = x * 2
    y = gt.sum(a * a)                      # multiply saves a
    a += 1.0                               # ...which is then changed in place
    before = snapshot(x)
    with pytest.raises(RuntimeError) as e:
        y.backward()
    assert "in place" in str(e.value)
    assert_unchanged(before, x)


def test_saved_constant_changed_in_place(device):
    x = arr([1.0, 2.0, 3.0]).requires_grad_()
    w = arr([1.0, 1.0, 1.0]).requires_grad_()
    c = arr([4.0, 5.0, 6.0])               # does not require grad, saved by the multiply
    y = gt.sum(x * c) + gt.sum(w * w)
    c[0] = 100.0
    before = snapshot(x, w)
    with pytest.raises(RuntimeError):
        y.backward()
    assert_unchanged(before, x, w)


@pytest.mark.parametrize("mutate", [lambda t: t.zero_(), lambda t: t.__setitem__(slice(None), 0.0),
                                    lambda t: t.__imul__(2.0)], ids=["zero_", "setitem", "imul"])
def test_saved_value_changed_attach_grad_write(device, mutate):
    x = arr([0.5, 1.5])
    x.attach_grad()
    c = arr([2.0, 3.0])
    with gt.record():
        y = gt.sum(gt.sin(x) * c)
    y.backward(retain_graph=True)
    before = snapshot(x)
    mutate(c)
    with pytest.raises(RuntimeError):
        y.backward()
    assert_unchanged(before, x)


def test_output_saved_by_rule_changed_in_place(device):
    x = arr([0.5, 1.5]).requires_grad_()
    e = gt.exp(x)                          # exp's rule keeps its output
    y = gt.sum(gt.sin(e))                  # sin saves e
    e += 1.0
    with pytest.raises(RuntimeError):
        y.backward()
    assert x.grad is None


# ---- integer tensors ---------------------------------------------------------------------------

def test_gradient_for_integer_tensor(device):
    i = arr(np.array([1, 2, 3]))
    with pytest.raises(TypeError):
        i.requires_grad_()
    with pytest.raises(TypeError):
        i.attach_grad()
    with pytest.raises(TypeError):
        i.requires_grad = True
    with pytest.raises(TypeError):
        gt.grad(lambda u: gt.sum(u * u))(i)
    with pytest.raises(TypeError):
        gt.value_and_grad(lambda u, v: gt.sum(u * v), argnums=1)(arr([1.0, 2.0, 3.0]), i)
    with pytest.raises(TypeError):
        gt.vjp(lambda u: u * 2, i)
    with pytest.raises(TypeError):
        with gt.GradientTape() as tape:
            tape.watch(i)
    b = arr(np.array([True, False]))
    with pytest.raises(TypeError):
        b.requires_grad_()
    assert not i.requires_grad and not b.requires_grad


def test_integer_error_names_dtype(device):
    with pytest.raises(TypeError) as e:
        arr(np.array([1, 2])).requires_grad_()
    assert "int64" in str(e.value)


# ---- subgradient out of range ------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{"abs": 2.0}, {"abs": -1.5}, {"relu": -0.5}, {"relu": 1.0001}])
def test_subgradient_out_of_range_is_value_error(kw):
    with pytest.raises(ValueError) as e:
        with gt.subgradient(**kw):
            pass
    assert list(kw)[0] in str(e.value)


# ---- head gradient of the wrong shape ----------------------------------------------------------

def test_head_gradient_wrong_shape(device):
    x = arr([1.0, 2.0]).requires_grad_()
    x.grad = arr([7.0, 7.0])
    y = x * x
    before = snapshot(x)
    for head in (arr([1.0, 1.0, 1.0]), arr([[1.0, 1.0]]), arr(1.0)):
        with pytest.raises(ValueError) as e:
            y.backward(head)
        assert "shape" in str(e.value)
        assert_unchanged(before, x)
    with pytest.raises(ValueError):
        gt.autograd.backward([y], head_grads=[arr([1.0])])
    assert_unchanged(before, x)
    y.backward(arr([1.0, 2.0]))            # the right shape still works: the graph was not freed
    np.testing.assert_allclose(to_np(x.grad), [7.0 + 2.0, 7.0 + 8.0])


def test_head_gradient_wrong_shape_in_tape_and_vjp(device):
    x = arr([1.0, 2.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(ValueError):
        tape.gradient(y, x, output_gradients=arr([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(to_np(tape.gradient(y, x, output_gradients=arr([1.0, 0.0]))), [2.0, 0.0])
    _, f_vjp = gt.vjp(lambda u: u * 3, arr([1.0, 2.0]))
    with pytest.raises(ValueError):
        f_vjp(arr([1.0]))


def test_jvp_tangent_wrong_shape(device):
    with pytest.raises(ValueError):
        gt.jvp(gt.sin, (arr([1.0, 2.0]),), (arr([1.0]),))


# ---- GradientTape used twice -------------------------------------------------------------------

def test_non_persistent_tape_twice(device):
    x = arr([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.sum(x * x)
    np.testing.assert_allclose(to_np(tape.gradient(y, x)), [2.0, 4.0])
    with pytest.raises(RuntimeError) as e:
        tape.gradient(y, x)
    assert "persistent" in str(e.value)
    with pytest.raises(RuntimeError):
        tape.jacobian(y, x)


# ---- grad of a non-scalar function -------------------------------------------------------------

def test_grad_of_nonscalar_function(device):
    with pytest.raises(ValueError) as e:
        gt.grad(lambda u: u * 2)(arr([1.0, 2.0]))
    msg = str(e.value)
    assert "vjp" in msg and "jacobian" in msg
    with pytest.raises(ValueError):
        gt.value_and_grad(lambda u: gt.reshape(gt.sum(u), (1,)))(arr([1.0, 2.0]))
    with pytest.raises(TypeError):
        gt.grad(lambda u: 3.0)(arr([1.0, 2.0]))


def test_backward_without_recording(device):
    y = arr([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError):
        y.backward()


# ---- deep chain --------------------------------------------------------------------------------

def test_deep_chain_100k_ops():
    x = gt.asarray(1.0).requires_grad_()
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.backward()
    np.testing.assert_allclose(float(x.grad), 1.0000001 ** 100_000, rtol=1e-9)


def test_deep_chain_100k_ops_mixed():
    x = gt.asarray([0.5, 1.0]).requires_grad_()
    y = x
    for i in range(50_000):
        y = gt.sin(y) if i % 2 else y + 0.0
    gt.sum(y).backward()
    assert np.all(np.isfinite(to_np(x.grad)))
    assert to_np(x.grad).shape == (2,)


def test_deep_chain_dropped_without_backward():
    x = gt.asarray(1.0).requires_grad_()
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y                                  # freeing a deep graph must not recurse either
    gc.collect()
    z = x * 2
    z.backward()
    assert float(x.grad) == 2.0


def test_deep_chain_grad_transform():
    def f(u):
        for _ in range(100_000):
            u = u + 0.5
        return u

    np.testing.assert_array_equal(float(gt.grad(f)(gt.asarray(1.0))), 1.0)


# ---- intermediates freed -----------------------------------------------------------------------

def test_intermediate_data_freed_after_backward(device):
    x = arr(np.linspace(0.1, 1.0, 1000)).requires_grad_()
    a = gt.exp(x)                # exp keeps its output for the rule; sin below keeps a
    b = gt.sin(a)
    r_data = weakref.ref(a.data)
    r_tensor = weakref.ref(a)
    y = gt.sum(b * b)
    del a, b
    gc.collect()
    assert r_data() is not None              # the graph holds it until the backward
    y.backward()
    gc.collect()
    assert r_data() is None                  # freed with the graph's saved values
    assert r_tensor() is None


def test_retain_graph_keeps_then_frees(device):
    x = arr([0.3, 0.7]).requires_grad_()
    a = gt.exp(x)
    r = weakref.ref(a.data)
    y = gt.sum(gt.sin(a))
    del a
    y.backward(retain_graph=True)
    gc.collect()
    assert r() is not None
    y.backward()
    gc.collect()
    assert r() is None
    np.testing.assert_allclose(to_np(x.grad), 2 * np.cos(np.exp([0.3, 0.7])) * np.exp([0.3, 0.7]))


def test_saved_constant_dropped_after_backward(device):
    x = arr([1.0, 2.0]).requires_grad_()
    c = arr([3.0, 4.0])
    rc = weakref.ref(c)
    y = gt.sum(x * c)                        # multiply saves c for x's gradient
    del c
    gc.collect()
    assert rc() is not None
    y.backward()
    gc.collect()
    assert rc() is None
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 4.0])


def test_intermediates_freed_with_transforms(device):
    refs = []

    def f(u):
        a = gt.exp(u)
        refs.append(weakref.ref(a.data))
        return gt.sum(gt.sin(a))

    g = gt.grad(f)(arr([0.1, 0.2]))
    gc.collect()
    assert refs[0]() is None
    np.testing.assert_allclose(to_np(g), np.cos(np.exp([0.1, 0.2])) * np.exp([0.1, 0.2]))


def test_unused_graph_freed_when_dropped(device):
    x = arr([1.0, 2.0]).requires_grad_()
    a = gt.exp(x)
    r = weakref.ref(a.data)
    y = gt.sum(gt.sin(a))
    del a, y
    gc.collect()
    assert r() is None
