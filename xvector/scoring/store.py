"""Speaker stores: enrolled speakers, one model each, with the back-end that scores them — numpy only.

A :class:`SpeakerStore` holds, per speaker, the *sum* of its enrolment vectors in the back-end's
scoring space (unit vectors: mean-subtracted and length-normalised for cosine, after LDA for
PLDA) and how many were summed, so the model (their mean) can grow by new utterances, and
speakers can be added or removed, without touching anyone else's. Two enrolment modes:

* ``avg`` — one embedding per enrolment utterance, the model is their mean (CN-Celeb "Avg");
* ``concat`` — one embedding of the speaker's concatenated audio (CN-Celeb "Concat"); a speaker
  gets one vector (``n = 1``) and cannot be grown, only replaced.

A store is one ``.npz`` file, written atomically: ``ids``, ``sums (S, E)`` float32,
``counts (S,)``, the back-end's arrays (``backend_*``) and a JSON ``meta`` string: format
version, mode, back-end kind, embedding dimension, the identity of the model that made the
embeddings (weights hash, sample rate), calibration (``{"scale", "offset"}``: LLR = scale *
score + offset) and open-set threshold (``{"threshold", "on": "score"|"llr"}``), and the
settings and sources of each enrolment. No pickles: ``np.load(allow_pickle=False)`` reads it.

Example:
    >>> import numpy as np, tempfile
    >>> from xvector.scoring.backends import CosineBackend
    >>> store = SpeakerStore(CosineBackend(in_dim=2))
    >>> emb = np.array([[1.0, 0.1], [1.0, -0.1], [0.0, 1.0]])
    >>> store.add_map({"alice": ["a1", "a2"], "bob": ["b1"]}, ["a1", "a2", "b1"], emb)
    >>> store.ids, store.counts.tolist()
    (['alice', 'bob'], [2, 1])
    >>> path = tempfile.mkdtemp() + "/store.npz"
    >>> store.save(path)
    >>> SpeakerStore.load(path).remove(["alice"]).ids
    ['bob']
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xvector.atomic import atomic_output
from xvector.scoring.backends import Backend, backend_from_arrays, pair_scores

FORMAT = "xvector-speaker-store"
FORMAT_VERSION = 1
MODES = ("avg", "concat")
EXISTING = ("error", "add", "replace")  # what adding an enrolled speaker again does
_BLOCK = 65536  # rows transformed at once while enrolling: bounds the float64 copies


class SpeakerStore:
    """Enrolled speakers and their back-end.

    Args:
        backend: a :mod:`xvector.scoring.backends` back-end (fitted).
        mode: ``"avg"`` or ``"concat"`` (see the module docstring).
        model: identity of the embedding model (any JSON-able dict), checked when searching
            with a model; None when unknown.
        calibration: ``{"scale", "offset"}`` mapping scores to LLRs, or None.
        threshold: ``{"threshold", "on"}`` for open-set decisions, or None.
    """

    def __init__(self, backend: Backend, mode: str = "avg", model: dict | None = None,
                 calibration: Mapping[str, float] | None = None, threshold: Mapping[str, Any] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"enrolment mode must be one of {MODES}, got {mode!r}")
        self.backend = backend
        self.mode = mode
        self.model = model
        self.calibration = None if calibration is None else {k: float(calibration[k]) for k in ("scale", "offset")}
        self.threshold = None if threshold is None else dict(threshold)
        self.ids: list[str] = []
        self.sums = np.zeros((0, backend.dim), dtype=np.float32)
        self.counts = np.zeros(0, dtype=np.int64)
        self.sources: list[dict] = []  # one entry per enrolment: what it read, how many speakers
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, speaker: object) -> bool:
        return speaker in self._row

    @property
    def embed_dim(self) -> int:
        return self.backend.in_dim

    @property
    def outputs_llr(self) -> bool:
        """True when scores (after the calibration, if any) are log-likelihood ratios."""
        return self.calibration is not None or self.backend.outputs_llr

    def index(self, speaker: str) -> int:
        """Row of ``speaker`` (ValueError naming it when it is not enrolled)."""
        try:
            return self._row[speaker]
        except KeyError:
            raise ValueError(f"speaker {speaker!r} is not enrolled") from None

    # ----------------------------------------------------------------------------- enrolment

    def add(self, speakers: Sequence[str], embeddings: np.ndarray, existing: str = "error",
            source: dict | None = None) -> None:
        """Enrol raw ``embeddings (N, D)``, row ``i`` belonging to speaker ``speakers[i]``.

        In ``avg`` mode a speaker's rows are averaged (in the back-end's space); in ``concat``
        mode each speaker must have exactly one row (the embedding of its concatenated audio).

        Args:
            existing: for a speaker already enrolled: ``"error"`` (default), ``"add"`` (the new
                vectors join its model; ``avg`` mode only) or ``"replace"`` (a new model).
            source: a note of what was enrolled (file names, settings) kept in the store's meta.

        Raises:
            ValueError: for a shape mismatch, non-finite embeddings, an existing speaker under
                ``existing="error"``, or more than one row per speaker in ``concat`` mode.
        """
        if existing not in EXISTING:
            raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}")
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != len(speakers) or emb.shape[1] != self.embed_dim:
            raise ValueError(f"need ({len(speakers)}, {self.embed_dim}) embeddings, got shape {emb.shape}")
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            raise ValueError(f"non-finite embedding for speaker {speakers[int(np.argmax(bad))]!r}")
        names, codes = np.unique(np.asarray(list(speakers), dtype=str), return_inverse=True)
        names = [str(s) for s in names]
        counts = np.bincount(codes, minlength=len(names))
        if self.mode == "concat" and counts.max(initial=1) > 1:
            raise ValueError(f"concat enrolment takes one embedding per speaker; {names[int(np.argmax(counts))]!r} "
                             f"has {counts.max()}")
        known = [s for s in names if s in self._row]
        if known and existing == "error":
            raise ValueError(f"speaker {known[0]!r} is already enrolled ({len(known)} of these are); "
                             "add to their models (existing=add) or replace them (existing=replace)")
        if known and existing == "add" and self.mode == "concat":
            raise ValueError(f"speaker {known[0]!r}: a concat model is the embedding of all its audio and cannot "
                             "grow; re-enrol it from all of its audio with existing=replace")
        sums = np.zeros((len(names), self.backend.dim), dtype=np.float64)
        for start in range(0, len(emb), _BLOCK):  # transform in blocks: bounded float64 copies
            part = slice(start, start + _BLOCK)
            unit, code = self.backend.transform(emb[part]), codes[part]
            order = np.argsort(code, kind="stable")
            first = np.flatnonzero(np.r_[True, np.diff(code[order]) != 0])
            sums[code[order][first]] += np.add.reduceat(unit[order], first, axis=0)
        new = [i for i, s in enumerate(names) if s not in self._row]
        old = [i for i, s in enumerate(names) if s in self._row]
        if old:
            rows = np.array([self._row[names[i]] for i in old])
            if existing == "add":
                self.sums[rows] += sums[old].astype(np.float32)
                self.counts[rows] += counts[old]
            else:
                self.sums[rows] = sums[old]
                self.counts[rows] = counts[old]
        if new:
            self._row.update({names[i]: len(self.ids) + j for j, i in enumerate(new)})
            self.ids.extend(names[i] for i in new)
            self.sums = np.concatenate([self.sums, sums[new].astype(np.float32)])
            self.counts = np.concatenate([self.counts, counts[new].astype(np.int64)])
        self.sources.append({**(source or {}), "speakers": len(names), "new": len(new),
                             "vectors": int(len(emb)), "existing": existing if old else None})

    def add_map(self, enroll_map: Mapping[str, Sequence[str]], ids: Sequence[str], embeddings: np.ndarray,
                existing: str = "error", source: dict | None = None, map_name: str = "enrolment map") -> None:
        """Enrol every ``speaker → utterances`` entry of ``enroll_map`` from an embedding table.

        In ``concat`` mode the table must hold one embedding under each speaker's own id (of its
        concatenated audio); the map's utterance lists are then only the record of that audio.

        Raises:
            ValueError: naming the map entry and the utterance when an embedding is missing, or
                the table when ids repeat or its shape disagrees.
        """
        row = {u: i for i, u in enumerate(ids)}
        if len(row) != len(ids):
            raise ValueError("duplicate utterance id in the embedding table")
        if self.mode == "concat":
            missing = [s for s in enroll_map if s not in row]
            if missing:
                raise ValueError(f"{map_name}: no embedding for speaker model {missing[0]!r} (concat mode embeds "
                                 f"each model's concatenated audio under its own id; {len(missing)} missing)")
            speakers, take = list(enroll_map), [row[s] for s in enroll_map]
        else:
            speakers, take = [], []
            for spk, utts in enroll_map.items():
                for utt in utts:
                    if utt not in row:
                        raise ValueError(f"{map_name}: speaker {spk!r}: no embedding for utterance {utt!r}")
                    speakers.append(spk)
                    take.append(row[utt])
        self.add(speakers, np.asarray(embeddings)[np.asarray(take, dtype=np.int64)], existing, source)

    def remove(self, speakers: Sequence[str]) -> SpeakerStore:
        """Drop ``speakers`` (ValueError naming the first that is not enrolled); returns ``self``."""
        drop = {self.index(s) for s in speakers}
        keep = np.array([i for i in range(len(self.ids)) if i not in drop], dtype=np.int64)
        self.ids = [self.ids[i] for i in keep]
        self.sums, self.counts = self.sums[keep], self.counts[keep]
        self._row = {s: i for i, s in enumerate(self.ids)}
        return self

    # ------------------------------------------------------------------------------- scoring

    def means(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """``(S', E)`` float64 models of ``rows``: mean enrolment vector per speaker."""
        return self.sums[rows].astype(np.float64) / self.counts[rows][:, None]

    def speaker_features(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """``(S', F)`` features of the models in ``rows`` (see :mod:`xvector.scoring.backends`)."""
        return self.backend.speaker_features(self.means(rows), self.counts[rows])

    def query_features(self, embeddings: np.ndarray) -> np.ndarray:
        """``(Q, F)`` features of raw query embeddings ``(Q, D)``."""
        return self.backend.query_features(self.backend.transform(embeddings))

    def to_llr(self, scores: np.ndarray) -> np.ndarray | None:
        """Calibrated LLRs of back-end ``scores``; the scores themselves for an uncalibrated PLDA
        back-end (LLRs by construction); None for uncalibrated cosine scores."""
        if self.calibration is not None:
            return self.calibration["scale"] * np.asarray(scores, dtype=np.float64) + self.calibration["offset"]
        return np.asarray(scores, dtype=np.float64) if self.backend.outputs_llr else None

    def score_trials(self, trials: Sequence, ids: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Back-end score of each trial (``enroll`` = an enrolled speaker, ``test`` = an utterance of
        the table ``ids``/``embeddings``), in trial order, float64.

        Raises:
            ValueError: naming the 1-based trial line whose speaker is not enrolled or whose
                test utterance has no embedding.
        """
        row = {u: i for i, u in enumerate(ids)}
        spk = np.fromiter((self._row.get(t.enroll, -1) for t in trials), dtype=np.int64, count=len(trials))
        utt = np.fromiter((row.get(t.test, -1) for t in trials), dtype=np.int64, count=len(trials))
        if (spk < 0).any():
            k = int(np.argmax(spk < 0))
            raise ValueError(f"trial line {k + 1}: speaker model {trials[k].enroll!r} is not enrolled")
        if (utt < 0).any():
            k = int(np.argmax(utt < 0))
            raise ValueError(f"trial line {k + 1}: no embedding for utterance {trials[k].test!r}")
        used, inverse = np.unique(utt, return_inverse=True)  # each test utterance transformed once
        tests = self.backend.transform(np.asarray(embeddings)[used])
        return pair_scores(self.backend, self.means(spk), self.counts[spk], tests[inverse])

    # ------------------------------------------------------------------------------------ io

    def meta(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "mode": self.mode, "backend": self.backend.kind,
                "embed_dim": self.embed_dim, "model": self.model, "calibration": self.calibration,
                "threshold": self.threshold, "sources": self.sources}

    def save(self, path: str | os.PathLike) -> None:
        """Write the store to ``path`` (``.npz``) atomically: a crash keeps the previous file."""
        arrays = {f"backend_{k}": np.asarray(v) for k, v in self.backend.to_arrays().items()}
        with atomic_output(path, suffix=".npz") as tmp:
            np.savez(tmp, ids=np.asarray(self.ids, dtype=str), sums=self.sums, counts=self.counts,
                     meta=np.asarray(json.dumps(self.meta())), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpeakerStore:
        """Read a store written by :meth:`save` (ValueError naming the file when it is not one)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: speaker store does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                    raise ValueError(f"format {meta.get('format')!r} version {meta.get('version')!r}")
                backend = backend_from_arrays(meta["backend"], {k[len("backend_"):]: data[k] for k in data.files
                                                                if k.startswith("backend_")})
                store = cls(backend, meta["mode"], meta.get("model"), meta.get("calibration"), meta.get("threshold"))
                ids, sums, counts = [str(i) for i in data["ids"]], data["sums"], data["counts"]
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not an xvector speaker store ({err})") from err
        if sums.shape != (len(ids), backend.dim) or counts.shape != (len(ids),) or len(set(ids)) != len(ids):
            raise ValueError(f"{path}: inconsistent store: {len(ids)} ids, sums {sums.shape}, counts {counts.shape}")
        store.ids, store.sums, store.counts = ids, sums.astype(np.float32), counts.astype(np.int64)
        store._row = {s: i for i, s in enumerate(ids)}
        store.sources = list(meta.get("sources", []))
        return store
