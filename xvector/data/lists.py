"""Kaldi data-directory lists: ``wav.scp``, ``utt2spk``, ``spk2utt`` and ``trials``.

Every reader validates as Kaldi's ``validate_data_dir.sh`` does and raises a ``ValueError``
naming the file and line of the first problem: bytes that are not UTF-8, empty or malformed
lines, duplicate ids, ids not sorted in C-locale (byte) order, wav files that do not exist,
lists that disagree. Fields are separated by ASCII whitespace (so CRLF files read as LF ones);
other Unicode spaces belong to the field, as in Kaldi. :mod:`xvector.data.validate` reports
every problem of a directory instead of stopping at the first.
Writers sort by id and write atomically (temporary file + rename), so a crash never leaves a
half-written list under its final name.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_kaldi_map(d / "utt2spk", {"s1-u2": "s1", "s1-u1": "s1"})
    >>> read_kaldi_map(d / "utt2spk")
    {'s1-u1': 's1', 's1-u2': 's1'}
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xvector.atomic import atomic_write_text

TARGET_LABELS = {"target": True, "nontarget": False}
_ASCII_SPACE = " \t\n\r\f\v"
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")


def _sort_key(key: str) -> bytes:
    # Kaldi sorts with LC_ALL=C, i.e. by UTF-8 bytes, not by Python's code-point order.
    return key.encode("utf-8")


def split_fields(line: str, maxsplit: int = 0) -> list[str]:
    """Split a list line on ASCII whitespace only (as Kaldi does), at most ``maxsplit`` times (0: no limit)."""
    line = line.strip(_ASCII_SPACE)
    return _WHITESPACE.split(line, maxsplit=maxsplit) if line else []


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line of a list file, decoded as UTF-8.

    Raises:
        ValueError: naming the file when it does not exist, or ``path:line`` for bytes that are
            not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: list file does not exist")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    for lineno, line in iter_lines(path):
        fields = split_fields(line)
        if not fields:
            raise ValueError(f"{path}:{lineno}: empty line")
        yield lineno, fields


def read_kaldi_map(path: str | os.PathLike, *, check_sorted: bool = True) -> dict[str, str]:
    """Read a two-column Kaldi map (``<key> <value>``), e.g. ``utt2spk``.

    The value is the rest of the line after the key (so ``wav.scp`` paths may contain spaces).

    Raises:
        ValueError: naming ``path:line`` for a missing value, a duplicate key or, with
            ``check_sorted``, a key out of C-locale order.
    """
    path = Path(path)
    out: dict[str, str] = {}
    prev: str | None = None
    for lineno, line in iter_lines(path):
        parts = split_fields(line, maxsplit=1)
        if not parts:
            raise ValueError(f"{path}:{lineno}: empty line")
        if len(parts) < 2:
            raise ValueError(f"{path}:{lineno}: expected '<key> <value>', got {line.strip()!r}")
        key, value = parts
        if key in out:
            raise ValueError(f"{path}:{lineno}: duplicate id {key!r}")
        if check_sorted and prev is not None and _sort_key(key) < _sort_key(prev):
            raise ValueError(
                f"{path}:{lineno}: id {key!r} is not sorted (comes after {prev!r}); "
                "sort the file with 'LC_ALL=C sort'"
            )
        out[key] = value
        prev = key
    return out


def read_wav_scp(path: str | os.PathLike, *, check_exists: bool = True) -> dict[str, Path]:
    """Read ``wav.scp`` (``<utt> <path>``); relative paths are resolved against its folder.

    Kaldi pipe commands (``... |``) and extended filenames are not supported: convert the audio
    to files first.

    Raises:
        ValueError: naming ``path:line`` for pipes and, with ``check_exists``, missing files.
    """
    path = Path(path)
    raw = read_kaldi_map(path)
    out: dict[str, Path] = {}
    for lineno, (utt, value) in enumerate(raw.items(), start=1):
        if value.endswith("|"):
            raise ValueError(f"{path}:{lineno}: pipe commands are not supported: {value!r}")
        wav = Path(value)
        if not wav.is_absolute():
            wav = path.parent / wav
        if check_exists and not wav.is_file():
            raise ValueError(f"{path}:{lineno}: audio file for {utt!r} does not exist: {wav}")
        out[utt] = wav
    return out


def read_spk2utt(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read ``spk2utt`` (``<spk> <utt1> <utt2> ...``)."""
    return {spk: split_fields(utts) for spk, utts in read_kaldi_map(path).items()}


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``utt2spk``; speakers and their utterances come out sorted."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=_sort_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt, key=_sort_key)}


