"""gt.vmap (issue 11, part 2): values equal to a Python loop of per-example calls, for the elementwise,
reduction and shape primitives, the non-differentiable functions and the creation functions, over random
in_axes/out_axes; nested vmap; grad/jacobian/jvp of vmap; the tracer's Python behaviour; the error cases,
each with its documented type. Indexing is in tests/test_vmap_indexing.py."""
import numpy as np
import pytest

import gradtape as gt
from gradtape._autodiff import vmap as V

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def backend(device):
    """Every test on every backend (conftest's ``device``: NumPy, array-api-strict, CuPy where present)."""
    yield device


def rand(*shape):
    return gt.asarray(RNG.standard_normal(shape), device=gt.get_default_device())


def _example(x, i, axis):
    """Example i of x along axis (None: x itself), for trees of tuples/lists/dicts (prefix axes)."""
    if isinstance(axis, dict):
        return {k: _example(x[k], i, axis[k]) for k in x}
    if isinstance(axis, (tuple, list)):
        return type(x)(_example(a, i, b) for a, b in zip(x, axis))
    if isinstance(x, dict):
        return {k: _example(v, i, axis) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_example(v, i, axis) for v in x)
    if axis is None:
        return x
    return gt.asarray(np.take(gt.to_numpy(x), i, axis=axis), device=x.device)


def _stack(outs, axis):
    first = outs[0]
    if isinstance(first, dict):
        return {k: _stack([o[k] for o in outs], axis[k] if isinstance(axis, dict) else axis) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([o[j] for o in outs], axis[j] if isinstance(axis, (tuple, list)) else axis)
                           for j in range(len(first)))
    return np.stack([gt.to_numpy(gt.asarray(o)) for o in outs], axis=axis)


def loop(f, args, in_axes=0, out_axes=0, size=None):
    """The reference: f per example, stacked."""
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    if size is None:
        size = next(np.shape(gt.to_numpy(leaf))[ax] for a, ax in zip(args, axes)
                    for leaf, ax in _leaf_axes(a, ax) if ax is not None)
    outs = [f(*(_example(a, i, ax) for a, ax in zip(args, axes))) for i in range(size)]
    return _stack(outs, out_axes)


def _leaf_axes(x, axis):
    if isinstance(axis, dict):
        return [p for k in x for p in _leaf_axes(x[k], axis[k])]
    if isinstance(axis, (tuple, list)):
        return [p for a, b in zip(x, axis) for p in _leaf_axes(a, b)]
    if isinstance(x, dict):
        return [p for v in x.values() for p in _leaf_axes(v, axis)]
    if isinstance(x, (tuple, list)):
        return [p for v in x for p in _leaf_axes(v, axis)]
    return [(x, axis)]


def same(got, want, rtol=1e-12, atol=1e-12):
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            same(got[k], want[k], rtol, atol)
        return
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            same(a, b, rtol, atol)
        return
    assert type(got) is gt.Tensor, type(got)      # no tracer leaks out
    g = gt.to_numpy(got)
    assert g.shape == want.shape, (g.shape, want.shape)
    assert g.dtype == want.dtype, (g.dtype, want.dtype)
    np.testing.assert_allclose(g, want, rtol=rtol, atol=atol)


def check(f, *args, in_axes=0, out_axes=0, **kw):
    same(gt.vmap(f, in_axes, out_axes)(*args), loop(f, args, in_axes, out_axes), **kw)


# ---- elementwise -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_elementwise_random_axes(seed):
    """Unary and broadcasting binary ops over random in_axes (negative too) and out_axes."""
    rng = np.random.default_rng(seed)
    B = 3
    ax_x, ax_y = int(rng.integers(-3, 3)), int(rng.integers(-2, 2))
    xs = [4, 5]
    xs.insert(ax_x % 3, B)
    ys = [5]
    ys.insert(ax_y % 2, B)
    x, y = rand(*xs), rand(*ys)
    out_ax = int(rng.integers(-3, 3))

    def f(x, y):
        return gt.tanh(gt.sin(x) * y + 2.0) - gt.exp(y) / (1 + x * x) + gt.maximum(x, y) ** 2

    check(f, x, y, in_axes=(ax_x, ax_y), out_axes=out_ax)


