"""Devices: the default device (process-wide and per block), moving tensors (``to_device``, differentiable)
and the allocator/queue functions (``synchronize``, ``memory_stats``).

>>> import gradtape as gt
>>> with gt.default_device("cpu"):
...     gt.get_default_device()
'cpu'
"""
from __future__ import annotations

import contextlib

from .. import backends
from .._core.dispatch import apply1
from .._ops.device import to_device_p
from .._state import default_device as current_device, scoped, set_global_device
from .public import public

__all__ = ["set_default_device", "default_device", "get_default_device", "to_device", "synchronize",
           "memory_stats"]


def set_default_device(device):
    """Set the process-wide default device ("cpu", "cuda", "cuda:N", "strict").

    >>> import gradtape as gt
    >>> gt.set_default_device("cpu")
    """
    set_global_device(backends.canonical_device(device))


@contextlib.contextmanager
def default_device(device):
    """Context manager: tensors created inside go to ``device`` (this thread only).

    >>> import gradtape as gt
    >>> with gt.default_device("cpu"):
    ...     gt.ones(2).device
    'cpu'
    """
    with scoped(device=backends.canonical_device(device)):
        yield


def get_default_device():
    """The device new tensors go to.

    >>> import gradtape as gt
    >>> gt.get_default_device()
    'cpu'
    """
    return backends.canonical_device(current_device())


def backend_for(device):
    """The backend of ``device``, or of the default device when None."""
    return backends.get(device if device is not None else current_device())


@public
def to_device(x, device, /, *, stream=None):
    """Move a tensor to ``device``; differentiable (gradients flow back to the source device).

    >>> import gradtape as gt
    >>> gt.to_device(gt.ones(2), "cpu").device
    'cpu'
    """
    dst = backends.get(device)
    if dst is x.backend:
        return x
    out = apply1(to_device_p, x, {"src": x.backend, "dst": dst})
    out.backend = dst
    if out._node is not None:
        out._node.backend = dst
    return out


def synchronize(device=None):
    """Wait for queued work on ``device``, or on every device in use when None (a no-op on the CPU).

    >>> import gradtape as gt
    >>> gt.synchronize()
    """
    if device is not None:
        backends.get(device).synchronize()
        return
    for backend in list(backends._BY_DEVICE.values()):
        backend.synchronize()


def memory_stats(device=None):
    """Memory figures of ``device``'s allocator (CuPy pool on GPUs; empty on the CPU).

    >>> import gradtape as gt
    >>> isinstance(gt.memory_stats(), dict)
    True
    """
    return backends.get(device or get_default_device()).memory_stats()
