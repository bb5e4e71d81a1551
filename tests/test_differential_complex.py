"""Differential fuzzing of complex programs and gt.fft against torch (tests/difftest/complex.py): fixed seeds, the
value, the gradient w.r.t. every input (PyTorch's convention) and the JVP. Replay a seed with
``python -m tests.difftest.complex --n 1 --seed SEED``.
"""
from __future__ import annotations

import warnings

import pytest

from gradtape._ops import elementwise as ew
from tests.difftest import complex as C

torch = pytest.importorskip("torch")

SEEDS = range(0, 60)


def _mismatches(seeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)      # NumPy's ComplexWarning of a real input's cotangent
        return [r for r in (C.check(C.generate(s), torch) for s in seeds) if r.status != "ok"]


def test_fixed_seeds_match_torch():
    bad = _mismatches(SEEDS)
    assert not bad, "mismatches (replay: python -m tests.difftest.complex --n 1 --seed S): " + "; ".join(
        f"seed {r.seed}: {r.detail}" for r in bad[:5])


def test_programs_use_every_op():
    seen = {name for s in SEEDS for name, _ in C.generate(s).steps}
    never = sorted((set(C.UNARY) | set(C.BINARY)) - seen)
    assert not never, f"ops the generator never draws: {never}"


def test_a_wrong_complex_rule_is_caught():
    """conj's VJP replaced by the identity (right on real tensors, wrong on complex ones): the fuzzer finds it."""
    rule = ew.conj_c.vjp
    ew.conj_c.vjp = (lambda xp, ct, out, x: ct,)
    try:
        assert _mismatches(range(0, 20))
    finally:
        ew.conj_c.vjp = rule