def test_elementwise_unbatched_operands_and_ranks():
    """Batched operands of lower per-example rank, unbatched operands of higher rank, Python scalars."""
    x, y, c = rand(3, 4), rand(3, 2, 4), rand(2, 4)
    check(lambda x, y, c: x * y + c - 1.5, x, y, c, in_axes=(0, 0, None))
    check(lambda x, c: gt.atan2(x, c) + gt.hypot(c, x), x, c, in_axes=(0, None))
    check(lambda x: 2.0 ** x + gt.abs(x) + gt.nn.relu(x) + gt.clip(x, -0.5, 0.5), x)
    s = rand(3)                      # 0-d examples
    check(lambda s, y: s * y + gt.square(s), s, y)


def test_special_and_where():
    x, y = gt.asarray(RNG.uniform(0.1, 2.0, (3, 4)), device=gt.get_default_device()), rand(4)
    check(lambda x, y: gt.special.xlogy(x, y * y) + gt.special.cbrt(x), x, y, in_axes=(0, None))
    c = rand(3, 4) > 0
    check(lambda c, x, y: gt.where(c, x, y), c, x, y, in_axes=(0, 0, None))
    check(lambda c, x: gt.where(c, x, 0.0), c, x, in_axes=(0, None))


# ---- reductions ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "var", "std"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, -3)])
def test_reductions(op, axis):
    x = rand(4, 2, 3, 5)
    f = getattr(gt, op)
    check(lambda x: f(x, axis=axis), x, in_axes=1)
    check(lambda x: f(x, axis=axis, keepdims=True), x, in_axes=-1, out_axes=1)


def test_scans_and_composites():
    x = rand(3, 4, 5)
    check(lambda x: gt.cumulative_sum(x, axis=1), x)
    check(lambda x: gt.cumulative_sum(x, axis=0, include_initial=True), x, in_axes=2)
    check(lambda x: gt.cumulative_prod(x, axis=-1), x)
    check(lambda x: gt.diff(x, axis=0, n=2), x, in_axes=1)
    check(lambda x: gt.nn.logsumexp(x, axis=-1), x)
    check(lambda x: gt.nn.logsumexp(x, axis=None, keepdims=True), x, in_axes=-1)
    check(lambda x: x.sum() + x.mean(axis=0).max(), x)


# ---- shape -------------------------------------------------------------------------------------------------------
def test_shape_ops():
    x = rand(3, 4, 6)
    check(lambda x: gt.reshape(x, (2, -1, 3)), x)
    check(lambda x: x.reshape(-1), x, in_axes=1)
    check(lambda x: gt.permute_dims(x, (1, 0)), x, in_axes=2, out_axes=-1)
    check(lambda x: x.T + x.mT, rand(3, 4, 4))
    check(lambda x: gt.broadcast_to(x, (2, 5, 6)), rand(5, 3, 6), in_axes=1)
    check(lambda x: gt.broadcast_to(x, (2, 6)), rand(3, 1, 6))
    check(lambda x: gt.expand_dims(x, axis=-1), x)
    check(lambda x: gt.squeeze(x, axis=1), rand(3, 4, 1))
    check(lambda x: gt.moveaxis(x, 0, -1), x)
    check(lambda x: gt.flip(x) + gt.flip(x, axis=0), x, in_axes=1)
    check(lambda x: gt.roll(x, 2) + gt.roll(x, (1, -1), axis=(0, 1)) + gt.roll(x, 1, axis=-1), x)
    check(lambda x: gt.tril(x, k=1) - gt.triu(x), x, in_axes=-1)
    check(lambda x: gt.linalg.diagonal(x, offset=1), rand(3, 4, 5))
    check(lambda x: gt.astype(x, gt.float32), x, rtol=1e-6)
    check(lambda x: gt.astype(x * 10, gt.int64), x)
    check(lambda x: gt.tile(x, (2, 1)), x)
    check(lambda x: gt.unstack(x, axis=1), x)


