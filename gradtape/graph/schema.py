"""What a loaded graph may contain: every node checked against the primitive registry and what each declares.

A primitive declares its inputs (one VJP rule each) and its parameters (the
keyword parameters of its forward, required unless they have a default);
:data:`PARAM_KINDS` says what kind of value each parameter name takes. The
backend functions a graph may call (``kind: "fn"``) are listed in
:data:`FN_SIGS` with their arity and keywords. :func:`check_node` and
:func:`check_refs` raise ``ValueError`` naming the node and the field; they
run on every :meth:`gradtape.graph.Graph.load` (through :mod:`gradtape.graph.io`).
"""
from __future__ import annotations

import inspect
import re

from ..backends import host as _host
from ..graph.ir import DeviceName, DTypeName, Ref

MAX_DEPTH = 64           # nesting of JSON arrays/objects in a graph file (real graphs need about 10)
MAX_INPUTS = 4096        # inputs of one node (concatN)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")


def _name_ok(s):
    """A plain identifier of at most 100 ASCII characters (input, argument and output names)."""
    return type(s) is str and _NAME.match(s) is not None


# ---- kinds of values --------------------------------------------------------------------------------------

def _np_scalar(v, kinds):
    """A NumPy scalar (np.float64(2.0)...) of one of the dtype kinds, as a saved "npscalar" loads."""
    return _host.is_scalar(v) and v.dtype.kind in kinds


def _int(v):
    return type(v) is int or _np_scalar(v, "iu")


def _num(v):
    return type(v) in (int, float) or _np_scalar(v, "iuf")


def _ints(v):
    return type(v) is tuple and all(_int(e) for e in v)


def _key_part(v, top=True):
    t = type(v)
    if v is None or v is Ellipsis or t is int or t is bool or t is Ref:
        return True
    if t is slice:
        return all(e is None or type(e) in (int, Ref) for e in (v.start, v.stop, v.step))
    if t is list:
        return all(type(e) in (int, bool) or (type(e) is list and _key_part(e, False)) for e in v)
    if t is tuple and top:
        return all(_key_part(e, False) for e in v)
    return False


# parameter name -> (test, what it must be)
PARAM_KINDS = {
    "axis": (lambda v: v is None or _int(v) or _ints(v), "None, an int or a tuple of ints"),
    "axes": (_ints, "a tuple of ints"),
    "shape": (_ints, "a tuple of ints"),
    "xshape": (_ints, "a tuple of ints"),
    "sizes": (_ints, "a tuple of ints"),
    "nd": (_ints, "a tuple of ints"),
    "shift": (lambda v: _int(v) or _ints(v), "an int or a tuple of ints"),
    "k": (_int, "an int"),
    "n": (_int, "an int"),
    "offset": (_int, "an int"),
    "keepdims": (lambda v: type(v) is bool, "a bool"),
    "basic": (lambda v: type(v) is bool, "a bool"),
    "upper": (lambda v: type(v) is bool, "a bool"),
    "full_matrices": (lambda v: type(v) is bool, "a bool"),
    "include_initial": (lambda v: type(v) is bool, "a bool"),
    "dtype": (lambda v: v is None or type(v) is DTypeName, "None or a dtype"),
    "src": (lambda v: type(v) is DeviceName, "a device"),
    "dst": (lambda v: type(v) is DeviceName, "a device"),
    "correction": (_num, "a number"),
    "a": (_num, "a number"),
    "p": (_num, "a number"),
    # (a NumPy scalar given where a number goes is traced as a constant array: a reference)
    "lo": (lambda v: v is None or _num(v) or type(v) is Ref, "None, a number or an array"),
    "hi": (lambda v: v is None or _num(v) or type(v) is Ref, "None, a number or an array"),
    "rtol": (lambda v: v is None or _num(v) or type(v) is Ref, "None, a number or an array"),
    "ord": (lambda v: v is None or _num(v) or v in ("fro", "nuc"), "None, a number, 'fro' or 'nuc'"),
    "mode": (lambda v: v in ("reduced", "complete"), "'reduced' or 'complete'"),
    "key": (_key_part, "an index (ints, slices, None, ..., index arrays, or a tuple of them)"),
}
_ANY = (lambda v: True, "")     # a parameter name without a declared kind: any (decoded, inert) value

_BINARY = ("equal not_equal less less_equal greater greater_equal logical_and logical_or logical_xor bitwise_and "
           "bitwise_or bitwise_xor bitwise_left_shift bitwise_right_shift floor_divide nextafter").split()
_AXIS_KW = {"axis": PARAM_KINDS["axis"], "keepdims": PARAM_KINDS["keepdims"]}
_BOOL = (lambda v: type(v) is bool, "a bool")
# backend function -> (number of positional inputs, {keyword: kind})
FN_SIGS = {n: (2, {}) for n in _BINARY}
FN_SIGS.update({n: (1, {}) for n in ("logical_not bitwise_invert isnan isinf isfinite signbit sign floor ceil "
                                     "round trunc nonzero unique_all unique_counts unique_inverse "
                                     "unique_values").split()})
