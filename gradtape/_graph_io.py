"""Saving and loading graphs: versioned JSON (no pickle), attribute values and constants encoded exactly.

:meth:`gradtape.graph.Graph.save`/:meth:`~gradtape.graph.Graph.load` (and
``to_json``/``from_json``) go through :func:`_to_dict` and :func:`_from_dict`;
anything malformed on load is a ``ValueError`` saying what.
"""
from __future__ import annotations

import base64
import math


from . import backends as _backends
from ._graph_ir import DeviceName, DTypeName, Node, Ref, _np_value, _prim_by_name
from ._namespace import DTYPES, NONDIFF

FORMAT = "gradtape.graph"
FORMAT_VERSION = 1

_FNS = frozenset(NONDIFF) | {"astype"}      # the backend functions a loaded graph may call


def _gt_version():
    from . import __version__
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
        d = {"kind": n.kind, "op": n.op}
        if n.inputs:
            d["in"] = [_enc(a, f"node {i} ({n.op}) input") for a in n.inputs]
        if n.attrs:
            d["attrs"] = {k: _enc(v, f"node {i} ({n.op}) attribute {k!r}") for k, v in n.attrs.items()}
        if n.multi is not None:
            d["multi"] = [[list(s), dt] for s, dt in n.multi]
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
            "outputs": _enc(graph._tree, "output"), "nodes": nodes}


def _from_dict(cls, d):
    """A ``cls`` (:class:`gradtape.graph.Graph`) from :func:`_to_dict`'s form."""
    where = "gradtape.Graph.load"
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"{where}: not a gradtape graph (expected a JSON object with \"format\": \"{FORMAT}\")")
    ver = d.get("version")
    if type(ver) is not int or ver < 1:
        raise ValueError(f"{where}: malformed graph: \"version\" must be a positive integer, got {ver!r}")
    if ver > FORMAT_VERSION:
        raise ValueError(f"{where}: the graph has format version {ver} (written by gradtape "
                         f"{d.get('gradtape', '?')}), newer than this gradtape reads ({FORMAT_VERSION}); "
                         f"upgrade gradtape")
    try:
        raw_nodes = d["nodes"]
        if not isinstance(raw_nodes, list):
            raise ValueError("\"nodes\" must be a list")
        nodes = []
        for i, nd in enumerate(raw_nodes):
            nodes.append(_dec_node(nd, i))
        inputs = d["inputs"]
        if not isinstance(inputs, list) or not all(type(i) is int for i in inputs):
            raise ValueError("\"inputs\" must be a list of node indices")
        layout = None if "args" not in d else \
            [_dec(s) if not (isinstance(s, dict) and s.get("$") == "static") else ("static", _dec(s["v"]))
             for s in _list(d["args"])]
        kw = d.get("kwargs", {})
        if not isinstance(kw, dict):
            raise ValueError("\"kwargs\" must be an object")
        kw_layout = {k: (_dec(s) if not (isinstance(s, dict) and s.get("$") == "static")
                         else ("static", _dec(s["v"]))) for k, s in kw.items()}
        tree = _dec(d["outputs"])
        name = d.get("name", "graph")
        home = d.get("home")
        for i in inputs:
            if not 0 <= i < len(nodes):
                raise ValueError(f"input reference {i} is out of range")
        if home is not None and not isinstance(home, str):
            raise ValueError(f"\"home\" must be a device name, got {home!r}")
        for s in (layout or []) + list(kw_layout.values()):
            if type(s) is Ref and s.i not in inputs:
                raise ValueError(f"argument reference {s.i} is not an input")
    except ValueError as e:
        raise ValueError(f"{where}: malformed graph: {e}") from None
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"{where}: malformed graph: missing or ill-typed field ({type(e).__name__}: {e})") \
            from None
    try:
        return cls(nodes, inputs, tree, name=name, layout=layout, kw_layout=kw_layout, home=home)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None



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
    if host().is_scalar(v):
        return {"$": "npscalar", "v": _enc_array(v)}
    raise ValueError(f"gradtape.Graph.save: {what} holds a {type(v).__name__} ({v!r:.60}), which has no JSON form; "
                     f"the graph still replays in this process")


def host():
    """The NumPy backend's host helpers (the core itself never imports NumPy)."""
    from .backends import numpy_backend
    return numpy_backend


