"""The estimator behaviours of SPEC 4.1, 4.4 and 4.5, one test per behaviour."""

import math
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from scipy.special import expit, logit
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer, load_digits, load_iris, make_classification,
    make_multilabel_classification, make_regression,
)
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.metrics import log_loss, recall_score
from sklearn.model_selection import GridSearchCV, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sknn_scratch import (
    DeadOutputWarning, MLPScratchClassifier, MLPScratchRegressor,
    ZeroInitializationWarning,
)
from sknn_scratch._base import BaseMLPScratch
from sknn_scratch.activations import Activation, LeakyReLU, PReLU, Tanh
from sknn_scratch.initializers import Initializer, RandomNormal

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _regression(n_outputs=1, shift=0.0, seed=0):
    X, y = make_regression(n_samples=120, n_features=5, n_targets=n_outputs, noise=1.0,
                           random_state=seed)
    return X, y / np.abs(y).max() + shift


def _untrained(est, X, y, **fit_params):
    """``est`` fitted for one SGD epoch with a negligible step: its initial weights."""
    est.set_params(solver="sgd", learning_rate_init=1e-12, momentum=0.0, max_iter=1,
                   random_state=0)
    return est.fit(X, y, **fit_params)


# ---------------------------------------------------------------- 4.4 output activation
@pytest.mark.parametrize("make, expected, n_outputs", [
    (lambda: make_classification(60, 4, random_state=0), "logistic", 1),
    (lambda: make_classification(90, 4, n_informative=3, n_redundant=0, n_classes=3,
                                 random_state=0),
     "softmax", 3),
    (lambda: make_multilabel_classification(60, 4, n_classes=3, random_state=0),
     "logistic", 3),
    (lambda: _regression(shift=1.0), "relu", 1),
    (lambda: _regression(shift=0.5), "identity", 1),  # some y < 0
    (lambda: _regression(n_outputs=2, shift=1.0), "relu", 2),
])
def test_auto_output_activation_table(make, expected, n_outputs):
    X, y = make()
    regression = y.dtype.kind == "f"
    assert not regression or (y.min() < 0) == (expected == "identity")
    est = MLPScratchRegressor() if regression else MLPScratchClassifier()
    est.set_params(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    est.fit(X, y)
    assert est.out_activation_ == expected
    assert est.n_outputs_ == n_outputs
    assert est.coefs_[-1].shape == (5, n_outputs)


def test_auto_output_activation_for_poisson_is_exp():
    X, y = _regression(shift=1.0)
    est = MLPScratchRegressor(loss="poisson", hidden_layer_sizes=(5,), max_iter=5,
                              random_state=0).fit(X, y)
    assert est.out_activation_ == "exp"
    assert (est.predict(X * 100) > 0).all()


def test_a_subclass_of_exp_trains_a_poisson_regressor_as_exp_does():
    """The Poisson loss takes any Exp; a subclass used to get (a - y) g'(z) instead of
    a - y, and lbfgs ended at a worse loss (0.465 against 0.423 in one report)."""
    from sknn_scratch.activations import Exp

    class MyExp(Exp):
        pass

    X, y = _regression(shift=1.0)
    kw = dict(loss="poisson", hidden_layer_sizes=(5,), solver="lbfgs", max_iter=50,
              random_state=0)
    ours = MLPScratchRegressor(output_activation=MyExp(), **kw).fit(X, y)
    plain = MLPScratchRegressor(**kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, plain.loss_curve_, rtol=1e-6)


def test_relu_output_never_predicts_below_zero_far_from_the_data():
    X, y = _regression(shift=1.0)
    y = np.maximum(y - 1.2, 0.0)  # many exact zeros: the fit pushes outputs down
    reg = MLPScratchRegressor(hidden_layer_sizes=(20,), max_iter=200, random_state=0)
    reg.fit(X, y)
    assert reg.out_activation_ == "relu"
    for scale in (1, 1000, -1000):
        assert reg.predict(X * scale).min() >= 0
    # the identity output that the same data would get with negative targets does not
    reg_id = MLPScratchRegressor(hidden_layer_sizes=(20,), max_iter=200, random_state=0,
                                 output_activation="identity").fit(X, y)
    assert min(reg_id.predict(X * s).min() for s in (1, 1000, -1000)) < 0


def _floored_target():
    """Targets >= 0, 85 % of them exactly 0, on which the default regressor's ReLU output
    ends at 0 on every row whose target is above 0 (after its first epoch it is above 0
    on 8 of those 29 rows only, and never recovers)."""
    rng = np.random.RandomState(0)
    rng.randn(200, 5)
    X = rng.randn(200, 5)
    return X, np.maximum(0, X[:, 0] - 1.0) * 3


def test_relu_output_at_zero_on_the_positive_targets_warns():
    X, y = _floored_target()
    with pytest.warns(DeadOutputWarning, match=r"is 0 on 29 of the 29 training rows "
                      r"whose target is above 0.*output_activation='identity'"):
        reg = MLPScratchRegressor(random_state=7).fit(X, y)
    assert reg.out_activation_ == "relu" and np.all(reg.predict(X[y > 0]) == 0)
    # the outputs that the message suggests learn the same data, without the warning
    for params in ({"output_activation": "identity"}, {"output_activation": "softplus"},
                   {"init": "glorot_uniform"}):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeadOutputWarning)
            assert MLPScratchRegressor(random_state=7, **params).fit(X, y).score(X, y) > 0.6


def _check_relu_output_of_feature_0(X, Y, sw, output_bias):
    """Fit's check of its outputs, run on a (1,) identity network whose ReLU outputs are
    ``max(X[:, 0] + output_bias, 0)``."""
    reg = MLPScratchRegressor(hidden_layer_sizes=(1,), activation="identity",
                              output_activation="relu", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, Y)
    reg.coefs_ = [np.eye(X.shape[1], 1), np.ones((1, Y.shape[1]))]
    reg.intercepts_ = [np.zeros(1), np.asarray(output_bias, float)]
    reg._check_fitted_output(X, Y, sw)


