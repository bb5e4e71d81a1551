"""The examples/ scripts: short runs on every backend, the full linear-regression and MLP runs' results."""
import importlib.util
import os

import pytest

pytest.importorskip("sklearn", reason="the examples need scikit-learn (the `examples` extra)")
pytest.importorskip("matplotlib", reason="the examples need matplotlib (the `examples` extra)")
pytest.importorskip("tqdm", reason="the examples need tqdm (the `examples` extra)")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_linear_regression_recovers_the_parameters(tmp_path):
    out = tmp_path / "lr.png"
    res = load("linear_regression").main(["--quiet", "--out", str(out)])
    assert max(res["w_err"]) < 0.01 and res["b_err"] < 0.01
    assert res["losses"][-1] < res["losses"][0] and _png(out)


@pytest.mark.parametrize("name", ["linear_regression", "softmax_regression", "mlp"])
def test_examples_short_mode(device, name, tmp_path):
    out = tmp_path / f"{name}.png"
    res = load(name).main(["--epochs", "1", "--quiet", "--device", device, "--out", str(out)])
    assert _png(out)
    if name != "linear_regression":
        assert 0.5 < res["test_accuracy"] <= 1.0


def test_mlp_full_run_reaches_accuracy(tmp_path):
    weights = tmp_path / "mlp.npz"
    mod = load("mlp")
    res = mod.main(["--quiet", "--out", str(tmp_path / "mlp.png"), "--save", str(weights)])
    assert res["test_accuracy"] >= 0.95, res["curves"]["accuracy"]["test"]
    # the saved weights reload into a fresh network and give the same predictions
    import gradtape as gt
    fresh = mod.build("cpu").load(str(weights)).eval()
    x = gt.ones((3, 64), dtype=gt.float32)
    assert bool(gt.all(fresh(x) == res["net"].eval()(x)))
