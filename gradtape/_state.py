"""Thread-local modes (grad mode, recording depth, train mode, forward-mode levels, vmap levels, subgradients,
default device) and the one tracing hook (``state.tracer``), with :func:`scoped` to change any of them for a block.

>>> from gradtape._state import scoped, state
>>> with scoped(train=True):
...     state.train
True
>>> state.train
False
"""
from __future__ import annotations

import os
import threading

__all__ = ["state", "scoped", "default_device", "set_global_device"]


class State(threading.local):
    enabled = True          # grad mode; pause()/no_grad() switch it off
    recording = 0           # depth of record()/GradientTape scopes (is_recording)
    train = False           # MXNet train_mode (Dropout)
    levels = ()             # active forward-mode (jvp) levels, increasing ints
    abs_sub = 0.0           # subgradient of abs at 0
    relu_sub = 0.0          # subgradient of relu at 0
    device = None           # per-thread default device override
    tracer = None           # gt.trace's recorder while it runs on this thread: called as tracer(op, args, params, out)
    batch = ()              # active gt.vmap levels: (level, size) pairs, innermost last
    alias = True            # views register with their root (off while a write re-derives them: _core.views)


state = State()
_global_device = [os.environ.get("GRADTAPE_DEVICE", "cpu")]


class scoped:
    """Set attributes of ``state`` for a block and restore them after (also on error); nests.

    A class rather than a generator context manager: the engine and forward mode enter one per pass."""

    __slots__ = ("changes", "saved")

    def __init__(self, **changes):
        self.changes = changes
        self.saved = None

    def __enter__(self):
        self.saved = {k: getattr(state, k) for k in self.changes}
        for k, v in self.changes.items():
            setattr(state, k, v)
        return state

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            setattr(state, k, v)
        return False


def default_device():
    """This thread's default device string (``gt.default_device`` block, else the global one)."""
    return state.device or _global_device[0]


def set_global_device(device):
    _global_device[0] = device