def check_id(path: str | os.PathLike, key: str) -> None:
    """Raise a ValueError naming ``path`` unless ``key`` is a valid Kaldi id (non-empty, no whitespace)."""
    if not key or any(c.isspace() for c in key):
        raise ValueError(f"{path}: id {key!r} is empty or contains whitespace")


def write_kaldi_map(path: str | os.PathLike, mapping: Mapping[str, str | Sequence[str]]) -> None:
    """Write ``<key> <value>`` lines sorted by key (C locale); list values are space-joined.

    Raises:
        ValueError: naming the file for an id that is empty or holds whitespace, or a value that
            would not read back as written (empty, a line break, surrounding whitespace).
    """
    lines = []
    for key in sorted(mapping, key=_sort_key):
        value = mapping[key]
        value = value if isinstance(value, str) else " ".join(value)
        check_id(path, key)
        if not value or "\n" in value or value != value.strip(_ASCII_SPACE):
            raise ValueError(
                f"{path}: value {value!r} of id {key!r} is empty, spans lines or has surrounding whitespace"
            )
        lines.append(f"{key} {value}\n")
    atomic_write_text(path, "".join(lines))


@dataclass(frozen=True)
class Trial:
    """One verification trial: enrollment id, test id and whether they share a speaker."""

    enroll: str
    test: str
    target: bool


def read_trials(path: str | os.PathLike, *, require_both_classes: bool = False) -> list[Trial]:
    """Read a Kaldi trial list: ``<enroll> <test> target|nontarget`` per line.

    Args:
        path: the trial list.
        require_both_classes: raise unless the list holds target and nontarget trials (as EER
            and minDCF need); off by default, since a one-class list can still be scored.

    Raises:
        ValueError: naming ``path:line`` for a malformed line or an unknown label, or the file
            when it holds no trials (or, with ``require_both_classes``, only one class).
    """
    path = Path(path)
    trials = []
    for lineno, fields in _lines(path):
        if len(fields) != 3 or fields[2] not in TARGET_LABELS:
            raise ValueError(
                f"{path}:{lineno}: expected '<enroll> <test> target|nontarget', got {' '.join(fields)!r}"
            )
        trials.append(Trial(fields[0], fields[1], TARGET_LABELS[fields[2]]))
    if not trials:
        raise ValueError(f"{path}: trial list is empty")
    if require_both_classes:
        n_target = sum(t.target for t in trials)
        if n_target in (0, len(trials)):
            kind = "target" if n_target else "nontarget"
            raise ValueError(f"{path}: only {kind} trials ({len(trials)}); EER and minDCF need both classes")
    return trials


def write_trials(path: str | os.PathLike, trials: Iterable[Trial | tuple[str, str, bool]]) -> None:
    """Write a trial list in the order given (ValueError naming the file for an invalid id)."""
    lines = []
    for enroll, test, target in map(_as_tuple, trials):
        check_id(path, enroll)
        check_id(path, test)
        lines.append(f"{enroll} {test} {'target' if target else 'nontarget'}\n")
    atomic_write_text(path, "".join(lines))


def _as_tuple(trial: Trial | tuple[str, str, bool]) -> tuple[str, str, bool]:
    return (trial.enroll, trial.test, trial.target) if isinstance(trial, Trial) else tuple(trial)


@dataclass(frozen=True)
class DataDir:
    """A validated Kaldi data directory: ``wav.scp`` and ``utt2spk`` over the same utterances."""

    root: Path
    wavs: dict[str, Path]
    utt2spk: dict[str, str]

    @property
    def utts(self) -> list[str]:
        return list(self.wavs)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()), key=_sort_key)


def load_data_dir(root: str | os.PathLike, *, check_exists: bool = True) -> DataDir:
    """Read and cross-check ``<root>/wav.scp`` and ``<root>/utt2spk``.

    Raises:
        ValueError: naming the file and utterance when one list has an id the other lacks.
    """
    root = Path(root)
    wavs = read_wav_scp(root / "wav.scp", check_exists=check_exists)
    utt2spk = read_kaldi_map(root / "utt2spk")
    for utt in wavs:
        if utt not in utt2spk:
            raise ValueError(f"{root / 'utt2spk'}: no speaker for utterance {utt!r} of wav.scp")
    for utt in utt2spk:
        if utt not in wavs:
            raise ValueError(f"{root / 'wav.scp'}: no audio for utterance {utt!r} of utt2spk")
    return DataDir(root=root, wavs=wavs, utt2spk=utt2spk)
