"""A checkout that is not installed fails `import gradtape` with an error saying how to install it."""
import pathlib
import shutil
import subprocess
import sys

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
