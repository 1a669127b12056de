#!/usr/bin/env python
"""Plot a training run's curves: train/loss, train/acc and val/eer against optimizer steps.

    python scripts/plot_metrics.py exp/x/csv/metrics.csv --out exp/x/metrics.png

Reads the CSV logger's ``metrics.csv`` (sparse rows: each holds the keys logged at one step) and
writes a PNG with one panel per metric (matplotlib's Agg back-end: no display needed), atomically.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from xvector.atomic import atomic_output  # noqa: E402

METRICS = ("train/loss", "train/acc", "val/eer")


def read_metrics(path: str | os.PathLike, keys: tuple[str, ...] = METRICS) -> dict[str, list[tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` for each of ``keys`` found in a Lightning ``metrics.csv``.

    Raises:
        ValueError: naming the file when it lacks a ``step`` column.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "step" not in reader.fieldnames:
            raise ValueError(f"{path}: not a Lightning CSV metrics file (no 'step' column)")
        series: dict[str, list[tuple[int, float]]] = {k: [] for k in keys if k in reader.fieldnames}
        for line, row in enumerate(reader, start=2):
            for key, values in series.items():
                if row.get(key):
                    try:
                        values.append((int(float(row["step"])), float(row[key])))
                    except ValueError as err:
                        raise ValueError(f"{path}:{line}: bad {key} or step value ({err})") from err
    return {k: v for k, v in series.items() if v}


def plot_metrics(series: dict[str, list[tuple[int, float]]], out: str | os.PathLike, title: str = "") -> None:
    """Write one panel per metric of ``series`` (steps on x) to the PNG ``out``.

    Raises:
        ValueError: when ``series`` holds no ``train/loss`` values.
    """
    if not series.get("train/loss"):
        raise ValueError(f"{out}: no train/loss values to plot")
    keys = [k for k in METRICS if series.get(k)]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.4 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        steps, values = zip(*series[key])
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if key == "val/eer":
            best = min(range(len(values)), key=values.__getitem__)
            ax.set_title(f"best val/eer {values[best]:.4f} at step {steps[best]}", fontsize=9)
        elif key == "train/loss" and all(v > 0 and math.isfinite(v) for v in values):
            ax.set_yscale("log")
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics_csv", help="a run's csv/metrics.csv")
    parser.add_argument("--out", help="PNG to write (default: metrics.png beside the CSV)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.metrics_csv).with_name("metrics.png")
    plot_metrics(read_metrics(args.metrics_csv), out, title=str(Path(args.metrics_csv).parent.parent.name))


if __name__ == "__main__":
    main()
