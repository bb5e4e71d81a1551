"""Layers: Linear, Sequential, activations, Flatten, Dropout, and the losses, as modules.

Each is a :class:`gradtape.nn.Module` whose ``forward`` calls the functions of
:mod:`gradtape.nn.functional` or of the array API.
"""
from __future__ import annotations

import math

from .._api import asarray, mean, tanh
from .._core.dispatch import wrap
from .._core.dtypes import dtype_name, is_float
from .._core.tensor import Tensor
from .functional import cross_entropy, log_softmax, relu, sigmoid, softmax, softplus
from .module import Module, Parameter
from .random import Generator, resolve_generator

# Linear's dtype when none is given: PyTorch's default, float32 (on every backend; pass dtype= for another).
DEFAULT_DTYPE = "float32"

__all__ = ["Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Softplus", "Identity", "Flatten", "Dropout",
           "LogSoftmax", "Softmax", "CrossEntropyLoss", "MSELoss"]


class Linear(Module):
    """y = x @ weight.mT + bias; weight of shape (out_features, in_features) as in PyTorch.

    Both are initialised from U(-1/sqrt(in_features), 1/sqrt(in_features))
    (PyTorch's default), drawn on ``device`` by ``generator`` (an int seed, a
    :class:`Generator`, or the default one). ``dtype`` defaults to
    float32, as in PyTorch (pass ``dtype=gt.float64`` for double
    precision). As in PyTorch, an input of another
    dtype is a TypeError, not a silent promotion: convert the input
    (``x.astype(gt.float32)``) or build the layer in its dtype.

    >>> import gradtape as gt
    >>> lin = gt.nn.Linear(3, 2, dtype=gt.float32, generator=0)
    >>> lin.weight.dtype, lin.weight.shape, lin.bias.shape, lin(gt.ones((4, 3), dtype=gt.float32)).dtype
    (float32, (2, 3), (2,), float32)
    >>> gt.nn.Linear(3, 2, dtype=gt.float64)(gt.ones((4, 3))).dtype
    float64
    """

    def __init__(self, in_features, out_features, bias=True, *, device=None, dtype=None, generator=None):
        super().__init__()
        dtype = DEFAULT_DTYPE if dtype is None else dtype
        self.in_features = in_features
        self.out_features = out_features
        g = resolve_generator(generator)
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(g.uniform((out_features, in_features), low=-bound, high=bound, dtype=dtype,
                                          device=device))
        self.bias = Parameter(g.uniform((out_features,), low=-bound, high=bound, dtype=dtype, device=device)) \
            if bias else None

    def forward(self, x):
        x = x if isinstance(x, Tensor) else asarray(x, device=self.weight.device)
        if x.dtype != self.weight.dtype:
            other = f" or build the layer in the input's dtype (gt.nn.Linear(..., dtype=gt.{x.dtype}))" \
                if is_float(x.dtype) else ""
            raise TypeError(f"Linear({self.in_features}, {self.out_features}): the input (shape {x.shape}) is "
                            f"{x.dtype} but the layer's parameters are {self.weight.dtype}; convert the input "
                            f"(x.astype(gt.{self.weight.dtype})){other}")
        y = x @ self.weight.mT
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; indexable, iterable, with state_dict keys "0.weight", "1.bias", ...

    >>> import gradtape as gt
    >>> net = gt.nn.Sequential(gt.nn.Linear(4, 8), gt.nn.ReLU(), gt.nn.Linear(8, 2))
    >>> len(net), type(net[1]).__name__, net(gt.ones((5, 4), dtype=gt.float32)).shape
    (3, 'ReLU', (5, 2))
    """

    def __init__(self, *modules):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ReLU(Module):
    """max(x, 0) as a module.

    >>> import gradtape as gt
    >>> gt.nn.ReLU()(gt.asarray([-1.0, 2.0]))
    Tensor([0., 2.])
    """

    def forward(self, x):
        return relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) as a module.

    >>> import gradtape as gt
    >>> gt.nn.Sigmoid()(gt.asarray([0.0]))
    Tensor([0.5])
    """

    def forward(self, x):
        return sigmoid(x)


class Tanh(Module):
    """tanh as a module.

    >>> import gradtape as gt
    >>> gt.nn.Tanh()(gt.asarray([0.0]))
    Tensor([0.])
    """

    def forward(self, x):
        return tanh(x)


class Softplus(Module):
    """log(1 + exp(x)) as a module.

    >>> import gradtape as gt
    >>> gt.nn.Softplus()(gt.asarray([0.0]))
    Tensor([0.69314718])
    """

    def forward(self, x):
        return softplus(x)


class Identity(Module):
    """Returns its input.

    >>> import gradtape as gt
    >>> gt.nn.Identity()(gt.asarray([1.0]))
    Tensor([1.])
    """

    def forward(self, x):
        return x


class Flatten(Module):
    """Reshape (N, d1, d2, ...) to (N, d1·d2·...).

    >>> import gradtape as gt
    >>> gt.nn.Flatten()(gt.ones((2, 3, 4))).shape
    (2, 12)
    """

    def forward(self, x):
        return x.reshape((x.shape[0], -1))


class LogSoftmax(Module):
    """log_softmax along ``axis`` as a module.

    >>> import gradtape as gt
    >>> gt.nn.LogSoftmax()(gt.asarray([0.0, 0.0]))
    Tensor([-0.69314718, -0.69314718])
    """

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return log_softmax(x, axis=self.axis)


class Softmax(LogSoftmax):
    """softmax along ``axis`` as a module.

    >>> import gradtape as gt
    >>> gt.nn.Softmax()(gt.asarray([0.0, 0.0]))
    Tensor([0.5, 0.5])
    """

    def forward(self, x):
        return softmax(x, axis=self.axis)


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), in training mode only.

    Training mode: :attr:`Module.training` (``gt.record()`` turns it on by
    default, ``eval()`` pins it off; see :mod:`gradtape.nn.module`). Masks come from ``generator`` on the
    input's device.

    >>> import gradtape as gt
    >>> drop = gt.nn.Dropout(0.5, generator=0)
    >>> x = gt.ones((4,))
    >>> drop(x)                       # not training: the identity
    Tensor([1., 1., 1., 1.])
    >>> with gt.record():
    ...     y = drop(x)
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """

    def __init__(self, p=0.5, *, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must lie in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator if not isinstance(generator, int) else Generator(generator)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        x = x if isinstance(x, Tensor) else asarray(x)
        g, backend = resolve_generator(self.generator).stream(x.device)
        if self.p == 1.0:
            return x * 0.0
        keep = g.bernoulli(1.0 - self.p, x.shape, dtype_name(x.dtype)) * (1.0 / (1.0 - self.p))
        return x * wrap(keep, backend)

    def extra_repr(self):
        return f"p={self.p}"


class CrossEntropyLoss(Module):
    """Mean softmax cross-entropy of logits against integer labels or class probabilities (``gt.nn.cross_entropy``).

    >>> import gradtape as gt
    >>> gt.nn.CrossEntropyLoss()(gt.asarray([[0.0, 0.0]]), gt.asarray([1]))
    Tensor(0.69314718)
    """

    def forward(self, logits, target):
        return cross_entropy(logits, target)


class MSELoss(Module):
    """Mean squared error, mean((pred - target)²).

    >>> import gradtape as gt
    >>> gt.nn.MSELoss()(gt.asarray([1.0, 3.0]), gt.asarray([1.0, 1.0]))
    Tensor(2.)
    """

    def forward(self, pred, target):
        d = pred - target
        return mean(d * d)
