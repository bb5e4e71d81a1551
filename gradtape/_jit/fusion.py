"""Elementwise fusion: maximal regions of elementwise nodes of a graph, across its forward and reverse parts.

A node is elementwise here when it has a scalar form (:mod:`gradtape._jit.scalar`: derived from its rules),
a static shape, a float32/float64 (or bool) result, and inputs of the same float dtype (or bool) whose shapes
broadcast to its own. A region is a set of elementwise nodes of one output shape and one float dtype that can
run as one kernel: every value it reads from outside is computed before it, and nothing outside both reads
one of its values and feeds one of its nodes (no cycle through a non-region node). Reductions, matmul,
reshapes... are not elementwise, so they split regions. A region's outputs are only the values used outside
it (by other nodes or as graph outputs); everything else lives in registers.

Regions are grown greedily in graph order: a node joins (and may merge) the regions of its inputs, or else
the latest open region of its shape and dtype, wherever that makes no cycle.

>>> import gradtape as gt
>>> g = gt.trace(lambda x: gt.sum(gt.sin(x) * 2.0 + x), gt.ones(3))
>>> [(r.nodes, r.inputs, r.outputs) for r in find_regions(g)]
[([1, 2, 3], [0], [3])]
"""
from __future__ import annotations

import math

from .._core.primitive import PRIMS
from ..graph.ir import DTypeName, Ref
from .scalar import NotScalar, ScalarNS, node_form

__all__ = ["Region", "find_regions", "scalar_attrs", "is_elementwise", "attach_sums"]

_FLOATS = ("float32", "float64")
_PLAIN = (bool, int, float, type(None))


class Region:
    """Nodes fused into one kernel: ``nodes`` (graph order), external ``inputs`` (node indices, in order of
    first use), ``outputs`` (member nodes read outside), ``shape`` and ``ftype`` (the float dtype).
    ``sums``: {output position: sum node} for outputs that the kernel reduces itself (:func:`attach_sums`):
    that output is the sum node's value (shape ``()``), the member itself stays in registers."""

    __slots__ = ("nodes", "inputs", "outputs", "shape", "ftype", "sums")

    def __init__(self, nodes, inputs, outputs, shape, ftype):
        self.nodes, self.inputs, self.outputs, self.shape, self.ftype = nodes, inputs, outputs, shape, ftype
        self.sums = {}

    def out_shape(self, k):
        """The shape of output ``k``: ``()`` for a reduced one, else the region's."""
        return () if k in self.sums else self.shape

    def results(self):
        """The nodes whose values the kernel returns, one per output: the sum node of a reduced output."""
        return [self.sums.get(k, o) for k, o in enumerate(self.outputs)]

    def __repr__(self):
        return f"<Region {self.ftype}{list(self.shape)} nodes={self.nodes} in={self.inputs} out={self.outputs}>"


def scalar_attrs(node):
    """The node's attributes as plain values for a scalar form (numbers, None, dtype names), or None."""
    out = {}
    for k, v in node.attrs.items():
        if type(v) in _PLAIN or type(v) is DTypeName:
            out[k] = v
        else:
            return None
    return out


_ok_cache = {}


def _derives(node, kinds):
    """Whether ``node`` has a scalar form on inputs of ``kinds`` ("f", "b", or the Python number itself)."""
    attrs = scalar_attrs(node)
    if attrs is None:
        return False
    key = (node.kind, node.op, tuple(sorted((k, repr(v)) for k, v in attrs.items())),
           tuple(k if type(k) is str else (type(k).__name__, repr(k)) for k in kinds))
    got = _ok_cache.get(key)
    if got is None:
        ns = ScalarNS("py", "float64")
        args = [ns.arg(f"a{i}", k) if type(k) is str else k for i, k in enumerate(kinds)]
        try:
            node_form(ns, node, args, attrs)
            got = True
        except NotScalar:
            got = False
        _ok_cache[key] = got
    return got


def _broadcasts(src, dst):
    if src is None or len(src) > len(dst):
        return False
    return all(a == 1 or a == b for a, b in zip(reversed(src), reversed(dst)))


def is_elementwise(graph, i):
    """(shape, ftype) of node ``i`` when it can be fused, else None."""
    n = graph.nodes[i]
    if n.kind not in ("prim", "fn") or n.device is not None or n.result_types is not None:
        return None
    if n.shape is None or any(type(d) is not int for d in n.shape) or n.dtype not in _FLOATS + ("bool",):
        return None
    ftype = n.dtype if n.dtype in _FLOATS else None
    kinds = []
    for a in n.inputs:
        if type(a) is Ref:
            d = graph.nodes[a.i]
            if d.dtype == "bool":
                kinds.append("b")
            elif d.dtype in _FLOATS and (ftype is None or d.dtype == ftype):
                ftype = d.dtype
                kinds.append("f")
            else:
                return None
            if not _broadcasts(d.shape, n.shape) or d.result_types is not None:
                return None
        elif type(a) in (bool, int, float) or type(a) is DTypeName:     # (astype's dtype is an input)
            kinds.append(a)
        else:
            return None
    if ftype is None or not _derives(n, tuple(kinds)):
        return None
    return tuple(n.shape), ftype


