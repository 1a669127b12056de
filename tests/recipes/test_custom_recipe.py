"""The custom-corpus recipe: prepare → validate → run, on a tiny tree of noise files."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import TINY_NET
from xvector.data.lists import read_trials

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _corpus(root: Path, speakers: int, utts: int) -> Path:
    rng = np.random.default_rng(0)
    for s in range(speakers):
        tone = rng.uniform(100, 400)  # a speaker "voice": a tone plus noise
        for u in range(utts):
            t = np.arange(int(16000 * rng.uniform(1.0, 1.5))) / 16000
            wav = 0.3 * np.sin(2 * np.pi * tone * t) + 0.05 * rng.standard_normal(len(t))
            path = root / f"spk{s:02d}" / f"session{u % 2}" / f"{u:03d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, wav.astype(np.float32), 16000)
    return root


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def _prepare(tmp_path: Path, speakers: int, utts: int) -> Path:
    train, test = _corpus(tmp_path / "train", speakers, utts), _corpus(tmp_path / "test", 4, 4)
    data = tmp_path / "data"
    for src, out, extra in [(train, "train", ["--holdout", "dev=3"]), (test, "test", [])]:
        r = _run(sys.executable, "scripts/prepare_dir.py", str(src), str(data / out), *extra)
        assert r.returncode == 0, r.stderr
    return data


def test_stage0_makes_trials_and_validates(tmp_path):
    data = _prepare(tmp_path, speakers=6, utts=3)
    r = _run("bash", "recipes/custom/run.sh", "--data", str(data), "--exp", str(tmp_path / "exp"),
             "--stop_stage", "0", "--targets", "10", "--nontargets", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(read_trials(data / "test" / "trials", require_both_classes=True)) == 20
    assert r.stdout.count("OK: 0 errors") == 3
    # A broken file makes stage 0 fail, with the file named.
    sf.write(next((data / "../test").resolve().rglob("*.wav")), np.zeros(16000, np.float32), 16000)
    r = _run("bash", "recipes/custom/run.sh", "--data", str(data), "--exp", str(tmp_path / "exp"), "--stop_stage", "0")
    assert r.returncode == 1 and "ERROR   silent (1)" in r.stdout


@pytest.mark.slow
def test_custom_recipe_end_to_end(tmp_path):
    data = _prepare(tmp_path, speakers=12, utts=6)
    r = _run("bash", "recipes/custom/run.sh", "--data", str(data), "--exp", str(tmp_path / "exp"),
             "--targets", "20", "--nontargets", "20", "--",
             *TINY_NET, "trainer.max_epochs=2", "trainer.enable_progress_bar=false", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    metrics = json.loads((tmp_path / "exp/xvector/scores_cosine/metrics.json").read_text())
    assert 0.0 <= metrics["eer"] <= 1.0
    assert "LDA + PLDA" in (tmp_path / "exp/results.md").read_text()
    # the PLDA trained on the clean training embeddings and on two corrupted copies of each
    n_train = len((data / "train" / "wav.scp").read_text().splitlines())
    aug_ids = [line.split()[0] for line in (tmp_path / "exp/train_aug/wav.scp").read_text().splitlines()]
    assert len(aug_ids) == 2 * n_train
    assert sorted(u.rsplit("-aug", 1)[1] for u in aug_ids) == ["1"] * n_train + ["2"] * n_train
    plda_cfg = (tmp_path / "exp/xvector/scores_plda/.hydra_score/config.yaml").read_text()
    assert "train_aug.npz" in plda_cfg and "train.npz" in plda_cfg and "train_aug/utt2spk" in plda_cfg
    # the primary back end is the one with the lower dev EER, and results.md lists it first
    run = tmp_path / "exp/xvector"
    dev_eer = {b: json.loads((run / f"dev_scores_{b}/metrics.json").read_text())["eer"] for b in ("cosine", "plda")}
    primary = (run / "primary_backend").read_text().strip()
    assert primary == ("plda" if dev_eer["plda"] < dev_eer["cosine"] else "cosine")
    first_row = (tmp_path / "exp/results.md").read_text().splitlines()[2]
    assert ": primary (the lower EER on" in first_row and ("PLDA" in first_row) == (primary == "plda")
    assert "primary back end: " in r.stdout


@pytest.mark.slow
def test_without_dev_trains_a_fixed_schedule_without_validation_warnings(tmp_path):
    data = _prepare(tmp_path, speakers=8, utts=4)
    shutil.rmtree(data / "dev")  # a corpus with train and test only
    exp = tmp_path / "exp"
    r = _run("bash", "recipes/custom/run.sh", "--data", str(data), "--exp", str(exp),
             "--targets", "10", "--nontargets", "10", "--crops", "20", "--min_epochs", "3", "--max_epochs", "3", "--",
             *TINY_NET, "trainer.enable_progress_bar=false", "augment@data=none", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "training 3 epochs without validation" in r.stdout
    log = r.stdout + r.stderr
    assert "val/eer" not in log, log[-3000:]  # no metric asked for that never comes, no per-epoch warning
    assert "epoch 3/3" in log
    assert "at most 10 min of training" in r.stdout and "time budget 10.0 min: all 3 epochs fit" in log
    ckpts = sorted(p.name for p in (exp / "xvector" / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt"], ckpts
    # no dev set to choose the back end on: 5 training speakers (3 of 8 held out), fewer than --plda_speakers 64
    assert "primary back end: cosine (training mean subtracted) (no dev set: 5 training speakers" in r.stdout
    assert (exp / "xvector" / "primary_backend").read_text() == "cosine\n"


@pytest.mark.slow
def test_average_extracts_with_the_mean_of_the_last_checkpoints(tmp_path):
    """--average 2 over 4 epochs: the periodic checkpoints of epochs 3 and 4 are kept, their mean
    is the model stage 2 embeds with (model_path names it, as an absolute path though --exp is
    given relative to the clone)."""
    data = _prepare(tmp_path, speakers=8, utts=4)
    exp = tmp_path / "exp"
    r = _run("bash", "recipes/custom/run.sh", "--data", str(data), "--exp", os.path.relpath(exp, REPO), "--stop_stage", "2",
             "--targets", "10", "--nontargets", "10", "--crops", "20", "--crops_utts", "10", "--min_epochs", "4",
             "--max_epochs", "4", "--average", "2", "--", *TINY_NET, "trainer.enable_progress_bar=false",
             "augment@data=none", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # 20 training utterances, more than --crops_utts 10: trained in full, without a time budget
    assert "4 epochs over 20 utterances, no time budget: 20 utterances, more than --crops_utts 10)" in r.stdout
    # --crops is not the total above --crops_utts: the plan says what it grew to (20 * sqrt(2) = 28.3)
    assert ("--crops 20 is for up to --crops_utts 10 utterances; 20 get 20 x sqrt(20 / 10) = 28 crops in all, "
            "4 epochs") in r.stdout
    run = exp / "xvector"
    assert (run / "model_path").read_text().strip() == str((run / "averaged.ckpt").resolve())
    periodic = sorted((run / "checkpoints").glob("step*.ckpt"))
    assert len(periodic) == 2
    states = [torch.load(p, map_location="cpu", weights_only=False) for p in periodic]
    assert [s["epoch"] for s in states] == [2, 3]  # 0-based: epochs 3 and 4
    averaged = torch.load(run / "averaged.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    floats = [k for k, v in averaged.items() if v.is_floating_point()]
    assert floats
    for key in floats:
        torch.testing.assert_close(averaged[key], (states[0]["state_dict"][key] + states[1]["state_dict"][key]) / 2)
    assert (run / "test.npz").is_file() and (run / "train.npz").is_file()
