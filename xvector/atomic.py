"""Atomic output files: write to a temporary name in the same folder, then rename.

A crash or an exception mid-write never leaves a half-written file under the final name, and
an existing file survives a failed rewrite.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> atomic_write_text(path, "hello\\n")
    >>> path.read_text()
    'hello\\n'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: str | os.PathLike, name_glob: str = "*", suffix: str = ".tmp") -> list[Path]:
    """Delete the temporaries that :func:`atomic_output` left in ``folder`` when its process died
    mid-write, for targets whose names match ``name_glob``.

    A SIGKILL (or a power cut) between creating the temporary and renaming it leaves a hidden
    ``.<name>.<random><suffix>`` file beside the intact target. Call this only when no other
    process is writing into ``folder``: a live writer's temporary looks the same.

    Returns:
        The paths removed (none when ``folder`` does not exist).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    # atomic_output's names: mkstemp(prefix=".<target name>.", suffix=suffix)
    stale = sorted(p for p in folder.glob(f".{name_glob}.*{suffix}") if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual default
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
