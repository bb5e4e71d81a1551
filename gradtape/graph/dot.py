"""Pictures: graphs (and symbolic expressions, :mod:`gradtape.sym`) as Graphviz DOT text, drawn by Graphviz's ``dot``.

:meth:`gradtape.graph.Graph.to_dot`, ``render`` and ``_repr_svg_`` go through
:func:`_to_dot`, :func:`render_dot` and :func:`dot_to_svg`; the public
names here are re-exported by :mod:`gradtape.graph`. The Symbols of
:mod:`gradtape.graph.symbolic` are drawn by :func:`symbols_to_dot` and
written as text by :func:`symbol_text` (they tell a Symbol argument from a
literal through the type the symbolic module registers, ``hooks.SYMBOL``).
"""
from __future__ import annotations

import os
import shutil
import subprocess

from .._core import hooks
from .._core.primitive import Primitive
from ..graph import draw as _draw
from ..graph.ir import Ref, _fmt_shape, _fmt_type, _np_value

_STYLES = {
    "input": 'shape=ellipse, style=filled, fillcolor="#dbeafe", color="#1d4ed8"',
    "const": 'shape=note, style=filled, fillcolor="#f3f4f6", color="#6b7280", fontcolor="#374151"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#ffffff", color="#111827"',
    "rev": 'shape=box, style="rounded,filled", fillcolor="#fee2e2", color="#b91c1c", fontcolor="#7f1d1d"',
    "output": 'shape=ellipse, style=filled, fillcolor="#dcfce7", color="#15803d", peripheries=2',
}


def _dot_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _op_label(op, inputs):
    """[op] plus a line with the literal arguments (``•`` standing for array inputs) when there are any."""
    if any(type(a) is not Ref for a in inputs):
        return [op, "(" + ", ".join("•" if type(a) is Ref else _short(a) for a in inputs) + ")"]
    return [op]


def _short(v):
    if type(v) is float:
        return f"{v:.6g}"
    r = repr(v)
    return r if len(r) <= 16 else r[:15] + "…"


def dot_source(title, items, edges):
    """DOT text for nodes ``items`` = [(id, label lines, style)] and ``edges`` = [(from, to)].

    Styles: ``input``, ``const``, ``op``, ``rev`` (reverse pass) and ``output``.

    >>> from gradtape.graph import dot_source
    >>> print(dot_source("g", [("a", ["a"], "input"), ("o", ["out"], "output")], [("a", "o")]))
    ... # doctest: +ELLIPSIS
    digraph "g" {
    ...
      a [label="a", shape=ellipse, ...];
      o [label="out", ...];
      a -> o;
    }
    """
    lines = [f"digraph {_dot_str(title)} {{",
             '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.3, ranksep=0.35];',
             '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.04"];',
             '  edge [color="#4b5563", arrowsize=0.7];']
    for ident, label, style in items:
        lines.append(f"  {ident} [label={_dot_str(chr(10).join(label))}, {_STYLES[style]}];")
    for a, b in edges:
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines)


def _dot_program():
    return shutil.which("dot")


def legend_dot(text):
    """DOT ``text`` with a legend node (input, forward op, reverse op in red, output; constant if drawn).

    >>> from gradtape.graph.dot import dot_source, legend_dot
    >>> "reverse op (red)" in legend_dot(dot_source("g", [("a", ["a"], "input")], []))
    True
    """
    used = _STYLES["const"] in text
    rows = []
    for kind, name in _draw.LEGEND:
        if kind == "const" and not used:
            continue
        st = dict(_draw._ATTR.findall(_STYLES[kind]))
        fill, line = st.get("fillcolor", '"#ffffff"'), st.get("color", '"#111827"')
        font = st.get("fontcolor", '"#111827"')
        rounded = ' style="rounded"' if kind != "const" else ""
        rows.append(f'<tr><td bgcolor={fill} color={line}{rounded}>'
                    f'<font color={font}>{name}</font></td></tr>')
    lines = ['  legend [shape=plaintext, fontsize=10, label=<<table border="0" cellborder="1" cellspacing="3" '
             'cellpadding="3"><tr><td border="0"><b>legend</b></td></tr>' + "".join(rows) + "</table>>];"]
    body = text.rstrip()
    if not body.endswith("}"):
        raise ValueError("gradtape: legend_dot expects DOT text ending with '}'")
    return body[:-1].rstrip("\n") + "\n" + "\n".join(lines) + "\n}"


