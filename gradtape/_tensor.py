"""The array-object side of :class:`Tensor`: attributes, operators, methods, grad API.

In-place operators and ``__setitem__`` have value semantics (as in JAX):
they compute the result and rebind the tensor to it, bumping its version,
so a value saved by the graph is never overwritten behind its back; a
backward through a node that saved the old value raises ``RuntimeError``.
"""
from __future__ import annotations

import operator

from . import _namespace as N
from . import _prims as P
from . import _shape as S
from ._core import Tensor, apply, apply1, apply2, state, wrap


def _binop(p, reflected=False):
    if reflected:
        def f(self, other):
            return apply2(p, other, self)
    else:
        def f(self, other):
            return apply2(p, self, other)
    return f


def _cmp(name):
    fn = getattr(N, name)

    def f(self, other):
        if other is None or not (isinstance(other, (Tensor, int, float, complex)) or hasattr(other, "shape")):
            return NotImplemented
        return fn(self, other)
    return f


def _ndop(name, reflected=False):
    fn = getattr(N, name)
    if reflected:
        return lambda self, other: fn(other, self)
    return lambda self, other: fn(self, other)


def _inplace(method, raw):
    def f(self, other):
        if self._req is not None and self._node is None and not state.enabled and state.tracer is None:
            # a parameter updated under no_grad (``p -= lr * p.grad``): truly in place, as PyTorch does;
            # saved views of it see the version bump (while gt.trace records, value semantics: a traced op)
            o = other.data if isinstance(other, Tensor) else other
            if not isinstance(other, Tensor) or other._bk is self._bk:
                try:
                    self.data = raw(self.data, o)
                    self._version += 1
                    return self
                except (TypeError, ValueError):
                    pass          # read-only or casting: fall back to value semantics
        _assign(self, method(_alias(self), other), method.__name__)
        return self
    return f


def _alias(self):
    """``self``'s current value as a second Tensor object (same data, node, version, view base, tangents).

    In-place operators compute ``op(alias, other)`` and then rebind ``self``: the op saved the alias, whose
    value never changes, so rebinding ``self`` does not invalidate the op's own node (``s *= x`` then
    ``backward()`` works, as in PyTorch). A tracked leaf is returned as is: its gradient is keyed by it."""
    if self._node is None and self._rg:
        return self
    t = wrap(self.data, self._bk)
    t._node = self._node
    t._rg = self._rg
    t._version = self._version
    t._base = self._base
    t._tan = self._tan
    return t


def _assign(self, new, what):
    """Rebind ``self`` to ``new`` (an in-place operation with value semantics)."""
    if tuple(new.shape) != tuple(self.shape):
        raise ValueError(f"gradtape: in-place {what} would change shape {self.shape} to {new.shape}")
    if new.dtype != self.dtype:
        raise TypeError(f"gradtape: in-place {what} would change dtype {self.dtype} to {new.dtype}")
    if self._rg and self._node is None and self._req is not None and state.enabled and new._rg:
        raise RuntimeError(f"gradtape: in-place {what} on a leaf tensor that requires grad (shape {self.shape}) "
                           f"while recording; do it under gt.pause()/gt.no_grad() or on a copy")
    self.data = new.data
    self._version += 1
    if state.tracer is not None:
        _retrace(state.tracer, self, new)
    if new._rg:
        self._node = new._node
        self._rg = True
        self._req = None if new._node is not None else self._req
    elif self._node is not None or (self._rg and self._req is None):
        self._node = None
        self._rg = False
    self._tan = new._tan


def _retrace(tr, self, new):
    """While gt.trace records: ``self`` now stands for the traced value of ``new`` (an in-place write must not
    leave ``self`` bound to the value it had before)."""
    while tr is not None:
        i = tr.by_tensor.get(id(new))
        if i is None:
            i = tr.by_data.get(id(new.data))
        if i is None:          # nothing recorded (constant folded): looked up by its data later
            tr.by_tensor.pop(id(self), None)
        else:
            tr.by_tensor[id(self)] = i
            tr.keep.append(self)
        tr = tr.prev


def _repr(self):
    try:
        from .backends import numpy_backend
        body = numpy_backend.array_repr(self._bk.to_numpy(self.data))
    except Exception:  # pragma: no cover - printing must never fail
        body = repr(self.data)
    if body.startswith("array("):
        body = "Tensor(" + body[6:].replace("\n", "\n ")
    else:
        body = f"Tensor({body})"
    extra = []
    if self._bk.device != "cpu":
        extra.append(f"device={self._bk.device!r}")
    if self._rg:
        extra.append("requires_grad=True")
    if extra:
        body = body[:-1] + ", " + ", ".join(extra) + ")"
    return body


