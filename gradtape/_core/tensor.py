"""The :class:`Tensor` class: an array of some backend that records the operations on it.

Everything a Tensor does is written in the class body below. Operators run primitives through the
dispatch functions and the registry (``hooks.apply2(PRIMS.add, self, other)``); methods that are
array-API functions call them through ``hooks.API`` (the namespace, filled by :mod:`gradtape._api`);
``backward`` goes to :mod:`gradtape._autodiff.tape` through ``hooks.backward``.

In-place operators and ``__setitem__`` compute the result and rebind the tensor to it, bumping its
version, so a value saved by the graph is never overwritten behind its back; a backward through a node
that saved the old value raises ``RuntimeError``. On a view or a tensor with views the write reaches
every alias, with autograd's history rewritten as PyTorch's CopySlices (:mod:`gradtape._core.views`).
A leaf parameter updated under ``no_grad`` (``p -= lr * p.grad``) is updated truly in place, as
PyTorch does.

Size: ~810 lines: the array object is one class of ~100 members, written in its body on purpose (so that grep
and an IDE find every operator and method), plus the in-place and retain_grad helpers it uses.
"""
from __future__ import annotations

import math
import operator
import sys
import threading
import warnings
import weakref

from .._state import state
from ..backends import host as _host
from . import hooks
from .dtypes import dtype_of, is_float
from .primitive import PRIMS, Primitive

__all__ = ["Tensor", "new_tensor", "check_float", "rebind"]

_new = object.__new__


def new_tensor(data, backend, base=None):
    """A fresh untracked Tensor around raw ``data`` of ``backend`` (the one place its fields are set);
    ``base``: the tensor whose memory ``data`` may share (its version counter is shared)."""
    t = _new(Tensor)
    t.data = data
    t.backend = backend
    t._node = None
    t._requires_grad = False
    t._grad = None
    t._grad_req = None
    t._version = 0
    t.tangents = None
    t._base = base
    return t


def check_float(x, what):
    """TypeError unless ``x`` (a Tensor) is floating point (real or complex): only those are differentiated. A
    complex leaf's ``.grad`` is in PyTorch's convention (README "Complex numbers")."""
    if not is_float(x.dtype):
        raise TypeError(f"gradtape.{what}: gradients need a floating-point tensor, got dtype {x.dtype} "
                        f"(shape {x.shape}); convert with .astype(gt.float64) first")


def _rebuild(values, device, dtype, requires_grad):
    t = hooks.API.asarray(values, device=device, dtype=dtype)
    return t.requires_grad_() if requires_grad else t


def _comparable(other):
    return other is not None and (isinstance(other, (Tensor, int, float, complex)) or hasattr(other, "shape"))


