"""The two public estimators: thin subclasses that fix the targets and the loss."""

import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import InvalidParameterError, StrOptions
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (check_classification_targets, type_of_target,
                                      unique_labels)
from sklearn.utils.validation import _check_sample_weight, column_or_1d, validate_data

from . import activations as _act
from ._base import (
    BaseMLPScratch, DeadOutputWarning, _builtin, _check_custom_activation, _is_auto,
    _resolve,
)
from .losses import LOSSES
from .network import abs_max

_ENCODE_ROWS = 1 << 12  # labels encoded at a time
_CHECK_ROWS = 256  # rows of a fitted ReLU output checked at a time: a batch's memory

# the parameters and attributes both estimators share, after the Parameters and
# Attributes headings of each one's docstring
_PARAMS_DOC = """hidden_layer_sizes : int or array-like of int, default=(100,)
        Number of units of each hidden layer.
    activation : str, Activation or list of them, default="relu"
        Hidden activation: a registered name ("identity", "sigmoid"/"logistic",
        "tanh", "relu", "leaky_relu", "prelu", "elu", "softplus", "silu"/"swish",
        "gelu"), an :class:`~sknn_scratch.activations.Activation`, or a list with one
        entry per hidden layer.
    output_activation : "auto", str or Activation, default="auto"
        "auto" picks sigmoid for binary and multi-label targets, softmax for
        multi-class, ReLU for regression targets all >= 0, identity for others, exp
        for ``loss="poisson"``. A name or an Activation overrides it for regression
        (not "prelu", whose slopes only hidden layers learn, nor "softmax"; the
        Poisson loss takes only "exp"); a classifier accepts only the output "auto"
        would pick. Targets outside the output's ``value_range`` (below 0 for ReLU,
        softplus, exp and a leaky ReLU of slope <= 0, below -alpha for ELU, -0.2785
        for SiLU, -0.1700 for GELU, beyond [0, 1] for sigmoid, [-1, 1] for tanh) are
        refused.
        The output bias starts at the inverse link of the weighted target mean (the
        README's "Output activation" has the details).
    init : "auto", str, Initializer or list of them, default="auto"
        Weight initialization, of the weights into each layer: "auto" is He uniform
        into a ReLU-family layer and Glorot uniform into any other, the output layer
        included. A list gives one per layer, output included ("auto" entries too).
    solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter,
    shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
    early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change,
    max_fun :
        As in scikit-learn's MLP, with the same defaults and meaning. A warm-started
        ``fit`` (and ``partial_fit``) continues from the fitted weights with the
        parameters as they are now: a changed ``activation`` or ``output_activation``
        is trained with; other ``hidden_layer_sizes`` raise a ``ValueError``; ``X`` of
        the other float dtype is converted to the fitted weights'. A mini-batch whose
        sample weights are all 0 is skipped (no step, no loss term).
    n_jobs : int or None, default=None
        Processes that share each mini-batch of ``sgd`` / ``adam`` (None is 1, -1 every
        CPU this process may run on; more than those warns, as each process beyond one
        per CPU slows the team): this one and ``n_jobs - 1`` forked for the fit,
        each with one BLAS thread, computing the gradient of its share of the rows and
        updating its share of the parameters. Worth it from a few thousand rows (on 2
        cores the README's large case trains about 1.2-1.6x faster), not on a few
        hundred. The result agrees with ``n_jobs=None`` to rounding (the gradient's
        terms are summed in another order) and is the same at every run with the same
        ``n_jobs``.
        ``lbfgs``, whose full-batch products BLAS already spreads over the cores,
        ignores it; so do platforms without ``os.fork`` (with a warning), and a fit
        that starts while another fit or prediction runs in a thread of this process
        (with a warning: forking then can hang OpenBLAS), and a fit in a joblib or
        dask worker (with a warning: fits that already run in parallel, as in
        ``GridSearchCV(n_jobs=...)``, keep the cores busy)."""

