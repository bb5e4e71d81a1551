"""``python -m gradtape``: the lecture notes (matrix calculus, automatic differentiation) as a lesson run on gradtape.

Section by section, as in the notes (scalar derivatives, subderivatives,
gradients and their layouts, the two tables of derivatives, the vector chain
rule, the computation graph built explicitly and recorded implicitly, forward
and reverse accumulation), each check prints its inputs, the closed form of the
notes evaluated with plain Python arithmetic, gradtape's result, and whether
the two agree. The lecture's graph z = (<x, w> - y)^2 and its traced gradient
graph are drawn to SVG and PNG (Graphviz where ``dot`` exists, matplotlib
otherwise); the cost of forward and reverse accumulation is counted exactly on
gradtape's traced graphs (operations, bytes), timed as a median, and plotted
to ``forward_vs_reverse.png``. ``--lang zh`` prints the section titles in the
notes' language. ``python -m gradtape info`` lists backends, devices and
versions. Exits 1 if any check disagrees.

Size: ~800 lines: the lesson is one file that reads top to bottom in the notes' order (the printing helpers,
one short function per section, the exact cost count, then ``info`` and the command line).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import statistics
import subprocess
import textwrap
import time

import gradtape as gt
from gradtape import autograd, backends, nd, sym

# Section titles: English, and the notes' own Chinese headings (矩阵求导, 标量导数, 亚导数, 梯度, 自动求导,
# 向量链式法则, 计算图 and its 显示构造); the notes have no heading for the last two, titled in their style.
TITLES = {
    "calculus": ("Matrix calculus", "矩阵求导"),
    "scalar": ("Scalar derivatives: the slope of the tangent", "标量导数"),
    "sub": ("Subderivatives: |x| and max(x, 0) at their kink", "亚导数"),
    "grad": ("Gradients: scalar by vector, vector by scalar, vector by vector", "梯度"),
    "table1": ("Gradients, first table: ∂y/∂x for y = a, x, Ax, xᵀA", "梯度 · 表一: y = a, x, Ax, xᵀA"),
    "table2": ("Gradients, second table: ∂y/∂x for y = a·u, Au, u + v", "梯度 · 表二: y = a·u, Au, u + v"),
    "autodiff": ("Automatic differentiation", "自动求导"),
    "chain": ("The vector chain rule", "向量链式法则"),
    "explicit": ("Computation graph, explicit construction (gradtape.sym)", "计算图 · 显示构造"),
    "implicit": ("Computation graph, implicit construction (autograd.record)", "计算图 · 隐式构造"),
    "d2l": ("More recorded examples (the d2l autograd chapter)", "自动求导 · d2l 的例子"),
    "modes": ("Forward vs reverse accumulation", "正向累积与反向累积"),
    "cost": ("Forward vs reverse accumulation: the cost for n operators", "正向累积与反向累积 · 代价"),
}

LAYOUT = [("scalar y, x = [x1 … xn]", "∂y/∂x = [∂y/∂x1 … ∂y/∂xn], a row", "shape (n,)"),
          ("y = [y1 … ym], scalar x", "∂y/∂x = [∂y1/∂x … ∂ym/∂x], a column", "shape (m,)"),
          ("y = [y1 … ym], x = [x1 … xn]", "∂y/∂x = the m×n matrix whose row i is ∂yi/∂x", "shape (m, n)")]


# ---- printing: numbers, vectors and matrices at 4 significant digits ------------------------------------------

def _num(v, scale=0.0):
    """v at 4 significant digits: integers as integers, no -0 (nor entries below 1e-12 of the matrix's scale)."""
    v = float(v)
    if v != v:
        return "nan"
    if v in (math.inf, -math.inf):
        return "inf" if v > 0 else "-inf"
    if v == 0 or abs(v) <= 1e-12 * scale:
        return "0"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    s = f"{v:.4g}"
    return "0" if float(s) == 0 else s


def _flat(v):
    return [e for row in v for e in _flat(row)] if isinstance(v, list) else [v]


def _shape(v):
    return (len(v),) + _shape(v[0]) if isinstance(v, list) and v else ((0,) if isinstance(v, list) else ())


def _block(v):
    """The lines that show v: one for a scalar or a vector, one per row for a matrix (columns aligned)."""
    scale = max((abs(float(e)) for e in _flat(v) if math.isfinite(float(e))), default=0.0)
    if not isinstance(v, list):
        return [_num(v)]
    if not v or not isinstance(v[0], list):
        return ["[" + ", ".join(_num(e, scale) for e in v) + "]"]
    cells = [[_num(e, scale) for e in row] for row in v]
    widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
    rows = ["[" + ", ".join(c.rjust(w) for c, w in zip(row, widths)) + "]" for row in cells]
    return [("[" if i == 0 else " ") + r + ("]" if i == len(rows) - 1 else ",") for i, r in enumerate(rows)]


def _plain(v):
    """A closed form as plain Python numbers; a Tensor here would mean gradtape computed it (not allowed)."""
    if isinstance(v, gt.Tensor):
        raise TypeError("a closed form must be computed with plain Python arithmetic from the inputs, not be a "
                        "gradtape Tensor (the lesson checks gradtape against the notes, never against itself)")
    if isinstance(v, (list, tuple)):
        return [_plain(e) for e in v]
    return float(v)


def _value(t):
    """gradtape's result as plain Python numbers."""
    return t.detach().tolist() if isinstance(t, gt.Tensor) else _plain(t)


def _agree(c, g):
    """(equal shapes and values to 1e-9 relative, the largest difference)."""
    if _shape(c) != _shape(g):
        return False, math.inf
    diff = 0.0
    for a, b in zip(_flat(c), _flat(g)):
        if a == b or (a != a and b != b):
            continue
        diff = max(diff, abs(a - b) / max(1.0, abs(a)))
    return diff <= 1e-9, diff


class Reporter:
    """Prints the lesson and records it: every check's closed form (plain Python numbers), gradtape's value, the
    verdict (``checks``); each section's inputs (``inputs``); the exact cost rows (``costs``).

    >>> r = Reporter()
    >>> r.check("k", "d(x²)/dx at x = 3", gt.grad(lambda x: x * x)(gt.asarray(3.0)), 6.0, formula="2x",
    ...         how="gt.grad")
      d(x²)/dx at x = 3  →  2x
        closed form 6   gradtape (gt.grad) 6   agree
    >>> r.checks[0]["closed_form"], r.checks[0]["gradtape"], r.failed
    (6.0, 6.0, 0)
    """

    def __init__(self, lang="en"):
        self.lang = lang
        self.checks = []
        self.inputs = {}
        self.costs = []
        self.errors = 0         # failures that are not a comparison (an error that should have been raised)
        self.key = None

    @property
    def failed(self):
        return sum(not c["ok"] for c in self.checks) + self.errors

    def title(self, key):
        return TITLES[key][self.lang == "zh"]

    def part(self, key):
        print(f"\n===== {self.title(key)} =====")

    def section(self, key):
        self.key = key
        self.inputs.setdefault(key, {})
        print(f"\n== {self.title(key)} ==")

    def note(self, text):
        print(textwrap.fill(text, 112, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False))

    def given(self, **values):
        """Print and record the inputs of the current section (plain Python numbers)."""
        for name, v in values.items():
            self.inputs[self.key][name] = _plain(v)
            lines = _block(_plain(v))
            print(f"  given {name} = {lines[0]}")
            pad = " " * len(f"  given {name} = ")
            for line in lines[1:]:
                print(pad + line)

    def check(self, key, what, gradtape, closed_form, *, formula, how):
        """Print ``what``, the closed form (``formula``, evaluated in plain Python), gradtape's value and the verdict."""
        c, g = _plain(closed_form), _value(gradtape)
        ok, diff = _agree(c, g)
        self.checks.append(dict(section=self.key, key=key, what=what, formula=formula, how=how, closed_form=c,
                                gradtape=g, ok=ok))
        print(f"  {what}  →  {formula}")
        left, right = _block(c), _block(g)
        lhead, rhead = "closed form ", f"gradtape ({how}) "
        left = [lhead + left[0]] + [" " * len(lhead) + s for s in left[1:]]
        right = [rhead + right[0]] + [" " * len(rhead) + s for s in right[1:]]
        width = max(len(s) for s in left)
        verdict = "agree" if ok else f"DIFFER (largest relative difference {_num(diff)})"
        if width + max(len(s) for s in right) > 100:      # too wide side by side: one above the other
            for s in left:
                print(f"    {s}")
            for i, s in enumerate(right):
                print(f"    {s}" + (f"   {verdict}" if i == 0 else ""))
            return
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            print(f"    {a.ljust(width)}   {b}" + (f"   {verdict}" if i == 0 else ""))


# ---- closed forms: plain Python arithmetic on lists ----------------------------------------------------------

def _diag(v):
    return [[float(v[i]) if i == j else 0.0 for j in range(len(v))] for i in range(len(v))]


def _mm(a, b):
    """Matrix product of nested lists (a vector on the left is a row)."""
    if not isinstance(a[0], list):
        return _mm([a], b)[0]
    return [[sum(x * y for x, y in zip(row, col)) for col in zip(*b)] for row in a]


def _mv(a, v):
    return [sum(x * y for x, y in zip(row, v)) for row in a]


def _T(a):
    return [list(col) for col in zip(*a)]


def _scale(s, m):
    return [_scale(s, e) for e in m] if isinstance(m, list) else s * m


def _add(m, n):
    return [_add(a, b) for a, b in zip(m, n)] if isinstance(m, list) else m + n


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def _t(v):
    """A float64 tensor on the default device from plain numbers."""
    return gt.asarray(v, dtype=gt.float64)


# ---- part 1: matrix calculus ---------------------------------------------------------------------------------

def scalar_derivatives(r):
    r.section("scalar")
    x = 0.5
    r.given(x=x)
    X = _t(x)
    r.check("cube", "∂(x³)/∂x", gt.grad(lambda x: x ** 3)(X), 3 * x * x, formula="3x²", how="gt.grad")
    r.check("sin", "∂(sin x)/∂x", gt.grad(gt.sin)(X), math.cos(x), formula="cos x", how="gt.grad")
    r.check("exp", "∂(eˣ)/∂x", gt.grad(gt.exp)(X), math.exp(x), formula="eˣ", how="gt.grad")


def _abs_sub(v, a):
    return 1.0 if v > 0 else -1.0 if v < 0 else a


def _relu_sub(v, a):
    return 1.0 if v > 0 else 0.0 if v < 0 else a


def subderivatives(r):
    r.section("sub")
    x = [-1.0, 0.0, 2.0]
    r.given(x=x)
    r.note("Each entry i is ∂|xi|/∂xi (the gradient of sum |x|); at 0 any a of the subdifferential is allowed.")
    X = _t(x)
    d_abs = gt.grad(lambda x: gt.sum(gt.abs(x)))
    d_relu = gt.grad(lambda x: gt.sum(gt.nn.relu(x)))
    abs_form, relu_form = "1 if x > 0, -1 if x < 0, a if x = 0", "1 if x > 0, 0 if x < 0, a if x = 0"
    r.check("abs", "∂|x|/∂x with a = 0 (gradtape's default)", d_abs(X), [_abs_sub(v, 0.0) for v in x],
            formula=abs_form, how="gt.grad")
    with gt.subgradient(abs=0.5):
        r.check("abs_a", "∂|x|/∂x with a = 0.5 (gt.subgradient(abs=0.5))", d_abs(X),
                [_abs_sub(v, 0.5) for v in x], formula=abs_form, how="gt.grad")
    r.check("relu", "∂max(x, 0)/∂x with a = 0 (gradtape's default)", d_relu(X), [_relu_sub(v, 0.0) for v in x],
            formula=relu_form, how="gt.grad")
    with gt.subgradient(relu=1.0):
        r.check("relu_a", "∂max(x, 0)/∂x with a = 1 (gt.subgradient(relu=1))", d_relu(X),
                [_relu_sub(v, 1.0) for v in x], formula=relu_form, how="gt.grad")
    try:
        with gt.subgradient(abs=2.0):
            pass
        r.note("FAILED: an a outside [-1, 1] was accepted (gt.subgradient(abs=2) should be a ValueError)")
        r.errors += 1
    except ValueError as e:
        r.note(f"an a outside the subdifferential is refused: gt.subgradient(abs=2) -> ValueError: {e}")


def gradients(r):
    r.section("grad")
    r.note("Layout: the numerator layout, as in the notes (gradtape's jacobian(f)(x) has shape y.shape + x.shape, "
           "grad(f)(x) for a scalar y the shape of x):")
    for what, form, shape in LAYOUT:
        print(f"    {what:<30} {form:<46} {shape}")
    x, s = [1.0, 2.0, 3.0], 2.0
    r.given(x=x, s=s)
    X, S = _t(x), _t(s)
    r.check("row", "scalar by vector, y = xᵀx: the row ∂y/∂x, shape (3,)", gt.grad(lambda x: gt.vecdot(x, x))(X),
            [2 * v for v in x], formula="2xᵀ", how="gt.grad")
    r.check("column", "vector by scalar, y = [s, s², sin s]: the column ∂y/∂s, shape (3,)",
            gt.jacobian(lambda s: gt.stack([s, s * s, gt.sin(s)]))(S), [1.0, 2 * s, math.cos(s)],
            formula="[1, 2s, cos s]", how="gt.jacobian")
    r.check("matrix", "vector by vector, y = [x1·x2, x2 + x3]: the 2×3 matrix ∂y/∂x",
            gt.jacobian(lambda x: gt.stack([x[0] * x[1], x[1] + x[2]]))(X),
            [[x[1], x[0], 0.0], [0.0, 1.0, 1.0]], formula="[[x2, x1, 0], [0, 1, 1]]", how="gt.jacobian")


def first_table(r):
    r.section("table1")
    x, a = [1.0, 2.0, 3.0], [5.0, 6.0, 7.0]
    A = [[1.0, 2.0, 0.0], [0.0, 3.0, 4.0], [5.0, 0.0, 6.0]]
    r.given(x=x, a=a, A=A)
    X, a_, A_ = _t(x), _t(a), _t(A)
    jac = gt.jacobian
    r.check("a", "y = a (a constant)", jac(lambda x: a_)(X), [[0.0] * 3 for _ in range(3)],
            formula="0", how="gt.jacobian")
    r.check("x", "y = x", jac(lambda x: x)(X), _diag([1.0] * 3), formula="I", how="gt.jacobian")
    r.check("Ax", "y = Ax", jac(lambda x: A_ @ x)(X), A, formula="A", how="gt.jacobian")
    r.check("xA", "y = xᵀA", jac(lambda x: x @ A_)(X), _T(A), formula="Aᵀ", how="gt.jacobian")


def second_table(r):
    r.section("table2")
    x, a = [1.0, 2.0, 3.0], 3.0
    B = [[1.0, -1.0, 2.0], [0.5, 0.0, 1.0]]
    r.given(x=x, a=a, A=B)
    r.note("with u = sin x and v = x² (elementwise), whose closed forms are ∂u/∂x = diag(cos x), ∂v/∂x = diag(2x)")
    X, B_ = _t(x), _t(B)
    du, dv = _diag([math.cos(v) for v in x]), _diag([2 * v for v in x])
    jac = gt.jacobian
    r.check("du", "u = sin x", jac(gt.sin)(X), du, formula="diag(cos x)", how="gt.jacobian")
    r.check("dv", "v = x²", jac(lambda x: x * x)(X), dv, formula="diag(2x)", how="gt.jacobian")
    r.check("au", "y = a·u", jac(lambda x: a * gt.sin(x))(X), _scale(a, du), formula="a ∂u/∂x = a·diag(cos x)",
            how="gt.jacobian")
    r.check("Au", "y = Au (A is 2×3)", jac(lambda x: B_ @ gt.sin(x))(X), _mm(B, du),
            formula="A ∂u/∂x = A·diag(cos x)", how="gt.jacobian")
    r.check("u+v", "y = u + v", jac(lambda x: gt.sin(x) + x * x)(X), _add(du, dv),
            formula="∂u/∂x + ∂v/∂x = diag(cos x) + diag(2x)", how="gt.jacobian")


# ---- part 2: automatic differentiation -----------------------------------------------------------------------

def chain_rule(r):
    r.section("chain")
    t, x, w = 0.7, [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]
    A = [[1.0, 2.0, 0.0], [0.0, 3.0, 4.0], [5.0, 0.0, 6.0]]
    r.given(t=t, x=x, w=w, A=A)
    r.note("Each closed form is the product ∂y/∂u · ∂u/∂x of the two factors' closed forms (shapes in brackets).")
    T, X, W, A_ = _t(t), _t(x), _t(w), _t(A)
    r.check("scalar", "y = sin u, u = t² (all scalars)", gt.grad(lambda t: gt.sin(t * t))(T),
            math.cos(t * t) * 2 * t, formula="∂y/∂u ∂u/∂t = cos(t²) · 2t", how="gt.grad")
    u = _dot(w, x)
    r.check("u_scalar", "y = u², u = <w, x> (scalar u, vector x)", gt.grad(lambda x: gt.vecdot(W, x) ** 2)(X),
            _scale(2 * u, w), formula="∂y/∂u ∂u/∂x = 2u · wᵀ   [1×1 · 1×3]", how="gt.grad")
    u = _mv(A, x)
    r.check("u_vector", "y = uᵀu, u = Ax (vector u)", gt.grad(lambda x: gt.vecdot(A_ @ x, A_ @ x))(X),
            _mm(_scale(2.0, u), A), formula="∂y/∂u ∂u/∂x = 2uᵀ · A   [1×3 · 3×3]", how="gt.grad")
    u = [math.sin(v) for v in x]
    dy_du = [[u[1], u[0], 0.0], [-1.0, 0.0, 1.0]]
    r.check("y_vector", "y = [u1·u2, u3 - u1], u = sin x (vector y)",
            gt.jacobian(lambda x: (lambda u: gt.stack([u[0] * u[1], u[2] - u[0]]))(gt.sin(x)))(X),
            _mm(dy_du, _diag([math.cos(v) for v in x])),
            formula="∂y/∂u ∂u/∂x = [[u2, u1, 0], [-1, 0, 1]] · diag(cos x)   [2×3 · 3×3]", how="gt.jacobian")


def implicit_graph(r):
    r.section("implicit")
    r.note("The notes' MXNet cell, with the import changed to gradtape (from gradtape import autograd, nd):")
    r.note("  with autograd.record(): a = nd.ones((2, 1)); b = nd.ones((2, 1))")
    with autograd.record():
        a = nd.ones((2, 1))
        b = nd.ones((2, 1))
    r.given(a=a.tolist(), b=b.tolist())
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        c = 2 * a + b
    c.backward()
    r.note("then c = 2a + b recorded and c.backward(): c has two entries, so backward differentiates their sum")
    r.check("dc_da", "a.grad, i.e. ∂(sum c)/∂a", a.grad, [[2.0], [2.0]], formula="2 (each entry)",
            how="backward()")
    r.check("dc_db", "b.grad, i.e. ∂(sum c)/∂b", b.grad, [[1.0], [1.0]], formula="1 (each entry)",
            how="backward()")


def _control_flow_k(a):
    """d2l's f(a) is k·a near a: the doubling count and the sign decide k (plain Python, no gradtape)."""
    b = a * 2
    while abs(b) < 1000:
        b *= 2
    return (b if b > 0 else 100 * b) / a


def d2l_examples(r):
    r.section("d2l")
    x, a = [0.0, 1.0, 2.0, 3.0], -0.37
    r.given(x=x, a=a)
    X = _t(x)
    X.attach_grad()
    with autograd.record():
        y = 2 * gt.vecdot(X, X)
    y.backward()
    r.check("2xx", "y = 2xᵀx", X.grad, [4 * v for v in x], formula="4x", how="backward()")
    with autograd.record():
        u = (X * X).detach()
        z = u * X
    z.backward()
    r.check("detach", "z = u·x with u = detach(x·x) a constant", X.grad, [v * v for v in x], formula="u = x²",
            how="backward()")

    def f(a):
        b = a * 2
        while gt.linalg.vector_norm(b) < 1000:
            b = b * 2
        return b if gt.sum(b) > 0 else 100 * b
    A = _t(a)
    A.attach_grad()
    with autograd.record():
        d = f(A)
    d.backward()
    k = _control_flow_k(a)
    r.note("f(a) doubles b = 2a while |b| < 1000, then returns b if b > 0 else 100·b: near a it is d = k·a")
    r.check("control", "∂d/∂a for the Python while/if function f", A.grad, k,
            formula=f"k = 2^{round(math.log2(abs(k) / (100 if a < 0 else 1)))}{' · 100' if a < 0 else ''}",
            how="backward()")


# ---- the lecture's graph: z = (<x, w> - y)^2 -------------------------------------------------------------------

LECTURE_INPUTS = dict(x=[1.0, 2.0, 3.0], w=[0.5, -1.0, 2.0], y=1.5)   # the lecture graph's x, w, y


def _lecture_symbols():
    """z = (<x, w> - y)^2 as the lecture breaks it up: a = <x, w>, b = a - y, z = b^2."""
    x, w, y = sym.var("x"), sym.var("w"), sym.var("y")
    a = gt.vecdot(x, w).rename("a")
    b = (a - y).rename("b")
    z = (b ** 2).rename("z")
    return x, w, y, z


def _z(x, w, y):
    b = gt.vecdot(x, w) - y
    return b * b


def _have_dot():
    return shutil.which("dot") is not None


def explicit_graph(r, out, detail):
    r.section("explicit")
    r.note("The notes' cell: a = sym.var(\"a\"); b = sym.var(\"b\"); c = 2 * a + b")
    a, b = sym.var("a"), sym.var("b")
    c = 2 * a + b
    av, bv = 1.5, -2.0
    r.given(a=av, b=bv)
    ins = dict(a=_t(av), b=_t(bv))
    dc_da, dc_db = sym.grad(c, [a, b])
    r.check("c", "c.eval(a=a, b=b)", c.eval(**ins), 2 * av + bv, formula="2a + b", how="sym eval")
    r.check("c_a", "sym.grad(c, a)", dc_da.eval(**ins), 2.0, formula="∂c/∂a = 2", how="sym.grad")
    r.check("c_b", "sym.grad(c, b)", dc_db.eval(**ins), 1.0, formula="∂c/∂b = 1", how="sym.grad")

    r.note("The lecture's graph: z = (<x, w> - y)² broken into a = <x, w>, b = a - y, z = b²")
    x, w, y, z = _lecture_symbols()
    xv, wv, yv = LECTURE_INPUTS["x"], LECTURE_INPUTS["w"], LECTURE_INPUTS["y"]
    r.given(x=xv, w=wv, y=yv)
    inputs = dict(x=_t(xv), w=_t(wv), y=_t(yv))
    bv = _dot(xv, wv) - yv
    dz_dx, dz_dw = sym.grad(z, [x, w])
    r.check("z", "z.eval(x=x, w=w, y=y)", z.eval(**inputs), bv * bv, formula="(<x, w> - y)²", how="sym eval")
    r.check("z_x", "sym.grad(z, x)", dz_dx.eval(**inputs), _scale(2 * bv, wv), formula="∂z/∂x = 2(<x, w> - y) wᵀ",
            how="sym.grad")
    r.check("z_w", "sym.grad(z, w)", dz_dw.eval(**inputs), _scale(2 * bv, xv), formula="∂z/∂w = 2(<x, w> - y) xᵀ",
            how="sym.grad")
    g = gt.trace(sym.group(z, dz_dx, dz_dw), **inputs)
    n_rev = sum(n.rev for n in g.nodes)
    r.note(f"gt.trace(sym.group(z, ∂z/∂x, ∂z/∂w)) gives one graph of {len(g)} nodes: {len(g) - n_rev} inputs and "
           f"forward operations, {n_rev} of the reverse pass")
    _draw(r, out, z, g, detail)
    path = os.path.join(out, "lecture_graph.json")
    g.save(path)
    got = gt.Graph.load(path)(**inputs)
    r.note(f"the gradient graph saved to {os.path.basename(path)}, loaded back and replayed:")
    r.check("json_z", "replayed z", got[0], bv * bv, formula="(<x, w> - y)²", how="Graph.load(...)(x, w, y)")
    r.check("json_w", "replayed ∂z/∂w", got[2], _scale(2 * bv, xv), formula="2(<x, w> - y) xᵀ",
            how="Graph.load(...)(x, w, y)")


def _draw(r, out, z, g, detail):
    how = "Graphviz" if _have_dot() else "matplotlib (no Graphviz `dot` here)"
    r.note("pictures: inputs blue, forward operations white, the reverse pass red, outputs green (legend inside), "
           "named as in the notes (a, b, z; the gradient graph's outputs z, ∂z/∂x, ∂z/∂w)"
           + ("" if detail else "; bookkeeping nodes (the seed of ones, reshapes) hidden: --detail shows them"))
    for name, obj in (("lecture_graph", z), ("lecture_grad_graph", g)):
        # the gradient graph's outputs carry the notes' names; the explicit graph already names a, b, z
        kw = {"detail": detail, "names": ("z", "∂z/∂x", "∂z/∂w")} if isinstance(obj, gt.Graph) else {}
        obj.render(os.path.join(out, name + ".dot"))
        for ext in (".svg", ".png"):
            try:
                obj.render(os.path.join(out, name + ext), **kw)
            except (RuntimeError, ImportError) as e:      # neither dot nor the pip drawing path installed
                r.note(f"{name}{ext} not drawn: {e}")
                break
        else:
            r.note(f"{name}: drawn to .svg and .png with {how}")


# ---- forward vs reverse accumulation ---------------------------------------------------------------------------

def _grad_forward(f, x, rest):
    """The full gradient by forward accumulation: one JVP per input element."""
    eye = gt.eye(x.shape[0], dtype=x.dtype, device=x.device)
    return gt.stack([gt.jvp(lambda v: f(v, *rest), (x,), (eye[i],))[1] for i in range(x.shape[0])])


def _grad_reverse(f, x, rest):
    """The full gradient by reverse accumulation: one VJP."""
    return gt.grad(f)(x, *rest)


def accumulation_modes(r):
    r.section("modes")
    r.note("∂z/∂w of the lecture's z = (<x, w> - y)², the same inputs as above (3 entries in w)")
    xv, wv, yv = LECTURE_INPUTS["x"], LECTURE_INPUTS["w"], LECTURE_INPUTS["y"]
    r.given(x=xv, w=wv, y=yv)
    X, W, Y = _t(xv), _t(wv), _t(yv)
    want = _scale(2 * (_dot(xv, wv) - yv), xv)

    def zw(w, x, y):
        return _z(x, w, y)
    r.check("fwd", "forward accumulation: one JVP per entry of w (3 passes)", _grad_forward(zw, W, (X, Y)),
            want, formula="2(<x, w> - y) xᵀ", how="gt.jvp ×3")
    r.check("rev", "reverse accumulation: one VJP (1 pass)", _grad_reverse(zw, W, (X, Y)), want,
            formula="2(<x, w> - y) xᵀ", how="gt.grad")


def _deep_z(n):
    """The lecture's z after n operators on x: z = (<h_n, w> - y)^2, h_k = sin(h_(k-1)), h_0 = x."""
    def f(x, w, y):
        h = x
        for _ in range(n):
            h = gt.sin(h)
        return _z(h, w, y)
    return f


def _deep_closed_form(n, x, w, y):
    """∂z/∂x = 2(<h_n, w> - y) · w ⊙ cos(h_0) ⊙ … ⊙ cos(h_(n-1)), in plain Python."""
    h, prod = list(x), [1.0] * len(x)
    for _ in range(n):
        prod = [p * math.cos(v) for p, v in zip(prod, h)]
        h = [math.sin(v) for v in h]
    b = _dot(h, w) - y
    return [2 * b * wi * p for wi, p in zip(w, prod)]


def _nbytes(node):
    types = node.result_types or ([(node.shape, node.dtype)] if node.kind != "item" and node.shape is not None
                                  else [])
    total = 0
    for shape, dtype in types:
        bits = "".join(ch for ch in str(dtype) if ch.isdigit())
        total += math.prod(shape) * (int(bits) // 8 if bits else 1)
    return total


def _graph_cost(g):
    """(operations, peak bytes of values alive at once, bytes of forward values the reverse pass reads) of a traced
    graph, by a liveness walk in recorded order (inputs not counted, constants not kept; values nobody reads are
    outputs, alive to the end)."""
    nodes = g.nodes
    last = {}
    for i, n in enumerate(nodes):
        for j in n.deps():
            last[j] = i
    live = peak = 0
    dying = {}
    for j, i in last.items():
        dying.setdefault(i, []).append(j)
    for i, n in enumerate(nodes):
        if n.kind != "input":
            live += _nbytes(n)
        peak = max(peak, live)
        live -= sum(_nbytes(nodes[j]) for j in dying.get(i, ()) if nodes[j].kind != "input")
    kept = {j for n in nodes if n.rev for j in n.deps() if not nodes[j].rev and nodes[j].kind not in ("input", "const")}
    ops = sum(n.kind in ("prim", "fn") for n in nodes)
    return ops, peak, sum(_nbytes(nodes[j]) for j in kept)


def _median_time(fn, device, repeats):
    fn()
    gt.synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        gt.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt_bytes(b):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024


def cost(r, device, out, sizes, repeats=5):
    r.section("cost")
    d = 16
    xv = [-1.0 + 2.0 * i / (d - 1) for i in range(d)]
    wv = [0.5 + i / (d - 1) for i in range(d)]
    yv = 0.25
    r.note(f"z = (<h_n, w> - y)² with h_k = sin(h_(k-1)), h_0 = x: n operators on x, then the lecture's z; "
           f"the gradient ∂z/∂x has {d} entries")
    r.given(x=xv, w=wv, y=yv)
    X, W, Y = _t(xv), _t(wv), _t(yv)
    eye = gt.eye(d, dtype=X.dtype)
    n0 = sizes[0]
    r.given(n=n0)
    f = _deep_z(n0)
    want = _deep_closed_form(n0, xv, wv, yv)
    form = "2(<h_n, w> - y) · w ⊙ cos(h_0) ⊙ … ⊙ cos(h_(n-1))"
    r.check("deep_fwd", f"n = {n0}, forward accumulation ({d} JVPs)", _grad_forward(f, X, (W, Y)), want,
            formula=form, how=f"gt.jvp ×{d}")
    r.check("deep_rev", f"n = {n0}, reverse accumulation (1 VJP)", _grad_reverse(f, X, (W, Y)), want,
            formula=form, how="gt.grad")
    rows = []
    for n in sizes:
        f = _deep_z(n)
        one_jvp = gt.trace(lambda x, w, y: gt.jvp(lambda v: f(v, w, y), (x,), (eye[0],))[1], X, W, Y)
        vjp = gt.trace(lambda x, w, y: gt.grad(f)(x, w, y), X, W, Y)
        (fo, fm, _), (ro, rm, rk) = _graph_cost(one_jvp), _graph_cost(vjp)
        row = dict(n=n, fwd_ops=d * fo, fwd_pass_ops=fo, rev_ops=ro, fwd_bytes=fm, rev_bytes=rm, rev_kept=rk)
        r.costs.append(row)
        rows.append(row)
    r.note(f"Operations and memory, counted exactly on gradtape's traced graphs (gt.trace; same on every run): "
           f"operations = primitive applications; peak = the most bytes of intermediate values alive at once (for "
           f"forward, in one pass: the passes run one after another); "
           f"kept = forward values the reverse pass reads")
    print(f"  | {'n':>5} | {'forward: operations':>24} | {'reverse: operations':>19} | {'forward: peak':>13} | "
          f"{'reverse: peak':>13} | {'reverse: kept':>13} |")
    for row in rows:
        fops = f"{d} × {row['fwd_pass_ops']} = {row['fwd_ops']}"
        print(f"  | {row['n']:>5} | {fops:>24} | {row['rev_ops']:>19} | {_fmt_bytes(row['fwd_bytes']):>13} | "
              f"{_fmt_bytes(row['rev_bytes']):>13} | {_fmt_bytes(row['rev_kept']):>13} |")
    times = []
    for n in sizes:
        f = _deep_z(n)
        times.append((_median_time(lambda: _grad_forward(f, X, (W, Y)), device, repeats),
                      _median_time(lambda: _grad_reverse(f, X, (W, Y)), device, repeats)))
    r.note(f"Time on this machine ({device}), the median of {repeats} runs (it varies from run to run):")
    print(f"  | {'n':>5} | {'forward':>10} | {'reverse':>10} |")
    for n, (tf, tr) in zip(sizes, times):
        print(f"  | {n:>5} | {tf * 1e3:>7.3g} ms | {tr * 1e3:>7.3g} ms |")
    first, last = rows[0], rows[-1]
    r.note(f"In one sentence: reverse accumulation gets all {d} entries of ∂z/∂x in one pass, "
           f"{last['fwd_ops'] / last['rev_ops']:.3g} times fewer operations than forward accumulation's {d} passes "
           f"(n = {last['n']}), but it keeps the forward values for that pass, so its memory grows with n "
           f"({_fmt_bytes(first['rev_bytes'])} at n = {first['n']}, {_fmt_bytes(last['rev_bytes'])} at "
           f"n = {last['n']}) while forward's stays at {_fmt_bytes(last['fwd_bytes'])}.")
    _plot(rows, times, d, device, repeats, os.path.join(out, "forward_vs_reverse.png"))


def _plot(rows, times, d, device, repeats, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (matplotlib is not installed: no plot; pip install 'gradtape[main]')")
        return
    ns = [row["n"] for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = ((axes[0], "operations (exact)", "primitive applications", "fwd_ops", "rev_ops"),
              (axes[1], "peak memory (exact)", "bytes of intermediates alive", "fwd_bytes", "rev_bytes"))
    for ax, title, ylabel, fk, rk in panels:
        ax.loglog(ns, [max(row[fk], 1) for row in rows], "o-", label=f"forward ({d} JVPs)")
        ax.loglog(ns, [max(row[rk], 1) for row in rows], "s-", label="reverse (1 VJP)")
        ax.set(xlabel="n (operators)", ylabel=ylabel, title=title)
        ax.legend()
    axes[2].loglog(ns, [t[0] for t in times], "o-", label=f"forward ({d} JVPs)")
    axes[2].loglog(ns, [t[1] for t in times], "s-", label="reverse (1 VJP)")
    axes[2].set(xlabel="n (operators)", ylabel="seconds per gradient", title=f"time (median of {repeats})")
    axes[2].legend()
    for ax in axes:
        ax.minorticks_off()
        ax.set_xticks(ns, [str(n) for n in ns])
    fig.suptitle(f"gradient of z = (<h_n, w> - y)² w.r.t. {d} inputs, gradtape on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  plotted to {path}")


# ---- the whole lesson ------------------------------------------------------------------------------------------

def lesson(device=None, out="gradtape-lecture", sizes=(16, 64, 256, 1024), *, lang="en", detail=False, repeats=5):
    """Run and print the lesson on ``device``, pictures and plot written to folder ``out``; returns the Reporter.

    >>> import tempfile, contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     r = lesson("cpu", tempfile.mkdtemp(), sizes=(2,), repeats=1)
    >>> r.failed, len(r.checks) > 30, all(isinstance(c["closed_form"], (float, list)) for c in r.checks)
    (0, True, True)
    """
    device = device or gt.get_default_device()
    r = Reporter(lang)
    os.makedirs(out, exist_ok=True)
    with gt.default_device(device):
        _sections(r, device, out, list(sizes), detail, repeats)
    n = len(r.checks)
    print(f"\n{n - r.failed} of {n} checks agree with the notes' closed forms: "
          + ("all lecture checks passed" if not r.failed else f"{r.failed} lecture checks FAILED"))
    print(f"files written to {os.path.abspath(out)}:")
    for f in sorted(os.listdir(out)):
        print(f"  {f}")
    return r


def _sections(r, device, out, sizes, detail, repeats):
    print(f"gradtape {gt.__version__} on device {gt.get_default_device()!r}: the lecture notes, checked")
    r.part("calculus")
    scalar_derivatives(r)
    subderivatives(r)
    gradients(r)
    first_table(r)
    second_table(r)
    r.part("autodiff")
    chain_rule(r)
    explicit_graph(r, out, detail)
    implicit_graph(r)
    d2l_examples(r)
    accumulation_modes(r)
    cost(r, device, out, sizes, repeats)


# ---- info ------------------------------------------------------------------------------------------------

def _dist_version(*names):
    """The installed version of the first distribution found among names (nothing is imported)."""
    from importlib import metadata
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


def info():
    """Backends, devices and versions."""

    print(f"gradtape {gt.__version__} (array API {gt.__array_api_version__}), Python {platform.python_version()} "
          f"on {platform.platform()}")
    print(f"default device: {gt.get_default_device()!r}")
    avail = backends.available()
    print("backends:")
    dists = {"numpy": ("numpy",), "array_api_strict": ("array-api-strict",),
             "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy")}
    for kind, lib in (("cpu", "numpy"), ("strict", "array_api_strict"), ("cuda", "cupy")):
        version = _dist_version(*dists[lib])
        if version is None:
            print(f"  {kind:<7} {lib}: not installed")
            continue
        if kind != "cuda":
            print(f"  {kind:<7} {lib} {version}: device {kind!r}")
            continue
        if "cuda" not in avail:
            print(f"  {kind:<7} {lib} {version}: installed, but no usable CUDA GPU")
            continue
        for line in backends.get("cuda").describe():
            print(f"  {kind:<7} {lib} {version} {line}" if line.startswith("(") else f"          {line}")
    extras = {"array_api_compat": "array_api_compat", "matplotlib (plots)": "matplotlib", "torch (benchmarks)": "torch"}
    print("other packages:")
    for label, lib in extras.items():
        print(f"  {label}: {_dist_version(lib.replace('_', '-'), lib) or 'not installed'}")
    dot = shutil.which("dot")
    if dot:
        v = subprocess.run([dot, "-V"], capture_output=True, text=True)
        print(f"  graphviz (pictures): {(v.stderr or v.stdout).strip()}")
    else:
        print("  graphviz (pictures): `dot` not found (Debian/Ubuntu package: graphviz)")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m gradtape", description=__doc__.splitlines()[0].replace("``", ""),
                                epilog="`python -m gradtape info` lists backends, devices and versions.")
    p.add_argument("--device", default=None, help="cpu (NumPy, default), strict (array-api-strict), cuda or cuda:N")
    p.add_argument("--out", default="gradtape-lecture", help="folder for the pictures (lecture_graph and "
                   "lecture_grad_graph as .svg, .png and .dot), lecture_graph.json and forward_vs_reverse.png "
                   "(default: gradtape-lecture)")
    p.add_argument("--lang", choices=("en", "zh"), default="en",
                   help="language of the section titles: en (English, default) or zh (the notes' Chinese headings)")
    p.add_argument("--detail", action="store_true",
                   help="draw every node of the gradient graph (the seed, reshapes...), not only the notes' ones")
    p.add_argument("--sizes", default="16,64,256,1024",
                   help="numbers of operators n for the cost comparison (comma-separated)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per size; the median is shown (default 5)")
    sub = p.add_subparsers(dest="command", metavar="{info}")
    sub.add_parser("info", help="list backends, devices and versions")
    args = p.parse_args(argv)
    if args.command == "info":
        return info()
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if not sizes or sizes[0] < 1:
        p.error("--sizes: give at least one positive integer")
    if args.repeats < 1:
        p.error("--repeats: give a positive integer")
    r = lesson(args.device, args.out, sizes, lang=args.lang, detail=args.detail, repeats=args.repeats)
    return 1 if r.failed else 0
