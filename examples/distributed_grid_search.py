"""Grid search over activation x initialization on a dask cluster.

``StandardScaler`` + ``MLPScratchClassifier`` on scikit-learn's digits, searched by
``GridSearchCV`` whose fits joblib sends to dask workers
(``parallel_config(backend="dask")``). With ``--scheduler`` it connects to a running
cluster (``dask scheduler`` on one machine, ``dask worker tcp://host:8786`` on each
of the others; every worker needs this package importable); without it, it starts a
``LocalCluster`` of ``--workers`` processes with one thread each. Each worker's BLAS
gets its share of its machine's cores (:func:`sknn_scratch.parallel.limit_blas_threads`)
so that concurrent fits do not oversubscribe them. The scores are the ones a sequential
run gives, to the last bit.

Usage::

    python examples/distributed_grid_search.py                 # LocalCluster, 2 workers
    python examples/distributed_grid_search.py --scheduler tcp://host:8786
    python examples/distributed_grid_search.py --quick         # smaller data and grid
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from distributed import Client, LocalCluster
from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sknn_scratch import MLPScratchClassifier  # noqa: E402
from sknn_scratch.activations import ELU, LeakyReLU  # noqa: E402
from sknn_scratch.parallel import limit_blas_threads  # noqa: E402


def search_space(quick):
    """The pipeline, its grid and the data: digits, activation x init."""
    X, y = load_digits(return_X_y=True)
    if quick:
        keep = np.random.default_rng(0).permutation(len(y))[:500]
        X, y = X[keep], y[keep]
    activations = ["relu", "tanh", LeakyReLU(negative_slope=0.1)]
    inits = ["auto", "normal"]
    if not quick:
        activations += ["logistic", ELU(alpha=0.5)]
        inits += ["glorot_uniform", "he_normal"]
    mlp = MLPScratchClassifier((32,) if quick else (64,), max_iter=20 if quick else 200,
                               random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
    grid = {"mlp__activation": activations, "mlp__init": inits}
    return pipe, grid, X, y


def run_search(client, quick):
    """Fit the grid search on the client's cluster; returns the fitted search."""
    pipe, grid, X, y = search_space(quick)
    search = GridSearchCV(pipe, grid, cv=StratifiedKFold(3), n_jobs=-1)
    with parallel_config(backend="dask"), warnings.catch_warnings():
        # a few epochs on purpose; the filter reaches the workers with the fits
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    return search


def ranked(search):
    """``[(rank, activation, init, mean, std)]``, best first."""
    res = search.cv_results_
    rows = [(res["rank_test_score"][i], str(p["mlp__activation"]), str(p["mlp__init"]),
             res["mean_test_score"][i], res["std_test_score"][i])
            for i, p in enumerate(res["params"])]
    return sorted(rows, key=lambda row: (row[0], row[1], row[2]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", help="address of a running dask scheduler, "
                        "e.g. tcp://host:8786 (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2,
                        help="LocalCluster worker processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="smaller data and grid")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                               processes=True, dashboard_address=":0")
        client = Client(cluster)
    try:
        blas = limit_blas_threads(client)
        print(f"{len(blas)} workers, BLAS threads per worker: "
              f"{sorted(set(blas.values()))}")
        search = run_search(client, args.quick)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    elapsed = time.perf_counter() - start

    rows = ranked(search)
    print(f"\n{'rank':>4}  {'activation':<30} {'init':<15} CV accuracy")
    for rank, act, init, mean, std in rows:
        print(f"{rank:>4}  {act:<30} {init:<15} {mean:.3f} ± {std:.3f}")
    started = "" if args.scheduler else " (cluster start included)"
    print(f"\n{len(rows)} candidates x 3 folds in {elapsed:.1f} s{started}")
    return {"search": search, "ranked": rows, "blas_threads": blas,
            "seconds": elapsed}


if __name__ == "__main__":
    main()
