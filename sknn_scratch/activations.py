"""Activation functions and their derivatives.

An :class:`Activation` maps the pre-activation ``z = a_prev @ W + b`` of a layer to its
output ``a = g(z)``. A subclass implements two methods that sit side by side,
:meth:`~Activation.forward` (``g(z)``) and :meth:`~Activation.derivative`
(``dg/dz``, elementwise), and takes its parameters as keyword arguments of
``__init__``; parameters, repr, equality, pickling and cloning come from the base, so
activations can be grid-searched like estimators::

    >>> from sknn_scratch.activations import LeakyReLU, get
    >>> LeakyReLU(negative_slope=0.1)
    LeakyReLU(negative_slope=0.1)
    >>> get("swish")
    SiLU()

The training loop uses the in-place fast paths ``forward_`` and ``backward_``; the
built-ins override them, a user-defined activation gets them from ``forward`` and
``derivative``, and so does a subclass of a built-in that redefines either. Every
built-in is finite for every finite input and raises no floating-point warning, even
at +-1e308.
"""

import functools
import math
import mmap

import numpy as np
from scipy.special import expit, ndtr

from ._params import ParamsMixin, Registry, snake_case

__all__ = [
    "Activation", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU",
    "Softplus", "SiLU", "GELU", "Softmax", "Exp", "get", "check_derivative",
]


