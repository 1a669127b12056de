"""Synthetic multi-speaker corpus from a vectorised source-filter speech synthesizer.

A speaker is a fixed parameter set (pitch register, vocal-tract length, bandwidths, source tilt,
breathiness, jitter/shimmer, speaking rate, nasality, static high resonances and a per-vowel
formant "accent"). An utterance is a random string of vowel, nasal, fricative and plosive
segments with pauses, smooth formant transitions and an F0 contour. The glottal excitation is
built in the time domain from the cumulative phase of the F0 contour; the time-varying vocal
tract is applied frame-wise in the STFT domain (Hann 512 / hop 128) and overlap-added back.
Each utterance then goes through a random channel (smooth EQ, band limits, optional reverb,
additive noise), so that a long-term spectral average is a poor speaker cue (a mean-MFCC +
cosine baseline scores ~30% EER) while frame-level spectra with CMN still carry the identity:
pitch harmonics, per-vowel formant positions and their dynamics.

Example:
    >>> import numpy as np
    >>> spk = sample_speaker(np.random.default_rng(0))
    >>> rng = np.random.default_rng(1)
    >>> clean = synthesize_utterance(spk, rng, duration_sec=1.0)
    >>> wav = apply_channel(clean, rng, sample_rate=16000)
    >>> wav.shape, wav.dtype, bool(np.abs(wav).max() <= 1.0)
    ((16000,), dtype('float32'), True)
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq
from scipy.ndimage import gaussian_filter1d

from xvector.data.lists import utt2spk_to_spk2utt, write_kaldi_map, write_trials

log = logging.getLogger(__name__)

N_FFT, HOP = 512, 128  # 32 ms Hann frames, 8 ms hop at 16 kHz
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)

# Adult-male vowel formants F1-F4 in Hz (after Peterson & Barney 1952): i ɪ ɛ æ ɑ ɔ ʊ u ʌ ɝ.
VOWEL_FORMANTS_HZ = np.array(
    [[270, 2290, 3010, 3500], [390, 1990, 2550, 3450], [530, 1840, 2480, 3500],
     [660, 1720, 2410, 3450], [730, 1090, 2440, 3400], [570, 840, 2410, 3300],
     [440, 1020, 2240, 3300], [300, 870, 2240, 3300], [640, 1190, 2390, 3350],
     [490, 1350, 1690, 3300]], dtype=np.float64)  # fmt: skip
BANDWIDTHS_HZ = np.array([70.0, 95.0, 130.0, 180.0])  # F1..F4
# Fixed higher resonances F5-F8 of a ~17.5 cm tract (speaker-scaled, static in time). Without
# them a 4-pole product falls far too steeply above 4 kHz (Klatt's "higher-pole correction").
HIGH_POLES_HZ = np.array([4500.0, 5500.0, 6500.0, 7500.0])
HIGH_BANDWIDTHS_HZ = np.array([250.0, 320.0, 400.0, 500.0])
N_VOWELS = len(VOWEL_FORMANTS_HZ)

# Consonants m n s ʃ f h z p t k: voicing, aspiration (through the tract) and frication
# (separate noise band: centre Hz, width in octaves) gains; nasal murmur formants (NaN =
# coarticulated with the neighbouring vowel); plosives get frication only as a final burst.
_CONS_VOICED = np.array([0.35, 0.35, 0, 0, 0, 0, 0.25, 0, 0, 0])
_CONS_ASP = np.array([0, 0, 0, 0, 0, 0.6, 0, 0.15, 0.15, 0.15])
_CONS_FRIC = np.array([0, 0, 0.35, 0.45, 0.12, 0, 0.2, 0.5, 0.7, 0.6])
_CONS_FC_HZ = np.array([1, 1, 6000, 3200, 5000, 1, 5500, 1200, 4500, 2200], dtype=np.float64)
_CONS_WIDTH_OCT = np.array([1, 1, 0.35, 0.4, 1.5, 1, 0.35, 1.0, 0.6, 0.45])
_CONS_PLOSIVE = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=bool)
_NASAL_FORMANTS_HZ = np.array([[250, 1100, 2300, 3300], [250, 1500, 2400, 3300]], dtype=np.float64)
_N_CONS = len(_CONS_VOICED)
_PAUSE = N_VOWELS + _N_CONS  # segment codes: vowels, then consonants, then pause
# Segment duration ranges in seconds by code (before the speaker's rate scaling).
_DUR_LO = np.r_[np.full(N_VOWELS, 0.07), np.full(_N_CONS, 0.05), 0.10]
_DUR_HI = np.r_[np.full(N_VOWELS, 0.18), np.full(_N_CONS, 0.12), 0.35]
PAUSE_PROB = 0.12  # chance of a pause after a syllable
EDGE_SILENCE_SEC = (0.05, 0.3)  # leading / trailing silence

# Seed-sequence stream tags keep speaker, utterance and trial RNGs apart (a SeedSequence
# ignores trailing zeros, so the tag sits second, never last).
_STREAM_SPEAKER, _STREAM_UTT, _STREAM_TRIALS = 1, 2, 3
_SPLITS = (("train", 0), ("test", 1), ("dev", 2))

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


@dataclass(frozen=True, eq=False)
class SpeakerParams:
    """Fixed voice parameters of one synthetic speaker.

    Attributes:
        group: pitch register, ``"low"`` (male-like) or ``"high"`` (female-like).
        f0_mean_hz: mean fundamental frequency.
        f0_range_st: standard deviation of the F0 contour in semitones.
        formant_scale: vocal-tract length as a formant scaling factor (~0.82-1.18).
        bandwidth_scale: scaling of the formant bandwidths.
        tilt_db_per_oct: extra glottal-source roll-off above 500 Hz.
        open_quotient: open fraction of the glottal cycle (longer = softer, more tilted).
        breathiness: aspiration-noise level relative to the voiced source.
        jitter: relative period perturbation per glottal cycle.
        shimmer: relative amplitude perturbation per glottal cycle.
        rate: segment-duration scale (>1 is slower).
        vowel_offsets: ``(N_VOWELS, 4)`` log-factor offsets of each vowel's F1-F4 (an accent).
        high_pole_offsets: ``(4,)`` log-factor offsets of the static F5-F8.
        zero_hz: speaker-specific spectral zero (hypopharyngeal anti-resonance).
        nasal_pole_hz: pole of the speaker's habitual nasal coupling.
        nasality: degree of that coupling, 0 (none) to 1; moves its zero away from the pole.
    """

    group: str
    f0_mean_hz: float
    f0_range_st: float
    formant_scale: float
    bandwidth_scale: float
    tilt_db_per_oct: float
    open_quotient: float
    breathiness: float
    jitter: float
    shimmer: float
    rate: float
    vowel_offsets: np.ndarray
    high_pole_offsets: np.ndarray
    zero_hz: float
    nasal_pole_hz: float
    nasality: float

    def vowel_formants_hz(self) -> np.ndarray:
        """The speaker's ``(N_VOWELS, 4)`` vowel formant targets F1-F4 in Hz."""
        return self.formant_scale * VOWEL_FORMANTS_HZ * np.exp(self.vowel_offsets)


