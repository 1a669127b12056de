"""LDA projection and the Kaldi-style back-end chain: centre → LDA → length-norm → PLDA.

:func:`fit_lda` wraps scikit-learn's ``LinearDiscriminantAnalysis`` (SVD solver: the output is
whitened for within-speaker variation, ordered by discriminative power). :class:`KaldiChain`
is the x-vector recipe's back end (Snyder et al. 2018): subtract the training mean, reduce
with LDA, length-normalise, then score with two-covariance PLDA.

Example:
    >>> import numpy as np
    >>> from xvector.data.lists import Trial
    >>> rng = np.random.default_rng(0)
    >>> speakers = rng.normal(size=(40, 6)) * 3.0
    >>> labels = np.repeat(np.arange(40), 6)
    >>> x = speakers[labels] + rng.normal(size=(240, 6))
    >>> chain = KaldiChain(lda_dim=4, plda_iter=3).fit(x, labels)
    >>> ids = ["a1", "a2", "b1"]
    >>> trials = [Trial("a1", "a2", True), Trial("a1", "b1", False)]
    >>> scores = chain.score(ids, x[[0, 1, 6]], trials)
    >>> scores.shape, bool(scores[0] > scores[1])
    ((2,), True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from xvector.data.lists import Trial
from xvector.scoring.cosine import _BLOCK, length_normalize, trial_rows
from xvector.scoring.plda import TwoCovPLDA, _check_xy

log = logging.getLogger(__name__)


class LDATransform:
    """A fitted LDA projection ``(M, D) -> (M, dim)``; call it on embeddings."""

    def __init__(self, lda: LinearDiscriminantAnalysis, in_dim: int) -> None:
        self._lda = lda
        self.in_dim = in_dim
        self.dim = int(lda.n_components)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"LDA expects (M, {self.in_dim}) embeddings, got shape {x.shape}")
        return self._lda.transform(x)


def fit_lda(x: np.ndarray, labels: np.ndarray, dim: int = 200) -> LDATransform:
    """Fit an LDA projection to ``dim`` dimensions.

    LDA yields at most ``min(n_classes - 1, D)`` dimensions; a larger ``dim`` is clipped to
    that (with a logged warning) rather than failing, so one config serves small and large
    training sets.

    Args:
        x: ``(N, D)`` training embeddings.
        labels: ``(N,)`` speaker labels.
        dim: requested output dimension.

    Returns:
        The fitted :class:`LDATransform`.

    Raises:
        ValueError: for mismatched shapes, fewer than two speakers or ``dim < 1``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, labels = rng.normal(size=(30, 5)), np.repeat(np.arange(3), 10)
        >>> fit_lda(x, labels, dim=200)(x).shape     # 3 speakers: at most 2 dimensions
        (30, 2)
    """
    x, labels = _check_xy(x, labels)
    if dim < 1:
        raise ValueError(f"LDA dim must be >= 1, got {dim}")
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise ValueError(f"LDA needs at least two speakers, got {n_classes}")
    max_dim = min(n_classes - 1, x.shape[1])
    if dim > max_dim:
        log.warning(
            "LDA dim %d clipped to %d (%d speakers, %d-dim embeddings)",
            dim, max_dim, n_classes, x.shape[1],
        )
        dim = max_dim
    lda = LinearDiscriminantAnalysis(n_components=dim, solver="svd").fit(x, labels)
    return LDATransform(lda, x.shape[1])


class KaldiChain:
    """Centre (training mean) → LDA → length-norm → two-covariance PLDA back end.

    Args:
        lda_dim: LDA output dimension (clipped to ``n_speakers - 1`` and ``D``).
        plda_iter: EM iterations for the PLDA.
    """

    outputs_llr = True  # scores are PLDA log-likelihood ratios

    def __init__(self, lda_dim: int = 200, plda_iter: int = 10) -> None:
        self.lda_dim = lda_dim
        self.plda_iter = plda_iter
        self.mean: np.ndarray | None = None
        self.lda: LDATransform | None = None
        self.plda: TwoCovPLDA | None = None

    def fit(self, x: np.ndarray, labels: np.ndarray) -> KaldiChain:
        """Fit mean, LDA and PLDA on ``(N, D)`` training embeddings with ``(N,)`` speaker labels."""
        x, labels = _check_xy(x, labels)
        self.mean = x.mean(axis=0)
        self.lda = fit_lda(x - self.mean, labels, self.lda_dim)
        self.plda = TwoCovPLDA(n_iter=self.plda_iter).fit(self.transform(x), labels)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(M, D)`` embeddings → ``(M, lda_dim)`` unit-length PLDA inputs."""
        if self.mean is None or self.lda is None:
            raise ValueError("KaldiChain is not fitted: call fit() first")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"embedding dim {x.shape[-1]} differs from the training dim {self.mean.shape[0]}"
            )
        return length_normalize(self.lda(x - self.mean))

    def score(
        self, ids: Sequence[str], embeddings: np.ndarray, trials: Sequence[Trial]
    ) -> np.ndarray:
        """PLDA LLR of every trial, in trial order.

        Args:
            ids: ``N`` utterance ids naming the rows of ``embeddings``.
            embeddings: ``(N, D)`` embedding table.
            trials: trials whose ids must all be in ``ids``.

        Returns:
            ``(len(trials),)`` float64 log-likelihood ratios.

        Raises:
            ValueError: as :func:`xvector.scoring.cosine.score_trials` for bad ids, or for an
                embedding dimension that differs from training.
        """
        if self.plda is None:
            raise ValueError("KaldiChain is not fitted: call fit() first")
        embeddings = np.asarray(embeddings)
        used, enroll, test = trial_rows(ids, embeddings, trials)
        table = self.transform(embeddings[used])  # (U, lda_dim), each utterance once
        scores = np.empty(len(trials), dtype=np.float64)
        for start in range(0, len(trials), _BLOCK):  # bounded memory on million-trial lists
            block = slice(start, start + _BLOCK)
            scores[block] = self.plda.llr(table[enroll[block]], table[test[block]])
        return scores

    def __call__(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        trials: Sequence[Trial],
        mean: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`score`, with the call signature of ``cosine.score_trials`` (the CLI's backend)."""
        if mean is not None:
            raise ValueError(
                "mean_embeddings applies to cosine scoring; the PLDA back end subtracts the "
                "mean of its training embeddings itself"
            )
        return self.score(ids, embeddings, trials)
