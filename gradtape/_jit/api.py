"""``gt.jit``: trace a function once per input signature, optimise and lower the graph, then run it.

Size: ~720 lines: the jitted function (signature keys, its bounded cache, plain calls, donation, vmap), and
its derivatives (a call with tracked inputs is one node whose VJP and JVP rules are jitted functions of
the traced function's vjp/jvp, so derivatives are compiled too and differentiable in turn).

A call of a :class:`Jitted` function goes one of these ways:

- plain (no input requires grad or carries a tangent): the cache entry for the call's signature
  (:func:`signature`) runs its :class:`~gradtape._jit.lower.Executable` on the raw arrays: no per-op
  dispatch. A miss traces (``gt.trace``), optimises (:func:`gradtape._jit.passes.optimize`) and compiles
  (:func:`gradtape._jit.lower.compile_graph`). A guard that fails (a Python decision the traced path took
  on a value, now different) retraces for the new path: a second entry under the same signature.
- reverse mode (an input requires grad): the outputs come from the compiled forward, recorded as one
  node (as ``custom_vjp`` does) whose VJP runs the jitted ``vjp`` of the function.
- forward mode (an input carries a tangent of an active ``gt.jvp``): the jitted ``jvp`` of the function
  gives the outputs and their tangents.
- under ``gt.vmap`` (a batched argument): one jitted function of the batched values (every array leaf
  as its batched value; ``vmap`` of the function traced once and compiled); where the batched arguments
  are also differentiated, the function runs batched op by op.
- inside another trace (``gt.trace``, an outer ``gt.jit``): inlined into the outer graph.
"""
from __future__ import annotations

import collections
import functools
import math
import threading
import warnings

from .. import _tree
from .. import backends as _backends
from .._api import asarray, broadcast_to, conj, reshape, zeros_like
from .._autodiff import batched as _batched_mod
from .._autodiff import custom as _custom
from .._autodiff.transforms import jvp as _jvp, vjp as _vjp
from .._autodiff.vmap import vmap as _vmap
from .._core.dispatch import wrap
from .._core.dtypes import dtype_name, is_float
from .._core.tensor import Tensor
from .._state import scoped, state
from ..graph import trace as _trace
from ..graph.guards import GuardError
from ..graph.ir import Ref
from ..graph.plan import _unflattener, gather_raws
from . import buffers as _buffers
from . import lower as _lower
from . import passes as _passes

__all__ = ["jit", "Jitted", "Lowered", "CacheInfo", "MAXSIZE"]

MAXSIZE = 64            # cache entries (signatures x traced paths) kept per jitted function, least recently used out

CacheInfo = collections.namedtuple("CacheInfo", "hits misses maxsize currsize traces compiles")


