"""SpeechBrain checkpoints → xvector model directories: parity with SpeechBrain 1.1.2's own forward.

Each case builds SpeechBrain's own net with random weights (BatchNorm statistics moved off their
initial values), saves it the way its pretrained folders are laid out (``hyperparams.yaml`` with
the pretrainer, ``embedding_model.ckpt``, ``classifier.ckpt``, ``mean_var_norm_emb.ckpt``,
``label_encoder.txt``), loads that folder with SpeechBrain's ``EncoderClassifier.from_hparams``
and imports it with ``xvector-import``; the embeddings of the same waveform must agree to 1e-4.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

import xvector
from xvector.importers.speechbrain import import_speechbrain

sb = pytest.importorskip("speechbrain")

ECAPA_YAML = """\
# ############################################################################
# Model: ECAPA big for Speaker verification (the layout of speechbrain/spkrec-ecapa-voxceleb)
# ############################################################################

# Feature parameters
n_mels: 80

# Pretrain folder
pretrained_path: {folder}

# Output parameters
out_n_neurons: 7

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: {attention}
    se_channels: {se}
    lin_neurons: {emb}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {emb}
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

XVECT_YAML = """\
# ############################################################################
# Model: xvector for Speaker verification (the layout of speechbrain/spkrec-xvect-voxceleb)
# ############################################################################

# Feature parameters
n_mels: 24

# Pretrain folder
pretrained_path: {folder}

# Output parameters
out_n_neurons: 7
emb_dim: {emb}

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.Xvector.Xvector
    in_channels: !ref <n_mels>
    activation: !name:torch.nn.LeakyReLU
    tdnn_blocks: 5
    tdnn_channels: {channels}
    tdnn_kernel_sizes: [5, 3, 3, 1, 1]
    tdnn_dilations: [1, 2, 3, 1, 1]
    lin_neurons: !ref <emb_dim>

classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, !ref <emb_dim>]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: !ref <emb_dim>
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

CASES = {
    # small widths: fast; "full" is spkrec-ecapa-voxceleb's layout (C = 1024, aggregation 3072)
    "ecapa-small": ("ecapa", dict(channels=[64, 64, 64, 64, 192], attention=16, se=16, emb=32)),
    "ecapa-spkrec": ("ecapa", dict(channels=[1024, 1024, 1024, 1024, 3072], attention=128, se=128, emb=192)),
    "xvect-small": ("xvector", dict(channels=[64, 64, 64, 64, 128], emb=32)),
    "xvect-spkrec": ("xvector", dict(channels=[512, 512, 512, 512, 1500], emb=512)),
}


def _randomise_batchnorms(net: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(0.5 * torch.randn(n, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=gen))


def write_speechbrain_folder(folder, kind: str, arch: dict, seed: int = 0):
    """A pretrained-model folder as SpeechBrain lays it out, its nets built by SpeechBrain itself."""
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.encoder import CategoricalEncoder

    folder.mkdir(parents=True, exist_ok=True)
    template = ECAPA_YAML if kind == "ecapa" else XVECT_YAML
    text = template.format(folder=folder, channels=arch["channels"], emb=arch["emb"],
                           attention=arch.get("attention"), se=arch.get("se"))
    (folder / "hyperparams.yaml").write_text(text)
    torch.manual_seed(seed)
    hparams = load_hyperpyyaml(text)
    net = hparams["embedding_model"]
    _randomise_batchnorms(net, seed)
    torch.save(net.state_dict(), folder / "embedding_model.ckpt")
    torch.save(hparams["classifier"].state_dict(), folder / "classifier.ckpt")
    torch.save({"count": 10, "glob_mean": 0.1 * torch.randn(arch["emb"]), "glob_std": torch.ones(arch["emb"])},
               folder / "mean_var_norm_emb.ckpt")
    encoder = CategoricalEncoder()
    encoder.update_from_iterable([f"spk{i}" for i in range(7)])
    encoder.save(folder / "label_encoder.txt")
    return folder


def _waveforms():
    gen = torch.Generator().manual_seed(3)
    t = torch.arange(16000 * 3) / 16000
    speechy = 0.3 * torch.sin(2 * np.pi * 180 * t) * (1 + torch.sin(2 * np.pi * 3 * t)) + 0.05 * torch.randn(len(t), generator=gen)
    return [speechy, 0.1 * torch.randn(16000 * 2 + 77, generator=gen)]


@pytest.mark.parametrize("case", [c if "small" in c else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_imported_embeddings_equal_speechbrains_own(case, tmp_path):
    from speechbrain.inference.speaker import EncoderClassifier

    kind, arch = CASES[case]
    folder = write_speechbrain_folder(tmp_path / "pretrained", kind, arch)
    theirs = EncoderClassifier.from_hparams(source=str(folder), savedir=str(tmp_path / "sb_savedir"),
                                            run_opts={"device": "cpu"})
    out = import_speechbrain(folder, tmp_path / "model")
    ours = xvector.load_model(out)
    for wav in _waveforms():
        with torch.no_grad():
            ref = theirs.encode_batch(wav[None]).reshape(-1).numpy()
        got = ours.embed(wav.numpy(), sample_rate=16000)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
        assert np.abs(ref).max() > 0.05  # a real signal, not a vanishing one


def test_padded_batch_of_imported_model_equals_each_alone(tmp_path):
    """SpeechBrain's batched forward depends on the batch; the imported model's does not."""
    folder = write_speechbrain_folder(tmp_path / "pretrained", *CASES["ecapa-small"])
    model = xvector.load_model(import_speechbrain(folder, tmp_path / "model"))
    wavs = [w.numpy() for w in _waveforms()]
    batch = model.embed(wavs, sample_rate=16000)
    for w, b in zip(wavs, batch):
        np.testing.assert_allclose(b, model.embed(w, sample_rate=16000), atol=1e-5, rtol=0)


def test_with_mean_stores_speechbrains_embedding_mean(tmp_path):
    folder = write_speechbrain_folder(tmp_path / "pretrained", *CASES["xvect-small"])
    stats = torch.load(folder / "mean_var_norm_emb.ckpt")
    model = xvector.load_model(import_speechbrain(folder, tmp_path / "model", with_mean=True))
    np.testing.assert_allclose(model.mean, stats["glob_mean"].numpy(), rtol=0, atol=0)


def test_unsupported_options_are_refused_naming_the_key(tmp_path):
    folder = write_speechbrain_folder(tmp_path / "pretrained", *CASES["xvect-small"])
    text = (folder / "hyperparams.yaml").read_text()
    (folder / "hyperparams.yaml").write_text(text.replace("    norm_type: sentence\n    std_norm: False",
                                                          "    norm_type: global", 1))
    with pytest.raises(ValueError, match="mean_var_norm must be InputNormalization"):
        import_speechbrain(folder, tmp_path / "model")
    (folder / "hyperparams.yaml").write_text(text.replace("!name:torch.nn.LeakyReLU", "!name:torch.nn.PReLU", 1))
    with pytest.raises(ValueError, match="activation=torch.nn.PReLU is not supported"):
        import_speechbrain(folder, tmp_path / "model")
    (folder / "hyperparams.yaml").write_text(text)
    torch.save({"blocks.0.conv.weight": torch.zeros(3)}, folder / "embedding_model.ckpt")
    with pytest.raises(ValueError, match="embedding_model.ckpt: the weights do not fit"):
        import_speechbrain(folder, tmp_path / "model")
    (folder / "embedding_model.ckpt").unlink()
    with pytest.raises(ValueError, match="not a SpeechBrain model folder"):
        import_speechbrain(folder, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_hyperparams_refs_and_tags():
    from xvector.importers.hyperyaml import Node, loads

    h = loads(textwrap.dedent("""\
        base: /m
        dims: [3, 4]
        n: !ref <dims[1]>
        model: !new:pkg.Net
            width: !ref <n> * 2
            act: !name:torch.nn.ReLU
        path: !ref <base>/x.ckpt
        shape: !tuple (1, 2)
        todo: !PLACEHOLDER
        extra: !include:other.yaml
        """))
    assert h["n"] == 4 and h["model"].kwargs["width"] == 8 and h["path"] == "/m/x.ckpt"
    assert isinstance(h["model"].kwargs["act"], Node) and h["shape"] == [1, 2] and h["todo"] is None
    assert h["extra"].kind == "include" and h["extra"].target == "other.yaml"
    with pytest.raises(ValueError, match="names no key"):
        loads("a: !ref <missing>\n")
