"""The estimator machinery shared by the classifier and the regressor.

Data flows one way: validated arrays -> :class:`~sknn_scratch.network.Network` ->
optimizer -> fitted attributes. ``coefs_`` / ``intercepts_`` are views into the flat
parameter vector the optimizers update; assigning new arrays to them (to load
weights) is picked up by the next ``predict``, ``partial_fit`` or warm-started ``fit``.
"""

import contextlib
import copy
import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (Interval, InvalidParameterError, Options,
                                            StrOptions)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import check_is_fitted, validate_data

from . import activations as _act
from . import initializers as _init
from . import _threads, solvers
from ._processes import (ProcessTeam, WholeSteps, _usable_cpus, inside_parallel_worker,
                         numpy_one_thread, resolve_n_jobs, using_blas)
from .network import Network, abs_max
from .solvers import SGD, Adam, lbfgs


class ZeroInitializationWarning(UserWarning):
    """The units of a hidden layer start with the same incoming and outgoing weights
    and, by symmetry, stay identical (to rounding)."""


class DeadOutputWarning(UserWarning):
    """A fitted regressor's ReLU output is 0 on most training rows whose target is
    above 0: its gradient is 0 there, so training no longer lowers their error."""


_NONFINITE_MSG = (
    "Solver produced non-finite parameter weights. The input data may contain large "
    "values and need to be preprocessed."
)
# the lists of a fit's records, which its epochs extend in place
_RECORDS = ("loss_curve_", "validation_scores_", "validation_loss_curve_")

# A one-process fit whose mini-batch products all stay at or below this many
# multiply-adds (batch rows x fan-in x fan-out) runs numpy's BLAS in one thread (see
# BaseMLPScratch._blas_threads_for)
SMALL_PRODUCT = 1 << 21


def _builtin(obj):
    return type(obj).__module__ in (_act.__name__, _init.__name__)


