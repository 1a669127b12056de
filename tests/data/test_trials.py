"""Balanced random trial lists (xvector.data.trials, scripts/make_trials.py)."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xvector.data.lists import read_trials, write_kaldi_map
from xvector.data.trials import even_quotas, make_trials

REPO = Path(__file__).resolve().parents[2]


def _utt2spk(sizes):
    return {f"s{s:02d}-u{u:03d}": f"s{s:02d}" for s, n in enumerate(sizes) for u in range(n)}


def _check(trials, utt2spk, n_target, n_nontarget):
    assert sum(t.target for t in trials) == n_target
    assert sum(not t.target for t in trials) == n_nontarget
    assert all(t.enroll != t.test for t in trials)  # no self-trials
    pairs = [frozenset((t.enroll, t.test)) for t in trials]
    assert len(set(pairs)) == len(pairs)  # no pair twice, in either order
    assert all(t.target == (utt2spk[t.enroll] == utt2spk[t.test]) for t in trials)


def test_balanced_and_deterministic():
    utt2spk = _utt2spk([12] * 8)
    trials = make_trials(utt2spk, 400, 400, seed=1)
    _check(trials, utt2spk, 400, 400)
    per_spk = Counter(utt2spk[t.enroll] for t in trials if t.target)
    assert set(per_spk.values()) == {50}  # targets spread evenly over speakers
    assert make_trials(utt2spk, 400, 400, seed=1) == trials
    assert make_trials(utt2spk, 400, 400, seed=2) != trials


def test_all_pairs_when_asked():
    utt2spk = _utt2spk([3, 3, 3])
    trials = make_trials(utt2spk, 9, 27, seed=0)
    _check(trials, utt2spk, 9, 27)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(2, 6), min_size=2, max_size=6), frac_t=st.floats(0, 1), frac_n=st.floats(0, 1),
       seed=st.integers(0, 2**31))
def test_any_feasible_request(sizes, frac_t, frac_n, seed):
    utt2spk = _utt2spk(sizes)
    max_t = sum(n * (n - 1) // 2 for n in sizes)
    total = sum(sizes)
    max_n = (total * (total - 1)) // 2 - max_t
    n_t, n_n = int(frac_t * max_t), int(frac_n * max_n)
    _check(make_trials(utt2spk, n_t, n_n, seed=seed), utt2spk, n_t, n_n)


def test_even_quotas():
    assert even_quotas(10, [1, 5, 5]) == [1, 5, 4]
    assert even_quotas(0, [3, 3]) == [0, 0]
    assert even_quotas(7, [0, 10]) == [0, 7]


@pytest.mark.parametrize(
    "sizes, targets, nontargets, message",
    [
        ([5], 1, 1, "1 speaker.*at least two speakers"),
        ([3, 1, 1], 2, 2, "speaker 's01' has one utterance \\(2 such speakers\\)"),
        ([2, 2], 3, 1, "asked for 3 target trials; only 2 distinct pairs exist"),
        ([2, 2], 1, 5, "asked for 5 nontarget trials; only 4 distinct pairs exist"),
        ([2, 2], -1, 1, "trial counts must be >= 0"),
    ],
)
def test_errors(sizes, targets, nontargets, message):
    with pytest.raises(ValueError, match=message):
        make_trials(_utt2spk(sizes), targets, nontargets)


def test_clip_to_the_pairs_that_exist():
    utt2spk = _utt2spk([2, 2])
    _check(make_trials(utt2spk, 100, 100, clip=True), utt2spk, 2, 4)


def test_single_utterance_speakers_allowed_without_targets():
    utt2spk = _utt2spk([1, 1, 1])
    _check(make_trials(utt2spk, 0, 3), utt2spk, 0, 3)


def test_make_trials_script(tmp_path):
    write_kaldi_map(tmp_path / "utt2spk", _utt2spk([4, 4, 4]))
    cmd = [sys.executable, str(REPO / "scripts/make_trials.py"), str(tmp_path), "--targets", "6", "--nontargets", "10"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    trials = read_trials(tmp_path / "trials", require_both_classes=True)
    assert len(trials) == 16
    result = subprocess.run([*cmd[:3], "--targets", "100"], capture_output=True, text=True)
    assert result.returncode == 1 and "only 18 distinct pairs exist" in result.stderr