def attach_grad(self, grad_req="write", stype=None):
    """MXNet: allocate ``.grad`` (zeros) and track this tensor.

    grad_req "write" overwrites ``.grad`` on each backward, "add" accumulates,
    "null" stops tracking.

    >>> import gradtape as gt
    >>> x = gt.asarray([1.0, 2.0]); x.attach_grad()
    >>> with gt.record(): y = (x * x).sum()
    >>> y.backward(); x.grad
    Tensor([2., 4.])
    """
    if grad_req not in ("write", "add", "null"):
        raise ValueError(f"attach_grad: grad_req must be 'write', 'add' or 'null', got {grad_req!r}")
    if grad_req == "null":
        self._rg = False
        self._req = None
        self._grad = None
        return
    _check_float(self, "attach_grad")
    self._node = None
    self._rg = True
    self._req = grad_req
    self._grad = wrap(self._bk.xp.zeros_like(self.data), self._bk)


def _check_float(self, what):
    if not N._is_float(self.dtype):
        raise TypeError(f"gradtape.{what}: gradients need a floating-point tensor, got dtype {self.dtype} "
                        f"(shape {self.shape}); convert with .astype(gt.float64) first")
    if self.dtype.name.startswith("complex"):
        raise TypeError(f"gradtape.{what}: differentiating a complex tensor (dtype {self.dtype}, shape "
                        f"{self.shape}) is not supported yet; differentiate its real and imaginary parts "
                        f"as separate real tensors")


def _set_grad(self, g):
    """Assigning ``.grad``: None, or a Tensor of this tensor's shape, dtype and device (as PyTorch checks)."""
    if g is not None:
        if not isinstance(g, Tensor):
            raise TypeError(f"gradtape: .grad must be a Tensor or None, got {type(g).__name__}")
        if g._bk is not self._bk:
            raise TypeError(f"gradtape: .grad on {g.device!r} ({g._bk.name}) assigned to a tensor on "
                            f"{self.device!r} ({self._bk.name}); move it with .to_device(...) first")
        if tuple(g.data.shape) != tuple(self.data.shape):
            raise ValueError(f"gradtape: .grad of shape {g.shape} assigned to a tensor of shape {self.shape}; "
                             f"they must match")
        if g.data.dtype != self.data.dtype:
            raise TypeError(f"gradtape: .grad of dtype {g.dtype} assigned to a tensor of dtype {self.dtype}; "
                            f"they must match (convert with .astype first)")
    self._grad = g


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
        self._rg = False
        self._req = None
        return self
    _check_float(self, "requires_grad_")
    if self._node is None:
        self._rg = True
        self._req = "add"
    return self


def _set_requires_grad(self, value):
    requires_grad_(self, value)


def detach(self):
    """A new untracked tensor sharing this one's data.

    >>> import gradtape as gt
    >>> gt.asarray([1.0]).requires_grad_().detach().requires_grad
    False
    """
    t = wrap(self.data, self._bk)
    t._base = self          # shares memory: in-place updates of self invalidate graphs that saved t
    return t


def zero_(self):
    """Set every element to 0 (in place, value semantics).

    >>> import gradtape as gt
    >>> gt.ones(2).zero_()
    Tensor([0., 0.])
    """
    self.data = self._bk.xp.zeros_like(self.data)
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
    from ._autograd import backward as _bw
    _bw([self], None if head is None else [head], retain_graph=retain_graph, create_graph=create_graph)


def item(self):
    """The single element as a Python scalar.

    >>> import gradtape as gt
    >>> gt.asarray([2.5]).item()
    2.5
    """
    if self.size != 1:
        raise ValueError(f"item(): the tensor has {self.size} elements (shape {self.shape}), not 1")
    return self._bk.to_numpy(self.data).item()


def tolist(self):
    """Nested Python lists.

    >>> import gradtape as gt
    >>> gt.asarray([1.0, 2.0]).tolist()
    [1.0, 2.0]
    """
    return self._bk.to_numpy(self.data).tolist()


def to_numpy(x):
    """A NumPy array with the tensor's values (a copy from the GPU, no graph).

    >>> import gradtape as gt
    >>> gt.to_numpy(gt.ones(2)).tolist()
    [1.0, 1.0]
    """
    if not isinstance(x, Tensor):
        x = N.asarray(x)
    return x._bk.to_numpy(x.data)


