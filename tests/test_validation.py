"""Every bad input to fit, partial_fit, predict* and score raises a clear error (SPEC 6).

Each family is one parametrized test; the expected message names the parameter or the
problem, so a test passes only for the right error, not for any ValueError.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch.activations import ELU, LeakyReLU, Sigmoid
from sknn_scratch.initializers import (Initializer, RandomNormal, RandomUniform,
                                       VarianceScaling)

RNG = np.random.RandomState(0)
X = RNG.randn(30, 3)
Y_CLS = np.arange(30) % 3
Y_REG = X @ np.array([1.0, -2.0, 0.5])
SMALL = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)


def _with(X, i, j, value):
    X = np.array(X, dtype=float)
    X[i, j] = value
    return X


def _estimators():
    return [
        pytest.param(MLPScratchClassifier, Y_CLS, id="classifier"),
        pytest.param(MLPScratchRegressor, Y_REG, id="regressor"),
    ]


def _quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


@pytest.fixture(scope="module", params=["classifier", "regressor"])
def fitted(request):
    Est, y = {"classifier": (MLPScratchClassifier, Y_CLS),
              "regressor": (MLPScratchRegressor, Y_REG)}[request.param]
    return _quiet_fit(Est(**SMALL), X, y), y


BAD_X = [
    ("nan", lambda: _with(X, 0, 0, np.nan), "Input X contains NaN"),
    ("inf", lambda: _with(X, 1, 2, np.inf), "Input X contains infinity"),
    ("-inf", lambda: _with(X, 1, 2, -np.inf), "Input X contains infinity"),
    ("empty", lambda: X[:0], r"0 sample\(s\)"),
    ("no features", lambda: X[:, :0], r"0 feature\(s\)"),
    ("1-D", lambda: X[:, 0], "Expected 2D array, got 1D array"),
    ("3-D", lambda: X[:, :, None], "Found array with dim 3"),
    ("strings", lambda: np.full(X.shape, "a"), "could not convert string to float"),
    ("objects", lambda: np.full(X.shape, "a", dtype=object),
     "could not convert string to float"),
    ("complex", lambda: X + 1j, "Complex data not supported"),
]


@pytest.mark.parametrize("Est, y", _estimators())
@pytest.mark.parametrize("make_X, match", [pytest.param(f, m, id=i) for i, f, m in BAD_X])
def test_fit_rejects_bad_X(Est, y, make_X, match):
    Xb = make_X()
    n = Xb.shape[0] if Xb.ndim else 0
    with pytest.raises(ValueError, match=match):
        Est(**SMALL).fit(Xb, y[:n] if n else y[:0])


@pytest.mark.parametrize("Est, y", _estimators())
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_rejects_mismatched_lengths(Est, y, method):
    kw = {"classes": np.unique(Y_CLS)} if Est is MLPScratchClassifier and \
        method == "partial_fit" else {}
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        getattr(Est(**SMALL), method)(X, y[:-1], **kw)


BAD_Y = [
    (MLPScratchRegressor, lambda: _with(Y_REG[:, None], 3, 0, np.nan).ravel(),
     "Input y contains NaN"),
    (MLPScratchRegressor, lambda: _with(Y_REG[:, None], 3, 0, np.inf).ravel(),
     "Input y contains infinity"),
    (MLPScratchRegressor, lambda: np.full(30, "a"), "could not convert string to float"),
    (MLPScratchRegressor, lambda: Y_REG + 1j, "Complex data not supported"),
    (MLPScratchClassifier, lambda: _with(Y_CLS[:, None], 3, 0, np.nan).ravel(),
     "Input y contains NaN"),
    (MLPScratchClassifier, lambda: Y_REG, "Unknown label type: continuous"),
]


@pytest.mark.parametrize("Est, make_y, match", BAD_Y)
def test_fit_rejects_bad_y(Est, make_y, match):
    with pytest.raises(ValueError, match=match):
        Est(**SMALL).fit(X, make_y())


BAD_WEIGHTS = [
    ("negative", -np.ones(30), "Negative values in data passed to `sample_weight`"),
    ("nan", _with(np.ones((30, 1)), 4, 0, np.nan).ravel(),
     "Input sample_weight contains NaN"),
    ("inf", _with(np.ones((30, 1)), 4, 0, np.inf).ravel(),
     "Input sample_weight contains infinity"),
    ("too short", np.ones(29), r"sample_weight.shape == \(29,\), expected \(30,\)"),
    ("2-D", np.ones((30, 2)), "Sample weights must be 1D array or scalar"),
    ("all zero", np.zeros(30), "at least one non-zero|sum to zero"),
    ("complex", np.ones(30) + 1j, "Complex data not supported"),
    ("sum overflows", np.full(30, 1e308), "sum to inf, which the objective cannot be "
                                          "divided by"),
    ("sum subnormal", np.full(30, 1e-320), "which the objective cannot be divided by"),
    ("some subnormal", np.r_[np.ones(20), np.full(10, 1e-320)],
     "A sample weight .* of 9.99989e-321 is below the smallest normal float64"),
]


@pytest.mark.parametrize("Est, y", _estimators())
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("sw, match", [pytest.param(w, m, id=i) for i, w, m in BAD_WEIGHTS])
def test_rejects_bad_sample_weight(Est, y, method, sw, match):
    kw = {"classes": np.unique(Y_CLS)} if Est is MLPScratchClassifier and \
        method == "partial_fit" else {}
    with pytest.raises(ValueError, match=match):
        getattr(Est(**SMALL), method)(X, y, sample_weight=sw, **kw)


def _predict_calls(est, y):
    calls = {"predict": lambda Xp: est.predict(Xp),
             "score": lambda Xp: est.score(Xp, y[:len(Xp)])}
    if isinstance(est, MLPScratchClassifier):
        calls["predict_proba"] = lambda Xp: est.predict_proba(Xp)
        calls["predict_log_proba"] = lambda Xp: est.predict_log_proba(Xp)
    return calls


BAD_X_PREDICT = BAD_X + [
    ("too few features", lambda: X[:, :2],
     "X has 2 features, but MLPScratch(Classifier|Regressor) is expecting 3"),
    ("too many features", lambda: np.hstack([X, X]),
     "X has 6 features, but MLPScratch(Classifier|Regressor) is expecting 3"),
]


@pytest.mark.parametrize("make_X, match",
                         [pytest.param(f, m, id=i) for i, f, m in BAD_X_PREDICT])
def test_predict_and_score_reject_bad_X(fitted, make_X, match):
    est, y = fitted
    for name, call in _predict_calls(est, y).items():
        with pytest.raises(ValueError, match=match):
            call(make_X())


def test_score_rejects_mismatched_y(fitted):
    est, y = fitted
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.score(X, y[:-1])


@pytest.mark.parametrize("Est, y", _estimators())
def test_unfitted_estimator_raises_not_fitted(Est, y):
    est = Est(**SMALL)
    for name, call in _predict_calls(est, y).items():
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call(X)


# ----------------------------------------------------------------- partial_fit family
def _classifier_pf():
    est = MLPScratchClassifier(**SMALL)
    return est.partial_fit(X, Y_CLS, classes=[0, 1, 2])


BAD_PARTIAL_FIT = [
    ("no classes on first call", lambda: MLPScratchClassifier(**SMALL),
     lambda est: est.partial_fit(X, Y_CLS), ValueError, "classes must be passed"),
    ("label outside classes on first call", lambda: MLPScratchClassifier(**SMALL),
     lambda est: est.partial_fit(X, Y_CLS, classes=[0, 1]), ValueError,
     re.escape("`y` has labels [2] that are not in `classes`")),
    ("unseen label later", _classifier_pf,
     lambda est: est.partial_fit(X, Y_CLS + 1), ValueError,
     "`y` has classes not in `self.classes_`"),
    ("classes changed", _classifier_pf,
     lambda est: est.partial_fit(X, Y_CLS, classes=[0, 1, 2, 3]), ValueError,
     "is not the same as on the first call"),
    # a multi-label y's classes are its columns; other classes used to be accepted,
    # then refused on the next call as "not the same as on the first call"
    ("multi-label classes not its columns", lambda: MLPScratchClassifier(**SMALL),
     lambda est: est.partial_fit(X, np.c_[Y_CLS == 0, Y_CLS == 1],
                                 classes=[0, 1, 2]), ValueError,
     re.escape("`classes=[0, 1, 2]` does not name the 2 indicator columns")),
    # used to train on y's one-hot encoding as if it were the indicator columns
    ("single-label y for a multi-label model",
     lambda: MLPScratchClassifier(**SMALL).partial_fit(
         X, np.c_[Y_CLS == 0, Y_CLS == 1, Y_CLS == 2], classes=[0, 1, 2]),
     lambda est: est.partial_fit(X, Y_CLS), ValueError,
     "y is single-label, but the model was fitted on multi-label targets"),
    ("multi-label y for a single-label model", _classifier_pf,
     lambda est: est.partial_fit(X, np.c_[Y_CLS == 0, Y_CLS == 1, Y_CLS == 2]),
     ValueError, "y is multi-label, but the model was fitted on single-label targets"),
    ("balanced class_weight",
     lambda: MLPScratchClassifier(class_weight="balanced", **SMALL),
     lambda est: est.partial_fit(X, Y_CLS, classes=[0, 1, 2]), ValueError,
     "class_weight='balanced' is not supported by partial_fit"),
    ("early_stopping", lambda: MLPScratchRegressor(early_stopping=True, **SMALL),
     lambda est: est.partial_fit(X, Y_REG), ValueError,
     re.escape("partial_fit does not support early_stopping=True")),
    ("wrong n_features later", _classifier_pf,
     lambda est: est.partial_fit(X[:, :2], Y_CLS), ValueError,
     "X has 2 features, but MLPScratchClassifier is expecting 3"),
    ("wrong n_outputs later",
     lambda: MLPScratchRegressor(**SMALL).partial_fit(X, Y_REG),
     lambda est: est.partial_fit(X, np.c_[Y_REG, Y_REG]), ValueError,
     "y has 2 outputs but the model was fitted with 1"),
    ("negative target after non-negative",
     lambda: MLPScratchRegressor(**SMALL).partial_fit(X, np.abs(Y_REG)),
     lambda est: est.partial_fit(X, Y_REG), ValueError,
     "y has negative values .* output activation 'relu'"),
]


@pytest.mark.parametrize("make, call, exc, match",
                         [pytest.param(*c[1:], id=c[0]) for c in BAD_PARTIAL_FIT])
def test_partial_fit_rejects(make, call, exc, match):
    est = make()
    with pytest.raises(exc, match=match):
        call(est)


@pytest.mark.parametrize("Est, y", _estimators())
def test_partial_fit_not_available_for_lbfgs(Est, y):
    est = Est(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as exc:
        est.partial_fit(X, y)
    assert "'lbfgs' is not stochastic" in str(exc.value.__cause__)


# --------------------------------------------------------------- targets vs output
@pytest.mark.parametrize("params, match", [
    (dict(output_activation="relu"), "negative values .* 'relu' can only predict"),
    # not output_activation='identity', which the Poisson loss refuses
    (dict(loss="poisson"), "negative values .* 'exp' can only predict values >= 0. The "
                           "Poisson deviance is for targets >= 0: use loss='squared_"),
    (dict(output_activation="exp"), "negative values .* 'exp' can only predict"),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_negative_targets_with_non_negative_output(params, match, method):
    with pytest.raises(ValueError, match=match):
        getattr(MLPScratchRegressor(**SMALL, **params), method)(X, Y_REG)


@pytest.mark.parametrize("output, inside, outside, bounds", [
    ("sigmoid", np.linspace(0, 1, 30), np.linspace(0, 1.5, 30), r"\[0, 1\]"),
    ("tanh", np.linspace(-1, 1, 30), np.linspace(-2, 0, 30), r"\[-1, 1\]"),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_targets_beyond_a_bounded_output_are_refused(output, inside, outside, bounds,
                                                      method):
    """A sigmoid output fitted on targets up to 166 ended predicting at most 1, with
    no word; targets on the bounds themselves train, and so do targets a scaler's
    rounding puts a unit in the last place beyond them."""
    est = MLPScratchRegressor(**SMALL, output_activation=output)
    n_out = np.count_nonzero(np.abs(outside) > 1)
    low, high = float(outside.min()), float(outside.max())
    with pytest.raises(ValueError, match=rf"y has {n_out} values outside {bounds} \(min "
                       rf"{low!r}, max {high!r}\), the range of the output activation "
                       rf"'{output}': no weights can predict them. Bring y into that "
                       r"range, or use output_activation='identity' \(or 'auto'\)"):
        getattr(est, method)(X, outside)
    _quiet_fit(est, X, inside)
    rounded = inside.copy()
    rounded[-1] = np.nextafter(1.0, 2.0)  # MinMaxScaler gives 1.0000000000000002
    _quiet_fit(est, X, rounded)


@pytest.mark.parametrize("output, low", [
    (ELU(alpha=0.5), -0.5), ("silu", -0.2784645427610738),
    ("gelu", -0.16997120747990363)])
def test_targets_below_an_output_bounded_below_are_refused(output, low):
    """ELU, SiLU and GELU outputs never go below their minimum: a fit on targets down
    to -175 ended on it with no word; targets down to the minimum train."""
    est = MLPScratchRegressor(**SMALL, output_activation=output)
    name = "elu" if isinstance(output, ELU) else output
    y = np.linspace(-3, 3, 30)
    below = np.count_nonzero(y < low)
    with pytest.raises(ValueError, match=rf"y has {below} values outside \[{low:g}, "
                       rf"inf\] .* the range of the output activation '{name}'"):
        est.fit(X, y)
    _quiet_fit(est, X, np.linspace(low, 3, 30))


@pytest.mark.parametrize("output", [LeakyReLU(negative_slope=0.0),
                                    LeakyReLU(negative_slope=-0.5), ELU(alpha=-1.0)])
def test_outputs_whose_parameter_keeps_them_non_negative_refuse_negative_targets(output):
    est = MLPScratchRegressor(**SMALL, output_activation=output)
    with pytest.raises(ValueError, match="negative values .* can only predict values >= 0"):
        est.fit(X, Y_REG)
    _quiet_fit(est, X, np.abs(Y_REG))
    _quiet_fit(MLPScratchRegressor(**SMALL, output_activation=LeakyReLU()), X, Y_REG)


def test_negative_targets_with_a_softplus_output_are_refused():
    est = MLPScratchRegressor(**SMALL, output_activation="softplus")
    with pytest.raises(ValueError,
                       match="negative values .* 'softplus' can only predict values >= 0"):
        est.fit(X, Y_REG)
    _quiet_fit(est, X, np.abs(Y_REG))


def test_a_continued_fit_beyond_its_bounded_output_says_how_to_change_it():
    """'auto' keeps a continued fit's output: the way on is 'identity', set now."""
    est = _quiet_fit(MLPScratchRegressor(**SMALL, output_activation="sigmoid",
                                         warm_start=True), X, np.linspace(0, 1, 30))
    with pytest.raises(ValueError, match=r"y has 1 value outside \[0, 1\] .* or "
                       r"set_params\(output_activation='identity'\) and the continued "
                       r"fit takes it up.$"):
        est.fit(X, np.r_[np.linspace(0, 1, 29), 2.0])
    est.set_params(output_activation="identity")
    _quiet_fit(est, X, np.r_[np.linspace(0, 1, 29), 2.0])
    assert est.out_activation_ == "identity"


