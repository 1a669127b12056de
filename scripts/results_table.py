#!/usr/bin/env python
"""Markdown results table (and a joint DET plot) from ``xvector-score`` output directories.

    python scripts/results_table.py --out exp/results.md --det exp/det.png \
        "x-vector, cosine=exp/x/scores_cosine" "baseline=exp/baseline/scores_cosine"

Each row: system name, EER %, minDCF at p_target 0.01 and 0.05, actDCF(0.01) and Cllr where the
scores are LLRs ("–" otherwise; marked "uncal." when they are a back end's LLRs that no
calibration has fitted, e.g. PLDA's, whose scale is not trustworthy), minCllr, trial count. A path may also name a
``metrics.json`` file directly. ``--det`` draws every system's curve from its ``scores`` file.
``--identification NAME=dir`` (repeatable) adds a table of ``xvector-identify`` runs: top-1 and
top-5 accuracy, DIR at FPIR 1% and 10%, searches (mated / non-mated), enrolled speakers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from xvector.atomic import atomic_write_text


def _fmt(m: dict, key: str, spec: str = ".4f") -> str:
    if key not in m:
        return "–"
    return format(m[key], spec) + (" (uncal.)" if m.get("calibrated") is False else "")


def table(rows: list[tuple[str, dict]]) -> str:
    """Markdown table of ``(name, metrics)`` rows."""
    lines = [
        "| system | EER (%) | minDCF (p=0.01) | minDCF (p=0.05) | actDCF (p=0.01) | Cllr | minCllr | trials |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {100 * m['eer']:.2f} | {m['min_dcf_0.01']:.4f} | {m['min_dcf_0.05']:.4f} "
            f"| {_fmt(m, 'act_dcf_0.01')} | {_fmt(m, 'cllr', '.3f')} | {_fmt(m, 'min_cllr', '.3f')} "
            f"| {m['num_trials']} |"
        )
    return "\n".join(lines) + "\n"


def identification_table(rows: list[tuple[str, dict]]) -> str:
    """Markdown table of ``(name, xvector-identify metrics)`` rows."""
    pct = lambda m, k: f"{100 * m[k]:.2f}" if k in m else "–"  # noqa: E731
    lines = [
        "| system | top-1 (%) | top-5 (%) | DIR at FPIR 1% (%) | DIR at FPIR 10% (%) | searches (mated / non-mated) | enrolled |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(f"| {name} | {pct(m, 'top1_acc')} | {pct(m, 'top5_acc')} | {pct(m, 'dir_at_fpir_0.01')} "
                     f"| {pct(m, 'dir_at_fpir_0.1')} | {m['num_searches']} ({m['num_mated']} / {m['num_nonmated']}) "
                     f"| {m.get('search', {}).get('speakers', '–')} |")
    return "\n".join(lines) + "\n"


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (N,), labels (N,))`` of an ``xvector-score`` scores file."""
    cols = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return np.array([float(c[2]) for c in cols]), np.array([c[3] == "target" for c in cols])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("systems", nargs="+", help="NAME=score_dir (or NAME=path/to/metrics.json)")
    parser.add_argument("--out", help="also write the table here")
    parser.add_argument("--det", help="write a DET plot of all systems here (PNG)")
    parser.add_argument("--identification", action="append", default=[], help="NAME=xvector-identify output dir")
    args = parser.parse_args()
    rows, curves = [], {}
    for item in args.systems:
        name, _, path = item.partition("=")
        score_dir = Path(path).parent if path.endswith(".json") else Path(path)
        rows.append((name, json.loads((score_dir / "metrics.json").read_text())))
        if args.det:
            curves[name] = read_scores(score_dir / "scores")
    text = table(rows)
    if args.identification:
        ident = [(n, json.loads((Path(p) / "metrics.json").read_text()))
                 for n, _, p in (item.partition("=") for item in args.identification)]
        text += "\n" + identification_table(ident)
    if args.out:
        atomic_write_text(args.out, text)
    if args.det:
        from xvector.scoring.det import plot_det

        plot_det(args.det, curves, p_target=0.01)
    print(text, end="")


if __name__ == "__main__":
    main()