class BaseMLPScratch(BaseEstimator):
    """Shared parameters, validation, training loop and prediction."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": "no_validation",  # strings, Activation objects or lists of them
        "output_activation": "no_validation",
        "init": "no_validation",
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [None, Interval(Integral, 1, None, closed="left"),
                   Interval(Integral, None, -1, closed="right")],
    }

    def _store_init_params(self, arguments):
        """Store each ``__init__`` argument under its own name, and nothing else."""
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    # ------------------------------------------------------------------ fit entry points
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data ``X`` and targets ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, multiplied with the class weights.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_partial_fit(self):
        self._validate_params()
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for stochastic "
                                 f"optimizers. {self.solver!r} is not stochastic.")
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")

    def _input_dtypes(self, first_pass):
        """The dtypes in which validation keeps a training X (and so its targets and
        weights): float64 or float32 when the network is built in X's, the fitted
        weights' when training goes on from them."""
        network = getattr(self, "_network", None)
        if first_pass or network is None:
            return (np.float64, np.float32)
        return network.dtype

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        # counted among this process's BLAS users: no n_jobs team of another thread
        # forks while it runs (see _processes.using_blas)
        with using_blas():
            return self._train(X, y, sample_weight, incremental, classes)

    def _train(self, X, y, sample_weight, incremental, classes):
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start
                                                     and not incremental)
        saved = dict(self.__dict__)
        # a RandomState given as random_state draws the weights and shuffles: a failed
        # call puts its state back too
        rng = self.random_state
        rng_state = rng.get_state() if isinstance(rng, np.random.RandomState) else None
        try:
            # scikit-learn's finiteness check sums X first, which may overflow
            with np.errstate(over="ignore", invalid="ignore"):
                X, Y, sw, y_orig = self._validate_training_data(
                    X, y, sample_weight, incremental, first_pass, classes)
            if first_pass:
                config = self._resolve_configuration(X, Y, sw)
                network = config[0]
            else:
                config = None
                self._check_continuation(X, Y)
                network = self._continued_network(Y)
                # the weights exist, but an invalid init is an error, not ignored
                self._resolve_inits(network.activations)
            self._check_targets(Y, network.activations[-1], continued=config is None)
            # the training loop's weights and alpha (the same objective, see _unit_weights)
            sw, self._alpha = _unit_weights(sw, self.alpha)
            if config is None:
                self._sync_params()
                if not np.isfinite(self._params).all():
                    raise ValueError(
                        "coefs_ / intercepts_ hold non-finite values (NaN or inf): "
                        "training cannot continue from them. Assign finite weights, "
                        "or fit with warm_start=False to start over.")
                if network is not self._network:  # its fallback was of the other one
                    self._kept_finite = None
                self._adopt_network(network)
                self._continue_stopping_records()
            if config is not None:
                self._initialize(*config, X, Y, sw)
            # the rows to train on and to validate on, then the epochs' shuffles: from
            # a generator of their own for an integer random_state (scikit-learn's
            # continue the one its initial weights came from), the same one as the
            # initial weights' for a RandomState
            self._random_state = check_random_state(self.random_state)
            data = (self._stochastic_data(X, Y, sw, y_orig)
                    if self.solver != "lbfgs" else None)
            if config is not None and data is not None and data[1] is not None:
                # the output bias from the rows trained on (drawn after the weights, as
                # scikit-learn draws them): the validation targets stay unseen
                train = data[0]
                self.intercepts_[-1][...] = _output_bias(self._network.activations[-1],
                                                         train.Y, train.sw)
        except BaseException:
            # validation of a refit may already have reset n_features_in_ / classes_:
            # undo that, so a bad call leaves a fitted model exactly as it was
            self._roll_back(saved, None, rng, rng_state)
            raise
        # a continued fit trains the model's own weights in place (and partial_fit its
        # optimizer): their copies, so that a failure takes none of it
        undo = None if first_pass else self._undo_point(incremental, saved)
        try:
            # overflow while diverging is detected after each epoch and reported as a
            # ConvergenceWarning or ValueError naming the cause, not as numpy noise
            with np.errstate(over="ignore", invalid="ignore"):
                if self.solver == "lbfgs":
                    self._fit_lbfgs(X, Y, sw)
                else:
                    self._fit_stochastic(*data, incremental)
        except BaseException:
            # a fit that fails leaves the model it would have replaced (or none), a
            # continued one the model as it was (a Ctrl-C during the epochs is no
            # failure: it keeps what was trained, see _fit_stochastic)
            self._roll_back(saved, undo, rng, rng_state)
            raise
        finally:
            for name in ("_stale_optimizer", "_best_params", "_last_finite",
                         "_last_finite_epochs", "_epoch_start", "_team", "_alpha"):
                self.__dict__.pop(name, None)  # the training loop's, whatever happened
            network.release()
        if not incremental:  # partial_fit: a forward pass would cost a third of a call
            try:
                self._check_fitted_output(X, Y, sw)
            except Exception:  # its warning turned into an error: the call failed
                self._roll_back(saved, undo, rng, rng_state)
                raise
        return self

    def _roll_back(self, saved, undo, rng, rng_state):
        """The model as the call found it: its attributes (``saved``), the arrays a
        continued fit trained in place (``undo``) and a RandomState's draws."""
        self.__dict__.clear()
        self.__dict__.update(saved)
        if undo is not None:
            self._undo(undo)
        if rng_state is not None:
            rng.set_state(rng_state)

    def _check_fitted_output(self, X, Y, sw):
        """Warn about the fitted model's outputs on its training rows (regressor)."""

    def _undo_point(self, incremental, saved):
        """What a continued fit changes in place, as it is now (``saved``: the model's
        attributes before the call, whose record lists it extends)."""
        kept = getattr(self, "_kept_finite", None) if incremental else None
        # an n_jobs team writes the latest finite weights into the kept array
        if kept is not None and resolve_n_jobs(self.n_jobs) > 1:
            kept = (kept[0].copy(), kept[1])
        return (self._params, self._params.copy(),
                # partial_fit steps the model's optimizer; a warm fit makes its own
                copy.deepcopy(self._optimizer) if incremental else None, kept,
                {name: len(saved.get(name) or ()) for name in _RECORDS})

    def _undo(self, undo):
        """Put back what ``_undo_point`` copied, once the attributes are restored."""
        params, start, optimizer, kept, lengths = undo
        params[...] = start  # the array trained, which need not be the one restored
        if optimizer is not None:
            self._optimizer = optimizer
        if kept is not None:
            self._kept_finite = kept
        for name, length in lengths.items():  # the lists grow in place
            if getattr(self, name) is not None:
                del getattr(self, name)[length:]

    # ---------------------------------------------------------------- configuration
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, np.ndarray) and sizes.ndim == 0:  # not iterable
            sizes = sizes.item()
        sizes = [sizes] if not hasattr(sizes, "__iter__") else list(sizes)
        # a bool is an Integral to Python, but never meant as a layer's width
        bools = any(isinstance(s, (bool, np.bool_)) for s in sizes)
        if bools or any(not isinstance(s, Integral) or s <= 0 for s in sizes):
            why = " (a bool is not a layer size)" if bools else ""
            raise InvalidParameterError(
                f"hidden_layer_sizes must be positive integers, got {sizes}{why}.")
        return [int(s) for s in sizes]

    def _resolve_hidden_activations(self, n_hidden):
        spec = self.activation
        specs = list(spec) if isinstance(spec, (list, tuple)) else [spec] * n_hidden
        if len(specs) != n_hidden:
            raise InvalidParameterError(
                f"activation has {len(specs)} entries but hidden_layer_sizes has "
                f"{n_hidden} layers: give one activation per hidden layer."
            )
        resolved = [_resolve("activation", _act.get, s) for s in specs]
        for act in resolved:
            if act.output_only:
                raise InvalidParameterError(
                    f"activation={act!r} can only be an output activation.")
            if not _builtin(act):
                _check_custom_activation("activation", act)
        return resolved

    def _resolve_inits(self, activations):
        n_layers = len(activations)
        spec = self.init
        # "auto": He uniform into a ReLU-family layer, Glorot uniform into any other
        auto = [_init.HeUniform() if act.relu_family else _init.GlorotUniform()
                for act in activations[:-1]] + [_init.GlorotUniform()]
        if isinstance(spec, (list, tuple)):
            if len(spec) != n_layers:
                raise InvalidParameterError(
                    f"init has {len(spec)} entries but the network has {n_layers} "
                    f"layers (hidden layers and output): give one per layer."
                )
            return [auto[i] if _is_auto(s) else _resolve("init", _init.get, s)
                    for i, s in enumerate(spec)]
        if _is_auto(spec):
            return auto
        return [_resolve("init", _init.get, spec)] * n_layers

    def _resolve_configuration(self, X, Y, sw):
        """Network and initializers of a first fit (nothing stored on self yet)."""
        sizes = self._hidden_sizes()
        hidden = self._resolve_hidden_activations(len(sizes))
        out_act, loss = self._output_activation_and_loss(Y)
        units = [X.shape[1], *sizes, Y.shape[1]]
        network = Network(units, hidden + [out_act], loss, X.dtype)
        inits = self._resolve_inits(network.activations)
        return network, inits

    def _loss_changed(self, loss):
        """Whether the parameters now ask for another loss than ``loss``, the fitted
        network's (only a regressor's ``loss`` parameter can)."""
        return False

    def _continued_network(self, Y):
        """The fitted network, with the activations and loss the parameters give now:
        a warm-started ``fit`` or ``partial_fit`` continues from the fitted weights with
        a changed ``activation`` or ``output_activation`` (as scikit-learn's does) but
        not with other layer sizes or learned slopes, which have no weights yet."""
        net = self._network
        sizes = self._hidden_sizes()
        if sizes != net.layer_units[1:-1]:
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} differs from the fitted "
                f"network's hidden layers {tuple(net.layer_units[1:-1])}: warm_start and "
                "partial_fit continue from the fitted weights. Fit with "
                "warm_start=False to train a new network.")
        hidden = self._resolve_hidden_activations(len(sizes))
        if [a.learnable for a in hidden] != [a.learnable for a in net.activations[:-1]]:
            raise ValueError(
                f"activation={self.activation!r} adds or removes learned slopes (PReLU) "
                f"of the fitted network's {net.activations[:-1]!r}: warm_start and "
                "partial_fit continue from the fitted parameters. Fit with "
                "warm_start=False to train a new network.")
        if _is_auto(self.output_activation) and not self._loss_changed(net.loss):
            out_act, loss = net.activations[-1], net.loss  # as resolved at the first fit
        else:
            out_act, loss = self._output_activation_and_loss(Y)
        if hidden + [out_act] == net.activations and type(loss) is type(net.loss):
            return net
        return Network(net.layer_units, hidden + [out_act], loss, net.dtype)

    def _adopt_network(self, network):
        """Train and predict with ``network``, whose parameters are laid out as now."""
        self._network = network
        self.out_activation_ = ("logistic" if network.activations[-1].name == "sigmoid"
                                else network.activations[-1].name)
        self.activations_ = network.activations[:-1]

    def _stops_early(self):
        """Whether training stops on a validation score: lbfgs, as in scikit-learn,
        ignores ``early_stopping`` and keeps no validation records."""
        return bool(self.early_stopping) and self.solver != "lbfgs"

    def _continue_stopping_records(self):
        """The records of the stopping rule ``early_stopping`` (and the solver) now ask
        for, where an earlier fit kept the other rule's."""
        stops_early = self._stops_early()
        if stops_early == (self.validation_scores_ is not None):
            return
        if stops_early:
            self.validation_scores_, self.validation_loss_curve_ = [], []
            self.best_validation_score_, self.best_loss_ = -np.inf, None
        else:
            self.validation_scores_ = self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min([x for x in self.loss_curve_ if math.isfinite(x)],
                                  default=np.inf)
        self._no_improvement_count = 0

    def _initialize(self, network, inits, X, Y, sw):
        """Draw the initial weights and reset every fitted attribute of training."""
        rng = check_random_state(self.random_state)
        units = network.layer_units
        coefs = [_initial_weights(init, fi, fo, rng, network.dtype) for init, fi, fo
                 in zip(inits, units[:-1], units[1:])]
        # biases (and PReLU slopes) start alike: a hidden layer's units are copies of
        # each other when their incoming and their outgoing weights are
        copies = [i + 1 for i, (w_in, w_out) in enumerate(zip(coefs, coefs[1:]))
                  if w_in.shape[1] > 1 and (w_in == w_in[:, :1]).all()
                  and (w_out == w_out[:1]).all()]
        if copies:
            warnings.warn(
                f"init={self.init!r}: the units of hidden layer(s) {copies} start with the "
                "same incoming and outgoing weights, receive the same gradient and so stay "
                "identical to each other (up to rounding, which training can amplify "
                "over many epochs); such a layer behaves like a single unit. Use a random "
                "initializer such as 'glorot_uniform' or 'he_uniform' to break the "
                "symmetry.",
                ZeroInitializationWarning,
            )
        intercepts = [np.zeros(fo) for fo in units[1:]]
        intercepts[-1][:] = _output_bias(network.activations[-1], Y, sw)
        slopes = [np.full(fo, act.negative_slope) if act.learnable else None
                  for act, fo in zip(network.activations[:-1], units[1:-1])]
        self._adopt_network(network)
        self._params = network.pack(coefs, intercepts, slopes)
        self._set_views()
        self.n_layers_ = len(units)
        self.n_outputs_ = units[-1]
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        stops_early = self._stops_early()
        self.validation_scores_ = [] if stops_early else None
        self.validation_loss_curve_ = [] if stops_early else None
        self.best_validation_score_ = -np.inf if stops_early else None
        self.best_loss_ = None if stops_early else np.inf
        self._optimizer = None
        self._kept_finite = None

    def _set_views(self):
        self.coefs_, self.intercepts_, slopes = self._network.unpack(self._params)
        self._slopes = slopes
        self._views = (list(self.coefs_), list(self.intercepts_))

    @property
    def slopes_(self):
        """Learned negative slopes of PReLU hidden layers, one array per hidden layer.

        ``None`` for a layer whose activation has no learned parameter. Read-only views:
        the slopes are trained with the weights, not set by hand.
        """
        check_is_fitted(self)
        return [None if s is None else _read_only(s) for s in self._slopes]

    def _sync_params(self):
        """Copy weights the user assigned to ``coefs_`` / ``intercepts_`` into training."""
        views = getattr(self, "_views", None)
        if (getattr(self, "_params", None) is not None and views is not None
                and _same_arrays(views[0], self.coefs_)
                and _same_arrays(views[1], self.intercepts_)):
            return
        self._check_weight_shapes()
        self._params = self._network.pack(self.coefs_, self.intercepts_,
                                          getattr(self, "_slopes", None))
        self._set_views()
        self._kept_finite = None  # new weights: the old fallback no longer applies

    def _check_weight_shapes(self):
        net = self._network
        units = net.layer_units
        expected = [(i, o) for i, o in zip(units[:-1], units[1:])]
        for name in ("coefs_", "intercepts_"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise ValueError(
                    f"{name} must be a list of arrays, one per layer, as fit leaves it; "
                    f"got {type(getattr(self, name)).__name__}.")
        got = [np.shape(c) for c in self.coefs_]
        got_b = [np.shape(b) for b in self.intercepts_]
        if got != expected or got_b != [(o,) for o in units[1:]]:
            raise ValueError(
                f"coefs_ / intercepts_ have shapes {got} / {got_b}, but this model "
                f"expects {expected} / {[(o,) for o in units[1:]]}."
            )

    # ------------------------------------------------------------------- training
    def _make_optimizer(self):
        net = self._network
        if self.solver == "sgd":
            return SGD(net.n_params, net.dtype, self.learning_rate_init,
                       self.learning_rate, self.momentum, self.nesterovs_momentum,
                       self.power_t)
        return Adam(net.n_params, net.dtype, self.learning_rate_init, self.beta_1,
                    self.beta_2, self.epsilon)

    def _stochastic_data(self, X, Y, sw, y_orig):
        """``(gather, val)``: the training rows in mini-batches, and the validation
        split (None without early stopping)."""
        if self.early_stopping:
            X, Y, sw, val = self._validation_split(X, Y, sw, y_orig)
        else:
            val = None
        n = X.shape[0]
        # int(): any Integral scikit-learn accepts (True, a numpy integer) sizes buffers
        batch_size = min(200, n) if self.batch_size == "auto" else int(self.batch_size)
        if batch_size > n:
            # scikit-learn's words, which warning filters may name
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It "
                          "is going to be clipped")
            batch_size = n
        return _BatchGatherer(X, Y, sw, batch_size), val

    def _fit_stochastic(self, gather, val, incremental):
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer()
        else:
            self._optimizer.own_state()
        X, Y, n, batch_size = gather.X, gather.Y, gather.X.shape[0], gather.batch_size
        self.n_iter_ = 0
        diverged = False
        # only early stopping goes back to the best epoch: no copy otherwise
        self._best_params = self._last_finite = self._epoch_start = grad = None
        # epochs of the model's loss curve before the weights in _last_finite (0: the
        # weights its first epoch started from), for the divergence warning's wording
        self._last_finite_epochs = len(self.loss_curve_)
        # no call between the team's fork reservation and the try that gives it up
        # (where Python would run a signal's handler, which may raise)
        team = self._process_team(gather)
        # a Ctrl-C during a step waits for the step's end (a team's epoch hands its
        # weights back whole or not at all: fetch_params)
        steps = WholeSteps() if team is None else None
        try:
            with (team if team is not None else self._blas_threads_for(gather,
                                                                       incremental),
                  contextlib.nullcontext() if steps is None else steps):
                # a copy of the estimator taken meanwhile (pickle, deepcopy) asks the
                # team for the optimizer's moments in its own layout (__getstate__)
                self._team = team
                # copies made once a team has moved the optimizer's moments to shared
                # memory, not while they were in both places: a lower peak
                if val is not None:
                    self._best_params = self._params.copy()
                # partial_fit carries the latest weights of finite loss to its next call
                kept = getattr(self, "_kept_finite", None) if incremental else None
                if kept is None:
                    self._last_finite = self._params.copy()
                else:
                    self._last_finite, self._last_finite_epochs = kept
                # a team trains a shared copy of the weights: the epoch's start stays
                # (filled at each epoch's start)
                self._epoch_start = np.empty_like(self._params) if team is None else None
                grad = np.empty_like(self._params) if team is None else None
                # each epoch shuffles the order of the one before, as scikit-learn's
                # shuffle(sample_idx) does: the same orders from the same random state
                # (a team keeps its own, in shared memory)
                order = (np.arange(n) if team is None and self._shuffles(gather)
                         else None)
                for _ in range(self.max_iter):
                    if team is None:
                        np.copyto(self._epoch_start, self._params)
                    loss, rows = self._run_epoch(gather, grad, team, order, steps)
                    self.loss_ = np.float64(loss)  # a numpy float, as scikit-learn's
                    self.n_iter_ += 1
                    self.t_ += rows  # the rows trained on: batches of weight 0 are not
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                    diverged = self._diverged(val)
                    if diverged and val is None and math.isfinite(self.loss_):
                        self.best_loss_ = min(self.best_loss_, self.loss_)
                    if diverged or self._no_improvement(val) or incremental:
                        break
                else:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning)
                finite_at_end = (diverged or incremental or self.early_stopping
                                 or self._finite_at_end(X, Y, batch_size, team))
        except KeyboardInterrupt:
            # as scikit-learn: the model trained so far, checked below (a team has
            # stopped its processes on the way out, and its epoch's end is not fetched,
            # or fetched whole: fetch_params holds Ctrl-C back until it is done)
            warnings.warn("Training interrupted by user.")
            interrupted = True
            # a team's moments have taken steps the weights here have not; so have
            # those of a step cut short
            if team is not None or self.__dict__.get("_stale_optimizer"):
                self._optimizer = None
            if self._last_finite is None:  # before the first epoch: nothing changed
                self._last_finite = self._params.copy()
            # early stopping goes back to its best epoch below: nothing to check
            finite_at_end = (diverged or val is not None
                             or self._finite_at_end(X, Y, batch_size))
        else:
            interrupted = False
        finally:
            if team is not None:  # forked, or never to fork (an error before)
                team.unreserve()
        del gather, grad, team
        self.__dict__.pop("_team", None)
        if not finite_at_end:
            self._restore_last_finite(val, self.n_iter_ + interrupted)
        self._network.release()  # the batch buffers
        if self._best_params is not None:
            self._params[...] = self._best_params
        self._kept_finite = ((self._last_finite, self._last_finite_epochs) if incremental
                             else None)
        del self._best_params, self._last_finite, self._last_finite_epochs
        del self._epoch_start

    def _process_team(self, gather):
        """The processes sharing this fit's mini-batches (``n_jobs``), or None."""
        n_procs = resolve_n_jobs(self.n_jobs)
        if n_procs == 1:
            return None
        if not hasattr(os, "fork"):
            warnings.warn(f"n_jobs={self.n_jobs} needs os.fork, which this platform "
                          "lacks: training runs in one process.", UserWarning)
            return None
        worker = inside_parallel_worker()
        if worker is not None:  # as joblib runs a Parallel nested in its workers
            warnings.warn(
                f"n_jobs={self.n_jobs} in {worker}: the parallel workers already keep "
                "the cores busy, and a team in each would fork more processes than "
                "there are cores; this fit trains in one process.", UserWarning)
            return None
        cpus = _usable_cpus()
        if n_procs > cpus:
            warnings.warn(
                f"n_jobs={self.n_jobs} asks for {n_procs} processes, more than the {cpus} "
                "CPUs this process may run on: the team's processes wait for each other "
                "at every mini-batch, so those beyond one per CPU slow the fit down.",
                UserWarning)
        team = ProcessTeam(n_procs, self._network, self._optimizer, self._params,
                           gather, self._alpha)
        if not team.reserve():
            warnings.warn(
                f"n_jobs={self.n_jobs}: another fit or prediction is running in a thread "
                "of this process, and forking while it may run multi-threaded BLAS can "
                "hang the process (OpenBLAS's fork handler): this fit trains in one "
                "process.", UserWarning)
            return None
        return team

    def _blas_threads_for(self, gather, incremental):
        """Around a one-process call's epochs: numpy's BLAS in one thread when every
        product of a mini-batch is small (at most :data:`SMALL_PRODUCT` multiply-adds),
        else as it is.

        On the two virtual cores of the development machine, a product of the digits
        benchmark's batches (200 x 64 x 100) takes 32-41 us in two threads and 58 in one,
        yet the whole fit is only 3-5 % faster with two; and in the machine's frequent
        slow spells, handing every product to the second core makes the fit 1.5x
        slower, where one thread keeps its time (30 alternated 200-epoch fits: median
        0.54 s in one thread, 0.75 in two). The second thread pays more on larger
        products: with 200 x 100 x 128 it won (median 0.18 s against 0.21), with
        200 x 64 x 256 the two were even (benchmarks/RESULTS.md).

        Not for sparse input or for optimizer steps long enough to be split
        (:mod:`._threads` uses the second core only while BLAS may), nor for calls that
        run fewer than 16 batches at most, on which the limit's 25-40 us would weigh,
        nor for a BLAS whose limits hold per thread (an OpenMP-threaded OpenBLAS: a fit
        in another thread could end the shared limit). The limit is the one ``n_jobs``
        teams share, for the whole process (other fits, and early stopping's
        validation scores, run in one thread meanwhile); it is held even when BLAS runs
        one thread already, as that may be another fit's limit, which may end first."""
        units = self._network.layer_units
        product = gather.batch_size * max(i * o for i, o in zip(units[:-1], units[1:]))
        epochs = 1 if incremental else self.max_iter
        batches = -(-gather.X.shape[0] // gather.batch_size) * epochs
        if (product > SMALL_PRODUCT or batches < 16 or sp.issparse(gather.X)
                or self._network.n_params >= solvers.PARALLEL_STEP
                or not _threads.process_wide_blas_limit()):
            return contextlib.nullcontext()
        return numpy_one_thread.held()

    def _shuffles(self, gather):
        """Whether epochs visit the rows in a new order: one batch needs none."""
        return bool(self.shuffle) and gather.batch_size < gather.X.shape[0]

    def _run_epoch(self, gather, grad, team=None, order=None, steps=None):
        """One pass over the data in mini-batches: ``(mean batch objective, rows of the
        batches trained on)``. ``order``: the previous epoch's order of the rows,
        shuffled here (in place) when the epochs shuffle. ``steps``: the fit's
        :class:`WholeSteps`, which takes the optimizer's steps."""
        n, batch_size = gather.X.shape[0], gather.batch_size
        net, opt, params = self._network, self._optimizer, self._params
        shuffled = self._shuffles(gather)
        if self.shuffle and not shuffled:
            # one batch needs no new order, but scikit-learn draws one each epoch: the
            # same draws leave a user's RandomState where scikit-learn's fit leaves it
            self._random_state.shuffle(np.arange(n))
        if team is not None:
            # the team updates the optimizer's moments in place from its first batch
            # (stale if it fails), and the weights here when its epoch is over
            self._stale_optimizer = True
            loss, rows = team.run_epoch(self._random_state if shuffled else None)
            if math.isfinite(loss):  # as _diverged keeps the epoch's start
                np.copyto(self._last_finite, params)
                self._last_finite_epochs = len(self.loss_curve_)
            team.fetch_params()
            self._stale_optimizer = False
            return loss, rows
        if shuffled:
            self._random_state.shuffle(order)  # = order[permutation(n)], same draws
        else:
            order = None
        total, rows, stepping = 0.0, 0, False
        try:
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                Xb, Yb, swb = gather(order, start, stop)
                if swb is not None and not swb.sum() > 0:
                    continue  # rows of weight 0 have no objective: no step, no loss term
                total += (net.loss_grad(params, Xb, Yb, swb, self._alpha, grad)
                          * (stop - start))
                rows += stop - start
                stepping = True
                steps.step(opt, params, grad)
                stepping = False
                steps.deliver()  # a Ctrl-C that came during the step: its weights stay
        except BaseException:
            if stepping:  # a step cut short: its moments are out of step with the weights
                self._stale_optimizer = True
            raise
        return total / rows, rows

    def _diverged(self, val):
        """Stop on a non-finite loss or weights; keep the latest weights of finite loss."""
        if math.isfinite(self.loss_):
            # the epoch's loss was evaluated at the weights it started from, not at
            # those it ended with: the start is the latest point known to be finite
            # (an n_jobs team's _run_epoch has copied it already)
            if self._epoch_start is not None:
                self._last_finite, self._epoch_start = (self._epoch_start,
                                                        self._last_finite)
                self._last_finite_epochs = len(self.loss_curve_) - 1
            if np.isfinite(self._params).all() and _finite_state(self._optimizer):
                return False
        self._restore_last_finite(val)
        return True

    def _finite_at_end(self, X, Y, batch_size, team=None):
        """Whether the loss at the weights of the last update (never evaluated) is finite."""
        net = self._network
        if net.surely_finite(self._params, abs_max(X), abs_max(Y), batch_size):
            return True  # a bound on every layer shows it: no pass over the data
        if team is not None:  # each process checks its share of the rows
            return team.loss_is_finite()
        return net.data_finite(self._params, X, Y, batch_size)

    def _restore_last_finite(self, val, epoch=None):
        """Go back to the latest weights with a finite loss and say why (or raise);
        ``epoch``: the one that diverged, the latest counted by default."""
        if val is not None:  # record the epoch, as promised
            self.validation_scores_.append(-np.inf)
            self.validation_loss_curve_.append(np.inf)
        self._params[...] = self._last_finite
        self._optimizer = None  # its moments hold the non-finite values
        if not any(math.isfinite(loss) for loss in self.loss_curve_):
            raise ValueError(_NONFINITE_MSG)
        if val is not None:  # early stopping goes back to its best epoch instead
            fresh = len(self.loss_curve_) == self.n_iter_  # no epoch before this fit
            kept = ("The weights of the best validation epoch were kept."
                    if self.best_validation_score_ > -np.inf else
                    "The weights this fit started from were kept"
                    + (": the model is untrained." if fresh else "."))
        # the weights the model's first epoch started from, whichever epoch diverged
        elif self._last_finite_epochs == 0:
            kept = ("The initial weights, the last with a finite loss, were kept: the "
                    "model is untrained.")
        else:
            kept = "The last weights with a finite loss were kept."
        warnings.warn(
            f"Training diverged at epoch {epoch or self.n_iter_}: the loss, the weights "
            "or the optimizer state became non-finite. The learning rate "
            f"(learning_rate_init={self.learning_rate_init}) is likely too high, or the "
            f"input is not scaled (try StandardScaler). {kept}", ConvergenceWarning)

    def _no_improvement(self, val):
        """scikit-learn's stopping rule; True when training should stop."""
        if val is not None:
            self._record_validation(*val)
            score = self.validation_scores_[-1]
            if self.verbose:
                print(f"Validation score: {score:f}")
            improved = score >= self.best_validation_score_ + self.tol
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params[...] = self._params
        else:
            improved = self.loss_curve_[-1] <= self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        self._optimizer.iteration_ends(self.t_)
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation score" if val is not None else "Training loss"
        msg = (f"{what} did not improve more than tol={self.tol:f} for "
               f"{self.n_iter_no_change} consecutive epochs.")
        if self._optimizer.trigger_stopping(msg, self.verbose):
            return True
        self._no_improvement_count = 0
        return False

    def _record_validation(self, X_val, Y_val, sw_val, y_val):
        out = self._network.predict(X_val, self.coefs_, self.intercepts_, self._slopes)
        if not np.isfinite(out).all():  # finite weights, outputs beyond the float range
            self.validation_loss_curve_.append(np.inf)
            self.validation_scores_.append(-np.inf)
            return
        data = self._network.loss.value(Y_val, out, sw_val)
        self.validation_loss_curve_.append(
            data / (X_val.shape[0] if sw_val is None else float(sw_val.sum())))
        score = self._score_output(out, y_val, sw_val)
        self.validation_scores_.append(score if math.isfinite(score) else -np.inf)

    def _validation_split(self, X, Y, sw, y_orig):
        n = X.shape[0]
        if not self.validation_fraction > 0:  # scikit-learn's split refuses it too
            raise ValueError(
                "early_stopping=True holds out validation_fraction of the rows to score "
                f"each epoch: it must be above 0, got {self.validation_fraction}. Use "
                "early_stopping=False to train without a validation split.")
        stratify = self._stratify_labels(y_orig)
        # a multi-label target is not stratified (as scikit-learn's), but its split
        # holds as many rows as it has labels, at least
        n_groups, counts = self._n_labels(y_orig), None
        if stratify is not None:
            groups, counts = np.unique(stratify, return_counts=True)
            n_groups = len(groups)
        n_val = max(2, n_groups, math.ceil(self.validation_fraction * n))
        arrays = [X, Y, y_orig] + ([] if sw is None else [sw])
        try:
            if n - n_val < max(1, n_groups):
                raise ValueError("not enough rows left for training")
            if counts is not None and counts.min() < 2:  # one row: not on both sides
                single = [g.tolist() if isinstance(g, np.generic) else g
                          for g in groups[counts < 2]]
                which = ("class {} has" if len(single) == 1 else "classes {} have").format(
                    ", ".join(map(repr, single)))
                warnings.warn(
                    f"early_stopping=True: {which} a single row, too few to stratify "
                    "the validation split; it is drawn without stratification, as "
                    "scikit-learn's MLPClassifier draws a multi-class target's (it "
                    "refuses a binary one).", UserWarning)
                stratify = None
            parts = train_test_split(*arrays, test_size=n_val, stratify=stratify,
                                     random_state=self._random_state)
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True needs a validation split of at least {n_val} "
                f"rows (max(2, number of classes or labels, ceil(validation_fraction * "
                f"n_samples))) and enough rows left to train, but n_samples={n} "
                f"({exc}). Use more data, or early_stopping=False."
            ) from exc
        train, test = parts[0::2], parts[1::2]
        sw_train, sw_val = (train[3], test[3]) if sw is not None else (None, None)
        for part, weights in (("training", sw_train), ("validation", sw_val)):
            if weights is not None and not weights.sum() > 0:
                raise ValueError(
                    f"early_stopping=True: the sample weights (sample_weight times "
                    f"class weights) of the {part} split sum to zero. Give more rows a "
                    "positive weight, or use early_stopping=False.")
        return train[0], train[1], sw_train, (test[0], test[1], sw_val, test[2])

    def _fit_lbfgs(self, X, Y, sw):
        net, params = self._network, self._params
        grad = np.empty_like(params)

        def fun(x):
            params[...] = x
            loss = net.loss_grad(params, X, Y, sw, self._alpha, grad)
            return loss, grad.astype(np.float64)

        x0 = params.astype(np.float64)
        last_finite = []  # the latest iterate with a finite loss, as [x, loss]

        def on_iteration(x, loss):
            self.loss_curve_.append(np.float64(loss))
            if math.isfinite(loss) and np.isfinite(x).all():
                last_finite[:] = [np.array(x), float(loss)]
            if self.verbose:
                print(f"Iteration {len(self.loss_curve_)}, loss = {loss:.8f}")

        epochs_before = len(self.loss_curve_)
        try:
            result = lbfgs(fun, x0.copy(), self.max_iter, self.max_fun, self.tol,
                           on_iteration)
            diverged = not np.isfinite(result.x).all() or not np.isfinite(result.fun)
            if diverged and not last_finite:
                raise ValueError(_NONFINITE_MSG)
        except BaseException:
            # fun wrote the points it tried into params: a failed (or interrupted)
            # search leaves the weights, and the loss curve, as they were
            params[...] = x0
            del self.loss_curve_[epochs_before:]
            raise
        bad_loss = result.fun
        if diverged:
            result.x, result.fun = last_finite
        params[...] = result.x
        # t_ stays: it counts the rows of the stochastic solvers' steps, the clock of
        # their learning rate schedules (scikit-learn's lbfgs leaves it too)
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = np.float64(result.fun)
        self.best_loss_ = min([self.loss_, *self.loss_curve_])
        if diverged:
            warnings.warn(
                f"lbfgs diverged: the loss became {bad_loss}. The input is likely "
                "not scaled (try StandardScaler). The last weights with a finite loss "
                "were kept.", ConvergenceWarning)
        else:  # scikit-learn's own warning, in its words, when it did not converge
            _check_optimize_result("lbfgs", result, self.max_iter)

    # ------------------------------------------------------------------ prediction
    def _forward(self, X):
        """Validated ``X`` through the network with the current coefs_ / intercepts_."""
        check_is_fitted(self)
        if not self._is_plain_valid_array(X):
            # float16, small integers or booleans promote to float32 with float32
            # weights, as in scikit-learn's products: converted to that, not float64
            given = getattr(X, "dtype", None)
            dtype = ((np.float64, np.float32) if given is None
                     or given.kind not in "biuf" or np.result_type(
                         given, self._network.dtype) != np.float32 else np.float32)
            with np.errstate(over="ignore", invalid="ignore"):  # its sum(X) may overflow
                X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                                  dtype=dtype)
        self._check_weight_shapes()
        # float64 input to a float32 model: computed and returned in float64, as
        # scikit-learn does, not rounded to the model's dtype
        dtype = np.promote_types(X.dtype, self._network.dtype)
        if X.dtype != dtype:
            X = X.astype(dtype)
        coefs = [np.asarray(c, dtype) for c in self.coefs_]
        intercepts = [np.asarray(b, dtype) for b in self.intercepts_]
        with np.errstate(over="ignore", invalid="ignore"), using_blas():
            out = self._network.predict(X, coefs, intercepts, self._slopes)
        output = self._network.activations[-1]
        # never hand back NaN or inf silently, nor an exp output clipped to the largest
        # float (exp's own clip: a subclass's forward bounds it where it means to)
        if not np.isfinite(out).all() or (type(output).forward_ is _act.Exp.forward_
                                          and output.overflowed(out)):
            raise ValueError(
                "The network output is not finite for this X (or, from an exp output, "
                f"beyond the largest {dtype.name}): its values are too large for the "
                f"fitted weights (or for {dtype.name}), or coefs_ / intercepts_ hold "
                "non-finite values. Scale X as the training data was scaled.")
        return out

    def _is_plain_valid_array(self, X):
        """True for a finite 2-D float ndarray of the fitted width, without feature names.

        Such an array passes ``validate_data`` unchanged; skipping it makes a one-row
        prediction several times faster. Anything else takes the full validation.
        """
        return (type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0
                and X.dtype in (np.float64, np.float32)
                and X.shape[1] == self.n_features_in_
                and not hasattr(self, "feature_names_in_")
                and bool(np.isfinite(X).all()))

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_network")

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_params", None)  # coefs_ / intercepts_ hold the values already
        state.pop("_views", None)
        state.pop("_kept_finite", None)
        team = state.pop("_team", None)  # an n_jobs team is training this estimator
        if team is not None:  # its moments are in the team's layout meanwhile
            state["_optimizer"] = team.home_optimizer()
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _BatchGatherer:
    """Mini-batches as contiguous arrays, gathered into buffers reused across batches.

    The buffers hold ``batch_size`` rows and are allocated at the first batch.
    """

    def __init__(self, X, Y, sw, batch_size):
        self.X, self.Y, self.sw, self.batch_size = X, Y, sw, batch_size
        self._dense = not sp.issparse(X)
        self._xbuf = self._ybuf = None

    def resized(self, batch_size):
        """The same rows, gathered into buffers of ``batch_size`` rows of its own."""
        return _BatchGatherer(self.X, self.Y, self.sw, batch_size)

    def _buffers(self):
        X, Y, rows = self.X, self.Y, self.batch_size
        self._xbuf = np.empty((rows, X.shape[1]), X.dtype) if self._dense else None
        self._ybuf = np.empty(rows * Y.shape[1], X.dtype if Y.dtype == bool else Y.dtype)

    def _y_rows(self, m):
        """The targets' buffer for ``m`` rows: in Fortran order when they have several
        columns, like the network's output layer, so that the loss meets one order
        (a bool row's columns are cast as they are gathered)."""
        k = self.Y.shape[1]
        return self._ybuf[:m * k].reshape(k, m).T if k > 1 else self._ybuf[:m, None]

    def __call__(self, order, start, stop):
        if order is None:
            sw = None if self.sw is None else self.sw[start:stop]
            return self.X[start:stop], self.Y[start:stop], sw
        idx = order[start:stop]
        m = stop - start
        if self._ybuf is None:
            self._buffers()
        if not self._dense:
            Xb = self.X[idx]
        elif self.X.flags.c_contiguous:
            Xb = _take_rows(self.X, idx, self._xbuf[:m])
        else:  # np.take would first copy the whole strided X
            Xb = self._xbuf[:m]
            Xb[...] = self.X[idx]
        if self.Y.dtype == self._ybuf.dtype:
            Yb = _take_rows(self.Y, idx, self._y_rows(m))
        else:  # bool class indicators, cast batch by batch
            Yb = self._y_rows(m)
            Yb[...] = self.Y[idx]
        return Xb, Yb, (None if self.sw is None else self.sw[idx])


