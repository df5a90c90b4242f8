"""The activation objects (SPEC 4.3): values, derivatives, fast paths, parameters."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch import activations as acts
from sknn_scratch.activations import (
    ELU, GELU, Activation, Identity, LeakyReLU, PReLU, ReLU, SiLU, Sigmoid, Softmax,
    check_derivative,
)
from sknn_scratch.diagnostics import layer_outputs
from sknn_scratch.initializers import Initializer, RandomNormal

NAMES = acts._activations.names()
# every built-in, and parameters off their defaults: an ELU whose alpha is not 1 (its
# fast derivative has a (1 - alpha) term), slopes below 0 and beyond 1 (a slope of 2
# used to overflow at -1e308)
WITH_PARAMS = [acts.get(name) for name in NAMES] + [
    acts.LeakyReLU(2.0), acts.LeakyReLU(-0.5), acts.LeakyReLU(-3.0), acts.ELU(alpha=0.5),
    acts.ELU(alpha=-0.3), acts.ELU(alpha=5.0)]
DTYPES = [np.float64, np.float32]
# float32 fast paths may take another route to the same value (e.g. a (1 - a) vs
# expit(z)): a few ulps apart
TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _points(dtype, shape=(6, 5)):
    rng = np.random.RandomState(0)
    z = rng.standard_normal(shape) * 3
    z[0, :] = 0.0  # the kink of the ReLU family
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_and_derivative_keep_shape_and_dtype(name, dtype):
    act = acts.get(name)
    z = _points(dtype)
    for out in (act.forward(z), act.derivative(z)):
        assert out.shape == z.shape
        assert out.dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_derivative_take_python_scalars_and_lists(name):
    """As numpy's own functions do: ReLU's derivative of a float, and softmax and exp
    of a list, used to fail (a bool has no astype; np.result_type reads a list as a
    dtype)."""
    act = acts.get(name)
    z = [0.5, -1.0, 2.0]
    for method in (act.forward, act.derivative):
        np.testing.assert_array_equal(method(z), method(np.array(z)))
        if not act.output_only:  # softmax couples the values of a row
            assert np.shape(method(0.5)) == ()
            assert method(0.5) == method(np.array([0.5]))[0]


@pytest.mark.parametrize("name", NAMES)
def test_check_derivative_passes_every_builtin(name):
    assert check_derivative(name) < 1e-6


def test_gelu_derivative_far_from_zero():
    """GELU's z phi(z) term is clipped at |z| = 40 for overflow; a clip at 4 went
    unseen, as check_derivative's default points lie in [-3.1, 2.9]."""
    assert check_derivative("gelu", z=np.array([-8.0, -6.0, -5.0, 5.0, 6.0, 8.0])) < 1e-6
    assert abs(GELU().derivative(np.array([-8.0]))[0]) < 1e-12


