"""Shared fixtures: small corpora made in tmp_path (tests never download anything)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.data.lists import utt2spk_to_spk2utt, write_kaldi_map


def _drop_unloaded_speechbrain_placeholders() -> None:
    """Remove SpeechBrain's never-loaded ``LazyModule`` placeholders from ``sys.modules``.

    ``import speechbrain`` registers a few (``speechbrain.k2_integration``, ...). Hypothesis reads
    ``__file__`` of every module in ``sys.modules`` (at collection and before each example), which
    makes a placeholder import its target (k2, spacy, ...) and raise ImportError: the session
    stops at collection, or the next property test fails. Dropping them loses nothing.
    """
    if "speechbrain" not in sys.modules:
        return
    from speechbrain.utils.importutils import LazyModule

    for name, module in list(sys.modules.items()):
        if isinstance(module, LazyModule) and module.lazy_module is None:
            del sys.modules[name]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems() -> None:
    _drop_unloaded_speechbrain_placeholders()  # before hypothesis's hook scans sys.modules


@pytest.fixture(autouse=True)
def _speechbrain_placeholders_dropped():
    yield
    _drop_unloaded_speechbrain_placeholders()  # a test that imported speechbrain left them


def write_noise_dir(root: Path, spk_utts: dict[str, int], seconds: float = 0.5, sample_rate: int = 16000, seed: int = 0) -> Path:
    """A Kaldi data dir of random-noise wavs: ``{speaker: n_utts}`` → ``root`` with lists."""
    rng = np.random.default_rng(seed)
    wavs, utt2spk = {}, {}
    for spk, n in spk_utts.items():
        for i in range(n):
            utt = f"{spk}-u{i:02d}"
            path = root / "wav" / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            n_samples = int(seconds * sample_rate * rng.uniform(0.7, 1.3))
            sf.write(path, (0.1 * rng.standard_normal(n_samples)).astype(np.float32), sample_rate)
            wavs[utt], utt2spk[utt] = str(path), spk
    write_kaldi_map(root / "wav.scp", wavs)
    write_kaldi_map(root / "utt2spk", utt2spk)
    write_kaldi_map(root / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A tiny synthetic corpus (train/dev/test with trials), made once per test session."""
    from xvector.corpora.synthetic.corpus import make_corpus

    out = tmp_path_factory.mktemp("synthetic")
    make_corpus(
        out, n_train_speakers=6, n_train_utts=6, n_test_speakers=4, n_test_utts=4,
        n_dev_speakers=4, n_dev_utts=4, min_sec=1.0, max_sec=2.0, seed=3, num_workers=1,
    )
    return out


@pytest.fixture
def noise_dir():
    """The :func:`write_noise_dir` maker, for tests that need custom speaker layouts."""
    return write_noise_dir


from xvector import CONFIG_DIR

# A net small enough that a few training steps take a second on 2 CPU cores.
TINY_NET = [
    "model.channels=[32,32,32,32,64]",
    "model.embed_dim=16",
    "model.segment_dims=[16]",
    "features.num_mel_bins=24",
    "data.num_workers=0",
    "data.batch_size=4",
    "data.val_batch_size=4",
    "data.chunk_sec=0.5",
]


@pytest.fixture
def compose_config():
    """``compose_config(name, overrides)`` → the composed Hydra config, as the CLIs see it."""
    from hydra import compose, initialize_config_dir

    def _compose(name: str, overrides: list[str]):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=name, overrides=overrides)

    return _compose
