"""recipes/robust/local: evaluate.py (the embeddings it reuses or makes, the conditions it scores), harsh_channel.py,
results_table.py."""

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.data.lists import read_kaldi_map, write_kaldi_map
from xvector.embeddings import save_embeddings

REPO = Path(__file__).resolve().parents[2]


def _local(name: str):
    """The module of ``recipes/robust/local/<name>.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(f"robust_{name}", REPO / "recipes/robust/local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


evaluate = _local("evaluate")
harsh = _local("harsh_channel")
results_table = _local("results_table")


def _wav_scp(root: Path, ids: list[str]) -> Path:
    write_kaldi_map(root / "wav.scp", {u: f"/nowhere/{u}.wav" for u in ids})
    return root / "wav.scp"


def test_up_to_date_only_for_the_utterances_of_the_wav_scp(tmp_path):
    npz = tmp_path / "train_aug.npz"
    scp = _wav_scp(tmp_path / "train_aug", ["a-aug1", "b-aug1"])
    assert not evaluate.up_to_date(npz, scp)  # no file yet
    save_embeddings(npz, ["b-aug1", "a-aug1"], np.ones((2, 3), np.float32))
    assert evaluate.up_to_date(npz, scp)  # order does not matter
    # the dir remade with two copies: the one-copy embeddings are stale
    scp = _wav_scp(tmp_path / "train_aug", ["a-aug1", "a-aug2", "b-aug1", "b-aug2"])
    assert not evaluate.up_to_date(npz, scp)


def test_embeddings_only_names_a_stale_file_and_skips_a_missing_optional_one(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    exp.mkdir()
    for d, ids in {"train": ["a", "b"], "train_aug": ["a-aug1", "a-aug2", "b-aug1", "b-aug2"]}.items():
        _wav_scp(data / d, ids)
    save_embeddings(exp / "train.npz", ["a", "b"], np.ones((2, 3), np.float32))
    args = argparse.Namespace(exp=str(exp), data=str(data), embeddings_only=True, baseline=None, model=None)
    assert evaluate.embed(args, ["train", "train_aug"], optional=("train_aug",)) == {}  # missing: left out
    save_embeddings(exp / "train_aug.npz", ["a-aug1", "b-aug1"], np.ones((2, 3), np.float32))
    with pytest.raises(SystemExit, match=r"not the utterances of .*train_aug\.npz"):
        evaluate.embed(args, ["train", "train_aug"], optional=("train_aug",))


def test_harsh_channel_copy_keeps_ids_lists_and_lengths_and_is_seeded(tmp_path):
    src = tmp_path / "dev"
    src.mkdir()
    rng = np.random.default_rng(0)
    wavs = {u: (0.1 * rng.standard_normal(8000 + 800 * i)).astype(np.float32)
            for i, u in enumerate(["a-1", "a-2", "b-1"])}
    for u, w in wavs.items():
        sf.write(src / f"{u}.wav", w, 16000, subtype="PCM_16")
    write_kaldi_map(src / "wav.scp", {u: str(src / f"{u}.wav") for u in wavs})
    write_kaldi_map(src / "utt2spk", {u: u[0] for u in wavs})
    (src / "trials").write_text("a-1 a-2 target\na-1 b-1 nontarget\n")
    (src / "trials_same_lang").write_text("a-1 a-2 target\n")
    assert harsh.harsh_channel_copy(src, tmp_path / "ch1", seed=3) == 3
    assert harsh.harsh_channel_copy(src, tmp_path / "ch2", seed=3) == 3
    out = tmp_path / "ch1"
    for name in ("utt2spk", "trials", "trials_same_lang"):
        assert (out / name).read_text() == (src / name).read_text()
    scp = read_kaldi_map(out / "wav.scp")
    assert sorted(scp) == sorted(wavs)
    for u, w in wavs.items():
        y, sr = sf.read(scp[u], dtype="float32")
        assert sr == 16000 and len(y) == len(w)
        assert not np.allclose(y, w, atol=1e-2)  # a channel was applied
        again, _ = sf.read(tmp_path / "ch2" / "wav" / f"{u}.wav", dtype="float32")
        assert np.array_equal(y, again)  # the same seed, the same audio
    # each utterance its own channel: the same input gives different outputs within one copy
    write_kaldi_map(src / "wav.scp", {"a-1": str(src / "a-1.wav"), "a-2": str(src / "a-1.wav")})
    harsh.harsh_channel_copy(src, tmp_path / "ch3", seed=3)
    y1, y2 = (sf.read(tmp_path / "ch3" / "wav" / f"{u}.wav", dtype="float32")[0] for u in ("a-1", "a-2"))
    assert not np.allclose(y1, y2, atol=1e-3)


def test_the_channel_condition_is_scored_only_when_its_copy_and_embeddings_exist(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    rng = np.random.default_rng(1)
    spk = {f"s{i}-u{j}": f"s{i}" for i in range(4) for j in range(3)}
    ids = sorted(spk)
    emb = (np.repeat(rng.standard_normal((4, 8)), 3, axis=0) + 0.1 * rng.standard_normal((12, 8))).astype(np.float32)
    trials = "".join(f"{a} {b} {'target' if spk[a] == spk[b] else 'nontarget'}\n" for a in ids for b in ids if a < b)
    for d in ("train", "dev", "dev_noisy", "dev_channel"):
        write_kaldi_map(data / d / "utt2spk", spk)
        save_embeddings(exp / f"{d}.npz", ids, emb)
        if d != "train":
            (data / d / "trials").write_text(trials)
    (data / "dev" / "trials_same_lang").write_text(trials)
    args = argparse.Namespace(exp=str(exp), data=str(data), split="dev")
    assert set(evaluate.score(args)["results"]) >= {"cosine/clean", "cosine/noisy", "cosine/channel", "plda/channel"}
    (exp / "dev_channel.npz").unlink()  # a peer's embeddings without the copy: left out, not an error
    assert not any(k.endswith("/channel") for k in evaluate.score(args)["results"])


def _results(path: Path, eers: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": {k: {"eer": v} for k, v in eers.items()}}))


def test_results_table_has_a_channel_column_only_when_some_system_was_scored_on_it(tmp_path):
    three = {"cosine/clean": 0.01, "cosine/same_lang": 0.02, "cosine/noisy": 0.1}
    _results(tmp_path / "tts" / "xvector" / "eval" / "dev.json", three)
    (tmp_path / "tts" / "xvector" / "train_seconds").write_text("600")
    text = results_table.table(tmp_path, "dev", ["tts"])
    assert "channel" not in text
    assert "| xvector | cosine (training mean subtracted) | 10.0 min | 1.00 | 2.00 | 10.00 |" in text
    _results(tmp_path / "tts" / "mfcc" / "dev.json", {**three, "cosine/channel": 0.25})
    head, rule, *rows = results_table.table(tmp_path, "dev", ["tts"]).splitlines()
    assert head.endswith("| tts: noisy | tts: harsher channel |") and rule == "|" + "---|" * 7
    assert rows == ["| xvector | cosine (training mean subtracted) | 10.0 min | 1.00 | 2.00 | 10.00 | – |",
                    "| mean MFCC, no training | cosine (training mean subtracted) | – min | 1.00 | 2.00 | 10.00 | 25.00 |"]
