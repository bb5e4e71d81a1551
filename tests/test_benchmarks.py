"""The benchmark suite's quick mode: every installed implementation agrees with the hand-written gradients."""
import json
import os

import pytest

pytest.importorskip("matplotlib", reason="the suite's chart needs matplotlib (the `examples` extra)")


def test_suite_quick_mode(tmp_path):
    from benchmarks import suite
    # chain1e6 is the chain case on more elements (same code, 30 s more): left to `python -m benchmarks --quick`
    rc = suite.main(["--quick", "--cases", "chain16,mlp,hessian", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "suite.json").read_text())
    assert rc == 0, {k: c["wrong"] for k, c in res["cases"].items()}
    for key in ("chain16", "mlp", "hessian"):
        case = res["cases"][key]
        assert not case["wrong"]
        assert {suite.HAND, suite.GT} <= set(case["impls"])
        assert all(r["median"] > 0 and r["ratio"] > 0 for r in case["impls"].values())
    assert suite.GT_NN in res["cases"]["mlp"]["impls"]
    md = (tmp_path / "suite.md").read_text()
    assert "| case |" in md and "BLAS" in md and "threads" in md
    assert (tmp_path / "suite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(tmp_path / "suite.png") > 1000
