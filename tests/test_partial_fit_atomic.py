"""A batch that fails validation in partial_fit changes nothing (SPEC 6).

Weights, the optimizer's state (Adam's moments and step count, SGD's velocity and
learning rate), the counters ``n_iter_`` / ``t_`` and the curves compare equal before
and after the failing call, and the next good batch trains exactly as if the bad one
had never been offered.
"""

import copy

import numpy as np
import pytest

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor

RNG = np.random.RandomState(42)
X = RNG.randn(40, 5)
Y_CLS = np.arange(40) % 3
Y_REG = np.abs(X @ RNG.randn(5)) + 0.1  # non-negative: the auto output is ReLU
PARAMS = dict(hidden_layer_sizes=(6, 4), random_state=3, batch_size=16,
              learning_rate_init=0.01)
OPTIMIZER_STATE = {"adam": ("m", "v", "t", "learning_rate"),
                   "sgd": ("velocity", "learning_rate")}


def _with(A, i, j, value):
    A = np.array(A, dtype=float)
    A[i, j] = value
    return A


COMMON_BAD = [
    ("nan in X", lambda y: (_with(X, 2, 1, np.nan), y, {})),
    ("inf in X", lambda y: (_with(X, 0, 0, np.inf), y, {})),
    ("empty X", lambda y: (X[:0], y[:0], {})),
    ("1-D X", lambda y: (X[:, 0], y, {})),
    ("string X", lambda y: (np.full(X.shape, "x"), y, {})),
    ("complex X", lambda y: (X + 1j, y, {})),
    ("wrong n_features", lambda y: (X[:, :4], y, {})),
    ("mismatched lengths", lambda y: (X, y[:-1], {})),
    ("negative sample_weight", lambda y: (X, y, {"sample_weight": -np.ones(40)})),
    ("nan sample_weight",
     lambda y: (X, y, {"sample_weight": _with(np.ones((40, 1)), 5, 0, np.nan).ravel()})),
    ("zero sample_weight", lambda y: (X, y, {"sample_weight": np.zeros(40)})),
    ("short sample_weight", lambda y: (X, y, {"sample_weight": np.ones(39)})),
]
CLASSIFIER_BAD = [
    ("unseen label", lambda y: (X, np.where(y == 2, 7, y), {})),
    ("other classes", lambda y: (X, y, {"classes": [0, 1, 2, 7]})),
    ("nan label", lambda y: (X, _with(y[:, None], 0, 0, np.nan).ravel(), {})),
]
REGRESSOR_BAD = [
    ("negative target for relu output", lambda y: (X, y - 10.0, {})),
    ("more outputs", lambda y: (X, np.c_[y, y], {})),
    ("inf target", lambda y: (X, _with(y[:, None], 0, 0, np.inf).ravel(), {})),
]
CASES = ([(MLPScratchClassifier, Y_CLS, name, make) for name, make
          in COMMON_BAD + CLASSIFIER_BAD]
         + [(MLPScratchRegressor, Y_REG, name, make) for name, make
            in COMMON_BAD + REGRESSOR_BAD])


def _first_call(Est, y, solver):
    est = Est(solver=solver, **PARAMS)
    kw = {"classes": [0, 1, 2]} if Est is MLPScratchClassifier else {}
    est.partial_fit(X, y, **kw)
    est.partial_fit(X[::-1], y[::-1])  # two calls: the optimizer state is non-trivial
    return est


def _snapshot(est):
    opt = est._optimizer
    state = {name: copy.deepcopy(getattr(opt, name))
             for name in OPTIMIZER_STATE[est.solver]}
    return {
        "coefs_": [c.copy() for c in est.coefs_],
        "intercepts_": [b.copy() for b in est.intercepts_],
        "optimizer": state,
        "optimizer object": opt,
        "n_iter_": est.n_iter_,
        "t_": est.t_,
        "loss_": est.loss_,
        "best_loss_": est.best_loss_,
        "loss_curve_": list(est.loss_curve_),
        "n_features_in_": est.n_features_in_,
        "n_outputs_": est.n_outputs_,
        "classes_": copy.deepcopy(getattr(est, "classes_", None)),
    }


def _assert_same(before, after):
    assert before.keys() == after.keys()
    for key in before:
        a, b = before[key], after[key]
        if key == "optimizer object":
            assert a is b, "the optimizer was replaced"
        elif key == "optimizer":
            for name in a:
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        elif isinstance(a, list) and a and isinstance(a[0], np.ndarray):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y, err_msg=key)
        else:
            np.testing.assert_array_equal(a, b, err_msg=key)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("Est, y, name, make_batch",
                         [pytest.param(*c, id=f"{c[0].__name__}-{c[2]}") for c in CASES])
def test_failing_batch_changes_nothing(Est, y, name, make_batch, solver):
    est = _first_call(Est, y, solver)
    before = _snapshot(est)
    Xb, yb, kw = make_batch(y)
    with pytest.raises(ValueError):
        est.partial_fit(Xb, yb, **kw)
    _assert_same(before, _snapshot(est))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("Est, y", [(MLPScratchClassifier, Y_CLS),
                                    (MLPScratchRegressor, Y_REG)])
def test_training_goes_on_as_if_the_bad_batch_never_came(Est, y, solver):
    est, twin = _first_call(Est, y, solver), _first_call(Est, y, solver)
    for _, make_batch in COMMON_BAD:
        Xb, yb, kw = make_batch(y)
        with pytest.raises(ValueError):
            est.partial_fit(Xb, yb, **kw)
    for step in range(3):
        est.partial_fit(X[step:], y[step:])
        twin.partial_fit(X[step:], y[step:])
    expected, got = _snapshot(twin), _snapshot(est)
    del expected["optimizer object"], got["optimizer object"]  # two estimators
    _assert_same(expected, got)
    assert est.n_iter_ == 1 and est.t_ == 2 * 40 + 40 + 39 + 38
    assert len(est.loss_curve_) == 5
    assert est.loss_curve_[-1] < est.loss_curve_[0]  # it still learns
