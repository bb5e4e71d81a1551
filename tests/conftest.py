"""Shared fixtures: a ``device`` fixture over every backend, and ``to_np``."""
import pytest

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


def to_np(t):
    """The values of a tensor as a NumPy array."""
    return gt.to_numpy(t)
