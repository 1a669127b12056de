"""SITW preparation and the VoxCeleb1 overlap filter on tiny fake trees (no download)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.corpora.prepare import write_lists
from xvector.corpora.sitw import drop_overlap, prepare_sitw, read_overlap
from xvector.data.enrollment import read_enroll_map
from xvector.data.lists import load_data_dir, read_trials

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sitw(tmp_path):
    root = tmp_path / "sitw_database.v4"
    rng = np.random.default_rng(0)
    for part, files in {"dev": ["aaxom", "unotx", "bbfqa", "zzkop"], "eval": ["eqwer", "tykks", "mmqop"]}.items():
        for name in files:
            (root / part / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(root / part / "audio" / f"{name}.flac", (0.1 * rng.standard_normal(1600)).astype(np.float32),
                     16000, format="FLAC")
        (root / part / "lists").mkdir()
        (root / part / "keys").mkdir()
    (root / "dev/lists/enroll-core.lst").write_text("12013 audio/unotx.flac\n10030 audio/aaxom.flac\n")
    (root / "dev/keys/core-core.lst").write_text("12013 audio/bbfqa.flac tgt\n12013 audio/zzkop.flac imp\n"
                                                "10030 audio/zzkop.flac tgt\n10030 audio/bbfqa.flac imp\n")
    (root / "eval/lists/enroll-core.lst").write_text("20001 audio/eqwer.flac\n")
    (root / "eval/keys/core-core.lst").write_text("20001 audio/tykks.flac tgt\n20001 audio/mmqop.flac imp\n")
    return root


def test_sitw_enrolment_maps_and_core_core_trials(sitw, tmp_path):
    lines = prepare_sitw(sitw, tmp_path / "data")
    assert lines == [f"{tmp_path / 'data/sitw_dev'}: 4 recordings, 2 models, 4 core-core trials (2 target)",
                     f"{tmp_path / 'data/sitw_eval'}: 3 recordings, 1 models, 2 core-core trials (1 target)"]
    dev = load_data_dir(tmp_path / "data/sitw_dev")
    assert dev.utts == ["aaxom", "bbfqa", "unotx", "zzkop"] and dev.utt2spk["bbfqa"] == "bbfqa"
    assert read_enroll_map(tmp_path / "data/sitw_dev/enroll.map") == {"10030": ["aaxom"], "12013": ["unotx"]}
    trials = read_trials(tmp_path / "data/sitw_dev/trials", require_both_classes=True)
    assert [(t.enroll, t.test, t.target) for t in trials][:2] == [("12013", "bbfqa", True), ("12013", "zzkop", False)]
    from xvector.data.validate import validate_data_dir

    assert validate_data_dir(tmp_path / "data/sitw_dev", min_duration_sec=0.05).errors == 0  # models via enroll.map


@pytest.mark.parametrize("name, text, message", [
    ("keys/core-core.lst", "12013 audio/bbfqa.flac maybe\n", r"core-core.lst:1: expected '<model> audio/<id>.flac tgt\|imp'"),
    ("keys/core-core.lst", "99999 audio/bbfqa.flac tgt\n", r"core-core.lst:1: model '99999' is not in enroll-core.lst"),
    ("lists/enroll-core.lst", "12013 audio/gone.flac\n", r"enroll-core.lst:1: audio file does not exist: .*gone.flac"),
])
def test_bad_sitw_lists_are_named(sitw, tmp_path, name, text, message):
    (sitw / "dev" / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        prepare_sitw(sitw, tmp_path / "data")


def test_overlap_speakers_are_dropped_from_training_lists(tmp_path):
    rng = np.random.default_rng(1)
    utts = []
    for spk in ("id10001", "id10002", "id10003", "id00012"):
        for u in range(2):
            path = tmp_path / "wav" / spk / f"{u}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(800)).astype(np.float32), 16000)
            utts.append((f"{spk}-v-{u:05d}", spk, path))
    write_lists(tmp_path / "train", utts)
    meta = tmp_path / "vox1_meta.csv"
    meta.write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                    "id10001\tA.J._Buckley\tm\tIreland\tdev\nid10002\tA.R._Rahman\tm\tIndia\tdev\n"
                    "id10003\tAaron_Tveit\tm\tUSA\tdev\n")
    overlap = tmp_path / "voxceleb1_sitw_overlap.txt"
    overlap.write_text("A.R._Rahman\nid10003\nNot_In_Training\n")
    with pytest.raises(ValueError, match=r"overlap.txt:3: speaker 'Not_In_Training' is not a VoxCeleb1 id nor a name"):
        read_overlap(overlap, meta)
    overlap.write_text("A.R._Rahman\nid10003\n")
    assert read_overlap(overlap, meta) == {"id10002", "id10003"}
    summary = drop_overlap(tmp_path / "train", tmp_path / "train_no_sitw", read_overlap(overlap, meta))
    assert summary.endswith("dropped 2 speakers (4 utterances) of the 2 listed; 2 speakers left")
    assert load_data_dir(tmp_path / "train_no_sitw").speakers == ["id00012", "id10001"]
    r = subprocess.run([sys.executable, "scripts/prepare_sitw.py", "--train-dir", str(tmp_path / "train"),
                        "--overlap", str(overlap), "--vox1-meta", str(meta)], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "dropped 2 speakers" in r.stdout, r.stderr
    assert (tmp_path / "train_no_sitw" / "utt2spk").read_text().count("\n") == 4
