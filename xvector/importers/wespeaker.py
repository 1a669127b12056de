"""WeSpeaker checkpoints (``avg_model.pt`` + ``config.yaml``) → xvector model directories.

A WeSpeaker experiment folder (``exp/<name>/`` of its VoxCeleb recipes, or a released model)
holds ``config.yaml`` (the training config: ``model``, ``model_args``, ``dataset_args``) and a
``state_dict`` in ``models/avg_model.pt`` (or ``avg_model.pt``; any ``.pt`` can be named). The
importer supports the models of WeSpeaker's ``examples/voxceleb/v2`` TDNN family:

============================================  ===================================================
WeSpeaker ``model``                            xvector net
============================================  ===================================================
``XVEC`` (``models/tdnn.py``, pooling TSTP)    :class:`~xvector.nets.tdnn.XVector` with
                                               ``pre_embed_dims=[embed_dim]`` (WeSpeaker embeds at
                                               ``seg_2``), sample-std pooling ``+1e-7``
``ECAPA_TDNN[_GLOB]_c512`` / ``_c1024``        :class:`~xvector.nets.ecapa_chained.ChainedECAPA`
(``models/ecapa_tdnn.py``, pooling ASTP)       with WeSpeaker's options (zero padding, no BN in the
                                               aggregation and attention, sample-std context)
``CAMPPlus`` (``models/campplus.py``, TSTP)    :class:`~xvector.nets.campp.CAMPlusPlus`
                                               (``pool_eps=1e-7``)
============================================  ===================================================

The front-end is :class:`~xvector.features.wespeaker_fbank.WeSpeakerFbank` (``fbank_args``:
Kaldi fbank, Hamming window; utterance mean normalisation as ``apply_cmvn``). The margin head
(``projection.*``) is dropped. Tensor names follow WeSpeaker's published module code (the key
layouts its modules produce are the test fixtures ``tests/fixtures/wespeaker/*.json``); the
forward is checked against a transcription of WeSpeaker's forward on small cases and against
embeddings WeSpeaker's own modules computed (``tests/importers/test_wespeaker.py``). Two exact
re-labellings are applied: WeSpeaker's Res2Net passes its *last* channel group through where
this ECAPA passes the first (the groups are permuted in the layers around it), and its
affine-free BatchNorms get unit scale and zero shift.

Example:
    >>> d = tempfile.mkdtemp()
    >>> config = {"model": "XVEC", "model_args": {"feat_dim": 24, "hid_dim": 16, "stats_dim": 32, "embed_dim": 8},
    ...           "dataset_args": {"fbank_args": {"num_mel_bins": 24}}}
    >>> state = random_state(layout(config), seed=0)
    >>> out = import_wespeaker(write_folder(d, config, state), d + "/model")
    >>> import xvector
    >>> xvector.load_model(out).embed(np.zeros(16000, np.float32) + 0.01).shape
    (8,)
"""

from __future__ import annotations

import os
import re
import tempfile  # noqa: F401 - used by the example
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np  # noqa: F401 - used by the example
import torch
import yaml

from xvector.importers.write import write_imported

CONFIG = "config.yaml"
CHECKPOINTS = ("avg_model.pt", "models/avg_model.pt")
ECAPA_MODELS = {"ECAPA_TDNN_c512": (512, False), "ECAPA_TDNN_GLOB_c512": (512, True),
                "ECAPA_TDNN_c1024": (1024, False), "ECAPA_TDNN_GLOB_c1024": (1024, True)}
MODELS = ("XVEC", "CAMPPlus", *ECAPA_MODELS)
TSTP_EPS = 1e-7  # WeSpeaker's TSTP / ASTP: sqrt(var + 1e-7)


