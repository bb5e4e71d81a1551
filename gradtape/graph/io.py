"""Saving and loading graphs: versioned JSON (no pickle), attribute values and constants encoded exactly.

:meth:`gradtape.graph.Graph.save`/:meth:`~gradtape.graph.Graph.load` (and
``to_json``/``from_json``) go through :func:`_to_dict` and :func:`_from_dict`;
anything malformed on load is a ``ValueError`` saying what. A file is data:
every name in it is checked against the primitive registry and what each
primitive declares (its inputs and parameters, :mod:`gradtape.graph.schema`
for the kinds of parameter values), and nothing read is ever run as code.
"""
from __future__ import annotations

import base64
import json
import math
import re

from .._version import __version__
from ..backends import host as _host   # the host helpers (the core itself never imports NumPy)
from .._api import NONDIFF
from .._core.dtypes import DTYPES
from ..graph.ir import DeviceName, DTypeName, IRNode, Ref, _np_value, _prim_by_name
from ..graph.schema import check_node, check_refs, MAX_DEPTH, MAX_INPUTS, _name_ok

FORMAT = "gradtape.graph"
FORMAT_VERSION = 1

_FNS = frozenset(NONDIFF) | {"astype"}      # the backend functions a loaded graph may call


def _gt_version():
    return __version__


# ---- graphs --------------------------------------------------------------------------------------------------

def _to_dict(graph):
    """``graph`` as a JSON-ready dict; what has no portable form (a local primitive, a callable) is a ValueError."""
    nodes = []
    for i, n in enumerate(graph.nodes):
        if n.kind == "prim":
            reg = _prim_by_name(n.op)
            if reg is not n.prim:
                raise ValueError(f"gradtape.Graph.save: node {i} uses primitive {n.op!r}, which is not in the "
                                 f"registry (a custom_vjp or other locally made primitive), so it cannot be "
                                 f"saved; the graph still replays in this process")
        if n.kind == "fn" and n.op not in _FNS:
            raise ValueError(f"gradtape.Graph.save: node {i} calls {n.op!r}, which a saved graph may not call "
                             f"(allowed: the non-differentiable array API functions)")
        try:                # what load would refuse is refused here, with the same words
            check_node(i, n.kind, n.op, n.prim, n.inputs, n.attrs)
        except ValueError as e:
            raise ValueError(f"gradtape.Graph.save: {e}; the graph still replays in this process") from None
        d = {"kind": n.kind, "op": n.op}
        if n.inputs:
            d["in"] = [_enc(a, f"node {i} ({n.op}) input") for a in n.inputs]
        if n.attrs:
            d["attrs"] = {k: _enc(v, f"node {i} ({n.op}) attribute {k!r}") for k, v in n.attrs.items()}
        if n.result_types is not None:
            d["multi"] = [[list(s), dt] for s, dt in n.result_types]
        else:
            d["shape"] = None if n.shape is None else list(n.shape)
            d["dtype"] = n.dtype
        if n.rev:
            d["rev"] = True
        if n.device is not None:
            d["device"] = n.device
        if n.kind == "const":
            d["value"] = _enc_array(_np_value(n))
        nodes.append(d)
    return {"format": FORMAT, "version": FORMAT_VERSION, "gradtape": _gt_version(), "name": graph.name,
            "home": graph._home, "inputs": list(graph._in),
            "args": [_enc(s, "argument") if type(s) is Ref else {"$": "static", "v": _enc(s[1], "argument")}
                     for s in graph._layout],
            "kwargs": {k: (_enc(s, "argument") if type(s) is Ref else {"$": "static", "v": _enc(s[1], "argument")})
                       for k, s in graph._kw_layout.items()},
            "outputs": _enc(graph._out_tree, "output"), "nodes": nodes}


_TOP_KEYS = frozenset({"format", "version", "gradtape", "name", "home", "inputs", "args", "kwargs", "outputs",
                       "nodes"})
