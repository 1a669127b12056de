"""CN-Celeb preparation on a tiny fake tree with the corpus's layout (no download)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.corpora.cnceleb import prepare_cnceleb
from xvector.data.enrollment import read_enroll_map
from xvector.data.lists import load_data_dir, read_trials
from xvector.data.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]


def _audio(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(1600)).astype(np.float32), 16000,
             format="FLAC")


@pytest.fixture
def cn1(tmp_path):
    """Train speakers id00000-1, eval speakers id00800-1; lists name .wav files, the tree holds .flac."""
    root = tmp_path / "CN-Celeb_flac"
    files = ["id00000/singing-01-001", "id00000/speech-02-001", "id00001/vlog-01-003",
             "id00800/singing-01-001", "id00800/singing-01-002", "id00800/drama-03-001",
             "id00801/interview-01-001", "id00801/interview-01-004"]
    for i, rel in enumerate(files):
        _audio(root / "data" / f"{rel}.flac", i)
    for i, name in enumerate(["id00800-enroll", "id00801-enroll"]):
        _audio(root / "eval" / "enroll" / f"{name}.flac", 20 + i)
    for i, name in enumerate(["id00800-drama-03-002", "id00801-vlog-02-001", "id00801-movie-01-001"]):
        _audio(root / "eval" / "test" / f"{name}.flac", 30 + i)
    (root / "dev").mkdir()
    (root / "dev" / "dev.lst").write_text("id00000\nid00001\n")
    lists = root / "eval" / "lists"
    lists.mkdir(parents=True)
    (lists / "enroll.lst").write_text("id00800-enroll enroll/id00800-enroll.wav\nid00801-enroll enroll/id00801-enroll.wav\n")
    (lists / "enroll.map").write_text("id00801-enroll id00801/interview-01-001.wav id00801/interview-01-004.wav\n"
                                      "id00800-enroll id00800/singing-01-001.wav id00800/singing-01-002.wav\n")
    (lists / "trials.lst").write_text("id00800-enroll test/id00800-drama-03-002.wav 1\n"
                                      "id00800-enroll test/id00801-vlog-02-001.wav 0\n"
                                      "id00801-enroll test/id00801-movie-01-001.wav 1\n"
                                      "id00801-enroll test/id00800-drama-03-002.wav 0\n")
    return root


def test_cnceleb_lists_map_and_trials(cn1, tmp_path):
    out = tmp_path / "data"
    cn2 = tmp_path / "CN-Celeb2_flac"
    _audio(cn2 / "data" / "id10000" / "recitation-01-001.flac", 40)
    (cn2 / "spk.lst").write_text("id10000\n")
    summary = prepare_cnceleb(cn1, out, cn2)
    assert summary.startswith("train: 4 utterances of 3 speakers; eval: 7 utterances, 2 models, 4 trials (2 target)")
    train = load_data_dir(out / "train")
    assert train.utts == ["id00000-singing-01-001", "id00000-speech-02-001", "id00001-vlog-01-003",
                          "id10000-recitation-01-001"]
    assert train.speakers == ["id00000", "id00001", "id10000"]  # eval speakers are not trained on
    assert read_enroll_map(out / "eval" / "enroll.map") == {
        "id00800-enroll": ["id00800-singing-01-001", "id00800-singing-01-002"],
        "id00801-enroll": ["id00801-interview-01-001", "id00801-interview-01-004"]}
    trials = read_trials(out / "eval" / "trials", require_both_classes=True)
    assert [(t.enroll, t.test, t.target) for t in trials][:2] == [
        ("id00800-enroll", "id00800-drama-03-002", True), ("id00800-enroll", "id00801-vlog-02-001", False)]
    ev = load_data_dir(out / "eval")
    assert set(ev.utts) == {"id00800-singing-01-001", "id00800-singing-01-002", "id00801-interview-01-001",
                            "id00801-interview-01-004", "id00800-drama-03-002", "id00801-vlog-02-001",
                            "id00801-movie-01-001"}
    assert ev.utt2spk["id00801-movie-01-001"] == "id00801"
    assert ev.wavs["id00800-singing-01-001"] == cn1 / "data" / "id00800" / "singing-01-001.flac"  # .wav in the list
    joined = load_data_dir(out / "eval_enroll")
    assert joined.utts == ["id00800-enroll", "id00801-enroll"] and joined.utt2spk["id00801-enroll"] == "id00801"
    assert validate_data_dir(out / "eval", min_duration_sec=0.05).errors == 0


@pytest.mark.parametrize("name, text, message", [
    ("trials.lst", "id00800-enroll test/id00800-drama-03-002.wav yes\n", r"trials.lst:1: expected '<model> test/"),
    ("trials.lst", "id00999-enroll test/id00800-drama-03-002.wav 1\n", r"trials.lst:1: model 'id00999-enroll' is not"),
    ("trials.lst", "id00800-enroll test/id00800-nope-01-001.wav 1\n", r"trials.lst:1: .*id00800-nope-01-001: audio file does not exist"),
    ("enroll.map", "id00800-enroll id00800/missing-01-001.wav\n", r"enroll.map:1: .*missing-01-001.wav: audio file does not exist"),
])
def test_bad_lists_are_named(cn1, tmp_path, name, text, message):
    (cn1 / "eval" / "lists" / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        prepare_cnceleb(cn1, tmp_path / "data")


def test_script_reports_one_line(cn1, tmp_path):
    r = subprocess.run([sys.executable, "scripts/prepare_cnceleb.py", "--cn1", str(cn1), "--out", str(tmp_path / "d")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("train: 3 utterances of 2 speakers"), r.stderr
    (cn1 / "dev" / "dev.lst").write_text("id00000\nid00005\n")
    r = subprocess.run([sys.executable, "scripts/prepare_cnceleb.py", "--cn1", str(cn1), "--out", str(tmp_path / "d")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().endswith("dev.lst: speaker 'id00005' has no folder " +
                                                         str(cn1 / "data" / "id00005"))
