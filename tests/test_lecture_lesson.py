"""The main job reads like a lesson (issue 14, part 2): inputs shown, every check against the notes' closed form,
readable numbers, Chinese titles on request, exact (deterministic) cost figures, and every picture drawn without
Graphviz.

The lesson runs in-process (``gradtape.lecture.lesson``/``main``) with ``dot`` hidden from PATH; each recorded
check's closed form is recomputed here with plain NumPy formulas from the inputs the lesson printed.
"""
import contextlib
import io
import math
import re

import numpy as np
import pytest

import gradtape as gt
from gradtape import lecture

SIZES = (2, 5)
# the notes' own headings (seed: matrix-calculus-and-autograd-notes.md)
SEED_HEADINGS = ["矩阵求导", "标量导数", "亚导数", "梯度", "自动求导", "向量链式法则", "计算图", "显示构造"]


def _run(tmp_path, name, **kw):
    out = tmp_path / name
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        r = lecture.lesson("cpu", str(out), SIZES, repeats=1, **kw)
    return r, buf.getvalue(), out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("matplotlib")
    pytest.importorskip("grandalf")
    tmp = tmp_path_factory.mktemp("lesson")
    empty = tmp / "bin"                      # a PATH without Graphviz's dot
    empty.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(empty))
        mp.setenv("MPLBACKEND", "Agg")
        first = _run(tmp, "first")
        second = _run(tmp, "second")
    return first, second


def test_every_picture_is_drawn_without_dot(runs):
    (r, text, out), _ = runs
    for name in ("lecture_graph", "lecture_grad_graph"):
        for ext, magic in ((".svg", b"<svg"), (".png", b"\x89PNG")):
            data = (out / (name + ext)).read_bytes()
            assert magic in data[:400], (name + ext, data[:80])
    assert (out / "forward_vs_reverse.png").read_bytes()[:4] == b"\x89PNG"
    assert "matplotlib (no Graphviz `dot` here)" in text
    assert f"files written to {out}" in text and "all lecture checks passed" in text and r.failed == 0


# ---- every check against a closed form, recomputed here with NumPy from the recorded inputs -------------------

def _k(a):
    b = 2 * a
    while abs(b) < 1000:
        b *= 2
    return (b if b > 0 else 100 * b) / a


def _deep(i):
    x, w, y, n = (np.asarray(i[k]) for k in ("x", "w", "y", "n"))
    h, prod = x, np.ones_like(x)
    for _ in range(int(n)):
        prod, h = prod * np.cos(h), np.sin(h)
    return 2 * (h @ w - y) * w * prod


def _sub(x, pos, neg, a):
    return np.where(x > 0, pos, np.where(x < 0, neg, a))


