"""Parameter handling shared by activations and initializers.

Both are small configurable objects that users put in grid searches, so they behave
like scikit-learn estimators as far as parameters go: constructor keywords stored
under the same name, ``get_params``/``set_params``, a repr built from the parameters,
equality by class and parameters, and cloning through ``sklearn.base.clone``.
"""

import inspect
import math
import numbers
import re

import numpy as np


class ParamsMixin:
    """Parameters, repr, equality and cloning from the ``__init__`` signature."""

    #: parameters that must be finite real numbers: name -> least value (None: any)
    _real_params = {}

    def _check_params(self):
        """Raise a ValueError naming the first parameter out of its range."""
        own = self.get_params(deep=False)  # a subclass may take other parameters
        for name, least in self._real_params.items():
            if name not in own:
                continue
            value = own[name]
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                    and math.isfinite(value) and (least is None or value >= least)):
                need = "a finite real number" + ("" if least is None else f" >= {least}")
                raise ValueError(f"the {name} of {type(self).__name__} must be {need}, "
                                 f"got {value!r}.")

    @classmethod
    def _get_param_names(cls):
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        names = [p.name for p in params if p.name != "self"]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ must take explicit keyword parameters, "
                    f"not *args or **kwargs."
                )
        return sorted(names)

    def get_params(self, deep=True):
        """Return the constructor parameters as a dict; with ``deep``, those of
        parameters that have parameters too (an activation that wraps another), as
        ``name__inner``, as a scikit-learn estimator does."""
        params = {}
        for name in self._get_param_names():
            try:
                value = getattr(self, name)
            except AttributeError:
                raise AttributeError(
                    f"{type(self).__name__} has no attribute {name!r}, which its "
                    f"__init__ takes: as in a scikit-learn estimator, each __init__ "
                    f"argument must be stored under its own name (self.{name} = "
                    f"{name}), where get_params, clone and the repr read it.") from None
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v)
                              for k, v in value.get_params(deep=True).items())
            params[name] = value
        return params

    def set_params(self, **params):
        """Set constructor parameters, and with ``name__inner`` those of a parameter
        that has parameters; unknown names raise ``ValueError``."""
        valid = self._get_param_names()
        nested = {}
        for key, value in params.items():
            name, _, inner = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}. "
                    f"Valid parameters are: {valid}."
                )
            if inner:
                nested.setdefault(name, {})[inner] = value
            else:
                setattr(self, name, value)
        for name, inner in nested.items():
            value = getattr(self, name)
            if not hasattr(value, "set_params") or isinstance(value, type):
                raise ValueError(
                    f"Invalid parameter {name + '__' + next(iter(inner))!r} for "
                    f"{type(self).__name__}: its {name}, {value!r}, has no parameters.")
            value.set_params(**inner)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        if type(self) is not type(other):
            return False
        mine, theirs = self.get_params(deep=False), other.get_params(deep=False)
        return mine.keys() == theirs.keys() and all(
            _equal(value, theirs[name]) for name, value in mine.items())

    def __hash__(self):
        # the class alone: equality takes a parameter given as an array of one value
        # (unhashable) for that value (hashable), and equal objects must hash equal
        return hash(type(self))


def _equal(a, b):
    """``a == b`` as a bool, for parameter values that may be arrays."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # an elementwise comparison of several values
        return bool(np.array_equal(a, b))


def snake_case(name):
    """``LeakyReLU`` -> ``leaky_relu``, ``GELU`` -> ``gelu``, ``HeNormal`` -> ``he_normal``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class Registry:
    """Map names, aliases and classes of one kind of object to instances."""

    def __init__(self, kind, base):
        self.kind = kind
        self.base = base
        self._classes = {}

    def register(self, *aliases, name=None):
        """Class decorator: register under ``name`` (default: snake_case) and aliases."""

        def decorate(cls):
            cls.name = name or snake_case(cls.__name__)
            for key in (cls.name, *aliases):
                self._classes[key] = cls
            return cls

        return decorate

    def names(self):
        return sorted(self._classes)

    def get(self, spec):
        """An instance from a name, a class or an instance (returned as is, once its
        parameters are checked)."""
        if isinstance(spec, self.base):
            spec._check_params()
            return spec
        if isinstance(spec, type) and issubclass(spec, self.base):
            return spec()
        if isinstance(spec, str) and spec in self._classes:
            return self._classes[spec]()
        raise ValueError(
            f"Unknown {self.kind} {spec!r}. Use one of {self.names()}, "
            f"or an instance of a {self.base.__name__} subclass."
        )
