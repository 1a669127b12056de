"""Sharded tar datasets (WebDataset format) for corpora streamed rather than indexed.

A shard folder holds ``shard-000000.tar ...`` and a ``shards.json`` manifest (sample rate,
sorted speaker list, utterances per shard). Each utterance is a WebDataset sample keyed by its
zero-padded index in ``wav.scp`` order: ``<key>.<ext>`` holds the audio file's bytes verbatim
(no re-encoding) and ``<key>.json`` its ``utt``, ``spk``, ``index`` and ``num_samples``.
Any WebDataset reader can read the shards; :class:`ShardStream` is the training reader.

:class:`ShardStream` gives each shard to exactly one (DDP rank, data worker) reader per epoch,
shuffles shard order per epoch and samples through a buffer, and crops with the same
:class:`~xvector.data.datasets.CropMaker` as the map-style
:class:`~xvector.data.datasets.CropDataset`: with shuffling off and one reader, both give the
same batches for the same seed.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from webdataset import TarWriter
from webdataset.tariterators import group_by_keys, tar_file_expander

from xvector.atomic import atomic_output, atomic_write_text
from xvector.data.audio import audio_info, read_audio
from xvector.data.datasets import CropMaker, utterance_samples, window_reader
from xvector.data.lists import load_data_dir

MANIFEST = "shards.json"
_STREAM_SHARDS, _STREAM_BUFFER = 9, 10  # RNG stream tags


def write_shards(data_dir: str | os.PathLike, out_dir: str | os.PathLike, max_utts: int = 1000,
                 max_bytes: int = 1 << 30, sample_rate: int = 16000, resample: bool = False) -> dict:
    """Write the utterances of a Kaldi data dir (``wav.scp``, ``utt2spk``) as tar shards.

    A shard closes at ``max_utts`` utterances or before it would pass ``max_bytes`` of audio
    (a single larger file gets a shard of its own). Each shard and then the manifest are
    written to a temporary name and renamed. Returns the manifest.

    Files are stored verbatim: ``resample=True`` accepts files at other rates (the reader
    converts them when it runs with ``resample=True``, as the map-style loaders do), and
    multi-channel files are kept as they are (the reader's ``multichannel`` decides).

    Raises:
        ValueError: on bad limits, or naming a file with no samples or (without ``resample``)
            another sample rate.
    """
    if max_utts < 1 or max_bytes < 1:
        raise ValueError(f"max_utts and max_bytes must be >= 1, got {max_utts}, {max_bytes}")
    data, out = load_data_dir(data_dir), Path(out_dir)
    groups: list[list[int]] = [[]]
    size = 0
    utts = list(data.wavs)
    for i, utt in enumerate(utts):
        n = os.path.getsize(data.wavs[utt])
        if groups[-1] and (len(groups[-1]) >= max_utts or size + n > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += n
    width = max(9, len(str(len(utts))))
    shards = []
    for k, group in enumerate(groups):
        name = f"shard-{k:06d}.tar"
        with atomic_output(out / name) as tmp, open(tmp, "wb") as f, TarWriter(f, encoder=False, mtime=0) as w:
            for i in group:
                utt, path = utts[i], Path(data.wavs[utts[i]])
                n, sr = audio_info(path)
                if (sr != sample_rate and not resample) or n == 0:
                    raise ValueError(f"{path}: utterance {utt!r} has {n} samples at {sr} Hz, expected {sample_rate} Hz")
                meta = {"utt": utt, "spk": data.utt2spk[utt], "index": i, "num_samples": n}
                w.write({"__key__": f"{i:0{width}d}", path.suffix.lstrip(".").lower() or "wav": path.read_bytes(),
                         "json": json.dumps(meta).encode()})
        shards.append({"name": name, "utterances": len(group), "bytes": (out / name).stat().st_size})
    manifest = {"sample_rate": sample_rate, "utterances": len(utts), "speakers": data.speakers, "shards": shards}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(shard_dir: str | os.PathLike) -> dict:
    """The ``shards.json`` of ``shard_dir``; ValueError naming it when missing or malformed."""
    path = Path(shard_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["shards"], manifest["speakers"], manifest["sample_rate"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a shard manifest ({err!r}); write one with scripts/make_shards.py") from err
    return manifest


def assign_shards(num_shards: int, reader: int, num_readers: int, epoch: int, seed: int,
                  shuffle: bool = True) -> list[int]:
    """Shards read by ``reader`` of ``num_readers`` in ``epoch``: every shard goes to exactly one.

    The shard order is permuted per ``(seed, epoch)`` (the same on every rank), then dealt
    round-robin: reader ``r`` takes positions ``r, r + num_readers, ...``.
    """
    order = np.arange(num_shards)
    if shuffle:
        order = np.random.default_rng([seed, _STREAM_SHARDS, epoch]).permutation(num_shards)
    return order[reader::num_readers].tolist()


def iter_shard(path: str | os.PathLike) -> Iterator[dict]:
    """The WebDataset samples ``{"__key__", "__url__", <ext>: bytes, ...}`` of one tar shard."""
    with open(path, "rb") as stream:
        yield from group_by_keys(tar_file_expander([{"url": str(path), "stream": stream}]))


def buffer_shuffle(items: Iterable, size: int, rng: np.random.Generator) -> Iterator:
    """Shuffle a stream through a ``size``-item buffer: each arrival replaces a random pick."""
    buf: list = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(rng.integers(size))
        yield buf[j]
        buf[j] = item
    for j in rng.permutation(len(buf)):
        yield buf[j]


class ShardStream(IterableDataset):
    """Training crops streamed from a shard folder; yields the items of ``CropDataset``.

    Args:
        shard_dir: folder written by :func:`write_shards`.
        chunk_sec: crop length in seconds.
        sample_rate: in Hz; must match the manifest.
        seed: seeds shard order, the shuffle buffer and (unless None) crops and augmentation
            per ``(epoch, index)`` as in :class:`~xvector.data.datasets.CropMaker`.
        augment: crop transform ``(wav (S,), rng) -> (S,)``, or None.
        speeds: speed-perturbation factors (each adds a set of classes).
        shuffle: shuffle shard order and samples (a ``shuffle_buffer``-item buffer).
        shuffle_buffer: buffer size in utterances (memory: that many encoded files).
        rank / world_size: this DDP process and their number.
        resample / multichannel: as in :class:`~xvector.data.datasets.CropDataset`; members are
            decoded and checked by the same code as files on disk
            (:func:`~xvector.data.audio.read_audio`), so both give the same crops and errors.
        num_workers: data workers per rank, for ``len``; the live count comes from torch.
        equalize: cap every reader at the smallest guaranteed share so all ranks run the same
            number of steps (needed by DDP); default: when ``world_size > 1``.
        start_epoch: epoch of the first iteration; each further ``iter`` is the next epoch.
        on_device: raw crops with their speed and augmentation plans, as in
            :class:`~xvector.data.datasets.CropDataset`.
    """

    def __init__(self, shard_dir: str | os.PathLike, chunk_sec: float, sample_rate: int = 16000,
                 seed: int | None = None, augment: Callable | None = None, speeds: Sequence[float] = (1.0,),
                 shuffle: bool = True, shuffle_buffer: int = 1000, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, equalize: bool | None = None, start_epoch: int = 0,
                 resample: bool = False, multichannel: str = "mean", on_device: bool = False) -> None:
        self.dir, manifest = Path(shard_dir), read_manifest(shard_dir)
        if manifest["sample_rate"] != sample_rate:
            raise ValueError(f"{self.dir / MANIFEST}: sample rate {manifest['sample_rate']} Hz, "
                             f"expected {sample_rate} Hz")
        self.names = [s["name"] for s in manifest["shards"]]
        self.sizes = [int(s["utterances"]) for s in manifest["shards"]]
        self.spk2idx = {spk: i for i, spk in enumerate(manifest["speakers"])}
        self.crops = CropMaker(chunk_sec, sample_rate, len(self.spk2idx), seed, augment, speeds, on_device)
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.resample, self.multichannel = resample, multichannel
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.equalize = world_size > 1 if equalize is None else equalize
        self.epoch = start_epoch
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if self.equalize and len(self.names) < world_size * max(1, num_workers):
            raise ValueError(f"{self.dir}: {len(self.names)} shards for rank {rank} of {world_size} x "
                             f"{max(1, num_workers)} workers; equalize needs a shard per reader (write smaller shards)")

    @property
    def num_classes(self) -> int:
        return self.crops.num_classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def reader_limit(self, num_workers: int) -> int | None:
        """Items per reader with ``equalize``: the sum of the ``K // R`` smallest shards, which
        every reader gets whatever the epoch's shard order; None without ``equalize``."""
        if not self.equalize:
            return None
        return sum(sorted(self.sizes)[: len(self.sizes) // (self.world_size * max(1, num_workers))])

    def __len__(self) -> int:
        limit = self.reader_limit(self.num_workers)
        return sum(self.sizes) if limit is None else limit * max(1, self.num_workers)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        epoch, self.epoch = self.epoch, self.epoch + 1  # a persistent worker's copy counts too
        return self.iter_reader(epoch, info.id if info else 0, info.num_workers if info else 1)

    def iter_reader(self, epoch: int, worker: int, num_workers: int) -> Iterator[dict]:
        """The items of reader ``(self.rank, worker)`` in ``epoch``."""
        seed = 0 if self.seed is None else self.seed  # shard order must agree across ranks
        reader, num_readers = self.rank * num_workers + worker, self.world_size * num_workers
        shards = assign_shards(len(self.names), reader, num_readers, epoch, seed, self.shuffle)
        samples = (s for k in shards for s in iter_shard(self.dir / self.names[k]))
        if self.shuffle and self.shuffle_buffer > 1:
            rng = np.random.default_rng([seed, _STREAM_BUFFER, epoch, reader])
            samples = buffer_shuffle(samples, self.shuffle_buffer, rng)
        limit = self.reader_limit(num_workers)
        for count, sample in enumerate(samples):
            if limit is not None and count >= limit:
                return
            yield self.item(sample, epoch)

    def item(self, sample: dict, epoch: int) -> dict:
        """Decode and crop one WebDataset sample ``{"__key__", "json", <ext>}``.

        The checks, channel handling and resampling are :class:`~xvector.data.datasets.CropDataset`'s:
        the member is decoded at its own rate and each crop window resampled, as from a file.
        """
        meta = json.loads(sample["json"])
        where = f"{sample.get('__url__')}:{sample['__key__']}"
        ext = [k for k in sample if not k.startswith("__") and k != "json"]
        if len(ext) != 1:
            raise ValueError(f"{where}: expected one audio entry beside json, got {ext}")
        utt, sample_rate = meta["utt"], self.crops.sample_rate
        name = f"{where}: utterance {utt!r}"
        n, rate = audio_info(io.BytesIO(sample[ext[0]]), name=name)
        num_samples = utterance_samples(where, utt, n, rate, sample_rate, self.resample)
        int16 = self.crops.on_device and rate == sample_rate
        wav, _ = read_audio(io.BytesIO(sample[ext[0]]), rate, multichannel=self.multichannel, name=name, int16=int16)
        read = window_reader(lambda start, num: wav[start : start + num], rate, sample_rate)
        item = self.crops.item(read, num_samples, self.spk2idx[meta["spk"]], int(meta["index"]), epoch)
        return {**item, "utt": utt}


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of torch.distributed when initialised, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
