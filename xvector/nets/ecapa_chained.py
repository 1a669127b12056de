"""ECAPA-TDNN as SpeechBrain and WeSpeaker build it: chained SE-Res2Blocks, for their checkpoints.

:class:`~xvector.nets.ecapa_tdnn.ECAPATDNN` follows the paper (Desplanques et al. 2020), where
each SE-Res2Block's input is the *sum* of the outputs of the first layer and all earlier blocks.
SpeechBrain (``speechbrain.lobes.models.ECAPA_TDNN``) and WeSpeaker (``wespeaker/models/
ecapa_tdnn.py``) chain the blocks instead (each takes the previous block's output; the residual
is inside the block), and differ from each other in details this net takes as options:

=====================  ==========================================  ===========================
option                 SpeechBrain ``ECAPA_TDNN``                    WeSpeaker ``ECAPA_TDNN``
=====================  ==========================================  ===========================
``padding_mode``       ``"reflect"`` ("same" Conv1d by reflection)  ``"zeros"``
``aggregate_norm``     True: MFA is ``Conv + ReLU + BN``            False: ``Conv + ReLU``
``attention_norm``     True: attention ``Conv + ReLU + BN → tanh``  False: ``Conv → tanh``
``context_unbiased``   False: population std of the context         True: ``sqrt(var + 1e-7)``,
                                                                     sample variance
``context_eps``        0 (variance clamped at 1e-12)                 1e-7
``var_floor``          1e-12 (pooled variance clamp)                 1e-7
``embed_norm``         False: ``BN(pool) → FC``                      ``emb_bn`` (False in the
                                                                     VoxCeleb recipe)
=====================  ==========================================  ===========================

Both pass one Res2Net group through unconvolved: SpeechBrain the first, WeSpeaker the last; this
net passes the first, and the WeSpeaker importer permutes the groups (an exact re-labelling of
channels, :mod:`xvector.importers.wespeaker`). Padding frames are handled per utterance (zero or
reflect padding at each utterance's own edge, :mod:`xvector.nets.same_conv`; masked
squeeze-excitation means and pooling), so a padded batch gives each utterance its own embedding.

Example:
    >>> import torch
    >>> net = ChainedECAPA(in_channels=24, channels=(32, 32, 32, 32, 96), se_channels=8,
    ...                    attention_channels=8, embed_dim=16).eval()
    >>> emb = net(torch.randn(2, 24, 50), torch.tensor([50, 20]))
    >>> emb.shape, net.head_in_dim, net.min_frames
    (torch.Size([2, 16]), 16, 5)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xvector.nets.pooling import length_mask, uniform_weights, weighted_moments
from xvector.nets.same_conv import SameConvReluBN
from xvector.nets.tdnn import segment_layers


def _masked_mean(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x (B, C, T)`` over each utterance's valid frames: ``(B, C, 1)``."""
    if lengths is None:
        return x.mean(-1, keepdim=True)
    mask = length_mask(lengths, x.shape[-1], x)
    return (x * mask).sum(-1, keepdim=True) / lengths.to(x)[:, None, None]


