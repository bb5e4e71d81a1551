"""Shared fixtures: a ``device`` fixture over every backend, and ``to_np``."""
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