def test_a_subclass_that_computes_its_own_values_is_not_held_to_its_parents_range():
    class TwiceSigmoid(Sigmoid):
        def forward(self, z):
            return 2 * super().forward(z)

        def derivative(self, z):
            return 2 * super().derivative(z)

    assert TwiceSigmoid.value_range == (-np.inf, np.inf)
    assert Sigmoid.value_range == (0.0, 1.0)
    _quiet_fit(MLPScratchRegressor(**SMALL, output_activation=TwiceSigmoid()), X,
               np.linspace(0, 1.9, 30))


@pytest.mark.parametrize("continue_with", ["partial_fit", "warm_start"])
def test_a_stream_whose_later_targets_turn_negative_is_told_why_relu(continue_with):
    """'auto' picks the ReLU output from the first batch's targets, all >= 0: a later
    batch with negative ones is refused, and the message says where the ReLU came from
    (scikit-learn's identity output would have trained on)."""
    est = MLPScratchRegressor(**SMALL, warm_start=continue_with == "warm_start")
    later = getattr(est, "partial_fit" if continue_with == "partial_fit" else "fit")
    later(X, np.abs(Y_REG))
    assert est.out_activation_ == "relu"
    with pytest.raises(ValueError, match=r"With output_activation='auto' a continued "
                       r"fit keeps the output activation of the first fit, which 'auto' "
                       r"picks from that fit's targets \(ReLU when they are all >= 0, as "
                       r"in a stream's first partial_fit batch\); set_params\("
                       r"output_activation='identity'\) and the continued fit takes it"):
        later(X, Y_REG)
    # which it does
    later.__self__.set_params(output_activation="identity")
    assert later(X, Y_REG).out_activation_ == "identity"
    # an explicit ReLU says only what is wrong
    for fit in ["fit", "partial_fit"]:
        est = MLPScratchRegressor(**SMALL, output_activation="relu")
        getattr(est, fit)(X, np.abs(Y_REG))
        with pytest.raises(ValueError) as exc:
            est.partial_fit(X, Y_REG)
        assert "'relu' can only predict" in str(exc.value)
        assert "continued fit keeps" not in str(exc.value)


