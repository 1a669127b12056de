"""Issue 18's adversarial cases replayed end to end, with every file made in tmp_path.

Each test is named after the case it replays (``test_case<N>_...``); all of them failed before
the fix. Case 1: ``--overwrite`` data loss. Case 2: NaN becoming a score. Case 3: stale
embeddings on resume. Case 4: int16 and soundfile array layouts in the API (and the
exporter's torchvision notices). Case 5: an operating point of another mean. Case 6: the
README's fault table (truncated, missing, silent and short files; one-line errors; empty
``wav.scp``; scalar ``p_targets``; ``--help`` groups; ``onnx_verify.py``'s resampler).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

import xvector
from xvector.cli import export as export_cli
from xvector.cli import verify as verify_cli
from xvector.cli.extract import extract
from xvector.cli.score import score_embeddings
from xvector.data.lists import Trial, write_trials
from xvector.embeddings import load_embeddings, save_embeddings
from xvector.inference import extraction as extract_mod
from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


def _noise(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def _run(module: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("XVECTOR_DEBUG", "HYDRA_FULL_ERROR")}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**environ, **env})


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """An experiment folder: tiny.ckpt, its model directory and two wavs."""
    d = tmp_path_factory.mktemp("exp")
    ckpt = init_checkpoint(d / "tiny.ckpt", tiny_config(), seed=1)
    model = write_model_dir(d / "model", ckpt)
    wav = d / "wav"
    wav.mkdir()
    sf.write(wav / "a.wav", _noise(1.0, 1), RATE)
    sf.write(wav / "b.wav", _noise(1.3, 2), RATE)
    return {"dir": d, "ckpt": ckpt, "model": model, "wav": wav}


@pytest.fixture(scope="module")
def onnx_model(exp):
    """``xvector-export --format onnx`` of the tiny checkpoint, and what ``torch.onnx`` logged meanwhile."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    onnx_log = logging.getLogger("torch.onnx")
    onnx_log.addHandler(handler)
    try:
        export_cli.main([str(exp["ckpt"]), str(exp["dir"] / "onnx_model"), "--format", "onnx"])
    finally:
        onnx_log.removeHandler(handler)
    return exp["dir"] / "onnx_model", records


# --- case 1: --overwrite must not delete what the tool did not write ---------------------------


def test_case1_overwrite_refuses_the_experiment_folder(exp, tmp_path, capsys):
    folder = tmp_path / "exp2"
    folder.mkdir()
    ckpt = shutil.copy(exp["ckpt"], folder / "last.ckpt")
    (folder / "notes.txt").write_text("keep me\n")
    with pytest.raises(SystemExit) as stop:
        export_cli.main([str(ckpt), str(folder), "--overwrite"])
    assert stop.value.code == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "holds the input checkpoint" in err[0]
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "notes.txt"]  # nothing lost


def test_case1_overwrite_replaces_only_a_model_directory_or_an_empty_folder(exp, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "data.txt").write_text("x\n")
    with pytest.raises(SystemExit):
        export_cli.main([str(exp["ckpt"]), str(user), "--overwrite"])
    assert "not a model directory written by xvector-export" in capsys.readouterr().err
    assert (user / "data.txt").read_text() == "x\n"

    model = write_model_dir(tmp_path / "model", exp["ckpt"])
    (model / "my_scores.txt").write_text("mine\n")  # the user's file inside a model directory
    with pytest.raises(SystemExit):
        export_cli.main([str(exp["ckpt"]), str(model), "--overwrite"])
    assert "file(s) xvector-export did not write (my_scores.txt)" in capsys.readouterr().err
    (model / "my_scores.txt").unlink()
    export_cli.main([str(exp["ckpt"]), str(model), "--overwrite"])  # its own directory: replaced
    assert json.loads((model / "info.json").read_text())["format"] == "xvector-model-dir"
    empty = tmp_path / "empty"
    empty.mkdir()
    export_cli.main([str(exp["ckpt"]), str(empty), "--overwrite"])
    assert (empty / "embedder.pt").is_file()


# --- case 2: NaN never becomes a score --------------------------------------------------------


