"""A learning rate that kills ReLU units, and the Leaky ReLU and PReLU that survive it.

Adam with ``learning_rate_init=0.1`` (a hundred times the default) on standardized
digits, two hidden layers of 128 units, one epoch per ``partial_fit`` call. After each
epoch :func:`~sknn_scratch.diagnostics.diagnose` counts the *dead* units (derivative 0
on every training sample: a ReLU unit whose pre-activation is negative everywhere; no
gradient of the data reaches its incoming weights, and it comes back only if the layer
below changes its inputs), and the script also counts the units that are *inactive*
(pre-activation <= 0 on every sample). For ReLU the two are the same. A Leaky ReLU unit
in that state still passes 1 % of the gradient and a PReLU unit a learned share of it,
so they are never dead and can come back.

Usage::

    python examples/dead_relu.py            # writes docs/images/dead_relu.png
    python examples/dead_relu.py --quick --out /tmp/dead.png
"""

import argparse
import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier  # noqa: E402
from sknn_scratch.activations import LeakyReLU, PReLU, ReLU  # noqa: E402
from sknn_scratch.diagnostics import diagnose  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "dead_relu.png")
ACTIVATIONS = {"ReLU": ReLU(), "LeakyReLU(0.01)": LeakyReLU(0.01),
               "PReLU(0.25)": PReLU(0.25)}
LEARNING_RATE = 0.1


def make_estimator(activation, seed=0):
    """The setting of this example: a learning rate far too high for ReLU."""
    return MLPScratchClassifier((128, 128), activation=activation, solver="adam",
                                learning_rate_init=LEARNING_RATE, random_state=seed)


def inactive_fraction(est, X):
    """Per hidden layer: share of units whose pre-activation is <= 0 on every row."""
    shares, a = [], X
    for W, b, act, slope in zip(est.coefs_[:-1], est.intercepts_[:-1],
                                est.activations_, est.slopes_):
        z = a @ W + b
        shares.append(float(np.mean(np.all(z <= 0, axis=0))))
        a = act.forward(z) if slope is None else np.where(z > 0, z, slope * z)
    return shares


def track(activation, X_tr, y_tr, X_te, y_te, epochs):
    est = make_estimator(activation)
    dead, inactive, accuracy = [], [], []
    classes = np.unique(y_tr)
    for _ in range(epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            est.partial_fit(X_tr, y_tr, classes=classes)
        dead.append([r.dead_fraction for r in diagnose(est, X_tr)])
        inactive.append(inactive_fraction(est, X_tr))
        accuracy.append(est.score(X_te, y_te))
    return est, np.array(dead), np.array(inactive), accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    epochs = 8 if args.quick else 40
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=0)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)

    runs = {name: track(act, X_tr, y_tr, X_te, y_te, epochs)
            for name, act in ACTIVATIONS.items()}
    results = {}
    print(f"digits, (128, 128), adam learning_rate_init={LEARNING_RATE}, {epochs} "
          "epochs; fractions of units per hidden layer, after training:\n")
    # at this rate the held-out accuracy jumps from epoch to epoch (by up to 0.05 once
    # past the first epochs):
    # its mean over the last epochs says more than the last one
    last = min(10, epochs)
    print(f"{'activation':<17}{'dead':>14}{'inactive':>14}{'final loss':>12}"
          f"{'train acc':>10}{'test acc':>10}{f'last {last} mean':>14}")
    for name, (est, dead, inactive, accuracy) in runs.items():
        results[name] = {
            "dead_fraction": dead[-1].tolist(),
            "inactive_fraction": inactive[-1].tolist(),
            "final_loss": float(est.loss_curve_[-1]),
            "train_accuracy": float(est.score(X_tr, y_tr)),
            "test_accuracy": float(est.score(X_te, y_te)),
            "test_accuracy_last_epochs": float(np.mean(accuracy[-last:])),
            "slopes": [None if s is None else s.copy() for s in est.slopes_],
        }
        r = results[name]
        print(f"{name:<17}{_pair(r['dead_fraction']):>14}"
              f"{_pair(r['inactive_fraction']):>14}{r['final_loss']:>12.4f}"
              f"{r['train_accuracy']:>10.3f}{r['test_accuracy']:>10.3f}"
              f"{r['test_accuracy_last_epochs']:>14.3f}")
    slopes = np.concatenate(results["PReLU(0.25)"]["slopes"])
    print(f"\nlearned PReLU slopes: median {np.median(slopes):.3f}, range "
          f"[{slopes.min():.3f}, {slopes.max():.3f}] (all started at 0.25)")
    print("\ndiagnose() of the ReLU network on the training data:")
    print(diagnose(runs["ReLU"][0], X_tr, y_tr))
    print("(the LeakyReLU and PReLU curves of the first panel lie on 0)")
    _plot(runs, results, args.out)
    return results


def _pair(values):
    return " / ".join(f"{v:.2f}" for v in values)


def _plot(runs, results, out):
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    x = np.arange(1, len(runs["ReLU"][1]) + 1)
    for name, (est, dead, inactive, accuracy) in runs.items():
        line, = axes[0].plot(x, dead[:, -1], label=name)
        axes[1].plot(x, inactive[:, -1], label=name, color=line.get_color())
        axes[2].plot(x, accuracy, label=name, color=line.get_color())
    axes[0].set_title("dead units of hidden layer 2\n(derivative 0 on every sample)")
    axes[1].set_title("inactive units of hidden layer 2\n(pre-activation <= 0 on "
                      "every sample)")
    for ax in axes[:2]:
        ax.set_xlabel("epoch")
        ax.set_ylabel("fraction of units")
        ax.set_ylim(-0.02, 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[2].set_title("held-out accuracy")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize="small")
    for layer, s in enumerate(results["PReLU(0.25)"]["slopes"], start=1):
        axes[3].hist(s, bins=30, alpha=0.6, label=f"layer {layer}")
    axes[3].axvline(0.25, color="k", linestyle=":", label="initial 0.25")
    axes[3].set_title("learned PReLU slopes")
    axes[3].set_xlabel("negative slope")
    axes[3].legend(fontsize="small")
    fig.suptitle(f"Adam with learning_rate_init={LEARNING_RATE}: ReLU units die, "
                 "Leaky ReLU and PReLU units stay trainable")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
