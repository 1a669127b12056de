"""Back-ends for enrolled speakers: score speaker models (several embeddings each) — numpy only.

A back-end maps raw embeddings ``(N, D)`` to unit vectors of its scoring space
(:meth:`transform`); a speaker model is the mean of its enrolment vectors there and the number
``n`` of vectors averaged. Scores of ``S`` models against ``Q`` test vectors are one matrix
product of features, so exact search, row-wise trial scoring and an approximate
inner-product index (FAISS) all run on the same numbers::

    scores (Q, S) = query_features(tests (Q, E)) @ speaker_features(means (S, E), n (S,)).T

* :class:`CosineBackend` — subtract a mean (e.g. of training embeddings), length-normalise;
  the model is the mean of its unit vectors and the score the cosine of model and test. With
  one enrolment utterance this is :func:`xvector.scoring.cosine.score_trials` exactly.
* :class:`PLDABackend` — the Kaldi chain (centre → LDA → length-norm) of a fitted
  :class:`~xvector.scoring.lda.KaldiChain`, then the two-covariance PLDA log-likelihood ratio of
  a test vector given ``n`` enrolment vectors (Kaldi's ``ivector-plda-scoring --num-utts``): in
  the basis where ``within = I`` and ``between = diag(psi)``, the speaker variable given ``n``
  vectors of mean ``m`` is ``N(n psi m / (1 + n psi), psi / (1 + n psi))``, so

      LLR = log N(u; n psi m / (1 + n psi), 1 + psi / (1 + n psi)) - log N(u; 0, 1 + psi)

  per dimension, summed. For ``n = 1`` it equals :meth:`TwoCovPLDA.llr`. Expanding the squares
  makes it ``[u², u, 1] · [w, b, c]``: features of ``2 E + 1`` columns.

Both are stored as plain arrays (:meth:`to_arrays`, :func:`backend_from_arrays`), so a speaker
store needs neither scikit-learn nor pickles to load.

Example:
    >>> import numpy as np
    >>> backend = CosineBackend(mean=np.array([1.0, 0.0]))
    >>> enrol = backend.transform(np.array([[2.0, 1.0], [2.0, -1.0], [1.0, 3.0]]))   # two of A, one of B
    >>> means, n = np.array([enrol[:2].mean(0), enrol[2]]), np.array([2, 1])
    >>> tests = backend.transform(np.array([[3.0, 0.0], [1.0, -2.0]]))
    >>> (backend.query_features(tests) @ backend.speaker_features(means, n).T).round(4).tolist()
    [[1.0, 0.0], [0.0, -1.0]]
"""

from __future__ import annotations

import numpy as np

from xvector.scoring.cosine import length_normalize
from xvector.scoring.plda import _simultaneous_diag


def _rows(x: np.ndarray, dim: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what}: need (N, {dim}) vectors, got shape {x.shape}")
    return x


class CosineBackend:
    """Cosine scoring after subtracting ``mean``: ``(D,)`` or None.

    Attributes:
        in_dim: embedding dimension ``D`` (taken from ``mean``, or given).
        dim: scoring-space dimension ``E = D``; features have ``E`` columns.
    """

    kind = "cosine"
    outputs_llr = False

    def __init__(self, mean: np.ndarray | None = None, in_dim: int | None = None) -> None:
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64).reshape(-1)
        if self.mean is None and in_dim is None:
            raise ValueError("CosineBackend needs a mean or the embedding dimension in_dim")
        self.in_dim = int(self.mean.shape[0] if self.mean is not None else in_dim)
        if in_dim is not None and in_dim != self.in_dim:
            raise ValueError(f"mean of dim {self.in_dim} for {in_dim}-dim embeddings")
        self.dim = self.in_dim

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(N, D)`` raw embeddings → ``(N, D)`` unit vectors (centred first when there is a mean)."""
        x = _rows(x, self.in_dim, "embeddings")
        return length_normalize(x - self.mean if self.mean is not None else x)

    def speaker_features(self, means: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``(S, E)`` model means → ``(S, E)``: the unit direction of each mean (``counts`` unused)."""
        return length_normalize(_rows(means, self.dim, "speaker means"))

    def query_features(self, tests: np.ndarray) -> np.ndarray:
        """``(Q, E)`` transformed test vectors → ``(Q, E)`` (already unit length)."""
        return _rows(tests, self.dim, "test vectors")

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"in_dim": np.array(self.in_dim)}
        if self.mean is not None:
            out["mean"] = self.mean
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CosineBackend:
        return cls(arrays.get("mean"), int(arrays["in_dim"]))


