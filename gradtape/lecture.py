"""``python -m gradtape``: the lecture notes' formulas and cells, run and checked on a device.

Prints, section by section, what gradtape gives for each formula of the seed
(subgradients, layouts, identity tables, the vector chain rule, the
computation-graph cells) and the d2l autograd examples, with a check mark
when it equals the closed form. Then the lecture's computation graph
z = (<x, w> - y)^2, built explicitly with ``gradtape.sym`` and drawn to
``lecture_graph.svg`` (with its traced forward + reverse graph beside it); its
gradient by forward accumulation (one JVP per input) and by reverse
accumulation (one VJP), shown equal; and the cost of the two for growing n,
measured, printed as a table and plotted to ``forward_vs_reverse.png``.
``python -m gradtape info`` lists backends, devices and versions. Exits 1 if
any check fails.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import time
import tracemalloc

import gradtape as gt
from gradtape import autograd, backends, nd, sym


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


# ---- the lecture: computation graphs, forward and reverse accumulation, their cost ----------------------

def _lecture_symbols():
    """z = (<x, w> - y)^2 as the lecture breaks it up: a = <x, w>, b = a - y, z = b^2."""
    x, w, y = sym.var("x"), sym.var("w"), sym.var("y")
    a = gt.vecdot(x, w).rename("a")
    b = (a - y).rename("b")
    z = (b ** 2).rename("z")
    return x, w, y, z


def _z(x, w, y):
    a = gt.vecdot(x, w)
    b = a - y
    return b * b


def _deep_z(n):
    """The lecture's z after n operators on x: z = (<h_n, w> - y)^2, h_k = sin(h_(k-1)), h_0 = x."""
    def f(x, w, y):
        h = x
        for _ in range(n):
            h = gt.sin(h)
        return _z(h, w, y)
    return f


def _grad_forward(f, x, rest):
    """The full gradient by forward accumulation: one JVP per input element."""
    eye = gt.eye(x.shape[0], dtype=x.dtype, device=x.device)
    return gt.stack([gt.jvp(lambda v: f(v, *rest), (x,), (eye[i],))[1] for i in range(x.shape[0])])


def _grad_reverse(f, x, rest):
    """The full gradient by reverse accumulation: one VJP."""
    return gt.grad(f)(x, *rest)


def _cost(fn, device, repeats):
    """(seconds per call, best of ``repeats``; peak bytes allocated during one call)."""
    fn()
    gt.synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        gt.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, _peak_bytes(fn, device)


def _peak_bytes(fn, device):
    if device.startswith("cuda"):
        try:
            return _cuda_peak(fn, device)
        except Exception:     # noqa: BLE001 (a figure we cannot take is reported as missing)
            return None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _dist_version(*names):
    """The installed version of the first distribution found among names (nothing is imported)."""
    from importlib import metadata
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cuda_peak(fn, device):
    """Peak bytes of CuPy's memory pool in use during fn (the CuPy backend's pool hook)."""

    return backends.get(device).peak_bytes(fn)


def _fmt_bytes(b):
    if b is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024


def _have_dot():
    return shutil.which("dot") is not None


