"""Where one epoch of the large dense benchmark case spends its time.

Times, per epoch of 50,000 x 100 with (256, 128) hidden units and mini-batches of 200
(the ``synth_f64`` / ``synth_f32`` cases of ``bench_vs_sklearn.py``):

- ``gemm``: the five matrix products of each mini-batch alone, on the same shapes;
- ``fit``: ``MLPScratchClassifier.fit`` per epoch (adam, alpha=1e-4, shuffled);
- ``fit, alpha=0``: the same without the L2 term;
- ``fit, no optimizer``: the same with the Adam update replaced by nothing.

``fit - gemm`` is what is left to remove outside matrix multiplication. Each line is
the best of ``--repeats`` runs (the machine is shared: the best run is the one least
disturbed).

Usage::

    python benchmarks/epoch_breakdown.py [--dtype float32] [--repeats 3]
"""

import argparse
import time
import warnings
from unittest import mock

import numpy as np
from sklearn.exceptions import ConvergenceWarning

# the benchmark's data and settings, so both scripts measure the same case (importing it
# also puts this checkout's package first on the path)
from bench_vs_sklearn import FIXED_EPOCHS, synth_data
from sknn_scratch import MLPScratchClassifier
from sknn_scratch.solvers import Adam

N_SAMPLES, N_FEATURES, HIDDEN, BATCH, EPOCHS = 50_000, 100, (256, 128), 200, 5


def gemm_epoch(X, repeats):
    """Seconds per epoch of the five per-batch products (forward 2, backward 3)."""
    dtype, rng = X.dtype, np.random.default_rng(0)
    h1, h2 = HIDDEN
    W1 = rng.standard_normal((N_FEATURES, h1)).astype(dtype)
    W2 = rng.standard_normal((h1, h2)).astype(dtype)
    Z1, D1 = np.empty((BATCH, h1), dtype), np.empty((BATCH, h1), dtype)
    Z2 = np.empty((BATCH, h2), dtype)
    D2 = rng.standard_normal((BATCH, h2)).astype(dtype)  # stands in for the deltas
    G1, G2 = np.empty_like(W1), np.empty_like(W2)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, N_SAMPLES, BATCH):
            Xb = X[start:start + BATCH]
            np.dot(Xb, W1, out=Z1)
            np.dot(Z1, W2, out=Z2)
            np.dot(Z1.T, D2, out=G2)
            np.dot(D2, W2.T, out=D1)
            np.dot(Xb.T, D1, out=G1)
        best = min(best, time.perf_counter() - t0)
    return best


def fit_epoch(X, y, repeats, **params):
    """Seconds per epoch of a fit (fit time / epochs, best of ``repeats``)."""
    best = np.inf
    for _ in range(repeats):
        est = MLPScratchClassifier(hidden_layer_sizes=HIDDEN, max_iter=EPOCHS,
                                   **{**FIXED_EPOCHS, **params})
        t0 = time.perf_counter()
        est.fit(X, y)
        best = min(best, time.perf_counter() - t0)
    return best / EPOCHS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = synth_data(N_SAMPLES, N_FEATURES, args.dtype)
    fit_epoch(X, y, 1)  # warm-up: imports, BLAS threads
    rows = [("gemm (5 products per batch)", gemm_epoch(X, args.repeats)),
            ("fit", fit_epoch(X, y, args.repeats)),
            ("fit, alpha=0", fit_epoch(X, y, args.repeats, alpha=0.0))]
    with mock.patch.object(Adam, "step", lambda self, params, grad: None):
        rows.append(("fit, no optimizer", fit_epoch(X, y, args.repeats)))
    print(f"{args.dtype}, {N_SAMPLES} x {N_FEATURES}, hidden {HIDDEN}, batch {BATCH}; "
          "ms per epoch, best of", args.repeats)
    for label, seconds in rows:
        print(f"  {label:<30} {1000 * seconds:7.1f}")


if __name__ == "__main__":
    main()
