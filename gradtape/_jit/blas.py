"""gt.jit's matrix products on NumPy through MKL, where the ``mkl`` wheel is installed.

NumPy's wheels carry OpenBLAS. On this project's Intel machines MKL's ``sgemm``/``dgemm`` are 10-20% faster
on a dense layer's shapes (PyTorch's CPU build links MKL: that was most of the distance between gt.jit's MLP
step and torch's). On an AMD EPYC (Zen 4) MKL was slower than OpenBLAS in the MLP step (1.08x / 1.17x the
hand-written NumPy step at 1 / 2 threads against 1.04x / 1.05x with OpenBLAS; a skinny product such as
256x1024 @ 1024x10 4x slower), so ``auto`` uses it on Intel's CPUs only (:func:`vendor`); ``$GRADTAPE_BLAS=mkl``
uses it on any. Installing the extra (``pip install gradtape[mkl]``, x86_64) is the opt-in: each 2-D
float32/float64 matmul node of a jitted graph with at least 2**18 multiply-adds (:func:`product_for`) then
calls MKL's GEMM through ``ctypes`` (its single dynamic library, ``libmkl_rt``). The GEMM writes a fresh
C-ordered array, as ``matmul`` does; an operand BLAS cannot read in place (a strided view) goes to NumPy's
matmul, and so do smaller products (a ctypes call costs ~2 us; OpenBLAS runs those on one thread).

No timing picks the library: at more than one thread a timing depends on which pool is spinning at that
moment, and a wrong pick mixes two libraries in one step, OpenBLAS's threads spinning on the cores MKL's
want (the MLP step at 2 threads: 25-40 ms mixed, 11.7 all MKL, 12.2 all OpenBLAS).

MKL runs on GNU OpenMP (its ``gnu_thread`` layer; its sequential one where libgomp is missing), the runtime of
numba's ``omp`` thread layer, so the fused kernels and the GEMMs share one thread pool (:func:`shares_pool`:
numba_lower then runs smaller regions in parallel too); its thread count follows
:func:`gradtape.set_num_threads`. ``$GRADTAPE_BLAS=numpy`` (or ``off``) never uses it. The library is
loaded by the first jitted matmul that qualifies, never at import.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

from . import threads as _threads

__all__ = ["library", "product_for", "shares_pool", "mode", "vendor", "note", "Product"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_GNU_THREADING, _SEQUENTIAL = 3, 1   # mkl_set_threading_layer(MKL_THREADING_GNU / _SEQUENTIAL)
_MIN_FLOPS = 1 << 18                 # products of fewer multiply-adds stay NumPy's (a ctypes call costs ~2 us)
_MIN_SIDE = 2                        # and those with a side shorter (a vector product)
_state = {}                          # "lib": the CDLL or False (none), "threads": the count last set
reason = ""                          # why no library loaded (the last failure), "" once one has


def mode():
    """``$GRADTAPE_BLAS`` read now: "auto" (unset: MKL where installed and the CPU is Intel's), "mkl" (MKL where
    installed, on any CPU) or "numpy" (never).

    >>> import os
    >>> from gradtape._jit.blas import mode
    >>> os.environ["GRADTAPE_BLAS"] = "numpy"; mode()
    'numpy'
    >>> del os.environ["GRADTAPE_BLAS"]; mode()
    'auto'
    """
    v = os.environ.get("GRADTAPE_BLAS", "").strip().lower()
    if v in ("numpy", "off", "0", "none"):
        return "numpy"
    if v in ("", "auto"):
        return "auto"
    if v == "mkl":
        return "mkl"
    raise ValueError(f"gradtape: GRADTAPE_BLAS={v!r}: 'auto' (MKL where installed, on an Intel CPU), 'mkl' (on "
                     f"any CPU) or 'numpy'")


def vendor():
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``...) from ``/proc/cpuinfo``, or "" where it
    cannot be read (then ``auto`` keeps MKL: the extra is an x86_64 opt-in).

    >>> from gradtape._jit.blas import vendor
    >>> isinstance(vendor(), str)
    True
    """
    v = _state.get("vendor")
    if v is None:
        v = ""
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("vendor_id"):
                        v = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _state["vendor"] = v
    return v


def _candidates():
    """Where the ``mkl`` wheel puts ``libmkl_rt``: the environment's ``lib`` (pip's data scheme)."""
    seen = []
    for root in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(sys.executable))):
        for p in sorted(glob.glob(os.path.join(root, "lib", "libmkl_rt.so*")), reverse=True):
            if p not in seen:
                seen.append(p)
    return seen


def library():
    """The loaded BLAS (a ``ctypes.CDLL`` with ``cblas_sgemm``/``cblas_dgemm``), or None where there is none
    (or ``$GRADTAPE_BLAS=numpy``, or ``auto`` on a CPU not Intel's). Loaded once; a library that fails to load or lacks the functions counts
    as none (recorded in ``blas.reason``)."""
    global reason
    m = mode()
    if m == "numpy":
        return None
    if m == "auto" and vendor() not in ("", "GenuineIntel"):
        reason = (f"auto: the CPU is {vendor()}'s, where MKL measured slower than NumPy's OpenBLAS "
                  f"(GRADTAPE_BLAS=mkl uses it anyway)")
        return None
    lib = _state.get("lib")
    if lib is None:
        lib = _state["lib"] = _load(_candidates())
    return lib or None


