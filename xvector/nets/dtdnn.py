"""D-TDNN of Yu & Li (2020), "Densely Connected Time Delay Neural Network for Speaker Verification".

A TDNN whose frame layers are DenseNet blocks (Huang et al. 2017): each layer of a block sees the
concatenation of the block input and the outputs of every earlier layer, and adds ``growth``
channels. Layout (the paper's Table 1 / its reference code ``model/dtdnn.py``, 30-dim MFCC input):

* ``Conv1D(k=5) + BN + ReLU``, F → 128;
* D-TDNN block 1: 6 layers, growth 64, context {t-1, t, t+1} (k=3, d=1); block 2: 12 layers,
  k=3, d=3. Each layer is pre-activated: ``BN-ReLU-Conv1D(k=1)`` to a bottleneck of
  ``bn_size × growth`` = 128 channels, then ``BN-ReLU-Conv1D(k, d)`` to ``growth`` channels;
* after each block a transition layer ``BN-ReLU-Conv1D(k=1)`` halves the channels
  (512 → 256, 1024 → 512);
* statistics pooling (mean ‖ sample standard deviation) → 1024;
* ``FC + BN`` (BatchNorm without scale and shift) → the 512-dim embedding.

2.82 M parameters at 30-dim input, the paper's 2.8 M (``tests/nets/test_dtdnn.py``). Convolutions
are "same"-padded; padding frames are zeroed before every convolution with context and the
pooling is masked, so an utterance in a padded batch gives the embedding it gives alone.
:class:`DenseTDNNBlock` and :class:`TransitLayer` are shared with CAM++
(:mod:`xvector.nets.campp`), whose dense layers replace the dilated convolution by a
context-aware masking layer.

Example:
    >>> import torch
    >>> net = DTDNN(in_channels=24, init_channels=32, growth=8, block_layers=(2, 3), embed_dim=16).eval()
    >>> emb = net(torch.randn(2, 24, 100), torch.tensor([100, 60]))
    >>> emb.shape, net.head_in_dim, net.min_frames
    (torch.Size([2, 16]), 16, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from xvector.nets.pooling import UnbiasedStatsPooling, length_mask
from xvector.nets.tdnn import segment_layers


def masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``x`` with its padding frames zeroed (``mask (B, 1, T)``, or None for no padding)."""
    return x if mask is None else x * mask


def same_padding(kernel_size: int, dilation: int) -> int:
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
    return dilation * (kernel_size - 1) // 2


class MaskedConv(nn.Module):
    """Same-padded dilated ``Conv1d`` (no bias) of zero-masked input: ``(B, C_in, T)`` → ``(B, C_out, T)``.

    D-TDNN's context layer; ``forward`` takes the mask and lengths as every dense layer's
    context operation does (:class:`~xvector.nets.campp.CAMLayer` uses the lengths).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation,
                              padding=same_padding(kernel_size, dilation), bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(masked(x, mask))


class DenseTDNNLayer(nn.Module):
    """``BN-ReLU-Conv(k=1)`` to the bottleneck, ``BN-ReLU`` and the context operation to ``growth`` channels.

    Shapes: ``(B, C_in, T)`` → ``(B, growth, T)``.
    """

    def __init__(self, in_channels: int, growth: int, bottleneck: int, kernel_size: int, dilation: int,
                 context: Callable[..., nn.Module] = MaskedConv) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm1d(in_channels)
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm1d(bottleneck)
        self.context = context(bottleneck, growth, kernel_size, dilation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bottleneck(torch.relu(self.norm1(x)))  # (B, bottleneck, T)
        return self.context(torch.relu(self.norm2(h)), mask, lengths)  # (B, growth, T)


class DenseTDNNBlock(nn.ModuleList):
    """``num_layers`` dense layers, each fed the concatenation of all before it.

    Shapes: ``(B, C, T)`` → ``(B, C + num_layers × growth, T)``.
    """

    def __init__(self, num_layers: int, in_channels: int, growth: int, bottleneck: int, kernel_size: int,
                 dilation: int, context: Callable[..., nn.Module] = MaskedConv) -> None:
        super().__init__(
            DenseTDNNLayer(in_channels + i * growth, growth, bottleneck, kernel_size, dilation, context)
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = torch.cat([x, layer(x, mask, lengths)], dim=1)
        return x


class TransitLayer(nn.Module):
    """``BN-ReLU-Conv(k=1)`` (no bias) between dense blocks: ``(B, C_in, T)`` → ``(B, C_out, T)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(in_channels)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(self.norm(x)))


