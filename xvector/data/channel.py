"""Channel augmentation: each crop through a random recording channel (microphone, line, band).

Real corpora mix microphones, phones and rooms: each colours the long-term spectrum and cuts the
band. Noise and reverberation do not teach a net to ignore that; utterance CMN removes a
stationary colouring from the log-mel bins, but not a band limit (the cut bins hold only what
noise and dither put there). :class:`RandomChannel` draws a channel as real equipment makes
one - a cascade of second-order IIR sections from the Audio EQ Cookbook (R. Bristow-Johnson):
``bands`` peaking sections (a resonance or a dip each), a high-pass and a low-pass - and
applies it to the crop, rescaled to the crop's power (as :func:`~xvector.data.augment.reverberate`).

Both data paths use one filter, :func:`filter_biquads`: it multiplies the crop's spectrum by the
cascade's frequency response (the spectra of its polynomials), zero-padded by ``TAIL`` samples
so that the IIR tails do not wrap (the sections' impulse responses decay long before that),
which is the causal IIR filter ``torchaudio.functional.lfilter`` runs, to float rounding, and
batches over rows of any length on any device. ``tests/data/test_channel.py`` checks it against
torchaudio's ``equalizer_biquad``, ``highpass_biquad`` and ``lowpass_biquad``.

Example:
    >>> import torch
    >>> b, a = peaking_biquad(torch.tensor([1000.0]), torch.tensor([6.0]), torch.tensor([1.0]), 16000)
    >>> h = biquad_response(b, a, 16)  # rfft bins of 1 kHz: bin 1 is the centre
    >>> round(float(20 * h[0, 1].abs().log10()), 3)
    6.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xvector.data.augment import Transform
from xvector.data.batch_augment import fft_length

TAIL = 4096  # zero padding after a crop, in samples (256 ms at 16 kHz)


def _cookbook(f0: torch.Tensor, q: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos(w0)`` and ``alpha = sin(w0) / (2 Q)`` of sections at ``f0`` Hz (any shape)."""
    w0 = 2 * math.pi * f0.double() / sample_rate
    return torch.cos(w0), torch.sin(w0) / (2 * q.double())


