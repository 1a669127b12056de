"""xvector: speaker-verification embeddings (x-vector / TDNN) with Lightning and Hydra."""

from pathlib import Path

__version__ = "0.1.0"

#: The Hydra configs of the repository (``configs/`` beside the package), used by the CLIs.
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
