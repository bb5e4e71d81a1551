"""MXNet's ``autograd`` module names, so the seed's cells run with only the import changed.

>>> from gradtape import autograd, nd
>>> x = nd.arange(4.0).reshape((4, 1)); x.attach_grad()
>>> with autograd.record():
...     y = 2 * nd.dot(x.T, x)
>>> y.backward(); x.grad.reshape((-1,))
Tensor([ 0.,  4.,  8., 12.], dtype=float32)
"""
from .._autodiff.modes import record, pause, is_recording, is_training, train_mode, predict_mode
from .._autodiff.tape import backward, grad
from .._core.tensor import Tensor
from .._state import state as _state

__all__ = ["record", "pause", "is_recording", "is_training", "train_mode", "predict_mode", "backward", "grad",
           "set_recording", "set_training", "mark_variables"]


def set_recording(is_recording):
    """Turn recording on or off; returns the previous state."""
    prev = _state.enabled and _state.recording > 0
    _state.recording = max(_state.recording, 1) if is_recording else 0
    _state.enabled = bool(is_recording) or _state.enabled
    return prev


def set_training(train_mode):
    """Set train mode; returns the previous value."""
    prev = _state.train
    _state.train = bool(train_mode)
    return prev


def mark_variables(variables, gradients, grad_reqs="write"):
    """Attach gradient buffers to variables (MXNet)."""
    vs = [variables] if isinstance(variables, Tensor) else list(variables)
    gs = [gradients] if isinstance(gradients, Tensor) else list(gradients)
    reqs = [grad_reqs] * len(vs) if isinstance(grad_reqs, str) else list(grad_reqs)
    for v, g, r in zip(vs, gs, reqs):
        v.attach_grad(r)
        if r != "null":
            v.grad = g
