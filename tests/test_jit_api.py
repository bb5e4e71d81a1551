"""gt.jit: the cache (one trace and compile per signature, counted), static arguments, pytrees, inspection,
donation, composition with the transforms both ways, and the error cases with their documented types."""
from __future__ import annotations

import collections
import functools

import numpy as np
import pytest

import gradtape as gt

DEV = "strict"          # the replay lowering: fast to compile (the numba path: the last tests)


def _a(v, device=DEV, dtype=None):
    return gt.asarray(v, device=device, dtype=dtype)


def _eq(a, b, tol=1e-12):
    a, b = gt.to_numpy(a), gt.to_numpy(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a, b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def counted(f):
    """f, counting how often its Python body runs (once per trace)."""
    runs = []

    @functools.wraps(f)
    def g(*a, **k):
        runs.append(1)
        return f(*a, **k)
    g.runs = runs
    return g


# ---- the cache --------------------------------------------------------------------------------------------

def test_one_trace_and_compile_per_signature():
    f = counted(lambda x, y: gt.sin(x) * y + 1.0)
    jf = gt.jit(f)
    x, y = _a([1.0, 2.0]), _a([3.0, 4.0])
    for _ in range(3):
        _eq(jf(x, y), f(x, y))
    assert len(f.runs) == 1 + 3          # one trace; the rest were eager reference calls
    assert jf.cache_info() == (2, 1, 64, 1, 1, 1)
    jf(_a([1.0, 2.0, 3.0]), _a([1.0, 1.0, 1.0]))          # a new shape
    jf(_a([1.0, 2.0], dtype=gt.float32), _a([1.0, 1.0], dtype=gt.float32))   # a new dtype
    jf(_a([1.0, 2.0], device="cpu"), _a([1.0, 1.0], device="cpu"))           # a new device
    info = jf.cache_info()
    assert (info.misses, info.traces, info.compiles, info.currsize) == (4, 4, 4, 4)
    out = jf(_a([1.0, 2.0], dtype=gt.float32), _a([1.0, 1.0], dtype=gt.float32))
    assert out.dtype == gt.float32 and out.device == _a(1.0).device


def test_results_live_on_the_inputs_backend():
    jf = gt.jit(lambda x: x * 2.0)
    for dev in ("cpu", "strict"):
        assert jf(_a([1.0], device=dev)).device == _a(1.0, device=dev).device


def test_static_argnums_are_part_of_the_key():
    f = counted(lambda x, n, mode: x * n if mode == "mul" else x + n)
    jf = gt.jit(f, static_argnums=(1, 2))
    x = _a([1.0, 2.0])
    _eq(jf(x, 3, "mul"), x * 3)
    _eq(jf(x, 3, "mul"), x * 3)
    _eq(jf(x, 3, "add"), x + 3)
    _eq(jf(x, 4, "add"), x + 4)
    assert jf.cache_info().traces == 3 and jf.cache_info().hits == 1
    neg = gt.jit(lambda x, n: x * n, static_argnums=-1)
    _eq(neg(x, 2), x * 2)


def test_python_numbers_are_fixed_and_keyed():
    jf = gt.jit(lambda x, s: x * s)
    x = _a([1.0, 2.0])
    _eq(jf(x, 2.0), x * 2.0)
    _eq(jf(x, 3.0), x * 3.0)
    _eq(jf(x, 2.0), x * 2.0)
    assert jf.cache_info().traces == 2


def test_pytree_arguments_and_outputs():
    Out = collections.namedtuple("Out", "y z")

    def f(p, x, scale=1.0):
        h = gt.tanh(p["w"] * x + p["b"][0])
        return {"h": h * scale, "pair": (gt.sum(h), Out(h * 2.0, x))}
    jf = gt.jit(f)
    p = {"w": _a([1.0, 2.0]), "b": [_a(0.5), 7]}
    x = _a([0.3, -0.2])
    got, want = jf(p, x, scale=2.0), f(p, x, scale=2.0)
    assert gt.tree.structure(got) == gt.tree.structure(want)
    assert isinstance(got["pair"][1], Out)
    for a, b in zip(gt.tree.leaves(got), gt.tree.leaves(want)):
        _eq(a, b)
    jf(p, x, scale=2.0)
    jf({"w": _a([1.0, 2.0]), "b": [_a(0.5), 7]}, x, scale=2.0)
    assert jf.cache_info().traces == 1
    jf({"w": _a([1.0, 2.0]), "b": [_a(0.5), 8]}, x, scale=2.0)     # another fixed leaf
    jf({"w": _a([1.0, 2.0]), "b": (_a(0.5), 7)}, x, scale=2.0)     # another structure
    jf(p, x, scale=3.0)                                             # another keyword value
    assert jf.cache_info().traces == 4


def test_raw_arrays_are_inputs():
    jf = gt.jit(lambda x: x + 1.0)
    out = jf(np.asarray([1.0, 2.0]))
    assert isinstance(out, gt.Tensor) and out.device == "cpu"
    _eq(out, _a([2.0, 3.0], device="cpu"))


def test_lru_eviction_and_clear_cache():
    jf = gt.jit(lambda x: x * 2.0, maxsize=2)
    for n in (1, 2, 3):
        jf(gt.ones(n, device=DEV))
    assert jf.cache_info().currsize == 2
    jf(gt.ones(3, device=DEV))          # still cached
    assert jf.cache_info().traces == 3
    jf(gt.ones(1, device=DEV))          # evicted first: traced again
    assert jf.cache_info().traces == 4 and jf.cache_info().currsize == 2
    jf.clear_cache()
    assert jf.cache_info().currsize == 0
    jf(gt.ones(1, device=DEV))
    assert jf.cache_info().traces == 5


def test_later_calls_do_not_run_python():
    f = counted(lambda x: gt.exp(x) * 2.0)
    jf = gt.jit(f)
    x = _a([1.0])
    for _ in range(5):
        jf(x)
    assert len(f.runs) == 1


def test_lower_shows_the_graph_and_source():
    jf = gt.jit(lambda x: (gt.sin(x) * 1.0 - 0.0) * gt.sin(x))
    low = jf.lower(_a([1.0, 2.0]))
    assert [n.op for n in low.graph.nodes] == ["x", "sin", "multiply"]       # identities and cse applied
    assert "def replay" in low.source() and low.kind == "replay"
    assert jf.cache_info().compiles == 1
    jf(_a([3.0, 4.0]))
    assert jf.cache_info().compiles == 1 and jf.cache_info().hits == 1


def test_decorator_forms():
    @gt.jit
    def a(x):
        return x + 1.0

    @gt.jit(static_argnums=1)
    def b(x, n):
        return x * n

    c = functools.partial(gt.jit, static_argnums=(1,))(lambda x, n: x - n)
    x = _a([1.0])
    _eq(a(x), x + 1.0)
    _eq(b(x, 3), x * 3)
    _eq(c(x, 2), x - 2)
    assert a.__name__ == "a" and "gradtape.jit a" in repr(a)

    class M:
        @gt.jit
        def f(self, x):
            return x * 5.0
    m = M()
    _eq(m.f(x), x * 5.0)
    _eq(m.f(x), x * 5.0)
    assert M.f.cache_info().traces == 1        # the instance is a fixed (hashable) leaf of the key


# ---- donation -------------------------------------------------------------------------------------------------

def test_donated_arguments_cannot_be_used_afterwards():
    jf = gt.jit(lambda x, y: x * 2.0 + y, donate_argnums=0)
    x, y = _a([1.0, 2.0]), _a([3.0, 4.0])
    _eq(jf(x, y), _a([5.0, 8.0]))
    _eq(y, _a([3.0, 4.0]))                     # not donated: untouched
    with pytest.raises(RuntimeError, match=r"argument 0 of gradtape.jit <lambda> was donated"):
        x + 1.0
    with pytest.raises(RuntimeError, match="was donated"):
        gt.sin(x)
    with pytest.raises(RuntimeError, match="was donated"):
        x.shape
    with pytest.raises(RuntimeError, match="was donated"):
        gt.sum(x, axis=0)
    jf(_a([1.0, 2.0]), y)                      # a fresh array: fine
    t = _a([1.0, 2.0])
    with pytest.raises(RuntimeError, match="was donated"):
        jf(t, y), jf(t, y)


# ---- composition ----------------------------------------------------------------------------------------------

def f_scalar(x, y):
    return gt.sum(gt.sin(x) * y ** 2 + gt.exp(x * y))


def test_grad_of_jit_and_jit_of_grad():
    x, y = _a([0.3, -0.5]), _a([1.2, 0.7])
    want = gt.grad(f_scalar, argnums=(0, 1))(x, y)
    jf = gt.jit(f_scalar)
    for a, b in zip(gt.grad(jf, argnums=(0, 1))(x, y), want):
        _eq(a, b)
    for a, b in zip(gt.jit(gt.grad(f_scalar, argnums=(0, 1)))(x, y), want):
        _eq(a, b)
    v, g = gt.value_and_grad(jf)(x, y)
    _eq(v, f_scalar(x, y))
    _eq(g, want[0])
    out, f_vjp = gt.vjp(jf, x, y)
    _eq(f_vjp(gt.ones((), device=DEV))[1], want[1])


def test_the_derivative_is_jitted_and_cached():
    jf = gt.jit(f_scalar)
    x, y = _a([0.3, -0.5]), _a([1.2, 0.7])
    gt.grad(jf)(x, y)
    gt.grad(jf)(x, y)
    (bwd,) = [d for (kind, _), d in jf._derived.items() if kind == "vjp"]
    assert isinstance(bwd, type(jf)) and bwd.cache_info().traces == 1 and bwd.cache_info().hits == 1
    assert jf.cache_info().traces == 1


def test_higher_order_through_jit():
    x = _a([0.3, -0.5, 0.9])
    f = lambda x: gt.sum(gt.tanh(x) ** 3)  # noqa: E731
    jf = gt.jit(f)
    _eq(gt.grad(lambda x: gt.sum(gt.grad(jf)(x) ** 2))(x), gt.grad(lambda x: gt.sum(gt.grad(f)(x) ** 2))(x), 1e-10)
    _eq(gt.hessian(jf)(x), gt.hessian(f)(x), 1e-10)
    _eq(gt.jit(gt.hessian(f))(x), gt.hessian(f)(x), 1e-10)
    _eq(gt.grad(lambda x: gt.sum(gt.jit(gt.grad(jf))(x)))(x), gt.grad(lambda x: gt.sum(gt.grad(f)(x)))(x), 1e-10)


def test_tensor_backward_through_jit():
    x = _a([0.3, -0.5]).requires_grad_()
    jf = gt.jit(lambda x: gt.sum(x ** 3))
    jf(x).backward()
    _eq(x.grad, 3 * _a([0.3, -0.5]) ** 2)


def test_vmap_of_jit_and_jit_of_vmap():
    xs = _a([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    f = counted(lambda x, w: gt.sum(gt.sin(x) * x * w))
    w = _a([1.0, -2.0])
    want = gt.stack([f(xs[i], w) for i in range(3)])
    jf = gt.jit(f)
    for _ in range(3):          # one compiled function of the batched values, whichever vmap call
        _eq(gt.vmap(jf, in_axes=(0, None))(xs, w), want)
    (vm,) = jf._derived.values()
    assert vm.cache_info().traces == 1 and vm.cache_info().hits == 2 and jf.cache_info().traces == 0
    _eq(gt.jit(gt.vmap(f, in_axes=(0, None)))(xs, w), want)
    g = lambda x: gt.sum(gt.sin(x) * x)  # noqa: E731
    _eq(gt.vmap(gt.grad(gt.jit(g)))(xs), gt.vmap(gt.grad(g))(xs))          # differentiated: op by op
    _eq(gt.vmap(gt.jit(gt.grad(g)))(xs), gt.vmap(gt.grad(g))(xs))          # per-example gradients, compiled
    x3 = _a(np.arange(12.0).reshape(2, 3, 2) / 10)
    _eq(gt.vmap(gt.vmap(gt.jit(g)))(x3), gt.vmap(gt.vmap(g))(x3))
    h = lambda w: gt.sum(gt.vmap(gt.jit(lambda w, x: gt.sum(w * x) ** 2), in_axes=(None, 0))(w, xs))  # noqa: E731
    h0 = lambda w: gt.sum(gt.vmap(lambda w, x: gt.sum(w * x) ** 2, in_axes=(None, 0))(w, xs))  # noqa: E731
    _eq(gt.hessian(h)(w), gt.hessian(h0)(w))


def test_jit_inside_trace_and_jit_is_inlined():
    inner = gt.jit(lambda x: gt.sin(x) * 2.0)
    g = gt.trace(lambda x: inner(x) + 1.0, _a([1.0]))
    assert [n.op for n in g.nodes] == ["x", "sin", "multiply", "add"]
    outer = gt.jit(lambda x: inner(inner(x)))
    _eq(outer(_a([0.5])), gt.sin(gt.sin(_a([0.5])) * 2.0) * 2.0)
    assert inner.cache_info().traces == 0


def test_integer_inputs_and_outputs_under_grad():
    f = lambda x, i: (gt.sum(gt.take(x, i) ** 2), gt.argmax(x))  # noqa: E731
    jf = gt.jit(f)
    x, i = _a([1.0, 2.0, 3.0]), _a([0, 2, 2])
    g = gt.grad(lambda x: jf(x, i)[0])(x)
    _eq(g, gt.grad(lambda x: f(x, i)[0])(x))
    _eq(jf(x, i)[1], gt.argmax(x))


def test_closures_are_constants_and_a_parameter_read_from_outside_warns():
    w = _a([1.0, 2.0])
    jf = gt.jit(lambda x: x * w)
    _eq(jf(_a([1.0, 1.0])), _a([1.0, 2.0]))
    w[0] = 5.0                                   # a closure is a constant of the compiled graph (as in JAX)
    _eq(jf(_a([1.0, 1.0])), _a([1.0, 2.0]))
    p = _a([1.0, 2.0]).requires_grad_()
    with pytest.warns(RuntimeWarning, match="reads tensors that require grad from outside its arguments.*1 constant"):
        gt.jit(lambda x: gt.sum(x * p))(_a([1.0, 1.0]))
    jg = gt.jit(lambda x, p: gt.sum(x * p))       # as an argument: differentiated
    _eq(gt.grad(jg, argnums=1)(_a([3.0, 4.0]), p), _a([3.0, 4.0]))


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_complex_gradients_in_pytorchs_convention(device):
    a = _a([1 + 1j, 0.5 - 2j], device=device)
    f = lambda a: gt.sum(gt.real(gt.sin(a) * gt.conj(a)))  # noqa: E731
    jf = gt.jit(f)
    _eq(gt.grad(jf)(a), gt.grad(f)(a))
    _eq(gt.jit(gt.grad(f))(a), gt.grad(f)(a))
    h = lambda g: (lambda a: gt.sum(gt.real(gt.grad(g)(a) * a)))  # noqa: E731
    _eq(gt.grad(h(jf))(a), gt.grad(h(f))(a), 1e-10)
    x = _a([0.3, -1.2], device=device)
    k = lambda x: gt.sin(x) * (1 + 2j)  # noqa: E731 (a complex output of a real input)
    out, back = gt.vjp(gt.jit(k), x)
    _, back0 = gt.vjp(k, x)
    ct = _a([1 - 1j, 2 + 0.5j], device=device)
    _eq(back(ct)[0], back0(ct)[0])


def test_a_module_argument_is_a_pytree_of_inputs():
    net = gt.nn.Sequential(gt.nn.Linear(3, 4, dtype=gt.float64), gt.nn.Linear(4, 2, dtype=gt.float64))
    x = gt.ones((5, 3), dtype=gt.float64)
    f = lambda net, x: gt.sum(gt.tanh(net(x)) ** 2)  # noqa: E731
    loss = gt.jit(f)
    _eq(loss(net, x).detach(), f(net, x).detach())
    for a, b in zip(gt.tree.leaves(gt.grad(loss)(net, x)), gt.tree.leaves(gt.grad(f)(net, x))):
        _eq(a, b)
    assert loss.cache_info().traces == 1


# ---- errors -----------------------------------------------------------------------------------------------------

def test_errors_have_their_documented_types():
    x = _a([1.0])
    with pytest.raises(TypeError, match="static argument 1 .* must be hashable"):
        gt.jit(lambda x, l: x, static_argnums=1)(x, [1, 2])
    with pytest.raises(TypeError, match="must be callable"):
        gt.jit(3)
    with pytest.raises(TypeError, match="static_argnums must be an int or a tuple of ints"):
        gt.jit(lambda x: x, static_argnums="a")
    with pytest.raises(ValueError, match="maxsize must be a positive int"):
        gt.jit(lambda x: x, maxsize=0)
    with pytest.raises(TypeError, match="different backends or devices"):
        gt.jit(lambda x, y: x + y)(x, _a([1.0], device="cpu"))
    with pytest.raises(TypeError, match="is not hashable"):
        gt.jit(lambda x, d: x)(x, {"f": object.__new__(type("U", (), {"__hash__": None}))})


# ---- the numba lowering (NumPy) ---------------------------------------------------------------------------------

def test_on_numpy_with_numba():
    pytest.importorskip("numba")
    f = lambda x: gt.sum(gt.tanh(x) * gt.exp(-x) + x ** 2)  # noqa: E731
    jf = gt.jit(f)
    x = gt.linspace(-1.0, 1.0, 64)
    _eq(jf(x), f(x), 1e-10)
    _eq(gt.grad(jf)(x), gt.grad(f)(x), 1e-10)
    _eq(gt.jit(gt.grad(f))(x), gt.grad(f)(x), 1e-10)


def test_tracing_a_gradient_keeps_no_more_memory_than_eager():
    """Issue 13: tracing frees as it goes (tracemalloc bytes, not time: benchmarks/jit_trace.py times it)."""
    from benchmarks.jit_trace import trace_vs_eager
    r = trace_vs_eager(5_000, 1)
    assert r["peak_bytes"]["eager"] > 3 * 2**20           # the chain's saved values: ~100 arrays of 40 kB
    assert r["memory_ratio"] <= 1.1, r                    # (it was 2.9x: every intermediate kept alive)
