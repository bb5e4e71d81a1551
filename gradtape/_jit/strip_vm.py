"""A strip interpreter for float64 and float32 regions with many transcendental calls (one compiled function per
opcode set).

A region of the 200-op chain's gradient has ~150 ``sin``/``tanh``/``cos`` calls: the per-region strip form of
:mod:`~gradtape._jit.numba_lower` would take numba minutes to compile, so such regions ran with scalar libm.
Here a region becomes a *program* instead: rows ``(op, d, a, b, c, x)`` over slots, the rows of a float64
scratch of ``slots x w`` elements (w: :data:`STRIP`, or the range if smaller; bools are 1.0/0.0), taken by
address (``carray``: no reference counting per row). A numba function, :func:`interpreter`, runs any program
of its opcodes strip by strip: for each strip, each row is one loop over it, so the loops of
``sin``/``tanh``/``exp``... are :mod:`~gradtape._jit.vecmath`'s vectorised ones and the arithmetic loops
vectorise too; the dispatch costs once per row and strip (~4 ns for an arithmetic row of 16 elements). An
output the region sums (``region.sums``) is accumulated by the program itself, in element order. Each
interpreter is compiled once per machine and opcode set (numba's disk cache; ~1-2 s cold for a program's own
opcodes, ~5 s for all of them) and a new region only builds its program (microseconds).

Its source is generated from :mod:`~gradtape._jit.scalar`'s templates (``_FUNCS``, the operators), written to
the cache directory like a kernel's and compiled from the generated text. A program is data: integers and
constants in arrays, never code. sin/cos arguments beyond :data:`vecmath.TRIG_LIMIT` are recomputed per
strip with libm (the row's output slot is never one of its inputs).

Used for float64 regions with more than ``numba_lower.VM_MAX_CALLS`` vecmath calls of at least
``numba_lower.VM_MIN`` elements or ``numba_lower.VM_TAPE_WORK`` calls x elements (of at least
``numba_lower.VM_TAPE_MIN``), with float64, float32 or bool arrays in and out, each input read in full or a
single element (:func:`kernel`; a float32 region is computed in float64, its literals rounded to float32 as
the eager ops round them, each output rounded once: one +, -, *, / is then the float32 IEEE result); a graph
that is one such region calls it directly (:meth:`TapeKernel.direct`).
Threads run contiguous ranges of strips (``nogil``, a thread pool of
:func:`gradtape._jit.threads.get_num_threads` threads; not for a program with a sum).
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import importlib
import math
import struct

from . import threads as _threads
from . import vecmath as _vecmath
from .kernel_cache import _warm
from .kernel_cache import module as _module
from .scalar import _BOOL1, _FUNCS, PY_PRELUDE, NotScalar

__all__ = ["STRIP", "OPS", "interpreter_source", "interpreter", "Program", "program", "kernel", "TapeKernel"]

STRIP = 256                 # elements per strip (a program's slots stay in L1/L2)
BLOCK_MAX = 1 << 12         # float outputs of up to this many elements share one allocation (one address)
PAR_WORK = 1 << 23          # element-ops from which a program's strips are split over threads

# each op's per-element expression: {0} {1} {2} the operands (rows of the scratch array at j)
_BIN = {"add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})", "div": "({0} / {1})"}
_CMPS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_EXPR = dict(_BIN)
_EXPR.update({k: f"(1.0 if {{0}} {s} {{1}} else 0.0)" for k, s in _CMPS.items()})
_EXPR.update({
    "neg": "(-{0})", "ne0": "(1.0 if {0} != 0.0 else 0.0)", "tof": "{0}",
    "and": "(1.0 if ({0} != 0.0 and {1} != 0.0) else 0.0)", "or": "(1.0 if ({0} != 0.0 or {1} != 0.0) else 0.0)",
    "not": "(1.0 if {0} == 0.0 else 0.0)", "where": "({1} if {0} != 0.0 else {2})",
})
_EXPR.update({k: py for k, (py, _) in _FUNCS.items()})
_EXPR.update({k: f"(1.0 if {py} else 0.0)" for k, (py, _) in _BOOL1.items()})
_VM = ("sin", "cos", "tanh", "exp", "expm1", "log")        # vecmath's array loops (sin/cos: far arguments redone)
# opcodes: loads and stores (float64, bool and float32 arrays: "g"), then the ops (the frequent first: the
# dispatch is a chain of comparisons)
_FIRST = ("mul", "add", "sub", "tanh", "sin", "cos", "exp", "div", "neg", "where")
OPS = ("load", "store", "loadb", "storeb", "sum", "loadg", "storeg") + _FIRST + tuple(sorted(set(_EXPR) - set(_FIRST)))
_CODE = {name: k for k, name in enumerate(OPS)}
_ARITY = {k: max(i for i in range(3) if "{%d}" % i in e) + 1 for k, e in _EXPR.items()}


def _branch(name):
    """The interpreter's text for one opcode (inside the row loop; bd, ba, bb, bc: rows of the scratch)."""
    if name == "load":
        return ["src = carray(_pf(adr[x]), hi)", "for j in range(m):", "    bd[j] = src[base + j]"]
    if name == "store":
        return ["dst = carray(_pf(adr[x]), hi)", "for j in range(m):", "    dst[base + j] = ba[j]"]
    if name == "loadb":
        return ["srcb = carray(_pb(adr[x]), hi)", "for j in range(m):",
                "    bd[j] = 1.0 if srcb[base + j] != 0 else 0.0"]
    if name == "storeb":
        return ["dstb = carray(_pb(adr[x]), hi)", "for j in range(m):",
                "    dstb[base + j] = 1 if ba[j] != 0.0 else 0"]
    if name == "loadg":                 # float32 in: exact in float64
        return ["srcg = carray(_pg(adr[x]), hi)", "for j in range(m):", "    bd[j] = srcg[base + j]"]
    if name == "storeg":                # float32 out: rounded once
        return ["dstg = carray(_pg(adr[x]), hi)", "for j in range(m):", "    dstg[base + j] = ba[j]"]
    if name == "sum":                   # into a float64 accumulator of one element, in element order
        return ["acc = carray(_pf(adr[x]), 1)", "s = acc[0]", "for j in range(m):", "    s += ba[j]", "acc[0] = s"]
    if name in _VM:
        lines = [f"if _vm_{name}_a(ba, bd, m):" if name in ("sin", "cos") else f"_vm_{name}_a(ba, bd, m)"]
        if name in ("sin", "cos"):      # arguments beyond vecmath's range: the strip with libm
            lines += ["    for j in range(m):", f"        bd[j] = math.{name}(ba[j])"]
        return lines
    expr = _EXPR[name].format("ba[j]", "bb[j]", "bc[j]")
    return ["for j in range(m):", f"    bd[j] = {expr}"]


