"""What a model keeps across calls (SPEC 4.1, 6): warm starts and partial_fit continue
from the fitted weights with the parameters as they are now, a fit that fails leaves the
model it would have replaced, and rows of weight 0 never stop a fit."""

import pickle
import re
import signal
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from sknn_scratch import DeadOutputWarning, MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch import _base
from sknn_scratch.activations import Activation
from sknn_scratch.initializers import RandomNormal

RNG = np.random.RandomState(0)
X = RNG.randn(40, 3)
Y_CLS = (X[:, 0] > 0).astype(int)
Y_REG = X @ np.array([1.0, -2.0, 0.5])
SMALL = dict(hidden_layer_sizes=(5,), max_iter=4, random_state=0)


def _quiet(call, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return call(*args, **kw)


def _snapshot(est):
    """Everything a fit has set on a model, as bytes (its parameters left out)."""
    params = est.get_params(deep=False)
    state = {k: v for k, v in est.__getstate__().items()
             if not k.startswith("_") and k not in params}
    state["_optimizer"] = est.__dict__.get("_optimizer")
    return pickle.dumps(state)


# ------------------------------------------------------------ warm starts honour params
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_continued_fit_trains_with_the_activation_it_is_given(method):
    est = _quiet(MLPScratchRegressor(warm_start=True, **SMALL).fit, X, Y_REG)
    coefs = [c.copy() for c in est.coefs_]
    est.set_params(activation="tanh")
    _quiet(getattr(est, method), X, Y_REG)
    assert [a.name for a in est.activations_] == ["tanh"]
    assert est._network.activations[0].name == "tanh"
    hidden = np.tanh(X @ est.coefs_[0] + est.intercepts_[0])
    out = hidden @ est.coefs_[1] + est.intercepts_[1]
    assert est.out_activation_ == "identity"  # Y_REG has negative values
    np.testing.assert_allclose(est.predict(X), out.ravel(), rtol=1e-12)
    assert not np.array_equal(coefs[0], est.coefs_[0])  # trained on from the old ones


def test_predictions_keep_the_fitted_activation_until_the_next_fit():
    est = _quiet(MLPScratchClassifier(**SMALL).fit, X, Y_CLS)
    proba = est.predict_proba(X)
    est.set_params(activation="tanh")  # scikit-learn's would predict with tanh at once
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    assert [a.name for a in est.activations_] == ["relu"]
    _quiet(est.partial_fit, X, Y_CLS)
    assert [a.name for a in est.activations_] == ["tanh"]


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_continued_fit_trains_with_the_loss_it_is_given(method):
    y = np.abs(Y_REG)
    est = _quiet(MLPScratchRegressor(warm_start=True, **SMALL).fit, X, y)
    assert est.out_activation_ == "relu"
    est.set_params(loss="poisson")
    _quiet(getattr(est, method), X, y)
    assert (est.out_activation_, est._network.loss.name) == ("exp", "poisson")
    est.set_params(loss="squared_error")
    _quiet(getattr(est, method), X, y)
    assert (est.out_activation_, est._network.loss.name) == ("relu", "squared_error")


@pytest.mark.parametrize("y, loss", [(Y_CLS, "binary_log_loss"),
                                     (np.arange(40) % 3, "log_loss")])
def test_a_continued_classifier_keeps_its_output_and_loss(y, loss):
    est = _quiet(MLPScratchClassifier(warm_start=True, **SMALL).fit, X, y)
    network = est._network
    assert network.loss.name == loss
    _quiet(est.partial_fit, X, y)
    assert est._network is network  # nothing to rebuild


def test_a_continued_fit_keeps_the_output_activation_auto_resolved_at_first():
    y = np.abs(Y_REG)  # a ReLU output: later negative targets do not change it silently
    est = _quiet(MLPScratchRegressor(warm_start=True, **SMALL).fit, X, y)
    before = _snapshot(est)
    with pytest.raises(ValueError, match="negative values"):
        est.fit(X, -y)
    assert _snapshot(est) == before
    est.set_params(output_activation="identity")
    _quiet(est.fit, X, -y)
    assert est.out_activation_ == "identity"


@pytest.mark.parametrize("change, match", [
    (dict(activation="swoosh"), "Invalid activation='swoosh'"),
    (dict(hidden_layer_sizes=(6,)), re.escape("hidden_layer_sizes=(6,) differs from "
                                              "the fitted network's hidden layers (5,)")),
    (dict(hidden_layer_sizes=(5, 5)), "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes must be positive"),
    (dict(activation="prelu"), "adds or removes learned slopes"),
    (dict(output_activation="relu"), "output_activation='relu' does not suit"),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_continued_fit_refuses_what_the_fitted_weights_cannot_take(change, match,
                                                                       method):
    est = _quiet(MLPScratchClassifier(warm_start=True, **SMALL).fit, X, Y_CLS)
    before = _snapshot(est)
    est.set_params(**change)
    with pytest.raises(ValueError, match=match):
        getattr(est, method)(X, Y_CLS)
    assert _snapshot(est) == before


def test_a_custom_output_activation_is_checked_like_a_hidden_one():
    class WrongTanh(Activation):
        def forward(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return np.ones_like(z)

    with pytest.raises(ValueError,
                       match=r"Invalid output_activation=WrongTanh\(\): its derivative"):
        MLPScratchRegressor(output_activation=WrongTanh(), **SMALL).fit(X, Y_REG)


@pytest.mark.parametrize("first", [False, True], ids=["turned on", "turned off"])
def test_early_stopping_turned_on_or_off_between_warm_starts(first):
    est = _quiet(MLPScratchRegressor(warm_start=True, early_stopping=first,
                                     **SMALL).fit, X, Y_REG)
    n_epochs = len(est.loss_curve_)
    est.set_params(early_stopping=not first)
    _quiet(est.fit, X, Y_REG)
    assert len(est.loss_curve_) == n_epochs + est.n_iter_
    if first:  # now off: scikit-learn's records without early stopping
        assert est.validation_scores_ is None and est.best_validation_score_ is None
        assert est.best_loss_ == min(est.loss_curve_)
    else:
        assert len(est.validation_scores_) == est.n_iter_
        assert est.best_validation_score_ == max(est.validation_scores_)
        assert est.best_loss_ is None


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_loaded_non_finite_weights_are_refused_before_training(method):
    est = _quiet(MLPScratchRegressor(warm_start=True, **SMALL).fit, X, Y_REG)
    est.coefs_ = [np.full_like(est.coefs_[0], np.nan), est.coefs_[1]]
    with pytest.raises(ValueError, match="non-finite values"):
        getattr(est, method)(X, Y_REG)


@pytest.mark.parametrize("Est, y", [(MLPScratchClassifier, Y_CLS),
                                     (MLPScratchRegressor, Y_REG)])
@pytest.mark.parametrize("solver, method", [("adam", "partial_fit"), ("sgd", "fit"),
                                            ("lbfgs", "fit")])
@pytest.mark.parametrize("fitted, given", [(np.float32, np.float64),
                                           (np.float64, np.float32)])
def test_a_continued_fit_takes_x_of_the_other_float_dtype(Est, y, solver, method, fitted,
                                                          given):
    """Training goes on in the fitted weights' dtype, as if X had been given in it.
    float64 X for float32 weights used to fail in the first product ("output array is
    not acceptable"); float32 X for float64 weights rounded the regressor's targets to
    float32."""
    results, X_given = [], X.astype(given)
    for X_next in (X_given, X_given.astype(fitted)):
        est = _quiet(Est(warm_start=True, solver=solver, **SMALL).fit, X.astype(fitted),
                     y)
        _quiet(getattr(est, method), X_next, y)
        results.append(est)
    ours, plain = results
    assert [c.dtype for c in ours.coefs_] == [np.dtype(fitted)] * 2
    assert ours.loss_curve_ == plain.loss_curve_
    for a, b in zip(ours.coefs_ + ours.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_float64_x_beyond_float32_is_refused_by_float32_weights():
    est = _quiet(MLPScratchRegressor(**SMALL).fit, X.astype(np.float32), Y_REG)
    before = _snapshot(est)
    with pytest.raises(ValueError, match="infinity or a value too large for dtype"):
        est.partial_fit(X * 1e39, Y_REG)
    assert _snapshot(est) == before


# ------------------------------------------------------- a failed fit replaces nothing
def test_a_refit_that_never_has_a_finite_epoch_leaves_the_earlier_model():
    est = _quiet(MLPScratchRegressor(**SMALL).fit, X, Y_REG)
    before, pred = _snapshot(est), est.predict(X)
    with pytest.raises(ValueError, match="Solver produced non-finite"):
        est.fit(X * 1e305, Y_REG)
    assert _snapshot(est) == before
    np.testing.assert_array_equal(est.predict(X), pred)


def test_a_first_fit_that_fails_leaves_the_estimator_unfitted():
    est = MLPScratchRegressor(**SMALL)
    with pytest.raises(ValueError, match="Solver produced non-finite"):
        est.fit(X * 1e305, Y_REG)
    assert not hasattr(est, "coefs_") and not hasattr(est, "n_features_in_")
    _quiet(est.fit, X, Y_REG)  # and fits as new


# ---------------------------------------------------------------- rows of weight 0
@pytest.mark.parametrize("solver", [dict(solver="adam"),
                                    dict(solver="sgd", learning_rate="invscaling")],
                         ids=["adam", "sgd invscaling"])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_batches_whose_weights_sum_to_zero_are_skipped(n_jobs, solver):
    """They have no objective (0 / 0): no step, no loss term and no rows seen (t_, the
    clock of invscaling), so the fit is that of the weighted rows alone."""
    sw = np.r_[np.ones(10), np.zeros(30)]
    params = dict(SMALL, batch_size=5, shuffle=False, n_jobs=n_jobs, **solver)
    est = _quiet(MLPScratchRegressor(**params).fit, X, Y_REG, sample_weight=sw)
    alone = _quiet(MLPScratchRegressor(**params).fit, X[:10], Y_REG[:10])
    assert est.t_ == alone.t_ == 10 * est.n_iter_
    np.testing.assert_allclose(est.loss_curve_, alone.loss_curve_, rtol=1e-12)
    for a, b in zip(est.coefs_ + est.intercepts_, alone.coefs_ + alone.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_jobs", [2, 3])
def test_shuffled_batches_of_weight_zero_are_skipped_alike_by_a_team(n_jobs):
    """Most batches skipped, the epoch's last ones too: no process may still read the
    epoch's order while process 0 shuffles the next one (it once did, and the processes
    went out of step)."""
    rng = np.random.RandomState(0)
    X_big = rng.randn(400, 4)
    y_big = X_big @ np.array([1.0, 2.0, 0.0, 1.0])
    sw = np.zeros(400)
    sw[[5, 17, 50, 90, 119]] = 1.0
    params = dict(hidden_layer_sizes=(6,), solver="sgd", batch_size=2, max_iter=10,
                  random_state=0)
    one, team = (_quiet(MLPScratchRegressor(n_jobs=jobs, **params).fit, X_big, y_big,
                        sample_weight=sw) for jobs in (None, n_jobs))
    assert np.isfinite(one.loss_curve_).all()
    np.testing.assert_allclose(team.loss_curve_, one.loss_curve_, rtol=1e-12)


def test_partial_fit_skips_a_batch_of_weight_zero():
    est = MLPScratchRegressor(batch_size=5, shuffle=False, random_state=0)
    est.partial_fit(X[:10], Y_REG[:10])
    est.partial_fit(X[10:20], Y_REG[10:20], sample_weight=np.r_[np.ones(5), np.zeros(5)])
    assert est.n_iter_ == 1 and np.isfinite(est.loss_curve_).all()


@pytest.mark.parametrize("zero", ["training", "validation"])
def test_an_early_stopping_split_of_weight_zero_is_refused_before_training(zero):
    est = _quiet(MLPScratchRegressor(warm_start=True, **SMALL).fit, X, Y_REG)
    before = _snapshot(est)
    # the split holds 4 of the 40 rows: weight only the rows of the other part
    probe = MLPScratchRegressor(early_stopping=True, **SMALL)
    probe._random_state = np.random.RandomState(0)
    _, _, _, (X_val, *_) = probe._validation_split(X, Y_REG[:, None], None, Y_REG)
    in_val = (X[:, None, :] == X_val[None]).all(axis=2).any(axis=1)
    sw = (~in_val if zero == "validation" else in_val).astype(float)
    est.set_params(early_stopping=True)
    with pytest.raises(ValueError, match=f"of the {zero} split sum to zero"):
        est.fit(X, Y_REG, sample_weight=sw)
    assert _snapshot(est) == before


# --------------------------------------------------------------- scikit-learn's habits
def _fail_at_call(monkeypatch, owner, name, call, exc):
    """Make the ``call``-th call from now of the method ``owner.name`` raise ``exc``."""
    method, calls = getattr(owner, name), []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == call:
            raise exc
        return method(self, *args)

    monkeypatch.setattr(owner, name, failing)


def _fail_in_epoch(monkeypatch, epoch, exc=RuntimeError("boom")):
    """Make the ``epoch``-th epoch from now raise ``exc``."""
    _fail_at_call(monkeypatch, _base.BaseMLPScratch, "_run_epoch", epoch, exc)


def test_an_interrupted_fit_keeps_what_it_trained(monkeypatch):
    _fail_in_epoch(monkeypatch, 3, KeyboardInterrupt())
    est = MLPScratchClassifier(**dict(SMALL, max_iter=10))
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, Y_CLS)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert np.isfinite(est.predict_proba(X)).all()


def test_verbose_early_stopping_prints_each_validation_score(capsys):
    est = _quiet(MLPScratchClassifier(early_stopping=True, verbose=True,
                                      **dict(SMALL, max_iter=2)).fit, X, Y_CLS)
    lines = capsys.readouterr().out.splitlines()
    scores = [line for line in lines if line.startswith("Validation score: ")]
    assert scores == [f"Validation score: {s:f}" for s in est.validation_scores_]


def test_a_continued_fit_that_fails_before_updating_keeps_the_old_network(monkeypatch):
    est = _quiet(MLPScratchRegressor(warm_start=True, **SMALL).fit, X, Y_REG)
    before, pred = _snapshot(est), est.predict(X)
    _fail_in_epoch(monkeypatch, 1)
    with pytest.raises(RuntimeError, match="boom"):
        est.set_params(activation="tanh").fit(X, Y_REG)
    assert _snapshot(est) == before and est.activations_[0].name == "relu"
    np.testing.assert_array_equal(est.predict(X), pred)
    assert not {"_best_params", "_last_finite", "_epoch_start"} & set(vars(est))


def _trained_twice(**params):
    """A model fitted, then continued by partial_fit: its optimizer has moments."""
    est = MLPScratchRegressor(warm_start=True, **dict(SMALL, batch_size=8), **params)
    _quiet(est.fit, X, Y_REG)
    _quiet(est.partial_fit, X, Y_REG)
    return est


@pytest.mark.parametrize("n_jobs", [None, 2])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_continued_fit_that_fails_while_training_leaves_the_model_as_it_was(
        method, solver, n_jobs, monkeypatch):
    """Weights, optimizer, counters and records as before the call, however far it
    trained: the next call trains as if the failed one had never come."""
    est = _trained_twice(solver=solver, n_jobs=n_jobs)
    twin = _trained_twice(solver=solver, n_jobs=n_jobs)
    before, pred = _snapshot(est), est.predict(X)
    # the third of an epoch's 5 mini-batches (of the second epoch for fit): steps taken
    name = "loss_grad" if n_jobs is None else "data_grad"
    _fail_at_call(monkeypatch, _base.Network, name, 8 if method == "fit" else 3,
                  RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        getattr(est.set_params(activation="tanh"), method)(X, Y_REG)
    monkeypatch.undo()
    assert _snapshot(est) == before and est.activations_[0].name == "relu"
    np.testing.assert_array_equal(est.predict(X), pred)
    assert not {"_best_params", "_last_finite", "_epoch_start"} & set(vars(est))
    est.set_params(activation="relu")
    for model in (est, twin):
        _quiet(model.partial_fit, X, Y_REG)
    for a, b in zip(est.coefs_ + est.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert est.loss_curve_ == twin.loss_curve_ and est.t_ == twin.t_


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_convergence_warning_turned_into_an_error_leaves_the_model_as_it_was(solver):
    """Under -W error a fit that ends unconverged fails, and changes nothing: neither
    the last epoch's weights instead of the best validation epoch's, nor the lbfgs
    weights without the counters that go with them."""
    est = _quiet(MLPScratchClassifier(warm_start=True, solver=solver, early_stopping=True,
                                      **SMALL).fit, X, Y_CLS)
    before, proba = _snapshot(est), est.predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="(?i)maximum iterations|iteration"):
            est.fit(X, Y_CLS)
    assert _snapshot(est) == before
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    fresh = MLPScratchClassifier(solver=solver, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            fresh.fit(X, Y_CLS)
    assert not hasattr(fresh, "coefs_")


def test_a_dead_output_warning_turned_into_an_error_leaves_the_model_as_it_was():
    """The check of a fitted ReLU output runs after training: under -W error its
    warning fails the call, which then changes nothing, as any failure."""
    rng = np.random.RandomState(0)
    X_dead = rng.randn(200, 3)
    y_dead = np.abs(X_dead[:, 0]) + 0.1
    # huge output weights and a tiny rate: the ReLU output is 0 on most rows
    dead = dict(hidden_layer_sizes=(20,), init=["he_uniform", RandomNormal(std=50.0)],
                learning_rate_init=1e-9, max_iter=2, random_state=0)
    with pytest.warns(DeadOutputWarning):
        est = _quiet(MLPScratchRegressor(warm_start=True, **dead).fit, X_dead, y_dead)
    fitted_identity = _quiet(MLPScratchRegressor(output_activation="identity", **dead).fit,
                             X_dead, y_dead)
    for model, params in ((est, {"learning_rate_init": 1e-3}),  # continued in place
                          (fitted_identity, {"output_activation": "auto"})):  # a refit
        model.set_params(**params)
        before, pred = _snapshot(model), model.predict(X_dead)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("error", DeadOutputWarning)
            with pytest.raises(DeadOutputWarning):
                model.fit(X_dead, y_dead)
        assert _snapshot(model) == before
        np.testing.assert_array_equal(model.predict(X_dead), pred)
    fresh = MLPScratchRegressor(**dead)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", DeadOutputWarning)
        with pytest.raises(DeadOutputWarning):
            fresh.fit(X_dead, y_dead)
    assert not hasattr(fresh, "coefs_")


def test_an_interrupt_with_early_stopping_keeps_its_records_in_step(monkeypatch):
    _fail_in_epoch(monkeypatch, 3, KeyboardInterrupt())
    est = MLPScratchClassifier(early_stopping=True, **dict(SMALL, max_iter=10))
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, Y_CLS)
    assert est.n_iter_ == len(est.loss_curve_) == len(est.validation_scores_) == 2


def test_an_interrupted_team_leaves_no_optimizer_ahead_of_the_weights(monkeypatch):
    est = MLPScratchClassifier(n_jobs=2, **dict(SMALL, batch_size=4))
    est.partial_fit(X, Y_CLS, classes=[0, 1])
    _fail_in_epoch(monkeypatch, 1, KeyboardInterrupt())
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.partial_fit(X, Y_CLS)
    assert est._optimizer is None  # a new one at the next call
    monkeypatch.undo()
    est.partial_fit(X, Y_CLS)
    assert np.isfinite(est.predict_proba(X)).all()


def test_an_interrupted_lbfgs_refit_leaves_the_earlier_model(monkeypatch):
    est = _quiet(MLPScratchRegressor(solver="lbfgs", **SMALL).fit, X, Y_REG)
    before, pred = _snapshot(est), est.predict(X)
    _fail_at_call(monkeypatch, _base.Network, "loss_grad", 3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, Y_REG)
    assert _snapshot(est) == before
    np.testing.assert_array_equal(est.predict(X), pred)


@pytest.mark.parametrize("failure", ["interrupt", "no finite loss"])
def test_a_continued_lbfgs_fit_that_fails_leaves_the_model_as_it_was(failure,
                                                                      monkeypatch):
    """lbfgs writes each point it tries into the weights: a search that fails or is
    interrupted puts them back, with the loss curve and the network."""
    est = _quiet(MLPScratchRegressor(solver="lbfgs", warm_start=True, **SMALL).fit,
                 X, Y_REG)
    before, pred = _snapshot(est), est.predict(X)
    est.set_params(activation="tanh" if failure == "interrupt" else "identity")
    if failure == "interrupt":
        _fail_at_call(monkeypatch, _base.Network, "loss_grad", 5, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            est.fit(X, Y_REG)
    else:
        with pytest.raises(ValueError, match="Solver produced non-finite"):
            est.fit(X * 1e305, Y_REG)
    assert _snapshot(est) == before and est.activations_[0].name == "relu"
    np.testing.assert_array_equal(est.predict(X), pred)


def test_a_failure_inside_a_step_leaves_the_model_and_its_optimizer_as_they_were(
        monkeypatch):
    """The step changes the moments, then the weights: one that fails half-way leaves
    the moments out of step with the weights, and the call puts both back."""
    est = MLPScratchRegressor(**SMALL).partial_fit(X, Y_REG)
    twin = MLPScratchRegressor(**SMALL).partial_fit(X, Y_REG)
    before = _snapshot(est)
    update = _base.Adam.update

    def half_way(self, params, grad, m, v, *scalars):
        m *= self.beta_1  # a first pass, then the failure
        raise FloatingPointError("underflow")

    monkeypatch.setattr(_base.Adam, "update", half_way)
    with pytest.raises(FloatingPointError):
        est.partial_fit(X, Y_REG)
    assert _snapshot(est) == before
    monkeypatch.setattr(_base.Adam, "update", update)
    for model in (est, twin):
        model.partial_fit(X, Y_REG)
    np.testing.assert_array_equal(est.predict(X), twin.predict(X))


def test_a_divergence_warning_turned_error_leaves_the_lbfgs_model_as_it_was(
        monkeypatch):
    """The search wrote its last finite iterate into the weights before it warned: the
    failed call takes it back, with the loss curve it extended."""
    est = _quiet(MLPScratchRegressor(solver="lbfgs", warm_start=True, **SMALL).fit,
                 X, Y_REG)
    before, pred = _snapshot(est), est.predict(X)
    loss_grad, calls = _base.Network.loss_grad, []

    def diverging(self, params, *args):
        calls.append(1)
        value = loss_grad(self, params, *args)
        return np.inf if len(calls) >= 4 else value

    monkeypatch.setattr(_base.Network, "loss_grad", diverging)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="lbfgs diverged"):
            est.set_params(max_iter=10).fit(X, Y_REG)
    monkeypatch.undo()
    assert _snapshot(est) == before
    np.testing.assert_array_equal(est.predict(X), pred)


def _stop_epoch(values, best, tol, patience, better):
    """scikit-learn's stopping rule replayed on the values of a fit's epochs: the
    1-based epoch at which it stops (None: it never does), from the record ``best``
    and a count of 0. ``better(value, best, tol)``: an improvement."""
    count = 0
    for epoch, value in enumerate(values, 1):
        count = 0 if better(value, best, tol) else count + 1
        best = value if better(value, best, 0.0) else best
        if count > patience:
            return epoch
    return None


@pytest.mark.parametrize("first", [True, False], ids=["turned off", "turned on"])
def test_a_warm_start_that_switches_early_stopping_starts_its_count_afresh(first):
    """Turned off, the rule goes on from the best loss so far; turned on, from no
    validation record; in both, from a count of 0, not the count that stopped the fit
    before (which stopped the next fit after its first epoch)."""
    X2, y2 = make_classification(n_samples=200, n_features=5, random_state=1)
    params = dict(hidden_layer_sizes=(6,), n_iter_no_change=3, max_iter=300,
                  random_state=0, warm_start=True)
    est = _quiet(MLPScratchClassifier(early_stopping=first, tol=1e-3, **params).fit,
                 X2, y2)
    assert est.n_iter_ < 300 and est._no_improvement_count > 3  # stopped by its rule
    before = list(est.loss_curve_)
    # steps too small to improve by tol, even on the first epoch (whose loss is at the
    # weights the last fit kept): the count alone decides when it stops
    est.set_params(early_stopping=not first, learning_rate_init=1e-6, tol=1e-2)
    _quiet(est.fit, X2, y2)
    if first:  # now on the training loss, from the best of every epoch so far
        values = est.loss_curve_[len(before):]
        expected = _stop_epoch(values, min(before), 1e-2, 3,
                               lambda v, best, tol: v <= best - tol)
        assert est.best_loss_ == min(est.loss_curve_)
    else:  # now on the validation score, from none
        values = est.validation_scores_
        expected = _stop_epoch(values, -np.inf, 1e-2, 3,
                               lambda v, best, tol: v >= best + tol)
    assert est.n_iter_ == expected == len(values) == (4 if first else 5)


def test_lbfgs_best_loss_is_the_least_of_the_curve_across_warm_starts():
    """A warm start that raises alpha raises the loss: best_loss_ stays the least value
    of loss_curve_, the earlier fit's included, not the new fit's last."""
    X2, y2 = make_classification(n_samples=200, n_features=5, random_state=1)
    est = _quiet(MLPScratchClassifier(hidden_layer_sizes=(6,), solver="lbfgs",
                                      alpha=0.0, max_iter=100, random_state=0).fit,
                 X2, y2)
    est.set_params(warm_start=True, alpha=50.0)
    _quiet(est.fit, X2, y2)
    assert est.best_loss_ == min(est.loss_curve_) < est.loss_


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_failed_call_that_turned_early_stopping_off_keeps_the_validation_records(
        method, monkeypatch):
    """The call drops the other rule's records before it trains: the failure puts them
    back whole, not cut to the length the call started its own with."""
    est = _quiet(MLPScratchRegressor(warm_start=True, early_stopping=True,
                                     **dict(SMALL, batch_size=8)).fit, X, Y_REG)
    before = _snapshot(est)
    assert len(est.validation_scores_) == SMALL["max_iter"]
    _fail_at_call(monkeypatch, _base.Network, "loss_grad", 3, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        getattr(est.set_params(early_stopping=False), method)(X, Y_REG)
    assert _snapshot(est) == before


def test_a_failed_call_puts_back_the_random_state_it_drew_from(monkeypatch):
    """A RandomState given as random_state shuffles the rows: after a failed call the
    next one shuffles them as if the failed one had never come."""
    est, twin = (MLPScratchRegressor(**dict(SMALL, batch_size=8,
                                            random_state=np.random.RandomState(0)))
                 for _ in range(2))
    for model in (est, twin):
        model.partial_fit(X, Y_REG)
    _fail_at_call(monkeypatch, _base.Network, "loss_grad", 1, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        est.partial_fit(X, Y_REG)
    monkeypatch.undo()
    for model in (est, twin):
        model.partial_fit(X, Y_REG)
    np.testing.assert_array_equal(est.predict(X), twin.predict(X))
    assert est.loss_curve_ == twin.loss_curve_


def test_a_first_fit_refused_after_its_draws_puts_back_the_random_state():
    """The weights are drawn and the rows split before the split is found to weigh
    nothing: the RandomState given is as it was before the call."""
    rng = np.random.RandomState(0)
    est = MLPScratchRegressor(early_stopping=True, **dict(SMALL, random_state=rng))
    state = pickle.dumps(rng.get_state())
    with pytest.raises(ValueError, match="sum to zero"):
        est.fit(X, Y_REG, sample_weight=np.zeros(len(X)) + (np.arange(len(X)) == 0))
    assert pickle.dumps(rng.get_state()) == state and not hasattr(est, "coefs_")


# ------------------------------------------------- Ctrl-C during an optimizer step
def _fit_interrupted(monkeypatch, where, solver, at=6):
    """A classifier fitted on batches of 8 (5 steps an epoch) with a Ctrl-C at its
    ``at``-th optimizer step: "after" the step, "inside" it (between the passes that
    change the weights) or "before" it (in the batch's gradient)."""
    from sknn_scratch import network, solvers

    calls = []

    def interrupt_at(fn, count=lambda *args: True):
        def wrapped(*args, **kwargs):
            if count(*args):
                calls.append(1)
                if len(calls) == at and where != "after":
                    signal.raise_signal(signal.SIGINT)
            out = fn(*args, **kwargs)
            if where == "after" and count(*args) and len(calls) == at:
                signal.raise_signal(signal.SIGINT)
            return out
        return wrapped

    if where == "inside" and solver == "sgd":
        # Nesterov's step adds to the weights, takes np.multiply, adds again
        class Numpy:
            def __getattr__(self, name):
                return getattr(np, name)

            multiply = staticmethod(interrupt_at(np.multiply))

        monkeypatch.setattr(solvers, "np", Numpy())
    elif where == "inside":  # adam, split over two threads: this thread's half
        main = threading.main_thread()
        monkeypatch.setattr(solvers.Adam, "update", interrupt_at(
            solvers.Adam.update, lambda *args: threading.current_thread() is main))
    elif where == "before":
        monkeypatch.setattr(network.Network, "loss_grad",
                            interrupt_at(network.Network.loss_grad))
    else:
        monkeypatch.setattr(solvers._Stochastic, "step",
                            interrupt_at(solvers._Stochastic.step))
    if solver == "adam":  # every step split in two threads, as a large one may be
        monkeypatch.setattr(solvers, "two_threads", lambda work, min_size: True)
        monkeypatch.setattr(solvers, "timed_split",
                            lambda kind, work, min_size, run: run(True))
    est = MLPScratchClassifier(solver=solver, batch_size=8,
                               **dict(SMALL, max_iter=3))
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, Y_CLS)
    monkeypatch.undo()
    assert len(calls) >= at
    return est


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_a_ctrl_c_during_a_step_keeps_the_weights_of_the_whole_step(monkeypatch,
                                                                    solver):
    """Nesterov's SGD changes the weights in two passes, and a step split over two
    threads in one per thread: a Ctrl-C between them left weights of no update (half of
    them stepped). It is raised once the step is done."""
    inside = _fit_interrupted(monkeypatch, "inside", solver)
    after = _fit_interrupted(monkeypatch, "after", solver)
    for a, b in zip(inside.coefs_ + inside.intercepts_, after.coefs_ + after.intercepts_):
        np.testing.assert_array_equal(a, b)
    # the step was whole: the optimizer goes on from it
    assert inside._optimizer is not None and after._optimizer is not None
    for a, b in zip(inside._optimizer.state(), after._optimizer.state()):
        np.testing.assert_array_equal(a, b)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_outside_a_step_is_raised_where_it_comes(monkeypatch):
    """In the gradient of the 6th batch: the weights of 5 steps, as after the 5th."""
    before = _fit_interrupted(monkeypatch, "before", "sgd")
    after = _fit_interrupted(monkeypatch, "after", "sgd", at=5)
    for a, b in zip(before.coefs_, after.coefs_):
        np.testing.assert_array_equal(a, b)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_fit_off_the_main_thread_leaves_the_ctrl_c_handler_alone(monkeypatch):
    seen = []
    monkeypatch.setattr(signal, "signal", lambda *args: seen.append(args))
    thread = threading.Thread(target=lambda: _quiet(
        MLPScratchClassifier(**SMALL).fit, X, Y_CLS))
    thread.start()
    thread.join()
    assert seen == []


def _step_raising(monkeypatch, at, signals=1, then=None):
    """Make the ``at``-th optimizer step from now send ``signals`` Ctrl-Cs while it
    runs, then raise ``then`` (if given) before it returns."""
    from sknn_scratch import solvers

    calls, step = [], solvers._Stochastic.step

    def stepping(self, params, grad):
        calls.append(1)
        step(self, params, grad)
        if len(calls) == at:
            for _ in range(signals):
                signal.raise_signal(signal.SIGINT)
            if then is not None:
                raise then

    monkeypatch.setattr(solvers._Stochastic, "step", stepping)


def test_a_users_handler_gets_every_ctrl_c_of_a_step_and_keeps_its_changes(monkeypatch):
    """A handler that counts presses and, at the first, installs Python's own (press
    twice to stop at once): called once per Ctrl-C, and what it installed stays."""
    presses = []

    def graceful(signum, frame):
        presses.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, graceful)
    _step_raising(monkeypatch, at=3, signals=2)
    est = MLPScratchClassifier(solver="sgd", batch_size=8, **SMALL)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, Y_CLS)  # the second press reached Python's own handler
    assert presses == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_cs_held_in_a_step_that_fails_are_delivered(monkeypatch):
    presses = []
    signal.signal(signal.SIGINT, lambda signum, frame: presses.append(signum))
    _step_raising(monkeypatch, at=3, signals=2, then=RuntimeError("boom"))
    est = MLPScratchClassifier(solver="sgd", batch_size=8, **SMALL)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(X, Y_CLS)
    assert presses == [signal.SIGINT, signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is not None  # a lambda: put back, not _hold
    assert "WholeSteps" not in repr(signal.getsignal(signal.SIGINT))
    # with Python's own handler, the held Ctrl-C interrupts the fit
    monkeypatch.undo()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _step_raising(monkeypatch, at=3, then=RuntimeError("boom"))
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        MLPScratchClassifier(solver="sgd", batch_size=8, **SMALL).fit(X, Y_CLS)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_ctrl_c_stays_ignored(monkeypatch):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _step_raising(monkeypatch, at=3)
    est = _quiet(MLPScratchClassifier(solver="sgd", batch_size=8, **SMALL).fit, X,
                 Y_CLS)
    assert est.n_iter_ == SMALL["max_iter"]
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
