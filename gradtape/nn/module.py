"""Module, the base class of layers and models, and Parameter, the tensors a module trains.

A :class:`Module` holds parameters and sub-modules set as attributes, as in PyTorch:
``parameters()``/``named_parameters()``, ``zero_grad()``, ``train()``/``eval()``,
``state_dict()``/``load_state_dict()`` and ``save``/``load`` to ``.npz`` files.

Training mode: ``Dropout`` is active while ``module.training`` is true. A module
follows the global flag ``gt.is_training()`` (true inside ``gt.record()``, whose
``train_mode`` defaults to True, and inside ``gt.train_mode()``, as in MXNet) until
``train()``/``eval()`` pins it (PyTorch); ``train(None)`` makes it follow the global
flag again.
"""
from __future__ import annotations

import copy
import weakref
from collections import OrderedDict

from .. import _tree
from .. import backends
from .._api import asarray, to_numpy
from .._autodiff.modes import no_grad
from .._core.dispatch import wrap
from .._core.tensor import Tensor
from .._state import state
from ..backends import host        # .npz files (Module.save/load)
from .init import write_leaf

__all__ = ["Parameter", "Module", "StateDictKeyError"]


# ---- parameters ----------------------------------------------------------------------------------

_MARKED = weakref.WeakValueDictionary()     # id(tensor) -> tensor, for each tensor Parameter(...) returned


class ParameterMarker:
    """The type of ``gt.nn.Parameter``: ``Parameter(data)`` makes a parameter, ``isinstance(t, Parameter)`` finds one.

    ``Parameter(data, requires_grad=True)`` returns a fresh tracked leaf, a plain
    ``gt.Tensor`` (sharing ``data``'s memory when it is a backend array or a tensor),
    and marks it in a weak table, so that ``isinstance(t, gt.nn.Parameter)`` is true
    and a :class:`Module` registers it when it is set as an attribute.

    Design: ``Parameter`` is a documented marker, an instance of this plain class
    (isinstance asks its ``__instancecheck__``; no metaclass, nothing on Tensor), not a
    Tensor subclass. Parameters are the operands of most ops in a model, and the core's
    fast paths (``apply1``/``apply2`` in :mod:`gradtape._core.dispatch`) take only
    ``type(x) is Tensor``: a subclass would run every op on a weight through the
    generic ``apply``: measured +1 to +7 µs per op on 4×4 arrays (``w * x``, ``w @ x``,
    ``relu(w)``, recording or not; up to 3× slower). Here ``type(p) is gt.Tensor`` stays
    true and an op on a parameter costs exactly what it costs on any tensor. A copy
    (``p * 1``, ``p.detach()``, a pickle) is not a parameter. ``gt.nn.Parameter`` is not
    a class: it cannot be subclassed and is not for ``issubclass``.

    >>> import gradtape as gt
    >>> w = gt.nn.Parameter(gt.zeros((2, 3)))
    >>> type(w) is gt.Tensor, isinstance(w, gt.nn.Parameter), w.requires_grad, w.grad is None
    (True, True, True, True)
    >>> isinstance(w * 2, gt.nn.Parameter), isinstance(gt.nn.Parameter([1.0], requires_grad=False), gt.Tensor)
    (False, True)
    """

    def __call__(self, data, requires_grad=True):
        source = data if isinstance(data, Tensor) else asarray(data)
        t = wrap(source.data, source.backend)
        if requires_grad:
            t.requires_grad_()
        _MARKED[id(t)] = t
        return t

    def __instancecheck__(self, obj):
        return type(obj) is Tensor and _MARKED.get(id(obj)) is obj

    def __repr__(self):
        return "gradtape.nn.Parameter"


Parameter = ParameterMarker()


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
    >>> net(gt.ones((5, 4), dtype=gt.float32)).shape
    (5, 2)
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_pinned_training", None)

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
        for owner, m in mods:
            for name, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{owner}.{name}" if owner else name), p

    def parameters(self, recurse=True):
        """The parameters (each once), e.g. for an optimiser."""
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix=""):
        for owner, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                yield (f"{owner}.{name}" if owner else name), b

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
        return state.train if self._pinned_training is None else self._pinned_training

    def train(self, mode=True):
        """Pin training mode on (or off; ``None``: follow ``gt.is_training()``) for this module and its children."""
        if mode is not None:
            mode = bool(mode)
        for m in self.modules():
            object.__setattr__(m, "_pinned_training", mode)
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
                if p.device != backends.canonical_device(device):
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
                write_leaf(t, t.backend.xp.asarray(v.data, copy=True), "load_state_dict")
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
        host.save_npz(path, {k: to_numpy(v) for k, v in self.state_dict().items()})

    def load(self, path, strict=True):
        """Load an ``.npz`` file written by :meth:`save` (checked like :meth:`load_state_dict`); returns self."""
        self.load_state_dict(host.load_npz(path), strict=strict)
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




# ---- Module as a pytree node (gt.tree, the transforms) ----------------------------------------------
# A module's children are its parameters, in named_parameters() order, named by their dotted names. Its
# unflatten is a shallow copy of the module tree (every sub-module copied, buffers and other attributes
# shared) with the parameters replaced by the given values (plain tensors, not Parameters): callable like
# the original, so gt.grad(loss)(net) gives a module whose parameters are the gradients, by name.

class _ModuleDef:
    """A Module's aux data: the module (the template of an unflatten) and its parameter names; two compare
    equal when their module types and parameter names do, whatever the values."""

    __slots__ = ("module", "names", "key")

    def __init__(self, module, names):
        self.module, self.names = module, names
        self.key = (tuple((n, type(m)) for n, m in module.named_modules()), names)

    def __eq__(self, other):
        return isinstance(other, _ModuleDef) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return f"{type(self.module).__name__}{list(self.names)}"


def _flatten_module(m):
    named = list(m.named_parameters())
    return [p for _, p in named], _ModuleDef(m, tuple(n for n, _ in named))


def _unflatten_module(aux, children):
    new = {id(p): v for p, v in zip(aux.module.parameters(), children)}
    return _copy_module(aux.module, new, {})


def _copy_module(m, new, memo):
    if id(m) in memo:           # a sub-module used twice stays one module
        return memo[id(m)]
    c = memo[id(m)] = copy.copy(m)
    object.__setattr__(c, "_parameters", OrderedDict())
    object.__setattr__(c, "_modules", OrderedDict())
    object.__setattr__(c, "_buffers", OrderedDict(m._buffers))
    for name, p in m._parameters.items():
        c._parameters[name] = new.get(id(p), p)
        object.__setattr__(c, name, c._parameters[name])
    for name, sub in m._modules.items():
        c._modules[name] = _copy_module(sub, new, memo)
        object.__setattr__(c, name, c._modules[name])
    return c


_tree.register_pytree_node(Module, _flatten_module, _unflatten_module, subclasses=True,
                           keys=lambda m, aux, n: [f".{name}" for name in aux.names])
