"""recipes/custom's schedule by corpus size: the crops, the epochs, and where the time budget binds."""

import subprocess
import sys

import pytest

from xvector.training.corpus_schedule import CorpusSchedule, corpus_schedule


@pytest.mark.parametrize(("n_utts", "epochs"), [
    (1, 200), (100, 200), (480, 125),  # up to 480 utterances: 60000 crops in all, at most 200 epochs
    (960, 89), (2400, 56), (8000, 31),  # above: 60000 * sqrt(n / 480) crops, e.g. 134164 for 2400
    (100_000, 10), (1_000_000, 10),  # a floor of 10 epochs
])
def test_epochs_follow_the_crops_growing_with_the_square_root_of_the_corpus(n_utts, epochs):
    assert corpus_schedule(n_utts).epochs == epochs


def test_crops_by_hand():
    # 2400 utterances: 1000 * sqrt(5) = 2236.07 crops over 2400 utterances -> 1 epoch; 24 -> 42
    assert corpus_schedule(2400, crops=1000, crops_utts=480, min_epochs=1).epochs == 1
    assert corpus_schedule(2400, crops=100_000, crops_utts=2400, min_epochs=1).epochs == 42
    assert corpus_schedule(1920, crops=100_000, crops_utts=480, min_epochs=1).epochs == 105  # 200000 / 1920
    assert corpus_schedule(1000, crops=100_000, crops_utts=480, max_epochs=50).epochs == 50


@pytest.mark.parametrize(("n_utts", "crops"), [
    (24, 60000), (480, 60000),  # up to crops_utts: --crops is the total
    (1920, 120000), (2400, 134164), (8000, 244949),  # 60000 * sqrt(4), sqrt(5) = 2.23607, sqrt(16.667) = 4.08248
])
def test_crops_in_all_are_the_total_before_the_epochs_are_rounded_and_clamped(n_utts, crops):
    assert corpus_schedule(n_utts).crops == crops


def test_auto_budget_binds_up_to_the_corpus_size_the_crops_are_meant_for():
    assert corpus_schedule(480) == CorpusSchedule(125, 60000, 10.0, "at most 10 min of training (--budget_min)")
    big = corpus_schedule(481)  # given more crops on purpose (60000 * sqrt(481 / 480)): trained in full
    assert big == CorpusSchedule(125, 60062, None, "no time budget: 481 utterances, more than --crops_utts 480")
    assert corpus_schedule(2400, crops_utts=2400).budget_min == 10.0
    assert corpus_schedule(480, auto_minutes=3).budget_min == 3.0


@pytest.mark.parametrize("value", [20, "20", 20.0])
def test_an_explicit_budget_applies_to_any_size(value):
    assert corpus_schedule(100_000, budget_min=value).budget_min == 20.0
    assert corpus_schedule(480, budget_min=value).reason == "at most 20 min of training (--budget_min)"


@pytest.mark.parametrize("value", [0, "0", None, 0.0])
def test_zero_means_no_budget(value):
    s = corpus_schedule(480, budget_min=value)
    assert s.budget_min is None and s.epochs == 125 and s.reason == "no time budget (--budget_min 0)"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_utts": 0}, "n_utts must be >= 1"),
    ({"n_utts": 10, "crops": 0}, "crops must be >= 1"),
    ({"n_utts": 10, "crops_utts": 0}, "crops_utts must be >= 1"),
    ({"n_utts": 10, "min_epochs": 5, "max_epochs": 4}, r"min_epochs \(5\) > max_epochs \(4\)"),
    ({"n_utts": 10, "budget_min": "soon"}, "budget_min: 'auto', 0 or a number of minutes, got 'soon'"),
    ({"n_utts": 10, "budget_min": -1}, "positive number of minutes"),
    ({"n_utts": 10, "budget_min": "nan"}, "positive number of minutes"),
])
def test_bad_arguments_are_named(kwargs, match):
    n = kwargs.pop("n_utts")
    with pytest.raises(ValueError, match=match):
        corpus_schedule(n, **kwargs)


def test_command_line_prints_one_line_for_run_sh():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "xvector.training.corpus_schedule", *args],
                              capture_output=True, text=True)
    assert run("--utts", "480").stdout == "125 60000 10 at most 10 min of training (--budget_min)\n"
    assert run("--utts", "8000").stdout == "31 244949 0 no time budget: 8000 utterances, more than --crops_utts 480\n"
    assert run("--utts", "2400", "--crops-utts", "2400").stdout.startswith("25 60000 10 ")
    assert run("--utts", "480", "--budget-min", "7.5").stdout.startswith("125 60000 7.5 ")
    bad = run("--utts", "480", "--budget-min", "soon")
    assert bad.returncode == 2 and "budget_min: 'auto', 0 or a number of minutes" in bad.stderr
