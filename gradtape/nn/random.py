"""Random numbers for initialisers and Dropout: a seedable :class:`Generator`, one stream per device.

A generator draws on the tensor's own backend (NumPy's PCG64 on the CPU and for
array-api-strict, cuRAND on CuPy); :func:`manual_seed` replaces the default one.
Every draw goes through :func:`gradtape._autodiff.custom.random_stream`, so that a
checkpointed block's recomputation replays the draws of its forward pass.
"""
from __future__ import annotations

from .. import backends
from .._api import get_default_device
from .._autodiff.checkpoint import random_stream
from .._core.dispatch import wrap
from .._core.dtypes import backend_dtype, dtype_name

__all__ = ["Generator", "manual_seed", "default_generator", "resolve_generator"]


class Generator:
    """A seedable random generator; draws on each device's backend (one stream per device).

    >>> import gradtape as gt
    >>> g = gt.nn.Generator(0)
    >>> x = g.normal((2, 3), dtype=gt.float32)
    >>> x.shape, x.dtype, x.device
    ((2, 3), float32, 'cpu')
    >>> bool(gt.all(gt.nn.Generator(0).normal((2, 3), dtype=gt.float32) == x))
    True
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._per_device = {}

    def stream(self, device):
        """(the backend's random stream on ``device``, that backend); ``device`` None: the default device."""
        backend = backends.get(device if device is not None else get_default_device())
        g = self._per_device.get(backend.device)
        if g is None:
            g = self._per_device[backend.device] = backend.random(self.seed)
        return random_stream(self, backend.device, g), backend

    def normal(self, shape, *, mean=0.0, std=1.0, dtype=None, device=None):
        """Samples of N(mean, std²) (dtype: the default floating dtype unless given)."""
        g, backend = self.stream(device)
        return _drawn(lambda d: g.normal(_shape(shape), d, mean, std), _float_dtype(dtype, backend), backend)

    def uniform(self, shape, *, low=0.0, high=1.0, dtype=None, device=None):
        """Samples of U[low, high)."""
        g, backend = self.stream(device)
        return _drawn(lambda d: g.uniform(_shape(shape), d, low, high), _float_dtype(dtype, backend), backend)

    def bernoulli(self, p, shape, *, dtype=None, device=None):
        """1 with probability ``p``, else 0."""
        g, backend = self.stream(device)
        return _drawn(lambda d: g.bernoulli(p, _shape(shape), d), _float_dtype(dtype, backend), backend)

    def integers(self, low, high, shape, *, device=None):
        """int64 samples of {low, ..., high - 1}."""
        g, backend = self.stream(device)
        return wrap(g.integers(low, high, _shape(shape)), backend)

    def permutation(self, n, *, device=None):
        """A random permutation of range(n) (int64), e.g. to shuffle a data set each epoch."""
        g, backend = self.stream(device)
        return wrap(g.permutation(n), backend)


def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _float_dtype(dtype, backend):
    """The name of the floating dtype to draw: ``dtype``, or the backend's default one."""
    if dtype is None:
        info = getattr(backend.raw, "__array_namespace_info__", None)
        return dtype_name(info().default_dtypes()["real floating"]) if info is not None else "float64"
    name = dtype_name(dtype)
    if name not in ("float16", "float32", "float64"):
        raise TypeError(f"gradtape.nn.Generator: random floats need dtype float16, float32 or float64, got {dtype}")
    return name


def drawn(draw, name, backend):
    """``draw(name)``, a backend array; float16 is drawn in float32 and rounded (the generators have no float16)."""
    if name != "float16":
        return draw(name)
    raw = backend_dtype(backend, name, "nn.Generator")         # (a TypeError on array-api-strict)
    return backend.xp.astype(draw("float32"), raw)


def _drawn(draw, name, backend):
    return wrap(drawn(draw, name, backend), backend)


_default = [Generator()]


def manual_seed(seed):
    """Reseed the default generator (initialisers, Dropout, Linear's initial weights).

    >>> import gradtape as gt
    >>> _ = gt.nn.manual_seed(0); a = gt.nn.Linear(3, 2).weight
    >>> _ = gt.nn.manual_seed(0); b = gt.nn.Linear(3, 2).weight
    >>> bool(gt.all(a == b))
    True
    """
    _default[0] = Generator(seed)
    return _default[0]


def default_generator():
    """The generator used when none is given (replaced by :func:`manual_seed`).

    >>> import gradtape as gt
    >>> gt.nn.manual_seed(3) is gt.nn.default_generator()
    True
    """
    return _default[0]


def resolve_generator(generator):
    """The generator an API argument names: None (the default one), an int seed, or a :class:`Generator`."""
    if generator is None:
        return _default[0]
    if isinstance(generator, int):
        return Generator(generator)
    return generator