CLOSED = {
    ("scalar", "cube"): lambda i: 3 * i["x"] ** 2,
    ("scalar", "sin"): lambda i: np.cos(i["x"]),
    ("scalar", "exp"): lambda i: np.exp(i["x"]),
    ("sub", "abs"): lambda i: _sub(i["x"], 1, -1, 0.0),
    ("sub", "abs_a"): lambda i: _sub(i["x"], 1, -1, 0.5),
    ("sub", "relu"): lambda i: _sub(i["x"], 1, 0, 0.0),
    ("sub", "relu_a"): lambda i: _sub(i["x"], 1, 0, 1.0),
    ("grad", "row"): lambda i: 2 * i["x"],
    ("grad", "column"): lambda i: [1, 2 * i["s"], np.cos(i["s"])],
    ("grad", "matrix"): lambda i: [[i["x"][1], i["x"][0], 0], [0, 1, 1]],
    ("table1", "a"): lambda i: np.zeros((3, 3)),
    ("table1", "x"): lambda i: np.eye(3),
    ("table1", "Ax"): lambda i: i["A"],
    ("table1", "xA"): lambda i: i["A"].T,
    ("table2", "du"): lambda i: np.diag(np.cos(i["x"])),
    ("table2", "dv"): lambda i: np.diag(2 * i["x"]),
    ("table2", "au"): lambda i: i["a"] * np.diag(np.cos(i["x"])),
    ("table2", "Au"): lambda i: i["A"] @ np.diag(np.cos(i["x"])),
    ("table2", "u+v"): lambda i: np.diag(np.cos(i["x"]) + 2 * i["x"]),
    ("chain", "scalar"): lambda i: np.cos(i["t"] ** 2) * 2 * i["t"],
    ("chain", "u_scalar"): lambda i: 2 * (i["w"] @ i["x"]) * i["w"],
    ("chain", "u_vector"): lambda i: 2 * (i["A"] @ i["x"]) @ i["A"],
    ("chain", "y_vector"): lambda i: (np.array([[np.sin(i["x"][1]), np.sin(i["x"][0]), 0], [-1, 0, 1]])
                                      @ np.diag(np.cos(i["x"]))),
    ("explicit", "c"): lambda i: 2 * i["a"] + i["b"],
    ("explicit", "c_a"): lambda i: 2.0,
    ("explicit", "c_b"): lambda i: 1.0,
    ("explicit", "z"): lambda i: (i["x"] @ i["w"] - i["y"]) ** 2,
    ("explicit", "z_x"): lambda i: 2 * (i["x"] @ i["w"] - i["y"]) * i["w"],
    ("explicit", "z_w"): lambda i: 2 * (i["x"] @ i["w"] - i["y"]) * i["x"],
    ("explicit", "json_z"): lambda i: (i["x"] @ i["w"] - i["y"]) ** 2,
    ("explicit", "json_w"): lambda i: 2 * (i["x"] @ i["w"] - i["y"]) * i["x"],
    ("implicit", "dc_da"): lambda i: 2 * np.ones_like(i["a"]),
    ("implicit", "dc_db"): lambda i: np.ones_like(i["b"]),
    ("d2l", "2xx"): lambda i: 4 * i["x"],
    ("d2l", "detach"): lambda i: i["x"] ** 2,
    ("d2l", "control"): lambda i: _k(float(i["a"])),
    ("modes", "fwd"): lambda i: 2 * (i["x"] @ i["w"] - i["y"]) * i["x"],
    ("modes", "rev"): lambda i: 2 * (i["x"] @ i["w"] - i["y"]) * i["x"],
    ("cost", "deep_fwd"): _deep,
    ("cost", "deep_rev"): _deep,
}


def test_every_check_compares_gradtape_with_an_independent_closed_form(runs):
    (r, text, _), _ = runs
    got = {(c["section"], c["key"]) for c in r.checks}
    assert got == set(CLOSED), (got ^ set(CLOSED))       # a new check needs its NumPy closed form here
    assert len(got) == len(r.checks)
    for c in r.checks:
        inputs = {k: np.asarray(v, dtype=float) for k, v in r.inputs[c["section"]].items()}
        want = np.asarray(CLOSED[c["section"], c["key"]](inputs), dtype=float)
        closed = np.asarray(c["closed_form"], dtype=float)
        # plain Python numbers, equal to the NumPy formula: not gradtape's derivative
        assert not any(isinstance(e, gt.Tensor) for e in np.asarray(c["closed_form"], dtype=object).ravel())
        np.testing.assert_allclose(closed, want, rtol=1e-12, atol=1e-12, err_msg=str(c))
        np.testing.assert_allclose(np.asarray(c["gradtape"], dtype=float), want, rtol=1e-9, atol=1e-12,
                                   err_msg=str(c))
        assert c["ok"], c
    verdicts = re.findall(r"   (agree|DIFFER)\b", text)
    assert verdicts == ["agree"] * len(r.checks)         # one printed verdict per recorded check, all agree
    assert text.count("  given ") >= len(r.inputs) and all(r.inputs[s] for s in r.inputs)


def test_a_closed_form_may_not_be_a_gradtape_tensor():
    r = lecture.Reporter()
    x = gt.asarray(2.0)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(TypeError, match="plain Python"):
        r.check("k", "d(x²)/dx", gt.grad(lambda x: x * x)(x), 2 * x, formula="2x", how="gt.grad")