class DTDNN(nn.Module):
    """D-TDNN speaker-embedding extractor.

    Args:
        in_channels: feature dimension F (30 MFCC in the paper).
        init_channels: channels of the first TDNN layer (128).
        growth: channels each dense layer adds (64).
        bn_size: bottleneck width of a dense layer in multiples of ``growth`` (2).
        block_layers: layers per dense block (6, 12).
        kernel_sizes: context kernel size per block (3, 3); odd.
        dilations: dilation per block (1, 3).
        embed_dim: embedding size (512).
        segment_dims: optional ReLU-BN-affine layers between the embedding and the classifier
            (as :class:`~xvector.nets.tdnn.XVector`'s); ``()`` (the paper) feeds the embedding to
            the head.

    Shapes:
        ``feats (B, F, T)``, ``lengths (B,)`` frames → embedding ``(B, embed_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 30,
        init_channels: int = 128,
        growth: int = 64,
        bn_size: int = 2,
        block_layers: Sequence[int] = (6, 12),
        kernel_sizes: Sequence[int] = (3, 3),
        dilations: Sequence[int] = (1, 3),
        embed_dim: int = 512,
        segment_dims: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not len(block_layers) == len(kernel_sizes) == len(dilations):
            raise ValueError("block_layers, kernel_sizes and dilations need one entry per dense block")
        self.first = nn.Conv1d(in_channels, init_channels, 5, padding=same_padding(5, 1))
        self.first_norm = nn.BatchNorm1d(init_channels)
        self.blocks, self.transits = nn.ModuleList(), nn.ModuleList()
        channels = init_channels
        for n, k, d in zip(block_layers, kernel_sizes, dilations):
            block = DenseTDNNBlock(n, channels, growth, bn_size * growth, k, d)
            self.blocks.append(block)
            self.transits.append(TransitLayer(block.out_channels, block.out_channels // 2))
            channels = block.out_channels // 2
        self.pooling = UnbiasedStatsPooling()
        self.embedding = nn.Linear(UnbiasedStatsPooling.out_dim(channels), embed_dim)
        self.embed_norm = nn.BatchNorm1d(embed_dim, affine=False)
        self.segment_layers, self.head_in_dim = segment_layers(embed_dim, segment_dims)
        self.embed_dim = embed_dim
        self.min_frames = 1  # "same" padding keeps every frame

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if feats.shape[-1] < self.min_frames:
            raise ValueError(f"DTDNN needs at least {self.min_frames} frame, got {feats.shape[-1]}")
        if lengths is not None:
            lengths = lengths.clamp(1, feats.shape[-1])
        mask = length_mask(lengths, feats.shape[-1], feats)  # (B, 1, T) or None
        x = torch.relu(self.first_norm(self.first(masked(feats, mask))))  # (B, init_channels, T)
        for block, transit in zip(self.blocks, self.transits):
            x = transit(block(x, mask, lengths))
        return self.embed_norm(self.embedding(self.pooling(x, lengths)))  # (B, embed_dim)

    def classifier_input(self, embedding: torch.Tensor) -> torch.Tensor:
        """Optional segment layers after the embedding: ``(B, embed_dim)`` → ``(B, head_in_dim)``."""
        return self.segment_layers(embedding)
