"""gt.linearize (one linearization, reused by every f_jvp call), gt.jacfwd/gt.jacrev (issue 11, part 3),
against JAX on pytrees."""
import collections

import numpy as np
import pytest

import gradtape as gt

P = collections.namedtuple("P", "x y")


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _close(got, want, jax, rtol=1e-10):
    assert repr(gt.tree.structure(got)) == repr(jax.tree_util.tree_structure(want))
    for g, w in zip(gt.tree.leaves(got), jax.tree_util.tree_leaves(want)):
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(gt.to_numpy(g), np.asarray(w), rtol=rtol, atol=1e-12)


def _model(xp):
    def f(p, x):
        h = xp.tanh(x @ p["w1"] + p["b"][0])
        return {"y": h @ p["w2"].x, "r": P(x=xp.sum(h * h), y=p["w2"].y * 2.0)}
    return f


def _params(rng):
    return {"w1": rng.standard_normal((3, 4)), "b": [rng.standard_normal(4)],
            "w2": P(x=rng.standard_normal((4, 2)), y=rng.standard_normal(2))}


def _as(lib, tree):
    return gt.tree.map(lambda a: lib.asarray(a), tree)


@pytest.mark.parametrize("seed", range(4))
def test_linearize_equals_jax(jax, seed):
    jnp = jax.numpy
    rng = np.random.default_rng(seed)
    p, x = _params(rng), rng.standard_normal((5, 3))
    out, f_jvp = gt.linearize(_model(gt), _as(gt, p), gt.asarray(x))
    jout, jf_jvp = jax.linearize(_model(jnp), _as(jnp, p), jnp.asarray(x))
    _close(out, jout, jax)
    for _ in range(3):                  # reused: every call from the one linearization
        tp, tx = gt.tree.map(lambda a: rng.standard_normal(np.shape(a)), p), rng.standard_normal((5, 3))
        got = f_jvp(_as(gt, tp), gt.asarray(tx))
        _close(got, jf_jvp(_as(jnp, tp), jnp.asarray(tx)), jax)
        _close(got, gt.jvp(_model(gt), (_as(gt, p), gt.asarray(x)), (_as(gt, tp), gt.asarray(tx)))[1], jax)
        assert not any(t.requires_grad for t in gt.tree.leaves(got))


def test_f_jvp_does_not_call_f_again():
    calls = []

    def f(x, y):
        calls.append(1)
        return gt.sin(x) * y, gt.sum(x ** 3)
    x, y = gt.asarray([0.1, 0.5, 1.0]), gt.asarray(2.0)
    out, f_jvp = gt.linearize(f, x, y)
    assert len(calls) == 1
    for k in range(5):
        t1, t2 = f_jvp(gt.ones(3) * k, gt.asarray(1.0))
        want = gt.jvp(f, (x, y), (gt.ones(3) * k, gt.asarray(1.0)))[1]
        calls.pop()                     # the jvp reference's own call
        np.testing.assert_allclose(gt.to_numpy(t1), gt.to_numpy(want[0]), rtol=1e-12)
        np.testing.assert_allclose(gt.to_numpy(t2), gt.to_numpy(want[1]), rtol=1e-12)
    assert len(calls) == 1


def test_linearize_constant_and_unused_parts():
    c = gt.asarray([1.0, 2.0])
    out, f_jvp = gt.linearize(lambda x, z: {"a": x * 2.0, "k": c * 1.0}, gt.asarray([1.0, 1.0]), gt.asarray(3.0))
    got = f_jvp(gt.asarray([1.0, -1.0]), gt.asarray(5.0))
    assert got["a"].tolist() == [2.0, -2.0] and got["k"].tolist() == [0.0, 0.0]
    out, f_jvp = gt.linearize(lambda x: c * 1.0, gt.asarray(1.0))   # nothing depends on x
    assert f_jvp(gt.asarray(1.0)).tolist() == [0.0, 0.0]


