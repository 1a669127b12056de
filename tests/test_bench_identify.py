"""bench/bench_identify.py runs and writes its results file (a smoke run at a tiny size)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_identify_writes_results(tmp_path):
    out = tmp_path / "RESULTS_identify.md"
    proc = subprocess.run([sys.executable, "bench/bench_identify.py", "--speakers", "400", "--queries", "60",
                           "--dim", "32", "--repeats", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert "Command: `python bench/bench_identify.py --speakers 400 --queries 60 --dim 32 --repeats 1`" in text
    assert "| exact search, cosine: 60 queries x 400 speakers, top 10 |" in text
    assert "scikit-learn NearestNeighbors" in text and "same top 10: " in text
    assert not list(tmp_path.glob("*.store.npz"))  # the temporary store is removed
