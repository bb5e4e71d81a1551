"""Differential fuzzing of ``gt.linalg`` on complex (and real) matrices mixed with complex elementwise ops, oracle
torch (complex128).

A program is a random straight-line chain over a pool of matrices: a complex (3, 3), a complex stack (2, 3, 3) and
a real (3, 3); each step applies one op of :data:`OPS` (elementwise, products, every ``gt.linalg`` function) to
values of the pool and squashes the result (v / (1 + |v|), differentiable), so every entry has modulus < 1 and the
conditioning below holds whatever came before. Each op is written once, against a library adapter (:class:`GT` or
:class:`Torch`), so gradtape and the oracle run the same program. The loss is real: sum(real(v * conj(w))) of the
last value with a fixed random complex w. Checked: the value, ``gt.grad`` w.r.t. all three inputs against torch's
``.grad`` (PyTorch's convention) and ``gt.jvp`` against ``torch.func.jvp``.

Conditioning (entries of modulus < 1, so the spectral norm of v is < 3): ``inv``/``solve``/``det``/``slogdet``/
``qr``/``matrix_power(-2)`` take v + 4I (diagonally dominant); ``cholesky`` v vᴴ + I; ``eigh``/``eigvalsh`` take
herm(v) + diag(0, 7, 14) (eigenvalue gaps > 1); ``svd``/``svdvals``/``pinv``/``matrix_norm`` v + diag(4, 11, 18)
(singular values apart and >= 1). Gauge: eigenvectors and singular vectors enter only through gauge-invariant
functions (V diag(f(w)) Vᴴ, |V|², U diag(S) Vh, the projector Q Qᴴ), as PyTorch requires of complex losses.

A mismatch is shrunk: to the shortest prefix that still mismatches, then without the steps the last value does not
depend on. Replay a seed with ``python -m tests.difftest.complex_linalg --n 1 --seed SEED`` (prints the program).
"""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

import gradtape as gt

from . import complex as C

SHIFT_EIG = np.diag([0.0, 7.0, 14.0])
SHIFT_SV = np.diag([4.0, 11.0, 18.0])


# ---- library adapters: the vocabulary the ops are written in -------------------------------------------------------
class GT:
    """gradtape."""

    name = "gt"
    la = gt.linalg

    def c(self, a):
        return gt.asarray(a)

    def mH(self, v):
        return gt.conj(gt.matrix_transpose(v))

    def pro(self, *vs):            # gradtape promotes real with complex as the standard says
        return vs

    def trace(self, v):
        return gt.linalg.trace(v)

    def diagonal(self, v):
        return gt.linalg.diagonal(v)

    def mnorm(self, v, ord):
        return gt.linalg.matrix_norm(v, ord=ord)

    def vnorm(self, v, ord):
        return gt.linalg.vector_norm(v, axis=-1, keepdims=True, ord=ord)

    def tensordot(self, v, w):
        return gt.linalg.tensordot(v, w, axes=1)

    def outer(self, a, b):
        return gt.linalg.outer(a, b)

    def cross(self, v, w):
        return gt.linalg.cross(v, w)

    def __getattr__(self, name):   # sin, exp, conj, real, abs, square, matmul...
        return getattr(gt, name)


class Torch:
    """torch (complex128), with the standard's real/complex promotion where torch refuses mixed operands."""

    name = "torch"

    def __init__(self, torch):
        self.torch, self.la = torch, torch.linalg

    def c(self, a):
        return self.torch.tensor(np.asarray(a))

    def mH(self, v):
        return v.mH

    def pro(self, *vs):
        if any(v.is_complex() for v in vs):
            return tuple(v.to(self.torch.complex128) for v in vs)
        return vs

    def trace(self, v):
        return self.torch.diagonal(v, dim1=-2, dim2=-1).sum(-1)

    def diagonal(self, v):
        return self.torch.diagonal(v, dim1=-2, dim2=-1)

    def mnorm(self, v, ord):
        return self.la.matrix_norm(v, ord=ord)

    def vnorm(self, v, ord):
        return self.la.vector_norm(v, dim=-1, keepdim=True, ord=ord)

    def tensordot(self, v, w):
        v, w = self.pro(v, w)
        return self.torch.tensordot(v, w, dims=1)

    def outer(self, a, b):
        return self.torch.outer(a, b)

    def cross(self, v, w):         # torch.linalg.cross broadcasts only operands of one rank
        return self.la.cross(*self.torch.broadcast_tensors(*self.pro(v, w)))

    def matmul(self, v, w):
        return self.torch.matmul(*self.pro(v, w))

    def __getattr__(self, name):
        return getattr(self.torch, name)


# ---- the ops: name -> (arity, f(L, *values)); every result has the broadcast shape of its operands ---------------
def _herm(L, v):
    return (v + L.mH(v)) / 2


