"""benchmarks/transforms.py's quick mode with tiny sizes: every route is checked, the table is printed, exit 0."""
import json

import numpy as np
import pytest

from benchmarks import transforms as T


def test_transforms_quick_mode(tmp_path, capsys):
    out = tmp_path / "t.json"
    rc = T.main(["--quick", "--batch", "8", "--rows", "8", "--repeats", "1", "--budget", "0.005", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "| case | implementation | time | ratio | target |" in text
    assert "machine:" in text and "CPUs" in text and "threads" in text
    res = json.loads(out.read_text())
    assert res["gradtape_wrong"] is None
    a = next(v for k, v in res["cases"].items() if k.startswith("(a)"))
    for name in ("hand-written NumPy", "gradtape batched gt.grad (mean loss)", "gradtape loop of gt.grad"):
        assert a[name]["median"] > 0, (name, a[name])
    assert "gradtape gt.vmap(gt.grad)" in a          # timed, or marked FAILED with the exception text
    for part in ("forward", "forward + backward"):
        b = next(v for k, v in res["cases"].items() if k.startswith("(b)") and k.endswith(part))
        assert b["gradtape"]["median"] > 0 and b["gradtape vmap"]["ratio"] > 0, b


def test_per_example_numpy_reference_matches_a_finite_difference():
    p, x, y, _ = T.digits_data(3, dtype=np.float64)
    g = T.per_example_numpy(p, x, y)

    def loss(p, i):
        z = np.maximum(x[i] @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
        return np.log(np.sum(np.exp(z - z.max()))) + z.max() - z[y[i]]
    eps = 1e-6
    for k, idx in (("W1", (5, 7)), ("b1", (3,)), ("W2", (10, 2)), ("b2", (4,))):
        q = {n: v.copy() for n, v in p.items()}
        q[k][idx] += eps
        r = {n: v.copy() for n, v in p.items()}
        r[k][idx] -= eps
        for i in range(3):
            fd = (loss(q, i) - loss(r, i)) / (2 * eps)
            assert fd == pytest.approx(g[k][(i,) + idx], rel=1e-5, abs=1e-8), (k, i)


def test_a_wrong_gradtape_route_exits_1(monkeypatch, capsys):
    """gradtape returning wrong numbers is the one failure that makes the run exit 1 (the table still prints)."""
    real = T.make_gt_loop

    def wrong(p, x, y):
        f = real(p, x, y)
        return lambda: {k: v * 1.01 for k, v in f().items()}
    monkeypatch.setattr(T, "make_gt_loop", wrong)
    rc = T.main(["--quick", "--batch", "4", "--cases", "a", "--skip", "torch,jax", "--repeats", "1"])
    captured = capsys.readouterr()
    assert rc == 1 and "| case |" in captured.out and "gradtape loop of gt.grad" in captured.err


def test_a_failing_peer_is_marked_and_the_run_goes_on(monkeypatch, capsys):
    pytest.importorskip("torch")

    def broken(p, x, y):
        raise RuntimeError("no such thing")
    monkeypatch.setattr(T, "make_torch_vmap", broken)
    rc = T.main(["--quick", "--batch", "4", "--cases", "a", "--systems", "torch", "--repeats", "1", "--budget", "0.005"])
    text = capsys.readouterr().out
    assert rc == 0 and "FAILED: RuntimeError: no such thing" in text
