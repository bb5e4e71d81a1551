"""Graph IR values: node references, backend-neutral attribute values, :class:`IRNode`, primitives by name.

The pieces every other part of the graph IR (:mod:`gradtape.graph`: tracing,
replay plans, JSON, DOT) reads and writes; public names are re-exported by
:mod:`gradtape.graph`.
"""
from __future__ import annotations

from .. import _tree
from ..backends import host as _host
from .._core.dispatch import SELECT
from .._core.dtypes import dtype_name
from .._core.primitive import PRIMS
from .._ops.shape import _concat_prim


# ---- value references and backend-neutral attribute values ---------------------------------------

class Ref:
    """A reference to the value of node ``i`` of a graph.

    >>> from gradtape.graph import Ref
    >>> Ref(3)
    %3
    """

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return f"%{self.i}"

    def __eq__(self, other):
        return type(other) is Ref and other.i == self.i

    def __hash__(self):
        return hash(("ref", self.i))


class DTypeName:
    """A dtype by its standard name (resolved to the replay backend's dtype object).

    >>> from gradtape.graph import DTypeName
    >>> DTypeName("float32")
    float32
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return type(other) is DTypeName and other.name == self.name

    def __hash__(self):
        return hash(("dtype", self.name))


class DeviceName:
    """A device by its gradtape name (resolved to a backend on replay).

    >>> from gradtape.graph import DeviceName
    >>> DeviceName("cpu")
    device('cpu')
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"device({self.name!r})"

    def __eq__(self, other):
        return type(other) is DeviceName and other.name == self.name

    def __hash__(self):
        return hash(("device", self.name))


class _Opaque:
    """A parameter value with no portable form (a Python callable...): replayable here, not savable."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"<{type(self.value).__name__}>"


_NO_REFS = frozenset((int, float, bool, complex, str, type(None), DTypeName, DeviceName))


def _walk_refs(v, out):
    """Append the node indices referenced anywhere in attribute value ``v`` to ``out``."""
    out += [r.i for r in _tree.leaves(v, subclasses=False) if type(r) is Ref]


def _map_refs(v, f):
    """``v`` with every Ref r replaced by f(r)."""
    return _tree.map(lambda r: f(r) if type(r) is Ref else r, v, subclasses=False)


# ---- nodes -------------------------------------------------------------------------------------------

class IRNode:
    """One value of a graph: an input, a constant, or an operation on earlier values.

    ``kind`` is ``"input"``, ``"const"``, ``"prim"`` (a differentiable
    primitive, ``op`` its name), ``"fn"`` (a non-differentiable array API
    function of the backend, ``op`` its name) or ``"item"`` (element
    ``attrs["k"]`` of a tuple-valued node). ``inputs`` holds :class:`Ref`
    objects and Python scalars; ``attrs`` the primitive's parameters.
    ``shape``/``dtype`` describe the output (``result_types`` lists (shape,
    dtype) pairs for a tuple-valued node, saved as ``multi``); ``rev`` marks
    reverse-pass nodes.

    >>> import gradtape as gt
    >>> g = gt.trace(lambda x: gt.sin(x) * 2.0, gt.ones(3))
    >>> [(n.kind, n.op) for n in g.nodes]
    [('input', 'x'), ('prim', 'sin'), ('prim', 'multiply')]
    >>> g.nodes[2].inputs, g.nodes[2].shape, g.nodes[2].dtype
    ((%1, 2.0), (3,), 'float64')
    """

    __slots__ = ("kind", "op", "prim", "inputs", "attrs", "shape", "dtype", "result_types", "rev", "value",
                 "backend", "device")

    def __init__(self, kind, op, inputs=(), attrs=None, shape=None, dtype=None, result_types=None, rev=False,
                 prim=None, value=None, backend=None, device=None):
        self.kind = kind
        self.op = op
        self.prim = prim
        self.inputs = tuple(inputs)
        self.attrs = attrs or {}
        self.shape = shape
        self.dtype = dtype
        self.result_types = result_types
        self.rev = rev
        self.value = value      # const: the raw array (of ``backend``) or a NumPy array
        self.backend = backend
        self.device = device    # where the value lives, when not on the device the graph was traced on

    def deps(self):
        """Indices of the nodes this one reads, in order (repeats kept).

        >>> import gradtape as gt
        >>> g = gt.trace(lambda x: x * x, gt.ones(2))
        >>> g.nodes[1].deps()
        [0, 0]
        """
        out = []
        for v in self.inputs:           # (the common values inline: Refs, numbers, tuples of numbers)
            t = type(v)
            if t is Ref:
                out.append(v.i)
            elif t not in _NO_REFS and not (t is tuple and all(type(e) in _NO_REFS for e in v)):
                _walk_refs(v, out)
        for v in self.attrs.values():
            t = type(v)
            if t is Ref:
                out.append(v.i)
            elif t not in _NO_REFS and not (t is tuple and all(type(e) in _NO_REFS for e in v)):
                _walk_refs(v, out)
        return out

    def __repr__(self):
        args = ", ".join(repr(a) for a in self.inputs)
        if self.attrs:
            args += ("; " if args else "") + ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"<IRNode {self.kind} {self.op}({args}) -> {_fmt_type(self)}{' rev' if self.rev else ''}>"


def _fmt_type(n):
    if n.result_types is not None:
        return "(" + ", ".join(f"{_fmt_shape(s)} {d}" for s, d in n.result_types) + ")"
    if n.shape is None and n.dtype is None:
        return "?"
    return f"{_fmt_shape(n.shape)} {n.dtype or '?'}"


def _fmt_shape(s):
    if s is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _is_host_array(v):
    return _host.is_array(v)


def _np_value(n):
    """A const node's value as a NumPy (host) array."""
    if _is_host_array(n.value):
        return n.value
    return n.backend.to_numpy(n.value)