def interpreter_source(ops=None):
    """The interpreter's module text for the opcodes ``ops`` (names; None: all of :data:`OPS`), deterministic:
    its digest names the cache file.

    >>> src = interpreter_source()
    >>> "def run(" in src and "_vm_sin_a(ba, bd, m)" in src
    True
    >>> "_vm_sin_a" in interpreter_source(("load", "store", "mul"))
    False
    """
    body = []
    for name in OPS:
        if ops is not None and name not in ops:
            continue
        cond = "if" if not body else "elif"
        body.append(f"            {cond} op == {_CODE[name]}:     # {name}")
        body += ["                " + ln for ln in _branch(name)]
    return ('"""gradtape strip interpreter, generated by gradtape._jit.strip_vm from its templates (a cache file:\n'
            'compiled from the generated text, never read back as code)."""\n'
            f"# vecmath {_vecmath.digest()}\n"
            "import math\nimport numpy as np\nfrom numba import carray, njit, float64 as F\n" + PY_PRELUDE + '''

@njit(cache=True, error_model="numpy", nogil=True)
def run(lo, hi, adr, prog, npre, consts, nslots, strip):
    # adr: the data addresses of the inputs then the outputs (float64, bool: uint8, float32), read up to hi
    # the scratch: nslots rows of w elements (no wider than the range), its rows taken by address (carray: no
    # reference counts per row, 3.7 ns a row of 16 against 52 for views of a 2-D array); written before read
    w = max(1, min(strip, hi - lo))
    buf = np.empty(nslots * w, np.float64)
    top = buf.ctypes.data
    row = w * 8
    for k in range(npre):           # constants and single-element inputs (float64, bool, float32): filled once
        d, x, op = prog[k, 1], prog[k, 5], prog[k, 0]
        if op == 0:
            v = consts[x]
        elif op == 1:
            v = carray(_pf(adr[x]), 1)[0]
        elif op == 2:
            v = 1.0 if carray(_pb(adr[x]), 1)[0] != 0 else 0.0
        else:
            v = F(carray(_pg(adr[x]), 1)[0])
        bd = carray(_pf(top + d * row), w)
        for j in range(w):
            bd[j] = v
    for base in range(lo, hi, w):
        m = min(w, hi - base)
        for k in range(npre, prog.shape[0]):
            op = prog[k, 0]
            bd = carray(_pf(top + prog[k, 1] * row), w)
            ba = carray(_pf(top + prog[k, 2] * row), w)
            bb = carray(_pf(top + prog[k, 3] * row), w)
            bc = carray(_pf(top + prog[k, 4] * row), w)
            x = prog[k, 5]
''' + "\n".join(body) + "\n    return buf.size      # (buf used last here: alive through the rows)\n")


