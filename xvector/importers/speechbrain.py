"""SpeechBrain speaker models (``hyperparams.yaml`` + ``embedding_model.ckpt``) → xvector model directories.

A SpeechBrain pretrained folder (``speechbrain/spkrec-ecapa-voxceleb``, ``spkrec-xvect-voxceleb``,
or a model trained with its VoxCeleb recipes) holds ``hyperparams.yaml`` (HyperPyYAML, read by
:mod:`xvector.importers.hyperyaml`), ``embedding_model.ckpt`` (the embedding net's
``state_dict``) and optionally ``mean_var_norm_emb.ckpt`` (a global embedding mean) and the
classifier. The importer reads three entries of the YAML:

* ``compute_features`` (``speechbrain.lobes.features.Fbank``) and ``mean_var_norm``
  (``InputNormalization(norm_type="sentence", std_norm=False)``) → the front-end
  :class:`~xvector.features.speechbrain_fbank.SpeechBrainFbank`;
* ``embedding_model``: ``speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`` →
  :class:`~xvector.nets.ecapa_chained.ChainedECAPA` with SpeechBrain's options, or
  ``speechbrain.lobes.models.Xvector.Xvector`` →
  :class:`~xvector.nets.speechbrain_xvector.SpeechBrainXVector`;

and renames the checkpoint's tensors (:func:`ecapa_state`, :func:`xvector_state`). Parity is
tested against SpeechBrain 1.1.2's own forward (``EncoderClassifier.encode_batch`` on the
folder written the way its pretrained folders are): embeddings equal to 1e-4
(``tests/importers/test_speechbrain.py``). Options SpeechBrain offers that these nets do not
(deltas, grouped convolutions, other activations, global input normalisation) are refused with
an error naming the key, never imported approximately.

Example:
    >>> d = tempfile.mkdtemp()
    >>> _ = write_fixture(d, tdnn_channels=[16, 16, 16, 16, 32], lin_neurons=8)
    >>> out = import_speechbrain(d, d + "/model")
    >>> import xvector
    >>> xvector.load_model(out).embed(np.zeros(16000, np.float32) + 0.01).shape
    (8,)
"""

from __future__ import annotations

import os
import re
import tempfile  # noqa: F401 - used by the example
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xvector.importers.hyperyaml import Node, load
from xvector.importers.write import write_imported

HYPERPARAMS = "hyperparams.yaml"
EMBEDDING_CKPT = "embedding_model.ckpt"
EMBEDDING_MEAN_CKPT = "mean_var_norm_emb.ckpt"

ECAPA = "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN"
XVECTOR = "speechbrain.lobes.models.Xvector.Xvector"
FBANK = "speechbrain.lobes.features.Fbank"
INPUT_NORM = "speechbrain.processing.features.InputNormalization"


def _node(hparams: Mapping, key: str, source: str, targets: Sequence[str]) -> Node:
    node = hparams.get(key)
    if not isinstance(node, Node) or node.kind != "new":
        raise ValueError(f"{source}: '{key}' is not a '!new:' object (found {node!r})")
    if node.target not in targets:
        raise ValueError(f"{source}: '{key}' is {node.target}; supported: {', '.join(targets)}")
    return node


def _refuse(kwargs: Mapping, key: str, allowed: Callable[[Any], bool], source: str, what: str) -> None:
    if key in kwargs and not allowed(kwargs[key]):
        raise ValueError(f"{source}: {what}.{key}={kwargs[key]!r} is not supported by the import")


def features_config(hparams: Mapping, source: str) -> dict[str, Any]:
    """The ``features`` config of ``compute_features`` + ``mean_var_norm``."""
    fb = _node(hparams, "compute_features", source, [FBANK]).kwargs
    for key, ok in (("deltas", lambda v: not v), ("context", lambda v: not v),
                    ("filter_shape", lambda v: v == "triangular"), ("requires_grad", lambda v: not v)):
        _refuse(fb, key, ok, source, "compute_features")
    norm = _node(hparams, "mean_var_norm", source, [INPUT_NORM]).kwargs
    if norm.get("norm_type", "global") != "sentence" or norm.get("std_norm", True):
        raise ValueError(f"{source}: mean_var_norm must be InputNormalization(norm_type=sentence, std_norm=False) "
                         f"(got {norm}); other normalisations are not supported by the import")
    sample_rate = int(fb.get("sample_rate", 16000))
    return {
        "_target_": "xvector.features.speechbrain_fbank.SpeechBrainFbank",
        "num_mel_bins": int(fb.get("n_mels", 40)), "sample_rate": sample_rate,
        "n_fft": int(fb.get("n_fft", 400)), "win_length_ms": float(fb.get("win_length", 25)),
        "hop_length_ms": float(fb.get("hop_length", 10)), "f_min": float(fb.get("f_min", 0)),
        "f_max": None if fb.get("f_max") is None else float(fb["f_max"]), "mean_norm": True,
    }


