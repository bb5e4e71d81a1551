"""Public functions carry a docstring with a runnable example (the doctests run with the suite)."""
import inspect

import gradtape as gt
from gradtape._autodiff import transforms as _transforms

MODULES = [gt, gt.nn, gt.linalg, _transforms, gt.testing]


def test_every_public_function_has_an_example():
    missing = []
    for mod in MODULES:
        for name in getattr(mod, "__all__", None) or dir(mod):
            obj = getattr(mod, name)
            if name.startswith("_") or not callable(obj) or isinstance(obj, type(gt.float32)):
                continue
            if getattr(obj, "__module__", "") and not str(getattr(obj, "__module__", "")).startswith("gradtape"):
                continue
            if inspect.isclass(obj) and issubclass(obj, Exception):
                continue
            doc = inspect.getdoc(obj) or ""
            if ">>>" not in doc:
                missing.append(f"{mod.__name__}.{name}")
    assert not missing, f"public functions without a runnable example: {missing}"