def _array(self, dtype=None, copy=None):
    if self._rg:
        raise RuntimeError(f"gradtape: converting a tensor that requires grad (shape {self.shape}) to a NumPy "
                           f"array would drop its graph; use gt.to_numpy(x.detach()) if that is what you want")
    a = self._bk.to_numpy(self.data)
    return a.astype(dtype) if dtype is not None else a


def _rebuild(values, device, dtype, requires_grad):
    t = N.asarray(values, device=device, dtype=dtype)
    return t.requires_grad_() if requires_grad else t


def _reduce(self):
    """Pickling and ``copy.deepcopy``: values, device, dtype and requires_grad of a leaf (PyTorch's rule)."""
    if self._node is not None:
        raise RuntimeError("gradtape: only leaf tensors (not results of recorded operations) can be pickled or "
                           "deep-copied; use .detach() first")
    return _rebuild, (to_numpy(self), self.device, self.dtype.name, self._rg and self._req is not None)


def _getitem(self, key):
    return S.getitem(self, key)


def _setitem(self, key, value):
    if isinstance(value, Tensor) and value._bk is not self._bk:
        from ._core import _device_error
        raise _device_error("setitem", [self, value])
    _assign(self, S.setitem(_alias(self), key, value), "__setitem__")


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    for i in range(self.shape[0]):
        yield self[i]


def _len(self):
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


