"""Synthetic stand-ins for MUSAN and RIRS_NOISES, in their folder layouts.

Where the real corpora are not at hand (tests, the synthetic recipe), :func:`make_augment_dirs`
writes ``musan/{noise,music,speech}/synthetic/*.wav`` (coloured noise with bursts, tonal
"music" of harmonic notes, speech-like audio from :mod:`xvector.corpora.synthetic.voice`) and
``RIRS_NOISES/simulated_rirs/{small,medium,large}room/RoomNNN/RoomNNN-NNNNN.wav`` (a direct
path, sparse early reflections and an exponentially decaying noise tail with an RT60 drawn per
room), plus a Kaldi-style ``rir_list`` per room size, and last an ``augment.json`` summary.
Every file has its own RNG stream. :func:`ensure_augment_dirs` makes them on first use (the
``augment@data=synthetic`` config calls it).

Example:
    >>> import numpy as np
    >>> rir = make_rir(np.random.default_rng(0), rt60_sec=0.3, distance_m=1.0)
    >>> int(np.argmax(np.abs(rir))), len(rir)  # direct path at 1 m / 343 m/s, RT60 long
    (47, 4847)
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from xvector.atomic import atomic_output, atomic_write_text
from xvector.corpora.synthetic.voice import sample_speaker, synthesize_utterance

SPEED_OF_SOUND_M_S = 343.0
# (RT60 range in s, source distance range in m) per simulated room size.
ROOMS = {"smallroom": ((0.2, 0.5), (0.5, 3.0)), "mediumroom": ((0.4, 0.8), (1.0, 6.0)),
         "largeroom": ((0.7, 1.2), (2.0, 12.0))}
SUMMARY = "augment.json"
_KINDS = {"noise": 1, "music": 2, "speech": 3, "rir": 4}  # RNG stream tags


def colored_noise(num_samples: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """``(num_samples,)`` noise with power spectrum ``~ 1/f^beta`` (0 white, 1 pink, 2 brown), unit power."""
    f = np.fft.rfftfreq(num_samples)
    spec = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))) * np.maximum(f, f[1]) ** (-beta / 2)
    x = np.fft.irfft(spec, num_samples)
    return x / (x.std() + 1e-12)


def make_noise(rng: np.random.Generator, num_samples: int, sample_rate: int = 16000) -> np.ndarray:
    """Coloured noise, half the time gated into bursts (a door, traffic, a fan switching)."""
    x = colored_noise(num_samples, rng.uniform(0.0, 2.0), rng)
    if rng.random() < 0.5:
        gate = np.repeat(rng.random(num_samples // (sample_rate // 10) + 1) < 0.5, sample_rate // 10)
        x *= np.convolve(gate[:num_samples], np.hanning(401) / 200.5, mode="same") + 0.05
    return x


def make_music(rng: np.random.Generator, num_samples: int, sample_rate: int = 16000) -> np.ndarray:
    """Notes of a random scale, 1-3 voices of harmonic tones with decaying envelopes."""
    t_note = rng.uniform(0.15, 0.6)  # seconds per note
    n_note = int(np.ceil(num_samples / (t_note * sample_rate)))
    scale = rng.integers(36, 60) + np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])  # MIDI, major
    harmonics = rng.uniform(0.2, 0.9) ** np.arange(1, 9)  # timbre: harmonic roll-off
    out = np.zeros(num_samples)
    for _ in range(int(rng.integers(1, 4))):
        f0 = 440.0 * 2 ** ((rng.choice(scale, n_note) + 12 * rng.integers(0, 2) - 69) / 12)
        note = np.minimum(np.arange(num_samples) // int(t_note * sample_rate), n_note - 1)
        phase = 2 * np.pi * np.cumsum(f0[note]) / sample_rate
        t_in = (np.arange(num_samples) % int(t_note * sample_rate)) / sample_rate
        env = np.exp(-t_in / rng.uniform(0.1, 0.5)) * np.minimum(t_in / 0.01, 1.0)
        tone = sum(a * np.sin(k * phase) for k, a in enumerate(harmonics, 1) if k * f0.max() < sample_rate / 2)
        out += env * tone
    return out


def make_speech(rng: np.random.Generator, num_samples: int, sample_rate: int = 16000) -> np.ndarray:
    """Speech-like audio of a random synthetic speaker (babble when several are summed).

    Synthesised 0.6 s longer and trimmed by 0.3 s each side, so that the edge silences of
    :func:`~xvector.corpora.synthetic.voice.synthesize_utterance` never fill a short file."""
    edge = int(0.3 * sample_rate)
    wav = synthesize_utterance(sample_speaker(rng), rng, (num_samples + 2 * edge) / sample_rate, sample_rate)
    return wav[edge : edge + num_samples]


def make_rir(rng: np.random.Generator, rt60_sec: float, distance_m: float, sample_rate: int = 16000) -> np.ndarray:
    """A room impulse response: direct path at ``distance_m``, early reflections, a decaying tail.

    The tail is Gaussian noise under ``exp(-6.908 t / rt60_sec)`` (-60 dB at ``rt60_sec``),
    scaled to a direct-to-reverberant ratio falling with distance. The direct path is the peak.

    Returns:
        ``(delay + rt60_sec * sample_rate,)`` float32, peak 1.
    """
    delay = int(round(distance_m / SPEED_OF_SOUND_M_S * sample_rate))
    n = delay + int(rt60_sec * sample_rate)
    t = np.arange(n - delay) / sample_rate
    tail = rng.standard_normal(n - delay) * np.exp(-6.908 * t / rt60_sec)
    tail[: int(0.001 * sample_rate)] = 0.0
    for _ in range(8):  # early reflections within 20 ms of the direct path
        tail[int(rng.uniform(0.001, 0.02) * sample_rate)] += rng.choice([-1, 1]) * rng.uniform(0.2, 0.6)
    drr_db = 10.0 - 8.0 * np.log10(distance_m / 0.5) + rng.normal(0, 1.0)
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    tail = np.clip(tail, -0.9, 0.9)  # keep the direct path the largest tap
    rir = np.zeros(n)
    rir[delay] = 1.0
    rir[delay:] += tail
    return rir.astype(np.float32)


def _write_wav(path: Path, wav: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    buf = io.BytesIO()
    sf.write(buf, wav, sample_rate, subtype=subtype, format="WAV")
    with atomic_output(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def make_augment_dirs(out_dir: str | os.PathLike, *, n_noise: int = 20, n_music: int = 10, n_speech: int = 20,
                      rooms_per_size: int = 3, rirs_per_room: int = 4, min_sec: float = 3.0,
                      max_sec: float = 8.0, sample_rate: int = 16000, seed: int = 0) -> dict:
    """Write synthetic ``out_dir/musan`` and ``out_dir/RIRS_NOISES`` folders; return file counts.

    Raises:
        ValueError: on negative counts or bad durations.
    """
    if min(n_noise, n_music, n_speech, rooms_per_size, rirs_per_room) < 0 or not 0.1 <= min_sec <= max_sec:
        raise ValueError(f"need counts >= 0 and 0.1 <= min_sec <= max_sec, got min_sec={min_sec}, max_sec={max_sec}")
    out = Path(out_dir)
    counts = {}
    for kind, count, make in (("noise", n_noise, make_noise), ("music", n_music, make_music),
                              ("speech", n_speech, make_speech)):
        for i in range(count):
            rng = np.random.default_rng([seed, _KINDS[kind], i])
            x = make(rng, int(rng.uniform(min_sec, max_sec) * sample_rate), sample_rate)
            x = 0.5 * x / (np.abs(x).max() + 1e-12)
            _write_wav(out / "musan" / kind / "synthetic" / f"{kind}-synthetic-{i:04d}.wav", x, sample_rate)
        counts[kind] = count
    for size_id, (size, (rt60_range, dist_range)) in enumerate(ROOMS.items()):
        lines = []
        for r in range(rooms_per_size):
            room = f"Room{r + 1:03d}"
            rt60 = np.random.default_rng([seed, _KINDS["rir"], size_id, r]).uniform(*rt60_range)
            for k in range(rirs_per_room):
                rng = np.random.default_rng([seed, _KINDS["rir"], size_id, r, k + 1])
                rir_id = f"{room}-{k + 1:05d}"
                rel = f"simulated_rirs/{size}/{room}/{rir_id}.wav"
                _write_wav(out / "RIRS_NOISES" / rel, make_rir(rng, rt60, rng.uniform(*dist_range), sample_rate),
                           sample_rate, subtype="FLOAT")
                lines.append(f"--rir-id {size}-{rir_id} --room-id {size}-{room} RIRS_NOISES/{rel}\n")
        with atomic_output(out / "RIRS_NOISES" / "simulated_rirs" / size / "rir_list") as tmp:
            tmp.write_text("".join(lines))
        counts[size] = len(lines)
    atomic_write_text(out / SUMMARY, json.dumps({"counts": counts, "seed": seed, "sample_rate": sample_rate}) + "\n")
    return counts


def ensure_augment_dirs(out_dir: str | os.PathLike, subdir: str = "", sample_rate: int = 16000) -> Path:
    """``out_dir / subdir``, after writing :func:`make_augment_dirs` (defaults) when
    ``out_dir/augment.json`` is missing. Concurrent callers write identical files atomically."""
    out = Path(out_dir)
    if not (out / SUMMARY).is_file():
        make_augment_dirs(out, sample_rate=sample_rate)
    return out / subdir
