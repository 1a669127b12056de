"""Verification metrics: error-rate curve, EER and normalised minDCF — pure numpy.

One implementation serves the scoring CLI, validation during training and the tests. Everything
derives from :func:`error_rates`, which sorts the scores once and reads the miss and false-alarm
counts of every operating point off cumulative sums, so a million trials cost one ``argsort``
(no loop over thresholds, no ``N²`` matrices).

Conventions: a trial is accepted when ``score >= threshold``; ``labels`` are bool or ``{0, 1}``
with 1 = target; equal scores are one operating point (a threshold cannot split a tie).

Example:
    >>> import numpy as np
    >>> scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    >>> labels = np.array([1, 1, 1, 0, 0, 0])
    >>> eer, threshold = compute_eer(scores, labels)
    >>> round(eer, 4), float(threshold)
    (0.3333, 0.7)
    >>> min_dcf, _ = compute_min_dcf(scores, labels, p_target=0.5)
    >>> round(min_dcf, 4)
    0.3333
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to ``(float64 scores (N,), bool labels (N,))``."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1:
        raise ValueError(
            f"scores and labels must be 1-D, got shapes {scores.shape} and {labels.shape}"
        )
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {len(scores)} vs {len(labels)}")
    if scores.size == 0:
        raise ValueError("no trials: scores and labels are empty")
    if not np.isfinite(scores).all():
        bad = int(np.argmax(~np.isfinite(scores)))
        raise ValueError(f"non-finite score {scores[bad]} at trial index {bad}")
    if labels.dtype != np.bool_:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be bool or 0/1 (1 = target)")
        labels = labels.astype(np.bool_)
    n_target = int(labels.sum())
    if n_target == 0 or n_target == labels.size:
        kind = "nontarget" if n_target == 0 else "target"
        raise ValueError(f"only {kind} trials ({labels.size}); EER and minDCF need both classes")
    return scores, labels


def error_rates(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-alarm and miss rates at every distinct operating point.

    Args:
        scores: ``(N,)`` trial scores, higher = more likely target.
        labels: ``(N,)`` bool or 0/1, 1 = target trial.

    Returns:
        ``(fpr, fnr, thresholds)``, each ``(K + 1,)`` for ``K`` distinct scores, ordered by
        decreasing threshold (so ``fpr`` rises from 0 and ``fnr`` falls to 0). Point ``k``
        accepts the trials with ``score >= thresholds[k]``. Point 0 accepts nothing
        (``fpr = 0, fnr = 1``); its threshold is the next float above the top score rather than
        ``inf`` (as in sklearn) so thresholds stay finite and JSON-safe. The last point,
        threshold = lowest score, accepts everything (``fpr = 1, fnr = 0``).

    Raises:
        ValueError: for mismatched or empty input, non-finite scores, labels other than 0/1,
            or a single class.

    Example:
        >>> fpr, fnr, thr = error_rates(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 0]))
        >>> fpr.tolist(), fnr.tolist(), thr[1:].tolist()
        ([0.0, 0.5, 1.0], [1.0, 0.0, 0.0], [0.5, 0.1])
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(scores)[::-1]  # descending; the one O(N log N) step
    sorted_scores = scores[order]
    # Last index of each run of equal scores: a threshold accepts a whole tie or none of it.
    ends = np.flatnonzero(np.diff(sorted_scores))
    ends = np.append(ends, sorted_scores.size - 1)
    true_accepts = np.cumsum(labels[order])[ends]  # targets with score >= threshold
    false_accepts = ends + 1 - true_accepts
    n_target = true_accepts[-1]
    n_nontarget = false_accepts[-1]
    fpr = np.concatenate(([0.0], false_accepts / n_nontarget))
    fnr = np.concatenate(([1.0], (n_target - true_accepts) / n_target))
    thresholds = np.concatenate(([np.nextafter(sorted_scores[0], np.inf)], sorted_scores[ends]))
    return fpr, fnr, thresholds


def _eer_from_curve(
    fpr: np.ndarray, fnr: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float]:
    # fnr - fpr falls monotonically from +1 to -1; the first point at or below zero and its
    # predecessor bracket the crossing (index >= 1 because point 0 has fnr - fpr = 1).
    diff = fnr - fpr
    i = int(np.argmax(diff <= 0))
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1)  # d0 > 0 >= d1, so 0 < t <= 1
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    # Between two operating points no threshold exists that realises the interpolated rates;
    # report the operating point nearer the crossing.
    threshold = thresholds[i] if t >= 0.5 else thresholds[i - 1]
    return float(eer), float(threshold)


def _min_dcf_from_curve(
    fpr: np.ndarray,
    fnr: np.ndarray,
    thresholds: np.ndarray,
    p_target: float,
    c_miss: float,
    c_fa: float,
) -> tuple[float, float]:
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must lie in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    c_det = c_miss * p_target * fnr + c_fa * (1.0 - p_target) * fpr
    # Normalise by the cost of the best trivial system (accept all or reject all), as Kaldi's
    # sid/compute_min_dcf.py, so 1.0 means "no better than not looking at the scores".
    c_default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    k = int(np.argmin(c_det))
    return float(c_det[k] / c_default), float(thresholds[k])


def compute_eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate: where ``fpr`` and ``fnr`` cross on the curve of :func:`error_rates`.

    The curve is piecewise linear between operating points; the EER is the linear
    interpolation between the two points that bracket ``fnr == fpr`` (the same value an
    interpolated ``sklearn.metrics.roc_curve`` gives).

    Returns:
        ``(eer, threshold)``: EER as a fraction in ``[0, 1]`` and the threshold of the
        bracketing operating point nearer the crossing.

    Raises:
        ValueError: as :func:`error_rates`.

    Example:
        >>> compute_eer(np.array([2.0, 3.0, 0.0, 1.0]), np.array([1, 1, 0, 0]))
        (0.0, 2.0)
    """
    return _eer_from_curve(*error_rates(scores, labels))


