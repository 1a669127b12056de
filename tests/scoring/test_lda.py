import logging

import numpy as np
import pytest

from xvector.data.lists import Trial
from xvector.metrics import compute_eer
from xvector.scoring.cosine import score_trials, trial_labels
from xvector.scoring.lda import KaldiChain, fit_lda


def simulate(rng, n_spk, per_spk, d=12, signal_dims=3, offset=None):
    """Speakers differ in ``signal_dims`` directions only; the rest is loud nuisance noise."""
    y = np.zeros((n_spk, d))
    y[:, :signal_dims] = rng.standard_normal((n_spk, signal_dims))
    labels = np.repeat(np.arange(n_spk), per_spk)
    noise_std = np.r_[[0.3] * signal_dims, [3.0] * (d - signal_dims)]  # (D,)
    noise = rng.standard_normal((len(labels), d)) * noise_std
    x = y[labels] + noise + (0 if offset is None else offset)
    return x, labels


def test_lda_whitens_within_class_and_keeps_discriminative_directions():
    rng = np.random.default_rng(0)
    x, labels = simulate(rng, 200, 10)
    lda = fit_lda(x, labels, dim=3)
    z = lda(x)
    assert z.shape == (len(x), 3)
    spk_means = np.stack([z[labels == s].mean(0) for s in range(200)])
    within = np.cov((z - spk_means[labels]).T)
    # Within-speaker covariance of the output is the identity up to sampling error.
    np.testing.assert_allclose(within, np.eye(3), atol=0.1)
    # The output is (almost) a function of the 3 signal coordinates: regressing it on them
    # explains nearly all of its variance, so the nuisance coordinates were projected out.
    coef, *_ = np.linalg.lstsq(x[:, :3] - x[:, :3].mean(0), z - z.mean(0), rcond=None)
    residual = z - z.mean(0) - (x[:, :3] - x[:, :3].mean(0)) @ coef
    assert residual.var() / z.var() < 0.05


def test_lda_dim_is_clipped_with_warning(caplog):
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((40, 6)), np.repeat(np.arange(4), 10)
    with caplog.at_level(logging.WARNING, logger="xvector.scoring.lda"):
        lda = fit_lda(x, labels, dim=200)
    assert lda.dim == 3 and lda(x).shape == (40, 3)
    assert "clipped to 3" in caplog.text
    x2, labels2 = rng.standard_normal((100, 4)), np.repeat(np.arange(20), 5)
    assert fit_lda(x2, labels2, dim=200).dim == 4  # clipped by D instead


def test_lda_errors():
    with pytest.raises(ValueError, match="at least two speakers"):
        fit_lda(np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="dim must be >= 1"):
        fit_lda(np.eye(3), np.arange(3), dim=0)
    lda = fit_lda(np.random.default_rng(0).standard_normal((9, 3)), np.repeat(np.arange(3), 3))
    with pytest.raises(ValueError, match=r"LDA expects \(M, 3\)"):
        lda(np.zeros((2, 4)))


def make_trials(rng, n_spk, per_spk, offset):
    x, labels = simulate(rng, n_spk, per_spk, offset=offset)
    ids = [f"s{s}_u{i}" for s, i in zip(labels, np.tile(np.arange(per_spk), n_spk))]
    trials = [
        Trial(ids[a], ids[b], bool(labels[a] == labels[b]))
        for a in range(len(ids)) for b in range(a + 1, len(ids))
    ]
    return ids, x, trials


def test_kaldi_chain_beats_cosine_and_matches_manual_pipeline():
    rng = np.random.default_rng(2)
    offset = 5.0 * rng.standard_normal(12)
    x, labels = simulate(rng, 200, 8, offset=offset)
    chain = KaldiChain(lda_dim=3, plda_iter=5).fit(x, labels)
    ids, emb, trials = make_trials(rng, 60, 3, offset)

    scores = chain.score(ids, emb, trials)
    assert scores.shape == (len(trials),)
    # Same numbers as running the stages by hand on the trial rows.
    rows = {utt: i for i, utt in enumerate(ids)}
    e = np.array([rows[t.enroll] for t in trials])
    t = np.array([rows[t.test] for t in trials])
    z = chain.transform(emb)
    np.testing.assert_allclose(scores, chain.plda.llr(z[e], z[t]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chain(ids, emb, trials), scores, rtol=0, atol=0)

    target = trial_labels(trials)
    eer_chain, _ = compute_eer(scores, target)
    eer_cos, _ = compute_eer(score_trials(ids, emb, trials, mean=x.mean(0)), target)
    assert eer_chain < 0.5 * eer_cos, (eer_chain, eer_cos)


def test_kaldi_chain_errors():
    rng = np.random.default_rng(3)
    x, labels = simulate(rng, 20, 4)
    with pytest.raises(ValueError, match="not fitted"):
        KaldiChain().score(["a"], x[:1], [Trial("a", "a", True)])
    chain = KaldiChain(lda_dim=3, plda_iter=1).fit(x, labels)
    with pytest.raises(ValueError, match="trial line 1: no embedding for utterance 'b'"):
        chain.score(["a"], x[:1], [Trial("a", "b", True)])
    with pytest.raises(ValueError, match="embedding dim 5 differs from the training dim 12"):
        chain.score(["a", "b"], np.zeros((2, 5)), [Trial("a", "b", True)])
    with pytest.raises(ValueError, match="mean_embeddings applies to cosine"):
        chain(["a", "b"], x[:2], [Trial("a", "b", True)], mean=np.zeros(12))
