"""Classification heads for speaker training: plain softmax and cosine-margin heads.

Margin heads score an embedding by its cosine to one weight vector per class and penalise the
target class: AM-softmax (CosFace) subtracts ``m`` from the target cosine, AAM-softmax
(ArcFace) adds ``m`` to the target angle, and sub-centre AAM keeps ``K`` weight vectors per
class and scores each class by its closest one. ``margin`` is a plain attribute, so a
:class:`~xvector.training.margin_scheduler.MarginScheduler` may ramp it during training.

Heads map an embedding ``(B, D)`` to logits ``(B, num_classes)``; the loss is cross-entropy on
those logits (in the Lightning module). Margin heads apply their margin only when labels are
given, so the same head serves training and plain cosine classification.

Example:
    >>> import torch
    >>> head = AAMSoftmax(in_dim=4, num_classes=3, scale=30.0, margin=0.2)
    >>> head(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])).shape
    torch.Size([5, 3])
    >>> am = AMSoftmax(in_dim=2, num_classes=2, scale=10.0, margin=0.3)
    >>> with torch.no_grad():
    ...     _ = am.weight.copy_(torch.eye(2))
    >>> am(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))  # s * (cos 0 - m), s * cos(pi/2)
    tensor([[7., 0.]], grad_fn=<MulBackward0>)
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


class CosineMarginHead(nn.Module):
    """Base of the margin heads: scaled cosines to class weights, with a target-logit margin.

    Subclasses define :meth:`target_cosine`, the margin-penalised target cosine.

    Args:
        in_dim: embedding size D.
        num_classes: number of training speakers.
        scale: logit scale ``s`` (32 in WeSpeaker's recipes).
        margin: the margin ``m``; a plain attribute so a scheduler may ramp it.
        sub_centers: weight vectors per class, ``K``; a class scores its best (max cosine) one.
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.2, sub_centers: int = 1) -> None:
        super().__init__()
        if sub_centers < 1:
            raise ValueError(f"sub_centers must be >= 1, got {sub_centers}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        # Row c * K + k is sub-centre k of class c; with K = 1 the layout is AAMSoftmax's.
        self.weight = nn.Parameter(torch.empty(num_classes * sub_centers, in_dim))
        nn.init.xavier_uniform_(self.weight)
        self.num_classes = num_classes
        self.sub_centers = sub_centers
        self.scale = scale
        self.margin = margin

    def cosine(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine of each embedding to each class ``(B, num_classes)``, max over sub-centres."""
        cosine = F.linear(F.normalize(x), F.normalize(self.weight)).clamp(-1.0, 1.0)  # (B, C*K)
        if self.sub_centers > 1:
            cosine = cosine.view(-1, self.num_classes, self.sub_centers).amax(dim=-1)  # (B, C)
        return cosine

    def target_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        """Margin-penalised cosine, elementwise on ``(B, C)``; used only at the labels."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of embeddings ``x (B, D)``; the margin needs ``labels (B,)``."""
        cosine = self.cosine(x)  # (B, C)
        if labels is None or self.margin == 0:
            return self.scale * cosine
        one_hot = F.one_hot(labels, cosine.shape[1]).bool()
        return self.scale * torch.where(one_hot, self.target_cosine(cosine), cosine)

    def extra_repr(self) -> str:
        k = f", sub_centers={self.sub_centers}" if self.sub_centers > 1 else ""
        return f"in_dim={self.weight.shape[1]}, num_classes={self.num_classes}, scale={self.scale}, margin={self.margin}{k}"


class AMSoftmax(CosineMarginHead):
    """Additive (cosine) margin softmax (AM-softmax, Wang et al. 2018; CosFace, Wang et al. 2018).

    Target logit ``s * (cos(theta) - m)``, other logits ``s * cos(theta)``. Args as
    :class:`CosineMarginHead` (``m`` is a cosine offset; 0.2 to 0.35 are usual with s = 30).
    """

    def target_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        return cosine - self.margin


class AAMSoftmax(CosineMarginHead):
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
        super().__init__(in_dim, num_classes, scale, margin)

    def target_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        m = self.margin
        sine = (1.0 - cosine.pow(2)).clamp_min(0).sqrt()
        phi = cosine * math.cos(m) - sine * math.sin(m)  # cos(theta + m)
        return torch.where(cosine > math.cos(math.pi - m), phi, cosine - math.sin(math.pi - m) * m)


class SubCenterAAMSoftmax(AAMSoftmax):
    """Sub-centre ArcFace (Deng et al. 2020): ``K`` weight vectors per class, max cosine over them.

    Noisy or multi-modal classes can spread over several sub-centres instead of pulling one
    centre between them; the margin then applies to the target's closest sub-centre. With
    ``sub_centers=1`` it is :class:`AAMSoftmax`.

    Args:
        in_dim: embedding size D.
        num_classes: number of training speakers.
        scale: logit scale ``s``.
        margin: angular margin ``m`` in radians.
        sub_centers: ``K`` (3 in the paper and in WeSpeaker's large-margin fine-tuning).
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.2, sub_centers: int = 3) -> None:
        CosineMarginHead.__init__(self, in_dim, num_classes, scale, margin, sub_centers)
