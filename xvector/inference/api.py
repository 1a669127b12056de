"""The Python API: ``xvector.load_model(path)`` → embed, score and verify in three calls.

Example:
    >>> import tempfile, numpy as np
    >>> from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir
    >>> d = tempfile.mkdtemp()
    >>> ckpt = init_checkpoint(d + "/tiny.ckpt", tiny_config())      # an untrained tiny model
    >>> _ = write_model_dir(d + "/model", ckpt, calibration={"scale": 10.0, "offset": -5.0},
    ...                     threshold={"criterion": "eer", "threshold": 0.0, "on": "llr"})
    >>> model = load_model(d + "/model")
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.standard_normal((2, 16000)).astype(np.float32) * 0.1  # 1 s at 16 kHz each
    >>> model.embed(a).shape                                   # one waveform → (D,)
    (16,)
    >>> model.embed([a, b[:8000]]).shape                       # a list → (B, D), padded
    (2, 16)
    >>> model.embed(a[::2], sample_rate=8000).shape            # resampled to 16 kHz first
    (16,)
    >>> pcm = (a * 32767).astype(np.int16)                     # int16, as sf.read(dtype="int16")
    >>> bool(np.allclose(model.embed(pcm), model.embed(pcm / 32768.0), atol=1e-6))  # scaled by its dtype
    True
    >>> model.embed(np.stack([a, b], axis=1)).shape            # (S, C) from sf.read: one recording
    (16,)
    >>> model.embed(np.stack([a, b]), layout="batch").shape    # (2, S): a batch, or one stereo
    (2, 16)
    >>> model.embed(np.stack([a, b]), layout="channels_first").shape  # recording: say which
    (16,)
    >>> round(model.score(model.embed(a), model.embed(a)), 4)  # cosine
    1.0
    >>> result = model.verify(a, a)        # score → LLR = 10 * score - 5 → LLR >= 0 accepts
    >>> result.decision, round(result.llr, 3)
    (True, 5.0)
    >>> store = model.enroll({"alice": [a, a[:8000]], "bob": b})     # a speaker store (cosine)
    >>> result = model.identify(a, store, top_k=2)                 # 1:N: candidates and decision
    >>> result.candidates[0][0], result.speaker
    ('alice', 'alice')
    >>> model.embed(a[:1000])
    Traceback (most recent call last):
    ...
    ValueError: input 0: 1000 samples (0.062 s) is shorter than the 2640 samples (0.165 s) the model needs

Array layouts :meth:`SpeakerModel.embed` accepts (``S`` samples, ``C`` channels, ``B`` inputs):

=====================  ==================================================================
``(S,)``               one mono waveform
``(S, C)``             one recording, channels last (``sf.read``, ``scipy.io.wavfile.read``):
                       taken so when ``S > C``; ``(S, 1)`` too
``(1, S)``             one mono recording, channels first (``torchaudio.load``)
``(C, S)``, ``(B, S)`` ambiguous when ``1 < C < S``: pass ``layout="channels_first"`` (one
                       recording, channels averaged) or ``layout="batch"`` (B waveforms;
                       implied by ``lengths``)
list of any of these   a batch; each 2-D item is one recording, channels on its shorter axis
=====================  ==================================================================

Integer samples are PCM and scaled by their dtype (``int16`` / 2**15, ``int32`` / 2**31,
``uint8`` centred at 128); floats are taken as they are, in [-1, 1].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch

from xvector.inference import enrollment
from xvector.inference.embed import (
    DEFAULT_CHUNK_SEC,
    embed_batch,
    embed_long,
    pcm_to_float,
    read_audio,
    resample,
    to_mono,
)
from xvector.inference.embedder import for_inference
from xvector.inference.model_dir import ModelDir, load_model_dir
from xvector.scoring.cosine import cosine_scores

#: One input: a file path, or a waveform ``(S,)`` / ``(S, C)`` / ``(C, S)`` array or tensor.
Audio = Union[str, os.PathLike, np.ndarray, torch.Tensor]

#: ``layout=`` values of :meth:`SpeakerModel.embed` for 2-D arrays.
LAYOUTS = ("batch", "channels_first", "channels_last")


@dataclass(frozen=True)
class Verification:
    """Outcome of :meth:`SpeakerModel.verify`.

    Attributes:
        score: cosine score (after mean subtraction when the model stores a mean).
        llr: calibrated log-likelihood ratio, or None without a calibration.
        decision: True = same speaker; None when the model has no threshold.
        threshold: the threshold applied, or None.
        on: what the threshold applies to: ``"score"`` or ``"llr"`` (None without one).
    """

    score: float
    llr: float | None = None
    decision: bool | None = None
    threshold: float | None = None
    on: str | None = None

    def __str__(self) -> str:
        parts = [f"score {self.score:.4f}"]
        if self.llr is not None:
            parts.append(f"llr {self.llr:.3f}")
        if self.decision is None:
            parts.append("decision: none (the model has no threshold)")
        else:
            verdict = "same speaker" if self.decision else "different speakers"
            parts.append(f"decision: {verdict} ({self.on} {'>=' if self.decision else '<'} {self.threshold:.4f})")
        return ", ".join(parts)


class SpeakerModel:
    """A trained embedder with its scoring files (mean, calibration, threshold).

    Args:
        model: a loaded :class:`~xvector.inference.model_dir.ModelDir`.
        chunk_sec: recordings longer than this are embedded in chunks with exact statistics
            pooling (:func:`xvector.inference.embed.embed_long`).
        batch_size: waveforms per forward pass when embedding a list.
        precision: ``"32"`` (float32, BatchNorms folded: the trained net up to rounding) or
            ``"int8"`` (int8 frame layers, TDNN x-vectors only; see :mod:`xvector.nets.fuse`).
    """

    def __init__(
        self, model: ModelDir, chunk_sec: float = DEFAULT_CHUNK_SEC, batch_size: int = 16, precision: str = "32"
    ) -> None:
        self.model = model
        self.embedder = for_inference(model.embedder, precision)
        self.mean = model.mean
        self.calibration = model.calibration
        self.threshold = model.threshold
        self.chunk_sec = chunk_sec
        self.batch_size = batch_size

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model runs at; other rates are resampled to it."""
        return self.model.sample_rate

    @property
    def embed_dim(self) -> int:
        return self.model.embed_dim

    def _array(self, x: np.ndarray | torch.Tensor, name: str, layout: str | None) -> torch.Tensor:
        """One recording (array or tensor) → float32 mono ``(S,)`` at its own rate."""
        wav = pcm_to_float(x, name)
        if wav.ndim == 2:
            if layout is None:
                if wav.shape[0] == wav.shape[1]:
                    raise ValueError(f"{name}: square array {tuple(wav.shape)}: pass layout='channels_first' or "
                                     "'channels_last'")
                layout = "channels_first" if wav.shape[0] < wav.shape[1] else "channels_last"
            wav = to_mono(wav, 0 if layout == "channels_first" else 1, name)
        else:
            wav = to_mono(wav, name=name)
        if not torch.isfinite(wav).all():
            raise ValueError(f"{name}: waveform contains NaN or infinite samples")
        if len(wav) and not wav.any():
            raise ValueError(f"{name}: all {len(wav)} samples are zero (silent audio): no speaker to embed")
        return wav

    def _waveform(self, name: str, x: Audio, sample_rate: int | None, layout: str | None) -> torch.Tensor:
        if isinstance(x, (str, os.PathLike)):
            return read_audio(x, self.sample_rate)
        return resample(self._array(x, name, layout), sample_rate or self.sample_rate, self.sample_rate)

    def _items(
        self, x: Audio | Sequence[Audio], lengths: Sequence[int] | None, layout: str | None
    ) -> tuple[list[tuple[str, Audio]], bool, str | None]:
        """``([(name, one recording)], single, layout of 2-D items)`` for the inputs of :meth:`embed`."""
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r}: expected one of {LAYOUTS}")
        if isinstance(x, (str, os.PathLike)):
            return [(str(x), x)], True, None
        if isinstance(x, (list, tuple)):
            if layout == "batch" or lengths is not None:
                raise ValueError("a list is already a batch: lengths= and layout='batch' are for one (B, S) array")
            return [(str(it) if isinstance(it, (str, os.PathLike)) else f"input {i}", it) for i, it in enumerate(x)], \
                False, layout
        ndim = x.ndim if isinstance(x, torch.Tensor) else np.ndim(x)
        if lengths is not None and layout not in (None, "batch"):
            raise ValueError(f"lengths= is for a (B, S) batch, not for layout={layout!r}")
        batch = ndim == 2 and (layout == "batch" or lengths is not None)
        if ndim == 2 and not batch and layout is None:
            rows, cols = (x.shape if isinstance(x, torch.Tensor) else np.shape(x))[:2]
            if 1 < rows < cols:  # (C, S) of one recording or (B, S) of several: only the caller knows
                raise ValueError(
                    f"input of shape ({rows}, {cols}) is ambiguous: pass layout='channels_first' for one recording "
                    f"of {rows} channels, or layout='batch' (or lengths=) for {rows} waveforms"
                )
        if not batch:
            if ndim == 1 and layout == "batch":
                raise ValueError("layout='batch' needs a 2-D (B, S) array, got a 1-D waveform")
            if ndim not in (1, 2):
                raise ValueError(f"expected a waveform (S,), (S, C) or (C, S), a list, or a batch (B, S); got {ndim}-D")
            return [("input 0", x)], True, layout
        rows = x if isinstance(x, torch.Tensor) else np.asarray(x)
        lens = list(lengths) if lengths is not None else [rows.shape[1]] * rows.shape[0]
        if len(lens) != rows.shape[0] or any(not 0 < int(n) <= rows.shape[1] for n in lens):
            raise ValueError(f"lengths {lens}: need {rows.shape[0]} lengths in 1..{rows.shape[1]} for a batch of "
                             f"shape {tuple(rows.shape)}")
        return [(f"input {i}", rows[i, : int(n)]) for i, n in enumerate(lens)], False, None

    def embed(
        self,
        x: Audio | Sequence[Audio],
        sample_rate: int | None = None,
        lengths: Sequence[int] | None = None,
        layout: str | None = None,
    ) -> np.ndarray:
        """Embed one input or a batch.

        Args:
            x: a path, a waveform ``(S,)``, one multi-channel recording ``(S, C)`` (soundfile's
                layout) or ``(C, S)`` (torchaudio's; downmixed), a list of those, or a padded
                batch ``(B, S)``; the module docstring's table says how 2-D arrays are read.
                Integer arrays are PCM, scaled by their dtype.
            sample_rate: rate of array inputs in Hz (default: the model's); files carry theirs.
            lengths: valid samples per row of a ``(B, S)`` batch (default: all).
            layout: for 2-D arrays: ``"batch"`` (rows are waveforms), ``"channels_first"``
                ``(C, S)`` or ``"channels_last"`` ``(S, C)``; needed where the shape is ambiguous.

        Returns:
            ``(D,)`` float32 for one input, ``(B, D)`` for a list or a batch (raw embeddings;
            :meth:`score` subtracts the stored mean).

        Raises:
            ValueError: naming the file or input for unreadable, truncated, silent or
                non-finite audio, inputs shorter than the net's ``min_frames``, and
                ambiguous or unknown layouts.
        """
        items, single, item_layout = self._items(x, lengths, layout)
        names = [name for name, _ in items]
        wavs = [self._waveform(name, item, sample_rate, item_layout) for name, item in items]
        out = self._embed_waveforms(wavs, names)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise ValueError(f"{names[int(np.argmax(bad))]}: the net gave a non-finite embedding (are its weights finite?)")
        return out[0] if single else out

    @torch.inference_mode()
    def _embed_waveforms(self, wavs: list[torch.Tensor], names: list[str]) -> np.ndarray:
        out = np.zeros((len(wavs), self.embed_dim), dtype=np.float32)
        long_samples = self.chunk_sec * self.sample_rate
        short = [i for i, w in enumerate(wavs) if len(w) <= long_samples]
        for i in set(range(len(wavs))) - set(short):
            out[i] = embed_long(self.embedder, wavs[i], self.chunk_sec, names[i]).numpy()
        short.sort(key=lambda i: -len(wavs[i]))  # length-sorted batches pad little
        for start in range(0, len(short), self.batch_size):
            idx = short[start : start + self.batch_size]
            lens = torch.tensor([len(wavs[i]) for i in idx])
            batch = torch.zeros(len(idx), int(lens.max()))
            for row, i in enumerate(idx):
                batch[row, : len(wavs[i])] = wavs[i]
            out[idx] = embed_batch(self.embedder, batch, lens, [names[i] for i in idx]).float().numpy()
        return out

    def score(self, a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
        """Cosine score of embeddings ``(D,)`` vs ``(D,)`` (a float) or row-wise ``(N, D)`` (an array).

        The stored training mean, if any, is subtracted first (as ``xvector-score
        mean_embeddings=...``).

        Raises:
            ValueError: for shapes that differ from ``(..., D)`` or each other, NaN/inf values,
                or an embedding of zero length after the mean (its cosine is undefined; scoring
                it 0.0 would pass for a real score).
        """
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        one = a.ndim == 1
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        if a.shape[-1] != self.embed_dim or b.shape != a.shape:
            raise ValueError(f"need two embeddings of one shape (..., {self.embed_dim}), got {a.shape} and {b.shape}")
        for side, x in (("first", a), ("second", b)):
            bad = ~np.isfinite(x).all(axis=1)
            if bad.any():
                raise ValueError(f"score: the {side} embedding (row {int(np.argmax(bad))}) holds NaN or infinite values")
        if self.mean is not None:
            a, b = a - self.mean, b - self.mean
        for side, x in (("first", a), ("second", b)):
            zero = ~(np.abs(x) > 0).any(axis=1)
            if zero.any():
                raise ValueError(f"score: the {side} embedding (row {int(np.argmax(zero))}) is zero"
                                 f"{' after subtracting the mean' if self.mean is not None else ''}: cosine is undefined")
        scores = cosine_scores(a, b)
        return float(scores[0]) if one else scores

    def llr(self, score: float) -> float | None:
        """Calibrated LLR ``scale * score + offset``, or None without a calibration."""
        if self.calibration is None:
            return None
        return self.calibration["scale"] * float(score) + self.calibration["offset"]

    def verify(
        self, a: Audio, b: Audio, sample_rate: int | None = None, threshold: float | None = None
    ) -> Verification:
        """Are ``a`` and ``b`` (paths or waveforms) the same speaker?

        Args:
            a, b: two inputs as for :meth:`embed`.
            sample_rate: rate of array inputs in Hz.
            threshold: override the stored threshold (on the LLR when the model is
                calibrated, else on the score).

        Returns:
            A :class:`Verification`. The decision uses ``threshold.json`` when the model has
            one; else, for a calibrated model, LLR >= 0 (the Bayes decision at a target prior
            of 0.5 with equal costs); else there is no decision.

        Raises:
            ValueError: as :meth:`embed` (naming the file) and for a non-finite ``threshold``.
        """
        if threshold is not None and not np.isfinite(threshold):
            raise ValueError(f"threshold={threshold}: must be a finite number")
        emb = self.embed([a, b], sample_rate=sample_rate)
        score = self.score(emb[0], emb[1])
        llr = self.llr(score)
        on, thr = None, None
        if threshold is not None:
            on, thr = ("llr" if llr is not None else "score"), float(threshold)
        elif self.threshold is not None:
            on, thr = self.threshold["on"], self.threshold["threshold"]
        elif llr is not None:
            on, thr = "llr", 0.0
        if on is None:
            return Verification(score, llr)
        value = llr if on == "llr" else score
        return Verification(score, llr, bool(value >= thr), thr, on)

    def enroll(self, speakers, store=None, mode: str = "avg", existing: str = "error", sample_rate: int | None = None):
        """Enrol ``{speaker: recording or [recordings]}`` into a speaker store and return it.

        A new store (``store=None``) scores with cosine after the model's training mean and
        carries its calibration and threshold; ``store`` (a :class:`~xvector.scoring.store.
        SpeakerStore` or its path) is grown instead. ``mode``: ``"avg"`` (mean of the
        recordings' normalised embeddings) or ``"concat"`` (one embedding of the joined audio).
        See :func:`xvector.inference.enrollment.enroll`.
        """
        return enrollment.enroll(self, speakers, store, mode, existing, sample_rate)

    def identify(self, x, store, top_k: int = 5, threshold: float | None = None, sample_rate: int | None = None):
        """Top-``k`` enrolled speakers of ``x`` (one input or a list) and the open-set decision.

        Returns an :class:`~xvector.scoring.identify.Identification` (a list for a list): its
        ``candidates`` ``(speaker, score, llr)`` and ``speaker`` (None = unknown). See
        :func:`xvector.inference.enrollment.identify`.
        """
        return enrollment.identify(self, x, store, top_k, threshold, sample_rate)


def load_model(
    path: str | os.PathLike, chunk_sec: float = DEFAULT_CHUNK_SEC, batch_size: int = 16, precision: str = "32"
) -> SpeakerModel:
    """Load a model directory (``xvector-export``) or a training checkpoint.

    ``precision``: ``"32"`` or ``"int8"``, as :class:`SpeakerModel`.

    Raises:
        ValueError: naming the path when it is neither or a file in it is malformed.
    """
    return SpeakerModel(load_model_dir(Path(path)), chunk_sec, batch_size, precision)
