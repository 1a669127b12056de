"""Graph export: an :class:`~xvector.inference.embedder.Embedder` → ONNX or TorchScript.

The graphs hold the *whole* embedder, Kaldi Fbank front-end included, with dynamic batch and
time axes: inputs ``wav (B, S)`` float32 and ``wav_lens (B,)`` int64 samples, output
``embedding (B, D)``. Padded batches are exact because the front-end's CMN and the stats
pooling mask by length. ``xvector-export --format`` (:mod:`xvector.cli.export`) writes them
into a model directory (:mod:`xvector.inference.model_dir`).

ONNX uses torch's ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``,
opset 18): it traces symbolic shapes, so ``unfold`` framing, ``rfft`` (ONNX ``DFT``), the length
masks and the masked mean/std pooling export with both axes dynamic. TorchScript uses
``torch.jit.trace``; tensor sizes are recorded as ops, so the traced graph also takes any batch
and length (the parity tests check lengths other than the tracing example's).

Every export is checked against eager PyTorch before it is written (cosine >= 0.9999 on a
padded batch of two lengths), and the tests hold it to |Δ| < 1e-4.

The exported graphs embed each input in one pass, without the chunking of
:func:`xvector.inference.embed.embed_long`, so their memory grows with the input (the 1500-channel
layer holds 1500 x 4 B = 6 KB per 10 ms frame, 2.2 GB per hour): for recordings of many
minutes use ``xvector-extract`` or ``xvector.load_model``, which chunk exactly.
"""


from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xvector.inference.embed import min_samples
from xvector.inference.embedder import Embedder, for_inference

#: Opset of the ONNX graph: 18 carries DFT (for the rfft) and the reductions as used here.
ONNX_OPSET = 18


def _example(embedder: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of two lengths (seeded, so exports are reproducible)."""
    n = max(16000, 2 * min_samples(embedder))
    gen = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(2, n, generator=gen), torch.tensor([n, n * 3 // 4])


class _NoTorchvisionNotice(logging.Filter):
    """Drops the exporter's "torchvision is not installed. Skipping torchvision::nms" lines.

    ``torch.onnx``'s registry (``torch/onnx/_internal/exporter/_registration.py``) logs one
    WARNING per torchvision op it cannot register when torchvision is absent; this net uses
    none of them, so the four lines only alarm. Every other record of that logger passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("torchvision is not installed")


_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


def export_onnx(embedder: nn.Module, path: str | os.PathLike) -> Path:
    """Export ``(wav (B, S), wav_lens (B,)) -> embedding (B, D)`` to ONNX, both axes dynamic."""
    path = Path(path)
    wav, lens = _example(embedder)
    batch = torch.export.Dim("batch", min=1, max=4096)
    samples = torch.export.Dim("samples", min=min_samples(embedder), max=2**31 - 1)
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [q.level for q in quiet]
    registry, notice = logging.getLogger(_REGISTRY_LOGGER), _NoTorchvisionNotice()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for q in quiet:  # the exporter reports every optimisation pass at INFO
            q.setLevel(logging.WARNING)
        registry.addFilter(notice)
        try:
            program = torch.onnx.export(
                copy.deepcopy(embedder).eval(), (wav, lens), dynamo=True, opset_version=ONNX_OPSET, verbose=False,
                input_names=["wav", "wav_lens"], output_names=["embedding"],
                dynamic_shapes={"wav": {0: batch, 1: samples}, "wav_lens": {0: batch}},
            )
        finally:
            registry.removeFilter(notice)
            for q, level in zip(quiet, levels):
                q.setLevel(level)
    program.save(str(path))
    _check(embedder, lambda w, n: _run_onnx(path, w, n), path)
    return path


def _run_onnx(path: Path, wav: torch.Tensor, lens: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"wav": wav.numpy(), "wav_lens": lens.numpy()})[0]


def export_torchscript(embedder: nn.Module, path: str | os.PathLike) -> Path:
    """Trace ``(wav (B, S), wav_lens (B,)) -> embedding (B, D)`` to TorchScript."""
    path = Path(path)
    wav, lens = _example(embedder)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about the min-frames check (a guard only)
        traced = torch.jit.trace(embedder.eval(), (wav, lens), check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))
    _check(embedder, lambda w, n: loaded(w, n).numpy(), path)
    return path


def _check(embedder: nn.Module, run, path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    n = max(24000, 3 * min_samples(embedder))  # another length than the tracing example's
    wav, lens = 0.1 * torch.randn(2, n, generator=gen), torch.tensor([n, n // 2 + 7])
    with torch.no_grad():
        ref = embedder(wav, lens).numpy()
    with torch.no_grad():
        got = np.asarray(run(wav, lens))
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    if got.shape != ref.shape or cos.min() < 0.9999:
        raise ValueError(f"{path}: exported graph disagrees with PyTorch (cosine {cos.min():.6f})")


def export_embedder(embedder: nn.Module, path: str | os.PathLike, fmt: str) -> Path:
    """Export to ``fmt`` (``"onnx"`` or ``"torchscript"``) at ``path``.

    The graph is the inference form of the net (BatchNorms folded into the convolutions and the
    pooled statistics, :func:`xvector.inference.embedder.for_inference`): the trained net up to float
    rounding, one pass fewer over every frame-level activation.
    """
    if isinstance(embedder, Embedder):
        embedder = for_inference(embedder)
    if fmt == "onnx":
        return export_onnx(embedder, path)
    if fmt == "torchscript":
        return export_torchscript(embedder, path)
    raise ValueError(f"unknown export format {fmt!r}; choose from ['onnx', 'torchscript']")
