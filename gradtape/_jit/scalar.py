"""Scalar forms of the elementwise primitives, DERIVED from their rules (no second copy of any formula).

A primitive's forward ``lambda xp, x: xp.sin(x)`` and its rules (``ct * xp.cos(x)``) are called with a
symbolic scalar namespace :class:`ScalarNS` in place of ``xp`` and :class:`Sym` symbols in place of arrays:
every ``xp.NAME(...)`` call and every Python operator on a symbol appends one statement (``t3 = math.sin(t1)``
or ``const double t3 = sin(t1);``) to the namespace's list and returns the symbol of its result. So the
scalar form of each primitive *is* its forward/VJP/JVP as written in its block; a kernel generator
(:mod:`~gradtape._jit.numba_lower`, :mod:`~gradtape._jit.cuda_lower`) strings the statements of a fused
region together. Two languages: ``"py"`` (Python for numba's ``@njit``) and ``"c"`` (CUDA C for CuPy).

Data is never code: the statements are made from this module's templates only. A primitive's name or a
function name only selects a template (unknown names raise :class:`NotScalar`); numbers (constants in
rules, attribute values, Python scalars of a graph) enter through :func:`literal`, which accepts exact
``bool``/``int``/``float`` values and writes them with ``repr`` of a Python float.

What cannot be derived raises :class:`NotScalar` (the node then stays a backend call): a Python decision on
a symbol's value (``bool(sym)``), indexing (``select``), functions without a scalar template (``linalg``,
``xp.cross``, device moves), complex dtypes. Nothing needs an explicit table today: attribute-dependent
rules (``abs``/``relu``'s subgradient ``a``, ``clip``'s bounds, ``gt.special``'s order ``k``) derive with the
node's attribute values, and dtype-dependent branches (``_c``: conjugate complex values) read
``Sym.dtype.kind`` (always real here). :data:`EXPLICIT` is the (empty) table for primitives that ever need one.

>>> ns = ScalarNS("py", "float64")
>>> from gradtape._core.primitive import PRIMS
>>> out = forward(ns, PRIMS.tanh, [ns.arg("x0")])
>>> ns.lines, out
([('t0', 'f', 'math.tanh(x0)')], t0)
"""
from __future__ import annotations

import math

__all__ = ["NotScalar", "Sym", "ScalarNS", "literal", "forward", "vjp", "jvp", "node_form", "EXPLICIT", "FN_OPS",
           "PY_PRELUDE", "C_PRELUDE"]

# primitives whose scalar form cannot be derived from their rules: {name: fn(ns, *syms, **attrs) -> Sym}
EXPLICIT = {}
# flagged elementwise but not a scalar map (moves data, works along an axis, solves a system, picks an output)
_NEVER = frozenset(("to_device", "cross", "solve", "select"))


class NotScalar(Exception):
    """The operation has no scalar form (it stays a backend call)."""


class _Kind:
    """What ``Sym.dtype`` gives the rules: ``.kind`` "f" (the kernel's float type) or "b" (bool)."""

    __slots__ = ("kind",)

    def __init__(self, kind):
        self.kind = kind

    def __repr__(self):
        return {"f": "float", "b": "bool"}[self.kind]


_F, _B = _Kind("f"), _Kind("b")

# ---- function templates: name -> (python text, C text); {0}, {1}... the arguments ---------------------------------
_MATH1 = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp",
          "expm1", "log", "log1p", "log2", "log10", "sqrt")
_FUNCS = {n: (f"math.{n}({{0}})", f"{n}({{0}})") for n in _MATH1}
# (numba's math.floor returns an int, as Python's: NumPy's keeps the float, nan and inf)
_FUNCS.update({n: (f"np.{n}({{0}})", f"{n}({{0}})") for n in ("floor", "ceil", "trunc")})
_FUNCS.update({
    "atan2": ("math.atan2({0}, {1})", "atan2({0}, {1})"),
    "hypot": ("math.hypot({0}, {1})", "hypot({0}, {1})"),
    "copysign": ("math.copysign({0}, {1})", "copysign({0}, {1})"),
    "pow": ("({0} ** {1})", "pow({0}, {1})"),
    "abs": ("abs({0})", "fabs({0})"),
    "square": ("({0} * {0})", "({0} * {0})"),
    "sign": ("_sign({0})", "gt_sign({0})"),
    "maximum": ("_maximum({0}, {1})", "gt_maximum({0}, {1})"),
    "minimum": ("_minimum({0}, {1})", "gt_minimum({0}, {1})"),
    "logaddexp": ("_logaddexp({0}, {1})", "gt_logaddexp({0}, {1})"),
    "remainder": ("_remainder({0}, {1})", "gt_remainder({0}, {1})"),
})
_BOOL1 = {"isnan": ("math.isnan({0})", "isnan({0})"), "isinf": ("math.isinf({0})", "isinf({0})"),
          "isfinite": ("(not (math.isinf({0}) or math.isnan({0})))", "isfinite({0})")}