class ChainedSERes2Block(nn.Module):
    """``k=1`` layer, Res2 dilated convolution, ``k=1`` layer, squeeze-excitation, residual: ``(B, C, T)`` → same."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int = 8, se_channels: int = 128,
                 padding_mode: str = "reflect") -> None:
        super().__init__()
        if scale < 2 or channels % scale:
            raise ValueError(f"channels ({channels}) must be divisible by scale ({scale} >= 2)")
        self.width = channels // scale
        self.conv_in = SameConvReluBN(channels, channels)
        self.res2 = nn.ModuleList(SameConvReluBN(self.width, self.width, kernel_size, dilation, padding_mode)
                                  for _ in range(scale - 1))
        self.conv_out = SameConvReluBN(channels, channels)
        self.se_reduce = nn.Conv1d(channels, se_channels, kernel_size=1)
        self.se_expand = nn.Conv1d(se_channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        groups = torch.split(self.conv_in(x), self.width, dim=1)  # scale × (B, C/scale, T)
        out, y = [groups[0]], None
        for conv, group in zip(self.res2, groups[1:]):
            y = conv(group if y is None else group + y, lengths)
            out.append(y)
        h = self.conv_out(torch.cat(out, dim=1))  # (B, C, T)
        gate = torch.sigmoid(self.se_expand(torch.relu(self.se_reduce(_masked_mean(h, lengths)))))  # (B, C, 1)
        return x + h * gate


class ChainedECAPA(nn.Module):
    """ECAPA-TDNN with chained blocks (SpeechBrain's and WeSpeaker's layout).

    Args:
        in_channels: feature dimension F.
        channels: ``(C, C, C, C, C_mfa)``: first layer, the SE-Res2Blocks, the aggregation layer
            (SpeechBrain's ``channels``; its ``spkrec-ecapa-voxceleb`` uses 1024 and 3072).
        kernel_sizes, dilations: one per entry of ``channels`` (5, 3, 3, 3, 1; 1, 2, 3, 4, 1).
        scale: Res2Net scale (8).
        se_channels: squeeze-excitation bottleneck (128).
        attention_channels: hidden size of the pooling attention (128).
        global_context: the attention sees the utterance mean and std beside each frame.
        embed_dim: embedding size (192).
        padding_mode, aggregate_norm, attention_norm, context_unbiased, context_eps, var_floor,
        embed_norm: see the module docstring (defaults: SpeechBrain's).
        segment_dims: optional ReLU-BN-affine layers between the embedding and the classifier.

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
        padding_mode: str = "reflect",
        aggregate_norm: bool = True,
        attention_norm: bool = True,
        context_unbiased: bool = False,
        context_eps: float = 0.0,
        var_floor: float = 1e-12,
        embed_norm: bool = False,
        segment_dims: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(dilations) or len(channels) < 3:
            raise ValueError("channels, kernel_sizes and dilations need one entry per layer, and at least 3 layers")
        if len(set(channels[:-1])) != 1:
            raise ValueError(f"the first layer and all SE-Res2Blocks need the same channels, got {list(channels[:-1])}")
        width, mfa = channels[0], channels[-1]
        self.first = SameConvReluBN(in_channels, width, kernel_sizes[0], dilations[0], padding_mode)
        self.blocks = nn.ModuleList(
            ChainedSERes2Block(width, k, d, scale, se_channels, padding_mode)
            for k, d in zip(kernel_sizes[1:-1], dilations[1:-1])
        )
        self.aggregate = SameConvReluBN((len(channels) - 2) * width, mfa, kernel_sizes[-1], dilations[-1],
                                        padding_mode, norm=aggregate_norm)
        self.global_context = global_context
        self.attention = SameConvReluBN(3 * mfa if global_context else mfa, attention_channels,
                                        norm=attention_norm)
        if not attention_norm:  # WeSpeaker: the hidden layer is a plain Conv (tanh follows)
            self.attention.activation = nn.Identity()
        self.attention_score = nn.Conv1d(attention_channels, mfa, kernel_size=1)
        self.context_unbiased, self.context_eps, self.var_floor = context_unbiased, context_eps, var_floor
        self.pool_norm = nn.BatchNorm1d(2 * mfa)
        self.embedding = nn.Linear(2 * mfa, embed_dim)
        self.embed_norm = nn.BatchNorm1d(embed_dim) if embed_norm else nn.Identity()
        self.segment_layers, self.head_in_dim = segment_layers(embed_dim, segment_dims)
        self.embed_dim = embed_dim
        pads = [self.first.pad, self.aggregate.pad, *(b.res2[0].pad for b in self.blocks)]
        self.min_frames = max(pads) + 1 if padding_mode == "reflect" else 1

    def _pool(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Channel- and context-dependent attentive statistics: ``(B, C, T)`` → ``(B, 2C)``."""
        x = x.float()
        attn_in = x
        if self.global_context:
            mean, var = weighted_moments(x, uniform_weights(x, lengths))  # (B, C): population
            if self.context_unbiased:
                n = torch.full((x.shape[0],), x.shape[-1], device=x.device) if lengths is None else lengths
                n = n.to(x)[:, None]
                var = var * n / (n - 1).clamp_min(1)
            std = (var + self.context_eps).clamp_min(self.var_floor).sqrt()
            context = torch.cat([mean, std], dim=1).unsqueeze(-1).expand(-1, -1, x.shape[-1])  # (B, 2C, T)
            attn_in = torch.cat([x, context], dim=1)  # (B, 3C, T)
        scores = self.attention_score(torch.tanh(self.attention(attn_in)))  # (B, C, T)
        mask = length_mask(lengths, x.shape[-1], x)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        mean, var = weighted_moments(x, alpha)
        return torch.cat([mean, var.clamp_min(self.var_floor).sqrt()], dim=-1)  # (B, 2C)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if feats.shape[-1] < self.min_frames:
            raise ValueError(f"ChainedECAPA needs at least {self.min_frames} frames, got {feats.shape[-1]}")
        if lengths is not None:
            lengths = lengths.clamp(1, feats.shape[-1])
        x = self.first(feats, lengths)  # (B, C, T)
        outs = []
        for block in self.blocks:
            x = block(x, lengths)
            outs.append(x)
        x = self.aggregate(torch.cat(outs, dim=1), lengths)  # (B, C_mfa, T)
        pooled = self.pool_norm(self._pool(x, lengths))  # (B, 2 C_mfa)
        return self.embed_norm(self.embedding(pooled))  # (B, embed_dim)

    def classifier_input(self, embedding: torch.Tensor) -> torch.Tensor:
        """Optional segment layers after the embedding: ``(B, embed_dim)`` → ``(B, head_in_dim)``."""
        return self.segment_layers(embedding)