def peaking_biquad(f0: torch.Tensor, gain_db: torch.Tensor, q: torch.Tensor,
                   sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Peaking EQ sections: ``gain_db`` at ``f0`` Hz with quality ``q`` (shapes ``(...)``) →
    ``b, a (..., 3)`` float64, ``a[..., 0] = 1``. A gain of 0 dB is the identity."""
    cos, alpha = _cookbook(f0, q, sample_rate)
    amp = torch.pow(10.0, gain_db.double() / 40)
    b = torch.stack([1 + alpha * amp, -2 * cos, 1 - alpha * amp], -1)
    a = torch.stack([1 + alpha / amp, -2 * cos, 1 - alpha / amp], -1)
    return b / a[..., :1], a / a[..., :1]


def pass_biquad(cutoff: torch.Tensor, sample_rate: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order Butterworth (``Q = 1/sqrt(2)``) ``kind`` = ``"high"`` or ``"low"`` pass
    sections at ``cutoff`` Hz (``(...)``) → ``b, a (..., 3)`` float64, ``a[..., 0] = 1``."""
    cos, alpha = _cookbook(cutoff, torch.full_like(cutoff, 1 / math.sqrt(2), dtype=torch.float64), sample_rate)
    edge = (1 + cos) / 2 if kind == "high" else (1 - cos) / 2
    b = torch.stack([edge, -2 * edge if kind == "high" else 2 * edge, edge], -1)
    a = torch.stack([1 + alpha, -2 * cos, 1 - alpha], -1)
    return b / a[..., :1], a / a[..., :1]


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Complex response of the filters ``b, a (..., M)`` (coefficients of ``z^0 .. z^-(M-1)``, a
    section's ``M = 3`` or a cascade's :func:`cascade`) at the ``n_fft // 2 + 1`` rfft bins."""
    return torch.fft.rfft(b.double(), n_fft) / torch.fft.rfft(a.double(), n_fft)


def cascade(sections: torch.Tensor) -> torch.Tensor:
    """The polynomial product of ``K`` sections' coefficients, ``(..., K, 3)`` → ``(..., 2K + 1)``:
    one filter with the cascade's response."""
    poly = sections[..., 0, :]
    for k in range(1, sections.shape[-2]):
        s = sections[..., k, :]
        out = poly.new_zeros(*poly.shape[:-1], poly.shape[-1] + 2)
        for j in range(3):
            out[..., j : j + poly.shape[-1]] += poly * s[..., j : j + 1]
        poly = out
    return poly


def filter_biquads(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, keep_power: bool = True) -> torch.Tensor:
    """``x (n, S)`` float through each row's cascade of sections ``b, a (n, K, 3)`` → ``(n, S)``;
    with ``keep_power`` each row is rescaled to its input's mean power (a silent row stays silent)."""
    n_fft = fft_length(x.shape[-1] + TAIL)
    spec = torch.fft.rfft(x, n_fft)
    h = biquad_response(cascade(b), cascade(a), n_fft)  # (n, F), in float64
    y = torch.fft.irfft(spec * h.to(spec.dtype), n_fft)[:, : x.shape[-1]]
    if keep_power:
        p_x, p_y = x.pow(2).mean(-1), y.pow(2).mean(-1)
        y = y * torch.where(p_y > 0, torch.sqrt(p_x / p_y.clamp_min(1e-30)), 1.0).unsqueeze(-1)
    return y


def channel_biquads(params: dict, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sections of drawn channels: ``params`` with ``f0``, ``gain_db``, ``q`` ``(n, bands)``
    and ``low_hz``, ``high_hz`` ``(n,)`` → ``b, a (n, bands + 2, 3)``."""
    pb, pa = peaking_biquad(params["f0"], params["gain_db"], params["q"], sample_rate)
    hb, ha = pass_biquad(params["low_hz"], sample_rate, "high")
    lb, la = pass_biquad(params["high_hz"], sample_rate, "low")
    return torch.cat([pb, hb.unsqueeze(1), lb.unsqueeze(1)], 1), torch.cat([pa, ha.unsqueeze(1), la.unsqueeze(1)], 1)


class RandomChannel(Transform):
    """Pass the crop through a random channel: ``bands`` peaking sections, a high-pass and a low-pass.

    Args:
        bands: peaking sections per channel.
        gain_db: ``(low, high)`` dB; each section's gain is uniform in it.
        f0_hz: ``(low, high)`` Hz; each section's centre is log-uniform in it (capped at 0.45 × rate).
        q: ``(low, high)``; each section's quality factor is log-uniform in it.
        low_cut_hz: ``(low, high)`` Hz; the high-pass corner is log-uniform in it.
        high_cut_hz: ``(low, high)`` Hz; the low-pass corner is uniform in it (capped at 0.45 × rate).
        prob: probability of an item going through a channel.
        sample_rate: in Hz.
    """

    def __init__(self, bands: int = 3, gain_db: Sequence[float] = (-10.0, 10.0),
                 f0_hz: Sequence[float] = (150.0, 6000.0), q: Sequence[float] = (0.5, 2.0),
                 low_cut_hz: Sequence[float] = (30.0, 400.0), high_cut_hz: Sequence[float] = (3000.0, 8000.0),
                 prob: float = 1.0, sample_rate: int = 16000) -> None:
        super().__init__(prob)
        ranges = {"gain_db": gain_db, "f0_hz": f0_hz, "q": q, "low_cut_hz": low_cut_hz, "high_cut_hz": high_cut_hz}
        for name, r in ranges.items():
            if len(r) != 2 or r[0] > r[1] or (name != "gain_db" and r[0] <= 0):
                raise ValueError(f"{name} must be (low, high) with low <= high{'' if name == 'gain_db' else ', > 0'}, "
                                 f"got {r}")
        if bands < 1:
            raise ValueError(f"bands must be >= 1, got {bands}")
        self.bands, self.sample_rate = int(bands), int(sample_rate)
        nyq = 0.45 * sample_rate
        self.gain_db = (float(gain_db[0]), float(gain_db[1]))
        self.log_f0 = (math.log(min(f0_hz[0], nyq)), math.log(min(f0_hz[1], nyq)))
        self.log_q = (math.log(q[0]), math.log(q[1]))
        self.log_low = (math.log(low_cut_hz[0]), math.log(low_cut_hz[1]))
        self.high = (min(float(high_cut_hz[0]), nyq), min(float(high_cut_hz[1]), nyq))

    def draw(self, num_samples: int, rng: np.random.Generator) -> dict:
        """``{"f0": [..], "gain_db": [..], "q": [..], "low_hz": x, "high_hz": y}`` (``bands`` each)."""
        k = self.bands
        return {"f0": np.exp(rng.uniform(*self.log_f0, k)).tolist(), "gain_db": rng.uniform(*self.gain_db, k).tolist(),
                "q": np.exp(rng.uniform(*self.log_q, k)).tolist(), "low_hz": float(np.exp(rng.uniform(*self.log_low))),
                "high_hz": float(rng.uniform(*self.high))}

    def apply(self, wav: torch.Tensor, params: dict) -> torch.Tensor:
        batch = {k: torch.tensor([v], dtype=torch.float32) for k, v in params.items()}  # as collate_planned's
        return filter_biquads(wav.unsqueeze(0), *channel_biquads(batch, self.sample_rate))[0]

    def batched(self) -> nn.Module:
        return BatchedChannel(self.sample_rate)


class BatchedChannel(nn.Module):
    """:class:`RandomChannel` on a batch: ``x (n, S)`` through each row's drawn channel."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)

    def forward(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        return filter_biquads(x, *channel_biquads(params, self.sample_rate))
