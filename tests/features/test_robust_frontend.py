"""The front-end sees the same thing in training and at extraction (issue 17, item 1).

Digital silence (exact zeros) and near-silence must give the same embedding, and so must a level
change; the fixed eval dither keeps extraction deterministic and batch-independent, and every
inference path (API, chunked long recordings, ONNX, TorchScript, int8) applies it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xvector.features.fbank import DITHER_PERIOD, Fbank
from xvector.features.mfcc import MFCC

CKPT = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout" / "last.ckpt"  # a trained tiny net


def speech_with_gaps(seed: int = 0, gap_fill: str = "zeros", level_db: float = -25.0) -> np.ndarray:
    """4 s of speech-like signal (harmonic bursts) with leading, trailing and inner silences."""
    rng = np.random.default_rng(seed)
    sr, out = 16000, []
    t = np.arange(int(0.4 * sr)) / sr
    for i in range(6):
        f0 = 110 + 30 * rng.random()
        burst = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 12))
        burst *= np.hanning(len(t)) * (1 + 0.3 * rng.standard_normal(len(t)))
        out += [burst, np.zeros(int(rng.uniform(0.1, 0.4) * sr))]
    wav = np.concatenate([np.zeros(int(0.5 * sr)), *out, np.zeros(int(0.5 * sr))])
    wav *= 10 ** (level_db / 20) / np.sqrt(np.mean(wav[wav != 0] ** 2))
    silent = wav == 0
    if gap_fill == "noise90":  # -90 dBFS white noise where the file was digitally silent
        wav[silent] = 10 ** (-90 / 20) * rng.standard_normal(int(silent.sum()))
    return wav.astype(np.float32)


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def model():
    import xvector

    return xvector.load_model(CKPT)


def test_digital_silence_embeds_like_near_silence(model):
    zeros, noise = speech_with_gaps(gap_fill="zeros"), speech_with_gaps(gap_fill="noise90")
    assert (zeros == 0).mean() > 0.3 and (noise == 0).mean() < 0.01
    assert cosine(model.embed(zeros), model.embed(noise)) >= 0.99


def test_digital_silence_without_eval_dither_is_an_outlier():
    """The failure the eval dither fixes: undithered zero frames sit at log(eps), far below any
    frame a dithered training run produced (and below -90 dBFS noise)."""
    zeros = torch.from_numpy(speech_with_gaps(gap_fill="zeros"))[None]
    noise = torch.from_numpy(speech_with_gaps(gap_fill="noise90"))[None]
    old = Fbank(num_mel_bins=24, cmn="none", eval_dither=False).eval()
    new = Fbank(num_mel_bins=24, cmn="none").eval()
    train = Fbank(num_mel_bins=24, cmn="none").train()
    floor_old, floor_new, floor_train = (f(zeros)[0].min().item() for f in (old, new, train))
    assert floor_old < -15.0  # log(float eps) = -15.9
    assert abs(floor_new - floor_train) < 3.0 and floor_new > -8.0
    gap_new, gap_noise = new(zeros)[0], new(noise)[0]
    assert (gap_new - gap_noise).abs().mean() < 0.5  # zeros and -90 dBFS noise look alike


@pytest.fixture(scope="module")
def vad_model():
    """The trained tiny net with the default energy VAD in its front-end (configs'
    ``features.vad``), as the custom recipe's models have."""
    import xvector
    from xvector.features.vad import EnergyVAD

    model = xvector.load_model(CKPT)
    model.embedder.features.vad = EnergyVAD()
    return model


@pytest.mark.parametrize("gain_db", [-20.0, 20.0])
def test_level_change_keeps_the_embedding(vad_model, gain_db):
    wav = speech_with_gaps(gap_fill="noise90", level_db=-25.0)
    other = wav * np.float32(10 ** (gain_db / 20))
    assert cosine(vad_model.embed(wav), vad_model.embed(other)) >= 0.99


def test_without_vad_silence_moves_the_embedding_with_the_level(model):
    """Why the VAD is on in the custom recipe: without it the silent frames' distance to the
    speech frames changes with the level, and so does the embedding (this fails if that stops)."""
    wav = speech_with_gaps(gap_fill="noise90", level_db=-25.0)
    assert cosine(model.embed(wav), model.embed(wav * np.float32(0.1))) < 0.99