FN_SIGS.update({
    "argmax": (1, {"axis": (lambda v: v is None or _int(v), "None or an int"), "keepdims": _BOOL}),
    "argmin": (1, {"axis": (lambda v: v is None or _int(v), "None or an int"), "keepdims": _BOOL}),
    "argsort": (1, {"axis": (_int, "an int"), "descending": _BOOL, "stable": _BOOL}),
    "count_nonzero": (1, _AXIS_KW), "all": (1, _AXIS_KW), "any": (1, _AXIS_KW),
    "searchsorted": (2, {"side": (lambda v: v in ("left", "right"), "'left' or 'right'"),
                         "sorter": (lambda v: v is None or type(v) is Ref, "None or an array")}),
    "isin": (2, {"invert": _BOOL}),
    "astype": (2, {"copy": _BOOL, "device": (lambda v: v is None or type(v) is DeviceName, "None or a device")}),
})

_SIGS = {}


def prim_params(prim):
    """(number of inputs, required parameter names, all parameter names) a primitive declares."""
    got = _SIGS.get(prim)
    if got is None:
        n = len(prim.vjp)
        ps = list(inspect.signature(prim.fwd).parameters.values())[1:]      # after xp
        names, req, taken = [], set(), 0
        for p in ps:
            if p.kind == p.VAR_POSITIONAL:
                taken = n
            elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and taken < n:
                taken += 1
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.append(p.name)
                if p.default is p.empty:
                    req.add(p.name)
        got = _SIGS[prim] = (n, frozenset(req), frozenset(names))
    return got


def _scalar_input(v):
    return type(v) is Ref or type(v) in (bool, int, float, complex) or _np_scalar(v, "biufc")


def check_node(i, kind, op, prim, ins, attrs):
    """Check node i's inputs and attributes against what its primitive (or function) declares."""
    where = f"node {i} ({op})"
    if kind in ("input", "const"):
        if ins or attrs:
            raise ValueError(f"{where}: an {kind} node takes no \"in\" or \"attrs\"")
        return
    if kind == "item":
        if len(ins) != 1 or type(ins[0]) is not Ref:
            raise ValueError(f"{where}: an item node reads exactly one node")
        if set(attrs) != {"k"} or type(attrs["k"]) is not int:
            raise ValueError(f"{where}: an item node needs an integer \"k\" and no other attribute")
        return
    if kind == "fn":
        arity, kws = FN_SIGS[op]
        ok_in = lambda v: _scalar_input(v) or (op == "astype" and type(v) is DTypeName)  # noqa: E731
    else:
        arity, req, names = prim_params(prim)
        kws = {k: PARAM_KINDS.get(k, _ANY) for k in names}
        missing = sorted(req - set(attrs))
        if missing and not set(attrs) - names:
            raise ValueError(f"{where}: missing attribute(s) {', '.join(map(repr, missing))} (the primitive "
                             f"declares {', '.join(sorted(names)) or 'none'})")
        ok_in = _scalar_input
    if len(ins) != arity:
        raise ValueError(f"{where}: takes {arity} input(s), the node has {len(ins)}")
    for k, v in enumerate(ins):
        if not ok_in(v):
            raise ValueError(f"{where}: input {k} must be a node reference or a number, got {v!r:.60}")
    for name, v in attrs.items():
        if name not in kws:
            raise ValueError(f"{where}: unknown attribute {name!r:.60} (it declares "
                             f"{', '.join(sorted(kws)) or 'none'})")
        test, what = kws[name]
        if not test(v):
            raise ValueError(f"{where}: attribute {name!r} must be {what}, got {v!r:.60}")


def check_refs(nodes, tree):
    """References read earlier nodes; a tuple-valued node is read only by its item nodes (or by ``select``,
    which picks one result of a primitive with several), each in range."""
    def walk(v, i, picks):
        t = type(v)
        if t is Ref:
            j = v.i
            end = i if i is not None else len(nodes)
            what = f"node {i} ({nodes[i].op})" if i is not None else "an output"
            if not 0 <= j < end:
                raise ValueError(f"{what} reads node {j}, which is not an earlier node of the graph (0..{end - 1})")
            several = nodes[j].result_types is not None
            if several != picks:
                raise ValueError(f"{what} reads node {j}, which " + (
                    "holds several results: read them through item nodes" if several else
                    "is not a node with several results (as an item or select node must read)"))
        elif t is tuple or t is list:
            for e in v:
                walk(e, i, picks)
        elif t is dict:
            for e in v.values():
                walk(e, i, picks)
        elif t is slice:
            walk(v.start, i, picks)
            walk(v.stop, i, picks)
            walk(v.step, i, picks)
    for i, n in enumerate(nodes):
        picks = n.kind == "item" or (n.kind == "prim" and n.op == "select")
        walk(n.inputs, i, picks)
        walk(n.attrs, i, False)
        if picks:
            k, m = n.attrs["k"], len(nodes[n.inputs[0].i].result_types)
            if not 0 <= k < m or (n.kind == "prim" and n.attrs["n"] != m):
                raise ValueError(f"node {i} ({n.op}): \"k\" = {k} (\"n\" = {n.attrs.get('n', m)}) does not "
                                 f"pick one of the {m} results of node {n.inputs[0].i}")
    walk(tree, None, False)
