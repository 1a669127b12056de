"""recipes/robust/local/evaluate.py: which embedding files it reuses and which it makes again."""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from xvector.data.lists import write_kaldi_map
from xvector.embeddings import save_embeddings

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("robust_evaluate", REPO / "recipes/robust/local/evaluate.py")
evaluate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate)


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