def test_eval_dither_is_fixed_and_batch_independent():
    fbank = Fbank(num_mel_bins=24).eval()
    a = torch.from_numpy(speech_with_gaps(seed=1))
    b = torch.from_numpy(speech_with_gaps(seed=2))
    n = min(len(a), len(b)) - 3000
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, :n] = a, b[:n]
    feats, lens = fbank(batch, torch.tensor([len(a), n]))
    alone_a, _ = fbank(a[None])
    alone_b, _ = fbank(b[None, :n])
    torch.testing.assert_close(feats[0, : lens[0]], alone_a[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(feats[1, : lens[1]], alone_b[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(fbank(a[None])[0], alone_a, atol=0, rtol=0)  # reruns are equal


def test_eval_dither_is_kaldis_dither_with_a_fixed_draw(monkeypatch):
    """Eval mode = training mode with the random draw replaced by the fixed pattern (frame t gets
    row t mod DITHER_PERIOD): the same Kaldi dither, only not random."""
    fbank = MFCC(num_ceps=13, num_mel_bins=23)
    wav = torch.from_numpy(speech_with_gaps(seed=3))[None]
    pattern = fbank.fbank.frontend.dither_pattern
    eval_feats = fbank.eval()(wav)[0]
    monkeypatch.setattr(torch, "randn_like", lambda x: pattern[torch.arange(x.shape[-2]) % DITHER_PERIOD].expand_as(x))
    torch.testing.assert_close(fbank.train()(wav)[0], eval_feats, atol=0, rtol=0)


def test_chunked_long_recording_meets_the_same_dither(model):
    from xvector.inference.embed import embed_batch, embed_long

    wav = torch.from_numpy(np.tile(speech_with_gaps(seed=4), 3))  # 15 s, gaps included
    whole = embed_batch(model.embedder, wav[None], torch.tensor([len(wav)]))[0]
    chunked = embed_long(model.embedder, wav, chunk_sec=1.37)  # chunks not on a period boundary
    torch.testing.assert_close(chunked, whole, atol=2e-4, rtol=0)


@pytest.mark.parametrize("vad", [False, True])
def test_exported_graphs_and_int8_apply_the_eval_dither(vad, tmp_path):
    import onnxruntime as ort

    import xvector
    from xvector.features.vad import EnergyVAD
    from xvector.inference.graph import export_onnx, export_torchscript

    models = {p: xvector.load_model(CKPT, precision=p) for p in ("32", "int8")}
    for m in models.values():
        m.embedder.features.vad = EnergyVAD() if vad else None
    embedder = models["32"].embedder  # the inference form: BatchNorms folded
    wav = torch.from_numpy(speech_with_gaps(seed=5))[None]
    lens = torch.tensor([wav.shape[1]])
    with torch.no_grad():
        ref = embedder(wav, lens).numpy()
        embedder.features.frontend.eval_dither = False
        plain = embedder(wav, lens).numpy()
        embedder.features.frontend.eval_dither = True
    if not vad:  # the dither matters on this input (silence kept), so the checks below can fail
        assert cosine(ref, plain) < 0.999
    onnx_path = export_onnx(embedder, tmp_path / "e.onnx")
    got = ort.InferenceSession(str(onnx_path)).run(None, {"wav": wav.numpy(), "wav_lens": lens.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    ts = torch.jit.load(str(export_torchscript(embedder, tmp_path / "e.pt")))
    with torch.no_grad():
        np.testing.assert_allclose(ts(wav, lens).numpy(), ref, atol=1e-4, rtol=0)
        int8 = models["int8"].embedder(wav, lens).numpy()
    assert cosine(int8, ref) > 0.999


# --- energy VAD (Kaldi compute-vad + select-voiced-frames) ---------------------------------------


def _kaldi_compute_vad(log_e: np.ndarray, threshold=5.5, mean_scale=0.5, context=2, proportion=0.12) -> np.ndarray:
    """Kaldi's ComputeVadEnergy (ivector/voice-activity-detection.cc), loop for loop."""
    T = len(log_e)
    thr = threshold + mean_scale * log_e.sum() / T
    out = np.zeros(T, bool)
    for t in range(T):
        num = den = 0
        for t2 in range(t - context, t + context + 1):
            if 0 <= t2 < T:
                den += 1
                num += log_e[t2] > thr
        out[t] = num >= den * proportion
    return out


def test_energy_vad_matches_kaldis_loop():
    from xvector.features.vad import energy_vad

    rng = np.random.default_rng(0)
    lens = [120, 77, 5]
    log_e = torch.zeros(3, 120)
    for i, n in enumerate(lens):
        log_e[i, :n] = torch.from_numpy(np.where(rng.random(n) < 0.5, rng.normal(20, 2, n), rng.normal(6, 1, n)))
    for kw in (dict(), dict(context=0, proportion=0.6), dict(threshold=9.0, mean_scale=0.3, context=4, proportion=0.5)):
        got = energy_vad(log_e, torch.tensor(lens), **kw)
        for i, n in enumerate(lens):
            assert got[i, :n].numpy().tolist() == _kaldi_compute_vad(log_e[i, :n].double().numpy(), **kw).tolist()
            assert not got[i, n:].any()


def test_vad_drops_silence_so_silence_and_level_do_not_move_the_embedding():
    from xvector.features.vad import EnergyVAD
    from xvector.inference.embedder import Embedder
    from xvector.nets.tdnn import XVector

    torch.manual_seed(0)
    fbank = Fbank(num_mel_bins=24, vad=EnergyVAD())
    embedder = Embedder(fbank, XVector(in_channels=24, channels=[32, 32, 32, 32, 64], embed_dim=16,
                                       segment_dims=[16])).eval()
    base = speech_with_gaps(seed=6, level_db=-30.0)
    more_silence = np.concatenate([np.zeros(32000, np.float32), base, np.zeros(16000, np.float32)])
    with torch.no_grad():
        e = lambda w: embedder(torch.from_numpy(np.ascontiguousarray(w))[None])[0].numpy()  # noqa: E731
        ref = e(base)
        for other in (more_silence, base * np.float32(0.1), base * np.float32(10.0)):
            assert cosine(ref, e(other)) >= 0.99
    feats, lens = fbank.eval()(torch.from_numpy(more_silence)[None])
    assert lens[0] < 0.75 * fbank.frontend.frame_lens(torch.tensor([len(more_silence)]))[0]  # silence dropped


def test_vad_keeps_every_frame_of_a_nearly_silent_input():
    from xvector.features.vad import EnergyVAD

    fbank = Fbank(num_mel_bins=24, vad=EnergyVAD(min_frames=30)).eval()
    quiet = torch.zeros(1, 16000)
    quiet[0, 8000:8400] = 0.1  # one loud frame: too few voiced frames, so nothing is dropped
    feats, lens = fbank(quiet)
    assert int(lens[0]) == int(fbank.frontend.frame_lens(torch.tensor([16000]))[0])


def test_vad_batched_equals_unbatched_and_chunked_equals_whole():
    from xvector.features.vad import EnergyVAD
    from xvector.inference.embed import chunked_features

    fbank = Fbank(num_mel_bins=24, vad=EnergyVAD()).eval()
    a, b = (torch.from_numpy(speech_with_gaps(seed=s)) for s in (7, 8))
    n = min(len(a), len(b)) - 5000
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, :n] = a, b[:n]
    feats, lens = fbank(batch, torch.tensor([len(a), n]))
    for i, w in enumerate((a, b[:n])):
        alone, alone_lens = fbank(w[None])
        assert int(lens[i]) == int(alone_lens[0])
        torch.testing.assert_close(feats[i, : lens[i]], alone[0, : alone_lens[0]], atol=1e-5, rtol=0)
    whole, whole_lens = fbank(a[None])
    chunked = chunked_features(fbank, a, chunk_frames=130)
    assert chunked.shape[0] == int(whole_lens[0]) < whole.shape[1]  # silent frames dropped
    torch.testing.assert_close(chunked, whole[0, : whole_lens[0]], atol=1e-4, rtol=0)
