"""Lightning data module: random crops of a training data dir, whole utterances for validation."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from xvector.data.collate import LengthSortedBatchSampler, collate_waveforms
from xvector.data.datasets import CropDataset, UtteranceDataset
from xvector.data.lists import DataDir, load_data_dir, read_wav_scp


def utterance_loader(wav_scp: str | Path, batch_size: int, num_workers: int = 0, sample_rate: int = 16000) -> DataLoader:
    """Whole-utterance loader over a ``wav.scp``, batched by length (for validation and extraction)."""
    dataset = UtteranceDataset(read_wav_scp(wav_scp), sample_rate)
    return DataLoader(
        dataset,
        batch_sampler=LengthSortedBatchSampler(dataset.lengths, batch_size),
        collate_fn=collate_waveforms,
        num_workers=num_workers,
    )


class SpeakerDataModule(L.LightningDataModule):
    """Training crops from ``train_dir`` and whole utterances of ``val_dir`` (Kaldi data dirs).

    Args:
        train_dir: folder with ``wav.scp`` and ``utt2spk``.
        val_dir: folder with ``wav.scp`` (its ``trials`` are read by the Lightning module).
        chunk_sec: training crop length in seconds.
        batch_size: training crops per batch.
        val_batch_size: whole utterances per validation batch.
        num_workers: data-loader worker processes.
        sample_rate: sample rate every file must have, in Hz.
    """

    def __init__(
        self,
        train_dir: str,
        val_dir: str | None = None,
        chunk_sec: float = 2.0,
        batch_size: int = 64,
        val_batch_size: int = 16,
        num_workers: int = 1,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        self.train_dir = Path(train_dir)
        self.val_dir = Path(val_dir) if val_dir else None
        self.chunk_sec = chunk_sec
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.sample_rate = sample_rate

    @cached_property
    def train_data(self) -> DataDir:
        return load_data_dir(self.train_dir)

    @cached_property
    def spk2idx(self) -> dict[str, int]:
        """Speaker id → class index, in sorted speaker order (stable across runs)."""
        return {spk: i for i, spk in enumerate(self.train_data.speakers)}

    @property
    def num_speakers(self) -> int:
        return len(self.spk2idx)

    def train_dataloader(self) -> DataLoader:
        data = self.train_data
        dataset = CropDataset(data.wavs, data.utt2spk, self.spk2idx, self.chunk_sec, self.sample_rate)
        if len(dataset) < self.batch_size:
            raise ValueError(f"{self.train_dir}: {len(dataset)} utterances, fewer than batch_size={self.batch_size}")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=collate_waveforms,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dir is None:
            return []
        return utterance_loader(self.val_dir / "wav.scp", self.val_batch_size, self.num_workers, self.sample_rate)
