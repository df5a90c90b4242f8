"""Diagnostics on constructed networks, the derivative check and the learnable PReLU."""

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch import activations as A
from sknn_scratch.activations import PReLU, check_derivative
from sknn_scratch.diagnostics import (DUPLICATE_TOL, DUPLICATE_ULPS, Diagnosis,
                                      _duplicate_fraction, diagnose, layer_outputs)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # the zero-initialization warning
        return est.fit(X, y)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=20, n_informative=8,
                               random_state=0)
    return StandardScaler().fit_transform(X), y


# ----------------------------------------------------------------- constructed cases
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_zero_init_leaves_all_units_of_a_layer_identical(data, activation):
    X, y = data
    est = _fit(MLPScratchClassifier((6, 4), activation=activation, init="zeros",
                                    max_iter=10, random_state=0), X, y)
    report = diagnose(est, X, y)
    assert [r.duplicate_fraction for r in report] == [5 / 6, 3 / 4]


def test_random_init_has_no_duplicates_but_exact_copies_are_found(data):
    X, y = data
    est = _fit(MLPScratchClassifier((6,), activation="tanh", max_iter=5,
                                    random_state=0), X, y)
    assert diagnose(est, X)[0].duplicate_fraction == 0
    W, b = est.coefs_[0].copy(), est.intercepts_[0].copy()
    W[:, 1], b[1] = W[:, 0] + 1e-9, b[0]          # within 1.5e-8 max|W|: a copy
    W[:, 3], b[3] = W[:, 2] + 1e-6, b[2]          # further apart: a different unit
    est.coefs_ = [W, est.coefs_[1]]
    est.intercepts_ = [b, est.intercepts_[1]]
    assert diagnose(est, X)[0].duplicate_fraction == pytest.approx(1 / 6)


def test_float32_copies_that_differ_in_their_last_bits_are_found(data):
    """The tolerance follows the weights' precision: it was 1e-8 whatever the dtype,
    below float32's rounding of weights near 1, so that rounding parted copies."""
    X, y = data
    X = X.astype(np.float32)
    est = _fit(MLPScratchClassifier((6,), activation="tanh", max_iter=5,
                                    random_state=0), X, y)
    W, b = est.coefs_[0].copy(), est.intercepts_[0].copy()
    assert W.dtype == np.float32
    W[:, 1], b[1] = np.nextafter(np.nextafter(W[:, 0], 2), 2), b[0]  # 2 ulps apart
    W[:, 3], b[3] = W[:, 2] + 1e-2, b[2]                        # a different unit
    est.coefs_ = [W, est.coefs_[1]]
    est.intercepts_ = [b, est.intercepts_[1]]
    assert diagnose(est, X)[0].duplicate_fraction == pytest.approx(1 / 6)


