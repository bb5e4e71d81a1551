"""Linear regression from scratch (d2l 3.2) on synthetic data: recover w = [2, -3.4], b = 4.2.

The d2l chapter's code with gradtape: MXNet-style ``attach_grad`` /
``gt.record()`` / ``backward()``, minibatch SGD written by hand.

    python examples/linear_regression.py [--device cpu|cuda|strict] [--epochs 3] [--out curves.png]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradtape as gt  # noqa: E402
from _common import epochs_bar, fmt, minibatches, parser, plot  # noqa: E402

TRUE_W = [2.0, -3.4]
TRUE_B = 4.2


def synthetic_data(w, b, num_examples, gen, device):
    """y = Xw + b + noise, X ~ N(0, 1), noise ~ N(0, 0.01²)."""
    X = gen.normal((num_examples, w.shape[0]), dtype=gt.float32, device=device)
    y = X @ w + b
    y = y + gen.normal(y.shape, std=0.01, dtype=gt.float32, device=device)
    return X, gt.reshape(y, (-1, 1))


def linreg(X, w, b):
    return X @ w + b


def squared_loss(y_hat, y):
    return (y_hat - gt.reshape(y, y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    """Minibatch SGD: p -= lr * grad / batch_size, in place."""
    with gt.no_grad():
        for p in params:
            p -= lr * p.grad / batch_size


def main(argv=None):
    args = parser(__doc__.split("\n")[0], "linear_regression", epochs=3, lr=0.03, batch_size=10).parse_args(argv)
    dev = args.device
    gen = gt.nn.Generator(args.seed)
    true_w = gt.asarray(TRUE_W, dtype=gt.float32, device=dev)
    features, labels = synthetic_data(true_w, TRUE_B, 1000, gen, dev)

    w = gen.normal((2, 1), std=0.01, dtype=gt.float32, device=dev)
    b = gt.zeros((1,), dtype=gt.float32, device=dev)
    w.attach_grad()
    b.attach_grad()

    losses = []
    bar = epochs_bar(args.epochs, args.quiet, "linear regression")
    for _ in bar:
        for idx in minibatches(features.shape[0], args.batch_size, gen, dev):
            X, y = gt.take(features, idx, axis=0), gt.take(labels, idx, axis=0)
            with gt.record():
                loss = squared_loss(linreg(X, w, b), y)
            loss.backward()                   # the gradient of loss.sum()
            sgd([w, b], args.lr, X.shape[0])
        train_l = float(gt.mean(squared_loss(linreg(features, w, b), labels)))
        losses.append(train_l)
        bar.set_postfix(loss=f"{train_l:.3g}")

    w_err = [abs(a - e) for a, e in zip(gt.reshape(w, (-1,)).tolist(), TRUE_W)]
    b_err = abs(b.item() - TRUE_B)
    print(f"w = {fmt(gt.reshape(w, (-1,)).tolist())}, b = {fmt(b.item())} (true w = {fmt(TRUE_W)}, b = {fmt(TRUE_B)})")
    print(f"error in estimating w: {fmt(w_err, '.1e')}; error in estimating b: {fmt(b_err, '.1e')}")
    if args.out:
        plot(args.out, {"loss": {"train (mean squared loss / 2)": losses}},
             f"linear regression from scratch on {dev}")
        print(f"curves written to {args.out}")
    return {"w": gt.reshape(w, (-1,)).tolist(), "b": b.item(), "w_err": w_err, "b_err": b_err, "losses": losses,
            "out": args.out}


if __name__ == "__main__":
    main()
