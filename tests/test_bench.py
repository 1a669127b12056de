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


def test_targets_are_judged_from_the_rows():
    sys.path.insert(0, str(REPO))
    from bench.common import Row
    from bench.run import targets

    def r(figure, unit, ours, peer=None):
        return Row(figure, unit, (ours, ours, ours), None if peer is None else (peer, peer, peer))

    rows = [
        r("training step, x-vector, 80-dim, 32 × 2 s, fp32", "samples/s", 55.0, 50.0),
        r("training step, x-vector, 80-dim, 32 × 2 s, bf16", "samples/s", 110.0, 80.0),
        r("float32 matmul peak (2048², torch.mm)", "GFLOP/s", 200.0),
        r("training step, x-vector 80-dim, 32 × 2 s", "GFLOP/s", 160.0),
        r("extraction, 10 s utterances, batch 1, front-end included (fbank 24), fp32", "audio s/s", 300.0, 250.0),
        r("extraction, 10 s utterances, batch 16, front-end included (fbank 24), int8", "audio s/s", 700.0, 300.0),
        r("EER + minDCF (3 priors), 1,000,000 trials", "ms", 90.0),
        r("sklearn.metrics.roc_curve alone, 1,000,000 trials (same scores)", "ms", 150.0),
        r("training, full pipeline (loader, 1 worker(s) → fbank 80 → step), 64 × 2 s", "samples/s", 85.0),
        r("training, model only (same step, batch in memory), 64 × 2 s", "samples/s", 100.0),
    ]
    text = "\n".join(targets(rows))
    assert "fp32 1.10x, bf16 1.38x: **not met**" in text
    assert "80% of the measured matmul peak" in text and "more than 1.25x" in text
    assert "fp32 batch 1 1.20x, int8 batch 16 2.33x: **met** with precision=int8" in text
    assert "90 vs 150 ms: **met**" in text
    assert "Full pipeline ≥ 0.9 of model-only: 0.85: **not met**" in text
    assert targets([]) == []


def test_nets_bench_measures_a_net():
    """bench/bench_nets.py's measurement on a tiny net (the full nets take minutes: not a test)."""
    sys.path.insert(0, str(REPO))
    from bench.bench_nets import bench_net, nets
    from xvector.nets.campp import CAMPlusPlus

    r = bench_net(lambda: CAMPlusPlus(in_channels=80, fcm_channels=4, init_channels=16, growth=4,
                                      block_layers=(1, 1, 1), embed_dim=8), repeats=1)
    assert r["params"] > 0 and r["gflop"] > 0 and r["train"][0] > 0 and r["extract"][0] > 0
    assert {"ecapa512", "campp", "dtdnn", "campp_recipe", "dtdnn_recipe"} <= set(nets())