class Activation(ParamsMixin):
    """Base class of activation functions.

    Subclasses implement :meth:`forward` and :meth:`derivative`, both elementwise.

    Examples
    --------
    >>> import numpy as np
    >>> class Cube(Activation):
    ...     def forward(self, z):
    ...         return z ** 3
    ...     def derivative(self, z):
    ...         return 3 * z ** 2
    >>> Cube().derivative(np.array([2.0]))
    array([12.])
    """

    #: ``learnable`` activations carry per-unit parameters trained with the weights
    learnable = False
    #: the backward pass needs ``z``; ``False`` when ``g'`` is a function of ``a = g(z)``
    needs_input = True
    #: weights of a layer followed by this activation start from He (not Glorot) scaling
    relu_family = False
    #: only meaningful on the output layer (e.g. softmax: its derivative is a matrix)
    output_only = False
    #: ``g'`` is 1 where ``a = g(z) > 0`` and 0 elsewhere (ReLU): the backward pass then
    #: keeps that mask and writes the layer's delta over ``a``, saving a buffer
    mask_derivative = False
    #: the closed interval the values of ``g`` lie in, ``(low, high)``: a regressor
    #: refuses targets beyond it, which no weights reach
    value_range = (-np.inf, np.inf)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)

        def source(name):
            """Where in the MRO the class ``cls`` takes ``name`` from is (0: its own)."""
            return next((i for i, c in enumerate(cls.__mro__) if name in c.__dict__),
                        len(cls.__mro__))

        # what a parent says of its function or derivative, and the fast paths it
        # computes them by, are not of a class that takes forward or derivative from
        # nearer (its own, a mixin's), unless that class says so too: each attribute
        # taken from farther than the forward or derivative it goes with is reset
        taken = {name: source(name) for name in ("forward", "derivative")}
        nearest = min(taken.values())
        if cls.learnable and any(source(name) > nearest for name in _PARAM_PATHS):
            redefined = [name for name, at in taken.items() if at == nearest]
            raise TypeError(
                f"{cls.__name__} is learnable, so its training uses "
                f"{', '.join(_PARAM_PATHS)}, not the {' and '.join(redefined)} it "
                "defines: define those too.")
        # the generic paths compute from forward and derivative (backward_ from z)
        resets = {"backward_": (nearest, Activation.backward_),
                  "needs_input": (nearest, True),
                  "forward_": (taken["forward"], Activation.forward_),
                  "inverse": (taken["forward"], Activation.inverse),
                  "max_derivative": (taken["derivative"], Activation.max_derivative)}
        for name, (since, value) in resets.items():
            if source(name) > since:
                setattr(cls, name, value)
        if (not cls.needs_input and cls.backward_ is Activation.backward_
                and not cls.output_only):  # softmax: the loss takes its derivative
            # the generic backward_ would take g'(a) for g'(z): silently wrong gradients
            raise TypeError(
                f"{cls.__name__} sets needs_input = False, so the backward pass keeps "
                "only a = g(z), in z's place; the generic backward_ computes "
                "derivative(z) and needs z itself. Define backward_(delta, z, a), "
                "computing g' from a, or leave needs_input True.")
        if source("mask_derivative") > min(nearest, source("backward_"),
                                           source("forward_")):
            cls.mask_derivative = False
        computed_at = min(source(name) for name in
                          ("forward", "forward_", "forward_param_"))
        if source("output_bound") > computed_at:
            cls.output_bound = Activation.output_bound
        if source("value_range") > computed_at:
            cls.value_range = Activation.value_range
        if "name" not in cls.__dict__:  # the registry may set another name after this
            cls.name = snake_case(cls.__name__)

    def forward(self, z):
        """``g(z)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(z).")

    def derivative(self, z):
        """``dg/dz``, elementwise."""
        raise NotImplementedError(f"{type(self).__name__} must implement derivative(z).")

    def inverse(self, a):
        """``g^-1(a)``, where it exists: the output bias that predicts ``a`` (the target
        mean) from the start. ``None`` when there is none; the bias then starts at 0."""
        return None

    @property
    def max_derivative(self):
        """Largest ``|g'(z)|``: the scale against which a derivative counts as vanished.

        Taken on a grid of ``z`` over [-10, 10], or over [-40, 40] when ``|g'|`` is
        largest at an end of the first and still rises 1.5x from there to ``z = +-20``
        (a rise beyond 10, as ``sigmoid(z - 12)``'s). A derivative that rises 1.5x again
        from 20 to 40 (exp's, 3 z^2) has no largest: the scale is then ``|g'(0)|``, as
        for :class:`Exp`, or the largest ``|g'|`` over [-1, 1] where ``g'(0) = 0``.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            def deriv(z):
                return np.abs(np.asarray(self.derivative(np.asarray(z, float)),
                                         dtype=np.float64))

            near = deriv(np.linspace(-10.0, 10.0, 4001))
            peak = float(np.nanmax(near))  # NaN where g' is not defined: not a peak
            ends = [side for side, at_end in ((-1.0, near[0]), (1.0, near[-1]))
                    if at_end == peak]
            # each side's |g'| at 10, 20 and 40: still rising at 20, and again at 40?
            rise = [deriv([10 * side, 20 * side, 40 * side]) for side in ends]
            if not any(far[1] > 1.5 * far[0] for far in rise):
                return peak  # NaN compares False: no rise seen
            if not any(far[2] > 1.5 * far[1] for far in rise):
                return float(np.nanmax(deriv(np.linspace(-40.0, 40.0, 16001))))
            at_zero = float(deriv([0.0])[0])
            return at_zero if at_zero > 0 else float(
                np.nanmax(deriv(np.linspace(-1.0, 1.0, 201))))

    def forward_(self, z):
        """Overwrite ``z`` with ``g(z)`` and return it."""
        z[...] = self.forward(z)
        return z

    def output_bound(self, m, slope=None):
        """A bound on ``|g(z)|`` as computed (``forward_``) for ``|z| <= m``, ``slope``
        the layer's learned per-unit parameters if any; None when not known. Lets a
        fit skip a pass over the data to see that its final loss is finite."""
        return None

    def backward_(self, delta, z, a):
        """Multiply ``delta`` in place by ``g'(z)``; ``a = g(z)`` is given too."""
        delta *= self.derivative(z)
        return delta


# what a learnable activation's training uses instead of forward_ and backward_
_PARAM_PATHS = ("forward_param_", "derivative_param", "backward_param_")

_activations = Registry("activation", Activation)
get = _activations.get

_SQRT_2PI = math.sqrt(2 * math.pi)  # a Python float: float32 arrays stay float32

# elements from which the sigmoid and softplus are computed in numpy's vectorized passes
# (exp, log1p) rather than by scipy's expit and numpy's logaddexp, which compute one
# element at a time: 25,600 float64 elements in 26.7 us against 92.6 for the sigmoid,
# 51,200 in 98.6 against 733.7 for softplus, but 200 sigmoids in 2.5 against 1.2
_VECTORIZED_FROM = 1 << 10


def _vectorized(z):
    """Whether ``z`` is a float array long enough for the vectorized passes."""
    return z.size >= _VECTORIZED_FROM and z.dtype.kind == "f"


def _sigmoid(z, out=None):
    """``1 / (1 + exp(-z))``, into ``out`` if given (which may be ``z``).

    scipy's ``expit`` computes this formula on short arrays; on long float arrays numpy
    computes it in four vectorized passes, whose results may differ from expit's in the
    last bits (at most 2 units in the last place in float64, 3 in float32, on 5,000
    points from N(0, 20^2)).
    """
    z = np.asarray(z)
    if not _vectorized(z):
        return expit(z, out=out)
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):  # exp(-z) = inf below z = -709: g(z) = 0, as it is
        np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)