@pytest.fixture
def scoring(tmp_path):
    """16-dim embeddings of 3 speakers x 3 utterances, all-pairs trials, a training set."""
    rng = np.random.default_rng(0)
    centres = 3 * rng.standard_normal((3, 16))
    ids = [f"s{s}-{u}" for s in range(3) for u in range(3)]
    emb = (np.repeat(centres, 3, 0) + rng.standard_normal((9, 16))).astype(np.float32)
    save_embeddings(tmp_path / "emb.npz", ids, emb)
    trials = [Trial(ids[i], ids[j], ids[i][:2] == ids[j][:2]) for i in range(9) for j in range(i + 1, 9)]
    write_trials(tmp_path / "trials", trials)
    train_ids = [f"t{s}-{u}" for s in range(4) for u in range(4)]
    save_embeddings(tmp_path / "train.npz", train_ids, rng.standard_normal((16, 16)).astype(np.float32) + 1.0)
    (tmp_path / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in train_ids))
    return tmp_path, ids, emb


def _score_cfg(root: Path, **overrides):
    from hydra import compose, initialize_config_dir

    base = {"embeddings": root / "emb.npz", "trials": root / "trials", "output_dir": root / "out", "det_plot": False}
    with initialize_config_dir(config_dir=xvector.CONFIG_DIR, version_base="1.3"):
        return compose("score", overrides=[f"{k}={v}" for k, v in {**base, **overrides}.items()])


def _with_nan(path: Path, row: int) -> None:
    ids, emb = load_embeddings(path)
    emb[row, 3] = np.nan
    np.savez(path, ids=np.asarray(ids), embeddings=emb)  # as another tool might write it


def test_case2_nan_embedding_row_is_refused_naming_the_utterance(scoring):
    root, ids, _ = scoring
    _with_nan(root / "emb.npz", 4)
    with pytest.raises(ValueError, match=rf"emb.npz: non-finite embedding for utterance '{ids[4]}' \(row 5"):
        score_embeddings(_score_cfg(root))
    assert not (root / "out" / "scores").exists()


@pytest.mark.parametrize("role", ["mean_embeddings", "train_embeddings"])
def test_case2_nan_mean_or_cohort_is_refused(scoring, role):
    root, _, _ = scoring
    _with_nan(root / "train.npz", 2)
    overrides = {role: root / "train.npz"}
    if role == "train_embeddings":  # the AS-norm cohort
        overrides.update(norm="asnorm", train_utt2spk=root / "utt2spk", **{"norm.top_k": 3})
    with pytest.raises(ValueError, match=r"train.npz: non-finite embedding for utterance 't0-2'"):
        score_embeddings(_score_cfg(root, **overrides))


def test_case2_export_and_verify_refuse_a_nan_mean(exp, scoring, tmp_path, capsys):
    root, _, _ = scoring
    _with_nan(root / "train.npz", 0)
    with pytest.raises(SystemExit):
        export_cli.main([str(exp["ckpt"]), str(tmp_path / "m"), "--mean-embeddings", str(root / "train.npz")])
    assert "non-finite embedding for utterance 't0-0'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    # A model directory whose mean.npy went bad afterwards: verify refuses instead of scoring 0.0.
    model = shutil.copytree(exp["model"], tmp_path / "bad_mean")
    np.save(model / "mean.npy", np.full(16, np.nan, dtype=np.float32))
    with pytest.raises(SystemExit) as stop:
        verify_cli.main([str(exp["wav"] / "a.wav"), str(exp["wav"] / "b.wav"), "--model", str(model)])
    assert stop.value.code == 1
    assert "mean.npy: the mean holds NaN" in capsys.readouterr().err