def _take_rows(A, idx, out):
    # the indices come from a permutation: mode="clip" skips the bounds check, whose
    # default mode="raise" also buffers the output through a temporary
    return np.take(A, idx, axis=0, out=out, mode="clip")


def _initial_weights(init, fan_in, fan_out, rng, dtype):
    """``init(fan_in, fan_out, rng)``, checked: weights of that shape, real and finite
    in the network's ``dtype``."""
    try:
        W = init(fan_in, fan_out, rng)
    except MemoryError:  # a layer too large, not the initializer's fault
        raise
    except ValueError as exc:  # a parameter of the initializer, say: name the estimator's
        raise InvalidParameterError(f"Invalid init={init!r}: {exc}") from exc
    except Exception as exc:  # a user's initializer that fails: named, as an activation
        raise InvalidParameterError(
            f"Invalid init={init!r}: calling it as init(fan_in={fan_in}, "
            f"fan_out={fan_out}, random_state) raised {type(exc).__name__}: {exc}"
        ) from exc
    weights, shape = np.asarray(W), (fan_in, fan_out)
    if weights.shape != shape or weights.dtype.kind not in "biuf":
        problem = (f"a {type(W).__name__}" if weights.dtype == object else
                   f"an array of shape {weights.shape} and dtype {weights.dtype}")
    else:
        with np.errstate(over="ignore"):  # beyond the dtype's range: inf, said below
            weights = weights.astype(dtype, copy=False)
        if np.isfinite(weights).all():
            return weights
        problem = f"weights that are not finite in {np.dtype(dtype).name}"
    raise InvalidParameterError(  # the init parameter's fault, as a failing call's
        f"init={init!r} returned {problem} for a layer of {fan_in} inputs and {fan_out} "
        f"units: an initializer must return finite real weights of shape (fan_in, "
        f"fan_out) = {shape}.")