def _activation(kwargs: Mapping, default: str) -> str:
    act = kwargs.get("activation")
    return act.target if isinstance(act, Node) else default


def ecapa_config(kwargs: Mapping, source: str) -> dict[str, Any]:
    """``ChainedECAPA`` config of SpeechBrain's ``ECAPA_TDNN`` arguments."""
    if _activation(kwargs, "torch.nn.ReLU") != "torch.nn.ReLU":
        raise ValueError(f"{source}: embedding_model.activation={kwargs['activation'].target} is not supported")
    _refuse(kwargs, "groups", lambda v: all(g == 1 for g in v), source, "embedding_model")
    channels = list(kwargs.get("channels", [512, 512, 512, 512, 1536]))
    if len(set(channels[:-1])) != 1:  # SpeechBrain would add 1x1 shortcut convolutions
        raise ValueError(f"{source}: embedding_model.channels={channels}: blocks of different widths are not "
                         "supported by the import")
    return {
        "_target_": "xvector.nets.ecapa_chained.ChainedECAPA", "_partial_": True,
        "channels": channels, "kernel_sizes": list(kwargs.get("kernel_sizes", [5, 3, 3, 3, 1])),
        "dilations": list(kwargs.get("dilations", [1, 2, 3, 4, 1])),
        "scale": int(kwargs.get("res2net_scale", 8)), "se_channels": int(kwargs.get("se_channels", 128)),
        "attention_channels": int(kwargs.get("attention_channels", 128)),
        "global_context": bool(kwargs.get("global_context", True)),
        "embed_dim": int(kwargs.get("lin_neurons", 192)),
        "padding_mode": "reflect", "aggregate_norm": True, "attention_norm": True,
        "context_unbiased": False, "context_eps": 0.0, "var_floor": 1e-12, "embed_norm": False,
    }


def xvector_config(kwargs: Mapping, source: str) -> dict[str, Any]:
    """``SpeechBrainXVector`` config of SpeechBrain's ``Xvector`` arguments."""
    act = _activation(kwargs, "torch.nn.LeakyReLU")
    slopes = {"torch.nn.LeakyReLU": 0.01, "torch.nn.ReLU": 0.0}
    if act not in slopes:
        raise ValueError(f"{source}: embedding_model.activation={act} is not supported (LeakyReLU or ReLU)")
    n = int(kwargs.get("tdnn_blocks", 5))
    pick = lambda key, default: list(kwargs.get(key, default))[:n]  # noqa: E731
    return {
        "_target_": "xvector.nets.speechbrain_xvector.SpeechBrainXVector", "_partial_": True,
        "channels": pick("tdnn_channels", [512, 512, 512, 512, 1500]),
        "kernel_sizes": pick("tdnn_kernel_sizes", [5, 3, 3, 1, 1]),
        "dilations": pick("tdnn_dilations", [1, 2, 3, 1, 1]),
        "embed_dim": int(kwargs.get("lin_neurons", 512)), "negative_slope": slopes[act],
    }


def _rename(state: Mapping[str, torch.Tensor], rules: Sequence[tuple[str, Any]], source: str) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            if re.fullmatch(pattern, key):
                new = re.sub(pattern, repl, key)
                out[new] = value.squeeze(-1) if new == "embedding.weight" and value.ndim == 3 else value
                break
        else:
            raise ValueError(f"{source}: tensor {key!r} has no counterpart in the imported net")
    return out


