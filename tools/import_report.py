"""Check gradtape's layering by parsing its source (the package is never imported).

    python tools/import_report.py            # every violation, grouped by rule; exit 1 if any
    python tools/import_report.py --by-file  # the same, grouped by file
    python tools/import_report.py --edges    # also print the module import graph

Rules (issue 10, /tmp/coord/TARGET.md): each module sits in a layer, ranked by its first path component under
``gradtape`` (``LAYERS``); a module imports only its own layer or lower ones, top-level or inside a function;
the imports among gradtape's modules form no cycle; no function-local import of a gradtape module (optional
third-party packages may be imported lazily); nothing imports the package ``gradtape`` itself (but
``__main__`` and ``lecture``, which are written against the public API); no mutation of ``Tensor`` or of a
module's globals; no file over ``MAX_LINES`` lines unless its docstring has a ``Size:`` line saying why;
``gradtape/__init__.py`` only re-exports; gradtape/ never imports NumPy or CuPy (only backends/ does).

tests/test_layering.py runs each rule as a test through the functions here.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = "gradtape"
MAX_LINES = 500

# rank of a module by its first path component under gradtape ("" is gradtape/__init__.py itself)
LAYERS = {
    "backends": 0,
    "_state": 1, "_tree": 1, "_axes": 1, "_version": 1,
    "_core": 2,
    "_ops": 3,
    "_api": 4,
    "_autodiff": 5,
    **{k: 6 for k in ("graph", "nn", "optim", "special", "testing", "compat", "linalg", "sym", "autograd",
                      "nd", "lecture", "tree", "fft", "_jit")},
    "": 7, "__main__": 7,
}
# modules allowed to import the package gradtape itself (they are written against the public API)
SELF_IMPORT_OK = {f"{PKG}.__main__", f"{PKG}.lecture"}
# packages gradtape/ must never import (backends/ holds the array libraries)
ARRAY_LIBS = {"numpy", "cupy"}


@dataclasses.dataclass(frozen=True)
class Import:
    """One import statement's binding of one module: who imports what, where, and how."""
    src: str        # importing module, e.g. "gradtape._core.tensor"
    target: str     # absolute module imported, e.g. "gradtape._core.primitive" or "numpy.linalg"
    path: str       # file of src, relative to the repository root
    line: int
    text: str       # the statement as written (first line)
    scope: str      # "module", "class" or "function" (local: inside a def or lambda)
    guarded: bool   # inside try/except ImportError (or ModuleNotFoundError / Exception)
    kind: str       # "gradtape", "stdlib" or "third-party"
    dynamic: bool = False  # __import__("x") / importlib.import_module("x") with a constant name
    name: str = ""  # the name after `import` in `from target import name` ("" for `import target`)

    @property
    def local(self):
        return self.scope == "function"

    @property
    def where(self):
        return f"{self.path}:{self.line}"


# ---------------------------------------------------------------------------------------------- the tree


def source_files(root=ROOT):
    """{module name: path} for every .py file of gradtape/ and backends/ (backends/ is gradtape.backends)."""
    out = {}
    for top, name in ((root / PKG, PKG), (root / "backends", f"{PKG}.backends")):
        if not top.is_dir():
            continue
        for p in sorted(top.rglob("*.py")):
            rel = p.relative_to(top).with_suffix("").parts
            if any(part.startswith(".") or part == "__pycache__" for part in rel):
                continue
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join((name, *rel))] = p
    return out


def known_modules(root=ROOT):
    """The module names of the tree: every file's, and every folder's (one without __init__.py is a namespace
    package, still importable)."""
    names = set(source_files(root))
    for m in list(names):
        parts = m.split(".")
        names.update(".".join(parts[:k]) for k in range(1, len(parts)))
    return names


def is_package(path):
    return path.name == "__init__.py"


