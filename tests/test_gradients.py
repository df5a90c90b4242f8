"""The gradient is exactly that of J (SPEC 4.2), and ``loss_`` reports J.

``Network.loss_grad`` is compared with central finite differences of J for every
registered hidden activation (PReLU's per-unit slopes included) and a user-defined one,
under every output activation / loss pairing of SPEC 4.4, with and without sample
weights and L2. Then ``loss_`` is compared with J written out by hand in NumPy.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import unique_labels

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch import activations as acts
from sknn_scratch.losses import LOSSES
from sknn_scratch.network import Network

RTOL = 1e-6
STEP = 1e-6
MARGIN = 1e-3  # no pre-activation this close to 0, where kinked activations kink


class Sine(acts.Activation):
    """A user-defined activation with a parameter."""

    def __init__(self, freq=1.5):
        self.freq = freq

    def forward(self, z):
        return np.sin(self.freq * z)

    def derivative(self, z):
        return self.freq * np.cos(self.freq * z)


def _hidden_activations():
    """One instance per registered class that may sit in a hidden layer."""
    seen = {}
    for name in acts._activations.names():
        act = acts.get(name)
        if not act.output_only:
            seen.setdefault(type(act), act)
    return sorted(seen.values(), key=lambda a: a.name) + [Sine()]


# and parameters off their defaults: ELU's fast derivative has a (1 - alpha) term
HIDDEN = _hidden_activations() + [acts.ELU(alpha=0.5), acts.ELU(alpha=-0.3),
                                  acts.LeakyReLU(2.0), acts.LeakyReLU(-0.5)]


class _PlainExp(acts.Exp):
    """exp under another name: the Poisson deviance's general dl/da g'(z), not a - y.
    (A subclass of Exp used to get (a - y) g'(z), half the gradient's size off.)"""


class _PlainSigmoid(acts.Sigmoid):
    """The sigmoid under another name: binary cross-entropy's general path."""

# (output activation, loss, number of outputs, target kind), SPEC 4.4 and multi-output
PAIRINGS = {
    "binary": ("sigmoid", "binary_log_loss", 1, "binary"),
    "multiclass": ("softmax", "log_loss", 3, "onehot"),
    "multilabel": ("sigmoid", "binary_log_loss", 3, "binary"),
    "relu_squared": ("relu", "squared_error", 1, "nonnegative"),
    "identity_squared": ("identity", "squared_error", 1, "real"),
    "exp_poisson": ("exp", "poisson", 1, "counts"),
    "multioutput": ("identity", "squared_error", 3, "real"),
    # output activations without the loss's a - y: dl/da times g'(z)
    "tanh_squared": ("tanh", "squared_error", 1, "real"),
    "softplus_squared": ("softplus", "squared_error", 1, "nonnegative"),
    "exp_subclass_poisson": (_PlainExp(), "poisson", 1, "counts"),
    "sigmoid_subclass_binary": (_PlainSigmoid(), "binary_log_loss", 1, "binary"),
}


def test_every_hidden_activation_is_covered():
    names = {a.name for a in HIDDEN}
    assert {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu",
            "softplus", "silu", "gelu", "sine"} <= names
    assert "softmax" not in names


# ------------------------------------------------------------------ the problem
def _targets(kind, n, k, rng):
    if kind == "binary":
        return rng.randint(0, 2, size=(n, k)).astype(float)
    if kind == "onehot":
        return np.eye(k)[rng.randint(0, k, size=n)]
    if kind == "nonnegative":
        return rng.uniform(0.0, 2.0, size=(n, k))
    if kind == "counts":
        return rng.poisson(1.5, size=(n, k)).astype(float)
    return rng.normal(size=(n, k))


def _network(hidden, pairing):
    out_name, loss_name, k, _ = PAIRINGS[pairing]
    units = [4, 4, 3, k]
    return Network(units, [hidden, hidden, acts.get(out_name)], LOSSES[loss_name](),
                   np.float64)


def _pre_activations(net, flat, X):
    """``z`` of every layer, computed with the public forward of each activation."""
    coefs, intercepts, slopes = net.unpack(flat)
    a, zs = X, []
    for i, (W, b, act) in enumerate(zip(coefs, intercepts, net.activations)):
        z = a @ W + b
        zs.append(z)
        if i < len(slopes) and slopes[i] is not None:
            a = np.where(z > 0, z, slopes[i] * z)
        else:
            a = act.forward(z)
    return zs


def _kink_pattern(net, flat, X):
    return [z > 0 for z in _pre_activations(net, flat, X)]


