"""The package version and the array API standard version it implements; and the check that this is an
installed gradtape: the backends live in the top-level folder ``backends/``, which pyproject installs as
``gradtape.backends``, so a checkout imported without installing it has no ``gradtape.backends``."""
from __future__ import annotations

import importlib.util

__version__ = "0.1.0"
__array_api_version__ = "2024.12"

if importlib.util.find_spec(__name__.rpartition(".")[0] + ".backends") is None:
    raise ImportError("gradtape is not installed: this checkout has no gradtape.backends (the top-level folder "
                      "backends/ is installed under that name). Install it from the checkout's root with "
                      "`pip install -e .` (or `pip install -e \".[test]\"` for the tests), then import again.")
