"""The weight initializers (SPEC 4.5) and how the estimators use them."""

import importlib
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning

from sknn_scratch import MLPScratchRegressor, ZeroInitializationWarning, activations
from sknn_scratch import initializers as inits
from sknn_scratch.initializers import (
    GlorotNormal, GlorotUniform, HeNormal, HeUniform, Initializer, LeCunNormal,
    LeCunUniform, RandomNormal, RandomUniform, VarianceScaling, Zeros,
)

NAMES = inits._initializers.names()
FAN_IN, FAN_OUT = 300, 500  # unequal, so fan_in and fan_avg scaling differ by 25 %

# expected variance and, for uniform draws, the bound of the support
EXPECTED = {
    "zeros": (0.0, None),
    "normal": (0.01 ** 2, None),
    "uniform": (0.05 ** 2 / 3, 0.05),
    "glorot_uniform": (2 / (FAN_IN + FAN_OUT), np.sqrt(6 / (FAN_IN + FAN_OUT))),
    "glorot_normal": (2 / (FAN_IN + FAN_OUT), None),
    "he_uniform": (2 / FAN_IN, np.sqrt(6 / FAN_IN)),
    "he_normal": (2 / FAN_IN, None),
    "lecun_normal": (1 / FAN_IN, None),
    "lecun_uniform": (1 / FAN_IN, np.sqrt(3 / FAN_IN)),
    "variance_scaling": (1 / FAN_IN, None),
}


def test_every_registered_initializer_has_an_expected_variance():
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_seeded_determinism(name):
    init = inits.get(name)
    w = init(7, 3, np.random.RandomState(0))
    assert w.shape == (7, 3)
    np.testing.assert_array_equal(w, init(7, 3, np.random.RandomState(0)))
    if name != "zeros":
        assert not np.array_equal(w, init(7, 3, np.random.RandomState(1)))


@pytest.mark.parametrize("name", NAMES)
def test_variance_matches_the_formula(name):
    variance, limit = EXPECTED[name]
    w = inits.get(name)(FAN_IN, FAN_OUT, np.random.RandomState(0))
    # 150,000 draws: the sample variance is within ~0.4 % (one s.d.) of the truth
    assert w.var() == pytest.approx(variance, rel=0.03, abs=1e-12)
    assert abs(w.mean()) < 0.02 * np.sqrt(variance) + 1e-12
    if limit is not None:
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.999 * limit


@pytest.mark.parametrize("mode, n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT),
                                     ("fan_avg", (FAN_IN + FAN_OUT) / 2)])
@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_variance_scaling_modes(mode, n, distribution):
    w = VarianceScaling(3.0, mode, distribution)(FAN_IN, FAN_OUT, np.random.RandomState(0))
    assert w.var() == pytest.approx(3.0 / n, rel=0.03)


def test_variance_scaling_rejects_a_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        VarianceScaling(mode="fan_max")(2, 2, np.random.RandomState(0))


def test_names_resolve_and_unknown_names_list_the_valid_ones():
    assert type(inits.get("he_normal")) is HeNormal
    assert type(inits.get("normal")) is RandomNormal
    assert inits.get(LeCunUniform) == LeCunUniform()
    with pytest.raises(ValueError) as info:
        inits.get("xavier")
    for name in ("glorot_uniform", "he_normal", "zeros"):
        assert repr(name) in str(info.value)


def test_repr_params_equality_and_hash():
    assert repr(RandomNormal(std=0.1)) == "RandomNormal(std=0.1)"
    assert repr(GlorotUniform()) == "GlorotUniform()"
    assert RandomUniform(0.1).get_params() == {"limit": 0.1}
    assert RandomUniform(0.1).set_params(limit=0.2) == RandomUniform(0.2)
    assert RandomNormal(0.1) != RandomNormal(0.2)
    assert HeNormal() != HeUniform() and HeNormal() == HeNormal()
    assert hash(RandomNormal(0.1)) == hash(RandomNormal(0.1))


@pytest.mark.parametrize("name", NAMES)
def test_clone_and_pickle_round_trip(name):
    init = inits.get(name)
    for copy in (clone(init), pickle.loads(pickle.dumps(init))):
        assert copy == init and copy is not init
        np.testing.assert_array_equal(copy(4, 5, np.random.RandomState(3)),
                                      init(4, 5, np.random.RandomState(3)))


# ------------------------------------------------------------------ in the estimator
def _initial_weights(**params):
    """Weights right after initialization: one SGD epoch with a negligible step."""
    X, y = make_regression(n_samples=60, n_features=64, n_targets=40, random_state=0)
    est = MLPScratchRegressor(solver="sgd", learning_rate_init=1e-12, momentum=0.0,
                              max_iter=1, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X / 10, y / 100)
    return est.coefs_


def _assert_uniform_limit(w, limit):
    # 8,000+ uniform draws: the largest |w| is within 0.1 % of the bound
    assert 0.99 * limit < np.abs(w).max() <= limit * (1 + 1e-6)