def ecapa_state(state: Mapping[str, torch.Tensor], source: str = EMBEDDING_CKPT) -> dict[str, torch.Tensor]:
    """SpeechBrain ``ECAPA_TDNN`` tensor names → :class:`~xvector.nets.ecapa_chained.ChainedECAPA`'s."""
    block = lambda m: f"blocks.{int(m[1]) - 1}."  # noqa: E731 - SpeechBrain's blocks.0 is the first layer
    rules = [
        (r"blocks\.0\.conv\.conv\.(.+)", r"first.conv.\1"),
        (r"blocks\.0\.norm\.norm\.(.+)", r"first.norm.\1"),
        (r"blocks\.(\d+)\.tdnn1\.conv\.conv\.(.+)", lambda m: block(m) + f"conv_in.conv.{m[2]}"),
        (r"blocks\.(\d+)\.tdnn1\.norm\.norm\.(.+)", lambda m: block(m) + f"conv_in.norm.{m[2]}"),
        (r"blocks\.(\d+)\.res2net_block\.blocks\.(\d+)\.conv\.conv\.(.+)", lambda m: block(m) + f"res2.{m[2]}.conv.{m[3]}"),
        (r"blocks\.(\d+)\.res2net_block\.blocks\.(\d+)\.norm\.norm\.(.+)", lambda m: block(m) + f"res2.{m[2]}.norm.{m[3]}"),
        (r"blocks\.(\d+)\.tdnn2\.conv\.conv\.(.+)", lambda m: block(m) + f"conv_out.conv.{m[2]}"),
        (r"blocks\.(\d+)\.tdnn2\.norm\.norm\.(.+)", lambda m: block(m) + f"conv_out.norm.{m[2]}"),
        (r"blocks\.(\d+)\.se_block\.conv1\.conv\.(.+)", lambda m: block(m) + f"se_reduce.{m[2]}"),
        (r"blocks\.(\d+)\.se_block\.conv2\.conv\.(.+)", lambda m: block(m) + f"se_expand.{m[2]}"),
        (r"mfa\.conv\.conv\.(.+)", r"aggregate.conv.\1"),
        (r"mfa\.norm\.norm\.(.+)", r"aggregate.norm.\1"),
        (r"asp\.tdnn\.conv\.conv\.(.+)", r"attention.conv.\1"),
        (r"asp\.tdnn\.norm\.norm\.(.+)", r"attention.norm.\1"),
        (r"asp\.conv\.conv\.(.+)", r"attention_score.\1"),
        (r"asp_bn\.norm\.(.+)", r"pool_norm.\1"),
        (r"fc\.conv\.(.+)", r"embedding.\1"),
    ]
    return _rename(state, rules, source)


def xvector_state(state: Mapping[str, torch.Tensor], num_layers: int, source: str = EMBEDDING_CKPT) -> dict[str, torch.Tensor]:
    """SpeechBrain ``Xvector`` tensor names (``blocks.3i`` conv, ``blocks.3i+2`` BN, ``blocks.3n+1`` linear) → ours."""
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r"blocks\.(\d+)\.(conv|norm|w)\.(.+)", key)
        index = int(m[1]) if m else -1
        if m and m[2] == "conv" and index % 3 == 0 and index // 3 < num_layers:
            out[f"frame_layers.{index // 3}.conv.{m[3]}"] = value
        elif m and m[2] == "norm" and index % 3 == 2 and index // 3 < num_layers:
            out[f"frame_layers.{index // 3}.norm.{m[3]}"] = value
        elif m and m[2] == "w" and index == 3 * num_layers + 1:
            out[f"embedding.{m[3]}"] = value
        else:
            raise ValueError(f"{source}: tensor {key!r} has no counterpart in the imported net")
    return out


def read_folder(src: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], Path]:
    """``(hyperparams, embedding_model state_dict, folder)`` of a SpeechBrain model folder.

    Raises:
        ValueError: naming the folder or file when one is missing or unreadable.
    """
    src = Path(src)
    for name in (HYPERPARAMS, EMBEDDING_CKPT):
        if not (src / name).is_file():
            raise ValueError(f"{src}: not a SpeechBrain model folder (no {name})")
    hparams = load(src / HYPERPARAMS)
    try:
        state = torch.load(src / EMBEDDING_CKPT, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{src / EMBEDDING_CKPT}: cannot read ({err})") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{src / EMBEDDING_CKPT}: expected a state_dict of tensors")
    return hparams, dict(state), src


