"""The data terms of the objective, each paired with the output activation it suits.

A loss gives, for the output ``a = g(z)`` of the network, the weighted sum
``sum_i w_i l(y_i, a_i)`` (summed over outputs) and the output delta
``w_i dl/dz_i``. For the canonical pairs -- identity with squared error,
sigmoid with binary cross-entropy, softmax with categorical cross-entropy, exp with
Poisson deviance -- ``dl/dz = a - y``, which is why the network never forms the
Jacobian of softmax. Any other output activation (ReLU with squared error, a subclass
of Exp with the Poisson deviance) gets ``dl/dz = dl/da g'(z)``.
"""

import functools
import math

import numpy as np
from scipy.special import xlogy


def _inf_on_overflow(method):
    """A loss beyond the float range is +inf, as it truly is, without a warning."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore"):
            return method(*args, **kwargs)
    return wrapper


class Loss:
    """Base: ``value_and_delta(y, a, z, activation, sw, delta) -> sum_i w_i l_i``."""

    name = None
    #: output activations for which dl/dz = a - y exactly
    canonical = ()

    @_inf_on_overflow
    def value(self, y, a, sw=None):
        """``sum_i w_i l(y_i, a_i)``."""
        return self._value(y, a, sw)

    def _value(self, y, a, sw):
        rows = self._row_losses(y, a)
        return float(rows.sum() if sw is None else np.dot(sw, rows))

    @_inf_on_overflow
    def value_and_delta(self, y, a, z, activation, sw, delta):
        """Weighted data term; writes ``w_i dl/dz_i`` into ``delta``."""
        loss = self._value(y, a, sw)
        if activation.name in self.canonical:
            np.subtract(a, y, out=delta)
        else:  # dl/da times g'(z): any other output activation of this loss
            self._derivative(y, a, delta)
            activation.backward_(delta, z, a)
        if sw is not None:
            delta *= sw[:, None]
        return loss

    def _row_losses(self, y, a):
        raise NotImplementedError

    def _derivative(self, y, a, out):
        """Write ``dl/da`` into ``out``."""
        raise NotImplementedError

    def surely_finite(self, a_bound, z_bound, y_bound, n_terms, limit):
        """Whether ``value`` stays below ``limit`` on ``n_terms`` terms (rows times
        outputs) whose outputs, pre-activations and targets are at most ``a_bound``,
        ``z_bound`` and ``y_bound`` in absolute value. False when not known."""
        return False

    def __repr__(self):
        return f"{type(self).__name__}()"


class SquaredError(Loss):
    """Half squared error, ``l = 1/2 sum_k (a_k - y_k)^2``."""

    name = "squared_error"
    canonical = ("identity",)

    def _value(self, y, a, sw):
        diff = a - y
        if sw is None:
            return 0.5 * float(np.vdot(diff, diff))
        return 0.5 * float(np.dot(sw, np.einsum("ij,ij->i", diff, diff)))

    @_inf_on_overflow
    def value_and_delta(self, y, a, z, activation, sw, delta):
        np.subtract(a, y, out=delta)
        if sw is None:
            loss = 0.5 * float(np.vdot(delta, delta))
        else:
            loss = 0.5 * float(np.dot(sw, np.einsum("ij,ij->i", delta, delta)))
            delta *= sw[:, None]
        if activation.name not in self.canonical:
            activation.backward_(delta, z, a)
        return loss

    def surely_finite(self, a_bound, z_bound, y_bound, n_terms, limit):
        worst = a_bound + y_bound
        return n_terms * worst * worst < limit  # inf, not OverflowError, when large


# -log(eps) of float32 is 15.9, of float64 36.0: a clipped log-probability is above -40
_LOG_CLIP = 40.0


class BinaryCrossEntropy(Loss):
    """``l = -sum_k y_k log p_k + (1 - y_k) log(1 - p_k)``; sigmoid outputs.

    ``p`` is clipped to ``[eps, 1 - eps]`` so the loss stays finite at 0 and 1.
    """

    name = "binary_log_loss"
    canonical = ("sigmoid",)

    def _row_losses(self, y, a):
        return -_binary_terms(y, a).sum(axis=1)

    def _derivative(self, y, a, out):
        p = _clip_eps(a)  # as in the value
        np.subtract(p, y, out=out)
        out /= p * (1 - p)

    def _value(self, y, a, sw):
        # one output needs no row sums, as -(x1 + x2 + ...) = (-x1) + (-x2) + ...
        # exactly: the base's value, bitwise (100 rows: 4.3 us instead of 5.5)
        if sw is None and a.shape[1] == 1:
            return -float(_binary_terms(y, a).sum())
        return super()._value(y, a, sw)

    def surely_finite(self, a_bound, z_bound, y_bound, n_terms, limit):
        return n_terms * (2 * y_bound + 1) * _LOG_CLIP < limit


class CategoricalCrossEntropy(Loss):
    """``l = -sum_k y_k log p_k``; softmax outputs, ``p`` clipped like above."""

    name = "log_loss"
    canonical = ("softmax",)

    def _row_losses(self, y, a):
        # y log p, not xlogy(y, p) (4x slower): p is clipped away from 0, so the two
        # differ only where y = 0, by the sign of a zero term
        terms = _clip_eps(a)
        np.log(terms, out=terms)
        terms *= y
        return -terms.sum(axis=1)

    def _derivative(self, y, a, out):
        np.divide(y, _clip_eps(a), out=out)  # as in the value
        np.negative(out, out=out)

    def surely_finite(self, a_bound, z_bound, y_bound, n_terms, limit):
        return n_terms * y_bound * _LOG_CLIP < limit


class PoissonDeviance(Loss):
    """Half Poisson deviance, ``l = sum_k y_k log(y_k / a_k) - y_k + a_k``; exp output."""

    name = "poisson"
    canonical = ("exp",)

    def _row_losses(self, y, a):
        a = np.maximum(a, np.finfo(a.dtype).tiny)
        with np.errstate(over="ignore"):
            ratio = y / a
        terms = xlogy(y, ratio)
        # far below a target the ratio overflows (float32: from about 88 below log y):
        # there the log of each side, a finite loss and no false divergence
        far = np.isinf(ratio) & np.isfinite(y)
        if far.any():
            terms[far] = y[far] * (np.log(y[far]) - np.log(a[far]))
        return (terms - y + a).sum(axis=1)

    def _derivative(self, y, a, out):
        # 1 - y / a, a kept above 0 as in the value, and y / a below the float maximum:
        # where exp(z) underflows to 0, an infinite dl/da times g'(z) = 0 would be NaN
        info = np.finfo(a.dtype)
        with np.errstate(over="ignore"):
            np.divide(y, np.maximum(a, info.tiny), out=out)
        np.minimum(out, info.max, out=out)
        np.subtract(1, out, out=out)

    def surely_finite(self, a_bound, z_bound, y_bound, n_terms, limit):
        # a = exp(z) lies in [exp(-z_bound), exp(z_bound)]: y / a <= y_bound exp(z_bound);
        # a term is at most |y log y| + y |log a| + y + a
        if not z_bound < math.log(limit):
            return False
        e = math.exp(z_bound)
        term = (max(0.37, y_bound * math.log(max(y_bound, 1.0))) + y_bound * z_bound
                + y_bound + e)
        return y_bound * e < limit and n_terms * term < limit


def _binary_terms(y, a):
    """``y log p + (1 - y) log(1 - p)`` per output, ``p`` clipped; ``y`` may be bool."""
    p = _clip_eps(a)
    if y.dtype == bool:
        # log p where y, log(1 - p) elsewhere, as log |p - (1 - y)| (p - 1 is exactly
        # -(1 - p)): the terms below, in numpy's vectorized passes instead of scipy's
        # xlogy twice, whose log is correctly rounded where numpy's may be an ulp off
        # (100 rows of one output: the loss of a batch 7.1 us instead of 10.3)
        np.subtract(p, ~y, out=p)
        np.abs(p, out=p)
        return np.log(p, out=p)
    terms = xlogy(y, p)
    terms += xlogy(1 - y, np.subtract(1, p, out=p))
    return terms


def _clip_eps(p):
    """``p`` clipped to ``[eps, 1 - eps]`` (two ufunc calls: cheaper than ``np.clip``)."""
    low, high = _eps_bounds(p.dtype)
    out = np.maximum(p, low)
    return np.minimum(out, high, out=out)


@functools.cache
def _eps_bounds(dtype):
    """``eps`` and ``1 - eps`` of a float dtype, as scalars of that dtype."""
    eps = np.finfo(dtype).eps
    return eps, 1 - eps


LOSSES = {cls.name: cls for cls in (SquaredError, BinaryCrossEntropy,
                                    CategoricalCrossEntropy, PoissonDeviance)}