def _problem(hidden, pairing, seed):
    """Network, parameters and data with every pre-activation at least MARGIN from 0.

    Draws are repeated (deterministically, from the seed) until that holds, so the
    finite differences never straddle a kink of ReLU and its family.
    """
    rng = np.random.RandomState(seed)
    net = _network(hidden, pairing)
    _, _, k, kind = PAIRINGS[pairing]
    for _ in range(100):
        X = rng.normal(size=(9, 4))
        flat = rng.normal(scale=0.5, size=net.n_params)
        coefs, intercepts, slopes = net.unpack(flat)
        for s in slopes:
            if s is not None:
                s[...] = rng.uniform(0.05, 0.5, size=s.shape)  # distinct per unit
        if pairing == "relu_squared":
            intercepts[-1][...] = 1.0  # most outputs alive, so the gradient is not 0
        zs = _pre_activations(net, flat, X)
        if min(np.abs(z).min() for z in zs) > MARGIN and _unclipped(net, flat, X):
            return net, flat, X, _targets(kind, X.shape[0], k, rng), rng
    raise AssertionError("no draw kept the pre-activations away from 0")


def _unclipped(net, flat, X):
    """Probabilities inside [1e-8, 1 - 1e-8], far from the eps clip of the log losses.

    Where the clip binds, the loss is flat while its gradient is that of the unclipped
    loss (as in scikit-learn); that is the clip's doing, not the gradient's.
    """
    if not isinstance(net.activations[-1], (acts.Sigmoid, acts.Softmax)):
        return True
    p = net.predict(X, *net.unpack(flat.copy()))
    return bool(p.min() > 1e-8 and p.max() < 1 - 1e-8)


def _finite_differences(net, flat, X, Y, sw, alpha):
    grad = np.empty_like(flat)
    numeric = np.empty_like(flat)
    pattern = _kink_pattern(net, flat, X)
    for j in range(flat.size):
        values = []
        for sign in (1, -1):
            x = flat.copy()
            x[j] += sign * STEP
            values.append(net.loss_grad(x, X, Y, sw, alpha, grad))
            for p, q in zip(pattern, _kink_pattern(net, x, X)):
                assert np.array_equal(p, q), "a finite-difference step crossed a kink"
        numeric[j] = (values[0] - values[1]) / (2 * STEP)
    return numeric


def _relative_error(analytic, numeric):
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric), 1e-12)
    return np.linalg.norm(analytic - numeric) / scale


def _analytic(net, flat, X, Y, sw, alpha):
    grad = np.full_like(flat, np.nan)  # every entry must be written, none accumulated
    value = net.loss_grad(flat.copy(), X, Y, sw, alpha, grad)
    return value, grad


# ------------------------------------------------------------------ gradient checks
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("pairing", list(PAIRINGS))
@pytest.mark.parametrize("hidden", HIDDEN, ids=repr)
def test_gradient_matches_finite_differences(hidden, pairing, weighted, alpha):
    net, flat, X, Y, rng = _problem(hidden, pairing, seed=0)
    sw = None
    if weighted:
        sw = rng.uniform(0.2, 3.0, size=X.shape[0])
        sw[0] = 0.0  # a zero weight drops its row from J and from the gradient
    _, analytic = _analytic(net, flat, X, Y, sw, alpha)
    numeric = _finite_differences(net, flat, X, Y, sw, alpha)
    assert np.isfinite(analytic).all()
    assert np.linalg.norm(analytic) > 1e-3  # a vanished gradient would prove nothing
    assert _relative_error(analytic, numeric) < RTOL


def test_prelu_slopes_get_a_gradient():
    """The slopes are parameters: their block of the gradient is not empty or zero."""
    net, flat, X, Y, _ = _problem(acts.PReLU(), "identity_squared", seed=1)
    _, grad = _analytic(net, flat, X, Y, None, 0.0)
    _, _, gslopes = net.unpack(grad)
    assert all(g is not None and np.abs(g).max() > 0 for g in gslopes)
    numeric = _finite_differences(net, flat, X, Y, None, 0.0)
    slopes_block = slice(net.n_params - sum(g.size for g in gslopes), None)
    assert _relative_error(grad[slopes_block], numeric[slopes_block]) < RTOL


class _WrongTanh(acts.Tanh):
    """tanh with a derivative 1 % off: the check above must catch it."""

    needs_input = True

    def derivative(self, z):
        return 1.01 * (1.0 - np.tanh(z) ** 2)

    def backward_(self, delta, z, a):
        delta *= self.derivative(z)
        return delta


def test_finite_difference_check_can_fail():
    net, flat, X, Y, _ = _problem(_WrongTanh(), "identity_squared", seed=0)
    _, analytic = _analytic(net, flat, X, Y, None, 0.0)
    numeric = _finite_differences(net, flat, X, Y, None, 0.0)
    assert _relative_error(analytic, numeric) > 1e-4


