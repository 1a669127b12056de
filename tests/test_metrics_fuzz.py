"""Property-based tests of the metric functions (hypothesis)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xvector.metrics import (
    choose_threshold,
    compute_cllr,
    compute_eer,
    compute_min_cllr,
    compute_min_dcf,
    rates_at_threshold,
    verification_metrics,
)

# Scores on a coarse grid so ties are common; both classes present.
scores_st = arrays(np.float64, st.integers(2, 60), elements=st.integers(-20, 20).map(lambda v: v / 4))


@st.composite
def trials(draw):
    scores = draw(scores_st)
    labels = draw(arrays(np.bool_, scores.shape))
    labels[0], labels[-1] = True, False  # both classes
    return scores, labels


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(trials())
def test_rates_lie_in_unit_interval(case):
    scores, labels = case
    m = verification_metrics(scores, labels)
    assert 0.0 <= m["eer"] <= 1.0
    for p in ("0.01", "0.05", "0.001"):
        assert 0.0 <= m[f"min_dcf_{p}"] <= 1.0 + 1e-12
    assert compute_cllr(np.zeros_like(scores), labels) == pytest.approx(1.0)
    assert 0.0 <= compute_min_cllr(scores, labels) <= 1.0 + 1e-9


@SETTINGS
@given(trials(), st.floats(0.1, 10), st.floats(-5, 5))
def test_invariant_to_monotone_transforms(case, scale, shift):
    scores, labels = case
    eer, _ = compute_eer(scores, labels)
    dcf, _ = compute_min_dcf(scores, labels, 0.05)
    for transformed in (scale * scores + shift, np.exp(scores / 4), np.arctan(scores)):
        assert compute_eer(transformed, labels)[0] == pytest.approx(eer, abs=1e-12)
        assert compute_min_dcf(transformed, labels, 0.05)[0] == pytest.approx(dcf, abs=1e-12)
    assert compute_min_cllr(scale * scores + shift, labels) == pytest.approx(compute_min_cllr(scores, labels), abs=1e-9)


@SETTINGS
@given(trials())
def test_swapping_classes_and_negating_scores_keeps_eer(case):
    # Misses of one system are false alarms of the mirrored one: the EER is symmetric.
    scores, labels = case
    assert compute_eer(-scores, ~labels)[0] == pytest.approx(compute_eer(scores, labels)[0], abs=1e-12)


@SETTINGS
@given(trials())
def test_trial_order_does_not_matter(case):
    scores, labels = case
    perm = np.random.default_rng(len(scores)).permutation(len(scores))
    assert verification_metrics(scores[perm], labels[perm]) == verification_metrics(scores, labels)


@SETTINGS
@given(trials(), st.floats(0.0, 1.0))
def test_threshold_at_far_meets_its_target(case, far):
    scores, labels = case
    threshold = choose_threshold(scores, labels, "far", far=far)
    assert rates_at_threshold(scores, labels, threshold)[0] <= far
