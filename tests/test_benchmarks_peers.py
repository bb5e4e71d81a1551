"""The foundation benchmark never aborts on a peer: a peer's failed check marks its cell, the run exits 0;
only gradtape disagreeing with hand-written NumPy exits 1 (issue 14, part 3)."""
import numpy as np
import pytest

from benchmarks import foundation as F


def _rows(out):
    return {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| (")}


def _wrong(make, factor=1.01):
    """``make``'s implementation with every gradient multiplied by ``factor``."""
    def wrapped(*args, **kw):
        step = make(*args, **kw)

        def run():
            loss, g = step()
            return loss, [x * factor for x in g] if isinstance(g, list) else g * factor
        return run
    return wrapped


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(F, "N_LARGE", 1000)       # case (b) on 1,000 elements: the same code, seconds faster


# ---- the tolerance ------------------------------------------------------------------------------------------

def test_float32_tolerance_follows_the_reduction_length():
    # the PyTorch MLP gradient of W1 on an AMD EPYC: max |diff| 4.35e-05 at scale 0.0205
    ref = np.full((784, 1024), 0.0205, np.float32)
    got = ref.copy()
    got[0, 0] += np.float32(4.35e-5)
    assert F.check_close("W1", got, ref, F.MLP_K) is None
    assert F.tolerance(ref, F.MLP_K) == pytest.approx(F.TOL_C * F.MLP_K * np.finfo(np.float32).eps * 0.0205)
    assert F.tolerance(ref, 2 * F.MLP_K) == pytest.approx(2 * F.tolerance(ref, F.MLP_K))
    msg = F.check_close("W1", ref * np.float32(1.01), ref, F.MLP_K)    # a 1% error is a wrong gradient
    assert msg is not None and msg.startswith("W1: max|diff| 0.0002")
    assert F.check_close("W1", ref.astype(np.float64), ref, F.MLP_K).startswith("W1: (784, 1024) float64")
    nan = ref.copy()
    nan[3, 3] = np.nan
    assert F.check_close("W1", nan, ref, F.MLP_K) is not None
    # float64 uses float64's eps: the same relative error is far outside it
    r64 = ref.astype(np.float64)
    assert F.check_close("W1", r64 + 4.35e-5 * (r64 == r64[0, 0]), r64, F.MLP_K) is not None
    assert F.MLP_K == 784 + 1024 + 1024 + 10 + 10 + 1024 + 256


def test_the_hand_written_float64_step_passes_the_float32_check():
    """Measured: hand-written float32 against the same step in float64 (the exact answer, nearly) passes."""
    params, x, y = F.mlp_data()
    ref = F.make_mlp_numpy(params, x, y)()
    loss64, g64 = F.make_mlp_numpy([p.astype(np.float64) for p in params], x.astype(np.float64), y)()
    got = (np.float32(loss64), [g.astype(np.float32) for g in g64])
    assert F.mlp_compare("f64", got, ref) is None
    assert F.mlp_compare("f64", (got[0], [g * np.float32(1.01) for g in got[1]]), ref).startswith(
        "gradient of W1: max|diff|")


# ---- --systems / --skip -------------------------------------------------------------------------------------

def test_choose_peers():
    assert F.choose_peers(None, None) == ["torch", "jax"]
    assert F.choose_peers("jax,torch", None) == ["torch", "jax"]
    assert F.choose_peers("PyTorch", None) == ["torch"]
    assert F.choose_peers(None, "torch") == ["jax"]
    assert F.choose_peers("torch,jax", "jax") == ["torch"]
    assert F.choose_peers("gradtape,numpy", None) == []
    with pytest.raises(SystemExit, match="unknown system.*tensorflow"):
        F.choose_peers("torch,tensorflow", None)
    with pytest.raises(SystemExit, match="always run"):
        F.choose_peers(None, "gradtape")


def test_skip_every_peer_runs_gradtape_alone(small, capsys):
    assert F.main(["--quick", "--skip", "torch,jax"]) == 0
    out = capsys.readouterr().out
    assert "| case | hand-written NumPy | gradtape | gradtape/NumPy | target | pass |" in out
    assert "PyTorch |" not in out and "none (--systems/--skip)" in out
    assert len(_rows(out)) == 7


# ---- a wrong peer marks its cell, a wrong gradtape exits 1 ------------------------------------------------

def test_wrong_peer_marks_its_cell_and_the_run_exits_0(small, monkeypatch, capsys, tmp_path):
    pytest.importorskip("torch")
    monkeypatch.setitem(F.PEER_MAKERS, "torch", {**F.PEER_MAKERS["torch"],
                                                 "mlp": _wrong(F.PEER_MAKERS["torch"]["mlp"])})
    path = tmp_path / "r.json"
    assert F.main(["--quick", "--systems", "torch", "--json", str(path)]) == 0
    cap = capsys.readouterr()
    rows = _rows(cap.out)
    assert "| PyTorch | torch/NumPy |" in cap.out and "JAX" not in cap.out.split("| case |")[1]
    c = rows["(c) MLP 784-1024-1024-10 step, b=256 f32, in place"]
    assert "FAILED check: gradient of W1: max|diff| 0.0002" in c
    assert "FAILED check" in cap.err                              # said while running, too
    # gradtape's rows are all there, timed; torch's chain rows are timed (only its MLP is wrong)
    assert len(rows) == 7
    for label, line in rows.items():
        cells = line.strip("| \n").split(" | ")
        assert cells[2].endswith(("us", "ms", "MiB")) and cells[3].endswith(("x", "x)")), line
    for label in ("(a) 200-op chain, 16 f64, fwd+bwd per op", "(b) 200-op chain, 1e3 f64, fwd+bwd"):
        assert "FAILED" not in rows[label] and "x (min" in rows[label].split(" | ")[5], rows[label]
    import json
    res = json.loads(path.read_text())
    assert res["cases"]["c"]["peers"]["torch"]["failed"].startswith("FAILED check: gradient of W1")
    assert res["cases"]["a"]["peers"]["torch"]["median"] > 0 and res["gradtape_wrong"] is None


def test_peer_that_raises_is_marked(small, monkeypatch, capsys):
    pytest.importorskip("torch")

    def broken(*args):
        raise RuntimeError("no such kernel")
    monkeypatch.setitem(F.PEER_MAKERS, "torch", {**F.PEER_MAKERS["torch"], "chain": broken})
    assert F.main(["--quick", "--systems", "torch"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert "FAILED setup: RuntimeError: no such kernel" in rows["(a) 200-op chain, 16 f64, fwd+bwd per op"]
    assert "FAILED" not in rows["(c) MLP 784-1024-1024-10 step, b=256 f32, in place"]


def test_wrong_gradtape_exits_1_with_the_table_so_far(small, monkeypatch, capsys):
    monkeypatch.setattr(F, "make_mlp_gradtape", _wrong(F.make_mlp_gradtape))
    assert F.main(["--quick", "--skip", "torch,jax"]) == 1
    cap = capsys.readouterr()
    assert "MLP: gradtape disagrees with hand-written NumPy: gradient of W1: max|diff|" in cap.err
    assert "bug in gradtape" in cap.err
    rows = _rows(cap.out)
    assert list(rows) == ["(a) 200-op chain, 16 f64, fwd+bwd per op", "(b) 200-op chain, 1e3 f64, fwd+bwd"]


def test_wrong_gradtape_chain_exits_1(small, monkeypatch, capsys):
    monkeypatch.setattr(F, "make_chain_gradtape", _wrong(F.make_chain_gradtape, 1.0 + 1e-9))
    assert F.main(["--quick", "--skip", "torch,jax"]) == 1
    cap = capsys.readouterr()
    assert "chain n=16: gradtape disagrees with hand-written NumPy: gradient: max|diff|" in cap.err
    assert "| case |" in cap.out and not _rows(cap.out)


# ---- the suite and the matrix-calculus benchmark: the same rule ----------------------------------------------

def test_suite_marks_a_wrong_peer_and_exits_0(monkeypatch, capsys, tmp_path):
    pytest.importorskip("torch")
    from benchmarks import suite
    monkeypatch.setattr(F, "make_mlp_torch", _wrong(F.make_mlp_torch))
    rc = suite.main(["--quick", "--in-process", "--cases", "mlp", "--systems", "torch", "--no-chart",
                     "--out", str(tmp_path)])
    cap = capsys.readouterr()
    assert rc == 0
    import json
    case = json.loads((tmp_path / "suite.json").read_text())["cases"]["mlp"]
    assert set(case["wrong"]) == {suite.TORCH} and suite.TORCH not in case["impls"]
    assert {suite.HAND, suite.GT, suite.GT_NN} <= set(case["impls"])
    assert case["notes"][suite.JAX] == "skipped (--systems/--skip)"
    row = [line for line in cap.out.splitlines() if line.startswith("| MLP")][0]
    assert "FAILED check: gradient of W1: max|diff| 0.0002" in row
    assert "peers that failed their check" in cap.err


def test_suite_exits_1_when_gradtape_is_wrong(monkeypatch, capsys, tmp_path):
    from benchmarks import suite
    monkeypatch.setattr(F, "make_mlp_gradtape", _wrong(F.make_mlp_gradtape))
    rc = suite.main(["--quick", "--in-process", "--cases", "mlp", "--systems", "numpy", "--no-chart",
                     "--out", str(tmp_path)])
    assert rc == 1
    assert "ERROR: gradtape disagrees" in capsys.readouterr().err


def test_suite_choose_peers():
    from benchmarks import suite
    assert suite.choose_peers(None, None) is None
    assert suite.choose_peers("torch,JAX", None) == ["jax", "torch"]
    assert suite.choose_peers(None, "mygrad,autograd") == ["jax", "torch"]
    with pytest.raises(SystemExit, match="unknown peer"):
        suite.choose_peers("theano", None)


def test_matrix_calculus_marks_a_wrong_peer():
    from benchmarks import matrix_calculus as M
    want = np.eye(3)
    fns = {"gradtape gt.hessian": lambda: want.copy(), "torch.func.hessian": lambda: want * 1.01,
           "broken peer": lambda: 1 / 0}
    failed = M._check(fns, want, "Hessian", 1e-10, 1e-10)
    assert list(fns) == ["gradtape gt.hessian"]
    assert failed["torch.func.hessian"].startswith("FAILED check: max|diff| 0.01 > tol")
    assert failed["broken peer"] == "FAILED check: ZeroDivisionError: division by zero"
    assert "| torch.func.hessian | FAILED check" in "\n".join(M._rows({}, failed))
    with pytest.raises(SystemExit, match="gradtape gt.hessian differs from the closed form: max.diff. 0.01"):
        M._check({"gradtape gt.hessian": lambda: want * 1.01}, want, "Hessian", 1e-10, 1e-10)