def test_check_derivative_flags_a_wrong_derivative():
    class WrongTanh(Activation):
        def forward(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1.0 - np.tanh(z)  # forgot the square

    assert check_derivative(WrongTanh()) > 0.1


def test_check_derivative_flags_a_derivative_of_the_wrong_shape():
    class Scalar(Activation):
        def forward(self, z):
            return z * 2.0

        def derivative(self, z):
            return 2.0

    assert check_derivative(Scalar()) == np.inf


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", WITH_PARAMS, ids=repr)
def test_forward_in_place_agrees_with_forward(act, dtype):
    z = _points(dtype)
    buf = z.copy()
    out = act.forward_(buf)
    assert out is buf
    assert out.dtype == dtype
    np.testing.assert_allclose(out, act.forward(z), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", WITH_PARAMS, ids=repr)
def test_backward_in_place_is_delta_times_derivative(act, dtype):
    z = _points(dtype)
    delta = np.random.RandomState(1).standard_normal(z.shape).astype(dtype)
    buf = delta.copy()
    out = act.backward_(buf, z.copy(), act.forward(z))
    assert out is buf
    assert out.dtype == dtype
    np.testing.assert_allclose(out, delta * act.derivative(z), **TOL[dtype])


@pytest.mark.parametrize("alias, cls", [
    ("logistic", Sigmoid), ("linear", Identity), ("swish", SiLU),
    ("sigmoid", Sigmoid), ("leaky_relu", LeakyReLU), ("gelu", GELU), ("elu", ELU),
])
def test_names_and_aliases_resolve(alias, cls):
    assert type(acts.get(alias)) is cls


def test_get_accepts_a_class_and_returns_an_instance_as_is():
    leaky = LeakyReLU(negative_slope=0.3)
    assert acts.get(leaky) is leaky
    assert acts.get(ReLU) == ReLU()


@pytest.mark.parametrize("spec", ["rectifier", "ReLU", 3, None])
def test_unknown_name_raises_and_lists_the_valid_ones(spec):
    with pytest.raises(ValueError) as info:
        acts.get(spec)
    for name in ("relu", "tanh", "leaky_relu", "logistic"):
        assert repr(name) in str(info.value)


def test_repr_shows_the_parameters():
    assert repr(LeakyReLU(negative_slope=0.1)) == "LeakyReLU(negative_slope=0.1)"
    assert repr(LeakyReLU(0.1)) == "LeakyReLU(negative_slope=0.1)"
    assert repr(ELU()) == "ELU(alpha=1.0)"
    assert repr(ReLU()) == "ReLU()"


def test_get_params_and_set_params():
    act = LeakyReLU(0.2)
    assert act.get_params() == {"negative_slope": 0.2}
    assert act.set_params(negative_slope=0.3) is act
    assert act.negative_slope == 0.3
    with pytest.raises(ValueError, match="negative_slope"):
        act.set_params(slope=0.1)


class _Wrapping(Activation):
    """An activation with an activation as a parameter: ``scale * inner(z)``."""

    def __init__(self, inner=None, scale=1.0):
        self.inner = inner
        self.scale = scale

    def forward(self, z):
        return self.scale * self.inner.forward(z)

    def derivative(self, z):
        return self.scale * self.inner.derivative(z)


def test_parameters_of_a_parameter_are_reached_with_double_underscores():
    """As in a scikit-learn estimator that wraps another: get_params(deep=True) named
    activation__inner__negative_slope, which set_params and a grid search refused."""
    act = _Wrapping(inner=LeakyReLU(0.1), scale=2.0)
    assert act.get_params(deep=False) == {"inner": act.inner, "scale": 2.0}
    assert act.get_params() == {"inner": act.inner, "inner__negative_slope": 0.1,
                                "scale": 2.0}
    assert repr(act) == "_Wrapping(inner=LeakyReLU(negative_slope=0.1), scale=2.0)"
    inner = act.inner
    assert act.set_params(inner__negative_slope=0.3, scale=1.0) is act
    assert act.inner is inner and inner.negative_slope == 0.3 and act.scale == 1.0
    with pytest.raises(ValueError, match="Invalid parameter 'slope' for LeakyReLU"):
        act.set_params(inner__slope=0.1)
    with pytest.raises(ValueError, match=r"Invalid parameter 'scale__x' for _Wrapping: "
                                         r"its scale, 1.0, has no parameters"):
        act.set_params(scale__x=0.1)

    X, y = load_iris(return_X_y=True)
    user = _Wrapping(inner=LeakyReLU(0.1))
    est = MLPScratchClassifier((8,), activation=user, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(est, {"activation__inner__negative_slope": [0.05, 0.3]},
                              cv=2).fit(X, y)
        best = search.best_params_["activation__inner__negative_slope"]
        direct = clone(est).set_params(activation__inner__negative_slope=best).fit(X, y)
    assert user.inner.negative_slope == 0.1  # cloned, never the user's object
    assert search.cv_results_["params"][1] == {"activation__inner__negative_slope": 0.3}
    assert search.best_estimator_.activation.inner.negative_slope == best
    np.testing.assert_array_equal(search.best_estimator_.coefs_[0], direct.coefs_[0])


def test_equality_and_hash_follow_class_and_parameters():
    assert LeakyReLU(0.1) == LeakyReLU(negative_slope=0.1)
    assert hash(LeakyReLU(0.1)) == hash(LeakyReLU(0.1))
    assert LeakyReLU(0.1) != LeakyReLU(0.2)
    assert PReLU(0.1) != LeakyReLU(0.1)  # same parameters, another class
    assert ReLU() == ReLU() and ReLU() != Identity()
    assert len({ReLU(), ReLU(), LeakyReLU(0.1), LeakyReLU(0.1)}) == 2


def test_equal_objects_hash_equal_with_a_parameter_as_an_array():
    """Equality reads a parameter given as an array of one value as that value; the
    hash used to differ then (a set kept both)."""
    class Scaled(Activation):
        def __init__(self, w=1.0):
            self.w = w

        def forward(self, z):
            return z * self.w

        def derivative(self, z):
            return np.ones_like(z) * self.w

    a, b = Scaled(np.array(2.0)), Scaled(2.0)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert len({Scaled(2.0), Scaled(3.0)}) == 2


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_clone_round_trip(name):
    act = acts.get(name)
    for copy in (pickle.loads(pickle.dumps(act)), clone(act)):
        assert copy == act and copy is not act
        z = _points(np.float64)
        np.testing.assert_array_equal(copy.forward(z), act.forward(z))


def test_clone_keeps_non_default_parameters():
    act = ELU(alpha=0.5)
    copy = clone(act)
    assert copy.alpha == 0.5 and copy is not act


def test_derivative_conventions_at_zero():
    zero = np.zeros(3)
    np.testing.assert_array_equal(ReLU().derivative(zero), 0.0)
    np.testing.assert_array_equal(LeakyReLU(0.2).derivative(zero), 0.2)
    np.testing.assert_array_equal(Sigmoid().derivative(zero), 0.25)
    # the fast paths follow the same conventions
    for act, expected in ((ReLU(), 0.0), (LeakyReLU(0.2), 0.2)):
        out = act.backward_(np.ones(3), zero.copy(), act.forward(zero))
        np.testing.assert_array_equal(out, expected)


EXTREMES = [-1e308, -1e4, 0.0, 1e4, 1e308]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", WITH_PARAMS, ids=repr)
def test_no_warning_and_finite_at_extreme_inputs(act, dtype):
    name = repr(act)
    big = float(np.finfo(dtype).max)
    values = [np.clip(v, -big, big) for v in EXTREMES] + [-big, big]
    # one row (softmax couples a row) and one column (each value alone in its row)
    for z in (np.array([values], dtype), np.array(values, dtype)[:, None]):
        # underflow to 0 is the right answer (e.g. exp(-1e4)), not an error
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                    divide="raise", under="ignore"):
            warnings.simplefilter("error")
            a = act.forward(z)
            outs = [a, act.derivative(z), act.forward_(z.copy()),
                    act.backward_(np.ones_like(z), z.copy(), a.copy())]
        for out in outs:
            assert np.isfinite(out).all(), (name, out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_training_pass_with_slopes_beyond_one_stays_finite(dtype):
    """Learned slopes may pass 1 (the README's reach 1.2): slope z stays finite for a
    finite z, as LeakyReLU's does, without a warning; an infinite z stays infinite."""
    big = np.finfo(dtype).max
    z = np.array([[-big, -1.0, 2.0, -np.inf], [-big / 2, 0.0, -3.0, np.inf]], dtype)
    slope = np.array([2.0, 1.5, 0.5, 3.0], dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        a = PReLU().forward_param_(z.copy(), slope)
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, [[-big, -1.5, 2.0, -np.inf],
                                      [-big, 0.0, -1.5, np.inf]])
    # far from the limit, the plain passes: exactly the select formula
    z = np.random.default_rng(0).standard_normal((6, 4)).astype(dtype) * 3
    np.testing.assert_array_equal(PReLU().forward_param_(z.copy(), slope),
                                  np.where(z < 0, z * slope, z))


@pytest.mark.parametrize("act", [LeakyReLU(np.float64(0.1)), ELU(alpha=np.float64(0.5)),
                                 LeakyReLU(np.float64(2.0))], ids=repr)
def test_a_numpy_scalar_parameter_keeps_float32_float32(act):
    """A grid from np.logspace gives numpy float64 parameters, which numpy does not
    take as weak as it takes a Python float: forward turned float32 into float64."""
    z = np.array([-2.0, -0.5, 0.0, 1.5], np.float32)
    out = act.forward(z)
    assert out.dtype == np.float32
    plain = clone(act).set_params(**{k: float(v) for k, v in act.get_params().items()})
    np.testing.assert_array_equal(out, plain.forward(z))
    np.testing.assert_array_equal(out, act.forward_(z.copy()))
    # training's passes too: the same float32 values as with the Python float
    delta = act.backward_(np.ones_like(z), z, out)
    assert delta.dtype == np.float32
    np.testing.assert_array_equal(delta, plain.backward_(np.ones_like(z), z, out))


def test_max_derivative_of_softmax_and_exp():
    """Read off a grid as one row, softmax's was 0.005; exp's derivative has no
    maximum, and the grid's 22,026 made every hidden exp unit 'saturated'."""
    assert Softmax().max_derivative == 0.25 == Softmax().derivative(np.zeros((1, 2))).max()
    assert acts.Exp().max_derivative == 1.0 == acts.Exp().derivative(np.zeros(1))[0]


def test_an_activation_taking_its_function_from_a_mixin_trains_with_it():
    """forward and derivative from a mixin placed before a built-in: its fast passes
    (ReLU's mask) used to stay, and the network computed ReLU while the derivative
    check, which calls forward and derivative, passed."""

    class TanhMixin:
        def forward(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1.0 / np.cosh(z) ** 2

    class MixedTanh(TanhMixin, ReLU):
        pass

    act = MixedTanh()
    z = np.array([[-2.0, 0.5]])
    np.testing.assert_array_equal(act.forward_(z.copy()), np.tanh(z))
    assert not act.mask_derivative and act.needs_input
    np.testing.assert_allclose(act.backward_(np.ones_like(z), z, np.tanh(z)),
                               act.derivative(z))
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPScratchClassifier((5,), activation=act, max_iter=3,
                                   random_state=0).fit(X, y)
    hidden = layer_outputs(est, X)[0]
    np.testing.assert_allclose(hidden, np.tanh(X @ est.coefs_[0] + est.intercepts_[0]))
    assert hidden.min() < 0  # not a ReLU


def test_a_subclass_defining_forward_and_its_fast_pass_drops_the_parents_backward():
    """A forward of its own with its own forward_, the derivative inherited: the
    parent's backward_, written for the parent's function (sigmoid's a (1 - a)), is
    not this one's; it was kept once, and the gradient came out of the wrong sign."""

    class ShiftedSigmoid(Sigmoid):
        def forward(self, z):
            return expit(np.asarray(z)) + 1.0

        def forward_(self, z):
            expit(z, out=z)
            z += 1.0
            return z

    act = ShiftedSigmoid()
    z = np.array([[-2.0, 0.0, 3.0]])
    assert act.needs_input
    np.testing.assert_allclose(act.backward_(np.ones_like(z), z, act.forward(z)),
                               act.derivative(z))


def test_a_subclass_whose_backward_reads_z_gets_z():
    """Its own derivative and a backward_ that reads z, under a parent that computes
    from a = g(z) (needs_input False): the network must pass z, not a."""

    class ZSigmoid(Sigmoid):
        def derivative(self, z):
            return expit(z) * expit(-z)

        def backward_(self, delta, z, a):
            delta *= self.derivative(z)
            return delta

    assert ZSigmoid.needs_input
    X, y = np.random.RandomState(0).randn(40, 3), np.arange(40) % 2
    losses = []
    for act in (Sigmoid(), ZSigmoid()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            losses.append(MLPScratchClassifier((4,), activation=act, solver="lbfgs",
                                               max_iter=5, random_state=0).fit(X, y).loss_)
    assert losses[1] == pytest.approx(losses[0], rel=1e-12)


def test_softmax_rows_sum_to_one_at_extreme_inputs():
    z = np.array([[-1e308, 0.0, 1e308], [1e308, 1e308, -1e4], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        s = Softmax().forward(z)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    np.testing.assert_allclose(s, [[0, 0, 1], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])


def test_sigmoid_and_tanh_derivatives_vanish_far_from_zero():
    z = np.array([-40.0, 40.0])
    assert Sigmoid().derivative(z).max() < 1e-16
    assert acts.get("tanh").derivative(z).max() < 1e-16
    assert Sigmoid().max_derivative == pytest.approx(0.25)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "strided", "multi-slice"])
def test_relu_in_place_on_a_batch_keeps_nan_and_infinities(dtype, layout):
    # a contiguous batch runs in slices against shared zeros, not against the scalar
    # 0: the same values, NaN kept, every slice reached
    rows = 2 * acts._ZEROS // 4 + 3 if layout == "multi-slice" else 7
    z = np.asarray(_points(dtype, shape=(rows, 4)), order="F" if layout == "F" else "C")
    if layout == "strided":
        z = np.zeros((rows, 8), dtype)[:, ::2]
        z[...] = _points(dtype, shape=(rows, 4))
    z[1] = [np.nan, np.inf, -np.inf, -0.0]
    z[-1] = [-1.0, 2.0, np.nan, -np.inf]  # in the last slice
    expected = np.maximum(z, 0)
    out = acts.ReLU().forward_(z)
    assert out is z
    np.testing.assert_array_equal(out, expected)
    assert np.isnan(out[1, 0]) and out[1, 1] == np.inf and out[1, 2] == 0
    assert out[-1, 0] == 0 and out[-1, 1] == 2 and np.isnan(out[-1, 2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_arrays_take_the_vectorized_sigmoid_and_agree_with_expit(dtype,
                                                                      monkeypatch):
    """From acts._VECTORIZED_FROM elements the sigmoid is numpy's four passes, not
    scipy's expit: the same values to a few ulps, in place, without a warning, at
    every extreme."""
    big = float(np.finfo(dtype).max)
    extremes = [0.0, -0.0, 1e-300, -1e-300, -745.0, -746.0, -710.0, 709.0, 800.0,
                -800.0, -90.0, 90.0, big, -big, np.inf, -np.inf]
    rng = np.random.default_rng(0)
    z = np.concatenate([extremes, rng.standard_normal(acts._VECTORIZED_FROM) * 20])
    z = z.astype(dtype)[:, None]
    expected = expit(z)
    calls = []
    monkeypatch.setattr(acts, "expit",
                        lambda *a, **k: calls.append(a) or expit(*a, **k))
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                divide="raise", under="ignore"):
        warnings.simplefilter("error")
        buf = z.copy()
        out = Sigmoid().forward_(buf)
        finite = z[np.isfinite(z)][:, None]  # z sigmoid(z) is NaN at -inf
        values = [out, Sigmoid().forward(z), Sigmoid().derivative(z),
                  acts.get("softplus").derivative(z), SiLU().forward(finite)]
    assert calls == []  # no element went through expit
    assert out is buf and out.dtype == dtype
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(out, expected, rtol=4 * eps, atol=0)
    np.testing.assert_array_equal(values[1], out)
    for v in values:
        assert v.dtype == dtype and np.isfinite(v).all()
    assert out.min() == 0 and out.max() == 1 and ((out >= 0) & (out <= 1)).all()
    Sigmoid().forward_(z[:acts._VECTORIZED_FROM - 1].copy())  # short: expit's
    assert len(calls) == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_arrays_take_the_vectorized_softplus_and_agree_with_logaddexp(dtype,
                                                                          monkeypatch):
    """The same for softplus against numpy's logaddexp(0, z), NaN included."""
    big = float(np.finfo(dtype).max)
    extremes = [0.0, -0.0, 1e-300, -745.0, -746.0, 710.0, 800.0, -800.0, 40.0, -40.0,
                big, -big, np.inf, -np.inf, np.nan]
    rng = np.random.default_rng(0)
    z = np.concatenate([extremes, rng.standard_normal(acts._VECTORIZED_FROM) * 20])
    z = z.astype(dtype)[:, None]
    logaddexp = np.logaddexp
    with np.errstate(invalid="ignore"):  # logaddexp warns of its NaN
        expected = logaddexp(0, z)
    calls = []
    monkeypatch.setattr(np, "logaddexp",
                        lambda *a, **k: calls.append(a) or logaddexp(*a, **k))
    softplus = acts.get("softplus")
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                divide="raise", under="ignore"):
        warnings.simplefilter("error")
        buf = z.copy()
        out = softplus.forward_(buf)
        again = softplus.forward(z)
    assert calls == []
    assert out is buf and out.dtype == dtype
    np.testing.assert_array_equal(again, out)
    np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(dtype).eps, atol=0)
    assert np.isnan(out[-1 - acts._VECTORIZED_FROM]).all()  # NaN stays NaN
    with np.errstate(invalid="ignore"):
        softplus.forward_(z[:acts._VECTORIZED_FROM - 1].copy())  # short: logaddexp's
    assert len(calls) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_prelu_passes_equal_the_select_formulas(dtype, layout):
    """PReLU's in-place passes (plain max, min, multiply and add, no select) give
    exactly ``where(z < 0, slope z, z)``, its derivative and its slope gradient, in
    either memory order and on a strided view."""
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((40, 12)) * 3).astype(dtype)
    z[0] = 0.0
    z[1, :3] = [np.inf, -np.inf, np.finfo(dtype).max]
    delta = rng.standard_normal(z.shape).astype(dtype)
    slope = rng.uniform(-0.5, 1.5, z.shape[1]).astype(dtype)
    if layout == "F":
        z, delta = np.asfortranarray(z), np.asfortranarray(delta)
    elif layout == "strided":
        z, delta = z[::2], delta[::2]
    act = PReLU()
    a = act.forward_param_(z.copy(order="K"), slope)
    np.testing.assert_array_equal(a, np.where(z < 0, z * slope, z))
    got, slope_grad = delta.copy(order="K"), np.empty_like(slope)
    with np.errstate(invalid="ignore"):  # inf * 0 in the reference
        act.backward_param_(got, z, slope, slope_grad)
        expected = np.sum(np.where(z <= 0, delta * z, 0), axis=0)
    np.testing.assert_array_equal(got, delta * np.where(z <= 0, slope, 1))
    np.testing.assert_allclose(slope_grad, expected, rtol=1e-6 if dtype == np.float32
                               else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, -0.3])
def test_elu_pass_in_place_equals_its_select_formula(alpha, layout, dtype):
    """ELU's in-place pass (max, min, expm1, no select) gives forward's values
    exactly, in either memory order and on a strided view."""
    z = (np.random.default_rng(0).standard_normal((40, 12)) * 3).astype(dtype)
    z[0, :5] = [0.0, -0.0, np.inf, -np.inf, np.finfo(dtype).max]
    if layout == "F":
        z = np.asfortranarray(z)
    elif layout == "strided":
        z = z[::2]
    act = ELU(alpha=alpha)
    np.testing.assert_array_equal(act.forward_(z.copy(order="K")), act.forward(z))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.01, 0.1, 0.3, 0.7, 1.0, 0.0])
