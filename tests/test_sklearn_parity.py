"""Parity with scikit-learn's MLP on the features both have.

The same weights give the same predictions, and from the same weights one full-batch
SGD step gives the same new weights and the same loss (SPEC 4.2: for single-output
problems J is scikit-learn's objective). Weights are copied from a fitted scikit-learn
model into a briefly fitted one of ours (assigned weights are honoured, SPEC 4.1).
"""

import inspect
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.datasets import (make_classification, make_multilabel_classification,
                              make_regression)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor

ACTIVATIONS = ["relu", "tanh", "logistic", "identity"]
PROBLEMS = ["binary", "multiclass", "multilabel", "regression", "multioutput"]
TOL = dict(rtol=1e-10, atol=1e-12)
ALPHA = 0.01


def _problem(kind, seed=0, n=60):
    if kind in ("binary", "multiclass"):
        X, y = make_classification(n_samples=n, n_features=5, n_informative=3,
                                   n_classes=2 if kind == "binary" else 3,
                                   random_state=seed)
    elif kind == "multilabel":
        X, y = make_multilabel_classification(n_samples=n, n_features=5, n_classes=3,
                                              random_state=seed)
    else:
        X, y = make_regression(n_samples=n, n_features=5, noise=1.0, random_state=seed,
                               n_targets=1 if kind == "regression" else 3)
        y = StandardScaler().fit_transform(y.reshape(n, -1)).squeeze()
    X = StandardScaler().fit_transform(X)
    sw = np.random.RandomState(seed).uniform(0.5, 2.0, size=n)
    return X, y, sw


def _pair(kind, activation, n):
    """scikit-learn's model and ours, set up for the same full-batch plain SGD."""
    common = dict(hidden_layer_sizes=(5, 4), activation=activation, solver="sgd",
                  momentum=0.0, batch_size=n, learning_rate_init=0.1, alpha=ALPHA,
                  max_iter=3, random_state=0)
    if kind in ("regression", "multioutput"):
        return MLPRegressor(**common), MLPScratchRegressor(output_activation="identity",
                                                          **common)
    return MLPClassifier(**common), MLPScratchClassifier(**common)


