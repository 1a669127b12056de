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

import numpy as np

from xvector.scoring.cosine import length_normalize


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
        ValueError: for mismatched dimensions, an empty cohort, or ``top_k < 2``.
    """
    embeddings, cohort = np.atleast_2d(embeddings), np.atleast_2d(cohort)
    if cohort.shape[0] == 0 or embeddings.shape[1] != cohort.shape[1]:
        raise ValueError(f"need a non-empty cohort of dim {embeddings.shape[1]}, got {cohort.shape}")
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
