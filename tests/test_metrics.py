
import numpy as np
import pytest
from sklearn.metrics import roc_curve

from xvector.metrics import (
    choose_threshold,
    compute_cllr,
    compute_eer,
    compute_min_cllr,
    compute_min_dcf,
    error_rates,
    llr_metrics,
    rates_at_threshold,
    verification_metrics,
)


def sklearn_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER from sklearn's ROC with the same linear interpolation across the crossing."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    diff = (1.0 - tpr) - fpr
    i = int(np.flatnonzero(diff <= 0)[0])
    return float(fpr[i - 1] + (fpr[i] - fpr[i - 1]) * diff[i - 1] / (diff[i - 1] - diff[i]))


def brute_force_min_dcf(scores, labels, p_target, c_miss=1.0, c_fa=1.0) -> float:
    """Loop over every threshold (each distinct score, plus one above all: reject everything)."""
    labels = np.asarray(labels, dtype=bool)
    tgt, non = scores[labels], scores[~labels]
    best = np.inf
    for thr in [*np.unique(scores), np.inf]:
        p_miss = np.mean(tgt < thr)
        p_fa = np.mean(non >= thr)
        best = min(best, c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target))
    return best / min(c_miss * p_target, c_fa * (1 - p_target))


def cost_at(scores, labels, thr, p_target, c_miss=1.0, c_fa=1.0) -> float:
    labels = np.asarray(labels, dtype=bool)
    p_miss = np.mean(scores[labels] < thr)
    p_fa = np.mean(scores[~labels] >= thr)
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    return cost / min(c_miss * p_target, c_fa * (1 - p_target))


# --- hand-computed known answers -----------------------------------------------------------


def test_perfect_separation_has_zero_eer_and_dcf():
    # Targets {3, 4} above nontargets {1, 2}: at threshold 3 nothing is missed or falsely accepted.
    scores = np.array([4.0, 1.0, 3.0, 2.0])
    labels = np.array([True, False, True, False])
    assert compute_eer(scores, labels) == (0.0, 3.0)
    assert compute_min_dcf(scores, labels) == (0.0, 3.0)


def test_error_rates_points_with_ties():
    # Descending: 0.9 T | 0.5 T, 0.5 N (tie: one step) | 0.1 N.   n_target = n_nontarget = 2
    # thr        >0.9   0.9   0.5   0.1
    # fpr         0     0     1/2   1
    # fnr         1     1/2   0     0
    scores = np.array([0.5, 0.9, 0.1, 0.5])
    labels = np.array([0, 1, 0, 1])
    fpr, fnr, thr = error_rates(scores, labels)
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 1])
    np.testing.assert_array_equal(fnr, [1, 0.5, 0, 0])
    np.testing.assert_array_equal(thr[1:], [0.9, 0.5, 0.1])
    assert thr[0] > 0.9 and np.isfinite(thr[0]) and not (scores >= thr[0]).any()


def test_eer_interpolates_across_a_tie():
    # Same curve: fnr - fpr = 1, 1/2, -1/2, -1 -> the crossing lies halfway between (0, 1/2) and
    # (1/2, 0): EER = 1/4. Splitting the 0.5 tie target-first would give 0, nontarget-first 1/2.
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0])
    eer, thr = compute_eer(scores, labels)
    assert eer == pytest.approx(0.25, abs=1e-15)
    assert thr == 0.5  # t = 1/2: report the later point
    # p_target 0.25: 0.25*fnr + 0.75*fpr = 0.25, 0.125, 0.375, 0.75 -> 0.125 / 0.25 = 0.5 at 0.9
    assert compute_min_dcf(scores, labels, p_target=0.25) == pytest.approx((0.5, 0.9), abs=1e-15)


