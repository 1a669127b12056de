"""Extraction over a ``wav.scp``: length-bucketed batches, resumable output, failure reports.

The library behind ``xvector-extract`` (:mod:`xvector.cli.extract` is its thin entry point):

* **Batching.** Utterances are sorted by duration (longest first) and cut into batches of at
  most ``batch_size`` items and ``max_batch_sec`` of padded audio (:func:`length_buckets`), so
  padding is small, the front-end's CMN and the stats pooling mask it, and memory is bounded.
  Recordings longer than ``chunk_sec`` are embedded alone, in chunks, with exact statistics
  pooling (:func:`xvector.inference.embed.embed_long`). Reading and resampling run in data-loader
  workers.
* **Resumable.** Each batch's embeddings are appended to a
  :class:`~xvector.inference.partial.PartialLog`, so a kill loses at most the batch in flight.
  An embedding is reused only for the same input file, model and settings; the log says how
  many were kept and why the others were not (:mod:`xvector.inference.partial`).
* **Failures do not stop the run.** Files that are missing, cannot be read, are truncated,
  silent or too short for the net, and batches that fail to embed (retried one utterance at a
  time), are collected with the reason (:func:`write_failures` lists them), and the result
  holds the utterances that succeeded, in ``wav.scp`` order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from xvector.atomic import atomic_output, atomic_write_text
from xvector.data.audio import audio_info
from xvector.data.collate import collate_waveforms
from xvector.data.lists import read_wav_scp
from xvector.inference.embed import (
    DEFAULT_CHUNK_SEC,
    check_audio_file,
    embed_batch,
    embed_long,
    min_samples,
    read_audio,
    sample_rate_of,
)
from xvector.inference.partial import PartialLog, fingerprint, input_key, reusable

__all__ = ["FAILED_SUFFIX", "PARTIAL_SUFFIX", "Extraction", "PartialLog", "SafeUtterances", "embed_wav_scp",
           "extract_embeddings", "fingerprint", "input_key", "length_buckets", "save_kaldi", "write_failures"]

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
FAILED_SUFFIX = ".failed.tsv"


# ---------------------------------------------------------------------------------------------
# Data: whole utterances that report failures instead of raising
# ---------------------------------------------------------------------------------------------


class SafeUtterances(Dataset):
    """Whole utterances of a ``wav.scp`` at ``sample_rate``; unreadable ones become error items.

    ``seconds[i]`` is the duration from the file header (0 when the file is missing, truncated
    or its header unreadable, with the reason in ``errors[utt]``), ``keys[utt]`` its
    :func:`input_key`. Items are ``{"utt", "wav": (S,)}`` or ``{"utt", "error"}``.

    Args:
        wavs: ``{utt: path}`` in ``wav.scp`` order.
        sample_rate: rate the items are resampled to.
        source: the ``wav.scp`` the entries come from: a missing file is reported as
            ``wav.scp:N: audio file for 'u' does not exist: path``.
    """

    def __init__(self, wavs: dict[str, Path], sample_rate: int, source: str | os.PathLike | None = None) -> None:
        self.utts = list(wavs)
        self.paths = [wavs[u] for u in self.utts]
        self.sample_rate = sample_rate
        self.seconds: list[float] = []
        self.errors: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        for line, (utt, path) in enumerate(zip(self.utts, self.paths), start=1):
            try:
                if not os.path.lexists(path):
                    raise ValueError(f"{source or 'wav.scp'}:{line}: audio file for {utt!r} does not exist: {path}")
                check_audio_file(path)
                self.keys[utt] = input_key(path)
                n, rate = audio_info(path)
                if n == 0:
                    raise ValueError(f"{path}: no samples")
                self.seconds.append(n / rate)
            except (ValueError, OSError) as err:
                self.errors[utt] = str(err)
                self.seconds.append(0.0)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        utt = self.utts[index]
        try:
            return {"utt": utt, "wav": read_audio(self.paths[index], self.sample_rate)}
        except ValueError as err:
            return {"utt": utt, "error": str(err)}


def collate_safe(items: Sequence[dict]) -> dict:
    """Pad the readable items (:func:`collate_waveforms`); pass the failed ones through."""
    ok = [it for it in items if "wav" in it]
    return {"batch": collate_waveforms(ok) if ok else None,
            "failed": [(it["utt"], it["error"]) for it in items if "error" in it]}


def length_buckets(seconds: Sequence[float], batch_size: int, max_batch_sec: float, long_sec: float) -> list[list[int]]:
    """Index batches in decreasing duration: ``<= batch_size`` items, ``<= max_batch_sec`` padded.

    Items longer than ``long_sec`` form batches of one (they are embedded in chunks).

    Example:
        >>> length_buckets([1.0, 5.0, 2.0, 200.0, 3.0], batch_size=2, max_batch_sec=8.0, long_sec=100.0)
        [[3], [1], [4, 2], [0]]
    """
    order = sorted(range(len(seconds)), key=lambda i: -seconds[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if seconds[i] > long_sec:
            batches.append([i])
            continue
        # current[0] is the longest of the batch, so the padded total is its length x count.
        if current and (len(current) == batch_size or seconds[current[0]] * (len(current) + 1) > max_batch_sec):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


# ---------------------------------------------------------------------------------------------
# Embedding loop
# ---------------------------------------------------------------------------------------------


@dataclass
class Extraction:
    """Result of :func:`extract_embeddings`: ids and ``(N, D)`` embeddings, and what failed."""

    ids: list[str]
    embeddings: np.ndarray
    failures: dict[str, str] = field(default_factory=dict)
    kept: int = 0  # embeddings reused from the partial log of an interrupted run
    redone: dict[str, int] = field(default_factory=dict)  # {reason: count} of partial entries not reused
    padded: int = 0  # utterances shorter than the net's minimum, repeated to reach it

    @property
    def skipped(self) -> int:  # the name before reuse was keyed to inputs
        return self.kept


def pad_short(batch: dict, need: int) -> tuple[dict, int]:
    """Repeat (wrap) every utterance shorter than ``need`` samples up to ``need``, as training
    crops do; returns the new batch and how many utterances were padded."""
    lens = batch["wav_lens"]
    short = lens < need
    if not bool(short.any()):
        return batch, 0
    width = max(batch["wav"].shape[1], need)
    wav = torch.nn.functional.pad(batch["wav"], (0, width - batch["wav"].shape[1]))  # (B, width)
    for i in torch.nonzero(short).flatten().tolist():
        n = int(lens[i])
        wav[i, :need] = batch["wav"][i, :n].repeat(-(-need // n))[:need]
    return {**batch, "wav": wav, "wav_lens": torch.where(short, torch.full_like(lens, need), lens)}, int(short.sum())


def _embed_items(embedder: torch.nn.Module, batch: dict, chunk_sec: float, device: str) -> tuple[list, list, dict]:
    """Embed a collated batch; on an error retry one by one so only the culprits fail."""
    utts, wav, lens = batch["utts"], batch["wav"], batch["wav_lens"]
    try:
        if len(utts) == 1 and chunk_sec * sample_rate_of(embedder) < int(lens[0]):
            emb = embed_long(embedder, wav[0, : int(lens[0])].to(device), chunk_sec, utts[0])[None]
        else:
            emb = embed_batch(embedder, wav.to(device), lens.to(device), utts)
        emb = emb.float().cpu().numpy()
        bad = ~np.isfinite(emb).all(1)
        failed = {utts[i]: "non-finite embedding" for i in np.flatnonzero(bad)}
        return [u for u, b in zip(utts, bad) if not b], list(emb[~bad]), failed
    except Exception as err:  # noqa: BLE001 - any model error is reported per utterance
        if len(utts) == 1:
            return [], [], {utts[0]: f"{type(err).__name__}: {err}"}
    ids, embs, failed = [], [], {}
    for i, utt in enumerate(utts):
        one = {"utts": [utt], "wav": wav[i : i + 1, : int(lens[i])], "wav_lens": lens[i : i + 1]}
        got = _embed_items(embedder, one, chunk_sec, device)
        ids += got[0]
        embs += got[1]
        failed.update(got[2])
    return ids, embs, failed


@torch.inference_mode()
def extract_embeddings(
    embedder: torch.nn.Module,
    wav_scp: str | os.PathLike,
    sample_rate: int,
    batch_size: int = 16,
    max_batch_sec: float = 800.0,
    num_workers: int = 0,
    chunk_sec: float = DEFAULT_CHUNK_SEC,
    device: str = "cpu",
    partial: PartialLog | None = None,
    progress: bool = False,
    short_utterances: str = "skip",
) -> Extraction:
    """Embed every utterance of ``wav_scp``; failures are collected, not raised.

    Args:
        embedder: ``(wav (B, S), wav_lens (B,)) -> (B, D)``, e.g. an :class:`~xvector.inference.embedder.Embedder`.
        wav_scp: Kaldi ``wav.scp``.
        sample_rate: rate the embedder expects; other files are resampled.
        batch_size: most utterances per batch.
        max_batch_sec: most padded audio per batch, in seconds (bounds memory).
        num_workers: data-loader worker processes (reading and resampling run there).
        chunk_sec: recordings longer than this are embedded alone, in chunks.
        device: torch device of the embedder.
        partial: a :class:`PartialLog` to resume from and append to (None: in memory only).
        progress: show a tqdm progress bar over utterances.
        short_utterances: ``"skip"``: an utterance shorter than the net's minimum is a failure
            (listed, not embedded); ``"pad"``: it is repeated up to the minimum and embedded
            (counted in ``Extraction.padded``).

    Returns:
        An :class:`Extraction` with the embedded utterances in ``wav.scp`` order.
    """
    if short_utterances not in ("skip", "pad"):
        raise ValueError(f"short_utterances={short_utterances!r}: expected 'skip' or 'pad'")
    need = min_samples(embedder) if short_utterances == "pad" else 0
    padded = 0
    dataset = SafeUtterances(read_wav_scp(wav_scp, check_exists=False), sample_rate, wav_scp)
    failures = dict(dataset.errors)
    done, redone = reusable(partial, dataset.keys, dataset.errors)
    todo = [i for i, u in enumerate(dataset.utts) if u not in done and u not in failures]
    seconds = [dataset.seconds[i] for i in todo]
    batches = [[todo[j] for j in b] for b in length_buckets(seconds, batch_size, max_batch_sec, chunk_sec)]
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate_safe, num_workers=num_workers)
    embedder = embedder.to(device).eval()
    if partial is not None:
        partial.open()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs stay readable)
        bar = tqdm(total=len(todo), unit="utt", desc="extract", dynamic_ncols=True, disable=None)
    try:
        for item in loader:
            failures.update(item["failed"])
            if item["batch"] is not None:
                batch = item["batch"]
                if need:
                    batch, n_padded = pad_short(batch, need)
                    padded += n_padded
                ids, embs, failed = _embed_items(embedder, batch, chunk_sec, device)
                failures.update(failed)
                if ids:
                    if partial is not None:
                        partial.append(ids, [dataset.keys[u] for u in ids], np.stack(embs))
                    done.update(zip(ids, embs))
            if bar is not None:
                bar.update(len(item["failed"]) + (len(item["batch"]["utts"]) if item["batch"] else 0))
                bar.set_postfix(failed=len(failures), refresh=False)
    finally:
        if bar is not None:
            bar.close()
        if partial is not None:
            partial.close()
    ids = [u for u in dataset.utts if u in done]
    dim = len(next(iter(done.values()))) if done else 0
    emb = np.stack([done[u] for u in ids]) if ids else np.zeros((0, dim), dtype=np.float32)
    kept = len(dataset) - len(todo) - len(dataset.errors)
    return Extraction(ids, emb.astype(np.float32), failures, kept, redone, padded)


def embed_wav_scp(
    embedder: torch.nn.Module, wav_scp: str | Path, batch_size: int = 16, num_workers: int = 0, sample_rate: int = 16000,
    device: str = "cpu",
) -> tuple[list[str], np.ndarray]:
    """Embeddings ``(N, D)`` of every utterance of ``wav_scp``, in ``wav.scp`` order (in memory).

    ``embedder`` is any module ``(wav (B, S), wav_lens (B,)) -> (B, D)``, e.g. an :class:`Embedder`.

    Raises:
        ValueError: naming the first utterance that could not be read or embedded.
    """
    result = extract_embeddings(embedder, wav_scp, sample_rate, batch_size, num_workers=num_workers, device=device)
    if result.failures:
        utt, reason = next(iter(result.failures.items()))
        raise ValueError(f"{wav_scp}: utterance {utt!r} failed ({reason}); {len(result.failures)} failed in all")
    return result.ids, result.embeddings


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def write_failures(path: Path, failures: dict[str, str], wavs: dict[str, Path]) -> None:
    """``utt<TAB>path<TAB>reason`` per failed utterance, in ``wav.scp`` order (atomic)."""
    lines = [f"{u}\t{wavs[u]}\t{' '.join(failures[u].split())}\n" for u in wavs if u in failures]
    atomic_write_text(path, "".join(lines))


def save_kaldi(ark: str | os.PathLike, ids: Sequence[str], embeddings: np.ndarray) -> Path:
    """Write a Kaldi float-vector ``.ark`` and its ``.scp`` (``utt ark:offset``), both atomically."""
    import kaldiio

    ark = Path(ark)
    scp = ark.with_suffix(".scp")
    with atomic_output(ark, suffix=".ark") as tmp_ark, atomic_output(scp, suffix=".scp") as tmp_scp:
        kaldiio.save_ark(str(tmp_ark), {u: np.asarray(e, dtype=np.float32) for u, e in zip(ids, embeddings)},
                         scp=str(tmp_scp))
        # save_ark names the temporary ark in the scp; point the offsets at the final name.
        lines = tmp_scp.read_text(encoding="utf-8").splitlines()
        fixed = [f"{key} {ark}:{loc.rsplit(':', 1)[1]}" for key, loc in (ln.split(" ", 1) for ln in lines)]
        tmp_scp.write_text("".join(f"{ln}\n" for ln in fixed), encoding="utf-8")
    return scp