def _col(x):          # (..., k) -> (..., 1, k): a per-column factor
    return x[..., None, :]


def _mat(x):          # (...) -> (..., 1, 1)
    return x[..., None, None]


def _eigh_fn(L, v):
    w, V = L.la.eigh(_herm(L, v) + L.c(SHIFT_EIG))
    return L.matmul(V * _col(L.sin(w)), L.mH(V)) + V * L.conj(V) * _col(w) / 10


def _svd_fn(L, v):
    U, S, Vh = L.la.svd(v + L.c(SHIFT_SV), full_matrices=False)
    return L.matmul(U * _col(L.sqrt(S)), Vh) + U * L.conj(U) - Vh * L.conj(Vh)


def _svd_tall_fn(L, v):
    U, S, Vh = L.la.svd(v[..., :, :2] + L.c(SHIFT_SV[:, :2]), full_matrices=True)
    U2 = U[..., :, :2]
    return L.matmul(U2 * _col(S), L.mH(U2)) / 20 + U2[..., :, :1] * Vh[..., :1, :1]


def _qr_fn(L, v):
    Q, R = L.la.qr(v + 4 * L.c(np.eye(3)))
    return Q + R / 5


def _qr_tall_fn(L, v):
    Q, R = L.la.qr(v[..., :, :2] + L.c(SHIFT_SV[:, :2]))
    return L.matmul(Q, L.mH(Q)) + L.matmul(Q, R[..., :, :1]) / 10


def _pinv_fn(L, v):
    t = v[..., :, :2] + L.c(SHIFT_SV[:, :2])
    return L.matmul(L.la.pinv(v + L.c(SHIFT_SV)), v) + L.matmul(v, L.matmul(t, L.la.pinv(t)))


def _slogdet_fn(L, v):
    s, ld = L.la.slogdet(v + 4 * L.c(np.eye(3)))
    return v * _mat(s) + _mat(ld)


def _outer_or_mul(L, v, w):
    if v.ndim == 2 and w.ndim == 2:
        a, b = L.pro(v[0], w[:, 1])
        return L.outer(a, b) + v
    return L.multiply(v, w)


def _tensordot_or_matmul(L, v, w):
    return L.tensordot(v, w) if w.ndim == 2 else L.matmul(v, w)


EYE4 = 4 * np.eye(3)
OPS = {
    # elementwise and products (complex and real)
    "sin": (1, lambda L, v: L.sin(v)), "exp": (1, lambda L, v: L.exp(v)), "conj": (1, lambda L, v: L.conj(v)),
    "real": (1, lambda L, v: L.real(v)), "abs": (1, lambda L, v: L.abs(v)), "square": (1, lambda L, v: L.square(v)),
    "mH": (1, lambda L, v: L.mH(v)),
    "add": (2, lambda L, v, w: L.add(v, w)), "multiply": (2, lambda L, v, w: L.multiply(v, w)),
    "matmul": (2, lambda L, v, w: L.matmul(v, w)),
    # gt.linalg
    "inv": (1, lambda L, v: L.la.inv(v + L.c(EYE4))),
    "solve": (2, lambda L, v, w: L.la.solve(*L.pro(v + L.c(EYE4), w))),
    "det": (1, lambda L, v: v * _mat(L.la.det(v + L.c(EYE4))) / 50),
    "slogdet": (1, _slogdet_fn),
    "cholesky": (1, lambda L, v: L.la.cholesky(L.matmul(v, L.mH(v)) + L.c(np.eye(3)))),
    "cholesky_upper": (1, lambda L, v: L.la.cholesky(L.matmul(L.mH(v), v) + L.c(np.eye(3)), upper=True)),
    "eigh": (1, _eigh_fn),
    "eigvalsh": (1, lambda L, v: v * _col(L.la.eigvalsh(_herm(L, v) + L.c(SHIFT_EIG))) / 10),
    "svd": (1, _svd_fn), "svd_tall_full": (1, _svd_tall_fn),
    "svdvals": (1, lambda L, v: v * _col(L.la.svdvals(v + L.c(SHIFT_SV))) / 10),
    "qr": (1, _qr_fn), "qr_tall": (1, _qr_tall_fn),
    "pinv": (1, _pinv_fn),
    **{f"matrix_norm_{o}": (1, (lambda o: lambda L, v: v * _mat(L.mnorm(v + L.c(SHIFT_SV), o)) / 10)(o))
       for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)},
    "matrix_power3": (1, lambda L, v: L.la.matrix_power(v, 3)),
    "matrix_power-2": (1, lambda L, v: L.la.matrix_power(v + L.c(EYE4), -2)),
    "trace": (1, lambda L, v: v * _mat(L.trace(v))),
    "diagonal": (1, lambda L, v: v * _col(L.diagonal(v))),
    "cross": (2, lambda L, v, w: L.cross(v, w)),
    "outer": (2, _outer_or_mul),
    "tensordot": (2, _tensordot_or_matmul),
    "vecdot": (2, lambda L, v, w: v * L.la.vecdot(*L.pro(v, w))[..., None]),
    **{f"vector_norm_{o}": (1, (lambda o: lambda L, v: v / (1 + L.vnorm(v, o)))(o)) for o in (2, 1, 3, math.inf)},
}
MAKES_REAL = {"real", "abs"}


