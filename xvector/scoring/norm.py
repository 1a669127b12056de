"""Score normalisation against a cohort: symmetric s-norm and adaptive s-norm (AS-norm).

Each side of a trial is compared with every cohort embedding (cosine); the statistics of those
cohort scores — over all of them (s-norm) or over the ``top_k`` highest (AS-norm, Matějka et
al. 2017) — standardise the trial score from both sides:

    s' = ((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2

Cohort statistics are computed once per distinct utterance (not per trial) in row blocks, so
memory stays bounded by ``block_rows × C`` scores however large the cohort or trial list.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> emb, cohort = rng.standard_normal((4, 8)), rng.standard_normal((50, 8))
    >>> mean, std = cohort_stats(emb, cohort, top_k=10)
    >>> scores = np.array([0.3, -0.1])
    >>> out = symmetric_norm(scores, np.array([0, 1]), np.array([2, 3]), mean, std)
    >>> out.shape
    (2,)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xvector.data.lists import Trial
from xvector.scoring.cosine import check_finite_rows, length_normalize, trial_rows


def cohort_stats(
    embeddings: np.ndarray,
    cohort: np.ndarray,
    top_k: int | None = None,
    block_rows: int = 4096,
    std_floor: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row's cosine scores against the cohort.

    Args:
        embeddings: ``(M, D)`` utterances to normalise (any scale; length-normalised here).
        cohort: ``(C, D)`` cohort embeddings, e.g. training speakers' utterances or means.
        top_k: use only the ``top_k`` highest cohort scores per row (AS-norm); ``None`` or
            ``>= C`` uses all of them (s-norm).
        block_rows: rows scored at once (memory: ``block_rows × C`` float64).
        std_floor: lower bound of the returned standard deviations.

    Returns:
        ``mean (M,)`` and ``std (M,)``.

    Raises:
        ValueError: for mismatched dimensions, an empty cohort, NaN/inf rows, or ``top_k < 2``.
    """
    embeddings, cohort = np.atleast_2d(embeddings), np.atleast_2d(cohort)
    if cohort.shape[0] == 0 or embeddings.shape[1] != cohort.shape[1]:
        raise ValueError(f"need a non-empty cohort of dim {embeddings.shape[1]}, got {cohort.shape}")
    check_finite_rows(cohort, what="cohort embedding")
    check_finite_rows(embeddings)
    if top_k is not None and top_k < 2:
        raise ValueError(f"top_k must be >= 2 (a standard deviation needs two scores), got {top_k}")
    k = cohort.shape[0] if top_k is None else min(top_k, cohort.shape[0])
    cohort_n = length_normalize(cohort.astype(np.float64))
    mean = np.empty(embeddings.shape[0])
    std = np.empty(embeddings.shape[0])
    for start in range(0, embeddings.shape[0], block_rows):
        rows = length_normalize(embeddings[start : start + block_rows].astype(np.float64))
        scores = rows @ cohort_n.T  # (b, C)
        if k < scores.shape[1]:
            scores = np.partition(scores, scores.shape[1] - k, axis=1)[:, -k:]  # top k, unordered
        mean[start : start + len(rows)] = scores.mean(axis=1)
        std[start : start + len(rows)] = scores.std(axis=1)
    return mean, np.maximum(std, std_floor)


def symmetric_norm(
    scores: np.ndarray,
    enroll_rows: np.ndarray,
    test_rows: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
) -> np.ndarray:
    """Normalise trial ``scores (N,)`` with per-utterance cohort statistics.

    Args:
        scores: raw trial scores.
        enroll_rows: ``(N,)`` index of each trial's enrollment utterance in ``mean``/``std``.
        test_rows: ``(N,)`` index of each trial's test utterance.
        mean: ``(M,)`` cohort-score means from :func:`cohort_stats`.
        std: ``(M,)`` cohort-score standard deviations.

    Returns:
        ``(N,)`` normalised scores; swapping enrollment and test gives the same values.
    """
    scores = np.asarray(scores, dtype=np.float64)
    return 0.5 * ((scores - mean[enroll_rows]) / std[enroll_rows] + (scores - mean[test_rows]) / std[test_rows])


def speaker_means(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(S, D)`` mean of each speaker's length-normalised embeddings, in sorted label order.

    The usual AS-norm cohort (as WeSpeaker's): one vector per training speaker, so a speaker
    with many utterances does not fill the top-k alone.
    """
    labels = np.asarray(labels)
    if len(labels) != len(embeddings):
        raise ValueError(f"{len(labels)} labels for {len(embeddings)} embeddings")
    _, inverse = np.unique(labels, return_inverse=True)
    unit = length_normalize(np.asarray(embeddings, dtype=np.float64))
    sums = np.zeros((inverse.max() + 1, unit.shape[1]))
    np.add.at(sums, inverse, unit)
    return sums / np.bincount(inverse)[:, None]


class ScoreNorm:
    """Symmetric s-norm (``top_k=None``) or AS-norm of cosine trial scores.

    The cohort is built by :meth:`fit` from training embeddings — one mean per training
    speaker (``cohort="speakers"``) or every utterance (``cohort="utterances"``) — centred by
    the same ``mean`` as the trial embeddings.

    Args:
        top_k: cohort scores kept per utterance (AS-norm); ``None`` uses all (s-norm).
        cohort: ``"speakers"`` or ``"utterances"``.
        block_rows: rows scored against the cohort at once (memory bound).
    """

    def __init__(self, top_k: int | None = None, cohort: str = "speakers", block_rows: int = 4096) -> None:
        if cohort not in ("speakers", "utterances"):
            raise ValueError(f"cohort must be 'speakers' or 'utterances', got {cohort!r}")
        self.top_k = top_k
        self.cohort_kind = cohort
        self.block_rows = block_rows
        self.cohort: np.ndarray | None = None  # (C, D)
        self.mean: np.ndarray | None = None  # (D,) centring applied to trials and cohort

    def fit(self, embeddings: np.ndarray, labels: np.ndarray, mean: np.ndarray | None = None) -> ScoreNorm:
        """Build the cohort from training ``embeddings (N, D)`` with speaker ``labels (N,)``."""
        x = np.asarray(embeddings, dtype=np.float64)
        check_finite_rows(x, what="cohort embedding")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        if self.mean is not None and not np.isfinite(self.mean).all():
            raise ValueError("the mean holds NaN or infinite values")
        if self.mean is not None:
            x = x - self.mean
        self.cohort = speaker_means(x, labels) if self.cohort_kind == "speakers" else x
        return self

    def __call__(self, scores: np.ndarray, ids: Sequence[str], embeddings: np.ndarray, trials: Sequence[Trial]) -> np.ndarray:
        """Normalised ``(len(trials),)`` scores; raw ``scores`` are in trial order."""
        if self.cohort is None:
            raise ValueError("ScoreNorm has no cohort: call fit() with training embeddings first")
        used, enroll, test = trial_rows(ids, np.asarray(embeddings), trials)
        table = np.asarray(embeddings, dtype=np.float64)[used]  # each utterance once
        if self.mean is not None:
            table = table - self.mean
        mean, std = cohort_stats(table, self.cohort, top_k=self.top_k, block_rows=self.block_rows)
        return symmetric_norm(scores, enroll, test, mean, std)
