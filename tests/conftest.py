"""Shared fixtures: a ``device`` fixture over every backend, and ``to_np``; the skip reasons, grouped, at the end of
the run (so a user sees at once that the skips are the CUDA parametrizations and missing optional tools)."""
import collections
import os

# SciPy reads SCIPY_ARRAY_API once, when it is first imported (by any test): set it before that, so the
# array-API consumer tests (test_consumers.py) see SciPy's and scikit-learn's array API dispatch
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# the engine asserts that every cotangent leaves it with its input's exact shape and dtype (issue 9): the whole
# suite runs with the check on (GRADTAPE_DEBUG=0 turns it off)
os.environ.setdefault("GRADTAPE_DEBUG", "1")

import pytest  # noqa: E402

import gradtape as gt
from gradtape import backends

_DEVICES = [
    "cpu",
    "strict",
    pytest.param("cuda", marks=pytest.mark.cuda),
]


@pytest.fixture(params=_DEVICES)
def device(request):
    """Run the test with ``gt.default_device(device)`` set; skip CUDA where no GPU is present."""
    dev = request.param
    if dev == "cuda" and "cuda" not in backends.available():
        pytest.skip("no CUDA GPU with CuPy available (gradtape.backends.available() lacks 'cuda')")
    with gt.default_device(dev):
        yield dev


def pytest_addoption(parser):
    parser.addoption("--fuzz", type=int, default=None, metavar="N",
                     help="tests/test_differential.py: N fresh random programs per kind and backend instead of the "
                          "fixed seeds (GRADTAPE_FUZZ=N does the same)")


def to_np(t):
    """The values of a tensor as a NumPy array."""
    return gt.to_numpy(t)


def skip_reasons(reports):
    """(count, reason) for the skipped test reports, most frequent first."""
    counts = collections.Counter()
    for r in reports:
        reason = r.longrepr[2] if isinstance(r.longrepr, tuple) and len(r.longrepr) == 3 else str(r.longrepr)
        reason = reason.removeprefix("Skipped: ").strip()
        counts[reason or "(no reason given)"] += 1
    return sorted(((n, why) for why, n in counts.items()), key=lambda t: (-t[0], t[1]))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per distinct skip reason with its count: skipped tests are not failures, and this says why."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if getattr(r, "skipped", False)]
    if not skipped:
        return
    groups = skip_reasons(skipped)
    terminalreporter.write_sep("-", f"{len(skipped):,} skipped, for {len(groups)} reason"
                                    f"{'s' if len(groups) != 1 else ''} (skips are not failures)")
    for n, why in groups[:12]:
        terminalreporter.write_line(f"{n:>7,}  {why}")
    if len(groups) > 12:
        terminalreporter.write_line(f"{sum(n for n, _ in groups[12:]):>7,}  ({len(groups) - 12} other reasons; "
                                    f"`-rs` lists every skip)")
