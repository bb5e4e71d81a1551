"""Differential fuzzing of gt.vmap (issue 11): random programs of the op table mapped over random batches
with random in_axes/out_axes, compared with a per-example gradtape loop and with jax.vmap in float64
(tests/difftest/vmap.py). Replay a seed with ``python -m tests.difftest.vmap --n 1 --seed SEED``.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradtape as gt
from tests.difftest import programs as P

pytest.importorskip("jax")
from tests.difftest import vmap as V   # noqa: E402  (after the skip: the checks need JAX)

GENERAL = list(range(0, 14))
LINALG = list(range(0, 6))
SMALL = list(range(0, 8))


def _run(kind, seeds, checks):
    bad, counts = [], {"ok": 0, "invalid": 0, "mismatch": 0}
    for s in seeds:
        r = V.check(P.generate(s, kind), checks)
        counts[r.status] += 1
        if r.status == "mismatch":
            bad.append(r)
    if bad:
        first = V.shrink(bad[0], budget=60)
        shown = first if first.status == "mismatch" else bad[0]
        others = ", ".join(f"{r.prog.seed} ({r.check.split(':')[0]})" for r in bad[1:10])
        pytest.fail(f"{len(bad)} of {len(seeds)} {kind} programs: gt.vmap differs (replay with python -m "
                    f"tests.difftest.vmap --kind {kind} --n 1 --seed SEED --checks {','.join(checks)})\n"
                    f"other seeds: {others or '-'}\n\n{shown.report()}", pytrace=False)
    # a generator whose programs are all refused would test nothing
    assert counts["ok"] >= 0.7 * len(seeds), counts
    return counts


@pytest.mark.parametrize("half", [0, 1])
def test_vmap_grad_of_vmap_vmap_of_grad_and_of_jvp_of_random_programs(half):
    _run("general", GENERAL[half::2], tuple(c for c in V.CHECKS if c != "jacobian"))


def test_vmap_of_random_linalg_programs():
    _run("linalg", LINALG, ("forward", "grad", "vmap_grad"))


def test_jacobian_of_vmap_of_small_random_programs():
    """gt.jacobian(vmap(f)) in both modes against jax.jacrev(jax.vmap(f)) (the generator's small programs)."""
    _run("jacobian", SMALL, ("forward", "jacobian"))


def test_the_comparison_catches_a_wrong_vmap(monkeypatch):
    """A vmap whose outputs are off by 1e-4 (relative) must be reported, against the loop first."""
    real = gt.vmap

    def off(f, *a, **k):
        g = real(f, *a, **k)
        return lambda *x: tuple(o * (1 + 1e-4) for o in g(*x))       # the programs return tuples
    monkeypatch.setattr(gt, "vmap", off)
    r = V.check(P.generate(3, "general"), ("forward",))
    assert r.status == "mismatch" and r.check.startswith("forward vs the per-example loop"), r.report()


def test_the_jax_translation_covers_the_drawn_programs():
    """Every drawn program that gradtape accepts also runs on JAX (the JAX_EXTRA table fills the gaps)."""
    import jax
    J = V.R.lib("jax")
    missing = []
    for kind, n in (("general", 60), ("linalg", 20)):
        for s in range(n):
            prog, c = V.prepare(P.generate(s, kind))
            if isinstance(c, str):
                continue
            try:
                jax.eval_shape(lambda *a: V.jrun(prog, J, list(a)), *[J.jnp.asarray(a) for a in prog.arrays()])
            except Exception as e:
                missing.append((kind, s, sorted({i.op for i in prog.instrs}), f"{type(e).__name__}: {e}"[:200]))
    assert not missing, missing


def test_dropping_an_input_keeps_the_others_axes_and_values():
    """The shrinker drops inputs and ops: each remaining input keeps its axis and examples (drawn by name)."""
    for seed in range(40):
        prog = P.generate(seed, "general")
        if len(prog.inputs) < 2:
            continue
        _, c = V.prepare(prog)
        if isinstance(c, str):
            continue
        first = next(iter(prog.inputs))
        fewer = prog.copy(inputs={k: v for k, v in prog.inputs.items() if k != first},
                          instrs=[], outputs=[])
        c2 = V.case(fewer, [])
        for name, ax, b in zip(list(prog.inputs)[1:], c.in_axes[1:], c.batched[1:]):
            j = list(fewer.inputs).index(name)
            if any(a is not None for a in c.in_axes[1:]):
                assert c2.in_axes[j] == ax, (seed, name)
                np.testing.assert_array_equal(c2.batched[j], b)
        return
    pytest.fail("no program with two inputs among the first 40 seeds")


# ---- regressions found by the fuzzer ------------------------------------------------------------------------

def test_nested_vmap_setitem_of_a_value_batched_by_the_outer_level_only():
    def f(x, v):
        y = x * 1.0
        y[0] = v
        return y
    X = np.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)      # outer 2, inner 3, one example (2, 2)
    Vv = -np.arange(1.0, 5.0).reshape(2, 2)                 # outer 2, one example (2,): shared by the inner batch
    out = gt.vmap(lambda x, v: gt.vmap(f, in_axes=(0, None))(x, v))(gt.asarray(X), gt.asarray(Vv))
    want = X.copy()
    want[:, :, 0, :] = Vv[:, None, :]
    np.testing.assert_array_equal(gt.to_numpy(out), want)