def _duplicates_by_brute_force(units, tol):
    """The rows within ``tol`` (largest absolute difference, exact) of an earlier
    distinct row, counted by comparing each with all earlier distinct ones."""
    units, distinct = units.astype(np.float64), []
    for row in units:
        if not any(np.abs(other - row).max() <= tol for other in distinct):
            distinct.append(row)
    return (len(units) - len(distinct)) / len(units)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_duplicates_are_those_a_comparison_with_every_earlier_unit_finds(dtype):
    """Each unit is compared only with the earlier ones whose projection is close to
    its own; the copies found are still all those within the tolerance, and no more,
    down to copies just inside and just outside it."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, fan_in = rng.integers(1, 30), rng.integers(1, 10)
        originals = rng.standard_normal((rng.integers(1, 5), fan_in))
        units = originals[rng.integers(0, len(originals), n)] * 10.0 ** rng.integers(-9, 3)
        eps = np.finfo(np.result_type(dtype, np.float32)).eps
        tol = max(DUPLICATE_TOL, DUPLICATE_ULPS * eps * np.abs(units).max())
        moved = rng.random(n) < 0.5
        units[moved] += (rng.choice([-1, 1], (moved.sum(), fan_in)) * tol
                         * rng.choice([0, 0.5, 0.999, 1.001, 2], (moved.sum(), 1)))
        units = units.astype(dtype)
        # the tolerance of the units as stored
        tol = max(DUPLICATE_TOL, DUPLICATE_ULPS * eps * float(np.abs(units).max()))
        assert _duplicate_fraction(units) == _duplicates_by_brute_force(units, tol)


def test_copies_of_weights_near_the_float_limit_are_found_without_warnings(data):
    """The projections are taken at a scale of 1: at 1e308 they overflowed to inf,
    inf - inf left the comparison window empty, and the copy went uncounted."""
    units = np.array([[1e308, 1e308, 0.0], [1e308, 1e308, 0.0], [-5.0, 1.0, 0.0]])
    # (underflow, of -5 / 1e308, is no error)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                divide="raise"):
        warnings.simplefilter("error")
        assert _duplicate_fraction(units) == pytest.approx(1 / 3)
        assert _duplicate_fraction(np.zeros((4, 3))) == 0.75
    X, y = data
    est = _fit(MLPScratchClassifier((3,), max_iter=2, random_state=0), X, y)
    W = np.zeros((X.shape[1], 3))
    W[:2] = units[:, :2].T  # units 0 and 1 copies, near the limit
    est.coefs_ = [W, est.coefs_[1]]
    est.intercepts_ = [np.zeros(3), est.intercepts_[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert diagnose(est, X * 1e-300)[0].duplicate_fraction == pytest.approx(1 / 3)


def test_a_wide_layer_of_many_copies_is_diagnosed(data):
    X, y = data
    est = _fit(MLPScratchClassifier((2048,), max_iter=1, random_state=0), X[:50], y[:50])
    W, b = est.coefs_[0].copy(), est.intercepts_[0].copy()
    W[:, 1::2], b[1::2] = W[:, ::2], b[::2]  # every other unit a copy of the one before
    est.coefs_, est.intercepts_ = [W, est.coefs_[1]], [b, est.intercepts_[1]]
    assert diagnose(est, X)[0].duplicate_fraction == 0.5


def test_diagnose_checks_assigned_weights_as_predict_does(data):
    X, y = data
    est = _fit(MLPScratchClassifier((6, 4), max_iter=5, random_state=0), X, y)
    good = est.coefs_
    est.coefs_ = [np.ones((20, 5)), np.ones((5, 4)), good[2]]
    for call in (est.predict, lambda X: diagnose(est, X), lambda X: layer_outputs(est, X),
                 lambda X: diagnose(est, X, y)):
        with pytest.raises(ValueError, match=r"coefs_ / intercepts_ have shapes"):
            call(X)
    est.coefs_ = [good[0].copy(), good[1], good[2]]
    est.coefs_[0][3, 2] = np.nan  # one weight: unit 2 of layer 1, then all of layer 2
    with pytest.raises(ValueError, match="not finite"):
        est.predict(X)
    with pytest.raises(ValueError, match="pre-activations of hidden layer 1 are not "
                                         "finite for this X"):
        diagnose(est, X)
    est.coefs_[0][3, 2] = 1e300  # finite weights, pre-activations beyond the range
    with pytest.raises(ValueError, match="hidden layer 1 are not finite"):
        layer_outputs(est, X * 1e10)


def test_relu_layer_with_large_negative_biases_is_dead(data):
    X, y = data
    est = _fit(MLPScratchClassifier((10,), activation="relu", max_iter=5,
                                    random_state=0), X, y)
    assert diagnose(est, X)[0].dead_fraction < 0.5
    est.intercepts_ = [np.full(10, -1e3), est.intercepts_[1]]
    report = diagnose(est, X, y)[0]
    assert report.dead_fraction == 1
    assert report.saturated_fraction == 1  # dead units are saturated too
    assert report.mean == 0 and report.std == 0
    assert report.grad_norm == pytest.approx(est.alpha / len(X)
                                             * np.linalg.norm(est.coefs_[0]))


def test_a_users_exp_is_saturated_where_the_builtin_is(data):
    """A derivative with no largest (exp's, 3 z^2): the scale is |g'(0)|, or the largest
    |g'| over [-1, 1] where that is 0, not its value at the end of a grid (e^10,
    which made every unit of a user's exp "saturated")."""
    class MyExp(A.Activation):
        def forward(self, z):
            return np.exp(z)

        def derivative(self, z):
            return np.exp(z)

    class Cube(A.Activation):
        def forward(self, z):
            return np.asarray(z) ** 3

        def derivative(self, z):
            return 3 * np.asarray(z) ** 2

    assert MyExp().max_derivative == A.Exp().max_derivative == 1.0
    assert Cube().max_derivative == 3.0
    X, y = data
    builtin = _fit(MLPScratchRegressor(hidden_layer_sizes=(8,), activation="exp",
                                       max_iter=5, random_state=0), X, y)
    mine = _fit(MLPScratchRegressor(hidden_layer_sizes=(8,), activation=MyExp(),
                                    max_iter=1, random_state=0), X, y)
    mine.coefs_ = [W.copy() for W in builtin.coefs_]
    mine.intercepts_ = [b.copy() for b in builtin.intercepts_]
    # the first layer's biases set so that units 0-2 sit at exp(z) < 0.01 on every row
    b = mine.intercepts_[0]
    reach = np.abs(X @ builtin.coefs_[0]).max(axis=0)
    b[:3] = -reach[:3] - 5.0
    builtin.intercepts_[0][:] = b
    ours, theirs = diagnose(mine, X)[0], diagnose(builtin, X)[0]
    assert ours.saturated_fraction == theirs.saturated_fraction == 3 / 8


def test_sigmoid_layer_with_huge_weights_is_saturated(data):
    X, y = data
    est = _fit(MLPScratchClassifier((10,), activation="sigmoid", max_iter=5,
                                    random_state=0), X, y)
    est.coefs_ = [np.random.RandomState(0).normal(0, 50, (20, 10)), est.coefs_[1]]
    assert diagnose(est, X)[0].saturated_fraction >= 0.9


def test_glorot_tanh_on_standardized_data_is_healthy(data):
    X, y = data
    est = _fit(MLPScratchClassifier((32, 32), activation="tanh", init="glorot_uniform",
                                    max_iter=50, random_state=0), X, y)
    for report in diagnose(est, X, y):
        assert report.dead_fraction == 0
        assert report.saturated_fraction <= 0.1
        assert report.duplicate_fraction == 0
        assert 0.1 < report.std < 1
        assert report.grad_norm > 0


def test_prelu_layer_uses_its_learned_slopes():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = _fit(MLPScratchClassifier((8,), activation=PReLU(0.25), max_iter=30,
                                    random_state=0), X, y)
    est._slopes[0][:] = 0.0  # a ReLU in disguise: derivative 0 wherever z <= 0
    # three units negative on every sample: dead with these slopes, alive with the
    # 0.25 the network started from
    est.intercepts_ = [est.intercepts_[0].copy(), est.intercepts_[1]]
    est.intercepts_[0][[1, 4, 6]] = -1e3
    z = X @ est.coefs_[0] + est.intercepts_[0]
    report = diagnose(est, X)[0]
    assert report.dead_fraction == np.mean(np.all(z <= 0, axis=0)) == 3 / 8
    assert report.mean_abs_derivative == pytest.approx(np.mean(z > 0))
    est._slopes[0][:] = 0.25
    assert diagnose(est, X)[0].dead_fraction == 0


@pytest.mark.parametrize("weighted", [False, True], ids=["class weights",
                                                       "and sample weights"])
def test_grad_norm_weighs_the_rows_as_fit_does(weighted):
    """J's rows carry sample_weight times the class weights: the gradient diagnosed is
    the one a fit on these rows would follow."""
    X, y = make_classification(n_samples=120, n_features=5, weights=[0.8],
                               random_state=0)
    est = _fit(MLPScratchClassifier((6,), class_weight="balanced", alpha=0.1,
                                    max_iter=5, random_state=0), X, y)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y)) if weighted else None
    w = compute_sample_weight("balanced", y) * (1.0 if sw is None else sw)
    net = est._network
    flat = net.pack(est.coefs_, est.intercepts_)
    grad = np.empty_like(flat)
    net.loss_grad(flat, X, y[:, None].astype(float), w, 0.1, grad)
    expected = np.linalg.norm(net.unpack(grad)[0][0])
    unweighted = np.empty_like(flat)
    net.loss_grad(flat, X, y[:, None].astype(float), None, 0.1, unweighted)
    assert not np.isclose(expected, np.linalg.norm(net.unpack(unweighted)[0][0]))
    assert diagnose(est, X, y, sample_weight=sw)[0].grad_norm == pytest.approx(
        expected, rel=1e-12)