def test_leaky_relu_derivative_pass_is_exactly_one_or_the_slope(slope, dtype):
    """delta times exactly 1 where a > 0 and exactly the slope elsewhere."""
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((40, 12)) * 3).astype(dtype)
    z[0] = 0.0
    delta = rng.standard_normal(z.shape).astype(dtype)
    act = LeakyReLU(negative_slope=slope)
    a = act.forward_(z.copy())
    got = act.backward_(delta.copy(), z, a)
    np.testing.assert_array_equal(got, delta * np.where(z > 0, 1, dtype(slope)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_derivative_pass_from_a_over_z_agrees_with_the_derivative(dtype):
    """GELU's backward pass takes Phi(z) as a / z instead of a second ndtr: the same
    gradient to a few ulps of Phi, at 0, at tiny and infinite z, and near g' = 0."""
    rng = np.random.default_rng(0)
    big, tiny = float(np.finfo(dtype).max), float(np.finfo(dtype).tiny)
    special = [0.0, -0.0, tiny, -tiny, tiny / 8, -tiny / 8, 3 * tiny, np.inf, -np.inf,
               big, -big, -0.7518, -0.75, -37.0, -38.5, 40.0, np.nan]
    z = np.concatenate([special, rng.standard_normal(2000) * 4]).astype(dtype)[:, None]
    act = GELU()
    with np.errstate(invalid="ignore"):  # -inf * Phi(-inf) = -inf * 0
        a = act.forward(z)
        expected = act.derivative(z)
    delta = rng.standard_normal(z.shape).astype(dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                divide="raise", under="ignore"):
        warnings.simplefilter("error")
        got = act.backward_(delta.copy(), z.copy(), a.copy())
    assert got.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-15) if dtype == np.float64 else dict(rtol=1e-5,
                                                                         atol=1e-6)
    np.testing.assert_allclose(got, delta * expected, **tol)  # NaN where z is NaN
    assert np.isfinite(got[:-1 - 2000]).all()


# ------------------------------------------------- subclasses of built-in activations
class _TwoSigmoid(Sigmoid):
    """Redefines the function and its derivative."""

    def forward(self, z):
        return 2.0 * super().forward(z)

    def derivative(self, z):
        return 2.0 * super().derivative(z)


class _ShiftedReLU(ReLU):
    """Redefines the function only: the inherited derivative still holds."""

    def forward(self, z):
        return np.maximum(z, 0) + 1.0


class _HalfTanh(acts.Tanh):
    def forward(self, z):
        return 0.5 * np.tanh(z)

    def derivative(self, z):
        return 0.5 * (1.0 - np.tanh(z) ** 2)


SUBCLASSES = [_TwoSigmoid(), _ShiftedReLU(), _HalfTanh()]


@pytest.mark.parametrize("act", SUBCLASSES, ids=lambda a: type(a).__name__)
def test_a_subclass_that_redefines_forward_or_derivative_gets_passes_from_them(act):
    z = _points(np.float64)
    np.testing.assert_array_equal(act.forward_(z.copy()), act.forward(z))
    delta = np.random.RandomState(1).standard_normal(z.shape)
    out = act.backward_(delta.copy(), z.copy(), act.forward(z))
    np.testing.assert_array_equal(out, delta * act.derivative(z))
    assert act.needs_input and not act.mask_derivative
    assert act.output_bound(3.0) is None  # the parent's bound is of another function
    assert check_derivative(act) < 1e-7


@pytest.mark.parametrize("act", SUBCLASSES, ids=lambda a: type(a).__name__)
def test_a_network_of_a_subclass_computes_the_subclass_function(act):
    X, y = _iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 3 epochs
        est = MLPScratchClassifier((5,), activation=act, max_iter=3,
                                   random_state=0).fit(X, y)
    hidden = act.forward(X @ est.coefs_[0] + est.intercepts_[0])
    np.testing.assert_allclose(layer_outputs(est, X)[0], hidden, rtol=1e-12)
    z = hidden @ est.coefs_[1] + est.intercepts_[1]
    np.testing.assert_allclose(est.predict_proba(X), Softmax().forward(z), rtol=1e-10)


def test_a_subclass_keeps_what_it_says_of_itself():
    class Fast(_TwoSigmoid):  # says how to compute its function in place, too
        def forward_(self, z):
            z[...] = self.forward(z)
            return z

    class Masked(ReLU):  # the same function and derivative: nothing reset
        pass

    assert Fast.forward_ is not Activation.forward_
    assert Masked.mask_derivative and not Masked().needs_input
    assert Masked.backward_ is ReLU.backward_ and Masked.inverse is ReLU.inverse


def test_a_subclass_of_a_learnable_activation_must_redefine_its_training_passes():
    with pytest.raises(TypeError, match="Shifted is learnable, so its training uses "
                                        "forward_param_"):
        class Shifted(PReLU):  # noqa: F841 - defining it is what raises
            def forward(self, z):
                return super().forward(z) + 1.0


def test_equality_of_parameters_that_are_arrays():
    class Weighted(Activation):
        def __init__(self, w=None):
            self.w = w

        def forward(self, z):
            return z

        def derivative(self, z):
            return np.ones_like(z)

    assert Weighted(np.array([1.0, 2.0])) == Weighted(np.array([1.0, 2.0]))
    assert Weighted(np.array([1.0, 2.0])) != Weighted(np.array([1.0, 3.0]))
    assert Weighted(np.array([1.0, 2.0])) != Weighted(1.0)
    assert Weighted(None) == Weighted(None)


@pytest.mark.parametrize("act", [Identity(), Sigmoid(), acts.Tanh(), ReLU(),
                                 LeakyReLU(0.1), ELU(0.5), acts.Softplus(), acts.Exp()],
                         ids=repr)
def test_inverse_undoes_forward_where_the_function_is_invertible(act):
    z = np.linspace(-2.5, 2.5, 21)
    a = act.forward(z)
    if isinstance(act, ReLU):  # invertible above 0; below, the inverse starts alive
        z, a = z[z > 0], a[z > 0]
    np.testing.assert_allclose(act.inverse(a), z, rtol=1e-6, atol=1e-9)
    assert np.isfinite(act.inverse(np.array([-1e9, -1.0, 0.0, 1.0, 1e9]).clip(
        *((0, None) if isinstance(act, (ReLU, acts.Softplus, acts.Exp)) else
          (-1, 1) if isinstance(act, (Sigmoid, acts.Tanh)) else (None, None))))).all()


def test_activations_without_an_inverse_say_none():
    for act in (acts.SiLU(), GELU(), ELU(alpha=0.0)):
        assert act.inverse(np.array([0.5])) is None


def test_sigmoid_and_tanh_derivatives_keep_their_tails():
    """Accurate and even far from 0: a tanh unit at z = 30 is saturated, not dead."""
    z = np.array([1.0, 5.0, 19.5, 30.0, 37.5, 300.0])
    e = np.exp(-z)
    exact_sigmoid = e / (1 + e) ** 2
    exact_tanh = 4 * e * e / (1 + e * e) ** 2
    for act, exact in ((Sigmoid(), exact_sigmoid), (acts.Tanh(), exact_tanh)):
        for side in (z, -z):
            np.testing.assert_allclose(act.derivative(side), exact, rtol=1e-13)
    assert acts.Tanh().derivative(np.array([1e3, -1e308])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("act, beyond", [(acts.Tanh(), [-5.0, 1.0, 3.0]),
                                         (acts.Softplus(), [-2.0, 0.0]),
                                         (ELU(2.0), [-3.0, -2.0])])
def test_a_mean_out_of_reach_starts_the_output_where_it_still_learns(act, beyond):
    """The output bias of a mean the activation cannot reach: finite, and where g' is
    still at least 1 % of its peak (a saturated output would not learn)."""
    bias = act.inverse(np.array(beyond))
    assert np.isfinite(bias).all()
    assert (act.derivative(bias) >= 0.0099 * act.max_derivative).all()


# ------------------------------------------ users' objects: what fit takes and names
def _iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def test_a_subclass_of_a_builtin_with_parameters_of_its_own_is_fitted():
    """The parent's range checks are of the parent's parameters: a subclass that takes
    others raised AttributeError ('negative_slope', 'std') at fit."""

    class MyLeaky(LeakyReLU):
        def __init__(self, slope=0.2):
            self.slope = slope

        def forward(self, z):
            return np.where(z > 0, z, self.slope * z)

        def derivative(self, z):
            return np.where(z > 0, 1.0, self.slope)

    class MyNormal(RandomNormal):
        def __init__(self, sigma=0.1):
            self.sigma = sigma

        def __call__(self, fan_in, fan_out, random_state):
            return random_state.normal(0, self.sigma, (fan_in, fan_out))

    X, y = _iris()
    est = _fit_quietly(MLPScratchClassifier((8,), MyLeaky(0.3), init=MyNormal(0.5),
                                            max_iter=300, random_state=0), X, y)
    assert est.score(X, y) > 0.8  # it trains (chance: 1/3)
    assert est.activations_[0] == MyLeaky(0.3)
    z = X @ est.coefs_[0] + est.intercepts_[0]
    np.testing.assert_allclose(layer_outputs(est, X)[0], np.where(z > 0, z, 0.3 * z))
    # the parent's own parameters are still checked where the subclass keeps them
    class Kept(LeakyReLU):
        def forward(self, z):
            return np.where(z > 0, z, self.negative_slope * z)

    with pytest.raises(ValueError, match="negative_slope of Kept must be a finite"):
        _fit_quietly(MLPScratchClassifier((8,), Kept(np.nan), max_iter=5), X, y)


def test_a_parameter_stored_under_another_name_is_named():
    class Renamed(Activation):
        def __init__(self, k=1.0):
            self._k = k

        def forward(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1 - np.tanh(z) ** 2

    X, y = _iris()
    with pytest.raises(InvalidParameterError, match=(
            r"Invalid activation=Renamed\(\.\.\.\): Renamed has no attribute 'k', which "
            r"its __init__ takes: .* stored under its own name \(self.k = k\)")):
        MLPScratchClassifier((8,), Renamed(2.0), max_iter=5).fit(X, y)


@pytest.mark.parametrize("body, raised", [
    ("raise RuntimeError('boom')", "RuntimeError: boom"),
    ("return 1 / 0", "ZeroDivisionError: division by zero"),
])
def test_an_initializer_that_fails_is_named(body, raised):
    namespace = {"Initializer": Initializer}
    exec(f"class Failing(Initializer):\n    def __call__(self, fan_in, fan_out, rs):\n"
         f"        {body}\n", namespace)
    X, y = _iris()
    with pytest.raises(InvalidParameterError, match=(
            rf"Invalid init=Failing\(\): calling it as init\(fan_in=4, fan_out=8, "
            rf"random_state\) raised {raised}")):
        MLPScratchClassifier((8,), init=namespace["Failing"](), max_iter=5).fit(X, y)


def test_needs_input_false_without_a_backward_from_a_is_refused():
    """The backward pass then hands the layer a = g(z) in z's place: the generic
    backward_'s derivative(z) trained on wrong gradients (relative error 0.2)."""
    with pytest.raises(TypeError, match="Softsign sets needs_input = False, so the "
                                        "backward pass keeps only a = g"):
        class Softsign(Activation):  # noqa: F841 - defining it is what raises
            needs_input = False

            def forward(self, z):
                return z / (1 + np.abs(z))

            def derivative(self, z):
                return 1 / (1 + np.abs(z)) ** 2

    class FromA(Activation):  # g' from a: what needs_input = False is for
        needs_input = False

        def forward(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1 - np.tanh(z) ** 2

        def backward_(self, delta, z, a):
            delta *= 1 - a ** 2
            return delta

    assert not FromA().needs_input


def test_a_forward_in_float32_is_checked_to_its_own_precision():
    """Differences of a float32 forward with a step of 1e-6 measure its rounding (a
    relative error of 0.16 for a correct derivative); a wrong one is still caught."""

    class F32(Activation):
        def __init__(self, scale=1.0):
            self.scale = scale

        def forward(self, z):
            return np.tanh(z).astype(np.float32)

        def derivative(self, z):
            return (self.scale * (1 - np.tanh(z) ** 2)).astype(np.float32)

    assert acts.check_derivative(F32()) < 1e-3
    assert acts.check_derivative(F32(), eps=1e-6) > 0.01  # the old step
    X, y = _iris()
    for data in (X, X.astype(np.float32)):
        _fit_quietly(MLPScratchClassifier((8,), F32(), max_iter=5), data, y)
    with pytest.raises(InvalidParameterError, match="derivative disagrees"):
        MLPScratchClassifier((8,), F32(1.01), max_iter=5).fit(X, y)


def test_a_derivative_check_that_raises_is_named():
    class RowWise(Activation):  # works on the 2-d probe, not on a 1-d z
        def forward(self, z):
            return np.tanh(z) + 0 * z[:, :1]

        def derivative(self, z):
            return 1 - np.tanh(z) ** 2

    X, y = _iris()
    with pytest.raises(InvalidParameterError, match=(
            r"Invalid activation=RowWise\(\): checking its derivative against central "
            r"differences of its forward, on a 1-d z .* raised IndexError")):
        MLPScratchClassifier((8,), RowWise(), max_iter=5).fit(X, y)


def test_learnable_activations_are_hidden_and_start_from_a_slope():
    X, y = _iris()
    for spec in ("prelu", PReLU(0.25)):  # its slopes would never move: a LeakyReLU
        with pytest.raises(InvalidParameterError, match=(
                "learns per-unit parameters, which only hidden layers train")):
            MLPScratchRegressor(hidden_layer_sizes=(8,), output_activation=spec,
                                max_iter=5).fit(X, y)

    class MyLearn(Activation):
        learnable = True

        def forward(self, z):
            return z

        def derivative(self, z):
            return np.ones_like(z)

        def forward_param_(self, z, slope):
            return z

        def derivative_param(self, z, slope):
            return np.ones_like(z)

        def backward_param_(self, delta, z, slope, grad):
            return delta

    with pytest.raises(InvalidParameterError, match=(
            r"Invalid activation=MyLearn\(\): a learnable activation starts its "
            r"per-unit parameters from its negative_slope")):
        MLPScratchClassifier((8,), MyLearn(), max_iter=5).fit(X, y)


def _elementwise(forward, derivative):
    class Custom(Activation):
        def forward(self, z):
            return forward(np.asarray(z, dtype=float))

        def derivative(self, z):
            return derivative(np.asarray(z, dtype=float))

    return Custom()


def _naive_sigmoid(z):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(z) / (1 + np.exp(z))  # NaN where exp overflows


@pytest.mark.parametrize("forward, derivative, scale", [
    (np.exp, np.exp, 1.0),  # no largest: g'(0), as Exp's
    (lambda z: z ** 3, lambda z: 3 * z ** 2, 3.0),  # g'(0) = 0: the largest on [-1, 1]
    (lambda z: z ** 2 / 2, lambda z: z, 1.0),
    # bounded, its rise beyond z = 10: its largest (it was taken for growing: 6e-6)
    (lambda z: np.logaddexp(0, z - 12), lambda z: expit(z - 12), 1.0),
    # bounded, NaN beyond z = 14 (it was taken for growing: 0.5)
    (lambda z: np.logaddexp(0, 50 * z) / 50, lambda z: _naive_sigmoid(50 * z), 1.0),
    (np.tanh, lambda z: 1 - np.tanh(z) ** 2, 1.0),
], ids=["exp", "cube", "square", "softplus_shifted", "naive_sharp_softplus", "tanh"])
def test_max_derivative_of_a_users_activation(forward, derivative, scale):
    assert _elementwise(forward, derivative).max_derivative == pytest.approx(scale,
                                                                             rel=1e-9)


@pytest.mark.parametrize("act", [a for a in WITH_PARAMS if not a.output_only]
                         + [acts.LeakyReLU(0.0), acts.ELU(alpha=0.0)], ids=repr)
def test_value_range_holds_every_value_and_its_finite_edges_are_reached(act):
    """A regressor refuses targets beyond ``value_range``: a range too narrow would
    refuse reachable targets, one too wide (the default) lets a fit end on a bound
    with no word."""
    z = np.linspace(-60, 60, 240_001)  # steps of 5e-4 around the minima, at -1.28, -0.75
    if act.learnable:
        a = act.forward_param_(z.reshape(-1, 1).copy(), np.array([0.25]))
    else:
        a = act.forward(z)
    low, high = act.value_range
    assert low <= a.min() and a.max() <= high
    if act.learnable:  # its slopes are learned: no bound
        assert act.value_range == (-np.inf, np.inf)
        return
    far = act.forward(np.array([-1e6, 1e6]))
    for edge, reached, bounded in ((low, a.min(), far[0] > -1e3),
                                   (high, a.max(), far[1] < 1e3)):
        assert np.isfinite(edge) == bounded
        if bounded:
            assert reached == pytest.approx(edge, abs=1e-6)
