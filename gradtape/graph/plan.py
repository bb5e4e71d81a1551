"""Replay plans: a graph turned, once per backend, into a list of steps run by a small interpreter loop.

:meth:`gradtape.graph.Graph.__call__` builds a :class:`_Plan` on a backend's
first call and reuses it. A step is a closure made here from fixed code: it
holds the backend function to call and its parameters as objects, and reads
its array inputs from a list of slots by index. Nothing in a graph (or read
from a file) is ever turned into source text or executed as code;
:meth:`~gradtape.graph.Graph.plan_source` shows a Python-like listing of the
plan for reading only.
"""
from __future__ import annotations

import functools
import math
import operator

from .. import _tree
from .. import backends as _backends
from .._core.dispatch import wrap
from .._core.tensor import Tensor, new_tensor
from .._core.dtypes import backend_dtype
from .._state import default_device
from ..graph.guards import GuardError, _checker  # noqa: F401  (GuardError: raised by the checks)
from ..graph.ir import _is_host_array, DeviceName, DTypeName, Ref, _np_value, _Opaque

_BINOPS = {"+": (lambda xp, x, y: x + y, operator.add), "-": (lambda xp, x, y: x - y, operator.sub),
           "*": (lambda xp, x, y: x * y, operator.mul), "/": (lambda xp, x, y: x / y, operator.truediv),
           "**": (lambda xp, x, y: x ** y, operator.pow), "@": (lambda xp, x, y: x @ y, operator.matmul)}
_UNOPS = {"-": (lambda xp, x: -x, operator.neg), "+": (lambda xp, x: +x, operator.pos)}
_CALL1 = (lambda xp, x: xp.sin(x)).__code__
_CALL2 = (lambda xp, x, y: xp.pow(x, y)).__code__
# errors a failing step may raise that are not yet of a documented kind: reported as a ValueError naming the node
_FOREIGN = (IndexError, KeyError, AttributeError, ZeroDivisionError, OverflowError)


def _same_code(f, template):
    c = getattr(f, "__code__", None)
    return (c is not None and c.co_code == template.co_code and c.co_argcount == template.co_argcount
            and c.co_consts == template.co_consts and not c.co_freevars and not c.co_kwonlyargcount)


def _template(prim):
    """A direct form for a primitive whose forward is one operator or one ``xp.NAME(...)`` call:
    ("bin", symbol, operator), ("un", symbol, operator) or ("call", NAME)."""
    f = prim.fwd
    for op, (t, fn) in _BINOPS.items():
        if _same_code(f, t.__code__) and not f.__code__.co_names:
            return ("bin", op, fn)
    for op, (t, fn) in _UNOPS.items():
        if _same_code(f, t.__code__) and not f.__code__.co_names:
            return ("un", op, fn)
    if (_same_code(f, _CALL1) or _same_code(f, _CALL2)) and len(f.__code__.co_names) == 1:
        return ("call", f.__code__.co_names[0])
    return None


def _has_ref(v):
    return any(type(r) is Ref for r in _tree.leaves(v, subclasses=False))