def _softplus(z, out=None):
    """``log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))``, into ``out`` if given (which
    may be ``z``): numpy's ``logaddexp(0, z)`` on short arrays, its formula in
    vectorized passes on long float arrays (at most 2 units in the last place apart in
    float64 and 3 in float32, on 5,000 points from N(0, 20^2))."""
    z = np.asarray(z)
    if not _vectorized(z):
        return np.logaddexp(0, z, out=out)
    positive = np.maximum(z, 0)  # before out, which may be z, is written
    out = np.abs(z, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)  # in [0, 1]: never overflows
    np.log1p(out, out=out)
    out += positive
    return out


@_activations.register("linear")
class Identity(Activation):
    """Identity, ``g(z) = z``: a layer that stays linear.

    >>> Identity().forward(np.array([-2.0, 3.0]))
    array([-2.,  3.])
    """

    needs_input = False

    def forward(self, z):
        return np.array(z, copy=True)

    def derivative(self, z):
        return np.ones_like(z)

    def inverse(self, a):
        return a

    def forward_(self, z):
        return z

    def output_bound(self, m, slope=None):
        return m

    def backward_(self, delta, z, a):
        return delta


@_activations.register("logistic")
class Sigmoid(Activation):
    """Logistic sigmoid, ``g(z) = 1 / (1 + exp(-z))``; ``g'(z) = g(z) (1 - g(z))``.

    The derivative peaks at 0.25 at ``z = 0`` and vanishes for large ``|z|``.

    >>> Sigmoid().derivative(np.array([0.0]))
    array([0.25])
    """

    needs_input = False
    value_range = (0.0, 1.0)

    def forward(self, z):
        return _sigmoid(z)

    def derivative(self, z):
        # sigmoid(z) sigmoid(-z): 1 - s would lose the right tail (0 from z = 37 on),
        # which diagnose reads; backward_ computes a (1 - a) from a (below 1e-16 there)
        z = np.asarray(z)
        return _sigmoid(z) * _sigmoid(-z)

    def inverse(self, a):
        p = np.clip(a, 1e-7, 1 - 1e-7)  # finite for all-0 or all-1 targets
        return np.log(p) - np.log1p(-p)

    def forward_(self, z):
        return _sigmoid(z, out=z)

    def output_bound(self, m, slope=None):
        return 1.0

    def backward_(self, delta, z, a):
        delta *= a
        delta -= a * delta  # delta * a * (1 - a) without a second temporary
        return delta


@_activations.register()
class Tanh(Activation):
    """Hyperbolic tangent, ``g(z) = tanh(z)``; ``g'(z) = 1 - tanh(z)^2``.

    >>> Tanh().derivative(np.array([0.0]))
    array([1.])
    """

    needs_input = False
    value_range = (-1.0, 1.0)

    def forward(self, z):
        return np.tanh(z)

    def derivative(self, z):
        # 1 / cosh^2: 1 - tanh^2 would be 0 from |z| = 18.99 on, a unit dead, not
        # saturated, to diagnose; training's backward_ computes 1 - a^2 from a all the
        # same: beyond 18.99 the gradient it drops is at most 1.3e-16 of the peak
        with np.errstate(over="ignore"):  # cosh overflows to inf: 1 / inf^2 = 0, as due
            return 1.0 / np.cosh(z) ** 2

    def inverse(self, a):
        # a mean at or beyond +-1 starts where g' is still 2 % of its peak, not 0
        return np.arctanh(np.clip(a, -0.99, 0.99))

    def forward_(self, z):
        return np.tanh(z, out=z)

    def output_bound(self, m, slope=None):
        return 1.0

    def backward_(self, delta, z, a):
        delta -= delta * a * a
        return delta


