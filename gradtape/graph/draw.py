"""Pictures without Graphviz: the DOT text of :mod:`gradtape.graph.dot` laid out and drawn in Python.

Where Graphviz's ``dot`` program is missing, :func:`gradtape.graph.dot.render_dot`
hands the DOT text to :func:`draw_dot`: a layered top-down (Sugiyama) layout
from grandalf, drawn with matplotlib (its Agg/SVG canvases, no pyplot state)
to SVG, PNG or PDF, with the same labels, shapes and colours as the DOT styles
and a legend. Both packages are optional (``pip install "gradtape[main]"``)
and imported only when a picture is drawn.
"""
from __future__ import annotations

import io
import re

_NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", (.*)\];$')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+);$")
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s]+)')
FORMATS = ("svg", "png", "pdf")
LEGEND = (("input", "input"), ("op", "forward op"), ("rev", "reverse op (red)"), ("output", "output"),
          ("const", "constant"))
_FONT = 11.0          # points, as the DOT text's node fontsize


def missing_message(what):
    """The error text where neither Graphviz nor the pip-installable drawing path is available."""
    return (f"gradtape: cannot draw graphs to SVG/PNG: Graphviz's `dot` program is not installed (or not on "
            f"PATH) and {what}; either install Graphviz (the Debian/Ubuntu package `graphviz`: apt-get install "
            f"graphviz; elsewhere see graphviz.org) or the Python drawing path (pip install \"gradtape[main]\", "
            f"which brings matplotlib and grandalf), or write the DOT text with .to_dot() or render('graph.dot')")


def _unquote(s):
    if s.startswith('"'):
        s = s[1:-1]
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def parse_dot(text):
    """``(title, nodes, edges)`` of DOT text written by :func:`gradtape.graph.dot.dot_source`.

    ``nodes`` maps each id to ``(label lines, attributes)``; ``edges`` lists (from, to) pairs.

    >>> from gradtape.graph.dot import dot_source
    >>> from gradtape.graph.draw import parse_dot
    >>> t, nodes, edges = parse_dot(dot_source("g", [("a", ["a", "(2,)"], "input")], [("a", "a")]))
    >>> t, nodes["a"][0], nodes["a"][1]["shape"], edges
    ('g', ['a', '(2,)'], 'ellipse', [('a', 'a')])
    """
    lines = text.splitlines()
    m = re.match(r'\s*digraph ("(?:[^"\\]|\\.)*"|\w+)', lines[0] if lines else "")
    title = _unquote(m.group(1)) if m else "graph"
    nodes, edges = {}, []
    for ln in lines[1:]:
        if ln.lstrip().startswith(("graph ", "node ", "edge ")):
            continue
        m = _NODE.match(ln)
        if m:
            attrs = {k: _unquote(v) for k, v in _ATTR.findall(m.group(3))}
            nodes[m.group(1)] = (_unquote('"' + m.group(2) + '"').split("\n"), attrs)
            continue
        m = _EDGE.match(ln)
        if m:
            edges.append((m.group(1), m.group(2)))
    return title, nodes, edges


def style_kind(attrs, styles):
    """The DOT style name (``input``, ``op``, ...) whose colours ``attrs`` carry."""
    for kind, text in styles.items():
        want = {k: _unquote(v) for k, v in _ATTR.findall(text)}
        if all(attrs.get(k) == v for k, v in want.items()):
            return kind
    return "op"


def _imports():
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib import patches
        from grandalf.graphs import Edge, Graph, Vertex
        from grandalf.layouts import SugiyamaLayout
    except ImportError as e:
        raise RuntimeError(missing_message(f"the Python drawing path is not installed either ({e})")) from None
    return matplotlib, Figure, patches, (Edge, Graph, Vertex, SugiyamaLayout)