def _embedding_mean(src: Path, dim: int) -> np.ndarray | None:
    path = src / EMBEDDING_MEAN_CKPT
    try:
        stats = torch.load(path, map_location="cpu", weights_only=True)
        mean = torch.as_tensor(stats["glob_mean"]).reshape(-1).double().numpy()
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{path}: cannot read the embedding mean ({err})") from err
    if mean.shape != (dim,):
        raise ValueError(f"{path}: mean of shape {mean.shape}, the embeddings are {dim}-dim")
    return mean.astype(np.float32)


def speechbrain_config(hparams: Mapping, source: str = HYPERPARAMS) -> dict[str, Any]:
    """The run config (``data``, ``features``, ``model``) a SpeechBrain ``hyperparams.yaml`` describes."""
    features = features_config(hparams, source)
    node = _node(hparams, "embedding_model", source, [ECAPA, XVECTOR])
    model = ecapa_config(node.kwargs, source) if node.target == ECAPA else xvector_config(node.kwargs, source)
    return {"data": {"sample_rate": features["sample_rate"]}, "features": features, "model": model}


def import_speechbrain(
    src: str | os.PathLike,
    out: str | os.PathLike,
    with_mean: bool = False,
    formats: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Import a SpeechBrain speaker model folder into the model directory ``out``.

    Args:
        src: folder with ``hyperparams.yaml`` and ``embedding_model.ckpt``.
        out: model directory to write.
        with_mean: store ``mean_var_norm_emb.ckpt``'s global embedding mean as ``mean.npy``
            (subtracted before cosine scoring). Off by default: SpeechBrain's ``verify_batch``
            scores the raw embeddings.
        formats: exported graphs to add (``"onnx"``, ``"torchscript"``).
        overwrite: replace an existing ``out``.

    Raises:
        ValueError: naming the file and key of anything missing, unreadable or unsupported.
    """
    hparams, state, src = read_folder(src)
    config = speechbrain_config(hparams, str(src / HYPERPARAMS))
    ckpt = str(src / EMBEDDING_CKPT)
    model = config["model"]
    if model["_target_"].endswith("ChainedECAPA"):
        net_state, arch = ecapa_state(state, ckpt), "ECAPA_TDNN"
    else:
        net_state, arch = xvector_state(state, len(model["channels"]), ckpt), "Xvector"
    mean = _embedding_mean(src, model["embed_dim"]) if with_mean else None
    return write_imported(out, config, net_state, ckpt, {"toolkit": "speechbrain", "architecture": arch,
                                                         "folder": str(src.resolve())},
                          mean=mean, formats=formats, overwrite=overwrite)


def write_fixture(folder: str | os.PathLike, n_mels: int = 24, seed: int = 0, **arch: Any) -> Path:
    """Write a SpeechBrain-layout x-vector folder with random weights *without SpeechBrain* (examples, CLI tests).

    The YAML is what ``spkrec-xvect-voxceleb`` holds (its ``Xvector`` arguments from ``arch``:
    ``tdnn_channels``, ``lin_neurons`` ...); the weights are a random
    :class:`~xvector.nets.speechbrain_xvector.SpeechBrainXVector` renamed to SpeechBrain's names.
    The parity tests build their folders with SpeechBrain itself.
    """
    from xvector.inference.model_dir import build_embedder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"n_mels: {n_mels}", "compute_features: !new:speechbrain.lobes.features.Fbank",
             "    n_mels: !ref <n_mels>", "mean_var_norm: !new:speechbrain.processing.features.InputNormalization",
             "    norm_type: sentence", "    std_norm: False", f"embedding_model: !new:{XVECTOR}",
             "    in_channels: !ref <n_mels>", "    activation: !name:torch.nn.LeakyReLU"]
    lines += [f"    {k}: {list(v) if isinstance(v, (list, tuple)) else v}" for k, v in arch.items()]
    (folder / HYPERPARAMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    net = build_embedder(speechbrain_config(load(folder / HYPERPARAMS))).net
    theirs = {}
    for key, value in net.state_dict().items():
        m = re.fullmatch(r"frame_layers\.(\d+)\.(conv|norm)\.(.+)", key)
        if m:
            theirs[f"blocks.{3 * int(m[1]) + (0 if m[2] == 'conv' else 2)}.{m[2]}.{m[3]}"] = value
        else:
            theirs[f"blocks.{3 * len(net.frame_layers) + 1}.w.{key.split('.', 1)[1]}"] = value
    torch.save(theirs, folder / EMBEDDING_CKPT)
    return folder