@dataclasses.dataclass
class Program:
    seed: int
    steps: list          # (op name, operand indices into the pool)
    inputs: list         # complex (3, 3), complex (2, 3, 3), real (3, 3)
    w: np.ndarray

    def source(self):
        lines = [f"# seed {self.seed}: v0 complex (3, 3), v1 complex (2, 3, 3), v2 real (3, 3); "
                 "ops: tests/difftest/complex_linalg.py OPS"]
        for k, (name, ix) in enumerate(self.steps):
            lines.append(f"v{k + 3} = squash({name}({', '.join(f'v{i}' for i in ix)}))")
        lines.append(f"loss = sum(real(v{len(self.steps) + 2} * conj(w)))")
        return "\n".join(lines)


NAMES = sorted(OPS)


def generate(seed, length=4):
    rng = np.random.default_rng(seed)
    cz = lambda *s: rng.normal(size=s) + 1j * rng.normal(size=s)    # noqa: E731
    inputs = [cz(3, 3) * 0.6, cz(2, 3, 3) * 0.6, rng.normal(size=(3, 3)) * 0.6]
    shapes = [(3, 3), (2, 3, 3), (3, 3)]
    steps = []
    for k in range(length):
        # the first step and half the others use a linalg op; operands prefer the newest values (chains)
        name = NAMES[rng.integers(len(NAMES))]
        if k == 0 or rng.random() < 0.5:
            while name in ("sin", "exp", "conj", "real", "abs", "square", "mH", "add", "multiply", "matmul"):
                name = NAMES[rng.integers(len(NAMES))]
        arity = OPS[name][0]
        n = len(shapes)
        ix = tuple(int(min(n - 1, n - 1 - rng.integers(0, 3) if rng.random() < 0.7 else rng.integers(n)))
                   for _ in range(arity))
        if name == "cross" and ix[0] == ix[1]:      # v × v = 0 exactly in one library, ~1e-17 in the other: QR's
            name = "multiply"                        # sign convention (LAPACK) flips between them at an exact 0
        steps.append((name, ix))
        shapes.append(np.broadcast_shapes(*[shapes[i] for i in ix]))
    return Program(seed, steps, inputs, cz(*shapes[-1]))


def _run(prog, L, xs):
    pool = list(xs)
    for name, ix in prog.steps:
        v = OPS[name][1](L, *[pool[i] for i in ix])
        pool.append(v / (1 + L.abs(v)))
    last = pool[-1]
    return last, L.sum(L.real(last * L.conj(L.c(prog.w))))


def check(prog, torch, rtol=1e-7, atol=1e-9):
    """Compare the value, the gradient w.r.t. every input (and its dtype) and the JVP with torch's."""
    G, T = GT(), Torch(torch)
    return C.compare(prog.seed, prog.inputs, lambda *xs: _run(prog, G, xs), lambda *xs: _run(prog, T, xs), torch,
                     rtol, atol, vtol=(rtol, atol), dtypes=True)

def _needed(steps):
    """The steps the last value depends on (pool indices 0-2 are the inputs)."""
    keep, todo = set(), [len(steps) + 2]
    while todo:
        i = todo.pop()
        if i >= 3 and i not in keep:
            keep.add(i)
            todo.extend(steps[i - 3][1])
    return sorted(keep)


def shrink(prog, torch):
    """The shortest prefix that still mismatches, without the steps its last value does not depend on."""
    for n in range(1, len(prog.steps) + 1):
        cand = dataclasses.replace(prog, steps=prog.steps[:n])
        if _check_quiet(cand, torch).status != "ok":
            break
    keep = _needed(cand.steps)
    where = {old: new + 3 for new, old in enumerate(keep)}
    where.update({i: i for i in range(3)})
    steps = [(cand.steps[i - 3][0], tuple(where[j] for j in cand.steps[i - 3][1])) for i in keep]
    small = dataclasses.replace(cand, steps=steps)
    return small if _check_quiet(small, torch).status != "ok" else cand


def _check_quiet(prog, torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        try:
            return check(prog, torch)
        except Exception as e:          # an exception on either side is a finding too
            return C.Result(prog.seed, "error", f"{type(e).__name__}: {e}")


def main(argv=None):
    return C.fuzz(argv, __doc__.splitlines()[0], generate, _check_quiet, shrink)

if __name__ == "__main__":
    raise SystemExit(main())
