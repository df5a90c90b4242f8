"""Which activation and which weight initialization suit a small MLP on digits?

Grid-searches hidden activations x weight initializations with 3-fold
cross-validation (``GridSearchCV`` over a ``StandardScaler`` + MLP pipeline) on
scikit-learn's bundled digits data, prints the configurations ranked by mean CV
accuracy, checks the best one on a held-out test split, and writes a PNG: a
heatmap of CV accuracy (activation x init) and the training-loss curves of each
activation at its best initialization.

Usage::

    python examples/compare_activations.py                    # 6 to 12 s on 2 cores
    python examples/compare_activations.py --quick --out /tmp/quick.png

Three hidden layers of 32 units make the initialization matter: with the
classic ``randn * 0.01`` ("normal") the signal shrinks at every layer and the
network starts almost flat. The budget (< 60 s on 2 cores) sets the rest: at
most 60 epochs of adam. Some configurations stop at that cap before
adam's tolerance is met; the resulting ConvergenceWarnings are silenced here
because the comparison is deliberately at a fixed, small training budget.
"""

import argparse
import os
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import (GridSearchCV, StratifiedKFold,  # noqa: E402
                                     train_test_split)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

# Run from a checkout without installing: the repository root comes first.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier  # noqa: E402
from sknn_scratch.activations import LeakyReLU  # noqa: E402

FULL = {
    "activations": ["relu", "tanh", "sigmoid", LeakyReLU(negative_slope=0.1), "elu",
                    "gelu"],
    "inits": ["auto", "glorot_uniform", "he_normal", "normal"],
    "n_samples": None,  # all 1797 images
    "hidden": (32, 32, 32),
    "max_iter": 60,
    "folds": 3,
}
QUICK = {
    "activations": ["relu", "tanh", LeakyReLU(negative_slope=0.1)],
    "inits": ["auto", "normal"],
    "n_samples": 300,
    "hidden": (16,),
    "max_iter": 5,
    "folds": 2,
}


def label(spec):
    """A short name for a string or an Activation/Initializer object."""
    return spec if isinstance(spec, str) else repr(spec)


def load_data(n_samples, seed=0):
    """Digits, optionally a stratified subsample, split 75/25 into train/test."""
    X, y = load_digits(return_X_y=True)
    if n_samples is not None and n_samples < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=n_samples, stratify=y,
                                      random_state=seed)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)


def make_pipeline(cfg, seed=0):
    mlp = MLPScratchClassifier(hidden_layer_sizes=cfg["hidden"], max_iter=cfg["max_iter"],
                               random_state=seed)
    return Pipeline([("scale", StandardScaler()), ("mlp", mlp)])


def grid_search(cfg, X, y, n_jobs):
    """GridSearchCV over activation x init; refits the best on all of (X, y)."""
    grid = {"mlp__activation": cfg["activations"], "mlp__init": cfg["inits"]}
    cv = StratifiedKFold(n_splits=cfg["folds"], shuffle=True, random_state=0)
    search = GridSearchCV(make_pipeline(cfg), grid, cv=cv, scoring="accuracy",
                          n_jobs=n_jobs)
    return search.fit(X, y)


def ranked_rows(search):
    """(activation, init, mean, std, fit seconds) per configuration, best first."""
    res = search.cv_results_
    rows = [(label(p["mlp__activation"]), label(p["mlp__init"]), m, s, t)
            for p, m, s, t in zip(res["params"], res["mean_test_score"],
                                  res["std_test_score"], res["mean_fit_time"])]
    return sorted(rows, key=lambda r: (-r[2], r[3]))


def print_table(rows):
    width = max(len(r[0]) for r in rows)
    print(f"{'rank':>4}  {'activation':<{width}}  {'init':<14}  {'CV accuracy':>11}  "
          f"{'std':>6}  {'fit s':>6}")
    for rank, (act, init, mean, std, fit) in enumerate(rows, 1):
        print(f"{rank:>4}  {act:<{width}}  {init:<14}  {mean:>11.4f}  {std:>6.4f}  "
              f"{fit:>6.2f}")