@pytest.mark.parametrize("y, match", [
    (np.full(300, 99), r"labels \[99\] that the model does not know"),
    (np.array(["a", "b"] * 150), "that the model does not know"),
    (np.zeros(299, int), "y has 299 rows but X has 300"),
])
def test_diagnose_refuses_targets_the_model_cannot_have(data, y, match):
    X, y_fit = data
    est = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X, y_fit)
    with pytest.raises(ValueError, match=match):
        diagnose(est, X, y)


def test_diagnose_refuses_targets_of_another_kind_than_the_fitted_ones(data):
    X, y = data
    Y = np.column_stack([y, 1 - y, y])
    multilabel = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X, Y)
    with pytest.raises(ValueError, match="y is multiclass, but the model was fitted on "
                                         "multilabel-indicator"):
        diagnose(multilabel, X, np.arange(len(X)) % 3)
    binary = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match="y is multilabel-indicator, but the model was "
                                         "fitted on binary"):
        diagnose(binary, X, Y[:, :2])
    reg = _fit(MLPScratchRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0),
               X, y * 1.5)
    with pytest.raises(ValueError, match="y contains NaN"):
        diagnose(reg, X, np.where(np.arange(len(X)) == 3, np.nan, 1.0))


@pytest.mark.parametrize("make_y, given", [
    (lambda y: y + 0.5, "continuous"),
    (lambda y: np.column_stack([y, (np.arange(len(y)) % 3)]), "multiclass-multioutput"),
])
def test_diagnose_names_targets_no_classifier_takes(data, make_y, given):
    """Not sklearn's "Unknown label type" with the whole array in it."""
    X, y = data
    est = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match=f"^y is {given}, but the model was fitted on "
                                         "binary targets.$"):
        diagnose(est, X, make_y(y))


