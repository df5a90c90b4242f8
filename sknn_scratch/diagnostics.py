"""What the activations and the initialization do to a fitted network, layer by layer.

:func:`diagnose` reports, for each hidden layer, the units that no longer learn:

- *dead* units, whose activation derivative is exactly 0 on every sample (a ReLU unit
  whose pre-activation is negative everywhere): no gradient of the data reaches their
  incoming weights. One in the first hidden layer, whose inputs are the fixed rows of
  ``X``, stays dead (only the L2 term, and the optimizer's momentum for a few steps,
  still move its weights); one in a later layer can come back when the layers before
  it change its inputs;
- *saturated* units, whose ``|g'(z)|`` is below 1 % of the activation's largest
  derivative (its ``max_derivative``; for one whose derivative has no largest, such as
  exp, of ``|g'(0)|``, 1 for exp) on at least 95 % of the samples (a sigmoid or tanh
  unit pushed far from 0): their gradient has all but vanished. Dead units are
  saturated too;
- *duplicate* units, whose incoming weights and bias (and PReLU slope) equal those of
  another unit of the layer within 1e-8, or within 256 units of the weights' machine
  epsilon relative to the largest of them (3.1e-5 of it in float32): what
  ``init="zeros"`` produces, a layer of ``n`` units that computes one thing ``n``
  times. Exactly equal in exact arithmetic, such copies can differ in their last bits
  (BLAS rounds some units' products differently), and training can amplify those
  differences over many epochs until the units truly part.

It also gives the mean and standard deviation of the activations (a deep network with
too small initial weights shows them shrinking layer after layer) and, when ``y`` is
given, the norm of the gradient of the training objective with respect to each layer's
weights::

    >>> from sklearn.datasets import load_iris
    >>> from sknn_scratch import MLPScratchClassifier
    >>> from sknn_scratch.diagnostics import diagnose
    >>> X, y = load_iris(return_X_y=True)
    >>> import warnings
    >>> clf = MLPScratchClassifier((8,), init="zeros", max_iter=5)
    >>> with warnings.catch_warnings(action="ignore"):  # zero init, no convergence
    ...     clf = clf.fit(X, y)
    >>> diagnose(clf, X)[0].duplicate_fraction    # 7 of the 8 units copy the first
    0.875
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import (check_array, check_is_fitted, column_or_1d,
                                      validate_data)

from ._base import BaseMLPScratch, _unit_weights
from ._processes import using_blas
from .network import activate_

__all__ = ["layer_outputs", "diagnose", "Diagnosis", "LayerDiagnosis"]

#: a unit is saturated where |g'(z)| < SATURATION_LEVEL * max |g'| ...
SATURATION_LEVEL = 0.01
#: ... on at least this fraction of the samples
SATURATION_SHARE = 0.95
#: incoming weights closer than this (max abs difference) count as the same unit ...
DUPLICATE_TOL = 1e-8
#: ... or closer than this many units of the dtype's epsilon, relative to the layer's
#: largest weight (float32): copies that rounding parted in their last bits, not units
#: that merely look alike
DUPLICATE_ULPS = 256


@dataclass(frozen=True)
class LayerDiagnosis:
    """The diagnosis of one hidden layer; fractions are of the layer's units."""

    layer: int
    activation: str
    n_units: int
    dead_fraction: float
    saturated_fraction: float
    duplicate_fraction: float
    mean: float
    std: float
    mean_abs_derivative: float
    grad_norm: float | None = None