def _is_auto(spec):
    return isinstance(spec, str) and spec == "auto"


def _resolve(param, getter, spec):
    """The object ``spec`` names, or a copy of the one it is: the fitted network never
    shares an object with the parameters, which the user may change after the fit."""
    try:
        obj = getter(spec)
        return clone(obj, safe=False) if obj is spec else obj
    except (ValueError, AttributeError) as exc:  # AttributeError: a parameter misstored
        try:
            shown = repr(spec)
        except AttributeError:  # the same misstored parameter
            shown = f"{type(spec).__name__}(...)"
        raise InvalidParameterError(f"Invalid {param}={shown}: {exc}") from None


# where a user's activation is tried at fit: a 2-d batch away from the kinks at 0
_PROBE = np.linspace(-2.5, 2.5, 12).reshape(3, 4)


def _check_custom_activation(param, act, tol=1e-4):
    """A user's activation: ``forward`` and ``derivative`` return finite real arrays of
    ``z``'s shape, and the derivative agrees with central differences of ``forward``.
    Training would otherwise fail far from the cause (a broadcast, a non-finite loss)
    or, for a scalar, broadcast it silently."""
    slope = getattr(act, "negative_slope", None)
    if act.learnable and not (isinstance(slope, Real) and not isinstance(slope, bool)):
        raise InvalidParameterError(
            f"Invalid {param}={act!r}: a learnable activation starts its per-unit "
            f"parameters from its negative_slope, as PReLU does, and "
            f"{type(act).__name__} has none (a real number).")
    for method in ("forward", "derivative"):
        z = _PROBE.copy()
        try:
            out = getattr(act, method)(z)
        except Exception as exc:
            raise InvalidParameterError(
                f"Invalid {param}={act!r}: its {method}(z) raised {type(exc).__name__}: "
                f"{exc}") from exc
        problem = (f"returned a {type(out).__name__}" if not isinstance(out, np.ndarray)
                   else f"returned shape {out.shape}" if out.shape != z.shape
                   else f"returned dtype {out.dtype}" if out.dtype.kind not in "biuf"
                   else "returned non-finite values" if not np.isfinite(out).all()
                   else None)
        if problem is not None:
            raise InvalidParameterError(
                f"Invalid {param}={act!r}: its {method}(z) {problem} for z of shape "
                f"{z.shape} in [-2.5, 2.5]; it must return a finite real array of z's "
                "shape, computed elementwise.")
    _check_custom_derivative(param, act, tol)