class _Units:
    """Union-find over node indices: each set is a unit of the condensed graph (a lone node or a region).

    For each unit's representative: ``mem`` its members and ``anc`` every node it depends on in the condensed
    graph (through any unit), both as bit sets (Python ints); ``pred`` the outside nodes its members read.
    The condensed graph is acyclic iff no unit's ``anc`` meets its own ``mem``: every join and merge below
    keeps that, and updates the ``anc`` of the units depending on the grown unit."""

    def __init__(self, n):
        self.parent = list(range(n))
        self.mem, self.anc, self.pred = {}, {}, {}

    def find(self, r):
        p = self.parent
        while p[r] != r:
            p[r] = p[p[r]]
            r = p[r]
        return r

    def upstream(self, nodes):
        """Bits of the units holding ``nodes`` and of everything they depend on."""
        out = 0
        for u in {self.find(d) for d in nodes}:
            out |= self.mem[u] | self.anc[u]
        return out

    def add(self, i, deps):
        self.mem[i], self.anc[i], self.pred[i] = 1 << i, self.upstream(deps), set(deps)

    def merge(self, reps, newest=None):
        """Merge the units ``reps`` (representatives; the first stays one) if that keeps the condensed graph
        acyclic; returns the representative or None. ``newest``: the latest node in graph order, when it is
        one of ``reps`` (nothing depends on it yet)."""
        mem = 0
        for u in reps:
            mem |= self.mem[u]
        pred = {d for u in reps for d in self.pred[u] if not (mem >> d) & 1}
        anc = self.upstream(pred)
        if anc & mem:
            return None
        rep = reps[0]
        old = self.anc[rep]
        for u in reps[1:]:
            self.parent[u] = rep
            del self.mem[u], self.anc[u], self.pred[u]
        self.mem[rep], self.anc[rep], self.pred[rep] = mem, anc, pred
        if list(reps[1:]) != [newest] or anc & ~old:
            grown = anc | mem
            for u, a in self.anc.items():
                if u != rep and a & mem:
                    self.anc[u] = a | grown
        return rep


def find_regions(graph, exclude=None, min_size=2, alone=None):
    """The fusible regions of ``graph`` (of at least ``min_size`` nodes, or one node ``i`` where
    ``alone(graph, i)``), in graph order of their first node. ``exclude(node)``: nodes to keep as backend calls
    (an op NumPy runs faster unfused).

    No two regions depend on each other, directly or through other nodes: the graph with one node per region
    stays acyclic (each join is checked on that condensed graph, not only on paths leaving one region)."""
    nodes = graph.nodes
    units = _Units(len(nodes))
    region = {}                     # node -> True for region members (the unit is units.find(node))
    key_of, latest = {}, {}
    for i, n in enumerate(nodes):
        deps = n.deps()
        units.add(i, deps)
        ew = is_elementwise(graph, i) if exclude is None or not exclude(n) else None
        if ew is None:
            continue
        cands = []
        for d in deps:
            if d in region and nodes[d].shape == n.shape:
                r = units.find(d)
                if key_of[r] == ew and r not in cands:
                    cands.append(r)
        if not cands and ew in latest:
            cands.append(units.find(latest[ew]))
        target = None
        for r in cands:
            got = units.merge([r, i], i) if target is None else units.merge([target, r])
            if got is not None:
                target = got
        if target is None:
            target = i
        region[i] = True
        key_of[target] = ew
        latest[ew] = target
    return _collect(graph, {i: units.find(i) for i in region}, key_of, min_size, alone)


def _collect(graph, region, key_of, min_size, alone=None):
    members = {}
    for i in sorted(region):
        members.setdefault(region[i], []).append(i)
    outs = set(graph._out_refs())
    readers = {}
    for j, n in enumerate(graph.nodes):
        for d in n.deps():
            readers.setdefault(d, set()).add(j)
    out = []
    for r, ms in members.items():
        if len(ms) < min_size and not (alone is not None and len(ms) == 1 and alone(graph, ms[0])):
            continue
        mset = set(ms)
        ins = []
        for i in ms:
            for d in graph.nodes[i].deps():
                if d not in mset and d not in ins:
                    ins.append(d)
        used = [i for i in ms if i in outs or readers.get(i, set()) - mset]
        shape, ftype = key_of[r]
        out.append(Region(ms, ins, used, shape, ftype))
    out.sort(key=lambda reg: reg.nodes[0])
    return out


def attach_sums(graph, regions, max_size, exclude=None):
    """Let each region of fewer than ``max_size`` elements reduce the outputs that only a full ``sum`` reads
    (every axis, no keepdims, the region's float dtype): ``region.sums[k] = sum node``, so the kernel returns
    the sum (accumulated in float64, in element order) instead of the array. Small sizes only: a large sum
    stays NumPy's pairwise one (its rounding), and a small one saves a backend call per sum.

    >>> import gradtape as gt
    >>> g = gt.trace(lambda x: gt.sum(gt.sin(x) * 2.0), gt.ones(3))
    >>> rs = attach_sums(g, find_regions(g), 4096); rs[0].outputs, rs[0].sums
    ([2], {0: 3})
    """
    readers = {}
    for j, n in enumerate(graph.nodes):
        for d in n.deps():
            readers.setdefault(d, []).append(j)
    outs = set(graph._out_refs())
    sum_prim = PRIMS["sum"]
    for r in regions:
        if not r.shape or math.prod(r.shape) >= max_size:
            continue
        for k, o in enumerate(r.outputs):
            users = readers.get(o, [])
            if o in outs or len(users) != 1:
                continue
            s = graph.nodes[users[0]]
            if s.prim is not sum_prim or (exclude is not None and exclude(s)) or s.dtype != r.ftype or graph.nodes[o].dtype != r.ftype or s.shape != ():
                continue
            a = s.attrs
            ax = a.get("axis")
            nd = len(r.shape)
            if (len(s.inputs) == 1 and a.get("keepdims") is False and a.get("dtype") is None and type(ax) is tuple
                    and sorted(int(v) % nd for v in ax) == list(range(nd))):
                r.sums[k] = users[0]
    return regions
