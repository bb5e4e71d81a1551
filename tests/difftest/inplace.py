"""Differential fuzzing of views and in-place writes against PyTorch (float64).

A program starts from copies of random inputs (leaves that require grad) and takes random steps, each run on
gradtape and on torch side by side: views (basic slices with steps, integer indices, ``None``, reshape of a
contiguous tensor, permute_dims, mT, moveaxis, squeeze, expand_dims, unpacking), in-place writes into any
tensor of the pool (``t[key] = value``, ``+=``, ``-=``, ``*=``) and elementwise ops. The loss sums every
tensor of the pool (so every alias's value and history count); the values of the pool, the loss and the
inputs' gradients must agree. A backward that torch refuses (a saved value changed in place) must be
refused by gradtape too; gradtape may accept one that torch refuses where its functional writes keep the
saved value intact (``exp``'s output), which counts as "refused".

    python -m tests.difftest.inplace --n 2000 --seed 0 [--device strict]
"""
from __future__ import annotations

import argparse
import random
import time

import numpy as np

import gradtape as gt

UNARY = {"sin": (gt.sin, "sin"), "tanh": (gt.tanh, "tanh"), "exp": (gt.exp, "exp")}


class Result:
    def __init__(self, seed, status, log, detail=""):
        self.seed, self.status, self.log, self.detail = seed, status, log, detail

    def report(self):
        return f"seed {self.seed}: {self.status} {self.detail}\n" + "\n".join(self.log)


def _slice_key(rng, shape):
    key = []
    for n in shape:
        r = rng.random()
        if r < 0.3 and n > 0:
            key.append(rng.randrange(n))
        elif r < 0.4:
            key.append(slice(None))
        else:
            a = rng.randrange(n + 1)
            b = rng.randrange(a, n + 1)
            key.append(slice(a, b, rng.choice((1, 1, 2))))
    if rng.random() < 0.2:
        key.insert(rng.randrange(len(key) + 1), None)
    return tuple(key)


def _view(rng, g, t):
    """A random view of pool pair (g, t), or None where the kind does not apply."""
    kind = rng.choice(("slice", "slice", "int", "reshape", "permute", "mT", "moveaxis", "squeeze", "expand",
                       "unpack"))
    nd = g.ndim
    if kind == "slice" and nd:
        k = _slice_key(rng, g.shape)
        return f"[{k}]", g[k], t[k]
    if kind == "int" and nd and g.shape[0]:
        i = rng.randrange(g.shape[0])
        return f"[{i}]", g[i], t[i]
    if kind == "reshape" and t.is_contiguous() and g.size > 1:
        shape = _factor(rng, g.size)
        return f"reshape{shape}", gt.reshape(g, shape), t.reshape(shape)
    if kind == "permute" and nd > 1:
        axes = list(range(nd))
        rng.shuffle(axes)
        return f"permute_dims{tuple(axes)}", gt.permute_dims(g, tuple(axes)), t.permute(*axes)
    if kind == "mT" and nd > 1:
        return ".mT", g.mT, t.mT
    if kind == "moveaxis" and nd > 1:
        a, b = rng.randrange(nd), rng.randrange(nd)
        return f"moveaxis({a}, {b})", gt.moveaxis(g, a, b), t.movedim(a, b)
    if kind == "squeeze" and 1 in g.shape:
        a = g.shape.index(1)
        return f"squeeze({a})", gt.squeeze(g, axis=a), t.squeeze(a)
    if kind == "expand" and nd < 4:
        a = rng.randrange(nd + 1)
        return f"expand_dims({a})", gt.expand_dims(g, axis=a), t.unsqueeze(a)
    if kind == "unpack" and nd and 0 < g.shape[0] <= 4:
        i = rng.randrange(g.shape[0])
        return f"unpack[{i}]", tuple(g)[i], t[i]        # torch forbids writes into unbind's outputs: index there
    return None


def _factor(rng, n):
    shape, m = [], n
    for p in (2, 3, 5, 7):
        while m % p == 0:
            shape.append(p)
            m //= p
    if m > 1:
        shape.append(m)
    rng.shuffle(shape)
    out = []
    for s in shape:
        if out and rng.random() < 0.5:
            out[-1] *= s
        else:
            out.append(s)
    return tuple(out)


def _value(rng, pool, shape):
    """A new value for a region of ``shape``: from another pool tensor when it broadcasts, else a constant."""
    cands = [(n, g, t) for n, g, t in pool if g.size and _fits(g.shape, shape)]
    c = round(rng.uniform(-1.5, 1.5), 2)
    if cands and rng.random() < 0.8:
        n, g, t = rng.choice(cands)
        f = rng.choice(sorted(UNARY))
        return f"{f}({n} * 1.0) * {c}", UNARY[f][0](g * 1.0) * c, getattr(t.mul(1.0), f)() * c
    return f"{c}", c, c


