"""Vectorised source-filter synthesis of speech-like utterances for synthetic speakers.

A speaker is a fixed parameter set (pitch register, vocal-tract length, bandwidths, source tilt,
breathiness, jitter/shimmer, speaking rate, nasality, static high resonances and a per-vowel
formant "accent"). An utterance is a random string of vowel, nasal, fricative and plosive
segments with pauses, smooth formant transitions and an F0 contour. The glottal excitation is
built in the time domain from the cumulative phase of the F0 contour; the time-varying vocal
tract is applied frame-wise in the STFT domain (Hann 512 / hop 128) and overlap-added back.
:mod:`xvector.corpora.synthetic.channel` then adds a random recording channel.

Example:
    >>> import numpy as np
    >>> spk = sample_speaker(np.random.default_rng(0))
    >>> clean = synthesize_utterance(spk, np.random.default_rng(1), duration_sec=1.0)
    >>> clean.shape, clean.dtype
    ((16000,), dtype('float32'))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import irfft, rfft, rfftfreq
from scipy.ndimage import gaussian_filter1d

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
