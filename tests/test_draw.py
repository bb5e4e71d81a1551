"""Graph pictures without Graphviz: matplotlib + grandalf draw the same labels, colours and a legend."""
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

import gradtape as gt
from gradtape import sym
from gradtape.graph import dot as gdot
from gradtape.graph import draw as gdraw

pytest.importorskip("matplotlib")
pytest.importorskip("grandalf")

LEGEND = ["input", "forward op", "reverse op (red)", "output"]


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)


def _svg_texts(path_or_text):
    text = path_or_text.read_text(encoding="utf-8") if hasattr(path_or_text, "read_text") else path_or_text
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    return [t.strip() for el in root.iter() if el.tag.endswith("text") for t in el.itertext() if t.strip()]


def _lecture():
    x, w, y = sym.var("x"), sym.var("w"), sym.var("y")
    a = gt.vecdot(x, w).rename("a")
    b = (a - y).rename("b")
    z = (b ** 2).rename("z")
    dx, dw = sym.grad(z, [x, w])
    g = gt.trace(sym.group(z, dx, dw), x=gt.asarray([1.0, 2.0, 3.0]), w=gt.asarray([0.5, -1.0, 2.0]),
                 y=gt.asarray(1.5))
    return z, g


def test_traced_gradient_graph_to_svg_without_dot(no_dot, tmp_path):
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) ** 2)), gt.ones(2))
    p = tmp_path / "g.svg"
    g.render(p)
    texts = _svg_texts(p)
    for label in ("x", "sin", "cos", "out", "(2,) float64", "(2, •)"):
        assert label in texts, (label, texts)
    assert "const" not in texts                          # the seed is bookkeeping: hidden by default
    text = p.read_text(encoding="utf-8")
    for style in ("input", "op", "rev", "output"):       # the DOT styles' fill colours
        fill = dict(gdraw._ATTR.findall(gdot._STYLES[style]))["fillcolor"].strip('"')
        assert fill in text, style
    q = tmp_path / "detail.svg"
    g.render(q, detail=True)
    assert "const" in _svg_texts(q) and "pow" in _svg_texts(q)


def test_png_without_dot(no_dot, tmp_path):
    import matplotlib.image
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x) ** 2)), gt.ones(2))
    p = tmp_path / "g.png"
    g.render(p)
    data = p.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    img = matplotlib.image.imread(str(p))
    assert img.shape[0] > 100 and img.shape[1] > 100
    red = (abs(img[..., 0] - 0xfe / 255) < 0.02) & (abs(img[..., 1] - 0xe2 / 255) < 0.02) \
        & (abs(img[..., 2] - 0xe2 / 255) < 0.02)
    assert red.sum() > 200                               # reverse-pass nodes are filled red


def test_sym_graph_without_dot(no_dot, tmp_path):
    c = 2 * sym.var("a") + sym.var("b")
    p = tmp_path / "c.svg"
    c.render(p)
    texts = _svg_texts(p)
    for label in ("a", "b", "multiply", "(2, •)", "add", "out"):
        assert label in texts, (label, texts)
    q = tmp_path / "c.png"
    c.render(q)
    assert q.read_bytes().startswith(b"\x89PNG") and q.stat().st_size > 0
    r = tmp_path / "c.pdf"
    c.render(r)
    assert r.read_bytes().startswith(b"%PDF")


def test_legend_entries(no_dot, tmp_path):
    z, g = _lecture()
    p = tmp_path / "z.svg"
    z.render(p)
    texts = _svg_texts(p)
    assert all(name in texts for name in LEGEND), texts
    assert "constant" not in texts                       # only for pictures that show constants
    g.render(tmp_path / "g.svg", detail=True)
    assert all(name in _svg_texts(tmp_path / "g.svg") for name in LEGEND + ["constant"])
    g.render(tmp_path / "bare.svg", legend=False)
    assert not any(name in _svg_texts(tmp_path / "bare.svg") for name in LEGEND)


