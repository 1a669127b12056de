#!/usr/bin/env python
"""Benchmark of scoring and metrics: 1M trials, beside scikit-learn (and SpeechBrain if installed).

    python bench/bench_scoring.py                 # writes bench/RESULTS_scoring.md
    python bench/bench_scoring.py --trials 100000 --out /tmp/r.md

Figures (median of ``--repeats`` runs after one warm-up, with min and max):
- ``verification_metrics`` (EER + minDCF at three priors, one sort) and ``compute_eer`` +
  ``compute_min_dcf`` on N random trials, against ``sklearn.metrics.roc_curve`` alone on the
  same scores; the EERs must agree (checked, printed);
- cosine scoring of N trials drawn from a table of 20,000 embeddings of dim 256;
- SpeechBrain's ``EER`` at 10k/30k/100k trials when ``speechbrain`` is importable (its cost
  grows as N², so larger sizes are not run).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xvector.atomic import atomic_write_text  # noqa: E402
from xvector.data.lists import Trial  # noqa: E402
from xvector.metrics import compute_eer, compute_min_dcf, verification_metrics  # noqa: E402
from xvector.scoring.cosine import score_trials  # noqa: E402


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, float, object]:
    """``(median, min, max)`` seconds over ``repeats`` runs after one warm-up, and the result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times), result


def sklearn_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr
    i = int(np.argmax(fnr <= fpr))  # first point past the crossing; interpolate as xvector does
    x0, y0, x1, y1 = fpr[i - 1], fnr[i - 1], fpr[i], fnr[i]
    t = (y0 - x0) / ((y0 - x0) - (y1 - x1))
    return float(x0 + t * (x1 - x0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_scoring.md")))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.trials
    labels = rng.random(n) < 0.1
    # Rounded scores make ties, as real score files (6 decimals) have.
    scores = np.round(rng.standard_normal(n) + 2.5 * labels, 4)

    rows = []

    def add(name: str, fn: Callable[[], object], note: str = "") -> object:
        med, lo, hi, result = timed(fn, args.repeats)
        rows.append((name, med, lo, hi, note))
        print(f"{name:58s} {med * 1e3:9.1f} ms  (min {lo * 1e3:.1f}, max {hi * 1e3:.1f}) {note}", flush=True)
        return result

    m = add(f"xvector verification_metrics, {n:,} trials", lambda: verification_metrics(scores, labels))
    add(f"xvector compute_eer + compute_min_dcf, {n:,} trials",
        lambda: (compute_eer(scores, labels), compute_min_dcf(scores, labels)))
    ref = add(f"sklearn roc_curve (+ EER interpolation), {n:,} trials", lambda: sklearn_eer(scores, labels))
    agree = abs(m["eer"] - ref) < 1e-12
    print(f"EER xvector {m['eer']:.10f}  sklearn {ref:.10f}  identical: {agree}")

    table = rng.standard_normal((20000, 256)).astype(np.float32)
    ids = [f"u{i:05d}" for i in range(len(table))]
    pairs = rng.integers(0, len(table), size=(n, 2))
    trials = [Trial(ids[a], ids[b], bool(t)) for (a, b), t in zip(pairs, labels)]
    mean = table.mean(0)
    add(f"xvector cosine score_trials, {n:,} trials, 20k x 256 table",
        lambda: score_trials(ids, table, trials, mean=mean))

    peer = "speechbrain not installed: peer skipped"
    try:
        import torch
        from speechbrain.utils.metric_stats import EER as sb_eer

        peer = "speechbrain installed"
        for k in (10_000, 30_000, 100_000):
            s, lab = torch.from_numpy(scores[:k]), labels[:k]
            ours = add(f"xvector compute_eer, {k:,} trials", lambda: compute_eer(scores[:k], labels[:k]))
            theirs = add(f"speechbrain EER, {k:,} trials", lambda: sb_eer(s[lab], s[~lab]))
            rows.append((f"ratio speechbrain / xvector at {k:,}", rows[-1][1] / rows[-2][1], 0, 0, ""))
            del ours, theirs
    except ImportError:
        pass
    print(peer)

    import torch

    lines = [
        "# Scoring benchmark",
        "",
        f"Command: `python bench/bench_scoring.py --trials {n} --repeats {args.repeats}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)  ",
        f"EER xvector {m['eer']:.10f} vs sklearn {ref:.10f}: identical = {agree}. {peer}.",
        "",
        "| figure | median (ms) | min (ms) | max (ms) |",
        "|---|---|---|---|",
    ]
    for name, med, lo, hi, _ in rows:
        if name.startswith("ratio"):
            lines.append(f"| {name} | {med:.1f}x | | |")
        else:
            lines.append(f"| {name} | {med * 1e3:.1f} | {lo * 1e3:.1f} | {hi * 1e3:.1f} |")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
