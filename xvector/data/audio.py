"""Reading audio with soundfile: whole files or crops, as float32 mono at a checked rate.

The defaults are strict where a silent mistake would cost a training run: a sample rate other
than the expected one is an error (``resample=True`` converts instead), NaN or infinite
samples are an error. Multi-channel audio is averaged to mono by default
(``multichannel="error"`` refuses it, ``"first"`` keeps channel 0). All-zero audio is returned
as is by default (a crop of leading silence is legitimate); ``reject_silent=True`` refuses a
read whose samples are all zero, which is what the data-directory validator does for whole
files.

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.wav"
    >>> sf.write(path, np.full((800, 2), 0.25, dtype=np.float32), 8000)
    >>> load_audio(path, 16000, resample=True).shape      # 0.1 s, downmixed, resampled
    (1600,)
    >>> load_audio(path, 16000)
    Traceback (most recent call last):
    ...
    ValueError: ...a.wav: sample rate 8000 Hz, expected 16000 Hz (pass resample=True to convert)
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

import numpy as np
import soundfile as sf

MULTICHANNEL_MODES = ("mean", "first", "error")
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, OSError, TypeError)

# A file name, or an open binary file (e.g. ``io.BytesIO`` of a shard member's bytes).
AudioSource = str | os.PathLike | BinaryIO


def _open_arg(source: AudioSource):
    return str(source) if isinstance(source, (str, os.PathLike)) else source


def audio_info(path: AudioSource, *, name: str | None = None) -> tuple[int, int]:
    """``(num_samples, sample_rate)`` of an audio file, read from its header.

    ``name`` is what error messages call the source (default: ``path``).

    Raises:
        ValueError: naming the file when it cannot be opened or decoded.
    """
    try:
        info = sf.info(_open_arg(path))
    except _DECODE_ERRORS as err:
        raise ValueError(f"{name or path}: cannot read audio header ({err})") from err
    return info.frames, info.samplerate


def wav_truncation(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(declared_bytes, present_bytes)`` of a RIFF/WAVE ``data`` chunk cut short, else None.

    libsndfile silently reads what is there when a wav file is truncated, so the length in the
    header and the length decoded disagree only here. Non-wav files and intact files give None.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(f.fileno()).st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                present = size - f.tell()
                # 0 and 0xFFFFFFFF mark streamed files of unknown length: not truncation.
                if 0 < length < 0xFFFFFFFF and present < length:
                    return length, present
                return None
            f.seek(length + (length & 1), 1)  # chunks are padded to an even size


def resample_audio(wav: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited sinc resampling of a 1-D signal (``torchaudio.functional.resample``, the one
    :mod:`xvector.inference.embed` uses, so training and extraction resample alike).

    Shapes: ``(S,)`` → ``(ceil(S * new_rate / orig_rate),)``.
    """
    if orig_rate == new_rate:
        return wav
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), int(orig_rate), int(new_rate))
    return out.numpy()


def read_audio(
    path: AudioSource,
    sample_rate: int,
    start: int = 0,
    num_samples: int = -1,
    *,
    resample: bool = False,
    multichannel: str = "mean",
    reject_silent: bool = False,
    name: str | None = None,
    int16: bool = False,
) -> tuple[np.ndarray, int]:
    """:func:`load_audio` without its last step: ``(samples (S,) at the file's own rate, that rate)``.

    Every check of :func:`load_audio` is made (with ``resample=False`` a rate other than
    ``sample_rate`` is an error); callers that cut windows first and resample them afterwards
    (training crops) read through this. With ``int16``, a 16-bit PCM file whose channels need no
    averaging comes back as ``int16`` samples, exactly the float32 ones times 32768 (half the
    bytes to collate and copy to a GPU); any other file comes back as float32.
    """
    name = name or str(path)
    if multichannel not in MULTICHANNEL_MODES:
        raise ValueError(f"multichannel must be one of {MULTICHANNEL_MODES}, got {multichannel!r}")
    try:
        with sf.SoundFile(_open_arg(path)) as f:
            rate, channels = f.samplerate, f.channels
            if rate != sample_rate and not resample:
                raise ValueError(
                    f"{name}: sample rate {rate} Hz, expected {sample_rate} Hz (pass resample=True to convert)"
                )
            if channels > 1 and multichannel == "error":
                raise ValueError(f"{name}: {channels} channels, expected mono (or multichannel='mean')")
            pcm16 = int16 and f.subtype == "PCM_16" and (channels == 1 or multichannel == "first")
            f.seek(start)
            data = f.read(frames=num_samples, dtype="int16" if pcm16 else "float32", always_2d=True)
    except _DECODE_ERRORS as err:
        raise ValueError(f"{name}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise ValueError(f"{name}: no samples (empty audio or start {start} past the end)")
    if data.shape[1] == 1 or multichannel == "first":
        wav = data[:, 0]
    else:
        wav = data.mean(axis=1)
    if wav.dtype != np.int16 and not np.isfinite(wav).all():
        raise ValueError(f"{name}: audio contains NaN or infinite samples")
    if reject_silent and not wav.any():
        raise ValueError(f"{name}: all {len(wav)} samples are zero (silent audio)")
    return wav, rate


def load_audio(
    path: AudioSource,
    sample_rate: int,
    start: int = 0,
    num_samples: int = -1,
    *,
    resample: bool = False,
    multichannel: str = "mean",
    reject_silent: bool = False,
    name: str | None = None,
) -> np.ndarray:
    """Read ``num_samples`` samples (all when -1) from ``start`` as float32 in [-1, 1].

    Args:
        path: audio file (anything libsndfile decodes: wav, flac, ogg, ...), or an open binary
            file such as ``io.BytesIO(data)`` (how shard members are decoded).
        sample_rate: the rate the caller expects, in Hz.
        start: first sample to read, at the file's own rate.
        num_samples: samples to read at the file's own rate, or -1 for the rest of the file.
        resample: convert a file at another rate to ``sample_rate`` instead of raising.
        multichannel: ``"mean"`` averages the channels (the default), ``"first"`` keeps the
            first channel, ``"error"`` raises for more than one channel.
        reject_silent: raise when every sample read is zero.
        name: what error messages call the source (default: ``path``).

    Returns:
        ``(S,)`` float32 samples at ``sample_rate``.

    Raises:
        ValueError: naming the file for decode errors (empty, truncated or non-audio files), a
            sample rate other than ``sample_rate`` without ``resample``, refused multi-channel
            audio, no samples, non-finite samples or, with ``reject_silent``, all-zero audio.
    """
    wav, rate = read_audio(path, sample_rate, start, num_samples, resample=resample, multichannel=multichannel,
                           reject_silent=reject_silent, name=name)
    return np.ascontiguousarray(resample_audio(wav, rate, sample_rate))
