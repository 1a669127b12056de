"""Batching variable-length waveforms with their lengths; length-sorted and per-epoch sampling."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import RandomSampler, Sampler, SequentialSampler


def collate_waveforms(items: Sequence[dict]) -> dict:
    """Pad ``{"wav": (S_i,)}`` items to ``wav (B, S)`` with ``wav_lens (B,)``.

    Also carries ``utts`` (list of ids) and, when items have them, ``labels (B,)``.

    Example:
        >>> import torch
        >>> b = collate_waveforms([{"wav": torch.ones(3), "utt": "a"}, {"wav": torch.ones(1), "utt": "b"}])
        >>> b["wav"].tolist(), b["wav_lens"].tolist(), b["utts"]
        ([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], [3, 1], ['a', 'b'])
    """
    lens = torch.tensor([len(it["wav"]) for it in items], dtype=torch.long)
    wav = torch.zeros(len(items), int(lens.max()), dtype=torch.float32)
    for i, it in enumerate(items):
        wav[i, : lens[i]] = it["wav"]
    batch = {"wav": wav, "wav_lens": lens, "utts": [it["utt"] for it in items]}
    if "label" in items[0]:
        batch["labels"] = torch.tensor([it["label"] for it in items], dtype=torch.long)
    return batch


class LengthSortedBatchSampler(Sampler[list[int]]):
    """Batches of indices sorted by decreasing length, so each batch pads little.

    Args:
        lengths: length of each item (samples).
        batch_size: items per batch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int) -> None:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        self.batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` keys, shuffled per epoch by ``seed``, for seeded datasets.

    The epoch travels with each index, so datasets in (persistent) worker processes can seed
    per ``(epoch, index)`` without shared state. Lightning calls :meth:`set_epoch` before each
    epoch (also through its distributed wrapper), so a resumed run repeats the same epochs.

    Args:
        num_items: dataset length.
        seed: seed of the per-epoch permutation.
        shuffle: permute the indices each epoch; in order when False.

    Example:
        >>> s = EpochSampler(3, seed=0, shuffle=False)
        >>> s.set_epoch(2)
        >>> list(s)
        [(2, 0), (2, 1), (2, 2)]
    """

    def __init__(self, num_items: int, seed: int, shuffle: bool = True) -> None:
        self.num_items, self.seed, self.shuffle, self.epoch = num_items, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = range(self.num_items)
        if self.shuffle:  # tag 5 keeps this stream apart from the datasets' per-item streams
            order = np.random.default_rng([self.seed, 5, self.epoch]).permutation(self.num_items).tolist()
        return iter([(self.epoch, i) for i in order])

    def __len__(self) -> int:
        return self.num_items


class EpochRandomSampler(RandomSampler):
    """torch's :class:`RandomSampler` (shuffled with torch's global RNG, as always) that records
    the epoch Lightning sets, so a :class:`~xvector.training.resumable.ResumableLoader` knows which
    epoch a saved position belongs to. Under DDP Lightning replaces it as any ``RandomSampler``."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class EpochSequentialSampler(SequentialSampler):
    """:class:`SequentialSampler` recording the epoch Lightning sets (see :class:`EpochRandomSampler`)."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
