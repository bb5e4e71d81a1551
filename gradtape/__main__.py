"""``python -m gradtape``: the lecture notes' formulas and cells, run and checked on a device.

Prints, section by section, what gradtape gives for each formula of the seed
(subgradients, layouts, identity tables, the vector chain rule, the
computation-graph cells) and the d2l autograd examples, with a check mark
when it equals the closed form. Exits 1 if any check fails.
"""
from __future__ import annotations

import argparse
import sys

import gradtape as gt
from gradtape import autograd, nd


class _Report:
    def __init__(self):
        self.failed = 0

    def section(self, title):
        print(f"\n== {title} ==")

    def show(self, what, value, expected=None):
        ok = ""
        if expected is not None:
            v, e = gt.to_numpy(gt.asarray(value).detach()), gt.to_numpy(gt.asarray(expected).detach())
            good = v.shape == e.shape and bool((abs(v - e) <= 1e-6 + 1e-6 * abs(e)).all())
            ok = "  ok" if good else f"  MISMATCH (expected {e.tolist()})"
            self.failed += not good
        val = value.tolist() if isinstance(value, gt.Tensor) else value
        print(f"  {what:<44} {val}{ok}")


def _jac_fwd(f, x):
    """Jacobian by forward accumulation: one JVP per input element (numerator layout)."""
    cols = []
    for k in range(x.size):
        e = gt.reshape(gt.astype(gt.arange(x.size) == k, x.dtype), x.shape)
        cols.append(gt.reshape(gt.jvp(f, (x,), (e,))[1], (-1,)))
    y = f(x)
    return gt.reshape(gt.stack(cols, axis=-1), y.shape + x.shape)


def _jac_rev(f, x):
    """Jacobian by reverse accumulation: one VJP per output element."""
    y, f_vjp = gt.vjp(f, x)
    rows = []
    for k in range(y.size):
        e = gt.reshape(gt.astype(gt.arange(y.size) == k, y.dtype), y.shape)
        rows.append(gt.reshape(f_vjp(e)[0], (-1,)))
    return gt.reshape(gt.stack(rows), y.shape + x.shape)


