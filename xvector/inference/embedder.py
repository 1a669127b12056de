"""Waveform → embedding: a feature front-end and an embedding net, with lengths throughout.

This is everything extraction needs from a trained system (the classification head stays
behind), and the unit a checkpoint rebuilds from its saved config.

Example:
    >>> import torch
    >>> from xvector.features.fbank import Fbank
    >>> from xvector.nets.tdnn import XVector
    >>> embedder = Embedder(Fbank(num_mel_bins=24), XVector(in_channels=24)).eval()
    >>> embedder(torch.randn(2, 16000), torch.tensor([16000, 12000])).shape
    torch.Size([2, 512])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from omegaconf import DictConfig

CONFIG_KEY = "xvector_config"  # where a training checkpoint keeps its run's config

#: ``_target_`` module prefixes that moved when the package took its cli/training/inference/
#: corpora layout (issue 14): configs stored in earlier checkpoints and model directories name
#: the old ones, and :func:`upgrade_targets` maps them.
MOVED_TARGETS = {
    "xvector.data.datamodule.": "xvector.training.datamodule.",
    "xvector.data.resumable.": "xvector.training.resumable.",
    "xvector.losses.margin_scheduler.": "xvector.training.margin_scheduler.",
    "xvector.schedulers.": "xvector.training.schedulers.",
    "xvector.lit_module.": "xvector.training.system.",
    "xvector.checkpoints.": "xvector.training.checkpoints.",
    "xvector.progress.": "xvector.training.progress.",
    "xvector.data.noise_gen.": "xvector.corpora.synthetic.noise.",
    "xvector.data.synthetic.": "xvector.corpora.synthetic.corpus.",
    "xvector.data.voice.": "xvector.corpora.synthetic.voice.",
    "xvector.data.channel.": "xvector.corpora.synthetic.channel.",
    "xvector.data.prepare.": "xvector.corpora.prepare.",
    "xvector.data.convert.": "xvector.corpora.convert.",
    "xvector.embedder.": "xvector.inference.embedder.",
    "xvector.model_dir.": "xvector.inference.model_dir.",
    "xvector.extraction.": "xvector.inference.extraction.",
    "xvector.inference.": "xvector.inference.embed.",
    "xvector.api.": "xvector.inference.api.",
    "xvector.export.": "xvector.inference.graph.",
}
_NEW_PACKAGES = ("xvector.inference.embed.", "xvector.inference.embedder.", "xvector.inference.model_dir.",
                 "xvector.inference.extraction.", "xvector.inference.api.", "xvector.inference.graph.")


def upgrade_targets(config: Any) -> Any:
    """``config`` (nested dicts and lists) with every moved ``_target_`` renamed to its new path.

    Example:
        >>> upgrade_targets({"data": {"_target_": "xvector.data.datamodule.SpeakerDataModule"}})
        {'data': {'_target_': 'xvector.training.datamodule.SpeakerDataModule'}}
    """
    if isinstance(config, dict):
        return {k: _moved(v) if k == "_target_" else upgrade_targets(v) for k, v in config.items()}
    if isinstance(config, list):
        return [upgrade_targets(v) for v in config]
    return config


def _moved(target: Any) -> Any:
    if not isinstance(target, str) or target.startswith(_NEW_PACKAGES):
        return target
    for old, new in MOVED_TARGETS.items():
        if target.startswith(old):
            return new + target[len(old) :]
    return target


class Embedder(nn.Module):
    """``wav (B, S)``, ``wav_lens (B,)`` samples → embeddings ``(B, D)``."""

    def __init__(self, features: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.net = net

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_autocast_enabled(wav.device.type):
            # Mixed precision (e.g. bf16 extraction) is for the net: the front-end's log and
            # mel matmul stay float32, as in training.
            with torch.autocast(device_type=wav.device.type, enabled=False):
                feats, frame_lens = self.features(wav.float(), wav_lens)
        else:
            feats, frame_lens = self.features(wav, wav_lens)  # (B, T, F), (B,)
        return self.net(feats.transpose(1, 2), frame_lens)  # (B, F, T) → (B, D)


def for_inference(embedder: Embedder, precision: str = "32") -> Embedder:
    """A copy of ``embedder`` for extraction, same front-end: the net's BatchNorms folded away
    (:func:`xvector.nets.fuse.inference_net`) and, with ``precision="int8"``, its frame layers
    after the first on 8-bit integers. The original is not modified.

    Raises:
        ValueError: on an unknown precision, or int8 for a net that is not a TDNN x-vector.
    """
    from xvector.nets.fuse import inference_net

    return Embedder(embedder.features, inference_net(embedder.net, precision)).eval()


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """The dict of an xvector training checkpoint (torch alone: no Lightning import).

    Raises:
        ValueError: naming ``path`` when it is missing, unreadable or not an xvector checkpoint.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: checkpoint does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{path}: cannot read checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or not ckpt.get(CONFIG_KEY) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not an xvector training checkpoint (no '{CONFIG_KEY}')")
    ckpt[CONFIG_KEY] = upgrade_targets(ckpt[CONFIG_KEY])
    return ckpt


def load_embedder(ckpt_path: str | os.PathLike, map_location: str = "cpu") -> tuple[Embedder, DictConfig]:
    """Rebuild the front-end and net of a training checkpoint from its saved config.

    Returns:
        The :class:`Embedder` in eval mode, and the run's config.

    Raises:
        ValueError: naming the checkpoint when it is missing, unreadable, holds no xvector
            config, or its weights do not fit the net its config describes.
    """
    ckpt = read_checkpoint(ckpt_path, map_location)
    from hydra.utils import instantiate  # here: importing this module stays torch-only
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    features = instantiate(cfg.features)
    embedder = Embedder(features, instantiate(cfg.model)(in_channels=features.out_dim))
    prefix = "embedder."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        embedder.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{ckpt_path}: weights do not match the net of its config ({err})") from err
    return embedder.eval(), cfg
