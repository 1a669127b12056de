"""xvector-validate: every kind of problem counted, located (file:line utterance) and exit codes."""

import os

import numpy as np
import pytest
import soundfile as sf

from xvector.cli.validate import main
from xvector.data.lists import write_trials
from xvector.data.validate import validate_data_dir


@pytest.fixture
def good(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"a": 3, "b": 3}, seconds=0.5)
    write_trials(root / "trials", [("a-u00", "a-u01", True), ("a-u00", "b-u00", False)])
    return root


def _kinds(root, **kw):
    report = validate_data_dir(root, min_duration_sec=0.1, **kw)
    return {k: v for k, v in report.problems.items()}, report


def _wav_path(root, utt):
    line = next(x for x in (root / "wav.scp").read_text().splitlines() if x.startswith(utt + " "))
    return line.split(maxsplit=1)[1]


def test_clean_directory(good, capsys):
    kinds, report = _kinds(good)
    assert kinds == {} and report.errors == 0 and (report.num_utts, report.num_speakers) == (6, 2)
    assert main([str(good), "--min-duration", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "6 utterances, 2 speakers" in out and "OK: 0 errors, 0 warnings" in out


def test_list_problems_located(good):
    lines = (good / "wav.scp").read_text().splitlines()
    (good / "wav.scp").write_text("\n".join([lines[1], lines[0], lines[0], "lonely", *lines[2:]]) + "\n")
    kinds, _ = _kinds(good)
    assert kinds["unsorted"] == [f"{good}/wav.scp:2: 'a-u00' after 'a-u01'"]
    assert kinds["duplicate-id"] == [f"{good}/wav.scp:3: 'a-u00' (first on line 2)"]
    assert kinds["bad-line"] == [f"{good}/wav.scp:4: expected '<id> <value>', got 'lonely'"]


def test_lists_disagree_and_spk2utt(good):
    (good / "utt2spk").write_text("a-u00 a\na-u01 a\na-u02 a\nb-u00 b\nb-u01 b\nb-u09 b\n")
    kinds, _ = _kinds(good)
    assert sorted(kinds["lists-disagree"]) == sorted([
        f"{good}/wav.scp:6: 'b-u02' has no speaker in utt2spk",
        f"{good}/utt2spk:6: 'b-u09' has no audio in wav.scp",
        f"{good}/spk2utt: speaker 'b' differs from utt2spk",
    ])
    (good / "spk2utt").unlink()
    assert "no-spk2utt" in _kinds(good)[0]


def test_missing_audio_file(good):
    path = _wav_path(good, "a-u01")
    os.remove(path)
    kinds, report = _kinds(good)
    assert kinds == {"audio-missing": [f"{good}/wav.scp:2 a-u01: {path}"]} and report.errors == 1


@pytest.mark.parametrize(
    "make, kind, detail",
    [
        (lambda p: open(p, "wb").close(), "undecodable", "cannot open"),
        (lambda p: open(p, "w").write("text, not audio\n" * 20), "undecodable", "cannot open"),
        (lambda p: open(p, "r+b").truncate(44 + 2 * 4000), "undecodable", "truncated: header declares"),
        (lambda p: sf.write(p, np.full(8000, 0.1, np.float32), 8000), "sample-rate", "8000 Hz, expected 16000 Hz"),
        (lambda p: sf.write(p, np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT"), "non-finite",
         "8000 NaN or infinite samples"),
        (lambda p: sf.write(p, np.zeros(8000, np.float32), 16000), "silent", "all 8000 samples are zero"),
        (lambda p: sf.write(p, 0.1 * np.ones((8000, 2), np.float32), 16000), "multi-channel", "2 channels"),
        (lambda p: sf.write(p, 0.1 * np.ones(800, np.float32), 16000), "short", "0.05 s < 0.1 s"),
    ],
)
def test_audio_problems(good, make, kind, detail):
    path = _wav_path(good, "b-u01")
    make(path)
    kinds, report = _kinds(good)
    assert list(kinds) == [kind]
    assert len(kinds[kind]) == 1 and kinds[kind][0].startswith(f"{good}/wav.scp:5 b-u01: ")
    assert detail in kinds[kind][0]
    assert report.errors == (0 if kind in ("multi-channel", "short") else 1)


def test_corrupt_flac(good):
    path = _wav_path(good, "a-u02")
    flac = good / "a.flac"
    sf.write(flac, 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) // 2])
    (good / "wav.scp").write_text((good / "wav.scp").read_text().replace(path, str(flac)))
    kinds, _ = _kinds(good)
    assert list(kinds) == ["undecodable"] and "cannot decode" in kinds["undecodable"][0]
    assert list(_kinds(good, decode=False)[0]) == []  # headers only: the damage is not seen


def test_trial_problems(good):
    (good / "trials").write_text("a-u00 a-u01 target\na-u00 zz target\na-u00 a-u00 target\nfoo\na-u01 a-u00 target\n")
    (good / "trials_empty").write_text("")
    (good / "trials_x.tmp").write_text("")  # any trials_* file is a trial list
    kinds, _ = _kinds(good)
    assert kinds["trials-unknown-utt"] == [f"{good}/trials:2: 'zz' is not in wav.scp"]
    assert kinds["trials-self"] == [f"{good}/trials:3: 'a-u00' against itself"]
    assert kinds["trials-bad-line"] == [f"{good}/trials:4: expected '<enroll> <test> target|nontarget'"]
    assert kinds["trials-duplicate"] == [f"{good}/trials:5: a-u01 a-u00"]
    assert kinds["trials-one-class"] == [f"{good}/trials: only target trials (4)"]
    assert sorted(kinds["trials-empty"]) == [f"{good}/trials_empty: no trials", f"{good}/trials_x.tmp: no trials"]


def test_cli_report_and_exit_codes(good, capsys):
    (good / "trials").write_text("a-u00 a-u01 target\n")
    for utt in ("a-u01", "a-u02", "b-u00", "b-u01"):
        sf.write(_wav_path(good, utt), np.zeros(8000, np.float32), 16000)
    assert main([str(good), "--min-duration", "0.1", "--max-examples", "2"]) == 1
    out = capsys.readouterr().out
    assert "ERROR   silent (4)" in out and "... and 2 more" in out
    assert "ERROR   trials-one-class (1)" in out and "FAILED: 5 errors, 0 warnings" in out
    assert f"{good}/wav.scp:2 a-u01: all 8000 samples are zero" in out


def test_cli_strict_fails_on_warnings(good, capsys):
    assert main([str(good)]) == 0  # 0.35-0.65 s utterances: "short" warnings only
    assert main([str(good), "--strict"]) == 1
    assert "WARNING short (6)" in capsys.readouterr().out


def test_missing_lists(tmp_path):
    kinds, report = _kinds(tmp_path)
    assert len(kinds["list-missing"]) == 2 and report.errors == 2
