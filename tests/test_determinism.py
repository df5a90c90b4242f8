"""Same seed, same bits; read-only inputs work; prediction is thread-safe."""

import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor

X_CLS, Y_CLS = load_iris(return_X_y=True)
X_CLS = StandardScaler().fit_transform(X_CLS)
X_REG, Y_REG = make_regression(n_samples=120, n_features=6, noise=1.0, random_state=0)
Y_REG = Y_REG / Y_REG.std()
SW = np.random.RandomState(1).uniform(0.5, 2.0, 150)
SOLVERS = ["sgd", "adam", "lbfgs"]


def _fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


def _weights(est):
    return [w.copy() for w in est.coefs_ + est.intercepts_]


def _assert_bit_identical(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def _problems():
    return [
        pytest.param(MLPScratchClassifier, X_CLS, Y_CLS, id="classifier"),
        pytest.param(MLPScratchRegressor, X_REG, Y_REG, id="regressor"),
    ]


VARIANTS = [(solver, extra) for solver in SOLVERS
            for extra in ({}, {"dtype": np.float32})] + [
    ("sgd", {"early_stopping": True}), ("adam", {"early_stopping": True})]


@pytest.mark.parametrize("Est, X, y", _problems())
@pytest.mark.parametrize("solver, extra", VARIANTS)
def test_same_random_state_gives_bit_identical_weights(Est, X, y, solver, extra):
    extra = dict(extra)
    X = X.astype(extra.pop("dtype", np.float64))
    params = dict(hidden_layer_sizes=(7, 5), solver=solver, max_iter=15,
                  random_state=123, batch_size=32, **extra)
    first = _fit(Est(**params), X, y)
    second = _fit(clone(first), X, y)
    _assert_bit_identical(_weights(first), _weights(second))
    assert first.loss_curve_ == second.loss_curve_
    refit = _fit(first, X, y)  # refitting the same object starts over identically
    _assert_bit_identical(_weights(refit), _weights(second))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_sequence_is_deterministic(solver):
    def run():
        est = MLPScratchClassifier(hidden_layer_sizes=(6,), solver=solver,
                                   random_state=7, batch_size=20)
        for start in range(0, 150, 50):
            est.partial_fit(X_CLS[start:start + 50], Y_CLS[start:start + 50],
                            classes=[0, 1, 2])
        return _weights(est)
    _assert_bit_identical(run(), run())


def test_different_random_state_gives_different_weights():
    a = _fit(MLPScratchRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0),
             X_REG, Y_REG)
    b = _fit(clone(a).set_params(random_state=1), X_REG, Y_REG)
    assert not np.array_equal(a.coefs_[0], b.coefs_[0])


def test_global_numpy_seed_is_not_used():
    est = MLPScratchRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    np.random.seed(0)
    a = _weights(_fit(est, X_REG, Y_REG))
    np.random.seed(99)
    np.random.rand(17)
    b = _weights(_fit(clone(est), X_REG, Y_REG))
    _assert_bit_identical(a, b)


def _memmap(tmp_path, name, array):
    path = tmp_path / f"{name}.dat"
    writable = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
    writable[...] = array
    writable.flush()
    del writable
    view = np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
    assert not view.flags.writeable
    return view


@pytest.mark.parametrize("Est, X, y", _problems())
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_only_memmap_inputs(tmp_path, Est, X, y, solver, dtype):
    X = X.astype(dtype)
    sw = SW[:len(y)]
    Xm, ym, swm = (_memmap(tmp_path, n, a) for n, a in (("X", X), ("y", y), ("sw", sw)))
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=10, random_state=0,
                  shuffle=True, batch_size=16)
    from_memmap = _fit(Est(**params), Xm, ym, sample_weight=swm)
    in_memory = _fit(Est(**params), X, y, sample_weight=sw)
    _assert_bit_identical(_weights(from_memmap), _weights(in_memory))
    np.testing.assert_array_equal(from_memmap.predict(Xm), in_memory.predict(X))
    assert from_memmap.score(Xm, ym, sample_weight=swm) == in_memory.score(X, y, sw)
    if solver != "lbfgs":
        from_memmap.partial_fit(Xm, ym, sample_weight=swm)
        in_memory.partial_fit(X, y, sample_weight=sw)
        _assert_bit_identical(_weights(from_memmap), _weights(in_memory))


def test_read_only_memmap_weights_load(tmp_path):
    """Weights loaded from read-only memmaps predict like the originals."""
    est = _fit(MLPScratchRegressor(hidden_layer_sizes=(5,), max_iter=10,
                                   random_state=0), X_REG, Y_REG)
    expected = est.predict(X_REG)
    est.coefs_ = [_memmap(tmp_path, f"W{i}", c) for i, c in enumerate(est.coefs_)]
    est.intercepts_ = [_memmap(tmp_path, f"b{i}", b) for i, b in enumerate(est.intercepts_)]
    np.testing.assert_array_equal(est.predict(X_REG), expected)


@pytest.mark.parametrize("Est, X, y", _problems())
@pytest.mark.parametrize("activation", ["relu", "prelu", "gelu"])
def test_concurrent_predictions_match_serial(Est, X, y, activation):
    est = _fit(Est(hidden_layer_sizes=(16, 8), activation=activation, max_iter=20,
                   random_state=0), X, y)
    methods = ["predict"] + (["predict_proba", "predict_log_proba"]
                             if Est is MLPScratchClassifier else [])
    # different row counts per call, so shared scratch buffers would collide
    chunks = [X[i:i + size] for i, size in zip(range(0, 100, 7), [3, 50, 11, 1, 29] * 4)]
    tasks = [(m, c) for m in methods for c in chunks] * 4
    expected = [getattr(est, m)(c) for m, c in tasks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda task: getattr(est, task[0])(task[1]), tasks))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = list(pool.map(lambda _: est.score(X, y), range(8)))
    assert len(set(scores)) == 1 and scores[0] == est.score(X, y)


def test_pickled_model_predicts_the_same():
    est = _fit(MLPScratchClassifier(hidden_layer_sizes=(5,), max_iter=10,
                                    random_state=0), X_CLS, Y_CLS)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(X_CLS), est.predict_proba(X_CLS))
