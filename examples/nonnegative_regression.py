"""A ReLU output for a target that cannot be negative.

The target is a non-linear function of five features, floored at 0 (a quantity such as
an amount of rain: often exactly 0, never below). The same network is fitted twice,
once with the ReLU output that ``output_activation="auto"`` picks for a non-negative
target and once with an identity output; the script counts the negative predictions of
each on held-out data and compares their scores (and those of the identity output
clipped at 0 after the fact).

Usage::

    python examples/nonnegative_regression.py   # docs/images/nonnegative_regression.png
    python examples/nonnegative_regression.py --quick --out /tmp/nonneg.png
"""

import argparse
import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import mean_absolute_error, r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchRegressor  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "nonnegative_regression.png")


def make_data(n, random_state=0):
    """``y = max(0, x0^2 + sin(2 x1) + x2 - 1.5 + noise)``: about half exactly 0."""
    rng = np.random.RandomState(random_state)
    X = rng.uniform(-2, 2, size=(n, 5))
    y = X[:, 0] ** 2 + np.sin(2 * X[:, 1]) + X[:, 2] - 1.5 + rng.normal(0, 0.2, n)
    return X, np.maximum(y, 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data, fewer epochs")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    n, epochs = (600, 60) if args.quick else (4000, 300)
    X, y = make_data(n)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    print(f"{n} samples, {np.mean(y == 0):.0%} of the targets exactly 0, none below\n")

    preds = {}
    for output in ("auto", "identity"):
        est = MLPScratchRegressor(hidden_layer_sizes=(64, 64), output_activation=output,
                                  max_iter=epochs, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_tr, y_tr)
        preds[f"{est.out_activation_} output"] = est.predict(X_te)
    preds["identity output, clipped at 0"] = np.maximum(preds["identity output"], 0)

    results = {}
    print(f"{'model':<32}{'negative preds':>16}{'min pred':>10}{'R2':>8}{'MAE':>8}"
          f"{'MAE where y=0':>15}")
    zero = y_te == 0
    for name, p in preds.items():
        results[name] = r = {
            "n_negative": int(np.sum(p < 0)),
            "min_prediction": float(p.min()),
            "r2": float(r2_score(y_te, p)),
            "mae": float(mean_absolute_error(y_te, p)),
            "mae_at_zero": float(mean_absolute_error(y_te[zero], p[zero])),
        }
        print(f"{name:<32}{r['n_negative']:>9} / {len(p):<4}"
              f"{r['min_prediction']:>10.3f}"
              f"{r['r2']:>8.3f}{r['mae']:>8.3f}{r['mae_at_zero']:>15.3f}")
    _plot(y_te, preds, results, args.out)
    return results


def _plot(y_te, preds, results, out):
    names = ["relu output", "identity output"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, name in zip(axes, names):
        p = preds[name]
        neg = p < 0
        ax.scatter(y_te[~neg], p[~neg], s=6, alpha=0.5, label="prediction >= 0")
        ax.scatter(y_te[neg], p[neg], s=8, color="tab:red",
                   label=f"prediction < 0 ({neg.sum()})")
        lim = [min(-0.5, p.min()), max(y_te.max(), p.max())]
        ax.plot(lim, lim, color="k", linewidth=0.8)
        ax.axhspan(lim[0], 0, color="tab:red", alpha=0.07)
        ax.set_title(f"{name}: R2 {results[name]['r2']:.3f}, "
                     f"{results[name]['n_negative']} negative predictions")
        ax.set_xlabel("true y")
        ax.set_ylabel("predicted y")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    zero = y_te == 0
    bins = np.linspace(-1, 1, 41)
    for name in names:
        axes[2].hist(preds[name][zero], bins=bins, alpha=0.6, label=name)
    axes[2].axvline(0, color="k", linewidth=0.8)
    axes[2].set_title("predictions where the true y is exactly 0")
    axes[2].set_xlabel("predicted y")
    axes[2].legend(fontsize="small")
    fig.suptitle("Non-negative target: a ReLU output never predicts below 0")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