@pytest.mark.parametrize("n_positive", [8, 600])  # in one slice of rows, and in three
def test_dead_output_warning_counts_the_positive_rows_at_zero(n_positive):
    """It warns when the output is 0 on more than half of the rows whose target is
    above 0, naming how many; rows of target 0 or of weight 0 are not counted."""
    n_rows = n_positive + 10
    X, y, sw = np.ones((n_rows, 2)), np.ones(n_rows), np.ones(n_rows)
    X[n_positive:, 0] = -1.0  # the output is 0 on the last 10 rows,
    y[n_positive:n_positive + 5] = 0.0  # of which 5 have target 0
    sw[n_positive + 5:] = 0.0  # and 5 weight 0
    half = n_positive // 2
    X[n_positive - half:n_positive, 0] = -1.0  # and on half of the rows that count
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeadOutputWarning)
        _check_relu_output_of_feature_0(X, y[:, None], sw, [0.0])
    X[n_positive - half - 1, 0] = -1.0  # one more
    with pytest.warns(DeadOutputWarning, match=f"^The model's output is 0 on {half + 1} "
                      f"of the {n_positive} training rows whose target is above 0"):
        _check_relu_output_of_feature_0(X, y[:, None], sw, [0.0])
    # two outputs, the first lifted above 0 everywhere: the second is named
    with pytest.warns(DeadOutputWarning, match=f"^Output 1 of this 2-output model is 0 "
                      f"on {half + 1} of the {n_positive}"):
        _check_relu_output_of_feature_0(X, np.c_[y, y], sw, [10.0, 0.0])
    # without sample weights the 5 rows of weight 0 count, at 0
    with pytest.warns(DeadOutputWarning, match=f"is 0 on {half + 6} of the "
                      f"{n_positive + 5} training rows"):
        _check_relu_output_of_feature_0(X, y[:, None], None, [0.0])


@pytest.mark.parametrize("output_activation", ["relu", "exp"])
def test_nonnegative_output_with_negative_targets_raises(output_activation):
    X, y = _regression(shift=0.5)
    est = MLPScratchRegressor(output_activation=output_activation, max_iter=5)
    with pytest.raises(ValueError, match=r"negative.*'identity'"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


@pytest.mark.parametrize("output_activation", ["softmax", "relu", Tanh()])
def test_classifier_output_activation_must_suit_the_target(output_activation, iris):
    X, y = iris
    est = MLPScratchClassifier(output_activation=output_activation, max_iter=5)
    if output_activation == "softmax":  # the right one for multi-class is accepted
        assert est.fit(X, y).out_activation_ == "softmax"
        with pytest.raises(ValueError, match="output_activation"):
            est.fit(X, y == 1)
    else:
        with pytest.raises(ValueError, match="output_activation"):
            est.fit(X, y)


def test_output_bias_starts_at_the_inverse_link_of_the_weighted_mean(iris):
    X, y = iris
    sw = np.random.RandomState(0).uniform(0.1, 3, len(y))
    # binary: logit of the weighted positive rate
    clf = _untrained(MLPScratchClassifier(), X, y == 2, sample_weight=sw)
    p = np.average(y == 2, weights=sw)
    np.testing.assert_allclose(clf.intercepts_[-1], [logit(p)], atol=1e-7)
    # multi-class: log of the weighted class priors
    clf = _untrained(MLPScratchClassifier(), X, y, sample_weight=sw)
    priors = [np.average(y == k, weights=sw) for k in range(3)]
    np.testing.assert_allclose(clf.intercepts_[-1], np.log(priors), atol=1e-7)
    # X = 0 and hidden biases at 0: ReLU units output 0, so the model predicts the priors
    np.testing.assert_allclose(clf.predict_proba(X * 0)[0], priors, rtol=1e-6)
    # multi-label with an all-0 and an all-1 label: half a row from the bound
    Y = np.column_stack([y == 0, np.zeros_like(y), np.ones_like(y)]).astype(int)
    clf = _untrained(MLPScratchClassifier(), X, Y)
    b = clf.intercepts_[-1]
    half = 0.5 / len(y)
    np.testing.assert_allclose(b, [logit(1 / 3), logit(half), logit(1 - half)],
                               atol=1e-7)
    # regression: the mean itself for identity and ReLU, its log for exp
    Xr, yr = _regression(shift=1.0)
    swr = sw[:len(yr)]
    for params, link in [({}, lambda m: m), ({"output_activation": "identity"}, lambda m: m),
                         ({"loss": "poisson"}, np.log)]:
        reg = _untrained(MLPScratchRegressor(**params), Xr, yr, sample_weight=swr)
        np.testing.assert_allclose(reg.intercepts_[-1], [link(np.average(yr, weights=swr))],
                                   rtol=1e-7)
    assert reg.out_activation_ == "exp"
    # hidden biases start at zero
    np.testing.assert_allclose(reg.intercepts_[0], 0.0, atol=1e-9)
    # binary sigmoid output: expit(bias) is the base rate
    assert expit(logit(p)) == pytest.approx(p)


def test_with_early_stopping_the_output_bias_sees_the_training_rows_only(iris,
                                                                          monkeypatch):
    """The validation split scores the model on rows it has not trained on: their
    targets do not set its starting output bias either (the mean of every row did)."""
    from sknn_scratch import _base

    X, y = iris
    sw = np.random.RandomState(0).uniform(0.1, 3, len(y))
    splits = []

    def recording_split(*arrays, **kwargs):
        splits.append(train_test_split(*arrays, **kwargs))
        return splits[-1]

    monkeypatch.setattr(_base, "train_test_split", recording_split)
    for est, target, link in [
            (MLPScratchClassifier(), y, np.log),  # softmax: log of the class priors
            (MLPScratchRegressor(), X[:, 0] * 3 - 15, lambda m: m)]:  # identity
        splits.clear()
        est = _untrained(est.set_params(early_stopping=True, validation_fraction=0.3),
                         X, target, sample_weight=sw)
        _, _, Y_train, _, _, _, sw_train, _ = splits[0]
        Y_all = (target[:, None] == np.arange(3)) if target is y else target
        assert len(Y_train) == 105
        np.testing.assert_allclose(
            est.intercepts_[-1], link(np.average(Y_train, axis=0, weights=sw_train)),
            rtol=1e-7)
        assert not np.allclose(est.intercepts_[-1],
                               link(np.average(Y_all, axis=0, weights=sw)), rtol=1e-4)


@pytest.mark.parametrize("output, shift", [("tanh", -0.2), ("softplus", 1.0),
                                           ("leaky_relu", -0.2), ("elu", -0.2)])
def test_other_invertible_output_activations_start_at_the_weighted_mean(output, shift):
    """SPEC 4.4: every output bias starts at the inverse link of the weighted mean
    (of targets inside the output's range: tanh's (-1, 1), softplus's (0, inf))."""
    X, y = _regression()
    y = 0.75 * y + shift
    sw = np.random.RandomState(0).uniform(0.1, 3, len(y))
    reg = _untrained(MLPScratchRegressor(output_activation=output), X, y,
                     sample_weight=sw)
    mean = np.average(y, weights=sw)
    act = reg._network.activations[-1]
    assert act.forward(reg.intercepts_[-1]) == pytest.approx([mean], rel=1e-7)


# ------------------------------------------------------------ 4.5 zero initialization
def test_zero_initialization_warns_with_a_user_warning(iris):
    X, y = iris
    assert issubclass(ZeroInitializationWarning, UserWarning)
    with pytest.warns(ZeroInitializationWarning, match="symmetry|identical"):
        MLPScratchClassifier(hidden_layer_sizes=(4,), init="zeros", max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroInitializationWarning)
        MLPScratchClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)


