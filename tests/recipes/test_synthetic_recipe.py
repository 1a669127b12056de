"""The synthetic recipe end to end (corpus → train → extract → score → table) on a small corpus."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_synthetic_recipe_end_to_end(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    corpus = (
        "--train-speakers 60 --train-utts 12 --test-speakers 10 --test-utts 6 "
        "--dev-speakers 6 --dev-utts 4 --min-sec 2 --max-sec 3 --workers 2"
    )
    cmd = [
        "bash", str(REPO / "recipes/synthetic/run.sh"),
        "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"), "--corpus_args", corpus, "--",
        "trainer.max_epochs=15", "data.batch_size=32", "data.num_workers=0", "trainer.enable_progress_bar=false",
        "head=aam", "head.scale=30", "features.num_mel_bins=80",
        "model.channels=[128,128,128,128,256]", "model.embed_dim=128", "model.segment_dims=[]",
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    xvec = json.loads((tmp_path / "exp/xvector/scores_cosine/metrics.json").read_text())
    base = json.loads((tmp_path / "exp/baseline/scores_cosine/metrics.json").read_text())
    # About a minute of training on 60 speakers: the net must clearly beat chance and the baseline.
    assert xvec["eer"] < 0.30, xvec  # chance is 0.5: the net has learned speakers
    assert xvec["eer"] < base["eer"], (xvec, base)
    asnorm = json.loads((tmp_path / "exp/xvector/scores_cosine_asnorm/metrics.json").read_text())
    assert asnorm["eer"] < 0.30 and "cllr" in asnorm and asnorm["decision"]["chosen_on"] == "dev"
    assert (tmp_path / "exp/xvector/scores_plda/calibration.json").is_file()
    table = (tmp_path / "exp/results.md").read_text()
    assert "x-vector" in table and "AS-norm" in table and "baseline" in table
    assert (tmp_path / "exp/det.png").read_bytes()[:4] == b"\x89PNG"
    assert "EER" in result.stdout
