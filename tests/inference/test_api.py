"""The Python API (xvector.load_model), model directories and chunked long-recording embedding."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

import xvector
from xvector.embeddings import save_embeddings
from xvector.inference.embed import embed_batch, embed_long
from xvector.inference.model_dir import (
    build_embedder,
    init_checkpoint,
    load_model_dir,
    tiny_config,
    write_model_dir,
)


def _cos(a, b):
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", tiny_config())


@pytest.fixture(scope="module")
def model_dir(ckpt, tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    save_embeddings(d / "train.npz", [f"u{i}" for i in range(10)], rng.standard_normal((10, 16)) + 3.0)
    return write_model_dir(d / "model", ckpt, mean_embeddings=d / "train.npz",
                           calibration={"scale": 10.0, "offset": -2.0},
                           threshold={"criterion": "eer", "threshold": 0.5, "on": "llr", "far": 0.1, "frr": 0.1})


@pytest.fixture(scope="module")
def model(model_dir):
    return xvector.load_model(model_dir)


@pytest.fixture
def wavs():
    rng = np.random.default_rng(1)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 23456, 8000)]


def test_model_dir_layout_and_contents(model_dir, tmp_path):
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == ["calibration.json", "config.yaml", "embedder.pt", "info.json", "mean.npy", "threshold.json"]
    info = json.loads((model_dir / "info.json").read_text())
    assert info["sample_rate"] == 16000 and info["embed_dim"] == 16 and info["min_samples"] == 2640
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    rng = np.random.default_rng(0)
    expected = (rng.standard_normal((10, 16)) + 3.0).astype(np.float32).astype(np.float64).mean(0)
    np.testing.assert_allclose(np.load(model_dir / "mean.npy"), expected, atol=1e-6)


def test_dir_and_checkpoint_give_the_same_embeddings(model, ckpt, wavs):
    from_ckpt = xvector.load_model(ckpt)
    np.testing.assert_allclose(model.embed(wavs), from_ckpt.embed(wavs), atol=1e-6)
    assert from_ckpt.mean is None and from_ckpt.calibration is None


def test_existing_dir_is_refused_unless_overwrite(model_dir, ckpt):
    with pytest.raises(ValueError, match="already exists"):
        write_model_dir(model_dir, ckpt)


def test_overwrite_replaces_atomically(ckpt, tmp_path):
    out = write_model_dir(tmp_path / "m", ckpt, calibration={"scale": 1.0, "offset": 0.0})
    write_model_dir(out, ckpt, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "embedder.pt", "info.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"threshold": {"threshold": 1.0, "on": "llr"}}, "no calibration"),
     ({"calibration": {"scale": -1.0, "offset": 0.0}}, "scale must be"),
     ({"calibration": {"offset": 0.0}}, "scale"),
     ({"formats": ["tflite"]}, "unknown export format")],
)
def test_bad_scoring_files_are_refused(ckpt, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_model_dir(tmp_path / "m", ckpt, **kwargs)
    assert not (tmp_path / "m").exists()


def test_mean_of_other_dimension_is_refused(ckpt, tmp_path):
    save_embeddings(tmp_path / "e.npz", ["a"], np.ones((1, 7)))
    with pytest.raises(ValueError, match="7"):
        write_model_dir(tmp_path / "m", ckpt, mean_embeddings=tmp_path / "e.npz")


def test_corrupt_weights_name_the_file(model_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "embedder.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="embedder.pt"):
        load_model_dir(bad)
    with pytest.raises(ValueError, match="no model directory"):
        load_model_dir(tmp_path / "nothing")


def test_embed_shapes_and_batch_equals_single(model, wavs):
    singles = np.stack([model.embed(w) for w in wavs])
    assert singles.shape == (3, 16) and singles.dtype == np.float32
    listed = model.embed(wavs)
    np.testing.assert_allclose(listed, singles, atol=1e-5)
    padded = np.zeros((3, 23456), dtype=np.float32)
    for i, w in enumerate(wavs):
        padded[i, : len(w)] = w
    batch = model.embed(padded, lengths=[len(w) for w in wavs])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert _cos(batch, singles).min() >= 0.9999
    torch_in = model.embed(torch.from_numpy(wavs[0]))
    np.testing.assert_array_equal(torch_in, singles[0])


def test_resampling_and_downmix(model, wavs, tmp_path):
    wav = wavs[1]
    wav8k = AF.resample(torch.from_numpy(wav), 16000, 8000).numpy()
    expected = model.embed(AF.resample(torch.from_numpy(wav8k), 8000, 16000).numpy())
    np.testing.assert_allclose(model.embed(wav8k, sample_rate=8000), expected, atol=1e-6)
    sf.write(tmp_path / "a8k.wav", wav8k, 8000, subtype="FLOAT")
    np.testing.assert_allclose(model.embed(tmp_path / "a8k.wav"), expected, atol=1e-6)
    # A stereo file is its channel mean.
    other = np.roll(wav, 100)
    sf.write(tmp_path / "stereo.wav", np.stack([wav, other], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(model.embed(tmp_path / "stereo.wav"), model.embed((wav + other) / 2), atol=1e-6)
    # So is a channels-first (C, S) array inside a list.
    np.testing.assert_allclose(model.embed([np.stack([wav, other])])[0], model.embed((wav + other) / 2), atol=1e-6)


def test_too_short_and_unreadable_inputs_are_clear(model, tmp_path):
    with pytest.raises(ValueError, match=r"input 0: 2000 samples \(0.125 s\) is shorter than the 2640 samples"):
        model.embed(0.1 * np.random.default_rng(0).standard_normal(2000).astype(np.float32))
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="bad.wav: cannot decode"):
        model.embed(tmp_path / "bad.wav")
    with pytest.raises(ValueError, match="NaN"):
        model.embed(np.full(16000, np.nan, dtype=np.float32))


def test_score_subtracts_the_stored_mean(model, wavs):
    a, b = model.embed(wavs[0]), model.embed(wavs[1])
    mean = np.load(model.model.path / "mean.npy")
    expected = _cos(a - mean, b - mean)[0]
    assert model.score(a, b) == pytest.approx(expected, abs=1e-6)
    rows = model.score(np.stack([a, b]), np.stack([b, b]))
    np.testing.assert_allclose(rows, [expected, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        model.score(a, b[:3])


def test_verify_uses_calibration_and_threshold(model, wavs):
    same = model.verify(wavs[0], wavs[0])
    assert same.score == pytest.approx(1.0, abs=1e-5)
    assert same.llr == pytest.approx(8.0, abs=1e-4) and same.on == "llr" and same.threshold == 0.5
    assert same.decision is True
    diff = model.verify(wavs[0], wavs[1])
    assert diff.llr == pytest.approx(10 * diff.score - 2, abs=1e-9)
    assert diff.decision == (diff.llr >= 0.5)
    assert model.verify(wavs[0], wavs[1], threshold=100.0).decision is False
    assert "decision: same speaker (llr >= 0.5000)" in str(same)


def test_verify_without_scoring_files(ckpt, wavs):
    plain = xvector.load_model(ckpt).verify(wavs[0], wavs[1])
    assert plain.llr is None and plain.decision is None and "no threshold" in str(plain)
    decided = xvector.load_model(ckpt).verify(wavs[0], wavs[0], threshold=0.99)
    assert decided.on == "score" and decided.decision is True


# --- long recordings: chunked statistics pooling equals whole-utterance pooling ---------------


@pytest.mark.parametrize("features", [
    {"cmn": "utterance"},
    {"cmn": "sliding", "cmn_window": 300},
    {"_target_": "xvector.features.mfcc.MFCC", "num_ceps": 20, "num_mel_bins": 24, "cmn": "sliding"},
])
def test_chunked_equals_whole_on_30s(features):
    """30 s, chunks of 3.7 s (9 chunks + a tail): |Δ| <= 1e-4 and cosine >= 0.99999.

    Exact by construction (frame-local features, CMN over the whole matrix, windows overlapping
    by the receptive field); the tolerance covers float32 rounding of the two pooling orders.
    """
    cfg = tiny_config()
    if "_target_" in features:
        cfg["features"] = {"sample_rate": 16000, "dither": 1.0, **features}
    else:
        cfg["features"].update(features)
    torch.manual_seed(0)
    embedder = build_embedder(cfg).eval()
    gen = torch.Generator().manual_seed(2)
    wav = 0.1 * torch.randn(30 * 16000, generator=gen) * torch.linspace(0.2, 2.0, 30 * 16000)  # level drifts
    whole = embed_batch(embedder, wav[None], torch.tensor([len(wav)]))[0]
    chunked = embed_long(embedder, wav, chunk_sec=3.7)
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=1e-4)
    assert torch.nn.functional.cosine_similarity(chunked, whole, dim=0) >= 0.99999


def test_long_input_goes_through_chunks_in_the_api(ckpt):
    gen = torch.Generator().manual_seed(3)
    wav = (0.1 * torch.randn(12 * 16000, generator=gen)).numpy()
    whole = xvector.load_model(ckpt).embed(wav)
    chunked = xvector.load_model(ckpt, chunk_sec=2.5).embed(wav)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_chunked_is_exact_for_etdnn_and_falls_back_for_attentive_pooling(caplog):
    """E-TDNN (stats pooling, 23-frame context) pools exactly; attentive pooling cannot be
    accumulated, so its chunk embeddings are averaged (length-weighted): close, not equal."""
    cfg = tiny_config()
    cfg["model"] = {"_target_": "xvector.nets.etdnn.ETDNN", "_partial_": True, "channels": [16] * 8 + [32],
                    "embed_dim": 16, "segment_dims": [16]}
    torch.manual_seed(0)
    etdnn = build_embedder(cfg).eval()
    wav = 0.1 * torch.randn(12 * 16000, generator=torch.Generator().manual_seed(4))
    whole = embed_batch(etdnn, wav[None], torch.tensor([len(wav)]))[0]
    torch.testing.assert_close(embed_long(etdnn, wav, chunk_sec=2.0), whole, atol=1e-4, rtol=1e-4)

    cfg = tiny_config()
    cfg["model"]["pooling"] = {"_target_": "xvector.nets.pooling.AttentiveStatsPooling", "_partial_": True}
    attentive = build_embedder(cfg).eval()
    with caplog.at_level("INFO", logger="xvector.inference.embed"):
        chunked = embed_long(attentive, wav, chunk_sec=2.0)
    assert "averaging chunk embeddings" in caplog.text
    whole = embed_batch(attentive, wav[None], torch.tensor([len(wav)]))[0]
    assert chunked.shape == whole.shape and torch.isfinite(chunked).all()