def first_component(module):
    """'gradtape._core.tensor' -> '_core'; 'gradtape' -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(module):
    """The layer of a gradtape module, or None where it is in no layer (an unmapped module)."""
    return LAYERS.get(first_component(module))


def layer_name(module):
    c = first_component(module)
    return c or "__init__"


# ---------------------------------------------------------------------------------------------- parsing


def _kind(name):
    top = name.split(".")[0]
    if top == PKG:
        return "gradtape"
    return "stdlib" if top in sys.stdlib_module_names else "third-party"


def _guards_import_error(handler):
    names = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    t = handler.type
    if t is None:
        return True
    elts = t.elts if isinstance(t, ast.Tuple) else [t]
    return any(isinstance(e, ast.Name) and e.id in names for e in elts)


def _resolve_base(module, is_pkg, level, name):
    """The absolute module of ``from <'.' * level><name> import ...`` written in ``module``."""
    if level == 0:
        return name
    parts = module.split(".")
    if not is_pkg:
        parts = parts[:-1]
    if level - 1 > len(parts) - 1:
        raise ValueError(f"relative import beyond the top package in {module}: level {level}")
    parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def _dynamic_name(call):
    """'x' for __import__("x") or importlib.import_module("x") (a constant, absolute name); else None."""
    f = call.func
    named = (isinstance(f, ast.Name) and f.id in ("__import__", "import_module")) or \
            (isinstance(f, ast.Attribute) and f.attr == "import_module")
    if named and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        if not call.args[0].value.startswith("."):
            return call.args[0].value
    return None


def parse_imports(module, path, modules, root=ROOT):
    """Every import in one file, as Import rows (``modules``: the known module names, to tell a submodule from
    a name defined in a package's __init__)."""
    tree = ast.parse(path.read_text(), str(path))
    lines = path.read_text().splitlines()
    rel = str(path.relative_to(root))
    pkg = is_package(path)
    out = []

    def add(target, node, scope, guarded, dynamic=False, name=""):
        text = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        out.append(Import(module, target, rel, node.lineno, text, scope, guarded, _kind(target), dynamic, name))

    def visit(node, scope, guarded):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name, node, scope, guarded)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_base(module, pkg, node.level, node.module)
            for a in node.names:
                sub = f"{base}.{a.name}"
                # `from . import x`: x is the submodule where one exists, else a name defined in base
                add(sub if a.name != "*" and sub in modules else base, node, scope, guarded, name=a.name)
        elif isinstance(node, ast.Call) and (name := _dynamic_name(node)):
            add(name, node, scope, guarded, dynamic=True)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            scope = "function"
        elif isinstance(node, ast.ClassDef) and scope == "module":
            scope = "class"
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            g = guarded or any(_guards_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, scope, g)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, scope, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, scope, guarded)

    visit(tree, "module", False)
    return out


def all_imports(root=ROOT):
    known = known_modules(root)
    return [imp for m, p in source_files(root).items() for imp in parse_imports(m, p, known, root)]


# ---------------------------------------------------------------------------------------------- rules
# each returns a list of (file, line, message)


def _rel(files, module, root):
    if module in files:
        return str(files[module].relative_to(root))
    parts = module.split(".")
    top = root / ("backends" if parts[1:2] == ["backends"] else PKG)
    return str(top.joinpath(*parts[2 if top.name == "backends" else 1:]).relative_to(root)) + "/"


def unmapped_modules(root=ROOT):
    files = source_files(root)
    return [(_rel(files, m, root), 1, f"unmapped module {m}: its first component {first_component(m)!r} is in "
             "no layer (add it to LAYERS in tools/import_report.py deliberately, or move the file)")
            for m in files if rank(m) is None]


def unresolved_imports(root=ROOT):
    """Imports of a gradtape module that is no file of the tree (broken by a move)."""
    known = known_modules(root)
    out = []
    for i in all_imports(root):
        if i.kind == "gradtape" and i.target not in known:
            out.append((i.path, i.line, f"{i.target} is no module of the tree: {i.text}"))
        elif i.target == i.src and i.name:  # a package's __init__ doing `from . import name`: no such submodule
            out.append((i.path, i.line, f"{i.src}.{i.name} is no module of the tree: {i.text}"))
    return out