# ---- primitives by name ------------------------------------------------------------------------------

def _registry():
    reg = dict(PRIMS)
    reg["select"] = SELECT
    return reg


def _prim_by_name(name):
    p = _registry().get(name)
    if p is None and name.startswith("concat") and name[6:].isdigit():
        p = _concat_prim(int(name[6:]))
    return p


def _dtype_str(d):
    return dtype_name(d)


# ---- guards --------------------------------------------------------------------------------------------

GUARD_KINDS = ("bool", "float", "int", "complex", "index", "item", "tolist", "shape", "mask")
_GUARD_WORDS = {"bool": "`if`/`bool()`", "float": "`float()`", "int": "`int()`", "complex": "`complex()`",
                "index": "an index (`operator.index`)", "item": "`.item()`", "tolist": "`.tolist()`",
                "shape": "a value-dependent shape", "mask": "a boolean mask"}


class Guard:
    """A Python decision taken on a traced value: node ``node``'s value read as ``kind`` gave ``value``.

    Data only: ``kind`` is one of :data:`GUARD_KINDS`, ``value`` a Python
    scalar, a (nested) list or a shape tuple, ``where`` the ``file:line`` of
    the user's code that read it. Replay recomputes the node and compares.

    >>> from gradtape.graph.ir import Guard
    >>> Guard(3, "bool", True, "foo.py:12")
    <Guard %3 bool == True at foo.py:12>
    """

    __slots__ = ("node", "kind", "value", "where")

    def __init__(self, node, kind, value, where):
        self.node, self.kind, self.value, self.where = node, kind, value, where

    def describe(self):
        """What the traced path did, in words (``if`/`bool()` at foo.py:12``)."""
        return f"{_GUARD_WORDS.get(self.kind, self.kind)} at {self.where}"

    def __repr__(self):
        return f"<Guard %{self.node} {self.kind} == {self.value!r:.60} at {self.where}>"
