"""Partial results of an extraction: an append-only log that a rerun resumes from, safely.

``xvector-extract`` appends each batch's embeddings to ``<output>.partial`` as it goes, so a kill
(SIGKILL, power cut) loses at most the batch in flight:

* **Framed records.** Each record carries its length and CRC32 and is flushed and fsync'ed; a
  kill mid-write leaves at most one torn record at the end, which :meth:`PartialLog.read` drops.
* **Keyed to the model and settings.** The first record is a header, :func:`fingerprint`: a
  hash of the weights, the sample rate and every setting that changes embeddings beyond float
  rounding. A log of another model or other settings is not reused (and is rewritten).
* **Keyed to the inputs.** Every embedding is stored with its file's :func:`input_key`
  (resolved path, size, modification time): pointing an id at another file, or rewriting a file,
  gets it embedded again; :func:`reusable` keeps the rest and logs how many, and why not others.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "a.wav").write_bytes(b"RIFF....")
    8
    >>> keys = {"a": input_key(d / "a.wav")}
    >>> log = PartialLog(d / "e.npz.partial", {"partial_format": 2, "weights_sha256": "x"}).open()
    >>> log.append(["a"], [keys["a"]], np.ones((1, 4), dtype=np.float32))
    >>> log.close()
    >>> done, redone = reusable(PartialLog(d / "e.npz.partial", {"partial_format": 2, "weights_sha256": "x"}), keys)
    >>> sorted(done), redone
    (['a'], {})
    >>> (d / "a.wav").write_bytes(b"RIFF......")  # rewritten: another size
    10
    >>> reusable(PartialLog(d / "e.npz.partial", {"partial_format": 2, "weights_sha256": "x"}),
    ...          {"a": input_key(d / "a.wav")})[1]
    {'file changed (size or mtime)': 1}
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import zlib
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

def input_key(path: str | os.PathLike) -> str:
    """What a kept embedding must still match: ``"<resolved path>|<bytes>|<mtime ns>"``.

    The resolved path catches an id pointed at another file (or a symlink re-pointed), size
    and modification time a file rewritten in place, as ``make`` and ``rsync`` judge changes,
    without reading the audio twice.

    Raises:
        OSError: when the file cannot be stat'ed.
    """
    st = os.stat(path)
    return f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"



_MAGIC = b"XVPR"
_HEAD = struct.Struct("<4sQI")  # magic, payload length, crc32 of payload
#: Version of the partial-log layout (2: input keys per embedding); logs of another are not reused.
_PARTIAL_FORMAT = 2


class PartialLog:
    """Append-only file of ``(ids, input keys, embeddings)`` records, for resuming an interrupted run.

    The first record is a JSON header (the model and settings :func:`fingerprint`); each later
    one an ``.npz`` of one batch with each embedding's :func:`input_key`. Records are framed with
    their length and CRC32 and fsync'ed, so a kill mid-write leaves at most one torn record at
    the end, which :meth:`read` drops (and truncates). A log made with another model or other
    settings is not reused: :meth:`read` returns nothing, says why in :attr:`stale`, and
    :meth:`open` starts the file afresh.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: dict) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.stale: str | None = None  # why the file on disk cannot be reused, after read()
        self.stale_count = 0  # embeddings in that file
        self._file = None

    @staticmethod
    def _records(data: bytes) -> Iterator[tuple[int, bytes]]:
        pos = 0
        while pos + _HEAD.size <= len(data):
            magic, n, crc = _HEAD.unpack_from(data, pos)
            payload = data[pos + _HEAD.size : pos + _HEAD.size + n]
            if magic != _MAGIC or len(payload) != n or zlib.crc32(payload) != crc:
                return
            pos += _HEAD.size + n
            yield pos, payload

    def _differs(self, header: object) -> str | None:
        if not isinstance(header, dict) or header.get("partial_format") != _PARTIAL_FORMAT:
            return "written by an older xvector, without input keys"
        keys = sorted(k for k in {*header, *self.fingerprint} if header.get(k) != self.fingerprint.get(k))
        return f"made with another model or settings ({', '.join(keys)} differ)" if keys else None

    def read(self) -> dict[str, tuple[str, np.ndarray]]:
        """``{utt: (input key, embedding)}`` already written (``{}`` when there is no file).

        Drops a torn tail. For a file of another model, settings or format, returns ``{}`` and
        sets :attr:`stale` to the reason (the file is rewritten by :meth:`open`).
        """
        self.stale, self.stale_count = None, 0
        if not self.path.is_file():
            return {}
        data = self.path.read_bytes()
        done: dict[str, tuple[str, np.ndarray]] = {}
        end = 0
        for i, (end_pos, payload) in enumerate(self._records(data)):
            if i == 0:
                try:
                    header = json.loads(payload)
                except ValueError:
                    header = None
                self.stale = self._differs(header)
            elif self.stale is not None:
                with np.load(io.BytesIO(payload), allow_pickle=False) as rec:
                    self.stale_count += len(rec["ids"])
            else:
                with np.load(io.BytesIO(payload), allow_pickle=False) as rec:
                    # later records win: an utterance embedded again after its input changed
                    done.update(zip((str(u) for u in rec["ids"]), zip((str(k) for k in rec["keys"]), rec["embeddings"])))
            end = end_pos
        if end == 0 and data:
            self.stale = "unreadable (no valid header)"
        if self.stale is not None:
            return {}
        if end < len(data):
            log.warning("%s: dropping a torn last record (%d bytes)", self.path, len(data) - end)
            with open(self.path, "r+b") as f:
                f.truncate(end)
        return done

    def _write(self, payload: bytes) -> None:
        self._file.write(_HEAD.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()
        os.fsync(self._file.fileno())

    def open(self) -> PartialLog:
        """Open for appending, writing the header first when the file is new, empty or stale."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = self.stale is not None or not self.path.is_file() or self.path.stat().st_size == 0
        self._file = open(self.path, "wb" if new else "ab")
        if new:
            self._write(json.dumps(self.fingerprint, sort_keys=True).encode())
        self.stale = None
        return self

    def append(self, ids: Sequence[str], keys: Sequence[str], embeddings: np.ndarray) -> None:
        """Write one batch: ``ids``, their :func:`input_key` strings and ``(B, D)`` embeddings."""
        buf = io.BytesIO()
        np.savez(buf, ids=np.asarray(list(ids), dtype=str), keys=np.asarray(list(keys), dtype=str),
                 embeddings=np.asarray(embeddings, dtype=np.float32))
        self._write(buf.getvalue())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def fingerprint(embedder: torch.nn.Module, sample_rate: int, settings: dict | None = None) -> dict:
    """Identity of a model and the settings that change its embeddings, for resuming.

    Args:
        embedder: the net (its weights are hashed).
        sample_rate: the rate it runs at.
        settings: JSON-able options that change embeddings beyond float rounding (precision,
            chunking, short-utterance padding, front-end options...): a resumed run must
            match them all.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(embedder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    out = {"partial_format": _PARTIAL_FORMAT, "weights_sha256": h.hexdigest(), "sample_rate": int(sample_rate)}
    if settings:
        out["settings"] = json.loads(json.dumps(settings, sort_keys=True, default=str))
    return out


def reusable(
    partial: PartialLog | None, keys: dict[str, str], unreadable: Collection[str] = ()
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Embeddings of ``partial`` still valid, and ``{reason: count}`` of those that are not.

    Args:
        partial: the log of an interrupted run (None: nothing to reuse).
        keys: ``{utt: input_key(path)}`` of the utterances of the ``wav.scp`` now.
        unreadable: utterances of the ``wav.scp`` whose file cannot be read now.

    An entry is kept only when its utterance's input key (path, size, mtime) is unchanged; a
    log line says how many were kept and why the rest were not.
    """
    if partial is None:
        return {}, {}
    entries = partial.read()
    if partial.stale is not None:
        log.warning("%s: %s: its %d embeddings are not reused, every utterance is embedded again", partial.path,
                    partial.stale, partial.stale_count)
        return {}, {partial.stale: partial.stale_count}
    if not entries:
        return {}, {}
    done: dict[str, np.ndarray] = {}
    redone: dict[str, int] = {}

    def count(reason: str) -> None:
        redone[reason] = redone.get(reason, 0) + 1

    for utt, (key, emb) in entries.items():
        now = keys.get(utt)
        if utt not in keys and utt not in unreadable:
            count("no longer in wav.scp")
        elif now is None:
            count("file now unreadable")
        elif now == key:
            done[utt] = emb
        elif now.rsplit("|", 2)[0] != key.rsplit("|", 2)[0]:
            count("id now points at another file")
        else:
            count("file changed (size or mtime)")
    why = "; ".join(f"{n} {reason}" for reason, n in sorted(redone.items()))
    log.info("%s: %d embeddings kept%s", partial.path, len(done), f", not reused: {why}" if why else "")
    return done, redone