@pytest.mark.parametrize("class_weight", [{0: 1.0, 1: 3.0}, "balanced"])
def test_diagnose_takes_a_column_y_as_fit_does(data, class_weight):
    """A column of labels is one target, in fit and in diagnose (with a dict of class
    weights, it was taken for a multi-label y)."""
    X, y = data
    est = _fit(MLPScratchClassifier((4,), class_weight=class_weight, max_iter=2,
                                    random_state=0), X, y)
    with pytest.warns(DataConversionWarning):
        column = diagnose(est, X, y[:, None])[0].grad_norm
    assert column == diagnose(est, X, y)[0].grad_norm


@pytest.mark.parametrize("params", [{}, {"loss": "poisson"}])
def test_diagnose_refuses_negative_targets_as_fit_does(params):
    """A ReLU or exp output, whose fit refuses negative targets: no objective to
    differentiate for them either."""
    X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    y = np.abs(y)
    est = _fit(MLPScratchRegressor(hidden_layer_sizes=(4,), max_iter=5,
                                   random_state=0, **params), X, y)
    assert diagnose(est, X, y)[0].grad_norm > 0
    with pytest.raises(ValueError, match="y has negative values"):
        diagnose(est, X, y - 1.0)


def test_diagnose_takes_sparse_multilabel_targets_as_fit_does(data):
    X, y = data
    Y = np.column_stack([y, 1 - y, y])
    est = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X,
               sp.csr_matrix(Y))
    assert diagnose(est, X, sp.csr_matrix(Y))[0].grad_norm == diagnose(est, X, Y)[
        0].grad_norm
    reg = _fit(MLPScratchRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0),
               X, Y * 1.5)
    with pytest.raises(TypeError, match="Sparse data was passed for y"):  # as its fit
        diagnose(reg, X, sp.csr_matrix(Y))


def test_diagnose_gives_the_same_gradient_norms_in_several_threads_at_once(data):
    """Each call has batch buffers of its own: they shared the estimator's network's,
    and calls in 4 threads returned wrong norms in 151 of 200."""
    X, y = data
    est = _fit(MLPScratchClassifier((100, 50), max_iter=5, random_state=0), X, y)
    alone = [layer.grad_norm for layer in diagnose(est, X, y)]
    start = threading.Barrier(4)

    def norms(i):
        if i < 4:
            start.wait()  # the first four calls together
        return [layer.grad_norm for layer in diagnose(est, X, y)]

    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(norms, range(40)))
    assert all(found == alone for found in together)
    assert est._network._work is None  # the estimator's buffers left alone


def test_diagnose_wants_y_with_sample_weight(data):
    X, y = data
    est = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match="only when y is given"):
        diagnose(est, X, sample_weight=np.ones(len(X)))


# ------------------------------------------------------- layer outputs and gradients
def test_layer_outputs_are_the_forward_pass_of_predict():
    X, y = make_regression(n_samples=80, n_features=5, random_state=0)
    est = _fit(MLPScratchRegressor(hidden_layer_sizes=(7, 3),
                                   activation=["tanh", "elu"], max_iter=20,
                                   output_activation="identity", random_state=0), X, y)
    h1, h2 = layer_outputs(est, X)
    assert h1.shape == (80, 7) and h2.shape == (80, 3)
    np.testing.assert_allclose(h1, np.tanh(X @ est.coefs_[0] + est.intercepts_[0]))
    out = h2 @ est.coefs_[2] + est.intercepts_[2]
    np.testing.assert_allclose(out.ravel(), est.predict(X), rtol=1e-12)


def test_layer_outputs_checks_its_input(data):
    X, y = data
    est = MLPScratchClassifier((3,))
    with pytest.raises(Exception, match="not fitted"):
        layer_outputs(est, X)
    _fit(est.set_params(max_iter=2), X, y)
    with pytest.raises(ValueError, match="features"):
        layer_outputs(est, X[:, :5])


