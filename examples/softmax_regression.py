"""Softmax regression (d2l 3.6/3.7) on scikit-learn's 8x8 digits: one Linear layer and the cross-entropy.

    python examples/softmax_regression.py [--device cpu|cuda|strict] [--epochs 30] [--out curves.png]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradtape as gt  # noqa: E402
from _common import digits, parser, plot, train_classifier  # noqa: E402


def main(argv=None):
    args = parser(__doc__.split("\n")[0], "softmax_regression", epochs=30, lr=0.5, batch_size=64).parse_args(argv)
    gt.nn.manual_seed(args.seed)
    data = digits(args.device, args.seed)
    net = gt.nn.Linear(64, 10, device=args.device, dtype=gt.float32)
    gt.nn.init.normal_(net.weight, 0.0, 0.01)            # d2l's initialisation
    gt.nn.init.zeros_(net.bias)
    opt = gt.optim.SGD(net.parameters(), lr=args.lr)
    curves = train_classifier(net, opt, data, args, gt.nn.Generator(args.seed), "softmax regression")
    acc = curves["accuracy"]["test"][-1]
    print(f"test accuracy {acc:.4f} after {args.epochs} epochs "
          f"(train loss {curves['loss']['train'][-1]:.4f})")
    if args.out:
        plot(args.out, curves, f"softmax regression on digits ({args.device})")
        print(f"curves written to {args.out}")
    return {"test_accuracy": acc, "curves": curves, "out": args.out}


if __name__ == "__main__":
    main()
