"""Differential fuzzing against PyTorch (float64) and JAX: random programs over the whole op table.

The fixed seeds below run in CI on the NumPy and array-api-strict backends
(``general``: elementwise, reductions, shape and indexing ops, nn; ``jacobian``:
batched Jacobians and Hessians; ``linalg``). ``GRADTAPE_FUZZ=N`` or
``pytest --fuzz N`` runs N fresh random programs per kind and backend instead;
the base seed is printed on failure, so a run replays with
``python -m tests.difftest.runner --kind K --backend B --seed S --n N``.
A mismatch is shrunk to a small reproducer (gradtape code) in the message.
"""
from __future__ import annotations

import math
import os
import secrets
import subprocess
import sys

import numpy as np
import pytest

import gradtape as gt
from tests.difftest import oracles as O
from tests.difftest import programs as P

FIXED = {"general": 600, "jacobian": 240, "linalg": 240}     # programs per backend in CI
CHUNK = 40


def _fuzz_n(config):
    n = config.getoption("--fuzz")
    if n is None and os.environ.get("GRADTAPE_FUZZ"):
        n = int(os.environ["GRADTAPE_FUZZ"])
    return n


def _run(kind, backend, seeds):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    pytest.importorskip("array_api_compat")
    from tests.difftest import runner as R
    bad, counts = [], {"ok": 0, "invalid": 0, "mismatch": 0}
    for s in seeds:
        r = R.check(P.generate(s, kind), backend, sample=True)
        counts[r.status] += 1
        if r.status == "mismatch":
            bad.append(r)
    if bad:
        first = R.shrink(bad[0], budget=150)
        shown = first if first.status == "mismatch" else bad[0]
        others = ", ".join(f"{r.prog.seed} ({r.check.split(':')[0]})" for r in bad[1:10])
        pytest.fail(f"{len(bad)} of {len(seeds)} {kind} programs on {backend} differ from the oracle "
                    f"(seeds {seeds[0]}..{seeds[-1]}; replay one with python -m tests.difftest.runner --kind {kind} "
                    f"--backend {backend} --n 1 --seed SEED)\nother seeds: {others or '-'}\n\n{shown.report()}",
                    pytrace=False)
    # a generator that only makes programs the oracle refuses would test nothing
    assert counts["ok"] >= 0.7 * len(seeds), counts


CASES = [pytest.param(kind, backend, lo, id=f"{kind}-{backend}-{lo}")
         for kind, n in FIXED.items() for backend in ("cpu", "strict") for lo in range(0, n, CHUNK)]


@pytest.mark.parametrize("kind,backend,lo", CASES)
def test_fixed_seeds(request, kind, backend, lo):
    """A fixed set of seeds (or, with --fuzz N / GRADTAPE_FUZZ=N, N fresh programs in the first chunk)."""
    n = _fuzz_n(request.config)
    if n is None:
        _run(kind, backend, list(range(lo, min(lo + CHUNK, FIXED[kind]))))
        return
    if lo != 0:
        return     # fresh-program mode: one test per kind and backend runs all N
    base = secrets.randbelow(2 ** 31)
    print(f"GRADTAPE_FUZZ: kind={kind} backend={backend} base seed {base}")
    _run(kind, backend, list(range(base, base + n)))


# ---- the op table covers the namespace and the registry ----------------------------------------------------------
def test_every_differentiable_function_has_a_fuzz_spec():
    """A new differentiable function (or primitive) without a row in tests/difftest/oracles.py fails here."""
    missing = O.missing_specs()
    assert not missing, f"no fuzz spec (add one to tests/difftest/oracles.SPECS, or an EXCLUDED reason): {missing}"
    for name in O.EXCLUDED:
        assert O.EXCLUDED[name], name


def test_every_spec_is_drawn_by_the_generator():
    seen = set()
    for kind, n in (("general", 2000), ("linalg", 300)):
        for s in range(n):
            seen |= {i.op for i in P.generate(s, kind).instrs}
    never = sorted(n for n in O.SPECS if n not in seen)
    assert not never, f"specs the generator never draws: {never}"


def test_generator_is_deterministic_and_prints_runnable_code():
    for kind in P.KINDS:
        for s in range(5):
            a, b = P.generate(s, kind), P.generate(s, kind)
            src = P.to_source(a)
            assert src == P.to_source(b)
            ns = {}
            exec(src, ns)     # the reproducer runs
            assert len(ns["outs"]) == len(a.outputs)