def _fits(src, dst):
    if len(src) > len(dst):
        return False
    return all(a in (1, b) for a, b in zip(src[::-1], dst[::-1]))


def run(seed, steps=None, device="cpu"):
    """One random program; a Result with status ok, refused (both refused the backward) or mismatch."""
    import torch
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    shapes = [tuple(rng.randint(1, 4) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 2))]
    vals = [nrng.uniform(-1, 1, s) for s in shapes]
    gx = [gt.asarray(v, device=device).requires_grad_() for v in vals]
    tx = [torch.tensor(v, requires_grad=True) for v in vals]
    log = [f"x{i} = leaf of shape {s}" for i, s in enumerate(shapes)]
    pool = []
    for i, (g, t) in enumerate(zip(gx, tx)):
        pool.append((f"t{i}", g * 1.0, t * 1.0))
        log.append(f"t{i} = x{i} * 1.0")
    for _ in range(steps or rng.randint(3, 12)):
        n, g, t = rng.choice(pool)
        r = rng.random()
        name = f"t{len(pool)}"
        if r < 0.4:
            v = _view(rng, g, t)
            if v is None:
                continue
            pool.append((name, v[1], v[2]))
            log.append(f"{name} = {n}{v[0]}" if v[0][0] in "[." else f"{name} = {v[0]} of {n}")
        elif r < 0.8:
            op = rng.choice(("=", "+=", "-=", "*="))
            if g.ndim and rng.random() < 0.6:
                k = tuple(e for e in _slice_key(rng, g.shape) if e is not None)
                region = g[k].shape
            else:
                k, region = None, g.shape
            vs, vg, vt = _value(rng, pool, region)
            if k is None and op == "=":
                k = (Ellipsis,)
            target = f"{n}[{k}]" if k is not None else n
            log.append(f"{target} {op} {vs}")
            _write(g, k, op, vg)
            _write(t, k, op, vt)
        else:
            f = rng.choice(sorted(UNARY))
            pool.append((name, UNARY[f][0](g) * 1.0, getattr(t, f)() * 1.0))   # (torch: its out saved by none)
            log.append(f"{name} = {f}({n}) * 1.0")
    return _compare(seed, log, pool, gx, tx, torch)


def _write(a, k, op, v):
    if k is None:
        if op == "+=":
            a += v
        elif op == "-=":
            a -= v
        else:
            a *= v
    elif op == "=":
        a[k] = v
    elif op == "+=":
        a[k] += v
    elif op == "-=":
        a[k] -= v
    else:
        a[k] *= v


def _compare(seed, log, pool, gx, tx, torch):
    for n, g, t in pool:
        if not np.allclose(gt.to_numpy(g), t.detach().numpy(), rtol=1e-10, atol=1e-12):
            return Result(seed, "mismatch", log, f"value of {n}")
    ws = [np.cos(np.arange(g.size, dtype=np.float64) + i).reshape(g.shape) for i, (n, g, t) in enumerate(pool)]
    t_err = g_err = None
    try:
        sum(gt.sum(g * gt.asarray(w, device=g.device)) for (n, g, t), w in zip(pool, ws)).backward()
    except RuntimeError as e:
        g_err = e
    try:
        sum((t * torch.tensor(w)).sum() for (n, g, t), w in zip(pool, ws)).backward()
    except RuntimeError as e:
        t_err = e
    if g_err is not None:
        return Result(seed, "refused" if t_err is not None else "mismatch", log, f"gradtape refused: {g_err}")
    if t_err is not None:
        return Result(seed, "refused", log, f"only torch refused: {t_err}")
    for i, (g, t) in enumerate(zip(gx, tx)):
        gg = gt.to_numpy(g.grad) if g.grad is not None else np.zeros(g.shape)
        tg = t.grad.numpy() if t.grad is not None else np.zeros(tuple(t.shape))
        if not np.allclose(gg, tg, rtol=1e-10, atol=1e-12):
            return Result(seed, "mismatch", log, f"gradient of x{i}: {gg.ravel()} vs torch {tg.ravel()}")
    return Result(seed, "ok", log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu (NumPy) or strict (array-api-strict)")
    a = ap.parse_args(argv)
    counts, bad, t0 = {"ok": 0, "refused": 0, "mismatch": 0}, [], time.time()
    for s in range(a.seed, a.seed + a.n):
        r = run(s, device=a.device)
        counts[r.status] += 1
        if r.status == "mismatch":
            bad.append(r)
    print(counts, f"{time.time() - t0:.1f} s")
    for r in bad[:5]:
        print(r.report(), "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