def test_case2_api_score_and_threshold_refuse_non_finite(exp, tmp_path, capsys):
    model = xvector.load_model(exp["model"])
    e = model.embed(exp["wav"] / "a.wav")
    with pytest.raises(ValueError, match="second embedding .* NaN"):
        model.score(e, np.full_like(e, np.nan))
    with pytest.raises(ValueError, match="is zero"):
        model.score(e, np.zeros_like(e))
    with pytest.raises(ValueError, match="threshold=nan"):
        model.verify(exp["wav"] / "a.wav", exp["wav"] / "b.wav", threshold=math.nan)
    with pytest.raises(SystemExit):
        verify_cli.main([str(exp["wav"] / "a.wav"), str(exp["wav"] / "b.wav"), "--model", str(exp["model"]),
                         "--threshold", "nan"])
    assert "must be a finite number" in capsys.readouterr().err
    (tmp_path / "cal.json").write_text('{"scale": NaN, "offset": 0}')
    with pytest.raises(ValueError, match="scale must be finite"):
        write_model_dir(tmp_path / "m", exp["ckpt"], calibration=tmp_path / "cal.json")


# --- case 3: resume reuses an embedding only for the same input -------------------------------


def _scp(root: Path, files: dict[str, Path]) -> Path:
    (root / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(files.items())))
    return root / "wav.scp"


def _ex_cfg(model, scp, out, **kw):
    return OmegaConf.create({"model_dir": str(model), "wav_scp": str(scp), "output": str(out), "batch_size": 2,
                             "num_workers": 0, "device": "cpu", "progress": False, **kw})


