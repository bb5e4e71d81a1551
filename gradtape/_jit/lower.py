"""Lowering a traced graph to an executable: the contract between ``gt.jit`` and the kernel generators.

:func:`compile_graph` takes an optimised :class:`gradtape.graph.Graph` and the backend the call runs on and
returns an :class:`Executable`: ``exe(*raw_arrays) -> tuple of raw arrays`` in the graph's input/output
order, plus ``exe.source()`` (the text of what runs) and ``exe.kind`` (``"replay"``, ``"numba"``,
``"cuda"``).

On NumPy with numba installed, the graph's elementwise regions (:mod:`~gradtape._jit.fusion`) become numba
kernels (:mod:`~gradtape._jit.numba_lower`) and the graph is rewritten with one node per region (a node per
output of it); everything else (matmul, reductions, reshapes, linalg...) stays a backend call of the replay
plan that runs the rewritten graph. Elsewhere (array-api-strict, CuPy: :mod:`~gradtape._jit.cuda_lower`
generates its kernels' source) and without numba (one warning per process) the executable is the graph's
replay plan: correct, not fused.
"""
from __future__ import annotations

import heapq
import warnings

from . import blas as _blas
from . import buffers as _buffers
from . import cuda_lower as _cuda
from . import numba_lower as _numba
from . import rows as _rows
from . import vecmath as _vecmath
from .._core.primitive import define
from ..graph import Graph
from ..graph.ir import Guard, IRNode, Ref, _is_host_array, _map_refs, _np_value
from ..graph.plan import _Plan
from .fusion import attach_sums, find_regions
from .scalar import NotScalar

__all__ = ["Executable", "compile_graph"]

NO_NUMBA = "numba not installed: gt.jit runs the replay plan, not fused (pip install gradtape[jit])"
_warned = []


class Executable:
    """What a jitted call runs for one input signature: ``exe(*raws) -> tuple of raws``."""

    __slots__ = ("fn", "kind", "_source", "kernels", "graph", "donated")

    def __init__(self, fn, kind, source, kernels=(), graph=None, donated=frozenset()):
        self.fn, self.kind, self._source = fn, kind, source
        self.kernels, self.graph = tuple(kernels), graph
        self.donated = donated          # input positions a kernel writes into (donated arguments)

    def __call__(self, *raws):
        return self.fn(*raws)

    def source(self):
        """The text of what runs (the replay listing, or the generated kernels' source and the step list)."""
        return self._source


def _replay(graph, backend):
    plan = _Plan(graph, backend)
    return Executable(plan.fn, "replay", plan.source, graph=graph)


def compile_graph(graph, backend, *, fuse=True, donated=frozenset()):
    """An :class:`Executable` for ``graph`` on ``backend``: fused numba kernels on NumPy where numba is
    installed, the replay plan otherwise. ``donated``: positions of inputs the call hands over (the kernels
    may write their results into them, :mod:`~gradtape._jit.buffers`; ``exe.donated`` says which they do).

    >>> import gradtape as gt
    >>> from gradtape import backends
    >>> from gradtape._jit.lower import compile_graph
    >>> g = gt.trace(lambda x: gt.sin(x) * 2.0, gt.ones(3))
    >>> exe = compile_graph(g, backends.get("strict"))
    >>> exe.kind
    'replay'
    """
    if fuse and backend.name == "cupy" and _cuda.ENABLED:
        return _lower_cuda(graph, backend)
    if not fuse or backend.name != "numpy":
        return _replay(graph, backend)
    if not _numba.numba_available():
        if not _warned:
            _warned.append(True)
            warnings.warn(NO_NUMBA, RuntimeWarning, stacklevel=2)
        return _replay(graph, backend)
    regions = find_regions(graph, exclude=_exclude(graph), alone=_alone)
    attach_sums(graph, regions, _numba.VM_MIN, _guarded(graph))
    kernels = []
    for r in regions:
        try:
            kernels.append(_numba.region_kernel(r, graph, backend, _vecmath.kernel_ops(r.ftype)))
        except NotScalar:
            continue
    for k in kernels:
        k.load()
    g2 = rewrite(graph, kernels)
    gemms, row_ops = _blas_products(g2), _row_ops(g2, backend)
    products = gemms + row_ops
    if not kernels and not products:
        return _replay(graph, backend)
    fn = _direct(g2, kernels, backend)
    # buffers: results into dying inputs (not the donated ones where guards may stop a call midway)
    used = _buffers.plan(g2, kernels, frozenset() if g2.guards or fn is not None else donated, products)
    plan = _Plan(g2, backend)
    src = "\n\n".join([f"# ---- fused{j}: {k.path}\n{k.source}" + _reuse_note(k) for j, k in enumerate(kernels)]
                      + ([_blas.note(len(gemms))] if gemms else []) + ([_rows.note(g2, row_ops)] if row_ops else [])
                      + ["# ---- steps\n" + plan.source])
    return Executable(fn or plan.fn, "numba" if kernels else "replay", src, kernels, g2, frozenset(used))