class _View:
    """A grandalf vertex/edge view: the size in, the position (and the routed edge path) out."""

    def __init__(self, w=0.0, h=0.0):
        self.w, self.h, self.xy, self.path = w, h, (0.0, 0.0), None

    def setpath(self, pts):
        self.path = pts


def _layout(ids, sizes, edges, ga):
    """{id: (x, y)} top-down (y grows downward) and {edge index: path} for each connected component."""
    Edge, Graph, Vertex, Sugiyama = ga
    vs = {i: Vertex(i) for i in ids}
    for i, v in vs.items():
        v.view = _View(*sizes[i])
    es = []
    for a, b in edges:
        if a != b:
            e = Edge(vs[a], vs[b])
            e.view = _View()
            es.append(e)
    g = Graph(list(vs.values()), es)
    pos, x0 = {}, 0.0
    for comp in g.C:
        s = Sugiyama(comp)
        s.xspace, s.yspace = 18.0, 26.0
        s.init_all()
        s.draw()
        cv = list(comp.sV)                                   # mirrored: grandalf orders layers right to left
        left = min(-v.view.xy[0] - v.view.w / 2 for v in cv)
        right = max(-v.view.xy[0] + v.view.w / 2 for v in cv)
        for v in cv:
            pos[v.data] = (-v.view.xy[0] - left + x0, v.view.xy[1])
        for e in comp.sE:
            if e.view.path:
                e.view.path = [(-x - left + x0, y) for x, y in e.view.path]
        x0 += right - left + 30.0
    paths = {}
    for e in es:
        paths[(e.v[0].data, e.v[1].data)] = e.view.path
    return pos, paths


def _text_size(lines, TextPath):
    w = max((TextPath((0, 0), ln or " ", size=_FONT).get_extents().width for ln in lines), default=10.0)
    return w + 18.0, _FONT * 1.3 * len(lines) + 10.0


def draw_dot(text, path, fmt, styles, legend=True):
    """Draw DOT ``text`` (as :func:`gradtape.graph.dot.dot_source` writes it) to ``path`` as ``fmt``.

    ``path`` may also be a binary file object. Raises RuntimeError where
    matplotlib or grandalf is missing.
    """
    if fmt not in FORMATS:
        raise RuntimeError(f"gradtape: without Graphviz's `dot`, graphs are drawn only as {', '.join(FORMATS)} "
                           f"(got {fmt!r}); install Graphviz (Debian/Ubuntu package `graphviz`) for the others")
    matplotlib, Figure, patches, ga = _imports()
    from matplotlib.textpath import TextPath
    title, nodes, edges = parse_dot(text)
    ids = list(nodes)
    sizes = {i: _text_size(nodes[i][0], TextPath) for i in ids}
    for i in ids:
        if nodes[i][1].get("shape") == "ellipse":            # the label sits inside the ellipse
            w, h = sizes[i]
            sizes[i] = (w * 1.25, h * 1.2)
    pos, paths = _layout(ids, sizes, edges, ga) if ids else ({}, {})
    kinds = {i: style_kind(nodes[i][1], styles) for i in ids}
    xs = [pos[i][0] + s * sizes[i][0] / 2 for i in ids for s in (-1, 1)] or [0.0, 100.0]
    ys = [pos[i][1] + s * sizes[i][1] / 2 for i in ids for s in (-1, 1)] or [0.0, 40.0]
    shown = [k for k, _ in LEGEND if k != "const" or "const" in kinds.values()] if legend else []
    pad, leg_w = 12.0, (130.0 if shown else 0.0)
    x_lo, x_hi, y_lo, y_hi = min(xs) - pad, max(xs) + pad + leg_w, min(ys) - pad, max(ys) + pad
    y_hi = max(y_hi, y_lo + 20.0 * len(shown) + 2 * pad)
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans", "svg.hashsalt": "gradtape",
                                "path.simplify": False}):
        fig = Figure(figsize=((x_hi - x_lo) / 72.0, (y_hi - y_lo) / 72.0), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_hi, y_lo)                              # y grows downward, as in the layout
        ax.set_axis_off()
        for a, b in edges:
            _edge(ax, patches, pos, sizes, a, b, paths.get((a, b)))
        for i in ids:
            _node(ax, patches, pos[i], sizes[i], nodes[i][0], nodes[i][1])
        if shown:
            _legend(ax, patches, shown, styles, x_hi - leg_w + 4.0, y_lo + pad)
        buf = path if hasattr(path, "write") else None
        if buf is None:
            with open(path, "wb") as fh:
                fig.savefig(fh, format=fmt, metadata=_metadata(fmt, title))
        else:
            fig.savefig(buf, format=fmt, metadata=_metadata(fmt, title))


