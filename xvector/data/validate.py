"""Check a Kaldi data directory the way Kaldi's ``utils/validate_data_dir.sh`` does, and more.

Unlike the list readers, which stop at the first problem, :func:`validate_data_dir` collects
every problem, each with its place (``file:line`` and utterance), and :meth:`Report.format`
prints counts per kind with the first few offenders. Errors make data unusable for training or
scoring; warnings are worth a look:

=====================  =======  ==============================================================
kind                   level    meaning
=====================  =======  ==============================================================
list-missing           error    ``wav.scp`` or ``utt2spk`` absent
bad-line               error    not UTF-8, empty, or without the expected fields
duplicate-id           error    an id listed twice
unsorted               error    ids out of C-locale order (``LC_ALL=C sort``)
lists-disagree         error    ``wav.scp`` / ``utt2spk`` / ``spk2utt`` name different utterances
audio-missing          error    a ``wav.scp`` entry whose file does not exist (or a pipe)
undecodable            error    empty, truncated, corrupt or non-audio file
sample-rate            error    a rate other than the expected one
non-finite             error    NaN or infinite samples
silent                 error    every sample zero (features would be constant)
trials-*               error    unknown utterance (or model, with an enroll.map), empty list, one class only, malformed line
no-spk2utt             warning  ``spk2utt`` absent (this toolkit rebuilds it; Kaldi needs it)
speaker-order          warning  utterance ids not prefixed by their speaker (Kaldi sorts both)
multi-channel          warning  averaged to mono when read
short                  warning  shorter than ``min_duration_sec``
trials-self/duplicate  warning  a trial of an utterance with itself, a pair listed twice
=====================  =======  ==============================================================
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from xvector.data.audio import wav_truncation
from xvector.data.lists import TARGET_LABELS, _sort_key, split_fields, utt2spk_to_spk2utt

WARNINGS = {"no-spk2utt", "speaker-order", "multi-channel", "short", "trials-self", "trials-duplicate"}


@dataclass
class Report:
    """Problems found in one data directory, and its size."""

    root: Path
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    num_utts: int = 0
    num_speakers: int = 0
    seconds: float = 0.0

    def add(self, kind: str, where: str) -> None:
        self.problems[kind].append(where)

    @property
    def errors(self) -> int:
        return sum(len(v) for k, v in self.problems.items() if k not in WARNINGS)

    @property
    def warnings(self) -> int:
        return sum(len(v) for k, v in self.problems.items() if k in WARNINGS)

    def format(self, max_examples: int = 3) -> str:
        """The printed report: a summary line, one line per kind, the first offenders."""
        lines = [f"{self.root}: {self.num_utts} utterances, {self.num_speakers} speakers, "
                 f"{self.seconds / 3600:.2f} h of audio checked"]
        for kind in sorted(self.problems, key=lambda k: (k in WARNINGS, k)):
            where = self.problems[kind]
            level = "WARNING" if kind in WARNINGS else "ERROR"
            lines.append(f"  {level:7s} {kind} ({len(where)})")
            lines += [f"          {w}" for w in where[:max_examples]]
            if len(where) > max_examples:
                lines.append(f"          ... and {len(where) - max_examples} more")
        verdict = "FAILED" if self.errors else "OK"
        lines.append(f"{verdict}: {self.errors} errors, {self.warnings} warnings")
        return "\n".join(lines)


def _scan(path: Path, report: Report, fields: int | None = 2) -> dict[str, tuple[int, str]]:
    """``id → (line, rest of line)`` of a list, recording bad, duplicate and unsorted lines."""
    out: dict[str, tuple[int, str]] = {}
    prev = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                parts = split_fields(raw.decode("utf-8").rstrip("\n"), maxsplit=1)
            except UnicodeDecodeError:
                report.add("bad-line", f"{path}:{lineno}: not UTF-8")
                continue
            if len(parts) < 2:
                report.add("bad-line", f"{path}:{lineno}: expected '<id> <value>', got {' '.join(parts)!r}")
                continue
            key, value = parts
            if key in out:
                report.add("duplicate-id", f"{path}:{lineno}: {key!r} (first on line {out[key][0]})")
                continue
            if prev is not None and _sort_key(key) < _sort_key(prev):
                report.add("unsorted", f"{path}:{lineno}: {key!r} after {prev!r}")
            out[key], prev = (lineno, value), key
    return out


def _check_audio(path: Path, sample_rate: int, decode: bool) -> tuple[list[tuple[str, str]], float]:
    """``([(kind, detail)], seconds)`` for one audio file."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        return [("undecodable", f"cannot open ({err})")], 0.0
    found = []
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if info.samplerate != sample_rate:
        found.append(("sample-rate", f"{info.samplerate} Hz, expected {sample_rate} Hz"))
    if info.channels > 1:
        found.append(("multi-channel", f"{info.channels} channels"))
    cut = wav_truncation(path)
    if cut:
        found.append(("undecodable", f"truncated: header declares {cut[0]} data bytes, file holds {cut[1]}"))
    if info.frames == 0:
        found.append(("undecodable", "no samples"))
    elif decode:
        try:
            data, _ = sf.read(str(path), dtype="float32", always_2d=True)  # (S, C): every channel
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            found.append(("undecodable", f"cannot decode ({err})"))
        else:
            seconds = len(data) / info.samplerate
            if not len(data):
                found.append(("undecodable", "no samples"))
            elif not np.isfinite(data).all():
                found.append(("non-finite", f"{int((~np.isfinite(data)).sum())} NaN or infinite samples"))
            elif not data.any():
                found.append(("silent", f"all {data.size} samples are zero"))
    return found, seconds


