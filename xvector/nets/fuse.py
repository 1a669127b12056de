"""Inference forms of a trained TDNN x-vector: BatchNorm folded away, and int8 frame layers.

Training keeps Kaldi's ``Conv1d → ReLU → BatchNorm`` layers; at inference each BatchNorm is a
fixed per-channel affine map ``y = s ⊙ x + t`` (``s = γ / sqrt(σ² + ε)``, ``t = β - μ s``) and
can be folded away, saving a full pass over every frame-level activation:

* into the **next convolution**, which is linear: ``W * (s ⊙ x + t) + b = (W ⊙ s) * x + (b + Σ W t)``
  (the fold scales input channel ``c`` of ``W`` by ``s[c]`` and adds ``W``'s taps times ``t``
  to the bias);
* after the **last** frame layer, into the **statistics**: pooling ``s ⊙ x + t`` gives mean
  ``s ⊙ mean(x) + t`` and variance ``s² ⊙ var(x)``, applied to the ``(B, C)`` moments
  (:class:`AffineStatsPooling`) before the variance floor, so the result is the unfused one up
  to float rounding, constant channels included.

``precision="int8"`` additionally runs the frame layers after the first on 8-bit integers
(:class:`Int8TDNNLayer`): weights quantized per output channel, activations per utterance
(dynamic: the scale is the utterance's largest activation over its valid frames, so an
utterance's embedding does not depend on what else is in its batch and there is no
calibration set), an ``int8 × int8 → int32`` matrix product (``torch._int_mm``, oneDNN/VNNI on
x86), then the float scale, bias and ReLU. The first layer (the features, the smallest layer)
and the pooling and embedding layers stay float32. On this project's AVX512-VNNI CPU the
(16000 × 1536) · (1536 × 512) product takes 30 ms in int8 against 136 ms in float32, and whole
extraction runs 1.9–2.4x faster than float32 (``python -m bench.run --only extract``); on the
synthetic recipe the int8 embeddings have cosine ≥ 0.99996 to float32 ones and the same EER
(README, Benchmarks).

Example:
    >>> import torch
    >>> from xvector.nets.tdnn import XVector
    >>> net = XVector(in_channels=24).eval()
    >>> fast = inference_net(net)
    >>> x, lens = torch.randn(2, 24, 300), torch.tensor([300, 200])
    >>> with torch.inference_mode():
    ...     bool(torch.allclose(fast(x, lens), net(x, lens), atol=1e-4))
    True
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from xvector.nets.pooling import StatsPooling
from xvector.nets.tdnn import TDNNLayer, XVector, check_min_frames

log = logging.getLogger(__name__)

PRECISIONS = ("32", "int8")
INT8_MAX = 127
ROW_BLOCK = 1024  # rows (frames) per int8 product in Int8TDNNLayer


def batchnorm_affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode BatchNorm as ``(scale, shift)``, each ``(C,)``: ``bn(x) = scale ⊙ x + shift``."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("a BatchNorm without running statistics cannot be folded")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale.detach().clone(), shift.detach().clone()


def fold_into_conv(conv: nn.Conv1d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv1d:
    """A copy of ``conv`` that takes ``x`` and gives ``conv(scale ⊙ x + shift)`` (per input channel).

    Exact for unpadded (``padding=0``) convolutions, whose every tap sees a real input frame.
    """
    if conv.padding not in (0, (0,)) or conv.groups != 1:
        raise ValueError("only unpadded, ungrouped convolutions take a folded BatchNorm")
    folded = copy.deepcopy(conv)
    w = conv.weight.detach()  # (C_out, C_in, k)
    bias = conv.bias.detach() if conv.bias is not None else w.new_zeros(w.shape[0])
    with torch.no_grad():
        folded.weight.copy_(w * scale[None, :, None])
        if folded.bias is None:
            folded.bias = nn.Parameter(bias.clone())
        folded.bias.copy_(bias + (w * shift[None, :, None]).sum((1, 2)))
    return folded


class FoldedTDNNLayer(nn.Module):
    """``ReLU(conv(x))`` with the previous layer's BatchNorm folded into ``conv``: ``(B, C_in, T)`` → ``(B, C_out, T')``."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.conv = conv

    @property
    def context(self) -> int:
        return self.conv.dilation[0] * (self.conv.kernel_size[0] - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu_(self.conv(x))  # the convolution's output is fresh: ReLU in place


def quantize_per_row(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 of ``w (N, K)`` with one scale per row: ``w ≈ q * scale[:, None]``."""
    scale = (w.abs().amax(1) / INT8_MAX).clamp_min(torch.finfo(torch.float32).tiny)
    return torch.round(w / scale[:, None]).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8), scale


class Int8TDNNLayer(nn.Module):
    """``ReLU(conv(x))`` on 8-bit integers, frames-major: ``(B, T, C_in)`` → ``(B, T', C_out)`` float.

    Weights: int8, one scale per output channel. Activations: int8 with one scale per
    utterance, ``max |x|`` over its first ``lengths[b]`` frames / 127. The ``k`` dilated taps
    are gathered along the feature axis (``(B, T', k·C_in)``, int8) and multiplied by the
    ``(k·C_in, C_out)`` weight matrix in one ``int8 × int8 → int32`` product.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        c_out, c_in, k = conv.weight.shape
        self.kernel_size, self.dilation = k, conv.dilation[0]
        w = conv.weight.detach().float().permute(0, 2, 1).reshape(c_out, k * c_in)  # (C_out, k·C_in), tap-major
        q, scale = quantize_per_row(w)
        self.register_buffer("weight_q", q.t().contiguous())  # (k·C_in, C_out) int8
        self.register_buffer("weight_scale", scale)  # (C_out,)
        bias = conv.bias.detach().float() if conv.bias is not None else w.new_zeros(c_out)
        self.register_buffer("bias", bias.clone())

    @property
    def context(self) -> int:
        return self.dilation * (self.kernel_size - 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        t_out = t - self.context
        frame_max = torch.maximum(x.amax(-1), x.amin(-1).neg())  # (B, T): max |x| per frame
        if lengths is not None:  # the scale comes from the utterance's own frames, not padding
            keep = torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]
            frame_max = frame_max * keep
        x_scale = (frame_max.amax(1) / INT8_MAX).clamp_min(torch.finfo(torch.float32).tiny)  # (B,)
        # (x * (1 / scale)): a broadcast multiply is many times faster than a broadcast divide here
        q = x.mul((1.0 / x_scale)[:, None, None]).round_().clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)  # (B, T, C_in)
        if self.kernel_size > 1:
            d = self.dilation
            q = torch.cat([q[:, j * d : j * d + t_out] for j in range(self.kernel_size)], dim=-1)  # (B, T', k·C_in)
        q = q.reshape(b * t_out, -1)  # (B·T', k·C_in)
        row_scale = x_scale.repeat_interleave(t_out)[:, None]  # (B·T', 1)
        out = x.new_empty(b * t_out, self.bias.shape[0])  # (B·T', C_out)
        # Row blocks keep each int32 product in cache while it is scaled, biased and rectified.
        for i in range(0, b * t_out, ROW_BLOCK):
            o = out[i : i + ROW_BLOCK]
            o.copy_(torch._int_mm(q[i : i + ROW_BLOCK], self.weight_q)).mul_(row_scale[i : i + ROW_BLOCK])
            torch.addcmul(self.bias, o, self.weight_scale, out=o).relu_()  # (a mixed-dtype mul would be 20x slower)
        return out.view(b, t_out, -1)


class AffineStatsPooling(StatsPooling):
    """Statistics pooling of ``scale ⊙ x + shift`` (per channel), computed from the moments of ``x``.

    Mean ``scale ⊙ mean + shift``, variance ``scale² ⊙ var``, then the usual floor and square
    root: the last frame layer's BatchNorm without a pass over its frames.
    """

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, var_floor: float = 1e-10) -> None:
        super().__init__(var_floor)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def from_moments(self, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale.to(mean), self.shift.to(mean)
        return super().from_moments(mean * scale + shift, var * scale.square())


class ChannelAffine(nn.Module):
    """``scale ⊙ x + shift`` on ``(B, C, T)``: the last BatchNorm, kept when the pooling is not statistics pooling."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale[:, None])
        self.register_buffer("shift", shift[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)


class FrameStack(nn.Module):
    """The inference frame layers: float ``(B, C, T)`` layers, then int8 frames-major ones.

    Shapes: ``(B, F, T)`` (+ lengths ``(B,)`` frames) → ``(B, C, T - context)``; the output
    may be a transposed view when int8 layers ran.
    """

    def __init__(self, layers: list[nn.Module], tail: nn.Module | None = None) -> None:
        super().__init__()
        kinds = [isinstance(m, Int8TDNNLayer) for m in layers]
        if kinds != sorted(kinds):
            raise ValueError("float layers must come before the int8 ones (which run frames-major)")
        self.layers = nn.ModuleList(layers)
        self.tail = tail

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        lens = lengths
        frames_major = False
        for layer in self.layers:
            if isinstance(layer, Int8TDNNLayer):
                if not frames_major:
                    x, frames_major = x.transpose(1, 2).contiguous(), True  # (B, T, C)
                x = layer(x, lens)
            else:
                x = layer(x)
            if lens is not None:
                lens = (lens - layer.context).clamp_min(1)
        if frames_major:
            x = x.transpose(1, 2)  # (B, C, T') view
        return x if self.tail is None else self.tail(x)


class InferenceXVector(nn.Module):
    """A TDNN x-vector net for inference only, from :func:`inference_net`.

    Same interface as :class:`~xvector.nets.tdnn.XVector` for extraction (``frame_layers``,
    ``context``, ``min_frames``, ``pooling``, ``embedding``, ``embed_dim``); no segment layers
    or head. Shapes: ``feats (B, F, T)``, ``lengths (B,)`` frames → ``(B, embed_dim)``.
    """

    def __init__(self, frame_layers: FrameStack, context: int, pooling: nn.Module, embedding: nn.Module) -> None:
        super().__init__()
        self.frame_layers = frame_layers
        self.context = context
        self.pooling = pooling
        self.embedding = embedding  # nn.Linear, or nn.Sequential ending in one (XVector's pre_embed_dims)
        self.embed_dim = (embedding[-1] if isinstance(embedding, nn.Sequential) else embedding).out_features

    @property
    def min_frames(self) -> int:
        return self.context + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_min_frames(self, feats)
        out_lens = None if lengths is None else (lengths - self.context).clamp_min(1)
        x = self.frame_layers(feats, lengths)  # (B, C, T - context)
        return self.embedding(self.pooling(x, out_lens))


def _foldable(net: nn.Module) -> bool:
    layers = getattr(net, "frame_layers", None)
    return isinstance(net, XVector) and layers is not None and all(isinstance(m, TDNNLayer) for m in layers)


def inference_net(net: nn.Module, precision: str = "32") -> nn.Module:
    """An inference copy of a trained (eval-mode) net: BatchNorms folded, optionally int8 frame layers.

    TDNN x-vectors (:class:`~xvector.nets.tdnn.XVector` and subclasses such as E-TDNN) are
    folded; other nets (ECAPA-TDNN) are returned unchanged at ``precision="32"``.

    Args:
        net: the trained net; it is not modified.
        precision: ``"32"`` (float32, BatchNorm folded) or ``"int8"`` (also int8 frame layers
            after the first).

    Raises:
        ValueError: on an unknown precision, or ``"int8"`` for a net that is not a TDNN x-vector.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    if not _foldable(net):
        if precision == "int8":
            raise ValueError(f"int8 inference supports TDNN x-vector nets (XVector, ETDNN), not {type(net).__name__}")
        log.info("%s has no TDNN frame layers to fold: used as it is", type(net).__name__)
        return net
    layers: list[nn.Module] = []
    scale = shift = None
    for i, layer in enumerate(net.frame_layers):
        conv = copy.deepcopy(layer.conv) if scale is None else fold_into_conv(layer.conv, scale, shift)
        layers.append(Int8TDNNLayer(conv) if precision == "int8" and i > 0 else FoldedTDNNLayer(conv))
        scale, shift = batchnorm_affine(layer.norm)
    pooling, tail = net.pooling, None
    if type(net.pooling) is StatsPooling:
        pooling = AffineStatsPooling(scale, shift, net.pooling.var_floor)
    else:
        tail = ChannelAffine(scale, shift)
    fused = InferenceXVector(FrameStack(layers, tail), net.context, copy.deepcopy(pooling), copy.deepcopy(net.embedding))
    return fused.eval()


__all__ = [
    "AffineStatsPooling",
    "FoldedTDNNLayer",
    "FrameStack",
    "InferenceXVector",
    "Int8TDNNLayer",
    "batchnorm_affine",
    "fold_into_conv",
    "inference_net",
]
