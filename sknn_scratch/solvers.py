"""Optimizers over the flat parameter vector.

Each stochastic optimizer updates the whole vector in place in one vectorized step.
Their formulas and schedules are scikit-learn's, so the same gradients give the same
updates: SGD with (Nesterov) momentum and constant / invscaling / adaptive learning
rates, and Adam. L-BFGS runs through :func:`scipy.optimize.minimize`.
"""

import math

import numpy as np
import scipy.optimize

from ._processes import scipy_one_thread
from ._threads import run_halves, timed_split, two_threads

# parameters from which a step runs in two threads (about 50 us of hand-off): at
# 500,000 parameters Adam's step takes 0.74 ms instead of 1.17, at 131,000 no less
PARALLEL_STEP = 1 << 18


class _Stochastic:
    """What SGD and Adam share: a step is ``update`` on the parameters, the gradient
    and the per-parameter arrays ``state()`` (the attributes named in ``STATE``), with
    the scalars ``advance`` gives. ``update`` is elementwise, so it may run on any
    share of those arrays."""

    STATE = ()

    def own_state(self):
        """Copy the per-parameter arrays that cannot be written (a model loaded with
        joblib's ``mmap_mode="r"``), so that training goes on from their values."""
        for name in self.STATE:
            if not getattr(self, name).flags.writeable:
                setattr(self, name, np.array(getattr(self, name)))

    def step(self, params, grad):
        """Update ``params`` in place from ``grad`` (``grad`` is overwritten)."""
        _run(self.update, (params, grad, *self.state()), *self.advance())


class SGD(_Stochastic):
    """Stochastic gradient descent with momentum.

    ``v <- momentum v - lr g``; the step is ``v`` or, with Nesterov, ``momentum v - lr g``.
    ``invscaling``: ``lr = lr_init / (t + 1) ** power_t`` after each epoch (``t`` = samples
    seen). ``adaptive``: ``lr /= 5`` whenever progress stalls, until ``lr <= 1e-6``.
    """

    def __init__(self, n_params, dtype, learning_rate_init=0.1, schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5):
        # Python floats throughout: a numpy float64 scalar (a user may pass one) would
        # make the passes over float32 parameters run in float64
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.schedule = schedule
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.power_t = float(power_t)
        self.velocity = np.zeros(n_params, dtype)

    STATE = ("velocity",)

    def state(self):
        # a literal, not derived from STATE: built from STATE at every step, the
        # tuple raised the traced peak of a fit by 0.1 MB (cause not found)
        return (self.velocity,)

    def advance(self):
        """The scalars of the next step (``update``'s trailing arguments)."""
        return (self.learning_rate,)

    def update(self, params, grad, v, lr):
        # numpy ufuncs with out=, not scipy's BLAS: scipy ships its own OpenBLAS,
        # whose threads would spin against numpy's between every two matrix products
        grad *= -lr
        if self.momentum == 0:
            params += grad
            return
        v *= self.momentum
        v += grad
        if self.nesterov:  # step = momentum v - lr g, without a temporary
            params += grad
            np.multiply(v, self.momentum, out=grad)
        else:
            grad = v
        params += grad

    def iteration_ends(self, time_step):
        if self.schedule == "invscaling":
            try:
                self.learning_rate = (self.learning_rate_init
                                      / (time_step + 1) ** self.power_t)
            except OverflowError:  # t + 1 or its power beyond the floats: the limit
                self.learning_rate = self.learning_rate_init if self.power_t == 0 else 0.0

    def trigger_stopping(self, msg, verbose):
        """True to stop; the adaptive schedule divides the rate by 5 instead."""
        if self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:f}")
        return False


class Adam(_Stochastic):
    """Adam (Kingma & Ba, 2014), with the bias correction folded into the step size.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``params -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``.

    The moments are stored divided by ``1 - b1`` and ``1 - b2``, which moves those
    factors from the per-parameter passes into the scalar step size: the update is the
    same, with two fewer passes over the parameters per step.
    """

    def __init__(self, n_params, dtype, learning_rate_init=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8):
        # Python floats, as for SGD
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.t = 0
        self.m = np.zeros(n_params, dtype)  # first moment / (1 - beta_1)
        self.v = np.zeros(n_params, dtype)  # second moment / (1 - beta_2)

    STATE = ("m", "v")

    def state(self):
        return self.m, self.v  # a literal, as for SGD

    def advance(self):
        """Count the step; the scalars of its ``update``."""
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        self.learning_rate = (self.learning_rate_init * math.sqrt(1 - b2 ** self.t)
                              / (1 - b1 ** self.t))
        # sqrt(v_true) + eps = sqrt(1 - b2) (sqrt(v) + eps / sqrt(1 - b2))
        root = math.sqrt(1 - b2)
        return self.epsilon / root, self.learning_rate * (1 - b1) / root

    def update(self, params, grad, m, v, eps, scale):
        b1, b2 = self.beta_1, self.beta_2
        m *= b1
        m += grad
        v *= b2
        np.multiply(grad, grad, out=grad)
        v += grad
        np.sqrt(v, out=grad)
        grad += eps
        np.divide(m, grad, out=grad)
        grad *= scale
        params -= grad

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


def _run(update, arrays, *scalars):
    """``update(*arrays, *scalars)``; over two halves of the arrays in two threads when
    they are long enough and that has lately been faster."""
    n = len(arrays[0])
    if not two_threads(n, PARALLEL_STEP):  # most steps: no closures, no judge
        update(*arrays, *scalars)
        return
    timed_split((update.__qualname__, arrays[0].dtype), n, PARALLEL_STEP,
                lambda split: run_halves(
                    lambda lo, hi: update(*(a[lo:hi] for a in arrays), *scalars), n,
                    split))


def lbfgs(fun, x0, max_iter, max_fun, tol, callback=None):
    """Minimize ``fun(x) -> (value, grad)`` with L-BFGS-B from ``x0``.

    ``callback(x, value)`` is called after each iteration. Returns the
    :class:`scipy.optimize.OptimizeResult`.
    """
    def on_iteration(intermediate_result):
        if callback is not None:
            callback(intermediate_result.x, intermediate_result.fun)

    # L-BFGS-B's vector operations run on scipy's own BLAS; its idle threads, woken
    # between numpy's matrix products, made each iteration 4x slower on 2 cores
    # (one limit shared by the lbfgs fits running at once in threads of this process)
    with scipy_one_thread.held():
        return scipy.optimize.minimize(
            fun, x0, method="L-BFGS-B", jac=True, callback=on_iteration,
            options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
        )