def test_the_zero_initialization_warning_names_the_layers_whose_units_are_copies(iris):
    """A hidden layer's units are copies when their incoming and outgoing weights both
    start alike, whatever the initializer. Zero incoming weights with random outgoing
    ones used to warn, though each unit then gets its own gradient; an initializer
    drawing equal weights (std 0) did not."""
    X, y = iris
    kw = dict(hidden_layer_sizes=(6, 5), activation="tanh", max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroInitializationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPScratchClassifier(init=["zeros", "glorot_uniform", "glorot_uniform"],
                                   **kw).fit(X, y)
    W = est.coefs_[0]
    assert (np.abs(W - W[:, :1]).max(axis=0)[1:] > 1e-3).all()  # every unit its own
    for init, layers in [(RandomNormal(std=0.0), r"\[1, 2\]"),
                         (["glorot_uniform", "zeros", "zeros"], r"\[2\]"),
                         (["zeros", "zeros", "glorot_uniform"], r"\[1\]")]:
        with pytest.warns(ZeroInitializationWarning, match=f"hidden layer\\(s\\) {layers}"):
            MLPScratchClassifier(init=init, **{**kw, "max_iter": 1}).fit(X, y)


class _Constant(Initializer):
    def __init__(self, value=0.1):
        self.value = value

    def __call__(self, fan_in, fan_out, random_state):
        return np.full((fan_in, fan_out), self.value)


@pytest.mark.parametrize("init", ["zeros", _Constant(0.1)], ids=["zeros", "constant"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic"])
def test_zero_initialized_hidden_units_stay_identical(activation, init, iris):
    """And units that start equal but not at 0, whose weights move with tanh and ReLU
    too (zeros stay 0 there, where g(0) = 0, which proves nothing about symmetry)."""
    X, y = iris
    est = MLPScratchClassifier(hidden_layer_sizes=(6, 5), activation=activation,
                               init=init, max_iter=50, random_state=0)
    with pytest.warns(ZeroInitializationWarning):
        est.fit(X, y)
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1]):
        np.testing.assert_allclose(W, W[:, :1] * np.ones_like(W), rtol=1e-12, atol=0)
        np.testing.assert_allclose(b, b[0], rtol=1e-12, atol=0)
    if activation == "logistic" or init != "zeros":  # the weights did move
        moved = np.abs(est.coefs_[0] - (0 if init == "zeros" else 0.1)).max()
        assert moved > 1e-6


def test_wrong_custom_derivative_is_caught_at_fit(iris):
    class WrongTanh(Activation):
        def forward(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1.0 - np.tanh(z)

    X, y = iris
    with pytest.raises(InvalidParameterError,
                       match=r"Invalid activation=WrongTanh\(\): its derivative"):
        MLPScratchClassifier(activation=WrongTanh(), max_iter=2).fit(X, y)


class _Broken(Activation):
    """A tanh whose ``forward`` or ``derivative`` is replaced by ``how``."""

    def __init__(self, method="forward", how="ravel"):
        self.method, self.how = method, how

    def forward(self, z):
        return self._broken(np.tanh(z)) if self.method == "forward" else np.tanh(z)

    def derivative(self, z):
        d = 1 - np.tanh(z) ** 2
        return self._broken(d) if self.method == "derivative" else d

    def _broken(self, out):
        return {"ravel": lambda: out.ravel(), "list": out.tolist, "none": lambda: None,
                "scalar": lambda: 1.0, "string": lambda: np.full(out.shape, "x"),
                "nan": lambda: out * np.nan, "raise": lambda: out + "a"}[self.how]()


@pytest.mark.parametrize("param", ["activation", "output_activation"])
@pytest.mark.parametrize("method", ["forward", "derivative"])
@pytest.mark.parametrize("how, problem", [
    ("ravel", r"returned shape \(12,\)"), ("list", "returned a list"),
    ("none", "returned a NoneType"), ("scalar", "returned a float"),
    ("string", "returned dtype <U1"), ("nan", "returned non-finite values"),
    ("raise", "raised UFuncTypeError")])
def test_a_custom_activation_that_breaks_its_contract_is_named_at_fit(
        param, method, how, problem):
    """Not a broadcast error deep in training, a derivative check that fails on a list,
    a scalar broadcast silently, or a non-finite loss blamed on the input data."""
    X, y = make_regression(n_samples=30, n_features=3, random_state=0)
    act = _Broken(method, how)
    est = MLPScratchRegressor(hidden_layer_sizes=(5,), max_iter=2, **{param: act})
    with pytest.raises(InvalidParameterError,
                       match=rf"Invalid {param}=_Broken\(.*\): its {method}\(z\) {problem}"):
        est.fit(X, y)


def test_a_custom_derivative_may_return_a_boolean_mask(iris):
    """``z > 0`` is ReLU's derivative as many write it: it trains as the float one."""
    class MaskReLU(Activation):
        def forward(self, z):
            return np.maximum(z, 0)

        def derivative(self, z):
            return z > 0

    class FloatReLU(MaskReLU):
        def derivative(self, z):
            return (z > 0).astype(z.dtype)

    X, y = iris
    fits = [MLPScratchClassifier(activation=act(), hidden_layer_sizes=(8,), max_iter=20,
                                 random_state=0) for act in (MaskReLU, FloatReLU)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in fits:
            est.fit(X, y)
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        np.testing.assert_array_equal(a, b)


def test_correct_custom_activation_trains(iris):
    class Cube(Activation):
        def forward(self, z):
            return z ** 3 / 3 + z

        def derivative(self, z):
            return z ** 2 + 1

    X, y = iris
    est = MLPScratchClassifier(activation=Cube(), hidden_layer_sizes=(8,),
                               max_iter=300, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.9


# ---------------------------------------------------------------- model selection
def test_grid_search_over_activation_objects_and_strings(iris):
    X, y = iris
    leaky, prelu = LeakyReLU(negative_slope=0.1), PReLU(0.2)
    before = [leaky.get_params(), prelu.get_params()]
    est = MLPScratchClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    search = GridSearchCV(est, {"activation": ["relu", leaky, prelu, "tanh"]}, cv=3)
    search.fit(X, y)
    shown = [str(p["activation"]) for p in search.cv_results_["params"]]
    assert shown == ["relu", "LeakyReLU(negative_slope=0.1)", "PReLU(negative_slope=0.2)",
                     "tanh"]
    assert "LeakyReLU(negative_slope=0.1)" in str(search.cv_results_["params"])
    # the user's objects are the ones in the results, unmutated
    assert search.cv_results_["params"][1]["activation"] is leaky
    assert search.cv_results_["params"][2]["activation"] is prelu
    assert [leaky.get_params(), prelu.get_params()] == before
    assert est.activation == "relu" and not hasattr(est, "coefs_")
    assert search.best_estimator_.activation is not leaky
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_grid_search_over_a_nested_activation_parameter(iris):
    X, y = iris
    leaky = LeakyReLU()
    est = MLPScratchClassifier(hidden_layer_sizes=(8,), activation=leaky, max_iter=40,
                               random_state=0)
    search = GridSearchCV(est, {"activation__negative_slope": [0.01, 0.1, 0.3]}, cv=3)
    search.fit(X, y)
    assert [p["activation__negative_slope"] for p in search.cv_results_["params"]] == [
        0.01, 0.1, 0.3]
    assert list(search.cv_results_["param_activation__negative_slope"]) == [0.01, 0.1, 0.3]
    best = search.best_params_["activation__negative_slope"]
    assert search.best_estimator_.activation == LeakyReLU(negative_slope=best)
    assert search.best_estimator_.activations_ == [LeakyReLU(negative_slope=best)]
    assert leaky.negative_slope == 0.01 and est.activation is leaky


def test_fit_does_not_mutate_the_users_objects(iris):
    X, y = iris
    prelu = PReLU(0.25)
    acts = [prelu, LeakyReLU(0.1)]
    est = MLPScratchClassifier(hidden_layer_sizes=(6, 6), activation=acts, max_iter=30,
                               random_state=0).fit(X, y)
    assert est.activation is acts and acts[0] is prelu
    assert prelu.get_params() == {"negative_slope": 0.25}
    assert est.activations_ == [PReLU(0.25), LeakyReLU(0.1)]
    assert est.activations_[0] is not prelu


def test_cross_validate_in_a_pipeline():
    X, y = load_breast_cancer(return_X_y=True)  # unscaled: the pipeline scales
    pipe = make_pipeline(StandardScaler(),
                         MLPScratchClassifier(hidden_layer_sizes=(10,), max_iter=50,
                                              random_state=0))
    result = cross_validate(pipe, X, y, cv=3, scoring=["accuracy", "neg_log_loss"])
    assert result["test_accuracy"].min() > 0.9
    assert np.isfinite(result["test_neg_log_loss"]).all()


# ---------------------------------------------------------------- class_weight
def test_balanced_class_weight_raises_minority_recall():
    X, y = make_classification(n_samples=600, n_features=6, weights=[0.9, 0.1],
                               class_sep=0.5, flip_y=0, random_state=0)
    recalls = {}
    for cw in (None, "balanced"):
        clf = MLPScratchClassifier(hidden_layer_sizes=(10,), max_iter=100, random_state=0,
                                   class_weight=cw).fit(X, y)
        recalls[cw] = recall_score(y, clf.predict(X))
    assert recalls["balanced"] > recalls[None] + 0.1, recalls


def test_class_weight_dict_equals_the_matching_sample_weight(iris):
    X, y = iris
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    kw = dict(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    a = MLPScratchClassifier(class_weight=cw, **kw).fit(X, y)
    b = MLPScratchClassifier(**kw).fit(X, y, sample_weight=np.vectorize(cw.get)(y))
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-10)
    # and it combines multiplicatively with sample_weight
    sw = np.linspace(0.5, 2, len(y))
    c = MLPScratchClassifier(class_weight=cw, **kw).fit(X, y, sample_weight=sw)
    d = MLPScratchClassifier(**kw).fit(X, y, sample_weight=sw * np.vectorize(cw.get)(y))
    np.testing.assert_allclose(c.coefs_[0], d.coefs_[0], rtol=1e-10)


def test_class_weight_in_partial_fit(iris):
    X, y = iris
    cw = {0: 1.0, 1: 4.0, 2: 1.0}
    a = MLPScratchClassifier(hidden_layer_sizes=(5,), class_weight=cw, random_state=0)
    b = MLPScratchClassifier(hidden_layer_sizes=(5,), random_state=0)
    for _ in range(3):
        a.partial_fit(X, y, classes=[0, 1, 2])
        b.partial_fit(X, y, classes=[0, 1, 2], sample_weight=np.vectorize(cw.get)(y))
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-10)
    balanced = MLPScratchClassifier(class_weight="balanced")
    with pytest.raises(ValueError, match="balanced"):
        balanced.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(balanced, "coefs_")


def test_a_class_weight_dict_weighs_partial_fit_batches_that_lack_its_classes(iris):
    """A dict naming only some classes weighs those, 1 for the others, whichever
    classes a batch holds (as scikit-learn's linear models do): it used to fail on a
    batch without class 0 ("The classes, [1, 2], are not in class_weight")."""
    X, y = iris
    cw = {0: 2.0}
    a = MLPScratchClassifier(hidden_layer_sizes=(5,), class_weight=cw, random_state=0)
    b = MLPScratchClassifier(hidden_layer_sizes=(5,), random_state=0)
    for rows in (y > 0, y < 2, y != 1):
        a.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        b.partial_fit(X[rows], y[rows], classes=[0, 1, 2],
                      sample_weight=np.where(y[rows] == 0, 2.0, 1.0))
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    # a key that is no class is refused, by name, whichever classes a batch holds
    with pytest.raises(ValueError, match=r"class_weight has keys that are not classes "
                                         r"of y: \[5\]"):
        MLPScratchClassifier(class_weight={0: 2.0, 5: 1.0}).partial_fit(
            X[y > 0], y[y > 0], classes=[0, 1, 2])


# ---------------------------------------------------------------- input formats
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_gives_the_dense_model(fmt, solver):
    rng = np.random.RandomState(0)
    X = sp.random(150, 30, density=0.1, random_state=rng, format="csr")
    y = (X @ rng.standard_normal(30) > 0).astype(int)
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=20, batch_size=32,
              random_state=0)
    dense = MLPScratchClassifier(**kw).fit(X.toarray(), y)
    sparse = MLPScratchClassifier(**kw).fit(X.asformat(fmt), y)
    for Wd, Ws in zip(dense.coefs_ + dense.intercepts_,
                      sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_allclose(Ws, Wd, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sparse.predict_proba(X.asformat(fmt)),
                               dense.predict_proba(X.toarray()), rtol=1e-7)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-9)


def _manual_forward(X, coefs, intercepts):
    a = X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        a = np.maximum(a @ W + b, 0)
    return a @ coefs[-1] + intercepts[-1]


def _regressor_with_loaded_weights():
    X, y = _regression(shift=0.5)  # identity output: a plain affine last layer
    reg = MLPScratchRegressor(hidden_layer_sizes=(7,), max_iter=30, random_state=0)
    reg.fit(X, y)
    rng = np.random.RandomState(1)
    coefs = [rng.standard_normal(c.shape) for c in reg.coefs_]
    intercepts = [rng.standard_normal(b.shape) for b in reg.intercepts_]
    reg.coefs_, reg.intercepts_ = coefs, intercepts
    return X, y, reg, [c.copy() for c in coefs], [b.copy() for b in intercepts]


def test_loaded_weights_are_used_by_predict():
    X, _, reg, coefs, intercepts = _regressor_with_loaded_weights()
    np.testing.assert_allclose(reg.predict(X),
                               _manual_forward(X, coefs, intercepts).ravel(), rtol=1e-10)


def _assert_close_to_loaded(reg, coefs, intercepts):
    # one epoch of adam with lr 1e-3 moves no weight by more than ~1e-2; the loaded
    # weights differ from the trained ones by O(1)
    for got, loaded in zip(reg.coefs_ + reg.intercepts_, coefs + intercepts):
        assert np.abs(got - loaded).max() < 0.02
    assert any(np.abs(got - loaded).max() > 0 for got, loaded
               in zip(reg.coefs_ + reg.intercepts_, coefs + intercepts))


def test_loaded_weights_are_used_by_partial_fit():
    X, y, reg, coefs, intercepts = _regressor_with_loaded_weights()
    reg.partial_fit(X, y)
    _assert_close_to_loaded(reg, coefs, intercepts)
    # and the trained views follow: predict uses the updated weights
    np.testing.assert_allclose(reg.predict(X),
                               _manual_forward(X, reg.coefs_, reg.intercepts_).ravel())


def test_loaded_weights_are_used_by_warm_started_fit():
    X, y, reg, coefs, intercepts = _regressor_with_loaded_weights()
    reg.set_params(warm_start=True, max_iter=1)
    reg.fit(X, y)
    _assert_close_to_loaded(reg, coefs, intercepts)


def test_loaded_weights_of_the_wrong_shape_raise():
    X, _, reg, coefs, _ = _regressor_with_loaded_weights()
    reg.coefs_ = [coefs[0][:, :3], coefs[1]]
    with pytest.raises(ValueError, match="shapes"):
        reg.predict(X)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_float32_input_keeps_float32(solver, iris):
    X, y = iris
    X32 = X.astype(np.float32)
    clf = MLPScratchClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=20,
                               random_state=0).fit(X32, y)
    assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X32).dtype == np.float32
    assert np.isfinite(clf.predict_log_proba(X32)).all()
    Xr, yr = _regression(shift=0.5)
    reg = MLPScratchRegressor(hidden_layer_sizes=(5,), solver=solver, max_iter=20,
                              random_state=0).fit(Xr.astype(np.float32), yr)
    assert reg.coefs_[0].dtype == np.float32
    assert reg.predict(Xr.astype(np.float32)).dtype == np.float32
    # float64 input to a float32 model is not rounded to float32 (as scikit-learn)
    by64 = reg.predict(Xr)
    assert by64.dtype == np.float64
    hidden = np.maximum(Xr @ reg.coefs_[0].astype(float) + reg.intercepts_[0], 0)
    out = hidden @ reg.coefs_[1].astype(float) + reg.intercepts_[1]
    assert reg.out_activation_ == "identity"  # the shifted targets go below 0
    np.testing.assert_allclose(by64, out.ravel(), rtol=1e-13, atol=1e-15)
    assert clf.predict_proba(X).dtype == np.float64


