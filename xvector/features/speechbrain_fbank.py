"""SpeechBrain's filterbank front-end, batched with lengths: ``Fbank`` + ``InputNormalization``.

What ``speechbrain.lobes.features.Fbank`` (1.1.2) computes, followed by the sentence-level mean
normalisation of ``InputNormalization(norm_type="sentence", std_norm=False)``, which SpeechBrain's
speaker models (``spkrec-ecapa-voxceleb``, ``spkrec-xvect-voxceleb``) were trained on:

1. a centred STFT (``torch.stft(center=True, pad_mode="constant")``): the waveform is zero-padded
   by ``n_fft / 2`` samples on each side and framed every ``hop_length_ms`` into
   ``win_length_ms`` frames (no pre-emphasis, no DC removal, no dither), so ``S`` samples give
   ``1 + S // hop`` frames;
2. a periodic Hamming window, ``|FFT|²`` over ``n_fft`` points (400 at 16 kHz: not a power of 2);
3. triangular mel filters spaced on the HTK mel scale between ``f_min`` and ``f_max``, each
   spanning from its left neighbour's centre to its right neighbour's (SpeechBrain's
   ``Filterbank``);
4. ``10 log10(max(E, 1e-10))``, then clipped from below at the utterance's maximum minus
   ``top_db`` = 80 dB (maximum over all frames and bands of that utterance);
5. the utterance's mean (over its frames) subtracted from every frame.

The framing is done with ``unfold`` and ``rfft`` rather than ``torch.stft`` (the same numbers, and
it exports to ONNX, :mod:`xvector.inference.graph`). In a padded batch the waveform past each
utterance's length is zeroed first and steps 4–5 use only the utterance's own frames, so its
features equal those it gets alone (SpeechBrain's batched forward takes the dB maximum over the
padding too and the mean over ``round(relative_length * T)`` frames).

Example:
    >>> import torch
    >>> fbank = SpeechBrainFbank(num_mel_bins=24)
    >>> feats, frame_lens = fbank(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> feats.shape, frame_lens.tolist()
    (torch.Size([2, 101, 24]), [101, 51])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _to_mel(hz: float) -> float:
    return 2595 * math.log10(1 + hz / 700)


def mel_filters(num_mel_bins: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """SpeechBrain's triangular mel filter matrix ``(n_fft // 2 + 1, num_mel_bins)``, float32 as it builds it."""
    mel = torch.linspace(_to_mel(f_min), _to_mel(f_max), num_mel_bins + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    band = (hz[1:] - hz[:-1])[:-1]  # (M,): left half-width of each filter
    centre = hz[1:-1]  # (M,)
    freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1)  # (K,)
    slope = (freqs[None, :] - centre[:, None]) / band[:, None]  # (M, K)
    return torch.clamp(torch.minimum(slope + 1.0, 1.0 - slope), min=0.0).T.contiguous()  # (K, M)


class SpeechBrainFbank(nn.Module):
    """SpeechBrain ``Fbank`` + sentence mean normalisation, over a padded batch.

    Args:
        num_mel_bins: SpeechBrain's ``n_mels`` (its default 40; 80 for ECAPA, 24 for the x-vector).
        sample_rate: in Hz.
        n_fft: FFT points (400).
        win_length_ms: window length (25 ms).
        hop_length_ms: hop (10 ms).
        f_min: lowest filter edge in Hz (0).
        f_max: highest filter edge in Hz; ``None``: ``sample_rate // 2``.
        top_db: dynamic range kept below each utterance's maximum (80 dB).
        amin: energy floor before the log (1e-10).
        mean_norm: subtract each utterance's mean (``InputNormalization(norm_type="sentence")``).

    Shapes:
        ``wav (B, S)``, ``wav_lens (B,)`` samples → ``feats (B, T, num_mel_bins)``, ``frame_lens (B,)``.
    """

    def __init__(
        self,
        num_mel_bins: int = 40,
        sample_rate: int = 16000,
        n_fft: int = 400,
        win_length_ms: float = 25.0,
        hop_length_ms: float = 10.0,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float = 80.0,
        amin: float = 1e-10,
        mean_norm: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.num_mel_bins = num_mel_bins
        self.n_fft = n_fft
        self.frame_length = int(round(sample_rate / 1000.0 * win_length_ms))
        self.frame_shift = int(round(sample_rate / 1000.0 * hop_length_ms))
        if self.frame_length > n_fft:
            raise ValueError(f"window of {self.frame_length} samples is longer than n_fft={n_fft}")
        self.top_db, self.amin, self.mean_norm = top_db, amin, mean_norm
        window = torch.hamming_window(self.frame_length)  # periodic, as torch.stft's default window_fn
        left = (n_fft - self.frame_length) // 2  # torch.stft centres a shorter window in n_fft
        self.register_buffer("window", F.pad(window, (left, n_fft - self.frame_length - left)), persistent=False)
        f_max = sample_rate // 2 if f_max is None else f_max
        self.register_buffer("mel_banks", mel_filters(num_mel_bins, n_fft, sample_rate, f_min, f_max), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.num_mel_bins

    def frame_lens(self, wav_lens: torch.Tensor) -> torch.Tensor:
        """Frames of a centred STFT: ``1 + S // hop``."""
        return 1 + wav_lens // self.frame_shift

    def min_samples(self, frames: int) -> int:
        """Fewest samples that give ``frames`` frames."""
        return max(1, (frames - 1) * self.frame_shift)

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B, S = wav.shape
        if wav_lens is None:
            wav_lens = torch.full((B,), S, dtype=torch.long, device=wav.device)
        samples = torch.arange(S, device=wav.device)[None, :] < wav_lens[:, None]
        x = F.pad(wav.float() * samples, (self.n_fft // 2, self.n_fft // 2))  # centre, zero padding
        frames = x.unfold(-1, self.n_fft, self.frame_shift) * self.window  # (B, T, n_fft)
        spec = torch.fft.rfft(frames, n=self.n_fft)
        power = spec.real.pow(2) + spec.imag.pow(2)  # (B, T, n_fft // 2 + 1)
        db = 10 * torch.log10((power @ self.mel_banks).clamp_min(self.amin))  # (B, T, F)
        frame_lens = self.frame_lens(wav_lens)
        valid = (torch.arange(db.shape[1], device=db.device)[None, :] < frame_lens[:, None]).unsqueeze(-1)
        peak = db.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        db = torch.maximum(db, peak - self.top_db)
        if self.mean_norm:
            mean = (db * valid).sum(1, keepdim=True) / frame_lens.clamp_min(1).to(db)[:, None, None]
            db = db - mean
        return db * valid, frame_lens

    def extra_repr(self) -> str:
        return f"num_mel_bins={self.num_mel_bins}, sample_rate={self.sample_rate}, n_fft={self.n_fft}"
