"""Two-covariance PLDA (Brümmer & de Villiers 2010; Sizov et al. 2014) — numpy only.

An embedding of speaker ``s`` is modelled as ``x = mean + y_s + e`` with the speaker variable
``y_s ~ N(0, between)`` shared by all of the speaker's utterances and the residual
``e ~ N(0, within)`` drawn afresh per utterance. Training is EM on these two covariances;
scoring is the log-likelihood ratio of "same speaker" against "different speakers".

Both EM and scoring work in the basis that simultaneously diagonalises the two covariances
(``V.T @ within @ V = I``, ``V.T @ between @ V = diag(psi)``): there every posterior covariance
is diagonal, so EM needs no per-speaker matrix inverse and the LLR of a trial is three
``(N, D) @ (D,)`` products — no Python loop over speakers or trials.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> speakers = rng.normal(size=(50, 3)) * 2.0                 # (S, D) speaker variables
    >>> labels = np.repeat(np.arange(50), 8)                      # (N,)
    >>> x = speakers[labels] + rng.normal(size=(400, 3))          # (N, D)
    >>> plda = TwoCovPLDA(n_iter=5).fit(x, labels)
    >>> plda.between.shape, plda.within.shape
    ((3, 3), (3, 3))
    >>> same = plda.llr(x[0:1], x[1:2])      # two utterances of speaker 0
    >>> diff = plda.llr(x[0:1], x[8:9])      # speaker 0 against speaker 1
    >>> bool(same[0] > diff[0])
    True
"""

from __future__ import annotations

import numpy as np

# Eigenvalues of `within` are floored at this fraction of the largest one, so a rank-deficient
# training set (fewer utterances than dimensions, collinear features) still gives a usable,
# invertible model instead of infinities.
_EIG_FLOOR = 1e-10


