"""Differential fuzzing of complex programs and ``gt.fft`` (issue 12), oracle torch (complex128).

A program is a random straight-line chain over a pool of values: two complex inputs of shape (3, 4) and one
real input of shape (4,); each step applies a random op (holomorphic, non-holomorphic, arithmetic with
broadcasting and real/complex promotion, fft transforms) to values of the pool and squashes the result
(v / (1 + |v|), itself differentiable) so long chains stay finite. The loss is real: sum(real(v * conj(w))) of
the last value with a fixed random complex w. Checked: the value, gt.grad w.r.t. all three inputs against
torch's .grad (PyTorch's convention), and gt.jvp against torch.func.jvp. Replay a seed with
``python -m tests.difftest.complex --n 1 --seed SEED`` (prints the program).

Non-finite values. Exact zeros arise (``x - x``, ``imag`` of a real value, rfft's DC imaginary part) and reach
divide/reciprocal/sqrt/log. Where the non-finite result is a matter of how a derivative is written, gradtape
writes it as torch does (sqrt'(z) as ct / (2 out), log's ct / z, divide's d/dy as -ct (x / y) / y: at 0 both give
(re/0, im/0), e.g. inf - inf j, not NaN + NaN j; tests/test_fuzz_regressions_session.py). What remains is how C
complex arithmetic treats inf and NaN parts, which differs between NumPy and torch and even inside each (NumPy:
``1 / (0+0j)`` is inf + nan j, ``reciprocal(0j)`` nan + nan j; torch the other way round; torch's vectorized
complex division gives NaN + NaN j where its scalar one gives inf + nan j): not a gradient error. So the
comparison is NumPy's ``allclose(..., equal_nan=True)``: a complex entry with a NaN part on both sides matches
(``isnan`` of a complex is "either part NaN"), whatever the other part; an entry with infinities but no NaN must
equal torch's exactly, and a NaN against a number is a mismatch. ``imag`` of a real value is a constant zero
(JAX's ``jnp.imag``; torch refuses it), so its oracle is ``zeros_like``, with no path to the input: a NaN
cotangent does not reach the input through it (``0 * x`` would pass it on as 0 * NaN).
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

import gradtape as gt

# the ops a step draws (gradtape and torch spellings below; torch is passed in: the module imports without it)
UNARY = ["sin", "cos", "tanh", "exp", "log", "sqrt", "square", "reciprocal", "conj", "abs", "real", "imag",
         "negative", "fft", "ifft", "fftn", "fftshift", "irfft4", "rfft6", "hfft4", "sum1", "mean0", "prod1"]
BINARY = ["add", "subtract", "multiply", "divide", "matmul_t"]


def _gt_op(name):
    f = gt.fft
    table = {
        "fft": lambda x: f.fft(x), "ifft": lambda x: f.ifft(x, norm="ortho"),
        "fftn": lambda x: f.fftn(x, norm="forward"),
        "fftshift": lambda x: f.fftshift(x), "irfft4": lambda x: f.irfft(x, n=4),
        "rfft6": lambda x: f.rfft(gt.real(x), n=6),
        "hfft4": lambda x: f.hfft(x, n=4), "sum1": lambda x: gt.sum(x, axis=-1, keepdims=True) + x,
        "mean0": lambda x: gt.mean(x, axis=0) * x, "prod1": lambda x: gt.prod(x, axis=-1, keepdims=True) - x,
        "matmul_t": lambda x, y: gt.matmul(x, gt.matrix_transpose(y)) @ y if y.ndim == 2 else x * y,
    }
    return table.get(name) or getattr(gt, name)


def _torch_op(torch, name):
    f = torch.fft
    table = {
        "fft": lambda x: f.fft(x), "ifft": lambda x: f.ifft(x, norm="ortho"),
        "fftn": lambda x: f.fftn(x, norm="forward"),
        "fftshift": lambda x: f.fftshift(x), "irfft4": lambda x: f.irfft(x, n=4),
        "rfft6": lambda x: f.rfft(x.real, n=6),
        "hfft4": lambda x: f.hfft(x, n=4), "sum1": lambda x: torch.sum(x, dim=-1, keepdim=True) + x,
        "mean0": lambda x: torch.mean(x, dim=0) * x, "prod1": lambda x: torch.prod(x, dim=-1, keepdim=True) - x,
        "matmul_t": lambda x, y: _tmatmul(torch, x, y), "square": torch.square, "negative": torch.neg,
        "imag": lambda x: x.imag if x.is_complex() else torch.zeros_like(x), "real": lambda x: x.real,
    }
    return table.get(name) or getattr(torch, name)


def _tmatmul(torch, x, y):
    """torch.matmul does not promote real with complex: as gradtape's (the standard's) promotion."""
    if x.is_complex() or y.is_complex():
        x, y = x.to(torch.complex128), y.to(torch.complex128)
    return torch.matmul(x, y.mT) @ y


@dataclasses.dataclass
class Program:
    seed: int
    steps: list          # (op name, operand indices into the pool)
    inputs: list         # numpy arrays: complex (3, 4), complex (3, 4), real (4,)
    w: np.ndarray

    def source(self):
        lines = [f"# seed {self.seed}: v0, v1 complex (3, 4), v2 real (4,)"]
        for k, (name, ix) in enumerate(self.steps):
            lines.append(f"v{k + 3} = squash({name}({', '.join(f'v{i}' for i in ix)}))")
        lines.append(f"loss = sum(real(v{len(self.steps) + 2} * conj(w)))")
        return "\n".join(lines)


def generate(seed, length=6):
    rng = np.random.default_rng(seed)
    inputs = [rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4)) for _ in range(2)] + [rng.normal(size=4)]
    real = [False, False, True]      # which pool values are real-valued
    shapes = [(3, 4), (3, 4), (4,)]
    steps = []
    for _ in range(length):
        if rng.random() < 0.35:
            name = BINARY[rng.integers(len(BINARY))]
            ix = tuple(int(i) for i in rng.integers(len(shapes), size=2))
            if name == "matmul_t" and not (shapes[ix[0]] == shapes[ix[1]] == (3, 4)):
                name = "multiply"
            steps.append((name, ix))
            real.append(real[ix[0]] and real[ix[1]])
            shapes.append(np.broadcast_shapes(shapes[ix[0]], shapes[ix[1]]))
            continue
        i = int(rng.integers(len(shapes)))
        name = UNARY[rng.integers(len(UNARY))]
        if (name in ("irfft4", "hfft4", "mean0") and shapes[i] != (3, 4)
                or name in ("log", "sqrt") and real[i]):      # (log, sqrt of negative reals: NaN in both)
            name = "sin"
        steps.append((name, (i,)))
        real.append(name in ("abs", "real", "imag", "irfft4", "hfft4") or (real[i] and name not in (
            "fft", "ifft", "fftn", "rfft6")))
        shapes.append(shapes[i])
    return Program(seed, steps, inputs, rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4)))


def _run(prog, xs, op_of, absf, conj, realf, summ):
    pool = list(xs)
    for name, ix in prog.steps:
        v = op_of(name)(*[pool[i] for i in ix])
        pool.append(v / (1 + absf(v)))
    return pool[-1], summ(realf(pool[-1] * conj(prog.w_t)))


@dataclasses.dataclass
class Result:
    seed: int
    status: str
    detail: str = ""


def _close(a, b, rtol, atol):
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def compare(seed, inputs, gfn, tfn, torch, rtol=1e-8, atol=1e-10, vtol=(1e-9, 1e-11), dtypes=False):
    """A Result: gradtape's value, gradient w.r.t. every input and JVP against torch's (.grad, torch.func.jvp).
    ``gfn``/``tfn`` map the inputs (gradtape / torch tensors) to (value, real loss); ``vtol`` the value's
    (rtol, atol); ``dtypes``: a gradient must also have its input's dtype. Used by complex_linalg.py too."""
    txs = [torch.tensor(a, requires_grad=True) for a in inputs]
    tv, tl = tfn(*txs)
    if tl.requires_grad:     # (a loss of imag(real) alone is constant: no gradient, zeros below)
        tl.backward()
    gxs = [gt.asarray(a) for a in inputs]
    v, _ = gfn(*gxs)
    problems = []
    if not _close(gt.to_numpy(v), tv.detach().resolve_conj().numpy(), *vtol):
        problems.append("value")
    grads = gt.grad(lambda *xs: gfn(*xs)[1], argnums=tuple(range(len(inputs))))(*gxs)
    for k, (g, t) in enumerate(zip(grads, txs)):
        want = np.zeros_like(inputs[k]) if t.grad is None else t.grad.resolve_conj().numpy()
        if (dtypes and g.dtype != gxs[k].dtype) or not _close(gt.to_numpy(g), want, rtol, atol):
            problems.append(f"grad of input {k}")
    rng = np.random.default_rng(seed + 1)
    ts = [rng.normal(size=a.shape) + (1j * rng.normal(size=a.shape) if np.iscomplexobj(a) else 0) for a in inputs]
    _, tan = gt.jvp(lambda *xs: gfn(*xs)[0], tuple(gxs), tuple(gt.asarray(t) for t in ts))
    _, ttan = torch.func.jvp(lambda *xs: tfn(*xs)[0], tuple(torch.tensor(a) for a in inputs),
                             tuple(torch.tensor(t) for t in ts))
    if not _close(gt.to_numpy(tan), ttan.resolve_conj().numpy(), rtol, atol):
        problems.append("jvp")
    return Result(seed, "mismatch" if problems else "ok", ", ".join(problems))


