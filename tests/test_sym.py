"""gradtape.sym: explicit symbolic graphs (the seed's ``sym.var`` cell), on every backend."""
import numpy as np
import pytest

import gradtape as gt
from gradtape import sym

from conftest import to_np

RNG = np.random.default_rng(3)
XA = RNG.normal(size=(3, 2))
XB = RNG.normal(size=(3, 2))
M = RNG.normal(size=(2, 4))


def _close(a, b, tol=1e-12):
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    a, b = to_np(a), to_np(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)


def test_the_seed_cell(device):
    a = sym.var()
    b = sym.var()
    c = 2 * a + b
    assert a.name != b.name and c.list_arguments() == [a.name, b.name]
    out = c.eval(**{a.name: gt.ones((2, 1)), b.name: gt.ones((2, 1))})
    assert out.device == gt.get_default_device() and _close(out, 3 * gt.ones((2, 1)))


# expressions written once, applied to symbols and to tensors alike
EXPRS = [
    ("operators", lambda a, b: (a - b) * a / (b * b + 1.0) + 2 ** a - (-a) ** 2),
    ("gt functions", lambda a, b: gt.sin(a) * gt.exp(b) + gt.maximum(a, b) - gt.abs(a)),
    ("reductions", lambda a, b: gt.sum(a * b, axis=0) + gt.mean(a) + gt.max(b)),
    ("matmul", lambda a, b: (a @ gt.asarray(M)) * 2.0 + gt.matmul(b, gt.asarray(M))),
    ("methods and T", lambda a, b: a.T @ b + a.sum() + b.reshape((2, 3)) @ a),
    ("indexing", lambda a, b: a[1:] * b[:-1] + a[0, 1]),
    ("where and comparisons", lambda a, b: gt.where(a > b, a, b * 0.5) + gt.astype(a <= 0, gt.float64)),
    ("nn and stack", lambda a, b: gt.nn.softmax(a, axis=-1) + gt.stack([a, b])[1] + gt.nn.relu(b)),
    ("tensor on the left", lambda a, b: gt.asarray(XB) * a + gt.asarray(XA) - b),
    ("numpy on the left", lambda a, b: XB * a + XA @ M[:, :2] + b),
]


@pytest.mark.parametrize("name,f", EXPRS, ids=[e[0] for e in EXPRS])
def test_symbols_compute_like_tensors(device, name, f):
    a, b = sym.var("a"), sym.var("b")
    c = f(a, b)
    assert isinstance(c, sym.Symbol)
    ta, tb = gt.asarray(XA), gt.asarray(XB)
    assert _close(c.eval(a=ta, b=tb), f(ta, tb))


@pytest.mark.parametrize("name,f", EXPRS[:6], ids=[e[0] for e in EXPRS[:6]])
def test_sym_grad_matches_gt_grad(device, name, f):
    a, b = sym.var("a"), sym.var("b")
    da, db = sym.grad(f(a, b), [a, b])
    ta, tb = gt.asarray(XA), gt.asarray(XB)
    want = gt.grad(lambda x, y: gt.sum(f(x, y)), argnums=(0, 1))(ta, tb)
    assert _close((da.eval(a=ta, b=tb), db.eval(a=ta, b=tb)), want)
    assert _close(sym.group(da, db).eval(a=ta, b=tb), want)


def test_higher_order_and_gradient_symbols_combine(device):
    x = sym.var("x")
    y = x ** 3
    d2 = sym.grad(sym.grad(y, x), x)
    t = gt.asarray([1.0, -2.0])
    assert _close(d2.eval(x=t), 6 * t)
    assert _close((sym.grad(y, x) * 2 + x).eval(x=t), 6 * t * t + t)


def test_eval_is_differentiable_and_records():
    a = sym.var("a")
    c = gt.sum(gt.sin(a) * a)
    t = gt.asarray([0.5, 1.5]).requires_grad_()
    c.eval(a=t).backward()
    assert _close(t.grad, gt.cos(t) * t + gt.sin(t))