def render_dot(text, path, format=None, *, legend=True):
    """Write DOT ``text`` to ``path``: as is for ``.dot``/``.gv``, else drawn (with a legend unless ``legend=False``).

    Drawn by Graphviz's ``dot`` where it is on PATH, otherwise by matplotlib
    and grandalf (:mod:`gradtape.graph.draw`: SVG, PNG, PDF; ``pip install
    "gradtape[main]"``); a RuntimeError naming both where neither is there.

    >>> from gradtape.graph import render_dot, dot_source
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "g.gv")
    >>> render_dot(dot_source("g", [("a", ["a"], "input")], []), p)
    >>> os.path.exists(p)
    True
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
    if fmt in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        return
    dot = _dot_program()
    if dot is None:
        _draw.draw_dot(text, path, fmt, _STYLES, legend)
        return
    src = legend_dot(text) if legend else text
    r = subprocess.run([dot, f"-T{fmt}", "-o", path], input=src.encode("utf-8"), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"gradtape: Graphviz's dot failed to write {path!r} as {fmt!r}: "
                           f"{r.stderr.decode(errors='replace').strip()}")


def dot_to_svg(text, *, legend=True):
    """SVG text for DOT ``text`` (Graphviz, else matplotlib/grandalf), or None where neither is installed.

    >>> from gradtape.graph import dot_to_svg, dot_source
    >>> svg = dot_to_svg(dot_source("g", [("a", ["a"], "input")], []))
    >>> svg is None or "<svg" in svg
    True
    """
    dot = _dot_program()
    src = legend_dot(text) if legend else text
    if dot is None:
        try:
            return _draw.draw_svg(text, _STYLES, legend)
        except RuntimeError:
            return None
    r = subprocess.run([dot, "-Tsvg"], input=src.encode("utf-8"), capture_output=True)
    return r.stdout.decode("utf-8") if r.returncode == 0 else None


# ---- what a picture hides unless detail=True: the reverse pass's bookkeeping -------------------------

_SHAPE_ONLY = frozenset({"reshape", "expand_dims", "squeeze", "broadcast_to"})


def _is_one(v):
    return type(v) in (int, float) and v == 1


def _hidden(graph):
    """{node index: the visible node standing for it, or None where it vanishes} for the bookkeeping nodes.

    Hidden: constants of ones feeding only the reverse pass (the seed), reverse-pass reshapes/broadcasts,
    ``pow(•, 1)`` and multiplications by one (a literal or a hidden seed).
    """
    users = {}
    for i, n in enumerate(graph.nodes):
        for d in n.deps():
            users.setdefault(d, []).append(i)
    outs = set(graph._out_refs())
    rep = {}
    for i, n in enumerate(graph.nodes):
        if n.kind == "const":
            if i not in outs and users.get(i) and all(graph.nodes[u].rev for u in users[i]) and _ones(n):
                rep[i] = None
            continue
        if not n.rev or n.kind != "prim":
            continue
        refs = [a.i for a in n.inputs if type(a) is Ref]
        lits = [a for a in n.inputs if type(a) is not Ref]
        if n.op in _SHAPE_ONLY or n.op == "pow" and lits and _is_one(lits[-1]) and len(refs) == 1:
            keep = refs
        elif n.op == "multiply" and (any(_is_one(a) for a in lits) or any(r in rep and rep[r] is None
                                                                          for r in refs)):
            keep = [r for r in refs if not (r in rep and rep[r] is None)]
        else:
            continue
        keep = {rep.get(r, r) for r in keep} - {None}
        if len(keep) == 1:
            rep[i] = keep.pop()
    return rep


def _ones(n):
    size = 1
    for d in n.shape or ():
        size *= d or 0
    if n.shape is None or size > 1 << 16:
        return False
    try:
        return bool((_np_value(n) == 1).all())
    except Exception:
        return False


def _to_dot(graph, detail=True, names=None):
    """DOT text for a :class:`gradtape.graph.Graph` (see its ``to_dot``)."""
    rep = {} if detail else _hidden(graph)
    names = _names(graph, names)
    items, edges = [], []
    for i, n in enumerate(graph.nodes):
        if i in rep:
            continue
        if n.kind == "input":
            items.append((f"n{i}", [names.get(n.op, n.op), _fmt_type(n)], "input"))
        elif n.kind == "const":
            items.append((f"n{i}", ["const", _fmt_type(n)], "const"))
        else:
            label = _op_label(n.op if n.kind != "item" else f"item {n.attrs.get('k')}", n.inputs)
            if i in names:
                label[0] = f"{names[i]} = {label[0]}"
            items.append((f"n{i}", label + [_fmt_type(n)], "rev" if n.rev else "op"))
        for d in n.deps():
            d = rep.get(d, d)
            if d is not None:
                edges.append((f"n{d}", f"n{i}"))
    for k, (name, r) in enumerate(zip(graph.outputs, graph._out_refs())):
        items.append((f"o{k}", [names.get(name, name), _fmt_type(graph.nodes[r])], "output"))
        r = rep.get(r, r)
        if r is not None:
            edges.append((f"n{r}", f"o{k}"))
    return dot_source(graph.name, items, edges)


def _names(graph, names):
    """``names`` as a dict: a sequence names the outputs in order; keys are input/output names or node indices."""
    if names is None:
        return {}
    if isinstance(names, dict):
        return dict(names)
    names = list(names)
    if len(names) != len(graph.outputs):
        raise ValueError(f"gradtape.Graph.to_dot: names= lists {len(names)} names for {len(graph.outputs)} "
                         f"outputs {graph.outputs}")
    return dict(zip(graph.outputs, names))


# ---- symbolic expressions (gradtape.sym) ---------------------------------------------------------------

def symbol_text(s, depth):
    """A short formula for Symbol ``s`` (names of variables and named symbols; ``…`` below ``depth`` levels).

    >>> from gradtape import sym
    >>> from gradtape.graph.dot import symbol_text
    >>> symbol_text(2 * sym.var("a") + 1, 3)
    'add(multiply(2, a), 1)'
    """
    if s.kind == "var" or s.named and depth < 3:
        return s.name
    if depth <= 0:
        return "…"
    if s.kind == "grad":
        target, ws, k = s.op
        return f"grad({symbol_text(target, depth - 1)}, {ws[k].name})"

    def arg(a):
        if type(a) is hooks.SYMBOL:
            return symbol_text(a, depth - 1)
        return _short(a) if not isinstance(a, (list, tuple)) else "[" + ", ".join(arg(e) for e in a) + "]"
    parts = [arg(a) for a in s.args] + [f"{k}={arg(v)}" for k, v in s.kwargs.items()
                                         if not isinstance(s.op, Primitive)]
    return f"{s.label}({', '.join(parts)})"


def symbols_to_dot(order, roots, title):
    """DOT text for the Symbols ``order`` (each after its dependencies) computing ``roots``.

    >>> import gradtape as gt
    >>> from gradtape import sym
    >>> from gradtape.graph.dot import symbols_to_dot
    >>> a = sym.var("a"); b = gt.exp(a)
    >>> print(symbols_to_dot([a, b], [b], "g"))  # doctest: +ELLIPSIS
    digraph "g" {
    ...
      s0 [label="a", ...];
      s1 [label="exp", ...];
      o0 [label="out", ...];
      s0 -> s1;
      s1 -> o0;
    }
    """
    ids = {id(s): f"s{i}" for i, s in enumerate(order)}
    items, edges = [], []
    for s in order:
        if s.kind == "group":
            continue
        if s.kind == "var":
            label = [s.name]
            if s.shape is not None or s.dtype is not None:
                label.append(" ".join(b for b in (_fmt_shape(s.shape) if s.shape is not None else None, s.dtype)
                                      if b))
            items.append((ids[id(s)], label, "input"))
        elif s.kind == "grad":
            target, ws, k = s.op
            label = [f"{s.name} = grad" if s.named else "grad", f"∂ {target.name} / ∂ {ws[k].name}"]
            items.append((ids[id(s)], label, "rev"))
        else:
            label = [f"{s.name} = {s.label}" if s.named else s.label]
            literals = [a for a in s.args if not hooks.has_symbol(a)]
            if literals or (s.kwargs and not isinstance(s.op, Primitive)):
                shown = ["•" if hooks.has_symbol(a) else _short(a) for a in s.args]
                if not isinstance(s.op, Primitive):
                    shown += [f"{k}={_short(v)}" for k, v in s.kwargs.items() if not hooks.has_symbol(v)]
                label.append("(" + ", ".join(shown) + ")")
            items.append((ids[id(s)], label, "op"))
        for d in s._deps():
            edges.append((ids[id(d)], ids[id(s)]))
    for k, r in enumerate(roots):
        name = r.name if r.named or r.kind == "grad" else ("out" if len(roots) == 1 else f"out{k}")
        items.append((f"o{k}", [name], "output"))
        edges.append((ids[id(r)], f"o{k}"))
    return dot_source(title, items, edges)
