"""The operating point of a model directory: calibration, threshold, and the scores they belong to.

``calibration.json`` (``{"scale": a, "offset": b}``: LLR = a * score + b) and ``threshold.json``
(``{"threshold": t, "on": "score"|"llr", ...}``) come from an ``xvector-score`` run. They are only
right for the scores they were fitted / chosen on, so ``xvector-score`` records a
``scored_with`` block (back end, norm, mean file and the SHA-256 of its mean) and
:func:`check_scored_with` compares it with what the model directory applies: plain cosine after
its stored mean. A threshold chosen on scores without a mean, applied after one, flips
decisions without a word; that is refused.

Example:
    >>> check_calibration({"scale": 8.0, "offset": -3})
    {'scale': 8.0, 'offset': -3.0}
    >>> used = {"backend": COSINE_BACKEND, "norm": None, "mean_embeddings": None, "mean_sha256": None}
    >>> check_scored_with({"threshold": 0.5, SCORED_WITH: used}, "threshold.json", None, None)  # no mean either
    >>> import numpy as np
    >>> check_scored_with({"threshold": 0.5, SCORED_WITH: used}, "threshold.json", np.ones(4), "train.npz")
    Traceback (most recent call last):
    ...
    ValueError: threshold.json: made on scores without a mean, but this model subtracts the mean of train.npz, ...
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from xvector.embeddings import mean_fingerprint

log = logging.getLogger(__name__)

#: Key of the block ``xvector-score`` adds to calibration.json / threshold.json: which back end,
#: norm and mean produced the scores the calibration was fitted / the threshold chosen on.
SCORED_WITH = "scored_with"
#: The only back end a model directory applies (``SpeakerModel.score``): cosine after the mean.
COSINE_BACKEND = "xvector.scoring.cosine.score_trials"


def check_calibration(cal: Mapping, source: str = "calibration") -> dict[str, float]:
    """Validate ``{"scale": a, "offset": b}`` (finite numbers, a > 0) and return it as floats."""
    try:
        out = {"scale": float(cal["scale"]), "offset": float(cal["offset"])}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: need numeric 'scale' and 'offset' ({err})") from err
    if not all(map(math.isfinite, out.values())) or out["scale"] <= 0:
        raise ValueError(f"{source}: scale must be finite and > 0 and offset finite, got {out}")
    return out


def check_threshold(thr: Mapping, calibrated: bool, source: str = "threshold") -> dict[str, Any]:
    """Validate a ``threshold.json`` dict: a finite ``threshold`` on ``"score"`` or ``"llr"``."""
    out = dict(thr)
    try:
        out["threshold"] = float(out["threshold"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: need a numeric 'threshold' ({err})") from err
    out.setdefault("on", "score")
    if out["on"] not in ("score", "llr") or not math.isfinite(out["threshold"]):
        raise ValueError(f"{source}: 'on' must be 'score' or 'llr' and the threshold finite, got {thr}")
    if out["on"] == "llr" and not calibrated:
        raise ValueError(f"{source}: threshold is on LLRs but no calibration was given")
    return out


def check_scored_with(
    raw: Mapping, source: str, mean: np.ndarray | None, mean_source: str | None, warn_missing: bool = True
) -> None:
    """Refuse a calibration / threshold made on other scores than the model directory gives.

    A model directory scores plain cosine after subtracting its stored mean, so an operating
    point chosen on scores with another mean (or none), another back end or a score norm would
    be applied to scores it was never meant for, and decisions flip without a word.
    ``xvector-score`` records what it used in a ``scored_with`` block; files without one (written
    by hand or before it existed) are accepted, with a warning when ``warn_missing``.

    Raises:
        ValueError: naming ``source`` and both means (or the back end) when they differ.
    """
    used = raw.get(SCORED_WITH)
    if used is None:
        if not warn_missing:
            return
        log.warning("%s: does not say which back end and mean its scores were made with; this model scores cosine "
                    "%s, check that those scores did too", source,
                    f"after the mean of {mean_source}" if mean is not None else "without a mean")
        return
    if not isinstance(used, Mapping):
        raise ValueError(f"{source}: '{SCORED_WITH}' must be a JSON object, got {used!r}")
    backend, norm = used.get("backend"), used.get("norm")
    if backend != COSINE_BACKEND or norm:
        made = f"backend {backend}" + (f" with norm {norm}" if norm else "")
        raise ValueError(
            f"{source}: made on scores of {made}, but a model directory scores plain cosine (after its mean), "
            "so this operating point does not apply; take it from a cosine xvector-score run without norm"
        )
    scored_mean = used.get("mean_embeddings")
    if used.get("mean_sha256") == mean_fingerprint(mean):
        return
    if mean is None:
        raise ValueError(
            f"{source}: made on scores with mean_embeddings={scored_mean} subtracted, but this model stores no mean; "
            f"pass --mean-embeddings {scored_mean}"
        )
    if scored_mean is None:
        raise ValueError(
            f"{source}: made on scores without a mean, but this model subtracts the mean of {mean_source}, so the "
            f"operating point belongs to other scores; rescore with mean_embeddings={mean_source} (or export without "
            "--mean-embeddings)"
        )
    raise ValueError(
        f"{source}: made on scores with mean_embeddings={scored_mean}, whose mean differs from that of {mean_source}; "
        f"rescore with mean_embeddings={mean_source} or export with --mean-embeddings {scored_mean}"
    )