@_activations.register(name="relu")
class ReLU(Activation):
    """Rectified linear unit, ``g(z) = max(0, z)``; ``g'(z) = 1 if z > 0 else 0``.

    By convention ``g'(0) = 0``.

    >>> ReLU().derivative(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.])
    """

    needs_input = False
    value_range = (0.0, np.inf)
    relu_family = True
    mask_derivative = True

    def forward(self, z):
        return np.maximum(z, 0)

    def derivative(self, z):
        z = np.asarray(z)
        return (z > 0).astype(np.result_type(z, np.float32))

    def inverse(self, a):
        return a  # a >= 0: the mean itself, so the output starts alive

    def forward_(self, z):
        return _against_zeros(np.maximum, z, z)

    def output_bound(self, m, slope=None):
        return m

    def backward_(self, delta, z, a):
        # a multiply by the mask is branch-free: several times faster than
        # delta[a <= 0] = 0 on units whose signs look random
        return np.multiply(delta, a > 0, out=delta)


@_activations.register(name="leaky_relu")
class LeakyReLU(Activation):
    """Leaky ReLU, ``g(z) = z if z > 0 else negative_slope * z``.

    ``g'(z) = 1 if z > 0 else negative_slope``; by convention ``g'(0) = negative_slope``.

    Parameters
    ----------
    negative_slope : float, default=0.01
        Slope for ``z <= 0``; keeps a gradient flowing through inactive units.

    >>> LeakyReLU(negative_slope=0.1).forward(np.array([-2.0, 3.0]))
    array([-0.2,  3. ])
    """

    relu_family = True
    _real_params = {"negative_slope": None}

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    @property
    def needs_input(self):
        # for a slope >= 0, a > 0 exactly where z > 0
        return not self.negative_slope >= 0

    @property
    def max_derivative(self):
        return max(1.0, abs(float(self.negative_slope)))

    @property
    def value_range(self):
        # a slope <= 0 maps z <= 0 to values >= 0
        return (-np.inf if self.negative_slope > 0 else 0.0), np.inf

    def forward(self, z):
        z = np.asarray(z)
        slope = _in_dtype_of(z, self.negative_slope)
        with np.errstate(over="ignore"):  # a slope beyond 1 overflows near the limits
            negative = z * slope
        if abs(slope) > 1 and negative.dtype.kind == "f":  # kept finite, as Exp is
            big = np.finfo(negative.dtype).max
            np.clip(negative, -big, big, out=negative)
        return np.where(z > 0, z, negative)

    def derivative(self, z):
        z = np.asarray(z)
        dtype = np.result_type(z, np.float32)
        return np.where(z > 0, 1.0, self.negative_slope).astype(dtype)

    def inverse(self, a):
        if not self.negative_slope > 0:  # no inverse below 0: start alive, as ReLU
            return a
        return np.where(a > 0, a, a / self.negative_slope)

    def forward_(self, z):
        if 0 <= self.negative_slope <= 1:
            return np.maximum(z, z * _in_dtype_of(z, self.negative_slope), out=z)
        return super().forward_(z)

    def output_bound(self, m, slope=None):
        return max(1.0, abs(float(self.negative_slope))) * m

    def backward_(self, delta, z, a):
        if self.needs_input:
            return super().backward_(delta, z, a)
        # g' = slope + (1 - slope) [a > 0], branch-free
        factor = np.multiply(a > 0, 1 - self.negative_slope, dtype=delta.dtype)
        factor += _in_dtype_of(factor, self.negative_slope)
        return np.multiply(delta, factor, out=delta)


