"""``python -m benchmarks.consumers``: SciPy's and scikit-learn's own array-API tests with gradtape as a backend.

Each suite runs in a fresh ``pytest`` process with the plugin :mod:`benchmarks.consumer_plugin` (which puts
gradtape and array_api_strict in place of the suites' backend parametrization) and ``SCIPY_ARRAY_API=1``; the
script then writes a markdown table: suite, tests (backend runs per namespace), failed on gradtape, failed on
array_api_strict, and the tests that fail on gradtape but pass on array_api_strict (the issue's acceptance).

    python -m benchmarks.consumers                              # every suite (tens of minutes)
    python -m benchmarks.consumers --suites scipy.special,sklearn --out consumers.md
    python -m benchmarks.consumers --quick                      # one small suite (scipy.special's logsumexp)
    python -m benchmarks.consumers --suites scipy.special -k "logsumexp or softmax" --jobs 2

Both libraries ship their tests in their wheels (``scipy/special/tests``, ``sklearn/utils/tests``...); a suite
whose tests are not installed reads ``tests not installed`` in its row, and a library that is not installed
``not installed``. Not part of ``.ci/run``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCIPY = ["_lib", "special", "stats", "cluster", "integrate", "optimize", "differentiate", "interpolate", "spatial",
         "fft", "ndimage", "signal"]
SUITES = [f"scipy.{s}" for s in SCIPY] + ["sklearn"]
QUICK = ("scipy.special", "test_logsumexp")
BACKENDS = ("gradtape", "array_api_strict")


def package_dir(name):
    spec = importlib.util.find_spec(name)
    return None if spec is None or not spec.origin else os.path.dirname(spec.origin)


def sklearn_test_files(root):
    """scikit-learn's test modules that parametrize over namespaces (``yield_namespace*``)."""
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith("test_") and f.endswith(".py"):
                path = os.path.join(d, f)
                with open(path, encoding="utf-8") as fh:
                    if "yield_namespace" in fh.read():
                        out.append(path)
    return sorted(out)


def suite_paths(suite, only=None):
    """(paths to run, None) or (None, why not); ``only``: one test module (``test_logsumexp`` of a SciPy suite, a
    path fragment such as ``utils/tests/test_array_api`` for scikit-learn)."""
    lib = suite.split(".")[0]
    root = package_dir("sklearn" if lib == "sklearn" else "scipy")
    if root is None:
        return None, "not installed"
    if lib == "sklearn":
        paths = [q for q in sklearn_test_files(root) if not only or only in q]
    else:
        pkg = os.path.join(root, *suite.split(".")[1:])        # (its tests/ and its subpackages' tests/)
        tests = [os.path.join(d, f) for d, _, fs in os.walk(pkg) for f in fs
                 if os.path.basename(d) == "tests" and f.startswith("test_") and f.endswith(".py")]
        paths = [pkg] if tests else []
        if only and paths:
            paths = [p for p in tests if os.path.basename(p) == f"{only}.py"]
    if not paths or not os.path.exists(os.path.join(root, "conftest.py")):
        return None, "tests not installed"
    return paths, None


