"""Every gallery example runs (small sizes), measures what it claims, writes its PNG;
the README's Gallery shows exactly the PNGs the examples write."""

import importlib.util
import re
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ["activation_gallery", "linear_collapse", "learning_speed",
           "weight_initialization", "dead_relu", "nonnegative_regression",
           "pipeline_cross_validate"]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"gallery_{name}",
                                                  ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name, tmp_path):
    out = tmp_path / f"{name}.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning & co
        results = _load(name).main(["--quick", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


def test_activation_gallery(tmp_path):
    r = _run("activation_gallery", tmp_path)
    assert r["sigmoid"]["max_d"] == pytest.approx(0.25)
    assert r["sigmoid"]["argmax_z"] == pytest.approx(0.0)
    assert r["relu"]["d0"] == 0 and r["leaky_relu"]["d0"] == 0.01
    assert r["gelu"]["max_d"] > 1.1 and r["silu"]["min_d"] < -0.09
    # GELU's g'' = phi(z) (2 - z^2): its derivative peaks at sqrt(2), between grid points
    assert r["gelu"]["argmax_z"] == pytest.approx(np.sqrt(2), abs=1e-6)
    assert max(row["check"] for row in r.values()) < 1e-6


def test_linear_collapse(tmp_path):
    r = _run("linear_collapse", tmp_path)
    acc = r["test_accuracy"]
    assert r["max_proba_gap"] < 1e-12
    linear = acc["identity MLP (32, 32, 32)"]
    assert abs(linear - acc["logistic regression"]) < 0.03
    assert acc["tanh MLP (32, 32, 32)"] > linear + 0.07
    assert acc["ReLU MLP (32, 32, 32)"] > linear + 0.07


def test_learning_speed(tmp_path):
    r = _run("learning_speed", tmp_path)
    for fast in ("tanh", "relu", "leaky_relu"):
        assert r["sigmoid"]["loss_at_10"] > 2 * r[fast]["loss_at_10"]
    assert r["relu"]["final_loss"] < r["tanh"]["final_loss"]


def test_weight_initialization(tmp_path):
    r = _run("weight_initialization", tmp_path)
    for act in ("tanh", "relu"):
        for depth in ("shallow", "deep"):
            assert r[(act, depth, "zeros")]["duplicate_fraction"] == 63 / 64
            assert r[(act, depth, "glorot_uniform")]["duplicate_fraction"] == 0
        std = np.array(r[(act, "deep", "normal")]["initial_std"])
        assert np.all(np.diff(std) < 0) and std[-1] < 1e-5
        assert min(r[(act, "deep", "he_uniform")]["initial_std"]) > 0.1
        # std 0.01 starves every layer's gradient, the first as much as the last
        assert max(r[(act, "deep", "normal")]["initial_grad"]) < 1e-5
        assert min(r[(act, "deep", "he_uniform")]["initial_grad"]) > 0.1
        stuck = r[(act, "deep", "normal")]["loss_curve"][-1]
        assert stuck == pytest.approx(np.log(10), abs=0.01)
        assert r[(act, "deep", "glorot_uniform")]["loss_curve"][-1] < stuck / 2


def test_dead_relu(tmp_path):
    r = _run("dead_relu", tmp_path)
    relu, leaky, prelu = r["ReLU"], r["LeakyReLU(0.01)"], r["PReLU(0.25)"]
    assert relu["dead_fraction"][1] > 0.3
    assert relu["inactive_fraction"] == relu["dead_fraction"]
    assert sum(prelu["dead_fraction"]) < sum(relu["dead_fraction"])
    assert sum(prelu["inactive_fraction"]) < sum(relu["dead_fraction"])
    assert sum(leaky["dead_fraction"]) == 0


def test_nonnegative_regression(tmp_path):
    r = _run("nonnegative_regression", tmp_path)
    assert r["relu output"]["n_negative"] == 0
    assert r["relu output"]["min_prediction"] >= 0
    assert r["identity output"]["n_negative"] > 10
    assert r["relu output"]["mae_at_zero"] < r["identity output"]["mae_at_zero"]


def test_pipeline_cross_validate(tmp_path):
    r = _run("pipeline_cross_validate", tmp_path)
    assert r["cross_validate"]["accuracy"][0] > 0.9
    assert r["cross_validate"]["roc_auc"][0] > 0.95
    assert r["best_score"] > 0.9
    assert set(r["best_params"]) == {"mlp__activation", "mlp__init"}


def _gallery_section():
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Gallery\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Gallery' section followed by another section"
    return match.group(1)


def test_readme_gallery_shows_the_pngs_the_examples_write():
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", _gallery_section())
    written = []
    for name in GALLERY:
        default = Path(_load(name).DEFAULT_OUT).resolve()
        assert default == ROOT / "docs" / "images" / f"{name}.png"
        assert default.is_file(), f"run examples/{name}.py to write {default}"
        written.append(default.relative_to(ROOT).as_posix())
    assert sorted(shown) == sorted(written)


def test_readme_gallery_names_each_example_script():
    section = _gallery_section()
    for name in GALLERY:
        assert f"examples/{name}.py" in section