def test_dataframe_input_sets_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=5).fit(X, y)
    np.testing.assert_array_equal(clf.feature_names_in_, X.columns)
    assert clf.n_features_in_ == 4
    assert isinstance(X, pd.DataFrame)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X.to_numpy())


def test_multilabel_and_multioutput_shapes():
    X, Y = make_multilabel_classification(80, 6, n_classes=4, random_state=0)
    clf = MLPScratchClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    clf.fit(X, Y)
    assert clf.predict(X).shape == Y.shape
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and ((proba > 0) & (proba < 1)).all()
    Xr, Yr = _regression(n_outputs=3, shift=0.5)
    reg = MLPScratchRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    assert reg.fit(Xr, Yr).predict(Xr).shape == (len(Xr), 3)
    with pytest.warns(DataConversionWarning):  # a column y, as scikit-learn
        assert reg.fit(Xr, Yr[:, :1]).predict(Xr).shape == (len(Xr),)


# ---------------------------------------------------------------- partial_fit
def test_partial_fit_runs_one_epoch_per_call(iris):
    X, y = iris
    clf = MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    for call in range(1, 4):
        clf.partial_fit(X, y, classes=np.unique(y))
        assert clf.t_ == call * len(y)
        assert len(clf.loss_curve_) == call
        assert clf.n_iter_ == 1  # as scikit-learn: the epochs of the last call
    # the same epochs as fit with max_iter=3 (one full batch: no shuffling)
    ref = MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    ref.fit(X, y)
    np.testing.assert_allclose(clf.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(clf.coefs_[0], ref.coefs_[0], rtol=1e-12)


def test_partial_fit_rejects_early_stopping(iris):
    X, y = iris
    clf = MLPScratchClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="^partial_fit does not support "
                                         r"early_stopping=True$"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="^partial_fit does not support "
                                         r"early_stopping=True$"):
        MLPScratchRegressor(early_stopping=True).partial_fit(X, y)


