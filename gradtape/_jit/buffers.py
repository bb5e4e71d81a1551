"""Buffer reuse for ``gt.jit``: fused kernels writing their results into the buffers of inputs that die there.

The memory plan of a jitted call frees every value after its last use (the replay plan's slots); this adds the
buffers themselves. :func:`plan` looks at the rewritten graph (one node per fused region, in execution order)
and lets output ``k`` of a kernel take the buffer of its input ``p`` where

- the input is read in full (element ``i`` at ``i``: a kernel reads every input of an element before it
  writes that element's outputs, so the same buffer in and out is safe), with the output's dtype;
- the kernel is its last reader, it is not a graph output, and nothing that may share its buffer (a view
  op's result, the input itself returned by an op) is read by the kernel or any later step;
- its buffer is the value's own: a fused kernel's result, a matmul's or an arithmetic operator's (new
  arrays), or an argument donated to the call (``donate_argnums``), which :func:`own_raws` makes the call's
  own first: a donated array anything else still holds (another tensor, a NumPy view, a variable) is
  copied, never written.

A kernel with vecmath's strip form and a libm fallback (which reruns the region over its inputs) never
writes in place. Everything here is decided when the graph is compiled; at run time a kernel only checks
that a reused buffer is writeable and C-contiguous (else it allocates).

>>> import gradtape as gt
>>> step = gt.jit(lambda w, g: gt.tanh(w) - 0.1 * g, donate_argnums=0)
>>> w = gt.zeros(3)
>>> w = step(w, gt.ones(3))         # (where numba is installed: fused, written into w's buffer if large)
>>> w
Tensor([-0.1, -0.1, -0.1])
"""
from __future__ import annotations

import sys

from .. import _tree

__all__ = ["plan", "donated_positions", "own_raws"]

# ops whose results are new arrays (besides the fused kernels'): NumPy's matmul and arithmetic operators
FRESH = frozenset({"matmul", "add", "subtract", "multiply", "divide"})


def plan(graph, kernels, donated=frozenset(), fresh=()):
    """Set ``kernel.reuse`` (``((k, p), ...)``: output k written into input p's buffer) for each kernel of
    ``graph``'s fused nodes (``fused{j}``: ``kernels[j]``); ``donated``: positions of the graph's inputs the
    call may overwrite; ``fresh``: more nodes whose value is an array of its own (the BLAS products of
    :mod:`~gradtape._jit.blas`). Returns the set of donated input positions some kernel reuses."""
    nodes = graph.nodes
    readers = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        for d in n.deps():
            if not readers[d] or readers[d][-1] != i:
                readers[d].append(i)
    outs = set(graph._out_refs())
    guarded = {gd.node for gd in graph.guards}
    fused = {f"fused{j}": k for j, k in enumerate(kernels)}
    inputs = {i: p for p, i in enumerate(graph._in)}
    fresh = _fresh(nodes, fused) | set(fresh)
    used = set()
    for k in kernels:
        k.reuse = ()
    for f, n in enumerate(nodes):
        kernel = fused.get(n.op) if n.kind == "prim" else None
        if kernel is None or not getattr(kernel, "inplace_ok", False):
            continue
        taken, reuse = set(), []
        region = kernel.region
        for k in range(len(region.outputs)):
            if k in region.sums:
                continue
            dtype = nodes[f].dtype if len(region.outputs) == 1 else nodes[f].result_types[k][1]
            for p, ref in enumerate(n.inputs):
                d = ref.i
                if d in taken or kernel.reads[p].mode != "full" or nodes[d].dtype != dtype:
                    continue
                if not kernel.may_reuse(k, p):
                    continue
                if d in inputs:
                    if inputs[d] not in donated:
                        continue
                elif d not in fresh:
                    continue
                if d in outs or d in guarded or readers[d][-1] != f or not _quiet(d, f, nodes, readers, fused,
                                                                                  outs):
                    continue
                taken.add(d)
                reuse.append((k, p))
                if d in inputs:
                    used.add(inputs[d])
                break
        kernel.reuse = tuple(reuse)
    return used


def _fresh(nodes, fused):
    """Nodes whose value is an array of its own: a fused kernel's result (an item of a multi-output one)
    or a FRESH op's."""
    out = set()
    for i, n in enumerate(nodes):
        if n.kind == "prim" and (n.op in fused and not n.result_types or n.op in FRESH):
            out.add(i)
        elif n.kind == "item" and nodes[n.inputs[0].i].op in fused:
            out.add(i)
    return out


def _quiet(d, f, nodes, readers, fused, outs):
    """Whether every value that may share d's buffer (results of the ops reading d other than fused kernels
    and FRESH ops, and theirs in turn) is dead before step f and is no output."""
    stack, seen = [d], {d}
    while stack:
        v = stack.pop()
        for r in readers[v]:
            n = nodes[r]
            if n.kind == "prim" and (n.op in FRESH or (n.op in fused and r != f)):
                continue                        # a new array (a fused kernel's, a matmul's)
            if r == f:
                if v != d:
                    return False                # an alias read by the kernel itself
                continue
            if r in outs or r > f or (readers[r] and readers[r][-1] >= f):
                return False                    # a possible alias alive at step f or after it
            if r not in seen:
                seen.add(r)
                stack.append(r)
    return True


def donated_positions(sig, donate_argnums, nargs):
    """Positions among a call's array leaves (the graph's inputs, in order) of the donated arguments'."""
    nleaves = len(sig.fixed)
    rest, _ = _tree.tree_unflatten(sig.spec, list(range(nleaves)))
    where = {leaf: k for k, leaf in enumerate(sig.arr)}
    kept = [k for k in range(nargs) if k not in sig.static]
    out = set()
    for i in donate_argnums:
        k = i + nargs if i < 0 else i
        if k in sig.static or not 0 <= k < nargs:
            continue
        for leaf in _tree.tree_leaves(rest[kept.index(k)]):
            if leaf in where:
                out.add(where[leaf])
    return frozenset(out)


def own_raws(raws, arrays, positions, tensor_type):
    """Make each donated position of the list ``raws`` the call's own, in place: kept where the tensor passed
    there is the array's only holder (and it is writeable, C-contiguous, owning its memory or the only view
    of it), a copy otherwise (a raw array argument, an array another tensor or a view shares)."""
    for p in positions:
        a = arrays[p]
        if not (type(a) is tensor_type and not a._requires_grad and a.data is raws[p] and _sole(raws, p)):
            raws[p] = raws[p].copy()


def _refs(seq, p):
    """The reference count of ``seq[p]`` as taken here (the count of two holders is :data:`_TWO`, measured the
    same way: what the interpreter adds for the call itself cancels out)."""
    return sys.getrefcount(seq[p])


class _Holder:
    __slots__ = ("data",)


def _two():
    h = _Holder()
    h.data = object()
    return _refs([h.data], 0)           # held by the list and by h.data


_TWO = _two() if hasattr(sys, "getrefcount") else None


def _sole(raws, p):
    """Whether ``raws[p]`` is held by the list and the tensor alone (and is writeable, C-contiguous, owning its
    memory or the only view of an array held by nothing else)."""
    if _TWO is None:
        return False
    r = raws[p]
    if not hasattr(r, "flags") or not (r.flags.writeable and r.flags.c_contiguous):   # (a flags object holds r)
        return False
    b = r.base
    del r
    if _refs(raws, p) != _TWO:
        return False
    # (a kernel's result is a reshaped view of its flat array: that array held by the view alone)
    return b is None or (getattr(b, "base", 0) is None and _refs([b], 0) == _TWO + 1)