def draw_svg(text, styles, legend=True):
    """SVG text for DOT ``text`` drawn by :func:`draw_dot` (RuntimeError without matplotlib/grandalf)."""
    buf = io.BytesIO()
    draw_dot(text, buf, "svg", styles, legend)
    return buf.getvalue().decode("utf-8")


def _metadata(fmt, title):
    if fmt == "svg":
        return {"Title": title, "Date": None}
    if fmt == "pdf":
        return {"Title": title, "CreationDate": None}
    return {"Title": title}


def _colours(attrs):
    return attrs.get("fillcolor", "#ffffff"), attrs.get("color", "#111827"), attrs.get("fontcolor", "#111827")


def _node(ax, patches, xy, size, label, attrs):
    (x, y), (w, h) = xy, size
    fill, edge, font = _colours(attrs)
    shape = attrs.get("shape", "box")
    if shape == "ellipse":
        ax.add_patch(patches.Ellipse((x, y), w, h, facecolor=fill, edgecolor=edge, lw=1.0, zorder=2))
        if attrs.get("peripheries") == "2":
            ax.add_patch(patches.Ellipse((x, y), w + 6, h + 6, facecolor="none", edgecolor=edge, lw=1.0, zorder=2))
    else:
        style = "round,pad=0,rounding_size=5" if "rounded" in attrs.get("style", "") else "square,pad=0"
        ax.add_patch(patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style, facecolor=fill,
                                            edgecolor=edge, lw=1.0, zorder=2))
    ax.text(x, y, "\n".join(label), ha="center", va="center", fontsize=_FONT, color=font, zorder=3,
            linespacing=1.2)


def _edge(ax, patches, pos, sizes, a, b, path):
    pts = list(path) if path else [pos[a], pos[b]]
    (xa, ya), (xb, yb) = pos[a], pos[b]
    pts[0] = (xa, ya + sizes[a][1] / 2 * (1 if yb >= ya else -1))
    pts[-1] = (xb, yb - sizes[b][1] / 2 * (1 if yb >= ya else -1) - (3.0 if yb >= ya else -3.0))
    if a == b:
        return
    if len(pts) > 2:
        ax.plot([p[0] for p in pts[:-1]], [p[1] for p in pts[:-1]], color="#4b5563", lw=0.9, zorder=1)
    ax.add_patch(patches.FancyArrowPatch(pts[-2], pts[-1], arrowstyle="-|>", mutation_scale=9, color="#4b5563",
                                         lw=0.9, shrinkA=0, shrinkB=0, zorder=1))


def _legend(ax, patches, shown, styles, x, y):
    names = dict(LEGEND)
    ax.text(x, y, "legend", fontsize=_FONT, fontweight="bold", va="center", color="#111827", zorder=3)
    for k, kind in enumerate(shown):
        attrs = {k2: _unquote(v) for k2, v in _ATTR.findall(styles[kind])}
        yy = y + 20.0 * (k + 1)
        _node(ax, patches, (x + 12.0, yy), (22.0, 13.0), [""], attrs)
        ax.text(x + 30.0, yy, names[kind], fontsize=_FONT, va="center", color="#111827", zorder=3)
