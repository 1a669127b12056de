"""A random recording channel for synthetic utterances: EQ, band limits, reverb, noise.

A per-utterance channel makes the long-term spectrum a poor speaker cue (a mean-MFCC + cosine
baseline scores ~25-30% EER on the synthetic corpus) without burying the speech; the linear,
stationary part of it (EQ) is what CMN undoes.

Example:
    >>> import numpy as np
    >>> wav = apply_channel(np.random.default_rng(0).standard_normal(16000), np.random.default_rng(1))
    >>> wav.shape, bool(np.abs(wav).max() <= 1.0)
    ((16000,), True)
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

# Channel strength. A per-utterance channel must make the long-term spectrum a poor speaker
# cue (a mean-MFCC + cosine baseline lands near 30% EER) without burying the speech.
EQ_DB_STD = 3.0  # random gain at EQ_POINTS log-spaced points, 80 Hz - 8 kHz
EQ_POINTS = 6
EQ_TILT_DB_STD = 1.0  # random overall tilt, dB per octave around 1 kHz
LOW_CUT_HZ_RANGE = (50.0, 300.0)
HIGH_CUT_HZ_RANGE = (3400.0, 8000.0)
NOISE_BETA_RANGE = (0.0, 2.0)  # noise power ~ 1/f^beta: white 0, pink 1, brown 2
SNR_DB_RANGE = (10.0, 35.0)  # dB re the active speech level
REVERB_PROB = 0.25
PEAK = 0.9


def _active_power(x: np.ndarray, frame: int = 256) -> float:
    """Mean power of the frames within 30 dB of the loudest one (a crude active speech level)."""
    power = np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1)
    return float(np.mean(power[power >= 1e-3 * power.max()])) if power.max() > 0 else 0.0


def apply_channel(
    wav: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """Pass ``wav`` through a random recording channel.

    In order: optional reverb (exponentially decaying noise RIR), a smooth random EQ over
    log-frequency with an overall tilt, low / high band limits, then additive ``1/f^beta`` noise
    at a random SNR relative to the active speech level, and peak normalisation. The strengths
    are the module constants ``EQ_DB_STD``, ``SNR_DB_RANGE`` etc.

    Args:
        wav: ``(S,)`` clean waveform.
        rng: source of the channel's randomness.
        sample_rate: in Hz.

    Returns:
        ``(S,)`` float32 with peak ``PEAK``.
    """
    wav = np.asarray(wav, dtype=np.float32)  # float32 FFTs: half the cost, ample precision
    n = len(wav)
    rir = np.ones(1, np.float32)
    if rng.random() < REVERB_PROB:
        rt60 = rng.uniform(0.2, 0.6)
        t = np.arange(int(rt60 * sample_rate)) / sample_rate
        tail = rng.standard_normal(len(t)) * np.exp(-6.908 * t / rt60)  # -60 dB at rt60
        tail[: int(0.002 * sample_rate)] = 0.0
        drr = 10 ** (rng.uniform(0, 10) / 10)  # direct-to-reverberant energy ratio
        rir = (tail / np.sqrt(drr * np.sum(tail**2))).astype(np.float32)
        rir[0] = 1.0
    n_fft = next_fast_len(n + len(rir) - 1, real=True)
    freq = rfftfreq(n_fft, 1 / sample_rate)
    f = np.maximum(freq, 1.0)
    ctrl_hz = np.geomspace(80, 8000, EQ_POINTS)
    gain_db = np.interp(np.log(f), np.log(ctrl_hz), rng.normal(0, EQ_DB_STD, EQ_POINTS))
    gain_db += rng.normal(0, EQ_TILT_DB_STD) * np.log2(f / 1000)
    low = rng.uniform(*LOW_CUT_HZ_RANGE)
    high = min(rng.uniform(*HIGH_CUT_HZ_RANGE), 0.49 * sample_rate)
    # 12 dB/oct high-pass (a small microphone / codec), 48 dB/oct low-pass (anti-aliasing).
    h = 10 ** (gain_db / 20) / np.sqrt((1 + (low / f) ** 4) * (1 + (f / high) ** 16))
    y = irfft(rfft(wav, n_fft) * rfft(rir, n_fft) * h.astype(np.float32), n_fft)[:n]

    beta = rng.uniform(*NOISE_BETA_RANGE)  # 0 white, 1 pink, 2 brown
    spec = rng.standard_normal((2, len(f)), dtype=np.float32) * (f ** (-beta / 2) * (freq >= 20.0))
    noise = irfft(spec[0] + 1j * spec[1], n_fft)[:n]
    snr_db = rng.uniform(*SNR_DB_RANGE)
    y += noise * np.sqrt(_active_power(y) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return (PEAK * y / (np.abs(y).max() + 1e-9)).astype(np.float32)
