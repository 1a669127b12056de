"""Write an imported net as an xvector model directory (:mod:`xvector.inference.model_dir`'s format).

An importer turns a peer's files into two things: a run config (``features`` and ``model``
``_target_`` entries that rebuild the front-end and net) and the net's ``state_dict`` in this
project's names. :func:`write_imported` builds the embedder from the config, loads the weights
strictly (every tensor present, every shape equal), and writes the model directory through
:func:`~xvector.inference.model_dir.write_model_dir`, so an imported model is what
``xvector-export`` writes: every tool (``xvector.load_model``, ``xvector-extract``,
``xvector-verify``, ``init_from=`` fine-tuning) takes it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xvector.inference.embedder import CONFIG_KEY
from xvector.inference.model_dir import build_embedder, write_model_dir


def load_net_state(net: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``net`` strictly, with a ``ValueError`` naming ``source`` and the first mismatch."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"no tensor for {missing[0]!r}" if missing else f"tensor {unexpected[0]!r} has no place in the net"
        raise ValueError(f"{source}: the weights do not fit the net its config describes: {what} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected)")
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"{source}: tensor {key!r} has shape {tuple(state[key].shape)}, the net's is "
                             f"{tuple(value.shape)}")
    net.load_state_dict(dict(state))


def write_imported(
    out: str | os.PathLike,
    config: Mapping[str, Any],
    net_state: Mapping[str, torch.Tensor],
    source: str,
    imported_from: Mapping[str, Any],
    mean: np.ndarray | None = None,
    formats: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Build the embedder of ``config``, load ``net_state`` into its net, write the model directory.

    Args:
        out: destination folder (written atomically).
        config: run config with ``features``, ``model`` (and ``data.sample_rate``).
        net_state: the net's weights in this project's names.
        source: the peer's file, for messages.
        imported_from: recorded in ``info.json`` (toolkit, files, architecture).
        mean: optional ``(D,)`` embedding mean to store as ``mean.npy``.
        formats: ``"onnx"`` / ``"torchscript"`` graphs to add.
        overwrite: replace an existing ``out``.

    Raises:
        ValueError: when the weights do not fit, or as :func:`write_model_dir`.
    """
    embedder = build_embedder(config).eval()
    load_net_state(embedder.net, net_state, source)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "imported.ckpt"
        state = {f"embedder.{k}": v for k, v in embedder.state_dict().items()}
        torch.save({"state_dict": state, CONFIG_KEY: dict(config)}, ckpt)
        mean_file = None
        if mean is not None:
            mean_file = Path(tmp) / "mean.npz"
            np.savez(mean_file, ids=np.array(["mean"]), embeddings=np.asarray(mean, np.float32)[None])
        info = {"source_checkpoint": str(source), "imported_from": dict(imported_from)}
        return write_model_dir(out, ckpt, mean_embeddings=mean_file, formats=formats, overwrite=overwrite,
                               info_extra=info)
