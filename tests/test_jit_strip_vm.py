"""gt.jit's strip interpreter (gradtape/_jit/strip_vm.py): large float64 regions with many vecmath calls run
as a program of one compiled numba function.

The interpreter normally takes only regions with > VM_MAX_CALLS vecmath calls of >= VM_MIN elements or
>= VM_TAPE_WORK calls x elements of >= VM_TAPE_MIN (the smaller ones summing an output themselves,
region.sums); the ``forced`` fixture sends every float64 region to it (the interpreter of every
opcode), so the op table's elementwise rows (values, the fused forward + backward of ``jit(grad)``, second
order) run through every opcode, compared with eager. Then the edges: sin/cos arguments beyond vecmath's
range (redone with libm), signed zero and nan constants, a single-element input, an output that is an
input or a constant, strided and read-only inputs, threads against one thread, sums, the output block, and
the 200-op chain itself at its real size classes. The differential fuzzer runs through it too
(``python -m tests.difftest.jit --backend cpu --strip-vm [--specialize]``; 40 programs here).
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import gradtape as gt
from test_ops import OPS, B, U, _data

pytest.importorskip("numba")

from gradtape._jit import numba_lower, strip_vm, threads  # noqa: E402


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setattr(numba_lower, "VM_TAPE_WORK", 0)
    monkeypatch.setattr(numba_lower, "VM_TAPE_MIN", 0)
    monkeypatch.setattr(strip_vm, "SPECIALIZE", False)      # one interpreter of every opcode (compiled once)
    monkeypatch.setattr(numba_lower, "VM_MAX_CALLS", -1)


def _tape(jf, *args):
    """The strip-interpreter kernels of jf's executable for args."""
    return [k for k in jf.lower(*args)._entry.exe.kernels if isinstance(k, strip_vm.TapeKernel)]


