"""Weight initializers.

An :class:`Initializer` is called as ``init(fan_in, fan_out, random_state)`` and
returns the ``(fan_in, fan_out)`` weight matrix of one layer. The estimators pass a
``numpy.random.RandomState``; the built-ins also take an int or None, as scikit-learn's
``random_state`` parameters do. The variance-scaling family (Glorot, He, LeCun) is one
general :class:`VarianceScaling` with thin presets::

    >>> import numpy as np
    >>> from sknn_scratch.initializers import get
    >>> get("he_normal")
    HeNormal()
    >>> get("normal")(2, 2, np.random.RandomState(0)).shape   # the classic randn * 0.01
    (2, 2)
"""

import numpy as np
from sklearn.utils import check_random_state

from ._params import ParamsMixin, Registry

__all__ = [
    "Initializer", "Zeros", "RandomNormal", "RandomUniform", "VarianceScaling",
    "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LeCunNormal",
    "LeCunUniform", "get",
]


class Initializer(ParamsMixin):
    """Base class: ``__call__(fan_in, fan_out, random_state) -> ndarray``.

    ``random_state`` is a :class:`numpy.random.RandomState`: the estimator's, from its
    ``random_state`` parameter (numpy's global one when that is None, as in
    scikit-learn).

    Examples
    --------
    >>> class Constant(Initializer):
    ...     def __init__(self, value=0.5):
    ...         self.value = value
    ...     def __call__(self, fan_in, fan_out, random_state):
    ...         return np.full((fan_in, fan_out), self.value)
    >>> Constant(0.1)
    Constant(value=0.1)
    """

    def __call__(self, fan_in, fan_out, random_state):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__.")


_initializers = Registry("initializer", Initializer)
get = _initializers.get


@_initializers.register()
class Zeros(Initializer):
    """All weights zero: every unit of a layer computes the same thing, and stays a copy
    of the others through training (up to rounding, which training can amplify).

    >>> Zeros()(2, 3, np.random.RandomState(0))
    array([[0., 0., 0.],
           [0., 0., 0.]])
    """

    def __call__(self, fan_in, fan_out, random_state):
        return np.zeros((fan_in, fan_out))


@_initializers.register(name="normal")
class RandomNormal(Initializer):
    """Gaussian weights with a fixed standard deviation, ``W ~ N(0, std^2)``.

    The default is the classic ``randn(fan_in, fan_out) * 0.01``: fine for a shallow
    network, too small for a deep one (the activations shrink layer after layer).

    Parameters
    ----------
    std : float, default=0.01

    >>> RandomNormal(std=0.01)(100, 100, np.random.RandomState(0)).std().round(2)
    np.float64(0.01)
    """

    _real_params = {"std": 0.0}

    def __init__(self, std=0.01):
        self.std = std

    def __call__(self, fan_in, fan_out, random_state):
        random_state = check_random_state(random_state)  # an int or None too
        return random_state.standard_normal((fan_in, fan_out)) * self.std


@_initializers.register(name="uniform")
class RandomUniform(Initializer):
    """Uniform weights in ``[-limit, limit]``.

    Parameters
    ----------
    limit : float, default=0.05

    >>> bool(abs(RandomUniform(0.05)(10, 10, np.random.RandomState(0))).max() <= 0.05)
    True
    """

    _real_params = {"limit": 0.0}

    def __init__(self, limit=0.05):
        self.limit = limit

    def __call__(self, fan_in, fan_out, random_state):
        random_state = check_random_state(random_state)
        return random_state.uniform(-self.limit, self.limit, (fan_in, fan_out))


@_initializers.register()
class VarianceScaling(Initializer):
    """Weights with variance ``scale / n``, ``n`` chosen by ``mode``.

    .. math:: \\mathrm{Var}(W) = \\frac{\\text{scale}}{n}, \\quad
        n = \\text{fan\\_in},\\ \\text{fan\\_out or their mean}

    ``distribution="uniform"`` draws from ``[-sqrt(3 scale / n), sqrt(3 scale / n)]``,
    ``"normal"`` from ``N(0, scale / n)``.

    Parameters
    ----------
    scale : float, default=1.0
    mode : {"fan_in", "fan_out", "fan_avg"}, default="fan_in"
    distribution : {"uniform", "normal"}, default="normal"

    >>> w = VarianceScaling(2.0, "fan_in", "normal")(400, 400, np.random.RandomState(0))
    >>> round(float(w.var() * 400), 1)
    2.0
    """

    _real_params = {"scale": 0.0}
    _MODES, _DISTRIBUTIONS = ("fan_avg", "fan_in", "fan_out"), ("normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal"):
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def _check_params(self):
        super()._check_params()
        for name, allowed in (("mode", self._MODES),
                              ("distribution", self._DISTRIBUTIONS)):
            value = getattr(self, name)
            if not (isinstance(value, str) and value in allowed):
                raise ValueError(f"the {name} of {type(self).__name__} must be one of "
                                 f"{list(allowed)}, got {value!r}.")

    def __call__(self, fan_in, fan_out, random_state):
        self._check_params()
        random_state = check_random_state(random_state)
        fans = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = self.scale / fans[self.mode]
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return random_state.uniform(-limit, limit, (fan_in, fan_out))
        return random_state.standard_normal((fan_in, fan_out)) * np.sqrt(variance)


def _preset(cls_name, name, scale, mode, distribution, doc):
    """A parameterless subclass of VarianceScaling with fixed settings."""

    def __init__(self):
        VarianceScaling.__init__(self, scale, mode, distribution)

    cls = type(cls_name, (VarianceScaling,), {
        "__init__": __init__, "__doc__": doc, "__module__": __name__,
    })
    return _initializers.register(name=name)(cls)


GlorotUniform = _preset(
    "GlorotUniform", "glorot_uniform", 1.0, "fan_avg", "uniform",
    "Glorot (Xavier) uniform: ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``.",
)
GlorotNormal = _preset(
    "GlorotNormal", "glorot_normal", 1.0, "fan_avg", "normal",
    "Glorot (Xavier) normal: ``N(0, 2 / (fan_in + fan_out))``.",
)
HeUniform = _preset(
    "HeUniform", "he_uniform", 2.0, "fan_in", "uniform",
    "He uniform, for ReLU layers: ``U(-l, l)``, ``l = sqrt(6 / fan_in)``.",
)
HeNormal = _preset(
    "HeNormal", "he_normal", 2.0, "fan_in", "normal",
    "He normal, for ReLU layers: ``N(0, 2 / fan_in)``.",
)
LeCunNormal = _preset(
    "LeCunNormal", "lecun_normal", 1.0, "fan_in", "normal",
    "LeCun normal: ``N(0, 1 / fan_in)``.",
)
LeCunUniform = _preset(
    "LeCunUniform", "lecun_uniform", 1.0, "fan_in", "uniform",
    "LeCun uniform: ``U(-l, l)``, ``l = sqrt(3 / fan_in)``.",
)
