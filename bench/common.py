"""Shared pieces of the benchmarks: timing, the machine line, result rows and the markdown file."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float, float]:
    """``(median, min, max)`` seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    import numpy as np
    import torch

    malloc = "set" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "unset"
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
        f"MALLOC_* tuning {malloc}"
    )


@dataclass
class Row:
    """One figure: the project's value and, where the peer has one, the peer's (same input).

    Values are rates (higher is better: ``unit`` like "audio s/s") or times (lower is better,
    ``unit`` "ms"); ``ratio`` is always "how many times better the project is".
    """

    figure: str
    unit: str
    ours: tuple[float, float, float]  # (median, min, max)
    peer: tuple[float, float, float] | None = None
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        return self.unit != "ms"

    @property
    def ratio(self) -> float | None:
        if self.peer is None:
            return None
        a, b = self.ours[0], self.peer[0]
        return a / b if self.higher_is_better else b / a


def rate(seconds: tuple[float, float, float], amount: float) -> tuple[float, float, float]:
    """Turn ``(median, min, max)`` seconds into ``amount / s`` (min time → max rate)."""
    med, lo, hi = seconds
    return amount / med, amount / hi, amount / lo


def ms(seconds: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(1e3 * s for s in seconds)  # type: ignore[return-value]


def fmt(v: tuple[float, float, float] | None) -> str:
    if v is None:
        return "–"
    med, lo, hi = v
    digits = 1 if med >= 10 else 3 if med < 1 else 2
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def markdown(title: str, command: str, rows: list[Row], notes: list[str]) -> str:
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_line()}",
        "",
        "Each value: median (min–max) of repeated runs after warm-up. Ratio = how many times "
        "better xvector is than SpeechBrain on the same input in the same run (> 1: xvector ahead).",
        "",
        "| figure | unit | xvector | SpeechBrain 1.1.2 | ratio | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "–" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(f"| {r.figure} | {r.unit} | {fmt(r.ours)} | {fmt(r.peer)} | {ratio} | {r.note} |")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