def test_forward_jacobian_of_vmap_setitem_of_an_unmapped_value():
    def f(x, v):
        y = x * 1.0
        y[:] = v
        return y
    X, v = gt.asarray(np.arange(5.0).reshape(5, 1)), gt.asarray(2.0)
    vf = gt.vmap(f, in_axes=(0, None))
    jx, jv = gt.jacobian(vf, argnums=(0, 1), mode="forward")(X, v)
    rx, rv = gt.jacobian(vf, argnums=(0, 1), mode="reverse")(X, v)
    np.testing.assert_array_equal(gt.to_numpy(jx), gt.to_numpy(rx))        # zeros: x is overwritten
    np.testing.assert_array_equal(gt.to_numpy(jv), np.ones((5, 1)))


def test_the_case_is_a_function_of_the_program():
    prog = P.generate(5, "general")
    (_, c1), (_, c2) = V.prepare(prog), V.prepare(prog)
    assert (c1.B, c1.in_axes, c1.out_axes, c1.as_dict) == (c2.B, c2.in_axes, c2.out_axes, c2.as_dict)
    for a, b in zip(c1.batched, c2.batched):
        np.testing.assert_array_equal(a, b)
    assert any(ax is not None for ax in c1.in_axes)
    for ex, ax, a in zip(c1.examples, c1.in_axes, c1.batched):
        if ax is not None:
            np.testing.assert_array_equal(np.take(a, 0, axis=ax), ex[0])


def test_fuzzer_seeds_70072_and_70088_setitem_of_a_lower_rank_value():
    """Campaign seeds 70072 (nested) and 70088 (jacobian): a value of lower rank than the written region, batched
    at another level than the array, is aligned with the region's last axes."""
    def f(x, v):
        y = x * 1.0
        y[-1] = v
        return y
    X = np.arange(2 * 3 * 4 * 2.0).reshape(2, 3, 4, 2)
    Vv = -np.arange(1.0, 5.0).reshape(2, 2)
    out = gt.vmap(lambda x, v: gt.vmap(f, in_axes=(0, None))(x, v))(gt.asarray(X), gt.asarray(Vv))
    want = X.copy()
    want[:, :, -1] = Vv[:, None, :]
    np.testing.assert_array_equal(gt.to_numpy(out), want)
    x, v = gt.asarray(np.ones((3, 4, 2))), gt.asarray(np.arange(2.0))
    vf = gt.vmap(f, in_axes=(0, None))
    jf = gt.jacobian(vf, argnums=(0, 1), mode="forward")(x, v)
    jr = gt.jacobian(vf, argnums=(0, 1), mode="reverse")(x, v)
    for a, b in zip(jf, jr):
        np.testing.assert_array_equal(gt.to_numpy(a), gt.to_numpy(b))
