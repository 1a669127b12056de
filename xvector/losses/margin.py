"""Classification heads for speaker training: plain softmax and additive angular margin.

Heads map an embedding ``(B, D)`` to logits ``(B, num_classes)``; the loss is cross-entropy on
those logits (in the Lightning module). Margin heads apply their margin only when labels are
given, so the same head serves training and plain cosine classification.

Example:
    >>> import torch
    >>> head = AAMSoftmax(in_dim=4, num_classes=3, scale=30.0, margin=0.2)
    >>> head(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])).shape
    torch.Size([5, 3])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Softmax(nn.Module):
    """Affine output layer (Kaldi's x-vector ``output`` layer). Labels are ignored."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x)


class AAMSoftmax(nn.Module):
    """Additive angular margin softmax (ArcFace; Deng et al. 2019).

    Target logit ``s * cos(theta + m)``, other logits ``s * cos(theta)``. Past ``theta = pi - m``
    where ``cos(theta + m)`` would stop decreasing, the target logit falls back to
    ``s * (cos(theta) - m * sin(m))`` (the usual "hard margin" fix) so the loss stays monotone.

    Args:
        in_dim: embedding size D.
        num_classes: number of training speakers.
        scale: logit scale ``s`` (32 in WeSpeaker's recipes).
        margin: angular margin ``m`` in radians; a plain attribute so a scheduler may ramp it.
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale
        self.margin = margin

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = F.linear(F.normalize(x), F.normalize(self.weight)).clamp(-1.0, 1.0)  # (B, C)
        if labels is None or self.margin == 0:
            return self.scale * cosine
        m = self.margin
        sine = (1.0 - cosine.pow(2)).clamp_min(0).sqrt()
        phi = cosine * math.cos(m) - sine * math.sin(m)  # cos(theta + m)
        phi = torch.where(cosine > math.cos(math.pi - m), phi, cosine - math.sin(math.pi - m) * m)
        one_hot = F.one_hot(labels, cosine.shape[1]).bool()
        return self.scale * torch.where(one_hot, phi, cosine)

    def extra_repr(self) -> str:
        return f"in_dim={self.weight.shape[1]}, num_classes={self.weight.shape[0]}, scale={self.scale}, margin={self.margin}"
