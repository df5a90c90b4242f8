"""The optimizers, recomputed from their formulas, and scikit-learn's schedules."""

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from sknn_scratch.solvers import SGD, Adam, lbfgs

N = 37


def _run(optimizer, steps, seed=0, dtype=np.float64):
    """Apply ``steps`` random gradients; return the parameter history."""
    rng = np.random.RandomState(seed)
    params = rng.standard_normal(N).astype(dtype)
    history = [params.copy()]
    grads = [rng.standard_normal(N).astype(dtype) for _ in range(steps)]
    for g in grads:
        optimizer.step(params, g.copy())
        history.append(params.copy())
    return history, grads


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_sgd_follows_the_momentum_formula(momentum, nesterov):
    lr = 0.05
    history, grads = _run(SGD(N, np.float64, lr, "constant", momentum, nesterov), 5)
    p, v = history[0].copy(), np.zeros(N)
    for g, got in zip(grads, history[1:]):
        v = momentum * v - lr * g
        p = p + (momentum * v - lr * g if nesterov else v)
        np.testing.assert_allclose(got, p, rtol=1e-13, atol=1e-15)


def test_adam_follows_the_formula_with_bias_correction():
    lr, b1, b2, eps = 0.01, 0.8, 0.99, 1e-8
    history, grads = _run(Adam(N, np.float64, lr, b1, b2, eps), 6)
    p, m, v = history[0].copy(), np.zeros(N), np.zeros(N)
    for t, (g, got) in enumerate(zip(grads, history[1:]), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        # scikit-learn folds the bias corrections into the step size; same to rounding
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - b2 ** t))
        np.testing.assert_allclose(got, p, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_keep_the_parameter_dtype(dtype):
    for opt in (SGD(N, dtype, 0.1), Adam(N, dtype)):
        history, _ = _run(opt, 2, dtype=dtype)
        assert history[-1].dtype == dtype


def test_scalars_stay_python_floats_given_numpy_ones():
    """A numpy float64 scalar times a float32 array computes in float64 (NEP 50): the
    optimizers hold their step sizes and coefficients as Python floats."""
    f64 = np.float64
    sgd = SGD(N, np.float32, f64(0.1), "invscaling", f64(0.9), True, f64(0.5))
    adam = Adam(N, np.float32, f64(1e-3), f64(0.9), f64(0.999), f64(1e-8))
    for opt in (sgd, adam):
        _run(opt, 2, dtype=np.float32)
        opt.iteration_ends(100)
        scalars = {k: v for k, v in vars(opt).items()
                   if isinstance(v, (float, np.floating))}
        assert scalars and all(type(v) is float for v in scalars.values()), scalars


@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
def test_sgd_schedules_match_scikit_learn(schedule):
    ours = SGD(N, np.float64, 0.1, schedule, 0.9, True, power_t=0.5)
    ref = SGDOptimizer([np.zeros(N)], 0.1, schedule, 0.9, True, power_t=0.5)
    for time_step in (10, 250, 4000):
        ours.iteration_ends(time_step)
        ref.iteration_ends(time_step)
        assert ours.learning_rate == pytest.approx(ref.learning_rate, rel=1e-15)
    stops = [(ours.trigger_stopping("", False), ref.trigger_stopping("", False))
             for _ in range(12)]
    assert all(a == b for a, b in stops)
    assert ours.learning_rate == pytest.approx(ref.learning_rate, rel=1e-15)


def test_adaptive_divides_the_rate_by_five_then_stops():
    opt = SGD(N, np.float64, 1e-3, "adaptive")
    assert opt.trigger_stopping("stalled.", False) is False
    assert opt.learning_rate == pytest.approx(2e-4)
    while not opt.trigger_stopping("stalled.", False):
        pass
    assert opt.learning_rate <= 1e-6


@pytest.mark.parametrize("rate", [1e-3, 5e-6, 1e-6, 1e-7])
def test_adaptive_stops_at_the_rate_scikit_learns_stops_at(rate):
    """Each stall: divide by 5, or stop once the rate is at most 1e-6, as scikit-learn's
    SGDOptimizer (a rate of exactly 1e-6 stops)."""
    ours = SGD(N, np.float64, rate, "adaptive")
    ref = SGDOptimizer([np.zeros(N)], rate, "adaptive")
    for _ in range(10):
        stop = ours.trigger_stopping("stalled.", False)
        assert stop == ref.trigger_stopping("stalled.", False)
        assert ours.learning_rate == ref.learning_rate
        if stop:
            break
    else:
        pytest.fail("never stopped")


def test_updates_equal_scikit_learn_optimizers_step_by_step():
    rng = np.random.RandomState(3)
    start = rng.standard_normal(N)
    for ours, ref in [
        (Adam(N, np.float64, 0.01), AdamOptimizer([start.copy()], 0.01)),
        (SGD(N, np.float64, 0.1, momentum=0.9, nesterov=True),
         SGDOptimizer([start.copy()], 0.1, "constant", 0.9, True)),
    ]:
        p, q = start.copy(), [start.copy()]
        for _ in range(4):
            g = rng.standard_normal(N)
            ours.step(p, g.copy())
            ref.update_params(q, [g.copy()])
        np.testing.assert_allclose(p, q[0], rtol=1e-12, atol=1e-14)


def test_lbfgs_minimizes_a_quadratic_and_reports_each_iteration():
    A = np.diag(np.arange(1.0, 6.0))
    b = np.ones(5)
    seen = []
    result = lbfgs(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(5),
                   max_iter=100, max_fun=1000, tol=1e-10,
                   callback=lambda x, f: seen.append(f))
    np.testing.assert_allclose(result.x, np.linalg.solve(A, b), rtol=1e-6)
    assert len(seen) == result.nit
    assert seen == sorted(seen, reverse=True)


def test_state_is_the_arrays_named_in_STATE():
    """The n_jobs team moves the attributes named in STATE; the step uses state()."""
    for opt in (SGD(5, np.float64), Adam(5, np.float64)):
        names = [getattr(opt, name) for name in opt.STATE]
        assert len(opt.state()) == len(names)
        assert all(a is b for a, b in zip(opt.state(), names))


def test_invscaling_rate_beyond_the_floats_is_zero_not_an_overflow_error():
    """(t + 1) ** power_t overflows a float for a large power_t: the rate it divides
    is then 0, its limit, where the plain formula raised OverflowError after the
    epoch had trained."""
    sgd = SGD(4, np.float64, 0.1, "invscaling", 0.9, True, 200.0)
    sgd.iteration_ends(300)
    assert sgd.learning_rate == 0.0
    sgd.iteration_ends(1)
    assert sgd.learning_rate == 0.1 / 2 ** 200.0
    sgd = SGD(4, np.float64, 0.1, "invscaling", 0.9, True, 0.0)
    sgd.iteration_ends(10 ** 400)  # beyond the floats, to the power 0
    assert sgd.learning_rate == 0.1
