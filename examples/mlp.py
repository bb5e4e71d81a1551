"""Multilayer perceptron (d2l 4.2/4.3) on scikit-learn's 8x8 digits: 64-256-10, ReLU, Dropout, SGD with momentum.

    python examples/mlp.py [--device cpu|cuda|strict] [--epochs 40] [--out curves.png]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradtape as gt  # noqa: E402
from _common import digits, parser, plot, train_classifier  # noqa: E402


def build(device, hidden=256, dropout=0.2):
    net = gt.nn.Sequential(gt.nn.Linear(64, hidden, device=device, dtype=gt.float32), gt.nn.ReLU(),
                           gt.nn.Dropout(dropout),
                           gt.nn.Linear(hidden, 10, device=device, dtype=gt.float32))
    for layer in (net[0], net[3]):
        gt.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        gt.nn.init.zeros_(layer.bias)
    return net


def main(argv=None):
    ap = parser(__doc__.split("\n")[0], "mlp", epochs=40, lr=0.05, batch_size=64)
    ap.add_argument("--hidden", type=int, default=256, help="hidden units (default 256)")
    ap.add_argument("--dropout", type=float, default=0.2, help="dropout probability (default 0.2)")
    ap.add_argument("--save", metavar="PATH", help="save the trained weights to PATH (.npz)")
    args = ap.parse_args(argv)
    gt.nn.manual_seed(args.seed)
    data = digits(args.device, args.seed)
    net = build(args.device, args.hidden, args.dropout)
    opt = gt.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    curves = train_classifier(net, opt, data, args, gt.nn.Generator(args.seed), "MLP")
    acc = curves["accuracy"]["test"][-1]
    print(f"test accuracy {acc:.4f} after {args.epochs} epochs (train loss {curves['loss']['train'][-1]:.4f})")
    if args.save:
        net.save(args.save)
        print(f"weights written to {args.save}")
    if args.out:
        plot(args.out, curves, f"MLP 64-{args.hidden}-10 on digits ({args.device})")
        print(f"curves written to {args.out}")
    return {"test_accuracy": acc, "curves": curves, "out": args.out, "net": net}


if __name__ == "__main__":
    main()