def test_inputs_are_checked(device):
    a = sym.var("a", shape=(2, None), dtype=gt.float64)
    b = sym.var("b")
    c = a * b
    ok = c.eval(a=gt.ones((2, 5)), b=2.0)
    assert _close(ok, 2 * gt.ones((2, 5)))
    with pytest.raises(TypeError, match=r"missing input\(s\) \['b'\].*a \(2, \?\) float64"):
        c.eval(a=gt.ones((2, 3)))
    with pytest.raises(ValueError, match=r"input 'a' has shape \(3, 3\).*declared with shape \(2, None\)"):
        c.eval(a=gt.ones((3, 3)), b=1.0)
    with pytest.raises(TypeError, match="input 'a' has dtype float32.*declared float64"):
        c.eval(a=gt.ones((2, 3), dtype=gt.float32), b=1.0)
    with pytest.raises(TypeError, match=r"unknown input\(s\) \['z'\]"):
        c.eval(a=gt.ones((2, 3)), b=1.0, z=1.0)
    assert _close(a.eval(a=[[1.0], [2.0]]), gt.asarray([[1.0], [2.0]]))     # lists take the declared dtype


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="non-negative"):
        sym.var("a", shape=(-1,))
    with pytest.raises(TypeError, match="unknown dtype"):
        sym.var("a", dtype="float99")
    a = sym.var("a")
    with pytest.raises(TypeError, match="only differentiate with respect to variables"):
        sym.grad(a * 2, a * 3)
    with pytest.raises(TypeError, match="expected a Symbol"):
        sym.grad(gt.ones(2), a)


def test_symbols_have_no_values():
    a = sym.var("a", shape=(2, 3))
    c = a + 1.0
    for attempt in (lambda: bool(c), lambda: len(c), lambda: list(c), lambda: np.asarray(c)):
        with pytest.raises(TypeError, match="gradtape.sym"):
            attempt()
    with pytest.raises(TypeError, match="immutable"):
        c[0] = 1.0
    with pytest.raises(AttributeError, match="no value before eval"):
        c.backward()
    assert a.ndim == 2 and a.shape == (2, 3)
    with pytest.raises(AttributeError, match="not known before eval"):
        c.ndim


def test_names_and_repr():
    a = sym.var("a")
    b = (a * 2.0).rename("b")
    assert b.name == "b" and repr(b) == "<Symbol b = multiply(a, 2)>"
    assert sym.Group is sym.group


def test_trace_of_a_symbol(device):
    x, w = sym.var("x"), sym.var("w", shape=(3,), dtype="float64")
    z = (gt.vecdot(x, w) - 1.0) ** 2
    g = gt.trace(sym.group(z, *sym.grad(z, [x, w])), x=gt.asarray([1.0, 2.0, 3.0]))
    assert g.inputs == ("x", "w") and len(g.outputs) == 3
    xv, wv = gt.asarray([0.5, -1.0, 2.0]), gt.asarray([1.0, 1.0, 1.0])
    assert _close(g(x=xv, w=wv), sym.group(z, *sym.grad(z, [x, w])).eval(x=xv, w=wv))
    assert any(n.rev for n in g.nodes)
    with pytest.raises(TypeError, match="no example for variable 'x'"):
        gt.trace(z)


def test_deep_expressions_need_no_recursion():
    a = sym.var("a")
    c = a
    for _ in range(5000):
        c = c * 1.0001
    assert _close(c.eval(a=gt.ones(2)), gt.ones(2) * 1.0001 ** 5000, tol=1e-9)


def test_tensors_pay_nothing_for_symbol_support():
    # elementwise functions reach the primitive dispatch unwrapped; the other array functions are wrapped
    assert not hasattr(gt.sin, "__wrapped__") and not hasattr(gt.add, "__wrapped__")
    assert getattr(gt.sum, "__gradtape_symbolic__", False) and gt.sum.__doc__
    assert gt.sum(gt.ones(3)).item() == 3.0