@_activations.register()
class ELU(Activation):
    """Exponential linear unit, ``g(z) = z if z > 0 else alpha (exp(z) - 1)``.

    ``g'(z) = 1 if z > 0 else alpha exp(z) = g(z) + alpha``.

    Parameters
    ----------
    alpha : float, default=1.0
        Value that ``g`` approaches for ``z -> -inf`` is ``-alpha``.

    >>> ELU(alpha=1.0).derivative(np.array([0.0, 1.0]))
    array([1., 1.])
    """

    relu_family = True
    _real_params = {"alpha": None}

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    @property
    def needs_input(self):
        return not self.alpha > 0

    @property
    def max_derivative(self):
        return max(1.0, abs(float(self.alpha)))

    @property
    def value_range(self):
        # alpha (exp(z) - 1) lies in (-alpha, 0] for z <= 0, in [0, -alpha) if alpha < 0
        return (-float(self.alpha) if self.alpha > 0 else 0.0), np.inf

    def forward(self, z):
        z = np.asarray(z)
        alpha = _in_dtype_of(z, self.alpha)
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))

    def forward_(self, z):
        # forward's values in plain passes (200 x 256 float64: 63 us against 193
        # through forward's select)
        alpha = _in_dtype_of(z, self.alpha)
        return _rectified(z, lambda neg: np.multiply(np.expm1(neg, out=neg), alpha,
                                                     out=neg))

    def output_bound(self, m, slope=None):
        return max(m, abs(float(self.alpha)))  # expm1 of z <= 0 lies in (-1, 0]

    def inverse(self, a):
        if not self.alpha > 0:
            return None
        # a mean at or below -alpha starts where g' is still 1 % of alpha, not 0
        below = np.maximum(a, -0.99 * self.alpha) / self.alpha
        return np.where(a > 0, a, np.log1p(np.minimum(below, 0)))

    def derivative(self, z):
        z = np.asarray(z)
        return np.where(z > 0, 1.0, self.alpha * np.exp(np.minimum(z, 0))).astype(
            np.result_type(z, np.float32)
        )

    def backward_(self, delta, z, a):
        if self.needs_input:
            return super().backward_(delta, z, a)
        # g' = 1 for a > 0, a + alpha otherwise: min(a, 0) + alpha + (1 - alpha) [a > 0]
        factor = np.minimum(a, 0)
        factor += _in_dtype_of(factor, self.alpha)
        factor += np.multiply(a > 0, 1 - self.alpha, dtype=delta.dtype)
        return np.multiply(delta, factor, out=delta)


@_activations.register()
class Softplus(Activation):
    """Softplus, ``g(z) = log(1 + exp(z))``; ``g'(z) = sigmoid(z) = 1 - exp(-g(z))``.

    >>> Softplus().derivative(np.array([0.0]))
    array([0.5])
    """

    needs_input = False
    value_range = (0.0, np.inf)

    def forward(self, z):
        return _softplus(z)

    def derivative(self, z):
        return _sigmoid(z)

    def inverse(self, a):
        # g > 0: a mean at or below 0 starts where g' is still 1 % of its peak, not 0
        a = np.maximum(a, 0.01)
        return a + np.log(-np.expm1(-a))  # log(exp(a) - 1), without overflow

    def forward_(self, z):
        return _softplus(z, out=z)

    def output_bound(self, m, slope=None):
        return m + 0.7  # log(1 + e^z) <= max(z, 0) + log 2

    def backward_(self, delta, z, a):
        delta *= -np.expm1(-a)
        return delta


@_activations.register("swish", name="silu")
class SiLU(Activation):
    """Sigmoid linear unit (swish), ``g(z) = z sigmoid(z)``.

    ``g'(z) = s (1 + z (1 - s))`` with ``s = sigmoid(z)``.

    >>> SiLU().derivative(np.array([0.0]))
    array([0.5])
    """

    # z sigmoid(z) is smallest at z = -1.2785
    value_range = (-0.2784645427610738, np.inf)

    def forward(self, z):
        return z * _sigmoid(z)

    def output_bound(self, m, slope=None):
        return m  # |z sigmoid(z)| <= |z|

    def derivative(self, z):
        s = _sigmoid(z)
        return s * (1.0 + z * (1.0 - s))


