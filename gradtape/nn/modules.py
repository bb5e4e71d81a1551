"""Modules, parameters, initialisers and random numbers; re-exported as ``gt.nn``.

A :class:`Module` holds :class:`Parameter` tensors and sub-modules set as
attributes, as in PyTorch; ``parameters()``/``named_parameters()``,
``zero_grad()``, ``train()``/``eval()``, ``state_dict()``/
``load_state_dict()`` and ``save``/``load`` to ``.npz`` files.

``Parameter(data)`` returns an ordinary ``gt.Tensor`` (a tracked leaf, so
every op on it takes the same fast path as any tensor) and marks it, so that
``isinstance(t, gt.nn.Parameter)`` is true and modules register it.

Training mode: ``Dropout`` is active while ``module.training`` is true. A
module follows the global flag ``gt.is_training()`` (true inside
``gt.record()``, whose ``train_mode`` defaults to True, and inside
``gt.train_mode()``, as in MXNet) until ``train()``/``eval()`` pins it
(PyTorch); ``train(None)`` makes it follow the global flag again.

Random numbers (initialisers, Dropout) come from a :class:`Generator` that
draws on the tensor's own backend (NumPy's PCG64 on the CPU and for
array-api-strict, cuRAND on CuPy); ``manual_seed(s)`` reseeds the default one.
"""
from __future__ import annotations

import math
import types
import weakref
from collections import OrderedDict

from .. import backends as _backends
from .. import nn as _nn        # this file is imported at the end of nn.py: its functions exist by then
from .._core.tensor import Tensor
from .._state import state
from .._core.dispatch import wrap
from .._api.namespace import asarray, _dtype_name, _is_float, get_default_device
from .._autodiff.modes import no_grad
from .._autodiff.custom import random_stream    # a checkpointed block's recomputation replays its draws

__all__ = ["Module", "Parameter", "Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Softplus", "Identity",
           "Flatten", "Dropout", "LogSoftmax", "Softmax", "CrossEntropyLoss", "MSELoss", "StateDictKeyError",
           "Generator", "manual_seed", "default_generator", "init", "calculate_gain", "xavier_uniform_", "xavier_normal_",
           "kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_", "zeros_", "ones_", "constant_"]


# ---- random numbers ----------------------------------------------------------------------------

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

    def _raw(self, device):
        bk = _backends.get(device if device is not None else get_default_device())
        g = self._per_device.get(bk.device)
        if g is None:
            g = self._per_device[bk.device] = bk.random(self.seed)
        return random_stream(self, bk.device, g), bk

    def normal(self, shape, *, mean=0.0, std=1.0, dtype=None, device=None):
        """Samples of N(mean, std²) (dtype: the default floating dtype unless given)."""
        g, bk = self._raw(device)
        return wrap(g.normal(_shape(shape), _fname(dtype, bk), mean, std), bk)

    def uniform(self, shape, *, low=0.0, high=1.0, dtype=None, device=None):
        """Samples of U[low, high)."""
        g, bk = self._raw(device)
        return wrap(g.uniform(_shape(shape), _fname(dtype, bk), low, high), bk)

    def bernoulli(self, p, shape, *, dtype=None, device=None):
        """1 with probability ``p``, else 0."""
        g, bk = self._raw(device)
        return wrap(g.bernoulli(p, _shape(shape), _fname(dtype, bk)), bk)

    def integers(self, low, high, shape, *, device=None):
        """int64 samples of {low, ..., high - 1}."""
        g, bk = self._raw(device)
        return wrap(g.integers(low, high, _shape(shape)), bk)

    def permutation(self, n, *, device=None):
        """A random permutation of range(n) (int64), e.g. to shuffle a data set each epoch."""
        g, bk = self._raw(device)
        return wrap(g.permutation(n), bk)


def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _fname(dtype, bk):
    if dtype is None:
        info = getattr(bk.raw, "__array_namespace_info__", None)
        return _dtype_name(info().default_dtypes()["real floating"]) if info is not None else "float64"
    name = _dtype_name(dtype)
    if name not in ("float32", "float64"):
        raise TypeError(f"gradtape.nn.Generator: random floats need dtype float32 or float64, got {dtype}")
    return name


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


def _gen(generator):
    if generator is None:
        return _default[0]
    if isinstance(generator, int):
        return Generator(generator)
    return generator


