"""The bound that spares a fit its final pass over the data (``Network.surely_finite``).

A fit checks that the loss at the weights of its last update is finite (they were never
evaluated). When a bound carried through the layers shows it, no forward pass runs; the
bound must never say "finite" for a loss that is not.
"""

import math
import warnings

import numpy as np
import scipy.sparse as sp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor, activations
from sknn_scratch.losses import LOSSES
from sknn_scratch.network import Network, abs_max, activate_

BOUNDED = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "softplus",
           "silu", "gelu", "softmax", "exp", "prelu"]
HIDDEN = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "softplus",
          "silu", "gelu", "prelu", "cube"]
# output activation, loss and targets, as the estimators pair them
OUTPUTS = {
    "sigmoid": ("binary_log_loss", "indicators"),
    "softmax": ("log_loss", "one_hot"),
    "identity": ("squared_error", "real"),
    "relu": ("squared_error", "non_negative"),
    "exp": ("poisson", "non_negative"),
    "tanh": ("squared_error", "real"),
}


class _Cube(activations.Activation):
    """An activation of a user's own, which says nothing of its range."""

    def forward(self, z):
        return z ** 3

    def derivative(self, z):
        return 3 * z ** 2


@pytest.mark.parametrize("name", BOUNDED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [0.0, 0.3, 4.0, 80.0, 1e5, 1e30, 1e300])
def test_output_bounds_hold_for_the_computed_activation(name, dtype, m):
    if m > float(np.finfo(dtype).max) * 1e-6:
        pytest.skip("beyond what the network asks of this dtype")
    act = activations.get(name)
    z = np.concatenate([np.linspace(-m, m, 2002), [-m, m, 0.0]]).astype(dtype)
    z = z.reshape(-1, 1) if name != "softmax" else z.reshape(-1, 5)
    slope = None
    if act.learnable:
        slope = np.array([-3.0], dtype)  # per unit: one column
    bound = act.output_bound(float(np.abs(z).max()), slope)
    with np.errstate(over="ignore"):
        a = activate_(act, z.copy(), slope)
    # up to rounding of the last bit (exp in float32)
    assert np.abs(a).max() <= bound * (1 + 1e-6)


@pytest.mark.parametrize("slope", [0.01, 0.0, -2.0, 5.0])
def test_leaky_relu_bound_counts_its_slope(slope):
    act = activations.LeakyReLU(negative_slope=slope)
    z = np.array([[-10.0], [10.0]])
    assert np.abs(act.forward_(z.copy())).max() <= act.output_bound(10.0)


@pytest.mark.parametrize("alpha", [1.0, 0.1, 3.0, -2.0])
def test_elu_bound_counts_its_alpha(alpha):
    act = activations.get("elu").set_params(alpha=alpha)
    z = np.array([[-50.0], [-1.0], [0.5]])
    assert np.abs(act.forward_(z.copy())).max() <= act.output_bound(50.0)


def test_an_activation_of_ones_own_has_no_bound_unless_it_gives_one():
    assert _Cube().output_bound(1.0) is None


def test_a_subclass_that_redefines_the_function_loses_its_parents_bound():
    class Doubled(activations.ReLU):
        def forward_(self, z):
            np.maximum(z, 0, out=z)
            z *= 2
            return z

    class Same(activations.Tanh):  # a new name, the same function: the bound stays
        pass

    class Said(activations.Sigmoid):
        def forward_(self, z):
            return super().forward_(z)

        def output_bound(self, m, slope=None):
            return 1.0

    assert Doubled().output_bound(3.0) is None
    assert Same().output_bound(3.0) == 1.0
    assert Said().output_bound(3.0) == 1.0


def _targets(kind, rng, n, n_out, scale):
    if kind == "indicators":
        return rng.random((n, n_out)) < 0.5
    if kind == "one_hot":
        Y = np.zeros((n, n_out), bool)
        Y[np.arange(n), rng.integers(0, n_out, n)] = True
        return Y
    if kind == "real":
        return rng.standard_normal((n, n_out)) * scale
    return np.floor(rng.random((n, n_out)) * scale * 3)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(hidden=st.lists(st.sampled_from(HIDDEN), min_size=0, max_size=3),
       widths=st.lists(st.integers(1, 6), min_size=3, max_size=3),
       output=st.sampled_from(sorted(OUTPUTS)),
       n_out=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]),
       w_exp=st.floats(-3, 60), x_exp=st.floats(-3, 60), y_exp=st.floats(-3, 60),
       seed=st.integers(0, 2**16))
