"""CAM++ of Wang et al. (2023), "CAM++: A Fast and Efficient Network for Speaker Verification
Using Context-Aware Masking": a D-TDNN with a 2-D convolutional front and context-aware masking.

Layout (3D-Speaker's ``speakerlab/models/campplus``, which WeSpeaker's ``models/campplus.py``
ports; 80-dim fbank input):

* **FCM** (front-end convolution module): ``Conv2D(3×3) + BN + ReLU`` to 32 channels, two
  stages of two 2-D residual blocks whose first block halves the *frequency* axis (stride (2, 1)),
  and ``Conv2D(3×3, stride (2, 1)) + BN + ReLU``: frequency 80 → 10, flattened to 32 × 10 = 320
  channels per frame. Time keeps its resolution;
* ``Conv1D(k=5, stride 2) + BN + ReLU`` → 128 channels at *half* the frame rate;
* three D-TDNN blocks (12, 24, 16 layers; growth 32; bottleneck 128; k=3 with dilations 1, 2, 2),
  each followed by a transition layer halving the channels (512 → 256, 1024 → 512, 1024 → 512).
  Each dense layer's dilated convolution is a **CAM layer**: its output ``y`` is multiplied by a
  sigmoid mask computed from the utterance mean plus the mean of the frame's 100-frame segment,
  through a ``C → C/2 → growth`` bottleneck (the context-aware mask);
* ``BN + ReLU``, statistics pooling (mean ‖ sample standard deviation) → 1024;
* ``FC + BN`` (BatchNorm without scale and shift) → the 512-dim embedding.

7.18 M parameters at 80-dim input and a 512-dim embedding, the paper's 7.18 M, which counts the
embedding net without the classifier (``tests/nets/test_campp.py``).

Padded batches: padding frames are zeroed before every convolution with time context (2-D and
1-D), the stride-2 layer maps ``n`` valid frames to ``ceil(n / 2)``, and the utterance means,
segment means and pooling use the valid frames only, so an utterance's embedding does not depend
on the batch. Segment means are taken per segment (``ceil(T / 100)`` of them) and the masks are
computed per segment, then repeated over its frames: the same values as 3D-Speaker's per-frame
computation, which repeats the segment mean first.

Example:
    >>> import torch
    >>> net = CAMPlusPlus(in_channels=24, fcm_channels=8, init_channels=32, growth=8,
    ...                   block_layers=(2, 2, 2), embed_dim=16).eval()
    >>> emb = net(torch.randn(2, 24, 150), torch.tensor([150, 90]))
    >>> emb.shape, net.head_in_dim, net.min_frames
    (torch.Size([2, 16]), 16, 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xvector.nets.dtdnn import DenseTDNNBlock, TransitLayer, masked, same_padding
from xvector.nets.pooling import UnbiasedStatsPooling, length_mask
from xvector.nets.tdnn import segment_layers


class ResBlock2d(nn.Module):
    """ResNet basic block on ``(B, C, F, T)``, striding the frequency axis only (time unchanged)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:  # 1×1: no time context, no mask needed
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(masked(x, mask))))
        out = self.bn2(self.conv2(masked(out, mask)))
        return torch.relu(out + self.shortcut(x))


