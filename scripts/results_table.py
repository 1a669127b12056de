#!/usr/bin/env python
"""Markdown results table from ``metrics.json`` files written by ``xvector-score``.

    python scripts/results_table.py --out exp/results.md "x-vector=exp/x/scores/metrics.json" "baseline=..."

Each row: system name, EER %, minDCF at p_target 0.01 and 0.05, trial count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xvector.data.lists import atomic_write_text


def table(rows: list[tuple[str, dict]]) -> str:
    lines = ["| system | EER (%) | minDCF (p=0.01) | minDCF (p=0.05) | trials |", "|---|---|---|---|---|"]
    for name, m in rows:
        lines.append(
            f"| {name} | {100 * m['eer']:.2f} | {m['min_dcf_0.01']:.4f} | {m['min_dcf_0.05']:.4f} | {m['num_trials']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("systems", nargs="+", help="NAME=path/to/metrics.json")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    rows = []
    for item in args.systems:
        name, _, path = item.partition("=")
        rows.append((name, json.loads(Path(path).read_text())))
    text = table(rows)
    if args.out:
        atomic_write_text(args.out, text)
    print(text, end="")


if __name__ == "__main__":
    main()
