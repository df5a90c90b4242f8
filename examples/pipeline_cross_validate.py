"""The MLP in a scikit-learn Pipeline: cross_validate with several metrics, then a grid.

``StandardScaler`` + ``MLPScratchClassifier((32,), alpha=1e-3)`` on the breast-cancer
data that ships with scikit-learn: first ``cross_validate`` with accuracy, balanced
accuracy, ROC AUC and log loss (5 stratified folds), then ``GridSearchCV`` over the
hidden activation (names and an :class:`~sknn_scratch.activations.Activation` object)
and the weight initialization, reached through the pipeline as ``mlp__activation`` /
``mlp__init``. Activations and initializers are parameters like any other, so
``cv_results_`` reads well.

Usage::

    python examples/pipeline_cross_validate.py # docs/images/pipeline_cross_validate.png
    python examples/pipeline_cross_validate.py --quick --out /tmp/pipeline.png
"""

import argparse
import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import (GridSearchCV, StratifiedKFold,  # noqa: E402
                                     cross_validate)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier  # noqa: E402
from sknn_scratch.activations import LeakyReLU  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "pipeline_cross_validate.png")
SCORING = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy",
           "roc_auc": "roc_auc", "log_loss": "neg_log_loss"}


def make_pipeline(max_iter):
    return Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MLPScratchClassifier((32,), alpha=1e-3, max_iter=max_iter,
                                     random_state=0)),
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grid and folds")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    X, y = load_breast_cancer(return_X_y=True)
    if args.quick:
        max_iter, folds = 30, 3
        grid = {"mlp__activation": ["relu", "tanh"], "mlp__init": ["auto", "normal"]}
    else:
        max_iter, folds = 200, 5
        grid = {"mlp__activation": ["relu", "tanh", "sigmoid", LeakyReLU(0.1), "gelu"],
                "mlp__init": ["auto", "glorot_uniform", "he_normal", "normal", "zeros"]}
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, zero-initialization
        cv_res = cross_validate(make_pipeline(max_iter), X, y, cv=cv, scoring=SCORING)
        search = GridSearchCV(make_pipeline(max_iter), grid, cv=cv,
                              scoring="accuracy").fit(X, y)

    print(f"cross_validate, {folds} folds, StandardScaler + "
          "MLPScratchClassifier((32,), alpha=1e-3):")
    summary = {}
    for name in SCORING:
        scores = cv_res[f"test_{name}"]
        scores = -scores if name == "log_loss" else scores
        summary[name] = (float(scores.mean()), float(scores.std()))
        print(f"  {name:<18} {scores.mean():.4f} +- {scores.std():.4f}")
    print(f"  fit time per fold  {cv_res['fit_time'].mean():.2f} s\n")

    res = search.cv_results_
    order = np.argsort(res["rank_test_score"], kind="stable")
    print(f"GridSearchCV over activation x init ({len(order)} candidates), "
          "ranked by mean CV accuracy:")
    print(f"  {'rank':>4}  {'activation':<31}{'init':<16}{'accuracy':>14}")
    for i in order:
        p = res["params"][i]
        print(f"  {res['rank_test_score'][i]:>4}  {str(p['mlp__activation']):<31}"
              f"{str(p['mlp__init']):<16}{res['mean_test_score'][i]:>8.4f} +- "
              f"{res['std_test_score'][i]:.3f}")
    print(f"\nbest: {search.best_params_}, accuracy {search.best_score_:.4f}")
    _plot(grid, res, args.out)
    return {"cross_validate": summary, "best_params": search.best_params_,
            "best_score": float(search.best_score_)}


def _plot(grid, res, out):
    acts, inits = grid["mlp__activation"], grid["mlp__init"]
    table = np.empty((len(acts), len(inits)))
    for params, score in zip(res["params"], res["mean_test_score"]):
        table[acts.index(params["mlp__activation"]),
              inits.index(params["mlp__init"])] = score
    fig, ax = plt.subplots(figsize=(3.5 + 1.6 * len(inits), 1.8 + 0.7 * len(acts)))
    im = ax.imshow(table, cmap="viridis", vmin=max(0.5, table.min()), vmax=1.0,
                   aspect="auto")
    for (i, j), v in np.ndenumerate(table):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center",
                color="white" if v < table.max() - 0.05 else "black")
    ax.set_xticks(range(len(inits)), [str(i) for i in inits], rotation=20)
    ax.set_yticks(range(len(acts)), [str(a) for a in acts])
    ax.set_xlabel("mlp__init")
    ax.set_ylabel("mlp__activation")
    ax.set_title("breast cancer: mean CV accuracy of StandardScaler + MLP")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
