"""Datasets over Kaldi data directories: random training crops and whole utterances.

Items are dicts: ``{"wav": (S,) float32 tensor, "utt": str}`` plus ``"label": int`` for
training crops. :func:`~xvector.data.collate.collate_waveforms` pads them into a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from xvector.data.audio import audio_info, load_audio


class CropDataset(Dataset):
    """One random ``chunk_sec`` crop per utterance and epoch, labelled with its speaker index.

    Utterances shorter than the crop are repeated (wrapped) to fill it, as WeSpeaker does, so
    every item of a batch has the same length and no padding enters training.

    Args:
        wavs: utterance id → audio path.
        utt2spk: utterance id → speaker id.
        spk2idx: speaker id → class index.
        chunk_sec: crop length in seconds.
        sample_rate: expected sample rate of every file in Hz.
    """

    def __init__(
        self,
        wavs: Mapping[str, Path],
        utt2spk: Mapping[str, str],
        spk2idx: Mapping[str, int],
        chunk_sec: float,
        sample_rate: int = 16000,
    ) -> None:
        self.utts = list(wavs)
        self.paths = [wavs[u] for u in self.utts]
        self.labels = [spk2idx[utt2spk[u]] for u in self.utts]
        self.chunk = int(round(chunk_sec * sample_rate))
        self.sample_rate = sample_rate
        self.num_samples = []
        for utt, path in zip(self.utts, self.paths):
            n, sr = audio_info(path)
            if sr != sample_rate:
                raise ValueError(f"{path}: utterance {utt!r} has sample rate {sr} Hz, expected {sample_rate} Hz")
            if n == 0:
                raise ValueError(f"{path}: utterance {utt!r} is empty")
            self.num_samples.append(n)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        n = self.num_samples[index]
        # torch's RNG: Lightning seeds it per data worker (seed_everything(workers=True)).
        start = int(torch.randint(0, n - self.chunk + 1, ()).item()) if n > self.chunk else 0
        wav = load_audio(self.paths[index], self.sample_rate, start, min(self.chunk, n))
        if len(wav) < self.chunk:
            wav = np.resize(wav, self.chunk)  # repeat to fill
        return {"wav": torch.from_numpy(wav), "utt": self.utts[index], "label": self.labels[index]}


class UtteranceDataset(Dataset):
    """Whole utterances, for validation and extraction. ``lengths`` holds samples per item."""

    def __init__(self, wavs: Mapping[str, Path], sample_rate: int = 16000) -> None:
        self.utts = list(wavs)
        self.paths = [wavs[u] for u in self.utts]
        self.sample_rate = sample_rate
        self.lengths = [audio_info(p)[0] for p in self.paths]

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        wav = load_audio(self.paths[index], self.sample_rate)
        return {"wav": torch.from_numpy(wav), "utt": self.utts[index]}