def check(prog, torch):
    """Compare the value, the gradient w.r.t. every input and the JVP with torch's."""
    def gfn(*xs):
        prog.w_t = gt.asarray(prog.w)
        return _run(prog, xs, _gt_op, gt.abs, gt.conj, gt.real, gt.sum)

    def tfn(*xs):
        prog.w_t = torch.tensor(prog.w)
        return _run(prog, xs, lambda n: _torch_op(torch, n), torch.abs, torch.conj, torch.real, torch.sum)
    return compare(prog.seed, prog.inputs, gfn, tfn, torch)


def fuzz(argv, description, generate, check, shrink=None):
    """The command line of a fuzzer of this kind: ``--n`` programs from ``--seed`` (``--length`` steps where
    ``generate`` takes one); a mismatch prints its program (shrunk first when ``shrink`` is given)."""
    import torch
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--length", type=int, default=None)
    args = ap.parse_args(argv)
    bad = 0
    for s in range(args.seed, args.seed + args.n):
        prog = generate(s) if args.length is None else generate(s, args.length)
        r = check(prog, torch)
        if r.status != "ok" and shrink is not None:
            prog = shrink(prog, torch)
            r = check(prog, torch)
        if r.status != "ok" or args.n == 1:
            print(prog.source())
            print(r)
        bad += r.status != "ok"
    print(f"{args.n} programs, {bad} mismatches")
    return 1 if bad else 0

def main(argv=None):
    return fuzz(argv, __doc__.splitlines()[0], generate, check)

if __name__ == "__main__":
    raise SystemExit(main())
