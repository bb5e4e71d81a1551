"""Recording modes: record/pause (MXNet), no_grad/enable_grad (PyTorch), train/predict mode,
subgradients at kinks, stop_gradient. All state is per thread (:mod:`gradtape._state`)."""
from __future__ import annotations

import contextlib
import functools

from .._api import asarray
from .._api.public import public
from .._core.dispatch import wrap
from .._core.tensor import Tensor
from .._state import scoped, state


@contextlib.contextmanager
def record(train_mode=True):
    """Record operations for differentiation (MXNet ``autograd.record``).

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0]); x.attach_grad()
    >>> with gt.record():
    ...     gt.is_recording()
    True
    """
    with scoped(enabled=True, train=train_mode, recording=state.recording + 1):
        yield


@contextlib.contextmanager
def pause(train_mode=False):
    """Stop recording inside (MXNet ``autograd.pause``; also ``gt.no_grad``).

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0]).requires_grad_()
    >>> with gt.pause():
    ...     (x * 2).requires_grad
    False
    """
    with scoped(enabled=False, train=train_mode):
        yield


class _GradMode:
    """A grad-mode switch usable three ways, as PyTorch's: ``with no_grad():``, ``@no_grad()`` and ``@no_grad``.

    Each entry saves and restores the mode (it nests and is re-entrant); a decorated function enters a fresh one
    per call."""

    enabled = None

    def __new__(cls, func=None):
        self = super().__new__(cls)
        if func is None:
            return self
        if not callable(func):
            raise TypeError(f"gradtape.{cls.__name__}: takes no arguments (write `with gt.{cls.__name__}():`, "
                            f"`@gt.{cls.__name__}()` or `@gt.{cls.__name__}`), got a {type(func).__name__}")
        return self(func)

    def __init__(self, func=None):
        self._scopes = []

    def __enter__(self):
        s = scoped(enabled=self.enabled)
        s.__enter__()
        self._scopes.append(s)
        return None

    def __exit__(self, *exc):
        self._scopes.pop().__exit__(*exc)
        return False

    def __call__(self, func):
        mode = type(self)

        @functools.wraps(func)
        def inner(*args, **kwargs):
            with mode():
                return func(*args, **kwargs)
        return inner

    def __repr__(self):
        return f"gt.{type(self).__name__}()"


class no_grad(_GradMode):
    """PyTorch spelling of :func:`pause`: a context manager and a decorator (with or without parentheses).

    >>> import gradtape as gt
    >>> with gt.no_grad():
    ...     gt.is_grad_enabled()
    False
    >>> @gt.no_grad
    ... def f():
    ...     return gt.is_grad_enabled()
    >>> f(), gt.is_grad_enabled()
    (False, True)
    """

    enabled = False


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` block; also a decorator (``@gt.enable_grad``).

    >>> import gradtape as gt
    >>> with gt.no_grad():
    ...     with gt.enable_grad():
    ...         gt.is_grad_enabled()
    True
    """

    enabled = True


def is_recording():
    """True inside ``record()`` or a ``GradientTape`` and not paused.

    >>> import gradtape as gt
    >>> gt.is_recording()
    False
    """
    return state.enabled and state.recording > 0


def is_grad_enabled():
    """True unless inside ``pause()``/``no_grad()``.

    >>> import gradtape as gt
    >>> gt.is_grad_enabled()
    True
    """
    return state.enabled


def is_training():
    """MXNet train mode flag (``record(train_mode=True)``).

    >>> import gradtape as gt
    >>> gt.is_training()
    False
    """
    return state.train


@contextlib.contextmanager
def train_mode():
    """MXNet ``autograd.train_mode``.

    >>> import gradtape as gt
    >>> with gt.train_mode():
    ...     gt.is_training()
    True
    """
    with scoped(train=True):
        yield


@contextlib.contextmanager
def predict_mode():
    """MXNet ``autograd.predict_mode``.

    >>> import gradtape as gt
    >>> with gt.predict_mode():
    ...     gt.is_training()
    False
    """
    with scoped(train=False):
        yield


@contextlib.contextmanager
def subgradient(abs=None, relu=None):
    """Choose the subgradient used at the kinks: abs'(0) in [-1, 1], relu'(0) in [0, 1].

    >>> import gradtape as gt
    >>> x = gt.asarray(0.0).requires_grad_()
    >>> with gt.subgradient(abs=0.5):
    ...     gt.abs(x).backward()
    >>> x.grad
    Tensor(0.5)
    """
    if abs is not None and not -1.0 <= float(abs) <= 1.0:
        raise ValueError(f"gradtape.subgradient: abs'(0) must lie in [-1, 1] (the subdifferential of |x| at 0), "
                         f"got {abs}")
    if relu is not None and not 0.0 <= float(relu) <= 1.0:
        raise ValueError(f"gradtape.subgradient: relu'(0) must lie in [0, 1] (the subdifferential of max(x, 0) "
                         f"at 0), got {relu}")
    changes = {}
    if abs is not None:
        changes["abs_sub"] = float(abs)
    if relu is not None:
        changes["relu_sub"] = float(relu)
    with scoped(**changes):
        yield


@public
def stop_gradient(x):
    """The same values, cut from the graph (TensorFlow/JAX ``stop_gradient``).

    >>> import gradtape as gt
    >>> gt.stop_gradient(gt.asarray([1.0]).requires_grad_()).requires_grad
    False
    """
    if not isinstance(x, Tensor):
        x = asarray(x)
    t = wrap(x.data, x.backend)
    t._base = x
    return t