def test_grad_norm_is_the_norm_of_finite_differences_of_the_objective():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3))
    y = rng.normal(size=30)
    est = _fit(MLPScratchRegressor(hidden_layer_sizes=(4, 2), activation="tanh",
                                   alpha=0.3, output_activation="identity", max_iter=5,
                                   random_state=0), X, y)

    def objective():
        pred = est.predict(X)
        penalty = sum((W ** 2).sum() for W in est.coefs_)
        return 0.5 * np.mean((pred - y) ** 2) + 0.3 / (2 * len(X)) * penalty

    report = diagnose(est, X, y)
    for layer in range(2):
        W = est.coefs_[layer]
        numeric = np.empty_like(W)
        for idx in np.ndindex(W.shape):
            w0, h = W[idx], 1e-6
            W[idx] = w0 + h
            up = objective()
            W[idx] = w0 - h
            down = objective()
            W[idx] = w0
            numeric[idx] = (up - down) / (2 * h)
        assert report[layer].grad_norm == pytest.approx(np.linalg.norm(numeric),
                                                         rel=1e-6)


def test_grad_norm_encodes_class_labels_like_fit(data):
    X, y = data
    labels = np.array(["no", "yes"])[y]
    est = _fit(MLPScratchClassifier((5,), max_iter=5, random_state=0), X, labels)
    by_label = diagnose(est, X, labels)[0].grad_norm
    assert by_label > 0
    flipped = diagnose(est, X, labels[::-1])[0].grad_norm
    assert flipped != by_label
    with pytest.raises(ValueError):
        diagnose(est, X, labels[:10])


def test_diagnosis_prints_as_a_table(data):
    X, y = data
    est = _fit(MLPScratchClassifier((5, 3), activation=["relu", "sigmoid"], max_iter=5,
                                    random_state=0), X, y)
    report = diagnose(est, X, y)
    assert isinstance(report, Diagnosis) and len(report) == 2
    lines = str(report).splitlines()
    assert len(lines) == 3
    for header in ("layer", "activation", "units", "dead", "saturated", "duplicate",
                   "mean", "std", "grad norm"):
        assert header in lines[0]
    assert "ReLU()" in lines[1] and "Sigmoid()" in lines[2]
    assert repr(report) == str(report)
    assert "grad norm" not in str(diagnose(est, X))
    rows = report.to_dicts()
    assert rows[1]["activation"] == "Sigmoid()" and rows[0]["n_units"] == 5


# ------------------------------------------------------------------ check_derivative
# (every built-in passing it is tested in test_activations.py)
class _WrongDerivative(A.Activation):
    def __init__(self, factor=2.0):
        self.factor = factor

    def forward(self, z):
        return np.tanh(z)

    def derivative(self, z):
        return self.factor * (1 - np.tanh(z) ** 2)


@pytest.mark.parametrize("factor", [2.0, -1.0, 1.01])
def test_check_derivative_flags_a_wrong_derivative(factor):
    assert check_derivative(_WrongDerivative(factor)) > 0.009
    assert check_derivative(_WrongDerivative(1.0)) < 1e-7


@pytest.mark.parametrize("factor", [2.0, 1.01, 0.999])
def test_fit_rejects_a_wrong_custom_derivative(data, factor):
    """Even one 1 % or 0.1 % off (relative errors 0.0099 and 0.001, above the 1e-4
    the fit allows); the right one trains."""
    X, y = data
    with pytest.raises(ValueError, match="derivative"):
        MLPScratchClassifier((3,), activation=_WrongDerivative(factor)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPScratchClassifier((3,), activation=_WrongDerivative(1.0),
                             max_iter=2).fit(X, y)


# ----------------------------------------------------------------------------- PReLU
def _numeric_grad(net, flat, X, Y, alpha):
    tmp = np.empty_like(flat)
    numeric = np.empty_like(flat)
    for i in range(flat.size):
        h = 1e-6
        up, down = flat.copy(), flat.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (net.loss_grad(up, X, Y, None, alpha, tmp)
                      - net.loss_grad(down, X, Y, None, alpha, tmp)) / (2 * h)
    return numeric


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_prelu_gradient_matches_finite_differences(alpha):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    est = _fit(MLPScratchClassifier((5, 4), activation=["prelu", PReLU(0.1)],
                                    max_iter=20, random_state=0), X, y)
    net = est._network
    flat = est._params.copy()
    flat[-9:] = rng.uniform(-0.5, 1.5, 9)  # slopes away from their start
    Y = est._label_binarizer.transform(y).astype(float)
    grad = np.empty_like(flat)
    net.loss_grad(flat, X, Y, None, alpha, grad)
    numeric = _numeric_grad(net, flat, X, Y, alpha)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(grad[-9:]).min() > 0  # the slopes do receive a gradient


def test_prelu_slopes_are_not_regularized():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(30, 3))
    y = X[:, 0] - X[:, 1] ** 2
    est = _fit(MLPScratchRegressor(hidden_layer_sizes=(6,), activation="prelu",
                                   max_iter=10, output_activation="identity",
                                   random_state=0), X, y)
    net, flat = est._network, est._params.copy()
    Y = y.reshape(-1, 1)
    g0, g1 = np.empty_like(flat), np.empty_like(flat)
    net.loss_grad(flat, X, Y, None, 0.0, g0)
    net.loss_grad(flat, X, Y, None, 10.0, g1)
    np.testing.assert_array_equal(g0[-6:], g1[-6:])
    assert not np.allclose(g0[:net.n_coefs], g1[:net.n_coefs])


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_every_solver_learns_prelu_slopes_and_predict_uses_them(solver):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = _fit(MLPScratchClassifier((6,), activation=PReLU(negative_slope=0.3),
                                    solver=solver, max_iter=30, learning_rate_init=0.01,
                                    random_state=0), X, y)
    (slopes,) = est.slopes_
    assert slopes.shape == (6,)
    assert np.abs(slopes - 0.3).max() > 1e-3  # moved from their initial value
    z = X @ est.coefs_[0] + est.intercepts_[0]
    hidden = np.where(z > 0, z, slopes * z)
    logit = (hidden @ est.coefs_[1] + est.intercepts_[1]).ravel()
    eps = np.finfo(float).eps
    np.testing.assert_allclose(est.predict_proba(X)[:, 1],
                               np.clip(expit(logit), eps, 1 - eps), rtol=1e-10)
    # with the initial slope instead, the predictions differ
    fixed = np.where(z > 0, z, 0.3 * z) @ est.coefs_[1] + est.intercepts_[1]
    assert not np.allclose(fixed.ravel(), logit)


