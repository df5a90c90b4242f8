"""Training that blows up is reported, never silent (SPEC 6).

After at least one finite epoch: a ConvergenceWarning naming the likely cause, the loss
curve records the bad epoch, the most recent weights with a finite training loss are
restored and predictions stay finite. With no finite epoch at all: scikit-learn's
ValueError. No numpy RuntimeWarning leaks out on the way.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch.network import Network

NONFINITE_MSG = re.escape(
    "Solver produced non-finite parameter weights. The input data may contain large "
    "values and need to be preprocessed.")
X_DIAB, Y_DIAB = load_diabetes(return_X_y=True)
X_DIAB = (X_DIAB - X_DIAB.mean(0)) / X_DIAB.std(0)
RNG = np.random.RandomState(0)
X = RNG.randn(60, 4)
Y_CLS = (X[:, 0] > 0).astype(int)
Y_REG = X @ np.array([1.0, 2.0, 3.0, 4.0]) * 100


@pytest.fixture(autouse=True)
def runtime_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def _data_loss(est, X, Y):
    grad = np.empty_like(est._params)
    return est._network.loss_grad(est._params, X, Y, None, est.alpha, grad)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_high_learning_rate_warns_and_keeps_finite_weights(early_stopping):
    est = MLPScratchRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50,
                              hidden_layer_sizes=(10,), random_state=0,
                              early_stopping=early_stopping)
    with pytest.warns(ConvergenceWarning,
                      match=r"diverged.*learning_rate_init=10\.0\) is likely too high"
                            r".*not scaled"):
        est.fit(X, Y_REG)
    assert est.n_iter_ < 50
    assert len(est.loss_curve_) == est.n_iter_
    assert not np.isfinite(est.loss_curve_[-1]) or est.n_iter_ > 1
    assert np.all(np.isfinite(est.loss_curve_[:-1]))
    if early_stopping:
        assert len(est.validation_scores_) == est.n_iter_
        assert est.validation_scores_[-1] == -np.inf
        assert np.isfinite(est.best_validation_score_)
    for w in est.coefs_ + est.intercepts_:
        assert np.isfinite(w).all()
    assert np.isfinite(est.predict(X)).all()
    if not early_stopping:  # the kept weights have a finite training loss
        assert np.isfinite(_data_loss(est, X, Y_REG[:, None]))


def test_unscaled_input_warns_and_predicts_finite():
    """A classifier on input scaled by 1e150: the first epoch is finite, then it blows."""
    est = MLPScratchClassifier(solver="sgd", max_iter=20, random_state=0,
                               hidden_layer_sizes=(8,))
    Xbig = X * 1e150
    with pytest.warns(ConvergenceWarning, match="StandardScaler"):
        est.fit(Xbig, Y_CLS)
    assert np.isfinite(est.loss_curve_[0]) and not np.isfinite(est.loss_curve_[-1])
    proba = est.predict_proba(Xbig)
    assert np.isfinite(proba).all() and (proba > 0).all() and (proba < 1).all()
    assert np.isfinite(est.predict_log_proba(Xbig)).all()


def test_adam_moment_overflow_is_reported():
    """Adam's squared gradients overflow before the loss does: not a silent stall."""
    est = MLPScratchClassifier(solver="adam", max_iter=50, random_state=0,
                               hidden_layer_sizes=(8,))
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est.fit(X * 1e300, Y_CLS)
    assert est.n_iter_ < 50
    assert all(np.isfinite(w).all() for w in est.coefs_)


