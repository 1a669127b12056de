"""Embedding audio of any rate, channel count and length with a trained :class:`Embedder`.

Three things training never meets and extraction must handle:

* **Rate and channels.** :func:`read_audio` reads any soundfile format, downmixes by averaging
  channels and resamples to the model's rate with ``torchaudio.functional.resample``. It refuses,
  naming the file, what would embed silently wrong: a missing file or a folder, a wav whose data
  chunk is cut short (libsndfile reads what is there), NaN/inf samples and all-zero audio (no
  speaker in it: its embedding is the net's bias). Arrays go through :func:`pcm_to_float`
  (integer PCM scaled by its dtype, as soundfile does) and :func:`to_mono`.
* **Too short.** An x-vector's unpadded convolutions need ``net.min_frames`` frames (15 for the
  Snyder TDNN, 0.165 s at 16 kHz); :func:`min_samples` converts that to samples and
  :func:`embed_batch` raises a ``ValueError`` naming the utterance instead of a shape error.
* **Too long.** :func:`embed_long` embeds a recording in chunks of ``chunk_sec`` with bounded
  memory, and gives the *same* embedding as whole-utterance pooling (see below).

Chunked pooling is exact, not an average of chunk embeddings:

1. Features are computed chunk by chunk *without* CMN. Kaldi framing with ``snip_edges=True``
   makes every frame depend on its own samples only, so chunks cut on frame boundaries give the
   whole-utterance frames exactly. The CMN the model was trained with (utterance or sliding, see
   :mod:`xvector.features.normalize`) is then applied once over the whole ``(T, F)`` matrix, so
   the normalised features equal the unchunked ones (60 MB per hour at 24 mel bins).
2. The frame layers run over windows of ``chunk_frames + context`` input frames that overlap
   by the TDNN's receptive field (``net.context``, 14 frames), so every frame-level output is
   the whole-utterance one: no edge effect at all, at a cost of 14 recomputed frames per chunk.
3. Frame-level sums and sums of squares of the last frame layer (taken about the first chunk's
   mean, so ``E[x²] - E[x]²`` does not cancel) are accumulated across chunks in float64 and
   turned into mean and standard deviation, then the embedding layer runs once. The only
   difference from :class:`~xvector.nets.pooling.StatsPooling` is float rounding (one-pass
   shifted variance versus two-pass): |Δ| <= 1e-4 on a 30 s input (tested, typically ~1e-6).

Nets without ``frame_layers`` / ``StatsPooling`` / ``embedding`` (attentive pooling, say) fall
back to the length-weighted mean of chunk embeddings, which is *not* exact; a log line says so.

Example:
    >>> import torch
    >>> from xvector.inference.embedder import Embedder
    >>> from xvector.features.fbank import Fbank
    >>> from xvector.nets.tdnn import XVector
    >>> _ = torch.manual_seed(0)
    >>> net = XVector(in_channels=24, channels=[32, 32, 32, 32, 64], embed_dim=16, segment_dims=[16])
    >>> embedder = Embedder(Fbank(num_mel_bins=24), net).eval()
    >>> wav = torch.randn(16000 * 3)
    >>> whole = embed_batch(embedder, wav[None], torch.tensor([len(wav)]))[0]
    >>> chunked = embed_long(embedder, wav, chunk_sec=0.5)  # 6 chunks
    >>> torch.allclose(whole, chunked, atol=1e-4)
    True
    >>> min_samples(embedder)  # 15 frames of 25 ms every 10 ms at 16 kHz
    2640
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from torch import nn

from xvector.data.audio import load_audio, wav_truncation
from xvector.features.fbank import DITHER_PERIOD, KaldiFrontEnd
from xvector.features.normalize import CMN
from xvector.nets.pooling import StatsPooling

log = logging.getLogger(__name__)

#: Default chunk for long recordings: 100 s = 10000 frames, Kaldi's ``--chunk-size`` for
#: x-vector extraction. Since chunked pooling is exact (module docstring) the chunk sets only
#: memory and speed: the widest frame layer (1500 channels) holds 1500 x 10000 x 4 B = 60 MB per
#: activation, the 14 frames of overlap cost 0.14 %, and utterances up to 100 s (nearly all of
#: VoxCeleb) take the ordinary batched path.
DEFAULT_CHUNK_SEC = 100.0


def _frontend(features: nn.Module | None) -> KaldiFrontEnd | None:
    if features is None:
        return None
    return next((m for m in features.modules() if isinstance(m, KaldiFrontEnd)), None)


def sample_rate_of(embedder: nn.Module) -> int:
    """The sample rate (Hz) the embedder's front-end was built for (16000 when it has none)."""
    features = getattr(embedder, "features", None)
    frontend = _frontend(features)
    if frontend is not None:
        return frontend.sample_rate
    return int(getattr(features, "sample_rate", 16000))  # e.g. SpeechBrainFbank