def _load(paths):
    global reason
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
            sgemm, dgemm = lib.cblas_sgemm, lib.cblas_dgemm
        except (OSError, AttributeError) as e:
            reason = f"{p}: {e}"
            continue
        for f, real in ((sgemm, ctypes.c_float), (dgemm, ctypes.c_double)):
            f.restype = None
            f.argtypes = [ctypes.c_int] * 6 + [real, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                               real, ctypes.c_void_p, ctypes.c_int]
        layer = getattr(lib, "MKL_Set_Threading_Layer", None)
        lib.gt_gomp = layer is not None and _has_gomp()
        if layer is not None:
            layer.argtypes, layer.restype = [ctypes.c_int], ctypes.c_int
            layer(_GNU_THREADING if lib.gt_gomp else _SEQUENTIAL)
        setn = getattr(lib, "MKL_Set_Num_Threads", None)
        if setn is not None:
            setn.argtypes, setn.restype = [ctypes.c_int], None
        lib.gt_set_threads = setn
        lib.gt_path = p
        reason = ""
        return lib
    if not paths:
        reason = "no libmkl_rt in this environment (pip install gradtape[mkl])"
    return False


def _has_gomp():
    """Whether GNU OpenMP loads (MKL exits the process when a threading layer it was told to use does not)."""
    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        return False
    return True


def _threads_now(lib):
    n = _threads.get_num_threads()
    if _state.get("threads") != n and lib.gt_set_threads is not None:
        lib.gt_set_threads(n)
        _state["threads"] = n
    return n


def _operand(a, isz):
    """(transpose flag, leading dimension) of a 2-D operand BLAS reads in place, or None (a copy would be
    needed: NumPy's matmul handles it)."""
    s0, s1 = a.strides
    r, c = a.shape
    if s1 == isz and s0 % isz == 0 and s0 >= c * isz:
        return _NO_TRANS, s0 // isz
    if s0 == isz and s1 % isz == 0 and s1 >= r * isz:
        return _TRANS, s1 // isz
    return None


class Product:
    """One matmul node of a jitted graph (2-D, float32/float64, big enough: :func:`product_for`):
    ``product(xp, x, y) -> x @ y`` through the BLAS (NumPy's matmul for an operand in a layout BLAS cannot
    read in place)."""

    __slots__ = ("f", "real", "isz", "lib")

    def __init__(self, lib, dtype):
        single = dtype == "float32"
        self.f = lib.cblas_sgemm if single else lib.cblas_dgemm
        self.real = ctypes.c_float if single else ctypes.c_double
        self.isz, self.lib = 4 if single else 8, lib

    def gemm(self, xp, x, y, a, b):
        m, k = x.shape
        n = y.shape[1]
        out = xp.empty((m, n), dtype=x.dtype)
        _threads_now(self.lib)
        self.f(_ROW_MAJOR, a[0], b[0], m, n, k, self.real(1.0), x.ctypes.data, a[1], y.ctypes.data, b[1],
               self.real(0.0), out.ctypes.data, n)
        return out

    def __call__(self, xp, x, y):
        a, b = _operand(x, self.isz), _operand(y, self.isz)
        if a is None or b is None:
            return xp.matmul(x, y)
        return self.gemm(xp, x, y, a, b)


def shares_pool():
    """Whether a BLAS is loaded that runs on GNU OpenMP (numba's ``omp`` layer's pool, not a second one).

    >>> from gradtape._jit.blas import shares_pool
    >>> shares_pool() in (True, False)
    True
    """
    lib = _state.get("lib")
    return bool(lib) and lib.gt_gomp and library() is lib


def product_for(x_shape, y_shape, dtype):
    """A :class:`Product` for a matmul node of these shapes and dtype (a dtype name) where the BLAS is
    installed and the product qualifies (2-D by 2-D, float32/float64, at least 2 on every side and 2**18
    multiply-adds), else None.

    >>> from gradtape._jit.blas import product_for
    >>> product_for((3, 2), (2, 3), "float64") is None      # too small to be worth a BLAS call
    True
    """
    if len(x_shape) != 2 or len(y_shape) != 2 or dtype not in ("float32", "float64"):
        return None
    m, k = x_shape
    n = y_shape[1]
    if min(m, k, n) < _MIN_SIDE or m * k * n < _MIN_FLOPS:
        return None
    lib = library()
    return Product(lib, dtype) if lib is not None else None


def note(count):
    """The listing's line for ``count`` products of a graph handed to the BLAS."""
    lib = library()
    where = lib.gt_path if lib else "none loaded"
    return f"# ---- gemm0..gemm{count - 1}: x @ y through {where} (gradtape._jit.blas)"
