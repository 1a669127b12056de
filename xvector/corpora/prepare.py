"""Kaldi data directories from a folder tree or a table of ``path,speaker`` rows.

Two inputs, one output (``wav.scp``, ``utt2spk``, ``spk2utt``; sorted, unique ids, written
atomically):

* a tree ``<root>/<speaker>/**/*.{wav,flac}``: the first folder under the root names the speaker;
* a CSV or TSV file of ``path,speaker`` rows (an optional ``path,speaker`` header; relative paths
  are relative to the table's folder).

Utterance ids are the speaker id and the path below the speaker's folder, without the
extension, joined by ``-`` (``id10001/1zcIwhmdeo4/00001.wav`` → ``id10001-1zcIwhmdeo4-00001``),
so every id starts with its speaker's and ``utt2spk`` sorts the same way as ``spk2utt``, as
Kaldi requires. Whitespace in names becomes ``_``. Two files that map to the same id are an error.

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ["spk1/a.wav", "spk1/sess 2/b.flac", "spk2/c.wav"]:
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(root / rel, np.zeros(160, dtype=np.float32), 16000)
    >>> sorted(utt for utt, _, _ in scan_tree(root))
    ['spk1-a', 'spk1-sess_2-b', 'spk2-c']
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xvector.data.audio import audio_info
from xvector.data.lists import load_data_dir, utt2spk_to_spk2utt, write_kaldi_map

AUDIO_EXTENSIONS = (".wav", ".flac")
_UNSAFE = re.compile(r"\s+")

# An utterance is (utterance id, speaker id, audio path).
Utterance = tuple[str, str, Path]


@dataclass
class PrepareReport:
    """What :func:`prepare_data_dir` wrote and what it left out (reason → paths)."""

    num_utts: int = 0
    num_speakers: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per fact, e.g. ``12 utterances, 3 speakers`` and ``skipped 1 (empty audio)``."""
        lines = [f"{self.num_utts} utterances, {self.num_speakers} speakers"]
        for reason, paths in sorted(self.skipped.items()):
            lines.append(f"skipped {len(paths)} ({reason}), e.g. {paths[0]}")
        return "\n".join(lines)


def safe_name(name: str) -> str:
    """A Kaldi-safe id part: whitespace runs become ``_``."""
    return _UNSAFE.sub("_", name.strip())


def utterance_id(speaker: str, relpath: str | os.PathLike) -> str:
    """``speaker-part1-part2-stem`` from a path below the speaker (a leading speaker folder dropped)."""
    parts = list(Path(relpath).with_suffix("").parts)
    if len(parts) > 1 and parts[0] == speaker:
        parts = parts[1:]
    return "-".join(safe_name(p) for p in [speaker, *parts])


def scan_tree(root: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Utterance]:
    """Every audio file under ``<root>/<speaker>/``, as ``(utt, speaker, path)`` sorted by path.

    Raises:
        ValueError: naming the root when it is not a folder, or a file lying directly in it.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    exts = tuple(e.lower() for e in extensions)
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.lower().endswith(exts) or name.startswith("."):
                continue  # not audio, or a temporary file of an interrupted conversion
            path = Path(dirpath) / name
            rel = path.relative_to(root)
            if len(rel.parts) < 2:
                raise ValueError(f"{path}: audio file outside a speaker folder (expected <root>/<speaker>/...)")
            speaker = safe_name(rel.parts[0])
            out.append((utterance_id(speaker, Path(*rel.parts[1:])), speaker, path))
    return out


def read_table(path: str | os.PathLike) -> list[Utterance]:
    """Rows ``path,speaker`` of a CSV (or, for ``.tsv``, tab-separated) file as utterances.

    Raises:
        ValueError: naming ``path:line`` for a row without two non-empty fields.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: table does not exist")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter=delimiter), start=1):
            row = [c.strip() for c in row]
            if lineno == 1 and [c.lower() for c in row[:2]] == ["path", "speaker"]:
                continue  # header
            if len(row) != 2 or not all(row):
                raise ValueError(f"{path}:{lineno}: expected 'path{delimiter}speaker', got {row!r}")
            wav = Path(row[0]) if Path(row[0]).is_absolute() else path.parent / row[0]
            rows.append((wav, safe_name(row[1])))
    if not rows:
        raise ValueError(f"{path}: table holds no rows")
    common = Path(os.path.commonpath([str(p.parent.absolute()) for p, _ in rows]))
    return [(utterance_id(spk, p.absolute().relative_to(common)), spk, p) for p, spk in rows]