def test_the_bound_never_calls_an_overflowing_loss_finite(
        hidden, widths, output, n_out, dtype, w_exp, x_exp, y_exp, seed):
    loss_name, kind = OUTPUTS[output]
    n_out = max(n_out, 2) if kind == "one_hot" else n_out
    rng = np.random.default_rng(seed)
    units = [3, *widths[:len(hidden)], n_out]
    hidden = [_Cube() if h == "cube" else activations.get(h) for h in hidden]
    net = Network(units, [*hidden, activations.get(output)], LOSSES[loss_name](), dtype)
    with np.errstate(over="ignore"):
        flat = (rng.standard_normal(net.n_params) * 10.0 ** w_exp).astype(dtype)
        X = (rng.standard_normal((7, 3)) * 10.0 ** x_exp).astype(dtype)
        Y = _targets(kind, rng, 7, n_out, 10.0 ** y_exp).astype(
            bool if kind in ("indicators", "one_hot") else dtype)
    if not (np.isfinite(flat).all() and np.isfinite(X).all() and np.isfinite(Y).all()):
        return
    if net.surely_finite(flat, abs_max(X), abs_max(Y), X.shape[0]):
        with np.errstate(all="ignore"):
            assert math.isfinite(net.data_value(flat, X, Y))


# per loss: output a (broadcast over the rows), target y, and the bounds on |a|, |z|,
# |y|, chosen where one term is surely finite in float32 and 10 million are not
MANY_TERMS = {
    "squared_error": (7.5e15, -7.5e15, (7.5e15, 7.5e15, 7.5e15)),
    "binary_log_loss": (0.0, 3e30, (1.0, 50.0, 3e30)),   # p clipped to eps
    "log_loss": (0.0, 5e30, (1.0, 50.0, 5e30)),
    "poisson": (math.exp(-0.1), 6e29, (math.exp(0.1), 0.1, 6e29)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_bound_counts_its_terms(name):
    """The bound multiplies by the number of terms: 10 million terms, each far from
    overflowing alone, overflow float32 together. (Dropping the count from a bound
    passed the random-network test above, whose 7 rows the 1e6 margin absorbs.)"""
    a, y, (a_bound, z_bound, y_bound) = MANY_TERMS[name]
    loss, n = LOSSES[name](), 10 ** 7
    limit = float(np.finfo(np.float32).max) * 1e-6  # as Network.surely_finite asks
    assert loss.surely_finite(a_bound, z_bound, y_bound, 1, limit)
    assert math.isfinite(loss.value(np.full((1, 1), y, np.float32),
                                    np.full((1, 1), a, np.float32)))
    rows = (np.broadcast_to(np.float32(y), (n, 1)), np.broadcast_to(np.float32(a), (n, 1)))
    assert loss.value(*rows) == math.inf
    assert not loss.surely_finite(a_bound, z_bound, y_bound, n, limit)


def _count_checks(monkeypatch):
    calls = []
    original = Network.data_value

    def counting(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(Network, "data_value", counting)
    return calls


@pytest.mark.parametrize("activation, expected", [("relu", 0), ("tanh", 0),
                                                  ("gelu", 0), (_Cube(), 3)])
def test_a_fit_skips_the_final_pass_when_the_bound_shows_it(activation, expected,
                                                            monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 4))
    y = (X[:, 0] > 0).astype(int)
    calls = _count_checks(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPScratchClassifier((8,), activation=activation, max_iter=3, batch_size=50,
                             random_state=0).fit(X, y)
    assert len(calls) == expected  # no bound for the cube: a pass of 3 batches


def test_large_fits_are_shown_finite_in_float32_too(monkeypatch):
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((400, 20)) * 30).astype(np.float32)
    y = (X @ rng.standard_normal(20)).astype(np.float32)
    calls = _count_checks(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPScratchRegressor(hidden_layer_sizes=(32, 16), max_iter=3,
                                  random_state=0).fit(X, y)
    assert est.coefs_[0].dtype == np.float32
    assert calls == []


def test_abs_max_is_the_largest_magnitude_of_either_sign():
    assert abs_max(np.array([-3.0, 1.0])) == 3.0
    assert abs_max(np.array([[-1e3], [1e-3]])) == 1e3
    assert abs_max(sp.csr_matrix(np.array([[0.0, -5.0], [2.0, 0.0]]))) == 5.0


def test_the_bound_counts_negative_weights_and_inputs():
    """exp output, inputs all -1, a weight of -1e3: z = 1e3 overflows exp. A bound
    that took max(W) for max|W| (and max(X) for max|X|) called it finite."""
    net = Network([3, 1], [activations.get("exp")], LOSSES["poisson"](), np.float64)
    flat = net.pack([np.array([[-1e3], [1e-3], [1e-3]])], [np.zeros(1)])
    X, Y = -np.ones((4, 3)), np.ones((4, 1))
    with np.errstate(all="ignore"):
        assert not math.isfinite(net.data_value(flat, X, Y))
    assert not net.surely_finite(flat, abs_max(X), abs_max(Y), 4)


def test_the_bound_counts_the_fan_in():
    """4,000 inputs of 1 times weights of 1e16: z = 4e19, squared 1.6e39, beyond
    float32; each product alone (1e16, squared 1e32) is not."""
    n = 4000
    net = Network([n, 1], [activations.get("identity")], LOSSES["squared_error"](),
                  np.float32)
    flat = net.pack([np.full((n, 1), 1e16, np.float32)], [np.zeros(1, np.float32)])
    X, Y = np.ones((1, n), np.float32), np.zeros((1, 1), np.float32)
    with np.errstate(all="ignore"):
        assert not math.isfinite(net.data_value(flat, X, Y))
    assert not net.surely_finite(flat, abs_max(X), abs_max(Y), 1)