@_activations.register()
class GELU(Activation):
    """Gaussian error linear unit (exact form), ``g(z) = z Phi(z)``.

    ``g'(z) = Phi(z) + z phi(z)``, with ``Phi`` and ``phi`` the standard normal
    distribution and density.

    >>> GELU().derivative(np.array([0.0]))
    array([0.5])
    """

    # z Phi(z) is smallest at z = -0.7518
    value_range = (-0.16997120747990363, np.inf)

    def forward(self, z):
        return z * ndtr(z)

    def output_bound(self, m, slope=None):
        return m  # |z Phi(z)| <= |z|

    def derivative(self, z):
        return ndtr(z) + _z_density(z)

    def backward_(self, delta, z, a):
        # Phi(z) = a / z, from the forward pass's a = z Phi(z): a division instead of
        # a second ndtr, which scipy computes one element at a time (200 x 256 float64:
        # 134 us against 1,470 for delta * derivative(z)). Phi is 0.5 where |z| is too
        # small for a / z to keep its digits, and 1 or 0 at z = +-inf; elsewhere the
        # two differ by a few units in the last place of Phi
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.divide(a, z)
        g[np.abs(z) < 4 * np.finfo(g.dtype).tiny] = 0.5
        infinite = np.isinf(z)
        if infinite.any():
            g[infinite] = z[infinite] > 0
        g += _z_density(z)
        delta *= g
        return delta


def _z_density(z):
    """``z phi(z)``, ``phi`` the standard normal density: GELU's derivative less
    ``Phi(z)``, in one new array. In a fit, a 200 x 256 backward pass took 104 us with
    it against 113 with the temporaries of ``zc * exp(-0.5 zc zc) / sqrt(2 pi)``, whose
    values are the same."""
    zc = np.clip(z, -40, 40)  # z phi(z) is 0 beyond; avoids overflow in z**2
    density = np.multiply(zc, zc,
                          out=np.empty_like(zc, dtype=np.result_type(zc, np.float32)))
    density *= -0.5
    np.exp(density, out=density)
    density *= zc
    density /= _SQRT_2PI
    return density


@_activations.register(name="prelu")
class PReLU(LeakyReLU):
    """Parametric ReLU: a Leaky ReLU whose negative slope is learned, one per unit.

    ``g(z) = z if z > 0 else alpha_j z``, with ``alpha_j`` trained with the weights
    by every solver (not L2-regularized) and initialised to ``negative_slope``. A fitted
    estimator exposes the learned slopes as ``slopes_`` (one entry per hidden layer:
    a PReLU layer's array of slopes, None for other layers).

    Parameters
    ----------
    negative_slope : float, default=0.25
        Initial slope of every unit.

    >>> PReLU(negative_slope=0.25).forward(np.array([-4.0, 1.0]))
    array([-1.,  1.])
    """

    learnable = True

    def __init__(self, negative_slope=0.25):
        self.negative_slope = negative_slope

    needs_input = True

    def forward_param_(self, z, slope):
        """``g(z)`` in place with per-unit slopes ``slope`` (shape ``(n_units,)``)."""
        # exactly z or slope z, in plain passes (200 x 256 float64: 32 us against 124
        # through a select of the slopes)
        steepest = float(np.abs(slope).max(initial=0))
        if not steepest > 1:  # |slope z| <= |z|: no overflow
            return _rectified(z, lambda neg: np.multiply(neg, slope, out=neg))

        def scaled(neg):
            # slopes beyond 1 (learned ones may get there) overflow only near the
            # float limit: slope z is then kept finite for a finite z, as LeakyReLU's
            # (an infinite z stays infinite)
            big = float(np.finfo(neg.dtype).max)
            # in Python floats (no warning), with room for their own rounding
            if float(neg.min(initial=0)) * steepest >= -big * (1 - 1e-12):
                return np.multiply(neg, slope, out=neg)
            infinite = np.isinf(neg)
            with np.errstate(over="ignore"):
                np.multiply(neg, slope, out=neg)
            np.copyto(neg, np.clip(neg, -big, big), where=~infinite)
            return neg

        return _rectified(z, scaled)

    def output_bound(self, m, slope=None):
        if slope is None:
            return super().output_bound(m)
        return max(1.0, float(np.max(np.abs(slope)))) * m  # NaN slopes: NaN

    def derivative_param(self, z, slope):
        """``g'(z)`` with per-unit slopes: ``1 if z > 0 else slope_j``."""
        z = np.asarray(z)
        return np.where(z > 0, 1.0, slope).astype(np.result_type(z, np.float32))

    def backward_param_(self, delta, z, slope, slope_grad):
        """``slope_grad = sum_i delta * z [z <= 0]``, then ``delta *= g'(z)``."""
        # in plain passes, no select (200 x 256 float64: 264 us through two)
        # z where z <= 0, 0 elsewhere
        scratch = _against_zeros(np.minimum, z, np.empty_like(z))
        scratch *= delta
        np.sum(scratch, axis=0, out=slope_grad)
        # delta = (delta - kept) slope + kept, kept = delta where z > 0 and 0 elsewhere:
        # each side adds an exact 0 to slope delta or to delta
        kept = np.multiply(delta, np.greater(z, 0).view(np.uint8), out=scratch)
        delta -= kept
        delta *= slope
        delta += kept
        return delta