def _interrupted(cfg, monkeypatch) -> None:
    """Run an extraction that is killed after its first batch (2 utterances) was written."""
    real, calls = extract_mod._embed_items, {"n": 0}

    def dies_on_second(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(extract_mod, "_embed_items", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        extract(cfg)
    monkeypatch.setattr(extract_mod, "_embed_items", real)


@pytest.fixture
def four(tmp_path):
    d = tmp_path / "audio"
    d.mkdir()
    files = {}
    for i in range(4):
        files[f"u{i}"] = d / f"old{i}.wav"
        sf.write(files[f"u{i}"], _noise(1.0 + 0.1 * i, 10 + i), RATE)
    return tmp_path, files


def test_case3_ids_pointed_at_other_files_are_embedded_again(exp, four, monkeypatch, caplog):
    root, files = four
    out = root / "e.npz"
    _interrupted(_ex_cfg(exp["model"], _scp(root, files), out), monkeypatch)
    new = {}
    for i, utt in enumerate(files):
        new[utt] = root / "audio" / f"new{i}.wav"
        sf.write(new[utt], _noise(1.0 + 0.1 * i, 50 + i), RATE)
    scp = _scp(root, new)
    with caplog.at_level("INFO", logger="xvector.inference.partial"):
        extract(_ex_cfg(exp["model"], scp, out))
    extract(_ex_cfg(exp["model"], scp, root / "clean.npz"))
    ids, emb = load_embeddings(out)
    clean_ids, clean = load_embeddings(root / "clean.npz")
    assert ids == clean_ids
    np.testing.assert_allclose(emb, clean, atol=1e-5)  # no row of the old files survives
    assert "0 embeddings kept, not reused: 2 id now points at another file" in caplog.text


def test_case3_file_changed_in_place_is_embedded_again(exp, four, monkeypatch, caplog):
    root, files = four
    out = root / "e.npz"
    scp = _scp(root, files)
    _interrupted(_ex_cfg(exp["model"], scp, out), monkeypatch)
    for i, path in enumerate(files.values()):  # same names, other audio of the same size
        sf.write(path, _noise(1.0 + 0.1 * i, 90 + i), RATE)
        os.utime(path, ns=(10**18 + i, 10**18 + i))
    with caplog.at_level("INFO", logger="xvector.inference.partial"):
        extract(_ex_cfg(exp["model"], scp, out))
    extract(_ex_cfg(exp["model"], scp, root / "clean.npz"))
    np.testing.assert_allclose(load_embeddings(out)[1], load_embeddings(root / "clean.npz")[1], atol=1e-5)
    assert "0 embeddings kept, not reused: 2 file changed (size or mtime)" in caplog.text


def test_case3_unchanged_inputs_are_kept_and_other_settings_embed_again(exp, four, monkeypatch, caplog):
    root, files = four
    out = root / "e.npz"
    scp = _scp(root, files)
    _interrupted(_ex_cfg(exp["model"], scp, out), monkeypatch)
    seen = []
    real = extract_mod._embed_items
    monkeypatch.setattr(extract_mod, "_embed_items", lambda *a, **kw: (seen.extend(a[1]["utts"]), real(*a, **kw))[1])
    with caplog.at_level("INFO", logger="xvector.inference.partial"):
        extract(_ex_cfg(exp["model"], scp, out))
    assert len(seen) == 2 and "2 embeddings kept" in caplog.text  # the same inputs: reused

    _interrupted(_ex_cfg(exp["model"], scp, out), monkeypatch)
    seen.clear()
    monkeypatch.setattr(extract_mod, "_embed_items", lambda *a, **kw: (seen.extend(a[1]["utts"]), real(*a, **kw))[1])
    caplog.clear()
    with caplog.at_level("INFO", logger="xvector.inference.partial"):
        extract(_ex_cfg(exp["model"], scp, out, short_utterances="pad"))  # a setting that changes embeddings
    assert len(seen) == 4
    assert "made with another model or settings (settings differ): its 2 embeddings are not reused" in caplog.text


# --- case 4: array layouts and integer PCM in the API; exporter notices -----------------------


@pytest.fixture(scope="module")
def level_model(tmp_path_factory):
    """A model without CMN: its embeddings depend on the input level, so a missing 1/32768 shows."""
    d = tmp_path_factory.mktemp("level")
    cfg = tiny_config()
    cfg["features"]["cmn"] = "none"
    return xvector.load_model(init_checkpoint(d / "nocmn.ckpt", cfg, seed=2))


def test_case4_int16_is_scaled_by_its_dtype(level_model, tmp_path):
    wav = _noise(1.0, 3)
    sf.write(tmp_path / "a.wav", wav, RATE, subtype="PCM_16")
    as_int, rate = sf.read(tmp_path / "a.wav", dtype="int16")
    as_float, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    assert as_int.dtype == np.int16 and rate == RATE
    ref = level_model.embed(as_float)
    np.testing.assert_allclose(level_model.embed(as_int), ref, atol=1e-5)
    with pytest.warns(UserWarning, match="peak at"):  # integers cast to float, unscaled: warned
        unscaled = level_model.embed(as_int.astype(np.float32), sample_rate=rate)
    assert level_model.score(ref, unscaled) < 0.99  # the level matters to this model: the test can fail
    np.testing.assert_allclose(level_model.embed(tmp_path / "a.wav"), ref, atol=1e-5)
    from scipy.io import wavfile

    rate, pcm = wavfile.read(tmp_path / "a.wav")
    np.testing.assert_allclose(level_model.embed(pcm, sample_rate=rate), ref, atol=1e-5)
    with pytest.raises(ValueError, match="dtype int64"):
        level_model.embed(as_int.astype(np.int64))


def test_case4_soundfile_and_torchaudio_layouts(exp, tmp_path):
    model = xvector.load_model(exp["model"])
    left, right = _noise(1.0, 4), _noise(1.0, 5)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), RATE, subtype="FLOAT")
    frames, _ = sf.read(tmp_path / "st.wav", dtype="float32")  # (S, 2)
    mono = model.embed((left + right) / 2)
    np.testing.assert_allclose(model.embed(frames), mono, atol=1e-6)
    np.testing.assert_allclose(model.embed(frames, layout="channels_last"), mono, atol=1e-6)
    np.testing.assert_allclose(model.embed([frames, frames.T]), np.stack([mono, mono]), atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(2, 16000\) is ambiguous: pass layout='channels_first'"):
        model.embed(frames.T)
    np.testing.assert_allclose(model.embed(frames.T, layout="channels_first"), mono, atol=1e-6)
    batch = model.embed(frames.T, layout="batch")
    np.testing.assert_allclose(batch, model.embed([left, right]), atol=1e-6)
    np.testing.assert_allclose(model.embed(left[None]), model.embed(left), atol=1e-6)  # torchaudio's (1, S)
    with pytest.raises(ValueError, match="layout='sideways'"):
        model.embed(frames, layout="sideways")


def test_case4_onnx_export_prints_no_torchvision_notice(onnx_model):
    model, records = onnx_model
    assert (model / "embedder.onnx").is_file()
    assert not [r for r in records if "torchvision" in r.getMessage()]


# --- case 5: a threshold belongs to the scores it was chosen on -------------------------------


def test_case5_operating_point_of_another_mean_is_refused(exp, scoring, capsys, caplog):
    root, _, _ = scoring
    other = root / "other.npz"
    save_embeddings(other, ["o1", "o2"], np.random.default_rng(7).standard_normal((2, 16)).astype(np.float32))
    plain = root / "plain"
    score_embeddings(_score_cfg(root, output_dir=plain))
    ckpt, train = str(exp["ckpt"]), str(root / "train.npz")
    with pytest.raises(SystemExit):
        export_cli.main([ckpt, str(root / "m1"), "--mean-embeddings", train, "--score-dir", str(plain)])
    assert "made on scores without a mean" in capsys.readouterr().err
    centred = root / "centred"
    score_embeddings(_score_cfg(root, output_dir=centred, mean_embeddings=train))
    with pytest.raises(SystemExit):
        export_cli.main([ckpt, str(root / "m2"), "--mean-embeddings", str(other), "--score-dir", str(centred)])
    assert "whose mean differs from that of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_cli.main([ckpt, str(root / "m3"), "--score-dir", str(centred)])
    assert "but this model stores no mean" in capsys.readouterr().err
    normed = root / "normed"
    score_embeddings(_score_cfg(root, output_dir=normed, mean_embeddings=train, norm="asnorm",
                                train_embeddings=train, train_utt2spk=root / "utt2spk", **{"norm.top_k": 3}))
    with pytest.raises(SystemExit):
        export_cli.main([ckpt, str(root / "m4"), "--mean-embeddings", train, "--score-dir", str(normed)])
    assert "with norm xvector.scoring.norm.ScoreNorm" in capsys.readouterr().err
    assert not any((root / f"m{i}").exists() for i in range(1, 5))
    # The matching mean is accepted, and the model decides as the scoring run did.
    export_cli.main([ckpt, str(root / "ok"), "--mean-embeddings", train, "--score-dir", str(centred)])
    thr = json.loads((root / "ok" / "threshold.json").read_text())
    assert thr["scored_with"]["mean_embeddings"] == train
    assert xvector.load_model(root / "ok").threshold["threshold"] == thr["threshold"]
    shutil.copy(plain / "threshold.json", root / "ok" / "threshold.json")  # swapped in by hand: caught on load
    with pytest.raises(ValueError, match="ok/threshold.json: made on scores without a mean"):
        xvector.load_model(root / "ok")
    # A hand-written threshold without the record is accepted with a warning.
    legacy = {k: v for k, v in json.loads((plain / "threshold.json").read_text()).items() if k != "scored_with"}
    with caplog.at_level("WARNING", logger="xvector.inference.operating_point"):
        write_model_dir(root / "legacy", exp["ckpt"], threshold=legacy)
    assert "does not say which back end and mean" in caplog.text


# --- case 6: the README's fault table holds ---------------------------------------------------


@pytest.fixture(scope="module")
def bad_wavs(exp):
    """A truncated wav (header declares twice the data present), a silent one, a too-short one."""
    d = exp["dir"] / "bad"
    d.mkdir()
    sf.write(d / "whole.wav", _noise(2.27, 6), RATE, subtype="PCM_16")
    data = (d / "whole.wav").read_bytes()
    (d / "truncated.wav").write_bytes(data[: 44 + (len(data) - 44) // 2])
    sf.write(d / "silent.wav", np.zeros(RATE, dtype=np.float32), RATE)
    sf.write(d / "short.wav", _noise(0.05, 7), RATE)
    (d / "folder.wav").mkdir()
    return d


def test_case6_truncated_silent_and_short_files_are_refused_naming_the_file(exp, bad_wavs, capsys):
    model = xvector.load_model(exp["model"])
    with pytest.raises(ValueError, match=r"truncated.wav: truncated wav: its header declares 72640 data bytes"):
        model.embed(bad_wavs / "truncated.wav")
    with pytest.raises(ValueError, match=r"silent.wav: all 16000 samples are zero"):
        model.embed(bad_wavs / "silent.wav")
    with pytest.raises(ValueError, match="silent audio"):
        model.embed(np.zeros(RATE, dtype=np.int16))
    a = str(exp["wav"] / "a.wav")
    for name, message in [("truncated.wav", "truncated wav"), ("short.wav", "short.wav: 800 samples (0.050 s) is shorter"),
                          ("missing.wav", "missing.wav: audio file does not exist"),
                          ("folder.wav", "folder.wav: is a folder, not an audio file")]:
        with pytest.raises(SystemExit) as stop:
            verify_cli.main([a, str(bad_wavs / name), "--model", str(exp["model"])])
        err = _lines(capsys.readouterr().err)
        assert stop.value.code == 1 and len(err) == 1 and message in err[0], (name, err)


def test_case6_extract_lists_missing_truncated_and_silent_files(exp, bad_wavs, tmp_path, caplog):
    files = {"a": exp["wav"] / "a.wav", "b-missing": tmp_path / "nope.wav", "c-trunc": bad_wavs / "truncated.wav",
             "d-silent": bad_wavs / "silent.wav"}
    scp = _scp(tmp_path, files)
    with caplog.at_level("WARNING", logger="xvector.cli.extract"):
        extract(_ex_cfg(exp["model"], scp, tmp_path / "e.npz"))
    assert load_embeddings(tmp_path / "e.npz")[0] == ["a"]
    report = [line.split("\t") for line in (tmp_path / "e.npz.failed.tsv").read_text().splitlines()]
    assert [r[0] for r in report] == ["b-missing", "c-trunc", "d-silent"]
    assert report[0][2] == f"{scp}:2: audio file for 'b-missing' does not exist: {tmp_path / 'nope.wav'}"
    assert "truncated wav" in report[1][2] and "silent audio" in report[2][2]
    assert "3 of 4 utterances failed" in caplog.text


def test_case6_empty_wav_scp_is_one_clear_error(exp, tmp_path):
    (tmp_path / "wav.scp").write_text("")
    with pytest.raises(ValueError, match=r"wav.scp: no utterances in it$"):
        extract(_ex_cfg(exp["model"], tmp_path / "wav.scp", tmp_path / "e.npz"))
    assert list(tmp_path.iterdir()) == [tmp_path / "wav.scp"]


def test_case6_hydra_clis_print_one_line_and_extract_fails_when_all_fail(exp, bad_wavs, tmp_path):
    scp = _scp(tmp_path, {"x": bad_wavs / "silent.wav", "y": bad_wavs / "truncated.wav"})
    args = [f"model_dir={exp['model']}", f"wav_scp={scp}", f"output={tmp_path / 'e.npz'}", "num_workers=0"]
    proc = _run("xvector.cli.extract", *args, cwd=tmp_path)
    err = _lines(proc.stderr)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert err[-1].startswith(f"xvector-extract: {scp}: all 2 utterances failed, nothing written (first: x: ")
    assert not (tmp_path / "e.npz").exists() and (tmp_path / "e.npz.failed.tsv").is_file()
    debug = _run("xvector.cli.extract", *args, cwd=tmp_path, XVECTOR_DEBUG="1", HYDRA_FULL_ERROR="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    proc = _run("xvector.cli.score", f"embeddings={tmp_path / 'none.npz'}", f"trials={tmp_path / 'trials'}",
                f"output_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 1
    assert _lines(proc.stderr) == [f"xvector-score: {tmp_path / 'none.npz'}: embedding file does not exist"]


def test_case6_scalar_p_targets(scoring):
    root, _, _ = scoring
    metrics = score_embeddings(_score_cfg(root, p_targets=0.01))
    assert "min_dcf_0.01" in metrics and "min_dcf_0.01_threshold" in metrics
    assert "min_dcf_0.05_threshold" not in metrics  # 0.05 is not one of the priors asked for
    with pytest.raises(ValueError, match="every prior must lie in"):
        score_embeddings(_score_cfg(root, p_targets="[0.01,2]"))


def test_case6_help_lists_each_commands_own_groups(tmp_path):
    from hydra import compose, initialize_config_dir

    import xvector.cli.score  # noqa: F401 - an entry point: what runs --help (and its resolvers)

    with initialize_config_dir(config_dir=xvector.CONFIG_DIR, version_base="1.3"):
        train = compose("train", return_hydra_config=True).hydra.help.template
        extract_help = compose("extract", overrides=["wav_scp=x", "output=y"], return_hydra_config=True).hydra.help
    assert "\nmodel: " in train and "\noptimizer: " in train and "backend" not in train and "calibration" not in train
    assert "Configuration groups" not in extract_help.template
    proc = _run("xvector.cli.score", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "backend: cosine, plda" in proc.stdout and "\nmodel:" not in proc.stdout


@pytest.fixture(scope="module")
def onnx_verify():
    import runpy

    return runpy.run_path(str(ROOT / "scripts" / "onnx_verify.py"))  # numpy, soundfile, onnxruntime only


@pytest.mark.parametrize(("orig", "new"), [(8000, 16000), (16000, 8000), (44100, 16000), (22050, 16000),
                                           (48000, 16000), (11025, 16000)])
def test_case6_onnx_verify_resampler_is_torchaudios(onnx_verify, orig, new):
    """The numpy port equals ``torchaudio.functional.resample`` (sinc_interp_hann, width 6, rolloff 0.99).

    Against torch in float64 (the same algorithm, exact arithmetic) the difference is the float32
    rounding of the output: |Δ| <= 1e-7 on a signal in [-1, 1] (half an ulp at 1.0 is 6e-8).
    Against torch in float32 (what xvector-verify runs) it is that of torch's float32 kernel,
    whose sinc arguments lose ~1e-7 relative at reduced rates like 441/320: |Δ| <= 1e-4.
    """
    import torch
    import torchaudio.functional as AF

    x = np.clip(0.3 * np.random.default_rng(orig).standard_normal(orig * 2 + 17), -1, 1).astype(np.float32)
    got = onnx_verify["resample"](x, orig, new)
    ref64 = AF.resample(torch.from_numpy(x.astype(np.float64)), orig, new).numpy()
    ref32 = AF.resample(torch.from_numpy(x), orig, new).numpy()
    assert got.dtype == np.float32 and got.shape == ref32.shape
    np.testing.assert_allclose(got, ref64, rtol=0, atol=1e-7)
    np.testing.assert_allclose(got, ref32, rtol=0, atol=1e-4)


def test_case6_onnx_verify_reads_as_xvector_verify(onnx_model, onnx_verify, bad_wavs, tmp_path):
    """8 kHz files: the script's samples and score are xvector-verify's; bad files are refused alike."""
    from xvector.inference.embed import read_audio

    model, _ = onnx_model
    for name, seed in (("a8", 11), ("b8", 12)):
        sf.write(tmp_path / f"{name}.wav", _noise(1.5, seed, 8000), 8000, subtype="FLOAT")
    np.testing.assert_allclose(onnx_verify["read_audio"](str(tmp_path / "a8.wav"), RATE),
                               read_audio(tmp_path / "a8.wav", RATE).numpy(), rtol=0, atol=1e-4)
    got = onnx_verify["verify"](str(model), str(tmp_path / "a8.wav"), str(tmp_path / "b8.wav"))
    want = xvector.load_model(model).verify(tmp_path / "a8.wav", tmp_path / "b8.wav")
    assert got["score"] == pytest.approx(want.score, abs=1e-5)
    for name, message in [("truncated.wav", "truncated wav"), ("silent.wav", "silent audio"),
                          ("missing.wav", "does not exist"), ("folder.wav", "is a folder")]:
        with pytest.raises(ValueError, match=message):
            onnx_verify["verify"](str(model), str(tmp_path / "a8.wav"), str(bad_wavs / name))
