"""The robustness benchmark end to end on a tiny corpus: corpus → ours via the custom recipe →
evaluation of clean / same-language / noisy trials → baseline → results table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_NET

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.slow
def test_robust_recipe_end_to_end(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    common = ["--voices", "formant", "--data", str(data), "--exp", str(exp)]
    corpus = ("--train-speakers 4 --train-utts 3 --eval-speakers 4 --eval-utts 3 --langs 2 "
              "--min-sec 1.0 --max-sec 1.2 --trials 24 --workers 1")
    r = subprocess.run(["bash", "recipes/robust/run.sh", *common, "--stop_stage", "3", "--corpus_args", corpus,
                        "--custom_args", "--crops 24 --min_epochs 2 --max_epochs 2 --targets 6 --nontargets 6", "--",
                        *TINY_NET, "trainer.enable_progress_bar=false"],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ours = json.loads((exp / "formant" / "xvector" / "eval" / "dev.json").read_text())
    backends = ("cosine", "asnorm", "plda", "plda_aug")  # plda_aug: trained on train + train_aug
    conditions = ("clean", "same_lang", "noisy", "channel")  # channel: the harsher-channel copy stage 0 makes
    assert set(ours["results"]) == {f"{b}/{c}" for b in backends for c in conditions}
    assert (data / "formant" / "test_channel" / "trials").is_file()
    assert len((data / "formant" / "train_aug" / "wav.scp").read_text().splitlines()) == 2 * 4 * 3  # two copies each
    assert ours["lda_dim"] == 3  # 4 training speakers: LDA capped at speakers - 1
    assert all(0.0 <= m["eer"] <= 1.0 for m in ours["results"].values())
    assert (exp / "formant" / "mfcc" / "dev.json").is_file()
    r = subprocess.run(["bash", "recipes/robust/run.sh", *common, "--stage", "5"], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    table = (exp / "results_dev.md").read_text()
    assert "| xvector | cosine (training mean subtracted) |" in table and "| mean MFCC, no training |" in table
    assert "formant: harsher channel |" in table
    assert "| mean MFCC, no training | LDA + PLDA, trained on clean + augmented copies |" in table