class Diagnosis:
    """One :class:`LayerDiagnosis` per hidden layer; prints as a table.

    Indexing, iteration and ``len`` go over the layers; :meth:`to_dicts` gives rows for
    ``pandas.DataFrame``.
    """

    _COLUMNS = [  # (header, attribute, format)
        ("layer", "layer", "{:d}"), ("activation", "activation", "{}"),
        ("units", "n_units", "{:d}"), ("dead", "dead_fraction", "{:.3f}"),
        ("saturated", "saturated_fraction", "{:.3f}"),
        ("duplicate", "duplicate_fraction", "{:.3f}"), ("mean", "mean", "{:.4g}"),
        ("std", "std", "{:.4g}"), ("mean|g'|", "mean_abs_derivative", "{:.4g}"),
        ("grad norm", "grad_norm", "{:.4g}"),
    ]

    def __init__(self, layers):
        self.layers = list(layers)

    def __getitem__(self, i):
        """A layer's :class:`LayerDiagnosis`, or for a slice a :class:`Diagnosis`."""
        return Diagnosis(self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def to_dicts(self):
        """The layers as a list of dicts, one per hidden layer."""
        return [asdict(layer) for layer in self.layers]

    def __str__(self):
        cols = [c for c in self._COLUMNS
                if c[1] != "grad_norm" or any(r.grad_norm is not None for r in self)]
        cells = [[head for head, _, _ in cols]]
        cells += [[fmt.format(getattr(r, attr)) for _, attr, fmt in cols] for r in self]
        widths = [max(len(row[j]) for row in cells) for j in range(len(cols))]
        lines = ["  ".join(cell.ljust(w) if head == "activation" else cell.rjust(w)
                           for cell, w, (head, _, _) in zip(row, widths, cols))
                 for row in cells]
        return "\n".join(lines)

    __repr__ = __str__


def fitted_mlp(estimator, X=None):
    """The fitted MLP of ``estimator`` and ``X`` as that MLP takes it: ``estimator``
    itself, the last step of a :class:`~sklearn.pipeline.Pipeline` (``X`` through the
    steps before it) or the ``best_estimator_`` of a fitted search (either of those).
    Raises ``TypeError`` for anything else."""
    given = estimator
    while True:  # a search of pipelines, a pipeline in a pipeline...
        if isinstance(estimator, BaseMLPScratch):
            check_is_fitted(estimator)
            return estimator, X
        if isinstance(estimator, Pipeline) and len(estimator):
            check_is_fitted(estimator)
            if X is not None and len(estimator) > 1:
                X = estimator[:-1].transform(X)
            estimator = estimator[-1]
        elif hasattr(estimator, "best_estimator_"):
            estimator = estimator.best_estimator_
        else:
            if hasattr(estimator, "refit") and hasattr(estimator, "estimator"):
                check_is_fitted(estimator)  # a search, not fitted yet
                raise TypeError(
                    f"This {type(estimator).__name__} keeps no best_estimator_ "
                    "(refit=False): the diagnostics take a fitted model.")
            break
    raise TypeError(
        f"The diagnostics take an MLPScratchClassifier or MLPScratchRegressor, a "
        f"Pipeline that ends with one or a fitted search of them (its best_estimator_), "
        f"got {type(given).__name__}"
        + ("" if estimator is given else f" of a {type(estimator).__name__}") + ".")


def _hidden_pass(estimator, X):
    """Validated ``X`` through the hidden layers: ``[(z, a, slope), ...]`` per layer."""
    X = validate_data(estimator, X, accept_sparse=["csr", "csc"], reset=False,
                      dtype=(np.float64, np.float32))
    estimator._check_weight_shapes()  # weights assigned to coefs_ as predict checks them
    net = estimator._network
    X = X.astype(net.dtype, copy=False)
    slopes = getattr(estimator, "_slopes", None) or [None] * (net.n_layers - 1)
    layers, a = [], X
    with using_blas(), np.errstate(over="ignore", invalid="ignore"):
        # (using_blas: no n_jobs team of another thread forks meanwhile)
        for i, (W, b, act, slope) in enumerate(zip(
                estimator.coefs_[:-1], estimator.intercepts_[:-1], net.activations[:-1],
                slopes), start=1):
            z = (a @ W if sp.issparse(a) else np.dot(a, W)) + b
            if not np.isfinite(z).all():  # a diagnosis of NaN or inf would say nothing
                raise ValueError(
                    f"The pre-activations of hidden layer {i} are not finite for this "
                    f"X: its values are too large for the weights (or for "
                    f"{net.dtype.name}), or coefs_ / intercepts_ hold non-finite "
                    "values. Scale X as the training data was scaled.")
            a = activate_(act, z.copy(), slope)
            if not np.isfinite(a).all():  # an activation of a user's own, say
                raise ValueError(
                    f"The activations of hidden layer {i} ({act!r}) are not finite for "
                    "this X, whose pre-activations are.")
            layers.append((z, a, slope))
    return X, layers


def layer_outputs(estimator, X):
    """The hidden activations of a fitted estimator, one array per hidden layer.

    Parameters
    ----------
    estimator : fitted MLPScratchClassifier or MLPScratchRegressor
        Or a fitted Pipeline that ends with one (``X`` goes through its steps before),
        or a fitted search of either (its ``best_estimator_``).
    X : {array-like, sparse matrix} of shape (n_samples, n_features)

    Returns
    -------
    list of ndarray of shape (n_samples, n_units)

    Raises
    ------
    ValueError
        If a layer's pre-activations or activations are not finite for ``X``.
    """
    return [a for _, a, _ in _hidden_pass(*fitted_mlp(estimator, X))[1]]


def diagnose(estimator, X, y=None, sample_weight=None):
    """Dead, saturated and duplicate units, activation statistics, gradient norms.

    Parameters
    ----------
    estimator : fitted MLPScratchClassifier or MLPScratchRegressor
        Its current ``coefs_`` / ``intercepts_`` are used (weights assigned after
        ``fit`` included). Or a fitted Pipeline that ends with one (``X`` goes through
        its steps before), or a fitted search of either (its ``best_estimator_``).
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like, optional
        Targets of ``X``; when given, each layer reports ``grad_norm``, the Frobenius
        norm of the gradient of the training objective J (``alpha`` included) with
        respect to that layer's weights, on all of ``X`` at once; ``inf`` where the
        gradient overflows.
    sample_weight : array-like of shape (n_samples,), optional
        The weights of J's rows, multiplied with the estimator's ``class_weight`` as in
        ``fit``; only with ``y``.

    Returns
    -------
    Diagnosis
        One :class:`LayerDiagnosis` per hidden layer; ``print`` shows a table.
    """
    estimator, X = fitted_mlp(estimator, X)
    X, layers = _hidden_pass(estimator, X)
    acts = estimator._network.activations[:-1]
    if y is None and sample_weight is not None:
        raise ValueError("sample_weight weighs the rows of the objective, whose "
                         "gradient diagnose computes only when y is given.")
    grad_norms = (_weight_grad_norms(estimator, X, y, sample_weight) if y is not None
                  else [None] * len(layers))
    reports = []
    for i, ((z, a, slope), act) in enumerate(zip(layers, acts)):
        deriv = np.abs(act.derivative(z) if slope is None
                       else act.derivative_param(z, slope))
        max_deriv = (act.max_derivative if slope is None
                     else np.maximum(1.0, np.abs(slope)))
        vanished = deriv < SATURATION_LEVEL * max_deriv
        W, b = estimator.coefs_[i], estimator.intercepts_[i]
        incoming = [W, b[None, :]] + ([] if slope is None else [slope[None, :]])
        reports.append(LayerDiagnosis(
            layer=i + 1,
            activation=repr(act),
            n_units=a.shape[1],
            dead_fraction=float(np.mean(np.all(deriv == 0, axis=0))),
            saturated_fraction=float(np.mean(vanished.mean(axis=0)
                                             >= SATURATION_SHARE)),
            duplicate_fraction=_duplicate_fraction(np.vstack(incoming).T),
            mean=_at_unit_scale(np.mean, a),
            std=_at_unit_scale(np.std, a),
            mean_abs_derivative=float(deriv.mean()),
            grad_norm=grad_norms[i],
        ))
    return Diagnosis(reports)


def _duplicate_fraction(units):
    """Share of rows of ``units`` equal (within DUPLICATE_TOL or DUPLICATE_ULPS, in the
    largest absolute difference) to an earlier row that is not itself such a copy.

    Rows that close have close projections on any vector ``r``: within ``tol * |r|_1``.
    Each row is compared only with the earlier distinct rows whose projection is that
    close to its own, not with all of them: 2,048 units of 784 inputs take 0.03 s,
    not a quarter of a minute.
    """
    eps = np.finfo(np.result_type(units.dtype, np.float32)).eps  # float32 or float64
    n = len(units)
    units64 = units.astype(np.float64, copy=False)
    scale = float(np.abs(units64).max(initial=0))
    tol = max(DUPLICATE_TOL, DUPLICATE_ULPS * eps * scale)
    if not 0 < scale < np.inf:  # all 0 (copies of the first), or not finite
        return _duplicates_compared_with_all(units64, tol)
    r = np.random.default_rng(0).uniform(0.5, 1.5, units.shape[1])  # fixed: reproducible
    # projected at a scale of 1: weights near the float limit do not overflow
    proj = (units64 / scale) @ r
    # the products' own rounding, far above float64's error on these sums
    reach = tol / scale * r.sum() + 1e-9 * r.sum()
    by_proj = np.argsort(proj, kind="stable")
    sorted_proj = proj[by_proj]
    lo = np.searchsorted(sorted_proj, proj - reach, side="left")
    hi = np.searchsorted(sorted_proj, proj + reach, side="right")
    distinct = np.zeros(n, bool)
    for i in range(n):
        near = by_proj[lo[i]:hi[i]]
        near = near[(near < i) & distinct[near]]
        distinct[i] = not (len(near) and
                           np.abs(units64[near] - units64[i]).max(axis=1).min() <= tol)
    return (n - int(distinct.sum())) / n


def _duplicates_compared_with_all(units, tol):
    """:func:`_duplicate_fraction` by comparing each row with every earlier distinct
    one."""
    distinct = []
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, no copy
        for row in units:
            if not any(np.abs(other - row).max() <= tol for other in distinct):
                distinct.append(row)
    return (len(units) - len(distinct)) / len(units)


def _weight_grad_norms(estimator, X, y, sample_weight):
    """Norm of dJ/dW for each hidden layer, with the targets encoded and the rows
    weighted as in ``fit``."""
    # buffers of this call's own: diagnose may run in several threads at once, and
    # the estimator's network's buffers are its training loop's
    net = estimator._network.with_own_buffers()
    binarizer = getattr(estimator, "_label_binarizer", None)
    if sp.issparse(y) and getattr(binarizer, "y_type_", None) == "multilabel-indicator":
        y = y.toarray()  # multi-label indicators, which a classifier's fit takes sparse
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")  # finite, as fit's
    if len(y) != X.shape[0]:
        raise ValueError(f"y has {len(y)} rows but X has {X.shape[0]}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)  # one target, as fit takes it
    if binarizer is not None:
        fitted, given = binarizer.y_type_, type_of_target(y)
        kinds = (("multilabel-indicator",) if fitted == "multilabel-indicator" else
                 ("binary", "multiclass"))
        if given not in kinds:
            raise ValueError(f"y is {given}, but the model was fitted on {fitted} "
                             "targets.")
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        unseen = np.setdiff1d(unique_labels(y), classes)
        if len(unseen):
            raise ValueError(f"y has labels {unseen} that the model does not know: its "
                             f"classes_ are {classes}.")
    Y = estimator._encode_targets(y, X)
    if Y.shape != (X.shape[0], net.layer_units[-1]):
        raise ValueError(f"y gives targets of shape {Y.shape}, but the model expects "
                         f"{(X.shape[0], net.layer_units[-1])}.")
    # negative targets for an output >= 0, as fit refuses them (held-out rows beyond
    # a bounded output's range have a gradient: they are not refused here)
    estimator._check_targets(Y, net.activations[-1], reachable=False)
    sw = estimator._row_weights(y, sample_weight, X)  # as fit weighs them
    sw, alpha = _unit_weights(sw, estimator.alpha)
    flat = net.pack(estimator.coefs_, estimator.intercepts_,
                    getattr(estimator, "_slopes", None))
    if not np.isfinite(flat).all():  # the hidden layers' are checked by their pass
        raise ValueError("coefs_ / intercepts_ hold non-finite values: the gradient "
                         "would be NaN.")
    grad = np.empty_like(flat)
    # the loss's value is not used: one that overflows is no concern of the gradient's
    with using_blas(), np.errstate(over="ignore", invalid="ignore"):
        net.loss_grad(flat, X, Y, sw, alpha, grad)
    gcoefs = net.unpack(grad)[0]
    # from finite weights, inputs and activations, a NaN entry is an overflow met by
    # another (inf - inf) or by a 0 (an input, a dead unit): inf, as the overflow's own
    return [math.inf if np.isnan(g).any() else _at_unit_scale(np.linalg.norm, g)
            for g in gcoefs[:-1]]


def _at_unit_scale(stat, a):
    """``stat(a)`` for a statistic that scales with ``a`` (a mean, a standard deviation,
    a norm), computed on ``a / max|a|``: values beyond the square root of the largest
    float, finite themselves, give a finite result instead of overflowing its squares
    or sums."""
    scale = float(np.abs(a).max(initial=0))
    if not 0 < scale < np.inf:  # all zero, or not finite: as it comes (inf, NaN)
        with np.errstate(over="ignore", invalid="ignore"):  # beside inf: no noise
            return float(stat(a))
    return float(scale * stat(a / scale))
