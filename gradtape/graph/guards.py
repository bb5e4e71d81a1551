"""Guards: the Python decisions a traced path took on traced values, checked when the graph replays.

While a function is traced, reading a traced tensor as a Python value (``bool``/``if``/``while``,
``float``, ``int``, ``.item()``, ``.tolist()``, an index) or computing a shape from values (``nonzero``,
``unique_*``) records a :class:`~gradtape.graph.ir.Guard` (node, kind, value, ``file:line``). The replay
plan checks each right after its node is computed (:func:`_checker`); a different value raises
:class:`GuardError` (a RuntimeError): ``Graph.__call__`` reports it, ``gt.jit`` retraces for the new
path. Guards are data: JSON keeps (node, kind, value, where), never code.
"""
from __future__ import annotations

import operator

from ..graph.io import _dec, _enc
from ..graph.ir import GUARD_KINDS, Guard

__all__ = ["GuardError", "to_json", "load"]


class GuardError(RuntimeError):
    """A replayed value took another Python decision than the traced path (``guard``: the
    :class:`~gradtape.graph.ir.Guard`, ``got``: this input's value); ``gt.jit`` retraces on it."""

    def __init__(self, graph, guard, got):
        self.guard, self.got = guard, got
        super().__init__(f"gradtape.Graph {graph.name}: the traced path took {guard.describe()} with value "
                         f"{guard.value!r:.80}; this input gives {got!r:.80}: trace again (gt.jit retraces by "
                         f"itself)")


_READ = {"bool": lambda b, v: bool(v), "float": lambda b, v: float(v), "int": lambda b, v: int(v),
         "complex": lambda b, v: complex(v), "index": lambda b, v: operator.index(v),
         "item": lambda b, v: b.to_numpy(v).item(), "tolist": lambda b, v: b.to_numpy(v).tolist(),
         "mask": lambda b, v: b.to_numpy(v).tolist(), "shape": lambda b, v: tuple(v.shape)}


def _same_value(got, want):
    if got == want:
        return True
    return isinstance(got, (float, complex)) and isinstance(want, (float, complex)) and got != got and want != want


def _checker(graph, gd, b):
    """raw value -> None, or a GuardError when the value read as ``gd.kind`` differs from the traced one."""
    read, want = _READ[gd.kind], gd.value

    def check(v):
        got = read(b, v)
        if not _same_value(got, want):
            raise GuardError(graph, gd, got)
    return check



def to_json(guards):
    """The JSON-ready form of ``guards``: ``[{"node", "kind", "value", "where"}]``.

    >>> from gradtape.graph.ir import Guard
    >>> to_json([Guard(2, "bool", True, "f.py:3")])
    [{'node': 2, 'kind': 'bool', 'value': True, 'where': 'f.py:3'}]
    """
    return [{"node": gd.node, "kind": gd.kind, "value": _enc(gd.value, "a guard"), "where": gd.where}
            for gd in guards]


def load(raw, n):
    """Guards from their JSON form (checked: data only, every field of its kind)."""
    where = "gradtape.Graph.load: malformed graph: guards"
    if not isinstance(raw, list):
        raise ValueError(f"{where} must be a list")
    out = []
    for k, e in enumerate(raw):
        if not isinstance(e, dict) or set(e) != {"node", "kind", "value", "where"}:
            raise ValueError(f"{where}: entry {k} must be an object with node, kind, value and where (only)")
        node, kind, where_s = e["node"], e["kind"], e["where"]
        if type(node) is not int or not 0 <= node < n or kind not in GUARD_KINDS or type(where_s) is not str:
            raise ValueError(f"{where}: entry {k} names no node of the graph (0..{n - 1}), no guard kind "
                             f"({', '.join(GUARD_KINDS)}) or no location string")
        try:
            value = _dec(e["value"])
        except ValueError as exc:
            raise ValueError(f"{where}: entry {k}: {exc}") from None
        if kind == "shape":
            if not isinstance(value, (list, tuple)) or not all(type(s) is int for s in value):
                raise ValueError(f"{where}: entry {k}: a shape guard's value must be a list of ints")
            value = tuple(value)
        elif isinstance(value, (dict, tuple)) or (kind not in ("tolist", "mask") and isinstance(value, list)):
            raise ValueError(f"{where}: entry {k}: a {kind} guard's value must be a Python number or list")
        out.append(Guard(node, kind, value, where_s))
    return out
