"""Energy voice-activity detection (Kaldi ``compute-vad``) and dropping the silent frames.

Kaldi's x-vector recipes (``egs/voxceleb/v2``, ``egs/sre16/v2``) compute features, run an
energy VAD and keep only the voiced frames (``select-voiced-frames``) for training and for
extraction alike. Silence then never enters the statistics pooling: an embedding does not move
with how much silence a file has (leading and trailing digital silence, pauses) or with its
level (the silent frames' distance to the speech frames in log energy is what a level change
moves, and those frames are gone).

With ``E_t`` the raw log-energy of frame ``t`` (natural log of the frame's sum of squares on the
16-bit scale), a frame is *above* when ``E_t`` exceeds a threshold, and *voiced* when at least
``proportion`` of the frames in ``[t - context, t + context]`` (those inside the utterance) are
above, as in Kaldi. Two thresholds (``mode``):

* ``"relative"`` (default): within ``floor_db`` dB of the utterance's loud frames (its
  ``percentile`` log-energy). A gain moves every ``E_t`` and the reference alike, so the frames
  kept, and the embedding, do not depend on the level; nor on how much silence surrounds the
  speech, as long as a tenth of the frames are speech.
* ``"kaldi"``: ``E_t > threshold + mean_scale * mean(E)``, Kaldi's ``compute-vad`` exactly,
  with the VoxCeleb recipe's ``conf/vad.conf`` values (5.5, 0.5). Its threshold follows only
  half of a level change, so quieter copies lose more of their soft frames.

Context 2 and proportion 0.12 are that recipe's too. An utterance with fewer than
``min_frames`` voiced frames keeps all its frames (a short crop of near-silence is still
embedded rather than emptied).

Example:
    >>> import torch
    >>> log_e = torch.tensor([[6.0, 6.0, 20.0, 21.0, 20.0, 6.0, 6.0, 6.0]])
    >>> energy_vad(log_e, torch.tensor([8]), context=0).int().tolist()
    [[0, 0, 1, 1, 1, 0, 0, 0]]
    >>> relative_vad(log_e, torch.tensor([8]), floor_db=30.0, context=0).int().tolist()
    [[0, 0, 1, 1, 1, 0, 0, 0]]
    >>> feats = torch.arange(8.0).reshape(1, 8, 1)
    >>> out, lens = keep_frames(feats, torch.tensor([[0, 0, 1, 1, 1, 0, 0, 0]], dtype=torch.bool))
    >>> out[0, :, 0].tolist(), lens.tolist()
    ([2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0], [3])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xvector.features.normalize import length_mask

MODES = ("relative", "kaldi")
_NEPER_PER_DB = 0.2302585  # ln(10) / 10: log-energy units per dB of power


def energy_vad(
    log_energy: torch.Tensor,
    frame_lens: torch.Tensor,
    threshold: float = 5.5,
    mean_scale: float = 0.5,
    context: int = 2,
    proportion: float = 0.12,
) -> torch.Tensor:
    """Kaldi ``compute-vad`` on a padded batch: ``log_energy (B, T)`` → voiced mask ``(B, T)``
    (False on padding)."""
    valid = length_mask(frame_lens, log_energy.shape[1])  # (B, T)
    e = log_energy.float() * valid
    mean = e.sum(1, keepdim=True) / frame_lens.clamp_min(1)[:, None].float()  # (B, 1)
    above = (e > threshold + mean_scale * mean) & valid
    return _smooth(above, valid, context, proportion)


def relative_vad(
    log_energy: torch.Tensor,
    frame_lens: torch.Tensor,
    floor_db: float = 30.0,
    percentile: float = 0.9,
    context: int = 2,
    proportion: float = 0.12,
) -> torch.Tensor:
    """Frames within ``floor_db`` of the utterance's ``percentile`` log-energy, smoothed as
    Kaldi's rule: ``log_energy (B, T)`` → voiced mask ``(B, T)`` (False on padding)."""
    valid = length_mask(frame_lens, log_energy.shape[1])  # (B, T)
    e = log_energy.float()
    ranked = torch.where(valid, e, torch.full_like(e, float("-inf"))).sort(1, descending=True).values
    rank = ((1.0 - percentile) * (frame_lens - 1).clamp_min(0).float()).long()  # (B,)
    ref = ranked.gather(1, rank[:, None])  # (B, 1): the percentile-th loudest frame
    above = (e > ref - floor_db * _NEPER_PER_DB) & valid
    return _smooth(above, valid, context, proportion)


