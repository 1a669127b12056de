import numpy as np
import pytest

from xvector.scoring.norm import ScoreNorm, cohort_stats, speaker_means, symmetric_norm


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_cohort_stats_match_brute_force():
    rng = np.random.default_rng(0)
    emb, cohort = rng.standard_normal((7, 5)), rng.standard_normal((30, 5))
    all_scores = _unit(emb) @ _unit(cohort).T  # (7, 30)
    mean, std = cohort_stats(emb, cohort, block_rows=3)  # blocks must not change the answer
    np.testing.assert_allclose(mean, all_scores.mean(1), atol=1e-12)
    np.testing.assert_allclose(std, all_scores.std(1), atol=1e-12)
    top = np.sort(all_scores, axis=1)[:, -5:]
    mean_k, std_k = cohort_stats(emb, cohort, top_k=5, block_rows=2)
    np.testing.assert_allclose(mean_k, top.mean(1), atol=1e-12)
    np.testing.assert_allclose(std_k, top.std(1), atol=1e-12)
    # top_k at or beyond the cohort size is plain s-norm
    np.testing.assert_allclose(cohort_stats(emb, cohort, top_k=30)[0], mean, atol=1e-12)


def test_symmetric_norm_known_answer_and_symmetry():
    mean, std = np.array([0.1, 0.3]), np.array([0.2, 0.1])
    out = symmetric_norm(np.array([0.5]), np.array([0]), np.array([1]), mean, std)
    # ((0.5 - 0.1) / 0.2 + (0.5 - 0.3) / 0.1) / 2 = (2 + 2) / 2
    np.testing.assert_allclose(out, [2.0])
    swapped = symmetric_norm(np.array([0.5]), np.array([1]), np.array([0]), mean, std)
    np.testing.assert_allclose(out, swapped)


def test_snorm_is_symmetric_on_random_trials():
    rng = np.random.default_rng(1)
    emb, cohort = rng.standard_normal((10, 6)), rng.standard_normal((40, 6))
    mean, std = cohort_stats(emb, cohort, top_k=8)
    e, t = rng.integers(0, 10, 50), rng.integers(0, 10, 50)
    raw = np.einsum("nd,nd->n", _unit(emb)[e], _unit(emb)[t])
    np.testing.assert_allclose(symmetric_norm(raw, e, t, mean, std), symmetric_norm(raw, t, e, mean, std))


def test_bad_inputs():
    with pytest.raises(ValueError, match="cohort"):
        cohort_stats(np.ones((2, 3)), np.ones((0, 3)))
    with pytest.raises(ValueError, match="cohort"):
        cohort_stats(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="top_k"):
        cohort_stats(np.ones((2, 3)), np.ones((4, 3)), top_k=1)


def test_speaker_means_average_unit_vectors_per_speaker():
    emb = np.array([[2.0, 0.0], [0.0, 3.0], [5.0, 0.0]])
    got = speaker_means(emb, np.array(["b", "a", "b"]))
    np.testing.assert_allclose(got, [[0.0, 1.0], [1.0, 0.0]])  # sorted labels: a, b


def test_score_norm_needs_a_cohort_and_a_known_kind():
    with pytest.raises(ValueError, match="cohort must be"):
        ScoreNorm(cohort="everyone")
    with pytest.raises(ValueError, match="call fit"):
        ScoreNorm()(np.zeros(1), ["a"], np.ones((1, 2)), [])