def test_l2_leaves_biases_and_slopes_alone():
    """alpha changes only the weight block of the gradient, by alpha W / sum(w)."""
    net, flat, X, Y, rng = _problem(acts.PReLU(), "binary", seed=2)
    sw = rng.uniform(0.5, 2.0, size=X.shape[0])
    _, g0 = _analytic(net, flat, X, Y, sw, 0.0)
    _, g1 = _analytic(net, flat, X, Y, sw, 0.5)
    n_coefs = net.n_coefs
    np.testing.assert_allclose(g1[:n_coefs] - g0[:n_coefs],
                               0.5 / sw.sum() * flat[:n_coefs], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(g1[n_coefs:], g0[n_coefs:])


@pytest.mark.parametrize("fmt", ["csr", "csc", "csr_float32_data"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_sparse_input_gets_the_gradient_of_J(fmt, alpha, weighted):
    """Sparse X takes other kernels (scipy's, accumulating straight into the gradient);
    the gradient is still that of J: equal to the dense one, and to central
    differences. csc and float32 data take the generic scipy product."""
    net, flat, X, Y, rng = _problem(acts.Tanh(), "binary", seed=3)
    X = np.where(rng.uniform(size=X.shape) < 0.5, 0.0, X)  # half the entries stored
    sw = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else None
    if fmt == "csr_float32_data":
        Xs = sp.csr_matrix(X.astype(np.float32)).astype(np.float64, copy=False)
        Xs.data = Xs.data.astype(np.float32)  # dtype differs from the network's
        X = Xs.toarray().astype(np.float64)
    else:
        Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    value, dense = _analytic(net, flat, X, Y, sw, alpha)
    value_sp, grad = _analytic(net, flat, Xs, Y, sw, alpha)
    assert value_sp == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(grad, dense, rtol=1e-12, atol=1e-15)
    numeric = _finite_differences(net, flat, Xs, Y, sw, alpha)
    assert _relative_error(grad, numeric) < RTOL


# ------------------------------------------------------------------ J written by hand
def _hand_activation(name, z):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name in ("logistic", "sigmoid"):
        return 1.0 / (1.0 + np.exp(-z))
    if name == "identity":
        return z
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def _hand_objective(X, Y, coefs, intercepts, hidden, output, sw, alpha):
    """SPEC 4.2: J = sum_i w_i l_i / sum w + alpha / (2 sum w) sum ||W||^2."""
    a = X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        a = _hand_activation(hidden, a @ W + b)
    p = _hand_activation(output, a @ coefs[-1] + intercepts[-1])
    if output in ("identity", "relu"):
        rows = 0.5 * ((p - Y) ** 2).sum(axis=1)
    elif output == "logistic":
        rows = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).sum(axis=1)
    elif output == "softmax":
        rows = -(Y * np.log(p)).sum(axis=1)
    else:  # exp: half Poisson deviance, y log y = 0 at y = 0
        ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0)), 0.0)
        rows = (ylogy - Y * np.log(p) - Y + p).sum(axis=1)
    w = np.ones(X.shape[0]) if sw is None else sw
    penalty = sum(float((W ** 2).sum()) for W in coefs)
    return float(w @ rows) / w.sum() + alpha * penalty / (2 * w.sum())


def _data(kind, seed=0, n=40):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    t = X @ rng.normal(size=(5, 3))
    if kind == "binary":
        y, Y = (t[:, 0] > 0).astype(int), (t[:, :1] > 0).astype(float)
    elif kind == "multiclass":
        y = t.argmax(axis=1)
        Y = np.eye(3)[y]
    elif kind == "multilabel":
        y = (t > 0).astype(int)
        Y = y.astype(float)
    elif kind == "poisson":
        y = rng.poisson(np.exp(0.3 * t[:, 0]))
        Y = y[:, None].astype(float)
    elif kind == "multioutput":
        y = Y = t
    else:  # real
        y, Y = t[:, 0], t[:, :1]
    return X, y, Y, rng.uniform(0.2, 3.0, size=n)


CASES = {  # estimator, its keyword arguments, target kind
    "binary": (MLPScratchClassifier, dict(activation="tanh"), "binary"),
    "multiclass": (MLPScratchClassifier, dict(activation="relu"), "multiclass"),
    "multilabel": (MLPScratchClassifier, dict(activation="logistic"), "multilabel"),
    "identity": (MLPScratchRegressor, dict(activation="tanh",
                                           output_activation="identity"), "real"),
    "relu_output": (MLPScratchRegressor, dict(activation="relu",
                                              output_activation="relu"), "poisson"),
    "poisson": (MLPScratchRegressor, dict(activation="tanh", loss="poisson"),
                "poisson"),
    "multioutput": (MLPScratchRegressor, dict(activation="relu"), "multioutput"),
}