def test_joins_mix_batched_and_unbatched():
    x, c = rand(3, 4), rand(4)
    check(lambda x, c: gt.concat([x, c, x * 2]), x, c, in_axes=(0, None))
    check(lambda x, c: gt.stack([x, c], axis=-1), x, c, in_axes=(0, None))
    check(lambda x, c: gt.asarray([x, c]), x, c, in_axes=(0, None))
    check(lambda c, x: gt.concat([c, x], axis=None), c, rand(3, 2, 2), in_axes=(None, 0))


# ---- non-differentiable functions, creation ------------------------------------------------------------------
def test_nondiff_elementwise():
    x, y = rand(3, 4), rand(4)
    check(lambda x, y: (x > y, x <= 0.5, gt.equal(x, x), gt.logical_and(x > 0, y > 0), ~(x > 0)), x, y,
          in_axes=(0, None))
    check(lambda x: (gt.floor(x), gt.sign(x), gt.isfinite(x), gt.round(x * 3), x // 0.3), x)
    i = gt.asarray(RNG.integers(0, 8, (3, 4)), device=gt.get_default_device())
    check(lambda i, j: (i & j, i | 1, i ^ j, i << 1, gt.bitwise_invert(i)), i, i[0], in_axes=(0, None))


@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_nondiff_axes(axis, keepdims):
    x = rand(3, 4, 5)
    check(lambda x: (gt.argmax(x, axis=axis, keepdims=keepdims), gt.argmin(x, axis=axis, keepdims=keepdims),
                     gt.all(x > -1, axis=axis, keepdims=keepdims), gt.any(x > 1, axis=axis, keepdims=keepdims),
                     gt.count_nonzero(x > 0, axis=axis, keepdims=keepdims)), x, in_axes=1)


def test_nondiff_sort_search():
    x = rand(3, 4, 5)
    check(lambda x: (gt.argsort(x), gt.argsort(x, axis=0, descending=True), gt.sort(x, axis=0)), x)
    s = gt.sort(rand(3, 6), axis=-1)
    v = rand(3, 4)
    check(lambda s, v: gt.searchsorted(s, v), s, v)
    check(lambda s, v: gt.searchsorted(s, v, side="right"), s, v[0], in_axes=(0, None))
    check(lambda s, v: gt.searchsorted(s, v), s[0], v, in_axes=(None, 0))
    u = rand(3, 6)                  # unsorted, with its argsort as the sorter (batched, or the sequence too)
    check(lambda u, v: gt.searchsorted(u, v, sorter=gt.argsort(u)), u, v)
    check(lambda u, o, v: gt.searchsorted(u, v, sorter=o), u[0], gt.argsort(u[0]), v, in_axes=(None, None, 0))
    if gt.get_default_device() == "strict":           # isin needs the 2025.12 standard there
        return
    i = gt.asarray(RNG.integers(0, 5, (3, 4)), device=gt.get_default_device())
    check(lambda a, b: (gt.isin(a, b), gt.isin(a, b, invert=True)), i, i[:, :2])
    check(lambda a, b: gt.isin(a, b), i, i[0], in_axes=(0, None))


def test_nondiff_data_dependent_shapes_raise():
    with pytest.raises(TypeError, match="unique_values"):
        gt.vmap(gt.unique_values)(rand(3, 4))
    with pytest.raises(V.BatchedValueError, match="nonzero"):
        gt.vmap(gt.nonzero)(rand(3, 4))


def test_creation_like():
    x = rand(3, 4)

    def f(x):
        z = gt.zeros_like(x)
        assert type(z) is gt.Tensor and z.shape == (4,)
        assert gt.asarray(x) is x
        return z + gt.ones_like(x) * x + gt.full_like(x, 2.0) + 0 * gt.empty_like(x)
    check(f, x)
    i = gt.asarray(RNG.integers(0, 5, (3, 2)), device=gt.get_default_device())
    check(lambda i: gt.zeros_like(i) + i, i)


# ---- the tracer ------------------------------------------------------------------------------------------------------
def test_tracer_behaves_as_one_example():
    seen = {}

    def f(x):
        seen.update(shape=x.shape, ndim=x.ndim, size=x.size, len=len(x), dtype=x.dtype, device=x.device,
                    repr=repr(x), rg=x.requires_grad)
        a, b = x
        rows = [r for r in x]
        return a * b + rows[0]
    out = gt.vmap(f)(rand(5, 2, 3))
    assert out.shape == (5, 3)
    assert seen["shape"] == (2, 3) and seen["ndim"] == 2 and seen["size"] == 6 and seen["len"] == 2
    assert seen["dtype"] == gt.float64 and seen["device"] == gt.get_default_device() and not seen["rg"]
    assert "shape=(2, 3)" in seen["repr"] and "batch size 5" in seen["repr"]


@pytest.mark.parametrize("what", [bool, float, int, lambda x: x.item(), lambda x: x.numpy(), np.asarray,
                                  lambda x: [0, 1][x]])
def test_python_value_of_a_tracer_is_a_type_error(what):
    with pytest.raises(V.BatchedValueError, match="gt.where"):
        gt.vmap(lambda x: what(gt.sum(x) > 0))(rand(3, 2))
    assert issubclass(V.BatchedValueError, TypeError)


@pytest.mark.parametrize("what", [lambda t: t.requires_grad_(), lambda t: t.attach_grad(), lambda t: t.backward()])
def test_recording_calls_on_a_tracer_are_runtime_errors(what):
    with pytest.raises(RuntimeError, match="gt.grad"):
        gt.vmap(lambda x: what(gt.sum(x)))(rand(3, 2))


def test_inplace_on_a_tracer_rebinds_it():
    x = rand(3, 4)

    def f(x):
        y = x * 1
        y[0] = 5.0
        y += x
        y[1:] *= 2
        return y
    check(f, x)
    c = gt.zeros(4)

    def g(x):
        c[0] = gt.sum(x)       # a batched value into an unbatched tensor
        return c
    with pytest.raises(RuntimeError, match="batched"):
        gt.vmap(g)(x)


# ---- in_axes / out_axes, pytrees, errors ------------------------------------------------------------------------
def test_pytree_in_axes_and_outputs():
    p = {"w": rand(4, 3), "b": rand(3)}
    x = rand(5, 4)

    def f(p, x):
        h = gt.sum(gt.expand_dims(x, axis=-1) * p["w"], axis=0) + p["b"]     # x @ w + b
        return {"h": h, "n": gt.sum(h * h)}, (h[0], gt.asarray(1.0))
    check(f, p, x, in_axes=({"w": None, "b": None}, 0))
    check(f, p, x, in_axes=(None, 0), out_axes=({"h": -1, "n": 0}, 0))
    pb = {"w": rand(5, 4, 3), "b": rand(3, 5)}
    check(f, pb, x, in_axes=({"w": 0, "b": 1}, 0), out_axes=1 - 1)
    check(lambda t: t[0] * t[1][0], (rand(2, 3), [rand(3, 2)]), in_axes=((0, [1]),))


def test_out_axes_none_and_broadcast_outputs():
    x, c = rand(3, 4), rand(4)
    out, const = gt.vmap(lambda x, c: (x * c, c * 2), in_axes=(0, None), out_axes=(0, None))(x, c)
    assert const.shape == (4,) and type(const) is gt.Tensor
    np.testing.assert_allclose(gt.to_numpy(const), gt.to_numpy(c) * 2)
    same(gt.vmap(lambda x, c: c * 2, in_axes=(0, None))(x, c), np.stack([gt.to_numpy(c) * 2] * 3))
    same(gt.vmap(lambda x: 3.0)(x), np.full(3, 3.0))
    same(gt.vmap(lambda c: c + 1, in_axes=None, axis_size=2)(c), np.stack([gt.to_numpy(c) + 1] * 2))


def test_keyword_arguments_are_mapped_over_axis_0():
    x, y = rand(3, 4), rand(3, 4)
    same(gt.vmap(lambda x, *, y: x * y)(x, y=y), gt.to_numpy(x) * gt.to_numpy(y))


@pytest.mark.parametrize("call, match", [
    (lambda: gt.vmap(lambda x, y: x + y)(rand(3, 2), rand(4, 2)), r"different sizes.*args\[0\]: 3.*args\[1\]: 4"),
    (lambda: gt.vmap(lambda p: p["a"] + p["b"])({"a": rand(3), "b": rand(2)}), r"args\[0\]\['b'\]: 2"),
    (lambda: gt.vmap(lambda x: x, axis_size=5)(rand(3)), "axis_size: 5"),
    (lambda: gt.vmap(lambda x, y: x, in_axes=(0,))(rand(3), rand(3)), "in_axes has 1 entries"),
    (lambda: gt.vmap(lambda p: p, in_axes=({"a": 0},))({"a": rand(3), "b": rand(3)}), "tree prefix"),
    (lambda: gt.vmap(lambda p: p, in_axes=((0, 0),))((rand(3),)), "tree prefix"),
    (lambda: gt.vmap(lambda x: x, in_axes="0")(rand(3)), "in_axes must be"),
    (lambda: gt.vmap(lambda x: x, in_axes=2)(rand(3, 2)), "in_axes 2 is out of range"),
    (lambda: gt.vmap(lambda x: x, in_axes=-3)(rand(3, 2)), "out of range"),
    (lambda: gt.vmap(lambda x: x, out_axes=2)(rand(3, 2)), "out_axes 2 is out of range"),
    (lambda: gt.vmap(lambda x: x, out_axes=None)(rand(3, 2)), "out_axes is None"),
    (lambda: gt.vmap(lambda x: x, in_axes=None)(rand(3, 2)), "give axis_size"),
    (lambda: gt.vmap(lambda x: x)(2.0), "not an array"),
    (lambda: gt.vmap(lambda x: x)(gt.asarray(2.0)), "has no axes"),
])
def test_errors_are_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_no_batching_rule_names_the_op():
    from gradtape._core.primitive import define
    from gradtape._core.dispatch import apply1
    p = define("opaque_vmap_test", lambda xp, x: x, vjp={"x": lambda xp, ct, out, x: ct}, register=False)
    with pytest.raises(NotImplementedError, match="no batching rule for primitive 'opaque_vmap_test'") as e:
        gt.vmap(lambda x: apply1(p, x))(rand(3))
    assert isinstance(e.value, RuntimeError)


# ---- nesting and transforms ------------------------------------------------------------------------------------
def test_nested_vmap():
    x, y = rand(3, 4, 5), rand(4, 5)

    def f(a, b):
        return gt.sum(gt.sin(a) * b) + gt.max(a)
    inner = gt.vmap(f, in_axes=(0, 0))
    got = gt.vmap(inner, in_axes=(0, None))(x, y)
    want = np.array([[gt.to_numpy(f(gt.asarray(gt.to_numpy(x)[i, j]), gt.asarray(gt.to_numpy(y)[j])))
                      for j in range(4)] for i in range(3)])
    same(got, want)
    # the inner mapped over the outer's values and a closure of the outer's tracer
    got = gt.vmap(lambda a: gt.vmap(lambda r: r * gt.sum(a))(a), in_axes=1)(x)
    xn = gt.to_numpy(x)
    want = np.stack([xn[:, i] * xn[:, i].sum() for i in range(4)])
    same(got, want)
    # levels: two in state.batch while the inner runs
    levels = []
    gt.vmap(lambda a: gt.vmap(lambda r: levels.append(gt.vmap.__module__ and V.state.batch) or r)(a))(x)
    assert [n for _, n in levels[0]] == [3, 4]
    assert V.current() is None


def test_nested_vmap_reductions_and_indexing():
    x = rand(2, 3, 4, 5)
    got = gt.vmap(gt.vmap(lambda a: (gt.sum(a, axis=0), a[1:, ::2], gt.argmax(a, axis=-1))), in_axes=1)(x)
    xn = gt.to_numpy(x)
    for k, ref in enumerate([xn.sum(axis=2), xn[:, :, 1:, ::2], xn.argmax(axis=-1)]):
        same(got[k], np.swapaxes(ref, 0, 1))


def test_grad_of_vmap():
    x, w = rand(4, 3), rand(3)

    def loss(w):
        return gt.sum(gt.vmap(lambda r: gt.tanh(gt.sum(r * w)) ** 2)(x))
    g = gt.grad(loss)(w)
    xn, wn = gt.to_numpy(x), gt.to_numpy(w)
    t = np.tanh(xn @ wn)
    np.testing.assert_allclose(gt.to_numpy(g), (2 * t * (1 - t * t)) @ xn, rtol=1e-12)


def test_jacobian_and_jvp_of_vmap_against_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = rand(4, 3)

    def f(r):
        return gt.sin(r) * gt.sum(r * r) + gt.cumulative_sum(r, axis=0)

    def fj(r):
        return jnp.sin(r) * jnp.sum(r * r) + jnp.cumsum(r, axis=0)
    xn = gt.to_numpy(x)
    jac = gt.jacobian(gt.vmap(f))(x)
    np.testing.assert_allclose(gt.to_numpy(jac), np.asarray(jax.jacobian(jax.vmap(fj))(xn)), rtol=1e-10, atol=1e-12)
    v = rand(4, 3)
    out, tan = gt.jvp(gt.vmap(f), (x,), (v,))
    jo, jt = jax.jvp(jax.vmap(fj), (xn,), (gt.to_numpy(v),))
    np.testing.assert_allclose(gt.to_numpy(out), np.asarray(jo), rtol=1e-12)
    np.testing.assert_allclose(gt.to_numpy(tan), np.asarray(jt), rtol=1e-10, atol=1e-12)
    g = gt.grad(lambda x: gt.sum(gt.vmap(f, in_axes=1, out_axes=1)(x) ** 2))(x)
    jg = jax.grad(lambda x: jnp.sum(jax.vmap(fj, in_axes=1, out_axes=1)(x) ** 2))(xn)
    np.testing.assert_allclose(gt.to_numpy(g), np.asarray(jg), rtol=1e-10)


def test_helpers_for_transforms():
    x = rand(3, 2)
    seen = {}

    def f(r):
        level, size = V.current()
        seen["cur"] = (level, size)
        seen["b"] = V.is_batched(r, level)
        c = gt.ones(2)
        t = V.to_batched(c, level, size)
        seen["t"] = V.is_batched(t, level) and V.to_batched(r, level, size) is r
        u = V.unwrap(c, level, size)
        seen["u"] = (type(u) is gt.Tensor, u.shape)
        seen["w"] = V.unwrap(V.wrap_batched(u, level), level, size) is u
        return r + t
    same(gt.vmap(f)(x), gt.to_numpy(x) + 1)
    assert seen["cur"][1] == 3 and seen["b"] and seen["t"] and seen["u"] == (True, (3, 2)) and seen["w"]


def test_random_draws_are_the_same_for_every_example():
    """As documented: the mapped function runs once, so a draw of the per-example shape is shared."""
    g = gt.nn.Generator(0)
    out = gt.to_numpy(gt.vmap(lambda x: x + g.normal(x.shape))(gt.zeros((4, 3))))
    assert out.shape == (4, 3) and np.all(out == out[0]) and np.any(out[0] != 0)
    noise = gt.nn.Generator(1).normal((4, 3))        # independent draws: pass them as a mapped argument
    out = gt.to_numpy(gt.vmap(lambda x, n: x + n)(gt.zeros((4, 3)), noise))
    assert not np.all(out == out[0])


def test_other_paths_that_read_values():
    x = rand(4, 3, 3)
    check(gt.linalg.matrix_rank, x)
    check(lambda r: np.sin(r) + np.sum(r, axis=0), x)          # NumPy's dispatch protocols

    def f(r):
        y = r * 1
        y.zero_()
        return y + r
    check(f, x)
    with pytest.raises(V.BatchedValueError):
        gt.vmap(gt.to_numpy)(x)
    check(lambda r: r.detach() * 2, x)


def test_namedtuples_and_modules():
    import collections
    P = collections.namedtuple("P", "a b")
    x = rand(5, 3)
    r = gt.vmap(lambda p: P(p.a * p.b, p.b), in_axes=(P(0, None),), out_axes=P(0, None))(P(x, gt.asarray(2.0)))
    assert type(r) is P
    same(r.a, gt.to_numpy(x) * 2)
    same(r.b, np.asarray(2.0))
    m = gt.nn.Linear(3, 2, dtype=gt.float64)
    seen = []
    out = gt.vmap(lambda m, r: seen.append(m) or m(r), in_axes=(None, 0))(m, x)
    assert seen == [m]                      # an unmapped Module comes in as itself
    same(out, gt.to_numpy(m(x)))
