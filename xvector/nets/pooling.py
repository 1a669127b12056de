"""Temporal pooling: frame-level features ``(B, C, T)`` → one utterance vector ``(B, 2C)``.

Two poolings, both masked by length so that pooling a padded batch gives the same vector as
pooling each utterance alone (tested in ``tests/nets/test_pooling.py``):

* :class:`StatsPooling` — mean ‖ standard deviation over the valid frames (Snyder et al. 2018).
* :class:`AttentiveStatsPooling` — attention-weighted mean ‖ standard deviation. With its
  defaults it is Okabe et al. (2018): one scalar weight per frame. With
  ``channel_dependent=True, global_context=True`` it is ECAPA-TDNN's pooling (Desplanques et al.
  2020): one weight per channel and frame, the attention also seeing the utterance's mean and
  standard deviation.

Both are built by the same factory call ``pooling(in_channels=C)``, and ``out_dim(C)`` gives
their output size, so a net takes either from config.

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0, 3.0, 99.0]]])  # (B=1, C=1, T=3), last frame is padding
    >>> StatsPooling()(x, torch.tensor([2]))
    tensor([[2., 1.]])
    >>> asp = AttentiveStatsPooling(in_channels=1, attention_dim=4)
    >>> _ = torch.nn.init.zeros_(asp.score.weight)  # constant scores: uniform weights = StatsPooling
    >>> asp(x, torch.tensor([2])).detach()
    tensor([[2., 1.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def length_mask(lengths: torch.Tensor | None, num_frames: int, like: torch.Tensor) -> torch.Tensor | None:
    """``(B, 1, T)`` mask, 1 on the first ``lengths[b]`` frames and 0 on padding; ``None`` passes through.

    The dtype and device are those of ``like``.
    """
    if lengths is None:
        return None
    frames = torch.arange(num_frames, device=like.device)
    return (frames[None, :] < lengths.to(like.device)[:, None]).to(like.dtype).unsqueeze(1)


def weighted_stats(x: torch.Tensor, weights: torch.Tensor, var_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of ``x (B, C, T)`` under ``weights (B, 1|C, T)`` summing to 1 over T.

    The variance is taken about the mean (not as ``E[x²] - mean²``), which stays accurate for
    channels with a large offset, and floored before the square root.
    """
    mean, var = weighted_moments(x, weights)
    return mean, var.clamp_min(var_floor).sqrt()


def weighted_moments(x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unfloored) variance ``(B, C)`` of ``x (B, C, T)`` under ``weights`` summing to 1 over T.

    At inference (no autograd graph), weights shared by all channels ``(B, 1, T)`` reduce by
    batched matrix products, squaring in place: one read of ``x`` per moment in any memory
    layout (the int8 frames-major output too), float32 even under autocast; 2.3x faster on a
    (16, 1500, 1000) input here (10 vs 23 ms). Training, and per-channel weights ``(B, C, T)``, use the
    elementwise form (in training the gain is lost in the step, and its numbers stay those of
    the recorded runs).
    """
    if torch.is_grad_enabled() or weights.shape[1] != 1 or x.shape[1] == 1:
        mean = (x * weights).sum(-1)  # (B, C)
        return mean, (weights * (x - mean.unsqueeze(-1)) ** 2).sum(-1)
    w = weights.transpose(1, 2).to(x.dtype)  # (B, T, 1)
    with torch.autocast(device_type=x.device.type, enabled=False):
        mean = torch.bmm(x, w)  # (B, C, 1)
        squared = (x - mean).square_()
        return mean[..., 0], torch.bmm(squared, w)[..., 0]


def uniform_weights(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Weights ``(B, 1, T)``: ``1 / length`` on valid frames, 0 on padding."""
    mask = length_mask(lengths, x.shape[-1], x)
    if mask is None:
        return torch.full_like(x[:, :1], 1.0 / x.shape[-1])
    return mask / lengths.clamp_min(1).to(x)[:, None, None]