def test_linearize_tangent_errors():
    out, f_jvp = gt.linearize(lambda p: p["a"] * 2.0, {"a": gt.asarray([1.0, 2.0])})
    with pytest.raises(TypeError, match=r"gradtape.linearize: primals and tangents must have the same tree"):
        f_jvp([gt.ones(2)])
    with pytest.raises(TypeError, match="same tree structure"):
        f_jvp({"a": gt.ones(2)}, gt.ones(2))
    with pytest.raises(ValueError, match=r"tangent 0 \['a'\] has shape \(3,\) but primal 0 \['a'\] has shape \(2,\)"):
        f_jvp({"a": gt.ones(3)})
    with pytest.raises(TypeError, match=r"tangent 0 \['a'\] has dtype float32"):
        f_jvp({"a": gt.ones(2, dtype=gt.float32)})
    with pytest.raises(TypeError, match=r"p\['b'\] \(argument 0\) of dtype int64"):
        gt.linearize(lambda p: p["a"], {"a": gt.ones(2), "b": 1})


def test_linearize_composes_with_grad():
    # d/dx of the directional derivative of sum(x^3) along v: 6 x v (an outer grad through f_jvp)
    v = gt.asarray([1.0, 2.0])

    def dd(x):
        _, f_jvp = gt.linearize(lambda x: gt.sum(x ** 3), x)
        return f_jvp(v)
    x = gt.asarray([0.5, -1.0])
    np.testing.assert_allclose(gt.to_numpy(gt.grad(dd)(x)), 6 * gt.to_numpy(x) * gt.to_numpy(v), rtol=1e-12)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev"])
def test_jacfwd_jacrev_equal_jax(jax, name):
    jnp = jax.numpy
    rng = np.random.default_rng(3)
    p, x = _params(rng), rng.standard_normal((2, 3))
    got = getattr(gt, name)(_model(gt))(_as(gt, p), gt.asarray(x))
    want = jax.jacrev(_model(jnp))(_as(jnp, p), jnp.asarray(x))      # (the same Jacobian: jacrev is quicker here)
    _close(got, want, jax)
    got = getattr(gt, name)(_model(gt), argnums=(0, 1))(_as(gt, p), gt.asarray(x))
    want = jax.jacrev(_model(jnp), argnums=(0, 1))(_as(jnp, p), jnp.asarray(x))
    _close(got, want, jax)
    aux = lambda v: (gt.sin(v), {"c": v * 2.0})  # noqa: E731
    J, a = getattr(gt, name)(aux, has_aux=True)(gt.asarray([0.0, 1.0]))
    np.testing.assert_allclose(gt.to_numpy(J), np.diag(np.cos([0.0, 1.0])), rtol=1e-12)
    assert a["c"].tolist() == [0.0, 2.0]
    assert getattr(gt, name)(gt.sin).__name__ == f"{name}(sin)"


def test_linearize_has_aux(jax):
    jnp = jax.numpy
    f_gt = lambda x: (gt.sin(x) * 2.0, {"n": gt.sum(x)})  # noqa: E731
    f_jx = lambda x: (jnp.sin(x) * 2.0, {"n": jnp.sum(x)})  # noqa: E731
    x = np.array([0.3, 1.2])
    out, f_jvp, aux = gt.linearize(f_gt, gt.asarray(x), has_aux=True)
    jout, jf_jvp, jaux = jax.linearize(f_jx, jnp.asarray(x), has_aux=True)
    _close(out, jout, jax)
    _close(aux, jaux, jax)
    assert not aux["n"].requires_grad
    _close(f_jvp(gt.asarray([1.0, -2.0])), jf_jvp(jnp.asarray([1.0, -2.0])), jax)
    with pytest.raises(TypeError, match="has_aux=True expects the function to return a pair"):
        gt.linearize(gt.sin, gt.asarray(x), has_aux=True)
