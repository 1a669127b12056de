"""Cepstral mean normalisation over padded batches: per utterance or Kaldi's sliding window.

``"level"`` subtracts one number per utterance, the mean over its frames *and* bins: a gain
moves every log-mel value by the same amount, so this removes the level and nothing else,
keeping the long-term spectral shape (a speaker cue that per-bin CMN removes with the channel).

Padding frames (at and beyond ``frame_lens``) never enter a mean and are zeroed on output, so a
padded utterance normalises exactly as it would alone.

Example:
    >>> import torch
    >>> feats = torch.arange(6.0).reshape(1, 3, 2)  # (B, T, F)
    >>> CMN("utterance")(feats, torch.tensor([2]))[0]
    tensor([[-1., -1.],
            [ 1.,  1.],
            [ 0.,  0.]])
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("none", "utterance", "sliding", "level")


def length_mask(lens: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, max_len)`` bool mask, True on the first ``lens[b]`` positions of row ``b``."""
    return torch.arange(max_len, device=lens.device)[None, :] < lens[:, None]


def utterance_cmn(feats: torch.Tensor, frame_lens: torch.Tensor) -> torch.Tensor:
    """Subtract each utterance's mean over its valid frames. ``feats (B, T, F)``."""
    mask = length_mask(frame_lens, feats.shape[1]).unsqueeze(-1).to(feats.dtype)  # (B, T, 1)
    mean = (feats * mask).sum(1, keepdim=True) / frame_lens.clamp_min(1)[:, None, None].to(feats.dtype)
    return (feats - mean) * mask


def level_norm(feats: torch.Tensor, frame_lens: torch.Tensor) -> torch.Tensor:
    """Subtract each utterance's mean over its valid frames and all bins. ``feats (B, T, F)``."""
    mask = length_mask(frame_lens, feats.shape[1]).unsqueeze(-1).to(feats.dtype)  # (B, T, 1)
    count = (frame_lens.clamp_min(1) * feats.shape[2]).to(feats.dtype)[:, None, None]
    return (feats - (feats * mask).sum((1, 2), keepdim=True) / count) * mask


def sliding_cmn(feats: torch.Tensor, frame_lens: torch.Tensor, window: int = 300) -> torch.Tensor:
    """Kaldi ``apply-cmvn-sliding --center=true --norm-vars=false --cmn-window=window``.

    Frame ``t`` subtracts the mean of frames ``[t - window//2, t - window//2 + window)``, the
    window shifted to lie inside the utterance when it would cross an edge (and cut to the
    utterance when it is shorter). Vectorised with a cumulative sum instead of Kaldi's loop.
    """
    B, T, F = feats.shape
    mask = length_mask(frame_lens, T)  # (B, T)
    csum = torch.cumsum(torch.cat([feats.new_zeros(B, 1, F), feats * mask.unsqueeze(-1)], 1), 1)  # (B, T+1, F)
    t = torch.arange(T, device=feats.device)[None, :]  # (1, T)
    n = frame_lens[:, None]  # (B, 1)
    start = (t - window // 2).clamp_min(0)
    end = start + window
    start = torch.where(end > n, (n - window).clamp_min(0), start)
    end = torch.minimum(end, n).clamp_min(1)
    start = torch.minimum(start, end - 1)
    idx = lambda i: i.unsqueeze(-1).expand(B, T, F)  # noqa: E731
    total = csum.gather(1, idx(end)) - csum.gather(1, idx(start))
    mean = total / (end - start).unsqueeze(-1).to(feats.dtype)
    return (feats - mean) * mask.unsqueeze(-1)


class CMN(nn.Module):
    """Cepstral mean normalisation as a module: ``mode`` is one of ``none``, ``utterance``,
    ``sliding``, ``level``."""

    def __init__(self, mode: str = "utterance", window: int = 300) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"CMN mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.window = window

    def forward(self, feats: torch.Tensor, frame_lens: torch.Tensor) -> torch.Tensor:
        if self.mode == "utterance":
            return utterance_cmn(feats, frame_lens)
        if self.mode == "sliding":
            return sliding_cmn(feats, frame_lens, self.window)
        if self.mode == "level":
            return level_norm(feats, frame_lens)
        return feats * length_mask(frame_lens, feats.shape[1]).unsqueeze(-1).to(feats.dtype)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, window={self.window}"