# ---------------------------------------------------------------- early stopping
@pytest.fixture
def validation_spy(monkeypatch):
    """Record the validation split each epoch is scored on."""
    seen = []
    original = BaseMLPScratch._record_validation

    def spy(self, X_val, Y_val, sw_val, y_val):
        seen.append((X_val, y_val))
        return original(self, X_val, Y_val, sw_val, y_val)

    monkeypatch.setattr(BaseMLPScratch, "_record_validation", spy)
    return seen


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_early_stopping_scores_the_validation_split_with_its_weights(validation_spy,
                                                                     kind):
    """The validation loss and score of an epoch weigh the split's rows by their
    sample weights, as the training objective does."""
    from sklearn.metrics import accuracy_score, r2_score

    if kind == "regression":
        X, y = _regression()
        est = MLPScratchRegressor(hidden_layer_sizes=(5,), early_stopping=True,
                                  max_iter=1, random_state=0)
    else:
        X, y = make_classification(n_samples=150, n_features=5, n_informative=3,
                                   n_classes=2 if kind == "binary" else 3,
                                   random_state=0)
        est = MLPScratchClassifier(hidden_layer_sizes=(5,), early_stopping=True,
                                   max_iter=1, random_state=0)
    sw = np.random.RandomState(0).uniform(0.1, 5.0, len(y))
    est.fit(X, y, sample_weight=sw)  # one epoch: the model is that epoch's
    X_val, y_val = validation_spy[0]
    sw_val = sw[[np.flatnonzero((X == x).all(axis=1))[0] for x in X_val]]
    if kind == "regression":
        pred = est.predict(X_val)
        losses = [0.5 * np.average((pred - y_val) ** 2, weights=w)
                  for w in (sw_val, None)]
        scores = [r2_score(y_val, pred, sample_weight=w) for w in (sw_val, None)]
    else:
        proba, pred = est.predict_proba(X_val), est.predict(X_val)
        losses = [log_loss(y_val, proba, sample_weight=w, labels=est.classes_)
                  for w in (sw_val, None)]
        scores = [accuracy_score(y_val, pred, sample_weight=w) for w in (sw_val, None)]
    assert est.validation_loss_curve_[0] == pytest.approx(losses[0], rel=1e-9)
    assert est.validation_scores_[0] == pytest.approx(scores[0], rel=1e-9)
    # the weights make a difference here, so the equalities above say something
    assert abs(losses[0] - losses[1]) > 1e-4 and scores[0] != scores[1]


