"""Transforms create no reference cycles: what they return is freed by reference counting at its last use.

A nested function that calls itself (``def walk(v): ... walk(c)``) is a cycle (function -> closure cell ->
function) that holds whatever the closure holds until the garbage collector runs: the tree flattening of every
transform kept its leaves (gradients, per-example gradients of many MB under gt.vmap) alive past their last use,
so fresh memory was faulted in on every call. Each case runs once to warm caches, then again with the collector
off: the collector must find no array or tensor to free
(other cyclic garbage, from earlier tests or lazy imports, is not this test's business).
"""
import gc
import pathlib
import subprocess
import sys
import weakref

import numpy as np
import pytest

import gradtape as gt

X = [[1.0, 2.0], [3.0, 4.0]]
W = [0.5, -1.0]


def _loss(p, x):
    return gt.sum(gt.tanh(x @ p["w"]) ** 2)


def _backward(w):
    t = w.requires_grad_()
    gt.sum(gt.sin(t) ** 2).backward()
    return t.grad


CASES = {
    "grad": lambda x, w: gt.grad(_loss)({"w": w}, x),
    "value_and_grad": lambda x, w: gt.value_and_grad(_loss)({"w": w}, x),
    "vjp": lambda x, w: gt.vjp(gt.sin, x)[1](gt.ones((2, 2))),
    "jvp": lambda x, w: gt.jvp(gt.sin, (x,), (gt.ones((2, 2)),)),
    "vmap": lambda x, w: gt.vmap(lambda r: gt.sin(r) * 2)(x),
    "vmap_grad": lambda x, w: gt.vmap(gt.grad(_loss), in_axes=(None, 0))({"w": w}, x),
    "grad_vmap": lambda x, w: gt.grad(lambda v: gt.sum(gt.vmap(lambda r: gt.sin(r) @ v)(x)))(w),
    "jacobian": lambda x, w: gt.jacobian(gt.sin)(w),
    "hessian": lambda x, w: gt.hessian(lambda a: gt.sum(gt.sin(a) ** 3))(w),
    "linearize": lambda x, w: gt.linearize(gt.sin, w)[1](w),
    "backward": lambda x, w: _backward(w),
    "tree_map": lambda x, w: gt.tree.map(lambda a: a * 2, {"a": [w, (x,)]}),
    "tree_roundtrip": lambda x, w: gt.tree.unflatten(*reversed(gt.tree.flatten({"a": [w, (x, None)]}))),
}


def _check(name):
    """In this process: run case ``name`` twice (warm, then with the collector off) and return what failed."""
    run = CASES[name]
    run(gt.asarray(X), gt.asarray(W))
    gc.collect()
    gc.disable()
    try:
        out = run(gt.asarray(X), gt.asarray(W))
        leaf = gt.tree.leaves(out)[0]
        alive = weakref.ref(leaf)
        del out, leaf
        if alive() is not None:
            return f"{name}: its result outlived its last reference"
        gc.set_debug(gc.DEBUG_SAVEALL)      # what a collection would free, kept to be inspected
        gc.collect()
        held = [o for o in gc.garbage if isinstance(o, (gt.Tensor, np.ndarray))]
        return f"{name}: {len(held)} arrays/tensors held by reference cycles" if held else ""
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("name", sorted(CASES))
def test_transform_leaves_no_cyclic_garbage(name):
    """Each case in a fresh interpreter: the state earlier tests leave (hooks, caches, garbage) is not its own."""
    code = f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); import test_no_cycles as t; " \
           f"print(t._check({name!r}))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "", res.stdout
