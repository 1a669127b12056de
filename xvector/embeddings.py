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

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xvector.atomic import atomic_output


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
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: embedding file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            ids = [str(i) for i in data["ids"]]
            emb = np.asarray(data["embeddings"], dtype=np.float32)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not an xvector embedding file ({err})") from err
    return ids, emb