def test_fuzzer_imports_without_torch_or_jax():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['jax'] = None\n"
            "import tests.difftest.programs as P, tests.difftest.oracles as O, tests.difftest.runner as R\n"
            "P.generate(3); print(len(O.SPECS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr


def test_the_comparison_catches_a_wrong_gradient():
    """The harness itself: a program whose gradient is perturbed is reported, with a reproducer."""
    pytest.importorskip("torch")
    from tests.difftest import runner as R
    prog = P.Program("general", 0, {"x0": np.array([0.3, -1.2])}, [P.Instr("v0", "sin", ["x0"], {})], ["v0"])
    assert R.check(prog).status == "ok"
    old = O.SPECS["sin"].gt
    O.SPECS["sin"].gt = lambda L, a, p: L.ns.sin(a[0]) + 1e-6 * a[0] * a[0]
    try:
        r = R.check(prog)
    finally:
        O.SPECS["sin"].gt = old
    assert r.status == "mismatch" and r.check.startswith("forward")
    assert "gt.sin(x0)" in r.report()
    with pytest.raises(R.Mismatch):
        R.compare("x", gt.asarray([1.0, math.nan]), np.array([1.0, 2.0]), 1e-7, 1e-9)
    with pytest.raises(R.Mismatch):
        R.compare("x", gt.asarray([[1.0, 2.0]]), np.array([1.0, 2.0]), 1e-7, 1e-9)


# ---- the documented kinks (README table), checked against the oracles directly ----------------------------------
def _g(f, x):
    x = gt.asarray(np.asarray(x, dtype=np.float64)).requires_grad_()
    gt.sum(f(x)).backward()
    return gt.to_numpy(x.grad)


def _t(f, x):
    torch = pytest.importorskip("torch")
    x = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    f(x).sum().backward()
    return x.grad.numpy()


@pytest.mark.parametrize("name", ["abs", "relu", "maximum_tie", "max_tie", "norm_at_0", "sqrt_at_0", "clip_bound",
                                  "sort_ties"])
def test_documented_kink_matches_torch(device, name):
    torch = pytest.importorskip("torch")
    xs = {"abs": [0.0, 1.0, -2.0], "relu": [0.0, 1.0, -2.0], "maximum_tie": [1.0, 2.0], "max_tie": [1.0, 3.0, 3.0],
          "norm_at_0": [0.0, 0.0], "sqrt_at_0": [0.0, 4.0], "clip_bound": [-1.0, 0.5, 1.0, 2.0],
          "sort_ties": [2.0, 1.0, 2.0]}[name]
    w = np.array([3.0, 1.0, 2.0, 5.0])[:len(xs)]
    fg = {"abs": gt.abs, "relu": gt.nn.relu, "maximum_tie": lambda x: gt.maximum(x, x * 1.0),
          "max_tie": gt.max, "norm_at_0": gt.linalg.vector_norm, "sqrt_at_0": gt.sqrt,
          "clip_bound": lambda x: gt.clip(x, -1.0, 1.0),
          "sort_ties": lambda x: gt.sort(x) * gt.asarray(w, device=device)}[name]
    ft = {"abs": torch.abs, "relu": torch.relu, "maximum_tie": lambda x: torch.maximum(x, x * 1.0),
          "max_tie": torch.amax, "norm_at_0": torch.linalg.vector_norm, "sqrt_at_0": torch.sqrt,
          "clip_bound": lambda x: torch.clamp(x, -1.0, 1.0),
          "sort_ties": lambda x: torch.sort(x, stable=True).values * torch.as_tensor(w)}[name]
    x = gt.asarray(np.asarray(xs), device=device).requires_grad_()
    gt.sum(fg(x)).backward()
    np.testing.assert_array_equal(gt.to_numpy(x.grad), _t(ft, xs))


