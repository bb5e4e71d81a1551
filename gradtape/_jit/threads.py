"""The thread count of the fused kernels: ``set_num_threads(n)`` / ``$GRADTAPE_NUM_THREADS``.

It defaults to the cores this process may run on (``os.sched_getaffinity``); a kernel runs numba's
``prange`` loop when more than one thread is set and its region is large
(:data:`gradtape._jit.numba_lower.PARALLEL_MIN`), with numba's thread layer set to this count. numba is
imported only when a kernel runs (never by :func:`set_num_threads` itself).
"""
from __future__ import annotations

import importlib
import os
import sys

__all__ = ["set_num_threads", "get_num_threads", "available_cores"]

_count = None


def available_cores():
    """The cores this process may run on.

    >>> available_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _from_env():
    v = os.environ.get("GRADTAPE_NUM_THREADS", "").strip()
    if not v:
        return available_cores()
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"gradtape: GRADTAPE_NUM_THREADS={v!r} is not a whole number of threads") from None
    if n < 1:
        raise ValueError(f"gradtape: GRADTAPE_NUM_THREADS={n} must be at least 1")
    return n


def set_num_threads(n):
    """Use ``n`` threads (at least 1) for gt.jit's fused kernels; None goes back to ``$GRADTAPE_NUM_THREADS``
    or the available cores.

    >>> from gradtape._jit.threads import set_num_threads, get_num_threads
    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads(None)
    """
    global _count
    if n is None:
        _count = None
        return
    if type(n) is not int and not (hasattr(n, "__index__") and type(n) is not bool):
        raise TypeError(f"gradtape.set_num_threads: n must be an int, not {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"gradtape.set_num_threads: n={n} must be at least 1")
    _count = n
    _apply(n)


def get_num_threads():
    """The thread count the fused kernels use now."""
    n = _count if _count is not None else _from_env()
    return n


def _apply(n):
    """Set numba's thread count (capped by the pool numba started with), where numba is loaded already."""
    if "numba" not in sys.modules:
        return
    numba = importlib.import_module("numba")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def prepare():
    """Before a parallel kernel runs: numba's count set to :func:`get_num_threads`."""
    _apply(get_num_threads())
