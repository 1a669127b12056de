import warnings

import numpy as np
import pytest

from xvector.data.lists import Trial
from xvector.scoring.cosine import cosine_scores, length_normalize, score_trials, trial_labels


def direct_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_length_normalize_unit_rows_and_zero_rows():
    x = np.random.default_rng(0).standard_normal((5, 8))
    x[2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero RuntimeWarning for the zero row
        y = length_normalize(x)
    norms = np.linalg.norm(y, axis=1)
    np.testing.assert_allclose(np.delete(norms, 2), 1.0, rtol=0, atol=1e-12)
    assert (y[2] == 0).all()
    np.testing.assert_allclose(y * np.linalg.norm(x, axis=1, keepdims=True), x, atol=1e-12)


def test_cosine_scores_match_direct_formula():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((20, 16)), rng.standard_normal((20, 16)) * 5
    expected = [direct_cosine(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(cosine_scores(a, b), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        cosine_scores(a, b[:5])


def make_table(seed=2, n=12, dim=8):
    rng = np.random.default_rng(seed)
    ids = [f"u{i:02d}" for i in range(n)]
    return ids, rng.standard_normal((n, dim)).astype(np.float32), rng


def test_score_trials_matches_direct_formula_with_and_without_mean():
    ids, emb, rng = make_table()
    pairs = rng.integers(0, len(ids), (40, 2))
    trials = [Trial(ids[i], ids[j], bool(rng.random() < 0.5)) for i, j in pairs]
    mean = rng.standard_normal(emb.shape[1])
    row = {u: k for k, u in enumerate(ids)}
    plain = score_trials(ids, emb, trials)
    centred = score_trials(ids, emb, trials, mean=mean)
    assert plain.shape == (40,) and plain.dtype == np.float64
    # The trial dot products run in float32 (the embeddings' precision): |error| well below 1e-6.
    for k, t in enumerate(trials):
        e, s = emb[row[t.enroll]], emb[row[t.test]]
        assert plain[k] == pytest.approx(direct_cosine(e, s), abs=1e-6)
        assert centred[k] == pytest.approx(direct_cosine(e - mean, s - mean), abs=1e-6)


def test_mean_subtraction_removes_shared_offset():
    # Four speakers share a large offset: raw cosines are all near 1, so nontargets look like
    # targets; subtracting the mean leaves the speaker directions (near-orthogonal in 64-D).
    rng = np.random.default_rng(3)
    dim, speakers, per_spk = 64, 4, 5
    offset = 10.0 * np.ones(dim)
    centres = rng.standard_normal((speakers, dim))
    emb = np.concatenate([offset + c + 0.1 * rng.standard_normal((per_spk, dim)) for c in centres])
    ids = [f"s{s}-u{u}" for s in range(speakers) for u in range(per_spk)]
    trials = [Trial(a, b, a[:2] == b[:2]) for a in ids[::per_spk] for b in ids if a != b]
    labels = trial_labels(trials)
    raw = score_trials(ids, emb, trials)
    centred = score_trials(ids, emb, trials, mean=emb.mean(axis=0))
    assert raw.min() > 0.9
    assert centred[labels].min() > 0.9 and centred[~labels].max() < 0.5


def test_missing_id_names_trial_line_and_utterance():
    ids, emb, _ = make_table()
    trials = [Trial("u00", "u01", True), Trial("u02", "u03", False), Trial("u04", "nobody", True)]
    with pytest.raises(ValueError, match=r"trial line 3: no embedding for utterance 'nobody'"):
        score_trials(ids, emb, trials)
    trials[0] = Trial("ghost", "u01", True)
    with pytest.raises(ValueError, match=r"trial line 1: .*'ghost'"):
        score_trials(ids, emb, trials)


@pytest.mark.parametrize(
    ("ids", "emb", "mean", "match"),
    [
        (["a", "a"], np.eye(2), None, "duplicate utterance id 'a'"),
        (["a", "b"], np.eye(3), None, r"\(N, D\) embeddings for N=2"),
        (["a", "b"], np.eye(2), np.zeros(3), "mean must have shape"),
    ],
)
def test_bad_tables_raise(ids, emb, mean, match):
    with pytest.raises(ValueError, match=match):
        score_trials(ids, emb, [Trial("a", "b", True)], mean=mean)


def test_trial_labels():
    trials = [Trial("a", "b", True), Trial("a", "c", False)]
    labels = trial_labels(trials)
    assert labels.dtype == np.bool_ and labels.tolist() == [True, False]
