"""Primitives and their registry: the one way to declare a differentiable operation.

A primitive is declared once with :func:`define` (or its shorthands :func:`unary`, :func:`binary`,
:func:`define_linear`): its forward, and per input (by name) its VJP rule, its JVP rule and what the
rule reads. Everything else is derived from the registry :data:`PRIMS`: the public function of the
namespace it belongs to (``gt``, ``gt.nn``, ...), its use in ``gradtape.sym`` expressions, graph
load validation, the op-table coverage test, the docs list.

Rule signatures: ``vjp(xp, ct, out, *inputs, **params)`` gives the cotangent of one input,
``jvp(xp, t, out, *inputs, **params)`` the output tangent contributed by one input's tangent ``t``.
``xp`` is the backend namespace on raw arrays for first-order derivatives, or gradtape's tensor-level
namespace (:data:`gradtape._core.hooks.RULES`) when the derivative itself is recorded, so higher order
comes free. An input a rule does not read is passed as None.

>>> from gradtape._core.primitive import PRIMS
>>> PRIMS.sin.inputs, PRIMS.sin.reads
(('x',), ((0,),))
"""
from __future__ import annotations

__all__ = ["Primitive", "Registry", "PRIMS", "define", "unary", "binary", "define_linear", "Multi"]


class Primitive:
    """A differentiable operation: forward, per-input VJP and JVP rules, and what each rule reads.

    ``reads[i]`` holds input indices and/or "out": what the VJP of input i keeps alive (as PyTorch's
    derivatives.yaml infers it). Flags: ``same_shape`` (elementwise unary: the output has the input's
    shape and dtype), ``broadcasting`` (elementwise over broadcast inputs), ``multi_output`` (fwd returns
    a tuple; cotangents and tangents are :class:`Multi` tuples), ``view`` (the output may share the first
    input's memory). ``namespace`` is where its public function lives ("gt", "nn", "linalg", "special")
    or None (a primitive reached through a composite function), ``function`` that function. ``batch``: how
    it batches under ``gt.vmap`` (attached by :mod:`gradtape._ops.batching`; None: the elementwise default,
    or no rule)."""

    __slots__ = ("name", "inputs", "fwd", "vjp", "jvp", "reads", "reads_out", "reads_only_x", "same_shape",
                 "broadcasting", "multi_output", "view", "namespace", "function", "fused_vjp", "batch", "_kept")

    def __init__(self, name, fwd, inputs, vjp, jvp, reads, same_shape=False, broadcasting=False,
                 multi_output=False, view=False, namespace=None):
        self.name = name
        self.inputs = tuple(inputs)
        self.fwd = fwd
        self.vjp = tuple(vjp)
        self.jvp = tuple(jvp)
        self.reads = tuple(tuple(r) for r in reads)
        self.reads_out = any("out" in r for r in self.reads)
        self.reads_only_x = len(self.reads) == 1 and 0 in self.reads[0]
        self.same_shape = same_shape
        self.broadcasting = broadcasting
        self.multi_output = multi_output
        self.view = view
        self.namespace = namespace
        self.function = None
        self.fused_vjp = False
        self.batch = None     # gt.vmap's batching rule, rule(prim, args, batched, params, size) (gradtape._ops.batching)
        self._kept = {}       # mask of tracked inputs -> indices of the inputs to keep alive

    def kept_inputs(self, mask):
        """Indices of the inputs the node keeps when the inputs in bit ``mask`` are tracked."""
        got = self._kept.get(mask)
        if got is None:
            keep = set()
            for i, r in enumerate(self.reads):
                if mask >> i & 1:
                    keep.update(j for j in r if j != "out")
            got = self._kept[mask] = tuple(sorted(keep))
        return got

    def __repr__(self):
        return f"<primitive {self.name}>"


class Registry:
    """Primitives by name, also as attributes (``PRIMS.add``: one dict lookup on the operators' hot path)."""

    def __init__(self):
        object.__setattr__(self, "_all", {})

    def register(self, p):
        if p.name in self._all:
            raise ValueError(f"gradtape: primitive {p.name!r} is defined twice")
        if hasattr(Registry, p.name) or not p.name.isidentifier():
            raise ValueError(f"gradtape: {p.name!r} cannot name a primitive")
        self._all[p.name] = p
        object.__setattr__(self, p.name, p)
        return p

    def __setattr__(self, name, value):
        raise AttributeError("gradtape: add primitives with define(...)")

    def __getitem__(self, name):
        return self._all[name]

    def __contains__(self, name):
        return name in self._all

    def __iter__(self):
        return iter(self._all)

    def __len__(self):
        return len(self._all)

    def get(self, name, default=None):
        return self._all.get(name, default)

    def keys(self):
        return self._all.keys()

    def items(self):
        return self._all.items()

    def values(self):
        return self._all.values()

    def public(self, namespace):
        """{function name: public function} of the primitives that belong to ``namespace``."""
        return {p.function.__name__: p.function for p in self._all.values()
                if p.namespace == namespace and p.function is not None}


PRIMS = Registry()


def _by_input(inputs, rules, what):
    if rules is None:
        return (None,) * len(inputs)
    unknown = set(rules) - set(inputs)
    if unknown:
        raise ValueError(f"gradtape.define: {what} names {sorted(unknown)}, not inputs {inputs}")
    return tuple(rules.get(n) for n in inputs)