def run(device):
    r = _Report()
    gt.set_default_device(device)
    print(f"gradtape {gt.__version__} on device {gt.get_default_device()!r}")

    r.section("Subderivatives (seed: d|x|/dx, d max(x,0)/dx; a chosen in the subdifferential at 0)")
    xs = gt.asarray([-1.0, 0.0, 2.0])
    r.show("d|x|/dx at [-1, 0, 2], default a = 0", gt.grad(lambda x: gt.sum(gt.abs(x)))(xs), [-1.0, 0.0, 1.0])
    with gt.subgradient(abs=0.5):
        r.show("  with gt.subgradient(abs=0.5)", gt.grad(lambda x: gt.sum(gt.abs(x)))(xs), [-1.0, 0.5, 1.0])
    r.show("d max(x,0)/dx at [-1, 0, 2], default a = 0", gt.grad(lambda x: gt.sum(gt.nn.relu(x)))(xs), [0.0, 0.0, 1.0])
    with gt.subgradient(relu=1.0):
        r.show("  with gt.subgradient(relu=1)", gt.grad(lambda x: gt.sum(gt.nn.relu(x)))(xs), [0.0, 1.0, 1.0])
    try:
        with gt.subgradient(abs=2.0):
            pass
        r.show("gt.subgradient(abs=2) rejected", "no", "yes")
    except ValueError as e:
        print(f"  gt.subgradient(abs=2) -> ValueError: {e}")

    r.section("Layouts (numerator layout)")
    x = gt.asarray([1.0, 2.0, 3.0])
    g = gt.grad(lambda x: gt.sum(x * x))(x)
    r.show("scalar y = sum(x^2) by x: row [dy/dx_i], shape", g.shape, None)
    r.show("  values 2x", g, 2 * x)
    s = gt.asarray(2.0)
    col = _jac_fwd(lambda s: gt.stack([s, s * s, gt.sin(s)]), s)
    r.show("vector y = [s, s^2, sin s] by scalar: column", col, gt.stack([1.0 + 0 * s, 2 * s, gt.cos(s)]))
    J = _jac_fwd(lambda x: gt.stack([x[0] * x[1], x[1] + x[2]]), x)
    r.show("vector by vector: m x n matrix, shape", J.shape, None)
    r.show("  [[x2, x1, 0], [0, 1, 1]]", J, [[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])

    r.section("Identity tables: dy/dx for y = a, x, Ax, x^T A")
    A = gt.asarray([[1.0, 2.0, 0.0], [0.0, 3.0, 4.0]])
    a = gt.asarray([5.0, 6.0])
    r.show("y = a      -> 0", _jac_rev(lambda x: a + 0 * gt.sum(x), x), gt.zeros((2, 3)))
    r.show("y = x      -> I", _jac_rev(lambda x: x, x), gt.eye(3))
    r.show("y = Ax     -> A", _jac_rev(lambda x: A @ x, x), A)
    r.show("y = x^T A  -> A^T", _jac_rev(lambda v: v @ A, a), A.T)
    r.section("dy/dx for y = au, Au, u + v (u = sin x, v = x^2)")
    u = lambda x: gt.sin(x)  # noqa: E731
    v = lambda x: x * x  # noqa: E731
    du, dv = _jac_fwd(u, x), _jac_fwd(v, x)
    B = gt.asarray([[1.0, -1.0, 2.0], [0.5, 0.0, 1.0]])
    r.show("y = 3u     -> 3 du/dx", _jac_fwd(lambda x: 3.0 * u(x), x), 3.0 * du)
    r.show("y = Bu     -> B du/dx", _jac_fwd(lambda x: B @ u(x), x), B @ du)
    r.show("y = u + v  -> du/dx + dv/dx", _jac_fwd(lambda x: u(x) + v(x), x), du + dv)

    r.section("Vector chain rule: dy/dx = dy/du du/dx")
    g_ = lambda x: gt.stack([x[0] * x[1], gt.sin(x[2]), x[0] + x[2]])  # noqa: E731
    f_s = lambda u: gt.sum(u * u)  # noqa: E731
    lhs = gt.grad(lambda x: f_s(g_(x)))(x)
    rhs = gt.grad(f_s)(g_(x)) @ _jac_fwd(g_, x)
    r.show("scalar y, vector u: (1,) x (3,3) -> shape", lhs.shape, None)
    r.show("  grad(f o g) == grad f(u) @ J_g", lhs, rhs)
    f_v = lambda u: gt.stack([u[0] * u[1], u[2] - u[0]])  # noqa: E731
    r.show("vector y: J_(f o g) == J_f(u) @ J_g(x)", _jac_fwd(lambda x: f_v(g_(x)), x),
           _jac_fwd(f_v, g_(x)) @ _jac_fwd(g_, x))
    sx = gt.asarray(0.7)
    r.show("scalar chain: d sin(x^2)/dx = cos(x^2) 2x", gt.grad(lambda t: gt.sin(t * t))(sx),
           gt.cos(sx * sx) * 2 * sx)

    r.section("Computation graph, implicit construction (the seed's MXNet cell, import changed)")
    with autograd.record():
        a = nd.ones((2, 1))
        b = nd.ones((2, 1))
    print(f"  a = nd.ones((2, 1)) -> {a.tolist()}, b -> {b.tolist()}")
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        c = 2 * a + b
    c.backward()
    r.show("c = 2a + b: dc/da", a.grad, [[2.0], [2.0]])
    r.show("c = 2a + b: dc/db", b.grad, [[1.0], [1.0]])

    r.section("d2l autograd examples")
    x = gt.arange(4.0)
    x.attach_grad()
    with autograd.record():
        y = 2 * gt.vecdot(x, x)
    y.backward()
    r.show("y = 2 x^T x: dy/dx = 4x", x.grad, 4 * x)
    with autograd.record():
        y = x * x
        u = y.detach()
        z = u * x
    z.backward()
    r.show("z = detach(x*x) * x: dz/dx = u", x.grad, u)

    def f(a):
        b = a * 2
        while gt.linalg.vector_norm(b) < 1000:
            b = b * 2
        c = b if gt.sum(b) > 0 else 100 * b
        return c
    a = gt.asarray(-0.37)
    a.attach_grad()
    with autograd.record():
        d = f(a)
    d.backward()
    r.show("control flow (while on norm, if on sum): d/a", a.grad, d / a)

    print(f"\n{'all checks passed' if not r.failed else f'{r.failed} checks FAILED'}")
    return r.failed


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m gradtape", description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu (NumPy, default), strict (array-api-strict), cuda or cuda:N")
    args = p.parse_args(argv)
    return 1 if run(args.device or gt.get_default_device()) else 0


if __name__ == "__main__":
    sys.exit(main())