_ATTRIBUTES_DOC = """coefs_, intercepts_ : list of ndarray
        Weights ``(fan_in, fan_out)`` and biases ``(fan_out,)``; assign new lists to
        load weights.
    activations_ : list of Activation
        The resolved hidden activations, one per hidden layer. Predictions use these
        (and ``out_activation_``), not the parameters as they are now: a changed
        ``activation`` takes effect at the next ``fit`` or ``partial_fit``.
    slopes_ : list of ndarray or None
        The learned per-unit negative slopes of each PReLU hidden layer (read-only);
        ``None`` for the other layers.
    out_activation_ : str
        Name of the output activation used.
    loss_, best_loss_, loss_curve_ : float, float or None, list of float
        The objective ``J = sum_i w_i loss_i / sum_i w_i + alpha / (2 sum_i w_i)
        * sum of squared weights`` (biases not penalized; ``w_i`` is the sample weight
        times the class weight): its latest value, best value and value per epoch.
        With mini-batches each batch uses its own ``sum_i w_i`` and an epoch's value
        is the mean over its batches, weighted by their rows, at the weights before
        each update, as in scikit-learn. ``best_loss_`` is None where
        ``early_stopping=True`` applies (sgd, adam: see ``best_validation_score_``),
        as in scikit-learn.
    validation_scores_, best_validation_score_, validation_loss_curve_ :
        Set with ``early_stopping=True``; None otherwise, and with ``lbfgs``, which
        ignores ``early_stopping`` as in scikit-learn.
    n_iter_, t_, n_layers_, n_outputs_, n_features_in_, feature_names_in_
        As in scikit-learn's MLP."""


def _is_stochastic(est):
    if est.solver not in ("sgd", "adam"):  # the message available_if passes on
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{est.solver!r} is not stochastic.")
    return True


