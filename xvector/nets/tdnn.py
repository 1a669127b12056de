"""The x-vector TDNN of Snyder et al. (2018), built from dilated ``nn.Conv1d`` layers.

Acoustic features ``(B, F, T)`` enter as Conv1d *channels*; each frame-level layer slides a
kernel over *time*. Kaldi's contexts {t-2..t+2}, {t-2, t, t+2}, {t-3, t, t+3}, {t}, {t} are
kernel sizes 5, 3, 3, 1, 1 with dilations 1, 2, 3, 1, 1. Convolutions are unpadded ("valid"),
as Kaldi's, so ``T`` frames give ``T - 14`` frame-level outputs and an utterance needs at least
15 frames. Statistics pooling then feeds the segment layers; the embedding (x-vector) is the
*affine output* of the first segment layer, before its ReLU and BatchNorm.

Example:
    >>> import torch
    >>> net = XVector(in_channels=24)
    >>> emb = net(torch.randn(2, 24, 200), torch.tensor([200, 150]))
    >>> emb.shape, net.classifier_input(emb).shape
    (torch.Size([2, 512]), torch.Size([2, 512]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from xvector.nets.pooling import StatsPooling


class TDNNLayer(nn.Module):
    """Dilated ``Conv1d`` → ReLU → BatchNorm (Kaldi's ``relu-batchnorm-layer`` order).

    Shapes: ``(B, C_in, T)`` → ``(B, C_out, T - dilation * (kernel_size - 1))``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.activation = nn.ReLU()
        self.norm = nn.BatchNorm1d(out_channels)

    @property
    def context(self) -> int:
        """Frames lost at the edges: ``dilation * (kernel_size - 1)``."""
        return self.conv.dilation[0] * (self.conv.kernel_size[0] - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.activation(self.conv(x)))


def check_min_frames(net: nn.Module, feats: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the net when ``feats (B, F, T)`` has fewer than ``net.min_frames`` frames."""
    if feats.shape[-1] < net.min_frames:
        raise ValueError(f"{type(net).__name__} needs at least {net.min_frames} frames, got {feats.shape[-1]}")


def segment_layers(embed_dim: int, segment_dims: Sequence[int]) -> tuple[nn.Sequential, int]:
    """ReLU-BN-affine layers after the embedding (Kaldi's segment layers), ending in ReLU-BN.

    Returns:
        The layers, ``(B, embed_dim) → (B, head_in_dim)`` (empty for ``()``), and ``head_in_dim``.
    """
    post: list[nn.Module] = []
    prev = embed_dim
    for dim in segment_dims:
        post += [nn.ReLU(), nn.BatchNorm1d(prev), nn.Linear(prev, dim)]
        prev = dim
    if segment_dims:
        post += [nn.ReLU(), nn.BatchNorm1d(prev)]
    return nn.Sequential(*post), prev


class XVector(nn.Module):
    """x-vector extractor: TDNN frame layers, statistics pooling, segment layers.

    Args:
        in_channels: feature dimension F (24 fbank in the paper, 30 MFCC in Kaldi v2, 80 fbank
            in WeSpeaker).
        channels: output channels of the frame layers (paper: 512, 512, 512, 512, 1500).
        kernel_sizes: kernel size per frame layer (5, 3, 3, 1, 1).
        dilations: dilation per frame layer (1, 2, 3, 1, 1).
        embed_dim: size of the first segment layer = the embedding (512).
        segment_dims: sizes of the further segment layers before the classifier (paper: one of
            512); ``()`` feeds the embedding straight to the head, as WeSpeaker's margin recipes.
        pooling: optional factory ``pooling(in_channels=C)`` for the temporal pooling, e.g. a
            partial :class:`~xvector.nets.pooling.AttentiveStatsPooling`; it must give
            ``(B, C, T)`` + lengths → ``(B, out_dim(C))``. ``None``: :class:`StatsPooling`.
        pre_embed_dims: affine-ReLU-BN segment layers *before* the embedding layer, so that the
            embedding is taken from a later segment layer (Kaldi's "embedding b" at segment7;
            WeSpeaker's XVEC embeds at ``seg_2`` after ``seg_1``). They and the embedding layer
            form ``self.embedding`` (an ``nn.Sequential``); ``()`` (default): one ``nn.Linear``.

    Shapes:
        ``feats (B, F, T)``, ``lengths (B,)`` frames → embedding ``(B, embed_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 24,
        channels: Sequence[int] = (512, 512, 512, 512, 1500),
        kernel_sizes: Sequence[int] = (5, 3, 3, 1, 1),
        dilations: Sequence[int] = (1, 2, 3, 1, 1),
        embed_dim: int = 512,
        segment_dims: Sequence[int] = (512,),
        pooling: Callable[..., nn.Module] | None = None,
        pre_embed_dims: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(dilations):
            raise ValueError("channels, kernel_sizes and dilations need one entry per frame layer")
        dims = [in_channels, *channels]
        self.frame_layers = nn.Sequential(
            *(TDNNLayer(dims[i], dims[i + 1], k, d) for i, (k, d) in enumerate(zip(kernel_sizes, dilations)))
        )
        self.context = sum(layer.context for layer in self.frame_layers)
        self.pooling = StatsPooling() if pooling is None else pooling(in_channels=channels[-1])
        prev, pre = self.pooling.out_dim(channels[-1]), []
        for dim in pre_embed_dims:
            pre += [nn.Linear(prev, dim), nn.ReLU(), nn.BatchNorm1d(dim)]
            prev = dim
        self.embedding = nn.Sequential(*pre, nn.Linear(prev, embed_dim)) if pre else nn.Linear(prev, embed_dim)
        self.segment_layers, self.head_in_dim = segment_layers(embed_dim, segment_dims)
        self.embed_dim = embed_dim

    @property
    def min_frames(self) -> int:
        """Shortest input, in frames, that leaves one frame-level output."""
        return self.context + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_min_frames(self, feats)
        x = self.frame_layers(feats)  # (B, C, T - context)
        out_lens = None if lengths is None else (lengths - self.context).clamp_min(1)
        return self.embedding(self.pooling(x, out_lens))  # (B, embed_dim)

    def classifier_input(self, embedding: torch.Tensor) -> torch.Tensor:
        """Segment layers after the embedding: ``(B, embed_dim)`` → ``(B, head_in_dim)``."""
        return self.segment_layers(embedding)
