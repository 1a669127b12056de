import numpy as np
import pytest

from xvector.metrics import compute_act_dcf, compute_cllr, compute_min_cllr, compute_min_dcf
from xvector.scoring.calibration import LogisticCalibration


def _gaussian_scores(n, seed, mu=2.0, scale=0.3, shift=5.0):
    """Target N(mu, 1) vs nontarget N(0, 1) (true LLR = mu s - mu²/2), then an affine mis-scaling."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    raw = rng.standard_normal(n) + mu * labels
    return scale * raw + shift, labels, mu * raw - mu**2 / 2


def test_cllr_known_answers():
    labels = np.array([1, 1, 0, 0])
    assert compute_cllr(np.zeros(4), labels) == pytest.approx(1.0)
    # one LLR of ln 3 per class on the right side: log2(1 + 1/3) each
    llr = np.log(3) * np.array([1, 1, -1, -1])
    assert compute_cllr(llr, labels) == pytest.approx(np.log2(4 / 3))


def test_calibrated_cllr_close_to_min_cllr_on_held_out_scores():
    dev_scores, dev_labels, _ = _gaussian_scores(20000, 0)
    eval_scores, eval_labels, true_llr = _gaussian_scores(20000, 1)
    cal = LogisticCalibration().fit(dev_scores, dev_labels)
    assert cal.scale == pytest.approx(2.0 / 0.3, rel=0.05)  # recovers the true map
    llr = cal(eval_scores)
    cllr, min_cllr = compute_cllr(llr, eval_labels), compute_min_cllr(eval_scores, eval_labels)
    assert min_cllr <= cllr <= min_cllr + 0.02
    assert compute_cllr(eval_scores, eval_labels) > cllr + 0.5  # raw scores are miscalibrated
    assert compute_cllr(true_llr, eval_labels) == pytest.approx(cllr, abs=0.01)


def test_act_dcf_at_least_min_dcf_and_close_when_calibrated():
    scores, labels, true_llr = _gaussian_scores(50000, 2)
    for p in (0.01, 0.05, 0.5):
        min_dcf, _ = compute_min_dcf(scores, labels, p_target=p)
        act = compute_act_dcf(true_llr, labels, p_target=p)
        assert act >= min_dcf - 1e-12
        assert act <= min_dcf + 0.05
    assert compute_act_dcf(scores, labels, p_target=0.01) > 0.9  # uncalibrated: shift 5 accepts all


def test_act_dcf_known_answer():
    llr = np.array([3.0, -3.0, 3.0, -3.0])
    labels = np.array([1, 1, 0, 0])
    # p = 0.5: threshold 0; miss 1/2, fa 1/2 → (0.25 + 0.25) / 0.5 = 1
    assert compute_act_dcf(llr, labels, p_target=0.5) == pytest.approx(1.0)


def test_calibration_needs_both_classes():
    with pytest.raises(ValueError, match="only target"):
        LogisticCalibration().fit(np.ones(3), np.ones(3, dtype=bool))
