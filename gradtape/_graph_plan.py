"""Replay plans: a graph compiled, once per backend, into one straight-line Python function of backend calls.

:meth:`gradtape.graph.Graph.__call__` compiles a :class:`_Plan` on a backend's
first call and reuses it; :meth:`~gradtape.graph.Graph.plan_source` shows its source.
"""
from __future__ import annotations

import math


from . import backends as _backends
from ._core import wrap
from ._graph_ir import _is_host_array, DeviceName, DTypeName, Ref, _np_value, _Opaque
from ._namespace import _bdt


_BINOPS = {"+": lambda xp, x, y: x + y, "-": lambda xp, x, y: x - y, "*": lambda xp, x, y: x * y,
           "/": lambda xp, x, y: x / y, "**": lambda xp, x, y: x ** y, "@": lambda xp, x, y: x @ y}
_UNOPS = {"-": lambda xp, x: -x, "+": lambda xp, x: +x}
_CALL1 = (lambda xp, x: xp.sin(x)).__code__
_CALL2 = (lambda xp, x, y: xp.pow(x, y)).__code__


def _same_code(f, template):
    c = getattr(f, "__code__", None)
    return (c is not None and c.co_code == template.co_code and c.co_argcount == template.co_argcount
            and c.co_consts == template.co_consts and not c.co_freevars and not c.co_kwonlyargcount)


def _template(prim):
    """A direct expression for a primitive whose forward is one operator or one ``xp.NAME(...)`` call."""
    f = prim.fwd
    for op, t in _BINOPS.items():
        if _same_code(f, t.__code__) and not f.__code__.co_names:
            return ("bin", op)
    for op, t in _UNOPS.items():
        if _same_code(f, t.__code__) and not f.__code__.co_names:
            return ("un", op)
    if _same_code(f, _CALL1) and len(f.__code__.co_names) == 1:
        return ("call", f.__code__.co_names[0])
    if _same_code(f, _CALL2) and len(f.__code__.co_names) == 1:
        return ("call", f.__code__.co_names[0])
    return None


