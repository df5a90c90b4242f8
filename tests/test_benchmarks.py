"""The benchmark script still runs against the package (a smoke test, not timed: the
numbers themselves are for the README, never asserted)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ["digits_adam", "digits_lbfgs", "sparse_csr", "predict_1row", "synth_f64_nj2"]


def test_bench_vs_sklearn_quick_reports_every_case():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_vs_sklearn.py"), "--quick",
         "--repeats", "1", "--cases", ",".join(CASES)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {line.split()[0]: line for line in out.stdout.splitlines()
            if line.split() and line.split()[0] in CASES and ":" not in line}
    assert sorted(rows) == sorted(CASES)
    for name, line in rows.items():
        assert "ERR" not in line, line
        # both times, a ratio with three decimals, both scores
        assert re.search(r"\s\d+\.\d{3}\s+\d\.\d{4}\s+\d\.\d{4}\s", line), line
    assert re.search(r"synth_f64_nj2 fit vs GEMM: .* ours [\d.]+ GFLOP/s = [\d.]+%",
                     out.stdout)
    assert "digits_lbfgs: n_iter_ sklearn=" in out.stdout
