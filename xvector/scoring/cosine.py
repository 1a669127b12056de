"""Cosine scoring of trial lists, optionally after subtracting a mean embedding — numpy only.

The embedding table is centred and length-normalised once, trial ids are mapped to table rows
once, and every trial is then a dot product of two gathered rows, so scoring costs one pass
over the trials rather than one Python call per trial.

Example:
    >>> import numpy as np
    >>> from xvector.data.lists import Trial
    >>> emb = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    >>> trials = [Trial("a", "b", True), Trial("a", "c", False)]
    >>> score_trials(["a", "b", "c"], emb, trials).tolist()
    [1.0, 0.0]
    >>> trial_labels(trials).tolist()
    [True, False]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xvector.data.lists import Trial

# Trials gathered per block: bounds the float64 copies of enrollment and test rows to
# 2 x 16384 x D x 8 bytes (64 MiB at D = 256) however long the trial list is.
_BLOCK = 16384


def length_normalize(x: np.ndarray) -> np.ndarray:
    """Scale each row of ``x (N, D)`` to unit L2 norm; all-zero rows stay zero (no NaN).

    Example:
        >>> length_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine_scores(enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity: ``(N, D), (N, D) -> (N,)``; a zero row scores 0.

    Example:
        >>> cosine_scores(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]])).round(4).tolist()
        [0.7071]
    """
    enroll, test = np.asarray(enroll), np.asarray(test)
    if enroll.ndim != 2 or enroll.shape != test.shape:
        raise ValueError(
            f"need two (N, D) arrays of one shape, got {enroll.shape} and {test.shape}"
        )
    return np.einsum("nd,nd->n", length_normalize(enroll), length_normalize(test))


def trial_labels(trials: Sequence[Trial]) -> np.ndarray:
    """``(len(trials),)`` bool array, True for target trials."""
    return np.fromiter((t.target for t in trials), dtype=np.bool_, count=len(trials))


def _row_indices(ids: Sequence[str], trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
    row = {}
    for i, utt in enumerate(ids):
        if utt in row:
            raise ValueError(f"duplicate utterance id {utt!r} in the embedding table")
        row[utt] = i
    # dict.get in a generator feeding fromiter: one C-level pass per side, no try/except per
    # trial; a missing id maps to -1 and is reported (with its line) afterwards.
    enroll = np.fromiter((row.get(t.enroll, -1) for t in trials), dtype=np.int64, count=len(trials))
    test = np.fromiter((row.get(t.test, -1) for t in trials), dtype=np.int64, count=len(trials))
    missing = (enroll < 0) | (test < 0)
    if missing.any():
        k = int(np.argmax(missing))
        utt = trials[k].enroll if enroll[k] < 0 else trials[k].test
        raise ValueError(f"trial line {k + 1}: no embedding for utterance {utt!r}")
    return enroll, test


def trial_rows(
    ids: Sequence[str], embeddings: np.ndarray, trials: Sequence[Trial]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the table and map trials onto it, each utterance once however many trials use it.

    Returns:
        ``used (U,)``: the table rows the trials need; ``enroll (T,)`` and ``test (T,)``: each
        trial's position in ``used``.

    Raises:
        ValueError: for a table whose shape disagrees with ``ids``, a duplicate id, a trial
            naming an id without an embedding (naming the 1-based trial line), or a used row
            holding NaN/inf (naming the utterance).
    """
    if np.ndim(embeddings) != 2 or len(embeddings) != len(ids):
        raise ValueError(
            f"need (N, D) embeddings for N={len(ids)} ids, got shape {np.shape(embeddings)}"
        )
    enroll, test = _row_indices(ids, trials)
    used, inverse = np.unique(np.concatenate([enroll, test]), return_inverse=True)
    check_finite_rows(np.asarray(embeddings)[used], [ids[i] for i in used])
    return used, inverse[: len(trials)], inverse[len(trials) :]


def check_finite_rows(x: np.ndarray, ids: Sequence[str] | None = None, what: str = "embedding") -> None:
    """Raise a ``ValueError`` naming the first row of ``x (N, D)`` that holds NaN or infinity.

    A NaN row would score 0.0 against everything (its normalisation divides by NaN) and a NaN
    mean or cohort would turn every score into NaN or 0.0, passing for real scores.

    Example:
        >>> check_finite_rows(np.array([[0.0, 1.0], [np.nan, 0.0]]), ["a", "b"])
        Traceback (most recent call last):
        ...
        ValueError: non-finite embedding for utterance 'b'
    """
    bad = ~np.isfinite(np.asarray(x, dtype=np.float64)).reshape(len(x), -1).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"non-finite {what} for utterance {ids[i]!r}" if ids is not None else f"non-finite {what} in row {i}")


def score_trials(
    ids: Sequence[str],
    embeddings: np.ndarray,
    trials: Sequence[Trial],
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """Cosine score of every trial.

    Args:
        ids: ``N`` utterance ids, ``ids[i]`` naming row ``i`` of ``embeddings``.
        embeddings: ``(N, D)`` embedding table.
        trials: trials whose ``enroll``/``test`` ids must all be in ``ids``.
        mean: optional ``(D,)`` vector subtracted before length normalisation (e.g. the mean
            of training-set embeddings), which removes the shared offset cosine would
            otherwise count as similarity.

    Returns:
        ``(len(trials),)`` float64 scores in ``[-1, 1]``, in trial order.

    Raises:
        ValueError: for a table whose shape disagrees with ``ids`` or ``mean``, a duplicate
            id, or a trial naming an id without an embedding
            (``"trial line 17: no embedding for utterance 'x'"``; line = 1-based trial index).
    """
    embeddings = np.asarray(embeddings)
    used, enroll, test = trial_rows(ids, embeddings, trials)
    # Centre and normalise only the rows trials use, in float64; the per-trial gather and dot
    # product then run in float32 (the embeddings' own precision, |error| ~1e-7): gathering
    # 2 x N float64 rows is memory-bound and took 3-4x longer on 1M trials (bench_scoring.py).
    table = embeddings[used].astype(np.float64)
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64)
        if mean.shape != (embeddings.shape[1],):
            raise ValueError(f"mean must have shape ({embeddings.shape[1]},), got {mean.shape}")
        if not np.isfinite(mean).all():
            raise ValueError("the mean holds NaN or infinite values")
        table -= mean
    table = length_normalize(table).astype(np.float32)
    scores = np.empty(len(trials), dtype=np.float64)
    for start in range(0, len(trials), _BLOCK):
        block = slice(start, start + _BLOCK)
        scores[block] = np.einsum("nd,nd->n", table[enroll[block]], table[test[block]])
    return scores