def _blas_products(g2):
    """The 2-D float matmuls of ``g2`` that :mod:`~gradtape._jit.blas` may run (a faster BLAS installed):
    each node's primitive swapped for one calling its :class:`~gradtape._jit.blas.Product` (in place: ``g2``
    is the lowering's own copy). Returns their node indices (each result is an array of its own)."""
    found = []
    for i, n in enumerate(g2.nodes):
        if n.kind != "prim" or n.op != "matmul" or n.attrs.get("nd") != (2, 2):
            continue
        x, y = (g2.nodes[a.i] if isinstance(a, Ref) else None for a in n.inputs)
        if x is None or y is None or x.dtype != n.dtype or y.dtype != n.dtype:
            continue
        product = _blas.product_for(x.shape, y.shape, n.dtype)
        if product is None:
            continue
        n.prim, n.op = _swapped(f"gemm{len(found)}", product, ("x", "y")), f"gemm{len(found)}"
        found.append(i)
    return found


def _row_ops(g2, backend):
    """The cross-entropy nodes of ``g2`` that :mod:`~gradtape._jit.rows`' kernels run (small float logits):
    each node's primitive swapped for one calling its :class:`~gradtape._jit.rows.RowOp`, in place. Returns
    their node indices (each result is an array of its own)."""
    found = []
    for i, n in enumerate(g2.nodes):
        if n.kind != "prim" or n.op not in _rows.PRIMS or len(n.inputs) != 2:
            continue
        x, labels = (g2.nodes[a.i] if isinstance(a, Ref) else None for a in n.inputs)
        if x is None or labels is None or x.dtype != n.dtype:
            continue
        op = _rows.op_for(n.op, x.shape, x.dtype, labels.dtype, n.prim.fwd)
        if op is None:
            continue
        op.warm(backend.xp, x.dtype, labels.dtype)
        n.prim, n.op = _swapped(f"{n.op}_rows", op, ("x", "labels")), f"{n.op}_rows"
        found.append(i)
    return found


def _swapped(name, run, inputs):
    """A one-off primitive calling ``run(xp, *inputs)`` in a node's place (a BLAS product, a row kernel); the
    node's attributes (matmul's ``nd``) are not needed by it."""
    def fwd(xp, *xs, **_):
        return run(xp, *xs)
    return define(name, fwd, inputs=inputs, register=False)


def _reuse_note(k):
    if not k.reuse:
        return ""
    return "\n# in place: " + ", ".join(f"output {o} into input {p}'s buffer" for o, p in k.reuse)


def _direct(g2, kernels, backend):
    """The kernel itself as the executable, where the graph is one kernel and its outputs (a whole small
    elementwise function, its gradient with it): no plan, no steps. None otherwise."""
    nodes = g2.nodes
    fused = [i for i, n in enumerate(nodes) if n.kind not in ("input", "const", "item")]
    if len(kernels) != 1 or g2.guards or len(fused) != 1:
        return None
    f = fused[0]
    items = {}
    for i, n in enumerate(nodes):
        if n.kind == "item":
            if n.inputs[0].i != f:
                return None
            items[i] = int(n.attrs["k"])
    if not items:
        items = {f: 0}
    elif f in g2._out_refs():
        return None
    srcs = []
    pos = {i: k for k, i in enumerate(g2._in)}
    for a in nodes[f].inputs:
        d = nodes[a.i]
        if d.kind == "input":
            srcs.append(pos[a.i])
        elif d.kind == "const" and d.backend is backend and not _is_host_array(d.value):
            srcs.append(d.value)
        elif d.kind == "const":
            srcs.append(backend.asarray(_np_value(d)))
        else:
            return None
    order = []
    for r in g2._out_refs():
        if r not in items:
            return None
        order.append(items[r])
    run = kernels[0].direct(srcs)
    if run is None or order == list(range(len(kernels[0].region.outputs))):
        return run
    order = tuple(order)

    def reordered(*raws):
        res = run(*raws)
        return tuple([res[k] for k in order])
    return reordered


def _alone(graph, i):
    """One elementwise node worth a kernel by itself: a large outer-product-like broadcast (numba_lower)."""
    n = graph.nodes[i]
    return _numba.alone_worth_a_kernel([graph.nodes[d].shape for d in n.deps()], n.shape)


def _exclude(graph):
    """Nodes kept out of the kernels: what NumPy runs faster unfused, and the guarded nodes (their values are
    checked by the plan right after they are computed)."""
    policy, guarded = _vecmath.unfused_policy(graph), _guarded(graph)
    return policy if guarded is None else (lambda n: guarded(n) or policy(n))


def _guarded(graph):
    guarded = {id(graph.nodes[gd.node]) for gd in graph.guards}
    return (lambda n: id(n) in guarded) if guarded else None


