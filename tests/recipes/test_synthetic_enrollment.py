"""The synthetic recipe's enrolment and identification stage (4) and the tables (5), on a tiny
corpus with an untrained tiny net (the numbers are not checked, the plumbing is)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xvector.inference.model_dir import init_checkpoint, tiny_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_enrolment_and_identification_stages(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    data, exp = tmp_path / "data", tmp_path / "exp"
    corpus = ("--train-speakers 8 --train-utts 4 --test-speakers 6 --test-utts 5 --dev-speakers 4 --dev-utts 4 "
              "--min-sec 1 --max-sec 1.5 --workers 1")
    base = ["bash", str(REPO / "recipes/synthetic/run.sh"), "--data", str(data), "--exp", str(exp),
            "--corpus_args", corpus, "--enroll_utts", "2", "--unknown_speakers", "2"]
    r = subprocess.run([*base, "--stop_stage", "0"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    init_checkpoint(exp / "xvector" / "checkpoints" / "last.ckpt", tiny_config())  # no training: plumbing only
    r = subprocess.run([*base, "--stage", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "4 models x 2 utterances, 22 queries (12 mated, 10 of 2 unknown speakers), 88 trials (12 target)" in r.stdout
    run = exp / "xvector"
    for name in ("scores_enroll_cosine", "scores_enroll_plda", "scores_enroll_concat_cosine"):
        m = json.loads((run / name / "metrics.json").read_text())
        assert m["num_trials"] == 88 and "min_c_primary" in m and "act_c_primary" in m  # calibrated on dev
    ident = json.loads((run / "identify_plda" / "metrics.json").read_text())
    assert (ident["num_mated"], ident["num_nonmated"], ident["search"]["speakers"]) == (12, 10, 4)
    assert {"top1_acc", "dir_at_fpir_0.01", "decision"} <= set(ident)
    table = (exp / "results.md").read_text()
    assert "2-utterance models (Concat), cosine |" in table and "| x-vector, LDA + PLDA, 2-utterance models |" in table
    assert "enrolment + identification" in (exp / "time_stage4").read_text()
