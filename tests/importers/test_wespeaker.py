"""WeSpeaker checkpoints → xvector model directories.

WeSpeaker does not install here (no package on PyPI; its code is not vendored), so the import is
checked three ways:

1. **layout**: the tensor names and shapes the importer expects (:func:`layout`) equal those of
   WeSpeaker's published modules (``tests/fixtures/wespeaker/*.json``: ``state_dict()`` of
   ``XVEC``, ``ECAPA_TDNN_GLOB_c512``, ``ECAPA_TDNN_c512`` with ``emb_bn``, ``CAMPPlus`` at the
   recipe sizes and at small ones, recorded from WeSpeaker commit ``dfa7419``);
2. **recorded embeddings**: the embeddings WeSpeaker's own modules gave for the small configs
   (weights :func:`random_state` of the layout, seed 0; the fixture's ``feats``), reproduced by
   the imported nets to 1e-4;
3. **a forward by hand**: WeSpeaker's ``XVEC`` and ``ECAPA_TDNN`` forwards transcribed here as
   functional code over the checkpoint's own tensor names (:func:`_ws_xvec`, :func:`_ws_ecapa`),
   against the imported model on a small case.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio

import xvector
from xvector.features.wespeaker_fbank import WeSpeakerFbank
from xvector.importers.wespeaker import import_wespeaker, layout, random_state, write_folder
from xvector.inference.model_dir import load_model_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wespeaker"
NAMES = ["xvec", "ecapa_glob_c512", "ecapa_c512_embbn", "campplus"]


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _with_fbank(config: dict) -> dict:
    return {**config, "dataset_args": {"fbank_args": {"num_mel_bins": config["model_args"]["feat_dim"],
                                                      "frame_shift": 10, "frame_length": 25, "dither": 1.0}}}


def _feats(feat_dim: int) -> torch.Tensor:
    return torch.randn(1, 230, feat_dim, generator=torch.Generator().manual_seed(5))  # (B, T, F) as WeSpeaker


def _import_small(name: str, tmp_path: Path):
    small = _fixture(name)["small"]
    config = _with_fbank(small["config"])
    state = random_state(small["layout"], seed=0, head_classes=5)  # with WeSpeaker's projection head
    model = xvector.load_model(import_wespeaker(write_folder(tmp_path / "exp", config, state), tmp_path / "model"))
    return model, config, state


@pytest.mark.parametrize("part", ["full", "small"])
@pytest.mark.parametrize("name", NAMES)
def test_layout_equals_wespeakers_modules(name, part):
    fixture = _fixture(name)
    if part not in fixture:
        pytest.skip("small only")
    assert layout(_with_fbank(fixture[part]["config"])) == fixture[part]["layout"]


@pytest.mark.parametrize("name", NAMES)
def test_embeddings_equal_those_wespeakers_modules_computed(name, tmp_path):
    model, config, _ = _import_small(name, tmp_path)
    with torch.no_grad():
        got = model.embedder.net(_feats(config["model_args"]["feat_dim"]).transpose(1, 2))[0].numpy()
    np.testing.assert_allclose(got, np.array(_fixture(name)["small"]["embedding"]), atol=1e-4, rtol=0)


def test_recipe_size_checkpoints_import(tmp_path):
    """The published layouts (recipe sizes, 80-dim fbank) load strictly and embed audio."""
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    for name in ("xvec", "ecapa_glob_c512", "campplus"):
        full = _fixture(name)["full"]
        state = random_state(full["layout"], seed=1, head_classes=17)
        out = import_wespeaker(write_folder(tmp_path / name, _with_fbank(full["config"]), state), tmp_path / f"{name}_model")
        emb = xvector.load_model(out).embed(wav)
        assert emb.shape == (full["config"]["model_args"]["embed_dim"],) and np.isfinite(emb).all()
        info = json.loads((out / "info.json").read_text())
        assert info["imported_from"]["toolkit"] == "wespeaker" and info["imported_from"]["architecture"] == full["config"]["model"]


# --- WeSpeaker's forwards, transcribed by hand (wespeaker/models/tdnn.py, ecapa_tdnn.py, pooling_layers.py) ---


def _bn(sd: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Eval BatchNorm over dim 1 (affine-free when the checkpoint has no weight)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - sd[prefix + "running_mean"].view(shape)) / torch.sqrt(sd[prefix + "running_var"].view(shape) + 1e-5)
    if prefix + "weight" in sd:
        y = y * sd[prefix + "weight"].view(shape) + sd[prefix + "bias"].view(shape)
    return y


def _ws_xvec(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """XVEC.forward: 5 × (Conv1d, ReLU, BN without affine), TSTP, seg_1, ReLU, seg_bn_1, seg_2 → embed_b."""
    h = x.permute(0, 2, 1)
    for k, dilation in zip(range(1, 6), (1, 2, 3, 1, 1)):
        h = F.conv1d(h, sd[f"frame_{k}.conv_1d.weight"], sd[f"frame_{k}.conv_1d.bias"], dilation=dilation)
        h = _bn(sd, f"frame_{k}.bn.", F.relu(h))
    stats = torch.cat([h.mean(-1), torch.sqrt(torch.var(h, dim=-1) + 1e-7)], 1)
    a = F.linear(stats, sd["seg_1.weight"], sd["seg_1.bias"])
    return F.linear(_bn(sd, "seg_bn_1.", F.relu(a)), sd["seg_2.weight"], sd["seg_2.bias"])


def _ws_ecapa(sd: dict, x: torch.Tensor, global_context: bool, emb_bn: bool) -> torch.Tensor:
    """ECAPA_TDNN.forward with ASTP (WeSpeaker's Res2 passes its *last* group through)."""
    def conv_relu_bn(h, prefix, padding=0, dilation=1):
        h = F.conv1d(h, sd[prefix + "conv.weight"], sd[prefix + "conv.bias"], padding=padding, dilation=dilation)
        return _bn(sd, prefix + "bn.", F.relu(h))

    def se_res2block(h, layer, dilation):
        p = f"layer{layer}.se_res2block."
        out = conv_relu_bn(h, p + "0.")
        width = out.shape[1] // 8
        spx, parts = torch.split(out, width, 1), []
        sp = spx[0]
        for i in range(7):
            if i >= 1:
                sp = sp + spx[i]
            sp = F.conv1d(sp, sd[f"{p}1.convs.{i}.weight"], sd[f"{p}1.convs.{i}.bias"], padding=dilation, dilation=dilation)
            sp = _bn(sd, f"{p}1.bns.{i}.", F.relu(sp))
            parts.append(sp)
        out = conv_relu_bn(torch.cat([*parts, spx[7]], 1), p + "2.")
        s = F.relu(F.linear(out.mean(dim=2), sd[p + "3.linear1.weight"], sd[p + "3.linear1.bias"]))
        s = torch.sigmoid(F.linear(s, sd[p + "3.linear2.weight"], sd[p + "3.linear2.bias"]))
        return h + out * s.unsqueeze(2)

    out1 = conv_relu_bn(x.permute(0, 2, 1), "layer1.", padding=2)
    out2 = se_res2block(out1, 2, 2)
    out3 = se_res2block(out2, 3, 3)
    out4 = se_res2block(out3, 4, 4)
    h = F.relu(F.conv1d(torch.cat([out2, out3, out4], 1), sd["conv.weight"], sd["conv.bias"]))
    x_in = h
    if global_context:
        mean = h.mean(-1, keepdim=True).expand_as(h)
        std = torch.sqrt(torch.var(h, dim=-1, keepdim=True) + 1e-7).expand_as(h)
        x_in = torch.cat([h, mean, std], 1)
    alpha = torch.tanh(F.conv1d(x_in, sd["pool.linear1.weight"], sd["pool.linear1.bias"]))
    alpha = torch.softmax(F.conv1d(alpha, sd["pool.linear2.weight"], sd["pool.linear2.bias"]), dim=2)
    mean = (alpha * h).sum(2)
    std = torch.sqrt(((alpha * h**2).sum(2) - mean**2).clamp(min=1e-7))
    out = F.linear(_bn(sd, "bn.", torch.cat([mean, std], 1)), sd["linear.weight"], sd["linear.bias"])
    return _bn(sd, "bn2.", out) if emb_bn else out


@pytest.mark.parametrize("name", ["xvec", "ecapa_glob_c512", "ecapa_c512_embbn"])
def test_imported_net_equals_wespeakers_forward_by_hand(name, tmp_path):
    model, config, state = _import_small(name, tmp_path)
    feats = _feats(config["model_args"]["feat_dim"])
    with torch.no_grad():
        if name == "xvec":
            ref = _ws_xvec(state, feats)
        else:
            ref = _ws_ecapa(state, feats, "GLOB" in config["model"], config["model_args"].get("emb_bn", False))
        got = model.embedder.net(feats.transpose(1, 2))
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-4, rtol=0)
    assert ref.abs().max() > 0.1