def lecture(device, out, sizes, r=None, detail=False):
    """The lecture's computation-graph half on ``device``, pictures and plot written to folder ``out``."""
    r = r or _Report()
    gt.set_default_device(device)
    os.makedirs(out, exist_ok=True)

    r.section("Computation graph, explicit construction: z = (<x, w> - y)^2 with gradtape.sym")
    x, w, y, z = _lecture_symbols()
    print(f"  a = <x, w>, b = a - y, z = b^2  ->  {z!r}")
    X = gt.asarray([1.0, 2.0, 3.0])
    W = gt.asarray([0.5, -1.0, 2.0])
    Y = gt.asarray(1.5)
    inputs = dict(x=X, w=W, y=Y)
    r.show("z.eval(x=[1,2,3], w=[.5,-1,2], y=1.5)", z.eval(**inputs), _z(X, W, Y))
    dz_dx, dz_dw = sym.grad(z, [x, w])
    a_ = gt.vecdot(X, W) - Y
    r.show("sym.grad(z, w): dz/dw = 2 (<x, w> - y) x", dz_dw.eval(**inputs), 2 * a_ * X)
    r.show("sym.grad(z, x): dz/dx = 2 (<x, w> - y) w", dz_dx.eval(**inputs), 2 * a_ * W)
    pictures = [("lecture_graph", z), ("lecture_grad_graph",
                                       gt.trace(sym.group(z, dz_dx, dz_dw), **inputs))]
    g = pictures[1][1]
    n_rev = sum(n.rev for n in g.nodes)
    print(f"  gt.trace(sym.group(z, dz/dx, dz/dw)): {len(g)} nodes, {len(g) - n_rev} forward and inputs, "
          f"{n_rev} reverse pass")
    how = "Graphviz" if _have_dot() else "matplotlib (no Graphviz `dot` here)"
    print("  pictures: inputs blue, forward ops white, the reverse pass red, outputs green (legend inside)"
          + ("" if detail else "; bookkeeping nodes hidden (--detail shows them)"))
    for name, obj in pictures:
        # the gradient graph's outputs carry the notes' names; the explicit graph already names a, b, z
        kw = {"detail": detail, "names": ("z", "∂z/∂x", "∂z/∂w")} if isinstance(obj, gt.Graph) else {}
        obj.render(os.path.join(out, name + ".dot"))
        for ext in (".svg", ".png"):
            try:
                obj.render(os.path.join(out, name + ext), **kw)
            except (RuntimeError, ImportError) as e:      # neither dot nor the pip drawing path installed
                print(f"  {name}{ext} not drawn: {e}")
                break
        else:
            print(f"  {name}: drawn to .svg and .png with {how}")
    path = os.path.join(out, "lecture_graph.json")
    g.save(path)
    h = gt.Graph.load(path)
    got = h(**inputs)
    r.show("graph saved to JSON, loaded, replayed: z", got[0], _z(X, W, Y))
    r.show("  and dz/dw", got[2], 2 * a_ * X)

    r.section("Forward vs reverse accumulation of dz/dw (n = 3 inputs)")
    fwd = _grad_forward(lambda w_, x_, y_: _z(x_, w_, y_), W, (X, Y))
    rev = _grad_reverse(lambda w_, x_, y_: _z(x_, w_, y_), W, (X, Y))
    r.show("forward: one JVP per input (3 passes)", fwd, 2 * a_ * X)
    r.show("reverse: one VJP (1 pass)", rev, fwd)

    r.section("Cost for n operators (z = (<h_n, w> - y)^2, h_k = sin(h_(k-1)); gradient w.r.t. 16 inputs)")
    d = 16
    xs = gt.linspace(-1.0, 1.0, d)
    ws = gt.linspace(0.5, 1.5, d)
    ys = gt.asarray(0.25)
    rows = []
    for n in sizes:
        f = _deep_z(n)
        if n == sizes[0]:
            diff = gt.max(gt.abs(_grad_forward(f, xs, (ws, ys)) - _grad_reverse(f, xs, (ws, ys))))
            r.show(f"n = {n}: max |forward - reverse| over the 16", diff, 0.0)
        reps = 3 if n <= 256 else 1
        tf, mf = _cost(lambda: _grad_forward(f, xs, (ws, ys)), device, reps)
        tr, mr = _cost(lambda: _grad_reverse(f, xs, (ws, ys)), device, reps)
        rows.append((n, tf, tr, mf, mr))
    mem_what = "device pool peak" if device.startswith("cuda") else "tracemalloc peak"
    print(f"  forward: {d} JVPs, each O(n) time and O(1) memory; reverse: 1 VJP, O(n) time and O(n) memory "
          f"(the intermediates it keeps)")
    print(f"  | {'n':>6} | {'forward time':>13} | {'reverse time':>13} | {'fwd/rev':>7} | "
          f"{'forward mem':>12} | {'reverse mem':>12} |   ({mem_what})")
    for n, tf, tr, mf, mr in rows:
        print(f"  | {n:>6} | {tf * 1e3:>10.2f} ms | {tr * 1e3:>10.2f} ms | {tf / tr:>6.1f}x | "
              f"{_fmt_bytes(mf):>12} | {_fmt_bytes(mr):>12} |")
    _plot(rows, d, device, mem_what, os.path.join(out, "forward_vs_reverse.png"))
    print(f"\n{'all lecture checks passed' if not r.failed else f'{r.failed} lecture checks FAILED'}")
    print(f"files written to {os.path.abspath(out)}:")
    for f in sorted(os.listdir(out)):
        print(f"  {f}")
    return r.failed


def _plot(rows, d, device, mem_what, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (matplotlib is not installed: no plot; pip install 'gradtape[main]')")
        return
    ns = [row[0] for row in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.loglog(ns, [row[1] for row in rows], "o-", label=f"forward ({d} JVPs)")
    ax1.loglog(ns, [row[2] for row in rows], "s-", label="reverse (1 VJP)")
    ax1.set_xlabel("n (operators)")
    ax1.set_ylabel("seconds per gradient")
    ax1.set_title("time")
    ax1.legend()
    if all(row[3] is not None and row[4] is not None for row in rows):
        ax2.loglog(ns, [max(row[3], 1) for row in rows], "o-", label="forward")
        ax2.loglog(ns, [max(row[4], 1) for row in rows], "s-", label="reverse")
        ax2.legend()
    ax2.set_xlabel("n (operators)")
    ax2.set_ylabel(f"bytes ({mem_what})")
    ax2.set_title("peak memory")
    fig.suptitle(f"gradient of z = (<h_n, w> - y)^2 w.r.t. {d} inputs, gradtape on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  plotted to {path}")


# ---- info ------------------------------------------------------------------------------------------------

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
    p.add_argument("--detail", action="store_true",
                   help="draw every node of the gradient graph (the seed, reshapes...), not only the notes' ones")
    p.add_argument("--sizes", default="16,64,256,1024",
                   help="numbers of operators n for the cost comparison (comma-separated)")
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
    device = args.device or gt.get_default_device()
    failed = run(device)
    failed += lecture(device, args.out, sizes, detail=args.detail)
    return 1 if failed else 0

