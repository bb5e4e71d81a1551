"""A checkout that is not installed fails `import gradtape` with an error saying how to install it."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_uninstalled_checkout_says_pip_install(tmp_path):
    shutil.copytree(ROOT / "gradtape", tmp_path / "gradtape", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "backends", tmp_path / "backends", ignore=shutil.ignore_patterns("__pycache__"))
    # -S: no site-packages, so neither an installed gradtape nor its editable finder is seen (the check runs
    # before anything needs NumPy)
    r = subprocess.run([sys.executable, "-S", "-c", "import gradtape"], cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "", "PYTHONPATH": str(tmp_path), "PYTHONNOUSERSITE": "1"})
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: gradtape is not installed") and "pip install -e ." in last, r.stderr
    assert "circular import" not in r.stderr


def test_installed_package_imports_with_its_backends():
    r = subprocess.run([sys.executable, "-c", "import gradtape, gradtape.backends; print(gradtape.__version__)"],
                       capture_output=True, text=True, cwd=ROOT.parent)
    assert r.returncode == 0 and r.stdout.strip() == __import__("gradtape").__version__, r.stderr


def test_pyproject_lists_every_subpackage():
    """A regular (non-editable) install ships only the packages pyproject lists: every folder of gradtape/
    with an __init__.py must be there, or a wheel would lack it."""
    tomllib = pytest.importorskip("tomllib")      # Python 3.11+ (the package supports 3.10: then tomli)
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    found = {"gradtape" + "".join("." + p for p in d.relative_to(ROOT / "gradtape").parts)
             for d in [ROOT / "gradtape", *(ROOT / "gradtape").rglob("*")]
             if d.is_dir() and (d / "__init__.py").exists() and "__pycache__" not in d.parts}
    assert found <= listed, sorted(found - listed)
    assert "gradtape.backends" in listed and conf["package-dir"]["gradtape.backends"] == "backends"