_NODE_KEYS = frozenset({"kind", "op", "in", "attrs", "multi", "shape", "dtype", "rev", "device", "value"})


def parse(text):
    """The JSON value of ``text``; nesting deeper than MAX_DEPTH is a ValueError (checked before parsing,
    as the parser itself recurses)."""
    if '\\"' in text:                # escaped quotes: find the strings with a regex
        outside = _STRING.sub("", text)
    else:                               # (fast path) every quote opens or closes a string
        outside = "".join(text.split('"')[0::2])
    depth = 0
    for c in _NOT_BRACKET.sub("", outside):          # the brackets outside strings, in order
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"gradtape.Graph.load: malformed graph: JSON nested deeper than {MAX_DEPTH} "
                                 f"levels")
        else:
            depth -= 1
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as e:         # JSONDecodeError, too many digits, a special float
        if str(e).startswith("gradtape"):
            raise
        raise ValueError(f"gradtape.Graph.load: not a JSON document ({e})") from None
    except TypeError as e:
        raise ValueError(f"gradtape.Graph.load: not a JSON document ({e})") from None
    except RecursionError:      # (not reached after the depth check; kept so no file can make it escape)
        raise ValueError("gradtape.Graph.load: malformed graph: JSON nested too deeply") from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _no_constant(name):
    raise ValueError(f"gradtape.Graph.load: malformed graph: {name} is not JSON (special floats are written "
                     f"as {{\"$\": \"float\", \"v\": ...}})")


def _from_dict(cls, d):
    """A ``cls`` (:class:`gradtape.graph.Graph`) from :func:`_to_dict`'s form."""
    where = "gradtape.Graph.load"
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"{where}: not a gradtape graph (expected a JSON object with \"format\": \"{FORMAT}\")")
    ver = d.get("version")
    if type(ver) is not int or ver < 1:
        raise ValueError(f"{where}: malformed graph: \"version\" must be a positive integer, got {ver!r:.40}")
    if ver > FORMAT_VERSION:
        raise ValueError(f"{where}: the graph has format version {ver} (written by gradtape "
                         f"{str(d.get('gradtape', '?'))!r:.40}), newer than this gradtape reads ({FORMAT_VERSION}); "
                         f"upgrade gradtape")
    try:
        extra = sorted(set(d) - _TOP_KEYS)
        if extra:
            raise ValueError(f"unknown field {extra[0]!r:.60} (a graph has {', '.join(sorted(_TOP_KEYS))})")
        if "gradtape" in d and type(d["gradtape"]) is not str:
            raise ValueError("\"gradtape\" (the version that wrote it) must be a string")
        raw_nodes = d["nodes"]
        if not isinstance(raw_nodes, list):
            raise ValueError("\"nodes\" must be a list")
        nodes = []
        for i, nd in enumerate(raw_nodes):
            nodes.append(_dec_node(nd, i))
        inputs = d["inputs"]
        if not isinstance(inputs, list) or not all(type(i) is int for i in inputs):
            raise ValueError("\"inputs\" must be a list of node indices")
        for i in inputs:
            if not 0 <= i < len(nodes):
                raise ValueError(f"input reference {i} is out of range")
        names = [nodes[i].op for i in inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"\"inputs\": two inputs have the same name ({names})")
        layout = None if "args" not in d else [_dec_slot(s, f"argument {k}") for k, s in enumerate(_list(d["args"]))]
        kw = d.get("kwargs", {})
        if not isinstance(kw, dict):
            raise ValueError("\"kwargs\" must be an object")
        for k in kw:
            if not _name_ok(k):
                raise ValueError(f"\"kwargs\": bad argument name {k!r:.60} (a Python identifier)")
        kw_layout = {k: _dec_slot(s, f"argument {k!r}") for k, s in kw.items()}
        tree = _dec_outputs(d["outputs"])
        name = d.get("name", "graph")
        if type(name) is not str:
            raise ValueError(f"\"name\" must be a string, got {name!r:.60}")
        home = d.get("home")
        if home is not None:
            home = _device(home, "\"home\"")
        for s in (layout or []) + list(kw_layout.values()):
            if type(s) is Ref and s.i not in inputs:
                raise ValueError(f"argument reference {s.i} is not an input")
        check_refs(nodes, tree)
    except ValueError as e:
        raise ValueError(f"{where}: malformed graph: {e}") from None
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"{where}: malformed graph: missing or ill-typed field ({type(e).__name__}: {e})") \
            from None
    try:
        return cls(nodes, inputs, tree, name=name, layout=layout, kw_layout=kw_layout, home=home)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _dec_slot(s, what):
    """An argument slot: a reference to an input, or {"$": "static", "v": value} fixed at trace time."""
    if isinstance(s, dict) and s.get("$") == "static":
        if set(s) != {"$", "v"}:
            raise ValueError(f"{what}: a static argument is {{\"$\": \"static\", \"v\": value}}")
        return ("static", _dec(s["v"]))
    v = _dec(s)
    if type(v) is not Ref:
        raise ValueError(f"{what} must be an input reference or a static value, got {v!r:.60}")
    return v