def upward_imports(root=ROOT):
    out = []
    for i in all_imports(root):
        if i.kind != "gradtape":
            continue
        if i.target == PKG and i.src in SELF_IMPORT_OK:
            continue  # the lecture and __main__ use the public API (checked by self_imports)
        rs, rt = rank(i.src), rank(i.target)
        if rs is not None and rt is not None and rt > rs:
            out.append((i.path, i.line, f"{layer_name(i.src)} (layer {rs}) imports {i.target} "
                        f"({layer_name(i.target)}, layer {rt}){' locally' if i.local else ''}: {i.text}"))
    return out


def import_graph(root=ROOT):
    """{module: {imported gradtape module: first Import}} over top-level and local imports."""
    graph = {m: {} for m in known_modules(root)}
    for i in all_imports(root):
        if i.kind == "gradtape" and i.target in graph and i.target != i.src:
            graph[i.src].setdefault(i.target, i)
    return graph


def strongly_connected(graph):
    """Tarjan's components with more than one module (iterative), each sorted."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def shortest_cycle(graph, comp, s):
    """A shortest cycle through ``s`` inside its strongly connected component ``comp``, as [s, ..., s]."""
    members, prev, frontier, found = set(comp), {s: None}, [s], None
    while frontier and found is None:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == s and found is None:
                    found = v
                elif w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    path = []
    while found is not None:
        path.append(found)
        found = prev[found]
    return [*reversed(path), s]


def distinct_cycles(graph, comp):
    """The shortest cycle through each module of a component, without repeats, shortest first."""
    seen, out = set(), []
    for s in comp:
        cyc = shortest_cycle(graph, comp, s)
        key = frozenset(zip(cyc, cyc[1:]))
        if key not in seen:
            seen.add(key)
            out.append(cyc)
    return sorted(out, key=lambda c: (len(c), c))


def cycles(root=ROOT):
    """One row per strongly connected component of the import graph, listing its distinct short cycles."""
    graph = import_graph(root)
    files = source_files(root)
    out = []
    for comp in strongly_connected(graph):
        text = [f"import cycle among {len(comp)} modules {{{', '.join(comp)}}}"]
        for n, cyc in enumerate(distinct_cycles(graph, comp), 1):
            text.append(f"    cycle {n}: " + " -> ".join(m.removeprefix(f"{PKG}.") for m in cyc))
            text += [f"      {a} -> {b}   ({graph[a][b].where}{', local' if graph[a][b].local else ''}: "
                     f"{graph[a][b].text})" for a, b in zip(cyc, cyc[1:])]
        out.append((_rel(files, comp[0], root), 1, "\n".join(text)))
    return out


def local_gradtape_imports(root=ROOT):
    return [(i.path, i.line, f"local import of {i.target}: {i.text}")
            for i in all_imports(root) if i.local and i.kind == "gradtape"]


def self_imports(root=ROOT):
    return [(i.path, i.line, f"imports the package {PKG} itself: {i.text}")
            for i in all_imports(root) if i.target == PKG and i.src not in SELF_IMPORT_OK | {PKG}]


def array_lib_imports(root=ROOT):
    """gradtape/ (not backends/) importing numpy or cupy, anywhere (top-level, local, dynamic)."""
    return [(i.path, i.line, f"gradtape/ imports {i.target}: {i.text}") for i in all_imports(root)
            if i.path.startswith(f"{PKG}/") and i.target.split(".")[0] in ARRAY_LIBS]


def _tail_name(node):
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _is_namespace_call(node):
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("globals", "vars")


def mutations(root=ROOT):
    """setattr(Tensor, ...), Tensor.x = ... outside its class, globals()[k] = v, globals().update(...),
    vars()[k] = v, in gradtape/."""
    out = []
    for p in source_files(root).values():
        if not p.is_relative_to(root / PKG):
            continue
        rel = str(p.relative_to(root))
        lines = p.read_text().splitlines()
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            what = None
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "setattr" and node.args and _tail_name(node.args[0]) == "Tensor":
                    what = "setattr(Tensor, ...) attaches to the class from outside"
                elif isinstance(f, ast.Attribute) and f.attr in ("update", "setdefault", "__setitem__") \
                        and _is_namespace_call(f.value):
                    what = f"{f.value.func.id}().{f.attr}(...) writes module globals"
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    for t in ast.walk(t):
                        if isinstance(t, ast.Subscript) and _is_namespace_call(t.value):
                            what = f"{t.value.func.id}()[...] = writes module globals"
                        elif isinstance(t, ast.Attribute) and _tail_name(t.value) == "Tensor" \
                                and isinstance(t.ctx, ast.Store):
                            what = f"Tensor.{t.attr} = ... attaches to the class from outside"
            if what:
                out.append((rel, node.lineno, f"{what}: {lines[node.lineno - 1].strip()}"))
    return out


def oversize_modules(root=ROOT, limit=MAX_LINES):
    out = []
    for m, p in source_files(root).items():
        text = p.read_text()
        n = len(text.splitlines())
        if n <= limit:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith("Size:") for line in doc.splitlines()):
            out.append((str(p.relative_to(root)), 1, f"{n} lines (> {limit}) and no 'Size:' line in its docstring"))
    return out


def init_definitions(root=ROOT):
    """gradtape/__init__.py: no def, class, lambda, loop or comprehension anywhere; __all__ assigned."""
    p = root / PKG / "__init__.py"
    rel = str(p.relative_to(root))
    tree = ast.parse(p.read_text())
    bad = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.For, ast.AsyncFor, ast.While,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    out = [(rel, n.lineno, f"{type(n).__name__} in the package __init__ (explicit re-exports only)")
           for n in ast.walk(tree) if isinstance(n, bad)]
    has_all = any(isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and any(
        isinstance(t, ast.Name) and t.id == "__all__"
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])) for n in tree.body)
    if not has_all:
        out.append((rel, 1, "defines no __all__ at its top level"))
    return out


RULES = {
    "unmapped modules (in no layer)": unmapped_modules,
    "unresolved imports (no such module in the tree)": unresolved_imports,
    "upward imports (a lower layer imports a higher one)": upward_imports,
    "import cycles": cycles,
    "function-local imports of gradtape modules": local_gradtape_imports,
    "imports of the package gradtape itself": self_imports,
    "numpy/cupy imported under gradtape/": array_lib_imports,
    "mutation at import (setattr(Tensor, globals()[...] =)": mutations,
    f"modules over {MAX_LINES} lines without a 'Size:' reason": oversize_modules,
    "gradtape/__init__.py definitions / missing __all__": init_definitions,
}


def report(root=ROOT):
    """{rule title: [(file, line, message), ...]} for every rule."""
    return {title: sorted(set(fn(root))) for title, fn in RULES.items()}


def format_report(found, by_file=False):
    lines = []
    total = sum(map(len, found.values()))
    lines.append(f"{total} violation(s): " + ", ".join(f"{len(v)} {t.split(' (')[0]}" for t, v in found.items()))
    if by_file:
        files = {}
        for title, rows in found.items():
            for f, line, msg in rows:
                files.setdefault(f, []).append((line, title.split(" (")[0], msg))
        for f in sorted(files):
            lines.append(f"\n## {f} ({len(files[f])})")
            lines += [f"- {f}:{line} [{rule}] {msg}" for line, rule, msg in sorted(files[f])]
    else:
        for title, rows in found.items():
            lines.append(f"\n## {title}: {len(rows)}")
            lines += [f"- {f}:{line} {msg}" for f, line, msg in rows]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--by-file", action="store_true", help="group the violations by file instead of by rule")
    ap.add_argument("--edges", action="store_true", help="also print the gradtape module import graph")
    ap.add_argument("--root", type=pathlib.Path, default=ROOT, help="repository root (default: this checkout)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    found = report(root)
    print(format_report(found, args.by_file))
    if args.edges:
        print("\n## import graph (src -> targets; * = local)")
        for src, targets in sorted(import_graph(root).items()):
            ts = ", ".join(f"{t}{'*' if i.local else ''}" for t, i in sorted(targets.items()))
            print(f"- {src} [{rank(src)}] -> {ts}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `| head`
        sys.exit(1)