def jit(fun=None, *, static_argnums=(), donate_argnums=(), maxsize=MAXSIZE):
    """``fun`` compiled: traced once per input signature, optimised, lowered, then run without per-op dispatch.

    The signature of a call is the shapes, dtypes and devices of its array arguments (leaves of pytree
    arguments too), the pytree structure, the values of the ``static_argnums`` arguments (hashable: an
    unhashable one is a TypeError) and of other non-array leaves (Python numbers are fixed in the
    graph). The first call of a signature traces and compiles; later calls run the compiled code. A
    Python decision ``fun`` takes on a traced value (``if``, ``float()``, ``.item()``...) is a guard: a
    call where it would go another way traces that path too (never the wrong path). The cache keeps
    ``maxsize`` entries (least recently used out): ``f.cache_info()``, ``f.clear_cache()``;
    ``f.lower(*args)`` shows what runs (``.graph``, ``.source()``).

    A jitted function is differentiable (``gt.grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian``: its
    derivatives are jitted too) and may be jitted inside ``gt.grad`` (``gt.jit(gt.grad(f))``). Under
    ``gt.vmap`` the batched function is compiled (differentiated there: batched op by op).
    ``donate_argnums``: the arrays of these arguments are handed over to the call; using them afterwards
    is a RuntimeError naming them (as JAX's donation; a donated argument that requires grad is not donated).
    Without numba the executable is the replay plan (correct, not fused).

    >>> import gradtape as gt
    >>> @gt.jit
    ... def f(x):
    ...     return gt.sum(gt.sin(x) ** 2)
    >>> x = gt.asarray([0.5, 1.0])
    >>> bool(abs(f(x) - gt.sum(gt.sin(x) ** 2)) < 1e-15), f.cache_info().compiles
    (True, 1)
    >>> g = gt.grad(f)(x)                 # differentiable; the gradient runs a jitted vjp
    >>> bool(gt.all(abs(g - gt.sin(2 * x)) < 1e-12))
    True
    >>> gt.jit(lambda x, n: x * n, static_argnums=1)(x, 3)
    Tensor([1.5, 3. ])
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums, donate_argnums=donate_argnums,
                                 maxsize=maxsize)
    if not callable(fun):
        raise TypeError(f"gradtape.jit: fun must be callable, got {type(fun).__name__}")
    return Jitted(fun, static_argnums, donate_argnums, maxsize)


def _nums(v, what):
    v = (v,) if isinstance(v, int) else tuple(v)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        raise TypeError(f"gradtape.jit: {what} must be an int or a tuple of ints, got {v!r}")
    return v


class _Entry:
    """One compiled path: the graph, its executable, and how raw results become the output tree."""

    __slots__ = ("graph", "exe", "run", "post", "backend")

    def __init__(self, graph, exe, backend):
        self.graph, self.exe, self.backend = graph, exe, backend
        self.run = getattr(exe, "fn", exe)          # (the executable's function itself: one call less)
        cross = any(n.kind == "prim" and n.op == "to_device" for n in graph.nodes)
        post = _unflattener(graph._out_tree, backend, cross)
        restore = graph._restore
        self.post = post if restore is None else (lambda res: restore(post(res)))


class _Sig:
    """How a call's arguments were split: the pytree of (args without the static ones, kwargs), its fixed
    leaves, where the array leaves stand, and the static arguments (for rebuilding a call)."""

    __slots__ = ("spec", "fixed", "arr", "static", "nargs")

    def __init__(self, spec, fixed, arr, static, nargs):
        self.spec, self.fixed, self.arr, self.static, self.nargs = spec, fixed, arr, static, nargs

    def call(self, fun, arrays):
        leaves = list(self.fixed)
        for p, v in zip(self.arr, arrays):
            leaves[p] = v
        rest, kw = _tree.tree_unflatten(self.spec, leaves)
        rest = list(rest)
        args = [self.static[k] if k in self.static else rest.pop(0) for k in range(self.nargs)]
        return fun(*args, **kw)


def _is_array(a):
    if type(a) is Tensor:
        return True
    if isinstance(a, (bool, int, float, complex, str)) or a is None:
        return False
    return isinstance(a, Tensor) or (hasattr(a, "shape") and hasattr(a, "dtype") and
                                     _backends.backend_of(a) is not None)


def _leaf_key(v, name):
    if _is_array(v):
        if isinstance(v, Tensor):
            return (v.data.shape, v.data.dtype, v.backend)
        return (tuple(v.shape), v.dtype, _backends.backend_of(v))
    try:
        hash(v)
    except TypeError:
        raise TypeError(f"gradtape.jit {name}: a non-array argument leaf of type {type(v).__name__} is not "
                        f"hashable, so it cannot be part of the compiled signature; pass arrays, or hashable "
                        f"values (marked static with static_argnums)") from None
    return ("v", type(v), v)


class Jitted:
    """A function compiled by :func:`jit` (call it like the function). See :func:`jit`.

    >>> import gradtape as gt
    >>> f = gt.jit(lambda x: x * 2.0)
    >>> f(gt.ones(2)); f(gt.ones(2)); f(gt.ones(3))
    Tensor([2., 2.])
    Tensor([2., 2.])
    Tensor([2., 2., 2.])
    >>> f.cache_info()
    CacheInfo(hits=1, misses=2, maxsize=64, currsize=2, traces=2, compiles=2)
    """

    def __init__(self, fun, static_argnums=(), donate_argnums=(), maxsize=MAXSIZE):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums = _nums(static_argnums, "static_argnums")
        self.donate_argnums = _nums(donate_argnums, "donate_argnums")
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ValueError(f"gradtape.jit: maxsize must be a positive int, got {maxsize!r}")
        self.maxsize = maxsize
        self.nondiff_argnums = ()           # (read by the custom-rule node machinery for messages)
        self._prims = {}
        self._cache = collections.OrderedDict()     # signature key -> [_Entry, ...] (one per traced path)
        self._size = 0
        self._lock = threading.RLock()
        self._derived = {}                  # (kind, key) -> the jitted vjp / jvp of fun at that signature
        self._last = None                   # (key, entries) of the last fast-path hit; None after any change
        self._simple = not self.static_argnums and not self.donate_argnums
        self.hits = self.misses = self.traces = self.compiles = 0
        self._warned = False
        self.__name__ = getattr(fun, "__name__", type(fun).__name__)

    def __repr__(self):
        return f"<gradtape.jit {self.__name__}>"

    def __get__(self, obj, objtype=None):       # a jitted method binds like a function
        return self if obj is None else functools.partial(self, obj)

    # -- inspection
    def cache_info(self):
        """Counts as ``functools.lru_cache`` gives them (hits, misses, maxsize, currsize), plus traces and
        compiles (a guard's retrace is a trace and a compile, not a miss).

        >>> import gradtape as gt
        >>> gt.jit(gt.sin).cache_info()
        CacheInfo(hits=0, misses=0, maxsize=64, currsize=0, traces=0, compiles=0)
        """
        return CacheInfo(self.hits, self.misses, self.maxsize, self._size, self.traces, self.compiles)

    def clear_cache(self):
        """Forget every compiled entry (and the jitted derivatives); the counts stay.

        >>> import gradtape as gt
        >>> f = gt.jit(gt.sin); _ = f(gt.ones(2)); f.clear_cache(); f.cache_info().currsize
        0
        """
        with self._lock:
            self._last = None
            self._cache.clear()
            self._derived.clear()
            self._size = 0

    def lower(self, *args, **kwargs):
        """The compiled entry for these arguments (traced and compiled if new), without running it:
        ``.graph`` (the optimised graph), ``.source()`` (the text of what runs), ``.kind``.

        >>> import gradtape as gt
        >>> low = gt.jit(lambda x: gt.sin(x) * 1.0).lower(gt.ones(2))
        >>> [n.op for n in low.graph.nodes], low.kind in ("replay", "numba", "cuda")
        (['x', 'sin'], True)
        """
        key, sig, arrays = self._signature(args, kwargs)
        raws, backend = self._raws(arrays)
        entries = self._cache.get(key)
        entry = entries[0] if entries else self._compile(key, sig, arrays, backend)
        return Lowered(entry)

    # -- calls
    def __call__(self, *args, **kwargs):
        # the fast path: plain tensor arguments (no grad, no tangents, not traced) of a cached signature; the
        # key is the one _signature gives such a call (shapes, dtypes, backends), built inline
        if self._simple and not kwargs and state.tracer is None:
            if len(args) == 1:
                a = args[0]
                if type(a) is Tensor and a.tangents is None and not (a._requires_grad and state.enabled):
                    d = a.data
                    key = ((d.shape, d.dtype, a.backend),)
                    raws = (d,)
                else:
                    key = None
            else:
                key, raws = [], []
                for a in args:
                    if type(a) is not Tensor or a.tangents is not None or (a._requires_grad and state.enabled):
                        key = None
                        break
                    d = a.data
                    key.append((d.shape, d.dtype, a.backend))
                    raws.append(d)
                else:
                    key = tuple(key)
            if key is not None:
                last = self._last               # (the previous hit's key, already last in the LRU order)
                if last is not None and last[0] == key:
                    entries = last[1]
                else:
                    entries = self._cache.get(key)
                if entries is not None:
                    e = entries[0]
                    try:
                        res = e.run(*raws)
                    except GuardError:          # another path: the other entries, or a new trace
                        return self._run(key, entries[1:], raws, args, kwargs)
                    self.hits += 1              # (the hit path takes no lock: counts are approximate under threads)
                    if last is None or last[1] is not entries:
                        try:
                            self._cache.move_to_end(key)
                            self._last = (key, entries)
                        except KeyError:        # evicted meanwhile by another thread
                            pass
                    return e.post(res)
        return self._call(args, kwargs)

    def _run(self, key, entries, raws, args, kwargs, sig=None, arrays=None):
        """Run the first entry whose guards hold; a failed guard tries the next, then traces the new path."""
        for e in entries:
            try:
                res = self._exec(e.exe, raws, arrays)
            except GuardError:
                continue
            with self._lock:
                self.hits += 1
                if key in self._cache:
                    self._cache.move_to_end(key)
                    self._last = None
            return e.post(res)
        if sig is None:
            key, sig, arrays = self._signature(args, kwargs)
        return self._retrace(key, sig, arrays, raws)

    def _call(self, args, kwargs):
        key, sig, arrays = self._signature(args, kwargs)
        if state.tracer is not None:
            return sig.call(self.fun, arrays)     # inside a trace: inlined
        if state.batch and any(hasattr(a, "__gradtape_apply__") for a in arrays):
            if state.levels or any(isinstance(a, Tensor) and (a._requires_grad or a.tangents) for a in arrays):
                return sig.call(self.fun, arrays)     # differentiated under vmap: batched op by op
            return self._vmapped(sig, arrays)
        levels = state.levels
        if levels and any(isinstance(a, Tensor) and a.tangents and any(lv in levels for lv in a.tangents)
                          for a in arrays):
            return self._forward(key, sig, arrays)
        if state.enabled and any(isinstance(a, Tensor) and a._requires_grad for a in arrays):
            return self._reverse(key, sig, arrays)
        raws, _ = self._raws(arrays)
        entries = self._cache.get(key)
        if entries is None:
            out = self._retrace(key, sig, arrays, raws)
        else:
            out = self._run(key, entries, raws, None, None, sig, arrays)
        if self.donate_argnums:
            self._donate(args, sig)
        return out

    def _signature(self, args, kwargs):
        """(key, _Sig, array leaves) of a call."""
        n = len(args)
        static = {}
        for i in self.static_argnums:
            k = i + n if i < 0 else i
            if not 0 <= k < n:
                continue
            v = args[k]
            try:
                hash(v)
            except TypeError:
                raise TypeError(f"gradtape.jit {self.__name__}: static argument {i} (static_argnums) must be "
                                f"hashable, got a {type(v).__name__}; pass it as an array argument, or make it "
                                f"hashable (a tuple instead of a list)") from None
            static[k] = v
        rest = tuple(a for k, a in enumerate(args) if k not in static)
        kw = dict(sorted(kwargs.items()))
        leaves, spec = _tree.tree_flatten((rest, kw))
        fixed, arr, arrays, lk = [], [], [], []
        for p, v in enumerate(leaves):
            lk.append(_leaf_key(v, self.__name__))
            if _is_array(v):
                arr.append(p)
                arrays.append(v)
                fixed.append(None)
            else:
                fixed.append(v)
        if not static and not kw and all(_is_array(a) for a in args):
            key = tuple(lk)            # (the fast path's key: a tuple of plain array arguments)
        else:
            key = ("sig", spec, tuple(lk), tuple((k, type(v), v) for k, v in sorted(static.items())))
        return key, _Sig(spec, tuple(fixed), tuple(arr), static, n), arrays

    @staticmethod
    def _raws(arrays):
        return gather_raws(arrays, "gradtape.jit: the array arguments")

    def _compile(self, key, sig, arrays, backend):
        """Trace, optimise and lower a new path for this signature (stored first under its key)."""
        examples = [wrap(a.data, a.backend) if isinstance(a, Tensor) else wrap(a, backend) for a in arrays]
        run = functools.partial(sig.call, self.fun)
        with scoped(levels=(), enabled=True):
            graph = _trace(_Flat(run, self.__name__, len(examples)), *examples)
        with self._lock:
            self.traces += 1
        if getattr(graph, "_grad_consts", 0) and not self._warned:
            self._warned = True
            warnings.warn(f"gradtape.jit {self.__name__}: the function reads tensors that require grad from "
                          f"outside its arguments (closures, module attributes; {graph._grad_consts} constant(s) "
                          f"of the graph): they are constants of the compiled graph, with their values as "
                          f"traced, and no gradient reaches them through it; pass them as arguments",
                          RuntimeWarning, stacklevel=4)
        graph = _passes.optimize(graph)
        donated = _buffers.donated_positions(sig, self.donate_argnums, sig.nargs) if self.donate_argnums else ()
        exe = _lower.compile_graph(graph, backend, donated=frozenset(donated))
        if graph.guards and getattr(exe, "graph", graph) is not graph and not exe.graph.guards:
            exe = _lower.compile_graph(graph, backend, fuse=False)     # (a lowering that dropped the guards)
        entry = _Entry(graph, exe, backend)
        with self._lock:
            self._last = None
            self.compiles += 1
            self._cache.setdefault(key, []).insert(0, entry)
            self._cache.move_to_end(key)
            self._size += 1
            while self._size > self.maxsize:
                old, es = next(iter(self._cache.items()))
                if old == key and len(es) > 1:
                    es.pop()
                    self._size -= 1
                    continue
                del self._cache[old]
                self._size -= len(es)
        return entry

    def _retrace(self, key, sig, arrays, raws):
        """A miss (a new signature) or a new path (every entry's guards failed): trace, compile, run."""
        backend = self._raws(arrays)[1]
        with self._lock:
            if key not in self._cache:
                self.misses += 1
        entry = self._compile(key, sig, arrays, backend)
        return entry.post(self._exec(entry.exe, raws, arrays))

    def _exec(self, exe, raws, arrays):
        """``exe(*raws)``; where its kernels write into donated arguments, those made the call's own first
        (:func:`gradtape._jit.buffers.own_raws`), and if it raises, the tensors whose buffers it was given
        are spent (a kernel may have written into them): using one is the donated tensors' RuntimeError."""
        donated = getattr(exe, "donated", None)
        if not donated or arrays is None:
            return exe(*raws)
        _buffers.own_raws(raws, arrays, donated, Tensor)
        try:
            return exe(*raws)
        except BaseException:
            for p in donated:
                a = arrays[p]
                if type(a) is Tensor and a.data is raws[p]:
                    a.data = a.backend = _Donated(f"a donated argument of gradtape.jit {self.__name__} (whose "
                                                  f"call raised after it got the buffer)")
            raise

    def _donate(self, args, sig):
        n = len(args)
        for i in self.donate_argnums:
            k = i + n if i < 0 else i
            if 0 <= k < n:
                for path, v in _tree.tree_flatten_with_path(args[k])[0]:
                    if type(v) is Tensor and not v._requires_grad:
                        gone = _Donated(f"argument {k}{_tree.keystr(path) if path else ''} of "
                                        f"gradtape.jit {self.__name__}")
                        v.data = v.backend = gone       # (every op reads one of them first)

    def _vmapped(self, sig, arrays):
        """Under gt.vmap: the jitted function of the batched values (every array leaf peeled to its batched
        value, the function run on tracers re-made around them, its outputs peeled), then re-wrapped."""
        levels = state.batch
        skey = ("vmap", len(levels), sig.spec, sig.fixed, tuple(sorted(sig.static.items())))
        fn = self._derived.get(skey)
        if fn is None:
            fn = self._derived[skey] = Jitted(_vmap_fn(self.fun, sig, self.__name__), maxsize=self.maxsize)
        fn.fun.levels = levels          # (read when it traces: the levels of this call)
        vals = [_batched_mod._peel(a, levels) for a in arrays]
        with scoped(batch=()):
            out = fn(*vals)
        return _batched_mod._wrap_tree(out, levels)

    # -- derivatives
    def _outputs(self, key, sig, arrays):
        """(output leaves as untracked tensors, output tree rebuild, entry) from the compiled forward."""
        raws, backend = self._raws(arrays)
        entries = self._cache.get(key)
        res = None
        for e in entries or ():
            try:
                res = e.exe(*raws)
                entry = e
                with self._lock:
                    self.hits += 1
                break
            except GuardError:
                continue
        if res is None:
            with self._lock:
                if key not in self._cache:
                    self.misses += 1
            entry = self._compile(key, sig, arrays, backend)
            res = entry.exe(*raws)
        tree = entry.graph._out_tree
        leaves, spec = _tree.flatten(tree, subclasses=False)
        it = iter(res)
        outs = [wrap(next(it), backend) if type(v) is Ref else v for v in leaves]
        post = entry.graph._restore

        def build(tensors):
            t = iter(tensors)
            full = [next(t) if type(v) is Ref else o for v, o in zip(leaves, outs)]
            out = _tree.unflatten(spec, full)
            return out if post is None else post(out)
        return [o for v, o in zip(leaves, outs) if type(v) is Ref], build

    def _derived_fn(self, kind, key, sig, arrays):
        got = self._derived.get((kind, key))
        if got is None:
            fl = tuple(k for k, a in enumerate(arrays) if _float(a))
            maker = _vjp_fn if kind == "vjp" else _jvp_fn
            got = self._derived[(kind, key)] = Jitted(maker(self.fun, sig, len(arrays), fl, self.__name__),
                                                      maxsize=self.maxsize)
        return got

    def _reverse(self, key, sig, arrays):
        """One node over the array leaves whose VJP rule runs the jitted vjp of ``fun`` at this signature."""
        outs, build = self._outputs(key, sig, arrays)
        if not outs:
            return build([])
        leaves = [a if isinstance(a, Tensor) else asarray(a) for a in arrays]
        bwd = self._derived_fn("vjp", key, sig, leaves)
        fl = [k for k, a in enumerate(leaves) if _float(a)]
        shapes = [tuple(o.shape) for o in outs]
        fo = [k for k, o in enumerate(outs) if _float(o)]

        def rule(ct):
            cts = tuple(ct) if isinstance(ct, (tuple, list)) else (ct,)
            c0 = cts[0]
            lead = tuple(c0.shape[:c0.ndim - len(shapes[0])])
            # rules take and give cotangents in the internal (JAX) convention, gt.vjp in PyTorch's: for complex
            # values the two are conjugates, so the cotangents are conjugated in and out
            cts = [_conj(cts[k]) for k in fo]
            if lead:
                got = _batched(bwd, leaves, cts, [shapes[k] for k in fo], lead)
            else:
                got = bwd(*leaves, *cts)
            it = iter(got)
            return tuple(_conj(next(it)) if k in fl else None for k in range(len(leaves)))
        res = _custom._node(self, leaves, outs[0] if len(outs) == 1 else tuple(outs), rule)
        return build([res] if len(outs) == 1 else list(res))

    def _forward(self, key, sig, arrays):
        """Forward mode at the innermost active level: the jitted jvp of ``fun`` gives the output tangents."""
        levels = state.levels
        leaves = [a if isinstance(a, Tensor) else asarray(a) for a in arrays]
        level = max(lv for a in leaves if a.tangents for lv in a.tangents if lv in levels)
        fl = [k for k, a in enumerate(leaves) if _float(a)]
        tans = [(leaves[k].tangents or {}).get(level) for k in fl]
        lead = next((tuple(t.shape[:t.ndim - leaves[k].ndim]) for k, t in zip(fl, tans) if t is not None), ())
        with scoped(levels=tuple(lv for lv in levels if lv < level)):
            if lead:        # a batched tangent (jacfwd): the outputs, then the tangents mapped over the batch
                outs, build = self._outputs_at(key, sig, leaves)
                tans = [_zeros(leaves[k], lead) if t is None else t for k, t in zip(fl, tans)]
                fwd = self._derived_fn("jvp", key, sig, leaves)
                touts = _batched_jvp(fwd, leaves, tans, lead, len(outs))
            else:
                tans = [zeros_like(leaves[k]) if t is None else t for k, t in zip(fl, tans)]
                fwd = self._derived_fn("jvp", key, sig, leaves)
                got = fwd(*leaves, *tans)
                n = len(got) // 2
                outs, touts = list(got[:n]), list(got[n:])
                build = self._builder(key, sig, leaves)
        for o, t in zip(outs, touts):
            if t is not None and _float(o):
                o.tangents = dict(o.tangents or ())
                o.tangents[level] = t
        return build(outs)

    def _outputs_at(self, key, sig, leaves):
        """Outputs as the function gives them at the levels below (tracked and with their tangents)."""
        out = sig.call(self, leaves)
        flat = _tree.tree_leaves(out)
        tensors = [v for v in flat if isinstance(v, Tensor)]
        spec = _tree.tree_structure(out)

        def build(ts):
            it = iter(ts)
            return _tree.tree_unflatten(spec, [next(it) if isinstance(v, Tensor) else v for v in flat])
        return tensors, build

    def _builder(self, key, sig, leaves):
        entries = self._cache.get(key)
        if not entries:
            self._compile(key, sig, leaves, self._raws(leaves)[1])
            entries = self._cache[key]
        g = entries[0].graph
        tl, spec = _tree.flatten(g._out_tree, subclasses=False)
        post = g._restore

        def build(ts):
            it = iter(ts)
            out = _tree.unflatten(spec, [next(it) if type(v) is Ref else v for v in tl])
            return out if post is None else post(out)
        return build


def _zeros(a, lead):
    """A zero tangent of ``a`` with the batch axes ``lead`` in front."""
    z = zeros_like(a)
    return broadcast_to(z, tuple(lead) + tuple(a.shape)) if lead else z


def _conj(t):
    return conj(t) if isinstance(t, Tensor) and dtype_name(t.dtype).startswith("complex") else t


def _float(a):
    return is_float(a.dtype) if isinstance(a, Tensor) else False


class _Flat:
    """``run(*arrays)`` under the jitted function's name (gt.trace names the graph and its inputs)."""

    def __init__(self, run, name, n):
        self.run, self.__name__ = run, name
        self.n = n

    def __call__(self, *arrays):
        return self.run(list(arrays))


class _vmap_fn:
    """``fun`` at ``sig`` as a function of batched values: ``(*batched arrays) -> batched outputs``."""

    def __init__(self, fun, sig, name):
        self.fun, self.sig, self.levels = fun, sig, ()
        self.__name__ = f"vmap_{name}"

    def __call__(self, *vals):
        lv = self.levels
        with scoped(batch=lv):
            out = self.sig.call(self.fun, [_batched_mod._wrap(v, lv) for v in vals])
            return _batched_mod._peel_tree(out, lv)


def _tensor_leaves(out):
    return tuple(v for v in _tree.tree_leaves(out) if isinstance(v, Tensor))


def _vjp_fn(fun, sig, n, fl, name):
    """``bwd(*arrays, *float output cotangents) -> cotangents of the float arrays`` of ``fun`` at ``sig``."""
    def bwd(*xs_cts):
        xs, cts = list(xs_cts[:n]), xs_cts[n:]

        def g(*ws):
            a = list(xs)
            for k, w in zip(fl, ws):
                a[k] = w
            return tuple(o for o in _tensor_leaves(sig.call(fun, a)) if is_float(o.dtype))
        _, f_vjp = _vjp(g, *[xs[k] for k in fl])
        got = f_vjp(tuple(cts))
        return tuple(got) if isinstance(got, (tuple, list)) else (got,)
    bwd.__name__ = f"vjp_{name}"
    return bwd


def _jvp_fn(fun, sig, n, fl, name):
    """``fwd(*arrays, *tangents of the float arrays) -> (*output leaves, *their tangents)``."""
    def fwd(*xs_ts):
        xs, ts = list(xs_ts[:n]), xs_ts[n:]
        kinds = []

        def g(*ws):
            a = list(xs)
            for k, w in zip(fl, ws):
                a[k] = w
            outs = _tensor_leaves(sig.call(fun, a))
            kinds[:] = [is_float(o.dtype) for o in outs]
            return outs
        out, tout = _jvp(g, tuple(xs[k] for k in fl), tuple(ts))
        touts = [t if f else None for t, f in zip(tout, kinds)]
        return tuple(out) + tuple(zeros_like(o) if t is None else t for o, t in zip(out, touts))
    fwd.__name__ = f"jvp_{name}"
    return fwd


def _batched(bwd, leaves, cts, shapes, lead):
    """The VJP for cotangents with leading batch axes ``lead`` (a batched Jacobian pass): vmapped."""
    m = math.prod(lead)
    flat = [reshape(c, (m,) + s) for c, s in zip(cts, shapes)]
    nl = len(leaves)
    got = _vmap(lambda *cs: bwd(*leaves, *cs), in_axes=tuple([0] * len(flat)))(*flat)
    got = got if isinstance(got, (tuple, list)) else (got,)
    return tuple(reshape(g, lead + tuple(g.shape[1:])) for g in got) if nl else ()


def _batched_jvp(fwd, leaves, tans, lead, nout):
    m = math.prod(lead)
    flat = [reshape(t, (m,) + tuple(t.shape[len(lead):])) for t in tans]
    got = _vmap(lambda *ts: fwd(*leaves, *ts)[nout:], in_axes=tuple([0] * len(flat)))(*flat)
    got = got if isinstance(got, (tuple, list)) else (got,)
    return [reshape(g, lead + tuple(g.shape[1:])) for g in got]


class _Donated:
    """What a donated tensor holds after the call: any use is a RuntimeError naming it."""

    __slots__ = ("what",)

    def __init__(self, what):
        object.__setattr__(self, "what", what)

    def _error(self, *a, **k):
        raise RuntimeError(f"gradtape.jit: {self.what} was donated (donate_argnums): its buffer belongs to the "
                           f"call now and cannot be used again; pass a copy to keep the original")

    def __getattr__(self, name):
        self._error()

    def __repr__(self):
        return f"<donated: {self.what}>"

    __bool__ = __float__ = __int__ = __index__ = __len__ = __iter__ = __getitem__ = __array__ = _error
    __add__ = __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = __truediv__ = __rtruediv__ = _error


class Lowered:
    """What a jitted function runs for one signature: ``.graph`` (after the passes), ``.source()``, ``.kind``.

    >>> import gradtape as gt
    >>> print(gt.jit(lambda x: x + x).lower(gt.ones(2)).source())
    def replay(v0):
        v1 = v0 + v0
        del v0
        return (v1,)
    """

    def __init__(self, entry):
        self._entry = entry
        self.graph = entry.graph
        self.kind = entry.exe.kind

    def source(self):
        """The text of what runs (the replay listing, or the generated kernels' source)."""
        return self._entry.exe.source()

    def __repr__(self):
        return f"<gradtape.jit Lowered {self.kind}: {self.graph!r}>"