def test_slopes_attribute_is_read_only_and_none_for_other_layers(data):
    X, y = data
    est = MLPScratchClassifier((4, 3), activation=["relu", "prelu"], max_iter=3,
                               random_state=0)
    assert not hasattr(est, "slopes_")
    _fit(est, X, y)
    first, second = est.slopes_
    assert first is None and second.shape == (3,)
    with pytest.raises(ValueError, match="read-only"):
        second[0] = 1.0


def test_sparse_input_gives_the_same_diagnosis(data):
    X, y = data
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    est = _fit(MLPScratchClassifier((6, 5), max_iter=5, random_state=0), X, y)
    dense, sparse = diagnose(est, X, y), diagnose(est, sp.csr_matrix(X), y)
    for a, b in zip(dense.to_dicts(), sparse.to_dicts()):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == (pytest.approx(b[key], rel=1e-10)
                              if isinstance(a[key], float) else b[key])


def test_module_docstring_example_runs():
    import doctest

    import sknn_scratch.diagnostics as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_statistics_of_huge_finite_values_are_finite_and_quiet():
    """Activations near 1e160 and gradients near 1e300 are finite; so are their mean,
    standard deviation and norm, which overflowed in their squares and sums (with a
    RuntimeWarning) before they were taken at unit scale."""
    X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    reg = _fit(MLPScratchRegressor(hidden_layer_sizes=(5,), solver="lbfgs",
                                   output_activation="identity", random_state=0), X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        huge_y = diagnose(reg, X, y * 1e300)[0].grad_norm
        huge_a = diagnose(reg, X * 1e160)[0]
        plain = diagnose(reg, X, y)[0]
    assert 1e299 < huge_y < np.inf
    a = layer_outputs(reg, X * 1e160)[0]
    assert huge_a.std == pytest.approx((a / 1e160).std() * 1e160, rel=1e-12)
    assert huge_a.mean == pytest.approx((a / 1e160).mean() * 1e160, rel=1e-12)
    a = layer_outputs(reg, X)[0]
    assert plain.std == pytest.approx(a.std(), rel=1e-12)
    assert plain.mean == pytest.approx(a.mean(), rel=1e-12)


def test_diagnostics_name_an_estimator_that_is_not_ours(data):
    from sklearn.neural_network import MLPClassifier
    X, y = data
    theirs = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0), X, y)
    for call in (diagnose, layer_outputs):
        with pytest.raises(TypeError, match="take an MLPScratchClassifier or "
                                            "MLPScratchRegressor, a Pipeline that ends "
                                            "with one or a fitted search of them .its "
                                            "best_estimator_., got MLPClassifier.$"):
            call(theirs, X)