def compute_min_dcf(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[float, float]:
    """Normalised minimum detection cost, as Kaldi's ``sid/compute_min_dcf.py``.

    ``min_k (c_miss · p_miss_k · p_target + c_fa · p_fa_k · (1 - p_target))`` over all
    operating points, divided by ``min(c_miss · p_target, c_fa · (1 - p_target))``.

    Returns:
        ``(min_dcf, threshold)``: the normalised cost (in ``[0, 1]``) and the threshold of the
        operating point achieving it (the highest such threshold on ties).

    Raises:
        ValueError: as :func:`error_rates`, or for ``p_target`` outside ``(0, 1)`` or
            non-positive costs.

    Example:
        >>> compute_min_dcf(np.array([2.0, 3.0, 0.0, 1.0]), np.array([1, 1, 0, 0]))
        (0.0, 2.0)
    """
    return _min_dcf_from_curve(*error_rates(scores, labels), p_target, c_miss, c_fa)


def verification_metrics(
    scores: np.ndarray, labels: np.ndarray, p_targets: Sequence[float] = (0.01, 0.05, 0.001)
) -> dict[str, float]:
    """EER, minDCF at each ``p_target`` (C_miss = C_fa = 1) and trial counts, from one sort.

    Returns:
        ``{"eer", "eer_threshold", "min_dcf_<p>", "min_dcf_<p>_threshold", ...,
        "num_trials", "num_target", "num_nontarget"}`` with ``<p>`` formatted ``{p:g}``.

    Example:
        >>> m = verification_metrics(np.array([2.0, 3.0, 0.0, 1.0]), np.array([1, 1, 0, 0]))
        >>> m["eer"], m["min_dcf_0.01"], m["num_target"]
        (0.0, 0.0, 2)
    """
    labels = np.asarray(labels)
    curve = error_rates(scores, labels)
    eer, eer_threshold = _eer_from_curve(*curve)
    out: dict[str, float] = {"eer": eer, "eer_threshold": eer_threshold}
    for p in p_targets:
        min_dcf, threshold = _min_dcf_from_curve(*curve, float(p), 1.0, 1.0)
        out[f"min_dcf_{p:g}"] = min_dcf
        out[f"min_dcf_{p:g}_threshold"] = threshold
    n_target = int(np.count_nonzero(labels))
    n_trials = int(labels.size)
    out.update(num_trials=n_trials, num_target=n_target, num_nontarget=n_trials - n_target)
    return out


def compute_cllr(llrs: np.ndarray, labels: np.ndarray) -> float:
    """Log-likelihood-ratio cost (Brümmer & du Preez 2006) of calibrated scores, in bits.

    ``Cllr = (mean_tar log2(1 + e^-llr) + mean_non log2(1 + e^llr)) / 2``: 0 for perfect,
    1 for an uninformative system that always says LLR = 0, more for a miscalibrated one.

    Example:
        >>> compute_cllr(np.zeros(4), np.array([1, 1, 0, 0]))
        1.0
    """
    return _cllr(*_check(llrs, labels))


def _cllr(llrs: np.ndarray, labels: np.ndarray) -> float:
    # logaddexp keeps infinite LLRs exact: log2(1 + e^-inf) = 0 for a target.
    tar, non = llrs[labels], llrs[~labels]
    return float((np.logaddexp(0, -tar).mean() + np.logaddexp(0, non).mean()) / (2 * np.log(2)))


def compute_min_cllr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Cllr after the best monotone calibration of ``scores`` (PAV / isotonic regression).

    What remains is the discrimination loss alone; ``Cllr - minCllr`` is the calibration loss.
    """
    from sklearn.isotonic import IsotonicRegression  # the PAV algorithm, with ties pooled

    scores, labels = _check(scores, labels)
    posterior = IsotonicRegression(increasing=True, out_of_bounds="clip").fit_transform(scores, labels.astype(float))
    prior = labels.mean()
    with np.errstate(divide="ignore"):  # pure groups give LLR = ±inf, on their correct side
        llrs = np.log(posterior) - np.log1p(-posterior) - np.log(prior / (1 - prior))
    return _cllr(llrs, labels)


def compute_act_dcf(
    llrs: np.ndarray, labels: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised actual DCF: the cost of Bayes decisions ``llr >= log(c_fa (1-p) / (c_miss p))``.

    Equals minDCF only when the LLRs are well calibrated (it is never smaller).

    Example:
        >>> compute_act_dcf(np.array([5.0, 5.0, -5.0, -5.0]), np.array([1, 1, 0, 0]), p_target=0.5)
        0.0
    """
    llrs, labels = _check(llrs, labels)
    threshold = np.log(c_fa * (1 - p_target) / (c_miss * p_target))
    p_miss = np.mean(llrs[labels] < threshold)
    p_fa = np.mean(llrs[~labels] >= threshold)
    cost = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    return float(cost / min(c_miss * p_target, c_fa * (1 - p_target)))


def llr_metrics(llrs: np.ndarray, labels: np.ndarray, p_targets: Sequence[float] = (0.01, 0.05, 0.001)) -> dict[str, float]:
    """Calibration metrics of log-likelihood ratios: ``cllr``, ``min_cllr``, ``act_dcf_<p>``.

    Example:
        >>> m = llr_metrics(np.array([4.0, 1.0, -1.0, -4.0]), np.array([1, 1, 0, 0]), p_targets=(0.5,))
        >>> round(m["cllr"], 4), m["min_cllr"], m["act_dcf_0.5"]  # cllr: mean(log2(1 + e^-4), log2(1 + e^-1))
        (0.2391, 0.0, 0.0)
    """
    out = {"cllr": compute_cllr(llrs, labels), "min_cllr": compute_min_cllr(llrs, labels)}
    for p in p_targets:
        out[f"act_dcf_{p:g}"] = compute_act_dcf(llrs, labels, p_target=float(p))
    return out


THRESHOLD_CRITERIA = ("eer", "far", "min_dcf")


def choose_threshold(
    scores: np.ndarray,
    labels: np.ndarray,
    criterion: str = "eer",
    far: float = 0.01,
    p_target: float = 0.01,
) -> float:
    """A decision threshold (accept when ``score >= threshold``) chosen on labelled scores.

    Args:
        criterion: ``"eer"`` — the operating point at the EER (:func:`compute_eer`);
            ``"far"`` — the lowest threshold whose false-accept rate is at most ``far`` (the
            fewest misses that FAR allows); ``"min_dcf"`` — the point of minimum normalised
            DCF at ``p_target`` (C_miss = C_fa = 1).

    Raises:
        ValueError: for an unknown criterion, ``far`` outside ``[0, 1]``, or as
            :func:`error_rates`.

    Example:
        >>> s, y = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2]), np.array([1, 1, 0, 1, 0, 0])
        >>> choose_threshold(s, y, "far", far=0.0), choose_threshold(s, y, "far", far=0.34)
        (0.8, 0.6)
    """
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(f"threshold criterion must be one of {THRESHOLD_CRITERIA}, got {criterion!r}")
    curve = error_rates(scores, labels)
    if criterion == "eer":
        return _eer_from_curve(*curve)[1]
    if criterion == "min_dcf":
        return _min_dcf_from_curve(*curve, p_target, 1.0, 1.0)[1]
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"target false-accept rate must lie in [0, 1], got {far}")
    fpr, _, thresholds = curve
    # fpr rises with the index; the last point within the target misses the fewest targets.
    return float(thresholds[np.flatnonzero(fpr <= far)[-1]])