def _fitted_pair(kind, activation):
    X, y, sw = _problem(kind)
    theirs, ours = _pair(kind, activation, X.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    weights = ([c.copy() for c in theirs.coefs_],
               [b.copy() for b in theirs.intercepts_])
    _load(ours, weights)
    return X, y, sw, theirs, ours, weights


def _load(est, weights):
    """Assign copies: each model updates its arrays in place."""
    est.coefs_ = [c.copy() for c in weights[0]]
    est.intercepts_ = [b.copy() for b in weights[1]]


def _assert_same_weights(ours, theirs):
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("kind", PROBLEMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_same_weights_same_predictions(activation, kind):
    X, _, _, theirs, ours, _ = _fitted_pair(kind, activation)
    assert ours.out_activation_ == theirs.out_activation_
    if kind in ("regression", "multioutput"):
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), **TOL)
    else:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                                   **TOL)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("kind", PROBLEMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_one_sgd_step_same_weights_and_loss(activation, kind, weighted):
    X, y, sw, theirs, ours, weights = _fitted_pair(kind, activation)
    sw = sw if weighted else None
    _load(theirs, weights)
    theirs.partial_fit(X, y, sample_weight=sw)
    ours.partial_fit(X, y, sample_weight=sw)
    moved = sum(np.abs(c - w).sum() for c, w in zip(ours.coefs_, weights[0]))
    assert moved > 1e-3  # a step was taken, so equal weights say something
    _assert_same_weights(ours, theirs)
    if kind == "multioutput":
        # scikit-learn divides the data term (not the L2 term) of its reported loss by
        # the number of outputs, its gradient not (SPEC 4.2); ours is J throughout
        penalty = 0.5 * ALPHA * sum((w ** 2).sum() for w in weights[0])
        penalty /= X.shape[0] if sw is None else sw.sum()
        k = y.shape[1]
        assert ours.loss_ == pytest.approx(k * (theirs.loss_ - penalty) + penalty,
                                           rel=1e-10)
    else:
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_steps_keep_matching(kind):
    """Several steps in a row: nothing drifts, including the loss curve."""
    X, y, sw, theirs, ours, weights = _fitted_pair(kind, "tanh")
    _load(theirs, weights)
    for _ in range(5):
        theirs.partial_fit(X, y, sample_weight=sw)
        ours.partial_fit(X, y, sample_weight=sw)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)
    _assert_same_weights(ours, theirs)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_shuffled_epochs_visit_the_rows_in_scikit_learns_orders(kind, solver):
    """A warm-started fit of 5 shuffled epochs in mini-batches from the same weights:
    the same loss curve and weights. Each epoch shuffles the order of the one before,
    as scikit-learn does; a fresh permutation per epoch matched it in epoch 1 only."""
    X, y, sw = _problem(kind)
    theirs, ours = _pair(kind, "tanh", X.shape[0])
    for est in (theirs, ours):
        est.set_params(solver=solver, batch_size=20, shuffle=True, warm_start=True,
                       max_iter=1, tol=0.0, n_iter_no_change=100, random_state=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    _load(ours, (theirs.coefs_, theirs.intercepts_))  # copies
    for est in (theirs, ours):
        est.set_params(max_iter=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    _assert_same_weights(ours, theirs)


def test_one_batch_epochs_draw_what_scikit_learns_draw():
    """shuffle=True with the whole data in one batch: no order is needed, but
    scikit-learn draws one each epoch, so a RandomState instance ends where its fit
    leaves it, and a warm fit in mini-batches after it visits the same batches."""
    X, y, sw, theirs, ours, weights = _fitted_pair("multiclass", "tanh")
    for est in (theirs, ours):
        est.set_params(shuffle=True, warm_start=True, random_state=np.random.RandomState(5))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    assert ours.random_state.randint(10**9) == theirs.random_state.randint(10**9)
    _load(ours, (theirs.coefs_, theirs.intercepts_))
    for est in (theirs, ours):
        est.set_params(batch_size=20, max_iter=2, tol=0.0, n_iter_no_change=100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_[-2:], theirs.loss_curve_[-2:], rtol=1e-10)
    _assert_same_weights(ours, theirs)


# each optimizer setting off its default, in mini-batches (3 per epoch, in order)
OPTIMIZERS = {
    "adam": dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-6,
                 learning_rate_init=0.01),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "invscaling": dict(solver="sgd", momentum=0.5, learning_rate="invscaling",
                       power_t=0.3, learning_rate_init=0.2),
}


def _fresh_optimizers(theirs, ours):
    """Both start the next partial_fit with a new optimizer (no state from the fits
    that built them, which took other weights' steps)."""
    del theirs._optimizer
    ours._optimizer = None


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_optimizer_settings_take_the_same_steps(kind, name):
    X, y, sw = _problem(kind)
    theirs, ours = _pair(kind, "tanh", X.shape[0])
    for est in (theirs, ours):
        est.set_params(**OPTIMIZERS[name], batch_size=20, shuffle=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    _load(ours, (theirs.coefs_, theirs.intercepts_))  # copies
    _fresh_optimizers(theirs, ours)
    start = [c.copy() for c in ours.coefs_]
    for _ in range(4):
        theirs.partial_fit(X, y, sample_weight=sw)
        ours.partial_fit(X, y, sample_weight=sw)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)
    assert sum(np.abs(c - w).sum() for c, w in zip(ours.coefs_, start)) > 1e-3
    _assert_same_weights(ours, theirs)


@pytest.mark.parametrize("stop", [dict(tol=1e-2), dict(max_fun=7), dict(max_iter=4)])
def test_lbfgs_stops_where_scikit_learn_does(stop):
    """From the same weights (a warm start), the same iterations, loss and weights,
    whichever rule stops it, and the same ConvergenceWarning when one is due."""
    X, y, _ = _problem("multiclass")
    theirs, ours = _pair("multiclass", "tanh", X.shape[0])
    for est in (theirs, ours):
        est.set_params(solver="lbfgs", max_iter=200, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    _load(ours, (theirs.coefs_, theirs.intercepts_))  # copies
    said = []
    for est in (theirs, ours):
        est.set_params(**{"tol": 1e-4, "max_fun": 15000, "max_iter": 200, **stop})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            est.fit(X, y)
        said.append([str(w.message) for w in caught
                     if issubclass(w.category, ConvergenceWarning)])
    assert said[0] == said[1]
    assert len(said[0]) == (0 if "tol" in stop else 1)
    assert ours.n_iter_ == theirs.n_iter_
    # lbfgs leaves the clock of the learning rate schedules (t_) where it was
    assert ours.t_ == theirs.t_ == 0
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_poisson_regressor_steps_like_scikit_learns():
    """loss="poisson" (an exp output): the same predictions and the same SGD step from
    the same weights."""
    X, y, sw = _problem("regression")
    y = np.random.RandomState(0).poisson(np.exp(0.5 * X[:, 0]))
    common = dict(loss="poisson", hidden_layer_sizes=(5, 4), activation="tanh",
                  solver="sgd", momentum=0.0, batch_size=X.shape[0],
                  learning_rate_init=0.05, alpha=ALPHA, max_iter=3, random_state=0)
    theirs, ours = MLPRegressor(**common), MLPScratchRegressor(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    _load(ours, (theirs.coefs_, theirs.intercepts_))  # copies
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), **TOL)
    for _ in range(3):
        theirs.partial_fit(X, y, sample_weight=sw)
        ours.partial_fit(X, y, sample_weight=sw)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)
    _assert_same_weights(ours, theirs)


