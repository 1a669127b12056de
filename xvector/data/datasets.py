"""Datasets over Kaldi data directories: random training crops and whole utterances.

Items are dicts: ``{"wav": (S,) float32 tensor, "utt": str}`` plus ``"label": int`` for
training crops. :func:`~xvector.data.collate.collate_waveforms` pads them into a batch.

Training crops come from a :class:`CropMaker`, shared with the streaming
:class:`~xvector.data.shards.ShardStream` so that both give the same crop of an utterance
for the same ``(seed, epoch, index)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from xvector.data.audio import audio_info, load_audio, read_audio, resample_audio
from xvector.data.augment import speed_perturb

# Tag of the per-item RNG stream (second, so that trailing zeros never alias two streams).
_STREAM_ITEM = 7

Reader = Callable[[int, int], np.ndarray]  # (start, num_samples) -> (num_samples,) float32


def utterance_samples(where: str, utt: str, num_samples: int, file_rate: int, sample_rate: int,
                      resample: bool) -> int:
    """Samples at ``sample_rate`` of utterance ``utt`` (``num_samples`` at ``file_rate``, read at ``where``).

    The checks every training utterance passes, from a file or a shard member alike.

    Raises:
        ValueError: naming ``where`` and ``utt`` for another rate without ``resample``, or no samples.
    """
    if file_rate != sample_rate and not resample:
        raise ValueError(f"{where}: utterance {utt!r} has sample rate {file_rate} Hz, expected {sample_rate} Hz "
                         "(data.resample=true converts)")
    if num_samples == 0:
        raise ValueError(f"{where}: utterance {utt!r} is empty")
    return math.ceil(num_samples * sample_rate / file_rate)


def window_reader(read: Reader, file_rate: int, sample_rate: int) -> Reader:
    """A :data:`Reader` at ``sample_rate`` over ``read`` at ``file_rate``: each window is read at the
    file's rate (covering the same time span) and resampled, so a crop never decodes the whole file."""
    if file_rate == sample_rate:
        return read

    def resampled(start: int, num: int) -> np.ndarray:
        wav = read(start * file_rate // sample_rate, math.ceil(num * file_rate / sample_rate))
        return resample_audio(wav, file_rate, sample_rate)[:num]

    return resampled


class CropMaker:
    """One training crop of an utterance: speed perturbation, random crop, augmentation.

    With ``seed`` set, every draw for item ``index`` in ``epoch`` comes from
    ``numpy.random.default_rng([seed, tag, epoch, index])``, so an epoch is the same for any
    number of data workers. With ``seed=None``, crops use torch's RNG (which Lightning seeds
    per worker) exactly as before augmentation existed.

    With ``on_device``, :meth:`item` only reads and crops: it returns the ``ceil(chunk * speed)``
    samples that speed perturbation needs, as read (int16 where the reader gives it), with the
    speed index and the augmentation plan drawn from the same RNG stream
    (:meth:`~xvector.data.augment.Transform.plan`); :class:`~xvector.data.batch_augment.BatchAugment`
    does the rest on the training device.

    Args:
        chunk_sec: crop length in seconds.
        sample_rate: in Hz.
        num_speakers: speakers before speed perturbation; speed ``speeds[k]`` maps speaker
            ``i`` to class ``i + k * num_speakers`` (a sped-up voice is a new speaker).
        seed: base seed of the per-item RNG, or None.
        augment: ``transform(wav (S,), rng) -> (S,)`` applied to the crop, or None.
        speeds: speed factors drawn uniformly per item, e.g. ``(1.0, 0.9, 1.1)``.
        on_device: plan speed and augmentation for the device instead of applying them.
    """

    def __init__(self, chunk_sec: float, sample_rate: int, num_speakers: int, seed: int | None = None,
                 augment: Callable | None = None, speeds: Sequence[float] = (1.0,), on_device: bool = False) -> None:
        self.chunk = int(round(chunk_sec * sample_rate))
        if self.chunk < 1:
            raise ValueError(f"chunk_sec={chunk_sec} gives no samples at {sample_rate} Hz")
        self.speeds = tuple(float(s) for s in speeds)
        if not self.speeds or min(self.speeds) <= 0 or len(set(self.speeds)) != len(self.speeds):
            raise ValueError(f"speeds must be distinct positive factors, got {list(speeds)}")
        self.sample_rate, self.num_speakers, self.seed, self.augment = sample_rate, num_speakers, seed, augment
        self.on_device = on_device

    @property
    def num_classes(self) -> int:
        return self.num_speakers * len(self.speeds)

    @property
    def plain(self) -> bool:
        """No seed, speed or augmentation: the original torch-RNG crop."""
        return self.seed is None and self.augment is None and self.speeds == (1.0,)

    def rng(self, index: int, epoch: int | None) -> np.random.Generator:
        if self.seed is None:  # per-worker torch RNG picks the item's seed
            return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        return np.random.default_rng([self.seed, _STREAM_ITEM, epoch or 0, index])

    def _read(self, read: Reader, num_samples: int, index: int,
              epoch: int | None) -> tuple[torch.Tensor, int, np.random.Generator | None]:
        """The raw crop (``ceil(chunk * speed)`` samples, wrapped), the speed index and the RNG."""
        n, chunk = num_samples, self.chunk
        if self.plain:
            start = int(torch.randint(0, n - chunk + 1, ()).item()) if n > chunk else 0
            wav = read(start, min(chunk, n))
            return torch.from_numpy(np.resize(wav, chunk) if len(wav) < chunk else wav), 0, None
        rng = self.rng(index, epoch)
        k = int(rng.integers(len(self.speeds))) if len(self.speeds) > 1 else 0
        need = chunk if self.speeds[k] == 1.0 else math.ceil(chunk * self.speeds[k])
        start = int(rng.integers(0, n - need + 1)) if n > need else 0
        wav = read(start, min(need, n))
        return torch.from_numpy(np.resize(wav, need) if len(wav) < need else wav), k, rng

    def __call__(self, read: Reader, num_samples: int, label: int, index: int,
                 epoch: int | None = None) -> tuple[torch.Tensor, int]:
        """``(crop (chunk,), class)`` of an utterance of ``num_samples`` read by ``read``."""
        wav, k, rng = self._read(read, num_samples, index, epoch)
        if rng is None:
            return wav, label
        wav = speed_perturb(wav, self.speeds[k], self.sample_rate)[: self.chunk]
        if self.augment is not None:
            wav = self.augment(wav, rng)
        return wav.float().contiguous(), label + k * self.num_speakers

    def item(self, read: Reader, num_samples: int, label: int, index: int, epoch: int | None = None) -> dict:
        """The item of an utterance: ``{"wav", "label"}``, plus ``"speed"`` and ``"aug"`` (one
        plan or None per leaf transform) with ``on_device``."""
        if not self.on_device:
            wav, label = self(read, num_samples, label, index, epoch)
            return {"wav": wav, "label": label}
        wav, k, rng = self._read(read, num_samples, index, epoch)
        leaves = self.augment.leaves() if self.augment is not None else []
        plan: list[dict | None] = [None] * len(leaves)
        if self.augment is not None:
            for leaf, params in self.augment.plan(self.chunk, rng):
                plan[next(j for j, other in enumerate(leaves) if other is leaf)] = params
        return {"wav": wav, "label": label + k * self.num_speakers, "speed": k, "aug": plan}


class CropDataset(Dataset):
    """One random ``chunk_sec`` crop per utterance and epoch, labelled with its speaker index.

    Utterances shorter than the crop are repeated (wrapped) to fill it, as WeSpeaker does, so
    every item of a batch has the same length and no padding enters training. Index it with
    ``i`` or with ``(epoch, i)`` (what :class:`~xvector.data.collate.EpochSampler` yields);
    the epoch matters only with a ``seed`` (see :class:`CropMaker`).

    Args:
        wavs: utterance id → audio path.
        utt2spk: utterance id → speaker id.
        spk2idx: speaker id → class index.
        chunk_sec: crop length in seconds.
        sample_rate: expected sample rate of every file in Hz.
        seed: per-item RNG seed (crops, speeds, augmentation), or None for torch's RNG.
        augment: transform of each crop, ``(wav (S,), rng) -> (S,)``, or None.
        speeds: speed-perturbation factors; each factor adds ``len(spk2idx)`` classes.
        resample: read files at another rate by resampling (crops are cut at the file's rate
            and resampled to ``chunk_sec`` at ``sample_rate``); False makes such a file an error.
        multichannel: ``"mean"`` (downmix), ``"first"`` or ``"error"``
            (:func:`~xvector.data.audio.load_audio`).
        on_device: items carry raw crops (int16 from 16-bit files at ``sample_rate``) and the
            speed and augmentation plan, for :class:`~xvector.data.batch_augment.BatchAugment`.
    """

    def __init__(
        self,
        wavs: Mapping[str, Path],
        utt2spk: Mapping[str, str],
        spk2idx: Mapping[str, int],
        chunk_sec: float,
        sample_rate: int = 16000,
        seed: int | None = None,
        augment: Callable | None = None,
        speeds: Sequence[float] = (1.0,),
        resample: bool = False,
        multichannel: str = "mean",
        on_device: bool = False,
    ) -> None:
        self.utts = list(wavs)
        self.paths = [wavs[u] for u in self.utts]
        self.labels = [spk2idx[utt2spk[u]] for u in self.utts]
        self.crops = CropMaker(chunk_sec, sample_rate, len(spk2idx), seed, augment, speeds, on_device)
        self.chunk = self.crops.chunk
        self.sample_rate = sample_rate
        self.resample, self.multichannel = resample, multichannel
        self.num_samples: list[int] = []  # at sample_rate
        self.file_rates: list[int] = []
        for utt, path in zip(self.utts, self.paths):
            n, sr = audio_info(path)
            self.num_samples.append(utterance_samples(str(path), utt, n, sr, sample_rate, resample))
            self.file_rates.append(sr)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        path, rate, utt = self.paths[index], self.file_rates[index], self.utts[index]

        int16 = self.crops.on_device and rate == self.sample_rate  # raw samples for the device

        def read(start: int, num: int) -> np.ndarray:  # at the file's rate
            name = f"{path}: utterance {utt!r}"
            if int16:
                return read_audio(path, rate, start, num, multichannel=self.multichannel, name=name, int16=True)[0]
            return load_audio(path, rate, start, num, multichannel=self.multichannel, name=name)

        reader = window_reader(read, rate, self.sample_rate)
        item = self.crops.item(reader, self.num_samples[index], self.labels[index], index, epoch)
        return {**item, "utt": self.utts[index]}


class UtteranceDataset(Dataset):
    """Whole utterances, for validation and extraction. ``lengths`` holds samples per item
    (at ``sample_rate``); ``resample`` and ``multichannel`` as in :class:`CropDataset`."""

    def __init__(self, wavs: Mapping[str, Path], sample_rate: int = 16000, resample: bool = False,
                 multichannel: str = "mean") -> None:
        self.utts = list(wavs)
        self.paths = [wavs[u] for u in self.utts]
        self.sample_rate = sample_rate
        self.resample, self.multichannel = resample, multichannel
        self.lengths = [math.ceil(n * sample_rate / sr) for n, sr in map(audio_info, self.paths)]

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        wav = load_audio(self.paths[index], self.sample_rate, resample=self.resample, multichannel=self.multichannel)
        return {"wav": torch.from_numpy(wav), "utt": self.utts[index]}
