"""Differential fuzzing of pytree arguments: a random program's inputs packed into a random pytree.

A program of :mod:`tests.difftest.programs` takes named inputs. ``skeleton(names, rng)`` draws, from the
program's seed, a pytree whose leaves are those names, shuffled, inside dicts (random keys: JAX flattens
them sorted, so the leaf order differs from the insertion order), lists, tuples, a namedtuple and ``None``
fillers. The function under test takes that tree and computes the program on its leaves, looked up by name,
and the loss ``L = sum_i sum(out_i * W_i)``. ``check(prog)`` compares, in the program's dtype:

structure   ``gt.grad(L)(tree)`` has the tree's structure (``gt.tree.structure``), namedtuple and all
grad        its leaves with ``jax.grad`` of the JAX translation on the same tree (jitted), where JAX runs the
            program, and always with gradtape's flat gradient ``gt.grad(L_flat, argnums=all)(*inputs)``
value       ``gt.value_and_grad``'s value with the flat loss
jvp         ``gt.jvp(L, (tree,), (tangent tree,))`` with ``sum(grad * tangent)`` (the program's directions)

Command line::

    python -m tests.difftest.pytrees --n 200 --seed 0 [--kind general|jacobian]
"""
from __future__ import annotations

import argparse
import collections
import sys

import numpy as np

from . import programs as P
from . import runner as R
from . import vmap as V

Pair = collections.namedtuple("Pair", "left right")
KEYS = list("edcbazyx")


def skeleton(names, rng):
    """A random pytree whose leaves are ``names`` (each once, in a random order)."""
    items = [str(n) for n in rng.permutation(list(names))]

    def build(items, depth):
        if len(items) == 1 and (depth >= 3 or rng.random() < 0.4):
            return items[0]
        n_parts = 1 if len(items) == 1 else int(rng.integers(1, min(3, len(items)) + 1))
        cuts = sorted(rng.choice(np.arange(1, len(items)), n_parts - 1, replace=False)) if n_parts > 1 else []
        parts = [build(list(p), depth + 1) for p in np.split(np.array(items, dtype=object), cuts)]
        k = int(rng.integers(5))
        if k == 0:
            keys = list(rng.choice(KEYS, len(parts), replace=False))
            return {str(key): p for key, p in zip(keys, parts)}
        if k == 1:
            return parts
        if k == 2:
            return tuple(parts)
        if k == 3:
            return Pair(parts[0], parts[1] if len(parts) > 1 else None) if len(parts) <= 2 else \
                Pair(parts[0], tuple(parts[1:]))
        return [None] + parts
    return build(items, 0)


def _loss(L, prog, W, by_name, total):
    outs = P.run(prog, L, [by_name[n] for n in prog.inputs])
    return total([o * w for o, w in zip(outs, W)])


def check(prog, backend="cpu"):
    """A :class:`runner.Result` for the pytree routes of ``prog``."""
    import gradtape as gt
    names = list(prog.inputs)
    arrs = dict(zip(names, prog.arrays()))
    skel = skeleton(names, np.random.default_rng([prog.seed, 29]))
    order = gt.tree.leaves(skel)
    GL = R.lib("gt", backend)
    rt, at = R.tol(prog)
    try:
        outs = P.run(prog, GL, [gt.asarray(arrs[n], device=backend) for n in names])
    except Exception as e:
        return R.Result("invalid", "forward", f"{type(e).__name__}: {e}", prog, backend)
    W_np = prog.weights([tuple(o.shape) for o in outs], [prog.dtype] * len(outs))
    W = [gt.asarray(w, device=backend) for w in W_np]

    def total_gt(terms):
        return sum((gt.sum(t) for t in terms[1:]), gt.sum(terms[0]))

    def f_tree(tree):
        return _loss(GL, prog, W, dict(zip(order, gt.tree.leaves(tree))), total_gt)

    def f_flat(*xs):
        return _loss(GL, prog, W, dict(zip(names, xs)), total_gt)

    tree = gt.tree.map(lambda n: gt.asarray(arrs[n], device=backend), skel)
    xs = [gt.asarray(arrs[n], device=backend) for n in names]
    try:
        flat = gt.grad(f_flat, argnums=tuple(range(len(names))))(*xs)
        val_flat = f_flat(*xs)
    except Exception as e:          # the flat route is the fuzzer's main runner's business
        return R.Result("invalid", "flat", f"{type(e).__name__}: {e}", prog, backend)
    by_name = dict(zip(names, flat))
    try:
        val, g = R._guard("grad", lambda: gt.value_and_grad(f_tree)(tree))
        if gt.tree.structure(g) != gt.tree.structure(tree):
            raise R.Mismatch("structure", f"gradient {gt.tree.structure(g)!r}, argument {gt.tree.structure(tree)!r}")
        R.compare("value", val, gt.to_numpy(val_flat), rt, at)
        for n, leaf in zip(order, gt.tree.leaves(g)):
            R.compare(f"grad[{n}] vs flat", leaf, gt.to_numpy(by_name[n]), rt, at)
        want = _jax_grad(prog, skel, order, arrs, W_np)
        if want is not None:
            for n, leaf, w in zip(order, gt.tree.leaves(g), want):
                R.compare(f"grad[{n}] vs jax", leaf, w, max(rt, 1e-9), max(at, 1e-11))
        dirs = dict(zip(names, prog.directions()))
        tan = gt.tree.map(lambda n: gt.asarray(dirs[n], device=backend), skel)
        _, t = R._guard("jvp", lambda: gt.jvp(f_tree, (tree,), (tan,)))
        ref = sum(float(np.sum(gt.to_numpy(by_name[n]) * dirs[n])) for n in names)
        if np.isfinite(gt.to_numpy(val)):   # (a NaN loss, e.g. a mean over nothing, has a NaN tangent: no reference)
            # forward and reverse round differently through a float32 cast inside a float64 program: 1e-6
            R.compare("jvp", t, np.asarray(ref, dtype=gt.to_numpy(val).dtype), max(rt, 1e-6), max(at, 1e-9))
    except R.Mismatch as m:
        return R.Result("mismatch", m.check, m.detail + f"\n  tree: {skel!r}", prog, backend)
    return R.Result("ok", prog=prog, backend=backend)


def _jax_grad(prog, skel, order, arrs, W_np):
    """``jax.grad`` of the tree loss, its leaves in flatten order; None where JAX does not run the program."""
    J = R.lib("jax")
    jax, jnp = J.jax, J.jnp
    tree = jax.tree_util.tree_map(lambda n: jnp.asarray(arrs[n]), skel)
    W = [jnp.asarray(w) for w in W_np]

    def f(t):       # vmap's JAX translations (JAX_EXTRA: where's condition, ...), as the vmap fuzzer uses them
        by_name = dict(zip(order, jax.tree_util.tree_leaves(t)))
        outs = V.jrun(prog, J, [by_name[n] for n in prog.inputs])
        return sum(jnp.sum(o * w) for o, w in zip(outs, W))
    try:
        g = jax.jit(jax.grad(f))(tree)
    except Exception:
        return None
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(g)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", default="general")
    ap.add_argument("--backend", default="cpu")
    a = ap.parse_args(argv)
    counts = collections.Counter()
    for s in range(a.seed, a.seed + a.n):
        r = check(P.generate(s, a.kind), a.backend)
        counts[r.status] += 1
        if r.status == "mismatch":
            print(r.report())
    print(dict(counts))
    return 1 if counts["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