_CMP = {"greater": ">", "greater_equal": ">=", "less": "<", "less_equal": "<=", "equal": "==", "not_equal": "!="}
# array API functions (graph nodes of kind "fn") that have a scalar form here
FN_OPS = frozenset(set(_CMP) | set(_BOOL1) | {"astype", "logical_and", "logical_or", "logical_not", "floor", "ceil",
                                              "trunc", "sign", "where", "maximum", "minimum", "abs"})

# helpers the statements call (``F``: the kernel's float type, bound by the kernel file)
PY_PRELUDE = '''
@njit(cache=True, error_model="numpy")
def _sign(x):
    return F(1.0) if x > 0 else (F(-1.0) if x < 0 else x)


@njit(cache=True, error_model="numpy")
def _maximum(x, y):
    return x if (x >= y or x != x) else y


@njit(cache=True, error_model="numpy")
def _minimum(x, y):
    return x if (x <= y or x != x) else y


@njit(cache=True, error_model="numpy")
def _logaddexp(x, y):
    if x == y:
        return x + F(0.6931471805599453)
    d = x - y
    if d > 0:
        return x + math.log1p(math.exp(-d))
    if d <= 0:
        return y + math.log1p(math.exp(d))
    return d


@njit(cache=True, error_model="numpy")
def _remainder(x, y):
    return x % y            # numba: Python's float modulo (the sign of y), as NumPy's remainder
'''
C_PRELUDE = '''
template <typename T> __device__ T gt_sign(T x) { return x > 0 ? (T)1 : (x < 0 ? (T)-1 : x); }
template <typename T> __device__ T gt_maximum(T x, T y) { return (x >= y || x != x) ? x : y; }
template <typename T> __device__ T gt_minimum(T x, T y) { return (x <= y || x != x) ? x : y; }
template <typename T> __device__ T gt_logaddexp(T x, T y) {
    if (x == y) return x + (T)0.6931471805599453;
    T d = x - y;
    if (d > 0) return x + log1p(exp(-d));
    if (d <= 0) return y + log1p(exp(d));
    return d;
}
template <typename T> __device__ T gt_remainder(T x, T y) {
    T m = fmod(x, y);
    if (y == 0 || m != m) return m;
    if (m != 0) { if ((y < 0) != (m < 0)) m += y; } else { m = copysign((T)0, y); }
    return m;
}
'''


def literal(v, lang, ftype):
    """The source text of a number: exact bool/int/float only (``repr`` of a Python float), else NotScalar.

    >>> literal(1.5, "py", "float32"), literal(float("inf"), "c", "float64"), literal(True, "py", "float64")
    ('F(1.5)', '(1.0 / 0.0)', 'True')
    """
    t = type(v)
    if t is bool:
        return ("True" if v else "False") if lang == "py" else ("true" if v else "false")
    if t is not int and t is not float:
        raise NotScalar(f"a {t.__name__} constant has no scalar form")
    f = float(v)
    if math.isnan(f):
        s = "math.nan" if lang == "py" else "(0.0 / 0.0)"
    elif math.isinf(f):
        s = ("math.inf" if lang == "py" else "(1.0 / 0.0)") if f > 0 else ("-math.inf" if lang == "py" else
                                                                           "(-1.0 / 0.0)")
    else:
        s = repr(f)
    if lang == "py":
        return f"F({s})" if ftype == "float32" else s
    return f"((float){s})" if ftype == "float32" and not math.isfinite(f) else (s + "f" if ftype == "float32"
                                                                                   and math.isfinite(f) else s)