def check_unique(utts: Iterable[Utterance]) -> None:
    """Raise a ValueError naming both files when two utterances share an id."""
    seen: dict[str, Path] = {}
    for utt, _, path in utts:
        if utt in seen:
            raise ValueError(f"{path}: utterance id {utt!r} is also that of {seen[utt]}; rename one")
        seen[utt] = path


def write_lists(out_dir: str | os.PathLike, utts: Sequence[Utterance]) -> None:
    """Write ``wav.scp`` (absolute paths), ``utt2spk`` and ``spk2utt`` into ``out_dir``."""
    out_dir = Path(out_dir)
    check_unique(utts)
    utt2spk = {utt: spk for utt, spk, _ in utts}
    write_kaldi_map(out_dir / "wav.scp", {utt: str(Path(p).absolute()) for utt, _, p in utts})
    write_kaldi_map(out_dir / "utt2spk", utt2spk)
    write_kaldi_map(out_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))


def prepare_data_dir(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    check_headers: bool = True,
) -> PrepareReport:
    """A folder tree or a ``.csv``/``.tsv`` table → a Kaldi data directory in ``out_dir``.

    Args:
        source: the corpus root (``<root>/<speaker>/**``) or a table of ``path,speaker`` rows.
        out_dir: where ``wav.scp``, ``utt2spk`` and ``spk2utt`` are written.
        extensions: audio file endings searched for in a tree.
        check_headers: open every file's header; unreadable or empty files are left out and
            counted in the report (decoding every sample is ``xvector-validate``'s job).

    Raises:
        ValueError: naming the file or line for a bad table row, a missing file listed in a
            table, a file outside a speaker folder, two files with one id, or nothing left.
    """
    source = Path(source)
    utts = read_table(source) if source.is_file() else scan_tree(source, extensions)
    report = PrepareReport()
    kept = []
    for utt in utts:
        path = utt[2]
        if not path.is_file():
            raise ValueError(f"{source}: listed audio file for {utt[0]!r} does not exist: {path}")
        if check_headers:
            try:
                n, _ = audio_info(path)
            except ValueError:
                report.skipped.setdefault("unreadable audio", []).append(str(path))
                continue
            if n == 0:
                report.skipped.setdefault("empty audio", []).append(str(path))
                continue
        kept.append(utt)
    if not kept:
        raise ValueError(f"{source}: no usable audio files ({', '.join(extensions)})")
    write_lists(out_dir, kept)
    report.num_utts, report.num_speakers = len(kept), len({spk for _, spk, _ in kept})
    return report


def split_speakers(data_dir: str | os.PathLike, out_dirs: dict[str, int], seed: int = 0) -> dict[str, list[str]]:
    """Move whole speakers of ``data_dir`` into new data directories (e.g. a held-out dev set).

    Args:
        data_dir: a prepared directory; it keeps the speakers not moved.
        out_dirs: ``{folder: number of speakers}``; speakers are drawn at random (``seed``)
            among those with at least two utterances, so trials can be made for them.
        seed: RNG seed (the split is deterministic).

    Returns:
        ``{folder: speakers moved there}``.

    Raises:
        ValueError: naming ``data_dir`` when too few speakers with two utterances exist.
    """
    data = load_data_dir(data_dir, check_exists=False)
    counts = Counter(data.utt2spk.values())
    eligible = [s for s in data.speakers if counts[s] >= 2]
    wanted = sum(out_dirs.values())
    if wanted >= len(data.speakers) or wanted > len(eligible):
        raise ValueError(
            f"{data_dir}: cannot hold out {wanted} speakers: {len(data.speakers)} speakers, "
            f"{len(eligible)} with two or more utterances"
        )
    order = [eligible[i] for i in np.random.default_rng(seed).permutation(len(eligible))]
    moved, start = {}, 0
    for folder, n in out_dirs.items():
        moved[str(folder)] = sorted(order[start:start + n])
        start += n
    taken = {s for spks in moved.values() for s in spks}
    as_utts = lambda keep: [(u, s, data.wavs[u]) for u, s in data.utt2spk.items() if keep(s)]  # noqa: E731
    for folder, spks in moved.items():
        write_lists(folder, as_utts(set(spks).__contains__))
    write_lists(data_dir, as_utts(lambda s: s not in taken))
    return moved