def _check_custom_derivative(param, act, tol=1e-4):
    try:
        err = _act.check_derivative(act)
        # a forward that computes in float32 (say) agrees to its own precision only:
        # central differences of it carry errors of about its epsilon ** (2/3)
        precision = _act.forward_precision(act, _PROBE[0])
    except Exception as exc:
        raise InvalidParameterError(
            f"Invalid {param}={act!r}: checking its derivative against central "
            f"differences of its forward, on a 1-d z of 8 points in [-3.1, 2.9], raised "
            f"{type(exc).__name__}: {exc}. Both must work elementwise on any shape."
        ) from exc
    tol = max(tol, 100 * precision ** (2 / 3))
    if not err <= tol:
        raise InvalidParameterError(
            f"Invalid {param}={act!r}: its derivative disagrees with central finite "
            f"differences of its forward (worst relative error {err:.3g} > {tol:g}). "
            f"Check that derivative(z) returns dg/dz elementwise."
        )


def _finite_state(optimizer):
    """False when a moment of the optimizer overflowed (e.g. Adam's squared gradients)."""
    return all(np.isfinite(v).all() for k, v in vars(optimizer).items()
               if isinstance(v, np.ndarray) and not k.startswith("_"))


def _read_only(a):
    view = a.view()
    view.flags.writeable = False
    return view


