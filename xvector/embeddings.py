"""Embedding files: ``{utt: vector}`` tables stored as ``.npz`` with two arrays.

``ids`` holds the utterance ids (unicode strings) and ``embeddings`` the ``(N, D)`` float32
matrix, row ``i`` belonging to ``ids[i]``. Two arrays rather than one array per utterance keep
loading a 1M-row table a single read, and allow any characters in ids.

Example:
    >>> import tempfile, numpy as np
    >>> path = tempfile.mkdtemp() + "/emb.npz"
    >>> save_embeddings(path, ["u1", "u2"], np.eye(2, dtype=np.float32))
    >>> ids, emb = load_embeddings(path)
    >>> ids, emb.shape
    (['u1', 'u2'], (2, 2))
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xvector.atomic import atomic_output
from xvector.data.lists import read_kaldi_map


def save_embeddings(path: str | os.PathLike, ids: Sequence[str], embeddings: np.ndarray) -> None:
    """Write ids and their ``(N, D)`` embeddings atomically (temporary file + rename).

    Raises:
        ValueError: when lengths disagree, ids repeat or the matrix is not 2-D and finite.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(ids):
        raise ValueError(f"{path}: need (N, D) embeddings for N={len(ids)} ids, got {embeddings.shape}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate utterance ids")
    bad = ~np.isfinite(embeddings).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: non-finite embedding for utterance {ids[int(np.argmax(bad))]!r}")
    with atomic_output(path, suffix=".npz") as tmp:
        np.savez(tmp, ids=np.asarray(list(ids), dtype=str), embeddings=embeddings)


def load_embeddings(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read an embedding file written by :func:`save_embeddings`.

    Returns:
        ``(ids, embeddings)`` with ``embeddings`` of shape ``(N, D)``, float32.

    Raises:
        ValueError: naming the file when it is missing or not an embedding table, and the
            utterance when a row holds NaN or infinity (a NaN row would otherwise score 0.0
            against everything, and a NaN mean would turn every score into 0.0).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: embedding file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            ids = [str(i) for i in data["ids"]]
            emb = np.asarray(data["embeddings"], dtype=np.float32)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not an xvector embedding file ({err})") from err
    if emb.ndim != 2 or emb.shape[0] != len(ids):
        raise ValueError(f"{path}: need (N, D) embeddings for N={len(ids)} ids, got shape {emb.shape}")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{path}: non-finite embedding for utterance {ids[i]!r} (row {i + 1}; {int(bad.sum())} such rows): "
            "re-extract it or leave it out"
        )
    return ids, emb


def load_labelled_embeddings(
    pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(ids, (N, D) embeddings, (N,) speakers)`` of ``(embeddings .npz, utt2spk)`` pairs, concatenated.

    What a trained back end fits on: e.g. the training embeddings and those of their corrupted
    copies (``scripts/augment_data_dir.py``), each file labelled by its own utt2spk.

    Raises:
        ValueError: no pairs; naming the utt2spk file and the first utterance it has no speaker
            for; naming the file whose embedding dim differs from the first file's.
    """
    if not pairs:
        raise ValueError("no (embeddings, utt2spk) pairs to load")
    all_ids: list[str] = []
    embs, labels = [], []
    for emb_path, spk_path in pairs:
        ids, emb = load_embeddings(emb_path)
        utt2spk = read_kaldi_map(spk_path)
        missing = [utt for utt in ids if utt not in utt2spk]
        if missing:
            raise ValueError(
                f"{spk_path}: no speaker for training utterance {missing[0]!r} "
                f"({len(missing)} of {len(ids)} ids in {emb_path} have none)"
            )
        if embs and emb.shape[1] != embs[0].shape[1]:
            raise ValueError(f"{emb_path}: embedding dim {emb.shape[1]} differs from {embs[0].shape[1]} "
                             f"in {pairs[0][0]}")
        all_ids.extend(ids)
        embs.append(emb)
        labels.extend(utt2spk[utt] for utt in ids)
    return all_ids, np.concatenate(embs), np.array(labels)


def embedding_mean(path: str | os.PathLike) -> np.ndarray:
    """``(D,)`` float64 mean of the embeddings in ``path`` (what ``mean_embeddings`` subtracts).

    One function for ``xvector-score`` and ``xvector-export`` so that both compute the same
    vector, bit for bit, and :func:`mean_fingerprint` can tell whether two runs used one mean.

    Raises:
        ValueError: naming the file when it holds no embeddings (or a bad row, as
            :func:`load_embeddings`).
    """
    _, emb = load_embeddings(path)
    if emb.shape[0] == 0:
        raise ValueError(f"{path}: no embeddings to take the mean of")
    mean = emb.astype(np.float64).mean(axis=0)
    if not np.isfinite(mean).all():  # finite rows whose sum overflows float64: not real embeddings
        raise ValueError(f"{path}: the mean of these embeddings is not finite")
    return mean


def mean_fingerprint(mean: np.ndarray | None) -> str | None:
    """SHA-256 of a mean vector as stored in a model directory (float32), or None for no mean.

    Example:
        >>> mean_fingerprint(None) is None, len(mean_fingerprint(np.zeros(4)))
        (True, 64)
    """
    if mean is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(mean, dtype=np.float32).tobytes()).hexdigest()