def test_eer_with_unequal_steps():
    # Descending 4 T | 2 T, 2 N (tie) | 0 N, 0 N.   n_target = 2, n_nontarget = 3
    # points (fpr, fnr): (0, 1), (0, 1/2) @4, (1/3, 0) @2, (1, 0) @0
    # fnr - fpr: 1, 1/2, -1/3 -> t = (1/2) / (1/2 + 1/3) = 3/5 along (0, 1/2) -> (1/3, 0)
    # EER = 3/5 * 1/3 = 1/5 (and fnr there = 1/2 - 3/5 * 1/2 = 1/5, the same).
    scores = np.array([4.0, 2.0, 2.0, 0.0, 0.0])
    labels = np.array([1, 1, 0, 0, 0])
    eer, thr = compute_eer(scores, labels)
    assert eer == pytest.approx(0.2, abs=1e-15)
    assert thr == 2.0
    # p_target 0.01: 0.01*fnr + 0.99*fpr = 0.01, 0.005, 0.33, 0.99 -> 0.005 / 0.01 = 0.5 at 4
    assert compute_min_dcf(scores, labels) == pytest.approx((0.5, 4.0), abs=1e-15)
    # c_miss 10, c_fa 1, p 0.5: 5*fnr + 0.5*fpr = 5, 2.5, 1/6, 0.5 -> (1/6) / 0.5 = 1/3 at 2
    got = compute_min_dcf(scores, labels, p_target=0.5, c_miss=10.0)
    assert got == pytest.approx((1 / 3, 2.0), abs=1e-15)


def test_all_scores_tied_gives_half():
    # One step from (0, 1) to (1, 0): crossing at 1/2; minDCF = 1 (no better than trivial).
    scores = np.zeros(6)
    labels = np.array([1, 0, 1, 0, 0, 1])
    assert compute_eer(scores, labels)[0] == pytest.approx(0.5, abs=1e-15)
    assert compute_min_dcf(scores, labels)[0] == pytest.approx(1.0, abs=1e-15)


def test_reversed_scores_give_full_error():
    scores = np.array([0.0, 1.0])
    labels = np.array([1, 0])
    assert compute_eer(scores, labels)[0] == pytest.approx(1.0)
    assert compute_min_dcf(scores, labels, p_target=0.5)[0] == pytest.approx(1.0)


# --- parity with references -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_roc_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    labels = rng.random(n) < rng.uniform(0.05, 0.5)
    labels[:2] = [True, False]
    scores = rng.standard_normal(n) + rng.uniform(0, 3) * labels
    if seed % 2 == 0:
        scores = np.round(scores, 1)  # many ties, some across classes
    fpr, fnr, thr = error_rates(scores, labels)
    sk_fpr, sk_tpr, sk_thr = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fnr, 1 - sk_tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert compute_eer(scores, labels)[0] == pytest.approx(sklearn_eer(scores, labels), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("p_target", "c_miss", "c_fa"), [(0.01, 1, 1), (0.05, 1, 1), (0.001, 1, 1), (0.3, 2, 5)]
)
def test_min_dcf_matches_brute_force(seed, p_target, c_miss, c_fa):
    rng = np.random.default_rng(100 + seed)
    n = 300
    labels = rng.random(n) < 0.3
    scores = np.round(rng.standard_normal(n) + 1.5 * labels, 1)
    dcf, thr = compute_min_dcf(scores, labels, p_target, c_miss, c_fa)
    expected = brute_force_min_dcf(scores, labels, p_target, c_miss, c_fa)
    assert dcf == pytest.approx(expected, abs=1e-12)
    # The returned threshold realises that cost.
    assert cost_at(scores, labels, thr, p_target, c_miss, c_fa) == pytest.approx(dcf, abs=1e-12)


def test_verification_metrics_keys_and_consistency():
    rng = np.random.default_rng(7)
    labels = rng.random(500) < 0.2
    scores = rng.standard_normal(500) + 2 * labels
    m = verification_metrics(scores, labels.astype(int))
    assert set(m) == {
        "eer", "eer_threshold", "num_trials", "num_target", "num_nontarget",
        *(f"min_dcf_{p}{s}" for p in ("0.01", "0.05", "0.001") for s in ("", "_threshold")),
    }
    assert (m["eer"], m["eer_threshold"]) == compute_eer(scores, labels)
    for p in (0.01, 0.05, 0.001):
        pair = (m[f"min_dcf_{p:g}"], m[f"min_dcf_{p:g}_threshold"])
        assert pair == compute_min_dcf(scores, labels, p)
    n_target = int(labels.sum())
    assert (m["num_trials"], m["num_target"], m["num_nontarget"]) == (500, n_target, 500 - n_target)
    assert all(np.isfinite(v) for v in m.values())  # JSON-safe


# --- operating points ---------------------------------------------------------------------

