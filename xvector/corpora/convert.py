"""Parallel, resumable audio conversion with ffmpeg (e.g. VoxCeleb2's m4a to 16 kHz mono flac).

Each file is converted to a temporary name beside its target (``.<name>.tmp``, which tree
scans skip) and renamed when ffmpeg succeeds, so an interrupted run leaves no half-written file
under a final name, and a re-run skips every target that already exists. ffmpeg is an external
program (``apt-get install ffmpeg``); the ``ffmpeg`` argument may name another executable that
takes the same arguments.

Example:
    >>> mirror_paths("/in", "/out", ["/in/id1/a/00001.m4a"], ".flac")
    [(PosixPath('/in/id1/a/00001.m4a'), PosixPath('/out/id1/a/00001.flac'))]
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ConvertReport:
    """Counts of one :func:`convert_files` run; ``failed`` holds ``(source, ffmpeg's message)``."""

    converted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        line = f"converted {self.converted}, already done {self.skipped}, failed {len(self.failed)}"
        return line + (f" (first: {self.failed[0][0]}: {self.failed[0][1]})" if self.failed else "")


def mirror_paths(src_root: str | os.PathLike, dst_root: str | os.PathLike, sources: Iterable[str | os.PathLike],
                 suffix: str) -> list[tuple[Path, Path]]:
    """``(source, target)`` pairs: each source's path below ``src_root``, under ``dst_root``, new suffix."""
    src_root, dst_root = Path(src_root), Path(dst_root)
    return [(Path(s), (dst_root / Path(s).relative_to(src_root)).with_suffix(suffix)) for s in sources]


def ffmpeg_command(ffmpeg: str, src: Path, dst: Path, sample_rate: int) -> list[str]:
    """ffmpeg arguments: decode ``src``, write 16-bit mono flac at ``sample_rate`` to ``dst``."""
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
            "-ac", "1", "-ar", str(sample_rate), "-sample_fmt", "s16", "-f", "flac", str(dst)]


def _convert_one(ffmpeg: str, src: Path, dst: Path, sample_rate: int) -> str | None:
    """Convert one file; None on success, else the reason."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.tmp"
    try:
        proc = subprocess.run(ffmpeg_command(ffmpeg, src, tmp, sample_rate), capture_output=True, text=True)
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            return (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        os.replace(tmp, dst)
        return None
    finally:
        tmp.unlink(missing_ok=True)


def convert_files(
    pairs: Sequence[tuple[Path, Path]],
    *,
    jobs: int = 4,
    sample_rate: int = 16000,
    ffmpeg: str = "ffmpeg",
) -> ConvertReport:
    """Convert every ``(source, target)`` pair whose target does not exist yet, ``jobs`` at a time.

    Failures do not stop the run: they are collected in the report (and the run can be repeated).

    Raises:
        ValueError: when ``ffmpeg`` is not an executable on ``PATH`` (or a path to one).
    """
    if shutil.which(ffmpeg) is None:
        raise ValueError(f"{ffmpeg}: executable not found; install it (apt-get install ffmpeg)")
    report = ConvertReport()
    todo = []
    for src, dst in pairs:
        if dst.is_file():
            report.skipped += 1
        else:
            todo.append((src, dst))
    with ThreadPoolExecutor(max(1, jobs)) as pool:  # threads wait on ffmpeg processes
        for (src, _), err in zip(todo, pool.map(lambda p: _convert_one(ffmpeg, p[0], p[1], sample_rate), todo)):
            if err is None:
                report.converted += 1
            else:
                report.failed.append((str(src), err))
    return report