def features_config(config: Mapping, source: str) -> dict[str, Any]:
    """``WeSpeakerFbank`` config of ``dataset_args`` (``fbank_args``, ``resample_rate``, ``cmvn``)."""
    args = config.get("dataset_args") or {}
    if args.get("frontend", "fbank") != "fbank":
        raise ValueError(f"{source}: dataset_args.frontend={args['frontend']!r} is not supported (fbank only)")
    fbank = args.get("fbank_args") or {}
    if (args.get("cmvn_args") or {}).get("norm_var"):
        raise ValueError(f"{source}: dataset_args.cmvn_args.norm_var=true is not supported by the import")
    return {
        "_target_": "xvector.features.wespeaker_fbank.WeSpeakerFbank",
        "num_mel_bins": int(fbank.get("num_mel_bins", 80)), "sample_rate": int(args.get("resample_rate", 16000)),
        "frame_length_ms": float(fbank.get("frame_length", 25)), "frame_shift_ms": float(fbank.get("frame_shift", 10)),
        "dither": float(fbank.get("dither", 1.0)), "cmn": "utterance" if args.get("cmvn", True) else "none",
    }


def model_config(config: Mapping, source: str) -> dict[str, Any]:
    """The xvector net config of WeSpeaker's ``model`` + ``model_args``."""
    name, args = config.get("model"), dict(config.get("model_args") or {})
    pooling = args.get("pooling_func", "ASTP" if name in ECAPA_MODELS else "TSTP")
    if name == "XVEC":
        if pooling != "TSTP":
            raise ValueError(f"{source}: model_args.pooling_func={pooling!r} is not supported for XVEC (TSTP)")
        hid, stats, emb = int(args.get("hid_dim", 512)), int(args.get("stats_dim", 1500)), int(args.get("embed_dim", 512))
        return {"_target_": "xvector.nets.tdnn.XVector", "_partial_": True,
                "channels": [hid, hid, hid, hid, stats], "kernel_sizes": [5, 3, 3, 1, 1], "dilations": [1, 2, 3, 1, 1],
                "embed_dim": emb, "pre_embed_dims": [emb], "segment_dims": [],
                "pooling": {"_target_": "xvector.nets.pooling.UnbiasedStatsPooling", "_partial_": True, "eps": TSTP_EPS}}
    if name in ECAPA_MODELS:
        if pooling != "ASTP":
            raise ValueError(f"{source}: model_args.pooling_func={pooling!r} is not supported for {name} (ASTP)")
        c, glob = ECAPA_MODELS[name]
        return {"_target_": "xvector.nets.ecapa_chained.ChainedECAPA", "_partial_": True,
                "channels": [c, c, c, c, 1536], "kernel_sizes": [5, 3, 3, 3, 1], "dilations": [1, 2, 3, 4, 1],
                "scale": 8, "se_channels": 128, "attention_channels": 128, "global_context": glob,
                "embed_dim": int(args.get("embed_dim", 192)), "padding_mode": "zeros", "aggregate_norm": False,
                "attention_norm": False, "context_unbiased": True, "context_eps": TSTP_EPS, "var_floor": TSTP_EPS,
                "embed_norm": bool(args.get("emb_bn", False))}
    if name == "CAMPPlus":
        if pooling != "TSTP" or args.get("config_str", "batchnorm-relu") != "batchnorm-relu":
            raise ValueError(f"{source}: CAMPPlus with pooling_func={pooling!r}, config_str="
                             f"{args.get('config_str')!r} is not supported (TSTP, batchnorm-relu)")
        return {"_target_": "xvector.nets.campp.CAMPlusPlus", "_partial_": True,
                "growth": int(args.get("growth_rate", 32)), "bn_size": int(args.get("bn_size", 4)),
                "init_channels": int(args.get("init_channels", 128)), "embed_dim": int(args.get("embed_dim", 512)),
                "pool_eps": TSTP_EPS}
    raise ValueError(f"{source}: model {name!r} is not supported; supported: {', '.join(MODELS)}")


def wespeaker_config(config: Mapping, source: str = CONFIG) -> dict[str, Any]:
    """The run config (``data``, ``features``, ``model``) a WeSpeaker ``config.yaml`` describes."""
    features = features_config(config, source)
    if int((config.get("model_args") or {}).get("feat_dim", features["num_mel_bins"])) != features["num_mel_bins"]:
        raise ValueError(f"{source}: model_args.feat_dim differs from dataset_args.fbank_args.num_mel_bins")
    return {"data": {"sample_rate": features["sample_rate"]}, "features": features,
            "model": model_config(config, source)}


