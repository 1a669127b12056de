"""Statistics pooling: per-utterance mean ‖ standard deviation over valid frames.

Padding frames are masked out by length, so pooling a padded batch gives the same vector as
pooling each utterance alone (tested in ``tests/nets/test_pooling.py``).

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0, 3.0, 99.0]]])  # (B=1, C=1, T=3), last frame is padding
    >>> StatsPooling()(x, torch.tensor([2]))
    tensor([[2., 1.]])
"""

from __future__ import annotations

import torch
from torch import nn


class StatsPooling(nn.Module):
    """Mean and standard deviation over time: ``(B, C, T)`` + lengths ``(B,)`` → ``(B, 2C)``.

    Args:
        var_floor: floor on the (population) variance before the square root, as Kaldi's
            stats-pooling ``variance-floor``; keeps the gradient finite for constant channels.
    """

    def __init__(self, var_floor: float = 1e-10) -> None:
        super().__init__()
        self.var_floor = var_floor

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            mean = x.mean(dim=-1)
            var = x.var(dim=-1, unbiased=False)
        else:
            mask = (torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
            mask = mask.unsqueeze(1)  # (B, 1, T)
            count = lengths.clamp_min(1).to(x.dtype)[:, None]  # (B, 1)
            mean = (x * mask).sum(-1) / count  # (B, C)
            var = (((x - mean.unsqueeze(-1)) * mask) ** 2).sum(-1) / count
        return torch.cat([mean, var.clamp_min(self.var_floor).sqrt()], dim=-1)  # (B, 2C)

    @staticmethod
    def out_dim(in_channels: int) -> int:
        return 2 * in_channels