_interp = {}
SPECIALIZE = True           # a program runs on an interpreter of its own opcodes (False: all of them; tests)


def interpreter(backend, ops=None):
    """(``run(lo, hi, adr, prog, npre, consts, nslots, strip)`` compiled, the source's cache file) for
    ``backend`` (NumPy's) and the opcodes ``ops`` (None: all); each compiled once into numba's disk cache, in
    :func:`~gradtape._jit.kernel_cache.cache_dir`. The arrays are passed as one int64 array of data addresses
    (numba's typed lists compile their methods anew in every process: 0.4 s). An interpreter of a program's
    own opcodes compiles in ~1-2 s cold (each vecmath function ~0.3 s, each other opcode ~0.05 s), all of
    them in ~5 s."""
    key = None if ops is None else tuple(sorted(ops))
    if key in _interp:
        return _interp[key]
    numba = importlib.import_module("numba")
    src = interpreter_source(key)

    def names():            # what the source calls: vecmath's loops, the address intrinsics
        pf, pb, pg = _pointers(numba)
        return {**_vecmath.jitted(numba, "float64"), "_pf": pf, "_pb": pb, "_pg": pg}
    digest = hashlib.sha256(src.encode()).hexdigest()[:32]
    path, env = _module("vm_" + digest, src, names, f"gradtape_jit_vm_{digest}")
    run = env["run"]
    _warm(run, 0, 0, _ints(backend, [0]), _ints(backend, [[1, 0, 0, 0, 0, 0]]), 0, _floats(backend, [0.0]), 1,
          STRIP)
    _interp[key] = (run, path)
    return _interp[key]


def _pointers(numba):
    """numba intrinsics: an int64 address as a float64 pointer, as a uint8 one (a bool array's bytes) and as
    a float32 one."""
    intrinsic = importlib.import_module("numba.extending").intrinsic
    types = numba.types

    def make(t):
        @intrinsic
        def ptr(typingctx, addr):
            sig = types.CPointer(t)(types.int64)

            def codegen(context, builder, sig, args):
                return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
            return sig, codegen
        return ptr
    return make(types.float64), make(types.uint8), make(types.float32)


def _ints(backend, v):
    return backend.xp.asarray(v, dtype=backend.raw.int64)


def _floats(backend, v):
    return backend.xp.asarray(v, dtype=backend.raw.float64)