def xvec_name(key: str) -> str:
    """``XVEC`` tensor name → :class:`~xvector.nets.tdnn.XVector`'s (``frame_k.conv_1d``, ``seg_1``, ``seg_bn_1``, ``seg_2``)."""
    m = re.fullmatch(r"frame_(\d)\.(conv_1d|bn)\.(.+)", key)
    if m:
        return f"frame_layers.{int(m[1]) - 1}.{'conv' if m[2] == 'conv_1d' else 'norm'}.{m[3]}"
    for theirs, ours in (("seg_1.", "embedding.0."), ("seg_bn_1.", "embedding.2."), ("seg_2.", "embedding.3.")):
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return key  # unknown: reported by the strict load


def ecapa_name(key: str) -> str:
    """WeSpeaker ``ECAPA_TDNN`` tensor name → :class:`~xvector.nets.ecapa_chained.ChainedECAPA`'s."""
    m = re.fullmatch(r"layer1\.(conv|bn)\.(.+)", key)
    if m:
        return f"first.{'conv' if m[1] == 'conv' else 'norm'}.{m[2]}"
    m = re.fullmatch(r"layer([234])\.se_res2block\.(\d)\.(.+)", key)
    if m:
        b, part, name = int(m[1]) - 2, int(m[2]), m[3]
        if part in (0, 2):
            layer = "conv_in" if part == 0 else "conv_out"
            return f"blocks.{b}.{layer}.{name.replace('bn.', 'norm.', 1) if name.startswith('bn.') else name}"
        r = re.fullmatch(r"(convs|bns)\.(\d+)\.(.+)", name)
        if part == 1 and r:
            return f"blocks.{b}.res2.{r[2]}.{'conv' if r[1] == 'convs' else 'norm'}.{r[3]}"
        r = re.fullmatch(r"linear([12])\.(.+)", name)
        if part == 3 and r:
            return f"blocks.{b}.{'se_reduce' if r[1] == '1' else 'se_expand'}.{r[2]}"
        return key
    for theirs, ours in (("conv.", "aggregate.conv."), ("pool.linear1.", "attention.conv."),
                         ("pool.linear2.", "attention_score."), ("bn.", "pool_norm."), ("linear.", "embedding."),
                         ("bn2.", "embed_norm.")):
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return key


_CAMPP_RULES = [
    (r"head\.(.+)", "fcm.{0}"),
    (r"xvector\.tdnn\.linear\.(.+)", "tdnn.{0}"),
    (r"xvector\.tdnn\.nonlinear\.batchnorm\.(.+)", "tdnn_norm.{0}"),
    (r"xvector\.block(\d+)\.tdnnd(\d+)\.nonlinear1\.batchnorm\.(.+)", "blocks.{0-}.{1-}.norm1.{2}"),
    (r"xvector\.block(\d+)\.tdnnd(\d+)\.linear1\.(.+)", "blocks.{0-}.{1-}.bottleneck.{2}"),
    (r"xvector\.block(\d+)\.tdnnd(\d+)\.nonlinear2\.batchnorm\.(.+)", "blocks.{0-}.{1-}.norm2.{2}"),
    (r"xvector\.block(\d+)\.tdnnd(\d+)\.cam_layer\.linear_local\.(.+)", "blocks.{0-}.{1-}.context.local.{2}"),
    (r"xvector\.block(\d+)\.tdnnd(\d+)\.cam_layer\.linear1\.(.+)", "blocks.{0-}.{1-}.context.reduce.{2}"),
    (r"xvector\.block(\d+)\.tdnnd(\d+)\.cam_layer\.linear2\.(.+)", "blocks.{0-}.{1-}.context.expand.{2}"),
    (r"xvector\.transit(\d+)\.nonlinear\.batchnorm\.(.+)", "transits.{0-}.norm.{1}"),
    (r"xvector\.transit(\d+)\.linear\.(.+)", "transits.{0-}.conv.{1}"),
    (r"xvector\.out_nonlinear\.batchnorm\.(.+)", "out_norm.{0}"),
    (r"xvector\.dense\.linear\.(.+)", "embedding.{0}"),
    (r"xvector\.dense\.nonlinear\.batchnorm\.(.+)", "embed_norm.{0}"),
]


