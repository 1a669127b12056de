"""``xvector-extract``: embed every utterance of a ``wav.scp`` with a trained model.

    xvector-extract model_dir=exp/x/model wav_scp=data/test/wav.scp output=exp/x/test.npz
    xvector-extract ckpt_path=exp/x/checkpoints/last.ckpt wav_scp=... output=... kaldi_ark=exp/x/test.ark

Whole utterances, no augmentation, no dither (eval mode); the net is rebuilt from the config of
the model directory or checkpoint. The work is done by :mod:`xvector.inference.extraction`; in short:

* **Batching.** Utterances are sorted by duration (longest first) and cut into batches of at
  most ``batch_size`` items and ``max_batch_sec`` of padded audio, so padding is small, the
  front-end's CMN and the stats pooling mask it, and memory is bounded. Recordings longer than
  ``chunk_sec`` are embedded alone, in chunks, with exact statistics pooling
  (:func:`xvector.inference.embed.embed_long`).
* **Resumable.** Each batch's embeddings are appended to ``<output>.partial`` (length- and
  CRC-framed records, flushed and fsync'ed), so a kill loses at most the batch in flight; a
  rerun reuses an embedding only when its input file (resolved path, size, mtime), the model's
  weights and the settings that change embeddings (precision, ``chunk_sec``,
  ``short_utterances``, any other option not listed in :data:`NOT_IN_FINGERPRINT`) are all
  unchanged, and logs how many it kept and why it re-embedded the others. The final ``.npz``
  (and optional Kaldi ``.ark``/``.scp``) is written atomically, then the partial file removed.
* **Precision.** The net runs with its BatchNorms folded into the next convolutions (equal to
  the trained net up to float rounding). ``precision=bf16`` runs it in bfloat16 under autocast;
  ``precision=int8`` runs the frame layers after the first on 8-bit integers
  (:mod:`xvector.nets.fuse`). Features, pooling and the embedding layer stay float32.
* **Failures do not stop the run.** Files that are missing, cannot be read, are truncated,
  silent or too short for the net, and batches that fail to embed (retried one utterance at a
  time), are listed with the reason in ``<output>.failed.tsv`` (``utt<TAB>path<TAB>reason``) and
  counted in the log; the output holds the utterances that succeeded, in ``wav.scp`` order.
  When none succeeded nothing is written but the failure list, and the exit status is 1.
* **Errors** (bad model, ``wav.scp`` or settings) are one line naming the file; set
  ``XVECTOR_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from xvector import CONFIG_DIR
from xvector.cli import help as _help  # noqa: F401 - registers the --help resolvers
from xvector.cli.errors import one_line_errors
from xvector.data.lists import read_wav_scp
from xvector.embeddings import save_embeddings
from xvector.inference.embed import DEFAULT_CHUNK_SEC
from xvector.inference.embedder import for_inference
from xvector.inference.extraction import (
    FAILED_SUFFIX,
    PARTIAL_SUFFIX,
    PartialLog,
    extract_embeddings,
    fingerprint,
    save_kaldi,
    write_failures,
)
from xvector.inference.model_dir import load_model_dir

log = logging.getLogger(__name__)

PRECISIONS = ("32", "bf16", "int8")
#: extract.yaml keys that do not change an embedding beyond float rounding (or that name the
#: model, whose weights are hashed): every other setting must match for a resume to reuse rows.
NOT_IN_FINGERPRINT = ("ckpt_path", "model_dir", "wav_scp", "output", "kaldi_ark", "batch_size", "max_batch_sec",
                      "num_workers", "device", "resume", "progress")


def extract(cfg: DictConfig) -> Path:
    """Run an extraction from the ``extract.yaml`` config; returns the output path."""
    source = cfg.get("model_dir") or cfg.get("ckpt_path")
    if not source:
        raise ValueError("set model_dir=<model directory> (xvector-export) or ckpt_path=<checkpoint>")
    model = load_model_dir(source)
    output = Path(cfg.output)
    rate = model.sample_rate
    precision = str(cfg.get("precision", "32"))
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    settings = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NOT_IN_FINGERPRINT}
    # a resumed run must not mix precisions, chunkings, paddings (defaults spelt out: the same run
    # from the CLI and from a partial config must match)
    settings.update(precision=precision, chunk_sec=float(cfg.get("chunk_sec", DEFAULT_CHUNK_SEC)),
                    short_utterances=str(cfg.get("short_utterances", "skip")))
    settings["features"] = OmegaConf.to_container(model.config.features, resolve=True)  # front-end options
    print_ = fingerprint(model.embedder, rate, settings)
    # BatchNorms folded into the convolutions (exact), int8 frame layers on request
    embedder = for_inference(model.embedder, "int8" if precision == "int8" else "32")
    partial = PartialLog(output.with_name(output.name + PARTIAL_SUFFIX), print_)
    if not cfg.get("resume", True):
        partial.path.unlink(missing_ok=True)
    start = time.perf_counter()
    # bf16: the net's convolutions and matmuls in bfloat16 (features and pooling stay float32).
    with torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        result = extract_embeddings(
            embedder, cfg.wav_scp, rate, cfg.batch_size, cfg.get("max_batch_sec", 800.0), cfg.num_workers,
            cfg.get("chunk_sec", DEFAULT_CHUNK_SEC), cfg.device, partial, cfg.get("progress", True),
            cfg.get("short_utterances", "skip"),
        )
    failed_path = output.with_name(output.name + FAILED_SUFFIX)
    wavs = read_wav_scp(cfg.wav_scp, check_exists=False)
    if result.failures:
        write_failures(failed_path, result.failures, wavs)
    else:
        failed_path.unlink(missing_ok=True)
    if not result.ids:
        partial.path.unlink(missing_ok=True)  # it holds no embedding of this wav.scp
        if not result.failures:
            raise ValueError(f"{cfg.wav_scp}: no utterances in it")
        utt = next(u for u in wavs if u in result.failures)  # the first in wav.scp order
        reason = result.failures[utt]
        raise ValueError(
            f"{cfg.wav_scp}: all {len(result.failures)} utterances failed, nothing written (first: {utt}: "
            f"{' '.join(reason.split())}); reasons in {failed_path}"
        )
    save_embeddings(output, result.ids, result.embeddings)
    if cfg.get("kaldi_ark"):
        save_kaldi(cfg.kaldi_ark, result.ids, result.embeddings)
    partial.path.unlink(missing_ok=True)
    log.info(
        "wrote %d embeddings of dim %d to %s in %.1f s (%d kept from %s of an interrupted run)", len(result.ids),
        result.embeddings.shape[1], output, time.perf_counter() - start, result.kept, partial.path.name,
    )
    if result.padded:
        log.warning("%d utterances shorter than the net's minimum were repeated to reach it", result.padded)
    if result.failures:
        log.warning("%d of %d utterances failed; reasons in %s", len(result.failures),
                    len(result.failures) + len(result.ids), failed_path)
    return output


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="extract")
def main(cfg: DictConfig) -> None:
    with one_line_errors("xvector-extract"):
        extract(cfg)


if __name__ == "__main__":
    main()
