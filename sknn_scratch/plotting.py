"""Matplotlib helpers: activations and their derivatives, loss curves, diagnostics.

Needs matplotlib (the ``plot`` extra: ``pip install -e ".[plot]"`` in a checkout),
imported when a function is called, never when this module is. Every function takes an
optional ``ax`` and returns the :class:`matplotlib.figure.Figure` it drew on.
"""

import numpy as np

from . import activations as _act
from ._params import _equal
from .diagnostics import Diagnosis, LayerDiagnosis, fitted_mlp

__all__ = ["plot_activations", "plot_loss_curves", "plot_diagnostics"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Plotting needs matplotlib: pip install matplotlib, or "
                          "pip install -e '.[plot]' in a checkout of "
                          "sknn_scratch.") from exc
    return plt


def _figure_and_axes(ax, n_panels, figsize):
    """``(figure, [axes])``: a new row of ``n_panels`` when ``ax`` is None."""
    if ax is None:
        # constrained: tick labels of several lines (plot_diagnostics) stay inside
        fig, axes = _pyplot().subplots(1, n_panels, figsize=figsize, squeeze=False,
                                       layout="constrained")
        return fig, list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if not 1 <= len(axes) <= n_panels:
        takes = "an Axes" + (f" or {n_panels} of them" if n_panels > 1 else "")
        raise ValueError(f"ax holds {len(axes)} Axes, but this plot draws on {takes}: "
                         f"give {takes}, or None for a new figure.")
    return axes[0].figure, axes


def _default_activations():
    """One instance of every built-in hidden activation (aliases once)."""
    classes = dict.fromkeys(type(_act.get(n)) for n in _act._activations.names())
    return [cls() for cls in classes if not cls.output_only and cls is not _act.Exp]


