"""Differential fuzzing of pytree arguments (tests/difftest/pytrees.py): random programs whose inputs travel as
one random pytree (dicts with unsorted keys, lists, tuples, a namedtuple, None), differentiated with gt.grad and
gt.jvp, against jax.grad and gradtape's flat gradient. ``python -m tests.difftest.pytrees --n N --seed S`` runs
more."""
import collections

import numpy as np
import pytest

import gradtape as gt
from tests.difftest import programs as P
from tests.difftest import pytrees as T

SEEDS = {"general": range(24), "jacobian": range(8)}


@pytest.mark.parametrize("kind", list(SEEDS))
def test_pytree_programs_match(kind):
    pytest.importorskip("jax")
    counts = collections.Counter()
    bad = []
    for s in SEEDS[kind]:
        r = T.check(P.generate(s, kind))
        counts[r.status] += 1
        if r.status == "mismatch":
            bad.append(r)
    assert not bad, bad[0].report()
    assert counts["ok"] >= 0.7 * len(SEEDS[kind]), counts


def test_skeletons_are_varied_and_hold_every_input_once():
    kinds = collections.Counter()
    for s in range(40):
        names = [f"x{i}" for i in range(1 + s % 5)]
        skel = T.skeleton(names, np.random.default_rng([s, 29]))
        assert sorted(gt.tree.leaves(skel)) == names
        pairs, _ = gt.tree.flatten_with_path(skel)
        kinds.update("dict" if "['" in gt.tree.keystr(p) else "attr" if "." in gt.tree.keystr(p) else
                     "seq" if gt.tree.keystr(p) else "bare" for p, _ in pairs)
    assert min(kinds["dict"], kinds["attr"], kinds["seq"], kinds["bare"]) > 0, kinds


def test_seed_123117_where_condition_in_the_jax_reference():
    """Campaign seed 123117: the JAX reference translated gt.where(x > 0, a, b) as jnp.where(x, a, b); the
    reference now uses the vmap fuzzer's JAX translations, and the program agrees."""
    prog = P.generate(123117, "general")
    res = T.check(prog)
    assert res.status == "ok", res
