"""1:N search: the blocked exact search equals a brute-force ranking; decisions; FAISS recall."""

import importlib.util

import numpy as np
import pytest

from xvector.scoring.backends import CosineBackend, PLDABackend
from xvector.scoring.identify import FaissIndex, exact_search, identify, recall_at_k, top_k_lines
from xvector.scoring.lda import KaldiChain
from xvector.scoring.store import SpeakerStore


def _clustered(rng, speakers: int, dim: int, queries_per: int = 1, noise: float = 0.35):
    centres = rng.normal(size=(speakers, dim))
    truth = np.repeat(np.arange(speakers), queries_per)
    return centres, centres[truth] + noise * rng.normal(size=(len(truth), dim)), truth


@pytest.mark.parametrize("kind", ["cosine", "plda"])
def test_blocked_search_equals_brute_force(kind):
    rng = np.random.default_rng(0)
    centres, queries, _ = _clustered(rng, 53, 8)
    if kind == "cosine":
        backend = CosineBackend(rng.normal(size=8) * 0.1)
    else:
        labels = np.repeat(np.arange(53), 4)
        train = centres[labels] + 0.3 * rng.normal(size=(212, 8))
        backend = PLDABackend.from_chain(KaldiChain(lda_dim=6, plda_iter=2).fit(train, labels))
    store = SpeakerStore(backend)
    store.add([f"s{i:02d}" for i in np.repeat(np.arange(53), 2)], np.repeat(centres, 2, axis=0)
              + 0.2 * rng.normal(size=(106, 8)))
    full = store.query_features(queries) @ store.speaker_features().T  # (Q, S) float64
    expected = np.argsort(-full, axis=1, kind="stable")[:, :5]
    rows, scores = exact_search(store, queries, k=5, block_speakers=7, block_queries=4)
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), rtol=1e-5, atol=1e-4)
    same = exact_search(store, queries, k=5)  # block sizes do not change the answer
    np.testing.assert_array_equal(same[0], rows)
    assert exact_search(store, queries, k=500)[0].shape == (len(queries), 53)  # k clipped


def test_identify_candidates_llrs_and_open_set_decisions():
    store = SpeakerStore(CosineBackend(in_dim=2), calibration={"scale": 10.0, "offset": -8.0},
                         threshold={"threshold": 0.0, "on": "llr"})
    store.add(["east", "north", "west"], np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    queries = np.array([[1.0, 0.0], [0.6, 0.8], [0.1, -1.0]])  # best: east 1; north 0.8; east 0.0995
    results = identify(store, queries, top_k=2)
    assert [r.speaker for r in results] == ["east", "north", None]  # LLR = 10 s - 8 >= 0 <=> s >= 0.8
    assert results[1].candidates[0][0] == "north" and results[1].candidates[0][2] == pytest.approx(0.0, abs=1e-5)
    assert results[1].candidates[1][0] == "east" and results[1].candidates[1][1] == pytest.approx(0.6, abs=1e-6)
    loose = identify(store, queries, top_k=1, threshold=-9.0)  # explicit threshold, on LLRs
    assert [r.speaker for r in loose] == ["east", "north", "east"] and loose[2].on == "llr"
    closed = identify(_plain(store), queries, top_k=1)
    assert [r.speaker for r in closed] == ["east", "north", "east"] and closed[0].threshold is None
    rows, scores = exact_search(store, queries[:1], k=2)
    assert top_k_lines(store, ["q1"], rows, scores) == ["q1 1 east 1.000000 2.000000\n",
                                                         "q1 2 north 0.000000 -8.000000\n"]


def _plain(store: SpeakerStore) -> SpeakerStore:
    out = SpeakerStore(store.backend)
    out.add(store.ids, store.sums.astype(float))
    return out


def test_empty_store_and_bad_k():
    store = SpeakerStore(CosineBackend(in_dim=2))
    with pytest.raises(ValueError, match="store is empty"):
        exact_search(store, np.ones((1, 2)))
    store.add(["a"], np.ones((1, 2)))
    with pytest.raises(ValueError, match="k must be >= 1"):
        exact_search(store, np.ones((1, 2)), k=0)


def test_recall_at_k():
    assert recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 9, 1]])) == pytest.approx(2 / 3)
    assert recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 9, 1]]), k=1) == 0.0


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss is not installed (pip install faiss-cpu)")
def test_faiss_index_recall_against_exact_search():
    rng = np.random.default_rng(1)
    centres, queries, truth = _clustered(rng, 4000, 32)
    store = SpeakerStore(CosineBackend(in_dim=32))
    store.add([f"s{i:04d}" for i in range(4000)], centres)
    exact, _ = exact_search(store, queries, k=10)
    assert (exact[:, 0] == truth).mean() > 0.99
    flat = FaissIndex(store)  # under 10,000 speakers: exact "Flat" by default
    assert flat.factory == "Flat" and recall_at_k(exact, flat.search(queries, 10)[0]) == 1.0
    # Random centres are the hard case for an IVF index (no clusters to exploit): half the
    # lists must be probed for the top 10 (measured: recall@10 0.25 / 0.49 / 0.83 / 0.96 at
    # nprobe 1 / 4 / 16 / 32); the top 1 needs far fewer.
    ivf = FaissIndex(store, "IVF64,Flat", {"nprobe": 32})
    approx, scores = ivf.search(queries, 10)
    recall = recall_at_k(exact, approx)
    assert 0.9 < recall <= 1.0, recall
    assert recall_at_k(exact, approx, k=1) > 0.99
    coarse = recall_at_k(exact, FaissIndex(store, "IVF64,Flat", {"nprobe": 1}).search(queries, 10)[0])
    assert coarse < recall  # fewer lists probed, fewer true neighbours found: the measure moves
    results = identify(store, queries[:3], top_k=3, index=ivf)
    assert [r.candidates[0][0] for r in results] == [store.ids[i] for i in truth[:3]]
