"""Enrolment and identification from audio: a model's embeddings into a speaker store, and back.

The store and the search are numpy-only (:mod:`xvector.scoring.store`,
:mod:`xvector.scoring.identify`); this module embeds recordings with a
:class:`~xvector.inference.api.SpeakerModel` and records which model made the store, so a store
is never searched with embeddings of another model. ``SpeakerModel.enroll`` / ``.identify``
and the ``xvector-enroll`` / ``xvector-identify`` commands call it.

* ``avg`` enrolment embeds each recording and averages (in the back-end's space);
* ``concat`` enrolment joins a speaker's recordings (each resampled to the model's rate and
  downmixed) into one waveform and embeds that, long ones in exact chunks
  (:func:`xvector.inference.embed.embed_long`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol, Union

import numpy as np
import torch

from xvector.inference.embed import read_audio, resample, to_mono
from xvector.inference.extraction import fingerprint
from xvector.inference.model_dir import ModelDir
from xvector.scoring.backends import Backend, CosineBackend
from xvector.scoring.identify import FaissIndex, Identification
from xvector.scoring.identify import identify as identify_embeddings
from xvector.scoring.store import SpeakerStore

Audio = Union[str, os.PathLike, np.ndarray, torch.Tensor]  # one recording: a path or a waveform
Inputs = Union[Audio, Sequence[Audio]]


class SpeakerModel(Protocol):
    """What this module uses of :class:`xvector.inference.api.SpeakerModel` (which imports it)."""

    model: ModelDir
    mean: np.ndarray | None
    calibration: dict | None
    threshold: dict | None
    sample_rate: int
    embed_dim: int

    def embed(self, x, sample_rate: int | None = None) -> np.ndarray: ...


def model_identity(model: SpeakerModel) -> dict:
    """What a store records of the model: weights hash, sample rate, embedding size, path."""
    ident = fingerprint(model.model.embedder, model.sample_rate)
    return {**ident, "embed_dim": int(model.embed_dim), "path": str(model.model.path)}


def check_model(store: SpeakerStore, model: SpeakerModel, where: str = "speaker store") -> None:
    """Raise a ValueError when ``store`` was made with another model (or another embedding size)."""
    if store.embed_dim != model.embed_dim:
        raise ValueError(f"{where}: holds {store.embed_dim}-dim models; this model embeds {model.embed_dim}-dim")
    if store.model is None or "weights_sha256" not in store.model:
        return  # enrolled from embedding files of an unrecorded model: nothing to check
    mine = fingerprint(model.model.embedder, model.sample_rate)
    if (store.model["weights_sha256"], store.model.get("sample_rate")) != (mine["weights_sha256"], mine["sample_rate"]):
        raise ValueError(f"{where}: was enrolled with another model ({store.model.get('path', '?')}, weights "
                         f"{store.model['weights_sha256'][:12]}); this one is {model.model.path} "
                         f"(weights {mine['weights_sha256'][:12]})")


def new_store(model: SpeakerModel, mode: str = "avg", backend: Backend | None = None) -> SpeakerStore:
    """An empty store for ``model``: cosine after its stored training mean (unless ``backend``),
    with its calibration and threshold."""
    backend = backend or CosineBackend(model.mean, in_dim=model.embed_dim)
    return SpeakerStore(backend, mode, model_identity(model), model.calibration, model.threshold)


def _waveform(model: SpeakerModel, x: Audio, sample_rate: int | None, name: str) -> torch.Tensor:
    if isinstance(x, (str, os.PathLike)):
        return read_audio(x, model.sample_rate)
    wav = to_mono(x)
    if not torch.isfinite(wav).all():
        raise ValueError(f"{name}: waveform contains NaN or infinite samples")
    return resample(wav, sample_rate or model.sample_rate, model.sample_rate)


def _as_list(x: Inputs) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def embed_speakers(model: SpeakerModel, speakers: Mapping[str, Inputs], mode: str = "avg",
                   sample_rate: int | None = None) -> tuple[list[str], np.ndarray]:
    """``(speaker of each row, embeddings (N, D))``: one row per recording (``avg``) or one per
    speaker, of its recordings joined (``concat``).

    Raises:
        ValueError: naming the speaker and input for an unreadable, non-finite or too short one.
    """
    names, waves = [], []
    for spk, inputs in speakers.items():
        items = _as_list(inputs)
        if not items:
            raise ValueError(f"speaker {spk!r}: no recordings to enrol")
        wavs = [_waveform(model, x, sample_rate, f"speaker {spk!r} input {i}") for i, x in enumerate(items)]
        if mode == "concat":
            wavs = [torch.cat(wavs)]
        names += [spk] * len(wavs)
        waves += wavs
    try:
        emb = model.embed(waves, sample_rate=model.sample_rate)  # (N, D), batched by length
    except ValueError as err:
        raise ValueError(f"enrolment: {err} (inputs numbered in speaker order)") from err
    return names, np.atleast_2d(emb)


def enroll(model: SpeakerModel, speakers: Mapping[str, Inputs], store: SpeakerStore | str | os.PathLike | None = None,
           mode: str = "avg", existing: str = "error", sample_rate: int | None = None,
           source: dict | None = None) -> SpeakerStore:
    """Enrol ``{speaker: recording(s)}`` (paths or waveforms) into ``store`` (a new one if None).

    Args:
        mode: for a new store, ``"avg"`` or ``"concat"``; an existing store keeps its own.
        existing: for speakers already enrolled: ``"error"``, ``"add"`` or ``"replace"``.
        sample_rate: rate of waveform inputs (default: the model's).

    Returns:
        The store (the same object when one was given; save it with ``store.save(path)``).

    Raises:
        ValueError: for a store made with another model, an unreadable or too short input
            (named), or as :meth:`SpeakerStore.add`.
    """
    if isinstance(store, (str, os.PathLike)):
        store = SpeakerStore.load(store)
    store = store if store is not None else new_store(model, mode)
    check_model(store, model)
    names, emb = embed_speakers(model, speakers, store.mode, sample_rate)
    store.add(names, emb, existing, source=source or {"inputs": len(names)})
    return store


def identify(model: SpeakerModel, x: Inputs, store: SpeakerStore | str | os.PathLike, top_k: int = 5,
             threshold: float | None = None, sample_rate: int | None = None,
             index: FaissIndex | None = None) -> Identification | list[Identification]:
    """Who is speaking in ``x`` (one recording, or a list)? Top-k candidates and the decision.

    The decision accepts the best candidate when its LLR (calibrated store) or score reaches
    ``threshold`` (default: the store's, else the best candidate is the answer).

    Raises:
        ValueError: for a store made with another model, or an unreadable or too short input.
    """
    if isinstance(store, (str, os.PathLike)):
        store = SpeakerStore.load(store)
    check_model(store, model)
    single = not isinstance(x, (list, tuple))
    emb = np.atleast_2d(model.embed(_as_list(x), sample_rate=sample_rate))
    results = identify_embeddings(store, emb, top_k, threshold, index)
    return results[0] if single else results