def test_a_disagreement_is_printed_and_counted():
    r = lecture.Reporter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        r.check("k", "d(x²)/dx", gt.grad(lambda x: x * x)(gt.asarray(2.0)), 5.0, formula="2x", how="gt.grad")
    assert r.failed == 1 and "DIFFER" in buf.getvalue() and not r.checks[0]["ok"]


# ---- readable numbers --------------------------------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")


def test_printed_numbers_are_readable(runs):
    (_, text, _), _ = runs
    body = text.split("files written to")[0]
    numbers = NUMBER.findall(body)
    assert len(numbers) > 200
    negative_zero = [n for n in numbers if re.fullmatch(r"-0(\.0*)?(e[+-]?\d+)?", n)]
    assert not negative_zero
    digits = [n for n in numbers if len(re.sub(r"e.*|\D", "", n).lstrip("0")) > 6]
    assert not digits, digits[:10]
    assert not re.search(r"(?<![\w.])-0(\.0+)?(?![\d.eE])", body)


def test_number_format():
    assert lecture._num(-0.0) == "0" and lecture._num(1.6209069176044193) == "1.621"
    assert lecture._num(409600.0) == "409600" and lecture._num(-1e-20) == "-1e-20"
    assert lecture._block([[1.0, -0.0], [-1e-17, 2.5]]) == ["[[1,   0],", " [0, 2.5]]"]


# ---- --lang zh, --help -------------------------------------------------------------------------------------------