def run_suite(suite, *, select=None, jobs=1, timeout=3600, only=None, backends=BACKENDS):
    """Run one suite; returns a row dict (counts per backend, the gradtape-only failures, seconds)."""
    paths, why = suite_paths(suite, only)
    row = {"suite": suite, "note": why}
    if paths is None:
        return row
    site = os.path.dirname(package_dir(suite.split(".")[0]))
    with tempfile.TemporaryDirectory() as tmp:
        ini, report = os.path.join(tmp, "pytest.ini"), os.path.join(tmp, "report.json")
        with open(ini, "w") as f:
            f.write("[pytest]\n")
        cmd = [sys.executable, "-m", "pytest", "-p", "benchmarks.consumer_plugin", "-p", "no:cacheprovider",
               "-c", ini, "--rootdir", site, "--confcutdir", site, "-q", "--no-header", "-rN",
               "-W", "ignore::pytest.PytestRemovedIn10Warning", *paths]
        if select:
            cmd += ["-k", select]
        if jobs > 1:
            cmd += ["-n", str(jobs)]
        env = dict(os.environ, SCIPY_ARRAY_API="1", GT_CONSUMER_REPORT=report, GT_CONSUMER_BACKENDS=",".join(backends),
                   PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
            row["returncode"] = proc.returncode
            row["tail"] = proc.stdout[-2000:] + proc.stderr[-2000:]
        except subprocess.TimeoutExpired:
            row["note"] = f"timed out after {timeout} s"
        row["seconds"] = time.perf_counter() - t0
        outcomes = json.load(open(report)) if os.path.exists(report) else {}
    if not outcomes and row.get("note") is None:
        last = [ln for ln in row.get("tail", "").splitlines() if ln.strip()][-1:] or [""]
        row["note"] = f"no backend tests ran (pytest exit {row.get('returncode')}: {last[0][:120]})"
    row.update(summarize(outcomes, backends))
    return row


def _other(nodeid, b, other):
    head, ids = nodeid.split("[", 1)
    return head + "[" + "-".join(other if t == b else t for t in ids[:-1].split("-")) + "]"


def _twins(nodeid, b, other):
    """The reference's runs of the same test: the same id with the other backend (scikit-learn's strict runs
    read CPU_DEVICE/device1 where gradtape's read None, for float64/float32)."""
    t = _other(nodeid, b, other)
    return [t, t.replace("-None-float64", "-CPU_DEVICE-float64"), t.replace("-None-float32", "-device1-float32")]


def summarize(outcomes, backends=BACKENDS):
    """Counts per backend, and the tests failing on the first backend whose twin on the second passes."""
    from .consumer_plugin import backend_of
    counts = {b: {"tests": 0, "failed": 0, "skipped": 0} for b in backends}
    for nodeid, (outcome, _) in outcomes.items():
        b = backend_of(nodeid)
        if b in counts:
            counts[b]["tests"] += 1
            counts[b]["failed"] += outcome == "failed"
            counts[b]["skipped"] += outcome in ("skipped", "xfailed")
    only, failed = [], []
    if len(backends) == 2:
        gt_b, ref = backends
        for nodeid, (outcome, message) in sorted(outcomes.items()):
            if outcome == "failed" and backend_of(nodeid) == gt_b:
                twin = next((outcomes[t] for t in _twins(nodeid, gt_b, ref) if t in outcomes), None)
                twin = "absent" if twin is None else twin[0]
                failed.append((nodeid, message, twin))
                if twin in ("absent", "passed"):
                    only.append((nodeid, message))
    return {"counts": counts, "only_gradtape_failed": only, "gradtape_failed": failed}


def table(rows, backends=BACKENDS):
    head = f"| suite | tests ({' / '.join(backends)}) | {backends[0]} failed | " + " | ".join(f"{b} failed" for b in backends[1:]) + \
        " | skipped (" + " / ".join(backends) + ") | seconds |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "counts" not in r:
            lines.append(f"| {r['suite']} | {r['note']} |" + " |" * (head.count("|") - 3))
            continue
        c = r["counts"]
        lines.append(f"| {r['suite']} | " + " / ".join(f"{c[b]['tests']:,}" for b in backends)
                     + f" | {c[backends[0]]['failed']:,} | "
                     + " | ".join(f"{c[b]['failed']:,}" for b in backends[1:])
                     + " | " + " / ".join(f"{c[b]['skipped']:,}" for b in backends)
                     + f" | {r.get('seconds', 0):.0f} |" + (f" {r['note']}" if r.get("note") else ""))
    return "\n".join(lines)


def details(rows, limit=40):
    """The gradtape failures of each suite, by the outcome of the same test on the reference backend."""
    out = []
    for r in rows:
        failed = r.get("gradtape_failed") or [(n, m, "passed") for n, m in r.get("only_gradtape_failed") or []]
        for twin in ("passed", "absent", "skipped", "xfailed", "failed"):
            these = [(n, m) for n, m, t in failed if t == twin]
            if not these:
                continue
            out.append(f"\n### {r['suite']}: {len(these)} failing on gradtape, {twin} on the reference\n")
            out += [f"- `{n}`: {m.splitlines()[0] if m else ''}"[:300] for n, m in these[:limit]]
            if len(these) > limit:
                out.append(f"- ... and {len(these) - limit} more")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.consumers", description=__doc__.splitlines()[0])
    p.add_argument("--suites", default=",".join(SUITES), help="comma-separated: " + ",".join(SUITES))
    p.add_argument("--quick", action="store_true", help=f"one small suite ({QUICK[0]}: {QUICK[1]}.py)")
    p.add_argument("-k", dest="select", help="a pytest -k expression applied to every suite")
    p.add_argument("--jobs", type=int, default=1, help="pytest-xdist workers per suite (default 1)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per suite (default 3600)")
    p.add_argument("--out", help="also write the markdown (table and failures) to this file")
    p.add_argument("--json", help="also write the rows as JSON")
    a = p.parse_args(argv)
    suites, only = ([QUICK[0]], QUICK[1]) if a.quick else ([s.strip() for s in a.suites.split(",") if s.strip()], None)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s) {unknown}; choose from {SUITES}")
    rows = []
    for s in suites:
        print(f"running {s} ...", file=sys.stderr, flush=True)
        rows.append(run_suite(s, select=a.select, jobs=a.jobs, timeout=a.timeout, only=only))
    text = table(rows) + "\n" + details(rows)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