def _same_arrays(a, b):
    return (isinstance(b, list) and len(a) == len(b)
            and all(x is y for x, y in zip(a, b)))


def _unit_weights(sw, alpha):
    """Row weights and ``alpha`` divided by the same power of two, which brings the
    largest weight into [1, 2) as far as the smallest positive one stays a normal
    number: ``J`` is the same function of the weights (both of its terms divide by the
    weights' sum), and every product and sum of the passes is the same number scaled
    by that power (bitwise, overflow and underflow aside), but weights of 1e26 no
    longer overflow a float32 batch's weighted loss (``w_i l_i``), which its division
    by the sum would have brought back into range. ``sw`` itself is never written."""
    if sw is None:
        return None, alpha
    positive = sw[sw > 0]
    # frexp: x = m 2^e, 0.5 <= m < 1; the smallest normal number is 2^minexp
    largest_exponent = math.frexp(float(positive.max()))[1] - 1
    smallest_exponent = math.frexp(float(positive.min()))[1] - 1
    shift = min(largest_exponent, smallest_exponent - np.finfo(sw.dtype).minexp)
    if shift < 1:
        return sw, alpha
    return sw * math.ldexp(1.0, -shift), math.ldexp(float(alpha), -shift)


_HALF_ROW = 0.5


def _output_bias(activation, Y, sw):
    """Inverse link of the (weighted) target mean: the best constant model. A mean at a
    bound of sigmoid, softmax or exp (a class or label absent from the rows, all-zero
    counts) is taken half a row from it: a class that a first partial_fit batch lacks
    starts at log(0.5 / n), not at log(1e-7), from which Adam took thousands of steps
    to bring it back."""
    # targets near the float maximum overflow the mean or the inverse: an infinite
    # bias, which training then reports as the input's values, without numpy's warning
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.average(Y, axis=0, weights=sw).astype(np.float64)
        half = _HALF_ROW / Y.shape[0]
        if isinstance(activation, (_act.Sigmoid, _act.Softmax)):
            mean = np.clip(mean, half, 1 - half)
        elif isinstance(activation, _act.Exp):
            mean = np.maximum(mean, half)
        bias = activation.inverse(mean)
    return 0.0 if bias is None else bias