def _poison_after(monkeypatch, k):
    """Patch Network.loss_grad: from call ``k`` on, the loss and gradient are NaN.

    Returns the list of parameter vectors it was called with.
    """
    orig, seen = Network.loss_grad, []

    def loss_grad(net, flat, X, Y, sw, alpha, grad):
        seen.append(np.array(flat))
        loss = orig(net, flat, X, Y, sw, alpha, grad)
        if len(seen) >= k:
            grad[...] = np.nan
            return np.nan
        return loss

    monkeypatch.setattr(Network, "loss_grad", loss_grad)
    return seen


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("bad_epoch", [2, 4])
def test_restores_weights_of_latest_finite_loss(monkeypatch, solver, bad_epoch):
    """One batch per epoch: epoch k's loss is J at the weights epoch k started from.

    When epoch k is NaN, the latest weights known to have a finite loss are those
    epoch k-1 started from -- not the untested weights epoch k-1 ended with.
    """
    seen = _poison_after(monkeypatch, bad_epoch)
    est = MLPScratchRegressor(solver=solver, batch_size=60, max_iter=10, random_state=0,
                              hidden_layer_sizes=(5,))
    with pytest.warns(ConvergenceWarning, match=f"diverged at epoch {bad_epoch}"):
        est.fit(X, Y_REG)
    assert est.n_iter_ == bad_epoch == len(est.loss_curve_)
    assert np.isnan(est.loss_curve_[-1])
    np.testing.assert_array_equal(est._params, seen[bad_epoch - 2])


def test_first_epoch_nan_raises(monkeypatch):
    _poison_after(monkeypatch, 1)
    with pytest.raises(ValueError, match=NONFINITE_MSG):
        MLPScratchRegressor(solver="adam", random_state=0).fit(X, Y_REG)


def test_lbfgs_divergence_after_finite_iterations_keeps_last_finite(monkeypatch):
    _poison_after(monkeypatch, 8)
    est = MLPScratchRegressor(solver="lbfgs", max_iter=100, random_state=0,
                              hidden_layer_sizes=(5,))
    with pytest.warns(ConvergenceWarning, match="diverged") as record:
        est.fit(X_DIAB, Y_DIAB)
    # one warning that names the cause, not a second one for the stopped line search
    assert len([w for w in record if w.category is ConvergenceWarning]) == 1
    assert np.isfinite(est.loss_) and len(est.loss_curve_) >= 1
    assert est.loss_ == pytest.approx(min(c for c in est.loss_curve_ if np.isfinite(c)))
    monkeypatch.undo()
    assert np.isfinite(est.predict(X_DIAB)).all()
    assert _data_loss(est, X_DIAB, Y_DIAB[:, None]) == pytest.approx(est.loss_)


def _near_float_max(dtype):
    big = np.finfo(dtype).max / 4
    return (np.sign(X) * big).astype(dtype)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regressor_on_input_near_float_max_raises_sklearn_error(solver, dtype):
    """No epoch is ever finite: scikit-learn's error (its test_nonfinite_params)."""
    est = MLPScratchRegressor(solver=solver, max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=NONFINITE_MSG):
        est.fit(_near_float_max(dtype), Y_REG)