@pytest.mark.parametrize("Est, y, params, match", [
    (MLPScratchClassifier, Y_CLS, dict(output_activation="sigmoid"),
     "output_activation='sigmoid' does not suit a multi-class target"),
    (MLPScratchClassifier, Y_CLS % 2, dict(output_activation="softmax"),
     "output_activation='softmax' does not suit a binary"),
    (MLPScratchRegressor, Y_REG, dict(output_activation="softmax"),
     "output_activation='softmax' is for classification"),
    (MLPScratchRegressor, np.abs(Y_REG), dict(loss="poisson", output_activation="relu"),
     "loss='poisson' uses the log link"),
])
def test_output_activation_incompatible_with_target(Est, y, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        Est(**SMALL, **params).fit(X, y)


# ------------------------------------------------------------------ bad parameters
BAD_PARAMS = [
    ("alpha", -1.0), ("solver", "newton"), ("learning_rate", "fast"),
    ("learning_rate_init", 0.0), ("power_t", -0.5), ("max_iter", 0), ("max_iter", 2.5),
    ("batch_size", 0), ("batch_size", "big"), ("shuffle", "yes"), ("tol", -1e-3),
    ("momentum", 1.5), ("nesterovs_momentum", 1.5), ("early_stopping", "no"),
    ("validation_fraction", 1.0), ("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0),
    ("n_iter_no_change", 0), ("max_fun", 0), ("warm_start", "no"),
    ("random_state", "seed"), ("hidden_layer_sizes", "wide"),
    ("hidden_layer_sizes", 2.5), ("hidden_layer_sizes", 0),
]


@pytest.mark.parametrize("Est, y", _estimators())
@pytest.mark.parametrize("param, value", BAD_PARAMS)
def test_bad_parameter_value_names_parameter(Est, y, param, value):
    with pytest.raises((ValueError, TypeError), match=f"'{param}' parameter"):
        Est(**{**SMALL, param: value}).fit(X, y)


@pytest.mark.parametrize("Est, y", _estimators())
@pytest.mark.parametrize("given, meant", [(True, 1), (np.int64(7), 7), (np.uint8(7), 7)])
def test_batch_size_of_any_integral_type_trains_as_its_int(Est, y, given, meant):
    """scikit-learn accepts any Integral batch_size, a bool or a numpy integer; True
    used to reach the first batch's buffers and fail there with a bare TypeError."""
    ours = _quiet_fit(Est(**SMALL, batch_size=given), X, y)
    plain = _quiet_fit(Est(**SMALL, batch_size=meant), X, y)
    assert ours.loss_curve_ == plain.loss_curve_


BAD_SPECS = [
    ("hidden_layer_sizes", (3, 0), "hidden_layer_sizes must be positive integers"),
    ("hidden_layer_sizes", (3, -2), "hidden_layer_sizes must be positive integers"),
    # scikit-learn raises a bare TypeError for these; True used to train as 1 unit
    ("hidden_layer_sizes", True, r"positive integers, got \[True\] \(a bool is not"),
    ("hidden_layer_sizes", (4, True), r"got \[4, True\] \(a bool is not a layer size"),
    ("hidden_layer_sizes", (2.5,), r"positive integers, got \[2.5\]\.$"),
    ("activation", "swoosh", r"Invalid activation='swoosh'.*Use one of \["),
    ("activation", ["relu", "tanh"], "activation has 2 entries but hidden_layer_sizes "
                                     "has 1 layers"),
    ("activation", "softmax", "can only be an output activation"),
    ("init", "gaussian", r"Invalid init='gaussian'.*Use one of \["),
    ("init", ["he_uniform"], "init has 1 entries but the network has 2 layers"),
    ("output_activation", "swoosh", "Invalid output_activation='swoosh'"),
    # parameters of the objects, checked at fit: a NaN slope used to train into
    # "Solver produced non-finite parameter weights", a negative scale to warn in sqrt
    ("activation", LeakyReLU(np.nan), re.escape(
        "Invalid activation=LeakyReLU(negative_slope=nan): the negative_slope of "
        "LeakyReLU must be a finite real number, got nan.")),
    ("activation", [ELU(alpha=None)], "the alpha of ELU must be a finite real number"),
    ("init", VarianceScaling(scale=-1.0), re.escape(
        "the scale of VarianceScaling must be a finite real number >= 0.0, got -1.0")),
    ("init", RandomNormal(std="wide"), "the std of RandomNormal must be a finite real"),
    # checked at fit too, not at the first draw (which named no parameter)
    ("init", VarianceScaling(mode="fan_mean"),
     r"Invalid init=VarianceScaling\(.*mode='fan_mean'.*\): the mode of VarianceScaling "
     r"must be one of \['fan_avg', 'fan_in', 'fan_out'\], got 'fan_mean'\.$"),
    ("init", [VarianceScaling(distribution="Normal"), "zeros"],
     "the distribution of VarianceScaling must be one of \\['normal', 'uniform'\\]"),
    ("init", ["zeros", RandomUniform(limit=np.inf)], "the limit of RandomUniform must"),
]


@pytest.mark.parametrize("Est, y", _estimators())
@pytest.mark.parametrize("param, value, match", BAD_SPECS)
def test_bad_component_spec_names_parameter(Est, y, param, value, match):
    """scikit-learn's own error for a bad parameter value: both a ValueError and a
    TypeError (scikit-learn raises the one or the other for bad layer sizes)."""
    with pytest.raises(InvalidParameterError, match=match):
        Est(**{**SMALL, param: value}).fit(X, y)


@pytest.mark.parametrize("class_weight, match", [
    ("even", "'class_weight' parameter"),
    ({0: -1.0, 1: 1.0, 2: 1.0}, r"class_weight\[0\] must be a finite number >= 0, "
                                r"got -1.0"),
    ({0: 1.0, 1: np.nan}, r"class_weight\[1\] must be a finite number >= 0, got nan"),
    ({2: "a"}, r"class_weight\[2\] must be a finite number >= 0, got 'a'"),
    ({0: 2.0, 5: 1.0}, r"class_weight has keys that are not classes of y: \[5\] \(the "
                       r"classes are \[0, 1, 2\]\). A dict that leaves classes out"),
    ({"0": 2.0}, r"keys that are not classes of y: \['0'\]"),
    ({0: 0.0, 1: 0.0, 2: 0.0}, "sum to zero"),
])
def test_bad_class_weight(class_weight, match):
    with pytest.raises(ValueError, match=match):
        MLPScratchClassifier(class_weight=class_weight, **SMALL).fit(X, Y_CLS)


def test_a_class_weight_dict_keyed_by_digit_labels_is_told_to_use_integers():
    """Labels "0", "1" are looked up as 0, 1 (scikit-learn's rule): the error listed
    the keys '0', '1' as not among the classes '0', '1', and said no more."""
    y = np.array(["0", "1", "2"])[Y_CLS]
    with pytest.raises(ValueError, match=r"not classes of y: \['0', '1'\] \(the classes "
                       r"are \['0', '1', '2'\]\).* Labels that read as integers are "
                       r"looked up as integers, as in scikit-learn's compute_class_weight: "
                       r"key '0' as 0.$"):
        MLPScratchClassifier(class_weight={"0": 1.0, "1": 5.0}, **SMALL).fit(X, y)
    a = _quiet_fit(MLPScratchClassifier(class_weight={0: 1.0, 1: 5.0}, **SMALL), X, y)
    b = _quiet_fit(MLPScratchClassifier(**SMALL), X, y,
                   sample_weight=np.array([1.0, 5.0, 1.0])[Y_CLS])
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


def test_a_class_weight_dict_that_names_every_class_may_hold_other_keys():
    """As scikit-learn's compute_class_weight: a fold of a cross-validation that lacks
    a class the dict names trains (a key 5 ignored), weighing its classes as named."""
    a = _quiet_fit(MLPScratchClassifier(class_weight={0: 2.0, 1: 1.0, 2: 3.0, 5: 4.0},
                                        **SMALL), X, Y_CLS)
    b = _quiet_fit(MLPScratchClassifier(**SMALL), X, Y_CLS,
                   sample_weight=np.array([2.0, 1.0, 3.0])[Y_CLS])
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


def test_a_class_weight_dict_with_multi_label_targets_says_what_works():
    Y = np.column_stack([Y_CLS == 0, Y_CLS == 1]).astype(int)
    with pytest.raises(ValueError, match="y is multi-label .2 indicator columns.. Use "
                                         "class_weight='balanced'"):
        MLPScratchClassifier(class_weight={0: 1, 1: 2}, **SMALL).fit(X, Y)
    _quiet_fit(MLPScratchClassifier(class_weight="balanced", **SMALL), X, Y)


class _Returns(Initializer):
    def __init__(self, what="shape"):
        self.what = what

    def __call__(self, fan_in, fan_out, random_state):
        return {"shape": np.ones((2, 2)), "scalar": np.ones(1), "none": None,
                "nan": np.full((fan_in, fan_out), np.nan),
                "complex": np.ones((fan_in, fan_out)) * 1j}[self.what]


@pytest.mark.parametrize("what, problem", [
    ("shape", r"an array of shape \(2, 2\) and dtype float64"),
    ("scalar", r"an array of shape \(1,\) and dtype float64"), ("none", "a NoneType"),
    ("nan", "weights that are not finite in float64"),
    ("complex", r"an array of shape \(3, 4\) and dtype complex128"),
])
def test_an_initializer_returning_the_wrong_weights_is_named(what, problem):
    with pytest.raises(InvalidParameterError,
                       match=rf"init=_Returns\(what='{what}'\) returned {problem} for a "
                             r"layer of 3 inputs and 4 units: .* = \(3, 4\)"):
        MLPScratchRegressor(init=_Returns(what), **SMALL).fit(X, Y_REG)


def test_a_value_error_raised_by_an_initializer_names_init():
    class Picky(Initializer):
        def __call__(self, fan_in, fan_out, random_state):
            raise ValueError(f"no layers of {fan_in} inputs")

    with pytest.raises(InvalidParameterError,
                       match=r"^Invalid init=Picky\(\): no layers of 3 inputs$"):
        MLPScratchRegressor(init=Picky(), **SMALL).fit(X, Y_REG)


def test_initial_weights_beyond_float32_are_named_for_float32_input():
    class Huge(Initializer):
        def __call__(self, fan_in, fan_out, random_state):
            return np.full((fan_in, fan_out), 1e39)  # finite in float64

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(InvalidParameterError,
                           match=r"init=Huge\(\) returned weights that are not "
                                 "finite in float32"):
            MLPScratchRegressor(init=Huge(), **SMALL).fit(X.astype(np.float32), Y_REG)


def test_early_stopping_on_too_little_data_names_n_samples():
    est = MLPScratchClassifier(early_stopping=True, **SMALL)
    with pytest.raises(ValueError, match="n_samples=4"):
        est.fit(X[:4], Y_CLS[:4])


# ------------------------------------------------- a failed refit changes nothing
@pytest.mark.parametrize("bad_call", [
    pytest.param(lambda est: est.fit(X[:, :2], Y_CLS % 2, sample_weight=-np.ones(30)),
                 id="bad sample_weight, other features"),
    pytest.param(lambda est: est.set_params(output_activation="softmax")
                 .fit(X[:, :2], Y_CLS % 2), id="bad output activation"),
    pytest.param(lambda est: est.set_params(activation="swoosh").fit(X, Y_CLS % 2),
                 id="bad activation"),
])
def test_failed_refit_leaves_fitted_classifier_intact(bad_call):
    est = _quiet_fit(MLPScratchClassifier(**SMALL), X, Y_CLS)
    params = est.get_params()
    proba, classes = est.predict_proba(X), est.classes_.copy()
    with pytest.raises(ValueError):
        bad_call(est)
    est.set_params(**params)
    np.testing.assert_array_equal(est.classes_, classes)
    assert est.n_features_in_ == 3
    np.testing.assert_array_equal(est.predict_proba(X), proba)


@pytest.mark.parametrize("Est, y", _estimators())
def test_a_batch_size_beyond_the_rows_warns_in_scikit_learns_words(Est, y):
    """Warning filters written for scikit-learn's MLP catch ours too."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    theirs = MLPClassifier if Est is MLPScratchClassifier else MLPRegressor
    messages = []
    for batch_size in (10**6, len(X)):  # beyond the rows: clipped; all of them: no
        for est in (theirs(hidden_layer_sizes=(3,), max_iter=1, batch_size=batch_size),
                    Est(**{**SMALL, "batch_size": batch_size})):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est.fit(X, y)
            messages.append([str(w.message) for w in caught
                             if w.category is UserWarning])
    assert messages[0] and messages[1] == messages[0]
    assert messages[2] == messages[3] == []


def test_float64_targets_beyond_float32_are_refused_for_float32_x():
    """float32 X trains in float32: a finite float64 target beyond its range used to
    become inf, warn in numpy and fail as "Solver produced non-finite weights"."""
    X32 = X.astype(np.float32)
    est = MLPScratchRegressor(**SMALL)
    for y_big in (Y_REG * 1e150, np.full(len(X), 1e39)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="y has values beyond the range of "
                               "float32, the dtype of X, which the model trains in"):
                est.fit(X32, y_big)
            with pytest.raises(ValueError, match="beyond the range of float32"):
                est.partial_fit(X32, y_big)
    assert not hasattr(est, "coefs_")
    est.set_params(warm_start=True).fit(X32, Y_REG * 1e3)  # within float32: trains
    assert est.coefs_[0].dtype == np.float32
    before = pickle.dumps(est)
    # continued, float64 X trains in the fitted float32 weights: the advice says so
    for method in ("fit", "partial_fit"):
        with pytest.raises(ValueError, match=r"float32, the dtype of this model's "
                           r"weights .* Refit it from float64 X \(warm_start=False\)"):
            getattr(est, method)(X, Y_REG * 1e150)
    assert pickle.dumps(est) == before


def test_early_stopping_with_no_validation_fraction_is_refused():
    """scikit-learn's split refuses test_size=0.0; ours used to hold out 2 rows."""
    with pytest.raises(ValueError, match="it must be above 0, got 0.0"):
        MLPScratchClassifier(early_stopping=True, validation_fraction=0.0,
                             **SMALL).fit(X, Y_CLS)


def test_an_empty_classes_is_named():
    X = np.random.RandomState(0).randn(10, 2)
    with pytest.raises(ValueError, match="classes is empty"):
        MLPScratchClassifier().partial_fit(X, [0, 1] * 5, classes=[])


def test_classes_must_be_one_dimensional_or_a_column():
    """classes=[[0, 1]] built a model of multi-label outputs for a single-label y,
    whose predict then failed with an IndexError; a column of labels is raveled."""
    X = np.random.RandomState(0).randn(10, 2)
    est = MLPScratchClassifier(**SMALL)
    for classes in ([[0, 1]], np.array([[0, 1], [1, 0]])):
        with pytest.raises(ValueError, match=r"classes must be a 1-D array of class "
                                             rf"labels .* shape \({len(classes)}, 2\)"):
            est.partial_fit(X, [0, 1] * 5, classes=classes)
        assert not hasattr(est, "coefs_")
    # a column of labels is taken as scikit-learn takes it
    est.partial_fit(X, [0, 1] * 5, classes=np.array([[0], [1]]))
    np.testing.assert_array_equal(est.classes_, [0, 1])
    assert est.predict(X).shape == (10,)
    with pytest.raises(ValueError, match="classes must be a 1-D array"):
        est.partial_fit(X, [0, 1] * 5, classes=[[0, 1]])


def test_a_memory_error_is_not_blamed_on_init():
    """A layer too large to allocate raises numpy's MemoryError, as scikit-learn's
    MLP does, not an invalid init."""
    class OutOfMemory(Initializer):
        def __call__(self, fan_in, fan_out, random_state):
            raise MemoryError(f"Unable to allocate ({fan_in}, {fan_out})")

    with pytest.raises(MemoryError, match=r"Unable to allocate \(3, 4\)") as info:
        MLPScratchRegressor(init=OutOfMemory(), **SMALL).fit(X, Y_REG)
    assert not isinstance(info.value, InvalidParameterError)


def test_a_zero_dimensional_array_of_layer_sizes_is_one_layer():
    """np.array(5) passes the array-like constraint, but cannot be iterated."""
    est = _quiet_fit(MLPScratchClassifier(hidden_layer_sizes=np.array(5), max_iter=3,
                                          random_state=0), X, Y_CLS)
    assert [c.shape for c in est.coefs_] == [(3, 5), (5, 3)]
    with pytest.raises(InvalidParameterError, match="hidden_layer_sizes must be positive"):
        MLPScratchClassifier(hidden_layer_sizes=np.array(0.5), max_iter=3).fit(X, Y_CLS)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_an_invalid_init_is_refused_by_a_continued_fit_too(method):
    """The weights exist and init draws none, but a bad value is an error, not
    ignored (set_params checks nothing)."""
    X = np.random.RandomState(0).randn(20, 2)
    y = [0, 1] * 10
    est = MLPScratchClassifier(hidden_layer_sizes=(3,), warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    coefs = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match="Invalid init='foo'"):
        getattr(est.set_params(init="foo"), method)(X, y)
    for a, b in zip(est.coefs_, coefs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_a_sparse_regression_target_is_named(method, n_outputs):
    import scipy.sparse as sp
    y = sp.csr_matrix(np.repeat(X[:, :1], n_outputs, axis=1))
    with pytest.raises(TypeError, match="Sparse data was passed for y, but dense data "
                                        "is required"):
        getattr(MLPScratchRegressor(**SMALL), method)(X, y)


@pytest.mark.parametrize("weights", ["sample_weight", "class_weight"])
@pytest.mark.parametrize("tiny", [1e-40, 1e-50])
def test_float32_training_refuses_a_weight_its_dtype_would_lose(weights, tiny):
    """Checked before the cast to float32: 1e-50 became 0 (a row silently dropped) or,
    for every row, 'at least one non-zero' about weights that were all positive."""
    X32 = X.astype(np.float32)
    if weights == "sample_weight":
        est, kw = MLPScratchClassifier(**SMALL), {"sample_weight": np.r_[tiny, np.ones(29)]}
    else:
        est, kw = MLPScratchClassifier(**SMALL, class_weight={0: tiny}), {}
    with pytest.raises(ValueError, match=f"A sample weight .* of {tiny:g} is below the "
                                         "smallest normal float32"):
        est.fit(X32, Y_CLS, **kw)
    with pytest.raises(ValueError, match=f"of {tiny:g} is below the smallest normal"):
        MLPScratchClassifier(**SMALL).fit(X32, Y_CLS, sample_weight=np.full(30, tiny))
    _quiet_fit(est, X, Y_CLS, **kw)  # in float64 they are normal numbers


@pytest.mark.parametrize("weights", ["sample_weight", "class_weight"])
def test_float32_training_refuses_a_weight_its_dtype_cannot_hold(weights):
    """One weight of 1e39 became inf in float32, and the error blamed the weights'
    sum ("sum to inf"), which in float64 is finite."""
    X32 = X.astype(np.float32)
    if weights == "sample_weight":
        est, kw = MLPScratchClassifier(**SMALL), {"sample_weight": np.r_[1e39, np.ones(29)]}
    else:
        est, kw = MLPScratchClassifier(**SMALL, class_weight={0: 1e39}), {}
    with pytest.raises(ValueError, match=r"A sample weight .* of 1e\+39 is above the "
                                         r"largest float32 \(3.40282e\+38\)"):
        est.fit(X32, Y_CLS, **kw)
    _quiet_fit(est, X, Y_CLS, **kw)  # float64 holds it