@pytest.mark.parametrize("n, n_classes, fraction", [
    (150, 3, 0.1),   # ceil(0.1 * 150) = 15
    (40, 5, 0.01),   # the number of classes: 5
    (60, 2, 0.001),  # at least 2
    (151, 3, 0.1),   # ceil(15.1) = 16
])
def test_early_stopping_validation_split_size(validation_spy, n, n_classes, fraction):
    X, y = make_classification(n, 6, n_informative=4, n_classes=n_classes,
                               random_state=0)
    clf = MLPScratchClassifier(hidden_layer_sizes=(4,), early_stopping=True,
                               validation_fraction=fraction, max_iter=2, random_state=0)
    clf.fit(X, y)
    X_val, y_val = validation_spy[0]
    expected = max(2, n_classes, math.ceil(fraction * n))
    assert len(y_val) == expected == X_val.shape[0]
    counts = np.bincount(y_val, minlength=n_classes)
    # stratified: every class, in proportion to the data
    assert counts.min() >= min(1, expected // n_classes)
    np.testing.assert_allclose(counts, expected * np.bincount(y) / n, atol=1)


def test_early_stopping_multilabel_split_holds_a_row_per_label(validation_spy):
    """A multi-label split is drawn unstratified (as scikit-learn's), of at least
    max(2, number of labels, ceil(validation_fraction * n)) rows."""
    X, Y = make_multilabel_classification(30, 5, n_classes=6, random_state=0)
    for fraction, expected in ((0.1, 6), (0.3, 9)):
        clf = MLPScratchClassifier(hidden_layer_sizes=(4,), early_stopping=True,
                                   validation_fraction=fraction, max_iter=2,
                                   random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, Y)
        X_val, Y_val = validation_spy[-1]
        assert Y_val.shape == (expected, 6) and X_val.shape[0] == expected
    with pytest.raises(ValueError, match=r"at least 6 rows .max\(2, number of classes "
                                         r"or labels.*n_samples=8"):
        clf.fit(X[:8], Y[:8])


def test_early_stopping_with_a_single_row_class_splits_without_stratifying(
        validation_spy):
    """A class of one row cannot be on both sides of a stratified split: the split is
    drawn unstratified, with a warning, where scikit-learn's MLPClassifier trains too
    (it stratifies binary targets only); its size is unchanged."""
    X, y = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]
    X, y = X[keep], y[keep]
    clf = MLPScratchClassifier(hidden_layer_sizes=(4,), early_stopping=True,
                               max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match="class 2 has a single row, too few to "
                      "stratify the validation split"):
        clf.fit(X, y)
    X_val, y_val = validation_spy[0]
    assert len(y_val) == max(3, math.ceil(0.1 * len(y))) == X_val.shape[0]
    assert len(clf.validation_scores_) == clf.n_iter_ == 2
    # every such class named; a binary target too (which scikit-learn refuses)
    rows = np.arange(len(y))
    with pytest.warns(UserWarning, match="classes 5, 6 have a single row"):
        clf.fit(X, np.where(rows == 0, 5, np.where(rows == 1, 6, 7)))
    with pytest.warns(UserWarning, match="class 5 has a single row"):
        clf.fit(X, np.where(rows == 0, 5, 7))
    assert list(clf.classes_) == [5, 7]