class _Plan:
    """One graph prepared for one backend: ``fn(*raw_inputs)`` runs its steps and returns the raw results.

    Every node runs on its own backend: the replay backend, unless the traced
    function moved data (``to_device``); devices other than the one traced on
    stay as they were."""

    def __init__(self, graph, backend):
        self.backend = backend
        nodes = graph.nodes
        home = graph._home
        names = {}                      # for the listing: object id -> display name

        def dev(name):
            if name is None or (home is not None and name == home):
                return backend
            return _backends.get(name)

        def label(obj, hint):
            k = id(obj)
            if k not in names:
                names[k] = (f"{hint}{len(names)}", obj)
            return names[k][0]

        def value(v, b):
            """The object a Ref-free parameter value stands for on backend b."""
            def leaf(e):
                t = type(e)
                if t is DTypeName:
                    return backend_dtype(b, e.name)
                if t is DeviceName:
                    return dev(e.name)
                if t is _Opaque:
                    return e.value
                return e
            return _tree.map(leaf, v, subclasses=False)

        def arg(v, b):
            """("r", slot) for a node's value, ("c", object) for a constant, ("g", env -> object) otherwise."""
            if type(v) is Ref:
                return ("c", env0[reg[v.i]]) if nodes[v.i].kind == "const" else ("r", reg[v.i])
            if not _has_ref(v):
                return ("c", value(v, b))
            return ("g", _getter(v, lambda e: arg(e, b)))

        def text(v, b):
            """The listing's form of a value (display only)."""
            t = type(v)
            if t is Ref:
                return label(env0[reg[v.i]], "C") if nodes[v.i].kind == "const" else f"v{v.i}"
            if v is None or t is bool or t is str or t is int:
                return repr(v)
            if v is Ellipsis:
                return "..."
            if t is float:
                return repr(v) if math.isfinite(v) else f"float({str(v)!r})"
            if t is tuple:
                return "(" + ", ".join(text(e, b) for e in v) + ("," if len(v) == 1 else "") + ")"
            if t is list:
                return "[" + ", ".join(text(e, b) for e in v) + "]"
            if t is dict:
                return "{" + ", ".join(f"{k!r}: {text(e, b)}" for k, e in v.items()) + "}"
            if t is slice:
                return f"slice({text(v.start, b)}, {text(v.stop, b)}, {text(v.step, b)})"
            if t is DTypeName:
                return v.name
            if t is DeviceName:
                return f"device({v.name!r})"
            return label(value(v, b), "K")

        def fname(b, name):
            return name if b is backend else f"{label(b.xp, 'X')}.{name}"

        outs = graph._out_refs()
        last = {}
        for i, n in enumerate(nodes):
            for d in n.deps():
                last[d] = i
        for r in outs:
            last[r] = len(nodes)          # outputs live to the end
        frees = {}
        for d, i in last.items():
            if nodes[d].kind != "const":
                frees.setdefault(i, []).append(d)
        reg, clear, size = _registers(nodes, last, frees)
        env0 = [None] * size
        used = [(k, reg[i]) for k, i in enumerate(graph._in) if i in last]
        lines = ["def replay(" + ", ".join(f"v{i}" for i in graph._in) + "):"]
        by_node = {}
        for gd in graph.guards:
            by_node.setdefault(gd.node, []).append(gd)
        for i in graph._in:             # (an input's guards are checked first)
            for gd in by_node.get(i, ()):
                lines.append(f"    guard(v{i}, {gd.kind}, {gd.value!r:.60})  # {gd.where}")
        unused = [i for i in graph._in if i not in last]
        if unused:
            lines.append("    del " + ", ".join(f"v{i}" for i in unused))
        steps = []
        cross = False
        for i, n in enumerate(nodes):
            if n.kind == "input":
                continue
            b = dev(n.device)
            cross = cross or b is not backend
            if n.kind == "const":
                on_b = n.backend is b and not _is_host_array(n.value)
                env0[reg[i]] = n.value if on_b else b.asarray(_np_value(n))
                continue
            ins = n.inputs
            if n.kind == "item":
                k = int(n.attrs["k"])
                step = _item(arg(ins[0], b), k)
                rhs = f"{text(ins[0], b)}[{k}]"
            elif n.kind == "fn":
                f = _fn(b, n.op)
                if f is None:
                    raise TypeError(f"gradtape.Graph {graph.name}: backend {b.name} ({b.device}) has no function "
                                    f"{n.op!r} (node {i})")
                step = _call(f, [arg(a, b) for a in ins], n.attrs, b, arg, value)
                rhs = f"{fname(b, n.op)}({', '.join(_args_text(ins, n.attrs, b, text))})"
            else:
                tpl = _template(n.prim) if not n.attrs else None
                if tpl is not None and tpl[0] == "bin":
                    step = _call(tpl[2], [arg(a, b) for a in ins], {}, b, arg, value)
                    rhs = f"{text(ins[0], b)} {tpl[1]} {text(ins[1], b)}"
                elif tpl is not None and tpl[0] == "un":
                    step = _call(tpl[2], [arg(a, b) for a in ins], {}, b, arg, value)
                    rhs = f"{tpl[1]}{text(ins[0], b)}"
                elif tpl is not None and hasattr(b.xp, tpl[1]):
                    step = _call(getattr(b.xp, tpl[1]), [arg(a, b) for a in ins], {}, b, arg, value)
                    rhs = f"{fname(b, tpl[1])}({', '.join(text(a, b) for a in ins)})"
                else:
                    step = _call(n.prim.fwd, [("c", b.xp)] + [arg(a, b) for a in ins], n.attrs, b, arg, value)
                    xp = "xp" if b is backend else label(b.xp, "X")
                    rhs = f"{n.op}({', '.join([xp] + _args_text(ins, n.attrs, b, text))})"
            steps.append((i, reg[i], step, clear[i]))
            lines.append(f"    v{i} = {rhs}")
            for gd in by_node.get(i, ()):
                lines.append(f"    guard(v{i}, {gd.kind}, {gd.value!r:.60})  # {gd.where}")
            dead = frees.get(i, []) + ([i] if i not in last else [])        # (a result nothing reads: at once)
            if dead:
                lines.append("    del " + ", ".join(f"v{d}" for d in dead))
        lines.append("    return (" + ", ".join(text(Ref(r), backend) for r in outs) + ",)")
        self.source = "\n".join(lines)      # a listing to read: never compiled, never executed
        checks = None
        if by_node:         # (a graph without guards runs the plain loop: no per-step test)
            checks = {i: tuple(_checker(graph, gd, dev(nodes[i].device)) for gd in gs) for i, gs in by_node.items()}
        self.fn = _runner(graph, env0, used, steps, tuple(reg[r] for r in outs), checks)
        self.shapes = [nodes[i].shape for i in graph._in]
        self.dtypes = [backend_dtype(backend, nodes[i].dtype) for i in graph._in]
        self.post = _unflattener(graph._out_tree, backend, cross)