class StatsPooling(nn.Module):
    """Mean and standard deviation over time: ``(B, C, T)`` + lengths ``(B,)`` → ``(B, 2C)``.

    Args:
        var_floor: floor on the (population) variance before the square root, as Kaldi's
            stats-pooling ``variance-floor``; keeps the gradient finite for constant channels.
        in_channels: unused (the pooling has no weights); accepted so that every pooling is
            built by the same factory call ``pooling(in_channels=C)``.
    """

    def __init__(self, var_floor: float = 1e-10, in_channels: int | None = None) -> None:
        super().__init__()
        self.var_floor = var_floor

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = x.float()  # statistics in float32 also under bf16/fp16 autocast
        return self.from_moments(*weighted_moments(x, uniform_weights(x, lengths)))

    def from_moments(self, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """Pooled output ``(B, 2C)`` from the frames' mean and variance ``(B, C)``: mean ‖ floored std.

        Chunked extraction (:func:`xvector.inference.embed.embed_long`) accumulates the moments
        itself and finishes through here.
        """
        return torch.cat([mean, var.clamp_min(self.var_floor).sqrt()], dim=-1)  # (B, 2C)

    @staticmethod
    def out_dim(in_channels: int) -> int:
        return 2 * in_channels


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling: ``(B, C, T)`` + lengths ``(B,)`` → ``(B, 2C)``.

    Frame scores ``e_t = v^T tanh(W h_t + b) + k`` (Okabe et al. 2018, eq. 7) are soft-maxed over
    the valid frames into weights ``alpha_t``; the output is the weighted mean and weighted
    standard deviation ``sqrt(sum_t alpha_t (h_t - mean)^2)``.

    Args:
        in_channels: channels C of the frame-level input.
        attention_dim: hidden size of the attention (W has shape ``attention_dim × C``).
        channel_dependent: one score per channel and frame (``v`` becomes a ``C × attention_dim``
            matrix), as ECAPA-TDNN; otherwise one score per frame, shared by all channels.
        global_context: let the attention see the utterance's (masked, unweighted) mean and
            standard deviation beside each frame: ``W`` acts on ``[h_t ; mean ; std]`` (3C).
        var_floor: floor on the weighted variance before the square root.
    """

    def __init__(
        self,
        in_channels: int,
        attention_dim: int = 128,
        channel_dependent: bool = False,
        global_context: bool = False,
        var_floor: float = 1e-10,
    ) -> None:
        super().__init__()
        if in_channels < 1 or attention_dim < 1:
            raise ValueError(f"in_channels and attention_dim must be positive, got {in_channels}, {attention_dim}")
        self.global_context = global_context
        self.var_floor = var_floor
        context_in = 3 * in_channels if global_context else in_channels
        self.hidden = nn.Conv1d(context_in, attention_dim, kernel_size=1)  # W, b
        self.activation = nn.Tanh()
        self.score = nn.Conv1d(attention_dim, in_channels if channel_dependent else 1, kernel_size=1)  # v, k

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            lengths = lengths.clamp_min(1)  # an empty row would soft-max over nothing (NaN)
        mask = length_mask(lengths, x.shape[-1], x)  # (B, 1, T) or None
        if self.global_context:
            mean, std = weighted_stats(x, uniform_weights(x, lengths), self.var_floor)  # (B, C)
            hidden = self._hidden_with_context(x, torch.cat([mean, std], dim=1))  # (B, A, T)
        else:
            hidden = self.hidden(x)
        scores = self.score(self.activation(hidden))  # (B, 1|C, T)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)  # (B, 1|C, T), sums to 1 over valid frames
        mean, std = weighted_stats(x, alpha, self.var_floor)
        return torch.cat([mean, std], dim=-1)  # (B, 2C)

    def _hidden_with_context(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``W [x_t ; context] + b`` for every frame of ``x (B, C, T)``, ``context (B, 2C)``.

        The same 1×1 convolution as ``self.hidden`` on the concatenation (same weights, same
        ``state_dict``), without building that ``(B, 3C, T)`` tensor: the context is constant
        over time, so its part is one matrix-vector product per utterance, added to every frame.
        A third of the frame-wise products and memory traffic of the concatenated form.
        """
        c = x.shape[1]
        weight = self.hidden.weight  # (A, 3C, 1)
        per_utt = F.linear(context, weight[:, c:, 0], self.hidden.bias)  # (B, A)
        return F.conv1d(x, weight[:, :c]) + per_utt.unsqueeze(-1)  # (B, A, T)

    @staticmethod
    def out_dim(in_channels: int) -> int:
        return 2 * in_channels


class UnbiasedStatsPooling(nn.Module):
    """Mean and *sample* standard deviation over time: ``(B, C, T)`` + lengths ``(B,)`` → ``(B, 2C)``.

    The statistics pooling of D-TDNN, CAM++ (3D-Speaker's ``statistics_pooling``: ``x.std()``,
    unbiased) and WeSpeaker's ``TSTP`` (``sqrt(var(x) + 1e-7)``, unbiased): the variance about the
    mean divides by ``n - 1`` (``n`` valid frames; 1 when ``n = 1``), then ``eps`` is added and the
    result floored before the square root. Masked by length like :class:`StatsPooling`.

    Args:
        eps: added to the variance before the square root (WeSpeaker 1e-7, 3D-Speaker 0).
        var_floor: floor on the variance (keeps the gradient finite for constant channels).
        in_channels: unused; accepted for the ``pooling(in_channels=C)`` factory call.

    Example:
        >>> x = torch.tensor([[[1.0, 3.0, 99.0]]])  # last frame is padding
        >>> UnbiasedStatsPooling()(x, torch.tensor([2]))
        tensor([[2.0000, 1.4142]])
    """

    def __init__(self, eps: float = 0.0, var_floor: float = 1e-10, in_channels: int | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.var_floor = var_floor

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = x.float()  # statistics in float32 also under bf16/fp16 autocast
        mean, var = weighted_moments(x, uniform_weights(x, lengths))  # population variance
        n = torch.full((x.shape[0],), x.shape[-1], device=x.device) if lengths is None else lengths.clamp_min(1)
        n = n.to(x.dtype)[:, None]  # (B, 1)
        var = var * n / (n - 1).clamp_min(1) + self.eps  # sample variance
        return torch.cat([mean, var.clamp_min(self.var_floor).sqrt()], dim=-1)  # (B, 2C)

    @staticmethod
    def out_dim(in_channels: int) -> int:
        return 2 * in_channels