def _dec_outputs(v):
    """The output structure: references, tuples, lists and dicts of them, and plain scalars."""
    v = _dec(v)

    def ok(e):
        t = type(e)
        if t is Ref or e is None or t in (bool, int, float, complex, str):
            return True
        if t is tuple or t is list:
            return all(ok(x) for x in e)
        if t is dict:
            return all(ok(x) for x in e.values())
        return False
    if not ok(v):
        raise ValueError(f"\"outputs\" must be node references (in tuples, lists, objects), got {v!r:.60}")
    return v


def _device(v, what):
    """A device name exactly as gradtape writes it ('cpu', 'strict', 'cuda:N')."""
    if type(v) is not str or not _DEVICE.match(v):
        raise ValueError(f"{what}: unknown device {v!r:.60} (expected 'cpu', 'strict' or 'cuda:N')")
    return v


_DEVICE = re.compile(r"(cpu|strict|cuda:(0|[1-9][0-9]{0,3}))\Z")



# ---- JSON encoding of values -------------------------------------------------------------------------------

def _enc(v, what):
    t = type(v)
    if t is Ref:
        return {"$": "ref", "i": v.i}
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$": "float", "v": repr(v)}
    if t is complex:
        return {"$": "complex", "re": _enc(v.real, what), "im": _enc(v.imag, what)}
    if v is Ellipsis:
        return {"$": "ellipsis"}
    if t is tuple:
        return {"$": "tuple", "v": [_enc(e, what) for e in v]}
    if t is list:
        return [_enc(e, what) for e in v]
    if t is dict:
        if not all(isinstance(k, str) for k in v):
            raise ValueError(f"gradtape.Graph.save: {what}: dict keys must be strings")
        return {"$": "dict", "v": {k: _enc(e, what) for k, e in v.items()}}
    if t is slice:
        return {"$": "slice", "v": [_enc(v.start, what), _enc(v.stop, what), _enc(v.step, what)]}
    if t is DTypeName:
        return {"$": "dtype", "v": v.name}
    if t is DeviceName:
        return {"$": "device", "v": v.name}
    if _host.is_scalar(v):
        return {"$": "npscalar", "v": _enc_array(v)}
    raise ValueError(f"gradtape.Graph.save: {what} holds a {type(v).__name__} ({v!r:.60}), which has no JSON form; "
                     f"the graph still replays in this process")


