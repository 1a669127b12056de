"""DET curves: miss rate against false-alarm rate on normal-deviate axes, saved as PNG.

On probit (normal-deviate) axes the DET of Gaussian target and nontarget scores is a straight
line, so systems compare at a glance across the whole range of operating points (Martin et al.
1997). The curve comes from :func:`xvector.metrics.error_rates`; the EER and minDCF operating
points are marked on it.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.random(2000) < 0.3
    >>> scores = rng.standard_normal(2000) + 2 * labels
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "det.png"
    >>> plot_det(path, {"system": (scores, labels)}, p_target=0.01)
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from scipy.special import ndtri

from xvector.atomic import atomic_output
from xvector.metrics import _eer_from_curve, _min_dcf_from_curve, error_rates

# Axis ticks in percent, as NIST's DET plots; rates are clipped into [0.01 %, 99.99 %] so the
# probit of 0 or 1 (±inf) stays on the plot.
_TICKS = [0.01, 0.1, 1, 2, 5, 10, 20, 40, 60, 80, 95, 99]
_CLIP = 1e-4


def det_points(fpr: np.ndarray, fnr: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Probit coordinates of a (possibly million-point) curve, thinned to ``<= ~2 max_points``.

    Points are kept where either rate crosses a step of a uniform grid in probit space, so
    the plotted staircase keeps its shape wherever it moves, at any trial count.
    """
    x = ndtri(np.clip(fpr, _CLIP, 1 - _CLIP))
    y = ndtri(np.clip(fnr, _CLIP, 1 - _CLIP))
    span = ndtri(1 - _CLIP) - ndtri(_CLIP)
    step = span / max_points
    keep = np.zeros(len(x), dtype=bool)
    for z in (x, y):
        cell = np.floor((z - z.min()) / step)
        keep[np.flatnonzero(np.diff(cell)) + 1] = True
    keep[[0, -1]] = True
    return x[keep], y[keep]


def plot_det(
    path: str | os.PathLike,
    systems: Mapping[str, tuple[np.ndarray, np.ndarray]],
    p_target: float = 0.01,
    title: str = "DET",
) -> None:
    """Write a DET plot of one or more systems to ``path`` (PNG, atomically).

    Args:
        path: output file.
        systems: name → ``(scores (N,), labels (N,))``; labels bool or 0/1, 1 = target.
        p_target: prior of the minDCF point marked on each curve (C_miss = C_fa = 1).
        title: plot title.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5 + 0.2 * len(systems)), dpi=110)
    try:
        for name, (scores, labels) in systems.items():
            fpr, fnr, thresholds = error_rates(scores, labels)
            x, y = det_points(fpr, fnr)
            eer, _ = _eer_from_curve(fpr, fnr, thresholds)
            dcf, dcf_threshold = _min_dcf_from_curve(fpr, fnr, thresholds, p_target, 1.0, 1.0)
            k = int(np.flatnonzero(thresholds == dcf_threshold)[0])
            (line,) = ax.plot(x, y, label=f"{name} (EER {100 * eer:.2f}%, minDCF {dcf:.3f})")
            e = ndtri(np.clip(eer, _CLIP, 1 - _CLIP))
            ax.plot([e], [e], "o", color=line.get_color(), mfc="none", ms=8)
            ax.plot(
                [ndtri(np.clip(fpr[k], _CLIP, 1 - _CLIP))], [ndtri(np.clip(fnr[k], _CLIP, 1 - _CLIP))],
                "s", color=line.get_color(), ms=6,
            )
        ticks = ndtri(np.array(_TICKS) / 100)
        labels_txt = [f"{t:g}" for t in _TICKS]
        ax.set_xticks(ticks, labels_txt)
        ax.set_yticks(ticks, labels_txt)
        lim = (ndtri(0.5 * _TICKS[0] / 100), ndtri(0.995))
        ax.set_xlim(*lim)
        ax.set_ylim(*lim)
        ax.plot(lim, lim, ":", color="0.6", lw=0.8)  # the EER diagonal
        ax.set_xlabel("false-alarm rate (%)")
        ax.set_ylabel("miss rate (%)")
        ax.set_title(f"{title}  (o EER, \u25a0 minDCF p={p_target:g})", fontsize=9)
        ax.grid(True, lw=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below the axes
        fig.tight_layout()
        with atomic_output(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
