"""SpecAugment-style masking of training features: random frequency bands and time spans.

Park et al. 2019 without time warping, as speaker recipes use it (WeSpeaker's ``spec_aug``):
each utterance gets ``freq_masks`` bands of up to ``max_freq_width`` bins and ``time_masks``
spans of up to ``max_time_width`` frames set to ``value`` (0, the mean after CMN). Time spans
lie inside each utterance's valid frames, so padding is never counted as masked speech. The
module masks only in training mode; ``eval()`` (validation, extraction) passes features
through unchanged. Draws come from torch's global RNG, so a seeded run masks reproducibly.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> aug = SpecAugment(freq_masks=1, max_freq_width=4, time_masks=1, max_time_width=5)
    >>> feats = torch.ones(2, 20, 8)  # (B, T, F)
    >>> out = aug(feats, torch.tensor([20, 12]))
    >>> out.shape, bool((out == 0).any()), bool((aug.eval()(feats, torch.tensor([20, 12])) == feats).all())
    (torch.Size([2, 20, 8]), True, True)
"""

from __future__ import annotations

import torch
from torch import nn


def _band_mask(size: int, lens: torch.Tensor, num: int, max_width: int) -> torch.Tensor:
    """``(B, size)`` bool: ``num`` random bands of width ``0..max_width`` inside ``[0, lens[b])``."""
    B = lens.shape[0]
    mask = torch.zeros(B, size, dtype=torch.bool, device=lens.device)
    if num == 0 or max_width == 0:
        return mask
    pos = torch.arange(size, device=lens.device)[None, :]  # (1, size)
    for _ in range(num):
        width = torch.randint(0, max_width + 1, (B,), device=lens.device)
        width = torch.minimum(width, lens)  # (B,)
        room = (lens - width + 1).clamp_min(1)  # start in [0, lens - width]
        start = (torch.rand(B, device=lens.device) * room).long()
        mask |= (pos >= start[:, None]) & (pos < (start + width)[:, None])
    return mask


class SpecAugment(nn.Module):
    """Random frequency and time masks on ``feats (B, T, F)``, in training mode only.

    Args:
        freq_masks: frequency bands masked per utterance (0 disables).
        max_freq_width: widest band, in feature bins.
        time_masks: time spans masked per utterance (0 disables).
        max_time_width: longest span, in frames.
        value: what masked entries become (0.0 is the utterance mean after CMN).

    Raises:
        ValueError: on a negative count or width.
    """

    def __init__(
        self,
        freq_masks: int = 0,
        max_freq_width: int = 8,
        time_masks: int = 0,
        max_time_width: int = 10,
        value: float = 0.0,
    ) -> None:
        super().__init__()
        for name, v in (("freq_masks", freq_masks), ("max_freq_width", max_freq_width),
                        ("time_masks", time_masks), ("max_time_width", max_time_width)):
            if v < 0:
                raise ValueError(f"SpecAugment: {name}={v} must be >= 0")
        self.freq_masks, self.max_freq_width = freq_masks, max_freq_width
        self.time_masks, self.max_time_width = time_masks, max_time_width
        self.value = value

    def forward(self, feats: torch.Tensor, frame_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Masked copy of ``feats (B, T, F)``; ``frame_lens (B,)`` bounds the time spans."""
        if not self.training or (self.freq_masks == 0 and self.time_masks == 0):
            return feats
        B, T, F = feats.shape
        if frame_lens is None:
            frame_lens = torch.full((B,), T, dtype=torch.long, device=feats.device)
        freq = _band_mask(F, torch.full_like(frame_lens, F), self.freq_masks, self.max_freq_width)  # (B, F)
        time = _band_mask(T, frame_lens.clamp(0, T), self.time_masks, self.max_time_width)  # (B, T)
        mask = freq[:, None, :] | time[:, :, None]  # (B, T, F)
        return feats.masked_fill(mask, self.value)

    def extra_repr(self) -> str:
        return (f"freq_masks={self.freq_masks}, max_freq_width={self.max_freq_width}, "
                f"time_masks={self.time_masks}, max_time_width={self.max_time_width}")