def _enc_array(a):
    try:
        dtype, shape, raw = host().encode(a)
    except TypeError as e:
        raise ValueError(f"gradtape.Graph.save: cannot store a constant ({e})") from None
    return {"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode("ascii")}


def _dec_array(d):
    if not isinstance(d, dict) or not {"dtype", "shape", "data"} <= set(d):
        raise ValueError("a constant must be an object with \"dtype\", \"shape\" and \"data\"")
    if d["dtype"] not in DTYPES:
        raise ValueError(f"unknown dtype {d['dtype']!r}")
    shape = d["shape"]
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise ValueError(f"bad shape {shape!r}")
    try:
        buf = base64.b64decode(d["data"], validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"constant data is not valid base64 ({e})") from None
    size = host().itemsize(d["dtype"])
    n = math.prod(shape)
    if len(buf) != n * size:
        raise ValueError(f"constant data has {len(buf)} bytes, but shape {tuple(shape)} of {d['dtype']} needs "
                         f"{n * size}")
    return host().decode(buf, d["dtype"], shape)


def _dec(v):
    if v is None or type(v) in (bool, int, float, str):
        return v
    if type(v) is list:
        return [_dec(e) for e in v]
    if type(v) is not dict:
        raise ValueError(f"unexpected value {v!r}")
    tag = v.get("$")
    if tag == "ref":
        if type(v.get("i")) is not int:
            raise ValueError(f"bad reference {v!r}")
        return Ref(v["i"])
    if tag == "float":
        if v.get("v") not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad special float {v!r}")
        return float(v["v"])
    if tag == "complex":
        return complex(_dec(v["re"]), _dec(v["im"]))
    if tag == "ellipsis":
        return Ellipsis
    if tag == "tuple":
        return tuple(_dec(e) for e in _list(v["v"]))
    if tag == "dict":
        if not isinstance(v["v"], dict):
            raise ValueError(f"bad dict {v!r}")
        return {k: _dec(e) for k, e in v["v"].items()}
    if tag == "slice":
        parts = _list(v["v"])
        if len(parts) != 3:
            raise ValueError(f"bad slice {v!r}")
        return slice(*(_dec(e) for e in parts))
    if tag == "dtype":
        if v.get("v") not in DTYPES:
            raise ValueError(f"unknown dtype {v.get('v')!r}")
        return DTypeName(v["v"])
    if tag == "device":
        try:
            return DeviceName(_backends.canonical_device(v["v"]))
        except ValueError as e:
            raise ValueError(str(e)) from None
    if tag == "npscalar":
        return _dec_array(v["v"])[()]
    raise ValueError(f"unknown value tag {tag!r}")


def _list(v):
    if type(v) is not list:
        raise ValueError(f"expected a list, got {v!r}")
    return v


_KINDS = ("input", "const", "prim", "fn", "item")


def _dec_node(d, i):
    if not isinstance(d, dict):
        raise ValueError(f"node {i} is not an object")
    kind, op = d.get("kind"), d.get("op")
    if kind not in _KINDS:
        raise ValueError(f"node {i} has unknown kind {kind!r} (expected one of {', '.join(_KINDS)})")
    if not isinstance(op, str):
        raise ValueError(f"node {i} has no operation name")
    prim = None
    if kind == "prim":
        prim = _prim_by_name(op)
        if prim is None:
            raise ValueError(f"node {i} uses the unknown primitive {op!r}: not in this gradtape's registry "
                             f"(written by a newer or extended gradtape?)")
    elif kind == "fn" and op not in _FNS:
        raise ValueError(f"node {i} calls the unknown function {op!r}")
    ins = tuple(_dec(a) for a in _list(d.get("in", [])))
    attrs = d.get("attrs", {})
    if not isinstance(attrs, dict):
        raise ValueError(f"node {i}: \"attrs\" must be an object")
    attrs = {k: _dec(v) for k, v in attrs.items()}
    if kind == "item" and type(attrs.get("k")) is not int:
        raise ValueError(f"node {i}: an item node needs an integer \"k\"")
    multi = None
    shape = dtype = None
    if "multi" in d:
        multi = [(tuple(_shape(s, i)), str(dt)) for s, dt in _list(d["multi"])]
    else:
        shape = None if d.get("shape") is None else tuple(_shape(d["shape"], i))
        dtype = d.get("dtype")
        if dtype is not None and not isinstance(dtype, str):
            raise ValueError(f"node {i}: bad dtype {dtype!r}")
    if kind == "input":
        if shape is None or dtype not in DTYPES:
            raise ValueError(f"input node {i} ({op!r}) needs a shape and a known dtype")
    value = None
    if kind == "const":
        value = _dec_array(d.get("value"))
        if shape is not None and tuple(value.shape) != shape:
            raise ValueError(f"node {i}: constant of shape {value.shape} but the node says {shape}")
    device = d.get("device")
    if device is not None:
        try:
            device = _backends.canonical_device(device)
        except ValueError as e:
            raise ValueError(f"node {i}: {e}") from None
    return Node(kind, op, ins, attrs, shape=shape, dtype=dtype, multi=multi, rev=bool(d.get("rev", False)),
                prim=prim, value=value, device=device)


def _shape(s, i):
    if not isinstance(s, list) or not all(type(e) is int and e >= 0 for e in s):
        raise ValueError(f"node {i}: bad shape {s!r}")
    return s
