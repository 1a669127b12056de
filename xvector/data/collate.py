"""Batching variable-length waveforms with their lengths, and length-sorted batching."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Sampler


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
