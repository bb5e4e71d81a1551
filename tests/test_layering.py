"""The package's layers, checked by parsing its source (issue 10; the rules and the layer map are in
tools/import_report.py, which prints the same findings: ``python tools/import_report.py``).

backends <- {_state, _tree, _axes} <- _core <- _ops <- _api <- _autodiff <- {graph, nn, optim, ...} <- __init__:
a module imports only its own layer or lower ones, at the top of the file, without cycles.
"""
import importlib.util
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("import_report", ROOT / "tools" / "import_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_report", mod)  # dataclasses looks its module up by name
    spec.loader.exec_module(mod)
    return mod


R = _load()


def _lines(rows):
    return "\n" + "\n".join(f"{f}:{line}: {msg}" for f, line, msg in rows)


def test_every_module_has_a_layer():
    """Every file of gradtape/ and backends/ is in a layer of R.LAYERS, so a new file is placed deliberately.
    Fails e.g. for a new gradtape/_helpers.py (first component '_helpers' is in no layer)."""
    rows = R.unmapped_modules()
    assert not rows, _lines(rows)


def test_imports_resolve():
    """Every import of a gradtape module names a file (or folder) of the tree. Fails e.g. for
    ``from ._namespace import asarray`` left in gradtape/nn/module.py after _namespace moved to _api/."""
    rows = R.unresolved_imports()
    assert not rows, _lines(rows)


def test_import_direction():
    """No module imports a higher layer, top-level or inside a function. Fails e.g. for
    ``from .._api.namespace import asarray`` inside a function of gradtape/_core/dispatch.py (layer 2 -> 4)."""
    rows = R.upward_imports()
    assert not rows, _lines(rows)


def test_no_import_cycles():
    """The import graph of gradtape's modules (top-level and local imports) has no cycle. A package __init__
    importing its submodules is an edge like any other; a submodule importing a name its package's __init__
    defines is an edge back to that __init__. Fails e.g. for gradtape/graph/symbolic.py doing
    ``from ..graph import render_dot`` while gradtape/graph/__init__.py imports symbolic."""
    rows = R.cycles()
    assert not rows, _lines(rows)


def test_no_local_imports_of_gradtape_modules():
    """No import of a gradtape module inside a function (lazy imports of optional third-party packages such as
    cupy or matplotlib are fine). Fails e.g. for ``def f(): from .._core.dispatch import wrap``."""
    rows = R.local_gradtape_imports()
    assert not rows, _lines(rows)


def test_package_never_imports_itself():
    """No module imports the package ``gradtape`` itself (``import gradtape``, ``from gradtape import x``,
    ``from .. import x`` with x defined in gradtape/__init__.py, ``__import__("gradtape")``), except
    gradtape/__main__.py and gradtape/lecture.py. Fails e.g. for ``import gradtape as _gt`` in
    gradtape/special.py."""
    rows = R.self_imports()
    assert not rows, _lines(rows)


def test_no_mutation_at_import():
    """Nothing under gradtape/ attaches to Tensor from outside its class or writes module globals:
    ``setattr(Tensor, k, v)``, ``Tensor.shape = property(...)``, ``globals()[name] = f``,
    ``globals().update(d)``, ``vars()[name] = f``. Fails e.g. for ``globals()[_n] = _nondiff(_n)``."""
    rows = R.mutations()
    assert not rows, _lines(rows)


def test_module_size():
    """No .py file of gradtape/ or backends/ over 500 lines unless its module docstring has a line starting
    with "Size:" that says why. Fails e.g. for an 883-line gradtape/_api/namespace.py without one."""
    rows = R.oversize_modules()
    assert not rows, _lines(rows)


def test_init_has_no_definitions():
    """gradtape/__init__.py only re-exports: no def, class, lambda, for/while loop or comprehension, and it
    assigns __all__. Fails e.g. for ``for _n in _ELEMENTWISE1: globals()[_n] = ...`` or a missing __all__."""
    rows = R.init_definitions()
    assert not rows, _lines(rows)


PATTERN = re.compile(r"^\s*(import|from)\s+(numpy|cupy)\b", re.M)


def test_core_never_imports_numpy_or_cupy():
    """gradtape/ (every subfolder) reaches arrays only through a backend's xp: it never imports NumPy or CuPy,
    at the top or inside a function (only backends/ does). Fails e.g. for ``import numpy as np`` inside a
    function of gradtape/graph/io.py."""
    root = ROOT / "gradtape"
    hits = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}" for p in sorted(root.rglob("*.py"))
            for m in PATTERN.finditer(p.read_text())]
    hits += [f"{f}:{line}: {msg}" for f, line, msg in R.array_lib_imports()]
    assert not hits, hits


