"""Shared bits of the examples: command line, data on a device, minibatches, progress bar, plots."""
from __future__ import annotations

import argparse
import os

import gradtape as gt

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")   # gitignored


def parser(description, name, epochs, lr, batch_size):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--device", default="cpu", help="cpu (NumPy), cuda / cuda:N (CuPy) or strict (array-api-strict)")
    ap.add_argument("--epochs", type=int, default=epochs, help=f"passes over the training data (default {epochs})")
    ap.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    ap.add_argument("--batch-size", type=int, default=batch_size, help=f"minibatch size (default {batch_size})")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data split, initial weights and shuffling")
    ap.add_argument("--out", default=os.path.join(OUT_DIR, f"{name}.png"),
                    help=f"PNG of the training curves (default examples/output/{name}.png)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def epochs_bar(n, quiet, desc):
    """range(n) with a tqdm progress bar over epochs."""
    from tqdm.auto import tqdm
    return tqdm(range(n), desc=desc, unit="epoch", disable=quiet, leave=True)


def minibatches(n, batch_size, gen, device):
    """Index tensors of shuffled minibatches covering range(n) (shuffled on ``device`` by ``gen``)."""
    perm = gen.permutation(n, device=device)
    for i in range(0, n, batch_size):
        yield perm[i:min(i + batch_size, n)]         # in-bounds stops: the array API leaves others unspecified


def digits(device, seed, dtype=gt.float32):
    """scikit-learn's 8x8 digits (1,797 images, shipped with scikit-learn), pixels scaled to [0, 1], 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.2, random_state=seed, stratify=y)
    as_t = lambda a, dt=None: gt.asarray(a, dtype=dt, device=device)   # noqa: E731
    return as_t(Xtr, dtype), as_t(ytr, gt.int64), as_t(Xte, dtype), as_t(yte, gt.int64)


def accuracy(logits, labels):
    return float(gt.mean(gt.astype(gt.argmax(logits, axis=-1) == labels, gt.float64)))


def fmt(values, spec=".4f"):
    """Floats (one, or a list) in one format: float32 results print as 0.0123, not 0.012299999594688416."""
    if isinstance(values, (list, tuple)):
        return "[" + ", ".join(fmt(v, spec) for v in values) + "]"
    return format(values, spec)


def figure(curves, title):
    """The training curves' figure: one panel per quantity, whole-number epoch ticks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (what, series) in zip(axes[0], curves.items()):
        for label, ys in series.items():
            ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))      # epochs are whole numbers
        ax.set_ylabel(what)
        if what == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot(path, curves, title):
    """One panel per quantity: curves = {"loss": {"train": [...], ...}, "accuracy": {...}} per epoch; saved as PNG."""
    import matplotlib.pyplot as plt
    fig = figure(curves, title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train_classifier(model, opt, data, args, gen, desc):
    """Minibatch training with per-epoch train loss / train accuracy / test accuracy; returns the curves.

    PyTorch-style loop: ``model.train()``, ``opt.zero_grad()``, ``loss.backward()``, ``opt.step()``;
    evaluation under ``gt.no_grad()`` with ``model.eval()`` (Dropout off)."""
    Xtr, ytr, Xte, yte = data
    curves = {"loss": {"train": [], "test": []}, "accuracy": {"train": [], "test": []}}
    bar = epochs_bar(args.epochs, args.quiet, desc)
    for _ in bar:
        model.train()
        for idx in minibatches(Xtr.shape[0], args.batch_size, gen, args.device):
            opt.zero_grad()
            loss = gt.nn.cross_entropy(model(gt.take(Xtr, idx, axis=0)), gt.take(ytr, idx, axis=0))
            loss.backward()
            opt.step()
        model.eval()
        with gt.no_grad():
            for split, X, y in (("train", Xtr, ytr), ("test", Xte, yte)):
                logits = model(X)
                curves["loss"][split].append(float(gt.nn.cross_entropy(logits, y)))
                curves["accuracy"][split].append(accuracy(logits, y))
        bar.set_postfix(loss=f"{curves['loss']['train'][-1]:.3g}", test_acc=f"{curves['accuracy']['test'][-1]:.3f}")
    return curves
