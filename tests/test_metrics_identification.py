"""Identification metrics (top-k accuracy, DIR at FPIR) and NIST's C_primary on hand-built cases."""

import numpy as np
import pytest

from xvector.metrics import (
    c_primary,
    compute_act_dcf,
    compute_min_dcf,
    dir_at_fpir,
    identification_accuracy,
    identification_metrics,
    open_set_rates,
    open_set_scores,
)

# Five searches against speakers a..d, top 3 each. q1-q3 are mated (a, b, c), q4-q5 are not (x, y).
RANKED = np.array([["a", "b", "c"],   # q1: a at rank 1
                   ["a", "b", "d"],   # q2: b at rank 2
                   ["d", "a", "b"],   # q3: c not in the top 3
                   ["b", "a", "c"],   # q4: non-mated
                   ["c", "d", "a"]])  # q5: non-mated
SCORES = np.array([[0.9, 0.5, 0.1], [0.8, 0.7, 0.2], [0.6, 0.4, 0.3], [0.75, 0.2, 0.1], [0.3, 0.2, 0.1]])
TRUTH = np.array(["a", "b", "c", "x", "y"])
MATED = np.array([True, True, True, False, False])


def test_top_k_accuracy_counts_mated_searches_only():
    assert identification_accuracy(RANKED[MATED], TRUTH[MATED], 1) == pytest.approx(1 / 3)
    assert identification_accuracy(RANKED[MATED], TRUTH[MATED], 2) == pytest.approx(2 / 3)
    assert identification_accuracy(RANKED[MATED], TRUTH[MATED], 3) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="k=4 outside 1..3"):
        identification_accuracy(RANKED, TRUTH, 4)
    with pytest.raises(ValueError, match="no mated searches"):
        identification_accuracy(RANKED[:0], TRUTH[:0], 1)


def test_open_set_scores_and_rates():
    mated, nonmated = open_set_scores(RANKED, SCORES, TRUTH, MATED)
    assert mated.tolist() == [0.9, -np.inf, -np.inf]  # only q1's speaker is at rank 1
    assert nonmated.tolist() == [0.75, 0.3]
    mated2, _ = open_set_scores(RANKED, SCORES, TRUTH, MATED, rank=2)
    assert mated2.tolist() == [0.9, 0.7, -np.inf]
    assert open_set_rates(mated, nonmated, 0.5) == (pytest.approx(1 / 3), 0.5)
    assert open_set_rates(mated, nonmated, 0.95) == (0.0, 0.0)


def test_dir_at_fpir_by_hand():
    mated = np.array([0.95, 0.9, 0.8, 0.8, 0.6, 0.4, -np.inf, -np.inf])  # 8 mated searches
    nonmated = np.array([0.85, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2])  # 10 non-mated
    # FPIR 0: above 0.85 -> 0.95, 0.9 found: DIR 2/8
    assert dir_at_fpir(mated, nonmated, 0.0) == (0.25, pytest.approx(0.85))
    # FPIR 0.1 allows 1 of 10: above 0.8, and the tie at 0.8 is rejected with it: DIR 2/8
    assert dir_at_fpir(mated, nonmated, 0.1)[0] == 0.25
    # FPIR 0.2 allows 2: above 0.7 -> 0.95, 0.9, 0.8, 0.8: DIR 4/8
    dir_, threshold = dir_at_fpir(mated, nonmated, 0.2)
    assert dir_ == 0.5 and 0.7 < threshold < 0.7 + 1e-12
    assert open_set_rates(mated, nonmated, threshold) == (0.5, 0.2)  # the threshold realises it
    # FPIR 1: everything accepted; undetected searches (-inf) still miss
    assert dir_at_fpir(mated, nonmated, 1.0)[0] == 0.75
    # 0.01 * 300 must allow exactly 3 false positives, not 2 (floating point)
    assert dir_at_fpir(np.array([0.5]), -np.arange(300.0), 0.01)[1] == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="mated and non-mated"):
        dir_at_fpir(mated, nonmated[:0])
    with pytest.raises(ValueError, match=r"FPIR must lie in \[0, 1\]"):
        dir_at_fpir(mated, nonmated, 1.5)


def test_identification_metrics_keys_and_values():
    m = identification_metrics(RANKED, SCORES, TRUTH, MATED, ks=(1, 5), fpirs=(0.5,))
    assert (m["num_searches"], m["num_mated"], m["num_nonmated"]) == (5, 3, 2)
    assert m["top1_acc"] == pytest.approx(1 / 3) and m["top3_acc"] == pytest.approx(2 / 3)  # 5 clipped to 3
    # FPIR 0.5 allows one of two non-mated (0.75, 0.3): threshold above 0.3; q1 (0.9) detected
    assert m["dir_at_fpir_0.5"] == pytest.approx(1 / 3) and m["dir_at_fpir_0.5_threshold"] == pytest.approx(0.3)
    closed = identification_metrics(RANKED[:3], SCORES[:3], TRUTH[:3], MATED[:3])
    assert "dir_at_fpir_0.01" not in closed and closed["num_nonmated"] == 0


def test_c_primary_is_the_mean_of_two_normalised_dcfs():
    rng = np.random.default_rng(0)
    labels = rng.random(4000) < 0.2
    llrs = rng.normal(size=4000) + 3 * labels - 1
    m = c_primary(llrs, labels, is_llr=True)
    expected_min = (compute_min_dcf(llrs, labels, 0.01)[0] + compute_min_dcf(llrs, labels, 0.005)[0]) / 2
    expected_act = (compute_act_dcf(llrs, labels, 0.01) + compute_act_dcf(llrs, labels, 0.005)) / 2
    assert m == {"min_c_primary": pytest.approx(expected_min), "act_c_primary": pytest.approx(expected_act)}
    assert set(c_primary(llrs, labels)) == {"min_c_primary"}  # raw scores: no actual cost
    # By hand: two targets (2, 8), two nontargets (5, -1). At p = 0.01 (beta 99) the best
    # threshold rejects all but 8: P_miss 1/2, P_fa 0 -> 0.5; at p = 0.005 the same -> 0.5.
    hand = c_primary(np.array([2.0, 8.0, 5.0, -1.0]), np.array([1, 1, 0, 0]), is_llr=True)
    assert hand["min_c_primary"] == pytest.approx(0.5)
    # actual: threshold log 99 = 4.6 accepts 8 and 5 -> 1/2 + 99/2; log 199 = 5.3 accepts 8 -> 1/2
    assert hand["act_c_primary"] == pytest.approx(((0.5 + 99 * 0.5) + 0.5) / 2)