class Program:
    """A region as interpreter rows: ``rows`` [(op, d, a, b, c, x)] (the first ``npre`` fill slots once: a
    constant ``consts[x]`` (op 0) or input x's single element, float or bool (op 1/2)), ``nslots``,
    ``in_kinds``, ``out_kinds`` ("f"/"b", "s": a float64 sum of the output); ``ops`` the opcodes its body
    uses; ``listing()`` the rows as text. A row's ``x`` is an address position: input k at k, output j at
    ``len(in_kinds) + j``."""

    def __init__(self, rows, npre, consts, nslots, in_kinds, out_kinds):
        self.rows, self.npre, self.consts, self.nslots = rows, npre, consts, nslots
        self.in_kinds, self.out_kinds = in_kinds, out_kinds
        self.vm_calls = sum(OPS[r[0]] in _VM for r in rows[npre:])
        self.ops = tuple(sorted({OPS[r[0]] for r in rows[npre:]}))

    def listing(self):
        """The program as text, one row a line (``s3 = sin(s1)``; slot numbers, not variables)."""
        out, nin = [], len(self.in_kinds)
        for k, (op, d, a, b, c, x) in enumerate(self.rows):
            name = OPS[op]
            if k < self.npre:
                out.append(f"s{d} = " + (f"const {self.consts[x]!r}" if op == 0 else
                                         f"{_PREFIX[_FILL_KIND[op]]}in{x}[0]"))
            elif op in _LOAD_KIND:
                out.append(f"s{d} = {_PREFIX[_LOAD_KIND[op]]}in{x}[i]")
            elif op in _STORE_KIND:
                out.append(f"{_PREFIX[_STORE_KIND[op]]}out{x - nin}[i] = s{a}")
            elif name == "sum":
                out.append(f"out{x - nin} += s{a}[i]")
            else:
                out.append(f"s{d} = {name}(" + ", ".join(f"s{v}" for v in (a, b, c)[:_ARITY[name]]) + ")")
        return "\n".join(out)


_STORE = {"f": _CODE["store"], "b": _CODE["storeb"], "g": _CODE["storeg"], "s": _CODE["sum"]}
_LOAD = {"f": _CODE["load"], "b": _CODE["loadb"], "g": _CODE["loadg"]}
_ONE = {"f": 1, "b": 2, "g": 3}                 # a single-element input's fill row
_PREFIX = {"f": "", "b": "bool_", "g": "f32_"}            # (the listing's array names by kind)
_LOAD_KIND = {c: k for k, c in _LOAD.items()}
_STORE_KIND = {c: k for k, c in _STORE.items() if k != "s"}
_FILL_KIND = {c: k for k, c in _ONE.items()}


def program(ns, in_names, in_modes, in_kinds, out_syms, out_kinds):
    """The :class:`Program` of a region's statements (``ns``: its :class:`~gradtape._jit.scalar.ScalarNS`, the
    inputs' symbol names, read modes "full"/"one" and kinds "f"/"b", the outputs' symbols and kinds "f"/"b"/"s");
    NotScalar where a statement or an input has no form here."""
    if len(ns.forms) != len(ns.lines):
        raise NotScalar("statements without a structured form")
    uses = {}
    for k, (op, args) in enumerate(ns.forms):
        if op not in _EXPR:
            raise NotScalar(f"no interpreter op {op}")
        for s in args:
            if s.value is None:
                uses[s.text] = k
    end = len(ns.forms)
    for s in out_syms:
        if s.value is None:
            uses[s.text] = end
    free, nslots, slot, fixed = [], 0, {}, set()      # fixed: slots filled once (never freed)
    pre, body, consts, cidx = [], [], [], {}

    def new():
        nonlocal nslots
        if free:
            return free.pop()
        nslots += 1
        return nslots - 1

    def operand(s):
        if s.value is not None:             # a literal (by its text: -0.0 is not 0.0): its slot
            if s.text not in cidx:
                cidx[s.text] = len(consts)
                consts.append(s.value)
                d = new()
                slot[("c", s.text)] = d
                fixed.add(d)
                pre.append((0, d, 0, 0, 0, cidx[s.text]))
            return slot[("c", s.text)]
        return slot[s.text]

    for s in [s for _, args in ns.forms for s in args] + list(out_syms):
        if s.value is not None:             # every constant's slot first: filled once, never reused
            operand(s)
    for k, (name, mode, kind) in enumerate(zip(in_names, in_modes, in_kinds)):
        if name not in uses:
            continue
        d = new()
        slot[name] = d
        if mode == "one":
            pre.append((_ONE[kind], d, 0, 0, 0, k))
            fixed.add(d)
        elif mode == "full":
            body.append((_LOAD[kind], d, 0, 0, 0, k))
        else:
            raise NotScalar(f"an input read as {mode}")
    stores = {}
    for j, s in enumerate(out_syms):
        stores.setdefault(s.text if s.value is None else ("lit", j), []).append(j)
    nin = len(in_names)

    def store(key, d):
        for j in stores.get(key, ()):
            body.append((_STORE[out_kinds[j]], 0, d, 0, 0, nin + j))

    for name in in_names:
        if name in slot:
            store(name, slot[name])
    for j, s in enumerate(out_syms):
        if s.value is not None:
            store(("lit", j), operand(s))
    for k, ((vname, _, _), (op, args)) in enumerate(zip(ns.lines, ns.forms)):
        srcs = [operand(s) for s in args] + [0, 0, 0]
        d = new()                              # before freeing the inputs: d is none of them
        slot[vname] = d
        body.append((_CODE[op], d, srcs[0], srcs[1], srcs[2], 0))
        store(vname, d)
        for s in args:
            if s.value is None and uses.get(s.text) == k and s.text in slot and slot[s.text] not in fixed:
                free.append(slot.pop(s.text))
        if vname not in uses:
            free.append(slot.pop(vname))
    rows = pre + body
    return Program(rows, len(pre), consts, max(nslots, 1), list(in_kinds), list(out_kinds))