def _registers(nodes, last, frees):
    """Slots for the values: a result takes the slot of an input that dies at its step where there is one,
    so a chain runs in place without separate drops. Returns ({node: slot}, {node: slots to clear after its
    step}, number of slots); constants and the used inputs get their own slots first."""
    reg, free, clear = {}, [], {}
    for i, n in enumerate(nodes):
        if n.kind == "const" or (n.kind == "input" and i in last):
            reg[i] = len(reg)
    size = len(reg)
    for i, n in enumerate(nodes):
        if n.kind in ("const", "input"):
            continue
        dying = [reg[d] for d in frees.get(i, ())]
        free.extend(dying)
        if free:
            r = free.pop()
        else:
            r, size = size, size + 1
        reg[i] = r
        drop = [x for x in dying if x != r]
        if i not in last:           # a result nothing reads: dropped at once
            drop.append(r)
            free.append(r)
        clear[i] = tuple(drop)
    return reg, clear, size


def _args_text(ins, attrs, b, text):
    return [text(a, b) for a in ins] + [f"{k}={text(v, b)}" for k, v in attrs.items()]


def _fn(b, name):
    """The backend function ``name`` (dotted for sub-namespaces: ``linalg.matrix_rank``), or None."""
    obj = b.xp
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if callable(obj) else None


def _getter(v, arg):
    """env -> the value of ``v``, a tuple/list/dict/slice with node references inside."""
    t = type(v)
    if t is tuple or t is list or t is slice:
        parts = (v.start, v.stop, v.step) if t is slice else v
        gs = tuple(_as_getter(arg(e)) for e in parts)
        if t is slice:
            return lambda env: slice(*[g(env) for g in gs])
        return lambda env: t([g(env) for g in gs])
    if t is dict:
        keys = tuple(v)
        gs = tuple(_as_getter(arg(v[k])) for k in keys)
        return lambda env: {k: g(env) for k, g in zip(keys, gs)}
    return _as_getter(arg(v))


def _as_getter(a):
    kind, x = a
    if kind == "r":
        return operator.itemgetter(x)
    if kind == "c":
        return lambda env: x
    return x


def _item(a, k):
    kind, x = a
    if kind == "r":
        return lambda env: env[x][k]
    if kind == "c":
        return lambda env: x[k]
    return lambda env: x(env)[k]


def _call(f, args, attrs, b, arg, value):
    """A step calling ``f`` with positional ``args`` (see ``arg`` in :class:`_Plan`) and keyword ``attrs``."""
    if attrs:
        if _has_ref(attrs):
            kwg = _getter(attrs, lambda e: arg(e, b))
            gs = tuple(_as_getter(a) for a in args)
            return lambda env: f(*[g(env) for g in gs], **kwg(env))
        f = functools.partial(f, **value(attrs, b))
    kinds = "".join(k for k, _ in args)
    xs = [x for _, x in args]
    if kinds in _KINDS:                 # the common forms run inline in the loop (no closure call)
        return (_KINDS[kinds], f, *xs, None)[:4]
    if kinds == "crr":
        a, c, d = xs
        return lambda env: f(a, env[c], env[d])
    if kinds == "crc":
        a, c, d = xs
        return lambda env: f(a, env[c], d)
    if kinds == "ccr":
        a, c, d = xs
        return lambda env: f(a, c, env[d])
    if kinds == "rrr":
        a, c, d = xs
        return lambda env: f(env[a], env[c], env[d])
    gs = tuple(_as_getter(a) for a in args)
    return lambda env: f(*[g(env) for g in gs])


_KINDS = {"r": 0, "rr": 1, "rc": 2, "cr": 3}     # step forms the loop runs inline; 4: a closure of env


