"""The README's core sections run as written, and the main example produces its PNG."""

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# The sections whose snippets this file vouches for; the other sections' owners test
# theirs. Blocks of one section run in order in one namespace, as a reader runs them.
CORE_SECTIONS = ["Usage", "Output activation"]


def readme_sections():
    """``{"## heading": text}`` for every level-2 section of the README."""
    parts = re.split(r"^## (.+)$", README.read_text(encoding="utf-8"), flags=re.M)
    return {head.strip(): body for head, body in zip(parts[1::2], parts[2::2])}


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_quick_start_is_two_commands():
    block = re.search(r"^```bash\n(.*?)^```", readme_sections()["Quick start"],
                      flags=re.S | re.M)
    lines = block.group(1).strip().splitlines()
    assert lines == ['pip install -e ".[plot]" && python examples/compare_activations.py',
                     'pip install -e ".[test]" && pytest']


@pytest.mark.parametrize("section", CORE_SECTIONS)
def test_readme_section_runs(section, tmp_path, monkeypatch):
    blocks = python_blocks(readme_sections()[section])
    assert blocks, f"no python block in README section {section!r}"
    monkeypatch.chdir(tmp_path)  # snippets may save figures
    namespace = {"__name__": "__readme__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md [{section}, block {i + 1}]", "exec"), namespace)
    if section == "Usage":  # the training-curves snippet saves its figure
        assert (tmp_path / "training_curves.png").stat().st_size > 1000


def test_accuracy_section_has_the_table():
    text = readme_sections()["Accuracy"]
    for name in ["digits", "breast_cancer", "wine", "diabetes"]:
        assert re.search(rf"^{name}\s+(accuracy|r2)\s", text, flags=re.M), name


def test_compare_activations_quick_writes_png(tmp_path):
    out = tmp_path / "grid.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "compare_activations.py"), "--quick",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = result.stdout.splitlines()
    table = [line for line in lines if re.match(r"\s+\d+\s{2}\S", line)]
    assert len(table) == 3 * 2  # every activation x init of the quick grid, ranked
    scores = [float(line.split()[-3]) for line in table]
    assert scores == sorted(scores, reverse=True)
    assert any(line.startswith("best: ") for line in lines)


def test_compare_activations_grid_is_ranked_by_cv(monkeypatch):
    """The ranking and the per-activation refits come from the same search."""
    module = runpy.run_path(str(ROOT / "examples" / "compare_activations.py"))
    cfg = dict(module["QUICK"], n_samples=200, max_iter=3)
    X_train, _, y_train, _ = module["load_data"](cfg["n_samples"])
    search = module["grid_search"](cfg, X_train, y_train, n_jobs=1)
    rows = module["ranked_rows"](search)
    assert rows[0][2] == pytest.approx(search.best_score_)
    assert (rows[0][0], rows[0][1]) == (
        module["label"](search.best_params_["mlp__activation"]),
        module["label"](search.best_params_["mlp__init"]))
    curves = module["curves_per_activation"](search, cfg, X_train, y_train)
    assert len(curves) == len(cfg["activations"])
    assert all(len(c) == cfg["max_iter"] for c in curves.values())


def test_runtime_needs_numpy_scipy_and_scikit_learn_only():
    """The declared runtime dependencies, and no optional extra imported by the package
    (matplotlib and dask only when a function needs them)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].lower()
             for dep in project["dependencies"]}
    assert names == {"numpy", "scipy", "scikit-learn"}
    assert {"plot", "distributed", "test"} <= set(project["optional-dependencies"])
    code = ("import sys, sknn_scratch, sknn_scratch.activations, sknn_scratch.initializers, "
            "sknn_scratch.diagnostics, sknn_scratch.plotting, sknn_scratch.parallel; "
            "print(sorted(m for m in ('matplotlib', 'dask', 'distributed') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(ROOT))
    assert out.stdout.strip() == "[]"
