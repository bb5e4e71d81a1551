"""gt.vmap of indexing (issue 11, part 2): x[key] with basic keys, unbatched integer and boolean arrays and a
batched integer index; setitem/index_add (x[key] = v, batched x and/or v); take, take_along_axis, take_add,
along_add, sort, repeat; values equal to a loop of per-example calls, gradients of vmap equal to the loop's."""
import numpy as np
import pytest

import gradtape as gt
from gradtape._api.indexing import along_add, index_add, take_add
from test_vmap import backend, check, loop, rand, same  # noqa: F401  (backend: the autouse fixture)

RNG = np.random.default_rng(1)


def ints(lo, hi, *shape):
    return gt.asarray(RNG.integers(lo, hi, shape), device=gt.get_default_device())


@pytest.mark.parametrize("key", [
    0, -1, slice(1, None), (slice(None), 2), (Ellipsis, 1), (None, 0), (slice(None, None, -2), None, 1),
    (1, Ellipsis, slice(0, 2)), (slice(None), None), ()])
@pytest.mark.parametrize("in_axis", [0, 1, -1])
def test_basic_keys(key, in_axis):
    x = rand(4, 3, 5) if in_axis == 0 else rand(3, 4, 5) if in_axis == 1 else rand(3, 5, 4)
    check(lambda x: x[key], x, in_axes=in_axis)


def test_unbatched_array_keys():
    x = rand(3, 4, 5)
    i = ints(-4, 4, 6)
    m = gt.asarray(RNG.random(5) > 0.4, device=gt.get_default_device())
    check(lambda x: x[i], x)
    check(lambda x: x[:, i[:3] % 5], x)
    check(lambda x: x[i[:2], 1:3], x)
    check(lambda x: x[..., m], x)
    a, b, c, d = ints(0, 4, 2, 2), ints(0, 5, 2, 2), ints(0, 4, 3), ints(0, 5, 3)
    check(lambda x: x[a, b], x)       # two arrays, adjacent
    check(lambda x: x[c, :, d][None], rand(3, 4, 2, 5))   # separated: their axes in front
    mm = gt.asarray(RNG.random((4, 5)) > 0.5, device=gt.get_default_device())
    check(lambda x: x[mm], x)


@pytest.mark.parametrize("key", [
    lambda i: i, lambda i: (slice(None), i), lambda i: (Ellipsis, i), lambda i: (0, i), lambda i: (i, slice(1, None)),
    lambda i: (None, i), lambda i: (1, slice(None), i)])
def test_batched_integer_index(key):
    x = rand(4, 5, 6)
    idx = ints(0, 4, 3, 2)              # one (2,) index per example, of the first axis of size 4
    xs = rand(3, 4, 5, 6)

    def f(x, i):
        return x[key(i)]
    # the array unbatched, the index batched; then both batched
    check(f, x, idx, in_axes=(None, 0))
    check(f, xs, idx)
    check(f, xs, ints(0, 4, 3), in_axes=(0, 0))          # 0-d index per example


def test_several_indices_one_batched():
    x, i, j = rand(3, 4, 5, 6), ints(-4, 4, 3, 2), ints(0, 5, 3, 2)
    check(lambda x, i, j: x[i, j], x, i, j)
    check(lambda x, i, j: x[i, j], x[0], i, j, in_axes=(None, 0, 0))
    check(lambda x, i, j: x[:, i, j], rand(3, 6, 4, 5), i, j)
    check(lambda x, i, j: x[..., i, j], rand(3, 6, 4, 5), i, j[0], in_axes=(0, 0, None))
    check(lambda x, i: x[i, i], rand(3, 4, 4), i)


def test_batched_index_errors():
    x = rand(3, 4, 4)
    with pytest.raises(NotImplementedError, match="adjacent"):
        gt.vmap(lambda x, i: x[i, :, i])(rand(3, 4, 2, 4), ints(0, 4, 3))
    with pytest.raises(NotImplementedError, match="mask"):
        gt.vmap(lambda x, m: x[m])(x, rand(3, 4, 4) > 0)

    def f(x, i):
        x[1:, i] = 0.0
        return x
    with pytest.raises(NotImplementedError, match="take_add"):
        gt.vmap(f)(rand(3, 4, 2), ints(0, 2, 3))
    c = gt.zeros(4)

    def g(i):
        c[i] = 1.0          # a batched index writing into an unbatched tensor
        return c
    with pytest.raises(RuntimeError, match="not batched"):
        gt.vmap(g)(ints(0, 4, 3))


@pytest.mark.parametrize("key", [lambda i: i, lambda i: (slice(None), i), lambda i: (Ellipsis, i, slice(None))])
def test_writes_at_a_batched_index(key):
    x, v = rand(3, 4, 5, 6), rand(3, 2)
    i = gt.asarray([[0, 3], [2, 1], [1, 1]], device=gt.get_default_device())

    def f(x, i, v):
        y = x + 0 * v[0]        # batched even where x is not
        k = key(i)
        y[k] = 2.0
        y[k] = gt.sin(y[k]) * v[1]
        if gt.get_default_device() == "strict":     # the loop's index_add: no scatter-add for array keys there
            return y, y * 2
        return index_add(y, k, 1.5), index_add(y, k, y[k] * 2)
    check(f, x, i, v)
    check(f, x[0], i, v, in_axes=(None, 0, 0))
    x0 = x[0]
    same(gt.grad(lambda x: gt.sum(gt.vmap(f, in_axes=(None, 0, 0))(x, i, v)[1] ** 2))(x0),
         gt.to_numpy(gt.grad(lambda x: sum(gt.sum(f(x, i[k], v[k])[1] ** 2) for k in range(3)))(x0)))