# ---- parameters ----------------------------------------------------------------------------------

_PARAMS = weakref.WeakValueDictionary()     # id -> tensor marked as a parameter


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        return type(obj) is Tensor and _PARAMS.get(id(obj)) is obj


class Parameter(metaclass=_ParameterMeta):
    """A tensor that a :class:`Module` registers: a fresh tracked leaf (``requires_grad_()``) marked as a parameter.

    The result is a plain ``gt.Tensor`` (sharing ``data``'s memory when it is a
    backend array or tensor); ``isinstance(p, gt.nn.Parameter)`` recognises it.

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.zeros((2, 3)))
    >>> type(w) is gt.Tensor, isinstance(w, gt.nn.Parameter), w.requires_grad, w.grad is None
    (True, True, True, True)
    """

    def __new__(cls, data, requires_grad=True):
        src = data if isinstance(data, Tensor) else asarray(data)
        t = wrap(src.data, src.backend)
        if requires_grad:
            t.requires_grad_()
        _PARAMS[id(t)] = t
        return t


# ---- initialisers ---------------------------------------------------------------------------------

def _fill(t, raw, what):
    """Write ``raw`` (a backend array of t's shape) into tensor ``t`` in place; returns t."""
    if not isinstance(t, Tensor):
        raise TypeError(f"gradtape.nn.init.{what}: expected a Tensor, got {type(t).__name__}")
    if t._node is not None:
        raise RuntimeError(f"gradtape.nn.init.{what}: the tensor (shape {t.shape}) is the result of a recorded "
                           f"operation, not a leaf; initialise parameters, not intermediate results")
    if tuple(raw.shape) != t.shape:
        raise ValueError(f"gradtape.nn.init.{what}: values of shape {tuple(raw.shape)} for a tensor of shape "
                         f"{t.shape}")
    t.data = raw
    t._version += 1          # graphs that saved the old values see the change
    return t


def _float_name(t, what):
    if not _is_float(t.dtype):
        raise TypeError(f"gradtape.nn.init.{what}: needs a floating-point tensor, got dtype {t.dtype} "
                        f"(shape {t.shape})")
    return _dtype_name(t.dtype)