def _check_xy(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ValueError(
            f"need (N, D) embeddings and (N,) labels, got shapes {x.shape} and {labels.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"non-finite embedding in row {int(np.argmax(~np.isfinite(x).all(1)))}")
    return x, labels


def _simultaneous_diag(between: np.ndarray, within: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``V``, ``psi`` with ``V.T @ within @ V = I`` and ``V.T @ between @ V = diag(psi)``."""
    w, u = np.linalg.eigh((within + within.T) / 2)
    w = np.maximum(w, _EIG_FLOOR * max(w.max(), np.finfo(np.float64).tiny))
    whiten = u / np.sqrt(w)  # (D, D): whiten.T @ within @ whiten = I
    b = whiten.T @ between @ whiten
    psi, e = np.linalg.eigh((b + b.T) / 2)
    # `between` is PSD in theory; rounding can leave tiny negative eigenvalues, which would make
    # 1 + 2 psi < 1 and the LLR's log-determinants meaningless.
    return whiten @ e, np.maximum(psi, 0.0)


class TwoCovPLDA:
    """Two-covariance PLDA trained by EM.

    Attributes (after :meth:`fit`, or set directly to use known parameters):
        mean: ``(D,)`` global mean.
        between: ``(D, D)`` between-speaker covariance.
        within: ``(D, D)`` within-speaker covariance.
    """

    def __init__(self, n_iter: int = 10) -> None:
        if n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {n_iter}")
        self.n_iter = n_iter
        self.mean: np.ndarray | None = None
        self.between: np.ndarray | None = None
        self.within: np.ndarray | None = None
        self._terms_cache: tuple | None = None

    def fit(self, x: np.ndarray, labels: np.ndarray) -> TwoCovPLDA:
        """Estimate ``mean``, ``between`` and ``within`` from labelled embeddings.

        Args:
            x: ``(N, D)`` training embeddings.
            labels: ``(N,)`` speaker labels (any hashable values numpy can sort).

        Returns:
            ``self``.

        Raises:
            ValueError: for mismatched shapes, non-finite input, fewer than two speakers, or
                no speaker with two or more utterances (``within`` would be unidentifiable).
        """
        x, labels = _check_xy(x, labels)
        _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
        n_spk, (n, d) = len(counts), x.shape
        if n_spk < 2:
            raise ValueError(f"PLDA needs at least two speakers, got {n_spk}")
        if counts.max() < 2:
            raise ValueError("PLDA needs a speaker with at least two utterances")

        self.mean = x.mean(axis=0)
        xc = x - self.mean
        # Sufficient statistics, fixed across EM iterations: per-speaker sums and total scatter.
        sums = np.zeros((n_spk, d))
        np.add.at(sums, codes, xc)  # (S, D)
        scatter = xc.T @ xc  # (D, D)

        # Initialisation: covariance of the speaker means and the pooled within-speaker scatter.
        spk_means = sums / counts[:, None]
        self.between = spk_means.T @ spk_means / n_spk
        self.within = (scatter - (sums.T * (1.0 / counts)) @ sums) / max(n - n_spk, 1)

        cnt = counts[:, None].astype(np.float64)  # (S, 1)
        for _ in range(self.n_iter):
            v, psi = _simultaneous_diag(self.between, self.within)
            f = sums @ v  # (S, D) per-speaker sums in the diagonal basis
            # E-step: posterior of y_s is N(gain * f, gain) with diagonal gain = psi / (1 + n psi).
            gain = psi / (1.0 + cnt * psi)  # (S, D)
            y = gain * f  # (S, D)
            # M-step in the diagonal basis (within = I there), then mapped back with V^-1.
            b_new = (y.T @ y + np.diag(gain.sum(axis=0))) / n_spk
            w_new = (
                v.T @ scatter @ v - f.T @ y - y.T @ f + (cnt * y).T @ y
                + np.diag((cnt * gain).sum(axis=0))
            ) / n
            v_inv = np.linalg.inv(v)
            self.between = v_inv.T @ b_new @ v_inv
            self.within = v_inv.T @ w_new @ v_inv
            self.between = (self.between + self.between.T) / 2
            self.within = (self.within + self.within.T) / 2
        return self

    def _scoring_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``V``, the diagonal quadratic weights ``a`` and ``c``, and the constant of the LLR."""
        if self.mean is None or self.between is None or self.within is None:
            raise ValueError("TwoCovPLDA is not fitted: call fit() or set mean/between/within")
        # Cached against the parameters themselves (the attributes are public and may be
        # reassigned), so block-wise scoring of a long trial list decomposes only once.
        params = (np.array(self.between, dtype=np.float64), np.array(self.within, dtype=np.float64))
        if self._terms_cache is not None and all(
            np.array_equal(p, q) for p, q in zip(params, self._terms_cache[0])
        ):
            return self._terms_cache[1]
        v, psi = _simultaneous_diag(np.asarray(self.between, float), np.asarray(self.within, float))
        # Per dimension of the diagonal basis, the same-speaker pair covariance is
        # [[1+psi, psi], [psi, 1+psi]] (determinant 1 + 2 psi) and the different-speaker one is
        # diag(1+psi, 1+psi); the log ratio of the two Gaussians is
        # a (u1^2 + u2^2) + c u1 u2 + const.
        a = 0.5 / (1.0 + psi) - 0.5 * (1.0 + psi) / (1.0 + 2.0 * psi)
        c = psi / (1.0 + 2.0 * psi)
        const = float(np.sum(np.log1p(psi) - 0.5 * np.log1p(2.0 * psi)))
        self._terms_cache = (params, (v, a, c, const))
        return v, a, c, const

    def llr(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Row-wise same- vs different-speaker log-likelihood ratio (natural log).

        Args:
            enroll: ``(N, D)`` enrollment embeddings (one utterance per trial).
            test: ``(N, D)`` test embeddings.

        Returns:
            ``(N,)`` float64 LLRs, ``log p(enroll, test | same) - log p(enroll, test | diff)``.

        Raises:
            ValueError: when the model is not fitted or the shapes disagree with it.
        """
        v, a, c, const = self._scoring_terms()
        enroll, test = np.asarray(enroll, dtype=np.float64), np.asarray(test, dtype=np.float64)
        d = v.shape[0]
        if enroll.ndim != 2 or enroll.shape != test.shape or enroll.shape[1] != d:
            raise ValueError(
                f"need two (N, {d}) arrays of one shape, got {enroll.shape} and {test.shape}"
            )
        mean = np.asarray(self.mean, dtype=np.float64)
        u1 = (enroll - mean) @ v  # (N, D)
        u2 = (test - mean) @ v  # (N, D)
        return (u1 * u1 + u2 * u2) @ a + (u1 * u2) @ c + const
