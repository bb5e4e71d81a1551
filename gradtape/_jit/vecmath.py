"""Vectorisable math for the fused kernels: exp, expm1, tanh, sin, cos, log as plain arithmetic (as XLA does).

numba's llvmlite here has no SVML, so ``math.sin`` in a kernel loop is one scalar libm call per element.
These functions are range reduction (Cody-Waite: a constant split in parts so the products are exact) plus
polynomials (Taylor series to the needed order on the reduced range), with exponent and mantissa handled
by integer bit operations (numba intrinsics that bitcast, defined when :func:`jitted` is first called). No
calls and no data-dependent branches, only selects: LLVM vectorises the loop they are inlined into.

They are computed in float64 (a float32 kernel converts on the way in and out: float32 results are then
correctly rounded or within 1 ulp). Stated bounds, tested against NumPy's libm-accurate ufuncs over many
points and edge values (tests/test_jit_vecmath.py): float64 ``exp``, ``expm1``, ``log`` within 2 ulp;
``tanh``, ``sin``, ``cos`` within 3 ulp (sin/cos for \\|x\\| ≤ :data:`TRIG_LIMIT`); float32 within 1 ulp. nan
and ±inf follow libm (exp(-inf) = 0, log(0) = -inf, log(x < 0) = nan, sin(inf) = nan, tanh(±inf) = ±1).
``sin``/``cos`` beyond :data:`TRIG_LIMIT` are not reduced accurately here: a kernel using them counts such
arguments (``_vm_trig_far``) and reruns its region with libm when there are any
(:mod:`gradtape._jit.numba_lower`).

Whether a kernel uses them is :func:`kernel_ops`: the functions measured faster than libm inside a numba
loop on this kind of machine (benchmarks/jit.py prints the measurement). :func:`unfused_policy` keeps out
of large regions the ops that NumPy's SIMD ufuncs run much faster than numba's scalar libm (a ufunc at the
region's edge, not fused).
"""
from __future__ import annotations

import hashlib
import importlib
import math

__all__ = ["exp", "expm1", "tanh", "sin", "cos", "log", "jitted", "kernel_ops", "unfused_policy", "TRIG_LIMIT",
           "ULP_BOUNDS"]

TRIG_LIMIT = 2.0 ** 19 * math.pi / 2     # k * PIO2_1 is exact for k < 2**20 (PIO2_1 has 33 significant bits)
ULP_BOUNDS = {"exp": 2, "expm1": 2, "log": 2, "tanh": 3, "sin": 3, "cos": 3}   # float64; float32: 1

_LN2_HI = 6.93147180369123816490e-01     # fdlibm's split of log(2) and pi/2
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634
_PIO2_1 = 1.57079632673412561417e+00     # pi/2 in four parts of 33 significant bits (k * part exact)
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_PIO2_4 = 8.47842766036889956997e-32
_TWO_OPI = 0.6366197723675814
_SQRT2 = 1.4142135623730951

# numba intrinsics bitcasting float64 <-> int64 (set by jitted(); plain Python callers never reach them)
_f2i = None
_i2f = None


def _pow2(k):
    """2.0**k for -1022 <= k <= 1023, built from its exponent bits."""
    return _i2f((k + 1023) << 52)


def _exp_poly(r):
    """e**r - 1 for |r| <= log(2)/2 (Taylor to r**13: under 2e-17 relative)."""
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    return r + r * r * p


def exp(x):
    """e**x (float64 arithmetic, vectorisable)."""
    xd = x * 1.0
    xc = 710.0 if xd > 710.0 else (-746.0 if xd < -746.0 else xd)
    xc = 0.0 if xd != xd else xc
    k = int(math.floor(xc * _LOG2E + 0.5))
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    h = k >> 1
    out = (_exp_poly(r) + 1.0) * _pow2(h) * _pow2(k - h)
    return out if xd == xd else xd


def expm1(x):
    """e**x - 1, accurate near 0 (float64 arithmetic, vectorisable)."""
    xd = x * 1.0
    xc = 710.0 if xd > 710.0 else (-60.0 if xd < -60.0 else xd)
    xc = 0.0 if xd != xd else xc
    k = int(math.floor(xc * _LOG2E + 0.5))
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    q = _exp_poly(r)
    h = k >> 1
    s1, s2 = _pow2(h), _pow2(k - h)
    s = s1 * s2
    out = q * s + (s - 1.0) if k < 1000 else (q + 1.0) * s1 * s2     # (2**1024 itself overflows)
    return out if xd == xd else xd


