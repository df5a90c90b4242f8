"""The data terms of the objective, each paired with the output activation it suits.

A loss gives, for the output ``a = g(z)`` of the network, the weighted sum
``sum_i w_i l(y_i, a_i)`` (summed over outputs) and the output delta
``w_i dl/dz_i``. For the canonical pairs -- identity or ReLU with squared error,
sigmoid with binary cross-entropy, softmax with categorical cross-entropy, exp with
Poisson deviance -- ``dl/dz = a - y`` (times ``g'(z)`` for ReLU), which is why the
network never forms the Jacobian of softmax.
"""

import functools

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
        np.subtract(a, y, out=delta)
        if activation.name not in self.canonical:
            activation.backward_(delta, z, a)
        if sw is not None:
            delta *= sw[:, None]
        return loss

    def _row_losses(self, y, a):
        raise NotImplementedError

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


class BinaryCrossEntropy(Loss):
    """``l = -sum_k y_k log p_k + (1 - y_k) log(1 - p_k)``; sigmoid outputs.

    ``p`` is clipped to ``[eps, 1 - eps]`` so the loss stays finite at 0 and 1.
    """

    name = "binary_log_loss"
    canonical = ("sigmoid",)

    def _row_losses(self, y, a):
        p = _clip_eps(a)
        rows = xlogy(y, p)
        rows += xlogy(1 - y, 1 - p)
        return -rows.sum(axis=1)


class CategoricalCrossEntropy(Loss):
    """``l = -sum_k y_k log p_k``; softmax outputs, ``p`` clipped like above."""

    name = "log_loss"
    canonical = ("softmax",)

    def _row_losses(self, y, a):
        return -xlogy(y, _clip_eps(a)).sum(axis=1)


class PoissonDeviance(Loss):
    """Half Poisson deviance, ``l = sum_k y_k log(y_k / a_k) - y_k + a_k``; exp output."""

    name = "poisson"
    canonical = ("exp",)

    def _row_losses(self, y, a):
        a = np.maximum(a, np.finfo(a.dtype).tiny)
        return (xlogy(y, y / a) - y + a).sum(axis=1)


def _clip_eps(p):
    """``p`` clipped to ``[eps, 1 - eps]`` (two ufunc calls: cheaper than ``np.clip``)."""
    eps = np.finfo(p.dtype).eps
    out = np.maximum(p, eps)
    return np.minimum(out, 1 - eps, out=out)


LOSSES = {cls.name: cls for cls in (SquaredError, BinaryCrossEntropy,
                                    CategoricalCrossEntropy, PoissonDeviance)}
