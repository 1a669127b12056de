"""xvector: speaker-verification embeddings (x-vector / TDNN) with Lightning and Hydra."""

from pathlib import Path

__version__ = "0.1.0"

#: The Hydra configs of the repository (``configs/`` beside the package), used by the CLIs.
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")

__all__ = ["CONFIG_DIR", "SpeakerModel", "Verification", "__version__", "load_model"]


def __getattr__(name: str):
    # Lazy: ``import xvector`` stays light (no torch) for the CLIs' config lookup; the API
    # loads on first use of ``xvector.load_model``.
    if name in ("load_model", "SpeakerModel", "Verification"):
        from xvector.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'xvector' has no attribute {name!r}")