def _check_loss_against_hand(est, X, Y, sw, alpha, coefs, intercepts):
    hidden = est.get_params()["activation"]
    expected = _hand_objective(X, Y, coefs, intercepts, hidden, est.out_activation_,
                               sw, alpha)
    assert est.loss_ == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", list(CASES))
def test_full_batch_loss_is_J_before_the_update(case, weighted, solver):
    cls, params, kind = CASES[case]
    X, y, Y, sw = _data(kind)
    sw = sw if weighted else None
    alpha = 0.2
    est = cls(hidden_layer_sizes=(6, 4), solver=solver, alpha=alpha,
              batch_size=X.shape[0], learning_rate_init=0.05, random_state=0,
              **params)
    # the classes of a multi-label y are its column indices
    extra = {"classes": unique_labels(y)} if cls is MLPScratchClassifier else {}
    est.partial_fit(X, y, sample_weight=sw, **extra)
    for _ in range(2):  # the weights training reached, then ones we load
        coefs = [c.copy() for c in est.coefs_]
        intercepts = [b.copy() for b in est.intercepts_]
        est.partial_fit(X, y, sample_weight=sw)
        _check_loss_against_hand(est, X, Y, sw, alpha, coefs, intercepts)
        assert not np.array_equal(est.coefs_[0], coefs[0])  # a step was taken
        rng = np.random.RandomState(len(est.loss_curve_))
        est.coefs_ = [rng.normal(scale=0.3, size=c.shape) for c in coefs]
        est.intercepts_ = [rng.normal(scale=0.3, size=b.shape) for b in intercepts]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", list(CASES))
def test_one_epoch_fit_loss_is_J_at_the_initial_weights(case, weighted):
    """fit with max_iter=1: J at the initial weights, which a second fit can replay."""
    cls, params, kind = CASES[case]
    X, y, Y, sw = _data(kind, seed=3)
    sw = sw if weighted else None
    est = cls(hidden_layer_sizes=(5,), solver="sgd", alpha=0.1, batch_size=X.shape[0],
              max_iter=1, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
        loss = est.loss_
        # the same seed draws the same initial weights, and a step far below the
        # float resolution of the weights leaves them as drawn: read them there
        start = cls(**{**est.get_params(), "learning_rate_init": 1e-300}).fit(
            X, y, sample_weight=sw)
    expected = _hand_objective(X, Y, start.coefs_, start.intercepts_,
                               params["activation"], est.out_activation_, sw, 0.1)
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", list(CASES))
def test_lbfgs_loss_is_J_at_the_final_weights(case, weighted):
    cls, params, kind = CASES[case]
    X, y, Y, sw = _data(kind, seed=1)
    sw = sw if weighted else None
    est = cls(hidden_layer_sizes=(6, 4), solver="lbfgs", alpha=0.05, max_iter=30,
              random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
    _check_loss_against_hand(est, X, Y, sw, 0.05, est.coefs_, est.intercepts_)


def test_class_weight_enters_J_like_sample_weight():
    X, y, Y, sw = _data("multiclass", seed=4)
    cw = {0: 0.5, 1: 2.0, 2: 1.5}
    est = MLPScratchClassifier(hidden_layer_sizes=(5,), activation="tanh",
                               solver="sgd", alpha=0.3, batch_size=X.shape[0],
                               class_weight=cw, random_state=0)
    est.partial_fit(X, y, sample_weight=sw, classes=[0, 1, 2])
    coefs = [c.copy() for c in est.coefs_]
    intercepts = [b.copy() for b in est.intercepts_]
    est.partial_fit(X, y, sample_weight=sw)
    w = sw * np.vectorize(cw.get)(y)
    expected = _hand_objective(X, Y, coefs, intercepts, "tanh", "softmax", w, 0.3)
    assert est.loss_ == pytest.approx(expected, rel=1e-12)


def test_the_float32_l2_term_is_added_in_float32():
    """alpha / sum(w) as a Python float keeps the L2 pass in float32; as a numpy
    float64 it ran in float64 and was rounded back (slower, other last bits)."""
    rng = np.random.RandomState(0)
    net = Network([20, 64, 1], [acts.ReLU(), acts.Sigmoid()], LOSSES["binary_log_loss"](),
                  np.float32)
    flat = rng.standard_normal(net.n_params).astype(np.float32)
    X = rng.standard_normal((37, 20)).astype(np.float32)
    Y = rng.rand(37, 1) < 0.5
    g0, g1 = np.empty_like(flat), np.empty_like(flat)
    net.loss_grad(flat, X, Y, None, 0.0, g0)
    net.loss_grad(flat, X, Y, None, 0.3, g1)
    k = net.n_coefs
    np.testing.assert_array_equal(g1[:k], g0[:k] + flat[:k] * np.float32(0.3 / 37))