def _dlpack(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    kw = {}
    if stream is not None:
        kw["stream"] = stream
    if max_version is not None:
        kw["max_version"] = max_version
    if dl_device is not None:
        kw["dl_device"] = dl_device
    if copy is not None:
        kw["copy"] = copy
    try:
        return self.data.__dlpack__(**kw)
    except TypeError:
        return self.data.__dlpack__(stream=stream) if stream is not None else self.data.__dlpack__()


def _reduction(fn):
    def f(self, axis=None, keepdims=False, **kw):
        return fn(self, axis=axis, keepdims=keepdims, **kw)
    f.__name__ = fn.__name__
    f.__doc__ = fn.__doc__
    return f


def _reshape(self, *shape, **kw):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return S.reshape(self, shape, **kw)


def _transpose(self, *axes):
    if not axes:
        return S.permute_dims(self, tuple(range(self.ndim))[::-1])
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return S.permute_dims(self, axes)


def _T(self):
    if self.ndim > 2:
        raise ValueError(f".T needs a tensor of at most 2 dimensions, got shape {self.shape}; use .mT")
    return S.permute_dims(self, tuple(range(self.ndim))[::-1]) if self.ndim == 2 else self


_METHODS = {
    "__add__": _binop(P.add), "__radd__": _binop(P.add, True),
    "__sub__": _binop(P.subtract), "__rsub__": _binop(P.subtract, True),
    "__mul__": _binop(P.multiply), "__rmul__": _binop(P.multiply, True),
    "__truediv__": _binop(P.divide), "__rtruediv__": _binop(P.divide, True),
    "__pow__": _binop(P.pow_), "__rpow__": _binop(P.pow_, True),
    "__matmul__": lambda self, other: N.matmul(self, other),
    "__rmatmul__": lambda self, other: N.matmul(other, self),
    "__mod__": _binop(P.remainder), "__rmod__": _binop(P.remainder, True),
    "__floordiv__": _ndop("floor_divide"), "__rfloordiv__": _ndop("floor_divide", True),
    "__and__": _ndop("bitwise_and"), "__rand__": _ndop("bitwise_and", True),
    "__or__": _ndop("bitwise_or"), "__ror__": _ndop("bitwise_or", True),
    "__xor__": _ndop("bitwise_xor"), "__rxor__": _ndop("bitwise_xor", True),
    "__lshift__": _ndop("bitwise_left_shift"), "__rlshift__": _ndop("bitwise_left_shift", True),
    "__rshift__": _ndop("bitwise_right_shift"), "__rrshift__": _ndop("bitwise_right_shift", True),
    "__neg__": lambda self: apply1(P.negative, self),
    "__pos__": lambda self: apply1(P.positive, self),
    "__abs__": lambda self: P.abs(self),
    "__invert__": lambda self: N.bitwise_invert(self),
    "__eq__": _cmp("equal"), "__ne__": _cmp("not_equal"), "__lt__": _cmp("less"),
    "__le__": _cmp("less_equal"), "__gt__": _cmp("greater"), "__ge__": _cmp("greater_equal"),
    "__hash__": object.__hash__,
    "__reduce__": _reduce, "__getitem__": _getitem, "__setitem__": _setitem, "__iter__": _iter, "__len__": _len,
    "__bool__": lambda self: bool(self.data), "__float__": lambda self: float(self.data),
    "__int__": lambda self: int(self.data), "__index__": lambda self: self.data.__index__(),
    "__complex__": lambda self: complex(self.data),
    "__repr__": _repr, "__str__": _repr, "__array__": _array,
    "__array_namespace__": lambda self, api_version=None: __import__("gradtape"),
    "__dlpack__": _dlpack, "__dlpack_device__": lambda self: self.data.__dlpack_device__(),
    "to_device": lambda self, device, /, *, stream=None: N.to_device(self, device, stream=stream),
    "attach_grad": attach_grad, "requires_grad_": requires_grad_, "detach": detach, "zero_": zero_,
    "backward": backward, "item": item, "tolist": tolist,
    "asnumpy": lambda self: to_numpy(self), "numpy": lambda self: to_numpy(self),
    "sum": _reduction(N.sum), "mean": _reduction(N.mean), "max": _reduction(N.max), "min": _reduction(N.min),
    "prod": _reduction(N.prod), "std": _reduction(N.std), "var": _reduction(N.var),
    "argmax": lambda self, axis=None, keepdims=False: N.argmax(self, axis=axis, keepdims=keepdims),
    "argmin": lambda self, axis=None, keepdims=False: N.argmin(self, axis=axis, keepdims=keepdims),
    "all": lambda self, axis=None, keepdims=False: N.all(self, axis=axis, keepdims=keepdims),
    "any": lambda self, axis=None, keepdims=False: N.any(self, axis=axis, keepdims=keepdims),
    "reshape": _reshape, "transpose": _transpose, "permute": _transpose,
    "flatten": lambda self: S.reshape(self, (-1,)),
    "squeeze": lambda self, axis=None: S.squeeze(self, tuple(i for i, n in enumerate(self.shape) if n == 1)
                                                 if axis is None else axis),
    "expand_dims": lambda self, axis: S.expand_dims(self, axis=axis),
    "astype": lambda self, dtype, copy=True: S.astype(self, dtype, copy=copy),
    "clip": lambda self, min=None, max=None: N.clip(self, min, max),
    "norm": lambda self, ord=2, axis=None, keepdims=False: N.vector_norm(self, ord=ord, axis=axis, keepdims=keepdims),
    "dot": lambda self, other: N.matmul(self, other),
    "copy": lambda self: S.astype(self, self.dtype, copy=True),
    "exp": lambda self: apply1(P.exp, self), "log": lambda self: apply1(P.log, self),
    "sin": lambda self: apply1(P.sin, self), "cos": lambda self: apply1(P.cos, self),
    "tanh": lambda self: apply1(P.tanh, self), "sqrt": lambda self: apply1(P.sqrt, self),
    "abs": lambda self: P.abs(self), "square": lambda self: apply1(P.square, self),
    "relu": lambda self: P.relu_fn(self), "sigmoid": lambda self: P.sigmoid_fn(self),
}

for _op in ("add", "sub", "mul", "truediv", "pow", "matmul", "mod", "floordiv", "and", "or", "xor",
            "lshift", "rshift"):
    _m = _METHODS[f"__{_op}__"]
    _m.__name__ = f"__{_op}__"
    _METHODS[f"__i{_op}__"] = _inplace(_m, getattr(operator, f"__i{_op}__"))

for _k, _v in _METHODS.items():
    setattr(Tensor, _k, _v)

Tensor.dtype = property(lambda self: N._gdt(self.data.dtype), doc="Data type (a gradtape dtype).")
Tensor.device = property(lambda self: self._bk.device, doc="Device string: 'cpu', 'cuda:N' or 'strict'.")
Tensor.shape = property(lambda self: tuple(self.data.shape), doc="Shape tuple.")
Tensor.ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
Tensor.size = property(lambda self: self.data.size if isinstance(self.data.size, int) else
                       int(__import__("math").prod(self.data.shape)), doc="Number of elements.")
Tensor.T = property(_T, doc="Transpose (at most 2 dimensions).")
Tensor.mT = property(lambda self: S.matrix_transpose(self), doc="Transpose of the last two axes.")
Tensor.requires_grad = property(lambda self: self._rg, _set_requires_grad,
                                doc="Whether operations on this tensor are recorded.")
Tensor.grad = property(operator.attrgetter("_grad"), _set_grad, doc="Accumulated gradient (a Tensor of this shape, dtype and "
                                                 "device) or None.")
Tensor.is_leaf = property(lambda self: self._node is None, doc="True unless the tensor came from a recorded op.")
Tensor.grad_req = property(lambda self: self._req if self._rg else "null", doc="MXNet grad_req of a leaf.")
