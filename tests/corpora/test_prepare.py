"""Folder tree / table → Kaldi lists (xvector.corpora.prepare, scripts/prepare_dir.py)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.corpora.prepare import (
    prepare_data_dir,
    read_table,
    scan_tree,
    split_speakers,
    utterance_id,
)
from xvector.data.lists import load_data_dir, read_kaldi_map, read_spk2utt

REPO = Path(__file__).resolve().parents[2]


def _tree(root, rels, seconds=0.1):
    for i, rel in enumerate(rels):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".txt":
            path.write_text("not audio")
            continue
        sf.write(path, np.full(int(16000 * seconds), 0.01 * (i + 1), dtype=np.float32), 16000)
    return root


def test_utterance_id():
    assert utterance_id("id10001", "1zcIwhmdeo4/00001.wav") == "id10001-1zcIwhmdeo4-00001"
    assert utterance_id("bob", "bob/x.flac") == "bob-x"  # a leading speaker folder is not repeated
    assert utterance_id("a_b", "my take/1.wav") == "a_b-my_take-1"


def test_tree_to_sorted_lists(tmp_path):
    root = _tree(tmp_path / "corpus", ["spkB/s1/1.wav", "spkA/2.flac", "spkA/sub dir/1.wav", "spkB/notes.txt"])
    report = prepare_data_dir(root, tmp_path / "out")
    assert (report.num_utts, report.num_speakers, report.skipped) == (3, 2, {})
    out = tmp_path / "out"
    assert (out / "utt2spk").read_text() == "spkA-2 spkA\nspkA-sub_dir-1 spkA\nspkB-s1-1 spkB\n"
    assert read_spk2utt(out / "spk2utt") == {"spkA": ["spkA-2", "spkA-sub_dir-1"], "spkB": ["spkB-s1-1"]}
    data = load_data_dir(out)  # validates order, ids and that the files exist
    assert data.wavs["spkA-2"] == (root / "spkA/2.flac").absolute()
    assert sorted(p.name for p in out.iterdir()) == ["spk2utt", "utt2spk", "wav.scp"]  # no temporaries


def test_tree_errors(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        scan_tree(tmp_path / "missing")
    root = _tree(tmp_path / "c1", ["loose.wav"])
    with pytest.raises(ValueError, match=r"loose\.wav: audio file outside a speaker folder"):
        scan_tree(root)
    root = _tree(tmp_path / "c2", ["s/a.wav", "s/a.flac"])
    with pytest.raises(ValueError, match=r"utterance id 's-a' is also that of .*a\.(wav|flac)"):
        prepare_data_dir(root, tmp_path / "out")
    (tmp_path / "c3" / "s").mkdir(parents=True)
    with pytest.raises(ValueError, match="no usable audio files"):
        prepare_data_dir(tmp_path / "c3", tmp_path / "out")


def test_unreadable_and_empty_files_are_skipped_and_counted(tmp_path):
    root = _tree(tmp_path / "c", ["s1/good.wav", "s2/good.wav"])
    (root / "s1" / "junk.wav").write_text("not audio")
    sf.write(root / "s2" / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    report = prepare_data_dir(root, tmp_path / "out")
    assert report.num_utts == 2
    assert {k: len(v) for k, v in report.skipped.items()} == {"unreadable audio": 1, "empty audio": 1}
    assert "skipped 1 (empty audio)" in report.summary() and "skipped 1 (unreadable audio)" in report.summary()


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_table(tmp_path, suffix, sep):
    _tree(tmp_path / "audio", ["x/a.wav", "y/b.wav", "c.wav"])
    table = tmp_path / f"list{suffix}"
    table.write_text(f"path{sep}speaker\naudio/x/a.wav{sep}alice\naudio/y/b.wav{sep}bob\naudio/c.wav{sep}bob\n")
    utts = read_table(table)
    assert sorted(u for u, _, _ in utts) == ["alice-x-a", "bob-c", "bob-y-b"]
    prepare_data_dir(table, tmp_path / "out")
    assert read_kaldi_map(tmp_path / "out" / "utt2spk") == {"alice-x-a": "alice", "bob-c": "bob", "bob-y-b": "bob"}


def test_table_errors(tmp_path):
    _tree(tmp_path, ["a.wav"])
    bad = tmp_path / "bad.csv"
    bad.write_text("a.wav,alice\na.wav\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2: expected 'path,speaker'"):
        read_table(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("a.wav,alice\nnope.wav,bob\n")
    with pytest.raises(ValueError, match=r"missing\.csv: listed audio file for 'bob-nope' does not exist"):
        prepare_data_dir(missing, tmp_path / "out")
    (tmp_path / "empty.csv").write_text("path,speaker\n")
    with pytest.raises(ValueError, match="holds no rows"):
        read_table(tmp_path / "empty.csv")


def test_split_speakers_is_deterministic_and_disjoint(tmp_path):
    rels = [f"s{s}/{u}.wav" for s in range(6) for u in range(2)] + ["lonely/0.wav"]
    root = _tree(tmp_path / "c", rels, seconds=0.01)
    results = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        prepare_data_dir(root, out / "train")
        moved = split_speakers(out / "train", {out / "dev": 2, out / "test": 1}, seed=3)
        results.append({Path(k).name: v for k, v in moved.items()})
        train = set(load_data_dir(out / "train").speakers)
        dev, test = (set(load_data_dir(out / d).speakers) for d in ("dev", "test"))
        assert len(dev) == 2 and len(test) == 1 and not (train & dev or train & test or dev & test)
        assert "lonely" in train  # single-utterance speakers are never held out
    assert results[0] == results[1]
    with pytest.raises(ValueError, match="cannot hold out 7 speakers"):
        split_speakers(tmp_path / "run0" / "train", {tmp_path / "x": 7})


def test_prepare_dir_script(tmp_path):
    root = _tree(tmp_path / "c", [f"s{s}/{u}.wav" for s in range(4) for u in range(3)], seconds=0.01)
    cmd = [sys.executable, str(REPO / "scripts/prepare_dir.py"), str(root), str(tmp_path / "d" / "train"),
           "--holdout", "dev=1"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "12 utterances, 4 speakers" in result.stdout
    assert len(load_data_dir(tmp_path / "d" / "dev").speakers) == 1
    result = subprocess.run([sys.executable, str(REPO / "scripts/prepare_dir.py"), str(tmp_path / "nope"),
                             str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.strip().endswith("nope: not a folder")