class MLPScratchClassifier(ClassifierMixin, BaseMLPScratch):
    """Multi-layer perceptron classifier written from scratch in NumPy.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` with pluggable
    activations and initializers, a choice of output activation and ``class_weight``.

    Parameters
    ----------
    {params}
    class_weight : dict, "balanced" or None, default=None
        Multiplies ``sample_weight``; a dict gives the classes it does not name 1 (a
        key that is not a class is an error unless the dict names every class);
        "balanced" counts rows, whatever their ``sample_weight``, as ``SGDClassifier``
        does. A multi-label ``y`` takes "balanced" (the product of its columns'
        weights), not a dict.

    Attributes
    ----------
    classes_ : ndarray
        The class labels; for a multi-label ``y`` (an indicator matrix), its column
        indices.
    loss : str
        "log_loss", as scikit-learn's ``MLPClassifier.loss`` (a class attribute, not a
        parameter).
    {attributes}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknn_scratch import MLPScratchClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPScratchClassifier(activation="tanh", max_iter=500, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **BaseMLPScratch._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    # what scikit-learn's MLPClassifier.loss says: the log-loss (of a sigmoid output
    # per label, or of a softmax), not a parameter
    loss = "log_loss"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *,
                 output_activation="auto", init="auto", solver="adam", alpha=1e-4,
                 batch_size="auto", learning_rate="constant", learning_rate_init=1e-3,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, n_jobs=None):
        self._store_init_params(locals())

    @available_if(_is_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` is required on the first call.

        A batch that fails validation raises before the model is touched.
        """
        self._check_partial_fit()
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict(self, X):
        """Predicted class labels."""
        out = self._forward(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict_proba(self, X):
        """Class probabilities, strictly inside (0, 1)."""
        out = self._forward(X)
        if self.n_outputs_ == 1 and self._label_binarizer.y_type_ != "multilabel-indicator":
            out = np.hstack([1 - out, out])
        eps = np.finfo(out.dtype).eps
        return np.clip(out, eps, 1 - eps, out=out)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`: always finite."""
        return np.log(self.predict_proba(X))

    # ------------------------------------------------------------- hooks of the base
    def _validate_training_data(self, X, y, sample_weight, incremental, first_pass,
                                classes):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=self._input_dtypes(first_pass), reset=first_pass)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        binarizer = self._binarizer_for(y, incremental, first_pass, classes)
        Y = self._encode_targets(y, X, binarizer)
        sw = self._row_weights(y, sample_weight, X, incremental, binarizer.classes_)
        if first_pass:
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        return X, Y, sw, y

    def _row_weights(self, y, sample_weight, X, incremental=False, classes=None):
        """The weights of J's rows: ``sample_weight`` times the class weights, checked
        (None for all ones). A dict weighs the model's ``classes`` (``classes_`` by
        default), not only those in ``y``: a ``partial_fit`` batch may lack some."""
        sw = _sample_weights(sample_weight, X)
        if self.class_weight is not None:
            if incremental and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: the class "
                    "balance of one batch is not that of the data. Pass a dict computed "
                    "with sklearn.utils.class_weight.compute_class_weight instead.")
            if isinstance(self.class_weight, dict) and y.ndim == 2:
                raise ValueError(
                    f"class_weight={self.class_weight!r} weighs the classes of a "
                    f"single-label y, but y is multi-label ({y.shape[1]} indicator "
                    "columns). Use class_weight='balanced' (the columns' weights, "
                    "multiplied) or sample_weight.")
            if isinstance(self.class_weight, dict):
                classes = self.classes_ if classes is None else classes
                _check_class_weight_dict(self.class_weight, classes)
                per_class = compute_class_weight(self.class_weight, classes=classes, y=y)
                cw = per_class[np.searchsorted(classes, y)].astype(np.float64)
            else:
                cw = compute_sample_weight(self.class_weight, y).astype(np.float64)
            sw = cw if sw is None else sw * cw
        sw = _narrowed(sw, X.dtype)
        _check_weight_sum(sw)
        return sw

    def _encode_targets(self, y, X, binarizer=None):
        """Class indicators, one column per output unit."""
        binarizer = self._label_binarizer if binarizer is None else binarizer
        classes = binarizer.classes_
        if y.ndim != 1 or len(classes) < 2:  # multi-label indicators, a single class
            return binarizer.transform(y).astype(bool)
        # bool, as scikit-learn keeps it: an eighth of a float64 copy; batches are cast.
        # The columns of binarizer.transform(y), built a slice of rows at a time: the
        # binarizer's sparse intermediates cost 2.7 MB for 50,000 labels
        Y = np.zeros((len(y), 1 if len(classes) == 2 else len(classes)), bool)
        for start in range(0, len(y), _ENCODE_ROWS):
            part, out = y[start:start + _ENCODE_ROWS], Y[start:start + _ENCODE_ROWS]
            col = np.searchsorted(classes, part)
            if not (classes[np.minimum(col, len(classes) - 1)] == part).all():
                return binarizer.transform(y).astype(bool)  # labels it does not know
            if len(classes) == 2:
                out[:, 0] = col == 1
            else:
                out[np.arange(len(part)), col] = True
        return Y

    def _binarizer_for(self, y, incremental, first_pass, classes):
        """The label binarizer for this call, checked against the fitted classes."""
        if incremental and classes is not None and np.ndim(classes) != 1:
            if np.ndim(classes) == 2 and np.shape(classes)[1] == 1:
                classes = np.ravel(classes)  # a column, as scikit-learn takes it
            else:
                raise ValueError(
                    f"classes must be a 1-D array of class labels (for a multi-label "
                    f"y, of its column indices), got an array of shape "
                    f"{np.shape(classes)}.")
        if first_pass:
            if incremental and classes is None:
                raise ValueError("classes must be passed on the first call to "
                                 "partial_fit.")
            if incremental and np.size(classes) == 0:
                raise ValueError("classes is empty: the first call to partial_fit "
                                 "must list every class of the data in `classes`.")
            # a multi-label indicator y names its labels by column, as scikit-learn has it
            multilabel = type_of_target(y).startswith("multilabel")
            from_classes = incremental and not multilabel
            binarizer = LabelBinarizer().fit(classes if from_classes else y)
            if (incremental and multilabel
                    and not np.array_equal(unique_labels(classes), binarizer.classes_)):
                raise ValueError(
                    f"`classes={classes!r}` does not name the {y.shape[1]} indicator "
                    f"columns of the multi-label y: its classes are the column indices "
                    f"{binarizer.classes_}.")
            if not from_classes:  # fitted on y: it knows every label (1.4 ms less)
                return binarizer
            unseen = np.setdiff1d(unique_labels(y), binarizer.classes_)
            if len(unseen):
                raise ValueError(f"`y` has labels {unseen} that are not in `classes` "
                                 f"{binarizer.classes_}: the first call to partial_fit "
                                 "must list every class of the data in `classes`.")
            return binarizer
        fitted_multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        if fitted_multilabel != (y.ndim == 2):
            kinds = ["single-label", "multi-label"]
            raise ValueError(
                f"y is {kinds[y.ndim == 2]}, but the model was fitted on "
                f"{kinds[fitted_multilabel]} targets: partial_fit and warm_start continue "
                "with the same kind of target.")
        labels = unique_labels(y)
        if classes is not None and not np.array_equal(unique_labels(classes),
                                                      self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on the first "
                             f"call to partial_fit, {self.classes_!r}.")
        if self.warm_start and not incremental and set(labels) != set(self.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the "
                f"previous call to fit. Previously got {self.classes_}, `y` has {labels}")
        unseen = np.setdiff1d(labels, self.classes_)
        if len(unseen):
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                             f"has {self.classes_}. 'y' has {labels}; unseen: {unseen}.")
        return self._label_binarizer

    def _output_activation_and_loss(self, Y):
        multiclass = self._label_binarizer_pending_type(Y) == "multiclass"
        expected = _act.Softmax() if multiclass else _act.Sigmoid()
        spec = self.output_activation
        act = expected if _is_auto(spec) else _resolve("output_activation",
                                                        _act.get, spec)
        if type(act) is not type(expected):
            raise InvalidParameterError(
                f"output_activation={spec!r} does not suit a "
                f"{'multi-class' if multiclass else 'binary or multi-label'} target: "
                f"use 'auto' or {expected.name!r}.")
        return act, LOSSES["log_loss" if multiclass else "binary_log_loss"]()

    def _label_binarizer_pending_type(self, Y):
        return self._label_binarizer.y_type_

    def _check_continuation(self, X, Y):
        pass  # the classes were checked against classes_ already

    def _check_targets(self, Y, out_activation, continued=False, reachable=True):
        pass

    def _stratify_labels(self, y):
        return y if y.ndim == 1 else None

    def _n_labels(self, y):
        """The indicator columns of a multi-label target (0 for a single-label one)."""
        return y.shape[1] if y.ndim == 2 else 0

    def _score_output(self, out, y, sw):
        out = out.ravel() if out.shape[1] == 1 else out
        return accuracy_score(y, self._label_binarizer.inverse_transform(out),
                              sample_weight=sw)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _check_class_weight_dict(class_weight, classes):
    """scikit-learn's rule for a ``class_weight`` dict, with an error that names the
    keys: keys that are no class (looked up as ``compute_class_weight`` does, an
    integer, else a string) only in a dict that names every class; and every value a
    finite number >= 0."""
    def key(c):
        try:
            return int(c)
        except (TypeError, ValueError):
            return str(c)

    known = {key(c) for c in classes}
    unknown = [k for k in class_weight if k not in known]
    if unknown and len(class_weight) - len(unknown) < len(known):
        # labels "0", "1" are looked up as 0, 1: a dict keyed by the labels misses
        as_int = [k for k in unknown if isinstance(k, str) and key(k) in known]
        hint = (f" Labels that read as integers are looked up as integers, as in "
                f"scikit-learn's compute_class_weight: key {as_int[0]!r} as "
                f"{key(as_int[0])!r}." if as_int else "")
        raise ValueError(
            f"class_weight has keys that are not classes of y: {unknown!r} (the classes "
            f"are {np.asarray(classes).tolist()!r}). A dict that leaves classes out, "
            "to weigh 1, may hold only classes; one that names every class may hold "
            "other keys too." + hint)
    for k, w in class_weight.items():
        if not (isinstance(w, numbers.Real) and math.isfinite(w) and w >= 0):
            raise ValueError(f"class_weight[{k!r}] must be a finite number >= 0, "
                             f"got {w!r}.")


class MLPScratchRegressor(RegressorMixin, BaseMLPScratch):
    """Multi-layer perceptron regressor written from scratch in NumPy.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor`. With
    ``output_activation="auto"`` a non-negative target gets a ReLU output (it never
    predicts below 0), any other target an identity output; ``loss="poisson"`` uses an
    exp output (log link). ``fit`` warns with :class:`~sknn_scratch.DeadOutputWarning`
    when a fitted ReLU output is 0 on more than half of the training rows whose target
    is above 0: its gradient is 0 there, so training stopped lowering their error.

    Parameters
    ----------
    loss : {{"squared_error", "poisson"}}, default="squared_error"
    {params}

    Attributes
    ----------
    {attributes}

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import scale
    >>> from sknn_scratch import MLPScratchRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPScratchRegressor(max_iter=300, random_state=0).fit(scale(X), y)
    >>> reg.out_activation_, bool(reg.predict(scale(X)).min() >= 0)
    ('relu', True)
    """

    _parameter_constraints: dict = {
        **BaseMLPScratch._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,),
                 activation="relu", *, output_activation="auto", init="auto",
                 solver="adam", alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, n_jobs=None):
        self._store_init_params(locals())

    @available_if(_is_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``; a batch that fails validation changes nothing."""
        self._check_partial_fit()
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    # ------------------------------------------------------------- hooks of the base
    def _validate_training_data(self, X, y, sample_weight, incremental, first_pass,
                                classes):
        if sp.issparse(y):  # validate_data lets a multi-output one through
            raise TypeError("Sparse data was passed for y, but dense data is required. "
                            "Use '.toarray()' to convert to a dense numpy array.")
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=self._input_dtypes(first_pass),
                             reset=first_pass)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = self._encode_targets(y, X, fitted=not first_pass)
        return X, Y, self._row_weights(y, sample_weight, X), y

    def _row_weights(self, y, sample_weight, X, incremental=False):
        """The weights of J's rows: ``sample_weight``, checked (None for all ones)."""
        sw = _narrowed(_sample_weights(sample_weight, X), X.dtype)
        _check_weight_sum(sw)
        return sw

    def _encode_targets(self, y, X, fitted=True):
        """Targets as a float matrix, one column per output, in the dtype X trains in
        (the fitted weights' when ``fitted``): a value beyond its range (finite float64
        targets for float32) is refused."""
        y = np.asarray(y)
        with np.errstate(over="ignore"):
            Y = np.asarray(y, dtype=X.dtype).reshape(X.shape[0], -1)
        # only a narrower float can overflow (any integer fits in float32): no pass
        # over the targets otherwise
        narrowed = y.dtype.kind == "f" and y.dtype.itemsize > Y.dtype.itemsize
        if narrowed and not abs_max(Y) < np.inf:
            where, advice = (
                ("the dtype of this model's weights",
                 "Refit it from float64 X (warm_start=False), or scale y.") if fitted else
                ("the dtype of X, which the model trains in",
                 "Pass X as float64, or scale y."))
            raise ValueError(
                f"y has values beyond the range of {Y.dtype.name}, {where} (largest "
                f"|y|: {abs_max(y):.3g}). {advice}")
        return Y

    def _output_activation_and_loss(self, Y):
        spec = self.output_activation
        if self.loss == "poisson":
            act = _act.Exp() if _is_auto(spec) else _resolve("output_activation",
                                                              _act.get, spec)
            if not isinstance(act, _act.Exp):
                raise InvalidParameterError(
                    f"loss='poisson' uses the log link: output_activation must be "
                    f"'auto' or 'exp', got {spec!r}.")
        elif _is_auto(spec):
            act = _act.ReLU() if Y.min() >= 0 else _act.Identity()
        else:
            act = _resolve("output_activation", _act.get, spec)
            if act.learnable:  # its slopes would stay as they start: a LeakyReLU
                raise InvalidParameterError(
                    f"output_activation={spec!r} learns per-unit parameters, which only "
                    "hidden layers train: use LeakyReLU(negative_slope=...) for a "
                    "fixed slope.")
            if act.output_only:
                raise InvalidParameterError(
                    f"output_activation={spec!r} is for classification; use "
                    "MLPScratchClassifier.")
            if not _builtin(act):
                _check_custom_activation("output_activation", act)
        return act, LOSSES[self.loss]()

    def _loss_changed(self, loss):
        return self.loss != loss.name

    def _check_fitted_output(self, X, Y, sw):
        """Warn when a ReLU output is 0 on more than half of the training rows whose
        target is above 0 (of weight above 0): its gradient is 0 there, so no further
        training lowers their error. One forward pass, a slice of rows at a time."""
        if not isinstance(self._network.activations[-1], _act.ReLU):
            return
        positive = Y > 0
        if sw is not None:
            positive &= (sw > 0)[:, None]
        n_positive = positive.sum(axis=0)
        stuck = np.zeros_like(n_positive)
        for start in range(0, X.shape[0], _CHECK_ROWS):
            rows = slice(start, start + _CHECK_ROWS)
            with np.errstate(over="ignore", invalid="ignore"):
                out = self._network.predict(X[rows], self.coefs_, self.intercepts_,
                                            self._slopes)
            stuck += ((out == 0) & positive[rows]).sum(axis=0)
        share = stuck / np.maximum(n_positive, 1)
        j = int(np.argmax(share))
        if not 2 * stuck[j] > n_positive[j]:
            return
        which = f"Output {j} of this {Y.shape[1]}-output model" if Y.shape[1] > 1 else (
            "The model's output")
        warnings.warn(
            f"{which} is 0 on {stuck[j]} of the {n_positive[j]} training rows whose "
            f"target is above 0: it is a ReLU, whose gradient is 0 there, so training "
            f"can no longer lower their error. This happens when the output starts "
            f"below 0 on many rows (the random part of its initial value outweighs its "
            f"bias, the target mean) or training drives it there. "
            f"output_activation='auto' picks ReLU for targets that are all >= 0; "
            f"output_activation='identity' (scikit-learn's) or 'softplus' cannot stop "
            f"learning this way, and init='glorot_uniform' (smaller initial outputs "
            f"after ReLU layers) makes it less likely.", DeadOutputWarning)

    def _check_continuation(self, X, Y):
        if Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted "
                             f"with {self.n_outputs_}.")

    def _check_targets(self, Y, out_activation, continued=False, reachable=True):
        """Refuse targets the output activation cannot predict: below 0 for an output
        whose values are >= 0 (ReLU, softplus, exp), and, when ``reachable`` (in a
        fit; ``diagnose`` takes held-out rows), beyond a bounded output's range. A
        few units in the last place beyond (a scaler's 1.0000000000000002) are
        rounding, not beyond; the Poisson deviance has no such slack below 0."""
        low, high = out_activation.value_range
        eps = np.finfo(Y.dtype).eps if Y.dtype.kind == "f" else 0.0
        slack = 0.0 if self.loss == "poisson" else 16 * eps
        low_edge = low - slack * max(1.0, abs(low))
        high_edge = high + slack * max(1.0, abs(high))
        y_min, y_max = Y.min(), Y.max()
        if low == 0 and high == np.inf and y_min < low_edge:
            # a continued fit with 'auto' keeps the output of the first fit, which
            # 'auto' may have chosen from its targets (a stream's first partial_fit
            # batch, all >= 0): the way on is to ask for 'identity' now
            chosen = (" With output_activation='auto' a continued fit keeps the output "
                      "activation of the first fit, which 'auto' picks from that fit's "
                      "targets (ReLU when they are all >= 0, as in a stream's first "
                      "partial_fit batch); set_params(output_activation='identity') "
                      "and the continued fit takes it up."
                      if continued and self.loss != "poisson"
                      and isinstance(self.output_activation, str)
                      and self.output_activation == "auto" else "")
            raise ValueError(
                f"y has negative values (min {y_min:.6g}) but the output activation "
                f"{out_activation.name!r} can only predict values >= 0. "
                # the Poisson loss takes no other output activation
                + ("The Poisson deviance is for targets >= 0: use loss='squared_error' "
                   "for targets that can be negative." if self.loss == "poisson" else
                   "Use output_activation='identity' for targets that can be negative."
                   + chosen))
        if reachable and (y_min < low_edge or y_max > high_edge):
            # no weights reach them: the fit would end on the bound, and say nothing
            outside = np.count_nonzero((Y < low_edge) | (Y > high_edge))
            way = ("set_params(output_activation='identity') and the continued fit "
                   "takes it up" if continued else
                   "use output_activation='identity' (or 'auto')")
            values = "values" if outside > 1 else "value"
            raise ValueError(
                f"y has {outside} {values} outside [{low:g}, {high:g}] (min "
                f"{float(y_min)!r}, max {float(y_max)!r}), the range of the output "
                f"activation {out_activation.name!r}: no weights can predict them. "
                f"Bring y into that range, or {way}.")

    def _stratify_labels(self, y):
        return None

    def _n_labels(self, y):
        return 0

    def _score_output(self, out, y, sw):
        return r2_score(y, out.ravel() if out.shape[1] == 1 else out, sample_weight=sw)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = self.loss == "poisson"  # log link: y >= 0
        return tags