@pytest.mark.parametrize("activation, relu_family", [
    ("relu", True), ("leaky_relu", True), ("prelu", True), ("elu", True),
    ("logistic", False), ("tanh", False), ("identity", False), ("softplus", False),
    ("silu", False), ("gelu", False),
])
def test_auto_init_follows_the_hidden_activation(activation, relu_family):
    assert activations.get(activation).relu_family is relu_family
    coefs = _initial_weights(hidden_layer_sizes=(200,), activation=activation)
    fan_in, fan_out = coefs[0].shape
    he, glorot = np.sqrt(6 / fan_in), np.sqrt(6 / (fan_in + fan_out))
    _assert_uniform_limit(coefs[0], he if relu_family else glorot)
    # the output layer is Glorot uniform whatever the hidden activation
    fan_in, fan_out = coefs[1].shape
    _assert_uniform_limit(coefs[1], np.sqrt(6 / (fan_in + fan_out)))


def test_auto_init_for_a_custom_activation_is_glorot():
    class Cube(activations.Activation):
        def forward(self, z):
            return z ** 3

        def derivative(self, z):
            return 3 * z ** 2

    coefs = _initial_weights(hidden_layer_sizes=(200,), activation=Cube())
    fan_in, fan_out = coefs[0].shape
    _assert_uniform_limit(coefs[0], np.sqrt(6 / (fan_in + fan_out)))


class _Spy(Initializer):
    """Records the calls it receives, then draws a constant."""

    calls = []

    def __init__(self, value=0.5):
        self.value = value

    def __call__(self, fan_in, fan_out, random_state):
        _Spy.calls.append((fan_in, fan_out, type(random_state)))
        return np.full((fan_in, fan_out), self.value)


def test_init_list_gives_one_initializer_per_layer():
    _Spy.calls.clear()
    spy = _Spy(0.25)
    with pytest.warns(ZeroInitializationWarning):
        coefs = _initial_weights(hidden_layer_sizes=(20, 30),
                                 init=["zeros", spy, RandomUniform(0.1)])
    np.testing.assert_array_equal(coefs[0], 0.0)
    np.testing.assert_allclose(coefs[1], 0.25, atol=1e-9)
    assert 0.09 < np.abs(coefs[2]).max() <= 0.1
    assert _Spy.calls == [(20, 30, np.random.RandomState)]
    assert spy.get_params() == {"value": 0.25}  # the user's object is not mutated


@pytest.mark.parametrize("n_inits", [1, 2, 4])
def test_init_list_of_the_wrong_length_raises(n_inits):
    X, y = make_regression(n_samples=20, n_features=3, random_state=0)
    est = MLPScratchRegressor(hidden_layer_sizes=(5, 5), init=["he_normal"] * n_inits)
    with pytest.raises(ValueError, match="init has %d entries" % n_inits):
        est.fit(X, y)


def test_a_single_initializer_applies_to_every_layer():
    coefs = _initial_weights(hidden_layer_sizes=(50,), init=RandomNormal(std=0.02))
    for w in coefs:
        assert w.std() == pytest.approx(0.02, rel=0.05)


def test_unknown_init_name_raises_naming_the_parameter():
    X, y = make_regression(n_samples=20, n_features=3, random_state=0)
    with pytest.raises(ValueError, match="init") as info:
        MLPScratchRegressor(init="xavier").fit(X, y)
    assert "glorot_uniform" in str(info.value)


def test_presets_are_variance_scaling():
    for cls in (GlorotUniform, GlorotNormal, HeUniform, HeNormal, LeCunNormal,
                LeCunUniform):
        assert isinstance(cls(), VarianceScaling)
    assert isinstance(Zeros(), Initializer)


@pytest.mark.parametrize("module", ["activations", "initializers", "diagnostics",
                                    "plotting"])
def test_every_public_name_of_a_module_exists(module):
    mod = importlib.import_module(f"sknn_scratch.{module}")
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing
    namespace = {}
    exec(f"from sknn_scratch.{module} import *", namespace)  # the star import works
    assert set(mod.__all__) <= set(namespace)


@pytest.mark.parametrize("name", ["zeros", "normal", "uniform", "glorot_uniform",
                                  "he_normal", "lecun_uniform"])
def test_builtins_called_directly_take_an_int_seed_as_scikit_learn_does(name):
    init = inits.get(name)
    np.testing.assert_array_equal(init(3, 4, 7), init(3, 4, np.random.RandomState(7)))
    assert init(3, 4, None).shape == (3, 4)


def test_auto_entries_of_an_init_list_pick_as_auto_does_for_their_layer():
    X, y = make_regression(40, 3, random_state=0)
    params = dict(hidden_layer_sizes=(4, 5), activation=["relu", "tanh"], max_iter=2,
                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixed = MLPScratchRegressor(init=["auto", "auto", "normal"], **params).fit(X, y)
        named = MLPScratchRegressor(init=["he_uniform", "glorot_uniform", "normal"],
                                    **params).fit(X, y)
    for a, b in zip(mixed.coefs_, named.coefs_):
        np.testing.assert_array_equal(a, b)