def _check_trials(path: Path, utts: set[str], report: Report, models: frozenset[str] = frozenset()) -> None:
    classes, seen, n = set(), set(), 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                fields = split_fields(raw.decode("utf-8"))
            except UnicodeDecodeError:
                fields = []
            if len(fields) != 3 or fields[2] not in TARGET_LABELS:
                report.add("trials-bad-line", f"{path}:{lineno}: expected '<enroll> <test> target|nontarget'")
                continue
            n += 1
            enroll, test, label = fields
            classes.add(label)
            for utt in (enroll, test):
                if utt not in utts and not (utt is enroll and utt in models):  # a model of enroll.map
                    report.add("trials-unknown-utt", f"{path}:{lineno}: {utt!r} is not in wav.scp")
            if enroll == test:
                report.add("trials-self", f"{path}:{lineno}: {enroll!r} against itself")
            pair = (min(enroll, test), max(enroll, test))
            if pair in seen:
                report.add("trials-duplicate", f"{path}:{lineno}: {enroll} {test}")
            seen.add(pair)
    if n == 0:
        report.add("trials-empty", f"{path}: no trials")
    elif len(classes) == 1:
        report.add("trials-one-class", f"{path}: only {classes.pop()} trials ({n})")


def validate_data_dir(
    root: str | os.PathLike,
    *,
    sample_rate: int = 16000,
    min_duration_sec: float = 1.0,
    decode: bool = True,
    jobs: int = 1,
) -> Report:
    """Check lists, audio and trial lists (``trials``, ``trials_*``) of one data directory.

    Args:
        root: the data directory.
        sample_rate: the rate every file must have, in Hz.
        min_duration_sec: utterances shorter than this are reported (warning ``short``).
        decode: decode every sample (NaN / silence / corruption); False reads headers only.
        jobs: threads decoding audio.
    """
    root = Path(root)
    report = Report(root)
    lists = {}
    for name in ("wav.scp", "utt2spk"):
        if not (root / name).is_file():
            report.add("list-missing", f"{root / name}: does not exist")
        else:
            lists[name] = _scan(root / name, report)
    if len(lists) < 2:
        return report
    wavs, utt2spk = lists["wav.scp"], {u: v for u, (_, v) in lists["utt2spk"].items()}
    for utt in wavs.keys() - utt2spk.keys():
        report.add("lists-disagree", f"{root / 'wav.scp'}:{wavs[utt][0]}: {utt!r} has no speaker in utt2spk")
    for utt in utt2spk.keys() - wavs.keys():
        report.add("lists-disagree", f"{root / 'utt2spk'}:{lists['utt2spk'][utt][0]}: {utt!r} has no audio in wav.scp")
    report.num_utts, report.num_speakers = len(wavs), len(set(utt2spk.values()))
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    if (root / "spk2utt").is_file():
        listed = {s: split_fields(v) for s, (_, v) in _scan(root / "spk2utt", report).items()}
        for spk in sorted(set(listed) | set(spk2utt)):
            if sorted(listed.get(spk, [])) != sorted(spk2utt.get(spk, [])):
                report.add("lists-disagree", f"{root / 'spk2utt'}: speaker {spk!r} differs from utt2spk")
    else:
        report.add("no-spk2utt", f"{root / 'spk2utt'}: does not exist")
    if [u for s in spk2utt for u in spk2utt[s]] != sorted(utt2spk, key=_sort_key):
        report.add("speaker-order", f"{root / 'utt2spk'}: sorting by speaker differs from sorting by utterance")

    files = {}
    for utt, (lineno, value) in wavs.items():
        path = Path(value) if Path(value).is_absolute() else root / value
        where = f"{root / 'wav.scp'}:{lineno} {utt}"
        if value.endswith("|") or not path.is_file():
            report.add("audio-missing", f"{where}: {value}")
        else:
            files[where] = path
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        results = pool.map(lambda p: _check_audio(p, sample_rate, decode), files.values())
        for where, (found, seconds) in zip(files, results):
            for kind, detail in found:
                report.add(kind, f"{where}: {detail}")
            report.seconds += seconds
            if 0 < seconds < min_duration_sec:
                report.add("short", f"{where}: {seconds:.2f} s < {min_duration_sec} s")
    models: frozenset[str] = frozenset()
    if (root / "enroll.map").is_file():  # speaker-model trials (CN-Celeb, SITW): enrolment side = a model
        models = frozenset(split_fields(line)[0] for line in (root / "enroll.map").read_text().splitlines() if line.strip())
    for path in sorted(root.glob("trials*")):
        if path.is_file() and (path.name == "trials" or path.name.startswith("trials_")):
            _check_trials(path, set(wavs), report, models)
    return report

