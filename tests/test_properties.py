"""Property-based tests: random shapes, dtypes, activations, solvers, targets, weights.

Whatever hypothesis draws, ``fit`` either raises a ValueError that says what is wrong or
gives a model whose predictions are finite, of the right shape and dtype, and do not
depend on the order of the rows predicted; ``fit`` never modifies its inputs.
"""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "prelu", "elu",
               "softplus", "silu", "gelu"]
TARGETS = ["binary", "multiclass", "multilabel", "regression", "multioutput",
           "poisson"]
# the only ValueErrors a valid call may raise: data that cannot be trained on
CLEAR_ERRORS = re.compile(
    "Solver produced non-finite parameter weights|sum to zero|"
    "at least one non-zero|needs samples of at least 2 classes|"
    "contains only one class|n_samples=|"
    "below the smallest normal|which the objective cannot be divided by")


def _x_elements(dtype):
    if dtype == "int":
        return st.integers(-1000, 1000)
    return st.floats(-1e4, 1e4, allow_nan=False, width=32 if dtype == "float32" else 64)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 50))
    d = draw(st.integers(1, 20))
    dtype = draw(st.sampled_from(["float32", "float64", "int"]))
    X = draw(hnp.arrays(np.int64 if dtype == "int" else dtype, (n, d),
                        elements=_x_elements(dtype)))
    target = draw(st.sampled_from(TARGETS))
    rng = np.random.RandomState(draw(st.integers(0, 2 ** 16)))
    y = {
        "binary": lambda: rng.choice(np.array(["no", "yes"]), n),
        "multiclass": lambda: rng.randint(0, draw(st.integers(3, 5)), n),
        "multilabel": lambda: rng.randint(0, 2, (n, 3)),
        "regression": lambda: rng.randn(n) * 10,
        "multioutput": lambda: rng.randn(n, 2),
        "poisson": lambda: rng.poisson(3.0, n).astype(float),
    }[target]()
    sw = draw(st.one_of(st.none(), hnp.arrays(np.float64, n, elements=st.floats(0, 5))))
    params = dict(
        activation=draw(st.sampled_from(ACTIVATIONS)),
        solver=draw(st.sampled_from(["sgd", "adam", "lbfgs"])),
        hidden_layer_sizes=draw(st.sampled_from([(3,), (4, 2)])),
        max_iter=5, random_state=0,
    )
    is_classifier = target in ("binary", "multiclass", "multilabel")
    if target == "poisson":
        params["loss"] = "poisson"
    Est = MLPScratchClassifier if is_classifier else MLPScratchRegressor
    return Est(**params), X, y, sw


def _fit_or_clear_error(est, X, y, sw):
    """The fitted estimator, or None after a ValueError with a clear message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("error", RuntimeWarning)
            return est.fit(X, y, sample_weight=sw)
    except ValueError as exc:
        assert CLEAR_ERRORS.search(str(exc)), f"unclear error: {exc}"
        return None


def _outputs(est, X):
    if isinstance(est, MLPScratchClassifier):
        return est.predict_proba(X)
    return est.predict(X)


@SETTINGS
@given(problems())
def test_fit_raises_clearly_or_predicts_finite(problem):
    est, X, y, sw = problem
    est = _fit_or_clear_error(est, X, y, sw)
    if est is None:
        return
    float_dtype = np.float32 if X.dtype == np.float32 else np.float64
    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        pred, out = est.predict(X), _outputs(est, X)
    assert pred.shape == np.shape(y)
    assert np.isfinite(out).all()
    if isinstance(est, MLPScratchClassifier):
        assert pred.dtype.kind == np.asarray(y).dtype.kind
        assert set(np.unique(pred)) <= set(np.unique(y))
        # one output unit (binary, or a single class as in scikit-learn): 2 columns
        n_cols = 2 if est.n_outputs_ == 1 and np.ndim(y) == 1 else len(est.classes_)
        assert out.shape == (n, n_cols) and out.dtype == float_dtype
        assert out.min() > 0 and out.max() < 1
    else:
        assert pred.dtype == float_dtype
        if est.out_activation_ in ("relu", "exp"):
            assert pred.min() >= 0


@SETTINGS
@given(problems(), st.randoms(use_true_random=False))
def test_predictions_do_not_depend_on_row_order(problem, random):
    est, X, y, sw = problem
    est = _fit_or_clear_error(est, X, y, sw)
    if est is None:
        return
    perm = np.array(random.sample(range(X.shape[0]), X.shape[0]))
    out, out_perm = _outputs(est, X), _outputs(est, X[perm])
    rtol = 1e-4 if out.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(out_perm, out[perm], rtol=rtol,
                               atol=rtol * max(1.0, float(np.abs(out).max())))


@SETTINGS
@given(problems())
def test_fit_does_not_modify_inputs(problem):
    est, X, y, sw = problem
    copies = [None if a is None else np.array(a, copy=True) for a in (X, y, sw)]
    _fit_or_clear_error(est, X, y, sw)
    for original, kept in zip((X, y, sw), copies):
        if kept is not None:
            np.testing.assert_array_equal(original, kept)
            assert original.dtype == kept.dtype
