"""benchmarks/array_api_tests.py on a stand-in suite (the real one is not on PyPI): the same settings reach both
namespaces and the report lists exactly the tests that fail on gradtape and pass on the reference."""
import textwrap

import pytest

pytest.importorskip("hypothesis")

from benchmarks import array_api_tests as A  # noqa: E402

CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--max-examples", type=int)
    parser.addoption("--disable-deadline", action="store_true")
"""
TESTS = """
import os
MOD = os.environ["ARRAY_API_TESTS_MODULE"]

def test_both_pass():
    assert os.environ["ARRAY_API_TESTS_VERSION"] == "2024.12"

def test_only_gradtape_fails():
    assert MOD != "gradtape"

def test_only_reference_fails():
    assert MOD == "gradtape"

def test_both_fail():
    assert False
"""


def _suite(tmp_path):
    (tmp_path / "array_api_tests").mkdir()
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "array_api_tests" / "test_x.py").write_text(textwrap.dedent(TESTS))
    return str(tmp_path)


def test_report_lists_gradtape_only_failures(tmp_path, capsys):
    out = tmp_path / "aat.md"
    rc = A.main([_suite(tmp_path), "--reference", "array_api_strict", "--version", "2024.12", "--out", str(out)])
    text = out.read_text()
    assert rc == 1
    assert "seed 0: 1 failing on gradtape, passing on array_api_strict" in text
    assert "`array_api_tests/test_x.py::test_only_gradtape_fails`" in text
    assert "test_both_fail`" not in text and "test_only_reference_fails`" not in text
    assert "| 0 | gradtape | 2 failed, 2 passed" in text


def test_not_a_checkout_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        A.main([str(tmp_path)])
