"""model.enroll / model.identify: stores from recordings (Avg and Concat), search, model checks."""

import numpy as np
import pytest
import torch

import xvector
from xvector.embeddings import save_embeddings
from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir
from xvector.scoring.store import SpeakerStore


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("enrol")
    ckpt = init_checkpoint(d / "tiny.ckpt", tiny_config())
    rng = np.random.default_rng(0)
    # The training mean of an untrained net: the mean embedding of coloured noise, as a real
    # training set's would be of speech; subtracting it leaves what tells recordings apart.
    noise = [np.convolve(rng.standard_normal(16000), rng.normal(size=8), "same").astype(np.float32) * 0.1
             for _ in range(20)]
    emb = xvector.load_model(ckpt).embed(noise)
    save_embeddings(d / "train.npz", [f"u{i}" for i in range(20)], emb)
    return xvector.load_model(write_model_dir(d / "model", ckpt, mean_embeddings=d / "train.npz",
                                              calibration={"scale": 10.0, "offset": -5.0},
                                              threshold={"threshold": 0.0, "on": "llr"}))


@pytest.fixture(scope="module")
def voices():
    """Three 'speakers', three recordings each: a speaker alternates between its two tones every
    0.1 s (utterance CMN removes a stationary spectrum, not the contrast between frames)."""
    rng = np.random.default_rng(1)
    out = {}
    for s, (f1, f2) in enumerate([(300, 900), (1500, 2500), (4000, 6000)]):
        out[f"s{s}"] = []
        for u in range(3):
            t = np.arange(int(16000 * (1 + 0.2 * u))) / 16000
            f = np.where((t // 0.1) % 2 == 0, f1, f2) * rng.uniform(0.97, 1.03)
            wav = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / 16000) + 0.01 * rng.standard_normal(len(t))
            out[f"s{s}"].append(wav.astype(np.float32))
    return out


def test_avg_model_is_the_mean_of_the_normalised_embeddings(model, voices):
    store = model.enroll({"s0": voices["s0"], "s1": voices["s1"][0]})
    assert store.ids == ["s0", "s1"] and store.counts.tolist() == [3, 1] and store.mode == "avg"
    unit = store.backend.transform(model.embed(voices["s0"]))
    np.testing.assert_allclose(store.means()[0], unit.mean(0), atol=1e-4)  # batching: float rounding
    np.testing.assert_allclose(store.backend.mean, model.mean, atol=1e-6)  # the model's training mean
    assert store.calibration == {"scale": 10.0, "offset": -5.0} and store.threshold["on"] == "llr"
    assert store.model["sample_rate"] == 16000 and len(store.model["weights_sha256"]) == 64


def test_concat_model_embeds_the_joined_audio(model, voices):
    store = model.enroll({"s0": voices["s0"]}, mode="concat")
    joined = np.concatenate(voices["s0"])
    np.testing.assert_allclose(store.means()[0], store.backend.transform(model.embed(joined)[None])[0], atol=1e-5)
    assert store.counts.tolist() == [1]
    # 8 kHz input: resampled to the model's rate before joining
    half = [torch.from_numpy(v[::2].copy()) for v in voices["s1"]]
    model.enroll({"s1": half}, store, sample_rate=8000)
    assert store.ids == ["s0", "s1"]


def test_identify_finds_the_enrolled_speaker_and_decides(model, voices, tmp_path):
    store = model.enroll({s: v[:2] for s, v in voices.items()})
    store.save(tmp_path / "store.npz")
    results = model.identify([voices[s][2] for s in voices], tmp_path / "store.npz", top_k=3)
    assert [r.candidates[0][0] for r in results] == ["s0", "s1", "s2"]
    r = model.identify(voices["s1"][0], store, top_k=2)  # one input: one result
    assert r.speaker == "s1" and len(r.candidates) == 2 and r.on == "llr"
    assert r.candidates[0][2] == pytest.approx(10 * r.candidates[0][1] - 5, abs=1e-4)
    assert model.identify(voices["s1"][0], store, threshold=1e6).speaker is None  # nobody reaches it
    grown = model.enroll({"s1": voices["s1"][2]}, store, existing="add")
    assert grown is store and store.counts.tolist() == [2, 3, 2]


def test_another_model_is_refused(model, voices, tmp_path):
    store = model.enroll({"s0": voices["s0"]})
    other = xvector.load_model(init_checkpoint(tmp_path / "other.ckpt", tiny_config(), seed=1))
    with pytest.raises(ValueError, match="was enrolled with another model"):
        other.identify(voices["s0"][0], store)
    with pytest.raises(ValueError, match="was enrolled with another model"):
        other.enroll({"s1": voices["s1"]}, store)
    store_from_files = SpeakerStore(store.backend)  # no recorded model: only the size is checked
    store_from_files.add(["x"], np.ones((1, 16)))
    assert other.identify(voices["s0"][0], store_from_files).candidates[0][0] == "x"


def test_bad_inputs_are_named(model, voices):
    with pytest.raises(ValueError, match="shorter than"):
        model.enroll({"s0": [voices["s0"][0], voices["s0"][0][:500]]})
    with pytest.raises(ValueError, match=r"speaker 's9': no recordings"):
        model.enroll({"s9": []})
    with pytest.raises(ValueError, match=r"speaker 's0' input 0: waveform contains NaN"):
        model.enroll({"s0": np.full(16000, np.nan, dtype=np.float32)})