def test_names_and_hidden_bookkeeping():
    z, g = _lecture()
    full = g.to_dot()
    assert "const" in full and "reshape" in full and "(•, 1)" in full
    short = g.to_dot(detail=False, names={"out0": "z", "out1": "∂z/∂x", "out2": "∂z/∂w", 3: "a", 4: "b"})
    _, nodes, edges = gdraw.parse_dot(short)
    labels = {k: v[0][0] for k, v in nodes.items()}
    assert not any(lab.startswith(("const", "reshape")) for lab in labels.values())
    assert "(•, 1)" not in short
    assert {"z", "∂z/∂x", "∂z/∂w", "a = vecdot", "b = subtract"} <= set(labels.values())
    # the hidden nodes' neighbours are joined: every output is reached from the inputs x and w
    reach = {k for k, v in labels.items() if v in ("x", "w", "y")}
    for _ in range(len(nodes)):
        reach |= {b for a, b in edges if a in reach}
    assert {k for k, v in labels.items() if v.startswith("∂z")} <= reach
    assert ("n3", "n4") in edges and all(a in nodes and b in nodes for a, b in edges)
    assert gdraw.parse_dot(g.to_dot(names=("z", "dx", "dw")))[1]["o1"][0][0] == "dx"
    with pytest.raises(ValueError, match="3 outputs"):
        g.to_dot(names=("z",))


def test_the_picture_of_the_lecture_graph(no_dot, tmp_path):
    z, g = _lecture()
    g.render(tmp_path / "g.svg", names=("z", "∂z/∂x", "∂z/∂w"))
    texts = _svg_texts(tmp_path / "g.svg")
    assert {"x", "w", "y", "vecdot", "subtract", "z", "∂z/∂x", "∂z/∂w"} <= set(texts)
    assert "reshape" not in texts and "const" not in texts


def test_repr_svg_without_dot(no_dot):
    svg = gt.trace(lambda x: x * 2.0, gt.ones(2))._repr_svg_()
    assert "multiply" in _svg_texts(svg)
    assert "add" in _svg_texts((sym.var("a") + 1.0)._repr_svg_())


def test_neither_graphviz_nor_matplotlib_names_both(no_dot, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "grandalf", None)
    monkeypatch.setitem(sys.modules, "grandalf.graphs", None)
    g = gt.trace(lambda x: x * 2.0, gt.ones(2))
    with pytest.raises(RuntimeError) as e:
        g.render(tmp_path / "g.svg")
    assert "apt-get install graphviz" in str(e.value) and 'pip install "gradtape[main]"' in str(e.value)
    assert "package `graphviz`" in str(e.value)
    assert not (tmp_path / "g.svg").exists()
    assert g._repr_svg_() is None
    g.render(tmp_path / "g.dot")                          # DOT text needs neither
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    with pytest.raises(RuntimeError, match="only as svg, png, pdf"):
        g.render(tmp_path / "g.gif")


def test_parse_dot_reads_back_escaped_labels():
    text = gdot.dot_source('t "q"', [("a", ['say "hi"', "back\\slash"], "rev"), ("b", ["b"], "const")],
                           [("a", "b")])
    title, nodes, edges = gdraw.parse_dot(text)
    assert title == 't "q"' and nodes["a"][0] == ['say "hi"', "back\\slash"] and edges == [("a", "b")]
    assert gdraw.style_kind(nodes["a"][1], gdot._STYLES) == "rev"
    assert gdraw.style_kind(nodes["b"][1], gdot._STYLES) == "const"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed (Debian package graphviz)")
def test_graphviz_pictures_carry_the_legend_too(tmp_path):
    z, g = _lecture()
    g.render(tmp_path / "g.svg")
    text = (tmp_path / "g.svg").read_text(encoding="utf-8")
    assert all(name in text for name in LEGEND) and "reshape" not in text
    g.render(tmp_path / "bare.svg", legend=False)
    assert "reverse op (red)" not in (tmp_path / "bare.svg").read_text(encoding="utf-8")
