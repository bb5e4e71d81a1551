"""gt.jit's row-wise primitives on NumPy: the softmax cross-entropy in one numba kernel, a pass per row.

On NumPy ``nn.cross_entropy``'s forward is a dozen array calls (max, isfinite, where, exp, sum, log,
take_along_axis, mean...) on a (rows, classes) array, and its gradient's residual (softmax minus the one-hot
labels, :data:`gradtape._ops.nn.softmax_minus_onehot_p`) ten more. On the MLP step's 256 x 10 logits the
forward took 85 us hot and 180-300 us right after the step's GEMMs, which evict the interpreter's working set
from the caches; the kernel takes 20 us. The lowering (:func:`gradtape._jit.lower.compile_graph`) swaps each
such node for a :class:`RowOp`: its kernel where the logits are float32/float64 of at most :data:`ROWS_MAX`
elements or :data:`NARROW` classes, the eager forward otherwise (NumPy's SIMD ``exp`` wins along long rows).
The kernels compute in float64 and round once (the eager float32 forward rounds at every step, so
the two agree to float32's precision); they follow the eager rules on non-finite logits (a row's shift is its
max where finite, else 0). Labels out of range go to the eager forward, which raises the API's ValueError.
"""
from __future__ import annotations

import hashlib
import importlib
import math

from .kernel_cache import _warm
from .kernel_cache import module as _module

__all__ = ["ROWS_MAX", "NARROW", "RowOp", "op_for", "note", "PRIMS"]

ROWS_MAX = 1 << 13          # logits of more elements and ...
NARROW = 32                 # ... more classes than this run the eager forward (NumPy's vectorized exp along
                            # long rows beats libm's per element: 256 x 256 took 460 us in the kernel, 170 in NumPy;
                            # along short rows NumPy's reductions pay per row: 16384 x 10, 2.0 ms against 2.6)

SOURCE = '''"""gradtape row kernels (gradtape._jit.rows): the softmax cross-entropy of (rows, classes) logits.
A cache file: compiled from gradtape's own text, never read back as code."""
import math
from numba import njit


@njit(cache=True, error_model="numpy")
def _shift(x, r, cols):
    m = x[r, 0]
    for c in range(1, cols):
        v = x[r, c]
        if v > m or v != v:         # (NaN wins, as the backend's max)
            m = v
    mf = float(m)
    return mf if mf - mf == 0.0 else 0.0    # a row's max where finite, else 0 (the eager shift)


@njit(cache=True, error_model="numpy")
def _lse(x, r, cols, m):
    s = 0.0
    for c in range(cols):
        s += math.exp(float(x[r, c]) - m)
    return math.log(s)


@njit(cache=True, error_model="numpy")
def ce_mean(x, labels):
    """mean over rows of logsumexp(x[r]) - x[r, labels[r]]; NaN with ok = False where a label is out of range."""
    rows, cols = x.shape
    total = 0.0
    for r in range(rows):
        k = labels[r]
        if k < 0 or k >= cols:
            return 0.0, False
        m = _shift(x, r, cols)
        total += _lse(x, r, cols, m) - (float(x[r, k]) - m)
    return total / rows, True


@njit(cache=True, error_model="numpy")
def ce_residual(x, labels, out, e):
    """out[r] = softmax(x[r]) - onehot(labels[r]) (one exp per element, kept in float64 in e, a row's scratch,
    until the last rounding); False where a label is out of range."""
    rows, cols = x.shape
    for r in range(rows):
        k = labels[r]
        if k < 0 or k >= cols:
            return False
        m = _shift(x, r, cols)
        s = 0.0
        for c in range(cols):
            v = math.exp(float(x[r, c]) - m)
            e[c] = v
            s += v
        for c in range(cols):
            out[r, c] = e[c] / s
        out[r, k] = e[k] / s - 1.0
    return True
'''

_DIGEST = hashlib.sha256(SOURCE.encode()).hexdigest()[:32]
_env = {}


def _functions():
    if not _env:
        importlib.import_module("numba")
        _env.update(_module(_DIGEST, SOURCE, dict, f"gradtape_jit_rows_{_DIGEST}")[1])
    return _env


class RowOp:
    """One cross-entropy node (``kind`` "cross_entropy": the mean loss; "softmax_minus_onehot": the residual):
    ``op(xp, x, labels)`` runs its kernel (``f``; None for logits the kernel does not take: large, float16),
    else the eager forward ``fallback``, which also gets the rows whose labels the kernel finds out of range
    (it raises eager's ValueError: :func:`gradtape._ops.nn.check_labels`)."""

    __slots__ = ("kind", "f", "fallback")

    def __init__(self, kind, fallback, kernel=True):
        self.kind, self.fallback = kind, fallback
        self.f = _functions()["ce_mean" if kind == "cross_entropy" else "ce_residual"] if kernel else None

    def warm(self, xp, dtype, label_dtype):
        """Compile (or load from numba's disk cache) the kernel for these dtypes now, not at the first call."""
        if self.f is None:
            return
        x = xp.zeros((1, 1), dtype=dtype)
        lab = xp.zeros((1,), dtype=label_dtype)
        _warm(self.f, *((x, lab) if self.kind == "cross_entropy" else (x, lab, xp.empty_like(x), _scratch(xp, 1))))

    def __call__(self, xp, x, labels):
        if self.f is None or not (x.flags.c_contiguous and labels.flags.c_contiguous):
            return self.fallback(xp, x, labels)
        cols = x.shape[-1]
        x2 = x.reshape(-1, cols)
        lab = labels.reshape(-1)
        if self.kind == "cross_entropy":
            v, ok = self.f(x2, lab)
            return xp.asarray(v, dtype=x.dtype) if ok else self.fallback(xp, x, labels)
        out = xp.empty(x2.shape, dtype=x.dtype)
        if not self.f(x2, lab, out, _scratch(xp, cols)):
            return self.fallback(xp, x, labels)     # (it reports the label)
        return out.reshape(x.shape)


def _scratch(xp, cols):
    return xp.empty((cols,), dtype=xp.float64)


PRIMS = ("cross_entropy", "softmax_minus_onehot")


def note(graph, nodes):
    """The listing's line for the row ops of ``graph`` at ``nodes``."""
    names = sorted({graph.nodes[i].op for i in nodes})
    return f"# ---- {', '.join(names)}: the softmax cross-entropy's row kernels (gradtape._jit.rows)"


def op_for(kind, x_shape, dtype, label_dtype, fallback):
    """A :class:`RowOp` for a node of ``kind`` (one of :data:`PRIMS`) on logits of this shape and dtype (names),
    with its kernel where it applies (float32/float64, at most :data:`ROWS_MAX` elements or :data:`NARROW`
    classes), without one for other float logits; None for anything else (integer labels only).

    >>> from gradtape._jit.rows import op_for
    >>> op_for("cross_entropy", (1000, 100), "float32", "int64", None).f is None      # large: NumPy's
    True
    """
    if kind not in PRIMS or not x_shape or x_shape[-1] == 0 or not label_dtype.startswith(("int", "uint")):
        return None
    if dtype not in ("float16", "float32", "float64"):
        return None
    small = math.prod(x_shape) <= ROWS_MAX or x_shape[-1] <= NARROW
    return RowOp(kind, fallback, kernel=dtype != "float16" and small)