class FCM(nn.Module):
    """Front-end convolution module: ``(B, F, T)`` features → ``(B, channels × F', T)``, F' = ceil(F / 8).

    Args:
        in_channels: feature dimension F.
        channels: 2-D channels (32).
        num_blocks: residual blocks per stage (2, 2); each stage halves the frequency axis.
    """

    def __init__(self, in_channels: int = 80, channels: int = 32, num_blocks: Sequence[int] = (2, 2)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.ModuleList(ResBlock2d(channels, channels, 2 if i == 0 else 1) for i in range(num_blocks[0]))
        self.layer2 = nn.ModuleList(ResBlock2d(channels, channels, 2 if i == 0 else 1) for i in range(num_blocks[1]))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        freq = in_channels
        for _ in range(3):  # three stride-2 3×3 convolutions with padding 1: ceil(F / 2) each
            freq = (freq + 1) // 2
        self.out_channels = channels * freq

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask2d = None if mask is None else mask.unsqueeze(1)  # (B, 1, 1, T)
        x = torch.relu(self.bn1(self.conv1(masked(feats.unsqueeze(1), mask2d))))  # (B, C, F, T)
        for block in [*self.layer1, *self.layer2]:
            x = block(x, mask2d)
        x = torch.relu(self.bn2(self.conv2(masked(x, mask2d))))  # (B, C, F', T)
        return x.flatten(1, 2)  # (B, C F', T)


def segment_means(x: torch.Tensor, mask: torch.Tensor | None, seg_len: int) -> torch.Tensor:
    """Means of ``x (B, C, T)`` over consecutive ``seg_len``-frame segments of the valid frames: ``(B, C, ceil(T / seg_len))``.

    The last segment of an utterance averages the frames it has. (Both average pools divide by
    the same window size, which cancels, so the ratio is the mean over valid frames.)
    """
    if mask is None:
        return F.avg_pool1d(x, seg_len, seg_len, ceil_mode=True)
    sums = F.avg_pool1d(x * mask, seg_len, seg_len, ceil_mode=True)
    counts = F.avg_pool1d(mask, seg_len, seg_len, ceil_mode=True)
    return sums / counts.clamp_min(1.0 / seg_len)  # segments past the end (all padding): 0


class CAMLayer(nn.Module):
    """Context-aware masking: a dilated ``Conv1d`` whose output is gated by utterance and segment context.

    ``y = conv(x)``; ``m = sigmoid(W2 relu(W1 (mean(x) + segment_mean(x)) + b1) + b2)``; output
    ``y ⊙ m``. Shapes: ``(B, C_in, T)`` → ``(B, C_out, T)``.

    Args:
        in_channels: C_in (the dense layer's bottleneck).
        out_channels: C_out (the growth rate).
        kernel_size, dilation: of the context convolution (no bias).
        reduction: bottleneck of the mask network, ``C_in / reduction`` (2).
        seg_len: segment length in frames (100).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 reduction: int = 2, seg_len: int = 100) -> None:
        super().__init__()
        self.local = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation,
                               padding=same_padding(kernel_size, dilation), bias=False)
        self.reduce = nn.Conv1d(in_channels, in_channels // reduction, 1)
        self.expand = nn.Conv1d(in_channels // reduction, out_channels, 1)
        self.seg_len = seg_len

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = masked(x, mask)
        y = self.local(x)  # (B, C_out, T)
        if mask is None:
            mean = x.mean(-1, keepdim=True)
        else:
            mean = x.sum(-1, keepdim=True) / lengths.to(x)[:, None, None]  # (B, C_in, 1)
        context = mean + segment_means(x, mask, self.seg_len)  # (B, C_in, S), S segments
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(context))))  # (B, C_out, S)
        B, C, S = gate.shape
        gate = gate.unsqueeze(-1).expand(B, C, S, self.seg_len).reshape(B, C, S * self.seg_len)
        return y * gate[..., : y.shape[-1]]


class CAMPlusPlus(nn.Module):
    """CAM++ speaker-embedding extractor.

    Args:
        in_channels: feature dimension F (80 fbank in the paper).
        fcm_channels: channels of the 2-D front-end (32).
        fcm_blocks: residual blocks per FCM stage (2, 2).
        init_channels: channels of the stride-2 TDNN layer (128).
        growth: channels each dense layer adds (32).
        bn_size: bottleneck of a dense layer in multiples of ``growth`` (4).
        block_layers: layers per dense block (12, 24, 16).
        kernel_sizes: context kernel size per block (3, 3, 3); odd.
        dilations: dilation per block (1, 2, 2).
        seg_len: CAM segment length in frames at the half frame rate (100).
        embed_dim: embedding size (512).
        pool_eps: added to the pooled variance (0 as 3D-Speaker; WeSpeaker's TSTP: 1e-7).
        segment_dims: optional ReLU-BN-affine layers between the embedding and the classifier;
            ``()`` (the paper) feeds the embedding to the head.

    Shapes:
        ``feats (B, F, T)``, ``lengths (B,)`` frames → embedding ``(B, embed_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 80,
        fcm_channels: int = 32,
        fcm_blocks: Sequence[int] = (2, 2),
        init_channels: int = 128,
        growth: int = 32,
        bn_size: int = 4,
        block_layers: Sequence[int] = (12, 24, 16),
        kernel_sizes: Sequence[int] = (3, 3, 3),
        dilations: Sequence[int] = (1, 2, 2),
        seg_len: int = 100,
        embed_dim: int = 512,
        pool_eps: float = 0.0,
        segment_dims: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not len(block_layers) == len(kernel_sizes) == len(dilations):
            raise ValueError("block_layers, kernel_sizes and dilations need one entry per dense block")
        self.fcm = FCM(in_channels, fcm_channels, fcm_blocks)
        self.tdnn = nn.Conv1d(self.fcm.out_channels, init_channels, 5, stride=2, padding=2, bias=False)
        self.tdnn_norm = nn.BatchNorm1d(init_channels)

        def cam(c_in: int, c_out: int, k: int, d: int) -> CAMLayer:
            return CAMLayer(c_in, c_out, k, d, seg_len=seg_len)

        self.blocks, self.transits = nn.ModuleList(), nn.ModuleList()
        channels = init_channels
        for n, k, d in zip(block_layers, kernel_sizes, dilations):
            block = DenseTDNNBlock(n, channels, growth, bn_size * growth, k, d, context=cam)
            self.blocks.append(block)
            self.transits.append(TransitLayer(block.out_channels, block.out_channels // 2))
            channels = block.out_channels // 2
        self.out_norm = nn.BatchNorm1d(channels)
        self.pooling = UnbiasedStatsPooling(eps=pool_eps)
        self.embedding = nn.Linear(UnbiasedStatsPooling.out_dim(channels), embed_dim, bias=False)
        self.embed_norm = nn.BatchNorm1d(embed_dim, affine=False)
        self.segment_layers, self.head_in_dim = segment_layers(embed_dim, segment_dims)
        self.embed_dim = embed_dim
        self.min_frames = 1  # "same" padding keeps every frame; stride 2 keeps ceil(T / 2)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if feats.shape[-1] < self.min_frames:
            raise ValueError(f"CAMPlusPlus needs at least {self.min_frames} frame, got {feats.shape[-1]}")
        if lengths is not None:
            lengths = lengths.clamp(1, feats.shape[-1])
        mask = length_mask(lengths, feats.shape[-1], feats)  # (B, 1, T) or None
        x = self.fcm(feats, mask)  # (B, C F', T)
        x = torch.relu(self.tdnn_norm(self.tdnn(masked(x, mask))))  # (B, init_channels, ceil(T / 2))
        if lengths is not None:
            lengths = (lengths + 1) // 2  # frames at the half rate: ceil(n / 2)
        mask = length_mask(lengths, x.shape[-1], x)
        for block, transit in zip(self.blocks, self.transits):
            x = transit(block(x, mask, lengths))
        x = torch.relu(self.out_norm(x))
        return self.embed_norm(self.embedding(self.pooling(x, lengths)))  # (B, embed_dim)

    def classifier_input(self, embedding: torch.Tensor) -> torch.Tensor:
        """Optional segment layers after the embedding: ``(B, embed_dim)`` → ``(B, head_in_dim)``."""
        return self.segment_layers(embedding)

