"""Speaker stores: models from enrolment maps, growing, replacing, removing, the file format."""

import json
import math

import numpy as np
import pytest

from xvector.data.lists import Trial
from xvector.scoring.backends import CosineBackend, PLDABackend
from xvector.scoring.lda import KaldiChain
from xvector.scoring.store import SpeakerStore

# 2-D embeddings at known angles: alice's two at ±30° average to 0°, bob's one at 90°.
R3 = math.sqrt(3) / 2
IDS = ["a1", "a2", "b1", "t0", "t60", "t90"]
EMB = np.array([[R3, 0.5], [R3, -0.5], [0.0, 2.0], [3.0, 0.0], [0.5, R3], [0.0, 1.0]])


def _store(**kw) -> SpeakerStore:
    store = SpeakerStore(CosineBackend(in_dim=2), **kw)
    store.add_map({"alice": ["a1", "a2"], "bob": ["b1"]}, IDS, EMB)
    return store


def test_avg_models_are_means_of_unit_vectors_and_score_as_cosines():
    store = _store()
    assert store.ids == ["alice", "bob"] and store.counts.tolist() == [2, 1]
    np.testing.assert_allclose(store.means(), [[R3, 0.0], [0.0, 1.0]], atol=1e-7)
    trials = [Trial("alice", "t0", True), Trial("alice", "t60", False), Trial("bob", "t60", False),
              Trial("bob", "t90", True)]
    # alice's model points at 0°: cos 0° = 1, cos 60° = 0.5; bob's at 90°: cos 30°, cos 0°
    np.testing.assert_allclose(store.score_trials(trials, IDS, EMB), [1.0, 0.5, R3, 1.0], atol=1e-6)


def test_adding_in_two_steps_equals_one_step():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(9, 4))
    speakers = ["s1", "s2", "s1", "s3", "s2", "s1", "s3", "s3", "s2"]
    once = SpeakerStore(CosineBackend(rng.normal(size=4)))
    once.add(speakers, emb)
    twice = SpeakerStore(CosineBackend(once.backend.mean))
    twice.add(speakers[:4], emb[:4])
    twice.add(speakers[4:], emb[4:], existing="add")
    assert twice.ids == once.ids and twice.counts.tolist() == once.counts.tolist() == [3, 3, 3]
    np.testing.assert_allclose(twice.sums, once.sums, atol=1e-6)


def test_existing_speakers_error_add_or_replace():
    store = _store()
    with pytest.raises(ValueError, match=r"speaker 'bob' is already enrolled .*existing=add.*existing=replace"):
        store.add(["bob"], np.array([[1.0, 0.0]]))
    store.add(["bob"], np.array([[1.0, 0.0]]), existing="add")
    assert store.counts.tolist() == [2, 2]
    np.testing.assert_allclose(store.means()[1], [0.5, 0.5], atol=1e-7)
    store.add(["bob", "carol"], np.array([[1.0, 0.0], [0.0, -1.0]]), existing="replace")
    assert store.ids == ["alice", "bob", "carol"] and store.counts.tolist() == [2, 1, 1]
    np.testing.assert_allclose(store.means()[1:], [[1.0, 0.0], [0.0, -1.0]], atol=1e-7)
    assert store.remove(["alice", "carol"]).ids == ["bob"] and store.index("bob") == 0
    with pytest.raises(ValueError, match="speaker 'alice' is not enrolled"):
        store.remove(["alice"])


def test_concat_mode_takes_one_embedding_per_model_and_cannot_grow():
    store = SpeakerStore(CosineBackend(in_dim=2), mode="concat")
    ids = ["alice", "bob", "a1"]
    store.add_map({"alice": ["a1", "a2"], "bob": ["b1"]}, ids, np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    assert store.counts.tolist() == [1, 1]  # the model's own embedding, not its utterances'
    np.testing.assert_allclose(store.means(), np.eye(2), atol=1e-7)
    with pytest.raises(ValueError, match="one embedding per speaker; 'x' has 2"):
        store.add(["x", "x"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="cannot grow"):
        store.add(["bob"], np.ones((1, 2)), existing="add")
    with pytest.raises(ValueError, match="map.lst: no embedding for speaker model 'carol'"):
        store.add_map({"carol": ["c1"]}, ids, np.ones((3, 2)), map_name="map.lst")


def test_bad_input_is_named():
    store = SpeakerStore(CosineBackend(in_dim=2))
    with pytest.raises(ValueError, match="enroll.map: speaker 'bob': no embedding for utterance 'b9'"):
        store.add_map({"bob": ["b1", "b9"]}, IDS, EMB, map_name="enroll.map")
    with pytest.raises(ValueError, match="non-finite embedding for speaker 'bob'"):
        store.add(["bob"], np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"need \(1, 2\) embeddings"):
        store.add(["bob"], np.ones((1, 3)))
    store = _store()
    with pytest.raises(ValueError, match="trial line 2: speaker model 'carol' is not enrolled"):
        store.score_trials([Trial("bob", "t0", False), Trial("carol", "t0", False)], IDS, EMB)
    with pytest.raises(ValueError, match="trial line 1: no embedding for utterance 'zz'"):
        store.score_trials([Trial("bob", "zz", False)], IDS, EMB)


def test_save_load_round_trip_keeps_everything(tmp_path):
    rng = np.random.default_rng(1)
    centres, labels = rng.normal(size=(20, 6)) * 2, np.repeat(np.arange(20), 5)
    x = centres[labels] + rng.normal(size=(100, 6))
    backend = PLDABackend.from_chain(KaldiChain(lda_dim=4, plda_iter=2).fit(x, labels))
    store = SpeakerStore(backend, model={"weights_sha256": "ab", "sample_rate": 16000},
                         calibration={"scale": 2.0, "offset": -1.0}, threshold={"threshold": 3.0, "on": "llr"})
    store.add([f"s{i % 4}" for i in range(12)], x[:12], source={"embeddings": "e.npz"})
    path = tmp_path / "store.npz"
    store.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["store.npz"]  # no temporary left
    again = SpeakerStore.load(path)
    assert again.ids == store.ids and again.mode == "avg" and again.model == store.model
    assert again.calibration == {"scale": 2.0, "offset": -1.0} and again.threshold["on"] == "llr"
    assert again.sources[0]["embeddings"] == "e.npz" and again.sources[0]["speakers"] == 4
    np.testing.assert_array_equal(again.sums, store.sums)
    np.testing.assert_array_equal(again.query_features(x[50:53]), store.query_features(x[50:53]))
    assert json.loads(str(np.load(path)["meta"]))["backend"] == "plda"
    np.testing.assert_allclose(again.to_llr(np.array([1.0])), [1.0])


def test_not_a_store_is_named(tmp_path):
    with pytest.raises(ValueError, match="store.npz: speaker store does not exist"):
        SpeakerStore.load(tmp_path / "store.npz")
    np.savez(tmp_path / "emb.npz", ids=np.array(["a"]), embeddings=np.ones((1, 2)))
    with pytest.raises(ValueError, match="emb.npz: not an xvector speaker store"):
        SpeakerStore.load(tmp_path / "emb.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not an xvector speaker store"):
        SpeakerStore.load(tmp_path / "junk.npz")