def rates_at_threshold(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(far, frr)``: false-accept and false-reject rates of ``score >= threshold`` decisions.

    Example:
        >>> rates_at_threshold(np.array([0.9, 0.4, 0.6, 0.1]), np.array([1, 1, 0, 0]), 0.5)
        (0.5, 0.5)
    """
    scores, labels = _check(scores, labels)
    accept = scores >= threshold
    return float(np.mean(accept[~labels])), float(np.mean(~accept[labels]))


# ---------------------------------------------------------------------------------------------
# NIST SRE's primary cost
# ---------------------------------------------------------------------------------------------

#: The two target priors of NIST SRE16-21's C_primary (beta = 99 and 199 at C_miss = C_fa = 1).
SRE_P_TARGETS = (0.01, 0.005)


def c_primary(
    scores: np.ndarray, labels: np.ndarray, is_llr: bool = False, p_targets: Sequence[float] = SRE_P_TARGETS
) -> dict[str, float]:
    """NIST SRE's primary cost: the mean of the normalised DCFs at two target priors.

    ``min_c_primary`` averages the minDCFs (the best threshold per prior, read off one
    :func:`error_rates` curve); ``act_c_primary``, computed only when the scores are LLRs,
    averages the actual DCFs of the Bayes decisions ``llr >= log((1 - p) / p)``. Both are
    normalised as NIST's ``C_norm = P_miss + beta P_fa`` (the DCF divided by ``C_miss p``).

    Example:
        >>> s, y = np.array([3.0, 1.0, -2.0, 6.0, -4.0, -5.0]), np.array([1, 1, 1, 0, 0, 0])
        >>> m = c_primary(s, y, is_llr=True)
        >>> round(m["min_c_primary"], 4), round(m["act_c_primary"], 4)  # act: (1 + 99/3 + 1 + 199/3) / 2
        (1.0, 50.6667)
    """
    curve = error_rates(scores, labels)
    out = {"min_c_primary": float(np.mean([_min_dcf_from_curve(*curve, float(p), 1.0, 1.0)[0] for p in p_targets]))}
    if is_llr:
        out["act_c_primary"] = float(np.mean([compute_act_dcf(scores, labels, float(p)) for p in p_targets]))
    return out


# ---------------------------------------------------------------------------------------------
# Identification (1:N search)
# ---------------------------------------------------------------------------------------------
# A *search* (query) is mated when its speaker is enrolled, non-mated otherwise. Closed-set
# accuracy counts mated searches only; the open-set pair (ISO/IEC 19795-1, NIST FRVT 1:N) is
#   DIR(t)  = mated searches whose speaker is at rank <= R with score >= t, over all mated ones;
#   FPIR(t) = non-mated searches whose best candidate scores >= t, over all non-mated ones.


def identification_accuracy(ranked: np.ndarray, truth: np.ndarray, k: int = 1) -> float:
    """Top-``k`` accuracy: the fraction of (mated) searches whose speaker is among the first ``k``.

    Args:
        ranked: ``(Q, K)`` candidates of each search, best first (speaker ids or indices), ``K >= k``.
        truth: ``(Q,)`` each search's true speaker, of the same kind.

    Example:
        >>> ranked = np.array([["a", "b"], ["a", "c"], ["c", "b"]])
        >>> identification_accuracy(ranked, np.array(["a", "c", "b"]), k=1), identification_accuracy(ranked, np.array(["a", "c", "b"]), k=2)
        (0.3333333333333333, 1.0)
    """
    ranked, truth = np.asarray(ranked), np.asarray(truth)
    if ranked.ndim != 2 or truth.shape != (ranked.shape[0],):
        raise ValueError(f"need (Q, K) candidates and (Q,) truths, got {ranked.shape} and {truth.shape}")
    if ranked.shape[0] == 0:
        raise ValueError("no mated searches: accuracy needs queries whose speaker is enrolled")
    if not 1 <= k <= ranked.shape[1]:
        raise ValueError(f"k={k} outside 1..{ranked.shape[1]} (candidates per search)")
    return float(np.mean((ranked[:, :k] == truth[:, None]).any(axis=1)))


def open_set_scores(
    ranked: np.ndarray, ranked_scores: np.ndarray, truth: np.ndarray, mated: np.ndarray, rank: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of :func:`dir_at_fpir`: ``(mated_scores (M,), nonmated_scores (N,))``.

    Args:
        ranked: ``(Q, K)`` candidates, best first; ``ranked_scores``: ``(Q, K)`` their scores.
        truth: ``(Q,)`` true speakers; ``mated``: ``(Q,)`` bool, True where the speaker is enrolled.
        rank: a mated search counts when its speaker is within the first ``rank`` candidates.

    Returns:
        For each mated search the score of its speaker when found within ``rank`` (else
        ``-inf``: never detected), and for each non-mated search its best score.
    """
    ranked, ranked_scores, truth, mated = map(np.asarray, (ranked, ranked_scores, truth, mated))
    q = (ranked.shape[0],) if ranked.ndim == 2 else None
    if ranked.shape != ranked_scores.shape or q is None or truth.shape != q or mated.shape != q:
        raise ValueError(f"need (Q, K) candidates and scores and (Q,) truths and mated flags, got "
                         f"{ranked.shape}, {ranked_scores.shape}, {truth.shape}, {mated.shape}")
    if not 1 <= rank <= ranked.shape[1]:
        raise ValueError(f"rank={rank} outside 1..{ranked.shape[1]} (candidates per search)")
    mated = mated.astype(bool)
    hit = ranked[mated, :rank] == truth[mated, None]  # (M, rank)
    found = np.where(hit, ranked_scores[mated, :rank], -np.inf).max(axis=1, initial=-np.inf)
    return found.astype(np.float64), ranked_scores[~mated, 0].astype(np.float64)


def open_set_rates(mated_scores: np.ndarray, nonmated_scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(dir, fpir)`` of accepting candidates with ``score >= threshold``.

    Example:
        >>> open_set_rates(np.array([0.9, 0.5, -np.inf]), np.array([0.6, 0.2]), 0.55)
        (0.3333333333333333, 0.5)
    """
    mated_scores, nonmated_scores = np.asarray(mated_scores, float), np.asarray(nonmated_scores, float)
    if mated_scores.size == 0 or nonmated_scores.size == 0:
        raise ValueError("DIR and FPIR need mated and non-mated searches")
    return float(np.mean(mated_scores >= threshold)), float(np.mean(nonmated_scores >= threshold))


def dir_at_fpir(mated_scores: np.ndarray, nonmated_scores: np.ndarray, fpir: float = 0.01) -> tuple[float, float]:
    """Detection-and-identification rate at the lowest threshold whose FPIR is at most ``fpir``.

    With ``N`` non-mated searches at most ``a = floor(fpir N)`` may be accepted, so the threshold
    lies just above the ``(a + 1)``-th highest non-mated score (ties with it are rejected too).

    Returns:
        ``(dir, threshold)``.

    Raises:
        ValueError: for empty inputs, non-finite non-mated scores or ``fpir`` outside ``[0, 1]``.

    Example:
        >>> mated = np.array([0.9, 0.8, 0.55, 0.3, -np.inf])   # the last one's speaker was not at rank 1
        >>> nonmated = np.array([0.7, 0.5, 0.4, 0.2])
        >>> dir_at_fpir(mated, nonmated, fpir=0.25)             # accept 1 of 4: threshold above 0.5
        (0.6, 0.5000000000000001)
        >>> dir_at_fpir(mated, nonmated, fpir=0.0)[0]          # above 0.7
        0.4
    """
    mated_scores, nonmated_scores = np.asarray(mated_scores, float), np.asarray(nonmated_scores, float)
    if mated_scores.size == 0 or nonmated_scores.size == 0:
        raise ValueError("DIR at FPIR needs mated and non-mated searches")
    if not np.isfinite(nonmated_scores).all() or np.isnan(mated_scores).any():
        raise ValueError("non-finite score among the searches")
    if not 0.0 <= fpir <= 1.0:
        raise ValueError(f"FPIR must lie in [0, 1], got {fpir}")
    n = nonmated_scores.size
    allowed = int(np.floor(fpir * n + 1e-9))  # 1e-9: 0.01 * 300 must allow 3, not 2.9999...
    if allowed >= n:  # everything may be accepted: the lowest finite score
        finite = mated_scores[np.isfinite(mated_scores)]
        threshold = float(min(nonmated_scores.min(), finite.min() if finite.size else np.inf))
    else:
        threshold = float(np.nextafter(np.sort(nonmated_scores)[::-1][allowed], np.inf))
    return float(np.mean(mated_scores >= threshold)), threshold


def identification_metrics(
    ranked: np.ndarray,
    ranked_scores: np.ndarray,
    truth: np.ndarray,
    mated: np.ndarray,
    ks: Sequence[int] = (1, 5),
    fpirs: Sequence[float] = (0.01, 0.1),
) -> dict[str, float]:
    """Closed-set top-k accuracy over the mated searches and, when there are non-mated ones,
    DIR (rank 1) at each FPIR with its threshold.

    Returns:
        ``{"num_searches", "num_mated", "num_nonmated", "top<k>_acc", ..., "dir_at_fpir_<f>",
        "dir_at_fpir_<f>_threshold", ...}`` (``<f>`` formatted ``{f:g}``; ``k`` clipped to the
        candidates returned).
    """
    ranked, ranked_scores, truth, mated = map(np.asarray, (ranked, ranked_scores, truth, mated))
    mated = mated.astype(bool)
    out: dict[str, float] = {"num_searches": int(mated.size), "num_mated": int(mated.sum()),
                             "num_nonmated": int((~mated).sum())}
    for k in sorted({min(int(k), ranked.shape[1]) for k in ks}):
        out[f"top{k}_acc"] = identification_accuracy(ranked[mated], truth[mated], k)
    if out["num_nonmated"]:
        m, n = open_set_scores(ranked, ranked_scores, truth, mated)
        for f in fpirs:
            out[f"dir_at_fpir_{f:g}"], out[f"dir_at_fpir_{f:g}_threshold"] = dir_at_fpir(m, n, float(f))
    return out