# Scores descending: 0.9 T, 0.8 T, 0.7 N, 0.6 T, 0.3 N, 0.2 N (3 targets, 3 nontargets).
OP_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2])
OP_LABELS = np.array([1, 1, 0, 1, 0, 0])


@pytest.mark.parametrize(
    ("threshold", "far", "frr"),
    [(0.95, 0.0, 1.0), (0.8, 0.0, 1 / 3), (0.7, 1 / 3, 1 / 3), (0.6, 1 / 3, 0.0), (0.2, 1.0, 0.0)],
)
def test_rates_at_threshold_known_answers(threshold, far, frr):
    assert rates_at_threshold(OP_SCORES, OP_LABELS, threshold) == pytest.approx((far, frr), abs=1e-12)


@pytest.mark.parametrize(
    ("target_far", "expected"),
    [(0.0, 0.8), (0.2, 0.8), (1 / 3, 0.6), (0.5, 0.6), (2 / 3, 0.3), (1.0, 0.2)],
)
def test_threshold_at_target_far_is_lowest_within_target(target_far, expected):
    thr = choose_threshold(OP_SCORES, OP_LABELS, "far", far=target_far)
    assert thr == expected
    assert rates_at_threshold(OP_SCORES, OP_LABELS, thr)[0] <= target_far


@pytest.mark.parametrize("seed", range(3))
def test_threshold_at_far_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(3000) < 0.3
    scores = np.round(rng.standard_normal(3000) + 1.5 * labels, 2)  # ties
    for target in (0.001, 0.01, 0.1):
        # Brute force: over every candidate threshold, the fewest misses with FAR <= target.
        best = max(
            (t for t in np.unique(scores) if np.mean(scores[~labels] >= t) <= target),
            key=lambda t: np.mean(scores[labels] >= t),
        )
        got = choose_threshold(scores, labels, "far", far=target)
        assert np.mean(scores[labels] >= got) == np.mean(scores[labels] >= best)
        assert np.mean(scores[~labels] >= got) <= target


def test_threshold_at_eer_and_min_dcf_match_their_metrics():
    rng = np.random.default_rng(3)
    labels = rng.random(800) < 0.4
    scores = rng.standard_normal(800) + 2 * labels
    assert choose_threshold(scores, labels, "eer") == compute_eer(scores, labels)[1]
    assert choose_threshold(scores, labels, "min_dcf", p_target=0.05) == compute_min_dcf(scores, labels, 0.05)[1]
    with pytest.raises(ValueError, match="criterion must be one of"):
        choose_threshold(scores, labels, "median")
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        choose_threshold(scores, labels, "far", far=1.5)


def test_llr_metrics_keys_and_values():
    rng = np.random.default_rng(4)
    labels = rng.random(1000) < 0.5
    llrs = 2.0 * (rng.standard_normal(1000) + 2 * labels) - 4.0
    m = llr_metrics(llrs, labels, p_targets=(0.01, 0.05))
    assert set(m) == {"cllr", "min_cllr", "act_dcf_0.01", "act_dcf_0.05"}
    assert m["cllr"] == compute_cllr(llrs, labels)
    assert m["min_cllr"] == compute_min_cllr(llrs, labels) <= m["cllr"]
    for p in (0.01, 0.05):
        assert m[f"act_dcf_{p:g}"] >= compute_min_dcf(llrs, labels, p)[0] - 1e-12


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [error_rates, compute_eer, compute_min_dcf, verification_metrics])
@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, 0.2], [1], "differ in length"),
        ([], [], "empty"),
        ([0.1, np.nan], [1, 0], "non-finite"),
        ([0.1, np.inf], [1, 0], "non-finite"),
        ([0.1, 0.2], [1, 1], "only target"),
        ([0.1, 0.2], [False, False], "only nontarget"),
        ([0.1, 0.2], [1, 2], "0/1"),
        ([[0.1, 0.2]], [[1, 0]], "1-D"),
    ],
)
def test_bad_input_raises(fn, scores, labels, match):
    with pytest.raises(ValueError, match=match):
        fn(np.array(scores, dtype=float), np.array(labels))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"p_target": 0.0}, "p_target"), ({"p_target": 1.0}, "p_target"), ({"c_fa": 0.0}, "costs")],
)
def test_bad_costs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_min_dcf(np.array([0.1, 0.2]), np.array([0, 1]), **kwargs)