@_activations.register()
class Softmax(Activation):
    """Softmax over the last axis, ``g(z)_k = exp(z_k) / sum_j exp(z_j)``; output only.

    :meth:`derivative` returns the diagonal of the Jacobian, ``s_k (1 - s_k)``; paired
    with categorical cross-entropy the output gradient reduces to ``s - y``.

    >>> Softmax().forward(np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """

    needs_input = False
    output_only = True

    def forward(self, z):
        z = np.asarray(z)  # np.result_type reads a list as a dtype
        return self.forward_(np.array(z, dtype=np.result_type(z, np.float32)))

    def derivative(self, z):
        s = self.forward(z)
        return s * (1.0 - s)

    @property
    def max_derivative(self):
        return 0.25  # s (1 - s), at s = 1/2 (a grid taken as one row would say 0.005)

    def inverse(self, a):
        return np.log(np.clip(a, 1e-7, 1 - 1e-7))  # log class priors

    def forward_(self, z):
        with np.errstate(over="ignore"):  # z - max may reach -inf: exp gives 0, as due
            z -= z.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    def output_bound(self, m, slope=None):
        return 1.0  # for finite z: shifted by its max, the largest exp is 1


@_activations.register()
class Exp(Activation):
    """Exponential, ``g(z) = exp(z)``: the inverse of the log link (Poisson output).

    Clipped at the largest finite value of the dtype instead of overflowing (a fitted
    model's ``predict`` refuses an output clipped so, as an overflow).

    >>> Exp().forward(np.array([0.0]))
    array([1.])
    """

    needs_input = False
    value_range = (0.0, np.inf)

    def forward(self, z):
        z = np.asarray(z)  # np.result_type reads a list as a dtype
        return self.forward_(np.array(z, dtype=np.result_type(z, np.float32)))

    def derivative(self, z):
        return self.forward(z)

    @property
    def max_derivative(self):
        # unbounded: the scale is g'(0) = 1, so a unit is saturated where exp(z) < 0.01
        # (a grid up to z = 10 would say 22026, and every unit saturated)
        return 1.0

    def inverse(self, a):
        return np.log(np.maximum(a, 1e-7))

    def forward_(self, z):
        # log(max) rounded to the dtype may round up: step down so exp stays finite
        limit = z.dtype.type(np.log(np.finfo(z.dtype).max))
        np.minimum(z, np.nextafter(limit, z.dtype.type(0)), out=z)
        return np.exp(z, out=z)

    def overflowed(self, a):
        """Whether an output in ``a`` (of this ``forward_``: a subclass that redefines
        ``forward`` has another) is the clip's: the exp of its ``z`` is beyond, or at
        the edge of, the dtype's range."""
        return bool(a.max(initial=0) >= self.forward_(np.full(1, np.inf, a.dtype))[0])

    def output_bound(self, m, slope=None):
        return math.exp(m) if m < 700 else math.inf

    def backward_(self, delta, z, a):
        delta *= a
        return delta


# length of ReLU's shared zeros: one slice covers 200 rows of 256 units; slices of 4096
# would take 8.6 us on 100 x 256 float64 instead of 3.2
_ZEROS = 1 << 16


def _against_zeros(ufunc, z, out):
    """``ufunc(z, 0)`` into ``out`` (``z`` itself, or an array laid out like it), for
    ``np.maximum`` or ``np.minimum``.

    numpy's maximum and minimum are fast only on two contiguous 1-d operands, not
    against a broadcast 0 or row of zeros: the memory of a contiguous ``z``, in slices
    as long as the shared zeros, takes 3.2 us on 100 x 256 float64 (12.0 against 0, 4.9
    against a row) and 2.3 on 100 x 128 in Fortran order (6.3 and 4.1).
    """
    contiguous = z.flags.c_contiguous or z.flags.f_contiguous
    if not contiguous or out.strides != z.strides:
        return ufunc(z, 0, out=out)
    flat, dst = z.ravel(order="K"), out.ravel(order="K")  # views, in memory order
    zeros = _zeros(z.dtype)
    for start in range(0, flat.size, _ZEROS):
        part = flat[start:start + _ZEROS]
        ufunc(part, zeros[:part.size], out=dst[start:start + _ZEROS])
    return out


