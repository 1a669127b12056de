#!/usr/bin/env python
"""Markdown table of a robustness run: systems × back ends, EER % per corpus and condition.

    python recipes/robust/local/results_table.py --exp exp/robust --split test tts formant

Reads ``<exp>/<corpus>/{xvector/eval,speechbrain/eval,speechbrain_aug/eval,mfcc}/<split>.json`` (those present) as
written by ``evaluate.py``, and ``train_seconds`` beside them for the training time. The
harsher-channel column is there when some system was scored on that condition.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xvector.atomic import atomic_write_text

SYSTEMS = (("xvector", "xvector/eval"), ("SpeechBrain x-vector", "speechbrain/eval"),
           ("SpeechBrain x-vector + its augmentation", "speechbrain_aug/eval"), ("mean MFCC, no training", "mfcc"))
# a column per condition some system was scored on (evaluate.py scores "channel" where it exists)
CONDITIONS = (("clean", "clean"), ("same-language", "same_lang"), ("noisy", "noisy"), ("harsher channel", "channel"))
BACKENDS = (("cosine", "cosine (training mean subtracted)"), ("asnorm", "cosine + AS-norm"), ("plda", "LDA + PLDA"),
            ("plda_aug", "LDA + PLDA, trained on clean + augmented copies"))


def table(exp: Path, split: str, corpora: list[str]) -> str:
    runs = {}  # system -> (its folder, corpus -> results), for the systems with any results
    for system, sub in SYSTEMS:
        found = {c: exp / c / sub / f"{split}.json" for c in corpora}
        if any(p.is_file() for p in found.values()):
            runs[system] = sub, {c: json.loads(p.read_text())["results"] if p.is_file() else {}
                                 for c, p in found.items()}
    conditions = [(name, cond) for name, cond in CONDITIONS if any(
        key.endswith(f"/{cond}") for _, res in runs.values() for r in res.values() for key in r)]
    head = "| system | back end | train time | " + " | ".join(
        f"{c}: {name}" for c in corpora for name, _ in conditions) + " |"
    lines = [head, "|" + "---|" * (3 + len(corpora) * len(conditions))]
    for system, (sub, res) in runs.items():
        times = []
        for c in corpora:
            t = exp / c / Path(sub).parts[0] / "train_seconds"
            times.append(f"{int(t.read_text()) / 60:.1f}" if t.is_file() and sub != "mfcc" else "–")
        for key, backend in BACKENDS:
            if not any(f"{key}/{cond}" in res[c] for c in corpora for _, cond in conditions):
                continue
            cells = [f"{100 * res[c][f'{key}/{cond}']['eer']:.2f}" if f"{key}/{cond}" in res[c] else "–"
                     for c in corpora for _, cond in conditions]
            lines.append(f"| {system} | {backend} | {' / '.join(times)} min | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpora", nargs="+")
    p.add_argument("--exp", required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--out")
    args = p.parse_args()
    text = f"EER % on the {args.split} split\n\n" + table(Path(args.exp), args.split, args.corpora)
    if args.out:
        atomic_write_text(args.out, text)
    print(text, end="")


if __name__ == "__main__":
    main()
