"""The x-vector as SpeechBrain builds it (``speechbrain.lobes.models.Xvector.Xvector``), for its checkpoints.

SpeechBrain's x-vector keeps the Snyder et al. (2018) layer layout but differs from
:class:`~xvector.nets.tdnn.XVector` (Kaldi's) in three ways, which this net reproduces so that an
imported ``spkrec-xvect-voxceleb`` checkpoint gives SpeechBrain's embeddings
(``xvector-import``, :mod:`xvector.importers.speechbrain`):

* the frame layers are "same"-padded **by reflection** (SpeechBrain's ``Conv1d`` default), so no
  frames are lost, and ``Conv1d → LeakyReLU(0.01) → BatchNorm``;
* statistics pooling returns the mean plus a small random number in [1e-5, 9e-5] (SpeechBrain's
  ``_get_gauss_noise``, drawn afresh at every call, also at inference) and the **sample**
  standard deviation plus 1e-5. The noise is replaced here by its expected value, 5e-5, so the
  embedding is deterministic and equals SpeechBrain's on average (the two differ by about
  1e-6 on an embedding, ``tests/importers/test_speechbrain.py``);
* the embedding is the output of the one linear layer after pooling.

Reflection happens at each utterance's own last frame (:mod:`xvector.nets.same_conv`), so a
padded batch gives the embedding each utterance gets alone (SpeechBrain's batched forward
reflects the batch padding instead, and its pooling uses ``round(relative_length * T)`` frames).

Example:
    >>> import torch
    >>> net = SpeechBrainXVector(in_channels=24, channels=(32, 32, 32, 32, 64), embed_dim=16).eval()
    >>> emb = net(torch.randn(2, 24, 100), torch.tensor([100, 60]))
    >>> emb.shape, net.head_in_dim, net.min_frames
    (torch.Size([2, 16]), 16, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xvector.nets.pooling import UnbiasedStatsPooling
from xvector.nets.same_conv import SameConvReluBN
from xvector.nets.tdnn import segment_layers

#: SpeechBrain's StatisticsPooling: ``mean + noise``, noise = 1e-5 * (9 - 8 u), u in [0, 1]
#: (a min-max normalised Gaussian draw, mean 1/2); ``std + 1e-5``.
SB_MEAN_NOISE = 5e-5
SB_STD_EPS = 1e-5


class SpeechBrainXVector(nn.Module):
    """SpeechBrain's x-vector: reflect-padded TDNN layers, mean ‖ sample-std pooling, one linear layer.

    Args:
        in_channels: feature dimension F (SpeechBrain's ``in_channels``; 24 in ``spkrec-xvect-voxceleb``).
        channels, kernel_sizes, dilations: per frame layer (``tdnn_channels`` ...; 512 ×4, 1500;
            5, 3, 3, 1, 1; 1, 2, 3, 1, 1).
        embed_dim: ``lin_neurons`` (512).
        negative_slope: of the LeakyReLU (PyTorch's default 0.01, SpeechBrain's activation).
        mean_offset: added to the pooled mean (the expected value of SpeechBrain's noise).
        std_offset: added to the pooled standard deviation.
        segment_dims: optional ReLU-BN-affine layers between the embedding and the classifier.

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
        negative_slope: float = 0.01,
        mean_offset: float = SB_MEAN_NOISE,
        std_offset: float = SB_STD_EPS,
        segment_dims: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(dilations):
            raise ValueError("channels, kernel_sizes and dilations need one entry per frame layer")
        dims = [in_channels, *channels]
        self.frame_layers = nn.ModuleList(
            SameConvReluBN(dims[i], dims[i + 1], k, d, "reflect", negative_slope)
            for i, (k, d) in enumerate(zip(kernel_sizes, dilations))
        )
        self.pooling = UnbiasedStatsPooling()
        self.mean_offset, self.std_offset = mean_offset, std_offset
        self.embedding = nn.Linear(UnbiasedStatsPooling.out_dim(channels[-1]), embed_dim)
        self.segment_layers, self.head_in_dim = segment_layers(embed_dim, segment_dims)
        self.embed_dim = embed_dim
        # Reflection needs more frames than it pads (as F.pad does).
        self.min_frames = max(layer.pad for layer in self.frame_layers) + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if feats.shape[-1] < self.min_frames:
            raise ValueError(f"SpeechBrainXVector needs at least {self.min_frames} frames, got {feats.shape[-1]}")
        if lengths is not None:
            lengths = lengths.clamp(1, feats.shape[-1])
        x = feats
        for layer in self.frame_layers:
            x = layer(x, lengths)  # (B, C, T)
        stats = self.pooling(x, lengths)  # (B, 2C): mean ‖ sample std
        c = stats.shape[-1] // 2
        offset = torch.cat([stats.new_full((c,), self.mean_offset), stats.new_full((c,), self.std_offset)])
        return self.embedding(stats + offset)  # (B, embed_dim)

    def classifier_input(self, embedding: torch.Tensor) -> torch.Tensor:
        """Optional segment layers after the embedding: ``(B, embed_dim)`` → ``(B, head_in_dim)``."""
        return self.segment_layers(embedding)