def sample_speaker(rng: np.random.Generator) -> SpeakerParams:
    """Draw one speaker's voice parameters from ``rng``."""
    high = bool(rng.random() < 0.5)
    return SpeakerParams(
        group="high" if high else "low",
        f0_mean_hz=float(rng.uniform(160, 260) if high else rng.uniform(85, 150)),
        f0_range_st=float(rng.uniform(1.0, 3.5)),
        # Female-like voices have shorter tracts; the registers overlap around 0.95-1.05.
        formant_scale=float(rng.uniform(0.95, 1.18) if high else rng.uniform(0.82, 1.05)),
        bandwidth_scale=float(rng.uniform(0.6, 1.8)),
        tilt_db_per_oct=float(rng.uniform(-1.0, 6.0)),
        open_quotient=float(rng.uniform(0.45, 0.75)),
        breathiness=float(rng.uniform(0.02, 0.5)),
        jitter=float(rng.uniform(0.003, 0.02)),
        shimmer=float(rng.uniform(0.02, 0.12)),
        rate=float(rng.uniform(0.8, 1.25)),
        vowel_offsets=rng.normal(0.0, 0.1, (N_VOWELS, 4)),
        high_pole_offsets=rng.normal(0.0, 0.1, 4),
        zero_hz=float(rng.uniform(3800, 5500)),
        nasal_pole_hz=float(rng.uniform(250, 450)),
        nasality=float(rng.uniform(0.0, 1.0)),
    )