def _enc_array(a):
    try:
        dtype, shape, raw = _host.encode(a)
    except TypeError as e:
        raise ValueError(f"gradtape.Graph.save: cannot store a constant ({e})") from None
    return {"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode("ascii")}


def _dec_array(d):
    if not isinstance(d, dict) or set(d) != {"dtype", "shape", "data"}:
        raise ValueError("a constant must be an object with \"dtype\", \"shape\" and \"data\" (only)")
    dt = d["dtype"]
    if type(dt) is not str or dt not in DTYPES:
        raise ValueError(f"unknown dtype {dt!r:.60}")
    shape = d["shape"]
    if not isinstance(shape, list) or len(shape) > 64 or not all(type(s) is int and s >= 0 for s in shape):
        raise ValueError(f"bad shape {shape!r:.60}")
    if type(d["data"]) is not str:
        raise ValueError("constant data must be a base64 string")
    try:
        buf = base64.b64decode(d["data"], validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"constant data is not valid base64 ({e})") from None
    size = _host.itemsize(dt)
    n = math.prod(shape)
    if len(buf) != n * size:
        raise ValueError(f"constant data has {len(buf)} bytes, but shape {tuple(shape)} of {dt} needs "
                         f"{n * size}")
    return _host.decode(buf, dt, shape)


_TAGS = {"ref": {"i"}, "float": {"v"}, "complex": {"re", "im"}, "ellipsis": set(), "tuple": {"v"}, "dict": {"v"},
         "slice": {"v"}, "dtype": {"v"}, "device": {"v"}, "npscalar": {"v"}}


def _dec(v):
    """A value from its JSON form: plain JSON, or an object tagged with "$" (and only its own fields)."""
    t = type(v)
    if v is None or t in (bool, int, float, str):
        return v
    if t is list:
        return [_dec(e) for e in v]
    if t is not dict:
        raise ValueError(f"unexpected value {v!r:.60}")
    tag = v.get("$")
    if type(tag) is not str or tag not in _TAGS:
        raise ValueError(f"unknown value tag {tag!r:.60}")
    if set(v) != _TAGS[tag] | {"$"}:
        raise ValueError(f"a {tag!r} value has the fields {', '.join(sorted(_TAGS[tag] | {'$'}))}, got {v!r:.60}")
    if tag == "ref":
        if type(v["i"]) is not int:
            raise ValueError(f"bad reference {v!r:.60}")
        return Ref(v["i"])
    if tag == "float":
        if v["v"] not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad special float {v!r:.60}")
        return float(v["v"])
    if tag == "complex":
        re_, im = _dec(v["re"]), _dec(v["im"])
        if type(re_) not in (int, float) or type(im) not in (int, float):
            raise ValueError(f"bad complex number {v!r:.60}")
        return complex(re_, im)
    if tag == "ellipsis":
        return Ellipsis
    if tag == "tuple":
        return tuple(_dec(e) for e in _list(v["v"]))
    if tag == "dict":
        if not isinstance(v["v"], dict):
            raise ValueError(f"bad dict {v!r:.60}")
        return {k: _dec(e) for k, e in v["v"].items()}
    if tag == "slice":
        parts = _list(v["v"])
        if len(parts) != 3:
            raise ValueError(f"bad slice {v!r:.60}")
        return slice(*(_dec(e) for e in parts))
    if tag == "dtype":
        if type(v["v"]) is not str or v["v"] not in DTYPES:
            raise ValueError(f"unknown dtype {v['v']!r:.60}")
        return DTypeName(v["v"])
    if tag == "device":
        return DeviceName(_device(v["v"], "a device value"))
    if v["v"] is None or not isinstance(v["v"], dict) or v["v"].get("shape") != []:
        raise ValueError(f"a NumPy scalar is a constant of shape [], got {v!r:.60}")
    return _dec_array(v["v"])[()]


def _list(v):
    if type(v) is not list:
        raise ValueError(f"expected a list, got {v!r:.60}")
    return v


_KINDS = ("input", "const", "prim", "fn", "item")


def _dec_node(d, i):
    if not isinstance(d, dict):
        raise ValueError(f"node {i} is not an object")
    extra = sorted(set(d) - _NODE_KEYS)
    if extra:
        raise ValueError(f"node {i}: unknown field {extra[0]!r:.60} (a node has {', '.join(sorted(_NODE_KEYS))})")
    kind, op = d.get("kind"), d.get("op")
    if kind not in _KINDS:
        raise ValueError(f"node {i} has unknown kind {kind!r:.60} (expected one of {', '.join(_KINDS)})")
    if not isinstance(op, str):
        raise ValueError(f"node {i} has no operation name")
    prim = None
    ins = tuple(_dec(a) for a in _list(d.get("in", [])))
    if kind == "prim":
        m = _CONCAT.match(op)
        if m and (len(ins) != int(m.group(1)) or len(ins) > MAX_INPUTS):
            raise ValueError(f"node {i} ({op}) has {len(ins)} inputs")
        prim = _prim_by_name(op) if m or not op.startswith("concat") else None
        if prim is None:
            raise ValueError(f"node {i} uses the unknown primitive {op!r:.60}: not in this gradtape's registry "
                             f"(written by a newer or extended gradtape?)")
    elif kind == "fn" and op not in _FNS:
        raise ValueError(f"node {i} calls the unknown function {op!r:.60}")
    elif kind == "input" and not _name_ok(op):
        raise ValueError(f"input node {i}: bad input name {op!r:.60} (a Python identifier)")
    elif kind in ("const", "item") and op != kind:
        raise ValueError(f"node {i}: a {kind} node has op {kind!r}, not {op!r:.60}")
    attrs = d.get("attrs", {})
    if not isinstance(attrs, dict):
        raise ValueError(f"node {i}: \"attrs\" must be an object")
    attrs = {k: _dec(v) for k, v in attrs.items()}
    check_node(i, kind, op, prim, ins, attrs)
    result_types = None
    shape = dtype = None
    if "multi" in d:
        if "shape" in d or "dtype" in d:
            raise ValueError(f"node {i}: a node has either \"multi\" or \"shape\" and \"dtype\"")
        result_types = []
        for e in _list(d["multi"]):
            if type(e) is not list or len(e) != 2 or not (e[1] in DTYPES or e[1] == "?"):
                raise ValueError(f"node {i}: \"multi\" holds [shape, dtype] pairs, got {e!r:.60}")
            result_types.append((tuple(_shape(e[0], i)), e[1]))
        if not result_types:
            raise ValueError(f"node {i}: \"multi\" is empty")
    else:
        shape = None if d.get("shape") is None else tuple(_shape(d["shape"], i))
        dtype = d.get("dtype")
        if dtype is not None and (type(dtype) is not str or dtype not in DTYPES):
            raise ValueError(f"node {i}: unknown dtype {dtype!r:.60}")
    if kind == "input":
        if shape is None or dtype is None:
            raise ValueError(f"input node {i} ({op!r}) needs a shape and a known dtype")
    value = None
    if kind == "const":
        value = _dec_array(d.get("value"))
        if shape is not None and tuple(value.shape) != shape:
            raise ValueError(f"node {i}: constant of shape {value.shape} but the node says {shape}")
    elif "value" in d:
        raise ValueError(f"node {i}: only a const node has a \"value\"")
    rev = d.get("rev", False)
    if type(rev) is not bool:
        raise ValueError(f"node {i}: \"rev\" must be true or false")
    device = d.get("device")
    if device is not None:
        device = _device(device, f"node {i}")
    return IRNode(kind, op, ins, attrs, shape=shape, dtype=dtype, result_types=result_types, rev=rev, prim=prim,
                  value=value, device=device)


_CONCAT = re.compile(r"concat([1-9][0-9]*)\Z")


def _shape(s, i):
    if not isinstance(s, list) or len(s) > 64 or not all(type(e) is int and e >= 0 for e in s):
        raise ValueError(f"node {i}: bad shape {s!r:.60}")
    return s