def _lower_cuda(graph, backend, kernel=None):
    """CuPy: a kernel per region (an elementwise one, or a reduction where the region's one output is summed
    whole; ``kernel``: the class, :class:`~gradtape._jit.cuda_lower.CudaKernel` unless
    a test passes its host stand-in), the plan of the rewritten graph; without guards its steps run from a
    CUDA graph (:class:`~gradtape._jit.cuda_lower.Captured`; ``exe.fn.reason`` says why one was not kept)."""
    kernel = kernel or _cuda.CudaKernel
    kernels = []
    guarded = _guarded(graph)
    for r in _cuda.reducing_regions(graph, find_regions(graph, exclude=guarded), guarded):
        try:
            kernels.append(kernel(r, graph, f"gt_fused{len(kernels)}", backend))
        except NotScalar:
            continue
    if not kernels:
        return _replay(graph, backend)
    g2 = rewrite(graph, kernels)
    plan = _Plan(g2, backend)
    src = "\n\n".join([f"// ---- fused{j}\n{k.source}" for j, k in enumerate(kernels)] + ["# ---- steps\n" + plan.source])
    fn = plan.fn if g2.guards or backend.name != "cupy" else _cuda.Captured(plan.fn, backend)
    return Executable(fn, "cuda", src, kernels, g2)


def _fused_prim(j, kernel):
    def fwd(xp, *xs):
        return kernel(xp, *xs)
    return define(f"fused{j}", fwd, inputs=tuple(f"x{i}" for i in range(len(kernel.region.inputs))),
                  register=False)


def rewrite(graph, kernels):
    """``graph`` with each kernel's region replaced by one node (and an ``item`` node per output when it has
    several), in a topological order of the condensed graph; the guards kept (on nodes outside the regions)."""
    nodes = graph.nodes
    owner = {}
    for j, k in enumerate(kernels):
        for i in k.region.nodes:
            owner[i] = j
        for i in k.region.sums.values():
            owner[i] = j
    units = {}            # unit -> set of units it waits for
    for i, n in enumerate(nodes):
        u = ("r", owner[i]) if i in owner else ("n", i)
        need = units.setdefault(u, set())
        need.update(("r", owner[d]) if d in owner else ("n", d) for d in n.deps())
        need.discard(u)
    first = {u: (u[1] if u[0] == "n" else kernels[u[1]].region.nodes[0]) for u in units}
    waiting = {u: len(v) for u, v in units.items()}
    users = {}
    for u, v in units.items():
        for w in v:
            users.setdefault(w, []).append(u)
    heap = [(first[u], u) for u, c in waiting.items() if c == 0]
    heapq.heapify(heap)
    new, out = {}, []
    while heap:
        _, u = heapq.heappop(heap)
        if u[0] == "n":
            _emit_node(nodes[u[1]], u[1], new, out)
        else:
            _emit_region(u[1], kernels[u[1]], nodes, new, out)
        for w in users.get(u, ()):
            waiting[w] -= 1
            if waiting[w] == 0:
                heapq.heappush(heap, (first[w], w))
    if any(c for c in waiting.values()):
        raise RuntimeError("gradtape.jit: fused regions make a cycle (a fusion bug)")
    remap = lambda r: Ref(new[r.i])  # noqa: E731
    g2 = Graph(out, [new[i] for i in graph._in], _map_refs(graph._out_tree, remap), name=graph.name,
               layout=_map_refs(graph._layout, remap), kw_layout=_map_refs(graph._kw_layout, remap),
               home=graph._home, guards=[_moved(gd, new, owner) for gd in graph.guards])
    return g2


def _moved(gd, new, owner):
    if gd.node in owner:
        raise RuntimeError(f"gradtape.jit: guarded node %{gd.node} was fused (a lowering bug)")
    return Guard(new[gd.node], gd.kind, gd.value, gd.where)


def _emit_node(n, i, new, out):
    remap = lambda r: Ref(new[r.i])  # noqa: E731
    c = IRNode(n.kind, n.op, _map_refs(n.inputs, remap), _map_refs(n.attrs, remap), shape=n.shape, dtype=n.dtype,
               result_types=n.result_types, rev=n.rev, prim=n.prim, value=n.value, backend=n.backend,
               device=n.device)
    new[i] = len(out)
    out.append(c)


def _emit_region(j, kernel, nodes, new, out):
    r = kernel.region
    ins = tuple(Ref(new[d]) for d in r.inputs)
    res = r.results()
    types = [(r.out_shape(k), nodes[i].dtype) for k, i in enumerate(res)]
    prim = _fused_prim(j, kernel)
    if len(res) == 1:
        new[res[0]] = len(out)
        out.append(IRNode("prim", prim.name, ins, shape=types[0][0], dtype=types[0][1], prim=prim))
        return
    at = len(out)
    out.append(IRNode("prim", prim.name, ins, result_types=types, prim=prim))
    for k, i in enumerate(res):
        new[i] = len(out)
        out.append(IRNode("item", "item", (Ref(at),), {"k": k}, shape=types[k][0], dtype=types[k][1]))
