"""Without a non-linear activation, a deep network is a linear model.

A network whose hidden layers all use the identity activation computes
``((X W1 + b1) W2 + b2) ... = X W + b`` with ``W = W1 @ W2 @ ...``: depth adds
parameters, not expressive power. This script fits such a network (three hidden layers)
on the two-moons problem, folds its layers into the single ``(W, b)``, and checks that
this one layer gives the same probabilities to rounding. It then scores it against
logistic regression and against tanh and ReLU networks of the same size: the identity
network scores like logistic regression, the non-linear ones far better.

Usage::

    python examples/linear_collapse.py      # writes docs/images/linear_collapse.png
    python examples/linear_collapse.py --quick --out /tmp/collapse.png
"""

import argparse
import os
import sys
import warnings
from functools import reduce

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import expit  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "linear_collapse.png")


def collapse(coefs, intercepts):
    """The single layer ``(W, b)`` equal to a stack of affine layers."""
    W = reduce(np.matmul, coefs)
    b = intercepts[0]
    for Wi, bi in zip(coefs[1:], intercepts[1:]):
        b = b @ Wi + bi
    return W, b


def _boundary(ax, model, X, y, title):
    xx, yy = np.meshgrid(np.linspace(-1.7, 2.7, 200), np.linspace(-1.2, 1.7, 150))
    grid = np.c_[xx.ravel(), yy.ravel()]
    proba = model.predict_proba(grid)[:, 1].reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", s=8, edgecolors="k",
               linewidths=0.2)
    ax.set_title(title, fontsize="medium")
    ax.set_xticks([])
    ax.set_yticks([])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data, fewer epochs")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    n, max_iter = (300, 200) if args.quick else (2000, 1000)
    X, y = make_moons(n_samples=n, noise=0.2, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    sizes, alpha = (32, 32, 32), 1.0  # enough L2 for smooth boundaries
    models = {
        "logistic regression": LogisticRegression(),
        "identity MLP (32, 32, 32)": MLPScratchClassifier(
            sizes, activation="identity", solver="lbfgs", max_iter=max_iter,
            alpha=alpha, random_state=0),
        "tanh MLP (32, 32, 32)": MLPScratchClassifier(
            sizes, activation="tanh", solver="lbfgs", max_iter=max_iter, alpha=alpha,
            random_state=0),
        "ReLU MLP (32, 32, 32)": MLPScratchClassifier(
            sizes, activation="relu", solver="lbfgs", max_iter=max_iter, alpha=alpha,
            random_state=0),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in models.values():
            model.fit(X_tr, y_tr)

    linear = models["identity MLP (32, 32, 32)"]
    W, b = collapse(linear.coefs_, linear.intercepts_)
    one_layer = expit(X_te @ W + b).ravel()
    gap = float(np.max(np.abs(linear.predict_proba(X_te)[:, 1] - one_layer)))
    n_params = sum(p.size for p in linear.coefs_ + linear.intercepts_)
    print(f"identity network: {n_params} parameters in {len(linear.coefs_)} layers "
          f"fold into one layer of {W.size + b.size}")
    print(f"  W = W1 @ W2 @ W3 @ W4 = {np.round(W.ravel(), 3)}, b = {np.round(b, 3)}")
    print(f"  largest |p_network - p_one_layer| on the test set: {gap:.2e}\n")

    scores = {}
    print(f"{'model':<28}{'train acc':>10}{'test acc':>10}")
    for name, model in models.items():
        scores[name] = float(model.score(X_te, y_te))
        print(f"{name:<28}{model.score(X_tr, y_tr):>10.3f}{scores[name]:>10.3f}")

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
    for ax, (name, model) in zip(axes, models.items()):
        _boundary(ax, model, X_te, y_te, f"{name}\ntest accuracy {scores[name]:.3f}")
    fig.suptitle("Two moons: an MLP with identity activations is a linear model "
                 f"(one folded layer reproduces it to {gap:.0e})")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {args.out}")
    return {"max_proba_gap": gap, "test_accuracy": scores}


if __name__ == "__main__":
    main()
