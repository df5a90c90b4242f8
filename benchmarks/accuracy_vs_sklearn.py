"""Cross-validated accuracy of sknn_scratch's MLP next to scikit-learn's.

Both estimators run with their default parameters (``random_state=0``) after a
``StandardScaler`` in a ``Pipeline``, scored by 5-fold cross-validation on the
same folds: accuracy for digits, breast_cancer and wine, R2 for diabetes. The
requirement is that ours is no worse than scikit-learn minus 0.01 on each.

Usage::

    python benchmarks/accuracy_vs_sklearn.py            # all four data sets
    python benchmarks/accuracy_vs_sklearn.py --datasets wine,diabetes

Convergence warnings are counted, not shown: at the defaults (200 epochs of
adam) both libraries stop before convergence on some folds, and the count says
whether the two stopped alike.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# Measure the checkout this script lives in, even when it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor  # noqa: E402

TOLERANCE = 0.01

# name -> (loader, is_classification, metric)
DATASETS = {
    "digits": (load_digits, True, "accuracy"),
    "breast_cancer": (load_breast_cancer, True, "accuracy"),
    "wine": (load_wine, True, "accuracy"),
    "diabetes": (load_diabetes, False, "r2"),
}


def cv_scores(estimator, X, y, classification, metric, n_jobs):
    """5-fold scores and the number of ConvergenceWarnings raised while fitting."""
    splitter = (StratifiedKFold if classification else KFold)(
        n_splits=5, shuffle=True, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = cross_validate(make_pipeline(StandardScaler(), estimator), X, y,
                                cv=splitter, scoring=metric,
                                n_jobs=n_jobs)
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return result["test_score"], result["fit_time"].sum(), n_warn


def compare(name, n_jobs):
    """One table row: sklearn's and our scores on data set ``name``."""
    load, classification, metric = DATASETS[name]
    X, y = load(return_X_y=True)
    theirs_cls, ours_cls = ((MLPClassifier, MLPScratchClassifier) if classification
                            else (MLPRegressor, MLPScratchRegressor))
    theirs = cv_scores(theirs_cls(random_state=0), X, y, classification, metric,
                       n_jobs)
    ours = cv_scores(ours_cls(random_state=0), X, y, classification, metric, n_jobs)
    return name, metric, theirs, ours


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="comma-separated subset of " + ", ".join(DATASETS))
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args(argv)

    header = (f"{'dataset':<14} {'metric':<8} {'sklearn':>16} {'sknn_scratch':>16} "
              f"{'diff':>8}  {'fit s (sk/ours)':>16}  {'conv. warn.':>11}  verdict")
    print(header)
    print("-" * len(header))
    failures = []
    start = time.perf_counter()
    for name in args.datasets.split(","):
        name, metric, (s_sk, t_sk, w_sk), (s_us, t_us, w_us) = compare(name, args.n_jobs)
        diff = s_us.mean() - s_sk.mean()
        ok = diff >= -TOLERANCE
        if not ok:
            failures.append(name)
        print(f"{name:<14} {metric:<8} {s_sk.mean():>8.4f} ± {s_sk.std():.4f} "
              f"{s_us.mean():>8.4f} ± {s_us.std():.4f} {diff:>+8.4f}  "
              f"{t_sk:>7.1f} / {t_us:<6.1f}  {w_sk:>4} / {w_us:<4}  "
              f"{'ok' if ok else 'WORSE'}", flush=True)
    print(f"\n5-fold CV, default parameters, random_state=0, StandardScaler pipeline; "
          f"requirement: ours >= sklearn - {TOLERANCE}. "
          f"Total {time.perf_counter() - start:.0f} s.")
    if failures:
        print("Below the requirement on: " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