def plot_activations(activations=None, z=None, *, ax=None, annotate=None):
    """Function and derivative of each activation.

    Parameters
    ----------
    activations : str, Activation or list of them, optional
        Default: every built-in hidden activation.
    z : array-like, optional
        Points to draw, default ``linspace(-5, 5, 1001)``.
    ax : Axes or pair of Axes, optional
        A pair draws ``g`` on the first and ``g'`` on the second; a single Axes draws
        both, ``g'`` dashed. Default: a new figure with the two panels.
    annotate : bool, optional
        Mark ``g'(0)`` and an interior maximum of ``g'`` (e.g. the sigmoid's 0.25 at
        ``z = 0``). Default: when at most three activations are drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(activations, (str, _act.Activation, type)):
        activations = [activations]  # one, as plot_loss_curves takes one estimator
    acts = [_act.get(a) for a in (activations or _default_activations())]
    for act in acts:
        if act.output_only:
            raise ValueError(f"{act!r} is not elementwise (an output activation that "
                             "couples a row): plot_activations draws g(z) per value.")
    # the name, or the parameters too where two of the same name are drawn
    names = [act.name for act in acts]
    labels = [act.name if names.count(act.name) == 1 else repr(act) for act in acts]
    z = np.linspace(-5, 5, 1001) if z is None else np.asarray(z, dtype=float)
    if z.ndim != 1 or len(z) < 2 or not np.isfinite(z).all():
        raise ValueError(f"z must be a 1-d array of at least 2 finite points to draw "
                         f"g(z) at, got shape {z.shape}"
                         + ("" if np.isfinite(z).all() else " with non-finite values")
                         + ".")
    fig, axes = _figure_and_axes(ax, 2, (11, 4.2))
    ax_g, ax_d = (axes * 2)[:2]
    annotate = len(acts) <= 3 if annotate is None else annotate
    same = ax_g is ax_d
    for act, label in zip(acts, labels):
        line, = ax_g.plot(z, act.forward(z), label=f"{label}" if not same
                          else f"{label}: g")
        deriv = act.derivative(z)
        ax_d.plot(z, deriv, color=line.get_color(), linestyle="--" if same else "-",
                  label=f"{label}" if not same else f"{label}: g'")
        if annotate:
            _mark_derivative(ax_d, act, z, deriv, line.get_color())
    ax_g.set_title("g(z)" if not same else "g(z) and g'(z) (dashed)")
    ax_g.set_xlabel("z")
    if not same:
        ax_d.set_title("derivative g'(z)")
        ax_d.set_xlabel("z")
    for a in {id(ax_g): ax_g, id(ax_d): ax_d}.values():
        a.axhline(0, color="0.7", linewidth=0.8, zorder=0)
        a.axvline(0, color="0.7", linewidth=0.8, zorder=0)
        a.grid(alpha=0.3)
        a.legend(fontsize="small")
    return fig


def _mark_derivative(ax, act, z, deriv, color):
    """Dot and label ``g'(0)``, and the peak of ``g'`` when it lies elsewhere."""
    d0 = float(act.derivative(np.array([0.0]))[0])
    ax.plot([0], [d0], "o", color=color)
    ax.annotate(f"g'(0) = {d0:.3g}", (0, d0), textcoords="offset points",
                xytext=(6, -12 if d0 > 0.6 else 6), fontsize="small", color=color)
    peak = int(np.argmax(deriv))
    on_plateau = np.sum(np.isclose(deriv, deriv[peak], rtol=0, atol=1e-9)) > 1
    at_edge = peak in (0, len(z) - 1)
    if not (on_plateau or at_edge or np.isclose(z[peak], 0, atol=1e-6)):
        ax.plot([z[peak]], [deriv[peak]], "s", color=color)
        ax.annotate(f"max {deriv[peak]:.3g} at z = {z[peak]:.2f}",
                    (z[peak], deriv[peak]), textcoords="offset points",
                    xytext=(-30, 8), fontsize="small", color=color)
        # room above the peak for its label, below the title; the limits stay
        # automatic for whatever the axes show next
        span = float(np.ptp(deriv)) or 1.0
        ax.update_datalim([(z[peak], deriv[peak] + 0.15 * span)])
        ax.autoscale_view()


def plot_loss_curves(estimators, labels=None, *, ax=None, log=False):
    """Training loss (solid) and validation loss (dashed, if any) against epoch (the
    iteration, for L-BFGS).

    The two are not taken at the same moment: an epoch's training loss is the mean
    over its mini-batches of the objective (L2 term included) at the weights each
    batch starts from, half an epoch behind its end on average; the validation loss
    is taken at the epoch's end, without the L2 term. While the loss falls fast, in
    the first epochs, the validation curve can lie below the training one.

    Parameters
    ----------
    estimators : fitted estimator, list of them or dict ``{label: estimator}``
        Each an MLPScratchClassifier or MLPScratchRegressor, a Pipeline that ends
        with one or a fitted search of either (its ``best_estimator_``).
    labels : list of str, optional
        One per estimator; not with a dict, whose keys are the labels. Default: each
        estimator's activation, followed by the parameters in which estimators of the
        same activation differ (``relu, init='zeros'``).
    ax : Axes, optional
    log : bool, default=False
        Logarithmic loss axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(estimators, dict):
        if labels is not None:
            raise ValueError("labels is for a list of estimators: a dict's keys are "
                             "its labels.")
        labels, estimators = list(estimators), list(estimators.values())
    elif not isinstance(estimators, (list, tuple)):
        estimators = [estimators]
    estimators = [fitted_mlp(est)[0] for est in estimators]
    if labels is None:
        labels = _default_labels(estimators)
    elif len(labels) != len(estimators):
        raise ValueError(f"{len(labels)} labels for {len(estimators)} estimators: give "
                         "one label per estimator.")
    fig, (ax,) = _figure_and_axes(ax, 1, (6.5, 4.2))
    for est, label in zip(estimators, labels):
        n_epochs = len(est.loss_curve_)
        line, = ax.plot(np.arange(1, n_epochs + 1), est.loss_curve_, label=f"{label}")
        val = getattr(est, "validation_loss_curve_", None)
        if val:
            # the records of the latest epochs: a warm start that turned
            # early_stopping on started them after the earlier fits' epochs
            ax.plot(np.arange(n_epochs - len(val) + 1, n_epochs + 1), val,
                    linestyle="--", color=line.get_color(),
                    label=f"{label} (validation)")
    if log:
        ax.set_yscale("log")
    lbfgs = [est.get_params().get("solver") == "lbfgs" for est in estimators]
    ax.set_xlabel("iteration" if all(lbfgs) else
                  "epoch (L-BFGS: iteration)" if any(lbfgs) else "epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _default_labels(estimators):
    """Each estimator's activation, and the parameters (by name) in which it differs
    from another estimator of the same activation; its number in the list too where
    that still leaves two labels the same."""
    names = [str(getattr(est, "activation", type(est).__name__)) for est in estimators]
    params = [est.get_params(deep=False) for est in estimators]
    labels = []
    for i, (label, mine) in enumerate(zip(names, params)):
        same = [theirs for j, theirs in enumerate(params)
                if j != i and names[j] == label]
        differ = sorted(key for key, value in mine.items() if key != "activation"
                        and any(not _equal(value, theirs.get(key)) for theirs in same))
        labels.append(label + "".join(f", {key}={mine[key]!r}" for key in differ))
    # the same in every parameter as another: numbered, in the order given
    return [f"{label} #{i + 1}" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]


def plot_diagnostics(diagnosis, *, ax=None, title=None):
    """Dead, saturated and duplicate fractions per hidden layer, as grouped bars.

    The tick of each layer names its activation and the std of its outputs.

    Parameters
    ----------
    diagnosis : Diagnosis
        What :func:`sknn_scratch.diagnostics.diagnose` returns, or some of its layers
        (a slice, or a list of its :class:`LayerDiagnosis`).
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if (isinstance(diagnosis, (list, tuple))
            and all(isinstance(layer, LayerDiagnosis) for layer in diagnosis)):
        diagnosis = Diagnosis(diagnosis)  # some of its layers
    if not isinstance(diagnosis, Diagnosis):
        raise TypeError(f"plot_diagnostics draws a Diagnosis, what diagnose(estimator, "
                        f"X) returns; got {type(diagnosis).__name__}.")
    fig, (ax,) = _figure_and_axes(ax, 1, (1.6 + 1.3 * len(diagnosis), 4.2))
    x = np.arange(len(diagnosis))
    kinds = [("dead", "dead_fraction", "tab:red"),
             ("saturated", "saturated_fraction", "tab:orange"),
             ("duplicate", "duplicate_fraction", "tab:purple")]
    width = 0.8 / len(kinds)
    for k, (label, attr, color) in enumerate(kinds):
        values = [getattr(r, attr) for r in diagnosis]
        ax.bar(x + (k - 1) * width, values, width, label=label, color=color)
    ax.set_xticks(x, [f"layer {r.layer}\n{r.activation.split('(')[0]}\nstd {r.std:.2g}"
                      for r in diagnosis], fontsize="small")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of units")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
