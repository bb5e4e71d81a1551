"""Differential fuzzing of views and in-place writes against PyTorch float64 (tests/difftest/inplace.py).

Fixed seeds run in CI; ``python -m tests.difftest.inplace --n N --seed S`` runs N fresh programs and prints
each mismatch as a program listing.
"""
from __future__ import annotations

import pytest

N, CHUNK = 1600, 400


@pytest.mark.parametrize("device, lo", [("cpu", lo) for lo in range(0, N, CHUNK)] + [("strict", 10 ** 6)])
def test_views_and_inplace_programs_match_torch(device, lo):
    pytest.importorskip("torch")
    if device == "strict":
        pytest.importorskip("array_api_strict")
    from tests.difftest import inplace as I
    results = [I.run(s, device=device) for s in range(lo, lo + CHUNK)]
    bad = [r for r in results if r.status == "mismatch"]
    assert not bad, f"{len(bad)} of {CHUNK} programs differ from torch\n\n{bad[0].report()}"
    ok = sum(r.status == "ok" for r in results)
    assert ok >= 0.6 * CHUNK, f"only {ok} of {CHUNK} programs ran a backward both libraries accept"


def test_the_fuzzer_finds_a_wrong_write():
    """The oracle is able to fail: a program whose gradtape write is made wrong on purpose is caught."""
    pytest.importorskip("torch")
    from tests.difftest import inplace as I
    orig = I._write

    def wrong(a, k, op, v):
        orig(a, k, op, v)
        if type(a).__module__.startswith("gradtape") and a.size:
            a[(0,) * a.ndim] = 123.0
    I._write = wrong
    try:
        statuses = {I.run(s).status for s in range(40)}
    finally:
        I._write = orig
    assert "mismatch" in statuses