def test_early_stopping_on_too_little_data_raises():
    X, y = make_classification(6, 4, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1,
                               random_state=0)
    with pytest.raises(ValueError, match="n_samples=4"):
        MLPScratchClassifier(early_stopping=True, max_iter=2).fit(X[:4], y[:4])
    with pytest.raises(ValueError, match="n_samples=2"):
        MLPScratchRegressor(early_stopping=True, max_iter=2).fit(X[:2], X[:2, 0])


def test_validation_loss_curve_is_the_data_term(validation_spy, iris):
    X, y = iris
    for alpha in (0.0, 50.0):
        clf = MLPScratchClassifier(hidden_layer_sizes=(6,), early_stopping=True,
                                   n_iter_no_change=1000, max_iter=1, alpha=alpha,
                                   random_state=0).fit(X, y)
        # one epoch: the restored best weights are those the validation loss saw
        X_val, y_val = validation_spy[-1]
        assert clf.validation_loss_curve_[0] == pytest.approx(
            log_loss(y_val, clf.predict_proba(X_val)), rel=1e-9)
    clf.set_params(max_iter=15).fit(X, y)
    n = clf.n_iter_
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == n
    assert len(clf.loss_curve_) == n


def test_validation_loss_curve_is_none_without_early_stopping(iris):
    X, y = iris
    clf = MLPScratchClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(X, y)
    assert clf.validation_loss_curve_ is None and clf.validation_scores_ is None


STOPPING_RECORDS = ["validation_scores_", "validation_loss_curve_",
                    "best_validation_score_", "best_loss_", "loss_curve_", "loss_"]


def test_lbfgs_ignores_early_stopping_and_keeps_no_validation_records(iris):
    """As scikit-learn's lbfgs: early_stopping=True changes nothing. The validation
    records used to read [], -inf and [], as if early stopping had run."""
    X, y = iris
    kw = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPScratchClassifier(early_stopping=True, **kw).fit(X, y)
        plain = MLPScratchClassifier(**kw).fit(X, y)
        # and after a warm start from a fit that did stop early
        warm = MLPScratchClassifier(**{**kw, "solver": "adam"}, early_stopping=True,
                                    warm_start=True).fit(X, y)
        warm.set_params(solver="lbfgs").fit(X, y)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    for name in STOPPING_RECORDS:
        assert getattr(ours, name) == getattr(plain, name), name
    assert warm.validation_scores_ is warm.validation_loss_curve_ is None
    assert warm.best_validation_score_ is None
    assert warm.best_loss_ == min(warm.loss_curve_)