def test_diagnostics_take_a_pipeline_or_a_search_as_their_mlp(data):
    """A Pipeline (X through its steps) or a fitted search (its best_estimator_) is
    diagnosed as the MLP it ends with: they raised a TypeError."""
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    X, y = data
    pipe = make_pipeline(StandardScaler(), MLPScratchClassifier((4,), max_iter=5,
                                                                random_state=0))
    search = GridSearchCV(pipe, {"mlpscratchclassifier__activation": ["relu", "tanh"]},
                          cv=2)
    search = _fit(search, X, y)
    best = search.best_estimator_
    mlp, Xt = best[-1], best[:-1].transform(X)
    expected = diagnose(mlp, Xt, y).to_dicts()
    for given in (best, search):
        assert diagnose(given, X, y).to_dicts() == expected
        for got, want in zip(layer_outputs(given, X), layer_outputs(mlp, Xt)):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(NotFittedError):
        diagnose(clone(pipe), X)
    with pytest.raises(NotFittedError):
        diagnose(clone(search), X)
    unrefitted = _fit(clone(search).set_params(refit=False), X, y)
    with pytest.raises(TypeError, match=r"This GridSearchCV keeps no best_estimator_ "
                                        r"\(refit=False\)"):
        diagnose(unrefitted, X)
    other = _fit(make_pipeline(StandardScaler(), LogisticRegression()), X, y)
    with pytest.raises(TypeError, match="a Pipeline that ends with one or a fitted "
                                        "search of them .its best_estimator_., got "
                                        "Pipeline of a LogisticRegression."):
        layer_outputs(other, X)


def test_diagnose_refuses_a_sparse_y_of_a_single_label_model_as_fit_does(data):
    X, y = data
    est = _fit(MLPScratchClassifier((4,), max_iter=2, random_state=0), X, y)
    for call in (lambda: diagnose(est, X, sp.csr_matrix(y[:, None])),
                 lambda: MLPScratchClassifier((4,)).fit(X, sp.csr_matrix(y[:, None]))):
        with pytest.raises(TypeError, match="Sparse data was passed for y"):
            call()


# ------------------------------------------------------------ the thresholds, exactly
def _one_feature_model(activation, n_units, x):
    """A classifier fitted on one feature, whose first layer the test then sets."""
    X = np.asarray(x, float).reshape(-1, 1)
    return _fit(MLPScratchClassifier((n_units,), activation=activation, max_iter=1,
                                     random_state=0), X, np.arange(len(X)) % 2), X


def test_saturation_is_a_derivative_below_one_percent_of_its_peak():
    est, X = _one_feature_model("logistic", 2, np.linspace(-1, 1, 20))
    share = lambda z: A.Sigmoid().derivative(np.array([z]))[0] / 0.25
    assert 0.00996 < share(-5.99) < 0.01 < share(-5.98) < 0.01007
    est.coefs_[0][...] = 0.0
    est.intercepts_[0][...] = [-5.99, -5.98]
    assert diagnose(est, X)[0].saturated_fraction == 0.5


def test_a_far_negative_sigmoid_unit_is_saturated_not_dead():
    """Its derivative, 9.4e-14 at z = -30, is tiny but not 0: a unit is dead only
    where no row passes any gradient."""
    est, X = _one_feature_model("logistic", 2, np.linspace(-1, 1, 20))
    est.coefs_[0][...] = 0.0
    est.intercepts_[0][...] = [-30.0, 0.0]
    report = diagnose(est, X)[0]
    assert report.dead_fraction == 0 and report.saturated_fraction == 0.5


def test_a_unit_saturated_on_exactly_95_percent_of_the_rows_is_saturated():
    est, X = _one_feature_model("logistic", 1, [-30.0] * 19 + [0.0])
    est.coefs_[0][...] = 1.0
    est.intercepts_[0][...] = 0.0
    assert diagnose(est, X)[0].saturated_fraction == 1.0


def test_float32_units_1e_4_apart_are_distinct_and_2e_5_apart_duplicates():
    """The float32 tolerance in numbers (840 and 168 units in the last place of 1.0),
    not through DUPLICATE_ULPS itself."""
    apart = np.array([[1.0, 0.5], [1.0 - 1e-4, 0.5]], np.float32)
    assert _duplicate_fraction(apart) == 0
    close = np.array([[1.0, 0.5], [1.0 - 2e-5, 0.5]], np.float32)
    assert _duplicate_fraction(close) == 0.5


def test_a_prelu_unit_is_scaled_by_its_learned_slope_above_one():
    """With a slope of 500 the largest |g'| is 500, so g' = 1 on every row is
    saturated (0.2 % of it)."""
    est, X = _one_feature_model(PReLU(0.25), 1, np.linspace(1, 2, 20))
    est.coefs_[0][...] = 1.0  # z > 0 on every row
    est.intercepts_[0][...] = 0.0
    est._slopes[0][:] = 500.0
    assert diagnose(est, X)[0].saturated_fraction == 1.0


def test_held_out_targets_beyond_a_bounded_output_are_diagnosed():
    """fit refuses targets a sigmoid output cannot reach; diagnose, given held-out
    rows that a scaler put slightly beyond [0, 1], computes their gradient."""
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = np.linspace(0, 1, 60)
    reg = _fit(MLPScratchRegressor(hidden_layer_sizes=(4,), output_activation="sigmoid",
                                   max_iter=5, random_state=0), X, y)
    report = diagnose(reg, X, y - 0.05)
    assert np.isfinite(report[0].grad_norm)


