"""Reading audio with soundfile: whole files or crops, as float32 mono at a checked rate."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf


def audio_info(path: str | os.PathLike) -> tuple[int, int]:
    """``(num_samples, sample_rate)`` of an audio file, read from its header.

    Raises:
        ValueError: naming the file when it cannot be opened or decoded.
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise ValueError(f"{path}: cannot read audio header ({err})") from err
    return info.frames, info.samplerate


def load_audio(
    path: str | os.PathLike,
    sample_rate: int,
    start: int = 0,
    num_samples: int = -1,
) -> np.ndarray:
    """Read ``num_samples`` samples (all when -1) from ``start`` as float32 in [-1, 1].

    Multi-channel audio is downmixed by averaging the channels.

    Raises:
        ValueError: naming the file for decode errors, a sample rate other than
            ``sample_rate``, empty audio, or non-finite samples.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            if f.samplerate != sample_rate:
                raise ValueError(f"{path}: sample rate {f.samplerate} Hz, expected {sample_rate} Hz")
            f.seek(start)
            data = f.read(frames=num_samples, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise ValueError(f"{path}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no samples (empty audio or start {start} past the end)")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise ValueError(f"{path}: audio contains NaN or infinite samples")
    return wav