def test_multilabel_partial_fit_takes_classes_like_sklearn():
    """A first multi-label partial_fit takes its labels from the indicator's columns."""
    X, y, _ = _problem("multilabel")
    theirs = MLPClassifier(solver="sgd", random_state=0).partial_fit(X, y,
                                                                   classes=[0, 1, 2])
    ours = MLPScratchClassifier(solver="sgd", random_state=0).partial_fit(
        X, y, classes=[0, 1, 2])
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.n_outputs_ == theirs.n_outputs_ == 3
    assert ours.predict(X).shape == y.shape


_RNG = np.random.default_rng(3)
_N_ENC = 40_000  # ten slices of the encoder's 4,096 rows


@pytest.mark.parametrize("y", [
    _RNG.integers(0, 2, _N_ENC),
    _RNG.integers(0, 7, _N_ENC) * 3 - 5,
    _RNG.integers(0, 7, _N_ENC).astype(float),
    np.array(["cat", "dog", "emu"], dtype=object)[_RNG.integers(0, 3, _N_ENC)],
    np.array(["no", "yes"])[_RNG.integers(0, 2, 500)],
], ids=["binary", "multiclass", "float", "strings", "binary_strings"])
def test_targets_are_encoded_as_scikit_learns_label_binarizer(y):
    est = MLPScratchClassifier()
    binarizer = LabelBinarizer().fit(y)
    expected = binarizer.transform(y).astype(bool)
    tracemalloc.start()
    try:
        got = est._encode_targets(y, None, binarizer)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == bool
    # the indicators and a slice's temporaries (a few arrays of 4,096 indices, or of
    # strings cast to the classes' type: 81 bytes per label of the slice); the
    # binarizer alone took 54 bytes per label, 2.2 MB here
    assert peak < got.nbytes + 4_096 * 100
    # labels the binarizer does not know: its own encoding (a row of no class)
    partial = LabelBinarizer().fit(y[y != y[0]])
    if len(partial.classes_) > 1:
        np.testing.assert_array_equal(est._encode_targets(y, None, partial),
                                      partial.transform(y).astype(bool))


def _constraint_key(c):
    """A constraint of scikit-learn's parameter validation, comparable across objects
    (a StrOptions' str lists its set in hash order)."""
    if hasattr(c, "options"):
        return type(c).__name__, frozenset(c.options)
    if hasattr(c, "closed"):
        return type(c).__name__, c.type, c.left, c.right, c.closed
    return str(c)


@pytest.mark.parametrize("ours, theirs", [(MLPScratchClassifier, MLPClassifier),
                                          (MLPScratchRegressor, MLPRegressor)])
def test_every_scikit_learn_parameter_with_its_default_position_and_constraints(ours,
                                                                              theirs):
    """A drop-in: each of scikit-learn's parameters under the same name, with the same
    default, positional or keyword-only alike, validated alike (``activation`` takes
    more here: objects, lists and more names)."""
    mine, sk = ours().get_params(), theirs().get_params()
    extra = {"output_activation", "init", "n_jobs"} | (
        {"class_weight"} if ours is MLPScratchClassifier else set())
    assert set(mine) == set(sk) | extra
    for name, default in sk.items():
        assert type(mine[name]) is type(default) and mine[name] == default, name
    positional = [
        [p.name for p in inspect.signature(cls).parameters.values()
         if p.kind is p.POSITIONAL_OR_KEYWORD] for cls in (ours, theirs)]
    assert positional[0] == positional[1]
    for name, constraints in theirs._parameter_constraints.items():
        if name != "activation":
            assert ([_constraint_key(c) for c in ours._parameter_constraints[name]]
                    == [_constraint_key(c) for c in constraints]), name


