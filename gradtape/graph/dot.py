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
from ..graph.ir import Ref, _fmt_shape, _fmt_type

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
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("gradtape: Graphviz's `dot` program is not installed (or not on PATH), so graphs cannot "
                           "be drawn to SVG/PNG; install the Debian/Ubuntu package `graphviz` (apt-get install "
                           "graphviz; elsewhere see graphviz.org), or write the DOT text with .to_dot() or "
                           "render('graph.dot')")
    return dot


def render_dot(text, path, format=None):
    """Write DOT ``text`` to ``path``: as is for ``.dot``/``.gv``, else drawn by Graphviz's ``dot``.

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
    r = subprocess.run([dot, f"-T{fmt}", "-o", path], input=text.encode("utf-8"), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"gradtape: Graphviz's dot failed to write {path!r} as {fmt!r}: "
                           f"{r.stderr.decode(errors='replace').strip()}")


def dot_to_svg(text):
    """SVG text for DOT ``text``, or None where Graphviz's ``dot`` is not installed.

    >>> from gradtape.graph import dot_to_svg, dot_source
    >>> svg = dot_to_svg(dot_source("g", [("a", ["a"], "input")], []))
    >>> svg is None or svg.lstrip().startswith("<?xml")
    True
    """
    dot = shutil.which("dot")
    if dot is None:
        return None
    r = subprocess.run([dot, "-Tsvg"], input=text.encode("utf-8"), capture_output=True)
    return r.stdout.decode("utf-8") if r.returncode == 0 else None


def _to_dot(graph):
    """DOT text for a :class:`gradtape.graph.Graph` (see its ``to_dot``)."""
    items, edges = [], []
    for i, n in enumerate(graph.nodes):
        if n.kind == "input":
            items.append((f"n{i}", [n.op, _fmt_type(n)], "input"))
        elif n.kind == "const":
            items.append((f"n{i}", ["const", _fmt_type(n)], "const"))
        else:
            items.append((f"n{i}", _op_label(n.op if n.kind != "item" else f"item {n.attrs.get('k')}",
                                             n.inputs) + [_fmt_type(n)], "rev" if n.rev else "op"))
        for d in n.deps():
            edges.append((f"n{d}", f"n{i}"))
    for k, (name, r) in enumerate(zip(graph.outputs, graph._out_refs())):
        items.append((f"o{k}", [name, _fmt_type(graph.nodes[r])], "output"))
        edges.append((f"n{r}", f"o{k}"))
    return dot_source(graph.name, items, edges)


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