def test_classifier_lbfgs_on_input_near_float_max_raises_sklearn_error():
    est = MLPScratchClassifier(solver="lbfgs", max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=NONFINITE_MSG):
        est.fit(_near_float_max(np.float64), Y_CLS)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classifier_on_input_near_float_max_warns(solver, dtype):
    """The clipped log-loss of the saturated initial network is finite, so the first
    epoch counts as finite: a warning, and the initial weights are kept."""
    Xbig = _near_float_max(dtype)
    est = MLPScratchClassifier(solver=solver, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch"):
        est.fit(Xbig, Y_CLS)
    assert np.isfinite(est.loss_curve_[0])
    assert all(np.isfinite(w).all() for w in est.coefs_)
    assert np.isfinite(est.predict_log_proba(Xbig)).all()


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_targets_near_float_max_raise_sklearn_error(solver):
    with pytest.raises(ValueError, match=NONFINITE_MSG):
        MLPScratchRegressor(solver=solver, max_iter=5, random_state=0).fit(
            X, Y_REG * 1e300)


def test_lbfgs_failure_leaves_warm_started_weights_as_they_were():
    est = MLPScratchRegressor(solver="lbfgs", max_iter=30, random_state=0,
                              warm_start=True, hidden_layer_sizes=(5,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, Y_REG)
    coefs = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match=NONFINITE_MSG):
        est.fit(X * 1e300, Y_REG)
    for before, after in zip(coefs, est.coefs_):
        np.testing.assert_array_equal(before, after)


def test_partial_fit_divergence_keeps_the_model_usable():
    est = MLPScratchRegressor(solver="sgd", learning_rate_init=10.0, random_state=0,
                              hidden_layer_sizes=(10,))
    with pytest.warns(ConvergenceWarning, match="diverged"):
        for _ in range(20):
            est.partial_fit(X, Y_REG)
    assert all(np.isfinite(w).all() for w in est.coefs_)
    assert np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("Est, y", [(MLPScratchClassifier, Y_CLS),
                                    (MLPScratchRegressor, Y_REG)])
def test_predict_never_returns_non_finite(Est, y):
    est = Est(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    methods = ["predict"] + (["predict_proba"] if Est is MLPScratchClassifier else [])
    for method in methods:
        with pytest.raises(ValueError, match="output is not finite"):
            getattr(est, method)(np.full((3, 4), 1e308))
    est.coefs_ = [c.copy() for c in est.coefs_]
    est.coefs_[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="coefs_ / intercepts_ hold non-finite"):
        est.predict(X)


def test_blow_up_cut_short_by_max_iter_is_caught():
    """Found by hypothesis: every epoch's loss is finite (at the weights it started
    from) but the weights of the last update overflow on the training data."""
    est = MLPScratchRegressor(activation="identity", hidden_layer_sizes=(3,),
                              max_iter=5, random_state=0, solver="sgd")
    Xs, ys = np.array([[123, 0]]), np.array([17.64052346])
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 5") as caught:
        est.fit(Xs, ys)
    diverged = [str(w.message) for w in caught if "diverged" in str(w.message)]
    assert diverged[0].endswith("The last weights with a finite loss were kept.")
    assert np.all(np.isfinite(est.loss_curve_))
    assert np.isfinite(est.predict(Xs)).all()
    assert _data_loss(est, Xs.astype(float), ys[:, None]) == est.loss_curve_[-1]


def test_partial_fit_recovers_the_latest_finite_weights_of_earlier_calls():
    """partial_fit does not re-check its last update (a forward pass per call): a model
    whose weights overflow makes predict raise, and the next partial_fit reports the
    divergence and goes back to the weights of the latest finite loss, from an
    earlier call."""
    est = MLPScratchRegressor(activation="identity", hidden_layer_sizes=(3,),
                              random_state=0, solver="sgd")
    Xs, ys = np.array([[123.0, 0.0]]), np.array([17.64052346])
    seen = []
    for _ in range(5):
        seen.append(est._params.copy() if hasattr(est, "_params") else None)
        est.partial_fit(Xs, ys)
    assert np.all(np.isfinite(est.loss_curve_))
    with pytest.raises(ValueError, match="output is not finite"):
        est.predict(Xs)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est.partial_fit(Xs, ys)
    assert not np.isfinite(est.loss_curve_[-1])
    np.testing.assert_array_equal(est._params, seen[4])  # the 5th call's start: finite
    assert np.isfinite(est.predict(Xs)).all()


def test_validation_outputs_beyond_the_float_range_score_minus_infinity():
    """Weights still finite, validation predictions overflowing: the epoch scores -inf
    and early stopping goes back to its best epoch, which predicts finite values."""
    rng = np.random.RandomState(0)
    X2 = rng.randn(50, 2)
    y2 = 5 * X2[:, 0]
    est = MLPScratchRegressor(solver="sgd", learning_rate_init=30.0, early_stopping=True,
                              hidden_layer_sizes=(5,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X2, y2)
    assert -np.inf in est.validation_scores_
    assert np.isinf(est.validation_loss_curve_[est.validation_scores_.index(-np.inf)])
    assert est.best_validation_score_ == max(est.validation_scores_) > -np.inf
    assert np.isfinite(est.predict(X2)).all()


def test_best_loss_counts_the_finite_epoch_after_which_training_diverged():
    """The clipped log-loss of the first epoch is finite, its weights are not: the
    warning says that the weights kept are the initial ones."""
    est = MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 1: .* The initial "
                      "weights, the last with a finite loss, were kept: the model is "
                      "untrained."):
        est.fit(X * 1e305, Y_CLS)
    assert len(est.loss_curve_) == 1 and np.isfinite(est.loss_curve_[0])
    assert est.best_loss_ == est.loss_ == est.loss_curve_[0]


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_divergence_in_epoch_2_back_to_the_initial_weights_says_untrained(n_jobs):
    """Epoch 1's loss is finite (at the initial weights), epoch 2's is not: the latest
    weights known finite are epoch 1's start, the initial weights, and the warning says
    the model is untrained although it diverged in its second epoch."""
    rng = np.random.RandomState(0)
    Xb = rng.randn(300, 10) * 1e3
    yb = Xb @ rng.randn(10) * 1e6
    params = dict(hidden_layer_sizes=(50,), solver="sgd", learning_rate_init=1.0,
                  max_iter=50, random_state=0, n_jobs=n_jobs)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 2: .* The initial "
                      "weights, the last with a finite loss, were kept: the model is "
                      "untrained."):
        est = MLPScratchRegressor(**params).fit(Xb, yb)
    assert np.isfinite(est.loss_curve_[0]) and not np.isfinite(est.loss_curve_[1])
    # steps far below the weights' last place: the initial weights, drawn the same
    still = MLPScratchRegressor(**dict(params, learning_rate_init=1e-300, max_iter=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        still.fit(Xb, yb)
    for kept, initial in zip(est.coefs_, still.coefs_):
        np.testing.assert_array_equal(kept, initial)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_divergence_with_early_stopping_names_the_best_validation_epoch(n_jobs):
    """Early stopping goes back to its best validation epoch, not to the latest weights
    of finite loss: epoch 1 scored, epoch 2 diverged, the model keeps epoch 1's
    weights and the warning says so (it used to call them the initial weights)."""
    rng = np.random.RandomState(0)
    Xb = rng.randn(300, 10) * 1e3
    yb = Xb @ rng.randn(10) * 1e6
    params = dict(hidden_layer_sizes=(50,), solver="sgd", learning_rate_init=0.01,
                  random_state=0, early_stopping=True, n_jobs=n_jobs)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 2: .* The weights "
                      "of the best validation epoch were kept.$"):
        est = MLPScratchRegressor(max_iter=50, **params).fit(Xb, yb)
    assert np.isfinite(est.validation_scores_[0]) and est.validation_scores_[1] == -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = MLPScratchRegressor(max_iter=1, **params).fit(Xb, yb)
    for kept, first in zip(est.coefs_, one.coefs_):
        np.testing.assert_array_equal(kept, first)


def test_divergence_with_early_stopping_and_no_scored_epoch_says_untrained():
    est = MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0,
                               early_stopping=True)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch 1: .* The weights "
                      "this fit started from were kept: the model is untrained.$"):
        est.fit(X * 1e305, Y_CLS)
    assert est.validation_scores_ == [-np.inf]


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e307), (np.float32, 1e37)])
@pytest.mark.parametrize("output", ["identity", "leaky_relu"])
def test_targets_whose_mean_overflows_raise_without_numpy_warnings(output, dtype, scale):
    # the output bias starts at the inverse link of the targets' mean, which overflows
    # here (the sum in the mean, or the inverse of a leaky ReLU of slope 0.01)
    y = (-(1.0 + 0.1 * RNG.rand(60)) * scale).astype(dtype)
    est = MLPScratchRegressor(hidden_layer_sizes=(4,), output_activation=output,
                              max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=NONFINITE_MSG):
        est.fit(X.astype(dtype), y)