class Sym:
    """A scalar value in a kernel being generated: the name of a statement's result (or a literal)."""

    __slots__ = ("ns", "text", "kind", "value")

    def __init__(self, ns, text, kind, value=None):
        self.ns, self.text, self.kind, self.value = ns, text, kind, value    # value: a literal's number

    def __repr__(self):
        return self.text

    @property
    def dtype(self):
        return _F if self.kind == "f" else _B

    @property
    def shape(self):
        return ()

    def __bool__(self):
        raise NotScalar("a Python decision on a symbolic value (the rule branches on data)")

    __hash__ = None

    def _bin(self, other, op, kind="f", swap=False):
        a, b = self, self.ns.sym(other)
        if swap:
            a, b = b, a
        return self.ns.emit(f"({a.text} {op} {b.text})", kind, _OPNAME[op], (a, b))

    # (+ - * / and the comparisons: set from a table below the class)
    def __pow__(self, o):
        return self.ns.pow(self, o)

    def __rpow__(self, o):
        return self.ns.pow(o, self)

    def __neg__(self):
        return self.ns.emit(f"(-{self.text})", "f", "neg", (self,))

    def __pos__(self):
        return self

    def __and__(self, o):
        return self.ns.logical_and(self, o)

    __rand__ = __and__

    def __or__(self, o):
        return self.ns.logical_or(self, o)

    __ror__ = __or__

    def __invert__(self):
        return self.ns.logical_not(self)

    def __getitem__(self, k):
        raise NotScalar("indexing has no scalar form")


def _op(symbol, kind="f", swap=False):
    def f(self, o):
        return self._bin(o, symbol, kind, swap)
    return f


# the structured form's name of each operator symbol (ScalarNS.forms)
_OPNAME = {"+": "add", "-": "sub", "*": "mul", "/": "div", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq",
           "!=": "ne"}
# Sym's operators: each appends one statement "(a <symbol> b)" (a comparison's is bool; __rX__ swaps a and b)
for _name, _symbol in (("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/")):
    setattr(Sym, f"__{_name}__", _op(_symbol))
    setattr(Sym, f"__r{_name}__", _op(_symbol, swap=True))
for _name, _symbol in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!=")):
    setattr(Sym, f"__{_name}__", _op(_symbol, "b"))


class ScalarNS:
    """The symbolic scalar namespace passed as ``xp`` to a primitive's rules; ``lines`` collects
    ``(name, kind, expression)`` statements in order ("f": the kernel's float type ``ftype``, "b": bool), and
    ``forms`` the same statements structured: ``(op, operand symbols)``, ``op`` a template's name ("add", "sin",
    "where", "ne0": a value != 0, "tof": a cast to the float type...) for :mod:`gradtape._jit.strip_vm`."""

    def __init__(self, lang, ftype, prefix="t"):
        if lang not in ("py", "c") or ftype not in ("float32", "float64"):
            raise ValueError(f"gradtape.jit: no scalar language {lang!r} for {ftype!r}")
        self.lang, self.ftype, self.prefix = lang, ftype, prefix
        self.lines, self.forms = [], []

    def __getattr__(self, name):        # anything without a template (linalg, relu_vjp kernels...): none here
        raise AttributeError(f"gradtape.jit: no scalar form of xp.{name}")

    def arg(self, name, kind="f"):
        """A symbol for a kernel variable ``name`` (an identifier the generator made)."""
        return Sym(self, name, kind)

    def sym(self, v):
        if type(v) is Sym:
            return v
        text = literal(v, self.lang, self.ftype)
        return Sym(self, text, "b" if type(v) is bool else "f", float(v))

    def emit(self, text, kind, op=None, args=()):
        name = f"{self.prefix}{len(self.lines)}"
        self.lines.append((name, kind, text))
        self.forms.append((op, tuple(args)))
        return Sym(self, name, kind)

    def _fn(self, table, name, args, kind="f"):
        py, c = table[name]
        syms = [self.sym(a) for a in args]
        return self.emit((py if self.lang == "py" else c).format(*[s.text for s in syms]), kind, name, syms)

    # arithmetic and math functions
    def pow(self, x, y):
        return self._fn(_FUNCS, "pow", (x, y))

    def reciprocal(self, x):
        return self.sym(1.0) / self.sym(x)

    def where(self, c, x, y):
        c, x, y = self.sym(c), self.sym(x), self.sym(y)
        if c.kind != "b":
            c = self.emit(f"({c.text} != 0)", "b", "ne0", (c,))
        kind = "b" if x.kind == y.kind == "b" else "f"
        text = f"({x.text} if {c.text} else {y.text})" if self.lang == "py" else f"({c.text} ? {x.text} : {y.text})"
        return self.emit(text, kind, "where", (c, x, y))

    def clip(self, x, lo=None, hi=None):
        out = self.sym(x)
        if lo is not None:
            out = self.maximum(out, lo)
        if hi is not None:
            out = self.minimum(out, hi)
        return out

    def astype(self, x, dtype, copy=True):
        x = self.sym(x)
        kind = _dtype_kind(dtype)
        if kind == x.kind:
            return x
        if kind == "b":
            return self.emit(f"({x.text} != 0)", "b", "ne0", (x,))
        t = "F" if self.lang == "py" else ("float" if self.ftype == "float32" else "double")
        return self.emit(f"{t}({x.text})" if self.lang == "py" else f"(({t}){x.text})", "f", "tof", (x,))

    def zeros_like(self, x, **kw):
        return self.sym(0.0)

    def ones_like(self, x, **kw):
        return self.sym(1.0)

    def full_like(self, x, v, **kw):
        return self.sym(float(v) if type(v) is int else v)

    def conj(self, x):
        return x            # real values only

    def real(self, x):
        return x

    def logical_and(self, x, y):
        x, y = self.sym(x), self.sym(y)
        return self.emit(f"({x.text} and {y.text})" if self.lang == "py" else f"({x.text} && {y.text})", "b", "and",
                         (x, y))

    def logical_or(self, x, y):
        x, y = self.sym(x), self.sym(y)
        return self.emit(f"({x.text} or {y.text})" if self.lang == "py" else f"({x.text} || {y.text})", "b", "or",
                         (x, y))

    def logical_not(self, x):
        x = self.sym(x)
        return self.emit(f"(not {x.text})" if self.lang == "py" else f"(!{x.text})", "b", "not", (x,))


