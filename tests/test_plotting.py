"""The matplotlib helpers: what they draw, on which axes, and the lazy import."""

import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sknn_scratch import MLPScratchClassifier  # noqa: E402
from sknn_scratch.diagnostics import diagnose  # noqa: E402
from sknn_scratch.plotting import (plot_activations, plot_diagnostics,  # noqa: E402
                                   plot_loss_curves)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {act: MLPScratchClassifier((6, 4), activation=act, max_iter=15,
                                          early_stopping=True, random_state=0).fit(X, y)
                for act in ("relu", "tanh")}, X, y


def test_importing_the_module_does_not_import_matplotlib():
    code = ("import sys, sknn_scratch.plotting, sknn_scratch.diagnostics; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(Path(__file__).resolve().parents[1]))
    assert out.stdout.strip() == "False"


def test_plot_activations_draws_function_and_derivative_panels():
    fig = plot_activations(["sigmoid", "relu"], z=np.linspace(-3, 3, 61))
    ax_g, ax_d = fig.axes
    sig_g, relu_g = ax_g.get_lines()[:2]
    sig_d = ax_d.get_lines()[0]
    z = sig_g.get_xdata()
    np.testing.assert_allclose(sig_g.get_ydata(), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(relu_g.get_ydata(), np.maximum(z, 0))
    assert sig_d.get_ydata().max() == pytest.approx(0.25)
    # annotate (default for <= 3 activations) marks the sigmoid's g'(0) = 0.25
    assert any("0.25" in t.get_text() for t in ax_d.texts)


def test_plot_activations_default_draws_every_hidden_builtin():
    fig = plot_activations()
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"relu", "tanh", "sigmoid", "gelu", "prelu", "elu"} <= labels
    assert "softmax" not in labels
    assert not fig.axes[1].texts  # too many curves to annotate by default


def test_plot_activations_on_one_given_axes_dashes_the_derivative():
    fig, ax = plt.subplots()
    assert plot_activations(["tanh"], ax=ax) is fig
    g, d = [line for line in ax.get_lines() if line.get_label().startswith("tanh")]
    assert g.get_linestyle() == "-" and d.get_linestyle() == "--"


def test_plot_loss_curves_draws_training_and_validation(fitted):
    models, _, _ = fitted
    fig, ax = plt.subplots()
    assert plot_loss_curves(models, ax=ax, log=True) is fig
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"relu", "relu (validation)", "tanh", "tanh (validation)"}
    np.testing.assert_allclose(lines["tanh"].get_ydata(), models["tanh"].loss_curve_)
    np.testing.assert_allclose(lines["relu (validation)"].get_ydata(),
                               models["relu"].validation_loss_curve_)
    assert ax.get_yscale() == "log"
    single = plot_loss_curves(models["relu"])
    assert len(single.axes[0].get_lines()) == 2


def test_plot_loss_curves_puts_validation_losses_at_their_epochs():
    """A warm start that turns early_stopping on records validation losses from its
    first epoch on: they belong at epochs 11-20 of the loss curve, not 1-10."""
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPScratchClassifier((5,), max_iter=10, warm_start=True,
                                   random_state=0).fit(X, y)
        est.set_params(early_stopping=True, n_iter_no_change=100).fit(X, y)
    lines = {line.get_label(): line for line in plot_loss_curves(est).axes[0].get_lines()}
    assert list(lines["relu"].get_xdata()) == list(range(1, 21))
    assert list(lines["relu (validation)"].get_xdata()) == list(range(11, 21))
    np.testing.assert_array_equal(lines["relu (validation)"].get_ydata(),
                                  est.validation_loss_curve_)


