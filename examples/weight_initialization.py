"""Zeros, small random, Glorot and He initialization on a shallow and a deep network.

Four initializations -- ``zeros``, ``normal`` (the classic ``randn * 0.01``), Glorot
uniform and He uniform -- on digits, for tanh and ReLU networks with one hidden layer
of 64 units and with six. Same optimizer (SGD, momentum 0.9, learning rate 0.01, batches
of 64), epochs and seed for all. Measured:

- ``zeros``: every unit of a layer is a copy of the others (``diagnose`` finds
  ``duplicate_fraction = 63/64``) and, with the output weights zero too, nothing but the
  output bias ever moves: the loss stays at ``log(10) = 2.303``;
- ``normal`` (std 0.01): fine with one hidden layer, but in the deep network the
  activations shrink at every layer (their std is printed, layer by layer, at
  initialization): by about ``0.01 * sqrt(64) = 0.08`` with tanh, and by about
  ``0.01 * sqrt(32) = 0.057`` with ReLU, which zeroes half its units. The gradient of
  every layer's weights is then tiny, the last layers' as much as the first (its norm,
  printed layer by layer too: about 3e-7 in each layer of the tanh network, 5e-8 of
  the ReLU one), and training never starts;
- Glorot and He keep the activations far from that collapse, and both deep networks
  train. He's variance, twice Glorot's for a square layer, makes up for the half of
  its inputs that ReLU zeroes: the ReLU network's std stays between 0.68 and 0.81 in
  all six layers with He, and falls by about ``1 / sqrt(2)`` per layer with Glorot
  (0.58 to 0.09); with tanh, He keeps 0.56-0.69 and Glorot falls from 0.59 to 0.29.

Usage::

    python examples/weight_initialization.py   # docs/images/weight_initialization.png
    python examples/weight_initialization.py --quick --out /tmp/init.png
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
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier, ZeroInitializationWarning  # noqa: E402
from sknn_scratch import initializers  # noqa: E402
from sknn_scratch.diagnostics import diagnose  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "weight_initialization.png")
INITS = ["zeros", "normal", "glorot_uniform", "he_uniform"]
DEPTHS = {"shallow": (64,), "deep": (64,) * 6}
ZEROS_STYLE = {"linestyle": ":", "linewidth": 4}  # visible under the red "normal" line


def fit(activation, init, sizes, X, y, epochs):
    est = MLPScratchClassifier(sizes, activation=activation, init=init, solver="sgd",
                               learning_rate_init=0.01, momentum=0.9, batch_size=64,
                               max_iter=epochs, n_iter_no_change=epochs, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, ZeroInitializationWarning))
        return est.fit(X, y)


def at_initialization(est, init, X, y):
    """Activation std per hidden layer and the norm of each layer's weight gradient,
    with fresh weights from ``init`` (and zero biases) in ``est``."""
    rng = np.random.RandomState(0)
    init = initializers.get(init)
    coefs = [init(*c.shape, rng) for c in est.coefs_]
    est.coefs_ = coefs
    est.intercepts_ = [np.zeros_like(b) for b in est.intercepts_]
    layers = diagnose(est, X, y)
    return [r.std for r in layers], [r.grad_norm for r in layers]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    epochs = 8 if args.quick else 60
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=0)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)

    results = {}
    print(f"digits, SGD lr 0.01 momentum 0.9, {epochs} epochs; after training:\n")
    print(f"{'network':<16}{'init':<16}{'first loss':>11}{'final loss':>11}"
          f"{'test acc':>9}{'duplicate':>10}{'dead':>7}")
    for act in ("tanh", "relu"):
        for depth, sizes in DEPTHS.items():
            for init in INITS:
                est = fit(act, init, sizes, X_tr, y_tr, epochs)
                first = diagnose(est, X_tr)[0]
                results[(act, depth, init)] = r = {
                    "loss_curve": list(est.loss_curve_),
                    "test_accuracy": float(est.score(X_te, y_te)),
                    "duplicate_fraction": first.duplicate_fraction,
                    "dead_fraction": first.dead_fraction,
                }
                if depth == "deep":
                    r["initial_std"], r["initial_grad"] = at_initialization(
                        est, init, X_tr, y_tr)
                print(f"{act + ' ' + depth:<16}{init:<16}{r['loss_curve'][0]:>11.4f}"
                      f"{r['loss_curve'][-1]:>11.4f}{r['test_accuracy']:>9.3f}"
                      f"{r['duplicate_fraction']:>10.3f}{r['dead_fraction']:>7.3f}")

    for key, what in (("initial_std", "std of the activations of each hidden layer"),
                      ("initial_grad", "norm of the gradient of each layer's weights")):
        print(f"\n{what} of the deep networks, at initialization:")
        for act in ("tanh", "relu"):
            for init in INITS[1:]:
                values = results[(act, "deep", init)][key]
                print(f"  {act:<5} {init:<15} " + " ".join(f"{v:9.2e}" for v in values))
    _plot(results, args.out)
    return results


def _plot(results, out):
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    colors = dict(zip(INITS, ["tab:gray", "tab:red", "tab:blue", "tab:green"]))
    for row, act in enumerate(("tanh", "relu")):
        for col, depth in enumerate(DEPTHS):
            ax = axes[row, col]
            for init in INITS:
                curve = results[(act, depth, init)]["loss_curve"]
                acc = results[(act, depth, init)]["test_accuracy"]
                ax.plot(np.arange(1, len(curve) + 1), curve, color=colors[init],
                        label=f"{init} (test acc {acc:.2f})",
                        **(ZEROS_STYLE if init == "zeros" else {}))
            ax.set_yscale("log")
            n = len(DEPTHS[depth])
            ax.set_title(f"{act}, {n} hidden layer{'s' * (n > 1)} of 64: training loss")
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        ax = axes[row, 2]
        for init in INITS[1:]:
            stds = results[(act, "deep", init)]["initial_std"]
            ax.plot(np.arange(1, len(stds) + 1), stds, "o-", color=colors[init],
                    label=init)
        ax.set_yscale("log")
        ax.set_title(f"{act}, deep: activation std per layer at initialization\n"
                     f"(zeros: std 0 in every layer, off the log scale)")
        ax.set_xlabel("hidden layer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Weight initialization: zeros never break the symmetry, std 0.01 "
                 "starves a deep network, He keeps a ReLU network's signal, Glorot "
                 "lets it fade slowly")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