def _in_dtype_of(z, param):
    """A scalar parameter in ``z``'s float dtype, as numpy takes a Python float: a numpy
    float64 (a grid from ``np.logspace``) would make a float32 result float64."""
    return z.dtype.type(param) if z.dtype.kind == "f" else param


def _rectified(z, negative_part):
    """``z`` overwritten with ``max(z, 0) + negative_part(min(z, 0))``, where
    ``negative_part`` works in place on its argument and keeps 0 at 0: one term is 0 on
    each side, so this is exactly ``z`` where ``z > 0`` and ``negative_part(z)``
    elsewhere, in plain passes instead of a select."""
    negative = negative_part(_against_zeros(np.minimum, z, np.empty_like(z)))
    _against_zeros(np.maximum, z, z)
    z += negative
    return z


@functools.cache
def _zeros(dtype):
    """A read-only vector of ``_ZEROS`` zeros of ``dtype``, shared by every call.

    Where the OS has them, private read-only anonymous pages: each is the kernel's one
    page of zeros, so the vector takes no memory and its reads hit the cache.
    """
    dtype = np.dtype(dtype)
    try:
        pages = mmap.mmap(-1, _ZEROS * dtype.itemsize, flags=mmap.MAP_PRIVATE,
                          prot=mmap.PROT_READ)
    except (AttributeError, TypeError, OSError):  # pragma: no cover - e.g. Windows
        zeros = np.zeros(_ZEROS, dtype)
        zeros.flags.writeable = False
        return zeros
    return np.frombuffer(pages, dtype)


def check_derivative(activation, z=None, eps=None):
    """Worst relative error of ``activation.derivative`` against central differences.

    Parameters
    ----------
    activation : Activation or str
    z : array-like, optional
        Points to check; by default a few points away from the kinks at 0.
    eps : float, optional
        Relative step of the central differences. Default: 1e-6 when ``forward``
        computes in float64, the cube root of its precision otherwise (4.9e-3 for a
        ``forward`` that returns float32: a smaller step would measure its rounding).

    Returns
    -------
    float
        ``max |d_analytic - d_numeric| / max(|d_analytic|, |d_numeric|, 1e-6)``.

    >>> check_derivative("tanh") < 1e-7
    True
    """
    activation = get(activation)
    if z is None:
        z = np.array([-3.1, -1.7, -0.62, -0.23, 0.17, 0.45, 1.3, 2.9])
    z = np.asarray(z, dtype=np.float64)
    if eps is None:
        eps = _difference_step(activation, z)
    h = eps * np.maximum(1.0, np.abs(z))
    if activation.output_only:
        # softmax couples a row: perturb one entry at a time (the Jacobian diagonal)
        numeric = np.empty_like(z)
        for i in np.ndindex(z.shape):
            step = np.zeros_like(z)
            step[i] = h[i]
            diff = activation.forward(z + step) - activation.forward(z - step)
            numeric[i] = diff[i] / (2 * h[i])
    else:
        numeric = (activation.forward(z + h) - activation.forward(z - h)) / (2 * h)
    analytic = np.asarray(activation.derivative(z), dtype=np.float64)
    if analytic.shape != z.shape:
        return np.inf
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-6)
    err = np.abs(analytic - numeric) / scale
    return float(np.max(np.where(np.isfinite(err), err, np.inf)))


def forward_precision(activation, z):
    """The machine epsilon of what ``forward`` returns for float64 ``z`` (float64's when
    it returns something else than a float array)."""
    out = np.asarray(activation.forward(z))
    return float(np.finfo(out.dtype if out.dtype.kind == "f" else np.float64).eps)


def _difference_step(activation, z):
    precision = forward_precision(activation, z)
    return 1e-6 if precision <= np.finfo(np.float64).eps else precision ** (1 / 3)