def _fill_nan_rows(x: np.ndarray) -> np.ndarray:
    """Fill NaN rows of ``(N, K)`` from the next valid row (anticipatory coarticulation),
    else the previous one."""
    valid = ~np.isnan(x[:, 0])
    idx = np.arange(len(x))
    nxt = np.minimum.accumulate(np.where(valid, idx, len(x))[::-1])[::-1]
    prv = np.maximum.accumulate(np.where(valid, idx, -1))
    src = np.where(nxt < len(x), nxt, prv)
    return x[np.clip(src, 0, len(x) - 1)]


def _segment_tracks(
    spk: SpeakerParams, rng: np.random.Generator, n_frames: int, frame_sec: float
) -> dict[str, np.ndarray]:
    """Per-frame formants ``(T, 4)``, bandwidth multiplier, voiced/aspiration/frication gains and
    frication band (centre, width) of a random segment string, all vectorised over segments."""
    n_syl = int(n_frames * frame_sec / 0.12) + 4
    # Syllable slots: onset consonant, vowel, coda consonant, pause.
    codes = np.stack([N_VOWELS + rng.integers(0, _N_CONS, n_syl), rng.integers(0, N_VOWELS, n_syl),
                      N_VOWELS + rng.integers(0, _N_CONS, n_syl), np.full(n_syl, _PAUSE)], 1)
    keep = np.stack([rng.random(n_syl) < 0.75, np.ones(n_syl, bool),
                     rng.random(n_syl) < 0.3, rng.random(n_syl) < PAUSE_PROB], 1)
    stress = np.repeat(10 ** (rng.normal(0, 3, n_syl) / 20)[:, None], 4, 1)
    dur = _DUR_LO[codes] + (_DUR_HI[codes] - _DUR_LO[codes]) * rng.random(codes.shape)
    codes, stress, dur = codes[keep], stress[keep], dur[keep] * spk.rate
    lead, trail = (int(rng.uniform(*EDGE_SILENCE_SEC) / frame_sec) for _ in range(2))
    ends = lead + np.round(np.cumsum(dur) / frame_sec).astype(int)
    n_fit = int(np.searchsorted(ends, n_frames - trail, side="right"))
    # Leading silence, the segments that fit before the trailing silence, trailing silence.
    lengths = np.diff(np.r_[0, lead, ends[:n_fit]])
    codes = np.r_[_PAUSE, codes[:n_fit], _PAUSE]
    stress = np.r_[0.0, stress[:n_fit], 0.0]
    lengths = np.r_[lengths, n_frames - lengths.sum()]

    is_vowel, cons = codes < N_VOWELS, np.clip(codes - N_VOWELS, 0, _N_CONS - 1)
    is_cons = ~is_vowel & (codes != _PAUSE)
    formants = np.full((len(codes), 4), np.nan)
    formants[is_vowel] = spk.vowel_formants_hz()[codes[is_vowel]]
    nasal = is_cons & (cons < 2)
    formants[nasal] = spk.formant_scale * _NASAL_FORMANTS_HZ[cons[nasal]]
    # Token-to-token variation of the targets, so no two realisations are identical.
    formants *= np.exp(rng.normal(0, 0.03, formants.shape))
    formants = _fill_nan_rows(formants) if (~np.isnan(formants[:, 0])).any() else np.tile(
        spk.vowel_formants_hz()[4], (len(codes), 1))
    seg = np.repeat(np.arange(len(codes)), lengths)  # frame -> segment
    from_end = np.cumsum(lengths)[seg] - 1 - np.arange(n_frames)
    burst = ~_CONS_PLOSIVE[cons[seg]] | (from_end < 2)
    voiced = np.where(is_vowel, 1.0, np.where(is_cons, _CONS_VOICED[cons], 0.0)) * stress
    asp = np.where(is_cons, _CONS_ASP[cons], 0.0) * stress
    fric = np.where(is_cons, _CONS_FRIC[cons], 0.0) * stress
    band = np.where((fric > 0)[:, None], np.c_[_CONS_FC_HZ[cons], _CONS_WIDTH_OCT[cons]], np.nan)
    # Gain smoothing spills into neighbouring frames: let them keep the fricative's band.
    band = _fill_nan_rows(band) if (fric > 0).any() else np.tile([4000.0, 1.0], (len(codes), 1))
    smooth = lambda x, s: gaussian_filter1d(x, s, axis=0, mode="nearest")  # noqa: E731
    return dict(
        formants=np.exp(smooth(np.log(formants[seg]), 2.5)),  # ~20 ms formant transitions
        bw_mult=smooth(np.where(nasal, 2.0, 1.0)[seg], 2.5),
        voiced=smooth(voiced[seg], 1.0),
        asp=smooth(asp[seg], 1.0),
        fric=smooth(fric[seg] * burst, 0.7),
        fric_fc=spk.formant_scale * band[seg, 0],
        fric_width=band[seg, 1],
    )


