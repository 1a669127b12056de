"""Lightning data module: random crops of a training data dir (or shards), whole utterances for validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from xvector.data.batch_augment import BatchAugment, collate_planned
from xvector.data.collate import (
    EpochRandomSampler,
    EpochSampler,
    EpochSequentialSampler,
    LengthSortedBatchSampler,
    collate_waveforms,
)
from xvector.data.datasets import CropDataset, UtteranceDataset
from xvector.data.lists import DataDir, load_data_dir, read_wav_scp
from xvector.data.shards import ShardStream, rank_and_world_size, read_manifest
from xvector.training.resumable import ResumableLoader

AUGMENT_ON = ("workers", "device")


def utterance_loader(wav_scp: str | Path, batch_size: int, num_workers: int = 0, sample_rate: int = 16000,
                     resample: bool = False, multichannel: str = "mean", pin_memory: bool = False) -> DataLoader:
    """Whole-utterance loader over a ``wav.scp``, batched by length (for validation and extraction)."""
    dataset = UtteranceDataset(read_wav_scp(wav_scp), sample_rate, resample, multichannel)
    return DataLoader(
        dataset,
        batch_sampler=LengthSortedBatchSampler(dataset.lengths, batch_size),
        collate_fn=collate_waveforms,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )


class SpeakerDataModule(L.LightningDataModule):
    """Training crops from ``train_dir`` (or ``train_shards``) and whole utterances of ``val_dir``.

    Augmentation and speed perturbation run in the data workers, or batched on the training
    device with ``augment_on="device"``. With ``seed`` set, crops and
    augmentation are drawn per ``(seed, epoch, utterance)`` (the same for any ``num_workers``);
    with ``seed=None`` and no augmentation, training is exactly the original torch-RNG crops.
    The map-style training loader is a :class:`~xvector.training.resumable.ResumableLoader`: a run
    resumed from a mid-epoch checkpoint continues that epoch's batches where it stopped (the
    shard stream restarts the epoch's stream instead).

    Args:
        train_dir: folder with ``wav.scp`` and ``utt2spk`` (map-style, the default).
        val_dir: folder with ``wav.scp`` (its ``trials`` are read by the Lightning module).
        chunk_sec: training crop length in seconds.
        batch_size: training crops per batch.
        val_batch_size: whole utterances per validation batch.
        num_workers: data-loader worker processes.
        sample_rate: sample rate every file must have, in Hz.
        seed: per-item RNG seed (e.g. the run's ``${seed}``), or None.
        augment: crop transform ``(wav (S,), rng) -> (S,)`` (:mod:`xvector.data.augment`), or None.
        speeds: speed-perturbation factors, e.g. ``[1.0, 0.9, 1.1]``; each factor is a new set
            of speaker classes, so :attr:`num_speakers` is ``len(speeds)`` times the speakers.
        train_shards: a shard folder (:mod:`xvector.data.shards`) to stream instead of ``train_dir``.
        shuffle_buffer: utterances in the streaming shuffle buffer.
        shuffle: shuffle training items (off only for tests and debugging).
        resample: resample files at another rate (False: such a file is an error naming it).
        multichannel: ``"mean"`` downmixes, ``"first"`` keeps channel 0, ``"error"`` refuses.
        pin_memory: page-locked batches for faster host-to-GPU copies; ``None``: when CUDA is
            available (it does nothing for CPU training).
        augment_on: ``"workers"``: speed perturbation and ``augment`` run per crop in the data
            workers (the CPU path); ``"device"``: the workers only read and crop (int16 from
            16-bit files) and plan, and :attr:`batch_augment` applies speed, noise and
            reverberation to the whole batch in the training step, on its device, with the
            noise and RIR files read once into device memory. Same draws, same distributions.
    """

    def __init__(
        self,
        train_dir: str | None = None,
        val_dir: str | None = None,
        chunk_sec: float = 2.0,
        batch_size: int = 64,
        val_batch_size: int = 16,
        num_workers: int = 1,
        sample_rate: int = 16000,
        seed: int | None = None,
        augment: Callable | None = None,
        speeds: Sequence[float] = (1.0,),
        train_shards: str | None = None,
        shuffle_buffer: int = 1000,
        shuffle: bool = True,
        resample: bool = False,
        multichannel: str = "mean",
        pin_memory: bool | None = None,
        augment_on: str = "workers",
    ) -> None:
        super().__init__()
        if augment_on not in AUGMENT_ON:
            raise ValueError(f"augment_on={augment_on!r}: expected one of {AUGMENT_ON}")
        self.on_device = augment_on == "device"
        if (train_dir is None) == (train_shards is None):
            raise ValueError(f"give exactly one of train_dir ({train_dir}) and train_shards ({train_shards})")
        self.train_dir = Path(train_dir) if train_dir else None
        self.train_shards = Path(train_shards) if train_shards else None
        self.val_dir = Path(val_dir) if val_dir else None
        self.chunk_sec = chunk_sec
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.sample_rate = sample_rate
        self.seed, self.augment, self.speeds = seed, augment, tuple(speeds)
        self.resample, self.multichannel = resample, multichannel
        self.shuffle_buffer, self.shuffle = shuffle_buffer, shuffle
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)

    @cached_property
    def train_data(self) -> DataDir:
        return load_data_dir(self.train_dir)

    @cached_property
    def spk2idx(self) -> dict[str, int]:
        """Speaker id → class index, in sorted speaker order (stable across runs)."""
        speakers = read_manifest(self.train_shards)["speakers"] if self.train_shards else self.train_data.speakers
        return {spk: i for i, spk in enumerate(speakers)}

    @cached_property
    def batch_augment(self) -> BatchAugment | None:
        """The on-device half of ``augment_on=device`` (its noise and RIR files read here, once
        per process), for the training step; None with ``augment_on=workers``."""
        if not self.on_device:
            return None
        chunk = int(round(self.chunk_sec * self.sample_rate))
        return BatchAugment(self.augment, self.speeds, self.sample_rate, chunk)

    @property
    def num_speakers(self) -> int:
        """Training classes: speakers times speed factors."""
        return len(self.spk2idx) * len(self.speeds)

    def _epoch_and_rank(self) -> tuple[int, int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.current_epoch, trainer.global_rank, trainer.world_size
        return (0, *rank_and_world_size())

    def train_dataloader(self) -> DataLoader:
        collate = collate_planned if self.on_device else collate_waveforms
        loader = dict(batch_size=self.batch_size, drop_last=True, collate_fn=collate,
                      num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                      pin_memory=self.pin_memory)
        if self.train_shards is not None:
            epoch, rank, world_size = self._epoch_and_rank()
            # Persistent workers keep their copy's epoch count (see ShardStream.__iter__).
            stream = ShardStream(self.train_shards, self.chunk_sec, self.sample_rate, self.seed, self.augment,
                                 self.speeds, self.shuffle, self.shuffle_buffer, rank, world_size,
                                 self.num_workers, start_epoch=epoch, resample=self.resample,
                                 multichannel=self.multichannel, on_device=self.on_device)
            if len(stream) < self.batch_size:
                raise ValueError(f"{self.train_shards}: {len(stream)} utterances per epoch, "
                                 f"fewer than batch_size={self.batch_size}")
            return DataLoader(stream, **loader)
        data = self.train_data
        dataset = CropDataset(data.wavs, data.utt2spk, self.spk2idx, self.chunk_sec, self.sample_rate,
                              self.seed, self.augment, self.speeds, self.resample, self.multichannel,
                              self.on_device)
        if len(dataset) < self.batch_size:
            raise ValueError(f"{self.train_dir}: {len(dataset)} utterances, fewer than batch_size={self.batch_size}")
        if self.seed is None:  # the original sampling: torch's RNG shuffles
            sampler = EpochRandomSampler(dataset) if self.shuffle else EpochSequentialSampler(dataset)
        else:
            sampler = EpochSampler(len(dataset), self.seed, self.shuffle)
        # A checkpoint records the loader's place in the epoch; a resume continues from it.
        return ResumableLoader(dataset, sampler=sampler, **loader)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dir is None:
            return []
        return utterance_loader(self.val_dir / "wav.scp", self.val_batch_size, self.num_workers, self.sample_rate,
                                self.resample, self.multichannel, self.pin_memory)