def test_setitem_and_index_add():
    x, v, c = rand(3, 4, 5), rand(3, 5), rand(5)
    i = ints(0, 4, 3)

    def f(x, v):
        y = x * 1
        y[1] = v
        y[:, 0] = 7.0
        y[i] = 2 * v
        return y
    check(f, x, v)
    check(f, x, c, in_axes=(0, None))
    check(lambda x, v: f(x + 0 * v[0], v), x[0], v, in_axes=(None, 0))     # x batched by the op on v
    m = gt.asarray(RNG.random((4, 5)) > 0.5, device=gt.get_default_device())

    def g(x, v):
        y = x * 1
        y[m] = 0.0
        y[gt.asarray([0, 2]), 1:3] = v[:2]
        if gt.get_default_device() == "strict":       # array-api-strict has no scatter-add for array keys
            return y
        return index_add(y, (gt.asarray([1, 1]), Ellipsis), v)
    check(g, x, v)
    check(g, x, c, in_axes=(0, None))
    check(lambda x, v: g(x + 0 * v[0], v), x[0], v, in_axes=(None, 0))


def test_gathers_and_scatters():
    x = rand(3, 4, 5)
    i = ints(0, 5, 3, 6)
    ia = ints(0, 5, 3, 4, 2)
    check(lambda x, i: gt.take(x, i, axis=1), x, i)
    check(lambda x, i: gt.take(x, i, axis=-2), x[:, :, :4], i % 4, in_axes=(0, 0))
    check(lambda x, i: gt.take(x, i, axis=0), x[0], ints(0, 4, 3, 2), in_axes=(None, 0))
    check(lambda x, i: gt.take(x, i, axis=1), x, i[0], in_axes=(0, None))
    check(lambda x, i: gt.take_along_axis(x, i, axis=1), x, ia)
    check(lambda x, i: gt.take_along_axis(x, i, axis=-1), x, ia[0], in_axes=(0, None))
    check(lambda x, i: gt.take_along_axis(x, i, axis=1), x[0], ia, in_axes=(None, 0))
    z, v = rand(3, 4, 5), rand(3, 4, 6)
    check(lambda z, i, v: take_add(z, i, v, 1), z, i, v)
    check(lambda z, i, v: take_add(z, i, v, 1), z[0], i, v, in_axes=(None, 0, 0))
    check(lambda z, i, v: take_add(z, i, v, 1), z, i[0], v[0], in_axes=(0, None, None))
    if gt.get_default_device() != "strict":      # (its generic scatter-add takes full-shaped arrays only)
        check(lambda z, i: take_add(z, i, 2.5, 1), z, i)                  # a number, broadcast to the region
        check(lambda z, i, v: take_add(z, i, v, 1), z, i, rand(3, 1, 6))   # broadcast along the other axes
    va = rand(3, 4, 2)
    check(lambda z, i, v: along_add(z, i, v, 1), z, ia, va)
    check(lambda z, i, v: along_add(z, i, v, -1), z, ia[0], va, in_axes=(0, None, 0))
    if gt.get_default_device() != "strict":
        check(lambda z, i: along_add(z, i, 1.0, 1), z, ia)
    check(lambda x: (gt.sort(x, axis=0), gt.repeat(x, 2, axis=1)), x)


def test_grad_through_vmapped_indexing():
    x = rand(3, 4, 5)
    i = ints(0, 4, 3, 2)

    def per_example(x, i):
        y = x * 1
        y[0] = gt.sin(x[1])
        return gt.sum(x[i] ** 2) + gt.sum(gt.take_along_axis(y, gt.zeros((4, 1), dtype=gt.int64), axis=1) * y[:, :1])

    def batched(x):
        return gt.sum(gt.vmap(per_example)(x, i))

    def looped(x):
        return sum(per_example(x[k], i[k]) for k in range(3))
    same(gt.grad(batched)(x), gt.to_numpy(gt.grad(looped)(x)))


def test_nested_vmap_with_batched_index():
    x = rand(2, 3, 5)
    i = ints(0, 5, 2, 3, 4)
    got = gt.vmap(gt.vmap(lambda r, j: r[j]))(x, i)
    xn, jn = gt.to_numpy(x), gt.to_numpy(i)
    same(got, np.take_along_axis(xn, jn, axis=-1))
    i = ints(0, 3, 2, 3, 4)
    got = gt.vmap(lambda r, j: gt.vmap(lambda jj: r[jj])(j))(x, i)     # the array of the outer level
    jn = gt.to_numpy(i)
    same(got, np.stack([xn[a][jn[a]] for a in range(2)]))
    same(got, loop(lambda r, j: gt.stack([r[jj] for jj in j]), (x, i)))