STOPPING = {
    "sgd": ("multiclass", dict(solver="sgd", tol=1e-3, n_iter_no_change=3,
                               learning_rate_init=0.05)),
    # a loss that rises again before it stops: the best loss is not the last one
    "sgd_noisy": ("multiclass", dict(solver="sgd", tol=0.0, n_iter_no_change=2,
                                     learning_rate_init=1.5)),
    "adam": ("multiclass", dict(solver="adam", tol=1e-3, n_iter_no_change=2,
                                learning_rate_init=0.01)),
    "sgd_adaptive": ("multiclass", dict(solver="sgd", learning_rate="adaptive",
                                        tol=1e-3, n_iter_no_change=2,
                                        learning_rate_init=0.05)),
    "early_stopping": ("binary", dict(solver="adam", early_stopping=True, tol=1e-3,
                                      n_iter_no_change=3, learning_rate_init=0.01)),
    # accuracy ties: an equal score is an improvement at tol=0, not a new best
    "early_stopping_tol0": ("binary", dict(solver="adam", early_stopping=True, tol=0.0,
                                           n_iter_no_change=3,
                                           learning_rate_init=0.01)),
}


@pytest.mark.parametrize("case", sorted(STOPPING))
def test_stopping_rules_stop_where_scikit_learns_do(case):
    """One epoch each, then scikit-learn's weights and records (loss curve, best loss,
    validation scores) in ours and a warm start of both to the end: the same epochs,
    losses and scores, and the same final weights, with early stopping those of the
    best validation epoch."""
    kind, params = STOPPING[case]
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3,
                               n_classes=2 if kind == "binary" else 3,
                               random_state=1 if kind == "binary" else 0)
    X = StandardScaler().fit_transform(X)
    common = dict(hidden_layer_sizes=(6,), activation="tanh", random_state=0,
                  max_iter=1, shuffle=False, **params)
    theirs, ours = MLPClassifier(**common), MLPScratchClassifier(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (theirs, ours):
            est.fit(X, y)
        _load(ours, (theirs.coefs_, theirs.intercepts_))
        ours.loss_curve_ = list(theirs.loss_curve_)
        ours.best_loss_ = theirs.best_loss_
        if params.get("early_stopping"):
            ours.validation_scores_ = list(theirs.validation_scores_)
            ours.best_validation_score_ = theirs.best_validation_score_
        assert ours._no_improvement_count == theirs._no_improvement_count == 0
        for est in (theirs, ours):
            est.set_params(warm_start=True, max_iter=400).fit(X, y)
    assert 10 < ours.n_iter_ == theirs.n_iter_ < 400
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-8)
    if params.get("early_stopping"):
        assert ours.validation_scores_ == theirs.validation_scores_
        assert ours.best_validation_score_ == theirs.best_validation_score_
        assert ours.best_loss_ is theirs.best_loss_ is None
    else:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-8)
        assert ours.best_loss_ == min(ours.loss_curve_)
        if case == "sgd_noisy":
            assert ours.best_loss_ < ours.loss_curve_[-1]
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_the_classifier_names_its_loss_as_scikit_learns():
    assert MLPScratchClassifier.loss == MLPClassifier().loss == "log_loss"
    assert "loss" not in MLPScratchClassifier().get_params()
    assert MLPScratchRegressor(loss="poisson").loss == "poisson"


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_loss_attributes_are_numpy_floats_as_scikit_learns(solver):
    """loss_.round(3) and the like work as on scikit-learn's model."""
    X, y, _ = _problem("multiclass")
    kw = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPClassifier(**kw).fit(X, y)
        ours = MLPScratchClassifier(**kw).fit(X, y)
    assert type(ours.loss_) is type(theirs.loss_) is np.float64
    assert type(ours.best_loss_) is np.float64
    if solver == "adam":  # scikit-learn's lbfgs keeps no curve
        assert {type(v) for v in ours.loss_curve_} == {type(v) for v in
                                                        theirs.loss_curve_}
    assert {type(v) for v in ours.loss_curve_} == {np.float64}


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float16, np.uint8, np.bool_, np.int8, np.int32,
                                   np.int64, np.float64])
def test_predictions_of_a_float32_model_take_scikit_learns_dtype(dtype, sparse):
    """float16, small integers and booleans promote to float32 with float32 weights (they
    were widened to float64), wider integers and float64 to float64."""
    if sparse and dtype is np.float16:
        pytest.skip("scipy.sparse has no float16")
    import scipy.sparse as sp
    X, _, _ = _problem("regression")
    X32 = StandardScaler().fit_transform(X).astype(np.float32)
    y = X32[:, 0] + 1
    kw = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    Xp = (X32 * 3).astype(dtype)
    Xp = sp.csr_matrix(Xp) if sparse else Xp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPRegressor(**kw).fit(X32, y).predict(Xp)
        ours = MLPScratchRegressor(**kw).fit(X32, y).predict(Xp)
    assert ours.dtype == theirs.dtype