class PLDABackend:
    """Centre → affine LDA → length-norm → two-covariance PLDA with ``n``-utterance enrolment.

    Args:
        center: ``(D,)`` subtracted first (the chain's training mean).
        lda: ``(D, E)`` projection and ``lda_offset`` ``(E,)``: LDA is ``(x - center) @ lda + lda_offset``.
        plda_mean: ``(E,)``; ``basis``: ``(E, E)`` with ``basis.T @ within @ basis = I`` and
            ``basis.T @ between @ basis = diag(psi)``; ``psi``: ``(E,)``.
    """

    kind = "plda"
    outputs_llr = True  # PLDA log-likelihood ratios (if not calibrated ones)

    def __init__(self, center: np.ndarray, lda: np.ndarray, lda_offset: np.ndarray, plda_mean: np.ndarray,
                 basis: np.ndarray, psi: np.ndarray) -> None:
        self.center = np.asarray(center, dtype=np.float64)
        self.lda = np.asarray(lda, dtype=np.float64)
        self.lda_offset = np.asarray(lda_offset, dtype=np.float64)
        self.plda_mean = np.asarray(plda_mean, dtype=np.float64)
        self.basis = np.asarray(basis, dtype=np.float64)
        self.psi = np.asarray(psi, dtype=np.float64)
        self.in_dim, self.dim = self.lda.shape
        shapes = [self.center.shape, self.lda_offset.shape, self.plda_mean.shape, self.basis.shape, self.psi.shape]
        if shapes != [(self.in_dim,), (self.dim,), (self.dim,), (self.dim, self.dim), (self.dim,)]:
            raise ValueError(f"inconsistent PLDA back-end arrays: lda {self.lda.shape}, others {shapes}")

    @classmethod
    def from_chain(cls, chain) -> PLDABackend:
        """The same scores as a fitted :class:`~xvector.scoring.lda.KaldiChain` (``n = 1``)."""
        if chain.plda is None or chain.lda is None:
            raise ValueError("KaldiChain is not fitted: call fit() first")
        d = chain.mean.shape[0]
        # LDA is affine: read its matrix and offset off the images of 0 and the unit vectors, so
        # the store needs no scikit-learn object (nor its private attributes).
        images = chain.lda(np.vstack([np.zeros(d), np.eye(d)]))  # (D + 1, E)
        basis, psi = _simultaneous_diag(np.asarray(chain.plda.between, float), np.asarray(chain.plda.within, float))
        return cls(chain.mean, images[1:] - images[0], images[0], chain.plda.mean, basis, psi)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(N, D)`` raw embeddings → ``(N, E)`` unit-length PLDA inputs."""
        x = _rows(x, self.in_dim, "embeddings")
        return length_normalize((x - self.center) @ self.lda + self.lda_offset)

    def speaker_features(self, means: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``(S, E)`` model means of ``counts (S,)`` vectors each → ``(S, 2 E + 1)``: ``[w, b, c]``."""
        means = _rows(means, self.dim, "speaker means")
        n = np.asarray(counts, dtype=np.float64).reshape(-1, 1)  # (S, 1)
        if n.shape[0] != means.shape[0] or (n < 1).any():
            raise ValueError(f"need a count >= 1 for each of the {means.shape[0]} speaker means")
        psi = self.psi
        m = ((means - self.plda_mean) @ self.basis) * (n * psi / (1.0 + n * psi))  # posterior mean (S, E)
        v = 1.0 + psi / (1.0 + n * psi)  # predictive variance under "same speaker" (S, E)
        w = 0.5 / (1.0 + psi) - 0.5 / v
        c = np.sum(-0.5 * m * m / v - 0.5 * np.log(v) + 0.5 * np.log1p(psi), axis=1, keepdims=True)
        return np.hstack([w, m / v, c])

    def query_features(self, tests: np.ndarray) -> np.ndarray:
        """``(Q, E)`` transformed test vectors → ``(Q, 2 E + 1)``: ``[u², u, 1]``."""
        u = (_rows(tests, self.dim, "test vectors") - self.plda_mean) @ self.basis
        return np.hstack([u * u, u, np.ones((u.shape[0], 1))])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"center": self.center, "lda": self.lda, "lda_offset": self.lda_offset,
                "plda_mean": self.plda_mean, "basis": self.basis, "psi": self.psi}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PLDABackend:
        return cls(**{k: arrays[k] for k in ("center", "lda", "lda_offset", "plda_mean", "basis", "psi")})


Backend = CosineBackend | PLDABackend
# Reading a stored back-end: its file says which of the two it is.
_KINDS = {CosineBackend.kind: CosineBackend, PLDABackend.kind: PLDABackend}


def backend_from_arrays(kind: str, arrays: dict[str, np.ndarray]) -> Backend:
    """Rebuild a back-end written by ``to_arrays`` (ValueError for an unknown ``kind``)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown back-end {kind!r}; expected one of {sorted(_KINDS)}")
    try:
        return _KINDS[kind].from_arrays(arrays)
    except KeyError as err:
        raise ValueError(f"{kind} back-end: missing array {err}") from None


def pair_scores(backend: Backend, means: np.ndarray, counts: np.ndarray, tests: np.ndarray,
                block: int = 16384) -> np.ndarray:
    """Row-wise scores ``(T,)`` of models ``means (T, E)`` (``counts (T,)``) against ``tests (T, E)``.

    Float64 throughout, in blocks of ``block`` rows (bounded memory on long trial lists).
    """
    out = np.empty(len(means), dtype=np.float64)
    for start in range(0, len(means), block):
        s = slice(start, start + block)
        out[s] = np.einsum("nf,nf->n", backend.speaker_features(means[s], counts[s]), backend.query_features(tests[s]))
    return out