def test_lang_zh_prints_the_notes_headings(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert lecture.main(["--lang", "zh", "--out", str(tmp_path / "zh"), "--sizes", "2", "--repeats", "1"]) == 0
    zh = capsys.readouterr().out
    titles = re.findall(r"^=+ (.+?) =+$", zh, re.M)
    for h in SEED_HEADINGS:
        assert any(h in t for t in titles), (h, titles)
    assert "== 亚导数 ==" in zh and "Subderivatives" not in zh


def test_english_is_the_default_and_help_mentions_zh(runs, capsys):
    (_, text, _), _ = runs
    assert "== Subderivatives" in text and not any(h in text for h in SEED_HEADINGS)
    with pytest.raises(SystemExit):
        lecture.main(["--help"])
    help_text = capsys.readouterr().out
    assert "--lang" in help_text and "zh" in help_text and "``" not in help_text


# ---- forward vs reverse: operations and memory, exact and the same on every run --------------------------------

def _cost_lines(text):
    part = text.split("Operations and memory")[1].split("Time on this machine")[0]
    return [line for line in part.splitlines() if line.startswith("  |")]


def test_cost_in_operations_and_memory_is_deterministic(runs):
    (r1, t1, _), (r2, t2, _) = runs
    assert r1.costs == r2.costs and len(r1.costs) == len(SIZES)
    assert _cost_lines(t1) == _cost_lines(t2) and len(_cost_lines(t1)) == len(SIZES) + 1
    small, big = r1.costs
    for row in r1.costs:
        assert row["fwd_ops"] == 16 * row["fwd_pass_ops"] > row["rev_ops"] > 0
        assert 0 < row["rev_kept"] <= row["rev_bytes"]
    assert big["rev_bytes"] > small["rev_bytes"] and big["fwd_bytes"] == small["fwd_bytes"]
    # each sin adds a sin, a cos and a multiply to one pass of either mode
    dn = big["n"] - small["n"]
    assert big["fwd_pass_ops"] - small["fwd_pass_ops"] == 3 * dn == big["rev_ops"] - small["rev_ops"]
    # one kept (16,) float64 value per sin: its input, read by the reverse pass's cos
    assert big["rev_kept"] - small["rev_kept"] == dn * 16 * 8
    assert t1.count("In one sentence:") == 1 and "median of 1 runs" in t1


def test_graph_cost_counts_a_known_graph():
    g = gt.trace(gt.grad(lambda x: gt.sum(gt.sin(x))), gt.ones(4))
    ops, peak, kept = lecture._graph_cost(g)
    # x; cos(x) (reverse); the seed of ones (a constant); their product: cos, seed and product alive at once
    assert [(n.kind, n.rev) for n in g.nodes] == [("input", False), ("prim", True), ("const", False), ("prim", True)]
    assert ops == 2 and peak == 3 * 4 * 8
    assert kept == 0                            # the reverse pass reads only the input x and the seed
    assert lecture._nbytes(g.nodes[-1]) == math.prod((4,)) * 8


def test_the_lesson_on_array_api_strict_leaves_the_default_device_alone(tmp_path, monkeypatch):
    pytest.importorskip("array_api_strict")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = gt.get_default_device()
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        r = lecture.lesson("strict", str(tmp_path / "strict"), (2,), repeats=1)
    assert r.failed == 0 and len(r.checks) == len(CLOSED), buf.getvalue()[-2000:]
    assert "on device 'strict'" in buf.getvalue() and gt.get_default_device() == before


# ---- the closed forms are computed without gradtape: read from lecture.py's source --------------------------------

GRADTAPE_NAMES = {"gt", "sym", "autograd", "nd"}           # gradtape's namespaces as lecture.py imports them
TENSOR_METHODS = {"tolist", "grad", "eval", "detach", "item", "numpy", "backward"}
PLAIN_HELPERS_ALLOWED_PARAMS = {"sizes"}                   # the one parameter a closed form may use (n = sizes[0])


def _bad_nodes(expr, assigns, params, functions, seen):
    """Where ``expr`` (or a name or module function it uses, transitively) touches gradtape or a tensor."""
    import ast
    bad = []
    for node in ast.walk(expr):
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in GRADTAPE_NAMES:
                bad.append(f"{node.value.id}.{node.attr}")
            if node.attr in TENSOR_METHODS:
                bad.append(f".{node.attr}")
        elif isinstance(node, ast.Name) and node.id not in seen:
            seen.add(node.id)
            if node.id in assigns:
                for value in assigns[node.id]:
                    bad += _bad_nodes(value, assigns, params, functions, seen)
            elif node.id in params and node.id not in PLAIN_HELPERS_ALLOWED_PARAMS:
                bad.append(f"parameter {node.id}")
            elif node.id in functions:
                bad += _bad_nodes(functions[node.id], {}, set(), functions, seen)
            elif node.id in {"_t", "_value", "_grad_forward", "_grad_reverse", "_deep_z", "_z"}:
                bad.append(node.id)
    return bad


def test_closed_forms_in_the_source_never_use_gradtape():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(lecture))
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    module_assigns = {t.id: [a.value] for a in tree.body if isinstance(a, ast.Assign)
                      for t in a.targets if isinstance(t, ast.Name)}
    found = 0
    for f in functions.values():
        assigns = dict(module_assigns)
        for a in ast.walk(f):
            targets = a.targets if isinstance(a, ast.Assign) else [a.target] if isinstance(a, ast.AugAssign) else []
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name):
                        assigns.setdefault(name.id, []).append(a.value)
        params = {p.arg for p in f.args.args + f.args.kwonlyargs}
        for call in ast.walk(f):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "check"
                    and isinstance(call.func.value, ast.Name) and call.func.value.id == "r"):
                closed = call.args[3]
                found += 1
                bad = _bad_nodes(closed, assigns, params, {k: v for k, v in functions.items() if k != f.name},
                                 set())
                assert not bad, f"{f.name}: closed form {ast.unparse(closed)!r} uses {bad}"
    assert found == len(CLOSED)


def test_the_source_check_catches_a_closed_form_taken_from_gradtape():
    import ast
    src = "def s(r):\n    X = _t([1.0])\n    g = gt.grad(gt.sin)(X)\n    r.check('k', 'w', g, g.tolist(), formula='', how='')\n"
    f = ast.parse(src).body[0]
    closed = f.body[-1].value.args[3]
    assigns = {"X": [f.body[0].value], "g": [f.body[1].value]}
    assert {"gt.grad", ".tolist", "_t"} <= set(_bad_nodes(closed, assigns, {"r"}, {}, set()))