def min_samples(embedder: nn.Module) -> int:
    """Fewest samples that give the net its ``min_frames`` (1 frame when it states none)."""
    frames = int(getattr(getattr(embedder, "net", None), "min_frames", 1))
    features = getattr(embedder, "features", None)
    if hasattr(features, "min_samples"):  # a front-end with its own framing (SpeechBrainFbank)
        return int(features.min_samples(frames))
    frontend = _frontend(features)
    if frontend is None:
        return frames
    return (frames - 1) * frontend.frame_shift + frontend.frame_length


#: Full scale of integer PCM: ``int16`` from ``sf.read(dtype="int16")`` or ``scipy.io.wavfile``
#: is divided by 2**15, as soundfile's own float reading does; 8-bit wav is unsigned, centred at 128.
PCM_FULL_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
#: Float samples peaking above this are almost surely integer PCM cast to float without scaling.
FLOAT_PEAK_WARN = 2.0


def pcm_to_float(wav: np.ndarray | torch.Tensor, name: str = "input") -> torch.Tensor:
    """Samples of any layout as float32 in [-1, 1]: integer PCM divided by its full scale.

    ``int8``/``int16``/``int32`` are divided by 2**7/2**15/2**31 and ``uint8`` (8-bit wav) is
    ``(x - 128) / 128``; float arrays are taken as they are (a warning names ``name`` when their
    peak exceeds :data:`FLOAT_PEAK_WARN`: integer samples converted without scaling).

    Example:
        >>> pcm_to_float(np.array([-32768, 0, 16384], dtype=np.int16)).tolist()
        [-1.0, 0.0, 0.5]

    Raises:
        ValueError: naming ``name`` for other dtypes (bool, int64, complex): their scale is unknown.
    """
    if isinstance(wav, torch.Tensor):  # bfloat16/float16 have no numpy twin: floats go to float32 first
        wav = wav.detach().cpu()
        arr = (wav.float() if wav.is_floating_point() else wav).numpy()
    else:
        arr = np.asarray(wav)
    if arr.dtype in PCM_FULL_SCALE:
        return torch.from_numpy(arr.astype(np.float32) / np.float32(PCM_FULL_SCALE[arr.dtype]))
    if arr.dtype == np.uint8:
        return torch.from_numpy((arr.astype(np.float32) - 128.0) / 128.0)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"{name}: samples of dtype {arr.dtype}; pass float samples in [-1, 1] or integer PCM (int16, int32, uint8)"
        )
    out = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    peak = float(out.abs().max()) if out.numel() and bool(torch.isfinite(out).all()) else 0.0
    if peak > FLOAT_PEAK_WARN:
        warnings.warn(f"{name}: float samples peak at {peak:g}, far outside [-1, 1]: integer PCM converted without "
                      "scaling? Divide by 32768 (16-bit) or pass the integer array itself", UserWarning, stacklevel=3)
    return out


def to_mono(wav: np.ndarray | torch.Tensor, channels_axis: int | None = 0, name: str = "input") -> torch.Tensor:
    """``(S,)`` or 2-D multi-channel audio → float32 mono ``(S,)`` (channel mean).

    Args:
        wav: float samples (see :func:`pcm_to_float` for integer PCM).
        channels_axis: for 2-D input, the axis of channels: 0 for ``(C, S)`` (torchaudio's
            layout), 1 for ``(S, C)`` (soundfile's ``sf.read``).
        name: what error messages call the input.
    """
    wav = torch.as_tensor(np.asarray(wav) if not isinstance(wav, torch.Tensor) else wav).float()
    if wav.ndim == 2:
        wav = wav.mean(channels_axis)
    if wav.ndim != 1:
        raise ValueError(f"{name}: expected a waveform (S,) or (channels, S), got shape {tuple(wav.shape)}")
    return wav


