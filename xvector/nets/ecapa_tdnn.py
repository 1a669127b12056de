"""ECAPA-TDNN of Desplanques et al. (2020): SE-Res2Blocks, multi-layer feature aggregation and
channel- and context-dependent attentive statistics pooling.

Layout (paper, Fig. 2; ``C`` = 512 or 1024, 80-dim fbank input):

* ``Conv1D + ReLU + BN`` (k=5, d=1), F → C;
* three SE-Res2Blocks (k=3, dilations 2, 3, 4): ``Conv1D(k=1)+ReLU+BN`` → Res2 dilated conv of
  scale 8 (C/8-channel groups, each ``Conv+ReLU+BN``, group i also receiving group i-1's
  output) → ``Conv1D(k=1)+ReLU+BN`` → squeeze-excitation (bottleneck 128) → residual add. Each
  block's input is the sum of the outputs of the first layer and all earlier blocks (the
  paper's "summation" residual connections);
* multi-layer feature aggregation: the three block outputs concatenated (3C) →
  ``Conv1D(k=1)+ReLU`` → 1536;
* attentive statistics pooling, channel-dependent with global context → BN (3072);
* ``FC + BN`` → 192-dim embedding.

Convolutions are "same"-padded, so every frame is kept; padding frames are zeroed before each
convolution with context so that an utterance in a padded batch sees exactly the zero padding
it would see alone, and the squeeze-excitation means and the pooling are masked by length.

Example:
    >>> import torch
    >>> net = ECAPATDNN(in_channels=24, channels=(64, 64, 64, 64, 192)).eval()
    >>> emb = net(torch.randn(2, 24, 100), torch.tensor([100, 60]))
    >>> emb.shape, net.head_in_dim, net.min_frames
    (torch.Size([2, 192]), 192, 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xvector.nets.pooling import AttentiveStatsPooling, length_mask
from xvector.nets.tdnn import segment_layers


class ConvReluBN(nn.Module):
    """Same-padded ``Conv1d`` → ReLU → BatchNorm: ``(B, C_in, T)`` → ``(B, C_out, T)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)
        self.activation = nn.ReLU()
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.activation(self.conv(x)))