def _stft(x: np.ndarray) -> np.ndarray:
    """``(S,)`` -> ``(S // HOP + 1, N_FFT // 2 + 1)`` STFT, frame ``t`` centred at ``t * HOP``."""
    xp = np.pad(x, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::HOP]
    return rfft(frames * _WINDOW, axis=1)


def _istft(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft`, vectorised over the 4 frame quarters."""
    n_frames, k = len(spec), N_FFT // HOP
    frames = (irfft(spec, N_FFT, axis=1) * _WINDOW).reshape(n_frames, k, HOP)
    out = np.zeros((n_frames + k - 1, HOP), frames.dtype)
    norm = np.zeros((n_frames + k - 1, HOP), np.float32)
    w2 = (_WINDOW**2).reshape(k, HOP)
    for q in range(k):
        out[q : q + n_frames] += frames[:, q]
        norm[q : q + n_frames] += w2[q]
    start = N_FFT // 2
    return (out.ravel() / np.maximum(norm.ravel(), 1e-3))[start : start + n_samples]


def _resonance_power(f: np.ndarray, fc: np.ndarray | float, bw: np.ndarray | float) -> np.ndarray:
    """Inverse squared magnitude of a 2nd-order resonance with unit gain at 0 Hz."""
    fc2 = np.float32(fc) ** 2 if np.isscalar(fc) else fc**2
    return ((fc2 - f**2) ** 2 + (f * bw) ** 2) / fc2**2


def synthesize_utterance(
    speaker: SpeakerParams, rng: np.random.Generator, duration_sec: float, sample_rate: int = 16000
) -> np.ndarray:
    """Synthesize one clean utterance of ``speaker``.

    Args:
        speaker: the voice.
        rng: source of the utterance's randomness (segments, prosody, noise).
        duration_sec: length; the output has ``round(duration_sec * sample_rate)`` samples.
        sample_rate: in Hz.

    Returns:
        ``(S,)`` float32 waveform, peak-normalised to 0.9.

    Raises:
        ValueError: if the duration is shorter than one analysis frame.
    """
    n = int(round(duration_sec * sample_rate))
    if n < N_FFT:
        raise ValueError(f"duration_sec={duration_sec} gives {n} samples, fewer than {N_FFT}")
    n_frames, frame_sec = n // HOP + 1, HOP / sample_rate
    tr = _segment_tracks(speaker, rng, n_frames, frame_sec)

    # Prosody: declination plus a smooth random contour within the speaker's range.
    wander = gaussian_filter1d(rng.standard_normal(n_frames), 0.15 / frame_sec, mode="nearest")
    wander /= wander.std() + 1e-9
    decl = rng.uniform(1.0, 4.0) * (0.5 - np.arange(n_frames) / n_frames)
    f0 = speaker.f0_mean_hz * 2 ** ((speaker.f0_range_st * wander + decl) / 12)
    frame_pos, pos = np.arange(n_frames) * HOP, np.arange(n)
    f0_s = np.interp(pos, frame_pos, f0)

    # Glottal source from the cumulative phase, with per-cycle jitter and shimmer.
    n_cyc = int(np.sum(f0_s) / sample_rate * 1.2) + 4
    cyc = np.floor(np.cumsum(f0_s / sample_rate)).astype(int)
    phase = np.cumsum(f0_s * (1 + speaker.jitter * rng.standard_normal(n_cyc))[cyc] / sample_rate)
    cyc = np.minimum(np.floor(phase).astype(int), n_cyc - 1)
    frac = phase - np.floor(phase)
    tp, tn = 0.65 * speaker.open_quotient, 0.35 * speaker.open_quotient  # Rosenberg pulse
    flow = np.where(frac < tp, 0.5 - 0.5 * np.cos(np.pi * frac / tp),
                    np.where(frac < tp + tn, np.cos(0.5 * np.pi * (frac - tp) / tn), 0.0))
    flow *= 1 + speaker.shimmer * rng.standard_normal(n_cyc)[cyc]
    # Flow derivative (lip radiation), scaled so its level does not depend on F0.
    source = np.diff(flow, prepend=0.0) * (sample_rate / speaker.f0_mean_hz)
    voiced = np.interp(pos, frame_pos, tr["voiced"])
    noise = rng.standard_normal((2, n))
    asp = np.interp(pos, frame_pos, tr["asp"])
    breath = speaker.breathiness * voiced * (0.4 + 0.6 * flow) + asp  # pulsed aspiration
    tract_in = (source * voiced + 2.0 * breath * noise[0]).astype(np.float32)
    fric_in = (np.interp(pos, frame_pos, tr["fric"]) * noise[1]).astype(np.float32)

    # Time-varying filters, all frames x bins at once.
    f = rfftfreq(N_FFT, 1 / sample_rate).astype(np.float32)[None, :]  # (1, K)
    fk = tr["formants"].astype(np.float32)  # (T, 4)
    bk = (BANDWIDTHS_HZ * speaker.bandwidth_scale * tr["bw_mult"][:, None]).astype(np.float32)
    denom = np.ones((n_frames, f.shape[1]), np.float32)
    for k in range(fk.shape[1]):  # |H| = prod F^2 / sqrt((F^2 - f^2)^2 + (f B)^2)
        denom *= _resonance_power(f, fk[:, k : k + 1], bk[:, k : k + 1])
    high = speaker.formant_scale * HIGH_POLES_HZ * np.exp(speaker.high_pole_offsets)
    static = np.sqrt(_resonance_power(f, speaker.zero_hz, 300.0))  # a zero: inverse resonance
    fp = speaker.nasal_pole_hz  # nasal pole-zero pair; they cancel at nasality 0
    static *= np.sqrt(_resonance_power(f, fp * (1 + speaker.nasality), 150.0)
                      / _resonance_power(f, fp, 150.0))
    for fh, bh in zip(high, HIGH_BANDWIDTHS_HZ * speaker.bandwidth_scale):
        static /= np.sqrt(_resonance_power(f, fh, bh))
    static *= (1 + (f / 500) ** 2) ** (-speaker.tilt_db_per_oct / 12)
    h_tract = static / np.sqrt(denom)
    octs = np.log2(np.maximum(f, 20.0) / tr["fric_fc"][:, None].astype(np.float32))
    h_fric = 3.0 * np.exp(-0.5 * (octs / tr["fric_width"][:, None].astype(np.float32)) ** 2)
    y = _istft(_stft(tract_in) * h_tract + _stft(fric_in) * h_fric, n)
    return (0.9 * y / (np.abs(y).max() + 1e-9)).astype(np.float32)


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


def _render(job: tuple) -> int:
    """Synthesize, pass through a channel and write one utterance; returns its sample count."""
    path, seed, split_id, spk_index, utt_index, speaker, min_sec, max_sec, sample_rate = job
    # The RNG depends only on the utterance's coordinates, so output is independent of workers.
    rng = np.random.default_rng([seed, _STREAM_UTT, split_id, spk_index, utt_index])
    n = int(rng.integers(int(np.ceil(min_sec * sample_rate)), int(max_sec * sample_rate) + 1))
    clean = synthesize_utterance(speaker, rng, n / sample_rate, sample_rate)
    buf = io.BytesIO()  # soundfile fsyncs real files on close, which costs more than synthesis
    wav = apply_channel(clean, rng, sample_rate)
    sf.write(buf, wav, sample_rate, subtype="PCM_16", format="WAV")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())
    return n


def _candidates(rng: np.random.Generator, pool: int, want: int) -> Iterator[int]:
    """Distinct indices below ``pool``: a small random sample, which nearly always holds
    ``want`` usable partners, then (lazily, rarely) all of them in random order."""
    n = min(pool, 2 * want + 8)
    yield from rng.choice(pool, size=n, replace=False).tolist()
    if n < pool:
        yield from rng.permutation(pool).tolist()


def make_trials(
    utt2spk: dict[str, str], rng: np.random.Generator, trials_per_utt: int = 10
) -> list[tuple[str, str, bool]]:
    """Draw a balanced trial list over the utterances of ``utt2spk``.

    Each utterance, as enrollment, gets up to ``trials_per_utt // 2`` same-speaker and up to
    ``trials_per_utt - trials_per_utt // 2`` other-speaker test partners; no self-trials and no
    pair twice (in either order), so late enrollments of small speakers may get fewer targets.

    Returns:
        ``(enroll, test, is_target)`` tuples, grouped by enrollment in sorted order.
    """
    # Group by speaker so that each speaker's utterances are one contiguous block.
    utts = sorted(utt2spk, key=lambda u: (utt2spk[u], u))
    start: dict[str, int] = {}
    for i, u in enumerate(utts):
        start.setdefault(utt2spk[u], i)
    size = Counter(utt2spk.values())
    n_target = trials_per_utt // 2
    seen: set[frozenset[str]] = set()
    trials = []
    for enroll in sorted(utts):
        lo, n_same = start[utt2spk[enroll]], size[utt2spk[enroll]]
        for target, pool, want in ((True, n_same, n_target),
                                   (False, len(utts) - n_same, trials_per_utt - n_target)):
            got = 0
            for j in _candidates(rng, pool, want):
                if got == want:
                    break
                test = utts[lo + j if target else (j if j < lo else j + n_same)]
                pair = frozenset((enroll, test))
                if test != enroll and pair not in seen:
                    seen.add(pair)
                    trials.append((enroll, test, target))
                    got += 1
    return trials


def make_corpus(
    out_dir: str | os.PathLike,
    *,
    n_train_speakers: int = 600,
    n_train_utts: int = 10,
    n_test_speakers: int = 40,
    n_test_utts: int = 20,
    n_dev_speakers: int = 20,
    n_dev_utts: int = 10,
    min_sec: float = 2.0,
    max_sec: float = 6.0,
    sample_rate: int = 16000,
    seed: int = 0,
    num_workers: int = 2,
    trials_per_utt: int = 10,
) -> dict:
    """Write a synthetic corpus with disjoint train / test / dev speakers.

    Layout: ``out_dir/wav/<spk>/<utt>.wav`` (16-bit PCM) and Kaldi lists ``train/{wav.scp,
    utt2spk,spk2utt}``, ``test/...`` and ``dev/...``, plus ``trials`` in test and dev (dev: held
    out speakers for validation EER). Speaker ids are ``<split>-spk0007``, utterance ids
    ``<spk>-utt012``; wav.scp holds absolute paths. A split with 0 speakers is skipped. Every
    speaker and utterance has its own RNG stream, so the same ``seed`` gives byte-identical
    files for any ``num_workers``, and a smaller corpus is a subset of a larger one.

    Returns:
        Summary: ``out_dir``, ``utterances``, ``hours``, ``seconds`` (wall time) and ``splits``
        (speakers, utterances and trials per split).

    Raises:
        ValueError: on bad sizes or durations, or a test / dev split too small for trials.

    Example:
        >>> import tempfile
        >>> s = make_corpus(tempfile.mkdtemp(), n_train_speakers=2, n_train_utts=1,
        ...                 n_test_speakers=2, n_test_utts=2, n_dev_speakers=0, min_sec=0.5,
        ...                 max_sec=0.5, num_workers=1, trials_per_utt=2)
        >>> s["utterances"], sorted(s["splits"])
        (6, ['test', 'train'])
    """
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    sizes = {"train": (n_train_speakers, n_train_utts), "test": (n_test_speakers, n_test_utts),
             "dev": (n_dev_speakers, n_dev_utts)}
    if n_train_speakers < 1 or n_train_utts < 1:
        raise ValueError(f"need >= 1 train speaker and utterance, got {sizes['train']}")
    for name in ("test", "dev"):
        n_spk, n_utt = sizes[name]
        if n_spk < 0 or (n_spk > 0 and min(n_spk, n_utt) < 2):
            raise ValueError(f"{name}: trials need >= 2 speakers with >= 2 utterances each, "
                             f"got (speakers, utts) = {sizes[name]}")
    if not 0 < min_sec <= max_sec or min_sec * sample_rate < N_FFT:
        raise ValueError(f"need {N_FFT / sample_rate:.3f} <= min_sec <= max_sec, "
                         f"got min_sec={min_sec}, max_sec={max_sec}")
    if sample_rate < 8000 or trials_per_utt < 2:
        raise ValueError(f"need sample_rate >= 8000 and trials_per_utt >= 2, got {sample_rate}, "
                         f"{trials_per_utt}")

    jobs, utt2spk = [], {name: {} for name in sizes}
    for name, split_id in _SPLITS:
        n_spk, n_utt = sizes[name]
        # Zero-padded so that C-locale order is index order; wider only for huge corpora.
        w_spk, w_utt = max(4, len(str(n_spk - 1))), max(3, len(str(n_utt - 1)))
        for s in range(n_spk):
            speaker = sample_speaker(np.random.default_rng([seed, _STREAM_SPEAKER, split_id, s]))
            spk_id = f"{name}-spk{s:0{w_spk}d}"
            for u in range(n_utt):
                utt = f"{spk_id}-utt{u:0{w_utt}d}"
                utt2spk[name][utt] = spk_id
                jobs.append((str(out / "wav" / spk_id / f"{utt}.wav"), seed, split_id, s, u,
                             speaker, min_sec, max_sec, sample_rate))
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers) as pool:
            chunk = max(1, len(jobs) // (8 * num_workers))
            n_samples = list(pool.map(_render, jobs, chunksize=chunk))
    else:
        n_samples = [_render(job) for job in jobs]

    summary: dict = {"out_dir": str(out), "splits": {}}
    for name, split_id in _SPLITS:
        if not utt2spk[name]:
            continue
        d = out / name
        wavs = {u: str(out / "wav" / s / f"{u}.wav") for u, s in utt2spk[name].items()}
        write_kaldi_map(d / "wav.scp", wavs)
        write_kaldi_map(d / "utt2spk", utt2spk[name])
        write_kaldi_map(d / "spk2utt", utt2spk_to_spk2utt(utt2spk[name]))
        info = {"speakers": sizes[name][0], "utterances": len(wavs)}
        if name != "train":
            rng = np.random.default_rng([seed, _STREAM_TRIALS, split_id])
            trials = make_trials(utt2spk[name], rng, trials_per_utt)
            write_trials(d / "trials", trials)
            info["trials"] = len(trials)
        summary["splits"][name] = info
    summary["utterances"] = len(jobs)
    summary["hours"] = sum(n_samples) / sample_rate / 3600
    summary["seconds"] = time.perf_counter() - t0
    log.info("wrote %d utterances (%.2f h) to %s in %.1f s", len(jobs), summary["hours"], out,
             summary["seconds"])
    return summary