class _Plan:
    """One graph compiled for one backend: a straight-line function of backend calls.

    Every node runs on its own backend: the replay backend, unless the traced
    function moved data (``to_device``); devices other than the one traced on
    stay as they were."""

    def __init__(self, graph, bk):
        self.bk = bk
        g = {"xp": bk.xp, "__builtins__": {}, "slice": slice}
        names = {}

        def glob(value, hint="K"):
            name = f"{hint}{len(g)}"
            g[name] = value
            return name

        home = graph._home

        def dev(name):
            if name is None or (home is not None and name == home):
                return bk
            return _backends.get(name)

        def fn_name(b, fname):
            """A global bound to b.xp.<fname> (the bare name where free: sin(v3) reads better)."""
            key = (b, fname)
            if key not in names:
                fn = getattr(b.xp, fname)
                names[key] = fname if fname not in g else glob(fn, "F")
                g[names[key]] = fn
            return names[key]

        def expr(v, b):
            t = type(v)
            if t is Ref:
                n = graph.nodes[v.i]
                return consts[v.i] if n.kind == "const" else f"v{v.i}"
            if v is None:
                return "None"
            if v is Ellipsis:
                return "..."
            if t is bool or t is str or t is int:
                return repr(v)
            if t is float:
                return repr(v) if math.isfinite(v) else glob(v)
            if t is tuple:
                return "(" + ", ".join(expr(e, b) for e in v) + ("," if len(v) == 1 else "") + ")"
            if t is list:
                return "[" + ", ".join(expr(e, b) for e in v) + "]"
            if t is dict:
                return "{" + ", ".join(f"{k!r}: {expr(e, b)}" for k, e in v.items()) + "}"
            if t is slice:
                return f"slice({expr(v.start, b)}, {expr(v.stop, b)}, {expr(v.step, b)})"
            if t is DTypeName:
                return glob(_bdt(b, v.name), "D")
            if t is DeviceName:
                return glob(dev(v.name), "B")
            if t is _Opaque:
                return glob(v.value)
            return glob(v)

        def ns(b):
            return "xp" if b is bk else glob(b.xp, "X")

        consts = {}
        nodes = graph.nodes
        outs = graph._out_refs()
        last = {}
        for i, n in enumerate(nodes):
            for d in n.deps():
                last[d] = i
        for r in outs:
            last[r] = len(nodes)          # outputs live to the end
        frees = {}
        for d, i in last.items():
            frees.setdefault(i, []).append(d)
        lines = ["def replay(" + ", ".join(f"v{i}" for i in graph._in) + "):"]
        unused = [i for i in graph._in if i not in last]
        if unused:
            lines.append("    del " + ", ".join(f"v{i}" for i in unused))
        cross = False
        for i, n in enumerate(nodes):
            if n.kind == "input":
                continue
            b = dev(n.device)
            cross = cross or b is not bk
            if n.kind == "const":
                value = n.value if (n.bk is b and not _is_host_array(n.value)) else b.asarray(_np_value(n))
                consts[i] = glob(value, "C")
                continue
            ins = n.inputs
            if n.kind == "item":
                rhs = f"{expr(ins[0], b)}[{int(n.attrs['k'])}]"
            elif n.kind == "fn":
                if not hasattr(b.xp, n.op):
                    raise TypeError(f"gradtape.Graph {graph.name}: backend {b.name} ({b.device}) has no function "
                                    f"{n.op!r} (node {i})")
                args = [expr(a, b) for a in ins] + [f"{k}={expr(v, b)}" for k, v in n.attrs.items()]
                rhs = f"{fn_name(b, n.op)}({', '.join(args)})"
            else:
                tpl = _template(n.prim) if not n.attrs else None
                if tpl is not None and tpl[0] == "bin":
                    rhs = f"{expr(ins[0], b)} {tpl[1]} {expr(ins[1], b)}"
                elif tpl is not None and tpl[0] == "un":
                    rhs = f"{tpl[1]}{expr(ins[0], b)}"
                elif tpl is not None and hasattr(b.xp, tpl[1]):
                    rhs = f"{fn_name(b, tpl[1])}({', '.join(expr(a, b) for a in ins)})"
                else:
                    args = [ns(b)] + [expr(a, b) for a in ins] + [f"{k}={expr(v, b)}" for k, v in n.attrs.items()]
                    rhs = f"{glob(n.prim.fwd, 'P')}({', '.join(args)})"
            lines.append(f"    v{i} = {rhs}")
            dead = [d for d in frees.get(i, ()) if nodes[d].kind != "const"]
            if dead:
                lines.append("    del " + ", ".join(f"v{d}" for d in dead))
        lines.append("    return (" + ", ".join(expr(Ref(r), bk) for r in outs) + ",)")
        self.source = "\n".join(lines)
        exec(compile(self.source, f"<gradtape graph {graph.name}>", "exec"), g)  # noqa: S102
        self.fn = g["replay"]
        self.shapes = [graph.nodes[i].shape for i in graph._in]
        self.dtypes = [_bdt(bk, graph.nodes[i].dtype) for i in graph._in]
        self.post = _unflattener(graph._tree, bk, cross)


def _unflattener(tree, bk, cross):
    """A function turning the plan's flat tuple of raw results into the traced output structure of tensors."""
    if cross:           # to_device inside: each result's backend from its type
        def w(r):
            return wrap(r, _backends.backend_of(r) or bk)
    else:
        def w(r):
            return wrap(r, bk)
    if type(tree) is Ref:
        return lambda res: w(res[0])
    if type(tree) is tuple and all(type(e) is Ref for e in tree):
        return lambda res: tuple(w(r) for r in res)

    def post(res):
        it = iter(res)

        def build(v):
            t = type(v)
            if t is Ref:
                return w(next(it))
            if t is tuple or t is list:
                return t(build(e) for e in v)
            if t is dict:
                return {k: build(e) for k, e in v.items()}
            return v
        return build(tree)
    return post
