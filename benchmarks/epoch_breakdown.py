"""Where one epoch of a large benchmark case spends its time.

Times per epoch, for the dense case (50,000 x 100, (256, 128) hidden units: the
``synth_f64`` / ``synth_f32`` cases of ``bench_vs_sklearn.py``) or the sparse one
(20,000 x 5,000 CSR at 1 %, (100,) hidden units: ``sparse_csr``), mini-batches of 200:

- ``products``: the matrix products of each mini-batch alone, on the same shapes
  (dense: the five of the two hidden layers; sparse: the first layer's two);
- ``fit``: ``MLPScratchClassifier.fit`` per epoch (adam, alpha=1e-4, shuffled);
- ``fit, alpha=0``: the same without the L2 term;
- ``fit, no optimizer``: the same with the Adam update replaced by nothing;
- ``fit, one thread``: the same as ``fit`` with BLAS, and so the passes split over two
  threads, limited to one;
- ``fit, n_jobs=2``: the same as ``fit`` with each mini-batch shared by two processes.

``fit - products`` is what is left outside matrix multiplication. Each line is the
best of ``--repeats`` runs (the machine is shared: the best run is the one least
disturbed).

Usage::

    python benchmarks/epoch_breakdown.py [--case sparse] [--dtype float32] [--repeats 3]
"""

import argparse
import time
import warnings
from unittest import mock

import numpy as np
from sklearn.exceptions import ConvergenceWarning

# the benchmark's data and settings, so both scripts measure the same case (importing it
# also puts this checkout's package first on the path)
from bench_vs_sklearn import FIXED_EPOCHS, sparse_data, synth_data
from threadpoolctl import threadpool_limits

from sknn_scratch import MLPScratchClassifier
from sknn_scratch.network import _sparse_dot
from sknn_scratch.solvers import Adam

BATCH, EPOCHS = 200, 5


def dense_products(X, hidden, repeats):
    """Seconds per epoch of the five per-batch products (forward 2, backward 3)."""
    dtype, rng = X.dtype, np.random.default_rng(0)
    h1, h2 = hidden
    W1 = rng.standard_normal((X.shape[1], h1)).astype(dtype)
    W2 = rng.standard_normal((h1, h2)).astype(dtype)
    Z1, D1 = np.empty((BATCH, h1), dtype), np.empty((BATCH, h1), dtype)
    Z2 = np.empty((BATCH, h2), dtype)
    D2 = rng.standard_normal((BATCH, h2)).astype(dtype)  # stands in for the deltas
    G1, G2 = np.empty_like(W1), np.empty_like(W2)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, X.shape[0], BATCH):
            Xb = X[start:start + BATCH]
            np.dot(Xb, W1, out=Z1)
            np.dot(Z1, W2, out=Z2)
            np.dot(Z1.T, D2, out=G2)
            np.dot(D2, W2.T, out=D1)
            np.dot(Xb.T, D1, out=G1)
        best = min(best, time.perf_counter() - t0)
    return best


def sparse_products(X, hidden, repeats):
    """Seconds per epoch of the first layer's two sparse products, on shuffled batches."""
    rng = np.random.default_rng(0)
    (h1,) = hidden
    W1 = rng.standard_normal((X.shape[1], h1))
    Z1, D1 = np.empty((BATCH, h1)), rng.standard_normal((BATCH, h1))
    G1 = np.empty_like(W1)
    order = rng.permutation(X.shape[0])
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, X.shape[0], BATCH):
            Xb = X[order[start:start + BATCH]]  # the gather is part of the sparse cost
            _sparse_dot(Xb, W1, Z1)
            _sparse_dot(Xb, D1, G1, transpose=True)
        best = min(best, time.perf_counter() - t0)
    return best


def fit_epoch(X, y, hidden, repeats, **params):
    """Seconds per epoch of a fit (fit time / epochs, best of ``repeats``)."""
    best = np.inf
    for _ in range(repeats):
        est = MLPScratchClassifier(hidden_layer_sizes=hidden, max_iter=EPOCHS,
                                   **{**FIXED_EPOCHS, **params})
        t0 = time.perf_counter()
        est.fit(X, y)
        best = min(best, time.perf_counter() - t0)
    return best / EPOCHS


CASES = {  # data, hidden layers, the products of a batch alone
    "dense": (lambda dtype: synth_data(50_000, 100, dtype), (256, 128), dense_products),
    "sparse": (lambda dtype: sparse_data(20_000, 5_000, 0.01), (100,), sparse_products),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="dense", choices=sorted(CASES))
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                    help="dense case only (the sparse case is float64)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    make_data, hidden, products = CASES[args.case]
    X, y = make_data(args.dtype)
    fit_epoch(X, y, hidden, 1)  # warm-up: imports, BLAS threads
    rows = [("products", products(X, hidden, args.repeats)),
            ("fit", fit_epoch(X, y, hidden, args.repeats)),
            ("fit, alpha=0", fit_epoch(X, y, hidden, args.repeats, alpha=0.0))]
    with mock.patch.object(Adam, "step", lambda self, params, grad: None):
        rows.append(("fit, no optimizer", fit_epoch(X, y, hidden, args.repeats)))
    with threadpool_limits(limits=1, user_api="blas"):
        rows.append(("fit, one thread", fit_epoch(X, y, hidden, args.repeats)))
    rows.append(("fit, n_jobs=2", fit_epoch(X, y, hidden, args.repeats, n_jobs=2)))
    print(f"{args.case} {X.dtype}, {X.shape[0]} x {X.shape[1]}, hidden {hidden}, "
          f"batch {BATCH}; ms per epoch, best of {args.repeats}")
    for label, seconds in rows:
        print(f"  {label:<30} {1000 * seconds:7.1f}")


if __name__ == "__main__":
    main()
