"""pytest plugin: run SciPy's and scikit-learn's own array-API tests with gradtape injected as a backend.

Loaded by ``python -m benchmarks.consumers`` as ``pytest -p benchmarks.consumer_plugin`` (with
``SCIPY_ARRAY_API=1`` in the environment, before SciPy is imported). Environment:

* ``GT_CONSUMER_BACKENDS``: comma-separated namespaces to run (default ``gradtape,array_api_strict``);
* ``GT_CONSUMER_REPORT``: a JSON file to write ``{nodeid: outcome}`` to at the end of the session.

What it replaces:

* **SciPy** (``scipy/conftest.py``): the ``xp`` fixture's parameters (``xp_available_backends``, fixed when the
  conftest is imported) become the chosen namespaces, each ``pytest.param(module, id=name)``; ``"gradtape"`` is
  added to ``xp_known_backends`` so that ``@skip_xp_backends(np_only=True)`` and friends apply to it as to any
  non-NumPy backend; a test that skips numpy, array_api_strict and torch by name ("lazy backends only") skips
  gradtape too.
* **scikit-learn**: ``sklearn.utils._array_api.yield_namespaces`` and ``yield_namespace_device_dtype_combinations``
  (read when the test modules are imported, after ``pytest_configure``) yield the chosen namespaces:
  ``("gradtape", None, "float64")``, ``("gradtape", None, "float32")`` and array_api_strict's own combinations.
  The tests enable ``array_api_dispatch=True`` themselves (``sklearn.config_context``).

Only the tests parametrized by a backend are kept (the others are deselected), so that every count is a count of
backend runs. An outcome is ``passed``, ``failed`` (any phase failed), ``skipped`` or ``xfailed``.
"""
import importlib
import json
import os
import sys

import pytest

BACKENDS = [b for b in os.environ.get("GT_CONSUMER_BACKENDS", "gradtape,array_api_strict").split(",") if b]
_OUTCOMES = {}
_RANK = {"failed": 3, "passed": 1, "skipped": 2, "xfailed": 2}


def backend_of(nodeid):
    """The backend a test id runs on: a token of its parameter id (``test_x[float64-gradtape]``), or None."""
    if "[" not in nodeid:
        return None
    tokens = nodeid[nodeid.index("[") + 1:-1].split("-")
    return next((b for b in BACKENDS if b in tokens), None)


def _strict_combinations(original):
    return [c for c in original() if c[0] == "array_api_strict"]


def _patch_sklearn():
    try:
        mod = importlib.import_module("sklearn.utils._array_api")
    except ImportError:
        return
    original = mod.yield_namespace_device_dtype_combinations

    def yield_namespaces(include_numpy_namespaces=True):
        yield from BACKENDS

    def yield_namespace_device_dtype_combinations(include_numpy_namespaces=True):
        for b in BACKENDS:
            if b == "array_api_strict":
                yield from _strict_combinations(original)
            else:
                yield b, None, "float64"
                yield b, None, "float32"

    mod.yield_namespaces = yield_namespaces
    mod.yield_namespace_device_dtype_combinations = yield_namespace_device_dtype_combinations


def pytest_configure(config):
    config.addinivalue_line("markers", "array_api_backends: a test run on each array API backend")
    _patch_sklearn()


def _scipy_params():
    return [pytest.param(importlib.import_module(b), id=b, marks=pytest.mark.array_api_backends) for b in BACKENDS]


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    """Before pytest parametrizes SciPy's ``xp`` fixture from its params, swap those for the chosen backends."""
    for fixturedef in metafunc._arg2fixturedefs.get("xp", ()):
        module = sys.modules.get(getattr(fixturedef.func, "__module__", ""))
        if module is None or not hasattr(module, "xp_known_backends") or getattr(fixturedef, "_gt_injected", False):
            continue
        module.xp_known_backends.update(BACKENDS)
        fixturedef.params = _scipy_params()
        fixturedef.ids = None
        fixturedef._gt_injected = True


EAGER = {"numpy", "array_api_strict", "torch"}


def _skip_for_eager(item):
    """A SciPy test that skips every eager CPU backend by name (``reason="lazy backends only"``) is not meant for
    gradtape, which is eager too: skip it with that reason."""
    marks = [m for m in item.iter_markers("skip_xp_backends") if m.args]
    if EAGER <= {m.args[0] for m in marks}:
        reason = marks[0].kwargs.get("reason") or "skipped on every eager backend"
        item.add_marker(pytest.mark.skip(reason=f"{reason} (skipped on {', '.join(sorted(EAGER))})"))


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    for item in items:
        b = backend_of(item.nodeid)
        (keep if b else drop).append(item)
        if b is not None and b not in EAGER:
            _skip_for_eager(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_logreport(report):
    if backend_of(report.nodeid) is None:
        return
    if report.failed:
        outcome = "failed"
    elif report.skipped:
        outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.when == "call":
        outcome = "xfailed" if hasattr(report, "wasxfail") else "passed"     # (an xpass)
    else:
        return
    old = _OUTCOMES.get(report.nodeid)
    if old is None or _RANK[outcome] > _RANK[old[0]]:
        message = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = (crash.message if crash is not None else str(report.longrepr))[:300]
        _OUTCOMES[report.nodeid] = (outcome, message)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("GT_CONSUMER_REPORT")
    if path and not hasattr(session.config, "workerinput"):      # the xdist controller (or a plain run) writes
        with open(path, "w") as f:
            json.dump({k: list(v) for k, v in _OUTCOMES.items()}, f, indent=0)
