"""The core (gradtape/) reaches arrays only through a backend's xp: it never imports NumPy or CuPy."""
import pathlib
import re

PATTERN = re.compile(r"^\s*(import|from)\s+(numpy|cupy)\b", re.M)


def test_core_never_imports_numpy_or_cupy():
    root = pathlib.Path(__file__).resolve().parent.parent / "gradtape"
    hits = [f"{p.name}: {m.group(0).strip()}" for p in sorted(root.glob("*.py"))
            for m in PATTERN.finditer(p.read_text())]
    assert not hits, hits
