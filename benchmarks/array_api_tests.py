"""``python -m benchmarks.array_api_tests SUITE_DIR``: the standard's own test suite (data-apis/array-api-tests, a
checkout at SUITE_DIR) on gradtape and on a reference namespace, same settings and seeds, and the tests that fail on
gradtape but pass on the reference (issue 12's acceptance: none).

    python -m benchmarks.array_api_tests ~/array-api-tests                       # seed 0, reference compat.numpy
    python -m benchmarks.array_api_tests ~/array-api-tests --seeds 0,1 --max-examples 20 --out aat.md
    python -m benchmarks.array_api_tests ~/array-api-tests --only test_fft.py --reference array_api_strict

The suite is not on PyPI: clone it (with its ``array-api`` submodule, the spec's signature stubs) and install its
requirements (hypothesis, ndindex). Each run is a fresh ``pytest`` process in SUITE_DIR with
``ARRAY_API_TESTS_MODULE`` set, ``ARRAY_API_TESTS_VERSION`` the same for both (default 2024.12, gradtape's
``__array_api_version__``), ``--hypothesis-seed`` per seed, ``--disable-deadline`` (a shared machine fails
hypothesis' time limit at random) and hypothesis' example database removed before each run (no module replays
another's failures). Not part of ``.ci/run`` (minutes per namespace and seed).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import gradtape as gt

FAILED = re.compile(r"^FAILED (\S+)", re.M)
SUMMARY = re.compile(r"^=*\s*(.*\b(?:passed|failed)\b.*?)\s*=*$", re.M)


def run(suite, module, seed, max_examples, version, only=None, timeout=3600):
    """(set of failed test ids, summary line, seconds, returncode) of one run of the suite on ``module``."""
    shutil.rmtree(os.path.join(suite, ".hypothesis"), ignore_errors=True)
    cmd = [sys.executable, "-m", "pytest", os.path.join("array_api_tests", only) if only else "array_api_tests",
           "-q", "-p", "no:cacheprovider", f"--max-examples={max_examples}", f"--hypothesis-seed={seed}",
           "--disable-deadline", "--disable-warnings", "-rfE"]
    env = dict(os.environ, ARRAY_API_TESTS_MODULE=module, ARRAY_API_TESTS_VERSION=version)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    summary = SUMMARY.findall(out)
    return set(FAILED.findall(out)), (summary[-1] if summary else out[-300:]), time.perf_counter() - t0, \
        proc.returncode


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.array_api_tests", description=__doc__.splitlines()[0])
    ap.add_argument("suite", help="a checkout of data-apis/array-api-tests")
    ap.add_argument("--reference", default="array_api_compat.numpy", help="the namespace to compare with")
    ap.add_argument("--seeds", default="0", help="hypothesis seeds, comma-separated (default 0)")
    ap.add_argument("--max-examples", type=int, default=20)
    ap.add_argument("--version", default=gt.__array_api_version__, help="ARRAY_API_TESTS_VERSION for both")
    ap.add_argument("--only", help="one test file of the suite, e.g. test_fft.py")
    ap.add_argument("--out", help="also write the markdown to this file")
    a = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(a.suite, "array_api_tests")):
        ap.error(f"{a.suite} is not a checkout of data-apis/array-api-tests (no array_api_tests/ in it)")
    lines = [f"array-api-tests at {os.path.abspath(a.suite)}: gradtape {gt.__version__} against {a.reference}, "
             f"spec {a.version}, {a.max_examples} examples per test", "",
             "| seed | namespace | result | seconds |", "|---|---|---|---|"]
    only_gt = {}
    for seed in [int(s) for s in a.seeds.split(",")]:
        res = {}
        for mod in ("gradtape", a.reference):
            print(f"seed {seed}: {mod} ...", file=sys.stderr, flush=True)
            res[mod] = run(a.suite, mod, seed, a.max_examples, a.version, a.only)
            lines.append(f"| {seed} | {mod} | {res[mod][1]} | {res[mod][2]:.0f} |")
        only_gt[seed] = sorted(res["gradtape"][0] - res[a.reference][0])
    for seed, ids in only_gt.items():
        lines += ["", f"seed {seed}: {len(ids)} failing on gradtape, passing on {a.reference}"]
        lines += [f"- `{t}`" for t in ids]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 1 if any(only_gt.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