# ------------------------------------------------------------------- the detectors, on a made-up tree


def _tree(tmp_path, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_parser_resolves_relative_and_local_imports(tmp_path):
    """The parser finds imports at every depth, resolves relative levels, tells a submodule from a name."""
    root = _tree(tmp_path, {
        "gradtape/__init__.py": "X = 1\n",
        "gradtape/_core/__init__.py": "",
        "gradtape/_core/tensor.py": (
            "from . import primitive\n"           # a submodule
            "from . import NAME\n"                 # a name of gradtape/_core/__init__.py
            "from .. import X\n"                   # a name of the top package
            "from ..backends import numpy_backend\n"
            "import gradtape._ops.shape\n"
            "try:\n    import cupy\nexcept ImportError:\n    cupy = None\n"
            "class C:\n    import math\n"
            "    def m(self):\n        from .._api import rules\n"),
        "gradtape/_core/primitive.py": "",
        "gradtape/_ops/shape.py": "",
        "gradtape/_api/rules.py": "",
        "backends/__init__.py": "",
        "backends/numpy_backend.py": "from . import Backend\n",
    })
    got = {(i.src, i.target, i.scope, i.guarded, i.kind) for i in R.all_imports(root)}
    t = "gradtape._core.tensor"
    assert got == {
        (t, "gradtape._core.primitive", "module", False, "gradtape"),
        (t, "gradtape._core", "module", False, "gradtape"),
        (t, "gradtape", "module", False, "gradtape"),
        (t, "gradtape.backends.numpy_backend", "module", False, "gradtape"),
        (t, "gradtape._ops.shape", "module", False, "gradtape"),
        (t, "cupy", "module", True, "third-party"),
        (t, "math", "class", False, "stdlib"),
        (t, "gradtape._api.rules", "function", False, "gradtape"),
        ("gradtape.backends.numpy_backend", "gradtape.backends", "module", False, "gradtape"),
    }, got
    assert {m for m in R.source_files(root)} >= {"gradtape", "gradtape._core", "gradtape.backends"}


def test_detectors_find_each_violation(tmp_path):
    """Each rule reports its violation in a small tree and nothing in a clean one."""
    clean = {
        "gradtape/__init__.py": "from ._core.tensor import Tensor\n__all__ = ['Tensor']\n",
        "gradtape/__main__.py": "import gradtape\n",
        "gradtape/_state.py": "from .backends import numpy_backend\n",
        "gradtape/_core/__init__.py": "",
        "gradtape/_core/tensor.py": "from .. import _state\nfrom . import hooks\n"
                                    "def f():\n    import matplotlib\n",
        "gradtape/_core/hooks.py": "API = None\n",
        "gradtape/_api/__init__.py": "from .._core import hooks\nhooks.API = 1\n",
        "gradtape/nn/__init__.py": "from ..graph import Graph\n",
        "gradtape/graph/__init__.py": "Graph = 1\n",
        "backends/__init__.py": "",
        "backends/numpy_backend.py": "import numpy\nfrom . import Backend\n",
    }
    root = _tree(tmp_path / "clean", clean)
    assert R.report(root) == {title: [] for title in R.RULES}, R.format_report(R.report(root))
    bad = dict(clean)
    bad.update({
        "gradtape/_helpers.py": "",                                                     # unmapped
        "gradtape/_state.py": "from ._core import tensor\nfrom ._gone import x\n"     # upward, unresolved
                              "def f():\n    from . import _core\n",                   # local
        "gradtape/graph/__init__.py": "from ..nn import Linear\nimport gradtape\n",   # cycle with nn, self
        "gradtape/_core/tensor.py": "from .. import _state\nclass Tensor: pass\n"
                                    "setattr(Tensor, 'x', 1)\nglobals()['y'] = 2\n"   # mutation
                                    "def g():\n    import numpy\n",                   # numpy in gradtape/
        "backends/big.py": "x = 1\n" * 501,                                           # size
        "gradtape/_api/__init__.py": "from . import gone\n",                         # no such submodule
        "gradtape/__init__.py": "for _ in (): pass\n",                                # loop, no __all__
    })
    root = _tree(tmp_path / "bad", bad)
    found = R.report(root)
    assert all(found[title] for title in R.RULES), {t: len(v) for t, v in found.items()}
    cycles = "\n".join(msg for _, _, msg in R.cycles(root))
    assert "graph -> nn -> graph" in cycles or "nn -> graph -> nn" in cycles, cycles
    assert any("gradtape._api.gone is no module" in msg for _, _, msg in R.unresolved_imports(root))
    assert R.main(["--root", str(root)]) == 1
    assert R.main(["--root", str(tmp_path / "clean")]) == 0