for _cls in (MLPScratchClassifier, MLPScratchRegressor):
    _cls.__doc__ = _cls.__doc__.format(params=_PARAMS_DOC, attributes=_ATTRIBUTES_DOC)
del _cls


def _sample_weights(sample_weight, X):
    """``sample_weight`` checked, in float64 (see ``_narrowed``)."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=np.float64,
                                ensure_non_negative=True)


def _narrowed(sw, dtype):
    """Row weights (float64) in the dtype X trains in. A positive weight below that
    dtype's smallest normal number is refused before the cast, which would make it 0
    (a row silently dropped) or subnormal."""
    if sw is None or sw.dtype == dtype:
        return sw
    tiny, largest = np.finfo(dtype).tiny, np.finfo(dtype).max
    small = sw[(sw > 0) & (sw < tiny)]
    if len(small):
        raise ValueError(
            f"A sample weight (sample_weight times class weights) of {small.min():g} is "
            f"below the smallest normal {np.dtype(dtype).name} ({tiny:g}), the dtype X "
            "trains in: it would become 0 or lose its precision. Rescale the weights.")
    if sw.max() > largest:
        raise ValueError(
            f"A sample weight (sample_weight times class weights) of {sw.max():g} is "
            f"above the largest {np.dtype(dtype).name} ({largest:g}), the dtype X trains "
            "in: it would become inf. Rescale the weights.")
    return sw.astype(dtype)


def _check_weight_sum(sw):
    if sw is None:
        return
    with np.errstate(over="ignore"):
        total = float(sw.sum())
    if not total > 0:
        raise ValueError("The sample weights (sample_weight times class weights) sum "
                         "to zero: at least one sample needs a positive weight.")
    if not (math.isfinite(total) and math.isfinite(1 / total)):
        raise ValueError(
            f"The sample weights (sample_weight times class weights) sum to {total:g}, "
            "which the objective cannot be divided by: rescale them.")
    smallest, tiny = float(sw[sw > 0].min()), float(np.finfo(sw.dtype).tiny)
    if smallest < tiny:  # a mini-batch of such weights: its sum could not divide
        raise ValueError(
            f"A sample weight (sample_weight times class weights) of {smallest:g} is "
            f"below the smallest normal {sw.dtype} ({tiny:g}), so that a mini-batch's "
            "objective could not be divided by its weights: rescale them.")
