"""One-line errors for every entry point; the full traceback behind ``XVECTOR_DEBUG=1``.

Expected failures (bad input files, bad overrides, a model that does not fit) are raised as
``ValueError`` (or ``OSError`` from the file system) by the library, naming the file, line or
utterance. A user needs that sentence, not the 20 lines of Hydra's traceback around it, so the
CLIs print ``<prog>: <message>`` on one line to stderr and exit with status 1. Unexpected
errors (a bug) keep their traceback. ``XVECTOR_DEBUG=1`` (or ``--debug`` for the argparse tools)
re-raises expected ones too; for the Hydra tools add ``HYDRA_FULL_ERROR=1`` to see all frames.

Example:
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         with one_line_errors("xvector-demo", debug=False):
    ...             raise ValueError("data/wav.scp:3: audio file for 'u1'\\n does not exist")
    ...     except SystemExit as stop:
    ...         code = stop.code
    >>> code, err.getvalue()
    (1, "xvector-demo: data/wav.scp:3: audio file for 'u1' does not exist\\n")
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEBUG_ENV = "XVECTOR_DEBUG"


def debug_enabled() -> bool:
    """True when ``XVECTOR_DEBUG`` is set to anything but ``""``/``0``/``false``/``no``."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _expected() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [ValueError, OSError]
    try:  # a config value missing (``wav_scp=???``) or misspelt in code paths Hydra does not check
        from omegaconf.errors import OmegaConfBaseException

        kinds.append(OmegaConfBaseException)
    except ImportError:  # pragma: no cover - omegaconf comes with hydra
        pass
    try:  # a ``_target_`` constructor that refused its arguments
        from hydra.errors import HydraException

        kinds.append(HydraException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(kinds)


def one_line(err: BaseException) -> str:
    """The error's message on one line (whitespace runs collapsed), its type when empty."""
    text = " ".join(str(err).split())
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return text or type(err).__name__


@contextmanager
def one_line_errors(prog: str, debug: bool | None = None) -> Iterator[None]:
    """Turn expected exceptions raised in the block into ``prog: message`` and exit status 1.

    Args:
        prog: the command's name, printed first.
        debug: re-raise instead (default: :func:`debug_enabled`).
    """
    try:
        yield
    except _expected() as err:
        if debug_enabled() if debug is None else debug:
            raise
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None
