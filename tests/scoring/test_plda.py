import numpy as np
import pytest
from scipy.stats import multivariate_normal

from xvector.metrics import compute_eer
from xvector.scoring.cosine import cosine_scores
from xvector.scoring.plda import TwoCovPLDA


def random_spd(rng, d, scale, ridge):
    a = rng.standard_normal((d, d))
    return scale * a @ a.T + ridge * np.eye(d)


def simulate(rng, between, within, n_spk, per_spk, mean=None):
    """``x (n_spk * per_spk, D)`` drawn from the two-covariance model, and speaker labels."""
    d = between.shape[0]
    y = rng.multivariate_normal(np.zeros(d), between, size=n_spk)
    labels = np.repeat(np.arange(n_spk), per_spk)
    x = y[labels] + rng.multivariate_normal(np.zeros(d), within, size=len(labels))
    return x + (0 if mean is None else mean), labels


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def brute_force_llr(plda, enroll, test):
    """LLR from the explicit joint Gaussian densities of the (enroll, test) pair."""
    m, b, w = plda.mean, plda.between, plda.within
    total = b + w
    same = multivariate_normal(np.concatenate([m, m]), np.block([[total, b], [b, total]]))
    marginal = multivariate_normal(m, total)
    return np.array([
        same.logpdf(np.concatenate([e, t])) - marginal.logpdf(e) - marginal.logpdf(t)
        for e, t in zip(enroll, test)
    ])


def test_em_recovers_known_covariances():
    rng = np.random.default_rng(0)
    between, within = random_spd(rng, 4, 1.0, 0.5), random_spd(rng, 4, 0.5, 0.2)
    mean = np.array([1.0, -2.0, 3.0, 0.5])
    x, labels = simulate(rng, between, within, n_spk=300, per_spk=20, mean=mean)
    plda = TwoCovPLDA(n_iter=10).fit(x, labels)
    # Sampling error of a covariance from 300 speakers is ~sqrt(2/300) ≈ 0.08 relative.
    assert rel_err(plda.between, between) < 0.15
    assert rel_err(plda.within, within) < 0.15
    np.testing.assert_allclose(plda.mean, mean, atol=0.2)


def test_em_recovers_covariances_with_unbalanced_speakers():
    # Unequal utterance counts are where EM differs from the scatter-matrix initialisation.
    rng = np.random.default_rng(1)
    between, within = random_spd(rng, 3, 1.0, 0.3), random_spd(rng, 3, 1.0, 0.3)
    counts = rng.integers(2, 30, size=400)
    y = rng.multivariate_normal(np.zeros(3), between, size=len(counts))
    labels = np.repeat(np.arange(len(counts)), counts)
    x = y[labels] + rng.multivariate_normal(np.zeros(3), within, size=len(labels))
    plda = TwoCovPLDA(n_iter=20).fit(x, labels)
    assert rel_err(plda.between, between) < 0.15
    assert rel_err(plda.within, within) < 0.15
    np.testing.assert_allclose(plda.between, plda.between.T, atol=1e-12)


def test_llr_matches_joint_gaussian_reference():
    rng = np.random.default_rng(2)
    plda = TwoCovPLDA()
    plda.mean = rng.standard_normal(3)
    plda.between = random_spd(rng, 3, 1.0, 0.1)
    plda.within = random_spd(rng, 3, 0.3, 0.1)
    enroll, test = rng.standard_normal((6, 3)) * 2, rng.standard_normal((6, 3)) * 2
    np.testing.assert_allclose(
        plda.llr(enroll, test), brute_force_llr(plda, enroll, test), rtol=0, atol=1e-6
    )


def test_llr_of_fitted_model_matches_reference_and_is_symmetric():
    rng = np.random.default_rng(3)
    x, labels = simulate(rng, random_spd(rng, 5, 1.0, 0.2), np.eye(5), 30, 5)
    plda = TwoCovPLDA(n_iter=3).fit(x, labels)
    e, t = x[:8], x[40:48]
    np.testing.assert_allclose(plda.llr(e, t), brute_force_llr(plda, e, t), rtol=0, atol=1e-6)
    np.testing.assert_allclose(plda.llr(e, t), plda.llr(t, e), rtol=0, atol=1e-10)


def test_llr_is_finite_with_rank_deficient_between():
    plda = TwoCovPLDA()
    plda.mean = np.zeros(3)
    plda.between = np.diag([2.0, 0.0, 0.0])  # speaker variation in one direction only
    plda.within = np.eye(3)
    e, t = np.eye(3), np.eye(3)[::-1]
    out = plda.llr(e, t)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, brute_force_llr(plda, e, t), rtol=0, atol=1e-6)


def test_plda_beats_cosine_with_anisotropic_within_class_noise():
    # Large within-speaker variance in a few directions dominates the angle between embeddings,
    # so cosine is swamped by nuisance; PLDA learns to discount those directions.
    rng = np.random.default_rng(4)
    d = 10
    between = np.eye(d)
    within = np.diag([25.0, 25.0, 25.0] + [0.2] * (d - 3))
    rotation = np.linalg.qr(rng.standard_normal((d, d)))[0]  # not axis-aligned
    between, within = rotation @ between @ rotation.T, rotation @ within @ rotation.T
    offset = 3.0 * rng.standard_normal(d)
    x, labels = simulate(rng, between, within, 200, 10, mean=offset)
    plda = TwoCovPLDA().fit(x, labels)

    test, test_labels = simulate(rng, between, within, 100, 2, mean=offset)
    enroll_idx, test_idx = np.triu_indices(len(test), k=1)
    target = test_labels[enroll_idx] == test_labels[test_idx]
    centred = test - x.mean(axis=0)  # give cosine the same mean subtraction PLDA has
    eer_cos, _ = compute_eer(cosine_scores(centred[enroll_idx], centred[test_idx]), target)
    eer_plda, _ = compute_eer(plda.llr(test[enroll_idx], test[test_idx]), target)
    assert eer_plda < 0.5 * eer_cos, (eer_plda, eer_cos)


def test_errors():
    with pytest.raises(ValueError, match="not fitted"):
        TwoCovPLDA().llr(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="at least two speakers"):
        TwoCovPLDA().fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="at least two utterances"):
        TwoCovPLDA().fit(np.eye(3), np.arange(3))
    with pytest.raises(ValueError, match=r"\(N,\) labels"):
        TwoCovPLDA().fit(np.eye(3), np.arange(2))
    rng = np.random.default_rng(5)
    plda = TwoCovPLDA(n_iter=1).fit(rng.standard_normal((20, 2)), np.repeat(np.arange(4), 5))
    with pytest.raises(ValueError, match=r"need two \(N, 2\) arrays"):
        plda.llr(np.zeros((2, 3)), np.zeros((2, 3)))