def kernel(region, backend, ns, in_syms, reads, in_kinds, out_syms, out_kinds):
    """The :class:`TapeKernel` of a float64 or float32 region (its arrays in and out: "f" float64, "b" bool,
    "g" float32; the outputs the region sums, ``region.sums``, "s"; each input read in full or a single
    element), or None. A float32 region is computed in float64 (its literals rounded to float32 first, as the
    eager op rounds a Python scalar) and each output rounded once."""
    if region.ftype not in ("float64", "float32") or any(rd.mode not in ("full", "one") for rd in reads) or \
            None in in_kinds or None in out_kinds:
        return None
    out_kinds = ["s" if k in region.sums else kind for k, kind in enumerate(out_kinds)]
    try:
        prog = program(ns, [s.text for s in in_syms], [rd.mode for rd in reads], in_kinds, out_syms, out_kinds)
    except NotScalar:
        return None
    if region.ftype == "float32":
        prog.consts = [_round32(v) for v in prog.consts]
    return TapeKernel(region, backend, prog, reads)


def _round32(v):
    """A Python float rounded to the nearest float32 (±inf beyond its range), as a Python float."""
    v = float(v)
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:
        return math.copysign(math.inf, v)


def _address(a):
    """The data address of a C-contiguous NumPy array: through ctypes' buffer view (0.27 us; ``.ctypes.data``
    builds an object, 0.88 us), or ``.ctypes.data`` where the buffer is read-only."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


_pool = []


def _executor(n):
    if not _pool or _pool[0][0] != n:
        if _pool:
            _pool.pop()[1].shutdown(wait=False)
        _pool.append((n, concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="gradtape-vm")))
    return _pool[0][1]


class TapeKernel:
    """A region run by the strip interpreter: the interface of :class:`gradtape._jit.numba_lower.Kernel`
    (``load()``, ``kernel(xp, *raws)``, ``direct(srcs)``, ``source``: the program's listing)."""

    uses_vm, cols, forms = True, None, None
    inplace_ok = True       # (loads of a strip come before its stores; far sin/cos are redone from the scratch)
    reuse = ()              # ((output k, input p), ...): k written into p's buffer (gradtape._jit.buffers)

    def __init__(self, region, backend, prog, reads):
        self.region, self.backend, self.prog, self.reads = region, backend, prog, reads
        self.size = math.prod(region.shape)
        self.source = (f"# strip interpreter program: {len(prog.rows)} rows, {prog.nslots} slots, "
                       f"{prog.vm_calls} vecmath calls\n" + prog.listing())
        self.digest = hashlib.sha256(self.source.encode()).hexdigest()[:32]
        self.path = None
        self._run = None

    def load(self):
        if self._run is None:
            p, raw, xp = self.prog, self.backend.raw, self.backend.xp
            self._run, self.path = interpreter(self.backend, p.ops if SPECIALIZE else None)
            self._prog = _ints(self.backend, p.rows)
            self._consts = _floats(self.backend, p.consts or [0.0])
            # NumPy's own constructors (array_api_compat's wrappers cost ~1.5 us a call)
            self._array, self._new, self._i64, self._f64, self._b, self._g = xp.array, xp.ndarray, raw.int64, \
                raw.float64, raw.bool, raw.float32
            # a sum's value: the float64 accumulator, rounded to the region's float type
            self._sum_type = self._g if self.region.ftype == "float32" else self._f64
            # small float outputs (and sums) in one block, one address: [(kind, offset in the block)]; large
            # ones and bools each their own array, offset None (the plan frees each after its last use)
            self._outs, self._nf = [], 0
            for k in p.out_kinds:
                if k == "s" or (k == "f" and self.size <= BLOCK_MAX):
                    self._outs.append((k, self._nf))
                    self._nf += 1 if k == "s" else self.size
                else:
                    self._outs.append((k, None))
            self._sums = [off for k, off in self._outs if k == "s"]
            # threads: from PAR_WORK element-ops and more than one strip; not with a sum's accumulator (one
            # range, in element order)
            self._may_split = self.size * len(p.rows) >= PAR_WORK and self.size > STRIP and not self._sums
        return self

    def may_reuse(self, k, p):
        """Outputs with an array of their own (not the small ones sharing a block) may take an input's."""
        return self._outs[k][1] is None and self._outs[k][0] != "s"

    def _flat(self, raw):
        """An input as the C-contiguous 1-D array the interpreter reads."""
        flat = raw.reshape(-1)
        return flat if flat.flags.c_contiguous else flat.copy()

    def _go(self, adr_in, given=None):
        """The outputs, the program run over the inputs at the data addresses ``adr_in`` (the caller keeps
        those arrays alive through the call); ``given``: {output k: the flat array to write it into}."""
        n, p, new = self.size, self.prog, self._new
        blk = new(self._nf, self._f64)
        for off in self._sums:
            blk[off] = 0.0
        base = _address(blk)
        res, adr = [], list(adr_in)
        for j, (k, off) in enumerate(self._outs):
            if given and j in given:
                o = given[j]
                adr.append(_address(o))
            elif off is None:
                o = new(n, self._b if k == "b" else (self._g if k == "g" else self._f64))
                adr.append(_address(o))
            else:
                o = None if k == "s" else blk[off:off + n]          # (a sum: read after the run)
                adr.append(base + 8 * off)
            res.append(o)
        args = (self._array(adr, self._i64), self._prog, p.npre, self._consts, p.nslots, STRIP)
        nt = _threads.get_num_threads() if self._may_split else 1
        if nt > 1:
            strips = -(-n // STRIP)
            per = -(-strips // nt) * STRIP          # whole strips per thread
            futs = [_executor(nt).submit(self._run, lo, min(n, lo + per), *args) for lo in range(0, n, per)]
            for f in futs:
                f.result()
        else:
            self._run(0, n, *args)
        shape = self.region.shape
        return [self._sum_type(blk[off]) if k == "s" else (o if len(shape) == 1 else o.reshape(shape))
                for o, (k, off) in zip(res, self._outs)]

    def __call__(self, xp, *raws):
        flats = [self._flat(r) for r in raws]
        given = {k: flats[p] for k, p in self.reuse if flats[p].flags.writeable} if self.reuse else None
        res = self._go([_address(a) for a in flats], given)
        return res[0] if len(res) == 1 else tuple(res)

    def direct(self, srcs):
        """``run(*raws) -> tuple of outputs`` reading input k from ``raws[srcs[k]]`` (an int) or the array
        ``srcs[k]`` (a constant, its address read once): the program run with no plan around it."""
        keep = [None if type(v) is int else self._flat(v) for v in srcs]      # the constants, alive with run
        adr0 = [0 if a is None else _address(a) for a in keep]
        pos = tuple((j, v) for j, v in enumerate(srcs) if type(v) is int)
        go, flat = self._go, self._flat

        def run(*raws):
            adr, alive = adr0.copy(), [flat(raws[k]) for _, k in pos]
            for (j, _), a in zip(pos, alive):
                adr[j] = _address(a)
            return tuple(go(adr))
        run.keep = keep
        return run