def _runner(graph, env0, used, steps, outs, checks=None):
    """The interpreter loop: fill the input slots, run each step into its slot, drop values after last use.

    A step is (out slot, form, f, a, c, slots to clear, node): form 0 is f(env[a]), 1 f(env[a], env[c]), 2 f(env[a], c),
    3 f(a, env[c]) and 4 f(env) (a closure made by :func:`_call`). ``checks`` ({node: guard checks}) selects
    :func:`_guarded_runner`."""
    prog = []
    for i, o, step, dead in steps:
        if type(step) is tuple:
            prog.append((o, *step, dead, i))
        else:
            prog.append((o, 4, step, None, None, dead, i))
    prog = tuple(prog)
    if checks:
        return _guarded_runner(graph, env0, used, prog, outs, checks)

    def replay(*raws):
        env = env0.copy()
        for k, i in used:
            env[i] = raws[k]
        i = None
        try:
            for o, form, f, a, c, dead, i in prog:
                if form == 1:
                    env[o] = f(env[a], env[c])
                elif form == 2:
                    env[o] = f(env[a], c)
                elif form == 0:
                    env[o] = f(env[a])
                elif form == 3:
                    env[o] = f(a, env[c])
                else:
                    env[o] = f(env)
                if dead:
                    for d in dead:
                        env[d] = None
        except _FOREIGN as e:
            n = graph.nodes[i]
            raise ValueError(f"gradtape.Graph {graph.name}: node {i} ({n.op}) failed on replay: "
                             f"{type(e).__name__}: {e}") from e
        return tuple([env[r] for r in outs])
    return replay


def _guarded_runner(graph, env0, used, prog, outs, checks):
    """The loop of a graph with guards: each guard is checked right after its node is computed (before the
    value may be dropped); the inputs' guards first."""
    pre = tuple((k, checks[i]) for k, i in enumerate(graph._in) if i in checks)
    prog = tuple(p + (checks.get(p[6]),) for p in prog)

    def replay(*raws):
        for k, chk in pre:
            for g in chk:
                g(raws[k])
        env = env0.copy()
        for k, i in used:
            env[i] = raws[k]
        i = None
        try:
            for o, form, f, a, c, dead, i, chk in prog:
                if form == 1:
                    env[o] = f(env[a], env[c])
                elif form == 2:
                    env[o] = f(env[a], c)
                elif form == 0:
                    env[o] = f(env[a])
                elif form == 3:
                    env[o] = f(a, env[c])
                else:
                    env[o] = f(env)
                if chk is not None:
                    for g in chk:
                        g(env[o])
                if dead:
                    for d in dead:
                        env[d] = None
        except _FOREIGN as e:
            n = graph.nodes[i]
            raise ValueError(f"gradtape.Graph {graph.name}: node {i} ({n.op}) failed on replay: "
                             f"{type(e).__name__}: {e}") from e
        return tuple([env[r] for r in outs])
    return replay


def gather_raws(vals, what):
    """(raw arrays of ``vals``, their one backend) for a replay or a jitted call: a tensor gives its data and
    backend, an array of a backend itself and that backend, another value (a Python number, a list) becomes an
    array on the backend found so far (else the default device's). ``what`` starts the TypeError raised
    when the values live on different backends or devices.

    >>> import gradtape as gt
    >>> raws, b = gather_raws([gt.ones(2), 3.0], "f: inputs")
    >>> b.device, [tuple(r.shape) for r in raws]
    ('cpu', [(2,), ()])
    """
    backend = None
    raws = []
    for v in vals:
        if isinstance(v, Tensor):
            b, r = v.backend, v.data
        else:
            b = _backends.backend_of(v) if hasattr(v, "shape") else None
            r = v
            if b is None:
                b = backend or _backends.get(default_device())
                r = b.asarray(v)
        if backend is None:
            backend = b
        elif b is not backend:
            raise TypeError(f"{what} live on different backends or devices ({backend.device!r} and {b.device!r}); "
                            f"move them to one device first")
        raws.append(r)
    return raws, backend or _backends.get(default_device())


def _unflattener(tree, backend, cross):
    """A function turning the plan's flat tuple of raw results into the traced output structure of tensors."""
    if cross:           # to_device inside: each result's backend from its type
        def w(r):
            return wrap(r, _backends.backend_of(r) or backend)
    else:
        def w(r):
            return new_tensor(r, backend)
    if type(tree) is Ref:
        return (lambda res: w(res[0])) if cross else (lambda res: new_tensor(res[0], backend))
    if type(tree) is tuple and all(type(e) is Ref for e in tree):
        if cross:
            return lambda res: tuple([w(r) for r in res])
        return lambda res: tuple([new_tensor(r, backend) for r in res])

    leaves, spec = _tree.flatten(tree, subclasses=False)

    def post(res):
        it = iter(res)
        return _tree.unflatten(spec, [w(next(it)) if type(v) is Ref else v for v in leaves])
    return post