def _close(a, b, tol=1e-11):
    a, b = gt.to_numpy(a), gt.to_numpy(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


_ELEMENTWISE = [op for op in OPS if op.shapes in ([(s,) for s in U], B)]


def _programs(jf, *args):
    return [t.prog for t in _tape(jf, *args)]


@pytest.mark.parametrize("op", _ELEMENTWISE, ids=lambda op: op.name)
def test_op_table_rows_through_the_interpreter(forced, op):
    rng = np.random.default_rng(zlib.crc32(repr(op.name).encode()) % 2**32)
    shapes = [(64,)] * len(op.shapes[0])
    if len(shapes) == 2:
        shapes[1] = ()                      # a single-element input (filled once)
    args = [gt.asarray(a) for a in _data(op, shapes, rng)]
    nums = tuple(k for k, a in enumerate(args) if gt.isdtype(a.dtype, "real floating"))
    jf = gt.jit(op.fn)
    _close(jf(*args), op.fn(*args))
    w = gt.asarray(rng.uniform(0.5, 1.5, size=(64,)))

    def loss(*a):                           # (the sin: a region even where op's derivative is a constant)
        return gt.sum(gt.sin(op.fn(*a)) * w)
    g_jit = gt.jit(gt.grad(loss, argnums=nums))
    for a, b in zip(g_jit(*args), gt.grad(loss, argnums=nums)(*args)):
        _close(a, b)
    assert _tape(g_jit, *args)                  # (the forward alone may be one op: no region)
    if op.order >= 2:
        v = [gt.asarray(rng.uniform(-1, 1, size=args[k].shape)) for k in nums]

        def dot(*a):
            return sum(gt.sum(g * u) for g, u in zip(gt.grad(loss, argnums=nums)(*a), v))
        for a, b in zip(gt.jit(gt.grad(dot, argnums=nums))(*args), gt.grad(dot, argnums=nums)(*args)):
            _close(a, b, 1e-9)


def _logic(x, y):
    m = (x > y) & ~gt.isnan(x) | (x == 0.5)
    z = gt.where(m, gt.sin(x) * y, -gt.cos(y))
    z = gt.where(gt.isfinite(z) & (z != 0.25), z, 0.0) + gt.astype(x <= y, gt.float64)
    z = gt.where((x >= 0.1) | gt.isinf(y) | (x < -1.5), z, gt.floor(z) + gt.ceil(x) - gt.trunc(y) + gt.sign(x))
    return gt.copysign(z, y) + gt.logaddexp(x, y) + gt.remainder(x, y + 3.0) + gt.expm1(x) + gt.log(y + 3.0)


def test_bool_ops_and_where_through_the_interpreter(forced):
    rng = np.random.default_rng(3)
    x, y = gt.asarray(rng.uniform(-2, 2, 500)), gt.asarray(rng.uniform(-2, 2, 500))
    jf = gt.jit(_logic)
    _close(jf(x, y), _logic(x, y))
    assert _tape(jf, x, y)


def test_every_opcode_runs_in_some_program(forced):
    """The op table's elementwise rows (forward, and forward + backward) and the logic function above use every
    interpreter opcode: each is checked against eager by the tests above."""
    used = set()
    rng = np.random.default_rng(5)
    for op in _ELEMENTWISE:
        args = [gt.asarray(a) for a in _data(op, [(8,)] * len(op.shapes[0]), rng)]
        loss = lambda *a, f=op.fn: gt.sum(gt.sin(f(*a)))  # noqa: E731
        for jf in (gt.jit(op.fn), gt.jit(gt.grad(loss, argnums=tuple(range(len(args)))))):
            jf(*args)
            used.update(strip_vm.OPS[r[0]] for p in _programs(jf, *args) for r in p.rows[p.npre:])
    x = gt.asarray(rng.uniform(-2, 2, 8))
    jf = gt.jit(_logic)
    jf(x, x * 0.5)
    used.update(strip_vm.OPS[r[0]] for p in _programs(jf, x, x * 0.5) for r in p.rows[p.npre:])
    jf = gt.jit(lambda v: gt.sum(gt.sin(v) * v))        # a small region summing its output (region.sums)
    _close(jf(x), np.sum(np.sin(gt.to_numpy(x)) * gt.to_numpy(x)), 1e-14)
    used.update(strip_vm.OPS[r[0]] for p in _programs(jf, x) for r in p.rows[p.npre:])
    x32 = gt.astype(x, gt.float32)                      # float32 loads and stores (loadg, storeg)
    jf = gt.jit(lambda v: gt.sin(v) * 2.0)
    _close(jf(x32), gt.sin(x32) * 2.0, 1e-6)
    used.update(strip_vm.OPS[r[0]] for p in _programs(jf, x32) for r in p.rows[p.npre:])
    p, _ = _direct_program()
    used.update(strip_vm.OPS[r[0]] for r in p.rows[p.npre:])
    assert not set(strip_vm.OPS) - used, sorted(set(strip_vm.OPS) - used)


def _direct_program():
    """A program of the logic statements no fused region emits today (logical_or/and/not of bool arrays are
    graph functions without a float type, left to the backend): made from a ScalarNS directly; (program,
    reference function)."""
    from gradtape._jit.scalar import ScalarNS
    ns = ScalarNS("py", "float64")
    x, y, m = ns.arg("x0"), ns.arg("x1"), ns.arg("x2", "b")
    a = ns.astype(x, "bool")                                    # ne0
    b = ns.logical_or(a, ns.less(x, y))                         # or
    c = ns.logical_not(ns.logical_and(b, m))                    # and, not
    out = ns.where(c, ns.astype(b, "float64") * y, x - 1.0)     # tof
    prog = strip_vm.program(ns, ["x0", "x1", "x2"], ["full", "one", "full"], ["f", "f", "b"], [out, c], ["f", "b"])

    def ref(xv, yv, mv):
        bv = (xv != 0) | (xv < yv)
        cv = ~(bv & mv)
        return np.where(cv, bv.astype(np.float64) * yv, xv - 1.0), cv
    return prog, ref


def test_logic_opcodes_run_directly():
    from gradtape import backends
    prog, ref = _direct_program()
    run, _ = strip_vm.interpreter(backends.get("cpu"))
    rng = np.random.default_rng(6)
    n = 1000
    xv = np.where(rng.uniform(size=n) < 0.2, 0.0, rng.uniform(-2, 2, n))
    yv, mv = np.array([0.3]), rng.uniform(size=n) < 0.5
    out, cout = np.empty(n), np.empty(n, dtype=bool)
    adr = np.array([a.__array_interface__["data"][0] for a in (xv, yv, mv, out, cout)], dtype=np.int64)
    rows = np.asarray(prog.rows, dtype=np.int64)
    run(0, n, adr, rows, prog.npre, np.asarray(prog.consts or [0.0]), prog.nslots, strip_vm.STRIP)
    want, cwant = ref(xv, yv[0], mv)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(cout, cwant)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_trig_far_arguments_are_redone_with_libm(forced):
    x = np.concatenate([np.linspace(-3, 3, 300), [1e7, -3e9, 2.0 ** 60, 1e300, np.inf, -np.inf, np.nan]])
    f = lambda v: gt.sin(v) + gt.cos(v) * 2.0  # noqa: E731
    jf = gt.jit(f)
    got = gt.to_numpy(jf(gt.asarray(x)))
    assert _tape(jf, gt.asarray(x))
    np.testing.assert_allclose(got[300:], np.sin(x[300:]) + np.cos(x[300:]) * 2.0, rtol=1e-15, atol=0)
    np.testing.assert_allclose(got[:300], np.sin(x[:300]) + np.cos(x[:300]) * 2.0, rtol=1e-14, atol=1e-15)


def test_signed_zero_and_nan_constants_stay_apart(forced):
    f = lambda v: (gt.sin(v) * 0.0, gt.sin(v) * -0.0, v * math.nan + 1.0, gt.exp(v) * 0.0 - 0.0)  # noqa: E731
    x = gt.asarray(np.linspace(0.1, 1, 50))
    jf = gt.jit(f)
    outs = jf(x)
    assert _tape(jf, x)
    for a, b in zip(outs, f(x)):
        a, b = gt.to_numpy(a), gt.to_numpy(b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
        np.testing.assert_array_equal(a, b)


def test_outputs_that_are_inputs_or_constants(forced):
    def f(x, c):
        return x, gt.sin(x) + c, gt.zeros_like(x) + 2.5 * 0.0 + 3.0
    x, c = gt.asarray(np.linspace(-1, 1, 40)), gt.asarray(0.25)
    jf = gt.jit(f)
    for a, b in zip(jf(x, c), f(x, c)):
        _close(a, b)


def test_strided_inputs(forced):
    base = np.random.default_rng(4).uniform(-1, 1, (40, 6))
    x = gt.asarray(base)[:, 1]
    y = gt.asarray(base)[::2, ::3].reshape((-1,))
    f = lambda a, b: gt.tanh(a * 2.0) * gt.exp(b) - gt.sin(b)  # noqa: E731
    _close(gt.jit(f)(x, y), f(x, y))


def _chain(c, n_cycles=50):
    def f(x):
        for _ in range(n_cycles):
            x = gt.tanh(gt.sin(x)) * 1.01 + c
        return gt.sum(x)
    return f


def test_the_chain_gradient_takes_the_interpreter_unforced():
    """The 200-op chain's gradient at 8,192 elements (> VM_MIN, 150 vecmath calls): one interpreter program
    computing forward and backward, equal to eager to ~1e-13."""
    rng = np.random.default_rng(0)
    n = 8192
    c = gt.asarray(rng.uniform(-0.5, 0.5, n))
    x = gt.asarray(rng.uniform(-2, 2, n))
    vg = gt.jit(gt.value_and_grad(_chain(c)))
    v, g = vg(x)
    v0, g0 = gt.value_and_grad(_chain(c))(x)
    (t,) = _tape(vg, x)
    assert t.prog.vm_calls >= 150, t.prog.vm_calls
    assert "sin(" in vg.lower(x).source() and "strip interpreter program" in vg.lower(x).source()
    _close(v, v0, 1e-12)
    _close(g, g0, 1e-11)


def test_threads_split_strips_exactly(monkeypatch):
    monkeypatch.setattr(strip_vm, "PAR_WORK", 1)
    rng = np.random.default_rng(1)
    n = 10_000                                          # strips of 256: an uneven split
    c = gt.asarray(rng.uniform(-0.5, 0.5, n))
    x = gt.asarray(rng.uniform(-2, 2, n))
    old = threads.get_num_threads()
    try:
        gt.set_num_threads(1)
        one = gt.jit(gt.grad(_chain(c, 10)))(x)
        gt.set_num_threads(2)
        vg = gt.jit(gt.grad(_chain(c, 10)))
        two = vg(x)
    finally:
        gt.set_num_threads(old)
    assert _tape(vg, x)
    np.testing.assert_array_equal(gt.to_numpy(one), gt.to_numpy(two))


def test_program_slots_are_reused_and_constants_never(forced):
    """A program of a long chain needs few slots (freed after last use), and no row writes a constant's slot."""
    x = gt.asarray(np.linspace(-1, 1, 30))
    jf = gt.jit(gt.grad(_chain(gt.asarray(0.3), 20)))
    jf(x)
    (t,) = _tape(jf, x)
    p = t.prog
    const = {r[1] for r in p.rows[:p.npre]}
    assert not const & {r[1] for r in p.rows[p.npre:] if strip_vm.OPS[r[0]] != "store"}
    assert p.nslots < 60, p.nslots                      # 20 cycles keep 40 values for the backward pass
    assert "out0[i] = s" in t.source


def test_differential_programs_through_the_interpreter():
    """40 fixed programs of the differential fuzzer through gt.jit on NumPy with every float64 region run by
    the interpreter, against PyTorch/JAX. Longer: python -m tests.difftest.jit --backend cpu --strip-vm --n N."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from tests.difftest import jit as DJ
    with DJ.strip_vm_forced():
        counts, bad = DJ.run(range(200, 240), "general", "cpu")
    assert not bad, f"{len(bad)} programs differ through the interpreter\n\n{bad[0].report()}"
    assert counts["ok"] >= 30, counts


def test_the_small_chain_gradient_takes_the_interpreter_unforced():
    """At 16 elements the chain's gradient (150 vecmath calls x 16 >= VM_TAPE_WORK) is one program too, summing
    the loss itself (an "s" output), on an interpreter of its own opcodes, called directly (no plan)."""
    rng = np.random.default_rng(2)
    c = gt.asarray(rng.uniform(-0.5, 0.5, 16))
    x = gt.asarray(rng.uniform(-2, 2, 16))
    vg = gt.jit(gt.value_and_grad(_chain(c)))
    v, g = vg(x)
    v0, g0 = gt.value_and_grad(_chain(c))(x)
    _close(v, v0, 1e-13)
    _close(g, g0, 1e-12)
    (t,) = _tape(vg, x)
    assert t.prog.out_kinds.count("s") == 1 and "sum" in t.prog.ops
    assert set(t.prog.ops) == {"load", "store", "sum", "mul", "add", "sub", "sin", "cos", "tanh"}, t.prog.ops
    assert t._run is strip_vm.interpreter(t.backend, t.prog.ops)[0]
    assert hasattr(vg.lower(x)._entry.exe.fn, "keep")          # TapeKernel.direct's run: no plan around it
    strided = gt.asarray(np.repeat(gt.to_numpy(x), 2)[::2])         # a strided argument: copied, same result
    _close(vg(strided)[1], g, 0)


def test_specialized_interpreter_equals_the_full_one():
    """An interpreter of a program's opcodes has only their branches and computes what the full one does."""
    from gradtape import backends
    prog, ref = _direct_program()
    be = backends.get("cpu")
    small, _ = strip_vm.interpreter(be, prog.ops)
    full, _ = strip_vm.interpreter(be)
    src = strip_vm.interpreter_source(prog.ops)
    assert "# or" in src and "# tanh" not in src and "_vm_sin_a" not in src
    rng = np.random.default_rng(7)
    n = 600
    xv, yv, mv = rng.uniform(-2, 2, n), np.array([0.25]), rng.uniform(size=n) < 0.5
    got = []
    for run in (small, full):
        out, cout = np.empty(n), np.empty(n, dtype=bool)
        adr = np.array([a.__array_interface__["data"][0] for a in (xv, yv, mv, out, cout)], dtype=np.int64)
        run(0, n, adr, np.asarray(prog.rows, dtype=np.int64), prog.npre, np.asarray(prog.consts or [0.0]),
            prog.nslots, strip_vm.STRIP)
        got.append((out, cout))
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_array_equal(got[0][1], got[1][1])
    np.testing.assert_array_equal(got[0][0], ref(xv, yv[0], mv)[0])


@pytest.mark.parametrize("shape", [(4, 8), (33,), (1,)])
def test_sums_in_the_interpreter_across_strips_and_shapes(forced, shape, monkeypatch):
    """A region summing outputs itself: over several strips (STRIP=16 here), 2-D, single element; a sum of
    an input and of a constant output too; the value and gradient against eager."""
    monkeypatch.setattr(strip_vm, "STRIP", 16)
    rng = np.random.default_rng(3)
    x = gt.asarray(rng.uniform(-1, 1, shape))

    def f(v):
        return gt.sum(gt.exp(v) * 2.0) + gt.sum(v) * 0.5 + gt.sum(gt.ones_like(v) * 3.0)
    vg = gt.jit(gt.value_and_grad(f))
    v, g = vg(x)
    v0, g0 = gt.value_and_grad(f)(x)
    _close(v, v0, 1e-13)
    _close(g, g0, 1e-13)
    ts = _tape(vg, x)
    assert ts and any("s" in t.prog.out_kinds for t in ts)


def test_read_only_arguments_and_their_addresses():
    """The interpreter reads arrays by address: a read-only argument (no writable buffer view) gives the same
    address through the fallback, and the same result."""
    rng = np.random.default_rng(4)
    xv = rng.uniform(-2, 2, 16)
    ro = xv.copy()
    ro.setflags(write=False)
    assert strip_vm._address(ro) == ro.ctypes.data and strip_vm._address(xv) == xv.ctypes.data
    assert strip_vm._address(xv[3:]) == xv.ctypes.data + 24
    c = gt.asarray(rng.uniform(-0.5, 0.5, 16))
    vg = gt.jit(gt.value_and_grad(_chain(c)))
    a, b = vg(gt.asarray(xv)), vg(gt.asarray(ro))
    assert _tape(vg, gt.asarray(ro))
    _close(a[0], b[0], 0)
    _close(a[1], b[1], 0)


@pytest.mark.parametrize("n", [8, strip_vm.BLOCK_MAX + 5])
def test_float_outputs_share_one_block_only_when_small(forced, n):
    """Small float outputs come from one allocation (one address to read); large ones each have their own
    (the plan frees each after its last use), and none overlaps another."""
    x = gt.asarray(np.linspace(-1, 1, n))
    jf = gt.jit(lambda v: (gt.sin(v) * 2.0, gt.cos(v) + 1.0))
    a, b = (gt.to_numpy(t) for t in jf(x))
    assert _tape(jf, x)
    np.testing.assert_allclose(a, np.sin(gt.to_numpy(x)) * 2.0, rtol=1e-14)
    np.testing.assert_allclose(b, np.cos(gt.to_numpy(x)) + 1.0, rtol=1e-14)
    assert not np.shares_memory(a, b)
    shared = a.base is not None and a.base is b.base
    assert shared == (n <= strip_vm.BLOCK_MAX), (n, a.base is None)


def test_the_small_chain_second_order_and_vmap_through_the_interpreter():
    """jit of a gradient of the small chain's gradient (second order), grad of a jitted chain, and vmap of
    jit(grad): each through interpreter programs, equal to eager."""
    rng = np.random.default_rng(8)
    c = gt.asarray(rng.uniform(-0.5, 0.5, 16))
    x = gt.asarray(rng.uniform(-2, 2, 16))
    f = _chain(c)

    def dot(v):
        return gt.sum(gt.grad(f)(v) * v)
    jh = gt.jit(gt.grad(dot))
    _close(jh(x), gt.grad(dot)(x), 1e-11)
    assert _tape(jh, x)
    _close(gt.grad(gt.jit(f))(x), gt.grad(f)(x), 1e-12)
    xs = gt.stack([x, x * 0.5])
    _close(gt.vmap(gt.jit(gt.grad(f)))(xs)[1], gt.grad(f)(x * 0.5), 1e-12)


@pytest.mark.parametrize("n, cycles, tape", [(2, 400, False), (16, 50, True), (16, 4, False)])
def test_which_small_regions_take_the_interpreter(n, cycles, tape):
    """Unforced: from VM_TAPE_MIN elements and VM_TAPE_WORK calls x elements (the libm kernel is faster below:
    a 2-element chain of 1,200 calls), with the same results either way."""
    c = gt.asarray(np.full(n, 0.1))
    x = gt.asarray(np.linspace(0.1, 0.5, n))
    vg = gt.jit(gt.value_and_grad(_chain(c, cycles)))
    v, g = vg(x)
    assert bool(_tape(vg, x)) == tape
    v0, g0 = gt.value_and_grad(_chain(c, cycles))(x)
    _close(v, v0, 1e-12)
    _close(g, g0, 1e-11)


# ---- float32 regions: computed in float64, each output rounded once ------------------------------------------

@pytest.mark.parametrize("f", [lambda x: x * 0.1, lambda x: x / 3.0, lambda x: x + 0.7, lambda x: 0.3 - x],
                         ids=["mul", "div", "add", "rsub"])
def test_float32_basic_op_is_bitwise_eager(forced, f):
    """One +, -, *, / of float32 values computed in float64 and rounded once is the float32 IEEE result (53 >= 2 *
    24 + 2 bits), with the literal rounded to float32 first as the eager op rounds it: bitwise equal."""
    x = gt.asarray(np.random.default_rng(3).uniform(-5, 5, 300).astype(np.float32))
    jf = gt.jit(lambda x: (f(x), x > 0.0))        # (two nodes: a region)
    got, want = gt.to_numpy(jf(x)[0]), gt.to_numpy(f(x))
    assert got.dtype == np.float32
    (t,) = _tape(jf, x)
    assert "loadg" in t.prog.ops and "storeg" in t.prog.ops
    np.testing.assert_array_equal(got, want)


def test_float32_chain_gradient_runs_on_the_interpreter_unforced():
    """The 200-op chain in float32 (150 vecmath calls): a program (it was scalar libm, 8x NumPy's time), its
    value and gradient within float32 rounding of the float64 ones; a single-element float32 input, a bool
    output and a float32 sum on the way."""
    rng = np.random.default_rng(4)
    c64, x64 = rng.uniform(-0.5, 0.5, 1000), rng.uniform(-2, 2, 1000)
    f = _chain(gt.asarray(c64.astype(np.float32)), 50)
    vg = gt.jit(gt.value_and_grad(f))
    x = gt.asarray(x64.astype(np.float32))
    v, g = vg(x)
    (t,) = _tape(vg, x)
    assert {"loadg", "storeg", "sin", "tanh"} <= set(t.prog.ops) and t.prog.vm_calls > 16
    assert g.dtype == gt.float32 and v.dtype == gt.float32
    v64, g64 = gt.value_and_grad(_chain(gt.asarray(c64.astype(np.float32).astype(np.float64)), 50))(
        gt.asarray(x64.astype(np.float32).astype(np.float64)))
    np.testing.assert_allclose(gt.to_numpy(g), gt.to_numpy(g64), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(float(v), float(v64), rtol=1e-6)
    v32, g32 = gt.value_and_grad(f)(x)              # eager float32 (rounded after every op)
    np.testing.assert_allclose(gt.to_numpy(g), gt.to_numpy(g32), rtol=1e-4, atol=1e-5)


def test_float32_single_element_input_bool_output_and_sum(forced):
    x = gt.asarray(np.linspace(-2, 2, 50).astype(np.float32))
    s = gt.asarray(np.float32(0.37))

    def f(x, s):
        y = gt.tanh(x * s) + gt.exp(-x)
        return y, y > 0.5, gt.sum(gt.sin(y))
    jf = gt.jit(f)
    got, want = jf(x, s), f(x, s)
    (t,) = _tape(jf, x, s)
    assert t.prog.rows[0][0] == 3 or any(r[0] == 3 for r in t.prog.rows[:t.prog.npre])   # the float32 fill row
    np.testing.assert_allclose(gt.to_numpy(got[0]), gt.to_numpy(want[0]), rtol=3e-7)
    assert got[1].dtype == gt.bool
    assert np.sum(gt.to_numpy(got[1]) != gt.to_numpy(want[1])) == 0
    assert got[2].dtype == gt.float32
    np.testing.assert_allclose(float(got[2]), float(want[2]), rtol=1e-5)
