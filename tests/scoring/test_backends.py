"""Speaker-model back-ends: one-utterance models match the trial scorers; n-utterance PLDA
matches the Gaussian likelihood ratio computed from the joint densities."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from xvector.data.lists import Trial
from xvector.scoring.backends import CosineBackend, PLDABackend, backend_from_arrays, pair_scores
from xvector.scoring.cosine import score_trials
from xvector.scoring.lda import KaldiChain
from xvector.scoring.plda import TwoCovPLDA, _simultaneous_diag


def _labelled(rng, speakers=30, per=6, dim=8):
    centres = rng.normal(size=(speakers, dim)) * 2.0
    labels = np.repeat(np.arange(speakers), per)
    return centres[labels] + rng.normal(size=(speakers * per, dim)), labels


def test_cosine_one_utterance_models_equal_score_trials():
    rng = np.random.default_rng(0)
    emb, mean = rng.normal(size=(10, 5)), rng.normal(size=5)
    ids = [f"u{i}" for i in range(10)]
    trials = [Trial(ids[a], ids[b], bool(a % 2)) for a, b in rng.integers(0, 10, size=(40, 2))]
    backend = CosineBackend(mean)
    unit = backend.transform(emb)
    e = np.array([ids.index(t.enroll) for t in trials])
    t = np.array([ids.index(t.test) for t in trials])
    got = pair_scores(backend, unit[e], np.ones(len(e)), unit[t])
    np.testing.assert_allclose(got, score_trials(ids, emb, trials, mean=mean), atol=1e-6)


def test_cosine_model_is_the_mean_of_unit_vectors():
    backend = CosineBackend(in_dim=2)
    unit = backend.transform(np.array([[3.0, 0.0], [0.0, 0.5]]))  # [1, 0] and [0, 1]
    model = unit.mean(0, keepdims=True)  # [0.5, 0.5] -> direction 45°
    score = pair_scores(backend, model, np.array([2]), backend.transform(np.array([[1.0, 0.0]])))
    assert score[0] == pytest.approx(np.sqrt(0.5), abs=1e-12)


def test_plda_one_utterance_equals_kaldi_chain():
    rng = np.random.default_rng(1)
    x, labels = _labelled(rng)
    chain = KaldiChain(lda_dim=5, plda_iter=3).fit(x, labels)
    backend = PLDABackend.from_chain(chain)
    np.testing.assert_allclose(backend.transform(x[:7]), chain.transform(x[:7]), atol=1e-10)
    ids = [f"u{i}" for i in range(20)]
    trials = [Trial(ids[a], ids[b], False) for a, b in rng.integers(0, 20, size=(50, 2))]
    unit = backend.transform(x[:20])
    e = np.array([int(t.enroll[1:]) for t in trials])
    t = np.array([int(t.test[1:]) for t in trials])
    got = pair_scores(backend, unit[e], np.ones(len(e)), unit[t])
    np.testing.assert_allclose(got, chain.score(ids, x[:20], trials), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [1, 3])
def test_plda_n_utterance_llr_equals_the_joint_gaussian_ratio(n):
    """LLR of test t given enrolment x_1..x_n = log p(x, t | same) - log p(x | one spk) - log p(t)."""
    rng = np.random.default_rng(2)
    d = 3
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    between, within = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.3 * np.eye(d)
    mean = rng.normal(size=d)
    basis, psi = _simultaneous_diag(between, within)
    backend = PLDABackend(np.zeros(d), np.eye(d), np.zeros(d), mean, basis, psi)
    enrol, test = rng.normal(size=(n, d)) * 2 + mean, rng.normal(size=d) * 2 + mean

    def joint(m: int) -> np.ndarray:  # covariance of m utterances of one speaker, stacked
        return np.kron(np.ones((m, m)), between) + np.kron(np.eye(m), within)

    same = multivariate_normal(np.tile(mean, n + 1), joint(n + 1)).logpdf(np.concatenate([enrol.ravel(), test]))
    diff = (multivariate_normal(np.tile(mean, n), joint(n)).logpdf(enrol.ravel())
            + multivariate_normal(mean, between + within).logpdf(test))
    got = backend.speaker_features(enrol.mean(0, keepdims=True), [n]) @ backend.query_features(test[None]).T
    assert got[0, 0] == pytest.approx(same - diff, abs=1e-9)
    if n == 1:  # and the two-covariance PLDA's own symmetric formula
        plda = TwoCovPLDA()
        plda.mean, plda.between, plda.within = mean, between, within
        assert got[0, 0] == pytest.approx(plda.llr(enrol, test[None])[0], abs=1e-9)


def test_backends_round_trip_through_arrays():
    rng = np.random.default_rng(3)
    x, labels = _labelled(rng)
    for backend in (CosineBackend(rng.normal(size=8)), CosineBackend(in_dim=8),
                    PLDABackend.from_chain(KaldiChain(lda_dim=4, plda_iter=2).fit(x, labels))):
        again = backend_from_arrays(backend.kind, backend.to_arrays())
        np.testing.assert_array_equal(again.transform(x[:5]), backend.transform(x[:5]))
    with pytest.raises(ValueError, match="unknown back-end 'lda'"):
        backend_from_arrays("lda", {})
    with pytest.raises(ValueError, match=r"need \(N, 8\) vectors, got shape \(2, 3\)"):
        CosineBackend(in_dim=8).transform(np.ones((2, 3)))