def _fans(t, what):
    if t.ndim < 2:
        raise ValueError(f"gradtape.nn.init.{what}: fan in and fan out need a tensor of at least 2 dimensions "
                         f"(out_features, in_features, ...), got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """Recommended gain for an activation (PyTorch's table).

    >>> import gradtape as gt
    >>> round(gt.nn.init.calculate_gain("relu"), 4)
    1.4142
    """
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"gradtape.nn.init.calculate_gain: unknown nonlinearity {nonlinearity!r}")


def uniform_(t, low=0.0, high=1.0, *, generator=None):
    """Fill ``t`` in place with U[low, high) samples drawn on its device.

    >>> import gradtape as gt
    >>> w = gt.nn.init.uniform_(gt.zeros((100,)), -1.0, 1.0, generator=0)
    >>> bool(gt.all(gt.abs(w) <= 1.0))
    True
    """
    g, _ = _gen(generator)._raw(t.device)
    return _fill(t, g.uniform(t.shape, _float_name(t, "uniform_"), low, high), "uniform_")


def normal_(t, mean=0.0, std=1.0, *, generator=None):
    """Fill ``t`` in place with N(mean, std²) samples drawn on its device.

    >>> import gradtape as gt
    >>> gt.nn.init.normal_(gt.zeros((2, 2)), generator=0).shape
    (2, 2)
    """
    g, _ = _gen(generator)._raw(t.device)
    return _fill(t, g.normal(t.shape, _float_name(t, "normal_"), mean, std), "normal_")


def constant_(t, value):
    """Fill ``t`` in place with ``value``.

    >>> import gradtape as gt
    >>> gt.nn.init.constant_(gt.zeros((2,)), 0.5)
    Tensor([0.5, 0.5])
    """
    return _fill(t, t.backend.xp.full(t.data.shape, value, dtype=t.data.dtype), "constant_")


def zeros_(t):
    """Fill ``t`` in place with zeros.

    >>> import gradtape as gt
    >>> gt.nn.init.zeros_(gt.ones((2,)))
    Tensor([0., 0.])
    """
    return _fill(t, t.backend.xp.zeros_like(t.data), "zeros_")


def ones_(t):
    """Fill ``t`` in place with ones.

    >>> import gradtape as gt
    >>> gt.nn.init.ones_(gt.zeros((2,)))
    Tensor([1., 1.])
    """
    return _fill(t, t.backend.xp.ones_like(t.data), "ones_")


def xavier_uniform_(t, gain=1.0, *, generator=None):
    """Glorot/Xavier uniform: U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)); shape (out, in, ...).

    >>> import gradtape as gt
    >>> w = gt.nn.init.xavier_uniform_(gt.zeros((30, 20)), generator=0)
    >>> bool(gt.max(gt.abs(w)) <= (6 / 50) ** 0.5)
    True
    """
    fan_in, fan_out = _fans(t, "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, generator=generator)


def xavier_normal_(t, gain=1.0, *, generator=None):
    """Glorot/Xavier normal: N(0, std²) with std = gain·sqrt(2 / (fan_in + fan_out)).

    >>> import gradtape as gt
    >>> gt.nn.init.xavier_normal_(gt.zeros((30, 20)), generator=0).shape
    (30, 20)
    """
    fan_in, fan_out = _fans(t, "xavier_normal_")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)


def _kaiming_std(t, a, mode, nonlinearity, what):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"gradtape.nn.init.{what}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t, what)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, generator=None):
    """He/Kaiming uniform: U(-b, b) with b = gain·sqrt(3 / fan) (``a``: leaky_relu slope).

    >>> import gradtape as gt
    >>> w = gt.nn.init.kaiming_uniform_(gt.zeros((30, 20)), nonlinearity="relu", generator=0)
    >>> bool(gt.max(gt.abs(w)) <= (6 / 20) ** 0.5)
    True
    """
    b = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(t, -b, b, generator=generator)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, generator=None):
    """He/Kaiming normal: N(0, std²) with std = gain / sqrt(fan).

    >>> import gradtape as gt
    >>> gt.nn.init.kaiming_normal_(gt.zeros((30, 20)), nonlinearity="relu", generator=0).shape
    (30, 20)
    """
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"), generator=generator)


init = types.SimpleNamespace(
    calculate_gain=calculate_gain, uniform_=uniform_, normal_=normal_, constant_=constant_, zeros_=zeros_,
    ones_=ones_, xavier_uniform_=xavier_uniform_, xavier_normal_=xavier_normal_,
    kaiming_uniform_=kaiming_uniform_, kaiming_normal_=kaiming_normal_)
init.__doc__ = "Initialisers (PyTorch names), also available directly in gt.nn."


# ---- Module --------------------------------------------------------------------------------------

class Module:
    """Base class of layers and models: set Parameters and Modules as attributes, define ``forward``.

    >>> import gradtape as gt
    >>> class Net(gt.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = gt.nn.Linear(4, 8)
    ...         self.out = gt.nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(gt.nn.relu(self.hidden(x)))
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    >>> net(gt.ones((5, 4))).shape
    (5, 2)
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_mode", None)

    # attributes: parameters and sub-modules are kept in the instance dict too, so reading them is plain
    # attribute access (no __getattr__ on the hot path)
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before setting attributes")
        if name in self._buffers and isinstance(value, Tensor):
            self._buffers[name] = value           # assigning to a buffer keeps it a buffer (running statistics)
            object.__setattr__(self, name, value)
            return
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """A tensor saved in the state_dict that is not a parameter (not trained)."""
        t = tensor if isinstance(tensor, Tensor) else asarray(tensor)
        object.__setattr__(self, name, t)
        self._buffers[name] = t

    def register_parameter(self, name, param):
        """Register ``param`` (made a Parameter if it is not one) under ``name``."""
        setattr(self, name, param if isinstance(param, Parameter) else Parameter(param))

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # traversal
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) pairs, each parameter once."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mp}.{name}" if mp else name), p

    def parameters(self, recurse=True):
        """The parameters (each once), e.g. for an optimiser."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix=""):
        for mp, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                yield (f"{mp}.{name}" if mp else name), b

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of all parameters (None, or zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    # training mode
    @property
    def training(self):
        """True when Dropout and the like are active: ``train()``/``eval()`` if called, else ``gt.is_training()``."""
        return state.train if self._mode is None else self._mode

    def train(self, mode=True):
        """Pin training mode on (or off; ``None``: follow ``gt.is_training()``) for this module and its children."""
        if mode is not None:
            mode = bool(mode)
        for m in self.modules():
            object.__setattr__(m, "_mode", mode)
        return self

    def eval(self):
        """Pin evaluation mode (Dropout off) for this module and its children."""
        return self.train(False)

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module and this one (children first); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # devices and dtypes
    def to_device(self, device):
        """Move every parameter and buffer to ``device`` (new leaf tensors; build optimisers afterwards)."""
        for m in self.modules():
            for name, p in list(m._parameters.items()):
                if p.device != _backends.canonical_device(device):
                    setattr(m, name, Parameter(p.to_device(device).detach(), requires_grad=p.requires_grad))
            for name, b in list(m._buffers.items()):
                m.register_buffer(name, b.to_device(device))
        return self

    to = to_device

    # state
    def state_dict(self):
        """name -> a copy of each parameter and buffer (untracked tensors on their devices).

        >>> import gradtape as gt
        >>> list(gt.nn.Linear(3, 2).state_dict())
        ['weight', 'bias']
        """
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = wrap(p.backend.xp.asarray(p.data, copy=True), p.backend)
        for name, b in self.named_buffers():
            out[name] = wrap(b.backend.xp.asarray(b.data, copy=True), b.backend)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters and buffers in place (each keeps its device and dtype).

        Everything is checked before anything is written: with ``strict`` a
        missing or unexpected key is a ``KeyError``; a shape that differs is
        a ``ValueError`` in any case; both name every offending key.

        >>> import gradtape as gt
        >>> a, b = gt.nn.Linear(3, 2), gt.nn.Linear(3, 2)
        >>> b.load_state_dict(a.state_dict())
        >>> bool(gt.all(a.weight == b.weight))
        True
        """
        own = OrderedDict(list(self.named_parameters()) + list(self.named_buffers()))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise StateDictKeyError(
                f"{type(self).__name__}.load_state_dict: "
                + (f"missing keys {missing}" if missing else "")
                + ("; " if missing and unexpected else "")
                + (f"unexpected keys {unexpected}" if unexpected else "")
                + f" (the module has {list(own)})")
        bad = []
        new = {}
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            shape = tuple(getattr(v, "shape", ()))
            if shape != t.shape:
                bad.append(f"{k}: expected shape {t.shape}, got {shape}")
                continue
            v = v.detach() if isinstance(v, Tensor) else asarray(v)
            v = asarray(v, device=t.device)
            if v.dtype != t.dtype:
                v = v.astype(t.dtype)
            new[k] = v
        if bad:
            raise ValueError(f"{type(self).__name__}.load_state_dict: shape mismatch for " + "; ".join(bad))
        with no_grad():
            for k, v in new.items():
                t = own[k]
                _fill(t, t.backend.xp.asarray(v.data, copy=True), "load_state_dict")
        return None

    def save(self, path):
        """Write the state_dict to an ``.npz`` file (values copied to the host).

        >>> import gradtape as gt, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
        >>> a = gt.nn.Linear(3, 2); a.save(path)
        >>> b = gt.nn.Linear(3, 2).load(path)
        >>> bool(gt.all(a.weight == b.weight))
        True
        """
        from .._api.namespace import to_numpy
        from ..backends import numpy_backend
        numpy_backend.save_npz(path, {k: to_numpy(v) for k, v in self.state_dict().items()})

    def load(self, path, strict=True):
        """Load an ``.npz`` file written by :meth:`save` (checked like :meth:`load_state_dict`); returns self."""
        from ..backends import numpy_backend
        self.load_state_dict(numpy_backend.load_npz(path), strict=strict)
        return self

    # printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class StateDictKeyError(KeyError):
    """A state_dict lacks keys the module has, or has keys it does not (message readable, unlike KeyError's)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


# ---- layers ----------------------------------------------------------------------------------------

class Linear(Module):
    """y = x @ weight.mT + bias; weight of shape (out_features, in_features) as in PyTorch.

    Both are initialised from U(-1/sqrt(in_features), 1/sqrt(in_features))
    (PyTorch's default), drawn on ``device`` by ``generator`` (an int seed, a
    :class:`Generator`, or the default one). ``dtype`` defaults to the
    backend's default floating dtype (float64 with NumPy).

    >>> import gradtape as gt
    >>> lin = gt.nn.Linear(3, 2, dtype=gt.float32, generator=0)
    >>> lin.weight.shape, lin.bias.shape, lin(gt.ones((4, 3), dtype=gt.float32)).dtype
    ((2, 3), (2,), float32)
    """

    def __init__(self, in_features, out_features, bias=True, *, device=None, dtype=None, generator=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        g = _gen(generator)
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(g.uniform((out_features, in_features), low=-bound, high=bound, dtype=dtype,
                                          device=device))
        self.bias = Parameter(g.uniform((out_features,), low=-bound, high=bound, dtype=dtype, device=device)) \
            if bias else None

    def forward(self, x):
        y = x @ self.weight.mT
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; indexable, iterable, with state_dict keys "0.weight", "1.bias", ...

    >>> import gradtape as gt
    >>> net = gt.nn.Sequential(gt.nn.Linear(4, 8), gt.nn.ReLU(), gt.nn.Linear(8, 2))
    >>> len(net), type(net[1]).__name__, net(gt.ones((5, 4))).shape
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


def _activation(name, fn, doc):
    cls = type(name, (Module,), {"forward": lambda self, x: fn(x), "__doc__": doc})
    cls.__module__ = __name__
    return cls


def _relu(x):
    return _nn.relu(x)


def _sigmoid(x):
    return _nn.sigmoid(x)


def _softplus(x):
    return _nn.softplus(x)


def _tanh(x):
    from .._api import tanh
    return tanh(x)


ReLU = _activation("ReLU", _relu, "max(x, 0) as a module.\n\n>>> import gradtape as gt\n"
                   ">>> gt.nn.ReLU()(gt.asarray([-1.0, 2.0]))\nTensor([0., 2.])\n")
Sigmoid = _activation("Sigmoid", _sigmoid, "1 / (1 + exp(-x)) as a module.\n\n>>> import gradtape as gt\n"
                      ">>> gt.nn.Sigmoid()(gt.asarray([0.0]))\nTensor([0.5])\n")
Tanh = _activation("Tanh", _tanh, "tanh as a module.\n\n>>> import gradtape as gt\n"
                   ">>> gt.nn.Tanh()(gt.asarray([0.0]))\nTensor([0.])\n")
Softplus = _activation("Softplus", _softplus, "log(1 + exp(x)) as a module.\n\n>>> import gradtape as gt\n"
                       ">>> gt.nn.Softplus()(gt.asarray([0.0]))\nTensor([0.69314718])\n")
Identity = _activation("Identity", lambda x: x, "Returns its input.\n\n>>> import gradtape as gt\n"
                       ">>> gt.nn.Identity()(gt.asarray([1.0]))\nTensor([1.])\n")


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
        return _nn.log_softmax(x, axis=self.axis)


class Softmax(LogSoftmax):
    """softmax along ``axis`` as a module.

    >>> import gradtape as gt
    >>> gt.nn.Softmax()(gt.asarray([0.0, 0.0]))
    Tensor([0.5, 0.5])
    """

    def forward(self, x):
        return _nn.softmax(x, axis=self.axis)


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), in training mode only.

    Training mode: see the module docstring (``gt.record()`` turns it on by
    default, ``eval()`` pins it off). Masks come from ``generator`` on the
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
        g, bk = _gen(self.generator)._raw(x.device)
        if self.p == 1.0:
            return x * 0.0
        keep = g.bernoulli(1.0 - self.p, x.shape, _dtype_name(x.dtype)) * (1.0 / (1.0 - self.p))
        return x * wrap(keep, bk)

    def extra_repr(self):
        return f"p={self.p}"


class CrossEntropyLoss(Module):
    """Mean softmax cross-entropy of logits against integer labels or class probabilities (``gt.nn.cross_entropy``).

    >>> import gradtape as gt
    >>> gt.nn.CrossEntropyLoss()(gt.asarray([[0.0, 0.0]]), gt.asarray([1]))
    Tensor(0.69314718)
    """

    def forward(self, logits, target):
        return _nn.cross_entropy(logits, target)


class MSELoss(Module):
    """Mean squared error, mean((pred - target)²).

    >>> import gradtape as gt
    >>> gt.nn.MSELoss()(gt.asarray([1.0, 3.0]), gt.asarray([1.0, 1.0]))
    Tensor(2.)
    """

    def forward(self, pred, target):
        from .._api.namespace import mean
        d = pred - target
        return mean(d * d)
