"""No floating-point warning from any activation, loss or softmax for any finite input.

numpy's overflow / invalid / divide-by-zero flags are turned into exceptions, so any
operation that is not deliberately guarded fails the test; underflow to 0 (exp of a
very negative number) is exact enough and stays allowed.
"""

import numpy as np
import pytest

from sknn_scratch import MLPScratchClassifier, activations
from sknn_scratch.losses import LOSSES, _binary_terms

DTYPES = [np.float64, np.float32]
ACTIVATION_NAMES = sorted(activations._activations.names())


@pytest.fixture(autouse=True)
def floating_point_errors_raise():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


def _extremes(dtype):
    info = np.finfo(dtype)
    values = [info.max, 1e308, 1e38, 1e4, 710.0, 89.0, 50.0, 1.0, info.eps, info.tiny,
              info.smallest_subnormal, 0.0]
    values = [v for v in values if v <= float(info.max)]
    z = np.array(values + [-v for v in values], dtype=dtype)
    return z.reshape(2, -1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_forward_and_derivative_finite(name, dtype):
    act = activations.get(name)
    z = _extremes(dtype)
    a, d = act.forward(z), act.derivative(z)
    assert np.isfinite(a).all(), a
    assert np.isfinite(d).all(), d
    assert a.dtype == dtype and d.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_training_kernels_finite(name, dtype):
    act = activations.get(name)
    z = _extremes(dtype)
    a = z.copy()
    delta = np.ones_like(z)
    if act.learnable:
        slope = np.full(z.shape[1], 0.25, dtype)
        act.forward_param_(a, slope)
        act.backward_param_(delta, z, slope, np.empty_like(slope))
    else:
        act.forward_(a)
        act.backward_(delta, z, a)
    assert np.isfinite(a).all() and np.isfinite(delta).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_extreme_rows(dtype):
    big = np.finfo(dtype).max
    z = np.array([[-big, big, 0], [big, big, big], [-big, -big, -big],
                  [-big, 0, big], [1e30, -1e30, 0]], dtype=dtype)
    p = activations.Softmax().forward(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6)
    assert p[0, 1] == 1 and p[3, 2] == 1


PAIRS = [("squared_error", "identity"), ("squared_error", "relu"),
         ("squared_error", "tanh"), ("binary_log_loss", "sigmoid"),
         ("log_loss", "softmax"), ("poisson", "exp")]


def _targets(loss_name, dtype):
    if loss_name in ("binary_log_loss", "log_loss"):
        return np.array([[1, 0], [0, 1]], dtype)
    return np.array([[3.0, 0.0], [1e3, 2.0]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name, act_name", PAIRS)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_delta_never_warn_nor_nan(loss_name, act_name, dtype, weighted):
    """Beyond the float range the loss is +inf, as it truly is; never NaN, no warning."""
    loss, act = LOSSES[loss_name](), activations.get(act_name)
    big = np.finfo(dtype).max
    sw = np.array([0.5, 2.0], dtype) if weighted else None
    y = _targets(loss_name, dtype)
    for z0 in (-big, -1e30, -50.0, 0.0, 50.0, 1e30, big):
        z = np.array([[z0, -z0], [z0, 1.0]], dtype)
        a = act.forward_(z.copy())
        delta = np.empty_like(a)
        value = loss.value_and_delta(y, a, z.copy(), act, sw, delta)
        assert not np.isnan(value) and value >= 0
        assert not np.isnan(delta).any()
        assert loss.value(y, a, sw) == value


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("targets", ["float", "bool"])
def test_binary_log_loss_value_is_bitwise_the_row_sums(targets, n_outputs, weighted,
                                                      dtype):
    """The binary log-loss skips its row sums for one output: the value is still, bit
    for bit, the weighted sum of the row losses, with outputs at 0 and 1 and with the
    boolean class indicators a whole-data check passes."""
    loss = LOSSES["binary_log_loss"]()
    rng = np.random.RandomState(0)
    shape = (203, n_outputs)
    a = rng.uniform(size=shape).astype(dtype)
    a.flat[:4] = [0, 1, 1e-30, 1 - 1e-7]
    y = rng.uniform(size=shape) < 0.5
    y = y.astype(dtype) if targets == "float" else y
    sw = rng.uniform(0.5, 2, size=shape[0]).astype(dtype) if weighted else None
    from scipy.special import xlogy
    p = np.clip(a, np.finfo(dtype).eps, 1 - np.finfo(dtype).eps)
    terms = xlogy(y, p) + xlogy(1 - y, 1 - p)
    if targets == "bool":
        # the training loop's batches: boolean indicators, whose terms are numpy's
        # log p or log(1 - p), within an ulp of scipy's xlogy (numpy's vectorized log
        # is not always correctly rounded)
        bool_terms = np.where(y, np.log(p), np.log(1 - p))
        np.testing.assert_allclose(bool_terms, terms, rtol=4 * np.finfo(dtype).eps,
                                   atol=0)
        terms = bool_terms
    assert _binary_terms(y, a).dtype == dtype
    np.testing.assert_array_equal(_binary_terms(y, a), terms)
    rows = -terms.sum(axis=1)
    expected = float(rows.sum() if sw is None else np.dot(sw, rows))
    assert loss.value(y, a, sw) == expected
    delta = np.empty_like(a)
    assert loss.value_and_delta(y, a, a, activations.Sigmoid(), sw,
                                delta) == expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("order", ["C", "F"])
def test_log_loss_is_the_cross_entropy_of_xlogy(order, weighted, dtype):
    """The categorical log-loss takes y log p, not scipy's xlogy: the same value, bit
    for bit, on one-hot targets (and to rounding on soft ones), probabilities at 0
    and 1 included, outputs in either order."""
    from scipy.special import xlogy
    loss = LOSSES["log_loss"]()
    rng = np.random.RandomState(0)
    n, k = 203, 7
    a = np.asarray(rng.dirichlet(np.ones(k), n).astype(dtype), order=order)
    a[0] = 0
    a[0, 3] = 1
    a[1, :2] = [1e-30, 0]
    sw = rng.uniform(0.5, 2, n).astype(dtype) if weighted else None
    eps = np.finfo(dtype).eps
    for y in (np.eye(k, dtype=dtype)[rng.randint(0, k, n)],
              rng.dirichlet(np.ones(k), n).astype(dtype)):
        rows = -xlogy(y, np.clip(a, eps, 1 - eps)).sum(axis=1)
        expected = float(rows.sum() if sw is None else np.dot(sw, rows))
        if y.max() == 1:  # one nonzero term per row: any order of sums is exact
            assert loss.value(y, a, sw) == expected
        else:
            assert loss.value(y, a, sw) == pytest.approx(expected, rel=1e-5)
    assert loss.value(y > 0.5, a, sw) >= 0  # bool indicators, as a whole-data check


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name", ["binary_log_loss", "log_loss"])
def test_log_loss_finite_at_probability_exactly_0_or_1(loss_name, dtype):
    loss = LOSSES[loss_name]()
    y = np.array([[1, 0], [0, 1]], dtype)
    eps = np.finfo(dtype).eps
    for a in (np.array([[0, 1], [1, 0]], dtype), np.array([[1, 0], [0, 1]], dtype)):
        value = loss.value(y, a)
        assert np.isfinite(value)
    wrong = loss.value(y, np.array([[0, 1], [1, 0]], dtype))
    per_label = -np.log(eps) if loss_name == "log_loss" else -2 * np.log(eps)
    assert wrong == pytest.approx(2 * per_label, rel=1e-6)
    assert loss.value(y, y) == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("y", [np.arange(40) % 2, np.arange(40) % 3],
                         ids=["binary", "multiclass"])
def test_saturated_classifier_gives_finite_log_proba(y):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    est = MLPScratchClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with np.errstate(all="ignore"), pytest.warns(Warning):
        est.fit(X, y)
    est.coefs_ = [c * 1e6 for c in est.coefs_]  # outputs saturate to exactly 0 and 1
    proba = est.predict_proba(X)
    assert proba.min() > 0 and proba.max() < 1
    assert np.isfinite(est.predict_log_proba(X)).all()
    assert 0 <= est.score(X, y) <= 1


@pytest.mark.parametrize("n", [0, 1, 7400, 10_000, 10_001, 50_000, 500_100])
def test_squared_norm_on_short_and_long_vectors(n):
    """One np.dot on short vectors, a sum over slices on long ones: the norm either
    way."""
    from sknn_scratch.network import squared_norm
    w = np.random.RandomState(n).standard_normal(n)
    assert isinstance(squared_norm(w), float)
    assert squared_norm(w) == pytest.approx(float(np.sum(w * w)), rel=1e-12)


def test_squared_norm_takes_one_thread_dot_products(monkeypatch):
    """A long vector goes to np.dot in slices that OpenBLAS runs in one thread."""
    from sknn_scratch import network
    lengths, real_dot = [], np.dot

    def spy(a, b, *args, **kwargs):
        lengths.append(len(a))
        return real_dot(a, b, *args, **kwargs)

    monkeypatch.setattr(network.np, "dot", spy)
    w = np.arange(2 * network.SHORT_DOT + 1, dtype=np.float64)
    assert network.squared_norm(w) == float(np.sum(w * w))  # exact: integers
    assert lengths == [network.SHORT_DOT, network.SHORT_DOT, 1]


@pytest.mark.parametrize("dtype, z", [(np.float32, -90.0), (np.float32, -200.0),
                                      (np.float64, -720.0)])
def test_poisson_deviance_far_below_a_target_is_finite(dtype, z):
    """y / a overflowed there (float32 from about 88 below log y): the loss came out
    inf, and a partial_fit reported a divergence that was not one."""
    import warnings

    from sknn_scratch import MLPScratchRegressor

    loss = LOSSES["poisson"]()
    a = np.exp(np.array([[z], [0.0]], dtype))
    y = np.array([[100.0], [1.0]], dtype)
    tiny = float(np.finfo(dtype).tiny)
    expected = 100 * (np.log(100) - np.log(max(float(a[0, 0]), tiny))) - 100 + 0 + 1 - 1
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        assert loss.value(y, a) == pytest.approx(expected, rel=1e-5)
    X = np.random.RandomState(0).rand(20, 2).astype(dtype)
    reg = MLPScratchRegressor(hidden_layer_sizes=(3,), loss="poisson", max_iter=1,
                              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, np.full(20, 100.0))
        reg.intercepts_[-1][:] = z / 2 if dtype == np.float64 else z
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            reg.partial_fit(X, np.full(20, 100.0))
    assert np.isfinite(reg.loss_)


class _RenamedSigmoid(activations.Sigmoid):
    """Not the canonical pair of the binary log-loss: its delta is dl/da g'(z)."""


@pytest.mark.parametrize("name, act, y, a", [
    ("binary_log_loss", _RenamedSigmoid(), [[1.0], [0.0]], [[0.0], [1.0]]),
    ("log_loss", activations.Identity(), [[1.0, 0.0], [0.0, 1.0]],
     [[0.0, 1.0], [1.0, 0.0]]),
])
def test_a_non_canonical_delta_is_finite_at_probabilities_0_and_1(name, act, y, a):
    """The generic path divides by the probabilities, clipped as in the loss's value."""
    y, a = np.array(y), np.array(a)
    delta = np.empty_like(a)
    with np.errstate(all="raise"):
        LOSSES[name]().value_and_delta(y, a, a.copy(), act, None, delta)
    assert np.isfinite(delta).all()


class _RenamedExp(activations.Exp):
    """Not the canonical pair of the Poisson deviance: its delta is dl/da g'(z)."""


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_non_canonical_poisson_delta_is_finite_where_exp_underflows(dtype):
    # dl/da = 1 - y / a, with a = exp(-1e4) = 0 held at the smallest normal number,
    # overflowed to -inf for y above 4, and -inf times g'(z) = 0 was NaN
    z = np.array([[-1e4], [-50.0], [0.0]], dtype)
    y = np.full((3, 1), 5.0, dtype)
    act = _RenamedExp()
    a = act.forward(z)
    delta = np.empty_like(a)
    with np.errstate(all="raise", under="ignore"):
        LOSSES["poisson"]().value_and_delta(y, a, z.copy(), act, None, delta)
    assert np.isfinite(delta).all()
    np.testing.assert_allclose(delta[1:], a[1:] - y[1:], rtol=1e-5)


def _price_data(dtype):
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4).astype(dtype)
    y = ((X @ [1.0, -2.0, 0.5, 0.0]) * 1e5 + 3e5).astype(dtype)
    w = rng.uniform(0.5, 4.0, size=120)
    return X, y, w


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_weights_and_alpha_scaled_alike_give_the_same_fit(solver, n_jobs):
    # J(c w, c alpha) = J(w, alpha): weights of 1e27 and more, whose weighted losses
    # of price-scale targets overflowed float32 before J divided them by their sum,
    # train to the same weights, bitwise, as the same weights at unit scale
    from sknn_scratch import MLPScratchRegressor
    X, y, w = _price_data(np.float32)
    c = 2.0 ** 90
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=8, batch_size=40,
                  # sgd's steps on these targets' gradients diverge at adam's rate
                  learning_rate_init=1e-9 if solver == "sgd" else 1e-3,
                  random_state=0, n_jobs=n_jobs)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unit = MLPScratchRegressor(alpha=1e-3, **params).fit(X, y, sample_weight=w)
            large = MLPScratchRegressor(alpha=1e-3 * c, **params).fit(
                X, y, sample_weight=w * c)
    assert large.loss_curve_ == unit.loss_curve_
    assert np.isfinite(unit.loss_curve_).all()
    for a, b in zip(large.coefs_ + large.intercepts_, unit.coefs_ + unit.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_diagnose_takes_weights_and_alpha_scaled_alike_as_fit_does():
    from sknn_scratch import MLPScratchRegressor
    from sknn_scratch.diagnostics import diagnose
    X, y, w = _price_data(np.float32)
    c = 2.0 ** 115  # w_i dl/dz_i beyond float32 before the division by sum w
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        model = MLPScratchRegressor(hidden_layer_sizes=(6,), max_iter=3, alpha=1e-3,
                                    random_state=0).fit(X, y, sample_weight=w)
        unit = diagnose(model, X, y, sample_weight=w)
        model.set_params(alpha=1e-3 * c)
        large = diagnose(model, X, y, sample_weight=w * c)
    assert [layer.grad_norm for layer in large.layers] == [
        layer.grad_norm for layer in unit.layers]
    assert all(np.isfinite(layer.grad_norm) for layer in large.layers)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_weights_keep_the_smallest_weight_normal_and_leave_sw_alone(dtype):
    from sknn_scratch._base import _unit_weights
    tiny = float(np.finfo(dtype).tiny)
    sw = np.array([0.0, tiny * 4, 1e30], dtype)
    before = sw.copy()
    scaled, alpha = _unit_weights(sw, 3.0)
    np.testing.assert_array_equal(sw, before)
    assert scaled.dtype == dtype
    assert scaled[1] == tiny and scaled[0] == 0  # only down to the smallest normal
    assert alpha == 3.0 / 4 and scaled[2] == sw[2] / 4
    scaled, alpha = _unit_weights(np.array([1.0, 3e20, 7.0], dtype), 1.0)
    assert 1 <= scaled.max() < 2 and alpha == 2.0 ** -68  # 2^68 <= 3e20 < 2^69
    same = np.array([0.25, 1.9], dtype)
    assert _unit_weights(same, 2.0)[0] is same  # already at unit scale: no copy