class Res2Conv(nn.Module):
    """Res2Net dilated convolution (Gao et al. 2019): ``(B, C, T)`` → ``(B, C, T)``.

    Channels are split into ``scale`` groups; group 1 passes through, group i > 1 becomes
    ``K_i(x_i + y_{i-1})`` with ``K_i`` a ``ConvReluBN`` of width ``C / scale``.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int = 8) -> None:
        super().__init__()
        if scale < 2 or channels % scale:
            raise ValueError(f"channels ({channels}) must be divisible by scale ({scale} >= 2)")
        self.width = channels // scale
        self.convs = nn.ModuleList(ConvReluBN(self.width, self.width, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        groups = torch.split(x, self.width, dim=1)  # scale × (B, C/scale, T)
        out, y = [groups[0]], None
        for conv, group in zip(self.convs, groups[1:]):
            y = group if y is None else group + y
            y = conv(y if mask is None else y * mask)  # padding enters the conv as zeros
            out.append(y)
        return torch.cat(out, dim=1)  # (B, C, T)


class SqueezeExcitation(nn.Module):
    """Channel gates from the masked time average: ``(B, C, T)`` → ``(B, C, T)`` (Hu et al. 2018)."""

    def __init__(self, channels: int, bottleneck: int = 128) -> None:
        super().__init__()
        self.reduce = nn.Conv1d(channels, bottleneck, kernel_size=1)
        self.expand = nn.Conv1d(bottleneck, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mean = x.mean(dim=-1, keepdim=True)
        else:
            mean = (x * mask).sum(-1, keepdim=True) / lengths.clamp_min(1).to(x)[:, None, None]  # (B, C, 1)
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(mean))))  # (B, C, 1)
        return x * gate


class SERes2Block(nn.Module):
    """SE-Res2Block: ``k=1`` layer, Res2 dilated conv, ``k=1`` layer, SE, residual: ``(B, C, T)`` → same."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int = 8, se_channels: int = 128) -> None:
        super().__init__()
        self.conv_in = ConvReluBN(channels, channels)
        self.res2 = Res2Conv(channels, kernel_size, dilation, scale)
        self.conv_out = ConvReluBN(channels, channels)
        self.se = SqueezeExcitation(channels, se_channels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv_out(self.res2(self.conv_in(x), mask))
        return x + self.se(out, lengths, mask)


class ECAPATDNN(nn.Module):
    """ECAPA-TDNN speaker-embedding extractor.

    Args:
        in_channels: feature dimension F (80 fbank in the paper).
        channels: ``(C, C, C, C, C_mfa)``: the first layer, the three SE-Res2Blocks (all C, as
            their inputs are summed) and the aggregation layer (1536 in the paper for both
            C = 512 and C = 1024). More or fewer blocks: one entry per block.
        kernel_sizes: kernel sizes, one per entry of ``channels`` (5, 3, 3, 3, 1); odd.
        dilations: dilations, one per entry of ``channels`` (1, 2, 3, 4, 1).
        scale: Res2Net scale (8): groups per Res2 convolution; C must be divisible by it.
        se_channels: squeeze-excitation bottleneck (128).
        attention_channels: hidden size of the pooling attention (128).
        global_context: let the pooling attention see the utterance mean and std (paper: yes).
        embed_dim: embedding size (192).
        segment_dims: optional ReLU-BN-affine layers between the embedding and the classifier,
            as :class:`~xvector.nets.tdnn.XVector`'s; ``()`` (the paper) feeds the embedding
            to the head.

    Shapes:
        ``feats (B, F, T)``, ``lengths (B,)`` frames → embedding ``(B, embed_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 80,
        channels: Sequence[int] = (512, 512, 512, 512, 1536),
        kernel_sizes: Sequence[int] = (5, 3, 3, 3, 1),
        dilations: Sequence[int] = (1, 2, 3, 4, 1),
        scale: int = 8,
        se_channels: int = 128,
        attention_channels: int = 128,
        global_context: bool = True,
        embed_dim: int = 192,
        segment_dims: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(dilations) or len(channels) < 3:
            raise ValueError("channels, kernel_sizes and dilations need one entry per layer, and at least 3 layers")
        if len(set(channels[:-1])) != 1:
            raise ValueError(f"the first layer and all SE-Res2Blocks need the same channels, got {list(channels[:-1])}")
        width, n_blocks = channels[0], len(channels) - 2
        self.first = ConvReluBN(in_channels, width, kernel_sizes[0], dilations[0])
        self.blocks = nn.ModuleList(
            SERes2Block(width, k, d, scale, se_channels) for k, d in zip(kernel_sizes[1:-1], dilations[1:-1])
        )
        mfa_padding = dilations[-1] * (kernel_sizes[-1] - 1) // 2
        self.aggregate = nn.Conv1d(
            n_blocks * width, channels[-1], kernel_sizes[-1], dilation=dilations[-1], padding=mfa_padding
        )
        self.pooling = AttentiveStatsPooling(
            channels[-1], attention_channels, channel_dependent=True, global_context=global_context
        )
        pooled = AttentiveStatsPooling.out_dim(channels[-1])
        self.pool_norm = nn.BatchNorm1d(pooled)
        self.embedding = nn.Linear(pooled, embed_dim)
        self.embed_norm = nn.BatchNorm1d(embed_dim)
        self.segment_layers, self.head_in_dim = segment_layers(embed_dim, segment_dims)
        self.embed_dim = embed_dim
        self.min_frames = 1  # "same" padding keeps every frame

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if feats.shape[-1] < self.min_frames:
            raise ValueError(f"ECAPATDNN needs at least {self.min_frames} frame, got {feats.shape[-1]}")
        if lengths is not None:
            lengths = lengths.clamp(1, feats.shape[-1])
        mask = length_mask(lengths, feats.shape[-1], feats)  # (B, 1, T) or None

        def masked(x: torch.Tensor) -> torch.Tensor:
            return x if mask is None else x * mask

        x = self.first(masked(feats))  # (B, C, T)
        total, outs = x, []
        for block in self.blocks:
            out = block(masked(total), lengths, mask)  # (B, C, T)
            outs.append(out)
            total = total + out
        x = torch.relu(self.aggregate(masked(torch.cat(outs, dim=1))))  # (B, C_mfa, T)
        pooled = self.pool_norm(self.pooling(x, lengths))  # (B, 2 C_mfa)
        return self.embed_norm(self.embedding(pooled))  # (B, embed_dim)

    def classifier_input(self, embedding: torch.Tensor) -> torch.Tensor:
        """Optional segment layers after the embedding: ``(B, embed_dim)`` → ``(B, head_in_dim)``."""
        return self.segment_layers(embedding)