def _smooth(above: torch.Tensor, valid: torch.Tensor, context: int, proportion: float) -> torch.Tensor:
    """Kaldi's context rule: voiced when >= ``proportion`` of the window's frames are above."""
    if context == 0:
        return above
    kernel = torch.ones(1, 1, 2 * context + 1, device=above.device)
    num = F.conv1d(above.float()[:, None], kernel, padding=context)[:, 0]  # (B, T)
    den = F.conv1d(valid.float()[:, None], kernel, padding=context)[:, 0]
    return (num >= proportion * den) & valid


def keep_frames(feats: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the kept frames of each utterance to its front, in order; zero the rest.

    Args:
        feats: ``(B, T, F)``.
        keep: ``(B, T)`` bool.

    Returns:
        ``(B, T, F)`` features and ``(B,)`` kept-frame counts (the new frame lengths).
    """
    B, T, Fdim = feats.shape
    pos = torch.cumsum(keep.long(), 1) - 1  # (B, T): destination of each kept frame
    dest = torch.where(keep, pos, torch.full_like(pos, T))  # dropped frames go to a spare slot T
    out = feats.new_zeros(B, T + 1, Fdim).scatter(1, dest.unsqueeze(-1).expand(B, T, Fdim), feats)
    return out[:, :T], keep.sum(1)


class EnergyVAD(nn.Module):
    """Drop the silent frames of a feature batch (see the module docstring for the rule).

    Args:
        mode: ``"relative"`` (level-independent threshold) or ``"kaldi"``.
        floor_db: relative mode: frames this far below the reference are silent.
        percentile: relative mode: the reference is this quantile of the frames' log-energy.
        threshold: kaldi mode: ``--vad-energy-threshold``.
        mean_scale: kaldi mode: ``--vad-energy-mean-scale``.
        context: Kaldi ``--vad-frames-context``.
        proportion: Kaldi ``--vad-proportion-threshold``.
        min_frames: an utterance with fewer voiced frames keeps all of them.

    Shapes:
        ``feats (B, T, F)``, ``log_energy (B, T)``, ``frame_lens (B,)`` → ``feats (B, T, F)``
        (voiced frames first), ``frame_lens (B,)``.
    """

    def __init__(self, mode: str = "relative", floor_db: float = 30.0, percentile: float = 0.9,
                 threshold: float = 5.5, mean_scale: float = 0.5, context: int = 2,
                 proportion: float = 0.12, min_frames: int = 30) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"VAD mode must be one of {MODES}, got {mode!r}")
        self.mode, self.floor_db, self.percentile = mode, floor_db, percentile
        self.threshold, self.mean_scale = threshold, mean_scale
        self.context, self.proportion, self.min_frames = context, proportion, min_frames

    def forward(self, feats: torch.Tensor, log_energy: torch.Tensor, frame_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "relative":
            voiced = relative_vad(log_energy, frame_lens, self.floor_db, self.percentile, self.context, self.proportion)
        else:
            voiced = energy_vad(log_energy, frame_lens, self.threshold, self.mean_scale, self.context, self.proportion)
        few = voiced.sum(1) < torch.clamp(frame_lens, max=self.min_frames)  # (B,)
        few = few[:, None]  # (logic, not torch.where: ONNX Runtime has no boolean Where)
        keep = (few & length_mask(frame_lens, feats.shape[1])) | (~few & voiced)
        return keep_frames(feats, keep)

    def extra_repr(self) -> str:
        rule = (f"floor_db={self.floor_db}, percentile={self.percentile}" if self.mode == "relative"
                else f"threshold={self.threshold}, mean_scale={self.mean_scale}")
        return f"mode={self.mode!r}, {rule}, context={self.context}, proportion={self.proportion}, min_frames={self.min_frames}"