# ---------------------------------------------------------------- reporting
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_verbose_prints_one_line_per_epoch(solver, capsys, iris):
    X, y = iris
    clf = MLPScratchClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=7,
                               verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    lines = re.findall(r"^Iteration (\d+), loss = ([\d.]+)$", out, flags=re.M)
    assert len(lines) == len(clf.loss_curve_) == clf.n_iter_ == 7
    assert [int(i) for i, _ in lines] == list(range(1, 8))
    np.testing.assert_allclose([float(v) for _, v in lines], clf.loss_curve_, atol=1e-8)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_convergence_warning_when_max_iter_is_reached(solver, iris):
    X, y = iris
    clf = MLPScratchClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=3,
                               random_state=0)
    with pytest.warns(ConvergenceWarning, match="3"):
        clf.fit(X, y)
    assert clf.n_iter_ == 3


# ---------------------------------------------------------------- metadata routing
def test_sample_weight_is_routed_through_pipeline_and_grid_search(iris):
    X, y = iris
    sw = np.where(y == 1, 5.0, 0.5)
    with sklearn.config_context(enable_metadata_routing=True):
        mlp = MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                             mlp.set_fit_request(sample_weight=True)
                             .set_score_request(sample_weight=True))
        search = GridSearchCV(pipe, {"mlpscratchclassifier__alpha": [1e-4]}, cv=3)
        search.fit(X, y, sample_weight=sw)
        direct = clone(mlp).fit(StandardScaler().fit_transform(X), y, sample_weight=sw)
        unweighted = clone(mlp).fit(StandardScaler().fit_transform(X), y)
    assert not sklearn.get_config()["enable_metadata_routing"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    routed = search.best_estimator_[-1]
    np.testing.assert_allclose(routed.coefs_[0], direct.coefs_[0], rtol=1e-10)
    assert not np.allclose(routed.coefs_[0], unweighted.coefs_[0])


def test_a_class_missing_from_the_first_partial_fit_batch_is_learned():
    """The first batch holds only zeros: the other nine classes start half a row from
    0 (log(0.005)), not at log(1e-7), 16 logits below, where Adam left the model
    predicting zeros for 50 batches and at 0.74 training accuracy after 200."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    order = np.random.RandomState(0).permutation(len(y))
    zeros = np.flatnonzero(y == 0)[:100]
    clf = MLPScratchClassifier((32,), random_state=0)
    clf.partial_fit(X[zeros], y[zeros], classes=np.arange(10))
    # half a row from 0, then the batch's one Adam step (about learning_rate_init)
    np.testing.assert_allclose(clf.intercepts_[-1][1:], np.log(0.005), atol=2e-3)
    for k in range(200):
        batch = order[(k * 100) % 1700:(k * 100) % 1700 + 100]
        clf.partial_fit(X[batch], y[batch])
    assert clf.score(X, y) > 0.88


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_is_never_densified(fmt, solver):
    """1,000 x 50,000 with 1,000 stored values: a dense copy of X would take 400 MB
    (traced, as numpy reports its allocations to tracemalloc), the weights 0.8 MB per
    copy (L-BFGS-B keeps 20 and more). fit, partial_fit and the predictions stay far
    below the dense size."""
    import tracemalloc

    rng = np.random.RandomState(0)
    rows, cols = np.arange(1_000), rng.randint(0, 50_000, 1_000)
    X = sp.coo_matrix((rng.randn(1_000), (rows, cols)), shape=(1_000, 50_000)).asformat(fmt)
    y = np.arange(1_000) % 2
    clf = MLPScratchClassifier(hidden_layer_sizes=(2,), solver=solver, max_iter=2,
                               random_state=0)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
            if solver == "adam":
                clf.partial_fit(X, y)
        clf.predict_proba(X)
        clf.score(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MB"


def test_a_flat_loss_is_no_worse_than_the_best_and_trains_on():
    """scikit-learn's rule counts an epoch against the fit only when its loss exceeds
    best_loss_ - tol: with tol=0 a loss equal to the best is no worse. init="zeros" and
    alpha=0 start at the best constant model, which the gradient does not leave (the
    output bias at the target mean, identical units in the hidden layer), so every
    epoch's loss is the same and the fit runs to max_iter. (SGD: Adam divides the
    gradient's rounding errors by their own size and takes full steps.)"""
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    clf = MLPScratchClassifier(hidden_layer_sizes=(5,), init="zeros", alpha=0.0,
                               tol=0.0, solver="sgd", n_iter_no_change=3, max_iter=20,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert len(set(clf.loss_curve_)) == 1
    assert clf.n_iter_ == 20


@pytest.mark.parametrize("param", ["activation", "output_activation"])
def test_a_fitted_model_shares_no_activation_object_with_its_parameters(param):
    """Changing the object passed (or set_params on it, or on another estimator that
    was given the same object) after the fit leaves the fitted model's predictions."""
    X, y = make_regression(n_samples=60, n_features=4, random_state=0)
    act = LeakyReLU(0.1)
    est = MLPScratchRegressor(hidden_layer_sizes=(5,), solver="lbfgs", random_state=0,
                              **{param: act}).fit(X, y - 200)
    pred = est.predict(X)
    act.negative_slope = 0.9
    np.testing.assert_array_equal(est.predict(X), pred)
    est.set_params(**{f"{param}__negative_slope": 0.5})
    np.testing.assert_array_equal(est.predict(X), pred)


@pytest.mark.parametrize("name", ["coefs_", "intercepts_"])
def test_weights_assigned_as_something_else_than_a_list_are_named(name, iris):
    X, y = iris
    est = MLPScratchClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    setattr(est, name, None)
    with pytest.raises(ValueError, match=f"{name} must be a list of arrays"):
        est.predict(X)
