"""How long ``recipes/custom`` trains a corpus: its epochs and time budget, from its size.

A corpus of one's own may hold 24 speakers or thousands. The recipe trains a number of 2 s
*crops* in all: ``crops`` for a corpus of up to ``crops_utts`` utterances (60000 for 480: 125
epochs), and above that ``crops * sqrt(utterances / crops_utts)``, so a larger corpus gets fewer
epochs but more crops in all; ``epochs = ceil(crops / utterances)``, at least ``min_epochs`` and
at most ``max_epochs``. The growth was measured on the robustness benchmark's larger corpora
(``recipes/robust``, dev EER clean / same-accent / noisy, cosine): at 240 speakers x 10
utterances, 50 epochs instead of the flat 60000 crops' 25 took the formant voices from
2.90 / 7.40 / 16.90 to 2.40 / 4.90 / 13.10 % (the rule gives 56); at 1000 speakers x 8, 10 / 15 /
30 epochs gave 4.70 / 4.50 / 14.50, 2.40 / 2.40 / 11.70 and 1.10 / 1.70 / 9.10 % (the rule gives
31). A corpus of a million utterances gets the floor of 10 epochs.

The time budget (:class:`xvector.training.time_budget.TimeBudget`) keeps the small-corpus
recipe within its promise, at most ~12 minutes of training on 2 cores, on a slower or busier
machine: if the epochs would not fit, fewer run, with the learning-rate schedule shortened to
match. That trade is made where the schedule is ``crops`` (up to ``crops_utts`` utterances),
about the budget on the machine the defaults were measured on. A larger corpus is given more
crops than that on purpose, and cutting them is what hurt it (the 1000-speaker corpus: the
10 minutes fitted 8 epochs, 5.10 / 5.40 / 18.50 %), so the default budget, ``"auto"``, is
``auto_minutes`` up to ``crops_utts`` utterances and none above; a number sets a budget for any
size, and 0 or ``None`` none.

Example:
    >>> corpus_schedule(480)   # 24 speakers x 20 utterances: 125 epochs, in the budget
    CorpusSchedule(epochs=125, crops=60000, budget_min=10.0, reason='at most 10 min of training (--budget_min)')
    >>> corpus_schedule(2400)  # 240 x 10: 60000 * sqrt(5) crops
    CorpusSchedule(epochs=56, crops=134164, budget_min=None, reason='no time budget: 2400 utterances, more than --crops_utts 480')
    >>> corpus_schedule(8000, budget_min=20)
    CorpusSchedule(epochs=31, crops=244949, budget_min=20.0, reason='at most 20 min of training (--budget_min)')
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CorpusSchedule:
    """The epochs to train, the crops they are meant to hold, and the time budget with the reason.

    ``crops`` is the total the epochs come from (``crops * sqrt(n_utts / crops_utts)`` above
    ``crops_utts``, rounded), before the epochs are rounded up and clamped; ``budget_min`` is in
    minutes, ``None`` for none.
    """

    epochs: int
    crops: int
    budget_min: float | None
    reason: str


def _minutes(value: float | str | None) -> float | None:
    """The minutes of a budget given as a number (or its text); ``None`` for 0 or ``None``."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"budget_min: 'auto', 0 or a number of minutes, got {value!r}") from None
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError(f"budget_min: 'auto', 0 or a positive number of minutes, got {value!r}")
    return float(value) if value else None


def corpus_schedule(
    n_utts: int,
    *,
    crops: int = 60000,
    crops_utts: int = 480,
    min_epochs: int = 10,
    max_epochs: int = 200,
    budget_min: float | str | None = "auto",
    auto_minutes: float = 10.0,
) -> CorpusSchedule:
    """The epochs and time budget of a training set of ``n_utts`` utterances.

    Args:
        n_utts: training utterances.
        crops: training crops in all for a corpus of up to ``crops_utts`` utterances; a larger
            one gets ``crops * sqrt(n_utts / crops_utts)``. ``epochs = ceil(crops / n_utts)``,
            clamped to ``[min_epochs, max_epochs]``.
        crops_utts: the corpus size ``crops`` is meant for.
        min_epochs, max_epochs: the clamp.
        budget_min: ``"auto"`` (``auto_minutes`` up to ``crops_utts`` utterances, none above), a
            number of minutes (any size), or 0 / ``None`` (no budget).
        auto_minutes: the budget ``"auto"`` gives a corpus of up to ``crops_utts`` utterances.

    Raises:
        ValueError: a count below 1, ``min_epochs > max_epochs`` or a bad ``budget_min``.
    """
    for name, v in (("n_utts", n_utts), ("crops", crops), ("crops_utts", crops_utts), ("min_epochs", min_epochs),
                    ("max_epochs", max_epochs)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if min_epochs > max_epochs:
        raise ValueError(f"min_epochs ({min_epochs}) > max_epochs ({max_epochs})")
    total = crops * math.sqrt(max(1.0, n_utts / crops_utts))
    epochs = min(max(math.ceil(total / n_utts), min_epochs), max_epochs)
    crops_in_all = round(total)
    if isinstance(budget_min, str) and budget_min.strip().lower() == "auto":
        if n_utts > crops_utts:
            why = f"no time budget: {n_utts} utterances, more than --crops_utts {crops_utts}"
            return CorpusSchedule(epochs, crops_in_all, None, why)
        budget_min = auto_minutes
    budget = _minutes(budget_min)
    if budget is None:
        return CorpusSchedule(epochs, crops_in_all, None, "no time budget (--budget_min 0)")
    return CorpusSchedule(epochs, crops_in_all, budget, f"at most {budget:g} min of training (--budget_min)")


def main(argv: list[str] | None = None) -> int:
    """Print ``<epochs> <crops in all> <budget minutes, 0 for none> <reason>`` on one line (for ``run.sh``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--utts", type=int, required=True, help="training utterances")
    # the others default to corpus_schedule's own defaults
    for flag in ("--crops", "--crops-utts", "--min-epochs", "--max-epochs"):
        p.add_argument(flag, type=int, default=argparse.SUPPRESS)
    p.add_argument("--budget-min", default=argparse.SUPPRESS, help="'auto' (default), 0 (none) or minutes")
    kwargs = vars(p.parse_args(argv))
    try:
        s = corpus_schedule(kwargs.pop("utts"), **kwargs)
    except ValueError as e:
        p.error(str(e))
    print(s.epochs, s.crops, f"{s.budget_min:g}" if s.budget_min else 0, s.reason)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