def test_plot_loss_curves_labels_tell_the_estimators_apart():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = [MLPScratchClassifier((5,), activation=act, init=init, max_iter=3,
                                       random_state=0).fit(X, y)
                  for act, init in [("relu", "auto"), ("relu", "zeros"),
                                    ("tanh", "auto"), ("relu", "auto")]]

    def labels(*args, **kwargs):
        return [line.get_label()
                for line in plot_loss_curves(*args, **kwargs).axes[0].get_lines()]

    assert labels(models) == ["relu, init='auto' #1", "relu, init='zeros'", "tanh",
                              "relu, init='auto' #4"]
    assert labels(models[1:3]) == ["relu", "tanh"]
    assert labels(models[:2], ["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="2 labels for 4 estimators"):
        plot_loss_curves(models, ["a", "b"])  # used to draw the first two only
    with pytest.raises(ValueError, match="a dict's keys are its labels"):
        plot_loss_curves({"a": models[0]}, labels=["b"])  # used to ignore labels


def test_plot_diagnostics_bars_of_each_kind_show_that_kind():
    """A report whose three fractions differ in every layer: each legend entry's bars
    are the heights of its own kind, in the colour the legend shows."""
    from sknn_scratch.diagnostics import Diagnosis, LayerDiagnosis

    rows = [(0.1, 0.4, 0.7), (0.2, 0.5, 0.9)]
    report = Diagnosis([
        LayerDiagnosis(layer=i + 1, activation="ReLU()", n_units=10, dead_fraction=d,
                       saturated_fraction=s, duplicate_fraction=u, mean=0.5, std=0.2,
                       mean_abs_derivative=0.5)
        for i, (d, s, u) in enumerate(rows)])
    ax = plot_diagnostics(report).axes[0]
    legend = ax.get_legend()
    shown = {text.get_text(): handle.get_facecolor()
             for text, handle in zip(legend.get_texts(), legend.legend_handles)}
    assert set(shown) == {"dead", "saturated", "duplicate"}
    for bars in ax.containers:
        kind = bars.get_label()
        column = ["dead", "saturated", "duplicate"].index(kind)
        assert [bar.get_height() for bar in bars] == [row[column] for row in rows]
        assert all(bar.get_facecolor() == shown[kind] for bar in bars)
    # the kinds side by side within each layer, in the legend's order
    lefts = [[bar.get_x() for bar in bars] for bars in ax.containers]
    assert all(lefts[0][i] < lefts[1][i] < lefts[2][i] for i in range(len(rows)))


def test_plot_diagnostics_draws_one_bar_per_layer_and_kind(fitted):
    models, X, y = fitted
    report = diagnose(models["relu"], X, y)
    fig = plot_diagnostics(report, title="relu")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    expected = [getattr(r, f) for f in ("dead_fraction", "saturated_fraction",
                                        "duplicate_fraction") for r in report]
    assert heights == pytest.approx(expected)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("layer 1\nReLU") and len(ticks) == 2
    assert ax.get_title() == "relu"


def test_plot_activations_tells_apart_two_of_the_same_name_by_their_parameters():
    from sknn_scratch.activations import ELU, LeakyReLU

    fig = plot_activations([LeakyReLU(0.01), LeakyReLU(0.3), ELU(), "tanh"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["LeakyReLU(negative_slope=0.01)", "LeakyReLU(negative_slope=0.3)",
                      "elu", "tanh"]


@pytest.mark.parametrize("one", ["tanh", "LeakyReLU", "Tanh"])
def test_plot_activations_takes_one_activation_alone(one):
    """A string used to be read letter by letter ("Unknown activation 't'"), and an
    object or a class was not iterable."""
    from sknn_scratch import activations

    spec = {"tanh": "tanh", "LeakyReLU": activations.LeakyReLU(0.1),
            "Tanh": activations.Tanh}[one]
    alone, listed = plot_activations(spec), plot_activations([spec])
    for ax_alone, ax_listed in zip(alone.axes, listed.axes, strict=True):
        assert ([np.asarray(line.get_ydata()).tolist() for line in ax_alone.get_lines()]
                == [np.asarray(line.get_ydata()).tolist()
                    for line in ax_listed.get_lines()])


def test_plot_activations_refuses_an_output_only_activation():
    with pytest.raises(ValueError, match="not elementwise"):
        plot_activations(["relu", "softmax"])


def test_plot_loss_curves_takes_pipelines_and_searches_as_their_mlp(fitted):
    """A raw AttributeError ('Pipeline' object has no attribute 'loss_curve_') before."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    _, X, y = fitted
    pipe = make_pipeline(StandardScaler(), MLPScratchClassifier((4,), activation="tanh",
                                                                max_iter=8,
                                                                random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, {"mlpscratchclassifier__alpha": [1e-4]}, cv=2)
        search.fit(X, y)
    for given in (search.best_estimator_, search):
        ax = plot_loss_curves(given).axes[0]
        (line,) = ax.get_lines()
        assert line.get_label() == "tanh"
        np.testing.assert_array_equal(line.get_ydata(),
                                      search.best_estimator_[-1].loss_curve_)
    other = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="got Pipeline of a LogisticRegression"):
        plot_loss_curves([other])


def test_plot_loss_curves_of_an_unfitted_estimator_says_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_loss_curves(MLPScratchClassifier())


@pytest.mark.parametrize("z, problem", [
    (np.zeros((3, 3)), r"shape \(3, 3\)"), ([], r"shape \(0,\)"), ([1.0], r"shape \(1,\)"),
    ([-1.0, np.inf], r"shape \(2,\) with non-finite values")])
def test_plot_activations_names_points_it_cannot_draw(z, problem):
    with pytest.raises(ValueError, match=f"z must be a 1-d array of at least 2 finite "
                                         f"points to draw g\\(z\\) at, got {problem}"):
        plot_activations("relu", z=z)


def test_the_plots_name_an_empty_ax_and_a_model_given_for_a_diagnosis(fitted):
    with pytest.raises(ValueError, match="ax holds 0 Axes, but this plot draws on an "
                                         "Axes or 2 of them"):
        plot_activations("relu", ax=[])
    with pytest.raises(TypeError, match="draws a Diagnosis, what diagnose"):
        plot_diagnostics(fitted[0]["relu"])  # the model, not its diagnosis


def test_plot_diagnostics_draws_some_of_the_layers(fitted):
    models, X, _ = fitted
    diagnosis = diagnose(models["relu"], X)
    assert type(diagnosis[1:]).__name__ == "Diagnosis" and len(diagnosis[1:]) == 1
    for part in (diagnosis[1:], list(diagnosis)[1:]):
        fig = plot_diagnostics(part)
        assert len(fig.axes[0].get_xticks()) == 1


def test_the_one_panel_plots_name_a_pair_of_axes(fitted):
    """A pair of Axes for a plot of one panel: named, not an unpacking error."""
    models, X, _ = fitted
    _, pair = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="ax holds 2 Axes, but this plot draws on an "
                                         "Axes: give an Axes, or None"):
        plot_loss_curves(models["relu"], ax=pair)
    with pytest.raises(ValueError, match="ax holds 2 Axes"):
        plot_diagnostics(diagnose(models["relu"], X), ax=pair)
    _, grid = plt.subplots(2, 2)
    with pytest.raises(ValueError, match="ax holds 4 Axes, but this plot draws on an "
                                         "Axes or 2 of them"):
        plot_activations("relu", ax=grid)
    fig = plot_activations("relu", ax=grid[1])  # a row of a grid: a pair
    assert fig is grid[1, 0].figure and grid[1, 1].get_lines()


def test_loss_curves_of_lbfgs_are_per_iteration(fitted):
    models, X, y = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lbfgs = MLPScratchClassifier((4,), solver="lbfgs", max_iter=20,
                                     random_state=0).fit(X, y)
    assert plot_loss_curves(lbfgs).axes[0].get_xlabel() == "iteration"
    assert plot_loss_curves(models["relu"]).axes[0].get_xlabel() == "epoch"
    mixed = plot_loss_curves([lbfgs, models["relu"]]).axes[0]
    assert mixed.get_xlabel() == "epoch (L-BFGS: iteration)"
