"""Recording conditions real corpora vary and a generator's output lacks: level, digital silence,
channel, additive noise of several colours and babble.

Each function takes and returns a float32 ``(S,)`` waveform in [-1, 1] and draws its randomness
from the ``rng`` it is given, so a corpus is a function of its seed.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> speech = 0.1 * rng.standard_normal(16000).astype(np.float32)
    >>> quiet = set_level(speech, -30.0)
    >>> round(level_dbfs(quiet), 1)
    -30.0
    >>> padded = add_digital_silence(quiet, rng, lead_sec=(0.5, 0.5), trail_sec=(0.2, 0.2), gaps=0)
    >>> len(padded) - len(quiet), float(np.abs(padded[:8000]).max())
    (11200, 0.0)
    >>> noisy = add_noise(speech, colored_noise(16000, 1.0, rng), snr_db=5.0)
    >>> round(float(10 * np.log10(np.mean(speech**2) / np.mean((noisy - speech) ** 2))), 1)
    5.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

from xvector.corpora.synthetic.noise import colored_noise

__all__ = ["active_power", "add_babble", "add_digital_silence", "add_noise", "colored_noise", "level_dbfs",
           "random_channel", "set_level"]


def active_power(wav: np.ndarray, frame: int = 400) -> float:
    """Mean power of the frames within 40 dB of the loudest (the active speech level, roughly
    ITU-T P.56's idea); silent or all-zero input gives 0."""
    n = len(wav) // frame * frame
    if n == 0:
        return float(np.mean(np.square(wav, dtype=np.float64))) if len(wav) else 0.0
    power = np.mean(np.square(wav[:n].reshape(-1, frame), dtype=np.float64), axis=1)
    if power.max() <= 0:
        return 0.0
    return float(np.mean(power[power >= 1e-4 * power.max()]))


def level_dbfs(wav: np.ndarray) -> float:
    """Active speech level in dB relative to a full-scale square wave (RMS 1.0)."""
    return float(10 * np.log10(max(active_power(wav), 1e-20)))


def set_level(wav: np.ndarray, dbfs: float) -> np.ndarray:
    """``wav`` scaled so that its active level is ``dbfs`` (clipped to [-1, 1] if that overflows)."""
    p = active_power(wav)
    if p <= 0:
        return wav.astype(np.float32)
    out = wav * np.sqrt(10 ** (dbfs / 10) / p)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def add_digital_silence(
    wav: np.ndarray,
    rng: np.random.Generator,
    lead_sec: tuple[float, float] = (0.1, 1.0),
    trail_sec: tuple[float, float] = (0.1, 1.0),
    gaps: int = 1,
    gap_sec: tuple[float, float] = (0.1, 0.5),
    sample_rate: int = 16000,
) -> np.ndarray:
    """Exact zeros at both edges and ``gaps`` zero runs inserted at random points (edited,
    trimmed or VoIP audio: what TTS and editors write, which no microphone records)."""
    pieces = [np.zeros(int(rng.uniform(*lead_sec) * sample_rate), np.float32)]
    cuts = np.sort(rng.integers(0, len(wav), gaps)) if gaps and len(wav) else np.zeros(0, int)
    start = 0
    for cut in cuts:
        pieces += [wav[start:cut], np.zeros(int(rng.uniform(*gap_sec) * sample_rate), np.float32)]
        start = cut
    pieces += [wav[start:], np.zeros(int(rng.uniform(*trail_sec) * sample_rate), np.float32)]
    return np.concatenate(pieces).astype(np.float32)


def random_channel(
    wav: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    eq_db_std: float = 4.0,
    low_cut_hz: tuple[float, float] = (60.0, 400.0),
    high_cut_hz: tuple[float, float] = (3000.0, 7800.0),
) -> np.ndarray:
    """A random linear channel: smooth EQ over log-frequency (5 points, ``eq_db_std`` dB), a
    12 dB/oct high-pass and a 36 dB/oct low-pass at random corners. No noise, so digital silence
    stays (near) silent. The output keeps the input's active level."""
    n = len(wav)
    n_fft = next_fast_len(n, real=True)
    freq = rfftfreq(n_fft, 1 / sample_rate)
    f = np.maximum(freq, 1.0)
    ctrl = np.geomspace(100, 7000, 5)
    gain_db = np.interp(np.log(f), np.log(ctrl), rng.normal(0, eq_db_std, len(ctrl)))
    low, high = rng.uniform(*low_cut_hz), min(rng.uniform(*high_cut_hz), 0.48 * sample_rate)
    h = 10 ** (gain_db / 20) / np.sqrt((1 + (low / f) ** 4) * (1 + (f / high) ** 12))
    out = irfft(rfft(wav, n_fft) * h, n_fft)[:n]
    before = active_power(wav)
    return set_level(out, 10 * np.log10(before)) if before > 0 else out.astype(np.float32)


def add_noise(wav: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wav + g * noise`` with ``g`` such that active speech power / noise power is ``snr_db``
    (noise tiled or cut to ``wav``'s length). Not clipped: the caller sets the level after."""
    noise = np.resize(noise, len(wav)).astype(np.float64)
    p_noise = np.mean(noise**2)
    if p_noise <= 0:
        raise ValueError("noise is all zeros")
    g = np.sqrt(active_power(wav) / (p_noise * 10 ** (snr_db / 10)))
    return (wav + g * noise).astype(np.float32)


def add_babble(wav: np.ndarray, talkers: Sequence[np.ndarray], snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Babble: the sum of ``talkers`` (other speakers' speech, each at equal level and a random
    circular offset) added at ``snr_db``."""
    n = len(wav)
    mix = np.zeros(n, np.float64)
    for t in talkers:
        t = np.resize(t, n)
        p = active_power(t)
        if p > 0:
            mix += np.roll(t, int(rng.integers(0, n))) / np.sqrt(p)
    return add_noise(wav, mix, snr_db)
