"""Logistic-regression calibration: scores → log-likelihood ratios.

An affine map ``llr = a * score + b`` fitted on a development trial list by prior-weighted
logistic regression (as BOSARIS / Kaldi's ``logistic-regression`` back-ends): targets and
nontargets are weighted to an effective prior of 0.5, so the fitted log-odds are LLRs. The
map is monotone, so EER and minDCF are unchanged; what improves is actDCF and Cllr.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.random(2000) < 0.5
    >>> scores = 0.1 * (rng.standard_normal(2000) + 2 * labels)  # N(0.2, 0.1²) vs N(0, 0.1²)
    >>> cal = LogisticCalibration().fit(scores, labels)
    >>> abs(cal.scale - 20) < 2, abs(cal.offset + 2) < 0.3   # the true LLR is 20 s - 2
    (True, True)
"""

from __future__ import annotations

import numpy as np


class LogisticCalibration:
    """``llr = scale * score + offset``, fitted with scikit-learn's logistic regression."""

    def __init__(self, scale: float = 1.0, offset: float = 0.0) -> None:
        self.scale = scale
        self.offset = offset

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> LogisticCalibration:
        """Fit on development ``scores (N,)`` with bool ``labels (N,)``; returns ``self``.

        Raises:
            ValueError: when the scores are non-finite or only one class is present.
        """
        from sklearn.linear_model import LogisticRegression

        from xvector.metrics import _check

        scores, labels = _check(scores, labels)
        # Balanced class weights = effective prior 0.5, so log posterior odds are LLRs; a very
        # weak penalty keeps the fit unregularised, as a calibration should be.
        model = LogisticRegression(C=1e6, class_weight="balanced").fit(scores[:, None], labels)
        scale, offset = float(model.coef_[0, 0]), float(model.intercept_[0])
        if not (np.isfinite(scale) and np.isfinite(offset)):
            raise ValueError(f"calibration fit gave scale {scale}, offset {offset}: not finite")
        self.scale, self.offset = scale, offset
        return self

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """LLRs ``(N,)`` of ``scores (N,)``."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset

    def to_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "offset": self.offset}