def _reads(inputs, reads):
    index = {n: i for i, n in enumerate(inputs)}
    index["out"] = "out"
    reads = reads or {}
    return tuple(tuple(index[r] for r in reads.get(n, ())) for n in inputs)


def _fused(name, rule):
    """The VJP of input 0, first trying a backend's fused kernel ``xp.<name>_vjp(ct, out, *inputs)`` (CuPy
    ElementwiseKernels, each tested equal to the generic rule); a kernel may return None where it does
    not apply. Where a namespace has none (NumPy, array-api-strict, the tensor-level namespace of recorded
    derivatives: the attribute is None) the generic rule runs."""
    key = name + "_vjp"
    if rule.__code__.co_argcount == 4 and not rule.__code__.co_flags & 0x0C:   # (xp, ct, out, x): no packing
        def vjp(xp, ct, out, x):
            k = getattr(xp, key, None)
            g = None if k is None else k(ct, out, x)
            return rule(xp, ct, out, x) if g is None else g
        return vjp

    def vjp(xp, ct, out, *xs, **params):
        k = getattr(xp, key, None)
        g = None if k is None else k(ct, out, *xs)
        return rule(xp, ct, out, *xs, **params) if g is None else g
    return vjp


def define(name, fwd, *, inputs=("x",), vjp=None, jvp=None, reads=None, same_shape=False, broadcasting=False,
           multi_output=False, view=False, fused_vjp=False, namespace=None, register=True):
    """Declare primitive ``name``: ``fwd(xp, *inputs, **params)``, and per input name its VJP and JVP rule
    and what that VJP reads (``reads={"x": ("y", "out")}``). An input without a VJP is not differentiable.

    ``namespace`` ("gt", "nn", ...): the API layer binds a public function of the primitive's name there
    (``gt.sin(x)`` applies ``PRIMS.sin``); None for primitives reached through a hand-written function.
    ``fused_vjp``: a backend may replace the VJP of the first input by a kernel ``xp.<name>_vjp``. ``register=False`` for
    one-off primitives (custom_vjp, checkpoint).

    >>> from gradtape._core.primitive import define
    >>> double = define("double_doc", lambda xp, x: 2 * x, vjp={"x": lambda xp, ct, out, x: 2 * ct},
    ...                 jvp={"x": lambda xp, t, out, x: 2 * t}, same_shape=True, register=False)
    >>> double.vjp[0](None, 3.0, None, None)
    6.0
    """
    vjps = _by_input(inputs, vjp, "vjp")
    if fused_vjp:
        vjps = (_fused(name, vjps[0]),) + vjps[1:]
    p = Primitive(name, fwd, inputs, vjps, _by_input(inputs, jvp, "jvp"), _reads(inputs, reads),
                  same_shape=same_shape, broadcasting=broadcasting, multi_output=multi_output, view=view,
                  namespace=namespace)
    p.fused_vjp = bool(fused_vjp)
    if register:
        PRIMS.register(p)
    return p


def unary(name, fwd, d, *, reads="x", **kw):
    """Elementwise f(x) with derivative ``d(xp, x, out, **params)``: VJP = ct * d, JVP = t * d.
    ``reads``: "x", "out" or "x out"."""
    keep = {"x": tuple(reads.split())}
    if d.__code__.co_argcount == 3:   # no parameters: no **params plumbing on the hot path
        rules = ({"x": lambda xp, ct, out, x: ct * d(xp, x, out)}, {"x": lambda xp, t, out, x: t * d(xp, x, out)})
    else:
        rules = ({"x": lambda xp, ct, out, x, **k: ct * d(xp, x, out, **k)},
                 {"x": lambda xp, t, out, x, **k: t * d(xp, x, out, **k)})
    return define(name, fwd, vjp=rules[0], jvp=rules[1], reads=keep, same_shape=True, **kw)


def binary(name, fwd, dx, dy, *, reads=None, **kw):
    """Elementwise f(x, y) over broadcast inputs, with partials ``dx(xp, x, y, out)`` and ``dy(...)``."""
    return define(name, fwd, inputs=("x", "y"),
                  vjp={"x": lambda xp, ct, out, x, y: ct * dx(xp, x, y, out),
                       "y": lambda xp, ct, out, x, y: ct * dy(xp, x, y, out)},
                  jvp={"x": lambda xp, t, out, x, y: t * dx(xp, x, y, out),
                       "y": lambda xp, t, out, x, y: t * dy(xp, x, y, out)},
                  reads=reads if reads is not None else {"x": ("y",), "y": ("x",)}, broadcasting=True, **kw)


def define_linear(name, fwd, vjp, **kw):
    """A primitive linear in its one differentiable input ``x`` (the first): its JVP is the forward applied
    to the tangent, so only the transpose (VJP) is written. ``fwd`` must accept a tangent with extra leading
    batch axes wherever it accepts ``x`` (elementwise maps do)."""
    first = kw.get("inputs", ("x",))[0]
    return define(name, fwd, vjp={first: vjp}, jvp={first: lambda xp, t, out, x, *rest, **p: fwd(xp, t, *rest, **p)},
                  **kw)


class Multi(tuple):
    """Cotangents or tangents of a multi-output primitive; None stands for zero, + adds elementwise."""

    __slots__ = ()

    def __add__(self, other):
        return Multi(a if b is None else b if a is None else a + b for a, b in zip(self, other))