def curves_per_activation(search, cfg, X, y):
    """Refit each activation at its best init on (X, y); returns label -> loss curve."""
    res = search.cv_results_
    curves = {}
    for act in cfg["activations"]:
        mine = [i for i, p in enumerate(res["params"]) if p["mlp__activation"] == act]
        best = max(mine, key=lambda i: res["mean_test_score"][i])
        init = res["params"][best]["mlp__init"]
        model = make_pipeline(cfg).set_params(mlp__activation=act, mlp__init=init)
        curves[f"{label(act)}, {label(init)}"] = model.fit(X, y)[-1].loss_curve_
    return curves


def plot(rows, curves, cfg, path):
    acts = [label(a) for a in cfg["activations"]]
    inits = [label(i) for i in cfg["inits"]]
    score = {(a, i): m for a, i, m, _, _ in rows}
    grid = np.array([[score[a, i] for i in inits] for a in acts])

    fig, (ax_map, ax_loss) = plt.subplots(1, 2, figsize=(13, 5.2),
                                          gridspec_kw={"width_ratios": [1, 1.1]})
    # the colours span the cells above chance (sigmoid with "normal" stays at 10 %):
    # one such cell would otherwise leave every other one the same colour
    learned = grid[grid > 0.5]
    low = float(learned.min()) if learned.size else float(grid.min())
    im = ax_map.imshow(grid, cmap="viridis", aspect="auto", vmin=low,
                       vmax=max(float(grid.max()), low + 1e-3))
    ax_map.set_xticks(range(len(inits)), inits, rotation=20)
    ax_map.set_yticks(range(len(acts)), acts)
    for (r, c), value in np.ndenumerate(grid):
        light = value < low + 0.6 * (grid.max() - low or 1)
        ax_map.text(c, r, f"{value:.3f}", ha="center", va="center",
                    color="white" if light else "black", fontsize=9)
    fig.colorbar(im, ax=ax_map, label="mean CV accuracy",
                 extend="min" if low > grid.min() else "neither")
    ax_map.set_title(f"{cfg['folds']}-fold CV accuracy on digits")

    best = f"{rows[0][0]}, {rows[0][1]}"
    for name, curve in curves.items():
        is_best = name == best
        ax_loss.plot(np.arange(1, len(curve) + 1), curve, label=name,
                     linewidth=2.5 if is_best else 1.2, zorder=3 if is_best else 2)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (log scale)")
    ax_loss.set_title(f"Training loss, each activation at its best init\n"
                      f"(bold: best in CV, {best})", fontsize=10)
    ax_loss.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings, for a smoke test (a few seconds)")
    parser.add_argument("--out", default="compare_activations.png",
                        help="path of the PNG to write (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL

    start = time.perf_counter()
    X_train, X_test, y_train, y_test = load_data(cfg["n_samples"])
    n_configs = len(cfg["activations"]) * len(cfg["inits"])
    print(f"digits: {len(y_train)} training / {len(y_test)} test images; "
          f"{n_configs} configurations x {cfg['folds']} folds, "
          f"MLP {cfg['hidden']}, max_iter={cfg['max_iter']}, n_jobs={args.n_jobs}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = grid_search(cfg, X_train, y_train, args.n_jobs)
        rows = ranked_rows(search)
        print_table(rows)
        curves = curves_per_activation(search, cfg, X_train, y_train)

    test_acc = search.score(X_test, y_test)
    print(f"\nbest: activation={rows[0][0]}, init={rows[0][1]}: "
          f"CV accuracy {rows[0][2]:.4f} ± {rows[0][3]:.4f}, "
          f"held-out test accuracy {test_acc:.4f}")
    print(f"spread across configurations: {rows[-1][2]:.4f} .. {rows[0][2]:.4f}")
    plot(rows, curves, cfg, args.out)
    print(f"wrote {args.out}; total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