def test_documented_std_at_zero_spread_matches_jax(device):
    """std's derivative where the spread is 0: gradtape follows JAX (NaN), not PyTorch (0)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    for xs in ([1.0, 1.0], [2.0]):
        x = gt.asarray(np.asarray(xs), device=device).requires_grad_()
        gt.std(x).backward()
        want = np.asarray(jax.grad(jnp.std)(jnp.asarray(xs)))
        np.testing.assert_array_equal(np.isnan(gt.to_numpy(x.grad)), np.isnan(want))


def test_pow_integer_zero_exponent_at_zero(device):
    """d/dx x**0 at x = 0 is 0 with a Python int exponent: JAX (integer_pow) and PyTorch agree."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x = gt.asarray(np.array([0.0, 2.0]), device=device).requires_grad_()
    gt.sum(x ** 0).backward()
    want = np.asarray(jax.grad(lambda v: (v ** 0).sum())(jax.numpy.asarray([0.0, 2.0])))
    np.testing.assert_array_equal(gt.to_numpy(x.grad), want)
    np.testing.assert_array_equal(gt.to_numpy(x.grad), _t(lambda v: v ** 0, [0.0, 2.0]))


def test_exprel_derivative_at_zero(device):
    """exprel'(0) = 1/2 (the formula oracle of the fuzzer is 0/0 there, so it is checked here)."""
    x = gt.asarray(np.array([0.0]), device=device).requires_grad_()
    gt.sum(gt.special.exprel(x)).backward()
    np.testing.assert_allclose(gt.to_numpy(x.grad), [0.5], rtol=1e-12)


def _jax_special():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax.scipy.special as jsp

    def exprel(x):       # JAX has no exprel: its Taylor series near 0 (exact derivatives there)
        small = jnp.abs(x) < 1e-3
        safe = jnp.where(small, 1.0, x)
        return jnp.where(small, 1 + x / 2 + x * x / 6 + x ** 3 / 24, jnp.expm1(safe) / safe)
    return jax, {"exprel": (exprel, None), "xlogy": (jsp.xlogy, 2.0), "xlog1py": (jsp.xlog1py, 2.0),
                 "kl_div": (jsp.kl_div, 2.0), "entr": (jsp.entr, None), "cbrt": (jnp.cbrt, None),
                 "sinc": (jnp.sinc, None)}


@pytest.mark.parametrize("name", ["exprel", "xlogy", "xlog1py", "kl_div", "entr", "cbrt", "sinc"])
def test_special_derivatives_at_zero_match_jax(device, name):
    """gt.special at exactly 0, where the fuzzer's inputs never are: first and second derivatives as JAX's."""
    jax, table = _jax_special()
    fj, y = table[name]
    fg = getattr(gt.special, name)
    one = (lambda x: fj(x)) if y is None else (lambda x: fj(x, y))
    gone = (lambda t: fg(t)) if y is None else (lambda t: fg(t, gt.asarray(y, device=device)))
    d1, d2 = float(jax.grad(one)(0.0)), float(jax.grad(jax.grad(one))(0.0))
    x = gt.asarray(0.0, device=device)
    np.testing.assert_allclose(float(gt.grad(gone)(x)), d1, rtol=1e-12)
    if math.isfinite(d1) and math.isfinite(d2):
        np.testing.assert_allclose(float(gt.grad(gt.grad(gone))(x)), d2, rtol=1e-10)


def test_logaddexp_second_derivative_where_torch_overflows(device):
    """Found by the fuzzer (seed 53008377, strict): torch's double backward of logaddexp(exp(x), 1) is NaN at
    x = 7 (it overflows); gradtape's Hessian and both HVP routes agree with JAX."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    xs = np.array([[[0.5, -7.0]], [[0.5, 7.0]]])
    one = np.array([[1.0]])

    def f(a):
        return gt.sum(gt.logaddexp(gt.exp(a), gt.asarray(one, device=device)))
    want = np.asarray(jax.hessian(lambda a: jnp.sum(jnp.logaddexp(jnp.exp(a), one)))(jnp.asarray(xs)))
    x = gt.asarray(xs, device=device)
    np.testing.assert_allclose(gt.to_numpy(gt.hessian(f)(x)), want, rtol=1e-12)
    v = np.linspace(-1.0, 1.0, 4).reshape(xs.shape)
    np.testing.assert_allclose(gt.to_numpy(gt.hvp(f, x, gt.asarray(v, device=device))),
                               np.tensordot(want, v, axes=3), rtol=1e-12)
    xg = gt.asarray(xs, device=device).requires_grad_()
    (g,) = gt.autograd.grad(f(xg), [xg], create_graph=True)
    gt.sum(g * gt.asarray(v, device=device)).backward()
    np.testing.assert_allclose(gt.to_numpy(xg.grad), np.tensordot(want, v, axes=3), rtol=1e-12)
