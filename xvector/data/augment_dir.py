"""Augmented copies of a data directory, for the back end: Kaldi's ``augment_data_dir.py``.

Kaldi trains its PLDA on the clean training x-vectors *and* on corrupted copies of them
(``egs/sre16/v1``: "the use of data augmentation for PLDA training"), so the within-speaker
covariance it learns includes the shifts noise and reverberation cause, which clean copies alone
never show. :func:`augment_data_dir` writes such copies: every utterance of ``DATA_DIR`` passed
``copies`` times through one corruption each (reverberation, noise, music or babble, drawn with
equal probability from the training augmentation's own settings, :func:`always_one_of`), as
float WAV files (no clipping at 0 dB SNR) under ``OUT/wav``, and Kaldi lists whose ids are the
source id plus ``-aug<k>`` with the source's speaker. The draws come from a generator seeded
by ``(seed, utterance index, copy)``, so a rerun writes the same audio. Lists are written last
and atomically: a directory with a ``wav.scp`` is complete.

Example (the recipe's stand-in noise and RIR folders, one copy per utterance):
    python scripts/augment_data_dir.py data/mine/train exp/mine/train_aug --augment-dir exp/mine/augment
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig, OmegaConf

from xvector.atomic import atomic_output
from xvector.data.audio import load_audio
from xvector.data.augment import Transform
from xvector.data.lists import load_data_dir, utt2spk_to_spk2utt, write_kaldi_map

log = logging.getLogger(__name__)
AUG_SUFFIX = "-aug"


def load_augment_config(path: str | os.PathLike) -> DictConfig:
    """A ``configs/augment/*.yaml`` file as Hydra composes it: its defaults list merged in (a file
    that extends another, as ``synthetic_channel.yaml`` extends ``synthetic.yaml``), its
    interpolations (``${paths.augment_dir}``, ``${data.sample_rate}``) left for the caller."""
    from hydra import compose, initialize_config_dir

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such augmentation config")
    with initialize_config_dir(config_dir=str(path.parent), version_base=None):
        cfg = compose(config_name=path.stem)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))


def always_one_of(augment_cfg: Mapping[str, Any]) -> DictConfig:
    """A ``OneOf`` augmentation config whose transforms each fire with probability 1/n.

    Training augments a fraction of its crops (each kind ``p = 0.15``); a back-end copy exists
    to be corrupted, so every copy gets exactly one of the kinds, chosen uniformly.

    Raises:
        ValueError: if the config is not a ``xvector.data.augment.OneOf`` with transforms.
    """
    cfg = OmegaConf.create(augment_cfg)  # a copy: the caller's config stays as it was
    if not str(cfg.get("_target_", "")).endswith("augment.OneOf") or not cfg.get("transforms"):
        raise ValueError(f"augmentation config must be a xvector.data.augment.OneOf with transforms, got "
                         f"{cfg.get('_target_')!r}")
    names = [k for k, v in cfg.transforms.items() if v is not None]
    for k in names:
        cfg.transforms[k].prob = 1.0 / len(names)
    return cfg


def augment_data_dir(data_dir: str | os.PathLike, out_dir: str | os.PathLike, augment: Transform,
                     sample_rate: int, copies: int = 1, seed: int = 0) -> dict[str, int]:
    """Write ``copies`` corrupted copies of every utterance of ``data_dir`` into ``out_dir``.

    Args:
        data_dir: Kaldi data dir (``wav.scp``, ``utt2spk``).
        out_dir: the new data dir; its audio goes to ``out_dir/wav/<id>.wav``.
        augment: ``transform(wav (S,), rng) -> (S,)``, e.g. ``always_one_of(...)`` instantiated.
        sample_rate: Hz of every source file (an error naming the file otherwise).
        copies: corrupted copies per utterance (ids ``<utt>-aug1`` ... ``-aug<copies>``).
        seed: the copies' draws are ``default_rng((seed, utterance index, copy))``.

    Returns:
        ``{"utterances": sources, "copies": files written}``.

    Raises:
        ValueError: ``copies < 1``, or ``out_dir`` is ``data_dir``; read errors name the file.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    src, out = Path(data_dir), Path(out_dir)
    if out.resolve() == src.resolve():
        raise ValueError(f"{out}: the augmented copies need their own directory, not the source's")
    data = load_data_dir(src)
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    wav_scp: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    for i, (utt, path) in enumerate(data.wavs.items()):
        wav = torch.from_numpy(load_audio(path, sample_rate).astype(np.float32))
        for k in range(1, copies + 1):
            rng = np.random.default_rng((seed, i, k))
            y = augment(wav, rng).to(torch.float32).numpy()
            new_id = f"{utt}{AUG_SUFFIX}{k}"
            target = wav_dir / f"{new_id}.wav"
            with atomic_output(target) as tmp:
                sf.write(str(tmp), y, sample_rate, subtype="FLOAT", format="WAV")
            wav_scp[new_id] = str(target.resolve())
            utt2spk[new_id] = data.utt2spk[utt]
        if (i + 1) % 500 == 0:
            log.info("augmented %d of %d utterances", i + 1, len(data.wavs))
    write_kaldi_map(out / "utt2spk", utt2spk)
    write_kaldi_map(out / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    write_kaldi_map(out / "wav.scp", wav_scp)  # last: a dir with a wav.scp is complete
    return {"utterances": len(data.wavs), "copies": len(wav_scp)}
