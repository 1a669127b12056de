"""Kaldi data-directory lists: ``wav.scp``, ``utt2spk``, ``spk2utt`` and ``trials``.

Every reader validates as Kaldi's ``validate_data_dir.sh`` does and raises a ``ValueError``
naming the file and line of the first problem: empty or malformed lines, duplicate ids, ids not
sorted in C-locale (byte) order, wav files that do not exist, lists that disagree.
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xvector.atomic import atomic_write_text

TARGET_LABELS = {"target": True, "nontarget": False}


def _sort_key(key: str) -> bytes:
    # Kaldi sorts with LC_ALL=C, i.e. by UTF-8 bytes, not by Python's code-point order.
    return key.encode("utf-8")


def _lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    if not path.is_file():
        raise ValueError(f"{path}: list file does not exist")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
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
    if not path.is_file():
        raise ValueError(f"{path}: list file does not exist")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip("\n").strip().split(maxsplit=1)
            if not parts:
                raise ValueError(f"{path}:{lineno}: empty line")
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: expected '<key> <value>', got {line.strip()!r}")
            key, value = parts[0], parts[1].strip()
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
    return {spk: utts.split() for spk, utts in read_kaldi_map(path).items()}


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``utt2spk``; speakers and their utterances come out sorted."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=_sort_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt, key=_sort_key)}


def write_kaldi_map(path: str | os.PathLike, mapping: Mapping[str, str | Sequence[str]]) -> None:
    """Write ``<key> <value>`` lines sorted by key (C locale); list values are space-joined."""
    lines = []
    for key in sorted(mapping, key=_sort_key):
        value = mapping[key]
        value = value if isinstance(value, str) else " ".join(value)
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"{path}: id {key!r} is empty or contains whitespace")
        lines.append(f"{key} {value}\n")
    atomic_write_text(path, "".join(lines))


@dataclass(frozen=True)
class Trial:
    """One verification trial: enrollment id, test id and whether they share a speaker."""

    enroll: str
    test: str
    target: bool


def read_trials(path: str | os.PathLike) -> list[Trial]:
    """Read a Kaldi trial list: ``<enroll> <test> target|nontarget`` per line.

    Raises:
        ValueError: naming ``path:line`` for a malformed line or an unknown label, or the file
            when it holds no trials.
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
    return trials


def write_trials(path: str | os.PathLike, trials: Iterable[Trial | tuple[str, str, bool]]) -> None:
    """Write a trial list in the order given."""
    lines = [f"{e} {t} {'target' if tgt else 'nontarget'}\n" for e, t, tgt in map(_as_tuple, trials)]
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
