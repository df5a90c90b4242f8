"""Which hidden activation learns fastest? Sigmoid, tanh, ReLU and Leaky ReLU, measured.

The same network (two hidden layers of 64 units) is trained on the same standardized
digits, with the same optimizer (SGD, momentum 0.9, learning rate 0.01, batches of 64),
the same number of epochs and the same seeds; only the hidden activation changes (each
with its "auto" initialization: Glorot for sigmoid and tanh, He for the ReLU family).
One epoch per ``partial_fit`` call, so the held-out accuracy is recorded along the way.

The sigmoid's derivative is at most 0.25 and its output is not centred on 0: the
gradient reaching the first layer is a fraction of tanh's, and it needs many more epochs
to reach the same training loss. Leaky ReLU with slope 0.01 trains like ReLU here (few
units die on this data).

Usage::

    python examples/learning_speed.py            # writes docs/images/learning_speed.png
    python examples/learning_speed.py --quick --out /tmp/speed.png
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "learning_speed.png")
ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu"]
TARGET_LOSS = 0.1


def train(activation, seed, X_tr, y_tr, X_te, y_te, epochs):
    """Training loss and held-out accuracy after each epoch."""
    est = MLPScratchClassifier((64, 64), activation=activation, solver="sgd",
                               learning_rate_init=0.01, momentum=0.9, batch_size=64,
                               random_state=seed)
    classes = np.unique(y_tr)
    accuracy = []
    for _ in range(epochs):
        est.partial_fit(X_tr, y_tr, classes=classes)
        accuracy.append(est.score(X_te, y_te))
    return np.array(est.loss_curve_), np.array(accuracy)


def epochs_to(curve, target):
    """First epoch (1-based) whose loss is below ``target``; None if never."""
    below = np.flatnonzero(curve < target)
    return int(below[0]) + 1 if below.size else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    epochs, seeds = (15, [0, 1]) if args.quick else (100, [0, 1, 2, 3, 4])
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=0)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)

    runs = {act: [train(act, s, X_tr, y_tr, X_te, y_te, epochs) for s in seeds]
            for act in ACTIVATIONS}
    results = {}
    print(f"digits, (64, 64), SGD lr 0.01 momentum 0.9, {epochs} epochs, "
          f"{len(seeds)} seeds (median over seeds)\n")
    print(f"{'activation':<12}{'loss@5':>9}{'loss@10':>9}{'final loss':>11}"
          f"{f'epochs to <{TARGET_LOSS}':>17}{'test acc':>10}")
    for act, res in runs.items():
        losses = np.array([r[0] for r in res])
        acc = np.array([r[1] for r in res])
        reached = [epochs_to(curve, TARGET_LOSS) for curve in losses]
        median_epochs = (None if any(e is None for e in reached)
                         else float(np.median(reached)))
        results[act] = {
            "loss_at_5": float(np.median(losses[:, min(4, epochs - 1)])),
            "loss_at_10": float(np.median(losses[:, min(9, epochs - 1)])),
            "final_loss": float(np.median(losses[:, -1])),
            "epochs_to_target": median_epochs,
            "test_accuracy": float(np.median(acc[:, -1])),
        }
        r = results[act]
        shown = "never" if median_epochs is None else f"{median_epochs:g}"
        print(f"{act:<12}{r['loss_at_5']:>9.3f}{r['loss_at_10']:>9.3f}"
              f"{r['final_loss']:>11.4f}{shown:>17}{r['test_accuracy']:>10.3f}")

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(13, 4.6))
    x = np.arange(1, epochs + 1)
    for act, res in runs.items():
        losses = np.array([r[0] for r in res])
        acc = np.array([r[1] for r in res])
        # Leaky ReLU trains almost as ReLU does: dashed, so that ReLU shows beneath
        style = "--" if act == "leaky_relu" else "-"
        line, = ax_loss.plot(x, np.median(losses, axis=0), style, label=act)
        ax_loss.fill_between(x, losses.min(axis=0), losses.max(axis=0), alpha=0.2,
                             color=line.get_color())
        ax_acc.plot(x, np.median(acc, axis=0), style, label=act, color=line.get_color())
    ax_loss.axhline(TARGET_LOSS, color="0.5", linestyle=":", linewidth=1)
    ax_loss.set_yscale("log")
    ax_loss.set_title(f"training loss (median and range over {len(seeds)} seeds)")
    ax_acc.set_title("held-out accuracy")
    ax_acc.set_ylim(0.5, 1.0)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Same data, network, optimizer and seeds; only the hidden activation "
                 "changes")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {args.out}")
    return results


if __name__ == "__main__":
    main()