def tanh(x):
    """tanh x = e / (e + 2), e = expm1(2|x|) (|x| clamped to 20, where tanh is 1 in float64), vectorisable."""
    xd = x * 1.0
    a = xd if xd >= 0.0 else -xd        # (not abs(): numba's abs() stops LLVM's vectoriser)
    a = 20.0 if a > 20.0 else a
    y = a + a
    k = int(math.floor(y * _LOG2E + 0.5))
    r = (y - k * _LN2_HI) - k * _LN2_LO
    s = _pow2(k)
    e = _exp_poly(r) * s + (s - 1.0)
    t = e / (e + 2.0)
    t = t if xd >= 0.0 else -t
    return t if xd == xd else xd


def _log_poly(s):
    """log((1 + s) / (1 - s)) / (2 s) - 1 for |s| <= 0.1716 (the odd series to s**24)."""
    z = s * s
    p = 1.0 / 25.0
    p = p * z + 1.0 / 23.0
    p = p * z + 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    return z * p


def log(x):
    """Natural log (float64 arithmetic, vectorisable): m 2**e with m in [sqrt(2)/2, sqrt(2)), then
    log m = 2 atanh(s), s = (m - 1) / (m + 1)."""
    xd = x * 1.0
    sub = xd < 2.2250738585072014e-308
    xs = xd * 18014398509481984.0 if sub else xd          # subnormals scaled by 2**54
    xs = 1.0 if (xd <= 0.0 or xd != xd or xd == math.inf) else xs
    bits = _f2i(xs)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _i2f((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    e = e - 54 if sub else e
    f = m - 1.0
    s = f / (m + 1.0)
    hf = 0.5 * f * f
    lm = f - (hf - s * (hf + 2.0 * _log_poly(s)))     # log(1 + f), fdlibm's arrangement
    out = e * _LN2_HI + (lm + e * _LN2_LO)
    out = -math.inf if xd == 0.0 else out
    out = math.nan if xd < 0.0 else out
    return xd if (xd != xd or xd == math.inf) else out


def _sin_poly(r):
    z = r * r
    p = -1.0 / 1307674368000.0
    p = p * z + 1.0 / 6227020800.0
    p = p * z - 1.0 / 39916800.0
    p = p * z + 1.0 / 362880.0
    p = p * z - 1.0 / 5040.0
    p = p * z + 1.0 / 120.0
    p = p * z - 1.0 / 6.0
    return r + r * z * p


def _cos_poly(r):
    z = r * r
    p = 1.0 / 20922789888000.0
    p = p * z - 1.0 / 87178291200.0
    p = p * z + 1.0 / 479001600.0
    p = p * z - 1.0 / 3628800.0
    p = p * z + 1.0 / 40320.0
    p = p * z - 1.0 / 720.0
    p = p * z + 1.0 / 24.0
    return 1.0 - 0.5 * z + z * z * p


def _reduce(x):
    """(r, k): x = k pi/2 + r, |r| <= pi/4 (for |x| <= TRIG_LIMIT; other x give k = 0, r = 0)."""
    ok = x <= TRIG_LIMIT and x >= -TRIG_LIMIT
    xc = x if ok else 0.0
    k = int(math.floor(xc * _TWO_OPI + 0.5))
    r = (((xc - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3) - k * _PIO2_4
    return r, k


def _quadrant(xd, k):
    """The value at x = k pi/2 + r of sin (k as is) or cos (k + 1): one select and a sign, no branch."""
    r, _ = _reduce(xd)
    s, c = _sin_poly(r), _cos_poly(r)
    v = c if (k & 1) == 1 else s
    out = v * (1.0 - 2.0 * ((k >> 1) & 1))
    return out if (xd <= TRIG_LIMIT and xd >= -TRIG_LIMIT) else xd - xd    # inf - inf = nan, nan stays nan


def sin(x):
    """sin x for |x| <= TRIG_LIMIT (float64 arithmetic, vectorisable); nan beyond (count them: trig_far)."""
    xd = x * 1.0
    _, k = _reduce(xd)
    return _quadrant(xd, k)


def cos(x):
    """cos x for |x| <= TRIG_LIMIT (float64 arithmetic, vectorisable); nan beyond (count them: trig_far)."""
    xd = x * 1.0
    _, k = _reduce(xd)
    return _quadrant(xd, k + 1)


def trig_far(x):
    """1 where sin/cos above would not be libm's value (finite |x| > TRIG_LIMIT), else 0."""
    a = x * 1.0
    return 1 if ((a > TRIG_LIMIT or a < -TRIG_LIMIT) and a != math.inf and a != -math.inf) else 0


def _exp_a(x, out, m):
    for j in range(m):
        out[j] = exp(x[j])
    return 0


def _expm1_a(x, out, m):
    for j in range(m):
        out[j] = expm1(x[j])
    return 0


def _tanh_a(x, out, m):
    for j in range(m):
        out[j] = tanh(x[j])
    return 0


def _log_a(x, out, m):
    for j in range(m):
        out[j] = log(x[j])
    return 0


def _sin_a(x, out, m):
    far = 0
    for j in range(m):
        v = x[j]
        out[j] = sin(v)
        far += trig_far(v)
    return far


def _cos_a(x, out, m):
    far = 0
    for j in range(m):
        v = x[j]
        out[j] = cos(v)
        far += trig_far(v)
    return far


_FUNCS = ("exp", "expm1", "tanh", "sin", "cos", "log")
_jitted = {}
_CONTRACT = {"contract"}      # (numba wants a set)
_digest = []


def digest():
    """A digest of this module's text, written into the source of every kernel that calls these functions:
    numba's cache links their compiled code into the caller's, so a change here must make new entries.

    >>> len(digest())
    16
    """
    if not _digest:
        with open(__file__, "rb") as fh:
            _digest.append(hashlib.sha256(fh.read()).hexdigest()[:16])
    return _digest[0]


def _intrinsics(numba):
    from_ext = importlib.import_module("numba.extending").intrinsic
    types = numba.types

    @from_ext
    def f2i(typingctx, x):
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(types.int64))
        return types.int64(types.float64), codegen

    @from_ext
    def i2f(typingctx, x):
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(types.int64), codegen
    return f2i, i2f


def jitted(numba, ftype):
    """{"_vm_<name>": scalar numba function, "_vm_<name>_a": ``(x, out, m) -> count of sin/cos arguments beyond
    TRIG_LIMIT``, the function over the first m elements of float64 arrays (the loop LLVM vectorises)}, made
    once per process; numba's cache keeps the compiled code."""
    global _f2i, _i2f
    if not _jitted:
        _f2i, _i2f = _intrinsics(numba)
        # fastmath "contract" only: a * b + c as one FMA (one rounding, ~25% faster loops); nan/inf as IEEE
        jit = numba.njit(cache=True, error_model="numpy", inline="always", fastmath=_CONTRACT)
        g = globals()
        for name in ("_pow2", "_exp_poly", "_log_poly", "_sin_poly", "_cos_poly", "_reduce", "_quadrant") + _FUNCS + (
                "trig_far",):
            g[name] = jit(g[name])          # inlined by numba into the array loops below
        for name in _FUNCS:
            _jitted["_vm_" + name] = g[name]
            _jitted[f"_vm_{name}_a"] = g[f"_{name}_a"] = numba.njit(cache=True, error_model="numpy",
                                                                   fastmath=_CONTRACT)(g[f"_{name}_a"])
        _jitted["_vm_trig_far"] = g["trig_far"]
    return dict(_jitted)


# functions fused as vecmath calls (measured faster than numba's scalar libm and NumPy's ufunc in a region)
_KERNEL_OPS = frozenset(("exp", "expm1", "tanh", "sin", "cos", "log"))


def kernel_ops(ftype):
    """The libm functions a kernel of ``ftype`` takes from here."""
    return _KERNEL_OPS


# Ops kept out of large regions (run as NumPy ufuncs at a region's edge): those whose NumPy ufunc is much faster
# than numba's scalar libm call in a loop. Measured on the 2-core EPYC of issue 13 (1e6 float64, 1 thread, min of
# 5): numba-libm / NumPy = 0.5-1.3 for every op without a vecmath form (tan 0.96, asin 1.05, atan 1.20, sinh 0.70,
# asinh 0.99, atanh 0.50, log1p 1.02, log10 1.03, sqrt 0.62), so fusing them (one pass, no temporaries) is never
# slower and nothing is split out here; a machine whose NumPy has SIMD forms of them lists them.
_UNFUSED = frozenset()
UNFUSED_MIN = 1 << 14       # elements from which the split pays (below, one kernel call beats any ufunc)


def unfused_policy(graph):
    """``exclude(node)`` for :func:`gradtape._jit.fusion.find_regions`: large nodes of ops NumPy's SIMD ufuncs
    run much faster than a numba loop's libm calls (and that are not in :func:`kernel_ops`)."""
    def exclude(n):
        return n.op in _UNFUSED and n.shape is not None and math.prod(n.shape) >= UNFUSED_MIN
    return exclude
