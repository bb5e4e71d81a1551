"""``python -m benchmarks.consumers`` (issue 12 part 6): its pytest plugin injects gradtape into SciPy's ``xp``
fixture and scikit-learn's namespace parametrization, beside array_api_strict. A tiny selection of each suite
runs here (the full run takes tens of minutes and is not part of CI)."""
import pytest

from benchmarks import consumers
from benchmarks.consumer_plugin import backend_of

pytest.importorskip("array_api_strict", reason="the reference backend of the run")


def _check(row, at_least):
    assert row["note"] is None, row
    c = row["counts"]
    assert c["gradtape"]["tests"] >= at_least and c["array_api_strict"]["tests"] >= at_least, (c, row.get("tail"))
    assert c["gradtape"]["failed"] == 0 and row["only_gradtape_failed"] == [], (row["only_gradtape_failed"],
                                                                             row.get("tail"))


def test_backend_of_reads_the_parameter_id():
    assert backend_of("a/test_x.py::T::test_y[float64-gradtape]") == "gradtape"
    assert backend_of("a/test_x.py::test_y[array_api_strict-CPU_DEVICE-float64]") == "array_api_strict"
    assert backend_of("a/test_x.py::test_y[numpy]") is None and backend_of("a/test_x.py::test_y") is None


def test_scipy_xp_fixture_runs_gradtape():
    pytest.importorskip("scipy")
    paths, why = consumers.suite_paths("scipy.special", "test_logsumexp")
    if paths is None:
        pytest.skip(f"SciPy's tests: {why}")
    row = consumers.run_suite("scipy.special", only="test_logsumexp", select="test_logsumexp_sign", timeout=300)
    _check(row, 2)


def test_sklearn_namespaces_run_gradtape():
    pytest.importorskip("sklearn")
    paths, why = consumers.suite_paths("sklearn", "utils/tests/test_array_api")
    if paths is None:
        pytest.skip(f"scikit-learn's tests: {why}")
    row = consumers.run_suite("sklearn", only="utils/tests/test_array_api", select="test_ravel", timeout=300)
    _check(row, 2)      # gradtape float64 and float32, strict's two devices


def test_table_has_a_row_per_suite():
    rows = [{"suite": "scipy.x", "note": "tests not installed"},
            {"suite": "sklearn", "note": None, "seconds": 3.0, "only_gradtape_failed": [("t[gradtape]", "boom")],
             "counts": {"gradtape": {"tests": 5, "failed": 1, "skipped": 0},
                        "array_api_strict": {"tests": 5, "failed": 0, "skipped": 2}}}]
    text = consumers.table(rows)
    assert "| scipy.x | tests not installed |" in text and "| sklearn | 5 / 5 | 1 | 0 | 0 / 2 | 3 |" in text
    assert "`t[gradtape]`: boom" in consumers.details(rows)