def _math(name):
    def f(self, *args):
        return self._fn(_FUNCS, name, args)
    f.__name__ = name
    return f


def _bool1(name):
    def f(self, x):
        return self._fn(_BOOL1, name, (x,), "b")
    f.__name__ = name
    return f


def _cmp(op):
    def f(self, x, y):
        return self.sym(x)._bin(y, op, "b")
    return f


for _n in _FUNCS:
    setattr(ScalarNS, _n, _math(_n))
for _n in _BOOL1:
    setattr(ScalarNS, _n, _bool1(_n))
for _n, _op in _CMP.items():
    setattr(ScalarNS, _n, _cmp(_op))
ScalarNS.bitwise_and, ScalarNS.bitwise_or, ScalarNS.bitwise_invert = (ScalarNS.logical_and, ScalarNS.logical_or,
                                                                      ScalarNS.logical_not)


def _dtype_kind(dtype):
    if type(dtype) is _Kind:
        return dtype.kind
    name = getattr(dtype, "name", None) or str(dtype)
    if name == "bool":
        return "b"
    if name in ("float32", "float64"):
        return "f"
    raise NotScalar(f"no scalar form of a cast to {name}")


def _call(f, args, what):
    try:
        out = f(*args)
    except NotScalar:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as e:
        raise NotScalar(f"{what}: {type(e).__name__}: {e}") from None
    if type(out) is not Sym:
        if type(out) in (bool, int, float):
            return out
        raise NotScalar(f"{what} gave a {type(out).__name__}, not a scalar")
    return out


def forward(ns, prim, args, attrs=None):
    """The symbol of ``prim``'s forward on symbols/numbers ``args`` (appending its statements to ``ns``)."""
    attrs = attrs or {}
    if prim.name in EXPLICIT:
        return _call(lambda *a: EXPLICIT[prim.name](ns, *a, **attrs), args, prim.name)
    if prim.multi_output or prim.name in _NEVER or not (prim.same_shape or prim.broadcasting):
        raise NotScalar(f"{prim.name} is not elementwise")
    return _call(lambda *a: prim.fwd(ns, *a, **attrs), args, prim.name)


def vjp(ns, prim, k, ct, out, args, attrs=None):
    """The symbol of ``prim``'s VJP rule for input ``k`` (cotangent ``ct``, forward result ``out``)."""
    rule = prim.vjp[k]
    if rule is None:
        raise NotScalar(f"{prim.name} has no VJP for input {k}")
    return _call(lambda *a: rule(ns, ct, out, *a, **(attrs or {})), args, f"{prim.name} vjp")


def jvp(ns, prim, k, t, out, args, attrs=None):
    """The symbol of ``prim``'s JVP rule for input ``k`` (tangent ``t``)."""
    rule = prim.jvp[k]
    if rule is None:
        raise NotScalar(f"{prim.name} has no JVP for input {k}")
    return _call(lambda *a: rule(ns, t, out, *a, **(attrs or {})), args, f"{prim.name} jvp")


def node_form(ns, node, args, attrs):
    """The symbol of graph node ``node`` (kind "prim" or "fn") applied to ``args``; ``attrs`` already plain
    numbers/None/dtype names. Raises NotScalar where the node has none."""
    if node.kind == "prim":
        return forward(ns, node.prim, args, attrs)
    if node.kind == "fn" and node.op in FN_OPS:
        return _call(lambda *a: getattr(ns, node.op)(*a, **attrs), args, node.op)
    raise NotScalar(f"{node.kind} {node.op} has no scalar form")