def campp_name(key: str) -> str:
    """WeSpeaker (= 3D-Speaker) ``CAMPPlus`` tensor name → :class:`~xvector.nets.campp.CAMPlusPlus`'s."""
    for pattern, template in _CAMPP_RULES:
        m = re.fullmatch(pattern, key)
        if m:
            groups = m.groups()
            out = template
            for i, g in enumerate(groups):  # "{i-}": the 1-based index of WeSpeaker, 0-based here
                out = out.replace(f"{{{i}-}}", str(int(g) - 1) if g.isdigit() else g).replace(f"{{{i}}}", g)
            return out
    return key


NAME_MAPS = {"XVEC": xvec_name, "CAMPPlus": campp_name, **{name: ecapa_name for name in ECAPA_MODELS}}


def _res2_permutation(channels: int, scale: int = 8) -> torch.Tensor:
    """Channel order of this ECAPA's Res2 groups in WeSpeaker's: its last (pass-through) group first."""
    width = channels // scale
    return torch.cat([torch.arange((scale - 1) * width, channels), torch.arange(0, (scale - 1) * width)])


def net_state(model: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """WeSpeaker's ``state_dict`` of ``model`` in this project's names and layout.

    Besides the renaming: affine-free BatchNorms get unit scale and zero shift; 1×1 layers kept
    as ``nn.Linear`` by WeSpeaker (the SE block) or as ``Conv1d`` (CAM++'s dense layer) are
    reshaped; ECAPA's Res2 groups are re-labelled (see :func:`_res2_permutation`).
    """
    out = {NAME_MAPS[model](k): v for k, v in state.items()}
    for key in [k for k in out if k.endswith("running_mean")]:
        prefix = key[: -len("running_mean")]
        if prefix + "weight" not in out and prefix + "bias" not in out and model == "XVEC":
            out[prefix + "weight"] = torch.ones_like(out[key])
            out[prefix + "bias"] = torch.zeros_like(out[key])
    for key, value in list(out.items()):
        if model in ECAPA_MODELS and re.fullmatch(r"blocks\.\d\.se_(reduce|expand)\.weight", key) and value.ndim == 2:
            out[key] = value[..., None]
        if model == "CAMPPlus" and key == "embedding.weight" and value.ndim == 3:
            out[key] = value.squeeze(-1)
    if model in ECAPA_MODELS:
        for b in range(3):  # re-label Res2 groups: conv_in's outputs and conv_out's inputs
            w = out.get(f"blocks.{b}.conv_in.conv.weight")
            if w is None:
                continue
            perm = _res2_permutation(w.shape[0])
            for name in ("conv.weight", "conv.bias", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
                if f"blocks.{b}.conv_in.{name}" in out:
                    out[f"blocks.{b}.conv_in.{name}"] = out[f"blocks.{b}.conv_in.{name}"][perm]
            if f"blocks.{b}.conv_out.conv.weight" in out:
                out[f"blocks.{b}.conv_out.conv.weight"] = out[f"blocks.{b}.conv_out.conv.weight"][:, perm]
    return out


def read_folder(src: str | os.PathLike, checkpoint: str | os.PathLike | None = None) -> tuple[dict, dict, Path]:
    """``(config, state_dict without the projection head, checkpoint path)`` of a WeSpeaker model folder.

    Raises:
        ValueError: naming the folder or file when one is missing or unreadable.
    """
    src = Path(src)
    if not (src / CONFIG).is_file():
        raise ValueError(f"{src}: not a WeSpeaker model folder (no {CONFIG})")
    try:
        config = yaml.safe_load((src / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{src / CONFIG}: cannot read ({err})") from err
    if not isinstance(config, dict):
        raise ValueError(f"{src / CONFIG}: expected a mapping")
    ckpt = Path(checkpoint) if checkpoint else next((src / c for c in CHECKPOINTS if (src / c).is_file()), None)
    if ckpt is None or not ckpt.is_file():
        raise ValueError(f"{src}: no checkpoint ({' or '.join(CHECKPOINTS)}; or give one)")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{ckpt}: cannot read ({err})") from err
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{ckpt}: expected a state_dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("projection.")}
    return config, state, ckpt


def import_wespeaker(
    src: str | os.PathLike,
    out: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    formats: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Import a WeSpeaker model folder (``config.yaml`` + ``avg_model.pt``) into the model directory ``out``.

    Args:
        src: folder with ``config.yaml`` and ``avg_model.pt`` or ``models/avg_model.pt``.
        out: model directory to write.
        checkpoint: another checkpoint of the run (e.g. ``models/model_150.pt``).
        formats: exported graphs to add (``"onnx"``, ``"torchscript"``).
        overwrite: replace an existing ``out``.

    Raises:
        ValueError: naming the file and key of anything missing, unreadable or unsupported.
    """
    config, state, ckpt = read_folder(src, checkpoint)
    run = wespeaker_config(config, str(Path(src) / CONFIG))
    info = {"toolkit": "wespeaker", "architecture": config["model"], "folder": str(Path(src).resolve())}
    return write_imported(out, run, net_state(config["model"], state), str(ckpt), info, formats=formats,
                          overwrite=overwrite)


# --- layouts: for tests and examples ------------------------------------------------------------


def layout(config: Mapping) -> dict[str, list[int]]:
    """The tensor names and shapes of WeSpeaker's module for ``config`` (``projection`` excluded).

    Derived from this project's net by inverting the renaming (:func:`net_state`); the tests
    check it equals the layouts WeSpeaker's own modules produce (``tests/fixtures/wespeaker/*.json``).
    """
    from xvector.inference.model_dir import build_embedder

    model = config["model"]
    ours = build_embedder(wespeaker_config(config)).net.state_dict()
    shapes = {}
    for key, value in ours.items():
        theirs = _inverse_name(model, key)
        if theirs is None:  # the scale / shift of an affine-free BatchNorm
            continue
        shape = list(value.shape)
        if model in ECAPA_MODELS and re.fullmatch(r"blocks\.\d\.se_(reduce|expand)\.weight", key):
            shape = shape[:2]
        if model == "CAMPPlus" and key == "embedding.weight":
            shape = [*shape, 1]
        shapes[theirs] = shape
    return shapes


def _inverse_name(model: str, key: str) -> str | None:
    """WeSpeaker's name of our tensor ``key`` (None for the affine of an affine-free BatchNorm)."""
    if model == "XVEC" and re.fullmatch(r"(frame_layers\.\d\.norm|embedding\.2)\.(weight|bias)", key):
        return None
    candidates = {
        "XVEC": [re.sub(r"^frame_layers\.(\d)\.conv\.", lambda m: f"frame_{int(m[1]) + 1}.conv_1d.", key),
                 re.sub(r"^frame_layers\.(\d)\.norm\.", lambda m: f"frame_{int(m[1]) + 1}.bn.", key),
                 re.sub(r"^embedding\.0\.", "seg_1.", key), re.sub(r"^embedding\.2\.", "seg_bn_1.", key),
                 re.sub(r"^embedding\.3\.", "seg_2.", key)],
    }.get(model)
    if candidates is None:
        candidates = [_campp_inverse(key)] if model == "CAMPPlus" else [_ecapa_inverse(key)]
    for c in candidates:
        if c != key and NAME_MAPS[model](c) == key:
            return c
    raise ValueError(f"no WeSpeaker name for {key!r} of {model}")


def _campp_inverse(key: str) -> str:
    k = re.sub(r"^fcm\.", "head.", key)
    k = re.sub(r"^tdnn\.", "xvector.tdnn.linear.", k)
    k = re.sub(r"^tdnn_norm\.", "xvector.tdnn.nonlinear.batchnorm.", k)
    parts = {"norm1": "nonlinear1.batchnorm", "bottleneck": "linear1", "norm2": "nonlinear2.batchnorm",
             "context.local": "cam_layer.linear_local", "context.reduce": "cam_layer.linear1",
             "context.expand": "cam_layer.linear2"}
    k = re.sub(r"^blocks\.(\d+)\.(\d+)\.(norm1|bottleneck|norm2|context\.local|context\.reduce|context\.expand)\.",
               lambda m: f"xvector.block{int(m[1]) + 1}.tdnnd{int(m[2]) + 1}.{parts[m[3]]}.", k)
    k = re.sub(r"^transits\.(\d+)\.norm\.", lambda m: f"xvector.transit{int(m[1]) + 1}.nonlinear.batchnorm.", k)
    k = re.sub(r"^transits\.(\d+)\.conv\.", lambda m: f"xvector.transit{int(m[1]) + 1}.linear.", k)
    k = re.sub(r"^out_norm\.", "xvector.out_nonlinear.batchnorm.", k)
    k = re.sub(r"^embedding\.", "xvector.dense.linear.", k)
    return re.sub(r"^embed_norm\.", "xvector.dense.nonlinear.batchnorm.", k)


def _ecapa_inverse(key: str) -> str:
    k = re.sub(r"^first\.conv\.", "layer1.conv.", key)
    k = re.sub(r"^first\.norm\.", "layer1.bn.", k)
    m = re.fullmatch(r"blocks\.(\d)\.(.+)", k)
    if m:
        rest = m[2]
        for ours, theirs in ((r"^conv_in\.conv\.", "se_res2block.0.conv."), (r"^conv_in\.norm\.", "se_res2block.0.bn."),
                             (r"^conv_out\.conv\.", "se_res2block.2.conv."), (r"^conv_out\.norm\.", "se_res2block.2.bn."),
                             (r"^res2\.(\d+)\.conv\.", r"se_res2block.1.convs.\1."),
                             (r"^res2\.(\d+)\.norm\.", r"se_res2block.1.bns.\1."),
                             (r"^se_reduce\.", "se_res2block.3.linear1."), (r"^se_expand\.", "se_res2block.3.linear2.")):
            rest = re.sub(ours, theirs, rest)
        return f"layer{int(m[1]) + 2}.{rest}"
    for ours, theirs in (("aggregate.conv.", "conv."), ("attention.conv.", "pool.linear1."),
                         ("attention_score.", "pool.linear2."), ("pool_norm.", "bn."), ("embedding.", "linear."),
                         ("embed_norm.", "bn2.")):
        if k.startswith(ours):
            return theirs + k[len(ours):]
    return k


def random_state(shapes: Mapping[str, Sequence[int]], seed: int = 0, head_classes: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of a layout, BatchNorm statistics positive (and a ``projection.weight`` head if asked)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = list(shapes[key])
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.2 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:  # BatchNorm scale
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        else:  # weights: variance-preserving scale
            fan_in = int(np.prod(shape[1:])) or 1
            state[key] = torch.randn(shape, generator=gen) / fan_in ** 0.5
    if head_classes:
        emb = next(v.shape[0] for k, v in state.items() if k in ("seg_2.weight", "linear.weight", "xvector.dense.linear.weight"))
        state["projection.weight"] = torch.randn(head_classes, emb, generator=gen)
    return state


def write_folder(folder: str | os.PathLike, config: Mapping, state: Mapping[str, torch.Tensor]) -> Path:
    """Write ``config.yaml`` and ``avg_model.pt`` as a WeSpeaker experiment folder holds them."""
    folder = Path(folder)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    torch.save(dict(state), folder / "models" / "avg_model.pt")
    return folder
