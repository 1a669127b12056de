"""Extended TDNN (E-TDNN) x-vector of Snyder et al. (2019), "Speaker recognition for
multi-speaker conversations using x-vectors" (also the E-TDNN of Villalba et al. 2019/2020).

The x-vector grown deeper and wider in context: a ``{t}`` (kernel-1) layer after each of the
four context layers, and a fourth context layer {t-4, t, t+4}, for a receptive field of 23
frames instead of 15. Pooling and segment layers are the x-vector's.

=========  ================  =============  ==============
layer      context           total context  input × output
=========  ================  =============  ==============
frame1     [t-2, t+2]        5              5F × 512
frame2     {t}               5              512 × 512
frame3     {t-2, t, t+2}     9              1536 × 512
frame4     {t}               9              512 × 512
frame5     {t-3, t, t+3}     15             1536 × 512
frame6     {t}               15             512 × 512
frame7     {t-4, t, t+4}     23             1536 × 512
frame8     {t}               23             512 × 512
frame9     {t}               23             512 × 1500
stats      [0, T)            T              1500T × 3000
segment10  {0}               T              3000 × 512   (the embedding)
segment11  {0}               T              512 × 512
=========  ================  =============  ==============

Every frame layer is Kaldi's ``relu-batchnorm-layer`` (:class:`~xvector.nets.tdnn.TDNNLayer`),
with unpadded convolutions, so the net is :class:`~xvector.nets.tdnn.XVector` with this layer
list: lengths, masking, ``min_frames`` (23) and ``classifier_input`` come from there.

Example:
    >>> import torch
    >>> net = ETDNN(in_channels=24)
    >>> emb = net(torch.randn(2, 24, 100), torch.tensor([100, 23]))
    >>> emb.shape, net.min_frames, net.head_in_dim
    (torch.Size([2, 512]), 23, 512)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from xvector.nets.tdnn import XVector

ETDNN_CHANNELS = (512, 512, 512, 512, 512, 512, 512, 512, 1500)
ETDNN_KERNEL_SIZES = (5, 1, 3, 1, 3, 1, 3, 1, 1)
ETDNN_DILATIONS = (1, 1, 2, 1, 3, 1, 4, 1, 1)


class ETDNN(XVector):
    """E-TDNN x-vector extractor: nine TDNN frame layers, statistics pooling, segment layers.

    Args:
        in_channels: feature dimension F (23 MFCC in the paper's telephone system).
        channels: output channels of the nine frame layers (512 ×8, 1500).
        kernel_sizes: kernel size per frame layer (5, 1, 3, 1, 3, 1, 3, 1, 1).
        dilations: dilation per frame layer (1, 1, 2, 1, 3, 1, 4, 1, 1).
        embed_dim: size of segment10 = the embedding (512).
        segment_dims: further segment layers before the classifier (paper: segment11, 512);
            ``()`` puts the margin head on the embedding itself.
        pooling: optional factory ``pooling(in_channels=C)``; ``None``: statistics pooling.

    Shapes:
        ``feats (B, F, T)``, ``lengths (B,)`` frames → embedding ``(B, embed_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 23,
        channels: Sequence[int] = ETDNN_CHANNELS,
        kernel_sizes: Sequence[int] = ETDNN_KERNEL_SIZES,
        dilations: Sequence[int] = ETDNN_DILATIONS,
        embed_dim: int = 512,
        segment_dims: Sequence[int] = (512,),
        pooling: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__(in_channels, channels, kernel_sizes, dilations, embed_dim, segment_dims, pooling)
