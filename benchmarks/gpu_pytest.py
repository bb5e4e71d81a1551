"""pytest plugin for benchmarks/gpu_check.sh (``-p benchmarks.gpu_pytest``); does nothing unless asked.

* ``GRADTAPE_PYTEST_SUMMARY=path``: write a JSON summary at the end of the session: counts of
  outcomes for the ``cuda``-marked tests (the ``device`` fixture's ``cuda`` parameter and
  tests/test_cuda.py) and for the others, the failing test ids, and the reasons CUDA tests
  were skipped (on a GPU machine there must be none).
* ``GRADTAPE_SKIP_DEVICE_FIXTURE=1``: deselect the tests that take the ``device`` fixture. The
  second pass of the GPU check runs with ``GRADTAPE_DEVICE=cuda``; the fixture tests already ran
  on every backend in the first pass, so only the tests on the default device run again.
"""
from __future__ import annotations

import json
import os

_STATS = {"cuda": {}, "other": {}}
_FAILED = []
_CUDA_SKIPS = {}


def pytest_collection_modifyitems(config, items):
    if os.environ.get("GRADTAPE_SKIP_DEVICE_FIXTURE") != "1":
        return
    keep, drop = [], []
    for it in items:
        (drop if "device" in getattr(it, "fixturenames", ()) else keep).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.outcome in ("skipped", "failed")) \
            and not (report.when == "teardown" and report.outcome == "failed"):
        return
    kind = "cuda" if "cuda" in report.keywords else "other"
    outcome = report.outcome
    if report.when == "call" and hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    elif report.when != "call" and outcome == "failed":
        outcome = "error"
    _STATS[kind][outcome] = _STATS[kind].get(outcome, 0) + 1
    if outcome in ("failed", "error"):
        _FAILED.append(report.nodeid)
    if kind == "cuda" and outcome == "skipped":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _CUDA_SKIPS[reason] = _CUDA_SKIPS.get(reason, 0) + 1


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("GRADTAPE_PYTEST_SUMMARY")
    if not path or hasattr(session.config, "workerinput"):      # xdist workers: the controller writes
        return
    with open(path, "w") as f:
        json.dump({"exitstatus": int(exitstatus), "counts": _STATS, "failed": _FAILED[:200],
                   "n_failed": len(_FAILED), "cuda_skip_reasons": _CUDA_SKIPS}, f, indent=2)