def resample(wav: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``(..., S)`` with torchaudio's windowed-sinc filter (identity at equal rates)."""
    if orig_rate == new_rate:
        return wav
    return AF.resample(wav, int(orig_rate), int(new_rate))


def check_audio_file(path: str | os.PathLike) -> None:
    """Refuse, naming ``path``, a missing file, a folder, or a wav whose data chunk is cut short.

    libsndfile's own messages for the first two are "System error." and "Format not
    recognised.", and it reads a truncated wav without a word, so these are checked first.

    Raises:
        ValueError: naming ``path`` and what is wrong.
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{path}: is a folder, not an audio file")
    if not p.exists():
        raise ValueError(f"{path}: audio file does not exist")
    try:
        cut = wav_truncation(p)
    except OSError as err:
        raise ValueError(f"{path}: cannot read audio file ({err.strerror or err})") from err
    if cut is not None:
        declared, present = cut
        raise ValueError(
            f"{path}: truncated wav: its header declares {declared} data bytes, the file holds {present} "
            "(an interrupted copy?)"
        )


def read_audio(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """Any soundfile-readable file → float32 mono ``(S,)`` at ``sample_rate`` (channels averaged).

    The checks and the resampler are :func:`xvector.data.audio.load_audio`'s, as in training,
    plus :func:`check_audio_file` and a refusal of all-zero audio.

    Raises:
        ValueError: naming the file when it is missing, a folder, a truncated wav, cannot be
            decoded, is empty, holds NaN/inf or only zeros.
    """
    check_audio_file(path)
    return torch.from_numpy(load_audio(path, sample_rate, resample=True, reject_silent=True))


def check_lengths(embedder: nn.Module, wav_lens: torch.Tensor, names: Sequence[str] | None = None) -> None:
    """Raise a ``ValueError`` naming the first utterance shorter than :func:`min_samples`."""
    need = min_samples(embedder)
    short = (wav_lens < need).nonzero()
    if len(short):
        i = int(short[0])
        name = names[i] if names is not None else f"input {i}"
        rate = sample_rate_of(embedder)
        raise ValueError(
            f"{name}: {int(wav_lens[i])} samples ({int(wav_lens[i]) / rate:.3f} s) is shorter than the "
            f"{need} samples ({need / rate:.3f} s) the model needs"
        )


@torch.inference_mode()
def embed_batch(
    embedder: nn.Module, wav: torch.Tensor, wav_lens: torch.Tensor, names: Sequence[str] | None = None
) -> torch.Tensor:
    """Embeddings ``(B, D)`` of a padded batch ``wav (B, S)`` with ``wav_lens (B,)`` samples.

    Raises:
        ValueError: naming the utterance (``names[i]``) that is too short for the net.
    """
    check_lengths(embedder, wav_lens, names)
    return embedder(wav, wav_lens)


def chunked_features(features: nn.Module, wav: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    """Normalised features ``(T, F)`` of one long ``wav (S,)``, computed ``chunk_frames`` at a time.

    Equal to ``features(wav[None])[0][0]``: Kaldi framing is frame-local, so the raw features
    (and log-energies) of the chunks concatenate to the whole recording's, and the VAD and CMN
    (``features.finish``) then run once over the whole matrix. Front-ends without a Kaldi framer
    or a ``raw`` / ``finish`` split run in one piece.
    """
    frontend = _frontend(features)
    length = torch.tensor([wav.shape[-1]], device=wav.device)
    if frontend is None or not (hasattr(features, "raw") and isinstance(getattr(features, "cmn", None), CMN)):
        return features(wav[None], length)[0][0]
    total = int(frontend.frame_lens(length))
    # Chunks start at multiples of the eval dither's period, so each frame meets its own row.
    chunk_frames = -(-chunk_frames // DITHER_PERIOD) * DITHER_PERIOD
    feats = energy = None
    for start in range(0, total, chunk_frames):
        n = min(chunk_frames, total - start)
        first = start * frontend.frame_shift
        last = (start + n - 1) * frontend.frame_shift + frontend.frame_length
        piece, piece_energy, _ = features.raw(wav[None, first:last], torch.tensor([last - first], device=wav.device))
        if feats is None:
            feats = piece.new_empty(total, piece.shape[2])  # (T, F), filled in place
            energy = piece_energy.new_empty(total)  # (T,)
        feats[start : start + n], energy[start : start + n] = piece[0], piece_energy[0]
    lens = torch.tensor([total], device=wav.device)
    if getattr(features, "vad", None) is None and features.cmn.mode == "utterance":
        # utterance_cmn of one unpadded utterance, in place: its masks would cost 3 more copies.
        return feats.sub_(feats.mean(0, dtype=torch.float64).to(feats.dtype))
    out, kept = features.finish(feats[None], energy[None], lens)
    return out[0, : int(kept[0])]


def _exact_pooling(net: nn.Module) -> bool:
    return all(hasattr(net, a) for a in ("frame_layers", "context", "embedding")) and isinstance(
        getattr(net, "pooling", None), StatsPooling
    )


@torch.inference_mode()
def embed_long(
    embedder: nn.Module, wav: torch.Tensor, chunk_sec: float = DEFAULT_CHUNK_SEC, name: str = "input"
) -> torch.Tensor:
    """Embedding ``(D,)`` of one recording ``wav (S,)`` of any length, in chunks of ``chunk_sec``.

    Peak memory grows with ``chunk_sec`` and with the feature matrix (T x F floats), not with
    the activations of the whole recording. See the module docstring for why the result equals
    whole-utterance pooling.

    Raises:
        ValueError: naming ``name`` when the recording is too short for the net.
    """
    check_lengths(embedder, torch.tensor([wav.shape[-1]]), [name])
    net = getattr(embedder, "net", None)
    if net is None or not hasattr(embedder, "features"):  # an opaque embedder: one piece
        return embedder(wav[None].float(), torch.tensor([wav.shape[-1]], device=wav.device))[0]
    rate = sample_rate_of(embedder)
    frontend = _frontend(embedder.features)
    shift = frontend.frame_shift if frontend is not None else int(rate * 0.01)
    chunk_frames = max(1, int(round(chunk_sec * rate / shift)))
    feats = chunked_features(embedder.features, wav.float(), chunk_frames)  # (T, F)
    if not _exact_pooling(net):
        return _mean_of_chunks(net, feats, chunk_frames)
    context = int(net.context)
    n_out = feats.shape[0] - context
    shift = total = total_sq = None
    for start in range(0, n_out, chunk_frames):
        x = feats[start : start + chunk_frames + context].T[None]  # (1, F, n + context)
        h = net.frame_layers(x)[0]  # (C, n)
        if shift is None:  # sums about the first chunk's mean: no cancellation in E[x²] - E[x]²
            shift = h.mean(-1, keepdim=True)
        h = h - shift
        s, sq = h.sum(-1).double(), h.pow(2).sum(-1).double()
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
    mean = total / n_out  # of h - shift
    var = total_sq / n_out - mean.pow(2)
    stats = net.pooling.from_moments((mean + shift[:, 0].double())[None], var[None]).to(feats.dtype)  # (1, 2C)
    return net.embedding(stats)[0]


def _mean_of_chunks(net: nn.Module, feats: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    log.info("net %s has no stats pooling to accumulate: averaging chunk embeddings", type(net).__name__)
    min_frames = int(getattr(net, "min_frames", 1))
    embs, weights = [], []
    for start in range(0, feats.shape[0], chunk_frames):
        x = feats[start : start + chunk_frames]
        if x.shape[0] < min_frames:  # a short tail joins nothing; its frames are few
            continue
        embs.append(net(x.T[None], torch.tensor([x.shape[0]], device=x.device))[0])
        weights.append(x.shape[0])
    w = torch.tensor(weights, dtype=feats.dtype, device=feats.device)
    return (torch.stack(embs) * w[:, None]).sum(0) / w.sum()
