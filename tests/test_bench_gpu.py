"""The GPU benchmark in its CPU smoke mode (tiny nets; figures not checked), and its target judgements."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path, *only):
    out = tmp_path / "RESULTS_gpu.md"
    proc = subprocess.run([sys.executable, "-m", "bench.bench_gpu", "--device", "cpu", "--tiny", "--out", str(out),
                           "--only", *only], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


def test_gpu_bench_smoke_mode_writes_steps_augmentation_and_extraction(tmp_path):
    text = _run(tmp_path, "step", "augment", "extract")
    for figure in ("| model step, x-vector, 4 × 40 frames × 80, fp32 | samples/s |",
                   "| model step, ECAPA-TDNN, 4 × 40 frames × 80, bf16 | samples/s |",
                   "| augmentation of 4 × 2 s on the device: speed + reverb + noise | crops/s |",
                   "| extraction, x-vector, 2 × 1 s, front-end included, fp32 | audio s/s |",
                   "| extraction, ECAPA-TDNN, 2 × 1 s, front-end included, bf16 | audio s/s |"):
        assert figure in text
    assert "Device: cpu (the smoke mode" in text and "Command: `python -m bench.bench_gpu --device cpu --tiny" in text


@pytest.mark.slow
def test_gpu_bench_smoke_mode_runs_the_training_loops(tmp_path):
    text = _run(tmp_path, "loop")
    assert "| training step alone, x-vector + AAM, 4 × 0.5 s (batch on the device) | crops/s |" in text
    for case in ("no augmentation", "augment@data=synthetic, in the workers", "augment@data=synthetic, data.augment_on=device"):
        assert f"| training loop ({case}), 4 × 0.5 s | crops/s |" in text
    assert "synthetic recipe training (experiment=synthetic_xvector_aam_aug data.augment_on=device), 2 epochs" in text
    assert "Training loop with augmentation and speed perturbation ≥ 0.9 of the step alone" in text


def test_gpu_targets_are_judged_from_the_rows():
    sys.path.insert(0, str(REPO))
    from bench.bench_gpu import targets
    from bench.common import Row

    def r(figure, unit, ours, peer=None):
        return Row(figure, unit, (ours, ours, ours), None if peer is None else (peer, peer, peer))

    rows = [
        r("model step, x-vector, 256 × 200 frames × 80, bf16", "samples/s", 40.0, 24.0),
        r("model step, ECAPA-TDNN, 256 × 200 frames × 80, bf16", "samples/s", 8.0, 6.0),
        r("model step, ECAPA-TDNN, 256 × 200 frames × 80, fp32", "samples/s", 5.0, 6.0),
        r("training step alone, full x-vector + AAM, 128 × 2 s (batch on the device)", "crops/s", 100.0),
        r("training step alone, full x-vector + AAM, 128 × 2 s (batch on the device), bf16", "crops/s", 200.0),
        r("training loop (augment@data=synthetic, data.augment_on=device), 128 × 2 s", "crops/s", 95.0),
        r("training loop (augment@data=synthetic, data.augment_on=device, bf16-mixed), 128 × 2 s", "crops/s", 150.0),
        r("extraction, x-vector, 64 × 10 s, front-end included, fp32", "audio s/s", 300.0, 100.0),
        r("synthetic recipe training (experiment=synthetic_xvector_aam_aug data.augment_on=device), 12 epochs",
          "s of epochs", 12.5),
    ]
    text = "\n".join(targets(rows))
    assert "x-vector bf16 1.67x, ECAPA-TDNN bf16 1.33x: **not met**" in text
    assert "step alone: 0.95: **met**" in text
    assert "x-vector fp32 3.00x: **met**" in text
    assert "12.5 s: **not met**" in text
    assert targets([]) == []
