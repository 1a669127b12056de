"""The benchmark suite runs and writes its results file (a smoke run; figures are not checked)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_suite_writes_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--repeats", "1", "--only", "frontend", "flops",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert "| front-end Fbank 80, (32, 48000) batch | audio s/s |" in text
    assert "GFLOP/s" in text and "Command: `python -m bench.run --quick" in text
