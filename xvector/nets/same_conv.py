""""Same"-padded convolutions that pad each utterance of a batch at its *own* edges.

SpeechBrain's ``Conv1d`` pads "same" by **reflection** (``padding_mode="reflect"``) and applies it
to the padded batch, so a short utterance's right edge reflects the batch padding and its
embedding depends on what it was batched with. Here the reflection (or zero padding) is done at
each utterance's last valid frame: frame ``L + i`` of an utterance of ``L`` frames reads frame
``L - 2 - i``, as :func:`torch.nn.functional.pad` does for that utterance alone, so a padded
batch gives every utterance the output it gets alone (reflection needs ``L > pad``, as
``F.pad`` does). Zero padding zeroes the batch padding before the convolution instead.

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0, 2.0, 3.0, 0.0]]])  # (B=1, C=1, T=4): 3 valid frames
    >>> pad_same(x, 2, "reflect", torch.tensor([3]))[..., :7]  # the last position pads the padding
    tensor([[[3., 2., 1., 2., 3., 2., 1.]]])
    >>> torch.nn.functional.pad(x[..., :3], (2, 2), mode="reflect")
    tensor([[[3., 2., 1., 2., 3., 2., 1.]]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("zeros", "reflect")


def reflect_indices(lengths: torch.Tensor, num_frames: int, pad: int) -> torch.Tensor:
    """``(B, num_frames + 2 pad)`` source frame of each padded position, reflecting at 0 and ``lengths - 1``."""
    pos = torch.arange(num_frames + 2 * pad, device=lengths.device)[None, :] - pad  # (1, T + 2p)
    last = (lengths.clamp_min(1) - 1)[:, None]  # (B, 1)
    idx = pos.abs()  # left edge: frame -i reads frame i
    idx = torch.where(idx > last, 2 * last - idx, idx)  # right edge: frame L-1+i reads L-1-i
    return idx.clamp(0, num_frames - 1)  # positions past an utterance's padding: any valid frame


def pad_same(x: torch.Tensor, pad: int, mode: str, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """``x (B, C, T)`` padded by ``pad`` frames on both sides at each utterance's edges: ``(B, C, T + 2 pad)``.

    Args:
        x: frames; positions at and past ``lengths[b]`` are batch padding.
        pad: frames added on each side.
        mode: ``"zeros"`` or ``"reflect"``.
        lengths: ``(B,)`` valid frames, or None when nothing is padded.
    """
    if mode not in MODES:
        raise ValueError(f"padding mode must be one of {MODES}, got {mode!r}")
    if pad == 0:
        return x
    if lengths is None:
        return F.pad(x, (pad, pad), mode="constant" if mode == "zeros" else "reflect")
    if mode == "zeros":
        mask = torch.arange(x.shape[-1], device=x.device)[None, None, :] < lengths.to(x.device)[:, None, None]
        return F.pad(x * mask.to(x.dtype), (pad, pad))
    idx = reflect_indices(lengths.to(x.device), x.shape[-1], pad)  # (B, T + 2p)
    return x.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1))


class SameConvReluBN(nn.Module):
    """"Same"-padded ``Conv1d`` → ReLU (or leaky ReLU) → optional BatchNorm: ``(B, C_in, T)`` → ``(B, C_out, T)``.

    SpeechBrain's ``TDNNBlock`` / its x-vector's ``Conv1d, activation, BatchNorm1d`` with
    ``padding_mode="reflect"``, or WeSpeaker's ``Conv1dReluBn`` with ``"zeros"``.

    Args:
        in_channels, out_channels, kernel_size, dilation: of the convolution (odd kernel).
        padding_mode: ``"zeros"`` or ``"reflect"``.
        negative_slope: leaky ReLU slope (0: ReLU).
        norm: end with a BatchNorm (else the activation is the output).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1,
                 padding_mode: str = "reflect", negative_slope: float = 0.0, norm: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        if padding_mode not in MODES:
            raise ValueError(f"padding mode must be one of {MODES}, got {padding_mode!r}")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.pad = dilation * (kernel_size - 1) // 2
        self.padding_mode = padding_mode
        self.activation = nn.LeakyReLU(negative_slope) if negative_slope else nn.ReLU()
        self.norm = nn.BatchNorm1d(out_channels) if norm else nn.Identity()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.norm(self.activation(self.conv(pad_same(x, self.pad, self.padding_mode, lengths))))