def test_a_gradient_holding_inf_gives_an_infinite_norm_without_numpy_noise():
    """Large finite entries beside inf overflowed their squares in the norm, and
    numpy's RuntimeWarning escaped diagnose."""
    rng = np.random.RandomState(0)
    X = rng.randn(20, 2).astype(np.float32)
    y = rng.poisson(2.0, 20).astype(float)
    reg = _fit(MLPScratchRegressor(loss="poisson", hidden_layer_sizes=(2,),
                                   activation="identity", solver="lbfgs", max_iter=2,
                                   random_state=0), X, y)
    # outputs up to 2e38, finite in float32; the first layer's gradient of the rows
    # scaled by 1000 overflows in one column and holds 1e37 in the other
    reg.coefs_ = [np.array([[0.03, 1e-6], [0.03, 1e-6]], np.float32),
                  np.array([[0.91], [1e-3]], np.float32)]
    X = X * 1000
    assert np.isfinite(reg.predict(X)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = diagnose(reg, X, y)
    assert report[0].grad_norm == np.inf


def test_a_poisson_output_beyond_the_float_range_is_refused():
    """exp clips its output at the largest float: predict and score handed that back
    as a prediction, and diagnose's gradient came out NaN beside it."""
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3)
    y = rng.poisson(2.0, 50)
    reg = _fit(MLPScratchRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=20,
                                   random_state=0), X, y)
    assert np.isfinite(reg.predict(X)).all()
    for call in (reg.predict, lambda X: reg.score(X, y)):
        with pytest.raises(ValueError, match="beyond the largest float64"):
            call(X * 1e6)
    for dtype, bias in [(np.float64, 720.0), (np.float32, 100.0)]:
        refit = _fit(clone(reg), X.astype(dtype), y)
        refit.intercepts_ = [refit.intercepts_[0], np.array([bias], dtype)]
        with pytest.raises(ValueError, match=f"beyond the largest {np.dtype(dtype)}"):
            refit.predict(X.astype(dtype))
        refit.intercepts_ = [refit.intercepts_[0], np.array([bias / 10], dtype)]
        assert np.isfinite(refit.predict(X.astype(dtype))).all()

    class BoundedExp(A.Exp):  # a user's exp, bounded where it means to be
        def forward(self, z):
            return np.exp(np.minimum(z, 30.0))

        def derivative(self, z):
            return np.where(z < 30.0, np.exp(np.minimum(z, 30.0)), 0.0)

    reg = _fit(clone(reg).set_params(output_activation=BoundedExp()), X, y)
    reg.intercepts_ = [reg.intercepts_[0], np.array([40.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reg.predict(X).max() == np.exp(30.0)


def test_an_overflowing_gradient_has_norm_inf_and_non_finite_weights_are_refused():
    """inf - inf, or an input of 0 times an overflowing delta, gave NaN norms (the
    same X as CSR, whose zeros are not multiplied, gave inf)."""
    # both rows' outputs clipped, their hidden deltas inf: the first layer's gradient
    # sums +inf and -inf
    X1, y1 = np.array([[1.0], [-1.0]]), np.array([1.0, 2.0])
    est = _fit(MLPScratchRegressor(loss="poisson", hidden_layer_sizes=(1,),
                                   activation="identity", max_iter=2, random_state=0),
               X1, y1)
    est.coefs_ = [np.array([[1e-300]]), np.array([[1e300]])]
    est.intercepts_ = [np.array([1.0]), np.array([0.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert diagnose(est, X1, y1)[0].grad_norm == np.inf
    X0 = np.array([[0.0], [1.0]])  # 0 times an inf delta
    for Xi in (X0, sp.csr_matrix(X0)):
        assert diagnose(est, Xi, y1)[0].grad_norm == np.inf
    est.coefs_ = [np.array([[1.0]]), np.array([[np.nan]])]  # the output layer's
    with pytest.raises(ValueError, match="coefs_ / intercepts_ hold non-finite"):
        diagnose(est, X1, y1)


def test_diagnose_refuses_non_finite_activations(data):
    X, y = data

    class NaNBeyond30(A.Activation):
        def forward(self, z):
            return np.where(np.abs(z) > 30, np.nan, np.tanh(z))

        def derivative(self, z):
            return 1 - np.tanh(z) ** 2

    est = _fit(MLPScratchClassifier((5,), activation=NaNBeyond30(), max_iter=5,
                                    random_state=0), X, y)
    diagnose(est, X)
    with pytest.raises(ValueError, match=r"activations of hidden layer 1 \(NaNBeyond30"
                                         r"\(\)\) are not finite"):
        diagnose(est, X * 1e3)