def test_front_end_is_kaldi_fbank_with_a_hamming_window_and_mean_norm():
    wav = 0.1 * torch.randn(1, 23456, generator=torch.Generator().manual_seed(0))
    ours, lens = WeSpeakerFbank(num_mel_bins=80).eval()(wav, torch.tensor([23456]))
    ref = torchaudio.compliance.kaldi.fbank(wav * (1 << 15), num_mel_bins=80, frame_length=25, frame_shift=10,
                                            dither=0.0, sample_frequency=16000, window_type="hamming", use_energy=False)
    assert ours.shape[1] == ref.shape[0] == int(lens[0])
    torch.testing.assert_close(ours[0], ref - ref.mean(0), atol=2e-3, rtol=1e-4)


def test_bad_folders_and_unsupported_models_are_refused(tmp_path):
    small = _fixture("xvec")["small"]
    config = _with_fbank(small["config"])
    folder = write_folder(tmp_path / "exp", config, random_state(small["layout"]))
    with pytest.raises(ValueError, match="model 'ResNet34' is not supported"):
        import_wespeaker(write_folder(tmp_path / "r", {**config, "model": "ResNet34"}, {}), tmp_path / "m")
    with pytest.raises(ValueError, match="pooling_func='ASTP' is not supported for XVEC"):
        bad = {**config, "model_args": {**config["model_args"], "pooling_func": "ASTP"}}
        import_wespeaker(write_folder(tmp_path / "p", bad, {}), tmp_path / "m")
    state = random_state(small["layout"])
    del state["seg_2.weight"]
    with pytest.raises(ValueError, match="avg_model.pt: the weights do not fit .* no tensor for 'embedding.3.weight'"):
        import_wespeaker(write_folder(tmp_path / "missing", config, state), tmp_path / "m")
    (folder / "models" / "avg_model.pt").unlink()
    with pytest.raises(ValueError, match="no checkpoint"):
        import_wespeaker(folder, tmp_path / "m")
    with pytest.raises(ValueError, match="not a WeSpeaker model folder"):
        import_wespeaker(tmp_path / "nothing", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_imported_xvec_folds_and_runs_int8(tmp_path):
    """WeSpeaker's XVEC is a TDNN x-vector here: BatchNorm folding and int8 frame layers apply."""
    small = _fixture("xvec")["small"]
    out = import_wespeaker(write_folder(tmp_path / "exp", _with_fbank(small["config"]), random_state(small["layout"])),
                           tmp_path / "model")
    wav = (0.1 * np.random.default_rng(1).standard_normal(32000)).astype(np.float32)
    unfolded = xvector.load_model(out).embedder  # for_inference: folded
    with torch.no_grad():
        plain = load_model_dir(out).embedder(torch.from_numpy(wav)[None])[0].numpy()
        folded = unfolded(torch.from_numpy(wav)[None])[0].numpy()
    np.testing.assert_allclose(folded, plain, atol=1e-4, rtol=0)
    int8 = xvector.load_model(out, precision="int8").embed(wav)
    assert float(int8 @ plain / np.linalg.norm(int8) / np.linalg.norm(plain)) > 0.999
