"""Enrolment maps and the trial lists whose enrolment side is a speaker model.

An enrolment map is a ``spk2utt``-style list, ``<model> <utt1> [<utt2> ...]`` per line: the
utterances a speaker model is enrolled from (CN-Celeb's ``enroll.map``, SITW's ``enroll-core``
list, Kaldi's enrolment ``spk2utt``). A model-side trial list keeps the Kaldi format
``<model> <test utt> target|nontarget``; ``xvector-score enroll_map=...`` scores it.

:func:`enrollment_split` makes such a protocol from any labelled data directory: for each of
the enrolled speakers ``n`` utterances enrol a model (named after the speaker) and the rest
are queries; the speakers left out (``unknown``) give non-mated queries for open-set
identification. :func:`model_trials` pairs every model with every query.

Example:
    >>> utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(3) for u in range(3)}
    >>> split = enrollment_split(utt2spk, n_enroll=2, n_unknown=1, seed=0)
    >>> {m: len(u) for m, u in split.enroll_map.items()}, len(split.queries)
    ({'s0': 2, 's1': 2}, 5)
    >>> trials = model_trials(split.enroll_map, split.queries, utt2spk)
    >>> len(trials), sum(t.target for t in trials)
    (10, 2)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xvector.data.lists import (
    Trial,
    check_id,
    iter_lines,
    split_fields,
    utt2spk_to_spk2utt,
    write_kaldi_map,
)


def read_enroll_map(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read an enrolment map (any order: CN-Celeb's is not C-sorted).

    Raises:
        ValueError: naming ``path:line`` for a line without utterances, a model listed twice,
            or an utterance repeated within one model; the file when it is empty.
    """
    path = Path(path)
    out: dict[str, list[str]] = {}
    for lineno, line in iter_lines(path):
        fields = split_fields(line)
        if not fields:
            raise ValueError(f"{path}:{lineno}: empty line")
        model, utts = fields[0], fields[1:]
        if not utts:
            raise ValueError(f"{path}:{lineno}: expected '<model> <utt1> [<utt2> ...]', got {line.strip()!r}")
        if model in out:
            raise ValueError(f"{path}:{lineno}: model {model!r} is listed twice")
        if len(set(utts)) != len(utts):
            dup = next(u for u in utts if utts.count(u) > 1)
            raise ValueError(f"{path}:{lineno}: model {model!r} lists utterance {dup!r} twice")
        out[model] = utts
    if not out:
        raise ValueError(f"{path}: enrolment map is empty")
    return out


def write_enroll_map(path: str | os.PathLike, enroll_map: Mapping[str, Sequence[str]]) -> None:
    """Write ``<model> <utt1> ...`` lines sorted by model (C locale), atomically."""
    write_kaldi_map(path, {m: list(u) for m, u in enroll_map.items()})


def check_model_trials(trials: Sequence[Trial], enroll_map: Mapping[str, Sequence[str]],
                       path: str | os.PathLike = "trials") -> None:
    """Raise a ValueError naming ``path`` and the line of the first trial whose model is not in the map."""
    for lineno, t in enumerate(trials, start=1):
        if t.enroll not in enroll_map:
            raise ValueError(f"{path}:{lineno}: speaker model {t.enroll!r} is not in the enrolment map")


@dataclass(frozen=True)
class EnrollmentSplit:
    """An enrolment / query split of a data directory (see :func:`enrollment_split`)."""

    enroll_map: dict[str, list[str]]  # model (= speaker) → enrolment utterances
    queries: list[str]  # every utterance not used for enrolment, sorted
    unknown: list[str]  # speakers not enrolled (their utterances are non-mated queries)


def enrollment_split(utt2spk: Mapping[str, str], n_enroll: int, n_unknown: int = 0, seed: int = 0) -> EnrollmentSplit:
    """Enrol ``n_enroll`` random utterances of each speaker but ``n_unknown`` random ones.

    Raises:
        ValueError: for ``n_enroll < 1``, as many unknown speakers as speakers, or an enrolled
            speaker with fewer than ``n_enroll + 1`` utterances (it needs a query too; named).
    """
    if n_enroll < 1:
        raise ValueError(f"n_enroll must be >= 1, got {n_enroll}")
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    speakers = list(spk2utt)
    if not 0 <= n_unknown < len(speakers):
        raise ValueError(f"n_unknown={n_unknown}: need 0 <= n_unknown < {len(speakers)} speakers")
    rng = np.random.default_rng(seed)
    unknown = sorted(speakers[i] for i in rng.permutation(len(speakers))[:n_unknown])
    enroll_map: dict[str, list[str]] = {}
    for spk in speakers:
        if spk in unknown:
            continue
        utts = spk2utt[spk]
        if len(utts) <= n_enroll:
            raise ValueError(f"speaker {spk!r} has {len(utts)} utterances: enrolling {n_enroll} leaves no query")
        enroll_map[spk] = sorted(utts[i] for i in rng.permutation(len(utts))[:n_enroll])
    used = {u for utts in enroll_map.values() for u in utts}
    queries = sorted((u for u in utt2spk if u not in used), key=lambda u: u.encode())
    return EnrollmentSplit(enroll_map, queries, unknown)


def model_trials(enroll_map: Mapping[str, Sequence[str]], queries: Sequence[str], utt2spk: Mapping[str, str],
                 model2spk: Mapping[str, str] | None = None) -> list[Trial]:
    """Every model against every query: target when the query's speaker is the model's.

    Args:
        model2spk: each model's speaker (default: the model id is the speaker id).
    """
    out = []
    for model in sorted(enroll_map, key=lambda m: m.encode()):
        check_id("enrolment map", model)
        spk = model2spk[model] if model2spk is not None else model
        out.extend(Trial(model, q, utt2spk[q] == spk) for q in queries)
    return out