class Tensor:
    """An array of some backend (``.data``) that records the operations on it.

    ``gt.Tensor`` implements the array API array object; create one with :func:`gradtape.asarray`.
    Fields: ``data`` (the backend array), ``backend`` (a :class:`gradtape.backends.Backend`: library and
    device), ``tangents`` (forward-mode tangents by jvp level, or None), and behind properties the
    recording state (``requires_grad``, ``grad``, ``grad_req``, ``is_leaf``).

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0, 2.0])
    >>> x.requires_grad_()
    Tensor([1., 2.], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    Tensor([2., 4.])
    """

    # _vfn and _views (views and their roots, gradtape._core.views) stay unset on plain tensors
    __slots__ = ("data", "backend", "_node", "_requires_grad", "_grad", "_grad_req", "_version", "tangents",
                 "_base", "_vfn", "_views", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __init__(self, obj, dtype=None, device=None, copy=None):
        src = hooks.API.asarray(obj, dtype=dtype, device=device, copy=copy)
        for s in Tensor.__slots__[:9]:
            setattr(self, s, getattr(src, s))

    # ---- attributes ---------------------------------------------------------------------------------
    @property
    def dtype(self):
        """Data type (a gradtape dtype)."""
        return dtype_of(self.data.dtype)

    @property
    def device(self):
        """Device string: 'cpu', 'cuda:N' or 'strict'."""
        return self.backend.device

    @property
    def shape(self):
        """Shape tuple."""
        return tuple(self.data.shape)

    @property
    def ndim(self):
        """Number of dimensions."""
        return self.data.ndim

    @property
    def size(self):
        """Number of elements."""
        n = self.data.size
        return n if isinstance(n, int) else int(math.prod(self.data.shape))

    @property
    def T(self):
        """Transpose (at most 2 dimensions)."""
        if self.ndim > 2:
            raise ValueError(f".T needs a tensor of at most 2 dimensions, got shape {self.shape}; use .mT")
        return hooks.API.permute_dims(self, (1, 0)) if self.ndim == 2 else self

    @property
    def mT(self):
        """Transpose of the last two axes."""
        return hooks.API.matrix_transpose(self)

    # ---- recording state --------------------------------------------------------------------------
    @property
    def requires_grad(self):
        """Whether operations on this tensor are recorded."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    @property
    def grad(self):
        """Accumulated gradient (a Tensor of this shape, dtype and device) or None.

        A non-leaf has one only after :meth:`retain_grad`; reading it otherwise warns, as PyTorch does."""
        g = self._grad
        if g is None and self._node is not None and self._requires_grad and not _retains(self):
            warnings.warn("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                          "attribute won't be populated during backward(). If you indeed want the .grad field to be "
                          "populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
                          "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead "
                          "(gradtape follows PyTorch here).", UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, g):
        if g is not None:
            if not isinstance(g, Tensor):
                raise TypeError(f"gradtape: .grad must be a Tensor or None, got {type(g).__name__}")
            if g.backend is not self.backend:
                raise TypeError(f"gradtape: .grad on {g.device!r} ({g.backend.name}) assigned to a tensor on "
                                f"{self.device!r} ({self.backend.name}); move it with .to_device(...) first")
            if tuple(g.data.shape) != tuple(self.data.shape):
                raise ValueError(f"gradtape: .grad of shape {g.shape} assigned to a tensor of shape {self.shape}; "
                                 f"they must match")
            if g.data.dtype != self.data.dtype:
                raise TypeError(f"gradtape: .grad of dtype {g.dtype} assigned to a tensor of dtype {self.dtype}; "
                                f"they must match (convert with .astype first)")
        self._grad = g

    @property
    def is_leaf(self):
        """True unless the tensor came from a recorded op."""
        return self._node is None

    @property
    def grad_req(self):
        """MXNet grad_req of a leaf: "write", "add" or "null"."""
        return self._grad_req if self._requires_grad else "null"

    def attach_grad(self, grad_req="write", stype=None):
        """MXNet: allocate ``.grad`` (zeros) and track this tensor.

        grad_req "write" overwrites ``.grad`` on each backward, "add" accumulates, "null" stops tracking.

        >>> import gradtape as gt
        >>> x = gt.asarray([1.0, 2.0]); x.attach_grad()
        >>> with gt.record(): y = (x * x).sum()
        >>> y.backward(); x.grad
        Tensor([2., 4.])
        """
        if grad_req not in ("write", "add", "null"):
            raise ValueError(f"attach_grad: grad_req must be 'write', 'add' or 'null', got {grad_req!r}")
        if grad_req == "null":
            self._requires_grad = False
            self._grad_req = None
            self._grad = None
            return
        check_float(self, "attach_grad")
        self._node = None
        self._requires_grad = True
        self._grad_req = grad_req
        self._grad = new_tensor(self.backend.xp.zeros_like(self.data), self.backend)

    def requires_grad_(self, requires_grad=True):
        """PyTorch: track this tensor; ``.grad`` stays None until a backward, then accumulates.

        >>> import gradtape as gt
        >>> x = gt.asarray(3.0).requires_grad_()
        >>> (x * x).backward(); x.grad
        Tensor(6.)
        """
        if not requires_grad:
            if self._node is not None:
                raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
            self._requires_grad = False
            self._grad_req = None
            return self
        check_float(self, "requires_grad_")
        if self._node is None:
            self._requires_grad = True
            self._grad_req = "add"
        return self

    def retain_grad(self):
        """PyTorch: let ``backward()`` fill (and accumulate into) the ``.grad`` of this non-leaf tensor.

        >>> import gradtape as gt
        >>> x = gt.asarray([1.0, 2.0]).requires_grad_()
        >>> h = x * x; h.retain_grad()
        >>> (3 * h).sum().backward(); h.grad
        Tensor([3., 3.])
        """
        if not self._requires_grad:
            raise RuntimeError(f"retain_grad(): the tensor (shape {self.shape}) does not require grad, so no "
                               f"gradient reaches it; call requires_grad_() on the inputs first")
        n = self._node
        if n is None or _retains(self):
            return             # a leaf keeps its .grad anyway
        n.prim = _retaining(n.prim, weakref.ref(self))

    @property
    def retains_grad(self):
        """Whether :meth:`retain_grad` was called on this non-leaf tensor."""
        return self._node is not None and _retains(self)

    def detach(self):
        """A new untracked tensor sharing this one's data.

        >>> import gradtape as gt
        >>> gt.asarray([1.0]).requires_grad_().detach().requires_grad
        False
        """
        return new_tensor(self.data, self.backend, self)   # in-place updates of self invalidate what saved it

    def zero_(self):
        """Set every element to 0 (in place, value semantics).

        >>> import gradtape as gt
        >>> gt.ones(2).zero_()
        Tensor([0., 0.])
        """
        if _in_family(self):
            hooks.write(self, new_tensor(self.backend.xp.zeros_like(self.data), self.backend), "zero_")
            return self
        self.data = self.backend.xp.zeros_like(self.data)
        self._version += 1
        return self

    def backward(self, head=None, retain_graph=False, create_graph=False, train_mode=True):
        """Back-propagate from this tensor; a non-scalar is seeded with ones (the gradient of its sum).

        >>> import gradtape as gt
        >>> x = gt.asarray([1.0, 2.0]); x.attach_grad()
        >>> with gt.record(): y = 2 * x
        >>> y.backward(); x.grad
        Tensor([2., 2.])
        """
        outer = getattr(_PASS, "pending", None)
        _PASS.pending = pending = {}      # the retained non-leaf gradients, written once the pass succeeded
        try:
            hooks.backward([self], None if head is None else [head], retain_graph=retain_graph,
                           create_graph=create_graph)
        finally:
            _PASS.pending = outer
        for t, ct in pending.values():
            _accumulate(t, ct)

    # ---- conversion ---------------------------------------------------------------------------------
    def item(self):
        """The single element as a Python scalar.

        >>> import gradtape as gt
        >>> gt.asarray([2.5]).item()
        2.5
        """
        if self.size != 1:
            raise ValueError(f"item(): the tensor has {self.size} elements (shape {self.shape}), not 1")
        out = self.backend.to_numpy(self.data).item()
        if state.tracer is not None:        # a Python value read while tracing: the graph depends on it
            state.tracer.guard(self, "item", out)
        return out

    def tolist(self):
        """Nested Python lists.

        >>> import gradtape as gt
        >>> gt.asarray([1.0, 2.0]).tolist()
        [1.0, 2.0]
        """
        out = self.backend.to_numpy(self.data).tolist()
        if state.tracer is not None:
            state.tracer.guard(self, "tolist", out)
        return out

    def numpy(self):
        """PyTorch: the values as a NumPy array (sharing memory on the CPU); a tensor that requires grad
        refuses, as in PyTorch: writing into the array would change what its gradient reads.

        >>> import gradtape as gt
        >>> gt.asarray([1.0, 2.0]).requires_grad_().detach().numpy().tolist()
        [1.0, 2.0]
        """
        if self._requires_grad:
            raise RuntimeError(f"Can't call numpy() on Tensor that requires grad (shape {self.shape}). Use "
                               f"tensor.detach().numpy() instead")
        return hooks.API.to_numpy(self)

    def asnumpy(self):
        """MXNet: a NumPy copy of the values (allowed with a gradient attached, as in MXNet)."""
        return hooks.API.to_numpy(self).copy()

    def to_device(self, device, /, *, stream=None):
        """This tensor on ``device`` (differentiable).

        >>> import gradtape as gt
        >>> gt.ones(2).to_device("cpu").device
        'cpu'
        """
        return hooks.API.to_device(self, device, stream=stream)

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad:
            raise RuntimeError(f"gradtape: converting a tensor that requires grad (shape {self.shape}) to a NumPy "
                               f"array would drop its graph; use gt.to_numpy(x.detach()) if that is what you want. "
                               f"To keep the graph, use gradtape functions (gt.sin, gt.sum...) or the NumPy "
                               f"functions that dispatch to them (np.sin(x), np.sum(x), np.dot(W, x)...)")
        a = self.backend.to_numpy(self.data)
        return a.astype(dtype) if dtype is not None else a

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on tensors run gradtape's functions (``np.sin(x)``): see gradtape/_api/numpy_protocol.py."""
        f = getattr(hooks.API, "numpy_ufunc", None)
        if f is not None:
            return f(ufunc, method, inputs, kwargs)
        name = "pow" if ufunc.__name__ == "power" else ufunc.__name__
        same = getattr(hooks.API, name, None) if method == "__call__" and not kwargs else None
        if same is not None:        # numpy_protocol not registered: the ufuncs gradtape spells alike
            return same(*inputs)
        values = [x.__array__() if isinstance(x, Tensor) else x for x in inputs + kwargs.pop("out", ())]
        out = {"out": tuple(values[len(inputs):])} if len(values) > len(inputs) else {}   # not registered: values
        return getattr(ufunc, method)(*values[:len(inputs)], **kwargs, **out)

    def __array_function__(self, func, types, args, kwargs):
        """NumPy functions on tensors run gradtape's (``np.sum(x)``, ``np.dot(W, x)``): see numpy_protocol.py."""
        f = getattr(hooks.API, "numpy_function", None)
        if f is not None:
            return f(func, types, args, kwargs)
        return getattr(func, "_implementation", func)(*args, **kwargs)

    def __array_namespace__(self, api_version=None):
        return sys.modules[__name__.partition(".")[0]]      # the gradtape package

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        kw = {k: v for k, v in (("stream", stream), ("max_version", max_version), ("dl_device", dl_device),
                                ("copy", copy)) if v is not None}
        try:
            return self.data.__dlpack__(**kw)
        except TypeError:
            return self.data.__dlpack__(stream=stream) if stream is not None else self.data.__dlpack__()

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    # (while gt.trace/gt.jit traces, a Python value read from a tensor is recorded as a guard of the graph)
    def __bool__(self):
        out = bool(self.data)
        if state.tracer is not None:
            state.tracer.guard(self, "bool", out)
        return out

    def __float__(self):
        out = float(self.data)
        if state.tracer is not None:
            state.tracer.guard(self, "float", out)
        return out

    def __int__(self):
        out = int(self.data)
        if state.tracer is not None:
            state.tracer.guard(self, "int", out)
        return out

    def __complex__(self):
        out = complex(self.data)
        if state.tracer is not None:
            state.tracer.guard(self, "complex", out)
        return out

    def __index__(self):
        out = self.data.__index__()
        if state.tracer is not None:
            state.tracer.guard(self, "index", out)
        return out

    def __repr__(self):
        try:
            body = _host.array_repr(self.backend.to_numpy(self.data))
        except Exception:  # pragma: no cover - printing must never fail
            body = repr(self.data)
        body = "Tensor(" + body[6:].replace("\n", "\n ") if body.startswith("array(") else f"Tensor({body})"
        extra = []
        if self.backend.device != "cpu":
            extra.append(f"device={self.backend.device!r}")
        if self._requires_grad:
            extra.append("requires_grad=True")
        if extra:
            body = body[:-1] + ", " + ", ".join(extra) + ")"
        return body

    __str__ = __repr__

    def __format__(self, spec):
        """``f"{loss:.3f}"``: a tensor of one element formats as its Python scalar; a larger one only with the
        empty spec (its repr)."""
        if not spec and self.ndim:
            return repr(self)
        if self.size == 1:          # as NumPy formats its scalar of this dtype (np.float32(x).__format__...)
            return format(self.backend.to_numpy(self.data).reshape(())[()], spec)
        raise TypeError(f"unsupported format string {spec!r} for a gradtape Tensor of shape {self.shape} "
                        f"({self.size} elements); format its elements: x.item() for one, gt.to_numpy(x) for an "
                        f"array (np.array2string, np.format_float_positional)")

    def __reduce__(self):
        """Pickling and ``copy.deepcopy``: values, device, dtype and requires_grad of a leaf (PyTorch's rule)."""
        if self._node is not None:
            raise RuntimeError("gradtape: only leaf tensors (not results of recorded operations) can be pickled "
                               "or deep-copied; use .detach() first")
        return _rebuild, (hooks.API.to_numpy(self), self.device, self.dtype.name,
                          self._requires_grad and self._grad_req is not None)

    __hash__ = object.__hash__

    # ---- arithmetic operators: primitives straight from the registry ----------------------------
    def __add__(self, other):
        return hooks.apply2(PRIMS.add, self, other)

    def __radd__(self, other):
        return hooks.apply2(PRIMS.add, other, self)

    def __sub__(self, other):
        return hooks.apply2(PRIMS.subtract, self, other)

    def __rsub__(self, other):
        return hooks.apply2(PRIMS.subtract, other, self)

    def __mul__(self, other):
        return hooks.apply2(PRIMS.multiply, self, other)

    def __rmul__(self, other):
        return hooks.apply2(PRIMS.multiply, other, self)

    def __truediv__(self, other):
        return hooks.apply2(PRIMS.divide, self, other)

    def __rtruediv__(self, other):
        return hooks.apply2(PRIMS.divide, other, self)

    def __pow__(self, other):
        return hooks.apply2(PRIMS.pow, self, other)

    def __rpow__(self, other):
        return hooks.apply2(PRIMS.pow, other, self)

    def __mod__(self, other):
        return hooks.apply2(PRIMS.remainder, self, other)

    def __rmod__(self, other):
        return hooks.apply2(PRIMS.remainder, other, self)

    def __neg__(self):
        return hooks.apply1(PRIMS.negative, self)

    def __pos__(self):
        return hooks.apply1(PRIMS.positive, self)

    def __abs__(self):
        return hooks.API.abs(self)

    def __matmul__(self, other):
        return hooks.API.matmul(self, other)

    def __rmatmul__(self, other):
        return hooks.API.matmul(other, self)

    # ---- non-differentiable operators -------------------------------------------------------------
    def __floordiv__(self, other):
        return hooks.API.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return hooks.API.floor_divide(other, self)

    def __and__(self, other):
        return hooks.API.bitwise_and(self, other)

    def __rand__(self, other):
        return hooks.API.bitwise_and(other, self)

    def __or__(self, other):
        return hooks.API.bitwise_or(self, other)

    def __ror__(self, other):
        return hooks.API.bitwise_or(other, self)

    def __xor__(self, other):
        return hooks.API.bitwise_xor(self, other)

    def __rxor__(self, other):
        return hooks.API.bitwise_xor(other, self)

    def __lshift__(self, other):
        return hooks.API.bitwise_left_shift(self, other)

    def __rlshift__(self, other):
        return hooks.API.bitwise_left_shift(other, self)

    def __rshift__(self, other):
        return hooks.API.bitwise_right_shift(self, other)

    def __rrshift__(self, other):
        return hooks.API.bitwise_right_shift(other, self)

    def __invert__(self):
        return hooks.API.bitwise_invert(self)

    def __eq__(self, other):
        return hooks.API.equal(self, other) if _comparable(other) else NotImplemented

    def __ne__(self, other):
        return hooks.API.not_equal(self, other) if _comparable(other) else NotImplemented

    def __lt__(self, other):
        return hooks.API.less(self, other) if _comparable(other) else NotImplemented

    def __le__(self, other):
        return hooks.API.less_equal(self, other) if _comparable(other) else NotImplemented

    def __gt__(self, other):
        return hooks.API.greater(self, other) if _comparable(other) else NotImplemented

    def __ge__(self, other):
        return hooks.API.greater_equal(self, other) if _comparable(other) else NotImplemented

    # ---- in-place operators -------------------------------------------------------------------------
    def __iadd__(self, other):
        return _update(self, other, Tensor.__add__, operator.iadd, "__iadd__")

    def __isub__(self, other):
        return _update(self, other, Tensor.__sub__, operator.isub, "__isub__")

    def __imul__(self, other):
        return _update(self, other, Tensor.__mul__, operator.imul, "__imul__")

    def __itruediv__(self, other):
        return _update(self, other, Tensor.__truediv__, operator.itruediv, "__itruediv__")

    def __ipow__(self, other):
        return _update(self, other, Tensor.__pow__, operator.ipow, "__ipow__")

    def __imatmul__(self, other):
        return _update(self, other, Tensor.__matmul__, operator.imatmul, "__imatmul__")

    def __imod__(self, other):
        return _update(self, other, Tensor.__mod__, operator.imod, "__imod__")

    def __ifloordiv__(self, other):
        return _update(self, other, Tensor.__floordiv__, operator.ifloordiv, "__ifloordiv__")

    def __iand__(self, other):
        return _update(self, other, Tensor.__and__, operator.iand, "__iand__")

    def __ior__(self, other):
        return _update(self, other, Tensor.__or__, operator.ior, "__ior__")

    def __ixor__(self, other):
        return _update(self, other, Tensor.__xor__, operator.ixor, "__ixor__")

    def __ilshift__(self, other):
        return _update(self, other, Tensor.__lshift__, operator.ilshift, "__ilshift__")

    def __irshift__(self, other):
        return _update(self, other, Tensor.__rshift__, operator.irshift, "__irshift__")

    # ---- indexing and iteration ---------------------------------------------------------------------
    def __getitem__(self, key):
        return hooks.API.getitem(self, key)

    def __setitem__(self, key, value):
        if isinstance(value, Tensor) and value.backend is not self.backend:
            raise hooks.API.device_error("setitem", [self, value])
        _assign(self, hooks.API.setitem(_alias(self), key, value), "__setitem__")

    def __iter__(self):
        if self.ndim == 0:          # raised by iter() itself, as NumPy does (not at the first next())
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- methods (NumPy/PyTorch/MXNet conveniences over the array-API functions) --------------------
    def sum(self, axis=None, keepdims=False, **kw):
        return hooks.API.sum(self, axis=axis, keepdims=keepdims, **kw)

    def mean(self, axis=None, keepdims=False, **kw):
        return hooks.API.mean(self, axis=axis, keepdims=keepdims, **kw)

    def max(self, axis=None, keepdims=False, **kw):
        return hooks.API.max(self, axis=axis, keepdims=keepdims, **kw)

    def min(self, axis=None, keepdims=False, **kw):
        return hooks.API.min(self, axis=axis, keepdims=keepdims, **kw)

    def prod(self, axis=None, keepdims=False, **kw):
        return hooks.API.prod(self, axis=axis, keepdims=keepdims, **kw)

    def std(self, axis=None, keepdims=False, **kw):
        return hooks.API.std(self, axis=axis, keepdims=keepdims, **kw)

    def var(self, axis=None, keepdims=False, **kw):
        return hooks.API.var(self, axis=axis, keepdims=keepdims, **kw)

    def argmax(self, axis=None, keepdims=False):
        return hooks.API.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return hooks.API.argmin(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return hooks.API.all(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return hooks.API.any(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape, **kw):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return hooks.API.reshape(self, shape, **kw)

    def transpose(self, *axes):
        if not axes:
            return hooks.API.permute_dims(self, tuple(range(self.ndim))[::-1])
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return hooks.API.permute_dims(self, axes)

    permute = transpose

    def flatten(self):
        return hooks.API.reshape(self, (-1,))

    def squeeze(self, axis=None):
        if axis is None:
            axis = tuple(i for i, n in enumerate(self.shape) if n == 1)
        return hooks.API.squeeze(self, axis)

    def expand_dims(self, axis):
        return hooks.API.expand_dims(self, axis=axis)

    def astype(self, dtype, copy=True):
        return hooks.API.astype(self, dtype, copy=copy)

    def copy(self):
        return hooks.API.astype(self, self.dtype, copy=True)

    def clip(self, min=None, max=None):
        return hooks.API.clip(self, min, max)

    def norm(self, ord=2, axis=None, keepdims=False):
        return hooks.API.vector_norm(self, ord=ord, axis=axis, keepdims=keepdims)

    def dot(self, other):
        return hooks.API.matmul(self, other)

    def exp(self):
        return hooks.apply1(PRIMS.exp, self)

    def log(self):
        return hooks.apply1(PRIMS.log, self)

    def sin(self):
        return hooks.apply1(PRIMS.sin, self)

    def cos(self):
        return hooks.apply1(PRIMS.cos, self)

    def tanh(self):
        return hooks.apply1(PRIMS.tanh, self)

    def sqrt(self):
        return hooks.apply1(PRIMS.sqrt, self)

    def square(self):
        return hooks.apply1(PRIMS.square, self)

    def abs(self):
        return hooks.API.abs(self)

    def relu(self):
        return hooks.API.relu(self)

    def sigmoid(self):
        return hooks.API.sigmoid(self)


# ---- retain_grad: a non-leaf's cotangent, caught as its node's rules read it -----------------------------

_PASS = threading.local()      # .pending: {id: (tensor, cotangent)} while a Tensor.backward runs on this thread


def _retains(t):
    """Whether the node of ``t`` (a non-leaf) hands ``t`` its cotangent (:meth:`Tensor.retain_grad`)."""
    vjp = t._node.prim.vjp
    return bool(vjp) and any(getattr(r, "retains", None) is not None and r.retains() is t for r in vjp)


def _retaining(prim, ref):
    """A copy of ``prim`` whose VJP rules first hand the cotangent to the tensor ``ref()``: every rule of a node
    receives the same cotangent, the total arriving at its output; Tensor.backward writes it once it succeeded."""
    p = _new(Primitive)
    for name in Primitive.__slots__:
        if hasattr(prim, name):
            setattr(p, name, getattr(prim, name))

    def rule(f):
        def vjp(ns, ct, *rest, **params):
            pending = getattr(_PASS, "pending", None)
            t = ref()
            if pending is not None and t is not None and id(t) not in pending:
                pending[id(t)] = (t, ct)
            return f(ns, ct, *rest, **params)
        vjp.retains = ref
        return vjp

    p.vjp = tuple(rule(f) for f in prim.vjp)
    return p


def _accumulate(t, ct):
    """Add the cotangent ``ct`` (raw, or a Tensor under create_graph) to ``t.grad`` (PyTorch: accumulates)."""
    g = ct if isinstance(ct, Tensor) else new_tensor(ct, t.backend)
    if tuple(g.shape) != t.shape:      # a batched pass (Jacobians): not a gradient of t
        return
    if g.data.dtype != t.data.dtype:
        g = hooks.API.astype(g, t.dtype) if g is ct else new_tensor(t.backend.xp.astype(g.data, t.data.dtype),
                                                                     t.backend)
    old = t._grad
    if old is None:
        t._grad = g
    else:
        t._grad = old + g if isinstance(ct, Tensor) else new_tensor(old.data + g.data, t.backend)


# ---- in-place updates (value semantics) --------------------------------------------------------------

def _update(self, other, op, raw, name):
    """``self <op>= other``: truly in place for a leaf parameter under no_grad (``p -= lr * p.grad``, as
    PyTorch: saved views of it see the version bump; while gt.trace records, value semantics: a traced op),
    else value semantics: compute ``op(alias, other)`` and rebind ``self``."""
    if self._grad_req is not None and self._node is None and not state.enabled and state.tracer is None \
            and not _in_family(self):       # (a root with views: the write goes through gradtape._core.views)
        o = other.data if isinstance(other, Tensor) else other
        if not isinstance(other, Tensor) or other.backend is self.backend:
            try:
                self.data = raw(self.data, o)
                self._version += 1
                return self
            except (TypeError, ValueError):
                pass          # read-only or casting: fall back to value semantics
    _assign(self, op(_alias(self), other), name)
    return self


def _alias(self):
    """``self``'s current value as a second Tensor object (same data, node, version, view base, tangents).

    In-place operators compute ``op(alias, other)`` and then rebind ``self``: the op saved the alias, whose
    value never changes, so rebinding ``self`` does not invalidate the op's own node (``s *= x`` then
    ``backward()`` works, as in PyTorch). A tracked leaf is returned as is: its gradient is keyed by it."""
    if (self._node is None and self._requires_grad) or type(self) is not Tensor:   # (a gt.vmap tracer: immutable)
        return self
    if _in_family(self):      # a write into a view family never overwrites data: the alias's value stays
        t = new_tensor(self.data, self.backend)
        t._node = self._node
        t._requires_grad = self._requires_grad
        t.tangents = self.tangents
        return t
    t = new_tensor(self.data, self.backend, self._base)
    t._node = self._node
    t._requires_grad = self._requires_grad
    t._version = self._version
    t.tangents = self.tangents
    return t


def _assign(self, new, what):
    """Rebind ``self`` to ``new`` (an in-place operation with value semantics)."""
    if type(self) is not Tensor or type(new) is not Tensor:
        if hasattr(self, "_rebind"):
            return self._rebind(new, what)      # a gt.vmap tracer
        raise RuntimeError(f"gradtape: in-place {what} writes a value batched by gt.vmap into a tensor that is not "
                           f"batched (shape {self.shape}); compute a new value instead (y = gt.where(...), y = x + v)")
    if tuple(new.shape) != tuple(self.shape):
        raise ValueError(f"gradtape: in-place {what} would change shape {self.shape} to {new.shape}")
    if new.dtype != self.dtype:
        raise TypeError(f"gradtape: in-place {what} would change dtype {self.dtype} to {new.dtype}")
    if self._requires_grad and self._node is None and self._grad_req is not None and state.enabled \
            and new._requires_grad:
        raise RuntimeError(f"gradtape: in-place {what} on a leaf tensor that requires grad (shape {self.shape}) "
                           f"while recording; do it under gt.pause()/gt.no_grad() or on a copy")
    if state.tracer is None and _in_family(self):
        return hooks.write(self, new, what)       # a view or a root with views: every alias sees the write
    rebind(self, new)


def _in_family(t):
    """Whether ``t`` is a registered view or a root with live views (gradtape._core.views)."""
    if t._base is not None and getattr(t, "_vfn", None) is not None:
        return True
    views = getattr(t, "_views", None)
    if not views:
        return False
    views[1:] = [r for r in views[1:] if r() is not None]
    return len(views) > 1


def rebind(self, new):
    """``self`` rebound to ``new``'s value, history and tangents, its version bumped."""
    self.data = new.data
    self._version += 1
    if state.tracer is not None:
        state.tracer.rebind(self, new)
    if new._requires_grad:
        self._node = new._node
        self._requires_grad = True
        self._grad_req = None if new._node is not None else self._grad_req
    elif self._node is not None or (self._requires_grad and self._grad_req is None):
        self._node = None
        self._requires_grad = False
    self.tangents = new.tangents
